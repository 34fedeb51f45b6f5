//! Plain domain types shared by the domain modules and the storage interface.

use std::fmt;
use std::str::FromStr;

use crate::crypto::kdf::KdfParams;
use crate::error::Error;

/// A user's role (DESIGN §2). Ordered: each role can do everything the previous can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Own keys, data and audit records.
    User,
    /// Also everyone's usage and audit records, and `audit verify`.
    Auditor,
    /// Also user administration.
    Admin,
}

impl Role {
    /// The lowercase name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }

    /// All roles, least privileged first.
    pub const ALL: [Role; 3] = [Role::User, Role::Auditor, Role::Admin];
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "user" => Ok(Role::User),
            "auditor" => Ok(Role::Auditor),
            "admin" => Ok(Role::Admin),
            _ => Err(Error::Usage(format!(
                "unknown role '{s}' (expected user, auditor or admin)"
            ))),
        }
    }
}

/// Whether an account may log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    /// May log in and use sessions.
    Active,
    /// Refused at login and on every command.
    Disabled,
}

impl UserStatus {
    /// The lowercase name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Disabled => "disabled",
        }
    }

    /// Parses a stored status.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(UserStatus::Active),
            "disabled" => Some(UserStatus::Disabled),
            _ => None,
        }
    }
}

/// The result of an audited action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The action completed.
    Ok,
    /// The role did not allow it.
    Denied,
    /// It was attempted and failed.
    Failed,
}

impl Outcome {
    /// The lowercase name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }
}

impl FromStr for Outcome {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "ok" => Ok(Outcome::Ok),
            "denied" => Ok(Outcome::Denied),
            "failed" => Ok(Outcome::Failed),
            _ => Err(Error::Usage(format!(
                "unknown outcome '{s}' (expected ok, denied or failed)"
            ))),
        }
    }
}

/// A user's password-derived credentials: the login hash and the wrapped user key.
pub struct Credentials {
    /// argon2id PHC string for login.
    pub password_hash: String,
    /// Salt of the key-encryption key (never the login-hash salt).
    pub kek_salt: Vec<u8>,
    /// argon2id parameters of the key-encryption key.
    pub kek_params: KdfParams,
    /// The user key wrapped under the key-encryption key.
    pub wrapped_user_key: Vec<u8>,
}

/// A stored user.
pub struct UserRecord {
    /// Database id.
    pub id: i64,
    /// Unique login name.
    pub username: String,
    /// Current role.
    pub role: Role,
    /// Active or disabled.
    pub status: UserStatus,
    /// Password hash and wrapped user key.
    pub credentials: Credentials,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last successful login.
    pub last_login_at: Option<i64>,
}

impl fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("role", &self.role)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// A stored session: the user key wrapped under the session key held by the token.
pub struct SessionRecord {
    /// Random session id (the token's `sid`).
    pub id: String,
    /// Owner.
    pub user_id: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// Unix seconds when logged out or revoked.
    pub revoked_at: Option<i64>,
    /// The user key wrapped under the session key.
    pub wrapped_user_key: Vec<u8>,
}

/// One row of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Contiguous sequence number from 1.
    pub seq: i64,
    /// Unix seconds.
    pub at: i64,
    /// The acting user's id, when known.
    pub actor_id: Option<i64>,
    /// The acting user's name (or the attempted name of a failed login).
    pub actor: String,
    /// The action, e.g. `user.role`.
    pub action: String,
    /// What it acted on.
    pub target: String,
    /// ok, denied or failed.
    pub outcome: Outcome,
    /// JSON object; never a secret.
    pub detail: String,
    /// MAC of the previous row (zeros for the first).
    pub prev_mac: Vec<u8>,
    /// HMAC-SHA256 over `prev_mac` and this row.
    pub mac: Vec<u8>,
}

/// Which audit rows to list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only rows whose actor id is this.
    pub actor_id: Option<i64>,
    /// Only rows whose actor name is this.
    pub actor: Option<String>,
    /// Only this action (exact) or, ending in `.`, this action family.
    pub action: Option<String>,
    /// Only this outcome.
    pub outcome: Option<Outcome>,
    /// Only rows at or after this unix time.
    pub since: Option<i64>,
    /// At most this many rows (the most recent ones), in seq order.
    pub limit: Option<u32>,
}
