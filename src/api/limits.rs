//! Request rate limits (governor's GCRA, keyed): every request per client address, and login
//! and registration per client address and per account (the email in the body, lower-cased).
//! Over a limit the answer is `429 rate_limited` with `Retry-After` in whole seconds.
//!
//! The client address is the socket peer, or with `--trust-proxy` the last `X-Forwarded-For`
//! entry: the one the (single, trusted) proxy appended; entries before it are whatever the
//! client sent. IPv6 addresses are keyed by their /64, which one host usually holds whole.
//!
//! The keyed maps forget idle keys: every [`SWEEP_EVERY`], the first request to notice runs
//! `retain_recent`, so the maps hold only clients seen within about one refill period.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
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
use crate::config::{Limit, RateLimits};

/// How often idle keys are dropped from the limiters' maps.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Emails longer than this are not keyed (they fail validation, and the per-address limit
/// still applies), so a key never holds more than a real address.
const EMAIL_KEY_MAX_BYTES: usize = 320;

/// The client's address as the server sees it, kept with the request by [`note_client`]
/// (sessions record it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

/// The socket peer, or with `trust_proxy` the last `X-Forwarded-For` entry (the one the
/// proxy added).
pub fn client_address(req: &Request, trust_proxy: bool) -> IpAddr {
    let forwarded = trust_proxy
        .then(|| req.headers().get_all("x-forwarded-for").iter().next_back())
        .flatten()
        .and_then(|value| value.to_str().ok())
        .and_then(|list| list.rsplit(',').next())
        .and_then(|last| last.trim().parse::<IpAddr>().ok());
    forwarded
        .or_else(|| req.remote_addr().as_socket_addr().map(|a| a.ip()))
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// Keeps the client's address with the request for the handlers.
pub async fn note_client<E: Endpoint>(
    next: Arc<E>,
    mut req: Request,
    trust_proxy: bool,
) -> poem::Result<Response> {
    let address = client_address(&req, trust_proxy);
    req.extensions_mut().insert(ClientAddress(address));
    next.call(req).await.map(IntoResponse::into_response)
}

/// The limiters of one server.
pub struct Limiter {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    auth_per_ip: DefaultKeyedRateLimiter<IpAddr>,
    auth_per_account: DefaultKeyedRateLimiter<String>,
    trust_proxy: bool,
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
    pub fn new(limits: &RateLimits, trust_proxy: bool) -> Self {
        Self {
            per_ip: RateLimiter::keyed(quota(limits.per_ip)),
            auth_per_ip: RateLimiter::keyed(quota(limits.auth_per_ip)),
            auth_per_account: RateLimiter::keyed(quota(limits.auth_per_account)),
            trust_proxy,
            started: Instant::now(),
            last_sweep: AtomicU64::new(0),
        }
    }

    /// The address a request is counted against.
    fn client(&self, req: &Request) -> IpAddr {
        match client_address(req, self.trust_proxy) {
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

/// The sign-in limits on `POST /api/auth/login` and `/api/auth/register`, and on the web app's
/// `/signin`, `/register` and `/setup` forms: per client address, then per account. Runs after the body-size limit, so the body is already in memory.
pub async fn limit_sign_in<E: Endpoint>(
    next: Arc<E>,
    mut req: Request,
    limiter: Option<Arc<Limiter>>,
) -> poem::Result<Response> {
    let sign_in = req.method() == Method::POST
        && matches!(
            req.uri().path(),
            "/api/auth/login" | "/api/auth/register" | "/signin" | "/register" | "/setup"
        );
    if let Some(limiter) = limiter.filter(|_| sign_in) {
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
    next.call(req).await.map(IntoResponse::into_response)
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

#[cfg(test)]
mod tests {
    use super::*;

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
