//! The soak: the built `tasker` binary as a child process on loopback, `TASKER_SOAK_SECS`
//! (default 60, at least 45) seconds of mixed traffic at once, and four verdicts: no request got a 5xx, the
//! process lived and still answers, and neither its memory nor its open descriptors kept
//! growing. `#[ignore]`d, since a minute is too long for every `cargo test`; `.ci/run` runs it
//! after the suite:
//!
//! ```text
//! cargo test --test api -- --ignored --nocapture soak::
//! ```
//!
//! The traffic: members of one team signing in and out, creating, reading, updating (with a
//! fresh `If-Match`, then a stale one), listing, searching and deleting tasks, commenting,
//! uploading and downloading attachments, reading notifications; WebSocket clients that read
//! (resuming with `since` when cut), that connect and never read, and that vanish without a
//! close frame; slow clients (silent sockets, half-sent request heads, stalled uploads, idle
//! keep-alives), opened at a steady 2/s and held until the server cuts them, which is the
//! server doing its job and is counted, not failed; requests abandoned mid-flight, half with a
//! reset.
//!
//! The server's flags come from `TASKER_SOAK_ARGS` when set (split on whitespace, added after
//! the soak's own); otherwise the connection timeouts that this `tasker serve --help` lists
//! (`--header-timeout`, `--idle-timeout`, `--body-timeout`, `--ws-write-timeout`) are set to
//! 5 s, so the slow clients' sockets reach a plateau (2/s times 5 s) well within the first
//! third. A server that never cuts a slow client gains two descriptors a second and fails.
//!
//! The growth check ([`growth_failures`]): RSS (`VmRSS`) and descriptors (entries of
//! `/proc/PID/fd`) are sampled every second. The first third is warm-up and ignored (allocator
//! arenas, redb's page cache and tantivy's writer fill up then). The middle third is compared
//! with the last: descriptors fail when the last third's median exceeds the middle's by more
//! than 16 or a quarter (whichever is larger); memory fails only when the last third's median
//! exceeds the middle's by more than 16 MiB or 15 % (whichever is larger) *and* the medians of
//! the last two thirds' four quarters rise strictly, so a step that then holds (a cache
//! filling, an arena added) passes and a steady leak does not. Linux only (`/proc`).

mod server;
mod stats;
mod traffic;

/// The shortest soak: its first third must cover the warm-up (memory climbs for 15 to 20 s
/// on a debug build before it levels off), or the warm-up reads as growth.
const MIN_SECS: u64 = 45;

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use server::{BIN, Server, server_args};
use traffic::Soak;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a minute of load: .ci/run runs it with --ignored"]
async fn mixed_traffic_leaves_memory_and_descriptors_flat() {
    if !cfg!(target_os = "linux") {
        println!("soak skipped: it reads the server's memory and descriptors from /proc (Linux)");
        return;
    }
    let secs: u64 = std::env::var("TASKER_SOAK_SECS")
        .map(|s| s.trim().parse().expect("TASKER_SOAK_SECS: seconds"))
        .unwrap_or(60)
        .max(MIN_SECS);
    let extra = server_args();
    let data = tempfile::tempdir().expect("temp dir");
    let server = Server::start(data.path(), &extra);
    let shown = if extra.is_empty() {
        "none".to_string()
    } else {
        extra.join(" ")
    };
    println!(
        "soak: {secs} s against {BIN} (pid {}) at {}",
        server.pid, server.address
    );
    println!("extra server flags: {shown}");

    let soak = Soak::set_up(server.address).await;
    let workers = soak.start().await;
    let samples = sample(&server, secs, &soak).await;
    soak.stop.cancel();
    for worker in workers {
        if tokio::time::timeout(Duration::from_secs(60), worker)
            .await
            .is_err()
        {
            soak.stats
                .note("a client did not finish within 60 s of the end".into());
        }
    }

    let died = server.exit_status();
    let (fds_after, answering) = match died {
        None => (
            settled_fds(&server, &samples).await,
            final_health(&server).await,
        ),
        Some(_) => (None, false),
    };
    print_table(&samples);
    soak.stats.print(samples.last().map_or(0, |s| s.slow_open));
    if let Some(fds) = fds_after {
        println!("descriptors once the clients had left: {fds}");
    }
    let mut failures = Vec::new();
    if let Some(status) = died {
        failures.push(format!("the server died during the soak: {status}"));
    } else if !answering {
        failures.push("the server did not answer /api/health within 30 s after the soak".into());
    }
    failures.extend(soak.stats.failures());
    failures.extend(growth_failures(&samples));
    let log = server.stop();
    if !log.panics.is_empty() {
        failures.push(format!("the server panicked: {:?}", log.panics));
    }
    println!(
        "server log: {} lines, {} at ERROR {:?}",
        log.lines,
        log.errors.len(),
        log.errors
    );
    if died.is_some() || !answering || !log.panics.is_empty() {
        println!(
            "--- last server log lines\n{}",
            Vec::from(log.tail).join("\n")
        );
    }
    assert!(
        failures.is_empty(),
        "soak failed:\n- {}",
        failures.join("\n- ")
    );
    println!("soak passed");
}

/// The growth check on its own, against made-up series: plateaus (noisy, after a step, or
/// after a warm-up) pass; steady growth fails.
#[test]
fn growth_check_passes_plateaus_and_steps_and_fails_steady_growth() {
    let series = |rss: &dyn Fn(u64) -> u64, fds: &dyn Fn(u64) -> u64| -> Vec<Sample> {
        (1..=60)
            .map(|t| Sample {
                t,
                rss_kib: rss(t),
                fds: fds(t),
                ..Sample::default()
            })
            .collect()
    };
    // ±2 MiB of noise on memory, 0 to 6 descriptors on top of 60.
    let noise = |t: u64| (t * 7919 % 13) * 300;
    let verdicts = |samples: &[Sample]| growth_failures(samples).len();
    assert_eq!(
        verdicts(&series(&|t| 80_000 + noise(t), &|t| 60 + t % 7)),
        0
    );
    // Memory that jumps by 40 MiB at 30 s and holds (a cache filling up).
    let step = |t| if t < 30 { 80_000 } else { 121_000 } + noise(t);
    assert_eq!(verdicts(&series(&step, &|t| 60 + t % 7)), 0);
    // Memory that rises fast, then ever more slowly (allocator warm-up).
    let warm = |t| 200_000 - 150_000 * 20 / (t + 20) + noise(t);
    assert_eq!(verdicts(&series(&warm, &|_| 60)), 0);
    // A leak of 1 MiB/s; then two descriptors a second.
    assert_eq!(
        verdicts(&series(&|t| 80_000 + 1024 * t + noise(t), &|_| 60)),
        1
    );
    assert_eq!(verdicts(&series(&|_| 80_000, &|t| 60 + 2 * t)), 1);
}

// ---- sampling and the verdict ----

#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    t: u64,
    rss_kib: u64,
    anon_kib: u64,
    fds: u64,
    slow_open: u64,
    requests: u64,
}

/// One sample a second for `secs` seconds, or until the process dies.
async fn sample(server: &Server, secs: u64, soak: &Soak) -> Vec<Sample> {
    let started = tokio::time::Instant::now();
    let mut samples = Vec::new();
    for t in 1..=secs {
        tokio::time::sleep_until(started + Duration::from_secs(t)).await;
        let Some((rss_kib, anon_kib, fds)) = server.resources() else {
            break;
        };
        if server.exit_status().is_some() {
            break;
        }
        let (slow_open, requests) = (
            soak.slow_open.load(Relaxed),
            soak.stats.requests.load(Relaxed),
        );
        samples.push(Sample {
            t,
            rss_kib,
            anon_kib,
            fds,
            slow_open,
            requests,
        });
    }
    samples
}

/// The descriptors once every client has gone (given 10 s to settle near the first sample).
async fn settled_fds(server: &Server, samples: &[Sample]) -> Option<u64> {
    let target = samples.first().map_or(0, |s| s.fds) + 8;
    let mut fds = None;
    for _ in 0..20 {
        fds = server.resources().map(|(_, _, fds)| fds);
        if fds.is_some_and(|fds| fds <= target) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    fds
}

/// Whether `/api/health` answers 200 within 30 s, on a fresh connection.
async fn final_health(server: &Server) -> bool {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let url = format!("http://{}/api/health", server.address);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(response) = client.get(&url).send().await
            && response.status() == 200
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    false
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn print_table(samples: &[Sample]) {
    println!("\n   t   RSS MiB  anon MiB    fds  slow open  requests");
    for s in samples {
        let (rss, anon) = (mib(s.rss_kib), mib(s.anon_kib));
        let (t, fds, slow, requests) = (s.t, s.fds, s.slow_open, s.requests);
        println!("{t:>4}  {rss:>8.1}  {anon:>8.1}  {fds:>5}  {slow:>9}  {requests:>8}");
    }
    let (_, middle, last) = thirds(samples);
    let rss = |part: &[Sample]| mib(median(part.iter().map(|s| s.rss_kib)));
    let fds = |part: &[Sample]| median(part.iter().map(|s| s.fds));
    println!(
        "medians: middle third {:.1} MiB, {} fds; last third {:.1} MiB, {} fds\n",
        rss(middle),
        fds(middle),
        rss(last),
        fds(last)
    );
}

fn thirds(samples: &[Sample]) -> (&[Sample], &[Sample], &[Sample]) {
    let third = samples.len() / 3;
    let (first, rest) = samples.split_at(third);
    let (middle, last) = rest.split_at(third);
    (first, middle, last)
}

fn median(values: impl Iterator<Item = u64>) -> u64 {
    let mut values: Vec<u64> = values.collect();
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

/// Descriptors that grew past their margin between the middle and last thirds, and memory
/// that both grew past its margin and is still rising (see the module's header).
fn growth_failures(samples: &[Sample]) -> Vec<String> {
    let (_, middle, last) = thirds(samples);
    if middle.len() < 3 {
        return vec![format!(
            "too few samples to judge growth: {}",
            samples.len()
        )];
    }
    let mut failures = Vec::new();
    let fds = |part: &[Sample]| median(part.iter().map(|s| s.fds));
    let (fds_middle, fds_last) = (fds(middle), fds(last));
    let fd_margin = (fds_middle / 4).max(16);
    if fds_last > fds_middle + fd_margin {
        failures.push(format!(
            "open descriptors kept growing: median {fds_middle} in the middle third, \
             {fds_last} in the last (margin {fd_margin})"
        ));
    }
    let rss = |part: &[Sample]| median(part.iter().map(|s| s.rss_kib));
    let (rss_middle, rss_last) = (rss(middle), rss(last));
    let rss_margin = (rss_middle * 15 / 100).max(16 * 1024);
    let tail = &samples[samples.len() - middle.len() - last.len()..];
    let quarters: Vec<u64> = tail.chunks(tail.len().div_ceil(4)).map(rss).collect();
    let rising = quarters.windows(2).all(|w| w[1] > w[0]);
    if rss_last > rss_middle + rss_margin && rising {
        let quarters: Vec<String> = quarters.iter().map(|&q| format!("{:.1}", mib(q))).collect();
        failures.push(format!(
            "memory kept growing: median RSS {:.1} MiB in the middle third, {:.1} MiB in the \
             last (margin {:.1} MiB), rising quarter after quarter: {} MiB",
            mib(rss_middle),
            mib(rss_last),
            mib(rss_margin),
            quarters.join(", ")
        ));
    }
    failures
}
