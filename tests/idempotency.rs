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

/// Issue 14: a retry of a create whose resource was deleted since answered 201 with the dead
/// id. It now says so: 410 `idempotent_resource_gone`, and creates nothing. For a task, a
/// comment, a project and a team; a new key creates again.
#[tokio::test]
async fn a_retry_after_the_created_thing_was_deleted_is_gone() {
    use reqwest::Method;
    let server = TestServer::spawn().await;
    let me = server.register().await;
    let delete = |path: String| {
        let server = &server;
        let token = me.token.clone();
        async move {
            let reply = server.call(Method::DELETE, &path, Some(&token), None).await;
            assert_eq!(reply.status, 204, "{path}: {}", reply.body);
        }
    };

    let team = json!({"name": "Gone team"});
    let first = post(&server, &me, "/api/teams", "team-key", &team).await;
    let team_id = first.ok()["id"].as_str().unwrap().to_string();
    let keep = server.create_team(&me, "Kept").await;
    let project = json!({"team_id": keep, "name": "Gone project"});
    let first = post(&server, &me, "/api/projects", "project-key", &project).await;
    let project_id = first.ok()["id"].as_str().unwrap().to_string();
    let task = json!({"title": "Gone task"});
    let first = post(&server, &me, "/api/tasks", "task-key", &task).await;
    let task_id = first.ok()["id"].as_str().unwrap().to_string();
    let host = json!({"title": "Host"});
    let host = post(&server, &me, "/api/tasks", "host-key", &host).await;
    let host = host.ok()["id"].as_str().unwrap().to_string();
    let comments = format!("/api/tasks/{host}/comments");
    let comment = json!({"body": "Gone comment"});
    let first = post(&server, &me, &comments, "comment-key", &comment).await;
    let comment_id = first.ok()["id"].as_str().unwrap().to_string();

    // Before the deletes, retries replay the first response.
    let again = post(&server, &me, "/api/tasks", "task-key", &task).await;
    assert_eq!(
        (again.status.as_u16(), &again.body["id"]),
        (201, &json!(task_id))
    );

    delete(format!("/api/teams/{team_id}")).await;
    delete(format!("/api/projects/{project_id}")).await;
    delete(format!("/api/tasks/{task_id}")).await;
    delete(format!("/api/comments/{comment_id}")).await;

    for (path, key, body) in [
        ("/api/teams", "team-key", &team),
        ("/api/projects", "project-key", &project),
        ("/api/tasks", "task-key", &task),
        (comments.as_str(), "comment-key", &comment),
    ] {
        let retry = post(&server, &me, path, key, body).await;
        retry.problem(410, "idempotent_resource_gone");
    }
    // Nothing was created by the refused retries.
    let tasks = server
        .get("/api/tasks?scope=created", Some(&me.token))
        .await
        .ok()
        .clone();
    assert_eq!(tasks["items"].as_array().unwrap().len(), 1, "only the host");
    let listed = server.get(&comments, Some(&me.token)).await.ok().clone();
    assert!(listed["items"].as_array().unwrap().is_empty());
    // A new key creates again.
    let anew = post(&server, &me, "/api/tasks", "task-key-2", &task).await;
    assert_eq!(anew.status, 201, "{}", anew.body);
}
