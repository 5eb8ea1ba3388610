//! The bridge as an OAuth resource server, in-process, with a small authorization server of the
//! test's own (OpenID discovery and a JWKS it can rotate) and ES256 keys generated here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcp_http_bridge::config::{Introspection, Isolation, JwksSource, OAuth};
use reqwest::header::WWW_AUTHENTICATE;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::support::*;

/// An ES256 signing key and its public JWK.
struct Key {
    kid: String,
    encoding: EncodingKey,
    jwk: Value,
}

impl Key {
    fn new(kid: &str) -> Key {
        let rng = SystemRandom::new();
        let alg = &ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
        let (x, y) = pair.public_key().as_ref()[1..].split_at(32);
        Key {
            kid: kid.into(),
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk: json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
                        "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)}),
        }
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An authorization server serving its OpenID configuration and a JWKS the test may change.
/// It has no RFC 8414 document, so the bridge's discovery must fall back to OpenID's.
struct AuthServer {
    issuer: String,
    keys: Arc<Mutex<Vec<Value>>>,
    /// Opaque tokens and what its introspection endpoint says of them.
    opaque: Arc<Mutex<HashMap<String, Value>>>,
    /// Introspection calls so far.
    introspections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

/// The bridge's credentials at the test's introspection endpoint.
const INTROSPECTION_CLIENT: (&str, &str) = ("bridge", "bridge-secret-0123456789");

impl AuthServer {
    async fn start(keys: &[&Key]) -> AuthServer {
        use axum::routing::{get, post};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let jwks = Arc::new(Mutex::new(
            keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>(),
        ));
        let (served, config) = (
            jwks.clone(),
            json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")}),
        );
        let opaque: Arc<Mutex<HashMap<String, Value>>> = Arc::default();
        let introspections: Arc<AtomicUsize> = Arc::default();
        let (known, calls) = (opaque.clone(), introspections.clone());
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                INTROSPECTION_CLIENT.0, INTROSPECTION_CLIENT.1
            ))
        );
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || async move { config.to_string() }),
            )
            .route(
                "/jwks",
                get(move || {
                    let keys = served.lock().unwrap().clone();
                    async move { json!({ "keys": keys }).to_string() }
                }),
            )
            .route(
                "/introspect",
                post(move |headers: axum::http::HeaderMap, body: String| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    let authorized = headers
                        .get("authorization")
                        .is_some_and(|v| v.as_bytes() == expected.as_bytes());
                    let token = body
                        .split('&')
                        .find_map(|kv| kv.strip_prefix("token="))
                        .unwrap_or("")
                        .to_owned();
                    let answer = known.lock().unwrap().get(&token).cloned();
                    async move {
                        match (authorized, answer) {
                            (false, _) => (axum::http::StatusCode::UNAUTHORIZED, String::new()),
                            (true, a) => (
                                axum::http::StatusCode::OK,
                                a.unwrap_or(json!({"active": false})).to_string(),
                            ),
                        }
                    }
                }),
            );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        AuthServer {
            issuer,
            keys: jwks,
            opaque,
            introspections,
            task,
        }
    }

    fn publish(&self, key: &Key) {
        self.keys.lock().unwrap().push(key.jwk.clone());
    }
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A bridge accepting the tokens of `issuer`, with `tweak` applied to its OAuth settings.
async fn bridge(issuer: &str, tweak: impl FnOnce(&mut mcp_http_bridge::Config)) -> TestBridge {
    let issuer = issuer.to_owned();
    TestBridge::start_with(move |c| {
        c.oauth = Some(OAuth::new([issuer]));
        tweak(c);
    })
    .await
}

/// Claims of a valid token of `sub` for `aud`.
fn claims(iss: &str, aud: &str, sub: &str) -> Value {
    json!({"iss": iss, "aud": aud, "sub": sub, "exp": now() + 300, "iat": now(),
           "scope": "mcp:tools", "email": format!("{sub}@example.com")})
}

/// A client sending `token` (not yet initialized).
fn client(url: &str, token: &str) -> Client {
    let mut c = Client::new(url);
    c.http = reqwest::Client::builder()
        .default_headers(headers(&[("authorization", &format!("Bearer {token}"))]))
        .build()
        .unwrap();
    c
}

async fn initialize_status(url: &str, token: &str) -> (u16, String) {
    let reply = client(url, token)
        .send(BOTH, &initialize_msg(json!(0), "2025-11-25"))
        .await;
    let challenge = reply
        .headers
        .get(WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (reply.status, challenge)
}

#[tokio::test]
async fn metadata_is_public_and_challenges_point_to_it() {
    let key = Key::new("k1");
    let auth = AuthServer::start(&[&key]).await;
    let bridge = bridge(&auth.issuer, |c| {
        c.oauth.as_mut().unwrap().scopes = vec!["mcp:tools".into()];
    })
    .await;
    let suffixed = format!("{}/.well-known/oauth-protected-resource/mcp", bridge.base);
    for url in [
        suffixed.clone(),
        format!("{}/.well-known/oauth-protected-resource", bridge.base),
    ] {
        let resp = reqwest::get(&url).await.unwrap();
        assert_eq!(resp.status(), 200, "{url}");
        let doc: Value = resp.json().await.unwrap();
        assert_eq!(doc["resource"], bridge.url.as_str());
        assert_eq!(doc["authorization_servers"], json!([auth.issuer]));
        assert_eq!(doc["scopes_supported"], json!(["mcp:tools"]));
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
    }
    let other = reqwest::get(format!(
        "{}/.well-known/oauth-authorization-server",
        bridge.base
    ));
    assert_eq!(other.await.unwrap().status(), 404);

    let reply = Client::new(&bridge.url)
        .send(BOTH, &initialize_msg(json!(0), "2025-11-25"))
        .await;
    assert_eq!(reply.status, 401);
    let challenge = reply.headers[WWW_AUTHENTICATE].to_str().unwrap();
    assert_eq!(
        challenge,
        format!("Bearer scope=\"mcp:tools\", resource_metadata=\"{suffixed}\"")
    );
    let (status, challenge) = initialize_status(&bridge.url, "not-a-jwt").await;
    assert_eq!(status, 401);
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    bridge.stop().await.unwrap();
}

#[tokio::test]
async fn only_valid_tokens_for_this_resource_are_accepted() {
    let key = Key::new("k1");
    let stranger = Key::new("k1"); // the same kid, another key
    let auth = AuthServer::start(&[&key]).await;
    let bridge = bridge(&auth.issuer, |c| {
        c.oauth.as_mut().unwrap().scopes = vec!["mcp:tools".into()];
    })
    .await;
    let (iss, aud) = (auth.issuer.as_str(), bridge.url.as_str());
    let valid = claims(iss, aud, "alice");
    let mut c = client(&bridge.url, &key.sign(&valid));
    c.initialize().await;
    c.assert_echo(json!(1), "signed in").await;

    let edit = |k: &str, v: Value| {
        let mut c = valid.clone();
        c[k] = v;
        c
    };
    let none = {
        let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.", part(&json!({"alg": "none"})), part(&valid))
    };
    let hmac = {
        let secret = key.jwk["x"].as_str().unwrap().as_bytes();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        jsonwebtoken::encode(&header, &valid, &EncodingKey::from_secret(secret)).unwrap()
    };
    for (name, token, status, error) in [
        (
            "another audience",
            key.sign(&edit("aud", json!("https://other.example.com/mcp"))),
            401,
            "invalid_token",
        ),
        (
            "another issuer",
            key.sign(&edit("iss", json!("https://evil.example.com"))),
            401,
            "invalid_token",
        ),
        (
            "expired",
            key.sign(&edit("exp", json!(now() - 600))),
            401,
            "invalid_token",
        ),
        (
            "not yet valid",
            key.sign(&edit("nbf", json!(now() + 600))),
            401,
            "invalid_token",
        ),
        ("another key", stranger.sign(&valid), 401, "invalid_token"),
        ("alg none", none, 401, "invalid_token"),
        ("HS256 confusion", hmac, 401, "invalid_token"),
        (
            "opaque",
            "2YotnFZFEjr1zCsicMWpAA".into(),
            401,
            "invalid_token",
        ),
        (
            "missing scope",
            key.sign(&edit("scope", json!("openid"))),
            403,
            "insufficient_scope",
        ),
    ] {
        let (got, challenge) = initialize_status(&bridge.url, &token).await;
        assert_eq!(got, status, "{name}");
        assert!(
            challenge.contains(&format!("error=\"{error}\"")),
            "{name}: {challenge}"
        );
        assert!(
            challenge.contains("resource_metadata="),
            "{name}: {challenge}"
        );
    }
    bridge.stop().await.unwrap();
}

#[tokio::test]
async fn a_rotated_key_is_fetched_without_a_restart() {
    let (old, new) = (Key::new("2026-old"), Key::new("2026-new"));
    let auth = AuthServer::start(&[&old]).await;
    let bridge = bridge(&auth.issuer, |c| {
        c.oauth.as_mut().unwrap().jwks_cooldown = Duration::ZERO;
    })
    .await;
    let valid = claims(&auth.issuer, &bridge.url, "alice");
    let (status, _) = initialize_status(&bridge.url, &new.sign(&valid)).await;
    assert_eq!(status, 401, "a key the issuer has not published");
    auth.publish(&new);
    let mut c = client(&bridge.url, &new.sign(&valid));
    c.initialize().await;
    c.assert_echo(json!(1), "rotated").await;
    let (status, _) = initialize_status(&bridge.url, &old.sign(&valid)).await;
    assert_eq!(status, 200, "the old key still verifies while published");
    bridge.stop().await.unwrap();
}

#[tokio::test]
async fn a_session_belongs_to_the_subject_not_the_token() {
    let key = Key::new("k1");
    let auth = AuthServer::start(&[&key]).await;
    let bridge = bridge(&auth.issuer, |_| {}).await;
    let (iss, aud) = (auth.issuer.as_str(), bridge.url.as_str());
    let mut alice = client(&bridge.url, &key.sign(&claims(iss, aud, "alice")));
    alice.initialize().await;
    // A refreshed token (another expiry, so another string) keeps the session.
    let mut refreshed = claims(iss, aud, "alice");
    refreshed["exp"] = json!(now() + 900);
    let mut again = client(&bridge.url, &key.sign(&refreshed));
    again.session = alice.session.clone();
    again.assert_echo(json!(1), "still alice").await;
    // Another subject of the same issuer gets 404 for it.
    let mut bob = client(&bridge.url, &key.sign(&claims(iss, aud, "bob")));
    bob.session = alice.session.clone();
    let reply = bob.request(json!(2), "tools/list", json!({})).await;
    assert_eq!(reply.status, 404);
    bridge.stop().await.unwrap();
}

#[tokio::test]
async fn user_isolation_gives_each_subject_a_child_with_its_claims() {
    let key = Key::new("k1");
    let auth = AuthServer::start(&[&key]).await;
    let bridge = bridge(&auth.issuer, |c| {
        c.supervision.isolation = Isolation::User;
        c.supervision.claim_env = vec![("email".into(), "USER_EMAIL".into())];
    })
    .await;
    let (iss, aud) = (auth.issuer.as_str(), bridge.url.as_str());
    let mut sessions = Vec::new();
    for sub in ["alice", "alice", "bob"] {
        let token = key.sign(&claims(iss, aud, sub));
        let mut c = client(&bridge.url, &token);
        c.initialize().await;
        let pid = text(&c.call(json!(1), "pid", json!({})).await).to_owned();
        let email = c.call(json!(2), "env", json!({"name": "USER_EMAIL"})).await;
        let auth_env = c
            .call(json!(3), "env", json!({"name": "AUTHORIZATION"}))
            .await;
        assert_eq!(text(&auth_env), "", "no token in the child's environment");
        sessions.push((pid, text(&email).to_owned(), c));
    }
    assert_eq!(sessions[0].1, "alice@example.com");
    assert_eq!(sessions[2].1, "bob@example.com");
    assert_eq!(
        sessions[0].0, sessions[1].0,
        "alice's sessions share her child"
    );
    assert_ne!(sessions[0].0, sessions[2].0, "bob has a child of his own");
    assert_eq!(bridge.health().await["children"]["running"], 2);

    // Stateless (2026-07-28) requests go to their user's child too, or start it.
    let modern = |sub: &str| {
        let mut m = ModernClient::new(&bridge.url);
        let bearer = format!("Bearer {}", key.sign(&claims(iss, aud, sub)));
        m.http = reqwest::Client::builder()
            .default_headers(headers(&[("authorization", &bearer)]))
            .build()
            .unwrap();
        m
    };
    let alice = modern("alice");
    assert_eq!(
        text(&alice.call(json!(1), "pid", json!({})).await),
        sessions[0].0
    );
    let carol = modern("carol");
    let pid = text(&carol.call(json!(1), "pid", json!({})).await).to_owned();
    let email = carol
        .call(json!(2), "env", json!({"name": "USER_EMAIL"}))
        .await;
    assert_eq!(text(&email), "carol@example.com");
    assert!(
        sessions.iter().all(|s| s.0 != pid),
        "carol has a child of her own"
    );
    assert_eq!(bridge.health().await["children"]["running"], 3);
    bridge.stop().await.unwrap();
}

#[tokio::test]
async fn keys_from_a_file_override_discovery() {
    let key = Key::new("file-key");
    let dir = std::env::temp_dir().join(format!("oauth-it-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("jwks.json");
    std::fs::write(&file, json!({"keys": [key.jwk]}).to_string()).unwrap();
    // No server at this issuer: the keys come from the file alone.
    let issuer = "https://id.example.com";
    let jwks = file.clone();
    let bridge = bridge(issuer, move |c| {
        c.oauth.as_mut().unwrap().jwks = Some(JwksSource::File(jwks));
    })
    .await;
    let mut c = client(
        &bridge.url,
        &key.sign(&claims(issuer, &bridge.url, "carol")),
    );
    c.initialize().await;
    c.assert_echo(json!(1), "from a file").await;
    bridge.stop().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn without_oauth_well_known_paths_are_404_even_with_tokens() {
    let bridge = TestBridge::start_with(|c| {
        c.access.tokens = vec![("alice".into(), "a".repeat(24))];
    })
    .await;
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let resp = reqwest::get(format!("{}{path}", bridge.base))
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{path}");
    }
    let reply = Client::new(&bridge.url)
        .send(BOTH, &initialize_msg(json!(0), "2025-11-25"))
        .await;
    assert_eq!(reply.status, 401, "the MCP endpoint still needs the token");
    bridge.stop().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_issuer_fails_the_start() {
    let unused = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", unused.local_addr().unwrap());
    drop(unused);
    let mut config = mcp_http_bridge::Config::new(FIXTURE, Vec::<String>::new());
    config.oauth = Some(OAuth::new([issuer]));
    let err = within("start", mcp_http_bridge::Bridge::start(config))
        .await
        .err()
        .expect("no keys, no start");
    assert!(format!("{err:#}").contains("signing keys of"), "{err:#}");
}

#[tokio::test]
async fn a_user_child_ends_once_idle() {
    let key = Key::new("k1");
    let auth = AuthServer::start(&[&key]).await;
    let bridge = bridge(&auth.issuer, |c| {
        c.supervision.isolation = Isolation::User;
        c.session_timeout = Duration::from_millis(300);
    })
    .await;
    let token = key.sign(&claims(&auth.issuer, &bridge.url, "alice"));
    let mut c = client(&bridge.url, &token);
    c.initialize().await;
    c.assert_echo(json!(1), "before idling").await;
    assert_eq!(bridge.health().await["children"]["running"], 1);
    // The session expires after 300 ms of silence, then the child after 300 ms without one.
    within("the idle user child ends", async {
        while bridge.health().await["children"]["running"] != 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    // Signing in again starts a new one.
    let mut again = client(&bridge.url, &token);
    again.initialize().await;
    again.assert_echo(json!(1), "after idling").await;
    bridge.stop().await.unwrap();
}

#[tokio::test]
async fn opaque_tokens_are_introspected_when_an_endpoint_is_set() {
    let key = Key::new("k1");
    let auth = AuthServer::start(&[&key]).await;
    let (id, secret) = INTROSPECTION_CLIENT;
    let endpoint = format!("{}/introspect", auth.issuer);
    let bridge = bridge(&auth.issuer, |c| {
        let o = c.oauth.as_mut().unwrap();
        o.scopes = vec!["mcp:tools".into()];
        o.introspection = Some(Introspection {
            url: endpoint,
            client: Some((id.into(), secret.into())),
        });
    })
    .await;
    let (iss, aud) = (auth.issuer.as_str(), bridge.url.as_str());
    let answer = |sub: &str, aud: &str, scope: &str| {
        json!({"active": true, "iss": iss, "aud": aud, "sub": sub, "scope": scope,
               "exp": now() + 300, "client_id": "app"})
    };
    auth.opaque.lock().unwrap().extend([
        ("opaque-alice".to_owned(), answer("alice", aud, "mcp:tools")),
        (
            "opaque-foreign".to_owned(),
            answer("alice", "https://other/mcp", "mcp:tools"),
        ),
        ("opaque-unscoped".to_owned(), answer("alice", aud, "openid")),
    ]);
    let mut alice = client(&bridge.url, "opaque-alice");
    alice.initialize().await;
    alice.assert_echo(json!(1), "opaque").await;
    alice.assert_echo(json!(2), "cached").await;
    assert_eq!(
        auth.introspections.load(Ordering::SeqCst),
        1,
        "one call, then the cached answer"
    );
    // The subject is the same as a JWT's: the session is alice's either way.
    let mut jwt = client(&bridge.url, &key.sign(&claims(iss, aud, "alice")));
    jwt.session = alice.session.clone();
    jwt.assert_echo(json!(3), "same subject").await;
    for (token, status) in [
        ("opaque-foreign", 401),
        ("opaque-unknown", 401),
        ("opaque-unscoped", 403),
    ] {
        assert_eq!(
            initialize_status(&bridge.url, token).await.0,
            status,
            "{token}"
        );
    }
    bridge.stop().await.unwrap();
}

#[tokio::test]
async fn the_legacy_sse_endpoint_is_a_resource_of_its_own() {
    let key = Key::new("k1");
    let auth = AuthServer::start(&[&key]).await;
    let bridge = bridge(&auth.issuer, |_| {}).await;
    let meta = |path: &str| {
        reqwest::get(format!(
            "{}/.well-known/oauth-protected-resource{path}",
            bridge.base
        ))
    };
    let doc: Value = meta("/sse").await.unwrap().json().await.unwrap();
    assert_eq!(doc["resource"], bridge.sse_url.as_str());
    let doc: Value = meta("/mcp").await.unwrap().json().await.unwrap();
    assert_eq!(doc["resource"], bridge.url.as_str());

    let open_sse = |token: Option<String>| {
        let mut req = reqwest::Client::new()
            .get(&bridge.sse_url)
            .header("accept", "text/event-stream");
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let refused = open_sse(None).await.unwrap();
    assert_eq!(refused.status(), 401);
    let challenge = refused.headers()[WWW_AUTHENTICATE].to_str().unwrap();
    assert!(
        challenge.ends_with(&format!(
            "resource_metadata=\"{}/.well-known/oauth-protected-resource/sse\"",
            bridge.base
        )),
        "{challenge}"
    );
    // A token for either endpoint's identifier is one for this bridge.
    let for_sse = key.sign(&claims(&auth.issuer, &bridge.sse_url, "alice"));
    assert_eq!(open_sse(Some(for_sse.clone())).await.unwrap().status(), 200);
    assert_eq!(initialize_status(&bridge.url, &for_sse).await.0, 200);
    bridge.stop().await.unwrap();
}

#[tokio::test]
async fn a_public_url_behind_a_prefix_names_both_resources() {
    let key = Key::new("k1");
    let auth = AuthServer::start(&[&key]).await;
    let public = "https://mcp.example.com/tools/mcp";
    let bridge = bridge(&auth.issuer, |c| {
        c.oauth.as_mut().unwrap().public_url = Some(public.into());
    })
    .await;
    for (path, resource) in [
        ("", public),
        ("/mcp", public),
        ("/tools/mcp", public),
        ("/sse", "https://mcp.example.com/tools/sse"),
        ("/tools/sse", "https://mcp.example.com/tools/sse"),
    ] {
        let url = format!("{}/.well-known/oauth-protected-resource{path}", bridge.base);
        let doc: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
        assert_eq!(doc["resource"], resource, "{path}");
    }
    let (status, challenge) = initialize_status(&bridge.url, "").await;
    assert_eq!(status, 401);
    assert!(
        challenge.contains("resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/tools/mcp\""),
        "{challenge}"
    );
    // The audience is the public URL, not the address the bridge listens on.
    let token = key.sign(&claims(&auth.issuer, public, "alice"));
    assert_eq!(initialize_status(&bridge.url, &token).await.0, 200);
    let local = key.sign(&claims(&auth.issuer, &bridge.url, "alice"));
    assert_eq!(initialize_status(&bridge.url, &local).await.0, 401);
    bridge.stop().await.unwrap();
}

#[tokio::test]
async fn static_tokens_still_work_next_to_oauth() {
    let key = Key::new("k1");
    let auth = AuthServer::start(&[&key]).await;
    let script_token = "s".repeat(24);
    let static_token = script_token.clone();
    let bridge = bridge(&auth.issuer, move |c| {
        c.access.tokens = vec![("ci".into(), static_token)];
    })
    .await;
    let mut ci = client(&bridge.url, &script_token);
    ci.initialize().await;
    ci.assert_echo(json!(1), "static").await;
    let mut alice = client(
        &bridge.url,
        &key.sign(&claims(&auth.issuer, &bridge.url, "alice")),
    );
    alice.initialize().await;
    // A session of the static token is not the OAuth subject's, nor the other way round.
    alice.session = ci.session.clone();
    let reply = alice.request(json!(2), "tools/list", json!({})).await;
    assert_eq!(reply.status, 404);
    let (status, challenge) = initialize_status(&bridge.url, &"x".repeat(24)).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("resource_metadata="), "{challenge}");
    bridge.stop().await.unwrap();
}

#[tokio::test]
async fn user_isolation_with_static_tokens_keys_children_by_token_name() {
    let (alice, bob) = ("a".repeat(24), "b".repeat(24));
    let tokens = vec![("alice".into(), alice.clone()), ("bob".into(), bob.clone())];
    let bridge = TestBridge::start_with(move |c| {
        c.access.tokens = tokens;
        c.supervision.isolation = Isolation::User;
    })
    .await;
    let mut pids = Vec::new();
    for token in [&alice, &alice, &bob] {
        let c = bridge.client_with_token(token).await;
        pids.push(text(&c.call(json!(1), "pid", json!({})).await).to_owned());
    }
    assert_eq!(pids[0], pids[1], "one child for alice's sessions");
    assert_ne!(pids[0], pids[2], "another for bob");
    bridge.stop().await.unwrap();
}

#[test]
fn the_binary_refuses_unusable_oauth_flags_with_exit_2() {
    for (args, says) in [
        (
            &["--oauth-issuer", "http://id.example.com"][..],
            "plain http only on loopback",
        ),
        (
            &[
                "--host",
                "0.0.0.0",
                "--oauth-issuer",
                "https://id.example.com",
            ],
            "--public-url is needed",
        ),
        (
            &["--claim-env", "email=E"],
            "--claim-env needs --oauth-issuer",
        ),
        (&["--isolation", "user"], "--isolation user needs users"),
    ] {
        let out = std::process::Command::new(BRIDGE)
            .args(args)
            .args(["--", FIXTURE])
            .env_remove("MCP_HTTP_BRIDGE_TOKEN")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[tokio::test]
async fn a_public_url_is_named_as_clients_write_it() {
    let key = Key::new("k1");
    let auth = AuthServer::start(&[&key]).await;
    let bridge = bridge(&auth.issuer, |c| {
        c.oauth.as_mut().unwrap().public_url = Some("https://mcp.example.com".into());
    })
    .await;
    let url = format!("{}/.well-known/oauth-protected-resource", bridge.base);
    let doc: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    assert_eq!(doc["resource"], "https://mcp.example.com/");
    for aud in ["https://mcp.example.com/", "https://mcp.example.com"] {
        let token = key.sign(&claims(&auth.issuer, aud, "alice"));
        assert_eq!(initialize_status(&bridge.url, &token).await.0, 200, "{aud}");
    }
    bridge.stop().await.unwrap();
}
