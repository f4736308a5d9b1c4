//! Invitations: who may invite whom, answering, revoking, and invitations that wait for a
//! registration.

use reqwest::Method;
use serde_json::json;

use crate::common::TestServer;

#[tokio::test]
async fn an_invitation_waits_for_the_email_to_register() {
    let server = TestServer::spawn().await;
    let owner = server.register().await;
    let team = server.create_team(&owner, "Waiting").await;
    let invite = server
        .post(
            "/api/teams/invite",
            Some(&owner.token),
            json!({"team_id": team, "email": "Later@Example.com", "role": "admin"}),
        )
        .await;
    assert_eq!(invite.status, 201);
    assert_eq!(invite.body["status"], "pending");
    assert_eq!(invite.body["email"], "later@example.com");

    let newcomer = server.register_as("later@example.com", "Later").await;
    let mine = server
        .get("/api/invitations", Some(&newcomer.token))
        .await
        .ok()
        .clone();
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    let id = mine["items"][0]["id"].as_str().unwrap().to_string();
    let accepted = server
        .call(
            Method::POST,
            &format!("/api/invitations/{id}/accept"),
            Some(&newcomer.token),
            None,
        )
        .await;
    assert_eq!(accepted.ok()["status"], "accepted");
    let view = server
        .get(&format!("/api/teams/{team}"), Some(&newcomer.token))
        .await
        .ok()
        .clone();
    assert_eq!(view["my_role"], "admin");
    assert!(
        server
            .get("/api/invitations", Some(&newcomer.token))
            .await
            .ok()["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Answered: it cannot be used again.
    server
        .call(
            Method::POST,
            &format!("/api/invitations/{id}/accept"),
            Some(&newcomer.token),
            None,
        )
        .await
        .problem(409, "invitation_closed");
}

#[tokio::test]
async fn who_may_invite() {
    let server = TestServer::spawn().await;
    let (owner, admin, member, outsider) = (
        server.register().await,
        server.register().await,
        server.register().await,
        server.register().await,
    );
    let team = server.create_team(&owner, "Rights").await;
    server.add_member(&team, &owner, &admin, "admin").await;
    server.add_member(&team, &owner, &member, "member").await;
    let server = &server;
    let invite = |by: &str, email: &str, role: &str| {
        let body = json!({"team_id": team, "email": email, "role": role});
        let token = by.to_string();
        async move { server.post("/api/teams/invite", Some(&token), body).await }
    };
    assert_eq!(
        invite(&admin.token, "a@example.com", "admin").await.status,
        201
    );
    invite(&admin.token, "b@example.com", "owner")
        .await
        .problem(403, "forbidden");
    invite(&member.token, "c@example.com", "member")
        .await
        .problem(403, "forbidden");
    invite(&outsider.token, "d@example.com", "member")
        .await
        .problem(404, "not_found");
    invite(&owner.token, "a@example.com", "member")
        .await
        .problem(409, "already_invited");
    invite(&owner.token, &member.email, "member")
        .await
        .problem(409, "already_member");
    invite(&owner.token, "not-an-email", "member")
        .await
        .problem(422, "validation_failed");
    invite(&owner.token, "e@example.com", "boss")
        .await
        .problem(400, "invalid_body");
    let unknown_team =
        json!({"team_id": uuid::Uuid::now_v7(), "email": "f@example.com", "role": "member"});
    server
        .post("/api/teams/invite", Some(&owner.token), unknown_team)
        .await
        .problem(404, "not_found");

    let list = format!("/api/teams/{team}/invitations");
    assert_eq!(
        server.get(&list, Some(&owner.token)).await.ok()["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    server.get(&list, Some(&admin.token)).await.ok();
    server
        .get(&list, Some(&member.token))
        .await
        .problem(403, "forbidden");
    server
        .get(&list, Some(&outsider.token))
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn only_the_invitee_answers_and_declining_closes_it() {
    let server = TestServer::spawn().await;
    let (owner, invitee, stranger) = (
        server.register().await,
        server.register().await,
        server.register().await,
    );
    let team = server.create_team(&owner, "Answers").await;
    let invite = server
        .post(
            "/api/teams/invite",
            Some(&owner.token),
            json!({"team_id": team, "email": invitee.email, "role": "member"}),
        )
        .await;
    let id = invite.body["id"].as_str().unwrap().to_string();
    for action in ["accept", "decline"] {
        let path = format!("/api/invitations/{id}/{action}");
        server
            .call(Method::POST, &path, Some(&stranger.token), None)
            .await
            .problem(404, "not_found");
        server
            .call(Method::POST, &path, Some(&owner.token), None)
            .await
            .problem(404, "not_found");
    }
    let declined = server
        .call(
            Method::POST,
            &format!("/api/invitations/{id}/decline"),
            Some(&invitee.token),
            None,
        )
        .await;
    assert_eq!(declined.ok()["status"], "declined");
    server
        .call(
            Method::POST,
            &format!("/api/invitations/{id}/accept"),
            Some(&invitee.token),
            None,
        )
        .await
        .problem(409, "invitation_closed");
    server
        .get(&format!("/api/teams/{team}"), Some(&invitee.token))
        .await
        .problem(404, "not_found");
    let unknown = format!("/api/invitations/{}/accept", uuid::Uuid::now_v7());
    server
        .call(Method::POST, &unknown, Some(&invitee.token), None)
        .await
        .problem(404, "not_found");
    // A declined invitation no longer blocks a new one.
    let again = server
        .post(
            "/api/teams/invite",
            Some(&owner.token),
            json!({"team_id": team, "email": invitee.email, "role": "member"}),
        )
        .await;
    assert_eq!(again.status, 201);
}

#[tokio::test]
async fn revoking_an_invitation() {
    let server = TestServer::spawn().await;
    let (owner, member, invitee, outsider) = (
        server.register().await,
        server.register().await,
        server.register().await,
        server.register().await,
    );
    let team = server.create_team(&owner, "Revocations").await;
    server.add_member(&team, &owner, &member, "member").await;
    let invite = server
        .post(
            "/api/teams/invite",
            Some(&owner.token),
            json!({"team_id": team, "email": invitee.email, "role": "member"}),
        )
        .await;
    let path = format!("/api/invitations/{}", invite.body["id"].as_str().unwrap());
    server
        .call(Method::DELETE, &path, Some(&member.token), None)
        .await
        .problem(403, "forbidden");
    server
        .call(Method::DELETE, &path, Some(&outsider.token), None)
        .await
        .problem(404, "not_found");
    assert_eq!(
        server
            .call(Method::DELETE, &path, Some(&owner.token), None)
            .await
            .status,
        204
    );
    assert!(
        server
            .get("/api/invitations", Some(&invitee.token))
            .await
            .ok()["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    server
        .call(
            Method::POST,
            &format!("{path}/accept"),
            Some(&invitee.token),
            None,
        )
        .await
        .problem(409, "invitation_closed");
    server
        .call(Method::DELETE, &path, Some(&owner.token), None)
        .await
        .problem(409, "invitation_closed");
}

#[tokio::test]
async fn deleting_a_team_withdraws_its_invitations() {
    let server = TestServer::spawn().await;
    let (owner, invitee) = (server.register().await, server.register().await);
    let team = server.create_team(&owner, "Short-lived").await;
    server
        .post(
            "/api/teams/invite",
            Some(&owner.token),
            json!({"team_id": team, "email": invitee.email, "role": "member"}),
        )
        .await
        .ok();
    assert_eq!(
        server
            .get("/api/invitations", Some(&invitee.token))
            .await
            .ok()["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        server
            .call(
                Method::DELETE,
                &format!("/api/teams/{team}"),
                Some(&owner.token),
                None
            )
            .await
            .status,
        204
    );
    assert!(
        server
            .get("/api/invitations", Some(&invitee.token))
            .await
            .ok()["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}
