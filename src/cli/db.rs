//! `db status`, `db backup`, `db copy`, `db migrate` and `db audit-key rotate`.

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
    /// Upgrade a PostgreSQL database's schema to this zencrypt's, after writing a backup.
    ///
    /// A shared database is never upgraded behind the team's back: clients that find an
    /// older schema change nothing and name this command. It needs the privileges of the
    /// database's owner (members' least-privilege roles cannot change tables). The backup
    /// is a SQLite zencrypt file of the database as it is, usable with --db or `db copy`.
    /// A SQLite file is upgraded when it is opened; here it is only reported.
    #[command(
        after_help = "Examples:\n  zencrypt db migrate\n  zencrypt db migrate --backup /backups/team-before-upgrade.db"
    )]
    Migrate {
        /// Where to write the backup (must not exist; default: backups/ in the data
        /// directory, named by the time).
        #[arg(long, value_name = "PATH", conflicts_with = "no_backup")]
        backup: Option<PathBuf>,
        /// Upgrade without writing a backup first.
        #[arg(long)]
        no_backup: bool,
    },
    /// The audit key every client of this database holds.
    #[command(subcommand)]
    AuditKey(AuditKeyCommand),
}

/// `db audit-key`.
#[derive(Debug, Subcommand)]
pub enum AuditKeyCommand {
    /// Continue the audit chain under a new key (admins), e.g. when a holder leaves.
    ///
    /// The whole chain and every row must verify first. A hand-over entry, authenticated
    /// by both keys, seals every entry before it; from then on only the new key opens
    /// this database (sessions stay valid). The new key is written to --new-key-file
    /// before anything changes; every client then points ZENCRYPT_AUDIT_KEY_FILE at it.
    #[command(
        after_help = "Example:\n  zencrypt db audit-key rotate --new-key-file ./team-audit.key.new\n  # hand the file to every member out of band; each sets ZENCRYPT_AUDIT_KEY_FILE to it"
    )]
    Rotate {
        /// Where to write the new key (0600, must not exist), for ZENCRYPT_AUDIT_KEY_FILE.
        #[arg(long, value_name = "PATH")]
        new_key_file: Option<PathBuf>,
    },
}

/// Runs a `db` subcommand.
pub fn run(ctx: &Ctx, cmd: DbCommand) -> Result<()> {
    match cmd {
        DbCommand::Migrate { backup, no_backup } => migrate(ctx, backup, no_backup),
        DbCommand::AuditKey(AuditKeyCommand::Rotate { new_key_file }) => {
            rotate_audit_key(ctx, new_key_file)
        }
        DbCommand::Status => status(ctx),
        DbCommand::Backup { path } => backup(ctx, path),
        DbCommand::Copy { to } => copy(ctx, to),
    }
}

/// `db migrate`: the backup, the upgrade, then the audit entry under the new schema.
fn migrate(ctx: &Ctx, backup: Option<PathBuf>, no_backup: bool) -> Result<()> {
    let out = &ctx.out;
    let backup = match (backup, no_backup) {
        (_, true) => None,
        (Some(path), false) => Some(path),
        (None, false) => {
            let dir = ctx.cfg.data_dir.join("backups");
            let stamp = zencrypt_core::duration::rfc3339(zencrypt_core::duration::now())
                .replace([':', '-'], "");
            Some(dir.join(format!("before-migrate-{stamp}.db")))
        }
    };
    let done = crate::backend::migrate(&ctx.cfg, backup.as_deref())?;
    if done.from == done.to {
        out.note(&format!(
            "The schema is at version {}, the latest this zencrypt knows; nothing was changed.",
            done.to
        ));
    } else {
        let mut vault = ctx.vault()?;
        let session = ctx
            .token(&vault)
            .ok()
            .and_then(|t| vault.authenticate(&t).ok());
        let backup_text = backup.as_ref().map(|p| p.display().to_string());
        vault.record_migration(
            session.as_ref(),
            (done.from, done.to),
            backup_text.as_deref(),
        )?;
        if let Some(path) = &backup {
            out.note(&format!(
                "Backed up the database as it was (schema {}) to {} (0600).",
                done.from,
                path.display()
            ));
        }
        out.note(&format!(
            "Migrated the schema from version {} to {}.",
            done.from, done.to
        ));
    }
    if out.json {
        let backup = backup
            .filter(|_| done.from != done.to)
            .map(|p| p.display().to_string());
        emitted(out.json_doc(&json!({
            "from": done.from,
            "to": done.to,
            "backup": backup,
        })))?;
    }
    Ok(())
}

/// `db audit-key rotate`: the new key is safe on disk before the database changes.
fn rotate_audit_key(ctx: &Ctx, new_key_file: Option<PathBuf>) -> Result<()> {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use zencrypt_core::crypto::mac::MacKey;
    use zeroize::Zeroizing;

    let out = &ctx.out;
    let mut vault = ctx.vault()?;
    let session = ctx.session(&mut vault)?;
    vault.require(
        &session,
        Permission::Administer,
        AuditAction::AuditKeyRotate,
        "-",
    )?;
    // The data directory's audit.key may serve other databases on this machine (backups,
    // copies), so it is never replaced: the new key always goes to a file of its own.
    let Some(dest) = new_key_file else {
        return Err(Error::Usage(
            "name a new file for the new key with --new-key-file PATH, then point ZENCRYPT_AUDIT_KEY_FILE at it for this database".into(),
        ));
    };
    let mut raw = Zeroizing::new([0u8; 32]);
    zencrypt_core::crypto::fill_random(&mut raw[..]);
    // A key file holds the key's text, as ZENCRYPT_AUDIT_KEY_FILE reads it.
    let text = Zeroizing::new(STANDARD.encode(&raw[..]));
    crate::ui::files::write_new_private(&dest, format!("{}\n", &*text).as_bytes())?;
    let new_key = || MacKey::new(text.as_bytes().to_vec());
    let r = match vault.rotate_audit_key(&session, new_key()) {
        Ok(r) => r,
        Err(e) => {
            // The key file goes only when the database surely still uses the old key:
            // a commit whose outcome is unknown may have handed the chain over.
            let uses_new = crate::backend::open(&ctx.cfg, false)
                .and_then(|store| zencrypt_core::vault::uses_audit_key(store, &new_key()));
            if matches!(uses_new, Ok(false)) {
                let _ = std::fs::remove_file(&dest);
            } else {
                out.note(&format!(
                    "The rotation may have been committed: the new key is kept in {}.",
                    dest.display()
                ));
            }
            return Err(e);
        }
    };
    out.note(&format!(
        "Rotated the audit key: entry {} hands the chain over to the new key and seals the {} entries before it; {} users and {} sessions were bound anew.",
        r.seq, r.entries_before, r.users, r.sessions
    ));
    out.note(&format!(
        "The new key is in {} (0600). Hand it to every member out of band (each sets ZENCRYPT_AUDIT_KEY_FILE to it); the old key no longer opens this database.",
        dest.display()
    ));
    if out.json {
        emitted(out.json_doc(&json!({
            "handover_seq": r.seq,
            "entries_before": r.entries_before,
            "users": r.users,
            "sessions": r.sessions,
            "new_key_file": dest.display().to_string(),
        })))?;
    }
    Ok(())
}

/// `db status`: needs no session; with one, the audit record names the user.
fn status(ctx: &Ctx) -> Result<()> {
    let mut vault = ctx.vault()?;
    let out = &ctx.out;
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

/// `db backup PATH`.
fn backup(ctx: &Ctx, path: PathBuf) -> Result<()> {
    let mut vault = ctx.vault()?;
    let out = &ctx.out;
    let session = ctx.session(&mut vault)?;
    vault.db_backup(&session, &path, &crate::backend::create_file)?;
    out.note(&format!("Backed up to {} (0600).", path.display()));
    if out.json {
        emitted(out.json_doc(&json!({ "path": path.display().to_string() })))?;
    }
    Ok(())
}

/// `db copy --to URL|PATH`.
fn copy(ctx: &Ctx, to: std::ffi::OsString) -> Result<()> {
    let mut vault = ctx.vault()?;
    let out = &ctx.out;
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
