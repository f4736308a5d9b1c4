//! Use cases. Each public method validates its input (parse, don't validate), checks who may
//! do it, and calls the store. No HTTP types here: the API layer maps [`Error`] to responses.

/// Personal access tokens: create, list, revoke, and their cached verification.
mod access_tokens;
/// Email verification and password reset by mail.
mod account_mail;
/// Register, login, refresh, logout, profile, sessions, and the bearer check.
mod accounts;
/// Site administration: the admin check, backups.
mod admin;
/// Attachments: streamed uploads, blobs stored once, downloads, with their permission rules.
mod attachments;
/// Board order: a project's board, and moving a task within or between columns.
mod board;
/// Browser sessions: signed session cookies and CSRF tokens.
mod browser;
/// The calendar feed: issue, revoke, and what a feed token opens.
mod calendar;
/// Comments on tasks, with their permission rules.
mod comments;
/// The real-time feed: subscriptions, replay, the dispatcher.
mod feed;
/// Current figures for monitoring (`/metrics`).
mod gauges;
/// The notification inbox.
mod notifications;
/// The outbox worker: sends queued mail with retries.
mod outbox;
/// bcrypt behind a concurrency bound, off the executor.
mod passwords;
/// Projects, with their permission rules.
mod projects;
/// What reminder, digest and notification emails and pushes say (askama templates).
mod reminder_mail;
/// Notification preferences, the reminder worker, unsubscribe links.
mod reminders;
/// Task search and the indexer that feeds the index from the change log.
mod search;
/// Verified sessions, invalidated by the store's auth epoch.
mod session_cache;
/// What the web app's task page reads: abilities on a task, people's names.
mod task_page;
/// Tasks, with their permission rules, lists and history.
mod tasks;
/// Teams, members and invitations, with their permission rules.
mod teams;
/// Access JWTs and opaque refresh tokens.
mod tokens;
/// Webhooks: management by a team's owners and admins, and the delivery worker.
mod webhooks;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::domain::scope::{Access, Area, Scopes};
use crate::domain::{
    AccessTokenId, Cursor, FieldError, PageLimit, Role, SessionId, TeamId, UserId, Validator,
};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::files::BlobStore;
use crate::store::{Idempotency, Store, StoreError};

pub use access_tokens::{IssuedToken, NewAccessToken};
pub use accounts::{ClientInfo, Credentials, ProfileUpdate, Registration, SessionTokens};
pub use attachments::{AttachmentView, IncomingFile, MAX_FILES_PER_UPLOAD};
pub use board::{Board, BoardColumn, DEFAULT_PER_COLUMN, MAX_PER_COLUMN, TaskMove};
pub use browser::{BrowserSession, SESSION_COOKIE};
pub use calendar::{FeedTasks, IssuedFeed};
pub use comments::CommentView;
pub use feed::{Feed, MEMBERSHIP_PAGE, Start};
pub use gauges::Gauge;
pub use notifications::InboxPage;
use passwords::Passwords;
pub use projects::{NewProject, ProjectPatch, ProjectView};
pub use reminders::{PreferencesUpdate, UnsubscribeSigner};
pub use search::{IndexStatus, IndexingError, SearchHit, SearchQuery, rebuild_index};
pub use task_page::TaskAbilities;
pub use tasks::{Edit, NewTask, Position, Scope, TaskList, TaskPatch, TaskQuery, TaskView};
pub use teams::{
    INVITATION_TTL, InvitationPreview, IssuedInvitation, NewTeam, TeamPatch, TeamView, Write,
    accept_path,
};
pub use tokens::Tokens;
pub use webhooks::{EncodeChange, NewWebhook, WebhookPatch, WebhookView};

/// Settings the service needs, taken from the [`Config`] by [`ServiceConfig::new`].
#[derive(Clone)]
pub struct ServiceConfig {
    /// Secret for HS256 signing of access tokens.
    pub jwt_secret: Vec<u8>,
    /// Lifetime of an access token.
    pub token_ttl: Duration,
    /// How long a session lives without a refresh.
    pub refresh_ttl: Duration,
    /// The longest a personal access token may live.
    pub token_max_lifetime: Duration,
    /// bcrypt cost for new password hashes.
    pub bcrypt_cost: u32,
    /// How many bcrypt computations may run at once.
    pub bcrypt_concurrency: usize,
    /// The largest file one upload may carry.
    pub max_upload_bytes: u64,
    /// The most attachment bytes one account may have uploaded, if limited.
    pub user_quota_bytes: Option<u64>,
    /// How long notifications are kept.
    pub notification_retention: Duration,
    /// How far back the real-time feed replays.
    pub change_retention: Duration,
    /// The most change-log entries one replay may read before it answers `reset` instead.
    pub replay_budget: u64,
    /// Events one connection may have queued before it is cut off.
    pub feed_queue: usize,
    /// The data directory (backups read the secret file there and stage their snapshot).
    pub data_dir: std::path::PathBuf,
    /// Who may register.
    pub registration: crate::config::Registration,
    /// Outgoing mail (SMTP, sender, public URL).
    pub mail: crate::config::MailConfig,
    /// When webhook deliveries are attempted.
    pub webhook_retry_schedule: crate::domain::webhooks::RetrySchedule,
}

impl ServiceConfig {
    /// What the service takes from `config`, with the JWT secret resolved from it
    /// ([`crate::config::jwt_secret`]) and one bcrypt slot per core.
    pub fn new(config: &Config, jwt_secret: Vec<u8>) -> Self {
        Self {
            jwt_secret,
            token_ttl: config.token_ttl,
            refresh_ttl: config.refresh_ttl,
            token_max_lifetime: config.token_max_lifetime,
            bcrypt_cost: config.bcrypt_cost,
            bcrypt_concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_upload_bytes: config.max_upload_bytes,
            user_quota_bytes: config.user_quota_bytes,
            notification_retention: config.notification_retention,
            change_retention: config.change_retention,
            replay_budget: config.replay_budget,
            feed_queue: config.feed_queue.max(1),
            data_dir: config.data_dir.clone(),
            registration: config.registration,
            mail: config.mail.clone(),
            webhook_retry_schedule: config.webhook_retry_schedule.clone(),
        }
    }
}

/// The authenticated caller of a request: a live session of an enabled account, or a personal
/// access token of one. Cheap to clone (a token's team limit is shared).
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user_id: UserId,
    /// The session; for a personal access token, the token's id (the credential the real-time
    /// feed re-checks: `Store::credential_alive`).
    pub session_id: SessionId,
    /// The account's role; for a token without the `admin` scope, `User`.
    pub role: Role,
    /// What a personal access token may do; `None` for a session (everything).
    pub token: Option<TokenGrant>,
}

/// What a personal access token grants: its scopes, and the teams it is limited to.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    pub id: AccessTokenId,
    pub scopes: Scopes,
    /// `None`: every team of the user.
    pub teams: Option<Arc<[TeamId]>>,
}

impl AuthUser {
    /// A session's caller: may do whatever the account may.
    pub fn session(user_id: UserId, session_id: SessionId, role: Role) -> Self {
        Self {
            user_id,
            session_id,
            role,
            token: None,
        }
    }

    /// Whether the caller may `access` `area`: always for a session; for a token, when it holds
    /// that scope (403 naming the scope otherwise).
    pub fn allows(&self, area: Area, access: Access) -> Result<()> {
        match &self.token {
            Some(grant) if !grant.scopes.allows(area, access) => Err(Error::Forbidden(format!(
                "this access token lacks the scope {}:{}",
                area.name(),
                access.name()
            ))),
            _ => Ok(()),
        }
    }

    /// Refuses any personal access token (account settings, password, email, sessions, token
    /// management, the calendar feed): only a signed-in person may do these.
    pub fn require_session(&self) -> Result<()> {
        if self.token.is_some() {
            return Err(Error::Forbidden(
                "a personal access token cannot do this: sign in with your password".into(),
            ));
        }
        Ok(())
    }

    /// Whether the caller reaches `team`: always for a session and an unlimited token; for a
    /// token limited to teams, only those.
    pub fn reaches_team(&self, team: TeamId) -> bool {
        match self.token.as_ref().and_then(|g| g.teams.as_ref()) {
            Some(teams) => teams.contains(&team),
            None => true,
        }
    }

    /// Whether the caller reaches something in `team`, or personal (`None`): a token limited
    /// to teams reaches nothing outside them, personal tasks included.
    pub fn reaches(&self, team: Option<TeamId>) -> bool {
        match team {
            Some(team) => self.reaches_team(team),
            None => !self.team_limited(),
        }
    }

    /// Whether the caller is a token limited to some teams.
    pub fn team_limited(&self) -> bool {
        self.token.as_ref().is_some_and(|g| g.teams.is_some())
    }

    /// Whether the caller is a personal access token.
    pub fn is_token(&self) -> bool {
        self.token.is_some()
    }

    /// The teams the caller reaches, to take into a write transaction.
    pub fn reach(&self) -> Reach {
        Reach(self.token.as_ref().and_then(|g| g.teams.clone()))
    }
}

/// The teams a caller reaches ([`AuthUser::reach`]): all of theirs, or a token's team limit.
#[derive(Debug, Clone, Default)]
pub struct Reach(Option<Arc<[TeamId]>>);

impl Reach {
    /// Whether something in `team` (or personal: `None`) is within reach.
    pub fn covers(&self, team: Option<TeamId>) -> bool {
        match (&self.0, team) {
            (None, _) => true,
            (Some(teams), Some(team)) => teams.contains(&team),
            (Some(_), None) => false,
        }
    }
}

/// Why a request is not authenticated. Each maps to its own stable error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("email or password is incorrect")]
    InvalidCredentials,
    #[error("the access token is malformed, has a bad signature or a wrong algorithm")]
    InvalidToken,
    #[error("the access token has expired; use the refresh token to get a new one")]
    TokenExpired,
    #[error("the session was signed out or revoked")]
    SessionRevoked,
    #[error("the personal access token has expired; create a new one")]
    AccessTokenExpired,
    #[error("the refresh token is invalid, expired or was already used")]
    InvalidRefreshToken,
    #[error("this account is disabled")]
    AccountDisabled,
}

/// What can go wrong in a use case.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the request has invalid fields")]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    Unauthenticated(AuthError),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("{0}")]
    Forbidden(String),
    #[error("a team must keep at least one owner")]
    LastOwner,
    #[error("this email already has a pending invitation to this team")]
    AlreadyInvited,
    #[error("this person is already a member of the team")]
    AlreadyMember,
    #[error("the invitation was already answered, revoked or has expired")]
    InvitationClosed,
    #[error("registration is closed on this server; ask an admin for an account")]
    RegistrationClosed,
    #[error("registration is by invitation only: register with the link of a pending invitation")]
    InvitationRequired,
    #[error(
        "whoever invited you no longer holds a role that may grant this one; ask a team owner or admin to invite you again"
    )]
    InviterLacksRole,
    #[error("the project is archived: reactivate it (status active) to change it")]
    ProjectArchived,
    #[error("this Idempotency-Key was already used for a different request")]
    IdempotencyKeyReused,
    #[error(
        "the first request with this Idempotency-Key created something that has since been deleted; send a new key to create it again"
    )]
    IdempotentResourceGone,
    #[error("the server is busy; try again shortly")]
    Busy,
    #[error("this upload would take your attachments over your storage quota of {0} bytes")]
    QuotaExceeded(u64),
    #[error("a file is over the upload limit of {0} bytes")]
    UploadTooLarge(u64),
    #[error("{0}")]
    BadRequest(String),
    #[error("attachment storage failed: {0}")]
    Storage(String),
    #[error("the search index is being rebuilt ({done} of {total} tasks); try again shortly")]
    IndexRebuilding { done: u64, total: u64 },
    #[error("search failed: {0}")]
    Search(String),
    #[error("mail is not configured on this server (--smtp-url); ask its admin")]
    MailNotConfigured,
    #[error("this link is invalid, has expired or was already used")]
    InvalidLink,
    #[error("internal error: {0}")]
    Internal(#[from] StoreError),
}

/// The longest `Idempotency-Key` accepted.
pub const IDEMPOTENCY_KEY_MAX_CHARS: usize = 255;

/// Checks an `Idempotency-Key` (1 to 255 visible ASCII characters) and binds it to the caller
/// and to a hash of the request's content.
pub(crate) fn idempotency(
    auth: &AuthUser,
    key: Option<&str>,
    content: serde_json::Value,
) -> Result<Option<Idempotency>> {
    let Some(key) = key else { return Ok(None) };
    let valid = !key.is_empty()
        && key.len() <= IDEMPOTENCY_KEY_MAX_CHARS
        && key.bytes().all(|b| b.is_ascii_graphic());
    if !valid {
        return Err(Error::invalid(
            "Idempotency-Key",
            "must be 1 to 255 visible ASCII characters",
        ));
    }
    let hash = Sha256::digest(content.to_string().as_bytes());
    let request_hash = hash.iter().map(|b| format!("{b:02x}")).collect();
    Ok(Some(Idempotency {
        user: auth.user_id,
        key: key.to_string(),
        request_hash,
    }))
}

/// Parses a list's `cursor` and `limit`, recording their errors.
pub(crate) fn page_args(
    cursor: Option<&str>,
    limit: Option<u32>,
    v: &mut Validator,
) -> (Option<u128>, PageLimit) {
    let cursor = cursor.and_then(|c| v.check("cursor", Cursor::parse(c)));
    let limit = v
        .check("limit", PageLimit::parse(limit))
        .unwrap_or_default();
    (cursor.map(Cursor::key), limit)
}

/// Maps the store's refusals that every create shares.
pub(crate) fn create_error(e: StoreError, not_found: &'static str) -> Error {
    match e {
        StoreError::IdempotencyKeyReused => Error::IdempotencyKeyReused,
        StoreError::IdempotentResourceGone => Error::IdempotentResourceGone,
        StoreError::NotFound => Error::NotFound(not_found),
        StoreError::Archived => Error::ProjectArchived,
        StoreError::NotAMember => Error::invalid(
            "assignee_ids",
            "every assignee must be a member of the project's team",
        ),
        other => Error::Internal(other),
    }
}

impl From<AuthError> for Error {
    fn from(e: AuthError) -> Self {
        Error::Unauthenticated(e)
    }
}

impl Error {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Error::Validation(vec![FieldError::new(field, message)])
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The application: every use case hangs off this. Cheap to clone.
#[derive(Clone)]
pub struct Service {
    sessions: Arc<session_cache::SessionCache>,
    access_tokens: Arc<access_tokens::TokenCache>,
    store: Store,
    blobs: BlobStore,
    hub: Arc<crate::events::Hub>,
    tokens: Arc<Tokens>,
    browser: Arc<browser::BrowserKeys>,
    passwords: Arc<Passwords>,
    config: Arc<ServiceConfig>,
    search: Arc<crate::search::SearchIndex>,
    /// Replay steps that may read the change log at once ([`feed::replay_slots`]).
    replays: Arc<tokio::sync::Semaphore>,
    /// Searches that may run at once ([`search::search_slots`]): a search is CPU-bound, so
    /// more at once than there are cores only adds memory (each holds its own scorers and
    /// buffers) and makes every one of them late.
    searches: Arc<tokio::sync::Semaphore>,
    started_at: Instant,
    /// The outbox worker's senders and counters.
    outbox: Arc<outbox::Outbox>,
    /// The guarded HTTP client every outgoing request goes through (webhooks).
    egress: crate::net::egress::Egress,
    hooks: Arc<webhooks::Hooks>,
    /// Webhook deliveries answered 2xx, and failed, since the start.
    webhook_counts: Arc<(std::sync::atomic::AtomicU64, std::sync::atomic::AtomicU64)>,
}

impl Service {
    /// `position` is the newest change-log `seq` (the real-time feed starts after it);
    /// `egress` sends webhooks.
    pub fn new(
        store: Store,
        blobs: BlobStore,
        search: Arc<crate::search::SearchIndex>,
        position: u64,
        config: ServiceConfig,
        egress: crate::net::egress::Egress,
    ) -> Self {
        Self {
            egress,
            hooks: Arc::default(),
            webhook_counts: Arc::default(),
            search,
            blobs,
            hub: Arc::new(crate::events::Hub::new(position, config.feed_queue)),
            sessions: Arc::default(),
            access_tokens: Arc::default(),
            tokens: Arc::new(Tokens::new(&config.jwt_secret, config.token_ttl)),
            browser: Arc::new(browser::BrowserKeys::new(&config.jwt_secret)),
            passwords: Arc::new(Passwords::new(
                config.bcrypt_cost,
                config.bcrypt_concurrency,
            )),
            store,
            outbox: Arc::new(outbox::Outbox::new(&config.mail)),
            config: Arc::new(config),
            replays: Arc::new(tokio::sync::Semaphore::new(feed::replay_slots())),
            searches: Arc::new(tokio::sync::Semaphore::new(search::search_slots())),
            started_at: Instant::now(),
        }
    }

    /// The guarded HTTP client (for other senders than webhooks: ntfy).
    pub fn egress(&self) -> &crate::net::egress::Egress {
        &self.egress
    }

    /// Seconds since the service started.
    pub fn uptime(&self) -> Duration {
        self.started_at.elapsed()
    }

    /// Background upkeep until `stop` changes: builds the dummy password hash, then removes
    /// expired sessions at start and every [`SWEEP_INTERVAL`].
    pub async fn run_background(&self, mut stop: tokio::sync::watch::Receiver<bool>) {
        if let Err(e) = self.passwords.warm_up().await {
            tracing::warn!(error = %e, "could not prepare the dummy password hash");
        }
        let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
        let (freed_tx, mut freed) = tokio::sync::mpsc::unbounded_channel();
        if !self.store.on_blobs_freed(freed_tx) {
            tracing::warn!("another service removes this store's freed blobs");
        }
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    self.sweep_expired_sessions().await;
                    self.sweep_idempotency_keys().await;
                    self.sweep_notifications().await;
                }
                Some(hashes) = freed.recv() => self.remove_freed_blobs(hashes).await,
                _ = stop.changed() => return,
            }
        }
    }

    /// Runs `sweep` (one write transaction removing at most [`SWEEP_BATCH`] rows, returning
    /// how many it removed) until a batch comes back short, and logs the total.
    pub(super) async fn sweep_in_batches<F>(&self, what: &'static str, sweep: F)
    where
        F: Fn(&Store) -> Result<usize, StoreError> + Clone + Send + 'static,
    {
        let mut total = 0;
        loop {
            match self.store.run(sweep.clone()).await {
                Ok(swept) => {
                    total += swept;
                    if swept < SWEEP_BATCH {
                        break;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, what, "sweep failed");
                    break;
                }
            }
        }
        if total > 0 {
            tracing::info!(what, removed = total, "swept");
        }
    }

    /// Removes every expired session.
    async fn sweep_expired_sessions(&self) {
        self.sweep_in_batches("expired sessions", |s| {
            s.sweep_expired_sessions(chrono::Utc::now(), SWEEP_BATCH)
        })
        .await;
    }

    /// Removes idempotency keys past their 24 hours.
    async fn sweep_idempotency_keys(&self) {
        self.sweep_in_batches("idempotency keys", |s| {
            s.sweep_idempotency_keys(chrono::Utc::now(), SWEEP_BATCH)
        })
        .await;
    }
}

/// How often expired sessions and idempotency keys are removed.
const SWEEP_INTERVAL: Duration = Duration::from_secs(3600);
/// Expired sessions removed per write transaction.
const SWEEP_BATCH: usize = 500;
