//! A body that does not fit its operation names the fields at fault (422 `validation_failed`,
//! `errors[].field` the JSON path), writes nothing, and a head hyper cannot parse is answered
//! with problem+json too.

use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{PASSWORD, Reply, TestServer};

/// The fields a 422 names, sorted, after checking that no message leaks parser internals.
fn fields(reply: &Reply) -> Vec<String> {
    let mut fields = reply.invalid_fields();
    for error in reply.body["errors"].as_array().unwrap() {
        let message = error["message"].as_str().unwrap();
        assert!(!message.is_empty());
        for internal in ["parse", "Text", "Request", "occurred", "serde"] {
            assert!(!message.contains(internal), "{message:?}");
        }
    }
    fields.sort();
    fields
}

/// The message the problem gives for `field`.
fn message<'a>(reply: &'a Reply, field: &str) -> &'a str {
    reply.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["field"] == field)
        .and_then(|e| e["message"].as_str())
        .unwrap_or_else(|| panic!("no error for {field}: {}", reply.body))
}

/// Sends each `(body, fields)` case and checks the fields named; then an invalid JSON text.
async fn expect_fields(
    server: &TestServer,
    method: Method,
    path: &str,
    token: Option<&str>,
    cases: &[(Value, &[&str])],
) {
    for (body, expected) in cases {
        let reply = server
            .call(method.clone(), path, token, Some(body.clone()))
            .await;
        assert_eq!(fields(&reply), *expected, "{method} {path} {body}");
    }
    let reply = server
        .raw(method.clone(), path, token, "application/json", "{\"x\": ")
        .await;
    let detail = reply.problem(400, "invalid_body")["detail"]
        .as_str()
        .unwrap();
    assert!(detail.contains("not valid JSON"), "{detail}");
}

#[tokio::test]
async fn register_names_missing_null_mistyped_and_unknown_fields() {
    let server = TestServer::spawn().await;
    let email = "new@example.com";
    let cases: &[(Value, &[&str])] = &[
        (json!({"email": email, "name": "N"}), &["password"]),
        (
            json!({"email": email, "name": "N", "password": null}),
            &["password"],
        ),
        (
            json!({"email": 42, "name": "N", "password": PASSWORD}),
            &["email"],
        ),
        (
            json!({"email": email, "name": ["N"], "password": PASSWORD}),
            &["name"],
        ),
        (
            json!({"email": email, "name": "N", "password": PASSWORD, "nickname": "n"}),
            &["nickname"],
        ),
        (
            json!({"email": email, "name": "N", "password": PASSWORD, "Password": PASSWORD}),
            &["Password"],
        ),
        (json!({}), &["email", "name", "password"]),
    ];
    expect_fields(&server, Method::POST, "/api/auth/register", None, cases).await;
    let reply = server
        .post(
            "/api/auth/register",
            None,
            json!({"email": email, "name": "N"}),
        )
        .await;
    assert_eq!(message(&reply, "password"), "is required");
    assert_eq!(reply.body["detail"], "the body's `password` is required");
    let reply = server
        .post(
            "/api/auth/register",
            None,
            json!({"email": email, "name": "N", "password": null}),
        )
        .await;
    assert_eq!(message(&reply, "password"), "must not be null");
    let reply = server
        .post(
            "/api/auth/register",
            None,
            json!({"email": email, "name": "N", "password": PASSWORD, "nickname": "n"}),
        )
        .await;
    assert_eq!(message(&reply, "nickname"), "is not a field of this object");
    // Nothing was written: not even the one with only an extra field.
    server
        .login(email, PASSWORD)
        .await
        .problem(401, "invalid_credentials");
    // An optional field may be null.
    server
        .post(
            "/api/auth/register",
            None,
            json!({"email": email, "name": "N", "password": PASSWORD, "invitation_token": null}),
        )
        .await
        .ok();
}

#[tokio::test]
async fn create_task_names_nested_fields() {
    let server = TestServer::spawn().await;
    let me = server.register().await;
    let token = Some(me.token.as_str());
    let cases: &[(Value, &[&str])] = &[
        (json!({}), &["title"]),
        (json!({"title": null}), &["title"]),
        (json!({"title": 5}), &["title"]),
        (json!({"title": "t", "labels": [1]}), &["labels[0]"]),
        (
            json!({"title": "t", "labels": ["a", "b", 1]}),
            &["labels[2]"],
        ),
        (json!({"title": "t", "labels": ["a", null]}), &["labels[1]"]),
        (json!({"title": "t", "labels": "a"}), &["labels"]),
        (
            json!({"title": "t", "assignee_ids": ["nope"]}),
            &["assignee_ids[0]"],
        ),
        (json!({"title": "t", "status": "doing"}), &["status"]),
        (json!({"title": "t", "due_date": "tomorrow"}), &["due_date"]),
        (json!({"titel": "t"}), &["titel", "title"]),
        (
            json!({"title": 1, "priority": 2, "labels": [true], "extra": {}}),
            &["extra", "labels[0]", "priority", "title"],
        ),
    ];
    expect_fields(&server, Method::POST, "/api/tasks", token, cases).await;
    let reply = server
        .post(
            "/api/tasks",
            token,
            json!({"title": "t", "status": "doing"}),
        )
        .await;
    let status = message(&reply, "status");
    assert!(status.starts_with("must be one of: ") && status.contains("in_progress"));
    let reply = server
        .post("/api/tasks", token, json!({"title": "t", "labels": [1]}))
        .await;
    assert_eq!(message(&reply, "labels[0]"), "must be a string");
    // Null where the field is optional reads as absent.
    server
        .post(
            "/api/tasks",
            token,
            json!({"title": "kept", "labels": null}),
        )
        .await
        .ok();
    let listed = server.get("/api/tasks?scope=created", token).await;
    let titles: Vec<&Value> = listed.ok()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["title"])
        .collect();
    assert_eq!(titles, [&json!("kept")]);
}

#[tokio::test]
async fn update_task_refuses_bad_fields_and_changes_nothing() {
    let server = TestServer::spawn().await;
    let me = server.register().await;
    let token = Some(me.token.as_str());
    let task = server
        .post("/api/tasks", token, json!({"title": "before"}))
        .await
        .ok()
        .clone();
    let path = format!("/api/tasks/{}", task["id"].as_str().unwrap());
    let cases: &[(Value, &[&str])] = &[
        (json!({"title": 5}), &["title"]),
        (json!({"labels": [1]}), &["labels[0]"]),
        (json!({"priority": "critical"}), &["priority"]),
        (json!({"title": "after", "colour": "red"}), &["colour"]),
        (json!({"project_id": 7}), &["project_id"]),
    ];
    expect_fields(&server, Method::PATCH, &path, token, cases).await;
    expect_fields(&server, Method::PUT, &path, token, cases).await;
    let now = server.get(&path, token).await;
    assert_eq!(now.ok()["title"], "before");
    assert_eq!(now.ok()["version"], task["version"]);
}

#[tokio::test]
async fn create_team_and_member_role_name_their_fields() {
    let server = TestServer::spawn().await;
    let owner = server.register().await;
    let token = Some(owner.token.as_str());
    let cases: &[(Value, &[&str])] = &[
        (json!({}), &["name"]),
        (json!({"name": null}), &["name"]),
        (json!({"name": 5}), &["name"]),
        (json!({"name": ["Ops"]}), &["name"]),
        (json!({"name": "Ops", "desc": "typo"}), &["desc"]),
        (json!({"name": "Ops", "description": 3}), &["description"]),
    ];
    expect_fields(&server, Method::POST, "/api/teams", token, cases).await;
    let teams = server.get("/api/teams", token).await;
    assert_eq!(teams.ok()["items"], json!([]));

    let team = server.create_team(&owner, "Ops").await;
    let member = server.register().await;
    server.add_member(&team, &owner, &member, "member").await;
    let path = format!("/api/teams/{team}/members/{}", member.user_id);
    let cases: &[(Value, &[&str])] = &[
        (json!({}), &["role"]),
        (json!({"role": null}), &["role"]),
        (json!({"role": "boss"}), &["role"]),
        (json!({"role": "admin", "until": "never"}), &["until"]),
    ];
    expect_fields(&server, Method::PATCH, &path, token, cases).await;
    let members = server
        .get(&format!("/api/teams/{team}/members"), token)
        .await;
    let roles: Vec<&Value> = members.ok()["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["user"]["id"] == member.user_id.as_str())
        .map(|m| &m["role"])
        .collect();
    assert_eq!(roles, [&json!("member")]);
}

#[tokio::test]
async fn comments_name_their_fields_and_none_is_written() {
    let server = TestServer::spawn().await;
    let me = server.register().await;
    let token = Some(me.token.as_str());
    let task = server
        .post("/api/tasks", token, json!({"title": "t"}))
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/tasks/{task}/comments");
    let cases: &[(Value, &[&str])] = &[
        (json!({}), &["body"]),
        (json!({"body": null}), &["body"]),
        (json!({"body": 4}), &["body"]),
        (json!({"body": {"text": "hi"}}), &["body"]),
        (json!({"body": "hi", "text": "hi"}), &["text"]),
    ];
    expect_fields(&server, Method::POST, &path, token, cases).await;
    let comments = server.get(&path, token).await;
    assert_eq!(comments.ok()["items"], json!([]));
}

#[tokio::test]
async fn every_json_body_refuses_an_unknown_field() {
    let server = TestServer::spawn().await;
    let account = server.register().await;
    let operations = crate::common::operations(&server).await;
    let mut checked = 0;
    for op in operations.iter().filter(|op| op.json_body) {
        let token = op.secured.then_some(account.token.as_str());
        let reply = server
            .call(
                op.method.clone(),
                &op.path,
                token,
                Some(json!({"surely_not_a_field": 1})),
            )
            .await;
        let named = fields(&reply);
        assert!(
            named.contains(&"surely_not_a_field".to_string()),
            "{} {}: {}",
            op.method,
            op.path,
            reply.body
        );
        checked += 1;
    }
    assert!(checked >= 17, "the spec lists the JSON bodies");
}

async fn connect(server: &TestServer) -> TcpStream {
    TcpStream::connect(server.base.trim_start_matches("http://"))
        .await
        .expect("connects")
}

/// Everything the server sends until it closes the connection, split into head and body.
async fn answer_then_close(stream: &mut TcpStream) -> (String, Value) {
    let mut got = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server closes the connection");
    let text = String::from_utf8(got).expect("UTF-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("a whole head");
    (
        head.to_ascii_lowercase(),
        serde_json::from_str(body).expect("a JSON body"),
    )
}

fn assert_problem(head: &str, body: &Value, status: u16, code: &str) {
    assert!(head.starts_with(&format!("http/1.1 {status} ")), "{head}");
    assert!(
        head.contains("\r\ncontent-type: application/problem+json\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
    assert_eq!(body["status"], status);
    assert_eq!(body["code"], code);
    assert!(body["detail"].is_string() && body["errors"] == json!([]));
}

#[tokio::test]
async fn header_errors_are_problems() {
    let server = TestServer::spawn().await;

    // Too many headers for hyper (more than 100).
    let mut stream = connect(&server).await;
    let mut head = String::from("GET /api/health HTTP/1.1\r\nHost: tasker\r\n");
    for i in 0..150 {
        head.push_str(&format!("X-Header-{i}: {i}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let (head, body) = answer_then_close(&mut stream).await;
    assert_problem(&head, &body, 431, "headers_too_large");

    // A control byte in a header value.
    let mut stream = connect(&server).await;
    stream
        .write_all(b"GET /api/health HTTP/1.1\r\nHost: tasker\r\nX-Bad: a\x01b\r\n\r\n")
        .await
        .unwrap();
    let (head, body) = answer_then_close(&mut stream).await;
    assert_problem(&head, &body, 400, "bad_request");

    // A bad header after a good request on the same kept-alive connection.
    let mut stream = connect(&server).await;
    stream
        .write_all(b"GET /api/health HTTP/1.1\r\nHost: tasker\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let whole = |got: &[u8]| {
        let text = String::from_utf8_lossy(got).to_ascii_lowercase();
        text.split_once("\r\n\r\n").is_some_and(|(head, body)| {
            head.lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .is_some_and(|n| n.trim().parse::<usize>().unwrap() == body.len())
        })
    };
    while !whole(&got) {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed early");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got.starts_with(b"HTTP/1.1 200 "));
    stream
        .write_all(b"GET /api/health HTTP/1.1\r\nHost: tasker\r\nBad Name: x\r\n\r\n")
        .await
        .unwrap();
    let (head, body) = answer_then_close(&mut stream).await;
    assert_problem(&head, &body, 400, "bad_request");

    // The server keeps serving.
    server.get("/api/health", None).await.ok();
}
