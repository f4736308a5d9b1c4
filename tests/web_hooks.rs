//! The web app's webhook pages, server-side: an owner creates a hook through the form (the
//! secret shown once), edits it, pings it and sees the delivery in the log, redelivers and
//! deletes; a member sees no link and gets the 403 page, a stranger the 404 page; a private
//! target is refused with the form's message (422, nothing written); user text is escaped.

use reqwest::StatusCode;

use crate::common::web::WebClient;
use crate::common::{TestServer, test_config};
use crate::webhooks::Receiver;

/// A server whose hooks may reach loopback.
async fn server() -> (TestServer, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = test_config(tmp.path());
    config.webhook_allowed_hosts = tasker::net::egress::AllowedHosts::parse("loopback").unwrap();
    (TestServer::spawn_with(config).await, tmp)
}

async fn create_team(web: &mut WebClient, name: &str) -> String {
    let done = web
        .post("/teams", &[("name", name), ("description", "")])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    done.location().trim_start_matches("/teams/").to_string()
}

#[tokio::test]
async fn an_owner_manages_a_hook_and_sees_its_deliveries() {
    let (server, _tmp) = server().await;
    let receiver = Receiver::start(0).await;
    let mut owner = WebClient::new(&server);
    owner.register("Olga").await;
    let team = create_team(&mut owner, "Hook <team>").await;
    let page = owner.get(&format!("/teams/{team}")).await;
    assert!(
        page.html.contains(&format!("/teams/{team}/webhooks")),
        "a link from the team page"
    );

    let hooks = format!("/teams/{team}/webhooks");
    let page = owner.get(&hooks).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("Hook &#60;team&#62;"), "escaped");

    // A private target: the form again with the message, nothing written.
    let refused = owner
        .post(
            &hooks,
            &[
                ("url", "http://10.0.0.1/x"),
                ("events", "*"),
                ("enabled", "on"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.html.contains("private network"), "{}", refused.html);
    assert!(refused.html.contains("No webhooks yet"));

    let created = owner
        .post(
            &hooks,
            &[
                ("url", &receiver.url()),
                ("events", "task.created, comment.*"),
                ("enabled", "on"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.html);
    assert!(created.html.contains("whsec_"), "the secret is shown once");
    let start = created.html.find(&format!("{hooks}/")).unwrap() + hooks.len() + 1;
    let id = created.html[start..start + 36].to_string();
    let page = owner.get(&hooks).await;
    assert!(!page.html.contains("whsec_"), "and only once");
    assert!(page.html.contains("task.created, comment.*"));

    let hook = format!("{hooks}/{id}");
    let pinged = owner.post(&format!("{hook}/ping"), &[]).await;
    assert_eq!(pinged.status, StatusCode::SEE_OTHER);
    receiver.wait_for("the ping", |r| !r.is_empty()).await;
    let page = owner.get(&hook).await;
    assert!(page.html.contains("ping"));
    assert!(page.html.contains("thanks"), "the answer is in the log");
    let again = owner
        .post(&format!("{hook}/deliveries/1/redeliver"), &[])
        .await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    receiver.wait_for("the redelivery", |r| r.len() == 2).await;

    let edited = owner
        .post(&hook, &[("url", &receiver.url()), ("events", "bogus")])
        .await;
    assert_eq!(edited.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(edited.html.contains("is not an event type"));
    let edited = owner
        .post(&hook, &[("url", &receiver.url()), ("events", "task.*")])
        .await;
    assert_eq!(edited.status, StatusCode::SEE_OTHER);
    let page = owner.get(&hook).await;
    assert!(page.html.contains("Disabled"), "unticked means disabled");

    let deleted = owner.post(&format!("{hook}/delete"), &[]).await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert_eq!(owner.get(&hook).await.status, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test]
async fn members_get_403_and_strangers_404() {
    let (server, _tmp) = server().await;
    let mut owner = WebClient::new(&server);
    let owner_email = owner.register("Owen").await;
    let team = create_team(&mut owner, "Closed").await;
    let mut member = WebClient::new(&server);
    let member_email = member.register("Mia").await;
    let owner_api = server.login_ok(&owner_email).await;
    let member_api = server.login_ok(&member_email).await;
    server
        .add_member(&team, &owner_api, &member_api, "member")
        .await;
    let page = member.get(&format!("/teams/{team}")).await;
    assert!(!page.html.contains("/webhooks"), "no link for a member");
    let hooks = format!("/teams/{team}/webhooks");
    assert_eq!(member.get(&hooks).await.status, StatusCode::FORBIDDEN);
    let posted = member
        .post(&hooks, &[("url", "https://example.com/"), ("events", "*")])
        .await;
    assert_eq!(posted.status, StatusCode::FORBIDDEN);
    let mut stranger = WebClient::new(&server);
    stranger.register("Sam").await;
    assert_eq!(stranger.get(&hooks).await.status, StatusCode::NOT_FOUND);
    server.stop().await;
}
