//! Cross-cutting request handling: request ids, the request log and metrics, the body limit,
//! the duplicate-key check and the naming of fields in a body that does not parse, the panic
//! guard.

use std::any::Any;
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use poem::PathPattern;
use poem::error::{ReadBodyError, ResponseError};
use poem::http::{HeaderValue, StatusCode};
use poem::{Endpoint, IntoResponse, Request, Response};
use poem_openapi::error::ParseRequestPayloadError;
use tracing::Instrument;

use super::MAX_JSON_BODY_BYTES;
use super::error::{ErrorCode, Problem};
use super::metrics::{Metrics, Routes};
use super::validation::BodySchemas;
use crate::domain::FieldError;

fn too_large() -> poem::Error {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::PayloadTooLarge,
        format!("the request body is over {MAX_JSON_BODY_BYTES} bytes"),
    )
    .into()
}

/// Refuses bodies over the JSON limit with 413: by `Content-Length` before reading anything,
/// and while reading for chunked bodies, so an oversize body is never buffered whole. Then
/// refuses a JSON body with a key twice in one object (see [`duplicate_key`]). A JSON body
/// the operation then fails to parse is answered with the fields at fault (see
/// [`BodySchemas::explain`]).
pub async fn limit_body<E: Endpoint>(
    next: Arc<E>,
    mut req: Request,
    schemas: Arc<BodySchemas>,
) -> poem::Result<Response> {
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
        if is_json(&req)
            && let Some(path) = duplicate_key(&body)
        {
            let mut problem = Problem::validation(vec![FieldError::new(
                path.as_str(),
                "is given more than once",
            )]);
            problem.detail = format!("the JSON body has the key `{path}` more than once");
            return Err(problem.into());
        }
        if is_json(&req) {
            let method = req.method().clone();
            req.set_body(body.clone());
            return match next.call(req).await {
                Err(err) if err.is::<ParseRequestPayloadError>() => {
                    tracing::debug!(error = %err, "a JSON body does not parse");
                    let pattern = err.data::<PathPattern>().cloned();
                    let problem = schemas.explain(&method, pattern.as_ref().map(|p| &*p.0), &body);
                    let mut err = poem::Error::from(problem);
                    if let Some(pattern) = pattern {
                        // For the request log and metrics, as poem's own errors carry it.
                        err.set_data(pattern);
                    }
                    Err(err)
                }
                other => other.map(IntoResponse::into_response),
            };
        }
        req.set_body(body);
    }
    next.call(req).await.map(IntoResponse::into_response)
}

/// Whether the body is declared JSON (`application/json`, or any `application/…+json`), as
/// the API's JSON payloads accept.
fn is_json(req: &Request) -> bool {
    req.content_type().is_some_and(|value| {
        let essence = value.split(';').next().unwrap_or("").trim();
        let essence = essence.to_ascii_lowercase();
        essence
            .strip_prefix("application/")
            .is_some_and(|subtype| subtype == "json" || subtype.ends_with("+json"))
    })
}

/// The path of the first key given twice in one object of a JSON text (`email`,
/// `labels[2].name`), or `None` when there is none or the text is not JSON (the handler then
/// says what is wrong with it). Otherwise a limiter could read one copy of a key and the
/// handler the other (serde_json keeps the last), e.g. a login's `email`. Walks the text
/// without building it: memory is the keys of the objects being read, and nesting is
/// bounded by serde_json's recursion limit.
pub fn duplicate_key(body: &[u8]) -> Option<String> {
    use serde::de::DeserializeSeed;
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let mut walk = Walk::default();
    match (&mut walk).deserialize(&mut deserializer) {
        Err(_) if walk.duplicate => Some(render(&walk.path)),
        _ => None,
    }
}

/// One step of the path to a JSON value: an object's key or an array's index.
pub(super) enum Step {
    Key(String),
    Index(usize),
}

/// A JSON path as the API names fields: `labels[2]`, `a.b[1].c`.
pub(super) fn render(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(key) if out.is_empty() => out.push_str(key),
            Step::Key(key) => {
                out.push('.');
                out.push_str(key);
            }
            Step::Index(index) => out.push_str(&format!("[{index}]")),
        }
    }
    out
}

/// A visitor that reads any JSON value and fails at the first key an object repeats, leaving
/// `path` at that key.
#[derive(Default)]
struct Walk {
    path: Vec<Step>,
    duplicate: bool,
}

impl<'de> serde::de::DeserializeSeed<'de> for &mut Walk {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for &mut Walk {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        loop {
            self.path.push(Step::Index(index));
            let more = seq.next_element_seed(&mut *self)?;
            self.path.pop();
            if more.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if seen.contains(&key) {
                self.path.push(Step::Key(key));
                self.duplicate = true;
                return Err(serde::de::Error::custom("a key is given twice"));
            }
            self.path.push(Step::Key(key.clone()));
            map.next_value_seed(&mut *self)?;
            self.path.pop();
            seen.insert(key);
        }
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::duplicate_key;

    #[test]
    fn duplicate_keys_are_found_anywhere() {
        let found = |text: &str| duplicate_key(text.as_bytes());
        assert_eq!(
            found(r#"{"email":"decoy@x","email":"victim@x","password":"p"}"#).as_deref(),
            Some("email")
        );
        assert_eq!(
            found(r#"{"a":{"b":[1,{"c":1,"d":2,"c":3}]}}"#).as_deref(),
            Some("a.b[1].c")
        );
        // An escaped spelling of the same key is the same key.
        assert_eq!(
            found(r#"{"email":"a","\u0065mail":"b"}"#).as_deref(),
            Some("email")
        );
        assert_eq!(found(r#"[{"x":1},{"x":2}]"#), None);
        assert_eq!(found(r#"{"a":{"x":1},"b":{"x":1}}"#), None);
        assert_eq!(found(r#"{"a":1,"a":2"#).as_deref(), Some("a"));
        // Not JSON, or nested past serde_json's limit: the handler says what is wrong.
        assert_eq!(found("not json"), None);
        assert_eq!(found(&"[".repeat(100_000)), None);
        assert_eq!(found(""), None);
    }
}
