//! Named keys: versioned 256-bit keys owned by a user, each version's material wrapped
//! under the owner's user key. Lifecycle (create, import, rotate, set, disable, enable,
//! destroy, export) with every event in the key's rotation log (`key_events`).

use serde_json::{Value, json};

use crate::authz::Permission;
use crate::chain::Actor;
use crate::crypto::{Aad, Key32, aead};
use crate::duration;
use crate::error::{Error, Result};
use crate::events::{AuditAction, KeyEventKind, UsageOp};
use crate::ids::{KeyId, KeyVersion, RecordId, UserId};
use crate::model::{KeyEvent, KeyRecord, KeyStatus, KeyVersionRecord, Outcome, UsageEvent};
use crate::storage::{StoreError, Tx};
use crate::vault::{Session, Vault};

/// Encryptions under one version after which it is rotated (AES-GCM random nonces).
pub const ENCRYPTION_LIMIT: i64 = 1 << 31;
/// `key check` reports versions past this share of the limit as near it.
pub const NEAR_LIMIT: i64 = ENCRYPTION_LIMIT / 10 * 9;

/// Options for a new key.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyOptions {
    /// Rotate when the latest version is this many seconds old.
    pub rotate_every: Option<u64>,
    /// Stop encrypting this many seconds from now.
    pub expires_in: Option<u64>,
    /// Allow `key export`.
    pub exportable: bool,
}

/// Changes for `key set`: `Some(None)` clears a setting.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyChanges {
    /// New rotation period.
    pub rotate_every: Option<Option<u64>>,
    /// New expiry, counted from now.
    pub expires_in: Option<Option<u64>>,
    /// New minimum decryption version.
    pub min_decrypt_version: Option<i64>,
}

/// A key as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The stored metadata.
    pub key: KeyRecord,
    /// Rotation is due.
    pub due: bool,
    /// Past its expiry.
    pub expired: bool,
    /// Encryptions under the latest version.
    pub latest_encryptions: i64,
}

/// One version as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    /// Version number.
    pub version: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Messages encrypted under it.
    pub encryptions: i64,
    /// Plaintext bytes encrypted under it.
    pub bytes: i64,
    /// Material wiped.
    pub destroyed: bool,
}

/// The expiry and rotation report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Keys whose rotation is due.
    pub due: Vec<String>,
    /// Keys past their expiry.
    pub expired: Vec<String>,
    /// Keys whose latest version nears the encryption limit.
    pub near_limit: Vec<String>,
}

impl CheckReport {
    /// Whether there is anything to warn about.
    pub fn is_clear(&self) -> bool {
        self.due.is_empty() && self.expired.is_empty() && self.near_limit.is_empty()
    }
}

/// A rotation that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// Key name.
    pub name: String,
    /// The new latest version.
    pub version: i64,
    /// Records whose data keys were moved to the new version.
    pub rewrapped: u64,
}

/// Associated data binding a record's data key to the record and the key version that
/// wraps it.
fn key_dek_aad(owner_id: UserId, record_id: RecordId, key_id: KeyId, version: KeyVersion) -> Aad {
    Aad::new("record-dek-key")
        .int(owner_id)
        .int(record_id)
        .int(key_id)
        .int(version)
}

/// Wraps a record's data key under a named key version (used by rotation's rewrap too).
pub(crate) fn wrap_for_key(
    material: &aead::KeyWrapper,
    owner_id: UserId,
    record_id: RecordId,
    key_id: KeyId,
    version: KeyVersion,
    dek: &Key32,
) -> Vec<u8> {
    material.wrap(&key_dek_aad(owner_id, record_id, key_id, version), dek)
}

/// Unwraps a record's data key from a named key version.
pub(crate) fn unwrap_for_key(
    material: &aead::KeyWrapper,
    owner_id: UserId,
    record_id: RecordId,
    key_id: KeyId,
    version: KeyVersion,
    wrapped: &[u8],
) -> Result<Key32> {
    material
        .unwrap(&key_dek_aad(owner_id, record_id, key_id, version), wrapped)
        .map_err(|_| {
            Error::Integrity(format!(
                "record #{record_id} failed its integrity check (decryption failed): it was modified or moved"
            ))
        })
}

/// Moves the data keys of records under older versions of `key` to its latest version.
/// Only the 32-byte data keys are rewrapped; no value is re-encrypted. Records below the
/// minimum decryption version are left as they are.
pub(crate) fn rewrap_records(tx: &mut dyn Tx, session: &Session, key: &KeyRecord) -> Result<u64> {
    let rows = tx.records_below_version(key.id, key.latest_version)?;
    if rows.is_empty() {
        return Ok(0);
    }
    let (owner, key_id) = (UserId(key.owner_id), KeyId(key.id));
    let latest_version = KeyVersion(key.latest_version);
    let latest = aead::KeyWrapper::new(&material(tx, &session.user_key, key, latest_version)?);
    let rows: Vec<_> = rows
        .into_iter()
        .filter(|r| r.key_version.unwrap_or(0) >= key.min_decrypt_version)
        .collect();
    let mut old = std::collections::HashMap::new();
    for row in &rows {
        let version = KeyVersion(row.key_version.unwrap_or(0));
        if let std::collections::hash_map::Entry::Vacant(slot) = old.entry(version) {
            let m = material(tx, &session.user_key, key, version)?;
            slot.insert(aead::KeyWrapper::new(&m));
        }
    }
    // Unwrapping and wrapping is independent per record: spread over the cores, then
    // written in one pass, in order.
    let rewrapped = crate::parallel::map(&rows, |row| -> Result<Vec<u8>> {
        let (id, version) = (RecordId(row.id), KeyVersion(row.key_version.unwrap_or(0)));
        let dek = unwrap_for_key(&old[&version], owner, id, key_id, version, &row.wrapped_dek)?;
        Ok(wrap_for_key(
            &latest,
            owner,
            id,
            key_id,
            latest_version,
            &dek,
        ))
    });
    let mut n = 0u64;
    for (mut row, wrapped) in rows.into_iter().zip(rewrapped) {
        row.wrapped_dek = wrapped?;
        row.key_version = Some(key.latest_version);
        tx.set_record_dek(&row)?;
        n += 1;
    }
    // One usage event for the rewrap; each rewrapped data key is one more encryption
    // under the new version (random nonces count against its limit).
    count_usage(tx, key_id, latest_version, n as i64, 0)?;
    tx.insert_usage(&UsageEvent {
        at: duration::now(),
        user_id: session.user_id.0,
        key_id: Some(key.id),
        key_version: Some(key.latest_version),
        record_id: None,
        operation: UsageOp::Rewrap.as_str().into(),
        bytes: 0,
        outcome: Outcome::Ok,
    })?;
    log_event(
        tx,
        key.id,
        &session.actor(),
        KeyEventKind::Rewrapped,
        Some(key.latest_version),
        json!({ "records": n }),
    )?;
    Ok(n)
}

/// Checks a key name: 1–64 characters from `[A-Za-z0-9._-]`.
pub fn validate_name(name: &str) -> Result<()> {
    if crate::accounts::is_valid_name(name) {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "invalid key name '{}': use 1-64 characters from A-Z a-z 0-9 . _ -",
            crate::text::printable(name, 64)
        )))
    }
}

/// Associated data binding a version's wrapped material to its owner, key and version.
fn material_aad(owner_id: UserId, key_id: KeyId, version: KeyVersion) -> Aad {
    Aad::new("key-material")
        .int(owner_id)
        .int(key_id)
        .int(version)
}

pub(crate) fn not_found(name: &str) -> Error {
    Error::NotFound(format!("key '{name}' not found"))
}

fn secs(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Whether `key`'s rotation is due, given its latest version's creation time.
fn is_due(key: &KeyRecord, latest_created_at: i64, now: i64) -> bool {
    key.status == KeyStatus::Active
        && key
            .rotation_period
            .is_some_and(|p| now >= latest_created_at.saturating_add(p))
}

fn is_expired(key: &KeyRecord, now: i64) -> bool {
    key.expires_at.is_some_and(|e| now >= e)
}

/// Loads a key by name or fails with exit 5.
pub(crate) fn load(tx: &mut dyn Tx, owner_id: UserId, name: &str) -> Result<KeyRecord> {
    tx.key_by_name(owner_id.0, name)?
        .ok_or_else(|| not_found(name))
}

fn info(tx: &mut dyn Tx, key: KeyRecord, now: i64) -> Result<KeyInfo> {
    let latest = tx.key_version(key.id, key.latest_version)?;
    let (created, encryptions) = latest
        .map(|v| (v.created_at, v.encryptions))
        .unwrap_or((0, 0));
    Ok(KeyInfo {
        due: is_due(&key, created, now),
        expired: is_expired(&key, now),
        latest_encryptions: encryptions,
        key,
    })
}

/// Records a lifecycle event.
pub(crate) fn log_event(
    tx: &mut dyn Tx,
    key_id: i64,
    actor: &Actor,
    event: KeyEventKind,
    version: Option<i64>,
    detail: Value,
) -> Result<()> {
    tx.insert_key_event(
        key_id,
        actor.id.map(i64::from),
        &KeyEvent {
            at: duration::now(),
            event: event.as_str().to_string(),
            version,
            actor: actor.name.clone(),
            detail: detail.to_string(),
        },
    )?;
    Ok(())
}

/// Adds a version holding `material` and makes it the latest.
fn add_version(
    tx: &mut dyn Tx,
    user_key: &Key32,
    key: &mut KeyRecord,
    material: &Key32,
    now: i64,
) -> Result<i64> {
    let version = key.latest_version + 1;
    tx.insert_key_version(&KeyVersionRecord {
        key_id: key.id,
        version,
        wrapped_material: Some(aead::wrap_key(
            user_key,
            &material_aad(UserId(key.owner_id), KeyId(key.id), KeyVersion(version)),
            material,
        )),
        created_at: now,
        mac: Vec::new(),
        encryptions: 0,
        bytes: 0,
    })?;
    key.latest_version = version;
    tx.update_key(key)?;
    Ok(version)
}

/// Inserts a new key holding `material` as version 1 and logs `event` with its settings.
/// Returns the key and the logged detail.
pub(crate) fn insert_new(
    tx: &mut dyn Tx,
    session: &Session,
    name: &str,
    opts: KeyOptions,
    material: &Key32,
    event: KeyEventKind,
) -> Result<(KeyRecord, Value)> {
    let now = duration::now();
    let mut key = KeyRecord {
        id: 0,
        owner_id: session.user_id.0,
        name: name.to_string(),
        status: KeyStatus::Active,
        exportable: opts.exportable,
        rotation_period: opts.rotate_every.map(secs),
        expires_at: opts.expires_in.map(|e| now.saturating_add(secs(e))),
        min_decrypt_version: 1,
        latest_version: 0,
        created_at: now,
        mac: Vec::new(),
        share_digest: None,
    };
    key.id = tx.insert_key(&key).map_err(|e| match e {
        StoreError::Duplicate { .. } => Error::Conflict(format!("key '{name}' already exists")),
        e => e.into(),
    })?;
    add_version(tx, &session.user_key, &mut key, material, now)?;
    let detail = json!({
        "exportable": key.exportable,
        "rotation_period": key.rotation_period.map(|p| duration::format(p as u64)),
        "expires_at": key.expires_at.map(duration::rfc3339),
    });
    log_event(tx, key.id, &session.actor(), event, Some(1), detail.clone())?;
    Ok((key, detail))
}

/// Adds encryptions and plaintext bytes to a key version's counters.
pub(crate) fn count_usage(
    tx: &mut dyn Tx,
    key_id: KeyId,
    version: KeyVersion,
    encryptions: i64,
    bytes: i64,
) -> Result<()> {
    let mut v = tx.key_version(key_id.0, version.0)?.ok_or_else(|| {
        Error::Integrity(format!("key_versions row {key_id}/{version} is missing"))
    })?;
    v.encryptions = v.encryptions.saturating_add(encryptions);
    v.bytes = v.bytes.saturating_add(bytes);
    Ok(tx.update_key_version(&v)?)
}

/// Unwraps one version's material, or explains why it cannot be used.
pub(crate) fn material(
    tx: &mut dyn Tx,
    user_key: &Key32,
    key: &KeyRecord,
    version: KeyVersion,
) -> Result<Key32> {
    let v = tx
        .key_version(key.id, version.0)?
        .ok_or_else(|| Error::NotFound(format!("key '{}' has no version {version}", key.name)))?;
    let wrapped = v
        .wrapped_material
        .ok_or_else(|| Error::Conflict(format!("key '{}' has been destroyed", key.name)))?;
    aead::unwrap_key(
        user_key,
        &material_aad(UserId(key.owner_id), KeyId(key.id), version),
        &wrapped,
    )
    .map_err(|_| {
        Error::Integrity(format!(
            "the material of key '{}' version {version} is damaged",
            key.name
        ))
    })
}

/// Refuses keys that are disabled or destroyed.
pub(crate) fn ensure_usable(key: &KeyRecord) -> Result<()> {
    match key.status {
        KeyStatus::Active => Ok(()),
        KeyStatus::Disabled => Err(Error::Conflict(format!(
            "key '{}' is disabled; run `zencrypt key enable {}`",
            key.name, key.name
        ))),
        KeyStatus::Destroyed => Err(Error::Conflict(format!(
            "key '{}' has been destroyed",
            key.name
        ))),
    }
}

/// Rotates `key` inside `tx`: a new random version becomes the latest.
pub(crate) fn rotate_in(
    tx: &mut dyn Tx,
    session: &Session,
    key: &mut KeyRecord,
    reason: &str,
) -> Result<i64> {
    ensure_usable(key)?;
    let material = Key32::random();
    let version = add_version(tx, &session.user_key, key, &material, duration::now())?;
    // Whoever the key is shared with gets the new version too.
    crate::sharing::reshare_key(tx, session, key, version, &material)?;
    log_event(
        tx,
        key.id,
        &session.actor(),
        KeyEventKind::Rotated,
        Some(version),
        json!({ "reason": reason }),
    )?;
    Ok(version)
}

/// Rotates `key` first when its rotation is due or its latest version reached the
/// encryption limit. Returns the new version when it rotated.
pub(crate) fn rotate_if_needed(
    tx: &mut dyn Tx,
    session: &Session,
    key: &mut KeyRecord,
) -> Result<Option<i64>> {
    match rotation_needed(tx, key, duration::now())? {
        Some(reason) => Ok(Some(rotate_in(tx, session, key, reason)?)),
        None => Ok(None),
    }
}

/// Whether the key must be rotated before its next encryption, and why.
pub(crate) fn rotation_needed(
    tx: &mut dyn Tx,
    key: &KeyRecord,
    now: i64,
) -> Result<Option<&'static str>> {
    let Some(latest) = tx.key_version(key.id, key.latest_version)? else {
        return Ok(None);
    };
    if latest.encryptions >= ENCRYPTION_LIMIT {
        return Ok(Some("encryption-limit"));
    }
    if is_due(key, latest.created_at, now) {
        return Ok(Some("due"));
    }
    Ok(None)
}

impl Vault {
    fn create_key(
        &mut self,
        session: &Session,
        name: &str,
        opts: KeyOptions,
        material: Key32,
        action: AuditAction,
        event: KeyEventKind,
    ) -> Result<KeyInfo> {
        let actor = session.actor();
        if let Err(e) = validate_name(name) {
            self.audit_failure(&actor, action, name, &e);
            return Err(e);
        }
        self.authorized(session, Permission::Own, action, name, |tx| {
            let (key, detail) = insert_new(tx, session, name, opts, &material, event)?;
            Ok((info(tx, key, duration::now())?, detail))
        })
    }

    /// The user's key names, destroyed ones left out (a read for shell completion, not
    /// audited: the names are the user's own).
    pub fn key_names(&mut self, session: &Session) -> Result<Vec<String>> {
        let mut tx = self.reader(Some(&session.integrity))?;
        Ok(tx
            .list_keys(session.user_id.0, false)?
            .into_iter()
            .map(|k| k.name)
            .collect())
    }

    /// Whether the user has a key of this name already (a read, not audited: a form
    /// checks its first answer with it before asking the rest).
    pub fn key_name_taken(&mut self, session: &Session, name: &str) -> Result<bool> {
        let mut tx = self.reader(Some(&session.integrity))?;
        Ok(tx.key_by_name(session.user_id.0, name)?.is_some())
    }

    /// Creates a key with random material.
    pub fn key_create(
        &mut self,
        session: &Session,
        name: &str,
        opts: KeyOptions,
    ) -> Result<KeyInfo> {
        self.require(session, Permission::Own, AuditAction::KeyCreate, name)?;
        self.create_key(
            session,
            name,
            opts,
            Key32::random(),
            AuditAction::KeyCreate,
            KeyEventKind::Created,
        )
    }

    /// Creates a key holding material supplied by the user.
    pub fn key_import(
        &mut self,
        session: &Session,
        name: &str,
        material: Key32,
        exportable: bool,
    ) -> Result<KeyInfo> {
        self.require(session, Permission::Own, AuditAction::KeyImport, name)?;
        let opts = KeyOptions {
            exportable,
            ..KeyOptions::default()
        };
        self.create_key(
            session,
            name,
            opts,
            material,
            AuditAction::KeyImport,
            KeyEventKind::Imported,
        )
    }

    /// The user's keys (destroyed ones with `all`).
    pub fn key_list(&mut self, session: &Session, all: bool) -> Result<Vec<KeyInfo>> {
        let owner = session.user_id;
        self.authorized(session, Permission::Own, AuditAction::KeyList, "-", |tx| {
            let now = duration::now();
            let keys = tx.list_keys(owner.0, all)?;
            let mut out = Vec::with_capacity(keys.len());
            for k in keys {
                out.push(info(tx, k, now)?);
            }
            let n = out.len();
            Ok((out, json!({ "count": n })))
        })
    }

    /// One key with its versions.
    pub fn key_show(
        &mut self,
        session: &Session,
        name: &str,
    ) -> Result<(KeyInfo, Vec<VersionInfo>)> {
        let owner = session.user_id;
        self.authorized(session, Permission::Own, AuditAction::KeyShow, name, |tx| {
            let key = load(tx, owner, name)?;
            let versions = tx
                .key_versions(key.id)?
                .into_iter()
                .map(|v| VersionInfo {
                    version: v.version,
                    created_at: v.created_at,
                    encryptions: v.encryptions,
                    bytes: v.bytes,
                    destroyed: v.wrapped_material.is_none(),
                })
                .collect();
            Ok(((info(tx, key, duration::now())?, versions), json!({})))
        })
    }

    /// A key's lifecycle log.
    pub fn key_history(&mut self, session: &Session, name: &str) -> Result<Vec<KeyEvent>> {
        let owner = session.user_id;
        self.authorized(
            session,
            Permission::Own,
            AuditAction::KeyHistory,
            name,
            |tx| {
                let key = load(tx, owner, name)?;
                Ok((tx.key_events(key.id)?, json!({})))
            },
        )
    }

    /// Rotates one key now; with `rewrap`, moves its records' data keys to the new
    /// version in the same transaction.
    pub fn key_rotate(&mut self, session: &Session, name: &str, rewrap: bool) -> Result<Rotated> {
        let owner = session.user_id;
        self.authorized(
            session,
            Permission::Own,
            AuditAction::KeyRotate,
            name,
            |tx| {
                let mut key = load(tx, owner, name)?;
                let version = rotate_in(tx, session, &mut key, "manual")?;
                let rewrapped = if rewrap {
                    rewrap_records(tx, session, &key)?
                } else {
                    0
                };
                Ok((
                    Rotated {
                        name: key.name,
                        version,
                        rewrapped,
                    },
                    json!({ "version": version, "rewrapped": rewrapped }),
                ))
            },
        )
    }

    /// Rotates exactly the keys whose rotation is due, in one transaction (rewrapping
    /// their records too with `rewrap`).
    pub fn key_rotate_due(&mut self, session: &Session, rewrap: bool) -> Result<Vec<Rotated>> {
        let owner = session.user_id;
        self.authorized(
            session,
            Permission::Own,
            AuditAction::KeyRotate,
            "--due",
            |tx| {
                let now = duration::now();
                let mut done = Vec::new();
                for mut key in tx.list_keys(owner.0, false)? {
                    if key.status == KeyStatus::Active && rotation_needed(tx, &key, now)?.is_some()
                    {
                        let version = rotate_in(tx, session, &mut key, "due")?;
                        let rewrapped = if rewrap {
                            rewrap_records(tx, session, &key)?
                        } else {
                            0
                        };
                        done.push(Rotated {
                            name: key.name,
                            version,
                            rewrapped,
                        });
                    }
                }
                let names: Vec<&str> = done.iter().map(|r| r.name.as_str()).collect();
                let detail = json!({ "rotated": names });
                Ok((done, detail))
            },
        )
    }

    /// Which keys are due for rotation, expired or near the encryption limit.
    pub fn key_check(&mut self, session: &Session) -> Result<CheckReport> {
        let owner = session.user_id;
        self.authorized(session, Permission::Own, AuditAction::KeyCheck, "-", |tx| {
            let report = check_in(tx, owner)?;
            let detail = json!({
                "due": report.due.len(),
                "expired": report.expired.len(),
                "near_limit": report.near_limit.len(),
            });
            Ok((report, detail))
        })
    }

    /// The check report without an audit record (for the shell's menu warning).
    pub fn key_warnings(&mut self, session: &Session) -> Result<CheckReport> {
        let mut tx = self.reader(Some(&session.integrity))?;
        check_in(&mut tx, session.user_id)
    }

    /// Changes a key's rotation period, expiry or minimum decryption version.
    pub fn key_set(
        &mut self,
        session: &Session,
        name: &str,
        changes: KeyChanges,
    ) -> Result<KeyInfo> {
        let owner = session.user_id;
        let actor = session.actor();
        self.authorized(session, Permission::Own, AuditAction::KeySet, name, |tx| {
            let now = duration::now();
            let mut key = load(tx, owner, name)?;
            if key.status == KeyStatus::Destroyed {
                return Err(Error::Conflict(format!("key '{name}' has been destroyed")));
            }
            let mut detail = serde_json::Map::new();
            if let Some(p) = changes.rotate_every {
                key.rotation_period = p.map(secs);
                detail.insert("rotation_period".into(), json!(p.map(duration::format)));
            }
            if let Some(e) = changes.expires_in {
                key.expires_at = e.map(|e| now.saturating_add(secs(e)));
                detail.insert("expires_at".into(), json!(key.expires_at.map(duration::rfc3339)));
            }
            if !detail.is_empty() {
                log_event(tx, key.id, &actor, KeyEventKind::SettingsChanged, None, Value::Object(detail.clone()))?;
            }
            if let Some(v) = changes.min_decrypt_version {
                if v < 1 || v > key.latest_version {
                    return Err(Error::Usage(format!(
                        "--min-decrypt-version must be between 1 and {} (the latest version of '{name}')",
                        key.latest_version
                    )));
                }
                let from = key.min_decrypt_version;
                key.min_decrypt_version = v;
                crate::services::forget_key(tx, owner.0, key.id, v)?;
                crate::sharing::end_shares_of_key(tx, owner.0, key.id, v)?;
                crate::sharing::end_key_shares(tx, &mut key, Some(v))?;
                log_event(tx, key.id, &actor, KeyEventKind::MinDecryptionChanged, Some(v), json!({ "from": from }))?;
                detail.insert("min_decrypt_version".into(), json!(v));
            }
            tx.update_key(&key)?;
            Ok((info(tx, key, now)?, Value::Object(detail)))
        })
    }

    /// Prints nothing itself: returns an exportable key's material (latest or `version`).
    pub fn key_export(
        &mut self,
        session: &Session,
        name: &str,
        version: Option<i64>,
    ) -> Result<(i64, Key32)> {
        let owner = session.user_id;
        let actor = session.actor();
        let user_id = session.user_id.0;
        self.authorized(
            session,
            Permission::Own,
            AuditAction::KeyExport,
            name,
            |tx| {
                let key = load(tx, owner, name)?;
                if !key.exportable {
                    return Err(Error::Conflict(format!(
                        "key '{name}' is not exportable (it was created without --exportable)"
                    )));
                }
                ensure_usable(&key)?;
                let v = version.unwrap_or(key.latest_version);
                let m = material(tx, &session.user_key, &key, KeyVersion(v))?;
                log_event(
                    tx,
                    key.id,
                    &actor,
                    KeyEventKind::Exported,
                    Some(v),
                    json!({}),
                )?;
                tx.insert_usage(&UsageEvent {
                    at: duration::now(),
                    user_id,
                    key_id: Some(key.id),
                    key_version: Some(v),
                    record_id: None,
                    operation: UsageOp::Export.as_str().into(),
                    bytes: 32,
                    outcome: Outcome::Ok,
                })?;
                Ok(((v, m), json!({ "version": v })))
            },
        )
    }

    /// Disables or re-enables a key.
    pub fn key_set_enabled(&mut self, session: &Session, name: &str, enabled: bool) -> Result<()> {
        let owner = session.user_id;
        let actor = session.actor();
        let (action, event, status) = if enabled {
            (
                AuditAction::KeyEnable,
                KeyEventKind::Enabled,
                KeyStatus::Active,
            )
        } else {
            (
                AuditAction::KeyDisable,
                KeyEventKind::Disabled,
                KeyStatus::Disabled,
            )
        };
        self.authorized(session, Permission::Own, action, name, |tx| {
            let mut key = load(tx, owner, name)?;
            if key.status == KeyStatus::Destroyed {
                return Err(Error::Conflict(format!("key '{name}' has been destroyed")));
            }
            key.status = status;
            if !enabled {
                crate::sharing::end_key_shares(tx, &mut key, None)?;
            }
            tx.update_key(&key)?;
            if enabled {
                let id = key.id;
                crate::services::renew_records(tx, session, |r| r.key_id == Some(id))?;
            } else {
                crate::services::forget_key(tx, owner.0, key.id, i64::MAX)?;
                crate::sharing::end_shares_of_key(tx, owner.0, key.id, i64::MAX)?;
            }
            log_event(tx, key.id, &actor, event, None, json!({}))?;
            Ok(((), json!({})))
        })
    }

    /// Wipes every version's material: data under the key becomes unrecoverable.
    pub fn key_destroy(&mut self, session: &Session, name: &str) -> Result<i64> {
        let owner = session.user_id;
        let actor = session.actor();
        self.authorized(
            session,
            Permission::Own,
            AuditAction::KeyDestroy,
            name,
            |tx| {
                let mut key = load(tx, owner, name)?;
                if key.status == KeyStatus::Destroyed {
                    return Err(Error::Conflict(format!(
                        "key '{name}' has already been destroyed"
                    )));
                }
                for mut v in tx.key_versions(key.id)? {
                    v.wrapped_material = None;
                    tx.update_key_version(&v)?;
                }
                key.status = KeyStatus::Destroyed;
                crate::sharing::end_key_shares(tx, &mut key, None)?;
                tx.update_key(&key)?;
                crate::services::forget_key(tx, owner.0, key.id, i64::MAX)?;
                crate::sharing::end_shares_of_key(tx, owner.0, key.id, i64::MAX)?;
                let versions = key.latest_version;
                log_event(
                    tx,
                    key.id,
                    &actor,
                    KeyEventKind::Destroyed,
                    None,
                    json!({ "versions": versions }),
                )?;
                Ok((versions, json!({ "versions": versions })))
            },
        )
    }
}

fn check_in(tx: &mut dyn Tx, owner: UserId) -> Result<CheckReport> {
    let now = duration::now();
    let mut report = CheckReport::default();
    for key in tx.list_keys(owner.0, false)? {
        let i = info(tx, key, now)?;
        if i.key.status != KeyStatus::Active {
            continue;
        }
        if i.due {
            report.due.push(i.key.name.clone());
        }
        if i.expired {
            report.expired.push(i.key.name.clone());
        }
        if i.latest_encryptions >= NEAR_LIMIT {
            report.near_limit.push(i.key.name.clone());
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::ImportItem;
    use secrecy::SecretString;

    /// A vault with alice logged in and a key `k`, whose latest version has `used`
    /// encryptions (set the way zencrypt itself counts, so its binding stays valid).
    fn near_limit(dir: &std::path::Path, used: i64) -> (Vault, Session) {
        let mut vault = crate::vault::test_vault(&dir.join("z.db"));
        let pw = SecretString::from("password-123");
        let token = vault.signup("alice", &pw, None).unwrap().token;
        let session = vault.authenticate(&token).unwrap();
        vault
            .key_create(&session, "k", KeyOptions::default())
            .unwrap();
        vault
            .authorized(&session, Permission::Own, AuditAction::KeySet, "k", |tx| {
                let key = load(tx, session.user_id, "k")?;
                count_usage(tx, KeyId(key.id), KeyVersion(1), used, 0)?;
                Ok(((), json!({})))
            })
            .unwrap();
        (vault, session)
    }

    #[test]
    fn a_version_at_the_encryption_limit_is_rotated_before_the_next_use() {
        let dir = tempfile::tempdir().unwrap();
        let (mut vault, session) = near_limit(dir.path(), ENCRYPTION_LIMIT);
        assert_eq!(vault.key_check(&session).unwrap().near_limit, ["k"]);
        let mut sealed = Vec::new();
        vault
            .encrypt_stream(
                &session,
                "k",
                &mut &b"x"[..],
                &mut sealed,
                false,
                &mut |_| {},
            )
            .unwrap();
        // The header's key version (after magic, format and key id).
        assert_eq!(u32::from_be_bytes(sealed[13..17].try_into().unwrap()), 2);
        let events = vault.key_history(&session, "k").unwrap();
        assert_eq!(events[1].event, "rotated");
        assert!(
            events[1].detail.contains("\"encryption-limit\""),
            "{}",
            events[1].detail
        );
    }

    #[test]
    fn an_import_rotates_the_key_when_it_reaches_the_encryption_limit() {
        let dir = tempfile::tempdir().unwrap();
        let (mut vault, session) = near_limit(dir.path(), ENCRYPTION_LIMIT - 2);
        let items: Vec<ImportItem> = (0..5)
            .map(|i| ImportItem {
                name: None,
                value: zeroize::Zeroizing::new(format!("v{i}").into_bytes()),
                expires_in: None,
            })
            .collect();
        assert_eq!(
            vault
                .data_import(&session, &items, Some("k"), None)
                .unwrap(),
            5
        );
        let (_, versions) = vault.key_show(&session, "k").unwrap();
        let counts: Vec<(i64, i64)> = versions
            .iter()
            .map(|v| (v.version, v.encryptions))
            .collect();
        assert_eq!(counts, [(1, ENCRYPTION_LIMIT), (2, 3)]);
        let (exported, _) = vault.data_export(&session, false, None).unwrap();
        let values: Vec<&[u8]> = exported.iter().map(|(_, v)| &v[..]).collect();
        assert_eq!(values, [&b"v0"[..], b"v1", b"v2", b"v3", b"v4"]);
    }

    fn key(period: Option<i64>, expires: Option<i64>) -> KeyRecord {
        KeyRecord {
            id: 1,
            owner_id: 1,
            name: "k".into(),
            status: KeyStatus::Active,
            exportable: false,
            rotation_period: period,
            expires_at: expires,
            min_decrypt_version: 1,
            latest_version: 1,
            created_at: 0,
            mac: Vec::new(),
            share_digest: None,
        }
    }

    #[test]
    fn due_when_the_latest_version_is_as_old_as_the_period() {
        assert!(!is_due(&key(Some(100), None), 1000, 1099));
        assert!(is_due(&key(Some(100), None), 1000, 1100));
        assert!(!is_due(&key(None, None), 0, i64::MAX));
        let mut disabled = key(Some(1), None);
        disabled.status = KeyStatus::Disabled;
        assert!(!is_due(&disabled, 0, 10));
    }

    #[test]
    fn expired_at_the_expiry_time() {
        assert!(!is_expired(&key(None, Some(50)), 49));
        assert!(is_expired(&key(None, Some(50)), 50));
        assert!(!is_expired(&key(None, None), i64::MAX));
    }

    #[test]
    fn names() {
        assert!(validate_name("prod.db-key_2").is_ok());
        assert_eq!(
            validate_name("a b").unwrap_err().to_string(),
            "invalid key name 'a b': use 1-64 characters from A-Z a-z 0-9 . _ -"
        );
        assert!(validate_name("").is_err());
        assert!(validate_name(&"k".repeat(65)).is_err());
    }
}
