//! Password identities: records protected by a record password share one identity per
//! password. The identity key is wrapped under argon2id(password, salt); an owner's
//! identities share the salt, so one KDF run tries a password against all of them, a
//! batch read of N records costs one KDF, and changing the password rewraps one key.

use std::collections::HashMap;

use secrecy::{ExposeSecret, SecretString};

use crate::crypto::kdf::{self, KdfParams, SALT_LEN};
use crate::crypto::{Aad, Key32, aead, random_bytes};
use crate::duration;
use crate::error::{Error, Result};
use crate::model::IdentityRow;
use crate::storage::Tx;

fn aad(owner_id: i64) -> Aad {
    Aad::new("password-identity").int(owner_id)
}

fn kek(password: &SecretString, salt: &[u8], params: KdfParams) -> Result<Key32> {
    kdf::derive_key(params, password.expose_secret().as_bytes(), salt)
        .map_err(|e| Error::Internal(format!("key derivation failed: {e}")))
}

/// Identity keys unlocked by one password, with the KDF runs cached per salt and cost.
pub struct Unlocker<'a> {
    password: &'a SecretString,
    keks: HashMap<(Vec<u8>, u32, u32, u32), Key32>,
    unlocked: HashMap<i64, Key32>,
}

impl<'a> Unlocker<'a> {
    /// An unlocker for `password`.
    pub fn new(password: &'a SecretString) -> Self {
        Unlocker {
            password,
            keks: HashMap::new(),
            unlocked: HashMap::new(),
        }
    }

    fn kek_for(&mut self, row: &IdentityRow) -> Result<&Key32> {
        let k = (row.salt.clone(), row.kdf.m_kib, row.kdf.t, row.kdf.p);
        if !self.keks.contains_key(&k) {
            let derived = kek(self.password, &row.salt, row.kdf)?;
            self.keks.insert(k.clone(), derived);
        }
        Ok(&self.keks[&k])
    }

    fn try_unlock(&mut self, row: &IdentityRow) -> Result<Option<Key32>> {
        let kek = self.kek_for(row)?;
        Ok(aead::unwrap_key(kek, &aad(row.owner_id), &row.wrapped_identity_key).ok())
    }

    /// The identity key of `identity_id`, or "invalid password" (exit 3).
    pub fn key(&mut self, tx: &mut dyn Tx, owner_id: i64, identity_id: i64) -> Result<&Key32> {
        if !self.unlocked.contains_key(&identity_id) {
            let row = tx
                .identities(owner_id)?
                .into_iter()
                .find(|r| r.id == identity_id)
                .ok_or_else(|| {
                    Error::Integrity("a record's password identity is missing".into())
                })?;
            let key = self.try_unlock(&row)?.ok_or(Error::InvalidPassword)?;
            self.unlocked.insert(identity_id, key);
        }
        Ok(&self.unlocked[&identity_id])
    }

    /// The owner's identity this password opens, if any.
    pub fn find(&mut self, tx: &mut dyn Tx, owner_id: i64) -> Result<Option<(IdentityRow, Key32)>> {
        for row in tx.identities(owner_id)? {
            if let Some(key) = self.try_unlock(&row)? {
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
        owner_id: i64,
        params: KdfParams,
    ) -> Result<(i64, Key32)> {
        if let Some((row, key)) = self.find(tx, owner_id)? {
            self.unlocked
                .insert(row.id, Key32::from_bytes(*key.expose()));
            return Ok((row.id, key));
        }
        let existing = tx.identities(owner_id)?;
        let (salt, params) = match existing.first() {
            Some(r) => (r.salt.clone(), r.kdf),
            None => (random_bytes::<SALT_LEN>().to_vec(), params),
        };
        let identity_key = Key32::random();
        let mut row = IdentityRow {
            id: 0,
            owner_id,
            salt,
            kdf: params,
            wrapped_identity_key: Vec::new(),
            created_at: duration::now(),
        };
        row.wrapped_identity_key =
            aead::wrap_key(self.kek_for(&row)?, &aad(owner_id), &identity_key);
        let id = tx.insert_identity(&row)?;
        self.unlocked
            .insert(id, Key32::from_bytes(*identity_key.expose()));
        Ok((id, identity_key))
    }
}

/// Rewraps the identity that `old` opens under `new`: O(1) in the number of records.
/// Returns the identity id.
pub fn rekey(
    tx: &mut dyn Tx,
    owner_id: i64,
    old: &SecretString,
    new: &SecretString,
) -> Result<i64> {
    let mut unlocker = Unlocker::new(old);
    let (mut row, key) = unlocker.find(tx, owner_id)?.ok_or(Error::InvalidPassword)?;
    row.wrapped_identity_key = aead::wrap_key(&kek(new, &row.salt, row.kdf)?, &aad(owner_id), &key);
    tx.update_identity(&row)?;
    Ok(row.id)
}
