//! Listing, deleting, restoring, purging and re-keying records.

use secrecy::SecretString;
use serde_json::json;

use super::{Keyring, RecordInfo, identity, is_expired, not_found};
use crate::authz::Permission;
use crate::duration;
use crate::error::{Error, Result};
use crate::events::AuditAction;
use crate::glob::Glob;
use crate::model::RecordFilter;
use crate::storage::StoreError;
use crate::vault::{Session, Vault};

/// What `data purge` removes.
#[derive(Debug, Clone, Copy, Default)]
pub struct PurgeOptions {
    /// Expired records (soft-deleted, or removed with `hard`).
    pub expired: bool,
    /// Soft-deleted records (always removed).
    pub deleted: bool,
    /// Remove rows (and their data keys) instead of soft-deleting expired ones.
    pub hard: bool,
    /// Only those expired or deleted at least this many seconds ago.
    pub older_than: Option<u64>,
}

impl Vault {
    /// Lists the caller's records (never values), optionally only those under the named
    /// key `key` (exit 5 if the caller has no such key) and those whose name matches
    /// `name` (an unnamed record by its token); the filter's limit and offset apply after
    /// the pattern.
    pub fn data_list(
        &mut self,
        session: &Session,
        filter: &RecordFilter,
        key: Option<&str>,
        name: Option<&Glob>,
    ) -> Result<Vec<RecordInfo>> {
        self.authorized(
            session,
            Permission::Own,
            AuditAction::DataList,
            key.unwrap_or("-"),
            |tx| {
                let mut filter = filter.clone();
                if let Some(name) = key {
                    filter.key_id = Some(crate::keys::load(tx, session.user_id, name)?.id);
                }
                let rows = match name {
                    None => tx.list_records(session.user_id.0, &filter)?,
                    Some(glob) => {
                        let limit = filter
                            .limit
                            .take()
                            .map_or(usize::MAX, |l| l.max(0) as usize);
                        let offset = std::mem::take(&mut filter.offset).max(0) as usize;
                        tx.list_records(session.user_id.0, &filter)?
                            .into_iter()
                            .filter(|r| glob.matches(r.name.as_deref().unwrap_or(&r.token)))
                            .skip(offset)
                            .take(limit)
                            .collect()
                    }
                };
                let mut ring = Keyring::new(session, None);
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    out.push(ring.info(tx, row)?);
                }
                let n = out.len();
                Ok((out, json!({ "count": n })))
            },
        )
    }

    /// Deletes records: soft (restorable) or `hard` (row and data key gone). All or
    /// nothing: one unknown reference refuses the whole call.
    pub fn data_rm(&mut self, session: &Session, refs: &[String], hard: bool) -> Result<u64> {
        let target = refs.join(",");
        self.authorized(
            session,
            Permission::Own,
            AuditAction::DataRm,
            &target,
            |tx| {
                let now = duration::now();
                let mut n = 0;
                for r in refs {
                    let mut row = tx
                        .record_by_ref(session.user_id.0, r)?
                        .ok_or_else(|| not_found(r))?;
                    if hard {
                        tx.delete_record(row.id)?;
                    } else if row.deleted_at.is_none() {
                        row.deleted_at = Some(now);
                        tx.update_record(&row)?;
                        crate::services::forget_records(tx, row.owner_id, &[row.id])?;
                        crate::sharing::end_shares(tx, &mut row)?;
                    } else {
                        return Err(Error::NotFound(format!(
                            "record '{}' is already deleted; nothing was changed (`zencrypt data restore {}` brings it back, `--hard` wipes it)",
                            crate::text::printable(r, 80),
                            crate::text::printable(r, 80)
                        )));
                    }
                    n += 1;
                }
                Ok((n, json!({ "count": n, "hard": hard })))
            },
        )
    }

    /// Brings a soft-deleted record back.
    pub fn data_restore(&mut self, session: &Session, reference: &str) -> Result<u64> {
        self.authorized(
            session,
            Permission::Own,
            AuditAction::DataRestore,
            reference,
            |tx| {
                let mut row = tx
                    .record_by_ref(session.user_id.0, reference)?
                    .ok_or_else(|| not_found(reference))?;
                if row.deleted_at.is_none() {
                    return Err(Error::Conflict(format!(
                        "record '{reference}' is not deleted"
                    )));
                }
                row.deleted_at = None;
                tx.update_record(&row).map_err(|e| match e {
                    StoreError::Duplicate { .. } => Error::Conflict(format!(
                        "another live record is named '{}'; rename or delete it first",
                        row.name.clone().unwrap_or_default()
                    )),
                    e => e.into(),
                })?;
                let id = row.id;
                crate::services::renew_records(tx, session, |r| r.id == id)?;
                // Its transfer ends, waiting or taken in: the record is yours again, and no
                // longer counts as handed over.
                let detail = if crate::sharing::cancel_transfer(tx, id)? {
                    json!({ "transfer_ended": true })
                } else {
                    json!({})
                };
                Ok((1, detail))
            },
        )
    }

    /// Removes expired and/or deleted records. Returns how many.
    pub fn data_purge(&mut self, session: &Session, opts: PurgeOptions) -> Result<u64> {
        if !opts.expired && !opts.deleted {
            return Err(Error::Usage(
                "say what to purge: --expired, --deleted or both".into(),
            ));
        }
        self.authorized(session, Permission::Own, AuditAction::DataPurge, "-", |tx| {
            let now = duration::now();
            let cutoff = now.saturating_sub(opts.older_than.map(|s| s as i64).unwrap_or(0));
            // With their values: a soft delete writes the whole row back.
            let all = tx.list_records(
                session.user_id.0,
                &RecordFilter {
                    now,
                    with_values: true,
                    ..RecordFilter::default()
                },
            )?;
            let mut n = 0u64;
            for mut row in all {
                let deleted_long_enough = row.deleted_at.is_some_and(|d| d <= cutoff);
                let expired_long_enough =
                    is_expired(&row, now) && row.expires_at.is_some_and(|e| e <= cutoff);
                if opts.deleted && deleted_long_enough {
                    tx.delete_record(row.id)?;
                    n += 1;
                } else if opts.expired && expired_long_enough {
                    if opts.hard {
                        tx.delete_record(row.id)?;
                        n += 1;
                    } else if row.deleted_at.is_none() {
                        row.deleted_at = Some(now);
                        tx.update_record(&row)?;
                        crate::services::forget_records(tx, row.owner_id, &[row.id])?;
                        crate::sharing::end_shares(tx, &mut row)?;
                        n += 1;
                    }
                }
            }
            Ok((n, json!({ "count": n, "expired": opts.expired, "deleted": opts.deleted, "hard": opts.hard })))
        })
    }

    /// Changes a record password for every record under it: one key is rewrapped, no
    /// record is touched. Returns how many records the password protects.
    pub fn data_rekey(
        &mut self,
        session: &Session,
        old: &SecretString,
        new: &SecretString,
    ) -> Result<u64> {
        crate::accounts::validate_new_password(new)?;
        self.authorized(
            session,
            Permission::Own,
            AuditAction::DataRekey,
            "-",
            |tx| {
                let identity_id =
                    identity::rekey(tx, session.user_id, &session.user_key, old, new)?;
                let n = tx.identity_record_count(identity_id.0)? as u64;
                Ok((n, json!({ "count": n })))
            },
        )
    }
}
