//! Operating a server: backup and restore (offline and from a running server), `tasker check`,
//! the admin CLI for accounts, and `GET /api/admin/backup`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

use crate::common::{Account, PASSWORD, TestServer, test_config};

const BIN: &str = env!("CARGO_BIN_EXE_tasker");

/// Runs `tasker args...` with a clean environment and `stdin` as standard input, off the
/// async executor (an in-process server may have to answer it).
async fn tasker(args: &[&str], stdin: &str) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let stdin = stdin.to_string();
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new(BIN);
        command
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, _) in std::env::vars() {
            if key.starts_with("TASKER_") || key == "JWT_SECRET" {
                command.env_remove(key);
            }
        }
        let mut child = command.spawn().expect("tasker runs");
        let mut input = child.stdin.take().unwrap();
        let _ = input.write_all(stdin.as_bytes());
        drop(input);
        child.wait_with_output().expect("tasker ends")
    })
    .await
    .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A server with a generated secret file (no configured `JWT_SECRET`), so backups carry it.
async fn spawn_on(dir: &Path) -> TestServer {
    let mut config = test_config(dir);
    config.jwt_secret = None;
    TestServer::spawn_with(config).await
}

/// What a populated server holds, to compare after a restore.
struct Population {
    admin: Account,
    member: Account,
    tasks: Vec<String>,
    attachment: String,
    content: Vec<u8>,
}

async fn populate(server: &TestServer) -> Population {
    let admin = server.register_as("admin@example.com", "Admin").await;
    let member = server.register_as("member@example.com", "Member").await;
    let team = server.create_team(&admin, "Ops").await;
    server.add_member(&team, &admin, &member, "member").await;
    let project = server
        .post(
            "/api/projects",
            Some(&admin.token),
            json!({"team_id": team, "name": "Launch", "description": "d"}),
        )
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut tasks = Vec::new();
    for i in 0..3 {
        let task = server
            .post(
                "/api/tasks",
                Some(&admin.token),
                json!({"title": format!("Task {i}"), "project_id": project, "assignee_ids": [member.user_id]}),
            )
            .await
            .ok()["id"]
            .as_str()
            .unwrap()
            .to_string();
        server
            .post(
                &format!("/api/tasks/{task}/comments"),
                Some(&member.token),
                json!({"body": format!("comment on {i}")}),
            )
            .await
            .ok();
        tasks.push(task);
    }
    let content: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let uploaded = server
        .upload(
            &tasks[0],
            &admin.token,
            &[("data.bin", &content), ("same.bin", &content)],
        )
        .await;
    let attachment = uploaded.ok()["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    Population {
        admin,
        member,
        tasks,
        attachment,
        content,
    }
}

/// Everything the population's users can read, as JSON.
async fn visible_state(server: &TestServer, p: &Population) -> Vec<Value> {
    let mut state = Vec::new();
    for task in &p.tasks {
        state.push(
            server
                .get(&format!("/api/tasks/{task}"), Some(&p.admin.token))
                .await
                .ok()
                .clone(),
        );
        state.push(
            server
                .get(
                    &format!("/api/tasks/{task}/comments"),
                    Some(&p.member.token),
                )
                .await
                .ok()
                .clone(),
        );
        state.push(
            server
                .get(
                    &format!("/api/tasks/{task}/attachments"),
                    Some(&p.admin.token),
                )
                .await
                .ok()
                .clone(),
        );
    }
    state.push(
        server
            .get("/api/tasks?scope=all", Some(&p.member.token))
            .await
            .ok()
            .clone(),
    );
    state.push(
        server
            .get("/api/teams", Some(&p.member.token))
            .await
            .ok()
            .clone(),
    );
    state
}

async fn attachment_bytes(server: &TestServer, p: &Population) -> Vec<u8> {
    let response = server
        .client
        .get(server.url(&format!("/api/attachments/{}/content", p.attachment)))
        .bearer_auth(&p.admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.bytes().await.unwrap().to_vec()
}

/// Restores `archive` into a new dir, starts a server on it and asserts it serves exactly
/// `expected`, the same attachment bytes, the old tokens (same secret, same sessions) and
/// the old passwords.
async fn assert_restores(archive: &Path, target: &Path, p: &Population, expected: &[Value]) {
    let output = tasker(
        &["restore", "--from", arg(archive), "--data-dir", arg(target)],
        "",
    )
    .await;
    assert!(output.status.success(), "{}", text(&output));
    let server = spawn_on(target).await;
    assert_eq!(visible_state(&server, p).await, expected);
    assert_eq!(attachment_bytes(&server, p).await, p.content);
    // The member's old token still works: same JWT secret, same session rows.
    server
        .get("/api/auth/profile", Some(&p.member.token))
        .await
        .ok();
    server.login_ok("member@example.com").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_offline_and_online_restore_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = spawn_on(&data).await;
    let p = populate(&server).await;
    let expected = visible_state(&server, &p).await;
    assert_eq!(attachment_bytes(&server, &p).await, p.content);

    // Online: the server holds the lock; the CLI fetches the archive over the admin socket.
    let online = tmp.path().join("online.tar");
    let output = tasker(
        &["backup", "--data-dir", arg(&data), "--out", arg(&online)],
        "",
    )
    .await;
    assert!(output.status.success(), "{}", text(&output));
    assert!(!tmp.path().join("online.tar.tmp").exists());
    server.stop().await;
    assert!(
        !data.join("admin.sock").exists(),
        "the socket goes at shutdown"
    );

    // Offline: the CLI opens the database itself.
    let offline = tmp.path().join("offline.tar");
    let output = tasker(
        &["backup", "--data-dir", arg(&data), "--out", arg(&offline)],
        "",
    )
    .await;
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("1 blobs"),
        "{}",
        text(&output)
    );

    assert_restores(&online, &tmp.path().join("from-online"), &p, &expected).await;
    assert_restores(&offline, &tmp.path().join("from-offline"), &p, &expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_damaged_archives_and_non_empty_dirs() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = spawn_on(&data).await;
    populate(&server).await;
    server.stop().await;
    let archive = tmp.path().join("b.tar");
    let output = tasker(
        &["backup", "--data-dir", arg(&data), "--out", arg(&archive)],
        "",
    )
    .await;
    assert!(output.status.success(), "{}", text(&output));

    // A non-empty target: bad usage, exit 2, nothing touched.
    let busy = tmp.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("keep"), b"x").unwrap();
    let output = tasker(
        &["restore", "--from", arg(&archive), "--data-dir", arg(&busy)],
        "",
    )
    .await;
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not empty"));
    assert_eq!(std::fs::read_dir(&busy).unwrap().count(), 1);

    // One flipped byte in the middle (inside some entry's content): refused, nothing written.
    let mut bytes = std::fs::read(&archive).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    let damaged = tmp.path().join("damaged.tar");
    std::fs::write(&damaged, &bytes).unwrap();
    let target = tmp.path().join("restored");
    let output = tasker(
        &[
            "restore",
            "--from",
            arg(&damaged),
            "--data-dir",
            arg(&target),
        ],
        "",
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(!target.exists(), "nothing written");
    let leftovers: Vec<PathBuf> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().contains("restore"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A truncated archive (no manifest) is refused too.
    std::fs::write(&damaged, &std::fs::read(&archive).unwrap()[..middle]).unwrap();
    let output = tasker(
        &[
            "restore",
            "--from",
            arg(&damaged),
            "--data-dir",
            arg(&target),
        ],
        "",
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(!target.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backup_endpoint_is_for_site_admins() {
    let server = TestServer::spawn().await;
    let admin = server.register().await;
    let member = server.register().await;
    server
        .get("/api/admin/backup", None)
        .await
        .problem(401, "unauthenticated");
    server
        .get("/api/admin/backup", Some(&member.token))
        .await
        .problem(403, "forbidden");
    let response = server
        .client
        .get(server.url("/api/admin/backup"))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-tar");
    let disposition = response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        disposition.starts_with("attachment; filename=\"tasker-backup-")
            && disposition.ends_with(".tar\""),
        "{disposition}"
    );
    let bytes = response.bytes().await.unwrap();
    let file = server.data_dir.join("../downloaded.tar");
    std::fs::write(&file, &bytes).unwrap();
    let manifest = tasker::backup::archive::verify(&file).expect("a complete archive");
    assert!(manifest.entries.iter().any(|e| e.path == "tasker.redb"));
    let _ = std::fs::remove_file(&file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_passes_clean_data_and_names_damaged_blobs() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = spawn_on(&data).await;
    populate(&server).await;
    let output = tasker(&["check", "--data-dir", arg(&data)], "").await;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("the server is running; stop it first")
    );
    let output = tasker(&["reindex", "--data-dir", arg(&data)], "").await;
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("a running server holds it"));
    let blob = server
        .blob_files()
        .into_iter()
        .find(|p| p.parent().and_then(Path::file_name) != Some("tmp".as_ref()))
        .unwrap();
    server.stop().await;

    let output = tasker(&["check", "--data-dir", arg(&data)], "").await;
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("3 tasks") && stdout.contains("all checks passed"),
        "{stdout}"
    );
    assert!(stdout.contains("3 documents for 3 tasks"), "{stdout}");

    // The index rebuilt offline holds the same; a missing one is only a note.
    let output = tasker(&["reindex", "--data-dir", arg(&data)], "").await;
    assert!(output.status.success(), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("indexed 3 tasks"));
    std::fs::remove_dir_all(data.join("index")).unwrap();
    let output = tasker(&["check", "--data-dir", arg(&data)], "").await;
    assert!(output.status.success(), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("no index"));

    let name = blob.file_name().unwrap().to_string_lossy().into_owned();
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[10] ^= 0xff;
    std::fs::write(&blob, &bytes).unwrap();
    let output = tasker(&["check", "--data-dir", arg(&data)], "").await;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&name) && stdout.contains("corrupt"),
        "{stdout}"
    );
    // A backup refuses to archive a corrupt blob.
    let archive = tmp.path().join("b.tar");
    let output = tasker(
        &["backup", "--data-dir", arg(&data), "--out", arg(&archive)],
        "",
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(!archive.exists() && !tmp.path().join("b.tar.tmp").exists());

    std::fs::remove_file(&blob).unwrap();
    let output = tasker(&["check", "--data-dir", arg(&data)], "").await;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&name) && stdout.contains("missing"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_commands_manage_accounts_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = arg(&data);
    let create = |email: &'static str, admin: bool| {
        let mut args = vec![
            "user",
            "create",
            "--data-dir",
            d,
            "--email",
            email,
            "--name",
            "Root",
            "--bcrypt-cost",
            "4",
        ];
        if admin {
            args.push("--admin");
        }
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>, stdin: String| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        tasker(&args, &stdin).await
    };
    let output = run(create("root@example.com", true), format!("{PASSWORD}\n")).await;
    assert!(output.status.success(), "{}", text(&output));
    let output = run(create("second@example.com", true), format!("{PASSWORD}\n")).await;
    assert!(output.status.success(), "{}", text(&output));
    let output = run(create("weak@example.com", false), "short\n".into()).await;
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("password"));

    let output = tasker(&["user", "list", "--data-dir", d], "").await;
    let listed = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{}", text(&output));
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 3, "{listed}");
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("EMAIL") && lines[0].contains("DISABLED")
    );
    assert!(
        lines[1].contains("root@example.com")
            && lines[1].contains("admin")
            && lines[1].contains(" no ")
    );
    assert!(
        lines[2].contains("second@example.com") && lines[2].contains("admin"),
        "--admin: {listed}"
    );

    let server = spawn_on(&data).await;
    let root = server.login_ok("root@example.com").await;
    let profile = server.get("/api/users/me", Some(&root.token)).await;
    assert_eq!(profile.ok()["role"], "admin");
    let output = tasker(
        &[
            "user",
            "disable",
            "--data-dir",
            d,
            "--email",
            "root@example.com",
        ],
        "",
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("the server is running; stop it first")
    );
    server.stop().await;

    let output = tasker(
        &[
            "user",
            "reset-password",
            "--data-dir",
            d,
            "--email",
            "root@example.com",
            "--bcrypt-cost",
            "4",
        ],
        "a brand new password\n",
    )
    .await;
    assert!(output.status.success(), "{}", text(&output));
    let output = tasker(
        &[
            "user",
            "disable",
            "--data-dir",
            d,
            "--email",
            "second@example.com",
        ],
        "",
    )
    .await;
    assert!(output.status.success(), "{}", text(&output));

    let server = spawn_on(&data).await;
    server.assert_signed_out(&root).await;
    assert_eq!(server.login("root@example.com", PASSWORD).await.status, 401);
    assert_eq!(
        server
            .login("root@example.com", "a brand new password")
            .await
            .status,
        200
    );
    server
        .login("second@example.com", PASSWORD)
        .await
        .problem(401, "invalid_credentials");
    server.stop().await;

    let output = tasker(
        &[
            "user",
            "enable",
            "--data-dir",
            d,
            "--email",
            "second@example.com",
        ],
        "",
    )
    .await;
    assert!(output.status.success(), "{}", text(&output));
    let output = tasker(&["user", "list", "--data-dir", d], "").await;
    assert!(!String::from_utf8_lossy(&output.stdout).contains(" yes "));
}
