//! PostgreSQL connection URLs (`postgres://user@host:port/dbname?sslmode=...`) and the
//! `~/.pgpass` file, read the way libpq reads them, so that a team's existing settings
//! work unchanged.

use url::Url;

/// The parts of a PostgreSQL URL zencrypt needs to look a password up and to choose TLS.
#[derive(Clone, PartialEq, Eq)]
pub struct DbUrl {
    user: Option<String>,
    password: bool,
    host: Option<String>,
    port: u16,
    dbname: Option<String>,
    sslmode: Option<String>,
}

impl std::fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbUrl")
            .field("user", &self.user)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("dbname", &self.dbname)
            .field("sslmode", &self.sslmode)
            .finish_non_exhaustive()
    }
}

/// The longest URL accepted, in bytes.
pub const MAX_URL: usize = 4096;

impl DbUrl {
    /// Parses a `postgres://` or `postgresql://` URL; the reason for a refusal is one
    /// short phrase.
    pub fn parse(text: &str) -> Result<DbUrl, String> {
        if text.len() > MAX_URL {
            return Err(format!("longer than {MAX_URL} bytes"));
        }
        let url = Url::parse(text).map_err(|e| e.to_string())?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err("the scheme must be postgres:// or postgresql://".into());
        }
        let decode = |s: &str| -> Result<String, String> {
            percent_decode(s).ok_or_else(|| "a part of it is not valid UTF-8".to_string())
        };
        let mut out = DbUrl {
            user: Some(decode(url.username())?).filter(|u| !u.is_empty()),
            password: url.password().is_some(),
            host: url
                .host_str()
                .filter(|h| !h.is_empty())
                .map(decode)
                .transpose()?,
            port: url.port().unwrap_or(5432),
            dbname: Some(decode(url.path().trim_start_matches('/'))?).filter(|d| !d.is_empty()),
            sslmode: None,
        };
        for (k, v) in url.query_pairs() {
            match &*k {
                "user" => out.user = Some(v.into_owned()),
                "password" => out.password = true,
                "host" => out.host = Some(v.into_owned()),
                "port" => {
                    out.port = v
                        .parse()
                        .map_err(|_| format!("port '{}' is not a number", v.escape_debug()))?
                }
                "dbname" => out.dbname = Some(v.into_owned()),
                "sslmode" => match &*v {
                    "disable" | "require" | "verify-full" => out.sslmode = Some(v.into_owned()),
                    other => {
                        return Err(format!(
                            "sslmode '{}' is not supported (use disable, require or verify-full)",
                            other.escape_debug()
                        ));
                    }
                },
                _ => {}
            }
        }
        Ok(out)
    }

    /// Whether the URL carries a password (in its user part or as a parameter).
    pub fn has_password(&self) -> bool {
        self.password
    }

    /// The user named in the URL.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The host: a name, an address, or a Unix socket directory (`None`: the default
    /// socket).
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The database named in the URL.
    pub fn dbname(&self) -> Option<&str> {
        self.dbname.as_deref()
    }

    /// The `sslmode` parameter, when given.
    pub fn sslmode(&self) -> Option<&str> {
        self.sslmode.as_deref()
    }

    /// Whether the server is on this machine (a Unix socket or a loopback address), where
    /// TLS is off unless asked for; elsewhere it is required by default.
    pub fn is_local(&self) -> bool {
        match self.host.as_deref() {
            None => true,
            Some(h) if h.starts_with('/') => true,
            Some("localhost") => true,
            Some(h) => h
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback()),
        }
    }
}

/// Decodes `%XX` escapes; `None` when the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Finds the password for a connection in the contents of a `.pgpass` file: lines of
/// `hostname:port:database:username:password`, where `*` matches anything, `\:` and `\\`
/// stand for `:` and `\`, and `#` starts a comment line; the first matching line wins.
/// Connections over a Unix socket match the hostname `localhost`, as in libpq.
pub fn pgpass_lookup(
    contents: &str,
    host: Option<&str>,
    port: u16,
    dbname: &str,
    user: &str,
) -> Option<String> {
    let host = match host {
        None => "localhost",
        Some(h) if h.starts_with('/') => "localhost",
        Some(h) => h,
    };
    let port = port.to_string();
    let wanted = [host, port.as_str(), dbname, user];
    for line in contents.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let fields = split_pgpass(line);
        if fields.len() < 5 {
            continue;
        }
        if fields[..4]
            .iter()
            .zip(wanted)
            .all(|(f, w)| f == "*" || f == w)
        {
            return Some(fields[4..].join(":"));
        }
    }
    None
}

/// Splits a `.pgpass` line at unescaped colons, resolving `\:` and `\\`.
fn split_pgpass(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(next), Some(f)) = (chars.next(), fields.last_mut()) {
                    f.push(next);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => {
                if let Some(f) = fields.last_mut() {
                    f.push(c);
                }
            }
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_a_url() {
        let u =
            DbUrl::parse("postgres://alice@db.example.com:6543/team?sslmode=verify-full").unwrap();
        assert_eq!(u.user(), Some("alice"));
        assert_eq!(u.host(), Some("db.example.com"));
        assert_eq!(u.port(), 6543);
        assert_eq!(u.dbname(), Some("team"));
        assert_eq!(u.sslmode(), Some("verify-full"));
        assert!(!u.has_password());
        assert!(!u.is_local());
        let s = DbUrl::parse("postgresql:///vault?host=/var/run/postgresql&user=bob").unwrap();
        assert_eq!(s.host(), Some("/var/run/postgresql"));
        assert_eq!(s.user(), Some("bob"));
        assert_eq!(s.port(), 5432);
        assert!(s.is_local());
        assert!(DbUrl::parse("postgres://127.0.0.1/x").unwrap().is_local());
        assert!(DbUrl::parse("postgres://[::1]:5432/x").unwrap().is_local());
    }

    #[test]
    fn passwords_are_noticed_wherever_they_are() {
        assert!(
            DbUrl::parse("postgres://a:secret@h/d")
                .unwrap()
                .has_password()
        );
        assert!(
            DbUrl::parse("postgres://a@h/d?password=x")
                .unwrap()
                .has_password()
        );
        let debug = format!("{:?}", DbUrl::parse("postgres://a:secret@h/d").unwrap());
        assert!(!debug.contains("secret"), "{debug}");
    }

    #[test]
    fn bad_urls_are_refused() {
        assert_eq!(
            DbUrl::parse("postgres://h/d?sslmode=prefer").unwrap_err(),
            "sslmode 'prefer' is not supported (use disable, require or verify-full)"
        );
        assert_eq!(
            DbUrl::parse("mysql://h/d").unwrap_err(),
            "the scheme must be postgres:// or postgresql://"
        );
        assert_eq!(
            DbUrl::parse("postgres://h/d?port=x").unwrap_err(),
            "port 'x' is not a number"
        );
    }

    #[test]
    fn pgpass_matches_like_libpq() {
        let file = "# comment\n\
                    other:5432:*:alice:nope\n\
                    db.example.com:5432:team:alice:pa\\:ss\\\\word\n\
                    *:*:*:bob:bobs:colon\n\
                    localhost:5432:*:carol:sock\n";
        assert_eq!(
            pgpass_lookup(file, Some("db.example.com"), 5432, "team", "alice").as_deref(),
            Some("pa:ss\\word")
        );
        assert_eq!(
            pgpass_lookup(file, Some("db.example.com"), 5433, "team", "alice"),
            None
        );
        assert_eq!(
            pgpass_lookup(file, Some("x"), 1, "y", "bob").as_deref(),
            Some("bobs:colon")
        );
        assert_eq!(
            pgpass_lookup(file, Some("/run/postgresql"), 5432, "v", "carol").as_deref(),
            Some("sock")
        );
        assert_eq!(pgpass_lookup("short:line", None, 5432, "d", "u"), None);
    }
}
