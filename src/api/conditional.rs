//! Versions as HTTP validators: `ETag: "<version>"` on reads and writes, `If-None-Match` for
//! 304, `If-Match` for lost-update protection (a stale one gets a 412 problem,
//! `precondition_failed`, whose `current` is the current state), and the response types every
//! versioned resource (team, project, task, comment) answers with.
//!
//! `If-Match` uses the strong comparison (RFC 9110 13.1.1): a weak tag `W/"1"` never matches.
//! `If-None-Match` uses the weak one, as HTTP says.
//!
//! A task's representation also changes without an edit (its comment and attachment counts),
//! so its tag is `"<version>.<comments>.<attachments>"`: `If-None-Match` compares whole tags,
//! so a new comment is never answered 304, while `If-Match` compares the version before the
//! first dot, so a comment posted meanwhile does not fail an edit with 412.

use poem::http::StatusCode;
use poem_openapi::payload::Json;
use poem_openapi::types::{ParseFromJSON, ToJSON};
use poem_openapi::{ApiResponse, Object};

use super::error::{ErrorCode, FieldProblem};
use crate::service::Write;

/// The `ETag` of a version.
pub fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

/// The version an `If-Match` header asks for. `None` when absent or `*` (no condition).
/// A value that names no version of ours can never match, so it is version 0 (never used):
/// the write is refused with 412 rather than applied blindly. The comparison is strong: a
/// weak tag (`W/"3"`) names no version here, so a list of only weak tags never matches.
pub fn if_match(header: Option<&str>) -> Option<u64> {
    let value = header?.trim();
    if value == "*" {
        return None;
    }
    Some(first_version(value).unwrap_or(0))
}

/// True when an `If-None-Match` header already names the tag `current` (the client's copy is
/// current). Weak comparison: a `W/` prefix is ignored.
pub fn none_match_hits(header: Option<&str>, current: &str) -> bool {
    let weak = |tag: &str| {
        let tag = tag.trim();
        tag.strip_prefix("W/").unwrap_or(tag).to_string()
    };
    header.is_some_and(|value| {
        value.trim() == "*" || value.split(',').any(|tag| weak(tag) == current)
    })
}

fn first_version(value: &str) -> Option<u64> {
    value.split(',').find_map(parse_strong_tag)
}

/// The version a strong tag names; `None` for a weak tag or anything else.
fn parse_strong_tag(tag: &str) -> Option<u64> {
    let tag = tag.trim();
    let opaque = tag.strip_prefix('"')?.strip_suffix('"')?;
    opaque.split('.').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_forms() {
        assert_eq!(if_match(None), None);
        assert_eq!(if_match(Some("*")), None);
        assert_eq!(if_match(Some("\"3\"")), Some(3));
        assert_eq!(if_match(Some("\"2\", \"4\"")), Some(2));
        assert_eq!(if_match(Some("garbage")), Some(0));
        assert_eq!(
            if_match(Some("\"5.2.1\"")),
            Some(5),
            "a task's tag names its version first"
        );
    }

    #[test]
    fn if_match_is_strong() {
        assert_eq!(
            if_match(Some("W/\"4\"")),
            Some(0),
            "a weak tag never matches"
        );
        assert_eq!(if_match(Some("w/\"4\"")), Some(0));
        assert_eq!(if_match(Some("W/\"4.0.0\"")), Some(0));
        assert_eq!(
            if_match(Some("W/\"3\", \"4\"")),
            Some(4),
            "a strong tag in the list still counts"
        );
        assert_eq!(if_match(Some(" \"4\" ")), Some(4));
    }

    #[test]
    fn stale_is_a_problem_with_the_current_state() {
        let problem = PreconditionFailed::new(Body { version: 3 });
        assert_eq!(problem.status, 412);
        assert_eq!(problem.code, ErrorCode::PreconditionFailed);
        assert_eq!(problem.title, "Precondition Failed");
        assert_eq!(problem.current.version, 3);
        assert!(problem.errors.is_empty());
    }

    #[derive(Object)]
    struct Body {
        version: u64,
    }

    #[test]
    fn if_none_match_forms() {
        assert!(none_match_hits(Some("\"2\", \"3\""), "\"3\""));
        assert!(none_match_hits(Some("W/\"3\""), "\"3\""));
        assert!(!none_match_hits(Some("\"2\""), "\"3\""));
        assert!(
            !none_match_hits(Some("\"3.0.0\""), "\"3.1.0\""),
            "a new comment changes the tag"
        );
        assert!(none_match_hits(Some("*"), "\"1\""));
        assert!(!none_match_hits(None, "\"1\""));
        assert_eq!(etag(7), "\"7\"");
    }
}

/// A response body that carries a version, the basis of its `ETag`.
pub trait Versioned {
    fn version(&self) -> u64;

    /// The `ETag`: the version, unless the representation can change without one.
    fn etag(&self) -> String {
        etag(self.version())
    }
}

/// A resource's own URL, under `/api`: the `Location` of the 201 that created it.
pub trait Located {
    fn location(&self) -> String;
}

/// The 412 answer to a stale `If-Match`: a problem (`precondition_failed`) that also carries
/// the resource as it is now in `current`, so a client can merge and retry without a read.
/// One schema per resource (`PreconditionFailed_Task`, ...), so `current` is typed.
#[derive(Object, Debug)]
pub struct PreconditionFailed<T: ParseFromJSON + ToJSON> {
    /// The HTTP status code, 412.
    pub status: u16,
    /// Always `precondition_failed`.
    pub code: ErrorCode,
    /// Short human-readable summary of the kind of problem.
    pub title: String,
    /// Human-readable explanation of this occurrence.
    pub detail: String,
    /// Always empty (kept so every problem has the same fields).
    pub errors: Vec<FieldProblem>,
    /// The resource as it is now; its version is in the response's `ETag`.
    pub current: T,
}

impl<T: ParseFromJSON + ToJSON> PreconditionFailed<T> {
    pub fn new(current: T) -> Self {
        let status = StatusCode::PRECONDITION_FAILED;
        Self {
            status: status.as_u16(),
            code: ErrorCode::PreconditionFailed,
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            detail: "If-Match names an older version: nothing changed; `current` is the \
                     current state"
                .to_string(),
            errors: Vec::new(),
            current,
        }
    }
}

/// A create's answer: the new resource, its `ETag` and its URL.
#[derive(ApiResponse)]
pub enum Created<T: ToJSON + Send + Sync> {
    /// Created.
    #[oai(status = 201)]
    Created(
        Json<T>,
        #[oai(header = "ETag")] String,
        /// The new resource's URL, e.g. `/api/tasks/{id}`.
        #[oai(header = "Location")]
        String,
    ),
}

/// A read's answer: the resource, or 304 when the client's copy is current.
#[derive(ApiResponse)]
pub enum Read<T: ToJSON + Send + Sync> {
    /// The resource.
    #[oai(status = 200)]
    Ok(Json<T>, #[oai(header = "ETag")] String),
    /// Unchanged since the version in `If-None-Match`.
    #[oai(status = 304)]
    NotModified(#[oai(header = "ETag")] String),
}

/// An update's answer: the new state, or a 412 problem with the current state when `If-Match`
/// was stale.
// Built once per request and consumed at once: boxing the body would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(ApiResponse)]
pub enum Written<T: ParseFromJSON + ToJSON> {
    /// The updated resource.
    #[oai(status = 200)]
    Ok(Json<T>, #[oai(header = "ETag")] String),
    /// `If-Match` named an older version (`precondition_failed`): nothing changed; `current`
    /// is the current state and `ETag` its tag.
    #[oai(status = 412, content_type = "application/problem+json")]
    Stale(Json<PreconditionFailed<T>>, #[oai(header = "ETag")] String),
}

/// A delete's answer: 204, or a 412 problem with the current state when `If-Match` was stale.
#[allow(clippy::large_enum_variant)]
#[derive(ApiResponse)]
pub enum Deleted<T: ParseFromJSON + ToJSON> {
    /// Deleted.
    #[oai(status = 204)]
    Deleted,
    /// `If-Match` named an older version (`precondition_failed`): nothing was deleted;
    /// `current` is the current state and `ETag` its tag.
    #[oai(status = 412, content_type = "application/problem+json")]
    Stale(Json<PreconditionFailed<T>>, #[oai(header = "ETag")] String),
}

fn tagged<T: Versioned>(body: T) -> (Json<T>, String) {
    let tag = body.etag();
    (Json(body), tag)
}

fn stale<T: Versioned + ParseFromJSON + ToJSON>(
    current: T,
) -> (Json<PreconditionFailed<T>>, String) {
    let tag = current.etag();
    (Json(PreconditionFailed::new(current)), tag)
}

impl<T: Versioned + Located + ToJSON + Send + Sync> Created<T> {
    pub fn new(body: impl Into<T>) -> Self {
        let body = body.into();
        let location = body.location();
        let (body, tag) = tagged(body);
        Created::Created(body, tag, location)
    }
}

impl<T: Versioned + ToJSON + Send + Sync> Read<T> {
    /// The resource, or 304 when `If-None-Match` names its version.
    pub fn new(body: impl Into<T>, if_none_match: Option<&str>) -> Self {
        let body = body.into();
        let tag = body.etag();
        if none_match_hits(if_none_match, &tag) {
            return Read::NotModified(tag);
        }
        let (body, tag) = tagged(body);
        Read::Ok(body, tag)
    }
}

impl<T: Versioned + ParseFromJSON + ToJSON> Written<T> {
    pub fn new<V: Into<T>>(write: Write<V, V>) -> Self {
        match write {
            Write::Done(view) => {
                let (body, tag) = tagged(view.into());
                Written::Ok(body, tag)
            }
            Write::Stale(current) => {
                let (body, tag) = stale(current.into());
                Written::Stale(body, tag)
            }
        }
    }
}

impl<T: Versioned + ParseFromJSON + ToJSON> Deleted<T> {
    pub fn new<V: Into<T>>(write: Write<(), V>) -> Self {
        match write {
            Write::Done(()) => Deleted::Deleted,
            Write::Stale(current) => {
                let (body, tag) = stale(current.into());
                Deleted::Stale(body, tag)
            }
        }
    }
}
