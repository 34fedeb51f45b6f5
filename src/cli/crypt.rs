//! `encrypt`, `decrypt`, `rewrap` and `hash`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use super::{Ctx, emitted};
use crate::ui::files::{self, open_input};
use crate::ui::input;
use crate::ui::prompt::{Prompter, TermPrompter};
use zencrypt_core::crypto::agefile;
use zencrypt_core::crypto::armor::is_armored;
use zencrypt_core::error::{Error, Result};
use zencrypt_core::events::AuditAction;
use zencrypt_core::hashing::{self, Algo};

// `encrypt` arguments. (A plain comment: see `cli::Command`.)
#[allow(missing_docs)]
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("target").required(true).multiple(true).args(["key", "to", "recipient", "recipients_file"]))]
pub struct EncryptArgs {
    /// The key to encrypt with (a zencrypt file).
    #[arg(long, value_name = "NAME", add = clap_complete::ArgValueCandidates::new(crate::ui::complete::keys),
          conflicts_with_all = ["to", "recipient", "recipients_file"])]
    pub key: Option<String>,
    /// Write a standard age file to this user's public key (repeatable; their key is
    /// pinned the first time), or to a @group's key.
    #[arg(long, value_name = "USER|@GROUP")]
    pub to: Vec<String>,
    /// Write a standard age file to this age recipient (age1..., repeatable).
    #[arg(long, value_name = "AGE1...")]
    pub recipient: Vec<String>,
    /// Write a standard age file to the recipients in this file (one age1... a line).
    #[arg(long, value_name = "FILE")]
    pub recipients_file: Vec<PathBuf>,
    /// Input file (default: stdin; `-` for stdin).
    #[arg(value_name = "INPUT")]
    pub input: Option<PathBuf>,
    /// Output file, written only if encryption succeeds (default: stdout).
    ///
    /// A regular file is replaced through a temp file and a rename; a character device or
    /// a FIFO is written to directly; a symbolic link is followed to what it names.
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// ASCII output between BEGIN/END lines instead of binary.
    #[arg(long)]
    pub armor: bool,
}

// `decrypt` and `rewrap` arguments. (A plain comment: see `cli::Command`.)
#[allow(missing_docs)]
#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// Input file, binary or armored, zencrypt or age (default: stdin; `-` for stdin).
    #[arg(value_name = "INPUT")]
    pub input: Option<PathBuf>,
    /// Read an age file with the identities in this file (AGE-SECRET-KEY-1... lines)
    /// instead of your own keypair (repeatable; no login needed).
    #[arg(long, short = 'i', value_name = "FILE")]
    pub identity: Vec<PathBuf>,
    /// Output file, written only if every chunk verifies (default: stdout).
    ///
    /// A regular file is replaced through a temp file and a rename; a character device or
    /// a FIFO is written to directly; a symbolic link is followed to what it names.
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
}

// `hash` arguments. (A plain comment: see `cli::Command`.)
#[allow(missing_docs)]
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct HashArgs {
    /// Compare instead of printing.
    #[command(subcommand)]
    pub verify: Option<HashCommand>,
    /// Input file (default: stdin; `-` for stdin).
    #[arg(value_name = "INPUT")]
    pub input: Option<PathBuf>,
    /// sha256 (hex digest) or argon2id (PHC string, for passwords).
    #[arg(long, value_enum, default_value = "sha256")]
    pub algo: AlgoArg,
}

// `hash verify`. (A plain comment: see `cli::Command`.)
#[allow(missing_docs)]
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum HashCommand {
    /// Exit 0 if INPUT matches HASH (sha256 hex or argon2id PHC), 7 if not.
    #[command(after_help = "Example:\n  zencrypt hash verify \"$(cat app.sha256)\" app.tar")]
    Verify {
        /// The expected hash.
        hash: String,
        /// Input file (default: stdin; `-` for stdin).
        #[arg(value_name = "INPUT")]
        input: Option<PathBuf>,
    },
}

/// `--algo` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AlgoArg {
    /// SHA-256.
    Sha256,
    /// argon2id.
    Argon2id,
}

fn check_binary_to_terminal(output: Option<&Path>) -> Result<()> {
    if files::stdout_is_terminal(output) {
        return Err(Error::BinaryToTerminal);
    }
    Ok(())
}

/// The most bytes a recipients or identity file may have.
const MAX_KEY_FILE: u64 = 1 << 20;

/// Reads a small file of keys (recipients or identities) whole.
fn read_key_file(path: &Path, what: &str) -> Result<Zeroizing<Vec<u8>>> {
    let context = || format!("reading the {what} {}", path.display());
    let f = std::fs::File::open(path).map_err(|e| Error::io(context(), e))?;
    let buf = zencrypt_core::crypto::read_secret(f, MAX_KEY_FILE + 1)
        .map_err(|e| Error::io(context(), e))?;
    if buf.len() as u64 > MAX_KEY_FILE {
        return Err(Error::Usage(format!(
            "the {what} {} is too large",
            path.display()
        )));
    }
    Ok(buf)
}

/// `zencrypt encrypt --to/--recipient/--recipients-file`: a standard age file.
fn encrypt_age(ctx: &Ctx, a: EncryptArgs) -> Result<()> {
    let mut recipients = Vec::new();
    for r in &a.recipient {
        recipients.push(agefile::parse_recipient(r)?);
    }
    for path in &a.recipients_file {
        let bytes = read_key_file(path, "recipients file")?;
        recipients.extend(agefile::parse_recipients_file(
            &path.display().to_string(),
            &bytes,
        )?);
    }
    // Named users need the vault (their keys, checked against your pins); bare age
    // recipients do not.
    let mut audited = None;
    let mut users = Vec::new();
    if !a.to.is_empty() {
        let mut vault = ctx.vault()?;
        let session = ctx.session(&mut vault)?;
        for (id, r) in vault.age_recipients_of(&session, &a.to)? {
            users.push(id.username);
            recipients.push(r);
        }
        audited = Some((vault, session));
    }
    if recipients.len() > agefile::MAX_RECIPIENTS {
        return Err(Error::Usage(format!(
            "an age file has at most {} recipients",
            agefile::MAX_RECIPIENTS
        )));
    }
    let mut input = open_input(a.input.as_deref())?;
    if !a.armor {
        check_binary_to_terminal(a.output.as_deref())?;
    }
    let pb = files::progress(input.size, ctx.cfg.quiet, "encrypting");
    let result = files::write_through(a.output.as_deref(), |w| {
        let mut progress = files::progress_fn(&pb);
        agefile::encrypt(&recipients, &mut input.reader, w, a.armor, &mut progress)
    });
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    let bytes = result?;
    if let Some((mut vault, session)) = audited {
        vault.audit_age_file(
            &session,
            AuditAction::CryptoEncrypt,
            &users.join(","),
            json!({
                "format": "age",
                "to": users,
                "recipients": recipients.len(),
                "bytes": bytes,
            }),
        )?;
    }
    let others = recipients.len() - users.len();
    let to = match (users.is_empty(), others) {
        (true, n) => format!("{n} recipient(s)"),
        (false, 0) => users.join(", "),
        (false, n) => format!("{} and {n} other recipient(s)", users.join(", ")),
    };
    ctx.out.note(&format!(
        "Encrypted: {bytes} bytes from {} as an age file to {to}.",
        input.name
    ));
    Ok(())
}

/// `zencrypt encrypt`.
pub fn encrypt(ctx: &Ctx, a: EncryptArgs) -> Result<()> {
    let Some(key) = a.key.clone() else {
        return encrypt_age(ctx, a);
    };
    let mut vault = ctx.vault()?;
    let session = ctx.session(&mut vault)?;
    let mut input = open_input(a.input.as_deref())?;
    if !a.armor {
        check_binary_to_terminal(a.output.as_deref())?;
    }
    let pb = files::progress(input.size, ctx.cfg.quiet, "encrypting");
    let result = files::write_through(a.output.as_deref(), |w| {
        let mut progress = files::progress_fn(&pb);
        vault.encrypt_stream(&session, &key, &mut input.reader, w, a.armor, &mut progress)
    });
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    let s = result?;
    ctx.out.note(&format!(
        "Encrypted: {} bytes from {} with key {} (version {}).",
        s.bytes, input.name, s.key_name, s.version
    ));
    Ok(())
}

/// Plaintext bound for a terminal: kept in memory (at most a little past the terminal
/// limit) and shown only once the whole message verified and turned out to be text.
struct TerminalBuffer {
    bytes: Zeroizing<Vec<u8>>,
    overflow: bool,
}

impl TerminalBuffer {
    fn new() -> Self {
        // Allocated once at full size: growing would leave copies of the plaintext behind
        // in freed memory.
        TerminalBuffer {
            bytes: Zeroizing::new(Vec::with_capacity(crate::ui::output::TERMINAL_MAX)),
            overflow: false,
        }
    }
}

impl TerminalBuffer {
    /// Writes the plaintext to the terminal, if it is text that fits.
    fn show(&self) -> Result<()> {
        if self.overflow {
            return Err(crate::ui::output::too_much_for_a_terminal());
        }
        crate::ui::output::terminal_text_check(&self.bytes)?;
        emitted(std::io::Write::write_all(
            &mut std::io::stdout().lock(),
            &self.bytes,
        ))
    }
}

impl std::io::Write for TerminalBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > crate::ui::output::TERMINAL_MAX {
            self.overflow = true;
        } else {
            self.bytes.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Where the identities for an age file come from.
enum AgeKeys {
    /// `--identity` files.
    Files(Vec<Box<dyn age::Identity>>),
    /// The user's own keypair, with the vault to audit the read.
    Own(Box<OwnAgeKey>),
}

/// The user's own age identity, and those of the groups they are a member of, and the
/// session that unwrapped them.
struct OwnAgeKey {
    identities: Vec<age::x25519::Identity>,
    vault: zencrypt_core::vault::Vault,
    session: zencrypt_core::vault::Session,
}

impl AgeKeys {
    fn load(ctx: &Ctx, files: &[PathBuf]) -> Result<AgeKeys> {
        if files.is_empty() {
            let mut vault = ctx.vault()?;
            let session = ctx.session(&mut vault)?;
            let identities = vault.age_identities(&session)?;
            return Ok(AgeKeys::Own(Box::new(OwnAgeKey {
                identities,
                vault,
                session,
            })));
        }
        let mut ids = Vec::new();
        for path in files {
            let bytes = read_key_file(path, "identity file")?;
            ids.extend(agefile::parse_identity_file(
                &path.display().to_string(),
                &bytes,
            )?);
        }
        Ok(AgeKeys::Files(ids))
    }

    fn decrypt(
        &self,
        input: &mut dyn std::io::BufRead,
        output: &mut dyn std::io::Write,
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64> {
        match self {
            AgeKeys::Files(ids) => {
                let ids: Vec<&dyn age::Identity> = ids.iter().map(|i| i.as_ref()).collect();
                agefile::decrypt(&ids, input, output, progress)
            }
            AgeKeys::Own(own) => {
                let ids: Vec<&dyn age::Identity> = own
                    .identities
                    .iter()
                    .map(|i| i as &dyn age::Identity)
                    .collect();
                agefile::decrypt(&ids, input, output, progress)
            }
        }
    }

    /// Audits the read when it used the user's own keypair.
    fn finish(self, bytes: u64) -> Result<()> {
        if let AgeKeys::Own(own) = self {
            let OwnAgeKey {
                mut vault, session, ..
            } = *own;
            let me = session.username.clone();
            vault.audit_age_file(
                &session,
                AuditAction::CryptoDecrypt,
                &me,
                json!({ "format": "age", "bytes": bytes }),
            )?;
        }
        Ok(())
    }
}

/// `decrypt` of an age file.
fn decrypt_age(ctx: &Ctx, a: &DecryptArgs, mut input: files::Input) -> Result<()> {
    let keys = AgeKeys::load(ctx, &a.identity)?;
    let bytes = if files::stdout_is_terminal(a.output.as_deref()) {
        let mut out = TerminalBuffer::new();
        let n = keys.decrypt(&mut input.reader, &mut out, &mut |_| {})?;
        out.show()?;
        n
    } else {
        let pb = files::progress(input.size, ctx.cfg.quiet, "decrypting");
        let result = files::write_through(a.output.as_deref(), |w| {
            let mut progress = files::progress_fn(&pb);
            keys.decrypt(&mut input.reader, w, &mut progress)
        });
        if let Some(pb) = pb {
            pb.finish_and_clear();
        }
        result?
    };
    keys.finish(bytes)?;
    ctx.out.note(&format!(
        "Decrypted: {bytes} bytes from {} (an age file).",
        input.name
    ));
    Ok(())
}

/// Opens the input of `decrypt` and tells whether it is an age file.
fn open_ciphertext(path: Option<&Path>) -> Result<(files::Input, bool)> {
    let mut input = open_input(path)?;
    let is_age = agefile::is_age(&mut input.reader)
        .map_err(|e| Error::io(format!("reading {}", input.name), e))?;
    Ok((input, is_age))
}

/// `decrypt` to a terminal: the plaintext is shown only if it is text.
fn decrypt_to_terminal(ctx: &Ctx, mut input: files::Input) -> Result<()> {
    let mut vault = ctx.vault()?;
    let session = ctx.session(&mut vault)?;
    let mut out = TerminalBuffer::new();
    let s = vault.decrypt_stream(&session, &mut input.reader, &mut out, &mut |_| {})?;
    out.show()?;
    ctx.out.note(&format!(
        "Decrypted: {} bytes from {} with key {} (version {}).",
        s.bytes, input.name, s.key_name, s.version
    ));
    Ok(())
}

/// `zencrypt decrypt`.
pub fn decrypt(ctx: &Ctx, a: DecryptArgs) -> Result<()> {
    let (mut input, is_age) = open_ciphertext(a.input.as_deref())?;
    if is_age {
        return decrypt_age(ctx, &a, input);
    }
    if !a.identity.is_empty() {
        return Err(Error::Usage(format!(
            "{} is not an age file: --identity reads only age files",
            input.name
        )));
    }
    if files::stdout_is_terminal(a.output.as_deref()) {
        return decrypt_to_terminal(ctx, input);
    }
    let mut vault = ctx.vault()?;
    let session = ctx.session(&mut vault)?;
    let pb = files::progress(input.size, ctx.cfg.quiet, "decrypting");
    let result = files::write_through(a.output.as_deref(), |w| {
        let mut progress = files::progress_fn(&pb);
        vault.decrypt_stream(&session, &mut input.reader, w, &mut progress)
    });
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    let s = result?;
    ctx.out.note(&format!(
        "Decrypted: {} bytes from {} with key {} (version {}).",
        s.bytes, input.name, s.key_name, s.version
    ));
    Ok(())
}

/// `zencrypt rewrap`: a new header under the key's latest version, the same body.
pub fn rewrap(ctx: &Ctx, a: DecryptArgs) -> Result<()> {
    let (mut input, is_age) = open_ciphertext(a.input.as_deref())?;
    if is_age || !a.identity.is_empty() {
        return Err(Error::Usage(format!(
            "rewrap moves zencrypt files to their key's latest version; {} is {}",
            input.name,
            if is_age {
                "an age file"
            } else {
                "not an age file (--identity is for age files)"
            }
        )));
    }
    let mut vault = ctx.vault()?;
    let session = ctx.session(&mut vault)?;
    let armored = is_armored(&mut input.reader)
        .map_err(|e| Error::io(format!("reading {}", input.name), e))?;
    if !armored {
        check_binary_to_terminal(a.output.as_deref())?;
    }
    let s = files::write_through(a.output.as_deref(), |w| {
        vault.rewrap_stream(&session, &mut input.reader, w)
    })?;
    ctx.out.note(&if s.from_version == s.version {
        format!(
            "{} is already at the key's latest version ({}); written out unchanged.",
            input.name, s.version
        )
    } else {
        format!(
            "Rewrapped {} from version {} to version {}.",
            input.name, s.from_version, s.version
        )
    });
    Ok(())
}

/// What `hash` reads: INPUT, or stdin streamed when it is a pipe or file. What is typed at
/// a terminal is usually a password, so it is read through a hidden prompt instead (no
/// echo, no trailing newline).
fn hash_input(ctx: &Ctx, path: Option<&Path>) -> Result<files::Input> {
    if path.is_some() || !std::io::stdin().is_terminal() {
        return open_input(path);
    }
    if !input::is_interactive(&ctx.cfg) {
        return Err(Error::NeedsInput {
            what: "the input to hash".into(),
            flag: "INPUT or pipe it on stdin".into(),
        });
    }
    let secret = TermPrompter::new()
        .secret("Input to hash (hidden): ")
        .map_err(input::prompt_error)?;
    let bytes = Zeroizing::new(secret.expose_secret().as_bytes().to_vec());
    Ok(files::Input {
        size: Some(bytes.len() as u64),
        reader: Box::new(std::io::Cursor::new(bytes)),
        name: "the prompt".into(),
    })
}

/// `zencrypt hash` and `zencrypt hash verify`.
pub fn hash(ctx: &Ctx, a: HashArgs) -> Result<()> {
    match a.verify {
        Some(HashCommand::Verify { hash, input }) => {
            let mut input = hash_input(ctx, input.as_deref())?;
            let ok = hashing::verify(&hash, &mut input.reader)?;
            if ctx.out.json {
                emitted(ctx.out.json_doc(&json!({ "match": ok })))?;
            }
            if ok {
                ctx.out.note("OK: the input matches the hash.");
                Ok(())
            } else {
                Err(Error::Integrity("the input does not match the hash".into()))
            }
        }
        None => {
            let mut input = hash_input(ctx, a.input.as_deref())?;
            let algo = match a.algo {
                AlgoArg::Sha256 => Algo::Sha256,
                AlgoArg::Argon2id => Algo::Argon2id,
            };
            let h = hashing::hash(algo, ctx.cfg.kdf, &mut input.reader)?;
            if ctx.out.json {
                return emitted(ctx.out.json_doc(
                    &json!({ "algo": format!("{:?}", algo).to_lowercase(), "hash": h }),
                ));
            }
            emitted(ctx.out.data_line(&h))
        }
    }
}
