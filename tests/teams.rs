//! Teams and members: the permission matrix, roles, lost updates and cascades.

use reqwest::Method;
use serde_json::json;

use crate::common::{Account, TestServer, test_config};
use crate::tasks::Expect;

/// A team with one member of each role, and an outsider.
struct Cast {
    team: String,
    owner: Account,
    admin: Account,
    member: Account,
    outsider: Account,
}

async fn cast(server: &TestServer) -> Cast {
    let (owner, admin, member, outsider) = (
        server.register().await,
        server.register().await,
        server.register().await,
        server.register().await,
    );
    let team = server.create_team(&owner, "Platform").await;
    server.add_member(&team, &owner, &admin, "admin").await;
    server.add_member(&team, &owner, &member, "member").await;
    Cast {
        team,
        owner,
        admin,
        member,
        outsider,
    }
}

#[tokio::test]
async fn the_creator_owns_the_team_and_only_members_see_it() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let path = format!("/api/teams/{}", c.team);
    let reply = server.get(&path, Some(&c.owner.token)).await;
    assert_eq!(reply.ok()["my_role"], "owner");
    assert_eq!(reply.headers["etag"], "\"1\"");
    assert_eq!(
        server.get(&path, Some(&c.admin.token)).await.ok()["my_role"],
        "admin"
    );
    assert_eq!(
        server.get(&path, Some(&c.member.token)).await.ok()["my_role"],
        "member"
    );
    server
        .get(&path, Some(&c.outsider.token))
        .await
        .problem(404, "not_found");
    let unknown = format!("/api/teams/{}", uuid::Uuid::now_v7());
    let missing = server.get(&unknown, Some(&c.owner.token)).await;
    assert_eq!(
        missing.body,
        server.get(&path, Some(&c.outsider.token)).await.body,
        "no existence leak"
    );

    let list = server
        .get("/api/teams", Some(&c.member.token))
        .await
        .ok()
        .clone();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["id"], c.team.as_str());
    assert!(
        server.get("/api/teams", Some(&c.outsider.token)).await.ok()["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn update_and_delete_rights() {
    use Expect::{Forbidden, Gone, NotFound, Ok};
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let path = format!("/api/teams/{}", c.team);
    // (who, may rename); each success is one more version.
    let renames = [
        ("owner", &c.owner, Ok),
        ("admin", &c.admin, Ok),
        ("member", &c.member, Forbidden),
        ("outsider", &c.outsider, NotFound),
    ];
    for (name, who, expect) in renames {
        let body = json!({"name": format!("By {name}")});
        let reply = server
            .call(Method::PATCH, &path, Some(&who.token), Some(body))
            .await;
        expect.check(&reply, &format!("{name} PATCH"));
        match name {
            "owner" => assert_eq!(reply.ok()["name"], "By owner"),
            "admin" => assert_eq!(reply.ok()["version"], 3),
            _ => {}
        }
    }
    // (who, may delete); the last one does.
    let deletes = [
        ("admin", &c.admin, Forbidden),
        ("member", &c.member, Forbidden),
        ("outsider", &c.outsider, NotFound),
        ("owner", &c.owner, Gone),
    ];
    for (name, who, expect) in deletes {
        let reply = server
            .call(Method::DELETE, &path, Some(&who.token), None)
            .await;
        expect.check(&reply, &format!("{name} DELETE"));
    }
    server
        .get(&path, Some(&c.owner.token))
        .await
        .problem(404, "not_found");
    assert!(
        server.get("/api/teams", Some(&c.member.token)).await.ok()["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn members_are_listed_to_members_only() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let path = format!("/api/teams/{}/members", c.team);
    let body = server.get(&path, Some(&c.member.token)).await.ok().clone();
    let mut roles: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    roles.sort();
    assert_eq!(roles, ["admin", "member", "owner"]);
    assert!(body["items"][0]["user"]["email"].is_string());
    server
        .get(&path, Some(&c.outsider.token))
        .await
        .problem(404, "not_found");
    let paged = server
        .get(&format!("{path}?limit=2"), Some(&c.owner.token))
        .await
        .ok()
        .clone();
    assert_eq!(paged["items"].as_array().unwrap().len(), 2);
    let next = paged["next_cursor"].as_str().unwrap();
    let rest = server
        .get(
            &format!("{path}?limit=2&cursor={next}"),
            Some(&c.owner.token),
        )
        .await
        .ok()
        .clone();
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest["next_cursor"], serde_json::Value::Null);
}

#[tokio::test]
async fn roles_are_granted_up_to_your_own_and_the_last_owner_stays() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let member_path = |who: &Account| format!("/api/teams/{}/members/{}", c.team, who.user_id);
    let role = |r: &str| Some(json!({"role": r}));

    server
        .call(
            Method::PATCH,
            &member_path(&c.member),
            Some(&c.admin.token),
            role("owner"),
        )
        .await
        .problem(403, "forbidden");
    server
        .call(
            Method::PATCH,
            &member_path(&c.owner),
            Some(&c.admin.token),
            role("member"),
        )
        .await
        .problem(403, "forbidden");
    server
        .call(
            Method::PATCH,
            &member_path(&c.admin),
            Some(&c.member.token),
            role("member"),
        )
        .await
        .problem(403, "forbidden");
    server
        .call(
            Method::PATCH,
            &member_path(&c.member),
            Some(&c.outsider.token),
            role("admin"),
        )
        .await
        .problem(404, "not_found");
    server
        .call(
            Method::PATCH,
            &member_path(&c.outsider),
            Some(&c.owner.token),
            role("admin"),
        )
        .await
        .problem(404, "not_found");
    server
        .call(
            Method::PATCH,
            &member_path(&c.member),
            Some(&c.owner.token),
            role("boss"),
        )
        .await
        .problem(422, "validation_failed");

    let promoted = server
        .call(
            Method::PATCH,
            &member_path(&c.member),
            Some(&c.admin.token),
            role("admin"),
        )
        .await;
    assert_eq!(promoted.ok()["role"], "admin");
    server
        .call(
            Method::PATCH,
            &member_path(&c.owner),
            Some(&c.owner.token),
            role("admin"),
        )
        .await
        .problem(409, "last_owner");
    // With a second owner, the first may step down.
    server
        .call(
            Method::PATCH,
            &member_path(&c.admin),
            Some(&c.owner.token),
            role("owner"),
        )
        .await
        .ok();
    assert_eq!(
        server
            .call(
                Method::PATCH,
                &member_path(&c.owner),
                Some(&c.owner.token),
                role("member")
            )
            .await
            .ok()["role"],
        "member"
    );
}

#[tokio::test]
async fn leaving_and_removing_members() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let member_path = |who: &Account| format!("/api/teams/{}/members/{}", c.team, who.user_id);
    let team_path = format!("/api/teams/{}", c.team);

    server
        .call(
            Method::DELETE,
            &member_path(&c.admin),
            Some(&c.member.token),
            None,
        )
        .await
        .problem(403, "forbidden");
    server
        .call(
            Method::DELETE,
            &member_path(&c.owner),
            Some(&c.admin.token),
            None,
        )
        .await
        .problem(403, "forbidden");
    server
        .call(
            Method::DELETE,
            &member_path(&c.member),
            Some(&c.outsider.token),
            None,
        )
        .await
        .problem(404, "not_found");
    server
        .call(
            Method::DELETE,
            &member_path(&c.owner),
            Some(&c.owner.token),
            None,
        )
        .await
        .problem(409, "last_owner");

    assert_eq!(
        server
            .call(
                Method::DELETE,
                &member_path(&c.member),
                Some(&c.member.token),
                None
            )
            .await
            .status,
        204
    );
    server
        .get(&team_path, Some(&c.member.token))
        .await
        .problem(404, "not_found");
    assert_eq!(
        server
            .call(
                Method::DELETE,
                &member_path(&c.admin),
                Some(&c.owner.token),
                None
            )
            .await
            .status,
        204
    );
    server
        .get(&team_path, Some(&c.admin.token))
        .await
        .problem(404, "not_found");
    server
        .call(
            Method::DELETE,
            &member_path(&c.admin),
            Some(&c.owner.token),
            None,
        )
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn stale_if_match_gets_412_and_the_current_team() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let url = server.url(&format!("/api/teams/{}", c.team));
    let patch = |name: &str, tag: &str| {
        server
            .client
            .patch(&url)
            .bearer_auth(&c.owner.token)
            .header("if-match", tag)
            .json(&json!({"name": name}))
            .send()
    };
    // Two people save on top of version 1 at the same time: exactly one wins.
    let (a, b) = tokio::join!(patch("Alice's edit", "\"1\""), patch("Bob's edit", "\"1\""));
    let (a, b) = (
        TestServer::reply(a.unwrap()).await,
        TestServer::reply(b.unwrap()).await,
    );
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 412]);
    let loser = if a.status == 412 { &a } else { &b };
    let winner = if a.status == 200 { &a } else { &b };
    let problem = loser.problem(412, "precondition_failed");
    assert_eq!(
        problem["current"]["name"], winner.body["name"],
        "412 carries the current team"
    );
    assert_eq!(problem["current"]["version"], 2);
    assert_eq!(loser.headers["etag"], "\"2\"");

    let unchanged = TestServer::reply(patch("Whatever", "garbage").await.unwrap()).await;
    unchanged.problem(412, "precondition_failed");
    // If-Match compares strongly: a weak tag of the current version never matches.
    let weak = TestServer::reply(patch("Weak", "W/\"2\"").await.unwrap()).await;
    assert_eq!(
        weak.problem(412, "precondition_failed")["current"]["version"],
        2
    );
    let current = TestServer::reply(patch("Fresh", "\"2\"").await.unwrap()).await;
    assert_eq!(current.ok()["version"], 3);

    let not_modified = server
        .client
        .get(&url)
        .bearer_auth(&c.member.token)
        .header("if-none-match", "\"3\"")
        .send()
        .await
        .unwrap();
    assert_eq!(not_modified.status(), 304);
    let modified = server
        .client
        .get(&url)
        .bearer_auth(&c.member.token)
        .header("if-none-match", "\"2\"")
        .send()
        .await
        .unwrap();
    assert_eq!(modified.status(), 200);

    let stale_delete = server
        .client
        .delete(&url)
        .bearer_auth(&c.owner.token)
        .header("if-match", "\"1\"")
        .send()
        .await
        .unwrap();
    let stale_delete = TestServer::reply(stale_delete).await;
    assert_eq!(
        stale_delete.problem(412, "precondition_failed")["current"]["version"],
        3
    );
    assert_eq!(stale_delete.headers["etag"], "\"3\"");
    server
        .get(&format!("/api/teams/{}", c.team), Some(&c.owner.token))
        .await
        .ok();
}

#[tokio::test]
async fn team_input_is_validated() {
    let server = TestServer::spawn().await;
    let owner = server.register().await;
    let reply = server
        .post(
            "/api/teams",
            Some(&owner.token),
            json!({"name": " ", "description": "x".repeat(2001)}),
        )
        .await;
    let mut fields = reply.invalid_fields();
    fields.sort();
    assert_eq!(fields, ["description", "name"]);
    server
        .post("/api/teams", Some(&owner.token), json!({"name": 5}))
        .await
        .problem(422, "validation_failed");
    server
        .get("/api/teams/not-a-uuid", Some(&owner.token))
        .await
        .problem(400, "invalid_parameter");
    server
        .post("/api/teams", None, json!({"name": "x"}))
        .await
        .problem(401, "unauthenticated");
}

#[tokio::test]
async fn every_team_change_is_in_the_change_log() {
    let tmp = tempfile::tempdir().unwrap();
    let config = test_config(tmp.path());
    let server = TestServer::spawn_with(config.clone()).await;
    let owner = server.register().await;
    let team = server.create_team(&owner, "Logged").await;
    server
        .call(
            Method::PATCH,
            &format!("/api/teams/{team}"),
            Some(&owner.token),
            Some(json!({"name": "Renamed"})),
        )
        .await
        .ok();
    server.stop().await;

    let store = tasker::store::Store::open(&config.db_path()).unwrap();
    let id: uuid::Uuid = team.parse().unwrap();
    let changes = store.changes_of_entity(id.as_u128(), None, 10).unwrap();
    assert_eq!(changes.len(), 2);
    assert!(changes[0].seq < changes[1].seq);
    let rename = &changes[1].change.fields[0];
    assert_eq!(
        (rename.field.as_str(), &rename.before, &rename.after),
        ("name", &json!("Logged"), &json!("Renamed"))
    );
    assert_eq!(changes[1].change.actor.to_string(), owner.user_id);
}
