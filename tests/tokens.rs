//! Every way an access token can be wrong gets a 401 problem with its own code.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::json;

use crate::common::{TEST_SECRET, TestServer};

fn forge(claims: serde_json::Value, algorithm: Algorithm, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(algorithm),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn claims_for(account: &crate::common::Account, exp_offset_s: i64) -> serde_json::Value {
    let now = chrono::Utc::now().timestamp();
    json!({"sub": account.user_id, "sid": account.session_id, "iat": now, "exp": now + exp_offset_s, "iss": "tasker"})
}

#[tokio::test]
async fn missing_or_non_bearer_credentials() {
    let server = TestServer::spawn().await;
    server
        .get("/api/auth/profile", None)
        .await
        .problem(401, "unauthenticated");
    let basic = server
        .client
        .get(server.url("/api/auth/profile"))
        .basic_auth("a", Some("b"))
        .send()
        .await
        .unwrap();
    let reply = TestServer::reply(basic).await;
    reply.problem(401, "unauthenticated");
    assert!(reply.headers.get("www-authenticate").is_some());
}

#[tokio::test]
async fn garbage_and_tampered_tokens() {
    let server = TestServer::spawn().await;
    let account = server.register().await;
    server
        .get("/api/auth/profile", Some("not-a-jwt"))
        .await
        .problem(401, "invalid_token");

    // Change the payload, keep the signature.
    let parts: Vec<&str> = account.token.split('.').collect();
    let mut payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    payload["sub"] = json!(uuid::Uuid::now_v7());
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        parts[2]
    );
    server
        .get("/api/auth/profile", Some(&tampered))
        .await
        .problem(401, "invalid_token");

    // Change a character in the middle of the signature (the last one may be padding bits).
    let mut signature: Vec<char> = parts[2].chars().collect();
    let middle = signature.len() / 2;
    signature[middle] = if signature[middle] == 'A' { 'B' } else { 'A' };
    let signature: String = signature.into_iter().collect();
    let bad_signature = format!("{}.{}.{}", parts[0], parts[1], signature);
    server
        .get("/api/auth/profile", Some(&bad_signature))
        .await
        .problem(401, "invalid_token");
}

#[tokio::test]
async fn alg_none_and_other_algorithms_are_refused() {
    let server = TestServer::spawn().await;
    let account = server.register().await;
    let claims = claims_for(&account, 600);
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let none = format!("{header}.{}.", URL_SAFE_NO_PAD.encode(claims.to_string()));
    server
        .get("/api/auth/profile", Some(&none))
        .await
        .problem(401, "invalid_token");
    // Right secret, wrong HMAC algorithm.
    let hs512 = forge(claims, Algorithm::HS512, TEST_SECRET);
    server
        .get("/api/auth/profile", Some(&hs512))
        .await
        .problem(401, "invalid_token");
}

#[tokio::test]
async fn a_token_signed_with_the_right_secret_is_accepted() {
    // Guards the forging helper: the tests above fail for the reason they claim.
    let server = TestServer::spawn().await;
    let account = server.register().await;
    let token = forge(claims_for(&account, 600), Algorithm::HS256, TEST_SECRET);
    server.get("/api/auth/profile", Some(&token)).await.ok();
}

#[tokio::test]
async fn expired_tokens_say_so() {
    let server = TestServer::spawn().await;
    let account = server.register().await;
    let expired = forge(claims_for(&account, -5), Algorithm::HS256, TEST_SECRET);
    server
        .get("/api/auth/profile", Some(&expired))
        .await
        .problem(401, "token_expired");
}

#[tokio::test]
async fn wrong_issuer_or_secret_is_invalid() {
    let server = TestServer::spawn().await;
    let account = server.register().await;
    let mut claims = claims_for(&account, 600);
    claims["iss"] = json!("someone-else");
    server
        .get(
            "/api/auth/profile",
            Some(&forge(claims, Algorithm::HS256, TEST_SECRET)),
        )
        .await
        .problem(401, "invalid_token");
    let other_secret = forge(
        claims_for(&account, 600),
        Algorithm::HS256,
        "another-secret-another-secret-another!!",
    );
    server
        .get("/api/auth/profile", Some(&other_secret))
        .await
        .problem(401, "invalid_token");
}

#[tokio::test]
async fn a_valid_signature_for_an_unknown_session_is_revoked() {
    let server = TestServer::spawn().await;
    let account = server.register().await;
    let mut claims = claims_for(&account, 600);
    claims["sid"] = json!(uuid::Uuid::now_v7());
    server
        .get(
            "/api/auth/profile",
            Some(&forge(claims, Algorithm::HS256, TEST_SECRET)),
        )
        .await
        .problem(401, "session_revoked");
}

#[tokio::test]
async fn a_session_token_cannot_speak_for_another_user() {
    let server = TestServer::spawn().await;
    let alice = server.register().await;
    let bob = server.register().await;
    // Bob's user id with Alice's session: the session belongs to someone else.
    let mut claims = claims_for(&alice, 600);
    claims["sub"] = json!(bob.user_id);
    server
        .get(
            "/api/auth/profile",
            Some(&forge(claims, Algorithm::HS256, TEST_SECRET)),
        )
        .await
        .problem(401, "session_revoked");
}

/// Every authenticated operation refuses every kind of bad token, before doing anything.
#[tokio::test]
async fn every_protected_endpoint_refuses_every_bad_token() {
    let server = TestServer::spawn().await;
    let account = server.register().await;
    let revoked = server.login_ok(&account.email).await;
    server
        .call(Method::POST, "/api/auth/logout", Some(&revoked.token), None)
        .await;
    let parts: Vec<&str> = account.token.split('.').collect();
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let tokens: Vec<(Option<String>, &str)> = vec![
        (None, "unauthenticated"),
        (
            Some(format!("{}.{}.{}x", parts[0], parts[1], parts[2])),
            "invalid_token",
        ),
        (
            Some(format!("{none_header}.{}.", parts[1])),
            "invalid_token",
        ),
        (
            Some(forge(
                claims_for(&account, -5),
                Algorithm::HS256,
                TEST_SECRET,
            )),
            "token_expired",
        ),
        (Some(revoked.token.clone()), "session_revoked"),
    ];
    let operations = crate::common::operations(&server).await;
    let protected: Vec<_> = operations.iter().filter(|op| op.secured).collect();
    assert!(
        protected.len() >= 40,
        "the spec lists the protected operations"
    );
    for op in protected {
        let body = (op.method != Method::GET && op.method != Method::DELETE)
            .then(|| json!({"name": "Hacked"}));
        for (token, code) in &tokens {
            let reply = server
                .call(op.method.clone(), &op.path, token.as_deref(), body.clone())
                .await;
            assert_eq!(
                reply.status, 401,
                "{} {} ({}) with {code}: {}",
                op.method, op.path, op.id, reply.body
            );
            reply.problem(401, code);
        }
    }
    // Nothing happened: the account is unchanged and its session alive.
    let me = server
        .get("/api/users/me", Some(&account.token))
        .await
        .ok()
        .clone();
    assert_eq!(me["name"], "Test User");
    assert_eq!(me["version"], 1);
}
