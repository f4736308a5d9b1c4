//! Registration, login, refresh and logout.

use reqwest::Method;
use serde_json::json;

use std::time::Duration;

use crate::common::{PASSWORD, TestServer, test_config};

#[tokio::test]
async fn first_account_is_admin_and_later_ones_are_users() {
    let server = TestServer::spawn().await;
    let reply = server
        .post(
            "/api/auth/register",
            None,
            json!({"email": "  Ada@Example.COM ", "name": " Ada ", "password": PASSWORD}),
        )
        .await;
    assert_eq!(reply.status, 201);
    let body = reply.ok();
    assert_eq!(body["user"]["email"], "ada@example.com", "email normalized");
    assert_eq!(body["user"]["name"], "Ada", "name trimmed");
    assert_eq!(body["user"]["role"], "admin");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["refresh_token"].as_str().unwrap().starts_with("tkr_"));
    assert!(body["user"].get("password_hash").is_none() && body["user"].get("password").is_none());

    let second = server
        .post(
            "/api/auth/register",
            None,
            json!({"email": "bob@example.com", "name": "Bob", "password": PASSWORD}),
        )
        .await;
    assert_eq!(second.ok()["user"]["role"], "user");
}

#[tokio::test]
async fn duplicate_email_is_a_conflict_whatever_the_case() {
    let server = TestServer::spawn().await;
    server.register_as("carol@example.com", "Carol").await;
    let reply = server
        .post(
            "/api/auth/register",
            None,
            json!({"email": "CAROL@example.com", "name": "Other", "password": PASSWORD}),
        )
        .await;
    reply.problem(409, "email_taken");
}

#[tokio::test]
async fn registration_reports_every_invalid_field() {
    let server = TestServer::spawn().await;
    let reply = server
        .post(
            "/api/auth/register",
            None,
            json!({"email": "not-an-email", "name": "", "password": "short"}),
        )
        .await;
    let mut fields = reply.invalid_fields();
    fields.sort();
    assert_eq!(fields, ["email", "name", "password"]);
}

#[tokio::test]
async fn registration_enforces_lengths() {
    let server = TestServer::spawn().await;
    let cases = [
        (
            json!({"email": format!("{}@example.com", "a".repeat(250)), "name": "N", "password": PASSWORD}),
            "email",
        ),
        (
            json!({"email": "n@example.com", "name": "x".repeat(101), "password": PASSWORD}),
            "name",
        ),
        // 73 ASCII bytes: over bcrypt's limit, refused rather than truncated.
        (
            json!({"email": "p@example.com", "name": "N", "password": "a".repeat(73)}),
            "password",
        ),
        // 25 characters but 75 bytes.
        (
            json!({"email": "q@example.com", "name": "N", "password": "€".repeat(25)}),
            "password",
        ),
        (
            json!({"email": "r@example.com", "name": "line\nbreak", "password": PASSWORD}),
            "name",
        ),
    ];
    for (body, field) in cases {
        let reply = server.post("/api/auth/register", None, body).await;
        assert_eq!(reply.invalid_fields(), [field]);
    }
    // The exact limits are accepted.
    let ok = server
        .post(
            "/api/auth/register",
            None,
            json!({"email": "s@example.com", "name": "é".repeat(100), "password": "a".repeat(72)}),
        )
        .await;
    assert_eq!(ok.status, 201, "{}", ok.body);
    server.login("s@example.com", &"a".repeat(72)).await.ok();
    server
        .login("s@example.com", &"a".repeat(73))
        .await
        .problem(401, "invalid_credentials");
}

#[tokio::test]
async fn nothing_is_written_when_registration_fails() {
    let server = TestServer::spawn().await;
    server
        .post(
            "/api/auth/register",
            None,
            json!({"email": "dan@example.com", "name": "", "password": PASSWORD}),
        )
        .await
        .problem(422, "validation_failed");
    server
        .login("dan@example.com", PASSWORD)
        .await
        .problem(401, "invalid_credentials");
    // The email is still free.
    server.register_as("dan@example.com", "Dan").await;
}

#[tokio::test]
async fn login_succeeds_with_any_email_case() {
    let server = TestServer::spawn().await;
    let account = server.register_as("erin@example.com", "Erin").await;
    let reply = server.login("ERIN@example.com", PASSWORD).await;
    let body = reply.ok();
    assert_eq!(body["user"]["id"], account.user_id.as_str());
    assert_ne!(
        body["session_id"],
        account.session_id.as_str(),
        "a login opens a new session"
    );
}

#[tokio::test]
async fn unknown_email_and_wrong_password_look_the_same() {
    let server = TestServer::spawn().await;
    server.register_as("fay@example.com", "Fay").await;
    let wrong_password = server.login("fay@example.com", "not the password").await;
    let unknown_email = server.login("nobody@example.com", PASSWORD).await;
    let malformed_email = server.login("not an email", PASSWORD).await;
    for reply in [&wrong_password, &unknown_email, &malformed_email] {
        reply.problem(401, "invalid_credentials");
    }
    assert_eq!(
        wrong_password.body, unknown_email.body,
        "identical bodies reveal nothing"
    );
}

#[tokio::test]
async fn refresh_rotates_the_refresh_token() {
    let server = TestServer::spawn().await;
    let account = server.register().await;
    let first = server
        .post(
            "/api/auth/refresh",
            None,
            json!({"refresh_token": account.refresh_token}),
        )
        .await;
    let body = first.ok().clone();
    assert_eq!(
        body["session_id"],
        account.session_id.as_str(),
        "same session"
    );
    assert_ne!(body["refresh_token"], account.refresh_token.as_str());
    let new_token = body["token"].as_str().unwrap();
    server.get("/api/auth/profile", Some(new_token)).await.ok();

    let second = server
        .post(
            "/api/auth/refresh",
            None,
            json!({"refresh_token": body["refresh_token"]}),
        )
        .await;
    second.ok();
}

#[tokio::test]
async fn reusing_a_refresh_token_revokes_the_session() {
    let server = TestServer::spawn().await;
    let account = server.register().await;
    let rotated = server
        .post(
            "/api/auth/refresh",
            None,
            json!({"refresh_token": account.refresh_token}),
        )
        .await;
    let rotated = rotated.ok().clone();

    // The old token comes back (a stolen copy): refused, and the whole session dies.
    server
        .post(
            "/api/auth/refresh",
            None,
            json!({"refresh_token": account.refresh_token}),
        )
        .await
        .problem(401, "invalid_refresh_token");
    server
        .post(
            "/api/auth/refresh",
            None,
            json!({"refresh_token": rotated["refresh_token"]}),
        )
        .await
        .problem(401, "invalid_refresh_token");
    server
        .get("/api/auth/profile", rotated["token"].as_str())
        .await
        .problem(401, "session_revoked");
    server
        .get("/api/auth/profile", Some(&account.token))
        .await
        .problem(401, "session_revoked");
}

#[tokio::test]
async fn unknown_refresh_tokens_are_refused() {
    let server = TestServer::spawn().await;
    for token in ["", "tkr_0000", "garbage with spaces"] {
        server
            .post("/api/auth/refresh", None, json!({"refresh_token": token}))
            .await
            .problem(401, "invalid_refresh_token");
    }
}

#[tokio::test]
async fn logout_revokes_access_and_refresh_tokens() {
    let server = TestServer::spawn().await;
    let account = server.register().await;
    let other_device = server.login_ok(&account.email).await;
    let reply = server
        .call(Method::POST, "/api/auth/logout", Some(&account.token), None)
        .await;
    assert_eq!(reply.status, 204);
    server.assert_signed_out(&account).await;
    // Only that session ended.
    server
        .get("/api/auth/profile", Some(&other_device.token))
        .await
        .ok();
    // Logging out twice: the token is already dead.
    server
        .call(Method::POST, "/api/auth/logout", Some(&account.token), None)
        .await
        .problem(401, "session_revoked");
}

#[tokio::test]
async fn sign_in_works_again_after_logout() {
    let server = TestServer::spawn().await;
    let account = server.register().await;
    server
        .call(Method::POST, "/api/auth/logout", Some(&account.token), None)
        .await;
    let again = server.login_ok(&account.email).await;
    server
        .get("/api/auth/profile", Some(&again.token))
        .await
        .ok();
}

#[tokio::test]
async fn an_expired_session_cannot_be_refreshed() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = test_config(tmp.path());
    config.token_ttl = Duration::from_secs(1);
    config.refresh_ttl = Duration::from_secs(1);
    let server = TestServer::spawn_with(config).await;
    let account = server.register().await;
    // Waiting for an expiry, not timing anything.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    server
        .post(
            "/api/auth/refresh",
            None,
            json!({"refresh_token": account.refresh_token}),
        )
        .await
        .problem(401, "invalid_refresh_token");
    server
        .get("/api/auth/profile", Some(&account.token))
        .await
        .problem(401, "token_expired");
    server.stop().await;
}

#[tokio::test]
async fn a_password_hashed_at_an_old_cost_is_upgraded_at_login() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = test_config(tmp.path());
    config.bcrypt_cost = 5;
    let server = TestServer::spawn_with(config.clone()).await;
    let account = server.register().await;
    server.stop().await;

    config.bcrypt_cost = 4;
    let server = TestServer::spawn_with(config.clone()).await;
    server.login_ok(&account.email).await;
    // Still the same password, sessions untouched.
    server
        .get("/api/auth/profile", Some(&account.token))
        .await
        .ok();
    server.login_ok(&account.email).await;
    server.stop().await;

    let store = tasker::store::Store::open(&config.db_path()).unwrap();
    let email = tasker::domain::Email::parse(&account.email).unwrap();
    let user = store.user_by_email(&email).unwrap().unwrap();
    assert_eq!(user.password_hash.cost(), Some(4));
    assert_eq!(user.version, 1, "an upgrade is not a change the owner made");
}

/// Issue 14: a disabled account answered 403 `account_disabled` to its right password and 401
/// `invalid_credentials` to a wrong one: a password oracle. Now login, refresh and the web
/// sign-in answer a disabled account exactly as they answer a wrong password or token (the
/// password is still checked, so the time does not tell either).
#[tokio::test]
async fn a_disabled_account_answers_the_same_whatever_the_password() {
    use crate::common::web::WebClient;
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::spawn_with(test_config(tmp.path())).await;
    server.register().await;
    let gone = server.register_as("gone@example.com", "Gone").await;
    server.stop().await;
    tasker::ops::users::set_disabled(tmp.path(), "gone@example.com", true).unwrap();
    let server = TestServer::spawn_with(test_config(tmp.path())).await;

    let right = server.login("gone@example.com", PASSWORD).await;
    let wrong = server.login("gone@example.com", "not the password").await;
    let nobody = server.login("nobody@example.com", PASSWORD).await;
    right.problem(401, "invalid_credentials");
    for other in [&wrong, &nobody] {
        assert_eq!(right.status, other.status);
        assert_eq!(right.body, other.body);
        assert_eq!(
            right.headers.get("www-authenticate"),
            other.headers.get("www-authenticate")
        );
    }

    let refresh = |token: String| {
        let server = &server;
        async move {
            server
                .post("/api/auth/refresh", None, json!({"refresh_token": token}))
                .await
        }
    };
    let disabled = refresh(gone.refresh_token.clone()).await;
    let unknown = refresh(format!("tkr_{}", "0".repeat(43))).await;
    disabled.problem(401, "invalid_refresh_token");
    assert_eq!(disabled.body, unknown.body);

    let mut web = WebClient::new(&server);
    let mut pages = Vec::new();
    for password in [PASSWORD, "not the password"] {
        let page = web
            .post(
                "/signin",
                &[("email", "gone@example.com"), ("password", password)],
            )
            .await;
        assert!(web.cookie.is_none(), "no session for a disabled account");
        pages.push(page);
    }
    assert_eq!(pages[0].status, 422, "{}", pages[0].html);
    assert_eq!(pages[0].status, pages[1].status);
    assert_eq!(pages[0].html, pages[1].html);
    assert!(
        pages[0]
            .html
            .contains("The email or password is incorrect.")
    );
}
