//! Inputs and outputs of streaming commands: a file or stdin in, a file (written through a
//! temp file and renamed only on success) or stdout out, and progress on a terminal.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use zencrypt_core::error::{Error, Result};

const BUF: usize = 256 * 1024;
/// Streams smaller than this get no progress bar.
const PROGRESS_FROM: u64 = 8 * 1024 * 1024;

/// An opened input.
pub struct Input {
    /// Buffered reader over the file or stdin.
    pub reader: Box<dyn BufRead + Send>,
    /// Size in bytes when known (regular files).
    pub size: Option<u64>,
    /// For messages.
    pub name: String,
}

/// Writes a small secret to a new file at `path` (0600, synced): refused when anything is
/// there already, so no key is ever written over another.
pub fn write_new_private(path: &Path, contents: &[u8]) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                Error::Usage(format!(
                    "{} already exists: name a file that does not",
                    path.display()
                ))
            } else {
                Error::io(format!("creating {}", path.display()), e)
            }
        })?;
    let written = f.write_all(contents).and_then(|()| f.sync_all());
    if let Err(e) = written {
        let _ = fs::remove_file(path);
        return Err(Error::io(format!("writing {}", path.display()), e));
    }
    Ok(())
}

/// Opens `path`, or stdin for `None` or `-`.
pub fn open_input(path: Option<&Path>) -> Result<Input> {
    match path {
        None => stdin_input(),
        Some(p) if p.as_os_str() == "-" => stdin_input(),
        Some(p) => {
            let f = File::open(p).map_err(|e| Error::io(format!("opening {}", p.display()), e))?;
            let meta = f
                .metadata()
                .map_err(|e| Error::io(format!("reading {}", p.display()), e))?;
            if meta.is_dir() {
                return Err(Error::Usage(format!("{} is a directory", p.display())));
            }
            Ok(Input {
                reader: Box::new(BufReader::with_capacity(BUF, f)),
                size: meta.is_file().then_some(meta.len()),
                name: p.display().to_string(),
            })
        }
    }
}

fn stdin_input() -> Result<Input> {
    if io::stdin().is_terminal() {
        crate::ui::output::notice(
            "Reading stdin from the terminal: type or paste, then press Ctrl-D on a new line to end (Ctrl-C cancels).",
        );
    }
    widen_pipe(&io::stdin());
    Ok(Input {
        reader: Box::new(BufReader::with_capacity(BUF, io::stdin())),
        size: None,
        name: "stdin".into(),
    })
}

/// What [`read_line_bounded`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A line is in the buffer (without its `\n`).
    Read,
    /// The input ended before any byte of a new line.
    End,
    /// The line is longer than the cap; reading stopped there.
    TooLong,
}

/// Reads one line into `buf` (cleared first, the `\n` left out), holding at most `cap`
/// bytes of it: a longer line is reported as soon as it passes the cap, so memory stays
/// bounded whatever the input. The buffer grows by copying into a fresh zeroizing buffer,
/// so no copy of a value is left behind in freed memory.
pub fn read_line_bounded(
    reader: &mut dyn BufRead,
    buf: &mut zeroize::Zeroizing<Vec<u8>>,
    cap: usize,
) -> io::Result<Line> {
    use zeroize::Zeroize;
    buf.zeroize();
    buf.clear();
    let mut any = false;
    loop {
        let avail = match reader.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(if any { Line::Read } else { Line::End });
        }
        any = true;
        let (part, newline) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (&avail[..i], true),
            None => (avail, false),
        };
        if buf.len() + part.len() > cap {
            return Ok(Line::TooLong);
        }
        if buf.capacity() < buf.len() + part.len() {
            let want = (buf.len() + part.len()).max(buf.capacity() * 2).min(cap);
            let mut bigger = zeroize::Zeroizing::new(Vec::with_capacity(want));
            bigger.extend_from_slice(buf);
            *buf = bigger;
        }
        buf.extend_from_slice(part);
        let used = part.len() + usize::from(newline);
        reader.consume(used);
        if newline {
            return Ok(Line::Read);
        }
    }
}

/// A pipe's default 64 KiB buffer makes a gigabyte stream cost thousands of wake-ups on
/// each side; 1 MiB cuts them sixteenfold. Not a pipe, or not allowed: nothing changes.
pub fn widen_pipe(fd: &impl std::os::fd::AsFd) {
    let _ = rustix::pipe::fcntl_setpipe_size(fd, 1 << 20);
}

/// A temp file that is removed when dropped (or when the process is interrupted), unless
/// it was moved into place.
pub struct TempPath(Option<PathBuf>);

impl TempPath {
    fn new(path: PathBuf) -> TempPath {
        zencrypt_core::interrupt::track(&path);
        TempPath(Some(path))
    }

    fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }

    /// The file was moved into place: nothing to remove any more.
    fn keep(&mut self) {
        if let Some(p) = self.0.take() {
            zencrypt_core::interrupt::untrack(&p);
        }
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(&p);
            zencrypt_core::interrupt::untrack(&p);
        }
    }
}

/// Where output goes.
pub enum Output {
    /// Standard output.
    Stdout(BufWriter<File>),
    /// A temp file beside the destination, renamed over it on [`Output::commit`]; on any
    /// failure (or an early return) it is removed.
    File {
        /// The temp file.
        writer: BufWriter<File>,
        /// Its path (removed on drop unless committed).
        temp: TempPath,
        /// The destination.
        dest: PathBuf,
    },
    /// A character device or a FIFO, written to directly: there is nothing to rename
    /// over it, and replacing it with a regular file would break whatever uses it.
    Direct {
        /// The opened device or FIFO.
        writer: BufWriter<File>,
        /// Its path, for messages.
        dest: PathBuf,
    },
}

/// Whether `path` means stdout.
pub fn is_stdout(path: Option<&Path>) -> bool {
    path.is_none_or(|p| p.as_os_str() == "-")
}

/// Whether output would go to a terminal.
pub fn stdout_is_terminal(path: Option<&Path>) -> bool {
    is_stdout(path) && io::stdout().is_terminal()
}

/// How `-o PATH` is written.
enum Target {
    /// Open it and write (a character device or a FIFO).
    Direct,
    /// Build a temp file beside this path and rename it over (a regular file, or none).
    Replace(PathBuf),
}

/// Decides how to write `p`. A symbolic link is followed and the same rules apply to
/// what it points to: a regular file behind it is replaced (the link itself stays), a
/// device or FIFO is written to (so `-o /dev/stdout` works), a dangling link is refused.
fn target(p: &Path) -> Result<Target> {
    use std::os::unix::fs::FileTypeExt;
    let refuse = |why: &str| Error::Usage(format!("refusing to write to {}: {why}", p.display()));
    let link = fs::symlink_metadata(p).map(|m| m.file_type().is_symlink());
    let meta = match fs::metadata(p) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return match link {
                Ok(true) => Err(refuse("it is a symbolic link to a missing file")),
                _ => Ok(Target::Replace(p.to_path_buf())),
            };
        }
        Err(e) => return Err(Error::io(format!("reading {}", p.display()), e)),
    };
    let ft = meta.file_type();
    if ft.is_dir() {
        Err(Error::Usage(format!("{} is a directory", p.display())))
    } else if ft.is_char_device() || ft.is_fifo() {
        Ok(Target::Direct)
    } else if ft.is_block_device() {
        Err(refuse("it is a block device"))
    } else if ft.is_socket() {
        Err(refuse("it is a socket"))
    } else if link.unwrap_or(false) {
        let real =
            fs::canonicalize(p).map_err(|e| Error::io(format!("resolving {}", p.display()), e))?;
        Ok(Target::Replace(real))
    } else {
        Ok(Target::Replace(p.to_path_buf()))
    }
}

/// Opens the output: stdout for `None` or `-`; a character device or FIFO directly;
/// otherwise a 0600 temp file beside `path` (or beside the file a link names), renamed
/// over it on [`Output::commit`].
pub fn open_output(path: Option<&Path>) -> Result<Output> {
    let p = match path {
        Some(p) if !is_stdout(path) => p,
        _ => {
            widen_pipe(&io::stdout());
            return Ok(Output::Stdout(BufWriter::with_capacity(BUF, raw_stdout()?)));
        }
    };
    match target(p)? {
        Target::Direct => open_direct(p),
        Target::Replace(dest) => open_replacing(p, dest),
    }
}

fn open_direct(p: &Path) -> Result<Output> {
    use std::os::unix::fs::FileTypeExt;
    // No create, no truncate: the device or FIFO is there, and stays what it is. (A FIFO
    // blocks here until someone reads it, as with a shell's `>`.)
    let f = OpenOptions::new()
        .write(true)
        .open(p)
        .map_err(|e| Error::io(format!("opening {}", p.display()), e))?;
    let ft = f
        .metadata()
        .map_err(|e| Error::io(format!("reading {}", p.display()), e))?
        .file_type();
    if !(ft.is_char_device() || ft.is_fifo()) {
        return Err(Error::Usage(format!(
            "refusing to write to {}: it changed while it was being opened",
            p.display()
        )));
    }
    Ok(Output::Direct {
        writer: BufWriter::with_capacity(BUF, f),
        dest: p.to_path_buf(),
    })
}

fn open_replacing(shown: &Path, dest: PathBuf) -> Result<Output> {
    let dir = parent_dir(&dest);
    zencrypt_core::fsutil::sweep_leftovers(dir);
    let mut temp = TempPath::new(dir.join(zencrypt_core::fsutil::temp_name()));
    let f = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(temp.path())
    {
        Ok(f) => f,
        Err(e) => {
            // Not created, so not ours to remove.
            temp.keep();
            return Err(Error::io(format!("creating {}", shown.display()), e));
        }
    };
    Ok(Output::File {
        writer: BufWriter::with_capacity(BUF, f),
        temp,
        dest,
    })
}

/// Stdout as a file of its own (a duplicate of descriptor 1), so big writes go straight
/// to the kernel: `Stdout` is line-buffered, and would scan binary output for newlines and
/// split every write at the last one.
fn raw_stdout() -> Result<File> {
    let mut stdout = io::stdout();
    stdout
        .flush()
        .and_then(|()| stdout.as_fd().try_clone_to_owned())
        .map(File::from)
        .map_err(|e| Error::io("opening stdout", e))
}

/// The directory a path is in (`.` for a bare name).
fn parent_dir(p: &Path) -> &Path {
    p.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

impl Output {
    /// The writer.
    pub fn writer(&mut self) -> &mut dyn Write {
        match self {
            Output::Stdout(w) => w,
            Output::File { writer, .. } | Output::Direct { writer, .. } => writer,
        }
    }

    /// Flushes; a file is synced, moved into place and its directory synced.
    pub fn commit(self) -> Result<()> {
        match self {
            Output::Stdout(mut w) => match w.flush() {
                Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                    Err(Error::io("writing to stdout", e))
                }
                _ => Ok(()),
            },
            Output::Direct { mut writer, dest } => writer
                .flush()
                .map_err(|e| Error::io(format!("writing {}", dest.display()), e)),
            Output::File {
                writer,
                mut temp,
                dest,
            } => {
                let result = (|| {
                    let f = writer.into_inner().map_err(|e| e.into_error())?;
                    f.sync_all()?;
                    fs::rename(temp.path(), &dest)
                })();
                match result {
                    Ok(()) => {
                        temp.keep();
                        // The rename is durable once the directory is: best effort, since
                        // some filesystems cannot sync a directory.
                        if let Ok(d) = File::open(parent_dir(&dest)) {
                            let _ = d.sync_all();
                        }
                        Ok(())
                    }
                    // Dropping `temp` removes the partial file.
                    Err(e) => Err(Error::io(format!("writing {}", dest.display()), e)),
                }
            }
        }
    }

    /// Throws away a partial file (stdout, a device or a FIFO cannot be taken back).
    pub fn abort(self) {
        // Dropping the temp path removes the file.
        drop(self);
    }
}

/// Writes `bytes` to OUT as `-o` writes (see [`write_through`]), or to stdout; a reader
/// that closed the pipe early is not an error.
pub fn write_bytes_through(output: Option<&Path>, bytes: &[u8], what: &str) -> Result<()> {
    write_through(output, |w| {
        w.write_all(bytes)
            .map_err(|e| Error::io(format!("writing {what}"), e))
    })
    .or_else(|e| match &e {
        Error::Io { source, .. } if source.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        _ => Err(e),
    })
}

/// Runs `body` against the output for `path`, keeping it only if `body` succeeds.
pub fn write_through<T, E: From<Error>>(
    path: Option<&Path>,
    body: impl FnOnce(&mut dyn Write) -> std::result::Result<T, E>,
) -> std::result::Result<T, E> {
    let mut out = open_output(path)?;
    match body(out.writer()) {
        Ok(v) => {
            out.commit()?;
            Ok(v)
        }
        Err(e) => {
            out.abort();
            Err(e)
        }
    }
}

/// A progress bar on stderr for big streams, only on a terminal and never with `-q`.
pub fn progress(size: Option<u64>, quiet: bool, label: &str) -> Option<ProgressBar> {
    if quiet || !io::stderr().is_terminal() || size.is_some_and(|s| s < PROGRESS_FROM) {
        return None;
    }
    let pb = match size {
        Some(s) => ProgressBar::with_draw_target(Some(s), ProgressDrawTarget::stderr()),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
    };
    let style = match size {
        Some(_) => ProgressStyle::with_template(
            "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ),
        None => ProgressStyle::with_template("{msg} {bytes} {bytes_per_sec}"),
    };
    if let Ok(style) = style {
        pb.set_style(style);
    }
    pb.set_message(label.to_string());
    Some(pb)
}

/// A progress callback that only draws once the stream is big enough to matter.
pub fn progress_fn(pb: &Option<ProgressBar>) -> impl FnMut(u64) + '_ {
    move |done| {
        if let Some(pb) = pb
            && done >= PROGRESS_FROM
        {
            pb.set_position(done);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most 3 bytes at a time, to cross every boundary.
    struct Trickle<'a>(&'a [u8]);

    impl io::Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = out.len().min(3).min(self.0.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn lines(input: &[u8], cap: usize) -> Vec<(Line, Vec<u8>)> {
        let mut r = BufReader::with_capacity(4, Trickle(input));
        let mut buf = zeroize::Zeroizing::new(Vec::new());
        let mut out = Vec::new();
        loop {
            let l = read_line_bounded(&mut r, &mut buf, cap).unwrap();
            let stop = l != Line::Read;
            out.push((l, buf.to_vec()));
            if stop {
                return out;
            }
        }
    }

    #[test]
    fn lines_are_read_up_to_the_cap() {
        use Line::*;
        assert_eq!(
            lines(b"one\n\ntwo2\nlast", 4),
            [
                (Read, b"one".to_vec()),
                (Read, vec![]),
                (Read, b"two2".to_vec()),
                (Read, b"last".to_vec()),
                (End, vec![]),
            ]
        );
        assert_eq!(lines(b"", 4), [(End, vec![])]);
        assert_eq!(lines(b"ok\n", 4), [(Read, b"ok".to_vec()), (End, vec![])]);
        // One byte over the cap stops at the cap, newline or not.
        let over = lines(b"abcd\nabcde\nnever read", 4);
        assert_eq!(over.len(), 2);
        assert_eq!(over[0], (Read, b"abcd".to_vec()));
        assert_eq!(over[1].0, TooLong);
        assert!(over[1].1.len() <= 4);
        assert_eq!(lines(b"abcde", 4)[0].0, TooLong);
    }
}
