//! CORS for the origins in `--cors-origins` (exact matches). Installed only when there is at
//! least one; without it the server sends no CORS headers at all (same-origin only).
//!
//! Written here rather than with `poem::middleware::Cors`, which answers 403 to every request
//! whose `Origin` is not listed, including same-origin `POST`s (browsers send `Origin` on
//! those too), and leaves `Vary: Origin` off for exact origins, so a shared cache could serve
//! one origin's grant to another.
//!
//! A listed origin's preflight (`OPTIONS` with `Access-Control-Request-Method`) gets 204 with
//! the allowed methods and headers; its requests get `Access-Control-Allow-Origin` and the
//! exposed headers. Any other origin's requests pass through untouched (the browser then
//! withholds the response), and its preflight reaches the router, which grants nothing.
//! Credentials (cookies) are never allowed: the API authenticates with bearer tokens.

use std::collections::HashSet;
use std::sync::Arc;

use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Endpoint, IntoResponse, Request, Response};

const ALLOW_METHODS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
const ALLOW_HEADERS: &str =
    "Authorization, Content-Type, If-Match, If-None-Match, Idempotency-Key, X-Request-Id";
const EXPOSE_HEADERS: &str = "ETag, Retry-After, X-Request-Id, Location";
/// How long a browser may cache a preflight answer, in seconds.
const MAX_AGE: &str = "600";

/// The allowed origins, lower-cased (as `config::parse_origin` returns them).
pub struct Cors {
    origins: HashSet<String>,
}

impl Cors {
    /// `None` when no origin is allowed: then the middleware is not needed.
    pub fn new(origins: &[String]) -> Option<Arc<Self>> {
        (!origins.is_empty()).then(|| {
            Arc::new(Self {
                origins: origins.iter().map(|o| o.to_ascii_lowercase()).collect(),
            })
        })
    }

    /// The request's `Origin`, when it is allowed.
    fn allowed(&self, req: &Request) -> Option<HeaderValue> {
        let origin = req.headers().get(header::ORIGIN)?;
        let text = origin.to_str().ok()?.to_ascii_lowercase();
        self.origins.contains(&text).then(|| origin.clone())
    }
}

/// The CORS middleware (see the module header).
pub async fn cors<E: Endpoint>(
    next: Arc<E>,
    req: Request,
    cors: Option<Arc<Cors>>,
) -> poem::Result<Response> {
    let Some(cors) = cors else {
        return next.call(req).await.map(IntoResponse::into_response);
    };
    let allowed = cors.allowed(&req);
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = match &allowed {
        Some(_) if preflight => preflight_response(),
        _ => next.get_response(req).await,
    };
    let headers = response.headers_mut();
    // The answer depends on `Origin` whenever CORS is on, granted or not.
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = allowed {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if !preflight {
            headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSE_HEADERS),
            );
        }
    }
    Ok(response)
}

fn preflight_response() -> Response {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .header(header::ACCESS_CONTROL_ALLOW_METHODS, ALLOW_METHODS)
        .header(header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOW_HEADERS)
        .header(header::ACCESS_CONTROL_MAX_AGE, MAX_AGE)
        .finish()
}
