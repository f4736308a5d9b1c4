//! `--trusted-proxies`: whose `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Forwarded-Host`
//! are believed. The test client connects from 127.0.0.1, which the default (loopback) trusts.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tasker::Config;
use tasker::config::{Limit, RateLimits, TrustedProxies};
use tempfile::TempDir;

use crate::common::web::{WebClient, set_cookie};
use crate::common::{PASSWORD, Reply, TestServer, test_config};

async fn spawn(change: impl FnOnce(&mut Config)) -> (TestServer, TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = test_config(tmp.path());
    change(&mut config);
    (TestServer::spawn_with(config).await, tmp)
}

/// Every request: 5 per client address, then one a minute.
fn five_a_minute() -> RateLimits {
    RateLimits {
        per_ip: Limit {
            burst: 5,
            period: Duration::from_secs(60),
        },
        ..RateLimits::default()
    }
}

async fn health_from(server: &TestServer, forwarded_for: &str) -> Reply {
    let response = server
        .client
        .get(server.url("/api/health"))
        .header("x-forwarded-for", forwarded_for)
        .send()
        .await
        .unwrap();
    TestServer::reply(response).await
}

/// Behind the default (loopback) proxy, two clients have two buckets; what a client puts
/// before the proxy's own entry changes nothing.
#[tokio::test]
async fn clients_behind_a_trusted_proxy_get_their_own_limits() {
    let (server, _tmp) = spawn(|c| c.rate_limits = Some(five_a_minute())).await;
    for i in 0..5 {
        // The client forges a fresh leftmost entry each time; the proxy appended its address.
        health_from(&server, &format!("10.9.9.{i}, 198.51.100.1"))
            .await
            .ok();
    }
    health_from(&server, "10.9.9.99, 198.51.100.1")
        .await
        .problem(429, "rate_limited");
    // Another client through the same proxy, and a chain of trusted proxies.
    health_from(&server, "198.51.100.2").await.ok();
    health_from(&server, "198.51.100.3, 127.0.0.5").await.ok();
    // The proxy itself (no header) has its own bucket too.
    server.get("/api/health", None).await.ok();
}

/// From a peer that is not a trusted proxy, `X-Forwarded-For` is ignored: forging it buys no
/// fresh bucket, and sessions record the socket's address.
#[tokio::test]
async fn a_forged_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let (server, _tmp) = spawn(|c| {
        c.rate_limits = Some(five_a_minute());
        c.trusted_proxies = TrustedProxies::parse("10.0.0.0/8,fd00::/8").unwrap();
    })
    .await;
    let account = server
        .post(
            "/api/auth/register",
            None,
            json!({"email": "forger@example.com", "name": "F", "password": PASSWORD}),
        )
        .await;
    let token = account.ok()["token"].as_str().unwrap().to_string();
    let sessions = server
        .client
        .get(server.url("/api/auth/sessions"))
        .bearer_auth(&token)
        .header("x-forwarded-for", "198.51.100.7")
        .send()
        .await
        .unwrap();
    let sessions = TestServer::reply(sessions).await;
    assert_eq!(sessions.ok()["items"][0]["ip"], "127.0.0.1");
    for i in 0..3 {
        health_from(&server, &format!("198.51.100.{i}")).await.ok();
    }
    health_from(&server, "198.51.100.200")
        .await
        .problem(429, "rate_limited");
}

/// Registers through the web form with `headers`; the session cookie as set.
async fn register_cookie(server: &TestServer, headers: &[(&str, &str)]) -> String {
    let mut web = WebClient::new(server);
    let email = format!("proxied-{}@example.com", uuid::Uuid::now_v7().simple());
    let origin = server.base.trim_end_matches('/').to_string();
    let mut all = vec![
        ("origin", origin.as_str()),
        ("sec-fetch-site", "same-origin"),
    ];
    all.extend_from_slice(headers);
    let page = web
        .post_raw(
            "/register",
            &[
                ("name", "Proxied"),
                ("email", &email),
                ("password", PASSWORD),
            ],
            &all,
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    set_cookie(&page.headers, "tasker_session")
        .expect("a session cookie")
        .to_string()
}

/// `X-Forwarded-Proto: https` makes the session cookie `Secure`, only from a trusted proxy.
#[tokio::test]
async fn forwarded_proto_is_believed_only_from_a_trusted_proxy() {
    let https = [("x-forwarded-proto", "https")];
    let (trusting, _a) = spawn(|_| {}).await;
    assert!(
        register_cookie(&trusting, &https)
            .await
            .contains("; Secure")
    );
    assert!(!register_cookie(&trusting, &[]).await.contains("Secure"));
    let (elsewhere, _b) = spawn(|c| {
        c.trusted_proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
    })
    .await;
    assert!(!register_cookie(&elsewhere, &https).await.contains("Secure"));
    let (nobody, _c) = spawn(|c| c.trusted_proxies = TrustedProxies::none()).await;
    assert!(!register_cookie(&nobody, &https).await.contains("Secure"));
}

/// The same-origin check takes our host from `X-Forwarded-Host` only from a trusted proxy.
#[tokio::test]
async fn forwarded_host_is_believed_only_from_a_trusted_proxy() {
    let fields = [
        ("email", "nobody@example.com"),
        ("password", "wrong password"),
    ];
    let proxied = [
        ("origin", "https://tasks.example"),
        ("x-forwarded-host", "tasks.example"),
        ("x-forwarded-proto", "https"),
    ];
    let (trusting, _a) = spawn(|_| {}).await;
    let page = WebClient::new(&trusting)
        .post_raw("/signin", &fields, &proxied)
        .await;
    // Past the origin check: the sign-in itself fails.
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        page.html
    );
    let (elsewhere, _b) = spawn(|c| {
        c.trusted_proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
    })
    .await;
    let page = WebClient::new(&elsewhere)
        .post_raw("/signin", &fields, &proxied)
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.html);
}

/// A bad `--trusted-proxies` and the removed `--trust-proxy` stop the server at start, saying
/// what to do.
#[test]
fn bad_or_removed_proxy_settings_exit_with_2() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tasker"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(tmp.path().join("data"))
            .args(args)
            .env_remove("TASKER_TRUSTED_PROXIES")
            .env_remove("TASKER_TRUST_PROXY");
        for (name, value) in env {
            command.env(name, value);
        }
        let output = command.output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, stderr) = run(&["--trusted-proxies", "127.0.0.1,10.0.0.0/33"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--trusted-proxies"), "{stderr}");
    assert!(stderr.contains("'10.0.0.0/33'"), "{stderr}");
    let (code, stderr) = run(&[], &[("TASKER_TRUSTED_PROXIES", "proxy.internal")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("'proxy.internal'"), "{stderr}");
    for (args, env) in [
        (&["--trust-proxy"][..], &[][..]),
        (&[][..], &[("TASKER_TRUST_PROXY", "true")][..]),
    ] {
        let (code, stderr) = run(args, env);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains("--trusted-proxies"), "{stderr}");
    }
}

/// The live feed's cookie check knows our host as the browser does: from `X-Forwarded-Host`
/// when a trusted proxy sends it (a proxy that rewrites `Host` would otherwise refuse every
/// browser feed), and never from anyone else.
#[tokio::test]
async fn the_live_feed_behind_a_proxy_takes_our_host_from_it() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    async fn upgrade(server: &TestServer, cookie: &str) -> u16 {
        let url = format!("{}/api/ws", server.base.replace("http://", "ws://"));
        let mut request = url.into_client_request().unwrap();
        for (name, value) in [
            ("origin", "https://tasks.example"),
            ("x-forwarded-host", "tasks.example"),
            ("x-forwarded-proto", "https"),
            ("cookie", cookie),
        ] {
            request.headers_mut().insert(name, value.parse().unwrap());
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok(_) => 101,
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                response.status().as_u16()
            }
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    let (trusting, _a) = spawn(|_| {}).await;
    let cookie = register_cookie(&trusting, &[]).await;
    let cookie = cookie.split(';').next().unwrap().to_string();
    assert_eq!(upgrade(&trusting, &cookie).await, 101);
    let (elsewhere, _b) = spawn(|c| {
        c.trusted_proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
    })
    .await;
    let cookie = register_cookie(&elsewhere, &[]).await;
    let cookie = cookie.split(';').next().unwrap().to_string();
    assert_eq!(upgrade(&elsewhere, &cookie).await, 403);
}
