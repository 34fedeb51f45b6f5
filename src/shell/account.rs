//! Main-menu entry 7, Account: who am I, change password, recovery key, log out; and the
//! start menu's account recovery.

use super::{Shell, Step, entry};
use crate::ui::input::prompt_new_or_existing;
use crate::ui::prompt::{Prompter, Reply};
use crate::ui::session_file;
use zencrypt_core::duration;
use zencrypt_core::recovery::ADVICE as RECOVERY_KEY_ADVICE;

impl Shell {
    pub(super) fn account_menu(&mut self, p: &mut dyn Prompter) -> Step {
        let entries = [
            entry(1, "Who am I", "user, role and session"),
            entry(2, "Change password", "your data is not re-encrypted"),
            entry(3, "Log out", "end this session"),
            entry(4, "Log out everywhere", "end all your sessions"),
            entry(5, "New recovery key", "the old one stops working"),
        ];
        // After "Log out" there is no session and the submenu closes by itself.
        self.submenu(p, "Account", &entries, |shell, p, n| match n {
            1 => shell.show_whoami(p),
            2 => shell.change_password(p),
            3 => shell.logout(p, false),
            4 => shell.logout(p, true),
            _ => shell.rotate_recovery_key(p),
        })
    }

    fn show_whoami(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let session = self
            .session
            .take()
            .ok_or(zencrypt_core::Error::NotLoggedIn)?;
        let info = self.vault.whoami(&session);
        self.session = Some(session);
        let info = info?;
        p.say(&format!("username: {}", info.username));
        p.say(&format!("role: {}", info.role));
        p.say(&format!("user id: {}", info.user_id));
        p.say(&format!(
            "session expires: {}",
            duration::rfc3339(info.session_expires_at)
        ));
        p.say(&match info.recovery_key_created_at {
            Some(at) => format!("recovery key: made {}", duration::rfc3339(at)),
            None => "recovery key: none (Account, 5 makes one)".to_string(),
        });
        Ok(())
    }

    fn rotate_recovery_key(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let password = prompt_new_or_existing(p, "Password", false)?;
        let session = self
            .session
            .take()
            .ok_or(zencrypt_core::Error::NotLoggedIn)?;
        let r = self.vault.rotate_recovery_key(&session, &password);
        self.session = Some(session);
        show_recovery_key(
            p,
            &r?,
            "Your new recovery key (the old one no longer works):",
        )
    }

    pub(super) fn change_password(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let current = prompt_new_or_existing(p, "Current password", false)?;
        let new = prompt_new_or_existing(p, "New password", true)?;
        let mut session = self
            .session
            .take()
            .ok_or(zencrypt_core::Error::NotLoggedIn)?;
        let r = self.vault.change_password(&mut session, &current, &new);
        self.session = Some(session);
        let change = r?;
        p.say(&format!(
            "Password changed; {} other session(s) were logged out.",
            change.revoked_sessions
        ));
        match &change.recovery_key {
            Some(key) => show_recovery_key(p, key, "Your recovery key:"),
            None => Ok(()),
        }
    }

    /// Start menu, 3: a new password with the recovery key.
    pub(super) fn recover(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let username = p.line("Username: ")?;
        let code = p.secret("Recovery key: ")?;
        let new = prompt_new_or_existing(p, "New password", true)?;
        let change = self.vault.recover(&username, &code, &new)?;
        p.say(&format!(
            "Password reset; {} session(s) were logged out. Log in with the new password (1).",
            change.revoked_sessions
        ));
        match &change.recovery_key {
            Some(key) => show_recovery_key(
                p,
                key,
                "The recovery key you used no longer works; here is its replacement:",
            ),
            None => Ok(()),
        }
    }

    fn logout(&mut self, p: &mut dyn Prompter, all: bool) -> Reply<()> {
        let session = self
            .session
            .take()
            .ok_or(zencrypt_core::Error::NotLoggedIn)?;
        self.vault.logout(&session, all)?;
        if self.env_token.is_none() {
            session_file::remove(&self.session_file)?;
        }
        self.token = None;
        p.say(&format!("Logged out {}.", session.username));
        Ok(())
    }
}

/// Shows a recovery key once and waits until the user has stored it.
pub(super) fn show_recovery_key(
    p: &mut dyn Prompter,
    key: &secrecy::SecretString,
    lead: &str,
) -> Reply<()> {
    use secrecy::ExposeSecret;
    p.say(lead);
    p.say("");
    p.say(&format!("    {}", key.expose_secret()));
    p.say("");
    p.say(RECOVERY_KEY_ADVICE);
    p.line("Press Enter once it is stored: ")?;
    Ok(())
}
