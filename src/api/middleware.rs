//! Cross-cutting request handling.

use std::any::Any;
use std::sync::Arc;
use std::time::Instant;

use poem::error::{ReadBodyError, ResponseError};
use poem::http::StatusCode;
use poem::{Endpoint, IntoResponse, Request, Response};

use super::MAX_JSON_BODY_BYTES;
use super::error::{ErrorCode, Problem};

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

/// One log line per request. Only the path is logged: query strings may carry tokens.
pub async fn log_request<E: Endpoint>(next: Arc<E>, req: Request) -> poem::Result<Response> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let response = next.get_response(req).await;
    let status = response.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(target: "tasker::http", %method, path, status, latency_ms, "request");
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
