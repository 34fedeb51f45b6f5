//! Main-menu entry 2, Encrypted data: store, retrieve, list, update, delete, restore,
//! purge.

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::{Shell, Step, entry};
use crate::ui::files::write_through;
use crate::ui::input::prompt_new_or_existing;
use crate::ui::prompt::{Interrupt, Prompter, Reply};
use crate::ui::transfer::{read_import, write_export};
use crate::ui::views::records_table;
use zencrypt_core::duration;
use zencrypt_core::error::Error;
use zencrypt_core::generate;
use zencrypt_core::model::{RecordFilter, RecordOrder};
use zencrypt_core::records::{PurgeOptions, PutOptions, RecordInfo};

fn filter(deleted: Option<bool>) -> RecordFilter {
    RecordFilter {
        deleted,
        now: duration::now(),
        // By name: a list that keeps its order after an update, and reads like a tree.
        order_by: RecordOrder::Name,
        ascending: true,
        ..RecordFilter::default()
    }
}

/// A record picked from a list and read.
struct Picked {
    /// As the list showed it.
    listed: RecordInfo,
    /// As it was read.
    info: RecordInfo,
    /// Its value.
    value: Zeroizing<Vec<u8>>,
    /// Its record password, if it has one.
    password: Option<SecretString>,
}

/// Widest label a pick-list shows: an 80-column terminal keeps every entry on one line.
const LABEL_WIDTH: usize = 74;

/// A record as menus show it: its name with the start of its token, marks for a password
/// or expiry; a name too long for one line keeps its end, which tells paths apart.
fn label(r: &RecordInfo) -> String {
    let mut s = match &r.name {
        Some(name) => {
            let short: String = r.token.chars().take(10).collect();
            let room = LABEL_WIDTH.saturating_sub(short.len() + 4);
            let shown = if name.chars().count() > room {
                let tail: String = name
                    .chars()
                    .rev()
                    .take(room.saturating_sub(1))
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                format!("…{tail}")
            } else {
                name.clone()
            };
            format!("{shown} ({short}…)")
        }
        None => r.token.clone(),
    };
    if r.protected {
        s.push_str(" [password]");
    }
    if r.expires_at.is_some_and(|e| duration::now() >= e) {
        s.push_str(" [expired]");
    }
    s
}

impl Shell {
    pub(super) fn data_menu(&mut self, p: &mut dyn Prompter) -> Step {
        let entries = [
            entry(1, "Store a value", "prints its token"),
            entry(2, "Retrieve a value", "pick from your records"),
            entry(3, "List records", ""),
            entry(4, "Update a value", ""),
            entry(5, "Delete a record", "restorable"),
            entry(6, "Restore a record", ""),
            entry(7, "Purge", "expired and deleted records"),
            entry(8, "Record password", "change it for all its records"),
            entry(9, "Import", "JSON lines from a file"),
            entry(10, "Export", "decrypted JSON lines to a file"),
            entry(11, "Generate and store", "a password you never see"),
            entry(12, "Edit in your editor", "$VISUAL or $EDITOR"),
            entry(13, "TOTP code", "of a stored otpauth:// secret"),
            entry(14, "History", "earlier versions; roll back"),
            entry(15, "Share a record", "with another user or @group"),
            entry(16, "Unshare a record", "re-encrypts it"),
            entry(17, "Shared with me", "list, read, write"),
            entry(18, "Transfer a record", "it becomes another user's"),
            entry(19, "Receive records", "handed to you by others"),
        ];
        self.submenu(p, "Encrypted data", &entries, |shell, p, n| match n {
            1 => shell.store_value(p),
            2 => shell.retrieve_value(p),
            3 => shell.list_records(p),
            4 => shell.update_value(p),
            5 => shell.delete_record(p),
            6 => shell.restore_record(p),
            7 => shell.purge_records(p),
            8 => shell.change_record_password(p),
            9 => shell.import_records(p),
            10 => shell.export_records(p),
            11 => shell.store_generated(p),
            12 => shell.edit_value(p),
            13 => shell.totp_code(p),
            14 => shell.record_history(p),
            15 => shell.share_record(p),
            16 => shell.unshare_record(p),
            17 => shell.shared_with_me(p),
            18 => shell.transfer_record(p),
            _ => {
                let all = shell.with_session(|s, v| v.data_receive(s))?;
                p.say(&crate::ui::views::received_text(&all));
                Ok(())
            }
        })
    }

    /// Hands one of the user's records to another user after showing their fingerprint.
    fn transfer_record(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let r = self.pick_record(p, "Transfer which record", Some(false))?;
        let to = p.line("Hand it to (username): ")?;
        let Some(fp) = self.confirm_recipient(p, &to, false, &format!("Hand {} to", label(&r)))?
        else {
            return Err(Interrupt::Cancel);
        };
        let t = self.with_session(|s, v| v.data_transfer(s, &r.token, &to, Some(fp)))?;
        p.say(&crate::ui::views::transferred_text(&t));
        Ok(())
    }

    /// Shares a record after showing the recipient's fingerprint and its pin state.
    fn share_record(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let r = self.pick_record(p, "Share which record", Some(false))?;
        let with = p.line("Share with (username or @group): ")?;
        let Some(fp) =
            self.confirm_recipient(p, &with, true, &format!("Share {} with", label(&r)))?
        else {
            return Err(Interrupt::Cancel);
        };
        let write = p.confirm("Let them replace its value too (write)?")?;
        let (shared, me) = self.with_session(|s, v| {
            v.data_share(s, &r.token, &with, write, Some(fp))
                .map(|shared| (shared, s.username.clone()))
        })?;
        p.say(&crate::ui::views::shared_text(&shared, &me));
        Ok(())
    }

    /// Shows `with`'s fingerprint and pin state and asks `{asking} {with}?` ("Share prod/db
    /// with", say); returns the fingerprint confirmed, or `None` when declined. `@name` is
    /// a group only where one may be named (`groups`); elsewhere it is looked up as a user
    /// name, and core says there is none.
    pub(super) fn confirm_recipient(
        &mut self,
        p: &mut dyn Prompter,
        with: &str,
        groups: bool,
        asking: &str,
    ) -> Reply<Option<zencrypt_core::crypto::keypair::Fingerprint>> {
        if let Some(group) = with.strip_prefix('@').filter(|_| groups) {
            let g = self.with_session(|s, v| v.group_show(s, group))?;
            p.say(&format!(
                "@{}'s key: {} (managed by {}; members: {})",
                g.name,
                g.fingerprint,
                g.manager,
                g.members.join(", ")
            ));
            let fp = g.fingerprint;
            return Ok(p.confirm(&format!("{asking} @{}?", g.name))?.then_some(fp));
        }
        let card = self.with_session(|s, v| v.user_show(s, with))?;
        let Some(key) = &card.key else {
            return Err(Interrupt::Failed(Error::NotFound(format!(
                "'{}' has no public key yet: it is made at their next login",
                card.username
            ))));
        };
        let state = crate::ui::views::pin_words(card.pin);
        p.say(&format!(
            "{}'s key: {}\n({state})",
            card.username, key.fingerprint
        ));
        let fp = key.fingerprint;
        Ok(p.confirm(&format!("{asking} {}?", card.username))?
            .then_some(fp))
    }

    /// Ends one share of a record (the record is re-encrypted).
    fn unshare_record(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let shares = self.with_session(|s, v| v.shares_by_me(s))?;
        if shares.is_empty() {
            p.say("You share no records.");
            return Ok(());
        }
        let items: Vec<String> = shares
            .iter()
            .map(|s| format!("{} with {}", s.name.as_deref().unwrap_or(&s.token), s.with))
            .collect();
        let i = p.select("Stop which share", &items)?;
        let s = &shares[i];
        let u = self.with_session(|se, v| v.data_unshare(se, &s.token, &s.with))?;
        let shown = s.name.as_deref().unwrap_or(&s.token);
        p.say(&crate::ui::views::unshared_text(shown, &s.with, &u));
        Ok(())
    }

    /// Lists what others shared with the user and shows one of them.
    fn shared_with_me(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let shares = self.with_session(|s, v| v.shares_with_me(s))?;
        if shares.is_empty() {
            p.say("Nothing is shared with you.");
            return Ok(());
        }
        let refs: Vec<String> = shares
            .iter()
            .map(|s| format!("{}:{}", s.owner, s.name.as_deref().unwrap_or(&s.token)))
            .collect();
        let i = p.select("Read which (type to filter)", &refs)?;
        let got = self.with_session(|s, v| v.data_get(s, std::slice::from_ref(&refs[i]), None))?;
        let version = match got.records.into_iter().next() {
            Some((info, value)) => {
                match std::str::from_utf8(&value) {
                    Ok(text) => p.say(text),
                    Err(_) => p.say(&format!(
                        "({} bytes of binary data; use `zencrypt data get {} -o FILE`)",
                        value.len(),
                        refs[i]
                    )),
                }
                info.version
            }
            None => {
                p.say(&format!("'{}' is no longer shared with you.", refs[i]));
                return Ok(());
            }
        };
        if shares[i].write && p.confirm("You may write it: replace its value?")? {
            let value = p.secret("New value (hidden): ")?;
            // Only over the version shown: a write by someone else meanwhile is not lost.
            let info = self.with_session(|s, v| {
                v.data_update(
                    s,
                    &refs[i],
                    value.expose_secret().as_bytes(),
                    Some(version),
                    None,
                )
            })?;
            p.say(&crate::ui::views::updated_text(&info));
        }
        Ok(())
    }

    /// Lets the user pick a live record and reads it (asking for its record password if it
    /// has one), or `None` (said) when it expired meanwhile.
    fn read_picked(&mut self, p: &mut dyn Prompter, prompt: &str) -> Reply<Option<Picked>> {
        let r = self.pick_record(p, prompt, Some(false))?;
        let password = self.record_password_for(p, &r, false)?;
        let got = self.with_session(|s, v| {
            v.data_get(s, std::slice::from_ref(&r.token), password.as_ref())
        })?;
        match got.records.into_iter().next() {
            Some((info, value)) => Ok(Some(Picked {
                listed: r,
                info,
                value,
                password,
            })),
            None => {
                p.say(&format!("'{}' has expired.", label(&r)));
                Ok(None)
            }
        }
    }

    /// Shows one record's value (text) or its size (binary).
    fn retrieve_value(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let Some(Picked {
            listed: r, value, ..
        }) = self.read_picked(p, "Retrieve which record")?
        else {
            return Ok(());
        };
        match std::str::from_utf8(&value) {
            Ok(text) => p.say(text),
            Err(_) => p.say(&format!(
                "({} bytes of binary data; use `zencrypt data get {} -o FILE`)",
                value.len(),
                r.token
            )),
        }
        Ok(())
    }

    /// Shows a table of your records, live and deleted.
    fn list_records(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let rows = self.with_session(|s, v| v.data_list(s, &filter(None), None, None))?;
        if rows.is_empty() {
            p.say("No records yet.");
        } else {
            p.say(&records_table(&rows));
        }
        Ok(())
    }

    /// Replaces one record's value with a hidden input.
    fn update_value(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let r = self.pick_record(p, "Update which record", Some(false))?;
        let password = self.record_password_for(p, &r, false)?;
        let value = p.secret("New value (hidden): ")?;
        let row = self.with_session(|s, v| {
            v.data_update(
                s,
                &r.token,
                value.expose_secret().as_bytes(),
                None,
                password.as_ref(),
            )
        })?;
        p.say(&format!(
            "Updated {} to version {}.",
            label(&r),
            row.version
        ));
        Ok(())
    }

    /// Soft-deletes one record after confirmation.
    fn delete_record(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let r = self.pick_record(p, "Delete which record", Some(false))?;
        if !p.confirm(&format!("Delete {}? (it can be restored)", label(&r)))? {
            return Err(Interrupt::Cancel);
        }
        self.with_session(|s, v| v.data_rm(s, std::slice::from_ref(&r.token), false))?;
        p.say(&format!("Deleted {}.", label(&r)));
        Ok(())
    }

    /// Brings back one soft-deleted record.
    fn restore_record(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let r = self.pick_record(p, "Restore which record", Some(true))?;
        self.with_session(|s, v| v.data_restore(s, &r.token))?;
        p.say(&format!("Restored {}.", label(&r)));
        Ok(())
    }

    /// Purges expired and/or deleted records, asking what and how.
    fn purge_records(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let expired = p.confirm("Purge expired records?")?;
        let deleted = p.confirm("Purge deleted records (they cannot be restored afterwards)?")?;
        if !expired && !deleted {
            return Err(Interrupt::Cancel);
        }
        let hard =
            expired && p.confirm("Remove expired records for good (instead of deleting them)?")?;
        if (deleted || hard) && !p.confirm("Wipe them for good? This cannot be undone.")? {
            return Err(Interrupt::Cancel);
        }
        let opts = PurgeOptions {
            expired,
            deleted,
            hard,
            older_than: None,
        };
        let n = self.with_session(|s, v| v.data_purge(s, opts))?;
        p.say(&format!("Purged {n} record(s)."));
        Ok(())
    }

    /// Changes a record password for every record it protects.
    fn change_record_password(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let old = prompt_new_or_existing(p, "Current record password", false)?;
        let new = prompt_new_or_existing(p, "New record password", true)?;
        let n = self.with_session(|s, v| v.data_rekey(s, &old, &new))?;
        p.say(&format!("Changed the record password of {n} record(s)."));
        Ok(())
    }

    /// Imports records from a file of JSON lines.
    fn import_records(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let path = PathBuf::from(p.line("File of JSON lines: ")?);
        let items = read_import(Some(&path))?;
        let n = self.with_session(|s, v| v.data_import(s, &items, None, None))?;
        p.say(&format!("Imported {n} record(s)."));
        Ok(())
    }

    /// Writes every live record, decrypted, to a file of JSON lines.
    fn export_records(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let path = PathBuf::from(p.line("Write to file: ")?);
        if path.exists() && !p.confirm(&format!("{} exists. Replace it?", path.display()))? {
            return Err(Interrupt::Cancel);
        }
        if !p.confirm("The file will hold your values in plain text. Continue?")? {
            return Err(Interrupt::Cancel);
        }
        let password = if p.confirm("Include password-protected records?")? {
            Some(prompt_new_or_existing(p, "Record password", false)?)
        } else {
            None
        };
        let (rows, skipped) =
            self.with_session(|s, v| v.data_export(s, false, password.as_ref()))?;
        write_through(Some(&path), |w| write_export(w, &rows))?;
        p.say(&format!(
            "Exported {} record(s) to {} ({skipped} skipped).",
            rows.len(),
            path.display()
        ));
        Ok(())
    }

    /// Asks for an optional record name and refuses a bad or taken one at once, before
    /// the form's other questions.
    fn ask_new_name(&mut self, p: &mut dyn Prompter) -> Reply<String> {
        let name = p.line("Name (optional): ")?;
        if !name.is_empty() {
            zencrypt_core::records::validate_name(&name)?;
            if self.with_session(|s, v| v.record_name_taken(s, &name))? {
                return Err(Interrupt::Failed(Error::NameTaken(name)));
            }
        }
        Ok(name)
    }

    fn store_value(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let name = self.ask_new_name(p)?;
        let value = p.secret("Value (hidden): ")?;
        let expires = p.line("Expires in (e.g. 30d; empty for never): ")?;
        let expires_in = if expires.is_empty() {
            None
        } else {
            Some(duration::parse(&expires)?)
        };
        let password = if p.confirm("Protect it with a record password instead of a key?")? {
            Some(prompt_new_or_existing(p, "Record password", true)?)
        } else {
            None
        };
        let opts = PutOptions {
            name: (!name.is_empty()).then_some(name),
            expires_in,
            ..PutOptions::default()
        };
        let row = self.with_session(|s, v| {
            v.data_put(
                s,
                value.expose_secret().as_bytes(),
                &opts,
                password.as_ref(),
            )
        })?;
        p.say(&format!("Stored. Token: {}", row.token));
        Ok(())
    }

    /// Opens one record's value in the editor and saves it back as a new version if it
    /// changed (and the record did not change meanwhile).
    fn edit_value(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let Some(Picked {
            listed: r,
            info,
            value,
            password,
        }) = self.read_picked(p, "Edit which record")?
        else {
            return Ok(());
        };
        let editor = self.editor.clone();
        let Some(edited) = crate::ui::edit::edit_record(&editor, &info, &value)? else {
            p.say(&format!("No change: version {} kept.", info.version));
            return Ok(());
        };
        let mut ask = |question: &str| {
            p.confirm(question).map_err(|i| match i {
                Interrupt::Failed(e) => e,
                Interrupt::Cancel | Interrupt::Eof => Error::Cancelled,
            })
        };
        let row = self.with_session(|s, v| {
            crate::ui::edit::save_edit(v, s, &info, &edited, password.as_ref(), Some(&mut ask))
        })?;
        p.say(&format!("Saved {} as version {}.", label(&r), row.version));
        Ok(())
    }

    /// Shows a record's versions and offers to bring an earlier value back.
    fn record_history(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let r = self.pick_record(p, "History of which record", Some(false))?;
        let (info, versions) = self.with_session(|s, v| v.data_history(s, &r.token))?;
        p.say(&crate::ui::views::versions_table(&versions));
        if versions.len() < 2 {
            p.say("No earlier version is kept yet.");
            return Ok(());
        }
        let answer = p.line("Roll back to version (empty to leave it): ")?;
        if answer.is_empty() {
            return Ok(());
        }
        let to: i64 = answer.parse().map_err(|_| {
            Interrupt::Failed(Error::Usage(format!("'{answer}' is not a version number")))
        })?;
        let password = self.record_password_for(p, &r, false)?;
        let row =
            self.with_session(|s, v| v.data_rollback(s, &info.token, to, password.as_ref()))?;
        p.say(&format!(
            "Rolled {} back to the value of version {to}, stored as version {}.",
            label(&r),
            row.version
        ));
        Ok(())
    }

    /// Shows the current code of a stored TOTP secret.
    fn totp_code(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let Some(Picked {
            listed: r, value, ..
        }) = self.read_picked(p, "Code of which record")?
        else {
            return Ok(());
        };
        let shown = r.name.as_deref().unwrap_or(&r.token);
        let (code, left) = zencrypt_core::totp::Totp::from_record(&value, shown)?.code_now();
        p.say(&format!("{code}  (valid for {left} more second(s))"));
        Ok(())
    }

    /// Stores a generated password or passphrase; only its token is shown.
    fn store_generated(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let name = self.ask_new_name(p)?;
        let kinds = [
            "Password (24 characters, every class)".to_string(),
            "Password without symbols (24 letters and digits)".to_string(),
            "Passphrase (6 words)".to_string(),
        ];
        let spec = match p.select("Generate", &kinds)? {
            0 => generate::Spec::default(),
            1 => generate::Spec::Password {
                length: generate::DEFAULT_LENGTH,
                charset: generate::Charset::Alnum,
            },
            _ => generate::Spec::Passphrase {
                words: generate::DEFAULT_WORDS,
                separator: "-".into(),
            },
        };
        let value = spec.generate();
        let opts = PutOptions {
            name: (!name.is_empty()).then_some(name),
            ..PutOptions::default()
        };
        let row = self.with_session(|s, v| v.data_put(s, value.as_bytes(), &opts, None))?;
        p.say(&format!(
            "Stored a generated {} ({} bits). Token: {}",
            spec.describe(),
            spec.entropy_bits().floor(),
            row.token
        ));
        Ok(())
    }

    fn record_password_for(
        &mut self,
        p: &mut dyn Prompter,
        r: &RecordInfo,
        confirm: bool,
    ) -> Reply<Option<SecretString>> {
        if r.protected {
            Ok(Some(prompt_new_or_existing(p, "Record password", confirm)?))
        } else {
            Ok(None)
        }
    }

    /// Lets the user pick one of their records (live, deleted or both).
    fn pick_record(
        &mut self,
        p: &mut dyn Prompter,
        prompt: &str,
        deleted: Option<bool>,
    ) -> Reply<RecordInfo> {
        let rows = self.with_session(|s, v| v.data_list(s, &filter(deleted), None, None))?;
        if rows.is_empty() {
            return Err(Interrupt::Failed(Error::NotFound(
                "no record to choose from".into(),
            )));
        }
        let items: Vec<String> = rows.iter().map(label).collect();
        let i = p.select(prompt, &items)?;
        Ok(rows[i].clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: Option<&str>) -> RecordInfo {
        RecordInfo {
            token: "zt_abcdefghijklmnopqrstuvwxyz0123456".into(),
            name: name.map(str::to_string),
            version: 1,
            created_at: 0,
            updated_at: 0,
            expires_at: None,
            deleted_at: None,
            protected: false,
            key: None,
            owner: None,
        }
    }

    #[test]
    fn labels_fit_one_line_and_keep_the_end_of_a_long_name() {
        assert_eq!(label(&info(Some("wifi"))), "wifi (zt_abcdefg…)");
        assert_eq!(label(&info(None)), "zt_abcdefghijklmnopqrstuvwxyz0123456");
        let long = format!("prod/{}/password", "x".repeat(120));
        let l = label(&info(Some(&long)));
        assert_eq!(l.chars().count(), LABEL_WIDTH);
        assert!(
            l.starts_with('…') && l.ends_with("x/password (zt_abcdefg…)"),
            "{l}"
        );
    }
}
