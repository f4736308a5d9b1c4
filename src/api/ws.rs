//! `GET /ws`: the real-time feed over a WebSocket.
//!
//! The token is checked before the upgrade (401 otherwise). Then the connection replays what
//! the client missed (`since`), switches to its live queue with no gap and no duplicate, pings
//! every 30 s, and ends with a close code that says why: 4008 when the client fell behind (it
//! resumes with `since`), 4001 when its session was signed out or revoked, 1001 when the
//! server stops.
//!
//! A client that stops reading is cut off within seconds, however much the kernel would
//! buffer for it: every frame must be taken within `--ws-write-timeout`, and every ping
//! answered within as long (a client that does not read never sees the ping). Both end with
//! 4008, sent if the socket still takes it; the connection layer also keeps an upgraded
//! socket's send buffer small.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::{SinkExt, StreamExt};
use poem::http::StatusCode;
use poem::web::Data;
use poem::web::websocket::{CloseCode, Message, WebSocket, WebSocketConfig, WebSocketStream};
use poem::{Body, FromRequest, IntoResponse, Request, RequestBody, Response};
use poem_openapi::param::Query;
use poem_openapi::registry::{
    MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef, Registry,
};
use poem_openapi::types::{ToJSON, Type};
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use uuid::Uuid;

use super::ApiTags;
use super::error::{ApiError, ApiResult, ErrorCode, PROBLEM_JSON, Problem};
use super::notifications::NotificationBody;
use super::spec::{Documented, OperationErrors};
use super::tasks::{ChangeActionBody, FieldChangeBody};
use crate::config::TrustedProxies;
use crate::domain::ProjectId;
use crate::domain::change::{Change, ChangeAction, EntityKind};
use crate::domain::notification::Notification;
use crate::events::Event;
use crate::service::{AuthUser, Feed, Service, Start};

/// How long the 4008 close may take to be written after a frame could not be.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Close code: the client fell behind; resume with `since`.
pub const CLOSE_TOO_SLOW: u16 = 4008;
/// Close code: the session was signed out or revoked.
pub const CLOSE_REVOKED: u16 = 4001;

/// How the feed treats slow clients (from `Config`; the app carries it as request data).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// How long a frame may take to be written, and a ping to be answered.
    pub write_timeout: Duration,
    /// How often the server pings.
    pub ping_interval: Duration,
}

impl Settings {
    pub fn from_config(config: &crate::Config) -> Self {
        Self {
            write_timeout: config.ws_write_timeout,
            ping_interval: config.ws_ping_interval,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self::from_config(&crate::Config::new(""))
    }
}

/// What changed.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "EntityKind", rename_all = "snake_case")]
pub enum EntityBody {
    Team,
    Membership,
    Invitation,
    Project,
    Task,
    Comment,
    Attachment,
}

impl From<EntityKind> for EntityBody {
    fn from(kind: EntityKind) -> Self {
        match kind {
            EntityKind::Team => EntityBody::Team,
            EntityKind::Membership => EntityBody::Membership,
            EntityKind::Invitation => EntityBody::Invitation,
            EntityKind::Project => EntityBody::Project,
            EntityKind::Task => EntityBody::Task,
            EntityKind::Comment => EntityBody::Comment,
            EntityKind::Attachment => EntityBody::Attachment,
        }
    }
}

/// A change's details.
#[derive(Object)]
pub struct ChangeData {
    /// The entity's id (for a membership: the member's user id).
    pub id: Uuid,
    #[oai(nullable)]
    pub team_id: Option<Uuid>,
    #[oai(nullable)]
    pub project_id: Option<Uuid>,
    /// For a comment or an attachment: the task it belongs to.
    #[oai(nullable)]
    pub task_id: Option<Uuid>,
    pub actor_id: Uuid,
    pub at: DateTime<Utc>,
    /// The fields that changed, with their values before and after.
    pub changes: Vec<FieldChangeBody>,
}

/// `{"type": "change", ...}`: a change to something you may see.
#[derive(Object)]
pub struct ChangeMessage {
    /// Always `change`.
    #[oai(rename = "type")]
    pub kind: String,
    /// Position in the change log; resume after it with `?since=`.
    pub seq: u64,
    pub entity: EntityBody,
    pub action: ChangeActionBody,
    pub data: ChangeData,
}

/// `{"type": "notification", ...}`: a new entry in your inbox.
#[derive(Object)]
pub struct NotificationMessage {
    /// Always `notification`.
    #[oai(rename = "type")]
    pub kind: String,
    /// The change that caused it.
    pub seq: u64,
    pub notification: NotificationBody,
}

/// `{"type": "reset"}`: `since` is older than what the server keeps, too far behind to
/// replay (`--replay-budget`), or unknown to it: refetch what you show, then carry on with
/// the messages that follow.
#[derive(Object)]
pub struct ResetMessage {
    /// Always `reset`.
    #[oai(rename = "type")]
    pub kind: String,
}

fn change_message(change: &Change) -> ChangeMessage {
    let c = &change.change;
    ChangeMessage {
        kind: "change".into(),
        seq: change.seq,
        entity: c.entity.into(),
        action: match c.action {
            ChangeAction::Created => ChangeActionBody::Created,
            ChangeAction::Updated => ChangeActionBody::Updated,
            ChangeAction::Deleted => ChangeActionBody::Deleted,
        },
        data: ChangeData {
            id: c.entity_id,
            team_id: c.team_id.map(|t| t.as_uuid()),
            project_id: c.project_id.map(|p| p.as_uuid()),
            task_id: c.task_id.map(|t| t.as_uuid()),
            actor_id: c.actor.as_uuid(),
            at: c.at,
            changes: c
                .fields
                .iter()
                .map(|f| FieldChangeBody {
                    field: f.field.clone(),
                    from: f.before.clone(),
                    to: f.after.clone(),
                })
                .collect(),
        },
    }
}

/// The JSON text of one event.
pub fn encode(event: &Event) -> String {
    let value = match event {
        Event::Change(change) => change_message(change).to_json(),
        Event::Notification(n) => NotificationMessage {
            kind: "notification".into(),
            seq: n.seq,
            notification: NotificationBody::from(Notification::clone(n)),
        }
        .to_json(),
    };
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// The answer to `GET /ws`: the upgrade, or a problem.
pub struct Upgrade(Response);

impl IntoResponse for Upgrade {
    fn into_response(self) -> Response {
        self.0
    }
}

impl ApiResponse for Upgrade {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![
                MetaResponse {
                    description: "Switched to the WebSocket protocol. What follows are WebSocket text frames, each one JSON message as described here (not an HTTP body).",
                    status: Some(101),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: "application/json",
                        schema: MetaSchemaRef::Inline(Box::new(MetaSchema {
                            one_of: vec![
                                <ChangeMessage as Type>::schema_ref(),
                                <NotificationMessage as Type>::schema_ref(),
                                <ResetMessage as Type>::schema_ref(),
                            ],
                            ..MetaSchema::ANY
                        })),
                    }],
                    headers: vec![],
                },
                MetaResponse {
                    description: "Not a WebSocket upgrade request (`upgrade_required`).",
                    status: Some(426),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: PROBLEM_JSON,
                        schema: <Problem as Type>::schema_ref(),
                    }],
                    headers: vec![],
                },
            ],
        }
    }

    fn register(registry: &mut Registry) {
        <Problem as Type>::register(registry);
        <ChangeMessage as Type>::register(registry);
        <NotificationMessage as Type>::register(registry);
        <ResetMessage as Type>::register(registry);
    }
}

/// The bearer token of a WebSocket request: the `Authorization` header, else `?token=`.
fn bearer(req: &Request, query: Option<&str>) -> Option<String> {
    let header = req
        .header("authorization")
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::to_owned);
    header.or_else(|| query.map(str::to_owned))
}

/// The signed-in browser of a WebSocket request: the web app's session cookie, accepted only
/// from a page of this server (browsers always send `Origin` on a WebSocket; a page of another
/// site must not ride on the cookie).
async fn browser_session(req: &Request, service: &Service) -> Result<AuthUser, ApiError> {
    let unauthenticated = || {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthenticated,
            "send the access token as `Authorization: Bearer <token>` or `?token=`, or sign in to the web app",
        )
    };
    let Some(cookie) = req
        .headers()
        .get_all(poem::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == crate::service::SESSION_COOKIE)
        .map(|(_, value)| value.to_string())
    else {
        return Err(unauthenticated().into());
    };
    const NOBODY: &TrustedProxies = &TrustedProxies::none();
    let proxies = req
        .data::<Arc<TrustedProxies>>()
        .map_or(NOBODY, |proxies| proxies.as_ref());
    // Browsers always send `Origin` on a WebSocket: without one, it is no page of ours.
    let same_origin = req
        .header("origin")
        .is_some_and(|origin| super::limits::origin_is_ours(req, origin, proxies));
    if !same_origin {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "a browser session may open the feed only from this server's own pages",
        )
        .into());
    }
    Ok(service.authenticate_cookie(&cookie).await?)
}

fn parse_projects(raw: &str) -> Result<Vec<ProjectId>, ApiError> {
    raw.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            p.trim()
                .parse::<Uuid>()
                .map(ProjectId::from_uuid)
                .map_err(|_| {
                    crate::service::Error::invalid(
                        "projects",
                        "a comma-separated list of project ids",
                    )
                    .into()
                })
        })
        .collect()
}

/// Sends `message` within the write timeout. A client that does not take it in time is told
/// 4008 (if the socket still takes that) and dropped: false, like a failed send.
async fn send(socket: &mut WebSocketStream, message: Message, settings: &Settings) -> bool {
    match tokio::time::timeout(settings.write_timeout, socket.send(message)).await {
        Ok(sent) => sent.is_ok(),
        Err(_) => {
            close(socket, too_slow(), settings).await;
            false
        }
    }
}

/// Sends a close frame, best effort: briefly, whether or not the client takes it.
async fn close(socket: &mut WebSocketStream, message: Message, settings: &Settings) {
    let grace = CLOSE_GRACE.min(settings.write_timeout);
    let _ = tokio::time::timeout(grace, socket.send(message)).await;
}

fn too_slow() -> Message {
    Message::close_with(CLOSE_TOO_SLOW, "too slow: reconnect with ?since=")
}

/// Runs one connection: subscribe (only now that the upgrade happened, so nothing is left
/// registered if it never does), replay, then live, until either side ends it.
async fn serve(
    service: Service,
    auth: AuthUser,
    since: Option<u64>,
    projects: Option<Vec<ProjectId>>,
    settings: Settings,
    mut socket: WebSocketStream,
) {
    let feed = match service.subscribe(&auth, since, projects).await {
        Ok(feed) => feed,
        Err(e) => {
            let message = match e {
                crate::service::Error::Unauthenticated(_) => {
                    Message::close_with(CLOSE_REVOKED, "session revoked")
                }
                other => {
                    tracing::error!(error = %other, "a real-time subscription failed");
                    Message::close_with(CloseCode::Error, "internal error")
                }
            };
            close(&mut socket, message, &settings).await;
            return;
        }
    };
    let Feed {
        start,
        mut viewer,
        mut subscription,
    } = feed;
    let position = subscription.position;
    match start {
        Start::Live => {}
        Start::Reset => {
            let reset = ResetMessage {
                kind: "reset".into(),
            };
            let text = reset.to_json().map(|v| v.to_string()).unwrap_or_default();
            if !send(&mut socket, Message::Text(text), &settings).await {
                service.unsubscribe(subscription.id).await;
                return;
            }
        }
        Start::Replay { mut after } => {
            while after < position {
                let Ok((events, reached)) = service.replay(&mut viewer, after, position).await
                else {
                    let failed = Message::close_with(CloseCode::Error, "replay failed");
                    close(&mut socket, failed, &settings).await;
                    service.unsubscribe(subscription.id).await;
                    return;
                };
                for event in &events {
                    if !send(&mut socket, Message::Text(encode(event)), &settings).await {
                        service.unsubscribe(subscription.id).await;
                        return;
                    }
                }
                after = reached;
            }
        }
    }
    let mut ping = tokio::time::interval(settings.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    // When the oldest unanswered ping must have been answered.
    let mut pong_due: Option<tokio::time::Instant> = None;
    loop {
        let due = pong_due.unwrap_or_else(|| tokio::time::Instant::now() + settings.ping_interval);
        tokio::select! {
            event = subscription.events.recv() => match event {
                Some(event) => {
                    if !send(&mut socket, Message::Text(encode(&event)), &settings).await {
                        break;
                    }
                }
                None => {
                    let ending = &subscription.ending;
                    let message = if ending.overflowed.load(std::sync::atomic::Ordering::SeqCst) {
                        too_slow()
                    } else if ending.revoked.load(std::sync::atomic::Ordering::SeqCst) {
                        Message::close_with(CLOSE_REVOKED, "session revoked")
                    } else {
                        Message::close_with(CloseCode::Away, "server stopping")
                    };
                    // The whole write timeout: a client that reads gets its close code.
                    let _ = tokio::time::timeout(settings.write_timeout, socket.send(message)).await;
                    break;
                }
            },
            _ = ping.tick() => {
                if !send(&mut socket, Message::Ping(Vec::new()), &settings).await {
                    break;
                }
                pong_due.get_or_insert_with(|| tokio::time::Instant::now() + settings.write_timeout);
            }
            _ = tokio::time::sleep_until(due), if pong_due.is_some() => {
                // It does not read (or is gone without a word): it would only pile up frames.
                close(&mut socket, too_slow(), &settings).await;
                break;
            }
            incoming = socket.next() => match incoming {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(Message::Pong(_))) => pong_due = None,
                Some(Ok(_)) => {}
            },
        }
    }
    service.unsubscribe(subscription.id).await;
}

pub struct WsApi;

#[OpenApi(tag = "ApiTags::Realtime")]
impl WsApi {
    /// Real-time feed (WebSocket)
    ///
    /// Upgrade to a WebSocket (`ws://host/api/ws`). Authenticate with
    /// `Authorization: Bearer <token>` or, from a browser, `?token=<token>`; a bad token is a
    /// 401 before the upgrade. The server then sends JSON text messages, each with a `seq`:
    ///
    /// - `{"type": "change", "seq", "entity", "action", "data"}` for every change to a team,
    ///   membership, invitation, project, task, comment or attachment you may see
    ///   (`ChangeMessage`);
    /// - `{"type": "notification", "seq", "notification"}` for each new entry in your inbox
    ///   (`NotificationMessage`);
    /// - `{"type": "reset"}` when `since` is older than the server keeps
    ///   (`--change-retention`, default 7 days) or more entries behind than one replay may
    ///   read (`--replay-budget`, default 10,000): refetch, then carry on (`ResetMessage`).
    ///
    /// Remember the last `seq` you handled and reconnect with `?since=` it: you get everything
    /// you missed, in order, then live messages, with no gap and no duplicate. Close codes:
    /// 4008 you fell behind (reconnect with `since`), 4001 your session was signed out or
    /// revoked, 1001 the server is stopping. The server pings every 30 s; answer within
    /// `--ws-write-timeout` (default 10 s; browsers do by themselves) and keep reading, or the
    /// socket is closed with 4008.
    #[oai(path = "/ws", method = "get", operation_id = "realtimeFeed")]
    async fn ws(
        &self,
        service: Data<&Service>,
        req: &Request,
        /// The access token, for clients that cannot set headers (browsers).
        token: Query<Option<String>>,
        /// Replay everything after this `seq` first.
        since: Query<Option<u64>>,
        /// Comma-separated project ids: only changes of these projects (notifications are
        /// not filtered).
        projects: Query<Option<String>>,
    ) -> ApiResult<Upgrade> {
        let auth = match bearer(req, token.0.as_deref()) {
            Some(token) => service.authenticate(&token).await?,
            None => browser_session(req, &service).await?,
        };
        let projects = projects.0.as_deref().map(parse_projects).transpose()?;
        let upgrade = WebSocket::from_request(req, &mut RequestBody::new(Body::empty())).await;
        let Ok(ws) = upgrade else {
            let problem = Problem::new(
                StatusCode::UPGRADE_REQUIRED,
                ErrorCode::UpgradeRequired,
                "this is a WebSocket endpoint: send an upgrade request",
            );
            return Ok(Upgrade(poem::error::ResponseError::as_response(&problem)));
        };
        // Without `since`, the feed starts where the log is now, before the upgrade is
        // answered: whatever happens between the client seeing 101 and this connection
        // joining the hub is replayed, not lost.
        let since = match since.0 {
            Some(since) => since,
            None => service.feed_start().await?,
        };
        let (service, since) = (service.0.clone(), Some(since));
        let settings = req.data::<Settings>().copied().unwrap_or_default();
        // Clients send next to nothing (pongs, a close): small buffers keep an idle socket
        // cheap; the feed's messages are written as they come.
        let config = WebSocketConfig::default()
            .read_buffer_size(4 << 10)
            .write_buffer_size(0)
            .max_message_size(Some(64 << 10))
            .max_frame_size(Some(64 << 10));
        Ok(Upgrade(
            ws.config(config)
                .on_upgrade(move |socket| serve(service, auth, since, projects, settings, socket))
                .into_response(),
        ))
    }
}

/// Errors of these operations beyond those their shape implies (see `spec.rs`).
impl Documented for WsApi {
    const ERRORS: &'static [OperationErrors] = &[("realtimeFeed", &[401, 403, 422, 426])];
}
