//! `/notifications`: the caller's inbox.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi};
use uuid::Uuid;

use super::error::ApiResult;
use super::security::BearerAuth;
use super::spec::{Documented, OperationErrors};
use super::{ApiTags, NoContent};
use crate::domain::notification::{Notification, NotificationKind};
use crate::service::Service;

/// What happened.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "NotificationKind", rename_all = "snake_case")]
pub enum KindBody {
    /// You were assigned to a task.
    TaskAssigned,
    /// You were taken off a task.
    TaskUnassigned,
    /// The status, title, due date or priority of a task you created or are assigned to
    /// changed (`fields` says which).
    TaskUpdated,
    /// A task you created or were assigned to was deleted.
    TaskDeleted,
    /// Someone commented on a task you created or are assigned to.
    CommentAdded,
    /// Someone attached a file to a task you created or are assigned to.
    AttachmentAdded,
    /// An invitation to a team was addressed to your email. It carries no accept link: ask
    /// the inviter for it (the invitation shows in `GET /invitations` once you open it).
    TeamInvited,
    /// Someone accepted your invitation.
    InvitationAccepted,
    /// You were removed from a team.
    MemberRemoved,
    /// tasker disabled a webhook you created: its retries ran out or it fell too far behind
    /// (`subject` says which hook and why; `team_id` names its team).
    WebhookDisabled,
}

impl From<NotificationKind> for KindBody {
    fn from(kind: NotificationKind) -> Self {
        match kind {
            NotificationKind::TaskAssigned => KindBody::TaskAssigned,
            NotificationKind::TaskUnassigned => KindBody::TaskUnassigned,
            NotificationKind::TaskUpdated => KindBody::TaskUpdated,
            NotificationKind::TaskDeleted => KindBody::TaskDeleted,
            NotificationKind::CommentAdded => KindBody::CommentAdded,
            NotificationKind::AttachmentAdded => KindBody::AttachmentAdded,
            NotificationKind::TeamInvited => KindBody::TeamInvited,
            NotificationKind::InvitationAccepted => KindBody::InvitationAccepted,
            NotificationKind::MemberRemoved => KindBody::MemberRemoved,
            NotificationKind::WebhookDisabled => KindBody::WebhookDisabled,
        }
    }
}

#[derive(Object)]
#[oai(rename = "Notification")]
pub struct NotificationBody {
    /// The notification's id: the `seq` of the change that caused it (also its position in
    /// the WebSocket feed).
    pub id: u64,
    pub kind: KindBody,
    /// Who did it.
    pub actor_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub read: bool,
    #[oai(nullable)]
    pub read_at: Option<DateTime<Utc>>,
    #[oai(nullable)]
    pub task_id: Option<Uuid>,
    #[oai(nullable)]
    pub team_id: Option<Uuid>,
    /// The comment, attachment or invitation concerned, if any.
    #[oai(nullable)]
    pub entity_id: Option<Uuid>,
    /// The task's title, the file's name or the team's name, as it was then.
    pub subject: String,
    /// For `task_updated`: which of `status`, `title`, `due_date`, `priority` changed.
    pub fields: Vec<String>,
}

impl From<Notification> for NotificationBody {
    fn from(n: Notification) -> Self {
        Self {
            id: n.seq,
            kind: n.kind.into(),
            actor_id: n.actor_id.as_uuid(),
            created_at: n.created_at,
            read: n.read_at.is_some(),
            read_at: n.read_at,
            task_id: n.task_id.map(|t| t.as_uuid()),
            team_id: n.team_id.map(|t| t.as_uuid()),
            entity_id: n.entity_id,
            subject: n.subject,
            fields: n.fields,
        }
    }
}

/// A page of the inbox, newest first.
#[derive(Object)]
pub struct NotificationPage {
    pub items: Vec<NotificationBody>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
    /// Unread notifications in all (not only on this page).
    pub unread_count: u64,
}

pub struct NotificationsApi;

#[OpenApi(prefix_path = "/notifications", tag = "ApiTags::Notifications")]
impl NotificationsApi {
    /// My notifications
    ///
    /// Newest first, with the unread count. Notifications are never about your own actions
    /// and are kept for `--notification-retention` (default 90 days).
    #[oai(path = "/", method = "get", operation_id = "listNotifications")]
    async fn list(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        /// Only unread ones.
        unread: Query<Option<bool>>,
        /// Page size, 1 to 200 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<NotificationPage>> {
        let inbox = service
            .notifications(
                &auth.0,
                unread.0.unwrap_or(false),
                cursor.0.as_deref(),
                limit.0,
            )
            .await?;
        Ok(Json(NotificationPage {
            next_cursor: inbox.page.next_cursor.map(|c| c.encode()),
            items: inbox
                .page
                .items
                .into_iter()
                .map(NotificationBody::from)
                .collect(),
            unread_count: inbox.unread_count,
        }))
    }

    /// Mark a notification read
    #[oai(path = "/:id/read", method = "post", operation_id = "readNotification")]
    async fn read(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        /// The notification's `id`.
        id: Path<u64>,
    ) -> ApiResult<Json<NotificationBody>> {
        let read = service.mark_notification_read(&auth.0, id.0).await?;
        Ok(Json(read.into()))
    }

    /// Mark all my notifications read
    #[oai(
        path = "/read-all",
        method = "post",
        operation_id = "readAllNotifications"
    )]
    async fn read_all(&self, service: Data<&Service>, auth: BearerAuth) -> ApiResult<NoContent> {
        service.mark_all_notifications_read(&auth.0).await?;
        Ok(NoContent::Done)
    }
}

/// Errors of these operations beyond those their shape implies (see `spec.rs`).
impl Documented for NotificationsApi {
    const ERRORS: &'static [OperationErrors] = &[("listNotifications", &[422])];
}
