//! Prompts: a [`Prompter`] trait so menu logic can be driven by a script in tests, and
//! the terminal implementation.
//!
//! The terminal prompter reads keys in raw mode, so Ctrl-C cancels the prompt (instead of
//! killing the process with the terminal's echo still off) and Ctrl-D on an empty line is
//! end of input. Lists to pick from use dialoguer.

use console::{Key, Term};
use secrecy::SecretString;
use zeroize::Zeroizing;

use zencrypt_core::error::Error;

/// Why a prompt produced no answer.
#[derive(Debug)]
pub enum Interrupt {
    /// Ctrl-C: abandon the current action and go back to the menu.
    Cancel,
    /// Ctrl-D or closed input: leave.
    Eof,
    /// An action failed; shown to the user, then back to the menu.
    Failed(Error),
}

impl From<Error> for Interrupt {
    fn from(e: Error) -> Self {
        match e {
            Error::Cancelled => Interrupt::Cancel,
            e => Interrupt::Failed(e),
        }
    }
}

/// The result of a prompt.
pub type Reply<T> = Result<T, Interrupt>;

/// Everything the shell and the one-shot commands ask a person.
pub trait Prompter {
    /// Shows a line of text to the user.
    fn say(&mut self, text: &str);
    /// Reads a visible line.
    fn line(&mut self, prompt: &str) -> Reply<String>;
    /// Reads a hidden line (passwords).
    fn secret(&mut self, prompt: &str) -> Reply<SecretString>;
    /// Asks a yes/no question.
    fn confirm(&mut self, prompt: &str) -> Reply<bool>;
    /// Picks one of `items`; returns its index.
    fn select(&mut self, prompt: &str, items: &[String]) -> Reply<usize>;
}

/// Prompts on the terminal (stderr), reading keys from the terminal.
pub struct TermPrompter {
    term: Term,
}

impl Default for TermPrompter {
    fn default() -> Self {
        Self::new()
    }
}

impl TermPrompter {
    /// A prompter on stderr.
    pub fn new() -> Self {
        TermPrompter {
            term: Term::stderr(),
        }
    }

    fn read_line(&mut self, prompt: &str, echo: bool) -> Reply<Zeroizing<String>> {
        let io = |e: std::io::Error| Interrupt::Failed(Error::io("reading from the terminal", e));
        self.term
            .write_str(&crate::ui::output::printable(prompt))
            .map_err(io)?;
        let mut buf = Zeroizing::new(String::new());
        loop {
            let key = match self.term.read_key_raw() {
                Ok(k) => k,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    let _ = self.term.write_line("");
                    return Err(Interrupt::Eof);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Key::CtrlC,
                Err(e) => return Err(io(e)),
            };
            match key {
                Key::Enter => {
                    self.term.write_line("").map_err(io)?;
                    return Ok(buf);
                }
                Key::CtrlC => {
                    self.term.write_line("^C").map_err(io)?;
                    return Err(Interrupt::Cancel);
                }
                Key::Char('\u{4}') if buf.is_empty() => {
                    self.term.write_line("").map_err(io)?;
                    return Err(Interrupt::Eof);
                }
                Key::Backspace if buf.pop().is_some() && echo => {
                    self.term.clear_chars(1).map_err(io)?;
                }
                Key::Char(c) if !c.is_control() => {
                    buf.push(c);
                    if echo {
                        let mut b = [0u8; 4];
                        self.term.write_str(c.encode_utf8(&mut b)).map_err(io)?;
                    }
                }
                _ => {}
            }
        }
    }
}

impl Prompter for TermPrompter {
    fn say(&mut self, text: &str) {
        let _ = self
            .term
            .write_line(&crate::ui::output::printable_lines(text));
    }

    fn line(&mut self, prompt: &str) -> Reply<String> {
        self.read_line(prompt, true).map(|s| s.trim().to_string())
    }

    fn secret(&mut self, prompt: &str) -> Reply<SecretString> {
        self.read_line(prompt, false)
            .map(|s| SecretString::from(s.as_str()))
    }

    fn confirm(&mut self, prompt: &str) -> Reply<bool> {
        loop {
            let answer = self.line(&format!("{prompt} [y/N] "))?;
            match answer.to_ascii_lowercase().as_str() {
                "y" | "yes" => return Ok(true),
                "" | "n" | "no" => return Ok(false),
                _ => self.say("Please answer y or n."),
            }
        }
    }

    fn select(&mut self, prompt: &str, items: &[String]) -> Reply<usize> {
        let shown: Vec<String> = items
            .iter()
            .map(|i| crate::ui::output::printable(i).into_owned())
            .collect();
        // Typing filters the list (fuzzy), so a long list is as quick as a short one.
        let picked = dialoguer::FuzzySelect::new()
            .with_prompt(format!(
                "{} (type to filter, arrows and Enter; Esc to cancel)",
                crate::ui::output::printable(prompt)
            ))
            .items(&shown)
            .default(0)
            .max_length(15)
            .interact_on_opt(&self.term);
        match picked {
            Ok(Some(i)) => Ok(i),
            Ok(None) => Err(Interrupt::Cancel),
            Err(dialoguer::Error::IO(e)) if e.kind() == std::io::ErrorKind::Interrupted => {
                Err(Interrupt::Cancel)
            }
            Err(dialoguer::Error::IO(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err(Interrupt::Eof)
            }
            Err(dialoguer::Error::IO(e)) => {
                Err(Interrupt::Failed(Error::io("reading from the terminal", e)))
            }
        }
    }
}

/// A prompter that answers from a script, for tests of menu logic.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct ScriptedPrompter {
    answers: std::collections::VecDeque<Scripted>,
    /// Everything shown with [`Prompter::say`] and every prompt, in order.
    pub transcript: Vec<String>,
}

/// One scripted answer.
#[cfg(test)]
#[derive(Debug, Clone)]
pub enum Scripted {
    /// A typed line (visible or hidden).
    Text(String),
    /// A yes/no answer.
    Yes(bool),
    /// A pick from a list, by index.
    Pick(usize),
    /// Ctrl-C.
    CtrlC,
}

#[cfg(test)]
impl ScriptedPrompter {
    /// A prompter that gives `answers` in order, then end of input.
    pub fn new(answers: impl IntoIterator<Item = Scripted>) -> Self {
        ScriptedPrompter {
            answers: answers.into_iter().collect(),
            transcript: Vec::new(),
        }
    }

    fn next(&mut self, prompt: &str) -> Reply<Scripted> {
        self.transcript.push(format!("? {prompt}"));
        match self.answers.pop_front() {
            None => Err(Interrupt::Eof),
            Some(Scripted::CtrlC) => Err(Interrupt::Cancel),
            Some(a) => Ok(a),
        }
    }

    fn mismatch(prompt: &str, got: &Scripted) -> Interrupt {
        Interrupt::Failed(Error::Internal(format!(
            "script gave {got:?} at prompt '{prompt}'"
        )))
    }
}

#[cfg(test)]
impl Prompter for ScriptedPrompter {
    fn say(&mut self, text: &str) {
        self.transcript.push(text.to_string());
    }

    fn line(&mut self, prompt: &str) -> Reply<String> {
        match self.next(prompt)? {
            Scripted::Text(t) => Ok(t),
            other => Err(Self::mismatch(prompt, &other)),
        }
    }

    fn secret(&mut self, prompt: &str) -> Reply<SecretString> {
        self.line(prompt).map(SecretString::from)
    }

    fn confirm(&mut self, prompt: &str) -> Reply<bool> {
        match self.next(prompt)? {
            Scripted::Yes(b) => Ok(b),
            other => Err(Self::mismatch(prompt, &other)),
        }
    }

    fn select(&mut self, prompt: &str, items: &[String]) -> Reply<usize> {
        match self.next(prompt)? {
            Scripted::Pick(i) if i < items.len() => Ok(i),
            other => Err(Self::mismatch(prompt, &other)),
        }
    }
}
