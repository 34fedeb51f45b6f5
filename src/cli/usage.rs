//! `usage`: encryption events and totals.

use crate::ui::views::usage_table;
use clap::{Args, ValueEnum};
use serde_json::{Value, json};

use super::{Ctx, emitted};
use zencrypt_core::duration;
use zencrypt_core::error::Result;
use zencrypt_core::usage::{UsageGroup, UsageRow};

// `usage` arguments. (A plain comment: see `cli::Command`.)
#[allow(missing_docs)]
#[derive(Debug, Args)]
pub struct UsageArgs {
    /// Group by key, user, op (operation) or day.
    #[arg(long, value_enum, default_value = "op")]
    pub by: ByArg,
    /// Only events from the last DUR (e.g. 7d).
    #[arg(long, value_name = "DUR")]
    pub since: Option<String>,
    /// Only this user's events (auditors and admins; users see only their own).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
}

/// `--by` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ByArg {
    /// Key name.
    Key,
    /// User name.
    User,
    /// Operation.
    Op,
    /// UTC day.
    Day,
}

impl From<ByArg> for UsageGroup {
    fn from(b: ByArg) -> Self {
        match b {
            ByArg::Key => UsageGroup::Key,
            ByArg::User => UsageGroup::User,
            ByArg::Op => UsageGroup::Op,
            ByArg::Day => UsageGroup::Day,
        }
    }
}

/// A report as JSON: `[{"<by>": value, "count", "bytes"}]`.
pub fn usage_json(by: UsageGroup, rows: &[UsageRow]) -> Value {
    json!(
        rows.iter()
            .map(|r| {
                let mut o = json!({ "count": r.count, "bytes": r.bytes });
                o[by.field()] = json!(r.group);
                o
            })
            .collect::<Vec<_>>()
    )
}

/// Parses `--since` into a unix time.
pub fn since(s: Option<&str>) -> Result<Option<i64>> {
    s.map(|s| {
        duration::parse(s)
            .map(|d| duration::now().saturating_sub(i64::try_from(d).unwrap_or(i64::MAX)))
    })
    .transpose()
}

/// `zencrypt usage`.
pub fn run(ctx: &Ctx, a: UsageArgs) -> Result<()> {
    let mut vault = ctx.vault()?;
    let session = ctx.session(&mut vault)?;
    let by = UsageGroup::from(a.by);
    let rows = vault.usage_report(&session, by, since(a.since.as_deref())?, a.user.as_deref())?;
    if ctx.out.json {
        return emitted(ctx.out.json_doc(&usage_json(by, &rows)));
    }
    if rows.is_empty() {
        ctx.out.note("No usage recorded yet.");
        return Ok(());
    }
    emitted(ctx.out.data_line(&usage_table(by, &rows)))
}
