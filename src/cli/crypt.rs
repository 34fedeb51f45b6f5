//! `encrypt`, `decrypt`, `rewrap` and `hash`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use super::files::{self, Input, open_input, open_output, stream_error};
use super::{Ctx, emitted};
use crate::crypto::armor::{ArmorReader, ArmorWriter, is_armored};
use crate::crypto::stream::{Header, decrypt_body, encrypt_body};
use crate::error::{Error, Result};
use crate::hashing::{self, Algo};
use crate::vault::{Session, Vault};

/// `encrypt` arguments.
#[derive(Debug, Args)]
pub struct EncryptArgs {
    /// The key to encrypt with.
    #[arg(long, value_name = "NAME")]
    pub key: String,
    /// Input file (default: stdin; `-` for stdin).
    #[arg(value_name = "INPUT")]
    pub input: Option<PathBuf>,
    /// Output file, written only if encryption succeeds (default: stdout).
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// ASCII output between BEGIN/END lines instead of binary.
    #[arg(long)]
    pub armor: bool,
}

/// `decrypt` and `rewrap` arguments.
#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// Input file, binary or armored (default: stdin; `-` for stdin).
    #[arg(value_name = "INPUT")]
    pub input: Option<PathBuf>,
    /// Output file, written only if every chunk verifies (default: stdout).
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
}

/// `hash` arguments.
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

/// `hash verify`.
#[derive(Debug, Subcommand)]
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

/// Streams `input` through `body` into `output`, committing the output only on success,
/// then records the outcome.
fn stream_through(
    output: Option<&Path>,
    body: impl FnOnce(&mut dyn Write) -> Result<u64>,
) -> Result<u64> {
    let mut out = open_output(output)?;
    match body(out.writer()) {
        Ok(n) => {
            out.commit()?;
            Ok(n)
        }
        Err(e) => {
            out.abort();
            Err(e)
        }
    }
}

/// `zencrypt encrypt`.
pub fn encrypt(ctx: &Ctx, a: EncryptArgs) -> Result<()> {
    let mut vault = ctx.vault()?;
    let session = ctx.session(&mut vault)?;
    let mut input = open_input(a.input.as_deref())?;
    if !a.armor {
        check_binary_to_terminal(a.output.as_deref())?;
    }
    let plan = vault.begin_encrypt(&session, &a.key)?;
    let pb = files::progress(input.size, ctx.cfg.quiet, "encrypting");
    let result = stream_through(a.output.as_deref(), |w| {
        let mut progress = files::progress_fn(&pb);
        let header = plan.header.encode();
        let io_err = |e| Error::io("writing the output", e);
        if a.armor {
            let mut aw = ArmorWriter::new(w);
            aw.write_all(&header).map_err(io_err)?;
            let n = encrypt_body(
                &plan.dek,
                &plan.header,
                &mut input.reader,
                &mut aw,
                &mut progress,
            )
            .map_err(|e| stream_error(e, "encrypting"))?;
            aw.finish().map_err(io_err)?;
            Ok(n)
        } else {
            w.write_all(&header).map_err(io_err)?;
            let mut w = w;
            encrypt_body(
                &plan.dek,
                &plan.header,
                &mut input.reader,
                &mut w,
                &mut progress,
            )
            .map_err(|e| stream_error(e, "encrypting"))
        }
    });
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    vault.finish_encrypt(&session, &plan, &result)?;
    let n = result?;
    report(ctx, &plan.key_name, plan.header.key_version, n, &input)
}

fn report(ctx: &Ctx, key: &str, version: i64, bytes: u64, input: &Input) -> Result<()> {
    ctx.out.note(&format!(
        "Encrypted: {bytes} bytes from {} with key {key} (version {version}).",
        input.name
    ));
    Ok(())
}

/// Opens an input that may be armored, returning a reader of the binary ciphertext.
fn ciphertext_reader(input: Input) -> Result<(Box<dyn Read>, bool)> {
    let mut reader = input.reader;
    let armored =
        is_armored(&mut reader).map_err(|e| Error::io(format!("reading {}", input.name), e))?;
    if armored {
        Ok((Box::new(ArmorReader::new(reader)), true))
    } else {
        Ok((Box::new(reader), false))
    }
}

fn read_header(
    vault: &mut Vault,
    session: &Session,
    r: &mut dyn Read,
    action: &str,
) -> Result<Header> {
    Header::read_from(&mut &mut *r).map_err(|e| {
        let e = stream_error(e, "reading the input");
        vault.audit_failure(&session.actor(), action, "-", &e);
        e
    })
}

/// `zencrypt decrypt`.
pub fn decrypt(ctx: &Ctx, a: DecryptArgs) -> Result<()> {
    let mut vault = ctx.vault()?;
    let session = ctx.session(&mut vault)?;
    let input = open_input(a.input.as_deref())?;
    let name = input.name.clone();
    let size = input.size;
    let (mut reader, _) = ciphertext_reader(input)?;
    let header = read_header(&mut vault, &session, &mut reader, "crypto.decrypt")?;
    let plan = vault.begin_decrypt(&session, &header)?;
    let pb = files::progress(size, ctx.cfg.quiet, "decrypting");
    let result = stream_through(a.output.as_deref(), |mut w| {
        let mut progress = files::progress_fn(&pb);
        decrypt_body(&plan.dek, &plan.header, &mut reader, &mut w, &mut progress)
            .map_err(|e| stream_error(e, "decrypting"))
    });
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    vault.finish_decrypt(&session, &plan, &result)?;
    let n = result?;
    ctx.out.note(&format!(
        "Decrypted: {n} bytes from {name} with key {} (version {}).",
        plan.key_name, plan.header.key_version
    ));
    Ok(())
}

/// `zencrypt rewrap`: a new header under the key's latest version, the same body.
pub fn rewrap(ctx: &Ctx, a: DecryptArgs) -> Result<()> {
    let mut vault = ctx.vault()?;
    let session = ctx.session(&mut vault)?;
    let input = open_input(a.input.as_deref())?;
    let (mut reader, armored) = ciphertext_reader(input)?;
    if !armored {
        check_binary_to_terminal(a.output.as_deref())?;
    }
    let header = read_header(&mut vault, &session, &mut reader, "crypto.rewrap")?;
    let (new, from, to) = vault.rewrap(&session, &header)?;
    let io_err = |e| Error::io("copying the ciphertext", e);
    stream_through(a.output.as_deref(), |w| {
        if armored {
            let mut aw = ArmorWriter::new(w);
            aw.write_all(&new.encode()).map_err(io_err)?;
            let n = std::io::copy(&mut reader, &mut aw)
                .map_err(|e| stream_error(e.into(), "copying the ciphertext"))?;
            aw.finish().map_err(io_err)?;
            Ok(n)
        } else {
            w.write_all(&new.encode()).map_err(io_err)?;
            std::io::copy(&mut reader, w)
                .map_err(|e| stream_error(e.into(), "copying the ciphertext"))
        }
    })?;
    ctx.out
        .note(&format!("Rewrapped from version {from} to version {to}."));
    Ok(())
}

/// `zencrypt hash` and `zencrypt hash verify`.
pub fn hash(ctx: &Ctx, a: HashArgs) -> Result<()> {
    match a.verify {
        Some(HashCommand::Verify { hash, input }) => {
            let mut input = open_input(input.as_deref())?;
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
            let mut input = open_input(a.input.as_deref())?;
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
