//! `db status` and `db backup`.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;

use super::{Ctx, emitted};
use zencrypt_core::error::{Error, Result};

/// Database care.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum DbCommand {
    /// Path, schema version, row counts and an integrity check (no login needed).
    #[command(after_help = "Example:\n  zencrypt db status --json")]
    Status,
    /// Write a consistent online copy to a new 0600 file, usable with --db (admins).
    #[command(after_help = "Example:\n  zencrypt db backup /backups/zencrypt-$(date +%F).db")]
    Backup {
        /// Where to write the copy (must not exist).
        path: PathBuf,
    },
}

/// Runs a `db` subcommand.
pub fn run(ctx: &Ctx, cmd: DbCommand) -> Result<()> {
    let mut vault = ctx.vault()?;
    let out = &ctx.out;
    match cmd {
        DbCommand::Status => {
            // A session is optional here: with one, the audit record names the user.
            let session = ctx
                .token(&vault)
                .ok()
                .and_then(|t| vault.authenticate(&t).ok());
            let s = vault.db_status(session.as_ref())?;
            let integrity = if s.problems.is_empty() {
                "ok".to_string()
            } else {
                s.problems.join("; ")
            };
            if out.json {
                emitted(out.json_doc(&json!({
                    "path": s.path,
                    "schema_version": s.schema_version,
                    "users": s.counts.users,
                    "keys": s.counts.keys,
                    "records": s.counts.records,
                    "audit_entries": s.counts.audit_entries,
                    "integrity": integrity,
                })))?;
            } else {
                emitted(out.data(&format!(
                    "path: {}\nschema version: {}\nusers: {}\nkeys: {}\nrecords: {}\naudit entries: {}\nintegrity: {}\n",
                    s.path,
                    s.schema_version,
                    s.counts.users,
                    s.counts.keys,
                    s.counts.records,
                    s.counts.audit_entries,
                    integrity
                )))?;
            }
            if s.problems.is_empty() {
                Ok(())
            } else {
                Err(Error::Database {
                    message: format!(
                        "the database at {} failed its integrity check; restore it from a backup",
                        s.path
                    ),
                })
            }
        }
        DbCommand::Backup { path } => {
            let session = ctx.session(&mut vault)?;
            vault.db_backup(&session, &path, &crate::backend::create_file)?;
            out.note(&format!("Backed up to {} (0600).", path.display()));
            if out.json {
                emitted(out.json_doc(&json!({ "path": path.display().to_string() })))?;
            }
            Ok(())
        }
    }
}
