//! The web app's API tokens page (`/profile/tokens`), server-side: making a token shows its
//! secret once (and it works on the API), revoking it (it stops working), a refused form
//! (422, nothing written), escaping, CSRF, and another account's token.

use reqwest::StatusCode;

use crate::common::TestServer;
use crate::common::web::WebClient;

fn in_days(days: i64) -> String {
    (chrono::Utc::now().date_naive() + chrono::Duration::days(days)).to_string()
}

/// The secret on the page that answered the form.
fn secret(html: &str) -> String {
    let start = html.find("tkr_pat_").expect("the secret is shown");
    html[start..start + 8 + 64].to_string()
}

/// The id of the first token listed (from its Revoke form).
fn listed_id(html: &str) -> String {
    let marker = "action=\"/profile/tokens/";
    let start = html.find(marker).expect("a listed token") + marker.len();
    html[start..start + 36].to_string()
}

#[tokio::test]
async fn a_token_is_made_shown_once_works_and_is_revoked() {
    let server = TestServer::spawn().await;
    let mut web = WebClient::new(&server);
    let email = web.register("Tia").await;
    let profile = web.get("/profile").await;
    assert!(profile.html.contains("href=\"/profile/tokens\""));
    let empty = web.get("/profile/tokens").await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(empty.html.contains("You have no tokens."));

    let made = web
        .post(
            "/profile/tokens",
            &[
                ("name", "<b>CI</b> deploy"),
                ("scopes", "tasks:read"),
                ("scopes", "comments:write"),
                ("expires_on", &in_days(30)),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.html);
    let token = secret(&made.html);
    assert!(made.html.contains("not shown again"));
    assert!(
        made.html.contains("&#60;b&#62;CI&#60;/b&#62; deploy"),
        "escaped"
    );
    assert!(!made.html.contains("<b>CI</b>"));
    assert!(made.html.contains("tasks:read, comments:write"));

    // It works on the API, within its scopes.
    server.get("/api/tasks", Some(&token)).await.ok();
    server
        .get("/api/projects", Some(&token))
        .await
        .problem(403, "forbidden");

    // Shown once: the list never carries it again.
    let listed = web.get("/profile/tokens").await;
    assert!(!listed.html.contains(&token));
    assert!(!listed.html.contains("tkr_pat_"));
    let id = listed_id(&listed.html);

    // Another account cannot revoke it.
    let mut other = WebClient::new(&server);
    other.register("Oz").await;
    let refused = other
        .post(&format!("/profile/tokens/{id}/revoke"), &[])
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    server.get("/api/tasks", Some(&token)).await.ok();

    let revoked = web.post(&format!("/profile/tokens/{id}/revoke"), &[]).await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER, "{}", revoked.html);
    assert_eq!(revoked.location(), "/profile/tokens?revoked=1");
    server
        .get("/api/tasks", Some(&token))
        .await
        .problem(401, "invalid_token");
    let after = web.get("/profile/tokens?revoked=1").await;
    assert!(after.html.contains("The token was revoked"));
    assert!(after.html.contains("You have no tokens."));
    let _ = email;
}

#[tokio::test]
async fn a_refused_form_is_shown_again_with_its_messages_and_nothing_written() {
    let server = TestServer::spawn().await;
    let mut web = WebClient::new(&server);
    web.register("Una").await;
    let cases: [(&[(&str, &str)], &str); 3] = [
        (
            &[("name", "no scopes"), ("expires_on", "2099-01-01")],
            "token-scopes-error",
        ),
        (
            &[
                ("name", "too long"),
                ("scopes", "tasks:read"),
                ("expires_on", "2099-01-01"),
            ],
            "token-expires-error",
        ),
        (
            &[
                ("name", ""),
                ("scopes", "tasks:read"),
                ("expires_on", "not a date"),
            ],
            "token-name-error",
        ),
    ];
    for (fields, marker) in cases {
        let page = web.post("/profile/tokens", fields).await;
        assert_eq!(
            page.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            page.html
        );
        assert!(page.html.contains(marker), "{marker}: {}", page.html);
        assert!(!page.html.contains("tkr_pat_"));
    }
    let listed = web.get("/profile/tokens").await;
    assert!(listed.html.contains("You have no tokens."));
    // A user who is not a site admin is not offered the admin scope, and cannot take it.
    let mut plain = WebClient::new(&server);
    plain.register("Vic").await;
    assert!(
        !plain
            .get("/profile/tokens")
            .await
            .html
            .contains("scope-admin")
    );
    let refused = plain
        .post(
            "/profile/tokens",
            &[
                ("name", "x"),
                ("scopes", "admin"),
                ("expires_on", &in_days(3)),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_tokens_forms_need_the_csrf_token() {
    let server = TestServer::spawn().await;
    let mut web = WebClient::new(&server);
    web.register("Wes").await;
    let made = web
        .post(
            "/profile/tokens",
            &[
                ("name", "kept"),
                ("scopes", "tasks:read"),
                ("expires_on", &in_days(3)),
            ],
        )
        .await;
    let token = secret(&made.html);
    let listed = web.get("/profile/tokens").await;
    let id = listed_id(&listed.html);
    let origin = web.base.trim_end_matches('/').to_string();
    for path in [
        "/profile/tokens".to_string(),
        format!("/profile/tokens/{id}/revoke"),
    ] {
        let page = web
            .post_raw(
                &path,
                &[
                    ("name", "forged"),
                    ("scopes", "tasks:write"),
                    ("expires_on", &in_days(3)),
                ],
                &[("origin", &origin)],
            )
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
    }
    server.get("/api/tasks", Some(&token)).await.ok();
    let listed = web.get("/profile/tokens").await;
    assert!(!listed.html.contains("forged"));
}
