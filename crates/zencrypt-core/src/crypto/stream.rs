//! The zencrypt ciphertext format (version 1) and its chunked AES-256-GCM stream.
//!
//! ```text
//! header:
//!   magic        4  "ZENC"
//!   version      1  0x01
//!   key id       8  u64 BE    which named key (of the owner) wraps the data key
//!   key version  4  u32 BE    which version of it
//!   nonce prefix 7            random per message
//!   chunk size   4  u32 BE    plaintext bytes per chunk (65536)
//!   dek length   2  u16 BE
//!   wrapped dek  n            the per-message data key, AES-256-GCM under the key version,
//!                             bound to owner, key id, key version, nonce prefix, chunk size
//!   checksum     8            first 8 bytes of SHA-256 over the header so far
//! body: chunks of (ciphertext || 16-byte tag), each `chunk size` plaintext bytes except
//!   the last, which may be shorter (or empty for empty input)
//! chunk nonce = nonce prefix (7) || chunk counter (u32 BE) || last-chunk flag (1)
//! ```
//!
//! This is the STREAM construction: reordering, truncation (at or between chunk
//! boundaries) and extension all fail authentication, and a chunk's plaintext is only
//! written after its tag verifies. `rewrap` replaces the header only: the body does not
//! depend on the key version.

use std::io::{self, Read, Write};

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};

use super::{Aad, Key32, mac::sha256, random_bytes};
use crate::ids::{KeyId, KeyVersion, UserId};

/// Magic bytes at the start of every binary ciphertext.
pub const MAGIC: &[u8; 4] = b"ZENC";
/// The format version written.
pub const FORMAT_VERSION: u8 = 1;
/// Plaintext bytes per chunk.
pub const CHUNK_SIZE: u32 = 64 * 1024;
/// Largest chunk size accepted when reading: with two batches in flight, a reader's
/// memory stays within the 32 MiB budget whatever the header says.
const MAX_CHUNK_SIZE: u32 = 4 << 20;
const TAG_LEN: usize = 16;
const PREFIX_LEN: usize = 7;
const MAX_WRAPPED_DEK: usize = 256;

/// Why a ciphertext could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The input is not a well-formed zencrypt ciphertext.
    #[error("{0}")]
    Malformed(&'static str),
    /// A chunk failed authentication: tampered, truncated, reordered or extended.
    #[error("decryption failed: {0}")]
    Tampered(&'static str),
    /// Reading the input or writing the output failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// A parsed (or new) ciphertext header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The named key's id.
    pub key_id: KeyId,
    /// The key version that wraps the data key.
    pub key_version: KeyVersion,
    /// Random per message.
    pub nonce_prefix: [u8; PREFIX_LEN],
    /// Plaintext bytes per chunk.
    pub chunk_size: u32,
    /// The data key, wrapped.
    pub wrapped_dek: Vec<u8>,
}

impl Header {
    /// A header for a new message (the data key is wrapped by the caller).
    pub fn new(key_id: KeyId, key_version: KeyVersion) -> Self {
        Header {
            key_id,
            key_version,
            nonce_prefix: random_bytes(),
            chunk_size: CHUNK_SIZE,
            wrapped_dek: Vec::new(),
        }
    }

    /// Associated data binding the wrapped data key to its owner and this header.
    pub fn dek_aad(&self, owner_id: UserId) -> Aad {
        Aad::new("stream-dek")
            .int(owner_id)
            .int(self.key_id)
            .int(self.key_version)
            .field(self.nonce_prefix)
            .int(i64::from(self.chunk_size))
    }

    /// The encoded header, checksum included.
    pub fn encode(&self) -> Vec<u8> {
        let mut h = Vec::with_capacity(40 + self.wrapped_dek.len());
        h.extend_from_slice(MAGIC);
        h.push(FORMAT_VERSION);
        h.extend_from_slice(&(self.key_id.0 as u64).to_be_bytes());
        h.extend_from_slice(&(self.key_version.0 as u32).to_be_bytes());
        h.extend_from_slice(&self.nonce_prefix);
        h.extend_from_slice(&self.chunk_size.to_be_bytes());
        h.extend_from_slice(&(self.wrapped_dek.len() as u16).to_be_bytes());
        h.extend_from_slice(&self.wrapped_dek);
        let sum = sha256(&h);
        h.extend_from_slice(&sum[..8]);
        h
    }

    /// Reads and checks a header from the start of `r`.
    pub fn read_from(r: &mut impl Read) -> Result<Header, StreamError> {
        let mut fixed = [0u8; 4 + 1 + 8 + 4 + PREFIX_LEN + 4 + 2];
        read_exact_or(
            r,
            &mut fixed,
            "input is too short to be a zencrypt ciphertext",
        )?;
        if &fixed[..4] != MAGIC {
            return Err(StreamError::Malformed(
                "input is not a zencrypt ciphertext (bad magic)",
            ));
        }
        if fixed[4] != FORMAT_VERSION {
            return Err(StreamError::Malformed(
                "unsupported ciphertext format version",
            ));
        }
        let be = |a: usize, n: usize| -> u64 {
            fixed[a..a + n]
                .iter()
                .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
        };
        let key_id = be(5, 8);
        let key_version = be(13, 4);
        let mut nonce_prefix = [0u8; PREFIX_LEN];
        nonce_prefix.copy_from_slice(&fixed[17..24]);
        let chunk_size = be(24, 4) as u32;
        let dek_len = be(28, 2) as usize;
        if dek_len == 0 || dek_len > MAX_WRAPPED_DEK {
            return Err(StreamError::Malformed("ciphertext header is corrupt"));
        }
        let mut rest = vec![0u8; dek_len + 8];
        read_exact_or(r, &mut rest, "ciphertext header is truncated")?;
        let mut covered = fixed.to_vec();
        covered.extend_from_slice(&rest[..dek_len]);
        if sha256(&covered)[..8] != rest[dek_len..] {
            return Err(StreamError::Malformed(
                "ciphertext header is corrupt (checksum mismatch)",
            ));
        }
        if chunk_size == 0 || chunk_size > MAX_CHUNK_SIZE || key_id > i64::MAX as u64 {
            return Err(StreamError::Malformed("ciphertext header is corrupt"));
        }
        Ok(Header {
            key_id: KeyId(key_id as i64),
            key_version: KeyVersion(key_version as i64),
            nonce_prefix,
            chunk_size,
            wrapped_dek: rest[..dek_len].to_vec(),
        })
    }
}

fn read_exact_or(r: &mut impl Read, buf: &mut [u8], msg: &'static str) -> Result<(), StreamError> {
    let n = read_full(r, buf)?;
    if n < buf.len() {
        return Err(StreamError::Malformed(msg));
    }
    Ok(())
}

/// Reads until `buf` is full or the input ends; returns how much was read.
pub fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn nonce(prefix: &[u8; PREFIX_LEN], counter: u32, last: bool) -> Nonce<aes_gcm::aead::consts::U12> {
    let mut n = [0u8; 12];
    n[..PREFIX_LEN].copy_from_slice(prefix);
    n[PREFIX_LEN..11].copy_from_slice(&counter.to_be_bytes());
    n[11] = u8::from(last);
    Nonce::from(n)
}

const CHUNK_AAD: &[u8] = b"zencrypt-stream-v1";

/// Chunks sealed or opened together: up to this many bytes, and at most [`BATCH_CHUNKS`].
const BATCH_BYTES: usize = 2 * 1024 * 1024;
const BATCH_CHUNKS: usize = 64;
/// Batches smaller than this are sealed or opened on one core.
const PARALLEL_MIN_BYTES: usize = 256 * 1024;

/// A batch of chunks on its way through [`pipeline`].
struct Batch {
    /// Input bytes (plus one spare byte for the look-ahead); opened in place when
    /// decrypting.
    data: Vec<u8>,
    /// How many bytes of `data` belong to the batch.
    n: usize,
    /// Whether the input ended within this batch (its final chunk is the last one).
    end: bool,
    /// The counter of the batch's first chunk.
    counter: u32,
    /// Sealed chunks (encryption only).
    out: Vec<u8>,
    /// How many bytes of `out` hold sealed chunks (encryption only).
    out_len: usize,
    /// How many chunks sealed or verified, from the first.
    good: usize,
    /// Why the chunk after the good ones failed, if one did.
    bad: Option<&'static str>,
    /// How far into `data` any batch ever filled (what `drop` wipes).
    high: usize,
}

/// `data` holds plaintext: the input when encrypting, the opened chunks when decrypting.
/// Only the part ever filled is wiped, so a short message does not pay for 2 MiB.
impl Drop for Batch {
    fn drop(&mut self) {
        let high = self.high.min(self.data.len());
        zeroize::Zeroize::zeroize(&mut self.data[..high]);
    }
}

impl Batch {
    fn new(data_len: usize, out_len: usize) -> Batch {
        Batch {
            data: vec![0u8; data_len],
            n: 0,
            end: false,
            counter: 0,
            out: vec![0u8; out_len],
            out_len: 0,
            good: 0,
            bad: None,
            high: 0,
        }
    }

    /// Reads up to `want` bytes plus one byte more, which tells whether the input goes
    /// on; that byte is kept in `carry` for the next batch.
    fn fill(
        &mut self,
        input: &mut impl Read,
        want: usize,
        carry: &mut Option<u8>,
    ) -> io::Result<()> {
        let mut filled = 0;
        if let Some(b) = carry.take() {
            self.data[0] = b;
            filled = 1;
        }
        match read_full(input, &mut self.data[filled..=want]) {
            Ok(got) => filled += got,
            Err(e) => {
                // How much was read before the error is unknown.
                self.high = self.data.len();
                return Err(e);
            }
        }
        self.high = self.high.max(filled);
        self.end = filled <= want;
        self.n = filled.min(want);
        if !self.end {
            *carry = Some(self.data[want]);
        }
        Ok(())
    }
}

/// Streams `input` through `work` in batches of `want` bytes: this thread reads the next
/// batch while a second thread runs `work` on the current one, and `emit` gets each
/// worked batch, in order, on this thread. `number` gives each new batch its first chunk
/// counter (and refuses a stream that would run out of counters). An input that fits in
/// one batch is handled without the second thread.
fn pipeline(
    input: &mut impl Read,
    want: usize,
    out_len: usize,
    number: &mut dyn FnMut(&Batch) -> Result<u32, StreamError>,
    work: &(dyn Fn(&mut Batch) + Sync),
    emit: &mut dyn FnMut(&Batch) -> Result<(), StreamError>,
) -> Result<(), StreamError> {
    let mut carry = None;
    let mut first = Batch::new(want + 1, out_len);
    first.fill(input, want, &mut carry)?;
    first.counter = number(&first)?;
    if first.end {
        work(&mut first);
        return emit(&first);
    }
    std::thread::scope(|s| {
        let (to_worker, jobs) = std::sync::mpsc::sync_channel::<Batch>(1);
        let (to_main, done) = std::sync::mpsc::sync_channel::<Batch>(1);
        let worker = s.spawn(move || {
            for mut batch in jobs {
                work(&mut batch);
                if to_main.send(batch).is_err() {
                    break;
                }
            }
        });
        let hung_up = || StreamError::Malformed("the stream worker stopped");
        let result = (|| {
            to_worker.send(first).map_err(|_| hung_up())?;
            let mut spare = Some(Batch::new(want + 1, out_len));
            let mut more = true;
            loop {
                // Read the next batch while the worker is busy with the current one.
                let next = if more {
                    let mut b = spare
                        .take()
                        .unwrap_or_else(|| Batch::new(want + 1, out_len));
                    b.fill(input, want, &mut carry)?;
                    b.counter = number(&b)?;
                    more = !b.end;
                    Some(b)
                } else {
                    None
                };
                let finished = done.recv().map_err(|_| hung_up())?;
                emit(&finished)?;
                if finished.end {
                    return Ok(());
                }
                if let Some(b) = next {
                    to_worker.send(b).map_err(|_| hung_up())?;
                }
                spare = Some(finished);
            }
        })();
        // Hang up both channels so the worker stops wherever it is, then wait until its
        // thread has exited (the scope alone waits only for its closure to return): no
        // batch, and no copy of plaintext in it, outlives the call.
        drop(to_worker);
        drop(done);
        let _ = worker.join();
        result
    })
}

/// Runs `f(index, chunk)` over `data` cut into `chunk_len` pieces (the last may be
/// shorter) and returns how many pieces, from the first, `f` accepted. A big batch is
/// split over the machine's cores: chunks are independent, each with its own nonce.
fn each_chunk(
    data: &mut [u8],
    chunk_len: usize,
    f: &(dyn Fn(usize, &mut [u8]) -> bool + Sync),
) -> usize {
    let run = |first: usize, part: &mut [u8]| -> usize {
        let mut good = 0;
        for (i, chunk) in part.chunks_mut(chunk_len).enumerate() {
            if !f(first + i, chunk) {
                break;
            }
            good += 1;
        }
        good
    };
    let chunks = data.len().div_ceil(chunk_len);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    if threads < 2 || chunks < 2 || data.len() < PARALLEL_MIN_BYTES {
        return run(0, data);
    }
    let per_part = chunks.div_ceil(threads);
    let goods: Vec<(usize, usize)> = std::thread::scope(|s| {
        // The first part runs on this thread; only the others get threads of their own.
        let mut parts = data.chunks_mut(per_part * chunk_len);
        let first = parts.next().unwrap_or_default();
        let handles: Vec<_> = parts
            .enumerate()
            .map(|(p, part)| {
                let len = part.len().div_ceil(chunk_len);
                s.spawn(move || (run((p + 1) * per_part, part), len))
            })
            .collect();
        let first_len = first.len().div_ceil(chunk_len);
        let mut goods = vec![(run(0, first), first_len)];
        goods.extend(handles.into_iter().map(|h| h.join().unwrap_or((0, 1))));
        goods
    });
    // Count good chunks up to the first part that stopped early.
    let mut good = 0;
    for (g, len) in goods {
        good += g;
        if g < len {
            break;
        }
    }
    good
}

/// Chunk counters for consecutive batches of `chunks_in(batch)` chunks each.
fn counters(
    chunks_in: impl Fn(&Batch) -> usize,
    overflow: &'static str,
    tampered: bool,
) -> impl FnMut(&Batch) -> Result<u32, StreamError> {
    let mut next: u64 = 0;
    move |b| {
        let first = next;
        next += chunks_in(b) as u64;
        // The last chunk may use the final counter value; nothing may come after it.
        if next.saturating_sub(u64::from(b.end)) > u64::from(u32::MAX) {
            return Err(if tampered {
                StreamError::Tampered(overflow)
            } else {
                StreamError::Malformed(overflow)
            });
        }
        Ok(first as u32)
    }
}

/// Encrypts all of `input` to `output` as chunks (the header is written by the caller).
/// Calls `progress` with the plaintext bytes done so far. Returns the plaintext length.
pub fn encrypt_body(
    dek: &Key32,
    header: &Header,
    input: &mut impl Read,
    output: &mut impl Write,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, StreamError> {
    let cipher = Aes256Gcm::new(dek.expose().into());
    let size = header.chunk_size as usize;
    let per_batch = (BATCH_BYTES / size).clamp(1, BATCH_CHUNKS);
    // The last chunk may be short, or empty for empty input; a full last chunk is
    // flagged last too (the input ended right after it).
    let chunks_in = move |b: &Batch| {
        if b.end {
            b.n.div_ceil(size).max(1)
        } else {
            per_batch
        }
    };
    let seal = |b: &mut Batch| {
        let chunks = chunks_in(b);
        let mut out_len = 0;
        for i in 0..chunks {
            let from = i * size;
            let len = size.min(b.n - from.min(b.n));
            b.out[out_len..out_len + len].copy_from_slice(&b.data[from..from + len]);
            out_len += len + TAG_LEN;
        }
        let (end, first) = (b.end, b.counter);
        b.good = each_chunk(&mut b.out[..out_len], size + TAG_LEN, &|i, buf| {
            let (body, tag_out) = buf.split_at_mut(buf.len() - TAG_LEN);
            let last = end && i + 1 == chunks;
            cipher
                .encrypt_inout_detached(
                    &nonce(&header.nonce_prefix, first + i as u32, last),
                    CHUNK_AAD,
                    body.into(),
                )
                .map(|tag| tag_out.copy_from_slice(&tag))
                .is_ok()
        });
        b.bad = (b.good < chunks).then_some("encryption failed");
        b.out_len = out_len;
    };
    let mut total: u64 = 0;
    pipeline(
        input,
        per_batch * size,
        per_batch * (size + TAG_LEN),
        &mut counters(chunks_in, "input is too large for one message", false),
        &seal,
        &mut |b| {
            if let Some(why) = b.bad {
                return Err(StreamError::Malformed(why));
            }
            output.write_all(&b.out[..b.out_len])?;
            total += b.n as u64;
            progress(total);
            Ok(())
        },
    )?;
    Ok(total)
}

/// Decrypts chunks from `input` to `output`, writing each chunk's plaintext only after
/// its tag verifies. Returns the plaintext length.
pub fn decrypt_body(
    dek: &Key32,
    header: &Header,
    input: &mut impl Read,
    output: &mut impl Write,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, StreamError> {
    let cipher = Aes256Gcm::new(dek.expose().into());
    let full = header.chunk_size as usize + TAG_LEN;
    let per_batch = (BATCH_BYTES / full).clamp(1, BATCH_CHUNKS);
    let chunks_in = move |b: &Batch| {
        if b.end { b.n.div_ceil(full) } else { per_batch }
    };
    // Opens chunks in place; the good ones are those before the first that fails.
    let open = |b: &mut Batch| {
        let chunks = chunks_in(b);
        let (end, first) = (b.end, b.counter);
        b.good = each_chunk(&mut b.data[..b.n], full, &|i, chunk| {
            let Some(len) = chunk.len().checked_sub(TAG_LEN) else {
                return false;
            };
            let (body, tag) = chunk.split_at_mut(len);
            let last = end && i + 1 == chunks;
            Tag::try_from(&tag[..]).is_ok_and(|tag| {
                cipher
                    .decrypt_inout_detached(
                        &nonce(&header.nonce_prefix, first + i as u32, last),
                        CHUNK_AAD,
                        body.into(),
                        &tag,
                    )
                    .is_ok()
            })
        });
        b.bad = if chunks == 0
            || b.data[..b.n]
                .chunks(full)
                .nth(b.good)
                .is_some_and(|c| c.len() < TAG_LEN)
        {
            Some("the ciphertext is truncated")
        } else if b.good < chunks {
            Some("the ciphertext was modified, truncated or reordered, or the key is wrong")
        } else {
            None
        };
    };
    let mut total: u64 = 0;
    pipeline(
        input,
        per_batch * full,
        0,
        &mut counters(chunks_in, "the ciphertext is too long", true),
        &open,
        &mut |b| {
            // Verified chunks are written in order; nothing from a bad one ever is.
            for chunk in b.data[..b.n].chunks(full).take(b.good) {
                let len = chunk.len() - TAG_LEN;
                output.write_all(&chunk[..len])?;
                total += len as u64;
            }
            progress(total);
            b.bad.map_or(Ok(()), |why| Err(StreamError::Tampered(why)))
        },
    )?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seal(plain: &[u8], chunk: u32) -> (Key32, Header, Vec<u8>) {
        let dek = Key32::random();
        let mut h = Header::new(KeyId(3), KeyVersion(1));
        h.chunk_size = chunk;
        h.wrapped_dek = vec![9; 61];
        let mut out = h.encode();
        encrypt_body(&dek, &h, &mut &plain[..], &mut out, &mut |_| {}).unwrap();
        (dek, h, out)
    }

    // The one-chunk-at-a-time implementation the batched one replaced: the format's
    // reference. The batched code must produce and accept exactly the same bytes.
    /// Encrypts all of `input` to `output` as chunks (the header is written by the caller).
    /// Calls `progress` with the plaintext bytes done so far. Returns the plaintext length.
    fn reference_encrypt(
        dek: &Key32,
        header: &Header,
        input: &mut impl Read,
        output: &mut impl Write,
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64, StreamError> {
        let cipher = Aes256Gcm::new(dek.expose().into());
        let size = header.chunk_size as usize;
        // Two buffers: the chunk being sealed and a look-ahead that tells whether it is last.
        let mut cur = vec![0u8; size + TAG_LEN];
        let mut next = vec![0u8; size + TAG_LEN];
        let mut cur_len = read_full(input, &mut cur[..size])?;
        let mut counter: u32 = 0;
        let mut total: u64 = 0;
        loop {
            let (next_len, last) = if cur_len < size {
                (0, true)
            } else {
                let n = read_full(input, &mut next[..size])?;
                (n, n == 0)
            };
            let tag = cipher
                .encrypt_inout_detached(
                    &nonce(&header.nonce_prefix, counter, last),
                    CHUNK_AAD,
                    (&mut cur[..cur_len]).into(),
                )
                .map_err(|_| StreamError::Malformed("encryption failed"))?;
            cur[cur_len..cur_len + TAG_LEN].copy_from_slice(&tag);
            output.write_all(&cur[..cur_len + TAG_LEN])?;
            total += cur_len as u64;
            progress(total);
            if last {
                return Ok(total);
            }
            counter = counter
                .checked_add(1)
                .ok_or(StreamError::Malformed("input is too large for one message"))?;
            std::mem::swap(&mut cur, &mut next);
            cur_len = next_len;
        }
    }

    /// Decrypts chunks from `input` to `output`, writing each chunk's plaintext only after
    /// its tag verifies. Returns the plaintext length.
    fn reference_decrypt(
        dek: &Key32,
        header: &Header,
        input: &mut impl Read,
        output: &mut impl Write,
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64, StreamError> {
        let cipher = Aes256Gcm::new(dek.expose().into());
        let full = header.chunk_size as usize + TAG_LEN;
        let mut cur = vec![0u8; full];
        let mut next = vec![0u8; full];
        let mut cur_len = read_full(input, &mut cur)?;
        let mut counter: u32 = 0;
        let mut total: u64 = 0;
        loop {
            if cur_len < TAG_LEN {
                return Err(StreamError::Tampered("the ciphertext is truncated"));
            }
            let (next_len, last) = if cur_len < full {
                (0, true)
            } else {
                let n = read_full(input, &mut next)?;
                (n, n == 0)
            };
            let body = cur_len - TAG_LEN;
            let tag = Tag::try_from(&cur[body..cur_len])
                .map_err(|_| StreamError::Tampered("the ciphertext is truncated"))?;
            cipher
                .decrypt_inout_detached(
                    &nonce(&header.nonce_prefix, counter, last),
                    CHUNK_AAD,
                    (&mut cur[..body]).into(),
                    &tag,
                )
                .map_err(|_| {
                    StreamError::Tampered(
                        "the ciphertext was modified, truncated or reordered, or the key is wrong",
                    )
                })?;
            output.write_all(&cur[..body])?;
            total += body as u64;
            progress(total);
            if last {
                return Ok(total);
            }
            counter = counter
                .checked_add(1)
                .ok_or(StreamError::Tampered("the ciphertext is too long"))?;
            std::mem::swap(&mut cur, &mut next);
            cur_len = next_len;
        }
    }

    fn both_ways(plain: &[u8], chunk: u32) {
        let dek = Key32::random();
        let mut h = Header::new(KeyId(3), KeyVersion(1));
        h.chunk_size = chunk;
        let (mut new, mut old) = (Vec::new(), Vec::new());
        encrypt_body(&dek, &h, &mut &plain[..], &mut new, &mut |_| {}).unwrap();
        reference_encrypt(&dek, &h, &mut &plain[..], &mut old, &mut |_| {}).unwrap();
        assert!(
            new == old,
            "ciphertexts differ ({} bytes, chunk {chunk})",
            plain.len()
        );
        let mut back = Vec::new();
        decrypt_body(&dek, &h, &mut &new[..], &mut back, &mut |_| {}).unwrap();
        assert!(
            back == plain,
            "round trip ({} bytes, chunk {chunk})",
            plain.len()
        );
        let mut back = Vec::new();
        reference_decrypt(&dek, &h, &mut &new[..], &mut back, &mut |_| {}).unwrap();
        assert!(back == plain);
        // A cut anywhere fails both ways, having written only verified chunks.
        for cut in [new.len() / 3, new.len().saturating_sub(1)] {
            let mut out = Vec::new();
            let r = decrypt_body(&dek, &h, &mut &new[..cut], &mut out, &mut |_| {});
            assert!(matches!(r, Err(StreamError::Tampered(_))), "cut at {cut}");
            assert!(plain.starts_with(&out));
            assert_eq!(out.len() % chunk as usize, 0);
        }
    }

    #[test]
    fn large_streams_match_the_reference_across_batches() {
        const C: usize = CHUNK_SIZE as usize;
        let batch = BATCH_BYTES / C * C;
        for len in [
            0,
            1,
            C - 1,
            C,
            C + 1,
            300 * 1024,
            batch - 1,
            batch,
            batch + 1,
            2 * batch + C / 2,
        ] {
            let plain: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            both_ways(&plain, CHUNK_SIZE);
        }
    }

    fn open(dek: &Key32, data: &[u8]) -> Result<Vec<u8>, StreamError> {
        let mut r = data;
        let h = Header::read_from(&mut r)?;
        let mut out = Vec::new();
        decrypt_body(dek, &h, &mut r, &mut out, &mut |_| {})?;
        Ok(out)
    }

    #[test]
    fn header_round_trips() {
        let (_, h, out) = seal(b"", 16);
        let parsed = Header::read_from(&mut &out[..]).unwrap();
        assert_eq!(parsed, h);
    }

    #[test]
    fn sizes_around_chunk_boundaries() {
        for len in [0usize, 1, 15, 16, 17, 31, 32, 33, 160] {
            let plain: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let (dek, _, ct) = seal(&plain, 16);
            assert_eq!(open(&dek, &ct).unwrap(), plain, "len {len}");
        }
    }

    #[test]
    fn truncation_at_a_chunk_boundary_is_detected() {
        let plain = vec![7u8; 48];
        let (dek, h, ct) = seal(&plain, 16);
        let header_len = h.encode().len();
        for chunks in 0..3 {
            let cut = header_len + chunks * (16 + 16);
            assert!(
                matches!(open(&dek, &ct[..cut]), Err(StreamError::Tampered(_))),
                "cut after {chunks} chunks"
            );
        }
    }

    #[test]
    fn swapped_chunks_and_appended_bytes_are_detected() {
        let plain: Vec<u8> = (0..64u8).collect();
        let (dek, h, ct) = seal(&plain, 16);
        let hl = h.encode().len();
        let mut swapped = ct.clone();
        swapped[hl..hl + 32].copy_from_slice(&ct[hl + 32..hl + 64]);
        swapped[hl + 32..hl + 64].copy_from_slice(&ct[hl..hl + 32]);
        assert!(matches!(
            open(&dek, &swapped),
            Err(StreamError::Tampered(_))
        ));
        let mut longer = ct.clone();
        longer.push(0);
        assert!(matches!(open(&dek, &longer), Err(StreamError::Tampered(_))));
        let mut doubled = ct.clone();
        doubled.extend_from_slice(&ct[hl..hl + 32]);
        assert!(matches!(
            open(&dek, &doubled),
            Err(StreamError::Tampered(_))
        ));
    }

    #[test]
    fn header_damage_is_reported_as_malformed() {
        let (dek, _, ct) = seal(b"hello", 16);
        for i in 0..44 {
            let mut bad = ct.clone();
            bad[i] ^= 0x20;
            assert!(
                matches!(open(&dek, &bad), Err(StreamError::Malformed(_))),
                "byte {i}"
            );
        }
        assert!(matches!(open(&dek, b"ZEN"), Err(StreamError::Malformed(_))));
        let mut h = Header::new(KeyId(1), KeyVersion(1));
        h.wrapped_dek = vec![1; 61];
        h.chunk_size = MAX_CHUNK_SIZE;
        assert_eq!(Header::read_from(&mut &h.encode()[..]).unwrap(), h);
        h.chunk_size = MAX_CHUNK_SIZE + 1;
        assert!(matches!(
            Header::read_from(&mut &h.encode()[..]),
            Err(StreamError::Malformed("ciphertext header is corrupt"))
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn batches_match_the_reference(len in 0usize..12_000, chunk in 1u32..80) {
            let plain: Vec<u8> = (0..len).map(|i| (i * 13) as u8).collect();
            both_ways(&plain, chunk);
        }

        #[test]
        fn round_trip_any_size(len in 0usize..300, chunk in 1u32..64) {
            let plain: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let (dek, _, ct) = seal(&plain, chunk);
            prop_assert_eq!(open(&dek, &ct).unwrap(), plain);
        }

        #[test]
        fn any_flipped_body_bit_fails(len in 0usize..100, bit in any::<usize>()) {
            let plain = vec![1u8; len];
            let (dek, h, mut ct) = seal(&plain, 32);
            let hl = h.encode().len();
            let body_bits = (ct.len() - hl) * 8;
            let i = bit % body_bits;
            ct[hl + i / 8] ^= 1 << (i % 8);
            prop_assert!(matches!(open(&dek, &ct), Err(StreamError::Tampered(_))));
        }

        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let dek = Key32::random();
            let mut with_magic = MAGIC.to_vec();
            with_magic.push(FORMAT_VERSION);
            with_magic.extend_from_slice(&data);
            prop_assert!(open(&dek, &data).is_err());
            prop_assert!(open(&dek, &with_magic).is_err());
        }
    }
}
