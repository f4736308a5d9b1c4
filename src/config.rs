//! One `Config` for the server, resolved by clap from flags > environment (`TASKER_*`, plus
//! the seed's `PORT`, `JWT_SECRET` and `CORS_ORIGINS`) > `.env` (loaded into the environment
//! by `main` before parsing) > defaults. Each default is written once, in its `#[arg]`
//! attribute; [`Config::new`] reads them from there. Every path is derived from the data
//! directory. [`DotEnv`] and [`Source`] tell where a value came from, so that `--listen` and
//! `--port` obey the same order and an error names the flag, variable or `.env` line that set a
//! bad value.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, FromArgMatches};
use rand::RngCore;

/// Where the server listens unless told otherwise (`--port` changes only the port).
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 3000);
/// The default `--data-dir`, shared by every command that takes one.
pub const DEFAULT_DATA_DIR: &str = "./tasker-data";
/// The default `--bcrypt-cost`, shared by the server and `tasker user`.
pub const DEFAULT_BCRYPT_COST: u32 = 12;
/// The shortest JWT secret accepted (HS256 wants at least 256 bits).
pub const MIN_JWT_SECRET_BYTES: usize = 32;
/// The log level without `LOG_LEVEL` or `RUST_LOG`.
pub const DEFAULT_LOG_LEVEL: &str = "info";
/// The generated secret's file inside the data directory.
pub const SECRET_FILE: &str = "jwt-secret";

/// Where each setting can come from, shown under `tasker serve --help`.
pub const SOURCES_HELP: &str = "\
Each option can also be set by the environment variable shown, or by a line VARIABLE=value in \
./.env (the working directory's). A flag wins over the environment, the environment over .env, \
and .env over the default; --listen and --port follow that order too (at the same level, \
--listen wins). An empty variable for a setting without a default counts as unset.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The server's settings: the flags of `tasker serve` (doc comments are the help text).
/// Tests and embedders start from [`Config::new`] and change fields. `Debug` leaves the
/// secrets out.
#[derive(Clone, Args)]
#[command(after_help = SOURCES_HELP)]
pub struct Config {
    /// Address to listen on [default: 127.0.0.1:3000].
    // Read through [`Config::listen_addr`], which applies `--port` and the default.
    #[arg(long, env = "TASKER_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// Port to listen on, on 127.0.0.1, when --listen is not given at the same or a higher
    /// level (a --port flag wins over TASKER_LISTEN).
    #[arg(long, env = "PORT", value_name = "PORT")]
    pub port: Option<u16>,

    /// Directory for the database, the generated secret and attachments (created if missing).
    #[arg(long, env = "TASKER_DATA_DIR", value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,

    /// Secret for signing access tokens (at least 32 bytes). Without it, a random one is
    /// generated into the data directory on first start and reused.
    #[arg(
        long,
        env = "JWT_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub jwt_secret: Option<String>,

    /// Lifetime of an access token, e.g. 15m, 1h.
    #[arg(long, env = "TASKER_TOKEN_TTL", value_name = "DURATION", default_value = "1h", value_parser = parse_ttl)]
    pub token_ttl: Duration,

    /// The longest a personal access token may live: its `expires_at` may be at most this far
    /// ahead when it is created, e.g. 365d.
    #[arg(long, env = "TASKER_TOKEN_MAX_LIFETIME", value_name = "DURATION", default_value = "365d", value_parser = parse_ttl)]
    pub token_max_lifetime: Duration,

    /// How long a session lasts without a refresh, e.g. 30d.
    #[arg(long, env = "TASKER_REFRESH_TTL", value_name = "DURATION", default_value = "30d", value_parser = parse_ttl)]
    pub refresh_ttl: Duration,

    /// bcrypt cost for password hashes (4 to 31; each step doubles the work).
    #[arg(long, env = "TASKER_BCRYPT_COST", value_name = "COST", default_value_t = DEFAULT_BCRYPT_COST,
          value_parser = clap::value_parser!(u32).range(4..=31))]
    pub bcrypt_cost: u32,

    /// The largest file an upload may carry, in bytes (1 KiB to 64 GiB).
    #[arg(long, env = "TASKER_MAX_UPLOAD_BYTES", value_name = "BYTES",
          default_value_t = 25 << 20,
          value_parser = clap::value_parser!(u64).range(1024..=(64 << 30)))]
    pub max_upload_bytes: u64,

    /// The most attachment bytes one account may have uploaded (default: no quota).
    #[arg(long, env = "TASKER_USER_QUOTA_BYTES", value_name = "BYTES",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub user_quota_bytes: Option<u64>,

    /// How long notifications are kept, e.g. 90d.
    #[arg(long, env = "TASKER_NOTIFICATION_RETENTION", value_name = "DURATION", default_value = "90d", value_parser = parse_ttl)]
    pub notification_retention: Duration,

    /// How far back a WebSocket client may resume with `?since=`, e.g. 7d.
    #[arg(long, env = "TASKER_CHANGE_RETENTION", value_name = "DURATION", default_value = "7d", value_parser = parse_ttl)]
    pub change_retention: Duration,

    /// The most change-log entries one `?since=` replay of the WebSocket feed may read; a
    /// client further behind gets `{"type": "reset"}` (refetch, then live) instead.
    #[arg(
        long,
        env = "TASKER_REPLAY_BUDGET",
        value_name = "ENTRIES",
        default_value_t = 10_000
    )]
    pub replay_budget: u64,

    /// Events one WebSocket connection may have queued before it is cut off as too slow
    /// (close code 4008). Not a command-line option: for embedders and tests.
    #[arg(skip = 1024usize)]
    pub feed_queue: usize,

    /// How long a client may take to send a request's head (its line and headers), counted
    /// from its first byte, or from the connection's opening for its first request. Past it
    /// the connection is closed: a client trickling headers holds nothing for long.
    #[arg(long, env = "TASKER_HEADER_TIMEOUT", value_name = "DURATION", default_value = "10s", value_parser = parse_ttl)]
    pub header_timeout: Duration,

    /// How long a kept-alive connection may wait, with no request in flight and nothing
    /// arriving, before it is closed. Keep a reverse proxy's own upstream keep-alive shorter.
    #[arg(long, env = "TASKER_IDLE_TIMEOUT", value_name = "DURATION", default_value = "75s", value_parser = parse_ttl)]
    pub idle_timeout: Duration,

    /// How long a request body (an upload) may stop arriving, or a response stop being taken
    /// by its client, before the request fails: 408, the connection closed, a partial upload
    /// removed.
    #[arg(long, env = "TASKER_BODY_TIMEOUT", value_name = "DURATION", default_value = "30s", value_parser = parse_ttl)]
    pub body_timeout: Duration,

    /// The most connections served at once (WebSockets included). At the limit a new
    /// connection closes the one idle the longest, or is turned away when none is idle. Each
    /// connection can hold two open files (its socket, and a file it sends or receives): keep
    /// this under half the open-files limit (`ulimit -n`, systemd's LimitNOFILE).
    #[arg(long, env = "TASKER_MAX_CONNECTIONS", value_name = "COUNT", default_value_t = 400,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,

    /// The database cache, in MiB: recently read pages, and pages a write has not yet written
    /// to the file. The main part of the server's memory that a setting controls; more helps
    /// reads on a large store when memory allows.
    #[arg(long, env = "TASKER_DB_CACHE", value_name = "MIB", default_value_t = crate::store::DEFAULT_CACHE_MIB,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(4..=65_536))]
    pub db_cache: usize,

    /// How long a WebSocket client may take to take a frame, or to answer the server's ping,
    /// before it is cut off as too slow (close code 4008; it resumes with `?since=`).
    #[arg(long, env = "TASKER_WS_WRITE_TIMEOUT", value_name = "DURATION", default_value = "10s", value_parser = parse_ttl)]
    pub ws_write_timeout: Duration,

    /// How often the server pings each WebSocket. Not a command-line option: for tests.
    #[arg(skip = Duration::from_secs(30))]
    pub ws_ping_interval: Duration,

    /// Log format. The level comes from LOG_LEVEL or RUST_LOG (default info).
    #[arg(
        long,
        env = "TASKER_LOG_FORMAT",
        value_name = "FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,

    /// Who may create an account: `open` (anyone), `invite-only` (with the accept token of a
    /// pending team invitation), `closed` (nobody; an admin creates accounts).
    #[arg(
        long,
        env = "TASKER_REGISTRATION",
        value_name = "MODE",
        value_enum,
        default_value = "open"
    )]
    pub registration: Registration,

    /// Rate limits, per client address: every request 200 at once then 50/s; login and
    /// register 10 then 1 per 6s; WebSocket upgrades 60 then 10/s. Per account: login and
    /// current-password checks (by email) 10 then 1 per 20s; WebSocket upgrades 30 then 2/s.
    /// Over a limit: 429 with Retry-After. `off` is for benchmarks and trusted networks.
    // `None` turns them all off. The full path keeps clap from reading `Option` as "optional
    // flag": the value is always set, from `on` or `off`.
    #[arg(long = "rate-limit", env = "TASKER_RATE_LIMIT", value_name = "on|off", default_value = "on", value_parser = parse_rate_limits, action = clap::ArgAction::Set)]
    pub rate_limits: ::std::option::Option<RateLimits>,

    /// Reverse proxies whose `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Forwarded-Host` are
    /// believed: comma-separated addresses and CIDRs, e.g. 10.0.0.0/8,fd00::/8. The client is
    /// the rightmost `X-Forwarded-For` entry that is not one of them. `none` trusts nobody.
    #[arg(long, env = "TASKER_TRUSTED_PROXIES", value_name = "LIST",
          default_value = "127.0.0.0/8,::1", value_parser = TrustedProxies::parse)]
    pub trusted_proxies: TrustedProxies,

    // The removed `--trust-proxy`, still read so that a setup that sets it fails at start
    // with a pointer to `--trusted-proxies` instead of silently losing its proxy.
    #[arg(long = "trust-proxy", env = "TASKER_TRUST_PROXY", hide = true, value_name = "BOOL",
          num_args = 0..=1, default_missing_value = "true")]
    removed_trust_proxy: Option<String>,

    /// Origins allowed to call the API from a browser (CORS), comma-separated, e.g.
    /// https://tasks.example.com. Default: none (same-origin only).
    // Each is checked by [`parse_origin`] in [`Config::resolve`].
    #[arg(
        long,
        env = "CORS_ORIGINS",
        value_name = "ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,

    /// Serve Prometheus metrics at /metrics (outside /api). Meant for a private network.
    #[arg(long, env = "TASKER_METRICS", value_name = "BOOL", num_args = 0..=1,
          default_missing_value = "true", default_value = "false", value_parser = parse_switch, action = clap::ArgAction::Set)]
    pub metrics: bool,

    /// Require `Authorization: Bearer <TOKEN>` on /metrics.
    #[arg(
        long,
        env = "TASKER_METRICS_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub metrics_token: Option<String>,

    // Webhooks (issue 16): where they may go, how often they are retried, how long they wait.
    /// Where webhooks may send beyond public addresses: comma-separated `private` (10/8,
    /// 172.16/12, 192.168/16, 100.64/10, fc00::/7), `loopback`, addresses or CIDRs, and host
    /// names (allowed whatever they resolve to), e.g. private,homeassistant.lan. Default:
    /// public addresses only.
    #[arg(long, env = "TASKER_WEBHOOK_ALLOWED_HOSTS", value_name = "LIST",
          default_value = "public", value_parser = crate::net::egress::AllowedHosts::parse)]
    pub webhook_allowed_hosts: crate::net::egress::AllowedHosts,

    /// When a webhook delivery is attempted, as waits after the previous attempt, comma-
    /// separated, the first 0s (at once); when the last attempt fails the hook is disabled and
    /// its creator notified. E.g. 0s,1s,1s for a test setup.
    #[arg(long, env = "TASKER_WEBHOOK_RETRY_SCHEDULE", value_name = "DURATIONS",
          default_value = "0s,5s,5m,30m,2h,5h,10h,10h", value_parser = crate::domain::webhooks::RetrySchedule::parse)]
    pub webhook_retry_schedule: crate::domain::webhooks::RetrySchedule,

    /// How long a webhook receiver has to answer (connecting included).
    #[arg(long, env = "TASKER_WEBHOOK_TIMEOUT", value_name = "DURATION", default_value = "10s", value_parser = parse_ttl)]
    pub webhook_timeout: Duration,

    /// Outgoing mail: SMTP server, sender, password, public URL (see [`MailConfig`]).
    #[command(flatten)]
    pub mail: MailConfig,
}

/// Who may create an account with `POST /api/auth/register`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Registration {
    /// Anyone.
    Open,
    /// Only an email with a pending, unexpired invitation to a team.
    InviteOnly,
    /// Nobody: accounts are created by an admin.
    Closed,
}

/// `on`/`off` (also `true`/`false`, `yes`/`no`, `1`/`0`).
pub(crate) fn parse_switch(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err("expected one of on, off (or true, false, yes, no, 1, 0)".into()),
    }
}

/// `--rate-limit`: `on` is [`RateLimits::default`], `off` is none.
fn parse_rate_limits(text: &str) -> Result<Option<RateLimits>, String> {
    parse_switch(text).map(|on| on.then(RateLimits::default))
}

/// A duration from 1 s to 10 years, e.g. `90s`, `15m`, `1h`, `30d`.
pub(crate) fn parse_ttl(text: &str) -> Result<Duration, String> {
    let ttl =
        humantime::parse_duration(text).map_err(|e| format!("{e} (use e.g. 90s, 15m, 1h, 30d)"))?;
    if ttl < Duration::from_secs(1) {
        return Err("must be at least 1s".into());
    }
    if ttl > Duration::from_secs(10 * 365 * 24 * 3600) {
        return Err("must be at most 10 years".into());
    }
    Ok(ttl)
}

/// One rate limit: `burst` requests at once, then one more every `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub burst: u32,
    pub period: Duration,
}

/// The request rate limits (see the README's "Rate limits").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Every request, per client address.
    pub per_ip: Limit,
    /// Login and registration, per client address.
    pub auth_per_ip: Limit,
    /// Login and registration, per account (the email in the body, lower-cased); also the
    /// current-password checks of a profile change, per account (its email).
    pub auth_per_account: Limit,
    /// WebSocket upgrades (`GET /api/ws`), per client address.
    pub ws_per_ip: Limit,
    /// WebSocket upgrades, per account (the session's user).
    pub ws_per_account: Limit,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            per_ip: Limit {
                burst: 200,
                period: Duration::from_millis(20),
            },
            auth_per_ip: Limit {
                burst: 10,
                period: Duration::from_secs(6),
            },
            auth_per_account: Limit {
                burst: 10,
                period: Duration::from_secs(20),
            },
            // Every page of the web app opens one feed, and a tab retries at the fastest
            // every 0.5 s (doubling to 10 s): an account gets 30 tabs restored at once and
            // then a feed every 0.5 s; an address a busy office's worth (60 at once, 10/s).
            // A burst of 200 upgrades in a second gets 429 either way.
            ws_per_ip: Limit {
                burst: 60,
                period: Duration::from_millis(100),
            },
            ws_per_account: Limit {
                burst: 30,
                period: Duration::from_millis(500),
            },
        }
    }
}

/// A network: an address with a prefix length (`10.0.0.0/8`, `fd00::/8`), or one address (a
/// /32 or /128). Host bits below the prefix are ignored, as Go's `ParseCIDR` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is in this network; an IPv4-mapped IPv6 address counts as its IPv4 one.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                net.to_bits() & mask == ip.to_bits() & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                net.to_bits() & mask == ip.to_bits() & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network = address
            .parse::<IpAddr>()
            .map_err(|_| format!("'{text}' is not an IP address or a CIDR"))?
            .to_canonical();
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(prefix) => prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max && prefix.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| format!("'{text}': the prefix length must be 0 to {max}"))?,
        };
        Ok(Self { network, prefix })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// `--trusted-proxies`: the reverse proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// Nobody: every forwarding header is ignored.
    pub const fn none() -> Self {
        Self(Vec::new())
    }

    /// A comma-separated list of addresses and CIDRs; `none` or nothing is the empty list.
    /// The error names the bad entry.
    pub fn parse(text: &str) -> Result<Self, String> {
        let entries: Vec<&str> = text
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        if let [only] = entries[..]
            && only.eq_ignore_ascii_case("none")
        {
            return Ok(Self::none());
        }
        entries
            .into_iter()
            .map(|entry| {
                entry.parse::<Cidr>().map_err(|e| {
                    format!("{e}; use addresses and CIDRs such as 127.0.0.1,10.0.0.0/8,fd00::/8, or none")
                })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Whether `ip` is one of these proxies.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        for (i, net) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{net}")?;
        }
        Ok(())
    }
}

/// Checks a CORS origin (`https://host` or `http://host:port`: a scheme, a host, an optional
/// port, nothing else) and returns it lower-cased, as browsers send it.
pub fn parse_origin(text: &str) -> Result<String, ConfigError> {
    let invalid = |why: &str| {
        ConfigError::new(
            "--cors-origins",
            format!("'{text}' is not an origin: {why}; use e.g. https://tasks.example.com"),
        )
    };
    let origin = text.trim().to_ascii_lowercase();
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or_else(|| invalid("it must start with http:// or https://"))?;
    let (host_ok, port) = match rest.strip_prefix('[') {
        // An IPv6 literal: `[::1]` or `[::1]:8080`.
        Some(v6) => match v6.split_once(']') {
            Some((addr, after)) => (
                addr.parse::<std::net::Ipv6Addr>().is_ok(),
                match after {
                    "" => None,
                    _ => Some(after.strip_prefix(':').unwrap_or(after)),
                },
            ),
            None => (false, None),
        },
        None => {
            let (host, port) = match rest.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            };
            let valid = !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            (valid, port)
        }
    };
    if !host_ok {
        return Err(invalid(
            "it must be a scheme and a host, with no path, query, wildcard or credentials",
        ));
    }
    if let Some(port) = port
        && port.parse::<u16>().is_err()
    {
        return Err(invalid("the port is not a number from 0 to 65535"));
    }
    Ok(origin)
}

impl Config {
    /// The defaults (those of `tasker serve` with no flags and no environment) with the given
    /// data directory: what tests and embedders start from.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let command =
            Self::augment_args(clap::Command::new("tasker")).mut_args(|arg| arg.env(None::<&str>));
        let matches = command
            .try_get_matches_from(["tasker"])
            .expect("the defaults parse");
        let mut config = Self::from_arg_matches(&matches).expect("the defaults are complete");
        config.data_dir = data_dir.into();
        config
    }

    /// Checks what clap cannot check field by field, and normalizes: the data directory is
    /// not empty, the CORS origins are origins (lower-cased; empty entries dropped), an empty
    /// metrics token is none, the removed `--trust-proxy` is not set, a session outlives its
    /// access token.
    pub fn resolve(mut self) -> Result<Self, ConfigError> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::new("--data-dir", "must not be empty"));
        }
        self.cors_origins = self
            .cors_origins
            .iter()
            .filter(|origin| !origin.trim().is_empty())
            .map(|origin| parse_origin(origin))
            .collect::<Result<_, _>>()?;
        self.metrics_token = self.metrics_token.filter(|token| !token.is_empty());
        if self
            .removed_trust_proxy
            .as_deref()
            .is_some_and(|value| !value.is_empty())
        {
            return Err(ConfigError::new(
                "--trust-proxy (TASKER_TRUST_PROXY)",
                "was replaced by --trusted-proxies (TASKER_TRUSTED_PROXIES), the addresses or \
                 CIDRs of the proxies to believe (default 127.0.0.0/8,::1: a proxy on this \
                 host); remove it, and list your proxy there if it runs on another host",
            ));
        }
        self.mail = self.mail.resolve()?;
        if self.refresh_ttl < self.token_ttl {
            return Err(ConfigError::new(
                "--refresh-ttl",
                "must not be shorter than --token-ttl",
            ));
        }
        Ok(self)
    }

    /// `--listen` and `--port` both choose the address: the one set at the higher level wins
    /// (a flag over a variable over `.env`), at the same level `--listen`. Drops `--listen`
    /// when `--port` outranks it, and returns a warning naming the value ignored (`listen` and
    /// `port` name them as their setter wrote them).
    pub fn settle_listen_and_port(
        &mut self,
        (listen, listen_named): (Source, &str),
        (port, port_named): (Source, &str),
    ) -> Option<String> {
        if self.listen.is_none() || self.port.is_none() {
            return None;
        }
        if port > listen {
            self.listen = None;
            Some(format!(
                "{listen_named} is ignored: {port_named} wins ({port} over {listen})"
            ))
        } else {
            Some(format!(
                "{port_named} is ignored: {listen_named} wins ({})",
                if port == listen {
                    format!("both {listen}: --listen goes first")
                } else {
                    format!("{listen} over {port}")
                }
            ))
        }
    }

    /// Settings that are allowed but almost certainly not what was meant: one line each, for
    /// the log at start.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.metrics_token.is_some() && !self.metrics {
            warnings.push(
                "--metrics-token (TASKER_METRICS_TOKEN) is set but --metrics (TASKER_METRICS) is \
                 off: /metrics is not served and the token is unused; add --metrics"
                    .to_string(),
            );
        }
        warnings
    }

    /// The address to listen on: `--listen`, else 127.0.0.1 with `--port`, else
    /// [`DEFAULT_LISTEN`] (after [`Config::settle_listen_and_port`]).
    pub fn listen_addr(&self) -> SocketAddr {
        match (self.listen, self.port) {
            (Some(listen), _) => listen,
            (None, Some(port)) => SocketAddr::new(DEFAULT_LISTEN.ip(), port),
            (None, None) => DEFAULT_LISTEN,
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join(crate::store::DB_FILE)
    }

    /// The search index's directory (derived data: may be deleted at any time).
    pub fn index_dir(&self) -> PathBuf {
        self.data_dir.join("index")
    }

    pub fn secret_path(&self) -> PathBuf {
        self.data_dir.join(SECRET_FILE)
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("port", &self.port)
            .field("data_dir", &self.data_dir)
            .field(
                "jwt_secret",
                &self.jwt_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("token_ttl", &self.token_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .field("token_max_lifetime", &self.token_max_lifetime)
            .field("bcrypt_cost", &self.bcrypt_cost)
            .field("max_upload_bytes", &self.max_upload_bytes)
            .field("user_quota_bytes", &self.user_quota_bytes)
            .field("notification_retention", &self.notification_retention)
            .field("change_retention", &self.change_retention)
            .field("replay_budget", &self.replay_budget)
            .field("feed_queue", &self.feed_queue)
            .field("header_timeout", &self.header_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("body_timeout", &self.body_timeout)
            .field("max_connections", &self.max_connections)
            .field("db_cache", &self.db_cache)
            .field("ws_write_timeout", &self.ws_write_timeout)
            .field("ws_ping_interval", &self.ws_ping_interval)
            .field("log_format", &self.log_format)
            .field("registration", &self.registration)
            .field("rate_limits", &self.rate_limits)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("cors_origins", &self.cors_origins)
            .field("metrics", &self.metrics)
            .field(
                "metrics_token",
                &self.metrics_token.as_ref().map(|_| "<redacted>"),
            )
            .field("webhook_allowed_hosts", &self.webhook_allowed_hosts)
            .field("webhook_retry_schedule", &self.webhook_retry_schedule)
            .field("webhook_timeout", &self.webhook_timeout)
            .field("mail", &self.mail)
            .finish()
    }
}

// --- Mail (issue 17): the SMTP server, the sender, its password, the public URL. ---

/// Outgoing mail settings. Without `--smtp-url` no mail is sent: features that need it say so.
/// `Debug` leaves the password out.
#[derive(Clone, Args)]
pub struct MailConfig {
    /// SMTP server for outgoing mail: `smtp://host:port` (STARTTLS required), `smtps://host:port`
    /// (TLS from the start), or `smtp://host:port?tls=none` (plain text: a relay on this host).
    /// A user name goes before the host: `smtps://user@host:465`. Unset: no mail is sent.
    #[arg(long, env = "TASKER_SMTP_URL", value_name = "URL", value_parser = crate::mail::SmtpUrl::parse)]
    pub smtp_url: Option<crate::mail::SmtpUrl>,

    /// The sender of every message, e.g. `Tasker <tasker@example.com>`; needed with --smtp-url.
    #[arg(long, env = "TASKER_SMTP_FROM", value_name = "ADDRESS")]
    pub smtp_from: Option<String>,

    /// A file holding the SMTP password (its first line). Or set TASKER_SMTP_PASSWORD.
    #[arg(long, env = "TASKER_SMTP_PASSWORD_FILE", value_name = "FILE")]
    pub smtp_password_file: Option<PathBuf>,

    /// The SMTP password, from the environment only (never a flag, never logged).
    #[arg(skip = std::env::var("TASKER_SMTP_PASSWORD").ok().filter(|p| !p.is_empty()))]
    pub smtp_password: Option<String>,

    /// The address people reach this server at, e.g. https://tasks.example.com: the base of
    /// the links in mail and of calendar feed URLs. Needed with --smtp-url.
    #[arg(long, env = "TASKER_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// The first retry delay of a message that could not be sent; it doubles up to an hour.
    #[arg(long, env = "TASKER_SMTP_RETRY", hide = true, value_name = "DURATION", default_value = "1m", value_parser = parse_short_duration)]
    pub smtp_retry: Duration,
}

/// A duration from 1 ms, for settings that tests shorten.
fn parse_short_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| format!("{e} (use e.g. 500ms, 1m)"))?;
    if d.is_zero() {
        return Err("must be more than 0".into());
    }
    Ok(d)
}

impl MailConfig {
    /// Checks that SMTP comes with a sender and a public URL, reads the password file, and
    /// normalizes the public URL (no trailing slash).
    pub fn resolve(mut self) -> Result<Self, ConfigError> {
        self.smtp_from = self.smtp_from.filter(|f| !f.trim().is_empty());
        self.public_url = match self.public_url.filter(|u| !u.trim().is_empty()) {
            Some(url) => Some(
                parse_origin_with_path(&url)
                    .map_err(|why| ConfigError::new(format!("--public-url {url}"), why))?,
            ),
            None => None,
        };
        if let Some(path) = &self.smtp_password_file {
            let text = fs::read_to_string(path).map_err(|e| {
                ConfigError::new(
                    format!("--smtp-password-file {}", path.display()),
                    e.to_string(),
                )
            })?;
            self.smtp_password = text
                .lines()
                .next()
                .map(str::to_string)
                .filter(|p| !p.is_empty());
        }
        if self.smtp_url.is_some() {
            let Some(from) = &self.smtp_from else {
                return Err(ConfigError::new("--smtp-from", "is needed with --smtp-url"));
            };
            crate::mail::parse_mailbox(from)
                .map_err(|why| ConfigError::new(format!("--smtp-from {from}"), why))?;
            if self.public_url.is_none() {
                return Err(ConfigError::new(
                    "--public-url",
                    "is needed with --smtp-url: links in mail point there",
                ));
            }
        }
        Ok(self)
    }
}

/// `http(s)://host[:port][/path]` without a trailing slash, query or fragment.
fn parse_origin_with_path(text: &str) -> Result<String, String> {
    let text = text.trim().trim_end_matches('/');
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .ok_or("must start with http:// or https://")?;
    if rest.is_empty() || rest.starts_with('/') || rest.contains(['?', '#', '@', ' ']) {
        return Err(
            "must be a scheme, a host and an optional path, e.g. https://tasks.example.com".into(),
        );
    }
    Ok(text.to_string())
}

impl std::fmt::Debug for MailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailConfig")
            .field("smtp_url", &self.smtp_url)
            .field("smtp_from", &self.smtp_from)
            .field("smtp_password_file", &self.smtp_password_file)
            .field(
                "smtp_password",
                &self.smtp_password.as_ref().map(|_| "<redacted>"),
            )
            .field("public_url", &self.public_url)
            .field("smtp_retry", &self.smtp_retry)
            .finish()
    }
}

/// Where a setting's value came from, lowest precedence first (so `Flag` is the greatest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Default,
    DotEnv,
    Environment,
    Flag,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::Default => "the default",
            Source::DotEnv => ".env",
            Source::Environment => "the environment",
            Source::Flag => "a flag",
        })
    }
}

/// The variables `./.env` set (those the environment did not have already), each with the
/// line it came from.
#[derive(Debug, Clone, Default)]
pub struct DotEnv {
    lines: HashMap<String, usize>,
}

impl DotEnv {
    /// Loads `./.env`, the working directory's, if there is one: every variable it sets that
    /// the environment does not have (the environment wins; the first line of a variable
    /// repeated wins), remembering its line.
    pub fn load() -> Result<Self, String> {
        let path = Path::new(".env");
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(format!(".env: {e}")),
        };
        let mut lines = HashMap::new();
        for item in dotenvy::from_path_iter(path).map_err(|e| format!(".env: {e}"))? {
            let (key, _) = item.map_err(|e| format!(".env: {e}"))?;
            if std::env::var_os(&key).is_none() && !lines.contains_key(&key) {
                let line = line_of(&text, &key);
                lines.insert(key, line);
            }
        }
        dotenvy::from_path(path).map_err(|e| format!(".env: {e}"))?;
        Ok(Self { lines })
    }

    /// The line of `.env` that set `variable`, if `.env` set it.
    pub fn line(&self, variable: &str) -> Option<usize> {
        self.lines.get(variable).copied()
    }

    /// Where the value of `variable` in the environment came from.
    pub fn source(&self, variable: &str) -> Source {
        match self.line(variable) {
            Some(_) => Source::DotEnv,
            None if std::env::var_os(variable).is_some() => Source::Environment,
            None => Source::Default,
        }
    }
}

/// The 1-based line of `text` (a `.env` file) that assigns `key`, `export KEY=` included.
fn line_of(text: &str, key: &str) -> usize {
    text.lines()
        .position(|line| {
            let line = line.trim_start();
            let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
            line.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map_or(0, |i| i + 1)
}

/// Names a setting the way its value was given, for an error or a warning: `--listen x` for a
/// flag, `TASKER_LISTEN=x (from .env line 3, for --listen)` for a variable. Secret values
/// (`hide_env_values`) are never shown. `value` is the flag's value when known.
pub fn describe_setting(
    arg: &clap::Arg,
    from_flag: bool,
    value: Option<&str>,
    dotenv: &DotEnv,
) -> String {
    let flag = match arg.get_long() {
        Some(long) => format!("--{long}"),
        None => arg.get_id().to_string(),
    };
    let hidden = arg.is_hide_env_values_set();
    let variable = arg.get_env().and_then(|name| name.to_str());
    match variable.and_then(|name| Some((name, std::env::var(name).ok()?))) {
        Some((name, env_value)) if !from_flag => {
            let from = match dotenv.line(name) {
                Some(line) => format!("from .env line {line}"),
                None => "from the environment".to_string(),
            };
            if hidden {
                format!("{name} ({from}, for {flag})")
            } else {
                format!("{name}={env_value} ({from}, for {flag})")
            }
        }
        _ => match value {
            Some(value) if !hidden && !value.is_empty() => format!("{flag} {value}"),
            _ => flag,
        },
    }
}

/// A bad setting, named by its option, e.g. `--data-dir ./x: permission denied`.
#[derive(Debug, thiserror::Error)]
#[error("{option}: {message}")]
pub struct ConfigError {
    pub option: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(option: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            option: option.into(),
            message: message.into(),
        }
    }
}

/// Creates the data directory if needed (mode 0700: it holds password and token hashes) and
/// checks that it is a writable directory. An existing directory keeps its permissions.
pub fn prepare_data_dir(dir: &Path) -> Result<(), ConfigError> {
    let option = || format!("--data-dir {}", dir.display());
    let existed = dir.exists();
    fs::create_dir_all(dir)
        .map_err(|e| ConfigError::new(option(), format!("cannot create it: {e}")))?;
    #[cfg(unix)]
    if !existed {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| {
            ConfigError::new(option(), format!("cannot restrict its permissions: {e}"))
        })?;
    }
    let probe = dir.join(".write-test");
    fs::write(&probe, b"").map_err(|e| ConfigError::new(option(), format!("not writable: {e}")))?;
    let _ = fs::remove_file(&probe);
    Ok(())
}

/// The configured JWT secret, checked; `None` when the secret is to be generated.
pub fn configured_jwt_secret(config: &Config) -> Result<Option<Vec<u8>>, ConfigError> {
    match &config.jwt_secret {
        Some(secret) if secret.len() < MIN_JWT_SECRET_BYTES => Err(ConfigError::new(
            "--jwt-secret",
            format!("must be at least {MIN_JWT_SECRET_BYTES} bytes; e.g. `openssl rand -hex 32`"),
        )),
        Some(secret) => Ok(Some(secret.as_bytes().to_vec())),
        None => Ok(None),
    }
}

/// The JWT signing secret: the configured one, or the one generated into the data directory
/// on first start (mode 0600), so tokens survive restarts. Call it only while holding the
/// data directory (the database lock), so two processes never race to generate it.
pub fn jwt_secret(config: &Config) -> Result<Vec<u8>, ConfigError> {
    if let Some(secret) = configured_jwt_secret(config)? {
        return Ok(secret);
    }
    let path = config.secret_path();
    let option = || format!("--data-dir {}", config.data_dir.display());
    match fs::read_to_string(&path) {
        Ok(text) if text.trim().len() >= MIN_JWT_SECRET_BYTES => {
            return Ok(text.trim().as_bytes().to_vec());
        }
        Ok(_) => {
            return Err(ConfigError::new(
                option(),
                format!(
                    "{} is shorter than {MIN_JWT_SECRET_BYTES} bytes; delete it to generate a new one",
                    path.display()
                ),
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(ConfigError::new(
                option(),
                format!("cannot read {}: {e}", path.display()),
            ));
        }
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private(&path, secret.as_bytes())
        .map_err(|e| ConfigError::new(option(), format!("cannot write {}: {e}", path.display())))?;
    tracing::info!(path = %path.display(), "generated a new JWT secret");
    Ok(secret.into_bytes())
}

/// Writes a new file readable by its owner only, and makes it durable.
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metrics_token_without_metrics_is_warned_about() {
        let mut config = Config::new("data");
        assert!(config.warnings().is_empty());
        config.metrics_token = Some("secret".to_string());
        let warnings = config.warnings();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("--metrics-token") && warnings[0].contains("--metrics ("));
        config.metrics = true;
        assert!(config.warnings().is_empty());
    }

    #[test]
    fn generated_secret_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::new(dir.path());
        let first = jwt_secret(&config).unwrap();
        assert_eq!(jwt_secret(&config).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(config.secret_path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn new_data_dir_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("a/b");
        prepare_data_dir(&data).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&data).unwrap().permissions().mode() & 0o777,
                0o700
            );
        }
    }

    #[test]
    fn origins_are_checked() {
        assert_eq!(
            parse_origin("https://Tasks.Example.com").unwrap(),
            "https://tasks.example.com"
        );
        assert!(parse_origin("http://localhost:5173").is_ok());
        assert!(parse_origin("http://[::1]:8080").is_ok());
        assert!(parse_origin("http://[::1]").is_ok());
        for bad in [
            "tasks.example.com",
            "https://",
            "https://[::1",
            "https://[::1]x",
            "https://x.com/",
            "https://*.x.com",
            "https://x.com:99999",
            "https://u@x.com",
            "ftp://x.com",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn trusted_proxies_parse_addresses_and_cidrs() {
        let proxies = TrustedProxies::parse(" 127.0.0.0/8, ::1 ,10.1.2.3,fd00::/8,").unwrap();
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        for trusted in [
            "127.0.0.1",
            "127.255.0.9",
            "::1",
            "10.1.2.3",
            "fd12::7",
            "::ffff:127.0.0.1",
        ] {
            assert!(proxies.trusts(ip(trusted)), "{trusted}");
        }
        for stranger in ["128.0.0.1", "10.1.2.4", "::2", "fe80::1", "203.0.113.9"] {
            assert!(!proxies.trusts(ip(stranger)), "{stranger}");
        }
        assert_eq!(
            proxies.to_string(),
            "127.0.0.0/8,::1/128,10.1.2.3/32,fd00::/8"
        );
        // Host bits are ignored; /0 is everything of its family.
        let net = TrustedProxies::parse("192.168.1.77/24,0.0.0.0/0").unwrap();
        assert!(net.trusts(ip("192.168.1.1")) && net.trusts(ip("8.8.8.8")));
        assert!(!net.trusts(ip("2001:db8::1")));
        for nobody in ["none", "NONE", "", " , "] {
            assert!(
                TrustedProxies::parse(nobody).unwrap().is_empty(),
                "{nobody:?}"
            );
        }
        for (bad, named) in [
            ("127.0.0.1,10.0.0.0/33", "10.0.0.0/33"),
            ("localhost", "localhost"),
            ("::1/129", "::1/129"),
            ("10.0.0.0/+8", "10.0.0.0/+8"),
            ("10.0.0.0/", "10.0.0.0/"),
            ("none,10.0.0.1", "none"),
            ("fe80::1%eth0", "fe80::1%eth0"),
        ] {
            let err = TrustedProxies::parse(bad).unwrap_err();
            assert!(err.contains(&format!("'{named}'")), "{bad}: {err}");
        }
    }

    #[test]
    fn trusted_proxies_default_to_loopback() {
        let config = Config::new("unused");
        assert_eq!(config.trusted_proxies.to_string(), "127.0.0.0/8,::1/128");
        assert!(config.resolve().is_ok());
    }

    /// The most a limit lets through within `window`: the burst, plus one per period.
    fn allowed_within(limit: Limit, window: Duration) -> u128 {
        u128::from(limit.burst) + window.as_millis() / limit.period.as_millis()
    }

    #[test]
    fn websocket_defaults_spare_browsers_and_stop_floods() {
        let limits = RateLimits::default();
        // 200 upgrades in a second from one address, or for one account: refused.
        assert!(allowed_within(limits.ws_per_ip, Duration::from_secs(1)) < 200);
        assert!(allowed_within(limits.ws_per_account, Duration::from_secs(1)) < 200);
        // One person's 20 tabs reopening at once (a browser restart), then a feed reopened
        // every 0.5 s for two minutes (the fastest the app retries, or a page a click):
        // always within both limits.
        let attempts: Vec<u64> = std::iter::repeat_n(0, 20)
            .chain((0..=240u64).map(|i| i * 500))
            .collect();
        for window in (0..=120_000u64).step_by(100) {
            let made = attempts.iter().filter(|&&t| t <= window).count() as u128;
            let window = Duration::from_millis(window);
            assert!(
                made <= allowed_within(limits.ws_per_account, window),
                "{window:?}"
            );
            assert!(
                made <= allowed_within(limits.ws_per_ip, window),
                "{window:?}"
            );
        }
    }

    #[test]
    fn short_configured_secret_is_refused() {
        let mut config = Config::new("unused");
        config.jwt_secret = Some("short".into());
        let err = jwt_secret(&config).unwrap_err();
        assert!(err.to_string().contains("--jwt-secret"));
    }
}
