//! Attachments: byte-identical round trips, who may upload, see and delete, limits and quota
//! (nothing kept), hostile names and types, one blob per content, blobs removed with their
//! last reference (also by cascades), crash leftovers swept at start, and `Range`.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{TestServer, multipart, test_config};
use crate::tasks::{Cast, Expect, cast, new_task};

async fn team_task(server: &TestServer, c: &Cast) -> String {
    let task = new_task(
        server,
        &c.creator,
        json!({"title": "Files", "project_id": c.project, "assignee_ids": [c.assignee.user_id]}),
    )
    .await;
    task["id"].as_str().unwrap().to_string()
}

/// Bytes that look like nothing in particular.
fn noise(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[(i + seed as usize) % 4] ^ seed
        })
        .collect()
}

fn uploaded(reply: &crate::common::Reply) -> Vec<Value> {
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body["items"].as_array().unwrap().clone()
}

/// Blob files (temp files excluded).
fn blobs(server: &TestServer) -> Vec<std::path::PathBuf> {
    server
        .blob_files()
        .into_iter()
        .filter(|p| p.parent() != Some(server.data_dir.join("blobs").join("tmp").as_path()))
        .collect()
}

/// Waits (bounded) until the blob files number `count`: removal follows the durable commit.
async fn settle(server: &TestServer, count: usize) {
    for _ in 0..100 {
        if blobs(server).len() == count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(blobs(server).len(), count, "{:?}", blobs(server));
}

async fn download(
    server: &TestServer,
    token: &str,
    id: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = server
        .client
        .get(server.url(&format!("/api/attachments/{id}/content")))
        .bearer_auth(token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn files_round_trip_byte_for_byte() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let task = team_task(&server, &c).await;
    let data = noise(300_000, 7);
    let png = [b"\x89PNG\r\n\x1a\n".as_slice(), &noise(100, 1)].concat();
    let items = uploaded(
        &server
            .upload(
                &task,
                &c.assignee.token,
                &[("data.bin", &data), ("picture.png", &png)],
            )
            .await,
    );
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["filename"], "data.bin");
    assert_eq!(items[0]["size"], 300_000);
    assert_eq!(items[0]["content_type"], "application/octet-stream");
    assert_eq!(
        items[1]["content_type"], "image/png",
        "sniffed from the bytes"
    );
    let id = items[0]["id"].as_str().unwrap();

    // Anyone who can see the task reads it.
    let got = download(&server, &c.member.token, id, &[]).await;
    assert_eq!(got.status(), 200);
    let headers = got.headers().clone();
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["content-length"], "300000");
    assert_eq!(
        headers["etag"].to_str().unwrap(),
        format!("\"{}\"", items[0]["sha256"].as_str().unwrap())
    );
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    assert_eq!(got.bytes().await.unwrap().as_ref(), data.as_slice());
    let image = download(
        &server,
        &c.member.token,
        items[1]["id"].as_str().unwrap(),
        &[],
    )
    .await;
    assert_eq!(image.headers()["content-type"], "image/png");

    let head = server
        .client
        .head(server.url(&format!("/api/attachments/{id}/content")))
        .bearer_auth(&c.member.token)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], "300000");
    assert!(head.bytes().await.unwrap().is_empty());

    let meta = server
        .get(&format!("/api/attachments/{id}"), Some(&c.member.token))
        .await
        .ok()
        .clone();
    assert_eq!(
        meta["content_url"],
        format!("/api/attachments/{id}/content")
    );
    let list = server
        .get(
            &format!("/api/tasks/{task}/attachments"),
            Some(&c.member.token),
        )
        .await
        .ok()
        .clone();
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    let task_body = server
        .get(&format!("/api/tasks/{task}"), Some(&c.member.token))
        .await;
    assert_eq!(task_body.body["attachment_count"], 2);
    assert_eq!(task_body.headers["etag"], "\"1.0.2\"");
}

#[tokio::test]
async fn who_may_upload_see_and_delete() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let task = team_task(&server, &c).await;
    // (who, may upload)
    let uploads = [
        ("creator", &c.creator, Expect::Ok),
        ("assignee", &c.assignee, Expect::Ok),
        ("owner", &c.owner, Expect::Ok),
        ("admin", &c.admin, Expect::Ok),
        ("member", &c.member, Expect::Forbidden),
        ("outsider", &c.outsider, Expect::NotFound),
    ];
    for (name, who, expect) in uploads {
        let reply = server
            .upload(&task, &who.token, &[("a.txt", b"hello")])
            .await;
        if expect == Expect::Ok {
            uploaded(&reply);
        } else {
            expect.check(&reply, &format!("{name} uploads"));
        }
    }
    let list = format!("/api/tasks/{task}/attachments");
    server
        .get(&list, Some(&c.outsider.token))
        .await
        .problem(404, "not_found");

    // The uploader, the task's creator and the team's owners and admins delete.
    for deleter in [&c.assignee, &c.creator, &c.owner, &c.admin] {
        let items = uploaded(
            &server
                .upload(&task, &c.assignee.token, &[("b.txt", b"bye")])
                .await,
        );
        let id = items[0]["id"].as_str().unwrap();
        let path = format!("/api/attachments/{id}");
        for (who, status, code) in [
            (&c.member, 403, "forbidden"),
            (&c.outsider, 404, "not_found"),
        ] {
            server
                .call(Method::DELETE, &path, Some(&who.token), None)
                .await
                .problem(status, code);
        }
        server
            .get(&path, Some(&c.outsider.token))
            .await
            .problem(404, "not_found");
        assert_eq!(
            download(&server, &c.outsider.token, id, &[]).await.status(),
            404
        );
        let gone = server
            .call(Method::DELETE, &path, Some(&deleter.token), None)
            .await;
        assert_eq!(gone.status, 204, "{}", gone.body);
        server
            .get(&path, Some(&c.member.token))
            .await
            .problem(404, "not_found");
    }
}

#[tokio::test]
async fn an_oversize_upload_keeps_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = test_config(tmp.path());
    config.max_upload_bytes = 64 << 10;
    let server = TestServer::spawn_with(config).await;
    let c = cast(&server).await;
    let task = team_task(&server, &c).await;
    let big = noise((64 << 10) + 1, 3);
    server
        .upload(&task, &c.assignee.token, &[("big.bin", &big)])
        .await
        .problem(413, "payload_too_large");
    // A good file before a bad one is not kept either: a request is all or nothing.
    server
        .upload(
            &task,
            &c.assignee.token,
            &[("ok.txt", b"fine"), ("big.bin", &big)],
        )
        .await
        .problem(413, "payload_too_large");
    assert!(server.blob_files().is_empty(), "{:?}", server.blob_files());
    let list = server
        .get(
            &format!("/api/tasks/{task}/attachments"),
            Some(&c.member.token),
        )
        .await
        .ok()
        .clone();
    assert!(list["items"].as_array().unwrap().is_empty());
    // Exactly at the limit is fine.
    uploaded(
        &server
            .upload(&task, &c.assignee.token, &[("edge.bin", &big[1..])])
            .await,
    );
}

#[tokio::test]
async fn names_are_sanitized_and_active_content_is_only_ever_a_download() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let task = team_task(&server, &c).await;
    let html = b"  <!DOCTYPE html><html><script>alert(1)</script></html>".as_slice();
    let svg =
        b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>".as_slice();
    let items = uploaded(
        &server
            .upload(
                &task,
                &c.assignee.token,
                &[
                    ("../../etc/passwd", b"root:x:0:0"),
                    ("C:\\Users\\x\\report.txt", b"text"),
                    ("r\u{e9}sum\u{e9} 2026.txt", b"cv"),
                    ("page.txt", html),
                    ("logo.png", svg),
                    ("", b"nameless"),
                ],
            )
            .await,
    );
    let names: Vec<&str> = items
        .iter()
        .map(|i| i["filename"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "passwd",
            "report.txt",
            "r\u{e9}sum\u{e9} 2026.txt",
            "page.txt",
            "logo.png",
            "file"
        ]
    );
    assert_eq!(
        items[3]["content_type"], "text/html",
        "sniffed, whatever the name says"
    );
    assert_eq!(items[4]["content_type"], "image/svg+xml");
    for active in [&items[3], &items[4]] {
        let got = download(
            &server,
            &c.member.token,
            active["id"].as_str().unwrap(),
            &[],
        )
        .await;
        assert_eq!(got.headers()["content-type"], "application/octet-stream");
        assert_eq!(got.headers()["x-content-type-options"], "nosniff");
        assert!(
            got.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment;")
        );
    }
    let unicode = download(
        &server,
        &c.member.token,
        items[2]["id"].as_str().unwrap(),
        &[],
    )
    .await;
    let disposition = unicode.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        disposition.contains("filename*=UTF-8''r%C3%A9sum%C3%A9%202026.txt"),
        "{disposition}"
    );
    let text = download(
        &server,
        &c.member.token,
        items[1]["id"].as_str().unwrap(),
        &[],
    )
    .await;
    assert_eq!(text.headers()["content-type"], "text/plain; charset=utf-8");
}

#[tokio::test]
async fn identical_content_is_stored_once_and_goes_with_its_last_reference() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let (first, second) = (team_task(&server, &c).await, team_task(&server, &c).await);
    let data = noise(50_000, 9);
    let a = uploaded(
        &server
            .upload(&first, &c.creator.token, &[("a.bin", &data)])
            .await,
    );
    let b = uploaded(
        &server
            .upload(&second, &c.creator.token, &[("b.bin", &data)])
            .await,
    );
    assert_eq!(a[0]["sha256"], b[0]["sha256"]);
    assert_eq!(blobs(&server).len(), 1, "stored once");

    let delete = |id: &Value| {
        let path = format!("/api/attachments/{}", id.as_str().unwrap());
        let token = c.creator.token.clone();
        let server = &server;
        async move { server.call(Method::DELETE, &path, Some(&token), None).await }
    };
    assert_eq!(delete(&a[0]["id"]).await.status, 204);
    settle(&server, 1).await;
    let still = download(&server, &c.member.token, b[0]["id"].as_str().unwrap(), &[]).await;
    assert_eq!(still.bytes().await.unwrap().as_ref(), data.as_slice());
    assert_eq!(delete(&b[0]["id"]).await.status, 204);
    settle(&server, 0).await;
}

#[tokio::test]
async fn deleting_a_task_or_project_removes_its_blobs() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let task = team_task(&server, &c).await;
    uploaded(
        &server
            .upload(&task, &c.creator.token, &[("one", &noise(1000, 1))])
            .await,
    );
    let other = team_task(&server, &c).await;
    uploaded(
        &server
            .upload(&other, &c.creator.token, &[("two", &noise(1000, 2))])
            .await,
    );
    settle(&server, 2).await;
    let deleted = server
        .call(
            Method::DELETE,
            &format!("/api/tasks/{task}"),
            Some(&c.creator.token),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204);
    settle(&server, 1).await;
    let deleted = server
        .call(
            Method::DELETE,
            &format!("/api/projects/{}", c.project),
            Some(&c.owner.token),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204);
    settle(&server, 0).await;
}

#[tokio::test]
async fn crash_leftovers_are_swept_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let config = test_config(tmp.path());
    let server = TestServer::spawn_with(config.clone()).await;
    let c = cast(&server).await;
    let task = team_task(&server, &c).await;
    let kept = uploaded(
        &server
            .upload(&task, &c.creator.token, &[("kept", b"referenced")])
            .await,
    );
    server.stop().await;

    // What a crash between writing a blob and committing its row leaves: a stored blob no row
    // refers to, and a temp file of an upload in flight.
    let orphan = "ab".repeat(32);
    let blob_dir = tmp.path().join("blobs").join("ab");
    std::fs::create_dir_all(&blob_dir).unwrap();
    std::fs::write(blob_dir.join(&orphan), b"never committed").unwrap();
    std::fs::write(tmp.path().join("blobs/tmp/0123.part"), b"half an upload").unwrap();

    let server = TestServer::spawn_with(config).await;
    let c2 = server.login_ok(&c.creator.email).await;
    assert!(!blob_dir.join(&orphan).exists(), "the orphan blob is swept");
    assert!(!tmp.path().join("blobs/tmp/0123.part").exists());
    assert_eq!(blobs(&server).len(), 1);
    let list = server
        .get(&format!("/api/tasks/{task}/attachments"), Some(&c2.token))
        .await
        .ok()
        .clone();
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        1,
        "no attachment appeared"
    );
    let got = download(&server, &c2.token, kept[0]["id"].as_str().unwrap(), &[]).await;
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"referenced");
}

#[tokio::test]
async fn ranges_and_validators() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let task = team_task(&server, &c).await;
    let data: Vec<u8> = (0..100u8).collect();
    let items = uploaded(
        &server
            .upload(&task, &c.creator.token, &[("r.bin", &data)])
            .await,
    );
    let id = items[0]["id"].as_str().unwrap();
    let tag = format!("\"{}\"", items[0]["sha256"].as_str().unwrap());
    let token = &c.member.token;

    for (range, status, expect) in [
        ("bytes=0-0", 206, &data[0..1]),
        ("bytes=10-19", 206, &data[10..20]),
        ("bytes=90-", 206, &data[90..]),
        ("bytes=-5", 206, &data[95..]),
        ("bytes=95-1000", 206, &data[95..]),
        ("bytes=-1000", 206, &data[..]),
        ("bytes=0-1,5-6", 200, &data[..]),
        ("bytes=x-y", 200, &data[..]),
        ("items=0-5", 200, &data[..]),
    ] {
        let got = download(&server, token, id, &[("range", range)]).await;
        assert_eq!(got.status().as_u16(), status, "{range}");
        assert_eq!(got.bytes().await.unwrap().as_ref(), expect, "{range}");
    }
    let partial = download(&server, token, id, &[("range", "bytes=10-19")]).await;
    assert_eq!(partial.headers()["content-range"], "bytes 10-19/100");
    for past in ["bytes=100-", "bytes=500-600", "bytes=-0"] {
        let got = download(&server, token, id, &[("range", past)]).await;
        assert_eq!(got.status(), 416, "{past}");
        assert_eq!(got.headers()["content-range"], "bytes */100");
        let body: Value = got.json().await.unwrap();
        assert_eq!(body["code"], "range_not_satisfiable");
    }
    let stale_if_range = download(
        &server,
        token,
        id,
        &[("range", "bytes=0-9"), ("if-range", "\"other\"")],
    )
    .await;
    assert_eq!(stale_if_range.status(), 200);
    let fresh_if_range = download(
        &server,
        token,
        id,
        &[("range", "bytes=0-9"), ("if-range", &tag)],
    )
    .await;
    assert_eq!(fresh_if_range.status(), 206);
    let cached = download(&server, token, id, &[("if-none-match", &tag)]).await;
    assert_eq!(cached.status(), 304);
}

#[tokio::test]
async fn the_quota_counts_what_you_uploaded_and_still_have() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = test_config(tmp.path());
    config.user_quota_bytes = Some(100_000);
    let server = TestServer::spawn_with(config).await;
    let c = cast(&server).await;
    let task = team_task(&server, &c).await;
    let first = uploaded(
        &server
            .upload(&task, &c.creator.token, &[("a", &noise(60_000, 1))])
            .await,
    );
    server
        .upload(&task, &c.creator.token, &[("b", &noise(60_000, 2))])
        .await
        .problem(413, "quota_exceeded");
    settle(&server, 1).await;
    // Someone else's quota is their own.
    uploaded(
        &server
            .upload(&task, &c.assignee.token, &[("c", &noise(60_000, 3))])
            .await,
    );
    let path = format!("/api/attachments/{}", first[0]["id"].as_str().unwrap());
    assert_eq!(
        server
            .call(Method::DELETE, &path, Some(&c.creator.token), None)
            .await
            .status,
        204
    );
    uploaded(
        &server
            .upload(&task, &c.creator.token, &[("b", &noise(60_000, 2))])
            .await,
    );
}

#[tokio::test]
async fn bad_uploads_get_clear_errors() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let task = team_task(&server, &c).await;
    let path = format!("/api/tasks/{task}/attachments");
    let token = Some(c.creator.token.as_str());
    server
        .raw(Method::POST, &path, token, "application/json", "{}")
        .await
        .problem(415, "unsupported_media_type");
    let (content_type, body) = multipart(&[("note", None, b"just text")]);
    server
        .raw(Method::POST, &path, token, &content_type, body)
        .await
        .problem(422, "validation_failed");
    // A `file` field that is not a file upload (no filename) is a plain form value.
    let (content_type, body) = multipart(&[("file", None, b"{}")]);
    assert_eq!(
        server
            .raw(Method::POST, &path, token, &content_type, body)
            .await
            .invalid_fields(),
        ["file"]
    );
    let (content_type, mut body) = multipart(&[("file", Some("a.txt"), b"abc")]);
    body.truncate(body.len() - 10);
    server
        .raw(Method::POST, &path, token, &content_type, body)
        .await
        .problem(400, "bad_request");
    // A body that never shows its boundary is not buffered in the hope that it will.
    let endless = vec![b'x'; 3 << 20];
    server
        .raw(
            Method::POST,
            &path,
            token,
            "multipart/form-data; boundary=never-sent",
            endless,
        )
        .await
        .problem(413, "payload_too_large");
    let many: Vec<(&str, &[u8])> = (0..21).map(|_| ("x.txt", b"x".as_slice())).collect();
    server
        .upload(&task, &c.creator.token, &many)
        .await
        .problem(422, "validation_failed");
    server
        .upload("not-a-uuid", &c.creator.token, &[("a", b"a")])
        .await
        .problem(400, "invalid_parameter");
    server
        .get("/api/attachments/not-a-uuid/content", token)
        .await
        .problem(400, "invalid_parameter");
    let unknown = uuid::Uuid::now_v7();
    server
        .get(&format!("/api/attachments/{unknown}"), token)
        .await
        .problem(404, "not_found");
    assert!(server.blob_files().is_empty(), "{:?}", server.blob_files());
}

#[tokio::test]
async fn archived_projects_take_no_files() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let task = team_task(&server, &c).await;
    let items = uploaded(&server.upload(&task, &c.creator.token, &[("a", b"a")]).await);
    let project = format!("/api/projects/{}", c.project);
    let archived = server
        .call(
            Method::PATCH,
            &project,
            Some(&c.owner.token),
            Some(json!({"status": "archived"})),
        )
        .await;
    assert_eq!(archived.status, 200);
    server
        .upload(&task, &c.creator.token, &[("b", b"b")])
        .await
        .problem(409, "project_archived");
    server
        .call(
            Method::DELETE,
            &format!("/api/attachments/{}", items[0]["id"].as_str().unwrap()),
            Some(&c.creator.token),
            None,
        )
        .await
        .problem(409, "project_archived");
    let got = download(
        &server,
        &c.member.token,
        items[0]["id"].as_str().unwrap(),
        &[],
    )
    .await;
    assert_eq!(got.status(), 200, "archived is read-only, not hidden");
}
