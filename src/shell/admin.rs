//! Main-menu entry 8, Administration (admins only): users and roles.

use super::{Shell, Step, entry};
use crate::ui::input::prompt_new_or_existing;
use crate::ui::prompt::{Interrupt, Prompter, Reply};
use crate::ui::views::users_table;
use zencrypt_core::accounts::UserSummary;
use zencrypt_core::error::Error;
use zencrypt_core::model::{Role, UserStatus};

impl Shell {
    pub(super) fn admin_menu(&mut self, p: &mut dyn Prompter) -> Step {
        let entries = [
            entry(1, "List users", "role, status, last login"),
            entry(2, "Add a user", ""),
            entry(3, "Change a role", "user, auditor, admin"),
            entry(4, "Disable a user", "and end their sessions"),
            entry(5, "Enable a user", ""),
            entry(6, "End sessions", "of one user"),
            entry(7, "Add a service account", "for automation; no login"),
            entry(
                8,
                "Remove a user",
                "for good: their data is crypto-shredded",
            ),
        ];
        self.submenu(p, "Administration", &entries, |shell, p, n| match n {
            1 => {
                let users = shell.with_session(|s, v| v.list_users(s))?;
                p.say(&users_table(&users));
                Ok(())
            }
            2 => shell.add_user(p),
            3 => shell.change_role(p),
            4 => shell.set_status(p, UserStatus::Disabled),
            5 => shell.set_status(p, UserStatus::Active),
            6 => shell.end_sessions(p),
            7 => shell.add_service(p),
            _ => shell.remove_user(p),
        })
    }

    /// Removes a user for good, after confirmation (see `user remove`).
    fn remove_user(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let user = self.pick_user(p, "Remove which user", None)?;
        if !p.confirm(&format!(
            "Remove {} for good? Nothing of theirs can be read again.",
            user.username
        ))? {
            return Err(Interrupt::Cancel);
        }
        let r = self.with_session(|s, v| v.user_remove(s, &user.username))?;
        p.say(&crate::ui::views::removed_text(&r));
        Ok(())
    }

    /// Lets the admin pick a user from the list, optionally only those with `status`.
    fn pick_user(
        &mut self,
        p: &mut dyn Prompter,
        prompt: &str,
        status: Option<UserStatus>,
    ) -> Reply<UserSummary> {
        let users: Vec<UserSummary> = self
            .with_session(|s, v| v.list_users(s))?
            .into_iter()
            .filter(|u| status.is_none_or(|st| u.status == st))
            .collect();
        if users.is_empty() {
            return Err(Interrupt::Failed(Error::NotFound(
                "no user to choose from".into(),
            )));
        }
        let items: Vec<String> = users
            .iter()
            .map(|u| format!("{} ({}, {})", u.username, u.role, u.state()))
            .collect();
        let i = p.select(prompt, &items)?;
        Ok(users[i].clone())
    }

    fn pick_role(p: &mut dyn Prompter, prompt: &str) -> Reply<Role> {
        let items: Vec<String> = Role::ALL.iter().map(|r| r.to_string()).collect();
        Ok(Role::ALL[p.select(prompt, &items)?])
    }

    fn add_user(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let username = p.line("Username: ")?;
        zencrypt_core::accounts::validate_username(&username)?;
        let role = Self::pick_role(p, "Role")?;
        let password = prompt_new_or_existing(p, &format!("Password for {username}"), true)?;
        self.with_session(|s, v| v.add_user(s, &username, role, &password))?;
        p.say(&format!("Added {username} ({role})."));
        Ok(())
    }

    fn add_service(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let name = p.line("Service account name: ")?;
        zencrypt_core::accounts::validate_username(&name)?;
        let people: Vec<UserSummary> = self
            .with_session(|s, v| v.list_users(s))?
            .into_iter()
            .filter(|u| u.role != Role::Service && u.status == UserStatus::Active)
            .collect();
        let items: Vec<String> = people.iter().map(|u| u.username.clone()).collect();
        let owner =
            &people[p.select("Its owner (grants it records, issues its tokens)", &items)?];
        let owner = self.with_session(|s, v| v.add_service(s, &name, Some(&owner.username)))?;
        p.say(&format!(
            "Added service account {name}, owned by {owner}; it cannot log in."
        ));
        p.say(&format!(
            "{owner} grants it records and issues its tokens (Account, Service accounts)."
        ));
        Ok(())
    }

    fn change_role(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let user = self.pick_user(p, "User", None)?;
        let role = Self::pick_role(p, &format!("New role for {}", user.username))?;
        let before = self.with_session(|s, v| v.set_role(s, &user.username, role))?;
        p.say(&format!("{} is now {role} (was {before}).", user.username));
        Ok(())
    }

    fn set_status(&mut self, p: &mut dyn Prompter, status: UserStatus) -> Reply<()> {
        let (want, verb) = match status {
            UserStatus::Disabled => (UserStatus::Active, "Disable"),
            UserStatus::Active => (UserStatus::Disabled, "Enable"),
        };
        let user = self.pick_user(p, &format!("{verb} which user"), Some(want))?;
        if status == UserStatus::Disabled
            && !p.confirm(&format!(
                "Disable {} and end all their sessions?",
                user.username
            ))?
        {
            return Err(Interrupt::Cancel);
        }
        let n = self.with_session(|s, v| v.set_status(s, &user.username, status))?;
        match status {
            UserStatus::Disabled => p.say(&format!(
                "Disabled {}; {n} session(s) ended.",
                user.username
            )),
            UserStatus::Active => p.say(&format!("Enabled {}.", user.username)),
        }
        Ok(())
    }

    fn end_sessions(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let user = self.pick_user(p, "End the sessions of", None)?;
        if !p.confirm(&format!("End every session of {}?", user.username))? {
            return Err(Interrupt::Cancel);
        }
        let n = self.with_session(|s, v| v.revoke_sessions(s, &user.username))?;
        p.say(&format!("Ended {n} session(s) of {}.", user.username));
        Ok(())
    }
}
