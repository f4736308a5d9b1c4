//! Health, the home page, Swagger UI, the OpenAPI spec and its drift check, and data-dir rules.

use serde_json::Value;

use crate::common::{PASSWORD, TestServer, test_config};

#[tokio::test]
async fn health_reports_status_version_and_uptime() {
    let server = TestServer::spawn().await;
    let body = server.get("/api/health", None).await.ok().clone();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["uptime_s"].is_u64());
}

#[tokio::test]
async fn the_home_page_is_the_web_app_and_links_to_the_docs() {
    let server = TestServer::spawn().await;
    let response = server.client.get(server.url("/")).send().await.unwrap();
    // A fresh server: the client follows the redirect to the first account's set-up.
    assert_eq!(response.status(), 200);
    assert!(response.url().path().ends_with("/setup"));
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = response.text().await.unwrap();
    assert!(html.contains("href=\"/docs\""));
    let icon = server
        .client
        .get(server.url("/favicon.ico"))
        .send()
        .await
        .unwrap();
    assert_eq!(icon.status(), 200);
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");
}

#[tokio::test]
async fn swagger_ui_is_served_with_the_spec() {
    let server = TestServer::spawn().await;
    let response = server.client.get(server.url("/docs")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("swagger"), "Swagger UI page");
    assert!(
        html.contains("bearerAuth") || html.contains("BearerAuth"),
        "the UI knows the bearer scheme"
    );
    assert!(
        html.contains("persistAuthorization: true"),
        "a reload keeps the token given to Authorize"
    );
}

/// `/docs` is about 2 MB: it goes gzip-compressed to a client that takes it, and a reload
/// revalidates with its `ETag` and gets 304 instead of the page again.
#[tokio::test]
async fn swagger_ui_is_compressed_and_revalidated() {
    use std::io::Read;
    let server = TestServer::spawn().await;
    let plain = server.client.get(server.url("/docs")).send().await.unwrap();
    assert_eq!(plain.status(), 200);
    assert!(plain.headers().get("content-encoding").is_none());
    let etag = plain.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(plain.headers()["cache-control"], "no-cache");
    let html = plain.text().await.unwrap();

    let packed = server
        .client
        .get(server.url("/docs"))
        .header("accept-encoding", "gzip, br")
        .send()
        .await
        .unwrap();
    assert_eq!(packed.status(), 200);
    assert_eq!(packed.headers()["content-encoding"], "gzip");
    assert_eq!(packed.headers()["vary"], "Accept-Encoding");
    assert_eq!(packed.headers()["etag"].to_str().unwrap(), etag);
    assert!(packed.headers().get("content-security-policy").is_some());
    let bytes = packed.bytes().await.unwrap();
    assert!(
        bytes.len() * 2 < html.len(),
        "{} bytes packed from {}",
        bytes.len(),
        html.len()
    );
    let mut unpacked = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut unpacked)
        .unwrap();
    assert_eq!(unpacked, html);

    let refused = server
        .client
        .get(server.url("/docs"))
        .header("accept-encoding", "gzip;q=0")
        .send()
        .await
        .unwrap();
    assert!(refused.headers().get("content-encoding").is_none());

    let again = server
        .client
        .get(server.url("/docs"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
    assert!(again.bytes().await.unwrap().is_empty());
    let stale = server
        .client
        .get(server.url("/docs"))
        .header("if-none-match", "\"0\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 200);
}

#[tokio::test]
async fn served_spec_matches_the_code() {
    let server = TestServer::spawn().await;
    let served: Value = server
        .client
        .get(server.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let built: Value = serde_json::from_str(&tasker::api::spec_json()).unwrap();
    assert_eq!(served, built);
    assert_eq!(served["servers"][0]["url"], "/api");
}

#[test]
fn committed_spec_is_up_to_date() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .unwrap_or_default();
    let built = tasker::api::spec_json();
    let committed: Value = serde_json::from_str(&committed).unwrap_or(Value::Null);
    let built: Value = serde_json::from_str(&built).unwrap();
    assert!(
        committed == built,
        "openapi/openapi.json differs from the code; regenerate it with:\n    cargo run -- openapi > openapi/openapi.json"
    );
}

#[test]
fn every_operation_is_documented() {
    let spec: Value = serde_json::from_str(&tasker::api::spec_json()).unwrap();
    let mut ids = std::collections::HashSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let name = format!("{method} {path}");
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: operationId"));
            assert!(
                ids.insert(id.to_string()),
                "{name}: duplicate operationId {id}"
            );
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{name}: summary"
            );
            assert!(
                op["tags"].as_array().is_some_and(|t| !t.is_empty()),
                "{name}: tag"
            );
            let responses = op["responses"].as_object().unwrap();
            let mut errors = vec!["400", "500"];
            if op.get("security").is_some() {
                errors.push("401");
            }
            if op.get("requestBody").is_some() {
                errors.extend(["413", "415"]);
            }
            // Every error is a problem (a 412's also carries the current representation);
            // a HEAD answers none of its bodies.
            let body = |status: &str| {
                let content = &responses[status]["content"];
                if method == "head" {
                    content.is_null()
                } else {
                    content["application/problem+json"].is_object()
                }
            };
            for status in errors {
                assert!(body(status), "{name}: {status} problem response");
            }
            let errors = responses.keys().filter(|s| s.starts_with(['4', '5']));
            for status in errors {
                assert!(body(status), "{name}: {status} is a problem");
            }
            assert!(
                responses.keys().any(|s| s.starts_with('2') || s == "101"),
                "{name}: a success response (or the WebSocket upgrade)"
            );
            if let Some(created) = responses.get("201") {
                assert!(
                    created["headers"]["LOCATION"].is_object(),
                    "{name}: a 201 documents its Location"
                );
            }
            if let Some(stale) = responses.get("412") {
                let schema = stale["content"]["application/problem+json"]["schema"]["$ref"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{name}: 412 schema"));
                let name_of = schema.trim_start_matches("#/components/schemas/");
                let properties = &spec["components"]["schemas"][name_of]["properties"];
                let current = &properties["current"];
                assert!(
                    current["$ref"].is_string(),
                    "{name}: a 412 types its `current`: {current}"
                );
                assert!(properties["code"].is_object() && properties["detail"].is_object());
                assert!(stale["headers"]["ETAG"].is_object(), "{name}: 412 ETag");
            }
        }
    }
    assert!(
        spec["components"]["schemas"]["ErrorCode"]["enum"]
            .as_array()
            .unwrap()
            .len()
            >= 15
    );
}

#[tokio::test]
async fn accounts_and_generated_secret_survive_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = test_config(tmp.path());
    config.jwt_secret = None;
    let server = TestServer::spawn_with(config.clone()).await;
    let account = server.register().await;
    server.stop().await;
    assert!(tmp.path().join("jwt-secret").exists());

    let server = TestServer::spawn_with(config).await;
    server
        .get("/api/auth/profile", Some(&account.token))
        .await
        .ok();
    server.login(&account.email, PASSWORD).await.ok();
    server.stop().await;
}

#[tokio::test]
async fn a_second_server_on_the_same_data_dir_is_refused() {
    let server = TestServer::spawn().await;
    server.get("/api/health", None).await.ok();
    let config = test_config(&server.data_dir);
    let err = tasker::App::open(&config)
        .err()
        .expect("second open must fail");
    let message = err.to_string();
    assert!(
        message.contains("--data-dir") && message.contains("in use"),
        "{message}"
    );
}

#[test]
fn a_database_from_a_newer_version_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let config = test_config(tmp.path());
    {
        let db = redb::Database::create(config.db_path()).unwrap();
        tasker::store::migrations::force_version(
            &db,
            tasker::store::migrations::latest_version() + 1,
        )
        .unwrap();
    }
    let err = tasker::App::open(&config)
        .err()
        .expect("newer schema must be refused");
    let message = err.to_string();
    assert!(message.contains("newer tasker"), "{message}");
}

#[tokio::test]
async fn every_create_names_its_resource_in_location() {
    let server = TestServer::spawn().await;
    let location = |reply: &crate::common::Reply| {
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.headers["location"].to_str().unwrap().to_string()
    };
    let email = format!("loc-{}@example.com", uuid::Uuid::now_v7().simple());
    let registered = server
        .post(
            "/api/auth/register",
            None,
            serde_json::json!({"email": email, "name": "Loc", "password": PASSWORD}),
        )
        .await;
    assert_eq!(location(&registered), "/api/users/me");
    let bearer = registered.body["token"].as_str().unwrap().to_string();
    let token = Some(bearer.as_str());

    let mut created = Vec::new();
    let team = server
        .post("/api/teams", token, serde_json::json!({"name": "Loc"}))
        .await;
    created.push((location(&team), team.body.clone()));
    let team_id = team.body["id"].as_str().unwrap();
    let project = server
        .post(
            "/api/projects",
            token,
            serde_json::json!({"team_id": team_id, "name": "Loc"}),
        )
        .await;
    created.push((location(&project), project.body.clone()));
    let task = server
        .post(
            "/api/tasks",
            token,
            serde_json::json!({"title": "Loc", "project_id": project.body["id"]}),
        )
        .await;
    created.push((location(&task), task.body.clone()));
    let task_id = task.body["id"].as_str().unwrap();
    let comment = server
        .post(
            &format!("/api/tasks/{task_id}/comments"),
            token,
            serde_json::json!({"body": "Loc"}),
        )
        .await;
    created.push((location(&comment), comment.body.clone()));
    let upload = server
        .upload(task_id, &bearer, &[("a.txt", b"one"), ("b.txt", b"two")])
        .await;
    created.push((location(&upload), upload.body["items"][0].clone()));
    for (url, body) in created {
        let id = body["id"].as_str().unwrap();
        assert!(url.starts_with("/api/") && url.ends_with(id), "{url}");
        let read = server.get(&url, token).await;
        assert_eq!(read.ok()["id"], id, "{url} is the new resource");
    }

    let invited = server
        .post(
            "/api/teams/invite",
            token,
            serde_json::json!({"team_id": team_id, "email": "x@example.com", "role": "member"}),
        )
        .await;
    let url = location(&invited);
    assert_eq!(
        url,
        format!("/api/invitations/{}", invited.body["id"].as_str().unwrap())
    );
    // Its URL is where it is revoked.
    let revoked = server
        .client
        .delete(server.url(&url))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
}
