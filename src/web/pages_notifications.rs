//! The notification inbox (`/notifications`): newest first, unread ones highlighted, each
//! linking to what it is about; "Mark read" per item and "Mark all read" (htmx swaps the item
//! or the list and the header's unread count; plain forms without script). New notifications
//! appear at the top while the first page is open (`assets/app/inbox.js` refetches the list
//! when the live connection reports one).

use std::collections::HashMap;

use askama::Template;
use chrono::{DateTime, Datelike, Utc};
use poem::web::{Data, Form, Path, Query};
use poem::{Request, Response, Route, get, handler, post};
use serde::Deserialize;

use super::error::{WebError, WebResult, urlencode};
use super::session::WebUser;
use super::{Chrome, render, see_other};
use crate::domain::notification::{Notification, NotificationKind};
use crate::service::{AuthUser, Service};

/// Notifications per page.
const PAGE_SIZE: u32 = 50;

pub fn routes(route: Route) -> Route {
    route
        .at("/notifications", get(inbox_page))
        .at("/notifications/read-all", post(read_all))
        .at("/notifications/:seq/read", post(read_one))
}

/// A moment as pages show it: `datetime` for `<time>` and a short label in UTC.
pub struct Stamp {
    pub iso: String,
    pub label: String,
}

impl Stamp {
    pub fn new(at: DateTime<Utc>) -> Self {
        let label = if at.year() == Utc::now().year() {
            at.format("%-d %b, %H:%M UTC")
        } else {
            at.format("%-d %b %Y, %H:%M UTC")
        };
        Self {
            iso: at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            label: label.to_string(),
        }
    }
}

/// One line of the inbox: "<actor> <verb> <subject><suffix>", linking to `href`.
pub struct NotificationItem {
    pub seq: u64,
    pub unread: bool,
    pub actor: String,
    pub verb: &'static str,
    pub subject: String,
    pub suffix: String,
    pub href: Option<String>,
    pub when: Stamp,
}

impl NotificationItem {
    fn new(n: Notification, names: &HashMap<String, String>) -> Self {
        use NotificationKind as K;
        let task = n.task_id.map(|t| format!("/tasks/{t}"));
        let team = n.team_id.map(|t| format!("/teams/{t}"));
        let (verb, href) = match n.kind {
            K::TaskAssigned => ("assigned you to", task),
            K::TaskUnassigned => ("took you off", task),
            K::TaskUpdated => ("changed", task),
            K::TaskDeleted => ("deleted", None),
            K::CommentAdded => ("commented on", task),
            K::AttachmentAdded => ("attached", task),
            K::TeamInvited => ("invited you to", Some("/teams".to_string())),
            K::InvitationAccepted => ("accepted your invitation to", team),
            K::MemberRemoved => ("removed you from", None),
            K::WebhookDisabled => (
                "disabled a webhook of",
                team.map(|t| format!("{t}/webhooks")),
            ),
        };
        // The notice carries no accept link (holding the address is not enough to join).
        let suffix = if n.kind == K::TeamInvited {
            ": ask them for the invitation link to join".to_string()
        } else if n.kind == K::TaskUpdated && !n.fields.is_empty() {
            format!(
                " ({})",
                n.fields
                    .iter()
                    .map(|f| f.replace('_', " "))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            String::new()
        };
        Self {
            seq: n.seq,
            unread: n.read_at.is_none(),
            actor: names
                .get(&n.actor_id.to_string())
                .cloned()
                .unwrap_or_else(|| "Someone".into()),
            verb,
            subject: n.subject,
            suffix,
            href,
            when: Stamp::new(n.created_at),
        }
    }
}

/// The inbox list: the page's region that htmx and the live update replace.
#[derive(Template)]
#[template(path = "partials/notification_inbox_update.html")]
struct InboxFragment {
    inbox: Inbox,
    unread: u64,
    csrf: String,
}

pub struct Inbox {
    pub items: Vec<NotificationItem>,
    /// The cursor this page was read at (empty: the newest page).
    pub cursor: String,
    /// The link to older notifications, if there are any.
    pub older: Option<String>,
    pub unread: u64,
}

#[derive(Template)]
#[template(path = "notifications.html")]
struct InboxPage {
    chrome: Chrome,
    inbox: Inbox,
    csrf: String,
}

/// One item after "Mark read", with the header's count out of band.
#[derive(Template)]
#[template(path = "partials/notification_read.html")]
struct ReadFragment {
    item: NotificationItem,
    unread: u64,
    csrf: String,
}

/// The names of the people a user shares a team with, by id (the actors they may know).
async fn people(service: &Service, auth: &AuthUser) -> WebResult<HashMap<String, String>> {
    let people = service.teammates(auth, None, None, Some(200)).await?;
    Ok(people
        .items
        .into_iter()
        .map(|u| (u.id.to_string(), u.name.as_str().to_string()))
        .collect())
}

async fn load_inbox(service: &Service, auth: &AuthUser, cursor: Option<&str>) -> WebResult<Inbox> {
    let cursor = cursor.filter(|c| !c.is_empty());
    let page = service
        .notifications(auth, false, cursor, Some(PAGE_SIZE))
        .await?;
    let names = people(service, auth).await?;
    Ok(Inbox {
        items: page
            .page
            .items
            .into_iter()
            .map(|n| NotificationItem::new(n, &names))
            .collect(),
        cursor: cursor.unwrap_or_default().to_string(),
        older: page
            .page
            .next_cursor
            .map(|c| format!("/notifications?cursor={}", urlencode(&c.encode()))),
        unread: page.unread_count,
    })
}

#[derive(Deserialize)]
pub struct CursorQuery {
    cursor: Option<String>,
}

/// `GET /notifications[?cursor=]`.
#[handler]
pub async fn inbox_page(
    user: WebUser,
    service: Data<&Service>,
    Query(query): Query<CursorQuery>,
) -> WebResult<Response> {
    let inbox = load_inbox(&service, &user.0, query.cursor.as_deref()).await?;
    let chrome = Chrome::load(&service, user, "notifications").await?;
    render(&InboxPage {
        csrf: chrome.csrf().to_string(),
        inbox,
        chrome,
    })
}

fn is_htmx(req: &Request) -> bool {
    req.header("hx-request").is_some()
}

/// `POST /notifications/{seq}/read`.
#[handler]
pub async fn read_one(
    req: &Request,
    user: WebUser,
    service: Data<&Service>,
    Path(seq): Path<String>,
) -> WebResult<Response> {
    let seq: u64 = seq.parse().map_err(|_| WebError::NotFound)?;
    let auth = &user.0;
    let notification = service.mark_notification_read(auth, seq).await?;
    if !is_htmx(req) {
        return Ok(see_other("/notifications"));
    }
    let unread = service
        .notifications(auth, true, None, Some(1))
        .await?
        .unread_count;
    let names = people(&service, auth).await?;
    render(&ReadFragment {
        item: NotificationItem::new(notification, &names),
        unread,
        csrf: service.csrf_token(auth),
    })
}

#[derive(Deserialize)]
pub struct ReadAllForm {
    #[serde(default)]
    cursor: String,
}

/// `POST /notifications/read-all`.
#[handler]
pub async fn read_all(
    req: &Request,
    user: WebUser,
    service: Data<&Service>,
    Form(form): Form<ReadAllForm>,
) -> WebResult<Response> {
    let auth = &user.0;
    service.mark_all_notifications_read(auth).await?;
    if !is_htmx(req) {
        return Ok(see_other("/notifications"));
    }
    let inbox = load_inbox(&service, auth, Some(&form.cursor)).await?;
    render(&InboxFragment {
        unread: inbox.unread,
        inbox,
        csrf: service.csrf_token(auth),
    })
}
