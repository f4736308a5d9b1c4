//! The web app's teams, projects, notifications and profile pages, server-side: each action
//! through its form, the permission matrix through the pages (a stranger gets the 404 page, a
//! member who may not act sees no control and gets the 403 page), refused forms (422, nothing
//! written), escaping and CSRF.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::web::{Page, WebClient};
use crate::common::{Account, PASSWORD, TestServer};

/// The id that follows `prefix` in the page (`/teams/` -> the first team id linked).
fn id_after(page: &Page, prefix: &str) -> String {
    let start = page
        .html
        .find(prefix)
        .unwrap_or_else(|| panic!("{prefix} in {}", page.html))
        + prefix.len();
    page.html[start..start + 36].to_string()
}

/// Creates a team through the form; returns its id.
async fn create_team(web: &mut WebClient, name: &str) -> String {
    let done = web
        .post("/teams", &[("name", name), ("description", "")])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    done.location().trim_start_matches("/teams/").to_string()
}

/// Creates a project through the form; returns its id.
async fn create_project(web: &mut WebClient, team: &str, name: &str) -> String {
    let done = web
        .post(
            "/projects",
            &[
                ("team_id", team),
                ("name", name),
                ("description", "About it"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    done.location().trim_start_matches("/projects/").to_string()
}

/// A web user and their API twin (another session of the same account).
async fn web_user(server: &TestServer, name: &str) -> (WebClient, Account) {
    let mut web = WebClient::new(server);
    let email = web.register(name).await;
    let api = server.login_ok(&email).await;
    (web, api)
}

#[tokio::test]
async fn a_team_is_created_and_an_invitee_accepts_from_the_teams_page() {
    let server = TestServer::spawn().await;
    let (mut owner, _) = web_user(&server, "Olga").await;
    let (mut invitee, invitee_api) = web_user(&server, "Ivan").await;

    let empty = owner.get("/teams").await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(empty.html.contains("not in a team yet"));
    let team = create_team(&mut owner, "Platform").await;
    let list = owner.get("/teams").await;
    assert!(
        list.html
            .contains(&format!("href=\"/teams/{team}\">Platform</a>"))
    );
    assert!(list.html.contains("role-owner"));

    // A refused invitation shows the form again and writes nothing.
    let bad = owner
        .post(
            &format!("/teams/{team}/invite"),
            &[("email", "not an email"), ("role", "member")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.html.contains("id=\"invite-email-error\""),
        "{}",
        bad.html
    );
    assert!(bad.html.contains("value=\"not an email\""));

    let invited = owner
        .post(
            &format!("/teams/{team}/invite"),
            &[("email", &invitee_api.email), ("role", "admin")],
        )
        .await;
    // The answer shows the accept link, this once, with a copy button.
    assert_eq!(invited.status, StatusCode::OK, "{}", invited.html);
    assert_eq!(invited.header("cache-control"), "no-store");
    let link = invited
        .attribute_after("id=\"invite-link\"", "value")
        .expect("the accept link");
    assert!(link.starts_with("/invitations/accept?token=tki_"), "{link}");
    assert!(invited.html.contains("data-copy=\"invite-link\""));
    assert!(invited.html.contains("not shown again"));
    let page = owner.get(&format!("/teams/{team}")).await;
    assert!(
        page.html
            .contains("Pending invitations <span class=\"count-badge\">1</span>")
    );
    assert!(page.html.contains(&invitee_api.email));
    assert!(!page.html.contains(&link), "the link is shown once");
    let again = owner
        .post(
            &format!("/teams/{team}/invite"),
            &[("email", &invitee_api.email), ("role", "member")],
        )
        .await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(again.html.contains("already has a pending invitation"));

    // Holding the invited address shows nothing; the link does: the accept page names the
    // team, the role and the inviter, and the invitation is the invitee's from then on.
    assert!(
        !invitee
            .get("/teams")
            .await
            .html
            .contains("Invitations for you")
    );
    let offer = invitee.get(&link).await;
    assert_eq!(offer.status, StatusCode::OK, "{}", offer.html);
    assert!(
        offer.html.contains("<h1>Join Platform</h1>"),
        "{}",
        offer.html
    );
    assert!(offer.html.contains("role-admin"));
    assert!(offer.html.contains("Olga"));
    assert!(offer.html.contains("signed in as <strong>Ivan</strong>"));
    let mine = invitee.get("/teams").await;
    assert!(mine.html.contains("Invitations for you"), "{}", mine.html);
    assert!(mine.html.contains("<strong>Platform</strong>"));
    assert!(mine.html.contains("Olga invites you as admin"));
    let invitation = id_after(&mine, "action=\"/invitations/");
    let accepted = invitee
        .post(&format!("/invitations/{invitation}/accept"), &[])
        .await;
    assert_eq!(accepted.status, StatusCode::SEE_OTHER, "{}", accepted.html);
    assert_eq!(accepted.location(), format!("/teams/{team}"));
    let team_page = invitee.get(&format!("/teams/{team}")).await;
    assert_eq!(team_page.status, StatusCode::OK);
    assert!(team_page.html.contains("Ivan"));
    assert!(team_page.html.contains("Olga"));
    assert!(
        !invitee
            .get("/teams")
            .await
            .html
            .contains("Invitations for you")
    );
    // The inviter's list of pending invitations is empty again.
    let page = owner.get(&format!("/teams/{team}")).await;
    assert!(page.html.contains("No pending invitations."));
}

#[tokio::test]
async fn owners_change_roles_members_may_not_and_strangers_see_nothing() {
    let server = TestServer::spawn().await;
    let (mut owner, owner_api) = web_user(&server, "Olga").await;
    let (mut member, member_api) = web_user(&server, "Mia").await;
    let (mut stranger, _) = web_user(&server, "Sam").await;
    let team = create_team(&mut owner, "Ops").await;
    server
        .add_member(&team, &owner_api, &member_api, "member")
        .await;
    let project = create_project(&mut owner, &team, "Roadmap").await;

    // The owner sees the controls, and changes the member's role.
    let page = owner.get(&format!("/teams/{team}")).await;
    let role_action = format!("/teams/{team}/members/{}/role", member_api.user_id);
    assert!(page.html.contains(&role_action));
    assert!(page.html.contains("Invite someone"));
    assert!(page.html.contains("Delete team"));
    let changed = owner.post(&role_action, &[("role", "admin")]).await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.html);
    let members = server
        .get(
            &format!("/api/teams/{team}/members"),
            Some(&owner_api.token),
        )
        .await;
    let roles: Vec<String> = members.ok()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap().to_string())
        .collect();
    assert!(roles.contains(&"admin".to_string()), "{roles:?}");
    owner.post(&role_action, &[("role", "member")]).await;

    // A member sees the list without controls, and posting anyway is refused.
    let page = member.get(&format!("/teams/{team}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("Olga"));
    assert!(!page.html.contains("/role\""), "no role control");
    assert!(!page.html.contains("Invite someone"));
    assert!(!page.html.contains("Delete team"));
    let owner_role = format!("/teams/{team}/members/{}/role", owner_api.user_id);
    let refused = member.post(&owner_role, &[("role", "member")]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.header("content-type").starts_with("text/html"));
    let refused = member
        .post(
            &format!("/teams/{team}/invite"),
            &[("email", "x@example.com"), ("role", "member")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let refused = member.post(&format!("/teams/{team}/delete"), &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    // Not the project's creator nor an admin: its settings are read-only.
    let settings = member.get(&format!("/projects/{project}/settings")).await;
    assert_eq!(settings.status, StatusCode::OK);
    assert!(!settings.html.contains("Archive project"));
    let refused = member
        .post(
            &format!("/projects/{project}/settings"),
            &[("name", "Mine now"), ("description", "")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // A stranger: nothing there.
    for path in [
        format!("/teams/{team}"),
        format!("/projects/{project}/settings"),
    ] {
        let page = stranger.get(&path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        assert!(page.html.contains("Not found"));
    }
    let refused = stranger.post(&role_action, &[("role", "owner")]).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    let refused = stranger
        .post(&format!("/projects/{project}/settings/delete"), &[])
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    assert!(!stranger.get("/projects").await.html.contains("Roadmap"));
    // Not an id at all: not found either.
    assert_eq!(
        stranger.get("/teams/not-a-team").await.status,
        StatusCode::NOT_FOUND
    );

    // The member leaves.
    let left = member
        .post(
            &format!("/teams/{team}/members/{}/remove", member_api.user_id),
            &[],
        )
        .await;
    assert_eq!(left.location(), "/teams");
    assert_eq!(
        member.get(&format!("/teams/{team}")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn projects_are_created_renamed_archived_reactivated_and_deleted() {
    let server = TestServer::spawn().await;
    let (mut web, _) = web_user(&server, "Pia").await;
    let team = create_team(&mut web, "Studio").await;

    let refused = web
        .post(
            "/projects",
            &[("team_id", &team), ("name", "  "), ("description", "")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.html.contains("id=\"project-name-error\""));
    assert!(
        web.get("/projects")
            .await
            .html
            .contains("No active projects.")
    );

    let project = create_project(&mut web, &team, "Website").await;
    let list = web.get("/projects").await;
    assert!(
        list.html
            .contains(&format!("href=\"/projects/{project}\">Website</a>"))
    );
    assert!(
        list.html
            .contains(&format!("href=\"/projects/{project}/list\""))
    );
    assert!(list.html.contains("Studio"));

    let settings = format!("/projects/{project}/settings");
    let renamed = web
        .post(&settings, &[("name", "Web site"), ("description", "New")])
        .await;
    assert_eq!(renamed.status, StatusCode::SEE_OTHER, "{}", renamed.html);
    let page = web.get(&settings).await;
    assert!(page.html.contains("Settings of Web site"));
    let empty = web
        .post(&settings, &[("name", ""), ("description", "")])
        .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        web.get(&settings)
            .await
            .html
            .contains("Settings of Web site")
    );

    let archived = web.post(&format!("{settings}/archive"), &[]).await;
    assert_eq!(archived.status, StatusCode::SEE_OTHER);
    let page = web.get(&settings).await;
    assert!(page.html.contains("Reactivate project"));
    let list = web.get("/projects").await;
    let archived_part = &list.html[list.html.find("<details class=\"archived\">").unwrap()..];
    assert!(archived_part.contains("Web site"));
    let refused = web
        .post(&settings, &[("name", "Changed"), ("description", "")])
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.html.contains("archived"));
    web.post(&format!("{settings}/reactivate"), &[]).await;
    assert!(web.get(&settings).await.html.contains("Archive project"));

    let deleted = web.post(&format!("{settings}/delete"), &[]).await;
    assert_eq!(deleted.location(), "/projects");
    assert_eq!(web.get(&settings).await.status, StatusCode::NOT_FOUND);
}

/// Posts like htmx does: the token in the header, `HX-Request` set.
async fn htmx_post(web: &mut WebClient, path: &str, fields: &[(&str, &str)]) -> Page {
    let token = web.csrf.clone().unwrap();
    let origin = web.base.trim_end_matches('/').to_string();
    web.post_raw(
        path,
        fields,
        &[
            ("origin", &origin),
            ("x-csrf-token", &token),
            ("hx-request", "true"),
        ],
    )
    .await
}

fn unread_count(page: &Page) -> String {
    let start = page.html.find("id=\"unread-count\"").expect("the bell");
    let rest = &page.html[start..];
    let from = rest.find('>').unwrap() + 1;
    let to = rest[from..].find('<').unwrap();
    rest[from..from + to].to_string()
}

#[tokio::test]
async fn notifications_are_listed_and_marked_read_with_the_count() {
    let server = TestServer::spawn().await;
    let (mut web, me) = web_user(&server, "Nora").await;
    let other = server.register_as("ole@example.com", "Ole").await;
    let team = server.create_team(&other, "Crew").await;
    server.add_member(&team, &other, &me, "member").await;
    let project = server
        .post(
            "/api/projects",
            Some(&other.token),
            json!({"team_id": team, "name": "P"}),
        )
        .await;
    let project = project.ok()["id"].as_str().unwrap().to_string();
    let task = server
        .post(
            "/api/tasks",
            Some(&other.token),
            json!({"title": "Fix <the> boiler", "project_id": project, "assignee_ids": [me.user_id]}),
        )
        .await;
    let task = task.ok()["id"].as_str().unwrap().to_string();
    server
        .post(
            &format!("/api/tasks/{task}/comments"),
            Some(&other.token),
            json!({"body": "on it?"}),
        )
        .await
        .ok();

    let inbox = web.get("/notifications").await;
    assert_eq!(inbox.status, StatusCode::OK);
    // Invited to the team, assigned, commented on.
    assert_eq!(unread_count(&inbox), "3");
    assert!(inbox.html.contains("<strong>Ole</strong> assigned you to"));
    assert!(inbox.html.contains("<strong>Ole</strong> commented on"));
    assert!(inbox.html.contains(&format!(
        "href=\"/tasks/{task}\">Fix &#60;the&#62; boiler</a>"
    )));
    assert!(!inbox.html.contains("<the>"));
    assert_eq!(inbox.html.matches("notification unread").count(), 3);
    // Newest first: the comment is above the assignment.
    assert!(inbox.html.find("commented on").unwrap() < inbox.html.find("assigned you to").unwrap());

    let seq = {
        let marker = "hx-target=\"#notification-";
        let start = inbox.html.find(marker).unwrap() + marker.len();
        let len = inbox.html[start..].find('"').unwrap();
        inbox.html[start..start + len].to_string()
    };
    let fragment = htmx_post(&mut web, &format!("/notifications/{seq}/read"), &[]).await;
    assert_eq!(fragment.status, StatusCode::OK, "{}", fragment.html);
    assert!(fragment.html.contains("hx-swap-oob"));
    assert_eq!(unread_count(&fragment), "2");
    assert!(!fragment.html.contains("<html"), "a fragment, not a page");
    assert_eq!(unread_count(&web.get("/notifications").await), "2");
    // Someone else's notification (or none): not found.
    let missing = htmx_post(&mut web, "/notifications/999999/read", &[]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let all = htmx_post(&mut web, "/notifications/read-all", &[("cursor", "")]).await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(unread_count(&all), "0");
    assert!(all.html.contains("id=\"inbox\""));
    assert!(!all.html.contains("notification unread"));
    let home = web.get("/").await;
    assert_eq!(unread_count(&home), "0");
    assert!(home.html.contains("class=\"count zero\""));
    // Without script, the forms redirect back.
    let plain = web.post("/notifications/read-all", &[]).await;
    assert_eq!(plain.location(), "/notifications");
    // Paging: a bad cursor is refused, not a server error.
    let bad = web.get("/notifications?cursor=nonsense").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn the_profile_changes_name_email_and_password_and_revokes_sessions() {
    let server = TestServer::spawn().await;
    let (mut web, api) = web_user(&server, "Pat").await;

    let page = web.get("/profile").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("This browser"));
    assert_eq!(page.html.matches("class=\"item-row session").count(), 2);

    let renamed = web.post("/profile/name", &[("name", "Patricia")]).await;
    assert_eq!(renamed.location(), "/profile?saved=name");
    assert!(
        web.get("/profile?saved=name")
            .await
            .html
            .contains("value=\"Patricia\"")
    );
    let empty = web.post("/profile/name", &[("name", " ")]).await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(empty.html.contains("id=\"profile-name-error\""));

    // A wrong current password: 422, and the password is unchanged.
    let wrong = web
        .post(
            "/profile/password",
            &[
                ("current_password", "not my password"),
                ("password", "a brand new password"),
                ("confirm", "a brand new password"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        wrong.html.contains("Current password is incorrect."),
        "{}",
        wrong.html
    );
    let mismatch = web
        .post(
            "/profile/password",
            &[
                ("current_password", PASSWORD),
                ("password", "a brand new password"),
                ("confirm", "another new password"),
            ],
        )
        .await;
    assert_eq!(mismatch.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(mismatch.html.contains("id=\"password-confirm-error\""));
    assert_eq!(
        server.login(&api.email, PASSWORD).await.status,
        StatusCode::OK,
        "the password is unchanged"
    );
    let no_password = web
        .post(
            "/profile/email",
            &[("email", "new@example.com"), ("current_password", "")],
        )
        .await;
    assert_eq!(no_password.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        no_password
            .html
            .contains("id=\"email-current-password-error\"")
    );
    let me = server.get("/api/users/me", Some(&api.token)).await;
    assert_eq!(me.ok()["email"], api.email.as_str());

    // Another session is revoked from here.
    let other = server.login_ok(&api.email).await;
    let revoked = web
        .post(
            &format!("/profile/sessions/{}/revoke", other.session_id),
            &[],
        )
        .await;
    assert_eq!(revoked.location(), "/profile#sessions");
    server.assert_signed_out(&other).await;

    // A password change keeps this browser and signs out the rest.
    let changed = web
        .post(
            "/profile/password",
            &[
                ("current_password", PASSWORD),
                ("password", "a brand new password"),
                ("confirm", "a brand new password"),
            ],
        )
        .await;
    assert_eq!(changed.location(), "/profile?saved=password");
    server.assert_signed_out(&api).await;
    let page = web.get("/profile").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.html.matches("class=\"item-row session").count(), 1);

    // Revoking this browser's own session signs it out.
    let own = id_after(&page, "action=\"/profile/sessions/");
    let out = web
        .post(&format!("/profile/sessions/{own}/revoke"), &[])
        .await;
    assert_eq!(out.location(), "/signin");
    assert!(web.cookie.is_none());
    assert_eq!(
        web.get("/profile").await.location(),
        "/signin?next=%2Fprofile"
    );
}

#[tokio::test]
async fn team_and_project_names_are_escaped() {
    let server = TestServer::spawn().await;
    let (mut web, _) = web_user(&server, "Eve").await;
    let team = create_team(&mut web, "<script>alert(1)</script>").await;
    let project = create_project(&mut web, &team, "<img src=x onerror=alert(2)>").await;
    for path in [
        "/teams".to_string(),
        format!("/teams/{team}"),
        "/projects".to_string(),
        format!("/projects/{project}/settings"),
    ] {
        let page = web.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(!page.html.contains("<script>alert"), "{path}");
        assert!(!page.html.contains("<img src=x"), "{path}");
    }
    assert!(
        web.get("/teams")
            .await
            .html
            .contains("&#60;script&#62;alert(1)&#60;/script&#62;")
    );
}

#[tokio::test]
async fn every_form_of_these_pages_needs_the_csrf_token() {
    let server = TestServer::spawn().await;
    let (mut web, api) = web_user(&server, "Cleo").await;
    let other = server.register_as("dora@example.com", "Dora").await;
    let team = create_team(&mut web, "Guarded").await;
    let project = create_project(&mut web, &team, "Kept").await;
    let invite = server
        .post(
            "/api/teams/invite",
            Some(&api.token),
            json!({"team_id": team, "email": other.email, "role": "member"}),
        )
        .await;
    let invitation = invite.ok()["id"].as_str().unwrap().to_string();
    let origin = web.base.trim_end_matches('/').to_string();
    let uid = &api.user_id;
    let sid = &api.session_id;
    let paths = [
        "/teams".to_string(),
        format!("/teams/{team}"),
        format!("/teams/{team}/delete"),
        format!("/teams/{team}/invite"),
        format!("/teams/{team}/members/{uid}/role"),
        format!("/teams/{team}/members/{uid}/remove"),
        format!("/teams/{team}/invitations/{invitation}/revoke"),
        format!("/invitations/{invitation}/accept"),
        format!("/invitations/{invitation}/decline"),
        "/projects".to_string(),
        format!("/projects/{project}/settings"),
        format!("/projects/{project}/settings/archive"),
        format!("/projects/{project}/settings/reactivate"),
        format!("/projects/{project}/settings/delete"),
        "/notifications/read-all".to_string(),
        "/notifications/1/read".to_string(),
        "/profile/name".to_string(),
        "/profile/email".to_string(),
        "/profile/password".to_string(),
        format!("/profile/sessions/{sid}/revoke"),
    ];
    for path in &paths {
        let page = web
            .post_raw(
                path,
                &[("name", "Hijacked"), ("role", "member")],
                &[("origin", &origin)],
            )
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
    }
    // Nothing happened.
    let team_page = web.get(&format!("/teams/{team}")).await;
    assert_eq!(team_page.status, StatusCode::OK);
    assert!(team_page.html.contains("<h1>Guarded</h1>"));
    assert!(
        team_page.html.contains(&other.email),
        "the invitation is pending"
    );
    let settings = web.get(&format!("/projects/{project}/settings")).await;
    assert!(settings.html.contains("Settings of Kept"));
    let me = server
        .call(Method::GET, "/api/users/me", Some(&api.token), None)
        .await;
    assert_eq!(me.ok()["name"], "Cleo");
}

#[tokio::test]
async fn the_accept_link_needs_its_token_and_survives_signing_up() {
    let server = TestServer::spawn().await;
    let (mut owner, owner_api) = web_user(&server, "Olga").await;
    let team = create_team(&mut owner, "Harbor").await;
    let invite = server
        .invite(&team, &owner_api, "newcomer@example.com", "member")
        .await;
    let link = invite["accept_url"].as_str().unwrap().to_string();
    let token = invite["token"].as_str().unwrap();

    // Someone with a wrong token, or none, gets the plain 404 page, as for any dead link.
    let (mut stranger, _) = web_user(&server, "Sam").await;
    let last = if token.ends_with('0') { "1" } else { "0" };
    let wrong = format!(
        "/invitations/accept?token={}{last}",
        &token[..token.len() - 1]
    );
    for path in [
        wrong.as_str(),
        "/invitations/accept",
        "/invitations/accept?token=x",
    ] {
        let page = stranger.get(path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        assert!(!page.html.contains("Harbor"));
    }
    let id = invite["id"].as_str().unwrap();
    let probe = stranger
        .post(&format!("/invitations/{id}/accept"), &[("token", "")])
        .await;
    assert_eq!(probe.status, StatusCode::NOT_FOUND);

    // Signed out, the link goes through sign-in, whose registration link keeps it; the new
    // account comes back to the accept page and answers there.
    let mut newcomer = WebClient::new(&server);
    let signin = newcomer.get(&link).await;
    assert_eq!(signin.status, StatusCode::SEE_OTHER);
    let signin = newcomer.get(signin.location()).await;
    let register = signin
        .attribute_after("New here?", "href")
        .expect("a registration link");
    assert!(register.starts_with("/register?next="), "{register}");
    let form = newcomer.get(&register.replace("&#38;", "&")).await;
    let next = form.attribute_after("name=\"next\"", "value").unwrap();
    let created = newcomer
        .post(
            "/register",
            &[
                ("name", "Nora"),
                ("email", "someone-else@example.com"),
                ("password", PASSWORD),
                ("next", &next),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.html);
    assert_eq!(created.location(), link);
    let offer = newcomer.get(&link).await;
    assert_eq!(offer.status, StatusCode::OK, "{}", offer.html);
    assert!(offer.html.contains("<h1>Join Harbor</h1>"));
    assert!(offer.html.contains(&format!("value=\"{token}\"")));
    // Claimed by the newcomer, the same link shows the stranger nothing.
    assert_eq!(stranger.get(&link).await.status, StatusCode::NOT_FOUND);
    let declined = newcomer
        .post(&format!("/invitations/{id}/decline"), &[("token", token)])
        .await;
    assert_eq!(declined.status, StatusCode::SEE_OTHER, "{}", declined.html);
    assert_eq!(declined.location(), "/teams");
    let gone = newcomer.get(&link).await;
    assert_eq!(gone.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(gone.html.contains("already answered"), "{}", gone.html);
}

#[tokio::test]
async fn the_accept_page_refuses_what_the_inviter_may_no_longer_grant() {
    let server = TestServer::spawn().await;
    let (mut owner, owner_api) = web_user(&server, "Olga").await;
    let (_, admin_api) = web_user(&server, "Ada").await;
    let (mut invitee, _) = web_user(&server, "Ivan").await;
    let team = create_team(&mut owner, "Guild").await;
    server
        .add_member(&team, &owner_api, &admin_api, "admin")
        .await;
    let invite = server
        .invite(&team, &admin_api, "ivan@example.com", "admin")
        .await;
    let link = invite["accept_url"].as_str().unwrap();
    let id = invite["id"].as_str().unwrap();
    assert_eq!(invitee.get(link).await.status, StatusCode::OK);
    // The inviter is demoted through the team page before the invitee accepts.
    let demoted = owner
        .post(
            &format!("/teams/{team}/members/{}/role", admin_api.user_id),
            &[("role", "member")],
        )
        .await;
    assert_eq!(demoted.status, StatusCode::SEE_OTHER);
    let refused = invitee
        .post(&format!("/invitations/{id}/accept"), &[])
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.html.contains("invite you again"),
        "{}",
        refused.html
    );
    assert_eq!(
        invitee.get(&format!("/teams/{team}")).await.status,
        StatusCode::NOT_FOUND
    );
    // The invitation is still the invitee's, on their Teams page.
    assert!(invitee.get("/teams").await.html.contains("Guild"));
}
