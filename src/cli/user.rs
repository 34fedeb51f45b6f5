//! `user list|add|role|disable|enable|revoke` (admins), `user show|trust` (everyone).

use crate::ui::views::users_table;
use clap::Subcommand;
use serde_json::json;

use super::{Ctx, emitted};
use crate::ui::input::{self, PasswordArgs};
use zencrypt_core::accounts::UserSummary;
use zencrypt_core::authz::Permission;
use zencrypt_core::duration;
use zencrypt_core::error::Result;
use zencrypt_core::events::AuditAction;
use zencrypt_core::model::{Role, UserStatus};

/// User administration.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum UserCommand {
    /// List users with role, status, creation and last login.
    #[command(after_help = "Example:\n  zencrypt user list --json")]
    List,
    /// Create an account (for ZENCRYPT_SIGNUP=admin-only set-ups), or a service account.
    #[command(
        after_help = "Examples:\n  zencrypt user add carol --role auditor --password-file carol.pw\n  zencrypt user add --service ci-deploy --owner alice\n\nA service account (--service) has no password and cannot log in. Its owner (you, unless\n--owner names someone) grants it records (`zencrypt service grant`) and issues its\nread-only tokens (`zencrypt service token`)."
    )]
    Add {
        /// The new account's name.
        username: String,
        /// user, auditor or admin.
        #[arg(long, default_value = "user", value_parser = parse_role, conflicts_with = "service")]
        role: Role,
        /// Make a service account for automation (no password, no login).
        #[arg(long)]
        service: bool,
        /// The service account's owner (default: you).
        #[arg(long, value_name = "USER", requires = "service")]
        owner: Option<String>,
        /// Where the new account's password comes from.
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Change a user's role (the last active admin cannot be demoted).
    #[command(after_help = "Example:\n  zencrypt user role carol auditor")]
    Role {
        /// The account.
        username: String,
        /// user, auditor or admin.
        #[arg(value_parser = parse_role)]
        role: Role,
    },
    /// Disable a user and end their sessions at once.
    #[command(after_help = "Example:\n  zencrypt user disable mallory")]
    Disable {
        /// The account.
        username: String,
    },
    /// Remove a user for good: their data is crypto-shredded.
    #[command(
        after_help = "Example:\n  zencrypt user remove mallory --yes\n\nRefused while records of theirs are shared with others (their owner, or the manager of\nthe group they are shared with, transfers them first: `zencrypt data transfer`), while a\ntransfer of theirs waits to be taken in, and while they are in a group (its manager removes\nthem). Then their sessions end, their wrapped user key, recovery key and keypair are\nwiped (nothing of theirs opens again, for anyone), keys of theirs shared with others stop\nbeing shared, and their service accounts go with them. The name stays taken."
    )]
    Remove {
        /// The account.
        username: String,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Enable a disabled user.
    #[command(after_help = "Example:\n  zencrypt user enable mallory")]
    Enable {
        /// The account.
        username: String,
    },
    /// End every session of a user.
    #[command(after_help = "Example:\n  zencrypt user revoke bob")]
    Revoke {
        /// The account.
        username: String,
    },
    /// Show a user's public key fingerprint and whether it is the one you pinned.
    #[command(
        after_help = "Example:\n  zencrypt user show bob\n\nCompare the fingerprint with the one bob reads you from `zencrypt account pubkey`, through\nanother channel than this database (in person, on a call, a signed message)."
    )]
    Show {
        /// The account.
        username: String,
    },
    /// Trust a user's new public key after comparing its fingerprint with them.
    #[command(
        after_help = "Example:\n  zencrypt user trust bob --fingerprint '3f2a 9c01 0001 0203 0405 0607 0809 abcd'\n\nSharing with a user pins their key the first time; when the database later holds another\nkey for them, sharing stops (exit 7) until you trust the new one. Trust only a fingerprint\nthe user gave you themselves, through another channel than this database."
    )]
    Trust {
        /// The account.
        username: String,
        /// The fingerprint the user gave you (32 hex digits; spaces and colons are ignored).
        #[arg(long, value_name = "FP")]
        fingerprint: String,
    },
}

fn parse_role(s: &str) -> std::result::Result<Role, String> {
    match s.parse::<Role>() {
        Ok(Role::Service) => Err(
            "a person's role is user, auditor or admin (`user add --service NAME` makes a service account)"
                .into(),
        ),
        Ok(role) => Ok(role),
        Err(e) => Err(e.to_string()),
    }
}

/// One user as JSON.
pub fn user_json(u: &UserSummary) -> serde_json::Value {
    json!({
        "username": u.username,
        "role": u.role.as_str(),
        "status": u.state(),
        "created_at": duration::rfc3339(u.created_at),
        "last_login_at": u.last_login_at.map(duration::rfc3339),
    })
}

/// Runs a `user` subcommand.
pub fn run(ctx: &Ctx, cmd: UserCommand) -> Result<()> {
    let mut vault = ctx.vault()?;
    let session = ctx.session(&mut vault)?;
    let out = &ctx.out;
    match cmd {
        UserCommand::List => {
            let users = vault.list_users(&session)?;
            if out.json {
                let list: Vec<_> = users.iter().map(user_json).collect();
                return emitted(out.json_doc(&json!(list)));
            }
            emitted(out.data_line(&users_table(&users)))
        }
        UserCommand::Add {
            username,
            service: true,
            owner,
            ..
        } => {
            let owner = vault.add_service(&session, &username, owner.as_deref())?;
            out.note(&format!(
                "Added service account {username}, owned by {owner}. It cannot log in: {owner} grants it records (`zencrypt service grant {username} GLOB`) and issues its tokens (`zencrypt service token {username}`)."
            ));
            if out.json {
                emitted(out.json_doc(&json!({
                    "username": username,
                    "role": "service",
                    "owner": owner,
                })))?;
            }
            Ok(())
        }
        UserCommand::Add {
            username,
            role,
            password,
            ..
        } => {
            // Refuse before asking for a password the caller may not set.
            vault.require(
                &session,
                Permission::Administer,
                AuditAction::UserAdd,
                &username,
            )?;
            let prompt = format!("Password for {username}");
            let pw = input::password(&password, &ctx.cfg, &prompt, true)?;
            vault.add_user(&session, &username, role, &pw)?;
            out.note(&format!("Added {username} ({role})."));
            if out.json {
                emitted(out.json_doc(&json!({ "username": username, "role": role.as_str() })))?;
            }
            Ok(())
        }
        UserCommand::Role { username, role } => {
            let before = vault.set_role(&session, &username, role)?;
            out.note(&format!("{username} is now {role} (was {before})."));
            if out.json {
                emitted(out.json_doc(&json!({
                    "username": username,
                    "role": role.as_str(),
                    "previous_role": before.as_str(),
                })))?;
            }
            Ok(())
        }
        UserCommand::Disable { username } => {
            status(ctx, &mut vault, &session, &username, UserStatus::Disabled)
        }
        UserCommand::Remove { username, yes } => {
            super::data::confirm(
                ctx,
                yes,
                &format!("Remove {username} for good? Nothing of theirs can be read again."),
                true,
            )?;
            let r = vault.user_remove(&session, &username)?;
            out.note(&crate::ui::views::removed_text(&r));
            if out.json {
                emitted(out.json_doc(&json!({
                    "username": r.username,
                    "services": r.services,
                    "keys_unshared": r.keys_unshared,
                    "revoked_sessions": r.sessions_revoked,
                })))?;
            }
            Ok(())
        }
        UserCommand::Enable { username } => {
            status(ctx, &mut vault, &session, &username, UserStatus::Active)
        }
        UserCommand::Show { username } => {
            let card = vault.user_show(&session, &username)?;
            if out.json {
                return emitted(out.json_doc(&crate::ui::views::user_card_json(&card)));
            }
            emitted(out.data_line(&crate::ui::views::user_card_text(&card)))
        }
        UserCommand::Trust {
            username,
            fingerprint,
        } => {
            let t = vault.user_trust(&session, &username, &fingerprint)?;
            out.note(&match t.replaced {
                Some(old) => format!(
                    "Trusted the new key of {} ({}), in place of {old}.",
                    t.username, t.fingerprint
                ),
                None => format!("Pinned the key of {} ({}).", t.username, t.fingerprint),
            });
            if out.json {
                emitted(out.json_doc(&json!({
                    "username": t.username,
                    "fingerprint": t.fingerprint.to_string(),
                    "replaced": t.replaced.map(|f| f.to_string()),
                })))?;
            }
            Ok(())
        }
        UserCommand::Revoke { username } => {
            let n = vault.revoke_sessions(&session, &username)?;
            out.note(&format!("Ended {n} session(s) of {username}."));
            if out.json {
                emitted(out.json_doc(&json!({ "username": username, "revoked_sessions": n })))?;
            }
            Ok(())
        }
    }
}

fn status(
    ctx: &Ctx,
    vault: &mut zencrypt_core::vault::Vault,
    session: &zencrypt_core::vault::Session,
    username: &str,
    status: UserStatus,
) -> Result<()> {
    let n = vault.set_status(session, username, status)?;
    ctx.out.note(&match status {
        UserStatus::Disabled => format!("Disabled {username}; {n} session(s) ended."),
        UserStatus::Active => format!("Enabled {username}."),
    });
    if ctx.out.json {
        emitted(ctx.out.json_doc(&json!({
            "username": username,
            "status": status.as_str(),
            "revoked_sessions": n,
        })))?;
    }
    Ok(())
}
