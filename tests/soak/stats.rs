//! What the clients saw, counted: statuses per class and per operation, examples of 5xx and
//! of other surprises, WebSocket frames and closes, slow clients opened and cut.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::traffic::SlowKind;

#[derive(Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub by_class: [AtomicU64; 6],
    pub transport_errors: AtomicU64,
    /// Expected answers per operation (every kind of traffic must have happened).
    pub succeeded: Mutex<BTreeMap<&'static str, u64>>,
    pub server_errors: Mutex<Vec<String>>,
    pub unexpected: Mutex<Vec<String>>,
    pub unexpected_count: AtomicU64,
    pub notes: Mutex<Vec<String>>,
    pub ws_frames: AtomicU64,
    pub ws_connects: AtomicU64,
    pub ws_closed: Mutex<BTreeMap<String, u64>>,
    pub slow: [SlowCount; 4],
    pub abrupt: AtomicU64,
}

#[derive(Default)]
pub struct SlowCount {
    pub opened: AtomicU64,
    pub cut: AtomicU64,
    pub cut_ms: AtomicU64,
}

/// Operations that must have succeeded at least once for the soak to mean anything.
pub const MUST_SUCCEED: [&str; 11] = [
    "login",
    "logout",
    "create task",
    "patch task",
    "list tasks",
    "search",
    "comment",
    "upload",
    "download",
    "delete task",
    "notifications",
];

impl Stats {
    /// Records a status; 5xx and statuses outside `expect` keep an example.
    pub fn status(&self, op: &'static str, status: u16, expect: &[u16], body: &[u8]) {
        self.by_class[usize::from(status / 100).min(5)].fetch_add(1, Relaxed);
        let example = || {
            let body = String::from_utf8_lossy(&body[..body.len().min(160)]).into_owned();
            format!("{op}: {status} {body}")
        };
        if status >= 500 {
            push_bounded(&self.server_errors, example());
        } else if expect.contains(&status) {
            *self.succeeded.lock().unwrap().entry(op).or_default() += 1;
        } else {
            self.unexpected_count.fetch_add(1, Relaxed);
            push_bounded(&self.unexpected, example());
        }
    }

    pub fn transport(&self, op: &'static str, error: impl std::fmt::Display) {
        if self.transport_errors.fetch_add(1, Relaxed) < 5 {
            self.note(format!("{op}: {error}"));
        }
    }

    pub fn note(&self, note: String) {
        push_bounded(&self.notes, note);
    }

    pub fn ws_closed(&self, why: String) {
        *self.ws_closed.lock().unwrap().entry(why).or_default() += 1;
    }

    pub fn print(&self, slow_open_at_end: u64) {
        let class = |n: usize| self.by_class[n].load(Relaxed);
        println!(
            "requests: {} ({} 2xx, {} 3xx, {} 4xx, {} 5xx), {} transport errors, {} abandoned",
            self.requests.load(Relaxed),
            class(2),
            class(3),
            class(4),
            class(5),
            self.transport_errors.load(Relaxed),
            self.abrupt.load(Relaxed),
        );
        let succeeded = self.succeeded.lock().unwrap();
        let ops: Vec<_> = succeeded
            .iter()
            .map(|(op, n)| format!("{op} {n}"))
            .collect();
        println!("as expected: {}", ops.join(", "));
        println!(
            "websockets: {} opened by readers, {} frames read; readers' sockets closed: {:?}",
            self.ws_connects.load(Relaxed),
            self.ws_frames.load(Relaxed),
            self.ws_closed.lock().unwrap()
        );
        println!("slow clients, held until the server cuts them or the soak ends:");
        for (kind, count) in SlowKind::ALL.iter().zip(&self.slow) {
            let (opened, cut) = (count.opened.load(Relaxed), count.cut.load(Relaxed));
            let seconds = count.cut_ms.load(Relaxed) as f64 / cut.max(1) as f64 / 1000.0;
            let after = if cut == 0 {
                String::new()
            } else {
                format!(", after {seconds:.1} s on average")
            };
            let name = kind.name();
            println!("  {name:<16} {opened:>4} opened, {cut:>4} cut by the server{after}");
        }
        println!("  still open when the soak ended: {slow_open_at_end}");
        let unexpected = self.unexpected_count.load(Relaxed);
        if unexpected > 0 {
            let examples = self.unexpected.lock().unwrap();
            println!("{unexpected} other statuses (not failures), e.g. {examples:?}");
        }
        for note in self.notes.lock().unwrap().iter() {
            println!("note: {note}");
        }
    }

    /// 5xx answers, and kinds of traffic that never once went as expected (a soak that
    /// silently stopped exercising something proves nothing about it).
    pub fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        let server_errors = self.by_class[5].load(Relaxed);
        if server_errors > 0 {
            let examples = self.server_errors.lock().unwrap().join("\n    ");
            failures.push(format!(
                "{server_errors} answers were 5xx, e.g.:\n    {examples}"
            ));
        }
        let succeeded = self.succeeded.lock().unwrap();
        let missing = MUST_SUCCEED
            .iter()
            .filter(|op| !succeeded.contains_key(*op));
        failures.extend(missing.map(|op| format!("no '{op}' ever went as expected")));
        if self.ws_frames.load(Relaxed) == 0 {
            failures.push("the WebSocket readers never got a frame".into());
        }
        failures
    }
}

pub fn push_bounded(list: &Mutex<Vec<String>>, item: String) {
    let mut list = list.lock().unwrap();
    if list.len() < 10 {
        list.push(item);
    }
}
