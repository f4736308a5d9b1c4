//! The HTTP API: poem-openapi only. Handlers are thin: they turn a request into a service
//! call and the result into a response. Permission checks and validation live in the service.
//!
//! Layout of the server (outermost first): request id, log and metrics -> CORS -> rate limit
//! per client -> panic guard -> error rendering (every error becomes `problem+json`) ->
//! body-size limit -> sign-in rate limits -> routes.

/// `/auth/tokens`: personal access tokens.
mod access_tokens;
/// `/admin`: backups for site admins, also served on the admin socket.
mod admin;
/// `/auth`: register, login, refresh, logout, profile, sessions.
/// Files attached to tasks.
pub(crate) mod attachments;
mod auth;
/// Board order: moving a task, a project's board.
mod board;
/// The calendar feed: `/auth/calendar` and the feed itself, `/ical/{token}.ics`.
pub(crate) mod calendar;
/// Comments on tasks.
mod comments;
/// ETag, If-Match and If-None-Match.
mod conditional;
/// CORS for the configured origins.
mod cors;
/// gzip for large bodies (assets, Swagger UI).
pub(crate) mod encoding;
/// The problem+json error type and its codes.
pub mod error;
/// `/health`.
mod health;
/// Invitations to teams.
mod invitations;
/// Rate limits per client address and per account.
pub(crate) mod limits;
/// Email verification and password reset by mail.
mod mail;
/// Route labels and Prometheus metrics (`/metrics`).
mod metrics;
/// Middleware: request id, request log, body limit, panic guard.
pub mod middleware;
/// The caller's notification inbox.
mod notifications;
/// One generic page type for every list, keeping each list's schema name.
mod page;
/// My notification preferences and the one-click unsubscribe link of emails.
mod preferences;
/// `/projects`.
mod projects;
/// The bearer-token security scheme.
pub mod security;
/// The published spec: per-operation error responses, Swagger UI.
mod spec;
/// `/tasks`.
mod tasks;
/// `/teams`: teams and members.
mod teams;
/// A strict JSON string type for request bodies.
mod text;
/// `/users`.
mod users;
/// Names the fields at fault when a JSON body does not parse.
mod validation;
/// Team webhooks: management, delivery logs, redelivery, ping.
mod webhooks;
/// The real-time feed over a WebSocket.
mod ws;
pub use ws::Settings as WsSettings;
pub use ws::webhook_body;

use poem::endpoint::make_sync;
use poem::middleware::CatchPanic;
use poem::{Endpoint, EndpointExt, IntoResponse, Response, Route, get};
use poem_openapi::{ApiResponse, OpenApiService, Tags};

use std::sync::Arc;

use crate::config::Config;
use crate::service::Service;

pub use limits::ClientAddress;

/// The largest JSON request body accepted.
pub const MAX_JSON_BODY_BYTES: usize = 1024 * 1024;

#[derive(Tags)]
pub enum ApiTags {
    /// Accounts, tokens and sessions
    Auth,
    /// The caller's account
    Users,
    /// Teams and their members
    Teams,
    /// Invitations to teams
    Invitations,
    /// A team's projects
    Projects,
    /// Tasks, their lists and history
    Tasks,
    /// Discussion on a task
    Comments,
    /// Files attached to a task
    Attachments,
    /// My notification inbox
    Notifications,
    /// The real-time feed (WebSocket)
    Realtime,
    /// A team's webhooks and their deliveries
    Webhooks,
    /// Health and operations
    Ops,
}

/// Success without a body.
#[derive(ApiResponse)]
pub enum NoContent {
    /// Done.
    #[oai(status = 204)]
    Done,
}

// A tuple of APIs stops at 16: the account's APIs and the inbox's are nested.
type Apis = (
    (
        auth::AuthApi,
        access_tokens::AccessTokensApi,
        mail::MailApi,
        calendar::CalendarApi,
    ),
    users::UsersApi,
    teams::TeamsApi,
    invitations::InvitationsApi,
    projects::ProjectsApi,
    tasks::TasksApi,
    board::BoardApi,
    comments::CommentsApi,
    attachments::AttachmentsApi,
    (notifications::NotificationsApi, preferences::PreferencesApi),
    ws::WsApi,
    health::HealthApi,
    admin::AdminApi,
    webhooks::WebhooksApi,
);

const DESCRIPTION: &str = "\
The tasker HTTP API. All paths are under `/api`; bodies are JSON (UTF-8), timestamps RFC 3339 \
UTC, ids UUIDv7.

**Server URL.** The one server listed, `/api`, is relative: it resolves against the address \
this document was fetched from, so for `https://tasks.example.com/api/openapi.json` the base \
URL is `https://tasks.example.com/api` (Swagger UI resolves it itself). A generated client \
needs that absolute base URL: `Client(base_url=\"https://tasks.example.com/api\")` \
(openapi-python-client), `createClient({ baseUrl: \"https://tasks.example.com/api\" })` \
(openapi-fetch).

**Authentication.** `POST /auth/register` or `POST /auth/login` returns an access `token` \
(send it as `Authorization: Bearer <token>`, valid for `expires_at`) and a single-use \
`refresh_token` for `POST /auth/refresh`. In Swagger UI, press *Authorize* and paste the token.

**Errors** are `application/problem+json`: `{status, code, title, detail, errors[]}`. Branch on \
`code` (see the `ErrorCode` schema for the list); `errors[]` names each invalid field.
A body field the schema does not have is refused like a missing, `null` or mistyped one: \
422 `validation_failed`, its JSON path (e.g. `labels[2]`) in `errors[].field`.

**Lists** are cursor-paginated: `?limit=` (1-200, default 50) and `?cursor=` from the previous \
page's `next_cursor` (null on the last page).";

/// The OpenAPI service: every documented operation.
pub fn openapi() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            (
                auth::AuthApi,
                access_tokens::AccessTokensApi,
                mail::MailApi,
                calendar::CalendarApi,
            ),
            users::UsersApi,
            teams::TeamsApi,
            invitations::InvitationsApi,
            projects::ProjectsApi,
            tasks::TasksApi,
            board::BoardApi,
            comments::CommentsApi,
            attachments::AttachmentsApi,
            (notifications::NotificationsApi, preferences::PreferencesApi),
            ws::WsApi,
            health::HealthApi,
            admin::AdminApi,
            webhooks::WebhooksApi,
        ),
        "tasker",
        env!("CARGO_PKG_VERSION"),
    )
    .description(DESCRIPTION)
    .server("/api")
}

/// The spec as served, committed under `openapi/` and printed by `tasker openapi`.
pub fn spec_json() -> String {
    spec::published()
}

/// Serves the admin routes on the admin socket until `stop` turns true.
#[cfg(unix)]
pub async fn serve_admin_socket(
    listener: std::os::unix::net::UnixListener,
    service: Service,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let acceptor = poem::listener::UnixAcceptor::from_std(listener)?;
    poem::Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(
            admin::socket_app(service),
            async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            },
            Some(std::time::Duration::from_secs(10)),
        )
        .await
}

/// The whole HTTP application: the API under `/api`, Swagger UI at `/docs`, and `site` (the
/// web app) at every other path, all behind the same middleware.
pub fn app<Site: Endpoint<Output = Response> + 'static>(
    service: Service,
    config: &Config,
    site: Site,
) -> impl Endpoint<Output = Response> + use<Site> {
    let published = spec::published();
    let docs = spec::docs(&published);
    let routes = Arc::new(metrics::Routes::from_spec(&published));
    let metrics = config.metrics.then(|| {
        Arc::new(metrics::Metrics::new(
            routes.clone(),
            config.metrics_token.clone(),
        ))
    });
    let observer = Arc::new(middleware::Observer {
        routes,
        metrics: metrics.clone(),
    });
    let proxies = Arc::new(config.trusted_proxies.clone());
    let limiter = config
        .rate_limits
        .map(|limits| Arc::new(limits::Limiter::new(&limits, proxies.clone())));
    let (account_limiter, limited_service) = (limiter.clone(), service.clone());
    let cors = cors::Cors::new(&config.cors_origins);
    let schemas = Arc::new(validation::BodySchemas::from_spec(&published));
    let spec_body = published;
    let site = Arc::new(site);
    let mut route = Route::new();
    if let Some(metrics) = metrics {
        let service = service.clone();
        route = route.at(
            "/metrics",
            get(poem::endpoint::make(move |req| {
                let (metrics, service) = (metrics.clone(), service.clone());
                async move { metrics::scrape(&metrics, &service, &req).await }
            })),
        );
    }
    route
        .at("/docs", get(docs))
        .at(
            "/api/openapi.json",
            get(make_sync(move |_| {
                spec_body.clone().with_content_type("application/json")
            })),
        )
        .at(
            "/api/unsubscribe/:token",
            get(preferences::unsubscribe_page).post(preferences::unsubscribe),
        )
        .nest("/api", openapi())
        .at("/ical/:file", get(calendar::serve_feed))
        // poem's nest at "/" matches every path below it but not "/" itself.
        .at("/", site.clone())
        .nest("/", site)
        .data(service)
        .data(proxies.clone())
        .around(move |next, req| limits::note_client(next, req, proxies.clone()))
        .around(move |next, req| {
            let (limiter, service) = (account_limiter.clone(), limited_service.clone());
            limits::limit_per_account(next, req, limiter, service)
        })
        .around(move |next, req| middleware::limit_body(next, req, schemas.clone()))
        .catch_all_error(|err| async move { error::render_error(err) })
        .with(CatchPanic::new().with_handler(middleware::panic_response))
        .around(move |next, req| limits::limit_requests(next, req, limiter.clone()))
        .around(move |next, req| cors::cors(next, req, cors.clone()))
        .around(move |next, req| middleware::observe(next, req, observer.clone()))
}
