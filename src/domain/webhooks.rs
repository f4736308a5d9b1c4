//! Webhooks: a team's subscriptions to its change log, their event filters, secrets,
//! signatures (Standard Webhooks) and retry schedule.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::change::{Change, ChangeAction, EntityKind};
use super::{ProjectId, TeamId, UserId, WebhookId, access};

/// The prefix of a webhook secret (Standard Webhooks): `whsec_` + base64 of 32 random bytes.
pub const SECRET_PREFIX: &str = "whsec_";
/// The most webhooks one team may have.
pub const MAX_WEBHOOKS_PER_TEAM: usize = 20;
/// Delivery attempts kept per hook (the newest).
pub const MAX_DELIVERIES: usize = 100;
/// How much of a receiver's answer a delivery record keeps, in bytes.
pub const MAX_STORED_RESPONSE: usize = 4096;
/// How much of an answer is read at all (the guarded client's cap).
pub const MAX_READ_RESPONSE: usize = 64 << 10;
/// The longest URL accepted.
pub const URL_MAX_CHARS: usize = 2000;
/// The most event types one hook may list.
pub const MAX_EVENT_TYPES: usize = 32;
/// A hook this many change-log entries behind the log's end is disabled rather than made to
/// catch up (its receiver has been failing, or it is far slower than the team writes).
pub const MAX_LAG_ENTRIES: u64 = 100_000;

/// The entities a hook may subscribe to (invitations never reach a hook: they name an email).
pub const EVENT_ENTITIES: [&str; 6] = [
    "team",
    "membership",
    "project",
    "task",
    "comment",
    "attachment",
];
/// The actions of each entity.
pub const EVENT_ACTIONS: [&str; 3] = ["created", "updated", "deleted"];

/// A team's webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: WebhookId,
    pub team_id: TeamId,
    /// Only this project's changes, when set.
    pub project_id: Option<ProjectId>,
    pub url: String,
    /// `entity.action` names (`task.created`, `comment.*`); empty means every event.
    pub events: Vec<String>,
    /// `whsec_…`: its base64 part, decoded, keys the signatures.
    pub secret: String,
    pub enabled: bool,
    /// Why tasker disabled it (the retry schedule ran out, it fell too far behind).
    pub disabled_reason: Option<String>,
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Webhook {
    /// Whether this hook delivers `change`: its team may see it (`domain::access`), it is in
    /// the hook's project (if one), and its type is subscribed.
    pub fn wants(&self, change: &Change) -> bool {
        access::webhook_sees_change(self.team_id, self.project_id, &change.change)
            && subscribed(&self.events, &event_type(change))
    }
}

/// `task.created`: a change's event type.
pub fn event_type(change: &Change) -> String {
    let entity = match change.change.entity {
        EntityKind::Team => "team",
        EntityKind::Membership => "membership",
        EntityKind::Invitation => "invitation",
        EntityKind::Project => "project",
        EntityKind::Task => "task",
        EntityKind::Comment => "comment",
        EntityKind::Attachment => "attachment",
        EntityKind::Webhook => "webhook",
    };
    let action = match change.change.action {
        ChangeAction::Created => "created",
        ChangeAction::Updated => "updated",
        ChangeAction::Deleted => "deleted",
    };
    format!("{entity}.{action}")
}

/// Whether `event` is in `events` (empty: all; `task.*`: every task event).
pub fn subscribed(events: &[String], event: &str) -> bool {
    events.is_empty()
        || events.iter().any(|e| match e.strip_suffix(".*") {
            Some(entity) => event.split('.').next() == Some(entity),
            None => e == event,
        })
}

/// Checks and normalizes a list of event types: `entity.action`, `entity.*` or `*` (`*`, or
/// an empty list, is every event, stored as empty). Sorted, without duplicates.
pub fn parse_events(events: &[String]) -> Result<Vec<String>, String> {
    if events.len() > MAX_EVENT_TYPES {
        return Err(format!("at most {MAX_EVENT_TYPES} event types"));
    }
    let mut parsed = Vec::new();
    for event in events {
        let event = event.trim().to_ascii_lowercase();
        if event == "*" {
            return Ok(Vec::new());
        }
        let valid = event.split_once('.').is_some_and(|(entity, action)| {
            EVENT_ENTITIES.contains(&entity) && (action == "*" || EVENT_ACTIONS.contains(&action))
        });
        if !valid {
            return Err(format!(
                "'{event}' is not an event type: use entity.action with entity one of {} and \
                 action one of {} (or *), or * for all",
                EVENT_ENTITIES.join(", "),
                EVENT_ACTIONS.join(", ")
            ));
        }
        parsed.push(event);
    }
    parsed.sort();
    parsed.dedup();
    Ok(parsed)
}

/// Checks a hook's URL's shape (the egress guard judges where it points).
pub fn parse_url(url: &str) -> Result<String, String> {
    let url = url.trim();
    if url.is_empty() {
        return Err("is required".into());
    }
    if url.chars().count() > URL_MAX_CHARS {
        return Err(format!("must be at most {URL_MAX_CHARS} characters"));
    }
    Ok(url.to_string())
}

/// A new secret from 32 random bytes: `whsec_` + their base64.
pub fn new_secret(bytes: [u8; 32]) -> String {
    format!("{SECRET_PREFIX}{}", BASE64.encode(bytes))
}

/// The key a secret signs with: the bytes its base64 part decodes to (Standard Webhooks);
/// the whole text for a secret that is not `whsec_` base64.
pub fn secret_key(secret: &str) -> Vec<u8> {
    secret
        .strip_prefix(SECRET_PREFIX)
        .and_then(|b64| BASE64.decode(b64).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// `webhook-signature`: `v1,` + base64 of HMAC-SHA256(secret key, `{id}.{timestamp}.{body}`).
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let stamp = timestamp.to_string();
    let mac = hmac_sha256(
        &secret_key(secret),
        &[id.as_bytes(), b".", stamp.as_bytes(), b".", body],
    );
    format!("v1,{}", BASE64.encode(mac))
}

/// `X-Hub-Signature-256` (GitHub style): `sha256=` + hex HMAC-SHA256 of the body, keyed by
/// the whole secret text as GitHub-style receivers are configured with it.
pub fn hub_signature(secret: &str, body: &[u8]) -> String {
    let mac = hmac_sha256(secret.as_bytes(), &[body]);
    let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// `webhook-id` of a change-log event: the same for every attempt and redelivery of it, so
/// receivers can drop duplicates.
pub fn event_id(seq: u64) -> String {
    format!("msg_{seq}")
}

/// Where a hook's delivery stands: durable, so a restart resumes exactly here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryState {
    /// Every change-log entry up to here is delivered (or not for this hook).
    pub cursor: u64,
    /// Failed attempts at the entry after the cursor.
    pub failures: u32,
    /// When the next attempt is due (a retry's wait); none: now.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Delivery records written so far (the next one's number).
    pub deliveries: u64,
}

/// What a delivery record was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryKind {
    /// A change-log event, by the delivery worker.
    Event,
    /// A redelivery asked for by a person.
    Redelivery,
    /// A ping asked for by a person.
    Ping,
}

/// One attempt, as the delivery log shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Numbered per hook from 1.
    pub id: u64,
    pub webhook_id: WebhookId,
    pub kind: DeliveryKind,
    /// `webhook-id`.
    pub event_id: String,
    /// `task.created`, or `ping`.
    pub event_type: String,
    /// The change-log entry delivered (none for a ping).
    pub seq: Option<u64>,
    /// 1 for the first attempt at an event, 2 for its first retry...
    pub attempt: u32,
    pub at: DateTime<Utc>,
    /// The receiver's status; none when no answer came.
    pub status: Option<u16>,
    /// Why no answer came, or why it did not count.
    pub error: Option<String>,
    pub duration_ms: u64,
    pub request_body: String,
    /// At most [`MAX_STORED_RESPONSE`] bytes of the answer.
    pub response_body: String,
    pub ok: bool,
}

/// The answer's body as a delivery record keeps it: at most [`MAX_STORED_RESPONSE`] bytes,
/// cut at a character boundary, lossy UTF-8.
pub fn stored_response(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX_STORED_RESPONSE)]);
    text.into_owned()
}

/// When a delivery is attempted (`--webhook-retry-schedule`), as waits after the previous
/// attempt: the first entry is the first attempt, at once (it must be 0s), each later one the
/// wait before the next retry. When the last attempt fails the hook is disabled. The default,
/// `0s,5s,5m,30m,2h,5h,10h,10h`, is Standard Webhooks' (eight attempts over about 28 hours).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

impl RetrySchedule {
    /// A comma-separated list of durations (`0s,5s,5m,30m,2h,5h,10h,10h`), 1 to 20 of them,
    /// the first 0s, each at most a day.
    pub fn parse(text: &str) -> Result<Self, String> {
        let delays = text
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(|d| {
                let delay = humantime::parse_duration(d)
                    .map_err(|e| format!("'{d}': {e} (use e.g. 0s,5s,5m,2h)"))?;
                if delay > Duration::from_secs(24 * 3600) {
                    return Err(format!("'{d}': a retry waits at most 24h"));
                }
                Ok(delay)
            })
            .collect::<Result<Vec<_>, String>>()?;
        if delays.is_empty() || delays.len() > 20 {
            return Err("give 1 to 20 delays, e.g. 0s,5s,5m,30m,2h,5h,10h,10h".into());
        }
        if delays[0] != Duration::ZERO {
            return Err("the first attempt is at once: start the list with 0s".into());
        }
        Ok(Self(delays))
    }

    /// The wait before the next attempt after `failures` failed ones, or `None` when the
    /// schedule has run out and the hook is to be disabled.
    pub fn delay_after(&self, failures: u32) -> Option<Duration> {
        self.0.get(usize::try_from(failures).ok()?).copied()
    }

    /// How many attempts a delivery gets in all.
    pub fn attempts(&self) -> usize {
        self.0.len()
    }
}

impl std::fmt::Display for RetrySchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let delays: Vec<String> = self
            .0
            .iter()
            .map(|d| humantime::format_duration(*d).to_string())
            .collect();
        f.write_str(&delays.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_parses_and_runs_out() {
        let s = RetrySchedule::parse("0s, 5s,5m").unwrap();
        assert_eq!(s.delay_after(1), Some(Duration::from_secs(5)));
        assert_eq!(s.delay_after(2), Some(Duration::from_secs(300)));
        assert_eq!(s.delay_after(3), None);
        assert_eq!(s.attempts(), 3);
        assert!(RetrySchedule::parse("").is_err());
        assert!(RetrySchedule::parse("5s,5m").is_err());
        assert!(RetrySchedule::parse("5x").is_err());
        assert!(RetrySchedule::parse("2d").is_err());
    }

    #[test]
    fn event_types_parse_and_match() {
        let events = parse_events(&["task.created".into(), "comment.*".into()]).unwrap();
        assert!(subscribed(&events, "task.created"));
        assert!(subscribed(&events, "comment.deleted"));
        assert!(!subscribed(&events, "task.updated"));
        assert!(
            parse_events(&["*".into(), "task.created".into()])
                .unwrap()
                .is_empty()
        );
        assert!(parse_events(&["invitation.created".into()]).is_err());
        assert!(parse_events(&["task".into()]).is_err());
        assert!(subscribed(&[], "anything.at_all"));
    }

    /// The example of the Standard Webhooks specification.
    #[test]
    fn signatures_follow_standard_webhooks() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let signature = sign(
            secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let secret = new_secret([7; 32]);
        assert!(secret.starts_with(SECRET_PREFIX));
        assert_eq!(secret_key(&secret), vec![7; 32]);
        assert!(hub_signature(&secret, b"x").starts_with("sha256="));
    }
}
