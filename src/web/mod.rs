//! The web app: server-rendered pages (askama templates under `templates/`, type-checked at
//! compile time), htmx for partial updates, and a few small ES modules under `assets/app/`
//! (the live connection, shortcuts, the board). Handlers are thin: they call the same service
//! as the JSON API, so no permission rule is written twice, and render a template.
//!
//! Every response carries a strict Content-Security-Policy (`script-src 'self'`, no inline
//! script or style), so templates hold no `<script>` bodies, `style=` or `on*=` attributes.
//! Browsers sign in with a session cookie (`session`); every unsafe request passes the CSRF
//! guard (`csrf`).

/// Embedded static files under content-hashed names.
pub mod assets;
/// The project board: columns by status, quick add, drag and drop, "Move to…", live updates.
mod board;
/// The CSRF guard on unsafe requests.
mod csrf;
/// Error pages.
pub mod error;
/// Markdown rendered and sanitized for pages.
pub mod markdown;
/// Sign in, register, first set-up, sign out.
mod pages_auth;
/// My work: the caller's assigned tasks by due date.
mod pages_home;
/// A team's webhooks and their delivery logs (owners and admins).
mod pages_hooks;
/// Task lists (all tasks, one project's): filters and sort in the URL, bulk status change.
mod pages_lists;
/// The pages behind mailed links: verify, forgot and reset password.
mod pages_mail;
/// The notification inbox: mark read, mark all read, live updates.
mod pages_notifications;
/// The profile: name, email, password, sessions with revoke.
mod pages_profile;
/// Projects of my teams: create; a project's settings (rename, archive, delete).
mod pages_projects;
/// Search as you type, with highlights.
mod pages_search;
/// Notification settings: time zone, reminders, digest, per-kind delivery, ntfy.
mod pages_settings;
/// Teams: mine, invitations for me, members and roles, inviting.
mod pages_teams;
/// Personal access tokens: list, create (the secret shown once), revoke.
mod pages_tokens;
/// The session cookie and the signed-in user of a page.
pub mod session;
/// The task page (fields, comments, files, history) and the create form.
mod task;
/// What pages show of domain values (labels, due dates, task rows).
pub mod views;

use std::sync::Arc;

use poem::http::header;
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route, get, post};

use crate::config::{Config, Registration, TrustedProxies};
use crate::service::Service;
use error::{WebError, WebResult};
use session::WebUser;

/// The policy on every page: only our own scripts, styles, images and connections; no
/// framing, no plugins, forms only to ourselves.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Settings the pages need from the [`Config`].
#[derive(Clone)]
pub struct Settings {
    /// `--trusted-proxies`: whose `X-Forwarded-Proto` and `X-Forwarded-Host` are believed.
    pub proxies: Arc<TrustedProxies>,
    pub registration: Registration,
}

/// The web app's routes, to be nested at `/` beside the API.
pub fn site(config: &Config) -> impl Endpoint<Output = Response> + use<> {
    let settings = Settings {
        proxies: Arc::new(config.trusted_proxies.clone()),
        registration: config.registration,
    };
    let proxies = settings.proxies.clone();
    let route = Route::new()
        .at("/", get(pages_home::my_work))
        .at(
            "/setup",
            get(pages_auth::setup_page).post(pages_auth::submit_setup),
        )
        .at(
            "/signin",
            get(pages_auth::signin_page).post(pages_auth::submit_signin),
        )
        .at(
            "/register",
            get(pages_auth::register_page).post(pages_auth::submit_register),
        )
        .at("/signout", post(pages_auth::signout));
    // Each area of the app adds its pages here (one line per area, `fn routes(Route) -> Route`).
    let route = pages_teams::routes(route);
    let route = pages_projects::routes(route);
    let route = pages_notifications::routes(route);
    let route = pages_profile::routes(route);
    let route = board::routes(route);
    let route = pages_lists::routes(route);
    let route = pages_search::routes(route);
    let route = task::routes(route);
    let route = pages_tokens::routes(route);
    let route = pages_settings::routes(route);
    let route = pages_mail::routes(route);
    let route = pages_hooks::routes(route);
    route
        .at("/assets/*name", get(assets::serve))
        .at("/favicon.ico", get(assets::favicon))
        .data(settings)
        .around(move |next, req| csrf::guard(next, req, proxies.clone()))
        .around(security_headers)
}

/// Security headers on every response of the web app.
async fn security_headers<E: Endpoint>(next: Arc<E>, req: Request) -> poem::Result<Response> {
    let mut response = match next.call(req).await {
        Ok(response) => response.into_response(),
        Err(err) if err.is_from_response() => err.into_response(),
        // No such page (poem's router found no route).
        Err(err) if err.status() == poem::http::StatusCode::NOT_FOUND => error::not_found_page(),
        Err(err) => {
            tracing::warn!(error = %err, "a page request failed");
            WebError::BadRequest("The request could not be read.".into()).page()
        }
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("DENY"),
    );
    headers.insert(
        "cross-origin-opener-policy",
        header::HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        // Pages show private data: never stored by shared caches, revalidated when revisited.
        headers.insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("private, no-cache"),
        );
    }
    Ok(response)
}

/// An HTML response.
pub fn html_response(html: String) -> Response {
    html.with_content_type("text/html; charset=utf-8")
        .into_response()
}

/// Renders a page template.
pub fn render(page: &impl askama::Template) -> WebResult<Response> {
    Ok(html_response(page.render()?))
}

/// A `303 See Other` to `location` (after a form post), or `HX-Redirect` for htmx.
pub fn see_other(location: &str) -> Response {
    Response::builder()
        .status(poem::http::StatusCode::SEE_OTHER)
        .header(header::LOCATION, location)
        .finish()
}

/// The signed-in part of the frame around every page.
pub struct Signed {
    pub id: String,
    pub name: String,
    pub csrf: String,
    pub unread: u64,
    /// The change-log position the page was rendered at: the live connection resumes after
    /// it, so nothing that happens between render and connect is missed.
    pub since: u64,
    pub is_admin: bool,
}

/// What the layout needs: asset URLs, and who is signed in (none on public pages).
pub struct Chrome {
    pub css: &'static str,
    pub htmx: &'static str,
    pub app_js: &'static str,
    pub live_js: &'static str,
    pub user: Option<Signed>,
    /// The main-menu entry this page belongs to (`mywork`, `tasks`, `teams`, `search`, ...).
    pub nav: &'static str,
}

impl Chrome {
    /// The frame of a page for visitors (sign in, errors).
    pub fn public() -> Self {
        Self {
            css: assets::url("app/app.css"),
            htmx: assets::url("vendor/htmx-2.0.11.min.js"),
            app_js: assets::url("app/app.js"),
            live_js: assets::url("app/live.js"),
            user: None,
            nav: "",
        }
    }

    /// The frame of a signed-in page: the user's name, their CSRF token, the unread count.
    pub async fn load(service: &Service, user: WebUser, nav: &'static str) -> WebResult<Self> {
        let auth = user.0.clone();
        let since = service.feed_start().await?;
        let profile = service.profile(&auth).await?;
        let unread = service
            .notifications(&auth, true, None, Some(1))
            .await?
            .unread_count;
        Ok(Self {
            user: Some(Signed {
                id: auth.user_id.as_uuid().to_string(),
                name: profile.name.as_str().to_string(),
                csrf: service.csrf_token(&auth),
                unread,
                since,
                is_admin: auth.role == crate::domain::Role::Admin,
            }),
            nav,
            ..Self::public()
        })
    }

    /// The URL of an embedded asset (`app/board.css`), for a page's own scripts and styles.
    pub fn asset(&self, name: &str) -> &'static str {
        assets::url(name)
    }

    /// The CSRF token of the signed-in user (empty on public pages).
    pub fn csrf(&self) -> &str {
        self.user.as_ref().map_or("", |u| u.csrf.as_str())
    }
}
