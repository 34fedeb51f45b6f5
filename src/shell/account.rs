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
            entry(6, "Service accounts", "grants and tokens of yours"),
            entry(7, "Groups", "share with @group; members you manage"),
        ];
        // After "Log out" there is no session and the submenu closes by itself.
        self.submenu(p, "Account", &entries, |shell, p, n| match n {
            1 => shell.show_whoami(p),
            2 => shell.change_password(p),
            3 => shell.logout(p, false),
            4 => shell.logout(p, true),
            5 => shell.rotate_recovery_key(p),
            6 => {
                shell.services_menu(p);
                Ok(())
            }
            _ => {
                shell.groups_menu(p);
                Ok(())
            }
        })
    }

    /// Account, 7: groups (list, show, create; add and remove members of yours; hand one
    /// over, take over one offered).
    fn groups_menu(&mut self, p: &mut dyn Prompter) {
        let entries = [
            entry(1, "List", "every group, its manager and size"),
            entry(2, "Show a group", "members and key fingerprint"),
            entry(3, "Create a group", "you manage it"),
            entry(4, "Add a member", "to a group you manage"),
            entry(5, "Remove a member", "the group gets a new key"),
            entry(6, "Hand a group over", "to a member, who takes it over"),
            entry(7, "Take over offered groups", "you manage them from now on"),
        ];
        self.submenu(p, "Groups", &entries, |shell, p, n| match n {
            1 => {
                let list = shell.with_session(|s, v| v.group_list(s))?;
                if list.is_empty() {
                    p.say("No groups yet (3 makes one).");
                } else {
                    p.say(&crate::ui::views::groups_table(&list));
                }
                Ok(())
            }
            2 => {
                let name = shell.pick_group(p, false)?;
                let g = shell.with_session(|s, v| v.group_show(s, &name))?;
                p.say(&crate::ui::views::group_text(&g));
                Ok(())
            }
            3 => {
                let name = p.line("New group's name: ")?;
                let g = shell.with_session(|s, v| v.group_create(s, &name))?;
                p.say(&crate::ui::views::group_created_text(&g));
                Ok(())
            }
            4 => {
                let name = shell.pick_group(p, true)?;
                let user = p.line("Add which user: ")?;
                let Some(fp) = shell.confirm_recipient(p, &user, false, &format!("Share @{name}'s key with"))?
                else {
                    p.say("Nobody was added.");
                    return Ok(());
                };
                let a = shell.with_session(|s, v| v.group_add(s, &name, &user, Some(fp)))?;
                p.say(&crate::ui::views::member_added_text(&a));
                Ok(())
            }
            5 => {
                let name = shell.pick_group(p, true)?;
                let user = p.line("Remove which member: ")?;
                if !p.confirm(&format!(
                    "Remove {user} from @{name}? The group gets a new key and what was shared with it is re-encrypted."
                ))? {
                    p.say("Nothing was changed.");
                    return Ok(());
                }
                let r = shell.with_session(|s, v| v.group_remove(s, &name, &user))?;
                p.say(&crate::ui::views::member_removed_text(&r));
                Ok(())
            }
            6 => {
                let name = shell.pick_group(p, true)?;
                let user = p.line("Hand it to which member: ")?;
                let Some(fp) = shell.confirm_recipient(p, &user, false, &format!("Hand @{name} to"))?
                else {
                    p.say("The group was not offered.");
                    return Ok(());
                };
                let o =
                    shell.with_session(|s, v| v.group_transfer(s, &name, Some(&user), Some(fp)))?;
                p.say(&crate::ui::views::group_offer_text(&o));
                Ok(())
            }
            _ => {
                let received = shell.with_session(|s, v| v.group_receive(s))?;
                p.say(&crate::ui::views::groups_received_text(&received));
                Ok(())
            }
        });
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

impl Shell {
    /// Account, 6: the service accounts the user owns.
    fn services_menu(&mut self, p: &mut dyn Prompter) {
        let entries = [
            entry(1, "List", "grants, readable records, live tokens"),
            entry(2, "Grant records", "a name or a glob such as prod/*"),
            entry(3, "Take a grant back", ""),
            entry(4, "New token", "read-only, shown once"),
            entry(5, "Revoke tokens", "all of one service"),
        ];
        self.submenu(p, "Service accounts", &entries, |shell, p, n| match n {
            1 => {
                let list = shell.with_session(|s, v| v.list_services(s))?;
                if list.is_empty() {
                    p.say("No service accounts (an admin adds one in Administration).");
                } else {
                    p.say(&crate::ui::views::services_table(&list));
                }
                Ok(())
            }
            2 => {
                let service = shell.pick_service(p)?;
                let glob = p.line("Record name or glob: ")?;
                let password = prompt_new_or_existing(p, "Your password", false)?;
                let n =
                    shell.with_session(|s, v| v.service_grant(s, &service, &glob, &password))?;
                p.say(&format!(
                    "Granted '{glob}' to {service}: {n} record(s) readable through it now."
                ));
                Ok(())
            }
            3 => {
                let service = shell.pick_service(p)?;
                let grants = shell
                    .with_session(|s, v| v.list_services(s))?
                    .into_iter()
                    .find(|s| s.name == service)
                    .and_then(|s| s.grants)
                    .unwrap_or_default();
                if grants.is_empty() {
                    p.say(&format!("{service} holds no grants."));
                    return Ok(());
                }
                let glob = grants[p.select("Grant to take back", &grants)?].clone();
                let n = shell.with_session(|s, v| v.service_ungrant(s, &service, &glob))?;
                p.say(&format!(
                    "Took '{glob}' back from {service}: {n} record(s) no longer readable to it."
                ));
                Ok(())
            }
            4 => {
                let service = shell.pick_service(p)?;
                let password = prompt_new_or_existing(p, "Your password", false)?;
                let issued =
                    shell.with_session(|s, v| v.service_token(s, &service, None, &password))?;
                use secrecy::ExposeSecret;
                p.say(&format!(
                    "Token {} of {service}, read-only, expires {}:",
                    issued.id,
                    duration::rfc3339(issued.expires_at)
                ));
                p.say("");
                // 80 characters: unindented, so it fits a line of an 80-column terminal.
                p.say(issued.token.expose_secret());
                p.say("");
                p.say(
                    "It is shown only once: keep it in your CI's secret store as ZENCRYPT_TOKEN.",
                );
                p.line("Press Enter once it is stored: ")?;
                Ok(())
            }
            _ => {
                let service = shell.pick_service(p)?;
                if !p.confirm(&format!("Revoke every token of {service}?"))? {
                    return Err(crate::ui::prompt::Interrupt::Cancel);
                }
                let n = shell.with_session(|s, v| v.service_revoke(s, &service, None))?;
                p.say(&format!("Revoked {n} token(s) of {service}."));
                Ok(())
            }
        });
    }

    /// Picks a group: any, or (`managed`) one the session user manages.
    fn pick_group(&mut self, p: &mut dyn Prompter, managed: bool) -> Reply<String> {
        let names: Vec<String> = self
            .with_session(|s, v| v.group_list(s))?
            .into_iter()
            .filter(|g| !managed || g.managed)
            .map(|g| g.name)
            .collect();
        if names.is_empty() {
            let none = if managed {
                "you manage no group (3 makes one)"
            } else {
                "there are no groups yet (3 makes one)"
            };
            return Err(zencrypt_core::Error::NotFound(none.into()).into());
        }
        let shown: Vec<String> = names.iter().map(|n| format!("@{n}")).collect();
        Ok(names[p.select("Group", &shown)?].clone())
    }

    /// Lets the user pick one of the service accounts they own.
    fn pick_service(&mut self, p: &mut dyn Prompter) -> Reply<String> {
        let me = self.session.as_ref().map(|s| s.username.clone());
        let names: Vec<String> = self
            .with_session(|s, v| v.list_services(s))?
            .into_iter()
            .filter(|s| Some(&s.owner) == me.as_ref())
            .map(|s| s.name)
            .collect();
        if names.is_empty() {
            return Err(zencrypt_core::Error::NotFound(
                "you own no service account (an admin adds one in Administration)".into(),
            )
            .into());
        }
        Ok(names[p.select("Service account", &names)?].clone())
    }
}
