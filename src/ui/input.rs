//! Where one-shot commands get what they need from a person: flags, stdin (read at most
//! once), files, or a prompt when — and only when — the session is interactive.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::Args;
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::ui::prompt::{Interrupt, Prompter, TermPrompter};
use zencrypt_core::config::Config;
use zencrypt_core::crypto::read_secret;
use zencrypt_core::error::{Error, Result};

/// Largest password input accepted from stdin or a file.
const MAX_PASSWORD_INPUT: u64 = 64 * 1024;

/// Whether this process may prompt: no `--no-input`, and stdin and stderr are terminals.
pub fn is_interactive(cfg: &Config) -> bool {
    !cfg.no_input && std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

// Password flags shared by `signup`, `login` and `user add`. (A plain comment: see `cli::Command`.)
#[allow(missing_docs)]
#[derive(Debug, Args, Clone, Default)]
pub struct PasswordArgs {
    /// Read the password from stdin (one line; a trailing newline is dropped).
    #[arg(long, conflicts_with = "password_file")]
    pub password_stdin: bool,
    /// Read the password from the first line of this file.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
}

/// Reads all of stdin (bounded), for passwords.
fn read_stdin_bounded() -> Result<Zeroizing<Vec<u8>>> {
    let buf = read_secret(std::io::stdin().lock(), MAX_PASSWORD_INPUT + 1)
        .map_err(|e| Error::io("reading stdin", e))?;
    if buf.len() as u64 > MAX_PASSWORD_INPUT {
        return Err(Error::Usage("password input on stdin is too large".into()));
    }
    Ok(buf)
}

fn read_file_bounded(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let f = std::fs::File::open(path)
        .map_err(|e| Error::io(format!("reading the password file {}", path.display()), e))?;
    let buf = read_secret(f, MAX_PASSWORD_INPUT + 1)
        .map_err(|e| Error::io(format!("reading the password file {}", path.display()), e))?;
    if buf.len() as u64 > MAX_PASSWORD_INPUT {
        return Err(Error::Usage(format!(
            "the password file {} is too large",
            path.display()
        )));
    }
    Ok(buf)
}

/// Splits password input into lines (`\n` or `\r\n`), as UTF-8.
fn password_lines(bytes: &[u8], source: &str) -> Result<Vec<SecretString>> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| Error::Usage(format!("the password from {source} is not valid UTF-8")))?;
    Ok(text
        .split('\n')
        .map(|l| SecretString::from(l.strip_suffix('\r').unwrap_or(l)))
        .collect())
}

fn first_line(bytes: &[u8], source: &str) -> Result<SecretString> {
    let lines = password_lines(bytes, source)?;
    let first = lines.into_iter().next().unwrap_or_default();
    if first.expose_secret().is_empty() {
        return Err(Error::Usage(format!("the password from {source} is empty")));
    }
    Ok(first)
}

/// Maps a prompt interruption to an error for one-shot commands.
pub fn prompt_error(i: Interrupt) -> Error {
    match i {
        Interrupt::Cancel | Interrupt::Eof => Error::Cancelled,
        Interrupt::Failed(e) => e,
    }
}

/// Gets a password: `--password-stdin`, `--password-file`, `ZENCRYPT_PASSWORD_FILE`, or a
/// hidden prompt (typed twice when `confirm`) on a terminal.
pub fn password(
    args: &PasswordArgs,
    cfg: &Config,
    prompt: &str,
    confirm: bool,
) -> Result<SecretString> {
    if args.password_stdin {
        return first_line(&read_stdin_bounded()?, "stdin");
    }
    if let Some(p) = args.password_file.as_ref().or(cfg.password_file.as_ref()) {
        return first_line(&read_file_bounded(p)?, &p.display().to_string());
    }
    if !is_interactive(cfg) {
        return Err(Error::NeedsInput {
            what: "a password".into(),
            flag: "--password-stdin or --password-file FILE".into(),
        });
    }
    prompt_new_or_existing(&mut TermPrompter::new(), prompt, confirm).map_err(prompt_error)
}

/// Asks for a password on a prompter; with `confirm`, twice, until both match.
pub fn prompt_new_or_existing(
    p: &mut dyn Prompter,
    prompt: &str,
    confirm: bool,
) -> std::result::Result<SecretString, Interrupt> {
    loop {
        let first = p.secret(&format!("{prompt}: "))?;
        if !confirm {
            return Ok(first);
        }
        if let Err(e) = zencrypt_core::accounts::validate_new_password(&first) {
            p.say(&format!("{e}; try again."));
            continue;
        }
        let again = p.secret("Repeat it: ")?;
        if bool::from(subtle::ConstantTimeEq::ct_eq(
            first.expose_secret().as_bytes(),
            again.expose_secret().as_bytes(),
        )) {
            return Ok(first);
        }
        p.say("The passwords do not match; try again.");
    }
}

/// `passwd --password-stdin`: the current password then the new one, one per line.
pub fn two_passwords_from_stdin() -> Result<(SecretString, SecretString)> {
    two_lines_from_stdin(
        "passwd --password-stdin expects two lines: the current password, then the new one",
    )
}

/// Two secrets from stdin, one per line (the first not empty); else `usage` as the error.
pub fn two_lines_from_stdin(usage: &str) -> Result<(SecretString, SecretString)> {
    let lines = password_lines(&read_stdin_bounded()?, "stdin")?;
    let mut it = lines.into_iter();
    match (it.next(), it.next()) {
        (Some(first), Some(second)) if !first.expose_secret().is_empty() => Ok((first, second)),
        _ => Err(Error::Usage(usage.into())),
    }
}

/// Gets a record password: `--password-file`, `ZENCRYPT_RECORD_PASSWORD_FILE`, or a hidden
/// prompt (typed twice when `confirm`) on a terminal.
pub fn record_password(
    flag: Option<&Path>,
    cfg: &Config,
    prompt: &str,
    confirm: bool,
) -> Result<SecretString> {
    if let Some(p) = flag.or(cfg.record_password_file.as_deref()) {
        return first_line(&read_file_bounded(p)?, &p.display().to_string());
    }
    if !is_interactive(cfg) {
        return Err(Error::NeedsInput {
            what: "a record password".into(),
            flag: "--password-file FILE (or set ZENCRYPT_RECORD_PASSWORD_FILE)".into(),
        });
    }
    prompt_new_or_existing(&mut TermPrompter::new(), prompt, confirm).map_err(prompt_error)
}

/// A value to store: `--file`, else stdin when it is not a terminal, else a hidden prompt.
pub fn value(file: Option<&Path>, cfg: &Config, max: usize) -> Result<Zeroizing<Vec<u8>>> {
    let limit = max as u64 + 1;
    let buf = if let Some(p) = file {
        let f =
            std::fs::File::open(p).map_err(|e| Error::io(format!("reading {}", p.display()), e))?;
        read_secret(f, limit).map_err(|e| Error::io(format!("reading {}", p.display()), e))?
    } else if !std::io::stdin().is_terminal() {
        read_secret(std::io::stdin().lock(), limit).map_err(|e| Error::io("reading stdin", e))?
    } else if is_interactive(cfg) {
        let v = TermPrompter::new()
            .secret("Value (hidden): ")
            .map_err(prompt_error)?;
        Zeroizing::new(v.expose_secret().as_bytes().to_vec())
    } else {
        return Err(Error::NeedsInput {
            what: "a value".into(),
            flag: "--file FILE or pipe it on stdin".into(),
        });
    };
    if buf.len() > max {
        return Err(Error::Usage(format!(
            "values are limited to {} MiB",
            max >> 20
        )));
    }
    Ok(buf)
}

/// Gets a user name: the flag, else a prompt on a terminal.
pub fn username(flag: Option<&str>, cfg: &Config) -> Result<String> {
    if let Some(u) = flag {
        return Ok(u.to_string());
    }
    if !is_interactive(cfg) {
        return Err(Error::NeedsInput {
            what: "a username".into(),
            flag: "--username NAME".into(),
        });
    }
    TermPrompter::new().line("Username: ").map_err(prompt_error)
}

/// A `--fingerprint` argument (see `sharing::parse_fingerprint`).
pub fn fingerprint_arg(
    text: Option<&str>,
) -> Result<Option<zencrypt_core::crypto::keypair::Fingerprint>> {
    text.map(zencrypt_core::sharing::parse_fingerprint)
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_strip_newlines_and_crlf() {
        let l = password_lines(b"old pass\r\nnew pass\n", "stdin").unwrap();
        assert_eq!(l[0].expose_secret(), "old pass");
        assert_eq!(l[1].expose_secret(), "new pass");
        assert_eq!(first_line(b"pw\n", "x").unwrap().expose_secret(), "pw");
    }

    #[test]
    fn bad_password_input_is_a_usage_error() {
        let e = first_line(b"\xff\xfe", "stdin").unwrap_err();
        assert_eq!(e.to_string(), "the password from stdin is not valid UTF-8");
        assert_eq!(e.exit_code(), 2);
        let e = first_line(b"\n", "stdin").unwrap_err();
        assert_eq!(e.to_string(), "the password from stdin is empty");
    }
}
