//! Request rate limits (governor's GCRA, keyed): every request per client address; login and
//! registration per client address and per account (the email in the body, lower-cased);
//! password checks of a profile change per account (the same bucket as its logins); WebSocket
//! upgrades per client address and per account (the session's user). Over a limit the answer
//! is `429 rate_limited` with `Retry-After` in whole seconds.
//!
//! The client address is the socket peer unless the peer is one of `--trusted-proxies`: then
//! `X-Forwarded-For` is read from the right, each trusted proxy vouching for the hop before
//! it, and the first address that is not a trusted proxy is the client (see [`walk_forwarded`]).
//! IPv6 addresses are keyed by their /64, which one host usually holds whole.
//!
//! The keyed maps forget idle keys: every [`SWEEP_EVERY`], the first request to notice runs
//! `retain_recent`, so the maps hold only clients seen within about one refill period.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use poem::error::ResponseError;
use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Endpoint, IntoResponse, Request, Response};

use super::error::{ErrorCode, Problem};
use crate::config::{Limit, RateLimits, TrustedProxies};
use crate::domain::UserId;
use crate::service::{AuthUser, SESSION_COOKIE, Service};

/// How often idle keys are dropped from the limiters' maps.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Emails longer than this are not keyed (they fail validation, and the per-address limit
/// still applies), so a key never holds more than a real address.
const EMAIL_KEY_MAX_BYTES: usize = 320;
/// The WebSocket feed's path.
const WS_PATH: &str = "/api/ws";

/// The client's address as the server sees it, kept with the request by [`note_client`]
/// (sessions record it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

/// The socket peer (unspecified when the request did not come over TCP).
fn peer(req: &Request) -> IpAddr {
    req.remote_addr()
        .as_socket_addr()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip().to_canonical())
}

/// Whether the request came straight from one of the trusted proxies, so that its forwarding
/// headers (`X-Forwarded-Proto`, `X-Forwarded-Host`) are believed.
pub fn from_trusted_proxy(req: &Request, proxies: &TrustedProxies) -> bool {
    proxies.trusts(peer(req))
}

/// The first value of a forwarding header, when a trusted proxy sent it.
pub fn forwarded<'a>(req: &'a Request, name: &str, proxies: &TrustedProxies) -> Option<&'a str> {
    from_trusted_proxy(req, proxies)
        .then(|| req.header(name))
        .flatten()
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Whether an `Origin` header value names this server as the browser reached it: our host
/// is `X-Forwarded-Host` from one of the trusted proxies, else the `Host` header (or the
/// request's authority).
pub fn origin_is_ours(req: &Request, origin: &str, proxies: &TrustedProxies) -> bool {
    let Some((_, host)) = origin.split_once("://") else {
        return false;
    };
    let ours = forwarded(req, "x-forwarded-host", proxies)
        .or_else(|| req.header(header::HOST))
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    ours.is_some_and(|ours| ours.eq_ignore_ascii_case(host.trim_end_matches('/')))
}

/// The client's address: the socket peer, or behind trusted proxies the address they vouch
/// for (see [`walk_forwarded`]).
pub fn client_address(req: &Request, proxies: &TrustedProxies) -> IpAddr {
    let peer = peer(req);
    if !proxies.trusts(peer) {
        return peer;
    }
    // Every `X-Forwarded-For` header in order, as one list; a value that is not text is one
    // malformed entry.
    let hops: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|value| match value.to_str() {
            Ok(list) => list.split(',').collect::<Vec<_>>(),
            Err(_) => vec![""],
        })
        .collect();
    walk_forwarded(peer, &hops, proxies)
}

/// Reads `X-Forwarded-For` entries (`hops`, leftmost first) from the right: each trusted
/// address vouches for the entry before it, so the first untrusted entry is the client. All
/// trusted: the leftmost. A malformed entry ends the walk at the last address known good
/// (the proxy that appended it, or the socket peer). An untrusted `peer` is the client
/// whatever the header says.
pub fn walk_forwarded(peer: IpAddr, hops: &[&str], proxies: &TrustedProxies) -> IpAddr {
    let mut client = peer;
    if !proxies.trusts(peer) {
        return client;
    }
    for hop in hops.iter().rev() {
        let Some(address) = parse_hop(hop) else {
            return client;
        };
        client = address;
        if !proxies.trusts(address) {
            break;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, optionally with a port (`1.2.3.4:5`, `[::1]:5`)
/// or in brackets (`[::1]`), as some proxies write them.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            hop.strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .and_then(|h| h.parse::<Ipv6Addr>().ok())
                .map(IpAddr::V6)
        })
        .map(|ip| ip.to_canonical())
}

/// Keeps the client's address with the request for the handlers.
pub async fn note_client<E: Endpoint>(
    next: Arc<E>,
    mut req: Request,
    proxies: Arc<TrustedProxies>,
) -> poem::Result<Response> {
    let address = client_address(&req, &proxies);
    req.extensions_mut().insert(ClientAddress(address));
    next.call(req).await.map(IntoResponse::into_response)
}

/// The limiters of one server.
pub struct Limiter {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    auth_per_ip: DefaultKeyedRateLimiter<IpAddr>,
    auth_per_account: DefaultKeyedRateLimiter<String>,
    ws_per_ip: DefaultKeyedRateLimiter<IpAddr>,
    ws_per_account: DefaultKeyedRateLimiter<UserId>,
    proxies: Arc<TrustedProxies>,
    started: Instant,
    /// Seconds after `started` of the last sweep.
    last_sweep: AtomicU64,
}

fn quota(limit: Limit) -> Quota {
    let burst = NonZeroU32::new(limit.burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(limit.period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
        .allow_burst(burst)
}

impl Limiter {
    pub fn new(limits: &RateLimits, proxies: Arc<TrustedProxies>) -> Self {
        Self {
            per_ip: RateLimiter::keyed(quota(limits.per_ip)),
            auth_per_ip: RateLimiter::keyed(quota(limits.auth_per_ip)),
            auth_per_account: RateLimiter::keyed(quota(limits.auth_per_account)),
            ws_per_ip: RateLimiter::keyed(quota(limits.ws_per_ip)),
            ws_per_account: RateLimiter::keyed(quota(limits.ws_per_account)),
            proxies,
            started: Instant::now(),
            last_sweep: AtomicU64::new(0),
        }
    }

    /// The address a request is counted against.
    fn client(&self, req: &Request) -> IpAddr {
        match client_address(req, &self.proxies) {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(Ipv6Addr::from(v6.to_bits() & !u128::from(u64::MAX))),
            },
            v4 => v4,
        }
    }

    /// Drops idle keys once every [`SWEEP_EVERY`].
    fn sweep_now_and_then(&self) {
        let now = self.started.elapsed().as_secs();
        let last = self.last_sweep.load(Ordering::Relaxed);
        if now >= last + SWEEP_EVERY.as_secs()
            && self
                .last_sweep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.per_ip.retain_recent();
            self.per_ip.shrink_to_fit();
            self.auth_per_ip.retain_recent();
            self.auth_per_ip.shrink_to_fit();
            self.auth_per_account.retain_recent();
            self.auth_per_account.shrink_to_fit();
            self.ws_per_ip.retain_recent();
            self.ws_per_ip.shrink_to_fit();
            self.ws_per_account.retain_recent();
            self.ws_per_account.shrink_to_fit();
        }
    }
}

/// `Err(wait)` when `key` is over its limit.
fn check<K>(limiter: &DefaultKeyedRateLimiter<K>, key: &K) -> Result<(), Duration>
where
    K: std::hash::Hash + Eq + Clone,
{
    limiter
        .check_key(key)
        .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
}

/// The 429 answer: a problem with `Retry-After` in whole seconds, at least 1.
fn too_many(wait: Duration, what: &str) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    let mut response = Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
        format!("too many {what}; retry in {seconds} s"),
    )
    .as_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// The general limit: every request, per client address (the WebSocket upgrade included).
pub async fn limit_requests<E: Endpoint>(
    next: Arc<E>,
    req: Request,
    limiter: Option<Arc<Limiter>>,
) -> poem::Result<Response> {
    if let Some(limiter) = limiter {
        limiter.sweep_now_and_then();
        if let Err(wait) = check(&limiter.per_ip, &limiter.client(&req)) {
            return Ok(too_many(wait, "requests"));
        }
    }
    next.call(req).await.map(IntoResponse::into_response)
}

/// What a request is, for the per-account limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Guarded {
    /// Login, registration, set-up: the email in the body.
    SignIn,
    /// A profile change that may check `current_password`: the signed-in account's email.
    PasswordCheck,
    /// A WebSocket upgrade: the signed-in account.
    Upgrade,
}

fn guarded(req: &Request) -> Option<Guarded> {
    let (method, path) = (req.method(), req.uri().path());
    match path {
        "/api/auth/login"
        | "/api/auth/register"
        | "/signin"
        | "/register"
        | "/setup"
        | "/api/auth/password/forgot"
        | "/forgot-password"
            if method == Method::POST =>
        {
            Some(Guarded::SignIn)
        }
        "/api/auth/profile" if method == Method::PUT => Some(Guarded::PasswordCheck),
        "/api/users/me" if method == Method::PATCH => Some(Guarded::PasswordCheck),
        "/profile/email" | "/profile/password" if method == Method::POST => {
            Some(Guarded::PasswordCheck)
        }
        WS_PATH if method == Method::GET => Some(Guarded::Upgrade),
        _ => None,
    }
}

/// The limits that need to know the account: sign-in (`POST /api/auth/login`,
/// `/api/auth/register`, the web app's `/signin`, `/register`, `/setup`) per client address,
/// then per account; password checks (`PUT /api/auth/profile`, `PATCH /api/users/me`, the web
/// app's `/profile/email` and `/profile/password` with a current password) per account, in
/// the same bucket as its logins, so a stolen session guesses no faster than a login form;
/// WebSocket upgrades per client address, then per account. Runs after the body-size limit
/// and the duplicate-key check, so the body is in memory and means one thing.
pub async fn limit_per_account<E: Endpoint>(
    next: Arc<E>,
    mut req: Request,
    limiter: Option<Arc<Limiter>>,
    service: Service,
) -> poem::Result<Response> {
    let Some((limiter, what)) = limiter.zip(guarded(&req)) else {
        return next.call(req).await.map(IntoResponse::into_response);
    };
    match what {
        Guarded::SignIn => {
            if let Err(wait) = check(&limiter.auth_per_ip, &limiter.client(&req)) {
                return Ok(too_many(wait, "sign-in attempts from this address"));
            }
            let body = req.take_body().into_bytes().await?;
            let account = account_key(&body);
            req.set_body(body);
            if let Some(account) = account
                && let Err(wait) = check(&limiter.auth_per_account, &account)
            {
                return Ok(too_many(wait, "sign-in attempts for this account"));
            }
        }
        Guarded::PasswordCheck => {
            let body = req.take_body().into_bytes().await?;
            let checks_password = has_current_password(&body);
            req.set_body(body);
            if checks_password
                && let Some(user) = requester(&req, &service).await
                && let Ok(profile) = service.profile(&user).await
                && let Err(wait) = check(
                    &limiter.auth_per_account,
                    &profile.email.as_str().to_lowercase(),
                )
            {
                return Ok(too_many(wait, "password attempts for this account"));
            }
        }
        Guarded::Upgrade => {
            if let Err(wait) = check(&limiter.ws_per_ip, &limiter.client(&req)) {
                return Ok(too_many(wait, "WebSocket connections from this address"));
            }
            if let Some(user) = requester(&req, &service).await
                && let Err(wait) = check(&limiter.ws_per_account, &user.user_id)
            {
                return Ok(too_many(wait, "WebSocket connections for this account"));
            }
        }
    }
    next.call(req).await.map(IntoResponse::into_response)
}

/// The signed-in user of a request, as its handler will see it: a bearer token (the header,
/// or `?token=` on the WebSocket), else the web app's session cookie; `None` when neither is
/// valid (the handler then refuses the request). A cookie counts on the WebSocket only from
/// this server's own pages, as the handler requires, so another site cannot spend a visitor's
/// quota.
async fn requester(req: &Request, service: &Service) -> Option<AuthUser> {
    let header = req.header("authorization").and_then(|v| {
        v.strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
    });
    let query = (req.uri().path() == WS_PATH)
        .then(|| {
            serde_urlencoded::from_str::<Vec<(String, String)>>(req.uri().query().unwrap_or(""))
                .ok()?
                .into_iter()
                .find(|(name, _)| name == "token")
                .map(|(_, token)| token)
        })
        .flatten();
    if let Some(token) = header.map(str::to_owned).or(query) {
        return service.authenticate(&token).await.ok();
    }
    let cookie = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim_matches('"').to_string())?;
    if req.uri().path() == WS_PATH {
        let same_origin = match (req.header("origin"), req.header("host")) {
            (Some(origin), Some(host)) => origin
                .split_once("://")
                .is_some_and(|(_, origin_host)| origin_host.eq_ignore_ascii_case(host)),
            _ => false,
        };
        if !same_origin {
            return None;
        }
    }
    service.authenticate_cookie(&cookie).await.ok()
}

/// The email of a login or registration body (JSON, or a web form), trimmed and lower-cased;
/// `None` when the body has none (the handler then answers 400 or 422).
fn account_key(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct EmailOnly {
        email: Option<String>,
    }
    let email = serde_json::from_slice::<EmailOnly>(body)
        .or_else(|_| serde_urlencoded::from_bytes::<EmailOnly>(body))
        .ok()?
        .email?;
    let email = email.trim();
    (!email.is_empty() && email.len() <= EMAIL_KEY_MAX_BYTES).then(|| email.to_lowercase())
}

/// Whether a profile change (JSON, or a web form) carries a current password to check.
fn has_current_password(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct CurrentPassword {
        current_password: Option<String>,
    }
    serde_json::from_slice::<CurrentPassword>(body)
        .or_else(|_| serde_urlencoded::from_bytes::<CurrentPassword>(body))
        .ok()
        .and_then(|body| body.current_password)
        .is_some_and(|password| !password.is_empty())
}

/// A request from socket peer `peer` with `headers`, for tests of what depends on the peer.
#[cfg(test)]
pub(crate) fn request_from(peer: &str, headers: &[(&str, &str)]) -> Request {
    use poem::web::{LocalAddr, RemoteAddr};
    let mut builder = poem::http::Request::builder()
        .method(Method::POST)
        .uri("/x");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let (parts, ()) = builder.body(()).unwrap().into_parts();
    let peer: SocketAddr = peer.parse().unwrap();
    let parts = poem::RequestParts::from((
        parts,
        LocalAddr::default(),
        RemoteAddr(peer.into()),
        poem::http::uri::Scheme::HTTP,
    ));
    Request::from_parts(parts, poem::Body::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(list: &str) -> TrustedProxies {
        TrustedProxies::parse(list).unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_walk_stops_at_the_first_untrusted_hop_from_the_right() {
        let trusted = proxies("127.0.0.0/8,::1,10.0.0.0/8");
        let local = ip("127.0.0.1");
        // One proxy: what it appended is the client; what the client sent is ignored.
        assert_eq!(
            walk_forwarded(local, &["6.6.6.6", "198.51.100.4"], &trusted),
            ip("198.51.100.4")
        );
        // A chain of trusted proxies is skipped.
        assert_eq!(
            walk_forwarded(local, &["6.6.6.6", "198.51.100.4", "10.1.2.3"], &trusted),
            ip("198.51.100.4")
        );
        // All trusted: the leftmost.
        assert_eq!(
            walk_forwarded(local, &["10.9.9.9", "10.1.2.3"], &trusted),
            ip("10.9.9.9")
        );
        // No header: the peer itself.
        assert_eq!(walk_forwarded(local, &[], &trusted), local);
        // A malformed entry ends the walk at the hop that vouched for it.
        assert_eq!(
            walk_forwarded(local, &["198.51.100.4", "unknown", "10.1.2.3"], &trusted),
            ip("10.1.2.3")
        );
        assert_eq!(walk_forwarded(local, &["nonsense"], &trusted), local);
        assert_eq!(walk_forwarded(local, &[""], &trusted), local);
        // An untrusted peer is the client whatever it says.
        assert_eq!(
            walk_forwarded(ip("203.0.113.7"), &["198.51.100.4"], &trusted),
            ip("203.0.113.7")
        );
        assert_eq!(
            walk_forwarded(local, &["198.51.100.4"], &TrustedProxies::none()),
            local
        );
    }

    #[test]
    fn hops_may_carry_ports_brackets_and_mapped_addresses() {
        let trusted = proxies("127.0.0.1,10.0.0.0/8");
        let local = ip("127.0.0.1");
        assert_eq!(
            walk_forwarded(local, &[" 198.51.100.4:5123 "], &trusted),
            ip("198.51.100.4")
        );
        assert_eq!(
            walk_forwarded(local, &["[2001:db8::1]:443"], &trusted),
            ip("2001:db8::1")
        );
        assert_eq!(
            walk_forwarded(local, &["[2001:db8::1]"], &trusted),
            ip("2001:db8::1")
        );
        // A v4-mapped proxy address is its IPv4 one.
        assert_eq!(
            walk_forwarded(local, &["198.51.100.4", "::ffff:10.0.0.1"], &trusted),
            ip("198.51.100.4")
        );
    }

    #[test]
    fn client_address_and_forwarded_headers_believe_only_trusted_peers() {
        let trusted = proxies("127.0.0.0/8");
        let headers = [
            ("x-forwarded-for", "6.6.6.6, 198.51.100.4"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "tasks.example"),
        ];
        let via_proxy = request_from("127.0.0.1:5000", &headers);
        assert_eq!(client_address(&via_proxy, &trusted), ip("198.51.100.4"));
        assert_eq!(
            forwarded(&via_proxy, "x-forwarded-proto", &trusted),
            Some("https")
        );
        assert_eq!(
            forwarded(&via_proxy, "x-forwarded-host", &trusted),
            Some("tasks.example")
        );
        let direct = request_from("203.0.113.7:5000", &headers);
        assert_eq!(client_address(&direct, &trusted), ip("203.0.113.7"));
        assert_eq!(forwarded(&direct, "x-forwarded-proto", &trusted), None);
        // Several headers read as one list, in order.
        let split = request_from(
            "[::ffff:127.0.0.1]:5000",
            &[
                ("x-forwarded-for", "198.51.100.4"),
                ("x-forwarded-for", "127.0.0.2"),
            ],
        );
        assert_eq!(client_address(&split, &trusted), ip("198.51.100.4"));
    }

    #[test]
    fn a_current_password_is_seen_in_json_and_forms() {
        assert!(has_current_password(
            br#"{"password": "new one!", "current_password": "guess"}"#
        ));
        assert!(!has_current_password(br#"{"name": "x"}"#));
        assert!(!has_current_password(br#"{"current_password": null}"#));
        assert!(has_current_password(b"current_password=guess&password=x"));
        assert!(!has_current_password(b"current_password=&password=x"));
    }

    #[test]
    fn account_key_is_the_normalized_email() {
        assert_eq!(
            account_key(br#"{"email": " Ann@Example.COM ", "password": "x"}"#).as_deref(),
            Some("ann@example.com")
        );
        assert_eq!(account_key(br#"{"password": "x"}"#), None);
        assert_eq!(
            account_key(b"email=+Ann%40Example.COM&password=x").as_deref(),
            Some("ann@example.com")
        );
        assert_eq!(account_key(b"password=x"), None);
        assert_eq!(account_key(b"not json"), None);
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let response = too_many(Duration::from_millis(1), "requests");
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let response = too_many(Duration::from_millis(5_001), "requests");
        assert_eq!(response.headers()[header::RETRY_AFTER], "6");
    }
}
