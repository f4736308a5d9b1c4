//! Load benchmark: starts tasker in-process on a temporary data directory, drives it with
//! concurrent keep-alive HTTP clients and prints a markdown table.
//!
//!     cargo bench --bench load
//!
//! Environment: `BENCH_SECONDS` (per row, default 5), `BENCH_CLIENTS` (default 32),
//! `BENCH_TASKS` (tasks seeded before the task rows, default 100,000), `BENCH_SOCKETS`
//! (WebSocket connections for the real-time rows, default 1,000), `BENCH_LARGE_TASKS` (the
//! store's size for the second set of search rows, default 1,000,000; 0 skips them),
//! `BENCH_ONLY=web` (only the web app's page rows, on a small store: a quick run). The load
//! generator runs on the same machine as the server, so absolute figures are a floor; the
//! ratio to `/api/health`, measured in the same run, is the comparable number.

use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::runtime::Runtime;

/// Zipf-distributed words, shared with `benches/synthetic.rs`.
#[path = "common/zipf.rs"]
#[allow(dead_code)]
mod zipf;

/// Client loops and percentiles, shared with `benches/scale.rs`.
#[path = "common/measure.rs"]
mod measure;
use measure::{Row, drive, encode, env_or, json_of, ms, percentile};

const PASSWORD: &str = "correct horse battery";

/// A table of request rows, each also as a fraction of `health` requests per second.
fn print_requests(title: &str, rows: &[Row], health: f64) {
    println!("| {title} | clients | requests | req/s | p50 ms | p99 ms | errors | vs health |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        println!(
            "| {} | {} | {} | {:.0} | {} | {} | {} | {:.3} |",
            row.operation,
            row.clients,
            row.requests,
            row.per_second,
            ms(row.p50),
            ms(row.p99),
            row.errors,
            row.per_second / health
        );
    }
}

type Stop = tokio::sync::oneshot::Sender<()>;
type Running = tokio::task::JoinHandle<Result<(), tasker::ServeError>>;

/// Starts the server exactly as `tasker serve` runs it (default bcrypt cost 12).
async fn start(data: &std::path::Path) -> (String, Stop, Running) {
    let mut config = tasker::Config::new(data);
    // Room for the 50 and 100 MiB upload rows.
    config.max_upload_bytes = 128 << 20;
    // Many clients from one address: the rate limits would measure themselves.
    config.rate_limits = None;
    // A thousand WebSockets plus the writers' connections.
    config.max_connections = 4096;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tasker::serve(config, listener, async {
        let _ = stopped.await;
    }));
    (base, stop, server)
}

const MIB: usize = 1 << 20;
const BOUNDARY: &str = "tasker-bench-boundary";

/// The multipart framing around one `file` field: what goes before and after its bytes.
fn framing() -> (String, String) {
    (
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"bench.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        ),
        format!("\r\n--{BOUNDARY}--\r\n"),
    )
}

/// A one-file upload body of `size` bytes whose content differs for each `n` (no dedupe).
fn upload_body(n: usize, size: usize) -> Vec<u8> {
    let (head, tail) = framing();
    let mut body = Vec::with_capacity(head.len() + size + tail.len());
    body.extend_from_slice(head.as_bytes());
    body.extend_from_slice(&(n as u64).to_le_bytes());
    body.resize(head.len() + size, 0x5a);
    body.extend_from_slice(tail.as_bytes());
    body
}

/// Uploads `size` bytes over a raw connection, writing one reused 64 KiB chunk at a time, so
/// the client holds no copy of the file and the process's peak RSS is the server's doing.
async fn streamed_upload(base: &str, token: &str, task: &str, size: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (head, tail) = framing();
    let length = head.len() + size + tail.len();
    let request = format!(
        "POST /api/tasks/{task}/attachments HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n{head}"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let chunk = vec![0x42u8; 64 << 10];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len());
        stream.write_all(&chunk[..n]).await.unwrap();
        left -= n;
    }
    stream.write_all(tail.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A `VmRSS`/`VmHWM`-style line of /proc/self/status, in MiB (Linux only; 0 elsewhere).
fn memory_mib(field: &str) -> f64 {
    measure::status_mib("self", field)
}

async fn open_socket(
    url: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(4 << 10)
        .write_buffer_size(0);
    tokio_tungstenite::connect_async_with_config(url, Some(config), false)
        .await
        .expect("socket")
        .0
}

/// The server's memory per idle WebSocket: a separate `tasker serve` process, its RSS before
/// and after `sockets` connections (this process's heap would hide it).
async fn idle_socket_kib(sockets: usize) -> f64 {
    let data = tempfile::tempdir().expect("temp dir");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tasker"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--bcrypt-cost",
            "4",
            // 1,000 sockets from one address: over the per-address limit otherwise.
            "--rate-limit",
            "off",
            // And over the default of 400 connections at once.
            "--max-connections",
            "4096",
        ])
        .arg("--data-dir")
        .arg(data.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("tasker serve starts");
    let stderr = child.stderr.take().unwrap();
    let address = measure::listening_address(stderr, Duration::from_secs(30));
    let base = format!("http://{address}");
    let auth: serde_json::Value = json_of(
        reqwest::Client::new()
            .post(format!("{base}/api/auth/register"))
            .json(
                &json!({"email": "sockets@example.com", "name": "Sockets", "password": PASSWORD}),
            ),
    )
    .await;
    let url = format!(
        "ws://{address}/api/ws?token={}",
        auth["token"].as_str().unwrap()
    );
    let rss = |pid: u32| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss(child.id());
    let mut held = Vec::with_capacity(sockets);
    for _ in 0..sockets {
        held.push(open_socket(&url).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss(child.id());
    drop(held);
    let _ = child.kill();
    let _ = child.wait();
    (after - before) / sockets as f64
}

/// The real-time rows: memory per idle socket, write-to-receipt latency on `sockets`
/// connections, and the deliveries the hub sustains under 32 writers. `create` posts one task
/// the bench user can see and returns its id.
async fn realtime_rows<F, Fut>(
    base: &str,
    token: &str,
    sockets: usize,
    seconds: Duration,
    create: F,
) -> Vec<String>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Option<String>> + Send,
{
    use futures_util::StreamExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    let url = format!("{}/api/ws?token={token}", base.replacen("http", "ws", 1));
    let per_socket_kib = idle_socket_kib(sockets).await;
    let mut connections = Vec::with_capacity(sockets);
    for _ in 0..sockets {
        connections.push(open_socket(&url).await);
    }

    // Every socket records when each task's creation reaches it.
    let received: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let delivered = Arc::new(AtomicUsize::new(0));
    let cut_off = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = connections
        .into_iter()
        .map(|mut socket| {
            let (received, delivered, cut_off) =
                (received.clone(), delivered.clone(), cut_off.clone());
            tokio::spawn(async move {
                while let Some(Ok(frame)) = socket.next().await {
                    match frame {
                        tokio_tungstenite::tungstenite::Message::Text(text) => {
                            delivered.fetch_add(1, Ordering::Relaxed);
                            let at = Instant::now();
                            let message: serde_json::Value =
                                serde_json::from_str(&text).unwrap_or_default();
                            if message["entity"] == "task"
                                && message["action"] == "created"
                                && let Some(id) = message["data"]["id"].as_str()
                            {
                                received.lock().unwrap().push((id.to_string(), at));
                            }
                        }
                        tokio_tungstenite::tungstenite::Message::Close(frame) => {
                            if frame.is_some_and(|f| u16::from(f.code) == 4008) {
                                cut_off.fetch_add(1, Ordering::Relaxed);
                            }
                            break;
                        }
                        _ => {}
                    }
                }
            })
        })
        .collect();

    // Latency: one write at a time, from its response to each socket's receipt.
    let writes = 100;
    let mut answered = std::collections::HashMap::new();
    for _ in 0..writes {
        if let Some(id) = create().await {
            answered.insert(id, Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while received.lock().unwrap().len() < writes * sockets && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut latencies: Vec<Duration> = received
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(id, at)| {
            answered
                .get(id)
                .map(|sent| at.saturating_duration_since(*sent))
        })
        .collect();
    latencies.sort();
    let receipts = latencies.len();

    // Sustained: 32 writers for `seconds`, every socket reading.
    let delivered_before = delivered.load(Ordering::Relaxed);
    let started = Instant::now();
    let writers = drive("feed writers", 32, seconds, move || {
        let create = create.clone();
        async move { create().await.is_some() }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let deliveries = delivered.load(Ordering::Relaxed) - delivered_before;
    let elapsed = started.elapsed().as_secs_f64();
    for reader in readers {
        reader.abort();
    }
    vec![
        format!(
            "| idle sockets: the server's memory per socket (a separate process) | {sockets} | | {per_socket_kib:.1} KiB | | |"
        ),
        format!(
            "| write response to receipt, 1 write every 20 ms | {sockets} | {receipts} of {} | | {} | {} |",
            writes * sockets,
            ms(percentile(&latencies, 0.50)),
            ms(percentile(&latencies, 0.99))
        ),
        format!(
            "| sustained: 32 writers ({:.0} creates/s), every socket reading | {sockets} | {deliveries} delivered, {} cut off (4008) | {:.0} deliveries/s | | |",
            writers.per_second,
            cut_off.load(Ordering::Relaxed),
            deliveries as f64 / elapsed
        ),
    ]
}

/// Waits until `/api/health` shows the search index ready with nothing left to apply.
async fn index_caught_up(client: &reqwest::Client, base: &str) {
    loop {
        let health: serde_json::Value = client
            .get(format!("{base}/api/health"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let index = &health["search_index"];
        if index["status"] == "ready" && index["lag"] == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn login_token(client: &reqwest::Client, base: &str) -> String {
    let auth: serde_json::Value = json_of(
        client
            .post(format!("{base}/api/auth/login"))
            .json(&json!({"email": "bench@example.com", "password": PASSWORD})),
    )
    .await;
    auth["token"].as_str().unwrap().to_string()
}

/// Searches over `tasks` seeded tasks: the commonest word, a word (uniform over the
/// vocabulary: mostly rare ones), two words with the last typed halfway
/// (typeahead), a word with a typo, a quoted phrase; 20 results each.
async fn search_rows(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    clients: usize,
    seconds: Duration,
    tasks: usize,
) -> Vec<Row> {
    let vocabulary = std::sync::Arc::new(vocabulary());
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let query = |make: fn(&[String], usize) -> String| {
        let (client, base, token, vocabulary, counter) = (
            client.clone(),
            base.to_string(),
            token.to_string(),
            vocabulary.clone(),
            counter.clone(),
        );
        move || {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let q = make(&vocabulary, n);
            let request = client
                .get(format!("{base}/api/tasks/search?limit=20&q={}", encode(&q)))
                .bearer_auth(&token);
            async move { request.send().await.is_ok_and(|r| r.status().is_success()) }
        }
    };
    type MakeQuery = fn(&[String], usize) -> String;
    let kinds: [(&str, MakeQuery); 5] = [
        ("the commonest word", |v, _| format!("{} ", v[0])),
        ("one word", |v, n| format!("{} ", v[(n * 7919) % v.len()])),
        ("typeahead: a word and a prefix", |v, n| {
            let second = &v[(n * 104_729) % v.len()];
            format!("{} {}", v[(n * 7919) % v.len()], &second[..3])
        }),
        ("a word with a typo", |v, n| {
            let mut i = n * 7919;
            let mut word: Vec<char> = v[i % v.len()].chars().collect();
            while word.len() < 5 {
                i += 1;
                word = v[i % v.len()].chars().collect();
            }
            word.swap(1, 2);
            format!("{} ", word.into_iter().collect::<String>())
        }),
        ("a quoted phrase", |v, n| {
            format!("\"{}\"", words(v, n as u64, 2))
        }),
    ];
    // Saturated (every client waiting on the server: latency is mostly queueing), then one
    // client at a time (what one person typing sees).
    let mut rows = Vec::new();
    for concurrency in [clients, 1] {
        for (kind, make) in kinds {
            let label = format!("search {kind} ({tasks} tasks)");
            rows.push(drive(&label, concurrency, seconds, query(make)).await);
        }
    }
    rows
}

/// Time from an acknowledged create to the task being found by search, one at a time.
async fn freshness_row(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    project: uuid::Uuid,
) -> Row {
    let mut latencies = Vec::new();
    let started = Instant::now();
    for n in 0..50 {
        let marker = format!("fresh{n}marker");
        let created = client
            .post(format!("{base}/api/tasks"))
            .bearer_auth(token)
            .json(&json!({"title": format!("{marker} task"), "project_id": project}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status().as_u16(), 201);
        let acknowledged = Instant::now();
        loop {
            let page: serde_json::Value = client
                .get(format!("{base}/api/tasks/search?q={marker}"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if page["items"]
                .as_array()
                .is_some_and(|items| !items.is_empty())
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        latencies.push(acknowledged.elapsed());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Row {
        operation: "create acknowledged -> found by search (freshness, one at a time)".into(),
        clients: 1,
        requests: latencies.len(),
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        errors: 0,
    }
}

/// A full offline rebuild (`tasker reindex`) of the data directory, as a table line.
fn rebuild_row(data: &std::path::Path) -> String {
    // Connections the stopped server was still closing may hold the database for a moment.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (started, tasks) = loop {
        let started = Instant::now();
        match tasker::reindex(data, |_, _| {}) {
            Ok(tasks) => break (started, tasks),
            Err(e) if Instant::now() < deadline && e.to_string().contains("holds it") => {
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("reindex: {e}"),
        }
    };
    let took = started.elapsed();
    format!(
        "| full rebuild (`tasker reindex`), {tasks} tasks | {:.2} s | {:.0} tasks/s |",
        took.as_secs_f64(),
        tasks as f64 / took.as_secs_f64()
    )
}

/// Words the seeded tasks are written in: 30,000 made-up words, commonest first.
fn vocabulary() -> Vec<String> {
    zipf::zipf().words().to_vec()
}

/// `count` words of `vocabulary` drawn by Zipf's law, by a generator seeded with `seed`.
fn words(vocabulary: &[String], seed: u64, count: usize) -> String {
    let mut n = seed
        .wrapping_mul(2_862_933_555_777_941_757)
        .wrapping_add(3_037_000_493);
    (0..count)
        .map(|_| {
            n = n
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let u = (n >> 11) as f64 / (1u64 << 53) as f64;
            vocabulary[zipf::zipf().rank(u) % vocabulary.len()].as_str()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Writes `count` tasks (assigned to the user, in the project, a quarter of them done, with a
/// title of 4 and a description of 30 Zipf-drawn words) straight into the store, in batches,
/// numbered from `first`; returns their ids.
fn seed(
    data: &std::path::Path,
    first: usize,
    count: usize,
    user: uuid::Uuid,
    team: uuid::Uuid,
    project: uuid::Uuid,
) -> Vec<uuid::Uuid> {
    let vocabulary = vocabulary();
    use tasker::domain::task::{Priority, Task, TaskStatus, TaskTitle};
    use tasker::domain::{ProjectId, TaskId, TeamId, UserId};
    let store = tasker::store::Store::open(&tasker::Config::new(data).db_path()).unwrap();
    let mut ids = Vec::with_capacity(count);
    let now = chrono::Utc::now();
    for batch in (first..first + count).collect::<Vec<_>>().chunks(10_000) {
        let tasks: Vec<Task> = batch
            .iter()
            .map(|i| Task {
                id: TaskId::new(),
                title: TaskTitle::parse(&words(&vocabulary, *i as u64, 4)).unwrap(),
                description: words(&vocabulary, !(*i as u64), 30),
                status: if i % 4 == 0 {
                    TaskStatus::Done
                } else {
                    TaskStatus::Todo
                },
                priority: Priority::Medium,
                due_date: None,
                labels: vec![],
                project_id: Some(ProjectId::from_uuid(project)),
                team_id: Some(TeamId::from_uuid(team)),
                assignee_ids: vec![UserId::from_uuid(user)],
                created_by: UserId::from_uuid(user),
                created_at: now,
                updated_at: now,
                version: 1,
                comment_count: 0,
                attachment_count: 0,
                rank: Default::default(),
            })
            .collect();
        ids.extend(tasks.iter().map(|t| t.id.as_uuid()));
        store.import_tasks(&tasks).unwrap();
    }
    ids
}

/// The web app's session cookie for the bench account, signed in through the form.
async fn web_cookie(base: &str) -> String {
    // The cookie comes with the 303 that answers the form: do not follow it.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .post(format!("{base}/signin"))
        .header("origin", base)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "email=bench%40example.com&password={}",
            PASSWORD.replace(' ', "+")
        ))
        .send()
        .await
        .unwrap();
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("tasker_session="))
        .expect("signing in sets the session cookie");
    cookie.split(';').next().unwrap().to_string()
}

/// A project of `tasks` tasks spread over the four columns, made through the API.
async fn board_project(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    team_id: uuid::Uuid,
    user_id: uuid::Uuid,
    tasks: usize,
) -> (String, String) {
    let project: serde_json::Value = client
        .post(format!("{base}/api/projects"))
        .bearer_auth(token)
        .json(&json!({"team_id": team_id, "name": format!("Board of {tasks}")}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let project = project["id"].as_str().unwrap().to_string();
    let statuses = ["todo", "in_progress", "blocked", "done"];
    let priorities = ["low", "medium", "high", "urgent"];
    let mut last = String::new();
    for n in 0..tasks {
        let body = json!({
            "title": format!("Card {n}: plan the release notes"),
            "project_id": project,
            "status": statuses[n % 4],
            "priority": priorities[n % 4],
            "labels": ["bench", "web"],
            "assignee_ids": [user_id],
            "due_date": format!("2027-01-{:02}T12:00:00Z", 1 + n % 28),
        });
        let task: serde_json::Value = client
            .post(format!("{base}/api/tasks"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        last = task["id"].as_str().unwrap().to_string();
    }
    (project, last)
}

/// Server-side render times of the web app's main pages (HTML, compressed by nobody: the
/// figure is the render and the store reads behind it).
async fn web_rows(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    team_id: uuid::Uuid,
    user_id: uuid::Uuid,
    clients: usize,
    seconds: Duration,
) -> Vec<Row> {
    let cookie = web_cookie(base).await;
    let (small, _) = board_project(client, base, token, team_id, user_id, 100).await;
    let (large, task) = board_project(client, base, token, team_id, user_id, 500).await;
    let page = |path: String| {
        let (client, url, cookie) = (client.clone(), format!("{base}{path}"), cookie.clone());
        move || {
            let request = client.get(&url).header("cookie", &cookie);
            async move {
                match request.send().await {
                    Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                    _ => false,
                }
            }
        }
    };
    let mut rows = Vec::new();
    for (name, path) in [
        ("board, 100 tasks", format!("/projects/{small}")),
        ("board, 500 tasks", format!("/projects/{large}")),
        (
            "list, 500-task project (first page)",
            format!("/projects/{large}/list"),
        ),
        ("task detail", format!("/tasks/{task}")),
        ("My work (the first 200 assigned)", "/".to_string()),
    ] {
        rows.push(drive(&format!("GET {name}"), 1, seconds, page(path.clone())).await);
        rows.push(drive(&format!("GET {name}"), clients, seconds, page(path)).await);
    }
    rows
}

fn main() {
    tasker::net::egress::install_crypto_provider();
    let seconds = Duration::from_secs(env_or("BENCH_SECONDS", 5));
    let clients = env_or("BENCH_CLIENTS", 32) as usize;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = Runtime::new().expect("runtime");
    let data = tempfile::tempdir().expect("temp dir");

    let seed_tasks = env_or("BENCH_TASKS", 100_000) as usize;
    let web_only = std::env::var("BENCH_ONLY").is_ok_and(|v| v == "web");
    let rows = runtime.block_on(async {
        // Phase 1: an account, a team and a project, through the API.
        let (token, user_id, team_id, project_id) = {
            let (base, stop, server) = start(data.path()).await;
            let client = reqwest::Client::new();
            let auth: serde_json::Value = json_of(client
                .post(format!("{base}/api/auth/register"))
                .json(&json!({"email": "bench@example.com", "name": "Bench", "password": PASSWORD}))).await;
            let token = auth["token"].as_str().unwrap().to_string();
            let team: serde_json::Value = json_of(client
                .post(format!("{base}/api/teams"))
                .bearer_auth(&token)
                .json(&json!({"name": "Bench"}))).await;
            let project: serde_json::Value = json_of(client
                .post(format!("{base}/api/projects"))
                .bearer_auth(&token)
                .json(&json!({"team_id": team["id"], "name": "Bench"}))).await;
            let _ = stop.send(());
            server.await.unwrap().unwrap();
            let id = |v: &serde_json::Value| v.as_str().unwrap().parse::<uuid::Uuid>().unwrap();
            (token, id(&auth["user"]["id"]), id(&team["id"]), id(&project["id"]))
        };
        if web_only {
            let (base, stop, server) = start(data.path()).await;
            let client = reqwest::Client::builder().pool_max_idle_per_host(clients * 2).build().unwrap();
            let health = || {
                let (client, url) = (client.clone(), format!("{base}/api/health"));
                move || {
                    let request = client.get(&url);
                    async move { request.send().await.is_ok_and(|r| r.status().is_success()) }
                }
            };
            drive("warm-up", clients, Duration::from_millis(500), health()).await;
            let rows = vec![drive("GET /api/health", clients, seconds, health()).await];
            let web = web_rows(&client, &base, &token, team_id, user_id, clients, seconds).await;
            let _ = stop.send(());
            server.await.unwrap().unwrap();
            return (rows, vec![], vec![], vec![], vec![], web, vec![]);
        }

        // Phase 2: 100,000 tasks straight into the store (the server is stopped).
        let seeded = Instant::now();
        let task_ids = seed(data.path(), 0, seed_tasks, user_id, team_id, project_id);
        let seed_time = seeded.elapsed();

        // Phase 3: the server again, on the seeded data. Its indexer catches up with the
        // seeded tasks from the change log.
        let indexing = Instant::now();
        let (base, stop, server) = start(data.path()).await;
        let client = reqwest::Client::builder().pool_max_idle_per_host(clients * 2).build().unwrap();
        index_caught_up(&client, &base).await;
        let index_time = indexing.elapsed();
        let get = |path: String| {
            let (client, url, token) = (client.clone(), format!("{base}{path}"), token.clone());
            move || {
                let request = client.get(&url).bearer_auth(&token);
                async move { request.send().await.is_ok_and(|r| r.status().is_success()) }
            }
        };
        let login = |email: &'static str, password: &'static str, expect: u16| {
            let (client, url) = (client.clone(), format!("{base}/api/auth/login"));
            move || {
                let request = client.post(&url).json(&json!({"email": email, "password": password}));
                async move { request.send().await.is_ok_and(|r| r.status().as_u16() == expect) }
            }
        };
        let counter = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let create = {
            let (client, url, token, counter) = (client.clone(), format!("{base}/api/tasks"), token.clone(), counter.clone());
            move || {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let body = json!({"title": format!("created {n}"), "project_id": project_id, "assignee_ids": [user_id]});
                let request = client.post(&url).bearer_auth(&token).json(&body);
                async move { request.send().await.is_ok_and(|r| r.status().as_u16() == 201) }
            }
        };
        let ids = std::sync::Arc::new(task_ids);
        // Reads of one task spread over the first `spread` seeded tasks: a working set a team
        // keeps reading (served from memory once warm), or the whole store (mostly cold).
        // A personal access token (`tkr_pat_`) of the same account, for the token row.
        let pat: serde_json::Value = client
            .post(format!("{base}/api/auth/tokens"))
            .bearer_auth(&token)
            .json(&json!({"name": "bench", "scopes": ["tasks:read"], "expires_at": (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339()}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let pat = pat["token"].as_str().expect("an access token").to_string();
        let one_task_as = |token: String, spread: usize| {
            let (client, base, ids, counter) = (client.clone(), base.clone(), ids.clone(), counter.clone());
            let spread = spread.min(ids.len());
            move || {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let id = ids[(n * 7919) % spread];
                let request = client.get(format!("{base}/api/tasks/{id}")).bearer_auth(&token);
                async move { request.send().await.is_ok_and(|r| r.status().is_success()) }
            }
        };
        let one_task = |spread: usize| one_task_as(token.clone(), spread);
        let update = {
            let (client, base, token, ids, counter) = (client.clone(), base.clone(), token.clone(), ids.clone(), counter.clone());
            move || {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let id = ids[(n * 104_729) % ids.len()];
                let request = client.patch(format!("{base}/api/tasks/{id}")).bearer_auth(&token).json(&json!({"title": format!("updated {n}")}));
                async move { request.send().await.is_ok_and(|r| r.status().is_success()) }
            }
        };

        drive("warm-up", clients, Duration::from_millis(500), get("/api/health".into())).await;
        let mut rows = vec![
            drive("GET /api/health", clients, seconds, get("/api/health".into())).await,
            drive("GET /api/auth/profile", clients, seconds, get("/api/auth/profile".into())).await,
            drive("GET /api/tasks/{id} (working set of 1,000)", clients, seconds, one_task(1_000)).await,
            drive("GET /api/tasks/{id} (working set of 1,000), access token", clients, seconds, one_task_as(pat.clone(), 1_000)).await,
            drive("GET /api/tasks/{id} (uniform over 100,000)", clients, seconds, one_task(usize::MAX)).await,
            drive("GET /api/tasks (first 50 of 100,000 assigned)", clients, seconds, get("/api/tasks?limit=50".into())).await,
            drive(
                "GET /api/tasks (project, status=done, 50)",
                clients,
                seconds,
                get(format!("/api/tasks?scope=all&project_id={project_id}&status=done&limit=50")),
            )
            .await,
            drive("POST /api/tasks (durable create)", clients, seconds, create).await,
            drive("PATCH /api/tasks/{id} (durable update)", clients, seconds, update).await,
            // Logins are bcrypt-bound (cost 12); one client per core shows the real latency.
            drive("POST /api/auth/login (bcrypt cost 12)", cores, seconds, login("bench@example.com", PASSWORD, 200)).await,
            // One client each: the two failures must take the same time.
            drive("POST /api/auth/login, wrong password", 1, seconds, login("bench@example.com", "wrong password!", 401)).await,
            drive("POST /api/auth/login, unknown email", 1, seconds, login("nobody@example.com", PASSWORD, 401)).await,
        ];
        let web = web_rows(&client, &base, &token, team_id, user_id, clients, seconds).await;
        index_caught_up(&client, &base).await;
        let mut search = search_rows(&client, &base, &token, clients, seconds, seed_tasks).await;
        search.push(freshness_row(&client, &base, &token, project_id).await);

        // A login storm in the background; health must stay fast (bcrypt is bounded).
        let storm = tokio::spawn(drive("storm", clients, seconds, login("bench@example.com", PASSWORD, 200)));
        rows.push(drive("GET /api/health during a login storm", clients, seconds, get("/api/health".into())).await);
        storm.await.unwrap();

        // Attachments: uploads of distinct content (no dedupe) and downloads, on a personal task.
        let file_task: serde_json::Value = client
            .post(format!("{base}/api/tasks"))
            .bearer_auth(&token)
            .json(&json!({"title": "Files"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let file_task = file_task["id"].as_str().unwrap().to_string();
        let upload = |size: usize| {
            let (client, url, token, counter) = (client.clone(), format!("{base}/api/tasks/{file_task}/attachments"), token.clone(), counter.clone());
            move || {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let request = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
                    .body(upload_body(n, size));
                async move { request.send().await.is_ok_and(|r| r.status().as_u16() == 201) }
            }
        };
        let stored = |size: usize| {
            let (client, url, token) = (client.clone(), format!("{base}/api/tasks/{file_task}/attachments"), token.clone());
            async move {
                let reply: serde_json::Value = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
                    .body(upload_body(usize::MAX, size))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                reply["items"][0]["content_url"].as_str().unwrap().to_string()
            }
        };
        let download = |content_url: String, size: usize| {
            let (client, url, token) = (client.clone(), format!("{base}{content_url}"), token.clone());
            move || {
                let request = client.get(&url).bearer_auth(&token);
                async move {
                    match request.send().await {
                        Ok(r) if r.status().is_success() => r.bytes().await.is_ok_and(|b| b.len() == size),
                        _ => false,
                    }
                }
            }
        };
        let (small, large) = (stored(MIB).await, stored(50 * MIB).await);
        let mut files = vec![
            (MIB, drive("upload 1 MiB", 4, seconds, upload(MIB)).await),
            (MIB, drive("download 1 MiB", 4, seconds, download(small, MIB)).await),
            (50 * MIB, drive("upload 50 MiB", 1, seconds, upload(50 * MIB)).await),
            (50 * MIB, drive("download 50 MiB", 1, seconds, download(large, 50 * MIB)).await),
        ];
        let before = memory_mib("VmRSS:");
        // Resets the peak (VmHWM) to the current RSS.
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let started = Instant::now();
        let status = streamed_upload(&base, &token, &file_task, 100 * MIB).await;
        let took = started.elapsed();
        assert_eq!(status, 201, "the 100 MiB upload is stored");
        let peak = memory_mib("VmHWM:");
        files.push((
            100 * MIB,
            Row {
                operation: format!("upload 100 MiB, streamed (RSS {before:.0} MiB before, peak {peak:.0} MiB during)"),
                clients: 1,
                requests: 1,
                per_second: 1.0 / took.as_secs_f64(),
                p50: took,
                p99: took,
                errors: 0,
            },
        ));

        let feed_task = {
            let (client, url, token) = (client.clone(), format!("{base}/api/tasks"), token.clone());
            move || {
                let request = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"title": "live", "project_id": project_id}));
                async move {
                    let reply: serde_json::Value = request.send().await.ok()?.json().await.ok()?;
                    reply["id"].as_str().map(str::to_string)
                }
            }
        };
        let sockets = env_or("BENCH_SOCKETS", 1000) as usize;
        let feed = realtime_rows(&base, &token, sockets, seconds, feed_task).await;

        let _ = stop.send(());
        server.await.unwrap().unwrap();
        println!("\nseeded {seed_tasks} tasks into the store in {:.2} s", seed_time.as_secs_f64());

        let mut indexing = vec![
            format!("| catch-up from the change log at start, {seed_tasks} seeded tasks | {:.2} s | {:.0} tasks/s |", index_time.as_secs_f64(), seed_tasks as f64 / index_time.as_secs_f64()),
            rebuild_row(data.path()),
        ];

        // Phase 4: the store grown to the large size, rebuilt offline, searched again.
        let large = env_or("BENCH_LARGE_TASKS", 1_000_000) as usize;
        if large > seed_tasks {
            let seeded = Instant::now();
            seed(data.path(), seed_tasks, large - seed_tasks, user_id, team_id, project_id);
            println!("seeded {} more tasks in {:.2} s", large - seed_tasks, seeded.elapsed().as_secs_f64());
            indexing.push(rebuild_row(data.path()));
            let (base, stop, server) = start(data.path()).await;
            index_caught_up(&client, &base).await;
            let token = login_token(&client, &base).await;
            search.extend(search_rows(&client, &base, &token, clients, seconds, large).await);
            let _ = stop.send(());
            server.await.unwrap().unwrap();
        }
        let hooks = webhook_rows(env_or("BENCH_WEBHOOK_EVENTS", 2000) as usize).await;
        (rows, files, feed, search, indexing, web, hooks)
    });
    let (rows, files, feed, search, indexing, web, hooks) = rows;

    let health = rows[0].per_second;
    println!(
        "\ntasker load benchmark: {} s per row, {} cores\n",
        seconds.as_secs(),
        cores
    );
    print_requests("operation", &rows, health);
    println!();
    print_requests("web page (HTML)", &web, health);
    if web_only {
        return;
    }

    println!("\n| attachments | clients | requests | MiB/s | p50 ms | p99 ms | errors |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (size, row) in &files {
        println!(
            "| {} | {} | {} | {:.0} | {} | {} | {} |",
            row.operation,
            row.clients,
            row.requests,
            row.per_second * *size as f64 / MIB as f64,
            ms(row.p50),
            ms(row.p99),
            row.errors
        );
    }

    println!();
    print_requests("search", &search, health);

    println!("\n| search index | time | throughput |");
    println!("|---|---:|---:|");
    for line in &indexing {
        println!("{line}");
    }

    println!("\n| real-time feed | sockets | messages | rate | p50 ms | p99 ms |");
    println!("|---|---:|---:|---:|---:|---:|");
    for line in &feed {
        println!("{line}");
    }

    println!("\n| webhooks | events | seconds | events/s delivered |");
    println!("|---|---:|---:|---:|");
    for line in &hooks {
        println!("{line}");
    }
}

/// Webhook throughput: a server whose hook may reach loopback, `events` tasks created through
/// the API (one writer), each delivered as a signed POST to a fast receiver on this machine
/// that answers 204 at once: live (timed from the first write to the last event received),
/// and a backlog drained once the hook is switched back on.
async fn webhook_rows(events: usize) -> Vec<String> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let received = std::sync::Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    let counter = received.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let counter = counter.clone();
                        async move {
                            use http_body_util::BodyExt;
                            let _ = req.into_body().collect().await;
                            counter.fetch_add(1, Ordering::SeqCst);
                            Ok::<_, std::convert::Infallible>(
                                hyper::Response::builder()
                                    .status(204)
                                    .body(http_body_util::Empty::<bytes::Bytes>::new())
                                    .unwrap(),
                            )
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let data = tempfile::tempdir().expect("temp dir");
    let mut config = tasker::Config::new(data.path());
    config.rate_limits = None;
    config.bcrypt_cost = 4;
    config.webhook_allowed_hosts = tasker::net::egress::AllowedHosts::parse("loopback").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tasker::serve(config, listener, async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let post = |path: &str, token: Option<&str>, body: serde_json::Value| {
        let mut request = client.post(format!("{base}{path}")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            request
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let auth = post(
        "/api/auth/register",
        None,
        json!({"email": "hooks@example.com", "name": "Hooks", "password": PASSWORD}),
    )
    .await;
    let token = auth["token"].as_str().unwrap().to_string();
    let team = post("/api/teams", Some(&token), json!({"name": "Hooks"})).await;
    let team = team["id"].as_str().unwrap().to_string();
    let project = post(
        "/api/projects",
        Some(&token),
        json!({"team_id": team, "name": "Hooks"}),
    )
    .await;
    let project = project["id"].as_str().unwrap().to_string();
    let hook = post(
        &format!("/api/teams/{team}/webhooks"),
        Some(&token),
        json!({"url": hook_url, "events": ["task.created"]}),
    )
    .await;
    assert!(hook["secret"].is_string(), "the hook is made: {hook}");
    let started = Instant::now();
    for i in 0..events {
        post(
            "/api/tasks",
            Some(&token),
            json!({"title": format!("hook {i}"), "project_id": project}),
        )
        .await;
    }
    let all_received = |count: usize, since: Instant| {
        let received = received.clone();
        async move {
            while received.load(Ordering::SeqCst) < count {
                assert!(
                    since.elapsed() < Duration::from_secs(600),
                    "the webhook deliveries stalled"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            since.elapsed()
        }
    };
    let live = all_received(events, started).await;
    // A backlog: the hook is switched off while `events` more tasks are made, then on again;
    // timed from switching it on until the last of them arrived (delivery alone).
    let hook_path = format!(
        "{base}/api/teams/{team}/webhooks/{}",
        hook["id"].as_str().unwrap()
    );
    let switch = |enabled: bool| {
        let request = client
            .patch(&hook_path)
            .bearer_auth(&token)
            .json(&json!({ "enabled": enabled }));
        async move { assert!(request.send().await.unwrap().status().is_success()) }
    };
    switch(false).await;
    for i in 0..events {
        post(
            "/api/tasks",
            Some(&token),
            json!({"title": format!("backlog {i}"), "project_id": project}),
        )
        .await;
    }
    let resumed = Instant::now();
    switch(true).await;
    let backlog = all_received(2 * events, resumed).await;
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    let row = |what: &str, took: Duration| {
        format!(
            "| {what} | {events} | {:.2} | {:.0} |",
            took.as_secs_f64(),
            events as f64 / took.as_secs_f64()
        )
    };
    vec![
        row(
            "task.created to a local receiver, live (one writer, writes included)",
            live,
        ),
        row(
            "a backlog of task.created drained after the hook is switched on",
            backlog,
        ),
    ]
}
