//! Connection URLs: the parameters zencrypt handles itself (the password, `sslmode`,
//! `sslrootcert`) are taken out before the driver parses the rest, and the form shown in
//! messages has no password.
//!
//! The URL is split as the driver splits it: everything before the first `@` is the user
//! and password, then the hosts up to `/` or `?`, the database name, and `&`-separated
//! query parameters.

use std::path::PathBuf;

/// A URL taken apart.
#[derive(PartialEq, Eq)]
pub(crate) struct Url {
    /// For the driver: no password, `sslmode` or `sslrootcert`.
    pub(crate) driver: String,
    /// For messages: no password.
    pub(crate) redacted: String,
    /// The password in the URL (user info or a `password` parameter), percent-decoded.
    pub(crate) password: Option<Vec<u8>>,
    /// The `sslmode` parameter.
    pub(crate) sslmode: Option<String>,
    /// The `sslrootcert` parameter.
    pub(crate) sslrootcert: Option<PathBuf>,
}

impl std::fmt::Debug for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Url")
            .field("redacted", &self.redacted)
            .field("sslmode", &self.sslmode)
            .field("sslrootcert", &self.sslrootcert)
            .finish_non_exhaustive()
    }
}

/// The schemes accepted.
const SCHEMES: [&str; 2] = ["postgres://", "postgresql://"];

/// Why a URL was not taken.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Not a `postgres://` or `postgresql://` URL.
    NotOurs,
    /// A second `@` in the host part: a password with a raw `@` in it.
    RawAt,
}

impl Refused {
    /// What to do about it.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Refused::NotOurs => "give a postgres:// or postgresql:// URL",
            Refused::RawAt => {
                "the URL has a second @ (write an @ in the user name or password as %40)"
            }
        }
    }
}

/// Takes `url` apart.
pub(crate) fn parse(url: &str) -> Result<Url, Refused> {
    let scheme = SCHEMES
        .into_iter()
        .find(|s| url.starts_with(s))
        .ok_or(Refused::NotOurs)?;
    let rest = &url[scheme.len()..];
    let (user, mut password, rest) = match rest.find('@') {
        Some(at) => {
            let creds = &rest[..at];
            let (user, password) = match creds.split_once(':') {
                Some((u, p)) => (u, Some(percent_decode(p))),
                None => (creds, None),
            };
            (Some(user), password, &rest[at + 1..])
        }
        None => (None, None, rest),
    };
    // The driver takes the user info up to the first @; a second one before the
    // parameters means a password with a raw @, part of which would show as the host.
    if user.is_some() && rest[..rest.find('?').unwrap_or(rest.len())].contains('@') {
        return Err(Refused::RawAt);
    }
    let (base, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let mut driver_params = Vec::new();
    let mut shown_params = Vec::new();
    let (mut sslmode, mut sslrootcert) = (None, None);
    for param in query.into_iter().flat_map(|q| q.split('&')) {
        let key = param.split_once('=').map(|(k, v)| (percent_decode(k), v));
        match key {
            Some((k, v)) if k == b"password" => password = Some(percent_decode(v)),
            Some((k, v)) if k == b"sslmode" => {
                sslmode = Some(String::from_utf8_lossy(&percent_decode(v)).into_owned());
                shown_params.push(param);
            }
            Some((k, v)) if k == b"sslrootcert" => {
                sslrootcert = Some(PathBuf::from(
                    String::from_utf8_lossy(&percent_decode(v)).into_owned(),
                ));
                shown_params.push(param);
            }
            _ => {
                driver_params.push(param);
                shown_params.push(param);
            }
        }
    }
    let assemble = |params: &[&str]| {
        let mut s = String::from(scheme);
        if let Some(user) = user {
            s.push_str(user);
            s.push('@');
        }
        s.push_str(base);
        if !params.is_empty() {
            s.push('?');
            s.push_str(&params.join("&"));
        }
        s
    };
    Ok(Url {
        driver: assemble(&driver_params),
        redacted: assemble(&shown_params),
        password,
        sslmode,
        sslrootcert,
    })
}

/// The URL with any password removed, for messages; a string that is not a URL of ours
/// is shown as its scheme only (it may be a key=value string holding a password).
pub(crate) fn redact(url: &str) -> String {
    match parse(url) {
        Ok(u) => u.redacted,
        Err(_) => url.split_once("://").map_or_else(
            || "(not a postgres:// URL)".to_string(),
            |(s, _)| format!("{s}://…"),
        ),
    }
}

/// `%XX` sequences decoded; a `%` not followed by two hex digits stays as it is.
fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = hex {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_taken_out_of_the_user_info() {
        let u = parse("postgres://alice:s%40cret@db.example:5433/vault?sslmode=require")
            .expect("a URL");
        assert_eq!(u.password.as_deref(), Some(&b"s@cret"[..]));
        assert_eq!(
            u.redacted,
            "postgres://alice@db.example:5433/vault?sslmode=require"
        );
        assert_eq!(u.driver, "postgres://alice@db.example:5433/vault");
        assert_eq!(u.sslmode.as_deref(), Some("require"));
        assert_eq!(u.sslrootcert, None);
        assert!(!format!("{u:?}").contains("cret"));
    }

    #[test]
    fn the_password_is_taken_out_of_the_parameters() {
        let u = parse(
            "postgresql:///vault?host=/run/postgresql&password=pw%26x&sslmode=verify-full&sslrootcert=/etc/ca.pem&application_name=x",
        )
        .expect("a URL");
        assert_eq!(u.password.as_deref(), Some(&b"pw&x"[..]));
        assert_eq!(
            u.redacted,
            "postgresql:///vault?host=/run/postgresql&sslmode=verify-full&sslrootcert=/etc/ca.pem&application_name=x"
        );
        assert_eq!(
            u.driver,
            "postgresql:///vault?host=/run/postgresql&application_name=x"
        );
        assert_eq!(u.sslmode.as_deref(), Some("verify-full"));
        assert_eq!(u.sslrootcert, Some(PathBuf::from("/etc/ca.pem")));
    }

    #[test]
    fn urls_without_credentials_stay_as_they_are() {
        for url in [
            "postgres://127.0.0.1/db",
            "postgres://u@h1:1,h2:2/db",
            "postgresql://%2Fvar%2Frun%2Fpostgresql/db",
            "postgres://",
        ] {
            let u = parse(url).expect("a URL");
            assert_eq!((u.driver.as_str(), u.redacted.as_str()), (url, url));
            assert_eq!(u.password, None);
        }
        assert_eq!(parse("host=x password=y"), Err(Refused::NotOurs));
        assert_eq!(parse("mysql://a:b@c/d"), Err(Refused::NotOurs));
    }

    #[test]
    fn what_is_not_a_url_of_ours_is_not_shown() {
        assert_eq!(redact("host=x password=y"), "(not a postgres:// URL)");
        assert_eq!(redact("mysql://a:b@c/d"), "mysql://…");
        assert_eq!(redact("postgres://a:b@c/d"), "postgres://a@c/d");
    }

    #[test]
    fn a_raw_at_in_the_password_is_refused_and_not_shown() {
        assert_eq!(parse("postgres://u:p@ss@host/db"), Err(Refused::RawAt));
        assert_eq!(redact("postgres://u:p@ss@host/db"), "postgres://…");
        assert_eq!(parse("postgres://u:p@ss/x@host/db"), Err(Refused::RawAt));
        // An @ after the host is a parameter's business.
        assert!(parse("postgres://u@host/db?options=a@b").is_ok());
    }

    #[test]
    fn percent_decoding_keeps_stray_percent_signs() {
        assert_eq!(percent_decode("a%2Fb"), b"a/b");
        assert_eq!(percent_decode("100%"), b"100%");
        assert_eq!(percent_decode("%zz%4"), b"%zz%4");
    }
}
