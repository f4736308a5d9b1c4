//! A real SMTP server on 127.0.0.1 for the mail tests: it speaks enough of RFC 5321 for
//! lettre (EHLO/HELO, MAIL, RCPT, DATA with dot-stuffing, RSET, NOOP, QUIT), keeps what it
//! accepted, and can answer 4xx (a temporary failure), 5xx (a permanent one) or be stopped
//! (connection refused) and started again on the same port. No TLS: the tests use
//! `?tls=none`, as with a local relay.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// How the server answers a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 250: accepted.
    Accept,
    /// 451 after DATA: try again later.
    TempFail,
    /// 550 to RCPT: refused for good.
    Reject,
}

/// One message the server accepted.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent (headers and body), dot-stuffing removed.
    pub data: String,
}

#[derive(Default)]
struct State {
    mode: Option<Mode>,
    messages: Vec<Received>,
    /// Transactions answered 4xx or 5xx.
    refused: usize,
}

pub struct SmtpServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    arrived: Arc<Notify>,
    task: Option<JoinHandle<()>>,
}

impl SmtpServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind smtp");
        let addr = listener.local_addr().unwrap();
        let mut server = Self {
            addr,
            state: Arc::new(Mutex::new(State {
                mode: Some(Mode::Accept),
                ..State::default()
            })),
            arrived: Arc::new(Notify::new()),
            task: None,
        };
        server.task = Some(server.serve(listener));
        server
    }

    /// `smtp://127.0.0.1:PORT?tls=none`.
    pub fn url(&self) -> String {
        format!("smtp://{}?tls=none", self.addr)
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = Some(mode);
    }

    /// Closes the port: connections are refused until [`Self::restart`].
    pub async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens again on the same port.
    pub async fn restart(&mut self) {
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot listen on {} again: {e}", self.addr),
            }
        };
        self.task = Some(self.serve(listener));
    }

    pub fn messages(&self) -> Vec<Received> {
        self.state.lock().unwrap().messages.clone()
    }

    /// Transactions answered with an error so far.
    pub fn refused(&self) -> usize {
        self.state.lock().unwrap().refused
    }

    /// Waits until at least `n` messages arrived (at most 30 s) and returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        self.wait_until(|s| s.messages.len() >= n).await;
        self.messages()
    }

    /// Waits until at least `n` transactions were refused (at most 30 s).
    pub async fn wait_refused(&self, n: usize) {
        self.wait_until(|s| s.refused >= n).await;
    }

    async fn wait_until(&self, done: impl Fn(&State) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let notified = self.arrived.notified();
            if done(&self.state.lock().unwrap()) {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let state = self.state.lock().unwrap();
                panic!(
                    "the SMTP server waited 30 s in vain: {} messages, {} refused",
                    state.messages.len(),
                    state.refused
                );
            }
        }
    }

    fn serve(&self, listener: TcpListener) -> JoinHandle<()> {
        let (state, arrived) = (self.state.clone(), self.arrived.clone());
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let (state, arrived) = (state.clone(), arrived.clone());
                tokio::spawn(async move {
                    let _ = session(socket, state, arrived).await;
                });
            }
        })
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn session(
    socket: TcpStream,
    state: Arc<Mutex<State>>,
    arrived: Arc<Notify>,
) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 test-smtp ESMTP ready\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::<String>::new());
    let mode = || state.lock().unwrap().mode.unwrap_or(Mode::Accept);
    let refuse = || {
        state.lock().unwrap().refused += 1;
        arrived.notify_waiters();
    };
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_string();
        let verb = command
            .split([' ', ':'])
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply: String = match verb.as_str() {
            "EHLO" => "250-test-smtp\r\n250-8BITMIME\r\n250 SIZE 10485760".into(),
            "HELO" => "250 test-smtp".into(),
            "MAIL" => {
                from = address(&command);
                to.clear();
                "250 2.1.0 OK".into()
            }
            "RCPT" => {
                if mode() == Mode::Reject {
                    refuse();
                    "550 5.1.1 no such mailbox".into()
                } else {
                    to.push(address(&command));
                    "250 2.1.5 OK".into()
                }
            }
            "DATA" => {
                write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let mut data = String::new();
                loop {
                    let mut line = String::new();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                if mode() == Mode::TempFail {
                    refuse();
                    "451 4.3.0 try again later".into()
                } else {
                    let mut s = state.lock().unwrap();
                    s.messages.push(Received {
                        from: from.clone(),
                        to: std::mem::take(&mut to),
                        data,
                    });
                    let n = s.messages.len();
                    drop(s);
                    arrived.notify_waiters();
                    format!("250 2.0.0 queued as TEST{n}")
                }
            }
            "RSET" => {
                to.clear();
                "250 OK".into()
            }
            "NOOP" => "250 OK".into(),
            "QUIT" => {
                write.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(());
            }
            _ => "502 5.5.2 command not recognized".into(),
        };
        write.write_all(format!("{reply}\r\n").as_bytes()).await?;
    }
}

/// The address between `<` and `>`.
fn address(command: &str) -> String {
    command
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(addr, _)| addr.to_string())
        .unwrap_or_default()
}

impl Received {
    /// The value of header `name` in the message's top headers (unfolded).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    }

    /// The decoded subject (lettre encodes non-ASCII ones; tests use ASCII).
    pub fn subject(&self) -> String {
        self.header("Subject").unwrap_or_default()
    }

    /// The decoded body of the part with `content_type` (`text/plain`, `text/html`).
    pub fn part(&self, content_type: &str) -> String {
        let boundary = self
            .data
            .split("boundary=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a multipart message");
        for part in self.data.split(&format!("--{boundary}")).skip(1) {
            let Some((head, body)) = part.split_once("\r\n\r\n") else {
                continue;
            };
            let head_lower = head.to_ascii_lowercase();
            if !head_lower.contains(&format!("content-type: {content_type}")) {
                continue;
            }
            let body = body.trim_end_matches("\r\n");
            if head_lower.contains("content-transfer-encoding: quoted-printable") {
                return quoted_printable(body);
            }
            if head_lower.contains("content-transfer-encoding: base64") {
                let joined: String = body.split_whitespace().collect();
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(joined)
                    .expect("base64 part");
                return String::from_utf8(bytes).expect("UTF-8 part");
            }
            return body.replace("\r\n", "\n");
        }
        panic!("no {content_type} part in:\n{}", self.data);
    }

    pub fn text(&self) -> String {
        self.part("text/plain")
    }

    pub fn html(&self) -> String {
        self.part("text/html")
    }

    /// The first link in the plain-text part that starts with `prefix`.
    pub fn link(&self, prefix: &str) -> String {
        let text = self.text();
        let start = text
            .find(prefix)
            .unwrap_or_else(|| panic!("no link {prefix} in:\n{text}"));
        text[start..].split_whitespace().next().unwrap().to_string()
    }

    /// The `token` query parameter of the first link starting with `prefix`.
    pub fn token(&self, prefix: &str) -> String {
        let link = self.link(prefix);
        link.split_once("token=")
            .map(|(_, t)| t.split('&').next().unwrap().to_string())
            .unwrap_or_else(|| panic!("no token in {link}"))
    }
}

fn quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len() + 1
            && let Some(byte) = joined
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out)
        .expect("UTF-8 part")
        .replace("\r\n", "\n")
}
