//! `GET /api/tasks/search`: ranking, typo and prefix matches, phrases, permission safety,
//! freshness, and an index rebuilt from the database.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Account, Reply, TestServer, test_config};
use crate::tasks::{Cast, cast, new_task};

/// How long a change may take to become searchable before a test gives up. The product
/// target is 1 s (measured by the benchmark); this bound only keeps a broken indexer from
/// hanging the suite on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(10);

fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

async fn search(server: &TestServer, who: &Account, query: &str) -> Reply {
    server
        .get(&format!("/api/tasks/search?{query}"), Some(&who.token))
        .await
}

/// The titles a search for `q` finds, best first.
async fn titles(server: &TestServer, who: &Account, q: &str) -> Vec<String> {
    let reply = search(server, who, &format!("q={}", encode(q))).await;
    titles_of(reply.ok())
}

fn titles_of(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["task"]["title"].as_str().unwrap().to_string())
        .collect()
}

/// Polls until the titles found for `q` satisfy `done` (the index applies changes within a
/// second); returns them.
async fn eventually(
    server: &TestServer,
    who: &Account,
    q: &str,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let started = Instant::now();
    loop {
        let reply = search(server, who, &format!("q={}", encode(q))).await;
        if reply.status == 200 {
            let found = titles_of(&reply.body);
            if done(&found) {
                return found;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "search {q:?} still gives {found:?}"
            );
        } else {
            assert_eq!(reply.status, 503, "{}", reply.body);
            assert!(started.elapsed() < PATIENCE, "the index never became ready");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn team_task(server: &TestServer, c: &Cast, body: Value) -> Value {
    let mut body = body;
    body["project_id"] = json!(c.project);
    new_task(server, &c.creator, body).await
}

#[tokio::test]
async fn a_title_hit_ranks_above_a_description_hit() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    team_task(
        &server,
        &c,
        json!({"title": "Update the changelog", "description": "mention the invoice export"}),
    )
    .await;
    team_task(&server, &c, json!({"title": "Invoice export is slow"})).await;
    team_task(&server, &c, json!({"title": "Unrelated chore"})).await;
    let found = eventually(&server, &c.member, "invoice", |t| t.len() == 2).await;
    assert_eq!(found, ["Invoice export is slow", "Update the changelog"]);

    let reply = search(&server, &c.member, "q=invoice").await;
    let hits = reply.ok()["items"].as_array().unwrap().clone();
    assert!(hits[0]["score"].as_f64().unwrap() > hits[1]["score"].as_f64().unwrap());
    assert_eq!(
        hits[0]["highlights"]["title"],
        "<mark>Invoice</mark> export is slow"
    );
    assert_eq!(
        hits[1]["highlights"]["description"],
        "mention the <mark>invoice</mark> export"
    );
    assert!(hits[1]["highlights"].get("title").is_none());
    assert_eq!(hits[0]["task"]["project_id"], json!(c.project));
}

#[tokio::test]
async fn typos_prefixes_phrases_labels_and_comments_match() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let deploy = team_task(
        &server,
        &c,
        json!({"title": "Deploy the release", "labels": ["Backend"]}),
    )
    .await;
    team_task(
        &server,
        &c,
        json!({"title": "Notes", "description": "the release of notes, then deploy"}),
    )
    .await;
    team_task(&server, &c, json!({"title": "Über café menu"})).await;
    // The three creates may reach the index in different commits: wait for the last one too.
    eventually(&server, &c.member, "release", |t| t.len() == 2).await;
    eventually(&server, &c.member, "menu", |t| t.len() == 1).await;

    // One typo in a word of 5+ letters; none allowed in a shorter one.
    assert_eq!(titles(&server, &c.member, "relaese ").await.len(), 2);
    assert_eq!(titles(&server, &c.member, "Deplyo ").await.len(), 2);
    assert!(titles(&server, &c.member, "nte ").await.is_empty());
    // The last word is a prefix while typing, not after a space.
    assert_eq!(
        titles(&server, &c.member, "deploy rel").await.len(),
        2,
        "prefix on the last word"
    );
    assert!(titles(&server, &c.member, "rel ").await.is_empty());
    // Phrases keep their order.
    assert_eq!(
        titles(&server, &c.member, "\"deploy the release\"").await,
        ["Deploy the release"]
    );
    assert!(
        titles(&server, &c.member, "\"release the deploy\"")
            .await
            .is_empty()
    );
    // Accents and case fold; labels are searched too.
    assert_eq!(
        titles(&server, &c.member, "uber CAFE").await,
        ["Über café menu"]
    );
    assert_eq!(
        titles(&server, &c.member, "backend").await,
        ["Deploy the release"]
    );

    // A comment makes its task findable.
    let id = deploy["id"].as_str().unwrap();
    let comment = server
        .post(
            &format!("/api/tasks/{id}/comments"),
            Some(&c.creator.token),
            json!({"body": "blocked by the kubernetes upgrade"}),
        )
        .await;
    assert_eq!(comment.status, 201, "{}", comment.body);
    let found = eventually(&server, &c.member, "kubernetes", |t| !t.is_empty()).await;
    assert_eq!(found, ["Deploy the release"]);
    // Deleting the comment takes it out again.
    let comment_id = comment.ok()["id"].as_str().unwrap();
    let deleted = server
        .call(
            reqwest::Method::DELETE,
            &format!("/api/comments/{comment_id}"),
            Some(&c.creator.token),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    eventually(&server, &c.member, "kubernetes", |t| t.is_empty()).await;
}

#[tokio::test]
async fn filters_narrow_and_pages_follow_the_cursor() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    for i in 0..5 {
        team_task(
            &server,
            &c,
            json!({
                "title": format!("Sprint item {i}"),
                "status": if i % 2 == 0 { "todo" } else { "done" },
                "labels": if i == 4 { vec!["ops"] } else { vec![] },
                "assignee_ids": if i < 2 { vec![c.assignee.user_id.clone()] } else { vec![] },
            }),
        )
        .await;
    }
    eventually(&server, &c.member, "sprint", |t| t.len() == 5).await;
    let count = |reply: Reply| reply.ok()["items"].as_array().unwrap().len();
    assert_eq!(
        count(search(&server, &c.member, "q=sprint&status=done").await),
        2
    );
    assert_eq!(
        count(search(&server, &c.member, "q=sprint&status=todo,done").await),
        5
    );
    assert_eq!(
        count(search(&server, &c.member, "q=sprint&label=ops").await),
        1
    );
    let by_assignee = format!("q=sprint&assignee={}", c.assignee.user_id);
    assert_eq!(count(search(&server, &c.member, &by_assignee).await), 2);
    let in_project = format!("q=sprint&project_id={}", c.project);
    assert_eq!(count(search(&server, &c.member, &in_project).await), 5);

    let mut seen = Vec::new();
    let mut query = "q=sprint&limit=2".to_string();
    loop {
        let reply = search(&server, &c.member, &query).await;
        let page = reply.ok().clone();
        assert!(page["items"].as_array().unwrap().len() <= 2);
        seen.extend(titles_of(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("q=sprint&limit=2&cursor={cursor}"),
            None => break,
        }
    }
    seen.sort();
    let mut expected: Vec<String> = (0..5).map(|i| format!("Sprint item {i}")).collect();
    expected.sort();
    assert_eq!(seen, expected, "every hit once across pages");
}

#[tokio::test]
async fn nobody_finds_what_they_may_not_see() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    team_task(&server, &c, json!({"title": "Secret roadmap"})).await;
    // A personal task: its creator and assignees only.
    new_task(
        &server,
        &c.outsider,
        json!({"title": "Secret diary", "assignee_ids": []}),
    )
    .await;
    // The index applies the log in order: once the later write (the diary) is found, both
    // are indexed.
    let diary = eventually(&server, &c.outsider, "secret", |t| !t.is_empty()).await;
    assert_eq!(diary, ["Secret diary"]);
    assert_eq!(
        titles(&server, &c.member, "secret").await,
        ["Secret roadmap"],
        "not the outsider's personal task"
    );
    assert_eq!(
        titles(&server, &c.owner, "secret").await,
        ["Secret roadmap"]
    );

    // A stranger naming the project gets 404, as on the list.
    let reply = search(
        &server,
        &c.outsider,
        &format!("q=secret&project_id={}", c.project),
    )
    .await;
    reply.problem(404, "not_found");

    // A member who leaves stops finding the team's tasks at once: no waiting for the index.
    let left = server
        .call(
            reqwest::Method::DELETE,
            &format!("/api/teams/{}/members/{}", c.team, c.member.user_id),
            Some(&c.member.token),
            None,
        )
        .await;
    assert_eq!(left.status, 204, "{}", left.body);
    assert!(titles(&server, &c.member, "secret").await.is_empty());
}

#[tokio::test]
async fn edits_deletes_and_moves_are_followed() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let task = team_task(&server, &c, json!({"title": "Renew the certificate"})).await;
    let id = task["id"].as_str().unwrap().to_string();
    eventually(&server, &c.member, "certificate", |t| t.len() == 1).await;

    let patched = server
        .call(
            reqwest::Method::PATCH,
            &format!("/api/tasks/{id}"),
            Some(&c.creator.token),
            Some(json!({"title": "Rotate the signing key"})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    eventually(&server, &c.member, "signing", |t| t.len() == 1).await;
    eventually(&server, &c.member, "certificate", |t| t.is_empty()).await;

    // Moved to the creator's personal list: the team no longer finds it, the creator does.
    let moved = server
        .call(
            reqwest::Method::PATCH,
            &format!("/api/tasks/{id}"),
            Some(&c.creator.token),
            Some(json!({"project_id": null})),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    eventually(&server, &c.member, "signing", |t| t.is_empty()).await;
    assert_eq!(titles(&server, &c.creator, "signing").await.len(), 1);

    let deleted = server
        .call(
            reqwest::Method::DELETE,
            &format!("/api/tasks/{id}"),
            Some(&c.creator.token),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    eventually(&server, &c.creator, "signing", |t| t.is_empty()).await;
}

#[tokio::test]
async fn bad_queries_get_a_problem_never_a_500() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    team_task(&server, &c, json!({"title": "Quote \"handling\" works"})).await;
    eventually(&server, &c.member, "quote", |t| t.len() == 1).await;

    for q in ["", "   ", "\"\"", "+-*():", "%00%01"] {
        let reply = search(&server, &c.member, &format!("q={q}")).await;
        let problem = reply.problem(422, "validation_failed");
        assert_eq!(problem["errors"][0]["field"], "q", "{q:?}");
    }
    search(&server, &c.member, "")
        .await
        .problem(422, "validation_failed");
    let long = "a".repeat(1025);
    search(&server, &c.member, &format!("q={long}"))
        .await
        .problem(422, "validation_failed");
    search(&server, &c.member, "q=x&cursor=nonsense")
        .await
        .problem(422, "validation_failed");
    search(&server, &c.member, "q=x&limit=0")
        .await
        .problem(400, "invalid_parameter");
    search(&server, &c.member, "q=x&status=finished")
        .await
        .problem(422, "validation_failed");
    search(&server, &c.member, "q=x&project_id=not-a-uuid")
        .await
        .problem(400, "invalid_parameter");
    // Forgiving syntax: these all give results.
    for q in [
        "\"quote handling",
        "quote\"",
        "AND quote OR",
        "quote*",
        "-quote",
        "quote%07handling",
        "(quote:",
    ] {
        let reply = search(&server, &c.member, &format!("q={q}")).await;
        assert_eq!(reply.status, 200, "{q:?}: {}", reply.body);
    }
    let unauthenticated = server.get("/api/tasks/search?q=quote", None).await;
    unauthenticated.problem(401, "unauthenticated");
}

#[tokio::test]
async fn a_deleted_index_is_rebuilt_with_the_same_results() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    let server = TestServer::spawn_with(config.clone()).await;
    let c = cast(&server).await;
    for title in ["Alpha launch", "Beta launch", "Gamma review"] {
        team_task(&server, &c, json!({"title": title})).await;
    }
    let task = team_task(&server, &c, json!({"title": "Delta"})).await;
    let comment = server
        .post(
            &format!("/api/tasks/{}/comments", task["id"].as_str().unwrap()),
            Some(&c.creator.token),
            json!({"body": "launch checklist attached"}),
        )
        .await;
    assert_eq!(comment.status, 201);
    let before = eventually(&server, &c.member, "launch", |t| t.len() == 3).await;
    let health = server.get("/api/health", None).await;
    assert_eq!(health.ok()["search_index"]["status"], "ready");
    server.stop().await;

    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    let server = TestServer::spawn_with(config.clone()).await;
    let member = server.login_ok(&c.member.email).await;
    let after = eventually(&server, &member, "launch", |t| t.len() == 3).await;
    assert_eq!(after, before);
    let health = server.get("/api/health", None).await;
    assert_eq!(health.ok()["search_index"]["lag"], 0);
    server.stop().await;

    // A corrupt index is rebuilt too.
    std::fs::write(dir.path().join("index/meta.json"), b"{not json").unwrap();
    let server = TestServer::spawn_with(config).await;
    let member = server.login_ok(&c.member.email).await;
    assert_eq!(
        eventually(&server, &member, "launch", |t| t.len() == 3).await,
        before
    );
    server.stop().await;
}

#[tokio::test]
async fn acknowledged_writes_survive_a_restart_without_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    let server = TestServer::spawn_with(config.clone()).await;
    let c = cast(&server).await;
    team_task(&server, &c, json!({"title": "Persisted entry"})).await;
    server.stop().await;
    // The stop committed the index: it opens ready, with the task in it.
    let server = TestServer::spawn_with(config).await;
    let member = server.login_ok(&c.member.email).await;
    let reply = search(&server, &member, "q=persisted").await;
    assert_eq!(titles_of(reply.ok()), ["Persisted entry"]);
    server.stop().await;
}

#[tokio::test]
async fn a_common_word_finds_only_what_the_caller_may_see() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    // Many visible and invisible tasks share a word: the top of the ranking is invisible.
    for i in 0..30 {
        new_task(
            &server,
            &c.outsider,
            json!({"title": format!("Common common common {i}")}),
        )
        .await;
    }
    for i in 0..3 {
        team_task(
            &server,
            &c,
            json!({"title": format!("Chore {i}"), "description": "common"}),
        )
        .await;
    }
    eventually(&server, &c.member, "common", |t| t.len() == 3).await;
    let found = titles(&server, &c.member, "common").await;
    assert!(found.iter().all(|t| t.starts_with("Chore")), "{found:?}");
    let found = titles(&server, &c.member, "comm").await;
    assert!(found.iter().all(|t| t.starts_with("Chore")), "{found:?}");
}
