//! Accounts and sessions: sign-up, login, logout, whoami and password change.
//!
//! Every login runs exactly two argon2id computations (verify the login hash, derive the
//! key-encryption key) whether the user exists, the password is wrong or it is right, so
//! neither the message nor the time tells an unknown user from a wrong password.

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::authz::Permission;
use crate::chain::Actor;
use crate::config::SignupPolicy;
use crate::crypto::kdf::{self, KdfParams, SALT_LEN};
use crate::crypto::{self, Key32, aead, random_bytes};
use crate::duration;
use crate::error::{Error, Result};
use crate::events::AuditAction;
use crate::ids::UserId;
use crate::model::{Credentials, Role, SessionRecord, UserRecord, UserStatus};
use crate::recovery::{self, RecoveryCode};
use crate::session::{self, NewToken};
use crate::storage::{NewUser, StoreError, Tx};
use crate::vault::{Session, Vault, session_aad, user_key_aad};

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password accepted, in bytes.
pub const MAX_PASSWORD_BYTES: usize = 4096;

/// Whether `name` is 1–64 characters from `[A-Za-z0-9._-]` (users, keys, records).
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Checks a user name: 1–64 characters from `[A-Za-z0-9._-]`.
pub fn validate_username(name: &str) -> Result<()> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "invalid username '{}': use 1-64 characters from A-Z a-z 0-9 . _ -",
            crate::text::printable(name, 64)
        )))
    }
}

/// Checks a new password: at least 8 characters, at most 4096 bytes.
pub fn validate_new_password(password: &SecretString) -> Result<()> {
    let p = password.expose_secret();
    if p.chars().count() < MIN_PASSWORD_CHARS {
        return Err(Error::Usage(format!(
            "password is too short: use at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if p.len() > MAX_PASSWORD_BYTES {
        return Err(Error::Usage(format!(
            "password is too long: use at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Ok(())
}

/// What a login or sign-up produced.
pub struct LoginOutcome {
    /// The signed session token.
    pub token: SecretString,
    /// Who is now logged in.
    pub info: SessionInfo,
    /// A new account's recovery key, to show once.
    pub recovery_key: Option<SecretString>,
}

/// What a password change or reset did.
pub struct PasswordChange {
    /// The account's name as stored (a reset may name it in another case).
    pub username: String,
    /// Sessions ended (a change keeps the one that made it; a reset ends them all).
    pub revoked_sessions: u64,
    /// A new recovery key, to show once: after a reset (the used one no longer works) and
    /// when an account made by an administrator chooses its first password.
    pub recovery_key: Option<SecretString>,
}

/// Who is logged in, as shown by `whoami`, `login` and `signup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// User name.
    pub username: String,
    /// Current role.
    pub role: Role,
    /// User id.
    pub user_id: i64,
    /// Unix seconds.
    pub session_expires_at: i64,
    /// The account must change its password before anything else.
    pub must_change_password: bool,
    /// When the account's recovery key was made (Unix seconds), if it has one.
    pub recovery_key_created_at: Option<i64>,
}

/// A user as shown to administrators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSummary {
    /// User name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// Active or disabled.
    pub status: UserStatus,
    /// Removed for good (`user remove`; disabled too).
    pub removed: bool,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub last_login_at: Option<i64>,
}

impl UserSummary {
    /// The status as shown: active, disabled or removed.
    pub fn state(&self) -> &'static str {
        if self.removed {
            "removed"
        } else {
            self.status.as_str()
        }
    }
}

impl From<&UserRecord> for UserSummary {
    fn from(u: &UserRecord) -> Self {
        UserSummary {
            username: u.username.clone(),
            role: u.role,
            status: u.status,
            removed: crate::sharing::is_removed(u),
            created_at: u.created_at,
            last_login_at: u.last_login_at,
        }
    }
}

/// Hashes a password for login and derives a fresh KEK (two argon2id runs) for `user_key`.
fn new_credentials(
    params: KdfParams,
    password: &SecretString,
    user_id: UserId,
    user_key: &Key32,
) -> Result<Credentials> {
    let (password_hash, kek_salt, kek) = hash_and_kek(params, password)?;
    Ok(Credentials {
        password_hash,
        kek_salt,
        kek_params: params,
        wrapped_user_key: aead::wrap_key(&kek, &user_key_aad(user_id), user_key),
    })
}

fn hash_and_kek(params: KdfParams, password: &SecretString) -> Result<(String, Vec<u8>, Key32)> {
    let pw = password.expose_secret().as_bytes();
    let hash = kdf::hash_password(params, pw)
        .map_err(|e| Error::Internal(format!("password hashing failed: {e}")))?;
    let salt: [u8; SALT_LEN] = random_bytes();
    let kek = kdf::derive_key(params, pw, &salt)
        .map_err(|e| Error::Internal(format!("key derivation failed: {e}")))?;
    Ok((hash, salt.to_vec(), kek))
}

/// The role a sign-up gets: `admin` on an empty database, else per `ZENCRYPT_SIGNUP`.
fn signup_role(tx: &mut dyn Tx, policy: SignupPolicy) -> Result<Role> {
    if tx.user_count()? == 0 {
        return Ok(Role::Admin);
    }
    match policy {
        SignupPolicy::Open => Ok(Role::User),
        SignupPolicy::AdminOnly => Err(Error::SignupRestricted(
            "restricted to administrators (ZENCRYPT_SIGNUP=admin-only)".into(),
        )),
        SignupPolicy::Closed => Err(Error::SignupRestricted(
            "closed (ZENCRYPT_SIGNUP=closed)".into(),
        )),
    }
}

fn taken(username: &str) -> Error {
    Error::Conflict(format!("username '{username}' is taken"))
}

fn no_such_user(username: &str) -> Error {
    Error::NotFound(format!("user '{username}' not found"))
}

/// Inserts a user with fresh credentials; the user key (and its recovery wrapping) is
/// wrapped once the id is known. Without a user key (an account made by an administrator)
/// the account gets one, and a recovery key, when its owner sets their own password.
/// Returns the new id and the recovery code to show.
fn insert_user(
    tx: &mut dyn Tx,
    username: &str,
    role: Role,
    params: KdfParams,
    hashed: &(String, Vec<u8>, Key32),
    user_key: Option<&Key32>,
) -> Result<(UserId, Option<RecoveryCode>)> {
    // Names are unique ignoring case: the lookup ignores case.
    if tx.user_by_name(username)?.is_some() {
        return Err(taken(username));
    }
    let (password_hash, kek_salt, kek) = hashed;
    let mut credentials = Credentials {
        password_hash: password_hash.clone(),
        kek_salt: kek_salt.clone(),
        kek_params: params,
        wrapped_user_key: Vec::new(),
    };
    let id = UserId(
        tx.insert_user(&NewUser {
            username,
            role,
            credentials: &credentials,
            created_at: duration::now(),
            must_change_password: user_key.is_none(),
        })
        .map_err(|e| match e {
            StoreError::Duplicate { .. } => taken(username),
            e => Error::from(e),
        })?,
    );
    let mut code = None;
    if let Some(user_key) = user_key {
        credentials.wrapped_user_key = aead::wrap_key(kek, &user_key_aad(id), user_key);
        let mut user = tx.user_by_id(id.0)?.ok_or_else(|| no_such_user(username))?;
        user.credentials = credentials;
        let (c, wrap) = recovery::new_wrap(id, user_key, duration::now());
        user.recovery = Some(wrap);
        code = Some(c);
        tx.update_user(&user)?;
        let user = tx.user_by_id(id.0)?.ok_or_else(|| no_such_user(username))?;
        crate::sharing::ensure_keypair(tx, user, user_key)?;
    }
    Ok((id, code))
}

/// A session row and the secrets the token will carry.
struct NewSession {
    sid: String,
    session_key: Key32,
    iat: i64,
    expires_at: i64,
}

fn insert_session(
    tx: &mut dyn Tx,
    user_id: UserId,
    user_key: &Key32,
    ttl: u64,
) -> Result<NewSession> {
    let sid = crypto::random_id(16);
    let session_key = Key32::random();
    let iat = duration::now();
    let expires_at = iat + ttl as i64;
    tx.insert_session(&SessionRecord {
        id: sid.clone(),
        user_id: user_id.0,
        created_at: iat,
        expires_at,
        revoked_at: None,
        wrapped_user_key: aead::wrap_key(&session_key, &session_aad(&sid, user_id), user_key),
        mac: Vec::new(),
    })?;
    tx.set_last_login(user_id.0, iat)?;
    // Expired sessions keep their rows (for the record) but lose their key copies.
    tx.shred_expired_sessions(iat)?;
    Ok(NewSession {
        sid,
        session_key,
        iat,
        expires_at,
    })
}

impl Vault {
    fn finish_login(
        &self,
        user_id: UserId,
        username: &str,
        role: Role,
        s: &NewSession,
        must_change_password: bool,
        recovery: (Option<i64>, Option<RecoveryCode>),
    ) -> Result<LoginOutcome> {
        let token = session::issue(
            &self.jwt,
            &NewToken {
                user_id,
                name: username,
                role: role.as_str(),
                sid: &s.sid,
                session_key: &s.session_key,
                iat: s.iat,
                exp: s.expires_at,
            },
        )?;
        Ok(LoginOutcome {
            token,
            info: SessionInfo {
                username: username.to_string(),
                role,
                user_id: user_id.0,
                session_expires_at: s.expires_at,
                must_change_password,
                recovery_key_created_at: recovery.0,
            },
            recovery_key: recovery.1.map(|c| c.display()),
        })
    }

    /// Refuses (and audits) a sign-up under a name that is not valid, before a password is
    /// asked for. The name itself is not recorded: it may be a password typed in the
    /// wrong field.
    pub fn check_new_username(&mut self, username: &str) -> Result<()> {
        validate_username(username).inspect_err(|e| {
            let invalid = "(invalid)";
            self.audit_failure(
                &Actor::anonymous(invalid),
                AuditAction::AuthSignup,
                invalid,
                e,
            );
        })
    }

    /// Creates an account (the first on an empty database is `admin`, later ones `user`,
    /// subject to `ZENCRYPT_SIGNUP`) and logs it in.
    pub fn signup(
        &mut self,
        username: &str,
        password: &SecretString,
        ttl: Option<u64>,
    ) -> Result<LoginOutcome> {
        self.check_new_username(username)?;
        let actor = Actor::anonymous(username);
        let policy = self.policy.signup;
        let checked = (|| {
            validate_new_password(password)?;
            // Refuse early, before the expensive KDF; everything is re-checked in the
            // write transaction.
            let mut tx = self.store.read()?;
            signup_role(tx.as_mut(), policy)?;
            if tx.user_by_name(username)?.is_some() {
                return Err(taken(username));
            }
            Ok(())
        })();
        if let Err(e) = checked {
            self.audit_failure(&actor, AuditAction::AuthSignup, username, &e);
            return Err(e);
        }
        let params = self.policy.kdf;
        let hashed = hash_and_kek(params, password)?;
        let user_key = Key32::random();
        let ttl = ttl.unwrap_or(self.policy.session_ttl);
        let (id, role, s, code) =
            self.audited(&actor, AuditAction::AuthSignup, username, |tx| {
                let role = signup_role(tx, policy)?;
                let (id, code) = insert_user(tx, username, role, params, &hashed, Some(&user_key))?;
                let s = insert_session(tx, id, &user_key, ttl)?;
                let detail = json!({
                    "role": role.as_str(),
                    "user_id": id.0,
                    "recovery_key": code.is_some(),
                });
                Ok(((id, role, s, code), detail))
            })?;
        let made = code.as_ref().map(|_| s.iat);
        self.finish_login(id, username, role, &s, false, (made, code))
    }

    /// Logs in: checks the password (one generic failure for unknown users and wrong
    /// passwords), unwraps the user key and opens a session.
    pub fn login(
        &mut self,
        username: &str,
        password: &SecretString,
        ttl: Option<u64>,
    ) -> Result<LoginOutcome> {
        let params = self.policy.kdf;
        let user = if validate_username(username).is_ok() {
            let mut tx = self.reader(None)?;
            tx.user_by_name(username)?
        } else {
            None
        };
        let pw = password.expose_secret().as_bytes();
        // Two argon2id runs on every path (a service account, which has no password,
        // takes the unknown user's).
        let (verified, kek) = match user.as_ref().filter(|u| u.role != Role::Service) {
            Some(u) => {
                let c = &u.credentials;
                let ok = kdf::verify_password(&c.password_hash, pw).unwrap_or(false);
                (ok, kdf::derive_key(c.kek_params, pw, &c.kek_salt).ok())
            }
            None => {
                let _ = kdf::verify_password(&kdf::dummy_hash(params), pw);
                let salt: [u8; SALT_LEN] = random_bytes();
                let _ = kdf::derive_key(params, pw, &salt);
                (false, None)
            }
        };
        let (user, kek) = match (user, kek) {
            // A service account has no password and never logs in.
            (Some(u), Some(kek)) if verified && u.role != Role::Service => (u, kek),
            (user, _) => {
                let actor = match &user {
                    Some(u) => Actor::user(UserId(u.id), &u.username),
                    None => self.unknown_actor(username),
                };
                self.audit_failure(
                    &actor,
                    AuditAction::AuthLogin,
                    &actor.name.clone(),
                    &Error::InvalidCredentials,
                );
                return Err(Error::InvalidCredentials);
            }
        };
        let user_id = UserId(user.id);
        let actor = Actor::user(user_id, &user.username);
        if user.status != UserStatus::Active {
            self.audit_failure(
                &actor,
                AuditAction::AuthLogin,
                username,
                &Error::AccountDisabled,
            );
            return Err(Error::AccountDisabled);
        }
        // An account made by an administrator has no user key until its owner sets their
        // own password: its session holds a throwaway key and may do nothing but that.
        let user_key = if user.must_change_password {
            Ok(Key32::random())
        } else {
            aead::unwrap_key(
                &kek,
                &user_key_aad(user_id),
                &user.credentials.wrapped_user_key,
            )
        }
        .map_err(|_| {
            Error::Integrity(format!(
                "the key material of user '{}' is damaged and cannot be unwrapped",
                user.username
            ))
        });
        let user_key = match user_key {
            Ok(k) => k,
            Err(e) => {
                self.audit_failure(&actor, AuditAction::AuthLogin, username, &e);
                return Err(e);
            }
        };
        let ttl = ttl.unwrap_or(self.policy.session_ttl);
        let s = self.audited(&actor, AuditAction::AuthLogin, username, |tx| {
            let s = insert_session(tx, user_id, &user_key, ttl)?;
            // Accounts from before keypairs get theirs at their first login.
            let mut keypair_made = false;
            if !user.must_change_password {
                let row = tx
                    .user_by_id(user_id.0)?
                    .ok_or_else(|| no_such_user(username))?;
                keypair_made = crate::sharing::ensure_keypair(tx, row, &user_key)?.1;
            }
            let mut detail = json!({ "ttl": duration::format(ttl) });
            if keypair_made {
                detail["keypair_made"] = json!(true);
            }
            Ok((s, detail))
        })?;
        self.finish_login(
            user_id,
            &user.username,
            user.role,
            &s,
            user.must_change_password,
            (user.recovery.as_ref().map(|r| r.created_at), None),
        )
    }

    /// Ends this session, or with `all` every session of the user. Returns how many
    /// sessions were revoked.
    pub fn logout(&mut self, session: &Session, all: bool) -> Result<u64> {
        let (uid, sid) = (session.user_id, session.sid.clone());
        // A service token is read-only: its owner revokes tokens (`service revoke`).
        self.authorized(
            session,
            Permission::Own,
            AuditAction::AuthLogout,
            &session.username,
            |tx| {
                let now = duration::now();
                let n = if all {
                    tx.revoke_user_sessions(uid.0, None, now)?
                } else {
                    u64::from(tx.revoke_session(&sid, now)?)
                };
                Ok((n, json!({ "all": all, "revoked_sessions": n })))
            },
        )
    }

    /// Who the session belongs to, with the role as it is now.
    pub fn whoami(&mut self, session: &Session) -> Result<SessionInfo> {
        let mut info = SessionInfo {
            username: session.username.clone(),
            role: session.role,
            user_id: session.user_id.0,
            session_expires_at: session.expires_at,
            must_change_password: session.must_change_password,
            recovery_key_created_at: None,
        };
        self.authorized(
            session,
            Permission::own_for(session.role),
            AuditAction::AuthWhoami,
            &session.username,
            |tx| {
                let user = tx
                    .user_by_id(session.user_id.0)?
                    .ok_or_else(|| no_such_user(&session.username))?;
                info.role = user.role;
                info.recovery_key_created_at = user.recovery.as_ref().map(|r| r.created_at);
                Ok((info.clone(), json!({})))
            },
        )
    }

    /// Changes the password: checks the current one, rewraps the user key under a new
    /// KEK (no data is re-encrypted) and revokes the user's other sessions. An account
    /// made by an administrator gets its first user key and its recovery key here.
    pub fn change_password(
        &mut self,
        session: &mut Session,
        current: &SecretString,
        new: &SecretString,
    ) -> Result<PasswordChange> {
        let actor = session.actor();
        let target = session.username.clone();
        let prepared = (|| {
            validate_new_password(new)?;
            let user = {
                let mut tx = self.reader(None)?;
                tx.user_by_id(session.user_id.0)?
                    .ok_or_else(|| no_such_user(&session.username))?
            };
            let ok = kdf::verify_password(
                &user.credentials.password_hash,
                current.expose_secret().as_bytes(),
            )
            .unwrap_or(false);
            if !ok {
                return Err(Error::InvalidPassword);
            }
            // The user key stays (O(1): nothing else is rewrapped), except for an account
            // made by an administrator, which gets its first user key now, under a
            // password only its owner knows.
            let user_key = if user.must_change_password {
                Key32::random()
            } else {
                Key32::from_bytes(*session.user_key.expose())
            };
            let credentials = new_credentials(self.policy.kdf, new, session.user_id, &user_key)?;
            Ok((user.credentials.password_hash, user_key, credentials))
        })();
        let (verified_hash, user_key, credentials) = match prepared {
            Ok(c) => c,
            Err(e) => {
                self.audit_failure(&actor, AuditAction::AuthPasswd, &target, &e);
                return Err(e);
            }
        };
        let s = &*session;
        let (n, code) = self.authorized(s, Permission::Own, AuditAction::AuthPasswd, &target, |tx| {
            let mut user = tx
                .user_by_id(s.user_id.0)?
                .ok_or_else(|| no_such_user(&s.username))?;
            // Another passwd of this account committed since the current password was
            // checked: that one stands, and this one changes nothing.
            if user.credentials.password_hash != verified_hash {
                return Err(Error::Conflict(
                    "the password was changed by another command meanwhile; nothing was changed (log in again with the password that was set)"
                        .into(),
                ));
            }
            let first = user.must_change_password;
            user.credentials = credentials.clone();
            user.must_change_password = false;
            let code = first.then(|| {
                let (code, wrap) = recovery::new_wrap(s.user_id, &user_key, duration::now());
                user.recovery = Some(wrap);
                code
            });
            tx.update_user(&user)?;
            if first {
                crate::sharing::ensure_keypair(tx, user, &user_key)?;
            }
            tx.set_session_user_key(
                &s.sid,
                &aead::wrap_key(&s.session_key, &session_aad(&s.sid, s.user_id), &user_key),
            )?;
            let n = tx.revoke_user_sessions(s.user_id.0, Some(&s.sid), duration::now())?;
            Ok((
                (n, code),
                json!({ "revoked_sessions": n, "first_password": first }),
            ))
        })?;
        session.integrity = crate::integrity::OwnerKey::derive(session.user_id, &user_key);
        session.user_key = user_key;
        session.must_change_password = false;
        Ok(PasswordChange {
            username: session.username.clone(),
            revoked_sessions: n,
            recovery_key: code.map(|c| c.display()),
        })
    }

    /// Replaces the account's recovery key (the old one stops working at once) after
    /// checking the password: a stolen session alone cannot mint a way into the account.
    /// Returns the new key, to show once.
    pub fn rotate_recovery_key(
        &mut self,
        session: &Session,
        password: &SecretString,
    ) -> Result<SecretString> {
        let target = session.username.clone();
        let verified_hash =
            self.confirm_password(session, password, AuditAction::AuthRecoveryKey, &target)?;
        let code = self.authorized(
            session,
            Permission::Own,
            AuditAction::AuthRecoveryKey,
            &target,
            |tx| {
                let mut user = tx
                    .user_by_id(session.user_id.0)?
                    .ok_or_else(|| no_such_user(&session.username))?;
                if user.credentials.password_hash != verified_hash {
                    return Err(Error::Conflict(
                        "the password was changed by another command meanwhile; nothing was changed"
                            .into(),
                    ));
                }
                let replaced = user.recovery.is_some();
                let (code, wrap) =
                    recovery::new_wrap(session.user_id, &session.user_key, duration::now());
                user.recovery = Some(wrap);
                tx.update_user(&user)?;
                Ok((code, json!({ "replaced": replaced })))
            },
        )?;
        Ok(code.display())
    }

    /// Checks the session user's password before an action a stolen session alone must
    /// not do (the permission first, so a denial is not a password check); a wrong one is
    /// audited as `action`. Returns the verified hash, for the transaction to compare
    /// against (a password changed meanwhile refuses the action).
    pub(crate) fn confirm_password(
        &mut self,
        session: &Session,
        password: &SecretString,
        action: AuditAction,
        target: &str,
    ) -> Result<String> {
        self.require(session, Permission::Own, action, target)?;
        let checked = (|| {
            let user = {
                let mut tx = self.reader(None)?;
                tx.user_by_id(session.user_id.0)?
                    .ok_or_else(|| no_such_user(&session.username))?
            };
            let ok = kdf::verify_password(
                &user.credentials.password_hash,
                password.expose_secret().as_bytes(),
            )
            .unwrap_or(false);
            if ok {
                Ok(user.credentials.password_hash)
            } else {
                Err(Error::InvalidPassword)
            }
        })();
        checked.inspect_err(|e| self.audit_failure(&session.actor(), action, target, e))
    }

    /// Sets a new password with the recovery key instead of the old password: unwraps the
    /// user key with the code, wraps it under the new password, replaces the recovery key
    /// (the used one stops working) and ends every session of the account. Fails the same
    /// way whether the user is unknown, has no recovery key or the code is wrong.
    pub fn recover(
        &mut self,
        username: &str,
        code: &SecretString,
        new_password: &SecretString,
    ) -> Result<PasswordChange> {
        let params = self.policy.kdf;
        let user = if validate_username(username).is_ok() {
            let mut tx = self.reader(None)?;
            tx.user_by_name(username)?
        } else {
            None
        };
        let actor = match &user {
            Some(u) => Actor::user(UserId(u.id), &u.username),
            None => self.unknown_actor(username),
        };
        let checked = RecoveryCode::parse(code).and_then(|code| {
            validate_new_password(new_password)?;
            Ok(code)
        });
        let code = match checked {
            Ok(c) => c,
            Err(e) => {
                self.audit_failure(&actor, AuditAction::AuthRecover, &actor.name.clone(), &e);
                return Err(e);
            }
        };
        // The two argon2id runs of the new credentials happen on every path, so the time
        // does not tell whether the account exists.
        let hashed = hash_and_kek(params, new_password)?;
        let opened = user.as_ref().and_then(|u| {
            let wrap = u.recovery.as_ref()?;
            let key = recovery::unwrap(UserId(u.id), wrap, &code)?;
            Some((u, wrap.clone(), key))
        });
        let Some((user, used, user_key)) = opened else {
            self.audit_failure(
                &actor,
                AuditAction::AuthRecover,
                &actor.name.clone(),
                &Error::InvalidRecoveryKey,
            );
            return Err(Error::InvalidRecoveryKey);
        };
        let user_id = UserId(user.id);
        if user.status != UserStatus::Active {
            self.audit_failure(
                &actor,
                AuditAction::AuthRecover,
                &user.username,
                &Error::AccountDisabled,
            );
            return Err(Error::AccountDisabled);
        }
        let (password_hash, kek_salt, kek) = hashed;
        let credentials = Credentials {
            password_hash,
            kek_salt,
            kek_params: params,
            wrapped_user_key: aead::wrap_key(&kek, &user_key_aad(user_id), &user_key),
        };
        let target = user.username.clone();
        let (n, new_code) = self.audited(&actor, AuditAction::AuthRecover, &target, |tx| {
            let mut row = tx
                .user_by_id(user_id.0)?
                .ok_or_else(|| no_such_user(&target))?;
            // Used or replaced by another command meanwhile: this code no longer counts.
            if row.recovery.as_ref() != Some(&used) {
                return Err(Error::InvalidRecoveryKey);
            }
            let (new_code, wrap) = recovery::new_wrap(user_id, &user_key, duration::now());
            row.credentials = credentials.clone();
            row.recovery = Some(wrap);
            tx.update_user(&row)?;
            let now = duration::now();
            let n = tx.revoke_user_sessions(user_id.0, None, now)?;
            // Whoever took the account may have issued tokens of its service accounts.
            let mut tokens = 0;
            for service in crate::services::services_of(tx, user_id.0)? {
                tokens += tx.revoke_user_sessions(service, None, now)?;
            }
            Ok((
                (n, new_code),
                json!({ "revoked_sessions": n, "revoked_service_tokens": tokens }),
            ))
        })?;
        Ok(PasswordChange {
            username: target,
            revoked_sessions: n,
            recovery_key: Some(new_code.display()),
        })
    }

    /// The audit actor of a failed login or recovery under a name no account has.
    fn unknown_actor(&self, username: &str) -> Actor {
        if validate_username(username).is_err() {
            // Not a possible user name: often a password typed into the wrong field, so
            // it is not recorded.
            return Actor::anonymous("(invalid)");
        }
        // A name no account has may be a password typed into the wrong field: recorded
        // as a keyed digest, which still tells repeated tries apart.
        Actor::anonymous(&format!(
            "(unknown {})",
            &crypto::hex(
                &self
                    .audit_key
                    .compute(&[b"zencrypt unknown user", username.as_bytes()])
            )[..12]
        ))
    }

    /// All users (admins only).
    pub fn list_users(&mut self, session: &Session) -> Result<Vec<UserSummary>> {
        self.require(session, Permission::Administer, AuditAction::UserList, "-")?;
        self.authorized(
            session,
            Permission::Administer,
            AuditAction::UserList,
            "-",
            |tx| {
                let users: Vec<UserSummary> =
                    tx.list_users()?.iter().map(UserSummary::from).collect();
                let n = users.len();
                Ok((users, json!({ "count": n })))
            },
        )
    }

    /// Creates an account with a given role (admins only); for `admin-only` set-ups.
    pub fn add_user(
        &mut self,
        session: &Session,
        username: &str,
        role: Role,
        password: &SecretString,
    ) -> Result<()> {
        self.require(
            session,
            Permission::Administer,
            AuditAction::UserAdd,
            username,
        )?;
        let actor = session.actor();
        let checked = validate_username(username)
            .and_then(|()| validate_new_password(password))
            .and_then(|()| {
                if role == Role::Service {
                    Err(Error::Usage(
                        "a service account is made with `user add --service NAME`".into(),
                    ))
                } else {
                    Ok(())
                }
            });
        if let Err(e) = checked {
            self.audit_failure(&actor, AuditAction::UserAdd, username, &e);
            return Err(e);
        }
        let params = self.policy.kdf;
        let hashed = hash_and_kek(params, password)?;
        self.authorized(
            session,
            Permission::Administer,
            AuditAction::UserAdd,
            username,
            |tx| {
                let (id, _) = insert_user(tx, username, role, params, &hashed, None)?;
                Ok(((), json!({ "role": role.as_str(), "user_id": id.0 })))
            },
        )
    }

    /// Changes a user's role (admins only). The last active admin cannot be demoted.
    pub fn set_role(&mut self, session: &Session, username: &str, role: Role) -> Result<Role> {
        self.require(
            session,
            Permission::Administer,
            AuditAction::UserRole,
            username,
        )?;
        self.authorized(
            session,
            Permission::Administer,
            AuditAction::UserRole,
            username,
            |tx| {
                let user = tx
                    .user_by_name(username)?
                    .ok_or_else(|| no_such_user(username))?;
                if user.role == Role::Service || role == Role::Service {
                    return Err(Error::Usage(format!(
                        "'{username}' {}: service accounts and people do not change into each other",
                        if user.role == Role::Service { "is a service account" } else { "is a person" }
                    )));
                }
                if user.role == Role::Admin
                    && role != Role::Admin
                    && user.status == UserStatus::Active
                {
                    ensure_not_last_admin(tx, username, "demote")?;
                }
                let from = user.role;
                let mut user = user;
                user.role = role;
                tx.update_user(&user)?;
                Ok((from, json!({ "from": from.as_str(), "to": role.as_str() })))
            },
        )
    }

    /// Disables a user and ends their sessions at once, or enables them again (admins
    /// only). The last active admin cannot be disabled. Returns sessions revoked.
    pub fn set_status(
        &mut self,
        session: &Session,
        username: &str,
        status: UserStatus,
    ) -> Result<u64> {
        let action = match status {
            UserStatus::Active => AuditAction::UserEnable,
            UserStatus::Disabled => AuditAction::UserDisable,
        };
        self.require(session, Permission::Administer, action, username)?;
        self.authorized(session, Permission::Administer, action, username, |tx| {
            let user = tx
                .user_by_name(username)?
                .ok_or_else(|| no_such_user(username))?;
            if status == UserStatus::Active && crate::sharing::is_removed(&user) {
                return Err(Error::Conflict(format!(
                    "'{}' was removed: their data was crypto-shredded and the account cannot \
                     come back (`zencrypt user add` makes a new one)",
                    user.username
                )));
            }
            let mut revoked = 0;
            if status == UserStatus::Disabled {
                if user.role == Role::Admin && user.status == UserStatus::Active {
                    ensure_not_last_admin(tx, username, "disable")?;
                }
                revoked = tx.revoke_user_sessions(user.id, None, duration::now())?;
            }
            let from = user.status;
            let mut user = user;
            user.status = status;
            tx.update_user(&user)?;
            Ok((
                revoked,
                json!({ "from": from.as_str(), "revoked_sessions": revoked }),
            ))
        })
    }

    /// Ends every session of a user (admins only). Returns how many were revoked.
    pub fn revoke_sessions(&mut self, session: &Session, username: &str) -> Result<u64> {
        self.require(
            session,
            Permission::Administer,
            AuditAction::UserRevoke,
            username,
        )?;
        self.authorized(
            session,
            Permission::Administer,
            AuditAction::UserRevoke,
            username,
            |tx| {
                let user = tx
                    .user_by_name(username)?
                    .ok_or_else(|| no_such_user(username))?;
                let n = tx.revoke_user_sessions(user.id, None, duration::now())?;
                Ok((n, json!({ "revoked_sessions": n })))
            },
        )
    }
}

pub(crate) fn ensure_not_last_admin(tx: &mut dyn Tx, username: &str, verb: &str) -> Result<()> {
    if tx.active_admin_count()? <= 1 {
        return Err(Error::Conflict(format!(
            "cannot {verb} '{username}': it is the last active admin"
        )));
    }
    Ok(())
}
