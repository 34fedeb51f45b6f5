//! The client's witness of a database's audit chain: the highest `seq` and its MAC this
//! client has seen, kept per database (by its random id) in the private state dir.
//!
//! A database that later shows a shorter chain, or another MAC at that seq, was rolled
//! back, truncated, emptied or replaced by an older copy, and every command refuses it
//! (exit 7) until the new head is accepted on purpose (`audit accept-head`, audited).
//! Only heads that were committed are recorded, so a witness never runs ahead of the
//! database it describes.

use std::path::{Path, PathBuf};

use subtle::ConstantTimeEq;

use crate::crypto::hex;
use crate::crypto::mac::MacKey;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::storage::Tx;

/// What this client last saw of one database's audit chain.
#[derive(Debug)]
pub struct Witness {
    file: Option<PathBuf>,
    seen: Option<(i64, Vec<u8>)>,
}

/// The head a database shows, beside what the witness remembers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadChange {
    /// The seq the witness holds, if any.
    pub seen: Option<i64>,
    /// The database's head seq (0 for an empty log).
    pub head: i64,
}

fn parse(text: &str) -> Option<(i64, Vec<u8>)> {
    let (seq, mac) = text.trim().split_once(' ')?;
    let seq: i64 = seq.parse().ok()?;
    if seq < 1 || mac.len() != 64 {
        return None;
    }
    let bytes = (0..32)
        .map(|i| u8::from_str_radix(&mac[2 * i..2 * i + 2], 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    Some((seq, bytes))
}

impl Witness {
    /// A witness that remembers nothing and writes nowhere (tests, tools).
    pub fn none() -> Witness {
        Witness {
            file: None,
            seen: None,
        }
    }

    /// The witness kept in `state_dir` for the database with id `database_id`. A
    /// damaged witness file is an error: it is only ever written whole.
    pub fn load(state_dir: &Path, database_id: &[u8]) -> Result<Witness> {
        let file = state_dir.join("witness").join(hex(database_id));
        let seen = match std::fs::read_to_string(&file) {
            Ok(text) => Some(parse(&text).ok_or_else(|| {
                Error::Config(format!(
                    "the audit witness {} is damaged; remove it to start witnessing afresh",
                    file.display()
                ))
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(format!("reading {}", file.display()), e)),
        };
        Ok(Witness {
            file: Some(file),
            seen,
        })
    }

    /// Refuses a database whose chain is shorter than, or holds another MAC at, the
    /// witnessed head: a rollback or a fork, whatever audit key this client holds (so a
    /// chain rewritten under an older key is named as what it is, not as a wrong key).
    pub fn check_unkeyed(&self, tx: &mut dyn Tx) -> Result<()> {
        let Some((seq, mac)) = &self.seen else {
            return Ok(());
        };
        let head = tx.audit_head()?.map_or(0, |h| h.0);
        if head < *seq {
            let what = if head == 0 {
                "is empty".to_string()
            } else {
                format!("ends at seq {head}")
            };
            return Err(Error::RolledBack { seen: *seq, what });
        }
        match tx.audit_entry(*seq)? {
            Some(e) if bool::from(e.mac.ct_eq(mac)) => Ok(()),
            _ => Err(another_entry(*seq)),
        }
    }

    /// [`Witness::check_unkeyed`], and the entry at the witnessed head must also be genuine
    /// under the audit key.
    pub fn check(&self, tx: &mut dyn Tx, audit_key: &MacKey) -> Result<()> {
        self.check_unkeyed(tx)?;
        let Some((seq, _)) = &self.seen else {
            return Ok(());
        };
        match tx.audit_entry(*seq)? {
            Some(e) if crate::chain::genuine(tx, audit_key, &e)? => Ok(()),
            _ => Err(another_entry(*seq)),
        }
    }

    /// What accepting the database's current head would change.
    pub fn pending(&self, tx: &mut dyn Tx) -> Result<HeadChange> {
        Ok(HeadChange {
            seen: self.seen.as_ref().map(|s| s.0),
            head: tx.audit_head()?.map_or(0, |h| h.0),
        })
    }

    /// Remembers a committed head, if it is newer than the one held. Best effort: a
    /// witness that cannot be written weakens detection but loses nothing.
    pub fn advance(&mut self, seq: i64, mac: &[u8]) {
        if self.seen.as_ref().is_some_and(|s| s.0 >= seq) {
            return;
        }
        self.seen = Some((seq, mac.to_vec()));
        self.save();
    }

    /// Replaces the witnessed head, whatever it was (after an audited acceptance).
    pub fn replace(&mut self, seq: i64, mac: &[u8]) -> Result<()> {
        self.seen = Some((seq, mac.to_vec()));
        let Some(file) = &self.file else {
            return Ok(());
        };
        write(file, seq, mac).map_err(|e| Error::io(format!("writing {}", file.display()), e))
    }

    /// Pins the database id found at `location` (a path or URL): a later database there
    /// with another id was swapped in, and is refused unless it is new (no users yet, as
    /// after a fresh sign-up) or `replace` says it is accepted on purpose.
    pub fn pin(
        state_dir: &Path,
        location: &str,
        id: &[u8],
        fresh: bool,
        replace: bool,
    ) -> Result<()> {
        let canonical = std::fs::canonicalize(location)
            .map(|p| p.as_os_str().as_encoded_bytes().to_vec())
            .unwrap_or_else(|_| location.as_bytes().to_vec());
        let file = state_dir
            .join("witness")
            .join("paths")
            .join(&hex(&crate::crypto::mac::sha256(&canonical))[..32]);
        let want = hex(id);
        match std::fs::read_to_string(&file) {
            Ok(pinned) if pinned.trim() == want => return Ok(()),
            Ok(_) if !(fresh || replace) => {
                return Err(Error::Integrity(format!(
                    "the database at {location} is not the one this client used there before (it has another identity): it was swapped; if it was replaced on purpose, run `zencrypt audit accept-head`"
                )));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("reading {}", file.display()), e)),
        }
        let written = file
            .parent()
            .map_or(Ok(()), fsutil::create_private_dir)
            .and_then(|()| fsutil::write_private_file(&file, format!("{want}\n").as_bytes()));
        written.map_err(|e| Error::io(format!("writing {}", file.display()), e))
    }

    fn save(&self) {
        if let (Some(file), Some((seq, mac))) = (&self.file, &self.seen) {
            // Another process may have seen further: keep the higher of the two.
            if let Some((theirs, _)) = std::fs::read_to_string(file).ok().and_then(|t| parse(&t))
                && theirs >= *seq
            {
                return;
            }
            let _ = write(file, *seq, mac);
        }
    }
}

/// Writes the witness whole (temp file and rename, 0600) without an fsync: a witness
/// lost in a crash only weakens detection, while an fsync would slow every command.
fn write(file: &Path, seq: i64, mac: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = file.parent() {
        fsutil::create_private_dir(dir)?;
    }
    let tmp = file.with_extension(format!("tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(format!("{seq} {}\n", hex(mac)).as_bytes())?;
        std::fs::rename(&tmp, file)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn another_entry(seq: i64) -> Error {
    Error::RolledBack {
        seen: seq,
        what: format!("holds another entry at seq {seq}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_whole_witnesses() {
        let mac = "ab".repeat(32);
        assert_eq!(parse(&format!("12 {mac}\n")), Some((12, vec![0xab; 32])));
        for bad in [
            "",
            "12",
            &format!("0 {mac}"),
            &format!("12 {}", &mac[2..]),
            "x y",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn advances_only_forward_and_keeps_the_higher_head() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Witness::load(dir.path(), &[1, 2]).unwrap();
        w.advance(5, &[5; 32]);
        w.advance(3, &[3; 32]);
        let mut other = Witness::load(dir.path(), &[1, 2]).unwrap();
        assert_eq!(other.seen, Some((5, vec![5; 32])));
        // A process that saw less does not move the file back.
        let mut stale = Witness {
            file: other.file.clone(),
            seen: None,
        };
        stale.advance(4, &[4; 32]);
        other = Witness::load(dir.path(), &[1, 2]).unwrap();
        assert_eq!(other.seen, Some((5, vec![5; 32])));
        other.replace(2, &[2; 32]).unwrap();
        assert_eq!(
            Witness::load(dir.path(), &[1, 2]).unwrap().seen,
            Some((2, vec![2; 32]))
        );
    }
}
