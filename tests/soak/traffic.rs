//! The clients: team members at work, WebSocket readers, WebSockets that never read or
//! vanish, slow clients held until the server cuts them, and requests abandoned mid-flight.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, connect_async};
use tokio_util::sync::CancellationToken;

use super::stats::Stats;
use crate::common::{PASSWORD, multipart};

/// Members of the team (each one a worker of its own).
pub const MEMBERS: usize = 4;
/// Tasks a member keeps before deleting its oldest: the data set stays bounded.
pub const KEPT_TASKS: usize = 12;
/// WebSocket clients that read everything; and that connect once and never read.
pub const WS_READERS: usize = 2;
pub const WS_SILENT: usize = 3;
/// A new slow client every this often (the four kinds in turn).
pub const SLOW_EVERY: Duration = Duration::from_millis(500);
/// A WebSocket that never reads and vanishes after a few seconds, every this often.
pub const WS_CHURN_EVERY: Duration = Duration::from_secs(2);
/// A request abandoned mid-flight every this often.
pub const ABRUPT_EVERY: Duration = Duration::from_millis(200);
pub const WORDS: &str = "invoice release backup printer onboarding roadmap budget migration kernel \
                     website payroll audit";

/// What every client shares: the server's address, the team, the counters and the end.
pub struct Soak {
    pub address: SocketAddr,
    pub stats: Stats,
    pub stop: CancellationToken,
    pub slow_open: AtomicU64,
    pub owner: Member,
    pub members: Vec<Member>,
    pub project: String,
    /// The task the stalled and abandoned uploads aim at.
    pub target_task: String,
}

#[derive(Clone, Default)]
pub struct Member {
    pub email: String,
    pub user_id: String,
    pub token: String,
}

pub struct Reply {
    pub status: u16,
    pub etag: Option<String>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn id(&self) -> Option<String> {
        self.json()["id"].as_str().map(str::to_string)
    }
}

/// One HTTP client (its own keep-alive connections, like a separate user agent) signed in
/// with `token` (when not empty).
pub struct Client<'a> {
    pub soak: &'a Soak,
    pub http: reqwest::Client,
    pub token: String,
}

impl<'a> Client<'a> {
    pub fn new(soak: &'a Soak, token: &str) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30));
        let http = http.build().expect("client");
        Self {
            soak,
            http,
            token: token.to_string(),
        }
    }

    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let request = self
            .http
            .request(method, format!("http://{}{path}", self.soak.address));
        if self.token.is_empty() {
            request
        } else {
            request.bearer_auth(&self.token)
        }
    }

    /// Sends and counts the answer (`expect`: the statuses this step can legitimately get).
    pub async fn send(
        &self,
        op: &'static str,
        request: reqwest::RequestBuilder,
        expect: &[u16],
    ) -> Option<Reply> {
        let stats = &self.soak.stats;
        stats.requests.fetch_add(1, Relaxed);
        let response = request
            .send()
            .await
            .map_err(|e| stats.transport(op, e))
            .ok()?;
        let status = response.status().as_u16();
        let etag = response.headers().get("etag").and_then(|v| v.to_str().ok());
        let etag = etag.map(str::to_string);
        let body = response
            .bytes()
            .await
            .map_err(|e| stats.transport(op, e))
            .ok()?
            .to_vec();
        stats.status(op, status, expect, &body);
        Some(Reply { status, etag, body })
    }

    pub async fn get(&self, op: &'static str, path: &str) -> Option<Reply> {
        self.send(op, self.request(Method::GET, path), &[200]).await
    }

    pub async fn post(
        &self,
        op: &'static str,
        path: &str,
        body: Value,
        expect: &[u16],
    ) -> Option<Reply> {
        self.send(op, self.request(Method::POST, path).json(&body), expect)
            .await
    }

    /// Signs in as `email`; returns the access token.
    pub async fn login(&self, email: &str) -> Option<String> {
        let body = json!({"email": email, "password": PASSWORD});
        let reply = self.post("login", "/api/auth/login", body, &[200]).await?;
        reply.json()["token"].as_str().map(str::to_string)
    }
}

impl Soak {
    /// An owner and [`MEMBERS`] members who register, their team, a project and a task.
    pub async fn set_up(address: SocketAddr) -> Arc<Self> {
        let mut soak = Self {
            address,
            stats: Stats::default(),
            stop: CancellationToken::new(),
            slow_open: AtomicU64::new(0),
            owner: Member::default(),
            members: Vec::new(),
            project: String::new(),
            target_task: String::new(),
        };
        let mut people = Vec::new();
        for n in 0..=MEMBERS {
            let email = format!("soak-{n}@example.com");
            let body = json!({"email": email, "name": format!("Soak {n}"), "password": PASSWORD});
            let anonymous = Client::new(&soak, "");
            let reply = anonymous.post("register", "/api/auth/register", body, &[201]);
            let reply = reply.await.filter(|r| r.status == 201).expect("registered");
            let auth = reply.json();
            let user_id = auth["user"]["id"].as_str().unwrap().to_string();
            let token = auth["token"].as_str().unwrap().to_string();
            people.push(Member {
                email,
                user_id,
                token,
            });
        }
        let set_up = |reply: Option<Reply>| reply.filter(|r| r.status < 300).expect("set-up");
        let owner = Client::new(&soak, &people[0].token);
        let team = json!({"name": "Soak"});
        let team = set_up(owner.post("set-up", "/api/teams", team, &[201]).await);
        let team = team.id().unwrap();
        for member in &people[1..] {
            let invite = json!({"team_id": team, "email": member.email, "role": "member"});
            let invite = owner.post("set-up", "/api/teams/invite", invite, &[201]);
            let invite = set_up(invite.await);
            // With the invitation's one-time token when the answer carries one (what the
            // inviter passes on), else by id (a server from before invitation tokens).
            let invitee = Client::new(&soak, &member.token);
            let accept = match invite.json()["token"].as_str() {
                Some(token) => invitee
                    .request(Method::POST, "/api/invitations/accept")
                    .json(&json!({ "token": token })),
                None => {
                    let path = format!("/api/invitations/{}/accept", invite.id().unwrap());
                    invitee.request(Method::POST, &path)
                }
            };
            set_up(invitee.send("set-up", accept, &[200, 204]).await);
        }
        let project = json!({"team_id": team, "name": "Soak"});
        let project = set_up(owner.post("set-up", "/api/projects", project, &[201]).await);
        let project = project.id().unwrap();
        let task = json!({"title": "Uploads that stall", "project_id": project});
        let task = set_up(owner.post("set-up", "/api/tasks", task, &[201]).await);
        drop(owner);
        soak.target_task = task.id().unwrap();
        soak.project = project;
        soak.owner = people.remove(0);
        soak.members = people;
        Arc::new(soak)
    }

    /// Starts every kind of client; each ends soon after `stop`.
    pub async fn start(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        let mut workers = Vec::new();
        for i in 0..MEMBERS {
            workers.push(tokio::spawn(member(self.clone(), i)));
        }
        for i in 0..WS_READERS {
            workers.push(tokio::spawn(ws_reader(self.clone(), i)));
        }
        // Sockets that never read: a few held from the start to the end.
        let token = Client::new(self, "")
            .login(&self.owner.email)
            .await
            .expect("sign-in");
        let mut silent = Vec::new();
        for _ in 0..WS_SILENT {
            match connect_async(self.ws_url(&token)).await {
                Ok((socket, _)) => silent.push(socket),
                Err(error) => self.ws_refused(error),
            }
        }
        let stop = self.stop.clone();
        workers.push(tokio::spawn(async move {
            stop.cancelled().await;
            drop(silent);
        }));
        workers.push(tokio::spawn(ws_churn(self.clone(), token)));
        workers.push(tokio::spawn(slow_clients(self.clone())));
        workers.push(tokio::spawn(abrupt_clients(self.clone())));
        workers
    }

    /// Sleeps unless the soak ends first; false when it has.
    pub async fn pause(&self, how_long: Duration) -> bool {
        tokio::select! {
            _ = self.stop.cancelled() => false,
            _ = tokio::time::sleep(how_long) => true,
        }
    }

    pub fn ws_url(&self, token: &str) -> String {
        format!("ws://{}/api/ws?token={token}", self.address)
    }

    /// A refused upgrade: a 5xx is a failure like any other; the rest is counted.
    pub fn ws_refused(&self, error: WsError) {
        match error {
            WsError::Http(response) => {
                let body = response.body().clone().unwrap_or_default();
                self.stats
                    .status("websocket", response.status().as_u16(), &[101], &body);
            }
            error => self.stats.transport("websocket", error),
        }
    }

    /// The head of an upload that announces `length` bytes, and the first `sent` of them.
    pub fn upload_start(&self, length: usize, sent: usize) -> Vec<u8> {
        let (task, token, boundary) = (&self.target_task, &self.owner.token, "soak-boundary");
        let mut bytes = format!(
            "POST /api/tasks/{task}/attachments HTTP/1.1\r\nHost: soak\r\n\
             Authorization: Bearer {token}\r\nContent-Length: {length}\r\n\
             Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n--{boundary}\r\n\
             Content-Disposition: form-data; name=\"file\"; filename=\"stalled.bin\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .into_bytes();
        bytes.extend(noise(sent, length as u64));
        bytes
    }

    /// A raw `GET` with the owner's token, head complete.
    pub fn raw_get(&self, path: &str) -> Vec<u8> {
        let token = &self.owner.token;
        format!("GET {path} HTTP/1.1\r\nHost: soak\r\nAuthorization: Bearer {token}\r\n\r\n").into()
    }
}

/// Bytes that look like nothing in particular (every upload a new blob).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state as u8
    };
    (0..len).map(|_| next()).collect()
}

/// One member's day: each round writes a task and its comment and (every other round) a file,
/// reads them back, lists, searches, reads notifications, and deletes beyond [`KEPT_TASKS`];
/// every 20 rounds a new session replaces the old one, and a wrong password is tried.
pub async fn member(soak: Arc<Soak>, i: usize) {
    let me = &soak.members[i];
    let peer = &soak.members[(i + 1) % MEMBERS].user_id;
    let project = &soak.project;
    let words: Vec<&str> = WORDS.split_whitespace().collect();
    let mut client = Client::new(&soak, &me.token);
    let mut kept = VecDeque::new();
    for round in 0usize.. {
        let word = words[(round * 5 + i) % words.len()];
        if round % 20 == 19 {
            if let Some(token) = client.login(&me.email).await {
                let logout = client.request(Method::POST, "/api/auth/logout");
                client.send("logout", logout, &[204]).await;
                client.token = token;
            }
            let wrong = json!({"email": me.email, "password": "not the password"});
            client
                .post("wrong password", "/api/auth/login", wrong, &[401])
                .await;
        }
        let task = json!({"title": format!("{word} {i}-{round}"), "project_id": project,
            "description": format!("The {word} needs work, round {round}."),
            "assignee_ids": [me.user_id, peer], "labels": ["soak", word]});
        let created = client.post("create task", "/api/tasks", task, &[201]).await;
        if let Some(task) = created.and_then(|r| r.id()) {
            let path = format!("/api/tasks/{task}");
            kept.push_back(path.clone());
            let etag = client.get("get task", &path).await.and_then(|r| r.etag);
            let status = ["todo", "in_progress", "blocked", "done"][round % 4];
            // A new title each time: the version moves, so the second If-Match is stale.
            let patch = json!({"status": status, "title": format!("{word} {i}-{round}, edited")});
            let request = client.request(Method::PATCH, &path).json(&patch);
            let etag = etag.unwrap_or_default();
            client
                .send("patch task", request.header("if-match", &etag), &[200])
                .await;
            // The same If-Match again is stale now.
            let stale = client.request(Method::PATCH, &path).json(&patch);
            client
                .send("stale patch", stale.header("if-match", &etag), &[412])
                .await;
            let comments = format!("{path}/comments");
            let comment = json!({"body": format!("On the {word}: looked at it.")});
            client.post("comment", &comments, comment, &[201]).await;
            client.get("list comments", &comments).await;
            if round % 2 == 0 {
                upload_and_download(&client, &path, word, (round * MEMBERS + i) as u64).await;
            }
        }
        let list = format!("/api/tasks?scope=all&project_id={project}&limit=50");
        client.get("list tasks", &list).await;
        client
            .get("search", &format!("/api/tasks/search?q={word}&limit=20"))
            .await;
        client
            .get("notifications", "/api/notifications?limit=20")
            .await;
        if round % 5 == 0 {
            let read_all = client.request(Method::POST, "/api/notifications/read-all");
            client.send("read all", read_all, &[200, 204]).await;
            client
                .get("board", &format!("/api/projects/{project}/board"))
                .await;
        }
        while kept.len() > KEPT_TASKS {
            let oldest = client.request(Method::DELETE, &kept.pop_front().unwrap());
            client.send("delete task", oldest, &[204]).await;
        }
        if !soak.pause(Duration::from_millis(25)).await {
            break;
        }
    }
}

/// Uploads a file of 1 to 48 KiB to the task, lists its attachments and downloads the file.
pub async fn upload_and_download(client: &Client<'_>, task: &str, word: &str, seed: u64) {
    let data = noise(1024 + (seed as usize * 3989) % 48_000, seed);
    let (content_type, body) = multipart(&[("file", Some(&format!("{word}-{seed}.bin")), &data)]);
    let upload = client.request(Method::POST, &format!("{task}/attachments"));
    let upload = upload.header("content-type", content_type).body(body);
    let uploaded = client.send("upload", upload, &[201]).await;
    client
        .get("list attachments", &format!("{task}/attachments"))
        .await;
    let Some(id) = uploaded.and_then(|r| r.json()["items"][0]["id"].as_str().map(str::to_string))
    else {
        return;
    };
    let download = client
        .get("download", &format!("/api/attachments/{id}/content"))
        .await;
    if download.is_some_and(|r| r.status == 200 && r.body != data) {
        client
            .soak
            .stats
            .note(format!("the download of {id} differs from the upload"));
    }
}

/// Reads everything; when cut (too slow, or any other reason) resumes after the last `seq`.
pub async fn ws_reader(soak: Arc<Soak>, i: usize) {
    let Some(token) = Client::new(&soak, "").login(&soak.members[i].email).await else {
        return;
    };
    let mut since = None;
    while !soak.stop.is_cancelled() {
        let url = soak.ws_url(&token);
        let url = since.map_or(url.clone(), |seq: u64| format!("{url}&since={seq}"));
        let mut socket = match connect_async(url).await {
            Ok((socket, _)) => socket,
            Err(error) => {
                soak.ws_refused(error);
                soak.pause(Duration::from_secs(1)).await;
                continue;
            }
        };
        soak.stats.ws_connects.fetch_add(1, Relaxed);
        loop {
            let frame = tokio::select! {
                _ = soak.stop.cancelled() => return,
                frame = socket.next() => frame,
            };
            match frame {
                Some(Ok(Message::Text(text))) => {
                    soak.stats.ws_frames.fetch_add(1, Relaxed);
                    let message: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    match message["seq"].as_u64() {
                        Some(seq) => since = Some(seq),
                        None if message["type"] == "reset" => since = None,
                        None => {}
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.map_or(0, |f| u16::from(f.code));
                    soak.stats.ws_closed(format!("close {code}"));
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    soak.stats.ws_closed("dropped".into());
                    break;
                }
            }
        }
        soak.pause(Duration::from_millis(250)).await;
    }
}

/// Every 2 s a WebSocket that never reads, gone after 3 to 8 s: half close their TCP
/// connection, half reset it.
pub async fn ws_churn(soak: Arc<Soak>, token: String) {
    for n in 0u64.. {
        if !soak.pause(WS_CHURN_EVERY).await {
            break;
        }
        let (soak, url) = (soak.clone(), soak.ws_url(&token));
        tokio::spawn(async move {
            match connect_async(url).await {
                Ok((socket, _)) => {
                    soak.pause(Duration::from_secs(3 + n % 6)).await;
                    if n % 2 == 1
                        && let MaybeTlsStream::Plain(tcp) = socket.get_ref()
                    {
                        let _ = tcp.set_zero_linger();
                    }
                }
                Err(error) => soak.ws_refused(error),
            }
        });
    }
}

#[derive(Clone, Copy)]
pub enum SlowKind {
    Silent,
    HalfHead,
    StalledUpload,
    IdleKeepAlive,
}

impl SlowKind {
    pub const ALL: [SlowKind; 4] = [
        Self::Silent,
        Self::HalfHead,
        Self::StalledUpload,
        Self::IdleKeepAlive,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Silent => "silent",
            Self::HalfHead => "half-sent head",
            Self::StalledUpload => "stalled upload",
            Self::IdleKeepAlive => "idle keep-alive",
        }
    }

    /// What the client sends before going quiet.
    pub fn opening(self, soak: &Soak) -> Vec<u8> {
        match self {
            Self::Silent => Vec::new(),
            Self::HalfHead => {
                let mut head = soak.raw_get("/api/tasks");
                head.truncate(head.len() - 2);
                head
            }
            Self::StalledUpload => soak.upload_start(1 << 20, 16 * 1024),
            Self::IdleKeepAlive => b"GET /api/health HTTP/1.1\r\nHost: soak\r\n\r\n".to_vec(),
        }
    }

    /// The statuses the server may answer before it cuts the connection.
    pub fn expect(self) -> &'static [u16] {
        match self {
            Self::IdleKeepAlive => &[200, 408],
            _ => &[400, 408, 413],
        }
    }
}

/// A slow client of each kind in turn every [`SLOW_EVERY`], each held until the server closes
/// it (counted as cut, with how long it took) or the soak ends. What the server answers before
/// closing (a 408, say) is read: a 5xx among it fails the soak.
pub async fn slow_clients(soak: Arc<Soak>) {
    for n in 0usize.. {
        if !soak.pause(SLOW_EVERY).await {
            break;
        }
        let soak = soak.clone();
        tokio::spawn(async move {
            let kind = SlowKind::ALL[n % SlowKind::ALL.len()];
            let Ok(mut stream) = TcpStream::connect(soak.address).await else {
                return soak.stats.transport(kind.name(), "connect failed");
            };
            let count = &soak.stats.slow[n % SlowKind::ALL.len()];
            count.opened.fetch_add(1, Relaxed);
            soak.slow_open.fetch_add(1, Relaxed);
            let opened = Instant::now();
            let _ = stream.write_all(&kind.opening(&soak)).await;
            let (mut seen, mut buf) = (Vec::new(), [0u8; 4096]);
            let cut = loop {
                tokio::select! {
                    _ = soak.stop.cancelled() => break false,
                    read = stream.read(&mut buf) => match read {
                        Ok(0) | Err(_) => break true,
                        Ok(n) if seen.len() < 16 * 1024 => seen.extend_from_slice(&buf[..n]),
                        Ok(_) => {}
                    },
                }
            };
            soak.slow_open.fetch_sub(1, Relaxed);
            if cut {
                count.cut.fetch_add(1, Relaxed);
                count
                    .cut_ms
                    .fetch_add(opened.elapsed().as_millis() as u64, Relaxed);
            }
            for at in (0..seen.len()).filter(|&at| seen[at..].starts_with(b"HTTP/1.1 ")) {
                let answer = &seen[at..(at + 300).min(seen.len())];
                let status = answer.get(9..12).map(String::from_utf8_lossy);
                let status = status.and_then(|s| s.parse().ok()).unwrap_or(0);
                soak.stats
                    .status(kind.name(), status, kind.expect(), answer);
            }
        });
    }
}

/// A request abandoned every [`ABRUPT_EVERY`]: a search, a long list or half an upload, sent
/// and dropped a few milliseconds later, half with a reset.
pub async fn abrupt_clients(soak: Arc<Soak>) {
    for n in 0usize.. {
        if !soak.pause(ABRUPT_EVERY).await {
            break;
        }
        let Ok(mut stream) = TcpStream::connect(soak.address).await else {
            soak.stats.transport("abandoned request", "connect failed");
            continue;
        };
        let request = match n % 3 {
            0 => soak.raw_get("/api/tasks/search?q=release"),
            1 => soak.upload_start(256 * 1024, 64 * 1024),
            _ => soak.raw_get("/api/tasks?scope=all&limit=200"),
        };
        let _ = stream.write_all(&request).await;
        tokio::time::sleep(Duration::from_millis(n as u64 % 4 * 5)).await;
        if n % 2 == 0 {
            let _ = stream.set_zero_linger();
        }
        drop(stream);
        soak.stats.abrupt.fetch_add(1, Relaxed);
    }
}
