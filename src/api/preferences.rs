//! `/users/me/preferences`: my time zone, due-date reminders, daily digest, how each kind of
//! notification reaches me, and an ntfy topic for pushes; and `/api/unsubscribe/{token}`, the
//! one-click unsubscribe link every email carries (RFC 8058), outside the documented API: a
//! mail client POSTs `List-Unsubscribe=One-Click` to it without any login, a person who opens
//! it gets a small page with a button.

use poem::http::StatusCode;
use poem::web::{Data, Html, Path};
use poem::{IntoResponse, Response, handler};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{Enum, Object, OpenApi};

use super::error::ApiResult;
use super::security::BearerAuth;
use super::spec::{Documented, OperationErrors};
use super::{ApiTags, NoContent};
use crate::domain::notification::NotificationKind;
use crate::domain::reminder::{Delivery, Preferences};
use crate::service::{PreferencesUpdate, Service};

/// How one kind of notification reaches me besides the inbox.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "NotificationDelivery", rename_all = "snake_case")]
pub enum DeliveryBody {
    /// Only in the inbox.
    InApp,
    /// An email at once (and a push when an ntfy topic is set).
    Email,
    /// A line in the next daily digest.
    Digest,
}

impl From<DeliveryBody> for Delivery {
    fn from(d: DeliveryBody) -> Self {
        match d {
            DeliveryBody::InApp => Delivery::InApp,
            DeliveryBody::Email => Delivery::Email,
            DeliveryBody::Digest => Delivery::Digest,
        }
    }
}

impl From<Delivery> for DeliveryBody {
    fn from(d: Delivery) -> Self {
        match d {
            Delivery::InApp => DeliveryBody::InApp,
            Delivery::Email => DeliveryBody::Email,
            Delivery::Digest => DeliveryBody::Digest,
        }
    }
}

macro_rules! kinds {
    ($($field:ident => $kind:ident),*) => {
        /// The delivery of each notification kind.
        #[derive(Object)]
        #[oai(rename = "NotificationDeliveries")]
        pub struct KindsBody {
            $(pub $field: DeliveryBody,)*
        }

        /// Deliveries to change; a kind left out keeps its delivery.
        #[derive(Object)]
        #[oai(rename = "NotificationDeliveriesUpdate", deny_unknown_fields)]
        pub struct KindsUpdate {
            $(#[oai(nullable)] pub $field: Option<DeliveryBody>,)*
        }

        impl KindsBody {
            fn of(prefs: &Preferences) -> Self {
                Self { $($field: prefs.delivery(NotificationKind::$kind).into(),)* }
            }
        }

        impl KindsUpdate {
            fn into_pairs(self) -> Vec<(NotificationKind, Delivery)> {
                let mut pairs = Vec::new();
                $(if let Some(d) = self.$field {
                    pairs.push((NotificationKind::$kind, d.into()));
                })*
                pairs
            }
        }
    };
}

kinds!(
    task_assigned => TaskAssigned,
    task_unassigned => TaskUnassigned,
    task_updated => TaskUpdated,
    task_deleted => TaskDeleted,
    comment_added => CommentAdded,
    attachment_added => AttachmentAdded,
    team_invited => TeamInvited,
    invitation_accepted => InvitationAccepted,
    member_removed => MemberRemoved,
    webhook_disabled => WebhookDisabled
);

/// My reminder and notification settings.
#[derive(Object)]
#[oai(rename = "NotificationPreferences")]
pub struct PreferencesBody {
    /// IANA time zone every reminder time is computed in, e.g. `Europe/Paris`.
    pub time_zone: String,
    /// Remind on the morning of the due day at this local hour (0-23); null: no morning
    /// reminder.
    #[oai(nullable)]
    pub morning_hour: Option<u8>,
    /// Remind at the due time of a task due at a time.
    pub at_due_time: bool,
    /// Also remind this many minutes before the due time (a task due on a whole day: before
    /// its morning reminder), e.g. `[15, 60, 1440]`.
    pub lead_minutes: Vec<u32>,
    /// Send reminders by email; pushes go out whenever `ntfy_url` is set.
    pub email_reminders: bool,
    /// The daily digest (overdue tasks, tasks due today, notifications set to `digest`) at
    /// this local hour; null: no digest.
    #[oai(nullable)]
    pub digest_hour: Option<u8>,
    /// The minute of `digest_hour` the digest goes out at (0-59, default 0).
    pub digest_minute: u8,
    pub kinds: KindsBody,
    /// The ntfy topic URL reminders and emailed notifications are also pushed to.
    #[oai(nullable)]
    pub ntfy_url: Option<String>,
}

impl From<Preferences> for PreferencesBody {
    fn from(p: Preferences) -> Self {
        Self {
            time_zone: p.time_zone.name().to_string(),
            morning_hour: p.morning_hour,
            at_due_time: p.at_due_time,
            lead_minutes: p.lead_minutes.clone(),
            email_reminders: p.email_reminders,
            digest_hour: p.digest_hour,
            digest_minute: p.digest_minute,
            kinds: KindsBody::of(&p),
            ntfy_url: p.ntfy_url,
        }
    }
}

/// A change of my settings: only the fields present change; `null` turns off
/// `morning_hour` and `digest_hour` and removes `ntfy_url`, and on any other field keeps it.
#[derive(Object)]
#[oai(rename = "NotificationPreferencesUpdate", deny_unknown_fields)]
pub struct PreferencesUpdateBody {
    /// An IANA time zone name.
    #[oai(nullable)]
    pub time_zone: Option<String>,
    /// 0 to 23, or null.
    #[oai(nullable)]
    pub morning_hour: MaybeUndefined<i64>,
    #[oai(nullable)]
    pub at_due_time: Option<bool>,
    /// Up to 5 lead times of 1 minute to 14 days (20160 minutes).
    #[oai(nullable)]
    pub lead_minutes: Option<Vec<i64>>,
    #[oai(nullable)]
    pub email_reminders: Option<bool>,
    /// 0 to 23, or null.
    #[oai(nullable)]
    pub digest_hour: MaybeUndefined<i64>,
    /// 0 to 59.
    #[oai(nullable)]
    pub digest_minute: Option<i64>,
    #[oai(nullable)]
    pub kinds: Option<KindsUpdate>,
    /// An `http(s)` ntfy topic URL, e.g. `https://ntfy.sh/my-secret-topic`; a private or
    /// loopback address only when the server allows it (`--webhook-allowed-hosts`). `null`
    /// removes it; an empty string is refused.
    #[oai(nullable)]
    pub ntfy_url: MaybeUndefined<String>,
}

fn maybe<T>(value: MaybeUndefined<T>) -> Option<Option<T>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(v)),
    }
}

impl From<PreferencesUpdateBody> for PreferencesUpdate {
    fn from(b: PreferencesUpdateBody) -> Self {
        Self {
            time_zone: b.time_zone,
            morning_hour: maybe(b.morning_hour),
            at_due_time: b.at_due_time,
            lead_minutes: b.lead_minutes,
            email_reminders: b.email_reminders,
            digest_hour: maybe(b.digest_hour),
            digest_minute: b.digest_minute,
            kinds: b.kinds.map(KindsUpdate::into_pairs).unwrap_or_default(),
            ntfy_url: maybe(b.ntfy_url),
        }
    }
}

pub struct PreferencesApi;

#[OpenApi(prefix_path = "/users/me/preferences", tag = "ApiTags::Users")]
impl PreferencesApi {
    /// Get my notification preferences
    ///
    /// Time zone, due-date reminders, the daily digest, the delivery of each notification
    /// kind, and the ntfy topic. An account that never saved any has the defaults: UTC, a
    /// reminder at 08:00 on the due day and at the due time, no digest, every kind in-app.
    #[oai(path = "/", method = "get", operation_id = "getPreferences")]
    async fn get(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
    ) -> ApiResult<Json<PreferencesBody>> {
        Ok(Json(service.preferences(&auth.0).await?.into()))
    }

    /// Change my notification preferences
    ///
    /// Only the fields present change. My scheduled reminders and digest move to match at
    /// once. A bad field is a 422 naming it (`time_zone`, `morning_hour`, `digest_hour`,
    /// `digest_minute`, `lead_minutes`, `ntfy_url`); nothing is saved then.
    #[oai(path = "/", method = "put", operation_id = "updatePreferences")]
    async fn update(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        body: Json<PreferencesUpdateBody>,
    ) -> ApiResult<Json<PreferencesBody>> {
        let saved = service.update_preferences(&auth.0, body.0.into()).await?;
        Ok(Json(saved.into()))
    }

    /// Send a test push
    ///
    /// Queues a push to my ntfy topic, delivered like every push (with retries). 422 when no
    /// topic is set.
    #[oai(path = "/test-push", method = "post", operation_id = "sendTestPush")]
    async fn test_push(&self, service: Data<&Service>, auth: BearerAuth) -> ApiResult<NoContent> {
        service.send_test_push(&auth.0).await?;
        Ok(NoContent::Done)
    }
}

impl Documented for PreferencesApi {
    const ERRORS: &'static [OperationErrors] =
        &[("updatePreferences", &[422]), ("sendTestPush", &[422])];
}

/// `GET /api/unsubscribe/{token}`: a page saying what the link turns off, with a button
/// (a mail scanner following links must not unsubscribe anyone).
#[handler]
pub async fn unsubscribe_page(service: Data<&Service>, Path(token): Path<String>) -> Response {
    match service.unsubscribe_topic(&token) {
        Some((_, topic)) => page(
            StatusCode::OK,
            &format!(
                "<p>Stop {}?</p><form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\"><button type=\"submit\">Unsubscribe</button></form>",
                topic.describe()
            ),
        ),
        None => page(
            StatusCode::NOT_FOUND,
            "<p>This unsubscribe link is not valid.</p>",
        ),
    }
}

/// `POST /api/unsubscribe/{token}` (RFC 8058 one-click): turns the link's topic off.
#[handler]
pub async fn unsubscribe(service: Data<&Service>, Path(token): Path<String>) -> Response {
    match service.unsubscribe_mail(&token).await {
        Ok(topic) => page(
            StatusCode::OK,
            &format!(
                "<p>Done: you will no longer get {}. Change this any time in your notification settings.</p>",
                topic.describe()
            ),
        ),
        Err(crate::service::Error::NotFound(_)) => page(
            StatusCode::NOT_FOUND,
            "<p>This unsubscribe link is not valid.</p>",
        ),
        Err(e) => {
            tracing::error!(error = %e, "unsubscribe failed");
            page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "<p>Something went wrong; try again later.</p>",
            )
        }
    }
}

fn page(status: StatusCode, body: &str) -> Response {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Unsubscribe · tasker</title></head><body><main><h1>Unsubscribe</h1>{body}</main></body></html>"
    ))
    .with_status(status)
    .into_response()
}
