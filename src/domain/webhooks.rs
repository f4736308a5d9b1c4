//! Webhooks: a team's subscriptions to its change log, their event filters, secrets,
//! signatures (Standard Webhooks) and retry schedule.

use std::time::Duration;

/// How long a failing delivery waits before each attempt (`--webhook-retry-schedule`): the
/// first entry is the wait before the first retry after a failure; after the last attempt
/// fails the hook is disabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

impl RetrySchedule {
    /// A comma-separated list of durations (`0s,5s,5m,30m,2h,5h,10h,10h`), 1 to 20 of them,
    /// each at most a day.
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
        Ok(Self(delays))
    }

    /// The wait before retry number `failures` (1 = after the first failure), or `None` when
    /// the schedule has run out and the hook is to be disabled.
    pub fn delay_after(&self, failures: u32) -> Option<Duration> {
        let index = usize::try_from(failures).ok()?.checked_sub(1)?;
        self.0.get(index).copied()
    }

    /// How many attempts a delivery gets in all (the first and one per delay).
    pub fn attempts(&self) -> usize {
        self.0.len() + 1
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
