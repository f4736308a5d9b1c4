//! The server under test: `tasker serve` as a child process, its flags, its resources from
//! `/proc`, and what it logged.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_tasker");

/// What the soak passes for each connection timeout the server offers.
pub const SHORT_TIMEOUTS: [&str; 4] = [
    "--header-timeout",
    "--idle-timeout",
    "--body-timeout",
    "--ws-write-timeout",
];
/// The flags after the soak's own: `TASKER_SOAK_ARGS` when set, else 5 s for each connection
/// timeout this binary has.
pub fn server_args() -> Vec<String> {
    if let Ok(args) = std::env::var("TASKER_SOAK_ARGS") {
        return args.split_whitespace().map(str::to_string).collect();
    }
    let help = Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .expect("tasker runs");
    let help = String::from_utf8_lossy(&help.stdout);
    SHORT_TIMEOUTS
        .iter()
        .filter(|flag| help.contains(&format!("{flag} ")))
        .flat_map(|flag| [flag.to_string(), "5s".to_string()])
        .collect()
}

/// What the server wrote to stderr, as far as the verdict cares.
#[derive(Default)]
pub struct Log {
    pub lines: usize,
    pub errors: Vec<String>,
    pub panics: Vec<String>,
    pub tail: VecDeque<String>,
}

pub struct Server {
    pub child: Mutex<std::process::Child>,
    pub pid: u32,
    pub address: SocketAddr,
    pub log: Arc<Mutex<Log>>,
    pub reader: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Starts `tasker serve` on 127.0.0.1:0 (rate limits off: every client is 127.0.0.1) and
    /// waits for the JSON "listening" line that gives its address.
    pub fn start(dir: &std::path::Path, extra: &[String]) -> Self {
        tasker::net::egress::install_crypto_provider();
        let mut command = Command::new(BIN);
        for (key, _) in std::env::vars() {
            if key.starts_with("TASKER_")
                || ["PORT", "JWT_SECRET", "RUST_LOG", "LOG_LEVEL"].contains(&key.as_str())
            {
                command.env_remove(key);
            }
        }
        let listen = ["serve", "--listen", "127.0.0.1:0", "--log-format", "json"];
        let mut child = command
            .args(listen)
            .args(["--bcrypt-cost", "4", "--data-dir"])
            .arg(dir.join("data"))
            .args(extra)
            .env("TASKER_RATE_LIMIT", "off")
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tasker starts");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Log::default()));
        let (tx, rx) = std::sync::mpsc::channel();
        let shared = log.clone();
        // Drains stderr to the end, so the server never blocks on a full pipe.
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let event: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
                let mut log = shared.lock().unwrap();
                log.lines += 1;
                if let Some(address) = event["address"].as_str()
                    && line.contains("listening")
                {
                    let _ = tx.send(address.to_string());
                }
                if line.contains("panicked") && log.panics.len() < 5 {
                    log.panics.push(line.clone());
                } else if event["level"] == "ERROR" && log.errors.len() < 5 {
                    log.errors.push(line.clone());
                }
                log.tail.push_back(line);
                if log.tail.len() > 30 {
                    log.tail.pop_front();
                }
            }
        });
        let Ok(address) = rx.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            let _ = child.wait();
            let _ = reader.join();
            let tail = Vec::from(std::mem::take(&mut log.lock().unwrap().tail));
            panic!("the server did not start:\n{}", tail.join("\n"));
        };
        Self {
            pid: child.id(),
            child: Mutex::new(child),
            address: address.parse().expect("a socket address"),
            log,
            reader: Some(reader),
        }
    }

    /// How the process ended, if it did.
    pub fn exit_status(&self) -> Option<std::process::ExitStatus> {
        self.child.lock().unwrap().try_wait().ok().flatten()
    }

    /// Resident memory (`VmRSS`, `RssAnon`) in KiB and open descriptors.
    pub fn resources(&self) -> Option<(u64, u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let field = |name: &str| {
            let line = status.lines().find_map(|l| l.strip_prefix(name))?;
            line.split_whitespace().next()?.parse().ok()
        };
        let fds = std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .ok()?
            .count() as u64;
        Some((field("VmRSS:")?, field("RssAnon:").unwrap_or(0), fds))
    }

    /// SIGTERM, then (after 20 s) SIGKILL; returns what it logged.
    pub fn stop(mut self) -> Log {
        let mut child = self.child.lock().unwrap();
        if child.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.pid.to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            match child.try_wait().ok().flatten() {
                Some(status) => println!("server stopped on SIGTERM: {status}"),
                None => println!("server still running 20 s after SIGTERM: killed"),
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        drop(child);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(mut child) = self.child.lock() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
