//! The calendar feed: `/auth/calendar` (the signed-in user's feed: status, create or
//! regenerate, revoke) in the API, and the feed itself at `/ical/{token}.ics`, outside `/api`
//! and without an `Authorization` header (calendar apps cannot send one): the token in the
//! path is the credential. An unknown, revoked or malformed token gets a bare 404, the same
//! for all of them. The feed is under the general per-address rate limit like every request;
//! a 256-bit token leaves nothing to guess.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::http::{StatusCode, header};
use poem::web::{Data, Path, Query};
use poem::{IntoResponse, Request, Response, handler};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::conditional::none_match_hits;
use super::error::{ApiResult, Problem};
use super::limits::forwarded;
use super::security::BearerAuth;
use super::spec::{Documented, OperationErrors};
use super::{ApiTags, NoContent};
use crate::config::TrustedProxies;
use crate::domain::calendar::{FEED_REFRESH, FeedKind, FeedSite, render_feed};
use crate::service::Service;

/// Whether the caller has a calendar feed. The feed's URL is shown only when it is made.
#[derive(Object)]
pub struct CalendarFeedStatus {
    /// True when a feed URL exists and works.
    pub active: bool,
    /// When the current feed URL was made; null without one.
    #[oai(nullable)]
    pub created_at: Option<DateTime<Utc>>,
}

/// A new calendar feed URL, shown this once (only a hash of its token is kept).
#[derive(Object)]
pub struct CalendarFeedCreated {
    /// The feed as to-dos (`VTODO`): subscribe to this URL in a calendar app. It is a
    /// password: whoever has it reads your dated tasks.
    pub url: String,
    /// The same feed as events (`VEVENT`, `?kind=event`), for apps that ignore to-dos
    /// (Google Calendar, most phone calendars).
    pub event_url: String,
    pub created_at: DateTime<Utc>,
}

#[derive(ApiResponse)]
pub enum CreatedFeed {
    /// The new feed URL; any previous one has stopped working.
    #[oai(status = 201)]
    Created(
        Json<CalendarFeedCreated>,
        /// `/api/auth/calendar`.
        #[oai(header = "Location")]
        String,
    ),
}

/// The origin the client reached us at (`https://tasks.example.com`): the scheme and host a
/// trusted proxy forwards, else the request's own.
pub(crate) fn site_origin(req: &Request, proxies: &TrustedProxies) -> String {
    let https = req.uri().scheme_str() == Some("https")
        || forwarded(req, "x-forwarded-proto", proxies)
            .is_some_and(|proto| proto.eq_ignore_ascii_case("https"));
    let host = forwarded(req, "x-forwarded-host", proxies)
        .or_else(|| req.header(header::HOST))
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("localhost");
    format!("{}://{host}", if https { "https" } else { "http" })
}

/// The proxies whose forwarding headers are believed (attached to every request by `app`).
fn proxies_of(req: &Request) -> Arc<TrustedProxies> {
    req.data::<Arc<TrustedProxies>>()
        .cloned()
        .unwrap_or_else(|| Arc::new(TrustedProxies::none()))
}

/// The host of an authority, without its port: `tasks.example`, `[::1]`.
fn host_name(authority: &str) -> &str {
    match authority.find(']') {
        Some(end) if authority.starts_with('[') => &authority[..=end],
        _ => authority.split(':').next().unwrap_or(authority),
    }
}

/// Where feed URLs point: `--public-url` when it is set, else the address this request came to.
pub(crate) fn feed_origin(service: &Service, req: &Request, proxies: &TrustedProxies) -> String {
    match service.public_url() {
        Some(url) => url.to_string(),
        None => site_origin(req, proxies),
    }
}

/// The feed's URLs for `path` at `origin`: as to-dos, and as events.
pub(crate) fn feed_urls(origin: &str, path: &str) -> (String, String) {
    let url = format!("{origin}{path}");
    let events = format!("{url}?kind=event");
    (url, events)
}

pub struct CalendarApi;

#[OpenApi(prefix_path = "/auth/calendar", tag = "ApiTags::Auth")]
impl CalendarApi {
    /// Get my calendar feed
    ///
    /// Whether you have a calendar feed URL, and since when. The URL itself is shown only
    /// when it is made (`POST /auth/calendar`).
    #[oai(path = "/", method = "get", operation_id = "getCalendarFeed")]
    async fn status(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
    ) -> ApiResult<Json<CalendarFeedStatus>> {
        let current = service.calendar_feed(&auth.0).await?;
        Ok(Json(CalendarFeedStatus {
            active: current.is_some(),
            created_at: current.map(|f| f.created_at),
        }))
    }

    /// Create or regenerate my calendar feed
    ///
    /// Makes a secret iCalendar URL, `/ical/tkc_….ics`, listing the tasks assigned to you that
    /// have a due date (in every team you are still a member of, at most 1000, latest due
    /// first), each with a stable `UID`, `DUE` (a date for tasks due on a day, else a UTC
    /// time), `STATUS`, `PRIORITY` (1 urgent, 3 high, 5 medium, 9 low) and a `URL` to the
    /// task. Calendar apps subscribe to it without signing in, so treat it as a password. The
    /// answer shows it this once; a previous URL stops working at once. The feed lists
    /// to-dos (`VTODO`); `event_url` (`?kind=event`) lists the same tasks as events (all day,
    /// or 30 minutes at the due time) for apps that ignore to-dos. Responses carry an `ETag`
    /// (304 on `If-None-Match`) and `Cache-Control: private, max-age=300`.
    #[oai(path = "/", method = "post", operation_id = "createCalendarFeed")]
    async fn create(
        &self,
        service: Data<&Service>,
        req: &Request,
        auth: BearerAuth,
    ) -> ApiResult<CreatedFeed> {
        let issued = service.issue_calendar_feed(&auth.0).await?;
        let (url, event_url) = feed_urls(
            &feed_origin(&service, req, &proxies_of(req)),
            &issued.path(),
        );
        Ok(CreatedFeed::Created(
            Json(CalendarFeedCreated {
                url,
                event_url,
                created_at: issued.created_at,
            }),
            "/api/auth/calendar".to_string(),
        ))
    }

    /// Revoke my calendar feed
    ///
    /// The feed URL stops working at once (calendar apps get 404). `not_found` when you have
    /// none.
    #[oai(path = "/", method = "delete", operation_id = "deleteCalendarFeed")]
    async fn revoke(&self, service: Data<&Service>, auth: BearerAuth) -> ApiResult<NoContent> {
        service.revoke_calendar_feed(&auth.0).await?;
        Ok(NoContent::Done)
    }
}

/// Errors of these operations beyond those their shape implies (see `spec.rs`).
impl Documented for CalendarApi {
    const ERRORS: &'static [OperationErrors] = &[("deleteCalendarFeed", &[404])];
}

#[derive(Deserialize)]
pub struct FeedQuery {
    kind: Option<String>,
}

/// A bare answer with no body worth reading.
fn plain(status: StatusCode, text: &'static str) -> Response {
    Response::builder()
        .status(status)
        .content_type("text/plain; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .body(text)
}

/// `GET /ical/{token}.ics[?kind=event]`: the feed of the token's owner.
#[handler]
pub async fn serve_feed(
    req: &Request,
    service: Data<&Service>,
    Path(file): Path<String>,
    Query(query): Query<FeedQuery>,
) -> poem::Result<Response> {
    let Some(kind) = FeedKind::parse(query.kind.as_deref()) else {
        return Ok(plain(
            StatusCode::BAD_REQUEST,
            "kind must be todo or event\n",
        ));
    };
    let found = match file.strip_suffix(".ics") {
        Some(token) => service
            .calendar_feed_tasks(token)
            .await
            .map_err(Problem::from)?,
        None => None,
    };
    let Some(found) = found else {
        return Ok(plain(StatusCode::NOT_FOUND, "Not Found\n"));
    };
    let origin = feed_origin(&service, req, &proxies_of(req));
    let authority = origin
        .split_once("://")
        .map_or("tasker", |(_, rest)| rest.split('/').next().unwrap_or(rest));
    let host = host_name(authority);
    let name = format!("{} (tasker)", found.user.name.as_str());
    let site = FeedSite {
        origin: &origin,
        host,
        name: &name,
    };
    let body = render_feed(&found.tasks, &site, kind);
    let digest = Sha256::digest(body.as_bytes());
    let tag: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    let etag = format!("\"{tag}\"");
    let cache = format!("private, max-age={}", FEED_REFRESH.as_secs());
    let builder = Response::builder()
        .header(header::ETAG, etag.as_str())
        .header(header::CACHE_CONTROL, cache)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::REFERRER_POLICY, "no-referrer");
    if none_match_hits(req.header(header::IF_NONE_MATCH), &etag) {
        return Ok(builder.status(StatusCode::NOT_MODIFIED).finish());
    }
    Ok(builder
        .content_type("text/calendar; charset=utf-8")
        .header(
            header::CONTENT_DISPOSITION,
            "inline; filename=\"tasker.ics\"",
        )
        .body(body)
        .into_response())
}
