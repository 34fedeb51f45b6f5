//! `generate`: a password or passphrase from the OS CSPRNG, and the options `data put
//! --generate` shares.

use std::io::{IsTerminal, Write};

use clap::{Args, ValueEnum};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::{Ctx, emitted};
use zencrypt_core::error::Result;
use zencrypt_core::generate::{self, Charset, Spec};

// `generate` options, shared with `data put --generate`. (A plain comment: see
// `cli::Command`.)
#[allow(missing_docs)]
#[derive(Debug, Args, Default)]
pub struct GenerateArgs {
    /// Password length (4-256, default 24).
    #[arg(long, value_name = "N", conflicts_with = "words")]
    pub length: Option<usize>,
    /// Characters to draw from (default: all, at least one of each class).
    #[arg(long, value_enum, value_name = "SET", conflicts_with_all = ["words", "no_symbols"])]
    pub charset: Option<CharsetArg>,
    /// Letters and digits only (the same as --charset alnum).
    #[arg(long, conflicts_with = "words")]
    pub no_symbols: bool,
    /// A passphrase of N words from the EFF long word list (3-64) instead of a password.
    #[arg(long, value_name = "N")]
    pub words: Option<usize>,
    /// Between the words of a passphrase (default '-').
    #[arg(long, value_name = "S", requires = "words")]
    pub separator: Option<String>,
}

/// `--charset` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CharsetArg {
    /// A-Z a-z 0-9 and symbols.
    All,
    /// A-Z a-z 0-9.
    Alnum,
    /// A-Z a-z.
    Letters,
    /// 0-9 (a PIN).
    Digits,
    /// 0-9 a-f.
    Hex,
}

impl GenerateArgs {
    /// Whether any option was given.
    pub fn any(&self) -> bool {
        self.length.is_some()
            || self.charset.is_some()
            || self.no_symbols
            || self.words.is_some()
            || self.separator.is_some()
    }

    /// The checked spec these options describe.
    pub fn spec(&self) -> Result<Spec> {
        let spec = match self.words {
            Some(words) => Spec::Passphrase {
                words,
                separator: self.separator.clone().unwrap_or_else(|| "-".into()),
            },
            None => Spec::Password {
                length: self.length.unwrap_or(generate::DEFAULT_LENGTH),
                charset: match (self.charset, self.no_symbols) {
                    (_, true) | (Some(CharsetArg::Alnum), _) => Charset::Alnum,
                    (None | Some(CharsetArg::All), false) => Charset::All,
                    (Some(CharsetArg::Letters), _) => Charset::Letters,
                    (Some(CharsetArg::Digits), _) => Charset::Digits,
                    (Some(CharsetArg::Hex), _) => Charset::Hex,
                },
            },
        };
        spec.validate()?;
        Ok(spec)
    }
}

/// What a spec is, for `--json` (never the value).
pub fn spec_json(spec: &Spec) -> Value {
    let bits = (spec.entropy_bits() * 10.0).floor() / 10.0;
    match spec {
        Spec::Password { length, charset } => json!({
            "kind": "password", "length": length, "charset": charset.name(), "entropy_bits": bits,
        }),
        Spec::Passphrase { words, separator } => json!({
            "kind": "passphrase", "words": words, "separator": separator, "entropy_bits": bits,
        }),
    }
}

/// `generate`: prints one secret (a trailing newline only on a terminal, so a pipe gets
/// the secret byte-exact).
pub fn run(ctx: &Ctx, a: GenerateArgs) -> Result<()> {
    let spec = a.spec()?;
    let secret = spec.generate();
    if ctx.out.json {
        return emitted(ctx.out.json_secret_doc(&spec_json(&spec), "value", &secret));
    }
    let mut line = Zeroizing::new(secret.as_bytes().to_vec());
    if std::io::stdout().is_terminal() {
        line.push(b'\n');
    }
    emitted(std::io::stdout().lock().write_all(&line))
}
