//! Webhooks against a real HTTP receiver on loopback (servers started with
//! `--webhook-allowed-hosts loopback`): Standard Webhooks signatures checked by the
//! specification's algorithm, order, retries after the receiver was down, disabling when the
//! schedule (`--webhook-retry-schedule`, shortened for tests) runs out, delivery across a
//! `kill -9` of a real `tasker serve`, SSRF refusals with nothing sent, and permissions.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use sha2::Sha256;
use tasker::net::egress::AllowedHosts;

use crate::common::{Account, TestServer, test_config};

/// One request the receiver took.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub hub: String,
    pub body: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// Verifies the Standard Webhooks signature with `secret` (`whsec_` + base64 key):
    /// HMAC-SHA256 over `{id}.{timestamp}.{body}`, base64, compared with every `v1,` entry.
    pub fn verify(&self, secret: &str) -> bool {
        let key = BASE64
            .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
            .expect("base64 secret");
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{}.{}.", self.id, self.timestamp).as_bytes());
        mac.update(&self.body);
        let expected = BASE64.encode(mac.finalize().into_bytes());
        let standard = self
            .signature
            .split(' ')
            .filter_map(|s| s.strip_prefix("v1,"))
            .any(|s| s == expected);
        let mut hub = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        hub.update(&self.body);
        let hub_expected: String = hub
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        standard && self.hub == format!("sha256={hub_expected}")
    }
}

/// A small HTTP server on loopback that records what it is sent. It answers 500 to the first
/// `fail_first` requests (then 200), or to all of them while `down` is set.
#[derive(Clone)]
pub struct Receiver {
    pub address: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
    pub hits: Arc<AtomicUsize>,
    fail_first: Arc<AtomicUsize>,
    pub delay: Arc<Mutex<Duration>>,
}

impl Receiver {
    pub async fn start(fail_first: usize) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Self {
            address: listener.local_addr().unwrap(),
            received: Arc::default(),
            hits: Arc::default(),
            fail_first: Arc::new(AtomicUsize::new(fail_first)),
            delay: Arc::default(),
        };
        let served = receiver.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let receiver = served.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let receiver = receiver.clone();
                        async move { receiver.answer(req).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        receiver
    }

    async fn answer(
        &self,
        req: hyper::Request<hyper::body::Incoming>,
    ) -> Result<hyper::Response<Full<Bytes>>, std::convert::Infallible> {
        self.hits.fetch_add(1, Ordering::SeqCst);
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let (id, timestamp, signature, hub) = (
            header("webhook-id"),
            header("webhook-timestamp"),
            header("webhook-signature"),
            header("x-hub-signature-256"),
        );
        let body = req.into_body().collect().await.map(|b| b.to_bytes());
        let delay = *self.delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let failing = self
            .fail_first
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        let status = if failing { 500 } else { 200 };
        if !failing && let Ok(body) = body {
            self.received.lock().unwrap().push(Received {
                id,
                timestamp,
                signature,
                hub,
                body: body.to_vec(),
            });
        }
        Ok(hyper::Response::builder()
            .status(status)
            .body(Full::new(Bytes::from_static(b"thanks")))
            .unwrap())
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.address)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Polls until `done` holds for what was received (or panics after a minute).
    pub async fn wait_for(&self, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let received = self.received();
            if done(&received) {
                return received;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "never got {what}; got {} requests",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// A server whose hooks may reach loopback, with a retry schedule of `schedule`.
async fn server_with(schedule: &str) -> (TestServer, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = test_config(tmp.path());
    config.webhook_allowed_hosts = AllowedHosts::parse("loopback").unwrap();
    config.webhook_retry_schedule =
        tasker::domain::webhooks::RetrySchedule::parse(schedule).unwrap();
    (TestServer::spawn_with(config).await, tmp)
}

async fn create_hook(server: &TestServer, team: &str, by: &Account, body: Value) -> Value {
    let reply = server
        .post(
            &format!("/api/teams/{team}/webhooks"),
            Some(&by.token),
            body,
        )
        .await;
    assert_eq!(reply.status, 201, "create hook: {}", reply.body);
    reply.body
}

async fn post_empty(server: &TestServer, path: &str, by: &Account) -> crate::common::Reply {
    server
        .call(reqwest::Method::POST, path, Some(&by.token), None)
        .await
}

async fn create_task(server: &TestServer, by: &Account, project: &str, title: &str) -> String {
    let reply = server
        .post(
            "/api/tasks",
            Some(&by.token),
            json!({"title": title, "project_id": project}),
        )
        .await;
    assert_eq!(reply.status, 201, "create task: {}", reply.body);
    reply.body["id"].as_str().unwrap().to_string()
}

async fn create_project(server: &TestServer, by: &Account, team: &str) -> String {
    let reply = server
        .post(
            "/api/projects",
            Some(&by.token),
            json!({"team_id": team, "name": "Hooked"}),
        )
        .await;
    reply.ok()["id"].as_str().unwrap().to_string()
}

/// Ids of the tasks created, in the order they arrived, first arrival of each event only.
fn created_tasks(received: &[Received]) -> Vec<String> {
    let mut seen = HashSet::new();
    received
        .iter()
        .filter(|r| seen.insert(r.id.clone()))
        .map(Received::json)
        .filter(|b| b["entity"] == "task" && b["action"] == "created")
        .map(|b| b["data"]["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn events_arrive_signed_in_order_and_only_the_teams() {
    let (server, _tmp) = server_with("0s,1s").await;
    let receiver = Receiver::start(0).await;
    let owner = server.register().await;
    let team = server.create_team(&owner, "Hooked").await;
    let project = create_project(&server, &owner, &team).await;
    let hook = create_hook(
        &server,
        &team,
        &owner,
        json!({"url": receiver.url(), "events": ["task.created"]}),
    )
    .await;
    let secret = hook["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));

    // Not for this hook: another team's task, a personal task, an update.
    let other_team = server.create_team(&owner, "Elsewhere").await;
    let other_project = create_project(&server, &owner, &other_team).await;
    create_task(&server, &owner, &other_project, "elsewhere").await;
    let personal = server
        .post("/api/tasks", Some(&owner.token), json!({"title": "mine"}))
        .await;
    personal.ok();
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(create_task(&server, &owner, &project, &format!("t{i}")).await);
    }
    server
        .call(
            reqwest::Method::PATCH,
            &format!("/api/tasks/{}", ids[0]),
            Some(&owner.token),
            Some(json!({"status": "done"})),
        )
        .await
        .ok();
    let received = receiver
        .wait_for("12 task events", |r| created_tasks(r).len() >= 12)
        .await;
    assert_eq!(created_tasks(&received), ids, "every task, in order");
    let mut last = 0;
    for r in &received {
        assert!(r.verify(&secret), "signature of {}", r.id);
        let body = r.json();
        let seq = body["seq"].as_u64().unwrap();
        assert!(seq > last, "in log order");
        last = seq;
        assert_eq!(r.id, format!("msg_{seq}"));
        assert_eq!(body["type"], "change");
        assert_eq!(body["data"]["team_id"], team.as_str());
        assert_eq!(body["data"]["project_id"], project.as_str());
        let stamp: i64 = r.timestamp.parse().unwrap();
        assert!((chrono::Utc::now().timestamp() - stamp).abs() < 300);
    }
    let id = hook["id"].as_str().unwrap();
    let log = server
        .get(
            &format!("/api/teams/{team}/webhooks/{id}/deliveries"),
            Some(&owner.token),
        )
        .await;
    let items = log.ok()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 12);
    assert!(
        items
            .iter()
            .all(|d| d["ok"] == true && d["status_code"] == 200)
    );
    assert_eq!(items[0]["response_body"], "thanks");
    assert!(items[0]["duration_ms"].is_u64());
    server.stop().await;
}

#[tokio::test]
async fn a_receiver_that_was_down_gets_every_event_after_retries() {
    let (server, _tmp) = server_with("0s,1s,1s,1s,1s,1s").await;
    // Down for the first four attempts.
    let receiver = Receiver::start(4).await;
    let owner = server.register().await;
    let team = server.create_team(&owner, "Retry").await;
    let project = create_project(&server, &owner, &team).await;
    let hook = create_hook(
        &server,
        &team,
        &owner,
        json!({"url": receiver.url(), "events": ["task.*"]}),
    )
    .await;
    let secret = hook["secret"].as_str().unwrap();
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(create_task(&server, &owner, &project, &format!("r{i}")).await);
    }
    let received = receiver
        .wait_for("3 events after the outage", |r| created_tasks(r).len() >= 3)
        .await;
    assert_eq!(created_tasks(&received), ids);
    assert!(received.iter().all(|r| r.verify(secret)));
    let id = hook["id"].as_str().unwrap();
    let log = server
        .get(
            &format!("/api/teams/{team}/webhooks/{id}/deliveries"),
            Some(&owner.token),
        )
        .await;
    let items = log.ok()["items"].as_array().unwrap().clone();
    let failed: Vec<&Value> = items.iter().filter(|d| d["ok"] == false).collect();
    assert_eq!(failed.len(), 4, "{items:?}");
    assert!(failed.iter().all(|d| d["status_code"] == 500));
    // The retries of the first event carried its id each time.
    let first = &received[0].id;
    assert!(failed.iter().all(|d| d["event_id"] == first.as_str()));
    let attempts: Vec<u64> = items
        .iter()
        .filter(|d| d["event_id"] == first.as_str())
        .map(|d| d["attempt"].as_u64().unwrap())
        .collect();
    assert_eq!(attempts, vec![5, 4, 3, 2, 1]);
    let hook = server
        .get(
            &format!("/api/teams/{team}/webhooks/{id}"),
            Some(&owner.token),
        )
        .await;
    assert_eq!(hook.ok()["enabled"], true);
    assert_eq!(hook.body["failures"], 0);
    assert!(
        hook.body.get("secret").is_none(),
        "no secret outside create"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_hook_is_disabled_when_the_schedule_runs_out_and_its_creator_is_told() {
    let (server, _tmp) = server_with("0s,1s").await;
    let receiver = Receiver::start(usize::MAX).await;
    let owner = server.register().await;
    let team = server.create_team(&owner, "Down").await;
    let project = create_project(&server, &owner, &team).await;
    let hook = create_hook(&server, &team, &owner, json!({"url": receiver.url()})).await;
    let id = hook["id"].as_str().unwrap();
    create_task(&server, &owner, &project, "never arrives").await;
    let started = Instant::now();
    loop {
        let hook = server
            .get(
                &format!("/api/teams/{team}/webhooks/{id}"),
                Some(&owner.token),
            )
            .await;
        if hook.ok()["enabled"] == false {
            assert!(
                hook.body["disabled_reason"]
                    .as_str()
                    .unwrap()
                    .contains("2 attempts")
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never disabled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        receiver.hits.load(Ordering::SeqCst),
        2,
        "two attempts in all"
    );
    let inbox = server.get("/api/notifications", Some(&owner.token)).await;
    let kinds: Vec<&str> = inbox.ok()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"webhook_disabled"), "{kinds:?}");
    // Enabled again, it resumes with the event it could not deliver.
    *receiver.delay.lock().unwrap() = Duration::ZERO;
    receiver.fail_first.store(0, Ordering::SeqCst);
    server
        .call(
            reqwest::Method::PATCH,
            &format!("/api/teams/{team}/webhooks/{id}"),
            Some(&owner.token),
            Some(json!({"enabled": true})),
        )
        .await
        .ok();
    let received = receiver
        .wait_for("the held event", |r| created_tasks(r).len() == 1)
        .await;
    assert!(received[0].json()["data"]["changes"][0]["field"].is_string());
    server.stop().await;
}

#[tokio::test]
async fn a_private_target_is_refused_at_creation_and_nothing_is_sent() {
    // The default: public addresses only.
    let server = TestServer::spawn().await;
    let receiver = Receiver::start(0).await;
    let owner = server.register().await;
    let team = server.create_team(&owner, "Guarded").await;
    for url in [
        receiver.url(),
        format!("http://localhost:{}/hook", receiver.address.port()),
        format!("http://[::ffff:127.0.0.1]:{}/", receiver.address.port()),
        "http://10.0.0.1/hook".into(),
        "http://192.168.1.20/hook".into(),
        "http://169.254.169.254/latest/meta-data/".into(),
        "http://[fd00::1]/".into(),
        "http://0.0.0.0/".into(),
        "ftp://example.com/".into(),
    ] {
        let reply = server
            .post(
                &format!("/api/teams/{team}/webhooks"),
                Some(&owner.token),
                json!({ "url": url }),
            )
            .await;
        assert_eq!(reply.invalid_fields(), vec!["url"], "{url}: {}", reply.body);
    }
    let list = server
        .get(&format!("/api/teams/{team}/webhooks"), Some(&owner.token))
        .await;
    assert!(list.ok()["items"].as_array().unwrap().is_empty());
    assert_eq!(receiver.hits.load(Ordering::SeqCst), 0, "nothing was sent");
    server.stop().await;

    // Loopback allowed does not open private networks.
    let (server, _tmp) = server_with("0s").await;
    let owner = server.register().await;
    let team = server.create_team(&owner, "Half open").await;
    let reply = server
        .post(
            &format!("/api/teams/{team}/webhooks"),
            Some(&owner.token),
            json!({"url": "http://10.1.2.3/"}),
        )
        .await;
    assert_eq!(reply.invalid_fields(), vec!["url"]);
    server.stop().await;
}

#[tokio::test]
async fn only_owners_and_admins_manage_hooks_and_bad_input_is_422() {
    let (server, _tmp) = server_with("0s").await;
    let receiver = Receiver::start(0).await;
    let owner = server.register().await;
    let admin = server.register().await;
    let member = server.register().await;
    let stranger = server.register().await;
    let team = server.create_team(&owner, "Roles").await;
    server.add_member(&team, &owner, &admin, "admin").await;
    server.add_member(&team, &owner, &member, "member").await;
    let hook = create_hook(&server, &team, &admin, json!({"url": receiver.url()})).await;
    let id = hook["id"].as_str().unwrap();
    let base = format!("/api/teams/{team}/webhooks");
    for (who, status) in [(&member, 403), (&stranger, 404)] {
        let list = server.get(&base, Some(&who.token)).await;
        assert_eq!(list.status, status, "{}", list.body);
        let create = server
            .post(&base, Some(&who.token), json!({"url": receiver.url()}))
            .await;
        assert_eq!(create.status, status);
        let secret = server
            .get(&format!("{base}/{id}/secret"), Some(&who.token))
            .await;
        assert_eq!(secret.status, status);
        let ping = post_empty(&server, &format!("{base}/{id}/ping"), who).await;
        assert_eq!(ping.status, status);
        let delete = server
            .call(
                reqwest::Method::DELETE,
                &format!("{base}/{id}"),
                Some(&who.token),
                None,
            )
            .await;
        assert_eq!(delete.status, status);
    }
    // A hook of another team is not found through this one.
    let other = server.create_team(&stranger, "Theirs").await;
    let got = server
        .get(
            &format!("/api/teams/{other}/webhooks/{id}"),
            Some(&stranger.token),
        )
        .await;
    got.problem(404, "not_found");

    let bad = server
        .post(
            &base,
            Some(&owner.token),
            json!({"url": receiver.url(), "events": ["task.exploded"]}),
        )
        .await;
    assert_eq!(bad.invalid_fields(), vec!["events"]);
    let foreign_project = create_project(&server, &stranger, &other).await;
    let bad = server
        .post(
            &base,
            Some(&owner.token),
            json!({"url": receiver.url(), "project_id": foreign_project}),
        )
        .await;
    assert_eq!(bad.invalid_fields(), vec!["project_id"]);
    let bad = server
        .post(
            &base,
            Some(&owner.token),
            json!({"url": "not a url", "extra": 1}),
        )
        .await;
    assert_eq!(bad.status, 422);
    let bad = server
        .post(&base, Some(&owner.token), json!({"url": ""}))
        .await;
    assert_eq!(bad.invalid_fields(), vec!["url"]);

    // The owner reads the secret, rotates it, and deletes the hook.
    let secret = server
        .get(&format!("{base}/{id}/secret"), Some(&owner.token))
        .await;
    assert_eq!(secret.ok()["secret"], hook["secret"]);
    let rotated = post_empty(&server, &format!("{base}/{id}/secret"), &owner).await;
    assert_ne!(rotated.ok()["secret"], hook["secret"]);
    let deleted = server
        .call(
            reqwest::Method::DELETE,
            &format!("{base}/{id}"),
            Some(&owner.token),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204);
    let gone = server
        .get(&format!("{base}/{id}"), Some(&owner.token))
        .await;
    gone.problem(404, "not_found");
    server.stop().await;
}

#[tokio::test]
async fn ping_and_redeliver_send_now_and_are_logged() {
    let (server, _tmp) = server_with("0s").await;
    let receiver = Receiver::start(0).await;
    let owner = server.register().await;
    let team = server.create_team(&owner, "Ping").await;
    let project = create_project(&server, &owner, &team).await;
    let hook = create_hook(&server, &team, &owner, json!({"url": receiver.url()})).await;
    let (id, secret) = (
        hook["id"].as_str().unwrap(),
        hook["secret"].as_str().unwrap(),
    );
    let base = format!("/api/teams/{team}/webhooks/{id}");
    let ping = post_empty(&server, &format!("{base}/ping"), &owner).await;
    assert_eq!(ping.ok()["kind"], "ping");
    assert_eq!(ping.body["status_code"], 200);
    let received = receiver.wait_for("the ping", |r| !r.is_empty()).await;
    assert_eq!(received[0].json()["type"], "ping");
    assert!(received[0].verify(secret));

    create_task(&server, &owner, &project, "again").await;
    let received = receiver
        .wait_for("the task", |r| created_tasks(r).len() == 1)
        .await;
    let event_id = received.last().unwrap().id.clone();
    let log = server
        .get(&format!("{base}/deliveries"), Some(&owner.token))
        .await;
    let delivery = log.ok()["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["event_id"] == event_id.as_str())
        .cloned()
        .unwrap();
    let again = post_empty(
        &server,
        &format!("{base}/deliveries/{}/redeliver", delivery["id"]),
        &owner,
    )
    .await;
    assert_eq!(again.ok()["kind"], "redelivery");
    let received = receiver
        .wait_for("the redelivery", |r| {
            r.iter().filter(|x| x.id == event_id).count() == 2
        })
        .await;
    let twice: Vec<&Received> = received.iter().filter(|x| x.id == event_id).collect();
    assert_eq!(twice[0].body, twice[1].body, "the same body, the same id");
    assert!(twice[1].verify(secret));
    let missing = post_empty(&server, &format!("{base}/deliveries/999/redeliver"), &owner).await;
    missing.problem(404, "not_found");
    server.stop().await;
}

/// A child `tasker serve`, killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_serve(dir: &std::path::Path) -> (Child, String) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut command = Command::new(env!("CARGO_BIN_EXE_tasker"));
    for (key, _) in std::env::vars() {
        if key.starts_with("TASKER_")
            || ["PORT", "JWT_SECRET", "RUST_LOG", "LOG_LEVEL"].contains(&key.as_str())
        {
            command.env_remove(key);
        }
    }
    command
        .current_dir(dir)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            "data",
            "--bcrypt-cost",
            "4",
            "--rate-limit",
            "off",
            "--webhook-allowed-hosts",
            "loopback",
            "--webhook-retry-schedule",
            "0s,1s,1s,1s,1s,1s,1s,1s,1s,1s",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = Child(command.spawn().expect("tasker starts"));
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the server says it listens");
        if !line.contains("listening") {
            continue;
        }
        let address = line
            .split(|c: char| c.is_whitespace() || c == '"' || c == ',')
            .find_map(|word| {
                word.strip_prefix("address=")
                    .and_then(|a| a.parse::<SocketAddr>().ok())
            })
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        return (child, format!("http://{address}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_in_order_across_a_kill_9() {
    tasker::net::egress::install_crypto_provider();
    let tmp = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(0).await;
    // A slow receiver: deliveries trail the writes, so the kill lands mid-stream.
    *receiver.delay.lock().unwrap() = Duration::from_millis(40);
    let (mut server, base) = spawn_serve(tmp.path());
    let client = reqwest::Client::new();
    let post = |path: &str, token: Option<&str>, body: Value| {
        let mut request = client.post(format!("{base}{path}")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let auth: Value = post(
        "/api/auth/register",
        None,
        json!({"email": "hook@example.com", "name": "Hook", "password": crate::common::PASSWORD}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let token = auth["token"].as_str().unwrap().to_string();
    let team: Value = post("/api/teams", Some(&token), json!({"name": "Crash"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let team = team["id"].as_str().unwrap().to_string();
    let project: Value = post(
        "/api/projects",
        Some(&token),
        json!({"team_id": team, "name": "P"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let project = project["id"].as_str().unwrap().to_string();
    let hook: Value = post(
        &format!("/api/teams/{team}/webhooks"),
        Some(&token),
        json!({"url": receiver.url(), "events": ["task.created"]}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let secret = hook["secret"].as_str().expect("a secret").to_string();
    let mut acknowledged = Vec::new();
    for i in 0..150 {
        let task: Value = post(
            "/api/tasks",
            Some(&token),
            json!({"title": format!("k{i}"), "project_id": project}),
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        acknowledged.push(task["id"].as_str().unwrap().to_string());
    }
    let before = created_tasks(&receiver.received()).len();
    server.0.kill().unwrap();
    let _ = server.0.wait();
    assert!(
        before < acknowledged.len(),
        "the kill must land mid-stream (all {before} delivered)"
    );

    *receiver.delay.lock().unwrap() = Duration::ZERO;
    let (_server, _base) = spawn_serve(tmp.path());
    let received = receiver
        .wait_for("every acknowledged task", |r| {
            created_tasks(r).len() >= acknowledged.len()
        })
        .await;
    assert_eq!(
        created_tasks(&received),
        acknowledged,
        "nothing lost, no gap, in order"
    );
    // Repeats (at least once) carry the id of the first, and all verify.
    let mut last = 0;
    let mut seen = HashSet::new();
    for r in &received {
        assert!(r.verify(&secret));
        let seq = r.json()["seq"].as_u64().unwrap();
        if seen.insert(r.id.clone()) {
            assert!(seq > last, "new events in log order");
            last = seq;
        }
    }
}
