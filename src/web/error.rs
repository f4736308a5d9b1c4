//! Errors of the web app, shown as pages (never JSON): the 404 page for what does not exist or
//! may not be seen, the 403 page for what may be seen but not done, and so on. A visitor who
//! is not signed in is sent to the sign-in page instead.

use askama::Template;
use poem::http::{StatusCode, header};
use poem::{IntoResponse, Response};

use super::Chrome;
use crate::service::{AuthError, Error};

/// What went wrong with a page request.
#[derive(Debug)]
pub enum WebError {
    /// Not signed in (or the session ended): sign in, then come back to this path.
    SignIn(String),
    /// No such thing, or the caller may not see it.
    NotFound,
    /// The caller may see it but not do this; or the request came from another site.
    Forbidden(String),
    /// The request itself is malformed.
    BadRequest(String),
    /// Well-formed but not allowed by a rule (shown with the rule's explanation).
    Invalid(String),
    /// Try again shortly (busy, or the search index is being rebuilt).
    Unavailable(String),
    /// Our fault; the cause is logged, not shown.
    Internal,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    chrome: Chrome,
    status: u16,
    title: &'a str,
    message: &'a str,
}

impl WebError {
    fn status(&self) -> StatusCode {
        match self {
            WebError::SignIn(_) => StatusCode::SEE_OTHER,
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            WebError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The page (or, for sign-in, the redirect) this error is shown as.
    pub fn page(&self) -> Response {
        if let WebError::SignIn(next) = self {
            let target = format!("/signin?next={}", urlencode(next));
            return Response::builder()
                .status(StatusCode::SEE_OTHER)
                .header(header::LOCATION, target.as_str())
                // htmx follows this instead of swapping the sign-in page into a fragment.
                .header("HX-Redirect", target.as_str())
                .finish();
        }
        let (title, message) = match self {
            WebError::NotFound => (
                "Not found",
                "There is nothing here, or you do not have access to it.",
            ),
            WebError::Forbidden(m) => ("Not allowed", m.as_str()),
            WebError::BadRequest(m) => ("Bad request", m.as_str()),
            WebError::Invalid(m) => ("Cannot do that", m.as_str()),
            WebError::Unavailable(m) => ("Try again shortly", m.as_str()),
            WebError::Internal | WebError::SignIn(_) => (
                "Something went wrong",
                "The server could not complete this request. It has been logged; try again.",
            ),
        };
        let status = self.status();
        let page = ErrorPage {
            chrome: Chrome::public(),
            status: status.as_u16(),
            title,
            message,
        };
        match page.render() {
            Ok(html) => super::html_response(html)
                .with_status(status)
                .into_response(),
            Err(_) => Response::builder().status(status).body(title.to_string()),
        }
    }
}

/// The 404 page, for routes that match nothing.
pub fn not_found_page() -> Response {
    WebError::NotFound.page()
}

pub fn urlencode(text: &str) -> String {
    serde_urlencoded::to_string([("", text)])
        .map(|s| s.trim_start_matches('=').to_string())
        .unwrap_or_default()
}

impl From<WebError> for poem::Error {
    fn from(e: WebError) -> Self {
        poem::Error::from_response(e.page())
    }
}

impl From<askama::Error> for WebError {
    fn from(e: askama::Error) -> Self {
        tracing::error!(error = %e, "a page failed to render");
        WebError::Internal
    }
}

impl From<Error> for WebError {
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound(_) => WebError::NotFound,
            Error::Forbidden(message) => WebError::Forbidden(message),
            Error::Unauthenticated(AuthError::InvalidCredentials) => {
                WebError::Invalid("The email or password is incorrect.".into())
            }
            Error::Unauthenticated(_) => WebError::SignIn("/".into()),
            Error::Validation(fields) => WebError::Invalid(
                fields
                    .iter()
                    .map(|f| format!("{}: {}", f.field, f.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            Error::Busy | Error::IndexRebuilding { .. } => WebError::Unavailable(e.to_string()),
            Error::Internal(cause) => {
                tracing::error!(error = %cause, "a page request failed");
                WebError::Internal
            }
            Error::Storage(cause) | Error::Search(cause) => {
                tracing::error!(error = %cause, "a page request failed");
                WebError::Internal
            }
            other => WebError::Invalid(other.to_string()),
        }
    }
}

pub type WebResult<T> = Result<T, WebError>;
