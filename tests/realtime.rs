//! The WebSocket feed: who receives what (and who nothing), notifications never for the
//! actor, resume after any frame's `cursor` or with `since` (no gap, no duplicate), a first
//! connection starting live, `reset` (with its own position), revocation and slow consumers
//! closing the socket, leaving a team, many sockets under a burst, and the messages' schemas.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::common::{Account, TestServer, test_config};
use crate::tasks::{cast, new_task};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long to wait for a message that should come.
const PATIENCE: Duration = Duration::from_secs(10);

fn ws_url(server: &TestServer, query: &str) -> String {
    format!("{}/api/ws{query}", server.url("").replacen("http", "ws", 1))
}

async fn connect(server: &TestServer, who: &Account, query: &str) -> Socket {
    let query = if query.is_empty() {
        format!("?token={}", who.token)
    } else {
        format!("{query}&token={}", who.token)
    };
    let (socket, _) = connect_async(ws_url(server, &query))
        .await
        .expect("the socket opens");
    socket
}

/// The next JSON message (pings are skipped), or `None` when the socket closed.
async fn next(socket: &mut Socket) -> Option<Value> {
    loop {
        let frame = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("a message arrives in time")?;
        match frame.expect("a frame") {
            Message::Text(text) => return Some(serde_json::from_str(&text).unwrap()),
            Message::Close(_) => return None,
            _ => {}
        }
    }
}

/// The close code the server ended the socket with.
async fn close_code(socket: &mut Socket) -> u16 {
    loop {
        let frame = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("the socket closes in time");
        match frame {
            Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
            Some(Ok(_)) => {}
            other => panic!("no close frame: {other:?}"),
        }
    }
}

/// Creates a personal task as `who` and returns its id: a marker that only `who` can see,
/// so a socket that receives it next has received nothing else in between.
async fn marker(server: &TestServer, who: &Account) -> String {
    new_task(server, who, json!({"title": "marker"})).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn kind(message: &Value) -> (&str, &str) {
    match message["type"].as_str().unwrap() {
        "change" => (
            message["entity"].as_str().unwrap(),
            message["action"].as_str().unwrap(),
        ),
        "notification" => (
            "notification",
            message["notification"]["kind"].as_str().unwrap(),
        ),
        other => (other, ""),
    }
}

#[tokio::test]
async fn a_bad_token_is_refused_before_the_upgrade() {
    let server = TestServer::spawn().await;
    let account = server.register().await;
    for query in ["", "?token=not-a-jwt"] {
        let refused = connect_async(ws_url(&server, query)).await;
        match refused {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 401, "{query}")
            }
            other => panic!("{query}: expected a 401, got {other:?}"),
        }
    }
    // With a token but no upgrade: a plain request is told what this is.
    server
        .get("/api/ws", Some(&account.token))
        .await
        .problem(426, "upgrade_required");
    server
        .get(
            &format!("/api/ws?projects=nope&token={}", account.token),
            None,
        )
        .await
        .problem(422, "validation_failed");
}

#[tokio::test]
async fn changes_reach_who_may_see_them_and_notifications_skip_the_actor() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let mut creator = connect(&server, &c.creator, "").await;
    let mut assignee = connect(&server, &c.assignee, "").await;
    let mut member = connect(&server, &c.member, "").await;
    let mut outsider = connect(&server, &c.outsider, "").await;

    let task = new_task(
        &server,
        &c.creator,
        json!({"title": "Live", "project_id": c.project, "assignee_ids": [c.assignee.user_id]}),
    )
    .await;
    let id = task["id"].as_str().unwrap();

    let created = next(&mut creator).await.unwrap();
    assert_eq!(kind(&created), ("task", "created"));
    assert_eq!(created["data"]["id"], id);
    assert_eq!(created["data"]["project_id"], c.project.as_str());
    let seq = created["seq"].as_u64().unwrap();

    let seen = next(&mut assignee).await.unwrap();
    assert_eq!(
        (kind(&seen), seen["seq"].as_u64()),
        (("task", "created"), Some(seq))
    );
    let told = next(&mut assignee).await.unwrap();
    assert_eq!(kind(&told), ("notification", "task_assigned"));
    assert_eq!(
        told["seq"].as_u64(),
        Some(seq),
        "a notification carries its change's seq"
    );
    assert_eq!(told["notification"]["task_id"], id);

    assert_eq!(kind(&next(&mut member).await.unwrap()), ("task", "created"));

    // The assignee comments: the creator sees the change and is notified; the assignee (the
    // actor) sees the change only.
    let commented = server
        .post(
            &format!("/api/tasks/{id}/comments"),
            Some(&c.assignee.token),
            json!({"body": "hi"}),
        )
        .await;
    assert_eq!(commented.status, 201);
    assert_eq!(
        kind(&next(&mut creator).await.unwrap()),
        ("comment", "created")
    );
    assert_eq!(
        kind(&next(&mut creator).await.unwrap()),
        ("notification", "comment_added")
    );
    assert_eq!(
        kind(&next(&mut assignee).await.unwrap()),
        ("comment", "created")
    );
    let mine = marker(&server, &c.assignee).await;
    assert_eq!(
        next(&mut assignee).await.unwrap()["data"]["id"],
        mine.as_str(),
        "no notification for your own comment: the next thing is the marker"
    );
    assert_eq!(
        kind(&next(&mut member).await.unwrap()),
        ("comment", "created")
    );

    // The outsider saw none of it: the first thing it receives is its own marker.
    let mine = marker(&server, &c.outsider).await;
    let first = next(&mut outsider).await.unwrap();
    assert_eq!(first["data"]["id"], mine.as_str());
}

#[tokio::test]
async fn a_client_resumes_with_since_without_gap_or_duplicate() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let mut socket = connect(&server, &c.member, "").await;
    new_task(
        &server,
        &c.creator,
        json!({"title": "one", "project_id": c.project}),
    )
    .await;
    let first = next(&mut socket).await.unwrap();
    let since = first["seq"].as_u64().unwrap();
    drop(socket);

    // Missed while away: two tasks, an assignment of the member (a notification too).
    new_task(
        &server,
        &c.creator,
        json!({"title": "two", "project_id": c.project}),
    )
    .await;
    new_task(
        &server,
        &c.creator,
        json!({"title": "three", "project_id": c.project, "assignee_ids": [c.member.user_id]}),
    )
    .await;
    let mut socket = connect(&server, &c.member, &format!("?since={since}")).await;
    // Written while the replay may be running: must come once, after the replay.
    let live = tokio::spawn({
        let (server_url, token, project) =
            (server.url(""), c.creator.token.clone(), c.project.clone());
        async move {
            reqwest::Client::new()
                .post(format!("{server_url}/api/tasks"))
                .bearer_auth(token)
                .json(&json!({"title": "four", "project_id": project}))
                .send()
                .await
                .unwrap()
        }
    });
    let mut got = Vec::new();
    while got.len() < 4 {
        let message = tokio::time::timeout(PATIENCE, next(&mut socket)).await;
        let Ok(message) = message else {
            panic!(
                "after {} messages ({got:?}), nothing more arrived",
                got.len()
            );
        };
        got.push(message.unwrap());
    }
    live.await.unwrap();
    let seqs: Vec<u64> = got.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert!(seqs.iter().all(|s| *s > since));
    assert!(seqs.windows(2).all(|w| w[0] <= w[1]), "in order: {seqs:?}");
    assert_eq!(
        got.iter().map(kind).collect::<Vec<_>>(),
        [
            ("task", "created"),
            ("task", "created"),
            ("notification", "task_assigned"),
            ("task", "created"),
        ]
    );
    let titles: Vec<&str> = got
        .iter()
        .filter(|m| m["type"] == "change")
        .map(|m| {
            m["data"]["changes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["field"] == "title")
                .unwrap()["to"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(
        titles,
        ["two", "three", "four"],
        "nothing twice, nothing missed"
    );
    let mine = marker(&server, &c.member).await;
    assert_eq!(
        next(&mut socket).await.unwrap()["data"]["id"],
        mine.as_str()
    );
}

#[tokio::test]
async fn since_out_of_reach_gets_a_reset() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = test_config(tmp.path());
    config.change_retention = Duration::from_secs(1);
    let server = TestServer::spawn_with(config).await;
    let me = server.register().await;
    marker(&server, &me).await;
    let mut from_the_future = connect(&server, &me, "?since=1000000").await;
    assert_eq!(next(&mut from_the_future).await.unwrap()["type"], "reset");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mut too_old = connect(&server, &me, "?since=0").await;
    assert_eq!(next(&mut too_old).await.unwrap()["type"], "reset");
    // Then it carries on live.
    let mine = marker(&server, &me).await;
    assert_eq!(
        next(&mut too_old).await.unwrap()["data"]["id"],
        mine.as_str()
    );
}

#[tokio::test]
async fn signing_out_closes_the_socket() {
    let server = TestServer::spawn().await;
    let me = server.register().await;
    let other = server.login_ok(&me.email).await;
    let mut socket = connect(&server, &me, "").await;
    let mut stays = connect(&server, &other, "").await;
    let out = server
        .call(Method::POST, "/api/auth/logout", Some(&me.token), None)
        .await;
    assert_eq!(out.status, 204);
    assert_eq!(close_code(&mut socket).await, 4001);
    // Another session of the same account keeps its socket.
    let mine = marker(&server, &other).await;
    assert_eq!(next(&mut stays).await.unwrap()["data"]["id"], mine.as_str());
}

#[tokio::test]
async fn leaving_a_team_ends_its_changes_at_once() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let mut socket = connect(&server, &c.member, "").await;
    let leave = format!("/api/teams/{}/members/{}", c.team, c.member.user_id);
    let left = server
        .call(Method::DELETE, &leave, Some(&c.member.token), None)
        .await;
    assert_eq!(left.status, 204);
    let gone = next(&mut socket).await.unwrap();
    assert_eq!(kind(&gone), ("membership", "deleted"));
    new_task(
        &server,
        &c.creator,
        json!({"title": "secret", "project_id": c.project}),
    )
    .await;
    let mine = marker(&server, &c.member).await;
    assert_eq!(
        next(&mut socket).await.unwrap()["data"]["id"],
        mine.as_str(),
        "the team's task after leaving is not delivered"
    );
}

#[tokio::test]
async fn a_project_filter_narrows_changes() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let other = server
        .post(
            "/api/projects",
            Some(&c.owner.token),
            json!({"team_id": c.team, "name": "Other"}),
        )
        .await;
    let other = other.ok()["id"].as_str().unwrap().to_string();
    let mut socket = connect(&server, &c.member, &format!("?projects={}", c.project)).await;
    new_task(
        &server,
        &c.creator,
        json!({"title": "elsewhere", "project_id": other}),
    )
    .await;
    let here = new_task(
        &server,
        &c.creator,
        json!({"title": "here", "project_id": c.project}),
    )
    .await;
    assert_eq!(next(&mut socket).await.unwrap()["data"]["id"], here["id"]);
}

#[tokio::test]
async fn a_slow_consumer_is_cut_off_with_4008() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = test_config(tmp.path());
    config.feed_queue = 8;
    let server = TestServer::spawn_with(config).await;
    let me = server.register().await;
    let mut socket = connect(&server, &me, "").await;
    // Never read: large events fill the socket's buffers, then the queue.
    let description = "x".repeat(20_000);
    let client = reqwest::Client::new();
    for i in 0..600 {
        let reply = client
            .post(server.url("/api/tasks"))
            .bearer_auth(&me.token)
            .json(&json!({"title": format!("big {i}"), "description": description}))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 201);
    }
    let (mut last_seq, mut last_cursor) = (0, String::new());
    // The 4008 close frame is sent if the socket still takes it: when the cut-off found the
    // socket's buffers full (this client reads nothing), the server drops the connection
    // after a short grace instead, and the client sees a reset where the frames end.
    let code = loop {
        let frame = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("the socket ends in time");
        match frame {
            Some(Ok(Message::Text(text))) => {
                let message: Value = serde_json::from_str(&text).unwrap();
                last_seq = message["seq"].as_u64().unwrap();
                last_cursor = message["cursor"].as_str().unwrap().to_string();
            }
            Some(Ok(Message::Close(Some(frame)))) => break Some(u16::from(frame.code)),
            Some(Ok(_)) => {}
            Some(Err(tokio_tungstenite::tungstenite::Error::Protocol(
                tokio_tungstenite::tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
            ))) => break None,
            other => panic!("no close frame: {other:?}"),
        }
    };
    assert!(matches!(code, Some(4008) | None), "{code:?}");
    assert!(last_seq > 0, "frames came before the cut-off");
    assert!(last_seq < 600, "it was cut off before the end");
    // It resumes from where it got to and receives the rest.
    let mut resumed = connect(&server, &me, &format!("?after={last_cursor}")).await;
    let mut count = 0;
    let mine = marker(&server, &me).await;
    loop {
        let message = next(&mut resumed).await.unwrap();
        if message["data"]["id"] == mine.as_str() {
            break;
        }
        count += 1;
    }
    assert!(count > 0);
}

#[tokio::test]
async fn two_hundred_sockets_each_receive_a_burst_of_100_complete() {
    let server = TestServer::spawn().await;
    let owner = server.register().await;
    let mut sockets = Vec::new();
    for _ in 0..200 {
        sockets.push(connect(&server, &owner, "").await);
    }
    for i in 0..100 {
        new_task(&server, &owner, json!({"title": format!("burst {i}")})).await;
    }
    let readers: Vec<_> = sockets
        .into_iter()
        .map(|mut socket| {
            tokio::spawn(async move {
                let mut seqs = Vec::new();
                while seqs.len() < 100 {
                    let message = next(&mut socket).await.expect("open");
                    seqs.push(message["seq"].as_u64().unwrap());
                }
                seqs
            })
        })
        .collect();
    let mut first: Option<Vec<u64>> = None;
    for reader in readers {
        let seqs = reader.await.unwrap();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "in order, no duplicate"
        );
        match &first {
            None => first = Some(seqs),
            Some(expected) => assert_eq!(&seqs, expected, "every socket got the same 100"),
        }
    }
}

#[tokio::test]
async fn stopping_the_server_closes_sockets_with_1001() {
    let server = TestServer::spawn().await;
    let me = server.register().await;
    let mut socket = connect(&server, &me, "").await;
    let stopped = tokio::spawn(server.stop());
    assert_eq!(close_code(&mut socket).await, 1001);
    tokio::time::timeout(Duration::from_secs(5), stopped)
        .await
        .expect("the server stops at once, not after the grace period")
        .unwrap();
}

#[tokio::test]
async fn members_see_a_team_deleted_to_the_end_and_a_replay_shows_only_what_they_could_see() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;

    // A newcomer resuming from before they joined sees the team from their joining on only.
    let mut newcomer = connect(&server, &c.outsider, "").await;
    marker(&server, &c.outsider).await;
    let since = next(&mut newcomer).await.unwrap()["seq"].as_u64().unwrap();
    drop(newcomer);
    new_task(
        &server,
        &c.creator,
        json!({"title": "before joining", "project_id": c.project}),
    )
    .await;
    server
        .add_member(&c.team, &c.owner, &c.outsider, "member")
        .await;
    let after = new_task(
        &server,
        &c.creator,
        json!({"title": "after joining", "project_id": c.project}),
    )
    .await;
    let mut newcomer = connect(&server, &c.outsider, &format!("?since={since}")).await;
    let mut got = Vec::new();
    loop {
        let message = next(&mut newcomer).await.unwrap();
        let done = message["data"]["id"] == after["id"];
        got.push(message);
        if done {
            break;
        }
    }
    let kinds: Vec<(&str, &str)> = got.iter().map(kind).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == ("task", "created")).count(),
        1,
        "only the task created after joining: {kinds:?}"
    );
    assert!(kinds.contains(&("membership", "created")), "{kinds:?}");
    assert!(
        kinds.contains(&("notification", "team_invited")),
        "{kinds:?}"
    );

    // Deleting the team: members see the cascade, the team's deletion, then their own removal.
    let mut member = connect(&server, &c.member, "").await;
    let deleted = server
        .call(
            Method::DELETE,
            &format!("/api/teams/{}", c.team),
            Some(&c.owner.token),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    let mut seen = Vec::new();
    loop {
        let message = next(&mut member).await.unwrap();
        let k = kind(&message);
        let (entity, action) = (k.0.to_string(), k.1.to_string());
        let own = message["data"]["id"] == c.member.user_id.as_str();
        seen.push((entity.clone(), action.clone()));
        if entity == "membership" && action == "deleted" && own {
            break;
        }
    }
    let pos = |e: &str| seen.iter().position(|(x, a)| x == e && a == "deleted");
    assert!(
        pos("task").is_some() && pos("project").is_some(),
        "{seen:?}"
    );
    assert!(
        pos("task") < pos("team") && pos("project") < pos("team"),
        "{seen:?}"
    );
}

/// Issue 12: a replay rebuilt the user's teams from only the oldest of their own membership
/// entries since `since` (10,000 then), so a user with more of them kept a team they joined
/// later and was shown its history from before they joined, deleted task titles included.
/// Here the user has more membership entries than the replay reads per page
/// (`MEMBERSHIP_PAGE`, small for this reason), then joins the team.
#[tokio::test]
async fn a_replay_hides_a_teams_past_however_many_memberships_came_before_the_join() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let mut newcomer = connect(&server, &c.outsider, "").await;
    marker(&server, &c.outsider).await;
    let since = next(&mut newcomer).await.unwrap()["seq"].as_u64().unwrap();
    drop(newcomer);

    // More own membership entries than one page, all before the join.
    for i in 0..=tasker::service::MEMBERSHIP_PAGE {
        server.create_team(&c.outsider, &format!("mine {i}")).await;
    }
    let secret = new_task(
        &server,
        &c.creator,
        json!({"title": "secret from before joining", "project_id": c.project}),
    )
    .await;
    let deleted = server
        .call(
            Method::DELETE,
            &format!("/api/tasks/{}", secret["id"].as_str().unwrap()),
            Some(&c.creator.token),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    server
        .add_member(&c.team, &c.owner, &c.outsider, "member")
        .await;
    let after = new_task(
        &server,
        &c.creator,
        json!({"title": "after joining", "project_id": c.project}),
    )
    .await;

    let mut newcomer = connect(&server, &c.outsider, &format!("?since={since}")).await;
    let mut got = Vec::new();
    loop {
        let message = next(&mut newcomer).await.unwrap();
        let done = message["data"]["id"] == after["id"];
        got.push(message);
        if done {
            break;
        }
    }
    let leaked: Vec<&Value> = got
        .iter()
        .filter(|m| {
            m.to_string().contains("secret from before joining") || m["data"]["id"] == secret["id"]
        })
        .collect();
    assert!(leaked.is_empty(), "the team's past leaked: {leaked:?}");
    let kinds: Vec<(&str, &str)> = got.iter().map(kind).collect();
    assert_eq!(
        kinds.iter().filter(|k| k.0 == "task").count(),
        1,
        "only the task created after joining: {kinds:?}"
    );
    assert!(kinds.contains(&("membership", "created")), "{kinds:?}");
}

/// Issue 14: a replay read the whole log after `since`, whoever it concerned, so 200
/// connections replaying from the oldest entry cost tens of seconds of CPU. Now a connection
/// more than `replay_budget` entries behind is told to refetch (`reset`) before anything is
/// read, even when it would have been sent none of them, and goes on live; one within the
/// budget replays exactly as before.
#[tokio::test]
async fn a_replay_past_its_budget_gets_a_reset_and_goes_on_live() {
    const BUDGET: u64 = 6;
    let tmp = tempfile::tempdir().unwrap();
    let mut config = test_config(tmp.path());
    config.replay_budget = BUDGET;
    let server = TestServer::spawn_with(config).await;
    let me = server.register().await;
    let other = server.register().await;
    let mut socket = connect(&server, &me, "").await;
    marker(&server, &me).await;
    let since = next(&mut socket).await.unwrap()["seq"].as_u64().unwrap();
    drop(socket);

    // Within the budget: two of mine and one I may not see, replayed exactly.
    let first = marker(&server, &me).await;
    marker(&server, &other).await;
    let second = marker(&server, &me).await;
    let mut socket = connect(&server, &me, &format!("?since={since}")).await;
    let replayed = [
        next(&mut socket).await.unwrap(),
        next(&mut socket).await.unwrap(),
    ];
    assert_eq!(
        replayed
            .iter()
            .map(|m| m["data"]["id"].clone())
            .collect::<Vec<_>>(),
        [json!(first), json!(second)],
        "{replayed:?}"
    );
    let last = replayed[1]["seq"].as_u64().unwrap();
    assert_eq!(last - since, 3, "exactly three entries were missed");
    let live = marker(&server, &me).await;
    assert_eq!(
        next(&mut socket).await.unwrap()["data"]["id"],
        live.as_str()
    );
    drop(socket);

    // Past the budget: entries of someone else's, none of which this user would be sent.
    for _ in 0..BUDGET {
        marker(&server, &other).await;
    }
    let mut socket = connect(&server, &me, &format!("?since={last}")).await;
    let first = next(&mut socket).await.unwrap();
    assert_eq!(first["type"], "reset", "{first}");
    let live = marker(&server, &me).await;
    let after = next(&mut socket).await.unwrap();
    assert_eq!(
        after["data"]["id"],
        live.as_str(),
        "live after the reset: {after}"
    );

    // Exactly at the budget still replays.
    let since = after["seq"].as_u64().unwrap();
    for _ in 0..BUDGET - 1 {
        marker(&server, &other).await;
    }
    let mine = marker(&server, &me).await;
    let mut socket = connect(&server, &me, &format!("?since={since}")).await;
    let replayed = next(&mut socket).await.unwrap();
    assert_eq!(replayed["data"]["id"], mine.as_str(), "{replayed}");
    assert_eq!(replayed["seq"].as_u64().unwrap() - since, BUDGET);
}

/// A message's position.
fn cursor(message: &Value) -> &str {
    message["cursor"]
        .as_str()
        .expect("every message has a cursor")
}

/// Reads messages until the one about `marker` (a task id), which it leaves out.
async fn until_marker(socket: &mut Socket, marker: &str) -> Vec<Value> {
    let mut got = Vec::new();
    loop {
        let message = next(socket).await.expect("the socket stays open");
        if message["type"] == "change" && message["data"]["id"] == marker {
            return got;
        }
        got.push(message);
    }
}

#[tokio::test]
async fn resuming_after_any_frame_sends_exactly_the_frames_after_it() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    let mut socket = connect(&server, &c.member, "").await;
    // One entry, two frames for the member: the change and the notification it caused.
    new_task(
        &server,
        &c.creator,
        json!({"title": "both", "project_id": c.project, "assignee_ids": [c.member.user_id]}),
    )
    .await;
    // A notification whose change the member does not see: an invitation to another team.
    let elsewhere = server.create_team(&c.outsider, "Elsewhere").await;
    server
        .invite(&elsewhere, &c.outsider, &c.member.email, "member")
        .await;
    // And one more change of the shared project.
    new_task(
        &server,
        &c.creator,
        json!({"title": "after", "project_id": c.project}),
    )
    .await;
    let end = marker(&server, &c.member).await;
    let frames = until_marker(&mut socket, &end).await;
    let kinds: Vec<_> = frames.iter().map(kind).collect();
    assert_eq!(
        kinds[..2],
        [("task", "created"), ("notification", "task_assigned")]
    );
    assert!(
        kinds.contains(&("notification", "team_invited")),
        "{kinds:?}"
    );
    assert_eq!(kinds.last(), Some(&("task", "created")));
    let seq = frames[0]["seq"].as_u64().unwrap();
    assert_eq!(
        frames[1]["seq"].as_u64(),
        Some(seq),
        "one entry, two frames"
    );
    assert_eq!(cursor(&frames[0]), format!("{seq}.0"));
    assert_eq!(cursor(&frames[1]), format!("{seq}.1"));
    let positions: Vec<&str> = frames.iter().map(cursor).collect();
    let mut unique = positions.clone();
    unique.dedup();
    assert_eq!(unique, positions, "every frame has its own position");

    // Resuming after each frame: exactly the frames after it, each once, in order, then live.
    // The markers written since `end` (by earlier rounds) are among what was missed.
    let mut later = vec![end];
    for (i, handled) in frames.iter().enumerate() {
        let after = cursor(handled);
        let mut resumed = connect(&server, &c.member, &format!("?after={after}")).await;
        let live = marker(&server, &c.member).await;
        let got = until_marker(&mut resumed, &live).await;
        let missed = frames.len() - (i + 1);
        assert_eq!(got.len(), missed + later.len(), "after {after}: {got:?}");
        assert_eq!(
            got[..missed],
            frames[i + 1..],
            "after {after}: the frames after it"
        );
        let markers: Vec<&str> = got[missed..]
            .iter()
            .map(|m| m["data"]["id"].as_str().unwrap())
            .collect();
        assert_eq!(markers, later, "after {after}: then what followed, once");
        // The next live frame follows with nothing repeated.
        let again = marker(&server, &c.member).await;
        assert_eq!(
            next(&mut resumed).await.unwrap()["data"]["id"],
            again.as_str(),
            "after {after}: live, no duplicate"
        );
        later.extend([live, again]);
    }

    // `since=<seq>` is after every frame of that entry: the change's seq skips its
    // notification too (which is why clients store the cursor), and is `after=<seq>.1`.
    for query in [format!("?since={seq}"), format!("?after={seq}.1")] {
        let mut resumed = connect(&server, &c.member, &query).await;
        let live = marker(&server, &c.member).await;
        let got = until_marker(&mut resumed, &live).await;
        assert_eq!(got[..frames.len() - 2], frames[2..], "{query}");
        later.push(live);
    }
}

#[tokio::test]
async fn a_first_connection_without_a_position_starts_live() {
    let server = TestServer::spawn().await;
    let c = cast(&server).await;
    // History the member could see, a notification among it.
    new_task(
        &server,
        &c.creator,
        json!({"title": "old", "project_id": c.project, "assignee_ids": [c.member.user_id]}),
    )
    .await;
    marker(&server, &c.member).await;
    let mut socket = connect(&server, &c.member, "").await;
    let mine = marker(&server, &c.member).await;
    let first = next(&mut socket).await.unwrap();
    assert_eq!(
        first["data"]["id"],
        mine.as_str(),
        "nothing from before the connection: {first}"
    );
}

#[tokio::test]
async fn a_position_must_be_a_cursor_and_comes_once() {
    let server = TestServer::spawn().await;
    let me = server.register().await;
    for query in [
        "?after=12",
        "?after=x.1",
        "?after=1.2.3",
        "?after=",
        "?after=1.0&since=1",
    ] {
        let reply = server
            .get(&format!("/api/ws{query}&token={}", me.token), None)
            .await;
        assert_eq!(reply.invalid_fields(), ["after"], "{query}");
    }
}

#[tokio::test]
async fn a_reset_carries_a_position_to_resume_after() {
    // Room for the three entries the resume after the reset reads (the last of which may be
    // written before the connection subscribes).
    const BUDGET: u64 = 3;
    let tmp = tempfile::tempdir().unwrap();
    let mut config = test_config(tmp.path());
    config.replay_budget = BUDGET;
    let server = TestServer::spawn_with(config).await;
    let me = server.register().await;
    let other = server.register().await;
    let mut socket = connect(&server, &me, "").await;
    marker(&server, &me).await;
    let seen = cursor(&next(&mut socket).await.unwrap()).to_string();
    drop(socket);
    for _ in 0..=BUDGET {
        marker(&server, &other).await;
    }
    let mut socket = connect(&server, &me, &format!("?after={seen}")).await;
    let reset = next(&mut socket).await.unwrap();
    assert_eq!(reset["type"], "reset", "{reset}");
    let seq = reset["seq"].as_u64().expect("a reset has a seq");
    assert_eq!(cursor(&reset), format!("{seq}.1"), "the end of its seq");
    let first = marker(&server, &me).await;
    let live = next(&mut socket).await.unwrap();
    assert_eq!(live["data"]["id"], first.as_str());
    assert!(live["seq"].as_u64().unwrap() > seq);
    drop(socket);

    // Cut off right after the reset: resuming after it sends what followed it, once.
    let second = marker(&server, &me).await;
    let mut socket = connect(&server, &me, &format!("?after={}", cursor(&reset))).await;
    let third = marker(&server, &me).await;
    let got = until_marker(&mut socket, &third).await;
    assert_eq!(
        got.iter()
            .map(|m| m["data"]["id"].clone())
            .collect::<Vec<_>>(),
        [json!(first), json!(second)],
        "{got:?}"
    );
    assert_eq!(got[0], live);
}

#[tokio::test]
async fn the_spec_types_every_message_and_the_feeds_security() {
    let server = TestServer::spawn().await;
    let spec = server.get("/api/openapi.json", None).await.ok().clone();
    let schemas = &spec["components"]["schemas"];
    let union = &schemas["RealtimeMessage"];
    assert_eq!(union["discriminator"]["propertyName"], "type");
    let members = union["oneOf"].as_array().unwrap();
    assert_eq!(members.len(), 3);
    for (value, name) in [
        ("change", "ChangeMessage"),
        ("notification", "NotificationMessage"),
        ("reset", "ResetMessage"),
    ] {
        let reference = format!("#/components/schemas/{name}");
        assert_eq!(union["discriminator"]["mapping"][value], reference.as_str());
        assert!(members.iter().any(|m| m["$ref"] == reference.as_str()));
        let message = &schemas[name];
        let required = message["required"].as_array().unwrap();
        for field in ["type", "seq", "cursor"] {
            assert!(
                required.contains(&json!(field)),
                "{name}.{field} is required"
            );
        }
        // `type` is a plain reference to an enum of that one value (no allOf wrapper).
        let tag = &message["properties"]["type"];
        assert_eq!(tag.as_object().unwrap().len(), 1, "{name}.type: {tag}");
        let tag_name = tag["$ref"].as_str().unwrap().rsplit('/').next().unwrap();
        assert_eq!(schemas[tag_name]["enum"], json!([value]), "{name}.type");
    }
    let feed = &spec["paths"]["/ws"]["get"];
    assert_eq!(
        feed["responses"]["101"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/RealtimeMessage"
    );
    assert_eq!(
        feed["security"],
        json!([{"BearerAuth": []}, {"TokenQuery": []}])
    );
    let token = &spec["components"]["securitySchemes"]["TokenQuery"];
    assert_eq!(
        (&token["type"], &token["in"], &token["name"]),
        (&json!("apiKey"), &json!("query"), &json!("token"))
    );
    let parameters: Vec<&str> = feed["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(parameters, ["after", "since", "projects"]);
}
