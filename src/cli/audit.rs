//! `audit list` and `audit verify`.

use clap::Subcommand;
use serde_json::{Value, json};

use super::output::table;
use super::{Ctx, emitted};
use crate::audit::{broken, detail_json};
use crate::duration;
use crate::error::Result;
use crate::model::{AuditEntry, AuditFilter, Outcome};

/// Audit log commands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit records (yours; everyone's for auditors and admins).
    #[command(
        after_help = "Examples:\n  zencrypt audit list --outcome denied --since 1d\n  zencrypt audit list --action user. --json"
    )]
    List {
        /// Only records of this user.
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// Only this action (e.g. auth.login), or a family ending in '.' (e.g. user.).
        #[arg(long, value_name = "ACTION")]
        action: Option<String>,
        /// Only this outcome: ok, denied or failed.
        #[arg(long, value_parser = parse_outcome)]
        outcome: Option<Outcome>,
        /// Only records from the last DUR (e.g. 1d, 12h).
        #[arg(long, value_name = "DUR")]
        since: Option<String>,
        /// At most N records, the most recent (default 100).
        #[arg(long, value_name = "N", default_value_t = 100)]
        limit: u32,
    },
    /// Check the whole hash chain; names the first bad record (auditors and admins).
    #[command(after_help = "Example:\n  zencrypt audit verify --json")]
    Verify,
}

fn parse_outcome(s: &str) -> std::result::Result<Outcome, String> {
    s.parse::<Outcome>().map_err(|e| e.to_string())
}

/// One audit record as JSON.
pub fn entry_json(e: &AuditEntry) -> Value {
    json!({
        "seq": e.seq,
        "at": duration::rfc3339(e.at),
        "actor": e.actor,
        "action": e.action,
        "target": e.target,
        "outcome": e.outcome.as_str(),
        "detail": detail_json(e),
    })
}

/// Audit records as a table.
pub fn entries_table(rows: &[AuditEntry]) -> String {
    table(
        &[
            "seq", "at", "actor", "action", "target", "outcome", "detail",
        ],
        rows.iter()
            .map(|e| {
                vec![
                    e.seq.to_string(),
                    duration::rfc3339(e.at),
                    e.actor.clone(),
                    e.action.clone(),
                    e.target.clone(),
                    e.outcome.as_str().to_string(),
                    e.detail.clone(),
                ]
            })
            .collect(),
    )
}

/// Runs an `audit` subcommand.
pub fn run(ctx: &Ctx, cmd: AuditCommand) -> Result<()> {
    let mut vault = ctx.vault()?;
    let session = ctx.session(&mut vault)?;
    let out = &ctx.out;
    match cmd {
        AuditCommand::List {
            user,
            action,
            outcome,
            since,
            limit,
        } => {
            let since = since
                .map(|s| {
                    duration::parse(&s).map(|d| {
                        duration::now().saturating_sub(i64::try_from(d).unwrap_or(i64::MAX))
                    })
                })
                .transpose()?;
            let filter = AuditFilter {
                action,
                outcome,
                since,
                limit: Some(limit),
                ..AuditFilter::default()
            };
            let rows = vault.audit_list(&session, filter, user.as_deref())?;
            if out.json {
                let list: Vec<Value> = rows.iter().map(entry_json).collect();
                return emitted(out.json_doc(&json!(list)));
            }
            if rows.is_empty() {
                out.note("No audit records match.");
                return Ok(());
            }
            emitted(out.data_line(&entries_table(&rows)))
        }
        AuditCommand::Verify => {
            let v = vault.audit_verify(&session)?;
            if out.json {
                emitted(out.json_doc(&json!({
                    "ok": v.first_bad.is_none(),
                    "checked": v.checked,
                    "first_bad_seq": v.first_bad.as_ref().map(|(s, _)| *s),
                })))?;
            }
            match broken(&v) {
                Some(e) => Err(e),
                None => {
                    if !out.json {
                        emitted(out.data_line(&format!(
                            "audit chain intact: {} records verified",
                            v.checked
                        )))?;
                    }
                    Ok(())
                }
            }
        }
    }
}
