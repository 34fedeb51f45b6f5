//! Session tokens: HS256 JWTs (the algorithm is pinned) carrying the session key. Where a
//! front end keeps the token between commands is its own affair.
//!
//! A token alone decrypts nothing: the user key it unlocks is stored, wrapped under the
//! token's session key, in the session's database row, which logout and revocation mark
//! revoked.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::crypto::{self, Key32};
use crate::error::{Error, Result};
use crate::ids::UserId;

/// `iss` of every token.
pub const ISSUER: &str = "zencrypt";
/// `aud` of every token.
pub const AUDIENCE: &str = "zencrypt-cli";
/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 30;

/// The claims of a session token.
#[derive(Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// User id.
    pub sub: String,
    /// User name at issue time (informational; the database is authoritative).
    pub name: String,
    /// Role at issue time (informational; the database is authoritative).
    pub role: String,
    /// Session id.
    pub sid: String,
    /// The session key, base64url. Secret.
    pub sk: String,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expires.
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
}

impl Drop for Claims {
    fn drop(&mut self) {
        self.sk.zeroize();
    }
}

impl std::fmt::Debug for Claims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claims")
            .field("sub", &self.sub)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("sid", &self.sid)
            .field("sk", &"[redacted]")
            .field("exp", &self.exp)
            .finish_non_exhaustive()
    }
}

/// What a valid token says, with the session key decoded.
#[derive(Debug)]
pub struct TokenContents {
    /// User id.
    pub user_id: UserId,
    /// User name in the token.
    pub name: String,
    /// Session id.
    pub sid: String,
    /// Session key.
    pub session_key: Key32,
}

/// The token signing secret.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl JwtKeys {
    /// Builds the keys from a secret of at least 32 bytes.
    pub fn new(secret: &[u8]) -> Result<Self> {
        if secret.len() < 32 {
            return Err(Error::Config(
                "the session signing secret must be at least 32 bytes".into(),
            ));
        }
        Ok(JwtKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        })
    }
}

/// The parts of a new token.
pub struct NewToken<'a> {
    /// User id.
    pub user_id: UserId,
    /// User name.
    pub name: &'a str,
    /// Role.
    pub role: &'a str,
    /// Session id.
    pub sid: &'a str,
    /// Session key.
    pub session_key: &'a Key32,
    /// Issued at (unix seconds).
    pub iat: i64,
    /// Expiry (unix seconds).
    pub exp: i64,
}

/// Signs a token (HS256).
pub fn issue(keys: &JwtKeys, t: &NewToken<'_>) -> Result<SecretString> {
    let claims = Claims {
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        sub: t.user_id.to_string(),
        name: t.name.into(),
        role: t.role.into(),
        sid: t.sid.into(),
        sk: URL_SAFE_NO_PAD.encode(t.session_key.expose()),
        iat: t.iat,
        nbf: t.iat,
        exp: t.exp,
        jti: crypto::random_id(16),
    };
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding)
        .map_err(|e| {
            Error::Internal(format!("cannot sign the session token: {}", e.kind_name()))
        })?;
    Ok(SecretString::from(token))
}

trait KindName {
    fn kind_name(&self) -> &'static str;
}

impl KindName for jsonwebtoken::errors::Error {
    fn kind_name(&self) -> &'static str {
        match self.kind() {
            ErrorKind::InvalidKeyFormat => "invalid key format",
            _ => "encoding failed",
        }
    }
}

/// Validates a token's signature (HS256 only), `exp`/`nbf` (30 s leeway), `iss` and
/// `aud`, and decodes its claims. Says nothing about the session row: the caller checks it.
pub fn validate(keys: &JwtKeys, token: &SecretString) -> Result<TokenContents> {
    let mut v = Validation::new(Algorithm::HS256);
    v.algorithms = vec![Algorithm::HS256];
    v.leeway = LEEWAY_SECS;
    v.validate_exp = true;
    v.validate_nbf = true;
    v.set_issuer(&[ISSUER]);
    v.set_audience(&[AUDIENCE]);
    v.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    let data = jsonwebtoken::decode::<Claims>(token.expose_secret().trim(), &keys.decoding, &v)
        .map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => Error::SessionExpired,
            _ => Error::InvalidToken,
        })?;
    let claims = data.claims;
    // Only the canonical decimal form zencrypt writes: not "+5" or "05".
    let user_id: i64 = claims
        .sub
        .parse()
        .ok()
        .filter(|id: &i64| id.to_string() == claims.sub)
        .ok_or(Error::InvalidToken)?;
    let sk = Zeroizing::new(
        URL_SAFE_NO_PAD
            .decode(claims.sk.as_bytes())
            .map_err(|_| Error::InvalidToken)?,
    );
    let session_key = Key32::from_slice(&sk).ok_or(Error::InvalidToken)?;
    Ok(TokenContents {
        user_id: UserId(user_id),
        name: claims.name.clone(),
        sid: claims.sid.clone(),
        session_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> JwtKeys {
        JwtKeys::new(&[7u8; 32]).unwrap()
    }

    fn token(iat: i64, exp: i64) -> SecretString {
        let sk = Key32::from_bytes([1; 32]);
        issue(
            &keys(),
            &NewToken {
                user_id: UserId(5),
                name: "bob",
                role: "user",
                sid: "s1",
                session_key: &sk,
                iat,
                exp,
            },
        )
        .unwrap()
    }

    fn b64(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn round_trip() {
        let now = crate::duration::now();
        let c = validate(&keys(), &token(now, now + 60)).unwrap();
        assert_eq!(c.user_id, UserId(5));
        assert_eq!(c.sid, "s1");
        assert_eq!(c.session_key.expose(), &[1; 32]);
    }

    #[test]
    fn expired_and_future_tokens_are_refused() {
        let now = crate::duration::now();
        assert!(matches!(
            validate(&keys(), &token(now - 200, now - 100)),
            Err(Error::SessionExpired)
        ));
        assert!(matches!(
            validate(&keys(), &token(now + 100, now + 200)),
            Err(Error::InvalidToken)
        ));
        // Within the 30 s leeway.
        assert!(validate(&keys(), &token(now - 100, now - 10)).is_ok());
    }

    #[test]
    fn other_secret_and_alg_none_are_refused() {
        let now = crate::duration::now();
        let t = token(now, now + 60);
        let other = JwtKeys::new(&[8u8; 32]).unwrap();
        assert!(matches!(validate(&other, &t), Err(Error::InvalidToken)));

        let parts: Vec<&str> = t.expose_secret().split('.').collect();
        for header in [
            r#"{"alg":"none","typ":"JWT"}"#,
            r#"{"alg":"HS512","typ":"JWT"}"#,
        ] {
            let forged = format!("{}.{}.", b64(header), parts[1]);
            assert!(matches!(
                validate(&keys(), &SecretString::from(forged)),
                Err(Error::InvalidToken)
            ));
        }
    }

    #[test]
    fn only_the_canonical_user_id_is_accepted() {
        let now = crate::duration::now();
        let signed = |sub: &str| {
            let claims = Claims {
                iss: ISSUER.into(),
                aud: AUDIENCE.into(),
                sub: sub.into(),
                name: "bob".into(),
                role: "user".into(),
                sid: "s1".into(),
                sk: URL_SAFE_NO_PAD.encode([1u8; 32]),
                iat: now,
                nbf: now,
                exp: now + 60,
                jti: "j".into(),
            };
            let t = jsonwebtoken::encode(
                &jsonwebtoken::Header::new(Algorithm::HS256),
                &claims,
                &keys().encoding,
            )
            .unwrap();
            validate(&keys(), &SecretString::from(t))
        };
        assert_eq!(signed("5").unwrap().user_id, UserId(5));
        for sub in ["+5", "05", " 5", "5 ", "-0", ""] {
            assert!(matches!(signed(sub), Err(Error::InvalidToken)), "{sub:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn random_tokens_never_panic_and_are_refused(s in "\\PC{0,300}") {
            let r = validate(&keys(), &SecretString::from(s));
            proptest::prop_assert!(r.is_err());
        }

        #[test]
        fn random_three_part_tokens_are_refused(a in "[A-Za-z0-9_-]{0,60}", b in "[A-Za-z0-9_-]{0,200}", c in "[A-Za-z0-9_-]{0,60}") {
            let r = validate(&keys(), &SecretString::from(format!("{a}.{b}.{c}")));
            proptest::prop_assert!(r.is_err());
        }
    }

    #[test]
    fn short_secret_is_refused() {
        assert!(JwtKeys::new(&[1u8; 31]).is_err());
    }

    #[test]
    fn debug_never_shows_the_session_key() {
        let c = Claims {
            iss: "i".into(),
            aud: "a".into(),
            sub: "1".into(),
            name: "n".into(),
            role: "user".into(),
            sid: "s".into(),
            sk: "SESSIONKEYVALUE".into(),
            iat: 0,
            nbf: 0,
            exp: 0,
            jti: "j".into(),
        };
        assert!(!format!("{c:?}").contains("SESSIONKEYVALUE"));
    }
}
