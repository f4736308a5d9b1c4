//! `GET /ws`: the real-time feed over a WebSocket.
//!
//! The token is checked before the upgrade (401 otherwise). Then the connection replays what
//! the client missed (the frames after `?after=`, the position of the last frame it handled,
//! or after every frame of `?since=`'s `seq`), switches to its live queue with no gap and no
//! duplicate, pings every 30 s, and ends with a close code that says why: 4008 when the client
//! fell behind (it resumes with `after`), 4001 when its session was signed out or revoked,
//! 1001 when the server stops. Every frame carries its position (`cursor`, see
//! [`crate::events::Cursor`]), a `reset` too.
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
    MetaDiscriminatorObject, MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef,
    MetaSecurityScheme, Registry,
};
use poem_openapi::types::{ToJSON, Type};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ApiResponse, Enum, ExtractParamOptions, Object, OpenApi,
};
use uuid::Uuid;

use super::ApiTags;
use super::error::{ApiError, ApiResult, ErrorCode, PROBLEM_JSON, Problem};
use super::notifications::NotificationBody;
use super::security::BearerAuth;
use super::spec::{Documented, OperationErrors};
use super::tasks::{ChangeActionBody, FieldChangeBody};
use crate::config::TrustedProxies;
use crate::domain::ProjectId;
use crate::domain::change::{Change, ChangeAction, EntityKind};
use crate::domain::notification::Notification;
use crate::events::{Cursor, Event};
use crate::service::{AuthUser, Feed, Service, Start};

/// How long the 4008 close may take to be written after a frame could not be.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Close code: the client fell behind; resume with `after`.
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
    Webhook,
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
            EntityKind::Webhook => EntityBody::Webhook,
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

/// The `type` of a `ChangeMessage`: always `change`.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum ChangeMessageType {
    Change,
}

/// The `type` of a `NotificationMessage`: always `notification`.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum NotificationMessageType {
    Notification,
}

/// The `type` of a `ResetMessage`: always `reset`.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum ResetMessageType {
    Reset,
}

/// `{"type": "change", ...}`: a change to something you may see.
#[derive(Object)]
pub struct ChangeMessage {
    #[oai(rename = "type")]
    pub kind: ChangeMessageType,
    /// The change-log entry (a notification it caused carries the same `seq`).
    pub seq: u64,
    /// This frame's position, `<seq>.<slot>` (a change is slot 0 of its `seq`): store the
    /// cursor of the last frame you handled and reconnect with `?after=` it.
    pub cursor: String,
    pub entity: EntityBody,
    pub action: ChangeActionBody,
    pub data: ChangeData,
}

/// `{"type": "notification", ...}`: a new entry in your inbox.
#[derive(Object)]
pub struct NotificationMessage {
    #[oai(rename = "type")]
    pub kind: NotificationMessageType,
    /// The change-log entry that caused it (the change frame, if you may see it, came just
    /// before with the same `seq`).
    pub seq: u64,
    /// This frame's position, `<seq>.<slot>` (a notification is slot 1 of its `seq`): store
    /// the cursor of the last frame you handled and reconnect with `?after=` it.
    pub cursor: String,
    pub notification: NotificationBody,
}

/// `{"type": "reset", ...}`: the position asked for is older than what the server keeps,
/// too far behind to replay (`--replay-budget`), or unknown to it: refetch what you show,
/// then carry on with the messages that follow.
#[derive(Object)]
pub struct ResetMessage {
    #[oai(rename = "type")]
    pub kind: ResetMessageType,
    /// The change-log entry the feed carries on after: what you refetch reflects at least
    /// everything up to it.
    pub seq: u64,
    /// This frame's position, the end of `seq` (`<seq>.1`): reconnecting with `?after=` it
    /// gets the frames after the reset, like any other frame's.
    pub cursor: String,
}

impl ResetMessage {
    fn at(seq: u64) -> Self {
        Self {
            kind: ResetMessageType::Reset,
            seq,
            cursor: Cursor::end_of(seq).to_string(),
        }
    }
}

/// The name of the union of the messages in the spec.
const MESSAGE_UNION: &str = "RealtimeMessage";

/// The union of the messages, told apart by `type` (the spec's `RealtimeMessage`).
struct RealtimeMessage;

impl RealtimeMessage {
    fn register(registry: &mut Registry) {
        <ChangeMessage as Type>::register(registry);
        <NotificationMessage as Type>::register(registry);
        <ResetMessage as Type>::register(registry);
        let members: [(&str, MetaSchemaRef); 3] = [
            ("change", <ChangeMessage as Type>::schema_ref()),
            ("notification", <NotificationMessage as Type>::schema_ref()),
            ("reset", <ResetMessage as Type>::schema_ref()),
        ];
        registry.create_schema::<Self, _>(MESSAGE_UNION.to_string(), |_| MetaSchema {
            description: Some(
                "One WebSocket text frame of `GET /ws`: a `ChangeMessage`, a \
                 `NotificationMessage` or a `ResetMessage`, told apart by `type`. Every one \
                 carries `seq` and its position `cursor`.",
            ),
            discriminator: Some(MetaDiscriminatorObject {
                property_name: "type",
                mapping: members
                    .iter()
                    .filter_map(|(value, schema)| match schema {
                        MetaSchemaRef::Reference(name) => {
                            Some((value.to_string(), format!("#/components/schemas/{name}")))
                        }
                        MetaSchemaRef::Inline(_) => None,
                    })
                    .collect(),
            }),
            one_of: members.into_iter().map(|(_, schema)| schema).collect(),
            ..MetaSchema::ANY
        });
    }
}

fn change_message(change: &Change) -> ChangeMessage {
    let c = &change.change;
    ChangeMessage {
        kind: ChangeMessageType::Change,
        seq: change.seq,
        cursor: Cursor::new(change.seq, Cursor::CHANGE).to_string(),
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

/// The JSON text of a change as a webhook receives it: the feed's change message.
pub fn webhook_body(change: &Change) -> String {
    change_message(change)
        .to_json()
        .map(|v| v.to_string())
        .unwrap_or_default()
}

/// The JSON text of one event.
pub fn encode(event: &Event) -> String {
    let value = match event {
        Event::Change(change) => change_message(change).to_json(),
        Event::Notification(n) => NotificationMessage {
            kind: NotificationMessageType::Notification,
            seq: n.seq,
            cursor: event.cursor().to_string(),
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
                        schema: MetaSchemaRef::Reference(MESSAGE_UNION.to_string()),
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
        RealtimeMessage::register(registry);
    }
}

/// The security scheme of `?token=`: the access token in the query, for clients that cannot
/// set headers on a WebSocket (browsers).
const TOKEN_QUERY: &str = "TokenQuery";

/// Who opens the feed: the access token of `Authorization: Bearer` (`BearerAuth`), else of
/// `?token=` (`TokenQuery`), else the web app's session cookie from a page of this server.
/// The spec lists the first two as the operation's security; the cookie is the web app's
/// own. Checked before the upgrade: a bad token is a 401.
pub struct FeedAuth(pub AuthUser);

#[derive(serde::Deserialize)]
struct TokenParam {
    token: Option<String>,
}

impl<'a> ApiExtractor<'a> for FeedAuth {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <BearerAuth as ApiExtractor<'a>>::register(registry);
        registry.create_security_scheme(
            TOKEN_QUERY,
            MetaSecurityScheme {
                ty: "apiKey",
                description: Some(
                    "The access token as `?token=<token>`, for `GET /ws` only (browsers cannot \
                     set headers on a WebSocket).",
                ),
                name: Some("token"),
                key_in: Some("query"),
                scheme: None,
                bearer_format: None,
                flows: None,
                openid_connect_url: None,
            },
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        let mut schemes = <BearerAuth as ApiExtractor<'a>>::security_schemes();
        schemes.push(TOKEN_QUERY);
        schemes
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _options: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let service = req
            .data::<Service>()
            .expect("the service is attached to every request");
        let user = match bearer(req) {
            Some(token) => service.authenticate(&token).await.map_err(Problem::from),
            None => browser_session(req, service).await,
        };
        user.map(FeedAuth).map_err(Into::into)
    }
}

/// The bearer token of a WebSocket request: the `Authorization` header, else `?token=`.
fn bearer(req: &Request) -> Option<String> {
    let header = req
        .header("authorization")
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::to_owned);
    header.or_else(|| req.params::<TokenParam>().ok().and_then(|p| p.token))
}

/// The signed-in browser of a WebSocket request: the web app's session cookie, accepted only
/// from a page of this server (browsers always send `Origin` on a WebSocket; a page of another
/// site must not ride on the cookie).
async fn browser_session(req: &Request, service: &Service) -> Result<AuthUser, Problem> {
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
        return Err(unauthenticated());
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
        ));
    }
    service
        .authenticate_cookie(&cookie)
        .await
        .map_err(Problem::from)
}

/// Where a connection starts: after `after` (a frame's `cursor`), after every frame of
/// `since`, or (neither) live, after every frame of the log's newest entry now.
async fn starting_position(
    service: &Service,
    after: Option<&str>,
    since: Option<u64>,
) -> Result<Cursor, ApiError> {
    match (after, since) {
        (Some(_), Some(_)) => Err(crate::service::Error::invalid(
            "after",
            "give `after` (a frame's `cursor`) or `since`, not both",
        )
        .into()),
        (Some(after), None) => after.parse::<Cursor>().map_err(|_| {
            crate::service::Error::invalid(
                "after",
                "the `cursor` of a frame, `<seq>.<slot>` such as `42.1`",
            )
            .into()
        }),
        (None, Some(since)) => Ok(Cursor::end_of(since)),
        // Without a position, the feed starts where the log is now, before the upgrade is
        // answered: whatever happens between the client seeing 101 and this connection
        // joining the hub is replayed, not lost; nothing older is.
        (None, None) => Ok(Cursor::end_of(service.feed_start().await?)),
    }
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
    Message::close_with(CLOSE_TOO_SLOW, "too slow: reconnect with ?after=")
}

/// Runs one connection: subscribe (only now that the upgrade happened, so nothing is left
/// registered if it never does), replay, then live, until either side ends it.
async fn serve(
    service: Service,
    auth: AuthUser,
    after: Cursor,
    projects: Option<Vec<ProjectId>>,
    settings: Settings,
    mut socket: WebSocketStream,
) {
    let feed = match service.subscribe(&auth, Some(after), projects).await {
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
            let reset = ResetMessage::at(position);
            let text = reset.to_json().map(|v| v.to_string()).unwrap_or_default();
            if !send(&mut socket, Message::Text(text), &settings).await {
                service.unsubscribe(subscription.id).await;
                return;
            }
        }
        Start::Replay { after } => {
            // The log is read from the last entry all of whose frames the client has; of the
            // first entry read, the frames at or before `after` are not sent again.
            let mut read = after.done_through();
            while read < position {
                let Ok((events, reached)) = service.replay(&mut viewer, read, position).await
                else {
                    let failed = Message::close_with(CloseCode::Error, "replay failed");
                    close(&mut socket, failed, &settings).await;
                    service.unsubscribe(subscription.id).await;
                    return;
                };
                for event in events.iter().filter(|event| event.cursor() > after) {
                    if !send(&mut socket, Message::Text(encode(event)), &settings).await {
                        service.unsubscribe(subscription.id).await;
                        return;
                    }
                }
                read = reached;
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
    /// Upgrade to a WebSocket (`ws://host/api/ws`, `wss://` behind https). Authenticate with
    /// `Authorization: Bearer <token>` or, from a browser (which cannot set headers on a
    /// WebSocket), `?token=<token>`; a bad token is a 401 before the upgrade. The server then
    /// sends JSON text messages (`RealtimeMessage`, told apart by `type`), each with the
    /// change-log entry it comes from (`seq`) and its own position (`cursor`):
    ///
    /// - `{"type": "change", "seq", "cursor", "entity", "action", "data"}` for every change to
    ///   a team, membership, invitation, project, task, comment or attachment you may see
    ///   (`ChangeMessage`);
    /// - `{"type": "notification", "seq", "cursor", "notification"}` for each new entry in
    ///   your inbox (`NotificationMessage`); it shares its `seq` with the change that caused
    ///   it, and comes right after that change's frame when you may see the change;
    /// - `{"type": "reset", "seq", "cursor"}` when the position you resume from is older than
    ///   the server keeps (`--change-retention`, default 7 days), more entries behind than
    ///   one replay may read (`--replay-budget`, default 10,000) or unknown to it: refetch,
    ///   then carry on (`ResetMessage`).
    ///
    /// **Resume exactly.** Store the `cursor` of the last message you handled, whatever its
    /// `type`, and reconnect with `?after=<cursor>`: you get every message after that one, in
    /// order, then live messages, with no gap and no duplicate. A cursor is
    /// `<seq>.<slot>` (a change is slot 0 of its `seq`, its notification slot 1, a reset the
    /// end of its `seq`); treat it as an opaque string. `?since=<seq>` still works and
    /// means "after every message of that `seq`" (the same as `after=<seq>.1`): a client that
    /// stored the `seq` of a change and lost the connection before the notification of the
    /// same `seq` would not get that notification, so store `cursor`. Without `after` or
    /// `since`, the feed starts live: nothing older than the connection is sent.
    ///
    /// Close codes: 4008 you fell behind (reconnect with `after`), 4001 your session was
    /// signed out or revoked, 1001 the server is stopping. The server pings every 30 s;
    /// answer within `--ws-write-timeout` (default 10 s; browsers do by themselves) and keep
    /// reading, or the socket is closed with 4008.
    #[oai(path = "/ws", method = "get", operation_id = "realtimeFeed")]
    async fn ws(
        &self,
        service: Data<&Service>,
        req: &Request,
        auth: FeedAuth,
        /// Resume after this message: the `cursor` of the last message you handled (of any
        /// `type`). You get exactly the messages after it, then live ones.
        after: Query<Option<String>>,
        /// Resume after every message of this `seq` (the same as `after=<seq>.1`); kept for
        /// clients that store `seq`. Not with `after`.
        since: Query<Option<u64>>,
        /// Comma-separated project ids: only changes of these projects (notifications are
        /// not filtered).
        projects: Query<Option<String>>,
    ) -> ApiResult<Upgrade> {
        let auth = auth.0;
        let projects = projects.0.as_deref().map(parse_projects).transpose()?;
        let after = starting_position(&service, after.0.as_deref(), since.0).await?;
        let upgrade =
            <WebSocket as FromRequest>::from_request(req, &mut RequestBody::new(Body::empty()))
                .await;
        let Ok(ws) = upgrade else {
            let problem = Problem::new(
                StatusCode::UPGRADE_REQUIRED,
                ErrorCode::UpgradeRequired,
                "this is a WebSocket endpoint: send an upgrade request",
            );
            return Ok(Upgrade(poem::error::ResponseError::as_response(&problem)));
        };
        let service = service.0.clone();
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
                .on_upgrade(move |socket| serve(service, auth, after, projects, settings, socket))
                .into_response(),
        ))
    }
}

/// Errors of these operations beyond those their shape implies (see `spec.rs`).
impl Documented for WsApi {
    const ERRORS: &'static [OperationErrors] = &[("realtimeFeed", &[401, 403, 422, 426])];
}
