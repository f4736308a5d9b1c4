//! Mail (issue 17): verification, password reset and invitation messages, received by a real
//! SMTP server on a TCP socket (`common::smtp`), the outbox's retries while that server
//! refuses or is down, nothing lost across `kill -9`, and `tasker email test`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tasker::Config;

use crate::common::smtp::{Mode, Received, SmtpServer};
use crate::common::{Account, PASSWORD, TestServer, test_config};

/// `--public-url` of the test servers: links in mail start with it.
pub const SITE: &str = "http://tasker.test";

/// A test server's configuration with mail through `smtp`, fast retries and metrics on.
pub fn mail_config(data_dir: &Path, smtp: &SmtpServer) -> Config {
    let mut config = test_config(data_dir);
    config.mail.smtp_url = Some(tasker::mail::SmtpUrl::parse(&smtp.url()).unwrap());
    config.mail.smtp_from = Some("Tasker <tasker@tasker.test>".into());
    config.mail.public_url = Some(SITE.into());
    config.mail.smtp_retry = Duration::from_millis(50);
    config.metrics = true;
    config
}

/// An SMTP server and a tasker that sends mail through it.
pub async fn mail_server() -> (SmtpServer, TestServer, tempfile::TempDir) {
    let smtp = SmtpServer::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::spawn_with(mail_config(tmp.path(), &smtp)).await;
    (smtp, server, tmp)
}

/// The value of metric `name` on /metrics.
async fn metric(server: &TestServer, name: &str) -> f64 {
    let text = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

/// Waits (at most 30 s) until metric `name` satisfies `done`.
async fn wait_metric(server: &TestServer, name: &str, done: impl Fn(f64) -> bool) {
    for _ in 0..600 {
        if done(metric(server, name).await) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name} never reached the expected value");
}

/// The messages sent to `to`.
fn to(messages: &[Received], to: &str) -> Vec<Received> {
    messages
        .iter()
        .filter(|m| m.to.iter().any(|t| t == to))
        .cloned()
        .collect()
}

async fn profile(server: &TestServer, who: &Account) -> Value {
    server
        .get("/api/auth/profile", Some(&who.token))
        .await
        .ok()
        .clone()
}

#[tokio::test]
async fn a_new_account_verifies_its_address_from_the_email() {
    let (smtp, server, _tmp) = mail_server().await;
    let ada = server.register_as("ada@example.com", "Ada").await;
    assert_eq!(profile(&server, &ada).await["verified"], false);

    let mail = smtp.wait_for(1).await.remove(0);
    assert_eq!(mail.to, ["ada@example.com"]);
    assert_eq!(mail.from, "tasker@tasker.test");
    assert_eq!(mail.subject(), "Confirm your email address for tasker");
    let message_id = mail.header("Message-ID").expect("a Message-ID");
    assert!(message_id.ends_with("@tasker.test>"), "{message_id}");
    let link = mail.link(&format!("{SITE}/verify?token="));
    assert!(mail.html().contains("Confirm my address"));
    assert!(mail.text().contains("expires in 48 hours"));
    assert!(
        !mail.text().contains(PASSWORD),
        "no secret of the account is mailed"
    );

    let token = mail.token(&format!("{SITE}/verify"));
    assert!(link.ends_with(&token));
    let verified = server
        .post("/api/auth/verify", None, json!({ "token": token }))
        .await;
    assert_eq!(verified.ok()["verified"], true);
    assert!(verified.ok()["email_verified_at"].is_string());
    assert_eq!(profile(&server, &ada).await["verified"], true);
    let me = server.get("/api/users/me", Some(&ada.token)).await;
    assert_eq!(me.ok()["verified"], true);

    // Single use, and a forged token is no better.
    server
        .post("/api/auth/verify", None, json!({ "token": token }))
        .await
        .problem(400, "invalid_link");
    let forged = format!("{}x", &token[..token.len() - 1]);
    server
        .post("/api/auth/verify", None, json!({ "token": forged }))
        .await
        .problem(400, "invalid_link");
    // Verified already: nothing to resend.
    server
        .post("/api/auth/verify/resend", Some(&ada.token), json!({}))
        .await
        .problem(400, "bad_request");
}

#[tokio::test]
async fn a_changed_address_is_verified_again_and_the_old_link_dies() {
    let (smtp, server, _tmp) = mail_server().await;
    let bob = server.register_as("bob@example.com", "Bob").await;
    let first = smtp.wait_for(1).await.remove(0);
    let old_token = first.token(&format!("{SITE}/verify"));

    let changed = server
        .call(
            reqwest::Method::PUT,
            "/api/auth/profile",
            Some(&bob.token),
            Some(json!({ "email": "bob@new.example", "current_password": PASSWORD })),
        )
        .await;
    assert_eq!(changed.ok()["email"], "bob@new.example");
    assert_eq!(changed.ok()["verified"], false);
    let messages = smtp.wait_for(2).await;
    let mail = to(&messages, "bob@new.example").remove(0);
    assert_eq!(mail.subject(), "Confirm your email address for tasker");
    server
        .post("/api/auth/verify", None, json!({ "token": old_token }))
        .await
        .problem(400, "invalid_link");
    let token = mail.token(&format!("{SITE}/verify"));
    server
        .post("/api/auth/verify", None, json!({ "token": token }))
        .await
        .ok();
    assert_eq!(profile(&server, &bob).await["verified"], true);

    // A rename sends nothing and keeps the address verified.
    server
        .call(
            reqwest::Method::PUT,
            "/api/auth/profile",
            Some(&bob.token),
            Some(json!({ "name": "Robert" })),
        )
        .await
        .ok();
    assert_eq!(profile(&server, &bob).await["verified"], true);
    let resend = server
        .post("/api/auth/verify/resend", Some(&bob.token), json!({}))
        .await;
    resend.problem(400, "bad_request");
    assert_eq!(smtp.messages().len(), 2);
}

#[tokio::test]
async fn a_forgotten_password_is_reset_from_the_email_once() {
    let (smtp, server, _tmp) = mail_server().await;
    let cy = server.register_as("cy@example.com", "Cy").await;
    let other_device = server.login_ok("cy@example.com").await;
    smtp.wait_for(1).await;

    let answer = server
        .post(
            "/api/auth/password/forgot",
            None,
            json!({ "email": "CY@example.com" }),
        )
        .await;
    assert_eq!(answer.status, 202);
    assert!(
        answer.body["message"]
            .as_str()
            .unwrap()
            .contains("If an account has this address")
    );
    let messages = smtp.wait_for(2).await;
    let mail = messages[1].clone();
    assert_eq!(mail.to, ["cy@example.com"]);
    assert_eq!(mail.subject(), "Reset your tasker password");
    assert!(mail.text().contains("expires in 1 hour"));
    let token = mail.token(&format!("{SITE}/reset-password"));

    // A bad password is refused and the link still works afterwards.
    server
        .post(
            "/api/auth/password/reset",
            None,
            json!({ "token": token, "password": "short" }),
        )
        .await
        .problem(422, "validation_failed");
    let reset = server
        .post(
            "/api/auth/password/reset",
            None,
            json!({ "token": token, "password": "a brand new password" }),
        )
        .await;
    assert_eq!(reset.status, 204, "{}", reset.body);
    server.assert_signed_out(&cy).await;
    server.assert_signed_out(&other_device).await;
    assert_eq!(server.login("cy@example.com", PASSWORD).await.status, 401);
    let back = server
        .post(
            "/api/auth/login",
            None,
            json!({ "email": "cy@example.com", "password": "a brand new password" }),
        )
        .await;
    assert_eq!(
        back.ok()["user"]["verified"],
        true,
        "the link proved the address"
    );

    // Single use.
    server
        .post(
            "/api/auth/password/reset",
            None,
            json!({ "token": token, "password": "yet another password" }),
        )
        .await
        .problem(400, "invalid_link");
    // A verification link is no reset link, and an altered expiry breaks the signature.
    let verify_token = messages[0].token(&format!("{SITE}/verify"));
    server
        .post(
            "/api/auth/password/reset",
            None,
            json!({ "token": verify_token, "password": "yet another password" }),
        )
        .await
        .problem(400, "invalid_link");
    let parts: Vec<&str> = token.split('.').collect();
    let later: i64 = parts[2].parse::<i64>().unwrap() + 86_400;
    let extended = format!(
        "{}.{}.{later}.{}.{}",
        parts[0], parts[1], parts[3], parts[4]
    );
    server
        .post(
            "/api/auth/password/reset",
            None,
            json!({ "token": extended, "password": "yet another password" }),
        )
        .await
        .problem(400, "invalid_link");
}

#[tokio::test]
async fn forgot_for_an_unknown_address_answers_the_same_and_sends_nothing() {
    let (smtp, server, _tmp) = mail_server().await;
    server.register_as("dee@example.com", "Dee").await;
    smtp.wait_for(1).await;
    let unknown = server
        .post(
            "/api/auth/password/forgot",
            None,
            json!({ "email": "nobody@example.com" }),
        )
        .await;
    let known = server
        .post(
            "/api/auth/password/forgot",
            None,
            json!({ "email": "dee@example.com" }),
        )
        .await;
    assert_eq!((unknown.status.as_u16(), known.status.as_u16()), (202, 202));
    assert_eq!(unknown.body, known.body, "the same answer either way");
    let messages = smtp.wait_for(2).await;
    wait_metric(&server, "tasker_outbox_queued", |n| n == 0.0).await;
    let messages = if messages.len() > 2 {
        smtp.messages()
    } else {
        messages
    };
    assert_eq!(
        messages.len(),
        2,
        "the registration's and one reset message"
    );
    assert!(to(&messages, "nobody@example.com").is_empty());
    // A malformed address is a 422, not a secret.
    server
        .post(
            "/api/auth/password/forgot",
            None,
            json!({ "email": "not an address" }),
        )
        .await
        .problem(422, "validation_failed");
}

#[tokio::test]
async fn an_invitation_is_mailed_with_a_working_accept_link() {
    let (smtp, server, _tmp) = mail_server().await;
    let owner = server.register_as("owner@example.com", "Olive").await;
    let team = server.create_team(&owner, "Rocket & Co").await;
    smtp.wait_for(1).await;
    server
        .invite(&team, &owner, "guest@example.com", "member")
        .await;
    let messages = smtp.wait_for(2).await;
    let mail = to(&messages, "guest@example.com").remove(0);
    assert_eq!(
        mail.subject(),
        "Olive invited you to the team Rocket & Co on tasker"
    );
    assert!(mail.html().contains("Rocket &#38; Co") || mail.html().contains("Rocket &amp; Co"));
    let token = mail.token(&format!("{SITE}/invitations/accept"));

    let guest = server.register_as("guest@example.com", "Gus").await;
    server.with_token("accept", &guest, &token).await.ok();
    let members = server
        .get(&format!("/api/teams/{team}/members"), Some(&guest.token))
        .await;
    assert_eq!(members.status, 200, "the guest is a member");
}

#[tokio::test]
async fn an_unverified_account_cannot_claim_an_invitation_by_its_address() {
    let (smtp, server, _tmp) = mail_server().await;
    let owner = server.register_as("own@example.com", "Own").await;
    let team = server.create_team(&owner, "Secret team").await;
    server
        .invite(&team, &owner, "eve@example.com", "member")
        .await;
    let eve = server.register_as("eve@example.com", "Eve").await;
    let listed = server.get("/api/invitations", Some(&eve.token)).await;
    assert_eq!(
        listed.ok()["items"].as_array().unwrap().len(),
        0,
        "an unverified address opens nothing"
    );
    let messages = smtp.wait_for(3).await;
    let verify = to(&messages, "eve@example.com")
        .into_iter()
        .find(|m| m.subject().starts_with("Confirm"))
        .unwrap();
    server
        .post(
            "/api/auth/verify",
            None,
            json!({ "token": verify.token(&format!("{SITE}/verify")) }),
        )
        .await
        .ok();
    let listed = server.get("/api/invitations", Some(&eve.token)).await;
    let items = listed.ok()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1, "a verified address sees its invitation");
    let id = items[0]["id"].as_str().unwrap();
    server
        .post(
            &format!("/api/invitations/{id}/accept"),
            Some(&eve.token),
            json!({}),
        )
        .await
        .ok();
}

#[tokio::test]
async fn mail_is_retried_while_the_server_refuses_or_is_down_then_sent_once() {
    let (mut smtp, server, _tmp) = mail_server().await;
    smtp.set_mode(Mode::TempFail);
    let started = std::time::Instant::now();
    server.register_as("fay@example.com", "Fay").await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a failing SMTP server does not hold up the API"
    );
    smtp.wait_refused(2).await;
    // Down: the port is closed.
    smtp.stop().await;
    let failed = metric(&server, "tasker_outbox_failed_tries").await;
    wait_metric(&server, "tasker_outbox_failed_tries", |n| n > failed).await;
    assert_eq!(metric(&server, "tasker_outbox_queued").await, 1.0);
    smtp.set_mode(Mode::Accept);
    smtp.restart().await;
    let messages = smtp.wait_for(1).await;
    wait_metric(&server, "tasker_outbox_queued", |n| n == 0.0).await;
    assert_eq!(smtp.messages().len(), 1, "sent exactly once");
    assert_eq!(messages[0].to, ["fay@example.com"]);
    assert_eq!(metric(&server, "tasker_outbox_failed").await, 0.0);
}

#[tokio::test]
async fn a_permanent_refusal_is_given_up_on_and_counted() {
    let (smtp, server, _tmp) = mail_server().await;
    smtp.set_mode(Mode::Reject);
    server.register_as("gil@example.com", "Gil").await;
    smtp.wait_refused(1).await;
    wait_metric(&server, "tasker_outbox_failed", |n| n == 1.0).await;
    assert_eq!(metric(&server, "tasker_outbox_queued").await, 0.0);
}

#[tokio::test]
async fn without_smtp_everything_works_and_mail_features_say_so() {
    let server = TestServer::spawn().await;
    let hal = server.register_as("hal@example.com", "Hal").await;
    assert_eq!(profile(&server, &hal).await["verified"], false);
    server
        .post("/api/auth/verify/resend", Some(&hal.token), json!({}))
        .await
        .problem(503, "mail_not_configured");
    server
        .post(
            "/api/auth/password/forgot",
            None,
            json!({ "email": "hal@example.com" }),
        )
        .await
        .problem(503, "mail_not_configured");
    // Invitations keep their link.
    let team = server.create_team(&hal, "Solo").await;
    let invite = server
        .invite(&team, &hal, "ida@example.com", "member")
        .await;
    assert!(invite["token"].is_string(), "{invite}");
}

// --- the real binary ---

const BIN: &str = env!("CARGO_BIN_EXE_tasker");

/// `tasker serve` with `args`, killed on drop.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(data_dir: &Path, args: &[&str]) -> (Child, SocketAddr) {
    let mut child = Child(
        Command::new(BIN)
            .current_dir(data_dir)
            .env_clear()
            .env("LOG_LEVEL", "info")
            .args(["serve", "--listen", "127.0.0.1:0", "--bcrypt-cost", "4"])
            .args(["--rate-limit", "off", "--metrics"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tasker starts"),
    );
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the server says it listens");
        if line.contains("listening") {
            let address = line
                .split(|c: char| c.is_whitespace() || c == '"' || c == ',')
                .find_map(|word| word.strip_prefix("address=")?.parse().ok())
                .unwrap_or_else(|| panic!("no address in {line:?}"));
            return (child, address);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_mail_survives_kill_9() {
    let mut smtp = SmtpServer::start().await;
    smtp.stop().await;
    let tmp = tempfile::tempdir().unwrap();
    let url = smtp.url();
    let args = [
        "--smtp-url",
        url.as_str(),
        "--smtp-from",
        "tasker@tasker.test",
        "--public-url",
        SITE,
        "--smtp-retry",
        "100ms",
    ];
    let (mut first, address) = serve(tmp.path(), &args);
    let client = reqwest::Client::new();
    let base = format!("http://{address}");
    for name in ["ivy", "jon", "kim"] {
        let registered = client
            .post(format!("{base}/api/auth/register"))
            .json(&json!({
                "email": format!("{name}@example.com"),
                "name": name,
                "password": PASSWORD,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(registered.status(), 201, "registered while mail is down");
    }
    first.0.kill().unwrap();
    let _ = first.0.wait();

    smtp.restart().await;
    let (_second, address) = serve(tmp.path(), &args);
    let messages = smtp.wait_for(3).await;
    let mut recipients: Vec<String> = messages.iter().flat_map(|m| m.to.clone()).collect();
    recipients.sort();
    assert_eq!(
        recipients,
        ["ivy@example.com", "jon@example.com", "kim@example.com"]
    );
    // Nothing left queued, nothing sent twice.
    let scrape = || async {
        client
            .get(format!("http://{address}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    for _ in 0..600 {
        if scrape()
            .await
            .lines()
            .any(|l| l == "tasker_outbox_queued 0")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        scrape()
            .await
            .lines()
            .any(|l| l == "tasker_outbox_queued 0")
    );
    assert_eq!(smtp.messages().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_test_sends_one_message_and_prints_the_answer() {
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    let run = |to: &'static str, url: String| {
        tokio::task::spawn_blocking(move || {
            Command::new(BIN)
                .env_clear()
                .args(["email", "test", "--to", to, "--smtp-url", &url])
                .args(["--smtp-from", "Tasker <tasker@tasker.test>"])
                .output()
                .unwrap()
        })
    };
    let sent = run("ops@example.com", url.clone()).await.unwrap();
    let stdout = String::from_utf8_lossy(&sent.stdout);
    assert!(
        sent.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&sent.stderr)
    );
    assert!(stdout.contains("250 2.0.0 queued as TEST1"), "{stdout}");
    let mail = smtp.wait_for(1).await.remove(0);
    assert_eq!(mail.to, ["ops@example.com"]);
    assert_eq!(mail.subject(), "tasker test message");

    smtp.set_mode(Mode::Reject);
    let refused = run("ops@example.com", url).await.unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("550"), "{stderr}");

    let missing = run("ops@example.com", String::new()).await.unwrap();
    assert_eq!(missing.status.code(), Some(2));
}
