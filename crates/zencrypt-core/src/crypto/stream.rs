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

use std::io::{self, IoSlice, Read, Write};

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
/// Largest chunk size accepted when reading. A batch holds at least one chunk, so a
/// header may make batches this big; [`threads_within`] then uses fewer threads.
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
/// At least the CLI's read buffer, so batch reads go straight from the kernel into the
/// batch instead of through that buffer.
const BATCH_BYTES: usize = 1024 * 1024;
const BATCH_CHUNKS: usize = 64;
/// Most threads a stream uses for reading and sealing or opening, the caller's included.
const MAX_WORKERS: usize = 4;
/// Most memory a stream's batch buffers take (two per thread), within the 32 MiB budget.
const MAX_BUFFERS: usize = 16 << 20;

/// A batch of chunks on its way through [`pipeline`]. Chunks are sealed and opened in
/// place in `data`: the batch is read into it once and written out from it once.
struct Batch {
    /// Input bytes (plus one spare byte for the look-ahead); sealed or opened in place.
    data: Vec<u8>,
    /// How many bytes of `data` belong to the batch.
    n: usize,
    /// Whether the input ended within this batch (its final chunk is the last one).
    end: bool,
    /// The counter of the batch's first chunk.
    counter: u32,
    /// The sealed chunks' tags (encryption only), written after each chunk.
    tags: Vec<[u8; TAG_LEN]>,
    /// How many chunks sealed or verified, from the first.
    good: usize,
    /// Why the chunk after the good ones failed, if one did.
    bad: Option<&'static str>,
    /// How far into `data` any batch ever filled (what `drop` wipes).
    high: usize,
}

/// `data` holds plaintext: the input when encrypting, the opened chunks when decrypting.
/// Only the part ever filled is wiped, so a short message does not pay for a whole batch.
impl Drop for Batch {
    fn drop(&mut self) {
        let high = self.high.min(self.data.len());
        zeroize::Zeroize::zeroize(&mut self.data[..high]);
    }
}

impl Batch {
    fn new(data_len: usize, tags: usize) -> Batch {
        Batch {
            data: vec![0u8; data_len],
            n: 0,
            end: false,
            counter: 0,
            tags: vec![[0u8; TAG_LEN]; tags],
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
        self.good = 0;
        self.bad = None;
        Ok(())
    }
}

/// How many threads a stream uses: one per core the process may run on (its CPU affinity
/// counts), up to [`MAX_WORKERS`]; with one core there is no second thread at all.
fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_WORKERS))
}

/// How many of `workers` threads fit [`MAX_BUFFERS`] with two buffers of `batch_len`
/// bytes each (at least one: a single thread uses one buffer).
fn threads_within(workers: usize, batch_len: usize) -> usize {
    workers.min(MAX_BUFFERS / (2 * batch_len.max(1))).max(1)
}

/// Streams `input` through `work` in batches of `want` bytes and hands each worked batch,
/// in order, to `emit`. `number` gives each new batch its first chunk counter (and
/// refuses a stream that would run out of counters).
///
/// With `workers` > 1, this thread and `workers - 1` others take turns reading the next
/// batch into a buffer of their own and run `work` on it; this thread also writes the
/// batches in order as they become ready, and hands each buffer back to the thread that
/// owns it. A batch is read and sealed (or opened) by the same thread, so its bytes stay
/// in that core's cache; every thread owns two buffers, so memory stays bounded and no
/// buffer is allocated after the first few; and there are no more threads than cores, so
/// none waits for a core. With one worker, or for an input that fits in one batch,
/// everything runs here with a single reused batch.
fn pipeline(
    workers: usize,
    input: &mut (impl Read + Send),
    want: usize,
    tags: usize,
    number: &mut (dyn FnMut(&Batch) -> Result<u32, StreamError> + Send),
    work: &(dyn Fn(&mut Batch) + Sync),
    emit: &mut dyn FnMut(&Batch) -> Result<(), StreamError>,
) -> Result<(), StreamError> {
    let workers = threads_within(workers, want + 1);
    let mut first = Batch::new(want + 1, tags);
    let mut carry = None;
    first.fill(input, want, &mut carry)?;
    first.counter = number(&first)?;
    if first.end || workers < 2 {
        let mut b = first;
        loop {
            work(&mut b);
            emit(&b)?;
            if b.end {
                return Ok(());
            }
            b.fill(input, want, &mut carry)?;
            b.counter = number(&b)?;
        }
    }
    /// The input, which the threads take turns reading.
    struct Source<'a, R> {
        input: &'a mut R,
        carry: Option<u8>,
        number: &'a mut (dyn FnMut(&Batch) -> Result<u32, StreamError> + Send),
        /// The sequence number of the next batch read (the first, 0, is read above).
        next: usize,
        /// Whether the input has ended or failed: nothing more is read.
        over: bool,
    }
    /// What a helper thread passes back: a worked batch with its sequence number and
    /// owner, or why reading failed (at which sequence number, or `None` when the stream
    /// cannot go on at all: a helper stopped).
    enum Done {
        Batch(usize, usize, Batch),
        Failed(Option<usize>, StreamError),
    }
    /// Tells the calling thread when a helper unwinds, so that it never waits for a batch
    /// the helper will not send.
    struct Unwinding(std::sync::mpsc::Sender<Done>);
    impl Drop for Unwinding {
        fn drop(&mut self) {
            if std::thread::panicking() {
                let stopped = StreamError::Malformed("the stream worker stopped");
                let _ = self.0.send(Done::Failed(None, stopped));
            }
        }
    }
    let source = std::sync::Mutex::new(Source {
        input,
        carry,
        number,
        next: 1,
        over: false,
    });
    let hung_up = || StreamError::Malformed("the stream worker stopped");
    // Reads the next batch into `b`: its sequence number, or `None` once the input is
    // over. A failure carries the sequence number the batch would have had: it is
    // reported only after every batch before it, as on one thread.
    let read_next = |b: &mut Batch| -> Result<Option<usize>, (Option<usize>, StreamError)> {
        let mut src = source.lock().map_err(|_| (None, hung_up()))?;
        let src = &mut *src;
        if src.over {
            return Ok(None);
        }
        let read = b
            .fill(src.input, want, &mut src.carry)
            .map_err(StreamError::from)
            .and_then(|()| (src.number)(b));
        match read {
            Ok(counter) => b.counter = counter,
            Err(e) => {
                src.over = true;
                return Err((Some(src.next), e));
            }
        }
        src.over = b.end;
        src.next += 1;
        Ok(Some(src.next - 1))
    };
    std::thread::scope(|s| {
        let (done_tx, done_rx) = std::sync::mpsc::channel::<Done>();
        // Helpers are numbered from 1; this thread is 0.
        let mut give_back = vec![None];
        let mut threads = Vec::with_capacity(workers - 1);
        for w in 1..workers {
            let (back_tx, back_rx) = std::sync::mpsc::channel::<Batch>();
            let (done_tx, read_next) = (done_tx.clone(), &read_next);
            threads.push(s.spawn(move || {
                let _unwinding = Unwinding(done_tx.clone());
                let mut made = 0;
                loop {
                    let mut b = if made < 2 {
                        made += 1;
                        Batch::new(want + 1, tags)
                    } else {
                        match back_rx.recv() {
                            Ok(b) => b,
                            Err(_) => return,
                        }
                    };
                    let done = match read_next(&mut b) {
                        Ok(None) => return,
                        Ok(Some(seq)) => {
                            work(&mut b);
                            Done::Batch(seq, w, b)
                        }
                        Err((seq, e)) => Done::Failed(seq, e),
                    };
                    if done_tx.send(done).is_err() {
                        return;
                    }
                }
            }));
            give_back.push(Some(back_tx));
        }
        drop(done_tx);
        let result = (|| {
            work(&mut first);
            emit(&first)?;
            let (mut free, mut made, mut reading) = (vec![first], 1, true);
            // Worked batches not yet written, at most two per thread.
            let mut waiting: Vec<(usize, usize, Batch)> = Vec::with_capacity(2 * workers);
            let mut next = 1;
            // A failed read, reported once every batch before it is written.
            let mut failed: Option<(usize, StreamError)> = None;
            let fail = |at: Option<usize>, e, failed: &mut Option<_>| match at {
                Some(seq) => {
                    *failed = Some((seq, e));
                    Ok(())
                }
                None => Err(e),
            };
            loop {
                // Write whatever is ready, in order.
                loop {
                    if let Some((_, e)) = failed.take_if(|(seq, _)| *seq == next) {
                        return Err(e);
                    }
                    if let Some(i) = waiting.iter().position(|(seq, _, _)| *seq == next) {
                        let (_, owner, b) = waiting.swap_remove(i);
                        emit(&b)?;
                        if b.end {
                            return Ok(());
                        }
                        next += 1;
                        match &give_back[owner] {
                            None => free.push(b),
                            // A helper that has stopped (the input ended) no longer
                            // takes it: the buffer is dropped, and wiped, here.
                            Some(to) => drop(to.send(b)),
                        }
                        continue;
                    }
                    match done_rx.try_recv() {
                        Ok(Done::Batch(seq, owner, b)) => waiting.push((seq, owner, b)),
                        Ok(Done::Failed(at, e)) => fail(at, e, &mut failed)?,
                        Err(_) => break,
                    }
                }
                // Read and work a batch here, while a buffer of this thread's is free.
                if reading {
                    let buffer = match free.pop() {
                        Some(b) => Some(b),
                        None if made < 2 => {
                            made += 1;
                            Some(Batch::new(want + 1, tags))
                        }
                        None => None,
                    };
                    if let Some(mut b) = buffer {
                        match read_next(&mut b) {
                            Ok(Some(seq)) => {
                                work(&mut b);
                                waiting.push((seq, 0, b));
                                continue;
                            }
                            Ok(None) => {}
                            Err((at, e)) => {
                                fail(at, e, &mut failed)?;
                                continue;
                            }
                        }
                        reading = false;
                        free.push(b);
                    }
                }
                // Nothing to do here until a helper is done.
                match done_rx.recv().map_err(|_| hung_up())? {
                    Done::Batch(seq, owner, b) => waiting.push((seq, owner, b)),
                    Done::Failed(at, e) => fail(at, e, &mut failed)?,
                }
            }
        })();
        // Stop the helpers wherever they are (no more reading, every channel hung up),
        // then wait until their threads have exited (the scope alone waits only for
        // their closures to return): no batch, and no copy of plaintext in it, outlives
        // the call.
        if let Ok(mut src) = source.lock() {
            src.over = true;
        }
        drop(give_back);
        drop(done_rx);
        for t in threads {
            let _ = t.join();
        }
        result
    })
}

/// Writes all of `bufs` with as few calls as the writer allows (one `writev` for a file
/// or pipe that takes it all).
fn write_all_slices(output: &mut impl Write, mut bufs: &mut [IoSlice<'_>]) -> io::Result<()> {
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match output.write_vectored(bufs) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
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
    input: &mut (impl Read + Send),
    output: &mut impl Write,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, StreamError> {
    encrypt_with(workers(), dek, header, input, output, progress)
}

fn encrypt_with(
    workers: usize,
    dek: &Key32,
    header: &Header,
    input: &mut (impl Read + Send),
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
        let (chunks, end, first) = (chunks_in(b), b.end, b.counter);
        for i in 0..chunks {
            let from = (i * size).min(b.n);
            let to = (from + size).min(b.n);
            let last = end && i + 1 == chunks;
            let n = nonce(&header.nonce_prefix, first + i as u32, last);
            match cipher.encrypt_inout_detached(&n, CHUNK_AAD, (&mut b.data[from..to]).into()) {
                Ok(tag) => b.tags[i] = tag.into(),
                Err(_) => break,
            }
            b.good = i + 1;
        }
        b.bad = (b.good < chunks).then_some("encryption failed");
    };
    let mut total: u64 = 0;
    pipeline(
        workers,
        input,
        per_batch * size,
        per_batch,
        &mut counters(chunks_in, "input is too large for one message", false),
        &seal,
        &mut |b| {
            if let Some(why) = b.bad {
                return Err(StreamError::Malformed(why));
            }
            // Each sealed chunk, then its tag (an empty input has one empty chunk).
            let mut bufs = [IoSlice::new(&[]); 2 * BATCH_CHUNKS];
            let mut used = 0;
            for (i, tag) in b.tags[..chunks_in(b)].iter().enumerate() {
                let from = (i * size).min(b.n);
                bufs[used] = IoSlice::new(&b.data[from..(from + size).min(b.n)]);
                bufs[used + 1] = IoSlice::new(tag);
                used += 2;
            }
            write_all_slices(output, &mut bufs[..used])?;
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
    input: &mut (impl Read + Send),
    output: &mut impl Write,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, StreamError> {
    decrypt_with(workers(), dek, header, input, output, progress)
}

fn decrypt_with(
    workers: usize,
    dek: &Key32,
    header: &Header,
    input: &mut (impl Read + Send),
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
        let (chunks, end, first) = (chunks_in(b), b.end, b.counter);
        for (i, chunk) in b.data[..b.n].chunks_mut(full).enumerate() {
            let Some(len) = chunk.len().checked_sub(TAG_LEN) else {
                break;
            };
            let (body, tag) = chunk.split_at_mut(len);
            let last = end && i + 1 == chunks;
            let n = nonce(&header.nonce_prefix, first + i as u32, last);
            let Ok(tag) = Tag::try_from(&tag[..]) else {
                break;
            };
            if cipher
                .decrypt_inout_detached(&n, CHUNK_AAD, body.into(), &tag)
                .is_err()
            {
                break;
            }
            b.good = i + 1;
        }
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
        workers,
        input,
        per_batch * full,
        0,
        &mut counters(chunks_in, "the ciphertext is too long", true),
        &open,
        &mut |b| {
            // Verified chunks are written in order; nothing from a bad one ever is.
            let mut bufs = [IoSlice::new(&[]); BATCH_CHUNKS];
            let mut len = 0;
            for (slot, chunk) in bufs.iter_mut().zip(b.data[..b.n].chunks(full).take(b.good)) {
                let body = &chunk[..chunk.len() - TAG_LEN];
                len += body.len() as u64;
                *slot = IoSlice::new(body);
            }
            write_all_slices(output, &mut bufs[..b.good])?;
            total += len;
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

    /// A writer that takes at most `3` bytes a call, vectored or not, to cross every
    /// slice boundary of a batch's write.
    struct Dribble(Vec<u8>);

    impl Write for Dribble {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(3);
            self.0.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// The batched code, on one thread and with two and three workers, writing whole
    /// batches or a few bytes at a time, makes and accepts the reference's bytes.
    fn both_ways(plain: &[u8], chunk: u32) {
        let dek = Key32::random();
        let mut h = Header::new(KeyId(3), KeyVersion(1));
        h.chunk_size = chunk;
        let mut old = Vec::new();
        reference_encrypt(&dek, &h, &mut &plain[..], &mut old, &mut |_| {}).unwrap();
        let mut back = Vec::new();
        reference_decrypt(&dek, &h, &mut &old[..], &mut back, &mut |_| {}).unwrap();
        assert!(back == plain);
        let what = |w| format!("{} bytes, chunk {chunk}, {w} workers", plain.len());
        for workers in 1..=3 {
            let mut new = Vec::new();
            encrypt_with(workers, &dek, &h, &mut &plain[..], &mut new, &mut |_| {}).unwrap();
            assert!(new == old, "ciphertexts differ ({})", what(workers));
            let mut back = Vec::new();
            decrypt_with(workers, &dek, &h, &mut &new[..], &mut back, &mut |_| {}).unwrap();
            assert!(back == plain, "round trip ({})", what(workers));
            if plain.len() < 20_000 {
                let mut dribble = Dribble(Vec::new());
                encrypt_with(
                    workers,
                    &dek,
                    &h,
                    &mut &plain[..],
                    &mut dribble,
                    &mut |_| {},
                )
                .unwrap();
                assert!(dribble.0 == old, "dribbled ciphertext ({})", what(workers));
                let mut dribble = Dribble(Vec::new());
                decrypt_with(workers, &dek, &h, &mut &old[..], &mut dribble, &mut |_| {}).unwrap();
                assert!(dribble.0 == plain, "dribbled plaintext ({})", what(workers));
            }
            // A cut anywhere fails, having written only verified chunks.
            for cut in [old.len() / 3, old.len().saturating_sub(1)] {
                let mut out = Vec::new();
                let r = decrypt_with(workers, &dek, &h, &mut &old[..cut], &mut out, &mut |_| {});
                assert!(matches!(r, Err(StreamError::Tampered(_))), "cut at {cut}");
                assert!(plain.starts_with(&out));
                assert_eq!(out.len() % chunk as usize, 0);
            }
            // So does a flipped byte two thirds in: the chunks before it, and only
            // those, are written.
            if !plain.is_empty() {
                let mut bad = old.clone();
                let at = old.len() * 2 / 3;
                bad[at] ^= 0x40;
                let mut out = Vec::new();
                let r = decrypt_with(workers, &dek, &h, &mut &bad[..], &mut out, &mut |_| {});
                assert!(
                    matches!(r, Err(StreamError::Tampered(_))),
                    "{}",
                    what(workers)
                );
                let full = chunk as usize + TAG_LEN;
                let whole_chunks = at / full;
                assert!(
                    out == plain[..whole_chunks * chunk as usize],
                    "{}",
                    what(workers)
                );
            }
        }
    }

    #[test]
    fn big_chunks_use_fewer_threads() {
        let normal = BATCH_BYTES + 1;
        assert_eq!(threads_within(4, normal), 4);
        let biggest = MAX_CHUNK_SIZE as usize + TAG_LEN + 1;
        assert_eq!(threads_within(4, biggest), 1);
        assert_eq!(threads_within(4, 2 << 20), 4);
        assert_eq!(threads_within(4, (2 << 20) + 1), 3);
    }

    /// A reader that fails after `left` bytes.
    struct Failing {
        left: usize,
    }

    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.left == 0 {
                return Err(io::Error::other("the disk went away"));
            }
            let n = buf.len().min(self.left).min(100_000);
            buf[..n].fill(7);
            self.left -= n;
            Ok(n)
        }
    }

    /// A read error in the middle of a many-batch stream stops it with that error, on
    /// one thread or several, and leaves no thread behind.
    #[test]
    fn a_read_error_stops_the_stream() {
        let dek = Key32::random();
        let h = Header::new(KeyId(3), KeyVersion(1));
        for workers in 1..=3 {
            for left in [0, 10, BATCH_BYTES + 5, 5 * BATCH_BYTES] {
                let mut out = Vec::new();
                let r = encrypt_with(
                    workers,
                    &dek,
                    &h,
                    &mut Failing { left },
                    &mut out,
                    &mut |_| {},
                );
                match r {
                    Err(StreamError::Io(e)) => assert_eq!(e.to_string(), "the disk went away"),
                    other => panic!("{workers} workers, {left} bytes: {other:?}"),
                }
                // Every whole batch before the failing read was written, and no more.
                let batches = left.saturating_sub(1) / BATCH_BYTES;
                let sealed = BATCH_BYTES / CHUNK_SIZE as usize * (CHUNK_SIZE as usize + TAG_LEN);
                assert_eq!(
                    out.len(),
                    batches * sealed,
                    "{workers} workers, {left} bytes"
                );
                let r = decrypt_with(
                    workers,
                    &dek,
                    &h,
                    &mut Failing { left },
                    &mut out,
                    &mut |_| {},
                );
                // A whole batch of garbage fails to open before the error is reached, on
                // any number of threads: errors come in the order of the input.
                if left > BATCH_BYTES {
                    assert!(
                        matches!(r, Err(StreamError::Tampered(_))),
                        "{workers}, {left}"
                    );
                } else {
                    assert!(matches!(r, Err(StreamError::Io(_))), "{workers}, {left}");
                }
            }
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
