//! The product scenario (issue 13, item 7), walked the way a client generated from the spec
//! walks it: every answer is parsed into a typed struct that mirrors its schema and refuses
//! unknown fields, so a drift between the server and its documented types fails here.
//!
//! Two people and an outsider: register, profile, team, invitation, project, a task assigned to
//! the second, a status filter, an update with `If-Match` and a stale 412 carrying `current`,
//! a search with a typo, comments as the assignee and as the outsider, an attachment up and
//! down, notifications, the WebSocket resumed after each kind of frame (change, notification,
//! reset), and logout.

// The structs mirror their schemas whole, so every field is there whether or not it is read.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};
use uuid::Uuid;

use crate::common::{PASSWORD, TestServer, multipart, test_config};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long to wait for a message, or for the search index to catch up.
const PATIENCE: Duration = Duration::from_secs(10);
/// The replay budget of the scenario's server: small, so a `reset` can be provoked.
const BUDGET: u64 = 10;

// The documented types, as a generated client has them.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ServerRole {
    Admin,
    User,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum TeamRole {
    Owner,
    Admin,
    Member,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum InvitationStatus {
    Pending,
    Accepted,
    Declined,
    Revoked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ProjectStatus {
    Active,
    Archived,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum TaskStatus {
    Todo,
    InProgress,
    Blocked,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Priority {
    Low,
    Medium,
    High,
    Urgent,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct User {
    id: Uuid,
    email: String,
    name: String,
    role: ServerRole,
    verified: bool,
    email_verified_at: Option<String>,
    created_at: String,
    updated_at: String,
    version: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthResponse {
    token: String,
    token_type: String,
    expires_at: String,
    refresh_token: String,
    refresh_expires_at: String,
    session_id: Uuid,
    user: User,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Team {
    id: Uuid,
    name: String,
    description: String,
    created_by: Uuid,
    created_at: String,
    updated_at: String,
    version: u64,
    my_role: TeamRole,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuedInvitation {
    id: Uuid,
    team_id: Uuid,
    email: String,
    role: TeamRole,
    status: InvitationStatus,
    invited_by: Uuid,
    created_at: String,
    expires_at: String,
    token: String,
    accept_url: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Invitation {
    id: Uuid,
    team_id: Uuid,
    email: String,
    role: TeamRole,
    status: InvitationStatus,
    invited_by: Uuid,
    created_at: String,
    expires_at: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Project {
    id: Uuid,
    team_id: Uuid,
    name: String,
    description: String,
    status: ProjectStatus,
    created_by: Uuid,
    created_at: String,
    updated_at: String,
    version: u64,
    can_edit: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Task {
    id: Uuid,
    title: String,
    description: String,
    status: TaskStatus,
    priority: Priority,
    due_date: Option<String>,
    labels: Vec<String>,
    project_id: Option<Uuid>,
    team_id: Option<Uuid>,
    assignee_ids: Vec<Uuid>,
    created_by: Uuid,
    created_at: String,
    updated_at: String,
    version: u64,
    rank: String,
    comment_count: u64,
    attachment_count: u64,
    can_edit: bool,
    can_delete: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Page<T> {
    items: Vec<T>,
    next_cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchHighlights {
    title: Option<String>,
    description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchItem {
    task: Task,
    score: f64,
    highlights: SearchHighlights,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldProblem {
    field: String,
    message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Problem {
    status: u16,
    code: String,
    title: String,
    detail: String,
    errors: Vec<FieldProblem>,
}

/// `PreconditionFailed_Task`: a 412 with the task as it is now.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PreconditionFailedTask {
    status: u16,
    code: String,
    title: String,
    detail: String,
    errors: Vec<FieldProblem>,
    current: Task,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Comment {
    id: Uuid,
    task_id: Uuid,
    author_id: Uuid,
    body: String,
    created_at: String,
    updated_at: String,
    edited_at: Option<String>,
    version: u64,
    can_edit: bool,
    can_delete: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Attachment {
    id: Uuid,
    task_id: Uuid,
    filename: String,
    content_type: String,
    size: u64,
    sha256: String,
    uploaded_by: Uuid,
    created_at: String,
    content_url: String,
    can_delete: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadedAttachments {
    items: Vec<Attachment>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Notification {
    id: u64,
    kind: String,
    actor_id: Uuid,
    created_at: String,
    entity_id: Option<Uuid>,
    fields: Vec<String>,
    read: bool,
    read_at: Option<String>,
    subject: String,
    task_id: Option<Uuid>,
    team_id: Option<Uuid>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NotificationPage {
    items: Vec<Notification>,
    next_cursor: Option<String>,
    unread_count: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldChange {
    field: String,
    from: Value,
    to: Value,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeData {
    id: Uuid,
    team_id: Option<Uuid>,
    project_id: Option<Uuid>,
    task_id: Option<Uuid>,
    actor_id: Uuid,
    at: String,
    changes: Vec<FieldChange>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeMessage {
    seq: u64,
    cursor: String,
    entity: String,
    action: String,
    data: ChangeData,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct NotificationMessage {
    seq: u64,
    cursor: String,
    notification: Notification,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetMessage {
    seq: u64,
    cursor: String,
}

/// `RealtimeMessage`: one frame of `GET /ws`, told apart by `type`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum RealtimeMessage {
    Change(ChangeMessage),
    Notification(NotificationMessage),
    Reset(ResetMessage),
}

impl RealtimeMessage {
    fn cursor(&self) -> &str {
        match self {
            RealtimeMessage::Change(m) => &m.cursor,
            RealtimeMessage::Notification(m) => &m.cursor,
            RealtimeMessage::Reset(m) => &m.cursor,
        }
    }

    /// `entity action`, `notification kind` or `reset`.
    fn what(&self) -> String {
        match self {
            RealtimeMessage::Change(m) => format!("{} {}", m.entity, m.action),
            RealtimeMessage::Notification(m) => format!("notification {}", m.notification.kind),
            RealtimeMessage::Reset(_) => "reset".to_string(),
        }
    }

    /// The task id of a `task` change (the markers are personal tasks).
    fn task_created(&self) -> Option<Uuid> {
        match self {
            RealtimeMessage::Change(m) if m.entity == "task" && m.action == "created" => {
                Some(m.data.id)
            }
            _ => None,
        }
    }
}

// A typed client: one call, one documented answer.

/// A typed answer: its status, headers and parsed body.
struct Answer<T> {
    status: StatusCode,
    headers: HeaderMap,
    body: T,
}

struct Client<'a> {
    server: &'a TestServer,
    token: Option<String>,
}

impl<'a> Client<'a> {
    fn anonymous(server: &'a TestServer) -> Self {
        Self {
            server,
            token: None,
        }
    }

    fn with(server: &'a TestServer, token: &str) -> Self {
        Self {
            server,
            token: Some(token.to_string()),
        }
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.server.client.request(method, self.server.url(path));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends `request` and parses the answer into `T`, asserting its status.
    async fn send<T: DeserializeOwned>(
        request: reqwest::RequestBuilder,
        expected: u16,
    ) -> Answer<T> {
        let response = request.send().await.expect("request sent");
        let (status, headers) = (response.status(), response.headers().clone());
        let bytes = response.bytes().await.expect("body");
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!(status.as_u16(), expected, "unexpected status: {text}");
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "the {expected} answer does not parse as {}: {e}\n{text}",
                std::any::type_name::<T>()
            )
        });
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        expected: u16,
    ) -> Answer<T> {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        Self::send(request, expected).await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> T {
        self.json(Method::GET, path, None, 200).await.body
    }

    async fn post<T: DeserializeOwned>(&self, path: &str, body: Value, expected: u16) -> T {
        self.json(Method::POST, path, Some(body), expected)
            .await
            .body
    }

    /// A documented error: problem+json with this status and code.
    async fn problem(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        status: u16,
    ) -> Problem {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Answer<Problem> = Self::send(request, status).await;
        assert!(
            answer.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/problem+json")
        );
        assert_eq!(answer.body.status, status);
        answer.body
    }
}

async fn register(server: &TestServer, name: &str) -> AuthResponse {
    let email = format!(
        "{}-{}@example.com",
        name.to_lowercase(),
        Uuid::now_v7().simple()
    );
    let answer: Answer<AuthResponse> = Client::anonymous(server)
        .json(
            Method::POST,
            "/api/auth/register",
            Some(json!({"email": email, "name": name, "password": PASSWORD})),
            201,
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED);
    assert!(answer.headers.contains_key("location"), "201 names it");
    let auth = answer.body;
    assert_eq!(
        (auth.user.email.as_str(), auth.user.name.as_str()),
        (email.as_str(), name)
    );
    assert_eq!(auth.token_type, "Bearer");
    auth
}

// The WebSocket, as a client library sees it.

fn ws_url(server: &TestServer, token: &str, position: Option<&str>) -> String {
    let base = server.url("/api/ws").replacen("http", "ws", 1);
    match position {
        Some(after) => format!("{base}?token={token}&after={after}"),
        None => format!("{base}?token={token}"),
    }
}

async fn open(server: &TestServer, token: &str, after: Option<&str>) -> Socket {
    connect_async(ws_url(server, token, after))
        .await
        .expect("the socket opens")
        .0
}

/// The next message, typed; `None` once the socket is closed (with its close code).
async fn receive(socket: &mut Socket) -> Result<RealtimeMessage, Option<u16>> {
    loop {
        let frame = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("a message arrives in time");
        match frame {
            Some(Ok(Message::Text(text))) => {
                return Ok(serde_json::from_str(&text).unwrap_or_else(|e| {
                    panic!("a frame that is no RealtimeMessage: {e}\n{text}")
                }));
            }
            Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| u16::from(f.code))),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return Err(None),
        }
    }
}

/// Messages up to the creation of the task `marker`, which is left out.
async fn until(socket: &mut Socket, marker: Uuid) -> Vec<RealtimeMessage> {
    let mut got = Vec::new();
    loop {
        let message = receive(socket).await.expect("the socket stays open");
        if message.task_created() == Some(marker) {
            return got;
        }
        got.push(message);
    }
}

/// A personal task of the token's owner: a change only they see, to know where a stream is.
async fn marker(client: &Client<'_>) -> Uuid {
    client
        .post::<Task>("/api/tasks", json!({"title": "marker"}), 201)
        .await
        .id
}

#[tokio::test]
async fn the_product_scenario_with_typed_answers_only() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = test_config(tmp.path());
    config.replay_budget = BUDGET;
    let server = TestServer::spawn_with(config).await;

    // Two people register; the first is the server's admin. Profiles.
    let ada = register(&server, "Ada").await;
    let bob = register(&server, "Bob").await;
    let cy = register(&server, "Cy").await;
    assert_eq!(ada.user.role, ServerRole::Admin);
    assert!(
        !ada.user.verified && ada.user.email_verified_at.is_none(),
        "no mail on this server: the address is not verified"
    );
    assert_eq!(bob.user.role, ServerRole::User);
    let (a, b, outsider) = (
        Client::with(&server, &ada.token),
        Client::with(&server, &bob.token),
        Client::with(&server, &cy.token),
    );
    let me: User = a.get("/api/auth/profile").await;
    assert_eq!(me.id, ada.user.id);
    let renamed = a
        .json::<User>(
            Method::PUT,
            "/api/auth/profile",
            Some(json!({"name": "Ada Lovelace"})),
            200,
        )
        .await
        .body;
    assert_eq!(
        (renamed.name.as_str(), renamed.version),
        ("Ada Lovelace", me.version + 1)
    );

    // A team, an invitation, accepted with its token.
    let team: Team = a
        .post(
            "/api/teams",
            json!({"name": "Engines", "description": "Analytical"}),
            201,
        )
        .await;
    assert_eq!(team.my_role, TeamRole::Owner);
    let issued: IssuedInvitation = a
        .post(
            "/api/teams/invite",
            json!({"team_id": team.id, "email": bob.user.email, "role": "member"}),
            201,
        )
        .await;
    assert_eq!(
        (issued.team_id, issued.status, issued.role),
        (team.id, InvitationStatus::Pending, TeamRole::Member)
    );
    assert!(issued.accept_url.ends_with(&issued.token));
    let accepted: Invitation = b
        .post(
            "/api/invitations/accept",
            json!({"token": issued.token}),
            200,
        )
        .await;
    assert_eq!(
        (accepted.id, accepted.status),
        (issued.id, InvitationStatus::Accepted)
    );
    let teams: Page<Team> = b.get("/api/teams").await;
    assert_eq!(teams.items.len(), 1);
    assert_eq!(
        (teams.items[0].id, teams.items[0].my_role),
        (team.id, TeamRole::Member)
    );

    // Bob's client goes live: a first connection, without a position.
    let mut live = open(&server, &bob.token, None).await;

    // A project, and a task in it assigned to Bob.
    let project: Project = a
        .post(
            "/api/projects",
            json!({"team_id": team.id, "name": "Difference engine", "description": ""}),
            201,
        )
        .await;
    assert_eq!(
        (project.team_id, project.status),
        (team.id, ProjectStatus::Active)
    );
    let task: Task = a
        .post(
            "/api/tasks",
            json!({
                "title": "Write the quarterly report",
                "description": "Numbers for the engine",
                "project_id": project.id,
                "assignee_ids": [bob.user.id],
                "priority": "high",
            }),
            201,
        )
        .await;
    assert_eq!(
        (task.status, task.priority, task.assignee_ids.as_slice()),
        (TaskStatus::Todo, Priority::High, [bob.user.id].as_slice())
    );
    let task_path = format!("/api/tasks/{}", task.id);

    // Filtered by status: Bob's tasks to do, and none in progress yet.
    let todo: Page<Task> = b.get("/api/tasks?status=todo").await;
    assert_eq!(
        todo.items.iter().map(|t| t.id).collect::<Vec<_>>(),
        [task.id]
    );
    let doing: Page<Task> = b.get("/api/tasks?status=in_progress").await;
    assert!(doing.items.is_empty() && doing.next_cursor.is_none());

    // Update with If-Match from the ETag just read; the same tag again is stale: 412 with
    // the current task.
    let read = a.json::<Task>(Method::GET, &task_path, None, 200).await;
    let etag = read.headers["etag"].to_str().unwrap().to_string();
    let update = a
        .request(Method::PATCH, &task_path)
        .header("if-match", &etag)
        .json(&json!({"status": "in_progress"}));
    let updated = Client::send::<Task>(update, 200).await.body;
    assert_eq!(
        (updated.status, updated.version),
        (TaskStatus::InProgress, read.body.version + 1)
    );
    let stale = a
        .request(Method::PATCH, &task_path)
        .header("if-match", &etag)
        .json(&json!({"status": "done"}));
    let refused: Answer<PreconditionFailedTask> = Client::send(stale, 412).await;
    assert_eq!(refused.body.code, "precondition_failed");
    assert_eq!(refused.body.status, 412);
    assert_eq!(
        (refused.body.current.version, refused.body.current.status),
        (updated.version, TaskStatus::InProgress)
    );

    // Search with a typo ("quartely"), once the index has caught up.
    let started = Instant::now();
    loop {
        let reply = b
            .request(Method::GET, "/api/tasks/search?q=quartely")
            .send()
            .await
            .unwrap();
        if reply.status() == StatusCode::OK {
            let page: Page<SearchItem> =
                serde_json::from_slice(&reply.bytes().await.unwrap()).expect("a SearchPage");
            if let Some(hit) = page.items.first() {
                assert_eq!(hit.task.id, task.id);
                assert!(hit.score > 0.0);
                break;
            }
        } else {
            assert_eq!(reply.status(), StatusCode::SERVICE_UNAVAILABLE);
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the typo never found the task"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    // Comments: the assignee may; to an outsider the task does not exist.
    let comment: Comment = b
        .post(
            &format!("{task_path}/comments"),
            json!({"body": "On it."}),
            201,
        )
        .await;
    assert_eq!((comment.task_id, comment.author_id), (task.id, bob.user.id));
    let hidden = outsider
        .problem(
            Method::POST,
            &format!("{task_path}/comments"),
            Some(json!({"body": "Let me in"})),
            404,
        )
        .await;
    assert_eq!(hidden.code, "not_found");

    // An attachment, uploaded by Ada and downloaded by Bob.
    let bytes = b"quarter,revenue\nQ1,42\n";
    let (content_type, body) = multipart(&[("file", Some("q1.csv"), bytes)]);
    let upload = a
        .request(Method::POST, &format!("{task_path}/attachments"))
        .header("content-type", content_type)
        .body(body);
    let uploaded = Client::send::<UploadedAttachments>(upload, 201).await.body;
    let [attachment] = uploaded.items.as_slice() else {
        panic!("one file, one attachment: {uploaded:?}")
    };
    assert_eq!(
        (attachment.filename.as_str(), attachment.size),
        ("q1.csv", bytes.len() as u64)
    );
    let download = b
        .request(Method::GET, &attachment.content_url)
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    assert!(
        download.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert_eq!(download.bytes().await.unwrap().as_ref(), bytes);
    let listed: Page<Attachment> = b.get(&format!("{task_path}/attachments")).await;
    assert_eq!(listed.items.len(), 1);

    // What Bob's live connection received, up to a marker of his own.
    let end = marker(&b).await;
    let frames = until(&mut live, end).await;
    let kinds: Vec<String> = frames.iter().map(RealtimeMessage::what).collect();
    assert_eq!(
        kinds,
        [
            "project created",
            "task created",
            "notification task_assigned",
            "task updated",
            "notification task_updated",
            "comment created",
            "attachment created",
            "notification attachment_added",
        ]
    );

    // Notifications: the same three in the inbox, newest first, after the invitation (from
    // before the connection). (Read further down: a replay shows a notification as it is
    // now, read or not, and the resumes below compare replays with what was sent live.)
    let inbox: NotificationPage = b.get("/api/notifications").await;
    let told: Vec<&Notification> = frames
        .iter()
        .rev()
        .filter_map(|m| match m {
            RealtimeMessage::Notification(n) => Some(&n.notification),
            _ => None,
        })
        .collect();
    assert_eq!(inbox.items.len(), 4, "{inbox:?}");
    assert_eq!(inbox.items[..3].iter().collect::<Vec<_>>(), told);
    assert_eq!(
        (inbox.items[3].kind.as_str(), inbox.items[3].team_id),
        ("team_invited", Some(team.id))
    );
    assert_eq!(inbox.unread_count, 4);

    // Resume after a change whose notification came next, and after a notification: exactly
    // the frames after it (then the end marker, missed too), nothing twice.
    let change_then_notification = kinds
        .iter()
        .position(|k| k == "task created")
        .expect("the assignment");
    let notification = change_then_notification + 1;
    let mut later = vec![end];
    for i in [change_then_notification, notification] {
        let after = frames[i].cursor().to_string();
        let mut resumed = open(&server, &bob.token, Some(&after)).await;
        let now = marker(&b).await;
        let got = until(&mut resumed, now).await;
        let missed = frames.len() - (i + 1);
        assert_eq!(
            got.len(),
            missed + later.len(),
            "after {after} ({}): {got:?}",
            kinds[i]
        );
        assert_eq!(
            got[..missed],
            frames[i + 1..],
            "after {after} ({})",
            kinds[i]
        );
        let markers: Vec<Uuid> = got[missed..]
            .iter()
            .filter_map(|m| m.task_created())
            .collect();
        assert_eq!(markers, later, "after {after}: then what followed, once");
        later.push(now);
    }

    // Too far behind to replay (more than the budget): a reset, with a position of its own.
    for _ in 0..=BUDGET {
        marker(&a).await;
    }
    let mut behind = open(&server, &bob.token, Some(frames[0].cursor())).await;
    let reset = match receive(&mut behind).await {
        Ok(RealtimeMessage::Reset(reset)) => reset,
        other => panic!("expected a reset: {other:?}"),
    };
    assert_eq!(reset.cursor, format!("{}.1", reset.seq));
    // Refetch, then carry on: the next assignment reaches Bob, change and notification.
    let next: Task = a
        .post(
            "/api/tasks",
            json!({"title": "Next quarter", "project_id": project.id, "assignee_ids": [bob.user.id]}),
            201,
        )
        .await;
    let first = receive(&mut behind).await.unwrap();
    assert_eq!(first.task_created(), Some(next.id));
    let second = receive(&mut behind).await.unwrap();
    assert_eq!(second.what(), "notification task_assigned");
    drop(behind);
    // Cut right after the reset: resuming after it gives exactly what followed it.
    let mut resumed = open(&server, &bob.token, Some(&reset.cursor)).await;
    let now = marker(&b).await;
    assert_eq!(until(&mut resumed, now).await, [first, second]);

    // Reading a notification.
    let read: Notification = b
        .post(
            &format!("/api/notifications/{}/read", inbox.items[0].id),
            json!({}),
            200,
        )
        .await;
    assert!(read.read && read.read_at.is_some());
    let inbox: NotificationPage = b.get("/api/notifications").await;
    assert_eq!(
        inbox.unread_count, 4,
        "one more assignment came since, and one was read"
    );

    // Logout: the token is refused from then on, and the open socket is closed with 4001.
    let logout = b
        .request(Method::POST, "/api/auth/logout")
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    let refused = b.problem(Method::GET, "/api/auth/profile", None, 401).await;
    assert_eq!(refused.code, "session_revoked");
    loop {
        match receive(&mut resumed).await {
            Ok(_) => {}
            Err(code) => {
                assert_eq!(code, Some(4001), "closed as signed out");
                break;
            }
        }
    }
    match connect_async(ws_url(&server, &bob.token, None)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 401)
        }
        other => panic!("the feed refuses a signed-out token: {other:?}"),
    }
    // The others carry on.
    let still: User = a.get("/api/users/me").await;
    assert_eq!(still.id, ada.user.id);
}
