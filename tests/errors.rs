//! Every error a client can provoke is a problem+json with a stable code, never a 500.

use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{PASSWORD, TestServer};

const REGISTER: &str = "/api/auth/register";

#[tokio::test]
async fn malformed_json_is_invalid_body() {
    let server = TestServer::spawn().await;
    for body in [
        "{",
        "{\"email\": }",
        "not json",
        "[]",
        "null",
        "{\"email\": \"a@b.c\", \"name\": \"N\", \"password\": \"x\u{0}",
    ] {
        let reply = server
            .raw(Method::POST, REGISTER, None, "application/json", body)
            .await;
        reply.problem(400, "invalid_body");
    }
}

#[tokio::test]
async fn wrong_types_and_missing_fields_are_named() {
    let server = TestServer::spawn().await;
    let cases = [
        (
            json!({"email": 42, "name": "N", "password": PASSWORD}),
            vec!["email"],
        ),
        (
            json!({"email": "a@example.com", "name": ["N"], "password": PASSWORD}),
            vec!["name"],
        ),
        (
            json!({"email": "a@example.com", "name": "N", "password": null}),
            vec!["password"],
        ),
        (
            json!({"email": "a@example.com", "name": "N"}),
            vec!["password"],
        ),
        (json!({}), vec!["email", "name", "password"]),
    ];
    for (body, fields) in cases {
        let mut named = server.post(REGISTER, None, body).await.invalid_fields();
        named.sort();
        assert_eq!(named, fields);
    }
    let account = server.register().await;
    let reply = server
        .call(
            Method::PATCH,
            "/api/users/me",
            Some(&account.token),
            Some(json!({"name": 7})),
        )
        .await;
    assert_eq!(reply.invalid_fields(), ["name"]);
    server
        .call(
            Method::PATCH,
            "/api/users/me",
            Some(&account.token),
            Some(json!("just a string")),
        )
        .await
        .problem(400, "invalid_body");
}

#[tokio::test]
async fn a_body_that_is_not_json_is_unsupported() {
    let server = TestServer::spawn().await;
    server
        .raw(Method::POST, REGISTER, None, "text/plain", "hello")
        .await
        .problem(415, "unsupported_media_type");
    let no_type = server
        .client
        .post(server.url(REGISTER))
        .body("{}")
        .send()
        .await
        .unwrap();
    TestServer::reply(no_type)
        .await
        .problem(415, "unsupported_media_type");
}

#[tokio::test]
async fn oversize_bodies_are_refused_and_nothing_is_written() {
    let server = TestServer::spawn().await;
    let huge_name = "x".repeat(1024 * 1024 + 1);
    let body = json!({"email": "big@example.com", "name": huge_name, "password": PASSWORD});
    server
        .post(REGISTER, None, body)
        .await
        .problem(413, "payload_too_large");
    server
        .login("big@example.com", PASSWORD)
        .await
        .problem(401, "invalid_credentials");
}

#[tokio::test]
async fn oversize_chunked_bodies_are_refused_while_streaming() {
    let server = TestServer::spawn().await;
    let address = server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST {REGISTER} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 64 * 1024];
    // Two MiB in 64 KiB chunks; the server may answer and close before we finish.
    for _ in 0..32 {
        let frame = [
            format!("{:x}\r\n", chunk.len()).into_bytes(),
            chunk.clone(),
            b"\r\n".to_vec(),
        ]
        .concat();
        if stream.write_all(&frame).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response);
    assert!(
        text.starts_with("HTTP/1.1 413"),
        "got: {}",
        text.lines().next().unwrap_or("")
    );
    assert!(
        text.to_ascii_lowercase()
            .contains("content-type: application/problem+json")
    );
    assert!(text.contains("\"payload_too_large\""));
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let server = TestServer::spawn().await;
    server
        .get("/api/nope", None)
        .await
        .problem(404, "not_found");
    // Outside /api, the web app answers with its own 404 page.
    let page = server.client.get(server.url("/nope")).send().await.unwrap();
    assert_eq!(page.status(), 404);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    server
        .call(Method::DELETE, "/api/health", None, None)
        .await
        .problem(405, "method_not_allowed");
    server
        .call(Method::GET, "/api/auth/login", None, None)
        .await
        .problem(405, "method_not_allowed");
}

#[tokio::test]
async fn validation_problems_name_fields_and_messages() {
    let server = TestServer::spawn().await;
    let reply = server
        .post(
            REGISTER,
            None,
            json!({"email": "x@example.com", "name": "N", "password": "short"}),
        )
        .await;
    let body = reply.problem(422, "validation_failed");
    assert_eq!(body["errors"][0]["field"], "password");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("at least 8")
    );
}

#[tokio::test]
async fn error_bodies_never_leak_internals() {
    let server = TestServer::spawn().await;
    let replies = [
        server
            .raw(Method::POST, REGISTER, None, "application/json", "{")
            .await,
        server.get("/api/auth/profile", Some("x.y.z")).await,
        server.get("/api/nope", None).await,
    ];
    for reply in replies {
        let text = reply.body.to_string().to_lowercase();
        for leak in ["panicked", "backtrace", "src/", ".rs:", "redb", "stack"] {
            assert!(!text.contains(leak), "{leak:?} in {text}");
        }
    }
}

#[tokio::test]
async fn every_body_endpoint_rejects_malformed_json() {
    let server = TestServer::spawn().await;
    let account = server.register().await;
    let operations = crate::common::operations(&server).await;
    let endpoints: Vec<_> = operations
        .iter()
        .filter(|op| op.json_body)
        .map(|op| {
            let token = op.secured.then_some(account.token.as_str());
            (op.method.clone(), op.path.as_str(), token)
        })
        .collect();
    assert!(endpoints.len() >= 17, "the spec lists the JSON bodies");
    for (method, path, token) in endpoints {
        // Not JSON, not an object, and an object whose fields all have the wrong type or
        // are unknown to the operation: each is named, nothing passes as valid data.
        let wrong_types = r#"{"email": 5, "name": 1, "password": false, "refresh_token": 2, "title": 3, "body": 4, "status": 5, "role": 6, "team_id": 7}"#;
        let reply = server
            .raw(method.clone(), path, token, "application/json", wrong_types)
            .await;
        assert!(
            !reply.invalid_fields().is_empty(),
            "{method} {path} with wrong types: {} {}",
            reply.status,
            reply.body
        );
        for body in ["{", "[1, 2]", "\"text\""] {
            let reply = server
                .raw(method.clone(), path, token, "application/json", body)
                .await;
            assert_eq!(
                reply.status, 400,
                "{method} {path} with {body}: {}",
                reply.body
            );
            reply.problem(400, "invalid_body");
        }
        server
            .raw(method.clone(), path, token, "text/plain", "hi")
            .await
            .problem(415, "unsupported_media_type");
    }
}

/// The four headers every HTML response carries.
fn assert_html_headers(what: &str, headers: &reqwest::header::HeaderMap) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let csp = header("content-security-policy");
    assert!(
        csp.contains("frame-ancestors 'none'"),
        "{what}: CSP {csp:?}"
    );
    assert!(csp.contains("default-src"), "{what}: CSP {csp:?}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{what}: CSP {csp:?}"
    );
    assert_eq!(header("x-frame-options"), "DENY", "{what}");
    assert_eq!(header("referrer-policy"), "no-referrer", "{what}");
    assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
}

/// Issue 14: `/docs` carried no security headers at all (it could be framed), and the web
/// app's pages sent `Referrer-Policy: same-origin`. Every kind of HTML response: the home
/// page (a redirect when signed out), a page, a web 404 and a web 403 error page, and Swagger
/// UI, whose inline script and style are allowed by their hashes only.
#[tokio::test]
async fn every_html_response_carries_the_security_headers() {
    let server = TestServer::spawn().await;
    server.register().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in ["/", "/signin", "/no-such-page", "/tasks/not-a-task"] {
        let response = client.get(server.url(path)).send().await.unwrap();
        assert_html_headers(path, response.headers());
    }
    let refused = client
        .post(server.url("/signin"))
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "email=a%40example.com&password={}",
            PASSWORD.replace(' ', "+")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert_html_headers("a refused cross-site form", refused.headers());

    let docs = client.get(server.url("/docs")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert_html_headers("/docs", docs.headers());
    let csp = docs.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    let html = docs.text().await.unwrap();
    // Each inline element of the page is allowed by its hash, and nothing else inline. The
    // scripts are cut out first: the bundle's text mentions `<style`.
    let (scripts, outside) = inline_hashes(&html, "script");
    let (styles, _) = inline_hashes(&outside, "style");
    for (directive, hashes) in [("script-src", scripts), ("style-src", styles)] {
        let sources = csp
            .split(';')
            .map(str::trim)
            .find_map(|d| d.strip_prefix(directive))
            .unwrap_or_else(|| panic!("{directive} in {csp}"));
        assert!(!hashes.is_empty());
        let allowed: Vec<&str> = sources.split_whitespace().collect();
        assert_eq!(allowed, hashes, "{directive}");
    }
}

/// The CSP hashes of the `<tag>` elements of `html`, and the page without their contents.
fn inline_hashes(html: &str, tag: &str) -> (Vec<String>, String) {
    use base64::Engine;
    use sha2::Digest;
    let (open, close) = (format!("<{tag}"), format!("</{tag}>"));
    let (mut hashes, mut outside) = (Vec::new(), String::new());
    let mut rest = html;
    while let Some(at) = rest.find(&open) {
        let after = &rest[at..];
        let body_start = after.find('>').unwrap() + 1;
        let body = &after[body_start..];
        let end = body.find(&close).unwrap();
        let digest = sha2::Sha256::digest(&body.as_bytes()[..end]);
        hashes.push(format!(
            "'sha256-{}'",
            base64::engine::general_purpose::STANDARD.encode(digest)
        ));
        outside.push_str(&rest[..at + body_start]);
        rest = &body[end..];
    }
    outside.push_str(rest);
    (hashes, outside)
}

/// Issue 14: bidirectional controls (U+202E and friends) were accepted in names and titles, so
/// a title could display as something it is not. Each kind of name and title is refused with
/// 422 naming its field; the same text without the control is accepted.
#[tokio::test]
async fn bidirectional_controls_are_refused_in_names_and_titles() {
    let server = TestServer::spawn().await;
    let me = server.register().await;
    let hostile = "invoice\u{202E}fdp.exe";
    let register = server
        .post(
            REGISTER,
            None,
            json!({"email": "rlo@example.com", "name": hostile, "password": PASSWORD}),
        )
        .await;
    assert_eq!(register.invalid_fields(), ["name"]);
    let profile = server
        .call(
            Method::PATCH,
            "/api/users/me",
            Some(&me.token),
            Some(json!({"name": "a\u{2066}b\u{2069}"})),
        )
        .await;
    assert_eq!(profile.invalid_fields(), ["name"]);
    let team = server
        .post("/api/teams", Some(&me.token), json!({"name": hostile}))
        .await;
    assert_eq!(team.invalid_fields(), ["name"]);
    let team = server.create_team(&me, "Plain").await;
    let project = server
        .post(
            "/api/projects",
            Some(&me.token),
            json!({"team_id": team, "name": hostile}),
        )
        .await;
    assert_eq!(project.invalid_fields(), ["name"]);
    let task = server
        .post("/api/tasks", Some(&me.token), json!({"title": hostile}))
        .await;
    assert_eq!(task.invalid_fields(), ["title"]);
    assert!(
        task.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("bidirectional"),
        "{}",
        task.body
    );
    let labelled = server
        .post(
            "/api/tasks",
            Some(&me.token),
            json!({"title": "fine", "labels": ["ok", "b\u{202E}ug"]}),
        )
        .await;
    assert_eq!(labelled.invalid_fields(), ["labels"]);
    let created = server
        .post(
            "/api/tasks",
            Some(&me.token),
            json!({"title": "invoicefdp.exe"}),
        )
        .await;
    let id = created.ok()["id"].as_str().unwrap().to_string();
    let renamed = server
        .call(
            Method::PATCH,
            &format!("/api/tasks/{id}"),
            Some(&me.token),
            Some(json!({"title": hostile})),
        )
        .await;
    assert_eq!(renamed.invalid_fields(), ["title"]);
}

/// Issue 14: zero-width characters survived in attachment file names, so two files could
/// look alike or hide what follows an extension. They are stripped (bidi controls already
/// were).
#[tokio::test]
async fn zero_width_characters_are_stripped_from_file_names() {
    let server = TestServer::spawn().await;
    let me = server.register().await;
    let task = server
        .post("/api/tasks", Some(&me.token), json!({"title": "files"}))
        .await;
    let task = task.ok()["id"].as_str().unwrap().to_string();
    let reply = server
        .upload(
            &task,
            &me.token,
            &[
                ("pay\u{200B}roll\u{FEFF}.pdf", b"one".as_slice()),
                ("\u{2060}notes\u{200D}.txt\u{200C}", b"two".as_slice()),
            ],
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let names: Vec<&str> = reply.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["filename"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["payroll.pdf", "notes.txt"]);
}
