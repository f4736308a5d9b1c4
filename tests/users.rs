//! Profile: `GET/PUT /auth/profile` and `GET/PATCH /users/me`.

use reqwest::Method;
use serde_json::json;

use crate::common::{PASSWORD, TestServer};

#[tokio::test]
async fn profile_and_me_agree() {
    let server = TestServer::spawn().await;
    let account = server.register_as("gil@example.com", "Gil").await;
    let profile = server
        .get("/api/auth/profile", Some(&account.token))
        .await
        .ok()
        .clone();
    let me = server
        .get("/api/users/me", Some(&account.token))
        .await
        .ok()
        .clone();
    assert_eq!(profile, me);
    assert_eq!(me["email"], "gil@example.com");
    assert_eq!(me["id"], account.user_id.as_str());
    server
        .get("/api/users/me", None)
        .await
        .problem(401, "unauthenticated");
}

#[tokio::test]
async fn rename_needs_no_password_and_bumps_the_version() {
    let server = TestServer::spawn().await;
    let account = server.register().await;
    for (method, path, name) in [
        (Method::PUT, "/api/auth/profile", "Renamed Once"),
        (Method::PATCH, "/api/users/me", "Renamed Twice"),
    ] {
        let reply = server
            .call(
                method,
                path,
                Some(&account.token),
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(reply.ok()["name"], name);
    }
    let me = server
        .get("/api/users/me", Some(&account.token))
        .await
        .ok()
        .clone();
    assert_eq!(me["name"], "Renamed Twice");
    assert_eq!(me["version"], 3);
}

#[tokio::test]
async fn empty_update_changes_nothing() {
    let server = TestServer::spawn().await;
    let account = server.register().await;
    let reply = server
        .call(
            Method::PATCH,
            "/api/users/me",
            Some(&account.token),
            Some(json!({})),
        )
        .await;
    assert_eq!(reply.ok()["version"], 1);
}

#[tokio::test]
async fn email_change_needs_the_password_and_stays_unique() {
    let server = TestServer::spawn().await;
    let account = server.register_as("hal@example.com", "Hal").await;
    server.register_as("taken@example.com", "Taken").await;

    let no_password = server
        .call(
            Method::PATCH,
            "/api/users/me",
            Some(&account.token),
            Some(json!({"email": "new@example.com"})),
        )
        .await;
    assert_eq!(no_password.invalid_fields(), ["current_password"]);

    server
        .call(
            Method::PATCH,
            "/api/users/me",
            Some(&account.token),
            Some(json!({"email": "Taken@Example.com", "current_password": PASSWORD})),
        )
        .await
        .problem(409, "email_taken");

    let moved = server
        .call(
            Method::PATCH,
            "/api/users/me",
            Some(&account.token),
            Some(json!({"email": "New@Example.com", "current_password": PASSWORD})),
        )
        .await;
    assert_eq!(moved.ok()["email"], "new@example.com");
    // The old email is free again and the new one logs in.
    server.login("new@example.com", PASSWORD).await.ok();
    server
        .login("hal@example.com", PASSWORD)
        .await
        .problem(401, "invalid_credentials");
    server.register_as("hal@example.com", "Another Hal").await;
}

#[tokio::test]
async fn invalid_profile_fields_are_all_reported() {
    let server = TestServer::spawn().await;
    let account = server.register().await;
    let reply = server
        .call(
            Method::PUT,
            "/api/auth/profile",
            Some(&account.token),
            Some(json!({"name": " ", "email": "nope", "current_password": PASSWORD})),
        )
        .await;
    let mut fields = reply.invalid_fields();
    fields.sort();
    assert_eq!(fields, ["email", "name"]);
}

#[tokio::test]
async fn null_fields_are_left_alone() {
    let server = TestServer::spawn().await;
    let account = server.register_as("ivy@example.com", "Ivy").await;
    let reply = server
        .call(
            Method::PATCH,
            "/api/users/me",
            Some(&account.token),
            Some(json!({"name": null, "email": null})),
        )
        .await;
    assert_eq!(reply.ok()["name"], "Ivy");
}

#[tokio::test]
async fn people_search_finds_teammates_only() {
    let server = TestServer::spawn().await;
    let ada = server.register_as("ada@example.com", "Ada Lovelace").await;
    let grace = server
        .register_as("grace@example.com", "Grace Hopper")
        .await;
    let stranger = server
        .register_as("stranger@example.com", "Grace Stranger")
        .await;
    let team = server.create_team(&ada, "Pioneers").await;
    server.add_member(&team, &ada, &grace, "member").await;

    let names = |reply: &crate::common::Reply| -> Vec<String> {
        reply.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };
    let all = server.get("/api/users", Some(&ada.token)).await;
    assert_eq!(names(&all), ["Ada Lovelace", "Grace Hopper"]);
    let graces = server.get("/api/users?q=GRACE", Some(&ada.token)).await;
    assert_eq!(
        names(&graces),
        ["Grace Hopper"],
        "the stranger named Grace is not listed"
    );
    assert_eq!(
        names(&server.get("/api/users?q=grace@", Some(&ada.token)).await),
        ["Grace Hopper"]
    );
    assert_eq!(
        names(&server.get("/api/users", Some(&stranger.token)).await),
        ["Grace Stranger"],
        "only themselves"
    );
    let paged = server.get("/api/users?limit=1", Some(&grace.token)).await;
    assert_eq!(names(&paged).len(), 1);
    let next = paged.body["next_cursor"].as_str().unwrap().to_string();
    assert_eq!(
        names(
            &server
                .get(
                    &format!("/api/users?limit=1&cursor={next}"),
                    Some(&grace.token)
                )
                .await
        )
        .len(),
        1
    );
    let long = format!("/api/users?q={}", "x".repeat(101));
    assert_eq!(
        server.get(&long, Some(&ada.token)).await.invalid_fields(),
        ["q"]
    );
    server
        .get("/api/users", None)
        .await
        .problem(401, "unauthenticated");
}
