//! Database care: status (counts, schema, integrity) and online backups.

use std::path::Path;

use serde_json::json;

use crate::audit::Actor;
use crate::authz::Permission;
use crate::error::Result;
use crate::storage::Counts;
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
        self.audited(&actor, "db.status", "-", |_| Ok(((), detail)))?;
        Ok(status)
    }

    /// Writes a consistent copy of the database to a new 0600 file (admins only).
    pub fn db_backup(&mut self, session: &Session, dest: &Path) -> Result<()> {
        let target = dest.display().to_string();
        self.require(session, Permission::Administer, "db.backup", &target)?;
        let result = self.store.backup_to(dest).map_err(crate::Error::from);
        match result {
            Ok(()) => self.authorized(
                session,
                Permission::Administer,
                "db.backup",
                &target,
                |_| Ok(((), json!({}))),
            ),
            Err(e) => {
                self.audit_failure(&session.actor(), "db.backup", &target, &e);
                Err(e)
            }
        }
    }
}
