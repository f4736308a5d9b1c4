//! Session list and revocation, and password changes signing other devices out.

use reqwest::Method;
use serde_json::json;

use crate::common::{PASSWORD, TestServer};

#[tokio::test]
async fn sessions_list_marks_the_current_one() {
    let server = TestServer::spawn().await;
    let account = server.register().await;
    let laptop = server.login_ok(&account.email).await;
    let reply = server.get("/api/auth/sessions", Some(&laptop.token)).await;
    let body = reply.ok();
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(body["next_cursor"], serde_json::Value::Null);
    let current: Vec<_> = items.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], laptop.session_id.as_str());
    assert_eq!(items[0]["id"], account.session_id.as_str(), "oldest first");
    assert_eq!(items[0]["ip"], "127.0.0.1");
}

#[tokio::test]
async fn sessions_paginate_without_gaps_or_repeats() {
    let server = TestServer::spawn().await;
    let account = server.register().await;
    let mut expected = vec![account.session_id.clone()];
    for _ in 0..4 {
        expected.push(server.login_ok(&account.email).await.session_id);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/auth/sessions?limit=2&cursor={c}"),
            None => "/api/auth/sessions?limit=2".to_string(),
        };
        let body = server.get(&path, Some(&account.token)).await.ok().clone();
        let items = body["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|s| s["id"].as_str().unwrap().to_string()));
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn bad_page_parameters_are_refused() {
    let server = TestServer::spawn().await;
    let account = server.register().await;
    for path in [
        "/api/auth/sessions?limit=0",
        "/api/auth/sessions?limit=201",
        "/api/auth/sessions?limit=ten",
    ] {
        server
            .get(path, Some(&account.token))
            .await
            .problem(400, "invalid_parameter");
    }
    let reply = server
        .get("/api/auth/sessions?cursor=%21%21", Some(&account.token))
        .await;
    assert_eq!(reply.invalid_fields(), ["cursor"]);
}

#[tokio::test]
async fn revoking_a_session_signs_that_device_out() {
    let server = TestServer::spawn().await;
    let account = server.register().await;
    let phone = server.login_ok(&account.email).await;
    // The phone's token has been checked (and its check cached) before it is revoked.
    for _ in 0..3 {
        server
            .get("/api/auth/profile", Some(&phone.token))
            .await
            .ok();
    }
    let path = format!("/api/auth/sessions/{}", phone.session_id);
    let reply = server
        .call(Method::DELETE, &path, Some(&account.token), None)
        .await;
    assert_eq!(reply.status, 204);
    server.assert_signed_out(&phone).await;
    server
        .get("/api/auth/profile", Some(&account.token))
        .await
        .ok();
    // Already gone.
    server
        .call(Method::DELETE, &path, Some(&account.token), None)
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn another_users_session_is_not_found() {
    let server = TestServer::spawn().await;
    let alice = server.register().await;
    let mallory = server.register().await;
    let path = format!("/api/auth/sessions/{}", alice.session_id);
    server
        .call(Method::DELETE, &path, Some(&mallory.token), None)
        .await
        .problem(404, "not_found");
    server
        .get("/api/auth/profile", Some(&alice.token))
        .await
        .ok();
}

#[tokio::test]
async fn bad_session_ids_are_bad_requests() {
    let server = TestServer::spawn().await;
    let account = server.register().await;
    server
        .call(
            Method::DELETE,
            "/api/auth/sessions/not-a-uuid",
            Some(&account.token),
            None,
        )
        .await
        .problem(400, "invalid_parameter");
    let unknown = format!("/api/auth/sessions/{}", uuid::Uuid::now_v7());
    server
        .call(Method::DELETE, &unknown, Some(&account.token), None)
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn password_change_revokes_every_other_session() {
    let server = TestServer::spawn().await;
    let account = server.register().await;
    let laptop = server.login_ok(&account.email).await;
    let new_password = "a much better password";
    let reply = server
        .call(
            Method::PUT,
            "/api/auth/profile",
            Some(&account.token),
            Some(json!({"password": new_password, "current_password": PASSWORD})),
        )
        .await;
    assert_eq!(reply.ok()["version"], 2);
    // This session survives, the other does not.
    server
        .get("/api/auth/profile", Some(&account.token))
        .await
        .ok();
    server.assert_signed_out(&laptop).await;
    // Old password out, new password in.
    server
        .login(&account.email, PASSWORD)
        .await
        .problem(401, "invalid_credentials");
    server.login(&account.email, new_password).await.ok();
}

#[tokio::test]
async fn password_change_needs_the_right_current_password() {
    let server = TestServer::spawn().await;
    let account = server.register().await;
    let missing = server
        .call(
            Method::PUT,
            "/api/auth/profile",
            Some(&account.token),
            Some(json!({"password": "new password 1"})),
        )
        .await;
    assert_eq!(missing.invalid_fields(), ["current_password"]);
    let wrong = server
        .call(
            Method::PUT,
            "/api/auth/profile",
            Some(&account.token),
            Some(json!({"password": "new password 1", "current_password": "nope nope"})),
        )
        .await;
    assert_eq!(wrong.invalid_fields(), ["current_password"]);
    let too_long = server
        .call(
            Method::PUT,
            "/api/auth/profile",
            Some(&account.token),
            Some(json!({"password": "x".repeat(73), "current_password": PASSWORD})),
        )
        .await;
    assert_eq!(too_long.invalid_fields(), ["password"]);
    // Nothing changed.
    server.login(&account.email, PASSWORD).await.ok();
}
