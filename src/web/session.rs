//! The browser's session cookie and the signed-in user of a page.

use poem::http::header;
use poem::{FromRequest, Request, RequestBody};

use super::error::WebError;
use crate::api::limits::forwarded;
use crate::config::TrustedProxies;
use crate::service::{AuthUser, BrowserSession, Service};

/// The cookie naming the browser's server-side session.
pub const COOKIE: &str = crate::service::SESSION_COOKIE;

/// The value of cookie `name` in a request's `Cookie` headers.
pub fn cookie<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"'))
}

/// Whether the browser reached us over https: directly, or through one of the trusted proxies
/// that says so in `X-Forwarded-Proto`.
pub fn over_https(req: &Request, proxies: &TrustedProxies) -> bool {
    req.uri().scheme_str() == Some("https")
        || forwarded(req, "x-forwarded-proto", proxies)
            .is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
}

/// `Set-Cookie` for a new session: `HttpOnly`, `SameSite=Lax`, `Secure` over https, lasting
/// as long as the session.
pub fn set_cookie(session: &BrowserSession, secure: bool) -> String {
    let max_age = (session.expires_at - chrono::Utc::now())
        .num_seconds()
        .max(0);
    format!(
        "{COOKIE}={}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{}",
        session.cookie,
        if secure { "; Secure" } else { "" }
    )
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The signed-in user of a page request, from the session cookie. A handler that takes it
/// cannot run for a visitor: they are sent to the sign-in page and brought back afterwards.
#[derive(Debug, Clone)]
pub struct WebUser(pub AuthUser);

impl WebUser {
    /// The user of a request whose cookie names a live session, if any.
    pub async fn of(req: &Request) -> Option<Self> {
        if let Some(known) = req.extensions().get::<WebUser>() {
            return Some(known.clone());
        }
        let service = req.data::<Service>()?;
        let value = cookie(req, COOKIE)?;
        service.authenticate_cookie(value).await.ok().map(WebUser)
    }
}

impl<'a> FromRequest<'a> for WebUser {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        match WebUser::of(req).await {
            Some(user) => Ok(user),
            None => Err(WebError::SignIn(return_path(req)).into()),
        }
    }
}

/// Where to come back to after signing in: this page (for a GET), else the home page.
fn return_path(req: &Request) -> String {
    if req.method() != poem::http::Method::GET || req.header("hx-request").is_some() {
        return "/".into();
    }
    req.uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string()
}

/// A `next=` target that stays on this site (a path, never `//host` or a scheme).
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && !path.chars().any(char::is_control) =>
        {
            path
        }
        _ => "/",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_never_leaves_the_site() {
        assert_eq!(safe_next(Some("/projects/1?x=2")), "/projects/1?x=2");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/a\nb")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
