//! The profile (`/profile`): name, email (needs the current password), password (current,
//! new, confirmed; signs out the other sessions), the calendar feed (create or regenerate, the
//! URL shown once; turn off), and the sessions list with Revoke (revoking this browser's own
//! session signs it out). A refused form is shown again with its messages
//! (422) and nothing written.

use askama::Template;
use poem::web::{Data, Form, Path, Query};
use poem::{IntoResponse, Request, Response, Route, get, handler, post};
use serde::Deserialize;

use super::error::WebResult;
use super::pages_auth::FormErrors;
use super::pages_notifications::Stamp;
use super::pages_teams::{parse_id, unprocessable};
use super::session::{self, WebUser};
use super::{Chrome, Settings, render, see_other};
use crate::api::calendar;
use crate::domain::session::Session;
use crate::domain::{FieldError, SessionId};
use crate::service::{Error, ProfileUpdate, Service};

pub fn routes(route: Route) -> Route {
    route
        .at("/profile", get(profile_page))
        .at("/profile/name", post(change_name))
        .at("/profile/email", post(change_email))
        .at("/profile/password", post(change_password))
        .at("/profile/sessions/:id/revoke", post(revoke_session))
        .at("/profile/calendar", post(create_calendar_feed))
        .at("/profile/calendar/revoke", post(revoke_calendar_feed))
}

/// A calendar feed URL just made, shown this once: as to-dos, and as events.
pub struct IssuedCalendar {
    pub url: String,
    pub event_url: String,
}

pub struct SessionItem {
    pub id: String,
    pub device: String,
    pub user_agent: String,
    pub ip: String,
    pub created: Stamp,
    pub last_seen: Stamp,
    pub current: bool,
}

/// "Firefox on Linux" from a user agent, or the API client's own name.
fn device(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent.filter(|ua| !ua.is_empty()) else {
        return "Unknown device".into();
    };
    let browser = [
        ("Edg/", "Edge"),
        ("Firefox/", "Firefox"),
        ("Chromium/", "Chromium"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
    ]
    .into_iter()
    .find(|(mark, _)| ua.contains(mark))
    .map(|(_, name)| name);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Windows", "Windows"),
        ("Mac OS", "macOS"),
        ("Linux", "Linux"),
    ]
    .into_iter()
    .find(|(mark, _)| ua.contains(mark))
    .map(|(_, name)| name);
    match (browser, system) {
        (Some(b), Some(s)) => format!("{b} on {s}"),
        (Some(b), None) => b.to_string(),
        _ => ua.split_whitespace().next().unwrap_or(ua).to_string(),
    }
}

impl SessionItem {
    fn new(s: &Session, current: SessionId) -> Self {
        Self {
            id: s.id.to_string(),
            device: device(s.user_agent.as_deref()),
            user_agent: s.user_agent.clone().unwrap_or_default(),
            ip: s.ip.clone().unwrap_or_default(),
            created: Stamp::new(s.created_at),
            last_seen: Stamp::new(s.last_seen_at),
            current: s.id == current,
        }
    }
}

#[derive(Template)]
#[template(path = "profile.html")]
struct ProfilePage {
    chrome: Chrome,
    name: String,
    email: String,
    saved: Option<&'static str>,
    name_errors: FormErrors,
    email_errors: FormErrors,
    password_errors: FormErrors,
    sessions: Vec<SessionItem>,
    more_sessions: bool,
    /// When the current calendar feed URL was made; none without a feed.
    calendar_since: Option<Stamp>,
    calendar_issued: Option<IssuedCalendar>,
    /// Whether the address is confirmed, and whether the server can mail a link (issue 17).
    verified: bool,
    mail_configured: bool,
}

async fn profile_view(service: &Service, user: WebUser) -> WebResult<ProfilePage> {
    let auth = &user.0;
    let me = service.profile(auth).await?;
    let sessions = service.sessions(auth, None, Some(200)).await?;
    let calendar = service.calendar_feed(auth).await?;
    Ok(ProfilePage {
        chrome: Chrome::load(service, user.clone(), "profile").await?,
        name: me.name.as_str().to_string(),
        email: me.email.as_str().to_string(),
        saved: None,
        name_errors: FormErrors::default(),
        email_errors: FormErrors::default(),
        password_errors: FormErrors::default(),
        sessions: sessions
            .items
            .iter()
            .map(|s| SessionItem::new(s, auth.session_id))
            .collect(),
        more_sessions: sessions.next_cursor.is_some(),
        calendar_since: calendar.map(|f| Stamp::new(f.created_at)),
        calendar_issued: None,
        verified: me.email_verified_at.is_some(),
        mail_configured: service.mail_configured(),
    })
}

#[derive(Deserialize)]
pub struct SavedQuery {
    saved: Option<String>,
}

/// `GET /profile[?saved=name|email|password]`.
#[handler]
pub async fn profile_page(
    user: WebUser,
    service: Data<&Service>,
    Query(query): Query<SavedQuery>,
) -> WebResult<Response> {
    let mut page = profile_view(&service, user).await?;
    page.saved = match query.saved.as_deref() {
        Some("name") => Some("Your name was changed."),
        Some("email") => Some("Your email was changed."),
        Some("password") => Some("Your password was changed. Your other sessions were signed out."),
        Some("calendar") => Some("Your calendar feed was turned off: its URL no longer works."),
        Some("verify") => Some("A new confirmation link is on its way."),
        _ => None,
    };
    render(&page)
}

/// Which form of the page a change came from.
#[derive(Clone, Copy)]
enum Part {
    Name,
    Email,
    Password,
}

/// Applies `update`; a refusal shows the page again with the form's messages (422).
async fn apply(
    service: &Service,
    user: WebUser,
    part: Part,
    update: Result<ProfileUpdate, Vec<FieldError>>,
    typed: (Option<String>, Option<String>),
) -> WebResult<Response> {
    let result = match update {
        Ok(update) => service.update_profile(&user.0, update).await.map(|_| ()),
        Err(fields) => Err(Error::Validation(fields)),
    };
    let errors = match result {
        Ok(()) => {
            let key = match part {
                Part::Name => "name",
                Part::Email => "email",
                Part::Password => "password",
            };
            return Ok(see_other(&format!("/profile?saved={key}")));
        }
        Err(Error::Validation(fields)) => FormErrors { fields, form: None },
        Err(Error::EmailTaken) => FormErrors {
            fields: vec![FieldError::new(
                "email",
                "is already used by another account",
            )],
            form: None,
        },
        Err(other) => return Err(other.into()),
    };
    let mut page = profile_view(service, user).await?;
    let (name, email) = typed;
    match part {
        Part::Name => page.name_errors = errors,
        Part::Email => page.email_errors = errors,
        Part::Password => page.password_errors = errors,
    }
    if let Some(name) = name {
        page.name = name;
    }
    if let Some(email) = email {
        page.email = email;
    }
    unprocessable(&page)
}

/// The current password as typed: none when left empty (the service then says it is needed).
fn typed_password(raw: String) -> Option<String> {
    (!raw.is_empty()).then_some(raw)
}

#[derive(Deserialize)]
pub struct NameForm {
    #[serde(default)]
    name: String,
}

/// `POST /profile/name`.
#[handler]
pub async fn change_name(
    user: WebUser,
    service: Data<&Service>,
    Form(form): Form<NameForm>,
) -> WebResult<Response> {
    let update = ProfileUpdate {
        name: Some(form.name.clone()),
        ..ProfileUpdate::default()
    };
    apply(
        &service,
        user,
        Part::Name,
        Ok(update),
        (Some(form.name), None),
    )
    .await
}

#[derive(Deserialize)]
pub struct EmailForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    current_password: String,
}

/// `POST /profile/email`.
#[handler]
pub async fn change_email(
    user: WebUser,
    service: Data<&Service>,
    Form(form): Form<EmailForm>,
) -> WebResult<Response> {
    let update = ProfileUpdate {
        email: Some(form.email.clone()),
        current_password: typed_password(form.current_password),
        ..ProfileUpdate::default()
    };
    let typed = (None, Some(form.email.trim().to_string()));
    apply(&service, user, Part::Email, Ok(update), typed).await
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /profile/password`: the new password twice, and the current one.
#[handler]
pub async fn change_password(
    user: WebUser,
    service: Data<&Service>,
    Form(form): Form<PasswordForm>,
) -> WebResult<Response> {
    let update = if form.password == form.confirm {
        Ok(ProfileUpdate {
            password: Some(form.password),
            current_password: typed_password(form.current_password),
            ..ProfileUpdate::default()
        })
    } else {
        Err(vec![FieldError::new(
            "confirm",
            "does not match the new password",
        )])
    };
    apply(&service, user, Part::Password, update, (None, None)).await
}

/// `POST /profile/calendar`: makes a new calendar feed URL (the old one stops working). The
/// answer is the profile page showing it this once; not a redirect, so the secret URL is
/// never in a location or a reload.
#[handler]
pub async fn create_calendar_feed(
    req: &Request,
    user: WebUser,
    service: Data<&Service>,
    settings: Data<&Settings>,
) -> WebResult<Response> {
    let issued = service.issue_calendar_feed(&user.0).await?;
    let origin = calendar::feed_origin(&service, req, &settings.proxies);
    let (url, event_url) = calendar::feed_urls(&origin, &issued.path());
    let mut page = profile_view(&service, user).await?;
    page.calendar_issued = Some(IssuedCalendar { url, event_url });
    Ok(render(&page)?
        .with_header("cache-control", "no-store")
        .into_response())
}

/// `POST /profile/calendar/revoke`: turns the calendar feed off (already off: nothing to do).
#[handler]
pub async fn revoke_calendar_feed(user: WebUser, service: Data<&Service>) -> WebResult<Response> {
    match service.revoke_calendar_feed(&user.0).await {
        Ok(()) | Err(Error::NotFound(_)) => Ok(see_other("/profile?saved=calendar#calendar")),
        Err(other) => Err(other.into()),
    }
}

/// `POST /profile/sessions/{id}/revoke`: signs that session out; this browser's own session
/// signs this browser out.
#[handler]
pub async fn revoke_session(
    req: &Request,
    user: WebUser,
    service: Data<&Service>,
    settings: Data<&Settings>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let id: SessionId = parse_id(&id)?;
    service.revoke_session(&user.0, id).await?;
    if id != user.0.session_id {
        return Ok(see_other("/profile#sessions"));
    }
    let cookie = session::clear_cookie(session::over_https(req, &settings.proxies));
    Ok(see_other("/signin")
        .with_header("set-cookie", cookie)
        .into_response())
}
