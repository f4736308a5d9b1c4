//! A team's webhooks, for its owners and admins: the list with a create form
//! (`/teams/{id}/webhooks`) and one hook (`/teams/{id}/webhooks/{hook}`) with its settings,
//! secret rotation, ping and the delivery log with redelivery. Every action is the service's
//! (the same calls as the JSON API), so a member who is not an owner or admin gets the 403
//! page and a stranger the 404 page. A new or rotated secret is shown once, in the answer to
//! the POST that made it (not a redirect, so it is never in a URL or a reload).

use askama::Template;
use poem::web::{Data, Form, Path};
use poem::{IntoResponse, Response, Route, get, handler, post};
use serde::Deserialize;

use super::error::WebResult;
use super::pages_auth::FormErrors;
use super::pages_notifications::Stamp;
use super::pages_teams::{parse_id, unprocessable};
use super::session::WebUser;
use super::{Chrome, render, see_other};
use crate::domain::webhooks::{Delivery, DeliveryKind};
use crate::domain::{TeamId, WebhookId};
use crate::service::{Error, NewWebhook, Service, WebhookPatch, WebhookView};

pub fn routes(route: Route) -> Route {
    route
        .at("/teams/:id/webhooks", get(hooks_page).post(create_hook))
        .at(
            "/teams/:id/webhooks/:hook",
            get(hook_page).post(update_hook),
        )
        .at("/teams/:id/webhooks/:hook/delete", post(delete_hook))
        .at("/teams/:id/webhooks/:hook/ping", post(ping_hook))
        .at("/teams/:id/webhooks/:hook/secret", post(rotate_secret))
        .at(
            "/teams/:id/webhooks/:hook/deliveries/:delivery/redeliver",
            post(redeliver),
        )
}

/// A hook as a page lists it.
pub struct HookItem {
    pub id: String,
    pub url: String,
    pub events: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub failures: u32,
    pub behind: u64,
}

impl From<&WebhookView> for HookItem {
    fn from(view: &WebhookView) -> Self {
        Self {
            id: view.hook.id.to_string(),
            url: view.hook.url.clone(),
            events: events_text(&view.hook.events),
            enabled: view.hook.enabled,
            disabled_reason: view.hook.disabled_reason.clone(),
            failures: view.state.failures,
            behind: view.behind,
        }
    }
}

/// One row of the delivery log.
pub struct DeliveryItem {
    pub id: u64,
    pub kind: &'static str,
    pub event_type: String,
    pub event_id: String,
    pub attempt: u32,
    pub when: Stamp,
    pub outcome: String,
    pub ok: bool,
    pub duration_ms: u64,
    pub request_body: String,
    pub response_body: String,
}

impl From<Delivery> for DeliveryItem {
    fn from(d: Delivery) -> Self {
        let outcome = match (d.status, &d.error) {
            (Some(status), _) if d.ok => status.to_string(),
            (_, Some(error)) => error.clone(),
            (Some(status), None) => status.to_string(),
            (None, None) => "no answer".into(),
        };
        Self {
            id: d.id,
            kind: match d.kind {
                DeliveryKind::Event => "event",
                DeliveryKind::Redelivery => "redelivery",
                DeliveryKind::Ping => "ping",
            },
            event_type: d.event_type,
            event_id: d.event_id,
            attempt: d.attempt,
            when: Stamp::new(d.at),
            outcome,
            ok: d.ok,
            duration_ms: d.duration_ms,
            request_body: d.request_body,
            response_body: d.response_body,
        }
    }
}

/// `*`, or the event types separated by commas.
fn events_text(events: &[String]) -> String {
    if events.is_empty() {
        "*".into()
    } else {
        events.join(", ")
    }
}

/// Event types as a form sends them: comma- or space-separated.
fn parse_events_field(raw: &str) -> Vec<String> {
    raw.split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(String::from)
        .collect()
}

#[derive(Template)]
#[template(path = "hooks.html")]
pub struct HooksPage {
    pub chrome: Chrome,
    pub team_id: String,
    pub team_name: String,
    pub hooks: Vec<HookItem>,
    pub errors: FormErrors,
    pub form_url: String,
    pub form_events: String,
    /// A hook just made: its id and secret, shown this once.
    pub created: Option<(String, String)>,
}

#[derive(Template)]
#[template(path = "hook.html")]
pub struct HookPage {
    pub chrome: Chrome,
    pub team_id: String,
    pub team_name: String,
    pub hook: HookItem,
    pub deliveries: Vec<DeliveryItem>,
    pub errors: FormErrors,
    pub form_url: String,
    pub form_events: String,
    /// A secret just rotated, shown this once.
    pub secret: Option<String>,
}

async fn hooks_view(service: &Service, user: WebUser, team: TeamId) -> WebResult<HooksPage> {
    let hooks = service.webhooks(&user.0, team).await?;
    let team_view = service.team(&user.0, team).await?;
    Ok(HooksPage {
        chrome: Chrome::load(service, user, "teams").await?,
        team_id: team.to_string(),
        team_name: team_view.team.name.as_str().to_string(),
        hooks: hooks.iter().map(HookItem::from).collect(),
        errors: FormErrors {
            fields: vec![],
            form: None,
        },
        form_url: String::new(),
        form_events: "*".into(),
        created: None,
    })
}

async fn hook_view(
    service: &Service,
    user: WebUser,
    team: TeamId,
    id: WebhookId,
) -> WebResult<HookPage> {
    let view = service.webhook(&user.0, team, id).await?;
    let deliveries = service.webhook_deliveries(&user.0, team, id).await?;
    let team_view = service.team(&user.0, team).await?;
    let hook = HookItem::from(&view);
    Ok(HookPage {
        chrome: Chrome::load(service, user, "teams").await?,
        team_id: team.to_string(),
        team_name: team_view.team.name.as_str().to_string(),
        form_url: hook.url.clone(),
        form_events: hook.events.clone(),
        hook,
        deliveries: deliveries.into_iter().map(DeliveryItem::from).collect(),
        errors: FormErrors {
            fields: vec![],
            form: None,
        },
        secret: None,
    })
}

/// A validation error as form messages; anything else is the error page.
fn form_errors(e: Error) -> WebResult<FormErrors> {
    match e {
        Error::Validation(fields) => Ok(FormErrors { fields, form: None }),
        other => Err(other.into()),
    }
}

/// `GET /teams/{id}/webhooks`.
#[handler]
pub async fn hooks_page(
    user: WebUser,
    service: Data<&Service>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    render(&hooks_view(&service, user, parse_id(&id)?).await?)
}

#[derive(Deserialize)]
pub struct HookForm {
    #[serde(default)]
    url: String,
    #[serde(default)]
    events: String,
    /// A checkbox: present when ticked.
    enabled: Option<String>,
}

/// `POST /teams/{id}/webhooks`: the answer shows the new hook's secret once.
#[handler]
pub async fn create_hook(
    user: WebUser,
    service: Data<&Service>,
    Path(id): Path<String>,
    Form(form): Form<HookForm>,
) -> WebResult<Response> {
    let team: TeamId = parse_id(&id)?;
    let input = NewWebhook {
        url: form.url.clone(),
        events: parse_events_field(&form.events),
        project_id: None,
        enabled: form.enabled.is_some(),
    };
    match service.create_webhook(&user.0, team, input).await {
        Ok(view) => {
            let mut page = hooks_view(&service, user, team).await?;
            page.created = Some((view.hook.id.to_string(), view.hook.secret));
            Ok(render(&page)?
                .with_header("cache-control", "no-store")
                .into_response())
        }
        Err(e) => {
            let errors = form_errors(e)?;
            let mut page = hooks_view(&service, user, team).await?;
            page.errors = errors;
            page.form_url = form.url;
            page.form_events = form.events;
            unprocessable(&page)
        }
    }
}

/// `GET /teams/{id}/webhooks/{hook}`.
#[handler]
pub async fn hook_page(
    user: WebUser,
    service: Data<&Service>,
    Path((id, hook)): Path<(String, String)>,
) -> WebResult<Response> {
    render(&hook_view(&service, user, parse_id(&id)?, parse_id(&hook)?).await?)
}

/// `POST /teams/{id}/webhooks/{hook}`: URL, event types, enabled.
#[handler]
pub async fn update_hook(
    user: WebUser,
    service: Data<&Service>,
    Path((id, hook)): Path<(String, String)>,
    Form(form): Form<HookForm>,
) -> WebResult<Response> {
    let (team, hook): (TeamId, WebhookId) = (parse_id(&id)?, parse_id(&hook)?);
    let patch = WebhookPatch {
        url: Some(form.url.clone()),
        events: Some(parse_events_field(&form.events)),
        project_id: None,
        enabled: Some(form.enabled.is_some()),
    };
    match service.update_webhook(&user.0, team, hook, patch).await {
        Ok(_) => Ok(see_other(&format!("/teams/{team}/webhooks/{hook}"))),
        Err(e) => {
            let errors = form_errors(e)?;
            let mut page = hook_view(&service, user, team, hook).await?;
            page.errors = errors;
            page.form_url = form.url;
            page.form_events = form.events;
            unprocessable(&page)
        }
    }
}

/// `POST /teams/{id}/webhooks/{hook}/delete`.
#[handler]
pub async fn delete_hook(
    user: WebUser,
    service: Data<&Service>,
    Path((id, hook)): Path<(String, String)>,
) -> WebResult<Response> {
    let team: TeamId = parse_id(&id)?;
    service
        .delete_webhook(&user.0, team, parse_id(&hook)?)
        .await?;
    Ok(see_other(&format!("/teams/{team}/webhooks")))
}

/// `POST /teams/{id}/webhooks/{hook}/ping`: sends a ping; the log shows how it went.
#[handler]
pub async fn ping_hook(
    user: WebUser,
    service: Data<&Service>,
    Path((id, hook)): Path<(String, String)>,
) -> WebResult<Response> {
    let (team, hook): (TeamId, WebhookId) = (parse_id(&id)?, parse_id(&hook)?);
    service.ping_webhook(&user.0, team, hook).await?;
    Ok(see_other(&format!(
        "/teams/{team}/webhooks/{hook}#deliveries"
    )))
}

/// `POST /teams/{id}/webhooks/{hook}/secret`: a new secret, shown once.
#[handler]
pub async fn rotate_secret(
    user: WebUser,
    service: Data<&Service>,
    Path((id, hook)): Path<(String, String)>,
) -> WebResult<Response> {
    let (team, hook): (TeamId, WebhookId) = (parse_id(&id)?, parse_id(&hook)?);
    let view = service.rotate_webhook_secret(&user.0, team, hook).await?;
    let mut page = hook_view(&service, user, team, hook).await?;
    page.secret = Some(view.hook.secret);
    Ok(render(&page)?
        .with_header("cache-control", "no-store")
        .into_response())
}

/// `POST /teams/{id}/webhooks/{hook}/deliveries/{delivery}/redeliver`.
#[handler]
pub async fn redeliver(
    user: WebUser,
    service: Data<&Service>,
    Path((id, hook, delivery)): Path<(String, String, String)>,
) -> WebResult<Response> {
    let (team, hook): (TeamId, WebhookId) = (parse_id(&id)?, parse_id(&hook)?);
    service
        .redeliver(&user.0, team, hook, parse_id(&delivery)?)
        .await?;
    Ok(see_other(&format!(
        "/teams/{team}/webhooks/{hook}#deliveries"
    )))
}
