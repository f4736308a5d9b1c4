//! The real-time feed (DESIGN.md section 4): subscribing from an optional position, the
//! replay of what was missed, and the dispatcher that feeds live connections.
//!
//! Every frame has a position ([`Cursor`]: its `seq` and its slot within that `seq`), and a
//! client resumes after the position of the last frame it handled: it is sent exactly the
//! frames after it, whichever kind that last frame was. A connection without a position
//! starts live, from where the log is when it connects.
//!
//! What a replay costs is bounded before it starts. It reads every entry after the position
//! (and judges each for the viewer), so a connection more than `--replay-budget` entries
//! behind gets `reset` at once, having read nothing: the log's `seq` has no gaps inside the
//! retained window, so the entries a replay would read are known from the position and the
//! subscription's own alone. Within the budget, the replay reads in steps of
//! [`REPLAY_BATCH`] entries on the blocking pool, and at most [`replay_slots`] steps of all
//! connections run at once (in turn, first come first served): however many clients replay
//! together, they share those slots, and the other requests keep the rest of the machine.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::Utc;

use super::{AuthError, AuthUser, Error, Result, Service};
use crate::domain::access::Rewind;
use crate::domain::{ProjectId, TeamId};
use crate::events::{Cursor, Event, Refused, Subscription, TokenLimit, Viewer};

/// What a personal access token's connection may be sent (`None` for a session).
fn token_limit(auth: &AuthUser) -> Option<TokenLimit> {
    auth.token.as_ref().map(|grant| TokenLimit {
        scopes: grant.scopes,
        teams: grant.teams.clone(),
    })
}

/// How a new connection starts.
pub enum Start {
    /// Nothing to replay: live from the subscription's position.
    Live,
    /// Replay the frames after this position, up to the end of the subscription's position
    /// (the log is read from `after.done_through()`, and the frames at or before `after`
    /// of its first `seq` are not sent again).
    Replay { after: Cursor },
    /// The position is out of the retained window, more than the replay budget behind, or
    /// from the future: refetch, then live. The reset frame's own position is the end of the
    /// subscription's position ([`Cursor::end_of`]).
    Reset,
}

/// A subscribed connection: where it starts, who it is, and its live queue.
pub struct Feed {
    pub start: Start,
    pub viewer: Viewer,
    pub subscription: Subscription,
}

/// How often live connections are checked for sessions and access tokens that expired
/// (revocations are noticed at once).
const SESSION_CHECK: std::time::Duration = std::time::Duration::from_secs(60);

/// How many of a user's own membership entries one step of rebuilding their teams reads. A
/// replay pages through all of them, however many (it once read only the oldest 10,000 and so
/// missed a later join: issue 12). Small, so the regression test exceeds it cheaply; a replay
/// is rare and each page is one short read.
pub const MEMBERSHIP_PAGE: usize = 100;

/// How many entries one replay step reads.
const REPLAY_BATCH: usize = 500;

/// How many replay steps may run at once, across all connections: half the cores, at least
/// one. A step is one short read on the blocking pool; waiting for a slot costs a replaying
/// client a little latency instead of costing everyone else their CPU.
pub(super) fn replay_slots() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

impl Service {
    /// Registers a connection for the caller. `after` asks for every frame after that
    /// position (none: live); `projects` narrows changes to those projects.
    pub async fn subscribe(
        &self,
        auth: &AuthUser,
        after: Option<Cursor>,
        projects: Option<Vec<ProjectId>>,
    ) -> Result<Feed> {
        let projects: Option<HashSet<ProjectId>> = projects.map(|p| p.into_iter().collect());
        let subscription = self
            .hub
            .subscribe(
                &self.store,
                auth.user_id,
                auth.session_id,
                projects.clone(),
                token_limit(auth),
            )
            .await
            .map_err(|refused| match refused {
                Refused::SessionGone => Error::from(AuthError::SessionRevoked),
                Refused::Store(e) => Error::Internal(e),
            })?;
        let position = subscription.position;
        let start = match after {
            None => Start::Live,
            // Past the end of the log: not a position this log gave.
            Some(after) if after.seq > position => Start::Reset,
            Some(after) => {
                let since = after.done_through();
                if since == position {
                    Start::Live
                } else if position - since > self.config.replay_budget {
                    // Further behind than a replay may read: nothing is read, the client
                    // refetches.
                    Start::Reset
                } else {
                    let oldest = Utc::now()
                        - chrono::Duration::from_std(self.config.change_retention)
                            .unwrap_or(chrono::Duration::days(7));
                    let next = self.store.run(move |s| s.change(since + 1)).await?;
                    match next {
                        Some(change) if change.change.at >= oldest => Start::Replay { after },
                        _ => Start::Reset,
                    }
                }
            }
        };
        // The replay sees each entry as the user could then: their teams as of where it
        // starts reading, which are today's with every one of their own membership changes
        // since undone.
        let mut teams = subscription.teams.clone();
        if let Start::Replay { after } = start {
            teams = self
                .teams_at(auth, after.done_through(), position, teams)
                .await?;
        }
        let viewer = Viewer {
            limit: token_limit(auth),
            ..Viewer::new(auth.user_id, teams, projects)
        };
        Ok(Feed {
            start,
            viewer,
            subscription,
        })
    }

    /// The caller's teams just after `since`, given `later`, their teams at `position`: their
    /// own membership entries in between are read page by page, all of them, and rewound.
    async fn teams_at(
        &self,
        auth: &AuthUser,
        since: u64,
        position: u64,
        later: HashSet<TeamId>,
    ) -> Result<HashSet<TeamId>> {
        let me = auth.user_id;
        let mut rewind = Rewind::new(me);
        let mut after = since;
        while after < position {
            let page = self
                .store
                .run(move |s| s.changes_of_entity(me.as_u128(), Some(after), MEMBERSHIP_PAGE))
                .await?;
            for change in page.iter().take_while(|c| c.seq <= position) {
                rewind.entry(&change.change);
            }
            match page.last() {
                Some(last) if page.len() == MEMBERSHIP_PAGE => after = last.seq,
                _ => break,
            }
        }
        Ok(rewind.teams(later))
    }

    /// The next events a connection missed: of the entries after `after`, up to `upto`, those
    /// `viewer` may see (its changes and its own notifications, in position order). Returns them and where
    /// the next step starts; done when that is `upto`. One step reads at most
    /// [`REPLAY_BATCH`] entries, on the blocking pool, holding one of the replay slots.
    pub async fn replay(
        &self,
        viewer: &mut Viewer,
        after: u64,
        upto: u64,
    ) -> Result<(Vec<Event>, u64)> {
        // The semaphore is never closed, so a slot always comes.
        let _slot = self.replays.acquire().await.ok();
        let user = viewer.user();
        let (changes, notifications, reached) = self
            .store
            .run(move |s| {
                let changes = s.changes_between(after, upto, REPLAY_BATCH)?;
                let reached = if changes.len() < REPLAY_BATCH {
                    upto
                } else {
                    changes.last().map_or(upto, |c| c.seq)
                };
                // At most one per `seq` (they are keyed by user and seq): bounded by the step.
                let notifications =
                    s.notifications_of_user_between(user, after, reached, usize::MAX)?;
                Ok::<_, crate::store::StoreError>((changes, notifications, reached))
            })
            .await?;
        let mut notifications = notifications.into_iter().peekable();
        let mut events = Vec::new();
        for change in changes {
            let seq = change.seq;
            if viewer.read(&change) {
                events.push(Event::Change(Arc::new(change)));
            }
            while let Some(n) = notifications.next_if(|n| n.seq <= seq) {
                if viewer.hears(&n) {
                    events.push(Event::Notification(Arc::new(n)));
                }
            }
        }
        events.extend(
            notifications
                .filter(|n| viewer.hears(n))
                .map(|n| Event::Notification(Arc::new(n))),
        );
        Ok((events, reached))
    }

    /// Where a connection that asks for nothing older starts: the newest `seq` now.
    pub async fn feed_start(&self) -> Result<u64> {
        Ok(self.store.run(|s| s.last_seq()).await?)
    }

    /// Closes every live connection (graceful shutdown).
    pub async fn close_feed(&self) {
        self.hub.close_all().await;
    }

    pub async fn unsubscribe(&self, id: u64) {
        self.hub.unsubscribe(id).await;
    }

    /// Feeds live connections from the change log until `stop` fires: woken by every durable
    /// write, it dispatches what is new.
    pub async fn run_feed(&self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut writes = self.store.writes();
        let mut expiry = tokio::time::interval(SESSION_CHECK);
        expiry.tick().await;
        loop {
            if let Err(e) = self.hub.dispatch(&self.store).await {
                tracing::error!(error = %e, "the real-time feed could not read the change log");
            }
            tokio::select! {
                changed = writes.changed() => if changed.is_err() { return },
                _ = expiry.tick() => {
                    if let Err(e) = self.hub.check_sessions(&self.store).await {
                        tracing::error!(error = %e, "the real-time feed could not check sessions");
                    }
                }
                _ = stop.changed() => return,
            }
        }
    }
}
