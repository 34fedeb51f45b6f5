//! Service accounts: accounts for automation (CI jobs, deploy scripts) that cannot log in,
//! hold long-lived, revocable, read-only tokens, and read only the records their owner
//! granted them (docs/threat-model.md, "Service accounts").
//!
//! - An administrator makes one (`user add --service NAME --owner USER`): a `users` row
//!   with the `service` role, no password, and an owner.
//! - The owner's client gives it a random *service key* at its first grant or token,
//!   wrapped under the owner's user key in the service's row.
//! - A grant (`service grant NAME GLOB`) is a row bound under the owner's integrity key.
//!   For every record of the owner whose name matches a grant, the owner's client wraps the
//!   record's current data key under the service key; every later write of such a record
//!   by the owner wraps the new data key again. The server cannot add a grant, and cannot
//!   make a data key readable by the service: it holds no service key.
//! - A token is a session row of the service: the service key wrapped under a random token
//!   key that only the token carries (`zst_<id>.<key>`). It expires (90 days by default),
//!   and is revoked like a session.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::accounts::validate_username;
use crate::authz::Permission;
use crate::chain::Actor;
use crate::crypto::{self, Aad, Key32, aead};
use crate::duration;
use crate::error::{Error, Result};
use crate::events::AuditAction;
use crate::glob::Glob;
use crate::ids::UserId;
use crate::integrity::OwnerKey;
use crate::model::{
    Credentials, RecordFilter, RecordRow, Role, ServiceGrant, ServiceRecordKey, SessionRecord,
    UserRecord, UserStatus,
};
use crate::records::Keyring;
use crate::storage::{NewUser, StoreError, Tx};
use crate::vault::{Session, Vault, session_aad};

/// How a service token begins.
pub const TOKEN_PREFIX: &str = "zst_";
/// A token's lifetime unless `--ttl` says otherwise: 90 days.
pub const DEFAULT_TOKEN_TTL: u64 = 90 * 86_400;
/// The longest lifetime a token may have: 400 days.
pub const MAX_TOKEN_TTL: u64 = 400 * 86_400;

/// A parsed service token: the session id and the token key.
pub struct ParsedToken {
    sid: String,
    key: Key32,
}

impl ParsedToken {
    /// The token's id (its session row's).
    pub fn id(&self) -> &str {
        &self.sid
    }

    /// The token as text again.
    pub fn text(&self) -> SecretString {
        format_token(&self.sid, &self.key)
    }
}

/// Reads a service token (`zst_<id>.<key>`); `None` when the text is not one.
pub fn parse_token(token: &SecretString) -> Option<ParsedToken> {
    let rest = token.expose_secret().strip_prefix(TOKEN_PREFIX)?;
    let (sid, key) = rest.split_once('.')?;
    if sid.len() != 32 || !sid.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let bytes = zeroize::Zeroizing::new(URL_SAFE_NO_PAD.decode(key).ok()?);
    Some(ParsedToken {
        sid: sid.to_string(),
        key: Key32::from_slice(&bytes)?,
    })
}

fn format_token(sid: &str, key: &Key32) -> SecretString {
    SecretString::from(format!(
        "{TOKEN_PREFIX}{sid}.{}",
        URL_SAFE_NO_PAD.encode(key.expose())
    ))
}

/// Associated data binding a service key, wrapped under its owner's user key, to the
/// service and the owner.
fn service_key_aad(service: UserId, owner: UserId) -> Aad {
    Aad::new("service-key").int(service).int(owner)
}

/// Associated data binding a record's data key, wrapped for a service, to the service and
/// to the record's identity, name, version and ciphertext (its hash, computed from the
/// row as read): a moved, renamed or rolled-back row does not open, nor a value sealed
/// under the same data key by someone else who holds it (a share's recipient).
fn record_key_aad(service: i64, row: &RecordRow) -> Aad {
    legacy_record_key_aad(service, row).field(crate::records::value_hash(&row.ciphertext))
}

/// [`record_key_aad`] as data keys were wrapped for services before value hashes existed
/// (without the ciphertext's hash).
fn legacy_record_key_aad(service: i64, row: &RecordRow) -> Aad {
    Aad::new("service-record-key")
        .int(service)
        .int(row.owner_id)
        .int(row.id)
        .field(&row.token)
        .field(row.name.as_deref().unwrap_or(""))
        .int(row.version)
}

/// A record's data key wrapped for a service, opened with the service key: bound to the
/// ciphertext, or, for a row written before value hashes (never shared since: sharing
/// binds the hash and wraps again for services), as it was wrapped then.
fn open_granted(
    service_key: &Key32,
    service: i64,
    row: &RecordRow,
    wrapped: &[u8],
) -> Option<Key32> {
    if let Ok(key) = aead::unwrap_key(service_key, &record_key_aad(service, row), wrapped) {
        return Some(key);
    }
    if row.value_hash.is_some() {
        return None;
    }
    aead::unwrap_key(service_key, &legacy_record_key_aad(service, row), wrapped).ok()
}

/// Whether a grant's pattern covers a record (protected records never are).
fn covers(globs: &[Glob], row: &RecordRow) -> bool {
    row.identity_id.is_none()
        && row
            .name
            .as_deref()
            .is_some_and(|n| globs.iter().any(|g| g.matches(n)))
}

/// One of the owner's service accounts with grants, as the owner's client holds it while
/// writing records.
pub(crate) struct Grantee {
    service_id: i64,
    key: Key32,
    globs: Vec<Glob>,
}

/// Loads the owner's service accounts that hold grants, with their service keys.
pub(crate) fn grantees(tx: &mut dyn Tx, owner: &Session) -> Result<Vec<Grantee>> {
    let grants = tx.grants_of_owner(owner.user_id.0)?;
    let mut out: Vec<Grantee> = Vec::new();
    for g in grants {
        if out.last().is_none_or(|l| l.service_id != g.service_id) {
            let service = tx
                .user_by_id(g.service_id)?
                .filter(|u| u.role == Role::Service && u.owner_id == Some(owner.user_id.0))
                .ok_or_else(|| {
                    Error::Integrity(format!(
                        "service_grants row {} names an account that is not a service of yours",
                        g.id
                    ))
                })?;
            out.push(Grantee {
                service_id: g.service_id,
                key: unwrap_service_key(&service, owner)?,
                globs: Vec::new(),
            });
        }
        let last = out.last_mut().expect("pushed above");
        last.globs.push(Glob::new(&g.pattern)?);
    }
    Ok(out)
}

/// After the owner wrote `row` with data key `dek`: wraps it for every service whose
/// grants cover the record, and drops the key of any that no longer do.
pub(crate) fn rewrap_for_services(
    tx: &mut dyn Tx,
    grantees: &[Grantee],
    row: &RecordRow,
    dek: &Key32,
) -> Result<()> {
    for g in grantees {
        if covers(&g.globs, row) {
            tx.put_service_record_key(&ServiceRecordKey {
                service_id: g.service_id,
                record_id: row.id,
                version: row.version,
                wrapped_dek: aead::wrap_key(&g.key, &record_key_aad(g.service_id, row), dek),
            })?;
        } else {
            tx.delete_service_record_keys(g.service_id, Some(row.id))?;
        }
    }
    Ok(())
}

/// The ids of the service accounts `owner` owns.
pub(crate) fn services_of(tx: &mut dyn Tx, owner: i64) -> Result<Vec<i64>> {
    Ok(tx
        .list_users()?
        .into_iter()
        .filter(|u| u.role == Role::Service && u.owner_id == Some(owner))
        .map(|u| u.id)
        .collect())
}

/// A record that stops being readable to its owner (deleted, or its key disabled or
/// destroyed) stops being readable to the owner's services: their data keys of it go.
pub(crate) fn forget_records(tx: &mut dyn Tx, owner: i64, record_ids: &[i64]) -> Result<()> {
    if record_ids.is_empty() {
        return Ok(());
    }
    for service in services_of(tx, owner)? {
        for id in record_ids {
            tx.delete_service_record_keys(service, Some(*id))?;
        }
    }
    Ok(())
}

/// The owner's records under `key_id` at a version below `below`, forgotten by the
/// owner's services (see [`forget_records`]).
pub(crate) fn forget_key(tx: &mut dyn Tx, owner: i64, key_id: i64, below: i64) -> Result<()> {
    let ids: Vec<i64> = tx
        .records_below_version(key_id, below)?
        .iter()
        .map(|r| r.id)
        .collect();
    forget_records(tx, owner, &ids)
}

/// Records readable again (restored, or their key enabled): the services whose grants
/// cover them get their data keys again.
pub(crate) fn renew_records(
    tx: &mut dyn Tx,
    session: &Session,
    which: impl Fn(&RecordRow) -> bool,
) -> Result<()> {
    let grantees = grantees(tx, session)?;
    if grantees.is_empty() {
        return Ok(());
    }
    let mut ring = Keyring::new(session, None);
    let now = duration::now();
    for row in owner_records(tx, session)? {
        if row.deleted_at.is_some() || crate::records::is_expired(&row, now) || !which(&row) {
            continue;
        }
        if let Ok(dek) = ring.dek(tx, session, &row) {
            crate::records::open_value(&row, &dek)?;
            rewrap_for_services(tx, &grantees, &row, &dek)?;
        }
    }
    Ok(())
}

/// The data key of `row` as wrapped for the service `session` acts as; `None` when the
/// record was not granted to it.
pub(crate) fn granted_dek(
    tx: &mut dyn Tx,
    session: &Session,
    row: &RecordRow,
) -> Result<Option<Key32>> {
    let Some(k) = tx.service_record_key(session.user_id.0, row.id)? else {
        return Ok(None);
    };
    let bad = || {
        Error::Integrity(format!(
            "records row {} does not match the data key its owner gave this service (changed outside zencrypt)",
            row.id
        ))
    };
    if k.version != row.version {
        return Err(bad());
    }
    open_granted(&session.user_key, session.user_id.0, row, &k.wrapped_dek)
        .map(Some)
        .ok_or_else(bad)
}

fn unwrap_service_key(service: &UserRecord, owner: &Session) -> Result<Key32> {
    aead::unwrap_key(
        &owner.user_key,
        &service_key_aad(UserId(service.id), owner.user_id),
        &service.credentials.wrapped_user_key,
    )
    .map_err(|_| {
        Error::Integrity(format!(
            "the service key of '{}' does not open with its owner's key (changed outside zencrypt)",
            service.username
        ))
    })
}

/// The service account `name` as its owner acts on it; gives it its service key first if
/// it has none yet. Returns the row and the key.
fn owned_service(
    tx: &mut dyn Tx,
    owner: &Session,
    name: &str,
    action: AuditAction,
) -> Result<(UserRecord, Key32)> {
    let mut service = find_service(tx, name)?;
    if service.owner_id != Some(owner.user_id.0) {
        return Err(not_owner(action, &service.username));
    }
    if service.credentials.wrapped_user_key.is_empty() {
        let key = Key32::random();
        service.credentials.wrapped_user_key = aead::wrap_key(
            &owner.user_key,
            &service_key_aad(UserId(service.id), owner.user_id),
            &key,
        );
        tx.update_user(&service)?;
        return Ok((service, key));
    }
    let key = unwrap_service_key(&service, owner)?;
    Ok((service, key))
}

/// Refuses when the password checked before the transaction was changed meanwhile.
fn password_unchanged(tx: &mut dyn Tx, session: &Session, verified: &str) -> Result<()> {
    let me = tx
        .user_by_id(session.user_id.0)?
        .ok_or(Error::SessionRevoked)?;
    if me.credentials.password_hash != verified {
        return Err(Error::Conflict(
            "the password was changed by another command meanwhile; nothing was changed".into(),
        ));
    }
    Ok(())
}

fn find_service(tx: &mut dyn Tx, name: &str) -> Result<UserRecord> {
    tx.user_by_name(name)?
        .filter(|u| u.role == Role::Service)
        .ok_or_else(|| Error::NotFound(format!("service account '{name}' not found")))
}

fn not_owner(action: AuditAction, name: &str) -> Error {
    Error::Denied {
        action: format!("{action} of service account '{name}'"),
        needs: "owner".into(),
    }
}

/// A service account's token, as `service token` makes it.
pub struct IssuedToken {
    /// The token itself (`zst_...`): shown once.
    pub token: SecretString,
    /// Its id, for `service list` and `service revoke --token`.
    pub id: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A token of a service account, as listed (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// Its id.
    pub id: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// Unix seconds, when revoked.
    pub revoked_at: Option<i64>,
}

/// A service account, as `service list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInfo {
    /// Its name.
    pub name: String,
    /// Its owner's name.
    pub owner: String,
    /// Active or disabled.
    pub status: UserStatus,
    /// Unix seconds.
    pub created_at: i64,
    /// The patterns granted (only to the owner; `None` for an administrator looking at
    /// another owner's service: the grants are bound under the owner's key).
    pub grants: Option<Vec<String>>,
    /// How many records its tokens can read now (the owner's view; `None` otherwise).
    pub readable: Option<usize>,
    /// Its tokens, newest first.
    pub tokens: Vec<TokenInfo>,
}

impl Vault {
    /// Makes a service account owned by `owner` (the administrator by default): it has no
    /// password and cannot log in; its owner grants it records and issues its tokens.
    pub fn add_service(
        &mut self,
        session: &Session,
        name: &str,
        owner: Option<&str>,
    ) -> Result<String> {
        self.require(session, Permission::Administer, AuditAction::UserAdd, name)?;
        if let Err(e) = validate_username(name) {
            self.audit_failure(&session.actor(), AuditAction::UserAdd, name, &e);
            return Err(e);
        }
        let params = self.policy.kdf;
        self.authorized(
            session,
            Permission::Administer,
            AuditAction::UserAdd,
            name,
            |tx| {
                let owner_row = match owner {
                    Some(o) => tx
                        .user_by_name(o)?
                        .ok_or_else(|| Error::NotFound(format!("user '{o}' not found")))?,
                    None => tx
                        .user_by_id(session.user_id.0)?
                        .ok_or(Error::SessionRevoked)?,
                };
                if owner_row.role == Role::Service {
                    return Err(Error::Usage(format!(
                        "'{}' is a service account; a service's owner is a person",
                        owner_row.username
                    )));
                }
                if tx.user_by_name(name)?.is_some() {
                    return Err(Error::Conflict(format!("username '{name}' is taken")));
                }
                let credentials = Credentials {
                    password_hash: String::new(),
                    kek_salt: Vec::new(),
                    kek_params: params,
                    wrapped_user_key: Vec::new(),
                };
                let id = tx
                    .insert_user(&NewUser {
                        username: name,
                        role: Role::Service,
                        credentials: &credentials,
                        created_at: duration::now(),
                        must_change_password: false,
                    })
                    .map_err(|e| match e {
                        StoreError::Duplicate { .. } => {
                            Error::Conflict(format!("username '{name}' is taken"))
                        }
                        e => Error::from(e),
                    })?;
                let mut row = tx
                    .user_by_id(id)?
                    .ok_or_else(|| Error::Internal("a new account vanished".into()))?;
                row.role = Role::Service;
                row.owner_id = Some(owner_row.id);
                tx.update_user(&row)?;
                Ok((
                    owner_row.username.clone(),
                    json!({
                        "role": "service",
                        "user_id": id,
                        "owner": owner_row.username,
                    }),
                ))
            },
        )
    }

    /// Grants the service account `name` the owner's records matching `pattern` (a name
    /// or a glob), now and as they are written later. Returns how many records it can
    /// read now through this grant.
    /// Asks for the owner's password: a stolen session alone must not open a lasting
    /// way to the owner's records.
    pub fn service_grant(
        &mut self,
        session: &Session,
        name: &str,
        pattern: &str,
        password: &SecretString,
    ) -> Result<usize> {
        let target = format!("{name} {pattern}");
        let verified =
            self.confirm_password(session, password, AuditAction::ServiceGrant, &target)?;
        let glob = match Glob::new(pattern) {
            Ok(g) => g,
            Err(e) => {
                self.audit_failure(&session.actor(), AuditAction::ServiceGrant, &target, &e);
                return Err(e);
            }
        };
        self.authorized(
            session,
            Permission::Own,
            AuditAction::ServiceGrant,
            &target,
            |tx| {
                let glob = glob.clone();
                password_unchanged(tx, session, &verified)?;
                let (service, key) = owned_service(tx, session, name, AuditAction::ServiceGrant)?;
                tx.insert_service_grant(&ServiceGrant {
                    id: 0,
                    service_id: service.id,
                    owner_id: session.user_id.0,
                    pattern: pattern.to_string(),
                    created_at: duration::now(),
                    mac: Vec::new(),
                })
                .map_err(|e| match e {
                    StoreError::Duplicate { .. } => Error::Conflict(format!(
                        "'{pattern}' is already granted to '{}'",
                        service.username
                    )),
                    e => Error::from(e),
                })?;
                let globs = [glob];
                let mut ring = Keyring::new(session, None);
                let mut n = 0usize;
                let mut skipped = 0usize;
                let now = duration::now();
                for row in owner_records(tx, session)? {
                    // Deleted and expired records are not handed over (a restore hands a
                    // deleted one over then).
                    let readable =
                        row.deleted_at.is_none() && !crate::records::is_expired(&row, now);
                    if !readable || !covers(&globs, &row) {
                        continue;
                    }
                    // A record under a disabled or destroyed key cannot be opened, by its
                    // owner either: it is left out, and counted.
                    let Ok(dek) = ring.dek(tx, session, &row) else {
                        skipped += 1;
                        continue;
                    };
                    // The value is the owner's (it opens and matches its bound hash):
                    // only then is its data key handed on, bound to its ciphertext.
                    crate::records::open_value(&row, &dek)?;
                    tx.put_service_record_key(&ServiceRecordKey {
                        service_id: service.id,
                        record_id: row.id,
                        version: row.version,
                        wrapped_dek: aead::wrap_key(&key, &record_key_aad(service.id, &row), &dek),
                    })?;
                    n += 1;
                }
                Ok((
                    n,
                    json!({
                        "service": service.username,
                        "pattern": pattern,
                        "records": n,
                        "unreadable": skipped,
                    }),
                ))
            },
        )
    }

    /// Takes a grant back: records no other grant of the service covers lose their data
    /// keys for it (values it read before stay read: rotate them at their source). Returns
    /// how many records it can no longer read.
    pub fn service_ungrant(
        &mut self,
        session: &Session,
        name: &str,
        pattern: &str,
    ) -> Result<usize> {
        let target = format!("{name} {pattern}");
        self.authorized(
            session,
            Permission::Own,
            AuditAction::ServiceUngrant,
            &target,
            |tx| {
                let service = find_service(tx, name)?;
                if service.owner_id != Some(session.user_id.0) {
                    return Err(not_owner(AuditAction::ServiceUngrant, &service.username));
                }
                let grants = tx.service_grants(service.id)?;
                let Some(gone) = grants.iter().find(|g| g.pattern == pattern) else {
                    return Err(Error::NotFound(format!(
                        "'{pattern}' is not granted to '{}'",
                        service.username
                    )));
                };
                tx.delete_service_grant(gone.id)?;
                let remaining = grants
                    .iter()
                    .filter(|g| g.id != gone.id)
                    .map(|g| Glob::new(&g.pattern))
                    .collect::<Result<Vec<_>>>()?;
                let held: std::collections::HashSet<i64> =
                    tx.service_record_ids(service.id)?.into_iter().collect();
                let mut n = 0usize;
                for row in owner_records(tx, session)? {
                    if held.contains(&row.id) && !covers(&remaining, &row) {
                        n += tx.delete_service_record_keys(service.id, Some(row.id))? as usize;
                    }
                }
                Ok((
                    n,
                    json!({ "service": service.username, "pattern": pattern, "records": n }),
                ))
            },
        )
    }

    /// Issues a token of the service account `name` (its owner only, with the owner's
    /// password), valid for `ttl` seconds.
    pub fn service_token(
        &mut self,
        session: &Session,
        name: &str,
        ttl: Option<u64>,
        password: &SecretString,
    ) -> Result<IssuedToken> {
        let ttl = ttl.unwrap_or(DEFAULT_TOKEN_TTL);
        if ttl == 0 || ttl > MAX_TOKEN_TTL {
            return Err(Error::Usage(format!(
                "--ttl must be between 1s and {}",
                duration::format(MAX_TOKEN_TTL)
            )));
        }
        let verified = self.confirm_password(session, password, AuditAction::ServiceToken, name)?;
        self.authorized(
            session,
            Permission::Own,
            AuditAction::ServiceToken,
            name,
            |tx| {
                password_unchanged(tx, session, &verified)?;
                let (service, key) = owned_service(tx, session, name, AuditAction::ServiceToken)?;
                if service.status != UserStatus::Active {
                    return Err(Error::AccountDisabled);
                }
                let sid = crypto::random_id(16);
                let token_key = Key32::random();
                let now = duration::now();
                let expires_at = now + ttl as i64;
                tx.insert_session(&SessionRecord {
                    id: sid.clone(),
                    user_id: service.id,
                    created_at: now,
                    expires_at,
                    revoked_at: None,
                    wrapped_user_key: aead::wrap_key(
                        &token_key,
                        &session_aad(&sid, UserId(service.id)),
                        &key,
                    ),
                    mac: Vec::new(),
                })?;
                let issued = IssuedToken {
                    token: format_token(&sid, &token_key),
                    id: sid.clone(),
                    expires_at,
                };
                Ok((
                    issued,
                    json!({
                        "service": service.username,
                        "token_id": sid,
                        "expires_at": duration::rfc3339(expires_at),
                    }),
                ))
            },
        )
    }

    /// Revokes one token (by id, or a prefix of at least 8 characters of it) or every
    /// token of the service account `name` (its owner, or an administrator). Returns how
    /// many were revoked.
    pub fn service_revoke(
        &mut self,
        session: &Session,
        name: &str,
        token_id: Option<&str>,
    ) -> Result<u64> {
        self.authorized(
            session,
            Permission::Own,
            AuditAction::ServiceRevoke,
            name,
            |tx| {
                let service = find_service(tx, name)?;
                let admin = session.role == Role::Admin;
                if service.owner_id != Some(session.user_id.0) && !admin {
                    return Err(not_owner(AuditAction::ServiceRevoke, &service.username));
                }
                let now = duration::now();
                let n = match token_id {
                    None => tx.revoke_user_sessions(service.id, None, now)?,
                    Some(id) => {
                        let matching: Vec<SessionRecord> = tx
                            .user_sessions(service.id)?
                            .into_iter()
                            .filter(|s| id.len() >= 8 && s.id.starts_with(id))
                            .collect();
                        match matching.as_slice() {
                            [one] => u64::from(tx.revoke_session(&one.id, now)?),
                            [] => {
                                return Err(Error::NotFound(format!(
                                    "service account '{}' has no token '{id}'",
                                    service.username
                                )));
                            }
                            _ => {
                                return Err(Error::Usage(format!(
                                    "'{id}' names more than one token; give more of its id"
                                )));
                            }
                        }
                    }
                };
                Ok((
                    n,
                    json!({ "service": service.username, "revoked_tokens": n }),
                ))
            },
        )
    }

    /// The service accounts the session owns (every one, for an administrator).
    pub fn list_services(&mut self, session: &Session) -> Result<Vec<ServiceInfo>> {
        self.authorized(
            session,
            Permission::Own,
            AuditAction::ServiceList,
            "-",
            |tx| {
                let users = tx.list_users()?;
                let name_of = |id: Option<i64>| {
                    users
                        .iter()
                        .find(|u| Some(u.id) == id)
                        .map_or_else(|| "-".to_string(), |u| u.username.clone())
                };
                let mut out = Vec::new();
                for s in users.iter().filter(|u| u.role == Role::Service) {
                    let mine = s.owner_id == Some(session.user_id.0);
                    if !mine && session.role != Role::Admin {
                        continue;
                    }
                    let (grants, readable) = if mine {
                        let g = tx.service_grants(s.id)?;
                        let held = tx.service_record_ids(s.id)?.len();
                        (Some(g.into_iter().map(|g| g.pattern).collect()), Some(held))
                    } else {
                        (None, None)
                    };
                    let tokens = tx
                        .user_sessions(s.id)?
                        .into_iter()
                        .map(|t| TokenInfo {
                            id: t.id,
                            created_at: t.created_at,
                            expires_at: t.expires_at,
                            revoked_at: t.revoked_at,
                        })
                        .collect();
                    out.push(ServiceInfo {
                        name: s.username.clone(),
                        owner: name_of(s.owner_id),
                        status: s.status,
                        created_at: s.created_at,
                        grants,
                        readable,
                        tokens,
                    });
                }
                let n = out.len();
                Ok((out, json!({ "count": n })))
            },
        )
    }

    /// Validates a service token: the session row (exists, unrevoked, unexpired) of an
    /// active service account whose owner is active; the token key opens the service key.
    pub(crate) fn check_service_token(
        &mut self,
        parsed: ParsedToken,
    ) -> std::result::Result<Session, (Actor, Error)> {
        let unknown = Actor::anonymous("-");
        let mut tx = self.reader(None).map_err(|e| (unknown.clone(), e))?;
        let row = tx
            .session(&parsed.sid)
            .map_err(|e| (unknown.clone(), e.into()))?
            .ok_or_else(|| (unknown.clone(), Error::InvalidToken))?;
        let service = tx
            .user_by_id(row.user_id)
            .map_err(|e| (unknown.clone(), e.into()))?
            .filter(|u| u.role == Role::Service)
            .ok_or_else(|| (unknown.clone(), Error::InvalidToken))?;
        let actor = Actor::user(UserId(service.id), &service.username);
        let fail = |e: Error| (actor.clone(), e);
        let owner = service
            .owner_id
            .and_then(|o| tx.user_by_id(o).ok().flatten())
            .ok_or_else(|| fail(Error::InvalidToken))?;
        drop(tx);
        // The key first, while the row still holds its copy: whoever knows only a
        // token's id learns nothing. An ended token's copy is wiped, so there is nothing
        // to check it against: its state is all there is to say.
        let ended = if row.revoked_at.is_some() {
            Some(Error::ServiceTokenEnded("has been revoked".into()))
        } else if row.expires_at <= duration::now() {
            Some(Error::ServiceTokenEnded(format!(
                "expired at {}",
                duration::rfc3339(row.expires_at)
            )))
        } else {
            None
        };
        let key = match (ended, row.wrapped_user_key.is_empty()) {
            (Some(e), true) => return Err(fail(e)),
            (ended, _) => {
                let key = aead::unwrap_key(
                    &parsed.key,
                    &session_aad(&row.id, UserId(service.id)),
                    &row.wrapped_user_key,
                )
                .map_err(|_| fail(Error::InvalidToken))?;
                if let Some(e) = ended {
                    return Err(fail(e));
                }
                key
            }
        };
        if service.status != UserStatus::Active || owner.status != UserStatus::Active {
            return Err(fail(Error::AccountDisabled));
        }
        let service_id = UserId(service.id);
        let owner_id = UserId(owner.id);
        Ok(Session {
            user_id: service_id,
            username: service.username,
            role: Role::Service,
            sid: row.id,
            expires_at: row.expires_at,
            integrity: OwnerKey::derive(service_id, &key).reading_records_of(owner_id),
            user_key: key,
            session_key: parsed.key,
            must_change_password: false,
            service_owner: Some(owner_id),
        })
    }
}

/// Every record of the session's user, with its wrapped data key.
fn owner_records(tx: &mut dyn Tx, session: &Session) -> Result<Vec<RecordRow>> {
    Ok(tx.list_records(
        session.user_id.0,
        &RecordFilter {
            with_values: true,
            now: duration::now(),
            ..RecordFilter::default()
        },
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_reads_back_and_other_text_is_not_one() {
        let key = Key32::random();
        let sid = crypto::random_id(16);
        let token = format_token(&sid, &key);
        let parsed = parse_token(&token).expect("a token");
        assert_eq!(parsed.sid, sid);
        assert_eq!(parsed.key.expose(), key.expose());
        for not in [
            "eyJhbGciOiJIUzI1NiJ9.e30.x",
            "zst_",
            "zst_abc.def",
            &format!("zst_{sid}"),
            &format!("zst_{sid}.!!"),
            &format!("zst_{sid}.{}", URL_SAFE_NO_PAD.encode([1u8; 16])),
        ] {
            assert!(parse_token(&SecretString::from(not)).is_none(), "{not}");
        }
    }

    fn row(value_hash: Option<Vec<u8>>) -> RecordRow {
        RecordRow {
            id: 5,
            token: "zt_x".into(),
            owner_id: 1,
            name: Some("prod/db".into()),
            key_id: Some(1),
            key_version: Some(1),
            identity_id: None,
            wrapped_dek: Vec::new(),
            ciphertext: vec![7; 40],
            created_at: 0,
            updated_at: 0,
            expires_at: None,
            deleted_at: None,
            version: 3,
            value_hash,
            share_digest: None,
            mac: Vec::new(),
        }
    }

    /// A data key wrapped for a service before value hashes existed still opens for a row
    /// that has none (written before them, never shared since), and only for such a row.
    #[test]
    fn data_keys_wrapped_before_value_hashes_open_only_for_rows_without_one() {
        let (service_key, dek) = (Key32::random(), Key32::random());
        let old = row(None);
        let legacy = aead::wrap_key(&service_key, &legacy_record_key_aad(9, &old), &dek);
        let opened = open_granted(&service_key, 9, &old, &legacy).expect("opens");
        assert_eq!(opened.expose(), dek.expose());
        let hashed = row(Some(crate::records::value_hash(&old.ciphertext)));
        assert!(open_granted(&service_key, 9, &hashed, &legacy).is_none());
        assert!(open_granted(&service_key, 8, &old, &legacy).is_none());
        let current = aead::wrap_key(&service_key, &record_key_aad(9, &hashed), &dek);
        assert_eq!(
            open_granted(&service_key, 9, &hashed, &current)
                .expect("opens")
                .expose(),
            dek.expose()
        );
        let mut changed = hashed.clone();
        changed.ciphertext[0] ^= 1;
        assert!(open_granted(&service_key, 9, &changed, &current).is_none());
    }
}
