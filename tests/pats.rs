//! Personal access tokens: the scope matrix (each area × read/write: the allowed call
//! succeeds, the other is refused with 403 and writes nothing), team limits (other teams are
//! 404 and absent from lists and search), expiry, revocation (also of an open WebSocket),
//! what a token can never do, the `admin` scope, bad input, and someone else's token.

use std::time::Duration;

use chrono::Utc;
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::common::{Account, PASSWORD, Reply, TestServer};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long to wait for something that should happen.
const PATIENCE: Duration = Duration::from_secs(10);

const AREAS: [&str; 6] = [
    "tasks",
    "comments",
    "attachments",
    "projects",
    "teams",
    "notifications",
];

fn in_days(days: i64) -> String {
    (Utc::now() + chrono::Duration::days(days)).to_rfc3339()
}

/// Creates a token as `who` (a session): the whole answer.
async fn create_token(server: &TestServer, who: &Account, body: Value) -> Reply {
    server
        .post("/api/auth/tokens", Some(&who.token), body)
        .await
}

/// A token of `who` with `scopes`, valid for a week: its secret and id.
async fn token(server: &TestServer, who: &Account, scopes: &[&str]) -> (String, String) {
    let reply = create_token(
        server,
        who,
        json!({"name": "test", "scopes": scopes, "expires_at": in_days(7)}),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    (
        reply.body["token"].as_str().unwrap().to_string(),
        reply.body["access_token"]["id"]
            .as_str()
            .unwrap()
            .to_string(),
    )
}

/// A team with a project, a task in it with a comment and an attachment, and a notification
/// for the owner (a member commented).
struct World {
    owner: Account,
    team: String,
    project: String,
    task: String,
}

async fn world(server: &TestServer) -> World {
    let owner = server.register().await;
    let member = server.register().await;
    let team = server.create_team(&owner, "Matrix").await;
    server.add_member(&team, &owner, &member, "member").await;
    let project = server
        .post(
            "/api/projects",
            Some(&owner.token),
            json!({"team_id": team, "name": "P"}),
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
            json!({"title": "T", "project_id": project, "assignee_ids": [member.user_id]}),
        )
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    server
        .post(
            &format!("/api/tasks/{task}/comments"),
            Some(&member.token),
            json!({"body": "hello"}),
        )
        .await
        .ok();
    server
        .upload(&task, &owner.token, &[("a.txt", b"attached")])
        .await
        .ok();
    World {
        owner,
        team,
        project,
        task,
    }
}

/// Everything the matrix's writes could change, as the owner's session reads it.
async fn snapshot(server: &TestServer, w: &World) -> Vec<Value> {
    let session = Some(w.owner.token.as_str());
    let mut all = Vec::new();
    for path in [
        format!("/api/tasks?scope=all&project_id={}", w.project),
        format!("/api/tasks/{}/comments", w.task),
        format!("/api/tasks/{}/attachments", w.task),
        "/api/projects".to_string(),
        format!("/api/teams/{}", w.team),
        "/api/notifications".to_string(),
    ] {
        all.push(server.get(&path, session).await.ok().clone());
    }
    all
}

/// One area's read and write calls, with `token`.
async fn read(server: &TestServer, w: &World, area: &str, token: &str) -> Reply {
    let path = match area {
        "tasks" => format!("/api/tasks/{}", w.task),
        "comments" => format!("/api/tasks/{}/comments", w.task),
        "attachments" => format!("/api/tasks/{}/attachments", w.task),
        "projects" => format!("/api/projects/{}", w.project),
        "teams" => format!("/api/teams/{}", w.team),
        "notifications" => "/api/notifications".to_string(),
        _ => unreachable!(),
    };
    server.get(&path, Some(token)).await
}

async fn write(server: &TestServer, w: &World, area: &str, token: &str) -> Reply {
    let t = Some(token);
    match area {
        "tasks" => {
            server
                .post(
                    "/api/tasks",
                    t,
                    json!({"title": "by token", "project_id": w.project}),
                )
                .await
        }
        "comments" => {
            server
                .post(
                    &format!("/api/tasks/{}/comments", w.task),
                    t,
                    json!({"body": "by token"}),
                )
                .await
        }
        "attachments" => {
            server
                .upload(&w.task, token, &[("b.txt", b"by token")])
                .await
        }
        "projects" => {
            server
                .post(
                    "/api/projects",
                    t,
                    json!({"team_id": w.team, "name": "by token"}),
                )
                .await
        }
        "teams" => {
            server
                .call(
                    Method::PATCH,
                    &format!("/api/teams/{}", w.team),
                    t,
                    Some(json!({"name": "by token"})),
                )
                .await
        }
        "notifications" => {
            server
                .call(Method::POST, "/api/notifications/read-all", t, None)
                .await
        }
        _ => unreachable!(),
    }
}

fn assert_refused_for_scope(reply: &Reply, scope: &str) {
    let body = reply.problem(403, "forbidden");
    assert!(
        body["detail"].as_str().unwrap().contains(scope),
        "the refusal names {scope}: {body}"
    );
}

#[tokio::test]
async fn each_scope_opens_its_area_and_nothing_else() {
    let server = TestServer::spawn().await;
    let w = world(&server).await;
    for area in AREAS {
        let (reader, _) = token(&server, &w.owner, &[&format!("{area}:read")]).await;
        let (writer, _) = token(&server, &w.owner, &[&format!("{area}:write")]).await;
        let others: Vec<String> = AREAS
            .iter()
            .filter(|a| **a != area)
            .map(|a| format!("{a}:write"))
            .collect();
        let others: Vec<&str> = others.iter().map(String::as_str).collect();
        let (stranger, _) = token(&server, &w.owner, &others).await;

        read(&server, &w, area, &reader).await.ok();
        read(&server, &w, area, &writer).await.ok();
        let refused = read(&server, &w, area, &stranger).await;
        assert_refused_for_scope(&refused, &format!("{area}:read"));

        let before = snapshot(&server, &w).await;
        let refused = write(&server, &w, area, &reader).await;
        assert_refused_for_scope(&refused, &format!("{area}:write"));
        let refused = write(&server, &w, area, &stranger).await;
        assert_refused_for_scope(&refused, &format!("{area}:write"));
        assert_eq!(
            snapshot(&server, &w).await,
            before,
            "a refused {area} write changed nothing"
        );
        let done = write(&server, &w, area, &writer).await;
        assert!(done.status.is_success(), "{area}:write: {}", done.body);
    }
}

#[tokio::test]
async fn a_token_limited_to_a_team_does_not_see_the_others() {
    let server = TestServer::spawn().await;
    let me = server.register().await;
    let (a, b) = (
        server.create_team(&me, "Alpha").await,
        server.create_team(&me, "Beta").await,
    );
    let mut tasks = Vec::new();
    for team in [&a, &b] {
        let project = server
            .post(
                "/api/projects",
                Some(&me.token),
                json!({"team_id": team, "name": "Zebra board"}),
            )
            .await
            .ok()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let task = server
            .post(
                "/api/tasks",
                Some(&me.token),
                json!({"title": "zebra crossing", "project_id": project}),
            )
            .await
            .ok()["id"]
            .as_str()
            .unwrap()
            .to_string();
        tasks.push((project, task));
    }
    let personal = server
        .post(
            "/api/tasks",
            Some(&me.token),
            json!({"title": "zebra at home"}),
        )
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let reply = create_token(
        &server,
        &me,
        json!({"name": "alpha bot", "scopes": ["tasks:write", "projects:read", "teams:read"],
               "expires_at": in_days(30), "team_ids": [a]}),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["access_token"]["team_ids"], json!([a]));
    let limited = reply.body["token"].as_str().unwrap().to_string();
    let t = Some(limited.as_str());

    server
        .get(&format!("/api/tasks/{}", tasks[0].1), t)
        .await
        .ok();
    for hidden in [
        format!("/api/tasks/{}", tasks[1].1),
        format!("/api/tasks/{personal}"),
        format!("/api/projects/{}", tasks[1].0),
        format!("/api/teams/{b}"),
        format!("/api/teams/{b}/members"),
        format!("/api/projects/{}/board", tasks[1].0),
    ] {
        server.get(&hidden, t).await.problem(404, "not_found");
    }
    let ids = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        ids(server.get("/api/tasks?scope=all", t).await.ok()),
        vec![tasks[0].1.clone()]
    );
    assert_eq!(ids(server.get("/api/teams", t).await.ok()), vec![a.clone()]);
    assert_eq!(
        ids(server.get("/api/projects", t).await.ok()),
        vec![tasks[0].0.clone()]
    );
    // Writes into another team are refused as if it did not exist.
    server
        .post(
            "/api/tasks",
            t,
            json!({"title": "sneaky", "project_id": tasks[1].0}),
        )
        .await
        .problem(404, "not_found");
    server
        .call(
            Method::PATCH,
            &format!("/api/tasks/{}", tasks[1].1),
            t,
            Some(json!({"title": "sneaky"})),
        )
        .await
        .problem(404, "not_found");
    // Search: once the index has all three, the session finds them and the token only its own.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let found = server
            .get("/api/tasks/search?q=zebra", Some(&me.token))
            .await;
        if found.status == 200 && found.body["items"].as_array().unwrap().len() == 3 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "indexed: {}",
            found.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let hits: Vec<String> = server.get("/api/tasks/search?q=zebra", t).await.ok()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["task"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(hits, vec![tasks[0].1.clone()]);
}

#[tokio::test]
async fn a_token_may_be_limited_only_to_teams_of_its_owner() {
    let server = TestServer::spawn().await;
    let (me, other) = (server.register().await, server.register().await);
    let theirs = server.create_team(&other, "Theirs").await;
    let reply = create_token(
        &server,
        &me,
        json!({"name": "x", "scopes": ["tasks:read"], "expires_at": in_days(1), "team_ids": [theirs]}),
    )
    .await;
    assert_eq!(reply.invalid_fields(), vec!["team_ids"]);
}

#[tokio::test]
async fn an_expired_token_is_refused_with_its_own_code() {
    let server = TestServer::spawn().await;
    let me = server.register().await;
    let soon = (Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let reply = create_token(
        &server,
        &me,
        json!({"name": "short", "scopes": ["tasks:read"], "expires_at": soon}),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let secret = reply.body["token"].as_str().unwrap().to_string();
    server.get("/api/tasks", Some(&secret)).await.ok();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let refused = loop {
        let reply = server.get("/api/tasks", Some(&secret)).await;
        if reply.status == 401 {
            break reply;
        }
        assert!(tokio::time::Instant::now() < deadline, "never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    refused.problem(401, "access_token_expired");
}

fn ws_url(server: &TestServer, query: &str) -> String {
    format!("{}/api/ws{query}", server.url("").replacen("http", "ws", 1))
}

async fn connect(server: &TestServer, token: &str) -> Socket {
    let (socket, _) = connect_async(ws_url(server, &format!("?token={token}")))
        .await
        .expect("the socket opens");
    socket
}

/// The next JSON message (pings skipped); `None` when the socket closed.
async fn next(socket: &mut Socket) -> Option<Value> {
    loop {
        let frame = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("a message arrives in time")?;
        match frame.expect("a frame") {
            Message::Text(text) => return Some(serde_json::from_str(&text).unwrap()),
            Message::Close(_) => return None,
            _ => {}
        }
    }
}

async fn close_code(socket: &mut Socket) -> u16 {
    loop {
        let frame = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("the socket closes in time");
        match frame {
            Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
            Some(Ok(_)) => {}
            other => panic!("no close frame: {other:?}"),
        }
    }
}

#[tokio::test]
async fn revoking_a_token_refuses_it_at_once_and_closes_its_sockets() {
    let server = TestServer::spawn().await;
    let me = server.register().await;
    let (secret, id) = token(&server, &me, &["tasks:read"]).await;
    server.get("/api/tasks", Some(&secret)).await.ok();
    let mut socket = connect(&server, &secret).await;
    // The first use is recorded off the request path: it shows up shortly after.
    let started = std::time::Instant::now();
    let listed = loop {
        let listed = server.get("/api/auth/tokens", Some(&me.token)).await;
        if listed.ok()["items"][0]["last_used_at"].is_string() {
            break listed;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "last_used_at never set: {}",
            listed.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let item = &listed.ok()["items"][0];
    assert_eq!(item["id"], id.as_str());
    assert_eq!(item["scopes"], json!(["tasks:read"]));
    assert!(item.get("token").is_none() && !listed.body.to_string().contains(&secret));

    let revoked = server
        .call(
            Method::DELETE,
            &format!("/api/auth/tokens/{id}"),
            Some(&me.token),
            None,
        )
        .await;
    assert_eq!(revoked.status, 204, "{}", revoked.body);
    server
        .get("/api/tasks", Some(&secret))
        .await
        .problem(401, "invalid_token");
    assert_eq!(close_code(&mut socket).await, 4001);
    let listed = server.get("/api/auth/tokens", Some(&me.token)).await;
    assert_eq!(listed.ok()["items"], json!([]));
}

#[tokio::test]
async fn the_feed_sends_a_token_only_what_its_scopes_and_teams_allow() {
    let server = TestServer::spawn().await;
    let me = server.register().await;
    let (a, b) = (
        server.create_team(&me, "Alpha").await,
        server.create_team(&me, "Beta").await,
    );
    let mut projects = Vec::new();
    for team in [&a, &b] {
        projects.push(
            server
                .post(
                    "/api/projects",
                    Some(&me.token),
                    json!({"team_id": team, "name": "P"}),
                )
                .await
                .ok()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let reply = create_token(
        &server,
        &me,
        json!({"name": "feed", "scopes": ["tasks:read"], "expires_at": in_days(1), "team_ids": [a]}),
    )
    .await;
    let secret = reply.ok()["token"].as_str().unwrap().to_string();
    let mut socket = connect(&server, &secret).await;
    let in_b = server
        .post(
            "/api/tasks",
            Some(&me.token),
            json!({"title": "beta", "project_id": projects[1]}),
        )
        .await
        .ok()["id"]
        .clone();
    assert!(in_b.is_string());
    server
        .post("/api/tasks", Some(&me.token), json!({"title": "personal"}))
        .await
        .ok();
    server
        .post(
            "/api/projects",
            Some(&me.token),
            json!({"team_id": a, "name": "not for tasks:read"}),
        )
        .await
        .ok();
    let in_a = server
        .post(
            "/api/tasks",
            Some(&me.token),
            json!({"title": "alpha", "project_id": projects[0]}),
        )
        .await
        .ok()["id"]
        .clone();
    let first = next(&mut socket).await.expect("a message");
    assert_eq!(first["entity"], "task", "{first}");
    assert_eq!(first["data"]["id"], in_a, "{first}");
}

#[tokio::test]
async fn a_token_can_never_manage_tokens_or_the_account() {
    let server = TestServer::spawn().await;
    let me = server.register().await;
    let every: Vec<String> = AREAS.iter().map(|a| format!("{a}:write")).collect();
    let every: Vec<&str> = every.iter().map(String::as_str).collect();
    let (secret, id) = token(&server, &me, &every).await;
    let t = Some(secret.as_str());
    let body = json!({"name": "child", "scopes": ["tasks:read"], "expires_at": in_days(1)});
    for reply in [
        server.post("/api/auth/tokens", t, body.clone()).await,
        server.get("/api/auth/tokens", t).await,
        server
            .call(Method::DELETE, &format!("/api/auth/tokens/{id}"), t, None)
            .await,
        server
            .call(
                Method::PUT,
                "/api/auth/profile",
                t,
                Some(json!({"password": "a new password 123", "current_password": PASSWORD})),
            )
            .await,
        server
            .call(
                Method::PUT,
                "/api/auth/profile",
                t,
                Some(json!({"email": "new@example.com", "current_password": PASSWORD})),
            )
            .await,
        server.get("/api/auth/sessions", t).await,
        server
            .call(
                Method::DELETE,
                &format!("/api/auth/sessions/{}", me.session_id),
                t,
                None,
            )
            .await,
        server.get("/api/auth/calendar", t).await,
        server
            .call(Method::POST, "/api/auth/calendar", t, None)
            .await,
        server.call(Method::POST, "/api/auth/logout", t, None).await,
    ] {
        reply.problem(403, "forbidden");
    }
    // Nothing changed: the session still works, the password too, and the token is there.
    server.login_ok(&me.email).await;
    let listed = server.get("/api/auth/tokens", Some(&me.token)).await;
    assert_eq!(listed.ok()["items"].as_array().unwrap().len(), 1);
    server.get("/api/tasks", t).await.ok();
}

#[tokio::test]
async fn only_an_admin_may_create_an_admin_token() {
    let server = TestServer::spawn().await;
    let admin = server.register().await;
    let user = server.register().await;
    let body = json!({"name": "ops", "scopes": ["admin"], "expires_at": in_days(1)});
    create_token(&server, &user, body.clone())
        .await
        .problem(403, "forbidden");
    let reply = create_token(&server, &admin, body).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let with_admin = reply.body["token"].as_str().unwrap().to_string();
    let backup = server
        .client
        .get(server.url("/api/admin/backup"))
        .bearer_auth(&with_admin)
        .send()
        .await
        .unwrap();
    assert_eq!(backup.status(), 200);
    let (without, _) = token(&server, &admin, &["tasks:write"]).await;
    let refused = server.get("/api/admin/backup", Some(&without)).await;
    assert_refused_for_scope(&refused, "admin");
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field() {
    let server = TestServer::spawn().await;
    let me = server.register().await;
    let cases = [
        (json!({"name": "x", "scopes": ["tasks:read"]}), "expires_at"),
        (
            json!({"name": "x", "scopes": ["tasks:read"], "expires_at": in_days(400)}),
            "expires_at",
        ),
        (
            json!({"name": "x", "scopes": ["tasks:read"], "expires_at": (Utc::now() - chrono::Duration::hours(1)).to_rfc3339()}),
            "expires_at",
        ),
        (
            json!({"name": "x", "scopes": ["tasks:delete"], "expires_at": in_days(1)}),
            "scopes",
        ),
        (
            json!({"name": "x", "scopes": [], "expires_at": in_days(1)}),
            "scopes",
        ),
        (
            json!({"name": "", "scopes": ["tasks:read"], "expires_at": in_days(1)}),
            "name",
        ),
    ];
    for (body, field) in cases {
        let reply = create_token(&server, &me, body.clone()).await;
        assert_eq!(reply.invalid_fields(), vec![field], "{body}");
    }
    let listed = server.get("/api/auth/tokens", Some(&me.token)).await;
    assert_eq!(listed.ok()["items"], json!([]));
}

#[tokio::test]
async fn nobody_revokes_someone_elses_token() {
    let server = TestServer::spawn().await;
    let (me, stranger) = (server.register().await, server.register().await);
    let (secret, id) = token(&server, &me, &["tasks:read"]).await;
    server
        .call(
            Method::DELETE,
            &format!("/api/auth/tokens/{id}"),
            Some(&stranger.token),
            None,
        )
        .await
        .problem(404, "not_found");
    server.get("/api/tasks", Some(&secret)).await.ok();
    server
        .get("/api/tasks", Some("tkr_pat_not-a-token"))
        .await
        .problem(401, "invalid_token");
}

/// Webhooks are the teams area (looking needs `teams:read`; changing, sending and the secret,
/// which signs, `teams:write`); notification preferences are the notifications area.
#[tokio::test]
async fn webhooks_and_preferences_need_their_scopes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = crate::common::test_config(tmp.path());
    config.webhook_allowed_hosts = tasker::net::egress::AllowedHosts::parse("loopback").unwrap();
    let server = TestServer::spawn_with(config).await;
    let owner = server.register().await;
    let team = server.create_team(&owner, "Hooks").await;
    let (read, _) = token(&server, &owner, &["teams:read"]).await;
    let (write, _) = token(&server, &owner, &["teams:write"]).await;
    let hooks = format!("/api/teams/{team}/webhooks");
    let hook = json!({"url": "http://127.0.0.1:9/hook", "events": ["task.*"]});
    server
        .post(&hooks, Some(&read), hook.clone())
        .await
        .problem(403, "forbidden");
    let made = server.post(&hooks, Some(&write), hook).await;
    assert_eq!(made.status, 201, "{}", made.body);
    let id = made.body["id"].as_str().unwrap();
    let listed = server.get(&hooks, Some(&read)).await;
    assert_eq!(listed.ok()["items"].as_array().unwrap().len(), 1);
    server
        .get(&format!("{hooks}/{id}/deliveries"), Some(&read))
        .await
        .ok();
    let secret = format!("{hooks}/{id}/secret");
    server
        .get(&secret, Some(&read))
        .await
        .problem(403, "forbidden");
    server.get(&secret, Some(&write)).await.ok();
    let ping = format!("{hooks}/{id}/ping");
    server
        .call(Method::POST, &ping, Some(&read), None)
        .await
        .problem(403, "forbidden");

    let prefs = "/api/users/me/preferences";
    let (tasks, _) = token(&server, &owner, &["tasks:write"]).await;
    let (look, _) = token(&server, &owner, &["notifications:read"]).await;
    let (change, _) = token(&server, &owner, &["notifications:write"]).await;
    server
        .get(prefs, Some(&tasks))
        .await
        .problem(403, "forbidden");
    server.get(prefs, Some(&look)).await.ok();
    let paris = json!({"time_zone": "Europe/Paris"});
    server
        .call(Method::PUT, prefs, Some(&look), Some(paris.clone()))
        .await
        .problem(403, "forbidden");
    assert_eq!(
        server.get(prefs, Some(&look)).await.ok()["time_zone"],
        "UTC"
    );
    let saved = server
        .call(Method::PUT, prefs, Some(&change), Some(paris))
        .await;
    assert_eq!(saved.ok()["time_zone"], "Europe/Paris");
}
