//! The project board page: columns in rank order, 404 for strangers, the quick add, moves
//! through the web route (and the 412 that shows where a card truly is), 403 for a member who
//! may not move a card, escaping, and CSRF. (Dragging and live updates: tests/browser.)

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::web::{Page, WebClient};
use crate::common::{Account, TestServer};

/// A signed-in browser and the same person's API account.
async fn person(server: &TestServer, name: &str) -> (WebClient, Account) {
    let mut web = WebClient::new(server);
    let email = web.register(name).await;
    let account = server.login_ok(&email).await;
    (web, account)
}

/// A team owned by `owner` with one project; returns (team id, project id).
async fn project(server: &TestServer, owner: &Account) -> (String, String) {
    let team = server.create_team(owner, "Launch crew").await;
    let reply = server
        .post(
            "/api/projects",
            Some(&owner.token),
            json!({"team_id": team, "name": "Website relaunch"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    (team, reply.body["id"].as_str().unwrap().to_string())
}

async fn task(server: &TestServer, who: &Account, project: &str, body: Value) -> Value {
    let mut body = body;
    body["project_id"] = json!(project);
    let reply = server.post("/api/tasks", Some(&who.token), body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body
}

/// Titles of a column as the JSON API orders it.
async fn api_column(
    server: &TestServer,
    who: &Account,
    project: &str,
    status: &str,
) -> Vec<String> {
    let board = server
        .get(&format!("/api/projects/{project}/board"), Some(&who.token))
        .await;
    let columns = board.ok()["columns"].as_array().unwrap().clone();
    let column = columns.iter().find(|c| c["status"] == status).unwrap();
    column["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap().to_string())
        .collect()
}

/// The HTML of one column section of a board page or fragment.
fn column<'a>(html: &'a str, key: &str) -> &'a str {
    let start = html
        .find(&format!("id=\"column-{key}\""))
        .unwrap_or_else(|| panic!("no column {key} in {html}"));
    let end = html[start..].find("</section>").unwrap() + start;
    &html[start..end]
}

/// Whether `first` appears before `second` in `html`.
fn before(html: &str, first: &str, second: &str) -> bool {
    match (html.find(first), html.find(second)) {
        (Some(a), Some(b)) => a < b,
        _ => false,
    }
}

/// Posts a form as board.js does: same-origin, the CSRF header, asking for fragments.
async fn post_fragment(web: &mut WebClient, path: &str, fields: &[(&str, &str)]) -> Page {
    let origin = web.base.trim_end_matches('/').to_string();
    let token = web.csrf.clone().unwrap();
    web.post_raw(
        path,
        fields,
        &[
            ("origin", &origin),
            ("sec-fetch-site", "same-origin"),
            ("x-csrf-token", &token),
            ("x-board-fragment", "1"),
        ],
    )
    .await
}

fn id(task: &Value) -> &str {
    task["id"].as_str().unwrap()
}

#[tokio::test]
async fn the_board_shows_columns_in_rank_order_to_members_only() {
    let server = TestServer::spawn().await;
    let (mut web, ada) = person(&server, "Ada").await;
    let (_, project) = project(&server, &ada).await;
    task(&server, &ada, &project, json!({"title": "Second"})).await;
    task(
        &server,
        &ada,
        &project,
        json!({"title": "First", "position": "top", "labels": ["design"], "priority": "urgent"}),
    )
    .await;
    task(
        &server,
        &ada,
        &project,
        json!({"title": "Third", "position": "bottom"}),
    )
    .await;
    task(
        &server,
        &ada,
        &project,
        json!({"title": "Stuck", "status": "blocked"}),
    )
    .await;

    let page = web.get(&format!("/projects/{project}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("Website relaunch"));
    assert!(page.html.contains("Launch crew"));
    for label in ["To do", "In progress", "Blocked", "Done"] {
        assert!(page.html.contains(label), "{label}");
    }
    let todo = column(&page.html, "todo");
    assert!(before(todo, ">First<", ">Second<") && before(todo, ">Second<", ">Third<"));
    assert!(todo.contains(">design<") && todo.contains("Urgent"));
    assert!(todo.contains("data-count=\"3\""));
    assert!(column(&page.html, "blocked").contains(">Stuck<"));
    assert!(!column(&page.html, "todo").contains(">Stuck<"));
    assert!(
        page.html
            .contains(&format!("href=\"/projects/{project}/list\""))
    );
    assert!(
        page.html
            .contains(&format!("href=\"/projects/{project}/settings\""))
    );
    assert!(page.html.contains("data-create"), "the quick add is there");

    // Some columns alone, for live updates.
    let fragment = web
        .get(&format!("/projects/{project}/columns?status=blocked"))
        .await;
    assert_eq!(fragment.status, StatusCode::OK);
    assert!(column(&fragment.html, "blocked").contains(">Stuck<"));
    assert!(!fragment.html.contains("column-todo"));
    let bad = web
        .get(&format!("/projects/{project}/columns?status=nope"))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // Outsiders see the not-found page, whatever they ask for.
    let (mut eve, _) = person(&server, "Eve").await;
    for path in [
        format!("/projects/{project}"),
        format!("/projects/{project}/columns"),
        "/projects/not-a-uuid".to_string(),
    ] {
        let page = eve.get(&path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        assert!(page.html.contains("Not found"));
        assert!(!page.html.contains("Second"));
    }
    let moved = post_fragment(
        &mut eve,
        &format!("/projects/{project}/tasks"),
        &[("title", "Sneaky")],
    )
    .await;
    assert_eq!(moved.status, StatusCode::NOT_FOUND);
    assert_eq!(api_column(&server, &ada, &project, "todo").await.len(), 3);
}

#[tokio::test]
async fn quick_add_puts_a_task_at_the_top_or_bottom_and_refuses_an_empty_title() {
    let server = TestServer::spawn().await;
    let (mut web, ada) = person(&server, "Ada").await;
    let (_, project) = project(&server, &ada).await;
    task(&server, &ada, &project, json!({"title": "Existing"})).await;
    let path = format!("/projects/{project}/tasks");

    // A plain form: back to the board.
    let page = web.post(&path, &[("title", "On top")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    assert_eq!(page.location(), format!("/projects/{project}"));
    // From the script: the To do column, the new card at the bottom as asked.
    let page = post_fragment(
        &mut web,
        &path,
        &[("title", "At the end"), ("position", "bottom")],
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    let todo = column(&page.html, "todo");
    assert!(before(todo, ">On top<", ">Existing<") && before(todo, ">Existing<", ">At the end<"));
    assert!(!page.html.contains("column-done"));
    assert_eq!(
        api_column(&server, &ada, &project, "todo").await,
        ["On top", "Existing", "At the end"]
    );

    // Bad input: 422 with the message, nothing written.
    let page = web.post(&path, &[("title", "   ")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.html.contains("Title:"), "{}", page.html);
    assert!(page.html.contains("aria-invalid=\"true\""));
    let page = post_fragment(&mut web, &path, &[("title", &"x".repeat(1000))]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.html.contains("data-board-message"), "{}", page.html);
    assert_eq!(api_column(&server, &ada, &project, "todo").await.len(), 3);
}

#[tokio::test]
async fn a_move_changes_status_and_order_and_a_stale_one_shows_the_truth() {
    let server = TestServer::spawn().await;
    let (mut web, ada) = person(&server, "Ada").await;
    let (_, project) = project(&server, &ada).await;
    let a = task(
        &server,
        &ada,
        &project,
        json!({"title": "Alpha", "position": "bottom"}),
    )
    .await;
    let b = task(
        &server,
        &ada,
        &project,
        json!({"title": "Bravo", "status": "done"}),
    )
    .await;
    let c = task(
        &server,
        &ada,
        &project,
        json!({"title": "Charlie", "status": "done", "position": "bottom"}),
    )
    .await;
    web.get(&format!("/projects/{project}")).await;
    let path = format!("/projects/{project}/move");

    // Alpha goes between Bravo and Charlie in Done.
    let page = post_fragment(
        &mut web,
        &path,
        &[
            ("task", id(&a)),
            ("status", "done"),
            ("after", id(&b)),
            ("before", id(&c)),
            ("version", "1"),
            ("from", "todo"),
        ],
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    let done = column(&page.html, "done");
    assert!(before(done, ">Bravo<", ">Alpha<") && before(done, ">Alpha<", ">Charlie<"));
    assert!(!column(&page.html, "todo").contains(">Alpha<"));
    assert!(done.contains("data-version=\"2\""));
    assert_eq!(
        api_column(&server, &ada, &project, "done").await,
        ["Bravo", "Alpha", "Charlie"]
    );

    // A plain form (the dialog without scripts) goes back to the board.
    let page = web
        .post(
            &path,
            &[
                ("task", id(&c)),
                ("status", "blocked"),
                ("position", "top"),
                ("version", "1"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    assert_eq!(
        api_column(&server, &ada, &project, "blocked").await,
        ["Charlie"]
    );

    // Someone else moved Alpha to In progress; this page still says version 2, in Done.
    let moved = server
        .post(
            &format!("/api/tasks/{}/move", id(&a)),
            Some(&ada.token),
            json!({"status": "in_progress"}),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    let page = post_fragment(
        &mut web,
        &path,
        &[
            ("task", id(&a)),
            ("status", "todo"),
            ("position", "top"),
            ("version", "2"),
            ("from", "done"),
        ],
    )
    .await;
    assert_eq!(
        page.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        page.html
    );
    assert!(
        column(&page.html, "in_progress").contains(">Alpha<"),
        "{}",
        page.html
    );
    assert!(!column(&page.html, "todo").contains(">Alpha<"));
    assert!(!column(&page.html, "done").contains(">Alpha<"));
    assert!(page.html.contains("Someone else changed this card first"));
    assert_eq!(
        api_column(&server, &ada, &project, "in_progress").await,
        ["Alpha"]
    );

    // A neighbour that left the column meanwhile: also shown as it is (409).
    let page = post_fragment(
        &mut web,
        &path,
        &[
            ("task", id(&b)),
            ("status", "todo"),
            ("after", id(&c)),
            ("version", "1"),
            ("from", "done"),
        ],
    )
    .await;
    assert_eq!(page.status, StatusCode::CONFLICT, "{}", page.html);
    assert!(column(&page.html, "done").contains(">Bravo<"));
    assert!(page.html.contains("Someone else changed this card first"));

    // Malformed moves are bad requests.
    let page = post_fragment(&mut web, &path, &[("task", "nope"), ("status", "todo")]).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    let page = post_fragment(&mut web, &path, &[("task", id(&b)), ("status", "later")]).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_member_who_may_not_edit_sees_no_move_controls_and_gets_403() {
    let server = TestServer::spawn().await;
    let (_, ada) = person(&server, "Ada").await;
    let (team, project) = project(&server, &ada).await;
    let (mut bob_web, bob) = person(&server, "Bob").await;
    server.add_member(&team, &ada, &bob, "member").await;
    let hers = task(&server, &ada, &project, json!({"title": "Hers"})).await;
    let his = task(
        &server,
        &ada,
        &project,
        json!({"title": "His", "assignee_ids": [bob.user_id]}),
    )
    .await;

    let page = bob_web.get(&format!("/projects/{project}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let card = |task: &Value| {
        let start = page
            .html
            .find(&format!("id=\"card-{}\"", id(task)))
            .unwrap();
        let end = page.html[start..].find("</li>").unwrap() + start;
        page.html[start..end].to_string()
    };
    assert!(!card(&hers).contains("data-move"), "{}", card(&hers));
    assert!(!card(&hers).contains("draggable=\"true\""));
    assert!(card(&his).contains("data-move") && card(&his).contains("draggable=\"true\""));
    // A member may add, not change the settings.
    assert!(page.html.contains("data-create"));
    assert!(!page.html.contains("/settings\""));

    let path = format!("/projects/{project}/move");
    let refused = post_fragment(
        &mut bob_web,
        &path,
        &[
            ("task", id(&hers)),
            ("status", "done"),
            ("version", "1"),
            ("from", "todo"),
        ],
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.html);
    assert!(refused.html.contains("Not allowed"));
    assert_eq!(api_column(&server, &ada, &project, "done").await.len(), 0);
    let allowed = post_fragment(
        &mut bob_web,
        &path,
        &[
            ("task", id(&his)),
            ("status", "done"),
            ("version", "1"),
            ("from", "todo"),
        ],
    )
    .await;
    assert_eq!(allowed.status, StatusCode::OK, "{}", allowed.html);
    assert_eq!(api_column(&server, &ada, &project, "done").await, ["His"]);
}

#[tokio::test]
async fn card_text_is_escaped() {
    let server = TestServer::spawn().await;
    let (mut web, ada) = person(&server, "Ada").await;
    let (_, project) = project(&server, &ada).await;
    task(
        &server,
        &ada,
        &project,
        json!({"title": "<script>alert(1)</script> & \"quotes\"", "labels": ["<b>bold</b>"]}),
    )
    .await;
    let page = web.get(&format!("/projects/{project}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.html.contains("<script>alert(1)"));
    assert!(!page.html.contains("<b>bold</b>"));
    let shown = "&#60;script&#62;alert(1)&#60;/script&#62; &#38; &#34;quotes&#34;";
    assert!(page.html.contains(shown), "{}", page.html);
    assert!(page.html.contains("&#60;b&#62;bold&#60;/b&#62;"));
}

#[tokio::test]
async fn moves_and_quick_adds_need_the_csrf_token_and_our_origin() {
    let server = TestServer::spawn().await;
    let (mut web, ada) = person(&server, "Ada").await;
    let (_, project) = project(&server, &ada).await;
    let a = task(&server, &ada, &project, json!({"title": "Alpha"})).await;
    let origin = web.base.trim_end_matches('/').to_string();
    let fields = [("task", id(&a)), ("status", "done"), ("version", "1")];
    let path = format!("/projects/{project}/move");

    let no_token = web
        .post_raw(
            &path,
            &fields,
            &[("origin", &origin), ("sec-fetch-site", "same-origin")],
        )
        .await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    let token = web.csrf.clone().unwrap();
    let cross_site = web
        .post_raw(
            &path,
            &fields,
            &[("sec-fetch-site", "cross-site"), ("x-csrf-token", &token)],
        )
        .await;
    assert_eq!(cross_site.status, StatusCode::FORBIDDEN);
    let add = web
        .post_raw(
            &format!("/projects/{project}/tasks"),
            &[("title", "Forged")],
            &[("origin", &origin)],
        )
        .await;
    assert_eq!(add.status, StatusCode::FORBIDDEN);
    assert_eq!(api_column(&server, &ada, &project, "todo").await, ["Alpha"]);
    assert!(api_column(&server, &ada, &project, "done").await.is_empty());
}
