//! Running it for real: registration modes, rate limits, CORS, request ids and metrics.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use tasker::Config;
use tasker::config::{Limit, RateLimits, Registration, TrustedProxies};
use tempfile::TempDir;

use crate::common::{PASSWORD, Reply, TestServer, test_config};

/// A server with the test configuration changed by `change`; keep the `TempDir` alive.
async fn spawn(change: impl FnOnce(&mut Config)) -> (TestServer, TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let server = spawn_in(&tmp, change).await;
    (server, tmp)
}

async fn spawn_in(tmp: &TempDir, change: impl FnOnce(&mut Config)) -> TestServer {
    let mut config = test_config(tmp.path());
    change(&mut config);
    TestServer::spawn_with(config).await
}

async fn register(server: &TestServer, email: &str) -> Reply {
    server
        .post(
            "/api/auth/register",
            None,
            json!({"email": email, "name": "New", "password": PASSWORD}),
        )
        .await
}

/// A login attempt (wrong password) from `forwarded_for`, if given.
async fn login_from(server: &TestServer, email: &str, forwarded_for: Option<&str>) -> Reply {
    let mut request = server
        .client
        .post(server.url("/api/auth/login"))
        .json(&json!({"email": email, "password": "wrong password"}));
    if let Some(ip) = forwarded_for {
        request = request.header("x-forwarded-for", format!("203.0.113.9, {ip}"));
    }
    TestServer::reply(request.send().await.unwrap()).await
}

fn retry_after(reply: &Reply) -> u64 {
    reply.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

// --- registration modes ---

#[tokio::test]
async fn open_registration_is_the_default() {
    assert_eq!(Config::new("x").registration, Registration::Open);
    let server = TestServer::spawn().await;
    register(&server, "anyone@example.com").await.ok();
}

#[tokio::test]
async fn invite_only_registration_needs_a_pending_invitation() {
    let tmp = tempfile::tempdir().unwrap();
    // Set up the inviting team while registration is open.
    let server = spawn_in(&tmp, |_| {}).await;
    let owner = server.register().await;
    let team = server.create_team(&owner, "Crew").await;
    let mut tokens = Vec::new();
    for email in ["invited@example.com", "revoked@example.com"] {
        let invite = server.invite(&team, &owner, email, "member").await;
        tokens.push((
            invite["id"].as_str().unwrap().to_string(),
            invite["token"].as_str().unwrap().to_string(),
        ));
    }
    let revoke = format!("/api/invitations/{}", tokens[1].0);
    server
        .call(Method::DELETE, &revoke, Some(&owner.token), None)
        .await
        .ok();
    server.stop().await;

    let server = spawn_in(&tmp, |c| c.registration = Registration::InviteOnly).await;
    let with_token = |email: &str, token: &str| {
        let body = json!({"email": email, "name": "New", "password": PASSWORD,
            "invitation_token": token});
        let server = &server;
        async move { server.post("/api/auth/register", None, body).await }
    };
    register(&server, "stranger@example.com")
        .await
        .problem(403, "invitation_required");
    // The invited address alone is not enough: anyone can type it.
    register(&server, "invited@example.com")
        .await
        .problem(403, "invitation_required");
    with_token("revoked@example.com", &tokens[1].1)
        .await
        .problem(403, "invitation_required");
    let real = &tokens[0].1;
    let last = if real.ends_with('0') { "1" } else { "0" };
    let forged = format!("{}{last}", &real[..real.len() - 1]);
    with_token("invited@example.com", &forged)
        .await
        .problem(403, "invitation_required");
    let created = with_token("Invited@Example.com", &tokens[0].1).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    // The new account claimed the invitation: it is listed, and the token registers no one else.
    let token = created.body["token"].as_str().unwrap();
    let pending = server.get("/api/invitations", Some(token)).await;
    assert_eq!(pending.ok()["items"].as_array().unwrap().len(), 1);
    with_token("second@example.com", &tokens[0].1)
        .await
        .problem(403, "invitation_required");
    // Existing accounts still sign in.
    server.login_ok(&owner.email).await;
}

#[tokio::test]
async fn closed_registration_refuses_everyone() {
    let tmp = tempfile::tempdir().unwrap();
    let server = spawn_in(&tmp, |_| {}).await;
    let owner = server.register().await;
    server.stop().await;

    let server = spawn_in(&tmp, |c| c.registration = Registration::Closed).await;
    let refused = register(&server, "someone@example.com").await;
    let body = refused.problem(403, "registration_closed");
    assert!(body["detail"].as_str().unwrap().contains("closed"));
    server.login_ok(&owner.email).await;
}

// --- rate limits ---

#[tokio::test]
async fn sign_in_burst_then_429_with_retry_after() {
    let (server, _tmp) = spawn(|c| c.rate_limits = Some(RateLimits::default())).await;
    let burst = RateLimits::default().auth_per_ip.burst;
    for i in 0..burst {
        // A different account each time: only the per-address limit is in play.
        login_from(&server, &format!("nobody{i}@example.com"), None)
            .await
            .problem(401, "invalid_credentials");
    }
    let limited = login_from(&server, "nobody-else@example.com", None).await;
    limited.problem(429, "rate_limited");
    let wait = retry_after(&limited);
    assert!((1..=6).contains(&wait), "Retry-After {wait}");
    // Registration shares the limit; other requests do not.
    register(&server, "new@example.com")
        .await
        .problem(429, "rate_limited");
    server.get("/api/health", None).await.ok();
}

#[tokio::test]
async fn per_account_limit_holds_across_addresses_behind_a_trusted_proxy() {
    // The default trusted proxies are loopback: the test client is a trusted proxy.
    let (server, _tmp) = spawn(|c| c.rate_limits = Some(RateLimits::default())).await;
    let burst = RateLimits::default().auth_per_account.burst;
    for i in 0..burst {
        login_from(&server, "target@example.com", Some(&format!("10.0.0.{i}")))
            .await
            .problem(401, "invalid_credentials");
    }
    // A fresh address, the same account (in another case): limited.
    let limited = login_from(&server, "TARGET@example.com", Some("10.0.1.1")).await;
    limited.problem(429, "rate_limited");
    assert!(retry_after(&limited) >= 1);
    assert!(limited.body["detail"].as_str().unwrap().contains("account"));
    // Another account from a fresh address is not.
    login_from(&server, "other@example.com", Some("10.0.1.2"))
        .await
        .problem(401, "invalid_credentials");
}

/// Sessions record the client's address as the limits see it: behind a trusted proxy, the
/// last `X-Forwarded-For` entry; otherwise the socket's.
#[tokio::test]
async fn sessions_record_the_forwarded_address_only_behind_a_trusted_proxy() {
    for (trust, expected) in [(true, "198.51.100.4"), (false, "127.0.0.1")] {
        let (server, _tmp) = spawn(|c| {
            if !trust {
                c.trusted_proxies = TrustedProxies::none();
            }
        })
        .await;
        register(&server, "roaming@example.com").await.ok();
        let login = server
            .client
            .post(server.url("/api/auth/login"))
            .header("x-forwarded-for", "203.0.113.9, 198.51.100.4")
            .json(&json!({"email": "roaming@example.com", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        let login = TestServer::reply(login).await;
        let token = login.ok()["token"].as_str().unwrap().to_string();
        let sessions = server.get("/api/auth/sessions", Some(&token)).await;
        let ips: Vec<&str> = sessions.ok()["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["ip"].as_str())
            .collect();
        assert!(ips.contains(&expected), "trust {trust}: {ips:?}");
        if !trust {
            assert!(!ips.contains(&"198.51.100.4"), "{ips:?}");
        }
    }
}

#[tokio::test]
async fn forwarded_for_is_ignored_from_an_untrusted_peer() {
    let (server, _tmp) = spawn(|c| {
        c.rate_limits = Some(RateLimits::default());
        // The test client (127.0.0.1) is not one of these.
        c.trusted_proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
    })
    .await;
    let burst = RateLimits::default().auth_per_ip.burst;
    for i in 0..burst {
        login_from(
            &server,
            &format!("n{i}@example.com"),
            Some(&format!("10.0.0.{i}")),
        )
        .await
        .problem(401, "invalid_credentials");
    }
    // Every attempt counted against the socket's address, whatever the header said.
    login_from(&server, "last@example.com", Some("10.0.9.9"))
        .await
        .problem(429, "rate_limited");
}

// --- duplicate JSON keys, password checks ---

/// A login with `email` twice: a decoy for the limiter, the victim for the handler (which
/// keeps the last). Refused outright, so the per-account limit cannot be sidestepped.
#[tokio::test]
async fn a_duplicate_email_cannot_sidestep_the_per_account_limit() {
    let (server, _tmp) = spawn(|c| c.rate_limits = Some(RateLimits::default())).await;
    register(&server, "victim@example.com").await.ok();
    // Registering counted once.
    let burst = RateLimits::default().auth_per_account.burst;
    for i in 1..burst {
        login_from(&server, "victim@example.com", Some(&format!("10.0.0.{i}")))
            .await
            .problem(401, "invalid_credentials");
    }
    let twice = format!(
        r#"{{"email":"decoy-{}@example.com","email":"victim@example.com","password":"{PASSWORD}"}}"#,
        uuid::Uuid::now_v7().simple()
    );
    let refused = server
        .client
        .post(server.url("/api/auth/login"))
        .header("x-forwarded-for", "10.0.1.1")
        .header("content-type", "application/json")
        .body(twice)
        .send()
        .await
        .unwrap();
    let refused = TestServer::reply(refused).await;
    let body = refused.problem(422, "validation_failed");
    assert_eq!(refused.invalid_fields(), ["email"], "{body}");
    assert!(body["detail"].as_str().unwrap().contains("email"), "{body}");
    // The account is still limited, even with the right password.
    let right = server
        .client
        .post(server.url("/api/auth/login"))
        .header("x-forwarded-for", "10.0.1.2")
        .json(&json!({"email": "victim@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    TestServer::reply(right).await.problem(429, "rate_limited");
}

/// A key twice in a nested object of a task creation: 422 naming its path, nothing written.
#[tokio::test]
async fn duplicate_keys_anywhere_in_a_json_body_are_refused() {
    let server = TestServer::spawn().await;
    let owner = server.register().await;
    let team = server.create_team(&owner, "Keys").await;
    let project = server
        .post(
            "/api/projects",
            Some(&owner.token),
            json!({"team_id": team, "name": "Keys"}),
        )
        .await;
    let project = project.ok()["id"].as_str().unwrap().to_string();
    let bodies = [
        (
            format!(r#"{{"project_id":"{project}","title":"first","title":"second"}}"#),
            "title",
        ),
        (
            format!(
                r#"{{"project_id":"{project}","title":"t","extra":{{"list":[{{"a":1,"a":2}}]}}}}"#
            ),
            "extra.list[0].a",
        ),
    ];
    for (body, path) in bodies {
        let reply = server
            .raw(
                Method::POST,
                "/api/tasks",
                Some(&owner.token),
                "application/json; charset=utf-8",
                body,
            )
            .await;
        reply.problem(422, "validation_failed");
        assert_eq!(reply.invalid_fields(), [path]);
    }
    let tasks = server.get("/api/tasks?scope=all", Some(&owner.token)).await;
    assert_eq!(tasks.ok()["items"].as_array().unwrap().len(), 0);
    // The same keys in different objects are no duplicate: only the unknown field is named.
    let fine = format!(r#"{{"project_id":"{project}","title":"t","extra":{{"title":1}}}}"#);
    let reply = server
        .raw(
            Method::POST,
            "/api/tasks",
            Some(&owner.token),
            "application/json",
            fine,
        )
        .await;
    assert_eq!(reply.invalid_fields(), ["extra"]);
}

/// Guessing the current password on a profile change counts against the account's login
/// limit: the 11th guess in a row is refused before it is checked.
#[tokio::test]
async fn current_password_guesses_count_against_the_account() {
    let (server, _tmp) = spawn(|c| c.rate_limits = Some(RateLimits::default())).await;
    let account = server.register().await;
    // Registering counted once; alternate the two routes that check the password.
    let burst = RateLimits::default().auth_per_account.burst;
    for i in 1..burst {
        let (method, path) = if i % 2 == 0 {
            (Method::PUT, "/api/auth/profile")
        } else {
            (Method::PATCH, "/api/users/me")
        };
        let body = json!({"password": "a new password", "current_password": format!("guess {i}")});
        let reply = server
            .call(method, path, Some(&account.token), Some(body))
            .await;
        reply.problem(422, "validation_failed");
        assert_eq!(reply.invalid_fields(), ["current_password"]);
    }
    let body = json!({"password": "a new password", "current_password": "guess 11"});
    let limited = server
        .call(
            Method::PUT,
            "/api/auth/profile",
            Some(&account.token),
            Some(body),
        )
        .await;
    limited.problem(429, "rate_limited");
    assert!(retry_after(&limited) >= 1);
    // A change that checks no password is not limited; a login is (the same bucket).
    server
        .call(
            Method::PUT,
            "/api/auth/profile",
            Some(&account.token),
            Some(json!({"name": "Still me"})),
        )
        .await
        .ok();
    server
        .login(&account.email, PASSWORD)
        .await
        .problem(429, "rate_limited");
}

/// The web app's password form counts the same way.
#[tokio::test]
async fn web_current_password_guesses_count_against_the_account() {
    let (server, _tmp) = spawn(|c| c.rate_limits = Some(RateLimits::default())).await;
    let mut web = crate::common::web::WebClient::new(&server);
    web.register("Guesser").await;
    web.get("/profile").await;
    let burst = RateLimits::default().auth_per_account.burst;
    for i in 1..burst {
        let guess = format!("guess {i}");
        let page = web
            .post(
                "/profile/password",
                &[
                    ("current_password", &guess),
                    ("password", "a new password"),
                    ("confirm", "a new password"),
                ],
            )
            .await;
        assert_ne!(page.status, StatusCode::TOO_MANY_REQUESTS, "attempt {i}");
        assert!(
            page.status.is_client_error(),
            "attempt {i}: {}",
            page.status
        );
    }
    let page = web
        .post(
            "/profile/password",
            &[
                ("current_password", "guess 11"),
                ("password", "a new password"),
                ("confirm", "a new password"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "{}", page.html);
}

// --- WebSocket upgrades ---

/// Opens the feed as `token` from `forwarded_for`: `Ok` on 101, else the refusal's status,
/// `Retry-After` and body.
async fn upgrade(
    server: &TestServer,
    token: &str,
    forwarded_for: &str,
) -> Result<(), (u16, Option<String>, String)> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!(
        "{}/api/ws?token={token}",
        server.url("").replacen("http", "ws", 1)
    );
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("x-forwarded-for", forwarded_for.parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => Ok(()),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err((
            response.status().as_u16(),
            response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string()),
            String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).into_owned(),
        )),
        Err(other) => panic!("upgrade failed: {other}"),
    }
}

/// WebSocket limits that refill too slowly to matter during a test (the defaults' refill of
/// 10/s and 1/s would make the counts depend on the machine's speed).
fn ws_limits(per_ip: u32, per_account: u32) -> RateLimits {
    let hour = Duration::from_secs(3600);
    RateLimits {
        ws_per_ip: Limit {
            burst: per_ip,
            period: hour,
        },
        ws_per_account: Limit {
            burst: per_account,
            period: hour,
        },
        ..RateLimits::default()
    }
}

#[tokio::test]
async fn websocket_upgrades_are_limited_per_address() {
    let limits = ws_limits(12, 5);
    let (server, _tmp) = spawn(|c| c.rate_limits = Some(limits)).await;
    // Enough accounts that none reaches its own limit first.
    let mut accounts = Vec::new();
    for _ in 0..3 {
        accounts.push(server.register().await);
    }
    for i in 0..limits.ws_per_ip.burst as usize {
        let account = &accounts[i % accounts.len()];
        upgrade(&server, &account.token, "198.51.100.1")
            .await
            .unwrap_or_else(|e| panic!("upgrade {i}: {e:?}"));
    }
    // An unauthenticated attempt counts too, and is refused before anything else.
    let (status, retry, body) = upgrade(&server, "not-a-token", "198.51.100.1")
        .await
        .unwrap_err();
    assert_eq!(status, 429, "{body}");
    assert!(retry.is_some_and(|s| s.parse::<u64>().unwrap() >= 1));
    assert!(
        body.contains("rate_limited") && body.contains("address"),
        "{body}"
    );
    let (status, _, _) = upgrade(&server, &accounts[0].token, "198.51.100.1")
        .await
        .unwrap_err();
    assert_eq!(status, 429);
    // Another client behind the same proxy, another account: unaffected.
    let other = server.register().await;
    upgrade(&server, &other.token, "198.51.100.2")
        .await
        .unwrap();
}

#[tokio::test]
async fn websocket_upgrades_are_limited_per_account() {
    let limits = ws_limits(100, 5);
    let (server, _tmp) = spawn(|c| c.rate_limits = Some(limits)).await;
    let (busy, other) = (server.register().await, server.register().await);
    for i in 0..limits.ws_per_account.burst {
        upgrade(&server, &busy.token, &format!("198.51.100.{i}"))
            .await
            .unwrap_or_else(|e| panic!("upgrade {i}: {e:?}"));
    }
    let (status, _, body) = upgrade(&server, &busy.token, "203.0.113.1")
        .await
        .unwrap_err();
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("account"), "{body}");
    upgrade(&server, &other.token, "203.0.113.2").await.unwrap();
}

#[tokio::test]
async fn general_limit_applies_to_every_request() {
    let (server, _tmp) = spawn(|c| {
        c.rate_limits = Some(RateLimits {
            per_ip: Limit {
                burst: 5,
                period: Duration::from_secs(60),
            },
            ..RateLimits::default()
        })
    })
    .await;
    for _ in 0..5 {
        server.get("/api/health", None).await.ok();
    }
    let limited = server.get("/api/tasks", None).await;
    limited.problem(429, "rate_limited");
    assert!((1..=60).contains(&retry_after(&limited)));
    assert!(limited.headers.contains_key("x-request-id"));
}

#[tokio::test]
async fn rate_limits_off_never_answer_429() {
    let (server, _tmp) = spawn(|c| c.rate_limits = None).await;
    for _ in 0..30 {
        login_from(&server, "same@example.com", None)
            .await
            .problem(401, "invalid_credentials");
    }
}

// --- CORS ---

const ORIGIN: &str = "https://tasks.example.com";

async fn preflight(server: &TestServer, origin: &str) -> reqwest::Response {
    server
        .client
        .request(Method::OPTIONS, server.url("/api/tasks"))
        .header("origin", origin)
        .header("access-control-request-method", "PATCH")
        .header("access-control-request-headers", "authorization, if-match")
        .send()
        .await
        .unwrap()
}

fn cors_headers(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .keys()
        .map(|k| k.as_str().to_string())
        .filter(|k| k.starts_with("access-control-"))
        .collect()
}

#[tokio::test]
async fn allowed_origin_preflight_is_granted() {
    let (server, _tmp) = spawn(|c| c.cors_origins = vec![ORIGIN.into()]).await;
    let response = preflight(&server, ORIGIN).await;
    assert!(response.status().is_success(), "{}", response.status());
    let headers = response.headers();
    assert_eq!(headers["access-control-allow-origin"], ORIGIN);
    assert!(
        headers["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("PATCH")
    );
    let allowed = headers["access-control-allow-headers"].to_str().unwrap();
    for name in [
        "Authorization",
        "If-Match",
        "Idempotency-Key",
        "X-Request-Id",
    ] {
        assert!(allowed.contains(name), "{allowed}");
    }
    assert_eq!(headers["access-control-max-age"], "600");
    assert!(
        headers
            .get_all("vary")
            .iter()
            .any(|v| v.to_str().unwrap().contains("Origin"))
    );
    assert!(!headers.contains_key("access-control-allow-credentials"));
}

#[tokio::test]
async fn other_origin_preflight_is_not_granted() {
    let (server, _tmp) = spawn(|c| c.cors_origins = vec![ORIGIN.into()]).await;
    let response = preflight(&server, "https://evil.example.com").await;
    assert!(!response.status().is_success(), "{}", response.status());
    assert_eq!(cors_headers(&response), Vec::<String>::new());
}

#[tokio::test]
async fn simple_requests_get_cors_headers_for_allowed_origins_only() {
    let (server, _tmp) = spawn(|c| c.cors_origins = vec![ORIGIN.into()]).await;
    let get = |origin: &'static str| {
        server
            .client
            .get(server.url("/api/health"))
            .header("origin", origin)
            .send()
    };
    let allowed = get(ORIGIN).await.unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(allowed.headers()["access-control-allow-origin"], ORIGIN);
    let exposed = allowed.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    for name in ["ETag", "Retry-After", "X-Request-Id", "Location"] {
        assert!(exposed.contains(name), "{exposed}");
    }
    // Another origin (or a same-origin request carrying `Origin`) is served, without grants.
    let other = get("https://evil.example.com").await.unwrap();
    assert_eq!(other.status(), 200);
    assert_eq!(cors_headers(&other), Vec::<String>::new());
}

#[tokio::test]
async fn no_cors_headers_by_default() {
    let server = TestServer::spawn().await;
    let response = preflight(&server, ORIGIN).await;
    assert_eq!(cors_headers(&response), Vec::<String>::new());
    let get = server
        .client
        .get(server.url("/api/health"))
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 200);
    assert_eq!(cors_headers(&get), Vec::<String>::new());
    assert!(!get.headers().contains_key("vary"));
}

#[test]
fn invalid_cors_origin_exits_with_2() {
    let tmp = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tasker"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.path().join("data"))
        .args([
            "--cors-origins",
            "https://ok.example.com,tasks.example.com/",
        ])
        .env_remove("CORS_ORIGINS")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--cors-origins"), "{stderr}");
    assert!(stderr.contains("tasks.example.com/"), "{stderr}");
}

// --- request ids ---

#[tokio::test]
async fn request_id_is_echoed_or_generated() {
    let server = TestServer::spawn().await;
    let send = |id: Option<String>, path: &'static str| {
        let mut request = server.client.get(server.url(path));
        if let Some(id) = id {
            request = request.header("x-request-id", id);
        }
        request.send()
    };
    let echoed = send(Some("client-id.42".into()), "/api/health")
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "client-id.42");
    // On errors too.
    let missing = send(Some("abc".into()), "/api/nope").await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["x-request-id"], "abc");
    let generated = send(None, "/api/health").await.unwrap();
    let id = generated.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    // Too long or not visible ASCII: replaced.
    let replaced = send(Some("x".repeat(129)), "/api/health").await.unwrap();
    let id = replaced.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    let replaced = send(Some("two words".into()), "/").await.unwrap();
    assert_ne!(replaced.headers()["x-request-id"], "two words");
}

// --- metrics ---

async fn scrape(server: &TestServer, token: Option<&str>) -> reqwest::Response {
    let mut request = server.client.get(server.url("/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// The value of the sample whose name and labels are exactly `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_are_off_by_default() {
    let server = TestServer::spawn().await;
    assert_eq!(scrape(&server, None).await.status(), 404);
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let (server, _tmp) = spawn(|c| c.metrics = true).await;
    let account = server.register().await;
    let task = server
        .post(
            "/api/tasks",
            Some(&account.token),
            json!({"title": "Count me"}),
        )
        .await;
    let path = format!("/api/tasks/{}", task.ok()["id"].as_str().unwrap());
    server.get(&path, Some(&account.token)).await.ok();
    server.get("/api/health", None).await.ok();
    server.get("/no/such/path?token=secret", None).await;

    let response = scrape(&server, None).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').expect(line);
        assert!(value.parse::<f64>().is_ok(), "{line}");
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "{line}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "{line}");
        }
    }
    let get_task =
        r#"tasker_http_requests_total{method="GET",route="/api/tasks/:id",status="200"}"#;
    let health = r#"tasker_http_requests_total{method="GET",route="/api/health",status="200"}"#;
    assert_eq!(sample(&text, get_task), Some(1.0), "{text}");
    assert_eq!(sample(&text, health), Some(1.0), "{text}");
    assert_eq!(
        sample(
            &text,
            r#"tasker_http_requests_total{method="GET",route="unmatched",status="404"}"#
        ),
        Some(1.0)
    );
    assert!(!text.contains(&path) && !text.contains("secret"));
    assert!(text.contains("# TYPE tasker_http_request_duration_seconds histogram"));
    assert_eq!(
        sample(
            &text,
            r#"tasker_http_request_duration_seconds_count{method="GET",route="/api/tasks/:id"}"#
        ),
        Some(1.0)
    );
    assert!(text.contains(
        r#"tasker_http_request_duration_seconds_bucket{method="GET",route="/api/tasks/:id",le="+Inf"} 1"#
    ));
    assert_eq!(sample(&text, "tasker_tasks"), Some(1.0));
    assert_eq!(sample(&text, "tasker_websocket_connections"), Some(0.0));
    assert!(sample(&text, "tasker_index_lag").is_some());
    assert!(sample(&text, "tasker_index_ready").is_some());
    assert_eq!(
        sample(
            &text,
            &format!(
                "tasker_build_info{{version=\"{}\"}}",
                env!("CARGO_PKG_VERSION")
            )
        ),
        Some(1.0)
    );

    server.get("/api/health", None).await.ok();
    let text = scrape(&server, None).await.text().await.unwrap();
    assert_eq!(sample(&text, health), Some(2.0));
    // The scrape itself is counted too.
    assert!(
        sample(
            &text,
            r#"tasker_http_requests_total{method="GET",route="/metrics",status="200"}"#
        )
        .is_some()
    );
}

#[tokio::test]
async fn metrics_token_is_required_when_set() {
    let (server, _tmp) = spawn(|c| {
        c.metrics = true;
        c.metrics_token = Some("scrape-secret".into());
    })
    .await;
    assert_eq!(scrape(&server, None).await.status(), 401);
    assert_eq!(scrape(&server, Some("wrong")).await.status(), 401);
    assert_eq!(scrape(&server, Some("scrape-secret")).await.status(), 200);
}
