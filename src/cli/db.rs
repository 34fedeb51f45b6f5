//! `db status`, `db backup` and `db copy`.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;

use super::{Ctx, emitted};
use zencrypt_core::authz::Permission;
use zencrypt_core::config::DbLocation;
use zencrypt_core::error::{Error, Result};
use zencrypt_core::events::AuditAction;

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
    /// Copy the whole vault into a new, empty database on either backend (admins).
    ///
    /// The copy has an id of its own and its audit chain continues from an entry naming
    /// this database and its head, so `audit verify` passes on it. Sessions do not travel:
    /// log in to the copy.
    #[command(
        after_help = "Examples:\n  zencrypt db copy --to postgres://vault@db.example.com/team\n  zencrypt --db postgres://vault@db.example.com/team db copy --to ./vault.db"
    )]
    Copy {
        /// The target: a file path or a postgres:// URL (no password in it) of an empty
        /// database.
        #[arg(long, value_name = "URL|PATH")]
        to: std::ffi::OsString,
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
                    "backend": s.backend.backend,
                    "backend_version": s.backend.version,
                    "tls": s.backend.tls,
                    "audit_head_seq": s.head_seq,
                    "witnessed_seq": s.witnessed_seq,
                })))?;
            } else {
                let tls = s
                    .backend
                    .tls
                    .as_ref()
                    .map(|t| format!("tls: {t}\n"))
                    .unwrap_or_default();
                let seen = match s.witnessed_seq {
                    Some(seq) => format!("this client had seen seq {seq}"),
                    None => "first visit from this client".to_string(),
                };
                emitted(out.data(&format!(
                    "path: {}\nbackend: {} {}\n{tls}schema version: {}\nusers: {}\nkeys: {}\nrecords: {}\naudit entries: {}\naudit head: seq {} ({seen})\nintegrity: {}\n",
                    s.path,
                    s.backend.backend,
                    s.backend.version,
                    s.schema_version,
                    s.counts.users,
                    s.counts.keys,
                    s.counts.records,
                    s.counts.audit_entries,
                    s.head_seq,
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
        DbCommand::Copy { to } => {
            let session = ctx.session(&mut vault)?;
            let target = DbLocation::parse(&to, "--to")?;
            if target == ctx.cfg.db {
                return Err(Error::Usage(
                    "--to names the database this command runs on; give a new one".into(),
                ));
            }
            let label = target.display();
            // Refused before anything is created at the target.
            vault.require(
                &session,
                Permission::Administer,
                AuditAction::DbCopy,
                &label,
            )?;
            let store = crate::backend::open_location(&ctx.cfg, &target, true)?;
            let r = vault.db_copy(&session, &label, store)?;
            out.note(&format!(
                "Copied {} rows to {label}; its audit chain continues from seq {} here in its entry {}. Log in there with --db.",
                r.rows, r.source_seq, r.handover_seq
            ));
            if out.json {
                emitted(out.json_doc(&json!({
                    "to": label,
                    "rows": r.rows,
                    "copy_id": zencrypt_core::crypto::hex(&r.copy_id),
                    "source_id": zencrypt_core::crypto::hex(&r.source_id),
                    "source_seq": r.source_seq,
                    "handover_seq": r.handover_seq,
                })))?;
            }
            Ok(())
        }
    }
}
