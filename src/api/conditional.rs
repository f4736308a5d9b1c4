//! Versions as HTTP validators: `ETag: "<version>"` on reads and writes, `If-None-Match` for
//! 304, `If-Match` for lost-update protection (a stale one gets 412 and the current state),
//! and the response types every versioned resource (team, project, task, comment) answers
//! with.
//!
//! A task's representation also changes without an edit (its comment and attachment counts),
//! so its tag is `"<version>.<comments>.<attachments>"`: `If-None-Match` compares whole tags,
//! so a new comment is never answered 304, while `If-Match` compares the version before the
//! first dot, so a comment posted meanwhile does not fail an edit with 412.

use poem_openapi::ApiResponse;
use poem_openapi::payload::Json;
use poem_openapi::types::ToJSON;

use crate::service::Write;

/// The `ETag` of a version.
pub fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

/// The version an `If-Match` header asks for. `None` when absent or `*` (no condition).
/// A value that names no version of ours can never match, so it is version 0 (never used):
/// the write is refused with 412 rather than applied blindly.
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
    value.split(',').find_map(parse_tag)
}

fn parse_tag(tag: &str) -> Option<u64> {
    let tag = tag.trim();
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
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
        assert_eq!(if_match(Some("W/\"4\"")), Some(4));
        assert_eq!(if_match(Some("garbage")), Some(0));
        assert_eq!(
            if_match(Some("\"5.2.1\"")),
            Some(5),
            "a task's tag names its version first"
        );
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

/// A create's answer: the new resource and its `ETag`.
#[derive(ApiResponse)]
pub enum Created<T: ToJSON + Send + Sync> {
    /// Created.
    #[oai(status = 201)]
    Created(Json<T>, #[oai(header = "ETag")] String),
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

/// An update's answer: the new state, or 412 with the current state when `If-Match` was stale.
// Built once per request and consumed at once: boxing the body would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(ApiResponse)]
pub enum Written<T: ToJSON + Send + Sync> {
    /// The updated resource.
    #[oai(status = 200)]
    Ok(Json<T>, #[oai(header = "ETag")] String),
    /// `If-Match` named an older version: nothing changed; this is the current state.
    #[oai(status = 412)]
    Stale(Json<T>, #[oai(header = "ETag")] String),
}

/// A delete's answer: 204, or 412 with the current state when `If-Match` was stale.
#[allow(clippy::large_enum_variant)]
#[derive(ApiResponse)]
pub enum Deleted<T: ToJSON + Send + Sync> {
    /// Deleted.
    #[oai(status = 204)]
    Deleted,
    /// `If-Match` named an older version: nothing was deleted; this is the current state.
    #[oai(status = 412)]
    Stale(Json<T>, #[oai(header = "ETag")] String),
}

fn tagged<T: Versioned>(body: T) -> (Json<T>, String) {
    let tag = body.etag();
    (Json(body), tag)
}

impl<T: Versioned + ToJSON + Send + Sync> Created<T> {
    pub fn new(body: impl Into<T>) -> Self {
        let (body, tag) = tagged(body.into());
        Created::Created(body, tag)
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

impl<T: Versioned + ToJSON + Send + Sync> Written<T> {
    pub fn new<V: Into<T>>(write: Write<V, V>) -> Self {
        match write {
            Write::Done(view) => {
                let (body, tag) = tagged(view.into());
                Written::Ok(body, tag)
            }
            Write::Stale(current) => {
                let (body, tag) = tagged(current.into());
                Written::Stale(body, tag)
            }
        }
    }
}

impl<T: Versioned + ToJSON + Send + Sync> Deleted<T> {
    pub fn new<V: Into<T>>(write: Write<(), V>) -> Self {
        match write {
            Write::Done(()) => Deleted::Deleted,
            Write::Stale(current) => {
                let (body, tag) = tagged(current.into());
                Deleted::Stale(body, tag)
            }
        }
    }
}
