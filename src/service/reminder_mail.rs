//! What reminders, digests and notification emails say: subjects, the plain-text and HTML
//! parts (`templates/mail/reminder*`, `digest*`, `notice*`), and the ntfy push of each.
//! Everything here is rendered from what the worker re-read at send time, for its recipient.

use askama::Template;

use crate::domain::notification::{Notification, NotificationKind};
use crate::domain::reminder::{Preferences, ReminderKind};
use crate::domain::task::Task;

/// Where a message's links go.
pub struct Links<'a> {
    /// `--public-url`, without a trailing slash.
    pub site: &'a str,
    /// The one-click unsubscribe URL of this message's topic.
    pub unsubscribe: String,
}

impl Links<'_> {
    pub fn settings(&self) -> String {
        format!("{}{}", self.site, SETTINGS_PATH)
    }

    pub fn task(&self, task: &Task) -> String {
        format!("{}/tasks/{}", self.site, task.id.as_uuid())
    }
}

/// The web app's notification settings page.
pub const SETTINGS_PATH: &str = "/settings/notifications";

/// A rendered email: subject and both parts.
pub struct Letter {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A push message (ntfy): title, body, the link a tap opens, tags and priority (1 to 5).
#[derive(Debug, Clone, PartialEq)]
pub struct Push {
    pub title: String,
    pub message: String,
    pub click: Option<String>,
    pub tags: Vec<String>,
    pub priority: u8,
}

macro_rules! letter {
    ($text:ident, $html:ident, $txt:literal, $htm:literal, { $($field:ident: $ty:ty),* }) => {
        #[derive(Template)]
        #[template(path = $txt)]
        struct $text<'a> {
            site: &'a str,
            settings: &'a str,
            unsubscribe: &'a str,
            name: &'a str,
            $($field: $ty),*
        }

        #[derive(Template)]
        #[template(path = $htm)]
        struct $html<'a> {
            site: &'a str,
            settings: &'a str,
            unsubscribe: &'a str,
            name: &'a str,
            $($field: $ty),*
        }
    };
}

letter!(ReminderText, ReminderHtml, "mail/reminder.txt", "mail/reminder.html", {
    title: &'a str, when: &'a str, project: Option<&'a str>, due: &'a str, link: &'a str
});
letter!(DigestText, DigestHtml, "mail/digest.txt", "mail/digest.html", {
    day: &'a str, overdue: &'a [Line], today: &'a [Line], notices: &'a [NoticeLine]
});
letter!(NoticeText, NoticeHtml, "mail/notice.txt", "mail/notice.html", { text: &'a str, link: Option<&'a str> });

/// One task of a digest.
pub struct Line {
    pub title: String,
    pub project: Option<String>,
    pub due: String,
    pub link: String,
}

/// One notification of a digest.
pub struct NoticeLine {
    pub text: String,
    pub link: Option<String>,
}

// Templates are checked at compile time; rendering fails only on a value's formatting error,
// which these strings do not have.
fn parts(text: &impl Template, html: &impl Template) -> (String, String) {
    (
        text.render().unwrap_or_default(),
        html.render().unwrap_or_default(),
    )
}

/// How a reminder of `kind` words the due date.
fn when(kind: ReminderKind, prefs: &Preferences, task: &Task) -> String {
    let due = task.due_date.unwrap_or_default();
    match kind {
        ReminderKind::DueTime => "is due now".into(),
        ReminderKind::Lead(minutes) => format!("is due in {}", lead_text(minutes)),
        _ if crate::domain::calendar::due_day(due).is_some() => "is due today".into(),
        _ => format!(
            "is due today at {}",
            due.with_timezone(&prefs.time_zone.tz()).format("%H:%M")
        ),
    }
}

/// `90` -> `1 hour 30 minutes`.
pub fn lead_text(minutes: u32) -> String {
    let (days, hours, mins) = (minutes / 1440, minutes % 1440 / 60, minutes % 60);
    let part = |n: u32, unit: &str| match n {
        0 => None,
        1 => Some(format!("1 {unit}")),
        n => Some(format!("{n} {unit}s")),
    };
    [part(days, "day"), part(hours, "hour"), part(mins, "minute")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A due-date reminder of `task` for someone named `name`.
pub fn reminder(
    links: &Links<'_>,
    name: &str,
    prefs: &Preferences,
    kind: ReminderKind,
    task: &Task,
    project: Option<&str>,
) -> (Letter, Push) {
    let when = when(kind, prefs, task);
    let due = prefs.show_due(task.due_date.unwrap_or_default());
    let (settings, link) = (links.settings(), links.task(task));
    let title = task.title.as_str();
    let (site, unsubscribe) = (links.site, links.unsubscribe.as_str());
    let (text, html) = parts(
        &ReminderText {
            site,
            settings: &settings,
            unsubscribe,
            name,
            title,
            when: &when,
            project,
            due: &due,
            link: &link,
        },
        &ReminderHtml {
            site,
            settings: &settings,
            unsubscribe,
            name,
            title,
            when: &when,
            project,
            due: &due,
            link: &link,
        },
    );
    let subject = format!("Reminder: \"{title}\" {when}");
    let push = Push {
        title: format!("\"{title}\" {when}"),
        message: match project {
            Some(project) => format!("{project} · due {due}"),
            None => format!("Due {due}"),
        },
        click: Some(link),
        tags: vec!["alarm_clock".into()],
        priority: if kind == ReminderKind::DueTime { 4 } else { 3 },
    };
    (
        Letter {
            subject,
            text,
            html,
        },
        push,
    )
}

/// The daily digest; `None` when there is nothing to tell.
pub fn digest(
    links: &Links<'_>,
    name: &str,
    day: &str,
    overdue: &[Line],
    today: &[Line],
    notices: &[NoticeLine],
) -> Option<Letter> {
    if overdue.is_empty() && today.is_empty() && notices.is_empty() {
        return None;
    }
    let settings = links.settings();
    let (site, unsubscribe) = (links.site, links.unsubscribe.as_str());
    let (text, html) = parts(
        &DigestText {
            site,
            settings: &settings,
            unsubscribe,
            name,
            day,
            overdue,
            today,
            notices,
        },
        &DigestHtml {
            site,
            settings: &settings,
            unsubscribe,
            name,
            day,
            overdue,
            today,
            notices,
        },
    );
    let mut counts = Vec::new();
    if !overdue.is_empty() {
        counts.push(format!("{} overdue", overdue.len()));
    }
    if !today.is_empty() {
        counts.push(format!("{} due today", today.len()));
    }
    if !notices.is_empty() {
        counts.push(format!("{} updates", notices.len()));
    }
    let subject = format!("Your tasks for {day}: {}", counts.join(", "));
    Some(Letter {
        subject,
        text,
        html,
    })
}

/// What a notification says, as one sentence: "Ada assigned you to "Fix the boiler"".
pub fn notice_text(n: &Notification, actor: &str) -> String {
    let subject = &n.subject;
    match n.kind {
        NotificationKind::TaskAssigned => format!("{actor} assigned you to \"{subject}\""),
        NotificationKind::TaskUnassigned => format!("{actor} took you off \"{subject}\""),
        NotificationKind::TaskUpdated => format!(
            "{actor} changed the {} of \"{subject}\"",
            n.fields.join(", ").replace('_', " ")
        ),
        NotificationKind::TaskDeleted => format!("{actor} deleted \"{subject}\""),
        NotificationKind::CommentAdded => format!("{actor} commented on \"{subject}\""),
        NotificationKind::AttachmentAdded => format!("{actor} attached a file to \"{subject}\""),
        NotificationKind::TeamInvited => format!("{actor} invited you to the team {subject}"),
        NotificationKind::InvitationAccepted => {
            format!("{actor} accepted your invitation to {subject}")
        }
        NotificationKind::MemberRemoved => format!("{actor} removed you from the team {subject}"),
        NotificationKind::WebhookDisabled => {
            format!("Your webhook {subject} was disabled: its deliveries kept failing")
        }
    }
}

/// One notification as an email of its own (and a push).
pub fn notice(links: &Links<'_>, name: &str, text: &str, link: Option<&str>) -> (Letter, Push) {
    let settings = links.settings();
    let (site, unsubscribe) = (links.site, links.unsubscribe.as_str());
    let (body, html) = parts(
        &NoticeText {
            site,
            settings: &settings,
            unsubscribe,
            name,
            text,
            link,
        },
        &NoticeHtml {
            site,
            settings: &settings,
            unsubscribe,
            name,
            text,
            link,
        },
    );
    let push = Push {
        title: text.to_string(),
        message: text.to_string(),
        click: link.map(str::to_string),
        tags: vec!["bell".into()],
        priority: 3,
    };
    (
        Letter {
            subject: text.to_string(),
            text: body,
            html,
        },
        push,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lead_times_read_naturally() {
        assert_eq!(lead_text(15), "15 minutes");
        assert_eq!(lead_text(60), "1 hour");
        assert_eq!(lead_text(1440 + 90), "1 day 1 hour 30 minutes");
    }
}
