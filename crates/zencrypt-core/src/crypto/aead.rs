//! AES-256-GCM wrapping of small secrets (keys) with bound associated data.
//!
//! Wrapped format: `version (1 byte) || nonce (12 bytes) || ciphertext || tag (16 bytes)`.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::Zeroizing;

use super::{Aad, Key32, random_bytes};

const WRAP_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Unwrapping failed: wrong key, wrong context or tampered bytes. Deliberately opaque.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("decryption failed")]
pub struct OpenError;

/// Encrypts `plaintext` under `key`, binding `aad`.
pub fn seal(key: &Key32, aad: &Aad, plaintext: &[u8]) -> Vec<u8> {
    seal_with(&Aes256Gcm::new(key.expose().into()), aad, plaintext)
}

fn seal_with(cipher: &Aes256Gcm, aad: &Aad, plaintext: &[u8]) -> Vec<u8> {
    let nonce_bytes: [u8; NONCE_LEN] = random_bytes();
    let nonce = Nonce::from(nonce_bytes);
    let ct = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad: aad.as_bytes(),
            },
        )
        .expect("AES-GCM encryption of an in-memory buffer cannot fail");
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
    out.push(WRAP_VERSION);
    out.extend_from_slice(&nonce_bytes);
    out.extend_from_slice(&ct);
    out
}

/// Decrypts a value made by [`seal`] with the same key and associated data.
pub fn open(key: &Key32, aad: &Aad, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    open_with(&Aes256Gcm::new(key.expose().into()), aad, wrapped)
}

fn open_with(
    cipher: &Aes256Gcm,
    aad: &Aad,
    wrapped: &[u8],
) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    if wrapped.len() < 1 + NONCE_LEN + TAG_LEN || wrapped[0] != WRAP_VERSION {
        return Err(OpenError);
    }
    let nonce_bytes: [u8; NONCE_LEN] = wrapped[1..1 + NONCE_LEN]
        .try_into()
        .map_err(|_| OpenError)?;
    cipher
        .decrypt(
            &Nonce::from(nonce_bytes),
            Payload {
                msg: &wrapped[1 + NONCE_LEN..],
                aad: aad.as_bytes(),
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| OpenError)
}

/// Wraps a 256-bit key under another.
pub fn wrap_key(kek: &Key32, aad: &Aad, key: &Key32) -> Vec<u8> {
    seal(kek, aad, key.expose())
}

/// One key-encryption key, its AES key schedule made once, for wrapping and unwrapping
/// many keys ([`wrap_key`] and [`unwrap_key`] make it anew on every call). The same
/// format; shareable across threads.
pub struct KeyWrapper(Aes256Gcm);

impl KeyWrapper {
    /// A wrapper for `kek`.
    pub fn new(kek: &Key32) -> KeyWrapper {
        KeyWrapper(Aes256Gcm::new(kek.expose().into()))
    }

    /// As [`wrap_key`].
    pub fn wrap(&self, aad: &Aad, key: &Key32) -> Vec<u8> {
        seal_with(&self.0, aad, key.expose())
    }

    /// As [`unwrap_key`].
    pub fn unwrap(&self, aad: &Aad, wrapped: &[u8]) -> Result<Key32, OpenError> {
        let bytes = open_with(&self.0, aad, wrapped)?;
        Key32::from_slice(&bytes).ok_or(OpenError)
    }
}

/// Unwraps a 256-bit key made by [`wrap_key`].
pub fn unwrap_key(kek: &Key32, aad: &Aad, wrapped: &[u8]) -> Result<Key32, OpenError> {
    let bytes = open(kek, aad, wrapped)?;
    Key32::from_slice(&bytes).ok_or(OpenError)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wrong_context_fails() {
        let k = Key32::random();
        let sealed = seal(&k, &Aad::new("a").int(1), b"secret");
        assert_eq!(
            &open(&k, &Aad::new("a").int(1), &sealed).unwrap()[..],
            b"secret"
        );
        assert_eq!(open(&k, &Aad::new("a").int(2), &sealed), Err(OpenError));
        assert_eq!(
            open(&Key32::random(), &Aad::new("a").int(1), &sealed),
            Err(OpenError)
        );
    }

    #[test]
    fn a_kept_wrapper_reads_and_writes_the_same_format() {
        let (kek, key) = (Key32::random(), Key32::random());
        let aad = Aad::new("w").int(7);
        let w = KeyWrapper::new(&kek);
        let by_wrapper = w.wrap(&aad, &key);
        assert_eq!(
            unwrap_key(&kek, &aad, &by_wrapper).unwrap().expose(),
            key.expose()
        );
        let by_fn = wrap_key(&kek, &aad, &key);
        assert_eq!(w.unwrap(&aad, &by_fn).unwrap().expose(), key.expose());
        assert!(w.unwrap(&Aad::new("w").int(8), &by_fn).is_err());
        assert!(
            KeyWrapper::new(&Key32::random())
                .unwrap(&aad, &by_fn)
                .is_err()
        );
    }

    #[test]
    fn short_or_unknown_version_fails() {
        let k = Key32::random();
        let mut sealed = seal(&k, &Aad::new("a"), b"x");
        assert_eq!(open(&k, &Aad::new("a"), &sealed[..20]), Err(OpenError));
        sealed[0] = 2;
        assert_eq!(open(&k, &Aad::new("a"), &sealed), Err(OpenError));
    }

    proptest! {
        #[test]
        fn round_trip_and_any_flipped_bit_fails(msg in proptest::collection::vec(any::<u8>(), 0..200), bit in any::<usize>()) {
            let k = Key32::random();
            let aad = Aad::new("t").field("ctx");
            let mut sealed = seal(&k, &aad, &msg);
            prop_assert_eq!(&open(&k, &aad, &sealed).unwrap()[..], &msg[..]);
            let i = bit % (sealed.len() * 8);
            sealed[i / 8] ^= 1 << (i % 8);
            prop_assert_eq!(open(&k, &aad, &sealed), Err(OpenError));
        }
    }
}
