use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::Utc;
use tokio::sync::{Mutex, mpsc};

use crate::domain::access::LogReader;
use crate::domain::change::Change;
use crate::domain::notification::Notification;
use crate::domain::scope::{Access, Area, Scopes};
use crate::domain::{ProjectId, SessionId, TeamId, UserId};
use crate::store::{Store, StoreError};

use super::Cursor;

/// How many change-log entries one dispatch step reads.
const BATCH: usize = 500;

/// Why a subscription was refused.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("the session was signed out or revoked")]
    SessionGone,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One message for a client.
#[derive(Debug, Clone)]
pub enum Event {
    Change(Arc<Change>),
    Notification(Arc<Notification>),
}

impl Event {
    pub fn seq(&self) -> u64 {
        match self {
            Event::Change(c) => c.seq,
            Event::Notification(n) => n.seq,
        }
    }

    /// Its position in the feed: a client that handled it resumes after it.
    pub fn cursor(&self) -> Cursor {
        match self {
            Event::Change(c) => Cursor::new(c.seq, Cursor::CHANGE),
            Event::Notification(n) => Cursor::new(n.seq, Cursor::NOTIFICATION),
        }
    }
}

/// Why a connection's queue was closed by the hub.
#[derive(Debug, Default)]
pub struct Ending {
    /// It fell behind: its queue was full.
    pub overflowed: AtomicBool,
    /// Its session was signed out or revoked.
    pub revoked: AtomicBool,
}

/// A connection's side of the hub.
pub struct Subscription {
    pub id: u64,
    /// Everything up to here comes from a replay; the queue starts after it.
    pub position: u64,
    pub events: mpsc::Receiver<Event>,
    pub ending: Arc<Ending>,
    /// The user's teams when subscribing (the replay's visibility).
    pub teams: HashSet<TeamId>,
}

/// Who a connection is and what it wants: the reader of the change log it stands for (whose
/// visibility `domain::access` decides, following the user's own joins and departures as
/// entries pass) and its `?projects=` filter.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub reader: LogReader,
    /// `?projects=`: only changes of these projects.
    pub projects: Option<HashSet<ProjectId>>,
    /// For a personal access token: what its scopes and team limit let it see.
    pub limit: Option<TokenLimit>,
}

/// What a personal access token's connection may be sent: entries of the areas it may read,
/// in the teams it is limited to (if it is).
#[derive(Debug, Clone)]
pub struct TokenLimit {
    pub scopes: Scopes,
    pub teams: Option<Arc<[TeamId]>>,
}

impl TokenLimit {
    fn reaches(&self, team: Option<TeamId>) -> bool {
        match (&self.teams, team) {
            (None, _) => true,
            (Some(teams), Some(team)) => teams.contains(&team),
            (Some(_), None) => false,
        }
    }

    /// Whether a change of this kind, in this team, is for this token.
    fn admits(&self, change: &crate::domain::change::NewChange) -> bool {
        use crate::domain::change::EntityKind;
        let area = match change.entity {
            EntityKind::Team
            | EntityKind::Membership
            | EntityKind::Invitation
            | EntityKind::Webhook => Area::Teams,
            EntityKind::Project => Area::Projects,
            EntityKind::Task => Area::Tasks,
            EntityKind::Comment => Area::Comments,
            EntityKind::Attachment => Area::Attachments,
        };
        self.scopes.allows(area, Access::Read) && self.reaches(change.team_id)
    }
}

impl Viewer {
    pub fn new(user: UserId, teams: HashSet<TeamId>, projects: Option<HashSet<ProjectId>>) -> Self {
        Self {
            reader: LogReader::new(user, teams),
            projects,
            limit: None,
        }
    }

    /// Whether this viewer is sent `notification` (one of its user's own).
    pub fn hears(&self, notification: &Notification) -> bool {
        self.limit.as_ref().is_none_or(|limit| {
            limit.scopes.allows(Area::Notifications, Access::Read)
                && limit.reaches(notification.team_id)
        })
    }

    pub fn user(&self) -> UserId {
        self.reader.user
    }

    /// Whether this viewer may see `change` (and wants to, given its project filter).
    pub fn sees(&self, change: &Change) -> bool {
        let c = &change.change;
        if self.limit.as_ref().is_some_and(|limit| !limit.admits(c)) {
            return false;
        }
        if let Some(projects) = &self.projects {
            let mut scope = c.project_id.into_iter().chain(c.previous_project_id);
            if !scope.any(|p| projects.contains(&p)) {
                return false;
            }
        }
        self.reader.sees(c)
    }

    /// Reads one entry in log order ([`LogReader::read`]): whether it is delivered.
    pub fn read(&mut self, change: &Change) -> bool {
        self.reader.enter(&change.change);
        let seen = self.sees(change);
        self.reader.leave(&change.change);
        seen
    }
}

struct Connection {
    viewer: Viewer,
    session: SessionId,
    queue: mpsc::Sender<Event>,
    ending: Arc<Ending>,
}

impl Connection {
    /// Queues the events of one `seq` together (in slot order: the change, then the
    /// notification), or none of them; false when the connection must go (its queue is full,
    /// or it is gone). A client resumes after the position of the last frame it handled, so
    /// a connection cut between the two frames of one `seq` still gets the second.
    fn offer(&self, events: &[Event]) -> bool {
        if events.is_empty() {
            return true;
        }
        match self.queue.try_reserve_many(events.len()) {
            Ok(permits) => {
                for (permit, event) in permits.zip(events) {
                    permit.send(event.clone());
                }
                true
            }
            Err(mpsc::error::TrySendError::Full(())) => {
                self.ending.overflowed.store(true, Ordering::SeqCst);
                false
            }
            Err(mpsc::error::TrySendError::Closed(())) => false,
        }
    }
}

struct State {
    /// The last `seq` dispatched.
    position: u64,
    next_id: u64,
    connections: HashMap<u64, Connection>,
    /// The store's auth epoch when sessions were last checked.
    auth_epoch: u64,
}

/// Connections and the dispatcher. Cheap to share (`Arc`).
pub struct Hub {
    state: Mutex<State>,
    /// Each connection's queue holds at most this many events.
    capacity: usize,
}

impl Hub {
    /// A hub that starts after `position` (the newest `seq` at start).
    pub fn new(position: u64, capacity: usize) -> Self {
        Self {
            state: Mutex::new(State {
                position,
                next_id: 0,
                connections: HashMap::new(),
                auth_epoch: 0,
            }),
            capacity,
        }
    }

    /// The last `seq` dispatched.
    pub async fn position(&self) -> u64 {
        self.state.lock().await.position
    }

    /// Registers a connection of `user` (signed in with `session`, which must still be
    /// alive). Its teams and the log's end are read in one snapshot; entries up to that end
    /// are dispatched first, so the connection's teams match its position exactly.
    pub async fn subscribe(
        &self,
        store: &Store,
        user: UserId,
        session: SessionId,
        projects: Option<HashSet<ProjectId>>,
        limit: Option<TokenLimit>,
    ) -> Result<Subscription, Refused> {
        let mut state = self.state.lock().await;
        let (alive, teams, end) = store
            .run(move |s| s.feed_snapshot(user, session, Utc::now()))
            .await?;
        if !alive {
            return Err(Refused::SessionGone);
        }
        Self::dispatch_until(&mut state, store, end).await?;
        let teams: HashSet<TeamId> = teams.into_iter().collect();
        let (queue, events) = mpsc::channel(self.capacity);
        let ending = Arc::new(Ending::default());
        state.next_id += 1;
        let id = state.next_id;
        state.connections.insert(
            id,
            Connection {
                viewer: Viewer {
                    limit,
                    ..Viewer::new(user, teams.clone(), projects)
                },
                session,
                queue,
                ending: ending.clone(),
            },
        );
        Ok(Subscription {
            id,
            position: state.position,
            events,
            ending,
            teams,
        })
    }

    /// Ends every connection (the server is stopping): their queues close, and the sockets
    /// close with 1001.
    pub async fn close_all(&self) {
        self.state.lock().await.connections.clear();
    }

    pub async fn unsubscribe(&self, id: u64) {
        self.state.lock().await.connections.remove(&id);
    }

    /// How many connections are registered.
    pub async fn connections(&self) -> usize {
        self.state.lock().await.connections.len()
    }

    /// Delivers every durable change after the current position (and the notifications they
    /// caused) to the connections that may see them, then re-checks sessions if anything
    /// could have revoked one. Returns how many entries it dispatched.
    pub async fn dispatch(&self, store: &Store) -> Result<usize, StoreError> {
        let mut state = self.state.lock().await;
        let dispatched = Self::dispatch_until(&mut state, store, u64::MAX).await?;
        let epoch = store.auth_epoch();
        if epoch != state.auth_epoch {
            Self::drop_revoked(&mut state, store).await?;
            state.auth_epoch = epoch;
        }
        Ok(dispatched)
    }

    /// Closes connections whose session is gone or expired (called periodically: expiry
    /// changes no epoch).
    pub async fn check_sessions(&self, store: &Store) -> Result<(), StoreError> {
        let mut state = self.state.lock().await;
        Self::drop_revoked(&mut state, store).await
    }

    async fn dispatch_until(
        state: &mut State,
        store: &Store,
        end: u64,
    ) -> Result<usize, StoreError> {
        let mut dispatched = 0;
        while state.position < end {
            let after = state.position;
            let changes = store
                .run(move |s| s.changes_between(after, end, BATCH))
                .await?;
            let Some(last) = changes.last().map(|c| c.seq) else {
                break;
            };
            // Entries read may be committed but not yet on disk: never tell before they are.
            store.flushed().await?;
            let notifications = store
                .run(move |s| s.notifications_between(after, last))
                .await?;
            let mut notifications = notifications.into_iter().peekable();
            for change in changes {
                let (seq, change) = (change.seq, Arc::new(change));
                let mut told: Vec<(UserId, Event)> = Vec::new();
                while let Some(n) = notifications.next_if(|n| n.seq == seq) {
                    told.push((n.user_id, Event::Notification(Arc::new(n))));
                }
                let event = Event::Change(change.clone());
                state.connections.retain(|_, conn| {
                    let mut events = Vec::new();
                    if conn.viewer.read(&change) {
                        events.push(event.clone());
                    }
                    let user = conn.viewer.user();
                    events.extend(
                        told.iter()
                            .filter(|(to, e)| {
                                *to == user
                                    && match e {
                                        Event::Notification(n) => conn.viewer.hears(n),
                                        Event::Change(_) => true,
                                    }
                            })
                            .map(|(_, e)| e.clone()),
                    );
                    conn.offer(&events)
                });
                state.position = seq;
                dispatched += 1;
            }
        }
        Ok(dispatched)
    }

    /// Closes the queues of connections whose session (or access token) is gone.
    async fn drop_revoked(state: &mut State, store: &Store) -> Result<(), StoreError> {
        let sessions: Vec<(u64, SessionId)> = state
            .connections
            .iter()
            .map(|(id, conn)| (*id, conn.session))
            .collect();
        let dead = store
            .run::<_, StoreError, _>(move |s| {
                let now = Utc::now();
                let mut dead = Vec::new();
                let mut checked: HashMap<SessionId, bool> = HashMap::new();
                for (id, session) in sessions {
                    let alive = match checked.get(&session) {
                        Some(alive) => *alive,
                        None => {
                            let alive = s.credential_alive(session, now)?;
                            checked.insert(session, alive);
                            alive
                        }
                    };
                    if !alive {
                        dead.push(id);
                    }
                }
                Ok(dead)
            })
            .await?;
        for id in dead {
            if let Some(conn) = state.connections.remove(&id) {
                conn.ending.revoked.store(true, Ordering::SeqCst);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::change::{ChangeAction, EntityKind, NewChange};

    fn change(team: Option<TeamId>, audience: Vec<UserId>, project: Option<ProjectId>) -> Change {
        Change {
            seq: 1,
            change: NewChange {
                at: Utc::now(),
                actor: UserId::new(),
                entity: EntityKind::Task,
                entity_id: uuid::Uuid::now_v7(),
                team_id: team,
                project_id: project,
                audience,
                previous_team_id: None,
                previous_project_id: None,
                task_id: None,
                action: ChangeAction::Updated,
                fields: vec![],
            },
        }
    }

    #[test]
    fn visibility_follows_teams_audience_and_the_project_filter() {
        let (me, team, project) = (UserId::new(), TeamId::new(), ProjectId::new());
        let mut viewer = Viewer::new(me, HashSet::from([team]), None);
        assert!(viewer.sees(&change(Some(team), vec![], None)));
        assert!(!viewer.sees(&change(Some(TeamId::new()), vec![], None)));
        assert!(viewer.sees(&change(None, vec![me], None)));
        assert!(!viewer.sees(&change(None, vec![UserId::new()], None)));
        viewer.projects = Some(HashSet::from([project]));
        assert!(viewer.sees(&change(Some(team), vec![], Some(project))));
        assert!(!viewer.sees(&change(Some(team), vec![], None)));
    }

    #[test]
    fn leaving_a_team_is_the_last_thing_seen_of_it() {
        let (me, team) = (UserId::new(), TeamId::new());
        let mut viewer = Viewer::new(me, HashSet::new(), None);
        let mut joined = change(Some(team), vec![], None);
        joined.change.entity = EntityKind::Membership;
        joined.change.entity_id = me.as_uuid();
        joined.change.action = ChangeAction::Created;
        assert!(viewer.read(&joined), "the join itself is delivered");
        let mut left = joined.clone();
        left.change.action = ChangeAction::Deleted;
        assert!(viewer.read(&left), "so is the departure");
        assert!(!viewer.sees(&change(Some(team), vec![], None)));
    }
}
