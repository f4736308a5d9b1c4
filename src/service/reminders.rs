//! Reminders, the daily digest, per-kind notification emails and ntfy pushes (issue 17).
//!
//! **Preferences** are read and saved here; saving recomputes the user's schedule in the same
//! write (see `store/reminders.rs` for how the schedule follows task writes).
//!
//! **The worker** ([`Service::run_reminders`]) reads the first entries of the schedule's time
//! index, fires those that are due, and sleeps until the next one, or until a write lands
//! (a write may have scheduled something earlier), at most [`MAX_SLEEP`]. Firing an entry is
//! one write transaction that removes it and queues its email and push in the outbox: a
//! reminder is sent once, or not at all if that write fails (it is then retried). Before
//! queueing, the worker re-reads what the entry is about: the task must still exist, not be
//! done, be assigned to the user, have the due date the entry was computed from, and be one
//! the user may still hear about (`access::hears_about_task`); a notification must still be
//! in the inbox. Entries missed while the server was down fire at start when they are at most
//! [`MISSED_WINDOW`] old, and are dropped silently when older.
//!
//! **Unsubscribe links** carry a token signed with a key derived from the JWT secret naming
//! the user and the topic (reminders, the digest, or one notification kind); a POST to it
//! (RFC 8058 one-click) turns that topic off without a login.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::reminder_mail::{self, Letter, Line, Links, NoticeLine, Push};
use super::{AuthUser, Error, Result, Service};
use crate::domain::notification::NotificationKind;
use crate::domain::reminder::{
    Delivery, MISSED_WINDOW, MailTopic, NTFY_URL_MAX_CHARS, Preferences, ReminderKind,
    TimeZoneName, parse_hour, parse_lead_minutes, parse_minute,
};
use crate::domain::scope::{Access, Area};
use crate::domain::task::Task;
use crate::domain::{TaskId, User, UserId, Validator, access};
use crate::mail::letters::Rendered;
use crate::mail::{Mailer, SendError};
use crate::net::egress::{AllowedHosts, EgressError, Outgoing};
use crate::store::{DIGEST_MAX_TASKS, Message, PushMessage, ReminderKey, StoreError, Tx};

/// The longest the worker sleeps without looking at the schedule again.
pub const MAX_SLEEP: Duration = Duration::from_secs(60);
/// Entries read from the time index per pass.
const BATCH: usize = 64;

/// A change of preferences: a field left `None` keeps its value; for the nullable ones
/// `Some(None)` clears it.
#[derive(Debug, Default, Clone)]
pub struct PreferencesUpdate {
    pub time_zone: Option<String>,
    pub morning_hour: Option<Option<i64>>,
    pub at_due_time: Option<bool>,
    pub lead_minutes: Option<Vec<i64>>,
    pub email_reminders: Option<bool>,
    pub digest_hour: Option<Option<i64>>,
    pub digest_minute: Option<i64>,
    pub kinds: Vec<(NotificationKind, Delivery)>,
    pub ntfy_url: Option<Option<String>>,
}

impl Service {
    /// My notification preferences.
    pub async fn preferences(&self, auth: &AuthUser) -> Result<Preferences> {
        auth.allows(Area::Notifications, Access::Read)?;
        let user = auth.user_id;
        Ok(self.store.run(move |s| s.preferences(user)).await?)
    }

    /// Changes my preferences (every field checked; one 422 names each bad one) and moves my
    /// reminders and digest to match, in one write.
    pub async fn update_preferences(
        &self,
        auth: &AuthUser,
        update: PreferencesUpdate,
    ) -> Result<Preferences> {
        auth.allows(Area::Notifications, Access::Write)?;
        let user = auth.user_id;
        let mut prefs = self.preferences(auth).await?;
        let mut v = Validator::default();
        if let Some(raw) = &update.time_zone
            && let Some(tz) = v.check("time_zone", TimeZoneName::parse(raw))
        {
            prefs.time_zone = tz;
        }
        if let Some(raw) = update.morning_hour {
            prefs.morning_hour = raw.and_then(|h| v.check("morning_hour", parse_hour(h)));
        }
        if let Some(raw) = update.digest_hour {
            prefs.digest_hour = raw.and_then(|h| v.check("digest_hour", parse_hour(h)));
        }
        if let Some(raw) = update.digest_minute
            && let Some(minute) = v.check("digest_minute", parse_minute(raw))
        {
            prefs.digest_minute = minute;
        }
        if let Some(raw) = &update.lead_minutes
            && let Some(leads) = v.check("lead_minutes", parse_lead_minutes(raw))
        {
            prefs.lead_minutes = leads;
        }
        prefs.at_due_time = update.at_due_time.unwrap_or(prefs.at_due_time);
        prefs.email_reminders = update.email_reminders.unwrap_or(prefs.email_reminders);
        for (kind, delivery) in update.kinds {
            match delivery {
                Delivery::InApp => prefs.kinds.remove(&kind),
                other => prefs.kinds.insert(kind, other),
            };
        }
        if let Some(raw) = update.ntfy_url {
            // `None` removes the topic; an empty string is no URL (the web form sends `None`
            // for an empty field).
            prefs.ntfy_url = match raw.as_deref().map(str::trim) {
                None => None,
                Some("") => v.check::<String>(
                    "ntfy_url",
                    Err("is empty: to remove the topic, set it to null".into()),
                ),
                Some(url) => v.check("ntfy_url", self.check_ntfy_url(url)),
            };
        }
        v.finish().map_err(Error::Validation)?;
        let saved = prefs.clone();
        self.store
            .run(move |s| s.write(|tx| tx.save_preferences(user, &saved, Utc::now())))
            .await?;
        Ok(prefs)
    }

    /// An ntfy topic URL: http(s), at most [`NTFY_URL_MAX_CHARS`], and a host the allowed-hosts
    /// rule of webhooks lets us reach.
    fn check_ntfy_url(&self, url: &str) -> Result<String, String> {
        if url.chars().count() > NTFY_URL_MAX_CHARS {
            return Err(format!("must be at most {NTFY_URL_MAX_CHARS} characters"));
        }
        let parsed = self
            .egress_allowed()
            .check_url(url)
            .map_err(|e| e.to_string())?;
        if ntfy_endpoint(parsed.as_str()).is_none() {
            return Err("must be an ntfy topic URL such as https://ntfy.sh/my-topic".into());
        }
        Ok(parsed.to_string())
    }

    /// Queues a test push to my ntfy topic (through the outbox, like every push).
    pub async fn send_test_push(&self, auth: &AuthUser) -> Result<()> {
        auth.allows(Area::Notifications, Access::Write)?;
        let prefs = self.preferences(auth).await?;
        let Some(url) = prefs.ntfy_url else {
            return Err(Error::invalid("ntfy_url", "set an ntfy topic URL first"));
        };
        let site = self.public_site();
        let push = Push {
            title: "tasker test push".into(),
            message: "Pushes from tasker reach this topic.".into(),
            click: site.map(|s| format!("{s}{}", reminder_mail::SETTINGS_PATH)),
            tags: vec!["white_check_mark".into()],
            priority: 3,
        };
        self.store
            .run(move |s| s.write(|tx| queue_push(tx, &url, push, Utc::now())))
            .await?;
        self.wake_outbox();
        Ok(())
    }

    /// What an unsubscribe token turns off, if it is one of ours.
    pub fn unsubscribe_topic(&self, token: &str) -> Option<(UserId, MailTopic)> {
        UnsubscribeSigner::new(&self.config.jwt_secret).verify(token)
    }

    /// Turns off what an unsubscribe token names (RFC 8058 one-click: no login).
    pub async fn unsubscribe_mail(&self, token: &str) -> Result<MailTopic> {
        let (user, topic) = self
            .unsubscribe_topic(token)
            .ok_or(Error::NotFound("unsubscribe link"))?;
        self.store
            .run(move |s| {
                s.write(|tx| {
                    let mut prefs = tx.preferences(user)?;
                    topic.turn_off(&mut prefs);
                    tx.save_preferences(user, &prefs, Utc::now())
                })
            })
            .await?;
        Ok(topic)
    }

    /// Fires reminders until `stop` changes (see the module header).
    pub async fn run_reminders(&self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut writes = self.store.writes();
        loop {
            let next = match self.fire_due_reminders().await {
                Ok(next) => next,
                Err(e) => {
                    tracing::error!(error = %e, "reminders: cannot read or fire the schedule");
                    Some(Utc::now() + chrono::Duration::seconds(30))
                }
            };
            let sleep = next
                .map(|at| (at - Utc::now()).to_std().unwrap_or_default())
                .unwrap_or(MAX_SLEEP)
                .min(MAX_SLEEP);
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                changed = writes.changed() => if changed.is_err() { return },
                _ = stop.changed() => return,
            }
        }
    }

    /// Fires every due entry; returns when the next one is due.
    async fn fire_due_reminders(&self) -> Result<Option<DateTime<Utc>>> {
        loop {
            let batch = self.store.run(|s| s.next_reminders(BATCH)).await?;
            let now = Utc::now();
            let due: Vec<ReminderKey> =
                batch.iter().filter(|k| k.fire_at <= now).copied().collect();
            if due.is_empty() {
                return Ok(batch.first().map(|k| k.fire_at));
            }
            let mut queued = false;
            for key in due {
                let ctx = FireContext {
                    site: self.public_site(),
                    mailer: self.mailer().ok().cloned(),
                    signer: self.unsubscribe_signer(),
                };
                queued |= self
                    .store
                    .run(move |s| s.write(|tx| fire(tx, key, now, &ctx)))
                    .await?;
            }
            if queued {
                self.wake_outbox();
            }
        }
    }

    fn unsubscribe_signer(&self) -> UnsubscribeSigner {
        UnsubscribeSigner::new(&self.config.jwt_secret)
    }
}

/// What firing needs from the service: the links' base, the mailer (none: no email), the
/// unsubscribe signer.
struct FireContext {
    site: Option<String>,
    mailer: Option<Mailer>,
    signer: UnsubscribeSigner,
}

/// Fires one entry in the write that removes it; `true` when something was queued.
fn fire(
    tx: &Tx<'_>,
    key: ReminderKey,
    now: DateTime<Utc>,
    ctx: &FireContext,
) -> Result<bool, StoreError> {
    let Some(scheduled) = tx.take_reminder(key)? else {
        return Ok(false);
    };
    let Some(user) = tx.user(key.user)?.filter(|u| !u.disabled) else {
        return Ok(false);
    };
    let prefs = tx.preferences(user.id)?;
    let fresh = key.fire_at >= now - MISSED_WINDOW;
    let Some(kind) = key.kind() else {
        return Ok(false);
    };
    if kind == ReminderKind::Digest {
        // The next digest is scheduled whatever happens to this one.
        tx.schedule_digest(user.id, &prefs, now)?;
    }
    // Without --public-url a message could carry no link: nothing is sent.
    let Some(site) = ctx.site.as_deref().filter(|_| fresh) else {
        return Ok(false);
    };
    let (signer, mailer) = (&ctx.signer, ctx.mailer.as_ref());
    let out = Out {
        tx,
        site,
        signer,
        mailer,
        user: &user,
        prefs: &prefs,
        now,
    };
    match kind {
        ReminderKind::Digest => out.digest(),
        ReminderKind::Notice => out.notice(key.subject as u64),
        _ => {
            let task = tx.task(TaskId::from_u128(key.subject))?;
            match task.filter(|t| still_due(tx, t, user.id, scheduled.due)) {
                Some(task) if !still_hears(tx, &task, user.id)? => Ok(false),
                Some(task) => out.reminder(kind, &task),
                None => Ok(false),
            }
        }
    }
}

/// Whether `task` is still one to remind `user` of with the due date `due`.
fn still_due(_tx: &Tx<'_>, task: &Task, user: UserId, due: Option<DateTime<Utc>>) -> bool {
    task.status != crate::domain::task::TaskStatus::Done
        && task.is_assigned_to(user)
        && task.due_date.is_some()
        && task.due_date == due
}

/// Whether `user` may still hear about `task` (a team task: still a member).
fn still_hears(tx: &Tx<'_>, task: &Task, user: UserId) -> Result<bool, StoreError> {
    let role = match task.team_id {
        Some(team) => tx.membership(team, user)?.map(|m| m.role),
        None => None,
    };
    Ok(access::hears_about_task(task, role))
}

/// What firing one entry needs.
struct Out<'a, 't> {
    tx: &'a Tx<'t>,
    site: &'a str,
    signer: &'a UnsubscribeSigner,
    mailer: Option<&'a Mailer>,
    user: &'a User,
    prefs: &'a Preferences,
    now: DateTime<Utc>,
}

impl Out<'_, '_> {
    fn links(&self, topic: MailTopic) -> Links<'_> {
        Links {
            site: self.site,
            unsubscribe: format!(
                "{}/api/unsubscribe/{}",
                self.site,
                self.signer.sign(self.user.id, topic)
            ),
        }
    }

    fn project_name(&self, task: &Task) -> Result<Option<String>, StoreError> {
        Ok(match task.project_id {
            Some(id) => self.tx.project(id)?.map(|p| p.name.as_str().to_string()),
            None => None,
        })
    }

    fn reminder(&self, kind: ReminderKind, task: &Task) -> Result<bool, StoreError> {
        let links = self.links(MailTopic::Reminders);
        let project = self.project_name(task)?;
        let name = self.user.name.as_str();
        let (letter, push) =
            reminder_mail::reminder(&links, name, self.prefs, kind, task, project.as_deref());
        self.send(letter, Some(push), &links, self.prefs.email_reminders)
    }

    fn notice(&self, seq: u64) -> Result<bool, StoreError> {
        let Some(n) = self.tx.notification_of(self.user.id, seq)? else {
            return Ok(false);
        };
        let mut link = None;
        if let Some(task) = n.task_id.map(|id| self.tx.task(id)).transpose()?.flatten() {
            if !still_hears(self.tx, &task, self.user.id)? {
                return Ok(false);
            }
            link = Some(format!("{}/tasks/{}", self.site, task.id.as_uuid()));
        }
        let actor = self.tx.user(n.actor_id)?;
        let actor = actor.as_ref().map_or("Someone", |u| u.name.as_str());
        let text = reminder_mail::notice_text(&n, actor);
        let links = self.links(MailTopic::Kind(n.kind));
        let (letter, push) =
            reminder_mail::notice(&links, self.user.name.as_str(), &text, link.as_deref());
        self.send(letter, Some(push), &links, true)
    }

    fn digest(&self) -> Result<bool, StoreError> {
        let end = self.prefs.end_of_day(self.now);
        let (mut overdue, mut today) = (Vec::new(), Vec::new());
        for task in self
            .tx
            .dated_tasks_of(self.user.id, Some(end), DIGEST_MAX_TASKS)?
        {
            if !still_hears(self.tx, &task, self.user.id)? {
                continue;
            }
            let due = task.due_date.unwrap_or_default();
            let line = Line {
                title: task.title.as_str().to_string(),
                project: self.project_name(&task)?,
                due: self.prefs.show_due(due),
                link: format!("{}/tasks/{}", self.site, task.id.as_uuid()),
            };
            // A task due on today's whole day is not overdue before the day ends.
            let whole_day = crate::domain::calendar::due_day(due).is_some();
            if due < self.now && !(whole_day && due >= self.now - chrono::Duration::days(1)) {
                overdue.push(line);
            } else {
                today.push(line);
            }
        }
        let mut notices = Vec::new();
        for n in self.tx.take_digest_items(self.user.id)? {
            if let Some(task) = n.task_id.map(|id| self.tx.task(id)).transpose()?.flatten()
                && !still_hears(self.tx, &task, self.user.id)?
            {
                continue;
            }
            let actor = self.tx.user(n.actor_id)?;
            let actor = actor.as_ref().map_or("Someone", |u| u.name.as_str());
            notices.push(NoticeLine {
                text: reminder_mail::notice_text(&n, actor),
                link: n
                    .task_id
                    .map(|id| format!("{}/tasks/{}", self.site, id.as_uuid())),
            });
        }
        let links = self.links(MailTopic::Digest);
        let day = self
            .now
            .with_timezone(&self.prefs.time_zone.tz())
            .format("%a %-d %b %Y")
            .to_string();
        let name = self.user.name.as_str();
        match reminder_mail::digest(&links, name, &day, &overdue, &today, &notices) {
            Some(letter) => self.send(letter, None, &links, true),
            None => Ok(false),
        }
    }

    /// Queues `letter` (when `email`) and `push` (when the user has a topic).
    fn send(
        &self,
        letter: Letter,
        push: Option<Push>,
        links: &Links<'_>,
        email: bool,
    ) -> Result<bool, StoreError> {
        let mut queued = false;
        if let Some(mailer) = self.mailer.filter(|_| email) {
            queue_letter(self.tx, mailer, self.user, letter, links, self.now)?;
            queued = true;
        }
        if let (Some(url), Some(push)) = (&self.prefs.ntfy_url, push) {
            queue_push(self.tx, url, push, self.now)?;
            queued = true;
        }
        Ok(queued)
    }
}

/// Signs and checks unsubscribe tokens: `base64(user id, topic).base64(HMAC)`.
pub struct UnsubscribeSigner {
    key: Vec<u8>,
}

impl UnsubscribeSigner {
    pub fn new(jwt_secret: &[u8]) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(jwt_secret).expect("any key length");
        mac.update(b"tasker unsubscribe links v1");
        Self {
            key: mac.finalize().into_bytes().to_vec(),
        }
    }

    fn mac(&self, payload: &[u8]) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(payload);
        mac.finalize().into_bytes()[..18].to_vec()
    }

    pub fn sign(&self, user: UserId, topic: MailTopic) -> String {
        let mut payload = user.as_u128().to_be_bytes().to_vec();
        payload.extend(topic.name().as_bytes());
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(self.mac(&payload))
        )
    }

    pub fn verify(&self, token: &str) -> Option<(UserId, MailTopic)> {
        let (payload, signature) = token.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(&payload);
        mac.verify_truncated_left(&signature).ok()?;
        if signature.len() != 18 || payload.len() < 16 {
            return None;
        }
        let user = u128::from_be_bytes(payload[..16].try_into().ok()?);
        let topic = MailTopic::parse(std::str::from_utf8(&payload[16..]).ok()?)?;
        Some((UserId::from_u128(user), topic))
    }
}

/// Queues `letter` to `user` with its unsubscribe headers (RFC 8058).
fn queue_letter(
    tx: &Tx<'_>,
    mailer: &Mailer,
    user: &User,
    letter: Letter,
    links: &Links<'_>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let rendered = Rendered {
        subject: letter.subject,
        text: letter.text,
        html: letter.html,
    };
    let mut message = mailer.compose(user.email.as_str(), rendered);
    message.headers = vec![
        (
            "List-Unsubscribe".into(),
            format!("<{}>", links.unsubscribe),
        ),
        (
            "List-Unsubscribe-Post".into(),
            "List-Unsubscribe=One-Click".into(),
        ),
    ];
    tx.enqueue(Message::Email(message), now)?;
    Ok(())
}

/// Queues `push` to the ntfy topic at `url`.
fn queue_push(tx: &Tx<'_>, url: &str, push: Push, now: DateTime<Utc>) -> Result<(), StoreError> {
    let message = PushMessage {
        url: url.to_string(),
        title: push.title,
        message: push.message,
        click: push.click,
        tags: push.tags,
        priority: push.priority,
    };
    tx.enqueue(Message::Push(message), now)?;
    Ok(())
}

/// An ntfy topic URL split for JSON publishing: the server's base URL and the topic (the
/// last path segment).
fn ntfy_endpoint(url: &str) -> Option<(String, String)> {
    let (base, topic) = url.trim_end_matches('/').rsplit_once('/')?;
    let ok = !topic.is_empty()
        && topic
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    (ok && base.contains("://") && !base.ends_with('/'))
        .then(|| (format!("{base}/"), topic.to_string()))
}

impl Service {
    /// `--public-url`, the base of every link in a message.
    fn public_site(&self) -> Option<String> {
        self.config.mail.public_url.clone()
    }

    /// Where outgoing HTTP may go (`--webhook-allowed-hosts`).
    fn egress_allowed(&self) -> &AllowedHosts {
        self.egress().allowed()
    }

    /// Publishes one push (ntfy's JSON form, to the topic's server) through the egress guard:
    /// a 2xx is sent; a refusal by the guard or a 4xx other than 429 is permanent; the rest
    /// is retried like mail.
    pub(super) async fn send_push(&self, push: &PushMessage) -> Result<String, SendError> {
        let fail = |permanent: bool, message: String| SendError { permanent, message };
        let client = self.egress();
        let Some((base, topic)) = ntfy_endpoint(&push.url) else {
            return Err(fail(true, format!("{} is not an ntfy topic URL", push.url)));
        };
        let mut body = serde_json::json!({
            "topic": topic,
            "title": push.title,
            "message": push.message,
            "tags": push.tags,
            "priority": push.priority,
        });
        if let Some(click) = &push.click {
            body["click"] = click.clone().into();
        }
        let request = Outgoing {
            url: base,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        };
        match client.post(&request).await {
            Ok(answer) if (200..300).contains(&answer.status) => {
                Ok(format!("ntfy answered {}", answer.status))
            }
            Ok(answer) => Err(fail(
                (400..500).contains(&answer.status) && answer.status != 429,
                format!("ntfy answered {}", answer.status),
            )),
            Err(e @ EgressError::Refused(_)) | Err(e @ EgressError::InvalidUrl(_)) => {
                Err(fail(true, e.to_string()))
            }
            Err(e) => Err(fail(false, e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsubscribe_tokens_name_their_user_and_topic_and_resist_tampering() {
        let signer = UnsubscribeSigner::new(b"secret");
        let user = UserId::new();
        let token = signer.sign(user, MailTopic::Digest);
        assert_eq!(signer.verify(&token), Some((user, MailTopic::Digest)));
        let other = UnsubscribeSigner::new(b"other");
        assert_eq!(other.verify(&token), None);
        let (payload, sig) = token.split_once('.').unwrap();
        let mut forged = URL_SAFE_NO_PAD.decode(payload).unwrap();
        forged.truncate(16);
        forged.extend(b"reminders");
        let forged = format!("{}.{sig}", URL_SAFE_NO_PAD.encode(forged));
        assert_eq!(signer.verify(&forged), None);
    }
}
