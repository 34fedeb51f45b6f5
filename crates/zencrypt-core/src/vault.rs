//! The opened vault: the database, the signing and audit secrets, and the steps every
//! action goes through: authenticate the session, authorize the role, run the action and
//! its audit record in one transaction (a denial or failure is audited in its own).

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::authz::{self, Permission};
use crate::chain::{self, Actor};
use crate::config::{Config, SignupPolicy};
use crate::crypto::kdf::KdfParams;
use crate::crypto::mac::MacKey;
use crate::crypto::{Aad, Key32, aead};
use crate::duration;
use crate::error::{Error, Result};
use crate::events::AuditAction;
use crate::fsutil;
use crate::ids::UserId;
use crate::integrity::{self, OwnerKey, Sealed, StateDigests};
use crate::model::{Outcome, Role, StoredRow, UserStatus};
use crate::session::{self, JwtKeys};
use crate::storage::{Storage, Tx};
use crate::witness::Witness;

/// How many times a write transaction that lost a race to a concurrent one is run before
/// the loss is reported (see the storage contract in [`crate::storage`]).
const WRITE_ATTEMPTS: u32 = 5;

/// The `meta` entry naming the audit seq of the upgrade that bound this database's rows
/// (`0` for a database that was created with bindings).
const ROW_BINDINGS: &str = "row_bindings";
/// The audit action of that upgrade.
const UPGRADE_ACTION: AuditAction = AuditAction::DbBindRows;

/// Policy settings the domain needs from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// argon2id parameters for new hashes and KEKs.
    pub kdf: KdfParams,
    /// Who may sign up.
    pub signup: SignupPolicy,
    /// Default session lifetime in seconds.
    pub session_ttl: u64,
    /// Earlier versions kept per record.
    pub history: u32,
}

/// An open vault.
pub struct Vault {
    pub(crate) store: Box<dyn Storage>,
    pub(crate) jwt: JwtKeys,
    pub(crate) audit_key: MacKey,
    pub(crate) policy: Policy,
    pub(crate) witness: Witness,
    /// Where this client keeps its witnesses (none for vaults built by tools and tests).
    state_dir: Option<std::path::PathBuf>,
    /// This database's random id.
    id: Vec<u8>,
}

/// An authenticated session: who is acting, with their current role from the database,
/// and their user key.
#[derive(Debug)]
pub struct Session {
    /// User id.
    pub user_id: UserId,
    /// User name.
    pub username: String,
    /// Current role (read from the database, not the token).
    pub role: Role,
    /// Session id.
    pub sid: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// The user's key, unwrapped with the token's session key.
    pub(crate) user_key: Key32,
    /// The token's session key, which wraps this session's copy of the user key.
    pub(crate) session_key: Key32,
    /// The key binding the user's own rows, derived from the user key.
    pub(crate) integrity: OwnerKey,
    /// Made by an administrator and not yet given the user's own password.
    pub must_change_password: bool,
    /// For a service account's token: the owner whose granted records it reads.
    pub service_owner: Option<UserId>,
}

impl Session {
    /// The audit actor for this session.
    pub fn actor(&self) -> Actor {
        Actor::user(self.user_id, &self.username)
    }
}

/// Associated data binding a session's wrapped user key to the session and user.
pub(crate) fn session_aad(sid: &str, user_id: UserId) -> Aad {
    Aad::new("session-user-key").field(sid).int(user_id)
}

/// Associated data binding a user's wrapped user key to the user.
pub(crate) fn user_key_aad(user_id: UserId) -> Aad {
    Aad::new("user-key").int(user_id)
}

impl Vault {
    /// Opens a vault over `store` (the database the configuration names, opened by the
    /// front end's backend choice) and loads (or creates) the session-signing secret and
    /// the audit key; refuses a database whose audit chain is shorter than, or diverges
    /// from, what this client saw before.
    pub fn open(store: Box<dyn Storage>, cfg: &Config) -> Result<Vault> {
        Vault::open_checking(store, cfg, true)
    }

    /// Opens an existing database without comparing its audit chain to this client's
    /// witness: only to accept a restored database's head on purpose
    /// ([`Vault::accept_head`]).
    pub fn open_unwitnessed(store: Box<dyn Storage>, cfg: &Config) -> Result<Vault> {
        Vault::open_checking(store, cfg, false)
    }

    fn open_checking(store: Box<dyn Storage>, cfg: &Config, check_witness: bool) -> Result<Vault> {
        let jwt_secret = secret_bytes(
            cfg.jwt_secret.as_ref(),
            &cfg.data_dir.join("jwt.secret"),
            64,
        )?;
        let audit_key = audit_key(cfg)?;
        let mut vault = Vault {
            store,
            jwt: JwtKeys::new(&jwt_secret)?,
            audit_key: MacKey::new(audit_key.to_vec()),
            policy: Policy {
                kdf: cfg.kdf,
                signup: cfg.signup,
                session_ttl: cfg.session_ttl,
                history: cfg.history,
            },
            witness: Witness::none(),
            state_dir: None,
            id: Vec::new(),
        };
        vault.prepare(Some(&cfg.state_dir), check_witness)?;
        Ok(vault)
    }

    /// This database's random id (what session files and witnesses are keyed by).
    pub fn database_id(&self) -> &[u8] {
        &self.id
    }

    /// What accepting the database's current audit head would change for this client.
    pub fn pending_head(&mut self) -> Result<crate::witness::HeadChange> {
        let mut tx = self.store.read()?;
        self.witness.pending(tx.as_mut())
    }

    /// Accepts the database's audit chain as it is now, after a deliberate restore from a
    /// backup: the whole chain and every row's state must verify, the acceptance is
    /// audited (with the seq this client had seen), and the witness moves to the new head.
    pub fn accept_head(&mut self, who: &str) -> Result<crate::witness::HeadChange> {
        let change = self.pending_head()?;
        let v = {
            let mut tx = self.store.read()?;
            chain::verify(tx.as_mut(), &self.audit_key)?
        };
        if let Some(e) = chain::broken(&v) {
            self.audit_failure(
                &Actor::anonymous(who),
                AuditAction::AuditAcceptHead,
                "-",
                &e,
            );
            return Err(e);
        }
        let mut tx = self.store.write()?;
        let (seq, mac) = chain::append(
            tx.as_mut(),
            &self.audit_key,
            &Actor::anonymous(who),
            AuditAction::AuditAcceptHead,
            "-",
            Outcome::Ok,
            &json!({ "previous_seq": change.seen, "head_seq": change.head }),
        )?;
        let id = tx.database_id()?;
        tx.commit()?;
        self.witness.replace(seq, &mac)?;
        if let Some(dir) = &self.state_dir {
            Witness::pin(dir, self.store.location(), &id, false, true)?;
        }
        Ok(change)
    }

    /// Builds a vault over any storage backend.
    pub fn with_store(
        store: Box<dyn Storage>,
        jwt_secret: &[u8],
        audit_key: MacKey,
        policy: Policy,
    ) -> Result<Vault> {
        let mut vault = Vault {
            store,
            jwt: JwtKeys::new(jwt_secret)?,
            audit_key,
            policy,
            witness: Witness::none(),
            state_dir: None,
            id: Vec::new(),
        };
        vault.prepare(None, false)?;
        Ok(vault)
    }

    /// One read at open: the audit key must be the log's, the witness kept in
    /// `state_dir` is loaded (and, with `check_witness`, the database must not show a
    /// shorter or diverging chain), and a database from before row bindings is bound.
    fn prepare(&mut self, state_dir: Option<&Path>, check_witness: bool) -> Result<()> {
        let (id, bound, fresh) = {
            let mut tx = self.store.read()?;
            let origin = chain::check_origin(tx.as_mut(), &self.audit_key);
            if let Err(Error::Config(_)) = &origin
                && check_witness
                && let Some(dir) = state_dir
            {
                // Another key, or a chain cut back and rewritten under an older one: a
                // chain shorter than, or forked from, what this client saw is named as the
                // rollback it is, not as a wrong key.
                let id = tx.database_id()?;
                Witness::load(dir, &id)?.check_unkeyed(tx.as_mut())?;
            }
            origin?;
            let fresh = tx.audit_head()?.is_none();
            (tx.database_id()?, tx.meta(ROW_BINDINGS)?.is_some(), fresh)
        };
        self.id = id.clone();
        if let Some(dir) = state_dir {
            if check_witness {
                Witness::pin(dir, self.store.location(), &id, fresh, false)?;
            }
            self.state_dir = Some(dir.to_path_buf());
            // The witness is read before the chain it is compared with: it only ever
            // holds heads that were committed before it was written, so a read that
            // starts after it sees at least that much (another process may be committing
            // right now).
            self.witness = Witness::load(dir, &id)?;
            if check_witness {
                let mut tx = self.store.read()?;
                self.witness.check(tx.as_mut(), &self.audit_key)?;
            }
        }
        if bound {
            Ok(())
        } else {
            self.bind_installation()
        }
    }

    /// Binds a database written before row bindings existed, once: every user row under
    /// the audit key (sessions were ended by the migration), and one audit entry with the
    /// digest of every row, which later vouches for the rows that only their owners can
    /// bind (at their first session, see [`Vault::bind_owner_rows`]).
    fn bind_installation(&mut self) -> Result<()> {
        let mut tx = self.store.write()?;
        if tx.meta(ROW_BINDINGS)?.is_some() {
            return Ok(());
        }
        let users = tx.list_users()?;
        if users.is_empty() && tx.audit_head()?.is_none() {
            tx.set_meta(ROW_BINDINGS, b"0")?;
            return Ok(tx.commit()?);
        }
        if users.iter().any(|u| !u.mac.is_empty()) || tx.audit_has_state()? {
            return Err(Error::Integrity(
                "this database's rows were bound before, but the record of it is gone (its meta table was edited); restore the database from a backup"
                    .into(),
            ));
        }
        let mut state = StateDigests::default();
        let mut rows = Vec::new();
        tx.scan_rows(&mut |row| {
            rows.push(row);
            true
        })?;
        for mut row in rows {
            if let StoredRow::User(u) = &mut row {
                u.mac = integrity::row_mac(&self.audit_key, &integrity::encode_user(u));
                tx.set_row_mac(&crate::model::RowId::User(u.id), &u.mac)?;
            }
            let (id, d) = integrity::row_digest(&row);
            state.set(id, Some(d));
        }
        let n = state.0.len();
        let (seq, _) = chain::append_state(
            tx.as_mut(),
            &self.audit_key,
            &Actor::anonymous("zencrypt"),
            UPGRADE_ACTION,
            "-",
            (Outcome::Ok, &json!({ "rows": n })),
            &state.encode(),
        )?;
        tx.set_meta(ROW_BINDINGS, seq.to_string().as_bytes())?;
        Ok(tx.commit()?)
    }

    /// Binds the rows of a user from before row bindings, in the user's first session
    /// after the upgrade and before anything of theirs is served: each row must still be
    /// in the state the upgrade's audit entry recorded.
    fn bind_owner_rows(&mut self, user_id: UserId, owner: &OwnerKey) -> Result<()> {
        let mut tx = Sealed::new(self.store.write()?, &self.audit_key, Some(owner));
        let Some(mut user) = tx.user_by_id(user_id.0)? else {
            return Err(Error::SessionRevoked);
        };
        if user.rows_bound {
            return Ok(());
        }
        let upgrade = tx
            .meta(ROW_BINDINGS)?
            .and_then(|v| String::from_utf8(v).ok()?.parse::<i64>().ok())
            .filter(|seq| *seq > 0);
        let entry = match upgrade {
            Some(seq) => tx.audit_entry(seq)?,
            None => None,
        }
        .filter(|e| e.action == UPGRADE_ACTION.as_str());
        let entry = match entry {
            Some(e) if chain::genuine(tx.raw(), &self.audit_key, &e)? => Some(e),
            _ => None,
        }
        .ok_or_else(|| {
            Error::Integrity(
                "the audit entry that vouches for this account's older rows is missing or altered; restore the database from a backup"
                    .into(),
            )
        })?;
        let mut recorded = StateDigests::default();
        StateDigests::decode_each(&entry.state, |row, d| recorded.set(row, d))
            .ok_or_else(|| Error::Integrity("the upgrade's audit entry is malformed".into()))?;
        let mut bound = StateDigests::default();
        for row in tx.raw().unbound_rows(user_id.0)? {
            let (id, enc, _) = integrity::describe(&row);
            if recorded.0.get(&id) != Some(&Some(integrity::digest(&enc, &[]))) {
                return Err(integrity::tampered(&id));
            }
            let mac = integrity::row_mac(owner.mac_key(), &enc);
            tx.raw().set_row_mac(&id, &mac)?;
            bound.set(id, Some(integrity::digest(&enc, &mac)));
        }
        user.rows_bound = true;
        tx.update_user(&user)?;
        for (id, d) in tx.take_written().0 {
            bound.set(id, d);
        }
        // The rows bound, besides the user's own row.
        let n = bound.0.len().saturating_sub(1);
        let head = chain::append_state(
            &mut tx,
            &self.audit_key,
            &Actor::user(user_id, &user.username),
            AuditAction::AccountBindRows,
            &user.username,
            (Outcome::Ok, &json!({ "rows": n })),
            &bound.encode(),
        )?;
        Box::new(tx).commit()?;
        self.witness.advance(head.0, &head.1);
        Ok(())
    }

    /// A read transaction with row integrity in front (`owner`: whose own rows may be
    /// read).
    pub(crate) fn reader<'a>(&'a mut self, owner: Option<&'a OwnerKey>) -> Result<Sealed<'a>> {
        Ok(Sealed::new(self.store.read()?, &self.audit_key, owner))
    }

    /// The argon2id parameters for new hashes.
    pub fn kdf(&self) -> KdfParams {
        self.policy.kdf
    }

    /// The database's path or URL.
    pub fn location(&self) -> &str {
        self.store.location()
    }

    /// Validates a session token: signature, expiry, issuer and audience, then the session
    /// row (exists, unrevoked, unexpired) and the user (exists, active). The role comes
    /// from the database. Failures are audited.
    pub fn authenticate(&mut self, token: &SecretString) -> Result<Session> {
        let result = self.check_session(token);
        if let Err((actor, e)) = &result {
            self.audit_failure(actor, AuditAction::SessionCheck, "-", e);
        }
        result.map_err(|(_, e)| e)
    }

    fn check_session(
        &mut self,
        token: &SecretString,
    ) -> std::result::Result<Session, (Actor, Error)> {
        if let Some(parsed) = crate::services::parse_token(token) {
            return self.check_service_token(parsed);
        }
        let unknown = Actor::anonymous("-");
        let contents = session::validate(&self.jwt, token).map_err(|e| (unknown.clone(), e))?;
        let actor = Actor::user(contents.user_id, &contents.name);
        let fail = |e: Error| (actor.clone(), e);
        let mut tx = Sealed::new(
            self.store.read().map_err(|e| fail(e.into()))?,
            &self.audit_key,
            None,
        );
        let row = tx
            .session(&contents.sid)
            .map_err(|e| fail(e.into()))?
            .filter(|s| s.user_id == contents.user_id.0)
            .ok_or_else(|| fail(Error::SessionRevoked))?;
        if row.revoked_at.is_some() {
            return Err(fail(Error::SessionRevoked));
        }
        if row.expires_at <= duration::now() {
            return Err(fail(Error::SessionExpired));
        }
        let user = tx
            .user_by_id(row.user_id)
            .map_err(|e| fail(e.into()))?
            .ok_or_else(|| fail(Error::SessionRevoked))?;
        drop(tx);
        let user_id = UserId(user.id);
        let actor = Actor::user(user_id, &user.username);
        if user.status != UserStatus::Active {
            return Err((actor, Error::AccountDisabled));
        }
        let user_key = aead::unwrap_key(
            &contents.session_key,
            &session_aad(&row.id, UserId(row.user_id)),
            &row.wrapped_user_key,
        )
        .map_err(|_| (actor.clone(), Error::InvalidToken))?;
        let integrity = OwnerKey::derive(user_id, &user_key);
        if !user.rows_bound {
            self.bind_owner_rows(user_id, &integrity)
                .map_err(|e| (actor.clone(), e))?;
        }
        Ok(Session {
            user_id,
            username: user.username,
            role: user.role,
            sid: row.id,
            expires_at: row.expires_at,
            user_key,
            session_key: contents.session_key,
            integrity,
            must_change_password: user.must_change_password,
            service_owner: None,
        })
    }

    /// Ends the session a token belongs to, if it is still live (used when a saved
    /// session is replaced by a new login, so no live session is left orphaned).
    pub fn end_replaced_session(&mut self, token: &SecretString) {
        if let Ok(session) = self.check_session(token) {
            let _ = self.logout(&session, false);
        }
    }

    /// Refuses (and audits the denial of) an action the session's role does not allow.
    pub fn require(
        &mut self,
        session: &Session,
        permission: Permission,
        action: AuditAction,
        target: &str,
    ) -> Result<()> {
        match authz::check(session.role, permission, action) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.audit_failure(&session.actor(), action, target, &e);
                Err(e)
            }
        }
    }

    /// Runs `f` in one write transaction together with its `ok` audit record. When `f`
    /// fails, its changes roll back and the failure is audited in a transaction of its own.
    pub(crate) fn audited<T>(
        &mut self,
        actor: &Actor,
        action: AuditAction,
        target: &str,
        mut f: impl FnMut(&mut dyn Tx) -> Result<(T, Value)>,
    ) -> Result<T> {
        self.audited_if(actor, action, target, |tx| f(tx).map(|(v, d)| (v, Some(d))))
    }

    /// Like [`Vault::audited`], but a success writes an audit record only when `f` returns
    /// a detail (for steps whose outcome is audited elsewhere). Failures are always audited.
    pub(crate) fn audited_if<T>(
        &mut self,
        actor: &Actor,
        action: AuditAction,
        target: &str,
        mut f: impl FnMut(&mut dyn Tx) -> Result<(T, Option<Value>)>,
    ) -> Result<T> {
        self.audited_rows(actor, None, action, target, |tx| {
            f(tx).map(|(v, d)| (v, d.map(|d| (action, d)).into_iter().collect()))
        })
    }

    /// The general form: on success `f` names the audit records to write with it, as
    /// `(action, detail)` pairs on `target`; a failure is audited as `action`. Rows are
    /// checked and bound on the way (see [`Sealed`]; `owner` is the acting user's
    /// integrity key), and the first record carries the digests of the row states the
    /// action wrote (an action that wrote rows is always recorded).
    pub(crate) fn audited_rows<T>(
        &mut self,
        actor: &Actor,
        owner: Option<&OwnerKey>,
        action: AuditAction,
        target: &str,
        mut f: impl FnMut(&mut dyn Tx) -> Result<(T, Vec<(AuditAction, Value)>)>,
    ) -> Result<T> {
        let mut attempt = 1;
        let result = loop {
            match self.write_once(actor, owner, action, target, &mut f) {
                Err(Error::Busy {
                    retryable: true, ..
                }) if attempt < WRITE_ATTEMPTS => {
                    // A lost race: wait a little (longer each time, with jitter so the
                    // losers do not collide again) and run the whole transaction again.
                    let jitter = u64::from(crate::crypto::random_bytes::<1>()[0] % 20);
                    std::thread::sleep(std::time::Duration::from_millis(
                        10 * u64::from(attempt) + jitter,
                    ));
                    attempt += 1;
                }
                other => break other,
            }
        };
        match result {
            Ok((value, head)) => {
                if let Some((seq, mac)) = head {
                    self.witness.advance(seq, &mac);
                }
                Ok(value)
            }
            Err(e) => {
                self.audit_failure(actor, action, target, &e);
                Err(e)
            }
        }
    }

    /// One attempt at an audited write transaction (see [`Vault::audited_rows`]).
    #[allow(clippy::type_complexity)]
    fn write_once<T>(
        &mut self,
        actor: &Actor,
        owner: Option<&OwnerKey>,
        action: AuditAction,
        target: &str,
        f: &mut impl FnMut(&mut dyn Tx) -> Result<(T, Vec<(AuditAction, Value)>)>,
    ) -> Result<(T, Option<(i64, Vec<u8>)>)> {
        {
            let mut tx = Sealed::new(self.store.write()?, &self.audit_key, owner);
            // Under the head lock the key is checked again: a rotation committed since this
            // client opened the database is a wrong key, not rows that fail their MACs.
            chain::check_audit_key(tx.raw(), &self.audit_key)?;
            let (value, mut rows) = f(&mut tx)?;
            let mut state = tx.take_written().encode();
            if rows.is_empty() && !state.is_empty() {
                rows.push((action, json!({})));
            }
            let mut head = None;
            for (row_action, detail) in rows {
                head = Some(chain::append_state(
                    &mut tx,
                    &self.audit_key,
                    actor,
                    row_action,
                    target,
                    (Outcome::Ok, &detail),
                    &std::mem::take(&mut state),
                )?);
            }
            Box::new(tx).commit()?;
            Ok((value, head))
        }
    }

    /// Like [`Vault::audited`] for an authenticated action: inside the write transaction
    /// the session row and the user are read again (unrevoked, unexpired, active) and the
    /// permission is checked against the role as it is now, so a revocation, demotion or
    /// disabling takes effect even for a session that was validated a moment before.
    pub(crate) fn authorized<T>(
        &mut self,
        session: &Session,
        permission: Permission,
        action: AuditAction,
        target: &str,
        mut f: impl FnMut(&mut dyn Tx) -> Result<(T, Value)>,
    ) -> Result<T> {
        self.authorized_if(session, permission, action, target, |tx| {
            f(tx).map(|(v, d)| (v, Some(d)))
        })
    }

    /// [`Vault::authorized`] with an optional success record (see [`Vault::audited_if`]).
    pub(crate) fn authorized_if<T>(
        &mut self,
        session: &Session,
        permission: Permission,
        action: AuditAction,
        target: &str,
        mut f: impl FnMut(&mut dyn Tx) -> Result<(T, Option<Value>)>,
    ) -> Result<T> {
        self.authorized_rows(session, permission, action, target, |tx| {
            f(tx).map(|(v, d)| (v, d.map(|d| (action, d)).into_iter().collect()))
        })
    }

    /// [`Vault::authorized`] with any number of success records (see
    /// [`Vault::audited_rows`]).
    pub(crate) fn authorized_rows<T>(
        &mut self,
        session: &Session,
        permission: Permission,
        action: AuditAction,
        target: &str,
        mut f: impl FnMut(&mut dyn Tx) -> Result<(T, Vec<(AuditAction, Value)>)>,
    ) -> Result<T> {
        let history = self.policy.history;
        self.audited_rows(
            &session.actor(),
            Some(&session.integrity),
            action,
            target,
            |tx| {
                recheck(tx, session, permission, action)?;
                // What recipients allowed to write wrote to this user's records is taken in
                // as their next versions (wrapped for every group's current key); then what
                // this user shared with a group whose keypair was replaced since (a member
                // removed) is re-encrypted, both before anything else they do.
                let rekeyed = if session.role == Role::Service {
                    Vec::new()
                } else {
                    let mut rows = crate::sharing::take_writes(tx, session, history)?;
                    rows.extend(crate::sharing::rekey_group_shares(tx, session, history)?);
                    rows
                };
                let (value, mut rows) = f(tx)?;
                rows.extend(rekeyed);
                Ok((value, rows))
            },
        )
    }

    /// Records a denied or failed action in its own transaction. When the database itself
    /// is the problem there is nowhere to write, and the error is reported as it is.
    pub fn audit_failure(&mut self, actor: &Actor, action: AuditAction, target: &str, e: &Error) {
        if matches!(e, Error::Database { .. }) {
            return;
        }
        let outcome = if e.is_denial() {
            Outcome::Denied
        } else {
            Outcome::Failed
        };
        let detail = json!({ "error": e.code() });
        let written = (|| -> Result<(i64, Vec<u8>)> {
            let mut tx = self.store.write()?;
            let head = chain::append(
                tx.as_mut(),
                &self.audit_key,
                actor,
                action,
                target,
                outcome,
                &detail,
            )?;
            tx.commit()?;
            Ok(head)
        })();
        if let Ok((seq, mac)) = written {
            self.witness.advance(seq, &mac);
        }
    }
}

/// Re-reads the session and its user inside a transaction and checks the permission.
pub(crate) fn recheck(
    tx: &mut dyn Tx,
    session: &Session,
    permission: Permission,
    action: AuditAction,
) -> Result<()> {
    // Every write also wipes the key copies of sessions that have expired since, so an
    // expired token is worthless against a later copy of the file, as a revoked one is.
    tx.shred_expired_sessions(duration::now())?;
    let row = tx
        .session(&session.sid)?
        .filter(|s| s.user_id == session.user_id.0)
        .ok_or(Error::SessionRevoked)?;
    if row.revoked_at.is_some() {
        return Err(Error::SessionRevoked);
    }
    if row.expires_at <= duration::now() {
        return Err(Error::SessionExpired);
    }
    let user = tx
        .user_by_id(session.user_id.0)?
        .ok_or(Error::SessionRevoked)?;
    if user.status != UserStatus::Active {
        return Err(Error::AccountDisabled);
    }
    if user.must_change_password && !PASSWORD_CHANGE_ALLOWS.contains(&action) {
        return Err(Error::PasswordChangeRequired);
    }
    authz::check(user.role, permission, action)
}

/// What a session of an account that must change its password may do.
const PASSWORD_CHANGE_ALLOWS: [AuditAction; 3] = [
    AuditAction::AuthPasswd,
    AuditAction::AuthLogout,
    AuditAction::AuthWhoami,
];

/// A vault over a SQLite file at `db` with fixed secrets and a cheap argon2 cost, for
/// unit tests.
#[cfg(test)]
pub(crate) fn test_vault(db: &Path) -> Vault {
    Vault::with_store(
        Box::new(crate::sqlite_backend::SqliteStore::open(db).unwrap()),
        &[3u8; 32],
        MacKey::new(vec![4u8; 32]),
        Policy {
            kdf: KdfParams {
                m_kib: 64,
                t: 1,
                p: 1,
            },
            signup: SignupPolicy::Open,
            session_ttl: 3600,
            history: 9,
        },
    )
    .unwrap()
}

/// The caller's role as the database holds it now, inside the transaction: a decision on
/// what to show (everyone's rows or their own) follows a demotion at once.
pub(crate) fn role_now(tx: &mut dyn Tx, session: &Session) -> Result<Role> {
    Ok(tx
        .user_by_id(session.user_id.0)?
        .ok_or(Error::SessionRevoked)?
        .role)
}

/// The audit key this client is configured with (see [`Vault::open`]), for a check made
/// before a vault can be opened (`db migrate`).
pub fn configured_audit_key(cfg: &Config) -> Result<MacKey> {
    Ok(MacKey::new(audit_key(cfg)?.to_vec()))
}

/// Whether the database's audit log is now written with `key` (false: with another key).
/// Used to tell, after a failed rotation, whether the new key is already in use.
pub fn uses_audit_key(mut store: Box<dyn Storage>, key: &MacKey) -> Result<bool> {
    let mut tx = store.read()?;
    match chain::check_audit_key(tx.as_mut(), key) {
        Ok(()) => Ok(true),
        Err(Error::Config(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The audit key: `ZENCRYPT_AUDIT_KEY`, else the file `ZENCRYPT_AUDIT_KEY_FILE` names,
/// else (for a database file only) the one generated in the data directory. Every client
/// of a shared database must hold the same key, so it is never generated for one and never
/// stored in any database.
fn audit_key(cfg: &Config) -> Result<Zeroizing<Vec<u8>>> {
    if let Some(file) = &cfg.audit_key_file {
        if let Some(why) = fsutil::untrusted_secret_file(file) {
            return Err(Error::Config(why));
        }
        let bytes = Zeroizing::new(std::fs::read(file).map_err(|e| {
            Error::Config(format!(
                "ZENCRYPT_AUDIT_KEY_FILE: cannot read {}: {e}",
                file.display()
            ))
        })?);
        let text = std::str::from_utf8(&bytes).unwrap_or("").trim();
        if text.len() < 32 {
            return Err(Error::Config(format!(
                "ZENCRYPT_AUDIT_KEY_FILE: {} must hold a key of at least 32 bytes",
                file.display()
            )));
        }
        return Ok(Zeroizing::new(text.as_bytes().to_vec()));
    }
    if cfg.db.is_server() && cfg.audit_key.is_none() {
        return Err(Error::Config(
            "a shared database needs the team's audit key: set ZENCRYPT_AUDIT_KEY or ZENCRYPT_AUDIT_KEY_FILE (an administrator hands it to each member out of band; it is never stored in the database)".into(),
        ));
    }
    secret_bytes(cfg.audit_key.as_ref(), &cfg.data_dir.join("audit.key"), 32)
}

/// The configured secret, or the one in `file` (created with `len` random bytes, 0600, on
/// first use).
fn secret_bytes(
    configured: Option<&SecretString>,
    file: &Path,
    len: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    if let Some(s) = configured {
        return Ok(Zeroizing::new(s.expose_secret().as_bytes().to_vec()));
    }
    if let Some(dir) = file.parent() {
        fsutil::create_private_dir(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    }
    let mut fresh = Zeroizing::new(vec![0u8; len]);
    crate::crypto::fill_random(&mut fresh);
    let encoded = Zeroizing::new(format!("{}\n", STANDARD.encode(&*fresh)));
    let stored = Zeroizing::new(
        fsutil::create_once(file, encoded.as_bytes())
            .map_err(|e| Error::io(format!("reading {}", file.display()), e))?,
    );
    // Ours or not, it is only used if no one else could have chosen or read it.
    if let Some(why) = fsutil::untrusted_secret_file(file) {
        return Err(Error::Config(why));
    }
    let text = std::str::from_utf8(&stored).unwrap_or("").trim();
    let bytes = Zeroizing::new(STANDARD.decode(text).unwrap_or_default());
    if bytes.len() < 32 {
        return Err(Error::io(
            format!("reading {}", file.display()),
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the file is damaged (it must hold at least 32 base64-encoded bytes); restore it from a backup",
            ),
        ));
    }
    Ok(bytes)
}
