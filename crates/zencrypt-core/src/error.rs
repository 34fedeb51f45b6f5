//! The library's error type and the one place where errors map to exit codes.
//!
//! Messages are short, lowercase and never contain a secret: no password, token, key
//! material or plaintext is ever formatted into an error.

/// Stable process exit codes (the README, "Exit codes").
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// Runtime error: I/O, database unreachable or corrupt, internal.
    pub const RUNTIME: i32 = 1;
    /// Usage: bad arguments or input, no terminal for the shell.
    pub const USAGE: i32 = 2;
    /// Authentication: no/expired/revoked session, wrong password.
    pub const AUTH: i32 = 3;
    /// Permission denied by role.
    pub const DENIED: i32 = 4;
    /// Not found.
    pub const NOT_FOUND: i32 = 5;
    /// Conflict: name taken, version mismatch, disabled key.
    pub const CONFLICT: i32 = 6;
    /// Integrity: decryption failed, tampering, broken audit chain.
    pub const INTEGRITY: i32 = 7;
    /// Interrupted by Ctrl-C (128 + SIGINT, as shells report it; SIGTERM gives 143 and
    /// SIGHUP 129).
    pub const INTERRUPTED: i32 = 130;
}

/// Everything that can go wrong in zencrypt's domain code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad arguments or input.
    #[error("{0}")]
    Usage(String),
    /// A prompt was needed but there is no terminal to ask on.
    #[error("{what} is needed and there is no terminal to ask for it")]
    NeedsInput {
        /// What was missing, e.g. "a password".
        what: String,
        /// The flag that supplies it.
        flag: String,
    },
    /// The interactive shell was started without a terminal.
    #[error("interactive mode needs a terminal; run `zencrypt --help` for one-shot commands")]
    NoTerminal,
    /// Binary output was about to be written to a terminal.
    #[error("refusing to write binary ciphertext to a terminal")]
    BinaryToTerminal,
    /// Plaintext that is not text (or too much of it) was about to be written to a terminal.
    #[error("{0}")]
    PlaintextToTerminal(String),
    /// The user cancelled a prompt (Ctrl-C or end of input).
    #[error("cancelled")]
    Cancelled,
    /// No session token is available.
    #[error("not logged in")]
    NotLoggedIn,
    /// The session token is malformed, forged or signed with another secret.
    #[error("invalid session token")]
    InvalidToken,
    /// The session has expired.
    #[error("session has expired")]
    SessionExpired,
    /// The session was logged out or revoked.
    #[error("session has been revoked")]
    SessionRevoked,
    /// The account behind the session or login is disabled.
    #[error("account is disabled")]
    AccountDisabled,
    /// Login failed: the same message whether the user exists or not.
    #[error("invalid username or password")]
    InvalidCredentials,
    /// Account recovery failed: the same message whether the user exists, has a recovery
    /// key or not.
    #[error("invalid username or recovery key")]
    InvalidRecoveryKey,
    /// The current password given to `passwd` is wrong.
    #[error("invalid password")]
    InvalidPassword,
    /// A service account tried something other than reading what it was granted.
    #[error("permission denied: a service account only reads the records granted to it ({0})")]
    ServiceDenied(String),
    /// A service token that was revoked or has expired.
    #[error("the service token {0}")]
    ServiceTokenEnded(String),
    /// The user's role does not allow the action.
    #[error("permission denied: {action} requires the {needs} role")]
    Denied {
        /// The action that was refused.
        action: String,
        /// The least role that may perform it.
        needs: String,
    },
    /// Only a group's manager changes its members or hands it over.
    #[error(
        "permission denied: only the manager of group '@{group}' ({manager}) changes its \
         members or hands it over"
    )]
    NotManager {
        /// The group.
        group: String,
        /// Its manager.
        manager: String,
    },
    /// Sign-up is restricted by `ZENCRYPT_SIGNUP`.
    #[error("sign-up is {0}")]
    SignupRestricted(String),
    /// A user, session or other object does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A name is taken or the operation conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// Tampering or a broken integrity check.
    #[error("{0}")]
    Integrity(String),

    /// A user's public key is not the one pinned for them.
    #[error(
        "the public key of '{user}' has changed: you pinned {pinned}, the database now holds {current}; \
         compare fingerprints with {user} through another channel before trusting the new key"
    )]
    KeyChanged {
        /// Whose key.
        user: String,
        /// The pinned fingerprint.
        pinned: String,
        /// The fingerprint in the database.
        current: String,
    },
    /// The audit chain failed verification.
    #[error("audit chain is broken at seq {seq}: {reason}")]
    AuditChainBroken {
        /// The first sequence number that failed.
        seq: i64,
        /// What was wrong with it.
        reason: String,
    },
    /// The database shows an audit chain shorter than, or diverging from, one this
    /// client has seen: it was rolled back, truncated or replaced by an older copy.
    #[error(
        "the database's audit log {what} (this client has seen it up to seq {seen}): it was rolled back, truncated or replaced by an older copy"
    )]
    RolledBack {
        /// The highest seq this client saw.
        seen: i64,
        /// What the database shows instead.
        what: String,
    },
    /// An account made by an administrator must set its own password first.
    #[error("this account must change its password before anything else")]
    PasswordChangeRequired,
    /// The configuration is invalid.
    #[error("{0}")]
    Config(String),
    /// A `.env` file that someone else could have written.
    #[error("refusing to load {path}: {reason}")]
    UntrustedEnvFile {
        /// The file, as named.
        path: String,
        /// Why it is not trusted.
        reason: String,
        /// Whether it was named with `--env-file` (rather than found as `./.env`).
        explicit: bool,
    },
    /// There is no database at the configured path, and the command may not create one.
    #[error("no database at {location}")]
    NoDatabase {
        /// The path or URL.
        location: String,
    },
    /// The database could not be used.
    #[error("{message}")]
    Database {
        /// A paragraph naming the path and what to do.
        message: String,
    },
    /// Another command held the database too long, or a concurrent command won a race
    /// this one lost more than the write path retries; nothing was changed.
    #[error("{message}")]
    Busy {
        /// What happened and what to do.
        message: String,
        /// A lost race (serialization failure or deadlock) rather than a lock wait.
        retryable: bool,
    },
    /// A file could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the path.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A live record already has this name.
    #[error("a live record named '{0}' already exists")]
    NameTaken(String),
    /// A command zencrypt was asked to run could not be started (`run`): exit 127 if it
    /// was not found, 126 if it may not be run, as shells do.
    #[error("{message}")]
    Child {
        /// What failed, naming the command.
        message: String,
        /// The exit code.
        code: i32,
    },
    /// An internal error that should not happen.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Shorthand for results in zencrypt's domain code.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The process exit code for this error (see [`exit`]).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_)
            | Error::NeedsInput { .. }
            | Error::NoTerminal
            | Error::Config(_)
            | Error::UntrustedEnvFile { .. } => exit::USAGE,
            Error::Cancelled | Error::BinaryToTerminal | Error::PlaintextToTerminal(_) => {
                exit::USAGE
            }
            Error::NotLoggedIn
            | Error::InvalidToken
            | Error::SessionExpired
            | Error::SessionRevoked
            | Error::AccountDisabled
            | Error::InvalidCredentials
            | Error::InvalidRecoveryKey
            | Error::InvalidPassword
            | Error::PasswordChangeRequired => exit::AUTH,
            Error::Denied { .. }
            | Error::NotManager { .. }
            | Error::SignupRestricted(_)
            | Error::ServiceDenied(_) => exit::DENIED,
            Error::ServiceTokenEnded(_) => exit::AUTH,
            Error::NotFound(_) => exit::NOT_FOUND,
            Error::Conflict(_) | Error::NameTaken(_) => exit::CONFLICT,
            Error::Integrity(_)
            | Error::KeyChanged { .. }
            | Error::AuditChainBroken { .. }
            | Error::RolledBack { .. } => exit::INTEGRITY,
            Error::NoDatabase { .. }
            | Error::Database { .. }
            | Error::Busy { .. }
            | Error::Io { .. }
            | Error::Internal(_) => exit::RUNTIME,
            Error::Child { code, .. } => *code,
        }
    }

    /// A stable machine-readable code for `--json` errors and audit details.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Usage(_) => "usage",
            Error::NeedsInput { .. } => "needs_input",
            Error::NoTerminal => "no_terminal",
            Error::Cancelled => "cancelled",
            Error::BinaryToTerminal | Error::PlaintextToTerminal(_) => "binary_to_terminal",
            Error::NotLoggedIn => "not_logged_in",
            Error::InvalidToken => "invalid_token",
            Error::SessionExpired => "session_expired",
            Error::SessionRevoked => "session_revoked",
            Error::AccountDisabled => "account_disabled",
            Error::InvalidCredentials => "invalid_credentials",
            Error::InvalidRecoveryKey => "invalid_recovery_key",
            Error::InvalidPassword => "invalid_password",
            Error::Denied { .. } | Error::NotManager { .. } | Error::ServiceDenied(_) => {
                "permission_denied"
            }
            Error::ServiceTokenEnded(_) => "service_token_ended",
            Error::SignupRestricted(_) => "signup_restricted",
            Error::NotFound(_) => "not_found",
            Error::Conflict(_) | Error::NameTaken(_) => "conflict",
            Error::Integrity(_) => "integrity",
            Error::KeyChanged { .. } => "key_changed",
            Error::AuditChainBroken { .. } => "audit_chain_broken",
            Error::RolledBack { .. } => "rolled_back",
            Error::PasswordChangeRequired => "password_change_required",
            Error::Config(_) => "config",
            Error::UntrustedEnvFile { .. } => "untrusted_env_file",
            Error::NoDatabase { .. } => "no_database",
            Error::Database { .. } => "database",
            Error::Busy { .. } => "busy",
            Error::Io { .. } => "io",
            Error::Child { .. } => "command_failed",
            Error::Internal(_) => "internal",
        }
    }

    /// What the user can do next, when there is something useful to say.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::NeedsInput { flag, .. } => Some(format!("pass {flag}")),
            Error::BinaryToTerminal => {
                Some("use -o FILE, pipe the output, or add --armor for text".into())
            }
            Error::PlaintextToTerminal(_) => Some("use -o FILE or pipe the output".into()),
            Error::NotLoggedIn | Error::SessionExpired | Error::SessionRevoked => {
                Some("run `zencrypt login`".into())
            }
            Error::InvalidToken => Some(
                "run `zencrypt login` for a new session (or unset ZENCRYPT_TOKEN if it is stale)"
                    .into(),
            ),
            Error::UntrustedEnvFile { path, explicit, .. } => Some(if *explicit {
                format!("fix its owner or mode (chown, chmod go-w {path})")
            } else {
                format!(
                    "fix its owner or mode (chown, chmod go-w {path}), or pass --env-file with a file of your own"
                )
            }),
            Error::NoDatabase { .. } => Some(
                "run `zencrypt signup` to create one, or point --db/ZENCRYPT_DB at an existing vault"
                    .into(),
            ),
            Error::NameTaken(name) => Some(format!(
                "`zencrypt data update {name}` replaces its value (the old one stays in `data history`), or choose another name"
            )),
            Error::AccountDisabled => Some("ask an administrator to enable the account".into()),
            Error::InvalidRecoveryKey => Some(
                "use the newest recovery key shown for this account; without it or the password, nobody can recover the data"
                    .into(),
            ),
            Error::SignupRestricted(_) => {
                Some("ask an administrator to run `zencrypt user add`".into())
            }
            Error::Denied { .. } => Some("ask an administrator for a role that allows it".into()),
            Error::NotManager { manager, .. } => {
                Some(format!("ask {manager}"))
            }
            Error::ServiceDenied(_) => Some(
                "`data get`, `run` and `inject` read what its owner granted (`zencrypt service grant`)"
                    .into(),
            ),
            Error::ServiceTokenEnded(_) => Some(
                "its owner issues a new one: `zencrypt service token NAME`".into(),
            ),
            Error::RolledBack { .. } => Some(
                "if the database was restored from a backup on purpose, run `zencrypt audit accept-head` (audited); otherwise restore the newest copy and investigate"
                    .into(),
            ),
            Error::PasswordChangeRequired => {
                Some("run `zencrypt passwd` to choose your own password".into())
            }
            Error::AuditChainBroken { .. } => Some(
                "the audit log was changed outside zencrypt; restore it from a backup and investigate"
                    .into(),
            ),
            _ => None,
        }
    }

    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Whether this error is a role denial (audited with outcome `denied`).
    pub fn is_denial(&self) -> bool {
        matches!(
            self,
            Error::Denied { .. }
                | Error::NotManager { .. }
                | Error::SignupRestricted(_)
                | Error::ServiceDenied(_)
        )
    }
}
