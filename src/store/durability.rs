//! Group commit: many concurrent writes made durable by one fsync.
//!
//! In the server, write transactions commit with `Durability::None` (no fsync), and a
//! flusher thread makes every commit so far durable with one `Durability::Immediate` commit
//! (redb persists all earlier commits with it). [`Store::run`](super::Store::run) answers a
//! write only after a flush that covers it, so an acknowledged write still survives `kill -9`
//! and power loss, while concurrent writers share one fsync instead of queueing for one each.
//! Readers may see a write a moment before it is durable; a crash in that moment loses only
//! writes nobody was told had succeeded. Answers that show such a write without writing
//! (an idempotent replay, a no-op update) commit an empty transaction, so they wait too.
//!
//! If flushing fails repeatedly, or the flusher dies, waiters get
//! [`StoreError::NotDurable`](super::StoreError::NotDurable) instead of hanging.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;

use redb::Database;
use tokio::sync::watch;

use super::StoreError;

/// How many flushes in a row may fail before waiters are told.
const FLUSH_ATTEMPTS: u32 = 3;

pub(super) struct GroupCommit {
    /// Non-durable commits so far.
    committed: AtomicU64,
    /// Woken when a writer waits for a flush.
    wake: (Mutex<()>, Condvar),
    /// The highest generation known durable.
    flushed: watch::Sender<u64>,
    /// Set when flushing keeps failing or the flusher died.
    failed: AtomicBool,
}

/// Marks the group commit failed if the flusher thread unwinds.
struct FailOnPanic<'a>(&'a GroupCommit);

impl Drop for FailOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.fail();
        }
    }
}

impl GroupCommit {
    /// Starts the flusher thread for `db`; it ends when the database is dropped.
    pub(super) fn start(db: &Arc<Database>) -> Arc<Self> {
        let group = Arc::new(Self {
            committed: AtomicU64::new(0),
            wake: (Mutex::new(()), Condvar::new()),
            flushed: watch::channel(0).0,
            failed: AtomicBool::new(false),
        });
        let (weak, flusher) = (Arc::downgrade(db), group.clone());
        std::thread::Builder::new()
            .name("tasker-flush".into())
            .spawn(move || flusher.flush_loop(weak))
            .expect("the flusher thread starts");
        group
    }

    /// Records a non-durable commit about to be made; returns its generation, which
    /// [`GroupCommit::durable`] waits for.
    pub(super) fn committed(&self) -> u64 {
        self.committed.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// How many commits were made so far (durable or not).
    pub(super) fn committed_so_far(&self) -> u64 {
        self.committed.load(Ordering::SeqCst)
    }

    /// Waits until commit `generation` is durable; an error when it cannot become durable.
    pub(super) async fn durable(&self, generation: u64) -> Result<(), StoreError> {
        let mut flushed = self.flushed.subscribe();
        {
            let _guard = self.wake.0.lock().unwrap_or_else(|e| e.into_inner());
            self.wake.1.notify_one();
        }
        let failed = || self.failed.load(Ordering::SeqCst);
        let _ = flushed
            .wait_for(|done| *done >= generation || failed())
            .await;
        if *flushed.borrow() >= generation {
            Ok(())
        } else {
            Err(StoreError::NotDurable)
        }
    }

    fn fail(&self) {
        self.failed.store(true, Ordering::SeqCst);
        // Wake every waiter so it sees the failure.
        self.flushed.send_modify(|_| {});
    }

    fn flush_loop(&self, db: Weak<Database>) {
        let _guard = FailOnPanic(self);
        let mut done = 0;
        let mut failures = 0;
        loop {
            {
                let guard = self.wake.0.lock().unwrap_or_else(|e| e.into_inner());
                if self.committed.load(Ordering::SeqCst) <= done {
                    let _ = self.wake.1.wait_timeout(guard, Duration::from_millis(200));
                }
            }
            let target = self.committed.load(Ordering::SeqCst);
            if target <= done {
                if db.strong_count() == 0 {
                    return;
                }
                continue;
            }
            let Some(database) = db.upgrade() else { return };
            let flushed = (|| -> Result<(), redb::Error> {
                let mut txn = database.begin_write()?;
                txn.set_durability(redb::Durability::Immediate)?;
                txn.commit()?;
                Ok(())
            })();
            drop(database);
            match flushed {
                Ok(()) => {
                    done = target;
                    failures = 0;
                    self.flushed.send_replace(done);
                }
                Err(e) => {
                    failures += 1;
                    tracing::error!(error = %e, failures, "flushing commits to disk failed");
                    if failures >= FLUSH_ATTEMPTS {
                        self.fail();
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
}
