//! The outbox worker: one task that sends the due messages of the outbox (`store::outbox`),
//! retrying failures with a doubling delay (`--smtp-retry`, default 1 minute, up to 1 hour)
//! and giving up after [`OUTBOX_GIVE_UP`] or at a permanent refusal (5xx). It wakes when a
//! use case queued a message ([`Service::wake_outbox`]) and when the next retry is due. A
//! failing server delays messages, never a request: requests only queue.
//!
//! Delivery is at least once: a crash after the SMTP server accepted a message and before the
//! row is removed sends it once more at the next start, with the same `Message-ID`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{Notify, watch};

use super::{Error, Gauge, Result, Service};
use crate::mail::{Mailer, SendError, SmtpAnswer};
use crate::store::{EmailMessage, Message, OUTBOX_GIVE_UP, OutboxEntry};

/// Messages read from the due index per pass.
const BATCH: usize = 50;
/// The longest delay between two retries of a message.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);
/// The worker looks at the outbox at least this often, woken or not.
const IDLE_CHECK: Duration = Duration::from_secs(60);

/// The outbox's senders and state, shared by the service's clones.
pub(super) struct Outbox {
    /// The SMTP sender; `None` without `--smtp-url`.
    mailer: Option<Mailer>,
    /// The first retry delay (`--smtp-retry`).
    retry_base: Duration,
    wake: Notify,
    /// Tries that failed since start (each retry counts).
    failed_tries: AtomicU64,
    /// Messages sent since start.
    sent: AtomicU64,
    /// When each (kind, account) last got an account message it asked for (resend, reset).
    recent: std::sync::Mutex<std::collections::HashMap<(&'static str, u128), std::time::Instant>>,
}

impl Outbox {
    pub(super) fn new(config: &crate::config::MailConfig) -> Self {
        let mailer = Mailer::from_config(config).unwrap_or_else(|e| {
            tracing::error!(error = %e, "mail is off: the SMTP settings are not usable");
            None
        });
        if let Some(mailer) = &mailer {
            tracing::info!(server = %mailer.server(), "mail is sent through SMTP");
        }
        Self {
            mailer,
            retry_base: config.smtp_retry,
            wake: Notify::new(),
            failed_tries: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            recent: Default::default(),
        }
    }

    /// Whether `key` may get a message now (none in the last `every`); records it if so.
    pub(super) fn throttle(&self, key: (&'static str, u128), every: Duration) -> bool {
        let now = std::time::Instant::now();
        let mut recent = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        recent.retain(|_, at| now.duration_since(*at) < every);
        if recent.contains_key(&key) {
            return false;
        }
        recent.insert(key, now);
        true
    }

    /// The delay before try number `attempts + 1` (`attempts` failed so far, at least 1).
    fn retry_delay(&self, attempts: u32) -> Duration {
        let factor = 1u32 << attempts.saturating_sub(1).min(16);
        self.retry_base.saturating_mul(factor).min(MAX_RETRY_DELAY)
    }
}

impl Service {
    /// The SMTP sender, or `mail_not_configured` (503) without `--smtp-url`.
    pub fn mailer(&self) -> Result<&Mailer> {
        self.outbox.mailer.as_ref().ok_or(Error::MailNotConfigured)
    }

    /// The server's public address (`--public-url`, no trailing slash), when it is set: links
    /// that leave the browser (mail, calendar feeds) point there.
    pub fn public_url(&self) -> Option<&str> {
        self.config.mail.public_url.as_deref()
    }

    /// Whether mail is configured (`--smtp-url`): pages and answers say so when it is not.
    pub fn mail_configured(&self) -> bool {
        self.outbox.mailer.is_some()
    }

    /// Tells the worker that a message was queued (call after the write is durable, which
    /// [`crate::store::Store::run`] has waited for when it returns).
    pub fn wake_outbox(&self) {
        self.outbox.wake.notify_one();
    }

    /// `tasker email test`: sends `message` now, outside the outbox, and returns the server's
    /// answer.
    pub async fn send_now(&self, message: &EmailMessage) -> Result<SmtpAnswer, SendError> {
        match &self.outbox.mailer {
            Some(mailer) => mailer.send(message).await,
            None => Err(SendError {
                permanent: true,
                message: "mail is not configured (--smtp-url)".into(),
            }),
        }
    }

    /// The outbox's gauges for `/metrics`.
    pub(super) async fn outbox_gauges(&self) -> Result<Vec<Gauge>> {
        let stats = self.store.run(|s| s.outbox_stats()).await?;
        Ok(vec![
            Gauge {
                name: "tasker_outbox_queued",
                help: "Messages waiting in the outbox (due or waiting for a retry).",
                value: stats.queued as f64,
            },
            Gauge {
                name: "tasker_outbox_failed",
                help: "Messages given up on (refused for good, or retried for 2 days).",
                value: stats.failed as f64,
            },
            Gauge {
                name: "tasker_outbox_failed_tries",
                help: "Tries to send a message that failed since the server started.",
                value: self.outbox.failed_tries.load(Ordering::Relaxed) as f64,
            },
            Gauge {
                name: "tasker_outbox_sent",
                help: "Messages sent since the server started.",
                value: self.outbox.sent.load(Ordering::Relaxed) as f64,
            },
        ])
    }

    /// The worker, until `stop` changes: sends what is due, then sleeps until woken or the
    /// next retry is due.
    pub async fn run_outbox(&self, mut stop: watch::Receiver<bool>) {
        let outbox: Arc<Outbox> = self.outbox.clone();
        loop {
            loop {
                let due = match self.store.run(|s| s.due_messages(Utc::now(), BATCH)).await {
                    Ok(due) => due,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read the outbox");
                        break;
                    }
                };
                let full = due.len() == BATCH;
                for entry in due {
                    tokio::select! {
                        () = self.deliver(entry) => {}
                        // A message cut off mid-conversation is sent again at the next start.
                        _ = stop.changed() => return,
                    }
                }
                if !full {
                    break;
                }
            }
            let next = match self.store.run(|s| s.outbox_stats()).await {
                Ok(stats) => stats.next_due,
                Err(_) => None,
            };
            let wait = next.map_or(IDLE_CHECK, |at| {
                (at - Utc::now())
                    .to_std()
                    .unwrap_or_default()
                    .min(IDLE_CHECK)
            });
            tokio::select! {
                () = outbox.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// One try at `entry`, and its outcome recorded.
    async fn deliver(&self, entry: OutboxEntry) {
        let outcome = match &entry.message {
            Message::Email(email) => self.send_now(email).await.map(|a| a.to_string()),
            Message::Push(push) => self.send_push(push).await,
        };
        let (id, kind) = (entry.id, entry.message.kind());
        let recorded = match outcome {
            Ok(answer) => {
                self.outbox.sent.fetch_add(1, Ordering::Relaxed);
                tracing::info!(message = %id, kind, attempts = entry.attempts + 1, answer = %answer, "message sent");
                self.store.run(move |s| s.outbox_sent(&entry)).await
            }
            Err(e) => {
                self.outbox.failed_tries.fetch_add(1, Ordering::Relaxed);
                let now = Utc::now();
                let too_old = now - entry.created_at >= OUTBOX_GIVE_UP;
                if e.permanent || too_old {
                    tracing::warn!(message = %id, kind, attempts = entry.attempts + 1, error = %e, "message given up on");
                    self.store
                        .run(move |s| s.outbox_give_up(&entry, &e.message))
                        .await
                } else {
                    let delay = self.outbox.retry_delay(entry.attempts + 1);
                    let next = now + chrono::Duration::from_std(delay).unwrap_or_default();
                    tracing::warn!(message = %id, kind, attempts = entry.attempts + 1, error = %e, retry_in = ?delay, "message not sent; will retry");
                    self.store
                        .run(move |s| s.outbox_retry(&entry, &e.message, next))
                        .await
                }
            }
        };
        if let Err(e) = recorded {
            tracing::error!(message = %id, error = %e, "cannot record a message's outcome");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_from_the_base_up_to_an_hour() {
        let mut config = crate::Config::new("/nonexistent").mail;
        config.smtp_retry = Duration::from_secs(60);
        let outbox = Outbox::new(&config);
        let delays: Vec<u64> = (1..=9).map(|n| outbox.retry_delay(n).as_secs()).collect();
        assert_eq!(delays, [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
        assert_eq!(outbox.retry_delay(400).as_secs(), 3600);
    }
}
