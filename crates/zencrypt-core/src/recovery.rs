//! Recovery codes: a second way to the user key, for a user who forgot their password.
//!
//! A code is 160 random bits from the OS CSPRNG, shown once as 32 characters of the
//! RFC 4648 base32 alphabet in groups of four (`ABCD-EFGH-...`). Because the code itself
//! is high-entropy, its key-encryption key comes from HKDF-SHA256 (salted, bound to the
//! user id), not from a slow password hash: nobody can guess 160 bits, online or offline.
//! The user key is wrapped under that key with AES-256-GCM, and the wrapping is kept in
//! the user's row, bound with the rest of it (docs/threat-model.md, "Account recovery").

use data_encoding::BASE32_NOPAD;
use hkdf::Hkdf;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::crypto::{Aad, Key32, aead, random_bytes};
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::model::RecoveryWrap;

/// What to tell a user beside a recovery key that is shown once.
pub const ADVICE: &str = "Keep it offline (printed, or in another password manager): it is shown only\nonce. Without your password or this key, nobody can recover your data,\nadministrators included.";

/// Random bytes in a code.
const CODE_BYTES: usize = 20;
/// Characters in a group of the printed code.
const GROUP: usize = 4;
/// Bytes of the salt kept beside the wrapping.
const SALT_BYTES: usize = 16;

/// A recovery code as the user types it back; never printed by `Debug`.
pub struct RecoveryCode(Zeroizing<[u8; CODE_BYTES]>);

impl std::fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryCode([redacted])")
    }
}

impl RecoveryCode {
    /// A fresh code from the OS CSPRNG.
    pub fn random() -> RecoveryCode {
        RecoveryCode(Zeroizing::new(random_bytes()))
    }

    /// Reads a code as the user typed it: case, spaces and dashes do not matter.
    pub fn parse(text: &SecretString) -> Result<RecoveryCode> {
        let compact: Zeroizing<String> = Zeroizing::new(
            text.expose_secret()
                .chars()
                .filter(|c| !c.is_whitespace() && *c != '-')
                .map(|c| c.to_ascii_uppercase())
                .collect(),
        );
        let bad = || {
            Error::Usage(
                "that is not a recovery key: it has 32 letters A-Z and digits 2-7, in groups of four"
                    .into(),
            )
        };
        let bytes = Zeroizing::new(BASE32_NOPAD.decode(compact.as_bytes()).map_err(|_| bad())?);
        let code: [u8; CODE_BYTES] = bytes.as_slice().try_into().map_err(|_| bad())?;
        Ok(RecoveryCode(Zeroizing::new(code)))
    }

    /// The code as it is shown: eight groups of four characters.
    pub fn display(&self) -> SecretString {
        let plain = Zeroizing::new(BASE32_NOPAD.encode(self.0.as_slice()));
        let grouped: String = plain
            .as_bytes()
            .chunks(GROUP)
            .map(|g| std::str::from_utf8(g).expect("base32 is ASCII"))
            .collect::<Vec<_>>()
            .join("-");
        SecretString::from(grouped)
    }

    /// The key-encryption key of `user_id`'s recovery wrapping with `salt`.
    fn kek(&self, user_id: UserId, salt: &[u8]) -> Key32 {
        let mut okm = Zeroizing::new([0u8; 32]);
        let mut info = b"zencrypt recovery v1".to_vec();
        info.extend_from_slice(&user_id.0.to_be_bytes());
        Hkdf::<Sha256>::new(Some(salt), self.0.as_slice())
            .expand(&info, okm.as_mut_slice())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Key32::from_bytes(*okm)
    }
}

/// Associated data binding a recovery wrapping to its user.
fn recovery_aad(user_id: UserId) -> Aad {
    Aad::new("user-key-recovery").int(user_id)
}

/// Wraps `user_key` under a fresh code; returns the code (to show once) and the wrapping.
pub fn new_wrap(user_id: UserId, user_key: &Key32, now: i64) -> (RecoveryCode, RecoveryWrap) {
    let code = RecoveryCode::random();
    let salt: [u8; SALT_BYTES] = random_bytes();
    let kek = code.kek(user_id, &salt);
    let wrap = RecoveryWrap {
        salt: salt.to_vec(),
        wrapped_user_key: aead::wrap_key(&kek, &recovery_aad(user_id), user_key),
        created_at: now,
    };
    (code, wrap)
}

/// The user key behind `wrap`, if `code` is the one it was made with.
pub fn unwrap(user_id: UserId, wrap: &RecoveryWrap, code: &RecoveryCode) -> Option<Key32> {
    let kek = code.kek(user_id, &wrap.salt);
    aead::unwrap_key(&kek, &recovery_aad(user_id), &wrap.wrapped_user_key).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_prints_as_eight_groups_and_reads_back_loosely() {
        let code = RecoveryCode::random();
        let shown = code.display();
        let s = shown.expose_secret();
        assert_eq!(s.len(), 39);
        assert_eq!(s.split('-').count(), 8);
        assert!(s.split('-').all(|g| g.len() == 4));
        let loose = SecretString::from(format!("  {}\n", s.to_lowercase().replace('-', " ")));
        let back = RecoveryCode::parse(&loose).unwrap();
        assert_eq!(*back.0, *code.0);
    }

    #[test]
    fn a_wrong_length_or_alphabet_is_refused() {
        for bad in ["", "ABCD-EFGH", "ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ23-4560"] {
            let err = RecoveryCode::parse(&SecretString::from(bad)).unwrap_err();
            assert_eq!(
                err.to_string(),
                "that is not a recovery key: it has 32 letters A-Z and digits 2-7, in groups of four"
            );
        }
    }

    #[test]
    fn only_the_right_code_and_user_unwrap() {
        let user_key = Key32::random();
        let (code, wrap) = new_wrap(UserId(7), &user_key, 100);
        assert_eq!(wrap.created_at, 100);
        let got = unwrap(UserId(7), &wrap, &code).expect("the right code");
        assert_eq!(got.expose(), user_key.expose());
        assert!(unwrap(UserId(8), &wrap, &code).is_none());
        assert!(unwrap(UserId(7), &wrap, &RecoveryCode::random()).is_none());
        let mut moved = wrap.clone();
        moved.salt[0] ^= 1;
        assert!(unwrap(UserId(7), &moved, &code).is_none());
    }

    #[test]
    fn debug_shows_no_secret() {
        let code = RecoveryCode::random();
        assert_eq!(format!("{code:?}"), "RecoveryCode([redacted])");
        let (_, wrap) = new_wrap(UserId(1), &Key32::random(), 5);
        assert_eq!(format!("{wrap:?}"), "RecoveryWrap { created_at: 5, .. }");
    }
}
