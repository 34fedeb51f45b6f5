//! Cryptographic building blocks: OS randomness, secret key types, AES-256-GCM key
//! wrapping with bound context, argon2id password hashing and key derivation, and HMAC.
//!
//! Nothing here knows about users or the database; callers pass the context to bind.

pub mod aead;
pub mod agefile;
pub mod armor;
pub mod kdf;
pub mod keypair;
pub mod mac;
pub mod stream;

use rand::TryRng;
use zeroize::Zeroizing;

/// Fills `buf` from the operating system's CSPRNG.
///
/// Small requests (nonces, keys, tokens) are served from a per-thread pool of OS random
/// bytes, refilled 4 KiB at a time, so an import of many records makes one `getrandom`
/// call per few dozen records instead of four per record. Served bytes are zeroed in the
/// pool at once, and the pool is zeroed when its thread ends.
pub fn fill_random(buf: &mut [u8]) {
    const POOL: usize = 4096;
    thread_local! {
        static RANDOM: std::cell::RefCell<(Zeroizing<[u8; POOL]>, usize)> =
            std::cell::RefCell::new((Zeroizing::new([0u8; POOL]), POOL));
    }
    fn os(buf: &mut [u8]) {
        rand::rngs::SysRng
            .try_fill_bytes(buf)
            .expect("the operating system's random number generator failed");
    }
    if buf.len() > POOL / 8 {
        return os(buf);
    }
    RANDOM.with(|pool| {
        let (bytes, used) = &mut *pool.borrow_mut();
        if *used + buf.len() > POOL {
            os(&mut bytes[..]);
            *used = 0;
        }
        let taken = &mut bytes[*used..*used + buf.len()];
        buf.copy_from_slice(taken);
        taken.fill(0);
        *used += buf.len();
    });
}

/// `N` random bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    fill_random(&mut b);
    b
}

/// A random identifier: `n` bytes rendered as lowercase hex.
pub fn random_id(n: usize) -> String {
    let mut b = vec![0u8; n];
    fill_random(&mut b);
    hex(&b)
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The bytes of lowercase or uppercase hex; `None` for anything else.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Reads `reader` to its end, at most `limit` bytes, into a buffer that is zeroed on drop.
/// Unlike `read_to_end`, every smaller buffer it outgrows is zeroed too before it is
/// freed, so no stray copy of a secret value is left in freed memory. New space is zeroed
/// once, when the buffer grows, not before every read.
pub fn read_secret(reader: impl std::io::Read, limit: u64) -> std::io::Result<Zeroizing<Vec<u8>>> {
    use std::io::Read;
    const FIRST: usize = 8 * 1024;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut reader = reader.take(limit as u64);
    let mut buf = Zeroizing::new(vec![0u8; FIRST.min(limit)]);
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            // Full: a small read tells whether there is more before the buffer grows, so
            // an input that fits exactly is not copied again.
            let mut probe = Zeroizing::new([0u8; 64]);
            let n = loop {
                match reader.read(&mut probe[..]) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    r => break r?,
                }
            };
            if n == 0 {
                return Ok(buf);
            }
            let size = filled
                .saturating_mul(2)
                .max(FIRST)
                .min(limit)
                .max(filled + n);
            let mut bigger = Zeroizing::new(vec![0u8; size]);
            bigger[..filled].copy_from_slice(&buf[..filled]);
            bigger[filled..filled + n].copy_from_slice(&probe[..n]);
            buf = bigger;
            filled += n;
            continue;
        }
        match reader.read(&mut buf[filled..]) {
            Ok(0) => {
                buf.truncate(filled);
                return Ok(buf);
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// A 256-bit secret key. Zeroed on drop; never cloned, printed or serialized.
pub struct Key32(Zeroizing<[u8; 32]>);

impl Key32 {
    /// A fresh random key from the OS CSPRNG.
    pub fn random() -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        fill_random(k.as_mut());
        Key32(k)
    }

    /// Takes ownership of key bytes (the caller's copy should be zeroized).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Key32(Zeroizing::new(bytes))
    }

    /// Builds a key from a slice of exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; 32] = bytes.try_into().ok()?;
        Some(Key32(Zeroizing::new(arr)))
    }

    /// The raw key bytes, for the crypto primitives only.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for Key32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key32([redacted])")
    }
}

/// Associated data for an AEAD operation: a purpose label and length-prefixed fields,
/// so that no two distinct contexts encode to the same bytes.
#[derive(Debug, Clone)]
pub struct Aad(Vec<u8>);

impl Aad {
    /// Starts associated data for one purpose, e.g. `"user-key"`.
    pub fn new(purpose: &str) -> Self {
        // Room for a row's encoding without growing.
        let mut a = Aad(Vec::with_capacity(256));
        a.0.extend_from_slice(b"zencrypt\0");
        a.push(purpose.as_bytes());
        a
    }

    /// Appends one field.
    pub fn field(mut self, value: impl AsRef<[u8]>) -> Self {
        self.push(value.as_ref());
        self
    }

    /// Appends an integer field (a typed id binds as the integer it holds).
    pub fn int(self, value: impl Into<i64>) -> Self {
        self.field(value.into().to_be_bytes())
    }

    fn push(&mut self, v: &[u8]) {
        self.0.extend_from_slice(&(v.len() as u64).to_be_bytes());
        self.0.extend_from_slice(v);
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most 1000 bytes per call, to cross buffer growth.
    struct Trickle<'a>(&'a [u8]);

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.0.len()).min(1000);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn read_secret_reads_everything_up_to_the_limit() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for (len, limit, want) in [
            (0, 10, 0),
            (5, 10, 5),
            (8192, 9000, 8192),
            (8193, 100_000, 8193),
            (100_000, 100_001, 100_000),
            (100_000, 40_000, 40_000),
        ] {
            let got = read_secret(Trickle(&data[..len]), limit).unwrap();
            assert_eq!(&got[..], &data[..want], "len {len} limit {limit}");
        }
    }

    #[test]
    fn pooled_randomness_never_repeats_and_serves_any_size() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..2000 {
            assert!(
                seen.insert(random_bytes::<16>()),
                "a 16-byte value repeated"
            );
        }
        for len in [0, 1, 511, 512, 513, 5000] {
            let mut b = vec![0u8; len];
            fill_random(&mut b);
            if len >= 16 {
                assert!(b.iter().any(|&x| x != 0), "{len} bytes came back zero");
            }
        }
    }

    #[test]
    fn aad_fields_are_unambiguous() {
        let a = Aad::new("p").field("ab").field("c");
        let b = Aad::new("p").field("a").field("bc");
        assert_ne!(a.as_bytes(), b.as_bytes());
    }

    #[test]
    fn an_id_binds_as_the_integer_it_holds() {
        let mut want = b"zencrypt\0".to_vec();
        want.extend_from_slice(&1u64.to_be_bytes());
        want.extend_from_slice(b"p");
        want.extend_from_slice(&8u64.to_be_bytes());
        want.extend_from_slice(&7i64.to_be_bytes());
        assert_eq!(Aad::new("p").int(crate::ids::RecordId(7)).as_bytes(), want);
        assert_eq!(Aad::new("p").int(7).as_bytes(), want);
    }

    #[test]
    fn key_debug_is_redacted() {
        let k = Key32::from_bytes([7u8; 32]);
        assert_eq!(format!("{k:?}"), "Key32([redacted])");
    }

    #[test]
    fn hex_encodes() {
        assert_eq!(hex(&[0, 15, 255]), "000fff");
        assert_eq!(random_id(16).len(), 32);
    }
}
