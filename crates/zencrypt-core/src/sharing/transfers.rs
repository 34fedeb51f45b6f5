//! Records handed to another user (docs/sharing.md, "Transfers"): `data transfer REF --to
//! USER` by the record's owner, or, once its owner is disabled, by the manager of a group
//! the record is shared with, to a member of that group. The giver wraps the data key of
//! the record's current version to the new owner's pinned key and signs the transfer; the
//! new owner takes it in with `data receive` as a record of theirs, under their own key,
//! and the transfer notes when. An owner's own transfer deletes the record on their side
//! (softly: `data restore` takes it back, ending the transfer).

use super::records::{find_shared_of, open_share, share_message};
use super::*;
use crate::crypto::keypair::{group_fingerprint, unwrap_key_with};
use crate::ids::RecordId;
use crate::model::{RecordTransfer, TransferFilter};

/// What `data transfer` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transferred {
    /// The record, as the giver names it (`NAME`, or `OWNER:NAME` for a group's record).
    pub record: String,
    /// The new owner.
    pub to: String,
    /// The new owner's fingerprint, as pinned.
    pub fingerprint: Fingerprint,
    /// Whether their key was pinned just now.
    pub pinned_now: bool,
    /// Whether the giver is the record's owner (whose record is now deleted on their side).
    pub own: bool,
}

/// What the giver signs: the record (id, token, owner, name, version and its ciphertext),
/// the giver, the new owner and their key as the giver pinned it, the wrapped data key and
/// the time.
fn transfer_message(row: &RecordRow, t: &RecordTransfer, recipient: &Fingerprint) -> Vec<u8> {
    use sha2::{Digest as _, Sha256};
    Aad::new("zencrypt record transfer v1")
        .int(row.id)
        .field(&row.token)
        .int(row.owner_id)
        .field(row.name.as_deref().unwrap_or(""))
        .int(t.version)
        .int(t.giver_id)
        .int(t.recipient_id)
        .field(recipient.0)
        .field(Sha256::digest(&t.wrapped_dek))
        .field(Sha256::digest(&row.ciphertext))
        .int(t.created_at)
        .as_bytes()
        .to_vec()
}

/// A transfer of `row` to `to`, wrapped and signed by `giver`.
fn make_transfer(
    giver: &Keypair,
    giver_id: i64,
    row: &RecordRow,
    to: &Wrapping,
    dek: &Key32,
) -> Result<RecordTransfer> {
    let Grantee::User(recipient_id) = to.to else {
        return Err(to_a_group());
    };
    let mut t = RecordTransfer {
        id: 0,
        record_id: row.id,
        record_token: row.token.clone(),
        owner_id: row.owner_id,
        giver_id,
        recipient_id,
        version: row.version,
        wrapped_dek: wrap_key_to_recipient(&to.recipient, dek)?,
        signature: Vec::new(),
        created_at: crate::duration::now(),
        taken_at: None,
    };
    t.signature = giver
        .sign(&transfer_message(row, &t, &to.fingerprint))
        .to_vec();
    Ok(t)
}

/// Said when an owner names themselves as the new owner.
const YOURS: &str = "the record is yours already: hand it to someone else";

fn to_a_group() -> Error {
    Error::Usage("a record is transferred to one user, not to a group".into())
}

/// The group through which `giver_id` may hand on another owner's record: one the record
/// is shared with at its current version, which they manage. Returns the share.
fn managed_share(
    tx: &mut dyn Tx,
    session: &Session,
    giver_id: i64,
    shares: &[RecordShare],
) -> Result<Option<RecordShare>> {
    for share in shares {
        if let Grantee::Group { id, .. } = share.to
            && let Some(group) = tx.group_by_id(id)?
            && group.manager_id == giver_id
            && groups::check_group(tx, session, group)?.manager.id == giver_id
        {
            return Ok(Some(share.clone()));
        }
    }
    Ok(None)
}

/// One transfer `data receive` dealt with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The record's owner.
    pub from: String,
    /// Who handed it over (the owner, or a group's manager).
    pub by: String,
    /// The owner's token of the record.
    pub token: String,
    /// What became of it.
    pub outcome: Receipt,
}

/// What became of one transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receipt {
    /// Taken in as a record of the session user's: its token and name.
    Taken {
        /// The new record's token.
        token: String,
        /// Its name.
        name: Option<String>,
    },
    /// Left waiting: said why (a key to trust first, say).
    Waiting(String),
    /// Dropped: it failed its checks (forged, or the record changed since).
    Dropped(String),
}

/// A name for a record taken in: `name` when the session user has no live record by it,
/// else `NAME.from-OWNER` (then `-2`, `-3`, ...); none when no such name is free or valid.
fn free_name(
    tx: &mut dyn Tx,
    session: &Session,
    name: Option<&str>,
    owner: &str,
) -> Result<Option<String>> {
    let Some(name) = name else {
        return Ok(None);
    };
    let mut candidates = vec![name.to_string(), format!("{name}.from-{owner}")];
    candidates.extend((2..10).map(|n| format!("{name}.from-{owner}-{n}")));
    for c in candidates {
        if crate::records::validate_name(&c).is_err() {
            continue;
        }
        // Taken by a live record of that name, or by a token of theirs (a name may not
        // look like one of their tokens).
        let taken = tx.record_by_ref(session.user_id.0, &c)?.is_some_and(|r| {
            r.token == c || (r.deleted_at.is_none() && r.name.as_deref() == Some(c.as_str()))
        });
        if !taken {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

/// Checks a transfer to the session user and opens the record's value: the record is at
/// the version transferred, the giver is its owner or the manager of a group it is shared
/// with at that version (under the owner's signature), the giver's signature verifies
/// under their key (pinned on first use once it does), and the data key opens the value.
/// Returns the owner's row, the owner's name and the value.
fn open_transfer(
    tx: &mut dyn Tx,
    session: &Session,
    t: &RecordTransfer,
) -> Result<(RecordRow, String, Zeroizing<Vec<u8>>)> {
    let owner = tx
        .user_by_id(t.owner_id)?
        .ok_or_else(|| no_such_user(&format!("#{}", t.owner_id)))?;
    let giver = tx
        .user_by_id(t.giver_id)?
        .ok_or_else(|| no_such_user(&format!("#{}", t.giver_id)))?;
    let row = tx
        .shared_record(owner.id, &t.record_token)?
        .filter(|r| r.id == t.record_id && r.owner_id == owner.id)
        .ok_or_else(|| crate::records::not_found(&t.record_token))?;
    let refused = |why: &str| {
        Error::Integrity(format!(
            "the record {} handed to you by {} {why}: it was changed outside zencrypt",
            row.name.as_deref().unwrap_or(&row.token),
            giver.username
        ))
    };
    if row.version != t.version {
        return Err(Error::Conflict(format!(
            "the record {} handed to you by {} changed since (version {}, not {})",
            row.name.as_deref().unwrap_or(&row.token),
            giver.username,
            row.version,
            t.version
        )));
    }
    if giver.id != owner.id {
        // A group's manager hands on what the group reads: the owner's signed share with
        // the group at this version, and the group's manager, vouch for it.
        let shares = tx.record_shares(&ShareFilter {
            record_id: Some(row.id),
            ..ShareFilter::default()
        })?;
        let Some(share) = managed_share(tx, session, giver.id, &shares)? else {
            return Err(refused("is not shared with a group they manage"));
        };
        let Grantee::Group { id, epoch } = share.to else {
            return Err(refused("is not shared with a group they manage"));
        };
        let group = tx
            .group_by_id(id)?
            .filter(|g| g.epoch == epoch && share.version == row.version)
            .ok_or_else(|| refused("is not shared with their group at this version"))?;
        let message = share_message(&row, &share, &group_fingerprint(&group.recipient));
        let (_, owner_keys, _) = signer_keys_if(tx, session, &owner.username, |u, k| {
            signed(u, k.verifies(&message, &share.signature))
        })?;
        if !owner_keys.verifies(&message, &share.signature) {
            return Err(refused(
                "is not shared with their group under the owner's signature",
            ));
        }
    }
    let (me, _) = own_keypair(tx, session)?;
    let message = transfer_message(&row, t, &me.public().fingerprint());
    let (_, giver_keys, _) = signer_keys_if(tx, session, &giver.username, |u, k| {
        signed(u, k.verifies(&message, &t.signature))
    })?;
    if !giver_keys.verifies(&message, &t.signature) {
        return Err(refused("does not carry their valid signature"));
    }
    let dek = unwrap_key_with(&me, &t.wrapped_dek).ok_or_else(|| refused("does not open"))?;
    let value = aead::open(
        &dek,
        &crate::records::value_aad(UserId(row.owner_id), RecordId(row.id)),
        &row.ciphertext,
    )
    .map_err(|_| refused("does not open under its data key"))?;
    Ok((row, owner.username, value))
}

/// Ends the transfer of a record being restored: its owner took it back (a transfer still
/// waiting is not taken in; one taken in no longer counts as handed over).
pub(crate) fn cancel_transfer(tx: &mut dyn Tx, record_id: i64) -> Result<bool> {
    Ok(tx.delete_record_transfer(record_id)? > 0)
}

impl Vault {
    /// Takes in the records handed to the session user (see the module's documentation),
    /// each as a new record of theirs under their default key: the same name, or
    /// `NAME.from-OWNER` when they have one by that name. The giver's key (and, from a
    /// group's manager, the owner's) is pinned on first use once their signature
    /// verifies, as a first share pins. A transfer that is forged, or whose record changed
    /// since, is dropped; one that cannot be taken in now (a key that changed since it was
    /// pinned, say) waits. One audit row per transfer (`data.receive`).
    pub fn data_receive(&mut self, session: &Session) -> Result<Vec<Received>> {
        let kdf = self.policy.kdf;
        self.authorized_rows(
            session,
            Permission::Own,
            AuditAction::DataReceive,
            "-",
            |tx| {
                let waiting = tx.record_transfers(&TransferFilter {
                    recipient_id: Some(session.user_id.0),
                    waiting: true,
                    ..TransferFilter::default()
                })?;
                let mut out = Vec::new();
                let mut rows = Vec::new();
                for t in waiting {
                    let by = grantee_name(tx, Grantee::User(t.giver_id))?;
                    let from = grantee_name(tx, Grantee::User(t.owner_id))?;
                    let outcome = match open_transfer(tx, session, &t) {
                        Ok((row, owner, value)) => {
                            let name = free_name(tx, session, row.name.as_deref(), &owner)?;
                            let opts = crate::records::PutOptions {
                                name: name.clone(),
                                ..crate::records::PutOptions::default()
                            };
                            let mut ring = crate::records::Keyring::new(session, None);
                            let mut puts = crate::records::Puts::new(None, false);
                            let mine = crate::records::put_in(
                                tx, session, &mut ring, &value, &opts, &mut puts, kdf,
                            )?;
                            puts.finish(tx)?;
                            tx.set_transfer_taken(t.id, crate::duration::now())?;
                            Receipt::Taken {
                                token: mine.token,
                                name,
                            }
                        }
                        Err(e @ Error::Database { .. }) => return Err(e),
                        Err(e @ (Error::Integrity(_) | Error::Conflict(_))) => {
                            tx.delete_record_transfer(t.record_id)?;
                            Receipt::Dropped(e.to_string())
                        }
                        Err(e) => Receipt::Waiting(e.to_string()),
                    };
                    let detail = match &outcome {
                        Receipt::Taken { token, name } => json!({
                            "record": token, "name": name, "from": from, "by": by, "taken": true,
                        }),
                        Receipt::Waiting(_) => json!({
                            "record": t.record_token, "from": from, "by": by, "taken": false,
                            "waiting": true,
                        }),
                        Receipt::Dropped(_) => json!({
                            "record": t.record_token, "from": from, "by": by, "taken": false,
                            "dropped": true,
                        }),
                    };
                    rows.push((AuditAction::DataReceive, detail));
                    out.push(Received {
                        from,
                        by,
                        token: t.record_token.clone(),
                        outcome,
                    });
                }
                if rows.is_empty() {
                    rows.push((AuditAction::DataReceive, json!({ "waiting": 0 })));
                }
                Ok((out, rows))
            },
        )
    }

    /// Hands a record to another user (see the module's documentation): one of the
    /// session user's own records (deleted on their side at once, restorable while the
    /// transfer waits), or, for the manager of a group a record is shared with, that
    /// record (`OWNER:NAME`). The new owner's key is pinned on first use; with
    /// `confirmed`, a key that changed meanwhile is refused (exit 7). Protected records
    /// cannot be transferred (exit 6).
    pub fn data_transfer(
        &mut self,
        session: &Session,
        reference: &str,
        to: &str,
        confirmed: Option<Fingerprint>,
    ) -> Result<Transferred> {
        let target = format!("{reference} -> {to}");
        self.authorized(
            session,
            Permission::Own,
            AuditAction::DataTransfer,
            &target,
            |tx| {
                if groups::group_name(to).is_some() {
                    return Err(to_a_group());
                }
                let own = if reference.contains(':') {
                    None
                } else {
                    tx.record_by_ref(session.user_id.0, reference)?
                };
                let (me, _) = own_keypair(tx, session)?;
                let (transfer, out) = match own {
                    Some(_) => {
                        let mut row =
                            crate::records::load_readable(tx, session.user_id, reference)?;
                        if row.identity_id.is_some() {
                            return Err(Error::Conflict(format!(
                                "record '{reference}' is protected by a record password and \
                                 cannot be transferred: its data key opens only with that password"
                            )));
                        }
                        let (to, shown, pinned_now) =
                            new_target(tx, session, to, YOURS, confirmed)?;
                        let mut ring = crate::records::Keyring::new(session, None);
                        let dek = ring.dek(tx, session, &row)?;
                        crate::records::open_value(&row, &dek)?;
                        let transfer = make_transfer(&me, session.user_id.0, &row, &to, &dek)?;
                        row.deleted_at = Some(crate::duration::now());
                        tx.update_record(&row)?;
                        crate::services::forget_records(tx, row.owner_id, &[row.id])?;
                        end_shares(tx, &mut row)?;
                        let out = Transferred {
                            record: row.name.clone().unwrap_or_else(|| row.token.clone()),
                            to: shown,
                            fingerprint: to.fingerprint,
                            pinned_now,
                            own: true,
                        };
                        (transfer, out)
                    }
                    None => {
                        let Some((owner, row, shares)) =
                            find_shared_of(tx, session, reference, false)?
                        else {
                            return Err(crate::records::not_found(reference));
                        };
                        let Some(share) = managed_share(tx, session, session.user_id.0, &shares)?
                        else {
                            return Err(Error::Conflict(format!(
                                "'{reference}' is {}'s: you may transfer your own records, and \
                                 records shared with a group you manage once their owner is \
                                 disabled",
                                owner.username
                            )));
                        };
                        if owner.status == UserStatus::Active {
                            return Err(Error::Conflict(format!(
                                "'{reference}' is {}'s, who is active: they transfer it \
                                 themselves; a group's manager hands on what the group reads \
                                 only once its owner is disabled",
                                owner.username
                            )));
                        }
                        let dek = open_share(tx, session, &owner, &row, &share)?;
                        // The manager, a member too, may take it themselves.
                        let (to, shown, pinned_now) = if tx
                            .user_by_name(to)?
                            .is_some_and(|u| u.id == session.user_id.0)
                        {
                            (
                                own_target(session.user_id.0, me.public())?,
                                session.username.clone(),
                                false,
                            )
                        } else {
                            new_target(tx, session, to, YOURS, confirmed)?
                        };
                        let Grantee::Group { id: group_id, .. } = share.to else {
                            return Err(crate::records::not_found(reference));
                        };
                        let member = match (to.to, tx.group_by_id(group_id)?) {
                            (Grantee::User(id), Some(g)) => {
                                groups::check_group(tx, session, g)?.has_member(id)
                            }
                            _ => false,
                        };
                        if !member {
                            return Err(Error::Conflict(format!(
                                "{shown} is not a member of the group '{reference}' is shared \
                                 with: a group's manager hands what it reads to its members"
                            )));
                        }
                        let transfer = make_transfer(&me, session.user_id.0, &row, &to, &dek)?;
                        let out = Transferred {
                            record: format!(
                                "{}:{}",
                                owner.username,
                                row.name.as_deref().unwrap_or(&row.token)
                            ),
                            to: shown,
                            fingerprint: to.fingerprint,
                            pinned_now,
                            own: false,
                        };
                        (transfer, out)
                    }
                };
                tx.put_record_transfer(&transfer)?;
                let detail = json!({
                    "record": transfer.record_token,
                    "to": out.to,
                    "fingerprint": out.fingerprint.to_string(),
                    "pinned_now": out.pinned_now,
                    "own": out.own,
                });
                Ok((out, detail))
            },
        )
    }
}
