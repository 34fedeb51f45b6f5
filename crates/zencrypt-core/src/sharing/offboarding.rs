//! Removing a user for good (docs/sharing.md, "Offboarding"): `user remove NAME` by an
//! administrator, once nothing others rely on is left with them (their shared records
//! transferred, their group memberships ended), then crypto-shredding what is left: the
//! wrapped user key, recovery key and keypair are wiped, so nothing of theirs opens again
//! for anyone, and their service accounts with them.

use super::*;
use crate::model::{Credentials, TransferFilter};

/// What `user remove` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// The user removed.
    pub username: String,
    /// Their service accounts, removed with them.
    pub services: Vec<String>,
    /// Their keys whose shares with others ended.
    pub keys_unshared: usize,
    /// Sessions ended.
    pub sessions_revoked: u64,
}

/// Whether a user row was removed: a person whose key-encryption salt is gone (every
/// person has one from sign-up, or from `user add`, on; service accounts never do).
pub(crate) fn is_removed(user: &UserRecord) -> bool {
    user.role != Role::Service && user.credentials.kek_salt.is_empty()
}

/// What must be handed over before `user` can be removed, one phrase each: records shared
/// with others (unless a transfer of them was taken in), transfers still waiting, and
/// group memberships.
fn blockers(tx: &mut dyn Tx, user: &UserRecord) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let shares = tx.record_shares(&ShareFilter {
        owner_id: Some(user.id),
        ..ShareFilter::default()
    })?;
    let transfers = tx.record_transfers(&TransferFilter {
        owner_id: Some(user.id),
        ..TransferFilter::default()
    })?;
    let mut seen = std::collections::BTreeSet::new();
    for s in &shares {
        if !seen.insert(s.record_id) {
            continue;
        }
        let row = tx.shared_record(user.id, &s.record_token)?;
        // Handed over: a transfer of the record's current version was taken in.
        let version = row.as_ref().map(|r| r.version);
        let taken = transfers.iter().any(|t| {
            t.record_id == s.record_id && t.taken_at.is_some() && Some(t.version) == version
        });
        if taken {
            continue;
        }
        let name = row
            .and_then(|r| r.name)
            .unwrap_or_else(|| s.record_token.clone());
        let with = grantee_name(tx, s.to)?;
        out.push(format!(
            "{}:{name} is shared with {with} (`data transfer {}:{name} --to USER` by its \
             owner or the group's manager, or `data unshare`)",
            user.username, user.username
        ));
    }
    for t in transfers.iter().filter(|t| t.taken_at.is_none()) {
        let to = grantee_name(tx, Grantee::User(t.recipient_id))?;
        out.push(format!(
            "record {} waits for {to} to take it in (`zencrypt data receive`)",
            t.record_token
        ));
    }
    for m in tx.group_members(None, Some(user.id))? {
        let Some(group) = tx.group_by_id(m.group_id)? else {
            continue;
        };
        if group.manager_id == user.id {
            out.push(format!(
                "they manage @{} (they hand it to a member with `group transfer {} --to USER`, \
                 who runs `group receive`)",
                group.name, group.name
            ));
        } else {
            let manager = grantee_name(tx, Grantee::User(group.manager_id))?;
            out.push(format!(
                "they are a member of @{} (its manager {manager} runs `group remove {} {}`)",
                group.name, group.name, user.username
            ));
        }
    }
    Ok(out)
}

/// Wipes what opens a user's data (see the module's documentation) and disables them.
fn shred(
    tx: &mut dyn Tx,
    mut user: UserRecord,
    params: crate::crypto::kdf::KdfParams,
) -> Result<()> {
    user.status = UserStatus::Disabled;
    user.credentials = Credentials {
        password_hash: crate::crypto::kdf::dummy_hash(params),
        kek_salt: Vec::new(),
        kek_params: params,
        wrapped_user_key: Vec::new(),
    };
    user.recovery = None;
    user.keys = None;
    user.pins = None;
    user.must_change_password = false;
    tx.update_user(&user)?;
    Ok(())
}

impl Vault {
    /// Removes a user for good (administrators only; see the module's documentation).
    /// Refused (exit 6) while records of theirs are shared and not transferred, a transfer
    /// of theirs waits, or they are in a group, naming each; for the last active admin;
    /// and for oneself.
    pub fn user_remove(&mut self, session: &Session, username: &str) -> Result<Removed> {
        let params = self.policy.kdf;
        self.require(
            session,
            Permission::Administer,
            AuditAction::UserRemove,
            username,
        )?;
        self.authorized(
            session,
            Permission::Administer,
            AuditAction::UserRemove,
            username,
            |tx| {
                let user = tx
                    .user_by_name(username)?
                    .ok_or_else(|| no_such_user(username))?;
                if user.role == Role::Service {
                    return Err(Error::Usage(format!(
                        "'{}' is a service account: its owner revokes its tokens (`zencrypt \
                         service revoke`), and it goes when its owner is removed",
                        user.username
                    )));
                }
                if user.id == session.user_id.0 {
                    return Err(Error::Usage(
                        "you cannot remove yourself: another admin can".into(),
                    ));
                }
                if is_removed(&user) {
                    return Err(Error::Conflict(format!(
                        "'{}' was removed already",
                        user.username
                    )));
                }
                if user.role == Role::Admin && user.status == UserStatus::Active {
                    crate::accounts::ensure_not_last_admin(tx, &user.username, "remove")?;
                }
                let blocking = blockers(tx, &user)?;
                if !blocking.is_empty() {
                    return Err(Error::Conflict(format!(
                        "cannot remove '{}' yet: {}",
                        user.username,
                        blocking.join("; ")
                    )));
                }
                let now = crate::duration::now();
                let mut revoked = tx.revoke_user_sessions(user.id, None, now)?;
                let mut services = Vec::new();
                for s in tx.list_users()? {
                    if s.role == Role::Service && s.owner_id == Some(user.id) {
                        revoked += tx.revoke_user_sessions(s.id, None, now)?;
                        tx.delete_service_record_keys(s.id, None)?;
                        services.push(s.username.clone());
                        shred(tx, s, params)?;
                    }
                }
                let mut keys = std::collections::BTreeSet::new();
                for s in tx.key_shares(None, None)? {
                    if s.owner_id == user.id {
                        keys.insert(s.key_id);
                    }
                }
                for &key_id in &keys {
                    tx.delete_key_shares(key_id, None, None)?;
                }
                for w in tx.record_writes(Some(user.id), None)? {
                    tx.delete_record_write(w.record_id)?;
                }
                // The shares of records that were handed over end: nothing of theirs stays
                // wrapped to anyone.
                let mut ended = std::collections::BTreeSet::new();
                for s in tx.record_shares(&ShareFilter {
                    owner_id: Some(user.id),
                    ..ShareFilter::default()
                })? {
                    if ended.insert(s.record_id) {
                        tx.delete_record_shares(s.record_id, None)?;
                    }
                }
                // Records handed to them that they never took in stay with their givers
                // (`data restore` takes them back).
                let to_them = tx.record_transfers(&TransferFilter {
                    recipient_id: Some(user.id),
                    waiting: true,
                    ..TransferFilter::default()
                })?;
                for t in &to_them {
                    tx.delete_record_transfer(t.record_id)?;
                }
                let name = user.username.clone();
                shred(tx, user, params)?;
                let out = Removed {
                    username: name,
                    services: services.clone(),
                    keys_unshared: keys.len(),
                    sessions_revoked: revoked,
                };
                let detail = json!({
                    "transfers_ended": to_them.len(),
                    "services": services,
                    "keys_unshared": keys.len(),
                    "revoked_sessions": revoked,
                });
                Ok((out, detail))
            },
        )
    }
}
