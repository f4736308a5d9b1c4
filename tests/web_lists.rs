//! The task lists (`/tasks`, `/projects/{id}/list`) and the search page, server side: views
//! set by the URL, sorts, paging that keeps the filters, the bulk status change and its
//! per-task report, search highlights and escaping.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::web::{Page, WebClient};
use crate::common::{Account, TestServer};

/// The longest a test waits for the search index to catch up (the target is 1 s; this only
/// keeps a broken indexer from hanging the suite).
const PATIENCE: Duration = Duration::from_secs(10);

/// A web user with an API session of their own for setting up data.
async fn person(server: &TestServer, name: &str) -> (WebClient, Account) {
    let mut web = WebClient::new(server);
    let email = web.register(name).await;
    let api = server.login_ok(&email).await;
    (web, api)
}

async fn project(server: &TestServer, owner: &Account, team: &str, name: &str) -> String {
    let reply = server
        .post(
            "/api/projects",
            Some(&owner.token),
            json!({"team_id": team, "name": name}),
        )
        .await;
    reply.ok()["id"].as_str().unwrap().to_string()
}

async fn task(server: &TestServer, by: &Account, body: Value) -> Value {
    let reply = server.post("/api/tasks", Some(&by.token), body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body
}

/// The titles among `titles` that the page shows, in the order it shows them.
fn shown<'a>(page: &Page, titles: &[&'a str]) -> Vec<&'a str> {
    let mut found: Vec<(usize, &str)> = titles
        .iter()
        .filter_map(|t| page.html.find(&format!(">{t}</a>")).map(|at| (at, *t)))
        .collect();
    found.sort();
    found.into_iter().map(|(_, t)| t).collect()
}

fn rows(page: &Page) -> usize {
    page.html.matches("data-nav-item").count()
}

/// The `href` of the link marked `rel="next"`, unescaped.
fn next_link(page: &Page) -> Option<String> {
    let at = page.html.find("rel=\"next\"")?;
    let start = page.html[..at].rfind("href=\"")? + "href=\"".len();
    let end = start + page.html[start..].find('"')?;
    Some(
        page.html[start..end]
            .replace("&#38;", "&")
            .replace("&amp;", "&"),
    )
}

#[tokio::test]
async fn a_list_is_filtered_and_sorted_by_its_url() {
    let server = TestServer::spawn().await;
    let (mut web, ada) = person(&server, "Ada").await;
    let team = server.create_team(&ada, "Crew").await;
    let board = project(&server, &ada, &team, "Ship").await;
    let base = json!({"project_id": board});
    let with = |extra: Value| {
        let mut body = base.clone();
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let alpha = task(
        &server,
        &ada,
        with(
            json!({"title": "Alpha", "priority": "low", "due_date": "2030-01-10T12:00:00Z",
            "labels": ["x"], "assignee_ids": [ada.user_id]}),
        ),
    )
    .await;
    task(
        &server,
        &ada,
        with(
            json!({"title": "Bravo", "status": "in_progress", "priority": "urgent",
            "due_date": "2030-01-05T09:00:00Z"}),
        ),
    )
    .await;
    task(
        &server,
        &ada,
        with(json!({"title": "Charlie", "status": "done", "labels": ["x"]})),
    )
    .await;
    let all = ["Alpha", "Bravo", "Charlie"];

    let page = web.get("/tasks").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("<h1>All tasks</h1>"));
    assert!(page.html.contains("method=\"get\" action=\"/tasks\""));
    assert!(page.html.contains("data-live-src=\"/tasks\""));
    assert_eq!(
        shown(&page, &all),
        ["Charlie", "Bravo", "Alpha"],
        "newest first"
    );
    // The rows carry their project, the version a bulk change sends, and the keys' hooks.
    assert!(page.html.contains("<span class=\"project\">Ship</span>"));
    let alpha_id = alpha["id"].as_str().unwrap();
    assert!(page.html.contains(&format!("value=\"{alpha_id}:1\"")));
    assert!(
        page.html
            .contains(&format!("href=\"/tasks/{alpha_id}\" data-edit"))
    );

    for (query, expected) in [
        ("sort=created", vec!["Alpha", "Bravo", "Charlie"]),
        ("sort=priority", vec!["Alpha", "Charlie", "Bravo"]),
        ("sort=-priority", vec!["Bravo", "Charlie", "Alpha"]),
        // Without a due date: last in both directions.
        ("sort=due_date", vec!["Bravo", "Alpha", "Charlie"]),
        ("sort=-due_date", vec!["Alpha", "Bravo", "Charlie"]),
        (
            "status=todo&status=in_progress&sort=created",
            vec!["Alpha", "Bravo"],
        ),
        ("status=done,todo&sort=created", vec!["Alpha", "Charlie"]),
        ("label=x&sort=created", vec!["Alpha", "Charlie"]),
        ("priority=urgent", vec!["Bravo"]),
        ("assignee=me", vec!["Alpha"]),
        ("due_from=2030-01-06", vec!["Alpha"]),
        ("due_to=2030-01-05", vec!["Bravo"]),
        (
            "due_from=2030-01-05&due_to=2030-01-10&sort=created",
            vec!["Alpha", "Bravo"],
        ),
    ] {
        let page = web.get(&format!("/tasks?{query}")).await;
        assert_eq!(page.status, StatusCode::OK, "{query}: {}", page.html);
        assert_eq!(shown(&page, &all), expected, "{query}");
    }

    // The form shows the view it describes.
    let page = web
        .get("/tasks?status=done&priority=urgent&sort=-due_date&label=x")
        .await;
    assert!(page.html.contains("value=\"done\" checked"));
    assert!(!page.html.contains("value=\"todo\" checked"));
    assert!(page.html.contains("value=\"urgent\" selected"));
    assert!(page.html.contains("value=\"-due_date\" selected"));
    assert!(page.html.contains("name=\"label\" value=\"x\""));
    assert!(page.html.contains("No tasks match this view."));

    // Updated: the task changed last comes last, or first reversed.
    let path = format!("/api/tasks/{alpha_id}");
    server
        .call(
            Method::PATCH,
            &path,
            Some(&ada.token),
            Some(json!({"description": "now changed"})),
        )
        .await
        .ok();
    let page = web.get("/tasks?sort=updated").await;
    assert_eq!(shown(&page, &all), ["Bravo", "Charlie", "Alpha"]);
    let page = web.get("/tasks?sort=-updated").await;
    assert_eq!(shown(&page, &all), ["Alpha", "Charlie", "Bravo"]);

    // A view the URL cannot describe is refused with the filter's name, as a page.
    let page = web.get("/tasks?status=nope").await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.header("content-type").starts_with("text/html"));
    assert!(page.html.contains("status"), "{}", page.html);
}

#[tokio::test]
async fn the_next_page_keeps_the_filters() {
    let server = TestServer::spawn().await;
    let (mut web, ada) = person(&server, "Ada").await;
    for i in 0..53 {
        let labels = if i % 13 == 0 { json!([]) } else { json!(["p"]) };
        task(
            &server,
            &ada,
            json!({"title": format!("Task {i:02}"), "labels": labels}),
        )
        .await;
    }
    // 53 tasks, 5 without the label: 48 with it. Sorted oldest first, 50 a page.
    let first = web.get("/tasks?sort=created").await;
    assert_eq!(rows(&first), 50);
    let next = next_link(&first).expect("a next page");
    assert!(next.starts_with("/tasks?sort=created&cursor="), "{next}");
    let second = web.get(&next).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.html);
    assert_eq!(rows(&second), 3);
    assert!(second.html.contains(">Task 52</a>"));
    assert!(!second.html.contains(">Task 49</a>"));
    assert!(
        second
            .html
            .contains("href=\"/tasks?sort=created\">First page")
    );
    assert!(next_link(&second).is_none());

    // Newest first with a filter: the filter travels with the cursor.
    let mut seen = 0;
    let mut url = "/tasks?label=p&sort=-created".to_string();
    loop {
        let page = web.get(&url).await;
        assert_eq!(page.status, StatusCode::OK, "{url}: {}", page.html);
        assert!(!page.html.contains(">Task 00</a>") && !page.html.contains(">Task 13</a>"));
        assert!(page.html.contains("name=\"label\" value=\"p\""));
        seen += rows(&page);
        match next_link(&page) {
            Some(next) => {
                assert!(next.contains("label=p") && next.contains("sort=-created"));
                url = next;
            }
            None => break,
        }
    }
    assert_eq!(seen, 48);
}

#[tokio::test]
async fn a_project_list_is_for_its_team_only() {
    let server = TestServer::spawn().await;
    let (mut web, ada) = person(&server, "Ada").await;
    let team = server.create_team(&ada, "Crew").await;
    let board = project(&server, &ada, &team, "Ship <&>").await;
    task(
        &server,
        &ada,
        json!({"title": "In the project", "project_id": board}),
    )
    .await;
    task(&server, &ada, json!({"title": "Personal"})).await;
    let hostile = "<img src=x onerror=alert(2)> & \"quoted\"";
    task(
        &server,
        &ada,
        json!({"title": hostile, "project_id": board, "labels": ["<b>l</b>"]}),
    )
    .await;

    let page = web.get(&format!("/projects/{board}/list")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains(">In the project</a>"));
    assert!(!page.html.contains(">Personal</a>"));
    assert!(
        page.html
            .contains(&format!("action=\"/projects/{board}/list\""))
    );
    assert!(page.html.contains(&format!("href=\"/projects/{board}\"")));
    assert!(!page.html.contains("<img src=x"), "titles are escaped");
    assert!(!page.html.contains("<b>l</b>"), "labels are escaped");
    assert!(
        !page.html.contains("Ship <&>"),
        "the project's name is escaped"
    );
    // Everything shows on /tasks too.
    let all = web.get("/tasks").await;
    assert!(all.html.contains(">Personal</a>") && all.html.contains(">In the project</a>"));

    let (mut stranger, _) = person(&server, "Eve").await;
    let page = stranger.get(&format!("/projects/{board}/list")).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.html.contains("Not found"));
    assert!(!page.html.contains("In the project"));
    let theirs = stranger.get("/tasks").await;
    assert!(!theirs.html.contains("In the project"));
    let page = stranger
        .post(
            &format!("/projects/{board}/list/bulk-status"),
            &[("to", "done")],
        )
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
}

async fn status_of(server: &TestServer, who: &Account, id: &str) -> String {
    let reply = server
        .get(&format!("/api/tasks/{id}"), Some(&who.token))
        .await;
    reply.ok()["status"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_bulk_change_reports_each_task() {
    let server = TestServer::spawn().await;
    let (_, ada) = person(&server, "Ada").await;
    let (mut bo_web, bo) = person(&server, "Bo").await;
    let team = server.create_team(&ada, "Crew").await;
    server.add_member(&team, &ada, &bo, "member").await;
    let board = project(&server, &ada, &team, "Ship").await;
    let mine = task(
        &server,
        &bo,
        json!({"title": "Bo's first", "project_id": board}),
    )
    .await;
    let moved = task(
        &server,
        &bo,
        json!({"title": "Bo's second", "project_id": board}),
    )
    .await;
    let adas = task(
        &server,
        &ada,
        json!({"title": "Ada's own", "project_id": board}),
    )
    .await;
    let id = |t: &Value| t["id"].as_str().unwrap().to_string();
    let (mine, moved, adas) = (id(&mine), id(&moved), id(&adas));

    let list = format!("/projects/{board}/list");
    let page = bo_web.get(&format!("{list}?sort=created")).await;
    assert_eq!(page.status, StatusCode::OK);
    // Bo may change his own tasks, not Ada's: no box on her row.
    assert!(page.html.contains(&format!("value=\"{mine}:1\"")));
    assert!(!page.html.contains(&format!("value=\"{adas}:")));
    assert!(page.html.contains("Set status"));
    assert!(page.html.contains(&format!(
        "action=\"/projects/{board}/list/bulk-status?sort=created\""
    )));

    // Someone changes Bo's second task after his list was loaded.
    server
        .call(
            Method::PATCH,
            &format!("/api/tasks/{moved}"),
            Some(&bo.token),
            Some(json!({"status": "blocked"})),
        )
        .await
        .ok();

    let action = format!("{list}/bulk-status?sort=created");
    let fields = [
        ("task", format!("{mine}:1")),
        ("task", format!("{moved}:1")),
        ("task", format!("{adas}:1")),
    ];
    let mut form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    form.push(("to", "done"));

    // Without the CSRF token: refused, nothing written.
    let origin = bo_web.base.trim_end_matches('/').to_string();
    let refused = bo_web
        .post_raw(&action, &form, &[("origin", &origin)])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(status_of(&server, &bo, &mine).await, "todo");

    let page = bo_web.post(&action, &form).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(
        page.html.contains("<strong>1 of 3</strong>"),
        "{}",
        page.html
    );
    assert!(page.html.contains("set to Done"));
    for (kind, task, label) in [
        ("done", &mine, "Changed"),
        ("stale", &moved, "Changed by someone else"),
        ("denied", &adas, "Not allowed"),
    ] {
        let line = format!(
            "outcome-{kind}\"><span class=\"badge\">{label}</span> <a href=\"/tasks/{task}\">"
        );
        assert!(page.html.contains(&line), "{kind}: {}", page.html);
    }
    // The list below is the one the form came from, already showing the change.
    assert!(
        page.html
            .contains(&format!("data-live-src=\"{list}?sort=created\""))
    );
    assert!(page.html.contains(&format!("value=\"{mine}:2\"")));
    assert_eq!(status_of(&server, &bo, &mine).await, "done");
    assert_eq!(status_of(&server, &bo, &moved).await, "blocked");
    assert_eq!(status_of(&server, &ada, &adas).await, "todo");

    // Nothing selected, or no status: said so, nothing done.
    let page = bo_web.post(&action, &[("to", "done")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.html.contains("Select at least one task first."));
    let page = bo_web
        .post(&action, &[("task", &format!("{moved}:2")), ("to", "")])
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.html.contains("Choose the status to set."));
    assert_eq!(status_of(&server, &bo, &moved).await, "blocked");
    let page = bo_web
        .post("/tasks/bulk-status", &[("task", "garbage"), ("to", "done")])
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);

    // Reloading the result page's address goes back to the list.
    let back = bo_web
        .get(&format!("{list}/bulk-status?sort=created"))
        .await;
    assert_eq!(back.status, StatusCode::SEE_OTHER);
    assert_eq!(back.location(), format!("{list}?sort=created"));
    let back = bo_web.get("/tasks/bulk-status?label=x").await;
    assert_eq!(back.location(), "/tasks?label=x");
}

/// Searches as `web` until `found` holds for the page (the index catches up within a second).
async fn search_until(web: &mut WebClient, query: &str, found: impl Fn(&Page) -> bool) -> Page {
    let started = Instant::now();
    loop {
        let page = web.get(&format!("/search?{query}")).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.html);
        if found(&page) {
            return page;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "search {query} still shows {}",
            page.html
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn search_marks_matches_and_escapes_everything_else() {
    let server = TestServer::spawn().await;
    let (mut web, ada) = person(&server, "Ada").await;
    let team = server.create_team(&ada, "Crew").await;
    let board = project(&server, &ada, &team, "Launch").await;
    task(
        &server,
        &ada,
        json!({"title": "Deploy the <b>rocket</b> & \"fuel\"", "project_id": board,
            "description": "We deploy on Fridays <script>alert(1)</script> only."}),
    )
    .await;
    task(&server, &ada, json!({"title": "Unrelated chore"})).await;

    let page = web.get("/search").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("data-search-input"));
    assert!(page.html.contains("hx-get=\"/search\""));
    assert!(page.html.contains("Type to search"));

    let page = search_until(&mut web, "q=deploy", |p| p.html.contains("<mark>")).await;
    assert!(
        page.html
            .contains("<mark>Deploy</mark> the &#60;b&#62;rocket&#60;/b&#62; &#38; &#34;fuel&#34;"),
        "{}",
        page.html
    );
    assert!(
        page.html
            .contains("We <mark>deploy</mark> on Fridays &#60;script&#62;"),
        "{}",
        page.html
    );
    assert!(!page.html.contains("<b>rocket"));
    assert!(!page.html.contains("<script>alert"));
    assert!(!page.html.contains("Unrelated chore"));
    assert!(page.html.contains("<span class=\"project\">Launch</span>"));
    // Filters narrow it, and the form keeps them.
    let page = web.get("/search?q=deploy&status=done").await;
    assert!(page.html.contains("Nothing matches"), "{}", page.html);
    assert!(page.html.contains("value=\"done\" checked"));
    let page = web.get(&format!("/search?q=deploy&project={board}")).await;
    assert!(page.html.contains("<mark>Deploy</mark>"));
    assert!(page.html.contains(&format!("value=\"{board}\" selected")));

    // A query without a word, and a project one cannot see: said so, never an error page.
    let page = web.get("/search?q=%21%21%3F").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.html.contains("Type at least one word or number"),
        "{}",
        page.html
    );
    let (mut eve, _) = person(&server, "Eve").await;
    let page = eve.get(&format!("/search?q=deploy&project={board}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("cannot see it"), "{}", page.html);
    let page = eve.get("/search?q=deploy").await;
    assert!(page.html.contains("Nothing matches"), "{}", page.html);
    let page = web.get("/search?q=deploy&status=nope").await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
}
