//! Cross-cutting request handling: request ids, the request log and metrics, the body limit,
//! the panic guard.

use std::any::Any;
use std::sync::Arc;
use std::time::Instant;

use poem::PathPattern;
use poem::error::{ReadBodyError, ResponseError};
use poem::http::{HeaderValue, StatusCode};
use poem::{Endpoint, IntoResponse, Request, Response};
use tracing::Instrument;

use super::MAX_JSON_BODY_BYTES;
use super::error::{ErrorCode, Problem};
use super::metrics::{Metrics, Routes};

fn too_large() -> poem::Error {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::PayloadTooLarge,
        format!("the request body is over {MAX_JSON_BODY_BYTES} bytes"),
    )
    .into()
}

/// Refuses bodies over the JSON limit with 413: by `Content-Length` before reading anything,
/// and while reading for chunked bodies, so an oversize body is never buffered whole.
pub async fn limit_body<E: Endpoint>(next: Arc<E>, mut req: Request) -> poem::Result<Response> {
    if super::attachments::is_upload(&req) {
        // Streamed to disk by the handler, under its own per-file limit.
        return next.call(req).await.map(IntoResponse::into_response);
    }
    let declared = req
        .header("content-length")
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_JSON_BODY_BYTES as u64) {
        return Err(too_large());
    }
    if declared != Some(0) && !req.method().is_safe() {
        let body = req
            .take_body()
            .into_bytes_limit(MAX_JSON_BODY_BYTES)
            .await
            .map_err(|e| match e {
                ReadBodyError::PayloadTooLarge => too_large(),
                other => Problem::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::BadRequest,
                    format!("cannot read the body: {other}"),
                )
                .into(),
            })?;
        req.set_body(body);
    }
    next.call(req).await.map(IntoResponse::into_response)
}

/// The header carrying a request's id.
pub const REQUEST_ID: &str = "x-request-id";
/// The longest client-sent request id kept.
pub const REQUEST_ID_MAX_CHARS: usize = 128;

/// The id of the request being handled: the client's `X-Request-Id` when it is 1 to 128
/// visible ASCII characters, else a new UUIDv7. In the request data for handlers.
#[derive(Debug, Clone)]
pub struct RequestId(pub Arc<str>);

fn request_id(req: &Request) -> Arc<str> {
    req.header(REQUEST_ID)
        .filter(|id| {
            !id.is_empty()
                && id.len() <= REQUEST_ID_MAX_CHARS
                && id.bytes().all(|b| b.is_ascii_graphic())
        })
        .map(Arc::from)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string().into())
}

/// What the outermost middleware needs: the route labels and, with `--metrics`, the metrics.
pub struct Observer {
    pub routes: Arc<Routes>,
    pub metrics: Option<Arc<Metrics>>,
}

/// Gives every request an id (echoed in `X-Request-Id` on every response), then writes one
/// log line with method, route template, status, latency and the id, and counts the request
/// in the metrics. Never the path's concrete values, the query string (it may carry a
/// `?token=`), a header or a body.
pub async fn observe<E: Endpoint>(
    next: Arc<E>,
    mut req: Request,
    observer: Arc<Observer>,
) -> poem::Result<Response> {
    let started = Instant::now();
    let id = request_id(&req);
    req.set_data(RequestId(id.clone()));
    let method = req.method().clone();
    let span = tracing::info_span!("request", request_id = %id);
    let mut response = next.get_response(req).instrument(span).await;
    let took = started.elapsed();
    let pattern = response.data::<PathPattern>().map(|p| p.0.clone());
    let route = observer.routes.label(pattern.as_deref());
    let status = response.status();
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let latency_ms = took.as_secs_f64() * 1000.0;
    tracing::info!(
        target: "tasker::http",
        %method,
        route = &**route,
        status = status.as_u16(),
        latency_ms,
        request_id = &*id,
        "request"
    );
    if let Some(metrics) = &observer.metrics {
        metrics.record(&method, pattern.as_deref(), status, took);
    }
    Ok(response)
}

/// A panic in a handler becomes a logged 500 problem, never a dropped connection.
pub fn panic_response(err: Box<dyn Any + Send + 'static>) -> Response {
    let message = err
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| err.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(panic = %message, "handler panicked");
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::InternalError,
        "an internal error occurred; it has been logged",
    )
    .as_response()
}
