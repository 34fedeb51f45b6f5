//! Records shared with other users (docs/sharing.md, "Shared records"): the owner wraps a
//! record's data key to each recipient's pinned key and signs the share; the record row
//! binds its ciphertext's hash and the digest of its share set.

use super::*;

/// One record the session user shared, as `data list --shared` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareInfo {
    /// The record's token.
    pub token: String,
    /// The record's name.
    pub name: Option<String>,
    /// The recipient: a user name, or `@group`.
    pub with: String,
    /// Unix seconds it was first shared with them.
    pub since: i64,
    /// Whether they may also write it.
    pub write: bool,
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
    /// The group it reaches the session user through (`@group`), if not directly.
    pub via: Option<String>,
    /// Whether the session user may also write it.
    pub write: bool,
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
    /// The recipient: a user name, or `@group`.
    pub with: String,
    /// The recipient's fingerprint, as pinned (a group's: its current key's).
    pub fingerprint: Fingerprint,
    /// Whether the recipient's key was pinned just now (first use).
    pub pinned_now: bool,
    /// Whether they may also write it.
    pub write: bool,
    /// Whether an existing share's access was changed (rather than a new share made).
    pub changed: bool,
}

/// The access a record grant gives, as signed.
fn access(can_write: bool) -> &'static str {
    if can_write { "write" } else { "read" }
}

/// What the owner signs for a share: the record as the recipient will read it (id, token,
/// owner, name, version, expiry), the recipient (a user, or a group at an epoch) and the
/// key they were pinned with (a group's key at that epoch), the access (read, or read and
/// write), the wrapped data key and the share's creation time.
pub(super) fn share_message(
    row: &RecordRow,
    share: &RecordShare,
    recipient: &Fingerprint,
) -> Vec<u8> {
    let (to, wrapped_dek, created_at) = (share.to, &share.wrapped_dek, share.created_at);
    use sha2::{Digest as _, Sha256};
    let label = match to {
        Grantee::User(_) => "zencrypt share v1",
        Grantee::Group { .. } => "zencrypt group share v1",
    };
    let a = Aad::new(label)
        .int(row.id)
        .field(&row.token)
        .int(row.owner_id)
        .field(row.name.as_deref().unwrap_or(""))
        .int(row.version);
    let a = match row.expires_at {
        Some(e) => a.field([1]).int(e),
        None => a.field([0]),
    };
    let a = match to {
        Grantee::User(id) => a.int(id),
        Grantee::Group { id, epoch } => a.int(id).int(epoch),
    };
    a.field(recipient.0)
        .field(access(share.can_write))
        .field(Sha256::digest(wrapped_dek))
        .field(Sha256::digest(&row.ciphertext))
        .int(created_at)
        .as_bytes()
        .to_vec()
}

/// What the owner signs once per share, whatever the version: who (a user, or a group
/// whatever its epoch) may read which record. The owner's client checks it before it
/// wraps a new data key for a share row, so a row a database writer inserted gets nothing.
fn grant_message(row: &RecordRow, to: Grantee, can_write: bool, created_at: i64) -> Vec<u8> {
    let (label, id) = match to {
        Grantee::User(id) => ("zencrypt share grant v1", id),
        Grantee::Group { id, .. } => ("zencrypt group share grant v1", id),
    };
    Aad::new(label)
        .int(row.id)
        .field(&row.token)
        .int(row.owner_id)
        .int(id)
        .field(access(can_write))
        .int(created_at)
        .as_bytes()
        .to_vec()
}

/// Whether a share row carries its owner's grant signature for this record.
pub(super) fn grant_ok(owner: &PublicKeys, row: &RecordRow, share: &RecordShare) -> bool {
    share.owner_id == row.owner_id
        && share.record_id == row.id
        && owner.verifies(
            &grant_message(row, share.to, share.can_write, share.created_at),
            &share.grant_signature,
        )
}

/// Wraps `dek` to a recipient and signs the share with the owner's keypair.
fn make_share(
    owner: &Keypair,
    row: &RecordRow,
    to: &Wrapping,
    dek: &Key32,
    created_at: i64,
    can_write: bool,
) -> Result<RecordShare> {
    let mut share = RecordShare {
        id: 0,
        record_id: row.id,
        record_token: row.token.clone(),
        owner_id: row.owner_id,
        to: to.to,
        version: row.version,
        can_write,
        wrapped_dek: wrap_key_to_recipient(&to.recipient, dek)?,
        signature: Vec::new(),
        grant_signature: owner
            .sign(&grant_message(row, to.to, can_write, created_at))
            .to_vec(),
        created_at,
    };
    share.signature = owner
        .sign(&share_message(row, &share, &to.fingerprint))
        .to_vec();
    Ok(share)
}

/// Wraps a record's new data key for every user and group it is shared with, each checked
/// against the owner's pins. Called on every write of the record's value. A share that
/// fails its checks (not signed by the owner, a recipient never pinned, a changed key, a
/// group that fails its manager's signature) refuses the write (exit 7), or, with `ended`
/// (an unshare or a re-encryption, which must complete), is ended and named there; a
/// share row set that is not the one the record binds then ends every share.
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
            let what = format!("record '{}'", row.name.as_deref().unwrap_or(&row.token));
            match current_target(tx, session, old.to, &what)? {
                Some(target) => {
                    make_share(&me, row, &target, dek, old.created_at, old.can_write).map(Some)
                }
                None => Ok(None),
            }
        })();
        match (wrapped, ended.as_deref_mut()) {
            (Ok(Some(share)), _) => {
                tx.put_record_share(&share)?;
            }
            (Ok(None), _) => {}
            (Err(e), None) => return Err(e),
            (Err(_), Some(ended)) => {
                tx.delete_record_shares(row.id, Some(old.to))?;
                ended.push(grantee_name(tx, old.to)?);
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

/// Whether [`reshare`] (without `ended`) would wrap a new data key of `row` for every
/// share: the share set is the bound one, each grant carries the owner's signature and
/// each recipient's key checks out. Reads only (a group's manager may be pinned on first
/// use, as any check of a group does); a database error is returned.
pub(super) fn can_reshare(tx: &mut dyn Tx, session: &Session, row: &RecordRow) -> Result<bool> {
    let checked = (|| {
        let shares = shares_of(tx, row.id)?;
        check_share_set(row, &shares)?;
        if shares.is_empty() {
            return Ok(true);
        }
        let (me, _) = own_keypair(tx, session)?;
        let what = format!("record '{}'", row.name.as_deref().unwrap_or(&row.token));
        for s in &shares {
            if !grant_ok(me.public(), row, s) {
                return Ok(false);
            }
            current_target(tx, session, s.to, &what)?;
        }
        Ok(true)
    })();
    match checked {
        Err(e @ Error::Database { .. }) => Err(e),
        Err(_) => Ok(false),
        Ok(ok) => Ok(ok),
    }
}

/// The digest of a record's share set, bound in the record row.
fn share_digest(shares: &[RecordShare]) -> Option<Vec<u8>> {
    grants_digest(
        "zencrypt shares v1",
        shares.iter().map(|s| (s.to, s.created_at, s.can_write)),
    )
}

/// Checks that the share rows of a record are the set its owner's bound row names: a row
/// added, or put back after it ended, behind the owner's back is refused.
pub(super) fn check_share_set(row: &RecordRow, shares: &[RecordShare]) -> Result<()> {
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
pub(super) fn shares_of(tx: &mut dyn Tx, record_id: i64) -> Result<Vec<RecordShare>> {
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

/// Of the shares of one record the session user may read through, the direct one first.
fn direct_first(session: &Session, mut shares: Vec<RecordShare>) -> Vec<RecordShare> {
    shares.sort_by_key(|s| s.to != Grantee::User(session.user_id.0));
    shares
}

/// A record shared with the session user (directly or through a group they are a member
/// of), found by `OWNER:NAME` or by its token: its owner (active), the row and the session
/// user's shares of it. `None` when there is no such share, or the record is deleted or
/// expired (its shares end with it).
pub(super) fn find_shared(
    tx: &mut dyn Tx,
    session: &Session,
    reference: &str,
) -> Result<Option<(UserRecord, RecordRow, Vec<RecordShare>)>> {
    find_shared_of(tx, session, reference, true)
}

/// [`find_shared`], with `active_only` false also when the owner is disabled (a group's
/// manager handing on what the group reads when its owner leaves).
pub(super) fn find_shared_of(
    tx: &mut dyn Tx,
    session: &Session,
    reference: &str,
    active_only: bool,
) -> Result<Option<(UserRecord, RecordRow, Vec<RecordShare>)>> {
    let (owner, shares) = match split_reference(reference) {
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
            let shares = tx.record_shares(&ShareFilter {
                record_id: Some(row.id),
                reader_id: Some(session.user_id.0),
                ..ShareFilter::default()
            })?;
            (owner, shares)
        }
        None => {
            let shares: Vec<RecordShare> = tx
                .record_shares(&ShareFilter {
                    reader_id: Some(session.user_id.0),
                    ..ShareFilter::default()
                })?
                .into_iter()
                .filter(|s| s.record_token == reference)
                .collect();
            let Some(first) = shares.first() else {
                return Ok(None);
            };
            let owner = tx
                .user_by_id(first.owner_id)?
                .ok_or_else(|| no_such_user(&format!("#{}", first.owner_id)))?;
            (owner, shares)
        }
    };
    let Some(share) = shares.first() else {
        return Ok(None);
    };
    let Some(row) = tx.shared_record(owner.id, &share.record_token)? else {
        return Ok(None);
    };
    if active_only && owner.status != UserStatus::Active {
        return Err(suspended(&owner.username));
    }
    if row.deleted_at.is_some() || crate::records::is_expired(&row, crate::duration::now()) {
        return Ok(None);
    }
    Ok(Some((owner, row, direct_first(session, shares))))
}

/// Opens the first of the session user's shares of a record that opens (see
/// [`open_share`]); the first error when none does, `None` when there are none.
pub(super) fn open_first(
    tx: &mut dyn Tx,
    session: &Session,
    owner: &UserRecord,
    row: &RecordRow,
    shares: &[RecordShare],
) -> Result<Option<Key32>> {
    let mut first_error = None;
    for share in shares {
        match open_share(tx, session, owner, row, share) {
            Ok(k) => return Ok(Some(k)),
            Err(e @ (Error::Database { .. } | Error::KeyChanged { .. })) => return Err(e),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(None), Err)
}

/// Finds a record shared with the session user (see [`find_shared`]), checks the owner's
/// signature (the owner's key pinned like any other) and opens it through the first of
/// its shares that opens. A value a recipient wrote that the owner's client has not yet
/// taken in is read instead, once its writer's grant and signature check out
/// (docs/sharing.md, "Write shares"). `None` when there is no such share.
pub(crate) fn read_shared(
    tx: &mut dyn Tx,
    session: &Session,
    reference: &str,
) -> Result<Option<(RecordInfo, Zeroizing<Vec<u8>>)>> {
    let Some((owner, row, shares)) = find_shared(tx, session, reference)? else {
        return Ok(None);
    };
    let Some(dek) = open_first(tx, session, &owner, &row, &shares)? else {
        return Ok(None);
    };
    let mut info = crate::records::record_info(&row, None);
    let value = match super::writes::pending(tx, session, &owner, &row)? {
        super::writes::Waiting::Found(w) => {
            info.version = row.version + 1;
            info.updated_at = w.created_at;
            w.value
        }
        super::writes::Waiting::Nothing | super::writes::Waiting::Ignored(_) => {
            crate::records::open_value(&row, &dek)?
        }
    };
    crate::records::usage(
        tx,
        session,
        &row,
        crate::events::UsageOp::DataGet,
        value.len(),
    )?;
    info.owner = Some(owner.username.clone());
    Ok(Some((info, value)))
}

/// Checks a share with the owner's pinned signing key and opens its data key with the
/// session user's keypair, or, for a share with a group, with the group's key of the
/// share's epoch (the session user's membership checked under the group manager's
/// signature).
pub(super) fn open_share(
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
    let opener = opener(tx, session, share.to)?.ok_or_else(forged)?;
    let message = share_message(row, share, &opener.fingerprint);
    // The owner's key is pinned on first use only once the share verifies under it.
    let (_, owner_keys, _) = signer_keys_if(tx, session, &owner.username, |u, k| {
        signed(u, k.verifies(&message, &share.signature))
    })?;
    if !owner_keys.verifies(&message, &share.signature) {
        return Err(forged());
    }
    opener.unwrap(&share.wrapped_dek).ok_or_else(forged)
}

/// Re-encrypts one of the session user's records under a new data key (a new version, the
/// same value), wrapped again for the users and groups it is still shared with: whoever
/// kept the old data key cannot read later versions. It always completes: a share that
/// cannot be wrapped for any more ends (named in the outcome), a share set changed
/// outside zencrypt ends every share, and a record that cannot be re-encrypted (deleted,
/// its key expired or disabled, a rotation due whose key shares fail their checks, its
/// value not opening: all found before anything is written) gets no new version and loses its group shares whose key changed. `row`
/// carries the share set as it is now (after any share was removed).
pub(crate) fn reencrypt(
    tx: &mut dyn Tx,
    session: &Session,
    mut row: RecordRow,
    all_ended: bool,
    history: u32,
) -> Result<Unshared> {
    let mut out = Unshared {
        version: row.version,
        reencrypted: false,
        also_ended: Vec::new(),
        all_ended,
    };
    let mut ring = crate::records::Keyring::new(session, None);
    ring.ended_shares = Some(Vec::new());
    // Reads only: whatever fails here leaves the record as it is.
    let opened = (|| {
        if !crate::records::can_update(tx, session, &row)? {
            return Ok(None);
        }
        let dek = ring.dek(tx, session, &row)?;
        crate::records::open_value(&row, &dek).map(Some)
    })();
    let value = match opened {
        Ok(Some(value)) => value,
        Err(e @ Error::Database { .. }) => return Err(e),
        Ok(None) | Err(_) => {
            out.also_ended = end_stale_group_shares(tx, &mut row)?;
            return Ok(out);
        }
    };
    let row = crate::records::update_in(tx, session, &mut ring, row, &value, history)?;
    out.version = row.version;
    out.reencrypted = true;
    for name in ring.ended_shares.take().unwrap_or_default() {
        if name == "*" {
            out.all_ended = true;
        } else {
            out.also_ended.push(name);
        }
    }
    Ok(out)
}

/// Ends the shares of a record still wrapped to a group key that was replaced (nothing
/// new can be written for them), binds the share set that remains and writes the row.
/// Returns the groups named.
pub(crate) fn end_stale_group_shares(tx: &mut dyn Tx, row: &mut RecordRow) -> Result<Vec<String>> {
    let mut ended = Vec::new();
    for s in shares_of(tx, row.id)? {
        if let Grantee::Group { id, epoch } = s.to
            && tx.group_by_id(id)?.is_none_or(|g| g.epoch != epoch)
        {
            tx.delete_record_shares(row.id, Some(s.to))?;
            ended.push(grantee_name(tx, s.to)?);
        }
    }
    row.share_digest = share_digest(&shares_of(tx, row.id)?);
    tx.update_record(row)?;
    Ok(ended)
}

impl Vault {
    /// Shares one of the session user's records with `with`, a user or a `@group`: its
    /// data key wrapped to their pinned key (a group's current key, under its manager's
    /// signature), signed. With `write` they may also replace its value (docs/sharing.md,
    /// "Write shares"). Sharing again with the other access changes the grant in place.
    /// Protected records cannot be shared (exit 6). With `confirmed`, the fingerprint the
    /// user was shown and confirmed, a key that changed meanwhile is refused (exit 7).
    pub fn data_share(
        &mut self,
        session: &Session,
        reference: &str,
        with: &str,
        write: bool,
        confirmed: Option<Fingerprint>,
    ) -> Result<Shared> {
        let target = format!("{reference} -> {with}");
        let history = self.policy.history;
        self.authorized(session, Permission::Own, AuditAction::DataShare, &target, |tx| {
            let row = crate::records::load_readable(tx, session.user_id, reference)?;
            if row.identity_id.is_some() {
                return Err(Error::Conflict(format!(
                    "record '{reference}' is protected by a record password and cannot be shared: \
                     its data key opens only with that password, which never leaves your client"
                )));
            }
            let (to, shown_name, pinned_now) =
                new_target(
                tx,
                session,
                with,
                "a record is yours already: share it with someone else",
                confirmed,
            )?;
            let all = shares_of(tx, row.id)?;
            check_share_set(&row, &all)?;
            let existing = all.iter().find(|s| s.to.who() == to.to.who());
            if let Some(s) = existing
                && s.can_write == write
            {
                return Err(Error::Conflict(format!(
                    "record '{reference}' is already shared with {shown_name} ({})",
                    if write { "read and write" } else { "read only" }
                )));
            }
            let since = existing.map_or_else(crate::duration::now, |s| s.created_at);
            let mut ring = crate::records::Keyring::new(session, None);
            let dek = ring.dek(tx, session, &row)?;
            let mut row = row;
            if row.value_hash.is_none() {
                // A record from before value hashes: bind its ciphertext now, once it
                // opened under the owner's own key.
                crate::records::open_value(&row, &dek)?;
                row.value_hash = Some(crate::records::value_hash(&row.ciphertext));
                tx.update_record(&row)?;
                // Data keys wrapped for services before value hashes no longer open for
                // it (see `services::open_granted`): wrapped again, bound to the value.
                let id = row.id;
                crate::services::renew_records(tx, session, |r| r.id == id)?;
            }
            let (me, _) = own_keypair(tx, session)?;
            let share = make_share(&me, &row, &to, &dek, since, write)?;
            if existing.is_some() {
                // The grant changes, whatever epoch the old share was at.
                tx.delete_record_shares(row.id, Some(to.to.who()))?;
            }
            tx.put_record_share(&share)?;
            row.share_digest = share_digest(&shares_of(tx, row.id)?);
            tx.update_record(&row)?;
            let narrowed = existing.is_some_and(|s| s.can_write) && !write;
            let version = if narrowed {
                // The write grant signed for this version would still verify for anyone
                // but the owner: a new version leaves it behind.
                reencrypt(tx, session, row.clone(), false, history)?.version
            } else {
                row.version
            };
            let detail = json!({
                "record": row.token,
                "with": shown_name,
                "fingerprint": to.fingerprint.to_string(),
                "pinned_now": pinned_now,
                "write": write,
                "changed": existing.is_some(),
                "version": version,
            });
            let out = Shared {
                token: row.token.clone(),
                name: row.name.clone(),
                with: shown_name.clone(),
                fingerprint: to.fingerprint,
                pinned_now,
                write,
                changed: existing.is_some(),
            };
            Ok((out, detail))
        })
    }

    /// Ends a record's share with `from` (a user or a `@group`) and re-encrypts the record
    /// under a new data key (see [`reencrypt`]).
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
                let (who, shown_name) = named_grantee(tx, from)?;
                let all = shares_of(tx, row.id)?;
                if !all.iter().any(|s| s.to.who() == who) {
                    return Err(Error::NotFound(format!(
                        "record '{reference}' is not shared with {shown_name}"
                    )));
                }
                let tampered = check_share_set(&row, &all).is_err();
                if tampered {
                    tx.delete_record_shares(row.id, None)?;
                } else {
                    tx.delete_record_shares(row.id, Some(who))?;
                }
                row.share_digest = share_digest(&shares_of(tx, row.id)?);
                let out = reencrypt(tx, session, row, tampered, history)?;
                let detail = json!({
                    "from": shown_name,
                    "version": out.version,
                    "reencrypted": out.reencrypted,
                    "also_ended": out.also_ended,
                    "all_ended": out.all_ended,
                });
                Ok((out.clone(), detail))
            },
        )
    }

    /// The session user's records shared with others, one entry per user or group.
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
                    let with = grantee_name(tx, s.to)?;
                    out.push(ShareInfo {
                        token: row.token,
                        name: row.name,
                        with,
                        since: s.created_at,
                        write: s.can_write,
                    });
                }
                let n = out.len();
                Ok((out, json!({ "shared": n })))
            },
        )
    }

    /// The records others shared with the session user, directly or through a group
    /// (each share's signature checked).
    pub fn shares_with_me(&mut self, session: &Session) -> Result<Vec<SharedWithMe>> {
        self.authorized(
            session,
            Permission::Own,
            AuditAction::DataList,
            "--shared-with-me",
            |tx| {
                let shares = tx.record_shares(&ShareFilter {
                    reader_id: Some(session.user_id.0),
                    ..ShareFilter::default()
                })?;
                let mut out: Vec<SharedWithMe> = Vec::new();
                for s in shares {
                    if s.owner_id == session.user_id.0 {
                        // One's own record shared with a group one is in.
                        continue;
                    }
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
                        || out.iter().any(|o| o.token == row.token)
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
                    let via = match s.to {
                        Grantee::Group { .. } => Some(grantee_name(tx, s.to)?),
                        Grantee::User(_) => None,
                    };
                    out.push(SharedWithMe {
                        owner: owner.username,
                        token: row.token,
                        name: row.name,
                        version: row.version,
                        since: s.created_at,
                        via,
                        write: s.can_write,
                    });
                }
                let n = out.len();
                Ok((out, json!({ "shared_with_me": n })))
            },
        )
    }
}
