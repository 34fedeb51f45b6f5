//! Standard age files (age-encryption.org/v1), through the `age` crate: written to X25519
//! recipients, read with X25519 identities, binary or ASCII-armored.

use std::io::{self, BufRead, Read, Write};
use std::str::FromStr;

use age::armor::{ArmoredReader, ArmoredWriter, Format};

use crate::error::{Error, Result};

/// How a binary age file begins.
pub const MAGIC: &[u8] = b"age-encryption.org/v1\n";
/// How an armored age file begins.
pub const ARMOR_BEGIN: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";

/// The most recipients one file is written to.
pub const MAX_RECIPIENTS: usize = 256;

/// Whether the input, from its first bytes on (as much as is buffered), is an age file
/// (binary or armored, armored possibly after leading whitespace, as age allows).
pub fn is_age(reader: &mut dyn BufRead) -> io::Result<bool> {
    let head = reader.fill_buf()?;
    if head.starts_with(MAGIC) {
        return Ok(true);
    }
    let trimmed = head.trim_ascii_start();
    Ok(trimmed.starts_with(ARMOR_BEGIN))
}

/// Reads one age recipient (`age1...`).
pub fn parse_recipient(text: &str) -> Result<age::x25519::Recipient> {
    let text = text.trim();
    if text.to_ascii_uppercase().starts_with("AGE-SECRET-KEY-") {
        return Err(Error::Usage(
            "that is an age identity (a secret key), not a recipient: give its public key (age-keygen -y)".into(),
        ));
    }
    if text.starts_with("ssh-") {
        return Err(Error::Usage(
            "SSH recipients are not supported: give an age recipient (age1...)".into(),
        ));
    }
    age::x25519::Recipient::from_str(text).map_err(|_| {
        Error::Usage(format!(
            "'{}...' is not an age recipient (age1... of 62 characters)",
            crate::text::printable(text, 12)
        ))
    })
}

/// Reads an age recipients file: one recipient a line, `#` comments and blank lines
/// skipped. A line that is not a recipient is an error naming the line.
pub fn parse_recipients_file(name: &str, bytes: &[u8]) -> Result<Vec<age::x25519::Recipient>> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| Error::Usage(format!("{name} is not a text file of age recipients")))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let r = parse_recipient(line)
            .map_err(|e| Error::Usage(format!("{name}, line {}: {e}", n + 1)))?;
        out.push(r);
        if out.len() > MAX_RECIPIENTS {
            return Err(Error::Usage(format!(
                "{name} names more than {MAX_RECIPIENTS} recipients"
            )));
        }
    }
    if out.is_empty() {
        return Err(Error::Usage(format!("{name} names no recipient")));
    }
    Ok(out)
}

/// Reads an age identity file (`AGE-SECRET-KEY-1...` lines, `#` comments). The error
/// names the line, never its content.
pub fn parse_identity_file(name: &str, bytes: &[u8]) -> Result<Vec<Box<dyn age::Identity>>> {
    let file = age::IdentityFile::from_buffer(bytes).map_err(|e| {
        Error::Usage(format!(
            "{name}: {}",
            e.to_string().replace("identity file ", "")
        ))
    })?;
    let ids = file
        .into_identities()
        .map_err(|e| Error::Usage(format!("{name}: {e}")))?;
    if ids.is_empty() {
        return Err(Error::Usage(format!("{name} holds no age identity")));
    }
    Ok(ids)
}

/// A writer that counts what passes through it.
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn io_err(what: &str) -> impl Fn(io::Error) -> Error + '_ {
    move |e| Error::io(what.to_string(), e)
}

/// Encrypts `input` to `recipients` as an age file on `output`; returns the plaintext
/// bytes. `progress` is told the plaintext bytes read so far.
pub fn encrypt(
    recipients: &[age::x25519::Recipient],
    input: &mut dyn Read,
    output: &mut dyn Write,
    armor: bool,
    progress: &mut dyn FnMut(u64),
) -> Result<u64> {
    let encryptor =
        age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| Error::Usage(format!("cannot encrypt to these recipients: {e}")))?;
    let format = if armor {
        Format::AsciiArmor
    } else {
        Format::Binary
    };
    let armored = ArmoredWriter::wrap_output(output, format).map_err(io_err("writing"))?;
    let mut writer = encryptor.wrap_output(armored).map_err(io_err("writing"))?;
    let mut buf = zeroize::Zeroizing::new(vec![0u8; 64 * 1024]);
    let mut total = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("reading the input".to_string(), e)),
        };
        writer.write_all(&buf[..n]).map_err(io_err("writing"))?;
        total += n as u64;
        progress(total);
    }
    writer
        .finish()
        .and_then(|armored| armored.finish())
        .map_err(io_err("writing"))?;
    Ok(total)
}

/// Decrypts the age file on `input` with the first of `identities` it is addressed to,
/// writing the plaintext to `output`; returns its bytes. Nothing is written before the
/// header opened; a damaged or truncated body fails (exit 7) at the chunk that does not
/// authenticate.
pub fn decrypt(
    identities: &[&dyn age::Identity],
    input: &mut dyn BufRead,
    output: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<u64> {
    let reader = ArmoredReader::new(input);
    let decryptor =
        age::Decryptor::new_buffered(io::BufReader::new(reader)).map_err(|e| header_error(&e))?;
    if decryptor.is_scrypt() {
        return Err(Error::Usage(
            "this age file is encrypted with a passphrase; use age -d to read it".into(),
        ));
    }
    let mut reader = decryptor
        .decrypt(identities.iter().copied())
        .map_err(|e| header_error(&e))?;
    let mut out = Counting {
        inner: output,
        bytes: 0,
    };
    let mut buf = zeroize::Zeroizing::new(vec![0u8; 64 * 1024]);
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if e.kind() == io::ErrorKind::InvalidData
                    || e.kind() == io::ErrorKind::UnexpectedEof =>
            {
                return Err(Error::Integrity(
                    "the age file failed authentication: it was changed or truncated".into(),
                ));
            }
            Err(e) => return Err(Error::io("reading the input".to_string(), e)),
        };
        out.write_all(&buf[..n]).map_err(io_err("writing"))?;
        progress(out.bytes);
    }
    Ok(out.bytes)
}

fn header_error(e: &age::DecryptError) -> Error {
    match e {
        age::DecryptError::NoMatchingKeys => Error::NotFound(
            "this age file is not addressed to any identity at hand (your keypair, your groups' keys, or --identity)"
                .into(),
        ),
        // A header cut short or malformed reads as an I/O error of these kinds.
        age::DecryptError::Io(io)
            if matches!(
                io.kind(),
                io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData
            ) =>
        {
            Error::Integrity("not a readable age file: its header is damaged or cut short".into())
        }
        age::DecryptError::Io(io) => Error::io("reading the input".to_string(), clone_io(io)),
        // age's own messages can run over several lines: the first says what is wrong.
        e => Error::Integrity(format!(
            "not a readable age file: {}",
            e.to_string()
                .lines()
                .next()
                .unwrap_or("")
                .trim_end_matches('.')
        )),
    }
}

fn clone_io(e: &io::Error) -> io::Error {
    io::Error::new(e.kind(), e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(armor: bool) {
        let id = age::x25519::Identity::generate();
        let plain: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut file = Vec::new();
        let n = encrypt(
            &[id.to_public()],
            &mut &plain[..],
            &mut file,
            armor,
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(n, plain.len() as u64);
        assert!(is_age(&mut &file[..]).unwrap());
        let mut back = Vec::new();
        let n = decrypt(&[&id], &mut &file[..], &mut back, &mut |_| {}).unwrap();
        assert_eq!(n, plain.len() as u64);
        assert_eq!(back, plain);
    }

    #[test]
    fn binary_and_armored_files_round_trip() {
        roundtrip(false);
        roundtrip(true);
    }

    #[test]
    fn a_file_for_someone_else_is_not_found_and_a_damaged_one_fails() {
        let id = age::x25519::Identity::generate();
        let mut file = Vec::new();
        encrypt(
            &[id.to_public()],
            &mut &b"hello"[..],
            &mut file,
            false,
            &mut |_| {},
        )
        .unwrap();
        let other = age::x25519::Identity::generate();
        let e = decrypt(&[&other], &mut &file[..], &mut Vec::new(), &mut |_| {}).unwrap_err();
        assert_eq!(e.exit_code(), 5);
        let last = file.len() - 1;
        file[last] ^= 1;
        let mut out = Vec::new();
        let e = decrypt(&[&id], &mut &file[..], &mut out, &mut |_| {}).unwrap_err();
        assert_eq!(e.exit_code(), 7);
        assert!(out.is_empty());
    }

    #[test]
    fn recipients_files_name_the_bad_line() {
        let a = age::x25519::Identity::generate().to_public().to_string();
        let text = format!("# team\n\n{a}\n  {a}  \n");
        assert_eq!(
            parse_recipients_file("r.txt", text.as_bytes())
                .unwrap()
                .len(),
            2
        );
        let e = parse_recipients_file("r.txt", format!("{a}\nnot-a-key\n").as_bytes()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "r.txt, line 2: 'not-a-key...' is not an age recipient (age1... of 62 characters)"
        );
        let e = parse_recipients_file("r.txt", b"ssh-ed25519 AAAA x\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "r.txt, line 1: SSH recipients are not supported: give an age recipient (age1...)"
        );
        let e = parse_recipients_file("r.txt", b"# nobody\n").unwrap_err();
        assert_eq!(e.to_string(), "r.txt names no recipient");
        assert!(parse_recipients_file("r.txt", b"\xff\n").is_err());
    }

    #[test]
    fn identity_files_are_read_and_bad_ones_named() {
        let id = age::x25519::Identity::generate();
        use age::secrecy::ExposeSecret;
        let text = format!("# created: now\n{}\n", id.to_string().expose_secret());
        assert_eq!(
            parse_identity_file("k.txt", text.as_bytes()).unwrap().len(),
            1
        );
        let e = parse_identity_file("k.txt", b"# c\nAGE-SECRET-KEY-1NOPE\n")
            .err()
            .unwrap();
        assert_eq!(e.to_string(), "k.txt: contains non-identity data on line 2");
        assert!(!e.to_string().contains("NOPE"));
    }
}
