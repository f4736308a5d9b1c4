//! The outbox: messages (mail today; push later) queued by the write transaction of whatever
//! caused them, so a message exists exactly when its cause was committed, and survives a
//! restart or `kill -9` like any other row. One worker (`service::outbox`) reads the due ones
//! through the time index [`OUTBOX_DUE`], sends each, and then removes it, reschedules it with
//! a later attempt time, or moves it to [`OUTBOX_FAILED`].
//!
//! Delivery is at least once: a crash between the server's answer and the commit that removes
//! the row sends that message once more at the next start, with the same `Message-ID`.

use chrono::{DateTime, Utc};
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};

use super::codec::{decode, encode, read_row};
use super::tables::{OUTBOX, OUTBOX_DUE, OUTBOX_FAILED};
use super::tx::Tx;
use super::{Store, StoreError};

/// How long a message is retried before it is given up on.
pub const OUTBOX_GIVE_UP: chrono::Duration = chrono::Duration::days(2);

/// One email, rendered when it was queued: what the worker sends, unchanged, on every try.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailMessage {
    /// The recipient's address.
    pub to: String,
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
    /// `<...@host>`: the same on every try, so a message sent twice (see the module header)
    /// is recognised as one by mail clients.
    pub message_id: String,
    /// Extra headers (name, value), e.g. `List-Unsubscribe`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Debug for EmailMessage {
    // Bodies carry single-use links: never in a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailMessage")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("message_id", &self.message_id)
            .finish_non_exhaustive()
    }
}

/// What the outbox carries. Each kind has its own sender in `service::outbox`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Message {
    /// An email, sent over SMTP (`--smtp-url`).
    Email(EmailMessage),
    /// An ntfy push (lane remind), POSTed through the egress guard.
    Push(PushMessage),
}

/// One ntfy push, published as JSON to the topic's server (see `service::reminders`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushMessage {
    /// The topic URL, e.g. `https://ntfy.sh/my-topic`.
    pub url: String,
    pub title: String,
    pub message: String,
    /// The link a tap opens.
    pub click: Option<String>,
    pub tags: Vec<String>,
    /// 1 (min) to 5 (max); 3 is the default.
    pub priority: u8,
}

impl Message {
    /// A short label for logs and metrics: `email`.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Email(_) => "email",
            Message::Push(_) => "push",
        }
    }
}

/// A queued message and its delivery state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// A UUIDv7: the outbox key.
    pub id: uuid::Uuid,
    pub message: Message,
    pub created_at: DateTime<Utc>,
    /// Tries made so far.
    pub attempts: u32,
    /// When the next try is due (the [`OUTBOX_DUE`] key).
    pub next_attempt_at: DateTime<Utc>,
    /// Why the last try failed.
    #[serde(default)]
    pub last_error: Option<String>,
}

/// The outbox's figures for `/metrics`: each a table length (O(1)) or one index read.
#[derive(Debug, Clone, Copy, Default)]
pub struct OutboxStats {
    /// Messages waiting to be sent (due or retrying).
    pub queued: u64,
    /// Messages given up on.
    pub failed: u64,
    /// When the oldest-scheduled waiting message is due.
    pub next_due: Option<DateTime<Utc>>,
}

fn due_key(at: DateTime<Utc>, id: uuid::Uuid) -> (i64, u128) {
    (at.timestamp_millis(), id.as_u128())
}

impl Tx<'_> {
    /// Queues `message` in this write transaction, due at once: it is sent only if this
    /// transaction commits. Returns its id.
    pub fn enqueue(&self, message: Message, now: DateTime<Utc>) -> Result<uuid::Uuid, StoreError> {
        self.enqueue_at(message, now, now)
    }

    /// Queues `message` in this write transaction, due at `due` (a message that must wait,
    /// such as a reminder). The give-up clock starts when it is due.
    pub fn enqueue_at(
        &self,
        message: Message,
        now: DateTime<Utc>,
        due: DateTime<Utc>,
    ) -> Result<uuid::Uuid, StoreError> {
        let id = uuid::Uuid::now_v7();
        let entry = OutboxEntry {
            id,
            message,
            created_at: now.max(due),
            attempts: 0,
            next_attempt_at: due,
            last_error: None,
        };
        self.txn()
            .open_table(OUTBOX)?
            .insert(id.as_u128(), encode(&entry)?.as_slice())?;
        self.txn()
            .open_table(OUTBOX_DUE)?
            .insert(due_key(due, id), ())?;
        Ok(id)
    }
}

impl Store {
    /// Queues `message` in a transaction of its own (`tasker email test` and tests; a message
    /// with a cause is queued in the cause's transaction with [`Tx::enqueue`]).
    pub fn enqueue(&self, message: Message, now: DateTime<Utc>) -> Result<uuid::Uuid, StoreError> {
        self.write(|tx| tx.enqueue(message, now))
    }

    /// Up to `limit` messages due at `now`, the longest due first: one range read of the time
    /// index and a row read each.
    pub fn due_messages(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let txn = self.db().begin_read()?;
        let due = txn.open_table(OUTBOX_DUE)?;
        let rows = txn.open_table(OUTBOX)?;
        let mut entries = Vec::new();
        for key in due
            .range(..=(now.timestamp_millis(), u128::MAX))?
            .take(limit)
        {
            let (_, id) = key?.0.value();
            if let Some(entry) = read_row(&rows, "outbox", id)? {
                entries.push(entry);
            }
        }
        Ok(entries)
    }

    /// Removes a sent message (no-op when it is gone already).
    pub fn outbox_sent(&self, entry: &OutboxEntry) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.txn().open_table(OUTBOX)?.remove(entry.id.as_u128())?;
            tx.txn()
                .open_table(OUTBOX_DUE)?
                .remove(due_key(entry.next_attempt_at, entry.id))?;
            Ok(())
        })
    }

    /// Records a failed try of `entry` and schedules the next one at `next`.
    pub fn outbox_retry(
        &self,
        entry: &OutboxEntry,
        error: &str,
        next: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            let mut due = tx.txn().open_table(OUTBOX_DUE)?;
            due.remove(due_key(entry.next_attempt_at, entry.id))?;
            let updated = OutboxEntry {
                attempts: entry.attempts + 1,
                next_attempt_at: next,
                last_error: Some(error.to_string()),
                ..entry.clone()
            };
            tx.txn()
                .open_table(OUTBOX)?
                .insert(entry.id.as_u128(), encode(&updated)?.as_slice())?;
            due.insert(due_key(next, entry.id), ())?;
            Ok(())
        })
    }

    /// Gives up on `entry`: it leaves the queue for [`OUTBOX_FAILED`].
    pub fn outbox_give_up(&self, entry: &OutboxEntry, error: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.txn().open_table(OUTBOX)?.remove(entry.id.as_u128())?;
            tx.txn()
                .open_table(OUTBOX_DUE)?
                .remove(due_key(entry.next_attempt_at, entry.id))?;
            let failed = OutboxEntry {
                attempts: entry.attempts + 1,
                last_error: Some(error.to_string()),
                ..entry.clone()
            };
            tx.txn()
                .open_table(OUTBOX_FAILED)?
                .insert(entry.id.as_u128(), encode(&failed)?.as_slice())?;
            Ok(())
        })
    }

    /// The outbox's figures (see [`OutboxStats`]).
    pub fn outbox_stats(&self) -> Result<OutboxStats, StoreError> {
        let txn = self.db().begin_read()?;
        let next_due = txn
            .open_table(OUTBOX_DUE)?
            .first()?
            .and_then(|(key, _)| DateTime::from_timestamp_millis(key.value().0));
        Ok(OutboxStats {
            queued: txn.open_table(OUTBOX)?.len()?,
            failed: txn.open_table(OUTBOX_FAILED)?.len()?,
            next_due,
        })
    }

    /// Messages given up on, newest first, at most `limit` (for the operator and tests).
    pub fn failed_messages(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let txn = self.db().begin_read()?;
        let mut entries = Vec::new();
        for row in txn.open_table(OUTBOX_FAILED)?.iter()?.rev().take(limit) {
            entries.push(decode("outbox_failed", row?.1.value())?);
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(to: &str) -> Message {
        Message::Email(EmailMessage {
            to: to.into(),
            subject: "s".into(),
            text: "t".into(),
            html: "<p>t</p>".into(),
            message_id: "<1@x>".into(),
            headers: vec![],
        })
    }

    #[test]
    fn messages_come_due_in_order_and_leave_when_sent_retried_or_given_up() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let now = Utc::now();
        store.enqueue(email("a@x.org"), now).unwrap();
        store
            .write(|tx| tx.enqueue_at(email("b@x.org"), now, now + chrono::Duration::seconds(1)))
            .unwrap();
        let due = store.due_messages(now, 10).unwrap();
        assert_eq!(due.len(), 1, "b is not due yet");
        let later = now + chrono::Duration::seconds(2);
        let due = store.due_messages(later, 10).unwrap();
        assert_eq!(due.len(), 2);
        store
            .outbox_retry(&due[0], "421 busy", later + chrono::Duration::minutes(1))
            .unwrap();
        store.outbox_sent(&due[1]).unwrap();
        assert!(store.due_messages(later, 10).unwrap().is_empty());
        let stats = store.outbox_stats().unwrap();
        assert_eq!((stats.queued, stats.failed), (1, 0));
        let retried = store
            .due_messages(later + chrono::Duration::minutes(2), 10)
            .unwrap();
        assert_eq!(retried[0].attempts, 1);
        assert_eq!(retried[0].last_error.as_deref(), Some("421 busy"));
        store
            .outbox_give_up(&retried[0], "550 no such user")
            .unwrap();
        let stats = store.outbox_stats().unwrap();
        assert_eq!((stats.queued, stats.failed, stats.next_due), (0, 1, None));
        assert_eq!(store.failed_messages(5).unwrap()[0].attempts, 2);
    }
}
