//! Reminders and a user's notification preferences: when a due date reminds whom, the daily
//! digest, and how each notification kind is delivered. Pure rules; the schedule lives in
//! `store/reminders.rs`, the worker that fires it in `service/reminders.rs`.
//!
//! **Times.** Every fire time is computed in the user's time zone and stored as UTC. A task
//! due at a time reminds (each optional) at `morning_hour` on its due day, at the due time,
//! and `lead_minutes` before it. A task due on a whole day (see
//! [`super::calendar::due_day`]) reminds at `morning_hour` on that day, and its lead times
//! count back from that morning.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::calendar::due_day;
use super::notification::NotificationKind;

/// The most lead times a user may set.
pub const MAX_LEAD_TIMES: usize = 5;
/// The longest lead time: 14 days, in minutes.
pub const MAX_LEAD_MINUTES: u32 = 14 * 24 * 60;
/// A reminder the server missed (it was down) still fires at start within this window;
/// older ones are dropped without a message.
pub const MISSED_WINDOW: Duration = Duration::hours(12);
/// The longest an ntfy topic URL may be.
pub const NTFY_URL_MAX_CHARS: usize = 500;

/// Every notification kind, in the order the settings page lists them.
pub const NOTIFICATION_KINDS: [NotificationKind; 10] = [
    NotificationKind::TaskAssigned,
    NotificationKind::TaskUnassigned,
    NotificationKind::TaskUpdated,
    NotificationKind::TaskDeleted,
    NotificationKind::CommentAdded,
    NotificationKind::AttachmentAdded,
    NotificationKind::TeamInvited,
    NotificationKind::InvitationAccepted,
    NotificationKind::MemberRemoved,
    NotificationKind::WebhookDisabled,
];

/// How notifications of one kind reach a user besides the inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Only in the inbox (and the real-time feed).
    #[default]
    InApp,
    /// An email (and a push, with a topic) at once.
    Email,
    /// Listed in the next daily digest.
    Digest,
}

impl Delivery {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "in_app" => Ok(Delivery::InApp),
            "email" => Ok(Delivery::Email),
            "digest" => Ok(Delivery::Digest),
            other => Err(format!(
                "unknown delivery {other:?}: use in_app, email or digest"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::InApp => "in_app",
            Delivery::Email => "email",
            Delivery::Digest => "digest",
        }
    }
}

/// A time zone by its IANA name (`Europe/Paris`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeZoneName(Tz);

impl TimeZoneName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        raw.trim().parse::<Tz>().map(Self).map_err(|_| {
            format!("unknown time zone {raw:?}: use an IANA name such as Europe/Paris")
        })
    }

    pub fn tz(self) -> Tz {
        self.0
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }
}

impl Default for TimeZoneName {
    fn default() -> Self {
        Self(Tz::UTC)
    }
}

impl Serialize for TimeZoneName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for TimeZoneName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// An hour of the day, 0 to 23.
pub fn parse_hour(raw: i64) -> Result<u8, String> {
    u8::try_from(raw)
        .ok()
        .filter(|h| *h < 24)
        .ok_or_else(|| "must be an hour from 0 to 23".to_string())
}

/// A minute of the hour, 0 to 59.
pub fn parse_minute(raw: i64) -> Result<u8, String> {
    u8::try_from(raw)
        .ok()
        .filter(|m| *m < 60)
        .ok_or_else(|| "must be a minute from 0 to 59".to_string())
}

/// Up to [`MAX_LEAD_TIMES`] lead times of 1 minute to 14 days, sorted, duplicates removed.
pub fn parse_lead_minutes(raw: &[i64]) -> Result<Vec<u32>, String> {
    if raw.len() > MAX_LEAD_TIMES {
        return Err(format!("at most {MAX_LEAD_TIMES} lead times"));
    }
    let mut leads = Vec::with_capacity(raw.len());
    for minutes in raw {
        match u32::try_from(*minutes) {
            Ok(m) if (1..=MAX_LEAD_MINUTES).contains(&m) => leads.push(m),
            _ => {
                return Err(format!(
                    "each lead time must be 1 to {MAX_LEAD_MINUTES} minutes"
                ));
            }
        }
    }
    leads.sort_unstable();
    leads.dedup();
    Ok(leads)
}

/// A user's reminder and notification settings. Every field has a default, so a user who
/// never saved any has them all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Preferences {
    pub time_zone: TimeZoneName,
    /// Remind on the morning of the due day at this local hour; `None`: no morning reminder.
    pub morning_hour: Option<u8>,
    /// Remind at the due time of a task due at a time.
    pub at_due_time: bool,
    /// Also remind this many minutes before (sorted).
    pub lead_minutes: Vec<u32>,
    /// Send reminders by email (the push goes out whenever a topic is set).
    pub email_reminders: bool,
    /// The daily digest at this local hour; `None`: no digest.
    pub digest_hour: Option<u8>,
    /// ... and this minute of it (0 unless set through the API).
    pub digest_minute: u8,
    /// How each notification kind is delivered; a kind not listed is `in_app`.
    pub kinds: BTreeMap<NotificationKind, Delivery>,
    /// The ntfy topic URL pushes go to, checked against the allowed hosts when saved.
    pub ntfy_url: Option<String>,
}

impl Default for Preferences {
    fn default() -> Self {
        Self {
            time_zone: TimeZoneName::default(),
            morning_hour: Some(8),
            at_due_time: true,
            lead_minutes: Vec::new(),
            email_reminders: true,
            digest_hour: None,
            digest_minute: 0,
            kinds: BTreeMap::new(),
            ntfy_url: None,
        }
    }
}

impl Preferences {
    pub fn delivery(&self, kind: NotificationKind) -> Delivery {
        self.kinds.get(&kind).copied().unwrap_or_default()
    }

    /// Whether a change from `self` to `other` moves any scheduled time (the schedule is
    /// recomputed only then).
    pub fn schedule_differs(&self, other: &Preferences) -> bool {
        (
            self.time_zone,
            self.morning_hour,
            self.at_due_time,
            &self.lead_minutes,
            self.digest_hour,
            self.digest_minute,
        ) != (
            other.time_zone,
            other.morning_hour,
            other.at_due_time,
            &other.lead_minutes,
            other.digest_hour,
            other.digest_minute,
        )
    }

    /// Whether any reminder would reach the user at all (by email or push).
    pub fn reminds(&self) -> bool {
        self.email_reminders || self.ntfy_url.is_some()
    }

    /// The fire times of a task due at `due`, earliest first, duplicates merged (the first
    /// kind wins).
    pub fn task_reminders(&self, due: DateTime<Utc>) -> Vec<(DateTime<Utc>, ReminderKind)> {
        let tz = self.time_zone.tz();
        let mut times = Vec::new();
        let (day, timed) = match due_day(due) {
            Some(day) => (day, false),
            None => (due.with_timezone(&tz).date_naive(), true),
        };
        let morning = self.morning_hour.and_then(|h| local_time(tz, day, h));
        if let Some(at) = morning.filter(|at| !timed || *at < due) {
            times.push((at, ReminderKind::Morning));
        }
        if timed && self.at_due_time {
            times.push((due, ReminderKind::DueTime));
        }
        // A whole day's lead times count back from its morning (midnight without one).
        let anchor = if timed {
            Some(due)
        } else {
            morning.or_else(|| local_time(tz, day, 0))
        };
        if let Some(anchor) = anchor {
            for minutes in &self.lead_minutes {
                let at = anchor - Duration::minutes(i64::from(*minutes));
                times.push((at, ReminderKind::Lead(*minutes)));
            }
        }
        times.sort_by_key(|(at, _)| *at);
        times.dedup_by_key(|(at, _)| *at);
        times
    }

    /// The next digest after `now`, if the digest is on.
    pub fn next_digest(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let hour = self.digest_hour?;
        let tz = self.time_zone.tz();
        let today = now.with_timezone(&tz).date_naive();
        let minutes = Duration::minutes(i64::from(self.digest_minute.min(59)));
        (0..3)
            .filter_map(|d| local_time(tz, today + Duration::days(d), hour))
            .map(|at| at + minutes)
            .find(|at| *at > now)
    }

    /// The end (exclusive) of the local day holding `now`: the digest lists what is due
    /// before it.
    pub fn end_of_day(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let tz = self.time_zone.tz();
        let tomorrow = now.with_timezone(&tz).date_naive() + Duration::days(1);
        local_time(tz, tomorrow, 0).unwrap_or(now + Duration::days(1))
    }

    /// `at` as the user reads it: `Mon 30 Nov 2026, 14:05 (Europe/Paris)`, or the day alone
    /// for a whole-day due date.
    pub fn show_due(&self, due: DateTime<Utc>) -> String {
        match due_day(due) {
            Some(day) => day.format("%a %-d %b %Y").to_string(),
            None => format!(
                "{} ({})",
                due.with_timezone(&self.time_zone.tz())
                    .format("%a %-d %b %Y, %H:%M"),
                self.time_zone.name()
            ),
        }
    }
}

/// `hour:00` on `day` in `tz`, as UTC; the earlier of two in a fold, the first hour after a
/// gap.
fn local_time(tz: Tz, day: NaiveDate, hour: u8) -> Option<DateTime<Utc>> {
    let time = NaiveTime::from_hms_opt(u32::from(hour), 0, 0)?;
    let local = day.and_time(time);
    tz.from_local_datetime(&local)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(local + Duration::hours(1)))
                .earliest()
        })
        .map(|at| at.with_timezone(&Utc))
}

/// What a schedule entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReminderKind {
    /// The morning of the due day.
    Morning,
    /// At the due time.
    DueTime,
    /// The daily digest (not about one task).
    Digest,
    /// A notification to email at once (its subject is the notification's seq).
    Notice,
    /// This many minutes before.
    Lead(u32),
}

impl ReminderKind {
    /// Its code in the schedule's keys.
    pub fn code(self) -> u32 {
        match self {
            ReminderKind::Morning => 0,
            ReminderKind::DueTime => 1,
            ReminderKind::Digest => 2,
            ReminderKind::Notice => 3,
            ReminderKind::Lead(m) => 100 + m,
        }
    }

    pub fn from_code(code: u32) -> Option<Self> {
        match code {
            0 => Some(ReminderKind::Morning),
            1 => Some(ReminderKind::DueTime),
            2 => Some(ReminderKind::Digest),
            3 => Some(ReminderKind::Notice),
            c if c > 100 => Some(ReminderKind::Lead(c - 100)),
            _ => None,
        }
    }
}

/// What an unsubscribe link turns off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailTopic {
    /// Due-date reminder emails.
    Reminders,
    /// The daily digest.
    Digest,
    /// Emails for one notification kind (it goes back to in-app only).
    Kind(NotificationKind),
}

impl MailTopic {
    /// Its name in tokens.
    pub fn name(self) -> String {
        match self {
            MailTopic::Reminders => "reminders".into(),
            MailTopic::Digest => "digest".into(),
            MailTopic::Kind(kind) => format!("kind:{}", kind_name(kind)),
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "reminders" => Some(MailTopic::Reminders),
            "digest" => Some(MailTopic::Digest),
            other => {
                let kind = other.strip_prefix("kind:")?;
                NOTIFICATION_KINDS
                    .into_iter()
                    .find(|k| kind_name(*k) == kind)
                    .map(MailTopic::Kind)
            }
        }
    }

    /// What a confirmation page says was turned off.
    pub fn describe(self) -> String {
        match self {
            MailTopic::Reminders => "due-date reminder emails".into(),
            MailTopic::Digest => "the daily digest".into(),
            MailTopic::Kind(kind) => format!("emails for \"{}\" notifications", kind_label(kind)),
        }
    }

    /// Turns the topic off in `prefs`.
    pub fn turn_off(self, prefs: &mut Preferences) {
        match self {
            MailTopic::Reminders => prefs.email_reminders = false,
            MailTopic::Digest => prefs.digest_hour = None,
            MailTopic::Kind(kind) => {
                prefs.kinds.remove(&kind);
            }
        }
    }
}

/// A kind's snake_case name, as the API spells it.
pub fn kind_name(kind: NotificationKind) -> &'static str {
    match kind {
        NotificationKind::TaskAssigned => "task_assigned",
        NotificationKind::TaskUnassigned => "task_unassigned",
        NotificationKind::TaskUpdated => "task_updated",
        NotificationKind::TaskDeleted => "task_deleted",
        NotificationKind::CommentAdded => "comment_added",
        NotificationKind::AttachmentAdded => "attachment_added",
        NotificationKind::TeamInvited => "team_invited",
        NotificationKind::InvitationAccepted => "invitation_accepted",
        NotificationKind::MemberRemoved => "member_removed",
        NotificationKind::WebhookDisabled => "webhook_disabled",
    }
}

/// A kind as the settings page and emails name it.
pub fn kind_label(kind: NotificationKind) -> &'static str {
    match kind {
        NotificationKind::TaskAssigned => "You were assigned to a task",
        NotificationKind::TaskUnassigned => "You were taken off a task",
        NotificationKind::TaskUpdated => "A task of yours changed",
        NotificationKind::TaskDeleted => "A task of yours was deleted",
        NotificationKind::CommentAdded => "A comment on a task of yours",
        NotificationKind::AttachmentAdded => "A file attached to a task of yours",
        NotificationKind::TeamInvited => "You were invited to a team",
        NotificationKind::InvitationAccepted => "Someone accepted your invitation",
        NotificationKind::MemberRemoved => "You were removed from a team",
        NotificationKind::WebhookDisabled => "A webhook you made was disabled",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn paris() -> Preferences {
        Preferences {
            time_zone: TimeZoneName::parse("Europe/Paris").unwrap(),
            lead_minutes: vec![60],
            ..Preferences::default()
        }
    }

    #[test]
    fn a_timed_due_date_reminds_in_the_morning_before_and_at_the_time_in_the_users_zone() {
        let times = paris().task_reminders(at("2026-12-01T14:30:00Z"));
        assert_eq!(
            times,
            vec![
                (at("2026-12-01T07:00:00Z"), ReminderKind::Morning),
                (at("2026-12-01T13:30:00Z"), ReminderKind::Lead(60)),
                (at("2026-12-01T14:30:00Z"), ReminderKind::DueTime),
            ]
        );
    }

    #[test]
    fn a_whole_day_reminds_that_morning_and_counts_leads_from_it() {
        let times = paris().task_reminders(at("2026-12-01T23:59:59Z"));
        assert_eq!(
            times,
            vec![
                (at("2026-12-01T06:00:00Z"), ReminderKind::Lead(60)),
                (at("2026-12-01T07:00:00Z"), ReminderKind::Morning),
            ]
        );
    }

    #[test]
    fn a_due_time_before_the_morning_hour_has_no_morning_reminder() {
        let times = paris().task_reminders(at("2026-12-01T06:00:00Z"));
        assert!(times.iter().all(|(_, k)| *k != ReminderKind::Morning));
    }

    #[test]
    fn the_next_digest_is_the_next_local_hour() {
        let prefs = Preferences {
            digest_hour: Some(7),
            ..paris()
        };
        assert_eq!(
            prefs.next_digest(at("2026-12-01T05:00:00Z")),
            Some(at("2026-12-01T06:00:00Z"))
        );
        assert_eq!(
            prefs.next_digest(at("2026-12-01T06:00:00Z")),
            Some(at("2026-12-02T06:00:00Z"))
        );
    }

    #[test]
    fn bad_input_is_refused() {
        assert!(TimeZoneName::parse("Mars/Olympus").is_err());
        assert!(parse_hour(24).is_err() && parse_hour(-1).is_err());
        assert_eq!(parse_lead_minutes(&[60, 15, 60]).unwrap(), vec![15, 60]);
        assert!(parse_lead_minutes(&[0]).is_err());
        assert!(MailTopic::parse("kind:task_assigned").is_some());
        assert!(MailTopic::parse("kind:nope").is_none());
    }
}
