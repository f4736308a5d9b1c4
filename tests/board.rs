//! Board order: `rank` within a column, `POST /tasks/{id}/move` (within and between columns,
//! If-Match, permissions, bad neighbours), `GET /projects/{id}/board`, the live change a move
//! makes, `position` on create, and every list sort paged with cursors.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{Account, Reply, TestServer};
use crate::tasks::{cast, new_task};

fn id(task: &Value) -> String {
    task["id"].as_str().unwrap().to_string()
}

/// The board's columns as `status -> [(id, rank)]`, checking ranks ascend in each.
async fn board(server: &TestServer, who: &Account, project: &str) -> Vec<(String, Vec<String>)> {
    let reply = server
        .get(&format!("/api/projects/{project}/board"), Some(&who.token))
        .await;
    let body = reply.ok();
    assert_eq!(body["project_id"], project);
    body["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let tasks = c["tasks"].as_array().unwrap();
            let ranks: Vec<&str> = tasks.iter().map(|t| t["rank"].as_str().unwrap()).collect();
            assert!(
                ranks.windows(2).all(|w| w[0] < w[1]),
                "ranks ascend: {ranks:?}"
            );
            assert_eq!(c["more"], false);
            (
                c["status"].as_str().unwrap().to_string(),
                tasks.iter().map(id).collect(),
            )
        })
        .collect()
}

fn column<'a>(board: &'a [(String, Vec<String>)], status: &str) -> Vec<&'a str> {
    let tasks = &board.iter().find(|(s, _)| s == status).unwrap().1;
    tasks.iter().map(String::as_str).collect()
}

/// Moves `task` as `who` with `body` and the `If-Match` tag `tag` (when given).
async fn move_task(
    server: &TestServer,
    who: &Account,
    task: &str,
    tag: Option<&str>,
    body: Value,
) -> Reply {
    let mut request = server
        .client
        .post(server.url(&format!("/api/tasks/{task}/move")))
        .bearer_auth(&who.token)
        .json(&body);
    if let Some(tag) = tag {
        request = request.header("If-Match", tag);
    }
    TestServer::reply(request.send().await.unwrap()).await
}

#[tokio::test]
async fn moves_order_the_board_within_and_between_columns() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let mut made = Vec::new();
    for title in ["a", "b", "c"] {
        made.push(id(&new_task(
            &server,
            &c.creator,
            json!({"title": title, "project_id": c.project}),
        )
        .await));
    }
    let [a, b, t] = made.clone().try_into().unwrap();
    let top = id(&new_task(
        &server,
        &c.creator,
        json!({"title": "top", "project_id": c.project, "position": "top"}),
    )
    .await);
    let bottom = id(&new_task(
        &server,
        &c.creator,
        json!({"title": "bottom", "project_id": c.project, "position": "bottom"}),
    )
    .await);
    let now = board(&server, &c.member, &c.project).await;
    assert_eq!(
        column(&now, "todo"),
        [
            top.as_str(),
            a.as_str(),
            b.as_str(),
            t.as_str(),
            bottom.as_str()
        ]
    );
    assert_eq!(
        now.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
        ["todo", "in_progress", "blocked", "done"]
    );

    // Within the column: `t` right after `a`.
    let moved = move_task(
        &server,
        &c.creator,
        &t,
        Some("\"1\""),
        json!({"status": "todo", "after_id": a}),
    )
    .await;
    let moved = moved.ok();
    assert_eq!(
        (moved["version"].as_u64(), moved["status"].as_str()),
        (Some(2), Some("todo"))
    );
    let now = board(&server, &c.member, &c.project).await;
    assert_eq!(
        column(&now, "todo"),
        [
            top.as_str(),
            a.as_str(),
            t.as_str(),
            b.as_str(),
            bottom.as_str()
        ]
    );

    // To another column: the top by default, then before and between neighbours there.
    move_task(
        &server,
        &c.creator,
        &a,
        None,
        json!({"status": "in_progress"}),
    )
    .await
    .ok();
    move_task(
        &server,
        &c.owner,
        &b,
        None,
        json!({"status": "in_progress", "before_id": a}),
    )
    .await
    .ok();
    move_task(
        &server,
        &c.admin,
        &t,
        None,
        json!({"status": "in_progress", "after_id": b, "before_id": a}),
    )
    .await
    .ok();
    move_task(
        &server,
        &c.creator,
        &top,
        None,
        json!({"status": "in_progress", "position": "bottom"}),
    )
    .await
    .ok();
    let now = board(&server, &c.member, &c.project).await;
    assert_eq!(column(&now, "todo"), [bottom.as_str()]);
    assert_eq!(
        column(&now, "in_progress"),
        [b.as_str(), t.as_str(), a.as_str(), top.as_str()]
    );

    // A status change by PATCH goes to the bottom of the new column.
    let reply = server
        .call(
            Method::PATCH,
            &format!("/api/tasks/{b}"),
            Some(&c.creator.token),
            Some(json!({"status": "todo"})),
        )
        .await;
    reply.ok();
    let now = board(&server, &c.member, &c.project).await;
    assert_eq!(column(&now, "todo"), [bottom.as_str(), b.as_str()]);

    // Many moves to the same spot keep the order and ranks short.
    for _ in 0..60 {
        move_task(
            &server,
            &c.creator,
            &a,
            None,
            json!({"status": "in_progress", "after_id": t}),
        )
        .await
        .ok();
        move_task(
            &server,
            &c.creator,
            &t,
            None,
            json!({"status": "in_progress", "after_id": a}),
        )
        .await
        .ok();
    }
    let now = board(&server, &c.member, &c.project).await;
    assert_eq!(
        column(&now, "in_progress"),
        [a.as_str(), t.as_str(), top.as_str()]
    );
    let task = server
        .get(&format!("/api/tasks/{t}"), Some(&c.member.token))
        .await;
    assert!(task.ok()["rank"].as_str().unwrap().len() < 40);

    // A bounded column says there is more.
    let reply = server
        .get(
            &format!("/api/projects/{}/board?per_column=2", c.project),
            Some(&c.member.token),
        )
        .await;
    let columns = reply.ok()["columns"].as_array().unwrap().clone();
    assert_eq!(columns[1]["tasks"].as_array().unwrap().len(), 2);
    assert_eq!(columns[1]["more"], true);
    assert_eq!(columns[0]["more"], false);
}

#[tokio::test]
async fn refused_moves_change_nothing() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let task = new_task(
        &server,
        &c.creator,
        json!({"title": "mine", "project_id": c.project}),
    )
    .await;
    let other = id(&new_task(
        &server,
        &c.creator,
        json!({"title": "other", "project_id": c.project}),
    )
    .await);
    let done = id(&new_task(
        &server,
        &c.creator,
        json!({"title": "done", "project_id": c.project, "status": "done"}),
    )
    .await);
    let elsewhere = id(&new_task(&server, &c.outsider, json!({"title": "personal"})).await);
    let t = id(&task);
    let before = board(&server, &c.member, &c.project).await;
    let to_top = json!({"status": "todo", "before_id": t});

    // Stale If-Match: 412 with the current task.
    let stale = move_task(&server, &c.creator, &other, Some("\"7\""), to_top.clone()).await;
    let problem = stale.problem(412, "precondition_failed");
    assert_eq!(problem["current"]["version"], 1);
    // Who cannot see it: 404; who sees it but may not edit it: 403.
    move_task(&server, &c.outsider, &other, None, to_top.clone())
        .await
        .problem(404, "not_found");
    move_task(&server, &c.member, &other, None, to_top.clone())
        .await
        .problem(403, "forbidden");
    // Neighbours outside the target column, missing, itself, or out of order: 422.
    let bad = [
        (json!({"status": "todo", "after_id": done}), "after_id"),
        (json!({"status": "done", "before_id": t}), "before_id"),
        (json!({"status": "todo", "after_id": elsewhere}), "after_id"),
        (
            json!({"status": "todo", "after_id": uuid::Uuid::now_v7()}),
            "after_id",
        ),
        (json!({"status": "todo", "after_id": other}), "after_id"),
        (
            json!({"status": "todo", "after_id": other, "before_id": t}),
            "after_id",
        ),
        (
            json!({"status": "todo", "before_id": t, "position": "top"}),
            "position",
        ),
    ];
    for (body, field) in bad {
        let reply = move_task(&server, &c.creator, &other, Some("\"1\""), body.clone()).await;
        assert_eq!(reply.invalid_fields(), [field], "{body}");
    }
    // Both neighbours, the wrong way round (`other` sorts below `t`): before_id's fault.
    let reply = move_task(
        &server,
        &c.creator,
        &done,
        None,
        json!({"status": "todo", "after_id": other, "before_id": t}),
    )
    .await;
    assert_eq!(reply.invalid_fields(), ["before_id"]);
    // Missing or malformed fields: a problem, never a 500.
    for body in [
        json!({}),
        json!({"after_id": t}),
        json!({"status": "doing"}),
        json!({"status": "todo", "after_id": "nope"}),
    ] {
        let reply = move_task(&server, &c.creator, &other, None, body.clone()).await;
        assert!(
            matches!(reply.status.as_u16(), 400 | 422),
            "{body}: {}",
            reply.status
        );
        assert!(reply.body["code"].is_string(), "{}", reply.body);
    }
    let reply = server
        .call(
            Method::POST,
            "/api/tasks/not-a-uuid/move",
            Some(&c.creator.token),
            Some(json!({"status": "todo"})),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(board(&server, &c.member, &c.project).await, before);
    let unchanged = server
        .get(&format!("/api/tasks/{other}"), Some(&c.creator.token))
        .await;
    assert_eq!(unchanged.ok()["version"], 1);

    // The board: 404 for a stranger, 422/400 for a bad size.
    server
        .get(
            &format!("/api/projects/{}/board", c.project),
            Some(&c.outsider.token),
        )
        .await
        .problem(404, "not_found");
    for bad in ["0", "501", "x"] {
        let reply = server
            .get(
                &format!("/api/projects/{}/board?per_column={bad}", c.project),
                Some(&c.member.token),
            )
            .await;
        assert!(matches!(reply.status.as_u16(), 400 | 422), "{bad}");
    }
}

#[tokio::test]
async fn personal_tasks_have_their_own_column_order() {
    let server = TestServer::spawn().await;
    let me = server.register().await;
    let first = new_task(&server, &me, json!({"title": "first"})).await;
    let second = new_task(&server, &me, json!({"title": "second"})).await;
    let top = new_task(&server, &me, json!({"title": "top", "position": "top"})).await;
    let rank = |t: &Value| t["rank"].as_str().unwrap().to_string();
    assert!(rank(&top) < rank(&first) && rank(&first) < rank(&second));
    let moved = move_task(
        &server,
        &me,
        &id(&top),
        None,
        json!({"status": "todo", "after_id": id(&second)}),
    )
    .await;
    assert!(rank(moved.ok()) > rank(&second));
}

#[tokio::test]
async fn watchers_see_a_move_as_a_status_and_rank_change() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let a = id(&new_task(
        &server,
        &c.creator,
        json!({"title": "a", "project_id": c.project}),
    )
    .await);
    let b = id(&new_task(
        &server,
        &c.creator,
        json!({"title": "b", "project_id": c.project}),
    )
    .await);
    let url = format!(
        "{}/api/ws?token={}",
        server.url("").replacen("http", "ws", 1),
        c.member.token
    );
    let (mut socket, _) = connect_async(url).await.unwrap();
    let moved = move_task(
        &server,
        &c.creator,
        &b,
        None,
        json!({"status": "done", "position": "top"}),
    )
    .await;
    let rank = moved.ok()["rank"].clone();
    let change = loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .unwrap();
        if let Message::Text(text) = frame {
            break serde_json::from_str::<Value>(&text).unwrap();
        }
    };
    assert_eq!(
        (
            change["type"].as_str(),
            change["entity"].as_str(),
            change["action"].as_str()
        ),
        (Some("change"), Some("task"), Some("updated"))
    );
    assert_eq!(change["data"]["id"], b.as_str());
    let fields: Vec<(&str, &Value)> = change["data"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["field"].as_str().unwrap(), &f["to"]))
        .collect();
    assert!(fields.contains(&("status", &json!("done"))), "{fields:?}");
    assert!(fields.contains(&("rank", &rank)), "{fields:?}");
    // The task it left behind did not change.
    let left = server
        .get(&format!("/api/tasks/{a}"), Some(&c.member.token))
        .await;
    assert_eq!(left.ok()["version"], 1);
}

/// The value a task sorts by in `sort`, as something comparable (`None`: no due date).
fn sort_value(task: &Value, sort: &str) -> Option<i64> {
    let time = |v: &Value| {
        v.as_str()
            .map(|s| s.parse::<DateTime<Utc>>().unwrap().timestamp_micros())
    };
    match sort {
        "created" => Some(0),
        "updated" => time(&task["updated_at"]),
        "due_date" => time(&task["due_date"]),
        "priority" => Some(
            ["low", "medium", "high", "urgent"]
                .iter()
                .position(|p| task["priority"] == *p)
                .unwrap() as i64,
        ),
        _ => unreachable!(),
    }
}

/// Every page of `query` with `limit=2`, checking no task comes twice.
async fn all_pages(server: &TestServer, who: &Account, query: &str) -> Vec<Value> {
    let mut seen: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = format!("/api/tasks?{query}&limit=2");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let reply = server.get(&path, Some(&who.token)).await;
        let body = reply.ok().clone();
        pages += 1;
        seen.extend(body["items"].as_array().unwrap().iter().cloned());
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert!(pages >= 2, "{query}: more than one page");
    let mut ids: Vec<String> = seen.iter().map(id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), seen.len(), "{query}: a task came twice");
    seen
}

#[tokio::test]
async fn every_sort_pages_in_order_both_ways_with_undated_tasks_last() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let dues = [
        Some("2030-01-03T00:00:00Z"),
        None,
        Some("2030-01-01T00:00:00Z"),
        Some("2030-01-03T00:00:00Z"),
        None,
        Some("2029-12-31T00:00:00Z"),
        Some("2030-01-02T00:00:00Z"),
    ];
    let priorities = ["high", "low", "urgent", "medium", "high", "low", "medium"];
    let mut ids = Vec::new();
    for (i, (due, priority)) in dues.iter().zip(priorities).enumerate() {
        let project = if i == 6 {
            Value::Null
        } else {
            json!(c.project)
        };
        let status = if i % 2 == 0 { "todo" } else { "done" };
        let task = new_task(
            &server,
            &c.creator,
            json!({"title": format!("t{i}"), "project_id": project, "due_date": due,
                   "priority": priority, "status": status}),
        )
        .await;
        ids.push(id(&task));
    }
    // Edits in another order than creation, so `updated` differs from `created`.
    for i in [3, 0, 5] {
        server
            .call(
                Method::PATCH,
                &format!("/api/tasks/{}", ids[i]),
                Some(&c.creator.token),
                Some(json!({"title": format!("edited {i}")})),
            )
            .await
            .ok();
    }
    for sort in ["created", "updated", "due_date", "priority"] {
        for descending in [false, true] {
            let param = if descending {
                format!("-{sort}")
            } else {
                sort.to_string()
            };
            // scope=all merges the team's, my created and my assigned lists.
            let listed = all_pages(&server, &c.creator, &format!("scope=all&sort={param}")).await;
            assert_eq!(listed.len(), ids.len(), "{param}: every task once");
            for pair in listed.windows(2) {
                let (x, y) = (sort_value(&pair[0], sort), sort_value(&pair[1], sort));
                let ordered = match (x, y) {
                    (Some(_), None) => true,
                    (None, Some(_)) => false,
                    (x, y) if x == y => (id(&pair[0]) < id(&pair[1])) != descending,
                    (x, y) => (x < y) != descending,
                };
                assert!(ordered, "{param}: {} before {}", pair[0], pair[1]);
            }
            if sort == "due_date" {
                let last: Vec<bool> = listed.iter().map(|t| t["due_date"].is_null()).collect();
                assert_eq!(
                    last[last.len() - 2..],
                    [true, true],
                    "{param}: undated last"
                );
            }
            // Filters still apply in every order.
            let todo = all_pages(
                &server,
                &c.creator,
                &format!(
                    "scope=all&status=todo&project_id={}&sort={param}",
                    c.project
                ),
            )
            .await;
            assert_eq!(todo.len(), 3, "{param}");
            assert!(todo.iter().all(|t| t["status"] == "todo"));
        }
    }
    // A cursor belongs to its sort.
    let page = server
        .get(
            "/api/tasks?scope=all&sort=priority&limit=1",
            Some(&c.creator.token),
        )
        .await;
    let cursor = page.ok()["next_cursor"].as_str().unwrap().to_string();
    let reply = server
        .get(
            &format!("/api/tasks?scope=all&sort=updated&cursor={cursor}"),
            Some(&c.creator.token),
        )
        .await;
    assert_eq!(reply.invalid_fields(), ["cursor"]);
}
