//! `key create|import|list|show|history|rotate|check|set|export|disable|enable|destroy`.

use crate::ui::transfer::parse_material;
use crate::ui::views::{check_text, history_table, keys_table, show_text};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::{Ctx, emitted};
use crate::ui::input::{self, prompt_error};
use crate::ui::output::Output;
use crate::ui::prompt::{Prompter, TermPrompter};
use zencrypt_core::duration;
use zencrypt_core::error::{Error, Result};
use zencrypt_core::keys::{KeyChanges, KeyInfo, KeyOptions, Rotated};
use zencrypt_core::model::KeyStatus;
use zencrypt_core::vault::{Session, Vault};

/// Key commands.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum KeyCommand {
    /// Create a key with random 256-bit material.
    #[command(
        after_help = "Example:\n  zencrypt key create backups --rotate-every 90d --expires-in 2y"
    )]
    Create(CreateArgs),
    /// Import a 32-byte key from stdin (raw bytes, 64 hex digits or base64).
    #[command(after_help = "Example:\n  openssl rand -hex 32 | zencrypt key import legacy")]
    Import(ImportArgs),
    /// List your keys.
    #[command(after_help = "Example:\n  zencrypt key list --json")]
    List {
        /// Include destroyed keys.
        #[arg(long)]
        all: bool,
    },
    /// Show a key and its versions.
    #[command(after_help = "Example:\n  zencrypt key show backups")]
    Show {
        /// Key name.
        #[arg(add = clap_complete::ArgValueCandidates::new(crate::ui::complete::keys))]
        name: String,
    },
    /// Show a key's lifecycle log.
    #[command(after_help = "Example:\n  zencrypt key history backups")]
    History {
        /// Key name.
        #[arg(add = clap_complete::ArgValueCandidates::new(crate::ui::complete::keys))]
        name: String,
    },
    /// Rotate a key (or every key that is due) to a new version.
    #[command(after_help = "Examples:\n  zencrypt key rotate backups\n  zencrypt key rotate --due")]
    Rotate(RotateArgs),
    /// Report keys that are due for rotation, expired, or near the encryption limit.
    #[command(after_help = "Example:\n  zencrypt key check --json")]
    Check,
    /// Change a key's rotation period, expiry or minimum decryption version.
    #[command(
        after_help = "Example:\n  zencrypt key set backups --rotate-every 30d --min-decrypt-version 2"
    )]
    Set(SetArgs),
    /// Print an exportable key's material as base64.
    #[command(after_help = "Example:\n  zencrypt key export backups --version 1")]
    Export(ExportArgs),
    /// Disable a key: it neither encrypts nor decrypts until enabled.
    #[command(after_help = "Example:\n  zencrypt key disable backups")]
    Disable {
        /// Key name.
        #[arg(add = clap_complete::ArgValueCandidates::new(crate::ui::complete::keys))]
        name: String,
    },
    /// Enable a disabled key.
    #[command(after_help = "Example:\n  zencrypt key enable backups")]
    Enable {
        /// Key name.
        #[arg(add = clap_complete::ArgValueCandidates::new(crate::ui::complete::keys))]
        name: String,
    },
    /// Destroy a key's material: everything encrypted under it becomes unrecoverable.
    #[command(after_help = "Example:\n  zencrypt key destroy old-key --yes")]
    Destroy(DestroyArgs),
    /// Let another user or a group decrypt files encrypted under one of your keys (and,
    /// with --write, encrypt with it), end to end.
    #[command(
        after_help = "Examples:\n  zencrypt key share backups --with bob --fingerprint 'd12e 3557 ca74 fa91 fe1f bdce 1268 32f0'\n  zencrypt key share backups --with @ops --write\n  # bob: zencrypt decrypt disk.img.zc -o disk.img\n  # @ops members: zencrypt encrypt --key alice:backups db.dump -o db.dump.zc\n\nEvery version that may still decrypt is wrapped to bob's public key (pinned the first\ntime) and signed with yours; each rotation wraps the new version for him too. He can\ndecrypt; with --write he may also encrypt with the latest version. Sharing again with or\nwithout --write changes the access. Disabling or destroying the key ends its shares."
    )]
    Share {
        /// Key name.
        #[arg(add = clap_complete::ArgValueCandidates::new(crate::ui::complete::keys))]
        name: String,
        /// The user, or @group, to share it with.
        #[arg(long, value_name = "USER|@GROUP")]
        with: String,
        /// The fingerprint the user gave you: the share is refused unless their key has it.
        #[arg(long, value_name = "FP")]
        fingerprint: Option<String>,
        /// Let them encrypt with it too (`encrypt --key OWNER:NAME`).
        #[arg(long)]
        write: bool,
    },
    /// Stop sharing a key with a user or a group: no later version reaches them.
    #[command(
        after_help = "Example:\n  zencrypt key unshare backups --from bob\n  zencrypt key rotate backups   # new files use a version bob never had\n\nThe versions bob was given are taken back from the database, but whatever he decrypted,\nor kept of them, stays his: rotate the key so new files use a version he never had."
    )]
    Unshare {
        /// Key name.
        #[arg(add = clap_complete::ArgValueCandidates::new(crate::ui::complete::keys))]
        name: String,
        /// The user, or @group, to stop sharing it with.
        #[arg(long, value_name = "USER|@GROUP")]
        from: String,
    },
}

// `key create` arguments. (A plain comment: see `cli::Command`.)
#[allow(missing_docs)]
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Key name (1-64 of A-Z a-z 0-9 . _ -).
    pub name: String,
    /// Rotate when the latest version is this old (e.g. 90d).
    #[arg(long, value_name = "DUR")]
    pub rotate_every: Option<String>,
    /// Stop encrypting after this long (decryption keeps working).
    #[arg(long, value_name = "DUR")]
    pub expires_in: Option<String>,
    /// Allow `key export` to print the material.
    #[arg(long)]
    pub exportable: bool,
}

// `key import` arguments. (A plain comment: see `cli::Command`.)
#[allow(missing_docs)]
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Key name.
    pub name: String,
    /// Allow `key export` to print the material.
    #[arg(long)]
    pub exportable: bool,
}

// `key rotate` arguments. (A plain comment: see `cli::Command`.)
#[allow(missing_docs)]
#[derive(Debug, Args)]
pub struct RotateArgs {
    /// Key name.
    #[arg(required_unless_present = "due", conflicts_with = "due", add = clap_complete::ArgValueCandidates::new(crate::ui::complete::keys))]
    pub name: Option<String>,
    /// Rotate exactly the keys whose rotation is due.
    #[arg(long)]
    pub due: bool,
    /// Also move stored records' data keys to the new version (data is not re-encrypted).
    #[arg(long)]
    pub rewrap: bool,
}

// `key set` arguments. (A plain comment: see `cli::Command`.)
#[allow(missing_docs)]
#[derive(Debug, Args)]
pub struct SetArgs {
    /// Key name.
    #[arg(add = clap_complete::ArgValueCandidates::new(crate::ui::complete::keys))]
    pub name: String,
    /// New rotation period, or `none`.
    #[arg(long, value_name = "DUR|none")]
    pub rotate_every: Option<String>,
    /// New expiry counted from now, or `none`.
    #[arg(long, value_name = "DUR|none")]
    pub expires_in: Option<String>,
    /// Refuse to decrypt versions older than N.
    #[arg(long, value_name = "N")]
    pub min_decrypt_version: Option<i64>,
}

// `key export` arguments. (A plain comment: see `cli::Command`.)
#[allow(missing_docs)]
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Key name.
    #[arg(add = clap_complete::ArgValueCandidates::new(crate::ui::complete::keys))]
    pub name: String,
    /// Which version (default: the latest).
    #[arg(long, value_name = "N")]
    pub version: Option<i64>,
}

// `key destroy` arguments. (A plain comment: see `cli::Command`.)
#[allow(missing_docs)]
#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// Key name.
    pub name: String,
    /// Do not ask for confirmation (required without a terminal).
    #[arg(long)]
    pub yes: bool,
}

fn dur(s: Option<&str>) -> Result<Option<u64>> {
    s.map(duration::parse).transpose()
}

fn dur_or_none(s: Option<&str>) -> Result<Option<Option<u64>>> {
    match s {
        None => Ok(None),
        Some("none") => Ok(Some(None)),
        Some(d) => Ok(Some(Some(duration::parse(d)?))),
    }
}

/// A key as JSON (the `key list` shape plus a few more fields).
pub fn key_json(i: &KeyInfo) -> Value {
    let k = &i.key;
    json!({
        "name": k.name,
        "latest_version": k.latest_version,
        "status": k.status.as_str(),
        "exportable": k.exportable,
        "rotation_period": k.rotation_period.map(|p| duration::format(p as u64)),
        "expires_at": k.expires_at.map(duration::rfc3339),
        "due": i.due,
        "expired": i.expired,
        "min_decryption_version": k.min_decrypt_version,
        "created_at": duration::rfc3339(k.created_at),
    })
}

/// Runs a `key` subcommand.
pub fn run(ctx: &Ctx, cmd: KeyCommand) -> Result<()> {
    let mut vault = ctx.vault()?;
    let session = ctx.session(&mut vault)?;
    match cmd {
        KeyCommand::Create(a) => create(ctx, &mut vault, &session, a),
        KeyCommand::Import(a) => import(ctx, &mut vault, &session, a),
        KeyCommand::List { all } => list(ctx, &mut vault, &session, all),
        KeyCommand::Show { name } => show(ctx, &mut vault, &session, &name),
        KeyCommand::History { name } => history(ctx, &mut vault, &session, &name),
        KeyCommand::Rotate(a) => rotate(ctx, &mut vault, &session, a),
        KeyCommand::Check => check(ctx, &mut vault, &session),
        KeyCommand::Set(a) => set(ctx, &mut vault, &session, a),
        KeyCommand::Export(a) => export(ctx, &mut vault, &session, a),
        KeyCommand::Disable { name } => disable(ctx, &mut vault, &session, &name),
        KeyCommand::Enable { name } => enable(ctx, &mut vault, &session, &name),
        KeyCommand::Destroy(a) => destroy(ctx, &mut vault, &session, a),
        KeyCommand::Share {
            name,
            with,
            fingerprint,
            write,
        } => {
            let expected = crate::ui::input::fingerprint_arg(fingerprint.as_deref())?;
            let s = vault.key_share(&session, &name, &with, write, expected)?;
            if s.pinned_now {
                ctx.out
                    .note(&crate::ui::views::pinned_text(&s.with, &s.fingerprint));
            }
            ctx.out.note(&crate::ui::views::key_shared_text(&s));
            if ctx.out.json {
                emitted(ctx.out.json_doc(&serde_json::json!({
                    "name": s.name,
                    "with": s.with,
                    "fingerprint": s.fingerprint.to_string(),
                    "pinned_now": s.pinned_now,
                    "versions": s.versions,
                    "write": s.write,
                    "changed": s.changed,
                })))?;
            }
            Ok(())
        }
        KeyCommand::Unshare { name, from } => {
            let (n, all_ended) = vault.key_unshare(&session, &name, &from)?;
            let mut text = format!(
                "Stopped sharing key {name} with {from}: {n} version(s) taken back; no later\n\
                 version reaches them. Rotate the key (`zencrypt key rotate {name}`) so new\n\
                 files use a version they never had."
            );
            if all_ended {
                text.push_str(
                    "\nIts shares were changed outside zencrypt: every share of it ended.",
                );
            }
            ctx.out.note(&text);
            if ctx.out.json {
                emitted(ctx.out.json_doc(&serde_json::json!({
                    "name": name,
                    "from": from,
                    "versions": n,
                    "all_ended": all_ended,
                })))?;
            }
            Ok(())
        }
    }
}

/// Prints `doc` with `--json`, else `text`.
fn json_or(out: &Output, doc: &Value, text: &str) -> Result<()> {
    if out.json {
        emitted(out.json_doc(doc))
    } else {
        emitted(out.data_line(text))
    }
}

/// `key create`: creates a key with random material.
fn create(ctx: &Ctx, vault: &mut Vault, session: &Session, a: CreateArgs) -> Result<()> {
    let out = &ctx.out;
    let opts = KeyOptions {
        rotate_every: dur(a.rotate_every.as_deref())?,
        expires_in: dur(a.expires_in.as_deref())?,
        exportable: a.exportable,
    };
    let i = vault.key_create(session, &a.name, opts)?;
    out.note(&format!("Created key {} (version 1).", a.name));
    if out.json {
        emitted(out.json_doc(&key_json(&i)))?;
    }
    Ok(())
}

/// `key import`: imports key material from a prompt or stdin.
fn import(ctx: &Ctx, vault: &mut Vault, session: &Session, a: ImportArgs) -> Result<()> {
    let out = &ctx.out;
    let material = if input::is_interactive(&ctx.cfg) {
        let line = TermPrompter::new()
            .secret("Key (64 hex digits or base64): ")
            .map_err(prompt_error)?;
        parse_material(secrecy::ExposeSecret::expose_secret(&line).as_bytes())?
    } else {
        let buf = zencrypt_core::crypto::read_secret(std::io::stdin().lock(), 4096)
            .map_err(|e| Error::io("reading stdin", e))?;
        parse_material(&buf)?
    };
    let i = vault.key_import(session, &a.name, material, a.exportable)?;
    out.note(&format!("Imported key {} (version 1).", a.name));
    if out.json {
        emitted(out.json_doc(&key_json(&i)))?;
    }
    Ok(())
}

/// `key list`: lists your keys.
fn list(ctx: &Ctx, vault: &mut Vault, session: &Session, all: bool) -> Result<()> {
    let out = &ctx.out;
    let keys = vault.key_list(session, all)?;
    if out.json {
        let list: Vec<Value> = keys.iter().map(key_json).collect();
        return emitted(out.json_doc(&json!(list)));
    }
    if keys.is_empty() {
        out.note("No keys yet; create one with `zencrypt key create NAME`.");
        return Ok(());
    }
    emitted(out.data_line(&keys_table(&keys)))
}

/// `key show`: shows a key and its versions.
fn show(ctx: &Ctx, vault: &mut Vault, session: &Session, name: &str) -> Result<()> {
    let (i, versions) = vault.key_show(session, name)?;
    let mut doc = key_json(&i);
    doc["versions"] = json!(
        versions
            .iter()
            .map(|v| json!({
                "version": v.version,
                "created_at": duration::rfc3339(v.created_at),
                "encryptions": v.encryptions,
                "bytes": v.bytes,
                "destroyed": v.destroyed,
            }))
            .collect::<Vec<_>>()
    );
    json_or(&ctx.out, &doc, &show_text(&i, &versions))
}

/// `key history`: shows a key's lifecycle log.
fn history(ctx: &Ctx, vault: &mut Vault, session: &Session, name: &str) -> Result<()> {
    let events = vault.key_history(session, name)?;
    let doc = json!(
        events
            .iter()
            .map(|e| json!({
                "at": duration::rfc3339(e.at),
                "event": e.event,
                "version": e.version,
                "actor": e.actor,
                "detail": serde_json::from_str::<Value>(&e.detail).unwrap_or(Value::Null),
            }))
            .collect::<Vec<_>>()
    );
    json_or(&ctx.out, &doc, &history_table(&events))
}

/// `key rotate`: rotates one key, or every key that is due.
fn rotate(ctx: &Ctx, vault: &mut Vault, session: &Session, a: RotateArgs) -> Result<()> {
    let out = &ctx.out;
    // clap requires NAME unless --due is given.
    let rotated: Vec<Rotated> = match a.name {
        Some(n) if !a.due => vec![vault.key_rotate(session, &n, a.rewrap)?],
        _ => vault.key_rotate_due(session, a.rewrap)?,
    };
    let doc = json!({
        "rotated": rotated
            .iter()
            .map(|r| json!({ "name": r.name, "version": r.version, "rewrapped": r.rewrapped }))
            .collect::<Vec<_>>()
    });
    if out.json {
        return emitted(out.json_doc(&doc));
    }
    if rotated.is_empty() {
        out.note("No key is due for rotation.");
    }
    for r in &rotated {
        if a.rewrap {
            out.note(&format!(
                "Rotated {} to version {}; {} record(s) rewrapped.",
                r.name, r.version, r.rewrapped
            ));
        } else {
            out.note(&format!("Rotated {} to version {}.", r.name, r.version));
        }
    }
    Ok(())
}

/// `key check`: reports keys that are due, expired or near the encryption limit.
fn check(ctx: &Ctx, vault: &mut Vault, session: &Session) -> Result<()> {
    let r = vault.key_check(session)?;
    let doc = json!({ "due": r.due, "expired": r.expired, "near_limit": r.near_limit });
    json_or(&ctx.out, &doc, &check_text(&r))
}

/// `key set`: changes a key's rotation period, expiry or minimum decryption version.
fn set(ctx: &Ctx, vault: &mut Vault, session: &Session, a: SetArgs) -> Result<()> {
    let out = &ctx.out;
    let changes = KeyChanges {
        rotate_every: dur_or_none(a.rotate_every.as_deref())?,
        expires_in: dur_or_none(a.expires_in.as_deref())?,
        min_decrypt_version: a.min_decrypt_version,
    };
    if changes.rotate_every.is_none()
        && changes.expires_in.is_none()
        && changes.min_decrypt_version.is_none()
    {
        return Err(Error::Usage(
            "nothing to change: give --rotate-every, --expires-in or --min-decrypt-version".into(),
        ));
    }
    let i = vault.key_set(session, &a.name, changes)?;
    out.note(&format!("Updated key {}.", a.name));
    if out.json {
        emitted(out.json_doc(&key_json(&i)))?;
    }
    Ok(())
}

/// `key export`: prints an exportable key's material as base64.
fn export(ctx: &Ctx, vault: &mut Vault, session: &Session, a: ExportArgs) -> Result<()> {
    let out = &ctx.out;
    let (v, material) = vault.key_export(session, &a.name, a.version)?;
    let encoded = Zeroizing::new(STANDARD.encode(material.expose()));
    if out.json {
        return emitted(out.json_doc(&json!({ "name": a.name, "version": v, "key": *encoded })));
    }
    emitted(out.data_line(&encoded))
}

/// `key disable`: stops a key from encrypting or decrypting.
fn disable(ctx: &Ctx, vault: &mut Vault, session: &Session, name: &str) -> Result<()> {
    vault.key_set_enabled(session, name, false)?;
    ctx.out.note(&format!(
        "Disabled key {name}: it neither encrypts nor decrypts until enabled."
    ));
    Ok(())
}

/// `key enable`: enables a disabled key.
fn enable(ctx: &Ctx, vault: &mut Vault, session: &Session, name: &str) -> Result<()> {
    vault.key_set_enabled(session, name, true)?;
    ctx.out.note(&format!("Enabled key {name}."));
    Ok(())
}

/// `key destroy`: confirms, then wipes every version of a key.
fn destroy(ctx: &Ctx, vault: &mut Vault, session: &Session, a: DestroyArgs) -> Result<()> {
    let out = &ctx.out;
    let name = &a.name;
    if !a.yes {
        if !input::is_interactive(&ctx.cfg) {
            return Err(Error::NeedsInput {
                what: "confirmation to destroy a key".into(),
                flag: "--yes".into(),
            });
        }
        let sure = TermPrompter::new()
            .confirm(&format!(
                "Destroy key '{name}'? Everything encrypted under it becomes unrecoverable."
            ))
            .map_err(prompt_error)?;
        if !sure {
            return Err(Error::Cancelled);
        }
    }
    let versions = vault.key_destroy(session, name)?;
    out.note(&format!(
        "Destroyed key {name} ({versions} version(s) wiped)."
    ));
    if out.json {
        emitted(out.json_doc(&json!({ "name": name, "status": KeyStatus::Destroyed.as_str() })))?;
    }
    Ok(())
}
