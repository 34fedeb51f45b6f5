//! Plain domain types shared by the domain modules and the storage interface.

use std::fmt;
use std::str::FromStr;

use crate::crypto::kdf::KdfParams;
use crate::error::Error;

/// A user's role. Ordered: each role can do everything the previous can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// A service account: no login, no keys or records of its own; reads, through its
    /// tokens, the records its owner grants it.
    Service,
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
            Role::Service => "service",
            Role::User => "user",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }

    /// The text kept in the `role` column: a service account's row says `user` there
    /// (the column's rule predates service accounts) and is told apart by its owner,
    /// which its binding covers.
    pub fn stored(self) -> &'static str {
        match self {
            Role::Service => Role::User.as_str(),
            role => role.as_str(),
        }
    }

    /// The role of a row from its `role` column and whether it has an owner (see
    /// [`Role::stored`]); `None` for a value no schema writes.
    pub fn from_stored(text: &str, has_owner: bool) -> Option<Role> {
        match (text.parse::<Role>().ok()?, has_owner) {
            (Role::Service, _) => None,
            (Role::User, true) => Some(Role::Service),
            (_, true) => None,
            (role, false) => Some(role),
        }
    }

    /// The roles of people, least privileged first (a service account is made as one,
    /// never given its role).
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
            "service" => Ok(Role::Service),
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
#[derive(Clone)]
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
    /// Unix seconds of the last successful login (not bound: it changes at every login).
    pub last_login_at: Option<i64>,
    /// Made by an administrator: the password must be changed before anything else.
    pub must_change_password: bool,
    /// The user's own rows are bound (false only for users from before row bindings, until
    /// their first session).
    pub rows_bound: bool,
    /// The user key wrapped under a recovery code, when the account has one.
    pub recovery: Option<RecoveryWrap>,
    /// A service account's owner: the user who grants it records and issues its tokens.
    pub owner_id: Option<i64>,
    /// The user's keypair for sharing, once it has one.
    pub keys: Option<UserKeys>,
    /// The fingerprints this user pinned, sealed under the user key (docs/sharing.md).
    pub pins: Option<Vec<u8>>,
    /// Binding of the row under the audit key (empty before it is bound).
    pub mac: Vec<u8>,
}

/// A user's keypair for sharing: the public halves and both private halves wrapped under
/// the user key (docs/sharing.md).
#[derive(Clone, PartialEq, Eq)]
pub struct UserKeys {
    /// The public halves.
    pub public: crate::crypto::keypair::PublicKeys,
    /// The private halves, wrapped under the user key.
    pub wrapped: Vec<u8>,
}

/// A second wrapping of the user key, under a key derived from a recovery code shown to
/// the user once (docs/threat-model.md, "Account recovery").
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryWrap {
    /// Salt of the key derived from the code.
    pub salt: Vec<u8>,
    /// The user key wrapped under that key.
    pub wrapped_user_key: Vec<u8>,
    /// Unix seconds when the code was made.
    pub created_at: i64,
}

impl fmt::Debug for RecoveryWrap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecoveryWrap")
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for UserKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserKeys({:?})", self.public)
    }
}

impl UserKeys {
    /// Reads the three stored columns: all set or none (`Err` naming what is wrong
    /// otherwise).
    pub fn from_columns(
        recipient: Option<String>,
        signing: Option<Vec<u8>>,
        wrapped: Option<Vec<u8>>,
    ) -> Result<Option<UserKeys>, &'static str> {
        match (recipient, signing, wrapped) {
            (Some(recipient), Some(signing), Some(wrapped)) => Ok(Some(UserKeys {
                public: crate::crypto::keypair::PublicKeys {
                    recipient,
                    signing: signing
                        .try_into()
                        .map_err(|_| "a signing key that is not 32 bytes")?,
                },
                wrapped,
            })),
            (None, None, None) => Ok(None),
            _ => Err("a partial keypair"),
        }
    }
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
    /// Binding of the id, user and lifetime under the audit key.
    pub mac: Vec<u8>,
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
    /// Digests of the rows this action wrote (see `integrity::StateDigests`); empty for
    /// actions that changed no bound row.
    pub state: Vec<u8>,
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

/// A named key's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    /// Encrypts (unless expired) and decrypts.
    Active,
    /// Neither encrypts nor decrypts until enabled again.
    Disabled,
    /// Material wiped: nothing under it can ever be decrypted.
    Destroyed,
}

impl KeyStatus {
    /// The lowercase name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Disabled => "disabled",
            KeyStatus::Destroyed => "destroyed",
        }
    }

    /// Parses a stored status.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(KeyStatus::Active),
            "disabled" => Some(KeyStatus::Disabled),
            "destroyed" => Some(KeyStatus::Destroyed),
            _ => None,
        }
    }
}

/// A stored named key (metadata; material lives in its versions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// Database id (appears in ciphertext headers).
    pub id: i64,
    /// Owner's user id.
    pub owner_id: i64,
    /// Name, unique per owner.
    pub name: String,
    /// Active, disabled or destroyed.
    pub status: KeyStatus,
    /// Whether `key export` may print its material.
    pub exportable: bool,
    /// Seconds between rotations, if set.
    pub rotation_period: Option<i64>,
    /// Unix seconds after which it no longer encrypts.
    pub expires_at: Option<i64>,
    /// Oldest version allowed to decrypt.
    pub min_decrypt_version: i64,
    /// Newest version (used to encrypt).
    pub latest_version: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// The digest of the key's share grants (docs/sharing.md), bound with the row.
    pub share_digest: Option<Vec<u8>>,
    /// Binding of the row under the owner's integrity key.
    pub mac: Vec<u8>,
}

/// One version of a named key.
#[derive(Clone)]
pub struct KeyVersionRecord {
    /// The key.
    pub key_id: i64,
    /// 1, 2, ...
    pub version: i64,
    /// The 256-bit material wrapped under the owner's user key; `None` once destroyed.
    pub wrapped_material: Option<Vec<u8>>,
    /// Unix seconds.
    pub created_at: i64,
    /// Messages encrypted under this version.
    pub encryptions: i64,
    /// Plaintext bytes encrypted under this version.
    pub bytes: i64,
    /// Binding of the row under the owner's integrity key.
    pub mac: Vec<u8>,
}

/// One entry of a key's lifecycle log (`key_events`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEvent {
    /// Unix seconds.
    pub at: i64,
    /// created, imported, rotated, rewrapped, expired-on-use, disabled, enabled,
    /// destroyed, exported, min-decryption-changed, settings-changed.
    pub event: String,
    /// The version concerned, if any.
    pub version: Option<i64>,
    /// Who did it.
    pub actor: String,
    /// JSON object with specifics; never key material.
    pub detail: String,
}

/// One row of the usage log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageEvent {
    /// Unix seconds.
    pub at: i64,
    /// Who.
    pub user_id: i64,
    /// Which key, if any.
    pub key_id: Option<i64>,
    /// Which key version, if any.
    pub key_version: Option<i64>,
    /// Which record, if any.
    pub record_id: Option<i64>,
    /// encrypt, decrypt, rewrap, export, ...
    pub operation: String,
    /// Plaintext bytes.
    pub bytes: i64,
    /// ok or failed.
    pub outcome: Outcome,
}

/// A stored encrypted record.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordRow {
    /// Database id (bound into the record's encryption).
    pub id: i64,
    /// `zt_...` or a custom token; unique.
    pub token: String,
    /// Owner's user id.
    pub owner_id: i64,
    /// Optional name, unique per owner among live records.
    pub name: Option<String>,
    /// The named key wrapping the data key (unless password-protected).
    pub key_id: Option<i64>,
    /// Its version.
    pub key_version: Option<i64>,
    /// The password identity wrapping the data key (password-protected records).
    pub identity_id: Option<i64>,
    /// The record's data key, wrapped.
    pub wrapped_dek: Vec<u8>,
    /// The value, encrypted under the data key.
    pub ciphertext: Vec<u8>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
    /// Unix seconds after which it cannot be read.
    pub expires_at: Option<i64>,
    /// Unix seconds of a soft delete.
    pub deleted_at: Option<i64>,
    /// 1, then +1 per update.
    pub version: i64,
    /// SHA-256 of the ciphertext, bound with the row (records written since shares
    /// existed): a recipient who holds the data key cannot swap the value unnoticed.
    pub value_hash: Option<Vec<u8>>,
    /// The digest of the record's current shares (docs/sharing.md), bound with the row, so
    /// a share row added or put back behind the owner's back is told apart.
    pub share_digest: Option<Vec<u8>>,
    /// Binding of every column but the ciphertext (which `value_hash` binds, or for older
    /// rows its data key) under the owner's integrity key.
    pub mac: Vec<u8>,
}

impl fmt::Debug for RecordRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordRow")
            .field("id", &self.id)
            .field("token", &self.token)
            .field("name", &self.name)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// Which records to list.
#[derive(Debug, Clone, Default)]
pub struct RecordFilter {
    /// Only these tokens.
    pub tokens: Vec<String>,
    /// Only records wrapped by this key id.
    pub key_id: Option<i64>,
    /// live (false) / deleted (true) / both (None).
    pub deleted: Option<bool>,
    /// Only expired (true), only unexpired (false), or both (None), at `now`.
    pub expired: Option<bool>,
    /// The time "expired" is judged at.
    pub now: i64,
    /// Load ciphertexts and wrapped keys (else they come back empty).
    pub with_values: bool,
    /// The order (ties broken by id, in the same direction).
    pub order_by: RecordOrder,
    /// Ascending.
    pub ascending: bool,
    /// At most.
    pub limit: Option<i64>,
    /// Skip.
    pub offset: i64,
}

/// How records are listed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RecordOrder {
    /// By creation time.
    #[default]
    Created,
    /// By last update.
    Updated,
    /// By name, bytewise (unnamed records first).
    Name,
    /// By expiry (records that never expire first).
    Expires,
}

/// A password identity: an identity key wrapped under argon2id(record password, salt).
#[derive(Clone)]
pub struct IdentityRow {
    /// Database id.
    pub id: i64,
    /// Owner.
    pub owner_id: i64,
    /// KDF salt (shared by an owner's identities, so one KDF tries them all).
    pub salt: Vec<u8>,
    /// KDF parameters.
    pub kdf: KdfParams,
    /// The identity key, wrapped.
    pub wrapped_identity_key: Vec<u8>,
    /// Unix seconds.
    pub created_at: i64,
    /// How the key-encryption key is made: 1 from the record password alone (before
    /// this release), 2 from the record password and the owner's user key.
    pub kek_scheme: i64,
    /// Binding of the row under the owner's integrity key.
    pub mac: Vec<u8>,
}

/// Which bound row: a table and the row's key, for integrity messages and the audit
/// log's row-state digests.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RowId {
    /// `users`.
    User(i64),
    /// `keys`.
    Key(i64),
    /// `key_versions`: key id and version.
    KeyVersion(i64, i64),
    /// `records`.
    Record(i64),
    /// `record_versions`: record id and version (bound, but not in the row-state
    /// digests).
    RecordVersion(i64, i64),
    /// `password_identities`.
    Identity(i64),
    /// `sessions` (bound, but never part of the row-state digests).
    Session(String),
    /// `service_grants`.
    ServiceGrant(i64),
    /// `record_shares` (bound by the owner's signature).
    RecordShare(i64),
    /// `key_shares` (bound by the owner's signature).
    KeyShare(i64),
    /// `groups` (bound by the manager's signature).
    Group(i64),
    /// `group_members` (bound by the manager's signature).
    GroupMember(i64),
    /// `record_writes` (bound by the writer's signature).
    RecordWrite(i64),
    /// `record_transfers` (bound by the giver's signature).
    RecordTransfer(i64),
}

impl fmt::Display for RowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowId::User(id) => write!(f, "users row {id}"),
            RowId::Key(id) => write!(f, "keys row {id}"),
            RowId::KeyVersion(k, v) => write!(f, "key_versions row {k}/{v}"),
            RowId::Record(id) => write!(f, "records row {id}"),
            RowId::RecordVersion(id, v) => write!(f, "record_versions row {id}/{v}"),
            RowId::Identity(id) => write!(f, "password_identities row {id}"),
            RowId::Session(_) => f.write_str("a sessions row"),
            RowId::ServiceGrant(id) => write!(f, "service_grants row {id}"),
            RowId::RecordShare(id) => write!(f, "record_shares row {id}"),
            RowId::KeyShare(id) => write!(f, "key_shares row {id}"),
            RowId::Group(id) => write!(f, "groups row {id}"),
            RowId::GroupMember(id) => write!(f, "group_members row {id}"),
            RowId::RecordWrite(id) => write!(f, "record_writes row {id}"),
            RowId::RecordTransfer(id) => write!(f, "record_transfers row {id}"),
        }
    }
}

/// A stored row whose state the audit log vouches for (records without their
/// ciphertext, which the bound data key pins).
#[derive(Debug)]
pub enum StoredRow {
    /// A user.
    User(UserRecord),
    /// A named key.
    Key(KeyRecord),
    /// A key version, with its key's owner.
    KeyVersion(i64, KeyVersionRecord),
    /// A record.
    Record(RecordRow),
    /// A password identity.
    Identity(IdentityRow),
    /// A grant of records to a service account.
    ServiceGrant(ServiceGrant),
    /// A record shared with another user.
    RecordShare(RecordShare),
    /// A key version shared with another user.
    KeyShare(KeyShare),
    /// A group.
    Group(GroupRow),
    /// A member of a group.
    GroupMember(GroupMember),
    /// A recipient's write waiting for the record's owner.
    RecordWrite(RecordWrite),
    /// A record handed to another user.
    RecordTransfer(RecordTransfer),
}

/// A service account's grant: the owner's records whose names match `pattern` (a glob,
/// or a plain name) may be read with the service's tokens. Bound under the owner's
/// integrity key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceGrant {
    /// Row id.
    pub id: i64,
    /// The service account.
    pub service_id: i64,
    /// The service's owner, whose records the grant covers.
    pub owner_id: i64,
    /// A record name or a glob of names.
    pub pattern: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Binding under the owner's integrity key.
    pub mac: Vec<u8>,
}

/// The data key of a record's current version, wrapped for a service account under its
/// service key (bound by the AEAD to the service, the record, its token, name and
/// version).
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceRecordKey {
    /// The service account.
    pub service_id: i64,
    /// The record.
    pub record_id: i64,
    /// The record version whose data key this is.
    pub version: i64,
    /// The data key wrapped under the service key.
    pub wrapped_dek: Vec<u8>,
}

/// Whom a record or key is shared with: a user, or a group at one epoch of its keypair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Grantee {
    /// A user, by id.
    User(i64),
    /// A group, by id, and the epoch of the group key the share is wrapped to.
    Group {
        /// The group.
        id: i64,
        /// The epoch of its keypair.
        epoch: i64,
    },
}

impl Grantee {
    /// The user, for a share with a user.
    pub fn user(self) -> Option<i64> {
        match self {
            Grantee::User(id) => Some(id),
            Grantee::Group { .. } => None,
        }
    }

    /// The group, for a share with a group.
    pub fn group(self) -> Option<i64> {
        match self {
            Grantee::Group { id, .. } => Some(id),
            Grantee::User(_) => None,
        }
    }

    /// The stored columns: user id, group id, epoch.
    pub fn columns(self) -> (Option<i64>, Option<i64>, Option<i64>) {
        match self {
            Grantee::User(id) => (Some(id), None, None),
            Grantee::Group { id, epoch } => (None, Some(id), Some(epoch)),
        }
    }

    /// From the stored columns; `None` for a combination no share has.
    pub fn from_columns(user: Option<i64>, group: Option<i64>, epoch: Option<i64>) -> Option<Self> {
        match (user, group, epoch) {
            (Some(id), None, None) => Some(Grantee::User(id)),
            (None, Some(id), Some(epoch)) => Some(Grantee::Group { id, epoch }),
            _ => None,
        }
    }

    /// The grantee without the epoch, which changes as the group key rotates: one grant
    /// per user or group.
    pub fn who(self) -> Grantee {
        match self {
            Grantee::Group { id, .. } => Grantee::Group { id, epoch: 0 },
            user => user,
        }
    }
}

/// A group (docs/sharing.md, "Groups"): an X25519 keypair whose private key is wrapped to
/// each member's pinned key, managed by the user who made it, who signs the row.
#[derive(Clone, PartialEq, Eq)]
pub struct GroupRow {
    /// Database id.
    pub id: i64,
    /// Unique name (`@name` in commands).
    pub name: String,
    /// The member who manages it (its creator).
    pub manager_id: i64,
    /// The group's public key as an age recipient, at `epoch`.
    pub recipient: String,
    /// 1, then +1 each time a member is removed and the keypair replaced.
    pub epoch: i64,
    /// The private keys of earlier epochs, as an age file to the current key (empty at
    /// epoch 1).
    pub history: Vec<u8>,
    /// The digest of the member set (user id, time added).
    pub members_digest: Vec<u8>,
    /// The manager's Ed25519 signature over all of the above and `handovers`.
    pub signature: Vec<u8>,
    /// Unix seconds.
    pub created_at: i64,
    /// Each hand-over of the group to a new manager, oldest first, signed by the manager
    /// who handed it over; the last one may be an offer not yet taken (docs/sharing.md,
    /// "Handing a group over"). Empty for a group still managed by its creator.
    pub handovers: Vec<u8>,
}

impl fmt::Debug for GroupRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupRow")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("manager_id", &self.manager_id)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

/// A member of a group: the group's private key at the group's current epoch, wrapped to
/// the member's pinned key, signed by the manager.
#[derive(Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// Database id.
    pub id: i64,
    /// The group.
    pub group_id: i64,
    /// The member.
    pub user_id: i64,
    /// The epoch of the wrapped key.
    pub epoch: i64,
    /// The group's private key as an age file to the member.
    pub wrapped_identity: Vec<u8>,
    /// The manager's signature.
    pub signature: Vec<u8>,
    /// Unix seconds the member was added.
    pub added_at: i64,
}

impl fmt::Debug for GroupMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupMember")
            .field("group_id", &self.group_id)
            .field("user_id", &self.user_id)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

/// A record shared with another user (docs/sharing.md): the record's current data key
/// wrapped to the recipient's pinned X25519 key (an age file), under the owner's
/// Ed25519 signature over the grant and the wrap.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordShare {
    /// Database id.
    pub id: i64,
    /// The record.
    pub record_id: i64,
    /// The record's token (read with the share, not stored in it).
    pub record_token: String,
    /// The record's owner, who signed the share.
    pub owner_id: i64,
    /// Who may read it.
    pub to: Grantee,
    /// The record version whose data key is wrapped.
    pub version: i64,
    /// Whether the recipient may also write the record's value (`data share --write`).
    pub can_write: bool,
    /// The data key as an age file to the recipient.
    pub wrapped_dek: Vec<u8>,
    /// The owner's Ed25519 signature (docs/sharing.md, "What a share binds").
    pub signature: Vec<u8>,
    /// The owner's Ed25519 signature over the grant itself (record, recipient, access),
    /// the same for every version.
    pub grant_signature: Vec<u8>,
    /// Unix seconds the record was first shared with the recipient.
    pub created_at: i64,
}

impl fmt::Debug for RecordShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordShare")
            .field("id", &self.id)
            .field("record_id", &self.record_id)
            .field("owner_id", &self.owner_id)
            .field("to", &self.to)
            .field("version", &self.version)
            .field("can_write", &self.can_write)
            .finish_non_exhaustive()
    }
}

/// A new value of a shared record written by a recipient allowed to write it
/// (docs/sharing.md, "Write shares"): sealed under a new data key, which is wrapped to the
/// owner and every current recipient, and signed by the writer. It waits here until the
/// owner's client takes it in as the record's next version.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordWrite {
    /// Database id.
    pub id: i64,
    /// The record.
    pub record_id: i64,
    /// The record's token (read with the write, not stored in it).
    pub record_token: String,
    /// The record's owner.
    pub owner_id: i64,
    /// Who wrote it.
    pub writer_id: i64,
    /// The record version it replaces.
    pub base_version: i64,
    /// The value sealed under the new data key.
    pub ciphertext: Vec<u8>,
    /// The new data key as one age file to the owner and every current recipient.
    pub wrapped_dek: Vec<u8>,
    /// The writer's Ed25519 signature.
    pub signature: Vec<u8>,
    /// Unix seconds.
    pub created_at: i64,
}

impl fmt::Debug for RecordWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordWrite")
            .field("id", &self.id)
            .field("record_id", &self.record_id)
            .field("writer_id", &self.writer_id)
            .field("base_version", &self.base_version)
            .finish_non_exhaustive()
    }
}

/// A record handed to another user (docs/sharing.md, "Transfers"): the data key of its
/// current version wrapped to the new owner, signed by whoever gave it (its owner, or the
/// manager of a group it is shared with). The new owner's client takes it in as a record
/// of theirs and notes when.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordTransfer {
    /// Database id.
    pub id: i64,
    /// The record.
    pub record_id: i64,
    /// The record's token (read with the transfer, not stored in it).
    pub record_token: String,
    /// The record's owner.
    pub owner_id: i64,
    /// Who gave it (the owner, or a group's manager).
    pub giver_id: i64,
    /// The new owner.
    pub recipient_id: i64,
    /// The record version whose data key is wrapped.
    pub version: i64,
    /// The data key as an age file to the new owner.
    pub wrapped_dek: Vec<u8>,
    /// The giver's Ed25519 signature.
    pub signature: Vec<u8>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds the new owner's client took it in (not signed: a note).
    pub taken_at: Option<i64>,
}

impl fmt::Debug for RecordTransfer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordTransfer")
            .field("id", &self.id)
            .field("record_id", &self.record_id)
            .field("giver_id", &self.giver_id)
            .field("recipient_id", &self.recipient_id)
            .field("version", &self.version)
            .field("taken_at", &self.taken_at)
            .finish_non_exhaustive()
    }
}

/// Which transfers to read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransferFilter {
    /// Of this record.
    pub record_id: Option<i64>,
    /// Of this owner's records.
    pub owner_id: Option<i64>,
    /// To this user.
    pub recipient_id: Option<i64>,
    /// Only those not taken in yet.
    pub waiting: bool,
}

/// A version of a named key shared with another user (docs/sharing.md, "Shared keys"): the
/// version's material wrapped to the recipient's pinned X25519 key (an age file), under
/// the owner's Ed25519 signature.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyShare {
    /// Database id.
    pub id: i64,
    /// The key.
    pub key_id: i64,
    /// The key's name, as signed (the recipient does not read the owner's key row).
    pub key_name: String,
    /// The key's owner, who signed the share.
    pub owner_id: i64,
    /// Who may decrypt with it.
    pub to: Grantee,
    /// The key version whose material is wrapped.
    pub version: i64,
    /// Whether the recipient may also encrypt with the key (`key share --write`).
    pub can_write: bool,
    /// The material as an age file to the recipient.
    pub wrapped_material: Vec<u8>,
    /// The owner's signature over this version's share.
    pub signature: Vec<u8>,
    /// The owner's signature over the grant (key, recipient, access), the same for every
    /// version.
    pub grant_signature: Vec<u8>,
    /// Unix seconds the key was first shared with the recipient.
    pub created_at: i64,
}

impl fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyShare")
            .field("key_id", &self.key_id)
            .field("to", &self.to)
            .field("version", &self.version)
            .field("can_write", &self.can_write)
            .finish_non_exhaustive()
    }
}

/// Which shares to read: any combination of record, owner and recipient.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShareFilter {
    /// Shares of this record.
    pub record_id: Option<i64>,
    /// Shares by this owner.
    pub owner_id: Option<i64>,
    /// Shares with this user.
    pub recipient_id: Option<i64>,
    /// Shares with this user or with a group they are a member of.
    pub reader_id: Option<i64>,
    /// Shares with this group.
    pub group_id: Option<i64>,
    /// Only shares with groups.
    pub groups_only: bool,
}

impl fmt::Debug for ServiceRecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceRecordKey")
            .field("service_id", &self.service_id)
            .field("record_id", &self.record_id)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for KeyVersionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyVersionRecord")
            .field("key_id", &self.key_id)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for IdentityRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityRow")
            .field("id", &self.id)
            .field("owner_id", &self.owner_id)
            .finish_non_exhaustive()
    }
}
