//! Names the field when a JSON body does not fit its operation.
//!
//! poem-openapi parses a body straight into the operation's type and, when that fails, says
//! why in its own terms (`failed to parse "string" (occurred while parsing ...)`), never
//! where. So when it refuses a body, [`BodySchemas::explain`] checks that body against the
//! operation's request schema in the published spec and lists each offending field by its
//! JSON path (`title`, `labels[2]`, `a.b[1].c`): a required field that is missing, a `null`
//! where a value is required, a wrong JSON type, a value outside an enum, a malformed UUID
//! or date-time, an integer out of range, and a field the schema does not have (every request
//! object denies unknown fields). The answer is a 422 `validation_failed` naming them all.
//! A body that is not JSON at all, or not an object, stays a 400 `invalid_body`.
//!
//! The check runs only after poem-openapi refused a body, so it costs nothing on a valid
//! request and can never turn away one the handler would accept. Lengths and other rules of
//! the domain are left to the service, which answers them with the same 422 once the types
//! are right.

use std::collections::HashMap;
use std::sync::Arc;

use poem::http::{Method, StatusCode};
use serde_json::{Map, Value};

use super::error::{ErrorCode, Problem};
use super::middleware::{Step, render};
use crate::domain::FieldError;

/// The request body schema of every operation that takes JSON, by method and poem's route
/// pattern (`/api/tasks/:param0`), with the spec's components to resolve `$ref`s.
#[derive(Default)]
pub struct BodySchemas {
    operations: HashMap<(Method, Arc<str>), Value>,
    components: Map<String, Value>,
}

impl BodySchemas {
    pub fn from_spec(published: &str) -> Self {
        let spec: Value = serde_json::from_str(published).unwrap_or_default();
        let mut operations = HashMap::new();
        for (path, item) in spec["paths"].as_object().into_iter().flatten() {
            let pattern: Arc<str> = super::metrics::poem_pattern(path).into();
            for (method, operation) in item.as_object().into_iter().flatten() {
                let Ok(method) = method.to_ascii_uppercase().parse::<Method>() else {
                    continue;
                };
                let content = operation["requestBody"]["content"].as_object();
                let json = content
                    .into_iter()
                    .flatten()
                    .find(|(media, _)| media.starts_with("application/json"));
                if let Some((_, media)) = json {
                    operations.insert((method, pattern.clone()), media["schema"].clone());
                }
            }
        }
        let components = spec["components"]["schemas"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        Self {
            operations,
            components,
        }
    }

    /// The problem for a JSON `body` that poem-openapi refused for `method` on the route
    /// `pattern`.
    pub fn explain(&self, method: &Method, pattern: Option<&str>, body: &[u8]) -> Problem {
        let invalid =
            |detail: &str| Problem::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidBody, detail);
        if body.is_empty() {
            return invalid("the body is empty: send a JSON object");
        }
        let value: Value = match serde_json::from_slice(body) {
            Ok(value) => value,
            Err(err) => return invalid(&format!("the body is not valid JSON: {err}")),
        };
        let schema = pattern.and_then(|p| self.operations.get(&(method.clone(), Arc::from(p))));
        let Some(schema) = schema else {
            return invalid("the body does not fit this operation");
        };
        if self.resolve(schema)["type"] == "object" && !value.is_object() {
            return invalid("the body must be a JSON object");
        }
        let mut check = Check {
            schemas: self,
            path: Vec::new(),
            errors: Vec::new(),
        };
        check.value(&value, schema);
        if check.errors.is_empty() {
            return invalid("the body does not fit this operation");
        }
        let mut problem = Problem::validation(check.errors);
        problem.detail = match problem.errors.as_slice() {
            [one] => format!("the body's `{}` {}", one.field, one.message),
            _ => "fields of the body are missing, unknown or of the wrong type".to_string(),
        };
        problem
    }

    /// The schema a `$ref` points to (the schema itself when it is none).
    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        let mut schema = schema;
        // A bounded walk, in case a spec ever has a cycle of bare references.
        for _ in 0..8 {
            let Some(name) = schema["$ref"]
                .as_str()
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
            else {
                break;
            };
            match self.components.get(name) {
                Some(target) => schema = target,
                None => break,
            }
        }
        schema
    }

    /// Whether the schema allows `null`: `nullable` on it or its target, a `null` type, or a
    /// part of `allOf`/`anyOf`/`oneOf` that does (poem-openapi puts `nullable` next to an
    /// enum's reference that way).
    fn accepts_null(&self, schema: &Value) -> bool {
        let target = self.resolve(schema);
        [schema, target].into_iter().any(|s| {
            s["nullable"] == true
                || s["type"] == "null"
                || s["type"]
                    .as_array()
                    .is_some_and(|types| types.iter().any(|t| t == "null"))
                || ["allOf", "anyOf", "oneOf"].iter().any(|key| {
                    s[*key]
                        .as_array()
                        .is_some_and(|parts| parts.iter().any(|p| self.accepts_null(p)))
                })
        })
    }
}

/// One walk over a body, collecting what is wrong where.
struct Check<'a> {
    schemas: &'a BodySchemas,
    path: Vec<Step>,
    errors: Vec<FieldError>,
}

impl Check<'_> {
    fn fail(&mut self, message: impl Into<String>) {
        self.errors
            .push(FieldError::new(render(&self.path), message));
    }

    fn value(&mut self, value: &Value, schema: &Value) {
        if value.is_null() {
            if !self.schemas.accepts_null(schema) {
                self.fail("must not be null");
            }
            return;
        }
        let schema = self.schemas.resolve(schema);
        let before = self.errors.len();
        for part in schema["allOf"].as_array().into_iter().flatten() {
            self.value(value, part);
            if self.errors.len() > before {
                return;
            }
        }
        for key in ["anyOf", "oneOf"] {
            // One branch (the spec's form of a nullable `$ref`): its own complaint says more.
            if let Some([branch]) = schema[key].as_array().map(Vec::as_slice) {
                self.value(value, branch);
                if self.errors.len() > before {
                    return;
                }
            } else if let Some(branches) = schema[key].as_array()
                && !branches.iter().any(|branch| self.fits(value, branch))
            {
                self.fail("does not have any of the allowed forms");
                return;
            }
        }
        if let Some(message) = self.type_error(value, schema) {
            self.fail(message);
            return;
        }
        if let Some(allowed) = schema["enum"].as_array()
            && !allowed.contains(value)
        {
            let names: Vec<String> = allowed
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect();
            self.fail(format!("must be one of: {}", names.join(", ")));
            return;
        }
        match value {
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    self.path.push(Step::Index(index));
                    self.value(item, &schema["items"]);
                    self.path.pop();
                }
            }
            Value::Object(fields) if schema["type"] == "object" => self.object(fields, schema),
            _ => {}
        }
    }

    /// Whether `value` fits `schema` without a single complaint.
    fn fits(&self, value: &Value, schema: &Value) -> bool {
        let mut trial = Check {
            schemas: self.schemas,
            path: Vec::new(),
            errors: Vec::new(),
        };
        trial.value(value, schema);
        trial.errors.is_empty()
    }

    fn object(&mut self, fields: &Map<String, Value>, schema: &Value) {
        let empty = Map::new();
        let properties = schema["properties"].as_object().unwrap_or(&empty);
        let required: Vec<&str> = schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for (name, value) in fields {
            self.path.push(Step::Key(name.clone()));
            match properties.get(name) {
                None => self.fail("is not a field of this object"),
                Some(property) if property["readOnly"] == true => self.fail("is read-only"),
                // An optional field may be `null`: it reads as absent.
                Some(_) if value.is_null() && !required.contains(&name.as_str()) => {}
                Some(property) => self.value(value, property),
            }
            self.path.pop();
        }
        for name in required {
            if !fields.contains_key(name) {
                self.path.push(Step::Key(name.to_string()));
                self.fail("is required");
                self.path.pop();
            }
        }
    }

    /// What is wrong with the JSON type (or string format) of `value`, if anything.
    fn type_error(&self, value: &Value, schema: &Value) -> Option<String> {
        let format = schema["format"].as_str().unwrap_or("");
        match schema["type"].as_str()? {
            "string" => {
                let Some(text) = value.as_str() else {
                    return Some("must be a string".into());
                };
                match format {
                    "uuid" if text.parse::<uuid::Uuid>().is_err() => Some("must be a UUID".into()),
                    "date-time" if text.parse::<chrono::DateTime<chrono::Utc>>().is_err() => Some(
                        "must be a date-time in RFC 3339 form, e.g. 2026-12-01T17:00:00Z".into(),
                    ),
                    _ => None,
                }
            }
            "integer" => {
                let fits = match value {
                    Value::Number(n) => match integer_range(format) {
                        Some((min, max)) => n
                            .as_i64()
                            .map(i128::from)
                            .or_else(|| n.as_u64().map(i128::from))
                            .is_some_and(|n| (min..=max).contains(&n)),
                        None => n.is_i64() || n.is_u64(),
                    },
                    _ => false,
                };
                (!fits).then(|| match integer_range(format) {
                    Some((min, max)) => format!("must be an integer from {min} to {max}"),
                    None => "must be an integer".into(),
                })
            }
            "number" => (!value.is_number()).then(|| "must be a number".into()),
            "boolean" => (!value.is_boolean()).then(|| "must be true or false".into()),
            "array" => (!value.is_array()).then(|| "must be an array".into()),
            "object" => (!value.is_object()).then(|| "must be an object".into()),
            _ => None,
        }
    }
}

/// The range of an integer format as poem-openapi names them.
fn integer_range(format: &str) -> Option<(i128, i128)> {
    Some(match format {
        "int8" => (i8::MIN.into(), i8::MAX.into()),
        "int16" => (i16::MIN.into(), i16::MAX.into()),
        "int32" => (i32::MIN.into(), i32::MAX.into()),
        "int64" => (i64::MIN.into(), i64::MAX.into()),
        "uint8" => (0, u8::MAX.into()),
        "uint16" => (0, u16::MAX.into()),
        "uint32" => (0, u32::MAX.into()),
        "uint64" => (0, u64::MAX.into()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schemas() -> BodySchemas {
        BodySchemas::from_spec(&super::super::spec_json())
    }

    fn fields(method: Method, pattern: &str, body: Value) -> Vec<(String, String)> {
        let problem = schemas().explain(&method, Some(pattern), body.to_string().as_bytes());
        assert_eq!(problem.status, 422, "{problem}");
        problem
            .errors
            .into_iter()
            .map(|e| (e.field, e.message))
            .collect()
    }

    #[test]
    fn each_offending_field_is_named() {
        let found = fields(
            Method::POST,
            "/api/tasks",
            json!({"labels": ["a", 1, null], "status": "doing", "due_date": "soon",
                   "assignee_ids": ["nope"], "priority": null, "colour": "red"}),
        );
        let names: Vec<&str> = found.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            names,
            [
                "assignee_ids[0]",
                "colour",
                "due_date",
                "labels[1]",
                "labels[2]",
                "status",
                "title"
            ]
        );
        assert!(found.iter().all(|(_, m)| !m.contains("parse")));
        assert_eq!(found[6].1, "is required");
        assert_eq!(found[3].1, "must be a string");
        assert_eq!(found[4].1, "must not be null");
        assert!(
            found[5].1.starts_with("must be one of: todo"),
            "{}",
            found[5].1
        );
    }

    #[test]
    fn null_is_refused_only_where_a_value_is_required() {
        let found = fields(
            Method::POST,
            "/api/auth/register",
            json!({"email": null, "name": "N", "password": 5, "invitation_token": null}),
        );
        assert_eq!(
            found,
            [
                ("email".to_string(), "must not be null".to_string()),
                ("password".to_string(), "must be a string".to_string()),
            ]
        );
    }

    #[test]
    fn a_body_that_is_not_an_object_is_a_bad_request() {
        let schemas = schemas();
        for body in ["", "{", "[1]", "\"x\"", "null"] {
            let problem = schemas.explain(&Method::POST, Some("/api/teams"), body.as_bytes());
            assert_eq!(problem.status, 400, "{body}: {problem}");
            assert_eq!(problem.code, ErrorCode::InvalidBody);
        }
    }

    #[test]
    fn integer_formats_have_their_range() {
        let schemas = BodySchemas::default();
        let check = Check {
            schemas: &schemas,
            path: Vec::new(),
            errors: Vec::new(),
        };
        let schema = json!({"type": "integer", "format": "uint32"});
        assert_eq!(check.type_error(&json!(5), &schema), None);
        assert!(check.type_error(&json!(-1), &schema).is_some());
        assert!(check.type_error(&json!(1.5), &schema).is_some());
        assert!(check.type_error(&json!(u64::MAX), &schema).is_some());
    }
}
