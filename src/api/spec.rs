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

use bytes::Bytes;
use poem::endpoint::make_sync;
use poem::http::{StatusCode, header};
use poem::{Endpoint, IntoResponse, Response};
use serde_json::Value;

use super::conditional::none_match_hits;
use super::encoding::{accepts_gzip, gzip};
use super::{Apis, openapi};

/// Error statuses of one operation beyond those its shape implies.
pub type OperationErrors = (&'static str, &'static [u16]);

/// What an `*Api` struct adds to the published spec beyond what poem-openapi derives.
pub trait Documented {
    /// Error statuses of its operations beyond those their shape implies.
    const ERRORS: &'static [OperationErrors] = &[];

    /// Query parameters a handler takes as optional only to answer their absence with a 422
    /// naming them (rather than poem-openapi's 400), but which every request must carry:
    /// (operation id, parameter name). The spec marks them required.
    const REQUIRED_PARAMETERS: &'static [(&'static str, &'static str)] = &[];

    /// `GET` operations that also answer `HEAD` (poem routes a `HEAD` to the `GET` handler and
    /// drops the body): (the `GET`'s operation id, the `HEAD`'s). The spec lists the `HEAD`
    /// as an operation of its own, with the same parameters and headers and no bodies.
    const HEAD_OPERATIONS: &'static [(&'static str, &'static str)] = &[];

    /// Request bodies poem-openapi cannot see (a handler that reads its body itself), by
    /// operation id.
    fn request_bodies() -> Vec<(&'static str, Value)> {
        Vec::new()
    }

    /// Examples of request schemas, by schema name: what Swagger UI fills in for "Try it
    /// out". Each must succeed as given (`tests/contract.rs` sends them).
    fn examples() -> Vec<(&'static str, Value)> {
        Vec::new()
    }

    /// Every declared error: [`Self::ERRORS`], or for a tuple those of all its members.
    fn declared_errors() -> Vec<OperationErrors> {
        Self::ERRORS.to_vec()
    }

    /// [`Self::REQUIRED_PARAMETERS`], or for a tuple those of all its members.
    fn required_parameters() -> Vec<(&'static str, &'static str)> {
        Self::REQUIRED_PARAMETERS.to_vec()
    }

    /// [`Self::HEAD_OPERATIONS`], or for a tuple those of all its members.
    fn head_operations() -> Vec<(&'static str, &'static str)> {
        Self::HEAD_OPERATIONS.to_vec()
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

            fn examples() -> Vec<(&'static str, Value)> {
                let mut all = $head::examples();
                $(all.extend($tail::examples());)*
                all
            }

            fn declared_errors() -> Vec<OperationErrors> {
                let mut all = $head::declared_errors();
                $(all.extend($tail::declared_errors());)*
                all
            }

            fn required_parameters() -> Vec<(&'static str, &'static str)> {
                let mut all = $head::required_parameters();
                $(all.extend($tail::required_parameters());)*
                all
            }

            fn head_operations() -> Vec<(&'static str, &'static str)> {
                let mut all = $head::head_operations();
                $(all.extend($tail::head_operations());)*
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
    document_head_operations(&mut spec);
    require_parameters(&mut spec);
    add_examples(&mut spec);
    unwrap_single_refs(&mut spec);
    order_tags(&mut spec);
    serde_json::to_string_pretty(&spec).expect("a JSON value serializes")
}

/// The tags in the order a reader meets the product (Swagger UI shows them so), not
/// poem-openapi's alphabetical one. A tag missing here goes last.
const TAG_ORDER: &[&str] = &[
    "Auth",
    "Users",
    "Teams",
    "Invitations",
    "Projects",
    "Tasks",
    "Comments",
    "Attachments",
    "Notifications",
    "Realtime",
    "Webhooks",
    "Ops",
];

fn order_tags(spec: &mut Value) {
    if let Some(tags) = spec.get_mut("tags").and_then(Value::as_array_mut) {
        tags.sort_by_key(|tag| {
            let name = tag["name"].as_str().unwrap_or("");
            TAG_ORDER
                .iter()
                .position(|known| *known == name)
                .unwrap_or(TAG_ORDER.len())
        });
    }
}

/// Swagger UI for the published spec; the token given to "Authorize" survives a reload
/// (`persistAuthorization`: Swagger UI keeps it in the browser's local storage).
pub fn swagger_ui_html(published: &str) -> String {
    let api = openapi();
    // The generated page embeds the generated spec once; swap in the published one.
    api.swagger_ui_html()
        .replacen(&api.spec(), published, 1)
        .replacen(
            "deepLinking: true,",
            "deepLinking: true,\n        persistAuthorization: true,",
            1,
        )
}

/// `/docs`: Swagger UI for the published spec, with the security headers every HTML page of
/// the server carries and a Content-Security-Policy of its own ([`docs_policy`]). The page is
/// large (the Swagger UI bundle and the spec, about 2 MB), so it is sent gzip-compressed to
/// clients that take it (compressed once, on the first request) and carries an `ETag`: a
/// reload revalidates and gets 304.
pub fn docs(published: &str) -> impl Endpoint<Output = Response> + use<> {
    use sha2::{Digest, Sha256};
    use std::sync::{Arc, OnceLock};

    let html = swagger_ui_html(published);
    let policy = header::HeaderValue::from_str(&docs_policy(&html))
        .expect("hashes and keywords are valid header text");
    let digest = Sha256::digest(html.as_bytes());
    let tag: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    let etag = format!("\"{tag}\"");
    let etag_value = header::HeaderValue::from_str(&etag).expect("hex is valid header text");
    let html = Bytes::from(html);
    let packed: Arc<OnceLock<Option<Bytes>>> = Arc::new(OnceLock::new());
    make_sync(move |req| {
        let mut response = if none_match_hits(req.header(header::IF_NONE_MATCH), &etag) {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            let packed = accepts_gzip(&req)
                .then(|| packed.get_or_init(|| gzip(&html).map(Bytes::from)))
                .and_then(Option::as_ref);
            let builder = Response::builder().content_type("text/html; charset=utf-8");
            match packed {
                Some(packed) => builder
                    .header(header::CONTENT_ENCODING, "gzip")
                    .body(packed.clone()),
                None => builder.body(html.clone()),
            }
        };
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_SECURITY_POLICY, policy.clone());
        headers.insert(header::ETAG, etag_value.clone());
        for (name, value) in [
            (header::CACHE_CONTROL, "no-cache"),
            (header::VARY, "Accept-Encoding"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ] {
            headers.insert(name, header::HeaderValue::from_static(value));
        }
        response
    })
}

/// The Content-Security-Policy of the Swagger UI page. poem-openapi serves Swagger UI as one
/// page whose script bundle, style sheet and start-up code are inline elements, so the policy
/// allows exactly those elements, by the SHA-256 of their text, and no other script or style;
/// requests go only to this server ("Try it out"), and no one may frame the page.
pub fn docs_policy(html: &str) -> String {
    let (scripts, styles) = inline_element_hashes(html);
    format!(
        "default-src 'none'; script-src {}; style-src {}; img-src 'self' data:; \
         font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'",
        scripts.join(" "),
        styles.join(" ")
    )
}

/// The CSP hash sources (`'sha256-…'`) of the inline `<script>` and `<style>` elements of
/// `html`, in document order. Elements are read one after the other, each to its own end tag,
/// so text inside a script (the bundle mentions `<style`) is never taken for an element.
fn inline_element_hashes(html: &str) -> (Vec<String>, Vec<String>) {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let (mut scripts, mut styles) = (Vec::new(), Vec::new());
    let mut rest = html;
    loop {
        let next = ["<script", "<style"]
            .iter()
            .filter_map(|open| rest.find(open).map(|at| (at, *open)))
            .min();
        let Some((at, open)) = next else {
            break;
        };
        let tag = &rest[at + 1..at + open.len()];
        let close = format!("</{tag}>");
        let after = &rest[at + open.len()..];
        let Some(body_start) = after.find('>') else {
            break;
        };
        let body = &after[body_start + 1..];
        let Some(end) = body.find(&close) else {
            break;
        };
        let digest = Sha256::digest(&body.as_bytes()[..end]);
        let source = format!(
            "'sha256-{}'",
            base64::engine::general_purpose::STANDARD.encode(digest)
        );
        if tag == "script" {
            &mut scripts
        } else {
            &mut styles
        }
        .push(source);
        rest = &body[end + close.len()..];
    }
    (scripts, styles)
}

/// The keywords that may sit next to a `$ref` (annotations, which change nothing about what
/// the value may be) and `nullable`.
const ANNOTATIONS: &[&str] = &[
    "description",
    "nullable",
    "default",
    "example",
    "title",
    "readOnly",
    "writeOnly",
    "deprecated",
];

/// Replaces every `allOf` wrapped around a single `$ref`, as poem-openapi writes it for a
/// field with a description, `nullable` or a default, with what generators read:
///
/// - `{"$ref": R, "description": …}` when the value is never `null` (OpenAPI 3.0 tools
///   ignore a `$ref`'s siblings or show them as the property's annotations; the referenced
///   schema is unchanged);
/// - `{"anyOf": [{"$ref": R}], "nullable": true, …}` when it may be: openapi-python-client
///   reads that as `R | None`, openapi-typescript as `R | null`, and JSON Schema validators
///   (schemathesis) accept `null` there, as the server does.
///
/// An `allOf` that combines schemas (more than one `$ref`, or constraints) stays.
fn unwrap_single_refs(value: &mut Value) {
    match value {
        Value::Object(object) => {
            if let Some(unwrapped) = unwrapped_ref(object) {
                *object = unwrapped;
            }
            object.values_mut().for_each(unwrap_single_refs);
        }
        Value::Array(items) => items.iter_mut().for_each(unwrap_single_refs),
        _ => {}
    }
}

/// The plain form of `object` if it is an `allOf` around one `$ref` plus annotations.
fn unwrapped_ref(
    object: &serde_json::Map<String, Value>,
) -> Option<serde_json::Map<String, Value>> {
    let parts = object.get("allOf")?.as_array()?;
    let is_ref = |part: &Value| {
        part.as_object()
            .is_some_and(|p| p.len() == 1 && p.contains_key("$ref"))
    };
    let only_annotations = |part: &serde_json::Map<String, Value>| {
        part.keys().all(|k| ANNOTATIONS.contains(&k.as_str()))
    };
    let mut refs = parts.iter().filter(|part| is_ref(part));
    let reference = refs.next()?.clone();
    if refs.next().is_some()
        || !object
            .keys()
            .all(|k| k == "allOf" || ANNOTATIONS.contains(&k.as_str()))
    {
        return None;
    }
    let mut annotations = serde_json::Map::new();
    for part in parts.iter().filter(|part| !is_ref(part)) {
        let part = part.as_object().filter(|p| only_annotations(p))?;
        annotations.extend(part.clone());
    }
    // The wrapper's own keywords win over those inside it (poem-openapi repeats them).
    annotations.extend(
        object
            .iter()
            .filter(|(k, _)| *k != "allOf")
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    let nullable = annotations.remove("nullable") == Some(Value::Bool(true));
    let mut plain = serde_json::Map::new();
    if nullable {
        plain.insert("anyOf".to_string(), Value::Array(vec![reference]));
        plain.insert("nullable".to_string(), Value::Bool(true));
    } else {
        plain.extend(reference.as_object().cloned().unwrap_or_default());
    }
    plain.extend(annotations);
    Some(plain)
}

/// Marks the parameters of [`Documented::REQUIRED_PARAMETERS`] required.
fn require_parameters(spec: &mut Value) {
    let required = Apis::required_parameters();
    for operation in operations_mut(spec) {
        let id = operation["operationId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let Some(parameters) = operation
            .get_mut("parameters")
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for parameter in parameters {
            if required
                .iter()
                .any(|(op, name)| *op == id && parameter["name"] == *name)
            {
                parameter["required"] = Value::Bool(true);
            }
        }
    }
}

/// Puts the examples of [`Documented::examples`] on their schemas.
fn add_examples(spec: &mut Value) {
    for (name, example) in Apis::examples() {
        if let Some(schema) = spec["components"]["schemas"]
            .get_mut(name)
            .and_then(Value::as_object_mut)
        {
            schema.insert("example".to_string(), example);
        }
    }
}

/// Adds the `HEAD` operations of [`Documented::HEAD_OPERATIONS`]: the `GET`'s parameters and
/// response headers (its `Content-Type` too: OpenAPI does not list that one as a header), no
/// response bodies, and the `Content-Length` the `GET` would send.
fn document_head_operations(spec: &mut Value) {
    let Some(paths) = spec["paths"].as_object_mut() else {
        return;
    };
    for (get_id, head_id) in Apis::head_operations() {
        let Some(item) = paths
            .values_mut()
            .find(|item| item["get"]["operationId"] == get_id)
        else {
            continue;
        };
        let mut head = item["get"].clone();
        head["operationId"] = Value::from(head_id);
        let summary = head["summary"].as_str().unwrap_or_default();
        head["summary"] = Value::from(format!("{summary}: headers only"));
        head["description"] = Value::from(format!(
            "The headers `{get_id}` would answer, without its body: the size \
             (`Content-Length`), type and `ETag` of the content before downloading it."
        ));
        if let Some(responses) = head["responses"].as_object_mut() {
            for (status, response) in responses.iter_mut() {
                let Some(response) = response.as_object_mut() else {
                    continue;
                };
                let had_body = response.remove("content").is_some();
                if had_body && (status == "200" || status == "206") {
                    let headers = response
                        .entry("headers")
                        .or_insert_with(|| Value::Object(Default::default()));
                    headers["Content-Length"] = serde_json::json!({
                        "description": "The size of the body a `GET` would send, in bytes.",
                        "required": true,
                        "schema": {"type": "integer", "format": "int64", "minimum": 0}
                    });
                }
            }
        }
        item["head"] = head;
    }
}

/// Every operation of the spec.
fn operations_mut(spec: &mut Value) -> impl Iterator<Item = &mut Value> {
    spec["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
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
                // responses (a 412 problem with the current state) always stay.
                responses.retain(|status, response| {
                    let problem = response["content"][super::error::PROBLEM_JSON]["schema"]["$ref"]
                        == "#/components/schemas/Problem";
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
    fn tags_come_in_the_products_order() {
        let spec: Value = serde_json::from_str(&published()).unwrap();
        let names: Vec<&str> = spec["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|tag| tag["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names, TAG_ORDER,
            "every tag is listed in TAG_ORDER, in order"
        );
    }

    #[test]
    fn an_all_of_around_one_ref_becomes_a_ref_or_a_nullable_any_of() {
        use serde_json::json;
        let r = json!({"$ref": "#/components/schemas/TaskStatus"});
        let mut spec = json!({
            "plain": {"allOf": [r, {"description": "Mine."}], "description": "Mine."},
            "nullable": {"allOf": [r, {"nullable": true, "description": "Or null."}],
                         "nullable": true, "description": "Or null."},
            "items": [{"allOf": [r]}],
            // Compositions stay.
            "two": {"allOf": [r, {"$ref": "#/components/schemas/Priority"}]},
            "constrained": {"allOf": [r, {"maxLength": 3}]},
        });
        unwrap_single_refs(&mut spec);
        assert_eq!(
            spec["plain"],
            json!({"$ref": r["$ref"], "description": "Mine."})
        );
        assert_eq!(
            spec["nullable"],
            json!({"anyOf": [r], "nullable": true, "description": "Or null."})
        );
        assert_eq!(spec["items"][0], r);
        assert_eq!(spec["two"]["allOf"].as_array().unwrap().len(), 2);
        assert_eq!(spec["constrained"]["allOf"][1]["maxLength"], 3);
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
    fn the_docs_policy_allows_exactly_the_pages_inline_elements() {
        use base64::Engine;
        use sha2::{Digest, Sha256};
        let hash = |text: &str| {
            format!(
                "'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text))
            )
        };
        let page = "<html><head><style a=\"1\">b{}</style><script>let x = '<style>';</script>\
                    </head><body><script>go()</script></body></html>";
        let (scripts, styles) = inline_element_hashes(page);
        assert_eq!(scripts, [hash("let x = '<style>';"), hash("go()")]);
        assert_eq!(styles, [hash("b{}")]);

        // The real page: its bundle and start-up script, and its style sheet.
        let html = swagger_ui_html(&published());
        let (scripts, styles) = inline_element_hashes(&html);
        assert_eq!((scripts.len(), styles.len()), (2, 1));
        let policy = docs_policy(&html);
        assert!(policy.contains(&format!("script-src {} {};", scripts[0], scripts[1])));
        assert!(policy.contains("frame-ancestors 'none'"));
        assert!(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"));
    }

    #[test]
    fn swagger_ui_embeds_the_published_spec() {
        let published = published();
        assert!(swagger_ui_html(&published).contains(&published));
    }
}
