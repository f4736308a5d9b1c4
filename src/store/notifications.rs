//! The notification inbox: entries written in the same transaction as the change that causes
//! them (by the `for_*` functions the write paths call), read newest first, marked read.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use redb::{ReadableDatabase, ReadableTable, WriteTransaction};

use super::codec::{decode, encode};
use super::tables::*;
use super::tx::{Cause, Tx};
use super::{Store, StoreError};
use crate::domain::attachment::Attachment;
use crate::domain::comment::Comment;
use crate::domain::notification::{Notification, NotificationKind};
use crate::domain::task::Task;
use crate::domain::team::Invitation;
use crate::domain::{TeamId, UserId, access};

/// The fields whose change tells a task's people (`task_updated`).
const WATCHED_FIELDS: [&str; 4] = ["status", "title", "due_date", "priority"];

impl Tx<'_> {
    /// Writes one notification, unless it would tell `user` about their own action.
    fn notify(
        &self,
        cause: Cause,
        user: UserId,
        kind: NotificationKind,
        about: About,
    ) -> Result<(), StoreError> {
        if user == cause.actor {
            return Ok(());
        }
        // About a team's task: only its current members hear (a creator who left the team is
        // told nothing more of its tasks).
        if let Some(task) = about.task {
            let role = match task.team_id {
                Some(team) => self.membership(team, user)?.map(|m| m.role),
                None => None,
            };
            if !access::hears_about_task(task, role) {
                return Ok(());
            }
        }
        let txn = self.txn();
        let (u, seq) = (user.as_u128(), cause.seq);
        let notification = Notification {
            seq,
            user_id: user,
            kind,
            actor_id: cause.actor,
            created_at: cause.at,
            read_at: None,
            task_id: about.task.map(|t| t.id),
            team_id: about.team,
            entity_id: about.entity,
            subject: about.subject,
            fields: about.fields,
        };
        let mut rows = txn.open_table(NOTIFICATIONS)?;
        if rows.get((u, seq))?.is_some() {
            return Ok(());
        }
        rows.insert((u, seq), encode(&notification)?.as_slice())?;
        txn.open_table(NOTIFICATIONS_UNREAD)?.insert((u, seq), ())?;
        txn.open_table(NOTIFICATIONS_BY_SEQ)?.insert((seq, u), ())?;
        txn.open_table(NOTIFICATIONS_BY_TIME)?
            .insert((cause.at.timestamp(), u, seq), ())?;
        let mut counts = txn.open_table(NOTIFICATION_UNREAD_COUNTS)?;
        let unread = counts.get(u)?.map_or(0, |c| c.value());
        counts.insert(u, unread + 1)?;
        drop((rows, counts));
        self.route_notification(&notification)
    }
}

/// What a notification is about.
#[derive(Default)]
struct About<'a> {
    task: Option<&'a Task>,
    team: Option<TeamId>,
    entity: Option<uuid::Uuid>,
    subject: String,
    fields: Vec<String>,
}

impl<'a> About<'a> {
    fn task(task: &'a Task) -> Self {
        Self {
            task: Some(task),
            team: task.team_id,
            subject: task.title.as_str().to_string(),
            ..Self::default()
        }
    }
}

/// A task's people: its creator and assignees.
fn people(task: &Task) -> BTreeSet<UserId> {
    task.assignee_ids
        .iter()
        .copied()
        .chain([task.created_by])
        .collect()
}

impl Tx<'_> {
    /// New assignees hear `task_assigned`.
    pub(super) fn notify_task_created(&self, cause: Cause, task: &Task) -> Result<(), StoreError> {
        for user in &task.assignee_ids {
            self.notify(
                cause,
                *user,
                NotificationKind::TaskAssigned,
                About::task(task),
            )?;
        }
        Ok(())
    }

    /// Added assignees hear `task_assigned`, removed ones `task_unassigned`; the rest of the
    /// task's people hear `task_updated` when a watched field changed.
    pub(super) fn notify_task_updated(
        &self,
        cause: Cause,
        before: &Task,
        after: &Task,
        changed: &[&str],
    ) -> Result<(), StoreError> {
        let (was, is): (BTreeSet<_>, BTreeSet<_>) = (
            before.assignee_ids.iter().copied().collect(),
            after.assignee_ids.iter().copied().collect(),
        );
        for user in is.difference(&was) {
            self.notify(
                cause,
                *user,
                NotificationKind::TaskAssigned,
                About::task(after),
            )?;
        }
        for user in was.difference(&is) {
            self.notify(
                cause,
                *user,
                NotificationKind::TaskUnassigned,
                About::task(after),
            )?;
        }
        let fields: Vec<String> = WATCHED_FIELDS
            .iter()
            .filter(|f| changed.contains(f))
            .map(|f| f.to_string())
            .collect();
        if fields.is_empty() {
            return Ok(());
        }
        for user in people(after).difference(&is.difference(&was).copied().collect()) {
            let about = About {
                fields: fields.clone(),
                ..About::task(after)
            };
            self.notify(cause, *user, NotificationKind::TaskUpdated, about)?;
        }
        Ok(())
    }

    /// The task's people hear `task_deleted`.
    pub(super) fn notify_task_deleted(&self, cause: Cause, task: &Task) -> Result<(), StoreError> {
        for user in people(task) {
            self.notify(
                cause,
                user,
                NotificationKind::TaskDeleted,
                About::task(task),
            )?;
        }
        Ok(())
    }

    /// The task's people hear `comment_added`.
    pub(super) fn notify_comment(
        &self,
        cause: Cause,
        task: &Task,
        comment: &Comment,
    ) -> Result<(), StoreError> {
        for user in people(task) {
            let about = About {
                entity: Some(comment.id.as_uuid()),
                ..About::task(task)
            };
            self.notify(cause, user, NotificationKind::CommentAdded, about)?;
        }
        Ok(())
    }

    /// The task's people hear `attachment_added`.
    pub(super) fn notify_attachment(
        &self,
        cause: Cause,
        task: &Task,
        attachment: &Attachment,
    ) -> Result<(), StoreError> {
        for user in people(task) {
            let about = About {
                entity: Some(attachment.id.as_uuid()),
                subject: attachment.filename.clone(),
                ..About::task(task)
            };
            self.notify(cause, user, NotificationKind::AttachmentAdded, about)?;
        }
        Ok(())
    }

    /// The invitee hears `team_invited`, if they have an account.
    pub(super) fn notify_invitation(
        &self,
        cause: Cause,
        invitation: &Invitation,
        team_name: &str,
    ) -> Result<(), StoreError> {
        if let Some(user) = self.user_id_by_email(invitation.email.as_str())? {
            let about = About {
                team: Some(invitation.team_id),
                entity: Some(invitation.id.as_uuid()),
                subject: team_name.to_string(),
                ..About::default()
            };
            self.notify(cause, user, NotificationKind::TeamInvited, about)?;
        }
        Ok(())
    }

    /// The inviter hears `invitation_accepted`.
    pub(super) fn notify_acceptance(
        &self,
        cause: Cause,
        invitation: &Invitation,
        team_name: &str,
    ) -> Result<(), StoreError> {
        let about = About {
            team: Some(invitation.team_id),
            entity: Some(invitation.id.as_uuid()),
            subject: team_name.to_string(),
            ..About::default()
        };
        self.notify(
            cause,
            invitation.invited_by,
            NotificationKind::InvitationAccepted,
            about,
        )
    }

    /// A hook's creator hears `webhook_disabled` when tasker disables it (the actor is tasker,
    /// never the creator, so it is never dropped as their own action).
    pub(super) fn notify_webhook_disabled(
        &self,
        cause: Cause,
        user: UserId,
        team: TeamId,
        hook: uuid::Uuid,
        subject: String,
    ) -> Result<(), StoreError> {
        let about = About {
            team: Some(team),
            entity: Some(hook),
            subject,
            ..About::default()
        };
        self.notify(cause, user, NotificationKind::WebhookDisabled, about)
    }

    /// A member removed by someone else hears `member_removed`.
    pub(super) fn notify_removal(
        &self,
        cause: Cause,
        team: TeamId,
        user: UserId,
        team_name: &str,
    ) -> Result<(), StoreError> {
        let about = About {
            team: Some(team),
            subject: team_name.to_string(),
            ..About::default()
        };
        self.notify(cause, user, NotificationKind::MemberRemoved, about)
    }
}

/// One page of an inbox.
pub struct Inbox {
    pub items: Vec<Notification>,
    pub unread_count: u64,
}

impl Store {
    /// Up to `limit` of `user`'s notifications with `seq` below `before`, newest first; only
    /// unread ones when `unread_only`.
    pub fn notifications(
        &self,
        user: UserId,
        before: Option<u64>,
        unread_only: bool,
        limit: usize,
    ) -> Result<Inbox, StoreError> {
        let txn = self.db().begin_read()?;
        let u = user.as_u128();
        let end = before.unwrap_or(u64::MAX);
        let rows = txn.open_table(NOTIFICATIONS)?;
        let mut items = Vec::with_capacity(limit);
        if unread_only {
            let unread = txn.open_table(NOTIFICATIONS_UNREAD)?;
            for entry in unread.range((u, 0)..(u, end))?.rev().take(limit) {
                let key = entry?.0.value();
                if let Some(row) = rows.get(key)? {
                    items.push(decode("notifications", row.value())?);
                }
            }
        } else {
            for entry in rows.range((u, 0)..(u, end))?.rev().take(limit) {
                items.push(decode("notifications", entry?.1.value())?);
            }
        }
        let unread_count = txn
            .open_table(NOTIFICATION_UNREAD_COUNTS)?
            .get(u)?
            .map_or(0, |c| c.value());
        Ok(Inbox {
            items,
            unread_count,
        })
    }

    /// Every notification caused by changes with `after < seq <= upto`, in `seq` order.
    pub fn notifications_between(
        &self,
        after: u64,
        upto: u64,
    ) -> Result<Vec<Notification>, StoreError> {
        let txn = self.db().begin_read()?;
        let rows = txn.open_table(NOTIFICATIONS)?;
        let mut found = Vec::new();
        if after >= upto {
            return Ok(found);
        }
        for entry in txn
            .open_table(NOTIFICATIONS_BY_SEQ)?
            .range((after + 1, 0)..=(upto, u128::MAX))?
        {
            let (seq, user) = entry?.0.value();
            if let Some(row) = rows.get((user, seq))? {
                found.push(decode("notifications", row.value())?);
            }
        }
        Ok(found)
    }

    /// Up to `limit` of `user`'s notifications with `after < seq <= upto`, oldest first.
    pub fn notifications_of_user_between(
        &self,
        user: UserId,
        after: u64,
        upto: u64,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError> {
        let txn = self.db().begin_read()?;
        let u = user.as_u128();
        let mut found = Vec::new();
        if after >= upto {
            return Ok(found);
        }
        for entry in txn
            .open_table(NOTIFICATIONS)?
            .range((u, after + 1)..=(u, upto))?
            .take(limit)
        {
            found.push(decode("notifications", entry?.1.value())?);
        }
        Ok(found)
    }

    /// Marks one notification read. `None` when `user` has no such notification.
    pub fn mark_notification_read(
        &self,
        user: UserId,
        seq: u64,
        now: DateTime<Utc>,
    ) -> Result<Option<Notification>, StoreError> {
        self.write(|tx| mark_read(tx.txn(), user.as_u128(), seq, now))
    }

    /// Marks every unread notification of `user` read; returns how many there were.
    pub fn mark_all_notifications_read(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.write(|tx| {
            let txn = tx.txn();
            let u = user.as_u128();
            let unread: Vec<u64> = txn
                .open_table(NOTIFICATIONS_UNREAD)?
                .range((u, 0)..=(u, u64::MAX))?
                .map(|e| e.map(|(k, _)| k.value().1))
                .collect::<Result<_, _>>()?;
            for seq in &unread {
                mark_read(txn, u, *seq, now)?;
            }
            Ok(unread.len() as u64)
        })
    }

    /// Deletes up to `batch` notifications created before `cutoff` (retention); returns how
    /// many went.
    pub fn sweep_notifications(
        &self,
        cutoff: DateTime<Utc>,
        batch: usize,
    ) -> Result<usize, StoreError> {
        self.write(|tx| {
            let txn = tx.txn();
            let old: Vec<(i64, u128, u64)> = txn
                .open_table(NOTIFICATIONS_BY_TIME)?
                .range((i64::MIN, 0, 0)..(cutoff.timestamp(), 0, 0))?
                .take(batch)
                .map(|e| e.map(|(k, _)| k.value()))
                .collect::<Result<_, _>>()?;
            for (at, user, seq) in &old {
                if txn
                    .open_table(NOTIFICATIONS_UNREAD)?
                    .remove((*user, *seq))?
                    .is_some()
                {
                    let mut counts = txn.open_table(NOTIFICATION_UNREAD_COUNTS)?;
                    let unread = counts.get(*user)?.map_or(0, |c| c.value());
                    counts.insert(*user, unread.saturating_sub(1))?;
                }
                txn.open_table(NOTIFICATIONS)?.remove((*user, *seq))?;
                txn.open_table(NOTIFICATIONS_BY_SEQ)?
                    .remove((*seq, *user))?;
                txn.open_table(NOTIFICATIONS_BY_TIME)?
                    .remove((*at, *user, *seq))?;
            }
            Ok(old.len())
        })
    }
}

fn mark_read(
    txn: &WriteTransaction,
    user: u128,
    seq: u64,
    now: DateTime<Utc>,
) -> Result<Option<Notification>, StoreError> {
    let mut rows = txn.open_table(NOTIFICATIONS)?;
    let Some(mut notification): Option<Notification> = rows
        .get((user, seq))?
        .map(|row| decode("notifications", row.value()))
        .transpose()?
    else {
        return Ok(None);
    };
    if notification.read_at.is_none() {
        notification.read_at = Some(now);
        rows.insert((user, seq), encode(&notification)?.as_slice())?;
        txn.open_table(NOTIFICATIONS_UNREAD)?.remove((user, seq))?;
        let mut counts = txn.open_table(NOTIFICATION_UNREAD_COUNTS)?;
        let unread = counts.get(user)?.map_or(0, |c| c.value());
        counts.insert(user, unread.saturating_sub(1))?;
    }
    Ok(Some(notification))
}
