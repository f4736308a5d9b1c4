//! Personal access tokens in the profile area (`/profile/tokens`): the caller's tokens (name,
//! scopes, teams, created, expires, last used) with Revoke (confirmed), and the form to make
//! one (name, scope checkboxes, expiry date, optional teams). A new token's secret is shown
//! on the answer to the form, once, with a copy button; it is never shown again. A refused
//! form is shown again with its messages (422) and nothing written.

use askama::Template;
use chrono::{Days, NaiveDate, Utc};
use poem::web::{Data, Form, Path, Query};
use poem::{Response, Route, get, handler, post};
use serde::Deserialize;

use super::error::WebResult;
use super::pages_auth::FormErrors;
use super::pages_notifications::Stamp;
use super::pages_teams::{parse_id, unprocessable};
use super::session::WebUser;
use super::{Chrome, render, see_other};
use crate::domain::scope::{AccessToken, Area};
use crate::domain::{AccessTokenId, FieldError, Role, TeamId};
use crate::service::{Error, NewAccessToken, Service};

pub fn routes(route: Route) -> Route {
    route
        .at("/profile/tokens", get(tokens_page).post(create_token))
        .at("/profile/tokens/:id/revoke", post(revoke_token))
}

/// Days a new token lasts unless the form says otherwise.
const DEFAULT_DAYS: u64 = 90;

pub struct TokenItem {
    pub id: String,
    pub name: String,
    pub scopes: String,
    pub teams: String,
    pub created: Stamp,
    pub expires: Stamp,
    pub expired: bool,
    pub last_used: Option<Stamp>,
}

/// One area's row of scope checkboxes.
pub struct AreaRow {
    pub name: &'static str,
    pub read: bool,
    pub write: bool,
}

pub struct TeamChoice {
    pub id: String,
    pub name: String,
    pub checked: bool,
}

/// What the form held (to show it again after a refusal).
#[derive(Default)]
struct Typed {
    name: String,
    scopes: Vec<String>,
    expires_on: String,
    teams: Vec<String>,
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    chrome: Chrome,
    tokens: Vec<TokenItem>,
    issued: Option<String>,
    notice: Option<&'static str>,
    errors: FormErrors,
    name: String,
    areas: Vec<AreaRow>,
    admin_offered: bool,
    admin_checked: bool,
    expires_on: String,
    min_date: String,
    max_date: String,
    teams: Vec<TeamChoice>,
}

async fn tokens_view(service: &Service, user: WebUser, typed: Typed) -> WebResult<TokensPage> {
    let auth = &user.0;
    let tokens = service.access_tokens(auth).await?;
    let my_teams = service.teams(auth, None, Some(200)).await?.items;
    let team_name = |id: &TeamId| {
        my_teams.iter().find(|t| t.team.id == *id).map_or_else(
            || "a former team".to_string(),
            |t| t.team.name.as_str().to_string(),
        )
    };
    let now = Utc::now();
    let items = tokens
        .iter()
        .map(|t: &AccessToken| TokenItem {
            id: t.id.to_string(),
            name: t.name.as_str().to_string(),
            scopes: t.scopes.names().join(", "),
            teams: t.team_ids.as_ref().map_or_else(
                || "All your teams".to_string(),
                |ids| ids.iter().map(team_name).collect::<Vec<_>>().join(", "),
            ),
            created: Stamp::new(t.created_at),
            expires: Stamp::new(t.expires_at),
            expired: t.is_expired(now),
            last_used: t.last_used_at.map(Stamp::new),
        })
        .collect();
    let today = now.date_naive();
    let max_days = (service.token_max_lifetime().as_secs() / 86_400).max(1);
    let date = |days: u64| {
        today
            .checked_add_days(Days::new(days))
            .unwrap_or(today)
            .to_string()
    };
    let expires_on = if typed.expires_on.is_empty() {
        date(DEFAULT_DAYS.min(max_days))
    } else {
        typed.expires_on.clone()
    };
    Ok(TokensPage {
        tokens: items,
        issued: None,
        notice: None,
        errors: FormErrors::default(),
        name: typed.name.clone(),
        areas: Area::ALL
            .into_iter()
            .map(|a| AreaRow {
                name: a.name(),
                read: typed.scopes.contains(&format!("{}:read", a.name())),
                write: typed.scopes.contains(&format!("{}:write", a.name())),
            })
            .collect(),
        admin_offered: auth.role == Role::Admin,
        admin_checked: typed.scopes.iter().any(|s| s == "admin"),
        expires_on,
        min_date: date(1),
        max_date: date(max_days),
        teams: my_teams
            .iter()
            .map(|t| TeamChoice {
                id: t.team.id.to_string(),
                name: t.team.name.as_str().to_string(),
                checked: typed.teams.contains(&t.team.id.to_string()),
            })
            .collect(),
        chrome: Chrome::load(service, user, "profile").await?,
    })
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    revoked: Option<String>,
}

/// `GET /profile/tokens[?revoked=1]`.
#[handler]
pub async fn tokens_page(
    user: WebUser,
    service: Data<&Service>,
    Query(query): Query<NoticeQuery>,
) -> WebResult<Response> {
    let mut page = tokens_view(&service, user, Typed::default()).await?;
    if query.revoked.is_some() {
        page.notice = Some("The token was revoked: it no longer works.");
    }
    render(&page)
}

/// Reads the form: repeated `scopes` and `team_ids` fields.
fn typed(fields: Vec<(String, String)>) -> Typed {
    let mut typed = Typed::default();
    for (key, value) in fields {
        match key.as_str() {
            "name" => typed.name = value,
            "scopes" => typed.scopes.push(value),
            "expires_on" => typed.expires_on = value,
            "team_ids" => typed.teams.push(value),
            _ => {}
        }
    }
    typed
}

/// `POST /profile/tokens`: makes a token and shows its secret once.
#[handler]
pub async fn create_token(
    user: WebUser,
    service: Data<&Service>,
    Form(fields): Form<Vec<(String, String)>>,
) -> WebResult<Response> {
    let typed = typed(fields);
    let day = NaiveDate::parse_from_str(typed.expires_on.trim(), "%Y-%m-%d").ok();
    let expires_at = day
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc());
    let teams: Option<Vec<TeamId>> = (!typed.teams.is_empty())
        .then(|| typed.teams.iter().filter_map(|t| t.parse().ok()).collect());
    let input = NewAccessToken {
        name: typed.name.clone(),
        scopes: typed.scopes.clone(),
        expires_at,
        team_ids: teams,
    };
    match service.create_access_token(&user.0, input).await {
        Ok(issued) => {
            let mut page = tokens_view(&service, user, Typed::default()).await?;
            page.issued = Some(issued.token);
            render(&page)
        }
        Err(Error::Validation(mut fields)) => {
            if day.is_none() && !typed.expires_on.trim().is_empty() {
                for f in fields.iter_mut().filter(|f| f.field == "expires_at") {
                    *f = FieldError::new("expires_at", "must be a date (YYYY-MM-DD)");
                }
            }
            let mut page = tokens_view(&service, user, typed).await?;
            page.errors = FormErrors { fields, form: None };
            unprocessable(&page)
        }
        Err(other) => Err(other.into()),
    }
}

/// `POST /profile/tokens/{id}/revoke`.
#[handler]
pub async fn revoke_token(
    user: WebUser,
    service: Data<&Service>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let id: AccessTokenId = parse_id(&id)?;
    service.revoke_access_token(&user.0, id).await?;
    Ok(see_other("/profile/tokens?revoked=1"))
}
