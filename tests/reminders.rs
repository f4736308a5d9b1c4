//! Reminders, the digest, per-kind email and ntfy pushes (issue 17), against a real SMTP
//! server (tests/common/smtp.rs) and a real HTTP receiver on loopback standing in for ntfy.
//!
//! Timing is real: a due date a few seconds ahead with the due-time reminder, or a one-minute
//! lead time. "Exactly one" and "dropped" are checked by order, never by waiting a while: the
//! worker fires entries in time order, so once a later control task's reminder has arrived,
//! every earlier entry has fired or was gone.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::common::smtp::{Received, SmtpServer};
use crate::common::{Account, TestServer, test_config};

use crate::tasks::{cast, new_task};
use chrono::Timelike;

const SITE: &str = "http://tasker.test";

/// A stand-in for an ntfy server: keeps every request's path and body, answers 200.
pub struct Ntfy {
    pub url: String,
    got: Arc<Mutex<Vec<(String, Value)>>>,
    arrived: Arc<Notify>,
}

impl Ntfy {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (got, arrived) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Notify::new()));
        let (g, a) = (got.clone(), arrived.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (g, a) = (g.clone(), a.clone());
                tokio::spawn(async move {
                    let mut data = Vec::new();
                    let mut buf = [0u8; 4096];
                    loop {
                        let n = socket.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        data.extend_from_slice(&buf[..n]);
                        let text = String::from_utf8_lossy(&data).to_string();
                        let Some((head, body)) = text.split_once("\r\n\r\n") else {
                            continue;
                        };
                        let length = head
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if body.len() < length {
                            continue;
                        }
                        let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                        let value = serde_json::from_str(body).unwrap_or(Value::Null);
                        g.lock().unwrap().push((path, value));
                        a.notify_waiters();
                        let _ = socket
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")
                            .await;
                        return;
                    }
                });
            }
        });
        Self { url, got, arrived }
    }

    pub fn topic(&self, name: &str) -> String {
        format!("{}/{name}", self.url)
    }

    pub fn pushes(&self) -> Vec<Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub async fn wait_for(&self, n: usize) -> Vec<Value> {
        tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                let notified = self.arrived.notified();
                if self.got.lock().unwrap().len() >= n {
                    return;
                }
                notified.await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {n} pushes: {:?}", self.pushes()));
        self.pushes()
    }
}

/// A tasker sending mail to `smtp`, links at [`SITE`], loopback allowed (the ntfy stand-in).
pub fn remind_config(dir: &std::path::Path, smtp: &SmtpServer) -> tasker::Config {
    let mut config = test_config(dir);
    config.mail.smtp_url = Some(tasker::mail::SmtpUrl::parse(&smtp.url()).unwrap());
    config.mail.smtp_from = Some("Tasker <tasker@tasker.test>".into());
    config.mail.public_url = Some(SITE.into());
    config.mail.smtp_retry = Duration::from_millis(50);
    config.webhook_allowed_hosts = tasker::net::egress::AllowedHosts::parse("loopback").unwrap();
    config
}

struct Rig {
    smtp: SmtpServer,
    ntfy: Ntfy,
    server: TestServer,
    _tmp: tempfile::TempDir,
}

impl Rig {
    async fn start() -> Self {
        let smtp = SmtpServer::start().await;
        let ntfy = Ntfy::start().await;
        let tmp = tempfile::tempdir().unwrap();
        let server = TestServer::spawn_with(remind_config(tmp.path(), &smtp)).await;
        Self {
            smtp,
            ntfy,
            server,
            _tmp: tmp,
        }
    }

    async fn prefs(&self, who: &Account, body: Value) -> crate::common::Reply {
        self.server
            .call(
                reqwest::Method::PUT,
                "/api/users/me/preferences",
                Some(&who.token),
                Some(body),
            )
            .await
    }

    /// Someone reminded only at the due time, in Paris, by email and push.
    async fn person(&self, topic: &str) -> Account {
        let who = self.server.register().await;
        let reply = self
            .prefs(
                &who,
                json!({"time_zone": "Europe/Paris", "morning_hour": null, "at_due_time": true,
                       "ntfy_url": self.ntfy.topic(topic)}),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        who
    }

    async fn task_due(&self, who: &Account, title: &str, due: DateTime<Utc>) -> String {
        let task = new_task(
            &self.server,
            who,
            json!({"title": title, "due_date": stamp(due), "assignee_ids": [who.user_id]}),
        )
        .await;
        task["id"].as_str().unwrap().to_string()
    }

    async fn patch(&self, who: &Account, task: &str, body: Value) {
        let reply = self
            .server
            .call(
                reqwest::Method::PATCH,
                &format!("/api/tasks/{task}"),
                Some(&who.token),
                Some(body),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
}

/// `at` with milliseconds that are never zero, so it is a due time, never a whole day.
fn soon(seconds: i64) -> DateTime<Utc> {
    (Utc::now() + chrono::Duration::seconds(seconds)).trunc_subsecs(0)
        + chrono::Duration::milliseconds(250)
}

fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The messages of reminders, digests and notifications (they carry `List-Unsubscribe`;
/// account and invitation mail does not), once there are at least `n` of them.
async fn ours(smtp: &SmtpServer, n: usize) -> Vec<Received> {
    let mut total = 1;
    loop {
        let all = smtp.wait_for(total).await;
        total = all.len() + 1;
        let ours: Vec<Received> = all
            .into_iter()
            .filter(|m| m.header("List-Unsubscribe").is_some())
            .collect();
        if ours.len() >= n {
            return ours;
        }
    }
}

fn subjects(mail: &[Received]) -> Vec<String> {
    mail.iter().map(Received::subject).collect()
}

/// A task due in a few seconds produces exactly one reminder email and one push, at the due
/// time, showing the due date in the user's time zone, with the settings link and RFC 8058
/// one-click unsubscribe headers.
#[tokio::test]
async fn a_task_due_soon_sends_one_reminder_email_and_one_push() {
    let rig = Rig::start().await;
    let me = rig.person("mine").await;
    let due = soon(3);
    rig.task_due(&me, "Water the plants", due).await;

    let mail = ours(&rig.smtp, 1).await;
    let pushes = rig.ntfy.wait_for(1).await;
    assert!(Utc::now() >= due, "not before the due time");
    let letter = &mail[0];
    assert_eq!(
        letter.subject(),
        "Reminder: \"Water the plants\" is due now"
    );
    assert_eq!(letter.to, std::slice::from_ref(&me.email));
    let paris = due
        .with_timezone(&chrono_tz::Europe::Paris)
        .format("%H:%M")
        .to_string();
    let text = letter.text();
    assert!(text.contains(&format!("{paris} (Europe/Paris)")), "{text}");
    assert!(
        text.contains(&format!("{SITE}/settings/notifications")),
        "{text}"
    );
    assert!(text.contains(&format!("{SITE}/tasks/")), "{text}");
    let unsubscribe = letter.header("List-Unsubscribe").unwrap();
    assert!(
        unsubscribe.starts_with(&format!("<{SITE}/api/unsubscribe/")),
        "{unsubscribe}"
    );
    assert_eq!(
        letter.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    assert!(letter.html().contains("Water the plants"));
    let push = &pushes[0];
    assert_eq!(push["topic"], "mine");
    assert_eq!(push["title"], "\"Water the plants\" is due now");
    assert!(
        push["click"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{SITE}/tasks/"))
    );

    // A later control task: once its reminder is here, the first could have fired again.
    rig.task_due(&me, "Control", soon(2)).await;
    let mail = ours(&rig.smtp, 2).await;
    rig.ntfy.wait_for(2).await;
    assert_eq!(
        subjects(&mail),
        [
            "Reminder: \"Water the plants\" is due now",
            "Reminder: \"Control\" is due now"
        ]
    );
    assert_eq!(rig.ntfy.pushes().len(), 2);
}

/// A one-minute lead time on a task due a minute and some seconds ahead fires first.
#[tokio::test]
async fn a_lead_time_fires_before_the_due_time() {
    let rig = Rig::start().await;
    let me = rig.person("lead").await;
    let reply = rig
        .prefs(&me, json!({"lead_minutes": [1], "at_due_time": false}))
        .await;
    assert_eq!(reply.body["lead_minutes"], json!([1]));
    let due = soon(63);
    rig.task_due(&me, "Call the plumber", due).await;
    let mail = ours(&rig.smtp, 1).await;
    assert!(Utc::now() >= due - chrono::Duration::minutes(1));
    assert!(
        Utc::now() < due,
        "the lead reminder comes before the due time"
    );
    assert_eq!(
        mail[0].subject(),
        "Reminder: \"Call the plumber\" is due in 1 minute"
    );
}

/// Moving the due date moves the reminder; marking done, unassigning and deleting drop it.
#[tokio::test]
async fn changes_move_or_drop_reminders() {
    let rig = Rig::start().await;
    let me = rig.person("changes").await;
    let first = soon(4);
    let moved = rig.task_due(&me, "Moved away", first).await;
    let done = rig.task_due(&me, "Done early", first).await;
    let unassigned = rig.task_due(&me, "Handed off", first).await;
    let deleted = rig.task_due(&me, "Deleted", first).await;
    let later = rig.task_due(&me, "Moved later", soon(60 * 60)).await;

    rig.patch(&me, &moved, json!({"due_date": stamp(soon(60 * 60))}))
        .await;
    rig.patch(&me, &done, json!({"status": "done"})).await;
    rig.patch(&me, &unassigned, json!({"assignee_ids": []}))
        .await;
    let reply = rig
        .server
        .call(
            reqwest::Method::DELETE,
            &format!("/api/tasks/{deleted}"),
            Some(&me.token),
            None,
        )
        .await;
    assert_eq!(reply.status, 204);
    // Moved closer: it now fires after the dropped ones would have.
    let new_due = first + chrono::Duration::seconds(2);
    rig.patch(&me, &later, json!({"due_date": stamp(new_due)}))
        .await;

    let mail = ours(&rig.smtp, 1).await;
    rig.ntfy.wait_for(1).await;
    assert!(Utc::now() >= new_due);
    assert_eq!(subjects(&mail), ["Reminder: \"Moved later\" is due now"]);
    let paris = new_due
        .with_timezone(&chrono_tz::Europe::Paris)
        .format("%H:%M")
        .to_string();
    assert!(mail[0].text().contains(&paris));
    assert_eq!(rig.ntfy.pushes().len(), 1);
}

/// The one-click unsubscribe link (RFC 8058 POST, no login) turns reminder emails off; a GET
/// shows a page with a button and changes nothing; a forged token is a 404.
#[tokio::test]
async fn the_unsubscribe_link_turns_reminder_emails_off() {
    let rig = Rig::start().await;
    let me = rig.person("unsub").await;
    rig.task_due(&me, "First", soon(2)).await;
    let mail = ours(&rig.smtp, 1).await;
    let header = mail[0].header("List-Unsubscribe").unwrap();
    let link = header
        .trim_matches(|c| c == '<' || c == '>')
        .replace(SITE, &rig.server.base);

    let page = rig.server.client.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("due-date reminder emails")
    );
    let prefs = rig
        .server
        .get("/api/users/me/preferences", Some(&me.token))
        .await;
    assert_eq!(prefs.body["email_reminders"], true, "a GET changes nothing");

    let answer = rig
        .server
        .client
        .post(&link)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let prefs = rig
        .server
        .get("/api/users/me/preferences", Some(&me.token))
        .await;
    assert_eq!(prefs.body["email_reminders"], false);

    let forged = format!("{}x", link);
    let answer = rig.server.client.post(&forged).send().await.unwrap();
    assert_eq!(answer.status(), 404);

    // The next reminder is a push only.
    rig.task_due(&me, "Second", soon(2)).await;
    let pushes = rig.ntfy.wait_for(2).await;
    assert_eq!(pushes[1]["title"], "\"Second\" is due now");
    assert_eq!(ours(&rig.smtp, 1).await.len(), 1);
}

/// The digest at the chosen local time lists overdue tasks and tasks due today.
#[tokio::test]
async fn the_digest_lists_overdue_and_due_today() {
    let rig = Rig::start().await;
    let me = rig.server.register().await;
    let reply = rig
        .prefs(&me, json!({"morning_hour": null, "at_due_time": false}))
        .await;
    assert_eq!(reply.status, 200);
    rig.task_due(&me, "Overdue report", soon(-2 * 24 * 3600))
        .await;
    let done = rig.task_due(&me, "Already done", soon(-3600)).await;
    rig.patch(&me, &done, json!({"status": "done"})).await;
    // The next minute, in UTC (a digest time is an hour and a minute of the user's day).
    let next = (Utc::now() + chrono::Duration::seconds(75)).trunc_subsecs(0);
    let today_late = next
        .with_second(59)
        .unwrap()
        .with_nanosecond(250_000_000)
        .unwrap();
    rig.task_due(&me, "Due today", today_late).await;
    let reply = rig
        .prefs(
            &me,
            json!({"digest_hour": next.hour(), "digest_minute": next.minute()}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    // Pace the wait (the SMTP stand-in waits at most 30 s): until shortly before that minute.
    let fires = next.with_second(0).unwrap();
    let early = (fires - Utc::now() - chrono::Duration::seconds(5)).to_std();
    tokio::time::sleep(early.unwrap_or_default()).await;
    let mail = ours(&rig.smtp, 1).await;
    assert!(Utc::now() >= fires);
    let text = mail[0].text();
    assert!(
        mail[0].subject().starts_with("Your tasks for "),
        "{}",
        mail[0].subject()
    );
    assert!(
        mail[0].subject().ends_with("1 overdue, 1 due today"),
        "{}",
        mail[0].subject()
    );
    assert!(
        text.contains("Overdue report") && text.contains("Due today"),
        "{text}"
    );
    assert!(!text.contains("Already done"), "{text}");
    assert!(text.contains(&format!("{SITE}/settings/notifications")));
}

/// `email` for `task_assigned` sends an email (and a push) when someone assigns me.
#[tokio::test]
async fn an_assignment_set_to_email_sends_one() {
    let rig = Rig::start().await;
    let c = cast(&rig.server).await;
    let reply = rig
        .prefs(
            &c.assignee,
            json!({"kinds": {"task_assigned": "email"}, "morning_hour": null,
                   "ntfy_url": rig.ntfy.topic("assigned")}),
        )
        .await;
    assert_eq!(reply.body["kinds"]["task_assigned"], "email");
    assert_eq!(reply.body["kinds"]["comment_added"], "in_app");
    new_task(
        &rig.server,
        &c.creator,
        json!({"title": "Fix the boiler", "project_id": c.project,
               "assignee_ids": [c.assignee.user_id]}),
    )
    .await;
    let mail = ours(&rig.smtp, 1).await;
    assert_eq!(mail[0].to, std::slice::from_ref(&c.assignee.email));
    assert!(
        mail[0]
            .subject()
            .contains("assigned you to \"Fix the boiler\""),
        "{}",
        mail[0].subject()
    );
    assert!(mail[0].header("List-Unsubscribe").is_some());
    let pushes = rig.ntfy.wait_for(1).await;
    assert_eq!(pushes[0]["topic"], "assigned");
}

/// Bad input is a 422 naming each field; nothing is saved. A private ntfy URL is refused
/// unless the server allows it. Without a token: 401.
#[tokio::test]
async fn bad_preferences_are_refused_field_by_field() {
    let server = TestServer::spawn().await;
    let me = server.register().await;
    let put = |body: Value| {
        server.call(
            reqwest::Method::PUT,
            "/api/users/me/preferences",
            Some(&me.token),
            Some(body),
        )
    };
    let reply = put(json!({
        "time_zone": "Mars/Olympus", "morning_hour": 24, "digest_hour": -1,
        "lead_minutes": [0], "ntfy_url": "http://192.168.1.10/topic"
    }))
    .await;
    reply.problem(422, "validation_failed");
    let mut fields = reply.invalid_fields();
    fields.sort();
    assert_eq!(
        fields,
        [
            "digest_hour",
            "lead_minutes",
            "morning_hour",
            "ntfy_url",
            "time_zone"
        ]
    );
    let reply = put(json!({"ntfy_url": "http://127.0.0.1:9/topic"})).await;
    assert_eq!(reply.invalid_fields(), ["ntfy_url"]);
    let reply = put(json!({"ntfy_url": " "})).await;
    assert_eq!(
        reply.invalid_fields(),
        ["ntfy_url"],
        "null removes it, not an empty string"
    );
    let reply = put(json!({"kinds": {"task_assigned": "fax"}})).await;
    assert_eq!(reply.status, 422);
    let prefs = server
        .get("/api/users/me/preferences", Some(&me.token))
        .await;
    assert_eq!(prefs.body["time_zone"], "UTC");
    assert_eq!(prefs.body["morning_hour"], 8);
    assert_eq!(prefs.body["ntfy_url"], Value::Null);

    let reply =
        put(json!({"ntfy_url": "https://ntfy.sh/my-topic", "time_zone": "Asia/Kolkata"})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["ntfy_url"], "https://ntfy.sh/my-topic");

    let anonymous = server.get("/api/users/me/preferences", None).await;
    assert_eq!(anonymous.status, 401);
    let other = server.register().await;
    let push = server
        .call(
            reqwest::Method::POST,
            "/api/users/me/preferences/test-push",
            Some(&other.token),
            None,
        )
        .await;
    assert_eq!(push.invalid_fields(), ["ntfy_url"]);
}

/// A stranger to the team does not get a reminder of its task, even if listed as assignee
/// before leaving: a member removed from the team stops being reminded.
#[tokio::test]
async fn someone_who_left_the_team_is_not_reminded() {
    let rig = Rig::start().await;
    let c = cast(&rig.server).await;
    for who in [&c.assignee, &c.member] {
        let reply = rig
            .prefs(who, json!({"morning_hour": null, "at_due_time": true}))
            .await;
        assert_eq!(reply.status, 200);
    }
    let due = soon(4);
    new_task(
        &rig.server,
        &c.creator,
        json!({"title": "Team job", "project_id": c.project, "due_date": stamp(due),
               "assignee_ids": [c.assignee.user_id, c.member.user_id]}),
    )
    .await;
    let reply = rig
        .server
        .call(
            reqwest::Method::DELETE,
            &format!("/api/teams/{}/members/{}", c.team, c.member.user_id),
            Some(&c.owner.token),
            None,
        )
        .await;
    assert!(reply.status.is_success(), "{}", reply.body);
    let mail = ours(&rig.smtp, 1).await;
    // Then a later control reminder for the one still there.
    new_task(
        &rig.server,
        &c.creator,
        json!({"title": "Control", "project_id": c.project, "due_date": stamp(soon(2)),
               "assignee_ids": [c.assignee.user_id]}),
    )
    .await;
    let mail2 = ours(&rig.smtp, 2).await;
    assert_eq!(mail[0].to, std::slice::from_ref(&c.assignee.email));
    assert!(mail2.iter().all(|m| m.to == [c.assignee.email.clone()]));
}

/// A reminder scheduled before a `kill -9` fires after the restart of a real `tasker serve`,
/// even when its time passed while the server was down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reminder_survives_kill_9_and_fires_after_the_restart() {
    let smtp = SmtpServer::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let smtp_url = smtp.url();
    let args = |dir: &str| {
        vec![
            "serve".to_string(),
            "--data-dir".into(),
            dir.to_string(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--bcrypt-cost".into(),
            "4".into(),
            "--rate-limit".into(),
            "off".into(),
            "--smtp-url".into(),
            smtp_url.clone(),
            "--smtp-from".into(),
            "tasker@tasker.test".into(),
            "--public-url".into(),
            SITE.into(),
        ]
    };
    let dir = tmp.path().to_str().unwrap().to_string();
    let (mut child, base) = spawn_tasker(&args(&dir), tmp.path());
    let client = reqwest::Client::new();
    let reply: Value = client
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"email": "restart@example.com", "name": "Restart", "password": crate::common::PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = reply["token"].as_str().unwrap().to_string();
    let me = reply["user"]["id"].as_str().unwrap().to_string();
    let due = soon(3);
    let created = client
        .post(format!("{base}/api/tasks"))
        .bearer_auth(&token)
        .json(&json!({"title": "Survive", "due_date": stamp(due), "assignee_ids": [me]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    child.0.kill().unwrap();
    let _ = child.0.wait();
    // Down past the due time: the reminder is missed while down.
    let wait = (due - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(500);
    tokio::time::sleep(wait).await;
    assert!(
        smtp.messages()
            .iter()
            .all(|m| !m.subject().starts_with("Reminder"))
    );

    let (_child, _) = spawn_tasker(&args(&dir), tmp.path());
    let mail = ours(&smtp, 1).await;
    assert_eq!(mail[0].subject(), "Reminder: \"Survive\" is due now");
}

/// Starts `tasker serve` and returns it with its base URL (from its "listening" line).
/// A `tasker serve` child, killed and reaped when dropped.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_tasker(args: &[String], cwd: &std::path::Path) -> (Server, String) {
    use std::io::BufRead;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tasker"));
    command.current_dir(cwd).stdin(std::process::Stdio::null());
    for (key, _) in std::env::vars() {
        if key.starts_with("TASKER_") || ["PORT", "JWT_SECRET", "RUST_LOG"].contains(&key.as_str())
        {
            command.env_remove(key);
        }
    }
    let mut child = Server(
        command
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("tasker starts"),
    );
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("server reports that it listens");
        if line.contains("listening") {
            let address = line
                .split(|c: char| c.is_whitespace() || c == '"' || c == ',')
                .find_map(|w| {
                    w.strip_prefix("address=")
                        .or(Some(w))
                        .filter(|w| w.parse::<std::net::SocketAddr>().is_ok())
                })
                .unwrap_or_else(|| panic!("no address in {line}"))
                .to_string();
            return (child, format!("http://{address}"));
        }
    }
}
