//! Row integrity: what binds each stored row so that whoever can write the database, but
//! holds no password and not the audit key, cannot change it unnoticed.
//!
//! - Installation-wide rows (users: role, status, credentials; sessions: user and
//!   lifetime) carry a MAC under the audit key.
//! - A user's own rows (keys, key versions, records, password identities) carry a MAC
//!   under that user's *integrity key*, derived from the user key, which a password
//!   change does not replace. Another user, an administrator or the database's operator
//!   cannot compute it.
//! - Every write also yields a digest of the row's new state; the audit entry of the
//!   action carries the digests ([`StateDigests`]), so `audit verify` can tell a row rolled
//!   back to an older, validly bound state (see docs/threat-model.md, "Row integrity").
//!
//! The encodings are built from domain values only, so every storage backend binds the
//! same bytes. [`Sealed`] puts this in front of a storage transaction: rows are checked as
//! they are read and bound as they are written, and the domain code does not change.

use std::collections::BTreeMap;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::crypto::mac::MacKey;
use crate::crypto::{Aad, Key32};
use crate::error::Error;
use crate::ids::UserId;
use crate::model::{
    AuditEntry, AuditFilter, Grantee, GroupMember, GroupRow, IdentityRow, KeyEvent, KeyRecord,
    KeyShare, KeyVersionRecord, RecordFilter, RecordRow, RecordShare, RecordTransfer, RecordWrite,
    RowId, ServiceGrant, ServiceRecordKey, SessionRecord, ShareFilter, StoredRow, TransferFilter,
    UsageEvent, UserRecord,
};
use crate::storage::{NewUser, StoreError, StoreResult, Tx, UsageGroup};

/// Bytes of a row-state digest.
pub const DIGEST_LEN: usize = 16;

/// A row-state digest: the first 16 bytes of SHA-256 over the row's encoding and MAC.
pub type Digest = [u8; DIGEST_LEN];

/// Bytes of a row's MAC: HMAC-SHA256 truncated to 128 bits.
pub const ROW_MAC_LEN: usize = 16;

/// The MAC binding a row's encoding under `key`.
pub fn row_mac(key: &MacKey, encoding: &Aad) -> Vec<u8> {
    key.compute(&[encoding.as_bytes()])[..ROW_MAC_LEN].to_vec()
}

/// Whether `mac` binds `encoding` under `key` (constant time).
fn row_mac_ok(key: &MacKey, encoding: &Aad, mac: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    mac.len() == ROW_MAC_LEN
        && bool::from(key.compute(&[encoding.as_bytes()])[..ROW_MAC_LEN].ct_eq(mac))
}

/// A user's integrity key: binds the user's own rows. Derived from the user key, so it is
/// available exactly where the user key is (a session of that user).
pub struct OwnerKey {
    owner_id: UserId,
    key: MacKey,
    /// A service account's key reads its owner's records without checking them (it
    /// cannot: their bindings are under the owner's key); what it may open is decided by
    /// the data keys wrapped for it, which only the owner can make.
    reads_records_of: Option<UserId>,
}

impl OwnerKey {
    /// The integrity key of user `owner_id` with user key `user_key`.
    pub fn derive(owner_id: UserId, user_key: &Key32) -> OwnerKey {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(user_key.expose())
            .expect("HMAC accepts keys of any length");
        m.update(b"zencrypt row integrity v1");
        m.update(&owner_id.0.to_be_bytes());
        OwnerKey {
            owner_id,
            key: MacKey::new(m.finalize().into_bytes().to_vec()),
            reads_records_of: None,
        }
    }

    /// This key, also reading the records of `owner` (a service account's, see
    /// `reads_records_of`).
    pub(crate) fn reading_records_of(mut self, owner: UserId) -> OwnerKey {
        self.reads_records_of = Some(owner);
        self
    }

    /// Whose rows it binds.
    pub fn owner_id(&self) -> UserId {
        self.owner_id
    }

    /// The MAC key itself.
    pub fn mac_key(&self) -> &MacKey {
        &self.key
    }
}

impl std::fmt::Debug for OwnerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OwnerKey({}, [redacted])", self.owner_id)
    }
}

fn opt(a: Aad, v: Option<i64>) -> Aad {
    match v {
        Some(v) => a.int(v),
        None => a.field([]),
    }
}

fn opt_bytes(a: Aad, v: Option<&[u8]>) -> Aad {
    match v {
        Some(v) => a.field([1]).field(v),
        None => a.field([0]),
    }
}

/// The bound encoding of a user row (everything but the last login time).
pub fn encode_user(u: &UserRecord) -> Aad {
    let c = &u.credentials;
    let a = Aad::new("row/users")
        .int(u.id)
        .field(&u.username)
        .field(u.role.as_str())
        .field(u.status.as_str())
        .field(&c.password_hash)
        .field(&c.kek_salt)
        .int(i64::from(c.kek_params.m_kib))
        .int(i64::from(c.kek_params.t))
        .int(i64::from(c.kek_params.p))
        .field(&c.wrapped_user_key)
        .int(u.created_at)
        .int(i64::from(u.must_change_password))
        .int(i64::from(u.rows_bound));
    // Appended only when present, so rows from before recovery keys and service accounts
    // keep their binding.
    let a = match &u.recovery {
        Some(r) => a
            .field("recovery")
            .field(&r.salt)
            .field(&r.wrapped_user_key)
            .int(r.created_at),
        None => a,
    };
    let a = match u.owner_id {
        Some(owner) => a.field("owner").int(owner),
        None => a,
    };
    let a = match &u.keys {
        Some(k) => a
            .field("keys")
            .field(&k.public.recipient)
            .field(k.public.signing)
            .field(&k.wrapped),
        None => a,
    };
    match &u.pins {
        Some(p) => a.field("pins").field(p),
        None => a,
    }
}

/// The bound encoding of a service grant.
pub fn encode_service_grant(g: &ServiceGrant) -> Aad {
    Aad::new("row/service_grants")
        .int(g.id)
        .int(g.service_id)
        .int(g.owner_id)
        .field(&g.pattern)
        .int(g.created_at)
}

/// A share's grantee in a row encoding: a user as their id alone, as shares were bound
/// before groups; a group marked apart (fields are length-prefixed, so the two cannot be
/// taken for each other). With `marked`, a user as the release that brought groups bound
/// them, behind a `[0]` mark: rows it wrote keep that digest in the audit log
/// ([`earlier_digest`]).
fn grantee_as(a: Aad, to: Grantee, marked: bool) -> Aad {
    match to {
        Grantee::User(id) if marked => a.field([0]).int(id),
        Grantee::User(id) => a.int(id),
        Grantee::Group { id, epoch } => a.field([1]).int(id).int(epoch),
    }
}

/// The encoding of a group (its manager's signature covers the same: docs/sharing.md).
pub fn encode_group(g: &GroupRow) -> Aad {
    let a = Aad::new("row/groups")
        .int(g.id)
        .field(&g.name)
        .int(g.manager_id)
        .field(&g.recipient)
        .int(g.epoch)
        .field(&g.history)
        .field(&g.members_digest)
        .int(g.created_at);
    // Hand-overs came later: a group never handed over keeps its earlier encoding.
    if g.handovers.is_empty() {
        a
    } else {
        a.field(&g.handovers)
    }
}

/// The encoding of a group member (the manager's signature covers more).
pub fn encode_group_member(m: &GroupMember) -> Aad {
    Aad::new("row/group_members")
        .int(m.id)
        .int(m.group_id)
        .int(m.user_id)
        .int(m.epoch)
        .field(&m.wrapped_identity)
        .int(m.added_at)
}

/// The encoding of a record share (its owner's signature covers more: docs/sharing.md).
pub fn encode_record_share(s: &RecordShare) -> Aad {
    record_share_as(s, false)
}

fn record_share_as(s: &RecordShare, marked: bool) -> Aad {
    let a = grantee_as(
        Aad::new("row/record_shares")
            .int(s.id)
            .int(s.record_id)
            .int(s.owner_id),
        s.to,
        marked,
    )
    .int(s.version)
    .field(&s.wrapped_dek)
    .field(&s.grant_signature)
    .int(s.created_at);
    // Appended only when set, so read shares from before it keep their binding.
    if s.can_write { a.field("write") } else { a }
}

/// The encoding of a shared key version (its owner's signatures cover more:
/// docs/sharing.md).
pub fn encode_key_share(s: &KeyShare) -> Aad {
    key_share_as(s, false)
}

fn key_share_as(s: &KeyShare, marked: bool) -> Aad {
    let a = Aad::new("row/key_shares")
        .int(s.id)
        .int(s.key_id)
        .field(&s.key_name)
        .int(s.owner_id);
    let a = grantee_as(a, s.to, marked)
        .int(s.version)
        .field(&s.wrapped_material)
        .field(&s.grant_signature)
        .int(s.created_at);
    // Appended only when set, so read shares from before it keep their binding.
    if s.can_write { a.field("write") } else { a }
}

/// The encoding of a transfer (its giver's signature covers more: docs/sharing.md,
/// "Transfers"); when it was taken in is a note, not part of it.
pub fn encode_record_transfer(t: &RecordTransfer) -> Aad {
    Aad::new("row/record_transfers")
        .int(t.id)
        .int(t.record_id)
        .int(t.owner_id)
        .int(t.giver_id)
        .int(t.recipient_id)
        .int(t.version)
        .field(&t.wrapped_dek)
        .int(t.created_at)
}

/// The encoding of a recipient's write (its writer's signature covers more:
/// docs/sharing.md, "Write shares").
pub fn encode_record_write(w: &RecordWrite) -> Aad {
    Aad::new("row/record_writes")
        .int(w.id)
        .int(w.record_id)
        .int(w.owner_id)
        .int(w.writer_id)
        .int(w.base_version)
        .field(&w.ciphertext)
        .field(&w.wrapped_dek)
        .int(w.created_at)
}

/// The bound encoding of a session row: its user and lifetime. Revocation is not bound:
/// it wipes the session's key copy, which no edit can bring back.
pub fn encode_session(s: &SessionRecord) -> Aad {
    Aad::new("row/sessions")
        .field(&s.id)
        .int(s.user_id)
        .int(s.created_at)
        .int(s.expires_at)
}

/// The bound encoding of a key row.
pub fn encode_key(k: &KeyRecord) -> Aad {
    let a = Aad::new("row/keys")
        .int(k.id)
        .int(k.owner_id)
        .field(&k.name)
        .field(k.status.as_str())
        .int(i64::from(k.exportable));
    let a = opt(a, k.rotation_period);
    let a = opt(a, k.expires_at);
    let a = a
        .int(k.min_decrypt_version)
        .int(k.latest_version)
        .int(k.created_at);
    // Appended only when present, so rows from before it keep their binding.
    match &k.share_digest {
        Some(d) => a.field("shares").field(d),
        None => a,
    }
}

/// The bound encoding of a key version row of a key owned by `owner_id`.
pub fn encode_key_version(owner_id: UserId, v: &KeyVersionRecord) -> Aad {
    let a = Aad::new("row/key_versions")
        .int(owner_id)
        .int(v.key_id)
        .int(v.version);
    opt_bytes(a, v.wrapped_material.as_deref())
        .int(v.created_at)
        .int(v.encryptions)
        .int(v.bytes)
}

/// The bound encoding of a record row. The ciphertext is not in it: the wrapped data key
/// is, and a fresh data key seals each version, so only the current value opens.
pub fn encode_record(r: &RecordRow) -> Aad {
    let a = Aad::new("row/records")
        .int(r.id)
        .field(&r.token)
        .int(r.owner_id);
    let a = opt_bytes(a, r.name.as_deref().map(str::as_bytes));
    let a = opt(a, r.key_id);
    let a = opt(a, r.key_version);
    let a = opt(a, r.identity_id);
    let a = a.field(&r.wrapped_dek).int(r.created_at).int(r.updated_at);
    let a = opt(a, r.expires_at);
    let a = opt(a, r.deleted_at);
    let a = a.int(r.version);
    // Appended only when present, so rows from before them keep their binding.
    let a = match &r.value_hash {
        Some(h) => a.field("value").field(h),
        None => a,
    };
    match &r.share_digest {
        Some(d) => a.field("shares").field(d),
        None => a,
    }
}

/// The bound encoding of an earlier version of a record (a `record_versions` row, read as
/// a record row): the record it belongs to (id, random token, owner and creation time, so
/// it cannot be moved to another record, even one that reuses a deleted record's id) and the version's own key, data key and time. Its ciphertext
/// is bound by that data key, as a record's is.
pub fn encode_record_version(r: &RecordRow) -> Aad {
    let a = Aad::new("row/record_versions")
        .int(r.id)
        .field(&r.token)
        .int(r.owner_id)
        .int(r.created_at)
        .int(r.version);
    let a = opt(a, r.key_id);
    let a = opt(a, r.key_version);
    let a = opt(a, r.identity_id);
    let a = a.field(&r.wrapped_dek).int(r.updated_at);
    match &r.value_hash {
        Some(h) => a.field("value").field(h),
        None => a,
    }
}

/// The bound encoding of a password identity row.
pub fn encode_identity(i: &IdentityRow) -> Aad {
    Aad::new("row/password_identities")
        .int(i.id)
        .int(i.owner_id)
        .field(&i.salt)
        .int(i64::from(i.kdf.m_kib))
        .int(i64::from(i.kdf.t))
        .int(i64::from(i.kdf.p))
        .field(&i.wrapped_identity_key)
        .int(i.created_at)
        .int(i.kek_scheme)
}

/// A stored row's identity, encoding and MAC, for digests.
pub fn describe(row: &StoredRow) -> (RowId, Aad, &[u8]) {
    match row {
        StoredRow::User(u) => (RowId::User(u.id), encode_user(u), &u.mac),
        StoredRow::Key(k) => (RowId::Key(k.id), encode_key(k), &k.mac),
        StoredRow::KeyVersion(owner, v) => (
            RowId::KeyVersion(v.key_id, v.version),
            encode_key_version(UserId(*owner), v),
            &v.mac,
        ),
        StoredRow::Record(r) => (RowId::Record(r.id), encode_record(r), &r.mac),
        StoredRow::Identity(i) => (RowId::Identity(i.id), encode_identity(i), &i.mac),
        StoredRow::ServiceGrant(g) => (RowId::ServiceGrant(g.id), encode_service_grant(g), &g.mac),
        StoredRow::KeyShare(s) => (RowId::KeyShare(s.id), encode_key_share(s), &s.signature),
        StoredRow::RecordShare(s) => (
            RowId::RecordShare(s.id),
            encode_record_share(s),
            &s.signature,
        ),
        StoredRow::Group(g) => (RowId::Group(g.id), encode_group(g), &g.signature),
        StoredRow::GroupMember(m) => (
            RowId::GroupMember(m.id),
            encode_group_member(m),
            &m.signature,
        ),
        StoredRow::RecordWrite(w) => (
            RowId::RecordWrite(w.id),
            encode_record_write(w),
            &w.signature,
        ),
        StoredRow::RecordTransfer(t) => (
            RowId::RecordTransfer(t.id),
            encode_record_transfer(t),
            &t.signature,
        ),
    }
}

/// The digest of a row's state: its encoding and its MAC.
pub fn digest(encoding: &Aad, mac: &[u8]) -> Digest {
    use sha2::Digest as _;
    // The encoding with the MAC appended as one more field, hashed without a copy.
    let mut h = Sha256::new();
    h.update(encoding.as_bytes());
    h.update((mac.len() as u64).to_be_bytes());
    h.update(mac);
    let full = h.finalize();
    let mut d = [0u8; DIGEST_LEN];
    d.copy_from_slice(&full[..DIGEST_LEN]);
    d
}

/// The digest of a stored row.
pub fn row_digest(row: &StoredRow) -> (RowId, Digest) {
    let (id, enc, mac) = describe(row);
    (id, digest(&enc, mac))
}

/// The digest a share with a user had when the release that brought groups wrote it (its
/// user behind a mark, see [`grantee_as`]); `None` for any other row. Verification
/// accepts either, so that rows from that release still match their audit entries.
pub fn earlier_digest(row: &StoredRow) -> Option<Digest> {
    match row {
        StoredRow::RecordShare(s) if matches!(s.to, Grantee::User(_)) => {
            Some(digest(&record_share_as(s, true), &s.signature))
        }
        StoredRow::KeyShare(s) if matches!(s.to, Grantee::User(_)) => {
            Some(digest(&key_share_as(s, true), &s.signature))
        }
        _ => None,
    }
}

/// The error for a row whose binding does not verify.
pub fn tampered(row: &RowId) -> Error {
    Error::Integrity(format!(
        "{row} failed its integrity check: it was changed outside zencrypt (restore the database from a backup)"
    ))
}

/// The row states written by one action: for each row, its new digest, or `None` when
/// it was deleted. Encoded into the audit entry of the action.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StateDigests(pub BTreeMap<RowId, Option<Digest>>);

impl StateDigests {
    fn tag(row: &RowId) -> Option<(u8, i64, i64)> {
        Some(match row {
            RowId::User(id) => (1, *id, 0),
            RowId::Key(id) => (2, *id, 0),
            RowId::KeyVersion(k, v) => (KEY_VERSION_TAG, *k, *v),
            RowId::Record(id) => (4, *id, 0),
            RowId::Identity(id) => (5, *id, 0),
            RowId::ServiceGrant(id) => (6, *id, 0),
            RowId::RecordShare(id) => (7, *id, 0),
            RowId::KeyShare(id) => (8, *id, 0),
            RowId::Group(id) => (9, *id, 0),
            RowId::GroupMember(id) => (10, *id, 0),
            RowId::RecordWrite(id) => (11, *id, 0),
            RowId::RecordTransfer(id) => (12, *id, 0),
            RowId::Session(_) | RowId::RecordVersion(..) => return None,
        })
    }

    /// Records a row's new state (sessions and record versions are not recorded).
    pub fn set(&mut self, row: RowId, digest: Option<Digest>) {
        if !matches!(row, RowId::Session(_) | RowId::RecordVersion(..)) {
            self.0.insert(row, digest);
        }
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The compact encoding stored in the audit row: per row a tag byte, the row's id as
    /// a big-endian integer (a key version: the key id, then the version), a presence
    /// byte and, when present, the digest.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.0.len() * (10 + DIGEST_LEN));
        for (row, d) in &self.0 {
            let Some((tag, a, b)) = Self::tag(row) else {
                continue;
            };
            out.push(tag);
            out.extend_from_slice(&a.to_be_bytes());
            if tag == KEY_VERSION_TAG {
                out.extend_from_slice(&b.to_be_bytes());
            }
            match d {
                Some(d) => {
                    out.push(1);
                    out.extend_from_slice(d);
                }
                None => out.push(0),
            }
        }
        out
    }

    /// Visits each (row, digest) of an encoding; `None` when it is malformed.
    pub fn decode_each(
        mut bytes: &[u8],
        mut visit: impl FnMut(RowId, Option<Digest>),
    ) -> Option<()> {
        fn int(bytes: &mut &[u8]) -> Option<i64> {
            let (head, rest) = bytes.split_first_chunk::<8>()?;
            *bytes = rest;
            Some(i64::from_be_bytes(*head))
        }
        while let Some((&tag, rest)) = bytes.split_first() {
            bytes = rest;
            let a = int(&mut bytes)?;
            let row = match tag {
                1 => RowId::User(a),
                2 => RowId::Key(a),
                KEY_VERSION_TAG => RowId::KeyVersion(a, int(&mut bytes)?),
                4 => RowId::Record(a),
                5 => RowId::Identity(a),
                6 => RowId::ServiceGrant(a),
                7 => RowId::RecordShare(a),
                8 => RowId::KeyShare(a),
                9 => RowId::Group(a),
                10 => RowId::GroupMember(a),
                11 => RowId::RecordWrite(a),
                12 => RowId::RecordTransfer(a),
                _ => return None,
            };
            let (&present, rest) = bytes.split_first()?;
            bytes = rest;
            match present {
                0 => visit(row, None),
                1 => {
                    let (d, rest) = bytes.split_first_chunk::<DIGEST_LEN>()?;
                    bytes = rest;
                    visit(row, Some(*d));
                }
                _ => return None,
            }
        }
        Some(())
    }
}

/// The tag of a key version in [`StateDigests`]' encoding (the only row with two ids).
const KEY_VERSION_TAG: u8 = 3;

/// A storage transaction with row integrity in front: every bound row is checked as it is
/// read (exit 7 naming the row when it does not verify) and bound as it is written, and
/// the new states are collected for the action's audit entry.
pub struct Sealed<'a> {
    inner: Box<dyn Tx + 'a>,
    audit_key: &'a MacKey,
    owner: Option<&'a OwnerKey>,
    written: StateDigests,
}

impl<'a> Sealed<'a> {
    /// Puts integrity in front of `inner`. `owner` is the acting user's integrity key:
    /// without it, that user's own rows can be neither read nor written.
    pub fn new(
        inner: Box<dyn Tx + 'a>,
        audit_key: &'a MacKey,
        owner: Option<&'a OwnerKey>,
    ) -> Self {
        Sealed {
            inner,
            audit_key,
            owner,
            written: StateDigests::default(),
        }
    }

    /// The row states written so far (and forgets them).
    pub fn take_written(&mut self) -> StateDigests {
        std::mem::take(&mut self.written)
    }

    /// The transaction underneath, for steps that handle bindings themselves.
    pub fn raw(&mut self) -> &mut dyn Tx {
        self.inner.as_mut()
    }

    fn owner_key(&self, owner_id: UserId, row: &RowId) -> Result<&MacKey, StoreError> {
        match self.owner {
            Some(k) if k.owner_id == owner_id => Ok(&k.key),
            _ => Err(StoreError::Integrity {
                message: format!("{row} belongs to another user and cannot be checked here"),
            }),
        }
    }

    fn check(key: &MacKey, row: &RowId, enc: &Aad, mac: &[u8]) -> StoreResult<()> {
        if row_mac_ok(key, enc, mac) {
            Ok(())
        } else {
            Err(StoreError::Integrity {
                message: tampered(row).to_string(),
            })
        }
    }

    /// Records a record's shares (with `to`, or all) as gone.
    fn forget_shares(&mut self, record_id: i64, to: Option<Grantee>) -> StoreResult<()> {
        let shares = self.inner.record_shares(&ShareFilter {
            record_id: Some(record_id),
            ..ShareFilter::default()
        })?;
        for s in shares
            .iter()
            .filter(|s| to.is_none_or(|t| t.who() == s.to.who()))
        {
            self.written.set(RowId::RecordShare(s.id), None);
        }
        Ok(())
    }

    /// Records the write waiting for a record as gone.
    fn forget_writes(&mut self, record_id: i64) -> StoreResult<()> {
        for w in self.inner.record_writes(None, Some(record_id))? {
            self.written.set(RowId::RecordWrite(w.id), None);
        }
        Ok(())
    }

    /// Records a record's transfer as gone.
    fn forget_transfers(&mut self, record_id: i64) -> StoreResult<()> {
        for t in self.inner.record_transfers(&TransferFilter {
            record_id: Some(record_id),
            ..TransferFilter::default()
        })? {
            self.written.set(RowId::RecordTransfer(t.id), None);
        }
        Ok(())
    }

    fn note(&mut self, row: RowId, enc: &Aad, mac: &[u8]) {
        self.written.set(row, Some(digest(enc, mac)));
    }

    /// Checks every row read (an `Option` or a `Vec` of them) with `check`.
    fn each<'r, R: 'r>(
        &self,
        rows: impl IntoIterator<Item = &'r R>,
        check: fn(&Self, &R) -> StoreResult<()>,
    ) -> StoreResult<()> {
        rows.into_iter().try_for_each(|r| check(self, r))
    }

    fn check_session(&self, s: &SessionRecord) -> StoreResult<()> {
        // A session ended by the upgrade to bindings has no MAC, and no key copy either:
        // it is refused as revoked, which it is.
        if s.mac.is_empty() && s.revoked_at.is_some() {
            return Ok(());
        }
        Self::check(
            self.audit_key,
            &RowId::Session(s.id.clone()),
            &encode_session(s),
            &s.mac,
        )
    }

    fn check_user(&self, u: &UserRecord) -> StoreResult<()> {
        Self::check(self.audit_key, &RowId::User(u.id), &encode_user(u), &u.mac)
    }

    fn check_key(&self, k: &KeyRecord) -> StoreResult<()> {
        let row = RowId::Key(k.id);
        Self::check(
            self.owner_key(UserId(k.owner_id), &row)?,
            &row,
            &encode_key(k),
            &k.mac,
        )
    }

    fn check_version(&self, v: &KeyVersionRecord) -> StoreResult<()> {
        let row = RowId::KeyVersion(v.key_id, v.version);
        let owner = self.owner.map_or(UserId(0), |o| o.owner_id);
        let key = self.owner_key(owner, &row)?;
        Self::check(key, &row, &encode_key_version(owner, v), &v.mac)
    }

    /// Whether the acting key reads `owner`'s records unchecked (a service account).
    fn reads_unchecked(&self, owner: i64) -> bool {
        self.owner
            .is_some_and(|o| o.reads_records_of == Some(UserId(owner)))
    }

    fn check_grant(&self, g: &ServiceGrant) -> StoreResult<()> {
        let row = RowId::ServiceGrant(g.id);
        Self::check(
            self.owner_key(UserId(g.owner_id), &row)?,
            &row,
            &encode_service_grant(g),
            &g.mac,
        )
    }

    fn check_record(&self, r: &RecordRow) -> StoreResult<()> {
        if self.reads_unchecked(r.owner_id) {
            return Ok(());
        }
        let row = RowId::Record(r.id);
        Self::check(
            self.owner_key(UserId(r.owner_id), &row)?,
            &row,
            &encode_record(r),
            &r.mac,
        )
    }

    fn check_record_version(&self, r: &RecordRow) -> StoreResult<()> {
        let row = RowId::RecordVersion(r.id, r.version);
        Self::check(
            self.owner_key(UserId(r.owner_id), &row)?,
            &row,
            &encode_record_version(r),
            &r.mac,
        )
    }

    /// Checks many records, spread over the cores (each check is independent).
    fn check_records(&self, rows: &[RecordRow]) -> StoreResult<()> {
        let keyed = rows
            .iter()
            .filter(|r| !self.reads_unchecked(r.owner_id))
            .map(|r| Ok((r, self.owner_key(UserId(r.owner_id), &RowId::Record(r.id))?)))
            .collect::<StoreResult<Vec<_>>>()?;
        crate::parallel::map(&keyed, |(r, key)| {
            Self::check(key, &RowId::Record(r.id), &encode_record(r), &r.mac)
        })
        .into_iter()
        .collect()
    }

    fn check_identity(&self, i: &IdentityRow) -> StoreResult<()> {
        let row = RowId::Identity(i.id);
        Self::check(
            self.owner_key(UserId(i.owner_id), &row)?,
            &row,
            &encode_identity(i),
            &i.mac,
        )
    }

    fn bind_key(&mut self, k: &KeyRecord) -> StoreResult<KeyRecord> {
        let row = RowId::Key(k.id);
        let enc = encode_key(k);
        let mac = row_mac(self.owner_key(UserId(k.owner_id), &row)?, &enc);
        self.note(row, &enc, &mac);
        Ok(KeyRecord { mac, ..k.clone() })
    }

    fn bind_version(&mut self, v: &KeyVersionRecord) -> StoreResult<KeyVersionRecord> {
        let row = RowId::KeyVersion(v.key_id, v.version);
        let owner = self.owner.map_or(UserId(0), |o| o.owner_id);
        let enc = encode_key_version(owner, v);
        let mac = row_mac(self.owner_key(owner, &row)?, &enc);
        self.note(row, &enc, &mac);
        Ok(KeyVersionRecord { mac, ..v.clone() })
    }

    fn record_mac(&mut self, r: &RecordRow) -> StoreResult<Vec<u8>> {
        let row = RowId::Record(r.id);
        let enc = encode_record(r);
        let mac = row_mac(self.owner_key(UserId(r.owner_id), &row)?, &enc);
        self.note(row, &enc, &mac);
        Ok(mac)
    }

    fn bind_identity(&mut self, i: &IdentityRow) -> StoreResult<IdentityRow> {
        let row = RowId::Identity(i.id);
        let enc = encode_identity(i);
        let mac = row_mac(self.owner_key(UserId(i.owner_id), &row)?, &enc);
        self.note(row, &enc, &mac);
        Ok(IdentityRow { mac, ..i.clone() })
    }

    fn bind_user(&mut self, u: &UserRecord) -> Vec<u8> {
        let enc = encode_user(u);
        let mac = row_mac(self.audit_key, &enc);
        self.note(RowId::User(u.id), &enc, &mac);
        mac
    }
}

fn user_copy(u: &UserRecord, mac: Vec<u8>) -> UserRecord {
    UserRecord {
        id: u.id,
        username: u.username.clone(),
        role: u.role,
        status: u.status,
        credentials: crate::model::Credentials {
            password_hash: u.credentials.password_hash.clone(),
            kek_salt: u.credentials.kek_salt.clone(),
            kek_params: u.credentials.kek_params,
            wrapped_user_key: u.credentials.wrapped_user_key.clone(),
        },
        created_at: u.created_at,
        last_login_at: u.last_login_at,
        must_change_password: u.must_change_password,
        rows_bound: u.rows_bound,
        recovery: u.recovery.clone(),
        owner_id: u.owner_id,
        keys: u.keys.clone(),
        pins: u.pins.clone(),
        mac,
    }
}

impl Tx for Sealed<'_> {
    fn commit(self: Box<Self>) -> StoreResult<()> {
        self.inner.commit()
    }

    // Whole-table copies move rows as stored, bindings included; the copy is verified as
    // a whole (`audit verify`), not row by row on the way.
    fn dump(
        &mut self,
        table: &crate::storage::schema::Table,
        visit: &mut dyn FnMut(Vec<crate::storage::schema::Value>) -> StoreResult<()>,
    ) -> StoreResult<()> {
        self.inner.dump(table, visit)
    }
    fn load(
        &mut self,
        table: &crate::storage::schema::Table,
        row: &[crate::storage::schema::Value],
    ) -> StoreResult<()> {
        self.inner.load(table, row)
    }

    fn database_id(&mut self) -> StoreResult<Vec<u8>> {
        self.inner.database_id()
    }
    fn meta(&mut self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        self.inner.meta(key)
    }
    fn set_meta(&mut self, key: &str, value: &[u8]) -> StoreResult<()> {
        self.inner.set_meta(key, value)
    }

    fn user_count(&mut self) -> StoreResult<i64> {
        self.inner.user_count()
    }
    fn insert_user(&mut self, user: &NewUser<'_>) -> StoreResult<i64> {
        let id = self.inner.insert_user(user)?;
        let mut u = self
            .inner
            .user_by_id(id)?
            .ok_or_else(|| StoreError::Integrity {
                message: format!("users row {id} vanished as it was written"),
            })?;
        u.mac = self.bind_user(&u);
        self.inner.set_row_mac(&RowId::User(id), &u.mac)?;
        Ok(id)
    }
    fn user_by_name(&mut self, username: &str) -> StoreResult<Option<UserRecord>> {
        let u = self.inner.user_by_name(username)?;
        self.each(&u, Self::check_user)?;
        Ok(u)
    }
    fn user_by_id(&mut self, id: i64) -> StoreResult<Option<UserRecord>> {
        let u = self.inner.user_by_id(id)?;
        self.each(&u, Self::check_user)?;
        Ok(u)
    }
    fn list_users(&mut self) -> StoreResult<Vec<UserRecord>> {
        let users = self.inner.list_users()?;
        self.each(&users, Self::check_user)?;
        Ok(users)
    }
    fn update_user(&mut self, user: &UserRecord) -> StoreResult<()> {
        let mac = self.bind_user(user);
        self.inner.update_user(&user_copy(user, mac))
    }
    fn set_last_login(&mut self, id: i64, at: i64) -> StoreResult<()> {
        self.inner.set_last_login(id, at)
    }
    fn set_row_mac(&mut self, row: &RowId, mac: &[u8]) -> StoreResult<()> {
        self.inner.set_row_mac(row, mac)
    }
    fn scan_rows(&mut self, visit: &mut dyn FnMut(StoredRow) -> bool) -> StoreResult<()> {
        self.inner.scan_rows(visit)
    }
    fn unbound_rows(&mut self, owner_id: i64) -> StoreResult<Vec<StoredRow>> {
        self.inner.unbound_rows(owner_id)
    }
    fn active_admin_count(&mut self) -> StoreResult<i64> {
        self.inner.active_admin_count()
    }

    fn insert_session(&mut self, session: &SessionRecord) -> StoreResult<()> {
        let mac = row_mac(self.audit_key, &encode_session(session));
        self.inner.insert_session(&SessionRecord {
            id: session.id.clone(),
            user_id: session.user_id,
            created_at: session.created_at,
            expires_at: session.expires_at,
            revoked_at: session.revoked_at,
            wrapped_user_key: session.wrapped_user_key.clone(),
            mac,
        })
    }
    fn session(&mut self, id: &str) -> StoreResult<Option<SessionRecord>> {
        let s = self.inner.session(id)?;
        self.each(&s, Self::check_session)?;
        Ok(s)
    }
    fn revoke_session(&mut self, id: &str, at: i64) -> StoreResult<bool> {
        self.inner.revoke_session(id, at)
    }
    fn revoke_user_sessions(
        &mut self,
        user_id: i64,
        keep: Option<&str>,
        at: i64,
    ) -> StoreResult<u64> {
        self.inner.revoke_user_sessions(user_id, keep, at)
    }
    fn shred_expired_sessions(&mut self, now: i64) -> StoreResult<u64> {
        self.inner.shred_expired_sessions(now)
    }
    fn set_session_user_key(&mut self, id: &str, wrapped_user_key: &[u8]) -> StoreResult<()> {
        self.inner.set_session_user_key(id, wrapped_user_key)
    }

    fn audit_head(&mut self) -> StoreResult<Option<(i64, Vec<u8>)>> {
        self.inner.audit_head()
    }
    fn audit_has_state(&mut self) -> StoreResult<bool> {
        self.inner.audit_has_state()
    }
    fn insert_audit(&mut self, entry: &AuditEntry) -> StoreResult<()> {
        self.inner.insert_audit(entry)
    }
    fn audit_entry(&mut self, seq: i64) -> StoreResult<Option<AuditEntry>> {
        self.inner.audit_entry(seq)
    }
    fn list_audit(&mut self, filter: &AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        self.inner.list_audit(filter)
    }
    fn scan_audit(&mut self, visit: &mut dyn FnMut(AuditEntry) -> bool) -> StoreResult<()> {
        self.inner.scan_audit(visit)
    }

    fn insert_key(&mut self, key: &KeyRecord) -> StoreResult<i64> {
        let id = self.inner.insert_key(key)?;
        let bound = self.bind_key(&KeyRecord { id, ..key.clone() })?;
        self.inner.set_row_mac(&RowId::Key(id), &bound.mac)?;
        Ok(id)
    }
    fn key_by_name(&mut self, owner_id: i64, name: &str) -> StoreResult<Option<KeyRecord>> {
        let k = self.inner.key_by_name(owner_id, name)?;
        self.each(&k, Self::check_key)?;
        Ok(k)
    }
    fn key_by_id(&mut self, owner_id: i64, id: i64) -> StoreResult<Option<KeyRecord>> {
        let k = self.inner.key_by_id(owner_id, id)?;
        self.each(&k, Self::check_key)?;
        Ok(k)
    }
    fn list_keys(&mut self, owner_id: i64, include_destroyed: bool) -> StoreResult<Vec<KeyRecord>> {
        let keys = self.inner.list_keys(owner_id, include_destroyed)?;
        self.each(&keys, Self::check_key)?;
        Ok(keys)
    }
    fn update_key(&mut self, key: &KeyRecord) -> StoreResult<()> {
        let bound = self.bind_key(key)?;
        self.inner.update_key(&bound)
    }
    fn insert_key_version(&mut self, v: &KeyVersionRecord) -> StoreResult<()> {
        let bound = self.bind_version(v)?;
        self.inner.insert_key_version(&bound)
    }
    fn key_version(&mut self, key_id: i64, version: i64) -> StoreResult<Option<KeyVersionRecord>> {
        let v = self.inner.key_version(key_id, version)?;
        self.each(&v, Self::check_version)?;
        Ok(v)
    }
    fn key_versions(&mut self, key_id: i64) -> StoreResult<Vec<KeyVersionRecord>> {
        let vs = self.inner.key_versions(key_id)?;
        self.each(&vs, Self::check_version)?;
        Ok(vs)
    }
    fn update_key_version(&mut self, v: &KeyVersionRecord) -> StoreResult<()> {
        let bound = self.bind_version(v)?;
        self.inner.update_key_version(&bound)
    }
    fn insert_key_event(
        &mut self,
        key_id: i64,
        actor_id: Option<i64>,
        event: &KeyEvent,
    ) -> StoreResult<()> {
        self.inner.insert_key_event(key_id, actor_id, event)
    }
    fn key_events(&mut self, key_id: i64) -> StoreResult<Vec<KeyEvent>> {
        self.inner.key_events(key_id)
    }
    fn insert_usage(&mut self, event: &UsageEvent) -> StoreResult<()> {
        self.inner.insert_usage(event)
    }

    fn next_record_id(&mut self) -> StoreResult<i64> {
        self.inner.next_record_id()
    }
    fn insert_record(&mut self, r: &RecordRow) -> StoreResult<()> {
        let mac = self.record_mac(r)?;
        self.inner.insert_record(&RecordRow { mac, ..r.clone() })
    }
    fn record_by_ref(&mut self, owner_id: i64, reference: &str) -> StoreResult<Option<RecordRow>> {
        let r = self.inner.record_by_ref(owner_id, reference)?;
        self.each(&r, Self::check_record)?;
        Ok(r)
    }
    fn update_record(&mut self, r: &RecordRow) -> StoreResult<()> {
        let mac = self.record_mac(r)?;
        self.inner.update_record(&RecordRow { mac, ..r.clone() })
    }
    fn delete_record(&mut self, id: i64) -> StoreResult<()> {
        self.written.set(RowId::Record(id), None);
        // The rows that go with it are recorded as gone too, so `audit verify` does not
        // take them for rows removed outside zencrypt.
        self.forget_shares(id, None)?;
        self.forget_writes(id)?;
        self.forget_transfers(id)?;
        self.inner.delete_record(id)
    }
    fn insert_record_version(&mut self, r: &RecordRow) -> StoreResult<()> {
        let row = RowId::RecordVersion(r.id, r.version);
        let mac = row_mac(
            self.owner_key(UserId(r.owner_id), &row)?,
            &encode_record_version(r),
        );
        self.inner
            .insert_record_version(&RecordRow { mac, ..r.clone() })
    }
    fn record_versions(&mut self, record_id: i64) -> StoreResult<Vec<RecordRow>> {
        let rows = self.inner.record_versions(record_id)?;
        self.each(&rows, Self::check_record_version)?;
        Ok(rows)
    }
    fn record_version(&mut self, record_id: i64, version: i64) -> StoreResult<Option<RecordRow>> {
        let r = self.inner.record_version(record_id, version)?;
        self.each(&r, Self::check_record_version)?;
        Ok(r)
    }
    fn prune_record_versions(&mut self, record_id: i64, version: i64) -> StoreResult<u64> {
        self.inner.prune_record_versions(record_id, version)
    }
    fn list_records(
        &mut self,
        owner_id: i64,
        filter: &RecordFilter,
    ) -> StoreResult<Vec<RecordRow>> {
        let rows = self.inner.list_records(owner_id, filter)?;
        self.check_records(&rows)?;
        Ok(rows)
    }
    fn records_below_version(&mut self, key_id: i64, version: i64) -> StoreResult<Vec<RecordRow>> {
        let rows = self.inner.records_below_version(key_id, version)?;
        self.check_records(&rows)?;
        Ok(rows)
    }
    fn records_of_identity(&mut self, identity_id: i64) -> StoreResult<Vec<RecordRow>> {
        let rows = self.inner.records_of_identity(identity_id)?;
        self.check_records(&rows)?;
        Ok(rows)
    }
    fn set_record_dek(&mut self, r: &RecordRow) -> StoreResult<()> {
        let mac = self.record_mac(r)?;
        self.inner.set_record_dek(&RecordRow {
            mac,
            ciphertext: Vec::new(),
            ..r.clone()
        })
    }
    fn identity_record_count(&mut self, identity_id: i64) -> StoreResult<i64> {
        self.inner.identity_record_count(identity_id)
    }
    fn identities(&mut self, owner_id: i64) -> StoreResult<Vec<IdentityRow>> {
        let rows = self.inner.identities(owner_id)?;
        self.each(&rows, Self::check_identity)?;
        Ok(rows)
    }
    fn insert_identity(&mut self, row: &IdentityRow) -> StoreResult<i64> {
        let id = self.inner.insert_identity(row)?;
        let bound = self.bind_identity(&IdentityRow { id, ..row.clone() })?;
        self.inner.set_row_mac(&RowId::Identity(id), &bound.mac)?;
        Ok(id)
    }
    fn update_identity(&mut self, row: &IdentityRow) -> StoreResult<()> {
        let bound = self.bind_identity(row)?;
        self.inner.update_identity(&bound)
    }

    fn insert_service_grant(&mut self, g: &ServiceGrant) -> StoreResult<i64> {
        let id = self.inner.insert_service_grant(g)?;
        let row = RowId::ServiceGrant(id);
        let bound = ServiceGrant { id, ..g.clone() };
        let enc = encode_service_grant(&bound);
        let mac = row_mac(self.owner_key(UserId(g.owner_id), &row)?, &enc);
        self.note(row.clone(), &enc, &mac);
        self.inner.set_row_mac(&row, &mac)?;
        Ok(id)
    }
    fn service_grants(&mut self, service_id: i64) -> StoreResult<Vec<ServiceGrant>> {
        let rows = self.inner.service_grants(service_id)?;
        self.each(&rows, Self::check_grant)?;
        Ok(rows)
    }
    fn grants_of_owner(&mut self, owner_id: i64) -> StoreResult<Vec<ServiceGrant>> {
        let rows = self.inner.grants_of_owner(owner_id)?;
        self.each(&rows, Self::check_grant)?;
        Ok(rows)
    }
    fn delete_service_grant(&mut self, id: i64) -> StoreResult<()> {
        self.written.set(RowId::ServiceGrant(id), None);
        self.inner.delete_service_grant(id)
    }
    fn put_service_record_key(&mut self, k: &ServiceRecordKey) -> StoreResult<()> {
        self.inner.put_service_record_key(k)
    }
    fn service_record_key(
        &mut self,
        service_id: i64,
        record_id: i64,
    ) -> StoreResult<Option<ServiceRecordKey>> {
        self.inner.service_record_key(service_id, record_id)
    }
    fn service_record_ids(&mut self, service_id: i64) -> StoreResult<Vec<i64>> {
        self.inner.service_record_ids(service_id)
    }
    fn delete_service_record_keys(
        &mut self,
        service_id: i64,
        record_id: Option<i64>,
    ) -> StoreResult<u64> {
        self.inner.delete_service_record_keys(service_id, record_id)
    }
    // A share is bound by its owner's signature, which its readers check with the
    // owner's pinned key (`sharing`); its state goes into the audit entry like a row's.
    fn put_record_share(&mut self, s: &RecordShare) -> StoreResult<i64> {
        let id = self.inner.put_record_share(s)?;
        let enc = encode_record_share(&RecordShare { id, ..s.clone() });
        self.note(RowId::RecordShare(id), &enc, &s.signature);
        Ok(id)
    }
    fn record_shares(&mut self, filter: &ShareFilter) -> StoreResult<Vec<RecordShare>> {
        self.inner.record_shares(filter)
    }
    fn delete_record_shares(&mut self, record_id: i64, to: Option<Grantee>) -> StoreResult<u64> {
        self.forget_shares(record_id, to)?;
        self.inner.delete_record_shares(record_id, to)
    }
    // Bound by the owner's signatures; the set of grants is bound in the key row.
    fn put_key_share(&mut self, s: &KeyShare) -> StoreResult<i64> {
        let id = self.inner.put_key_share(s)?;
        let enc = encode_key_share(&KeyShare { id, ..s.clone() });
        self.note(RowId::KeyShare(id), &enc, &s.signature);
        Ok(id)
    }
    fn key_shares(
        &mut self,
        key_id: Option<i64>,
        recipient_id: Option<i64>,
    ) -> StoreResult<Vec<KeyShare>> {
        self.inner.key_shares(key_id, recipient_id)
    }
    fn delete_key_shares(
        &mut self,
        key_id: i64,
        to: Option<Grantee>,
        below: Option<i64>,
    ) -> StoreResult<u64> {
        for s in self.inner.key_shares(Some(key_id), None)? {
            if to.is_none_or(|t| t.who() == s.to.who()) && below.is_none_or(|b| s.version < b) {
                self.written.set(RowId::KeyShare(s.id), None);
            }
        }
        self.inner.delete_key_shares(key_id, to, below)
    }
    // Bound by the manager's signatures, which members and sharers check with the
    // manager's pinned key (`sharing::groups`).
    fn put_group(&mut self, g: &GroupRow) -> StoreResult<i64> {
        let id = self.inner.put_group(g)?;
        let enc = encode_group(&GroupRow { id, ..g.clone() });
        self.note(RowId::Group(id), &enc, &g.signature);
        Ok(id)
    }
    fn group_by_id(&mut self, id: i64) -> StoreResult<Option<GroupRow>> {
        self.inner.group_by_id(id)
    }
    fn group_by_name(&mut self, name: &str) -> StoreResult<Option<GroupRow>> {
        self.inner.group_by_name(name)
    }
    fn groups(&mut self) -> StoreResult<Vec<GroupRow>> {
        self.inner.groups()
    }
    fn put_group_member(&mut self, m: &GroupMember) -> StoreResult<i64> {
        let id = self.inner.put_group_member(m)?;
        let enc = encode_group_member(&GroupMember { id, ..m.clone() });
        self.note(RowId::GroupMember(id), &enc, &m.signature);
        Ok(id)
    }
    fn group_members(
        &mut self,
        group_id: Option<i64>,
        user_id: Option<i64>,
    ) -> StoreResult<Vec<GroupMember>> {
        self.inner.group_members(group_id, user_id)
    }
    fn delete_group_member(&mut self, group_id: i64, user_id: i64) -> StoreResult<u64> {
        for m in self.inner.group_members(Some(group_id), Some(user_id))? {
            self.written.set(RowId::GroupMember(m.id), None);
        }
        self.inner.delete_group_member(group_id, user_id)
    }
    fn put_record_write(&mut self, w: &RecordWrite) -> StoreResult<i64> {
        let id = self.inner.put_record_write(w)?;
        let enc = encode_record_write(&RecordWrite { id, ..w.clone() });
        self.note(RowId::RecordWrite(id), &enc, &w.signature);
        Ok(id)
    }
    fn record_writes(
        &mut self,
        owner_id: Option<i64>,
        record_id: Option<i64>,
    ) -> StoreResult<Vec<RecordWrite>> {
        self.inner.record_writes(owner_id, record_id)
    }
    fn delete_record_write(&mut self, record_id: i64) -> StoreResult<u64> {
        self.forget_writes(record_id)?;
        self.inner.delete_record_write(record_id)
    }
    fn put_record_transfer(&mut self, t: &RecordTransfer) -> StoreResult<i64> {
        let id = self.inner.put_record_transfer(t)?;
        let enc = encode_record_transfer(&RecordTransfer { id, ..t.clone() });
        self.note(RowId::RecordTransfer(id), &enc, &t.signature);
        Ok(id)
    }
    fn record_transfers(&mut self, filter: &TransferFilter) -> StoreResult<Vec<RecordTransfer>> {
        self.inner.record_transfers(filter)
    }
    fn set_transfer_taken(&mut self, id: i64, at: i64) -> StoreResult<()> {
        self.inner.set_transfer_taken(id, at)
    }
    fn delete_record_transfer(&mut self, record_id: i64) -> StoreResult<u64> {
        self.forget_transfers(record_id)?;
        self.inner.delete_record_transfer(record_id)
    }
    fn shared_record(&mut self, owner_id: i64, reference: &str) -> StoreResult<Option<RecordRow>> {
        self.inner.record_by_ref(owner_id, reference)
    }
    fn user_sessions(&mut self, user_id: i64) -> StoreResult<Vec<SessionRecord>> {
        let rows = self.inner.user_sessions(user_id)?;
        self.each(&rows, Self::check_session)?;
        Ok(rows)
    }

    fn usage_report(
        &mut self,
        by: UsageGroup,
        user_id: Option<i64>,
        since: Option<i64>,
    ) -> StoreResult<Vec<(String, i64, i64)>> {
        self.inner.usage_report(by, user_id, since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A user's read share bound as shares were bound before groups, and as the release
    /// that brought groups bound it: verification accepts both digests.
    #[test]
    fn a_user_share_keeps_its_earlier_bindings() {
        let share = RecordShare {
            id: 4,
            record_id: 9,
            record_token: "zt_x".into(),
            owner_id: 2,
            to: Grantee::User(3),
            version: 1,
            can_write: false,
            wrapped_dek: vec![5; 40],
            signature: vec![6; 64],
            grant_signature: vec![7; 64],
            created_at: 1_700_000_000,
        };
        let before_groups = Aad::new("row/record_shares")
            .int(4)
            .int(9)
            .int(2)
            .int(3)
            .int(1)
            .field([5; 40])
            .field([7; 64])
            .int(1_700_000_000);
        assert_eq!(
            encode_record_share(&share).as_bytes(),
            before_groups.as_bytes()
        );
        let with_groups = Aad::new("row/record_shares")
            .int(4)
            .int(9)
            .int(2)
            .field([0])
            .int(3)
            .int(1)
            .field([5; 40])
            .field([7; 64])
            .int(1_700_000_000);
        let row = StoredRow::RecordShare(share.clone());
        assert_eq!(
            earlier_digest(&row),
            Some(digest(&with_groups, &share.signature))
        );
        assert_ne!(earlier_digest(&row), Some(row_digest(&row).1));
        let group = StoredRow::RecordShare(RecordShare {
            to: Grantee::Group { id: 3, epoch: 1 },
            ..share
        });
        assert_eq!(earlier_digest(&group), None);
    }

    #[test]
    fn state_digests_round_trip_and_reject_garbage() {
        let mut s = StateDigests::default();
        s.set(RowId::Record(7), Some([1; DIGEST_LEN]));
        s.set(RowId::KeyVersion(3, 2), Some([2; DIGEST_LEN]));
        s.set(RowId::Record(9), None);
        s.set(RowId::Session("x".into()), Some([3; DIGEST_LEN]));
        let bytes = s.encode();
        let mut back = StateDigests::default();
        StateDigests::decode_each(&bytes, |r, d| back.set(r, d)).unwrap();
        assert_eq!(back.0.len(), 3);
        assert_eq!(back, s);
        assert!(StateDigests::decode_each(&bytes[..bytes.len() - 1], |_, _| {}).is_none());
        let mut bad = bytes.clone();
        bad[0] = 9;
        assert!(StateDigests::decode_each(&bad, |_, _| {}).is_none());
    }

    #[test]
    fn a_digest_is_the_hash_of_the_encoding_with_the_mac_as_a_field() {
        let enc = Aad::new("row/x").int(1);
        let whole = crate::crypto::mac::sha256(enc.clone().field([9u8; 3]).as_bytes());
        assert_eq!(digest(&enc, &[9; 3])[..], whole[..DIGEST_LEN]);
        assert_ne!(digest(&enc, &[9; 3]), digest(&enc, &[9; 4]));
    }

    #[test]
    fn owner_keys_differ_by_user_and_key() {
        let k = Key32::from_bytes([5; 32]);
        let a = OwnerKey::derive(UserId(1), &k).key.compute(&[b"x"]);
        let b = OwnerKey::derive(UserId(2), &k).key.compute(&[b"x"]);
        let c = OwnerKey::derive(UserId(1), &Key32::from_bytes([6; 32]))
            .key
            .compute(&[b"x"]);
        assert_ne!(a, b);
        assert_ne!(a, c);
    }
}
