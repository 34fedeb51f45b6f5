//! Database care: status (counts, schema, integrity) and online backups.

use std::path::Path;

use serde_json::json;

use crate::authz::Permission;
use crate::chain::Actor;
use crate::error::{Error, Result};
use crate::events::AuditAction;
use crate::fsutil;
use crate::storage::schema::{SESSIONS, Value, copy_rows};
use crate::storage::{Counts, Storage, StoreError};
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
}

impl Vault {
    /// Counts, schema version and an integrity check. Needs no session; audited with the
    /// session's user when there is one.
    pub fn db_status(&mut self, session: Option<&Session>) -> Result<DbStatus> {
        let status = DbStatus {
            path: self.store.location().to_string(),
            schema_version: self.store.schema_version()?,
            counts: self.store.counts()?,
            problems: self.store.integrity_check()?,
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
            let key_copy = SESSIONS
                .position("wrapped_user_key")
                .ok_or_else(|| Error::Internal("the sessions table has no key copy".into()))?;
            copy_rows(from.as_mut(), to.as_mut(), &mut |table, row| {
                // Sessions do not travel: without their key copies a token that is
                // revoked later cannot open the backup.
                if table.name == SESSIONS.name {
                    row[key_copy] = Value::Blob(Vec::new());
                }
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
