//! Calendar feeds: one row per user (`CALENDAR_FEEDS`) and the token-hash index that finds it
//! (`CALENDAR_FEEDS_BY_HASH`), written together; and the feed's read of a user's dated
//! assigned tasks, a bounded range of the assignee's due-date index (`TASKS_SORTED`).

use redb::ReadableDatabase;

use super::codec::{encode, read_row};
use super::tables::*;
use super::{Store, StoreError};
use crate::domain::calendar::CalendarFeed;
use crate::domain::task::{NO_DUE_DATE, Task, TaskSort};
use crate::domain::{User, UserId};

impl Store {
    /// The user's feed, if they have one.
    pub fn calendar_feed(&self, user: UserId) -> Result<Option<CalendarFeed>, StoreError> {
        let txn = self.db().begin_read()?;
        read_row(
            &txn.open_table(CALENDAR_FEEDS)?,
            "calendar_feeds",
            user.as_u128(),
        )
    }

    /// Stores `feed` as its user's feed; the token it replaces stops opening anything in the
    /// same commit.
    pub fn replace_calendar_feed(&self, feed: &CalendarFeed) -> Result<(), StoreError> {
        self.write(|tx| {
            let mut rows = tx.txn().open_table(CALENDAR_FEEDS)?;
            let mut by_hash = tx.txn().open_table(CALENDAR_FEEDS_BY_HASH)?;
            let user = feed.user_id.as_u128();
            let old: Option<CalendarFeed> = read_row(&rows, "calendar_feeds", user)?;
            if let Some(old) = old {
                by_hash.remove(old.token_hash.as_str())?;
            }
            rows.insert(user, encode(feed)?.as_slice())?;
            by_hash.insert(feed.token_hash.as_str(), user)?;
            Ok(())
        })
    }

    /// Removes the user's feed; false when there was none.
    pub fn delete_calendar_feed(&self, user: UserId) -> Result<bool, StoreError> {
        self.write(|tx| {
            let mut rows = tx.txn().open_table(CALENDAR_FEEDS)?;
            let old: Option<CalendarFeed> = read_row(&rows, "calendar_feeds", user.as_u128())?;
            let Some(old) = old else { return Ok(false) };
            rows.remove(user.as_u128())?;
            tx.txn()
                .open_table(CALENDAR_FEEDS_BY_HASH)?
                .remove(old.token_hash.as_str())?;
            Ok(true)
        })
    }

    /// The feed a token hash opens and its owner's account, read in one snapshot.
    pub fn calendar_feed_by_hash(
        &self,
        hash: &str,
    ) -> Result<Option<(CalendarFeed, User)>, StoreError> {
        let txn = self.db().begin_read()?;
        let Some(user) = txn
            .open_table(CALENDAR_FEEDS_BY_HASH)?
            .get(hash)?
            .map(|id| id.value())
        else {
            return Ok(None);
        };
        let feed: Option<CalendarFeed> =
            read_row(&txn.open_table(CALENDAR_FEEDS)?, "calendar_feeds", user)?;
        let Some(feed) = feed.filter(|f| f.token_hash == hash) else {
            return Ok(None);
        };
        let account: Option<User> = read_row(&txn.open_table(USERS)?, "users", user)?;
        Ok(account.map(|a| (feed, a)))
    }

    /// Tasks assigned to `user` that have a due date, latest due first, that `keep` accepts:
    /// at most `limit`, examining at most `budget` index entries. Reads the dated part of the
    /// assignee's due-date range of `TASKS_SORTED` backwards (undated tasks sort above every
    /// date and are never read).
    pub fn dated_tasks_of_assignee(
        &self,
        user: UserId,
        limit: usize,
        budget: usize,
        keep: impl Fn(&Task) -> bool,
    ) -> Result<Vec<Task>, StoreError> {
        let txn = self.db().begin_read()?;
        let rows = txn.open_table(TASKS)?;
        let index = txn.open_table(TASKS_SORTED)?;
        // Source kind 0: the assignee lists (see `TASKS_SORTED`).
        let (kind, id, tag) = (0u8, user.as_u128(), TaskSort::DueDate.tag());
        let range = index.range((kind, id, tag, 0, 0)..(kind, id, tag, NO_DUE_DATE, 0))?;
        let mut tasks = Vec::new();
        for entry in range.rev().take(budget) {
            let (_, _, _, _, task) = entry?.0.value();
            if let Some(task) = read_row::<Task>(&rows, "tasks", task)?.filter(|t| keep(t)) {
                tasks.push(task);
                if tasks.len() >= limit {
                    break;
                }
            }
        }
        Ok(tasks)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use redb::ReadableTable;

    use super::*;
    use crate::domain::calendar::CalendarToken;

    #[test]
    fn a_new_token_replaces_the_old_and_revoking_removes_both_entries() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let user = UserId::new();
        let feed = |secret| CalendarFeed {
            user_id: user,
            token_hash: CalendarToken::issue([secret; 32]).1,
            created_at: Utc::now(),
        };
        let (first, second) = (feed(1), feed(2));
        store.replace_calendar_feed(&first).unwrap();
        store.replace_calendar_feed(&second).unwrap();
        assert_eq!(store.calendar_feed(user).unwrap(), Some(second.clone()));
        assert!(
            store
                .calendar_feed_by_hash(&first.token_hash)
                .unwrap()
                .is_none()
        );
        assert!(store.delete_calendar_feed(user).unwrap());
        assert!(!store.delete_calendar_feed(user).unwrap());
        assert!(
            store
                .calendar_feed_by_hash(&second.token_hash)
                .unwrap()
                .is_none()
        );
        let txn = store.db().begin_read().unwrap();
        assert!(
            txn.open_table(CALENDAR_FEEDS_BY_HASH)
                .unwrap()
                .iter()
                .unwrap()
                .next()
                .is_none()
        );
    }

    #[test]
    fn dated_tasks_come_latest_due_first_and_undated_ones_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let me = UserId::new();
        let task = |days: Option<i64>| Task {
            assignee_ids: vec![me],
            due_date: days.map(|d| Utc::now() + chrono::Duration::days(d)),
            ..Task::sample(me)
        };
        let tasks = [task(Some(1)), task(None), task(Some(3)), task(Some(-2))];
        store.import_tasks(&tasks).unwrap();
        let found = store.dated_tasks_of_assignee(me, 10, 10, |_| true).unwrap();
        let ids: Vec<_> = found.iter().map(|t| t.id).collect();
        assert_eq!(ids, vec![tasks[2].id, tasks[0].id, tasks[3].id]);
        let capped = store.dated_tasks_of_assignee(me, 2, 10, |_| true).unwrap();
        assert_eq!(capped.len(), 2);
        let other = store
            .dated_tasks_of_assignee(UserId::new(), 10, 10, |_| true)
            .unwrap();
        assert!(other.is_empty());
    }
}
