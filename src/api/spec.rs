//! The published OpenAPI document.
//!
//! Every operation returns the one `ApiError` type, so poem-openapi lists all of its statuses
//! on every operation (a 409 on `/health`). The published spec keeps, per operation, only the
//! errors it can answer with: 400, 429 (the per-client rate limit applies to every request;
//! its `Retry-After` header is documented here) and 500 always; 413 and 415 when it takes a body; 401 and
//! 403 when it needs a token; 404 when its path names a resource; plus the statuses each API
//! module declares next to its handlers (`ERRORS`). schemathesis' status-code conformance
//! check in CI fails if a handler answers with a status its operation does not list.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{
    attachments, auth, comments, invitations, notifications, openapi, projects, tasks, teams,
    users, ws,
};

/// Error statuses of one operation beyond those its shape implies.
pub type OperationErrors = (&'static str, &'static [u16]);

fn declared_errors() -> impl Iterator<Item = &'static OperationErrors> {
    auth::ERRORS
        .iter()
        .chain(users::ERRORS)
        .chain(teams::ERRORS)
        .chain(invitations::ERRORS)
        .chain(projects::ERRORS)
        .chain(tasks::ERRORS)
        .chain(comments::ERRORS)
        .chain(attachments::ERRORS)
        .chain(notifications::ERRORS)
        .chain(ws::ERRORS)
}

/// The spec as served at `/api/openapi.json`, printed by `tasker openapi` and committed.
pub fn published() -> String {
    let mut spec: Value = serde_json::from_str(&openapi().spec()).expect("poem-openapi emits JSON");
    document_upload(&mut spec);
    prune_error_responses(&mut spec);
    serde_json::to_string_pretty(&spec).expect("a JSON value serializes")
}

/// Swagger UI for the published spec.
pub fn swagger_ui_html(published: &str) -> String {
    let api = openapi();
    // The generated page embeds the generated spec once; swap in the published one.
    api.swagger_ui_html().replacen(&api.spec(), published, 1)
}

/// Gives the upload operation its multipart request body (its handler streams the body
/// itself, so poem-openapi cannot see it).
fn document_upload(spec: &mut Value) {
    let Some(paths) = spec["paths"].as_object_mut() else {
        return;
    };
    for item in paths.values_mut() {
        if let Some(post) = item.get_mut("post")
            && post["operationId"] == "uploadAttachments"
        {
            post["requestBody"] = attachments::upload_request_body();
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
        allowed.extend([413, 415]);
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
    for (_, extra) in declared_errors().filter(|(op, _)| *op == id) {
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
