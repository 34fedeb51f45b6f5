//! Named keys shared with other users (docs/sharing.md, "Shared keys"): every version that
//! may still decrypt wrapped to the recipient's pinned key and signed; each rotation wraps
//! the new version; the key row binds the digest of its grants.

use super::*;

/// What `key share` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyShared {
    /// The key's name.
    pub name: String,
    /// The recipient: a user name, or `@group`.
    pub with: String,
    /// The recipient's fingerprint, as pinned (a group's: its current key's).
    pub fingerprint: Fingerprint,
    /// Whether the recipient's key was pinned just now.
    pub pinned_now: bool,
    /// The versions given (every version that may still decrypt).
    pub versions: Vec<i64>,
    /// Whether they may also encrypt with it.
    pub write: bool,
    /// Whether an existing share's access was changed (rather than a new share made).
    pub changed: bool,
}

/// The grant the owner signs once per shared key: who (a user, or a group whatever its
/// epoch) may decrypt with which key.
fn key_grant_message(
    key_id: i64,
    owner_id: i64,
    to: Grantee,
    can_write: bool,
    created_at: i64,
) -> Vec<u8> {
    let (label, id) = match to {
        Grantee::User(id) => ("zencrypt key grant v1", id),
        Grantee::Group { id, .. } => ("zencrypt key group grant v1", id),
    };
    Aad::new(label)
        .int(key_id)
        .int(owner_id)
        .int(id)
        .field(if can_write { "encrypt" } else { "decrypt" })
        .int(created_at)
        .as_bytes()
        .to_vec()
}

/// What the owner signs per shared version.
fn key_share_message(s: &KeyShare, recipient: &Fingerprint) -> Vec<u8> {
    use sha2::{Digest as _, Sha256};
    let a = match s.to {
        Grantee::User(id) => Aad::new("zencrypt key share v1")
            .int(s.key_id)
            .field(&s.key_name)
            .int(s.owner_id)
            .int(id),
        Grantee::Group { id, epoch } => Aad::new("zencrypt key group share v1")
            .int(s.key_id)
            .field(&s.key_name)
            .int(s.owner_id)
            .int(id)
            .int(epoch),
    };
    let a = a
        .field(recipient.0)
        .int(s.version)
        .field(Sha256::digest(&s.wrapped_material))
        .int(s.created_at);
    // Appended only for a write grant, so read shares keep their signatures.
    if s.can_write { a.field("encrypt") } else { a }
        .as_bytes()
        .to_vec()
}

/// The digest of a key's grants, bound in the key row.
fn key_share_digest(shares: &[KeyShare]) -> Option<Vec<u8>> {
    grants_digest(
        "zencrypt key shares v1",
        shares.iter().map(|s| (s.to, s.created_at, s.can_write)),
    )
}

fn key_shares_changed(key: &KeyRecord) -> Error {
    Error::Integrity(format!(
        "the shares of key '{}' are not the ones you made: a share was added or put back \
         outside zencrypt (restore the database from a backup)",
        key.name
    ))
}

/// Wraps one version's material for a recipient and signs it.
fn make_key_share(
    owner: &Keypair,
    key: &KeyRecord,
    version: i64,
    material: &Key32,
    to: &Wrapping,
    created_at: i64,
    can_write: bool,
) -> Result<KeyShare> {
    let wrapped = wrap_key_to_recipient(&to.recipient, material)?;
    let mut share = KeyShare {
        id: 0,
        key_id: key.id,
        key_name: key.name.clone(),
        owner_id: key.owner_id,
        to: to.to,
        version,
        can_write,
        wrapped_material: wrapped,
        signature: Vec::new(),
        grant_signature: owner
            .sign(&key_grant_message(
                key.id,
                key.owner_id,
                to.to,
                can_write,
                created_at,
            ))
            .to_vec(),
        created_at,
    };
    share.signature = owner
        .sign(&key_share_message(&share, &to.fingerprint))
        .to_vec();
    Ok(share)
}

/// The grants of a key, each checked against the key row and the owner's signature and
/// pins, with the key each is wrapped to now (`None`: a disabled recipient or group
/// manager, suspended). Reads only; a grant that fails refuses (exit 7).
fn checked_grants(
    tx: &mut dyn Tx,
    session: &Session,
    key: &KeyRecord,
) -> Result<Vec<(KeyShare, Option<Wrapping>)>> {
    let shares = tx.key_shares(Some(key.id), None)?;
    if key_share_digest(&shares) != key.share_digest {
        return Err(key_shares_changed(key));
    }
    if shares.is_empty() {
        return Ok(Vec::new());
    }
    let (me, _) = own_keypair(tx, session)?;
    let mut out: Vec<(KeyShare, Option<Wrapping>)> = Vec::new();
    for g in shares {
        if out
            .last()
            .is_some_and(|(last, _)| last.to.who() == g.to.who())
        {
            continue;
        }
        if g.owner_id != key.owner_id
            || !me.public().verifies(
                &key_grant_message(key.id, key.owner_id, g.to, g.can_write, g.created_at),
                &g.grant_signature,
            )
        {
            return Err(key_shares_changed(key));
        }
        let target = current_target(tx, session, g.to, &format!("key '{}'", key.name))?;
        out.push((g, target));
    }
    Ok(out)
}

/// Whether [`reshare_key`] would wrap a new version of `key` for every grant (see
/// [`checked_grants`]); a database error is returned.
pub(crate) fn can_reshare_key(tx: &mut dyn Tx, session: &Session, key: &KeyRecord) -> Result<bool> {
    match checked_grants(tx, session, key) {
        Ok(_) => Ok(true),
        Err(e @ Error::Database { .. }) => Err(e),
        Err(_) => Ok(false),
    }
}

/// Wraps a key's new version for every user and group the key is shared with (at its
/// rotation), each grant checked (see [`checked_grants`]); a grant that fails refuses the
/// rotation (exit 7). A disabled recipient or group manager's share is suspended: it gets
/// nothing new.
pub(crate) fn reshare_key(
    tx: &mut dyn Tx,
    session: &Session,
    key: &KeyRecord,
    version: i64,
    material: &Key32,
) -> Result<()> {
    let grants = checked_grants(tx, session, key)?;
    if grants.is_empty() {
        return Ok(());
    }
    let (me, _) = own_keypair(tx, session)?;
    for (g, target) in grants {
        let Some(target) = target else {
            continue;
        };
        let share = make_key_share(
            &me,
            key,
            version,
            material,
            &target,
            g.created_at,
            g.can_write,
        )?;
        tx.put_key_share(&share)?;
    }
    Ok(())
}

/// Ends the shares of a key: all of them (disabled, destroyed), or the versions below
/// `below` (a raised minimum decryption version). The caller writes the key row.
pub(crate) fn end_key_shares(
    tx: &mut dyn Tx,
    key: &mut KeyRecord,
    below: Option<i64>,
) -> Result<()> {
    // Grants that are not the set the key row binds (put back, added) all end: no new
    // digest is ever made from rows that were not checked.
    let all = tx.key_shares(Some(key.id), None)?;
    let below = if key_share_digest(&all) == key.share_digest {
        below
    } else {
        None
    };
    tx.delete_key_shares(key.id, None, below)?;
    key.share_digest = key_share_digest(&tx.key_shares(Some(key.id), None)?);
    Ok(())
}

/// The material of a key version shared with the session user, for decrypting a file
/// whose header names `key_id` and `version`: the owner's signature checked with their
/// pinned key, the material opened with the session user's keypair. Returns the key's
/// display name (`OWNER:NAME`), the owner and the material; `None` when nothing of the
/// kind is shared with the user.
pub(crate) fn shared_key_material(
    tx: &mut dyn Tx,
    session: &Session,
    key_id: i64,
    version: i64,
) -> Result<Option<(String, UserId, Key32)>> {
    let mut shares: Vec<KeyShare> = tx
        .key_shares(Some(key_id), None)?
        .into_iter()
        .filter(|s| s.version == version)
        .collect();
    // A share with the user directly first, then those with groups; the first that opens.
    shares.sort_by_key(|s| s.to != Grantee::User(session.user_id.0));
    let mut first_error = None;
    for share in shares {
        match open_key_share(tx, session, &share) {
            Ok(Some(found)) => return Ok(Some(found)),
            Ok(None) => {}
            Err(e @ (Error::Database { .. } | Error::KeyChanged { .. })) => return Err(e),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(None), Err)
}

/// The latest version of a key shared with the session user that they may encrypt with
/// (`OWNER:NAME`, shared with `--write`), for `encrypt --key`: the owner's signatures
/// checked as for decryption. Returns the key's display name, its id, the version, the
/// owner and the material. A key shared for decryption only is refused (exit 6).
pub(crate) fn shared_key_to_encrypt(
    tx: &mut dyn Tx,
    session: &Session,
    reference: &str,
) -> Result<(String, i64, i64, UserId, Key32)> {
    let not_shared = || {
        Error::NotFound(format!(
            "no key '{reference}' is shared with you (`zencrypt key list --shared-with-me`)"
        ))
    };
    let (owner_name, key_name) = reference.split_once(':').ok_or_else(not_shared)?;
    let owner = tx
        .user_by_name(owner_name)?
        .filter(|u| u.role != Role::Service)
        .ok_or_else(not_shared)?;
    let mut shares: Vec<KeyShare> = Vec::new();
    for s in tx.key_shares(None, None)? {
        if s.owner_id == owner.id && s.key_name == key_name {
            shares.push(s);
        }
    }
    // The latest version that opens for the session user, through a write grant first,
    // a direct share before a group's.
    shares.sort_by_key(|s| {
        (
            std::cmp::Reverse(s.version),
            !s.can_write,
            s.to != Grantee::User(session.user_id.0),
        )
    });
    let mut readable = None;
    for share in &shares {
        match open_key_share(tx, session, share) {
            Ok(Some((shown, owner_id, material))) if share.can_write => {
                return Ok((shown, share.key_id, share.version, owner_id, material));
            }
            Ok(Some((shown, ..))) => {
                readable.get_or_insert(shown);
            }
            Ok(None) => {}
            // A share that fails its checks is said, not passed over for an older version.
            Err(e) => return Err(e),
        }
    }
    match readable {
        Some(shown) => Err(Error::Conflict(format!(
            "key '{shown}' is shared with you to decrypt only: ask {} to share it with --write \
             to encrypt with it",
            owner.username
        ))),
        None => Err(not_shared()),
    }
}

/// One shared key version opened for the session user (see [`shared_key_material`]);
/// `None` when it is not for them.
fn open_key_share(
    tx: &mut dyn Tx,
    session: &Session,
    share: &KeyShare,
) -> Result<Option<(String, UserId, Key32)>> {
    let Some(opener) = opener(tx, session, share.to)? else {
        return Ok(None);
    };
    let Some(owner) = tx.user_by_id(share.owner_id)? else {
        return Ok(None);
    };
    if owner.status != UserStatus::Active {
        return Err(suspended(&owner.username));
    }
    // Names shown to the reader are checked like any name (no control characters, no
    // look-alike tricks beyond what a valid name allows).
    if crate::keys::validate_name(&share.key_name).is_err()
        || !crate::accounts::is_valid_name(&owner.username)
    {
        return Err(Error::Integrity(format!(
            "the share of key #{} carries a name that is not valid: it was changed outside \
             zencrypt",
            share.key_id
        )));
    }
    let forged = || {
        Error::Integrity(format!(
            "the shared key '{}:{}' does not carry {}'s valid signature: it was changed \
             outside zencrypt",
            owner.username, share.key_name, owner.username
        ))
    };
    let message = key_share_message(share, &opener.fingerprint);
    let (_, owner_keys, _) = pinned_keys_if(tx, session, &owner.username, |u, k| {
        signed(u, k.verifies(&message, &share.signature))
    })?;
    if !owner_keys.verifies(&message, &share.signature) {
        return Err(forged());
    }
    let material = opener.unwrap(&share.wrapped_material).ok_or_else(forged)?;
    Ok(Some((
        format!("{}:{}", owner.username, share.key_name),
        UserId(owner.id),
        material,
    )))
}

impl Vault {
    /// Shares one of the session user's named keys with `with`, a user or a `@group`:
    /// every version that may still decrypt, wrapped to their pinned key (a group's current
    /// key) and signed; later versions follow at each rotation. They can decrypt files
    /// encrypted under the key and, with `write`, encrypt with its latest version
    /// (`encrypt --key OWNER:NAME`). Sharing again with the other access changes the grant.
    pub fn key_share(
        &mut self,
        session: &Session,
        name: &str,
        with: &str,
        write: bool,
        confirmed: Option<Fingerprint>,
    ) -> Result<KeyShared> {
        let target = format!("{name} -> {with}");
        self.authorized(
            session,
            Permission::Own,
            AuditAction::KeyShare,
            &target,
            |tx| {
                let mut key = crate::keys::load(tx, session.user_id, name)?;
                crate::keys::ensure_usable(&key)?;
                let all = tx.key_shares(Some(key.id), None)?;
                if key_share_digest(&all) != key.share_digest {
                    return Err(key_shares_changed(&key));
                }
                let (to, shown_name, pinned_now) = new_target(
                    tx,
                    session,
                    with,
                    "the key is yours already: share it with someone else",
                    confirmed,
                )?;
                let existing = all.iter().find(|s| s.to.who() == to.to.who());
                if let Some(s) = existing
                    && s.can_write == write
                {
                    return Err(Error::Conflict(format!(
                        "key '{name}' is already shared with {shown_name} ({})",
                        if write {
                            "decrypt and encrypt"
                        } else {
                            "decrypt only"
                        }
                    )));
                }
                let changed = existing.is_some();
                let now = existing.map_or_else(crate::duration::now, |s| s.created_at);
                if changed {
                    // The grant changes: every version is wrapped and signed again.
                    tx.delete_key_shares(key.id, Some(to.to.who()), None)?;
                }
                let (me, _) = own_keypair(tx, session)?;
                let mut versions = Vec::new();
                for v in key.min_decrypt_version.max(1)..=key.latest_version {
                    let material = crate::keys::material(
                        tx,
                        &session.user_key,
                        &key,
                        crate::ids::KeyVersion(v),
                    )?;
                    let share = make_key_share(&me, &key, v, &material, &to, now, write)?;
                    tx.put_key_share(&share)?;
                    versions.push(v);
                }
                key.share_digest = key_share_digest(&tx.key_shares(Some(key.id), None)?);
                tx.update_key(&key)?;
                let detail = json!({
                    "with": shown_name,
                    "fingerprint": to.fingerprint.to_string(),
                    "versions": versions,
                    "pinned_now": pinned_now,
                    "write": write,
                    "changed": changed,
                });
                Ok((
                    KeyShared {
                        name: key.name.clone(),
                        with: shown_name.clone(),
                        fingerprint: to.fingerprint,
                        pinned_now,
                        versions,
                        write,
                        changed,
                    },
                    detail,
                ))
            },
        )
    }

    /// Ends a key's share with `from` (a user or a `@group`): the versions given are taken
    /// back and no later version is wrapped for them. Returns how many versions were taken
    /// back. It always completes; grants changed outside zencrypt end every share of the
    /// key.
    pub fn key_unshare(
        &mut self,
        session: &Session,
        name: &str,
        from: &str,
    ) -> Result<(u64, bool)> {
        let target = format!("{name} -> {from}");
        self.authorized(
            session,
            Permission::Own,
            AuditAction::KeyUnshare,
            &target,
            |tx| {
                let mut key = crate::keys::load(tx, session.user_id, name)?;
                let (who, shown_name) = named_grantee(tx, from)?;
                let all = tx.key_shares(Some(key.id), None)?;
                if !all.iter().any(|s| s.to.who() == who) {
                    return Err(Error::NotFound(format!(
                        "key '{name}' is not shared with {shown_name}"
                    )));
                }
                let tampered = key_share_digest(&all) != key.share_digest;
                let n = if tampered {
                    tx.delete_key_shares(key.id, None, None)?
                } else {
                    tx.delete_key_shares(key.id, Some(who), None)?
                };
                key.share_digest = key_share_digest(&tx.key_shares(Some(key.id), None)?);
                tx.update_key(&key)?;
                let detail = json!({ "from": shown_name, "versions": n, "all_ended": tampered });
                Ok(((n, tampered), detail))
            },
        )
    }
}
