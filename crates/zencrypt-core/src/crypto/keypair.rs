//! A user's public-key pair for sharing (docs/sharing.md): an X25519 key, used as an age
//! identity and recipient, and an Ed25519 signing key. Both private halves are kept
//! together, wrapped under the user key; the public halves are public, and others trust
//! them only through the fingerprint they pinned.

use std::str::FromStr;

use age::secrecy::ExposeSecret as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use super::{Aad, Key32, aead, random_bytes};
use crate::ids::UserId;

/// Bytes of a fingerprint.
pub const FINGERPRINT_LEN: usize = 16;

/// Bytes of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// The public halves of a keypair, as stored in a user row: the age recipient (`age1...`)
/// and the Ed25519 verifying key.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKeys {
    /// The X25519 public key as an age recipient string.
    pub recipient: String,
    /// The Ed25519 verifying key.
    pub signing: [u8; 32],
}

impl std::fmt::Debug for PublicKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKeys({})", self.fingerprint())
    }
}

impl PublicKeys {
    /// The fingerprint covering both public keys.
    pub fn fingerprint(&self) -> Fingerprint {
        let mut h = Sha256::new();
        h.update(b"zencrypt public keys v1");
        h.update((self.recipient.len() as u64).to_be_bytes());
        h.update(self.recipient.as_bytes());
        h.update(self.signing);
        let mut fp = [0u8; FINGERPRINT_LEN];
        fp.copy_from_slice(&h.finalize()[..FINGERPRINT_LEN]);
        Fingerprint(fp)
    }

    /// The age recipient, when the stored text is one.
    pub fn age_recipient(&self) -> Option<age::x25519::Recipient> {
        parse_recipient(&self.recipient)
    }

    /// Whether `signature` is this key's over `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(key) = VerifyingKey::from_bytes(&self.signing) else {
            return false;
        };
        let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else {
            return false;
        };
        key.verify_strict(message, &sig).is_ok()
    }
}

/// What names a user's public keys: the first 128 bits of SHA-256 over both, shown as
/// eight groups of four hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fingerprint(pub [u8; FINGERPRINT_LEN]);

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, pair) in self.0.chunks(2).enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{:02x}{:02x}", pair[0], pair[1])?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl FromStr for Fingerprint {
    type Err = ();

    /// Reads a fingerprint as shown, ignoring case, spaces and colons.
    fn from_str(s: &str) -> Result<Self, ()> {
        let digits: String = s
            .chars()
            .filter(|c| !matches!(c, ' ' | ':' | '-'))
            .collect();
        if digits.len() != FINGERPRINT_LEN * 2 {
            return Err(());
        }
        let bytes = super::unhex(&digits.to_ascii_lowercase()).ok_or(())?;
        let mut fp = [0u8; FINGERPRINT_LEN];
        fp.copy_from_slice(&bytes);
        Ok(Fingerprint(fp))
    }
}

/// A user's private keys, unwrapped.
pub struct Keypair {
    identity: age::x25519::Identity,
    signing: SigningKey,
    public: PublicKeys,
}

impl std::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keypair({}, [redacted])", self.public.fingerprint())
    }
}

/// Associated data binding a wrapped keypair to its user and its public halves.
fn keypair_aad(user: UserId, public: &PublicKeys) -> Aad {
    Aad::new("user-keypair")
        .int(user)
        .field(&public.recipient)
        .field(public.signing)
}

impl Keypair {
    /// A fresh keypair from the OS CSPRNG.
    pub fn generate() -> Keypair {
        let identity = age::x25519::Identity::generate();
        let seed = Zeroizing::new(random_bytes::<32>());
        Keypair::from_parts(identity, SigningKey::from_bytes(&seed))
    }

    fn from_parts(identity: age::x25519::Identity, signing: SigningKey) -> Keypair {
        let public = PublicKeys {
            recipient: identity.to_public().to_string(),
            signing: signing.verifying_key().to_bytes(),
        };
        Keypair {
            identity,
            signing,
            public,
        }
    }

    /// The public halves.
    pub fn public(&self) -> &PublicKeys {
        &self.public
    }

    /// The X25519 key as an age identity.
    pub fn identity(&self) -> &age::x25519::Identity {
        &self.identity
    }

    /// Signs `message` with the Ed25519 key.
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.signing.sign(message).to_bytes()
    }

    /// Both private halves wrapped under `user_key`, bound to the user and the public
    /// halves.
    pub fn wrap(&self, user: UserId, user_key: &Key32) -> Vec<u8> {
        let identity = self.identity.to_string();
        let mut plain = Zeroizing::new(Vec::with_capacity(128));
        plain.extend_from_slice(self.signing.as_bytes());
        plain.extend_from_slice(identity.expose_secret().as_bytes());
        aead::seal(user_key, &keypair_aad(user, &self.public), &plain)
    }

    /// Unwraps a keypair stored for `user`; `None` when it does not open or does not match
    /// its public halves.
    pub fn unwrap(
        user: UserId,
        user_key: &Key32,
        public: &PublicKeys,
        wrapped: &[u8],
    ) -> Option<Keypair> {
        let plain = aead::open(user_key, &keypair_aad(user, public), wrapped).ok()?;
        let (seed, identity) = plain.split_first_chunk::<32>()?;
        let identity = std::str::from_utf8(identity).ok()?;
        let identity = age::x25519::Identity::from_str(identity).ok()?;
        let keypair = Keypair::from_parts(identity, SigningKey::from_bytes(seed));
        (keypair.public == *public).then_some(keypair)
    }
}

/// A 32-byte key (a data key, a key version's material) wrapped to an X25519 age
/// recipient (a user's or a group's key), as a standard age file.
pub fn wrap_key_to_age(recipient: &age::x25519::Recipient, key: &Key32) -> Option<Vec<u8>> {
    wrap_secret_to(recipient, &key.expose()[..])
}

/// A 32-byte key wrapped to several X25519 age recipients at once, as one standard age
/// file that each of them opens.
pub fn wrap_key_to_many(recipients: &[age::x25519::Recipient], key: &Key32) -> Option<Vec<u8>> {
    wrap_secret_to_many(recipients, &key.expose()[..])
}

/// A short secret wrapped to an X25519 recipient as a standard age file.
fn wrap_secret_to(to: &age::x25519::Recipient, secret: &[u8]) -> Option<Vec<u8>> {
    wrap_secret_to_many(std::slice::from_ref(to), secret)
}

/// A short secret wrapped to X25519 recipients as a standard age file.
fn wrap_secret_to_many(to: &[age::x25519::Recipient], secret: &[u8]) -> Option<Vec<u8>> {
    let mut wrapped = Vec::with_capacity(128 + 96 * to.len());
    super::agefile::encrypt(to, &mut &secret[..], &mut wrapped, false, &mut |_| {}).ok()?;
    Some(wrapped)
}

/// A secret wrapped by [`wrap_secret_to`], opened with the first of `identities` it is
/// addressed to; `None` when it does not open or is longer than `max` bytes (nothing
/// longer is ever buffered).
fn unwrap_secret_with(
    identities: &[&dyn age::Identity],
    wrapped: &[u8],
    max: usize,
) -> Option<Zeroizing<Vec<u8>>> {
    /// Takes at most `max` bytes into a zeroized buffer.
    struct Bounded {
        bytes: Zeroizing<Vec<u8>>,
        max: usize,
    }
    impl std::io::Write for Bounded {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.bytes.len() + buf.len() > self.max {
                return Err(std::io::Error::other("longer than expected"));
            }
            self.bytes.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut out = Bounded {
        bytes: Zeroizing::new(Vec::with_capacity(max.min(4096))),
        max,
    };
    super::agefile::decrypt(identities, &mut &wrapped[..], &mut out, &mut |_| {}).ok()?;
    Some(out.bytes)
}

/// A 32-byte key wrapped by [`wrap_key_to_age`], opened with the first of `identities` it is
/// addressed to; `None` when it does not open or is not exactly 32 bytes.
pub fn unwrap_key_with_any(identities: &[&dyn age::Identity], wrapped: &[u8]) -> Option<Key32> {
    let bytes = unwrap_secret_with(identities, wrapped, 32)?;
    let key: [u8; 32] = bytes.as_slice().try_into().ok()?;
    Some(Key32::from_bytes(key))
}

/// A 32-byte key wrapped by [`wrap_key_to_age`], opened with the recipient's keypair.
pub fn unwrap_key_with(keypair: &Keypair, wrapped: &[u8]) -> Option<Key32> {
    unwrap_key_with_any(&[keypair.identity()], wrapped)
}

/// Bytes of the private keys of earlier epochs a group keeps, at most: about 13,000
/// epochs.
const MAX_GROUP_HISTORY: usize = 1 << 20;

/// A group's X25519 keypair at one epoch (docs/sharing.md, "Groups"): shares with the
/// group are wrapped to its public key; its private key is wrapped to each member.
pub struct GroupKey {
    identity: age::x25519::Identity,
    recipient: age::x25519::Recipient,
}

impl std::fmt::Debug for GroupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GroupKey({}, [redacted])", self.recipient)
    }
}

impl GroupKey {
    /// A fresh group keypair.
    pub fn generate() -> GroupKey {
        let identity = age::x25519::Identity::generate();
        GroupKey {
            recipient: identity.to_public(),
            identity,
        }
    }

    fn parse(secret: &[u8]) -> Option<GroupKey> {
        let identity = age::x25519::Identity::from_str(std::str::from_utf8(secret).ok()?).ok()?;
        Some(GroupKey {
            recipient: identity.to_public(),
            identity,
        })
    }

    /// The public key as an age recipient (`age1...`).
    pub fn recipient(&self) -> String {
        self.recipient.to_string()
    }

    /// The private key as an age identity.
    pub fn identity(&self) -> &age::x25519::Identity {
        &self.identity
    }

    /// The private key as an age file to a member.
    pub fn wrap_to(&self, member: &PublicKeys) -> Option<Vec<u8>> {
        let secret = self.identity.to_string();
        wrap_secret_to(&member.age_recipient()?, secret.expose_secret().as_bytes())
    }

    /// A private key wrapped to a member by [`GroupKey::wrap_to`], opened with the
    /// member's keypair; `None` unless it opens and its public key is `recipient`.
    pub fn unwrap(member: &Keypair, wrapped: &[u8], recipient: &str) -> Option<GroupKey> {
        let secret = unwrap_secret_with(&[member.identity()], wrapped, 128)?;
        let key = GroupKey::parse(&secret)?;
        (key.recipient() == recipient).then_some(key)
    }

    /// The private keys of earlier epochs, oldest first, as an age file to this key.
    pub fn seal_history(&self, older: &[GroupKey]) -> Option<Vec<u8>> {
        if older.is_empty() {
            return Some(Vec::new());
        }
        let mut plain = Zeroizing::new(Vec::new());
        for k in older {
            plain.extend_from_slice(k.identity.to_string().expose_secret().as_bytes());
            plain.push(b'\n');
        }
        wrap_secret_to(&self.recipient, &plain)
    }

    /// The keys [`GroupKey::seal_history`] sealed; `None` when they do not open.
    pub fn open_history(&self, history: &[u8]) -> Option<Vec<GroupKey>> {
        if history.is_empty() {
            return Some(Vec::new());
        }
        let plain = unwrap_secret_with(&[&self.identity], history, MAX_GROUP_HISTORY)?;
        plain
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(GroupKey::parse)
            .collect()
    }
}

/// What names a group's public key at one epoch, shown like a user's fingerprint.
pub fn group_fingerprint(recipient: &str) -> Fingerprint {
    let mut h = Sha256::new();
    h.update(b"zencrypt group key v1");
    h.update((recipient.len() as u64).to_be_bytes());
    h.update(recipient.as_bytes());
    let mut fp = [0u8; FINGERPRINT_LEN];
    fp.copy_from_slice(&h.finalize()[..FINGERPRINT_LEN]);
    Fingerprint(fp)
}

/// Parses an age recipient.
pub fn parse_recipient(text: &str) -> Option<age::x25519::Recipient> {
    age::x25519::Recipient::from_str(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_and_unwraps_bound_to_user_and_public_keys() {
        let user_key = Key32::random();
        let k = Keypair::generate();
        let wrapped = k.wrap(UserId(7), &user_key);
        let back = Keypair::unwrap(UserId(7), &user_key, k.public(), &wrapped).unwrap();
        assert_eq!(back.public(), k.public());
        assert!(Keypair::unwrap(UserId(8), &user_key, k.public(), &wrapped).is_none());
        let other = Keypair::generate();
        assert!(Keypair::unwrap(UserId(7), &user_key, other.public(), &wrapped).is_none());
        assert!(Keypair::unwrap(UserId(7), &Key32::random(), k.public(), &wrapped).is_none());
    }

    #[test]
    fn keys_wrapped_to_a_user_open_only_for_them() {
        let (bob, carol) = (Keypair::generate(), Keypair::generate());
        let key = Key32::random();
        let wrapped = wrap_key_to_age(&bob.public().age_recipient().unwrap(), &key).unwrap();
        assert_eq!(
            unwrap_key_with(&bob, &wrapped).unwrap().expose(),
            key.expose()
        );
        assert!(unwrap_key_with(&carol, &wrapped).is_none());
        // Anything but exactly 32 bytes is refused.
        let mut long = Vec::new();
        let to = bob.public().age_recipient().unwrap();
        super::super::agefile::encrypt(&[to], &mut &[7u8; 33][..], &mut long, false, &mut |_| {})
            .unwrap();
        assert!(unwrap_key_with(&bob, &long).is_none());
    }

    #[test]
    fn recipient_is_an_age_recipient() {
        let k = Keypair::generate();
        assert!(k.public().recipient.starts_with("age1"));
        assert_eq!(k.public().recipient.len(), 62);
        assert!(k.public().age_recipient().is_some());
    }

    #[test]
    fn signatures_verify_only_for_their_message_and_key() {
        let k = Keypair::generate();
        let sig = k.sign(b"grant");
        assert!(k.public().verifies(b"grant", &sig));
        assert!(!k.public().verifies(b"grunt", &sig));
        assert!(!Keypair::generate().public().verifies(b"grant", &sig));
        assert!(!k.public().verifies(b"grant", &sig[..63]));
    }

    #[test]
    fn fingerprints_print_and_parse() {
        let fp = Fingerprint([
            0x3f, 0x2a, 0x9c, 0x01, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0xab, 0xcd,
        ]);
        let shown = fp.to_string();
        assert_eq!(shown, "3f2a 9c01 0001 0203 0405 0607 0809 abcd");
        assert_eq!(shown.parse::<Fingerprint>(), Ok(fp));
        assert_eq!(
            "3F2A:9C01:0001:0203:0405:0607:0809:ABCD".parse::<Fingerprint>(),
            Ok(fp)
        );
        assert_eq!(
            "3f2a9c0100010203040506070809abcd".parse::<Fingerprint>(),
            Ok(fp)
        );
        assert!("3f2a 9c01".parse::<Fingerprint>().is_err());
        assert!(
            "zz2a 9c01 0001 0203 0405 0607 0809 abcd"
                .parse::<Fingerprint>()
                .is_err()
        );
    }

    #[test]
    fn the_fingerprint_covers_both_keys() {
        let k = Keypair::generate();
        let mut p = k.public().clone();
        let fp = p.fingerprint();
        p.signing[0] ^= 1;
        assert_ne!(p.fingerprint(), fp);
        let mut p = k.public().clone();
        p.recipient = Keypair::generate().public().recipient.clone();
        assert_ne!(p.fingerprint(), fp);
    }
}
