//! The connection layer under hostile or broken clients (issue 14): silent sockets, trickled
//! heads, stalled uploads and idle keep-alives are closed while the server keeps answering;
//! WebSockets that never read are cut while readers keep receiving; healthy slow clients are
//! not cut. Timeouts are configured small; every wait below is a hang guard, never a
//! measurement.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tasker::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::common::{Account, TestServer, test_config};
use crate::tasks::new_task;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long anything that should happen may take before the test calls it a hang.
const GUARD: Duration = Duration::from_secs(30);

/// A server with the given changes to the test configuration (its data dir lives as long as
/// the returned guard).
async fn spawn(change: impl FnOnce(&mut Config)) -> (TestServer, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = test_config(tmp.path());
    change(&mut config);
    (TestServer::spawn_with(config).await, tmp)
}

async fn connect(server: &TestServer) -> TcpStream {
    TcpStream::connect(server.base.trim_start_matches("http://"))
        .await
        .expect("connects")
}

/// Reads until the server closes the connection (end of stream or reset): what it sent.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 16 << 10];
    tokio::time::timeout(GUARD, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server closes the connection");
    got
}

/// One response read off a kept-alive connection: its head and body (by Content-Length).
async fn read_response(stream: &mut TcpStream) -> (String, Vec<u8>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 16 << 10];
    tokio::time::timeout(GUARD, async {
        loop {
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if got.len() >= end + 4 + length {
                    return (head, got[end + 4..end + 4 + length].to_vec());
                }
            }
            let n = stream.read(&mut buf).await.expect("reads");
            assert!(n > 0, "the connection closed mid-response");
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("a response arrives")
}

/// `/api/health` on a new connection.
async fn health(server: &TestServer) -> u16 {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let response = tokio::time::timeout(GUARD, client.get(server.url("/api/health")).send())
        .await
        .expect("health answers")
        .expect("health answers");
    response.status().as_u16()
}

#[tokio::test]
async fn silent_connections_beyond_the_limit_are_closed_while_health_keeps_answering() {
    let (server, _tmp) = spawn(|c| {
        c.max_connections = 16;
        c.header_timeout = Duration::from_secs(1);
        c.idle_timeout = Duration::from_secs(1);
    })
    .await;
    // More silent sockets than the server takes at once.
    let mut silent = Vec::new();
    for _ in 0..48 {
        silent.push(connect(&server).await);
    }
    for _ in 0..5 {
        assert_eq!(health(&server).await, 200);
    }
    for stream in &mut silent {
        let sent = until_closed(stream).await;
        assert!(
            sent.is_empty(),
            "a silent socket gets no answer, only a close"
        );
    }
    assert_eq!(health(&server).await, 200);
    // Silent sockets open while the server stops do not hold it up.
    let mut late = Vec::new();
    for _ in 0..4 {
        late.push(connect(&server).await);
    }
    assert_eq!(health(&server).await, 200);
    tokio::time::timeout(GUARD, server.stop())
        .await
        .expect("the server stops");
    for stream in &mut late {
        until_closed(stream).await;
    }
}

#[tokio::test]
async fn a_head_trickled_byte_by_byte_is_cut() {
    let (server, _tmp) = spawn(|c| {
        c.header_timeout = Duration::from_secs(1);
        // Only the head's own timeout can cut it: something arrives all the time.
        c.idle_timeout = Duration::from_secs(3600);
    })
    .await;
    let stream = connect(&server).await;
    let (mut reader, mut writer) = stream.into_split();
    let trickle = tokio::spawn(async move {
        writer
            .write_all(b"GET /api/health HTTP/1.1\r\nHost: tasker\r\n")
            .await?;
        loop {
            writer.write_all(b"X-Slow: 1\r\n").await?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        #[allow(unreachable_code)]
        Ok::<(), std::io::Error>(())
    });
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(GUARD, reader.read(&mut buf))
        .await
        .expect("the trickling connection is cut");
    assert!(matches!(read, Ok(0) | Err(_)), "no answer, only a close");
    trickle.abort();
    assert_eq!(health(&server).await, 200);
    server.stop().await;
}

/// The start of the multipart body: the boundary and the `file` part's headers.
const PART_HEAD: &str = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; \
                         filename=\"big.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n";

fn part_head_len() -> usize {
    PART_HEAD.len()
}

/// The request head of a multipart upload to `task` whose body is `length` bytes, and the
/// start of that body ([`PART_HEAD`]); the file's bytes and [`UPLOAD_END`] follow.
fn upload_start(server: &TestServer, who: &Account, task: &str, length: usize) -> Vec<u8> {
    let host = server.base.trim_start_matches("http://");
    format!(
        "POST /api/tasks/{task}/attachments HTTP/1.1\r\nHost: {host}\r\n\
         Authorization: Bearer {}\r\n\
         Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {length}\r\n\r\n\
         {PART_HEAD}",
        who.token
    )
    .into_bytes()
}

const UPLOAD_END: &[u8] = b"\r\n--XyZ--\r\n";

#[tokio::test]
async fn a_stalled_upload_is_answered_408_and_leaves_no_temp_file() {
    let (server, _tmp) = spawn(|c| c.body_timeout = Duration::from_secs(1)).await;
    let me = server.register().await;
    let task = new_task(&server, &me, json!({"title": "stalls"})).await;
    let task = task["id"].as_str().unwrap();
    let mut stream = connect(&server).await;
    let file = vec![b'a'; 64 << 10];
    // Announce 1 MiB of file, send 64 KiB of it, then nothing.
    let head = upload_start(
        &server,
        &me,
        task,
        part_head_len() + (1 << 20) + UPLOAD_END.len(),
    );
    stream.write_all(&head).await.unwrap();
    stream.write_all(&file).await.unwrap();
    let answer = until_closed(&mut stream).await;
    let answer = String::from_utf8_lossy(&answer).to_string();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let lower = answer.to_ascii_lowercase();
    assert!(
        lower.contains("content-type: application/problem+json"),
        "{answer}"
    );
    assert!(lower.contains("connection: close"), "{answer}");
    assert!(answer.contains("\"request_timeout\""), "{answer}");
    // Nothing of it stays on disk, not even in blobs/tmp.
    tokio::time::timeout(GUARD, async {
        while !server.blob_files().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("left behind: {:?}", server.blob_files()));
    // The task has no attachment, and the server carries on.
    let attachments = server
        .get(&format!("/api/tasks/{task}/attachments"), Some(&me.token))
        .await;
    assert_eq!(attachments.ok()["items"], json!([]), "{}", attachments.body);
    assert_eq!(health(&server).await, 200);
    server.stop().await;
}

#[tokio::test]
async fn a_kept_alive_connection_idle_past_the_timeout_is_closed() {
    let (server, _tmp) = spawn(|c| c.idle_timeout = Duration::from_secs(1)).await;
    let mut stream = connect(&server).await;
    for _ in 0..2 {
        stream
            .write_all(b"GET /api/health HTTP/1.1\r\nHost: tasker\r\n\r\n")
            .await
            .unwrap();
        let (head, _) = read_response(&mut stream).await;
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(!head.contains("connection: close"), "kept alive: {head}");
    }
    let after = until_closed(&mut stream).await;
    assert!(after.is_empty(), "closed without a word");
    server.stop().await;
}

#[tokio::test]
async fn steady_clients_are_not_cut_however_long_they_take() {
    let (server, _tmp) = spawn(|c| {
        c.header_timeout = Duration::from_secs(1);
        c.idle_timeout = Duration::from_secs(1);
        c.body_timeout = Duration::from_secs(1);
        c.ws_write_timeout = Duration::from_secs(1);
        c.ws_ping_interval = Duration::from_millis(300);
    })
    .await;
    let me = server.register().await;
    // A kept-alive client asking now and then, for longer than any timeout.
    let client = reqwest::Client::new();
    for _ in 0..10 {
        let response = client.get(server.url("/api/health")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Its connection closed while it waited longer than the idle timeout: it reconnects.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let response = client.get(server.url("/api/health")).send().await.unwrap();
    assert_eq!(response.status(), 200);

    // An upload that takes longer than every timeout but never pauses for one.
    let task = new_task(&server, &me, json!({"title": "slow upload"})).await;
    let task = task["id"].as_str().unwrap();
    let chunk = vec![b'b'; 8 << 10];
    let chunks = 12;
    let length = part_head_len() + chunk.len() * chunks + UPLOAD_END.len();
    let head = upload_start(&server, &me, task, length);
    let mut stream = connect(&server).await;
    stream.write_all(&head).await.unwrap();
    for _ in 0..chunks {
        stream.write_all(&chunk).await.unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stream.write_all(UPLOAD_END).await.unwrap();
    let (head, body) = read_response(&mut stream).await;
    assert!(
        head.starts_with("http/1.1 201"),
        "{head} {}",
        String::from_utf8_lossy(&body)
    );
    let created: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        created["items"][0]["size"],
        chunk.len() * chunks,
        "{created}"
    );

    // A WebSocket that reads stays open past the idle timeout, answering pings.
    let url = format!(
        "{}/api/ws?token={}",
        server.base.replacen("http", "ws", 1),
        me.token
    );
    let (mut socket, _) = connect_async(url).await.expect("the socket opens");
    let quiet = tokio::time::timeout(Duration::from_secs(3), async {
        while let Some(frame) = socket.next().await {
            match frame {
                Ok(Message::Ping(_)) => {}
                other => return other,
            }
        }
        panic!("the socket ended")
    })
    .await;
    assert!(
        quiet.is_err(),
        "only pings while nothing happens: {quiet:?}"
    );
    let marker = new_task(&server, &me, json!({"title": "still here"})).await;
    let seen = next_change(&mut socket).await.expect("the socket is open");
    assert_eq!(seen["data"]["id"], marker["id"]);
    server.stop().await;
}

/// The next change on a WebSocket (pings skipped); `None` when it closed.
async fn next_change(socket: &mut Socket) -> Option<Value> {
    tokio::time::timeout(GUARD, async {
        loop {
            match socket.next().await? {
                Ok(Message::Text(text)) => return Some(serde_json::from_str(&text).unwrap()),
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("a message arrives")
}

/// How the server ended a WebSocket that is read only now: its close code, if it sent one.
async fn end_of(socket: &mut Socket) -> Option<u16> {
    tokio::time::timeout(GUARD, async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    })
    .await
    .expect("the socket has ended")
}

/// The open WebSockets, from `/metrics`.
async fn websockets(server: &TestServer) -> f64 {
    let text = reqwest::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("tasker_websocket_connections "))
        .expect("the gauge")
        .parse()
        .unwrap()
}

async fn open_ws(server: &TestServer, who: &Account) -> Socket {
    let url = format!(
        "{}/api/ws?token={}",
        server.base.replacen("http", "ws", 1),
        who.token
    );
    connect_async(url).await.expect("the socket opens").0
}

#[tokio::test]
async fn websockets_that_never_read_are_cut_and_readers_keep_receiving() {
    let (server, _tmp) = spawn(|c| {
        c.metrics = true;
        c.ws_write_timeout = Duration::from_secs(1);
        c.ws_ping_interval = Duration::from_secs(1);
    })
    .await;
    let me = server.register().await;
    let mut deaf = Vec::new();
    for _ in 0..5 {
        deaf.push(open_ws(&server, &me).await);
    }
    let mut reader = open_ws(&server, &me).await;
    let reading = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(change) = next_change(&mut reader).await {
            let title = change["data"]["changes"]
                .as_array()
                .and_then(|c| c.iter().find(|f| f["field"] == "title"))
                .map(|f| f["to"].as_str().unwrap_or_default().to_string());
            if title.as_deref() == Some("last") {
                return (seen, reader);
            }
            seen.push(change["seq"].as_u64().unwrap());
        }
        panic!("the reading socket was closed");
    });
    // Changes flow until only the reader is left.
    tokio::time::timeout(GUARD, async {
        let mut i = 0;
        while websockets(&server).await > 1.0 {
            new_task(&server, &me, json!({"title": format!("flow {i}")})).await;
            i += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the sockets that never read are cut");
    // Read now, each has ended: with 4008 when the close frame is read before the pong this
    // read sends back draws a reset from the closed socket.
    for socket in &mut deaf {
        let code = end_of(socket).await;
        assert!(matches!(code, None | Some(4008)), "{code:?}");
    }
    new_task(&server, &me, json!({"title": "last"})).await;
    let (seen, _reader) = tokio::time::timeout(GUARD, reading)
        .await
        .expect("the reader receives everything")
        .unwrap();
    assert!(!seen.is_empty());
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "in order");
    assert_eq!(websockets(&server).await, 1.0);
    server.stop().await;
}

#[tokio::test]
async fn a_websocket_whose_buffers_fill_is_cut_by_the_write_timeout() {
    let (server, _tmp) = spawn(|c| {
        c.metrics = true;
        c.ws_write_timeout = Duration::from_secs(1);
        // No ping to give it away: only a write that cannot finish can.
        c.ws_ping_interval = Duration::from_secs(3600);
    })
    .await;
    let me = server.register().await;
    let mut deaf = open_ws(&server, &me).await;
    let description = "x".repeat(20_000);
    // 300 events of 20 kB: far less than the kernel would buffer for a socket left to grow
    // (several MB each way) and than the feed queue holds (1024), so only the write timeout
    // (over a small send buffer) can cut it.
    let mut cut = false;
    for i in 0..300 {
        new_task(
            &server,
            &me,
            json!({"title": format!("big {i}"), "description": description}),
        )
        .await;
        if i % 10 == 9 && websockets(&server).await == 0.0 {
            cut = true;
            break;
        }
    }
    if !cut {
        cut = tokio::time::timeout(GUARD, async {
            while websockets(&server).await > 0.0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .is_ok();
    }
    assert!(cut, "the socket that never reads is cut");
    // Read now, it ends: with 4008 if the close frame fit, else without one.
    let code = end_of(&mut deaf).await;
    assert!(matches!(code, None | Some(4008)), "{code:?}");
    server.stop().await;
}
