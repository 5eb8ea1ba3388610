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

    /// The subject of `token`, if it is valid for one of `audiences`.
    ///
    /// # Errors
    /// Why it is not.
    pub async fn check(&self, token: &str, audiences: &[String]) -> Result<Subject, Rejection> {
        let c = &self.config;
        let expect = validate::Expect {
            issuers: &c.issuers,
            audiences,
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

/// A verifier bound to the URLs the bridge is served at: the audiences, the metadata and the
/// challenges.
pub struct ResourceServer {
    verifier: Arc<Verifier>,
    /// The MCP endpoint's resource identifier (`--public-url`, or the bound address and path).
    pub resource: String,
    /// The MCP endpoint's resource, then (when both transports are served) the legacy SSE
    /// endpoint's: a client checks that the metadata names the URL it connects to.
    resources: Vec<Resource>,
    /// What a token's `aud` must name one of.
    audiences: Vec<String>,
}

/// One endpoint's resource: its identifier, the request paths it covers, its metadata.
struct Resource {
    id: String,
    endpoints: Vec<String>,
    metadata_paths: Vec<String>,
    metadata_url: String,
    document: bytes::Bytes,
}

impl Resource {
    fn new(
        id: String,
        endpoints: Vec<String>,
        suffixes: &[&str],
        oauth: &OAuth,
    ) -> anyhow::Result<Resource> {
        let url = Url::parse(&id).with_context(|| format!("--public-url {id}"))?;
        let doc = metadata::document(&id, &oauth.issuers, &oauth.scopes);
        Ok(Resource {
            metadata_url: metadata::metadata_url(&url),
            metadata_paths: metadata::paths(suffixes.iter().copied().filter(|p| *p != "/")),
            document: crate::jsonrpc::to_bytes(&doc),
            endpoints,
            id,
        })
    }
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
        let (mcp, sse, message) = (&config.mcp_path, &config.sse_path, &config.message_path);
        let main_path = mcp.as_deref().or(sse.as_deref()).unwrap_or("/");
        let given = match &oauth.public_url {
            Some(u) => u.clone(),
            None => {
                let scheme = if tls { "https" } else { "http" };
                format!("{scheme}://{addr}{main_path}")
            }
        };
        let url = Url::parse(&given).with_context(|| format!("--public-url {given}"))?;
        // As clients write it after parsing (`https://h` becomes `https://h/`): they ask for
        // tokens for the metadata's `resource` so written.
        let id = url.to_string();
        // The legacy SSE endpoint's own identifier, where the public URL shows how paths map:
        // it ends with the MCP path, behind whatever prefix the proxy adds.
        let prefix = url.path().strip_suffix(main_path).map(str::to_owned);
        let sse_id = match (mcp, sse, &prefix) {
            (Some(_), Some(sse), Some(prefix)) => {
                let mut u = url.clone();
                u.set_path(&format!("{prefix}{sse}"));
                Some((u.to_string(), format!("{prefix}{sse}")))
            }
            _ => None,
        };
        let mut main_endpoints: Vec<String> = mcp.iter().cloned().collect();
        if sse_id.is_none() {
            main_endpoints.extend(sse.iter().chain(message).cloned());
        }
        let mut suffixes = vec![main_path, url.path()];
        if mcp.is_none() {
            suffixes.extend(sse.as_deref());
        }
        let mut resources = vec![Resource::new(id.clone(), main_endpoints, &suffixes, oauth)?];
        if let (Some((sse_id, public_sse)), Some(sse)) = (sse_id, sse) {
            let endpoints = std::iter::once(sse).chain(message).cloned().collect();
            let suffixes = [sse.as_str(), public_sse.as_str()];
            resources.push(Resource::new(sse_id, endpoints, &suffixes, oauth)?);
        }
        let audiences = match &oauth.audience {
            Some(a) => vec![a.clone()],
            None => {
                let mut all: Vec<String> = resources.iter().map(|r| r.id.clone()).collect();
                // Tokens configured at the provider with the URL as the operator wrote it.
                if !all.contains(&given) {
                    all.push(given);
                }
                all
            }
        };
        Ok(ResourceServer {
            resource: id,
            resources,
            audiences,
            verifier,
        })
    }

    /// The metadata document, if `path` is where one is served.
    pub fn metadata_at(&self, path: &str) -> Option<bytes::Bytes> {
        self.resources
            .iter()
            .find(|r| r.metadata_paths.iter().any(|p| p == path))
            .map(|r| r.document.clone())
    }

    /// The metadata URL a challenge on `path` points to.
    fn metadata_url_for(&self, path: &str) -> &str {
        let r = self
            .resources
            .iter()
            .find(|r| r.endpoints.iter().any(|e| e == path));
        &r.unwrap_or(&self.resources[0]).metadata_url
    }

    /// The subject of the bearer token in `authorization` (the header's value) of a request
    /// to `path`.
    ///
    /// # Errors
    /// The challenge to answer with.
    pub async fn authenticate(
        &self,
        authorization: Option<&[u8]>,
        path: &str,
    ) -> Result<Subject, Challenge> {
        let scopes = &self.verifier.config.scopes;
        let metadata_url = self.metadata_url_for(path);
        let Some(token) = authorization.and_then(bearer_token) else {
            return Err(Challenge {
                status: 401,
                www_authenticate: metadata::challenge(
                    metadata_url,
                    scopes,
                    metadata::Problem::NoToken,
                ),
            });
        };
        match self.verifier.check(token, &self.audiences).await {
            Ok(subject) => Ok(subject),
            Err(Rejection::InsufficientScope) => Err(Challenge {
                status: 403,
                www_authenticate: metadata::challenge(
                    metadata_url,
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
                        metadata_url,
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
