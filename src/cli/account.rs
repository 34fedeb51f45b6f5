//! `signup`, `login`, `logout`, `whoami`, `passwd`, `account recovery-key` and
//! `account recover`.

use clap::{Args, Subcommand};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::{Ctx, emitted};
use crate::ui::input::{self, PasswordArgs};
use crate::ui::prompt::TermPrompter;
use crate::ui::session_file;
use zencrypt_core::accounts::{LoginOutcome, PasswordChange, SessionInfo};
use zencrypt_core::config;
use zencrypt_core::duration;
use zencrypt_core::error::{Error, Result};
use zencrypt_core::recovery::ADVICE as RECOVERY_KEY_ADVICE;

// `signup` and `login` arguments. (A plain comment: see `cli::Command`.)
#[allow(missing_docs)]
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Account name (1-64 of A-Z a-z 0-9 . _ -); prompted for on a terminal.
    #[arg(long, value_name = "NAME")]
    pub username: Option<String>,
    #[command(flatten)]
    pub password: PasswordArgs,
    /// Session lifetime, e.g. 8h or 30m (default ZENCRYPT_SESSION_TTL, else 8h).
    #[arg(long, value_name = "DUR")]
    pub ttl: Option<String>,
    /// Print the session token on stdout (for ZENCRYPT_TOKEN) instead of saving it.
    #[arg(long)]
    pub print_token: bool,
}

// `logout` arguments. (A plain comment: see `cli::Command`.)
#[allow(missing_docs)]
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// End every session of yours, on every machine.
    #[arg(long)]
    pub all: bool,
}

// `passwd` arguments. (A plain comment: see `cli::Command`.)
#[allow(missing_docs)]
#[derive(Debug, Args)]
pub struct PasswdArgs {
    /// Read the current password, then the new one, from stdin (one per line).
    #[arg(long)]
    pub password_stdin: bool,
}

/// `zencrypt account ...`.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum AccountCommand {
    /// Show whether your account has a recovery key, or make a new one (--rotate).
    #[command(
        after_help = "Examples:\n  zencrypt account recovery-key\n  zencrypt account recovery-key --rotate > /media/usb/zencrypt-recovery.txt\n\nA recovery key lets you set a new password when you have forgotten yours\n(`zencrypt account recover`). It is shown once; --rotate asks for your password, prints a\nnew key alone on stdout, and the old one stops working at once. Without your password or\nyour recovery key, nobody can recover your data, administrators included."
    )]
    RecoveryKey(RecoveryKeyArgs),
    /// Set a new password with your recovery key (ends every session of the account).
    #[command(
        after_help = "Example:\n  printf '%s\\n%s\\n' \"$RECOVERY_KEY\" \"$NEW\" | zencrypt account recover --username alice --password-stdin\n\nThe recovery key you use stops working: a new one is printed alone on stdout, once.\nYour data is not re-encrypted; every session of the account is logged out."
    )]
    Recover(RecoverArgs),
    /// Print your public key as an age recipient (age1...), alone on stdout.
    #[command(
        after_help = "Examples:\n  zencrypt account pubkey\n  age -r \"$(zencrypt account pubkey)\" -o notes.age notes.txt   # then: zencrypt decrypt notes.age\n\nThe fingerprint goes to stderr (and into --json). Others pin your key the first time they\nshare with you; read them your fingerprint through another channel so they can check it\n(`zencrypt user show YOU`)."
    )]
    Pubkey,
}

// `account recovery-key` arguments. (A plain comment: see `cli::Command`.)
#[allow(missing_docs)]
#[derive(Debug, Args)]
pub struct RecoveryKeyArgs {
    /// Make a new recovery key (asks for your password); the old one stops working.
    #[arg(long)]
    pub rotate: bool,
    #[command(flatten)]
    pub password: PasswordArgs,
}

// `account recover` arguments. (A plain comment: see `cli::Command`.)
#[allow(missing_docs)]
#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// Account name; prompted for on a terminal.
    #[arg(long, value_name = "NAME")]
    pub username: Option<String>,
    /// Read the recovery key, then the new password, from stdin (one per line).
    #[arg(long)]
    pub password_stdin: bool,
}

/// Runs an `account` subcommand.
pub fn run(ctx: &Ctx, command: AccountCommand) -> Result<()> {
    match command {
        AccountCommand::RecoveryKey(a) => recovery_key(ctx, a),
        AccountCommand::Recover(a) => recover(ctx, a),
        AccountCommand::Pubkey => pubkey(ctx),
    }
}

/// `zencrypt account pubkey`: the age recipient alone on stdout, the fingerprint on stderr.
fn pubkey(ctx: &Ctx) -> Result<()> {
    let mut vault = ctx.vault()?;
    let session = ctx.session(&mut vault)?;
    let id = vault.account_pubkey(&session)?;
    if ctx.out.json {
        return emitted(ctx.out.json_doc(&json!({
            "username": id.username,
            "recipient": id.recipient,
            "fingerprint": id.fingerprint.to_string(),
        })));
    }
    ctx.out.note(&format!("Fingerprint: {}", id.fingerprint));
    emitted(ctx.out.data_line(&id.recipient))
}

/// Shows a new recovery key once: alone on stdout (or in the JSON document), with the
/// advice on stderr. The advice is printed even with -q: a key nobody saw is lost.
fn show_recovery_key(
    ctx: &Ctx,
    key: &secrecy::SecretString,
    doc: Option<&Value>,
    lead: &str,
) -> Result<()> {
    if let Some(doc) = doc {
        return emitted(
            ctx.out
                .json_secret_doc(doc, "recovery_key", key.expose_secret()),
        );
    }
    ctx.out.important(&format!("{lead}\n{RECOVERY_KEY_ADVICE}"));
    emitted(ctx.out.data_line(key.expose_secret()))
}

/// `zencrypt account recovery-key [--rotate]`.
fn recovery_key(ctx: &Ctx, a: RecoveryKeyArgs) -> Result<()> {
    let mut vault = ctx.vault()?;
    let session = ctx.session(&mut vault)?;
    if !a.rotate {
        let info = vault.whoami(&session)?;
        let made = info.recovery_key_created_at;
        if ctx.out.json {
            return emitted(ctx.out.json_doc(&json!({
                "recovery_key": made.is_some(),
                "created_at": made.map(duration::rfc3339),
            })));
        }
        return emitted(ctx.out.data_line(&match made {
            Some(at) => format!(
                "A recovery key was made at {}; only its newest one works.",
                duration::rfc3339(at)
            ),
            None if info.must_change_password => "This account has no recovery key yet: choosing your own password (`zencrypt passwd`) makes one.".to_string(),
            None => "This account has no recovery key: run `zencrypt account recovery-key --rotate` to make one.".to_string(),
        }));
    }
    let password = input::password(&a.password, &ctx.cfg, "Password", false)?;
    let key = vault.rotate_recovery_key(&session, &password)?;
    let doc = ctx
        .out
        .json
        .then(|| json!({ "username": session.username }));
    show_recovery_key(
        ctx,
        &key,
        doc.as_ref(),
        "Your new recovery key is below; the old one no longer works.",
    )
}

/// `zencrypt account recover`.
fn recover(ctx: &Ctx, a: RecoverArgs) -> Result<()> {
    let mut vault = ctx.vault()?;
    let username = input::username(a.username.as_deref(), &ctx.cfg)?;
    let (code, new) = if a.password_stdin {
        input::two_lines_from_stdin(
            "account recover --password-stdin expects two lines: the recovery key, then the new password",
        )?
    } else if input::is_interactive(&ctx.cfg) {
        let mut p = TermPrompter::new();
        let code = input::prompt_new_or_existing(&mut p, "Recovery key", false)
            .map_err(input::prompt_error)?;
        let new = input::prompt_new_or_existing(&mut p, "New password", true)
            .map_err(input::prompt_error)?;
        (code, new)
    } else {
        return Err(Error::NeedsInput {
            what: "the recovery key".into(),
            flag: "--password-stdin".into(),
        });
    };
    let PasswordChange {
        username,
        revoked_sessions,
        recovery_key,
    } = vault.recover(&username, &code, &new)?;
    let key = recovery_key.ok_or_else(|| Error::Internal("recovery made no new key".into()))?;
    ctx.out.note(&format!(
        "Password of {username} reset; {} ended. Log in with the new password.",
        sessions_ended(revoked_sessions)
    ));
    let doc = ctx
        .out
        .json
        .then(|| json!({ "username": username, "revoked_sessions": revoked_sessions }));
    show_recovery_key(
        ctx,
        &key,
        doc.as_ref(),
        "The recovery key you used no longer works; here is its replacement.",
    )
}

fn sessions_ended(n: u64) -> String {
    match n {
        1 => "1 session".to_string(),
        n => format!("{n} sessions"),
    }
}

fn parse_ttl(ttl: Option<&str>) -> Result<Option<u64>> {
    ttl.map(|t| config::check_ttl(duration::parse(t)?, "--ttl"))
        .transpose()
}

/// The JSON shape shared by `whoami`, `login` and `signup`.
pub fn info_json(info: &SessionInfo) -> Value {
    json!({
        "username": info.username,
        "role": info.role.as_str(),
        "user_id": info.user_id,
        "session_expires_at": duration::rfc3339(info.session_expires_at),
        "must_change_password": info.must_change_password,
        "recovery_key_created_at": info.recovery_key_created_at.map(duration::rfc3339),
    })
}

/// Saves the session (ending the one it replaces) and prints what the user asked for.
fn finish(
    ctx: &Ctx,
    vault: &mut zencrypt_core::vault::Vault,
    outcome: LoginOutcome,
    print_token: bool,
    verb: &str,
) -> Result<()> {
    // With --print-token the caller keeps the token (e.g. in ZENCRYPT_TOKEN); the saved
    // session is left alone.
    if !print_token {
        let path = ctx.session_path(vault);
        if let Ok(Some(old)) = session_file::load_for_replacement(&path) {
            vault.end_replaced_session(&old);
        }
        session_file::save(&path, &outcome.token)?;
    }
    let info = &outcome.info;
    if ctx.out.json {
        let mut doc = info_json(info);
        if print_token {
            doc["token"] = Value::String(outcome.token.expose_secret().to_string());
        }
        return match &outcome.recovery_key {
            Some(key) => emitted(ctx.out.json_secret_doc(
                &doc,
                "recovery_key",
                key.expose_secret(),
            )),
            None => emitted(ctx.out.json_doc(&doc)),
        };
    }
    ctx.out.note(&format!(
        "{verb} as {} ({}); session expires at {}",
        info.username,
        info.role,
        duration::rfc3339(info.session_expires_at)
    ));
    if info.must_change_password {
        ctx.out.note(
            "An administrator chose this account's password: run `zencrypt passwd` to choose your own before anything else.",
        );
    }
    if let Some(key) = &outcome.recovery_key {
        // stdout may carry the token: the key goes to stderr, in the same words.
        ctx.out.important(&format!(
            "Your recovery key:\n\n    {}\n\n{RECOVERY_KEY_ADVICE}",
            key.expose_secret()
        ));
    }
    if print_token {
        emitted(ctx.out.data_line(outcome.token.expose_secret()))?;
    }
    Ok(())
}

/// `zencrypt signup`.
pub fn signup(ctx: &Ctx, a: LoginArgs) -> Result<()> {
    let ttl = parse_ttl(a.ttl.as_deref())?;
    let mut vault = ctx.vault_or_create()?;
    let username = input::username(a.username.as_deref(), &ctx.cfg)?;
    vault.check_new_username(&username)?;
    let password = input::password(&a.password, &ctx.cfg, "Choose a password", true)?;
    let outcome = vault.signup(&username, &password, ttl)?;
    finish(
        ctx,
        &mut vault,
        outcome,
        a.print_token,
        "Signed up and logged in",
    )
}

/// `zencrypt login`.
pub fn login(ctx: &Ctx, a: LoginArgs) -> Result<()> {
    let ttl = parse_ttl(a.ttl.as_deref())?;
    let mut vault = ctx.vault()?;
    let username = input::username(a.username.as_deref(), &ctx.cfg)?;
    let password = input::password(&a.password, &ctx.cfg, "Password", false)?;
    let outcome = vault.login(&username, &password, ttl)?;
    finish(ctx, &mut vault, outcome, a.print_token, "Logged in")
}

/// `zencrypt logout`. A session that had already ended is simply forgotten.
pub fn logout(ctx: &Ctx, a: LogoutArgs) -> Result<()> {
    let mut vault = ctx.vault()?;
    let path = ctx.session_path(&vault);
    let session = match ctx.session(&mut vault) {
        Ok(s) => s,
        Err(e @ (Error::SessionExpired | Error::SessionRevoked | Error::InvalidToken)) => {
            if !ctx.token_from_env() {
                session_file::remove(&path)?;
            }
            ctx.out.note(&format!(
                "The saved session was no longer valid ({e}); it has been removed."
            ));
            return json_count(ctx, 0);
        }
        Err(e) => return Err(e),
    };
    let n = vault.logout(&session, a.all)?;
    // With ZENCRYPT_TOKEN, the saved session (if any) is someone else's business.
    if !ctx.token_from_env() || a.all {
        session_file::remove(&path)?;
    }
    ctx.out.note(&match (a.all, n) {
        (true, 1) => "Logged out; 1 session ended.".to_string(),
        (true, n) => format!("Logged out; {n} sessions ended."),
        _ => format!("Logged out {}.", session.username),
    });
    json_count(ctx, n)
}

fn json_count(ctx: &Ctx, n: u64) -> Result<()> {
    if ctx.out.json {
        emitted(ctx.out.json_doc(&json!({ "revoked_sessions": n })))?;
    }
    Ok(())
}

/// `zencrypt whoami`.
pub fn whoami(ctx: &Ctx) -> Result<()> {
    let mut vault = ctx.vault()?;
    let session = ctx.session(&mut vault)?;
    let info = vault.whoami(&session)?;
    if ctx.out.json {
        return emitted(ctx.out.json_doc(&info_json(&info)));
    }
    let recovery = match (info.role, info.recovery_key_created_at) {
        (zencrypt_core::model::Role::Service, _) => String::new(),
        (_, Some(at)) => format!("recovery key: made {}\n", duration::rfc3339(at)),
        (_, None) => {
            "recovery key: none (`zencrypt account recovery-key --rotate` makes one)\n".to_string()
        }
    };
    emitted(ctx.out.data(&format!(
        "username: {}\nrole: {}\nuser id: {}\nsession expires: {}\n{recovery}",
        info.username,
        info.role,
        info.user_id,
        duration::rfc3339(info.session_expires_at)
    )))
}

/// `zencrypt passwd`.
pub fn passwd(ctx: &Ctx, a: PasswdArgs) -> Result<()> {
    let mut vault = ctx.vault()?;
    let mut session = ctx.session(&mut vault)?;
    let (current, new) = if a.password_stdin {
        input::two_passwords_from_stdin()?
    } else if input::is_interactive(&ctx.cfg) {
        let mut p = TermPrompter::new();
        let current = input::prompt_new_or_existing(&mut p, "Current password", false)
            .map_err(input::prompt_error)?;
        let new = input::prompt_new_or_existing(&mut p, "New password", true)
            .map_err(input::prompt_error)?;
        (current, new)
    } else {
        return Err(Error::NeedsInput {
            what: "the current and new password".into(),
            flag: "--password-stdin".into(),
        });
    };
    let change = vault.change_password(&mut session, &current, &new)?;
    let n = change.revoked_sessions;
    ctx.out.note(&match n {
        0 => "Password changed.".to_string(),
        1 => "Password changed; 1 other session was logged out.".to_string(),
        n => format!("Password changed; {n} other sessions were logged out."),
    });
    match &change.recovery_key {
        // The first password of an account made by an administrator: its recovery key.
        Some(key) => show_recovery_key(
            ctx,
            key,
            ctx.out
                .json
                .then(|| json!({ "revoked_sessions": n }))
                .as_ref(),
            "Your recovery key is below.",
        ),
        None => json_count(ctx, n),
    }
}
