//! The reminder schedule and each user's notification preferences.
//!
//! **The schedule** is `REMINDERS`, keyed by fire time first, so the worker reads what is due
//! with one bounded range read from the start; `REMINDERS_BY_SUBJECT` finds a task's (or a
//! user's digest) entries to move or drop them. An entry is `(fire_at, user, subject, kind)`:
//! the subject is a task id for a due-date reminder, 0 for the digest, and the change-log
//! `seq` of a notification to email at once.
//!
//! **Kept current inside the task write transactions.** Every task row write goes through
//! `TaskTables::write`/`delete`, which call [`Tx::sync_task_reminders`]: when the due date,
//! the done-ness or the assignees changed, the task's entries are dropped for everyone who
//! was assigned and recomputed for everyone who is. A cascade (a team or project deleted, a
//! member leaving) writes its tasks through the same two functions, so nothing is missed
//! and there is no cursor to keep. Saving preferences recomputes that user's entries through
//! the index of their assigned tasks by due date (`TASKS_SORTED`), never a scan of all tasks.
//! The worker still re-checks each entry when it fires (see `service/reminders.rs`).

use chrono::{DateTime, Utc};
use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};

use super::codec::{decode, encode, read_row};
use super::tables::*;
use super::tx::Tx;
use super::{Store, StoreError};
use crate::domain::UserId;
use crate::domain::notification::Notification;
use crate::domain::reminder::{Delivery, Preferences, ReminderKind};
use crate::domain::task::{Task, TaskSort, TaskStatus, time_key};

/// The subject of a user's digest entry.
pub const DIGEST_SUBJECT: u128 = 0;
/// The most tasks a digest lists (overdue first by due date).
pub const DIGEST_MAX_TASKS: usize = 100;

/// One schedule entry's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReminderKey {
    pub fire_at: DateTime<Utc>,
    pub user: UserId,
    pub subject: u128,
    pub code: u32,
}

impl ReminderKey {
    fn raw(&self) -> (i64, u128, u128, u32) {
        (
            self.fire_at.timestamp_micros(),
            self.user.as_u128(),
            self.subject,
            self.code,
        )
    }

    fn from_raw((at, user, subject, code): (i64, u128, u128, u32)) -> Self {
        Self {
            fire_at: DateTime::from_timestamp_micros(at).unwrap_or_default(),
            user: UserId::from_u128(user),
            subject,
            code,
        }
    }

    pub fn kind(&self) -> Option<ReminderKind> {
        ReminderKind::from_code(self.code)
    }
}

/// What an entry remembers of its cause: the due date it was computed from (a task whose due
/// date has since moved is not reminded by it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Scheduled {
    pub due: Option<DateTime<Utc>>,
}

/// Whether a write changed anything the schedule depends on.
fn schedule_fields(task: &Task) -> (Option<DateTime<Utc>>, bool, &[UserId]) {
    (
        task.due_date,
        task.status == TaskStatus::Done,
        &task.assignee_ids,
    )
}

impl Tx<'_> {
    /// A user's preferences (the defaults when never saved).
    pub fn preferences(&self, user: UserId) -> Result<Preferences, StoreError> {
        let rows = self.txn().open_table(PREFERENCES)?;
        Ok(read_row(&rows, "preferences", user.as_u128())?.unwrap_or_default())
    }

    /// Saves `prefs`; when anything the schedule depends on changed, recomputes the user's
    /// digest and the reminders of every task assigned to them that has a due date.
    pub fn save_preferences(
        &self,
        user: UserId,
        prefs: &Preferences,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let before = self.preferences(user)?;
        self.txn()
            .open_table(PREFERENCES)?
            .insert(user.as_u128(), encode(prefs)?.as_slice())?;
        if !before.schedule_differs(prefs) && before.reminds() == prefs.reminds() {
            return Ok(());
        }
        self.schedule_digest(user, prefs, now)?;
        for task in self.dated_tasks_of(user, None, usize::MAX)? {
            self.schedule_task_for(&task, user, prefs, now)?;
        }
        Ok(())
    }

    /// Called for every task row written (`before`: the row replaced, `None` for a new one;
    /// `after`: `None` when deleted).
    pub(super) fn sync_task_reminders(
        &self,
        before: Option<&Task>,
        after: Option<&Task>,
    ) -> Result<(), StoreError> {
        if before.map(schedule_fields) == after.map(schedule_fields) {
            return Ok(());
        }
        let task = after.or(before).map(|t| t.id.as_u128()).unwrap_or_default();
        let now = Utc::now();
        for user in before.iter().flat_map(|t| &t.assignee_ids) {
            if !after.is_some_and(|t| t.is_assigned_to(*user)) {
                self.clear_entries(task, *user)?;
            }
        }
        if let Some(after) = after {
            for user in &after.assignee_ids {
                let prefs = self.preferences(*user)?;
                self.schedule_task_for(after, *user, &prefs, now)?;
            }
        }
        Ok(())
    }

    /// Replaces `user`'s entries for `task` with those its due date and `prefs` give (none
    /// when it is done, has no due date, or nothing would reach the user); only future times.
    fn schedule_task_for(
        &self,
        task: &Task,
        user: UserId,
        prefs: &Preferences,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let subject = task.id.as_u128();
        self.clear_entries(subject, user)?;
        let Some(due) = task.due_date else {
            return Ok(());
        };
        if task.status == TaskStatus::Done || !prefs.reminds() {
            return Ok(());
        }
        let value = Scheduled { due: Some(due) };
        for (fire_at, kind) in prefs.task_reminders(due) {
            if fire_at > now {
                self.insert_entry(
                    ReminderKey {
                        fire_at,
                        user,
                        subject,
                        code: kind.code(),
                    },
                    &value,
                )?;
            }
        }
        Ok(())
    }

    /// Replaces `user`'s digest entry with the next one `prefs` give (none when off).
    pub fn schedule_digest(
        &self,
        user: UserId,
        prefs: &Preferences,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.clear_entries(DIGEST_SUBJECT, user)?;
        if let Some(fire_at) = prefs.next_digest(now) {
            let key = ReminderKey {
                fire_at,
                user,
                subject: DIGEST_SUBJECT,
                code: ReminderKind::Digest.code(),
            };
            self.insert_entry(key, &Scheduled::default())?;
        }
        Ok(())
    }

    fn insert_entry(&self, key: ReminderKey, value: &Scheduled) -> Result<(), StoreError> {
        let (at, user, subject, code) = key.raw();
        self.txn()
            .open_table(REMINDERS)?
            .insert((at, user, subject, code), encode(value)?.as_slice())?;
        self.txn()
            .open_table(REMINDERS_BY_SUBJECT)?
            .insert((subject, user, at, code), ())?;
        Ok(())
    }

    /// Drops every entry of `user` about `subject`.
    fn clear_entries(&self, subject: u128, user: UserId) -> Result<(), StoreError> {
        let u = user.as_u128();
        let mut by_subject = self.txn().open_table(REMINDERS_BY_SUBJECT)?;
        let mut rows = self.txn().open_table(REMINDERS)?;
        let keys: Vec<(u128, u128, i64, u32)> = by_subject
            .range((subject, u, i64::MIN, 0)..=(subject, u, i64::MAX, u32::MAX))?
            .map(|e| e.map(|(k, _)| k.value()))
            .collect::<Result<_, _>>()?;
        for (subject, user, at, code) in keys {
            by_subject.remove((subject, user, at, code))?;
            rows.remove((at, user, subject, code))?;
        }
        Ok(())
    }

    /// Removes an entry and returns what it held; `None` when it is already gone (fired by
    /// an earlier pass, or dropped by a task write). The caller sends in the same write.
    pub fn take_reminder(&self, key: ReminderKey) -> Result<Option<Scheduled>, StoreError> {
        let (at, user, subject, code) = key.raw();
        let removed = self
            .txn()
            .open_table(REMINDERS)?
            .remove((at, user, subject, code))?
            .map(|v| decode::<Scheduled>("reminders", v.value()))
            .transpose()?;
        self.txn()
            .open_table(REMINDERS_BY_SUBJECT)?
            .remove((subject, user, at, code))?;
        Ok(removed)
    }

    /// Where a new notification goes besides the inbox, by the recipient's choice for its
    /// kind: an entry to email it at once, or a line in their next digest.
    pub(super) fn route_notification(&self, n: &Notification) -> Result<(), StoreError> {
        let prefs = self.preferences(n.user_id)?;
        match prefs.delivery(n.kind) {
            Delivery::InApp => Ok(()),
            Delivery::Email => self.insert_entry(
                ReminderKey {
                    fire_at: n.created_at,
                    user: n.user_id,
                    subject: u128::from(n.seq),
                    code: ReminderKind::Notice.code(),
                },
                &Scheduled::default(),
            ),
            Delivery::Digest => {
                self.txn()
                    .open_table(DIGEST_ITEMS)?
                    .insert((n.user_id.as_u128(), n.seq), ())?;
                Ok(())
            }
        }
    }

    /// A notification of `user`'s inbox (`None` once swept or never there).
    pub fn notification_of(
        &self,
        user: UserId,
        seq: u64,
    ) -> Result<Option<Notification>, StoreError> {
        let rows = self.txn().open_table(NOTIFICATIONS)?;
        rows.get((user.as_u128(), seq))?
            .map(|v| decode("notifications", v.value()))
            .transpose()
    }

    /// Takes the notifications waiting for `user`'s digest (oldest first; those swept from
    /// the inbox meanwhile are skipped).
    pub fn take_digest_items(&self, user: UserId) -> Result<Vec<Notification>, StoreError> {
        let u = user.as_u128();
        let seqs: Vec<u64> = {
            let mut items = self.txn().open_table(DIGEST_ITEMS)?;
            let seqs = items
                .range((u, 0)..=(u, u64::MAX))?
                .map(|e| e.map(|(k, _)| k.value().1))
                .collect::<Result<Vec<_>, _>>()?;
            for seq in &seqs {
                items.remove((u, *seq))?;
            }
            seqs
        };
        let mut found = Vec::with_capacity(seqs.len());
        for seq in seqs {
            found.extend(self.notification_of(user, seq)?);
        }
        Ok(found)
    }

    /// Tasks assigned to `user` that are not done and due before `before` (all with a due
    /// date when `None`), earliest first, at most `limit`: one range read of the user's
    /// assigned list by due date.
    pub fn dated_tasks_of(
        &self,
        user: UserId,
        before: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<Task>, StoreError> {
        let tag = TaskSort::DueDate.tag();
        let u = user.as_u128();
        let end = before.map_or(crate::domain::task::NO_DUE_DATE, time_key);
        let ids: Vec<u128> = self
            .txn()
            .open_table(TASKS_SORTED)?
            .range((0, u, tag, 0, 0)..(0, u, tag, end, 0))?
            .map(|e| e.map(|(k, _)| k.value().4))
            .collect::<Result<_, _>>()?;
        let rows = self.txn().open_table(TASKS)?;
        let mut tasks = Vec::new();
        for id in ids {
            if tasks.len() >= limit {
                break;
            }
            if let Some(task) = read_row::<Task>(&rows, "tasks", id)?
                && task.status != TaskStatus::Done
            {
                tasks.push(task);
            }
        }
        Ok(tasks)
    }
}

impl Store {
    /// A user's preferences (the defaults when never saved).
    pub fn preferences(&self, user: UserId) -> Result<Preferences, StoreError> {
        let txn = self.db().begin_read()?;
        let rows = txn.open_table(PREFERENCES)?;
        Ok(read_row(&rows, "preferences", user.as_u128())?.unwrap_or_default())
    }

    /// The first `limit` schedule entries, earliest first.
    pub fn next_reminders(&self, limit: usize) -> Result<Vec<ReminderKey>, StoreError> {
        let txn = self.db().begin_read()?;
        let rows = txn.open_table(REMINDERS)?;
        rows.iter()?
            .take(limit)
            .map(|e| e.map(|(k, _)| ReminderKey::from_raw(k.value())))
            .collect::<Result<_, _>>()
            .map_err(Into::into)
    }
}
