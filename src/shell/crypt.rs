//! Main-menu entry 3, Encrypt / decrypt: text or a file with one of your keys; hashing.

use std::path::{Path, PathBuf};

use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use super::{Shell, Step, entry};
use crate::ui::files::{open_input, write_through};
use crate::ui::prompt::{Interrupt, Prompter, Reply};
use zencrypt_core::cipher::Summary;
use zencrypt_core::crypto::armor::END;
use zencrypt_core::error::Error;
use zencrypt_core::hashing::{self, Algo};
use zencrypt_core::model::KeyStatus;

/// Reads an armored message pasted line by line, up to and including the END line.
fn paste_armor(p: &mut dyn Prompter) -> Reply<String> {
    p.say("Paste the armored message (from the BEGIN line to the END line):");
    let mut text = String::new();
    loop {
        let line = p.line("")?;
        text.push_str(&line);
        text.push('\n');
        if line.trim() == END {
            return Ok(text);
        }
        if text.len() > 16 * 1024 * 1024 {
            return Err(Interrupt::Failed(Error::Usage(
                "the pasted message is too large; decrypt a file instead".into(),
            )));
        }
    }
}

/// Asks for an output path, suggesting `default`; confirms before replacing a file.
fn ask_output(p: &mut dyn Prompter, default: &Path) -> Reply<PathBuf> {
    let typed = p.line(&format!("Write to [{}]: ", default.display()))?;
    let out = if typed.is_empty() {
        default.to_path_buf()
    } else {
        PathBuf::from(typed)
    };
    if out.exists() && !p.confirm(&format!("{} exists. Replace it?", out.display()))? {
        return Err(Interrupt::Cancel);
    }
    Ok(out)
}

fn ask_input(p: &mut dyn Prompter) -> Reply<PathBuf> {
    let path = PathBuf::from(p.line("File: ")?);
    if !path.is_file() {
        return Err(Interrupt::Failed(Error::NotFound(format!(
            "{} is not a file",
            path.display()
        ))));
    }
    Ok(path)
}

impl Shell {
    fn kdf(&self) -> zencrypt_core::crypto::kdf::KdfParams {
        self.vault.kdf()
    }

    pub(super) fn crypt_menu(&mut self, p: &mut dyn Prompter) -> Step {
        let entries = [
            entry(1, "Encrypt text", "armored, to copy and paste"),
            entry(2, "Decrypt text", "paste an armored message"),
            entry(3, "Encrypt a file", ""),
            entry(4, "Decrypt a file", ""),
            entry(5, "Rewrap a file", "move it to the key's latest version"),
            entry(6, "Hash", "sha256 of text or a file, argon2id of a secret"),
            entry(7, "Verify a hash", ""),
        ];
        self.submenu(p, "Encrypt / decrypt", &entries, |shell, p, n| match n {
            1 => shell.encrypt_text(p),
            2 => shell.decrypt_text(p),
            3 => shell.encrypt_file(p),
            4 => shell.decrypt_file(p),
            5 => shell.rewrap_file(p),
            6 => shell.hash_input(p),
            _ => shell.verify_hash(p),
        })
    }

    /// Encrypts hidden text and prints it armored.
    fn encrypt_text(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let key = self.pick_key(p, "Encrypt with which key", |k| {
            k.key.status == KeyStatus::Active && !k.expired
        })?;
        // Typed without echo, like every other secret the shell asks for.
        let text = p.secret("Text (hidden): ")?;
        let mut out = Vec::new();
        self.with_session(|s, v| {
            let mut plain = text.expose_secret().as_bytes();
            v.encrypt_stream(s, &key, &mut plain, &mut out, true, &mut |_| {})
        })?;
        p.say(String::from_utf8_lossy(&out).trim_end());
        Ok(())
    }

    /// Decrypts a pasted armored message and prints it if it is text.
    fn decrypt_text(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let armored = paste_armor(p)?;
        let mut out = Zeroizing::new(Vec::new());
        let s = self.with_session(|s, v| {
            v.decrypt_stream(s, &mut armored.as_bytes(), &mut *out, &mut |_| {})
        })?;
        match std::str::from_utf8(&out) {
            Ok(text) => p.say(text),
            Err(_) => p.say(&format!(
                "({} bytes of binary data: decrypt it as a file instead)",
                s.bytes
            )),
        }
        Ok(())
    }

    /// Encrypts a file to `FILE.zc` or a chosen path.
    fn encrypt_file(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let key = self.pick_key(p, "Encrypt with which key", |k| {
            k.key.status == KeyStatus::Active && !k.expired
        })?;
        let input = ask_input(p)?;
        let mut default = input.clone().into_os_string();
        default.push(".zc");
        let output = ask_output(p, Path::new(&default))?;
        let s = self.file_op(&input, &output, |shell, r, w| {
            shell.with_session(|s, v| v.encrypt_stream(s, &key, r, w, false, &mut |_| {}))
        })?;
        p.say(&format!(
            "Encrypted {} bytes to {} (key {}, version {}).",
            s.bytes,
            output.display(),
            s.key_name,
            s.version
        ));
        Ok(())
    }

    /// Decrypts a file; the suggested output drops `.zc`, or else adds `.out`.
    fn decrypt_file(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let input = ask_input(p)?;
        let default = match input.extension() {
            Some(e) if e == "zc" => input.with_extension(""),
            _ => {
                let mut d = input.clone().into_os_string();
                d.push(".out");
                PathBuf::from(d)
            }
        };
        let output = ask_output(p, &default)?;
        let s = self.file_op(&input, &output, |shell, r, w| {
            shell.with_session(|s, v| v.decrypt_stream(s, r, w, &mut |_| {}))
        })?;
        p.say(&format!(
            "Decrypted {} bytes to {} (key {}, version {}).",
            s.bytes,
            output.display(),
            s.key_name,
            s.version
        ));
        Ok(())
    }

    /// Moves an encrypted file to its key's latest version.
    fn rewrap_file(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let input = ask_input(p)?;
        let output = ask_output(p, &input)?;
        let s = self.file_op(&input, &output, |shell, r, w| {
            shell.with_session(|s, v| v.rewrap_stream(s, r, w))
        })?;
        p.say(&format!(
            "Rewrapped {} from version {} to version {}.",
            output.display(),
            s.from_version,
            s.version
        ));
        Ok(())
    }

    /// Prints the sha256 of text or a file, or the argon2id hash of a secret.
    fn hash_input(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let kinds = vec![
            "sha256 of text".to_string(),
            "sha256 of a file".to_string(),
            "argon2id of a secret (hidden input)".to_string(),
        ];
        let digest = match p.select("Hash what", &kinds)? {
            0 => hashing::hash(
                Algo::Sha256,
                self.kdf(),
                &mut p.secret("Text (hidden): ")?.expose_secret().as_bytes(),
            )?,
            1 => {
                let path = ask_input(p)?;
                let mut input = open_input(Some(&path))?;
                hashing::hash(Algo::Sha256, self.kdf(), &mut input.reader)?
            }
            _ => {
                let secret = p.secret("Secret: ")?;
                hashing::hash(
                    Algo::Argon2id,
                    self.kdf(),
                    &mut secret.expose_secret().as_bytes(),
                )?
            }
        };
        p.say(&digest);
        Ok(())
    }

    /// Checks text, a file or a secret against a sha256 or argon2id hash.
    fn verify_hash(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let expected = p.line("Hash (sha256 hex or $argon2id$...): ")?;
        let kinds = vec![
            "text".to_string(),
            "a file".to_string(),
            "a secret (hidden input)".to_string(),
        ];
        let ok = match p.select("Compare it with", &kinds)? {
            0 => hashing::verify(
                &expected,
                &mut p.secret("Text (hidden): ")?.expose_secret().as_bytes(),
            )?,
            1 => {
                let path = ask_input(p)?;
                hashing::verify(&expected, &mut open_input(Some(&path))?.reader)?
            }
            _ => {
                let secret = p.secret("Secret: ")?;
                hashing::verify(&expected, &mut secret.expose_secret().as_bytes())?
            }
        };
        p.say(if ok {
            "OK: it matches."
        } else {
            "MISMATCH: it does not match."
        });
        Ok(())
    }

    /// Streams `input` to `output` through `op`, keeping the output only on success.
    fn file_op(
        &mut self,
        input: &Path,
        output: &Path,
        op: impl FnOnce(
            &mut Shell,
            &mut (dyn std::io::BufRead + Send),
            &mut dyn std::io::Write,
        ) -> Reply<Summary>,
    ) -> Reply<Summary> {
        let mut inp = open_input(Some(input))?;
        write_through(Some(output), |w| op(self, &mut inp.reader, w))
    }
}
