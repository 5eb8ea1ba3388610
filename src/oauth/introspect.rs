//! Opaque access tokens, checked by asking the authorization server (RFC 7662 token
//! introspection, `--oauth-introspection`). Answers are cached by the token's SHA-256 (never
//! the token): a valid one for up to a minute (never past its `exp`), a refusal for ten
//! seconds; at most a few calls are in flight at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use reqwest::Url;
use serde_json::{Map, Value};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::warn;

use super::jwks;
use super::validate::{self, Expect, Rejection, Subject};
use crate::config::Introspection;

/// How long a valid token's answer is reused at most.
pub const CACHE_VALID: Duration = Duration::from_secs(60);
/// How long a refused token's answer is reused.
pub const CACHE_REFUSED: Duration = Duration::from_secs(10);
/// Answers kept at most (when full, expired ones go, then all).
const MAX_CACHED: usize = 10_000;
/// Introspection calls in flight at most; more wait (bounded by the call timeout).
const MAX_CALLS: usize = 16;

type Digest = [u8; 32];

struct Cached {
    answer: Result<Arc<Subject>, Rejection>,
    until: Instant,
}

/// Asks the introspection endpoint about tokens that are not JWTs.
pub struct Introspector {
    http: reqwest::Client,
    url: Url,
    client: Option<(String, String)>,
    // Lock: map operations only.
    cache: Mutex<HashMap<Digest, Cached>>,
    calls: Semaphore,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Introspector {
    /// An introspector for `config`'s endpoint.
    ///
    /// # Errors
    /// When the URL is not one the bridge may call, or the HTTP client cannot be built.
    pub fn new(config: &Introspection) -> anyhow::Result<Introspector> {
        let url = Url::parse(&config.url)
            .with_context(|| format!("--oauth-introspection {}", config.url))?;
        anyhow::ensure!(
            jwks::allowed_url(&url),
            "--oauth-introspection {url}: must be https (http only on loopback)"
        );
        Ok(Introspector {
            http: jwks::http_client()?,
            url,
            client: config.client.clone(),
            cache: Mutex::new(HashMap::new()),
            calls: Semaphore::new(MAX_CALLS),
        })
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<Digest, Cached>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The subject of the opaque `token`, as the authorization server describes it.
    ///
    /// # Errors
    /// Why it is refused; `IntrospectionFailed` when the endpoint could not be asked.
    pub async fn check(&self, token: &str, expect: &Expect<'_>) -> Result<Subject, Rejection> {
        let digest: Digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
            .as_ref()
            .try_into()
            .map_err(|_| Rejection::IntrospectionFailed)?;
        if let Some(c) = self.cache().get(&digest) {
            if c.until > Instant::now() {
                return c.answer.clone().map(|s| (*s).clone());
            }
        }
        let permit = tokio::time::timeout(2 * jwks::FETCH_TIMEOUT, self.calls.acquire()).await;
        let Ok(Ok(_permit)) = permit else {
            return Err(Rejection::IntrospectionFailed);
        };
        let resp = match self.ask(token).await {
            Ok(resp) => resp,
            Err(e) => {
                warn!(err = format!("{e:#}"), "token introspection failed");
                return Err(Rejection::IntrospectionFailed);
            }
        };
        let answer = validate::evaluate(resp, expect, unix_now()).map(Arc::new);
        let until = match &answer {
            Ok(s) => {
                let left = s
                    .claims
                    .get("exp")
                    .and_then(Value::as_u64)
                    .map_or(CACHE_VALID, |exp| {
                        Duration::from_secs(exp.saturating_sub(unix_now()))
                    });
                Instant::now() + left.min(CACHE_VALID)
            }
            Err(_) => Instant::now() + CACHE_REFUSED,
        };
        let mut cache = self.cache();
        if cache.len() >= MAX_CACHED {
            let now = Instant::now();
            cache.retain(|_, c| c.until > now);
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(
            digest,
            Cached {
                answer: answer.clone(),
                until,
            },
        );
        drop(cache);
        answer.map(|s| (*s).clone())
    }

    async fn ask(&self, token: &str) -> anyhow::Result<Map<String, Value>> {
        let mut req = self
            .http
            .post(self.url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&[("token", token), ("token_type_hint", "access_token")]);
        if let Some((id, secret)) = &self.client {
            req = req.basic_auth(id, Some(secret));
        }
        let mut resp = req.send().await?;
        let body = jwks::read_limited(&mut resp).await?;
        serde_json::from_slice(&body).context("the introspection answer is not a JSON object")
    }
}
