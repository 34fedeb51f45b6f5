//! Password identities: records protected by a record password share one identity per
//! password. The identity key is wrapped under a key-encryption key made from
//! argon2id(password, salt) *and* the owner's user key, so the database file and the
//! record password alone open nothing. An owner's identities share the salt, so one KDF
//! run tries a password against all of them, a batch read of N records costs one KDF, and
//! changing the password rewraps one key.
//!
//! An identity from before the user key was part of the KEK (scheme 1) is replaced the
//! first time its password opens it: a new identity key under the current scheme, and the
//! data keys of its records rewrapped under it, so a copy of the file from before opens
//! nothing written since.

use std::collections::HashMap;

use secrecy::{ExposeSecret, SecretString};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::crypto::kdf::{self, KdfParams, SALT_LEN};
use crate::crypto::{Aad, Key32, aead, random_bytes};
use crate::duration;
use crate::error::{Error, Result};
use crate::ids::{IdentityId, RecordId, UserId};
use crate::model::IdentityRow;
use crate::storage::Tx;

fn aad(owner_id: UserId) -> Aad {
    Aad::new("password-identity").int(owner_id)
}

/// The KEK scheme of new identities: argon2id(password, salt) and the user key.
pub const CURRENT_SCHEME: i64 = 2;

fn stretched(password: &SecretString, salt: &[u8], params: KdfParams) -> Result<Key32> {
    kdf::derive_key(params, password.expose_secret().as_bytes(), salt)
        .map_err(|e| Error::Internal(format!("key derivation failed: {e}")))
}

/// The KEK of `scheme` from the stretched password: scheme 1 is the stretched password
/// itself; scheme 2 mixes in the user key, which only the owner's sessions hold.
fn kek_of(scheme: i64, stretched: &Key32, user_key: &Key32) -> Result<Key32> {
    match scheme {
        1 => Ok(Key32::from_bytes(*stretched.expose())),
        2 => {
            let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(user_key.expose())
                .expect("HMAC accepts keys of any length");
            m.update(b"zencrypt record-password kek v2");
            m.update(stretched.expose());
            let mut out = [0u8; 32];
            out.copy_from_slice(&m.finalize().into_bytes());
            Ok(Key32::from_bytes(out))
        }
        _ => Err(Error::Integrity(format!(
            "a password identity uses an unknown key scheme ({scheme})"
        ))),
    }
}

/// Whether `stored` costs at least as much as `wanted` in every parameter.
fn at_least(stored: KdfParams, wanted: KdfParams) -> bool {
    stored.m_kib >= wanted.m_kib && stored.t >= wanted.t && stored.p >= wanted.p
}

/// Identity keys unlocked by one password, with the KDF runs cached per salt and cost.
pub struct Unlocker<'a> {
    password: &'a SecretString,
    user_key: &'a Key32,
    stretched: HashMap<(Vec<u8>, u32, u32, u32), Key32>,
    unlocked: HashMap<IdentityId, Key32>,
    /// Records whose data keys moved to a replaced identity in this transaction.
    rewrapped: HashMap<RecordId, Vec<u8>>,
}

impl<'a> Unlocker<'a> {
    /// An unlocker for `password`, in a session holding `user_key`.
    pub fn new(password: &'a SecretString, user_key: &'a Key32) -> Self {
        Unlocker {
            password,
            user_key,
            stretched: HashMap::new(),
            unlocked: HashMap::new(),
            rewrapped: HashMap::new(),
        }
    }

    fn kek_for(&mut self, row: &IdentityRow) -> Result<Key32> {
        let k = (row.salt.clone(), row.kdf.m_kib, row.kdf.t, row.kdf.p);
        if !self.stretched.contains_key(&k) {
            let derived = stretched(self.password, &row.salt, row.kdf)?;
            self.stretched.insert(k.clone(), derived);
        }
        kek_of(row.kek_scheme, &self.stretched[&k], self.user_key)
    }

    /// Opens an identity; one of an older scheme is rewrapped under the current one.
    fn try_unlock(&mut self, tx: &mut dyn Tx, row: &IdentityRow) -> Result<Option<Key32>> {
        let (owner, identity) = (UserId(row.owner_id), IdentityId(row.id));
        let kek = self.kek_for(row)?;
        let Ok(key) = aead::unwrap_key(&kek, &aad(owner), &row.wrapped_identity_key) else {
            return Ok(None);
        };
        if row.kek_scheme == CURRENT_SCHEME {
            return Ok(Some(key));
        }
        // An identity of an older scheme: whoever kept a copy of the file from before can
        // open its key with the record password alone, so it is replaced, not rewrapped,
        // and the data keys of its records move to the new one.
        let fresh = Key32::random();
        for mut record in tx.records_of_identity(row.id)? {
            let record_aad = super::identity_dek_aad(owner, RecordId(record.id), identity);
            let dek = aead::unwrap_key(&key, &record_aad, &record.wrapped_dek).map_err(|_| {
                Error::Integrity(format!(
                    "record #{} failed its integrity check (decryption failed): it was modified or moved",
                    record.id
                ))
            })?;
            record.wrapped_dek = aead::wrap_key(&fresh, &record_aad, &dek);
            tx.set_record_dek(&record)?;
            self.rewrapped
                .insert(RecordId(record.id), record.wrapped_dek);
        }
        let mut upgraded = row.clone();
        upgraded.kek_scheme = CURRENT_SCHEME;
        upgraded.wrapped_identity_key =
            aead::wrap_key(&self.kek_for(&upgraded)?, &aad(owner), &fresh);
        tx.update_identity(&upgraded)?;
        Ok(Some(fresh))
    }

    /// The identity key of `identity_id`, or "invalid password" (exit 3).
    pub fn key(
        &mut self,
        tx: &mut dyn Tx,
        owner_id: UserId,
        identity_id: IdentityId,
    ) -> Result<&Key32> {
        if !self.unlocked.contains_key(&identity_id) {
            let row = tx
                .identities(owner_id.0)?
                .into_iter()
                .find(|r| r.id == identity_id.0)
                .ok_or_else(|| {
                    Error::Integrity("a record's password identity is missing".into())
                })?;
            let key = self.try_unlock(tx, &row)?.ok_or(Error::InvalidPassword)?;
            self.unlocked.insert(identity_id, key);
        }
        Ok(&self.unlocked[&identity_id])
    }

    /// The wrapped data key a record holds now: `stored`, unless opening its identity
    /// replaced it in this transaction.
    pub fn current_dek<'s>(&'s self, record_id: RecordId, stored: &'s [u8]) -> &'s [u8] {
        self.rewrapped.get(&record_id).map_or(stored, Vec::as_slice)
    }

    /// The owner's identity this password opens, if any.
    pub fn find(
        &mut self,
        tx: &mut dyn Tx,
        owner_id: UserId,
    ) -> Result<Option<(IdentityRow, Key32)>> {
        for row in tx.identities(owner_id.0)? {
            if let Some(key) = self.try_unlock(tx, &row)? {
                return Ok(Some((row, key)));
            }
        }
        Ok(None)
    }

    /// The identity this password opens, created if there is none yet. Returns its id
    /// and key.
    pub fn find_or_create(
        &mut self,
        tx: &mut dyn Tx,
        owner_id: UserId,
        params: KdfParams,
    ) -> Result<(IdentityId, Key32)> {
        if let Some((row, key)) = self.find(tx, owner_id)? {
            let id = IdentityId(row.id);
            self.unlocked.insert(id, Key32::from_bytes(*key.expose()));
            return Ok((id, key));
        }
        // Share the salt of an existing identity (one KDF tries them all), but never
        // adopt stored parameters cheaper than the configured cost.
        let existing = tx.identities(owner_id.0)?;
        let (salt, params) = match existing.iter().find(|r| at_least(r.kdf, params)) {
            Some(r) => (r.salt.clone(), r.kdf),
            None => (random_bytes::<SALT_LEN>().to_vec(), params),
        };
        let identity_key = Key32::random();
        let mut row = IdentityRow {
            id: 0,
            owner_id: owner_id.0,
            salt,
            kdf: params,
            wrapped_identity_key: Vec::new(),
            created_at: duration::now(),
            kek_scheme: CURRENT_SCHEME,
            mac: Vec::new(),
        };
        row.wrapped_identity_key =
            aead::wrap_key(&self.kek_for(&row)?, &aad(owner_id), &identity_key);
        let id = IdentityId(tx.insert_identity(&row)?);
        self.unlocked
            .insert(id, Key32::from_bytes(*identity_key.expose()));
        Ok((id, identity_key))
    }
}

/// Rewraps the identity that `old` opens under `new`: O(1) in the number of records.
/// Returns the identity id.
pub fn rekey(
    tx: &mut dyn Tx,
    owner_id: UserId,
    user_key: &Key32,
    old: &SecretString,
    new: &SecretString,
) -> Result<IdentityId> {
    let mut unlocker = Unlocker::new(old, user_key);
    let (mut row, key) = unlocker.find(tx, owner_id)?.ok_or(Error::InvalidPassword)?;
    row.kek_scheme = CURRENT_SCHEME;
    let kek = kek_of(
        CURRENT_SCHEME,
        &stretched(new, &row.salt, row.kdf)?,
        user_key,
    )?;
    row.wrapped_identity_key = aead::wrap_key(&kek, &aad(owner_id), &key);
    tx.update_identity(&row)?;
    Ok(IdentityId(row.id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Storage;

    /// The file and the record password alone open nothing: the identity's KEK also
    /// needs the owner's user key.
    #[test]
    fn the_record_password_alone_opens_no_identity() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("z.db");
        let mut vault = crate::vault::test_vault(&db);
        let pw = SecretString::from("password-123");
        let token = vault.signup("alice", &pw, None).unwrap().token;
        let session = vault.authenticate(&token).unwrap();
        let record_pw = SecretString::from("record-password-1");
        let opts = crate::records::PutOptions::default();
        vault
            .data_put(&session, b"v", &opts, Some(&record_pw))
            .unwrap();
        drop(vault);
        let mut store = crate::sqlite_backend::SqliteStore::open(&db).unwrap();
        let mut tx = store.read().unwrap();
        let rows = tx.identities(session.user_id.0).unwrap();
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row.kek_scheme, CURRENT_SCHEME);
        let s = stretched(&record_pw, &row.salt, row.kdf).unwrap();
        let open = |kek: &Key32| {
            aead::unwrap_key(kek, &aad(UserId(row.owner_id)), &row.wrapped_identity_key).is_ok()
        };
        assert!(!open(&s), "the stretched password alone");
        assert!(
            !open(&kek_of(2, &s, &Key32::random()).unwrap()),
            "another user key"
        );
        assert!(open(&kek_of(2, &s, &session.user_key).unwrap()));
    }

    #[test]
    fn stored_costs_below_the_configured_one_are_not_adopted() {
        let cheap = KdfParams {
            m_kib: 8,
            t: 1,
            p: 1,
        };
        let wanted = KdfParams {
            m_kib: 64,
            t: 1,
            p: 1,
        };
        assert!(!at_least(cheap, wanted));
        assert!(at_least(wanted, wanted));
        assert!(!at_least(
            KdfParams {
                m_kib: 64,
                t: 0,
                p: 1
            },
            wanted
        ));
    }
}
