//! JWKS parsing, discovery URLs and the URL rule.

use super::*;

#[test]
fn metadata_urls_follow_both_rfcs() {
    let urls = |i| {
        metadata_urls(i)
            .unwrap()
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        urls("https://id.example.com"),
        [
            "https://id.example.com/.well-known/oauth-authorization-server",
            "https://id.example.com/.well-known/openid-configuration"
        ]
    );
    assert_eq!(
        urls("https://id.example.com/realms/dev/"),
        [
            "https://id.example.com/.well-known/oauth-authorization-server/realms/dev",
            "https://id.example.com/realms/dev/.well-known/openid-configuration"
        ]
    );
}

#[test]
fn only_https_or_loopback_http_is_fetched() {
    for (url, ok) in [
        ("https://id.example.com/jwks", true),
        ("http://127.0.0.1:9/jwks", true),
        ("http://[::1]:9/jwks", true),
        ("http://localhost/jwks", true),
        ("http://id.example.com/jwks", false),
        ("file:///etc/jwks", false),
    ] {
        assert_eq!(allowed_url(&Url::parse(url).unwrap()), ok, "{url}");
    }
}

#[test]
fn key_sets_skip_what_cannot_verify_signatures() {
    let doc = serde_json::json!({"keys": [
        {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
        {"kty": "RSA", "use": "enc", "kid": "enc", "n": "sXch", "e": "AQAB", "alg": "RSA-OAEP"},
        {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        {"kty": "EC", "crv": "P-521", "kid": "p521", "x": "AA", "y": "AA"},
        {"kty": "weird"}
    ]});
    let set = KeySet::parse(doc.to_string().as_bytes()).unwrap();
    assert_eq!(set.len(), 1, "only the Ed25519 key is usable");
    assert_eq!(set.candidates(Some("ed"), Algorithm::EdDSA).len(), 1);
    assert_eq!(set.candidates(None, Algorithm::EdDSA).len(), 1);
    assert!(set.candidates(Some("hmac"), Algorithm::HS256).is_empty());
    assert!(set.candidates(Some("ed"), Algorithm::ES256).is_empty());
    assert!(set.candidates(Some("other"), Algorithm::EdDSA).is_empty());
    assert!(KeySet::parse(b"{}").is_err());
    assert!(KeySet::parse(b"[").is_err());
}
