//! The web app's pages behind mailed links: `/verify`, `/forgot-password`, `/reset-password`,
//! the profile's confirmation notice, and the sign-in page's "forgot" link.

use reqwest::StatusCode;

use crate::common::web::WebClient;
use crate::common::{PASSWORD, TestServer};
use crate::mail::{SITE, mail_server};

#[tokio::test]
async fn the_verify_page_confirms_the_address_from_the_mailed_link_once() {
    let (smtp, server, _tmp) = mail_server().await;
    let mut web = WebClient::new(&server);
    let email = web.register("Vera").await;
    let profile = web.get("/profile").await;
    assert!(profile.html.contains("Please confirm your address"));
    assert!(profile.html.contains("action=\"/verify/resend\""));

    let mail = smtp.wait_for(1).await.remove(0);
    assert_eq!(mail.to, [email.as_str()]);
    let link = mail.link(&format!("{SITE}/verify?token="));
    let path = link.strip_prefix(SITE).unwrap();
    // Opened in another browser, signed out.
    let mut other = WebClient::new(&server);
    let page = other.get(path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("is confirmed as your address"));
    assert!(page.html.contains(&email));
    let again = other.get(path).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(
        again
            .html
            .contains("invalid, has expired or was already used")
    );

    let profile = web.get("/profile").await;
    assert!(profile.html.contains("Your address is confirmed."));
    assert!(!profile.html.contains("Please confirm your address"));
}

#[tokio::test]
async fn the_profile_resends_the_link() {
    let (smtp, server, _tmp) = mail_server().await;
    let mut web = WebClient::new(&server);
    web.register("Rex").await;
    smtp.wait_for(1).await;
    let sent = web.post("/verify/resend", &[]).await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER);
    assert_eq!(sent.location(), "/profile?saved=verify");
    let messages = smtp.wait_for(2).await;
    assert_eq!(
        messages[1].subject(),
        "Confirm your email address for tasker"
    );
    assert!(
        web.get("/profile?saved=verify")
            .await
            .html
            .contains("A new confirmation link is on its way.")
    );
}

#[tokio::test]
async fn a_password_is_reset_through_the_forgot_and_reset_pages() {
    let (smtp, server, _tmp) = mail_server().await;
    let mut web = WebClient::new(&server);
    let email = web.register("Pia").await;
    smtp.wait_for(1).await;

    let mut visitor = WebClient::new(&server);
    let signin = visitor.get("/signin").await;
    assert!(signin.html.contains("href=\"/forgot-password\""));
    let form = visitor.get("/forgot-password").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.html.contains("Send me a reset link"));

    // Bad input: the form again, 422, nothing sent.
    let bad = visitor
        .post("/forgot-password", &[("email", "not an address")])
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.html.contains("email-error"));
    assert!(bad.html.contains("value=\"not an address\""));

    let asked = visitor.post("/forgot-password", &[("email", &email)]).await;
    assert_eq!(asked.status, StatusCode::SEE_OTHER);
    assert_eq!(asked.location(), "/forgot-password?sent=1");
    let unknown = visitor
        .post("/forgot-password", &[("email", "ghost@example.com")])
        .await;
    assert_eq!(unknown.location(), asked.location(), "the same answer");
    let sent = visitor.get(asked.location()).await;
    assert!(sent.html.contains("If an account has this address"));

    let mail = smtp.wait_for(2).await.remove(1);
    let link = mail.link(&format!("{SITE}/reset-password?token="));
    let path = link.strip_prefix(SITE).unwrap().to_string();
    let token = mail.token(&format!("{SITE}/reset-password"));
    let form = visitor.get(&path).await;
    assert_eq!(form.status, StatusCode::OK);
    assert_eq!(
        form.attribute_after("name=\"token\"", "value").as_deref(),
        Some(token.as_str())
    );

    // Mismatched confirmation and a short password: 422, nothing changed.
    let mismatch = visitor
        .post(
            "/reset-password",
            &[
                ("token", &token),
                ("password", "new password 1"),
                ("confirm", "other"),
            ],
        )
        .await;
    assert_eq!(mismatch.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(mismatch.html.contains("does not match"));
    let short = visitor
        .post(
            "/reset-password",
            &[
                ("token", &token),
                ("password", "short"),
                ("confirm", "short"),
            ],
        )
        .await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(short.html.contains("password-error"));

    let done = visitor
        .post(
            "/reset-password",
            &[
                ("token", &token),
                ("password", "a fresh password"),
                ("confirm", "a fresh password"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    assert_eq!(done.location(), "/reset-password?done=1");
    assert!(
        visitor
            .get("/reset-password?done=1")
            .await
            .html
            .contains("every session of your account was signed out")
    );
    // The first browser was signed out; the old password no longer works; the new one does.
    assert_eq!(web.get("/profile").await.status, StatusCode::SEE_OTHER);
    assert_eq!(server.login(&email, PASSWORD).await.status, 401);
    server.login(&email, "a fresh password").await.ok();
    // The link worked once.
    let reused = visitor
        .post(
            "/reset-password",
            &[
                ("token", &token),
                ("password", "third password"),
                ("confirm", "third password"),
            ],
        )
        .await;
    assert_eq!(reused.status, StatusCode::BAD_REQUEST);
    assert!(reused.html.contains("Ask for a new link"));
}

#[tokio::test]
async fn without_mail_the_pages_say_so() {
    let server = TestServer::spawn().await;
    let mut web = WebClient::new(&server);
    web.register("Nomail").await;
    let profile = web.get("/profile").await;
    assert!(profile.html.contains("this server sends no email"));
    assert!(!profile.html.contains("action=\"/verify/resend\""));
    let mut visitor = WebClient::new(&server);
    let forgot = visitor.get("/forgot-password").await;
    assert!(forgot.html.contains("This server sends no email"));
    assert!(!forgot.html.contains("Send me a reset link"));
    let bad_link = visitor.get("/verify?token=nonsense").await;
    assert_eq!(bad_link.status, StatusCode::BAD_REQUEST);
}
