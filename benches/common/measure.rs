//! Timing pieces shared by the benchmarks (`load`, `scale`): concurrent client loops with
//! their latency percentiles, and small formatting helpers.

use std::future::Future;
use std::time::{Duration, Instant};

/// One measured operation: how many requests `clients` loops made and how long they took.
pub struct Row {
    pub operation: String,
    pub clients: usize,
    pub requests: usize,
    pub per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub errors: usize,
}

/// The JSON body `request` answers with (a set-up step: any failure ends the benchmark).
pub async fn json_of(request: reqwest::RequestBuilder) -> serde_json::Value {
    request.send().await.unwrap().json().await.unwrap()
}

/// Runs `clients` concurrent loops of `request` for `duration`; `request` returns success.
pub async fn drive<F, Fut>(operation: &str, clients: usize, duration: Duration, request: F) -> Row
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
    Row {
        operation: operation.to_string(),
        clients,
        requests: latencies.len(),
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        errors,
    }
}

/// The `p` quantile (0 to 1) of `sorted`.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}

/// The variable `name` as a number, or `default`.
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// `text` percent-encoded for a query string.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A `VmRSS:`/`VmHWM:`/`RssAnon:`/`RssFile:` line of `/proc/<process>/status` (`process` a pid
/// or `self`), in MiB; 0 where there is no such file (not Linux, or the process is gone).
pub fn status_mib(process: &str, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{process}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Reads a `tasker serve` child's JSON log from `stderr` on a thread of its own (draining it,
/// so the child never blocks on a full pipe), echoes warnings and errors, and returns the
/// address it listens on once it says so; panics after `wait`.
pub fn listening_address(stderr: std::process::ChildStderr, wait: Duration) -> String {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if let Some(address) = event["address"].as_str() {
                let _ = tx.send(address.to_string());
            } else if matches!(event["level"].as_str(), Some("WARN" | "ERROR")) {
                eprintln!("tasker serve: {line}");
            }
        }
    });
    rx.recv_timeout(wait).expect("the server listens")
}
