//! `service list|grant|ungrant|token|revoke`: service accounts for automation.

use clap::Subcommand;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::{Ctx, emitted};
use crate::ui::input::{self, PasswordArgs};
use crate::ui::views::{services_table, tokens_table};
use zencrypt_core::duration;
use zencrypt_core::error::Result;
use zencrypt_core::services::{ServiceInfo, TokenInfo};

/// Service accounts.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum ServiceCommand {
    /// Your service accounts (every one, for an admin): grants and tokens.
    #[command(after_help = "Example:\n  zencrypt service list --json")]
    List,
    /// Let a service account read your records whose names match GLOB, now and later.
    #[command(
        after_help = "Examples:\n  zencrypt service grant ci-deploy 'prod/*'\n  zencrypt service grant ci-deploy prod/db/password\n\nGLOB matches record names as `data list` does (case-insensitively; * and ? match / too).\nRecords protected by a record password are never granted. Every later write of a\nmatching record is readable by the service too, until `service ungrant`."
    )]
    Grant {
        /// The service account.
        service: String,
        /// A record name or a glob of names.
        glob: String,
        /// Your password, asked for again (a stolen session alone cannot grant).
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Take a grant back: records no other grant covers become unreadable to the service.
    #[command(after_help = "Example:\n  zencrypt service ungrant ci-deploy 'prod/*'")]
    Ungrant {
        /// The service account.
        service: String,
        /// The glob as it was granted.
        glob: String,
    },
    /// Issue a read-only token of a service account (printed once, alone on stdout).
    #[command(
        after_help = "Example:\n  zencrypt service token ci-deploy --ttl 30d > ci-token   # then ZENCRYPT_TOKEN in CI\n\nThe token reads the records granted to the service (`data get`, `run`, `inject`) and\nnothing else; every read is audited under the service's name. It lasts 90 days unless\n--ttl says otherwise (at most 400d). `service revoke` ends it."
    )]
    Token {
        /// The service account.
        service: String,
        /// Lifetime, e.g. 30d or 12h (default 90d).
        #[arg(long, value_name = "DUR")]
        ttl: Option<String>,
        /// Your password, asked for again (a stolen session alone cannot issue tokens).
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Revoke one token of a service account (--token ID), or all of them.
    #[command(
        after_help = "Examples:\n  zencrypt service revoke ci-deploy                  every token\n  zencrypt service revoke ci-deploy --token 3f9c2a1b  one (its id or 8+ characters of it)"
    )]
    Revoke {
        /// The service account.
        service: String,
        /// The token's id (`service tokens`), or at least its first 8 characters.
        #[arg(long, value_name = "ID")]
        token: Option<String>,
    },
    /// The tokens of a service account (ids, times and state; never the tokens).
    #[command(after_help = "Example:\n  zencrypt service tokens ci-deploy")]
    Tokens {
        /// The service account.
        service: String,
    },
}

fn token_json(t: &TokenInfo) -> Value {
    json!({
        "id": t.id,
        "created_at": duration::rfc3339(t.created_at),
        "expires_at": duration::rfc3339(t.expires_at),
        "revoked_at": t.revoked_at.map(duration::rfc3339),
    })
}

fn service_json(s: &ServiceInfo) -> Value {
    json!({
        "name": s.name,
        "owner": s.owner,
        "status": s.status.as_str(),
        "created_at": duration::rfc3339(s.created_at),
        "grants": s.grants,
        "readable_records": s.readable,
        "tokens": s.tokens.iter().map(token_json).collect::<Vec<_>>(),
    })
}

/// Runs a `service` subcommand.
pub fn run(ctx: &Ctx, cmd: ServiceCommand) -> Result<()> {
    let mut vault = ctx.vault()?;
    let session = ctx.session(&mut vault)?;
    let out = &ctx.out;
    match cmd {
        ServiceCommand::List => {
            let services = vault.list_services(&session)?;
            if out.json {
                let list: Vec<Value> = services.iter().map(service_json).collect();
                return emitted(out.json_doc(&json!(list)));
            }
            if services.is_empty() {
                out.note("No service accounts (an admin makes one: `zencrypt user add --service NAME --owner USER`).");
                return Ok(());
            }
            emitted(out.data_line(&services_table(&services)))
        }
        ServiceCommand::Tokens { service } => {
            let services = vault.list_services(&session)?;
            let Some(s) = services
                .iter()
                .find(|s| s.name.eq_ignore_ascii_case(&service))
            else {
                return Err(zencrypt_core::Error::NotFound(format!(
                    "service account '{service}' not found among yours"
                )));
            };
            if out.json {
                let list: Vec<Value> = s.tokens.iter().map(token_json).collect();
                return emitted(out.json_doc(&json!(list)));
            }
            if s.tokens.is_empty() {
                out.note(&format!(
                    "{} has no tokens (`zencrypt service token {}` issues one).",
                    s.name, s.name
                ));
                return Ok(());
            }
            emitted(out.data_line(&tokens_table(&s.tokens)))
        }
        ServiceCommand::Grant {
            service,
            glob,
            password,
        } => {
            let password = input::password(&password, &ctx.cfg, "Your password", false)?;
            let n = vault.service_grant(&session, &service, &glob, &password)?;
            out.note(&format!(
                "Granted '{glob}' to {service}: it can read {n} record(s) through it now, and what you write under it later."
            ));
            if out.json {
                emitted(out.json_doc(&json!({ "service": service, "glob": glob, "records": n })))?;
            }
            Ok(())
        }
        ServiceCommand::Ungrant { service, glob } => {
            let n = vault.service_ungrant(&session, &service, &glob)?;
            out.note(&format!(
                "Took '{glob}' back from {service}: {n} record(s) are no longer readable to it. Values it read before stay read: rotate them at their source if that matters."
            ));
            if out.json {
                emitted(out.json_doc(&json!({ "service": service, "glob": glob, "records": n })))?;
            }
            Ok(())
        }
        ServiceCommand::Token {
            service,
            ttl,
            password,
        } => {
            let ttl = ttl.map(|t| duration::parse(&t)).transpose()?;
            let password = input::password(&password, &ctx.cfg, "Your password", false)?;
            let issued = vault.service_token(&session, &service, ttl, &password)?;
            if out.json {
                let doc = json!({
                    "service": service,
                    "token_id": issued.id,
                    "expires_at": duration::rfc3339(issued.expires_at),
                });
                return emitted(out.json_secret_doc(&doc, "token", issued.token.expose_secret()));
            }
            out.important(&format!(
                "Token {} of {service}, read-only, expires at {}. It is shown only once: keep it in your CI's secret store and pass it as ZENCRYPT_TOKEN.",
                issued.id,
                duration::rfc3339(issued.expires_at)
            ));
            emitted(out.data_line(issued.token.expose_secret()))
        }
        ServiceCommand::Revoke { service, token } => {
            let n = vault.service_revoke(&session, &service, token.as_deref())?;
            out.note(&match (token.as_deref(), n) {
                (Some(id), 0) => format!("Token {id} of {service} had already ended."),
                (Some(id), _) => format!("Revoked token {id} of {service}."),
                (None, n) => format!("Revoked {n} token(s) of {service}."),
            });
            if out.json {
                emitted(out.json_doc(&json!({ "service": service, "revoked_tokens": n })))?;
            }
            Ok(())
        }
    }
}
