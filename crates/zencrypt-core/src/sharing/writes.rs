//! Writes to a record by its recipients (docs/sharing.md, "Write shares"). A record row is
//! bound under its owner's integrity key, which nobody else holds, so a recipient allowed
//! to write (`data share --write`) does not touch it: their new value waits in
//! `record_writes`, sealed under a new data key wrapped to the owner and every current
//! recipient, and signed with the writer's Ed25519 key. Every reader takes it only under
//! a grant the owner signed for this version that allows the writer to write, and only
//! with the writer's valid signature; the owner's client takes it in as the record's next
//! version before the owner's next command (`take_writes`). A recipient who may only
//! read holds the data key but has no such grant, so nothing they write is accepted.

use super::records::{can_reshare, find_shared, grant_ok, open_first, share_message, shares_of};
use super::*;
use crate::crypto::keypair::{group_fingerprint, parse_recipient, wrap_key_to_many};
use crate::ids::RecordId;
use crate::model::RecordWrite;

/// A recipient's write, checked and opened for the session user.
pub(super) struct Pending {
    /// Who wrote it.
    pub(super) writer: String,
    /// Unix seconds it was written.
    pub(super) created_at: i64,
    /// The value.
    pub(super) value: Zeroizing<Vec<u8>>,
}

/// What the writer signs: the record (id, token, owner), the writer, the version it
/// replaces and that version's ciphertext, the new ciphertext, the wrapped data key and
/// the time.
fn write_message(row: &RecordRow, w: &RecordWrite) -> Vec<u8> {
    use sha2::{Digest as _, Sha256};
    Aad::new("zencrypt record write v1")
        .int(row.id)
        .field(&row.token)
        .int(row.owner_id)
        .int(w.writer_id)
        .int(w.base_version)
        .field(Sha256::digest(&row.ciphertext))
        .field(Sha256::digest(&w.ciphertext))
        .field(Sha256::digest(&w.wrapped_dek))
        .int(w.created_at)
        .as_bytes()
        .to_vec()
}

/// How a record is named to people: `OWNER:NAME`, or its token.
fn shown(owner: &str, row: &RecordRow) -> String {
    match &row.name {
        Some(name) => format!("{owner}:{name}"),
        None => row.token.clone(),
    }
}

/// The key a share of `row` wraps to, as its owner vouched for it: the recipient's key
/// (or the group's at the share's epoch) from the database, taken only when the owner's
/// signature over the share of the record's current version verifies with its
/// fingerprint; a signature that does not is refused (exit 7). `None` for a share of an
/// earlier version, a group at another epoch, or a recipient without a usable key or no
/// longer active (it gets the new value when the owner's client takes it in, if at all).
fn vouched(
    tx: &mut dyn Tx,
    owner: &UserRecord,
    owner_keys: &PublicKeys,
    row: &RecordRow,
    share: &RecordShare,
) -> Result<Option<age::x25519::Recipient>> {
    if share.version != row.version || share.owner_id != row.owner_id || share.record_id != row.id {
        return Ok(None);
    }
    let (fingerprint, recipient) = match share.to {
        Grantee::User(id) => {
            let Some(user) = tx.user_by_id(id)? else {
                return Ok(None);
            };
            let Some(keys) = user.keys.filter(|_| user.status == UserStatus::Active) else {
                return Ok(None);
            };
            let Some(recipient) = keys.public.age_recipient() else {
                return Ok(None);
            };
            (keys.public.fingerprint(), recipient)
        }
        Grantee::Group { id, epoch } => {
            let Some(group) = tx.group_by_id(id)?.filter(|g| g.epoch == epoch) else {
                return Ok(None);
            };
            let Some(recipient) = parse_recipient(&group.recipient) else {
                return Ok(None);
            };
            (group_fingerprint(&group.recipient), recipient)
        }
    };
    if !grant_ok(owner_keys, row, share)
        || !owner_keys.verifies(&share_message(row, share, &fingerprint), &share.signature)
    {
        return Err(Error::Integrity(format!(
            "a share of '{}' does not carry {}'s valid signature for its current version: it \
             was changed outside zencrypt",
            shown(&owner.username, row),
            owner.username
        )));
    }
    Ok(Some(recipient))
}

/// The writer's keys as the owner's grant vouches for them, when the owner granted
/// `writer` writing `row` at its current version: a share with them, whose signature by
/// the owner covers their fingerprint, or with a group they are a member of at its
/// current epoch, whose manager signed their key in their member row. `None` otherwise.
fn may_write(
    tx: &mut dyn Tx,
    session: &Session,
    owner: &UserRecord,
    owner_keys: &PublicKeys,
    row: &RecordRow,
    writer: &UserRecord,
) -> Result<Option<PublicKeys>> {
    let Some(keys) = writer.keys.as_ref().map(|k| k.public.clone()) else {
        return Ok(None);
    };
    for share in shares_of(tx, row.id)? {
        if !share.can_write {
            continue;
        }
        let granted = match share.to {
            // The owner's signature over the share covers the writer's fingerprint.
            Grantee::User(id) => id == writer.id,
            Grantee::Group { id, .. } => match tx.group_by_id(id)? {
                Some(group) => match groups::check_group(tx, session, group) {
                    Ok(group) => group.vouches_for(writer.id, &keys),
                    Err(e @ Error::Database { .. }) => return Err(e),
                    Err(_) => false,
                },
                None => false,
            },
        };
        if granted && vouched(tx, owner, owner_keys, row, &share)?.is_some() {
            return Ok(Some(keys));
        }
    }
    Ok(None)
}

/// The write waiting for a record, as a reader finds it.
pub(super) enum Waiting {
    /// None, or one over an earlier version (the owner's client drops it).
    Nothing,
    /// One the session user does not take: its writer is not (or no longer) allowed to
    /// write, or is disabled, or it is not wrapped for them. Said why, for the owner.
    Ignored(&'static str),
    /// One checked and opened.
    Found(Pending),
}

/// The write waiting for `row`, checked and opened for the session user: the writer's
/// grant (see [`may_write`]), then the writer's signature under the key that grant
/// vouches for (a key the session user pinned for the writer must be that one), then the
/// data key opened with the session user's key or a group key of theirs. A write by a
/// granted writer that fails its signature or does not open is refused (exit 7).
pub(super) fn pending(
    tx: &mut dyn Tx,
    session: &Session,
    owner: &UserRecord,
    row: &RecordRow,
) -> Result<Waiting> {
    let Some(w) = tx.record_writes(None, Some(row.id))?.into_iter().next() else {
        return Ok(Waiting::Nothing);
    };
    if w.base_version != row.version || w.owner_id != row.owner_id {
        return Ok(Waiting::Nothing);
    }
    let Some(writer) = tx
        .user_by_id(w.writer_id)?
        .filter(|u| u.status == UserStatus::Active && u.role != Role::Service)
    else {
        return Ok(Waiting::Ignored("writer not active"));
    };
    let owner_keys = if owner.id == session.user_id.0 {
        own_keypair(tx, session)?.0.public().clone()
    } else {
        known_keys(tx, session, &owner.username, "the record")?.1
    };
    let Some(writer_keys) = may_write(tx, session, owner, &owner_keys, row, &writer)? else {
        return Ok(Waiting::Ignored("not allowed"));
    };
    let refused = |why: &str| {
        Error::Integrity(format!(
            "the new value of '{}' said to be written by {} {why}: it was changed outside \
             zencrypt",
            shown(&owner.username, row),
            writer.username
        ))
    };
    if writer.id != session.user_id.0
        && let Some(pinned) = pinned_fingerprint(tx, session, writer.id)?
        && pinned != writer_keys.fingerprint()
    {
        return Err(Error::KeyChanged {
            user: writer.username.clone(),
            pinned: pinned.to_string(),
            current: writer_keys.fingerprint().to_string(),
        });
    }
    if !writer_keys.verifies(&write_message(row, &w), &w.signature) {
        return Err(refused("does not carry their valid signature"));
    }
    let (me, _) = own_keypair(tx, session)?;
    let mut openers = vec![me.identity().clone()];
    for share in shares_of(tx, row.id)? {
        if let Grantee::Group { .. } = share.to
            && let Some(o) = opener(tx, session, share.to)?
        {
            openers.push(o.into_identity());
        }
    }
    let identities: Vec<&dyn age::Identity> =
        openers.iter().map(|i| i as &dyn age::Identity).collect();
    let Some(dek) = crate::crypto::keypair::unwrap_key_with_any(&identities, &w.wrapped_dek) else {
        // Wrapped before the session user's access reached this version's keys (a group
        // key replaced since): the owner's client makes it readable.
        return Ok(Waiting::Ignored("not wrapped for you"));
    };
    let value = aead::open(
        &dek,
        &crate::records::value_aad(UserId(row.owner_id), RecordId(row.id)),
        &w.ciphertext,
    )
    .map_err(|_| refused("does not open under its data key"))?;
    Ok(Waiting::Found(Pending {
        writer: writer.username,
        created_at: w.created_at,
        value,
    }))
}

/// Replaces the value of a record shared with the session user with `value`, under a
/// grant that allows writing (see the module's documentation); `None` when no record of
/// the kind is shared with them. With `if_version`, only if readers see that version.
/// Returns the record as readers now see it (the version the owner's client will make it)
/// and the writer of the waiting write this one replaced, if any.
pub(crate) fn write_shared(
    tx: &mut dyn Tx,
    session: &Session,
    reference: &str,
    value: &[u8],
    if_version: Option<i64>,
) -> Result<Option<(RecordInfo, Option<String>)>> {
    crate::records::check_value_size(value)?;
    let Some((owner, row, shares)) = find_shared(tx, session, reference)? else {
        return Ok(None);
    };
    // The owner's signature over one of the session user's shares pins the owner's key.
    if open_first(tx, session, &owner, &row, &shares)?.is_none() {
        return Ok(None);
    }
    let (_, owner_keys) = known_keys(tx, session, &owner.username, "the record")?;
    let me = session.user_id.0;
    let my_row = tx
        .user_by_id(me)?
        .ok_or_else(|| no_such_user(&session.username))?;
    if may_write(tx, session, &owner, &owner_keys, &row, &my_row)?.is_none() {
        return Err(Error::Conflict(format!(
            "'{}' is shared with you to read only: ask {} to share it with --write",
            shown(&owner.username, &row),
            owner.username
        )));
    }
    // A waiting write that fails its checks is no version readers see: this one replaces
    // it, as it would any other.
    let (current, replaces) = match pending(tx, session, &owner, &row) {
        Ok(Waiting::Found(p)) => (row.version + 1, Some(p.writer)),
        Ok(Waiting::Nothing | Waiting::Ignored(_)) => (row.version, None),
        Err(e @ Error::Database { .. }) => return Err(e),
        Err(_) => (row.version, None),
    };
    if let Some(v) = if_version
        && v != current
    {
        return Err(Error::Conflict(format!(
            "record '{reference}' is at version {current}, not {v}"
        )));
    }
    let mut recipients = vec![
        owner_keys
            .age_recipient()
            .ok_or_else(|| not_a_recipient(owner.id))?,
    ];
    for share in shares_of(tx, row.id)? {
        if let Some(r) = vouched(tx, &owner, &owner_keys, &row, &share)? {
            recipients.push(r);
        }
    }
    recipients.sort_by_key(ToString::to_string);
    recipients.dedup_by_key(|r| r.to_string());
    let dek = Key32::random();
    let ciphertext = aead::seal(
        &dek,
        &crate::records::value_aad(UserId(row.owner_id), RecordId(row.id)),
        value,
    );
    let wrapped_dek = wrap_key_to_many(&recipients, &dek)
        .ok_or_else(|| Error::Internal("the data key could not be wrapped".into()))?;
    let mut w = RecordWrite {
        id: 0,
        record_id: row.id,
        record_token: row.token.clone(),
        owner_id: row.owner_id,
        writer_id: me,
        base_version: row.version,
        ciphertext,
        wrapped_dek,
        signature: Vec::new(),
        created_at: crate::duration::now(),
    };
    let (pair, _) = own_keypair(tx, session)?;
    w.signature = pair.sign(&write_message(&row, &w)).to_vec();
    tx.put_record_write(&w)?;
    crate::records::usage(
        tx,
        session,
        &row,
        crate::events::UsageOp::DataUpdate,
        value.len(),
    )?;
    let mut info = crate::records::record_info(&row, None);
    info.version = row.version + 1;
    info.updated_at = w.created_at;
    info.owner = Some(owner.username);
    Ok(Some((info, replaces)))
}

/// Takes in the writes waiting for the session user's records, each as the record's next
/// version (re-encrypted under the owner's own key and wrapped again for every current
/// recipient), before anything else the owner does: one audit row each (`data.take`).
/// A write over an earlier version, to a deleted record, or that fails its checks is
/// dropped (audited with the reason); one to a record whose key may no longer encrypt
/// waits. A database error fails the command.
pub(crate) fn take_writes(
    tx: &mut dyn Tx,
    session: &Session,
    history: u32,
) -> Result<Vec<(AuditAction, serde_json::Value)>> {
    let writes = tx.record_writes(Some(session.user_id.0), None)?;
    let mut rows = Vec::new();
    for w in writes {
        let writer = grantee_name(tx, Grantee::User(w.writer_id))?;
        let drop = |tx: &mut dyn Tx, reason: &str| -> Result<(AuditAction, serde_json::Value)> {
            tx.delete_record_write(w.record_id)?;
            Ok((
                AuditAction::DataTake,
                json!({ "record": w.record_token, "by": writer, "taken": false, "reason": reason }),
            ))
        };
        // A record that does not load (a failed binding) is left to the commands that read
        // it, which say why; its write waits.
        let row = match tx.record_by_ref(session.user_id.0, &w.record_token) {
            Ok(row) => row,
            Err(crate::storage::StoreError::Integrity { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        let Some(row) = row.filter(|r| r.id == w.record_id && r.deleted_at.is_none()) else {
            rows.push(drop(tx, "deleted")?);
            continue;
        };
        if w.base_version != row.version {
            rows.push(drop(tx, "stale")?);
            continue;
        }
        // The new version must be sealed under the record's key (rotated first if due) and
        // wrapped for every recipient, as any update is: when that would fail (an expired
        // key, a share whose recipient's key changed), the write waits until the owner
        // deals with it (`user trust`, `data unshare`), without holding up anything else.
        if !crate::records::can_update(tx, session, &row)? || !can_reshare(tx, session, &row)? {
            continue;
        }
        let me = tx
            .user_by_id(session.user_id.0)?
            .ok_or_else(|| no_such_user(&session.username))?;
        let found = match pending(tx, session, &me, &row) {
            Ok(Waiting::Found(found)) => found,
            Ok(Waiting::Nothing) => continue,
            Ok(Waiting::Ignored(reason)) => {
                rows.push(drop(tx, reason)?);
                continue;
            }
            Err(e @ Error::Database { .. }) => return Err(e),
            Err(e) => {
                rows.push(drop(tx, e.code())?);
                continue;
            }
        };
        let mut ring = crate::records::Keyring::new(session, None);
        let row = crate::records::update_in(tx, session, &mut ring, row, &found.value, history)?;
        tx.delete_record_write(w.record_id)?;
        rows.push((
            AuditAction::DataTake,
            json!({
                "record": row.token,
                "by": found.writer,
                "taken": true,
                "version": row.version,
                "written_at": found.created_at,
            }),
        ));
    }
    Ok(rows)
}
