//! Tasks: the permission matrix, assignment rules, PUT vs PATCH, lists and their paging,
//! history, lost updates and cascades.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Account, Reply, TestServer};

/// A team with a project, its roles, and an outsider.
pub struct Cast {
    pub team: String,
    pub project: String,
    pub owner: Account,
    pub admin: Account,
    pub creator: Account,
    pub assignee: Account,
    pub member: Account,
    pub outsider: Account,
}

pub async fn cast(server: &TestServer) -> Cast {
    let mut people = Vec::new();
    for _ in 0..6 {
        people.push(server.register().await);
    }
    let [owner, admin, creator, assignee, member, outsider] = people.try_into().unwrap();
    let team = server.create_team(&owner, "Tasks").await;
    server.add_member(&team, &owner, &admin, "admin").await;
    for who in [&creator, &assignee, &member] {
        server.add_member(&team, &owner, who, "member").await;
    }
    let project = server
        .post(
            "/api/projects",
            Some(&owner.token),
            json!({"team_id": team, "name": "Board"}),
        )
        .await;
    let project = project.ok()["id"].as_str().unwrap().to_string();
    Cast {
        team,
        project,
        owner,
        admin,
        creator,
        assignee,
        member,
        outsider,
    }
}

pub async fn new_task(server: &TestServer, by: &Account, body: Value) -> Value {
    let reply = server.post("/api/tasks", Some(&by.token), body).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn every_field_round_trips_with_defaults() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let minimal = new_task(&server, &c.creator, json!({"title": "  Minimal  "})).await;
    assert_eq!(minimal["title"], "Minimal");
    assert_eq!(
        (minimal["status"].as_str(), minimal["priority"].as_str()),
        (Some("todo"), Some("medium"))
    );
    assert_eq!(minimal["project_id"], Value::Null);
    assert_eq!(minimal["version"], 1);
    let full = new_task(
        &server,
        &c.creator,
        json!({"title": "Full", "description": "Steps\n1. x", "status": "in_progress", "priority": "urgent",
               "due_date": "2030-01-02T03:04:05Z", "labels": ["bug", " bug ", "ui"], "project_id": c.project,
               "assignee_ids": [c.assignee.user_id]}),
    )
    .await;
    assert_eq!(full["labels"], json!(["bug", "ui"]));
    assert_eq!(full["team_id"], c.team.as_str());
    assert_eq!(full["assignee_ids"], json!([c.assignee.user_id]));
    let fetched = server
        .get(
            &format!("/api/tasks/{}", full["id"].as_str().unwrap()),
            Some(&c.assignee.token),
        )
        .await;
    assert_eq!(fetched.headers["etag"], "\"1.0.0\"");
    assert_eq!(fetched.ok()["due_date"], full["due_date"]);
}

/// What a request in a permission table must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Any success.
    Ok,
    /// 204, a deletion.
    Gone,
    /// 403 `forbidden`: may see, may not do.
    Forbidden,
    /// 404 `not_found`: may not see.
    NotFound,
}

impl Expect {
    /// Asserts that `reply` is what this row expects; `row` names the row when it is not.
    pub fn check(self, reply: &Reply, row: &str) {
        match self {
            Expect::Ok => assert!(
                reply.status.is_success(),
                "{row}: expected success, got {}: {}",
                reply.status,
                reply.body
            ),
            Expect::Gone => assert_eq!(reply.status, 204, "{row}: {}", reply.body),
            Expect::Forbidden => {
                assert_eq!(reply.status, 403, "{row}: {}", reply.body);
                reply.problem(403, "forbidden");
            }
            Expect::NotFound => {
                assert_eq!(reply.status, 404, "{row}: {}", reply.body);
                reply.problem(404, "not_found");
            }
        }
    }
}

#[tokio::test]
async fn the_permission_matrix() {
    use Expect::{Forbidden, Gone, NotFound, Ok};
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let body =
        json!({"title": "Matrix", "project_id": c.project, "assignee_ids": [c.assignee.user_id]});
    let task = new_task(&server, &c.creator, body.clone()).await;
    let path = format!("/api/tasks/{}", task["id"].as_str().unwrap());

    // (who, GET, PATCH title, DELETE); the deletions that succeed come last, below.
    let table = [
        ("owner", &c.owner, Ok, Ok, None),
        ("admin", &c.admin, Ok, Ok, None),
        ("creator", &c.creator, Ok, Ok, None),
        ("assignee", &c.assignee, Ok, Ok, Some(Forbidden)),
        ("member", &c.member, Ok, Forbidden, Some(Forbidden)),
        ("outsider", &c.outsider, NotFound, NotFound, Some(NotFound)),
    ];
    for (name, who, get, patch, _) in &table {
        get.check(
            &server.get(&path, Some(&who.token)).await,
            &format!("{name} GET"),
        );
        let title = if *patch == Ok { "Edited" } else { "Nope" };
        let reply = server
            .call(
                Method::PATCH,
                &path,
                Some(&who.token),
                Some(json!({"title": title})),
            )
            .await;
        patch.check(&reply, &format!("{name} PATCH"));
    }
    for (name, who, _, _, delete) in &table {
        if let Some(delete) = delete {
            let reply = server
                .call(Method::DELETE, &path, Some(&who.token), None)
                .await;
            delete.check(&reply, &format!("{name} DELETE"));
        }
    }
    // Those who may delete: a team admin, and the creator (of a second task).
    let reply = server
        .call(Method::DELETE, &path, Some(&c.admin.token), None)
        .await;
    Gone.check(&reply, "admin DELETE");
    let second = new_task(&server, &c.creator, body).await;
    let second = format!("/api/tasks/{}", second["id"].as_str().unwrap());
    let reply = server
        .call(Method::DELETE, &second, Some(&c.creator.token), None)
        .await;
    Gone.check(&reply, "creator DELETE");
    server
        .get(&second, Some(&c.creator.token))
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn assignees_must_belong() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let outsider_assigned =
        json!({"title": "x", "project_id": c.project, "assignee_ids": [c.outsider.user_id]});
    assert_eq!(
        server
            .post("/api/tasks", Some(&c.creator.token), outsider_assigned)
            .await
            .invalid_fields(),
        ["assignee_ids"]
    );
    // Personal: me, or someone sharing a team with me.
    let personal = new_task(
        &server,
        &c.creator,
        json!({"title": "Mine", "assignee_ids": [c.creator.user_id, c.member.user_id]}),
    )
    .await;
    assert_eq!(personal["team_id"], Value::Null);
    let stranger = json!({"title": "x", "assignee_ids": [c.outsider.user_id]});
    assert_eq!(
        server
            .post("/api/tasks", Some(&c.creator.token), stranger)
            .await
            .invalid_fields(),
        ["assignee_ids"]
    );
    // A project of a team I am not in does not exist for me.
    let foreign = json!({"title": "x", "project_id": c.project});
    server
        .post("/api/tasks", Some(&c.outsider.token), foreign)
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn personal_tasks_are_visible_to_creator_and_assignees_only() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let task = new_task(
        &server,
        &c.creator,
        json!({"title": "Personal", "assignee_ids": [c.member.user_id]}),
    )
    .await;
    let path = format!("/api/tasks/{}", task["id"].as_str().unwrap());
    server.get(&path, Some(&c.member.token)).await.ok();
    for who in [&c.owner, &c.admin, &c.assignee, &c.outsider] {
        server
            .get(&path, Some(&who.token))
            .await
            .problem(404, "not_found");
    }
    server
        .call(
            Method::PATCH,
            &path,
            Some(&c.member.token),
            Some(json!({"status": "done"})),
        )
        .await
        .ok();
    server
        .call(Method::DELETE, &path, Some(&c.member.token), None)
        .await
        .problem(403, "forbidden");
}

#[tokio::test]
async fn patch_null_clears_put_null_keeps() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let task = new_task(
        &server,
        &c.creator,
        json!({"title": "Clear me", "description": "text", "due_date": "2030-01-01T00:00:00Z", "labels": ["a"],
               "project_id": c.project, "assignee_ids": [c.assignee.user_id]}),
    )
    .await;
    let path = format!("/api/tasks/{}", task["id"].as_str().unwrap());
    let kept = server
        .call(
            Method::PUT,
            &path,
            Some(&c.creator.token),
            Some(json!({"description": null, "labels": null, "status": "blocked"})),
        )
        .await;
    assert_eq!(
        (
            kept.ok()["description"].as_str(),
            kept.body["status"].as_str()
        ),
        (Some("text"), Some("blocked"))
    );
    assert_eq!(kept.body["labels"], json!(["a"]));

    let cleared = server
        .call(Method::PATCH, &path, Some(&c.creator.token), Some(json!({"description": null, "due_date": null, "labels": null, "assignee_ids": null})))
        .await;
    let body = cleared.ok();
    assert_eq!(
        (body["description"].as_str(), &body["due_date"]),
        (Some(""), &Value::Null)
    );
    assert_eq!(
        (&body["labels"], &body["assignee_ids"]),
        (&json!([]), &json!([]))
    );
    assert_eq!(body["title"], "Clear me", "absent fields are untouched");

    let refused = server
        .call(
            Method::PATCH,
            &path,
            Some(&c.creator.token),
            Some(json!({"title": null, "status": null})),
        )
        .await;
    let mut fields = refused.invalid_fields();
    fields.sort();
    assert_eq!(fields, ["status", "title"]);
    // Moving out of the project makes it personal.
    let personal = server
        .call(
            Method::PATCH,
            &path,
            Some(&c.creator.token),
            Some(json!({"project_id": null})),
        )
        .await;
    assert_eq!(
        (&personal.ok()["project_id"], &personal.body["team_id"]),
        (&Value::Null, &Value::Null)
    );
    server
        .get(&path, Some(&c.member.token))
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn an_archived_project_accepts_no_task_changes() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let task = new_task(
        &server,
        &c.creator,
        json!({"title": "Before", "project_id": c.project}),
    )
    .await;
    let project_path = format!("/api/projects/{}", c.project);
    server
        .call(
            Method::PATCH,
            &project_path,
            Some(&c.owner.token),
            Some(json!({"status": "archived"})),
        )
        .await
        .ok();
    server
        .post(
            "/api/tasks",
            Some(&c.creator.token),
            json!({"title": "After", "project_id": c.project}),
        )
        .await
        .problem(409, "project_archived");
    let path = format!("/api/tasks/{}", task["id"].as_str().unwrap());
    server
        .call(
            Method::PATCH,
            &path,
            Some(&c.creator.token),
            Some(json!({"title": "Changed"})),
        )
        .await
        .problem(409, "project_archived");
    server.get(&path, Some(&c.member.token)).await.ok();
}

#[tokio::test]
async fn lists_default_to_my_assignments_and_filters_narrow() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let mk = |title: &str, extra: Value| {
        let mut body = json!({"title": title, "project_id": c.project});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let a = new_task(
        &server,
        &c.creator,
        mk(
            "a",
            json!({"assignee_ids": [c.assignee.user_id], "status": "todo", "labels": ["bug"]}),
        ),
    )
    .await;
    let b = new_task(
        &server,
        &c.creator,
        mk(
            "b",
            json!({"assignee_ids": [c.assignee.user_id], "status": "done", "priority": "high"}),
        ),
    )
    .await;
    let c3 = new_task(
        &server,
        &c.creator,
        mk("c", json!({"due_date": "2030-06-01T00:00:00Z"})),
    )
    .await;
    let mine = new_task(&server, &c.assignee, json!({"title": "personal"})).await;
    let id = |t: &Value| t["id"].as_str().unwrap().to_string();

    let list = |query: &str, who: &Account| {
        let path = format!("/api/tasks{query}");
        let token = who.token.clone();
        let server = &server;
        async move { server.get(&path, Some(&token)).await.ok().clone() }
    };
    assert_eq!(
        ids(&list("", &c.assignee).await),
        [id(&a), id(&b)],
        "default: assigned to me"
    );
    assert_eq!(
        ids(&list("?scope=created", &c.creator).await),
        [id(&a), id(&b), id(&c3)]
    );
    assert_eq!(
        ids(&list("?scope=all", &c.assignee).await),
        [id(&a), id(&b), id(&c3), id(&mine)]
    );
    assert_eq!(
        ids(&list("?scope=all", &c.member).await),
        [id(&a), id(&b), id(&c3)]
    );
    assert!(ids(&list("?scope=all", &c.outsider).await).is_empty());
    assert_eq!(
        ids(&list("?scope=all&status=done,blocked", &c.member).await),
        [id(&b)]
    );
    assert_eq!(
        ids(&list("?scope=all&label=bug", &c.member).await),
        [id(&a)]
    );
    assert_eq!(
        ids(&list("?scope=all&priority=high", &c.member).await),
        [id(&b)]
    );
    assert_eq!(
        ids(&list("?scope=all&due_before=2031-01-01T00:00:00Z", &c.member).await),
        [id(&c3)]
    );
    assert!(ids(&list("?scope=all&due_after=2031-01-01T00:00:00Z", &c.member).await).is_empty());
    let by_assignee = format!("?scope=all&assignee={}", c.assignee.user_id);
    assert_eq!(
        ids(&list(&by_assignee, &c.member).await),
        [id(&a), id(&b)],
        "the personal task stays hidden"
    );
    let in_project = format!("?scope=all&project_id={}&sort=-created", c.project);
    assert_eq!(
        ids(&list(&in_project, &c.member).await),
        [id(&c3), id(&b), id(&a)]
    );
    let hidden_project = format!("?project_id={}", c.project);
    server
        .get(
            &format!("/api/tasks{hidden_project}"),
            Some(&c.outsider.token),
        )
        .await
        .problem(404, "not_found");
    assert_eq!(
        server
            .get("/api/tasks?status=doing", Some(&c.member.token))
            .await
            .invalid_fields(),
        ["status"]
    );
    server
        .get("/api/tasks?sort=title", Some(&c.member.token))
        .await
        .problem(400, "invalid_parameter");
    server
        .get("/api/tasks?scope=everything", Some(&c.member.token))
        .await
        .problem(400, "invalid_parameter");
}

#[tokio::test]
async fn paging_through_a_filter_never_repeats_or_skips() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let mut expected_done = Vec::new();
    for i in 0..120 {
        let status = if i % 3 == 0 { "done" } else { "todo" };
        let task = new_task(
            &server,
            &c.creator,
            json!({"title": format!("t{i}"), "project_id": c.project, "status": status}),
        )
        .await;
        if status == "done" {
            expected_done.push(task["id"].as_str().unwrap().to_string());
        }
    }
    let mut late_id: Option<String> = None;
    for (query, descending) in [
        ("scope=all&status=done&limit=7", false),
        ("scope=all&status=done&limit=7&sort=-created", true),
    ] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(next) => format!("/api/tasks?{query}&cursor={next}"),
                None => format!("/api/tasks?{query}"),
            };
            let page = server.get(&path, Some(&c.member.token)).await.ok().clone();
            seen.extend(ids(&page));
            // A matching task created while paging lands after the cursor (ids grow with
            // commits), so an oldest-first walk meets it at the end, never skips or repeats.
            if seen.len() == 14 && !descending {
                let late = new_task(
                    &server,
                    &c.creator,
                    json!({"title": "late", "project_id": c.project, "status": "done"}),
                )
                .await;
                late_id = Some(late["id"].as_str().unwrap().to_string());
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => break,
            }
        }
        if !descending {
            expected_done.push(late_id.clone().expect("the late task was created"));
        }
        let mut expected = expected_done.clone();
        if descending {
            expected.reverse();
        }
        assert_eq!(seen, expected, "{query}");
    }
    // Within a project a status filter reads the project's tasks of those statuses only: the
    // same tasks, in the same order, page after page.
    let project = c.project.to_string();
    for (query, descending) in [
        (
            format!("scope=all&project_id={project}&status=done&limit=7"),
            false,
        ),
        (
            format!("scope=all&project_id={project}&status=done&limit=7&sort=-created"),
            true,
        ),
        (
            format!("scope=all&project_id={project}&status=blocked,done,done&limit=5"),
            false,
        ),
    ] {
        let seen = page_through(&server, &c.member, &query).await;
        let mut expected = expected_done.clone();
        if descending {
            expected.reverse();
        }
        assert_eq!(seen, expected, "{query}");
    }
}

/// Every task id of `/api/tasks?{query}`, page after page.
async fn page_through(server: &TestServer, who: &Account, query: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(next) => format!("/api/tasks?{query}&cursor={next}"),
            None => format!("/api/tasks?{query}"),
        };
        let page = server.get(&path, Some(&who.token)).await.ok().clone();
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return seen,
        }
    }
}

#[tokio::test]
async fn leaving_a_team_unassigns_its_tasks() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let task = new_task(&server, &c.creator, json!({"title": "Shared", "project_id": c.project, "assignee_ids": [c.assignee.user_id, c.member.user_id]})).await;
    let leave = format!("/api/teams/{}/members/{}", c.team, c.assignee.user_id);
    assert_eq!(
        server
            .call(Method::DELETE, &leave, Some(&c.assignee.token), None)
            .await
            .status,
        204
    );
    let path = format!("/api/tasks/{}", task["id"].as_str().unwrap());
    let after = server.get(&path, Some(&c.member.token)).await.ok().clone();
    assert_eq!(after["assignee_ids"], json!([c.member.user_id]));
    server
        .get(&path, Some(&c.assignee.token))
        .await
        .problem(404, "not_found");
    assert!(
        ids(&server
            .get("/api/tasks", Some(&c.assignee.token))
            .await
            .ok()
            .clone())
        .is_empty()
    );
}

#[tokio::test]
async fn history_lists_every_change_field_by_field() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let task = new_task(
        &server,
        &c.creator,
        json!({"title": "Draft", "project_id": c.project}),
    )
    .await;
    let path = format!("/api/tasks/{}", task["id"].as_str().unwrap());
    server
        .call(
            Method::PATCH,
            &path,
            Some(&c.creator.token),
            Some(json!({"title": "Final", "status": "done"})),
        )
        .await
        .ok();
    server
        .call(
            Method::PATCH,
            &path,
            Some(&c.admin.token),
            Some(json!({"priority": "low"})),
        )
        .await
        .ok();
    let history = server
        .get(&format!("{path}/activity"), Some(&c.member.token))
        .await
        .ok()
        .clone();
    let items = history["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["action"], "created");
    assert_eq!(items[1]["actor_id"], c.creator.user_id.as_str());
    let changes = &items[1]["changes"];
    assert!(
        changes
            .as_array()
            .unwrap()
            .contains(&json!({"field": "title", "from": "Draft", "to": "Final"}))
    );
    assert!(
        changes
            .as_array()
            .unwrap()
            .contains(&json!({"field": "status", "from": "todo", "to": "done"}))
    );
    assert_eq!(
        items[2]["changes"],
        json!([{"field": "priority", "from": "medium", "to": "low"}])
    );
    let page = server
        .get(&format!("{path}/activity?limit=2"), Some(&c.member.token))
        .await
        .ok()
        .clone();
    let next = page["next_cursor"].as_str().unwrap();
    let rest = server
        .get(
            &format!("{path}/activity?limit=2&cursor={next}"),
            Some(&c.member.token),
        )
        .await
        .ok()
        .clone();
    assert_eq!(rest["items"][0]["seq"], items[2]["seq"]);
    server
        .get(&format!("{path}/activity"), Some(&c.outsider.token))
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn concurrent_saves_with_the_same_if_match() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let task = new_task(
        &server,
        &c.creator,
        json!({"title": "Contested", "project_id": c.project}),
    )
    .await;
    let url = server.url(&format!("/api/tasks/{}", task["id"].as_str().unwrap()));
    let save = |who: &Account, title: &str| {
        server
            .client
            .patch(&url)
            .bearer_auth(&who.token)
            .header("if-match", "\"1\"")
            .json(&json!({"title": title}))
            .send()
    };
    let (a, b) = tokio::join!(save(&c.creator, "Creator's"), save(&c.admin, "Admin's"));
    let (a, b) = (
        TestServer::reply(a.unwrap()).await,
        TestServer::reply(b.unwrap()).await,
    );
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 412]);
    let loser = if a.status == 412 { &a } else { &b };
    let problem = loser.problem(412, "precondition_failed");
    assert_eq!(
        problem["current"]["version"], 2,
        "412 carries the current task"
    );
    assert!(loser.headers["etag"].to_str().unwrap().starts_with("\"2."));
    let cached = server
        .client
        .get(&url)
        .bearer_auth(&c.member.token)
        .header("if-none-match", "\"2.0.0\"")
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);
}

#[tokio::test]
async fn deleting_a_project_deletes_its_tasks() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let task = new_task(
        &server,
        &c.creator,
        json!({"title": "Gone", "project_id": c.project, "assignee_ids": [c.assignee.user_id]}),
    )
    .await;
    assert_eq!(
        server
            .call(
                Method::DELETE,
                &format!("/api/projects/{}", c.project),
                Some(&c.owner.token),
                None
            )
            .await
            .status,
        204
    );
    server
        .get(
            &format!("/api/tasks/{}", task["id"].as_str().unwrap()),
            Some(&c.owner.token),
        )
        .await
        .problem(404, "not_found");
    assert!(
        ids(&server
            .get("/api/tasks", Some(&c.assignee.token))
            .await
            .ok()
            .clone())
        .is_empty(),
        "indexes cleaned"
    );
}

#[tokio::test]
async fn task_input_is_validated() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let bad = json!({"title": "", "description": "x".repeat(20_001), "labels": vec!["l"; 21]});
    let mut fields = server
        .post("/api/tasks", Some(&c.creator.token), bad)
        .await
        .invalid_fields();
    fields.sort();
    assert_eq!(fields, ["description", "labels", "title"]);
    for (bad, field) in [
        (json!({"title": "x", "status": "doing"}), "status"),
        (json!({"title": "x", "due_date": "tomorrow"}), "due_date"),
        (
            json!({"title": "x", "assignee_ids": ["nope"]}),
            "assignee_ids[0]",
        ),
    ] {
        let reply = server.post("/api/tasks", Some(&c.creator.token), bad).await;
        assert_eq!(reply.invalid_fields(), [field]);
    }
    server
        .get("/api/tasks/nope", Some(&c.creator.token))
        .await
        .problem(400, "invalid_parameter");
}

/// 10,000 tasks page through any filter with no duplicate and none missing.
#[tokio::test]
async fn ten_thousand_tasks_page_through_every_filter() {
    use tasker::domain::task::{Priority, Task, TaskStatus, TaskTitle};
    use tasker::domain::{ProjectId, TaskId, TeamId, UserId};

    let tmp = tempfile::tempdir().unwrap();
    let config = crate::common::test_config(tmp.path());
    let server = TestServer::spawn_with(config.clone()).await;
    let (a, b) = (server.register().await, server.register().await);
    let team = server.create_team(&a, "Big").await;
    server.add_member(&team, &a, &b, "member").await;
    let project = server
        .post(
            "/api/projects",
            Some(&a.token),
            json!({"team_id": team, "name": "Big"}),
        )
        .await;
    let project = project.ok()["id"].as_str().unwrap().to_string();
    server.stop().await;

    let uid = |acc: &Account| UserId::from_uuid(acc.user_id.parse().unwrap());
    let (ua, ub) = (uid(&a), uid(&b));
    let (team_id, project_id) = (
        TeamId::from_uuid(team.parse().unwrap()),
        ProjectId::from_uuid(project.parse().unwrap()),
    );
    let now = chrono::Utc::now();
    let tasks: Vec<Task> = (0..10_000)
        .map(|i| {
            let personal = i % 10 == 0;
            Task {
                id: TaskId::new(),
                title: TaskTitle::parse(&format!("task {i}")).unwrap(),
                description: String::new(),
                status: TaskStatus::ALL[i % 4],
                priority: [Priority::Low, Priority::Medium, Priority::High][i % 3],
                due_date: None,
                labels: if i % 5 == 0 {
                    vec!["bug".into()]
                } else {
                    vec![]
                },
                project_id: (!personal).then_some(project_id),
                team_id: (!personal).then_some(team_id),
                assignee_ids: match i % 3 {
                    0 => vec![ua],
                    1 => vec![ub],
                    _ => vec![ua, ub],
                },
                created_by: if i % 2 == 0 { ua } else { ub },
                created_at: now,
                updated_at: now,
                version: 1,
                comment_count: 0,
                attachment_count: 0,
                rank: Default::default(),
            }
        })
        .collect();
    tasker::store::Store::open(&config.db_path())
        .unwrap()
        .import_tasks(&tasks)
        .unwrap();
    let server = TestServer::spawn_with(config).await;

    let visible_to_b = |t: &Task| t.team_id.is_some() || t.is_involved(ub);
    type Case<'a> = (&'a Account, String, Box<dyn Fn(&Task) -> bool + 'a>, bool);
    let cases: Vec<Case> = vec![
        (
            &b,
            String::new(),
            Box::new(|t: &Task| t.is_assigned_to(ub)),
            false,
        ),
        (
            &b,
            "scope=all&status=done,blocked".into(),
            Box::new(move |t: &Task| {
                visible_to_b(t) && matches!(t.status, TaskStatus::Done | TaskStatus::Blocked)
            }),
            false,
        ),
        (
            &b,
            "scope=all&label=bug&sort=-created".into(),
            Box::new(move |t: &Task| visible_to_b(t) && t.labels.contains(&"bug".to_string())),
            true,
        ),
        (
            &a,
            "scope=created&priority=high".into(),
            Box::new(|t: &Task| t.created_by == ua && t.priority == Priority::High),
            false,
        ),
        (
            &b,
            format!("scope=all&project_id={project}&status=todo"),
            Box::new(|t: &Task| t.project_id.is_some() && t.status == TaskStatus::Todo),
            false,
        ),
    ];
    for (who, query, expected, descending) in cases {
        let mut want: Vec<String> = tasks
            .iter()
            .filter(|t| expected(t))
            .map(|t| t.id.to_string())
            .collect();
        if descending {
            want.reverse();
        }
        let sep = if query.is_empty() { "" } else { "&" };
        let seen = page_through(&server, who, &format!("{query}{sep}limit=200")).await;
        assert_eq!(seen.len(), want.len(), "{query}: count");
        assert_eq!(seen, want, "{query}: every task once, in order");
    }
}

#[tokio::test]
async fn concurrent_edits_of_different_fields_both_survive() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let task = new_task(
        &server,
        &c.creator,
        json!({"title": "Before", "project_id": c.project}),
    )
    .await;
    let path = format!("/api/tasks/{}", task["id"].as_str().unwrap());
    for round in 0..5 {
        let title = json!({"title": format!("Round {round}")});
        let people = if round % 2 == 0 {
            json!([c.assignee.user_id])
        } else {
            json!([c.member.user_id])
        };
        let (a, b) = tokio::join!(
            server.call(Method::PATCH, &path, Some(&c.creator.token), Some(title)),
            server.call(
                Method::PATCH,
                &path,
                Some(&c.admin.token),
                Some(json!({"assignee_ids": people.clone()}))
            ),
        );
        a.ok();
        b.ok();
        let now = server.get(&path, Some(&c.creator.token)).await.ok().clone();
        assert_eq!(now["title"], format!("Round {round}"), "no lost title");
        assert_eq!(now["assignee_ids"], people, "no lost assignment");
    }
}

#[tokio::test]
async fn an_assignee_cannot_move_a_task_out_of_its_project() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let task = new_task(
        &server,
        &c.creator,
        json!({"title": "Stay", "project_id": c.project, "assignee_ids": [c.assignee.user_id]}),
    )
    .await;
    let path = format!("/api/tasks/{}", task["id"].as_str().unwrap());
    server
        .call(
            Method::PATCH,
            &path,
            Some(&c.assignee.token),
            Some(json!({"project_id": null})),
        )
        .await
        .problem(403, "forbidden");
    server.get(&path, Some(&c.owner.token)).await.ok();
    // The same project id is no move.
    server
        .call(
            Method::PATCH,
            &path,
            Some(&c.assignee.token),
            Some(json!({"project_id": c.project, "title": "Same place"})),
        )
        .await
        .ok();
}

#[tokio::test]
async fn duplicate_assignees_are_dropped() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let ids = json!([c.assignee.user_id, c.member.user_id, c.assignee.user_id]);
    let task = new_task(
        &server,
        &c.creator,
        json!({"title": "Twice", "project_id": c.project, "assignee_ids": ids}),
    )
    .await;
    assert_eq!(
        task["assignee_ids"],
        json!([c.assignee.user_id, c.member.user_id])
    );
}

#[tokio::test]
async fn archived_projects_keep_their_tasks_and_cascades_are_logged() {
    let tmp = tempfile::tempdir().unwrap();
    let config = crate::common::test_config(tmp.path());
    let server = TestServer::spawn_with(config.clone()).await;
    let c = cast(&server).await;
    let task = new_task(
        &server,
        &c.creator,
        json!({"title": "Kept", "project_id": c.project}),
    )
    .await;
    let path = format!("/api/tasks/{}", task["id"].as_str().unwrap());
    let project_path = format!("/api/projects/{}", c.project);
    server
        .call(
            Method::PATCH,
            &project_path,
            Some(&c.owner.token),
            Some(json!({"status": "archived"})),
        )
        .await
        .ok();
    server
        .call(Method::DELETE, &path, Some(&c.creator.token), None)
        .await
        .problem(409, "project_archived");
    assert_eq!(
        server
            .call(Method::DELETE, &project_path, Some(&c.owner.token), None)
            .await
            .status,
        204
    );
    server.stop().await;
    let store = tasker::store::Store::open(&config.db_path()).unwrap();
    let id: uuid::Uuid = task["id"].as_str().unwrap().parse().unwrap();
    let history = store.changes_of_entity(id.as_u128(), None, 10).unwrap();
    let last = &history.last().unwrap().change;
    assert_eq!(
        last.action,
        tasker::domain::change::ChangeAction::Deleted,
        "the cascade is in the change log"
    );
}

/// Task reads are served from memory once warm; every acknowledged write must show through.
#[tokio::test]
async fn warm_reads_follow_every_acknowledged_write() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let task = new_task(
        &server,
        &c.creator,
        json!({"title": "Warm", "project_id": c.project, "assignee_ids": [c.assignee.user_id]}),
    )
    .await;
    let path = format!("/api/tasks/{}", task["id"].as_str().unwrap());
    for who in [&c.assignee, &c.member, &c.creator] {
        server.get(&path, Some(&who.token)).await.ok();
    }

    let patched = server
        .call(
            Method::PATCH,
            &path,
            Some(&c.assignee.token),
            Some(json!({"status": "done"})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let seen = server.get(&path, Some(&c.member.token)).await.ok().clone();
    assert_eq!(
        (seen["status"].as_str(), seen["version"].as_u64()),
        (Some("done"), Some(2))
    );

    // A member may not delete; promoted to admin, they may, and the warm role must not linger.
    server
        .call(Method::DELETE, &path, Some(&c.member.token), None)
        .await
        .problem(403, "forbidden");
    let role = format!("/api/teams/{}/members/{}", c.team, c.member.user_id);
    let promoted = server
        .call(
            Method::PATCH,
            &role,
            Some(&c.owner.token),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(promoted.status, 200, "{}", promoted.body);

    let leave = format!("/api/teams/{}/members/{}", c.team, c.assignee.user_id);
    let left = server
        .call(Method::DELETE, &leave, Some(&c.assignee.token), None)
        .await;
    assert_eq!(left.status, 204);
    server
        .get(&path, Some(&c.assignee.token))
        .await
        .problem(404, "not_found");

    let deleted = server
        .call(Method::DELETE, &path, Some(&c.member.token), None)
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    for who in [&c.member, &c.creator] {
        server
            .get(&path, Some(&who.token))
            .await
            .problem(404, "not_found");
    }
}
