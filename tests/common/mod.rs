//! `TestServer`: a real tasker on 127.0.0.1:0 with a temporary data directory, plus typed
//! helpers for the calls most tests need.

#![allow(dead_code)]

pub mod smtp;
pub mod web;

use std::path::{Path, PathBuf};

use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::{Value, json};
use tasker::Config;
use tokio::sync::oneshot;

/// The JWT secret test servers use, so tests can forge tokens with it.
pub const TEST_SECRET: &str = "test-secret-test-secret-test-secret-0123";
pub const PASSWORD: &str = "correct horse battery";

pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), tasker::ServeError>>>,
}

/// A response reduced to what tests look at.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    /// Asserts a problem+json error with this status and code, and returns its body.
    pub fn problem(&self, status: u16, code: &str) -> &Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.body
        );
        let content_type = self
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(
            content_type.starts_with("application/problem+json"),
            "content type {content_type:?}"
        );
        assert_eq!(
            self.body["code"], code,
            "unexpected code; body: {}",
            self.body
        );
        assert_eq!(self.body["status"], status);
        assert!(self.body["title"].is_string() && self.body["detail"].is_string());
        assert!(self.body["errors"].is_array());
        &self.body
    }

    /// The fields named in a validation problem.
    pub fn invalid_fields(&self) -> Vec<String> {
        self.problem(422, "validation_failed");
        self.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap().to_string())
            .collect()
    }

    pub fn ok(&self) -> &Value {
        assert!(
            self.status.is_success(),
            "expected success, got {}: {}",
            self.status,
            self.body
        );
        &self.body
    }
}

/// A signed-in account.
#[derive(Debug, Clone)]
pub struct Account {
    pub email: String,
    pub token: String,
    pub refresh_token: String,
    pub user_id: String,
    pub session_id: String,
}

impl Account {
    fn from_auth(email: &str, body: &Value) -> Self {
        Self {
            email: email.to_string(),
            token: body["token"].as_str().expect("token").to_string(),
            refresh_token: body["refresh_token"]
                .as_str()
                .expect("refresh_token")
                .to_string(),
            user_id: body["user"]["id"].as_str().expect("user.id").to_string(),
            session_id: body["session_id"].as_str().expect("session_id").to_string(),
        }
    }
}

pub fn test_config(data_dir: &Path) -> Config {
    // reqwest uses rustls without a default provider: the server's (ring) serves tests too.
    tasker::net::egress::install_crypto_provider();
    let mut config = Config::new(data_dir);
    config.bcrypt_cost = 4;
    config.jwt_secret = Some(TEST_SECRET.to_string());
    // Tests register hundreds of accounts from 127.0.0.1; `limits` turns them on itself.
    config.rate_limits = None;
    // Tests drive the server and read their WebSockets only afterwards (`realtime`'s slow
    // consumer for the length of 600 requests): the write timeout is tested in `net`.
    config.ws_write_timeout = std::time::Duration::from_secs(120);
    config
}

impl TestServer {
    pub async fn spawn() -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let config = test_config(tmp.path());
        let mut server = Self::spawn_with(config).await;
        server._tmp = Some(tmp);
        server
    }

    /// Starts a server with a given configuration (its data dir is the caller's to clean).
    pub async fn spawn_with(config: Config) -> Self {
        tasker::net::egress::install_crypto_provider();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let data_dir = config.data_dir.clone();
        // The listener is bound, so requests queue in its backlog until `serve` accepts them.
        let task = tokio::spawn(tasker::serve(config, listener, async {
            let _ = rx.await;
        }));
        Self {
            base: format!("http://{address}"),
            client: reqwest::Client::new(),
            data_dir,
            _tmp: None,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// Stops the server and waits until it has released the data directory.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server stops cleanly");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request; `body` is sent as JSON when given.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        Self::reply(request.send().await.expect("request sent")).await
    }

    /// Sends a raw body with a content type.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Reply {
        let mut request = self
            .client
            .request(method, self.url(path))
            .header("content-type", content_type)
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Self::reply(request.send().await.expect("request sent")).await
    }

    pub async fn reply(response: reqwest::Response) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub async fn register_as(&self, email: &str, name: &str) -> Account {
        let reply = self
            .post(
                "/api/auth/register",
                None,
                json!({"email": email, "name": name, "password": PASSWORD}),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "register failed: {}",
            reply.body
        );
        Account::from_auth(email, &reply.body)
    }

    /// Registers a fresh account with a unique email.
    pub async fn register(&self) -> Account {
        let email = format!("user-{}@example.com", uuid::Uuid::now_v7().simple());
        self.register_as(&email, "Test User").await
    }

    /// Creates a team owned by `owner` and returns its id.
    pub async fn create_team(&self, owner: &Account, name: &str) -> String {
        let reply = self
            .post("/api/teams", Some(&owner.token), json!({"name": name}))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "create team: {}",
            reply.body
        );
        reply.body["id"].as_str().unwrap().to_string()
    }

    /// Invites `email` to `team` with `role` as `by`; the answer (201) with the invitation's
    /// `id`, its one-time accept `token` and `accept_url`.
    pub async fn invite(&self, team: &str, by: &Account, email: &str, role: &str) -> Value {
        let invite = self
            .post(
                "/api/teams/invite",
                Some(&by.token),
                json!({"team_id": team, "email": email, "role": role}),
            )
            .await;
        assert_eq!(
            invite.status,
            StatusCode::CREATED,
            "invite: {}",
            invite.body
        );
        invite.body
    }

    /// Presents an invitation's accept token as `who`: `POST /api/invitations/{action}`
    /// (`claim`, `accept` or `decline`) with `{token}`.
    pub async fn with_token(&self, action: &str, who: &Account, token: &str) -> Reply {
        self.post(
            &format!("/api/invitations/{action}"),
            Some(&who.token),
            json!({ "token": token }),
        )
        .await
    }

    /// Invites `member` to `team` with `role` (as `by`) and accepts as `member` with the
    /// invitation's token (what the inviter passes on).
    pub async fn add_member(&self, team: &str, by: &Account, member: &Account, role: &str) {
        let invite = self.invite(team, by, &member.email, role).await;
        let token = invite["token"].as_str().unwrap();
        self.with_token("accept", member, token).await.ok();
    }

    /// Asserts that a session is over: its access token and its refresh token are refused.
    pub async fn assert_signed_out(&self, account: &Account) {
        self.get("/api/auth/profile", Some(&account.token))
            .await
            .problem(401, "session_revoked");
        self.post(
            "/api/auth/refresh",
            None,
            json!({"refresh_token": account.refresh_token}),
        )
        .await
        .problem(401, "invalid_refresh_token");
    }

    pub async fn login(&self, email: &str, password: &str) -> Reply {
        self.post(
            "/api/auth/login",
            None,
            json!({"email": email, "password": password}),
        )
        .await
    }

    pub async fn login_ok(&self, email: &str) -> Account {
        let reply = self.login(email, PASSWORD).await;
        assert_eq!(reply.status, StatusCode::OK, "login failed: {}", reply.body);
        Account::from_auth(email, &reply.body)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A `multipart/form-data` body of `(field, file name, bytes)` parts: its content type and
/// bytes. Built by hand so tests can send names no client library would.
pub fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "tasker-test-boundary-7d1f9a";
    let mut body = Vec::new();
    for (field, filename, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let disposition = match filename {
            Some(name) => format!("form-data; name=\"{field}\"; filename=\"{name}\""),
            None => format!("form-data; name=\"{field}\""),
        };
        body.extend_from_slice(format!("Content-Disposition: {disposition}\r\n").as_bytes());
        body.extend_from_slice(b"Content-Type: application/octet-stream\r\n\r\n");
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

impl TestServer {
    /// Uploads `(file name, bytes)` pairs to a task in one request.
    pub async fn upload(&self, task: &str, token: &str, files: &[(&str, &[u8])]) -> Reply {
        let parts: Vec<(&str, Option<&str>, &[u8])> =
            files.iter().map(|(n, b)| ("file", Some(*n), *b)).collect();
        let (content_type, body) = multipart(&parts);
        self.raw(
            reqwest::Method::POST,
            &format!("/api/tasks/{task}/attachments"),
            Some(token),
            &content_type,
            body,
        )
        .await
    }

    /// Every file under `DATA_DIR/blobs/` (temp files included).
    pub fn blob_files(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, found);
                } else {
                    found.push(path);
                }
            }
        }
        let mut found = Vec::new();
        walk(&self.data_dir.join("blobs"), &mut found);
        found
    }
}

/// One documented operation: its method, a concrete path (every `{param}` a fresh UUID),
/// whether it needs a bearer token, and whether it takes a JSON body.
pub struct Operation {
    pub id: String,
    pub method: Method,
    pub path: String,
    pub secured: bool,
    pub json_body: bool,
}

/// Every operation in the served spec, so sweeping tests cover new endpoints by themselves.
pub async fn operations(server: &TestServer) -> Vec<Operation> {
    let spec = server.get("/api/openapi.json", None).await.ok().clone();
    let mut found = Vec::new();
    for (template, item) in spec["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if method == "head" {
                // A HEAD answers what its GET does, without the body: the GET covers it.
                continue;
            }
            let path = template
                .split('/')
                .map(|part| {
                    if part.starts_with('{') {
                        uuid::Uuid::now_v7().to_string()
                    } else {
                        part.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            found.push(Operation {
                id: op["operationId"].as_str().unwrap_or_default().to_string(),
                method: method.to_uppercase().parse().expect("method"),
                path: format!("/api{path}"),
                secured: op["security"].as_array().is_some_and(|s| !s.is_empty()),
                json_body: op["requestBody"]["content"]
                    .get("application/json; charset=utf-8")
                    .or_else(|| op["requestBody"]["content"].get("application/json"))
                    .is_some(),
            });
        }
    }
    found
}
