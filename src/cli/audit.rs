//! `audit list`, `verify`, `checkpoint`, `export` and `accept-head`.

use crate::ui::views::{entries_table, fields};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

use super::{Ctx, emitted};
use crate::ui::input::{self, prompt_error};
use crate::ui::prompt::{Prompter, TermPrompter};
use zencrypt_core::chain::{broken, detail_json};
use zencrypt_core::duration;
use zencrypt_core::error::{Error, Result};
use zencrypt_core::model::{AuditEntry, AuditFilter, Outcome};
use zencrypt_core::vault::{Session, Vault};

/// Audit log commands.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum AuditCommand {
    /// List audit records (yours; everyone's for auditors and admins).
    #[command(
        after_help = "Examples:\n  zencrypt audit list --outcome denied --since 1d\n  zencrypt audit list --action user. --json"
    )]
    List(ListArgs),
    /// Check the whole hash chain; names the first bad record (auditors and admins).
    #[command(
        after_help = "Examples:\n  zencrypt audit verify --json\n  zencrypt audit verify --checkpoint head.json"
    )]
    Verify {
        /// Also check against a saved `audit checkpoint` (detects truncation and rewrites).
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
    },
    /// Accept the database's audit log as it is now, after restoring a backup on purpose.
    ///
    /// Every zencrypt client remembers the newest audit record it has seen of each
    /// database and refuses one whose log is shorter or different (a rollback). After a
    /// deliberate restore, this checks the restored chain and every row, records the
    /// acceptance in the audit log, and lets this client use the database again. Needs no
    /// session: the restored copy holds none.
    #[command(after_help = "Example:
  zencrypt db backup /safe/z.db   # later, after restoring it:
  zencrypt audit accept-head --yes")]
    AcceptHead {
        /// Do not ask for confirmation (required without a terminal).
        #[arg(long)]
        yes: bool,
    },
    /// Print the chain's head ({"seq","mac"}) to keep somewhere safe (auditors and admins).
    #[command(after_help = "Example:\n  zencrypt audit checkpoint > /safe/place/audit-head.json")]
    Checkpoint,
    /// Write the audit records you may see as JSON lines or CSV.
    #[command(after_help = "Example:\n  zencrypt audit export --format csv > audit.csv")]
    Export {
        /// jsonl or csv.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
    },
}

// `audit list` arguments. (A plain comment: see `cli::Command`.)
#[allow(missing_docs)]
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only records of this user.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Only this action (e.g. auth.login), or a family ending in '.' (e.g. user.).
    #[arg(long, value_name = "ACTION")]
    pub action: Option<String>,
    /// Only this outcome: ok, denied or failed.
    #[arg(long, value_parser = parse_outcome)]
    pub outcome: Option<Outcome>,
    /// Only records from the last DUR (e.g. 1d, 12h).
    #[arg(long, value_name = "DUR")]
    pub since: Option<String>,
    /// At most N records, the most recent (default 100).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub limit: u32,
}

/// `audit export --format` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header line; a cell a spreadsheet would run as a
    /// formula (starting with =, +, -, @) gets a leading apostrophe.
    Csv,
}

/// One CSV cell. Targets are chosen by users (a key name, a record reference), so a cell
/// that a spreadsheet would evaluate as a formula is defused with a leading apostrophe
/// (a lone "-", the placeholder for "no target", is left alone).
fn csv_field(s: &str) -> String {
    let formula = s.starts_with(['=', '+', '@', '\t', '\r']) || (s.starts_with('-') && s != "-");
    let s = if formula {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if formula || s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// Reads a checkpoint file written by `audit checkpoint`.
fn read_checkpoint(path: &Path) -> Result<(i64, Vec<u8>)> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading the checkpoint {}", path.display()), e))?;
    let bad = || Error::Usage(format!("{} is not an audit checkpoint", path.display()));
    let v: Value = serde_json::from_str(text.trim()).map_err(|_| bad())?;
    let seq = v["seq"].as_i64().ok_or_else(bad)?;
    let hex = v["mac"].as_str().ok_or_else(bad)?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let mac = (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad()))
        .collect::<Result<Vec<u8>>>()?;
    Ok((seq, mac))
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

/// Runs an `audit` subcommand.
pub fn run(ctx: &Ctx, cmd: AuditCommand) -> Result<()> {
    if let AuditCommand::AcceptHead { yes } = cmd {
        return accept_head(ctx, yes);
    }
    let mut vault = ctx.vault()?;
    let session = ctx.session(&mut vault)?;
    match cmd {
        AuditCommand::List(a) => list(ctx, &mut vault, &session, a),
        AuditCommand::AcceptHead { yes } => accept_head(ctx, yes),
        AuditCommand::Checkpoint => checkpoint(ctx, &mut vault, &session),
        AuditCommand::Export { format } => export(ctx, &mut vault, &session, format),
        AuditCommand::Verify { checkpoint } => {
            verify(ctx, &mut vault, &session, checkpoint.as_deref())
        }
    }
}

/// `audit list`: lists the audit records the caller may see.
fn list(ctx: &Ctx, vault: &mut Vault, session: &Session, a: ListArgs) -> Result<()> {
    let out = &ctx.out;
    let since = a
        .since
        .map(|s| {
            duration::parse(&s)
                .map(|d| duration::now().saturating_sub(i64::try_from(d).unwrap_or(i64::MAX)))
        })
        .transpose()?;
    let filter = AuditFilter {
        action: a.action,
        outcome: a.outcome,
        since,
        limit: Some(a.limit),
        ..AuditFilter::default()
    };
    let rows = vault.audit_list(session, filter, a.user.as_deref())?;
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

/// `audit checkpoint`: prints the chain's head.
fn checkpoint(ctx: &Ctx, vault: &mut Vault, session: &Session) -> Result<()> {
    let (seq, mac) = vault.audit_checkpoint(session)?;
    let doc = json!({ "seq": seq, "mac": zencrypt_core::crypto::hex(&mac) });
    emitted(ctx.out.data_line(&doc.to_string()))
}

/// `audit export`: writes the visible audit records as JSON lines or CSV.
fn export(ctx: &Ctx, vault: &mut Vault, session: &Session, format: ExportFormat) -> Result<()> {
    let rows = vault.audit_export(session)?;
    let mut text = String::new();
    match format {
        ExportFormat::Jsonl => {
            for e in &rows {
                let mut j = entry_json(e);
                j["prev_mac"] = json!(zencrypt_core::crypto::hex(&e.prev_mac));
                j["mac"] = json!(zencrypt_core::crypto::hex(&e.mac));
                text.push_str(&j.to_string());
                text.push('\n');
            }
        }
        ExportFormat::Csv => {
            text.push_str("seq,at,actor,action,target,outcome,detail,prev_mac,mac\n");
            for e in &rows {
                let line: Vec<String> = fields(e).iter().map(|f| csv_field(f)).collect();
                text.push_str(&line.join(","));
                text.push('\n');
            }
        }
    }
    emitted(ctx.out.data(&text))
}

/// `audit verify`: checks the hash chain, and against a checkpoint if one is given.
fn verify(
    ctx: &Ctx,
    vault: &mut Vault,
    session: &Session,
    checkpoint: Option<&Path>,
) -> Result<()> {
    let out = &ctx.out;
    let v = match checkpoint {
        Some(path) => {
            let (seq, mac) = read_checkpoint(path)?;
            vault.audit_verify_checkpoint(session, seq, &mac)?
        }
        None => vault.audit_verify(session)?,
    };
    if out.json {
        emitted(out.json_doc(&json!({
            "ok": v.ok(),
            "checked": v.checked,
            "first_bad_seq": v.first_bad.as_ref().map(|(s, _)| *s),
            "rows_checked": v.rows_checked,
            "first_bad_row": v.first_bad_row.as_ref().map(|(r, _)| r.to_string()),
            "chain_records_per_sec": v.chain_rate(),
            "rows_per_sec": v.rows_rate(),
        })))?;
    }
    match broken(&v) {
        Some(e) => Err(e),
        None => {
            if !out.json {
                emitted(out.data_line(&v.summary()))?;
            }
            Ok(())
        }
    }
}

/// `audit accept-head`: confirms, then accepts the restored database's head.
fn accept_head(ctx: &Ctx, yes: bool) -> Result<()> {
    let mut vault = Vault::open_unwitnessed(crate::backend::open(&ctx.cfg, false)?, &ctx.cfg)?;
    let change = vault.pending_head()?;
    let seen = change
        .seen
        .map_or_else(|| "nothing yet".to_string(), |s| format!("seq {s}"));
    if !yes {
        if !input::is_interactive(&ctx.cfg) {
            return Err(Error::NeedsInput {
                what: "confirmation to accept the audit log as it is now".into(),
                flag: "--yes".into(),
            });
        }
        let sure = TermPrompter::new()
            .confirm(&format!(
                "This client has seen the audit log up to {seen}; the database now ends at seq {}. Accept it (only after restoring a backup on purpose)?",
                change.head
            ))
            .map_err(prompt_error)?;
        if !sure {
            return Err(Error::Cancelled);
        }
    }
    let who = format!("uid {}", rustix::process::getuid().as_raw());
    let change = vault.accept_head(&who)?;
    ctx.out.note(&format!(
        "Accepted the audit log up to seq {} (this client had seen {seen}); the acceptance is audited.",
        change.head
    ));
    if ctx.out.json {
        emitted(
            ctx.out
                .json_doc(&json!({ "previous_seq": change.seen, "head_seq": change.head })),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("-"), "-");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(
            csv_field("=HYPERLINK(\"x\",\"ok\")"),
            "\"'=HYPERLINK(\"\"x\"\",\"\"ok\"\")\""
        );
        assert_eq!(csv_field("+1"), "\"'+1\"");
        assert_eq!(csv_field("-1+2"), "\"'-1+2\"");
        assert_eq!(csv_field("@SUM(A1)"), "\"'@SUM(A1)\"");
        assert_eq!(csv_field("\tx"), "\"'\tx\"");
    }
}
