//! API keys and meeting tokens, without IO: checking the REST `Authorization` header, turning a
//! `POST /v1/meeting-tokens` body into a signed token, and turning a token presented on `join`
//! back into what it grants. Times are passed in (Unix seconds) so every rule is unit-tested.
//!
//! # Tokens
//! Meeting tokens are JWTs (RFC 7519) signed HS256 with the server's API key, as Daily's are.
//! Claims use Daily's abbreviated names for self-signed tokens (docs.daily.co, "Self-signing
//! meeting tokens"), so a token a developer signs with the same key and Daily's names works here
//! too:
//!
//! | property (REST) | claim | meaning here |
//! | --- | --- | --- |
//! | `room_name` | `r` | the only room the token is valid for; absent = every room (as Daily) |
//! | `is_owner` | `o` | the participant is a room owner |
//! | `user_name` | `u` | display name, overriding the one in `join` |
//! | `user_id` | `ud` | user id (else the participant id) |
//! | `permissions` | `p` | a [`PermissionsUpdate`] over Daily's defaults (REST shape, not Daily's abbreviated one) |
//! | `exp` | `exp` | no join at or after this Unix time |
//! | `nbf` | `nbf` | no join before this Unix time |
//! | - | `iat` | when the server issued it |
//!
//! Verification accepts only HS256 (`alg: none` and every other algorithm are refused), checks
//! the signature, then `exp`, `nbf` (no leeway: the server that checks is the one that signed)
//! and `r`. Every failure is the same [`TokenRefused`]: the caller answers with one generic
//! message whatever went wrong, so a refusal teaches a guesser nothing.

use daily_proto::{ADMIN_KINDS, MEDIA_KINDS, PermissionsUpdate, is_valid_room_name};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::sfu::MAX_USER_NAME_BYTES;

/// Longest API key accepted, in bytes.
pub const MAX_API_KEY_BYTES: usize = 1024;

/// Longest `user_id` accepted in a token, in bytes.
pub const MAX_USER_ID_BYTES: usize = 1024;

/// Checks an API key given to the server: 1..=[`MAX_API_KEY_BYTES`] bytes of visible ASCII
/// (`!`..=`~`), so that it fits in an `Authorization: Bearer` header unchanged.
pub fn validate_api_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        return Err("the API key must not be empty");
    }
    if key.len() > MAX_API_KEY_BYTES {
        return Err("the API key is longer than 1024 bytes");
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the API key must be visible ASCII characters without spaces");
    }
    Ok(())
}

/// Why a REST request is not authenticated (HTTP 401, `authentication-error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// The server was started without an API key, so it has no REST API.
    NoServerKey,
    /// No `Authorization: Bearer ...` header.
    Missing,
    /// A bearer key that is not the server's.
    WrongKey,
}

impl AuthError {
    /// The `info` text of the 401 answer.
    pub fn info(self) -> &'static str {
        match self {
            AuthError::NoServerKey => {
                "this server has no API key, so its REST API is off; start it with \
                 `daily-server --api-key KEY` (or DAILY_API_KEY=KEY), or \
                 RoomServer(api_key=KEY) in Python"
            }
            AuthError::Missing => "missing `Authorization: Bearer <API key>` header",
            AuthError::WrongKey => "invalid API key",
        }
    }
}

/// The server's API key and the JWT keys derived from it.
#[derive(Clone)]
pub struct ApiKey {
    key: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// A token presented on `join` that does not let its holder in. Deliberately carries no reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenRefused;

/// What a valid meeting token grants the participant who joins with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    /// Room owner (Daily's `is_owner`). Only ever `true` from a valid token.
    pub is_owner: bool,
    /// Display name replacing the one sent in `join`.
    pub user_name: Option<String>,
    /// User id replacing the default (the participant id).
    pub user_id: Option<String>,
    /// Applied over `Permissions::default()`.
    pub permissions: Option<PermissionsUpdate>,
}

/// The JWT payload, in Daily's abbreviated claim names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Claims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    o: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    u: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ud: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<PermissionsUpdate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exp: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
}

/// The validated properties of a `POST /v1/meeting-tokens` body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenProperties {
    /// `room_name`.
    pub room_name: Option<String>,
    /// `is_owner`.
    pub is_owner: Option<bool>,
    /// `user_name`.
    pub user_name: Option<String>,
    /// `user_id`.
    pub user_id: Option<String>,
    /// `exp`, Unix seconds.
    pub exp: Option<u64>,
    /// `nbf`, Unix seconds.
    pub nbf: Option<u64>,
    /// `permissions`.
    pub permissions: Option<PermissionsUpdate>,
}

/// Reads a Unix time: a non-negative JSON number (a fraction is dropped; Python's `time.time()`
/// gives floats).
pub(crate) fn unix_seconds(field: &str, v: &Value) -> Result<u64, String> {
    if let Some(n) = v.as_u64() {
        return Ok(n);
    }
    match v.as_f64() {
        Some(f) if (0.0..1e15).contains(&f) => Ok(f as u64),
        _ => Err(format!(
            "{field} must be a Unix time in seconds (a non-negative number)"
        )),
    }
}

fn string_field(field: &str, v: &Value, max: usize) -> Result<String, String> {
    let s = v
        .as_str()
        .ok_or_else(|| format!("{field} must be a string"))?;
    if s.len() > max {
        return Err(format!("{field} is longer than {max} bytes"));
    }
    Ok(s.to_owned())
}

/// Reads Daily's `permissions` object: `hasPresence` (bool), `canSend` / `canAdmin` (a bool for
/// all-or-nothing, or a list of kinds), `canReceive` (an object, kept as given). Unknown keys
/// and kinds are errors.
pub fn parse_permissions(v: &Value) -> Result<PermissionsUpdate, String> {
    let obj = v.as_object().ok_or("permissions must be an object")?;
    let kinds = |field: &str, v: &Value, all: &[&str]| -> Result<Vec<String>, String> {
        match v {
            Value::Bool(true) => Ok(all.iter().map(|s| (*s).to_owned()).collect()),
            Value::Bool(false) => Ok(Vec::new()),
            Value::Array(items) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| format!("permissions.{field} must list strings"))
                })
                .collect(),
            _ => Err(format!(
                "permissions.{field} must be a boolean or a list of strings"
            )),
        }
    };
    let mut u = PermissionsUpdate::default();
    for (k, v) in obj {
        match k.as_str() {
            "hasPresence" => {
                u.has_presence = Some(
                    v.as_bool()
                        .ok_or("permissions.hasPresence must be a boolean")?,
                )
            }
            "canSend" => u.can_send = Some(kinds("canSend", v, &MEDIA_KINDS)?),
            "canAdmin" => u.can_admin = Some(kinds("canAdmin", v, &ADMIN_KINDS)?),
            "canReceive" => {
                if !v.is_object() {
                    return Err("permissions.canReceive must be an object".into());
                }
                u.can_receive = Some(v.clone());
            }
            other => {
                return Err(format!(
                    "unknown permissions field {other:?} (expected hasPresence, canSend, canReceive, canAdmin)"
                ));
            }
        }
    }
    u.validate().map_err(|e| format!("permissions: {e}"))?;
    Ok(u)
}

impl TokenProperties {
    /// Validates the `properties` object of a `POST /v1/meeting-tokens` body (`None` when the
    /// body had none). Daily's other token properties (`enable_screenshare`,
    /// `start_video_off`, ...) are accepted and ignored: they configure a browser UI or features
    /// this server does not have. Returns a human-readable complaint on bad input.
    pub fn parse(properties: Option<&Value>) -> Result<TokenProperties, String> {
        let mut t = TokenProperties::default();
        let Some(v) = properties else {
            return Ok(t);
        };
        let obj: &Map<String, Value> = v.as_object().ok_or("properties must be an object")?;
        for (k, v) in obj {
            if v.is_null() {
                continue; // Same as absent (what `model_dump(exclude_none=False)` would send).
            }
            match k.as_str() {
                "room_name" => {
                    let s = string_field(k, v, 128)?;
                    if !is_valid_room_name(&s) {
                        return Err(format!(
                            "room_name {s:?} is not a valid room name (1-128 characters of A-Z a-z 0-9 - _ .)"
                        ));
                    }
                    t.room_name = Some(s);
                }
                "is_owner" => t.is_owner = Some(v.as_bool().ok_or("is_owner must be a boolean")?),
                "user_name" => t.user_name = Some(string_field(k, v, MAX_USER_NAME_BYTES)?),
                "user_id" => {
                    let s = string_field(k, v, MAX_USER_ID_BYTES)?;
                    if s.is_empty() {
                        return Err("user_id must not be empty".into());
                    }
                    t.user_id = Some(s);
                }
                "exp" => t.exp = Some(unix_seconds(k, v)?),
                "nbf" => t.nbf = Some(unix_seconds(k, v)?),
                "permissions" => t.permissions = Some(parse_permissions(v)?),
                _ => {}
            }
        }
        if let (Some(nbf), Some(exp)) = (t.nbf, t.exp)
            && nbf >= exp
        {
            return Err("nbf must be before exp".into());
        }
        Ok(t)
    }
}

impl ApiKey {
    /// Wraps a key that passed [`validate_api_key`].
    pub fn new(key: &str) -> ApiKey {
        ApiKey {
            key: key.to_owned(),
            encoding: EncodingKey::from_secret(key.as_bytes()),
            decoding: DecodingKey::from_secret(key.as_bytes()),
        }
    }

    /// Checks an `Authorization` header value: `Bearer <key>` (scheme case-insensitive, as
    /// RFC 9110 section 11.1 says). The key comparison takes the same time wherever the first
    /// difference is.
    pub fn check_bearer(&self, header: Option<&str>) -> Result<(), AuthError> {
        let Some(h) = header else {
            return Err(AuthError::Missing);
        };
        let Some((scheme, given)) = h.trim().split_once(' ') else {
            return Err(AuthError::Missing);
        };
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::Missing);
        }
        if constant_time_eq(given.trim().as_bytes(), self.key.as_bytes()) {
            Ok(())
        } else {
            Err(AuthError::WrongKey)
        }
    }

    /// Signs a token carrying `props`, issued at `now` (Unix seconds).
    pub fn issue(&self, props: &TokenProperties, now: u64) -> String {
        let claims = Claims {
            r: props.room_name.clone(),
            o: props.is_owner,
            u: props.user_name.clone(),
            ud: props.user_id.clone(),
            p: props.permissions.clone(),
            exp: props.exp,
            nbf: props.nbf,
            iat: Some(now),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }

    /// Checks a token presented on `join` to `room` at `now` (Unix seconds) and returns what it
    /// grants. Refused: not a JWT, an algorithm other than HS256 (including `none`), a bad
    /// signature, claims of the wrong type, `exp` reached, `nbf` not reached, `r` naming another
    /// room, or a grant that would be invalid if requested over REST.
    pub fn verify(&self, token: &str, room: &str, now: u64) -> Result<Grant, TokenRefused> {
        // Time claims are checked below against the caller's `now`; `exp` is optional in
        // Daily's tokens.
        let validation = hs256_validation();
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|_| TokenRefused)?;
        if data.header.alg != Algorithm::HS256 {
            return Err(TokenRefused);
        }
        let c = data.claims;
        if c.exp.is_some_and(|exp| now >= exp) || c.nbf.is_some_and(|nbf| now < nbf) {
            return Err(TokenRefused);
        }
        if c.r.as_deref().is_some_and(|r| r != room) {
            return Err(TokenRefused);
        }
        // Self-signed tokens skip the REST checks; apply the same limits here.
        if c.u.as_ref().is_some_and(|u| u.len() > MAX_USER_NAME_BYTES)
            || c.ud
                .as_ref()
                .is_some_and(|u| u.is_empty() || u.len() > MAX_USER_ID_BYTES)
            || c.p.as_ref().is_some_and(|p| p.validate().is_err())
        {
            return Err(TokenRefused);
        }
        Ok(Grant {
            is_owner: c.o.unwrap_or(false),
            user_name: c.u,
            user_id: c.ud,
            permissions: c.p,
        })
    }
}

/// HS256 signature checks only: the callers check time claims against the `now` they are told
/// (so tests can use a virtual clock), and no claim is required by the library.
fn hs256_validation() -> Validation {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    validation
}

/// The claims of a recording's download token (`GET /v1/recordings/{id}/access-link`): the
/// recording id and the expiry. A different shape from meeting tokens (`rec` is required and
/// unknown to them), so neither can pass for the other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DownloadClaims {
    rec: String,
    exp: u64,
}

impl ApiKey {
    /// Signs a download token for recording `id`, valid until `exp` (Unix seconds).
    pub fn issue_download(&self, id: &str, exp: u64) -> String {
        let claims = DownloadClaims {
            rec: id.to_owned(),
            exp,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }

    /// Whether `token` is a download token for recording `id` that has not expired at `now`
    /// (Unix seconds). HS256 only, signature checked.
    pub fn check_download(&self, token: &str, id: &str, now: u64) -> bool {
        let validation = hs256_validation();
        match jsonwebtoken::decode::<DownloadClaims>(token, &self.decoding, &validation) {
            Ok(d) => d.header.alg == Algorithm::HS256 && d.claims.rec == id && now < d.claims.exp,
            Err(_) => false,
        }
    }
}

/// Equality whose running time depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use serde_json::json;

    const NOW: u64 = 1_700_000_000;

    fn key() -> ApiKey {
        ApiKey::new("test-key-123")
    }

    fn props(v: Value) -> TokenProperties {
        TokenProperties::parse(Some(&v)).unwrap()
    }

    #[test]
    fn download_tokens() {
        let k = ApiKey::new("secret-1");
        let t = k.issue_download("rec-1", 1000);
        assert!(k.check_download(&t, "rec-1", 999));
        assert!(!k.check_download(&t, "rec-1", 1000), "expired");
        assert!(!k.check_download(&t, "rec-2", 999), "another recording");
        assert!(!ApiKey::new("secret-2").check_download(&t, "rec-1", 999), "another key");
        // A meeting token is not a download token.
        let m = k.issue(&TokenProperties::default(), 1);
        assert!(!k.check_download(&m, "rec-1", 999));
    }

    #[test]
    fn api_keys() {
        assert!(validate_api_key("abc-DEF_123").is_ok());
        for bad in ["", "has space", "tab\t", "é", &"x".repeat(1025)] {
            assert!(validate_api_key(bad).is_err(), "{bad:?}");
        }
        let k = key();
        assert_eq!(k.check_bearer(Some("Bearer test-key-123")), Ok(()));
        assert_eq!(k.check_bearer(Some("bearer  test-key-123 ")), Ok(()));
        assert_eq!(k.check_bearer(None), Err(AuthError::Missing));
        assert_eq!(
            k.check_bearer(Some("test-key-123")),
            Err(AuthError::Missing)
        );
        assert_eq!(
            k.check_bearer(Some("Basic test-key-123")),
            Err(AuthError::Missing)
        );
        assert_eq!(
            k.check_bearer(Some("Bearer test-key-12")),
            Err(AuthError::WrongKey)
        );
        assert_eq!(
            k.check_bearer(Some("Bearer test-key-1234")),
            Err(AuthError::WrongKey)
        );
        assert_eq!(k.check_bearer(Some("Bearer ")), Err(AuthError::Missing));
        assert_eq!(k.check_bearer(Some("Bearer x y")), Err(AuthError::WrongKey));
        assert!(format!("{k:?}").contains("redacted") && !format!("{k:?}").contains("test-key"));
        assert!(AuthError::NoServerKey.info().contains("--api-key"));
    }

    #[test]
    fn properties_are_validated() {
        let p = props(json!({
            "room_name": "r1", "is_owner": true, "user_name": "Bot", "user_id": "u-1",
            "exp": NOW + 60, "nbf": (NOW - 60) as f64 + 0.5, "enable_screenshare": false,
            "start_video_off": null,
            "permissions": {"hasPresence": false, "canSend": ["microphone"], "canAdmin": true,
                            "canReceive": {"base": false}},
        }));
        assert_eq!(p.room_name.as_deref(), Some("r1"));
        assert_eq!((p.exp, p.nbf), (Some(NOW + 60), Some(NOW - 60)));
        let perms = p.permissions.unwrap();
        assert_eq!(perms.has_presence, Some(false));
        assert_eq!(perms.can_admin.unwrap().len(), ADMIN_KINDS.len());
        assert_eq!(
            TokenProperties::parse(None).unwrap(),
            TokenProperties::default()
        );
        for bad in [
            json!([]),
            json!({"room_name": 3}),
            json!({"room_name": "bad name"}),
            json!({"is_owner": "yes"}),
            json!({"user_name": 1}),
            json!({"user_name": "x".repeat(MAX_USER_NAME_BYTES + 1)}),
            json!({"user_id": ""}),
            json!({"exp": -1}),
            json!({"exp": "soon"}),
            json!({"nbf": NOW + 10, "exp": NOW}),
            json!({"permissions": []}),
            json!({"permissions": {"canSend": ["video"]}}),
            json!({"permissions": {"canAdmin": ["everything"]}}),
            json!({"permissions": {"canSend": "microphone"}}),
            json!({"permissions": {"hasPresence": 1}}),
            json!({"permissions": {"canReceive": true}}),
            json!({"permissions": {"bogus": true}}),
        ] {
            assert!(TokenProperties::parse(Some(&bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn round_trip_grants() {
        let k = key();
        let t = k.issue(
            &props(
                json!({"room_name": "r1", "is_owner": true, "user_name": "Bot",
                          "user_id": "u-1", "exp": NOW + 60,
                          "permissions": {"canSend": ["customAudio"]}}),
            ),
            NOW,
        );
        let g = k.verify(&t, "r1", NOW).unwrap();
        assert!(g.is_owner);
        assert_eq!(g.user_name.as_deref(), Some("Bot"));
        assert_eq!(g.user_id.as_deref(), Some("u-1"));
        assert_eq!(
            g.permissions.unwrap().can_send.unwrap(),
            vec!["customAudio"]
        );
        // Claims use Daily's abbreviations.
        let payload = t.split('.').nth(1).unwrap();
        let claims: Value = serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap();
        assert_eq!(
            (claims["r"].as_str(), claims["o"].as_bool()),
            (Some("r1"), Some(true))
        );
        assert_eq!(claims["iat"].as_u64(), Some(NOW));
        // A token without properties: valid for any room, not an owner.
        let t = k.issue(&TokenProperties::default(), NOW);
        assert_eq!(k.verify(&t, "anything", NOW + 10_000), Ok(Grant::default()));
    }

    #[test]
    fn refusals() {
        let k = key();
        let issue = |v: Value| k.issue(&props(v), NOW);
        // Time.
        let t = issue(json!({"exp": NOW + 10}));
        assert!(k.verify(&t, "r", NOW + 9).is_ok());
        assert_eq!(k.verify(&t, "r", NOW + 10), Err(TokenRefused));
        let t = issue(json!({"nbf": NOW + 10}));
        assert_eq!(k.verify(&t, "r", NOW + 9), Err(TokenRefused));
        assert!(k.verify(&t, "r", NOW + 10).is_ok());
        // Another room.
        let t = issue(json!({"room_name": "a"}));
        assert_eq!(k.verify(&t, "b", NOW), Err(TokenRefused));
        // Another key.
        let t = ApiKey::new("other-key").issue(&TokenProperties::default(), NOW);
        assert_eq!(k.verify(&t, "r", NOW), Err(TokenRefused));
        // Malformed.
        for bad in ["", "x", "a.b.c", "a.b", "....", &"e".repeat(5000)] {
            assert_eq!(k.verify(bad, "r", NOW), Err(TokenRefused), "{bad}");
        }
        // Tampered payload (owner added), original signature kept.
        let t = issue(json!({"room_name": "r"}));
        let parts: Vec<&str> = t.split('.').collect();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            B64.encode(br#"{"r":"r","o":true}"#),
            parts[2]
        );
        assert_eq!(k.verify(&forged, "r", NOW), Err(TokenRefused));
        // alg none, and HS512 signed with the right key.
        let none = format!(
            "{}.{}.",
            B64.encode(br#"{"alg":"none","typ":"JWT"}"#),
            B64.encode(br#"{"r":"r","o":true}"#)
        );
        assert_eq!(k.verify(&none, "r", NOW), Err(TokenRefused));
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &json!({"r": "r", "o": true}),
            &EncodingKey::from_secret(b"test-key-123"),
        )
        .unwrap();
        assert_eq!(k.verify(&hs512, "r", NOW), Err(TokenRefused));
        // Right key and alg, but claims of the wrong type or out of bounds.
        for claims in [
            json!({"o": "yes"}),
            json!({"exp": "later"}),
            json!({"exp": 1.5e9}),
            json!({"p": {"canSend": ["video"]}}),
            json!({"ud": ""}),
        ] {
            let t = jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(b"test-key-123"),
            )
            .unwrap();
            assert_eq!(k.verify(&t, "r", NOW), Err(TokenRefused), "{claims}");
        }
        // A self-signed token in Daily's style (extra claims such as `d`) is accepted.
        let t = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &json!({"r": "r", "iat": NOW, "d": "domain", "ss": true}),
            &EncodingKey::from_secret(b"test-key-123"),
        )
        .unwrap();
        assert!(k.verify(&t, "r", NOW).is_ok());
    }
}
