//! The binary: flags, environment, exit codes, and one-line errors.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_tasker");

/// A `tasker` command with a clean environment (no stray TASKER_*, PORT or JWT_SECRET).
fn tasker(cwd: &Path) -> Command {
    let mut command = Command::new(BIN);
    command.current_dir(cwd).stdin(Stdio::null());
    for (key, _) in std::env::vars() {
        if key.starts_with("TASKER_")
            || ["PORT", "JWT_SECRET", "RUST_LOG", "LOG_LEVEL"].contains(&key.as_str())
        {
            command.env_remove(key);
        }
    }
    command
}

fn run(command: &mut Command) -> Output {
    command.output().expect("tasker runs")
}

/// Asserts exit code 2 and a single `error:` line that names `option`.
fn assert_config_error(output: &Output, option: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    let lines: Vec<_> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected, got: {stderr}");
    assert!(
        lines[0].starts_with("error: ") && lines[0].contains(option),
        "{option} not named in: {stderr}"
    );
    assert!(!stderr.contains("panicked"));
}

#[test]
fn version_and_help() {
    let tmp = tempfile::tempdir().unwrap();
    let version = run(tasker(tmp.path()).arg("--version"));
    assert!(version.status.success());
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("tasker {}", env!("CARGO_PKG_VERSION"))
    );
    let help = run(tasker(tmp.path()).args(["serve", "--help"]));
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--listen",
        "--data-dir",
        "--jwt-secret",
        "--token-ttl",
        "--bcrypt-cost",
        "--log-format",
        "TASKER_DATA_DIR",
    ] {
        assert!(text.contains(flag), "{flag} missing from help");
    }
}

#[test]
fn bad_values_are_one_line_errors_with_exit_code_2() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--listen".into(), "not-an-address".into()], "--listen"),
        (vec!["--bcrypt-cost".into(), "3".into()], "--bcrypt-cost"),
        (vec!["--bcrypt-cost".into(), "40".into()], "--bcrypt-cost"),
        (vec!["--token-ttl".into(), "soon".into()], "--token-ttl"),
        (vec!["--log-format".into(), "xml".into()], "--log-format"),
        (vec!["--jwt-secret".into(), "short".into()], "--jwt-secret"),
        (
            vec!["--data-dir".into(), file.join("sub").display().to_string()],
            "--data-dir",
        ),
    ];
    for (args, option) in cases {
        let output = run(tasker(tmp.path()).arg("serve").args(&args));
        assert_config_error(&output, option);
    }
}

#[test]
fn environment_and_dotenv_values_are_checked_too() {
    let tmp = tempfile::tempdir().unwrap();
    assert_config_error(
        &run(tasker(tmp.path())
            .arg("serve")
            .env("TASKER_BCRYPT_COST", "99")),
        "--bcrypt-cost",
    );
    assert_config_error(
        &run(tasker(tmp.path())
            .arg("serve")
            .env("TASKER_LISTEN", "nowhere")),
        "--listen",
    );
    assert_config_error(
        &run(tasker(tmp.path()).arg("serve").env("LOG_LEVEL", "loud")),
        "LOG_LEVEL",
    );
    // A .env in the working directory is read (and the real environment wins over it).
    std::fs::write(tmp.path().join(".env"), "TASKER_BCRYPT_COST=3\n").unwrap();
    assert_config_error(&run(tasker(tmp.path()).arg("serve")), "--bcrypt-cost");
    // With the environment's valid cost the command gets past clap and fails on the secret
    // instead: proof the environment beat the .env value.
    let output = run(tasker(tmp.path())
        .args(["serve", "--jwt-secret", "short"])
        .env("TASKER_BCRYPT_COST", "5"));
    assert_config_error(&output, "--jwt-secret");
}

#[test]
fn openapi_command_prints_the_spec() {
    let tmp = tempfile::tempdir().unwrap();
    let output = run(tasker(tmp.path()).arg("openapi"));
    assert!(output.status.success());
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let built: serde_json::Value = serde_json::from_str(&tasker::api::spec_json()).unwrap();
    assert_eq!(printed, built);
}

#[test]
fn openapi_into_a_closed_pipe_ends_quietly() {
    use std::io::Read;
    let tmp = tempfile::tempdir().unwrap();
    let mut child = tasker(tmp.path())
        .arg("openapi")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tasker runs");
    let mut stdout = child.stdout.take().unwrap();
    let mut start = [0u8; 16];
    stdout.read_exact(&mut start).unwrap();
    assert_eq!(start[0], b'{');
    // Like `| head`: the reader is gone while the spec (far more than a pipe holds) is written.
    drop(stdout);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
    assert!(stderr.trim().is_empty(), "stderr: {stderr}");
    assert!(output.status.success(), "{:?}", output.status);
}

#[test]
fn a_metrics_token_without_metrics_is_warned_about_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let args = ["--listen", "127.0.0.1:0", "--metrics-token", "s3cret"];
    let (server, lines, _) = spawn_server_lines(tmp.path(), &args, &[]);
    let warning = lines
        .iter()
        .find(|line| line.contains("WARN"))
        .unwrap_or_else(|| panic!("no warning in {lines:?}"));
    assert!(
        warning.contains("--metrics-token") && warning.contains("--metrics ("),
        "{warning}"
    );
    assert!(!warning.contains("s3cret"), "the token is never logged");
    drop(server);
}

/// A child `tasker serve` that is killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `tasker serve` with `args` and waits for its "listening" log line; returns the child,
/// that line, and the address it reports (so tests never guess a free port).
fn spawn_server(cwd: &Path, args: &[&str], envs: &[(&str, &str)]) -> (Child, String, SocketAddr) {
    // The tests' reqwest clients need rustls' provider, which no in-process server installed.
    tasker::net::egress::install_crypto_provider();
    let (child, mut lines, address) = spawn_server_lines(cwd, args, envs);
    (child, lines.pop().unwrap(), address)
}

/// [`spawn_server`], returning every log line up to and including the "listening" one.
fn spawn_server_lines(
    cwd: &Path,
    args: &[&str],
    envs: &[(&str, &str)],
) -> (Child, Vec<String>, SocketAddr) {
    let mut command = tasker(cwd);
    command
        .arg("serve")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (key, value) in envs {
        command.env(key, value);
    }
    let mut child = Child(command.spawn().expect("tasker starts"));
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Keep draining after the line is found, so the server never blocks on a full pipe.
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    while !lines
        .last()
        .is_some_and(|line: &String| line.contains("listening"))
    {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("server reports that it listens");
        lines.push(line);
    }
    let line = lines.last().unwrap();
    let address = line
        .split(|c: char| c.is_whitespace() || c == '"' || c == ',')
        .find_map(|word| {
            word.strip_prefix("address=")
                .or_else(|| word.parse::<SocketAddr>().ok().map(|_| word))
        })
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    (child, lines, address)
}

fn get_health(address: SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    reply
}

#[test]
fn serve_uses_port_and_a_second_server_on_the_same_data_dir_fails_fast() {
    let tmp = tempfile::tempdir().unwrap();
    let (first, line, address) =
        spawn_server(tmp.path(), &["--bcrypt-cost", "4"], &[("PORT", "0")]);
    assert_eq!(
        address.ip().to_string(),
        "127.0.0.1",
        "PORT keeps the default host"
    );
    assert_ne!(address.port(), 3000, "PORT=0 was applied");
    assert!(
        !line.contains('\u{1b}'),
        "no colour codes when stderr is not a terminal: {line:?}"
    );
    assert!(get_health(address).starts_with("HTTP/1.1 200"));
    assert!(
        tmp.path().join("tasker-data/tasker.redb").exists(),
        "default data dir is ./tasker-data"
    );
    assert!(tmp.path().join("tasker-data/jwt-secret").exists());

    let second = run(tasker(tmp.path()).args(["serve", "--listen", "127.0.0.1:0"]));
    assert_config_error(&second, "--data-dir");
    assert!(String::from_utf8_lossy(&second.stderr).contains("in use"));
    drop(first);
}

#[test]
fn json_logs_are_one_object_per_line() {
    let tmp = tempfile::tempdir().unwrap();
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
        "--bcrypt-cost",
        "4",
    ];
    let (server, line, address) = spawn_server(tmp.path(), &args, &[]);
    let event: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(event["level"], "INFO");
    assert_eq!(event["address"], address.to_string());
    drop(server);
}

/// Registers an account on a running server; returns its access token.
async fn register(client: &reqwest::Client, base: &str, email: &str) -> String {
    let auth: serde_json::Value = client
        .post(format!("{base}/api/auth/register"))
        .json(&serde_json::json!({"email": email, "name": "Operator", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    auth["token"].as_str().unwrap().to_string()
}

/// Whether `/api/health` shows the search index ready with nothing left to apply.
async fn index_current(client: &reqwest::Client, base: &str) -> bool {
    let health: serde_json::Value = client
        .get(format!("{base}/api/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let index = &health["search_index"];
    index["status"] == "ready" && index["lag"] == 0
}

/// Every write the server acknowledged is still there after `kill -9` (group commit answers
/// only once a write is durable), and the search index catches up with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    // Many writers from one address: the rate limits would refuse them.
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--bcrypt-cost",
        "4",
        "--rate-limit",
        "off",
    ];
    let (mut server, _, address) = spawn_server(tmp.path(), &args, &[]);
    let base = format!("http://{address}");
    let client = reqwest::Client::new();
    let token = register(&client, &base, "crash@example.com").await;

    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let (client, base, token, acknowledged) = (
                client.clone(),
                base.clone(),
                token.clone(),
                acknowledged.clone(),
            );
            tokio::spawn(async move {
                for i in 0..10_000 {
                    let body = serde_json::json!({"title": format!("w{w} #{i}")});
                    let Ok(response) = client
                        .post(format!("{base}/api/tasks"))
                        .bearer_auth(&token)
                        .json(&body)
                        .send()
                        .await
                    else {
                        return;
                    };
                    if response.status() != 201 {
                        return;
                    }
                    let Ok(task) = response.json::<serde_json::Value>().await else {
                        return;
                    };
                    acknowledged.lock().unwrap().push((
                        task["id"].as_str().unwrap().to_string(),
                        format!("\"w{w} {i}\""),
                    ));
                }
            })
        })
        .collect();
    // Let the writers run, then pull the plug mid-stream.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.0.kill().unwrap();
    let _ = server.0.wait();
    for writer in writers {
        let _ = writer.await;
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 50,
        "the test wrote too little to mean anything: {}",
        acknowledged.len()
    );

    let (_server, _, address) = spawn_server(tmp.path(), &args, &[]);
    let base = format!("http://{address}");
    for (id, _) in &acknowledged {
        let status = client
            .get(format!("{base}/api/tasks/{id}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "acknowledged task {id} was lost");
    }

    // The search index resumes from its last commit and catches up with the log.
    let started = std::time::Instant::now();
    while !index_current(&client, &base).await {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the index never caught up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The writes closest to the kill are the ones most at risk.
    for (id, phrase) in acknowledged.iter().rev().take(32) {
        let page: serde_json::Value = client
            .get(format!(
                "{base}/api/tasks/search?limit=200&q={}",
                phrase.replace('"', "%22").replace(' ', "%20")
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let found = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|hit| hit["task"]["id"] == id.as_str());
        assert!(found, "search for {phrase} misses {id}: {page}");
    }
}

/// The peak resident memory of a process, in bytes (Linux).
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

/// Sends a one-file multipart upload of `size` bytes from one reused 64 KiB chunk (the client
/// holds no copy of the file) and returns the response's status line, if one could be read.
fn stream_upload(address: SocketAddr, token: &str, task: &str, size: usize) -> Option<String> {
    use std::io::{Read, Write};
    let boundary = "tasker-cli-test";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let request = format!(
        "POST /api/tasks/{task}/attachments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{head}",
        head.len() + size + tail.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let chunk = vec![0x42u8; 64 << 10];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len());
        // The server may refuse and close early (413): stop writing, read its answer.
        if stream.write_all(&chunk[..n]).is_err() {
            break;
        }
        left -= n;
    }
    let _ = stream.write_all(tail.as_bytes());
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.lines().next().map(str::to_owned)
}

/// Uploads stream to disk: a 64 MiB file moves the server's peak memory by a few MiB, not
/// 64; a file over the limit is refused with nothing kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_stream_in_flat_memory_and_oversize_ones_leave_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let limit = (96 << 20).to_string();
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--bcrypt-cost",
        "4",
        "--max-upload-bytes",
        &limit,
    ];
    let (server, _, address) = spawn_server(tmp.path(), &args, &[]);
    let base = format!("http://{address}");
    let client = reqwest::Client::new();
    let auth: serde_json::Value = client
        .post(format!("{base}/api/auth/register"))
        .json(&serde_json::json!({"email": "big@example.com", "name": "Big", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = auth["token"].as_str().unwrap().to_string();
    let task: serde_json::Value = client
        .post(format!("{base}/api/tasks"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"title": "Big files"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let task = task["id"].as_str().unwrap().to_string();
    let pid = server.0.id();
    let before = peak_rss(pid);

    let (t, k) = (token.clone(), task.clone());
    let stored = tokio::task::spawn_blocking(move || stream_upload(address, &t, &k, 64 << 20))
        .await
        .unwrap();
    assert!(
        stored.as_deref().is_some_and(|s| s.contains(" 201 ")),
        "{stored:?}"
    );
    let grown = peak_rss(pid).saturating_sub(before);
    assert!(
        grown < 24 << 20,
        "a 64 MiB upload grew the server's peak RSS by {} MiB",
        grown >> 20
    );

    let (t, k) = (token.clone(), task.clone());
    let refused = tokio::task::spawn_blocking(move || stream_upload(address, &t, &k, 100 << 20))
        .await
        .unwrap();
    if let Some(status) = refused {
        assert!(status.contains(" 413 "), "{status}");
    }
    let grown = peak_rss(pid).saturating_sub(before);
    assert!(grown < 24 << 20, "peak RSS grew by {} MiB", grown >> 20);
    let temp = std::fs::read_dir(tmp.path().join("tasker-data/blobs/tmp"))
        .unwrap()
        .count();
    assert_eq!(temp, 0, "the refused upload left nothing behind");
    let list: serde_json::Value = client
        .get(format!("{base}/api/tasks/{task}/attachments"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

/// SIGTERM (what systemd sends): the server stops accepting, finishes, commits the search
/// index and exits 0; the next start finds the index current, with no rebuild or catch-up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_cleanly_with_the_index_committed() {
    let tmp = tempfile::tempdir().unwrap();
    let args = ["--listen", "127.0.0.1:0", "--bcrypt-cost", "4"];
    let (mut server, _, address) = spawn_server(tmp.path(), &args, &[]);
    let base = format!("http://{address}");
    let client = reqwest::Client::new();
    let token = register(&client, &base, "term@example.com").await;
    let created = client
        .post(format!("{base}/api/tasks"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"title": "Written just before the stop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    let pid = server.0.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(sent.success());
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM");

    let (_server, _, address) = spawn_server(tmp.path(), &args, &[]);
    let base = format!("http://{address}");
    assert!(
        index_current(&client, &base).await,
        "the index opens current, with nothing to rebuild or apply"
    );
    let page: serde_json::Value = client
        .get(format!("{base}/api/tasks/search?q=stop"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        page["items"][0]["task"]["title"],
        "Written just before the stop"
    );
}

/// The one `error:` line of a failed `tasker serve` (exit code 2), without the prefix.
fn config_error(output: &Output, option: &str) -> String {
    assert_config_error(output, option);
    String::from_utf8_lossy(&output.stderr)
        .trim()
        .trim_start_matches("error: ")
        .to_string()
}

#[test]
fn bad_values_list_the_valid_ones_and_name_the_flag_variable_or_env_line() {
    let tmp = tempfile::tempdir().unwrap();
    let serve = |args: &[&str], envs: &[(&str, &str)]| {
        let mut command = tasker(tmp.path());
        command.arg("serve").args(args);
        for (key, value) in envs {
            command.env(key, value);
        }
        run(&mut command)
    };
    let error = config_error(&serve(&["--registration", "maybe"], &[]), "--registration");
    assert_eq!(
        error,
        "--registration maybe: expected one of open, invite-only, closed"
    );
    let error = config_error(&serve(&["--log-format=xml"], &[]), "--log-format");
    assert_eq!(error, "--log-format xml: expected one of text, json");
    let error = config_error(&serve(&["--rate-limit", "maybe"], &[]), "--rate-limit");
    assert!(error.contains("expected one of on, off"), "{error}");
    let error = config_error(
        &serve(&[], &[("TASKER_REGISTRATION", "maybe")]),
        "TASKER_REGISTRATION",
    );
    assert_eq!(
        error,
        "TASKER_REGISTRATION=maybe (from the environment, for --registration): expected one of \
         open, invite-only, closed"
    );
    // A flag wins over the bad variable: no error about it.
    let output = serve(
        &["--registration", "closed", "--jwt-secret", "short"],
        &[("TASKER_REGISTRATION", "maybe")],
    );
    assert_config_error(&output, "--jwt-secret");

    // .env: the line is named; the variable's value is shown, a secret's never.
    std::fs::write(
        tmp.path().join(".env"),
        "# settings\nTASKER_BCRYPT_COST=4\nexport TASKER_REGISTRATION=maybe\n",
    )
    .unwrap();
    let error = config_error(&serve(&[], &[]), "TASKER_REGISTRATION");
    assert_eq!(
        error,
        "TASKER_REGISTRATION=maybe (from .env line 3, for --registration): expected one of \
         open, invite-only, closed"
    );
    std::fs::write(
        tmp.path().join(".env"),
        "TASKER_TOKEN_TTL=soon\nCORS_ORIGINS=*\nJWT_SECRET=short-secret\n",
    )
    .unwrap();
    let error = config_error(&serve(&[], &[]), "TASKER_TOKEN_TTL=soon (from .env line 1");
    assert!(error.contains("for --token-ttl"), "{error}");
    let error = config_error(
        &serve(&["--token-ttl", "1h"], &[]),
        "CORS_ORIGINS=* (from .env line 2, for --cors-origins)",
    );
    assert!(error.contains("is not an origin"), "{error}");
    let error = config_error(
        &serve(&["--token-ttl", "1h", "--cors-origins", ""], &[]),
        "JWT_SECRET (from .env line 3, for --jwt-secret)",
    );
    assert!(
        !error.contains("short-secret"),
        "a secret was shown: {error}"
    );
    let error = config_error(
        &serve(
            &["--token-ttl", "1h", "--cors-origins", "", "--jwt-secret"],
            &[],
        ),
        "--jwt-secret",
    );
    assert!(error.contains("a value is required"), "{error}");
    std::fs::write(tmp.path().join(".env"), "\nLOG_LEVEL=loud\n").unwrap();
    let error = config_error(&serve(&[], &[]), "LOG_LEVEL=loud (from .env line 2)");
    assert!(
        error.contains("expected one of error, warn, info"),
        "{error}"
    );
}

/// Where `tasker serve` listens, with `args`, `envs` and a `.env` of `dotenv`, and the
/// warnings it logged first.
fn listening(args: &[&str], envs: &[(&str, &str)], dotenv: &str) -> (SocketAddr, String) {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join(".env"), dotenv).unwrap();
    let mut args = args.to_vec();
    args.extend(["--bcrypt-cost", "4"]);
    let (server, lines, address) = spawn_server_lines(tmp.path(), &args, envs);
    drop(server);
    (address, lines.join("\n"))
}

#[test]
fn listen_and_port_follow_flag_then_environment_then_dotenv() {
    // 127.0.0.2 is loopback too (all of 127.0.0.0/8 on Linux): it tells --listen's address
    // from the 127.0.0.1 that --port keeps.
    let other = "127.0.0.2:0";
    let (address, log) = listening(&["--port", "0"], &[("TASKER_LISTEN", other)], "");
    assert_eq!(
        address.ip().to_string(),
        "127.0.0.1",
        "--port beats TASKER_LISTEN"
    );
    assert!(
        log.contains("TASKER_LISTEN=127.0.0.2:0 (from the environment, for --listen) is ignored"),
        "{log}"
    );
    let (address, _) = listening(&[], &[("PORT", "0")], "TASKER_LISTEN=127.0.0.2:0\n");
    assert_eq!(address.ip().to_string(), "127.0.0.1", "PORT beats .env");
    let (address, log) = listening(&[], &[("TASKER_LISTEN", other), ("PORT", "0")], "");
    assert_eq!(
        address.ip().to_string(),
        "127.0.0.2",
        "same level: --listen"
    );
    assert!(
        log.contains("PORT=0 (from the environment, for --port) is ignored"),
        "{log}"
    );
    let (address, _) = listening(&["--listen", other], &[("PORT", "0")], "");
    assert_eq!(address.ip().to_string(), "127.0.0.2", "--listen beats PORT");
    let (address, _) = listening(&[], &[], "PORT=0\nTASKER_LISTEN=127.0.0.2:0\n");
    assert_eq!(address.ip().to_string(), "127.0.0.2", "same level in .env");
    // The environment beats .env for the same variable; an empty one counts as unset.
    let (address, _) = listening(&[], &[("TASKER_LISTEN", other)], "TASKER_LISTEN=nonsense\n");
    assert_eq!(address.ip().to_string(), "127.0.0.2");
    let (address, _) = listening(&[], &[("TASKER_LISTEN", ""), ("PORT", "0")], "");
    assert_eq!(
        address.ip().to_string(),
        "127.0.0.1",
        "an empty TASKER_LISTEN is unset"
    );
}

/// Runs `tasker ARGS` in `cwd` with `input` on standard input.
fn run_with_input(cwd: &Path, args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = tasker(cwd)
        .args(args)
        .env("TASKER_BCRYPT_COST", "4")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn the_server_role_is_user_in_the_listing_and_import_reads_the_old_member() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();
    for (email, admin) in [("root@example.com", true), ("plain@example.com", false)] {
        let mut args = vec![
            "user",
            "create",
            "--data-dir",
            d,
            "--email",
            email,
            "--name",
            "X",
        ];
        if admin {
            args.push("--admin");
        }
        let output = run_with_input(tmp.path(), &args, "correct horse battery\n");
        assert!(output.status.success(), "{output:?}");
    }
    let roles = |data_dir: &str| {
        let output = run(tasker(tmp.path()).args(["user", "list", "--data-dir", data_dir]));
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .skip(1)
            .map(|line| {
                let cells: Vec<&str> = line.split_whitespace().collect();
                format!("{} {}", cells[1], cells[3])
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        roles(d),
        ["root@example.com admin", "plain@example.com user"]
    );

    let file = tmp.path().join("export.json");
    let output = run(tasker(tmp.path())
        .args(["export", "--data-dir", d, "--out"])
        .arg(&file));
    assert!(output.status.success(), "{output:?}");
    let text = std::fs::read_to_string(&file).unwrap();
    let old = text.replace("\"role\":\"user\"", "\"role\":\"member\"");
    assert_ne!(old, text, "the export names the role: {text}");
    std::fs::write(&file, old).unwrap();
    let copy = tmp.path().join("copy");
    let output = run(tasker(tmp.path())
        .args(["import", "--data-dir", copy.to_str().unwrap(), "--from"])
        .arg(&file));
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        roles(copy.to_str().unwrap()),
        ["root@example.com admin", "plain@example.com user"]
    );
}
