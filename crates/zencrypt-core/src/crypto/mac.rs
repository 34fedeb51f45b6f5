//! HMAC-SHA256 for the audit chain, with constant-time verification.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Length of a MAC in bytes.
pub const MAC_LEN: usize = 32;

/// A MAC key (at least 32 bytes). Never printed. Holds the keyed HMAC state, computed
/// once (it is zeroed on drop), so each MAC costs only the message's own blocks.
pub struct MacKey(Hmac<Sha256>);

impl MacKey {
    /// Wraps key bytes (which are zeroed here); callers check the minimum length.
    pub fn new(bytes: Vec<u8>) -> Self {
        let bytes = zeroize::Zeroizing::new(bytes);
        MacKey(
            <Hmac<Sha256> as KeyInit>::new_from_slice(&bytes)
                .expect("HMAC accepts keys of any length"),
        )
    }

    fn hmac(&self) -> Hmac<Sha256> {
        self.0.clone()
    }

    /// HMAC-SHA256 over the concatenation of `parts`.
    pub fn compute(&self, parts: &[&[u8]]) -> [u8; MAC_LEN] {
        let mut m = self.hmac();
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }

    /// Constant-time check of `tag` against the HMAC of `parts`.
    pub fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        let mut m = self.hmac();
        for p in parts {
            m.update(p);
        }
        m.verify_slice(tag).is_ok()
    }
}

impl std::fmt::Debug for MacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MacKey([redacted])")
    }
}

/// SHA-256 digest of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    Sha256::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_case_2() {
        let k = MacKey::new(b"Jefe".to_vec());
        let tag = k.compute(&[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            crate::crypto::hex(&tag),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(k.verify(&[b"what do ya want for nothing?"], &tag));
        assert!(!k.verify(&[b"what do ya want for nothing!"], &tag));
    }

    #[test]
    fn sha256_known_answer() {
        assert_eq!(
            crate::crypto::hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
