//! Checking one JWT access token: its header (an asymmetric algorithm only: never `none`, never
//! HMAC, so a public key can never be used as a shared secret), its signature, `iss`, `aud`,
//! `exp`, `nbf` and the scopes. Pure: the key comes from the caller (`jwks`).

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

/// The signature algorithms accepted (RFC 7518 asymmetric ones, and EdDSA).
pub const ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The `Invalid` reason of a signature that does not verify with the key tried.
pub const BAD_SIGNATURE: &str = "bad signature";

/// Why a token was refused. Every variant but `InsufficientScope` answers 401.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Not a JWS compact token (three base64url parts with JSON header and claims): an opaque
    /// token, which the bridge cannot check.
    NotJwt,
    /// The header names no algorithm the bridge accepts (`none`, HMAC, unknown).
    Algorithm(String),
    /// The token's `iss` is not one of the configured issuers.
    Issuer,
    /// No key of the issuer has the token's `kid` (even after fetching the keys again).
    UnknownKey,
    /// The keys could not be had (the authorization server did not answer).
    KeysUnavailable,
    /// The introspection endpoint could not be asked, or gave no usable answer.
    IntrospectionFailed,
    /// The signature, audience, expiry or another claim is wrong; says which.
    Invalid(String),
    /// Valid, but without every scope the bridge needs.
    InsufficientScope,
}

impl Rejection {
    /// A short description for logs and the challenge's `error_description` (never the token).
    pub fn describe(&self) -> String {
        match self {
            Rejection::NotJwt => "not a JWT access token (opaque tokens are not accepted)".into(),
            Rejection::Algorithm(a) => format!("signature algorithm {a:?} is not accepted"),
            Rejection::Issuer => "the token's issuer is not trusted".into(),
            Rejection::UnknownKey => "the token is signed with an unknown key".into(),
            Rejection::KeysUnavailable => "the issuer's signing keys are unavailable".into(),
            Rejection::IntrospectionFailed => "the token could not be introspected".into(),
            Rejection::Invalid(why) => why.clone(),
            Rejection::InsufficientScope => "the token lacks a required scope".into(),
        }
    }
}

/// What the unverified header and claims say: enough to pick the key to verify with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peeked {
    /// The header's algorithm (an accepted one).
    pub alg: Algorithm,
    /// The header's key id.
    pub kid: Option<String>,
    /// The claimed issuer (checked against the configured ones, not yet verified).
    pub iss: String,
}

/// The token's verified subject: who the bridge serves.
#[derive(Debug, Clone)]
pub struct Subject {
    /// `iss`.
    pub issuer: String,
    /// `sub`.
    pub subject: String,
    /// `iss#sub`: the principal that owns sessions. An issuer has no fragment (RFC 8414), so
    /// this splits back unambiguously, and it holds a ':' (the scheme), which no static token's
    /// name can, so the two never collide.
    pub principal: Arc<str>,
    /// Every claim, for `--claim-env`.
    pub claims: Map<String, Value>,
}

impl Subject {
    /// A claim as an environment value: strings as they are, numbers and booleans as JSON;
    /// `None` for anything else (absent, null, objects, arrays).
    pub fn claim_text(&self, name: &str) -> Option<String> {
        match self.claims.get(name)? {
            Value::String(s) => Some(s.clone()),
            v @ (Value::Number(_) | Value::Bool(_)) => Some(v.to_string()),
            _ => None,
        }
    }
}

/// What a token must satisfy.
#[derive(Debug, Clone)]
pub struct Expect<'a> {
    /// Trusted issuers.
    pub issuers: &'a [String],
    /// The audiences the token must name one of.
    pub audiences: &'a [String],
    /// Scopes that must all be granted.
    pub scopes: &'a [String],
    /// Seconds of clock skew tolerated on `exp` and `nbf`.
    pub leeway_secs: u64,
}

fn json_part(part: &str) -> Result<Map<String, Value>, Rejection> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| Rejection::NotJwt)?;
    serde_json::from_slice(&bytes).map_err(|_| Rejection::NotJwt)
}

/// Reads the header and the claimed issuer, without verifying anything but their shape and
/// that the algorithm and issuer are acceptable.
///
/// # Errors
/// `NotJwt`, `Algorithm` or `Issuer`.
pub fn peek(token: &str, issuers: &[String]) -> Result<Peeked, Rejection> {
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(_sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Rejection::NotJwt);
    };
    let header = json_part(header)?;
    let alg_name = header.get("alg").and_then(Value::as_str).unwrap_or("");
    let alg = alg_name
        .parse::<Algorithm>()
        .ok()
        .filter(|a| ALGORITHMS.contains(a))
        .ok_or_else(|| Rejection::Algorithm(alg_name.to_owned()))?;
    if header.contains_key("crit") {
        // RFC 7515 §4.1.11: extensions we do not understand make the token unusable.
        return Err(Rejection::Invalid(
            "the token has critical header extensions".into(),
        ));
    }
    let kid = header.get("kid").and_then(Value::as_str).map(str::to_owned);
    let iss = json_part(claims)?
        .get("iss")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| Rejection::Invalid("the token has no issuer".into()))?;
    if !issuers.contains(&iss) {
        return Err(Rejection::Issuer);
    }
    Ok(Peeked { alg, kid, iss })
}

/// Verifies `token` with `key` (for `peeked.alg`) and checks its claims.
///
/// # Errors
/// `Invalid` with the reason, or `InsufficientScope`.
pub fn verify(
    token: &str,
    peeked: &Peeked,
    key: &DecodingKey,
    expect: &Expect<'_>,
) -> Result<Subject, Rejection> {
    let mut v = Validation::new(peeked.alg);
    v.set_issuer(expect.issuers);
    v.set_audience(expect.audiences);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    v.validate_exp = true;
    v.validate_nbf = true;
    v.leeway = expect.leeway_secs;
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, key, &v).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind::*;
        Rejection::Invalid(match e.kind() {
            InvalidSignature => BAD_SIGNATURE.into(),
            ExpiredSignature => "the token has expired".into(),
            ImmatureSignature => "the token is not valid yet (nbf)".into(),
            InvalidAudience => "the token was issued for another audience".into(),
            InvalidIssuer => "the token's issuer is not trusted".into(),
            MissingRequiredClaim(c) => format!("the token has no {c} claim"),
            other => format!("invalid token ({other:?})"),
        })
    })?;
    let claims = data.claims;
    let subject = match claims.get("sub") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(Rejection::Invalid("the token's sub is not a string".into())),
    };
    let granted = granted_scopes(&claims);
    if !expect.scopes.iter().all(|s| granted.iter().any(|g| g == s)) {
        return Err(Rejection::InsufficientScope);
    }
    let issuer = peeked.iss.clone();
    Ok(Subject {
        principal: format!("{issuer}#{subject}").into(),
        issuer,
        subject,
        claims,
    })
}

/// Checks an RFC 7662 introspection response as `verify` checks a JWT's claims: `active`,
/// `iss` (when absent, the one configured issuer), `aud`, `exp` and `nbf` at `now` (Unix
/// seconds), the scopes. The subject is `sub`, or, for a token a client got for itself
/// (client credentials), `client_id`.
///
/// # Errors
/// `Invalid`, `Issuer` or `InsufficientScope`.
pub fn evaluate(
    resp: Map<String, Value>,
    expect: &Expect<'_>,
    now: u64,
) -> Result<Subject, Rejection> {
    let invalid = |why: &str| Err(Rejection::Invalid(why.into()));
    if resp.get("active") != Some(&Value::Bool(true)) {
        return invalid("the token is not active");
    }
    let issuer = match (resp.get("iss"), expect.issuers) {
        (Some(Value::String(i)), _) if expect.issuers.contains(i) => i.clone(),
        (Some(_), _) => return Err(Rejection::Issuer),
        (None, [only]) => only.clone(),
        (None, _) => return invalid("the introspection names no issuer"),
    };
    let audience_ok = match resp.get("aud") {
        Some(Value::String(a)) => expect.audiences.contains(a),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .any(|a| expect.audiences.iter().any(|e| e == a)),
        _ => return invalid("the token has no aud claim"),
    };
    if !audience_ok {
        return invalid("the token was issued for another audience");
    }
    let time = |k: &str| resp.get(k).and_then(Value::as_u64);
    if time("exp").is_some_and(|exp| exp.saturating_add(expect.leeway_secs) < now) {
        return invalid("the token has expired");
    }
    if time("nbf").is_some_and(|nbf| nbf > now.saturating_add(expect.leeway_secs)) {
        return invalid("the token is not valid yet (nbf)");
    }
    let subject = ["sub", "client_id"].iter().find_map(|k| {
        resp.get(*k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    });
    let Some(subject) = subject.map(str::to_owned) else {
        return invalid("the introspection names no subject");
    };
    let granted = granted_scopes(&resp);
    if !expect.scopes.iter().all(|s| granted.contains(&s.as_str())) {
        return Err(Rejection::InsufficientScope);
    }
    Ok(Subject {
        principal: format!("{issuer}#{subject}").into(),
        issuer,
        subject,
        claims: resp,
    })
}

/// The scopes a token grants: `scope` (RFC 9068, space-separated) or `scp` (a list or a
/// space-separated string, as some identity providers write it).
pub fn granted_scopes(claims: &Map<String, Value>) -> Vec<&str> {
    let mut out = Vec::new();
    for name in ["scope", "scp"] {
        match claims.get(name) {
            Some(Value::String(s)) => out.extend(s.split_ascii_whitespace()),
            Some(Value::Array(a)) => out.extend(a.iter().filter_map(Value::as_str)),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
