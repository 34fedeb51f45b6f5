//! argon2id: PHC password hashes for login and key-encryption keys derived from passwords.
//!
//! Stored parameters are capped before any work is done, so a tampered hash or user row
//! cannot make a login allocate gigabytes or spin for minutes.

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;

use super::{Key32, random_bytes};

/// Largest memory cost accepted from storage, in KiB (256 MiB).
pub const MAX_M_KIB: u32 = 256 * 1024;
/// Largest iteration count accepted from storage.
pub const MAX_T: u32 = 16;
/// Largest parallelism accepted from storage.
pub const MAX_P: u32 = 8;
/// Length of the salts zencrypt generates.
pub const SALT_LEN: usize = 16;

/// argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Iterations.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl KdfParams {
    /// OWASP's recommended argon2id parameters: m=19456 KiB, t=2, p=1.
    pub const OWASP: KdfParams = KdfParams {
        m_kib: 19456,
        t: 2,
        p: 1,
    };

    /// Checks the parameters against argon2's minimums and zencrypt's caps.
    pub fn checked(self) -> Option<Params> {
        if self.m_kib > MAX_M_KIB || self.t > MAX_T || self.p > MAX_P || self.p == 0 {
            return None;
        }
        Params::new(self.m_kib, self.t, self.p, Some(32)).ok()
    }

    fn argon2(self) -> Option<Argon2<'static>> {
        Some(Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            self.checked()?,
        ))
    }
}

/// Why a password could not be processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KdfError {
    /// The parameters are outside the accepted range.
    #[error("argon2 parameters are out of range")]
    BadParams,
    /// The stored hash is not an argon2id PHC string.
    #[error("stored password hash is malformed")]
    BadHash,
}

/// Hashes `password` into an argon2id PHC string with a fresh random salt.
pub fn hash_password(params: KdfParams, password: &[u8]) -> Result<String, KdfError> {
    let argon = params.argon2().ok_or(KdfError::BadParams)?;
    let salt: [u8; SALT_LEN] = random_bytes();
    let hash = argon
        .hash_password_with_salt(password, &salt)
        .map_err(|_| KdfError::BadParams)?;
    Ok(hash.to_string())
}

/// Checks `password` against a stored PHC string. Returns `Ok(false)` on mismatch and an
/// error when the stored string is unusable (malformed, another algorithm, over the caps).
pub fn verify_password(phc: &str, password: &[u8]) -> Result<bool, KdfError> {
    let parsed = PasswordHash::new(phc).map_err(|_| KdfError::BadHash)?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(KdfError::BadHash);
    }
    let stored = Params::try_from(&parsed).map_err(|_| KdfError::BadHash)?;
    let params = KdfParams {
        m_kib: stored.m_cost(),
        t: stored.t_cost(),
        p: stored.p_cost(),
    };
    let argon = params.argon2().ok_or(KdfError::BadParams)?;
    Ok(argon.verify_password(password, &parsed).is_ok())
}

/// A syntactically valid PHC string at `params` that no password matches: verifying
/// against it costs the same as a real verification (used for unknown users).
pub fn dummy_hash(params: KdfParams) -> String {
    let salt: [u8; SALT_LEN] = random_bytes();
    let out: [u8; 32] = random_bytes();
    format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_kib,
        params.t,
        params.p,
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(out)
    )
}

/// Derives a 256-bit key-encryption key from `password` and `salt`.
pub fn derive_key(params: KdfParams, password: &[u8], salt: &[u8]) -> Result<Key32, KdfError> {
    let argon = params.argon2().ok_or(KdfError::BadParams)?;
    let mut out = zeroize::Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(password, salt, out.as_mut())
        .map_err(|_| KdfError::BadParams)?;
    Ok(Key32::from_bytes(*out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: KdfParams = KdfParams {
        m_kib: 64,
        t: 1,
        p: 1,
    };

    #[test]
    fn hash_and_verify() {
        let phc = hash_password(FAST, b"correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert_eq!(verify_password(&phc, b"correct horse"), Ok(true));
        assert_eq!(verify_password(&phc, b"wrong horse"), Ok(false));
    }

    #[test]
    fn dummy_hash_never_matches_but_parses() {
        let phc = dummy_hash(FAST);
        assert_eq!(verify_password(&phc, b""), Ok(false));
        assert_eq!(verify_password(&phc, b"anything"), Ok(false));
    }

    #[test]
    fn oversized_stored_params_are_refused_without_work() {
        let phc = dummy_hash(KdfParams {
            m_kib: 4 * 1024 * 1024,
            t: 1,
            p: 1,
        });
        assert_eq!(verify_password(&phc, b"x"), Err(KdfError::BadParams));
        let phc = dummy_hash(KdfParams {
            m_kib: 64,
            t: 1000,
            p: 1,
        });
        assert_eq!(verify_password(&phc, b"x"), Err(KdfError::BadParams));
    }

    #[test]
    fn other_algorithms_are_refused() {
        let phc = dummy_hash(FAST).replace("argon2id", "argon2i");
        assert_eq!(verify_password(&phc, b"x"), Err(KdfError::BadHash));
        assert_eq!(verify_password("not a hash", b"x"), Err(KdfError::BadHash));
    }

    #[test]
    fn derive_is_deterministic_per_salt() {
        let a = derive_key(FAST, b"pw", b"salt-salt-salt-1").unwrap();
        let b = derive_key(FAST, b"pw", b"salt-salt-salt-1").unwrap();
        let c = derive_key(FAST, b"pw", b"salt-salt-salt-2").unwrap();
        assert_eq!(a.expose(), b.expose());
        assert_ne!(a.expose(), c.expose());
    }
}
