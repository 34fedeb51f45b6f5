//! `run` and `inject`: record values into a process's environment or into a file, from
//! references (`zencrypt://REF`), so that secrets stay out of files, argv and shell history.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;

use clap::Args;
use zeroize::Zeroizing;

use super::Ctx;
use crate::ui::input;
use zencrypt_core::error::{Error, Result, exit};
use zencrypt_core::records;
use zencrypt_core::template::{self, EnvVar};
use zencrypt_core::vault::{Session, Vault};

/// Largest template read.
const MAX_TEMPLATE: u64 = 16 << 20;

// `run` arguments. (A plain comment: see `cli::Command`.)
#[allow(missing_docs)]
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Set NAME to a record's value (REF: a token or a name; `zencrypt://` may precede it).
    #[arg(long = "env", value_name = "NAME=REF")]
    pub env: Vec<String>,
    /// A file of NAME=VALUE lines; a VALUE `zencrypt://REF` is that record's value, and
    /// `{{ zencrypt://REF }}` inside a VALUE is replaced by it.
    #[arg(long, value_name = "FILE")]
    pub template: Option<PathBuf>,
    /// Record password file, for password-protected records.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// The command and its arguments, after `--`.
    #[arg(required = true, last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

// `inject` arguments. (A plain comment: see `cli::Command`.)
#[allow(missing_docs)]
#[derive(Debug, Args)]
pub struct InjectArgs {
    /// The template: text in which `{{ zencrypt://REF }}` is replaced by the record's value.
    #[arg(short, long = "in", value_name = "TEMPLATE")]
    pub input: PathBuf,
    /// Write here instead of stdout.
    ///
    /// A regular file is replaced through a 0600 temp file and a rename; a character
    /// device or a FIFO is written to directly; a symbolic link is followed to what it
    /// names.
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Record password file, for password-protected records.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
}

fn read_template(path: &std::path::Path) -> Result<Zeroizing<Vec<u8>>> {
    use std::io::Read;
    let what = || format!("reading {}", path.display());
    let f = std::fs::File::open(path).map_err(|e| Error::io(what(), e))?;
    let mut buf = Zeroizing::new(Vec::new());
    f.take(MAX_TEMPLATE + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(what(), e))?;
    if buf.len() as u64 > MAX_TEMPLATE {
        return Err(Error::Usage(format!(
            "{} is over {} MiB; a template is at most that",
            path.display(),
            MAX_TEMPLATE >> 20
        )));
    }
    Ok(buf)
}

/// The values of `refs`, read in one audited transaction (each counted in the usage
/// log as a `data get`). Any missing, deleted or expired reference fails the whole read.
fn resolve(
    ctx: &Ctx,
    vault: &mut Vault,
    session: &Session,
    refs: &[String],
    password_file: Option<&std::path::Path>,
) -> Result<Vec<(String, Zeroizing<Vec<u8>>)>> {
    if refs.is_empty() {
        return Ok(Vec::new());
    }
    let password = if vault.records_need_password(session, refs)? {
        Some(input::record_password(
            password_file,
            &ctx.cfg,
            "Record password",
            false,
        )?)
    } else {
        None
    };
    let got = vault.data_get(session, refs, password.as_ref())?;
    let unreadable: Vec<String> = got
        .missing
        .iter()
        .map(|r| format!("'{r}' (not found)"))
        .chain(got.deleted.iter().map(|r| format!("'{r}' (deleted)")))
        .chain(got.expired.iter().map(|r| format!("'{r}' (expired)")))
        .collect();
    if !unreadable.is_empty() {
        return Err(if unreadable.len() == 1 && !got.missing.is_empty() {
            records::not_found(&got.missing[0])
        } else {
            Error::NotFound(format!("cannot read {}", unreadable.join(", ")))
        });
    }
    // The outcome keeps request order and skips nothing now.
    Ok(refs
        .iter()
        .cloned()
        .zip(got.records.into_iter().map(|(_, v)| v))
        .collect())
}

fn value_map(values: &[(String, Zeroizing<Vec<u8>>)]) -> HashMap<String, &[u8]> {
    values.iter().map(|(r, v)| (r.clone(), &v[..])).collect()
}

/// `inject`: renders a template to a file or stdout; nothing is written unless every
/// reference could be read.
pub fn inject(ctx: &Ctx, a: InjectArgs) -> Result<()> {
    let text = read_template(&a.input)?;
    let pieces = template::parse_text(&text)?;
    let refs = template::references(&pieces);
    let mut vault = ctx.vault()?;
    let session = ctx.session(&mut vault)?;
    let values = resolve(ctx, &mut vault, &session, &refs, a.password_file.as_deref())?;
    let rendered = template::render(&pieces, &value_map(&values))?;
    drop(values);
    crate::ui::files::write_bytes_through(a.output.as_deref(), &rendered, "the rendered template")?;
    if a.output.is_some() {
        ctx.out.note(&format!(
            "Wrote {} with {} reference(s) filled in.",
            a.output
                .as_deref()
                .unwrap_or(std::path::Path::new("-"))
                .display(),
            refs.len()
        ));
    }
    Ok(())
}

/// The variables `run` sets: the template's, then the `--env` options (which win).
fn run_vars(a: &RunArgs) -> Result<Vec<EnvVar>> {
    let mut vars = match &a.template {
        Some(path) => template::parse_env(&read_template(path)?).map_err(|e| match e {
            Error::Usage(m) => Error::Usage(format!("{}: {m}", path.display())),
            e => e,
        })?,
        None => Vec::new(),
    };
    for option in &a.env {
        let var = template::parse_env_option(option)?;
        vars.retain(|v| v.name != var.name);
        vars.push(var);
    }
    if vars.is_empty() {
        return Err(Error::Usage(
            "run needs --env NAME=REF or --template FILE: it has no secret to pass".into(),
        ));
    }
    Ok(vars)
}

/// `run`: runs CMD with variables set from records and returns its exit code (128 + the
/// signal's number if a signal ended it). Signals sent to zencrypt are passed on to CMD;
/// Ctrl-C and Ctrl-\ from the terminal reach CMD directly, so they are not sent twice.
pub fn run(ctx: &Ctx, a: RunArgs) -> Result<i32> {
    let vars = run_vars(&a)?;
    let refs = template::references(vars.iter().flat_map(|v| &v.value));
    let env: Vec<(String, Zeroizing<Vec<u8>>)> = {
        let mut vault = ctx.vault()?;
        let session = ctx.session(&mut vault)?;
        let values = resolve(ctx, &mut vault, &session, &refs, a.password_file.as_deref())?;
        let map = value_map(&values);
        vars.iter()
            .map(|v| Ok((v.name.clone(), template::render(&v.value, &map)?)))
            .collect::<Result<_>>()?
        // The vault closes here: no database handle or lock outlives the lookup.
    };
    for (name, value) in &env {
        if value.contains(&0) {
            return Err(Error::Usage(format!(
                "the value for {name} holds a NUL byte, which an environment variable cannot carry; use `zencrypt inject` or `data get -o` for binary values"
            )));
        }
    }
    let program = &a.command[0];
    let mut cmd = std::process::Command::new(program);
    cmd.args(&a.command[1..]);
    crate::ui::scrub_child_env(&mut cmd);
    for (name, value) in &env {
        cmd.env(name, OsStr::from_bytes(value));
    }
    let forward = Forwarder::install()?;
    let mut child = cmd.spawn().map_err(|e| spawn_error(program, e))?;
    drop(cmd);
    drop(env);
    let running = forward.start(&child);
    // Wait for CMD to end without reaping it: until it is reaped its pid cannot be reused,
    // so the forwarder, stopped first, never signals another process.
    let pid = rustix::process::Pid::from_child(&child);
    while let Err(rustix::io::Errno::INTR) = rustix::process::waitid(
        rustix::process::WaitId::Pid(pid),
        rustix::process::WaitIdOptions::EXITED | rustix::process::WaitIdOptions::NOWAIT,
    ) {}
    running.stop();
    let status = child
        .wait()
        .map_err(|e| Error::io("waiting for the command", e));
    let status = status?;
    Ok(status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(exit::RUNTIME))
}

fn spawn_error(program: &OsStr, e: std::io::Error) -> Error {
    let name = program.to_string_lossy();
    let code = match e.kind() {
        std::io::ErrorKind::NotFound => 127,
        std::io::ErrorKind::PermissionDenied => 126,
        _ => exit::RUNTIME,
    };
    Error::Child {
        message: format!(
            "cannot run '{}': {e}",
            zencrypt_core::text::printable(&name, 80)
        ),
        code,
    }
}

/// Passes signals on to the child.
struct Forwarder {
    signals: signal_hook::iterator::Signals,
}

/// A running forwarder, stopped once the child has ended.
struct Forwarding {
    handle: signal_hook::iterator::Handle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Forwarder {
    /// Registers the signals before the child starts, so that none sent in between is
    /// lost: it waits in the iterator until the forwarding thread runs.
    fn install() -> Result<Forwarder> {
        use signal_hook::consts::*;
        let signals = signal_hook::iterator::Signals::new([
            SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGWINCH,
        ])
        .map_err(|e| Error::io("setting up signal forwarding", e))?;
        Ok(Forwarder { signals })
    }

    fn start(mut self, child: &std::process::Child) -> Forwarding {
        use signal_hook::consts::{SIGINT, SIGQUIT};
        let pid = rustix::process::Pid::from_child(child);
        let handle = self.signals.handle();
        // With the controlling terminal's foreground group being ours (the child's too),
        // the terminal already sent Ctrl-C and Ctrl-\ to the child, whatever stdin is.
        let terminal_sends = std::fs::File::open("/dev/tty")
            .ok()
            .and_then(|tty| rustix::termios::tcgetpgrp(&tty).ok())
            .is_some_and(|fg| fg == rustix::process::getpgrp());
        let thread = std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for sig in self.signals.forever() {
                    if terminal_sends && (sig == SIGINT || sig == SIGQUIT) {
                        continue;
                    }
                    if let Some(s) = rustix::process::Signal::from_named_raw(sig) {
                        let _ = rustix::process::kill_process(pid, s);
                    }
                }
            })
            .ok();
        Forwarding { handle, thread }
    }
}

impl Forwarding {
    fn stop(mut self) {
        self.handle.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
