//! Main-menu entry 7, Account: who am I, change password, log out.

use super::{Shell, Step, entry};
use crate::ui::input::prompt_new_or_existing;
use crate::ui::prompt::{Prompter, Reply};
use crate::ui::session_file;
use zencrypt_core::duration;

impl Shell {
    pub(super) fn account_menu(&mut self, p: &mut dyn Prompter) -> Step {
        let entries = [
            entry(1, "Who am I", "user, role and session"),
            entry(2, "Change password", "your data is not re-encrypted"),
            entry(3, "Log out", "end this session"),
            entry(4, "Log out everywhere", "end all your sessions"),
        ];
        // After "Log out" there is no session and the submenu closes by itself.
        self.submenu(p, "Account", &entries, |shell, p, n| match n {
            1 => shell.show_whoami(p),
            2 => shell.change_password(p),
            3 => shell.logout(p, false),
            _ => shell.logout(p, true),
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
        Ok(())
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
        let n = r?;
        p.say(&format!(
            "Password changed; {n} other session(s) were logged out."
        ));
        Ok(())
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
