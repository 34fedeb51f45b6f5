//! Encrypting and decrypting messages and files with a named key: the database side of
//! `encrypt`, `decrypt` and `rewrap`. The caller streams the body (see
//! [`crate::crypto::stream`]) between `begin_*` and `finish_*`; the usage row, the
//! per-version counters and the audit record are written together when it finishes.

use std::io::{BufRead, Read, Write};

use serde_json::json;

use crate::authz::Permission;
use crate::crypto::armor::{ArmorReader, ArmorWriter, is_armored};
use crate::crypto::stream::{Header, StreamError, decrypt_body, encrypt_body};
use crate::crypto::{Key32, aead};
use crate::duration;
use crate::error::{Error, Result};
use crate::events::{AuditAction, KeyEventKind, UsageOp};
use crate::ids::{KeyId, KeyVersion, UserId};
use crate::keys;
use crate::model::{KeyRecord, Outcome, UsageEvent};
use crate::storage::Tx;
use crate::vault::{Session, Vault};

/// Everything needed to stream one message, from `begin_encrypt` or `begin_decrypt`.
#[derive(Debug)]
pub struct Plan {
    /// The message header (with the wrapped data key).
    pub header: Header,
    /// The message's data key.
    pub dek: Key32,
    /// The key's name (`OWNER:NAME` for a key another user shared).
    pub key_name: String,
    /// Whether the key is another user's, shared with the session user: its counters are
    /// the owner's rows and are not updated.
    pub shared: bool,
}

fn usage(
    tx: &mut dyn Tx,
    session: &Session,
    plan: &Plan,
    operation: UsageOp,
    bytes: u64,
    outcome: Outcome,
) -> Result<()> {
    tx.insert_usage(&UsageEvent {
        at: duration::now(),
        user_id: session.user_id.0,
        key_id: Some(plan.header.key_id.0),
        key_version: Some(plan.header.key_version.0),
        record_id: None,
        operation: operation.as_str().into(),
        bytes: i64::try_from(bytes).unwrap_or(i64::MAX),
        outcome,
    })?;
    Ok(())
}

/// The key behind a header for decryption: one of the user's own (usable, version
/// allowed), or a version another user shared with them. Returns the key's name as shown
/// (`OWNER:NAME` for a shared one), its owner and the version's material.
fn key_to_decrypt(
    tx: &mut dyn Tx,
    session: &Session,
    header: &Header,
) -> Result<(String, UserId, Key32)> {
    if tx.key_by_id(session.user_id.0, header.key_id.0)?.is_none()
        && let Some(shared) =
            crate::sharing::shared_key_material(tx, session, header.key_id.0, header.key_version.0)?
    {
        return Ok(shared);
    }
    let (key, material) = key_for_header(tx, session, header)?;
    Ok((key.name, session.user_id, material))
}

/// The key behind a header, checked for decryption (exists for this user, usable,
/// version allowed), and the version's material.
fn key_for_header(
    tx: &mut dyn Tx,
    session: &Session,
    header: &Header,
) -> Result<(KeyRecord, Key32)> {
    let key = tx
        .key_by_id(session.user_id.0, header.key_id.0)?
        .ok_or_else(|| {
            Error::NotFound("the key this was encrypted with is not one of your keys".into())
        })?;
    keys::ensure_usable(&key)?;
    if header.key_version.0 < key.min_decrypt_version {
        return Err(Error::Conflict(format!(
            "key '{}' no longer decrypts version {} (minimum decryption version is {})",
            key.name, header.key_version, key.min_decrypt_version
        )));
    }
    let material = keys::material(tx, &session.user_key, &key, header.key_version)?;
    Ok((key, material))
}

/// The audit rows of a wrap under a key's latest version: the automatic rotation that
/// came first, if one did, then the operation itself.
fn rows_after_rotation(
    rotated: Option<i64>,
    action: AuditAction,
    detail: serde_json::Value,
) -> Vec<(AuditAction, serde_json::Value)> {
    let rotation = rotated.map(|v| {
        (
            AuditAction::KeyRotate,
            json!({ "version": v, "reason": "automatic" }),
        )
    });
    rotation.into_iter().chain([(action, detail)]).collect()
}

fn unwrap_dek(owner: UserId, header: &Header, material: &Key32) -> Result<Key32> {
    aead::unwrap_key(material, &header.dek_aad(owner), &header.wrapped_dek).map_err(|_| {
        Error::Integrity(
            "decryption failed: the message header was modified or does not belong to this key"
                .into(),
        )
    })
}

impl Vault {
    /// Prepares to encrypt with `key_name`: refuses disabled, destroyed and expired keys
    /// (an expired key's refusal is logged as `expired-on-use`), rotates first when the
    /// rotation is due or the version reached the encryption limit, and makes a fresh
    /// data key wrapped under the latest version.
    pub fn begin_encrypt(&mut self, session: &Session, key_name: &str) -> Result<Plan> {
        let owner = session.user_id;
        let actor = session.actor();
        if key_name.contains(':') {
            return self.begin_encrypt_shared(session, key_name);
        }
        // An expired key is refused, but the refusal itself goes to the key's log.
        let expired = {
            let mut tx = self.reader(Some(&session.integrity))?;
            match tx.key_by_name(owner.0, key_name)? {
                Some(k) if k.expires_at.is_some_and(|e| duration::now() >= e) => Some(k),
                _ => None,
            }
        };
        if let Some(k) = expired {
            let e = Error::Conflict(format!(
                "key '{key_name}' expired at {}; it can still decrypt, but not encrypt",
                duration::rfc3339(k.expires_at.unwrap_or_default())
            ));
            let _ = self.authorized(
                session,
                Permission::Own,
                AuditAction::KeyExpiredOnUse,
                key_name,
                |tx| {
                    keys::log_event(
                        tx,
                        k.id,
                        &actor,
                        KeyEventKind::ExpiredOnUse,
                        Some(k.latest_version),
                        json!({}),
                    )?;
                    Ok(((), json!({ "operation": UsageOp::Encrypt.as_str() })))
                },
            );
            self.audit_failure(&actor, AuditAction::CryptoEncrypt, key_name, &e);
            return Err(e);
        }
        // The encryption is audited (and counted against the version's message limit)
        // here, before any output exists: a database that cannot record it stops it.
        let action = AuditAction::CryptoEncrypt;
        self.authorized_rows(session, Permission::Own, action, key_name, |tx| {
            let mut key = keys::load(tx, owner, key_name)?;
            keys::ensure_usable(&key)?;
            let rotated = keys::rotate_if_needed(tx, session, &mut key)?;
            let (key_id, version) = (KeyId(key.id), KeyVersion(key.latest_version));
            let material = keys::material(tx, &session.user_key, &key, version)?;
            let mut header = Header::new(key_id, version);
            let dek = Key32::random();
            header.wrapped_dek = aead::wrap_key(&material, &header.dek_aad(owner), &dek);
            crate::keys::count_usage(tx, key_id, version, 1, 0)?;
            let rows =
                rows_after_rotation(rotated, action, json!({ "version": key.latest_version }));
            Ok((
                Plan {
                    header,
                    dek,
                    key_name: key.name.clone(),
                    shared: false,
                },
                rows,
            ))
        })
    }

    /// [`Vault::begin_encrypt`] with a key another user shared with the session user for
    /// encryption (`OWNER:NAME`, docs/sharing.md, "Shared keys"): a fresh data key wrapped
    /// under the latest version shared. The owner's per-version message counter is the
    /// owner's row, so it does not count these.
    fn begin_encrypt_shared(&mut self, session: &Session, reference: &str) -> Result<Plan> {
        self.authorized(
            session,
            Permission::Own,
            AuditAction::CryptoEncrypt,
            reference,
            |tx| {
                let (key_name, key_id, version, owner, material) =
                    crate::sharing::shared_key_to_encrypt(tx, session, reference)?;
                let mut header = Header::new(KeyId(key_id), KeyVersion(version));
                let dek = Key32::random();
                header.wrapped_dek = aead::wrap_key(&material, &header.dek_aad(owner), &dek);
                let detail = json!({ "key": key_name, "version": version, "shared": true });
                Ok((
                    Plan {
                        header,
                        dek,
                        key_name,
                        shared: true,
                    },
                    detail,
                ))
            },
        )
    }

    /// Records a finished (or failed) encryption: usage row, version counters, audit.
    pub fn finish_encrypt(
        &mut self,
        session: &Session,
        plan: &Plan,
        result: &Result<u64>,
    ) -> Result<()> {
        self.finish(
            session,
            plan,
            UsageOp::Encrypt,
            AuditAction::CryptoEncrypt,
            result,
            true,
        )
    }

    /// Prepares to decrypt a message: finds the key (exit 5 if it is not the caller's),
    /// checks it may decrypt this version, and unwraps the data key (exit 7 if the header
    /// was tampered with). The decryption is audited here, before any plaintext exists.
    pub fn begin_decrypt(&mut self, session: &Session, header: &Header) -> Result<Plan> {
        let target = format!("key#{}", header.key_id);
        self.authorized(
            session,
            Permission::Own,
            AuditAction::CryptoDecrypt,
            &target,
            |tx| {
                let (key_name, owner, material) = key_to_decrypt(tx, session, header)?;
                let dek = unwrap_dek(owner, header, &material)?;
                let detail = json!({ "key": key_name, "version": header.key_version.0 });
                Ok((
                    Plan {
                        header: header.clone(),
                        dek,
                        key_name,
                        shared: false,
                    },
                    detail,
                ))
            },
        )
    }

    /// Records a finished (or failed) decryption.
    pub fn finish_decrypt(
        &mut self,
        session: &Session,
        plan: &Plan,
        result: &Result<u64>,
    ) -> Result<()> {
        self.finish(
            session,
            plan,
            UsageOp::Decrypt,
            AuditAction::CryptoDecrypt,
            result,
            false,
        )
    }

    /// Moves a message's data key to its key's latest version: a new header, same body.
    /// The new wrap is an encryption under that version, so the rules of `begin_encrypt`
    /// apply: an expired key is refused, a due rotation happens first, and the wrap counts
    /// against the version's message limit. Returns the new header and the old and new
    /// versions.
    pub fn rewrap(&mut self, session: &Session, header: &Header) -> Result<(Header, i64, i64)> {
        let owner = session.user_id;
        let target = format!("key#{}", header.key_id);
        self.authorized_rows(
            session,
            Permission::Own,
            AuditAction::CryptoRewrap,
            &target,
            |tx| {
                let (mut key, material) = key_for_header(tx, session, header)?;
                if let Some(at) = key.expires_at.filter(|&e| duration::now() >= e) {
                    return Err(Error::Conflict(format!(
                        "key '{}' expired at {}; it can still decrypt, but not rewrap",
                        key.name,
                        duration::rfc3339(at)
                    )));
                }
                let dek = unwrap_dek(owner, header, &material)?;
                let rotated = keys::rotate_if_needed(tx, session, &mut key)?;
                let (key_id, version) = (KeyId(key.id), KeyVersion(key.latest_version));
                let latest = keys::material(tx, &session.user_key, &key, version)?;
                let mut new = header.clone();
                new.key_version = version;
                new.wrapped_dek = aead::wrap_key(&latest, &new.dek_aad(owner), &dek);
                crate::keys::count_usage(tx, key_id, version, 1, 0)?;
                let plan = Plan {
                    header: new.clone(),
                    dek,
                    key_name: key.name.clone(),
                    shared: false,
                };
                usage(tx, session, &plan, UsageOp::Rewrap, 0, Outcome::Ok)?;
                let (from, to) = (header.key_version.0, version.0);
                let rows = rows_after_rotation(
                    rotated,
                    AuditAction::CryptoRewrap,
                    json!({ "key": key.name, "from": from, "to": to }),
                );
                Ok(((new, from, to), rows))
            },
        )
    }

    fn finish(
        &mut self,
        session: &Session,
        plan: &Plan,
        operation: UsageOp,
        action: AuditAction,
        result: &Result<u64>,
        count: bool,
    ) -> Result<()> {
        match result {
            // The audit record was written when the stream began; the usage row and the
            // byte count are added now.
            Ok(bytes) => {
                let bytes = *bytes;
                self.authorized_if(session, Permission::Own, action, &plan.key_name, |tx| {
                    usage(tx, session, plan, operation, bytes, Outcome::Ok)?;
                    if count && !plan.shared {
                        crate::keys::count_usage(
                            tx,
                            plan.header.key_id,
                            plan.header.key_version,
                            0,
                            i64::try_from(bytes).unwrap_or(i64::MAX),
                        )?;
                    }
                    Ok(((), None))
                })
            }
            Err(e) => {
                // The failure goes to the usage log and the audit log; the original error
                // is what the user sees.
                let _ = (|| -> Result<()> {
                    let mut tx = self.store.write()?;
                    usage(tx.as_mut(), session, plan, operation, 0, Outcome::Failed)?;
                    Ok(tx.commit()?)
                })();
                self.audit_failure(&session.actor(), action, &plan.key_name, e);
                Ok(())
            }
        }
    }
}

/// What a finished stream did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The key's name.
    pub key_name: String,
    /// The key version in the (output) header.
    pub version: i64,
    /// The version before a rewrap.
    pub from_version: i64,
    /// Plaintext bytes.
    pub bytes: u64,
}

/// Maps a stream error: I/O problems are exit 1, anything about the data is exit 7.
pub fn stream_error(e: StreamError, what: &str) -> Error {
    match e {
        StreamError::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
            Error::Integrity(format!("decryption failed: {io}"))
        }
        StreamError::Io(io) => Error::io(what.to_string(), io),
        StreamError::Malformed(m) => Error::Integrity(m.to_string()),
        StreamError::Tampered(m) => Error::Integrity(format!("decryption failed: {m}")),
    }
}

fn io_error(what: &'static str) -> impl Fn(std::io::Error) -> Error {
    move |e| Error::io(what, e)
}

/// A ciphertext reader that accepts binary or armored input.
fn ciphertext_reader<'a>(
    input: &'a mut (dyn BufRead + Send),
) -> Result<(Box<dyn Read + Send + 'a>, bool)> {
    let armored = is_armored(input).map_err(io_error("reading the input"))?;
    if armored {
        Ok((Box::new(ArmorReader::new(input)), true))
    } else {
        Ok((Box::new(input), false))
    }
}

impl Vault {
    fn read_header(
        &mut self,
        session: &Session,
        r: &mut dyn Read,
        action: AuditAction,
    ) -> Result<Header> {
        Header::read_from(&mut &mut *r).map_err(|e| {
            let e = stream_error(e, "reading the input");
            self.audit_failure(&session.actor(), action, "-", &e);
            e
        })
    }

    /// Encrypts everything from `input` to `output` with `key_name` (armored if asked),
    /// recording usage and audit when done. The caller discards `output` on error.
    pub fn encrypt_stream(
        &mut self,
        session: &Session,
        key_name: &str,
        input: &mut (dyn Read + Send),
        output: &mut dyn Write,
        armor: bool,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Summary> {
        let plan = self.begin_encrypt(session, key_name)?;
        let header = plan.header.encode();
        let result = (|| {
            let mut input = input;
            if armor {
                let mut aw = ArmorWriter::new(output);
                aw.write_all(&header)
                    .map_err(io_error("writing the output"))?;
                let n = encrypt_body(&plan.dek, &plan.header, &mut input, &mut aw, progress)
                    .map_err(|e| stream_error(e, "encrypting"))?;
                aw.finish().map_err(io_error("writing the output"))?;
                Ok(n)
            } else {
                let mut output = output;
                output
                    .write_all(&header)
                    .map_err(io_error("writing the output"))?;
                encrypt_body(&plan.dek, &plan.header, &mut input, &mut output, progress)
                    .map_err(|e| stream_error(e, "encrypting"))
            }
        })();
        self.finish_encrypt(session, &plan, &result)?;
        Ok(Summary {
            key_name: plan.key_name.clone(),
            version: plan.header.key_version.0,
            from_version: plan.header.key_version.0,
            bytes: result?,
        })
    }

    /// Decrypts a binary or armored ciphertext from `input` to `output`; each chunk is
    /// written only after it verifies. The caller discards `output` on error.
    pub fn decrypt_stream(
        &mut self,
        session: &Session,
        input: &mut (dyn BufRead + Send),
        output: &mut dyn Write,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Summary> {
        let (mut reader, _) = ciphertext_reader(input)?;
        let header = self.read_header(session, &mut reader, AuditAction::CryptoDecrypt)?;
        let plan = self.begin_decrypt(session, &header)?;
        let mut output = output;
        let result = decrypt_body(&plan.dek, &plan.header, &mut reader, &mut output, progress)
            .map_err(|e| stream_error(e, "decrypting"));
        self.finish_decrypt(session, &plan, &result)?;
        Ok(Summary {
            key_name: plan.key_name.clone(),
            version: plan.header.key_version.0,
            from_version: plan.header.key_version.0,
            bytes: result?,
        })
    }

    /// Copies a ciphertext from `input` to `output` with a new header under the key's
    /// latest version; the body is copied unchanged (armored stays armored).
    pub fn rewrap_stream(
        &mut self,
        session: &Session,
        input: &mut (dyn BufRead + Send),
        output: &mut dyn Write,
    ) -> Result<Summary> {
        let (mut reader, armored) = ciphertext_reader(input)?;
        let header = self.read_header(session, &mut reader, AuditAction::CryptoRewrap)?;
        let (new, from, to) = self.rewrap(session, &header)?;
        let copy_err = |e: std::io::Error| stream_error(e.into(), "copying the ciphertext");
        let bytes = if armored {
            let mut aw = ArmorWriter::new(output);
            aw.write_all(&new.encode())
                .map_err(io_error("writing the output"))?;
            let n = std::io::copy(&mut reader, &mut aw).map_err(copy_err)?;
            aw.finish().map_err(io_error("writing the output"))?;
            n
        } else {
            let mut output = output;
            output
                .write_all(&new.encode())
                .map_err(io_error("writing the output"))?;
            std::io::copy(&mut reader, &mut output).map_err(copy_err)?
        };
        let key_name = self.key_name_of(session, new.key_id)?;
        Ok(Summary {
            key_name,
            version: to,
            from_version: from,
            bytes,
        })
    }

    fn key_name_of(&mut self, session: &Session, key_id: KeyId) -> Result<String> {
        let mut tx = self.reader(Some(&session.integrity))?;
        Ok(tx
            .key_by_id(session.user_id.0, key_id.0)?
            .map(|k| k.name)
            .unwrap_or_default())
    }
}
