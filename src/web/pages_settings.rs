//! Notification settings (`/settings/notifications`): time zone, due-date reminders, the
//! daily digest, how each kind of notification reaches me, and an ntfy topic with a "send a
//! test push" button. The form calls the same service methods as `PUT
//! /api/users/me/preferences`; a refused form is shown again with its messages (422) and
//! nothing saved.

use askama::Template;
use poem::web::{Data, Form, Query};
use poem::{Response, Route, get, handler, post};
use serde::Deserialize;

use super::error::WebResult;
use super::pages_auth::FormErrors;
use super::pages_teams::unprocessable;
use super::session::WebUser;
use super::{Chrome, render, see_other};
use crate::domain::reminder::{Delivery, NOTIFICATION_KINDS, Preferences, kind_label, kind_name};
use crate::service::{Error, PreferencesUpdate, Service};

const PATH: &str = "/settings/notifications";

pub fn routes(route: Route) -> Route {
    route
        .at(PATH, get(settings_page).post(save_settings))
        .at("/settings/notifications/test-push", post(test_push))
}

/// One notification kind's row of the form.
pub struct KindRow {
    pub name: &'static str,
    pub label: &'static str,
    pub delivery: &'static str,
}

#[derive(Template)]
#[template(path = "settings_notifications.html")]
struct SettingsPage {
    chrome: Chrome,
    saved: Option<&'static str>,
    errors: FormErrors,
    zones: Vec<&'static str>,
    time_zone: String,
    /// "" for off, else the hour.
    morning_hour: String,
    at_due_time: bool,
    lead_minutes: String,
    email_reminders: bool,
    digest_hour: String,
    kinds: Vec<KindRow>,
    ntfy_url: String,
}

impl SettingsPage {
    fn hours(&self) -> Vec<(String, String)> {
        (0..24)
            .map(|h| (h.to_string(), format!("{h:02}:00")))
            .collect()
    }
}

async fn view(service: &Service, user: WebUser, prefs: &Preferences) -> WebResult<SettingsPage> {
    let hour = |h: Option<u8>| h.map(|h| h.to_string()).unwrap_or_default();
    Ok(SettingsPage {
        chrome: Chrome::load(service, user, "profile").await?,
        saved: None,
        errors: FormErrors::default(),
        zones: chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()).collect(),
        time_zone: prefs.time_zone.name().to_string(),
        morning_hour: hour(prefs.morning_hour),
        at_due_time: prefs.at_due_time,
        lead_minutes: prefs
            .lead_minutes
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        email_reminders: prefs.email_reminders,
        digest_hour: hour(prefs.digest_hour),
        kinds: NOTIFICATION_KINDS
            .into_iter()
            .map(|k| KindRow {
                name: kind_name(k),
                label: kind_label(k),
                delivery: prefs.delivery(k).as_str(),
            })
            .collect(),
        ntfy_url: prefs.ntfy_url.clone().unwrap_or_default(),
    })
}

#[derive(Deserialize)]
pub struct SavedQuery {
    saved: Option<String>,
}

/// `GET /settings/notifications[?saved=settings|push]`.
#[handler]
pub async fn settings_page(
    user: WebUser,
    service: Data<&Service>,
    Query(query): Query<SavedQuery>,
) -> WebResult<Response> {
    let prefs = service.preferences(&user.0).await?;
    let mut page = view(&service, user, &prefs).await?;
    page.saved = match query.saved.as_deref() {
        Some("settings") => Some("Your notification settings were saved."),
        Some("push") => Some("A test push is on its way to your ntfy topic."),
        _ => None,
    };
    render(&page)
}

/// What the form sent, field by field (checkboxes are present only when ticked).
fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim())
}

/// An hour select: "" is off; anything not a number is out of range (the service says so).
fn hour(raw: Option<&str>) -> Option<Option<i64>> {
    Some(
        raw.filter(|r| !r.is_empty())
            .map(|r| r.parse().unwrap_or(-1)),
    )
}

fn update_of(form: &[(String, String)]) -> PreferencesUpdate {
    let leads = field(form, "lead_minutes")
        .unwrap_or_default()
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or(0))
        .collect();
    let kinds = NOTIFICATION_KINDS
        .into_iter()
        .filter_map(|k| {
            let raw = field(form, &format!("kind.{}", kind_name(k)))?;
            Delivery::parse(raw).ok().map(|d| (k, d))
        })
        .collect();
    PreferencesUpdate {
        time_zone: field(form, "time_zone").map(str::to_string),
        morning_hour: hour(field(form, "morning_hour")),
        at_due_time: Some(field(form, "at_due_time").is_some()),
        lead_minutes: Some(leads),
        email_reminders: Some(field(form, "email_reminders").is_some()),
        digest_hour: hour(field(form, "digest_hour")),
        digest_minute: None,
        kinds,
        ntfy_url: Some(
            field(form, "ntfy_url")
                .filter(|u| !u.is_empty())
                .map(str::to_string),
        ),
    }
}

/// `POST /settings/notifications`.
#[handler]
pub async fn save_settings(
    user: WebUser,
    service: Data<&Service>,
    Form(form): Form<Vec<(String, String)>>,
) -> WebResult<Response> {
    let fields = match service.update_preferences(&user.0, update_of(&form)).await {
        Ok(_) => return Ok(see_other(&format!("{PATH}?saved=settings"))),
        Err(Error::Validation(fields)) => fields,
        Err(other) => return Err(other.into()),
    };
    let prefs = service.preferences(&user.0).await?;
    let mut page = view(&service, user, &prefs).await?;
    // Show what was typed, with the messages.
    let typed = |name: &str| field(&form, name).unwrap_or_default().to_string();
    page.time_zone = typed("time_zone");
    page.morning_hour = typed("morning_hour");
    page.digest_hour = typed("digest_hour");
    page.lead_minutes = typed("lead_minutes");
    page.ntfy_url = typed("ntfy_url");
    page.errors = FormErrors { fields, form: None };
    unprocessable(&page)
}

/// `POST /settings/notifications/test-push`.
#[handler]
pub async fn test_push(user: WebUser, service: Data<&Service>) -> WebResult<Response> {
    let fields = match service.send_test_push(&user.0).await {
        Ok(()) => return Ok(see_other(&format!("{PATH}?saved=push"))),
        Err(Error::Validation(fields)) => fields,
        Err(other) => return Err(other.into()),
    };
    let prefs = service.preferences(&user.0).await?;
    let mut page = view(&service, user, &prefs).await?;
    page.errors = FormErrors { fields, form: None };
    unprocessable(&page)
}
