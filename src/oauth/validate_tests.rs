//! Table-driven checks of `peek` + `verify` with keys generated here, and of the key store's
//! refetch cooldown.

use super::*;
use crate::oauth::jwks::KeySet;
use jsonwebtoken::{EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::json;

const ISS: &str = "https://id.example.com";
const AUD: &str = "https://bridge.example.com/mcp";

/// A signing key and its public JWK.
pub(crate) struct TestKey {
    pub alg: Algorithm,
    pub kid: String,
    pub encoding: EncodingKey,
    pub jwk: Value,
    /// The public key's raw bytes (for the HMAC confusion attempt).
    pub public: Vec<u8>,
}

impl TestKey {
    pub fn es256(kid: &str) -> TestKey {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let public = pair.public_key().as_ref().to_vec();
        let (x, y) = public[1..].split_at(32);
        TestKey {
            alg: Algorithm::ES256,
            kid: kid.into(),
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk: json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
                        "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)}),
            public,
        }
    }

    pub fn ed25519(kid: &str) -> TestKey {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let public = pair.public_key().as_ref().to_vec();
        TestKey {
            alg: Algorithm::EdDSA,
            kid: kid.into(),
            encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
            jwk: json!({"kty": "OKP", "crv": "Ed25519", "kid": kid,
                        "x": URL_SAFE_NO_PAD.encode(&public)}),
            public,
        }
    }

    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn claims() -> Value {
    json!({"iss": ISS, "sub": "alice", "aud": AUD, "exp": now() + 300, "iat": now(),
           "scope": "openid mcp:tools", "email": "alice@example.com"})
}

fn with(changes: Value) -> Value {
    let mut c = claims();
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

/// A token from raw header and claims JSON, with `sig` as its signature part.
fn raw_token(header: Value, claims: &Value, sig: &[u8]) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.{}",
        part(&header),
        part(claims),
        URL_SAFE_NO_PAD.encode(sig)
    )
}

/// `peek` then `verify` with the keys of `set`, as the verifier does.
fn check(set: &KeySet, token: &str, scopes: &[String]) -> Result<Subject, Rejection> {
    let issuers = vec![ISS.to_owned()];
    let peeked = peek(token, &issuers)?;
    let keys = set.candidates(peeked.kid.as_deref(), peeked.alg);
    let key = keys.first().ok_or(Rejection::UnknownKey)?;
    let expect = Expect {
        issuers: &issuers,
        audiences: &[AUD.to_owned()],
        scopes,
        leeway_secs: 60,
    };
    verify(token, &peeked, key, &expect)
}

#[test]
fn tokens_are_checked_for_signature_issuer_audience_time_and_algorithm() {
    let es = TestKey::es256("es");
    let ed = TestKey::ed25519("ed");
    let impostor = TestKey::es256("es"); // same kid, another key
    let doc = json!({"keys": [es.jwk, ed.jwk]}).to_string();
    let set = KeySet::parse(doc.as_bytes()).unwrap();
    let hmac_confusion = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("es".into());
        let key = EncodingKey::from_secret(&es.public);
        jsonwebtoken::encode(&header, &claims(), &key).unwrap()
    };
    let invalid = |why: &str| Err(Rejection::Invalid(why.into()));
    let cases: Vec<(&str, String, Result<(), Rejection>)> = vec![
        ("valid ES256", es.sign(&claims()), Ok(())),
        ("valid EdDSA", ed.sign(&claims()), Ok(())),
        (
            "audience list holding ours",
            es.sign(&with(json!({"aud": ["other", AUD]}))),
            Ok(()),
        ),
        (
            "expired within the leeway",
            es.sign(&with(json!({"exp": now() - 30}))),
            Ok(()),
        ),
        (
            "wrong audience",
            es.sign(&with(json!({"aud": "https://other.example.com/mcp"}))),
            invalid("the token was issued for another audience"),
        ),
        (
            "no audience",
            es.sign(&with(json!({"aud": null}))),
            invalid("the token has no aud claim"),
        ),
        (
            "foreign issuer",
            es.sign(&with(json!({"iss": "https://evil.example.com"}))),
            Err(Rejection::Issuer),
        ),
        (
            "expired",
            es.sign(&with(json!({"exp": now() - 120}))),
            invalid("the token has expired"),
        ),
        (
            "no expiry",
            es.sign(&with(json!({"exp": null}))),
            invalid("the token has no exp claim"),
        ),
        (
            "not yet valid",
            es.sign(&with(json!({"nbf": now() + 300}))),
            invalid("the token is not valid yet (nbf)"),
        ),
        (
            "no subject",
            es.sign(&with(json!({"sub": null}))),
            invalid("the token has no sub claim"),
        ),
        (
            "signed by another key",
            impostor.sign(&claims()),
            invalid(BAD_SIGNATURE),
        ),
        (
            "alg none",
            raw_token(json!({"alg": "none", "kid": "es"}), &claims(), b""),
            Err(Rejection::Algorithm("none".into())),
        ),
        (
            "HS256 with the public key as secret",
            hmac_confusion,
            Err(Rejection::Algorithm("HS256".into())),
        ),
        (
            "critical extension",
            raw_token(
                json!({"alg": "ES256", "kid": "es", "crit": ["exp"]}),
                &claims(),
                b"x",
            ),
            invalid("the token has critical header extensions"),
        ),
        (
            "opaque token",
            "2YotnFZFEjr1zCsicMWpAA".into(),
            Err(Rejection::NotJwt),
        ),
        ("garbage parts", "a.b.c".into(), Err(Rejection::NotJwt)),
        (
            "unknown kid",
            TestKey::es256("new").sign(&claims()),
            Err(Rejection::UnknownKey),
        ),
    ];
    for (name, token, want) in cases {
        let got = check(&set, &token, &[]).map(|_| ());
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn the_subject_is_issuer_and_sub_and_claims_are_kept() {
    let es = TestKey::es256("es");
    let set = KeySet::parse(json!({"keys": [es.jwk]}).to_string().as_bytes()).unwrap();
    let s = check(&set, &es.sign(&claims()), &[]).unwrap();
    assert_eq!(&*s.principal, "https://id.example.com#alice");
    assert_eq!((s.issuer.as_str(), s.subject.as_str()), (ISS, "alice"));
    assert_eq!(s.claim_text("email").as_deref(), Some("alice@example.com"));
    assert_eq!(s.claim_text("exp"), Some((now() + 300).to_string()));
    assert_eq!(s.claim_text("missing"), None);
}

#[test]
fn every_required_scope_must_be_granted() {
    let es = TestKey::es256("es");
    let set = KeySet::parse(json!({"keys": [es.jwk]}).to_string().as_bytes()).unwrap();
    let need = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    for (name, grant, required, ok) in [
        (
            "scope string",
            json!({"scope": "a mcp:tools"}),
            need(&["mcp:tools"]),
            true,
        ),
        (
            "scp list",
            json!({"scope": null, "scp": ["mcp:tools", "b"]}),
            need(&["mcp:tools", "b"]),
            true,
        ),
        (
            "scp string",
            json!({"scope": null, "scp": "mcp:tools"}),
            need(&["mcp:tools"]),
            true,
        ),
        (
            "one missing",
            json!({"scope": "mcp:tools"}),
            need(&["mcp:tools", "admin"]),
            false,
        ),
        (
            "prefix is not a scope",
            json!({"scope": "mcp:tools:read"}),
            need(&["mcp:tools"]),
            false,
        ),
        (
            "none granted",
            json!({"scope": null}),
            need(&["mcp:tools"]),
            false,
        ),
        ("none required", json!({"scope": null}), need(&[]), true),
    ] {
        let got = check(&set, &es.sign(&with(grant)), &required).map(|_| ());
        let want = if ok {
            Ok(())
        } else {
            Err(Rejection::InsufficientScope)
        };
        assert_eq!(got, want, "{name}");
    }
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_keys_at_most_once_per_cooldown() {
    let dir = std::env::temp_dir().join(format!("jwks-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("jwks.json");
    let (old, new) = (TestKey::es256("old"), TestKey::es256("new"));
    std::fs::write(&file, json!({"keys": [old.jwk]}).to_string()).unwrap();
    let store = |cooldown| {
        let mut oauth = crate::config::OAuth::new([ISS]);
        oauth.jwks = Some(crate::config::JwksSource::File(file.clone()));
        oauth.jwks_cooldown = cooldown;
        crate::oauth::jwks::KeyStore::new(&oauth).unwrap()
    };
    let (slow, fast) = (
        store(std::time::Duration::from_secs(3600)),
        store(std::time::Duration::ZERO),
    );
    slow.load().await.unwrap();
    fast.load().await.unwrap();
    std::fs::write(&file, json!({"keys": [old.jwk, new.jwk]}).to_string()).unwrap();
    let alg = Algorithm::ES256;
    assert_eq!(
        slow.candidates(ISS, Some("new"), alg).await.err(),
        Some(Rejection::UnknownKey),
        "within the cooldown the keys are not fetched again"
    );
    assert_eq!(
        fast.candidates(ISS, Some("new"), alg).await.unwrap().len(),
        1
    );
    assert_eq!(
        fast.candidates("https://evil.example.com", Some("new"), alg)
            .await
            .err(),
        Some(Rejection::Issuer)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(start_paused = true)]
async fn keys_the_issuer_withdrew_stop_verifying_once_the_cache_is_old() {
    let dir = std::env::temp_dir().join(format!("jwks-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("jwks.json");
    let (old, new) = (TestKey::es256("old"), TestKey::es256("new"));
    std::fs::write(&file, json!({"keys": [old.jwk]}).to_string()).unwrap();
    let mut oauth = crate::config::OAuth::new([ISS]);
    oauth.jwks = Some(crate::config::JwksSource::File(file.clone()));
    let store = crate::oauth::jwks::KeyStore::new(&oauth).unwrap();
    store.load().await.unwrap();
    std::fs::write(&file, json!({"keys": [new.jwk]}).to_string()).unwrap();
    let alg = Algorithm::ES256;
    assert_eq!(
        store.candidates(ISS, Some("old"), alg).await.unwrap().len(),
        1
    );
    let old_enough = crate::oauth::jwks::KEYS_MAX_AGE + std::time::Duration::from_secs(1);
    tokio::time::advance(old_enough).await;
    assert_eq!(
        store.candidates(ISS, Some("old"), alg).await.err(),
        Some(Rejection::UnknownKey),
        "withdrawn"
    );
    assert_eq!(
        store.candidates(ISS, Some("new"), alg).await.unwrap().len(),
        1
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn introspection_answers_are_checked_like_claims() {
    let issuers = vec![ISS.to_owned()];
    let scopes = vec!["mcp:tools".to_owned()];
    let expect = Expect {
        issuers: &issuers,
        audiences: &[AUD.to_owned()],
        scopes: &scopes,
        leeway_secs: 60,
    };
    let now = now() as u64;
    let base = json!({"active": true, "iss": ISS, "aud": AUD, "sub": "alice",
                      "exp": now + 300, "scope": "mcp:tools", "client_id": "app"});
    let edit = |changes: Value| {
        let mut c = base.clone();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c.as_object().unwrap().clone()
    };
    let invalid = |why: &str| Err(Rejection::Invalid(why.into()));
    for (name, resp, want) in [
        ("valid", edit(json!({})), Ok("https://id.example.com#alice")),
        (
            "no iss: the one issuer",
            edit(json!({"iss": null})),
            Ok("https://id.example.com#alice"),
        ),
        (
            "client credentials: client_id",
            edit(json!({"sub": null})),
            Ok("https://id.example.com#app"),
        ),
        (
            "audience list",
            edit(json!({"aud": ["x", AUD]})),
            Ok("https://id.example.com#alice"),
        ),
        (
            "inactive",
            edit(json!({"active": false})),
            invalid("the token is not active"),
        ),
        (
            "active as a string",
            edit(json!({"active": "true"})),
            invalid("the token is not active"),
        ),
        (
            "foreign issuer",
            edit(json!({"iss": "https://evil.example.com"})),
            Err(Rejection::Issuer),
        ),
        (
            "another audience",
            edit(json!({"aud": "https://other/mcp"})),
            invalid("the token was issued for another audience"),
        ),
        (
            "no audience",
            edit(json!({"aud": null})),
            invalid("the token has no aud claim"),
        ),
        (
            "expired",
            edit(json!({"exp": now - 120})),
            invalid("the token has expired"),
        ),
        (
            "not yet valid",
            edit(json!({"nbf": now + 600})),
            invalid("the token is not valid yet (nbf)"),
        ),
        (
            "no subject",
            edit(json!({"sub": null, "client_id": null})),
            invalid("the introspection names no subject"),
        ),
        (
            "missing scope",
            edit(json!({"scope": "openid"})),
            Err(Rejection::InsufficientScope),
        ),
    ] {
        let got = evaluate(resp, &expect, now).map(|s| s.principal.to_string());
        assert_eq!(got, want.map(str::to_owned), "{name}");
    }
}
