//! `/teams/{team_id}/webhooks`: a team's webhooks, their secrets, delivery logs,
//! redeliveries and pings. Owners and admins only (members get 403, strangers 404).

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use uuid::Uuid;

use super::error::ApiResult;
use super::security::BearerAuth;
use super::spec::Documented;
use super::{ApiTags, NoContent};
use crate::domain::webhooks::{Delivery, DeliveryKind};
use crate::domain::{ProjectId, TeamId, WebhookId};
use crate::service::{NewWebhook, Service, WebhookPatch, WebhookView};

/// A team's webhook. `secret` appears only in the answers of create and of the secret
/// endpoints.
#[derive(Object)]
pub struct WebhookBody {
    pub id: Uuid,
    pub team_id: Uuid,
    /// Only this project's events; null: the whole team's.
    #[oai(nullable)]
    pub project_id: Option<Uuid>,
    pub url: String,
    /// `entity.action` event types (`task.created`, `comment.*`); empty: every event.
    pub events: Vec<String>,
    pub enabled: bool,
    /// Why tasker disabled it (its retries ran out, or it fell too far behind).
    #[oai(nullable)]
    pub disabled_reason: Option<String>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The change-log position delivered through.
    pub cursor: u64,
    /// Change-log entries committed after `cursor` (not all of them are for this hook).
    pub behind: u64,
    /// Failed attempts at the next event.
    pub failures: u32,
    /// When the next attempt is due, after a failure.
    #[oai(nullable)]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// `whsec_…`: base64-decode the part after `whsec_` to get the HMAC key.
    #[oai(skip_serializing_if_is_none)]
    pub secret: Option<String>,
}

impl WebhookBody {
    fn new(view: WebhookView, with_secret: bool) -> Self {
        let WebhookView {
            hook,
            state,
            behind,
        } = view;
        Self {
            id: hook.id.as_uuid(),
            team_id: hook.team_id.as_uuid(),
            project_id: hook.project_id.map(|p| p.as_uuid()),
            url: hook.url,
            events: hook.events,
            enabled: hook.enabled,
            disabled_reason: hook.disabled_reason,
            created_by: hook.created_by.as_uuid(),
            created_at: hook.created_at,
            updated_at: hook.updated_at,
            cursor: state.cursor,
            behind,
            failures: state.failures,
            next_attempt_at: state.next_attempt_at,
            secret: with_secret.then_some(hook.secret),
        }
    }
}

/// A team's webhooks (at most 20).
#[derive(Object)]
pub struct WebhookList {
    pub items: Vec<WebhookBody>,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// An http(s) URL. Loopback, private, link-local and other internal addresses are refused
    /// unless the server's `--webhook-allowed-hosts` opens them.
    pub url: String,
    /// `entity.action` event types: entity one of team, membership, project, task, comment,
    /// attachment; action one of created, updated, deleted, or `*`. `["*"]`, `[]` or absent:
    /// every event.
    #[oai(nullable)]
    pub events: Option<Vec<String>>,
    /// Only this project's events.
    #[oai(nullable)]
    pub project_id: Option<Uuid>,
    /// Default true.
    #[oai(nullable)]
    pub enabled: Option<bool>,
}

/// Only the fields present change; `project_id: null` clears the project filter. Enabling a
/// disabled hook resumes delivery where it stopped.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct UpdateWebhookRequest {
    #[oai(nullable)]
    pub url: Option<String>,
    #[oai(nullable)]
    pub events: Option<Vec<String>>,
    #[oai(nullable)]
    pub project_id: MaybeUndefined<Uuid>,
    #[oai(nullable)]
    pub enabled: Option<bool>,
}

/// A hook's secret.
#[derive(Object)]
pub struct WebhookSecretBody {
    /// `whsec_…`: base64-decode the part after `whsec_` to get the HMAC key.
    pub secret: String,
}

/// What a delivery was.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "WebhookDeliveryKind", rename_all = "snake_case")]
pub enum DeliveryKindBody {
    /// A change-log event sent by the delivery worker.
    Event,
    /// A redelivery someone asked for.
    Redelivery,
    /// A ping someone asked for.
    Ping,
}

/// One delivery attempt.
#[derive(Object)]
#[oai(rename = "WebhookDelivery")]
pub struct DeliveryBody {
    /// Numbered per hook; use it to redeliver.
    pub id: u64,
    pub kind: DeliveryKindBody,
    /// The `webhook-id` sent: the same for every attempt at one event.
    pub event_id: String,
    /// `task.created`, …, or `ping`.
    pub event_type: String,
    /// The change-log entry delivered (null for a ping).
    #[oai(nullable)]
    pub seq: Option<u64>,
    /// 1 for the first attempt at an event, 2 for its first retry, …
    pub attempt: u32,
    pub at: DateTime<Utc>,
    /// The receiver's HTTP status; null when no answer came.
    #[oai(nullable)]
    pub status_code: Option<u16>,
    /// Why it failed (no answer, refused by the egress guard, a non-2xx status).
    #[oai(nullable)]
    pub error: Option<String>,
    pub duration_ms: u64,
    pub request_body: String,
    /// The first 4 KiB of the answer.
    pub response_body: String,
    /// The receiver answered 2xx.
    pub ok: bool,
}

impl From<Delivery> for DeliveryBody {
    fn from(d: Delivery) -> Self {
        Self {
            id: d.id,
            kind: match d.kind {
                DeliveryKind::Event => DeliveryKindBody::Event,
                DeliveryKind::Redelivery => DeliveryKindBody::Redelivery,
                DeliveryKind::Ping => DeliveryKindBody::Ping,
            },
            event_id: d.event_id,
            event_type: d.event_type,
            seq: d.seq,
            attempt: d.attempt,
            at: d.at,
            status_code: d.status,
            error: d.error,
            duration_ms: d.duration_ms,
            request_body: d.request_body,
            response_body: d.response_body,
            ok: d.ok,
        }
    }
}

/// A hook's newest delivery attempts (at most 100), newest first.
#[derive(Object)]
pub struct DeliveryList {
    pub items: Vec<DeliveryBody>,
}

#[derive(ApiResponse)]
pub enum CreatedWebhook {
    /// The new hook, with its secret (shown here and by the secret endpoints only).
    #[oai(status = 201)]
    Created(
        Json<WebhookBody>,
        /// The new hook's URL.
        #[oai(header = "Location")]
        String,
    ),
}

pub struct WebhooksApi;

#[OpenApi(prefix_path = "/teams", tag = "ApiTags::Webhooks")]
impl WebhooksApi {
    /// List a team's webhooks
    ///
    /// Owners and admins; other members get 403, anyone else 404.
    #[oai(
        path = "/:team_id/webhooks",
        method = "get",
        operation_id = "listWebhooks"
    )]
    async fn list(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        team_id: Path<Uuid>,
    ) -> ApiResult<Json<WebhookList>> {
        let hooks = service
            .webhooks(&auth.0, TeamId::from_uuid(team_id.0))
            .await?;
        Ok(Json(WebhookList {
            items: hooks
                .into_iter()
                .map(|h| WebhookBody::new(h, false))
                .collect(),
        }))
    }

    /// Create a webhook
    ///
    /// Owners and admins. The hook receives every event of the team (or of one project) its
    /// event types select, committed from now on, as a signed POST (Standard Webhooks:
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of
    /// id.timestamp.body>`, plus `X-Hub-Signature-256`), at least once and in order. The
    /// answer carries the secret. A URL pointing at an address the server refuses (loopback,
    /// private, link-local, metadata) is a 422 on `url`, and nothing is sent to it.
    #[oai(
        path = "/:team_id/webhooks",
        method = "post",
        operation_id = "createWebhook"
    )]
    async fn create(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        team_id: Path<Uuid>,
        body: Json<CreateWebhookRequest>,
    ) -> ApiResult<CreatedWebhook> {
        let body = body.0;
        let input = NewWebhook {
            url: body.url,
            events: body.events.unwrap_or_default(),
            project_id: body.project_id.map(ProjectId::from_uuid),
            enabled: body.enabled.unwrap_or(true),
        };
        let view = service
            .create_webhook(&auth.0, TeamId::from_uuid(team_id.0), input)
            .await?;
        let location = format!("/api/teams/{}/webhooks/{}", team_id.0, view.hook.id);
        Ok(CreatedWebhook::Created(
            Json(WebhookBody::new(view, true)),
            location,
        ))
    }

    /// Get a webhook
    #[oai(
        path = "/:team_id/webhooks/:id",
        method = "get",
        operation_id = "getWebhook"
    )]
    async fn get(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        team_id: Path<Uuid>,
        id: Path<Uuid>,
    ) -> ApiResult<Json<WebhookBody>> {
        let view = service
            .webhook(
                &auth.0,
                TeamId::from_uuid(team_id.0),
                WebhookId::from_uuid(id.0),
            )
            .await?;
        Ok(Json(WebhookBody::new(view, false)))
    }

    /// Update a webhook
    ///
    /// Change its URL (checked like at creation), event types, project or enabled flag.
    #[oai(
        path = "/:team_id/webhooks/:id",
        method = "patch",
        operation_id = "updateWebhook"
    )]
    async fn update(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        team_id: Path<Uuid>,
        id: Path<Uuid>,
        body: Json<UpdateWebhookRequest>,
    ) -> ApiResult<Json<WebhookBody>> {
        let body = body.0;
        let patch = WebhookPatch {
            url: body.url,
            events: body.events,
            project_id: match body.project_id {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(p) => Some(Some(ProjectId::from_uuid(p))),
            },
            enabled: body.enabled,
        };
        let view = service
            .update_webhook(
                &auth.0,
                TeamId::from_uuid(team_id.0),
                WebhookId::from_uuid(id.0),
                patch,
            )
            .await?;
        Ok(Json(WebhookBody::new(view, false)))
    }

    /// Delete a webhook
    ///
    /// With its delivery log; nothing more is sent.
    #[oai(
        path = "/:team_id/webhooks/:id",
        method = "delete",
        operation_id = "deleteWebhook"
    )]
    async fn delete(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        team_id: Path<Uuid>,
        id: Path<Uuid>,
    ) -> ApiResult<NoContent> {
        service
            .delete_webhook(
                &auth.0,
                TeamId::from_uuid(team_id.0),
                WebhookId::from_uuid(id.0),
            )
            .await?;
        Ok(NoContent::Done)
    }

    /// Get a webhook's secret
    #[oai(
        path = "/:team_id/webhooks/:id/secret",
        method = "get",
        operation_id = "getWebhookSecret"
    )]
    async fn secret(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        team_id: Path<Uuid>,
        id: Path<Uuid>,
    ) -> ApiResult<Json<WebhookSecretBody>> {
        let secret = service
            .webhook_secret(
                &auth.0,
                TeamId::from_uuid(team_id.0),
                WebhookId::from_uuid(id.0),
            )
            .await?;
        Ok(Json(WebhookSecretBody { secret }))
    }

    /// Rotate a webhook's secret
    ///
    /// A new secret signs every request from now on; the old one stops at once.
    #[oai(
        path = "/:team_id/webhooks/:id/secret",
        method = "post",
        operation_id = "rotateWebhookSecret"
    )]
    async fn rotate(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        team_id: Path<Uuid>,
        id: Path<Uuid>,
    ) -> ApiResult<Json<WebhookSecretBody>> {
        let view = service
            .rotate_webhook_secret(
                &auth.0,
                TeamId::from_uuid(team_id.0),
                WebhookId::from_uuid(id.0),
            )
            .await?;
        Ok(Json(WebhookSecretBody {
            secret: view.hook.secret,
        }))
    }

    /// List a webhook's deliveries
    ///
    /// The newest 100 attempts, newest first: status or error, duration, the request body and
    /// the first 4 KiB of the answer.
    #[oai(
        path = "/:team_id/webhooks/:id/deliveries",
        method = "get",
        operation_id = "listWebhookDeliveries"
    )]
    async fn deliveries(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        team_id: Path<Uuid>,
        id: Path<Uuid>,
    ) -> ApiResult<Json<DeliveryList>> {
        let items = service
            .webhook_deliveries(
                &auth.0,
                TeamId::from_uuid(team_id.0),
                WebhookId::from_uuid(id.0),
            )
            .await?;
        Ok(Json(DeliveryList {
            items: items.into_iter().map(DeliveryBody::from).collect(),
        }))
    }

    /// Redeliver
    ///
    /// Sends a logged delivery's body again now, with the same `webhook-id` (receivers that
    /// drop duplicates drop it) and a fresh signature, and answers with the new attempt. The
    /// hook's own progress is not changed.
    #[oai(
        path = "/:team_id/webhooks/:id/deliveries/:delivery_id/redeliver",
        method = "post",
        operation_id = "redeliverWebhookDelivery"
    )]
    async fn redeliver(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        team_id: Path<Uuid>,
        id: Path<Uuid>,
        delivery_id: Path<u64>,
    ) -> ApiResult<Json<DeliveryBody>> {
        let delivery = service
            .redeliver(
                &auth.0,
                TeamId::from_uuid(team_id.0),
                WebhookId::from_uuid(id.0),
                delivery_id.0,
            )
            .await?;
        Ok(Json(delivery.into()))
    }

    /// Ping a webhook
    ///
    /// Sends `{"type": "ping", "webhook_id", "team_id", "at"}` now, signed like every event,
    /// and answers with the attempt (also in the delivery log).
    #[oai(
        path = "/:team_id/webhooks/:id/ping",
        method = "post",
        operation_id = "pingWebhook"
    )]
    async fn ping(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        team_id: Path<Uuid>,
        id: Path<Uuid>,
    ) -> ApiResult<Json<DeliveryBody>> {
        let delivery = service
            .ping_webhook(
                &auth.0,
                TeamId::from_uuid(team_id.0),
                WebhookId::from_uuid(id.0),
            )
            .await?;
        Ok(Json(delivery.into()))
    }
}

/// Every error of these operations follows from their shape (token, path, body).
impl Documented for WebhooksApi {}
