//! The interactive shell: a start menu (log in, sign up), then the main menu of database
//! actions, looping until the user chooses 0 or presses Ctrl-D. Ctrl-C at a prompt
//! cancels the current action and returns to the menu.
//!
//! Menu logic talks to a [`Prompter`], so tests drive it with a script; the real shell
//! uses the terminal.

mod account;
mod admin;
mod crypt;
mod data;
mod keys;

mod reports;

use std::path::PathBuf;

use secrecy::SecretString;

use crate::ui::input::is_interactive;
use crate::ui::prompt::{Interrupt, Prompter, Reply, TermPrompter};
use crate::ui::session_file;
use zencrypt_core::config::Config;
use zencrypt_core::error::{Error, Result};
use zencrypt_core::model::Role;
use zencrypt_core::vault::{Session, Vault};

/// Starts the shell on the terminal. Without a terminal: exit 2, nothing opened.
pub fn run(cfg: &Config) -> Result<()> {
    if !is_interactive(cfg) {
        return Err(Error::NoTerminal);
    }
    // Prompts read keys in raw mode and turn Ctrl-C into "cancel"; a Ctrl-C that arrives
    // while an action runs must not kill the process halfway either. SIGTERM and SIGHUP
    // still stop it, after removing any half-written file.
    zencrypt_core::interrupt::install_for_shell();
    let mut p = TermPrompter::new();
    // Only signing up creates a database: until then the start menu runs without one.
    let (store, missing) = match crate::backend::open(cfg, false) {
        Ok(store) => (Some(store), false),
        Err(Error::NoDatabase { .. }) => (None, true),
        Err(e) => return Err(e),
    };
    if missing && !start_without_database(&mut p, cfg) {
        p.say("Bye.");
        return Ok(());
    }
    let store = match store {
        Some(store) => store,
        None => crate::backend::open(cfg, true)?,
    };
    let vault = Vault::open(store, cfg)?;
    let session_file = session_file::session_file(&cfg.state_dir, vault.database_id());
    let mut shell = Shell::new(vault, session_file, cfg.token.clone())
        .with_editor(crate::ui::edit::Editor::from_config(cfg));
    if missing {
        let r = shell.signup(&mut p);
        if shell.settle(&mut p, r) == Step::Exit {
            p.say("Bye.");
            return Ok(());
        }
    }
    shell.run(&mut p)
}

/// The start menu while there is no database: logging in explains that there is none,
/// and the answer is whether the user chose to sign up (false: exit).
fn start_without_database(p: &mut dyn Prompter, cfg: &Config) -> bool {
    let entries = [entry(1, "Log in", ""), entry(2, "Sign up", "")];
    loop {
        match choose(p, "zencrypt", &entries, "Exit") {
            Ok(0) | Err(Interrupt::Eof) => return false,
            Ok(1) => {
                p.say(&format!("error: no database at {}", cfg.db.display()));
                p.say("hint: choose 2 to sign up and create it, or start zencrypt with --db pointing at an existing vault");
            }
            Ok(_) => return true,
            Err(_) => {}
        }
    }
}

/// What a menu step asks the loop to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Stay,
    Exit,
}

/// The shell's state: the vault and, once logged in, the session.
pub struct Shell {
    vault: Vault,
    session_file: PathBuf,
    env_token: Option<SecretString>,
    token: Option<SecretString>,
    session: Option<Session>,
    editor: crate::ui::edit::Editor,
}

/// One numbered menu entry.
struct Entry {
    number: u32,
    label: &'static str,
    about: &'static str,
}

const fn entry(number: u32, label: &'static str, about: &'static str) -> Entry {
    Entry {
        number,
        label,
        about,
    }
}

/// Shows a numbered menu and reads a choice (a number and Enter). Returns the number;
/// 0 is the menu's exit/back entry.
fn choose(p: &mut dyn Prompter, title: &str, entries: &[Entry], zero: &str) -> Reply<u32> {
    loop {
        p.say("");
        p.say(title);
        // Numbers right-aligned and labels padded to the longest, so that the columns line
        // up whatever the number of entries.
        let number_width = entries
            .iter()
            .map(|e| e.number.to_string().len())
            .max()
            .unwrap_or(1);
        let label_width = entries.iter().map(|e| e.label.len()).max().unwrap_or(0);
        for e in entries {
            p.say(
                format!(
                    "{:>number_width$}) {:<label_width$}  {}",
                    e.number, e.label, e.about
                )
                .trim_end(),
            );
        }
        p.say(&format!("{:>number_width$}) {zero}", 0));
        let answer = p.line("Choose: ")?;
        match answer.parse::<u32>() {
            Ok(0) => return Ok(0),
            Ok(n) if entries.iter().any(|e| e.number == n) => return Ok(n),
            _ => {
                let numbers: Vec<String> = entries
                    .iter()
                    .map(|e| e.number.to_string())
                    .chain(["0".to_string()])
                    .collect();
                p.say(&format!("Please type one of {}.", numbers.join(", ")));
            }
        }
    }
}

impl Shell {
    /// A shell over an open vault; `session_file` is where logins are saved.
    pub fn new(vault: Vault, session_file: PathBuf, env_token: Option<SecretString>) -> Self {
        Shell {
            vault,
            session_file,
            env_token,
            token: None,
            session: None,
            editor: crate::ui::edit::Editor::default(),
        }
    }

    /// The editor that "Edit in your editor" runs.
    pub fn with_editor(mut self, editor: crate::ui::edit::Editor) -> Self {
        self.editor = editor;
        self
    }

    /// Runs menus until the user exits.
    pub fn run(&mut self, p: &mut dyn Prompter) -> Result<()> {
        self.resume();
        loop {
            let step = if self.session.is_some() {
                self.main_menu(p)
            } else {
                self.start_menu(p)
            };
            if step == Step::Exit {
                p.say("Bye.");
                return Ok(());
            }
        }
    }

    /// Picks up a saved (or `ZENCRYPT_TOKEN`) session that is still valid.
    fn resume(&mut self) {
        self.token = match &self.env_token {
            Some(t) => Some(t.clone()),
            None => session_file::load(&self.session_file).ok().flatten(),
        };
        self.session = self
            .token
            .clone()
            .and_then(|t| self.vault.authenticate(&t).ok());
    }

    /// Shows an error; an error that means the session is over ends it.
    fn report(&mut self, p: &mut dyn Prompter, e: &Error) {
        p.say(&format!("error: {e}"));
        let session_over = matches!(
            e,
            Error::NotLoggedIn
                | Error::InvalidToken
                | Error::SessionExpired
                | Error::SessionRevoked
        );
        if session_over {
            // The one-shot hint names `zencrypt login`; here the start menu logs in.
            p.say("hint: choose 1) Log in on the start menu to go on");
        } else if let Some(h) = e.hint() {
            p.say(&format!("hint: {h}"));
        }
        // The session itself is gone: back to the start menu. (A wrong password typed at
        // a prompt is an authentication error too, but the session is still fine.)
        if matches!(
            e,
            Error::NotLoggedIn
                | Error::InvalidToken
                | Error::SessionExpired
                | Error::SessionRevoked
                | Error::AccountDisabled
        ) {
            self.session = None;
        }
    }

    /// Turns an action's outcome into the next step: errors are shown, Ctrl-C cancels
    /// back to the menu, end of input leaves.
    fn settle(&mut self, p: &mut dyn Prompter, r: Reply<()>) -> Step {
        match r {
            Ok(()) => Step::Stay,
            Err(Interrupt::Cancel) => {
                p.say("Cancelled.");
                Step::Stay
            }
            Err(Interrupt::Eof) => Step::Exit,
            Err(Interrupt::Failed(e)) => {
                self.report(p, &e);
                Step::Stay
            }
        }
    }

    fn start_menu(&mut self, p: &mut dyn Prompter) -> Step {
        let entries = [
            entry(1, "Log in", ""),
            entry(2, "Sign up", ""),
            entry(
                3,
                "Recover account",
                "forgot the password: use the recovery key",
            ),
        ];
        let r = match choose(p, "zencrypt", &entries, "Exit") {
            Ok(0) | Err(Interrupt::Eof) => return Step::Exit,
            Err(Interrupt::Cancel) => return Step::Stay,
            Err(Interrupt::Failed(e)) => Err(Interrupt::Failed(e)),
            Ok(1) => self.login(p),
            Ok(2) => self.signup(p),
            Ok(_) => self.recover(p),
        };
        self.settle(p, r)
    }

    /// Logs in; a wrong password is asked again (the username is kept), three tries in
    /// all.
    fn login(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        const TRIES: u32 = 3;
        let username = p.line("Username: ")?;
        for attempt in 1..=TRIES {
            let password = p.secret("Password: ")?;
            match self.vault.login(&username, &password, None) {
                Ok(outcome) => return self.start_session(p, &outcome.token),
                Err(Error::InvalidCredentials) if attempt < TRIES => {
                    p.say(&format!(
                        "error: {}; try again ({} left), or Ctrl-C to go back",
                        Error::InvalidCredentials,
                        TRIES - attempt
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Interrupt::Failed(Error::InvalidCredentials))
    }

    fn signup(&mut self, p: &mut dyn Prompter) -> Reply<()> {
        let username = p.line("Username: ")?;
        self.vault.check_new_username(&username)?;
        let password = crate::ui::input::prompt_new_or_existing(p, "Choose a password", true)?;
        let outcome = self.vault.signup(&username, &password, None)?;
        p.say(&format!(
            "Welcome, {}. Your account has the {} role.",
            outcome.info.username, outcome.info.role
        ));
        // The session first: the account exists now, whatever happens at the prompt.
        self.start_session(p, &outcome.token)?;
        match &outcome.recovery_key {
            Some(key) => account::show_recovery_key(p, key, "Your recovery key:"),
            None => Ok(()),
        }
    }

    fn start_session(&mut self, p: &mut dyn Prompter, token: &SecretString) -> Reply<()> {
        if let Ok(Some(old)) = session_file::load_for_replacement(&self.session_file) {
            self.vault.end_replaced_session(&old);
        }
        self.token = Some(token.clone());
        if let Err(e) = session_file::save(&self.session_file, token) {
            p.say(&format!("warning: the session could not be saved: {e}"));
        }
        self.session = Some(self.vault.authenticate(token)?);
        Ok(())
    }

    /// Re-checks the session (it may have been revoked or the role changed meanwhile).
    fn refresh(&mut self, p: &mut dyn Prompter) -> bool {
        let Some(sid) = self.session.as_ref().map(|s| s.sid.clone()) else {
            return false;
        };
        let fresh = self.token.clone().map(|t| self.vault.authenticate(&t));
        match fresh {
            Some(Ok(s)) if s.sid == sid => {
                self.session = Some(s);
                true
            }
            Some(Err(e)) => {
                self.report(p, &e);
                self.session = None;
                false
            }
            _ => {
                p.say("error: the session has ended");
                self.session = None;
                false
            }
        }
    }

    /// Runs a domain call with the current session.
    pub(crate) fn with_session<T>(
        &mut self,
        f: impl FnOnce(&Session, &mut zencrypt_core::vault::Vault) -> zencrypt_core::Result<T>,
    ) -> Reply<T> {
        let session = self.session.take().ok_or(Error::NotLoggedIn)?;
        let r = f(&session, &mut self.vault);
        self.session = Some(session);
        Ok(r?)
    }

    /// Runs a numbered submenu until Back (0); `act` performs entry `n`. Errors are shown
    /// and the submenu is offered again.
    fn submenu(
        &mut self,
        p: &mut dyn Prompter,
        title: &str,
        entries: &[Entry],
        mut act: impl FnMut(&mut Shell, &mut dyn Prompter, u32) -> Reply<()>,
    ) -> Step {
        loop {
            if self.session.is_none() {
                return Step::Stay;
            }
            let r = match choose(p, title, entries, "Back") {
                Ok(0) => return Step::Stay,
                // The session and role are read again before every action, as at the main
                // menu: a revocation or a change of role takes effect at once.
                Ok(_) if !self.refresh(p) => return Step::Stay,
                Ok(n) => act(self, p, n),
                Err(e) => Err(e),
            };
            if self.settle(p, r) == Step::Exit {
                return Step::Exit;
            }
        }
    }

    fn main_menu(&mut self, p: &mut dyn Prompter) -> Step {
        if !self.refresh(p) {
            return Step::Stay;
        }
        // An account an administrator made: its own password comes before anything else.
        if self
            .session
            .as_ref()
            .is_some_and(|s| s.must_change_password)
        {
            p.say("An administrator chose this account's password; choose your own now.");
            let r = self.change_password(p);
            return self.settle(p, r);
        }
        let (title, is_admin) = match &self.session {
            Some(s) => (
                format!("zencrypt: {} ({})", s.username, s.role),
                s.role == Role::Admin,
            ),
            None => return Step::Stay,
        };
        let title = match self.with_session(|s, v| v.key_warnings(s)) {
            Ok(r) if !r.is_clear() => {
                let mut parts = Vec::new();
                if !r.due.is_empty() {
                    parts.push(format!("rotation due: {}", r.due.join(", ")));
                }
                if !r.expired.is_empty() {
                    parts.push(format!("expired: {}", r.expired.join(", ")));
                }
                if !r.near_limit.is_empty() {
                    parts.push(format!(
                        "near the encryption limit: {}",
                        r.near_limit.join(", ")
                    ));
                }
                format!("{title}\nwarning: {} (see 6)", parts.join("; "))
            }
            _ => title,
        };
        let mut entries = vec![
            entry(1, "Keys", "create, list, rotate, import, export, destroy"),
            entry(
                2,
                "Encrypted data",
                "store, get, edit, history, generate, TOTP",
            ),
            entry(
                3,
                "Encrypt / decrypt",
                "text or files with one of your keys; hash",
            ),
            entry(4, "Usage log", "encryption events and totals"),
            entry(5, "Audit records", "list, verify"),
            entry(6, "Expiry & rotation", "check keys, rotate what is due"),
            entry(7, "Account", "who am I, change password, log out"),
        ];
        if is_admin {
            entries.push(entry(8, "Administration", "users and roles"));
        }
        match choose(p, &title, &entries, "Exit") {
            Ok(0) | Err(Interrupt::Eof) => Step::Exit,
            Err(Interrupt::Cancel) => Step::Stay,
            Err(Interrupt::Failed(e)) => self.settle(p, Err(Interrupt::Failed(e))),
            Ok(1) => self.keys_menu(p),
            Ok(2) => self.data_menu(p),
            Ok(3) => self.crypt_menu(p),
            Ok(4) => self.usage_menu(p),
            Ok(5) => self.audit_menu(p),
            Ok(6) => self.expiry_menu(p),
            Ok(7) => self.account_menu(p),
            Ok(_) => self.admin_menu(p),
        }
    }
}

#[cfg(test)]
mod tests;
