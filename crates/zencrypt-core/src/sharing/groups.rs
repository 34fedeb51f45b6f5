//! Groups (docs/sharing.md, "Groups"): a group is an X25519 keypair whose private key is
//! wrapped to each member's pinned key. Its manager (the user who made it) signs the group
//! row (name, public key, epoch, the digest of the member set) and each member row with
//! their Ed25519 key; whoever uses a group checks those signatures with the manager's
//! pinned key, and pins which user manages it. Removing a member replaces the keypair (a
//! new epoch): the earlier private keys travel sealed to the new one, so members keep
//! reading what is still wrapped to an earlier epoch, and each owner's client re-encrypts
//! what it shared with the group under new data keys (`rekey_group_shares`). A manager
//! may hand the group over to a member (`handover`).

use super::*;
use crate::crypto::keypair::{GroupKey, group_fingerprint};
use crate::model::{Grantee, GroupMember, GroupRow};

mod handover;

pub use handover::{GroupOffer, GroupReceived, HandoverChain};

/// A group as `group show` tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    /// The name, without the `@`.
    pub name: String,
    /// Who manages it.
    pub manager: String,
    /// The members, by name (the manager among them).
    pub members: Vec<String>,
    /// The epoch of the group's keypair (1, then +1 per removal).
    pub epoch: i64,
    /// The fingerprint of the group's public key.
    pub fingerprint: Fingerprint,
    /// The public key as an age recipient.
    pub recipient: String,
    /// Unix seconds it was made.
    pub created_at: i64,
    /// The member it is offered to (`group transfer`), until they take it over.
    pub offered_to: Option<String>,
}

/// One group as `group list` tells it (as the database has it; `group show` checks it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    /// The name, without the `@`.
    pub name: String,
    /// Who manages it.
    pub manager: String,
    /// How many members it has.
    pub members: usize,
    /// Whether the session user is one of them.
    pub member: bool,
    /// Whether the session user manages it.
    pub managed: bool,
}

/// What `group add` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberAdded {
    /// The group.
    pub group: String,
    /// The new member.
    pub user: String,
    /// Their fingerprint, as pinned.
    pub fingerprint: Fingerprint,
    /// Whether their key was pinned just now.
    pub pinned_now: bool,
}

/// What `group remove` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRemoved {
    /// The group.
    pub group: String,
    /// The former member.
    pub user: String,
    /// The epoch of the group's new keypair.
    pub epoch: i64,
    /// What the former member could read through the group (`OWNER:NAME`).
    pub could_read: Vec<String>,
    /// Of those, the manager's own records, re-encrypted now under new data keys.
    pub reencrypted: Vec<String>,
    /// Of those, other owners' records: re-encrypted at their owner's next command.
    pub pending: Vec<String>,
    /// Members who do not get the new keypair (a disabled account, or a key the manager
    /// has not pinned or that changed): suspended until added again.
    pub suspended: Vec<String>,
}

/// A `@name` reference: the group name, when `reference` names a group.
pub(crate) fn group_name(reference: &str) -> Option<&str> {
    reference.strip_prefix('@')
}

/// A group named with or without its `@` (`group` commands take either).
fn bare(name: &str) -> &str {
    group_name(name).unwrap_or(name)
}

/// Refuses a group named where a user must be: a group's members, and whoever manages
/// it, are users.
fn a_user(reference: &str) -> Result<&str> {
    if group_name(reference).is_some() {
        return Err(Error::Usage(format!(
            "'{}' is a group: a group's members and its manager are users",
            crate::text::printable(reference, 64)
        )));
    }
    Ok(reference)
}

fn no_such_group(name: &str) -> Error {
    Error::NotFound(format!("no group named '@{name}'"))
}

fn forged_group(name: &str) -> Error {
    Error::Integrity(format!(
        "group '@{name}' does not carry its manager's valid signature: it was changed outside \
         zencrypt (restore the database from a backup)"
    ))
}

/// The digest of a group's member set (user id, time added).
fn members_digest(members: &[GroupMember]) -> Vec<u8> {
    grants_digest(
        "zencrypt group members v1",
        members
            .iter()
            .map(|m| (Grantee::User(m.user_id), m.added_at, false)),
    )
    .unwrap_or_default()
}

/// What the manager signs for the group row (its hand-overs too, once there are any).
fn group_message(g: &GroupRow) -> Vec<u8> {
    use sha2::{Digest as _, Sha256};
    let purpose = if g.handovers.is_empty() {
        "zencrypt group v1"
    } else {
        "zencrypt group v2"
    };
    let a = Aad::new(purpose)
        .int(g.id)
        .field(&g.name)
        .int(g.manager_id)
        .field(&g.recipient)
        .int(g.epoch)
        .field(Sha256::digest(&g.history))
        .field(&g.members_digest)
        .int(g.created_at);
    let a = if g.handovers.is_empty() {
        a
    } else {
        a.field(&g.handovers)
    };
    a.as_bytes().to_vec()
}

/// What the manager signs for a member row: the group at its epoch, the member and the
/// key the group key is wrapped to.
fn member_message(g: &GroupRow, m: &GroupMember, member: &Fingerprint) -> Vec<u8> {
    use sha2::{Digest as _, Sha256};
    Aad::new("zencrypt group member v1")
        .int(g.id)
        .field(&g.name)
        .field(&g.recipient)
        .int(m.epoch)
        .int(m.user_id)
        .field(member.0)
        .field(Sha256::digest(&m.wrapped_identity))
        .int(m.added_at)
        .as_bytes()
        .to_vec()
}

/// A group row whose signature verified under its manager's pinned key, with its members.
pub(crate) struct Checked {
    pub(crate) row: GroupRow,
    pub(crate) members: Vec<GroupMember>,
    pub(crate) manager: UserRecord,
    manager_keys: PublicKeys,
    handovers: handover::Handovers,
}

impl Checked {
    /// The group as a share grantee, at its current epoch.
    pub(crate) fn grantee(&self) -> Grantee {
        Grantee::Group {
            id: self.row.id,
            epoch: self.row.epoch,
        }
    }

    /// The fingerprint of the group's current public key.
    pub(crate) fn fingerprint(&self) -> Fingerprint {
        group_fingerprint(&self.row.recipient)
    }

    /// The group's current public key, as an age recipient.
    pub(crate) fn recipient(&self) -> Result<age::x25519::Recipient> {
        crate::crypto::keypair::parse_recipient(&self.row.recipient)
            .ok_or_else(|| forged_group(&self.row.name))
    }

    /// Whether `user_id` is a member.
    pub(crate) fn has_member(&self, user_id: i64) -> bool {
        self.members.iter().any(|m| m.user_id == user_id)
    }

    /// Whether the manager signed `keys` as the key of `user_id`, a member at the group's
    /// current epoch (a member suspended at an older epoch is not).
    pub(crate) fn vouches_for(&self, user_id: i64, keys: &PublicKeys) -> bool {
        let fingerprint = keys.fingerprint();
        self.members.iter().any(|m| {
            m.user_id == user_id
                && m.epoch == self.row.epoch
                && self
                    .manager_keys
                    .verifies(&member_message(&self.row, m, &fingerprint), &m.signature)
        })
    }
}

/// Loads a group by name and checks it ([`check_group`]).
pub(crate) fn load_group(tx: &mut dyn Tx, session: &Session, name: &str) -> Result<Checked> {
    let row = tx.group_by_name(name)?.ok_or_else(|| no_such_group(name))?;
    check_group(tx, session, row)
}

/// Checks a group row: its manager is the user the session user's pins say manages it
/// (pinned on first use), the manager's key is pinned like any other, the row carries the
/// manager's signature and the member rows are the set it names.
pub(crate) fn check_group(tx: &mut dyn Tx, session: &Session, row: GroupRow) -> Result<Checked> {
    let manager = tx
        .user_by_id(row.manager_id)?
        .filter(|u| u.role != Role::Service)
        .ok_or_else(|| forged_group(&row.name))?;
    if manager.status != UserStatus::Active {
        return Err(Error::Conflict(format!(
            "group '@{}' is managed by '{}', who is disabled: the group is suspended until an \
             administrator enables the account",
            row.name, manager.username
        )));
    }
    let message = group_message(&row);
    // A group handed over names its manager's key in the last hand-over: a key first seen
    // here is pinned only when it is that one (and signed the row).
    let handovers = handover::handovers(&row)?;
    let named = handovers.done.last().map(|l| l.to_fingerprint);
    let manager_keys = if manager.id == session.user_id.0 {
        own_keypair(tx, session)?.0.public().clone()
    } else {
        pinned_keys_if(tx, session, &manager.username, |u, k| {
            signed(
                u,
                k.verifies(&message, &row.signature)
                    && named.is_none_or(|fp| fp == k.fingerprint()),
            )
        })?
        .1
    };
    if !manager_keys.verifies(&message, &row.signature) {
        return Err(forged_group(&row.name));
    }
    pin_manager(tx, session, &row, &handovers.done, &manager, &manager_keys)?;
    let members = tx.group_members(Some(row.id), None)?;
    if members_digest(&members) != row.members_digest {
        return Err(Error::Integrity(format!(
            "the members of group '@{}' are not the ones its manager signed: a member was added \
             or removed outside zencrypt (restore the database from a backup)",
            row.name
        )));
    }
    Ok(Checked {
        row,
        members,
        manager,
        manager_keys,
        handovers,
    })
}

/// Records, in the session user's pin set, which user manages a group, how many times it
/// was handed over and the highest epoch of its keypair seen, the first time the session
/// user relies on it; later a different manager not reached through hand-overs signed by
/// the one pinned, fewer hand-overs, an earlier epoch (a group rolled back to a key a
/// removed member held) or another group under a pinned name is refused: a database
/// writer can neither hand a group to an account of theirs nor bring back an old group
/// key or an earlier manager.
fn pin_manager(
    tx: &mut dyn Tx,
    session: &Session,
    group: &GroupRow,
    done: &[handover::Link],
    manager: &UserRecord,
    manager_keys: &PublicKeys,
) -> Result<()> {
    let me = own_row(tx, session)?;
    let mut pins = Pins::load(&me, &session.user_key)?;
    let label = format!("@{}", group.name);
    let changed = |what: &str| {
        Err(Error::Integrity(format!(
            "group '@{}' {what}: it was changed outside zencrypt (restore the database from a \
             backup)",
            group.name
        )))
    };
    if pins
        .0
        .iter()
        .any(|(id, (name, _))| *id < 0 && *id != -group.id && name.eq_ignore_ascii_case(&label))
    {
        return changed("is not the group of that name you used before");
    }
    let count = u32::try_from(done.len()).unwrap_or(u32::MAX);
    let mark = Pins::group_mark(manager.id, count, group.epoch);
    match pins.0.get(&-group.id) {
        Some((name, pinned)) => {
            let (pinned_manager, seen, pinned_epoch) = Pins::group_mark_parts(pinned);
            if *name != label {
                return changed(&format!("was called '{name}' when you used it before"));
            }
            if count < seen {
                return changed(&format!(
                    "was handed over {count} times, fewer than the {seen} you saw"
                ));
            }
            if pinned_manager != manager.id || count > seen {
                let pinned_fp = if pinned_manager == session.user_id.0 {
                    me.keys.as_ref().map(|k| k.public.fingerprint())
                } else {
                    pins.0.get(&pinned_manager).map(|(_, fp)| *fp)
                };
                let seen = usize::try_from(seen).unwrap_or(usize::MAX);
                if !handover::follows(
                    group,
                    done,
                    seen,
                    (pinned_manager, pinned_fp, pinned_epoch),
                    manager_keys,
                ) {
                    return changed(&format!(
                        "is now said to be managed by '{}', not by the user you knew",
                        manager.username
                    ));
                }
            }
            if group.epoch < pinned_epoch {
                return changed(&format!(
                    "holds the key of epoch {}, older than the epoch {pinned_epoch} you saw",
                    group.epoch
                ));
            }
            if *pinned != mark {
                pins.0.insert(-group.id, (label, mark));
                pins.store(tx, me, &session.user_key)?;
            }
            Ok(())
        }
        None => {
            pins.0.insert(-group.id, (label, mark));
            pins.store(tx, me, &session.user_key)
        }
    }
}

/// The session user's keys of a group (the current one, then those of earlier epochs),
/// from their member row, checked against the manager's signature. `None` when they are
/// not a member.
pub(crate) fn member_keys(
    tx: &mut dyn Tx,
    session: &Session,
    group: &Checked,
) -> Result<Option<Vec<GroupKey>>> {
    let Some(m) = group
        .members
        .iter()
        .find(|m| m.user_id == session.user_id.0)
    else {
        return Ok(None);
    };
    if m.epoch != group.row.epoch {
        return Err(Error::Conflict(format!(
            "your membership of group '@{}' is suspended (your account was disabled when the \
             group's key was replaced): ask {} to add you again",
            group.row.name, group.manager.username
        )));
    }
    let (me, _) = own_keypair(tx, session)?;
    let forged = || {
        Error::Integrity(format!(
            "your membership of group '@{}' does not carry its manager's valid signature: it \
             was changed outside zencrypt",
            group.row.name
        ))
    };
    if !group.manager_keys.verifies(
        &member_message(&group.row, m, &me.public().fingerprint()),
        &m.signature,
    ) {
        return Err(forged());
    }
    let current =
        GroupKey::unwrap(&me, &m.wrapped_identity, &group.row.recipient).ok_or_else(forged)?;
    let mut keys = current
        .open_history(&group.row.history)
        .ok_or_else(|| forged_group(&group.row.name))?;
    keys.insert(0, current);
    Ok(Some(keys))
}

/// Of a member's keys of a group ([`member_keys`]: the current one, then epochs 1, 2,
/// ...), the one of `epoch`.
pub(crate) fn key_of_epoch<'k>(
    group: &Checked,
    keys: &'k [GroupKey],
    epoch: i64,
) -> Option<&'k GroupKey> {
    if epoch < 1 || epoch > group.row.epoch {
        return None;
    }
    let at = if epoch == group.row.epoch { 0 } else { epoch };
    keys.get(usize::try_from(at).ok()?)
}

/// The groups the session user is a member of, checked, with their keys. A group that
/// fails its checks is left out (reading through it says why).
pub(crate) fn my_groups(
    tx: &mut dyn Tx,
    session: &Session,
) -> Result<Vec<(Checked, Vec<GroupKey>)>> {
    let mut out = Vec::new();
    for m in tx.group_members(None, Some(session.user_id.0))? {
        let Some(row) = tx.group_by_id(m.group_id)? else {
            continue;
        };
        // A group that fails its checks gives no key (reading through it says why); a
        // database that fails is said at once.
        let group = match check_group(tx, session, row) {
            Ok(group) => group,
            Err(e @ Error::Database { .. }) => return Err(e),
            Err(_) => continue,
        };
        match member_keys(tx, session, &group) {
            Ok(Some(keys)) => out.push((group, keys)),
            Ok(None) => {}
            Err(e @ Error::Database { .. }) => return Err(e),
            Err(_) => {}
        }
    }
    Ok(out)
}

/// Signs a member row for `user` with the group's current key wrapped to their pinned key.
fn make_member(
    manager: &Keypair,
    group: &GroupRow,
    key: &GroupKey,
    user_id: i64,
    user: &PublicKeys,
    added_at: i64,
) -> Result<GroupMember> {
    let wrapped = key.wrap_to(user).ok_or_else(|| not_a_recipient(user_id))?;
    let mut m = GroupMember {
        id: 0,
        group_id: group.id,
        user_id,
        epoch: group.epoch,
        wrapped_identity: wrapped,
        signature: Vec::new(),
        added_at,
    };
    m.signature = manager
        .sign(&member_message(group, &m, &user.fingerprint()))
        .to_vec();
    Ok(m)
}

/// Binds the member set in the group row and signs it.
fn sign_group(tx: &mut dyn Tx, manager: &Keypair, group: &mut GroupRow) -> Result<()> {
    group.members_digest = members_digest(&tx.group_members(Some(group.id), None)?);
    group.signature = manager.sign(&group_message(group)).to_vec();
    tx.put_group(group)?;
    Ok(())
}

/// The group, checked, when the session user manages it.
fn managed(tx: &mut dyn Tx, session: &Session, name: &str) -> Result<Checked> {
    let group = load_group(tx, session, name)?;
    if group.manager.id != session.user_id.0 {
        return Err(Error::NotManager {
            group: group.row.name.clone(),
            manager: group.manager.username.clone(),
        });
    }
    Ok(group)
}

/// Re-encrypts the session user's records shared with a group whose keypair changed since
/// the share was wrapped (a member was removed), under new data keys wrapped to the
/// group's current key: the former member's copy of the old group key opens nothing
/// written since. Only groups that pass their checks and whose epoch is newer than the
/// share's count; a record that cannot be re-encrypted loses the share with the replaced
/// key instead (see `records::reencrypt`). Returns the audit rows.
pub(crate) fn rekey_group_shares(
    tx: &mut dyn Tx,
    session: &Session,
    history: u32,
) -> Result<Vec<(AuditAction, serde_json::Value)>> {
    let shares = tx.record_shares(&ShareFilter {
        owner_id: Some(session.user_id.0),
        groups_only: true,
        ..ShareFilter::default()
    })?;
    let mut stale = Vec::new();
    for s in shares {
        let Grantee::Group { id, epoch } = s.to else {
            continue;
        };
        // Only a group that checks out (its manager active and pinned, its epoch not rolled
        // back) and whose key is newer than the share's is re-encrypted for; anything else
        // is left for the commands that report it.
        let Some(row) = tx.group_by_id(id)? else {
            continue;
        };
        if row.epoch <= epoch {
            continue;
        }
        match check_group(tx, session, row) {
            Ok(_) => stale.push(s),
            Err(e @ Error::Database { .. }) => return Err(e),
            Err(_) => {}
        }
    }
    let mut rows = Vec::new();
    for s in stale {
        let row = match tx.record_by_ref(session.user_id.0, &s.record_token) {
            Ok(Some(row)) => row,
            Ok(None) => continue,
            Err(e) => match Error::from(e) {
                e @ Error::Database { .. } => return Err(e),
                // A record that fails its check is reported by the commands that read it.
                _ => continue,
            },
        };
        // A record that cannot be re-encrypted loses its share with the replaced key (found
        // before anything is written); a failure while writing fails the command, and the
        // transaction leaves nothing half done.
        let out = super::records::reencrypt(tx, session, row, false, history)?;
        let detail = json!({
            "record": s.record_token,
            "version": out.version,
            "reencrypted": out.reencrypted,
            "also_ended": out.also_ended,
            "all_ended": out.all_ended,
        });
        rows.push((AuditAction::GroupRekey, detail));
    }
    Ok(rows)
}

impl Vault {
    /// Makes a group managed by the session user, who is its first member.
    pub fn group_create(&mut self, session: &Session, name: &str) -> Result<GroupInfo> {
        let name = bare(name);
        if !crate::accounts::is_valid_name(name) {
            return Err(Error::Usage(format!(
                "'{}' is not a valid group name: 1-64 characters from A-Z a-z 0-9 . _ -",
                crate::text::printable(name, 64)
            )));
        }
        self.authorized(
            session,
            Permission::Own,
            AuditAction::GroupCreate,
            name,
            |tx| {
                if tx.group_by_name(name)?.is_some() {
                    return Err(Error::Conflict(format!("group '@{name}' exists already")));
                }
                let (me, _) = own_keypair(tx, session)?;
                let key = GroupKey::generate();
                let now = crate::duration::now();
                let mut row = GroupRow {
                    id: 0,
                    name: name.to_string(),
                    manager_id: session.user_id.0,
                    recipient: key.recipient(),
                    epoch: 1,
                    history: Vec::new(),
                    members_digest: Vec::new(),
                    signature: Vec::new(),
                    created_at: now,
                    handovers: Vec::new(),
                };
                row.id = tx.put_group(&row)?;
                let m = make_member(&me, &row, &key, session.user_id.0, me.public(), now)?;
                tx.put_group_member(&m)?;
                sign_group(tx, &me, &mut row)?;
                let fp = group_fingerprint(&row.recipient);
                let info = GroupInfo {
                    name: row.name.clone(),
                    manager: session.username.clone(),
                    members: vec![session.username.clone()],
                    epoch: 1,
                    fingerprint: fp,
                    recipient: row.recipient.clone(),
                    created_at: now,
                    offered_to: None,
                };
                Ok((info, json!({ "fingerprint": fp.to_string() })))
            },
        )
    }

    /// Adds `user` to a group the session user manages: the group's private key wrapped
    /// to their pinned key. A member whose membership was suspended gets the current key.
    pub fn group_add(
        &mut self,
        session: &Session,
        name: &str,
        user: &str,
        confirmed: Option<Fingerprint>,
    ) -> Result<MemberAdded> {
        let name = bare(name);
        let user = a_user(user)?;
        let target = format!("@{name} + {user}");
        self.authorized(session, Permission::Own, AuditAction::GroupAdd, &target, |tx| {
            let group = managed(tx, session, name)?;
            let (who, keys, pinned_now) = pinned_keys(tx, session, user)?;
            if let Some(shown) = confirmed
                && shown != keys.fingerprint()
            {
                return Err(Error::Integrity(format!(
                    "the key of '{}' is now {}, not the {shown} you confirmed: nobody was added",
                    who.username,
                    keys.fingerprint()
                )));
            }
            if group
                .members
                .iter()
                .any(|m| m.user_id == who.id && m.epoch == group.row.epoch)
            {
                return Err(Error::Conflict(format!(
                    "'{}' is a member of '@{name}' already",
                    who.username
                )));
            }
            let current = member_keys(tx, session, &group)?
                .and_then(|k| k.into_iter().next())
                .ok_or_else(|| forged_group(name))?;
            let (me, _) = own_keypair(tx, session)?;
            let mut row = group.row.clone();
            let m = make_member(&me, &row, &current, who.id, &keys, crate::duration::now())?;
            tx.put_group_member(&m)?;
            sign_group(tx, &me, &mut row)?;
            let fp = keys.fingerprint();
            let detail = json!({
                "user": who.username,
                "fingerprint": fp.to_string(),
                "pinned_now": pinned_now,
            });
            Ok((
                MemberAdded {
                    group: name.to_string(),
                    user: who.username.clone(),
                    fingerprint: fp,
                    pinned_now,
                },
                detail,
            ))
        })
    }

    /// Removes `user` from a group the session user manages: the group gets a new keypair
    /// (the next epoch), wrapped to the remaining members only; the manager's own records
    /// shared with the group are re-encrypted now, other owners' at their next command.
    pub fn group_remove(
        &mut self,
        session: &Session,
        name: &str,
        user: &str,
    ) -> Result<MemberRemoved> {
        let name = bare(name);
        let target = format!("@{name} - {user}");
        let history = self.policy.history;
        self.authorized_rows(
            session,
            Permission::Own,
            AuditAction::GroupRemove,
            &target,
            |tx| {
                let group = managed(tx, session, name)?;
                let gone = tx
                    .user_by_name(user)?
                    .filter(|u| group.has_member(u.id))
                    .ok_or_else(|| {
                        Error::NotFound(format!("'{user}' is not a member of '@{name}'"))
                    })?;
                if gone.id == session.user_id.0 {
                    return Err(Error::Usage(format!(
                        "you manage '@{name}' and cannot leave it"
                    )));
                }
                let mut keys =
                    member_keys(tx, session, &group)?.ok_or_else(|| forged_group(name))?;
                let (me, _) = own_keypair(tx, session)?;
                let next = GroupKey::generate();
                // Earlier keys, oldest first, then the one being replaced.
                let old = keys.remove(0);
                keys.push(old);
                let mut row = group.row.clone();
                row.epoch += 1;
                row.recipient = next.recipient();
                // An offer of the group ends with the offeree's membership; one to another
                // member is made again at the new epoch.
                if let Some(o) = &group.handovers.offered {
                    let links = if o.to == gone.id {
                        group.handovers.ended(&me, session, &row)
                    } else {
                        group
                            .handovers
                            .offering(&me, session, &row, o.to, o.to_fingerprint)
                    };
                    row.handovers = handover::encode(&links);
                }
                row.history = next.seal_history(&keys).ok_or_else(|| {
                    Error::Integrity("the group's earlier keys could not be sealed".into())
                })?;
                tx.delete_group_member(row.id, gone.id)?;
                let mut suspended = Vec::new();
                for m in group.members.iter().filter(|m| m.user_id != gone.id) {
                    let Some(member) = tx.user_by_id(m.user_id)? else {
                        continue;
                    };
                    if member.status != UserStatus::Active {
                        // Keeps its row at the old epoch: suspended until added again.
                        suspended.push(member.username);
                        continue;
                    }
                    let member_keys = if member.id == session.user_id.0 {
                        me.public().clone()
                    } else {
                        let what = format!("group '@{name}'");
                        match known_keys(tx, session, &member.username, &what) {
                            Ok((_, keys)) => keys,
                            Err(e @ Error::Database { .. }) => return Err(e),
                            // A key that changed (or cannot be used) does not stop the
                            // removal: that member is suspended until trusted and added again.
                            Err(_) => {
                                suspended.push(member.username);
                                continue;
                            }
                        }
                    };
                    let fresh = make_member(&me, &row, &next, member.id, &member_keys, m.added_at)?;
                    tx.put_group_member(&fresh)?;
                }
                sign_group(tx, &me, &mut row)?;
                // What the former member could read through the group.
                let mut could_read = Vec::new();
                let mut pending = Vec::new();
                for s in tx.record_shares(&ShareFilter {
                    group_id: Some(row.id),
                    ..ShareFilter::default()
                })? {
                    let owner = grantee_name(tx, Grantee::User(s.owner_id))?;
                    let shown = match tx.shared_record(s.owner_id, &s.record_token)? {
                        Some(r) => format!("{owner}:{}", r.name.unwrap_or(r.token)),
                        None => format!("{owner}:{}", s.record_token),
                    };
                    if s.owner_id != session.user_id.0 {
                        pending.push(shown.clone());
                    }
                    could_read.push(shown);
                }
                let mut rows = vec![(
                    AuditAction::GroupRemove,
                    json!({
                        "user": gone.username,
                        "epoch": row.epoch,
                        "could_read": could_read.len(),
                        "suspended": suspended,
                    }),
                )];
                let rekeyed = rekey_group_shares(tx, session, history)?;
                let mut reencrypted = Vec::new();
                for (_, d) in &rekeyed {
                    if let Some(t) = d["record"].as_str()
                        && let Some(r) = tx.record_by_ref(session.user_id.0, t)?
                    {
                        reencrypted.push(format!(
                            "{}:{}",
                            session.username,
                            r.name.unwrap_or(r.token)
                        ));
                    }
                }
                rows.extend(rekeyed);
                let out = MemberRemoved {
                    group: name.to_string(),
                    user: gone.username.clone(),
                    epoch: row.epoch,
                    could_read,
                    reencrypted,
                    pending,
                    suspended,
                };
                Ok((out, rows))
            },
        )
    }

    /// Every group, with its manager and member count, as the database has them.
    pub fn group_list(&mut self, session: &Session) -> Result<Vec<GroupSummary>> {
        self.authorized(session, Permission::Own, AuditAction::GroupList, "", |tx| {
            let mut out = Vec::new();
            for g in tx.groups()? {
                let members = tx.group_members(Some(g.id), None)?;
                let manager = grantee_name(tx, Grantee::User(g.manager_id))?;
                out.push(GroupSummary {
                    managed: g.manager_id == session.user_id.0,
                    name: g.name,
                    manager,
                    member: members.iter().any(|m| m.user_id == session.user_id.0),
                    members: members.len(),
                });
            }
            let n = out.len();
            Ok((out, json!({ "groups": n })))
        })
    }

    /// A group, checked: its manager's signature, its members, its current key.
    pub fn group_show(&mut self, session: &Session, name: &str) -> Result<GroupInfo> {
        let name = bare(name);
        self.authorized(
            session,
            Permission::Own,
            AuditAction::GroupShow,
            name,
            |tx| {
                let group = load_group(tx, session, name)?;
                let mut members = Vec::new();
                for m in &group.members {
                    members.push(grantee_name(tx, Grantee::User(m.user_id))?);
                }
                let offered_to = match &group.handovers.offered {
                    Some(o) => Some(grantee_name(tx, Grantee::User(o.to))?),
                    None => None,
                };
                let info = GroupInfo {
                    name: group.row.name.clone(),
                    manager: group.manager.username.clone(),
                    members,
                    epoch: group.row.epoch,
                    fingerprint: group.fingerprint(),
                    recipient: group.row.recipient.clone(),
                    created_at: group.row.created_at,
                    offered_to,
                };
                let detail = json!({ "epoch": info.epoch, "members": info.members.len() });
                Ok((info, detail))
            },
        )
    }
}
