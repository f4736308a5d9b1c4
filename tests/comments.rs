//! Comments: the seed's rule on who may comment, author-only edits, who may delete, paging,
//! counts and tags on the task, idempotent posts, archived projects and cascades.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Account, TestServer};
use crate::tasks::{Cast, Expect, cast, new_task};

/// A team task created by `creator`, assigned to `assignee`.
async fn team_task(server: &TestServer, c: &Cast) -> String {
    let task = new_task(
        server,
        &c.creator,
        json!({"title": "Discuss", "project_id": c.project, "assignee_ids": [c.assignee.user_id]}),
    )
    .await;
    task["id"].as_str().unwrap().to_string()
}

async fn comment(server: &TestServer, task: &str, by: &Account, body: &str) -> Value {
    let reply = server
        .post(
            &format!("/api/tasks/{task}/comments"),
            Some(&by.token),
            json!({"body": body}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.headers["etag"], "\"1\"");
    reply.body
}

fn bodies(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["body"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn the_task_creator_assignees_and_managers_comment_others_may_not() {
    use Expect::{Forbidden, NotFound, Ok};
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let task = team_task(&server, &c).await;
    let path = format!("/api/tasks/{task}/comments");
    // (who, may post a comment)
    let posting = [
        ("creator", &c.creator, Ok),
        ("assignee", &c.assignee, Ok),
        ("owner", &c.owner, Ok),
        ("admin", &c.admin, Ok),
        ("member", &c.member, Forbidden),
        ("outsider", &c.outsider, NotFound),
    ];
    for (name, who, expect) in posting {
        if expect == Ok {
            let posted = comment(&server, &task, who, &format!("from {}", who.user_id)).await;
            assert_eq!(posted["author_id"], who.user_id.as_str());
            assert_eq!(posted["edited_at"], Value::Null);
        } else {
            let reply = server
                .post(&path, Some(&who.token), json!({"body": "me too"}))
                .await;
            expect.check(&reply, &format!("{name} POST"));
        }
    }
    // Anyone who can see the task reads the discussion; an outsider cannot tell it exists.
    let page = server.get(&path, Some(&c.member.token)).await.ok().clone();
    assert_eq!(bodies(&page).len(), 4);
    let first = page["items"][0]["id"].as_str().unwrap();
    // (who, the list, one comment)
    let reading = [
        ("member", &c.member, Ok, Ok),
        ("outsider", &c.outsider, NotFound, NotFound),
    ];
    for (name, who, list, one) in reading {
        list.check(
            &server.get(&path, Some(&who.token)).await,
            &format!("{name} lists"),
        );
        let reply = server
            .get(&format!("/api/comments/{first}"), Some(&who.token))
            .await;
        one.check(&reply, &format!("{name} reads one"));
    }
}

#[tokio::test]
async fn comments_page_oldest_first_and_count_on_the_task() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let task = team_task(&server, &c).await;
    let task_path = format!("/api/tasks/{task}");
    let before = server.get(&task_path, Some(&c.member.token)).await;
    let old_tag = before.headers["etag"].to_str().unwrap().to_string();
    assert_eq!(old_tag, "\"1.0.0\"");

    let sent: Vec<String> = (0..7).map(|i| format!("comment {i}")).collect();
    for body in &sent {
        comment(&server, &task, &c.assignee, body).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/tasks/{task}/comments?limit=3");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page = server.get(&path, Some(&c.member.token)).await.ok().clone();
        seen.extend(bodies(&page).into_iter().map(String::from));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, sent);

    // The count shows on the task; its tag moves, its version does not.
    let after = server
        .client
        .get(server.url(&task_path))
        .bearer_auth(&c.member.token)
        .header("if-none-match", &old_tag)
        .send()
        .await
        .unwrap();
    let after = TestServer::reply(after).await;
    assert_eq!(after.status, 200, "a new comment is not a 304");
    assert_eq!(after.body["comment_count"], 7);
    assert_eq!(after.body["version"], 1);
    assert_eq!(after.headers["etag"], "\"1.7.0\"");
    // An edit based on the old tag still applies: comments are no conflicting edit.
    let edit = server
        .client
        .patch(server.url(&task_path))
        .bearer_auth(&c.creator.token)
        .header("if-match", &old_tag)
        .json(&json!({"status": "in_progress"}))
        .send()
        .await
        .unwrap();
    assert_eq!(TestServer::reply(edit).await.status, 200);
}

#[tokio::test]
async fn only_the_author_edits_and_a_stale_edit_gets_412() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let task = team_task(&server, &c).await;
    let posted = comment(&server, &task, &c.assignee, "first draft").await;
    let path = format!("/api/comments/{}", posted["id"].as_str().unwrap());
    for who in [&c.creator, &c.owner, &c.member] {
        server
            .call(
                Method::PATCH,
                &path,
                Some(&who.token),
                Some(json!({"body": "not mine"})),
            )
            .await
            .problem(403, "forbidden");
    }
    server
        .call(
            Method::PATCH,
            &path,
            Some(&c.outsider.token),
            Some(json!({"body": "x"})),
        )
        .await
        .problem(404, "not_found");

    let edited = server
        .call(
            Method::PATCH,
            &path,
            Some(&c.assignee.token),
            Some(json!({"body": "final"})),
        )
        .await;
    assert_eq!(edited.status, 200, "{}", edited.body);
    assert_eq!(edited.body["body"], "final");
    assert_eq!(edited.body["version"], 2);
    assert!(edited.body["edited_at"].is_string());
    assert_eq!(edited.headers["etag"], "\"2\"");

    let stale = server
        .client
        .patch(server.url(&path))
        .bearer_auth(&c.assignee.token)
        .header("if-match", "\"1\"")
        .json(&json!({"body": "lost?"}))
        .send()
        .await
        .unwrap();
    let stale = TestServer::reply(stale).await;
    let problem = stale.problem(412, "precondition_failed");
    assert_eq!(
        problem["current"]["body"], "final",
        "412 carries the current comment"
    );

    let cached = server
        .client
        .get(server.url(&path))
        .bearer_auth(&c.member.token)
        .header("if-none-match", "\"2\"")
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);
}

#[tokio::test]
async fn the_author_task_creator_and_managers_delete_comments() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let task = team_task(&server, &c).await;
    for deleter in [&c.assignee, &c.creator, &c.owner, &c.admin] {
        let posted = comment(&server, &task, &c.assignee, "to go").await;
        let path = format!("/api/comments/{}", posted["id"].as_str().unwrap());
        server
            .call(Method::DELETE, &path, Some(&c.member.token), None)
            .await
            .problem(403, "forbidden");
        server
            .call(Method::DELETE, &path, Some(&c.outsider.token), None)
            .await
            .problem(404, "not_found");
        let gone = server
            .call(Method::DELETE, &path, Some(&deleter.token), None)
            .await;
        assert_eq!(gone.status, 204, "{}", gone.body);
        server
            .get(&path, Some(&c.assignee.token))
            .await
            .problem(404, "not_found");
    }
    let task_body = server
        .get(&format!("/api/tasks/{task}"), Some(&c.member.token))
        .await
        .ok()
        .clone();
    assert_eq!(task_body["comment_count"], 0);
}

#[tokio::test]
async fn personal_task_comments_follow_the_task() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let task = new_task(
        &server,
        &c.creator,
        json!({"title": "Mine", "assignee_ids": [c.member.user_id]}),
    )
    .await;
    let task = task["id"].as_str().unwrap();
    comment(&server, task, &c.member, "assigned, so I may").await;
    server
        .post(
            &format!("/api/tasks/{task}/comments"),
            Some(&c.owner.token),
            json!({"body": "team owner, but a personal task"}),
        )
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn comment_input_is_checked() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let task = team_task(&server, &c).await;
    let path = format!("/api/tasks/{task}/comments");
    let token = Some(c.creator.token.as_str());
    for bad in [
        json!({"body": ""}),
        json!({"body": "  \n "}),
        json!({"body": "x".repeat(10_001)}),
    ] {
        let reply = server.post(&path, token, bad).await;
        assert!(
            matches!(reply.status.as_u16(), 400 | 422),
            "{}: {}",
            reply.status,
            reply.body
        );
        assert_eq!(reply.headers["content-type"], "application/problem+json");
    }
    server
        .post(&path, token, json!({"body": 42}))
        .await
        .problem(422, "validation_failed");
    server
        .raw(
            Method::POST,
            &path,
            token,
            "application/json",
            "{\"body\": ",
        )
        .await
        .problem(400, "invalid_body");
    server
        .post(
            "/api/tasks/not-a-uuid/comments",
            token,
            json!({"body": "x"}),
        )
        .await
        .problem(400, "invalid_parameter");
    server
        .get("/api/comments/not-a-uuid", token)
        .await
        .problem(400, "invalid_parameter");
    let unknown = uuid::Uuid::now_v7();
    server
        .post(
            &format!("/api/tasks/{unknown}/comments"),
            token,
            json!({"body": "x"}),
        )
        .await
        .problem(404, "not_found");
    let big = "x".repeat(2 << 20);
    server
        .raw(
            Method::POST,
            &path,
            token,
            "application/json",
            format!("{{\"body\": \"{big}\"}}"),
        )
        .await
        .problem(413, "payload_too_large");
    let page = server.get(&path, token).await.ok().clone();
    assert!(bodies(&page).is_empty(), "nothing was half-written");
}

#[tokio::test]
async fn a_retried_comment_posts_once() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let task = team_task(&server, &c).await;
    let url = server.url(&format!("/api/tasks/{task}/comments"));
    let send = |body: &str| {
        server
            .client
            .post(&url)
            .bearer_auth(&c.assignee.token)
            .header("idempotency-key", "comment-1")
            .json(&json!({"body": body}))
            .send()
    };
    let first = TestServer::reply(send("once").await.unwrap()).await;
    let again = TestServer::reply(send("once").await.unwrap()).await;
    assert_eq!((first.status.as_u16(), again.status.as_u16()), (201, 201));
    assert_eq!(first.body["id"], again.body["id"]);
    TestServer::reply(send("different").await.unwrap())
        .await
        .problem(422, "idempotency_key_reused");
    let page = server
        .get(
            &format!("/api/tasks/{task}/comments"),
            Some(&c.member.token),
        )
        .await
        .ok()
        .clone();
    assert_eq!(bodies(&page), ["once"]);
}

#[tokio::test]
async fn archived_projects_take_no_comments_and_deleted_tasks_take_theirs_along() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let task = team_task(&server, &c).await;
    let posted = comment(&server, &task, &c.assignee, "before archiving").await;
    let comment_path = format!("/api/comments/{}", posted["id"].as_str().unwrap());
    let project = format!("/api/projects/{}", c.project);
    let archive = |status: &'static str| {
        server.call(
            Method::PATCH,
            &project,
            Some(&c.owner.token),
            Some(json!({"status": status})),
        )
    };
    assert_eq!(archive("archived").await.status, 200);
    server
        .post(
            &format!("/api/tasks/{task}/comments"),
            Some(&c.assignee.token),
            json!({"body": "after"}),
        )
        .await
        .problem(409, "project_archived");
    server
        .call(
            Method::PATCH,
            &comment_path,
            Some(&c.assignee.token),
            Some(json!({"body": "edited"})),
        )
        .await
        .problem(409, "project_archived");
    server.get(&comment_path, Some(&c.member.token)).await.ok();
    assert_eq!(archive("active").await.status, 200);

    let deleted = server
        .call(
            Method::DELETE,
            &format!("/api/tasks/{task}"),
            Some(&c.creator.token),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204);
    server
        .get(&comment_path, Some(&c.assignee.token))
        .await
        .problem(404, "not_found");
}
