//! ASCII armor for ciphertexts: base64 in 64-character lines between BEGIN and END lines,
//! streamed in both directions.

use std::io::{self, BufRead, Read, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The first line of an armored ciphertext.
pub const BEGIN: &str = "-----BEGIN ZENCRYPT MESSAGE-----";
/// The last line of an armored ciphertext.
pub const END: &str = "-----END ZENCRYPT MESSAGE-----";
const LINE_BYTES: usize = 48; // 64 base64 characters

/// Wraps a writer: bytes written come out armored. Call [`ArmorWriter::finish`].
pub struct ArmorWriter<W: Write> {
    inner: W,
    pending: Vec<u8>,
    started: bool,
}

impl<W: Write> ArmorWriter<W> {
    /// Starts an armored message on `inner`.
    pub fn new(inner: W) -> Self {
        ArmorWriter {
            inner,
            pending: Vec::with_capacity(LINE_BYTES * 1024),
            started: false,
        }
    }

    fn flush_lines(&mut self, all: bool) -> io::Result<()> {
        if !self.started {
            writeln!(self.inner, "{BEGIN}")?;
            self.started = true;
        }
        let whole = if all {
            self.pending.len()
        } else {
            self.pending.len() / LINE_BYTES * LINE_BYTES
        };
        let mut text = String::with_capacity(whole / 3 * 4 + whole / LINE_BYTES + 2);
        for line in self.pending[..whole].chunks(LINE_BYTES) {
            STANDARD.encode_string(line, &mut text);
            text.push('\n');
        }
        self.inner.write_all(text.as_bytes())?;
        self.pending.drain(..whole);
        Ok(())
    }

    /// Writes the last line and the END line; returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush_lines(true)?;
        writeln!(self.inner, "{END}")?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for ArmorWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if self.pending.len() >= LINE_BYTES * 1024 {
            self.flush_lines(false)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Whether buffered input starts with an armor BEGIN line (leading blank space allowed).
pub fn is_armored<R: BufRead + ?Sized>(r: &mut R) -> io::Result<bool> {
    let buf = r.fill_buf()?;
    let start = buf
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(buf.len());
    Ok(buf[start..].starts_with(BEGIN.as_bytes()))
}

/// Reads an armored message and yields the binary ciphertext inside it.
pub struct ArmorReader<R: BufRead> {
    inner: R,
    decoded: Vec<u8>,
    pos: usize,
    state: State,
}

#[derive(PartialEq, Eq)]
enum State {
    Start,
    Body,
    Done,
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("armor: {msg}"))
}

impl<R: BufRead> ArmorReader<R> {
    /// Reads armor from `inner`.
    pub fn new(inner: R) -> Self {
        ArmorReader {
            inner,
            decoded: Vec::new(),
            pos: 0,
            state: State::Start,
        }
    }

    fn next_line(&mut self) -> io::Result<Option<String>> {
        let mut line = Vec::new();
        let n = self
            .inner
            .by_ref()
            .take(4096)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(None);
        }
        if line.len() >= 4096 && !line.ends_with(b"\n") {
            return Err(bad("line too long"));
        }
        let text = String::from_utf8(line).map_err(|_| bad("not text"))?;
        Ok(Some(text.trim().to_string()))
    }

    fn refill(&mut self) -> io::Result<()> {
        self.decoded.clear();
        self.pos = 0;
        while self.state != State::Done && self.decoded.is_empty() {
            let Some(line) = self.next_line()? else {
                return Err(bad("missing END line (truncated)"));
            };
            match self.state {
                State::Start if line.is_empty() => {}
                State::Start if line == BEGIN => self.state = State::Body,
                State::Start => return Err(bad("missing BEGIN line")),
                State::Body if line == END => {
                    self.state = State::Done;
                    // Only blank space may follow.
                    while let Some(rest) = self.next_line()? {
                        if !rest.is_empty() {
                            return Err(bad("data after the END line"));
                        }
                    }
                }
                State::Body => STANDARD
                    .decode_vec(line.as_bytes(), &mut self.decoded)
                    .map_err(|_| bad("invalid base64"))?,
                State::Done => {}
            }
        }
        Ok(())
    }
}

impl<R: BufRead> Read for ArmorReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.decoded.len() {
            if self.state == State::Done {
                return Ok(0);
            }
            self.refill()?;
        }
        let n = buf.len().min(self.decoded.len() - self.pos);
        buf[..n].copy_from_slice(&self.decoded[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn armor(data: &[u8]) -> Vec<u8> {
        let mut w = ArmorWriter::new(Vec::new());
        w.write_all(data).unwrap();
        w.finish().unwrap()
    }

    fn dearmor(text: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        ArmorReader::new(text).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn layout() {
        let a = String::from_utf8(armor(&[0u8; 50])).unwrap();
        let lines: Vec<&str> = a.lines().collect();
        assert_eq!(lines[0], BEGIN);
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines[2], "AAA=");
        assert_eq!(lines[3], END);
        assert!(is_armored(&mut a.as_bytes()).unwrap());
        assert!(!is_armored(&mut &b"ZENC"[..]).unwrap());
    }

    #[test]
    fn damaged_armor_is_refused() {
        let good = armor(b"some bytes here");
        let text = String::from_utf8(good.clone()).unwrap();
        let no_end = text.replace(END, "");
        assert!(dearmor(no_end.as_bytes()).is_err());
        let bad_b64 = text.replace("c29t", "c2!t");
        assert!(dearmor(bad_b64.as_bytes()).is_err());
        let trailing = format!("{text}junk\n");
        assert!(dearmor(trailing.as_bytes()).is_err());
        assert!(dearmor(b"no armor here\n").is_err());
    }

    proptest! {
        #[test]
        fn round_trip(data in proptest::collection::vec(any::<u8>(), 0..5000)) {
            prop_assert_eq!(dearmor(&armor(&data)).unwrap(), data);
        }

        #[test]
        fn random_text_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut text = format!("{BEGIN}\n").into_bytes();
            text.extend_from_slice(&data);
            let _ = dearmor(&text);
            let _ = dearmor(&data);
        }
    }
}
