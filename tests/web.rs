//! The web app's server side: first set-up, sign in and out, the session cookie, CSRF, the
//! security headers, escaping, error pages and static files. (What needs a browser is in
//! `tests/browser/`.)

use reqwest::StatusCode;
use serde_json::json;

use crate::common::web::{WebClient, set_cookie};
use crate::common::{PASSWORD, TestServer, test_config};

#[tokio::test]
async fn a_fresh_server_sets_up_its_admin_in_the_browser() {
    let server = TestServer::spawn().await;
    let mut web = WebClient::new(&server);
    let home = web.get("/").await;
    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert_eq!(home.location(), "/setup");
    let signin = web.get("/signin").await;
    assert_eq!(signin.location(), "/setup");

    let setup = web.get("/setup").await;
    assert_eq!(setup.status, StatusCode::OK);
    assert!(setup.header("content-type").starts_with("text/html"));
    assert!(setup.html.contains("Create admin account"));

    let done = web
        .post(
            "/setup",
            &[
                ("name", "Ada"),
                ("email", "ada@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    assert_eq!(done.location(), "/");
    let cookie = set_cookie(&done.headers, "tasker_session").unwrap();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");

    let home = web.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.html.contains("<h1>My work</h1>"));
    assert!(home.html.contains("Ada"));

    // The admin exists: set-up is over, for everyone.
    let mut visitor = WebClient::new(&server);
    assert_eq!(visitor.get("/setup").await.location(), "/signin");
    let again = visitor
        .post(
            "/setup",
            &[
                ("name", "Eve"),
                ("email", "eve@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(again.location(), "/signin");
    assert!(visitor.cookie.is_none());
    let me = server.login_ok("ada@example.com").await;
    let profile = server.get("/api/users/me", Some(&me.token)).await;
    assert_eq!(profile.ok()["role"], "admin");
}

#[tokio::test]
async fn sign_in_keeps_to_this_site_and_refuses_a_wrong_password() {
    let server = TestServer::spawn().await;
    server.register_as("bo@example.com", "Bo").await;
    let mut web = WebClient::new(&server);
    let page = web.get("/").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/signin");
    let form = web.get("/signin?next=%2Ftasks%3Fx%3D1").await;
    assert!(
        form.html.contains("name=\"next\" value=\"/tasks?x=1\""),
        "{}",
        form.html
    );

    let wrong = web
        .post(
            "/signin",
            &[
                ("email", "bo@example.com"),
                ("password", "wrong password"),
                ("next", "/"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.html.contains("The email or password is incorrect."));
    assert!(wrong.html.contains("value=\"bo@example.com\""));
    assert!(web.cookie.is_none());

    let evil = web
        .post(
            "/signin",
            &[
                ("email", "bo@example.com"),
                ("password", PASSWORD),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(evil.status, StatusCode::SEE_OTHER);
    assert_eq!(evil.location(), "/");
    assert!(web.cookie.is_some());

    let mut other = WebClient::new(&server);
    let back = other
        .post(
            "/signin",
            &[
                ("email", "BO@example.com"),
                ("password", PASSWORD),
                ("next", "/tasks?x=1"),
            ],
        )
        .await;
    assert_eq!(back.location(), "/tasks?x=1");
}

#[tokio::test]
async fn a_browser_session_is_listed_and_revoked_like_any_other() {
    let server = TestServer::spawn().await;
    let mut web = WebClient::new(&server);
    let email = web.register("Cy").await;
    let api = server.login_ok(&email).await;
    let sessions = server.get("/api/auth/sessions", Some(&api.token)).await;
    let sessions = sessions.ok()["items"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 2, "the browser's and the API's");
    let browser = sessions
        .iter()
        .find(|s| s["id"] != api.session_id.as_str())
        .unwrap();
    let revoked = server
        .call(
            reqwest::Method::DELETE,
            &format!("/api/auth/sessions/{}", browser["id"].as_str().unwrap()),
            Some(&api.token),
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    let page = web.get("/").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/signin");
}

#[tokio::test]
async fn unsafe_requests_need_this_sites_origin_and_the_sessions_token() {
    let server = TestServer::spawn().await;
    let mut web = WebClient::new(&server);
    web.register("Di").await;
    let token = web.csrf.clone().unwrap();
    let origin = web.base.clone();

    // No token.
    let page = web.post_raw("/signout", &[], &[("origin", &origin)]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.header("content-type").starts_with("text/html"));
    // A wrong token, or another session's.
    let mut other = WebClient::new(&server);
    other.register("Ed").await;
    let foreign = other.csrf.clone().unwrap();
    for bad in ["nonsense", foreign.as_str()] {
        let page = web
            .post_raw("/signout", &[("csrf", bad)], &[("origin", &origin)])
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "token {bad}");
    }
    // The right token from another site.
    let page = web
        .post_raw(
            "/signout",
            &[("csrf", &token)],
            &[("origin", "http://evil.example")],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let page = web
        .post_raw(
            "/signout",
            &[("csrf", &token)],
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    // Still signed in after all that.
    assert_eq!(web.get("/").await.status, StatusCode::OK);

    // The header works as well as the field; then the session is over.
    let page = web
        .post_raw(
            "/signout",
            &[],
            &[("origin", &origin), ("x-csrf-token", &token)],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    assert_eq!(page.location(), "/signin");
    let cleared = set_cookie(&page.headers, "tasker_session").unwrap();
    assert!(cleared.contains("Max-Age=0"));
    assert!(web.cookie.is_none());
}

#[tokio::test]
async fn a_cookie_naming_a_session_must_carry_our_signature() {
    let server = TestServer::spawn().await;
    let mut web = WebClient::new(&server);
    let email = web.register("Fa").await;
    let api = server.login_ok(&email).await;
    // The API session's id with a made-up signature: not a cookie we issued.
    web.cookie = Some(format!("tasker_session={}.AAAA", api.session_id));
    assert_eq!(web.get("/").await.location(), "/signin");
    web.cookie = Some("tasker_session=garbage".into());
    assert_eq!(web.get("/").await.location(), "/signin");
}

#[tokio::test]
async fn pages_carry_a_strict_policy_and_escape_what_users_write() {
    let server = TestServer::spawn().await;
    let mut web = WebClient::new(&server);
    let hostile = "<script>alert(1)</script>";
    let email = web.register(hostile).await;
    let me = server.login_ok(&email).await;
    let title = "<img src=x onerror=alert(2)> & \"quotes\"";
    let created = server
        .post(
            "/api/tasks",
            Some(&me.token),
            json!({"title": title, "assignee_ids": [me.user_id], "labels": ["<b>x</b>"]}),
        )
        .await;
    created.ok();
    let page = web.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.html.contains(hostile), "the name is escaped");
    assert!(
        page.html
            .contains("&#60;script&#62;alert(1)&#60;/script&#62;")
    );
    assert!(!page.html.contains("<img src=x"), "the title is escaped");
    assert!(!page.html.contains("<b>x</b>"), "labels are escaped");
    let csp = page.header("content-security-policy");
    for directive in [
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
    assert_eq!(page.header("x-content-type-options"), "nosniff");
    assert_eq!(page.header("referrer-policy"), "no-referrer");
    assert_eq!(page.header("x-frame-options"), "DENY");
    // No inline script or style anywhere in the page.
    for inline in [
        "<script>",
        "<style",
        " style=",
        " onclick=",
        " onload=",
        "javascript:",
    ] {
        assert!(!page.html.contains(inline), "{inline} in the page");
    }
}

#[tokio::test]
async fn unknown_pages_are_html_and_unknown_api_paths_stay_json() {
    let server = TestServer::spawn().await;
    let mut web = WebClient::new(&server);
    let page = web.get("/no/such/page").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.header("content-type").starts_with("text/html"));
    assert!(page.html.contains("Not found"));
    assert!(
        page.header("content-security-policy")
            .contains("frame-ancestors 'none'")
    );
    let api = server.get("/api/no/such/thing", None).await;
    api.problem(404, "not_found");
}

#[tokio::test]
async fn static_files_are_hashed_compressed_and_cached_for_a_year() {
    let server = TestServer::spawn().await;
    let mut web = WebClient::new(&server);
    let page = web.get("/setup").await;
    let css = page
        .attribute_after("rel=\"stylesheet\"", "href")
        .expect("a stylesheet link");
    assert!(
        css.starts_with("/assets/app/app.") && css.ends_with(".css"),
        "{css}"
    );
    let response = web
        .client
        .get(format!("{}{css}", web.base))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-encoding"], "gzip");
    assert_eq!(
        response.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    let plain = web
        .client
        .get(format!("{}{css}", web.base))
        .send()
        .await
        .unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    assert!(plain.text().await.unwrap().contains("prefers-color-scheme"));
    let stale = web.get("/assets/app/app.0000000000.css").await;
    assert_eq!(stale.status, StatusCode::NOT_FOUND);
    let icon = web.get("/favicon.ico").await;
    assert_eq!(icon.status, StatusCode::OK);
    assert_eq!(icon.header("content-type"), "image/svg+xml");
}

#[tokio::test]
async fn closed_registration_says_so_and_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = test_config(tmp.path());
    config.registration = tasker::config::Registration::Closed;
    let server = TestServer::spawn_with(config).await;
    let mut web = WebClient::new(&server);
    // Even the first account: an operator creates it with `tasker user create --admin`.
    let page = web.get("/setup").await;
    assert!(
        page.html.contains("Registration is closed"),
        "{}",
        page.html
    );
    let refused = web
        .post(
            "/register",
            &[
                ("name", "Gi"),
                ("email", "gi@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.html.contains("Registration is closed"));
    assert!(web.cookie.is_none());
}

#[tokio::test]
async fn registration_form_errors_name_their_fields() {
    let server = TestServer::spawn().await;
    server.register_as("taken@example.com", "Ha").await;
    let mut web = WebClient::new(&server);
    let page = web
        .post(
            "/register",
            &[
                ("name", ""),
                ("email", "not an email"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    for field in ["name-error", "email-error", "password-error"] {
        assert!(page.html.contains(&format!("id=\"{field}\"")), "{field}");
    }
    let taken = web
        .post(
            "/register",
            &[
                ("name", "Ha"),
                ("email", "taken@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(taken.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(taken.html.contains("already exists"));
}

#[tokio::test]
async fn the_live_feed_takes_the_cookie_from_our_own_pages_only() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let server = TestServer::spawn().await;
    let mut web = WebClient::new(&server);
    web.register("Io").await;
    let cookie = web.cookie.clone().unwrap();
    let ws_url = format!("{}/api/ws", server.base.replace("http://", "ws://"));
    let host = server.base.trim_start_matches("http://").to_string();
    let connect = |origin: Option<String>, cookie: Option<String>| {
        let mut request = ws_url.clone().into_client_request().unwrap();
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("origin", origin.parse().unwrap());
        }
        if let Some(cookie) = cookie {
            request
                .headers_mut()
                .insert("cookie", cookie.parse().unwrap());
        }
        tokio_tungstenite::connect_async(request)
    };
    let ok = connect(Some(format!("http://{host}")), Some(cookie.clone())).await;
    assert!(
        ok.is_ok(),
        "same-origin page with the cookie: {:?}",
        ok.err()
    );
    let status = |result: Result<_, tokio_tungstenite::tungstenite::Error>| match result {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => 101,
    };
    let evil = connect(Some("http://evil.example".into()), Some(cookie.clone())).await;
    assert_eq!(status(evil.map(|_| ())), 403);
    let none = connect(Some(format!("http://{host}")), None).await;
    assert_eq!(status(none.map(|_| ())), 401);
}
