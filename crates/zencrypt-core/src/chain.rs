//! The hash-chained audit log: appending rows in the caller's transaction, listing them,
//! and verifying the chain and the row states it vouches for. The audit service that
//! decides who may list or verify is in [`crate::audit`].
//!
//! Each row's `mac` is HMAC-SHA256(audit key, prev_mac || canonical encoding of the row),
//! and `prev_mac` is the previous row's `mac` (for seq 1, an HMAC of this database's
//! random id). Editing, removing
//! or reordering any row breaks the chain at that row.
//!
//! The audit key can be rotated (`db audit-key rotate`): the hand-over entry is the first
//! written under the new key, follows the last one written under the old key, and records
//! a SHA-256 digest of every entry before it, the database's identity and an HMAC under
//! the old key. A holder of the new key verifies the entries before the hand-over by that
//! digest, and everything from the hand-over on by their MACs.

use serde_json::Value;

use crate::crypto::mac::{MAC_LEN, MacKey};
use crate::duration;
use crate::error::{Error, Result};
use crate::events::AuditAction;
use crate::ids::UserId;
use std::collections::{BTreeMap, HashMap};

use crate::integrity::{Digest, StateDigests, earlier_digest, row_digest};
use crate::model::{AuditEntry, AuditFilter, Outcome, RowId};
use crate::storage::Tx;
use crate::text::printable;

/// Who performed an action, as recorded in the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// User id, when the actor is a known user.
    pub id: Option<UserId>,
    /// User name, or the attempted name for failed logins.
    pub name: String,
}

impl Actor {
    /// A known user.
    pub fn user(id: UserId, name: &str) -> Self {
        Actor {
            id: Some(id),
            name: name.to_string(),
        }
    }

    /// Someone who has not authenticated; `name` is whatever they claimed, made safe.
    pub fn anonymous(name: &str) -> Self {
        Actor {
            id: None,
            name: printable(name, 64),
        }
    }
}

/// The bytes covered by a row's MAC (after `prev_mac`): every field, length-prefixed.
fn canonical(e: &AuditEntry) -> Vec<u8> {
    let mut out = Vec::with_capacity(96 + e.detail.len());
    let mut field = |b: &[u8]| {
        out.extend_from_slice(&(b.len() as u32).to_be_bytes());
        out.extend_from_slice(b);
    };
    field(&e.seq.to_be_bytes());
    field(&e.at.to_be_bytes());
    match e.actor_id {
        Some(id) => field(&id.to_be_bytes()),
        None => field(&[]),
    }
    field(e.actor.as_bytes());
    field(e.action.as_bytes());
    field(e.target.as_bytes());
    field(e.outcome.as_str().as_bytes());
    field(e.detail.as_bytes());
    // Rows from before row-state digests have none, and keep their MACs.
    if !e.state.is_empty() {
        field(&e.state);
    }
    out
}

/// The `meta` entry of a copy (`db copy`) naming the seq of its hand-over entry.
pub const COPY_SEQ: &str = "copy_seq";

/// The `meta` entry naming the seq of the latest audit-key hand-over entry.
pub const KEY_EPOCH: &str = "audit_key_epoch";

/// Where the part of the chain written with the current audit key begins: the latest
/// hand-over entry (`db audit-key rotate`), authentic under the current key.
#[derive(Debug, Clone)]
pub struct Epoch {
    /// The hand-over entry's seq.
    pub start: i64,
    /// SHA-256 of every entry before it ([`PrefixDigest`]).
    prefix: Vec<u8>,
    /// The database id the chain began from.
    origin_id: Vec<u8>,
    /// The id of the database the hand-over was written in.
    database_id: Vec<u8>,
}

fn meta_seq(tx: &mut dyn Tx, name: &str) -> Result<Option<i64>> {
    let Some(value) = tx.meta(name)? else {
        return Ok(None);
    };
    std::str::from_utf8(&value)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|seq| *seq > 0)
        .map(Some)
        .ok_or_else(|| {
            Error::Integrity(format!(
                "the meta entry {name} was changed outside zencrypt; restore the database from a backup"
            ))
        })
}

/// The hex fields of a hand-over entry (`action` at `seq`, genuine under `key`): a lookup
/// that fails with `why` (exit 7) when the entry, or the field asked for, is not there.
fn hand_over_fields(
    tx: &mut dyn Tx,
    key: &MacKey,
    seq: i64,
    action: AuditAction,
    why: &'static str,
) -> Result<impl Fn(&str) -> Result<Vec<u8>>> {
    let bad = move || Error::Integrity(why.into());
    let entry = tx
        .audit_entry(seq)?
        .filter(|e| e.action == action.as_str() && authentic(key, e))
        .ok_or_else(bad)?;
    let detail: Value = serde_json::from_str(&entry.detail).map_err(|_| bad())?;
    Ok(move |name: &str| {
        detail[name]
            .as_str()
            .and_then(crate::crypto::unhex)
            .ok_or_else(bad)
    })
}

/// The current audit key's epoch, if the key was ever rotated. Its hand-over entry must
/// be genuine under `key`.
pub fn epoch(tx: &mut dyn Tx, key: &MacKey) -> Result<Option<Epoch>> {
    let Some(seq) = meta_seq(tx, KEY_EPOCH)? else {
        return Ok(None);
    };
    let field = hand_over_fields(
        tx,
        key,
        seq,
        AuditAction::AuditKeyRotate,
        "the audit key's hand-over entry is missing or was changed: nothing vouches for the audit entries before it; restore the database from a backup",
    )?;
    Ok(Some(Epoch {
        start: seq,
        prefix: field("prefix_sha256")?,
        origin_id: field("origin_id")?,
        database_id: field("database_id")?,
    }))
}

/// SHA-256 over the entries before a hand-over: each entry's `prev_mac`, canonical
/// encoding and `mac`, length-prefixed, in seq order.
struct PrefixDigest(sha2::Sha256);

impl PrefixDigest {
    fn new() -> Self {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(b"zencrypt-audit-prefix");
        PrefixDigest(h)
    }

    fn add(&mut self, e: &AuditEntry) {
        use sha2::Digest as _;
        for part in [&e.prev_mac[..], &canonical(e), &e.mac] {
            self.0.update((part.len() as u64).to_be_bytes());
            self.0.update(part);
        }
    }

    fn finish(self) -> Vec<u8> {
        use sha2::Digest as _;
        self.0.finalize().to_vec()
    }
}

/// The digest of the entries before seq `end`, and whether they are contiguous from 1
/// and each follows the one before.
fn prefix_digest(tx: &mut dyn Tx, end: i64) -> Result<Option<Vec<u8>>> {
    let mut digest = PrefixDigest::new();
    let mut expected = 1i64;
    let mut prev: Option<Vec<u8>> = None;
    let mut linked = true;
    tx.scan_audit(&mut |e: AuditEntry| {
        if e.seq >= end {
            return false;
        }
        if e.seq != expected || prev.as_ref().is_some_and(|p| *p != e.prev_mac) {
            linked = false;
            return false;
        }
        digest.add(&e);
        expected += 1;
        prev = Some(e.mac.clone());
        true
    })?;
    Ok((linked && expected == end).then(|| digest.finish()))
}

/// Whether `e`, an entry read from `tx`, is a genuine entry of this database's chain
/// under `key`: by its MAC from the current key's epoch on, and before the epoch by the
/// hand-over's digest of every entry before it (one pass over them).
pub fn genuine(tx: &mut dyn Tx, key: &MacKey, e: &AuditEntry) -> Result<bool> {
    match epoch(tx, key)? {
        Some(ep) if e.seq < ep.start => {
            Ok(prefix_digest(tx, ep.start)?.is_some_and(|d| d == ep.prefix))
        }
        _ => Ok(authentic(key, e)),
    }
}

/// The database id the chain starts from: this database's own, or for a copy, the id of
/// the database the chain began in, as the copy's authentic hand-over entry names it
/// together with the copy's own id (so neither can be changed unnoticed). After an audit
/// key rotation the latest of the key's hand-over and the copy's hand-over names it.
pub fn chain_origin(tx: &mut dyn Tx, key: &MacKey) -> Result<Vec<u8>> {
    let own = tx.database_id()?;
    let epoch = epoch(tx, key)?;
    let copy = meta_seq(tx, COPY_SEQ)?;
    if let Some(ep) = epoch
        && copy.is_none_or(|seq| seq < ep.start)
    {
        return if ep.database_id == own {
            Ok(ep.origin_id)
        } else {
            Err(identity_changed())
        };
    }
    let Some(seq) = copy else {
        return Ok(own);
    };
    let why = "this copy's hand-over entry is missing or was changed: it does not vouch for this database's identity; restore it from a backup";
    let field = hand_over_fields(tx, key, seq, AuditAction::DbCopiedFrom, why)?;
    if field("copy_id")? != own {
        return Err(Error::Integrity(why.into()));
    }
    field("origin_id")
}

fn identity_changed() -> Error {
    Error::Integrity(
        "this database's identity was changed (its audit log begins from another database id): it was swapped or rolled back; restore it from a backup"
            .into(),
    )
}

/// The `prev_mac` of seq 1: ties the chain to this database, so another database's
/// log (or an older copy's) cannot be swapped in whole.
fn genesis(key: &MacKey, database_id: &[u8]) -> Vec<u8> {
    key.compute(&[b"zencrypt-audit-genesis", database_id])
        .to_vec()
}

/// The `meta` entry holding an HMAC that shows which audit key the log is written with.
pub const KEY_CHECK: &str = "audit_key_check";
const KEY_CHECK_LABEL: &[u8] = b"zencrypt-audit-key-check";

fn wrong_key() -> Error {
    Error::Config(
        "the audit key (ZENCRYPT_AUDIT_KEY, ZENCRYPT_AUDIT_KEY_FILE, or audit.key in the data dir) is not the one \
         this database's audit log is written with (if it was rotated, an administrator hands out the new one); nothing was changed"
            .into(),
    )
}

/// Refuses `key` when `stored`, the `meta` value of [`KEY_CHECK`] read some other way
/// (from a schema this binary does not open, before `db migrate`), names another key. A
/// database without the value is not refused here.
pub fn check_stored_key(key: &MacKey, database_id: &[u8], stored: Option<&[u8]>) -> Result<()> {
    match stored {
        Some(stored) if !key.verify(&[KEY_CHECK_LABEL, database_id], stored) => Err(wrong_key()),
        _ => Ok(()),
    }
}

/// Refuses an audit key other than the one the log is written with, so that a wrong
/// `ZENCRYPT_AUDIT_KEY` cannot append rows that break the chain for good. Databases
/// without the check value get it on their first append, once the newest row verifies
/// under the key (or when the log is empty).
fn check_key(tx: &mut dyn Tx, key: &MacKey, head: Option<i64>, write: bool) -> Result<()> {
    let id = tx.database_id()?;
    if let Some(stored) = tx.meta(KEY_CHECK)? {
        return check_stored_key(key, &id, Some(&stored));
    }
    if let Some(seq) = head {
        let newest = tx.audit_entry(seq)?;
        if !newest.is_some_and(|e| key.verify(&[&e.prev_mac, &canonical(&e)], &e.mac)) {
            return Err(wrong_key());
        }
    }
    if write {
        tx.set_meta(KEY_CHECK, &key.compute(&[KEY_CHECK_LABEL, &id]))?;
    }
    Ok(())
}

/// Refuses a database whose audit log does not begin from this database's own identity
/// (its id was changed, which would start every client's witness afresh), whose first
/// entry (or, after an audit key rotation, whose hand-over entry) was changed or removed,
/// or which has users but an empty log; and an audit key other than the one the log is
/// written with (a configuration error, exit 2). One small read at every open.
pub fn check_origin(tx: &mut dyn Tx, key: &MacKey) -> Result<()> {
    let first = tx.audit_entry(1)?;
    let epoch = match epoch(tx, key) {
        Ok(epoch) => epoch,
        Err(e) => {
            // A hand-over that is not genuine under this key: a wrong key says so first.
            check_audit_key(tx, key)?;
            return Err(e);
        }
    };
    if epoch.is_some() {
        // The entries before the hand-over are vouched for by its digest (checked by
        // `audit verify`); the hand-over names the identity.
        chain_origin(tx, key)?;
        check_audit_key(tx, key)?;
        return match first {
            Some(_) => Ok(()),
            None => Err(Error::AuditChainBroken {
                seq: 1,
                reason: "row 1 is missing".into(),
            }),
        };
    }
    if let Some(e) = &first
        && authentic(key, e)
        && e.prev_mac != genesis(key, &chain_origin(tx, key)?)
    {
        return Err(identity_changed());
    }
    check_audit_key(tx, key)?;
    match first {
        Some(e) if !authentic(key, &e) => Err(Error::AuditChainBroken {
            seq: 1,
            reason: "row was modified (mac mismatch)".into(),
        }),
        Some(_) => Ok(()),
        None if tx.audit_head()?.is_some() => Err(Error::AuditChainBroken {
            seq: 1,
            reason: "row 1 is missing".into(),
        }),
        None if tx.user_count()? > 0 => Err(Error::AuditChainBroken {
            seq: 1,
            reason: "the audit log is empty, but the database has users (its rows were removed)"
                .into(),
        }),
        None => Ok(()),
    }
}

/// Refuses an audit key other than the one this database's log is written with (a
/// configuration error, exit 2), before anything is read or written with it.
pub fn check_audit_key(tx: &mut dyn Tx, key: &MacKey) -> Result<()> {
    let head = tx.audit_head()?.map(|h| h.0);
    check_key(tx, key, head, false)
}

fn mac_of(key: &MacKey, e: &AuditEntry) -> [u8; MAC_LEN] {
    key.compute(&[&e.prev_mac, &canonical(e)])
}

/// Appends one row to the audit log inside `tx`; returns its seq and MAC. The caller
/// commits.
pub fn append(
    tx: &mut dyn Tx,
    key: &MacKey,
    actor: &Actor,
    action: AuditAction,
    target: &str,
    outcome: Outcome,
    detail: &Value,
) -> Result<(i64, Vec<u8>)> {
    append_state(tx, key, actor, action, target, (outcome, detail), &[])
}

/// [`append`] with the digests of the row states the action wrote (see
/// [`crate::integrity::StateDigests`]).
pub fn append_state(
    tx: &mut dyn Tx,
    key: &MacKey,
    actor: &Actor,
    action: AuditAction,
    target: &str,
    (outcome, detail): (Outcome, &Value),
    state: &[u8],
) -> Result<(i64, Vec<u8>)> {
    let head = tx.audit_head()?;
    check_key(tx, key, head.as_ref().map(|h| h.0), true)?;
    let (seq, prev_mac) = match head {
        Some((seq, mac)) => (seq + 1, mac),
        None => (1, genesis(key, &chain_origin(tx, key)?)),
    };
    let mut entry = AuditEntry {
        seq,
        at: duration::now(),
        actor_id: actor.id.map(i64::from),
        actor: actor.name.clone(),
        action: action.as_str().to_string(),
        target: printable(target, 256),
        outcome,
        detail: detail.to_string(),
        prev_mac,
        mac: Vec::new(),
        state: state.to_vec(),
    };
    entry.mac = mac_of(key, &entry).to_vec();
    tx.insert_audit(&entry)?;
    Ok((seq, entry.mac))
}

/// Continues the chain under `new`, inside `tx` (which the caller has checked, under
/// `old`, to hold an intact chain and rows, and commits): the hand-over entry follows the
/// last entry written under `old`, is the first written under `new`, and records the
/// digest of every entry before it, this database's identity and the chain's origin, and
/// an HMAC of those under `old` (so both keys authenticate it). The key check and the
/// epoch in `meta` move to `new`. Returns the hand-over's seq and MAC.
pub fn hand_over(
    tx: &mut dyn Tx,
    old: &MacKey,
    new: &MacKey,
    actor: &Actor,
    state: &[u8],
) -> Result<(i64, Vec<u8>)> {
    let (head, head_mac) = tx.audit_head()?.ok_or_else(|| {
        Error::Conflict("the audit log is empty: there is no key to rotate".into())
    })?;
    check_key(tx, old, Some(head), false)?;
    let database_id = tx.database_id()?;
    let origin_id = chain_origin(tx, old)?;
    let seq = head + 1;
    let prefix = prefix_digest(tx, seq)?.ok_or_else(|| Error::AuditChainBroken {
        seq: head,
        reason: "the chain is not contiguous".into(),
    })?;
    let new_check = new.compute(&[KEY_CHECK_LABEL, &database_id]);
    let old_key_mac = old.compute(&[
        b"zencrypt-audit-handover",
        &seq.to_be_bytes(),
        &prefix,
        &new_check,
    ]);
    let hex = crate::crypto::hex;
    let detail = serde_json::json!({
        "prefix_sha256": hex(&prefix),
        "database_id": hex(&database_id),
        "origin_id": hex(&origin_id),
        "old_key_mac": hex(&old_key_mac),
    });
    let mut entry = AuditEntry {
        seq,
        at: duration::now(),
        actor_id: actor.id.map(i64::from),
        actor: actor.name.clone(),
        action: AuditAction::AuditKeyRotate.as_str().to_string(),
        target: "-".into(),
        outcome: Outcome::Ok,
        detail: detail.to_string(),
        prev_mac: head_mac,
        mac: Vec::new(),
        state: state.to_vec(),
    };
    entry.mac = mac_of(new, &entry).to_vec();
    tx.insert_audit(&entry)?;
    tx.set_meta(KEY_CHECK, &new_check)?;
    tx.set_meta(KEY_EPOCH, seq.to_string().as_bytes())?;
    Ok((seq, entry.mac))
}

/// Whether `e` is a genuine row of the chain written with `key` (its own MAC verifies;
/// its place in the chain is [`verify`]'s to check).
pub fn authentic(key: &MacKey, e: &AuditEntry) -> bool {
    key.verify(&[&e.prev_mac, &canonical(e)], &e.mac)
}

/// The result of checking the whole chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    /// Rows checked before the first bad one (all of them when the chain is intact).
    pub checked: u64,
    /// The first sequence number that failed, with the reason.
    pub first_bad: Option<(i64, String)>,
    /// Stored rows checked against the digest of their latest audit entry.
    pub rows_checked: u64,
    /// The first stored row whose state is not the one the audit log last recorded.
    pub first_bad_row: Option<(RowId, String)>,
    /// Seconds the chain check took.
    pub chain_secs: f64,
    /// Seconds the row-state check took.
    pub rows_secs: f64,
}

impl Verification {
    /// Whether both the chain and every row's state check out.
    pub fn ok(&self) -> bool {
        self.first_bad.is_none() && self.first_bad_row.is_none()
    }

    /// Audit records verified per second.
    pub fn chain_rate(&self) -> u64 {
        (self.checked as f64 / self.chain_secs.max(1e-9)).round() as u64
    }

    /// Stored rows checked per second.
    pub fn rows_rate(&self) -> u64 {
        (self.rows_checked as f64 / self.rows_secs.max(1e-9)).round() as u64
    }

    /// One line saying what was checked, for people.
    pub fn summary(&self) -> String {
        format!(
            "audit chain intact: {} records verified ({}/s); {} stored rows match their latest records ({}/s)",
            self.checked,
            self.chain_rate(),
            self.rows_checked,
            self.rows_rate()
        )
    }
}

/// How many audit entries go from the reading thread to the checking one at a time.
const VERIFY_BATCH: usize = 1024;

/// The chain check of [`verify`], fed one entry at a time in seq order.
struct ChainCheck<'a> {
    key: &'a MacKey,
    epoch: Option<&'a Epoch>,
    /// The first entry checked by its MAC (1, or the current key's hand-over).
    start: i64,
    expected_seq: i64,
    /// The `prev_mac` the next entry must have (unknown for entry 1 after a rotation).
    prev: Option<Vec<u8>>,
    prefix: PrefixDigest,
    checked: u64,
    first_bad: Option<(i64, String)>,
    latest: HashMap<RowId, Option<Digest>>,
}

impl<'a> ChainCheck<'a> {
    fn new(key: &'a MacKey, epoch: Option<&'a Epoch>, first_prev: Option<Vec<u8>>) -> Self {
        ChainCheck {
            key,
            epoch,
            start: epoch.map_or(1, |ep| ep.start),
            expected_seq: 1,
            prev: first_prev,
            prefix: PrefixDigest::new(),
            checked: 0,
            first_bad: None,
            latest: HashMap::new(),
        }
    }

    /// Checks the next entry; false (with `first_bad` set) at the first bad one. Before
    /// the current key's epoch entries are checked against the hand-over's digest (and
    /// their links); from it on, by their MACs.
    fn check(&mut self, e: AuditEntry) -> bool {
        let problem = if e.seq != self.expected_seq {
            let seq = self.expected_seq;
            Some((seq, format!("row {seq} is missing")))
        } else if self.prev.as_ref().is_some_and(|p| *p != e.prev_mac) {
            Some((e.seq, "does not follow the previous row".to_string()))
        } else if e.seq < self.start {
            self.prefix.add(&e);
            None
        } else if !self.key.verify(&[&e.prev_mac, &canonical(&e)], &e.mac) {
            Some((e.seq, "row was modified (mac mismatch)".to_string()))
        } else if e.seq == self.start
            && self.epoch.is_some_and(|ep| {
                std::mem::replace(&mut self.prefix, PrefixDigest::new()).finish() != ep.prefix
            })
        {
            Some((
                e.seq,
                "the entries before this audit key hand-over are not the ones it recorded (one was changed)"
                    .to_string(),
            ))
        } else {
            None
        };
        let latest = &mut self.latest;
        let problem = problem.or_else(|| {
            StateDigests::decode_each(&e.state, |row, d| {
                latest.insert(row, d);
            })
            .is_none()
            .then(|| (e.seq, "its row-state digests are malformed".to_string()))
        });
        if problem.is_some() {
            self.first_bad = problem;
            return false;
        }
        self.checked += 1;
        self.expected_seq += 1;
        self.prev = Some(e.mac);
        true
    }
}

/// Checks that seq numbers are contiguous from 1, that each row's `prev_mac` is the
/// previous row's `mac`, and that every MAC is right. Stops at the first bad row.
///
/// Then, when the chain is intact, checks every stored row (users, keys, key versions,
/// records, password identities) against the digest its latest audit entry recorded: a
/// row rolled back to an older state, changed, added or removed outside zencrypt is named
/// by table and id. An empty log in a database with users is a failure too.
pub fn verify(tx: &mut dyn Tx, key: &MacKey) -> Result<Verification> {
    check_key(tx, key, None, false)?;
    let started = std::time::Instant::now();
    let epoch = epoch(tx, key)?;
    let first_prev = match &epoch {
        Some(_) => None,
        None => Some(genesis(key, &chain_origin(tx, key)?)),
    };
    let mut check = ChainCheck::new(key, epoch.as_ref(), first_prev);
    // The database's reads and the checks run side by side: one thread fetches and
    // decodes entries, another checks them, batch by batch, in order.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let scanned = std::thread::scope(|scope| {
        let (send, receive) = std::sync::mpsc::sync_channel::<Vec<AuditEntry>>(4);
        let checker = &mut check;
        let stop = &stop;
        scope.spawn(move || {
            for batch in receive {
                for e in batch {
                    if !checker.check(e) {
                        stop.store(true, std::sync::atomic::Ordering::Relaxed);
                        return;
                    }
                }
            }
        });
        let mut batch = Vec::with_capacity(VERIFY_BATCH);
        let scanned = tx.scan_audit(&mut |e: AuditEntry| {
            batch.push(e);
            if batch.len() == VERIFY_BATCH
                && send
                    .send(std::mem::replace(
                        &mut batch,
                        Vec::with_capacity(VERIFY_BATCH),
                    ))
                    .is_err()
            {
                return false;
            }
            !stop.load(std::sync::atomic::Ordering::Relaxed)
        });
        if !batch.is_empty() {
            let _ = send.send(batch);
        }
        scanned
    });
    scanned?;
    let ChainCheck {
        expected_seq,
        start,
        checked,
        mut first_bad,
        latest,
        ..
    } = check;
    if first_bad.is_none() && epoch.is_some() && expected_seq <= start {
        first_bad = Some((expected_seq, format!("row {expected_seq} is missing")));
    }
    if first_bad.is_none() && checked == 0 && tx.user_count()? > 0 {
        first_bad = Some((
            1,
            "the audit log is empty, but the database has users (its rows were removed)".into(),
        ));
    }
    let chain_secs = started.elapsed().as_secs_f64();
    let started = std::time::Instant::now();
    let (rows_checked, first_bad_row) = if first_bad.is_none() {
        verify_rows(tx, latest)?
    } else {
        (0, None)
    };
    Ok(Verification {
        checked,
        first_bad,
        rows_checked,
        first_bad_row,
        chain_secs,
        rows_secs: started.elapsed().as_secs_f64(),
    })
}

/// Compares every stored row with the latest digest the chain recorded for it; returns
/// how many rows matched before the first that did not (the lowest by table and id).
fn verify_rows(
    tx: &mut dyn Tx,
    mut latest: HashMap<RowId, Option<Digest>>,
) -> Result<(u64, Option<(RowId, String)>)> {
    let mut checked = 0u64;
    let mut bad: BTreeMap<RowId, &'static str> = BTreeMap::new();
    tx.scan_rows(&mut |row| {
        let (id, d) = row_digest(&row);
        match latest.remove(&id) {
            Some(Some(want)) if want == d || earlier_digest(&row) == Some(want) => checked += 1,
            Some(Some(_)) => {
                bad.insert(
                    id,
                    "is not in the state its latest audit entry recorded (changed or rolled back)",
                );
            }
            Some(None) => {
                bad.insert(id, "was deleted according to the audit log, but is present");
            }
            None => {
                bad.insert(id, "is not in the audit log (added outside zencrypt)");
            }
        }
        true
    })?;
    for (id, d) in latest {
        if d.is_some() {
            bad.insert(id, "is missing (removed outside zencrypt)");
        }
    }
    Ok((
        checked,
        bad.into_iter()
            .next()
            .map(|(id, why)| (id, why.to_string())),
    ))
}

/// Lists rows matching `filter`, most recent `limit` rows in seq order.
pub fn list(tx: &mut dyn Tx, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
    Ok(tx.list_audit(filter)?)
}

/// Parses a row's stored detail back into JSON (a damaged detail is shown as a string).
pub fn detail_json(e: &AuditEntry) -> Value {
    serde_json::from_str(&e.detail).unwrap_or_else(|_| Value::String(e.detail.clone()))
}

/// The error for a failed verification: a broken chain, else a row whose state the
/// chain does not vouch for.
pub fn broken(v: &Verification) -> Option<Error> {
    if let Some((seq, reason)) = &v.first_bad {
        return Some(Error::AuditChainBroken {
            seq: *seq,
            reason: reason.clone(),
        });
    }
    v.first_bad_row
        .as_ref()
        .map(|(row, why)| Error::Integrity(format!("{row} {why}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(seq: i64, detail: &str) -> AuditEntry {
        AuditEntry {
            seq,
            at: 1,
            actor_id: Some(2),
            actor: "alice".into(),
            action: AuditAction::UserList.as_str().into(),
            target: "-".into(),
            outcome: Outcome::Ok,
            detail: detail.into(),
            prev_mac: vec![0; 32],
            mac: vec![],
            state: vec![],
        }
    }

    #[test]
    fn every_field_is_covered_by_the_mac() {
        let key = MacKey::new(vec![9; 32]);
        let base = entry(1, "{}");
        let m = mac_of(&key, &base);
        let variants: Vec<AuditEntry> = vec![
            AuditEntry {
                seq: 2,
                ..base.clone()
            },
            AuditEntry {
                at: 2,
                ..base.clone()
            },
            AuditEntry {
                actor_id: None,
                ..base.clone()
            },
            AuditEntry {
                actor: "bob".into(),
                ..base.clone()
            },
            AuditEntry {
                action: AuditAction::UserAdd.as_str().into(),
                ..base.clone()
            },
            AuditEntry {
                target: "x".into(),
                ..base.clone()
            },
            AuditEntry {
                outcome: Outcome::Denied,
                ..base.clone()
            },
            AuditEntry {
                detail: "{ }".into(),
                ..base.clone()
            },
            AuditEntry {
                prev_mac: vec![1; 32],
                ..base.clone()
            },
            AuditEntry {
                state: vec![1],
                ..base.clone()
            },
        ];
        for v in variants {
            assert_ne!(mac_of(&key, &v), m, "{v:?}");
        }
    }

    #[test]
    fn only_the_key_the_log_is_written_with_may_extend_it() {
        use crate::sqlite_backend::SqliteStore;
        use crate::storage::Storage;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let mut store = SqliteStore::open(&path).unwrap();
        let right = MacKey::new(vec![1; 32]);
        let wrong = MacKey::new(vec![2; 32]);
        let actor = Actor {
            id: None,
            name: "x".into(),
        };
        let add = |store: &mut SqliteStore, key: &MacKey| -> Result<i64> {
            let mut tx = store.write()?;
            let (seq, _) = append(
                tx.as_mut(),
                key,
                &actor,
                AuditAction::DbStatus,
                "-",
                Outcome::Ok,
                &json!({}),
            )?;
            tx.commit()?;
            Ok(seq)
        };
        assert_eq!(add(&mut store, &right).unwrap(), 1);
        let e = add(&mut store, &wrong).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().starts_with("the audit key "), "{e}");
        let mut tx = store.write().unwrap();
        assert!(matches!(verify(tx.as_mut(), &wrong), Err(Error::Config(_))));
        drop(tx);
        // A log written before the check value existed: the newest row decides.
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute("DELETE FROM meta WHERE key = 'audit_key_check'", [])
            .unwrap();
        assert!(add(&mut store, &wrong).is_err());
        assert_eq!(add(&mut store, &right).unwrap(), 2);
        let mut tx = store.write().unwrap();
        assert!(tx.meta(KEY_CHECK).unwrap().is_some());
        assert_eq!(verify(tx.as_mut(), &right).unwrap().checked, 2);
    }
}
