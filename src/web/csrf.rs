//! Cross-site request forgery protection for every unsafe request to the web app, in two
//! layers (as kanidm and the OWASP cheat sheet advise):
//!
//! 1. The browser must say the request comes from our own pages: `Sec-Fetch-Site:
//!    same-origin`, or else an `Origin` whose host is ours. A request with neither header did
//!    not come from a modern browser's form or script, and goes on to the token check.
//! 2. A signed-in request must carry its session's CSRF token: the `X-CSRF-Token` header
//!    (htmx and the app's scripts send it) or a `csrf` form field (plain forms).
//!
//! Sign-in, registration and set-up have no session yet: only the first layer applies (and
//! `SameSite=Lax` keeps the cookie off cross-site posts).

use std::sync::Arc;

use poem::http::{Method, header};
use poem::{Endpoint, IntoResponse, Request, Response};

use super::error::WebError;
use super::session::WebUser;
use crate::api::limits::origin_is_ours;
use crate::config::TrustedProxies;

/// The largest form body the token check reads (uploads send the header instead).
const MAX_FORM_BYTES: usize = 256 * 1024;

/// The form field and header carrying the token.
pub const FIELD: &str = "csrf";
pub const HEADER: &str = "x-csrf-token";

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether the browser says this request comes from one of our own pages. Our host is the
/// `Host` header, or `X-Forwarded-Host` from one of the trusted proxies.
pub fn same_origin(req: &Request, proxies: &TrustedProxies) -> bool {
    if let Some(site) = req.header("sec-fetch-site") {
        return site.eq_ignore_ascii_case("same-origin");
    }
    req.header(header::ORIGIN)
        .is_none_or(|origin| origin_is_ours(req, origin, proxies))
}

/// The middleware: lets safe requests through, checks unsafe ones, and keeps the signed-in user
/// with the request for the handler.
pub async fn guard<E: Endpoint>(
    next: Arc<E>,
    mut req: Request,
    proxies: Arc<TrustedProxies>,
) -> poem::Result<Response> {
    if is_safe(req.method()) {
        return next.call(req).await.map(IntoResponse::into_response);
    }
    if !same_origin(&req, &proxies) {
        return Err(WebError::Forbidden("This request came from another site.".into()).into());
    }
    if let Some(user) = WebUser::of(&req).await {
        let service = req
            .data::<crate::service::Service>()
            .expect("the service is attached to every request")
            .clone();
        let presented = match req.header(HEADER) {
            Some(token) => Some(token.to_string()),
            None => form_token(&mut req).await?,
        };
        if !presented.is_some_and(|token| service.csrf_matches(&user.0, &token)) {
            return Err(WebError::Forbidden(
                "This form has expired or did not come from this site. Reload the page and try again."
                    .into(),
            )
            .into());
        }
        req.extensions_mut().insert(user);
    }
    next.call(req).await.map(IntoResponse::into_response)
}

/// The `csrf` field of a URL-encoded form body, leaving the body in place for the handler.
async fn form_token(req: &mut Request) -> poem::Result<Option<String>> {
    let is_form = req
        .content_type()
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Ok(None);
    }
    let body = req.take_body().into_bytes().await?;
    if body.len() > MAX_FORM_BYTES {
        return Err(WebError::BadRequest("The form is too large.".into()).into());
    }
    let token = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
        .ok()
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == FIELD).map(|(_, v)| v));
    req.set_body(body);
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> Request {
        crate::api::limits::request_from("127.0.0.1:40000", headers)
    }

    const NONE: &TrustedProxies = &TrustedProxies::none();

    #[test]
    fn fetch_metadata_decides_when_present() {
        assert!(same_origin(
            &request(&[("sec-fetch-site", "same-origin")]),
            NONE
        ));
        assert!(!same_origin(
            &request(&[("sec-fetch-site", "cross-site")]),
            NONE
        ));
        assert!(!same_origin(
            &request(&[("sec-fetch-site", "same-site")]),
            NONE
        ));
        assert!(!same_origin(
            &request(&[("sec-fetch-site", "none"), ("host", "a.example")]),
            NONE
        ));
    }

    #[test]
    fn otherwise_the_origin_must_be_ours() {
        let host = ("host", "tasks.example:3000");
        assert!(same_origin(
            &request(&[host, ("origin", "http://tasks.example:3000")]),
            NONE
        ));
        assert!(!same_origin(
            &request(&[host, ("origin", "http://evil.example")]),
            NONE
        ));
        assert!(!same_origin(&request(&[host, ("origin", "null")]), NONE));
        // Not a browser at all: the token check decides.
        assert!(same_origin(&request(&[host]), NONE));
        // Behind a trusted proxy, the forwarded host is ours.
        let proxied = [
            ("host", "127.0.0.1:3000"),
            ("x-forwarded-host", "tasks.example"),
            ("origin", "https://tasks.example"),
        ];
        let loopback = TrustedProxies::parse("127.0.0.0/8").unwrap();
        assert!(same_origin(&request(&proxied), &loopback));
        assert!(!same_origin(&request(&proxied), NONE));
        // From a peer that is not a trusted proxy, the forwarded host is not ours.
        let elsewhere = TrustedProxies::parse("10.0.0.0/8").unwrap();
        assert!(!same_origin(&request(&proxied), &elsewhere));
    }
}
