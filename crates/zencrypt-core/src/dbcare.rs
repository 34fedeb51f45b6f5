//! Database care: status (counts, schema, integrity) and online backups.

use std::path::Path;

use serde_json::json;

use crate::authz::Permission;
use crate::chain::{self, Actor};
use crate::error::{Error, Result};
use crate::events::AuditAction;
use crate::fsutil;
use crate::model::Outcome;
use crate::storage::schema::{Value, blank_session_key, copy_rows};
use crate::storage::{BackendInfo, Counts, Storage, StoreError};
use crate::vault::{Session, Vault};

/// What `db status` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbStatus {
    /// Path or URL.
    pub path: String,
    /// Schema version.
    pub schema_version: i64,
    /// Row counts.
    pub counts: Counts,
    /// Problems found by the integrity check (empty when sound).
    pub problems: Vec<String>,
    /// The backend, its version and the connection's protection.
    pub backend: BackendInfo,
    /// The audit chain's head seq (0 for an empty log).
    pub head_seq: i64,
    /// The head this client had seen before (its rollback witness), if any.
    pub witnessed_seq: Option<i64>,
}

impl Vault {
    /// Counts, schema version and an integrity check. Needs no session; audited with the
    /// session's user when there is one.
    pub fn db_status(&mut self, session: Option<&Session>) -> Result<DbStatus> {
        let head = self.pending_head()?;
        let status = DbStatus {
            path: self.store.location().to_string(),
            schema_version: self.store.schema_version()?,
            counts: self.store.counts()?,
            problems: self.store.integrity_check()?,
            backend: self.store.info()?,
            head_seq: head.head,
            witnessed_seq: head.seen,
        };
        let actor = session
            .map(Session::actor)
            .unwrap_or_else(|| Actor::anonymous("-"));
        let detail =
            json!({ "integrity": if status.problems.is_empty() { "ok" } else { "damaged" } });
        self.audited(&actor, AuditAction::DbStatus, "-", |_| {
            Ok(((), detail.clone()))
        })?;
        Ok(status)
    }

    /// Records a schema migration done by `db migrate` (which needs the database's own
    /// privileges to change its tables, and so runs before any session can be read): the
    /// versions, and the backup written first, if any. Audited with the session's user
    /// when there is one.
    pub fn record_migration(
        &mut self,
        session: Option<&Session>,
        (from, to): (i64, i64),
        backup: Option<&str>,
    ) -> Result<()> {
        let actor = session
            .map(Session::actor)
            .unwrap_or_else(|| Actor::anonymous("-"));
        let detail = json!({ "from": from, "to": to, "backup": backup });
        self.audited(&actor, AuditAction::DbMigrate, "-", |_| {
            Ok(((), detail.clone()))
        })
    }

    /// Writes a consistent copy of the database to a new 0600 file (admins only). The copy
    /// is built in a private directory beside `dest` and appears at `dest` only after its
    /// audit record is committed: a copy of the password hashes and wrapped keys never
    /// exists unaudited where anyone else could reach it.
    ///
    /// `create` makes the empty database file the copy is written into (a SQLite file,
    /// whichever backend this vault is on). The copy is of one consistent snapshot, keeps
    /// this database's id, ids, bindings and audit chain, and holds no session's copy of a
    /// user key.
    pub fn db_backup(
        &mut self,
        session: &Session,
        dest: &Path,
        create: &dyn Fn(&Path) -> Result<Box<dyn Storage>>,
    ) -> Result<()> {
        let target = dest.display().to_string();
        self.require(
            session,
            Permission::Administer,
            AuditAction::DbBackup,
            &target,
        )?;
        let exists = || StoreError::Unopenable {
            location: target.clone(),
            reason: "the file exists; choose a new path".into(),
        };
        let built = (|| -> Result<fsutil::Staging> {
            // symlink_metadata: a dangling symlink counts as existing.
            if dest.symlink_metadata().is_ok() {
                return Err(exists().into());
            }
            let staging = fsutil::Staging::beside(dest).map_err(|e| StoreError::Unopenable {
                location: target.clone(),
                reason: e.to_string(),
            })?;
            let mut target = create(&staging.file)?;
            let mut from = self.store.read()?;
            let mut to = target.write()?;
            copy_rows(from.as_mut(), to.as_mut(), &mut |table, row| {
                blank_session_key(table, row);
                true
            })?;
            to.commit()?;
            drop(from);
            target.close()?;
            Ok(staging)
        })();
        let staging = match built {
            Ok(s) => s,
            Err(e) => {
                self.audit_failure(&session.actor(), AuditAction::DbBackup, &target, &e);
                return Err(e);
            }
        };
        self.authorized(
            session,
            Permission::Administer,
            AuditAction::DbBackup,
            &target,
            |_| Ok(((), json!({}))),
        )?;
        // Rare (the path appeared since the check, or the filesystem refused): the audit
        // log already says the copy was made, so the failure is recorded after it.
        staging.publish(dest).map_err(|e| {
            let e = crate::Error::io(format!("publishing the backup at {target}"), e);
            self.audit_failure(&session.actor(), AuditAction::DbBackup, &target, &e);
            e
        })
    }
}

/// What `db copy` made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// The copy's own, new database id.
    pub copy_id: Vec<u8>,
    /// The source's id.
    pub source_id: Vec<u8>,
    /// The source's audit head the copy continues from.
    pub source_seq: i64,
    /// The seq of the copy's hand-over entry.
    pub handover_seq: i64,
    /// Rows copied.
    pub rows: u64,
}

impl Vault {
    /// Copies the whole vault (users, keys, records, identities, usage and the audit
    /// chain; not sessions) into `target`, an empty database on any backend (admins only).
    ///
    /// The copy is a new database with an id of its own. Its audit chain is the source's,
    /// continued by a hand-over entry naming the source's id and head (seq and MAC) and the
    /// copy's id, so its history verifies and no client mistakes it for the source (their
    /// witnesses and session files are kept per database id). The copy is written in one
    /// transaction: it appears whole or not at all. The source records the copy after it
    /// is complete.
    pub fn db_copy(
        &mut self,
        session: &Session,
        target_label: &str,
        mut target: Box<dyn Storage>,
    ) -> Result<CopyReport> {
        self.require(
            session,
            Permission::Administer,
            AuditAction::DbCopy,
            target_label,
        )?;
        let made = (|| -> Result<CopyReport> {
            let counts = target.counts()?;
            if counts
                != (Counts {
                    users: 0,
                    keys: 0,
                    records: 0,
                    audit_entries: 0,
                })
            {
                return Err(Error::Conflict(format!(
                    "{target_label} is not empty (it holds {} users, {} keys, {} records and {} audit entries); copy into a new database",
                    counts.users, counts.keys, counts.records, counts.audit_entries
                )));
            }
            let source_label = self.store.location().to_string();
            let mut from = self.store.read()?;
            let source_id = from.database_id()?;
            let origin = chain::chain_origin(from.as_mut(), &self.audit_key)?;
            let (source_seq, source_mac) = from
                .audit_head()?
                .ok_or_else(|| Error::Conflict("the source has no audit history to copy".into()))?;
            let copy_id = crate::crypto::random_bytes::<16>().to_vec();
            let mut to = target.write()?;
            let rows = copy_rows(from.as_mut(), to.as_mut(), &mut |table, row| {
                blank_session_key(table, row);
                if table.name != "meta" {
                    return true;
                }
                match &row[0] {
                    // The copy's own id, the key check bound to it, and the copy's own
                    // hand-over are written afresh below.
                    Value::Text(k) if k == "database_id" => {
                        row[1] = Value::Blob(copy_id.clone());
                        true
                    }
                    Value::Text(k) if k == chain::KEY_CHECK || k == chain::COPY_SEQ => false,
                    _ => true,
                }
            })?;
            let (handover_seq, _) = chain::append(
                to.as_mut(),
                &self.audit_key,
                &session.actor(),
                AuditAction::DbCopiedFrom,
                &source_label,
                Outcome::Ok,
                &json!({
                    "source_id": crate::crypto::hex(&source_id),
                    "source_seq": source_seq,
                    "source_mac": crate::crypto::hex(&source_mac),
                    "origin_id": crate::crypto::hex(&origin),
                    "copy_id": crate::crypto::hex(&copy_id),
                }),
            )?;
            to.set_meta(chain::COPY_SEQ, handover_seq.to_string().as_bytes())?;
            to.commit()?;
            drop(from);
            target.close()?;
            Ok(CopyReport {
                copy_id,
                source_id,
                source_seq,
                handover_seq,
                rows,
            })
        })();
        let report = match made {
            Ok(r) => r,
            Err(e) => {
                self.audit_failure(&session.actor(), AuditAction::DbCopy, target_label, &e);
                return Err(e);
            }
        };
        let detail = json!({
            "copy_id": crate::crypto::hex(&report.copy_id),
            "source_seq": report.source_seq,
            "rows": report.rows,
        });
        self.authorized(
            session,
            Permission::Administer,
            AuditAction::DbCopy,
            target_label,
            |_| Ok(((), detail.clone())),
        )?;
        Ok(report)
    }
}
