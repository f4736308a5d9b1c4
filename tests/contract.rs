//! The spec as a contract for generated clients: the shapes generators read (no `allOf` around
//! a lone `$ref`), the examples Swagger UI sends succeed as given, required parameters are
//! required, `HEAD` answers what it documents, and the texts a reader of the spec relies on.
//! tests/clients/check.sh runs the generators themselves (in CI).

use serde_json::Value;

use crate::common::TestServer;

fn spec() -> Value {
    serde_json::from_str(&tasker::api::spec_json()).unwrap()
}

/// Every place in `value` where an `allOf` wraps a single `$ref`: one member is a `$ref` and
/// the others (if any) only annotate it (what poem-openapi writes to hang a description,
/// `nullable` or a default on a reference, and openapi-python-client cannot read when the
/// reference is an enum). An `allOf` that adds properties to an object is a composition the
/// generators read, and is not one.
fn single_ref_all_ofs(value: &Value, at: &str, found: &mut Vec<String>) {
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
    match value {
        Value::Object(object) => {
            if let Some(parts) = object.get("allOf").and_then(Value::as_array) {
                let (refs, others): (Vec<&Value>, Vec<&Value>) =
                    parts.iter().partition(|p| p.get("$ref").is_some());
                let annotates = |part: &&Value| {
                    part.as_object()
                        .is_some_and(|p| p.keys().all(|k| ANNOTATIONS.contains(&k.as_str())))
                };
                if refs.len() == 1 && others.iter().all(annotates) {
                    found.push(format!("{at}: {value}"));
                }
            }
            for (key, inner) in object {
                single_ref_all_ofs(inner, &format!("{at}/{key}"), found);
            }
        }
        Value::Array(items) => {
            for (i, inner) in items.iter().enumerate() {
                single_ref_all_ofs(inner, &format!("{at}/{i}"), found);
            }
        }
        _ => {}
    }
}

#[test]
fn no_all_of_wraps_a_single_ref() {
    let mut found = Vec::new();
    single_ref_all_ofs(&spec(), "#", &mut found);
    assert!(
        found.is_empty(),
        "allOf around one $ref:\n{}",
        found.join("\n")
    );

    // The walk finds one where there is one.
    let wrapped = serde_json::json!({"properties": {"status": {
        "allOf": [{"$ref": "#/components/schemas/TaskStatus"}, {"nullable": true}]
    }}});
    let mut found = Vec::new();
    single_ref_all_ofs(&wrapped, "#", &mut found);
    assert_eq!(found.len(), 1);
    let composed = serde_json::json!({"allOf": [
        {"$ref": "#/components/schemas/Task"},
        {"type": "object", "properties": {"type": {"type": "string", "enum": ["task"]}}}
    ]});
    let mut found = Vec::new();
    single_ref_all_ofs(&composed, "#", &mut found);
    assert!(found.is_empty());
}

#[test]
fn nullable_enums_are_a_nullable_any_of_and_others_a_plain_ref() {
    let spec = spec();
    let schemas = &spec["components"]["schemas"];
    // `null` is accepted there (it leaves the field unchanged): R | null for the clients.
    let status = &schemas["ReplaceTaskRequest"]["properties"]["status"];
    assert_eq!(
        status["anyOf"],
        serde_json::json!([{"$ref": "#/components/schemas/TaskStatus"}])
    );
    assert_eq!(status["nullable"], true);
    // Never null: the plain reference, the property's own description beside it.
    let role = &schemas["Team"]["properties"]["my_role"];
    assert_eq!(role["$ref"], "#/components/schemas/TeamRole");
    assert!(role["description"].is_string() && role.get("nullable").is_none());
    // A description that is the type's own lives on the type.
    assert!(
        schemas["InvitationStatus"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("pending"))
    );
    assert_eq!(
        schemas["Invitation"]["properties"]["status"],
        serde_json::json!({"$ref": "#/components/schemas/InvitationStatus"})
    );
}

/// The request schema of an operation's JSON body, resolved.
fn body_schema<'a>(spec: &'a Value, operation: &Value) -> Option<(&'a Value, String)> {
    let content = operation["requestBody"]["content"].as_object()?;
    let (_, media) = content.iter().find(|(t, _)| t.contains("json"))?;
    let name = media["schema"]["$ref"]
        .as_str()?
        .trim_start_matches("#/components/schemas/")
        .to_string();
    Some((&spec["components"]["schemas"][&name], name))
}

#[tokio::test]
async fn the_examples_in_the_spec_succeed_as_given() {
    let server = TestServer::spawn().await;
    let spec = server.get("/api/openapi.json", None).await.ok().clone();
    let mut examples = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        let Some(operation) = item.get("post") else {
            continue;
        };
        let Some((schema, name)) = body_schema(&spec, operation) else {
            continue;
        };
        if let Some(example) = schema.get("example") {
            let id = operation["operationId"].as_str().unwrap().to_string();
            examples.push((id, path.clone(), name, example.clone()));
        }
    }
    let ids: Vec<&str> = examples.iter().map(|(id, ..)| id.as_str()).collect();
    assert!(
        ids.contains(&"register") && ids.contains(&"createTask"),
        "the register and create-task bodies have examples: {ids:?}"
    );
    // Registering first, as a reader of Swagger UI does, gives the token for the rest.
    examples.sort_by_key(|(id, ..)| id != "register");
    let mut token: Option<String> = None;
    for (id, path, name, example) in examples {
        let reply = server
            .post(&format!("/api{path}"), token.as_deref(), example.clone())
            .await;
        assert_eq!(
            reply.status, 201,
            "{id}: the {name} example {example} answers {}",
            reply.body
        );
        if id == "register" {
            token = Some(reply.body["token"].as_str().unwrap().to_string());
        }
    }
}

#[tokio::test]
async fn search_requires_q_and_a_head_answers_what_it_documents() {
    let spec = spec();
    let search = &spec["paths"]["/tasks/search"]["get"];
    let q = search["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "q")
        .unwrap();
    assert_eq!(q["required"], true);

    let head = &spec["paths"]["/attachments/{id}/content"]["head"];
    assert_eq!(head["operationId"], "headAttachmentContent");
    let documented = head["responses"]["200"]["headers"].as_object().unwrap();
    assert!(documented.contains_key("Content-Length"));
    assert!(
        head["responses"]
            .as_object()
            .unwrap()
            .values()
            .all(|r| r.get("content").is_none()),
        "a HEAD answers no body"
    );

    // The server's HEAD carries every header the 200 documents, and no body.
    let server = TestServer::spawn().await;
    let account = server.register().await;
    let task = server
        .post(
            "/api/tasks",
            Some(&account.token),
            serde_json::json!({"title": "Has a file"}),
        )
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let uploaded = server
        .upload(&task, &account.token, &[("notes.txt", b"hello, head")])
        .await;
    let id = uploaded.body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let answer = server
        .client
        .head(server.url(&format!("/api/attachments/{id}/content")))
        .bearer_auth(&account.token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    for (name, header) in documented {
        if header["required"] == true {
            assert!(answer.headers().contains_key(name.as_str()), "{name}");
        }
    }
    assert_eq!(answer.headers()["content-length"], "11");
    assert!(answer.bytes().await.unwrap().is_empty());
}

#[test]
fn the_spec_explains_its_server_url_and_the_authorize_dialog() {
    let spec = spec();
    assert_eq!(spec["servers"][0]["url"], "/api");
    let description = spec["info"]["description"].as_str().unwrap();
    assert!(description.contains("`/api`, is relative"), "{description}");
    assert!(description.contains("base URL"), "{description}");

    // What Swagger UI's Authorize dialog shows: which token, and how it is sent.
    let bearer = spec["components"]["securitySchemes"]["BearerAuth"]["description"]
        .as_str()
        .unwrap();
    for needed in [
        "POST /auth/register",
        "POST /auth/login",
        "not the\n`refresh_token`",
        "Authorization: Bearer <token>",
        "POST /auth/refresh",
    ] {
        assert!(bearer.contains(needed), "{needed:?} in {bearer:?}");
    }
}
