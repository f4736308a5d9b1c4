//! The notification inbox: the caller's own notifications only.

use chrono::Utc;

use super::{AuthUser, Error, Result, Service};
use crate::domain::Validator;
use crate::domain::notification::Notification;
use crate::domain::page::Page;
use crate::domain::scope::{Access, Area};

/// A page of the inbox, newest first, and how many are unread in all.
pub struct InboxPage {
    pub page: Page<Notification>,
    pub unread_count: u64,
}

impl Service {
    /// The caller's notifications, newest first; only unread ones when `unread_only`.
    pub async fn notifications(
        &self,
        auth: &AuthUser,
        unread_only: bool,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<InboxPage> {
        auth.allows(Area::Notifications, Access::Read)?;
        let mut v = Validator::default();
        let (before, limit) = super::page_args(cursor, limit, &mut v);
        v.finish().map_err(Error::Validation)?;
        let (me, before) = (auth.user_id, before.map(|b| b as u64));
        let inbox = self
            .store
            .run(move |s| s.notifications(me, before, unread_only, limit.get() + 1))
            .await?;
        let mut page = Page::from_overfetch(inbox.items, limit, |n| u128::from(n.seq));
        // A token limited to teams hears nothing of other teams (nor of personal tasks).
        page.items.retain(|n| auth.reaches(n.team_id));
        Ok(InboxPage {
            page,
            unread_count: inbox.unread_count,
        })
    }

    /// Marks one of the caller's notifications read (404 for anyone else's).
    pub async fn mark_notification_read(&self, auth: &AuthUser, seq: u64) -> Result<Notification> {
        auth.allows(Area::Notifications, Access::Write)?;
        let me = auth.user_id;
        if auth.team_limited() {
            // Another team's (or a personal task's) notification is not there for this token.
            let found = self
                .store
                .run(move |s| s.notifications_of_user_between(me, seq.saturating_sub(1), seq, 1))
                .await?;
            if !found
                .first()
                .is_some_and(|n| n.seq == seq && auth.reaches(n.team_id))
            {
                return Err(Error::NotFound("notification"));
            }
        }
        self.store
            .run(move |s| s.mark_notification_read(me, seq, Utc::now()))
            .await?
            .ok_or(Error::NotFound("notification"))
    }

    /// Marks all of the caller's notifications read; returns how many were unread.
    pub async fn mark_all_notifications_read(&self, auth: &AuthUser) -> Result<u64> {
        auth.allows(Area::Notifications, Access::Write)?;
        if auth.team_limited() {
            return Err(Error::Forbidden(
                "a token limited to teams cannot mark every notification read".into(),
            ));
        }
        let me = auth.user_id;
        Ok(self
            .store
            .run(move |s| s.mark_all_notifications_read(me, Utc::now()))
            .await?)
    }

    /// Deletes notifications older than the retention window, in bounded batches.
    pub(super) async fn sweep_notifications(&self) {
        let cutoff = Utc::now()
            - chrono::Duration::from_std(self.config.notification_retention)
                .unwrap_or(chrono::Duration::days(90));
        self.sweep_in_batches("notifications past retention", move |s| {
            s.sweep_notifications(cutoff, super::SWEEP_BATCH)
        })
        .await;
    }
}
