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
use zencrypt_core::crypto::armor::is_armored;
use zencrypt_core::error::{Error, Result};
use zencrypt_core::hashing::{self, Algo};

// `encrypt` arguments. (A plain comment: see `cli::Command`.)
#[allow(missing_docs)]
#[derive(Debug, Args)]
pub struct EncryptArgs {
    /// The key to encrypt with.
    #[arg(long, value_name = "NAME", add = clap_complete::ArgValueCandidates::new(crate::ui::complete::keys))]
    pub key: String,
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
    /// Input file, binary or armored (default: stdin; `-` for stdin).
    #[arg(value_name = "INPUT")]
    pub input: Option<PathBuf>,
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

/// `zencrypt encrypt`.
pub fn encrypt(ctx: &Ctx, a: EncryptArgs) -> Result<()> {
    let mut vault = ctx.vault()?;
    let session = ctx.session(&mut vault)?;
    let mut input = open_input(a.input.as_deref())?;
    if !a.armor {
        check_binary_to_terminal(a.output.as_deref())?;
    }
    let pb = files::progress(input.size, ctx.cfg.quiet, "encrypting");
    let result = files::write_through(a.output.as_deref(), |w| {
        let mut progress = files::progress_fn(&pb);
        vault.encrypt_stream(
            &session,
            &a.key,
            &mut input.reader,
            w,
            a.armor,
            &mut progress,
        )
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

/// `decrypt` to a terminal: the plaintext is shown only if it is text.
fn decrypt_to_terminal(ctx: &Ctx, path: Option<&Path>) -> Result<()> {
    let mut vault = ctx.vault()?;
    let session = ctx.session(&mut vault)?;
    let mut input = open_input(path)?;
    let mut out = TerminalBuffer::new();
    let s = vault.decrypt_stream(&session, &mut input.reader, &mut out, &mut |_| {})?;
    if out.overflow {
        return Err(crate::ui::output::too_much_for_a_terminal());
    }
    crate::ui::output::terminal_text_check(&out.bytes)?;
    emitted(std::io::Write::write_all(
        &mut std::io::stdout().lock(),
        &out.bytes,
    ))?;
    ctx.out.note(&format!(
        "Decrypted: {} bytes from {} with key {} (version {}).",
        s.bytes, input.name, s.key_name, s.version
    ));
    Ok(())
}

/// `zencrypt decrypt`.
pub fn decrypt(ctx: &Ctx, a: DecryptArgs) -> Result<()> {
    if files::stdout_is_terminal(a.output.as_deref()) {
        return decrypt_to_terminal(ctx, a.input.as_deref());
    }
    let mut vault = ctx.vault()?;
    let session = ctx.session(&mut vault)?;
    let mut input = open_input(a.input.as_deref())?;
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
    let mut vault = ctx.vault()?;
    let session = ctx.session(&mut vault)?;
    let mut input = open_input(a.input.as_deref())?;
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
