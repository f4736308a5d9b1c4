//! Projects: who sees and changes them, archiving, paging across teams, cascades.

use reqwest::Method;
use serde_json::json;

use crate::common::{Account, TestServer};
use crate::tasks::Expect;

struct Cast {
    team: String,
    owner: Account,
    admin: Account,
    creator: Account,
    member: Account,
    outsider: Account,
}

async fn cast(server: &TestServer) -> Cast {
    let (owner, admin, creator, member, outsider) = (
        server.register().await,
        server.register().await,
        server.register().await,
        server.register().await,
        server.register().await,
    );
    let team = server.create_team(&owner, "Projects").await;
    server.add_member(&team, &owner, &admin, "admin").await;
    server.add_member(&team, &owner, &creator, "member").await;
    server.add_member(&team, &owner, &member, "member").await;
    Cast {
        team,
        owner,
        admin,
        creator,
        member,
        outsider,
    }
}

async fn create(server: &TestServer, by: &Account, team: &str, name: &str) -> String {
    let reply = server
        .post(
            "/api/projects",
            Some(&by.token),
            json!({"team_id": team, "name": name}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn members_create_and_see_projects_outsiders_do_not() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let id = create(&server, &c.creator, &c.team, "Launch").await;
    let path = format!("/api/projects/{id}");
    let seen = server.get(&path, Some(&c.member.token)).await;
    assert_eq!(seen.ok()["status"], "active");
    assert_eq!(seen.body["can_edit"], false);
    assert_eq!(seen.headers["etag"], "\"1\"");
    assert_eq!(
        server.get(&path, Some(&c.creator.token)).await.ok()["can_edit"],
        true
    );
    assert_eq!(
        server.get(&path, Some(&c.admin.token)).await.ok()["can_edit"],
        true
    );
    server
        .get(&path, Some(&c.outsider.token))
        .await
        .problem(404, "not_found");
    server
        .post(
            "/api/projects",
            Some(&c.outsider.token),
            json!({"team_id": c.team, "name": "Sneaky"}),
        )
        .await
        .problem(404, "not_found");
    let nowhere = json!({"team_id": uuid::Uuid::now_v7(), "name": "Nowhere"});
    server
        .post("/api/projects", Some(&c.owner.token), nowhere)
        .await
        .problem(404, "not_found");
    assert!(
        server
            .get("/api/projects", Some(&c.outsider.token))
            .await
            .ok()["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn the_creator_and_team_managers_edit_other_members_do_not() {
    use Expect::{Forbidden, Gone, NotFound, Ok};
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let id = create(&server, &c.creator, &c.team, "Launch").await;
    let path = format!("/api/projects/{id}");
    // (who, how, may rename); each success is one more version.
    let renames = [
        ("creator", &c.creator, Method::PATCH, Ok),
        ("admin", &c.admin, Method::PUT, Ok),
        ("owner", &c.owner, Method::PATCH, Ok),
        ("member", &c.member, Method::PATCH, Forbidden),
        ("outsider", &c.outsider, Method::PATCH, NotFound),
    ];
    for (name, who, method, expect) in renames {
        let body = json!({"name": format!("By {name}")});
        let reply = server
            .call(method.clone(), &path, Some(&who.token), Some(body))
            .await;
        expect.check(&reply, &format!("{name} {method}"));
        if name == "owner" {
            assert_eq!(reply.ok()["version"], 4);
        }
    }
    // (who, may delete); the last one does.
    let deletes = [
        ("member", &c.member, Forbidden),
        ("outsider", &c.outsider, NotFound),
        ("admin", &c.admin, Gone),
    ];
    for (name, who, expect) in deletes {
        let reply = server
            .call(Method::DELETE, &path, Some(&who.token), None)
            .await;
        expect.check(&reply, &format!("{name} DELETE"));
    }
    server
        .get(&path, Some(&c.creator.token))
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn an_archived_project_is_read_only_until_reactivated() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let id = create(&server, &c.creator, &c.team, "Old").await;
    let path = format!("/api/projects/{id}");
    let archived = server
        .call(
            Method::PATCH,
            &path,
            Some(&c.creator.token),
            Some(json!({"status": "archived"})),
        )
        .await;
    assert_eq!(archived.ok()["status"], "archived");
    server
        .call(
            Method::PATCH,
            &path,
            Some(&c.creator.token),
            Some(json!({"name": "Renamed"})),
        )
        .await
        .problem(409, "project_archived");
    let revived = server
        .call(
            Method::PATCH,
            &path,
            Some(&c.creator.token),
            Some(json!({"status": "active", "name": "Revived"})),
        )
        .await;
    assert_eq!(
        (
            revived.ok()["status"].as_str(),
            revived.body["name"].as_str()
        ),
        (Some("active"), Some("Revived"))
    );
    server
        .call(
            Method::PATCH,
            &path,
            Some(&c.creator.token),
            Some(json!({"status": "paused"})),
        )
        .await
        .problem(422, "validation_failed");
}

#[tokio::test]
async fn listing_spans_all_my_teams_and_pages_cleanly() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let other_team = server.create_team(&c.member, "Second").await;
    let mut expected = Vec::new();
    for i in 0..3 {
        expected.push(create(&server, &c.member, &c.team, &format!("First {i}")).await);
        expected.push(create(&server, &c.member, &other_team, &format!("Second {i}")).await);
    }
    create(
        &server,
        &c.outsider,
        &server.create_team(&c.outsider, "Elsewhere").await,
        "Hidden",
    )
    .await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(next) => format!("/api/projects?limit=4&cursor={next}"),
            None => "/api/projects?limit=4".to_string(),
        };
        let body = server.get(&path, Some(&c.member.token)).await.ok().clone();
        seen.extend(
            body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_str().unwrap().to_string()),
        );
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(
        seen, expected,
        "every project of my teams once, in creation order"
    );
    let only_second = server
        .get(
            &format!("/api/projects?team_id={other_team}"),
            Some(&c.member.token),
        )
        .await
        .ok()
        .clone();
    assert_eq!(only_second["items"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn stale_if_match_and_not_modified() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let id = create(&server, &c.creator, &c.team, "Versioned").await;
    let url = server.url(&format!("/api/projects/{id}"));
    let save = |tag: &str, name: &str| {
        server
            .client
            .patch(&url)
            .bearer_auth(&c.creator.token)
            .header("if-match", tag)
            .json(&json!({"name": name}))
            .send()
    };
    let (a, b) = tokio::join!(save("\"1\"", "A"), save("\"1\"", "B"));
    let mut statuses = [a.unwrap().status().as_u16(), b.unwrap().status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 412]);
    let stale = TestServer::reply(save("\"1\"", "C").await.unwrap()).await;
    let problem = stale.problem(412, "precondition_failed");
    assert_eq!(
        problem["current"]["version"], 2,
        "412 carries the current project"
    );
    assert_eq!(stale.headers["etag"], "\"2\"");
    let cached = server
        .client
        .get(&url)
        .bearer_auth(&c.member.token)
        .header("if-none-match", "\"2\"")
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);
}

#[tokio::test]
async fn deleting_the_team_deletes_its_projects() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let id = create(&server, &c.creator, &c.team, "Doomed").await;
    assert_eq!(
        server
            .call(
                Method::DELETE,
                &format!("/api/teams/{}", c.team),
                Some(&c.owner.token),
                None
            )
            .await
            .status,
        204
    );
    server
        .get(&format!("/api/projects/{id}"), Some(&c.owner.token))
        .await
        .problem(404, "not_found");
    assert!(
        server
            .get("/api/projects", Some(&c.creator.token))
            .await
            .ok()["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn project_input_is_validated() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let reply = server
        .post(
            "/api/projects",
            Some(&c.member.token),
            json!({"team_id": c.team, "name": "", "description": "x".repeat(10_001)}),
        )
        .await;
    let mut fields = reply.invalid_fields();
    fields.sort();
    assert_eq!(fields, ["description", "name"]);
    server
        .post(
            "/api/projects",
            Some(&c.member.token),
            json!({"team_id": "nope", "name": "x"}),
        )
        .await
        .problem(422, "validation_failed");
    server
        .get("/api/projects/nope", Some(&c.member.token))
        .await
        .problem(400, "invalid_parameter");
}
