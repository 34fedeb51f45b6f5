//! The one configuration loader: defaults < `.env` (`./.env` or `--env-file`) <
//! `ZENCRYPT_*` environment variables < command-line flags. Nothing else in zencrypt reads
//! the process environment.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use secrecy::SecretString;

use crate::crypto::kdf::KdfParams;
use crate::duration;
use crate::error::Error;

/// Default session lifetime: 8 hours.
pub const DEFAULT_SESSION_TTL: u64 = 8 * 3600;
/// Longest session lifetime accepted: 30 days.
pub const MAX_SESSION_TTL: u64 = 30 * 86_400;

/// Who may create accounts with `signup` once the first (admin) account exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignupPolicy {
    /// Anyone who can reach the database.
    Open,
    /// Only admins, through `user add`.
    AdminOnly,
    /// Nobody.
    Closed,
}

/// When to colour terminal output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Settings given on the command line; `None` means "not given".
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// `--db`.
    pub db: Option<PathBuf>,
    /// `--env-file`.
    pub env_file: Option<PathBuf>,
    /// `--json`.
    pub json: bool,
    /// `-q/--quiet`.
    pub quiet: bool,
    /// `--no-input`.
    pub no_input: bool,
    /// `--color`.
    pub color: Option<ColorChoice>,
}

/// The resolved configuration of one process.
#[derive(Debug)]
pub struct Config {
    /// The database: a SQLite file or a PostgreSQL URL.
    pub db: DbLocation,
    /// `ZENCRYPT_DB_PASSWORD_FILE`: the PostgreSQL password (else `~/.pgpass`, else a
    /// prompt when the server asks for one).
    pub db_password_file: Option<PathBuf>,
    /// `ZENCRYPT_AUDIT_KEY_FILE`: a file holding the audit key (instead of
    /// `ZENCRYPT_AUDIT_KEY`).
    pub audit_key_file: Option<PathBuf>,
    /// The password file of libpq's format: `PGPASSFILE`, else `~/.pgpass`.
    pub pgpass: Option<PathBuf>,
    /// Where `jwt.secret` and `audit.key` are generated.
    pub data_dir: PathBuf,
    /// Where session files live.
    pub state_dir: PathBuf,
    /// Sign-up policy.
    pub signup: SignupPolicy,
    /// Session lifetime in seconds.
    pub session_ttl: u64,
    /// `ZENCRYPT_JWT_SECRET`, when set (at least 32 bytes).
    pub jwt_secret: Option<SecretString>,
    /// `ZENCRYPT_AUDIT_KEY`, when set (at least 32 bytes).
    pub audit_key: Option<SecretString>,
    /// argon2id parameters for new password hashes and key-encryption keys.
    pub kdf: KdfParams,
    /// `ZENCRYPT_TOKEN`: a session token that overrides the session file.
    pub token: Option<SecretString>,
    /// `ZENCRYPT_PASSWORD_FILE`: where to read a password when no flag names one.
    pub password_file: Option<PathBuf>,
    /// `ZENCRYPT_RECORD_PASSWORD_FILE`: where to read a record password.
    pub record_password_file: Option<PathBuf>,
    /// `--json`.
    pub json: bool,
    /// `-q`.
    pub quiet: bool,
    /// `--no-input`.
    pub no_input: bool,
    /// Colour choice, with `NO_COLOR` already applied.
    pub color: ColorChoice,
    /// The editor `data edit` runs: `$VISUAL`, else `$EDITOR` (a command line for `sh`).
    pub editor: Option<OsString>,
    /// The pass store `data import --format pass` reads by default:
    /// `$PASSWORD_STORE_DIR`, else `~/.password-store`.
    pub password_store: Option<PathBuf>,
    /// Seconds `data get --clip` leaves a value on the clipboard (`ZENCRYPT_CLIP_SECONDS`,
    /// default 45).
    pub clip_seconds: u64,
    /// Earlier versions kept per record (`ZENCRYPT_HISTORY`, default 9).
    pub history: u32,
    /// `$XDG_RUNTIME_DIR`: a private tmpfs for files that hold plaintext for a moment.
    pub runtime_dir: Option<PathBuf>,
}

/// A snapshot of the process environment, taken once.
pub fn process_env() -> HashMap<String, OsString> {
    #[allow(clippy::disallowed_methods)]
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v)))
        .collect()
}

/// Where the database is.
#[derive(Clone, PartialEq, Eq)]
pub enum DbLocation {
    /// A SQLite file.
    File(PathBuf),
    /// A PostgreSQL server: a `postgres://` or `postgresql://` URL, with no password in
    /// it.
    Postgres(String),
}

impl DbLocation {
    /// Reads `--db` or `ZENCRYPT_DB` (named by `what`): a URL for PostgreSQL, anything
    /// else a file path. A URL that carries a password is refused: it would show in
    /// process listings and shell history.
    pub fn parse(value: &std::ffi::OsStr, what: &str) -> Result<DbLocation, Error> {
        let Some(text) = value.to_str() else {
            return Ok(DbLocation::File(PathBuf::from(value)));
        };
        let lower = text.get(..13).unwrap_or(text).to_ascii_lowercase();
        if !(lower.starts_with("postgres://") || lower.starts_with("postgresql://")) {
            return Ok(DbLocation::File(PathBuf::from(value)));
        }
        let url = crate::dburl::DbUrl::parse(text)
            .map_err(|why| Error::Config(format!("{what}: not a usable PostgreSQL URL: {why}")))?;
        if url.has_password() {
            return Err(Error::Config(format!(
                "{what}: the URL carries a password; remove it and put the password in ZENCRYPT_DB_PASSWORD_FILE or ~/.pgpass instead"
            )));
        }
        Ok(DbLocation::Postgres(text.to_string()))
    }

    /// How the location is shown: the path, or the URL (which holds no password).
    pub fn display(&self) -> String {
        match self {
            DbLocation::File(p) => p.display().to_string(),
            DbLocation::Postgres(u) => u.clone(),
        }
    }

    /// Whether this is a shared (server) database.
    pub fn is_server(&self) -> bool {
        matches!(self, DbLocation::Postgres(_))
    }
}

impl std::fmt::Debug for DbLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbLocation::File(p) => write!(f, "File({})", p.display()),
            DbLocation::Postgres(u) => write!(f, "Postgres({u})"),
        }
    }
}

/// Earlier versions kept per record by default (with the current one, ten).
pub const DEFAULT_HISTORY: u32 = 9;
/// Most earlier versions `ZENCRYPT_HISTORY` may ask to keep.
pub const MAX_HISTORY: u32 = 100;

/// Resolves the configuration from flags and an environment snapshot.
pub fn load(flags: &Flags, env: &HashMap<String, OsString>) -> Result<Config, Error> {
    let dotenv = read_dotenv(flags.env_file.as_deref())?;
    // ZENCRYPT_* from the process environment win over the .env file.
    let get = |key: &str| -> Option<OsString> {
        env.get(key)
            .cloned()
            .or_else(|| dotenv.get(key).map(OsString::from))
            .filter(|v| !v.is_empty())
    };
    let get_str = |key: &str| -> Result<Option<String>, Error> {
        get(key)
            .map(|v| {
                v.into_string()
                    .map_err(|_| Error::Config(format!("{key} is not valid UTF-8")))
            })
            .transpose()
    };

    let home = env.get("HOME").filter(|v| !v.is_empty()).map(PathBuf::from);
    let xdg = |var: &str, fallback: &str| -> Result<PathBuf, Error> {
        if let Some(p) = env.get(var).filter(|v| !v.is_empty()) {
            return Ok(PathBuf::from(p).join("zencrypt"));
        }
        match &home {
            Some(h) => Ok(h.join(fallback).join("zencrypt")),
            None => Err(Error::Config(format!(
                "cannot find a home directory: set HOME, {var} or ZENCRYPT_DATA_DIR"
            ))),
        }
    };

    let data_dir = match get("ZENCRYPT_DATA_DIR") {
        Some(d) => PathBuf::from(d),
        None => xdg("XDG_DATA_HOME", ".local/share")?,
    };
    let state_dir = match get("ZENCRYPT_STATE_DIR") {
        Some(d) => PathBuf::from(d),
        None if get("ZENCRYPT_DATA_DIR").is_some() && home.is_none() => data_dir.join("state"),
        None => xdg("XDG_STATE_HOME", ".local/state")?,
    };
    let db = match (&flags.db, get("ZENCRYPT_DB")) {
        (Some(p), _) => DbLocation::parse(p.as_os_str(), "--db")?,
        (None, Some(p)) => DbLocation::parse(&p, "ZENCRYPT_DB")?,
        (None, None) => DbLocation::File(data_dir.join("zencrypt.db")),
    };

    let signup = match get_str("ZENCRYPT_SIGNUP")?.as_deref() {
        None | Some("open") => SignupPolicy::Open,
        Some("admin-only") => SignupPolicy::AdminOnly,
        Some("closed") => SignupPolicy::Closed,
        Some(other) => {
            return Err(Error::Config(format!(
                "ZENCRYPT_SIGNUP must be open, admin-only or closed, not '{other}'"
            )));
        }
    };

    let session_ttl = match get_str("ZENCRYPT_SESSION_TTL")? {
        Some(s) => check_ttl(
            duration::parse(&s).map_err(|_| {
                Error::Config(format!(
                    "ZENCRYPT_SESSION_TTL: invalid duration '{s}' (use e.g. 8h)"
                ))
            })?,
            "ZENCRYPT_SESSION_TTL",
        )?,
        None => DEFAULT_SESSION_TTL,
    };

    let history = match get_str("ZENCRYPT_HISTORY")? {
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= MAX_HISTORY)
            .ok_or_else(|| {
                Error::Config(format!(
                    "ZENCRYPT_HISTORY must be a whole number from 0 to {MAX_HISTORY} (earlier versions kept per record), not '{s}'"
                ))
            })?,
        None => DEFAULT_HISTORY,
    };

    let clip_seconds = match get_str("ZENCRYPT_CLIP_SECONDS")? {
        Some(s) => s
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=3600).contains(n))
            .ok_or_else(|| {
                Error::Config(format!(
                    "ZENCRYPT_CLIP_SECONDS must be a whole number of seconds from 1 to 3600, not '{s}'"
                ))
            })?,
        None => 45,
    };

    let secret = |key: &str| -> Result<Option<SecretString>, Error> {
        match get_str(key)? {
            Some(s) if s.len() < 32 => Err(Error::Config(format!(
                "{key} is too short: it must be at least 32 bytes"
            ))),
            Some(s) => Ok(Some(SecretString::from(s))),
            None => Ok(None),
        }
    };
    let jwt_secret = secret("ZENCRYPT_JWT_SECRET")?;
    let audit_key = secret("ZENCRYPT_AUDIT_KEY")?;
    let audit_key_file = get("ZENCRYPT_AUDIT_KEY_FILE").map(PathBuf::from);
    if audit_key.is_some() && audit_key_file.is_some() {
        return Err(Error::Config(
            "set ZENCRYPT_AUDIT_KEY or ZENCRYPT_AUDIT_KEY_FILE, not both".into(),
        ));
    }
    let db_password_file = get("ZENCRYPT_DB_PASSWORD_FILE").map(PathBuf::from);

    // The argon2 cost is only lowered from the process environment, never from a .env
    // file that happens to sit in the working directory.
    let num = |key: &str, default: u32, min: u32, max: u32| -> Result<u32, Error> {
        let value = env
            .get(key)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.to_str()
                    .map(str::to_string)
                    .ok_or_else(|| Error::Config(format!("{key} is not valid UTF-8")))
            })
            .transpose()?;
        match value {
            None => Ok(default),
            Some(s) => s
                .parse::<u32>()
                .ok()
                .filter(|v| (min..=max).contains(v))
                .ok_or_else(|| {
                    Error::Config(format!(
                        "{key} must be a whole number from {min} to {max}, not '{s}'"
                    ))
                }),
        }
    };
    let kdf = KdfParams {
        m_kib: num(
            "ZENCRYPT_ARGON2_MEMORY_KIB",
            KdfParams::OWASP.m_kib,
            8,
            crate::crypto::kdf::MAX_M_KIB,
        )?,
        t: num(
            "ZENCRYPT_ARGON2_ITERATIONS",
            KdfParams::OWASP.t,
            1,
            crate::crypto::kdf::MAX_T,
        )?,
        p: 1,
    };

    let token = get_str("ZENCRYPT_TOKEN")?.map(SecretString::from);
    let password_file = get("ZENCRYPT_PASSWORD_FILE").map(PathBuf::from);
    let record_password_file = get("ZENCRYPT_RECORD_PASSWORD_FILE").map(PathBuf::from);

    let no_color = env.get("NO_COLOR").is_some_and(|v| !v.is_empty())
        || env.get("TERM").is_some_and(|t| t == "dumb");
    let color = match flags.color.unwrap_or(ColorChoice::Auto) {
        ColorChoice::Auto if no_color => ColorChoice::Never,
        c => c,
    };

    Ok(Config {
        db,
        db_password_file,
        audit_key_file,
        pgpass: env
            .get("PGPASSFILE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".pgpass"))),
        data_dir,
        state_dir,
        signup,
        session_ttl,
        jwt_secret,
        audit_key,
        kdf,
        token,
        password_file,
        record_password_file,
        json: flags.json,
        quiet: flags.quiet,
        no_input: flags.no_input,
        color,
        history,
        clip_seconds,
        password_store: env
            .get("PASSWORD_STORE_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".password-store"))),
        editor: ["VISUAL", "EDITOR"]
            .iter()
            .find_map(|k| env.get(*k).filter(|v| !v.is_empty()).cloned()),
        runtime_dir: env
            .get("XDG_RUNTIME_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
    })
}

/// Checks a session lifetime against the accepted range.
pub fn check_ttl(secs: u64, what: &str) -> Result<u64, Error> {
    if secs == 0 || secs > MAX_SESSION_TTL {
        return Err(Error::Usage(format!(
            "{what} must be between 1s and {}",
            duration::format(MAX_SESSION_TTL)
        )));
    }
    Ok(secs)
}

/// Reads the `ZENCRYPT_*` entries of `--env-file` (which must exist) or of `./.env` (if it
/// exists). Other keys are ignored: `.env` configures zencrypt, not the process.
///
/// A `.env` file can point zencrypt at another database, a session token or the audit key,
/// so whoever can write it controls the vault. Both an implicit `./.env` and an explicit
/// `--env-file` are therefore read only when they are a regular file (not a symbolic
/// link) owned by the effective user and not writable by group or others; anything else
/// is refused, as git refuses a repository that belongs to someone else. A directory named
/// `.env` (a Python virtualenv, say) is not a settings file and is passed over.
fn read_dotenv(explicit: Option<&Path>) -> Result<HashMap<String, String>, Error> {
    let path = match explicit {
        Some(p) => {
            if p.symlink_metadata().is_err() {
                return Err(Error::Config(format!(
                    "--env-file {}: no such file",
                    p.display()
                )));
            }
            p.to_path_buf()
        }
        None => {
            let p = PathBuf::from("./.env");
            match p.symlink_metadata() {
                Err(_) => return Ok(HashMap::new()),
                Ok(m) if m.is_dir() => return Ok(HashMap::new()),
                Ok(_) => p,
            }
        }
    };
    let file = open_trusted(&path, explicit.is_some())?;
    let iter = dotenvy::from_read_iter(file);
    let mut map = HashMap::new();
    for item in iter {
        let (k, v) = item.map_err(|e| {
            Error::Config(format!(
                "{} is not a valid .env file: {}",
                path.display(),
                dotenv_error_line(&e)
            ))
        })?;
        if k.starts_with("ZENCRYPT_") {
            map.insert(k, v);
        }
    }
    Ok(map)
}

/// Opens a settings file only if it is a regular file of ours that no one else may write.
/// The checks are made on the opened file (not followed through a link, not blocking on a
/// FIFO), so the file cannot be swapped between the check and the read.
fn open_trusted(path: &Path, explicit: bool) -> Result<std::fs::File, Error> {
    use rustix::fs::{Mode, OFlags};
    use std::os::unix::fs::MetadataExt;
    let refuse = |reason: String| Error::UntrustedEnvFile {
        path: path.display().to_string(),
        reason,
        explicit,
    };
    let cannot = |e: std::io::Error| Error::Config(format!("cannot read {}: {e}", path.display()));
    if path.symlink_metadata().map_err(cannot)?.is_symlink() {
        return Err(refuse("it is a symbolic link".into()));
    }
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        rustix::io::Errno::LOOP => refuse("it is a symbolic link".into()),
        e => cannot(e.into()),
    })?;
    let file = std::fs::File::from(fd);
    let meta = file.metadata().map_err(cannot)?;
    if !meta.is_file() {
        return Err(refuse("it is not a regular file".into()));
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(refuse(format!(
            "it belongs to uid {}, not you (uid {me})",
            meta.uid()
        )));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(refuse(format!(
            "it is writable by group or others (mode {mode:04o})"
        )));
    }
    Ok(file)
}

/// dotenvy's parse errors quote the offending line, which may hold a secret: keep only
/// the position.
fn dotenv_error_line(e: &dotenvy::Error) -> String {
    match e {
        dotenvy::Error::LineParse(_, idx) => format!("parse error at character {idx}"),
        dotenvy::Error::Io(io) => io.to_string(),
        _ => "parse error".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, OsString> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect()
    }

    fn flags_with_env_file(dir: &Path, contents: &str) -> Flags {
        let f = dir.join("test.env");
        std::fs::write(&f, contents).unwrap();
        Flags {
            env_file: Some(f),
            ..Flags::default()
        }
    }

    #[test]
    fn xdg_defaults_follow_home() {
        let c = load(&Flags::default(), &env(&[("HOME", "/h")])).unwrap();
        assert_eq!(
            c.db,
            DbLocation::File(PathBuf::from("/h/.local/share/zencrypt/zencrypt.db"))
        );
        assert_eq!(c.state_dir, PathBuf::from("/h/.local/state/zencrypt"));
        assert_eq!(c.kdf, KdfParams::OWASP);
        assert_eq!(c.session_ttl, 8 * 3600);
        assert_eq!(c.signup, SignupPolicy::Open);
    }

    #[test]
    fn xdg_variables_win_over_home() {
        let c = load(
            &Flags::default(),
            &env(&[
                ("HOME", "/h"),
                ("XDG_DATA_HOME", "/d"),
                ("XDG_STATE_HOME", "/s"),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.db,
            DbLocation::File(PathBuf::from("/d/zencrypt/zencrypt.db"))
        );
        assert_eq!(c.state_dir, PathBuf::from("/s/zencrypt"));
    }

    #[test]
    fn precedence_is_defaults_dotenv_env_flags() {
        let t = tempfile::tempdir().unwrap();
        let mut flags = flags_with_env_file(
            t.path(),
            "ZENCRYPT_DB=/from-dotenv.db\nZENCRYPT_SIGNUP=closed\nZENCRYPT_SESSION_TTL=1h\nHOME=/ignored\n",
        );
        let e = env(&[("HOME", "/h"), ("ZENCRYPT_SIGNUP", "admin-only")]);
        let c = load(&flags, &e).unwrap();
        assert_eq!(c.db, DbLocation::File(PathBuf::from("/from-dotenv.db")));
        assert_eq!(c.signup, SignupPolicy::AdminOnly);
        assert_eq!(c.session_ttl, 3600);
        assert_eq!(c.data_dir, PathBuf::from("/h/.local/share/zencrypt"));
        flags.db = Some(PathBuf::from("/flag.db"));
        assert_eq!(
            load(&flags, &e).unwrap().db,
            DbLocation::File(PathBuf::from("/flag.db"))
        );
    }

    #[test]
    fn bad_values_are_config_errors() {
        let h = ("HOME", "/h");
        for (k, v, msg) in [
            (
                "ZENCRYPT_SIGNUP",
                "maybe",
                "ZENCRYPT_SIGNUP must be open, admin-only or closed, not 'maybe'",
            ),
            (
                "ZENCRYPT_JWT_SECRET",
                "short",
                "ZENCRYPT_JWT_SECRET is too short: it must be at least 32 bytes",
            ),
            (
                "ZENCRYPT_SESSION_TTL",
                "soon",
                "ZENCRYPT_SESSION_TTL: invalid duration 'soon' (use e.g. 8h)",
            ),
            (
                "ZENCRYPT_ARGON2_MEMORY_KIB",
                "2",
                "ZENCRYPT_ARGON2_MEMORY_KIB must be a whole number from 8 to 262144, not '2'",
            ),
        ] {
            let e = load(&Flags::default(), &env(&[h, (k, v)])).unwrap_err();
            assert_eq!(e.to_string(), msg);
            assert_eq!(e.exit_code(), 2);
        }
    }

    #[test]
    fn missing_env_file_is_an_error() {
        let flags = Flags {
            env_file: Some(PathBuf::from("/nonexistent/x.env")),
            ..Flags::default()
        };
        let e = load(&flags, &env(&[("HOME", "/h")])).unwrap_err();
        assert_eq!(e.to_string(), "--env-file /nonexistent/x.env: no such file");
    }

    #[test]
    fn no_color_turns_auto_off() {
        let c = load(
            &Flags::default(),
            &env(&[("HOME", "/h"), ("NO_COLOR", "1")]),
        )
        .unwrap();
        assert_eq!(c.color, ColorChoice::Never);
        let flags = Flags {
            color: Some(ColorChoice::Always),
            ..Flags::default()
        };
        let c = load(&flags, &env(&[("HOME", "/h"), ("NO_COLOR", "1")])).unwrap();
        assert_eq!(c.color, ColorChoice::Always);
    }
}
