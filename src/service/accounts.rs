//! Accounts and sessions: register, login, refresh, logout, profile, session management, and
//! the check behind every authenticated request.

use chrono::Utc;

use super::passwords::Verified;
use super::tokens::{hash_refresh_token, new_refresh_token};
use super::{AuthError, AuthUser, Error, Result, Service};
use crate::config::Registration as RegistrationMode;
use crate::domain::page::Page;
use crate::domain::team::InvitationToken;
use crate::domain::{Email, Password, Role, Session, SessionId, User, UserName, Validator};
use crate::store::{RefreshOutcome, StoreError, UserChanges};

/// The longest user agent kept with a session.
const USER_AGENT_MAX_CHARS: usize = 256;

pub struct Registration {
    pub email: String,
    pub name: String,
    pub password: String,
    /// An invitation's accept token: needed under `--registration invite-only`; the new
    /// account claims that invitation (in any mode, when the token opens one).
    pub invitation_token: Option<String>,
}

pub struct Credentials {
    pub email: String,
    pub password: String,
}

/// A profile change; `None` leaves a field unchanged. Changing the email or the password needs
/// the current password.
#[derive(Default)]
pub struct ProfileUpdate {
    pub name: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
    pub current_password: Option<String>,
}

/// Where a login comes from, shown in the session list so users recognise their devices.
#[derive(Debug, Default, Clone)]
pub struct ClientInfo {
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

/// What a successful login, registration or refresh hands back.
pub struct SessionTokens {
    pub access_token: String,
    pub access_expires_at: chrono::DateTime<Utc>,
    pub refresh_token: String,
    pub session: Session,
    pub user: User,
}

impl Service {
    /// Creates an account and signs it in. The first account of a server is its admin.
    pub async fn register(&self, input: Registration, client: ClientInfo) -> Result<SessionTokens> {
        let mut v = Validator::default();
        let email = v.check("email", Email::parse(&input.email));
        let name = v.check("name", UserName::parse(&input.name));
        let password = v.check("password", Password::parse(&input.password));
        v.finish().map_err(Error::Validation)?;
        let (email, name, password) = (email.unwrap(), name.unwrap(), password.unwrap());
        let token = input
            .invitation_token
            .as_deref()
            .and_then(InvitationToken::parse);
        let invite_only = self.may_register(token.as_ref())?;

        // Cheap early answer for the common duplicate case; the insert re-checks atomically.
        let lookup = email.clone();
        if self
            .store
            .run(move |s| s.user_by_email(&lookup))
            .await?
            .is_some()
        {
            return Err(Error::EmailTaken);
        }
        let password_hash = self.passwords.hash(&password).await?;
        let user = User::new(email, name, password_hash, Role::User, Utc::now());
        // The verification message is queued with the account: both or neither.
        let mail = self.verification_mail(&user);
        let (user, queued) = self
            .store
            .run(move |s| {
                s.write(|tx| {
                    let user =
                        super::teams::insert_invited_user(tx, user, token.as_ref(), invite_only)?;
                    Ok::<_, Error>((user, super::account_mail::queue(tx, mail)?))
                })
            })
            .await?;
        if queued {
            self.wake_outbox();
        }
        tracing::info!(user_id = %user.id, role = ?user.role, "account registered");
        self.start_session(user, client).await
    }

    /// Checks the registration mode: `closed` refuses everyone, `invite-only` everyone without
    /// an invitation's accept token (the address does not matter: anyone can type any
    /// address). Whether the token opens a pending invitation is decided where the account is
    /// written, in the same transaction; the answer says whether it must.
    fn may_register(&self, token: Option<&InvitationToken>) -> Result<bool> {
        match (self.config.registration, token) {
            (RegistrationMode::Open, _) => Ok(false),
            (RegistrationMode::Closed, _) => Err(Error::RegistrationClosed),
            (RegistrationMode::InviteOnly, Some(_)) => Ok(true),
            (RegistrationMode::InviteOnly, None) => Err(Error::InvitationRequired),
        }
    }

    /// Exchanges email and password for a new session. Unknown email, wrong password and a
    /// disabled account (whatever the password) are indistinguishable, in answer and in time:
    /// the password is checked in every case, and a disabled account never learns whether it
    /// was right.
    pub async fn login(&self, input: Credentials, client: ClientInfo) -> Result<SessionTokens> {
        let user = match Email::parse(&input.email) {
            Ok(email) => self.store.run(move |s| s.user_by_email(&email)).await?,
            Err(_) => None,
        };
        let verified = self
            .passwords
            .verify(&input.password, user.as_ref().map(|u| &u.password_hash))
            .await?;
        let Some(user) = user.filter(|u| verified != Verified::No && !u.disabled) else {
            return Err(AuthError::InvalidCredentials.into());
        };
        if let Verified::YesRehashed(new_hash) = verified {
            let (id, old_hash) = (user.id, user.password_hash.clone());
            self.store
                .run(move |s| s.replace_password_hash(id, &old_hash, new_hash))
                .await?;
        }
        self.start_session(user, client).await
    }

    async fn start_session(&self, user: User, client: ClientInfo) -> Result<SessionTokens> {
        let now = Utc::now();
        let (refresh_token, refresh_hash) = new_refresh_token();
        let session = Session {
            id: SessionId::new(),
            user_id: user.id,
            created_at: now,
            last_seen_at: now,
            expires_at: now + self.refresh_ttl(),
            user_agent: client
                .user_agent
                .map(|ua| sanitize_user_agent(&ua))
                .filter(|ua| !ua.is_empty()),
            ip: client.ip,
            refresh_hash,
            previous_refresh_hashes: vec![],
        };
        let stored = session.clone();
        self.store.run(move |s| s.insert_session(&stored)).await?;
        let (access_token, access_expires_at) = self.tokens.issue(user.id, session.id, now);
        Ok(SessionTokens {
            access_token,
            access_expires_at,
            refresh_token,
            session,
            user,
        })
    }

    /// Rotates a refresh token. Presenting one that was already used revokes its session.
    pub async fn refresh(&self, refresh_token: &str) -> Result<SessionTokens> {
        let presented = hash_refresh_token(refresh_token);
        let (refresh_token, new_hash) = new_refresh_token();
        let now = Utc::now();
        let expires_at = now + self.refresh_ttl();
        let outcome = self
            .store
            .run(move |s| s.rotate_refresh(&presented, new_hash, now, expires_at))
            .await?;
        match outcome {
            RefreshOutcome::Rotated { session, user } => {
                let (access_token, access_expires_at) = self.tokens.issue(user.id, session.id, now);
                Ok(SessionTokens {
                    access_token,
                    access_expires_at,
                    refresh_token,
                    session: *session,
                    user: *user,
                })
            }
            RefreshOutcome::Reused => {
                tracing::warn!("refresh token reuse detected; session revoked");
                Err(AuthError::InvalidRefreshToken.into())
            }
            RefreshOutcome::Invalid => Err(AuthError::InvalidRefreshToken.into()),
        }
    }

    /// The check behind every authenticated request: a valid token of a live session of an
    /// enabled account.
    pub async fn authenticate(&self, access_token: &str) -> Result<AuthUser> {
        let (user_id, session_id) = self.tokens.verify(access_token)?;
        self.authenticate_session(Some(user_id), session_id).await
    }

    /// A live session of an enabled account; with `user`, one of that account (the token's
    /// subject must match its session).
    pub(super) async fn authenticate_session(
        &self,
        user: Option<crate::domain::UserId>,
        session_id: SessionId,
    ) -> Result<AuthUser> {
        let now = Utc::now();
        // Read the epoch before the session, so a revocation in between is never cached.
        let epoch = self.store.auth_epoch();
        if let Some(hit) = self.sessions.get(session_id, epoch)
            && user.is_none_or(|user| hit.user_id == user)
            && hit.expires_at > now
        {
            return Ok(AuthUser {
                user_id: hit.user_id,
                session_id,
                role: hit.role,
            });
        }
        let found = self
            .store
            .run(move |s| s.session_with_user(session_id))
            .await?;
        let Some((session, account)) = found else {
            return Err(AuthError::SessionRevoked.into());
        };
        if user.is_some_and(|user| session.user_id != user) || session.is_expired(now) {
            return Err(AuthError::SessionRevoked.into());
        }
        if account.disabled {
            return Err(AuthError::AccountDisabled.into());
        }
        let user_id = session.user_id;
        self.sessions
            .insert(session_id, user_id, account.role, session.expires_at, epoch);
        Ok(AuthUser {
            user_id,
            session_id,
            role: account.role,
        })
    }

    /// Ends the caller's session: its access and refresh tokens stop working at once.
    pub async fn logout(&self, auth: &AuthUser) -> Result<()> {
        let (user, session) = (auth.user_id, auth.session_id);
        self.store
            .run(move |s| s.delete_session(user, session))
            .await?;
        Ok(())
    }

    pub async fn profile(&self, auth: &AuthUser) -> Result<User> {
        let id = auth.user_id;
        self.store
            .run(move |s| s.user(id))
            .await?
            .ok_or(Error::NotFound("user"))
    }

    /// Changes name, email or password. A password change signs out every other session.
    pub async fn update_profile(&self, auth: &AuthUser, input: ProfileUpdate) -> Result<User> {
        let mut v = Validator::default();
        let name = input
            .name
            .as_deref()
            .and_then(|n| v.check("name", UserName::parse(n)));
        let email = input
            .email
            .as_deref()
            .and_then(|e| v.check("email", Email::parse(e)));
        let password = input
            .password
            .as_deref()
            .and_then(|p| v.check("password", Password::parse(p)));
        let sensitive = input.email.is_some() || input.password.is_some();
        if sensitive && input.current_password.is_none() {
            v.push(
                "current_password",
                "is required to change the email or the password",
            );
        }
        v.finish().map_err(Error::Validation)?;

        let user = self.profile(auth).await?;
        if sensitive {
            let current = input.current_password.as_deref().unwrap_or_default();
            if self
                .passwords
                .verify(current, Some(&user.password_hash))
                .await?
                == Verified::No
            {
                return Err(Error::invalid("current_password", "is incorrect"));
            }
        }
        let password_hash = match &password {
            Some(password) => Some(self.passwords.hash(password).await?),
            None => None,
        };
        let revoke_others = password_hash.is_some();
        let changes = UserChanges {
            name,
            email,
            password_hash,
        };
        let (id, keep) = (auth.user_id, auth.session_id);
        // A new address gets a verification message, queued with the change.
        let verify = changes
            .email
            .as_ref()
            .filter(|e| **e != user.email)
            .and_then(|email| {
                let mut changed = user.clone();
                changed.email = email.clone();
                changed.email_verified_at = None;
                self.verification_mail(&changed)
            });
        let (updated, queued) = self
            .store
            .run(move |s| {
                s.write(|tx| {
                    let before = tx.user(id)?.map(|u| u.email);
                    let updated = tx.update_user(id, changes, Some(keep), Utc::now())?;
                    let moved = before.is_some_and(|b| b != updated.email);
                    let queued = super::account_mail::queue(tx, verify.filter(|_| moved))?;
                    Ok::<_, StoreError>((updated, queued))
                })
            })
            .await
            .map_err(|e| match e {
                StoreError::EmailTaken => Error::EmailTaken,
                StoreError::NotFound => Error::NotFound("user"),
                other => other.into(),
            })?;
        if queued {
            self.wake_outbox();
        }
        if revoke_others {
            tracing::info!(user_id = %id, "password changed; other sessions revoked");
        }
        Ok(updated)
    }

    /// The caller's sessions, oldest first.
    pub async fn sessions(
        &self,
        auth: &AuthUser,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<Session>> {
        let mut v = Validator::default();
        let (after, limit) = super::page_args(cursor, limit, &mut v);
        v.finish().map_err(Error::Validation)?;
        let user = auth.user_id;
        let rows = self
            .store
            .run(move |s| s.sessions_of_user(user, after, limit.get() + 1, Utc::now()))
            .await?;
        Ok(Page::from_overfetch(rows, limit, |s| s.id.as_u128()))
    }

    /// Signs out one of the caller's sessions (another device, or this one).
    pub async fn revoke_session(&self, auth: &AuthUser, session: SessionId) -> Result<()> {
        let user = auth.user_id;
        if self
            .store
            .run(move |s| s.delete_session(user, session))
            .await?
        {
            Ok(())
        } else {
            Err(Error::NotFound("session"))
        }
    }

    fn refresh_ttl(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.config.refresh_ttl).unwrap_or(chrono::Duration::days(30))
    }
}

fn sanitize_user_agent(raw: &str) -> String {
    raw.chars()
        .filter(|c| !c.is_control())
        .take(USER_AGENT_MAX_CHARS)
        .collect::<String>()
        .trim()
        .to_string()
}
