//! `tasker export` and `tasker import`: a populated server's data survives the round trip
//! through the portable file, secrets stay out of it, and a bad file or a used data directory
//! changes nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use reqwest::Method;
use serde_json::{Value, json};
use tasker::domain::Email;
use tasker::domain::user::PasswordHash;
use tasker::portable::{Progress, Synthetic, export_file, import_file, write_synthetic};
use tasker::store::{DB_FILE, Store};

use crate::common::{Account, PASSWORD, TestServer, test_config};

const BIN: &str = env!("CARGO_BIN_EXE_tasker");

/// Runs `tasker` with `args` and a clean environment.
fn tasker(args: &[&str]) -> Output {
    let mut command = Command::new(BIN);
    command.args(args).stdin(Stdio::null());
    for (key, _) in std::env::vars() {
        if key.starts_with("TASKER_") || key == "JWT_SECRET" {
            command.env_remove(key);
        }
    }
    command.output().expect("tasker runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn export(data_dir: &Path, out: &Path) -> Output {
    tasker(&[
        "export",
        "--data-dir",
        &data_dir.display().to_string(),
        "--out",
        &out.display().to_string(),
    ])
}

fn import(data_dir: &Path, from: &Path) -> Output {
    tasker(&[
        "import",
        "--data-dir",
        &data_dir.display().to_string(),
        "--from",
        &from.display().to_string(),
    ])
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// What an import leaves: accounts without a password. Sets one the way an operator's
/// `tasker user reset-password` would, without touching the account's version.
fn set_password(data_dir: &Path, email: &str) {
    let store = Store::open(&data_dir.join(DB_FILE)).unwrap();
    let user = store
        .user_by_email(&Email::parse(email).unwrap())
        .unwrap()
        .expect("imported account");
    assert!(!user.password_hash.is_set(), "imported without a password");
    let hash = PasswordHash::new(bcrypt::hash(PASSWORD, 4).unwrap());
    store
        .replace_password_hash(user.id, &PasswordHash::none(), hash)
        .unwrap();
}

/// An export file parsed, without the one field that differs between two exports.
fn content(path: &Path) -> Value {
    let mut file: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    file.as_object_mut().unwrap().remove("exported_at");
    file
}

/// Everything the API shows `who` about `tasks`: the rows, comments, attachments and bytes.
async fn views(server: &TestServer, who: &Account, tasks: &[String]) -> Vec<Value> {
    let mut seen = Vec::new();
    for task in tasks {
        for path in [
            format!("/api/tasks/{task}"),
            format!("/api/tasks/{task}/comments"),
            format!("/api/tasks/{task}/attachments"),
        ] {
            seen.push(server.get(&path, Some(&who.token)).await.ok().clone());
        }
        let attachments = server
            .get(&format!("/api/tasks/{task}/attachments"), Some(&who.token))
            .await;
        for item in attachments.body["items"].as_array().unwrap() {
            let id = item["id"].as_str().unwrap();
            let bytes = server
                .client
                .get(server.url(&format!("/api/attachments/{id}/content")))
                .bearer_auth(&who.token)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            seen.push(Value::String(text(&bytes)));
        }
    }
    let mine = server.get("/api/tasks?scope=all", Some(&who.token)).await;
    seen.push(mine.ok().clone());
    seen.push(
        server
            .get("/api/teams", Some(&who.token))
            .await
            .ok()
            .clone(),
    );
    seen.push(
        server
            .get("/api/projects", Some(&who.token))
            .await
            .ok()
            .clone(),
    );
    seen
}

/// A server with two people, a team, a project, tasks with assignees, labels and due dates,
/// comments (one edited) and an attachment. Returns the owner and the task ids.
async fn populate(server: &TestServer) -> (Account, Vec<String>) {
    let alice = server.register_as("alice@example.com", "Alice").await;
    let bob = server.register_as("bob@example.com", "Bob").await;
    let team = server.create_team(&alice, "Platform").await;
    server.add_member(&team, &alice, &bob, "member").await;
    let project = server
        .post(
            "/api/projects",
            Some(&alice.token),
            json!({"team_id": team, "name": "Launch", "description": "Q1"}),
        )
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let team_task = server
        .post(
            "/api/tasks",
            Some(&alice.token),
            json!({"title": "Ship it", "description": "Steps\n1. build", "priority": "high",
                   "due_date": "2030-01-02T03:04:05Z", "labels": ["release", "ops"],
                   "project_id": project, "assignee_ids": [alice.user_id, bob.user_id]}),
        )
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    server
        .call(
            Method::PATCH,
            &format!("/api/tasks/{team_task}"),
            Some(&bob.token),
            Some(json!({"status": "in_progress"})),
        )
        .await
        .ok();
    let personal = server
        .post(
            "/api/tasks",
            Some(&alice.token),
            json!({"title": "Personal", "assignee_ids": [bob.user_id]}),
        )
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let comment = server
        .post(
            &format!("/api/tasks/{team_task}/comments"),
            Some(&bob.token),
            json!({"body": "On it"}),
        )
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    server
        .call(
            Method::PATCH,
            &format!("/api/comments/{comment}"),
            Some(&bob.token),
            Some(json!({"body": "On it, edited"})),
        )
        .await
        .ok();
    server
        .post(
            &format!("/api/tasks/{personal}/comments"),
            Some(&alice.token),
            json!({"body": "Note to self"}),
        )
        .await
        .ok();
    let upload = server
        .upload(&team_task, &alice.token, &[("notes.txt", b"release notes")])
        .await;
    assert_eq!(upload.status, 201, "{}", upload.body);
    (alice, vec![team_task, personal])
}

#[tokio::test]
async fn export_and_import_round_trip_through_the_api() {
    let tmp = tempfile::tempdir().unwrap();
    let (old_dir, new_dir) = (tmp.path().join("old"), tmp.path().join("new"));
    let server = TestServer::spawn_with(test_config(&old_dir)).await;
    let (alice, tasks) = populate(&server).await;
    let before = views(&server, &alice, &tasks).await;

    // A running server holds the data directory.
    let file = tmp.path().join("export.json");
    let refused = export(&old_dir, &file);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("the server is running; stop it first"),
        "{}",
        text(&refused.stderr)
    );
    server.stop().await;

    let exported = export(&old_dir, &file);
    assert!(exported.status.success(), "{}", text(&exported.stderr));
    assert!(text(&exported.stdout).contains("2 users"));
    assert!(!tmp.path().join("export.json.tmp").exists());
    let raw = text(&std::fs::read(&file).unwrap());
    for secret in ["password", "$2b$", "$2y$", "refresh", "session", "secret"] {
        assert!(!raw.contains(secret), "{secret} found in the export");
    }
    let parsed: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(parsed["format"], "tasker-export");
    assert_eq!(parsed["version"], 1);
    assert_eq!(parsed["teams"][0]["members"].as_array().unwrap().len(), 2);
    assert_eq!(parsed["attachments"][0]["filename"], "notes.txt");

    // The attachment's bytes travel beside the file.
    copy_dir(&old_dir.join("blobs"), &new_dir.join("blobs"));
    let imported = import(&new_dir, &file);
    assert!(imported.status.success(), "{}", text(&imported.stderr));
    assert!(
        text(&imported.stdout).contains("imported 2 users"),
        "{}",
        text(&imported.stdout)
    );
    assert!(
        !text(&imported.stderr).contains("warning"),
        "{}",
        text(&imported.stderr)
    );
    set_password(&new_dir, "alice@example.com");

    let server = TestServer::spawn_with(test_config(&new_dir)).await;
    // Bob has no password yet: the normal answer to a wrong password, never a 500.
    server
        .login("bob@example.com", PASSWORD)
        .await
        .problem(401, "invalid_credentials");
    let alice = server.login_ok("alice@example.com").await;
    let after = views(&server, &alice, &tasks).await;
    assert_eq!(before, after, "the API shows the same data");
    let activity = server
        .get(
            &format!("/api/tasks/{}/activity", tasks[0]),
            Some(&alice.token),
        )
        .await;
    let entries = activity.ok()["items"].as_array().unwrap().clone();
    assert!(
        entries.iter().any(|e| e["action"] == "created"),
        "{activity:?}"
    );
    // New rows get ids after the imported ones and work as usual.
    let fresh = server
        .post("/api/tasks", Some(&alice.token), json!({"title": "After"}))
        .await;
    assert!(fresh.ok()["id"].as_str().unwrap() > tasks[1].as_str());
    let deleted = server
        .call(
            Method::DELETE,
            &format!("/api/tasks/{}", fresh.body["id"].as_str().unwrap()),
            Some(&alice.token),
            None,
        )
        .await;
    assert!(deleted.status.is_success(), "{}", deleted.body);
    server.stop().await;

    let again = tmp.path().join("again.json");
    let exported = export(&new_dir, &again);
    assert!(exported.status.success(), "{}", text(&exported.stderr));
    assert_eq!(
        content(&file),
        content(&again),
        "export, import, export is stable"
    );
}

/// A small valid file: one user, one team, one project, one task.
fn small_file() -> Value {
    let (user, team, project, task) = (
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
    );
    let at = "2026-11-21T10:00:00Z";
    json!({
        "format": "tasker-export", "version": 1, "exported_at": at, "tasker_version": "0",
        "users": [{"id": user, "email": "ada@example.com", "name": "Ada", "role": "admin",
                   "disabled": false, "created_at": at, "updated_at": at, "version": 1}],
        "teams": [{"id": team, "name": "T", "description": "", "created_by": user,
                   "created_at": at, "updated_at": at, "version": 1,
                   "members": [{"user_id": user, "role": "owner", "joined_at": at}]}],
        "projects": [{"id": project, "team_id": team, "name": "P", "description": "",
                      "status": "active", "created_by": user, "created_at": at,
                      "updated_at": at, "version": 1}],
        "tasks": [{"id": task, "title": "T", "description": "", "status": "todo",
                   "priority": "low", "due_date": null, "labels": [], "project_id": project,
                   "assignee_ids": [user], "created_by": user, "created_at": at,
                   "updated_at": at, "version": 1}],
        "comments": [],
        "attachments": []
    })
}

/// `value` as an export file: the header, then the sections in their order (`json!` sorts
/// keys).
fn ordered(value: &Value) -> String {
    let keys = [
        "format",
        "version",
        "exported_at",
        "tasker_version",
        "users",
        "teams",
        "projects",
        "tasks",
        "comments",
        "attachments",
    ];
    let fields: Vec<String> = keys
        .iter()
        .map(|key| format!("{key:?}: {}", value[*key]))
        .collect();
    format!("{{{}}}", fields.join(",\n"))
}

fn write(dir: &Path, name: &str, value: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, ordered(value)).unwrap();
    path
}

#[test]
fn a_bad_file_names_the_item_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let good = small_file();
    let mut cases: Vec<(&str, Value, &str)> = Vec::new();
    let mut bad = good.clone();
    bad["tasks"][0]["title"] = json!("   ");
    cases.push(("empty title", bad, "tasks[0]"));
    let mut bad = good.clone();
    bad["tasks"][0]["status"] = json!("doing");
    cases.push(("unknown status", bad, "status"));
    let mut bad = good.clone();
    bad["tasks"][0]["assignee_ids"] = json!([uuid::Uuid::now_v7()]);
    cases.push(("unknown assignee", bad, "assignee_ids"));
    let mut bad = good.clone();
    bad["users"][0]["email"] = json!("not-an-email");
    cases.push(("bad email", bad, "users[0]"));
    let mut bad = good.clone();
    bad["teams"][0]["members"][0]["role"] = json!("member");
    cases.push(("no owner", bad, "owner"));
    let mut bad = good.clone();
    bad["tasks"][0]["project_id"] = json!(uuid::Uuid::now_v7());
    cases.push(("missing project", bad, "project_id"));
    let mut bad = good.clone();
    bad["format"] = json!("something-else");
    cases.push(("wrong format", bad, "format"));
    for (what, file, expected) in cases {
        let path = write(tmp.path(), "bad.json", &file);
        let dir = tmp.path().join("target");
        let out = import(&dir, &path);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
        assert!(stderr.contains(expected), "{what}: {stderr}");
        assert!(stderr.contains("nothing was imported"), "{what}: {stderr}");
        assert!(
            !dir.exists(),
            "{what}: the new data directory is gone again"
        );
    }

    // Cut short, in an existing empty directory: it stays empty.
    let dir = tmp.path().join("empty");
    std::fs::create_dir(&dir).unwrap();
    let whole = ordered(&good);
    let path = tmp.path().join("cut.json");
    std::fs::write(&path, &whole[..whole.len() - 40]).unwrap();
    let out = import(&dir, &path);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);

    // The good file imports.
    let path = write(tmp.path(), "good.json", &good);
    let out = import(&dir, &path);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// An imported task's (and comment's) `created` entry says who created it and when, without
/// repeating its values; a later edit records before and after as usual.
#[tokio::test]
async fn an_imported_task_has_one_lean_created_entry_then_edits_as_usual() {
    let tmp = tempfile::tempdir().unwrap();
    let mut file = small_file();
    let (task, user) = (
        file["tasks"][0]["id"].clone(),
        file["users"][0]["id"].clone(),
    );
    file["comments"] = json!([{
        "id": uuid::Uuid::now_v7(), "task_id": task, "author_id": user, "body": "Imported",
        "created_at": "2026-11-21T11:00:00Z", "updated_at": "2026-11-21T11:00:00Z",
        "edited_at": null, "version": 1
    }]);
    let dir = tmp.path().join("data");
    let out = import(&dir, &write(tmp.path(), "file.json", &file));
    assert!(out.status.success(), "{}", text(&out.stderr));
    set_password(&dir, "ada@example.com");

    let server = TestServer::spawn_with(test_config(&dir)).await;
    let ada = server.login_ok("ada@example.com").await;
    let task = task.as_str().unwrap();
    async fn activity(server: &TestServer, task: &str, token: &str) -> Value {
        let path = format!("/api/tasks/{task}/activity");
        server.get(&path, Some(token)).await.ok()["items"].clone()
    }
    let items = activity(&server, task, &ada.token).await;
    assert_eq!(items.as_array().unwrap().len(), 1, "{items}");
    assert_eq!(items[0]["action"], "created");
    assert_eq!(items[0]["actor_id"], user);
    assert_eq!(items[0]["at"], "2026-11-21T10:00:00+00:00");
    assert_eq!(items[0]["changes"], json!([]));
    // The comment is there (its entry named its task; the row is what counts).
    let comments = server
        .get(&format!("/api/tasks/{task}/comments"), Some(&ada.token))
        .await;
    assert_eq!(comments.ok()["items"][0]["body"], "Imported");
    let row = server
        .get(&format!("/api/tasks/{task}"), Some(&ada.token))
        .await;
    assert_eq!(row.ok()["title"], "T");

    let patched = server
        .call(
            Method::PATCH,
            &format!("/api/tasks/{task}"),
            Some(&ada.token),
            Some(json!({"title": "Renamed", "priority": "high"})),
        )
        .await;
    assert!(patched.status.is_success(), "{}", patched.body);
    let items = activity(&server, task, &ada.token).await;
    assert_eq!(items.as_array().unwrap().len(), 2, "{items}");
    assert_eq!(items[1]["action"], "updated");
    let changes = items[1]["changes"].as_array().unwrap();
    assert!(
        changes.contains(&json!({"field": "title", "from": "T", "to": "Renamed"})),
        "{items}"
    );
    assert!(
        changes.contains(&json!({"field": "priority", "from": "low", "to": "high"})),
        "{items}"
    );
    server.stop().await;
}

#[tokio::test]
async fn import_refuses_a_data_dir_that_has_accounts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("used");
    let server = TestServer::spawn_with(test_config(&dir)).await;
    server.register().await;
    server.stop().await;
    let path = write(tmp.path(), "good.json", &small_file());
    let out = import(&dir, &path);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("already has data"), "{stderr}");
    assert!(dir.join(DB_FILE).exists(), "the existing database is kept");
}

#[test]
fn missing_blobs_skip_their_attachments_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let mut file = small_file();
    file["attachments"] = json!([{
        "id": uuid::Uuid::now_v7(), "task_id": file["tasks"][0]["id"], "filename": "a.txt",
        "content_type": "text/plain", "size": 3, "sha256": "ab".repeat(32),
        "uploaded_by": file["users"][0]["id"], "created_at": "2026-11-21T10:00:00Z"
    }]);
    let path = write(tmp.path(), "file.json", &file);
    let out = import(&tmp.path().join("data"), &path);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("warning: skipped 1 attachments"));
    assert!(text(&out.stdout).contains("0 attachments"));
}

#[test]
fn a_synthetic_file_seeds_a_store() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("synthetic.json");
    let spec = Synthetic {
        users: 5,
        projects: 2,
        tasks: 2_000,
        comment_every: 10,
    };
    write_synthetic(&path, spec).unwrap();
    let report = import_file(&tmp.path().join("data"), &path, Progress::Hidden).unwrap();
    assert_eq!(
        (report.users, report.tasks, report.comments),
        (5, 2_000, 200)
    );
}

/// How long seeding takes: `TASKER_SEED_TASKS=1000000 cargo test --release --test api
/// portable::seed_timing -- --ignored --nocapture`.
#[test]
#[ignore]
fn seed_timing() {
    let tasks: u64 = std::env::var("TASKER_SEED_TASKS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("synthetic.json");
    let started = std::time::Instant::now();
    write_synthetic(
        &path,
        Synthetic {
            tasks,
            ..Synthetic::default()
        },
    )
    .unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    println!(
        "wrote {tasks} tasks ({} MB) in {:.1}s",
        size >> 20,
        started.elapsed().as_secs_f64()
    );
    let report = import_file(&tmp.path().join("data"), &path, Progress::Stderr).unwrap();
    let db = std::fs::metadata(tmp.path().join("data").join(DB_FILE))
        .unwrap()
        .len();
    println!("{report}; database {} MB", db >> 20);
    let out = tmp.path().join("export.json");
    let report = export_file(&tmp.path().join("data"), &out, Progress::Stderr).unwrap();
    let size = std::fs::metadata(&out).unwrap().len();
    println!("{report} ({} MB)", size >> 20);
}

/// A file that fails after tens of thousands of rows were written (more than the database
/// cache holds: the import's pages have gone to the file by then) leaves the data directory as
/// it was: the database a server created is still there, still empty, and a good file then
/// imports into it.
#[tokio::test]
async fn an_import_that_fails_late_leaves_the_data_dir_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    // A data directory a server made: database, secret, index.
    let mut config = test_config(&dir);
    config.db_cache = 4;
    let server = TestServer::spawn_with(config).await;
    server.stop().await;
    let listing = |dir: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let before = listing(&dir);

    let path = tmp.path().join("synthetic.json");
    let spec = Synthetic {
        users: 20,
        projects: 4,
        tasks: 20_000,
        comment_every: 10,
    };
    write_synthetic(&path, spec).unwrap();
    let mut file: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    // The last comment names a task that is not in the file.
    let last = file["comments"].as_array().unwrap().len() - 1;
    file["comments"][last]["task_id"] = json!(uuid::Uuid::now_v7());
    let bad = write(tmp.path(), "bad.json", &file);
    let out = import(&dir, &bad);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("comments[{last}]")), "{stderr}");
    assert!(stderr.contains("nothing was imported"), "{stderr}");
    assert_eq!(listing(&dir), before, "no file was added or removed");
    {
        let store = Store::open(&dir.join(DB_FILE)).unwrap();
        assert_eq!(store.task_count().unwrap(), 0);
    }

    let out = import(&dir, &path);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let store = Store::open(&dir.join(DB_FILE)).unwrap();
    assert_eq!(store.task_count().unwrap(), 20_000);
}

/// `--db-cache` (`TASKER_DB_CACHE`) sizes the database cache in MiB: the default is the
/// store's, too small a cache is refused, and a server runs with a small one.
#[tokio::test]
async fn the_database_cache_is_configurable() {
    assert_eq!(
        tasker::Config::new("data").db_cache,
        tasker::store::DEFAULT_CACHE_MIB
    );
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().display().to_string();
    let out = tasker(&["serve", "--data-dir", &data, "--db-cache", "1"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--db-cache"),
        "{}",
        text(&out.stderr)
    );

    let mut config = test_config(tmp.path());
    config.db_cache = 4;
    let server = TestServer::spawn_with(config).await;
    let account = server.register().await;
    let task = server
        .post(
            "/api/tasks",
            Some(&account.token),
            json!({"title": "cached"}),
        )
        .await;
    assert_eq!(task.ok()["title"], "cached");
    server.stop().await;
}

/// `tasker check` shows where the bytes go (per table, the file's free space, the index and
/// the blobs), and `tasker compact` gives free space back and keeps every row.
#[test]
fn check_shows_the_storage_and_compact_gives_free_space_back() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("synthetic.json");
    let spec = Synthetic {
        users: 5,
        projects: 2,
        tasks: 2_000,
        comment_every: 10,
    };
    write_synthetic(&path, spec).unwrap();
    let dir = tmp.path().join("data");
    let out = import(&dir, &path);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("(database "),
        "{}",
        text(&out.stdout)
    );
    let d = dir.display().to_string();

    let out = tasker(&["check", "--data-dir", &d]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("all checks passed"), "{stdout}");
    let storage = stdout
        .lines()
        .find(|l| l.starts_with("storage"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        storage.contains("KB/task") && storage.contains("search index"),
        "{storage}"
    );
    for line in [
        "table ",
        "tasks-1 ",
        "tasks_sorted-1 ",
        "changes-1 ",
        "all tables",
        "free pages and redb's own",
    ] {
        assert!(
            stdout.lines().any(|l| l.trim_start().starts_with(line)),
            "no line {line:?}: {stdout}"
        );
    }
    let tasks_line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("tasks-1 "))
        .unwrap();
    assert!(tasks_line.contains(" 2000 "), "{tasks_line}");

    // Free space left by deletes is given back; the rows stay.
    {
        let store = Store::open(&dir.join(DB_FILE)).unwrap();
        let mut ids = Vec::new();
        store
            .snapshot()
            .unwrap()
            .tasks(|task| {
                ids.push(task.id);
                Ok::<_, tasker::store::StoreError>(())
            })
            .unwrap();
        store
            .write(|tx| {
                for id in &ids[..1_500] {
                    let task = tx.task(*id)?.unwrap();
                    tx.delete_task(*id, task.created_by, chrono::Utc::now())?;
                }
                Ok::<_, tasker::store::StoreError>(())
            })
            .unwrap();
    }
    let size = || std::fs::metadata(dir.join(DB_FILE)).unwrap().len();
    let before = size();
    let out = tasker(&["compact", "--data-dir", &d]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains("compacted") && stdout.contains("given back"),
        "{stdout}"
    );
    assert!(size() < before, "{before} -> {}: {stdout}", size());
    let out = tasker(&["check", "--data-dir", &d]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("500 tasks"),
        "{}",
        text(&out.stdout)
    );
}

/// `tasker compact` leaves a data directory the server holds alone, and names a directory
/// without a database.
#[tokio::test]
async fn compact_refuses_a_running_server_and_a_bad_data_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let server = TestServer::spawn_with(test_config(&dir)).await;
    server.register().await;
    let d = dir.display().to_string();
    let out = tasker(&["compact", "--data-dir", &d]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("the server is running; stop it first"),
        "{}",
        text(&out.stderr)
    );
    server.stop().await;
    let out = tasker(&["compact", "--data-dir", &d]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let missing = tmp.path().join("nothing-here").display().to_string();
    let out = tasker(&["compact", "--data-dir", &missing]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no tasker database there"),
        "{}",
        text(&out.stderr)
    );
    assert!(!tmp.path().join("nothing-here").exists(), "nothing created");
}

/// How the database grows under a day of normal writes: updates the status (every other one)
/// or the description of every tenth task of an imported data directory, one transaction each
/// like the server's, then compacts, printing the storage after each step:
/// `TASKER_GROWTH_DIR=DIR cargo test --release --test api portable::growth_under_updates --
/// --ignored --nocapture` (DIR: a data directory `tasker import` made; it is changed).
#[test]
#[ignore]
fn growth_under_updates() {
    use tasker::domain::task::TaskStatus;
    let Ok(dir) = std::env::var("TASKER_GROWTH_DIR") else {
        eprintln!("set TASKER_GROWTH_DIR");
        return;
    };
    let dir = PathBuf::from(dir);
    let size = || std::fs::metadata(dir.join(DB_FILE)).unwrap().len();
    let storage = || {
        let report = tasker::ops::check::run_checks(&dir).unwrap();
        let check = report.checks.iter().find(|c| c.name == "storage").unwrap();
        format!("{}\n    {}", check.summary, check.details.join("\n    "))
    };
    println!("before: {} bytes\n{}", size(), storage());
    let mut ids = Vec::new();
    {
        let store = Store::open(&dir.join(DB_FILE)).unwrap();
        let mut n = 0u64;
        store
            .snapshot()
            .unwrap()
            .tasks(|task| {
                n += 1;
                if n.is_multiple_of(10) {
                    ids.push(task.id);
                }
                Ok::<_, tasker::store::StoreError>(())
            })
            .unwrap();
        let started = std::time::Instant::now();
        for (i, id) in ids.iter().enumerate() {
            store
                .write(|tx| {
                    let actor = tx.task(*id)?.unwrap().created_by;
                    tx.update_task(*id, actor, chrono::Utc::now(), |task| {
                        if i.is_multiple_of(2) {
                            task.status = match task.status {
                                TaskStatus::Done => TaskStatus::Todo,
                                _ => TaskStatus::Done,
                            };
                        } else {
                            task.description
                                .push_str(" Updated once more after review.");
                        }
                        Ok(())
                    })
                })
                .unwrap();
        }
        println!(
            "updated {} tasks in {:.1}s",
            ids.len(),
            started.elapsed().as_secs_f64()
        );
    }
    println!("after the updates: {} bytes\n{}", size(), storage());
    let compacted = tasker::store::compact(&dir.join(DB_FILE)).unwrap();
    println!("compacted: {compacted:?}\n{}", storage());
}
