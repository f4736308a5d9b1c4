//! Webhooks: a team's owners and admins manage them; the delivery worker sends each hook the
//! committed change log from its own durable cursor.
//!
//! **Delivery.** One task per enabled hook, so a slow receiver delays only its own hook. A
//! task reads the log after its cursor (`WEBHOOK_STATES`), skips what the hook does not want
//! (`Webhook::wants`: `domain::access` on the team and project, then the event types), waits
//! until the entries it read are durable (as the WebSocket feed does), and sends the next
//! wanted entry: the feed's change message, signed (Standard Webhooks, plus
//! `X-Hub-Signature-256`). The attempt's record and its outcome are one commit: a 2xx moves
//! the cursor past the entry; anything else counts a failure and sets when the next attempt is
//! due (`--webhook-retry-schedule`), so a restart, even after `kill -9`, resumes at the same
//! entry at the same time. Delivery is at least once (a crash between the receiver's 2xx and
//! the commit sends the entry again, with the same `webhook-id`) and in order (an entry is
//! sent only after every earlier one got its 2xx).
//!
//! When the schedule runs out the hook is disabled and its creator notified. The change log is
//! never swept (it is also the entities' history), so a failing hook holds nothing; but a hook
//! more than [`MAX_LAG_ENTRIES`] entries behind, or whose next entry is older than
//! `--change-retention` (the window the real-time feed replays), is disabled rather than made
//! to deliver a backlog nobody is waiting for.
//!
//! Tasks wake on every durable write (the store's `writes()`), on a hook being created or
//! changed, and on their own retry timers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rand::RngCore;
use tokio::sync::{Notify, watch};

use super::{AuthUser, Error, Result, Service};
use crate::domain::access::{self, TeamAction};
use crate::domain::change::Change;
use crate::domain::scope::{Access, Area};
use crate::domain::webhooks::{
    Delivery, DeliveryKind, DeliveryState, MAX_DELIVERIES, MAX_LAG_ENTRIES, Webhook, event_id,
    event_type, hub_signature, new_secret, parse_events, parse_url, sign, stored_response,
};
use crate::domain::{ProjectId, TeamId, Validator, WebhookId};
use crate::net::egress::{EgressError, Outgoing};
use crate::store::WebhookOutcome as Outcome;

/// Turns a change into the body a hook receives (the WebSocket feed's change message: the API
/// layer owns that shape and hands its encoder to [`Service::run_webhooks`]).
pub type EncodeChange = fn(&Change) -> String;

/// Change-log entries one step of a hook reads.
const READ_BATCH: usize = 200;
/// How often an idle hook looks at the log even when nothing woke it, and the worker looks
/// for hooks to start.
const IDLE_TICK: Duration = Duration::from_secs(30);
/// How far a hook's cursor may trail what it has read and skipped (entries not for it)
/// before the skip is written down: skipping is not written on every step, so writes to other
/// teams cost a hook no writes of its own; after a restart it reads at most this many entries
/// again, and skips them again.
const SKIP_WRITE_EVERY: u64 = 10_000;

/// A hook with where its delivery stands.
#[derive(Debug, Clone)]
pub struct WebhookView {
    pub hook: Webhook,
    pub state: DeliveryState,
    /// Committed change-log entries after its cursor (not all of them are for it).
    pub behind: u64,
}

/// A new hook as asked for.
#[derive(Debug, Clone, Default)]
pub struct NewWebhook {
    pub url: String,
    pub events: Vec<String>,
    pub project_id: Option<ProjectId>,
    pub enabled: bool,
}

/// Changes to a hook: only the fields present change (`project_id: Some(None)` clears it).
#[derive(Debug, Clone, Default)]
pub struct WebhookPatch {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub project_id: Option<Option<ProjectId>>,
    pub enabled: Option<bool>,
}

/// The hooks' shared parts: where the worker learns that hooks changed.
#[derive(Default)]
pub(super) struct Hooks {
    changed: Notify,
}

impl Service {
    fn view(&self, hook: Webhook, state: DeliveryState) -> WebhookView {
        let behind = self.store.log_end().saturating_sub(state.cursor);
        WebhookView {
            hook,
            state,
            behind,
        }
    }

    /// 404 to a stranger, 403 to a member who is not an owner or admin, and to a token
    /// without `teams:read` (to look) or `teams:write` (to change, send or see the secret).
    async fn manage_hooks(&self, auth: &AuthUser, team: TeamId, access: Access) -> Result<()> {
        auth.allows(Area::Teams, access)?;
        let view = self.team(auth, team).await?;
        if !access::may_in_team(view.role, TeamAction::Manage) {
            return Err(Error::Forbidden(
                "only the team's owners and admins manage its webhooks".into(),
            ));
        }
        Ok(())
    }

    /// A hook of `team` the caller manages.
    async fn managed_hook(
        &self,
        auth: &AuthUser,
        team: TeamId,
        id: WebhookId,
        access: Access,
    ) -> Result<(Webhook, DeliveryState)> {
        self.manage_hooks(auth, team, access).await?;
        match self.store.run(move |s| s.webhook(id)).await? {
            Some((hook, state)) if hook.team_id == team => Ok((hook, state)),
            _ => Err(Error::NotFound("webhook")),
        }
    }

    /// Checks a URL's shape and where it points (the egress guard, with DNS), recording why not.
    async fn checked_url(&self, url: &str, v: &mut Validator) -> Option<String> {
        let url = v.check("url", parse_url(url))?;
        match self.egress.allowed().check_url_resolved(&url).await {
            Ok(_) => Some(url),
            Err(e) => {
                v.push("url", e.to_string());
                None
            }
        }
    }

    /// A project filter: a project of `team`.
    async fn checked_project(
        &self,
        team: TeamId,
        project: Option<ProjectId>,
        v: &mut Validator,
    ) -> Result<Option<ProjectId>> {
        let Some(id) = project else { return Ok(None) };
        let found = self.store.run(move |s| s.project(id)).await?;
        if found.is_none_or(|p| p.team_id != team) {
            v.push("project_id", "is not a project of this team");
        }
        Ok(Some(id))
    }

    /// A team's hooks (owners and admins).
    pub async fn webhooks(&self, auth: &AuthUser, team: TeamId) -> Result<Vec<WebhookView>> {
        self.manage_hooks(auth, team, Access::Read).await?;
        let hooks = self.store.run(move |s| s.webhooks_of_team(team)).await?;
        Ok(hooks.into_iter().map(|(h, s)| self.view(h, s)).collect())
    }

    /// One hook (owners and admins).
    pub async fn webhook(
        &self,
        auth: &AuthUser,
        team: TeamId,
        id: WebhookId,
    ) -> Result<WebhookView> {
        let (hook, state) = self.managed_hook(auth, team, id, Access::Read).await?;
        Ok(self.view(hook, state))
    }

    /// A hook's secret (owners and admins; a token needs `teams:write`, as the secret signs).
    pub async fn webhook_secret(
        &self,
        auth: &AuthUser,
        team: TeamId,
        id: WebhookId,
    ) -> Result<String> {
        let (hook, _) = self.managed_hook(auth, team, id, Access::Write).await?;
        Ok(hook.secret)
    }

    /// Creates a hook with a new secret; it delivers what is committed from now on. A URL the
    /// egress guard refuses is a validation error on `url`, and nothing is sent to it.
    pub async fn create_webhook(
        &self,
        auth: &AuthUser,
        team: TeamId,
        input: NewWebhook,
    ) -> Result<WebhookView> {
        self.manage_hooks(auth, team, Access::Write).await?;
        let mut v = Validator::default();
        let url = self.checked_url(&input.url, &mut v).await;
        let events = v.check("events", parse_events(&input.events));
        let project_id = self.checked_project(team, input.project_id, &mut v).await?;
        v.finish().map_err(Error::Validation)?;
        let (Some(url), Some(events)) = (url, events) else {
            return Err(Error::invalid("url", "is invalid"));
        };
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let now = Utc::now();
        let hook = Webhook {
            id: WebhookId::new(),
            team_id: team,
            project_id,
            url,
            events,
            secret: new_secret(secret),
            enabled: input.enabled,
            disabled_reason: None,
            created_by: auth.user_id,
            created_at: now,
            updated_at: now,
        };
        let stored = hook.clone();
        let state = self
            .store
            .run(move |s| s.create_webhook(&stored))
            .await?
            .ok_or_else(|| {
                Error::invalid(
                    "url",
                    format!(
                        "this team has the most webhooks it may have ({}): delete one first",
                        crate::domain::webhooks::MAX_WEBHOOKS_PER_TEAM
                    ),
                )
            })?;
        self.hooks.changed.notify_one();
        Ok(self.view(hook, state))
    }

    /// Changes a hook's URL, events, project or enabled flag. Enabling a disabled hook resumes
    /// its delivery where it stopped (or from now, when that is too far behind).
    pub async fn update_webhook(
        &self,
        auth: &AuthUser,
        team: TeamId,
        id: WebhookId,
        patch: WebhookPatch,
    ) -> Result<WebhookView> {
        let (mut hook, _) = self.managed_hook(auth, team, id, Access::Write).await?;
        let mut v = Validator::default();
        if let Some(url) = &patch.url
            && let Some(url) = self.checked_url(url, &mut v).await
        {
            hook.url = url;
        }
        if let Some(events) = &patch.events
            && let Some(events) = v.check("events", parse_events(events))
        {
            hook.events = events;
        }
        if let Some(project) = patch.project_id {
            hook.project_id = self.checked_project(team, project, &mut v).await?;
        }
        v.finish().map_err(Error::Validation)?;
        if let Some(enabled) = patch.enabled {
            if enabled {
                hook.disabled_reason = None;
            }
            hook.enabled = enabled;
        }
        hook.updated_at = Utc::now();
        let stored = hook.clone();
        let state = self
            .store
            .run(move |s| s.update_webhook(&stored, MAX_LAG_ENTRIES))
            .await?
            .ok_or(Error::NotFound("webhook"))?;
        self.hooks.changed.notify_one();
        Ok(self.view(hook, state))
    }

    /// Replaces a hook's secret; the old one stops signing at once.
    pub async fn rotate_webhook_secret(
        &self,
        auth: &AuthUser,
        team: TeamId,
        id: WebhookId,
    ) -> Result<WebhookView> {
        let (mut hook, _) = self.managed_hook(auth, team, id, Access::Write).await?;
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        hook.secret = new_secret(secret);
        hook.updated_at = Utc::now();
        let stored = hook.clone();
        let state = self
            .store
            .run(move |s| s.update_webhook(&stored, MAX_LAG_ENTRIES))
            .await?
            .ok_or(Error::NotFound("webhook"))?;
        Ok(self.view(hook, state))
    }

    /// Deletes a hook with its delivery log.
    pub async fn delete_webhook(&self, auth: &AuthUser, team: TeamId, id: WebhookId) -> Result<()> {
        self.managed_hook(auth, team, id, Access::Write).await?;
        if !self.store.run(move |s| s.delete_webhook(id)).await? {
            return Err(Error::NotFound("webhook"));
        }
        self.hooks.changed.notify_one();
        Ok(())
    }

    /// A hook's newest delivery attempts (at most [`MAX_DELIVERIES`]), newest first.
    pub async fn webhook_deliveries(
        &self,
        auth: &AuthUser,
        team: TeamId,
        id: WebhookId,
    ) -> Result<Vec<Delivery>> {
        self.managed_hook(auth, team, id, Access::Read).await?;
        Ok(self
            .store
            .run(move |s| s.webhook_deliveries(id, MAX_DELIVERIES))
            .await?)
    }

    /// Sends a logged delivery's body again, now, with the same `webhook-id` and a fresh
    /// timestamp and signature; the new attempt is logged. The hook's cursor is untouched.
    pub async fn redeliver(
        &self,
        auth: &AuthUser,
        team: TeamId,
        id: WebhookId,
        delivery: u64,
    ) -> Result<Delivery> {
        let (hook, _) = self.managed_hook(auth, team, id, Access::Write).await?;
        let original = self
            .store
            .run(move |s| s.webhook_delivery(id, delivery))
            .await?
            .ok_or(Error::NotFound("delivery"))?;
        let mut attempt = self
            .attempt(
                &hook,
                &original.event_id,
                &original.event_type,
                original.request_body,
            )
            .await;
        attempt.kind = DeliveryKind::Redelivery;
        attempt.seq = original.seq;
        self.log_manual(id, attempt).await
    }

    /// Sends a `ping` event now and logs it.
    pub async fn ping_webhook(
        &self,
        auth: &AuthUser,
        team: TeamId,
        id: WebhookId,
    ) -> Result<Delivery> {
        let (hook, _) = self.managed_hook(auth, team, id, Access::Write).await?;
        let body = serde_json::json!({
            "type": "ping",
            "webhook_id": hook.id,
            "team_id": hook.team_id,
            "at": Utc::now(),
        })
        .to_string();
        let ping_id = format!("ping_{}", uuid::Uuid::now_v7().simple());
        let mut attempt = self.attempt(&hook, &ping_id, "ping", body).await;
        attempt.kind = DeliveryKind::Ping;
        self.log_manual(id, attempt).await
    }

    async fn log_manual(&self, id: WebhookId, attempt: Delivery) -> Result<Delivery> {
        let recorded = self
            .store
            .run(move |s| s.record_webhook_attempt(id, Some(attempt), Outcome::Manual))
            .await?;
        recorded
            .and_then(|(delivery, _)| delivery)
            .ok_or(Error::NotFound("webhook"))
    }

    /// One signed POST to the hook; the record of how it went (numbered when stored).
    async fn attempt(
        &self,
        hook: &Webhook,
        message_id: &str,
        kind: &str,
        body: String,
    ) -> Delivery {
        let at = Utc::now();
        let timestamp = at.timestamp();
        let request = Outgoing {
            url: hook.url.clone(),
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("webhook-id".into(), message_id.to_string()),
                ("webhook-timestamp".into(), timestamp.to_string()),
                (
                    "webhook-signature".into(),
                    sign(&hook.secret, message_id, timestamp, body.as_bytes()),
                ),
                (
                    "x-hub-signature-256".into(),
                    hub_signature(&hook.secret, body.as_bytes()),
                ),
                ("x-tasker-event".into(), kind.to_string()),
            ],
            body: body.clone().into_bytes(),
        };
        let started = std::time::Instant::now();
        let sent = self.egress.post(&request).await;
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let mut delivery = Delivery {
            id: 0,
            webhook_id: hook.id,
            kind: DeliveryKind::Event,
            event_id: message_id.to_string(),
            event_type: kind.to_string(),
            seq: None,
            attempt: 1,
            at,
            status: None,
            error: None,
            duration_ms,
            request_body: body,
            response_body: String::new(),
            ok: false,
        };
        match sent {
            Ok(answer) => {
                delivery.status = Some(answer.status);
                delivery.ok = (200..300).contains(&answer.status);
                delivery.response_body = stored_response(&answer.body);
                if !delivery.ok {
                    delivery.error = Some(format!("the receiver answered {}", answer.status));
                }
            }
            Err(e) => delivery.error = Some(describe(&e)),
        }
        self.metrics_note(delivery.ok);
        delivery
    }

    fn metrics_note(&self, ok: bool) {
        let counter = if ok {
            &self.webhook_counts.0
        } else {
            &self.webhook_counts.1
        };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Deliveries answered 2xx and deliveries that failed since the start (`/metrics`).
    pub fn webhook_delivery_counts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.webhook_counts.0.load(Relaxed),
            self.webhook_counts.1.load(Relaxed),
        )
    }

    /// Runs every enabled hook's delivery task until `stop` fires; `encode` gives the body of
    /// a change.
    pub async fn run_webhooks(&self, mut stop: watch::Receiver<bool>, encode: EncodeChange) {
        let mut writes = self.store.writes();
        let mut tasks: HashMap<WebhookId, (Arc<Notify>, tokio::task::JoinHandle<()>)> =
            HashMap::new();
        let mut look = tokio::time::interval(IDLE_TICK);
        // Which hooks are enabled is read at start, when a hook changes and on every tick
        // (never on every write).
        let mut reconcile = true;
        loop {
            tasks.retain(|_, (_, task)| !task.is_finished());
            if std::mem::take(&mut reconcile) {
                match self.store.run(|s| s.enabled_webhooks()).await {
                    Ok(ids) => {
                        for id in ids {
                            tasks
                                .entry(id)
                                .or_insert_with(|| self.spawn_hook(id, &stop, encode));
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "cannot list the webhooks"),
                }
            }
            for (wake, _) in tasks.values() {
                wake.notify_one();
            }
            tokio::select! {
                changed = writes.changed() => if changed.is_err() { break },
                () = self.hooks.changed.notified() => reconcile = true,
                _ = look.tick() => reconcile = true,
                _ = stop.changed() => break,
            }
        }
        for (_, (_, task)) in tasks {
            let _ = task.await;
        }
    }

    fn spawn_hook(
        &self,
        id: WebhookId,
        stop: &watch::Receiver<bool>,
        encode: EncodeChange,
    ) -> (Arc<Notify>, tokio::task::JoinHandle<()>) {
        let wake = Arc::new(Notify::new());
        let (service, stop, woken) = (self.clone(), stop.clone(), wake.clone());
        let task = tokio::spawn(async move {
            service.run_hook(id, woken, stop, encode).await;
        });
        (wake, task)
    }

    /// One hook's delivery loop: returns when the hook is gone or disabled, or on `stop`.
    async fn run_hook(
        &self,
        id: WebhookId,
        wake: Arc<Notify>,
        mut stop: watch::Receiver<bool>,
        encode: EncodeChange,
    ) {
        // What this task has read and skipped past the stored cursor.
        let mut read_to = 0;
        loop {
            let step = tokio::select! {
                step = self.hook_step(id, encode, &mut read_to) => step,
                _ = stop.changed() => return,
            };
            let wait = match step {
                Ok(Step::Again) => continue,
                Ok(Step::Done) => return,
                Ok(Step::Wait(wait)) => wait,
                Err(e) => {
                    tracing::error!(error = %e, webhook = %id, "webhook delivery failed to read or write the store");
                    IDLE_TICK
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = wake.notified() => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// One step of a hook: deliver (or skip to) the next entry, or say how long to wait.
    async fn hook_step(
        &self,
        id: WebhookId,
        encode: EncodeChange,
        read_to: &mut u64,
    ) -> Result<Step> {
        let Some((hook, state)) = self.store.run(move |s| s.webhook(id)).await? else {
            return Ok(Step::Done);
        };
        if !hook.enabled {
            return Ok(Step::Done);
        }
        let now = Utc::now();
        if let Some(due) = state.next_attempt_at
            && due > now
        {
            return Ok(Step::Wait((due - now).to_std().unwrap_or_default()));
        }
        let end = self.store.log_end();
        let position = state.cursor.max(*read_to);
        if position >= end {
            return Ok(Step::Wait(IDLE_TICK));
        }
        if end - position > MAX_LAG_ENTRIES {
            let reason = format!("it fell more than {MAX_LAG_ENTRIES} change-log entries behind");
            self.record(
                id,
                None,
                Outcome::Disabled {
                    skipped_to: position,
                    reason,
                },
            )
            .await?;
            return Ok(Step::Done);
        }
        let after = position;
        let page = self
            .store
            .run(move |s| s.changes_between(after, end, READ_BATCH))
            .await?;
        let Some(last) = page.last().map(|c| c.seq) else {
            return Ok(Step::Wait(IDLE_TICK));
        };
        let mut skipped_to = after;
        let mut next = None;
        for change in page {
            if hook.wants(&change) {
                next = Some(change);
                break;
            }
            skipped_to = change.seq;
        }
        *read_to = skipped_to;
        let Some(change) = next else {
            *read_to = last;
            if last - state.cursor >= SKIP_WRITE_EVERY {
                self.record(id, None, Outcome::Skipped { seq: last })
                    .await?;
            }
            return Ok(Step::Again);
        };
        let oldest = now
            - chrono::Duration::from_std(self.config.change_retention)
                .unwrap_or(chrono::Duration::days(7));
        if change.change.at < oldest {
            let reason = "its next event is older than the change retention".to_string();
            self.record(id, None, Outcome::Disabled { skipped_to, reason })
                .await?;
            return Ok(Step::Done);
        }
        // Entries read may be committed but not yet on disk: never tell before they are.
        self.store.flushed().await?;
        let seq = change.seq;
        let mut delivery = self
            .attempt(&hook, &event_id(seq), &event_type(&change), encode(&change))
            .await;
        delivery.seq = Some(seq);
        delivery.attempt = state.failures + 1;
        let outcome = if delivery.ok {
            Outcome::Delivered { seq }
        } else {
            match self
                .config
                .webhook_retry_schedule
                .delay_after(delivery.attempt)
            {
                Some(delay) => Outcome::Failed {
                    skipped_to,
                    retry_at: Utc::now()
                        + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::zero()),
                },
                None => Outcome::Disabled {
                    skipped_to,
                    reason: format!(
                        "{} attempts at event {} failed",
                        delivery.attempt,
                        event_id(seq)
                    ),
                },
            }
        };
        let disabled = matches!(outcome, Outcome::Disabled { .. });
        self.record(id, Some(delivery), outcome).await?;
        Ok(if disabled { Step::Done } else { Step::Again })
    }

    async fn record(
        &self,
        id: WebhookId,
        delivery: Option<Delivery>,
        outcome: Outcome,
    ) -> Result<()> {
        self.store
            .run(move |s| s.record_webhook_attempt(id, delivery, outcome))
            .await?;
        Ok(())
    }
}

/// What a hook's task does next.
enum Step {
    /// Look again at once.
    Again,
    /// Wait this long, or until woken.
    Wait(Duration),
    /// The hook is gone or disabled.
    Done,
}

/// An egress failure as the delivery log shows it.
fn describe(error: &EgressError) -> String {
    match error {
        EgressError::Refused(why) => format!("refused by the egress guard: {why}"),
        other => other.to_string(),
    }
}
