//! Usage reports: encryption events grouped by key, user, operation or day. Users see
//! their own events; auditors and admins see everyone's.

use serde_json::json;

use crate::authz::{self, Permission};
use crate::error::{Error, Result};
use crate::events::AuditAction;
use crate::vault::{Session, Vault, role_now};

pub use crate::storage::UsageGroup;

/// One group of a usage report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    /// The key name, user name, operation or day.
    pub group: String,
    /// Events.
    pub count: i64,
    /// Plaintext bytes.
    pub bytes: i64,
}

impl UsageGroup {
    /// The JSON field name of the group.
    pub fn field(self) -> &'static str {
        match self {
            UsageGroup::Key => "key",
            UsageGroup::User => "user",
            UsageGroup::Op => "op",
            UsageGroup::Day => "day",
        }
    }
}

impl Vault {
    /// A usage report. `user` narrows it to one user (auditors and admins may name anyone;
    /// users only themselves).
    pub fn usage_report(
        &mut self,
        session: &Session,
        by: UsageGroup,
        since: Option<i64>,
        user: Option<&str>,
    ) -> Result<Vec<UsageRow>> {
        let target = user.unwrap_or("-").to_string();
        let other = user.filter(|u| *u != session.username);
        if let Some(u) = other
            && !authz::allows(session.role, Permission::ReadAll)
        {
            self.require(session, Permission::ReadAll, AuditAction::Usage, u)?;
        }
        self.authorized(
            session,
            Permission::Own,
            AuditAction::Usage,
            &target,
            |tx| {
                // Decided on the role as it is now, not as it was when the session was read.
                let role = role_now(tx, session)?;
                let sees_all = authz::allows(role, Permission::ReadAll);
                if !sees_all && other.is_some() {
                    authz::check(role, Permission::ReadAll, AuditAction::Usage)?;
                }
                let user_id = match (sees_all, user) {
                    (false, _) => Some(session.user_id.0),
                    (true, None) => None,
                    (true, Some(u)) => Some(
                        tx.user_by_name(u)?
                            .ok_or_else(|| Error::NotFound(format!("user '{u}' not found")))?
                            .id,
                    ),
                };
                let rows: Vec<UsageRow> = tx
                    .usage_report(by, user_id, since)?
                    .into_iter()
                    .map(|(group, count, bytes)| UsageRow {
                        group,
                        count,
                        bytes,
                    })
                    .collect();
                let n = rows.len();
                Ok((rows, json!({ "by": by.field(), "groups": n })))
            },
        )
    }
}
