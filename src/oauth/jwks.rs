//! Signing keys: each issuer's JWKS (found through its metadata, RFC 8414 then OpenID Connect
//! discovery) or the one `--oauth-jwks` names, cached. A token naming an unknown `kid` makes
//! the bridge fetch its issuer's keys again, at most once per cooldown and one fetch at a time
//! per key set, so a rotation needs no restart and made-up key ids cannot flood the issuer.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use reqwest::Url;
use serde_json::Value;
use tokio::time::Instant;
use tracing::{info, warn};

use super::validate::Rejection;
use crate::config::{JwksSource, OAuth};

/// How long one fetch (metadata or keys) may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest metadata or JWKS document accepted.
pub const MAX_DOCUMENT: usize = 1 << 20;
/// Keys older than this are fetched again at the next token, so a key the issuer withdrew
/// stops verifying without a restart.
pub const KEYS_MAX_AGE: Duration = Duration::from_secs(60 * 60);
/// Keys of one set at most (more are ignored).
const MAX_KEYS: usize = 64;

/// Which keys fit which algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Rsa,
    P256,
    P384,
    Ed25519,
}

fn family_of(alg: Algorithm) -> Option<Family> {
    use Algorithm::*;
    match alg {
        RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => Some(Family::Rsa),
        ES256 => Some(Family::P256),
        ES384 => Some(Family::P384),
        EdDSA => Some(Family::Ed25519),
        HS256 | HS384 | HS512 => None,
    }
}

/// One key able to verify signatures.
#[derive(Clone)]
struct VerifyingKey {
    kid: Option<String>,
    /// The JWK's own `alg`, when it names one: the only algorithm it may verify.
    alg: Option<String>,
    family: Family,
    key: DecodingKey,
}

/// The usable keys of one JWKS document: signature keys of the accepted kinds; symmetric
/// (`oct`) and encryption keys are left out, so no public key ever serves as an HMAC secret.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: Vec<VerifyingKey>,
}

impl KeySet {
    /// Parses a JWKS document, skipping keys it cannot use.
    ///
    /// # Errors
    /// When the document is not a JSON object with a `keys` array.
    pub fn parse(doc: &[u8]) -> Result<KeySet, String> {
        let doc: Value = serde_json::from_slice(doc).map_err(|e| format!("not JSON: {e}"))?;
        let Some(keys) = doc.get("keys").and_then(Value::as_array) else {
            return Err("no \"keys\" array".into());
        };
        let mut set = KeySet::default();
        // One key the library cannot read must not hide the others (encryption keys, P-521).
        for raw in keys.iter().take(MAX_KEYS) {
            let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else {
                continue;
            };
            if let Some(k) = usable(&jwk, raw) {
                set.keys.push(k);
            }
        }
        Ok(set)
    }

    /// How many keys the set holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys that may verify a token signed with `alg` under `kid`: the key with that id,
    /// or, for a token without `kid`, every key of the algorithm's kind.
    pub fn candidates(&self, kid: Option<&str>, alg: Algorithm) -> Vec<DecodingKey> {
        let Some(family) = family_of(alg) else {
            return Vec::new();
        };
        let name = format!("{alg:?}");
        self.keys
            .iter()
            .filter(|k| k.family == family && k.alg.as_deref().map_or(true, |a| a == name))
            .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
            .map(|k| k.key.clone())
            .collect()
    }
}

fn usable(jwk: &Jwk, raw: &Value) -> Option<VerifyingKey> {
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return None;
    }
    let family = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Family::Rsa,
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => Family::P256,
            EllipticCurve::P384 => Family::P384,
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Family::Ed25519
        }
        _ => return None,
    };
    Some(VerifyingKey {
        kid: jwk.common.key_id.clone(),
        alg: raw.get("alg").and_then(Value::as_str).map(str::to_owned),
        family,
        key: DecodingKey::from_jwk(jwk).ok()?,
    })
}

/// Whether a URL may be fetched: HTTPS, or plain HTTP to this machine's loopback.
pub fn allowed_url(url: &Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => url.host_str().is_some_and(|h| {
            crate::access::is_loopback_name(h.trim_start_matches('[').trim_end_matches(']'))
        }),
        _ => false,
    }
}

/// Where one key set comes from.
enum Origin {
    /// The `jwks_uri` of this issuer's metadata.
    Issuer(String),
    Url(Url),
    File(PathBuf),
}

struct Cached {
    keys: Arc<KeySet>,
    /// When the keys were last fetched, or a fetch was last tried.
    last_attempt: Option<Instant>,
    /// The issuer's `jwks_uri`, once discovered.
    jwks_uri: Option<Url>,
}

/// One key set and its cache.
struct Source {
    origin: Origin,
    // Lock: taken alone, for a clone or a swap.
    cached: Mutex<Cached>,
    /// Held while fetching: one fetch at a time; the others wait and use its result.
    fetching: tokio::sync::Mutex<()>,
}

/// Every key set the bridge trusts, by issuer.
pub struct KeyStore {
    http: reqwest::Client,
    /// By issuer; with `--oauth-jwks`, every issuer shares one source.
    sources: HashMap<String, Arc<Source>>,
    cooldown: Duration,
}

fn lock(m: &Mutex<Cached>) -> std::sync::MutexGuard<'_, Cached> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl KeyStore {
    /// The key sets of `oauth`'s issuers (nothing fetched yet).
    ///
    /// # Errors
    /// When the HTTP client cannot be built, or a JWKS URL is not one the bridge may fetch.
    pub fn new(oauth: &OAuth) -> anyhow::Result<KeyStore> {
        let http = http_client()?;
        let source = |origin| {
            Arc::new(Source {
                origin,
                cached: Mutex::new(Cached {
                    keys: Arc::default(),
                    last_attempt: None,
                    jwks_uri: None,
                }),
                fetching: tokio::sync::Mutex::new(()),
            })
        };
        let shared = match &oauth.jwks {
            Some(JwksSource::Url(u)) => {
                let url = Url::parse(u).with_context(|| format!("--oauth-jwks {u}"))?;
                if !allowed_url(&url) {
                    bail!("--oauth-jwks {u}: must be https (http only on loopback)");
                }
                Some(source(Origin::Url(url)))
            }
            Some(JwksSource::File(p)) => Some(source(Origin::File(p.clone()))),
            None => None,
        };
        let sources = oauth
            .issuers
            .iter()
            .map(|iss| {
                let s = shared
                    .clone()
                    .unwrap_or_else(|| source(Origin::Issuer(iss.clone())));
                (iss.clone(), s)
            })
            .collect();
        Ok(KeyStore {
            http,
            sources,
            cooldown: oauth.jwks_cooldown,
        })
    }

    /// Fetches every key set once (at start: a wrong issuer or JWKS fails early).
    ///
    /// # Errors
    /// The first key set that cannot be fetched, or holds no usable key.
    pub async fn load(&self) -> anyhow::Result<()> {
        for (iss, source) in &self.sources {
            let _guard = source.fetching.lock().await;
            if !lock(&source.cached).keys.is_empty() {
                continue; // shared with an issuer already loaded
            }
            let keys = self
                .fetch(source)
                .await
                .with_context(|| format!("signing keys of {iss}"))?;
            if keys.is_empty() {
                bail!("signing keys of {iss}: no usable key (RSA, P-256, P-384 or Ed25519)");
            }
            info!(issuer = %iss, keys = keys.len(), "OAuth signing keys loaded");
            let mut cached = lock(&source.cached);
            cached.keys = Arc::new(keys);
            cached.last_attempt = Some(Instant::now());
        }
        Ok(())
    }

    /// The keys that may verify a token of `iss` signed with `alg` under `kid`, fetching the
    /// issuer's keys again when none fits and the cooldown allows.
    ///
    /// # Errors
    /// `Issuer` for an unknown issuer, `UnknownKey` when no key fits, `KeysUnavailable` when
    /// the keys could not be fetched at all.
    pub async fn candidates(
        &self,
        iss: &str,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Vec<DecodingKey>, Rejection> {
        let source = self.sources.get(iss).ok_or(Rejection::Issuer)?;
        let (found, stale) = {
            let c = lock(&source.cached);
            let stale = c.last_attempt.map_or(true, |t| t.elapsed() > KEYS_MAX_AGE);
            (c.keys.candidates(kid, alg), stale)
        };
        if !found.is_empty() {
            // Old keys: this request fetches them again; the others meanwhile use the old ones.
            if stale {
                if let Ok(_guard) = source.fetching.try_lock() {
                    if let Some(fresh) = self.refresh(iss, source).await {
                        let found = fresh.candidates(kid, alg);
                        return (!found.is_empty())
                            .then_some(found)
                            .ok_or(Rejection::UnknownKey);
                    }
                }
            }
            return Ok(found);
        }
        // Bounded: a fetch takes at most FETCH_TIMEOUT, so waiting for one takes little more.
        let guard = tokio::time::timeout(2 * FETCH_TIMEOUT, source.fetching.lock()).await;
        let Ok(_guard) = guard else {
            return Err(Rejection::KeysUnavailable);
        };
        let (keys, last) = {
            let c = lock(&source.cached);
            (c.keys.clone(), c.last_attempt)
        };
        let found = keys.candidates(kid, alg);
        if !found.is_empty() {
            return Ok(found); // fetched meanwhile by another request
        }
        if last.is_some_and(|t| t.elapsed() < self.cooldown) {
            return Err(Rejection::UnknownKey);
        }
        match self.refresh(iss, source).await {
            Some(fresh) => {
                let found = fresh.candidates(kid, alg);
                (!found.is_empty())
                    .then_some(found)
                    .ok_or(Rejection::UnknownKey)
            }
            None if keys.is_empty() => Err(Rejection::KeysUnavailable),
            None => Err(Rejection::UnknownKey),
        }
    }

    /// Fetches `source`'s keys again and keeps them (the caller holds `fetching`); `None`
    /// when the fetch failed (the old keys stay).
    async fn refresh(&self, iss: &str, source: &Source) -> Option<Arc<KeySet>> {
        lock(&source.cached).last_attempt = Some(Instant::now());
        match self.fetch(source).await {
            Ok(fresh) => {
                info!(
                    issuer = iss,
                    keys = fresh.len(),
                    "OAuth signing keys fetched again"
                );
                let fresh = Arc::new(fresh);
                lock(&source.cached).keys = fresh.clone();
                Some(fresh)
            }
            Err(e) => {
                warn!(
                    issuer = iss,
                    err = format!("{e:#}"),
                    "cannot fetch OAuth signing keys"
                );
                None
            }
        }
    }

    async fn fetch(&self, source: &Source) -> anyhow::Result<KeySet> {
        let doc = match &source.origin {
            Origin::File(path) => tokio::fs::read(path)
                .await
                .with_context(|| format!("cannot read {}", path.display()))?,
            Origin::Url(url) => self.get(url).await?,
            Origin::Issuer(iss) => {
                let known = lock(&source.cached).jwks_uri.clone();
                let uri = match known {
                    Some(u) => u,
                    None => self.discover(iss).await?,
                };
                let doc = self.get(&uri).await;
                // Discovered again next time, should the issuer have moved its keys.
                lock(&source.cached).jwks_uri = doc.is_ok().then_some(uri);
                doc?
            }
        };
        KeySet::parse(&doc).map_err(|e| anyhow!("bad JWKS: {e}"))
    }

    /// The issuer's `jwks_uri`, from its RFC 8414 metadata or else its OpenID configuration.
    async fn discover(&self, issuer: &str) -> anyhow::Result<Url> {
        let mut tried = Vec::new();
        for url in metadata_urls(issuer)? {
            let doc = match self.get(&url).await {
                Ok(doc) => doc,
                Err(e) => {
                    tried.push(format!("{url}: {e:#}"));
                    continue;
                }
            };
            let doc: Value = serde_json::from_slice(&doc)
                .with_context(|| format!("{url}: the metadata is not JSON"))?;
            let named = doc.get("issuer").and_then(Value::as_str).unwrap_or("");
            if named != issuer {
                bail!(
                    "{url} names the issuer {named:?}, not {issuer:?}: \
                     pass --oauth-issuer exactly as the provider names itself"
                );
            }
            let uri = doc
                .get("jwks_uri")
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow!("{url}: the metadata has no jwks_uri"))?;
            let uri = Url::parse(uri).with_context(|| format!("{url}: jwks_uri {uri:?}"))?;
            if !allowed_url(&uri) {
                bail!("{url}: jwks_uri {uri} is not https");
            }
            return Ok(uri);
        }
        bail!(
            "no authorization server metadata found ({})",
            tried.join("; ")
        )
    }

    async fn get(&self, url: &Url) -> anyhow::Result<Vec<u8>> {
        let mut resp = self
            .http
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await?;
        read_limited(&mut resp).await
    }
}

/// The HTTP client for the authorization servers: every call bounded by `FETCH_TIMEOUT`, no
/// redirects (a redirect could lead to plain http).
///
/// # Errors
/// When the TLS roots cannot be loaded.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .connect_timeout(FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("mcp-http-bridge/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot build the HTTP client for OAuth")
}

/// A successful response's body, at most `MAX_DOCUMENT` bytes.
///
/// # Errors
/// Another status, a body too long, or the connection failing.
pub async fn read_limited(resp: &mut reqwest::Response) -> anyhow::Result<Vec<u8>> {
    if !resp.status().is_success() {
        bail!("answered {}", resp.status());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > MAX_DOCUMENT {
            bail!("the document exceeds {MAX_DOCUMENT} bytes");
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Where an issuer's metadata may be: RFC 8414 §3.1 (the well-known segment inserted before the
/// issuer's path), then OpenID Connect Discovery §4 (appended to it).
///
/// # Errors
/// When `issuer` is not a URL.
pub fn metadata_urls(issuer: &str) -> anyhow::Result<Vec<Url>> {
    let base = Url::parse(issuer).with_context(|| format!("issuer {issuer:?}"))?;
    let path = base.path().trim_end_matches('/');
    let mut rfc8414 = base.clone();
    rfc8414.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
    let mut oidc = base.clone();
    oidc.set_path(&format!("{path}/.well-known/openid-configuration"));
    Ok(vec![rfc8414, oidc])
}

#[cfg(test)]
#[path = "jwks_tests.rs"]
mod tests;
