//! Main-menu entries 4, Usage log, and 5, Audit records.

use super::{Shell, Step, entry};
use crate::ui::prompt::{Interrupt, Prompter, Reply};
use crate::ui::views::entries_table;
use crate::ui::views::usage_table;
use zencrypt_core::authz::{self, Permission};
use zencrypt_core::duration;
use zencrypt_core::model::{AuditFilter, Outcome};
use zencrypt_core::usage::UsageGroup;

/// Reads an optional "since" duration.
fn ask_since(p: &mut dyn Prompter) -> Reply<Option<i64>> {
    loop {
        let text = p.line("Since (e.g. 7d; empty for all time): ")?;
        if text.is_empty() {
            return Ok(None);
        }
        match duration::parse(&text) {
            Ok(d) => return Ok(Some(duration::now().saturating_sub(d as i64))),
            Err(e) => p.say(&e.to_string()),
        }
    }
}

impl Shell {
    fn sees_all(&self) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| authz::allows(s.role, Permission::ReadAll))
    }

    pub(super) fn usage_menu(&mut self, p: &mut dyn Prompter) -> Step {
        let entries = [
            entry(1, "By operation", "encrypt, decrypt, data.get, ..."),
            entry(2, "By key", ""),
            entry(3, "By day", ""),
            entry(4, "By user", "everyone's (auditors and admins)"),
        ];
        self.submenu(p, "Usage log", &entries, |shell, p, n| {
            let by = match n {
                1 => UsageGroup::Op,
                2 => UsageGroup::Key,
                3 => UsageGroup::Day,
                _ => UsageGroup::User,
            };
            let since = ask_since(p)?;
            let rows = shell.with_session(|s, v| v.usage_report(s, by, since, None))?;
            if rows.is_empty() {
                p.say("No usage recorded in that period.");
            } else {
                p.say(&usage_table(by, &rows));
            }
            Ok(())
        })
    }

    pub(super) fn audit_menu(&mut self, p: &mut dyn Prompter) -> Step {
        let entries = [
            entry(1, "Recent records", "the last 20"),
            entry(2, "Search", "by user, action, outcome, time"),
            entry(3, "Verify the chain", "auditors and admins"),
            entry(4, "Checkpoint", "print the chain head to keep elsewhere"),
        ];
        self.submenu(p, "Audit records", &entries, |shell, p, n| match n {
            1 => {
                let filter = AuditFilter {
                    limit: Some(20),
                    ..AuditFilter::default()
                };
                let rows = shell.with_session(|s, v| v.audit_list(s, filter, None))?;
                p.say(&entries_table(&rows));
                Ok(())
            }
            2 => {
                let user = if shell.sees_all() {
                    Some(p.line("User (empty for everyone): ")?).filter(|u| !u.is_empty())
                } else {
                    None
                };
                let action = Some(p.line("Action, or a family like user. (empty for any): ")?)
                    .filter(|a| !a.is_empty());
                let outcomes = vec!["any".to_string(), "ok".into(), "denied".into(), "failed".into()];
                let outcome = match p.select("Outcome", &outcomes)? {
                    1 => Some(Outcome::Ok),
                    2 => Some(Outcome::Denied),
                    3 => Some(Outcome::Failed),
                    _ => None,
                };
                let since = ask_since(p)?;
                let filter = AuditFilter {
                    action,
                    outcome,
                    since,
                    limit: Some(100),
                    ..AuditFilter::default()
                };
                let rows = shell.with_session(|s, v| v.audit_list(s, filter, user.as_deref()))?;
                if rows.is_empty() {
                    p.say("No audit records match.");
                } else {
                    p.say(&entries_table(&rows));
                }
                Ok(())
            }
            3 => {
                let v = shell.with_session(|s, v| v.audit_verify(s))?;
                match zencrypt_core::chain::broken(&v) {
                    Some(e) => Err(Interrupt::Failed(e)),
                    None => {
                        p.say(&v.summary());
                        Ok(())
                    }
                }
            }
            _ => {
                let (seq, mac) = shell.with_session(|s, v| v.audit_checkpoint(s))?;
                p.say("Keep this line somewhere the database's owners cannot change; `zencrypt audit verify --checkpoint FILE` checks against it:");
                p.say(&serde_json::json!({ "seq": seq, "mac": zencrypt_core::crypto::hex(&mac) }).to_string());
                Ok(())
            }
        })
    }
}
