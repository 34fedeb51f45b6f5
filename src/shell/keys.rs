//! Main-menu entry 1, Keys, and entry 6, Expiry & rotation.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use super::{Shell, Step, entry};
use crate::ui::prompt::{Interrupt, Prompter, Reply};
use crate::ui::transfer::parse_material;
use crate::ui::views::{check_text, history_table, keys_table, show_text};
use zencrypt_core::duration;
use zencrypt_core::error::Error;
use zencrypt_core::keys::{KeyChanges, KeyInfo, KeyOptions};
use zencrypt_core::model::KeyStatus;

/// Reads an optional duration: empty means none; bad input is asked again.
fn ask_duration(p: &mut dyn Prompter, prompt: &str) -> Reply<Option<u64>> {
    loop {
        let text = p.line(prompt)?;
        if text.is_empty() {
            return Ok(None);
        }
        match duration::parse(&text) {
            Ok(d) => return Ok(Some(d)),
            Err(e) => p.say(&format!("{e}")),
        }
    }
}

impl Shell {
    pub(super) fn keys_menu(&mut self, p: &mut dyn Prompter) -> Step {
        let entries = [
            entry(1, "List keys", ""),
            entry(2, "Create a key", ""),
            entry(3, "Show a key", "versions and counters"),
            entry(4, "Rotate a key", "new version for new data"),
            entry(5, "Key history", "lifecycle log"),
            entry(6, "Change settings", "rotation, expiry, min decryption"),
            entry(7, "Import a key", "32 bytes as hex or base64"),
            entry(8, "Export a key", "exportable keys only"),
            entry(9, "Disable or enable", ""),
            entry(10, "Destroy a key", "crypto-shred everything under it"),
            entry(11, "Share a key", "another user decrypts with it"),
            entry(12, "Unshare a key", "no later version reaches them"),
        ];
        self.submenu(p, "Keys", &entries, |shell, p, n| match n {
            1 => shell.list_keys(p),
            2 => shell.create_key(p),
            3 => shell.show_key(p),
            4 => shell.rotate_key(p),
            5 => shell.key_history(p),
            6 => shell.change_key_settings(p),
            7 => shell.import_key(p),
            8 => shell.export_key(p),
            9 => shell.toggle_key(p),
            10 => shell.destroy_key(p),
            11 => shell.share_key(p),
            _ => shell.unshare_key(p),
        })
    }

    /// Shows a table of your keys.
    fn list_keys(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let keys = self.with_session(|s, v| v.key_list(s, false))?;
        if keys.is_empty() {
            p.say("No keys yet.");
        } else {
            p.say(&keys_table(&keys));
        }
        Ok(())
    }

    /// Shows a key with its versions and counters.
    fn show_key(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let key = self.pick_key(p, "Show which key", |_| true)?;
        let (i, versions) = self.with_session(|s, v| v.key_show(s, &key))?;
        p.say(&show_text(&i, &versions));
        Ok(())
    }

    /// Rotates an active key, optionally rewrapping its records.
    fn rotate_key(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let key = self.pick_key(p, "Rotate which key", |k| k.key.status == KeyStatus::Active)?;
        let rewrap = p.confirm("Also move stored records to the new version (rewrap)?")?;
        let r = self.with_session(|s, v| v.key_rotate(s, &key, rewrap))?;
        p.say(&format!(
            "Rotated {} to version {}; {} record(s) rewrapped.",
            r.name, r.version, r.rewrapped
        ));
        Ok(())
    }

    /// Shares a key after showing the recipient's fingerprint and its pin state.
    fn share_key(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let key = self.pick_key(p, "Share which key", |k| k.key.status == KeyStatus::Active)?;
        let with = p.line("Share with (username or @group): ")?;
        let Some(fp) = self.confirm_recipient(p, &with, true, &format!("Share key {key} with"))?
        else {
            return Err(Interrupt::Cancel);
        };
        let write = p.confirm("Let them encrypt with it too (write)?")?;
        let s = self.with_session(|se, v| v.key_share(se, &key, &with, write, Some(fp)))?;
        p.say(&crate::ui::views::key_shared_text(&s));
        Ok(())
    }

    /// Ends a key's share with a user.
    fn unshare_key(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let key = self.pick_key(p, "Unshare which key", |_| true)?;
        let from = p.line("Stop sharing it with (username): ")?;
        let (n, all) = self.with_session(|s, v| v.key_unshare(s, &key, &from))?;
        p.say(&format!(
            "Stopped sharing key {key} with {from}: {n} version(s) taken back.{}\n\
             Rotate it so new files use a version they never had.",
            if all {
                " Every share of it ended (changed outside zencrypt)."
            } else {
                ""
            }
        ));
        Ok(())
    }

    /// Shows a key's lifecycle log.
    fn key_history(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let key = self.pick_key(p, "History of which key", |_| true)?;
        let events = self.with_session(|s, v| v.key_history(s, &key))?;
        p.say(&history_table(&events));
        Ok(())
    }

    /// Imports 32 bytes of key material typed as hex or base64.
    fn import_key(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let name = p.line("Name for the imported key: ")?;
        let secret = p.secret("Key (64 hex digits or base64): ")?;
        let material = parse_material(secret.expose_secret().as_bytes())?;
        let exportable = p.confirm("Allow exporting it later?")?;
        self.with_session(|s, v| v.key_import(s, &name, material, exportable))?;
        p.say(&format!("Imported key {name}."));
        Ok(())
    }

    /// Shows an exportable key's latest material as base64, after confirmation.
    fn export_key(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let key = self.pick_key(p, "Export which key", |k| {
            k.key.exportable && k.key.status == KeyStatus::Active
        })?;
        if !p.confirm(&format!("Show the material of '{key}' on screen?"))? {
            return Err(Interrupt::Cancel);
        }
        let (version, material) = self.with_session(|s, v| v.key_export(s, &key, None))?;
        let encoded = Zeroizing::new(STANDARD.encode(material.expose()));
        p.say(&format!("{key} version {version}: {}", *encoded));
        Ok(())
    }

    /// Disables an active key or enables a disabled one.
    fn toggle_key(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let key = self.pick_key(p, "Disable or enable which key", |k| {
            k.key.status != KeyStatus::Destroyed
        })?;
        let enabled = self
            .with_session(|s, v| v.key_list(s, false))?
            .into_iter()
            .any(|k| k.key.name == key && k.key.status == KeyStatus::Active);
        self.with_session(|s, v| v.key_set_enabled(s, &key, !enabled))?;
        p.say(&format!(
            "{} key {key}.",
            if enabled { "Disabled" } else { "Enabled" }
        ));
        Ok(())
    }

    /// Destroys a key once its name is typed again.
    fn destroy_key(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let key = self.pick_key(p, "Destroy which key", |_| true)?;
        p.say(&format!(
            "Destroying '{key}' wipes every version: data encrypted under it can never be decrypted again."
        ));
        let typed = p.line(&format!("Type the key name ({key}) to confirm: "))?;
        if typed != key {
            p.say("The name did not match; nothing was destroyed.");
            return Err(Interrupt::Cancel);
        }
        let n = self.with_session(|s, v| v.key_destroy(s, &key))?;
        p.say(&format!("Destroyed key {key} ({n} version(s) wiped)."));
        Ok(())
    }

    pub(super) fn expiry_menu(&mut self, p: &mut dyn Prompter) -> Step {
        let entries = [
            entry(1, "Check keys", "due, expired, near the limit"),
            entry(2, "Rotate what is due", ""),
        ];
        self.submenu(p, "Expiry & rotation", &entries, |shell, p, n| {
            if n == 1 {
                let r = shell.with_session(|s, v| v.key_check(s))?;
                p.say(&check_text(&r));
                return Ok(());
            }
            let r = shell.with_session(|s, v| v.key_warnings(s))?;
            if r.due.is_empty() {
                p.say("No key is due for rotation.");
                return Ok(());
            }
            if !p.confirm(&format!("Rotate {}?", r.due.join(", ")))? {
                return Err(Interrupt::Cancel);
            }
            for done in shell.with_session(|s, v| v.key_rotate_due(s, false))? {
                p.say(&format!(
                    "Rotated {} to version {}.",
                    done.name, done.version
                ));
            }
            Ok(())
        })
    }

    /// Lets the user pick one of their keys that passes `filter`.
    pub(super) fn pick_key(
        &mut self,
        p: &mut dyn Prompter,
        prompt: &str,
        filter: impl Fn(&KeyInfo) -> bool,
    ) -> Reply<String> {
        let keys: Vec<KeyInfo> = self
            .with_session(|s, v| v.key_list(s, false))?
            .into_iter()
            .filter(|k| filter(k))
            .collect();
        if keys.is_empty() {
            return Err(Interrupt::Failed(Error::NotFound(
                "no key to choose from; create one first".into(),
            )));
        }
        let items: Vec<String> = keys
            .iter()
            .map(|k| {
                format!(
                    "{} (v{}, {}{})",
                    k.key.name,
                    k.key.latest_version,
                    k.key.status.as_str(),
                    if k.due { ", rotation due" } else { "" }
                )
            })
            .collect();
        let i = p.select(prompt, &items)?;
        Ok(keys[i].key.name.clone())
    }

    fn create_key(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let name = p.line("Key name: ")?;
        zencrypt_core::keys::validate_name(&name)?;
        if self.with_session(|s, v| v.key_name_taken(s, &name))? {
            return Err(Interrupt::Failed(Error::Conflict(format!(
                "key '{name}' already exists; choose another name"
            ))));
        }
        let rotate_every = ask_duration(p, "Rotate every (e.g. 90d; empty for manual): ")?;
        let expires_in = ask_duration(p, "Expires in (e.g. 365d; empty for never): ")?;
        let exportable = p.confirm("Allow exporting the key material?")?;
        let opts = KeyOptions {
            rotate_every,
            expires_in,
            exportable,
        };
        self.with_session(|s, v| v.key_create(s, &name, opts))?;
        p.say(&format!("Created key {name} (version 1)."));
        Ok(())
    }

    fn change_key_settings(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let key = self.pick_key(p, "Change which key", |k| {
            k.key.status != KeyStatus::Destroyed
        })?;
        let items = vec![
            "Rotation period".to_string(),
            "Expiry".to_string(),
            "Minimum decryption version".to_string(),
        ];
        let changes = match p.select("Change what", &items)? {
            0 => KeyChanges {
                rotate_every: Some(ask_duration(p, "Rotate every (empty for manual): ")?),
                ..KeyChanges::default()
            },
            1 => KeyChanges {
                expires_in: Some(ask_duration(p, "Expires in, from now (empty for never): ")?),
                ..KeyChanges::default()
            },
            _ => {
                let text = p.line("Minimum decryption version: ")?;
                let v = text
                    .parse::<i64>()
                    .map_err(|_| Error::Usage(format!("'{text}' is not a version number")))?;
                KeyChanges {
                    min_decrypt_version: Some(v),
                    ..KeyChanges::default()
                }
            }
        };
        self.with_session(|s, v| v.key_set(s, &key, changes))?;
        p.say(&format!("Updated key {key}."));
        Ok(())
    }
}
