//! Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP): the secret comes from an
//! `otpauth://totp/...` URI, as authenticator QR codes carry it, or from a bare base32
//! secret (SHA-1, 6 digits, 30 seconds).

use hmac::{Hmac, KeyInit, Mac};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The hash a TOTP secret is used with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// HMAC-SHA-1 (what nearly every service uses).
    Sha1,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-512.
    Sha512,
}

impl Algorithm {
    fn name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha512 => "SHA512",
        }
    }
}

/// A TOTP generator.
pub struct Totp {
    secret: Zeroizing<Vec<u8>>,
    /// Hash.
    pub algorithm: Algorithm,
    /// Digits of a code (6-8).
    pub digits: u32,
    /// Seconds a code is valid (the step).
    pub period: u64,
    /// The label of the URI (issuer:account), if any.
    pub label: Option<String>,
}

impl std::fmt::Debug for Totp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Totp")
            .field("secret", &"[redacted]")
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .field("period", &self.period)
            .field("label", &self.label)
            .finish()
    }
}

fn bad(what: impl std::fmt::Display) -> Error {
    Error::Usage(format!("not a TOTP secret: {what}"))
}

/// Decodes base32 as authenticators show it: any case, spaces and dashes ignored,
/// padding optional.
fn base32(text: &str) -> Result<Zeroizing<Vec<u8>>> {
    let clean = Zeroizing::new(
        text.chars()
            .filter(|c| !matches!(c, ' ' | '-' | '='))
            .map(|c| c.to_ascii_uppercase())
            .collect::<String>(),
    );
    if clean.is_empty() {
        return Err(bad("the secret is empty"));
    }
    let decoded = data_encoding::BASE32_NOPAD
        .decode(clean.as_bytes())
        .map_err(|_| bad("the secret is not base32 (A-Z and 2-7)"))?;
    let decoded = Zeroizing::new(decoded);
    if decoded.len() < 10 {
        return Err(bad("the secret is shorter than 80 bits"));
    }
    Ok(decoded)
}

impl Totp {
    /// Parses an `otpauth://totp/...` URI or a bare base32 secret.
    pub fn parse(text: &str) -> Result<Totp> {
        let text = text.trim();
        if !text.to_ascii_lowercase().starts_with("otpauth:") {
            return Ok(Totp {
                secret: base32(text)?,
                algorithm: Algorithm::Sha1,
                digits: 6,
                period: 30,
                label: None,
            });
        }
        let url = url::Url::parse(text).map_err(|_| bad("the otpauth URI does not parse"))?;
        match url.host_str().map(str::to_ascii_lowercase).as_deref() {
            Some("totp") => {}
            Some("hotp") => {
                return Err(bad(
                    "counter-based (hotp) codes are not supported, only time-based (totp)",
                ));
            }
            _ => return Err(bad("the URI is not otpauth://totp/...")),
        }
        let mut secret = None;
        let (mut algorithm, mut digits, mut period) = (Algorithm::Sha1, 6u32, 30u64);
        for (k, v) in url.query_pairs() {
            match k.to_ascii_lowercase().as_str() {
                "secret" => secret = Some(base32(&v)?),
                "algorithm" => {
                    algorithm = match v.to_ascii_uppercase().as_str() {
                        "SHA1" => Algorithm::Sha1,
                        "SHA256" => Algorithm::Sha256,
                        "SHA512" => Algorithm::Sha512,
                        _ => return Err(bad("algorithm must be SHA1, SHA256 or SHA512")),
                    }
                }
                "digits" => {
                    digits = v
                        .parse()
                        .ok()
                        .filter(|d| (6..=8).contains(d))
                        .ok_or_else(|| bad("digits must be 6, 7 or 8"))?
                }
                "period" => {
                    period = v
                        .parse()
                        .ok()
                        .filter(|p| (1..=3600).contains(p))
                        .ok_or_else(|| bad("period must be 1 to 3600 seconds"))?
                }
                _ => {}
            }
        }
        let label = percent_decoded(url.path().trim_start_matches('/'));
        Ok(Totp {
            secret: secret.ok_or_else(|| bad("the URI has no secret"))?,
            algorithm,
            digits,
            period,
            label: (!label.is_empty()).then_some(label),
        })
    }

    /// The generator a record stored with `data put --totp` holds; `shown` names the
    /// record in the error when it holds something else.
    pub fn from_record(value: &[u8], shown: &str) -> Result<Totp> {
        std::str::from_utf8(value)
            .ok()
            .and_then(|v| Totp::parse(v).ok())
            .ok_or_else(|| {
                Error::Usage(format!(
                    "record '{}' does not hold a TOTP secret; store one with `zencrypt data put --totp`",
                    crate::text::printable(shown, 80)
                ))
            })
    }

    /// The code now, and the seconds it stays valid.
    pub fn code_now(&self) -> (String, u64) {
        self.code_at(crate::duration::now().max(0) as u64)
    }

    /// The code for Unix time `now`, and the seconds it stays valid.
    pub fn code_at(&self, now: u64) -> (String, u64) {
        let step = now / self.period;
        let left = self.period - now % self.period;
        (self.hotp(step), left)
    }

    /// RFC 4226 HOTP for counter `counter`.
    fn hotp(&self, counter: u64) -> String {
        let msg = counter.to_be_bytes();
        let mac: Vec<u8> = match self.algorithm {
            Algorithm::Sha1 => mac::<Hmac<sha1::Sha1>>(&self.secret, &msg),
            Algorithm::Sha256 => mac::<Hmac<sha2::Sha256>>(&self.secret, &msg),
            Algorithm::Sha512 => mac::<Hmac<sha2::Sha512>>(&self.secret, &msg),
        };
        let offset = (mac[mac.len() - 1] & 0x0f) as usize;
        let bin = u32::from_be_bytes([
            mac[offset] & 0x7f,
            mac[offset + 1],
            mac[offset + 2],
            mac[offset + 3],
        ]);
        let code = bin % 10u32.pow(self.digits);
        format!("{code:0width$}", width = self.digits as usize)
    }

    /// A canonical URI for this secret (what `data put --totp` stores).
    pub fn uri(&self) -> Zeroizing<String> {
        let secret = Zeroizing::new(data_encoding::BASE32_NOPAD.encode(&self.secret));
        let label: String = self
            .label
            .as_deref()
            .unwrap_or("zencrypt")
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z'
                | b'a'..=b'z'
                | b'0'..=b'9'
                | b'-'
                | b'.'
                | b'_'
                | b'~'
                | b':'
                | b'@' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        Zeroizing::new(format!(
            "otpauth://totp/{label}?secret={}&algorithm={}&digits={}&period={}",
            secret.as_str(),
            self.algorithm.name(),
            self.digits,
            self.period
        ))
    }
}

fn mac<M: Mac + KeyInit>(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut m = <M as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

fn percent_decoded(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc(algorithm: Algorithm, key: &[u8]) -> Totp {
        Totp {
            secret: Zeroizing::new(key.to_vec()),
            algorithm,
            digits: 8,
            period: 30,
            label: None,
        }
    }

    /// RFC 6238, appendix B: every time and algorithm of its table.
    #[test]
    fn rfc_6238_test_vectors() {
        let sha1 = rfc(Algorithm::Sha1, b"12345678901234567890");
        let sha256 = rfc(Algorithm::Sha256, b"12345678901234567890123456789012");
        let sha512 = rfc(
            Algorithm::Sha512,
            b"1234567890123456789012345678901234567890123456789012345678901234",
        );
        let table: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1111111109, "07081804", "68084774", "25091201"),
            (1111111111, "14050471", "67062674", "99943326"),
            (1234567890, "89005924", "91819424", "93441116"),
            (2000000000, "69279037", "90698825", "38618901"),
            (20000000000, "65353130", "77737706", "47863826"),
        ];
        for (t, a, b, c) in table {
            assert_eq!(sha1.code_at(t).0, a, "SHA1 at {t}");
            assert_eq!(sha256.code_at(t).0, b, "SHA256 at {t}");
            assert_eq!(sha512.code_at(t).0, c, "SHA512 at {t}");
        }
        assert_eq!(sha1.code_at(59).1, 1);
        assert_eq!(sha1.code_at(60).1, 30);
    }

    #[test]
    fn uris_and_bare_secrets() {
        // "12345678901234567890" in base32.
        let b32 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        let t = Totp::parse(&format!(
            "otpauth://totp/Example%20Co:alice@example.com?secret={b32}&issuer=Example&digits=8&period=30"
        ))
        .unwrap();
        assert_eq!(t.code_at(59).0, "94287082");
        assert_eq!(t.label.as_deref(), Some("Example Co:alice@example.com"));
        let bare = Totp::parse("gezd gnbv gy3t qojq gezd gnbv gy3t qojq").unwrap();
        assert_eq!(
            (bare.digits, bare.period, bare.algorithm),
            (6, 30, Algorithm::Sha1)
        );
        assert_eq!(bare.code_at(59).0, "287082");
        // The canonical URI parses back to the same generator.
        let again = Totp::parse(&t.uri()).unwrap();
        assert_eq!(again.code_at(1234567890), t.code_at(1234567890));
        assert_eq!(again.label, t.label);
        assert_eq!(
            &t.uri()[..],
            format!(
                "otpauth://totp/Example%20Co:alice@example.com?secret={b32}&algorithm=SHA1&digits=8&period=30"
            )
        );
        assert!(!format!("{t:?}").contains(b32));
    }

    #[test]
    fn refusals() {
        let msg = |s: &str| match Totp::parse(s) {
            Err(Error::Usage(m)) => m,
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(msg(""), "not a TOTP secret: the secret is empty");
        assert_eq!(
            msg("not base32!"),
            "not a TOTP secret: the secret is not base32 (A-Z and 2-7)"
        );
        assert_eq!(
            msg("GEZDGNBV"),
            "not a TOTP secret: the secret is shorter than 80 bits"
        );
        assert_eq!(
            msg("otpauth://hotp/x?secret=GEZDGNBVGY3TQOJQ&counter=1"),
            "not a TOTP secret: counter-based (hotp) codes are not supported, only time-based (totp)"
        );
        assert_eq!(
            msg("otpauth://totp/x"),
            "not a TOTP secret: the URI has no secret"
        );
        assert_eq!(
            msg("otpauth://totp/x?secret=GEZDGNBVGY3TQOJQ&digits=9"),
            "not a TOTP secret: digits must be 6, 7 or 8"
        );
        assert_eq!(
            msg("otpauth://totp/x?secret=GEZDGNBVGY3TQOJQ&algorithm=MD5"),
            "not a TOTP secret: algorithm must be SHA1, SHA256 or SHA512"
        );
        assert_eq!(
            msg("otpauth://totp/x?secret=GEZDGNBVGY3TQOJQ&period=0"),
            "not a TOTP secret: period must be 1 to 3600 seconds"
        );
    }
}
