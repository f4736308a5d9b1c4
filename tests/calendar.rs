//! The calendar feed: `/api/auth/calendar` (status, create or regenerate, revoke) and the feed
//! at `/ical/{token}.ics`, parsed with the `icalendar` crate's parser; the profile page's
//! "Calendar feed" section.

use icalendar::{Calendar, Component, DatePerhapsTime, TodoStatus};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::web::WebClient;
use crate::common::{Account, TestServer};
use crate::tasks::{cast, new_task};

const TIMED: &str = "2026-03-01T09:15:00Z";
const DAY: &str = "2026-03-02T23:59:59Z";

/// The feed as fetched by a calendar app: no headers but the URL.
struct Fetched {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Fetched {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn calendar(&self) -> Calendar {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        self.body.parse().expect("the feed parses as iCalendar")
    }
}

async fn fetch(server: &TestServer, url: &str, etag: Option<&str>) -> Fetched {
    let mut request = server.client.get(url);
    if let Some(etag) = etag {
        request = request.header("if-none-match", etag);
    }
    let response = request.send().await.unwrap();
    Fetched {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap(),
    }
}

/// `POST /api/auth/calendar` as `who`: the new feed's `url` and `event_url`.
async fn create_feed(server: &TestServer, who: &Account) -> (String, String) {
    let reply = server
        .call(Method::POST, "/api/auth/calendar", Some(&who.token), None)
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.headers["location"], "/api/auth/calendar");
    let url = reply.body["url"].as_str().unwrap().to_string();
    assert!(
        url.starts_with(&format!("{}/ical/tkc_", server.base)) && url.ends_with(".ics"),
        "{url}"
    );
    let event_url = reply.body["event_url"].as_str().unwrap().to_string();
    assert_eq!(event_url, format!("{url}?kind=event"));
    (url, event_url)
}

fn uids(calendar: &Calendar) -> Vec<String> {
    let mut uids: Vec<String> = calendar
        .todos()
        .map(|t| t.get_uid().unwrap().to_string())
        .collect();
    uids.sort();
    uids
}

fn uid(task: &Value) -> String {
    format!("{}@127.0.0.1", task["id"].as_str().unwrap())
}

fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
    text.parse().unwrap()
}

#[tokio::test]
async fn the_feed_lists_my_dated_tasks_and_follows_assignment_and_membership() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let me = &c.assignee;
    let task = |title: &str, due: Option<&str>, extra: Value| {
        let mut body = json!({
            "title": title,
            "project_id": c.project,
            "assignee_ids": [me.user_id],
            "due_date": due,
        });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let timed = new_task(
        &server,
        &c.owner,
        task(
            "Ship, then; rest",
            Some(TIMED),
            json!({"priority": "urgent", "status": "in_progress", "description": "line one\nline two"}),
        ),
    )
    .await;
    let day = new_task(
        &server,
        &c.owner,
        task(
            "Day task",
            Some(DAY),
            json!({"priority": "low", "status": "done"}),
        ),
    )
    .await;
    new_task(&server, &c.owner, task("Undated", None, json!({}))).await;
    let not_mine = json!({"title": "Theirs", "project_id": c.project, "due_date": TIMED});
    new_task(&server, &c.owner, not_mine).await;
    let personal = new_task(
        &server,
        me,
        json!({"title": "Mine alone", "assignee_ids": [me.user_id], "due_date": DAY}),
    )
    .await;

    let status = server.get("/api/auth/calendar", Some(&me.token)).await;
    assert_eq!(status.ok()["active"], false);
    assert!(status.body["created_at"].is_null());
    let (url, event_url) = create_feed(&server, me).await;
    let status = server.get("/api/auth/calendar", Some(&me.token)).await;
    assert_eq!(status.ok()["active"], true);
    assert!(status.body["created_at"].is_string());
    assert!(
        !status.body.to_string().contains("tkc_"),
        "never the secret again"
    );

    let first = fetch(&server, &url, None).await;
    assert_eq!(first.header("content-type"), "text/calendar; charset=utf-8");
    assert_eq!(first.header("cache-control"), "private, max-age=300");
    let etag = first.header("etag").to_string();
    assert!(etag.starts_with('"'), "{etag}");
    let calendar = first.calendar();
    let mut expected = vec![uid(&timed), uid(&day), uid(&personal)];
    expected.sort();
    assert_eq!(uids(&calendar), expected);
    // Latest due first.
    let order: Vec<&str> = calendar.todos().map(|t| t.get_summary().unwrap()).collect();
    assert_eq!(order[2], "Ship, then; rest");

    let find = |calendar: &Calendar, task: &Value| {
        calendar
            .todos()
            .find(|t| t.get_uid() == Some(uid(task).as_str()))
            .cloned()
            .expect("the task is in the feed")
    };
    let entry = find(&calendar, &timed);
    assert_eq!(entry.get_summary(), Some("Ship, then; rest"));
    assert_eq!(entry.get_description(), Some("line one\nline two"));
    assert_eq!(entry.get_due(), Some(at(TIMED).into()));
    assert_eq!(entry.get_status(), Some(TodoStatus::InProcess));
    assert_eq!(entry.get_priority(), Some(1));
    let link = format!("{}/tasks/{}", server.base, timed["id"].as_str().unwrap());
    assert_eq!(entry.get_url(), Some(link.as_str()));
    let page = server.client.get(&link).send().await.unwrap();
    assert_ne!(page.status(), StatusCode::NOT_FOUND, "the link is a page");
    let entry = find(&calendar, &day);
    let due_day = chrono::NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
    assert_eq!(entry.get_due(), Some(DatePerhapsTime::Date(due_day)));
    assert_eq!(entry.get_status(), Some(TodoStatus::Completed));
    assert_eq!(entry.get_priority(), Some(9));
    assert!(entry.get_last_modified().is_some() && entry.get_timestamp().is_some());

    // Unchanged: the same bytes, the same UIDs, and 304 on revalidation.
    let again = fetch(&server, &url, None).await;
    assert_eq!(again.header("etag"), etag);
    assert_eq!(uids(&again.calendar()), expected);
    let revalidated = fetch(&server, &url, Some(&etag)).await;
    assert_eq!(revalidated.status, StatusCode::NOT_MODIFIED);
    assert!(revalidated.body.is_empty());
    assert_eq!(revalidated.header("etag"), etag);

    // An edit changes the tag; an unassigned task leaves the feed.
    let path = format!("/api/tasks/{}", timed["id"].as_str().unwrap());
    let patch = |body: Value| server.call(Method::PATCH, &path, Some(&c.owner.token), Some(body));
    patch(json!({"title": "Renamed"})).await.ok();
    let edited = fetch(&server, &url, Some(&etag)).await;
    assert_eq!(edited.status, StatusCode::OK);
    assert_ne!(edited.header("etag"), etag);
    assert_eq!(
        find(&edited.calendar(), &timed).get_summary(),
        Some("Renamed")
    );
    patch(json!({"assignee_ids": []})).await.ok();
    let mut without = vec![uid(&day), uid(&personal)];
    without.sort();
    assert_eq!(uids(&fetch(&server, &url, None).await.calendar()), without);

    // The events variant: the same tasks as VEVENTs, all day or 30 minutes at the due time.
    patch(json!({"assignee_ids": [me.user_id]})).await.ok();
    let events = fetch(&server, &event_url, None).await.calendar();
    assert_eq!(events.todos().count(), 0);
    let mut event_uids: Vec<String> = events
        .events()
        .map(|e| e.get_uid().unwrap().to_string())
        .collect();
    event_uids.sort();
    assert_eq!(event_uids, expected);
    let timed_event = events
        .events()
        .find(|e| e.get_uid() == Some(uid(&timed).as_str()))
        .unwrap();
    assert_eq!(timed_event.get_start(), Some(at(TIMED).into()));
    assert_eq!(
        timed_event.get_end(),
        Some((at(TIMED) + chrono::Duration::minutes(30)).into())
    );
    let day_event = events
        .events()
        .find(|e| e.get_uid() == Some(uid(&day).as_str()))
        .unwrap();
    assert_eq!(day_event.get_start(), Some(DatePerhapsTime::Date(due_day)));
    assert_eq!(
        day_event.get_end(),
        Some(DatePerhapsTime::Date(due_day.succ_opt().unwrap()))
    );
    assert_eq!(
        fetch(&server, &format!("{url}?kind=nonsense"), None)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    // Removed from the team: its tasks leave the feed; the personal task stays.
    let member = format!("/api/teams/{}/members/{}", c.team, me.user_id);
    let removed = server
        .call(Method::DELETE, &member, Some(&c.owner.token), None)
        .await;
    assert!(removed.status.is_success(), "{}", removed.body);
    assert_eq!(
        uids(&fetch(&server, &url, None).await.calendar()),
        vec![uid(&personal)]
    );
}

#[tokio::test]
async fn regenerating_and_revoking_end_the_old_url_and_nobody_else_can() {
    let server = TestServer::spawn().await;
    let (me, other) = (server.register().await, server.register().await);
    let (old, _) = create_feed(&server, &me).await;
    assert_eq!(fetch(&server, &old, None).await.status, StatusCode::OK);
    let (new, _) = create_feed(&server, &me).await;
    assert_ne!(old, new);
    let gone = fetch(&server, &old, None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.body, "Not Found\n");
    assert_eq!(fetch(&server, &new, None).await.status, StatusCode::OK);

    // Another account sees and revokes only its own (it has none).
    let theirs = server.get("/api/auth/calendar", Some(&other.token)).await;
    assert_eq!(theirs.ok()["active"], false);
    server
        .call(
            Method::DELETE,
            "/api/auth/calendar",
            Some(&other.token),
            None,
        )
        .await
        .problem(404, "not_found");
    assert_eq!(fetch(&server, &new, None).await.status, StatusCode::OK);
    server
        .get("/api/auth/calendar", None)
        .await
        .problem(401, "unauthenticated");

    let revoked = server
        .call(Method::DELETE, "/api/auth/calendar", Some(&me.token), None)
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    assert_eq!(
        fetch(&server, &new, None).await.status,
        StatusCode::NOT_FOUND
    );
    let status = server.get("/api/auth/calendar", Some(&me.token)).await;
    assert_eq!(status.ok()["active"], false);
    server
        .call(Method::DELETE, "/api/auth/calendar", Some(&me.token), None)
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn malformed_and_unknown_tokens_are_a_plain_404() {
    let server = TestServer::spawn().await;
    let me = server.register().await;
    let (url, _) = create_feed(&server, &me).await;
    let token = url
        .rsplit('/')
        .next()
        .unwrap()
        .trim_end_matches(".ics")
        .to_string();
    let unknown = format!("tkc_{}", "0".repeat(64));
    let long = "a".repeat(5000);
    for file in [
        "x.ics".to_string(),
        "tkc_.ics".into(),
        format!("{unknown}.ics"),
        format!("{}.ics", token.to_uppercase()),
        format!("{token}0.ics"),
        token.clone(),
        format!("{token}.ical"),
        format!("{long}.ics"),
        "%00.ics".into(),
        "%F0%9F%98%80.ics".into(),
    ] {
        let reply = fetch(&server, &server.url(&format!("/ical/{file}")), None).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{file}: {}",
            reply.body
        );
        assert!(!reply.body.contains("tkc_"), "{file}");
    }
    assert_eq!(
        fetch(&server, &server.url("/ical/"), None).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_profile_page_creates_shows_once_and_turns_off_the_feed() {
    let server = TestServer::spawn().await;
    let mut web = WebClient::new(&server);
    web.register("Cal").await;
    let page = web.get("/profile").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("Calendar feed"), "{}", page.html);
    assert!(page.html.contains("You have no calendar feed."));

    let made = web.post("/profile/calendar", &[]).await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.html);
    assert_eq!(made.header("cache-control"), "no-store");
    let url = made
        .attribute_after("id=\"calendar-url\"", "value")
        .expect("the address is shown");
    assert!(
        url.starts_with(&format!("{}/ical/tkc_", server.base)),
        "{url}"
    );
    let events = made
        .attribute_after("id=\"calendar-event-url\"", "value")
        .unwrap();
    assert_eq!(events, format!("{url}?kind=event"));
    assert_eq!(fetch(&server, &url, None).await.status, StatusCode::OK);
    assert_eq!(fetch(&server, &events, None).await.status, StatusCode::OK);

    let token = url.rsplit('/').next().unwrap().trim_end_matches(".ics");
    let later = web.get("/profile").await;
    assert!(later.html.contains("Your feed is on"));
    assert!(!later.html.contains(token), "shown once only");

    let off = web.post("/profile/calendar/revoke", &[]).await;
    assert_eq!(off.status, StatusCode::SEE_OTHER);
    assert_eq!(off.location(), "/profile?saved=calendar#calendar");
    assert_eq!(
        fetch(&server, &url, None).await.status,
        StatusCode::NOT_FOUND
    );
    let page = web.get("/profile?saved=calendar").await;
    assert!(page.html.contains("calendar feed was turned off"));
    assert!(page.html.contains("You have no calendar feed."));
    // Turning off what is already off is no error.
    let again = web.post("/profile/calendar/revoke", &[]).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
}

/// With `--public-url`, the feed's URL, its task links and UIDs use it, not the address the
/// request came to (a calendar app behind another name sees the same UIDs).
#[tokio::test]
async fn the_feed_uses_the_public_url_when_set() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = crate::common::test_config(tmp.path());
    config.mail.public_url = Some("https://tasks.example.com/team".into());
    let server = TestServer::spawn_with(config).await;
    let me = server.register().await;
    let team = server.create_team(&me, "Public").await;
    let project = server
        .post(
            "/api/projects",
            Some(&me.token),
            json!({"team_id": team, "name": "P"}),
        )
        .await;
    let task = new_task(
        &server,
        &me,
        json!({"title": "Dated", "project_id": project.ok()["id"], "assignee_ids": [me.user_id], "due_date": TIMED}),
    )
    .await;
    let reply = server
        .call(Method::POST, "/api/auth/calendar", Some(&me.token), None)
        .await;
    let url = reply.body["url"].as_str().unwrap();
    let path = url
        .strip_prefix("https://tasks.example.com/team/ical/tkc_")
        .unwrap_or_else(|| panic!("{url}"));
    let feed = fetch(&server, &server.url(&format!("/ical/tkc_{path}")), None).await;
    let calendar = feed.calendar();
    let entry = calendar.todos().next().expect("the dated task");
    let id = task["id"].as_str().unwrap();
    assert_eq!(
        entry.get_url(),
        Some(format!("https://tasks.example.com/team/tasks/{id}").as_str())
    );
    assert_eq!(
        entry.get_uid(),
        Some(format!("{id}@tasks.example.com").as_str())
    );
}
