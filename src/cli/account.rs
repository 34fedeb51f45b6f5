//! `signup`, `login`, `logout`, `whoami`, `passwd`.

use clap::Args;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::{Ctx, emitted};
use crate::ui::input::{self, PasswordArgs};
use crate::ui::prompt::TermPrompter;
use crate::ui::session_file;
use zencrypt_core::accounts::{LoginOutcome, SessionInfo};
use zencrypt_core::config;
use zencrypt_core::duration;
use zencrypt_core::error::{Error, Result};

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
        return emitted(ctx.out.json_doc(&doc));
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
    emitted(ctx.out.data(&format!(
        "username: {}\nrole: {}\nuser id: {}\nsession expires: {}\n",
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
    let n = vault.change_password(&mut session, &current, &new)?;
    ctx.out.note(&match n {
        0 => "Password changed.".to_string(),
        1 => "Password changed; 1 other session was logged out.".to_string(),
        n => format!("Password changed; {n} other sessions were logged out."),
    });
    json_count(ctx, n)
}
