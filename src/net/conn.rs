//! One connection: its state ([`Conn`]), its socket ([`Io`]), its requests (bodies that time
//! out, responses that mark the end of a request) and the task that serves it and closes it
//! when it overstays ([`serve_connection`]).
//!
//! A request head hyper cannot parse never reaches the app: hyper answers it itself, with a
//! bare status (400 for bytes HTTP forbids, 431 for too large or too many headers, 414 for
//! too long a URI) and no body, and closes the connection. [`Io`] recognizes that answer as
//! it is written and writes a `problem+json` one in its place ([`head_error_answer`]).

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use poem::error::ResponseError;
use poem::http::{self, StatusCode, Version, header, uri::Scheme};
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Endpoint, Response};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, OwnedSemaphorePermit, mpsc};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

use super::Shared;
use crate::api::error::{ErrorCode, Problem};

/// Set in [`Conn::busy`] once the connection is being closed: no request may start on it.
const CLOSED: usize = 1 << (usize::BITS - 1);
/// The send buffer of an upgraded connection (a WebSocket), in bytes (Linux doubles it). A
/// client that stops reading then blocks the feed's writes after little data, so its write
/// timeout fires, instead of pinning megabytes of kernel memory first.
const UPGRADED_SEND_BUFFER: usize = 64 << 10;

/// What the connection's task, its socket and its requests share.
pub(super) struct Conn {
    id: u64,
    /// Requests in flight, plus [`CLOSED`].
    busy: AtomicUsize,
    /// When the last request ended, or the connection opened (ms on the shared clock).
    idle_since: AtomicU64,
    /// When the first byte arrived since then (ms + 1; 0: none yet).
    head_start: AtomicU64,
    /// A request was answered: waiting for the next is an idle wait, not the first head's.
    served: AtomicBool,
    /// Switched protocols: never idle again; the socket's send buffer is to be made small.
    upgraded: AtomicBool,
    /// Wakes the task: a head began, a request ended, or the connection was evicted.
    changed: Notify,
}

/// Why a connection was closed for overstaying.
#[derive(Debug, Clone, Copy)]
enum Overstay {
    /// A request head did not arrive whole in time (or a new connection sent none).
    Head,
    /// Nothing arrived on a kept-alive connection.
    Idle,
}

impl Conn {
    pub(super) fn new(id: u64, now: u64) -> Self {
        Self {
            id,
            busy: AtomicUsize::new(0),
            idle_since: AtomicU64::new(now),
            head_start: AtomicU64::new(0),
            served: AtomicBool::new(false),
            upgraded: AtomicBool::new(false),
            changed: Notify::new(),
        }
    }

    pub(super) fn is_idle(&self) -> bool {
        self.busy.load(Ordering::SeqCst) == 0
    }

    pub(super) fn idle_since(&self) -> u64 {
        self.idle_since.load(Ordering::SeqCst)
    }

    fn is_closed(&self) -> bool {
        self.busy.load(Ordering::SeqCst) & CLOSED != 0
    }

    /// Marks the connection closed if no request is in flight, and wakes its task to drop it.
    /// No request can start after this succeeds, so closing loses nothing.
    pub(super) fn close_if_idle(&self) -> bool {
        let closed = self
            .busy
            .compare_exchange(0, CLOSED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok();
        if closed {
            self.changed.notify_one();
        }
        closed
    }

    /// A request starts, unless the connection is being closed.
    fn begin(&self) -> bool {
        self.busy
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |busy| {
                (busy & CLOSED == 0).then_some(busy + 1)
            })
            .is_ok()
    }

    /// A request ended (its response was written, or dropped).
    fn end(&self, now: u64) {
        // The idle clock is set before the count drops, so whoever sees it idle sees it fresh.
        self.idle_since.store(now, Ordering::SeqCst);
        self.head_start.store(0, Ordering::SeqCst);
        self.served.store(true, Ordering::SeqCst);
        if self.busy.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.changed.notify_one();
        }
    }

    /// Bytes arrived: if they start a head, its clock starts now.
    fn arrived(&self, now: u64) {
        if self.head_start.load(Ordering::Relaxed) == 0
            && self
                .head_start
                .compare_exchange(0, now + 1, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            self.changed.notify_one();
        }
    }

    /// When the connection is to be closed if it stays as it is: `None` while a request is in
    /// flight.
    fn deadline(&self, shared: &Shared) -> Option<(Instant, Overstay)> {
        if self.busy.load(Ordering::SeqCst) != 0 {
            return None;
        }
        let limits = &shared.limits;
        let head = self.head_start.load(Ordering::SeqCst);
        let (from, after, why) = if head != 0 {
            (head - 1, limits.header_timeout, Overstay::Head)
        } else if self.served.load(Ordering::SeqCst) {
            (self.idle_since(), limits.idle_timeout, Overstay::Idle)
        } else {
            (self.idle_since(), limits.header_timeout, Overstay::Head)
        };
        Some((shared.instant(from) + after, why))
    }
}

/// A connection's socket: reports arriving bytes to its [`Conn`], fails writes its client
/// stops taking for the body timeout, and holds the connection's slot until it is dropped
/// (after an upgrade, that is when the WebSocket ends).
pub(super) struct Io {
    stream: TcpStream,
    conn: Arc<Conn>,
    shared: Arc<Shared>,
    _slot: OwnedSemaphorePermit,
    /// Armed while a write waits for the client to take data.
    stall: Pin<Box<Sleep>>,
    stalled: bool,
    small_buffer: bool,
    /// The problem being written in place of hyper's answer to a head it could not parse.
    replacing: Option<Replacement>,
}

/// Bytes written in place of a write of `claimed` bytes.
struct Replacement {
    bytes: Bytes,
    written: usize,
    claimed: usize,
}

impl Io {
    pub(super) fn new(
        stream: TcpStream,
        conn: Arc<Conn>,
        shared: Arc<Shared>,
        slot: OwnedSemaphorePermit,
    ) -> Self {
        Self {
            stream,
            conn,
            shared,
            _slot: slot,
            stall: Box::pin(tokio::time::sleep(Duration::ZERO)),
            stalled: false,
            small_buffer: false,
            replacing: None,
        }
    }

    /// Starts replacing `buf` when it is hyper's own answer to a request head it could not
    /// parse: written while no request is in flight and a head has begun to arrive, so never
    /// a piece of a response of the app.
    fn replace_head_error(&mut self, buf: &[u8]) {
        if self.replacing.is_none()
            && self.conn.is_idle()
            && self.conn.head_start.load(Ordering::SeqCst) != 0
            && let Some(bytes) = head_error_answer(buf)
        {
            self.replacing = Some(Replacement {
                bytes,
                written: 0,
                claimed: buf.len(),
            });
        }
    }

    /// Writes the replacement; once it is all out, reports the write it replaced as done.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        loop {
            let Some(replacement) = &self.replacing else {
                return Poll::Ready(Ok(0));
            };
            if replacement.written == replacement.bytes.len() {
                let claimed = replacement.claimed;
                self.replacing = None;
                return Poll::Ready(Ok(claimed));
            }
            let rest = replacement.bytes.slice(replacement.written..);
            let polled = Pin::new(&mut self.stream).poll_write(cx, &rest);
            match ready!(self.progress(cx, polled)) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    if let Some(replacement) = &mut self.replacing {
                        replacement.written += n;
                    }
                }
                Err(error) => return Poll::Ready(Err(error)),
            }
        }
    }

    /// Passes on what a write step gave, failing it when it has waited for the body timeout.
    fn progress<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match polled {
            Poll::Pending => {
                if !self.stalled {
                    self.stalled = true;
                    let deadline = Instant::now() + self.shared.limits.body_timeout;
                    self.stall.as_mut().reset(deadline);
                }
                ready!(self.stall.as_mut().poll(cx));
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client stopped taking data",
                )))
            }
            done => {
                self.stalled = false;
                done
            }
        }
    }

    fn before_write(&mut self) {
        if !self.small_buffer && self.conn.upgraded.load(Ordering::Relaxed) {
            self.small_buffer = true;
            if let Err(error) =
                socket2::SockRef::from(&self.stream).set_send_buffer_size(UPGRADED_SEND_BUFFER)
            {
                tracing::debug!(%error, "cannot shrink an upgraded connection's send buffer");
            }
        }
    }
}

impl Drop for Io {
    fn drop(&mut self) {
        self.shared.open().remove(&self.conn.id);
    }
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.conn.arrived(this.shared.now());
        }
        polled
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.before_write();
        this.replace_head_error(buf);
        if this.replacing.is_some() {
            return this.poll_replacement(cx);
        }
        let polled = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.progress(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.before_write();
        if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
            this.replace_head_error(first);
        }
        if this.replacing.is_some() {
            return this.poll_replacement(cx);
        }
        let polled = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.progress(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_flush(cx);
        this.progress(cx, polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_shutdown(cx);
        this.progress(cx, polled)
    }
}

/// A request in flight on a connection; it ends when this drops (with its response's body).
struct InFlight {
    conn: Arc<Conn>,
    shared: Arc<Shared>,
    armed: bool,
}

impl InFlight {
    fn begin(conn: &Arc<Conn>, shared: &Arc<Shared>) -> Option<Self> {
        conn.begin().then(|| Self {
            conn: conn.clone(),
            shared: shared.clone(),
            armed: true,
        })
    }

    /// The connection switched protocols: it stays busy for good.
    fn upgraded(mut self) {
        self.conn.upgraded.store(true, Ordering::SeqCst);
        self.armed = false;
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.armed {
            self.conn.end(self.shared.now());
        }
    }
}

/// A response body that keeps its request in flight until it is written (or dropped).
struct Tracked {
    body: BoxBody<Bytes, io::Error>,
    _in_flight: InFlight,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A request body that fails when nothing arrives for `timeout` while it is being read.
struct Progressing {
    body: BoxBody<Bytes, io::Error>,
    timeout: Duration,
    stall: Pin<Box<Sleep>>,
    stalled: bool,
    /// Set when it failed, for the response to become a 408.
    timed_out: Arc<AtomicBool>,
}

impl HttpBody for Progressing {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        if this.timed_out.load(Ordering::SeqCst) {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Pending => {
                if !this.stalled {
                    this.stalled = true;
                    this.stall.as_mut().reset(Instant::now() + this.timeout);
                }
                ready!(this.stall.as_mut().poll(cx));
                this.timed_out.store(true, Ordering::SeqCst);
                Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the request body stopped arriving",
                ))))
            }
            frame => {
                this.stalled = false;
                frame
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A `problem+json` answer in place of `written` when that is hyper's answer to a request
/// head it could not parse: exactly a status line of 400, 414 or 431 and no headers but
/// `content-length: 0`, `date` and `connection`. The answer keeps the status and the date and
/// says `Connection: close` (hyper closes the connection after it).
fn head_error_answer(written: &[u8]) -> Option<Bytes> {
    let head = written.strip_suffix(b"\r\n\r\n")?;
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.strip_prefix("HTTP/1.1 ")?;
    let (code, detail) = match status.split_once(' ')?.0 {
        "400" => (
            ErrorCode::BadRequest,
            "the request head is malformed (e.g. a header name or value with bytes HTTP forbids)",
        ),
        "414" => (ErrorCode::UriTooLong, "the request's URI is too long"),
        "431" => (
            ErrorCode::HeadersTooLarge,
            "the request's headers are too large or too many",
        ),
        _ => return None,
    };
    let mut date = None;
    let mut empty = false;
    for line in lines {
        let (name, value) = line.split_once(": ")?;
        match name.to_ascii_lowercase().as_str() {
            "content-length" => empty = value == "0",
            "date" => date = Some(value),
            "connection" => {}
            _ => return None,
        }
    }
    if !empty {
        return None;
    }
    let problem = Problem::new(
        status.split_once(' ')?.0.parse::<StatusCode>().ok()?,
        code,
        detail,
    );
    let body = poem_openapi::types::ToJSON::to_json_string(&problem);
    let mut answer = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n",
        crate::api::error::PROBLEM_JSON,
        body.len()
    );
    if let Some(date) = date {
        answer.push_str(&format!("date: {date}\r\n"));
    }
    answer.push_str("\r\n");
    answer.push_str(&body);
    Some(Bytes::from(answer))
}

/// The answer to a request whose body stopped arriving.
fn request_timeout(version: Version, timeout: Duration) -> Response {
    let mut response = Problem::new(
        StatusCode::REQUEST_TIMEOUT,
        ErrorCode::RequestTimeout,
        format!(
            "the request body stopped arriving for {}s; send it again",
            timeout.as_secs()
        ),
    )
    .as_response();
    if version < Version::HTTP_2 {
        response
            .headers_mut()
            .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
    }
    response
}

/// Serves one request on `conn`.
async fn handle<E: Endpoint<Output = Response>>(
    app: &E,
    shared: &Arc<Shared>,
    conn: &Arc<Conn>,
    local: &LocalAddr,
    remote: &RemoteAddr,
    req: http::Request<Incoming>,
) -> http::Response<BoxBody<Bytes, io::Error>> {
    let version = req.version();
    let Some(in_flight) = InFlight::begin(conn, shared) else {
        // The connection is being closed; the client tries again on another.
        let mut refused = http::Response::new(BoxBody::default());
        *refused.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        refused
            .headers_mut()
            .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
        return refused;
    };
    let mut req = poem::Request::from((req, local.clone(), remote.clone(), Scheme::HTTP));
    let timeout = shared.limits.body_timeout;
    let timed_out = Arc::new(AtomicBool::new(false));
    let body = Progressing {
        body: req.take_body().into(),
        timeout,
        stall: Box::pin(tokio::time::sleep(Duration::ZERO)),
        stalled: false,
        timed_out: timed_out.clone(),
    };
    req.set_body(poem::Body::from(BoxBody::new(body)));
    let mut response = app.get_response(req).await;
    if timed_out.load(Ordering::SeqCst) {
        tracing::debug!(remote_addr = %remote, "a request body stopped arriving: 408");
        response = request_timeout(version, timeout);
    }
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        in_flight.upgraded();
        return response.into();
    }
    let (parts, body) = http::Response::<BoxBody<Bytes, io::Error>>::from(response).into_parts();
    let body = Tracked {
        body,
        _in_flight: in_flight,
    };
    http::Response::from_parts(parts, BoxBody::new(body))
}

/// What [`serve_connection`] needs.
pub(super) struct Connection<E> {
    pub(super) shared: Arc<Shared>,
    pub(super) conn: Arc<Conn>,
    pub(super) io: Io,
    pub(super) app: Arc<E>,
    pub(super) local: LocalAddr,
    pub(super) remote: RemoteAddr,
    /// Graceful shutdown began: close if idle, else finish what is in flight.
    pub(super) stop: CancellationToken,
    /// The grace period is over: drop the connection.
    pub(super) abort: CancellationToken,
    /// Dropped when this connection is done.
    pub(super) alive: mpsc::Sender<()>,
}

/// Serves a connection until it ends, is upgraded (the socket then lives on in the
/// WebSocket), overstays, is evicted, or the server stops.
pub(super) async fn serve_connection<E: Endpoint<Output = Response> + 'static>(
    connection: Connection<E>,
) {
    let Connection {
        shared,
        conn,
        io,
        app,
        local,
        remote,
        stop,
        abort,
        alive: _alive,
    } = connection;
    let service = hyper::service::service_fn({
        let (shared, conn, remote) = (shared.clone(), conn.clone(), remote.clone());
        move |req: http::Request<Incoming>| {
            let (app, shared, conn, local, remote) = (
                app.clone(),
                shared.clone(),
                conn.clone(),
                local.clone(),
                remote.clone(),
            );
            async move { Ok::<_, Infallible>(handle(&*app, &shared, &conn, &local, &remote, req).await) }
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // As poem's server has them.
    builder
        .http2()
        .max_pending_accept_reset_streams(20)
        .max_header_list_size(16 << 10);
    let served = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(served);
    let mut stopping = false;
    loop {
        let (at, why) = conn.deadline(&shared).unwrap_or((
            Instant::now() + Duration::from_secs(24 * 3600),
            Overstay::Idle,
        ));
        tokio::select! {
            biased;
            _ = abort.cancelled() => return,
            _ = &mut served => return,
            _ = stop.cancelled(), if !stopping => {
                stopping = true;
                if conn.close_if_idle() {
                    return;
                }
                served.as_mut().graceful_shutdown();
            }
            _ = conn.changed.notified() => {}
            _ = tokio::time::sleep_until(at) => {
                if conn.close_if_idle() {
                    tracing::debug!(remote_addr = %remote, reason = ?why, "closing a connection that overstayed");
                    return;
                }
            }
        }
        if conn.is_closed() {
            // Evicted to make room for a new connection.
            return;
        }
    }
}
