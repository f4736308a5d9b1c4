//! The connection layer: accepts TCP connections and serves each with hyper, under the limits
//! a public server needs and poem's own server lacks (issue 14):
//!
//! - a request head must arrive whole within `--header-timeout`, counted from its first byte
//!   (from the connection's opening, for the first request): a client trickling headers, or
//!   one that connects and says nothing, is cut;
//! - a kept-alive connection with no request in flight and nothing arriving is closed after
//!   `--idle-timeout`;
//! - a request body that stops arriving for `--body-timeout` fails its request (408, the
//!   connection closed, whatever the handler had received dropped), and a response whose
//!   client stops taking it for as long aborts the connection;
//! - at most `--max-connections` connections at once: at the limit a new connection closes
//!   the one idle the longest, or is turned away (closed at once) when none is idle.
//!
//! A connection counts as idle only while no request is in flight, so none of these cuts a
//! request the server is working on, and an upgraded connection (a WebSocket) is never idle:
//! the feed watches its sockets with its own pings. Graceful shutdown closes idle connections
//! at once and lets requests in flight finish, within a grace period.

mod conn;
/// The egress guard: outgoing requests (webhooks) reach only what `--webhook-allowed-hosts` allows.
pub mod egress;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use poem::web::LocalAddr;
use poem::{Endpoint, Response};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use conn::Conn;

/// The limits of [`serve`], from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub body_timeout: Duration,
    pub max_connections: usize,
}

impl Limits {
    pub fn from_config(config: &Config) -> Self {
        Self {
            header_timeout: config.header_timeout,
            idle_timeout: config.idle_timeout,
            body_timeout: config.body_timeout,
            max_connections: config.max_connections as usize,
        }
    }
}

/// How long a new connection waits for the one it evicted to let go of its slot.
const EVICTION_WAIT: Duration = Duration::from_secs(1);
/// At most one warning per this long about the connection limit or failing accepts.
const WARN_EVERY: Duration = Duration::from_secs(10);
/// The pause after a failed accept (e.g. out of file descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What every connection of one server shares.
struct Shared {
    limits: Limits,
    /// The zero of the connections' millisecond clocks.
    origin: Instant,
    /// The open connections by id, to find one to evict.
    open: Mutex<HashMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
    /// One permit per open connection; its holder is the connection's socket.
    slots: Arc<Semaphore>,
}

impl Shared {
    /// Milliseconds since `origin`.
    fn now(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    fn instant(&self, millis: u64) -> Instant {
        self.origin + Duration::from_millis(millis)
    }

    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A slot for a new connection: a free one, else the one of the connection idle the
    /// longest, which is closed for it. `None` when every connection is busy.
    async fn admit(&self) -> Option<(OwnedSemaphorePermit, bool)> {
        if let Ok(slot) = self.slots.clone().try_acquire_owned() {
            return Some((slot, false));
        }
        if !self.evict_longest_idle() {
            return None;
        }
        let slot = tokio::time::timeout(EVICTION_WAIT, self.slots.clone().acquire_owned()).await;
        Some((slot.ok()?.ok()?, true))
    }

    /// Closes the connection that has been idle the longest, if any is idle.
    fn evict_longest_idle(&self) -> bool {
        let mut idle: Vec<Arc<Conn>> = self
            .open()
            .values()
            .filter(|conn| conn.is_idle())
            .cloned()
            .collect();
        idle.sort_by_key(|conn| conn.idle_since());
        idle.into_iter().any(|conn| conn.close_if_idle())
    }
}

/// A warning logged at most once per [`WARN_EVERY`], with how many times its cause happened.
struct Throttled {
    last: Option<Instant>,
    count: u64,
}

impl Throttled {
    fn new() -> Self {
        Self {
            last: None,
            count: 0,
        }
    }

    /// Counts one occurrence; true when it is time to log (the count is then in `count`).
    fn hit(&mut self) -> Option<u64> {
        self.count += 1;
        if self.last.is_some_and(|last| last.elapsed() < WARN_EVERY) {
            return None;
        }
        self.last = Some(Instant::now());
        Some(std::mem::take(&mut self.count))
    }
}

/// Serves `app` on `listener` until `shutdown` completes; then closes idle connections, lets
/// requests in flight finish for at most `grace`, and drops what is left.
pub async fn serve<E>(
    listener: TcpListener,
    app: E,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> std::io::Result<()>
where
    E: Endpoint<Output = Response> + 'static,
{
    let app = Arc::new(app);
    let local = LocalAddr(listener.local_addr()?.into());
    let shared = Arc::new(Shared {
        limits,
        origin: Instant::now(),
        open: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(0),
        slots: Arc::new(Semaphore::new(limits.max_connections.max(1))),
    });
    let stop = CancellationToken::new();
    let abort = CancellationToken::new();
    // Each connection task holds a sender: when all are gone, every connection is done.
    let (alive, mut all_done) = mpsc::channel::<()>(1);
    let mut turned_away = Throttled::new();
    let mut evicted = Throttled::new();
    let mut failed = Throttled::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                if let Some(count) = failed.hit() {
                    tracing::warn!(%error, count, "cannot accept connections");
                }
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                }
            }
        };
        let Some((slot, evicting)) = shared.admit().await else {
            if let Some(count) = turned_away.hit() {
                tracing::warn!(
                    max_connections = limits.max_connections,
                    turned_away = count,
                    "connection limit reached and no connection is idle: turning new ones away (see --max-connections)"
                );
            }
            drop(stream);
            continue;
        };
        if evicting && let Some(count) = evicted.hit() {
            tracing::info!(
                max_connections = limits.max_connections,
                closed = count,
                "connection limit reached: closing the connections idle the longest to make room"
            );
        }
        let _ = stream.set_nodelay(true);
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn::new(id, shared.now()));
        shared.open().insert(id, conn.clone());
        let io = conn::Io::new(stream, conn.clone(), shared.clone(), slot);
        tokio::spawn(conn::serve_connection(conn::Connection {
            shared: shared.clone(),
            conn,
            io,
            app: app.clone(),
            local: local.clone(),
            remote: poem::web::RemoteAddr(remote.into()),
            stop: stop.clone(),
            abort: abort.clone(),
            alive: alive.clone(),
        }));
    }
    stop.cancel();
    drop(listener);
    drop(alive);
    if tokio::time::timeout(grace, all_done.recv()).await.is_err() {
        tracing::warn!(
            grace_seconds = grace.as_secs_f32(),
            "requests still in flight after the grace period: dropping them"
        );
        abort.cancel();
        let _ = all_done.recv().await;
    }
    Ok(())
}
