//! The published OpenAPI document.
//!
//! Every operation returns the one `ApiError` type, so poem-openapi lists all of its statuses
//! on every operation (a 409 on `/health`). The published spec keeps, per operation, only the
//! errors it can answer with: 400, 429 (the per-client rate limit applies to every request;
//! its `Retry-After` header is documented here) and 500 always; 413, 415 and 422 (a JSON key
//! given twice is refused before the handler) when it takes a body; 401 and
//! 403 when it needs a token; 404 when its path names a resource; plus the statuses each API
//! `*Api` struct declares next to its handlers ([`Documented::ERRORS`]). schemathesis'
//! status-code conformance check in CI fails if a handler answers with a status its
//! operation does not list.
//!
//! This file knows no handler module: what each adds comes through [`Documented`], which
//! `api/mod.rs`'s tuple of every `*Api` implements by asking each member.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{Apis, openapi};

/// Error statuses of one operation beyond those its shape implies.
pub type OperationErrors = (&'static str, &'static [u16]);

/// What an `*Api` struct adds to the published spec beyond what poem-openapi derives.
pub trait Documented {
    /// Error statuses of its operations beyond those their shape implies.
    const ERRORS: &'static [OperationErrors] = &[];

    /// Request bodies poem-openapi cannot see (a handler that reads its body itself), by
    /// operation id.
    fn request_bodies() -> Vec<(&'static str, Value)> {
        Vec::new()
    }

    /// Every declared error: [`Self::ERRORS`], or for a tuple those of all its members.
    fn declared_errors() -> Vec<OperationErrors> {
        Self::ERRORS.to_vec()
    }
}

/// `Documented` for a tuple of `*Api` structs (as `OpenApiService` takes them): the union of
/// its members'. Implemented for every arity up to 16, like poem-openapi's `OpenApi`.
macro_rules! documented_tuples {
    ($head:ident $(, $tail:ident)*) => {
        // `mut` is unused by the one-member tuple.
        #[allow(unused_mut)]
        impl<$head: Documented $(, $tail: Documented)*> Documented for ($head, $($tail,)*) {
            fn request_bodies() -> Vec<(&'static str, Value)> {
                let mut all = $head::request_bodies();
                $(all.extend($tail::request_bodies());)*
                all
            }

            fn declared_errors() -> Vec<OperationErrors> {
                let mut all = $head::declared_errors();
                $(all.extend($tail::declared_errors());)*
                all
            }
        }
        documented_tuples!($($tail),*);
    };
    () => {};
}

documented_tuples!(A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P);

fn declared_errors() -> Vec<OperationErrors> {
    Apis::declared_errors()
}

/// The spec as served at `/api/openapi.json`, printed by `tasker openapi` and committed.
pub fn published() -> String {
    let mut spec: Value = serde_json::from_str(&openapi().spec()).expect("poem-openapi emits JSON");
    document_request_bodies(&mut spec);
    prune_error_responses(&mut spec);
    serde_json::to_string_pretty(&spec).expect("a JSON value serializes")
}

/// Swagger UI for the published spec.
pub fn swagger_ui_html(published: &str) -> String {
    let api = openapi();
    // The generated page embeds the generated spec once; swap in the published one.
    api.swagger_ui_html().replacen(&api.spec(), published, 1)
}

/// Gives the operations whose handlers read their bodies themselves (the multipart upload)
/// the request body poem-openapi cannot see.
fn document_request_bodies(spec: &mut Value) {
    let Some(paths) = spec["paths"].as_object_mut() else {
        return;
    };
    let bodies = Apis::request_bodies();
    let operations = paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut());
    for operation in operations {
        if let Some((_, body)) = bodies
            .iter()
            .find(|(id, _)| operation["operationId"] == *id)
        {
            operation["requestBody"] = body.clone();
        }
    }
}

fn prune_error_responses(spec: &mut Value) {
    let Some(paths) = spec["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(operations) = item.as_object_mut() else {
            continue;
        };
        for operation in operations.values_mut() {
            let allowed = allowed_errors(path, operation);
            if let Some(responses) = operation["responses"].as_object_mut() {
                // Only the shared problem responses are pruned; an operation's own error
                // responses (a 412 with the current state) always stay.
                responses.retain(|status, response| {
                    let problem = response["content"]
                        .get(super::error::PROBLEM_JSON)
                        .is_some();
                    status
                        .parse::<u16>()
                        .map_or(true, |s| s < 400 || !problem || allowed.contains(&s))
                });
                if let Some(limited) = responses.get_mut("429") {
                    limited["headers"]["Retry-After"] = retry_after_header();
                }
            }
        }
    }
}

/// The `Retry-After` header of a 429.
fn retry_after_header() -> Value {
    serde_json::json!({
        "description": "Whole seconds to wait before retrying (at least 1).",
        "required": true,
        "schema": {"type": "integer", "format": "int64", "minimum": 1}
    })
}

fn allowed_errors(path: &str, operation: &Value) -> BTreeSet<u16> {
    let mut allowed = BTreeSet::from([400, 429, 500]);
    if operation.get("requestBody").is_some() {
        allowed.extend([413, 415, 422]);
    }
    if operation
        .get("security")
        .is_some_and(|s| s.as_array().is_some_and(|a| !a.is_empty()))
    {
        allowed.extend([401, 403]);
    }
    if path.contains('{') {
        allowed.insert(404);
    }
    let id = operation["operationId"].as_str().unwrap_or_default();
    for (_, extra) in declared_errors().into_iter().filter(|(op, _)| *op == id) {
        allowed.extend(extra.iter().copied());
    }
    allowed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_operations_exist() {
        let spec: Value = serde_json::from_str(&published()).unwrap();
        let ids: BTreeSet<&str> = spec["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .filter_map(|op| op["operationId"].as_str())
            .collect();
        for (id, _) in declared_errors() {
            assert!(ids.contains(id), "ERRORS names unknown operation {id}");
        }
    }

    #[test]
    fn health_lists_only_its_errors() {
        let spec: Value = serde_json::from_str(&published()).unwrap();
        let responses = spec["paths"]["/health"]["get"]["responses"]
            .as_object()
            .unwrap();
        let statuses: Vec<&str> = responses.keys().map(String::as_str).collect();
        assert_eq!(statuses, ["200", "400", "429", "500"]);
        assert!(responses["429"]["headers"]["Retry-After"].is_object());
    }

    #[test]
    fn swagger_ui_embeds_the_published_spec() {
        let published = published();
        assert!(swagger_ui_html(&published).contains(&published));
    }
}
