//! One-shot commands: the clap definitions, the shared context (configuration, output,
//! session), and dispatch. Each command group lives in its own file and only translates
//! between the terminal and the domain functions on [`Vault`].

mod account;
pub mod audit;
mod crypt;
pub mod data;
mod db;
pub mod generate;
pub mod group;
mod inject;
pub mod keys;
mod service;
pub mod usage;
pub mod user;

use std::io;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use secrecy::SecretString;

use crate::ui::output::Output;
use crate::ui::session_file;
use zencrypt_core::config::{self, ColorChoice, Config, Flags};
use zencrypt_core::error::{Error, Result, exit};
use zencrypt_core::vault::{Session, Vault};

const EXAMPLES: &str = "\
Examples:
  zencrypt                                  start the interactive shell
  zencrypt signup --username alice          create an account (the first one is admin)
  zencrypt login --username alice           log in (password prompt, or --password-stdin)
  zencrypt whoami --json                    who is logged in, as JSON
  zencrypt audit verify                     check the audit chain (auditors, admins)

Exit codes: 0 ok, 1 runtime, 2 usage, 3 authentication, 4 permission denied,
5 not found, 6 conflict, 7 integrity.";

/// zencrypt: a terminal vault for encryption keys and secrets.
#[derive(Debug, Parser)]
#[command(
    name = "zencrypt",
    version,
    about = "A terminal vault for encryption keys and secrets",
    long_about = "A terminal vault for encryption keys and secrets.\n\nRun without a command on a \
                  terminal for the interactive shell; every shell action is also a command.",
    after_help = EXAMPLES,
    args_override_self = true
)]
pub struct Cli {
    /// Database path (default: $ZENCRYPT_DATA_DIR/zencrypt.db or the XDG data dir).
    #[arg(long, global = true, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Read ZENCRYPT_* settings from this file instead of ./.env (either must be a regular
    /// file of yours that group and others cannot write).
    #[arg(long, global = true, value_name = "PATH")]
    pub env_file: Option<PathBuf>,
    /// Print results as one JSON document (errors as JSON on stderr).
    #[arg(long, global = true)]
    pub json: bool,
    /// Print nothing but data.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Never prompt; fail naming the flag that is needed instead.
    #[arg(long, global = true)]
    pub no_input: bool,
    /// Colour messages on a terminal (NO_COLOR is honoured).
    #[arg(long, global = true, value_enum, value_name = "WHEN")]
    pub color: Option<ColorArg>,
    /// The command; none starts the interactive shell.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `--color` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ColorArg {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Every one-shot command.
//
// Every subcommand enum here defers its arguments (`defer = true`): clap then builds only
// the arguments of the command being run, which takes a third of a millisecond off every
// one-shot command. Structs of arguments therefore carry plain comments, not doc
// comments: clap would apply a struct's doc comment when it builds the arguments, after
// the command's own help text, and show it in that text's place. (One cost: completion
// scripts, which clap builds before the deferred parts, do not offer `help hash verify`.)
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Create an account and log in (the first account on a database is admin).
    #[command(
        after_help = "Example:\n  printf '%s\\n' \"$PW\" | zencrypt signup --username alice --password-stdin"
    )]
    Signup(account::LoginArgs),
    /// Log in and save the session for this database.
    #[command(after_help = "Example:\n  zencrypt login --username alice --ttl 1h")]
    Login(account::LoginArgs),
    /// End this session (or all of yours with --all) and remove the saved token.
    #[command(after_help = "Example:\n  zencrypt logout --all")]
    Logout(account::LogoutArgs),
    /// Show who is logged in.
    #[command(after_help = "Example:\n  zencrypt whoami --json")]
    Whoami,
    /// Change your password (your data is not re-encrypted; other sessions end).
    #[command(
        after_help = "Example:\n  printf '%s\\n%s\\n' \"$OLD\" \"$NEW\" | zencrypt passwd --password-stdin"
    )]
    Passwd(account::PasswdArgs),
    /// Your account: recovery key, and recovering with it.
    #[command(subcommand)]
    Account(account::AccountCommand),
    /// Manage your keys: create, rotate, expire, export, destroy.
    #[command(subcommand)]
    Key(keys::KeyCommand),
    /// Store, read, list and manage encrypted records.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Encrypt a file or stdin with one of your keys.
    #[command(
        after_help = "Examples:\n  echo -n hello | zencrypt encrypt --key k --armor\n  zencrypt encrypt --key backups big.iso -o big.iso.zc"
    )]
    Encrypt(crypt::EncryptArgs),
    /// Decrypt a binary or armored ciphertext.
    #[command(after_help = "Example:\n  zencrypt decrypt big.iso.zc -o big.iso")]
    Decrypt(crypt::DecryptArgs),
    /// Move a ciphertext to its key's latest version (the data is not re-encrypted).
    #[command(after_help = "Example:\n  zencrypt rewrap old.zc -o new.zc")]
    Rewrap(crypt::DecryptArgs),
    /// Hash a file or stdin (sha256 or argon2id), or verify a hash.
    #[command(
        after_help = "Examples:\n  zencrypt hash app.tar\n  printf %s \"$PW\" | zencrypt hash --algo argon2id\n  zencrypt hash verify \"$DIGEST\" app.tar"
    )]
    Hash(crypt::HashArgs),
    /// Encryption events and totals, grouped by key, user, operation or day.
    #[command(
        after_help = "Examples:\n  zencrypt usage --by key --since 7d\n  zencrypt usage --by user --json   (auditors and admins see everyone)"
    )]
    Usage(usage::UsageArgs),
    /// Database status and backups.
    #[command(subcommand)]
    Db(db::DbCommand),
    /// Print a random password or passphrase (from the OS random generator).
    #[command(
        after_help = "Examples:\n  zencrypt generate                          24 characters, every class\n  zencrypt generate --length 32 --no-symbols\n  zencrypt generate --words 6 --separator ' ' --json   (with entropy_bits)\n  zencrypt data put --name wifi --generate --words 5   store one unseen"
    )]
    Generate(generate::GenerateArgs),
    /// Run a command with secrets from records in its environment (never printed).
    #[command(
        after_help = "Examples:\n  zencrypt run --env DB_PASSWORD=prod/db/password -- ./migrate.sh\n  zencrypt run --template app.env -- docker compose up\n\nA template line DB_PASSWORD=zencrypt://prod/db/password sets DB_PASSWORD to that record's\nvalue; {{ zencrypt://REF }} inside a value is replaced by it. Every reference is read (and\naudited) before CMD starts; one that is missing fails with exit 5 and CMD never runs.\nzencrypt exits with CMD's exit code (128 + N if signal N ended it; 127 if CMD was not\nfound, 126 if it may not be run). Signals sent to zencrypt are passed on to CMD. CMD\ndoes not inherit ZENCRYPT_TOKEN or ZENCRYPT_AUDIT_KEY."
    )]
    Run(inject::RunArgs),
    /// Fill a template's {{ zencrypt://REF }} references with record values.
    #[command(
        after_help = "Examples:\n  zencrypt inject -i config.yml.tpl -o config.yml\n  zencrypt inject -i app.env.tpl > app.env\n\nREF is everything after zencrypt:// up to whitespace or }}: a token or a name such as\nprod/db/password. Every reference is read (and audited) before anything is written; one\nthat is missing fails with exit 5 and writes nothing. -o writes a new file 0600."
    )]
    Inject(inject::InjectArgs),
    /// Print the manual page (roff), or write every command's page to a directory.
    #[command(
        after_help = "Examples:\n  zencrypt man | man -l -\n  zencrypt man data put | man -l -\n  zencrypt man --dir /usr/local/share/man/man1   (zencrypt.1, zencrypt-data-put.1, ...)"
    )]
    Man {
        /// A command's page instead of the main one (e.g. `data put`).
        #[arg(value_name = "COMMAND")]
        command: Vec<String>,
        /// Write every page, as NAME.1 files, into this directory.
        #[arg(long, value_name = "DIR", conflicts_with = "command")]
        dir: Option<PathBuf>,
    },
    /// Holds a value on the clipboard for `data get --clip` (internal).
    #[command(name = "__clip-hold", hide = true)]
    ClipHold {
        /// Seconds to hold it.
        seconds: u64,
    },
    /// Print a shell completion script.
    #[command(
        after_help = "Example:\n  zencrypt completions bash > ~/.local/share/bash-completion/completions/zencrypt"
    )]
    Completions {
        /// bash, zsh or fish.
        #[arg(value_enum)]
        shell: CompletionShell,
    },
    /// Manage users and roles (admins).
    #[command(subcommand)]
    User(user::UserCommand),
    /// Service accounts for automation: grants, read-only tokens.
    #[command(subcommand)]
    Service(service::ServiceCommand),
    /// Groups of users to share records and keys with (@NAME).
    #[command(subcommand)]
    Group(group::GroupCommand),
    /// List and verify the audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
}

/// Shells `completions` supports.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CompletionShell {
    /// GNU bash.
    Bash,
    /// zsh.
    Zsh,
    /// fish.
    Fish,
}

/// What every command gets: the configuration and how to print.
pub struct Ctx {
    /// The resolved configuration.
    pub cfg: Config,
    /// Output settings.
    pub out: Output,
}

impl Ctx {
    /// Opens the vault, which must exist: only `signup` creates one.
    pub fn vault(&self) -> Result<Vault> {
        Vault::open(crate::backend::open(&self.cfg, false)?, &self.cfg)
    }

    /// Opens the vault, creating the database if it is missing (`signup`).
    pub fn vault_or_create(&self) -> Result<Vault> {
        Vault::open(crate::backend::open(&self.cfg, true)?, &self.cfg)
    }

    /// The session file for the open database.
    pub fn session_path(&self, vault: &Vault) -> PathBuf {
        session_file::session_file(&self.cfg.state_dir, vault.database_id())
    }

    /// The session token: `ZENCRYPT_TOKEN`, else the session file.
    pub fn token(&self, vault: &Vault) -> Result<SecretString> {
        if let Some(t) = &self.cfg.token {
            return Ok(t.clone());
        }
        session_file::load(&self.session_path(vault))?.ok_or(Error::NotLoggedIn)
    }

    /// Whether the token in use comes from `ZENCRYPT_TOKEN` rather than the session file.
    pub fn token_from_env(&self) -> bool {
        self.cfg.token.is_some()
    }

    /// Authenticates the saved session against the vault.
    pub fn session(&self, vault: &mut Vault) -> Result<Session> {
        let token = self.token(vault)?;
        vault.authenticate(&token)
    }
}

/// The variable the completion scripts set when they call zencrypt back (zencrypt's own,
/// so that a `COMPLETE` meant for another program changes nothing here).
const COMPLETE_VAR: &str = "ZENCRYPT_COMPLETE";

/// Prints a completion script (needs no database or session). The script calls zencrypt
/// back while completing, so record and key names complete from the saved session.
fn completions(shell: CompletionShell) -> Result<()> {
    use clap_complete::env::EnvCompleter;
    let shell: &dyn EnvCompleter = match shell {
        CompletionShell::Bash => &clap_complete::env::Bash,
        CompletionShell::Zsh => &clap_complete::env::Zsh,
        CompletionShell::Fish => &clap_complete::env::Fish,
    };
    let mut buf = Vec::new();
    shell
        .write_registration(COMPLETE_VAR, "zencrypt", "zencrypt", "zencrypt", &mut buf)
        .map_err(|e| Error::io("writing the completion script", e))?;
    emitted(std::io::Write::write_all(
        &mut std::io::stdout().lock(),
        &buf,
    ))
}

/// Whether `--json` is among the options (before any `--`), for errors in parsing the rest.
fn json_requested(args: impl Iterator<Item = std::ffi::OsString>) -> bool {
    args.skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}

/// An argument error as the JSON error object `--json` promises: clap's first line as the
/// message, its tip (a similar command or flag) as the hint.
fn usage_error_json(e: &clap::Error) {
    if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        let e = Error::Usage("a subcommand is needed; --help lists them".into());
        let obj = serde_json::json!({ "code": e.code(), "message": e.to_string() });
        let _ = io::Write::write_all(
            &mut io::stderr().lock(),
            format!("{}\n", serde_json::json!({ "error": obj })).as_bytes(),
        );
        return;
    }
    let text = e.render().to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let message = lines
        .next()
        .map(|l| l.strip_prefix("error: ").unwrap_or(l).to_string())
        .unwrap_or_default();
    let hint = lines
        .find_map(|l| l.strip_prefix("tip: "))
        .map(str::to_string);
    let e = Error::Usage(message);
    let mut obj = serde_json::json!({ "code": e.code(), "message": e.to_string() });
    if let Some(h) = hint {
        obj["hint"] = serde_json::Value::String(h);
    }
    let _ = io::Write::write_all(
        &mut io::stderr().lock(),
        format!("{}\n", serde_json::json!({ "error": obj })).as_bytes(),
    );
}

/// One command's page, with the program's name and version in its footer.
fn man_page(cmd: clap::Command) -> clap_mangen::Man {
    clap_mangen::Man::new(cmd)
        .source(concat!("zencrypt ", env!("CARGO_PKG_VERSION")))
        .manual("zencrypt manual")
}

/// Prints a manual page, or writes them all (needs no database or session).
fn man(ctx: &Ctx, path: &[String], dir: Option<&std::path::Path>) -> Result<()> {
    use clap::CommandFactory;
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    if let Some(dir) = dir {
        let mut written = 0;
        fn pages(cmd: &clap::Command, out: &mut Vec<clap::Command>) {
            for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
                pages(sub, out);
            }
            out.push(cmd.clone());
        }
        let mut all = Vec::new();
        pages(&cmd, &mut all);
        for page in all {
            man_page(page)
                .generate_to(dir)
                .map_err(|e| Error::io(format!("writing a page into {}", dir.display()), e))?;
            written += 1;
        }
        ctx.out.note(&format!(
            "Wrote {written} manual pages into {}.",
            dir.display()
        ));
        return Ok(());
    }
    let mut page = cmd;
    for name in path {
        page = page.find_subcommand(name).cloned().ok_or_else(|| {
            Error::Usage(format!(
                "no command '{}' to show a page for",
                path.join(" ")
            ))
        })?;
    }
    let mut buf = Vec::new();
    man_page(page)
        .render(&mut buf)
        .map_err(|e| Error::io("rendering the manual page", e))?;
    emitted(std::io::Write::write_all(
        &mut std::io::stdout().lock(),
        &buf,
    ))
}

/// Maps a failed write to stdout: a closed pipe is not an error.
pub fn emitted(r: io::Result<()>) -> Result<()> {
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::io("writing to stdout", e)),
    }
}

/// Parses the command line, runs it and returns the process exit code.
pub fn main() -> i32 {
    crate::memory::protect_memory();
    // `COMPLETE=bash zencrypt -- ...`, from the completion script: print the candidates
    // and stop.
    {
        use clap::CommandFactory;
        clap_complete::CompleteEnv::with_factory(Cli::command)
            .var(COMPLETE_VAR)
            .complete();
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    exit::OK
                }
                _ if json_requested(std::env::args_os()) => {
                    usage_error_json(&e);
                    exit::USAGE
                }
                _ => {
                    let _ = e.print();
                    exit::USAGE
                }
            };
        }
    };
    let flags = Flags {
        db: cli.db.clone(),
        env_file: cli.env_file.clone(),
        json: cli.json,
        quiet: cli.quiet,
        no_input: cli.no_input,
        color: cli.color.map(|c| match c {
            ColorArg::Auto => ColorChoice::Auto,
            ColorArg::Always => ColorChoice::Always,
            ColorArg::Never => ColorChoice::Never,
        }),
    };
    let cfg = match config::load(&flags, &config::process_env()) {
        Ok(c) => c,
        Err(e) => {
            Output::fallback(cli.json).error(&e);
            return e.exit_code();
        }
    };
    let ctx = Ctx {
        out: Output::from_config(&cfg),
        cfg,
    };
    crate::ui::output::set_quiet(ctx.out.quiet);
    // `run` passes on its command's exit code.
    let mut return_code = exit::OK;
    let result = match cli.command {
        None => crate::shell::run(&ctx.cfg),
        Some(Command::Completions { shell }) => completions(shell),
        Some(Command::Generate(a)) => generate::run(&ctx, a),
        Some(Command::ClipHold { seconds }) => crate::ui::clip::hold(seconds),
        Some(Command::Man { command, dir }) => man(&ctx, &command, dir.as_deref()),
        Some(Command::Run(a)) => inject::run(&ctx, a).map(|code| return_code = code),
        Some(command) => run(&ctx, command),
    };
    match result {
        Ok(()) => return_code,
        Err(e) => {
            ctx.out.error(&e);
            e.exit_code()
        }
    }
}

fn run(ctx: &Ctx, command: Command) -> Result<()> {
    match command {
        Command::Signup(a) => account::signup(ctx, a),
        Command::Login(a) => account::login(ctx, a),
        Command::Logout(a) => account::logout(ctx, a),
        Command::Whoami => account::whoami(ctx),
        Command::Passwd(a) => account::passwd(ctx, a),
        Command::Account(c) => account::run(ctx, c),
        Command::Key(c) => keys::run(ctx, c),
        Command::Data(c) => data::run(ctx, c),
        Command::Encrypt(a) => crypt::encrypt(ctx, a),
        Command::Decrypt(a) => crypt::decrypt(ctx, a),
        Command::Rewrap(a) => crypt::rewrap(ctx, a),
        Command::Hash(a) => crypt::hash(ctx, a),
        Command::Usage(a) => usage::run(ctx, a),
        Command::Db(c) => db::run(ctx, c),
        Command::Completions { shell } => completions(shell),
        Command::Generate(a) => generate::run(ctx, a),
        Command::ClipHold { seconds } => crate::ui::clip::hold(seconds),
        Command::Man { command, dir } => man(ctx, &command, dir.as_deref()),
        Command::Run(_) => Err(Error::Internal("run is dispatched by main".into())),
        Command::Inject(a) => inject::inject(ctx, a),
        Command::User(c) => user::run(ctx, c),
        Command::Service(c) => service::run(ctx, c),
        Command::Group(c) => group::run(ctx, c),
        Command::Audit(c) => audit::run(ctx, c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every command's path and first line of help.
    fn abouts(cmd: &clap::Command, path: &str, out: &mut Vec<(String, String)>) {
        let about = cmd.get_about().map(|a| a.to_string()).unwrap_or_default();
        out.push((path.to_string(), about));
        for sub in cmd.get_subcommands() {
            abouts(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn deferred_arguments_leave_each_command_its_own_help() {
        // Building the deferred arguments must not change any command's help line (a
        // struct's doc comment would replace it).
        let mut cmd = Cli::command();
        let mut before = Vec::new();
        abouts(&cmd, "zencrypt", &mut before);
        cmd.build();
        let mut after = Vec::new();
        abouts(&cmd, "zencrypt", &mut after);
        assert!(before.len() > 40, "{}", before.len());
        for (path, about) in &before {
            let now = &after
                .iter()
                .find(|(p, _)| p == path)
                .expect("still there")
                .1;
            assert_eq!(now, about, "{path}");
            assert!(
                !about.is_empty() || path.ends_with(" help"),
                "{path} has no help"
            );
        }
        let line = |path: &str| {
            after
                .iter()
                .find(|(p, _)| p == path)
                .map(|(_, a)| a.clone())
        };
        assert_eq!(
            line("zencrypt hash").as_deref(),
            Some("Hash a file or stdin (sha256 or argon2id), or verify a hash")
        );
        // Built with its deferred parent only.
        assert_eq!(
            line("zencrypt hash verify").as_deref(),
            Some("Exit 0 if INPUT matches HASH (sha256 hex or argon2id PHC), 7 if not")
        );
        assert_eq!(
            line("zencrypt rewrap").as_deref(),
            Some("Move a ciphertext to its key's latest version (the data is not re-encrypted)")
        );
    }
}
