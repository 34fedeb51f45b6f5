//! `hash` and `hash verify`: SHA-256 hex digests of any input (streamed) and argon2id PHC
//! strings of short secrets, and their constant-time verification.

use std::io::Read;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::crypto::kdf::{self, KdfParams};
use crate::crypto::{self};
use crate::error::{Error, Result};

/// Largest input accepted for argon2id hashing (it is meant for passwords and tokens).
pub const MAX_ARGON2_INPUT: u64 = 64 * 1024;

/// Which hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algo {
    /// SHA-256, printed as lowercase hex.
    Sha256,
    /// argon2id, printed as a PHC string.
    Argon2id,
}

fn io(e: std::io::Error) -> Error {
    Error::io("reading the input", e)
}

/// SHA-256 of everything `input` yields, as lowercase hex.
pub fn sha256_hex(input: &mut impl Read) -> Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = input.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(crypto::hex(&h.finalize()))
}

fn read_small(input: &mut impl Read) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    let data = crypto::read_secret(input, MAX_ARGON2_INPUT + 1).map_err(io)?;
    if data.len() as u64 > MAX_ARGON2_INPUT {
        return Err(Error::Usage(format!(
            "argon2id hashing takes at most {} KiB of input; use --algo sha256 for files",
            MAX_ARGON2_INPUT / 1024
        )));
    }
    Ok(data)
}

/// Hashes `input` with `algo`.
pub fn hash(algo: Algo, params: KdfParams, input: &mut impl Read) -> Result<String> {
    match algo {
        Algo::Sha256 => sha256_hex(input),
        Algo::Argon2id => {
            let data = read_small(input)?;
            kdf::hash_password(params, &data)
                .map_err(|e| Error::Internal(format!("argon2id hashing failed: {e}")))
        }
    }
}

/// Checks `input` against `expected` (a SHA-256 hex digest or an argon2id PHC string,
/// recognised by its form). `Ok(true)` on a match.
pub fn verify(expected: &str, input: &mut impl Read) -> Result<bool> {
    let expected = expected.trim();
    if expected.starts_with("$argon2") {
        let data = read_small(input)?;
        return kdf::verify_password(expected, &data)
            .map_err(|e| Error::Usage(format!("the hash to verify against is not usable: {e}")));
    }
    if expected.len() == 64 && expected.bytes().all(|b| b.is_ascii_hexdigit()) {
        let actual = sha256_hex(input)?;
        return Ok(bool::from(
            actual
                .as_bytes()
                .ct_eq(expected.to_ascii_lowercase().as_bytes()),
        ));
    }
    Err(Error::Usage(
        "unrecognised hash: expected 64 hex digits (sha256) or an argon2id PHC string ($argon2id$...)"
            .into(),
    ))
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
    fn sha256_known_answer_and_verify() {
        let d = hash(Algo::Sha256, FAST, &mut &b"abc"[..]).unwrap();
        assert_eq!(
            d,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(verify(&d, &mut &b"abc"[..]).unwrap());
        assert!(verify(&d.to_uppercase(), &mut &b"abc"[..]).unwrap());
        assert!(!verify(&d, &mut &b"abd"[..]).unwrap());
    }

    #[test]
    fn argon2id_round_trip() {
        let phc = hash(Algo::Argon2id, FAST, &mut &b"hunter22"[..]).unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify(&phc, &mut &b"hunter22"[..]).unwrap());
        assert!(!verify(&phc, &mut &b"hunter23"[..]).unwrap());
    }

    #[test]
    fn bad_hashes_are_usage_errors() {
        let e = verify("abc", &mut &b""[..]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let big = vec![0u8; 70 * 1024];
        assert_eq!(
            hash(Algo::Argon2id, FAST, &mut &big[..])
                .unwrap_err()
                .exit_code(),
            2
        );
    }
}
