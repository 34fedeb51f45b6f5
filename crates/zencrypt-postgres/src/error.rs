//! PostgreSQL errors as storage errors: by SQLSTATE, naming the location (a URL without
//! its password) and the schema objects involved, never a stored value.

use std::error::Error as _;
use std::io;

use postgres::error::{DbError, SqlState};
use secrecy::{ExposeSecret, SecretString};
use zencrypt_core::storage::StoreError;

/// Removes the password from the texts of errors that did not come from the server (the
/// driver's own messages never quote it; this makes sure).
#[derive(Default)]
pub(crate) struct Redactor {
    password: Option<SecretString>,
}

impl Redactor {
    /// Redacts `password` (as given and as its bytes would print).
    pub(crate) fn new(password: Option<&[u8]>) -> Redactor {
        Redactor {
            password: password
                .filter(|p| !p.is_empty())
                .map(|p| SecretString::from(String::from_utf8_lossy(p).into_owned())),
        }
    }

    /// `text` with every occurrence of the password replaced.
    pub(crate) fn clean(&self, text: String) -> String {
        match &self.password {
            Some(p) if text.contains(p.expose_secret()) => text.replace(p.expose_secret(), "****"),
            _ => text,
        }
    }
}

/// The driver's message and the chain of causes under it, password removed.
fn chain(e: &postgres::Error, redactor: &Redactor) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    redactor.clean(text)
}

/// The I/O error at the root of `e`, if there is one.
fn io_kind(e: &postgres::Error) -> Option<io::ErrorKind> {
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            return Some(io.kind());
        }
        source = s.source();
    }
    None
}

/// The schema objects a server error names (table, column, constraint), for messages.
fn objects(db: &DbError) -> String {
    let mut out = String::new();
    for (what, name) in [
        ("table", db.table()),
        ("column", db.column()),
        ("constraint", db.constraint()),
    ] {
        if let Some(name) = name {
            out.push_str(&format!(", {what} {name}"));
        }
    }
    out
}

/// What a SQLSTATE means, in words that never carry a value.
fn describe(code: &SqlState) -> &'static str {
    match code.code() {
        "25P02" => "an earlier statement of this transaction failed, so it was rolled back",
        "42501" => "permission denied: grant the database user rights on zencrypt's tables",
        "42P01" => "a table of the schema is missing",
        "42703" => "a column of the schema is missing",
        "57014" => "the statement was cancelled or took longer than the statement timeout",
        "57P01" | "57P02" => "the server is shutting down",
        "40003" => "the server could not tell whether the statement completed",
        c => match c.get(..2).unwrap_or("") {
            "08" => "the connection failed",
            "0A" => "the server does not support a feature zencrypt uses",
            "22" => "the server refused a value (out of range or malformed)",
            "25" => "the transaction is in a state that does not allow this",
            "28" => "the server refused the login",
            "3F" => "the schema does not exist",
            "42" => "the server refused the statement (syntax or access rule)",
            "53" => "the server ran short of a resource",
            "54" => "a limit of the server was exceeded",
            "55" => "an object is not in the state this needs",
            "57" => "an operator intervened",
            "58" => "the server hit a system error",
            "XX" => "the server hit an internal error",
            _ => "the server reported an error",
        },
    }
}

/// Maps an error of a statement (or of BEGIN/COMMIT) on an open connection.
pub(crate) fn statement(location: &str, e: &postgres::Error, redactor: &Redactor) -> StoreError {
    let location = location.to_string();
    let Some(db) = e.as_db_error() else {
        let message = if e.is_closed() {
            "the connection to the server was lost (a change being committed may or may not \
             have been)"
                .to_string()
        } else {
            chain(e, redactor)
        };
        return StoreError::Other { location, message };
    };
    let code = db.code();
    match code.code() {
        "40001" => StoreError::Retryable {
            location,
            reason: "serialization failure".into(),
        },
        "40P01" => StoreError::Retryable {
            location,
            reason: "deadlock detected".into(),
        },
        "55P03" => StoreError::Busy { location },
        "23505" => StoreError::Duplicate {
            what: "a row with the same unique value".into(),
        },
        "23503" => StoreError::Reference {
            what: db.constraint().unwrap_or("a foreign key").to_string(),
        },
        "23514" => StoreError::Invalid {
            what: db.constraint().unwrap_or("a check").to_string(),
        },
        "23502" => StoreError::Invalid {
            what: match (db.table(), db.column()) {
                (Some(t), Some(c)) => format!("NOT NULL on {t}.{c}"),
                _ => "a NOT NULL rule".to_string(),
            },
        },
        "53100" => StoreError::Full { location },
        "25006" => StoreError::ReadOnly { location },
        "3D000" => StoreError::Missing { location },
        "XX001" | "XX002" => StoreError::Corrupt { location },
        "58030" => StoreError::Io { location },
        c => StoreError::Other {
            message: format!("{} (SQLSTATE {c}{})", describe(code), objects(db)),
            location,
        },
    }
}

/// Maps an error of connecting, with what to do about it.
pub(crate) fn connect(
    location: &str,
    e: &postgres::Error,
    redactor: &Redactor,
    timeout_secs: u64,
) -> StoreError {
    let unopenable = |reason: String| StoreError::Unopenable {
        location: location.to_string(),
        reason,
    };
    if let Some(db) = e.as_db_error() {
        return match db.code().code() {
            "3D000" => StoreError::Missing {
                location: location.to_string(),
            },
            "28P01" | "28000" => unopenable(
                "the server refused the login; check the user name and the password, and that \
                 the server's pg_hba.conf admits this client"
                    .into(),
            ),
            "53300" => unopenable(
                "the server has no free connection slot; try again later, or raise its \
                 max_connections"
                    .into(),
            ),
            "57P03" => unopenable(
                "the server is starting up, shutting down or recovering; try again shortly".into(),
            ),
            c => unopenable(format!(
                "the server refused the connection: {} (SQLSTATE {c})",
                describe(db.code())
            )),
        };
    }
    let text = chain(e, redactor);
    if text.starts_with("error performing TLS handshake") {
        return unopenable(format!(
            "{text}; for a server whose certificate a private CA signed give sslrootcert=FILE \
             (its CA certificate, PEM), or sslmode=require to encrypt without verifying the server"
        ));
    }
    if text.starts_with("authentication error") {
        return unopenable(format!(
            "{text}; the server asks for a password: give the database password"
        ));
    }
    match io_kind(e) {
        Some(io::ErrorKind::ConnectionRefused) => unopenable(
            "nothing accepts connections there; check that PostgreSQL runs and the URL's host \
             and port"
                .into(),
        ),
        Some(io::ErrorKind::NotFound) => unopenable(
            "no server socket there; check that PostgreSQL runs and the socket directory (host=)"
                .into(),
        ),
        Some(io::ErrorKind::TimedOut) => unopenable(format!(
            "the server did not answer within {timeout_secs} s; check the host, the port and the \
             network"
        )),
        Some(io::ErrorKind::PermissionDenied) => {
            unopenable("permission denied on the server's socket".into())
        }
        _ => unopenable(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_cleaned_from_texts() {
        let r = Redactor::new(Some(b"hunter2"));
        assert_eq!(
            r.clean("bad hunter2 and hunter2".into()),
            "bad **** and ****"
        );
        assert_eq!(r.clean("nothing here".into()), "nothing here");
        let none = Redactor::new(Some(b""));
        assert_eq!(none.clean("text".into()), "text");
    }

    #[test]
    fn states_are_described_without_values() {
        assert_eq!(
            describe(&SqlState::NUMERIC_VALUE_OUT_OF_RANGE),
            "the server refused a value (out of range or malformed)"
        );
        assert_eq!(
            describe(&SqlState::IN_FAILED_SQL_TRANSACTION),
            "an earlier statement of this transaction failed, so it was rolled back"
        );
    }
}
