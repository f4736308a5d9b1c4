//! The notification settings page: saving, refusing bad input with the messages (422) and
//! nothing written, escaping what was typed, the test push, and sign-in first.

use reqwest::StatusCode;

use crate::common::TestServer;
use crate::common::web::WebClient;

const PATH: &str = "/settings/notifications";

fn selected(html: &str, value: &str) -> bool {
    html.contains(&format!("<option value=\"{value}\" selected>"))
}

#[tokio::test]
async fn settings_are_saved_from_the_page_and_linked_from_the_profile() {
    let server = TestServer::spawn().await;
    let mut web = WebClient::new(&server);
    web.register("Ada").await;
    let profile = web.get("/profile").await;
    assert!(profile.html.contains(&format!("href=\"{PATH}\"")));
    let page = web.get(PATH).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(selected(&page.html, "UTC"));
    assert!(selected(&page.html, "8"), "08:00 by default");

    let saved = web
        .post(
            PATH,
            &[
                ("time_zone", "Europe/Paris"),
                ("morning_hour", "7"),
                ("at_due_time", "on"),
                ("lead_minutes", "60, 15"),
                ("email_reminders", "on"),
                ("digest_hour", "18"),
                ("kind.task_assigned", "email"),
                ("kind.comment_added", "digest"),
                ("ntfy_url", ""),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    assert_eq!(saved.location(), format!("{PATH}?saved=settings"));
    let page = web.get(saved.location()).await;
    assert!(page.html.contains("were saved"));
    assert!(selected(&page.html, "Europe/Paris"));
    assert!(selected(&page.html, "7") && selected(&page.html, "18"));
    assert!(page.html.contains("value=\"15, 60\""));
    assert!(selected(&page.html, "email") && selected(&page.html, "digest"));
}

#[tokio::test]
async fn bad_input_is_shown_again_with_its_messages_and_nothing_saved() {
    let server = TestServer::spawn().await;
    let mut web = WebClient::new(&server);
    web.register("Bob").await;
    web.get(PATH).await;
    let refused = web
        .post(
            PATH,
            &[
                ("time_zone", "Mars/<b>Olympus</b>"),
                ("morning_hour", "25"),
                ("lead_minutes", "0"),
                ("ntfy_url", "http://10.0.0.1/<script>"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.html.contains("unknown time zone"));
    assert!(refused.html.contains("must be an hour from 0 to 23"));
    assert!(refused.html.contains("each lead time must be"));
    assert!(refused.html.contains("id=\"ntfy-url-error\""));
    assert!(!refused.html.contains("<b>Olympus</b>") && !refused.html.contains("<script>"));
    assert!(refused.html.contains("script&#62;") || refused.html.contains("script&gt;"));
    let page = web.get(PATH).await;
    assert!(selected(&page.html, "UTC"), "nothing was saved");

    // The test push needs a topic first.
    let push = web.post("/settings/notifications/test-push", &[]).await;
    assert_eq!(push.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(push.html.contains("set an ntfy topic URL first"));
}

#[tokio::test]
async fn the_page_needs_a_session() {
    let server = TestServer::spawn().await;
    let mut web = WebClient::new(&server);
    let page = web.get(PATH).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(
        page.location().starts_with("/signin"),
        "{}",
        page.location()
    );
}
