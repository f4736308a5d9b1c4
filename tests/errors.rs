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
async fn wrong_types_and_missing_fields_are_invalid_body() {
    let server = TestServer::spawn().await;
    let cases = [
        json!({"email": 42, "name": "N", "password": PASSWORD}),
        json!({"email": "a@example.com", "name": ["N"], "password": PASSWORD}),
        json!({"email": "a@example.com", "name": "N", "password": null}),
        json!({"email": "a@example.com", "name": "N"}),
        json!({}),
    ];
    for body in cases {
        server
            .post(REGISTER, None, body)
            .await
            .problem(400, "invalid_body");
    }
    let account = server.register().await;
    server
        .call(
            Method::PATCH,
            "/api/users/me",
            Some(&account.token),
            Some(json!({"name": 7})),
        )
        .await
        .problem(400, "invalid_body");
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
        // Not JSON, not an object, and an object whose fields all have the wrong type (a
        // type the body does not have is ignored, so that one must only never pass as valid
        // data of the wrong type: 400, or the 404 of the random id when no field is required).
        let wrong_types = r#"{"email": 5, "name": 1, "password": false, "refresh_token": 2, "title": 3, "body": 4, "status": 5, "role": 6, "team_id": 7}"#;
        let reply = server
            .raw(method.clone(), path, token, "application/json", wrong_types)
            .await;
        assert!(
            matches!(reply.status.as_u16(), 400 | 404),
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
