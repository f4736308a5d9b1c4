//! The benchmark at scale (issue 18): tasker measured from outside, as separate processes of
//! the `tasker` binary, on a synthetic export (`benches/common/synthetic.rs`), with markdown
//! tables on standard output:
//!
//!     SCALE_TASKS=1000000 cargo bench --bench scale
//!
//! Environment: `SCALE_TASKS` (default 1,000,000), `SCALE_SECONDS` (per search or list row,
//! default 5), `SCALE_CLIENTS` (the concurrent rows' clients, default 32), `SCALE_DIR` (where
//! the export, the data directory, the backup and the second export go, in a directory of
//! their own removed at the end; default the system's temporary directory; several GB at a
//! million tasks), `SCALE_EXPORT` (an existing export file to import instead of generating
//! one; its task count is read from the import's report), `SCALE_DAY_WRITES` (the writes of
//! "a day", default 20,000).
//!
//! Steps: generate the export; `tasker import` (time, the child's peak resident memory from
//! `wait4`, data directory bytes); the first `tasker serve` until `/api/health` shows the
//! search index ready (its peak memory so far, `VmHWM`); passwords set with `tasker user
//! reset-password` for an account in one team of the 20 and for one in all of them; search and
//! list rows with one client and with `SCALE_CLIENTS` for the first, search rows with one
//! client for the second; the server's memory after that load; a day of writes (creates,
//! edits, status changes, comments) and the data directory after it; `tasker reindex`, `backup`,
//! `export` and `check` (time, peak memory); a start with a current index. The server logs at
//! `info` except the per-request lines (`tasker::http=warn`), which this process would
//! otherwise read. The load generator shares the machine with the server: latencies are a
//! ceiling of the server's own.
//!
//! Memory: resident memory counts, besides the process's own (anonymous) memory, the pages of
//! memory-mapped files it has touched (the search index's segments, read while tantivy merges
//! them): page cache the kernel takes back without writing anything when memory runs short.
//! So every step reports its own memory's peak (`RssAnon`, sampled every 20 ms), and, where
//! the bench may make a memory cgroup (root, cgroup v1 or v2 with the memory controller), the
//! import, the first start until the index is ready and the offline commands run in one
//! limited to `SCALE_MEMORY_CAP_MIB` (default 256; 0: no cgroup), as on a box with that
//! little memory: a step that needed more would be killed and the bench would stop. Their
//! peak resident memory is then measured under that limit. The search and list load runs
//! after the server left the cgroup.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[path = "common/zipf.rs"]
#[allow(dead_code)]
mod zipf;

#[path = "common/synthetic.rs"]
mod synthetic;

#[path = "common/measure.rs"]
#[allow(dead_code)]
mod measure;
use measure::{Row, drive, encode, env_or, json_of, ms};

const TASKER: &str = env!("CARGO_BIN_EXE_tasker");
const PASSWORD: &str = "correct horse battery";
/// Only the first account is a site admin: the bench signs in as a plain member of team 1.
const ACCOUNT: usize = synthetic::USERS / synthetic::TEAMS + 1;

fn mib(bytes: f64) -> f64 {
    bytes / (1 << 20) as f64
}

/// Waits for the child `pid`: whether it exited with 0, and its peak resident memory in MiB.
fn reap(pid: u32) -> (bool, f64) {
    let mut status = 0;
    // SAFETY: rusage is plain data, all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `status` and `usage` are valid for writes; `pid` is our unreaped child.
        let reaped = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
        if reaped == pid as libc::pid_t {
            break;
        }
        let error = std::io::Error::last_os_error();
        assert!(
            error.kind() == std::io::ErrorKind::Interrupted,
            "wait4: {error}"
        );
    }
    let success = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    // Linux reports ru_maxrss in KiB.
    (success, usage.ru_maxrss as f64 / 1024.0)
}

/// What a finished command took.
struct Finished {
    took: Duration,
    peak_mib: f64,
    /// The peak of its own (anonymous) memory.
    own_mib: f64,
    stdout: String,
}

/// `tasker args...`, for [`run`]: in the memory cgroup when there is one.
fn tasker(cap: &Cap, args: &[&str]) -> Command {
    let mut command = cap.command();
    command.args(args);
    command
}

/// A memory cgroup the measured commands run in, or none.
struct Cap {
    /// The cgroup's directory, and the directory of the cgroup it was made in.
    group: Option<(PathBuf, PathBuf)>,
    mib: u64,
}

impl Cap {
    /// A cgroup limited to `mib` MiB, if one can be made here (0: none wanted).
    fn new(mib: u64) -> Self {
        let none = Cap { group: None, mib };
        if mib == 0 {
            return none;
        }
        let name = format!("tasker-scale-{}", std::process::id());
        let bytes = (mib << 20).to_string();
        // cgroup v1's memory hierarchy, then v2 (its root must delegate the memory controller).
        for (root, limit) in [
            ("/sys/fs/cgroup/memory", "memory.limit_in_bytes"),
            ("/sys/fs/cgroup", "memory.max"),
            ("/sys/fs/cgroup/unified", "memory.max"),
        ] {
            let root = PathBuf::from(root);
            let group = root.join(&name);
            if std::fs::create_dir(&group).is_err() {
                continue;
            }
            if std::fs::write(group.join(limit), &bytes).is_ok() {
                return Cap {
                    group: Some((group, root)),
                    mib,
                };
            }
            let _ = std::fs::remove_dir(&group);
        }
        eprintln!("scale: no memory cgroup can be made here; steps run without a memory limit");
        none
    }

    /// A command of the tasker binary that enters the cgroup first (a shell writes its own pid
    /// into it, then becomes tasker).
    fn command(&self) -> Command {
        match &self.group {
            Some((group, _)) => {
                let mut command = Command::new("sh");
                command
                    .arg("-c")
                    .arg(r#"echo $$ > "$0/cgroup.procs" && exec "$@""#)
                    .arg(group)
                    .arg(TASKER);
                command
            }
            None => Command::new(TASKER),
        }
    }

    /// Moves `pid` back to the cgroup the bench runs in (the server, once its index is built).
    fn release(&self, pid: u32) {
        if let Some((_, root)) = &self.group {
            let _ = std::fs::write(root.join("cgroup.procs"), pid.to_string());
        }
    }

    /// What the step rows say about the limit.
    fn describe(&self) -> String {
        match self.group {
            Some(_) => format!("in a {} MiB memory cgroup", self.mib),
            None => "no memory limit".to_string(),
        }
    }
}

impl Drop for Cap {
    fn drop(&mut self) {
        if let Some((group, _)) = &self.group {
            let _ = std::fs::remove_dir(group);
        }
    }
}

/// Samples `pid`'s own (anonymous) resident memory every 20 ms until stopped; the peak in MiB.
struct AnonPeak {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    sampler: std::thread::JoinHandle<f64>,
}

impl AnonPeak {
    fn watch(pid: u32) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let sampler = std::thread::spawn(move || {
            let (pid, mut peak) = (pid.to_string(), 0.0_f64);
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(measure::status_mib(&pid, "RssAnon:"));
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        });
        AnonPeak { stop, sampler }
    }

    fn peak(self) -> f64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.sampler.join().unwrap_or(0.0)
    }
}

/// Runs `command` to its end, with `input` on standard input; panics if it fails.
// The child is reaped by `reap` (wait4, for its rusage), not `Child::wait`.
#[allow(clippy::zombie_processes)]
fn run(command: &mut Command, input: Option<&str>) -> Finished {
    let started = Instant::now();
    let mut child = command
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tasker runs");
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(input.as_bytes()).expect("writes stdin");
    }
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let own = AnonPeak::watch(child.id());
    let (success, peak_mib) = reap(child.id());
    let own_mib = own.peak();
    let took = started.elapsed();
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    assert!(success, "{command:?} failed:\n{stdout}{stderr}");
    Finished {
        took,
        peak_mib,
        own_mib,
        stdout,
    }
}

/// The bytes of every file under `dir`, as the disk holds them: a file's allocated blocks,
/// so a database file that grew ahead of its data (redb extends it by a region at a time,
/// sparse until written) counts what it uses.
fn dir_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| match entry.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&entry.path()),
                    Ok(m) => m.blocks() * 512,
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// A running `tasker serve` child. Dropped without [`Server::stop`] (a panic), it is killed.
struct Server {
    child: std::process::Child,
    base: String,
    reaped: bool,
}

impl Server {
    /// Starts `tasker serve` on `data` and waits until it listens.
    fn start(cap: &Cap, data: &Path) -> Self {
        let mut child = cap
            .command()
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--log-format",
                "json",
                // Many clients from one address: the rate limits would measure themselves.
                "--rate-limit",
                "off",
            ])
            .arg("--data-dir")
            .arg(data)
            .env("RUST_LOG", "info,tasker::http=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tasker serve starts");
        let stderr = child.stderr.take().unwrap();
        let mut server = Server {
            child,
            base: String::new(),
            reaped: false,
        };
        let address = measure::listening_address(stderr, Duration::from_secs(120));
        server.base = format!("http://{address}");
        server
    }

    /// A `VmRSS:`/`VmHWM:`/`RssAnon:`/`RssFile:` line of the child's /proc status, in MiB.
    fn memory_mib(&self, field: &str) -> f64 {
        measure::status_mib(&self.child.id().to_string(), field)
    }

    /// Polls `/api/health` until the search index is ready with nothing left to apply.
    async fn ready(&self, client: &reqwest::Client) {
        loop {
            let health: Option<Value> =
                match client.get(format!("{}/api/health", self.base)).send().await {
                    Ok(response) => response.json().await.ok(),
                    Err(_) => None,
                };
            if let Some(health) = health
                && health["search_index"]["status"] == "ready"
                && health["search_index"]["lag"] == 0
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits (at most `limit`) until the server has used under 5% of a core for two seconds:
    /// its background work (index merges) is done. Returns how long that took.
    fn settle(&self, limit: Duration) -> Duration {
        let started = Instant::now();
        let stat = format!("/proc/{}/stat", self.child.id());
        let ticks = || -> Option<u64> {
            // utime and stime, the 14th and 15th fields, after the command's parentheses.
            let text = std::fs::read_to_string(&stat).ok()?;
            let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        };
        let window = Duration::from_secs(2);
        while started.elapsed() < limit {
            let Some(before) = ticks() else { break };
            std::thread::sleep(window);
            let Some(after) = ticks() else { break };
            // Clock ticks are hundredths of a second on Linux: 5% of 2 s is 10.
            if after - before < 10 {
                break;
            }
        }
        started.elapsed()
    }

    /// SIGTERM, then waits for a clean exit; the child's peak memory in MiB.
    fn stop(mut self) -> f64 {
        // SAFETY: signals our own child, not yet reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let (success, peak) = reap(self.child.id());
        self.reaped = true;
        assert!(success, "tasker serve stops cleanly on SIGTERM");
        peak
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

type MakeQuery = fn(&[String], usize) -> String;

/// The search classes: each query drawn from the generator's vocabulary (commonest first), a
/// different one for each request where the class has more than one.
const SEARCHES: [(&str, MakeQuery); 6] = [
    ("the commonest word", |v, _| format!("{} ", v[0])),
    ("a rare word (rank 20,000-30,000)", |v, n| {
        format!("{} ", v[20_000 + (n * 7919) % 10_000])
    }),
    ("a 3-letter prefix while typing", |v, n| {
        v[(n * 7919) % 400][..3].to_string()
    }),
    ("a typo of a common 5+ letter word", |v, n| {
        format!("{} ", typo(&v[400 + (n * 7919) % 1_000]))
    }),
    ("two common words", |v, n| {
        format!("{} {} ", v[(n * 7919) % 100], v[(n * 7919 + 37) % 100])
    }),
    ("a word and a prefix", |v, n| {
        format!("{} {}", v[(n * 7919) % 100], &v[(n * 104_729) % 400][..3])
    }),
];

/// A busy day of a 200-person organisation, as the member signed in with `token` would write
/// it: `writes` requests from 8 clients, in turn a task created in one of `projects`, a status
/// changed, a title and description rewritten and a comment added, on the tasks assigned to
/// the member. How many answered 2xx, and how long they all took.
async fn day_of_writes(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    projects: &[String],
    writes: usize,
) -> (usize, Duration) {
    use rand::SeedableRng;
    const STATUSES: [&str; 3] = ["in_progress", "done", "todo"];
    // The tasks the member may change: those assigned to them (a member changes only what
    // they created or are assigned to), the first pages of them.
    let mut tasks: Vec<String> = Vec::new();
    let mut cursor = String::new();
    for _ in 0..8 {
        let page: Value = json_of(
            client
                .get(format!("{base}/api/tasks?limit=50{cursor}"))
                .bearer_auth(token),
        )
        .await;
        let items = page["items"].as_array().expect("a page of tasks");
        tasks.extend(
            items
                .iter()
                .filter_map(|t| t["id"].as_str().map(String::from)),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={}", encode(next)),
            None => break,
        }
    }
    assert!(!tasks.is_empty(), "the member has tasks assigned");
    let (tasks, projects) = (
        std::sync::Arc::new(tasks),
        std::sync::Arc::new(projects.to_vec()),
    );
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (client, base, token) = (client.clone(), base.to_string(), token.to_string());
            let (tasks, projects, counter) = (tasks.clone(), projects.clone(), counter.clone());
            tokio::spawn(async move {
                let mut answered = 0;
                loop {
                    let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if n >= writes {
                        return answered;
                    }
                    let mut rng = rand::rngs::StdRng::seed_from_u64(n as u64);
                    let text = |rng: &mut rand::rngs::StdRng, words: usize, sentence: bool| {
                        zipf::zipf().text(rng, words, sentence)
                    };
                    let task = &tasks[(n * 7919) % tasks.len()];
                    let request = match n % 4 {
                        0 => client.post(format!("{base}/api/tasks")).json(&json!({
                            "title": text(&mut rng, 3 + n % 6, false),
                            "description": text(&mut rng, 10 + n % 70, true),
                            "project_id": projects[n % projects.len()],
                        })),
                        1 => client
                            .patch(format!("{base}/api/tasks/{task}"))
                            .json(&json!({
                                "status": STATUSES[(n / 4) % STATUSES.len()],
                            })),
                        2 => client
                            .patch(format!("{base}/api/tasks/{task}"))
                            .json(&json!({
                                "title": text(&mut rng, 3 + n % 6, false),
                                "description": text(&mut rng, 10 + n % 70, true),
                            })),
                        _ => client
                            .post(format!("{base}/api/tasks/{task}/comments"))
                            .json(&json!({"body": text(&mut rng, 10 + n % 30, true)})),
                    };
                    if let Ok(r) = request.bearer_auth(&token).send().await
                        && r.status().is_success()
                    {
                        answered += 1;
                    }
                }
            })
        })
        .collect();
    let mut answered = 0;
    for client in clients {
        answered += client.await.expect("a writing client");
    }
    (answered, started.elapsed())
}

/// `word` with its first two different adjacent inner letters swapped.
fn typo(word: &str) -> String {
    let mut chars: Vec<char> = word.chars().collect();
    if let Some(i) = (1..chars.len().saturating_sub(2)).find(|&i| chars[i] != chars[i + 1]) {
        chars.swap(i, i + 1);
    }
    chars.into_iter().collect()
}

/// A GET with the bearer `token` that must answer 2xx, as a `drive` request.
fn get(
    client: &reqwest::Client,
    token: &str,
    url: impl Fn(usize) -> String + Clone + Send + Sync + 'static,
) -> impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>
+ Clone
+ Send
+ 'static {
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (client, token) = (client.clone(), token.to_string());
    move || {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let request = client.get(url(n)).bearer_auth(&token);
        Box::pin(async move {
            match request.send().await {
                Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                _ => false,
            }
        })
    }
}

fn print_rows(title: &str, rows: &[Row]) {
    println!("| {title} | clients | requests | req/s | p50 ms | p99 ms | errors |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        println!(
            "| {} | {} | {} | {:.0} | {} | {} | {} |",
            row.operation,
            row.clients,
            row.requests,
            row.per_second,
            ms(row.p50),
            ms(row.p99),
            row.errors
        );
    }
}

/// A session token for `email` (password [`PASSWORD`]).
async fn sign_in(client: &reqwest::Client, base: &str, email: &str) -> String {
    let auth: Value = json_of(
        client
            .post(format!("{base}/api/auth/login"))
            .json(&json!({"email": email, "password": PASSWORD})),
    )
    .await;
    auth["token"]
        .as_str()
        .unwrap_or_else(|| panic!("signed in: {auth}"))
        .to_string()
}

fn main() {
    // reqwest is built without a default TLS provider: the one tasker installs.
    tasker::net::egress::install_crypto_provider();
    let tasks_wanted = env_or("SCALE_TASKS", 1_000_000);
    let seconds = Duration::from_secs(env_or("SCALE_SECONDS", 5));
    let clients = env_or("SCALE_CLIENTS", 32) as usize;
    let cap = Cap::new(env_or("SCALE_MEMORY_CAP_MIB", 256));
    let parent = std::env::var_os("SCALE_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    std::fs::create_dir_all(&parent).expect("SCALE_DIR");
    // Everything this run writes, removed when it ends (also on a panic).
    let work = tempfile::Builder::new()
        .prefix("tasker-scale-")
        .tempdir_in(&parent)
        .expect("a work directory");
    let data = work.path().join("data");
    let mut steps: Vec<String> = Vec::new();
    let step = |steps: &mut Vec<String>, line: String| {
        eprintln!("scale: {line}");
        steps.push(line);
    };

    // 1. The export.
    let (export, origin) = match std::env::var_os("SCALE_EXPORT") {
        Some(file) => (PathBuf::from(file), "given (`SCALE_EXPORT`)".to_string()),
        None => {
            let file = work.path().join("export.json");
            let started = Instant::now();
            synthetic::write(&file, tasks_wanted, 18).expect("the export is written");
            let took = started.elapsed().as_secs_f64();
            (file, format!("generated in {took:.1} s"))
        }
    };
    let export_bytes = std::fs::metadata(&export).expect("the export file").len();

    // 2. Import.
    let import = run(
        tasker(&cap, &["import", "--data-dir"])
            .arg(&data)
            .arg("--from")
            .arg(&export),
        None,
    );
    // "imported ..., N tasks, ...": the count the figures are per.
    let tasks = import
        .stdout
        .split(", ")
        .find_map(|part| part.strip_suffix(" tasks")?.parse::<u64>().ok())
        .unwrap_or(tasks_wanted)
        .max(1);
    let per_task = |bytes: u64| bytes as f64 / tasks as f64;
    step(
        &mut steps,
        format!(
            "| export file ({tasks} tasks) | {:.0} MiB | {:.0} B/task | {origin} |",
            mib(export_bytes as f64),
            per_task(export_bytes)
        ),
    );
    let imported_bytes = dir_bytes(&data);
    step(
        &mut steps,
        format!(
            "| `tasker import` | {:.1} s | peak {:.0} MiB, own {:.0} MiB | data dir {:.0} MiB, {:.0} B/task ({:.2}x the export); {} |",
            import.took.as_secs_f64(),
            import.peak_mib,
            import.own_mib,
            mib(imported_bytes as f64),
            per_task(imported_bytes),
            imported_bytes as f64 / export_bytes as f64,
            cap.describe()
        ),
    );

    // 4 (before the start: the server holds the database). Passwords for a member of one team
    // and for the member of every team.
    let email = format!("user{ACCOUNT}@example.com");
    let everywhere = format!("user{}@example.com", synthetic::EVERY_TEAM);
    for email in [&email, &everywhere] {
        run(
            tasker(
                &cap,
                &[
                    "user",
                    "reset-password",
                    "--email",
                    email,
                    "--bcrypt-cost",
                    "4",
                ],
            )
            .arg("--data-dir")
            .arg(&data),
            Some(&format!("{PASSWORD}\n")),
        );
    }

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();

    // 3. The first start: the index is built while the server serves.
    let started = Instant::now();
    let server = Server::start(&cap, &data);
    let own = AnonPeak::watch(server.child.id());
    runtime.block_on(server.ready(&client));
    let first_start = started.elapsed();
    let first_start_peak = server.memory_mib("VmHWM:");
    let first_start_own = own.peak();
    // Serving is measured as it is, without a limit.
    cap.release(server.child.id());
    // The index is searchable once ready, but tantivy still merges the new segments in the
    // background for a while: the rows measure the settled server.
    let settled = server.settle(Duration::from_secs(300));
    eprintln!(
        "scale: the server settled {:.1} s after ready",
        settled.as_secs_f64()
    );
    step(
        &mut steps,
        format!(
            "| first `tasker serve` until the search index is ready | {:.1} s | peak {first_start_peak:.0} MiB, own {first_start_own:.0} MiB | data dir {:.0} B/task after; {} |",
            first_start.as_secs_f64(),
            per_task(dir_bytes(&data)),
            cap.describe()
        ),
    );

    // 4 and 5. Search and list rows for the member.
    let (search, search_everywhere, list, token, projects) = runtime.block_on(async {
        let token = sign_in(&client, &server.base, &email).await;
        let projects: Value = client
            .get(format!("{}/api/projects?limit=50", server.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let projects: Vec<String> = projects["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            projects.len(),
            synthetic::PROJECTS_PER_TEAM,
            "the member sees its team's projects"
        );
        let vocabulary = std::sync::Arc::new(zipf::zipf().words().to_vec());
        let searches = |token: String, concurrency: usize| {
            let (client, base, vocabulary) =
                (client.clone(), server.base.clone(), vocabulary.clone());
            async move {
                let mut rows = Vec::new();
                for (class, make) in SEARCHES {
                    let (base, vocabulary) = (base.clone(), vocabulary.clone());
                    let label = format!(
                        "search: {class}, e.g. `{}`",
                        make(&vocabulary, 1).trim_end()
                    );
                    let url = move |n: usize| {
                        format!(
                            "{base}/api/tasks/search?limit=20&q={}",
                            encode(&make(&vocabulary, n))
                        )
                    };
                    rows.push(drive(&label, concurrency, seconds, get(&client, &token, url)).await);
                }
                rows
            }
        };
        let mut search = Vec::new();
        for concurrency in [1, clients] {
            search.extend(searches(token.clone(), concurrency).await);
        }
        // The member of every team sees all the tasks: one client.
        let token_everywhere = sign_in(&client, &server.base, &everywhere).await;
        let search_everywhere = searches(token_everywhere, 1).await;
        let projects = std::sync::Arc::new(projects);
        type MakeList = fn(&str, &[String], usize) -> String;
        let lists: [(&str, MakeList); 3] = [
            ("GET /api/tasks?limit=50 (assigned to me)", |base, _, _| {
                format!("{base}/api/tasks?limit=50")
            }),
            (
                "GET /api/tasks?scope=all&project_id=P&limit=50",
                |base, p, n| {
                    format!(
                        "{base}/api/tasks?scope=all&project_id={}&limit=50",
                        p[n % p.len()]
                    )
                },
            ),
            (
                "GET /api/tasks?scope=all&project_id=P&status=done&limit=50",
                |base, p, n| {
                    format!(
                        "{base}/api/tasks?scope=all&project_id={}&status=done&limit=50",
                        p[n % p.len()]
                    )
                },
            ),
        ];
        let mut list = Vec::new();
        for concurrency in [1, clients] {
            for (label, make) in lists {
                let (base, projects) = (server.base.clone(), projects.clone());
                let url = move |n: usize| make(&base, &projects, n);
                list.push(drive(label, concurrency, seconds, get(&client, &token, url)).await);
            }
        }
        (search, search_everywhere, list, token, projects)
    });

    // 6. Serving memory after the load.
    let serving_rss = server.memory_mib("VmRSS:");
    let serving_hwm = server.memory_mib("VmHWM:");
    // Resident memory is the process's own (anonymous) plus the pages of the search index's
    // memory-mapped files it has touched, which are the kernel's page cache: counted in RSS,
    // but given back under memory pressure without writing anything.
    let serving_anon = server.memory_mib("RssAnon:");
    let serving_file = server.memory_mib("RssFile:");

    // 6b. A day of writes, then the data directory again once the server has stopped.
    let writes = env_or("SCALE_DAY_WRITES", 20_000) as usize;
    let (wrote, took) = runtime.block_on(day_of_writes(
        &client,
        &server.base,
        &token,
        &projects,
        writes,
    ));
    let serve_peak = server.stop();
    step(
        &mut steps,
        format!(
            "| serving after the search and list rows | RSS {serving_rss:.0} MiB: {serving_anon:.0} MiB own, {serving_file:.0} MiB mapped index pages | peak {serving_hwm:.0} MiB ({serve_peak:.0} MiB at exit) | |"
        ),
    );
    let index_bytes = dir_bytes(&data.join("index"));
    let day_bytes = dir_bytes(&data) - index_bytes;
    let day_ratio = day_bytes as f64 / export_bytes as f64;
    step(
        &mut steps,
        format!(
            "| a day of writes: {writes} creates, edits, status changes and comments, 8 clients | {:.1} s, {wrote} answered 2xx | data dir {:.0} MiB, {day_ratio:.2}x the export, without the search index ({:.0} MiB more with it, {:.2}x) | |",
            took.as_secs_f64(),
            mib(day_bytes as f64),
            mib(index_bytes as f64),
            (day_bytes + index_bytes) as f64 / export_bytes as f64,
        ),
    );

    // 7. The offline commands.
    let backup_file = work.path().join("backup.tar");
    let export_again = work.path().join("export-again.json");
    let mut offline = Vec::new();
    for (what, out) in [
        ("reindex", None),
        ("backup", Some(&backup_file)),
        ("export", Some(&export_again)),
        ("check", None),
    ] {
        let mut command = tasker(&cap, &[what, "--data-dir"]);
        command.arg(&data);
        if let Some(out) = out {
            command.arg("--out").arg(out);
        }
        let done = run(&mut command, None);
        let note = out
            .and_then(|out| std::fs::metadata(out).ok())
            .map(|m| format!("{:.0} MiB written; ", mib(m.len() as f64)))
            .unwrap_or_default();
        step(
            &mut steps,
            format!(
                "| `tasker {what}` | {:.1} s | peak {:.0} MiB, own {:.0} MiB | {note}{} |",
                done.took.as_secs_f64(),
                done.peak_mib,
                done.own_mib,
                cap.describe()
            ),
        );
        offline.push((what, done.peak_mib, done.own_mib));
        // The copies are not needed once measured.
        let _ = std::fs::remove_file(&backup_file);
        let _ = std::fs::remove_file(&export_again);
    }

    // The start with a current index.
    let started = Instant::now();
    let server = Server::start(&Cap::new(0), &data);
    runtime.block_on(server.ready(&client));
    let restart = started.elapsed();
    let restart_peak = server.memory_mib("VmHWM:");
    server.stop();
    step(
        &mut steps,
        format!(
            "| `tasker serve` with a current index, until ready | {:.2} s | peak {restart_peak:.0} MiB | |",
            restart.as_secs_f64()
        ),
    );

    // 8. The tables.
    println!(
        "\ntasker at scale: {tasks} tasks, {} s per row, {} cores\n",
        seconds.as_secs(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("| step | time / size | memory / bytes | notes |");
    println!("|---|---:|---:|---|");
    for line in &steps {
        println!("{line}");
    }
    println!();
    print_rows(
        &format!("search as a member of 1 team of {}", synthetic::TEAMS),
        &search,
    );
    println!();
    print_rows(
        &format!("search as a member of all {} teams", synthetic::TEAMS),
        &search_everywhere,
    );
    println!();
    print_rows("list, a page of 50", &list);

    let worst = |rows: &[Row], concurrency: usize| {
        rows.iter()
            .filter(|r| r.clients == concurrency)
            .map(|r| r.p99)
            .max()
            .unwrap_or_default()
    };
    let mut peaks = vec![
        ("import", import.peak_mib, import.own_mib),
        ("first start", first_start_peak, first_start_own),
    ];
    peaks.extend(offline.iter().copied());
    let (peak_what, peak, _) = peaks
        .iter()
        .copied()
        .fold(("", 0.0, 0.0), |max, p| if p.1 > max.1 { p } else { max });
    let own_peak = peaks.iter().map(|p| p.2).fold(0.0, f64::max);
    let ratio = imported_bytes as f64 / export_bytes as f64;
    let met = |ok: bool| if ok { "yes" } else { "no" };
    println!("\n| what ({tasks} tasks) | value | target | met |");
    println!("|---|---:|---:|---|");
    println!(
        "| peak resident memory ({}): {} | up to {peak:.0} MiB ({peak_what}); own memory up to {own_peak:.0} MiB | at most 256 MiB each | {} |",
        cap.describe(),
        peaks
            .iter()
            .map(|(w, p, _)| format!("{w} {p:.0}"))
            .collect::<Vec<_>>()
            .join(", "),
        met(peak <= 256.0)
    );
    println!(
        "| serving, after the search and list load: its own memory (and the index pages it maps, page cache) | {serving_anon:.0} MiB ({serving_rss:.0} MiB resident with {serving_file:.0} MiB of mapped index pages) | at most 150 MiB | {} |",
        met(serving_anon <= 150.0)
    );
    println!(
        "| data directory after import | {:.0} B/task, {ratio:.2}x the export | at most 2x the export | {} |",
        per_task(imported_bytes),
        met(ratio <= 2.0)
    );
    println!(
        "| data directory after a day of writes (without the derived search index, as after import) | {day_ratio:.2}x the export | at most 2x the export | {} |",
        met(day_ratio <= 2.0)
    );
    let one = worst(&search, 1);
    println!(
        "| search, one client, p99, worst class | {} ms | at most 10 ms | {} |",
        ms(one),
        met(one <= Duration::from_millis(10))
    );
    let many = worst(&search, clients);
    println!(
        "| search, {clients} clients, p99, worst class | {} ms | at most 50 ms | {} |",
        ms(many),
        met(many <= Duration::from_millis(50))
    );
    let page = worst(&list, 1);
    println!(
        "| `GET /tasks` page of 50, one client, p99, worst | {} ms | at most 5 ms | {} |",
        ms(page),
        met(page <= Duration::from_millis(5))
    );
    println!(
        "| start with a current index | {:.2} s | under 1 s | {} |",
        restart.as_secs_f64(),
        met(restart < Duration::from_secs(1))
    );
    drop(work);
}
