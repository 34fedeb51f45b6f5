//! Public keys between users (docs/sharing.md): each user's keypair, the fingerprints a
//! user pins on first use, and age files written to other users.
//!
//! - Every person's account gets a keypair (an X25519 key, which is an age identity and
//!   recipient, and an Ed25519 signing key) at sign-up, at the first password of an
//!   account an administrator made, or at the first login or session after this
//!   release. The private halves are wrapped under the user key; the public halves sit in
//!   the user row, bound under the audit key like the rest of it.
//! - A public key is trusted through a *pin*, not through the row: whoever can write the
//!   database (and holds the audit key) could replace bob's key with their own. The first
//!   time alice's client uses bob's key it records its fingerprint in alice's pin set,
//!   which is sealed under alice's user key; later it refuses a key that does not match
//!   (exit 7, naming both fingerprints) until alice, having compared fingerprints with bob,
//!   trusts the new one.

use std::collections::BTreeMap;

use secrecy::SecretString;
use serde_json::json;

use crate::authz::Permission;
use crate::crypto::keypair::{FINGERPRINT_LEN, Fingerprint, Keypair, PublicKeys};
use crate::crypto::{Aad, Key32, aead};
use crate::error::{Error, Result};
use crate::events::AuditAction;
use crate::ids::UserId;
use crate::model::{
    KeyRecord, KeyShare, RecordRow, RecordShare, Role, ShareFilter, UserKeys, UserRecord,
    UserStatus,
};
use crate::records::RecordInfo;
use crate::storage::Tx;
use crate::vault::{Session, Vault};
use zeroize::Zeroizing;

/// A user's public key as others see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicIdentity {
    /// Whose key.
    pub username: String,
    /// The X25519 key as an age recipient (`age1...`).
    pub recipient: String,
    /// The fingerprint of both public keys.
    pub fingerprint: Fingerprint,
}

/// How a user's key in the database stands against the viewer's pins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinState {
    /// The viewer has not used this key yet: it is pinned on first use.
    NotPinned,
    /// The key is the one the viewer pinned.
    Pinned,
    /// The key is not the one the viewer pinned (shown).
    Changed(Fingerprint),
    /// The user is the viewer.
    Own,
}

/// What `user show` tells about a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCard {
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// Active or disabled.
    pub status: UserStatus,
    /// The user's public key, once they have one (at their first session after sign-up
    /// under an earlier release).
    pub key: Option<PublicIdentity>,
    /// The viewer's pin for it.
    pub pin: PinState,
}

/// What `user trust` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trusted {
    /// Whose key.
    pub username: String,
    /// The fingerprint now pinned.
    pub fingerprint: Fingerprint,
    /// The fingerprint pinned before, when it differed.
    pub replaced: Option<Fingerprint>,
}

/// A user's pins: per user id, the username and fingerprint pinned.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Pins(BTreeMap<i64, (String, Fingerprint)>);

fn pins_aad(owner: UserId) -> Aad {
    Aad::new("key-pins").int(owner)
}

impl Pins {
    /// The pins stored in `user`'s row, opened with the user key.
    pub(crate) fn load(user: &UserRecord, user_key: &Key32) -> Result<Pins> {
        let Some(sealed) = &user.pins else {
            if user.keys.is_some() {
                return Err(Error::Integrity(format!(
                    "the pinned public keys of '{}' are missing: they were removed outside zencrypt",
                    user.username
                )));
            }
            return Ok(Pins::default());
        };
        let damaged = || {
            Error::Integrity(format!(
                "the pinned public keys of '{}' do not open: they were changed outside zencrypt",
                user.username
            ))
        };
        let plain =
            aead::open(user_key, &pins_aad(UserId(user.id)), sealed).map_err(|_| damaged())?;
        Pins::decode(&plain).ok_or_else(damaged)
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (id, (name, fp)) in &self.0 {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&fp.0);
            out.extend_from_slice(&(name.len() as u16).to_be_bytes());
            out.extend_from_slice(name.as_bytes());
        }
        out
    }

    fn decode(mut bytes: &[u8]) -> Option<Pins> {
        let mut pins = Pins::default();
        while !bytes.is_empty() {
            let (id, rest) = bytes.split_first_chunk::<8>()?;
            let (fp, rest) = rest.split_first_chunk::<FINGERPRINT_LEN>()?;
            let (len, rest) = rest.split_first_chunk::<2>()?;
            let len = usize::from(u16::from_be_bytes(*len));
            if rest.len() < len {
                return None;
            }
            let name = std::str::from_utf8(&rest[..len]).ok()?.to_string();
            pins.0
                .insert(i64::from_be_bytes(*id), (name, Fingerprint(*fp)));
            bytes = &rest[len..];
        }
        Some(pins)
    }

    /// Writes the pins into `user`'s row, sealed under the user key.
    fn store(&self, tx: &mut dyn Tx, mut user: UserRecord, user_key: &Key32) -> Result<()> {
        user.pins = Some(aead::seal(
            user_key,
            &pins_aad(UserId(user.id)),
            &self.encode(),
        ));
        tx.update_user(&user)?;
        Ok(())
    }

    /// How `target`'s current key stands against these pins. A pin names the user by id
    /// and name, so an id reused by a later account does not inherit it.
    fn state(&self, target: &UserRecord, fp: Fingerprint) -> PinState {
        match self.0.get(&target.id) {
            // The name pinned under another account id: a replaced account.
            None => {
                match self.0.iter().find(|(id, (n, _))| {
                    **id != target.id && n.eq_ignore_ascii_case(&target.username)
                }) {
                    Some((_, (_, old))) => PinState::Changed(*old),
                    None => PinState::NotPinned,
                }
            }
            Some((name, pinned)) if name == &target.username && *pinned == fp => PinState::Pinned,
            Some((_, pinned)) => PinState::Changed(*pinned),
        }
    }
}

fn no_such_user(name: &str) -> Error {
    Error::NotFound(format!("no user named '{name}'"))
}

/// Reads the session's user row.
fn own_row(tx: &mut dyn Tx, session: &Session) -> Result<UserRecord> {
    tx.user_by_id(session.user_id.0)?
        .ok_or_else(|| no_such_user(&session.username))
}

/// Gives `user` a keypair when it has none (in the caller's transaction). Returns the
/// keys, and whether they are new.
pub(crate) fn ensure_keypair(
    tx: &mut dyn Tx,
    mut user: UserRecord,
    user_key: &Key32,
) -> Result<(UserKeys, bool)> {
    if let Some(keys) = &user.keys {
        return Ok((keys.clone(), false));
    }
    let pair = Keypair::generate();
    let keys = UserKeys {
        public: pair.public().clone(),
        wrapped: pair.wrap(UserId(user.id), user_key),
    };
    user.keys = Some(keys.clone());
    // An empty pin set from the start: a set that later goes missing was removed.
    user.pins = Some(aead::seal(user_key, &pins_aad(UserId(user.id)), &[]));
    tx.update_user(&user)?;
    Ok((keys, true))
}

/// The session user's keypair, unwrapped (made first when the account has none).
pub(crate) fn own_keypair(tx: &mut dyn Tx, session: &Session) -> Result<(Keypair, bool)> {
    let user = own_row(tx, session)?;
    let (keys, made) = ensure_keypair(tx, user, &session.user_key)?;
    let pair = Keypair::unwrap(
        session.user_id,
        &session.user_key,
        &keys.public,
        &keys.wrapped,
    )
    .ok_or_else(|| {
        Error::Integrity(format!(
            "the keypair of '{}' does not open: it was changed outside zencrypt",
            session.username
        ))
    })?;
    Ok((pair, made))
}

fn identity_of(user: &UserRecord, public: &PublicKeys) -> PublicIdentity {
    PublicIdentity {
        username: user.username.clone(),
        recipient: public.recipient.clone(),
        fingerprint: public.fingerprint(),
    }
}

/// Another user's public keys, checked against the session user's pins and pinned on
/// first use (in the caller's transaction). Returns the user row, the keys and whether a
/// new pin was written.
pub(crate) fn pinned_keys(
    tx: &mut dyn Tx,
    session: &Session,
    name: &str,
) -> Result<(UserRecord, PublicKeys, bool)> {
    pinned_keys_if(tx, session, name, |_| true)
}

/// [`pinned_keys`], pinning a first-seen key only when `accept` says its keys may be
/// pinned (a recipient checks the owner's signature with them first); a key not accepted
/// is refused, and nothing is pinned.
fn pinned_keys_if(
    tx: &mut dyn Tx,
    session: &Session,
    name: &str,
    accept: impl FnOnce(&PublicKeys) -> bool,
) -> Result<(UserRecord, PublicKeys, bool)> {
    let target = tx
        .user_by_name(name)?
        .filter(|u| u.role != Role::Service)
        .ok_or_else(|| no_such_user(name))?;
    if target.status != UserStatus::Active {
        return Err(Error::Conflict(format!(
            "'{}' is disabled: nothing can be shared with them",
            target.username
        )));
    }
    let Some(keys) = target.keys.clone() else {
        return Err(Error::NotFound(format!(
            "'{}' has no public key yet: it is made at their next login",
            target.username
        )));
    };
    if keys.public.age_recipient().is_none() {
        return Err(Error::Integrity(format!(
            "the public key of '{}' is not a valid age recipient",
            target.username
        )));
    }
    if target.id == session.user_id.0 {
        return Ok((target, keys.public, false));
    }
    let me = own_row(tx, session)?;
    let mut pins = Pins::load(&me, &session.user_key)?;
    let fp = keys.public.fingerprint();
    match pins.state(&target, fp) {
        PinState::Pinned | PinState::Own => Ok((target, keys.public, false)),
        PinState::Changed(pinned) => Err(Error::KeyChanged {
            user: target.username.clone(),
            pinned: pinned.to_string(),
            current: fp.to_string(),
        }),
        PinState::NotPinned => {
            if !accept(&keys.public) {
                return Err(Error::Integrity(format!(
                    "what '{}' is said to have signed does not verify under their key: it was \
                     changed outside zencrypt (their key was not pinned)",
                    target.username
                )));
            }
            pins.0.insert(target.id, (target.username.clone(), fp));
            pins.store(tx, me, &session.user_key)?;
            Ok((target, keys.public, true))
        }
    }
}

impl Vault {
    /// The session user's public key (made now when the account has none yet).
    pub fn account_pubkey(&mut self, session: &Session) -> Result<PublicIdentity> {
        self.authorized(
            session,
            Permission::Own,
            AuditAction::AccountPubkey,
            &session.username,
            |tx| {
                let (pair, made) = own_keypair(tx, session)?;
                let user = own_row(tx, session)?;
                let id = identity_of(&user, pair.public());
                let detail = json!({ "fingerprint": id.fingerprint.to_string(), "made": made });
                Ok((id, detail))
            },
        )
    }

    /// What the session user can know of `name`: role, status, public key fingerprint and
    /// whether it matches the session user's pin.
    pub fn user_show(&mut self, session: &Session, name: &str) -> Result<UserCard> {
        self.authorized(
            session,
            Permission::Own,
            AuditAction::UserShow,
            name,
            |tx| {
                let target = tx
                    .user_by_name(name)?
                    .filter(|u| u.role != Role::Service || session.role == Role::Admin)
                    .ok_or_else(|| no_such_user(name))?;
                let key = target
                    .keys
                    .as_ref()
                    .map(|k| identity_of(&target, &k.public));
                let pin = if target.id == session.user_id.0 {
                    PinState::Own
                } else {
                    match &key {
                        Some(k) => {
                            let me = own_row(tx, session)?;
                            Pins::load(&me, &session.user_key)?.state(&target, k.fingerprint)
                        }
                        None => PinState::NotPinned,
                    }
                };
                let detail = json!({
                    "fingerprint": key.as_ref().map(|k| k.fingerprint.to_string()),
                });
                let card = UserCard {
                    username: target.username.clone(),
                    role: target.role,
                    status: target.status,
                    key,
                    pin,
                };
                Ok((card, detail))
            },
        )
    }

    /// Pins `name`'s current key after the session user compared `fingerprint` with them
    /// out of band; refused (exit 7) when the database holds a different key.
    pub fn user_trust(
        &mut self,
        session: &Session,
        name: &str,
        fingerprint: &str,
    ) -> Result<Trusted> {
        let given: Fingerprint = fingerprint.parse().map_err(|()| {
            Error::Usage(format!(
                "'{}...' is not a fingerprint (32 hex digits, as `user show` prints them)",
                crate::text::printable(fingerprint, 12)
            ))
        })?;
        self.authorized(
            session,
            Permission::Own,
            AuditAction::UserTrust,
            name,
            |tx| {
                let target = tx
                    .user_by_name(name)?
                    .filter(|u| u.role != Role::Service)
                    .ok_or_else(|| no_such_user(name))?;
                if target.id == session.user_id.0 {
                    return Err(Error::Usage("your own key needs no trust".into()));
                }
                let keys = target.keys.clone().ok_or_else(|| {
                    Error::NotFound(format!(
                        "'{}' has no public key yet: it is made at their next login",
                        target.username
                    ))
                })?;
                let current = keys.public.fingerprint();
                if current != given {
                    return Err(Error::Integrity(format!(
                        "the fingerprint given is not that of the key the database holds for '{}' ({current}): \
                         nothing was trusted",
                        target.username
                    )));
                }
                let me = own_row(tx, session)?;
                let mut pins = Pins::load(&me, &session.user_key)?;
                let replaced = match pins.state(&target, current) {
                    PinState::Changed(old) => Some(old),
                    _ => None,
                };
                pins.0.insert(target.id, (target.username.clone(), current));
                pins.store(tx, me, &session.user_key)?;
                let detail = json!({
                    "fingerprint": current.to_string(),
                    "replaced": replaced.map(|f| f.to_string()),
                });
                let out = Trusted {
                    username: target.username.clone(),
                    fingerprint: current,
                    replaced,
                };
                Ok((out, detail))
            },
        )
    }

    /// The age recipients of the named users, each checked against the session user's
    /// pins (and pinned on first use). The pins written are audited.
    pub fn age_recipients_of(
        &mut self,
        session: &Session,
        names: &[String],
    ) -> Result<Vec<(PublicIdentity, age::x25519::Recipient)>> {
        let target = names.join(",");
        self.authorized_if(
            session,
            Permission::Own,
            AuditAction::UserPin,
            &target,
            |tx| {
                let mut out = Vec::new();
                let mut pinned = Vec::new();
                for name in names {
                    let (user, keys, new) = pinned_keys(tx, session, name)?;
                    let recipient = keys.age_recipient().ok_or_else(|| {
                        Error::Integrity(format!(
                            "the public key of '{}' is not a valid age recipient",
                            user.username
                        ))
                    })?;
                    if new {
                        pinned.push(json!({
                            "user": user.username,
                            "fingerprint": keys.fingerprint().to_string(),
                        }));
                    }
                    out.push((identity_of(&user, &keys), recipient));
                }
                let detail = (!pinned.is_empty()).then(|| json!({ "pinned": pinned }));
                Ok((out, detail))
            },
        )
    }

    /// The session user's age identity, to read age files addressed to them.
    pub fn age_identity(&mut self, session: &Session) -> Result<age::x25519::Identity> {
        self.authorized_if(
            session,
            Permission::Own,
            AuditAction::AccountPubkey,
            &session.username,
            |tx| {
                let (pair, made) = own_keypair(tx, session)?;
                let detail = made.then(|| {
                    json!({ "fingerprint": pair.public().fingerprint().to_string(), "made": true })
                });
                Ok((pair.identity().clone(), detail))
            },
        )
    }

    /// Audits an age file written or read (format, recipients or nothing, plaintext
    /// bytes).
    pub fn audit_age_file(
        &mut self,
        session: &Session,
        action: AuditAction,
        target: &str,
        detail: serde_json::Value,
    ) -> Result<()> {
        self.authorized(session, Permission::Own, action, target, |_| {
            Ok(((), detail.clone()))
        })
    }
}

/// The identity as the text of an age identity file, for tests and exports.
pub fn identity_text(identity: &age::x25519::Identity) -> SecretString {
    use age::secrecy::ExposeSecret;
    SecretString::from(identity.to_string().expose_secret().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_encode_and_decode() {
        let mut p = Pins::default();
        p.0.insert(3, ("bob".into(), Fingerprint([7; FINGERPRINT_LEN])));
        p.0.insert(12, ("carol".into(), Fingerprint([9; FINGERPRINT_LEN])));
        assert_eq!(Pins::decode(&p.encode()), Some(p.clone()));
        let enc = p.encode();
        assert_eq!(Pins::decode(&enc[..enc.len() - 1]), None);
        assert_eq!(Pins::decode(&[]), Some(Pins::default()));
    }
}

// ---- Records shared with other users -------------------------------------------------

/// One record the session user shared, as `data list --shared` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareInfo {
    /// The record's token.
    pub token: String,
    /// The record's name.
    pub name: Option<String>,
    /// The recipient.
    pub with: String,
    /// Unix seconds it was first shared with them.
    pub since: i64,
}

/// One record shared with the session user, as `data list --shared-with-me` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedWithMe {
    /// The owner.
    pub owner: String,
    /// The record's token.
    pub token: String,
    /// The record's name.
    pub name: Option<String>,
    /// The version shared.
    pub version: i64,
    /// Unix seconds it was first shared.
    pub since: i64,
}

/// What `data unshare` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unshared {
    /// The record's version now.
    pub version: i64,
    /// Whether it was re-encrypted under a new data key (not when its key may no longer
    /// encrypt, or it is deleted).
    pub reencrypted: bool,
    /// Other shares that ended because they could not be wrapped for any more.
    pub also_ended: Vec<String>,
    /// Every share ended: the share rows were not the ones the record binds.
    pub all_ended: bool,
}

/// What `data share` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shared {
    /// The record's token.
    pub token: String,
    /// The record's name.
    pub name: Option<String>,
    /// The recipient.
    pub with: String,
    /// The recipient's fingerprint, as pinned.
    pub fingerprint: Fingerprint,
    /// Whether the recipient's key was pinned just now (first use).
    pub pinned_now: bool,
}

/// What the owner signs for a share: the record as the recipient will read it (id, token,
/// owner, name, version, expiry), the recipient and the key they were pinned with, the
/// access (read), the wrapped data key and the share's creation time.
fn share_message(
    row: &RecordRow,
    recipient_id: i64,
    recipient: &Fingerprint,
    wrapped_dek: &[u8],
    created_at: i64,
) -> Vec<u8> {
    use sha2::{Digest as _, Sha256};
    let a = Aad::new("zencrypt share v1")
        .int(row.id)
        .field(&row.token)
        .int(row.owner_id)
        .field(row.name.as_deref().unwrap_or(""))
        .int(row.version);
    let a = match row.expires_at {
        Some(e) => a.field([1]).int(e),
        None => a.field([0]),
    };
    a.int(recipient_id)
        .field(recipient.0)
        .field("read")
        .field(Sha256::digest(wrapped_dek))
        .field(Sha256::digest(&row.ciphertext))
        .int(created_at)
        .as_bytes()
        .to_vec()
}

/// What the owner signs once per share, whatever the version: who may read which record.
/// The owner's client checks it before it wraps a new data key for a share row, so a row
/// a database writer inserted gets nothing.
fn grant_message(row: &RecordRow, recipient_id: i64, created_at: i64) -> Vec<u8> {
    Aad::new("zencrypt share grant v1")
        .int(row.id)
        .field(&row.token)
        .int(row.owner_id)
        .int(recipient_id)
        .field("read")
        .int(created_at)
        .as_bytes()
        .to_vec()
}

/// Whether a share row carries its owner's grant signature for this record.
fn grant_ok(owner: &PublicKeys, row: &RecordRow, share: &RecordShare) -> bool {
    share.owner_id == row.owner_id
        && share.record_id == row.id
        && owner.verifies(
            &grant_message(row, share.recipient_id, share.created_at),
            &share.grant_signature,
        )
}

/// Wraps `dek` to a recipient and signs the share with the owner's keypair.
fn make_share(
    owner: &Keypair,
    row: &RecordRow,
    recipient_id: i64,
    recipient: &PublicKeys,
    dek: &Key32,
    created_at: i64,
) -> Result<RecordShare> {
    let to = recipient.age_recipient().ok_or_else(|| {
        Error::Integrity(format!(
            "the public key of user {recipient_id} is not a valid age recipient"
        ))
    })?;
    let mut wrapped = Vec::with_capacity(256);
    crate::crypto::agefile::encrypt(
        &[to],
        &mut &dek.expose()[..],
        &mut wrapped,
        false,
        &mut |_| {},
    )?;
    let grant_signature = owner
        .sign(&grant_message(row, recipient_id, created_at))
        .to_vec();
    let signature = owner
        .sign(&share_message(
            row,
            recipient_id,
            &recipient.fingerprint(),
            &wrapped,
            created_at,
        ))
        .to_vec();
    Ok(RecordShare {
        id: 0,
        record_id: row.id,
        record_token: row.token.clone(),
        owner_id: row.owner_id,
        recipient_id,
        version: row.version,
        wrapped_dek: wrapped,
        signature,
        grant_signature,
        created_at,
    })
}

/// Wraps a record's new data key for every user it is shared with, each checked against
/// the owner's pins. Called on every write of the record's value. A share that fails its
/// checks (not signed by the owner, a recipient never pinned, a changed key) refuses the
/// write (exit 7), or, with `ended` (an unshare, which must complete), is ended and named
/// there; a share row set that is not the one the record binds then ends every share.
pub(crate) fn reshare(
    tx: &mut dyn Tx,
    session: &Session,
    row: &mut RecordRow,
    dek: &Key32,
    mut ended: Option<&mut Vec<String>>,
) -> Result<()> {
    let shares = shares_of(tx, row.id)?;
    if let Err(e) = check_share_set(row, &shares) {
        let Some(ended) = ended.as_deref_mut() else {
            return Err(e);
        };
        tx.delete_record_shares(row.id, None)?;
        ended.push("*".into());
        row.share_digest = None;
        tx.update_record(row)?;
        return Ok(());
    }
    if shares.is_empty() {
        return Ok(());
    }
    let (me, _) = own_keypair(tx, session)?;
    let mut dropped = false;
    for old in shares {
        let recipient = tx.user_by_id(old.recipient_id)?;
        // A disabled recipient's share is suspended: it keeps the version it had, and
        // gets nothing new until the account is enabled and the record shared again.
        if recipient
            .as_ref()
            .is_some_and(|r| r.status != UserStatus::Active)
        {
            continue;
        }
        let wrapped = (|| {
            // A row the owner never signed (a database writer's) gets no data key.
            if !grant_ok(me.public(), row, &old) {
                return Err(Error::Integrity(format!(
                    "record_shares row {} of record '{}' does not carry your signature: it \
                     was added outside zencrypt (restore the database from a backup)",
                    old.id,
                    row.name.as_deref().unwrap_or(&row.token)
                )));
            }
            let name = recipient
                .as_ref()
                .map(|r| r.username.clone())
                .ok_or_else(|| no_such_user(&format!("#{}", old.recipient_id)))?;
            let (user, keys, pinned_now) = pinned_keys(tx, session, &name)?;
            if pinned_now {
                // Every share pinned its recipient when it was made.
                return Err(Error::Integrity(format!(
                    "record '{}' is shared with '{}', whose key you never pinned: the share \
                     was added outside zencrypt",
                    row.name.as_deref().unwrap_or(&row.token),
                    user.username
                )));
            }
            make_share(&me, row, user.id, &keys, dek, old.created_at)
        })();
        match (wrapped, ended.as_deref_mut()) {
            (Ok(share), _) => {
                tx.put_record_share(&share)?;
            }
            (Err(e), None) => return Err(e),
            (Err(_), Some(ended)) => {
                tx.delete_record_shares(row.id, Some(old.recipient_id))?;
                ended.push(
                    recipient
                        .map(|r| r.username)
                        .unwrap_or_else(|| format!("#{}", old.recipient_id)),
                );
                dropped = true;
            }
        }
    }
    if dropped {
        row.share_digest = share_digest(&shares_of(tx, row.id)?);
        tx.update_record(row)?;
    }
    Ok(())
}

/// The digest of a record's share set (each grant's recipient and creation time), bound
/// in the record row: `None` for no shares.
fn share_digest(shares: &[RecordShare]) -> Option<Vec<u8>> {
    use sha2::{Digest as _, Sha256};
    if shares.is_empty() {
        return None;
    }
    let mut grants: Vec<(i64, i64)> = shares
        .iter()
        .map(|s| (s.recipient_id, s.created_at))
        .collect();
    grants.sort_unstable();
    let mut h = Sha256::new();
    h.update(b"zencrypt shares v1");
    for (recipient, created) in grants {
        h.update(recipient.to_be_bytes());
        h.update(created.to_be_bytes());
    }
    Some(h.finalize().to_vec())
}

/// Checks that the share rows of a record are the set its owner's bound row names: a row
/// added, or put back after it ended, behind the owner's back is refused.
fn check_share_set(row: &RecordRow, shares: &[RecordShare]) -> Result<()> {
    if share_digest(shares) == row.share_digest {
        return Ok(());
    }
    Err(Error::Integrity(format!(
        "the shares of record '{}' are not the ones you made: a share was added or put back \
         outside zencrypt (restore the database from a backup)",
        row.name.as_deref().unwrap_or(&row.token)
    )))
}

/// The share rows of a record.
fn shares_of(tx: &mut dyn Tx, record_id: i64) -> Result<Vec<RecordShare>> {
    Ok(tx.record_shares(&ShareFilter {
        record_id: Some(record_id),
        ..ShareFilter::default()
    })?)
}

/// Ends every share of a record (a delete: restoring does not share again), and records
/// in the row that it has none.
pub(crate) fn end_shares(tx: &mut dyn Tx, row: &mut RecordRow) -> Result<()> {
    tx.delete_record_shares(row.id, None)?;
    if row.share_digest.is_some() {
        row.share_digest = None;
        tx.update_record(row)?;
    }
    Ok(())
}

/// Ends the shares of `owner`'s records under key `key_id` whose key version is below
/// `below` (all of them with `i64::MAX`): a disabled, destroyed or no longer decrypting
/// key takes its records from their recipients too.
pub(crate) fn end_shares_of_key(
    tx: &mut dyn Tx,
    owner: i64,
    key_id: i64,
    below: i64,
) -> Result<()> {
    let shares = tx.record_shares(&ShareFilter {
        owner_id: Some(owner),
        ..ShareFilter::default()
    })?;
    let mut done = std::collections::BTreeSet::new();
    for s in shares {
        if !done.insert(s.record_id) {
            continue;
        }
        if let Some(mut row) = tx.record_by_ref(owner, &s.record_token)?
            && row.key_id == Some(key_id)
            && row.key_version.is_some_and(|v| v < below)
        {
            end_shares(tx, &mut row)?;
        }
    }
    Ok(())
}

/// The owner and name of an `OWNER:NAME` reference.
fn split_reference(reference: &str) -> Option<(&str, &str)> {
    let (owner, name) = reference.split_once(':')?;
    (!owner.is_empty() && !name.is_empty()).then_some((owner, name))
}

/// Finds a record shared with the session user by `OWNER:NAME` or by its token, checks
/// the owner's signature (the owner's key pinned like any other) and opens it. `None` when
/// there is no such share (or the record is deleted or expired: its shares end with it).
pub(crate) fn read_shared(
    tx: &mut dyn Tx,
    session: &Session,
    reference: &str,
) -> Result<Option<(RecordInfo, Zeroizing<Vec<u8>>)>> {
    let found = match split_reference(reference) {
        Some((owner_name, name)) => {
            let Some(owner) = tx
                .user_by_name(owner_name)?
                .filter(|u| u.role != Role::Service)
            else {
                return Ok(None);
            };
            let Some(row) = tx.shared_record(owner.id, name)? else {
                return Ok(None);
            };
            if row.name.as_deref() != Some(name) {
                // A token after the colon is not a name.
                return Ok(None);
            }
            let share = tx
                .record_shares(&ShareFilter {
                    record_id: Some(row.id),
                    recipient_id: Some(session.user_id.0),
                    ..ShareFilter::default()
                })?
                .into_iter()
                .next();
            share.map(|s| (owner, row, s))
        }
        None => {
            let mine = tx.record_shares(&ShareFilter {
                recipient_id: Some(session.user_id.0),
                ..ShareFilter::default()
            })?;
            let Some(s) = mine.into_iter().find(|s| s.record_token == reference) else {
                return Ok(None);
            };
            let owner = tx
                .user_by_id(s.owner_id)?
                .ok_or_else(|| no_such_user(&format!("#{}", s.owner_id)))?;
            let Some(row) = tx.shared_record(owner.id, &s.record_token)? else {
                return Ok(None);
            };
            Some((owner, row, s))
        }
    };
    let Some((owner, row, share)) = found else {
        return Ok(None);
    };
    if owner.status != UserStatus::Active {
        return Err(Error::Conflict(format!(
            "'{}' is disabled: what they shared is suspended until an administrator enables \
             the account",
            owner.username
        )));
    }
    if row.deleted_at.is_some() || crate::records::is_expired(&row, crate::duration::now()) {
        return Ok(None);
    }
    let dek = open_share(tx, session, &owner, &row, &share)?;
    let value = crate::records::open_value(&row, &dek)?;
    crate::records::usage(
        tx,
        session,
        &row,
        crate::events::UsageOp::DataGet,
        value.len(),
    )?;
    let mut info = crate::records::record_info(&row, None);
    info.owner = Some(owner.username.clone());
    Ok(Some((info, value)))
}

/// Checks a share with the owner's pinned signing key and opens its data key with the
/// session user's keypair.
fn open_share(
    tx: &mut dyn Tx,
    session: &Session,
    owner: &UserRecord,
    row: &RecordRow,
    share: &RecordShare,
) -> Result<Key32> {
    let forged = || {
        Error::Integrity(format!(
            "the share of '{}:{}' does not carry {}'s valid signature: it was changed outside zencrypt",
            owner.username,
            row.name.as_deref().unwrap_or(&row.token),
            owner.username
        ))
    };
    if share.owner_id != owner.id || share.owner_id != row.owner_id {
        return Err(forged());
    }
    if share.version != row.version {
        return Err(Error::Integrity(format!(
            "the share of '{}:{}' opens version {}, not the current version {}: it was \
             suspended while your account was disabled, or put back outside zencrypt; ask {} \
             to share it again",
            owner.username,
            row.name.as_deref().unwrap_or(&row.token),
            share.version,
            row.version,
            owner.username
        )));
    }
    let (me, _) = own_keypair(tx, session)?;
    let message = share_message(
        row,
        session.user_id.0,
        &me.public().fingerprint(),
        &share.wrapped_dek,
        share.created_at,
    );
    // The owner's key is pinned on first use only once the share verifies under it.
    let (_, owner_keys, _) = pinned_keys_if(tx, session, &owner.username, |k| {
        k.verifies(&message, &share.signature)
    })?;
    if !owner_keys.verifies(&message, &share.signature) {
        return Err(forged());
    }
    let mut dek = Zeroizing::new(Vec::with_capacity(32));
    crate::crypto::agefile::decrypt(
        &[me.identity()],
        &mut &share.wrapped_dek[..],
        &mut *dek,
        &mut |_| {},
    )
    .map_err(|_| forged())?;
    Key32::from_slice(&dek).ok_or_else(forged)
}

impl Vault {
    /// Shares one of the session user's records with `with`: its data key wrapped to
    /// their pinned key, signed. Protected records cannot be shared (exit 6). With
    /// `confirmed`, the fingerprint the user was shown and confirmed, a key that changed
    /// meanwhile is refused (exit 7).
    pub fn data_share(
        &mut self,
        session: &Session,
        reference: &str,
        with: &str,
        confirmed: Option<Fingerprint>,
    ) -> Result<Shared> {
        let target = format!("{reference} -> {with}");
        self.authorized(session, Permission::Own, AuditAction::DataShare, &target, |tx| {
            let row = crate::records::load_readable(tx, session.user_id, reference)?;
            if row.identity_id.is_some() {
                return Err(Error::Conflict(format!(
                    "record '{reference}' is protected by a record password and cannot be shared: \
                     its data key opens only with that password, which never leaves your client"
                )));
            }
            let (user, keys, pinned_now) = pinned_keys(tx, session, with)?;
            if let Some(shown) = confirmed
                && shown != keys.fingerprint()
            {
                return Err(Error::Integrity(format!(
                    "the key of '{}' is now {}, not the {shown} you confirmed: nothing was shared",
                    user.username,
                    keys.fingerprint()
                )));
            }
            if user.id == session.user_id.0 {
                return Err(Error::Usage("a record is yours already: share it with someone else".into()));
            }
            let all = shares_of(tx, row.id)?;
            check_share_set(&row, &all)?;
            if all.iter().any(|s| s.recipient_id == user.id) {
                return Err(Error::Conflict(format!(
                    "record '{reference}' is already shared with {}",
                    user.username
                )));
            }
            let mut ring = crate::records::Keyring::new(session, None);
            let dek = ring.dek(tx, session, &row)?;
            let mut row = row;
            if row.value_hash.is_none() {
                // A record from before value hashes: bind its ciphertext now, once it
                // opened under the owner's own key.
                crate::records::open_value(&row, &dek)?;
                row.value_hash = Some(crate::records::value_hash(&row.ciphertext));
                tx.update_record(&row)?;
            }
            let (me, _) = own_keypair(tx, session)?;
            let share = make_share(&me, &row, user.id, &keys, &dek, crate::duration::now())?;
            tx.put_record_share(&share)?;
            row.share_digest = share_digest(&shares_of(tx, row.id)?);
            tx.update_record(&row)?;
            let fp = keys.fingerprint();
            let detail = json!({
                "record": row.token,
                "with": user.username,
                "fingerprint": fp.to_string(),
                "pinned_now": pinned_now,
            });
            let out = Shared {
                token: row.token.clone(),
                name: row.name.clone(),
                with: user.username.clone(),
                fingerprint: fp,
                pinned_now,
            };
            Ok((out, detail))
        })
    }

    /// Ends a record's share with `from` and re-encrypts the record under a new data key
    /// (a new version, the same value), wrapped again for the recipients that remain:
    /// a former recipient who kept the old data key cannot read later versions. It always
    /// completes: a share that cannot be wrapped for any more ends too (named in the
    /// outcome), a share set changed outside zencrypt ends every share, and a record
    /// whose key may no longer encrypt (expired) loses the share without a new version.
    pub fn data_unshare(
        &mut self,
        session: &Session,
        reference: &str,
        from: &str,
    ) -> Result<Unshared> {
        let target = format!("{reference} -> {from}");
        let history = self.policy.history;
        self.authorized(
            session,
            Permission::Own,
            AuditAction::DataUnshare,
            &target,
            |tx| {
                let mut row = tx
                    .record_by_ref(session.user_id.0, reference)?
                    .ok_or_else(|| crate::records::not_found(reference))?;
                let user = tx.user_by_name(from)?.ok_or_else(|| no_such_user(from))?;
                let all = shares_of(tx, row.id)?;
                if !all.iter().any(|s| s.recipient_id == user.id) {
                    return Err(Error::NotFound(format!(
                        "record '{reference}' is not shared with {}",
                        user.username
                    )));
                }
                let mut out = Unshared {
                    version: row.version,
                    reencrypted: false,
                    also_ended: Vec::new(),
                    all_ended: false,
                };
                if check_share_set(&row, &all).is_err() {
                    tx.delete_record_shares(row.id, None)?;
                    out.all_ended = true;
                } else {
                    tx.delete_record_shares(row.id, Some(user.id))?;
                }
                row.share_digest = share_digest(&shares_of(tx, row.id)?);
                let key_can_encrypt = match row.key_id {
                    Some(k) => tx.key_by_id(session.user_id.0, k)?.is_some_and(|k| {
                        crate::keys::ensure_usable(&k).is_ok()
                            && k.expires_at.is_none_or(|e| crate::duration::now() < e)
                    }),
                    None => false,
                };
                if row.deleted_at.is_some() || !key_can_encrypt {
                    tx.update_record(&row)?;
                } else {
                    let mut ring = crate::records::Keyring::new(session, None);
                    ring.ended_shares = Some(Vec::new());
                    let dek = ring.dek(tx, session, &row)?;
                    let value = crate::records::open_value(&row, &dek)?;
                    let row =
                        crate::records::update_in(tx, session, &mut ring, row, &value, history)?;
                    out.version = row.version;
                    out.reencrypted = true;
                    for name in ring.ended_shares.take().unwrap_or_default() {
                        if name == "*" {
                            out.all_ended = true;
                        } else {
                            out.also_ended.push(name);
                        }
                    }
                }
                let detail = json!({
                    "from": user.username,
                    "version": out.version,
                    "reencrypted": out.reencrypted,
                    "also_ended": out.also_ended,
                    "all_ended": out.all_ended,
                });
                Ok((out.clone(), detail))
            },
        )
    }

    /// The session user's records shared with others, one entry per recipient.
    pub fn shares_by_me(&mut self, session: &Session) -> Result<Vec<ShareInfo>> {
        self.authorized(
            session,
            Permission::Own,
            AuditAction::DataList,
            "--shared",
            |tx| {
                let shares = tx.record_shares(&ShareFilter {
                    owner_id: Some(session.user_id.0),
                    ..ShareFilter::default()
                })?;
                let mut out = Vec::new();
                let (me, _) = own_keypair(tx, session)?;
                for s in shares {
                    let Some(row) = tx.record_by_ref(session.user_id.0, &s.record_token)? else {
                        continue;
                    };
                    if !grant_ok(me.public(), &row, &s)
                        || share_digest(&shares_of(tx, row.id)?) != row.share_digest
                    {
                        continue;
                    }
                    let with = tx
                        .user_by_id(s.recipient_id)?
                        .map(|u| u.username)
                        .unwrap_or_else(|| format!("#{}", s.recipient_id));
                    out.push(ShareInfo {
                        token: row.token,
                        name: row.name,
                        with,
                        since: s.created_at,
                    });
                }
                let n = out.len();
                Ok((out, json!({ "shared": n })))
            },
        )
    }

    /// The records others shared with the session user (each share's signature checked).
    pub fn shares_with_me(&mut self, session: &Session) -> Result<Vec<SharedWithMe>> {
        self.authorized(
            session,
            Permission::Own,
            AuditAction::DataList,
            "--shared-with-me",
            |tx| {
                let shares = tx.record_shares(&ShareFilter {
                    recipient_id: Some(session.user_id.0),
                    ..ShareFilter::default()
                })?;
                let mut out = Vec::new();
                for s in shares {
                    let Some(owner) = tx.user_by_id(s.owner_id)? else {
                        continue;
                    };
                    if owner.status != UserStatus::Active {
                        continue;
                    }
                    let Some(row) = tx.shared_record(owner.id, &s.record_token)? else {
                        continue;
                    };
                    if row.deleted_at.is_some()
                        || crate::records::is_expired(&row, crate::duration::now())
                    {
                        continue;
                    }
                    // A share that does not verify is not listed (reading it says why); an
                    // owner whose key changed is said at once.
                    match open_share(tx, session, &owner, &row, &s) {
                        Ok(_) => {}
                        Err(e @ Error::KeyChanged { .. }) => return Err(e),
                        Err(_) => continue,
                    }
                    out.push(SharedWithMe {
                        owner: owner.username,
                        token: row.token,
                        name: row.name,
                        version: row.version,
                        since: s.created_at,
                    });
                }
                let n = out.len();
                Ok((out, json!({ "shared_with_me": n })))
            },
        )
    }
}

// ---- Named keys shared with other users ------------------------------------------------

/// What `key share` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyShared {
    /// The key's name.
    pub name: String,
    /// The recipient.
    pub with: String,
    /// The recipient's fingerprint, as pinned.
    pub fingerprint: Fingerprint,
    /// Whether the recipient's key was pinned just now.
    pub pinned_now: bool,
    /// The versions given (every version that may still decrypt).
    pub versions: Vec<i64>,
}

/// The grant the owner signs once per shared key: who may decrypt with which key.
fn key_grant_message(key_id: i64, owner_id: i64, recipient_id: i64, created_at: i64) -> Vec<u8> {
    Aad::new("zencrypt key grant v1")
        .int(key_id)
        .int(owner_id)
        .int(recipient_id)
        .field("decrypt")
        .int(created_at)
        .as_bytes()
        .to_vec()
}

/// What the owner signs per shared version.
fn key_share_message(s: &KeyShare, recipient: &Fingerprint) -> Vec<u8> {
    use sha2::{Digest as _, Sha256};
    Aad::new("zencrypt key share v1")
        .int(s.key_id)
        .field(&s.key_name)
        .int(s.owner_id)
        .int(s.recipient_id)
        .field(recipient.0)
        .int(s.version)
        .field(Sha256::digest(&s.wrapped_material))
        .int(s.created_at)
        .as_bytes()
        .to_vec()
}

/// The digest of a key's grants (recipient and creation time), bound in the key row.
fn key_share_digest(shares: &[KeyShare]) -> Option<Vec<u8>> {
    use sha2::{Digest as _, Sha256};
    let mut grants: Vec<(i64, i64)> = shares
        .iter()
        .map(|s| (s.recipient_id, s.created_at))
        .collect();
    grants.sort_unstable();
    grants.dedup();
    if grants.is_empty() {
        return None;
    }
    let mut h = Sha256::new();
    h.update(b"zencrypt key shares v1");
    for (recipient, created) in grants {
        h.update(recipient.to_be_bytes());
        h.update(created.to_be_bytes());
    }
    Some(h.finalize().to_vec())
}

fn key_shares_changed(key: &KeyRecord) -> Error {
    Error::Integrity(format!(
        "the shares of key '{}' are not the ones you made: a share was added or put back \
         outside zencrypt (restore the database from a backup)",
        key.name
    ))
}

/// Wraps one version's material for a recipient and signs it.
fn make_key_share(
    owner: &Keypair,
    key: &KeyRecord,
    version: i64,
    material: &Key32,
    recipient_id: i64,
    recipient: &PublicKeys,
    created_at: i64,
) -> Result<KeyShare> {
    let to = recipient.age_recipient().ok_or_else(|| {
        Error::Integrity(format!(
            "the public key of user {recipient_id} is not a valid age recipient"
        ))
    })?;
    let mut wrapped = Vec::with_capacity(256);
    crate::crypto::agefile::encrypt(
        &[to],
        &mut &material.expose()[..],
        &mut wrapped,
        false,
        &mut |_| {},
    )?;
    let mut share = KeyShare {
        id: 0,
        key_id: key.id,
        key_name: key.name.clone(),
        owner_id: key.owner_id,
        recipient_id,
        version,
        wrapped_material: wrapped,
        signature: Vec::new(),
        grant_signature: owner
            .sign(&key_grant_message(
                key.id,
                key.owner_id,
                recipient_id,
                created_at,
            ))
            .to_vec(),
        created_at,
    };
    share.signature = owner
        .sign(&key_share_message(&share, &recipient.fingerprint()))
        .to_vec();
    Ok(share)
}

/// Wraps a key's new version for everyone the key is shared with (at its rotation),
/// each grant checked against the key row and the owner's signature and pins; a share
/// that fails refuses the rotation (exit 7).
pub(crate) fn reshare_key(
    tx: &mut dyn Tx,
    session: &Session,
    key: &KeyRecord,
    version: i64,
    material: &Key32,
) -> Result<()> {
    let shares = tx.key_shares(Some(key.id), None)?;
    if key_share_digest(&shares) != key.share_digest {
        return Err(key_shares_changed(key));
    }
    if shares.is_empty() {
        return Ok(());
    }
    let (me, _) = own_keypair(tx, session)?;
    let mut grants: Vec<&KeyShare> = Vec::new();
    for s in &shares {
        if grants
            .last()
            .is_none_or(|g| g.recipient_id != s.recipient_id)
        {
            grants.push(s);
        }
    }
    for g in grants {
        if g.owner_id != key.owner_id
            || !me.public().verifies(
                &key_grant_message(key.id, key.owner_id, g.recipient_id, g.created_at),
                &g.grant_signature,
            )
        {
            return Err(key_shares_changed(key));
        }
        let Some(recipient) = tx.user_by_id(g.recipient_id)? else {
            return Err(key_shares_changed(key));
        };
        if recipient.status != UserStatus::Active {
            continue;
        }
        let (user, keys, pinned_now) = pinned_keys(tx, session, &recipient.username)?;
        if pinned_now {
            return Err(key_shares_changed(key));
        }
        let share = make_key_share(&me, key, version, material, user.id, &keys, g.created_at)?;
        tx.put_key_share(&share)?;
    }
    Ok(())
}

/// Ends the shares of a key: all of them (disabled, destroyed), or the versions below
/// `below` (a raised minimum decryption version). The caller writes the key row.
pub(crate) fn end_key_shares(
    tx: &mut dyn Tx,
    key: &mut KeyRecord,
    below: Option<i64>,
) -> Result<()> {
    // Grants that are not the set the key row binds (put back, added) all end: no new
    // digest is ever made from rows that were not checked.
    let all = tx.key_shares(Some(key.id), None)?;
    let below = if key_share_digest(&all) == key.share_digest {
        below
    } else {
        None
    };
    tx.delete_key_shares(key.id, None, below)?;
    key.share_digest = key_share_digest(&tx.key_shares(Some(key.id), None)?);
    Ok(())
}

/// The material of a key version shared with the session user, for decrypting a file
/// whose header names `key_id` and `version`: the owner's signature checked with their
/// pinned key, the material opened with the session user's keypair. Returns the key's
/// display name (`OWNER:NAME`), the owner and the material; `None` when nothing of the
/// kind is shared with the user.
pub(crate) fn shared_key_material(
    tx: &mut dyn Tx,
    session: &Session,
    key_id: i64,
    version: i64,
) -> Result<Option<(String, UserId, Key32)>> {
    let Some(share) = tx
        .key_shares(Some(key_id), Some(session.user_id.0))?
        .into_iter()
        .find(|s| s.version == version)
    else {
        return Ok(None);
    };
    let Some(owner) = tx.user_by_id(share.owner_id)? else {
        return Ok(None);
    };
    if owner.status != UserStatus::Active {
        return Err(Error::Conflict(format!(
            "'{}' is disabled: what they shared is suspended until an administrator enables \
             the account",
            owner.username
        )));
    }
    // Names shown to the reader are checked like any name (no control characters, no
    // look-alike tricks beyond what a valid name allows).
    if crate::keys::validate_name(&share.key_name).is_err()
        || !crate::accounts::is_valid_name(&owner.username)
    {
        return Err(Error::Integrity(format!(
            "the share of key #{} carries a name that is not valid: it was changed outside \
             zencrypt",
            share.key_id
        )));
    }
    let (me, _) = own_keypair(tx, session)?;
    let message = key_share_message(&share, &me.public().fingerprint());
    let (_, owner_keys, _) = pinned_keys_if(tx, session, &owner.username, |k| {
        k.verifies(&message, &share.signature)
    })?;
    let forged = || {
        Error::Integrity(format!(
            "the shared key '{}:{}' does not carry {}'s valid signature: it was changed \
             outside zencrypt",
            owner.username, share.key_name, owner.username
        ))
    };
    if !owner_keys.verifies(&message, &share.signature) {
        return Err(forged());
    }
    let mut material = Zeroizing::new(Vec::with_capacity(32));
    crate::crypto::agefile::decrypt(
        &[me.identity()],
        &mut &share.wrapped_material[..],
        &mut *material,
        &mut |_| {},
    )
    .map_err(|_| forged())?;
    let material = Key32::from_slice(&material).ok_or_else(forged)?;
    Ok(Some((
        format!("{}:{}", owner.username, share.key_name),
        UserId(owner.id),
        material,
    )))
}

impl Vault {
    /// Shares one of the session user's named keys with `with`: every version that may
    /// still decrypt, wrapped to their pinned key and signed; later versions follow at each
    /// rotation. They can decrypt files encrypted under the key, not encrypt with it.
    pub fn key_share(
        &mut self,
        session: &Session,
        name: &str,
        with: &str,
        confirmed: Option<Fingerprint>,
    ) -> Result<KeyShared> {
        let target = format!("{name} -> {with}");
        self.authorized(session, Permission::Own, AuditAction::KeyShare, &target, |tx| {
            let mut key = crate::keys::load(tx, session.user_id, name)?;
            crate::keys::ensure_usable(&key)?;
            let all = tx.key_shares(Some(key.id), None)?;
            if key_share_digest(&all) != key.share_digest {
                return Err(key_shares_changed(&key));
            }
            let (user, keys, pinned_now) = pinned_keys(tx, session, with)?;
            if user.id == session.user_id.0 {
                return Err(Error::Usage("the key is yours already: share it with someone else".into()));
            }
            if let Some(shown) = confirmed
                && shown != keys.fingerprint()
            {
                return Err(Error::Integrity(format!(
                    "the key of '{}' is now {}, not the {shown} you confirmed: nothing was shared",
                    user.username,
                    keys.fingerprint()
                )));
            }
            if all.iter().any(|s| s.recipient_id == user.id) {
                return Err(Error::Conflict(format!(
                    "key '{name}' is already shared with {}",
                    user.username
                )));
            }
            let (me, _) = own_keypair(tx, session)?;
            let now = crate::duration::now();
            let mut versions = Vec::new();
            for v in key.min_decrypt_version.max(1)..=key.latest_version {
                let material = crate::keys::material(
                    tx,
                    &session.user_key,
                    &key,
                    crate::ids::KeyVersion(v),
                )?;
                let share = make_key_share(&me, &key, v, &material, user.id, &keys, now)?;
                tx.put_key_share(&share)?;
                versions.push(v);
            }
            key.share_digest = key_share_digest(&tx.key_shares(Some(key.id), None)?);
            tx.update_key(&key)?;
            let fp = keys.fingerprint();
            let detail = json!({
                "with": user.username,
                "fingerprint": fp.to_string(),
                "versions": versions,
                "pinned_now": pinned_now,
            });
            Ok((
                KeyShared {
                    name: key.name.clone(),
                    with: user.username.clone(),
                    fingerprint: fp,
                    pinned_now,
                    versions,
                },
                detail,
            ))
        })
    }

    /// Ends a key's share with `from`: the versions given are taken back and no later
    /// version is wrapped for them. Returns how many versions were taken back. It always
    /// completes; grants changed outside zencrypt end every share of the key.
    pub fn key_unshare(
        &mut self,
        session: &Session,
        name: &str,
        from: &str,
    ) -> Result<(u64, bool)> {
        let target = format!("{name} -> {from}");
        self.authorized(
            session,
            Permission::Own,
            AuditAction::KeyUnshare,
            &target,
            |tx| {
                let mut key = crate::keys::load(tx, session.user_id, name)?;
                let user = tx.user_by_name(from)?.ok_or_else(|| no_such_user(from))?;
                let all = tx.key_shares(Some(key.id), None)?;
                if !all.iter().any(|s| s.recipient_id == user.id) {
                    return Err(Error::NotFound(format!(
                        "key '{name}' is not shared with {}",
                        user.username
                    )));
                }
                let tampered = key_share_digest(&all) != key.share_digest;
                let n = if tampered {
                    tx.delete_key_shares(key.id, None, None)?
                } else {
                    tx.delete_key_shares(key.id, Some(user.id), None)?
                };
                key.share_digest = key_share_digest(&tx.key_shares(Some(key.id), None)?);
                tx.update_key(&key)?;
                let detail = json!({ "from": user.username, "versions": n, "all_ended": tampered });
                Ok(((n, tampered), detail))
            },
        )
    }
}
