//! Browser sessions. A browser holds a cookie naming one server-side session (the same sessions
//! `GET /auth/sessions` lists and revokes), signed with a key derived from the install's secret;
//! no token is ever put in a URL. Each session also has a CSRF token, derived from the same key
//! and the session id, which every unsafe request from a page must carry.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::accounts::{ClientInfo, Credentials, Registration, SessionTokens};
use super::{AuthError, AuthUser, Result, Service};
use crate::domain::{SessionId, User};

type HmacSha256 = Hmac<Sha256>;

/// The name of the cookie holding a browser's session (`web::session` sets it; `/api/ws`
/// reads it).
pub const SESSION_COOKIE: &str = "tasker_session";

/// Domain separation: the cookie and CSRF keys can never be confused with a JWT signature.
const COOKIE_CONTEXT: &[u8] = b"tasker browser session cookie v1";
const CSRF_CONTEXT: &[u8] = b"tasker browser csrf token v1";

/// The keys that sign session cookies and CSRF tokens.
pub struct BrowserKeys {
    cookie: Vec<u8>,
    csrf: Vec<u8>,
}

fn mac(key: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length")
}

fn derive(secret: &[u8], context: &[u8]) -> Vec<u8> {
    let mut m = mac(secret);
    m.update(context);
    m.finalize().into_bytes().to_vec()
}

fn encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
}

impl BrowserKeys {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            cookie: derive(secret, COOKIE_CONTEXT),
            csrf: derive(secret, CSRF_CONTEXT),
        }
    }

    /// The cookie value for a session: `<session id>.<signature>`.
    pub fn cookie(&self, session: SessionId) -> String {
        let id = session.as_uuid().to_string();
        let mut m = mac(&self.cookie);
        m.update(id.as_bytes());
        format!("{id}.{}", encode(&m.finalize().into_bytes()))
    }

    /// The session a cookie names, if its signature is ours (checked in constant time).
    pub fn session_of(&self, cookie: &str) -> Option<SessionId> {
        let (id, signature) = cookie.split_once('.')?;
        let signature = decode(signature)?;
        let mut m = mac(&self.cookie);
        m.update(id.as_bytes());
        m.verify_slice(&signature).ok()?;
        uuid::Uuid::parse_str(id).ok().map(SessionId::from_uuid)
    }

    /// The CSRF token of a session.
    pub fn csrf(&self, session: SessionId) -> String {
        let mut m = mac(&self.csrf);
        m.update(session.as_uuid().as_bytes());
        encode(&m.finalize().into_bytes())
    }

    /// Whether `presented` is the session's CSRF token (constant time).
    pub fn csrf_matches(&self, session: SessionId, presented: &str) -> bool {
        let Some(presented) = decode(presented.trim()) else {
            return false;
        };
        let mut m = mac(&self.csrf);
        m.update(session.as_uuid().as_bytes());
        m.verify_slice(&presented).is_ok()
    }
}

/// A signed-in browser: the cookie to set, and who it is.
pub struct BrowserSession {
    pub cookie: String,
    pub expires_at: DateTime<Utc>,
    pub user: User,
}

impl Service {
    fn browser_session(&self, tokens: SessionTokens) -> BrowserSession {
        BrowserSession {
            cookie: self.browser.cookie(tokens.session.id),
            expires_at: tokens.session.expires_at,
            user: tokens.user,
        }
    }

    /// Signs a browser in with email and password (the same checks as `POST /auth/login`).
    pub async fn browser_login(
        &self,
        input: Credentials,
        client: ClientInfo,
    ) -> Result<BrowserSession> {
        let tokens = self.login(input, client).await?;
        Ok(self.browser_session(tokens))
    }

    /// Creates an account from a browser and signs it in (the first account is the admin).
    pub async fn browser_register(
        &self,
        input: Registration,
        client: ClientInfo,
    ) -> Result<BrowserSession> {
        let tokens = self.register(input, client).await?;
        Ok(self.browser_session(tokens))
    }

    /// The check behind every page and `/api/ws` from a browser: a cookie we signed, naming a
    /// live session of an enabled account.
    pub async fn authenticate_cookie(&self, cookie: &str) -> Result<AuthUser> {
        let session = self
            .browser
            .session_of(cookie)
            .ok_or(AuthError::InvalidToken)?;
        self.authenticate_session(None, session).await
    }

    /// The CSRF token pages embed for the caller's session.
    pub fn csrf_token(&self, auth: &AuthUser) -> String {
        self.browser.csrf(auth.session_id)
    }

    /// Whether `presented` is the CSRF token of the caller's session.
    pub fn csrf_matches(&self, auth: &AuthUser, presented: &str) -> bool {
        self.browser.csrf_matches(auth.session_id, presented)
    }

    /// Whether the server has no account yet (the web app then offers the first set-up).
    pub async fn needs_setup(&self) -> Result<bool> {
        Ok(self.store.run(|s| s.has_no_users()).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_names_its_session_and_nothing_else_does() {
        let keys = BrowserKeys::new(b"secret");
        let session = SessionId::new();
        let cookie = keys.cookie(session);
        assert_eq!(keys.session_of(&cookie), Some(session));
        let other = BrowserKeys::new(b"another secret");
        assert_eq!(other.session_of(&cookie), None);
        let (id, _) = cookie.split_once('.').unwrap();
        let forged = format!(
            "{}.{}",
            SessionId::new().as_uuid(),
            cookie.split_once('.').unwrap().1
        );
        assert_eq!(keys.session_of(&forged), None);
        assert_eq!(keys.session_of(id), None);
        assert_eq!(keys.session_of(""), None);
    }

    #[test]
    fn a_csrf_token_belongs_to_one_session() {
        let keys = BrowserKeys::new(b"secret");
        let (a, b) = (SessionId::new(), SessionId::new());
        let token = keys.csrf(a);
        assert!(keys.csrf_matches(a, &token));
        assert!(!keys.csrf_matches(b, &token));
        assert!(!keys.csrf_matches(a, ""));
        assert!(!keys.csrf_matches(a, "not base64!"));
        // The cookie key and the CSRF key differ.
        assert_ne!(keys.cookie(a).split_once('.').unwrap().1, token);
    }
}
