//! The calendar feed (DESIGN.md section 8): a user creates, regenerates or revokes their
//! secret feed URL; whoever holds the token reads the tasks assigned to that user that have a
//! due date and that the user can still see (`domain::access`), as iCalendar.

use chrono::{DateTime, Utc};
use rand::RngCore;

use super::{AuthUser, Error, Result, Service};
use crate::domain::User;
use crate::domain::calendar::{CalendarFeed, CalendarToken, MAX_FEED_TASKS, feed_path};
use crate::domain::task::Task;

/// The most index entries one feed request examines: tasks assigned to the user that they
/// may no longer see are skipped, so this bounds the work of a feed that skips many.
const FEED_SCAN_BUDGET: usize = 5 * MAX_FEED_TASKS;

/// A feed just made: its token (shown this once) and when it was made.
#[derive(Debug, Clone)]
pub struct IssuedFeed {
    pub token: String,
    pub created_at: DateTime<Utc>,
}

impl IssuedFeed {
    /// The feed's path, `/ical/tkc_….ics`.
    pub fn path(&self) -> String {
        feed_path(&self.token)
    }
}

/// What a valid feed token opens: whose feed it is, and their dated tasks.
#[derive(Debug)]
pub struct FeedTasks {
    pub user: User,
    /// Latest due first, at most [`MAX_FEED_TASKS`].
    pub tasks: Vec<Task>,
}

impl Service {
    /// The caller's feed, if they have one (never its token: only a hash is kept).
    pub async fn calendar_feed(&self, auth: &AuthUser) -> Result<Option<CalendarFeed>> {
        auth.require_session()?;
        let user = auth.user_id;
        Ok(self.store.run(move |s| s.calendar_feed(user)).await?)
    }

    /// Makes a new feed token for the caller; the previous one stops working at once.
    pub async fn issue_calendar_feed(&self, auth: &AuthUser) -> Result<IssuedFeed> {
        auth.require_session()?;
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let (token, token_hash) = CalendarToken::issue(secret);
        let feed = CalendarFeed {
            user_id: auth.user_id,
            token_hash,
            created_at: Utc::now(),
        };
        let created_at = feed.created_at;
        self.store
            .run(move |s| s.replace_calendar_feed(&feed))
            .await?;
        Ok(IssuedFeed { token, created_at })
    }

    /// Revokes the caller's feed (`NotFound` when there is none).
    pub async fn revoke_calendar_feed(&self, auth: &AuthUser) -> Result<()> {
        auth.require_session()?;
        let user = auth.user_id;
        if self
            .store
            .run(move |s| s.delete_calendar_feed(user))
            .await?
        {
            Ok(())
        } else {
            Err(Error::NotFound("calendar feed"))
        }
    }

    /// The feed a presented token opens: `None` for a malformed, unknown or revoked token and
    /// for a disabled account (the caller answers a plain 404 to all of them alike).
    pub async fn calendar_feed_tasks(&self, token: &str) -> Result<Option<FeedTasks>> {
        let Some(token) = CalendarToken::parse(token) else {
            return Ok(None);
        };
        let found = self
            .store
            .run(move |s| s.calendar_feed_by_hash(&token.hash))
            .await?;
        let Some((_, user)) = found.filter(|(_, user)| !user.disabled) else {
            return Ok(None);
        };
        let standing = self.standing_of(user.id).await?;
        let me = user.id;
        let keep = move |task: &Task| {
            task.due_date.is_some() && task.is_assigned_to(me) && standing.sees_task(task)
        };
        let tasks = self
            .store
            .run(move |s| s.dated_tasks_of_assignee(me, MAX_FEED_TASKS, FEED_SCAN_BUDGET, keep))
            .await?;
        Ok(Some(FeedTasks { user, tasks }))
    }
}
