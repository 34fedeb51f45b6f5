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
//!
//! Shared records are in `records`, shared keys in `keys`; both build on the keypairs and
//! pins here.

use std::collections::BTreeMap;

use serde_json::json;

use crate::authz::Permission;
use crate::crypto::keypair::{FINGERPRINT_LEN, Fingerprint, Keypair, PublicKeys};
use crate::crypto::{Aad, Key32, aead};
use crate::error::{Error, Result};
use crate::events::AuditAction;
use crate::ids::UserId;
use crate::model::{
    Grantee, KeyRecord, KeyShare, RecordRow, RecordShare, Role, ShareFilter, UserKeys, UserRecord,
    UserStatus,
};
use crate::records::RecordInfo;
use crate::storage::Tx;
use crate::vault::{Session, Vault};
use zeroize::Zeroizing;

mod grantees;
mod groups;
mod keys;
mod offboarding;
mod records;
mod transfers;
mod writes;

use grantees::{
    Wrapping, current_target, grantee_name, named_grantee, new_target, opener, own_target,
};
pub(crate) use groups::rekey_group_shares;
pub use groups::{
    GroupInfo, GroupOffer, GroupReceived, GroupSummary, HandoverChain, MemberAdded, MemberRemoved,
};

pub use keys::KeyShared;
pub(crate) use keys::{
    can_reshare_key, end_key_shares, reshare_key, shared_key_material, shared_key_to_encrypt,
};
pub use offboarding::Removed;
pub(crate) use offboarding::is_removed;
pub use records::{ShareInfo, Shared, SharedWithMe, Unshared};
pub(crate) use records::{end_shares, end_shares_of_key, read_shared, reshare};
pub(crate) use transfers::cancel_transfer;
pub use transfers::{Receipt, Received, Transferred};
pub(crate) use writes::{take_writes, write_shared};

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

    /// What a group's pin holds in place of a fingerprint: the id of the user who
    /// manages it (the manager's own key is pinned under their user id), how many times
    /// it had been handed over and the highest epoch of its keypair seen. (Pins written
    /// before hand-overs held the epoch in all eight bytes after the manager: the same
    /// bytes, with no hand-over.)
    fn group_mark(manager_id: i64, handovers: u32, epoch: i64) -> Fingerprint {
        let mut mark = [0u8; FINGERPRINT_LEN];
        mark[..8].copy_from_slice(&manager_id.to_be_bytes());
        mark[8..12].copy_from_slice(&handovers.to_be_bytes());
        let epoch = u32::try_from(epoch).unwrap_or(u32::MAX);
        mark[12..].copy_from_slice(&epoch.to_be_bytes());
        Fingerprint(mark)
    }

    /// The manager id, hand-over count and epoch of a group's pin.
    fn group_mark_parts(mark: &Fingerprint) -> (i64, u32, i64) {
        let (manager, rest) = mark.0.split_at(8);
        let (handovers, epoch) = rest.split_at(4);
        (
            i64::from_be_bytes(manager.try_into().unwrap_or_default()),
            u32::from_be_bytes(handovers.try_into().unwrap_or_default()),
            i64::from(u32::from_be_bytes(epoch.try_into().unwrap_or_default())),
        )
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

/// What reading something a disabled user shared says.
fn suspended(owner: &str) -> Error {
    Error::Conflict(format!(
        "'{owner}' is disabled: what they shared is suspended until an administrator enables \
         the account"
    ))
}

/// A stored public key that is not an age recipient.
fn not_a_recipient(user_id: i64) -> Error {
    Error::Integrity(format!(
        "the public key of user {user_id} is not a valid age recipient"
    ))
}

/// Wraps a 32-byte key to an age recipient.
fn wrap_key_to_recipient(to: &age::x25519::Recipient, key: &Key32) -> Result<Vec<u8>> {
    crate::crypto::keypair::wrap_key_to_age(to, key)
        .ok_or_else(|| Error::Integrity("a key could not be wrapped to its recipient".into()))
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
    pinned_keys_if(tx, session, name, |_, _| Ok(()))
}

/// Another user's public keys as the session user pinned them, never pinning: for a
/// grant that pinned its recipient when it was made, a recipient not pinned means the
/// grant did not come from this client (`what` names the record or key, for the error).
pub(crate) fn known_keys(
    tx: &mut dyn Tx,
    session: &Session,
    name: &str,
    what: &str,
) -> Result<(UserRecord, PublicKeys)> {
    let (user, keys, _) = pinned_keys_if(tx, session, name, |user, _| {
        Err(Error::Integrity(format!(
            "{what} is shared with '{}', whose key you never pinned: the share was added \
             outside zencrypt",
            user.username
        )))
    })?;
    Ok((user, keys))
}

/// The fingerprint the session user pinned for user `id`, if any (nothing is pinned).
fn pinned_fingerprint(tx: &mut dyn Tx, session: &Session, id: i64) -> Result<Option<Fingerprint>> {
    let me = own_row(tx, session)?;
    let pins = Pins::load(&me, &session.user_key)?;
    Ok(pins.0.get(&id).map(|(_, fp)| *fp))
}

/// The check [`pinned_keys_if`] makes of a first-seen key that must have signed something:
/// refused, naming the user, when it did not.
fn signed(user: &UserRecord, verifies: bool) -> Result<()> {
    if verifies {
        return Ok(());
    }
    Err(Error::Integrity(format!(
        "what '{}' is said to have signed does not verify under their key: it was changed \
         outside zencrypt (their key was not pinned)",
        user.username
    )))
}

/// [`pinned_keys`], pinning a first-seen key only when `accept` allows it (a recipient
/// checks the owner's signature with it first, see [`signed`]); a key not accepted is
/// refused with `accept`'s error, and nothing is pinned.
fn pinned_keys_if(
    tx: &mut dyn Tx,
    session: &Session,
    name: &str,
    accept: impl FnOnce(&UserRecord, &PublicKeys) -> Result<()>,
) -> Result<(UserRecord, PublicKeys, bool)> {
    pinned_keys_of(tx, session, name, true, accept)
}

/// [`pinned_keys_if`] for a signer, whose signature counts whether or not their account is
/// still active (what a since-disabled owner signed while active stays theirs).
fn signer_keys_if(
    tx: &mut dyn Tx,
    session: &Session,
    name: &str,
    accept: impl FnOnce(&UserRecord, &PublicKeys) -> Result<()>,
) -> Result<(UserRecord, PublicKeys, bool)> {
    pinned_keys_of(tx, session, name, false, accept)
}

fn pinned_keys_of(
    tx: &mut dyn Tx,
    session: &Session,
    name: &str,
    active_only: bool,
    accept: impl FnOnce(&UserRecord, &PublicKeys) -> Result<()>,
) -> Result<(UserRecord, PublicKeys, bool)> {
    let target = tx
        .user_by_name(name)?
        .filter(|u| u.role != Role::Service)
        .ok_or_else(|| no_such_user(name))?;
    if active_only && target.status != UserStatus::Active {
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
            accept(&target, &keys.public)?;
            pins.0.insert(target.id, (target.username.clone(), fp));
            pins.store(tx, me, &session.user_key)?;
            Ok((target, keys.public, true))
        }
    }
}

/// A fingerprint as a user gives it: 32 hex digits as `user show` prints them (spaces and
/// colons ignored). A value that is not one is not repeated, not even in part: what was
/// pasted may be a secret.
pub fn parse_fingerprint(text: &str) -> Result<Fingerprint> {
    text.parse().map_err(|()| {
        Error::Usage(format!(
            "the value given ({} characters) is not a fingerprint (32 hex digits, as `user \
             show` prints them)",
            text.chars().count()
        ))
    })
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
        let given = parse_fingerprint(fingerprint)?;
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

    /// The age recipients of the named users and `@groups` (a group's current key, under
    /// its manager's signature), each checked against the session user's
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
                    if let Some(g) = groups::group_name(name) {
                        let group = groups::load_group(tx, session, g)?;
                        let id = PublicIdentity {
                            username: format!("@{}", group.row.name),
                            recipient: group.row.recipient.clone(),
                            fingerprint: group.fingerprint(),
                        };
                        out.push((id, group.recipient()?));
                        continue;
                    }
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

    /// The session user's age identities, to read age files addressed to them: their own
    /// key, then the keys (every epoch) of the groups they are a member of.
    pub fn age_identities(&mut self, session: &Session) -> Result<Vec<age::x25519::Identity>> {
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
                let mut out = vec![pair.identity().clone()];
                for (_, keys) in groups::my_groups(tx, session)? {
                    out.extend(keys.iter().map(|k| k.identity().clone()));
                }
                Ok((out, detail))
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

/// The digest of a set of grants (user or group, creation time, whether it allows
/// writing), bound in the record, key or group row they belong to: `None` for none.
/// `label` tells the kinds apart. A grant that allows writing adds a mark (read grants
/// hash as they did before write grants existed), so a write grant put back after the
/// owner narrowed it is refused.
fn grants_digest(
    label: &str,
    grants: impl Iterator<Item = (Grantee, i64, bool)>,
) -> Option<Vec<u8>> {
    use sha2::{Digest as _, Sha256};
    let mut grants: Vec<(Grantee, i64, bool)> = grants.map(|(g, at, w)| (g.who(), at, w)).collect();
    grants.sort_unstable();
    grants.dedup();
    if grants.is_empty() {
        return None;
    }
    let mut h = Sha256::new();
    h.update(label.as_bytes());
    for (to, created, write) in grants {
        match to {
            Grantee::User(id) => h.update(id.to_be_bytes()),
            Grantee::Group { id, .. } => {
                h.update(b"group");
                h.update(id.to_be_bytes());
            }
        }
        h.update(created.to_be_bytes());
        if write {
            h.update(b"write");
        }
    }
    Some(h.finalize().to_vec())
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
