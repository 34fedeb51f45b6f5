//! Encrypted data records: any bytes stored under a token (and optionally a name), each
//! with its own random data key wrapped by a named key version or a password identity,
//! and bound to its row, owner and key so that a ciphertext moved elsewhere fails.

pub mod formats;
pub mod identity;
mod lifecycle;
pub mod token;
mod transfer;

use std::collections::{BTreeMap, HashMap};

use secrecy::SecretString;
use serde_json::json;
use zeroize::Zeroizing;

use crate::authz::Permission;
use crate::crypto::{Aad, Key32, aead};
use crate::duration;
use crate::error::{Error, Result};
use crate::events::{AuditAction, KeyEventKind, UsageOp};
use crate::ids::{IdentityId, KeyId, KeyVersion, RecordId, UserId};
use crate::keys;
use crate::model::{KeyRecord, Outcome, RecordRow, UsageEvent};
use crate::storage::{StoreError, Tx};
use crate::vault::{Session, Vault};
use identity::Unlocker;

pub use lifecycle::PurgeOptions;
pub use transfer::{Exported, ImportItem, parse_import, parse_import_line, value_json};

/// The key used when `data put` names none (created on first use).
pub const DEFAULT_KEY: &str = "default";
/// Largest value accepted.
pub const MAX_VALUE: usize = 256 * 1024 * 1024;

/// Refuses a value larger than [`MAX_VALUE`].
pub(crate) fn check_value_size(value: &[u8]) -> Result<()> {
    if value.len() > MAX_VALUE {
        return Err(Error::Usage(format!(
            "values are limited to {} MiB",
            MAX_VALUE >> 20
        )));
    }
    Ok(())
}

/// How a new record's token is chosen.
#[derive(Debug, Clone)]
pub enum TokenChoice {
    /// Random, with this total length.
    Random(usize),
    /// Exactly this.
    Custom(String),
}

/// Options of `data put`.
#[derive(Debug, Clone)]
pub struct PutOptions {
    /// Optional unique name.
    pub name: Option<String>,
    /// The named key (default: [`DEFAULT_KEY`]); ignored for protected records. A batch
    /// of puts takes its key from [`Puts::new`] instead.
    pub key: Option<String>,
    /// Seconds until it expires.
    pub expires_in: Option<u64>,
    /// Token choice.
    pub token: TokenChoice,
}

impl Default for PutOptions {
    fn default() -> Self {
        PutOptions {
            name: None,
            key: None,
            expires_in: None,
            token: TokenChoice::Random(token::DEFAULT_LENGTH),
        }
    }
}

/// A record as listed (never its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordInfo {
    /// Token.
    pub token: String,
    /// Name.
    pub name: Option<String>,
    /// Version.
    pub version: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
    /// Unix seconds.
    pub expires_at: Option<i64>,
    /// Unix seconds.
    pub deleted_at: Option<i64>,
    /// Password-protected.
    pub protected: bool,
    /// The wrapping key's name (for key-wrapped records).
    pub key: Option<String>,
    /// The owner, for a record another user shared.
    pub owner: Option<String>,
}

/// The result of a (batch) get.
#[derive(Default)]
pub struct GetOutcome {
    /// Records found, with their values, in request order.
    pub records: Vec<(RecordInfo, Zeroizing<Vec<u8>>)>,
    /// References that match no live record.
    pub missing: Vec<String>,
    /// References to expired records.
    pub expired: Vec<String>,
    /// References to soft-deleted records (reported as missing in JSON).
    pub deleted: Vec<String>,
}

impl std::fmt::Debug for GetOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GetOutcome")
            .field("records", &self.records.len())
            .field("values", &"[redacted]")
            .field("missing", &self.missing)
            .field("expired", &self.expired)
            .field("deleted", &self.deleted)
            .finish()
    }
}

pub(crate) fn value_aad(owner_id: UserId, record_id: RecordId) -> Aad {
    Aad::new("record-value").int(owner_id).int(record_id)
}

pub(crate) fn identity_dek_aad(
    owner_id: UserId,
    record_id: RecordId,
    identity_id: IdentityId,
) -> Aad {
    Aad::new("record-dek-identity")
        .int(owner_id)
        .int(record_id)
        .int(identity_id)
}

/// Longest record name, in bytes.
pub const MAX_NAME: usize = 128;

/// Whether `name` may name a record: 1-128 characters from `[A-Za-z0-9._-/]`, with `/`
/// only between parts (`prod/db/password`), and not starting with `zt_` (the prefix of
/// generated tokens). A name never holds `:`, which separates an owner from a name in a
/// reference, nor control or bidi characters.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && !name.starts_with("zt_")
        && !name.starts_with('/')
        && !name.ends_with('/')
        && !name.contains("//")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
}

/// Checks a record name (see [`is_valid_name`]).
pub fn validate_name(name: &str) -> Result<()> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "invalid record name '{}': use 1-{MAX_NAME} characters from A-Z a-z 0-9 . _ - and / between parts, not starting with zt_",
            crate::text::printable(name, 64)
        )))
    }
}

/// The error for a reference that names no record of the caller.
pub fn not_found(reference: &str) -> Error {
    Error::NotFound(format!(
        "record '{}' not found",
        crate::text::printable(reference, 80)
    ))
}

fn integrity(record_id: i64) -> Error {
    Error::Integrity(format!(
        "record #{record_id} failed its integrity check (decryption failed): it was modified or moved"
    ))
}

/// Unwrapped key material and key metadata, cached across the records of one operation.
pub(crate) struct Keyring<'p> {
    owner_id: UserId,
    keys: HashMap<KeyId, KeyRecord>,
    materials: HashMap<(KeyId, KeyVersion), Key32>,
    unlocker: Option<Unlocker<'p>>,
    /// The owner's service accounts with grants, loaded at the first write.
    grantees: Option<Vec<crate::services::Grantee>>,
    /// Ends, instead of refusing the write, a share whose recipient can no longer be
    /// wrapped for (an unshare must complete): their names, once ended.
    pub(crate) ended_shares: Option<Vec<String>>,
}

impl<'p> Keyring<'p> {
    pub(crate) fn new(session: &'p Session, password: Option<&'p SecretString>) -> Self {
        Keyring {
            owner_id: session.user_id,
            keys: HashMap::new(),
            materials: HashMap::new(),
            unlocker: password.map(|p| Unlocker::new(p, &session.user_key)),
            grantees: None,
            ended_shares: None,
        }
    }

    /// After a write of `row` with the new data key `dek`: the owner's service accounts
    /// whose grants cover it get the new data key, and those whose grants no longer do
    /// lose the old one.
    fn rewrap_for_services(
        &mut self,
        tx: &mut dyn Tx,
        session: &Session,
        row: &RecordRow,
        dek: &Key32,
    ) -> Result<()> {
        if self.grantees.is_none() {
            self.grantees = Some(crate::services::grantees(tx, session)?);
        }
        let grantees = self.grantees.as_deref().unwrap_or_default();
        crate::services::rewrap_for_services(tx, grantees, row, dek)
    }

    fn key(&mut self, tx: &mut dyn Tx, key_id: KeyId) -> Result<&KeyRecord> {
        if !self.keys.contains_key(&key_id) {
            let k = tx
                .key_by_id(self.owner_id.0, key_id.0)?
                .ok_or_else(|| Error::Integrity("a record's key is missing".into()))?;
            self.keys.insert(key_id, k);
        }
        Ok(&self.keys[&key_id])
    }

    pub(crate) fn key_name(&mut self, tx: &mut dyn Tx, key_id: KeyId) -> Result<String> {
        Ok(self.key(tx, key_id)?.name.clone())
    }

    pub(crate) fn material(
        &mut self,
        tx: &mut dyn Tx,
        session: &Session,
        key_id: KeyId,
        version: KeyVersion,
    ) -> Result<&Key32> {
        if !self.materials.contains_key(&(key_id, version)) {
            let key = self.key(tx, key_id)?.clone();
            let m = keys::material(tx, &session.user_key, &key, version)?;
            self.materials.insert((key_id, version), m);
        }
        Ok(&self.materials[&(key_id, version)])
    }

    /// Opens a record's value, checking that its key may decrypt.
    fn open(
        &mut self,
        tx: &mut dyn Tx,
        session: &Session,
        row: &RecordRow,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let dek = self.dek(tx, session, row)?;
        open_value(row, &dek)
    }

    /// A record's data key, checking that its key may decrypt.
    pub(crate) fn dek(
        &mut self,
        tx: &mut dyn Tx,
        session: &Session,
        row: &RecordRow,
    ) -> Result<Key32> {
        let (owner, record) = (UserId(row.owner_id), RecordId(row.id));
        Ok(match (row.key_id, row.key_version, row.identity_id) {
            (Some(key_id), Some(version), None) => {
                let (key_id, version) = (KeyId(key_id), KeyVersion(version));
                let key = self.key(tx, key_id)?.clone();
                keys::ensure_usable(&key)?;
                if version.0 < key.min_decrypt_version {
                    return Err(Error::Conflict(format!(
                        "key '{}' no longer decrypts version {version} (minimum decryption version is {})",
                        key.name, key.min_decrypt_version
                    )));
                }
                let m = self.material(tx, session, key_id, version)?;
                keys::unwrap_for_key(
                    &aead::KeyWrapper::new(m),
                    owner,
                    record,
                    key_id,
                    version,
                    &row.wrapped_dek,
                )?
            }
            (None, None, Some(identity_id)) => {
                let identity_id = IdentityId(identity_id);
                let unlocker = self.unlocker.as_mut().ok_or_else(|| Error::NeedsInput {
                    what: "the record password".into(),
                    flag: "--password-file FILE (or ZENCRYPT_RECORD_PASSWORD_FILE)".into(),
                })?;
                let ik = Key32::from_bytes(*unlocker.key(tx, owner, identity_id)?.expose());
                aead::unwrap_key(
                    &ik,
                    &identity_dek_aad(owner, record, identity_id),
                    unlocker.current_dek(record, &row.wrapped_dek),
                )
                .map_err(|_| integrity(row.id))?
            }
            _ => return Err(integrity(row.id)),
        })
    }

    pub(crate) fn info(&mut self, tx: &mut dyn Tx, row: &RecordRow) -> Result<RecordInfo> {
        let key = match row.key_id {
            Some(id) => Some(self.key_name(tx, KeyId(id))?),
            None => None,
        };
        Ok(record_info(row, key))
    }
}

/// What is shown of a record, with its key's name when it is known.
pub(crate) fn record_info(row: &RecordRow, key: Option<String>) -> RecordInfo {
    RecordInfo {
        token: row.token.clone(),
        name: row.name.clone(),
        version: row.version,
        created_at: row.created_at,
        updated_at: row.updated_at,
        expires_at: row.expires_at,
        deleted_at: row.deleted_at,
        protected: row.identity_id.is_some(),
        key,
        owner: None,
    }
}

/// The hash bound with a record row over its ciphertext.
pub(crate) fn value_hash(ciphertext: &[u8]) -> Vec<u8> {
    use sha2::Digest as _;
    sha2::Sha256::digest(ciphertext).to_vec()
}

/// A record's value, opened with its data key.
pub(crate) fn open_value(row: &RecordRow, dek: &Key32) -> Result<Zeroizing<Vec<u8>>> {
    // The bound hash, where the row has one: the data key alone (which recipients of a
    // share hold too) does not vouch for the value.
    if let Some(h) = &row.value_hash
        && !bool::from(subtle::ConstantTimeEq::ct_eq(
            &value_hash(&row.ciphertext)[..],
            &h[..],
        ))
    {
        return Err(integrity(row.id));
    }
    aead::open(
        dek,
        &value_aad(UserId(row.owner_id), RecordId(row.id)),
        &row.ciphertext,
    )
    .map_err(|_| integrity(row.id))
}

/// The named key to store under, created if it is the default one and missing; refuses
/// unusable or expired keys and rotates a due one first.
fn key_for_put(tx: &mut dyn Tx, session: &Session, name: Option<&str>) -> Result<KeyRecord> {
    let wanted = name.unwrap_or(DEFAULT_KEY);
    let mut key = match tx.key_by_name(session.user_id.0, wanted)? {
        Some(k) => k,
        None if name.is_none() => {
            let opts = keys::KeyOptions::default();
            keys::insert_new(
                tx,
                session,
                DEFAULT_KEY,
                opts,
                &Key32::random(),
                KeyEventKind::Created,
            )?
            .0
        }
        None => return Err(keys::not_found(wanted)),
    };
    keys::ensure_usable(&key)?;
    if key.expires_at.is_some_and(|e| duration::now() >= e) {
        return Err(Error::Conflict(format!(
            "key '{wanted}' has expired; it can still decrypt, but not encrypt"
        )));
    }
    keys::rotate_if_needed(tx, session, &mut key)?;
    Ok(key)
}

/// Whether [`update_in`] can write a new version of `row` without failing on its key: the
/// record is live and key-wrapped, its key usable and unexpired, and a rotation due first
/// can wrap the new version for every share of the key. Reads only; for the writes made
/// before a user's command, which must not fail it.
pub(crate) fn can_update(tx: &mut dyn Tx, session: &Session, row: &RecordRow) -> Result<bool> {
    if row.deleted_at.is_some() {
        return Ok(false);
    }
    let Some(key_id) = row.key_id else {
        return Ok(false);
    };
    let Some(key) = tx.key_by_id(session.user_id.0, key_id)? else {
        return Ok(false);
    };
    let now = duration::now();
    if keys::ensure_usable(&key).is_err() || key.expires_at.is_some_and(|e| now >= e) {
        return Ok(false);
    }
    if keys::rotation_needed(tx, &key, now)?.is_some()
        && !crate::sharing::can_reshare_key(tx, session, &key)?
    {
        return Ok(false);
    }
    Ok(true)
}

/// One or more puts in one write transaction. The key is looked up (and rotated if due)
/// at the first put, ids are handed out in order from there, and the key versions'
/// encryption counters are added up and written by [`Puts::finish`]: an import of many
/// records costs two statements per record (the record and its usage event).
pub(crate) struct Puts<'a> {
    key_name: Option<&'a str>,
    protect: bool,
    /// The key, and its latest version's encryptions as stored when it was looked up.
    key: Option<(KeyRecord, i64)>,
    next_id: Option<i64>,
    /// (key id, version) -> (encryptions, bytes) not yet written.
    tally: BTreeMap<(KeyId, KeyVersion), (i64, i64)>,
}

impl<'a> Puts<'a> {
    /// Puts under the key named `key_name` (the default key if `None`), or under the
    /// record password when `protect` is set.
    pub(crate) fn new(key_name: Option<&'a str>, protect: bool) -> Puts<'a> {
        Puts {
            key_name,
            protect,
            key: None,
            next_id: None,
            tally: BTreeMap::new(),
        }
    }

    /// The key for the next put. It is looked up again, after the counters are written,
    /// when this batch takes its latest version to [`keys::ENCRYPTION_LIMIT`], so that
    /// the lookup rotates it as it would between separate puts.
    fn key(&mut self, tx: &mut dyn Tx, session: &Session) -> Result<KeyRecord> {
        if let Some((key, stored)) = &self.key {
            let pending = self
                .tally
                .get(&(KeyId(key.id), KeyVersion(key.latest_version)))
                .map_or(0, |c| c.0);
            if stored + pending < keys::ENCRYPTION_LIMIT {
                return Ok(key.clone());
            }
        }
        self.write_counters(tx)?;
        let key = key_for_put(tx, session, self.key_name)?;
        let stored = tx
            .key_version(key.id, key.latest_version)?
            .map_or(0, |v| v.encryptions);
        self.key = Some((key.clone(), stored));
        Ok(key)
    }

    fn next_id(&mut self, tx: &mut dyn Tx) -> Result<i64> {
        let id = match self.next_id {
            Some(id) => id,
            None => tx.next_record_id()?,
        };
        self.next_id = Some(id + 1);
        Ok(id)
    }

    fn write_counters(&mut self, tx: &mut dyn Tx) -> Result<()> {
        for ((key_id, version), (encryptions, bytes)) in std::mem::take(&mut self.tally) {
            crate::keys::count_usage(tx, key_id, version, encryptions, bytes)?;
        }
        Ok(())
    }

    /// Adds the encryptions to the key versions' counters.
    pub(crate) fn finish(mut self, tx: &mut dyn Tx) -> Result<()> {
        self.write_counters(tx)
    }
}

pub(crate) fn usage(
    tx: &mut dyn Tx,
    session: &Session,
    row: &RecordRow,
    op: UsageOp,
    bytes: usize,
) -> Result<()> {
    tx.insert_usage(&UsageEvent {
        at: duration::now(),
        user_id: session.user_id.0,
        key_id: row.key_id,
        key_version: row.key_version,
        record_id: Some(row.id),
        operation: op.as_str().into(),
        bytes: bytes as i64,
        outcome: Outcome::Ok,
    })?;
    Ok(())
}

/// Encrypts `value` into `row` (new data key), under the key or the identity; returns the
/// data key.
fn seal_into(
    tx: &mut dyn Tx,
    session: &Session,
    ring: &mut Keyring<'_>,
    row: &mut RecordRow,
    value: &[u8],
    key: Option<&KeyRecord>,
    identity: Option<(IdentityId, &Key32)>,
) -> Result<Key32> {
    let (owner, record) = (UserId(row.owner_id), RecordId(row.id));
    let dek = Key32::random();
    row.ciphertext = aead::seal(&dek, &value_aad(owner, record), value);
    row.value_hash = Some(value_hash(&row.ciphertext));
    match (key, identity) {
        (Some(k), _) => {
            let (key_id, version) = (KeyId(k.id), KeyVersion(k.latest_version));
            let m = ring.material(tx, session, key_id, version)?;
            row.wrapped_dek = keys::wrap_for_key(
                &aead::KeyWrapper::new(m),
                owner,
                record,
                key_id,
                version,
                &dek,
            );
            row.key_id = Some(k.id);
            row.key_version = Some(k.latest_version);
            row.identity_id = None;
        }
        (None, Some((identity_id, ik))) => {
            row.wrapped_dek =
                aead::wrap_key(ik, &identity_dek_aad(owner, record, identity_id), &dek);
            row.key_id = None;
            row.key_version = None;
            row.identity_id = Some(identity_id.0);
        }
        (None, None) => return Err(Error::Internal("a record needs a key or a password".into())),
    }
    Ok(dek)
}

/// Stores one record inside `tx`.
pub(crate) fn put_in(
    tx: &mut dyn Tx,
    session: &Session,
    ring: &mut Keyring<'_>,
    value: &[u8],
    opts: &PutOptions,
    puts: &mut Puts<'_>,
    kdf: crate::crypto::kdf::KdfParams,
) -> Result<RecordRow> {
    check_value_size(value)?;
    if let Some(n) = &opts.name {
        validate_name(n)?;
        // A name that could be a custom token must not be one of this owner's tokens.
        if token::could_be_custom(n)
            && tx
                .record_by_ref(session.user_id.0, n)?
                .is_some_and(|r| r.token == *n)
        {
            return Err(Error::Conflict(format!(
                "'{n}' is the token of another record; choose another name"
            )));
        }
    }
    if let TokenChoice::Custom(t) = &opts.token
        && tx
            .record_by_ref(session.user_id.0, t)?
            .is_some_and(|r| r.token != *t && r.name.as_deref() == Some(t))
    {
        return Err(Error::Conflict(format!(
            "'{t}' is the name of another record; choose another token"
        )));
    }
    let token = match &opts.token {
        TokenChoice::Random(n) => {
            token::check_length(*n)?;
            token::generate(*n)
        }
        TokenChoice::Custom(t) => {
            token::validate_custom(t)?;
            t.clone()
        }
    };
    let now = duration::now();
    let mut row = RecordRow {
        id: puts.next_id(tx)?,
        token,
        owner_id: session.user_id.0,
        name: opts.name.clone(),
        key_id: None,
        key_version: None,
        identity_id: None,
        wrapped_dek: Vec::new(),
        ciphertext: Vec::new(),
        created_at: now,
        updated_at: now,
        expires_at: opts
            .expires_in
            .map(|s| now.saturating_add(i64::try_from(s).unwrap_or(i64::MAX))),
        deleted_at: None,
        version: 1,
        mac: Vec::new(),
        value_hash: None,
        share_digest: None,
    };
    let dek = if puts.protect {
        let unlocker = ring.unlocker.as_mut().ok_or_else(|| Error::NeedsInput {
            what: "a record password".into(),
            flag: "--password-file FILE (or ZENCRYPT_RECORD_PASSWORD_FILE)".into(),
        })?;
        let (id, ik) = unlocker.find_or_create(tx, session.user_id, kdf)?;
        seal_into(tx, session, ring, &mut row, value, None, Some((id, &ik)))?
    } else {
        let key = puts.key(tx, session)?;
        let dek = seal_into(tx, session, ring, &mut row, value, Some(&key), None)?;
        let counts = puts
            .tally
            .entry((KeyId(key.id), KeyVersion(key.latest_version)))
            .or_default();
        counts.0 += 1;
        counts.1 += value.len() as i64;
        dek
    };
    tx.insert_record(&row).map_err(|e| match e {
        StoreError::Duplicate { .. } => match (&opts.token, &opts.name) {
            (TokenChoice::Custom(t), _)
                if tx
                    .record_by_ref(session.user_id.0, t)
                    .ok()
                    .flatten()
                    .is_some_and(|r| &r.token == t) =>
            {
                Error::Conflict(format!("token '{t}' is taken"))
            }
            (_, Some(n)) => Error::NameTaken(n.clone()),
            (TokenChoice::Custom(t), None) => Error::Conflict(format!("token '{t}' is taken")),
            _ => Error::Conflict("token collision; try again".into()),
        },
        e => e.into(),
    })?;
    ring.rewrap_for_services(tx, session, &row, &dek)?;
    usage(tx, session, &row, UsageOp::DataPut, value.len())?;
    Ok(row)
}

/// The value of version `version` of a loaded record: the record itself, or an earlier
/// version kept in its history.
fn read_version(
    tx: &mut dyn Tx,
    session: &Session,
    ring: &mut Keyring<'_>,
    row: &RecordRow,
    reference: &str,
    version: i64,
) -> Result<Zeroizing<Vec<u8>>> {
    if version == row.version {
        return ring.open(tx, session, row);
    }
    let earlier = tx
        .record_version(row.id, version)?
        .ok_or_else(|| {
            Error::NotFound(if (1..row.version).contains(&version) {
                format!(
                    "version {version} of record '{}' is no longer kept (`zencrypt data history {}` lists what is)",
                    crate::text::printable(reference, 80),
                    crate::text::printable(reference, 80)
                )
            } else {
                format!(
                    "record '{}' has no version {version} (it is at version {})",
                    crate::text::printable(reference, 80),
                    row.version
                )
            })
        })?;
    ring.open(tx, session, &earlier)
}

/// Whether a record is expired at `now`.
pub(crate) fn is_expired(row: &RecordRow, now: i64) -> bool {
    row.expires_at.is_some_and(|e| now >= e)
}

/// Loads a live, unexpired record or explains (exit 5) why it cannot be read.
pub(crate) fn load_readable(
    tx: &mut dyn Tx,
    owner_id: UserId,
    reference: &str,
) -> Result<RecordRow> {
    let row = tx
        .record_by_ref(owner_id.0, reference)?
        .ok_or_else(|| not_found(reference))?;
    if row.deleted_at.is_some() {
        return Err(Error::NotFound(format!(
            "record '{reference}' has been deleted; restore it with `zencrypt data restore {reference}`"
        )));
    }
    if is_expired(&row, duration::now()) {
        return Err(Error::NotFound(format!("record '{reference}' has expired")));
    }
    Ok(row)
}

/// Replaces a loaded record's value inside `tx`: its current state is kept as an earlier
/// version (up to `history` of them), then a new data key seals `value` as version + 1,
/// under the record's key (rotated first if due) or its record password.
pub(crate) fn update_in(
    tx: &mut dyn Tx,
    session: &Session,
    ring: &mut Keyring<'_>,
    mut row: RecordRow,
    value: &[u8],
    history: u32,
) -> Result<RecordRow> {
    check_value_size(value)?;
    let dek = match row.identity_id {
        Some(identity_id) => {
            let identity_id = IdentityId(identity_id);
            let unlocker = ring.unlocker.as_mut().ok_or_else(|| Error::NeedsInput {
                what: "the record password".into(),
                flag: "--password-file FILE (or ZENCRYPT_RECORD_PASSWORD_FILE)".into(),
            })?;
            // Opening the identity may replace one of an older scheme and rewrap the
            // record's data key: the version kept must hold the key as it is now.
            let ik = Key32::from_bytes(*unlocker.key(tx, session.user_id, identity_id)?.expose());
            if history > 0 {
                let kept = RecordRow {
                    wrapped_dek: unlocker
                        .current_dek(RecordId(row.id), &row.wrapped_dek)
                        .to_vec(),
                    ..row.clone()
                };
                tx.insert_record_version(&kept)?;
            }
            seal_into(
                tx,
                session,
                ring,
                &mut row,
                value,
                None,
                Some((identity_id, &ik)),
            )?
        }
        None => {
            if history > 0 {
                tx.insert_record_version(&row)?;
            }
            let current = row.key_id.ok_or_else(|| integrity(row.id))?;
            let name = ring.key_name(tx, KeyId(current))?;
            let key = key_for_put(tx, session, Some(&name))?;
            let dek = seal_into(tx, session, ring, &mut row, value, Some(&key), None)?;
            crate::keys::count_usage(
                tx,
                KeyId(key.id),
                KeyVersion(key.latest_version),
                1,
                value.len() as i64,
            )?;
            dek
        }
    };
    row.version += 1;
    row.updated_at = duration::now();
    tx.update_record(&row)?;
    ring.rewrap_for_services(tx, session, &row, &dek)?;
    crate::sharing::reshare(tx, session, &mut row, &dek, ring.ended_shares.as_mut())?;
    tx.prune_record_versions(row.id, row.version - i64::from(history))?;
    usage(tx, session, &row, UsageOp::DataUpdate, value.len())?;
    Ok(row)
}

/// One version of a record, as `data history` lists it (never its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    /// The version.
    pub version: i64,
    /// Unix seconds it was written.
    pub written_at: i64,
    /// The wrapping key's name and version, for key-wrapped versions.
    pub key: Option<(String, i64)>,
    /// Password-protected.
    pub protected: bool,
    /// Whether it is the record's current version.
    pub current: bool,
}

impl Vault {
    /// A record's versions, the current one first, then the earlier ones kept.
    pub fn data_history(
        &mut self,
        session: &Session,
        reference: &str,
    ) -> Result<(RecordInfo, Vec<VersionInfo>)> {
        self.authorized(
            session,
            Permission::Own,
            AuditAction::DataHistory,
            reference,
            |tx| {
                let row = tx
                    .record_by_ref(session.user_id.0, reference)?
                    .ok_or_else(|| not_found(reference))?;
                let mut ring = Keyring::new(session, None);
                let info = ring.info(tx, &row)?;
                let mut out = Vec::new();
                let earlier = tx.record_versions(row.id)?;
                for (r, current) in
                    std::iter::once((&row, true)).chain(earlier.iter().map(|r| (r, false)))
                {
                    let key = match (r.key_id, r.key_version) {
                        (Some(k), Some(v)) => Some((ring.key_name(tx, KeyId(k))?, v)),
                        _ => None,
                    };
                    out.push(VersionInfo {
                        version: r.version,
                        written_at: r.updated_at,
                        key,
                        protected: r.identity_id.is_some(),
                        current,
                    });
                }
                let n = out.len();
                Ok(((info, out), json!({ "versions": n })))
            },
        )
    }

    /// Reads one version of a live record (the current one or an earlier one kept),
    /// audited and counted like a `data get`.
    pub fn data_get_version(
        &mut self,
        session: &Session,
        reference: &str,
        version: i64,
        password: Option<&SecretString>,
    ) -> Result<(RecordInfo, Zeroizing<Vec<u8>>)> {
        self.authorized(
            session,
            Permission::Own,
            AuditAction::DataGet,
            reference,
            |tx| {
                let row = load_readable(tx, session.user_id, reference)?;
                let mut ring = Keyring::new(session, password);
                let value = read_version(tx, session, &mut ring, &row, reference, version)?;
                usage(tx, session, &row, UsageOp::DataGet, value.len())?;
                let mut info = ring.info(tx, &row)?;
                info.version = version;
                let detail = json!({ "found": 1, "missing": 0, "expired": 0, "version": version });
                Ok(((info, value), detail))
            },
        )
    }

    /// Sets a record back to an earlier version's value, as a new version (the versions
    /// in between stay in the history).
    pub fn data_rollback(
        &mut self,
        session: &Session,
        reference: &str,
        to: i64,
        password: Option<&SecretString>,
    ) -> Result<RecordRow> {
        let history = self.policy.history;
        self.authorized(
            session,
            Permission::Own,
            AuditAction::DataRollback,
            reference,
            |tx| {
                let row = load_readable(tx, session.user_id, reference)?;
                if to == row.version {
                    return Err(Error::Conflict(format!(
                        "record '{reference}' is already at version {to}"
                    )));
                }
                let mut ring = Keyring::new(session, password);
                let value = read_version(tx, session, &mut ring, &row, reference, to)?;
                usage(tx, session, &row, UsageOp::DataGet, value.len())?;
                let row = update_in(tx, session, &mut ring, row, &value, history)?;
                let detail = json!({ "to": to, "version": row.version, "bytes": value.len() });
                Ok((row, detail))
            },
        )
    }

    /// The names of the user's live records, and the tokens of unnamed ones (a read for
    /// shell completion, not audited: the names are the user's own).
    pub fn record_names(&mut self, session: &Session) -> Result<Vec<String>> {
        let mut tx = self.reader(Some(&session.integrity))?;
        let filter = crate::model::RecordFilter {
            deleted: Some(false),
            now: duration::now(),
            order_by: crate::model::RecordOrder::Name,
            ascending: true,
            ..crate::model::RecordFilter::default()
        };
        Ok(tx
            .list_records(session.user_id.0, &filter)?
            .into_iter()
            .map(|r| r.name.unwrap_or(r.token))
            .collect())
    }

    /// Whether a live record of the user has this name (a read, not audited: a form checks
    /// its first answer with it before asking the rest).
    pub fn record_name_taken(&mut self, session: &Session, name: &str) -> Result<bool> {
        let mut tx = self.reader(Some(&session.integrity))?;
        Ok(tx
            .record_by_ref(session.user_id.0, name)?
            .is_some_and(|r| r.name.as_deref() == Some(name) && r.deleted_at.is_none()))
    }

    /// Whether reading these records needs the record password.
    pub fn records_need_password(&mut self, session: &Session, refs: &[String]) -> Result<bool> {
        // A service account reads no protected record.
        if session.service_owner.is_some() {
            return Ok(false);
        }
        let mut tx = self.reader(Some(&session.integrity))?;
        for r in refs {
            if let Some(row) = tx.record_by_ref(session.user_id.0, r)?
                && row.identity_id.is_some()
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Stores a value; `password` protects it with a record password instead of a key.
    pub fn data_put(
        &mut self,
        session: &Session,
        value: &[u8],
        opts: &PutOptions,
        password: Option<&SecretString>,
    ) -> Result<RecordRow> {
        if let Some(p) = password {
            crate::accounts::validate_new_password(p)?;
        }
        let kdf = self.policy.kdf;
        let target = opts.name.clone().unwrap_or_else(|| "-".into());
        self.authorized(
            session,
            Permission::Own,
            AuditAction::DataPut,
            &target,
            |tx| {
                let mut ring = Keyring::new(session, password);
                let mut puts = Puts::new(opts.key.as_deref(), password.is_some());
                let row = put_in(tx, session, &mut ring, value, opts, &mut puts, kdf)?;
                puts.finish(tx)?;
                let detail =
                    json!({ "protected": row.identity_id.is_some(), "bytes": value.len() });
                Ok((row, detail))
            },
        )
    }

    /// Reads records by token or name. Missing, deleted and expired ones are reported,
    /// not fatal; a wrong record password or tampered data is an error.
    pub fn data_get(
        &mut self,
        session: &Session,
        refs: &[String],
        password: Option<&SecretString>,
    ) -> Result<GetOutcome> {
        let target = refs.join(",");
        if session.service_owner.is_some() {
            return self.service_get(session, refs, &target);
        }
        self.authorized(
            session,
            Permission::Own,
            AuditAction::DataGet,
            &target,
            |tx| {
                let mut ring = Keyring::new(session, password);
                let mut out = GetOutcome::default();
                let now = duration::now();
                for r in refs {
                    // OWNER:NAME, or a token of a record shared with this user.
                    let own = if r.contains(':') {
                        None
                    } else {
                        tx.record_by_ref(session.user_id.0, r)?
                    };
                    if own.is_none() {
                        match crate::sharing::read_shared(tx, session, r)? {
                            Some(found) => out.records.push(found),
                            None => out.missing.push(r.clone()),
                        }
                        continue;
                    }
                    match own {
                        None => out.missing.push(r.clone()),
                        Some(row) if row.deleted_at.is_some() => out.deleted.push(r.clone()),
                        Some(row) if is_expired(&row, now) => out.expired.push(r.clone()),
                        Some(row) => {
                            let value = ring.open(tx, session, &row)?;
                            usage(tx, session, &row, UsageOp::DataGet, value.len())?;
                            out.records.push((ring.info(tx, &row)?, value));
                        }
                    }
                }
                let detail = json!({
                    "found": out.records.len(),
                    "missing": out.missing.len() + out.deleted.len(),
                    "expired": out.expired.len(),
                });
                Ok((out, detail))
            },
        )
    }

    /// [`Vault::data_get`] for a service account: its owner's records, those granted to
    /// it only (any other is reported missing, whether it exists or not).
    fn service_get(
        &mut self,
        session: &Session,
        refs: &[String],
        target: &str,
    ) -> Result<GetOutcome> {
        let owner = session
            .service_owner
            .ok_or_else(|| Error::Internal("not a service account".into()))?;
        self.authorized(
            session,
            Permission::Granted,
            AuditAction::DataGet,
            target,
            |tx| {
                let mut out = GetOutcome::default();
                let now = duration::now();
                for r in refs {
                    let Some(row) = tx.record_by_ref(owner.0, r)? else {
                        out.missing.push(r.clone());
                        continue;
                    };
                    let Some(dek) = crate::services::granted_dek(tx, session, &row)? else {
                        out.missing.push(r.clone());
                        continue;
                    };
                    if row.deleted_at.is_some() {
                        out.deleted.push(r.clone());
                    } else if is_expired(&row, now) {
                        out.expired.push(r.clone());
                    } else {
                        let value = open_value(&row, &dek)?;
                        usage(tx, session, &row, UsageOp::DataGet, value.len())?;
                        // The key is the owner's: its name is not the service's to know.
                        out.records.push((record_info(&row, None), value));
                    }
                }
                let detail = json!({
                    "owner_id": owner.0,
                    "found": out.records.len(),
                    "missing": out.missing.len() + out.deleted.len(),
                    "expired": out.expired.len(),
                });
                Ok((out, detail))
            },
        )
    }

    /// Replaces a record's value (new data key, version + 1), optionally only if it is
    /// at `if_version`. A record another user shared with the session user for writing
    /// (`OWNER:NAME`, or its token) gets the value as a signed write its owner's client
    /// takes in (docs/sharing.md, "Write shares"); the result names the owner then.
    pub fn data_update(
        &mut self,
        session: &Session,
        reference: &str,
        value: &[u8],
        if_version: Option<i64>,
        password: Option<&SecretString>,
    ) -> Result<RecordInfo> {
        let history = self.policy.history;
        self.authorized(
            session,
            Permission::Own,
            AuditAction::DataUpdate,
            reference,
            |tx| {
                let own = if reference.contains(':') {
                    None
                } else {
                    tx.record_by_ref(session.user_id.0, reference)?
                };
                if own.is_none()
                    && let Some((w, replaces)) =
                        crate::sharing::write_shared(tx, session, reference, value, if_version)?
                {
                    let detail = json!({
                        "owner": w.owner,
                        "version": w.version,
                        "bytes": value.len(),
                        "replaces_write_by": replaces,
                    });
                    return Ok((w, detail));
                }
                let row = load_readable(tx, session.user_id, reference)?;
                if let Some(v) = if_version
                    && v != row.version
                {
                    return Err(Error::Conflict(format!(
                        "record '{reference}' is at version {}, not {v}",
                        row.version
                    )));
                }
                let mut ring = Keyring::new(session, password);
                let row = update_in(tx, session, &mut ring, row, value, history)?;
                let detail = json!({ "version": row.version, "bytes": value.len() });
                Ok((record_info(&row, None), detail))
            },
        )
    }
}

#[cfg(test)]
mod value_hash_tests {
    use super::*;

    fn row(dek: &Key32, value: &[u8]) -> RecordRow {
        let ciphertext = aead::seal(dek, &value_aad(UserId(1), RecordId(5)), value);
        RecordRow {
            id: 5,
            token: "zt_x".into(),
            owner_id: 1,
            name: None,
            key_id: Some(1),
            key_version: Some(1),
            identity_id: None,
            wrapped_dek: Vec::new(),
            value_hash: Some(value_hash(&ciphertext)),
            share_digest: None,
            ciphertext,
            created_at: 0,
            updated_at: 0,
            expires_at: None,
            deleted_at: None,
            version: 1,
            mac: Vec::new(),
        }
    }

    /// Whoever holds the data key (a share's recipient) can seal another value under it;
    /// the bound hash still refuses the swap.
    #[test]
    fn a_value_sealed_by_another_holder_of_the_data_key_is_refused() {
        let dek = Key32::random();
        let good = row(&dek, b"the owner's value");
        assert_eq!(&open_value(&good, &dek).unwrap()[..], b"the owner's value");
        let forged = RecordRow {
            ciphertext: row(&dek, b"a recipient's value").ciphertext,
            ..good.clone()
        };
        assert_eq!(open_value(&forged, &dek).unwrap_err().exit_code(), 7);
        // Without a bound hash (rows from before), the data key alone decides.
        let old = RecordRow {
            value_hash: None,
            ..forged
        };
        assert_eq!(&open_value(&old, &dek).unwrap()[..], b"a recipient's value");
    }
}
