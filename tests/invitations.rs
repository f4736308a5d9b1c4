//! Invitations: who may invite whom, the one-time accept token (holding the invited address is
//! not enough), answering, revoking, the inviter's role re-checked at accept, and an email
//! change revoking what was addressed to the old address.

use reqwest::Method;
use serde_json::json;

use crate::common::{Account, Reply, TestServer};

/// `token` with its last character changed: the right shape, the wrong secret.
fn forged(token: &str) -> String {
    let last = if token.ends_with('0') { "1" } else { "0" };
    format!("{}{last}", &token[..token.len() - 1])
}

async fn answer_by_id(server: &TestServer, who: &Account, id: &str, action: &str) -> Reply {
    let path = format!("/api/invitations/{id}/{action}");
    server
        .call(Method::POST, &path, Some(&who.token), None)
        .await
}

async fn my_invitations(server: &TestServer, who: &Account) -> Vec<serde_json::Value> {
    server.get("/api/invitations", Some(&who.token)).await.ok()["items"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn the_invite_answer_carries_a_one_time_accept_link() {
    let server = TestServer::spawn().await;
    let owner = server.register().await;
    let team = server.create_team(&owner, "Waiting").await;
    let invite = server
        .invite(&team, &owner, "Later@Example.com", "admin")
        .await;
    assert_eq!(invite["status"], "pending");
    assert_eq!(invite["email"], "later@example.com");
    let token = invite["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("tki_") && token.len() == 101, "{token}");
    assert_eq!(
        invite["accept_url"],
        format!("/invitations/accept?token={token}")
    );
    // The token is shown once: listing the team's invitations does not repeat it.
    let list = server
        .get(
            &format!("/api/teams/{team}/invitations"),
            Some(&owner.token),
        )
        .await;
    assert!(list.ok()["items"][0].get("token").is_none());
    assert!(!list.body.to_string().contains(&token[40..]));

    // Registered with the invited address: nothing to see or accept without the token.
    let newcomer = server.register_as("later@example.com", "Later").await;
    assert!(my_invitations(&server, &newcomer).await.is_empty());
    let id = invite["id"].as_str().unwrap();
    answer_by_id(&server, &newcomer, id, "accept")
        .await
        .problem(404, "not_found");

    // With the token: claimed (listed, with what it offers), then accepted by id.
    let claimed = server.with_token("claim", &newcomer, &token).await;
    let preview = claimed.ok();
    assert_eq!(preview["team_name"], "Waiting");
    assert_eq!(preview["role"], "admin");
    assert_eq!(preview["invited_by"], owner.user_id.as_str());
    let mine = my_invitations(&server, &newcomer).await;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["id"], id);
    let accepted = answer_by_id(&server, &newcomer, id, "accept").await;
    assert_eq!(accepted.ok()["status"], "accepted");
    let view = server
        .get(&format!("/api/teams/{team}"), Some(&newcomer.token))
        .await;
    assert_eq!(view.ok()["my_role"], "admin");
    assert!(my_invitations(&server, &newcomer).await.is_empty());

    // One-time: answered, the token opens nothing more, for anyone.
    server
        .with_token("accept", &newcomer, &token)
        .await
        .problem(409, "invitation_closed");
    let other = server.register().await;
    for action in ["claim", "accept", "decline"] {
        server
            .with_token(action, &other, &token)
            .await
            .problem(404, "not_found");
    }
}

#[tokio::test]
async fn someone_who_registers_the_invited_address_cannot_take_the_role() {
    let server = TestServer::spawn().await;
    let owner = server.register().await;
    let team = server.create_team(&owner, "Target").await;
    // The attacker registered the address first (nobody's address is verified), so they hear
    // of the invitation: the notice carries nothing secret.
    let attacker = server.register_as("victim@example.com", "Mallory").await;
    let invite = server
        .invite(&team, &owner, "victim@example.com", "admin")
        .await;
    let (id, token) = (
        invite["id"].as_str().unwrap(),
        invite["token"].as_str().unwrap(),
    );
    let news = server
        .get("/api/notifications", Some(&attacker.token))
        .await;
    assert_eq!(news.ok()["items"][0]["kind"], "team_invited");
    assert!(!news.body.to_string().contains(&token[40..]));
    // They cannot see it, accept it, decline it or guess the token; registering the address
    // after the invitation is no different.
    let late = server.register_as("VICTIM2@example.com", "Eve").await;
    let _ = server
        .invite(&team, &owner, "victim2@example.com", "admin")
        .await;
    for who in [&attacker, &late] {
        assert!(my_invitations(&server, who).await.is_empty());
    }
    for action in ["accept", "decline"] {
        answer_by_id(&server, &attacker, id, action)
            .await
            .problem(404, "not_found");
        server
            .with_token(action, &attacker, &forged(token))
            .await
            .problem(404, "not_found");
    }
    server
        .with_token("claim", &attacker, "tki_nonsense")
        .await
        .problem(404, "not_found");
    server
        .get(&format!("/api/teams/{team}"), Some(&attacker.token))
        .await
        .problem(404, "not_found");

    // The real invitee, with the link, joins, whatever address their account has.
    let invitee = server.register().await;
    let joined = server.with_token("accept", &invitee, token).await;
    assert_eq!(joined.ok()["status"], "accepted");
    let view = server
        .get(&format!("/api/teams/{team}"), Some(&invitee.token))
        .await;
    assert_eq!(view.ok()["my_role"], "admin");
}

#[tokio::test]
async fn a_claimed_invitation_is_its_claimants_alone() {
    let server = TestServer::spawn().await;
    let (owner, first, second) = (
        server.register().await,
        server.register().await,
        server.register().await,
    );
    let team = server.create_team(&owner, "Claims").await;
    let invite = server.invite(&team, &owner, &first.email, "member").await;
    let (id, token) = (
        invite["id"].as_str().unwrap(),
        invite["token"].as_str().unwrap(),
    );
    // The inviter opening their own link claims nothing.
    server
        .with_token("claim", &owner, token)
        .await
        .problem(409, "already_member");
    server.with_token("claim", &first, token).await.ok();
    // Claiming again is harmless; anyone else with the same link gets nothing.
    server.with_token("claim", &first, token).await.ok();
    for action in ["claim", "accept", "decline"] {
        server
            .with_token(action, &second, token)
            .await
            .problem(404, "not_found");
    }
    assert!(my_invitations(&server, &second).await.is_empty());
    // Declined by its claimant, it is closed.
    let declined = answer_by_id(&server, &first, id, "decline").await;
    assert_eq!(declined.ok()["status"], "declined");
    server
        .with_token("accept", &first, token)
        .await
        .problem(409, "invitation_closed");
    server
        .get(&format!("/api/teams/{team}"), Some(&first.token))
        .await
        .problem(404, "not_found");
    // A declined invitation no longer blocks a new one.
    server.invite(&team, &owner, &first.email, "member").await;
}

#[tokio::test]
async fn a_stranger_probing_ids_learns_nothing() {
    let server = TestServer::spawn().await;
    let (owner, invitee, stranger) = (
        server.register().await,
        server.register().await,
        server.register().await,
    );
    let team = server.create_team(&owner, "Answers").await;
    let invite = server.invite(&team, &owner, &invitee.email, "member").await;
    let id = invite["id"].as_str().unwrap();
    let unknown = uuid::Uuid::now_v7().to_string();
    // A real pending invitation and an id that names nothing answer the same, byte for byte
    // (apart from the request id).
    let strip = |reply: &Reply| {
        let mut body = reply.body.clone();
        body.as_object_mut().unwrap().remove("request_id");
        body.as_object_mut().unwrap().remove("instance");
        (reply.status, body)
    };
    for action in ["accept", "decline"] {
        for who in [&stranger, &owner, &invitee] {
            let real = answer_by_id(&server, who, id, action).await;
            let none = answer_by_id(&server, who, &unknown, action).await;
            real.problem(404, "not_found");
            assert_eq!(strip(&real), strip(&none), "{action}");
        }
    }
    // Nothing was written: the invitee still joins with the token.
    let joined = server
        .with_token("accept", &invitee, invite["token"].as_str().unwrap())
        .await;
    assert_eq!(joined.ok()["status"], "accepted");
}

#[tokio::test]
async fn an_invitation_grants_no_more_than_its_inviter_still_may() {
    let server = TestServer::spawn().await;
    let (owner, admin, invitee, member_invitee) = (
        server.register().await,
        server.register().await,
        server.register().await,
        server.register().await,
    );
    let team = server.create_team(&owner, "Ranks").await;
    server.add_member(&team, &owner, &admin, "admin").await;
    let as_admin = server.invite(&team, &admin, &invitee.email, "admin").await;
    let as_member = server
        .invite(&team, &admin, &member_invitee.email, "member")
        .await;
    let token = as_admin["token"].as_str().unwrap();
    server.with_token("claim", &invitee, token).await.ok();

    // The inviter is demoted to member before the invitee accepts.
    let demote = server
        .call(
            Method::PATCH,
            &format!("/api/teams/{team}/members/{}", admin.user_id),
            Some(&owner.token),
            Some(json!({"role": "member"})),
        )
        .await;
    assert_eq!(demote.ok()["role"], "member");
    let refused = server.with_token("accept", &invitee, token).await;
    let problem = refused.problem(409, "inviter_lacks_role");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("invite you again")
    );
    // Nothing changed: not a member, the invitation still pending and listed.
    server
        .get(&format!("/api/teams/{team}"), Some(&invitee.token))
        .await
        .problem(404, "not_found");
    assert_eq!(my_invitations(&server, &invitee).await.len(), 1);
    // A member may not invite either: the member invitation is refused the same way.
    server
        .with_token(
            "accept",
            &member_invitee,
            as_member["token"].as_str().unwrap(),
        )
        .await
        .problem(409, "inviter_lacks_role");

    // Promoted back, the same accept goes through.
    server
        .call(
            Method::PATCH,
            &format!("/api/teams/{team}/members/{}", admin.user_id),
            Some(&owner.token),
            Some(json!({"role": "admin"})),
        )
        .await
        .ok();
    let accepted = server.with_token("accept", &invitee, token).await;
    assert_eq!(accepted.ok()["status"], "accepted");

    // An inviter who left the team grants nothing.
    let later = server.register().await;
    let left = server.invite(&team, &admin, &later.email, "member").await;
    let leave = server
        .call(
            Method::DELETE,
            &format!("/api/teams/{team}/members/{}", admin.user_id),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(leave.status, 204);
    server
        .with_token("accept", &later, left["token"].as_str().unwrap())
        .await
        .problem(409, "inviter_lacks_role");
}

#[tokio::test]
async fn changing_your_email_revokes_invitations_to_the_old_one() {
    let server = TestServer::spawn().await;
    let (owner, invitee) = (server.register().await, server.register().await);
    let (team, other_team) = (
        server.create_team(&owner, "One").await,
        server.create_team(&owner, "Two").await,
    );
    let claimed = server.invite(&team, &owner, &invitee.email, "member").await;
    let unclaimed = server
        .invite(&other_team, &owner, &invitee.email, "member")
        .await;
    server
        .with_token("claim", &invitee, claimed["token"].as_str().unwrap())
        .await
        .ok();
    let changed = server
        .call(
            Method::PUT,
            "/api/auth/profile",
            Some(&invitee.token),
            Some(
                json!({"email": "moved@example.com", "current_password": crate::common::PASSWORD}),
            ),
        )
        .await;
    assert_eq!(changed.ok()["email"], "moved@example.com");

    assert!(my_invitations(&server, &invitee).await.is_empty());
    for invite in [&claimed, &unclaimed] {
        server
            .with_token("accept", &invitee, invite["token"].as_str().unwrap())
            .await
            .problem(409, "invitation_closed");
    }
    for t in [&team, &other_team] {
        let list = server
            .get(&format!("/api/teams/{t}/invitations"), Some(&owner.token))
            .await;
        assert_eq!(list.ok()["items"][0]["status"], "revoked");
    }
    // Whoever takes the old address over finds nothing, and the owner may invite it again.
    let newcomer = server.register_as(&invitee.email, "New").await;
    assert!(my_invitations(&server, &newcomer).await.is_empty());
    server.invite(&team, &owner, &invitee.email, "member").await;
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
        .problem(422, "validation_failed");
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
    let invite = server.invite(&team, &owner, &invitee.email, "member").await;
    let token = invite["token"].as_str().unwrap();
    server.with_token("claim", &invitee, token).await.ok();
    let path = format!("/api/invitations/{}", invite["id"].as_str().unwrap());
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
    assert!(my_invitations(&server, &invitee).await.is_empty());
    server
        .with_token("accept", &invitee, token)
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
    let invite = server.invite(&team, &owner, &invitee.email, "member").await;
    let token = invite["token"].as_str().unwrap();
    server.with_token("claim", &invitee, token).await.ok();
    assert_eq!(my_invitations(&server, &invitee).await.len(), 1);
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
    assert!(my_invitations(&server, &invitee).await.is_empty());
    server
        .with_token("accept", &invitee, token)
        .await
        .problem(404, "not_found");
}
