//! The audit service: who may list, export and verify the audit log, and the
//! checkpoints an auditor keeps outside the database. The chain itself is
//! [`crate::chain`].

use serde_json::json;

use crate::authz::{self, Permission};
use crate::chain::{Verification, broken, list, verify};
use crate::crypto::mac::MacKey;
use crate::error::{Error, Result};
use crate::events::AuditAction;
use crate::integrity::{self, Sealed, StateDigests};
use crate::model::RowId;
use crate::model::{AuditEntry, AuditFilter};
use crate::storage::Tx;
use crate::storage::schema::{SESSIONS, Value};
use crate::vault::{Session, Vault, recheck, role_now};

/// What `db audit-key rotate` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRotation {
    /// The seq of the hand-over entry, the first under the new key.
    pub seq: i64,
    /// Entries before it, now vouched for by its digest.
    pub entries_before: i64,
    /// User rows bound anew under the new key.
    pub users: u64,
    /// Session rows bound anew under the new key.
    pub sessions: u64,
}

impl Vault {
    /// Lists audit rows: a plain user sees only their own; auditors and admins see all
    /// and may filter by user name.
    pub fn audit_list(
        &mut self,
        session: &Session,
        mut filter: AuditFilter,
        user: Option<&str>,
    ) -> Result<Vec<AuditEntry>> {
        let target = user.unwrap_or("-").to_string();
        let other = user.filter(|u| *u != session.username);
        if let Some(u) = other
            && !authz::allows(session.role, Permission::ReadAll)
        {
            self.require(session, Permission::ReadAll, AuditAction::AuditList, u)?;
        }
        self.authorized(
            session,
            Permission::Own,
            AuditAction::AuditList,
            &target,
            |tx| {
                // Decided on the role as it is now, not as it was when the session was read.
                let role = role_now(tx, session)?;
                if authz::allows(role, Permission::ReadAll) {
                    filter.actor = user.map(str::to_string);
                } else {
                    if other.is_some() {
                        authz::check(role, Permission::ReadAll, AuditAction::AuditList)?;
                    }
                    filter.actor_id = Some(session.user_id.0);
                }
                let rows = list(tx, &filter)?;
                let n = rows.len();
                Ok((rows, json!({ "count": n })))
            },
        )
    }

    /// The chain's head (seq and MAC) to keep somewhere else (auditors and admins).
    pub fn audit_checkpoint(&mut self, session: &Session) -> Result<(i64, Vec<u8>)> {
        self.authorized(
            session,
            Permission::ReadAll,
            AuditAction::AuditCheckpoint,
            "-",
            |tx| {
                let (seq, mac) = tx
                    .audit_head()?
                    .ok_or_else(|| Error::NotFound("the audit log is empty".into()))?;
                Ok(((seq, mac), json!({ "seq": seq })))
            },
        )
    }

    /// Verifies the chain and that the row at a saved checkpoint still carries the saved
    /// MAC: a changed, removed or truncated history at or before it fails (exit 7).
    pub fn audit_verify_checkpoint(
        &mut self,
        session: &Session,
        seq: i64,
        mac: &[u8],
    ) -> Result<Verification> {
        self.verify_and_record(session, Some((seq, mac)))
    }

    /// Every audit row the caller may see (all for auditors and admins, their own for
    /// users), for export.
    pub fn audit_export(&mut self, session: &Session) -> Result<Vec<AuditEntry>> {
        let mut filter = AuditFilter::default();
        self.authorized(
            session,
            Permission::Own,
            AuditAction::AuditExport,
            "-",
            |tx| {
                if !authz::allows(role_now(tx, session)?, Permission::ReadAll) {
                    filter.actor_id = Some(session.user_id.0);
                }
                let rows = list(tx, &filter)?;
                let n = rows.len();
                Ok((rows, json!({ "count": n })))
            },
        )
    }

    /// Verifies the whole chain (auditors and admins). The check itself is audited:
    /// `ok` when the chain is intact, `failed` when it is broken.
    pub fn audit_verify(&mut self, session: &Session) -> Result<Verification> {
        self.verify_and_record(session, None)
    }

    fn verify_and_record(
        &mut self,
        session: &Session,
        checkpoint: Option<(i64, &[u8])>,
    ) -> Result<Verification> {
        self.require(session, Permission::ReadAll, AuditAction::AuditVerify, "-")?;
        let v = {
            let mut tx = self.store.read()?;
            let mut v = verify(tx.as_mut(), &self.audit_key)?;
            // The checkpoint is checked before this verification adds its own record.
            if let (None, Some((seq, mac))) = (&v.first_bad, checkpoint) {
                let problem = match tx.audit_entry(seq)? {
                    None => Some("the log ends before the checkpoint (rows were removed)"),
                    Some(r) if !bool::from(subtle::ConstantTimeEq::ct_eq(&r.mac[..], mac)) => {
                        Some("the history up to the checkpoint was rewritten")
                    }
                    Some(_) => None,
                };
                v.first_bad = problem.map(|p| (seq, p.to_string()));
            }
            v
        };
        match broken(&v) {
            Some(e) => self.audit_failure(&session.actor(), AuditAction::AuditVerify, "-", &e),
            None => {
                let checked = v.checked;
                self.authorized(
                    session,
                    Permission::ReadAll,
                    AuditAction::AuditVerify,
                    "-",
                    |_| Ok(((), json!({ "checked": checked }))),
                )?;
            }
        }
        Ok(v)
    }

    /// Rotates the audit key (admins), for when a holder of it leaves: in one write
    /// transaction the whole chain and every row's state must verify under the current
    /// key, the rows bound under the audit key (users and sessions) are bound under `new`,
    /// and the chain continues under `new` from a hand-over entry both keys authenticate
    /// (see [`crate::chain::hand_over`]). From then on only `new` opens this database. The
    /// caller keeps `new` safe before calling, so a committed rotation never loses it.
    pub fn rotate_audit_key(&mut self, session: &Session, new: MacKey) -> Result<KeyRotation> {
        let action = AuditAction::AuditKeyRotate;
        self.require(session, Permission::Administer, action, "-")?;
        let old = std::mem::replace(&mut self.audit_key, new);
        let new = &self.audit_key;
        let store = &mut self.store;
        let done = (|| -> Result<(KeyRotation, Vec<u8>)> {
            let mut tx = Sealed::new(store.write()?, &old, None);
            recheck(&mut tx, session, Permission::Administer, action)?;
            let v = verify(tx.raw(), &old)?;
            if let Some(e) = broken(&v) {
                return Err(e);
            }
            let mut state = StateDigests::default();
            let users = tx.list_users()?;
            for u in &users {
                let encoding = integrity::encode_user(u);
                let mac = integrity::row_mac(new, &encoding);
                tx.raw().set_row_mac(&RowId::User(u.id), &mac)?;
                state.set(RowId::User(u.id), Some(integrity::digest(&encoding, &mac)));
            }
            let id_column = SESSIONS.position("id").unwrap_or(0);
            let mut ids = Vec::new();
            tx.raw().dump(&SESSIONS, &mut |row| {
                if let Some(Value::Text(id)) = row.get(id_column) {
                    ids.push(id.clone());
                }
                Ok(())
            })?;
            let mut sessions = 0u64;
            for id in ids {
                // Checked under the old key as it is read; ended sessions have no binding.
                let Some(s) = tx.session(&id)? else { continue };
                if s.mac.is_empty() {
                    continue;
                }
                let mac = integrity::row_mac(new, &integrity::encode_session(&s));
                tx.raw().set_row_mac(&RowId::Session(id), &mac)?;
                sessions += 1;
            }
            let (seq, mac) =
                crate::chain::hand_over(tx.raw(), &old, new, &session.actor(), &state.encode())?;
            Box::new(tx).commit()?;
            Ok((
                KeyRotation {
                    seq,
                    entries_before: seq - 1,
                    users: users.len() as u64,
                    sessions,
                },
                mac,
            ))
        })();
        match done {
            Ok((rotation, mac)) => {
                self.witness.advance(rotation.seq, &mac);
                Ok(rotation)
            }
            Err(e) => {
                self.audit_key = old;
                self.audit_failure(&session.actor(), action, "-", &e);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Role;
    use crate::storage::UsageGroup;
    use secrecy::SecretString;

    #[test]
    fn a_demoted_auditor_sees_only_their_own_rows_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut vault = crate::vault::test_vault(&dir.path().join("z.db"));
        let pw = SecretString::from("password-123");
        let admin = vault.signup("alice", &pw, None).unwrap().token;
        let admin = vault.authenticate(&admin).unwrap();
        vault
            .key_create(&admin, "k", crate::keys::KeyOptions::default())
            .unwrap();
        let mut sealed = Vec::new();
        vault
            .encrypt_stream(&admin, "k", &mut &b"x"[..], &mut sealed, false, &mut |_| {})
            .unwrap();
        let bob = vault.signup("bob", &pw, None).unwrap().token;
        vault.set_role(&admin, "bob", Role::Auditor).unwrap();
        // bob's session was read while he was an auditor...
        let bob = vault.authenticate(&bob).unwrap();
        assert_eq!(bob.role, Role::Auditor);
        assert!(
            vault
                .audit_list(&bob, AuditFilter::default(), None)
                .unwrap()
                .iter()
                .any(|e| e.actor == "alice")
        );
        // ...and is demoted before his next action.
        vault.set_role(&admin, "bob", Role::User).unwrap();
        let rows = vault
            .audit_list(&bob, AuditFilter::default(), None)
            .unwrap();
        assert!(!rows.is_empty());
        assert!(
            rows.iter().all(|e| e.actor_id == Some(bob.user_id.0)),
            "{rows:?}"
        );
        let exported = vault.audit_export(&bob).unwrap();
        assert!(exported.iter().all(|e| e.actor_id == Some(bob.user_id.0)));
        let denied = vault
            .audit_list(&bob, AuditFilter::default(), Some("alice"))
            .unwrap_err();
        assert_eq!(
            denied.to_string(),
            "permission denied: audit.list requires the auditor role"
        );
        let usage = vault
            .usage_report(&bob, UsageGroup::User, None, None)
            .unwrap();
        assert!(usage.iter().all(|r| r.group == "bob"), "{usage:?}");
        let denied = vault
            .usage_report(&bob, UsageGroup::User, None, Some("alice"))
            .unwrap_err();
        assert_eq!(
            denied.to_string(),
            "permission denied: usage requires the auditor role"
        );
    }
}
