//! `Idempotency-Key` on creates: retries return the first response, never a duplicate.

use serde_json::{Value, json};

use crate::common::{Account, TestServer, test_config};

async fn post(
    server: &TestServer,
    who: &Account,
    path: &str,
    key: &str,
    body: &Value,
) -> crate::common::Reply {
    let response = server
        .client
        .post(server.url(path))
        .bearer_auth(&who.token)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    TestServer::reply(response).await
}

#[tokio::test]
async fn a_retried_create_returns_the_first_task() {
    let server = TestServer::spawn().await;
    let me = server.register().await;
    let body = json!({"title": "Once", "assignee_ids": [me.user_id]});
    let first = post(&server, &me, "/api/tasks", "key-1", &body).await;
    let retry = post(&server, &me, "/api/tasks", "key-1", &body).await;
    assert_eq!((first.status.as_u16(), retry.status.as_u16()), (201, 201));
    assert_eq!(first.body, retry.body, "the first response, byte for byte");
    let list = server.get("/api/tasks", Some(&me.token)).await.ok().clone();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    // Another key creates another task.
    let other = post(&server, &me, "/api/tasks", "key-2", &body).await;
    assert_ne!(other.body["id"], first.body["id"]);
}

#[tokio::test]
async fn concurrent_retries_create_one_task() {
    let server = TestServer::spawn().await;
    let me = server.register().await;
    let body = json!({"title": "Racing", "assignee_ids": [me.user_id]});
    let replies = futures_join(&server, &me, &body).await;
    let ids: std::collections::BTreeSet<String> = replies
        .iter()
        .map(|r| r.body["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 1, "every retry got the same task");
    assert_eq!(
        server.get("/api/tasks", Some(&me.token)).await.ok()["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

async fn futures_join(
    server: &TestServer,
    me: &Account,
    body: &Value,
) -> Vec<crate::common::Reply> {
    let (a, b, c, d) = tokio::join!(
        post(server, me, "/api/tasks", "same", body),
        post(server, me, "/api/tasks", "same", body),
        post(server, me, "/api/tasks", "same", body),
        post(server, me, "/api/tasks", "same", body),
    );
    vec![a, b, c, d]
}

#[tokio::test]
async fn a_key_reused_for_another_request_is_refused() {
    let server = TestServer::spawn().await;
    let me = server.register().await;
    post(&server, &me, "/api/tasks", "k", &json!({"title": "First"}))
        .await
        .ok();
    post(&server, &me, "/api/tasks", "k", &json!({"title": "Second"}))
        .await
        .problem(422, "idempotency_key_reused");
    // Keys belong to their user.
    let other = server.register().await;
    assert_eq!(
        post(
            &server,
            &other,
            "/api/tasks",
            "k",
            &json!({"title": "Second"})
        )
        .await
        .status,
        201
    );
    for bad in ["has space", &"x".repeat(256)] {
        let reply = post(&server, &me, "/api/tasks", bad, &json!({"title": "x"})).await;
        assert_eq!(reply.invalid_fields(), ["Idempotency-Key"]);
    }
}

#[tokio::test]
async fn teams_and_projects_are_idempotent_too() {
    let server = TestServer::spawn().await;
    let me = server.register().await;
    let team = json!({"name": "Once"});
    let a = post(&server, &me, "/api/teams", "t", &team).await;
    let b = post(&server, &me, "/api/teams", "t", &team).await;
    assert_eq!(a.ok()["id"], b.ok()["id"]);
    assert_eq!(
        server.get("/api/teams", Some(&me.token)).await.ok()["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let project = json!({"team_id": a.body["id"], "name": "Once"});
    let p1 = post(&server, &me, "/api/projects", "p", &project).await;
    let p2 = post(&server, &me, "/api/projects", "p", &project).await;
    assert_eq!(p1.ok()["id"], p2.ok()["id"]);
}

#[tokio::test]
async fn keys_are_forgotten_after_a_day() {
    let tmp = tempfile::tempdir().unwrap();
    let config = test_config(tmp.path());
    let server = TestServer::spawn_with(config.clone()).await;
    let me = server.register().await;
    post(&server, &me, "/api/tasks", "old", &json!({"title": "x"}))
        .await
        .ok();
    server.stop().await;
    let store = tasker::store::Store::open(&config.db_path()).unwrap();
    assert_eq!(
        store
            .sweep_idempotency_keys(chrono::Utc::now(), 10)
            .unwrap(),
        0,
        "still fresh"
    );
    let tomorrow = chrono::Utc::now() + chrono::Duration::hours(25);
    assert_eq!(store.sweep_idempotency_keys(tomorrow, 10).unwrap(), 1);
}
