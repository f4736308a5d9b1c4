//! Load benchmark: starts tasker in-process on a temporary data directory, drives it with
//! concurrent keep-alive HTTP clients and prints a markdown table.
//!
//!     cargo bench --bench load
//!
//! Environment: `BENCH_SECONDS` (per row, default 5), `BENCH_CLIENTS` (default 32). The load
//! generator runs on the same machine as the server, so absolute figures are a floor; the
//! ratio to `/api/health`, measured in the same run, is the comparable number.

use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::runtime::Runtime;

const PASSWORD: &str = "correct horse battery";

struct Row {
    operation: String,
    clients: usize,
    requests: usize,
    per_second: f64,
    p50: Duration,
    p99: Duration,
    errors: usize,
}

/// Runs `clients` concurrent loops of `request` for `duration`; `request` returns success.
async fn drive<F, Fut>(operation: &str, clients: usize, duration: Duration, request: F) -> Row
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = bool> + Send,
{
    let started = Instant::now();
    let deadline = started + duration;
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let request = request.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0;
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    if !request().await {
                        errors += 1;
                    }
                    latencies.push(sent.elapsed());
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for worker in workers {
        let (mut l, e) = worker.await.expect("worker");
        latencies.append(&mut l);
        errors += e;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Row {
        operation: operation.to_string(),
        clients,
        requests: latencies.len(),
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: percentile(0.50),
        p99: percentile(0.99),
        errors,
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn main() {
    let seconds = Duration::from_secs(env_or("BENCH_SECONDS", 5));
    let clients = env_or("BENCH_CLIENTS", 32) as usize;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = Runtime::new().expect("runtime");
    let data = tempfile::tempdir().expect("temp dir");

    let rows = runtime.block_on(async {
        // The server, exactly as `tasker serve` runs it (default bcrypt cost 12).
        let config = tasker::Config::new(data.path());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(tasker::serve(config, listener, async {
            let _ = stopped.await;
        }));

        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(clients * 2)
            .build()
            .unwrap();
        let register = client
            .post(format!("{base}/api/auth/register"))
            .json(&json!({"email": "bench@example.com", "name": "Bench", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        let token = register.json::<serde_json::Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string();

        let get = |path: &str, token: Option<String>| {
            let (client, url) = (client.clone(), format!("{base}{path}"));
            move || {
                let mut request = client.get(&url);
                if let Some(token) = &token {
                    request = request.bearer_auth(token);
                }
                async move { request.send().await.is_ok_and(|r| r.status().is_success()) }
            }
        };
        let login = |email: &'static str, password: &'static str, expect: u16| {
            let (client, url) = (client.clone(), format!("{base}/api/auth/login"));
            move || {
                let request = client
                    .post(&url)
                    .json(&json!({"email": email, "password": password}));
                async move {
                    request
                        .send()
                        .await
                        .is_ok_and(|r| r.status().as_u16() == expect)
                }
            }
        };

        // Warm up connections and caches.
        drive(
            "warm-up",
            clients,
            Duration::from_millis(500),
            get("/api/health", None),
        )
        .await;

        let mut rows = vec![
            drive(
                "GET /api/health",
                clients,
                seconds,
                get("/api/health", None),
            )
            .await,
            drive(
                "GET /api/auth/profile",
                clients,
                seconds,
                get("/api/auth/profile", Some(token.clone())),
            )
            .await,
            // Logins are bcrypt-bound (cost 12); one client per core shows the real latency.
            drive(
                "POST /api/auth/login (bcrypt cost 12)",
                cores,
                seconds,
                login("bench@example.com", PASSWORD, 200),
            )
            .await,
            // One client each: the two failures must take the same time.
            drive(
                "POST /api/auth/login, wrong password",
                1,
                seconds,
                login("bench@example.com", "wrong password!", 401),
            )
            .await,
            drive(
                "POST /api/auth/login, unknown email",
                1,
                seconds,
                login("nobody@example.com", PASSWORD, 401),
            )
            .await,
        ];
        // A login storm in the background; health must stay fast (bcrypt is bounded).
        let storm = tokio::spawn(drive(
            "storm",
            clients,
            seconds,
            login("bench@example.com", PASSWORD, 200),
        ));
        rows.push(
            drive(
                "GET /api/health during a login storm",
                clients,
                seconds,
                get("/api/health", None),
            )
            .await,
        );
        storm.await.unwrap();

        let _ = stop.send(());
        server.await.unwrap().unwrap();
        rows
    });

    let health = rows[0].per_second;
    println!(
        "\ntasker load benchmark: {} s per row, {} cores\n",
        seconds.as_secs(),
        cores
    );
    println!("| operation | clients | requests | req/s | p50 ms | p99 ms | errors | vs health |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for row in &rows {
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
