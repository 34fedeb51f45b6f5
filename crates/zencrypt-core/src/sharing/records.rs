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
    let wrapped = wrap_key_to(recipient, dek).ok_or_else(|| not_a_recipient(recipient_id))?;
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

/// The digest of a record's share set, bound in the record row.
fn share_digest(shares: &[RecordShare]) -> Option<Vec<u8>> {
    grants_digest(
        "zencrypt shares v1",
        shares.iter().map(|s| (s.recipient_id, s.created_at)),
    )
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
        return Err(suspended(&owner.username));
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
    unwrap_key_with(&me, &share.wrapped_dek).ok_or_else(forged)
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
