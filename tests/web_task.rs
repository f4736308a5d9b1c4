//! The task page on the server side: showing and saving every field, the conflict panel of a
//! stale save (nothing overwritten), the permission matrix through the pages, bad input,
//! Markdown sanitizing, comments, attachments through the web routes, the create form, CSRF.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::web::{Page, WebClient};
use crate::common::{Account, TestServer, multipart};

/// A team with a project and a task in it created by `owner_web`'s account; `member` is in
/// the team but neither created nor is assigned to the task.
struct Setup {
    server: TestServer,
    owner_web: WebClient,
    owner: Account,
    member_web: WebClient,
    member: Account,
    project: String,
    task: String,
}

async fn signed_in(server: &TestServer, name: &str) -> (WebClient, Account) {
    let mut web = WebClient::new(server);
    let email = web.register(name).await;
    let api = server.login_ok(&email).await;
    (web, api)
}

async fn setup() -> Setup {
    let server = TestServer::spawn().await;
    let (owner_web, owner) = signed_in(&server, "Olga Owner").await;
    let (member_web, member) = signed_in(&server, "Mo Member").await;
    let team = server.create_team(&owner, "Crew").await;
    server.add_member(&team, &owner, &member, "member").await;
    let project = server
        .post(
            "/api/projects",
            Some(&owner.token),
            json!({"team_id": team, "name": "Launch"}),
        )
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let task = server
        .post(
            "/api/tasks",
            Some(&owner.token),
            json!({
                "title": "Original title",
                "description": "Steps:\n\n- first\n- second",
                "project_id": project,
                "labels": ["ops"],
                "assignee_ids": [owner.user_id],
            }),
        )
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    Setup {
        server,
        owner_web,
        owner,
        member_web,
        member,
        project,
        task,
    }
}

impl Setup {
    async fn task_json(&self) -> Value {
        self.server
            .get(
                &format!("/api/tasks/{}", self.task),
                Some(&self.owner.token),
            )
            .await
            .ok()
            .clone()
    }

    async fn patch(&self, body: Value) {
        self.server
            .call(
                Method::PATCH,
                &format!("/api/tasks/{}", self.task),
                Some(&self.owner.token),
                Some(body),
            )
            .await
            .ok();
    }
}

/// The edit form's fields for `task` (as the API shows it), unchanged: values and `base_*`.
fn edit_form(task: &Value) -> Vec<(String, String)> {
    let text = |k: &str| task[k].as_str().unwrap_or_default().to_string();
    let due = task["due_date"]
        .as_str()
        .map(|d| d[..10].to_string())
        .unwrap_or_default();
    let labels = task["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect::<Vec<_>>()
        .join(", ");
    let assignees: Vec<String> = task["assignee_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let mut fields = vec![("version".to_string(), task["version"].to_string())];
    for (name, value) in [
        ("title", text("title")),
        ("description", text("description")),
        ("status", text("status")),
        ("priority", text("priority")),
        ("due", due),
        ("labels", labels),
    ] {
        fields.push((name.to_string(), value.clone()));
        fields.push((format!("base_{name}"), value));
    }
    for a in &assignees {
        fields.push(("assignee".into(), a.clone()));
    }
    fields.push(("base_assignees".into(), assignees.join(",")));
    fields
}

/// `fields` with `name` set to `value` (every occurrence replaced, or added).
fn with(mut fields: Vec<(String, String)>, name: &str, value: &str) -> Vec<(String, String)> {
    fields.retain(|(k, _)| k != name);
    fields.push((name.to_string(), value.to_string()));
    fields
}

async fn post(web: &mut WebClient, path: &str, fields: &[(String, String)]) -> Page {
    let borrowed: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    web.post(path, &borrowed).await
}

/// Posts as htmx does: same-origin, the token in the header.
async fn post_htmx(web: &mut WebClient, path: &str, fields: &[(&str, &str)]) -> Page {
    let (origin, token) = (web.base.clone(), web.csrf.clone().unwrap());
    web.post_raw(
        path,
        fields,
        &[
            ("origin", &origin),
            ("x-csrf-token", &token),
            ("hx-request", "true"),
        ],
    )
    .await
}

/// Uploads files through the web route as the page's script does.
async fn upload(web: &WebClient, task: &str, files: &[(&str, &[u8])], token: bool) -> Page {
    let parts: Vec<(&str, Option<&str>, &[u8])> =
        files.iter().map(|(n, b)| ("file", Some(*n), *b)).collect();
    let (content_type, body) = multipart(&parts);
    let mut request = web
        .client
        .post(format!("{}/tasks/{task}/attachments", web.base))
        .header("content-type", content_type)
        .header("cookie", web.cookie.clone().unwrap())
        .header("origin", web.base.clone())
        .header("x-requested-with", "XMLHttpRequest")
        .body(body);
    if token {
        request = request.header("x-csrf-token", web.csrf.clone().unwrap());
    }
    let response = request.send().await.unwrap();
    Page {
        status: response.status(),
        headers: response.headers().clone(),
        html: response.text().await.unwrap(),
    }
}

#[tokio::test]
async fn the_page_shows_every_field_and_a_save_changes_them() {
    let mut s = setup().await;
    let path = format!("/tasks/{}", s.task);
    let page = s.owner_web.get(&path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    for shown in [
        "<h1 id=\"task-title\">Original title</h1>",
        "<li>first</li>",
        "<span class=\"label\">ops</span>",
        "Olga Owner",
        "Launch",
        "name=\"version\" value=\"1\"",
        "id=\"task-edit\"",
        "data-edit",
        "data-upload",
        "data-comment-form",
        "created the task",
    ] {
        assert!(page.html.contains(shown), "{shown} in {}", page.html);
    }
    // The form opens without script too.
    let open = s.owner_web.get(&format!("{path}?edit=1")).await;
    assert!(
        open.html
            .contains("id=\"task-view\" class=\"task-view\" aria-label=\"Task details\" hidden")
    );

    let task = s.task_json().await;
    let mut form = edit_form(&task);
    for (name, value) in [
        ("title", "Renamed"),
        ("status", "in_progress"),
        ("priority", "urgent"),
        ("due", "2026-03-01"),
        ("labels", "ops, web , ops"),
        ("description", "New **text**\r\nline two"),
    ] {
        form = with(form, name, value);
    }
    form.retain(|(k, _)| k != "assignee");
    form.push(("assignee".into(), s.member.user_id.clone()));
    let saved = post(&mut s.owner_web, &path, &form).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    assert_eq!(saved.location(), path);
    let task = s.task_json().await;
    assert_eq!(task["title"], "Renamed");
    assert_eq!(task["status"], "in_progress");
    assert_eq!(task["priority"], "urgent");
    assert_eq!(task["due_date"], "2026-03-01T23:59:59+00:00");
    assert_eq!(task["labels"], json!(["ops", "web"]));
    assert_eq!(task["assignee_ids"], json!([s.member.user_id]));
    assert_eq!(task["description"], "New **text**\nline two");
    assert_eq!(task["version"], 2);

    // Unchanged fields are not sent: clearing the due date alone touches nothing else.
    let form = with(edit_form(&task), "due", "");
    let saved = post(&mut s.owner_web, &path, &form).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    let task = s.task_json().await;
    assert!(task["due_date"].is_null());
    assert_eq!(task["title"], "Renamed");
    let page = s.owner_web.get(&path).await;
    assert!(page.html.contains("<strong>text</strong>"));
    assert!(
        page.html
            .contains("changed status from To do to In progress")
    );
    assert!(page.html.contains("assigned Mo Member"));
    assert!(page.html.contains("removed the due date"));
}

#[tokio::test]
async fn a_stale_save_shows_both_sides_and_overwrites_nothing() {
    let mut s = setup().await;
    let path = format!("/tasks/{}", s.task);
    let loaded = s.task_json().await;
    // Someone else saves first.
    s.patch(json!({"title": "Their title", "priority": "urgent"}))
        .await;
    let mut form = with(edit_form(&loaded), "title", "My title");
    form = with(form, "description", "My long description\nthat I typed");
    let conflict = post(&mut s.owner_web, &path, &form).await;
    assert_eq!(conflict.status, StatusCode::CONFLICT, "{}", conflict.html);
    for shown in [
        "Someone else saved this task",
        "Their title",
        "My title",
        "both changed",
        "Urgent",
        "(you did not change it)",
        "Apply my changes again",
        "Discard mine",
        "My long description\nthat I typed",
    ] {
        assert!(
            conflict.html.contains(shown),
            "{shown} in {}",
            conflict.html
        );
    }
    let now = s.task_json().await;
    assert_eq!(now["title"], "Their title", "nothing was overwritten");
    assert_eq!(now["description"], loaded["description"]);
    assert_eq!(now["version"], 2);
    // The form now carries the new version, their values as its base, and mine on top
    // (their priority kept where I did not change it).
    assert_eq!(
        conflict
            .attribute_after("name=\"version\"", "value")
            .unwrap(),
        "2"
    );
    assert_eq!(
        conflict
            .attribute_after("name=\"base_title\"", "value")
            .unwrap(),
        "Their title"
    );
    assert!(
        conflict
            .html
            .contains("<option value=\"urgent\" selected>Urgent</option>")
    );
    assert!(
        conflict.html.contains(
            "id=\"f-title\" name=\"title\" required maxlength=\"200\" value=\"My title\""
        )
    );
    // "Apply my changes again" posts that form.
    let mut again = with(edit_form(&now), "title", "My title");
    again = with(again, "description", "My long description\nthat I typed");
    let applied = post(&mut s.owner_web, &path, &again).await;
    assert_eq!(applied.status, StatusCode::SEE_OTHER, "{}", applied.html);
    let now = s.task_json().await;
    assert_eq!(now["title"], "My title");
    assert_eq!(now["priority"], "urgent", "their change is kept");
    assert_eq!(now["description"], "My long description\nthat I typed");
}

#[tokio::test]
async fn strangers_get_404_and_members_who_may_not_edit_get_403() {
    let mut s = setup().await;
    let path = format!("/tasks/{}", s.task);
    let (mut stranger, _) = signed_in(&s.server, "Stan Stranger").await;
    let form = with(edit_form(&s.task_json().await), "title", "Hijacked");
    for page in [
        stranger.get(&path).await,
        post(&mut stranger, &path, &form).await,
        stranger
            .post(&format!("{path}/comments"), &[("body", "hi")])
            .await,
        stranger.post(&format!("{path}/delete"), &[]).await,
        stranger.get("/tasks/not-a-uuid").await,
    ] {
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{}", page.html);
        assert!(page.html.contains("Not found"));
    }

    // A member sees the task but no control to change it.
    let page = s.member_web.get(&path).await;
    assert_eq!(page.status, StatusCode::OK);
    for control in [
        "id=\"task-edit\"",
        "data-edit",
        "data-comment-form",
        "data-upload",
        "/delete\"",
    ] {
        assert!(!page.html.contains(control), "{control} shown to a member");
    }
    for page in [
        post(&mut s.member_web, &path, &form).await,
        s.member_web
            .post(&format!("{path}/comments"), &[("body", "hi")])
            .await,
        s.member_web.post(&format!("{path}/delete"), &[]).await,
        upload(&s.member_web, &s.task, &[("a.txt", b"x")], true).await,
    ] {
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.html);
    }
    let task = s.task_json().await;
    assert_eq!(task["title"], "Original title");
    assert_eq!(task["comment_count"], 0);
}

#[tokio::test]
async fn bad_input_is_refused_with_its_message_and_the_typed_text_kept() {
    let mut s = setup().await;
    let path = format!("/tasks/{}", s.task);
    let task = s.task_json().await;
    let mut form = with(edit_form(&task), "title", "   ");
    form = with(form, "description", "Typed <text> to keep");
    let page = post(&mut s.owner_web, &path, &form).await;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        page.html
    );
    assert!(
        page.html.contains("Title must not be empty."),
        "{}",
        page.html
    );
    assert!(
        page.html.contains("Typed &#60;text&#62; to keep"),
        "{}",
        page.html
    );
    assert!(page.html.contains("aria-invalid=\"true\""));
    let form = with(edit_form(&task), "due", "2026-13-45");
    let page = post(&mut s.owner_web, &path, &form).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.html.contains("Due date must be a date like"),
        "{}",
        page.html
    );
    let form = with(edit_form(&task), "status", "someday");
    let page = post(&mut s.owner_web, &path, &form).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    let missing = s.owner_web.post(&path, &[("title", "x")]).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST, "no version");
    let after = s.task_json().await;
    assert_eq!(after["version"], 1, "nothing was written");
    assert_eq!(after["title"], "Original title");
}

#[tokio::test]
async fn markdown_is_sanitized_in_descriptions_comments_and_previews() {
    let mut s = setup().await;
    let path = format!("/tasks/{}", s.task);
    let hostile = "Hi <script>alert(1)</script> [x](javascript:alert(2)) <img src=x onerror=alert(3)> **bold**";
    s.patch(json!({ "description": hostile })).await;
    let comment = s
        .owner_web
        .post(&format!("{path}/comments"), &[("body", hostile)])
        .await;
    assert_eq!(comment.status, StatusCode::SEE_OTHER, "{}", comment.html);
    let page = s.owner_web.get(&path).await;
    assert!(!page.html.contains("<script>alert"), "{}", page.html);
    assert!(!page.html.contains("href=\"javascript:"));
    assert!(!page.html.contains("<img"));
    assert_eq!(page.html.matches("<strong>bold</strong>").count(), 2);
    let preview = post_htmx(
        &mut s.owner_web,
        "/tasks/preview",
        &[("description", hostile)],
    )
    .await;
    assert_eq!(preview.status, StatusCode::OK);
    assert!(preview.html.contains("<strong>bold</strong>"));
    assert!(!preview.html.contains("<script") && !preview.html.contains("<img"));
    assert!(!preview.html.contains("href=\"javascript:"));
}

#[tokio::test]
async fn comments_are_added_edited_and_deleted_in_place() {
    let mut s = setup().await;
    let path = format!("/tasks/{}", s.task);
    let added = post_htmx(
        &mut s.owner_web,
        &format!("{path}/comments"),
        &[("body", "Looks *good*")],
    )
    .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.html);
    assert!(
        added.html.starts_with("<li class=\"comment\""),
        "{}",
        added.html
    );
    assert!(added.html.contains("<em>good</em>") && added.html.contains("Olga Owner"));
    let id = added
        .attribute_after("<li class=\"comment\"", "id")
        .unwrap();
    let id = id.trim_start_matches("comment-").to_string();
    let empty = post_htmx(
        &mut s.owner_web,
        &format!("{path}/comments"),
        &[("body", "  ")],
    )
    .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(empty.html.contains("must not be empty"));

    let edited = post_htmx(
        &mut s.owner_web,
        &format!("/comments/{id}"),
        &[("body", "Looks great"), ("version", "1")],
    )
    .await;
    assert_eq!(edited.status, StatusCode::OK);
    assert!(edited.html.contains("Looks great") && edited.html.contains("(edited)"));
    // A stale edit keeps what was typed and says why.
    let stale = post_htmx(
        &mut s.owner_web,
        &format!("/comments/{id}"),
        &[("body", "My late words"), ("version", "1")],
    )
    .await;
    assert!(
        stale
            .html
            .contains("Someone changed this comment meanwhile")
    );
    assert!(stale.html.contains("My late words") && stale.html.contains("Looks great"));
    // Not the author: no edit, no delete.
    let page = s.member_web.get(&path).await;
    assert!(page.html.contains("Looks great"));
    assert!(!page.html.contains(&format!("/comments/{id}")));
    let refused = s
        .member_web
        .post(&format!("/comments/{id}/delete"), &[])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let deleted = post_htmx(&mut s.owner_web, &format!("/comments/{id}/delete"), &[]).await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert!(deleted.html.is_empty());
    assert_eq!(s.task_json().await["comment_count"], 0);
}

#[tokio::test]
async fn files_are_uploaded_downloaded_and_deleted_through_the_pages() {
    let s = setup().await;
    // Over the JSON body limit: uploads stream instead.
    let big: Vec<u8> = (0..1_500_000u32).map(|i| (i % 251) as u8).collect();
    let refused = upload(&s.owner_web, &s.task, &[("plan.txt", b"x")], false).await;
    assert_eq!(
        refused.status,
        StatusCode::FORBIDDEN,
        "the token is required"
    );
    let page = upload(
        &s.owner_web,
        &s.task,
        &[("plan.txt", b"the plan"), ("big.bin", &big)],
        true,
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(
        page.html.starts_with("<div id=\"attachments\""),
        "{}",
        page.html
    );
    assert!(page.html.contains("plan.txt") && page.html.contains("big.bin"));
    let files = s
        .server
        .get(
            &format!("/api/tasks/{}/attachments", s.task),
            Some(&s.owner.token),
        )
        .await;
    let files = files.ok()["items"].as_array().unwrap().clone();
    assert_eq!(files.len(), 2);
    for file in &files {
        let id = file["id"].as_str().unwrap();
        assert!(page.html.contains(&format!("/attachments/{id}/download")));
    }
    let plan = files.iter().find(|f| f["filename"] == "plan.txt").unwrap();
    let plan_id = plan["id"].as_str().unwrap();
    // Anyone who sees the task downloads; nobody else.
    let mut member = s.member_web;
    let download = member
        .client
        .get(format!("{}/attachments/{plan_id}/download", member.base))
        .header("cookie", member.cookie.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    let disposition = download.headers()["content-disposition"].to_str().unwrap();
    assert!(disposition.starts_with("attachment") && disposition.contains("plan.txt"));
    assert_eq!(download.headers()["x-content-type-options"], "nosniff");
    assert_eq!(download.bytes().await.unwrap().as_ref(), b"the plan");
    let (mut stranger, _) = signed_in(&s.server, "Stan").await;
    let hidden = stranger
        .get(&format!("/attachments/{plan_id}/download"))
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    let refused = member
        .post(&format!("/attachments/{plan_id}/delete"), &[])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let mut owner = s.owner_web;
    let deleted = owner
        .post(&format!("/attachments/{plan_id}/delete"), &[])
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER, "{}", deleted.html);
    let left = s
        .server
        .get(
            &format!("/api/tasks/{}/attachments", s.task),
            Some(&s.owner.token),
        )
        .await;
    assert_eq!(left.ok()["items"].as_array().unwrap().len(), 1);
    let gone = owner.get(&format!("/attachments/{plan_id}/download")).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_create_form_makes_tasks_in_my_projects_only() {
    let mut s = setup().await;
    let form = s
        .owner_web
        .get(&format!("/tasks/new?project={}", s.project))
        .await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(
        form.html.contains(&format!(
            "<option value=\"{}\" selected>Crew / Launch</option>",
            s.project
        )),
        "{}",
        form.html
    );
    let fields = |title: &'static str, project: String| {
        vec![
            ("title".to_string(), title.to_string()),
            ("description".into(), "- a\n- b".into()),
            ("status".into(), "blocked".into()),
            ("priority".into(), "high".into()),
            ("due".into(), "2026-05-04".into()),
            ("labels".into(), "x, y".into()),
            ("project".into(), project),
        ]
    };
    let created = post(
        &mut s.owner_web,
        "/tasks/new",
        &fields("Fresh", s.project.clone()),
    )
    .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.html);
    let id = created.location().trim_start_matches("/tasks/").to_string();
    let task = s
        .server
        .get(&format!("/api/tasks/{id}"), Some(&s.owner.token))
        .await;
    let task = task.ok();
    assert_eq!(task["title"], "Fresh");
    assert_eq!(task["project_id"], s.project.as_str());
    assert_eq!(task["status"], "blocked");
    assert_eq!(task["due_date"], "2026-05-04T23:59:59+00:00");
    assert_eq!(task["labels"], json!(["x", "y"]));

    let empty = post(
        &mut s.owner_web,
        "/tasks/new",
        &fields("", s.project.clone()),
    )
    .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(empty.html.contains("Title must not be empty."));
    let (mut stranger, _) = signed_in(&s.server, "Stan").await;
    let foreign = post(
        &mut stranger,
        "/tasks/new",
        &fields("Sneaky", s.project.clone()),
    )
    .await;
    assert_eq!(foreign.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(foreign.html.contains("choose one of your projects"));
    let personal = post(&mut stranger, "/tasks/new", &fields("Mine", String::new())).await;
    assert_eq!(personal.status, StatusCode::SEE_OTHER);

    // Deleting goes back to the project.
    let deleted = s.owner_web.post(&format!("/tasks/{id}/delete"), &[]).await;
    assert_eq!(deleted.location(), format!("/projects/{}", s.project));
    assert_eq!(
        s.owner_web.get(&format!("/tasks/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn every_change_needs_the_sessions_token() {
    let mut s = setup().await;
    let path = format!("/tasks/{}", s.task);
    let form = with(edit_form(&s.task_json().await), "title", "Forged");
    let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let origin = s.owner_web.base.clone();
    for target in [
        path.clone(),
        format!("{path}/comments"),
        format!("{path}/delete"),
    ] {
        let page = s
            .owner_web
            .post_raw(&target, &fields, &[("origin", &origin)])
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{target}");
    }
    let task = s.task_json().await;
    assert_eq!(task["title"], "Original title");
    assert_eq!(task["comment_count"], 0);
}
