//! The notification inbox: who hears what, never about their own actions, reading, paging.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Account, TestServer};
use crate::tasks::{cast, new_task};

/// Marks everything read, so a test sees only the news it causes (`?unread=true`).
async fn clear(server: &TestServer, people: &[&Account]) {
    for who in people {
        let reply = server
            .post("/api/notifications/read-all", Some(&who.token), json!({}))
            .await;
        assert_eq!(reply.status, 204);
    }
}

async fn news(server: &TestServer, who: &Account) -> Value {
    inbox(server, who, "?unread=true").await
}

async fn inbox(server: &TestServer, who: &Account, query: &str) -> Value {
    server
        .get(&format!("/api/notifications{query}"), Some(&who.token))
        .await
        .ok()
        .clone()
}

fn kinds(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn task_people_hear_of_changes_and_nobody_of_their_own() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    clear(
        &server,
        &[
            &c.owner,
            &c.admin,
            &c.creator,
            &c.assignee,
            &c.member,
            &c.outsider,
        ],
    )
    .await;
    let task = new_task(
        &server,
        &c.creator,
        json!({"title": "Ship it", "project_id": c.project, "assignee_ids": [c.assignee.user_id]}),
    )
    .await;
    let id = task["id"].as_str().unwrap();
    let path = format!("/api/tasks/{id}");

    let assigned = news(&server, &c.assignee).await;
    assert_eq!(kinds(&assigned), ["task_assigned"]);
    assert_eq!(assigned["unread_count"], 1);
    let first = &assigned["items"][0];
    assert_eq!(first["task_id"], id);
    assert_eq!(first["actor_id"], c.creator.user_id.as_str());
    assert_eq!(first["subject"], "Ship it");
    assert_eq!(first["read"], false);
    assert!(
        kinds(&news(&server, &c.creator).await).is_empty(),
        "not for your own action"
    );

    // The assignee moves it: the creator hears which field changed.
    let moved = server
        .call(
            Method::PATCH,
            &path,
            Some(&c.assignee.token),
            Some(json!({"status": "in_progress", "description": "notes"})),
        )
        .await;
    assert_eq!(moved.status, 200);
    let updated = news(&server, &c.creator).await;
    assert_eq!(kinds(&updated), ["task_updated"]);
    assert_eq!(updated["items"][0]["fields"], json!(["status"]));
    assert_eq!(kinds(&news(&server, &c.assignee).await), ["task_assigned"]);

    // A description-only edit is not news.
    server
        .call(
            Method::PATCH,
            &path,
            Some(&c.assignee.token),
            Some(json!({"description": "more"})),
        )
        .await;
    assert_eq!(kinds(&news(&server, &c.creator).await), ["task_updated"]);

    // Reassigned: one hears they are off it, the other that they are on it (not "updated").
    let reassigned = server
        .call(
            Method::PATCH,
            &path,
            Some(&c.owner.token),
            Some(json!({"assignee_ids": [c.member.user_id], "priority": "high"})),
        )
        .await;
    assert_eq!(reassigned.status, 200);
    assert_eq!(
        kinds(&news(&server, &c.assignee).await),
        ["task_unassigned", "task_assigned"]
    );
    assert_eq!(kinds(&news(&server, &c.member).await), ["task_assigned"]);
    assert_eq!(
        kinds(&news(&server, &c.creator).await),
        ["task_updated", "task_updated"]
    );

    // Comments and files reach the task's people, not the rest of the team.
    let commented = server
        .post(
            &format!("{path}/comments"),
            Some(&c.member.token),
            json!({"body": "on it"}),
        )
        .await;
    assert_eq!(commented.status, 201);
    assert_eq!(kinds(&news(&server, &c.creator).await)[0], "comment_added");
    let uploaded = server
        .upload(id, &c.member.token, &[("plan.txt", b"plan")])
        .await;
    assert_eq!(uploaded.status, 201);
    let latest = news(&server, &c.creator).await;
    assert_eq!(kinds(&latest)[0], "attachment_added");
    assert_eq!(latest["items"][0]["subject"], "plan.txt");
    assert!(kinds(&news(&server, &c.admin).await).is_empty());
    assert!(kinds(&news(&server, &c.outsider).await).is_empty());

    let deleted = server
        .call(Method::DELETE, &path, Some(&c.creator.token), None)
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(kinds(&news(&server, &c.member).await)[0], "task_deleted");
}

#[tokio::test]
async fn invitations_and_removals_are_news() {
    let server = TestServer::spawn().await;
    let owner = server.register().await;
    let guest = server.register().await;
    let team = server.create_team(&owner, "Crew").await;
    let invited = server
        .post(
            "/api/teams/invite",
            Some(&owner.token),
            json!({"team_id": team, "email": guest.email, "role": "member"}),
        )
        .await;
    assert_eq!(invited.status, 201, "{}", invited.body);
    let news = inbox(&server, &guest, "").await;
    assert_eq!(kinds(&news), ["team_invited"]);
    assert_eq!(news["items"][0]["subject"], "Crew");
    assert_eq!(news["items"][0]["team_id"], team.as_str());

    let token = invited.body["token"].as_str().unwrap();
    let accepted = server.with_token("accept", &guest, token).await;
    assert!(accepted.status.is_success(), "{}", accepted.body);
    assert_eq!(
        kinds(&inbox(&server, &owner, "").await),
        ["invitation_accepted"]
    );

    let removed = server
        .call(
            Method::DELETE,
            &format!("/api/teams/{team}/members/{}", guest.user_id),
            Some(&owner.token),
            None,
        )
        .await;
    assert_eq!(removed.status, 204);
    assert_eq!(
        kinds(&inbox(&server, &guest, "").await),
        ["member_removed", "team_invited"]
    );
}

#[tokio::test]
async fn reading_paging_and_privacy() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let joined = inbox(&server, &c.assignee, "").await;
    assert_eq!(
        kinds(&joined),
        ["team_invited"],
        "the cast joined by invitation"
    );
    for i in 0..5 {
        new_task(
            &server,
            &c.creator,
            json!({"title": format!("Task {i}"), "project_id": c.project, "assignee_ids": [c.assignee.user_id]}),
        )
        .await;
    }
    let all = inbox(&server, &c.assignee, "?limit=2").await;
    assert_eq!(all["unread_count"], 6);
    let subjects = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["subject"].as_str().unwrap().to_string())
            .collect()
    };
    let mut seen = subjects(&all);
    let mut cursor = all["next_cursor"].as_str().map(str::to_string);
    while let Some(next) = cursor {
        let page = inbox(&server, &c.assignee, &format!("?limit=2&cursor={next}")).await;
        seen.extend(subjects(&page));
        cursor = page["next_cursor"].as_str().map(str::to_string);
    }
    assert_eq!(
        seen,
        ["Task 4", "Task 3", "Task 2", "Task 1", "Task 0", "Tasks"],
        "newest first (the last is the invitation to the team)"
    );

    let newest = all["items"][0]["id"].as_u64().unwrap();
    let path = format!("/api/notifications/{newest}/read");
    server
        .post(&path, Some(&c.member.token), json!({}))
        .await
        .problem(404, "not_found");
    let read = server.post(&path, Some(&c.assignee.token), json!({})).await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.body["read"], true);
    let unread = inbox(&server, &c.assignee, "?unread=true").await;
    assert_eq!(unread["unread_count"], 5);
    assert_eq!(
        subjects(&unread),
        ["Task 3", "Task 2", "Task 1", "Task 0", "Tasks"]
    );

    let all_read = server
        .post(
            "/api/notifications/read-all",
            Some(&c.assignee.token),
            json!({}),
        )
        .await;
    assert_eq!(all_read.status, 204);
    let after = inbox(&server, &c.assignee, "?unread=true").await;
    assert_eq!(after["unread_count"], 0);
    assert!(kinds(&after).is_empty());
    assert_eq!(
        kinds(&inbox(&server, &c.assignee, "").await).len(),
        6,
        "read, not gone"
    );

    server
        .post(
            "/api/notifications/not-a-number/read",
            Some(&c.assignee.token),
            json!({}),
        )
        .await
        .problem(400, "invalid_parameter");
    server
        .get("/api/notifications?cursor=%%%", Some(&c.assignee.token))
        .await
        .problem(422, "validation_failed");
}

#[tokio::test]
async fn someone_who_left_the_team_hears_nothing_more_of_its_tasks() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let task = new_task(
        &server,
        &c.creator,
        json!({"title": "Left behind", "project_id": c.project, "assignee_ids": [c.assignee.user_id]}),
    )
    .await;
    let id = task["id"].as_str().unwrap();
    let leave = format!("/api/teams/{}/members/{}", c.team, c.creator.user_id);
    let left = server
        .call(Method::DELETE, &leave, Some(&c.creator.token), None)
        .await;
    assert_eq!(left.status, 204);
    clear(&server, &[&c.creator]).await;
    let commented = server
        .post(
            &format!("/api/tasks/{id}/comments"),
            Some(&c.assignee.token),
            json!({"body": "still here?"}),
        )
        .await;
    assert_eq!(commented.status, 201);
    assert!(kinds(&news(&server, &c.creator).await).is_empty());
}
