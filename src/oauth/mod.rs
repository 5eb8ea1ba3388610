//! The bridge as an OAuth 2.1 resource server (MCP `basic/authorization`): a request's bearer
//! token must be a JWT access token from a trusted issuer, for this resource, unexpired, with
//! the required scopes; its subject (`iss` + `sub`) becomes the request's principal. Opaque
//! tokens are introspected (RFC 7662) when an endpoint is configured, refused otherwise.
//! Nothing here knows HTTP beyond header text.

pub mod introspect;
pub mod jwks;
pub mod metadata;
pub mod validate;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use reqwest::Url;

use crate::config::{Config, OAuth};
pub use metadata::Challenge;
pub use validate::{Rejection, Subject};

/// Checks access tokens against the configured issuers' keys.
pub struct Verifier {
    config: OAuth,
    keys: jwks::KeyStore,
    introspector: Option<introspect::Introspector>,
}

impl Verifier {
    /// A verifier whose keys are fetched (once) before it returns.
    ///
    /// # Errors
    /// When an issuer's metadata or keys cannot be had.
    pub async fn start(config: &OAuth) -> anyhow::Result<Verifier> {
        let keys = jwks::KeyStore::new(config)?;
        let introspector = config
            .introspection
            .as_ref()
            .map(introspect::Introspector::new)
            .transpose()?;
        keys.load().await?;
        Ok(Verifier {
            config: config.clone(),
            keys,
            introspector,
        })
    }

    /// The subject of `token`, if it is valid for `audience`.
    ///
    /// # Errors
    /// Why it is not.
    pub async fn check(&self, token: &str, audience: &str) -> Result<Subject, Rejection> {
        let c = &self.config;
        let expect = validate::Expect {
            issuers: &c.issuers,
            audience,
            scopes: &c.scopes,
            leeway_secs: c.leeway.as_secs(),
        };
        let peeked = match (validate::peek(token, &c.issuers), &self.introspector) {
            (Err(Rejection::NotJwt), Some(introspector)) => {
                return introspector.check(token, &expect).await
            }
            (peeked, _) => peeked?,
        };
        let keys = self
            .keys
            .candidates(&peeked.iss, peeked.kid.as_deref(), peeked.alg)
            .await?;
        let mut last = Rejection::UnknownKey;
        // Several keys only for a token without `kid`; the first that verifies wins.
        for key in keys.iter().take(8) {
            match validate::verify(token, &peeked, key, &expect) {
                Err(Rejection::Invalid(why)) if why == validate::BAD_SIGNATURE => {
                    last = Rejection::Invalid(why)
                }
                other => return other,
            }
        }
        Err(last)
    }
}

/// A verifier bound to the URL the bridge is served at: the audience, the metadata and the
/// challenges.
pub struct ResourceServer {
    verifier: Arc<Verifier>,
    /// The resource identifier (`--public-url`, or the bound address and endpoint).
    pub resource: String,
    audience: String,
    metadata_url: String,
    paths: Vec<String>,
    document: bytes::Bytes,
}

impl ResourceServer {
    /// Binds `verifier` to the bridge listening on `addr`.
    ///
    /// # Errors
    /// When the public URL is not a URL.
    pub fn new(
        verifier: Arc<Verifier>,
        config: &Config,
        addr: SocketAddr,
        tls: bool,
    ) -> anyhow::Result<ResourceServer> {
        let oauth = &verifier.config;
        let endpoint = config.mcp_path.as_deref().or(config.sse_path.as_deref());
        let resource = match &oauth.public_url {
            Some(u) => u.clone(),
            None => {
                let scheme = if tls { "https" } else { "http" };
                format!("{scheme}://{addr}{}", endpoint.unwrap_or("/"))
            }
        };
        let url = Url::parse(&resource).with_context(|| format!("--public-url {resource}"))?;
        let endpoints = [&config.mcp_path, &config.sse_path]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .chain([url.path()]);
        let paths = metadata::paths(endpoints.filter(|p| *p != "/"));
        let doc = metadata::document(&resource, &oauth.issuers, &oauth.scopes);
        Ok(ResourceServer {
            audience: oauth.audience.clone().unwrap_or_else(|| resource.clone()),
            metadata_url: metadata::metadata_url(&url),
            paths,
            document: crate::jsonrpc::to_bytes(&doc),
            resource,
            verifier,
        })
    }

    /// The metadata document, if `path` is where it is served.
    pub fn metadata_at(&self, path: &str) -> Option<bytes::Bytes> {
        self.paths
            .iter()
            .any(|p| p == path)
            .then(|| self.document.clone())
    }

    /// The subject of the bearer token in `authorization` (the header's value).
    ///
    /// # Errors
    /// The challenge to answer with.
    pub async fn authenticate(&self, authorization: Option<&[u8]>) -> Result<Subject, Challenge> {
        let scopes = &self.verifier.config.scopes;
        let Some(token) = authorization.and_then(bearer_token) else {
            return Err(Challenge {
                status: 401,
                www_authenticate: metadata::challenge(
                    &self.metadata_url,
                    scopes,
                    metadata::Problem::NoToken,
                ),
            });
        };
        match self.verifier.check(token, &self.audience).await {
            Ok(subject) => Ok(subject),
            Err(Rejection::InsufficientScope) => Err(Challenge {
                status: 403,
                www_authenticate: metadata::challenge(
                    &self.metadata_url,
                    scopes,
                    metadata::Problem::InsufficientScope,
                ),
            }),
            Err(r) => {
                let why = r.describe();
                tracing::warn!(reason = %why, "request refused: OAuth token not accepted");
                Err(Challenge {
                    status: 401,
                    www_authenticate: metadata::challenge(
                        &self.metadata_url,
                        scopes,
                        metadata::Problem::InvalidToken(&why),
                    ),
                })
            }
        }
    }
}

/// The token of an `Authorization: Bearer <token>` value (scheme case-insensitive).
pub fn bearer_token(value: &[u8]) -> Option<&str> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
