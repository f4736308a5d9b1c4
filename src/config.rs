//! One `Config` for the server, resolved from flags > environment (`TASKER_*`, plus the seed's
//! `PORT` and `JWT_SECRET`) > `.env` > defaults. Every path is derived from the data directory.

use std::fs;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::RngCore;

/// Where the server listens unless told otherwise.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 3000);
/// The shortest JWT secret accepted (HS256 wants at least 256 bits).
pub const MIN_JWT_SECRET_BYTES: usize = 32;
/// The generated secret's file inside the data directory.
pub const SECRET_FILE: &str = "jwt-secret";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The server's settings. `Debug` leaves the JWT secret out.
#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Given secret; when `None`, one is generated into the data directory and reused.
    pub jwt_secret: Option<String>,
    pub token_ttl: Duration,
    pub refresh_ttl: Duration,
    pub bcrypt_cost: u32,
    /// The largest file one upload may carry.
    pub max_upload_bytes: u64,
    /// The most attachment bytes one account may have uploaded; `None`: no quota.
    pub user_quota_bytes: Option<u64>,
    /// How long notifications are kept.
    pub notification_retention: Duration,
    /// How far back a WebSocket client may resume (`?since=`); older gets `reset`.
    pub change_retention: Duration,
    /// Events one WebSocket connection may have queued before it is cut off as too slow
    /// (close code 4008). Not a command-line option: for embedders and tests.
    pub feed_queue: usize,
    pub log_format: LogFormat,
    /// Who may create an account with `POST /api/auth/register`.
    pub registration: Registration,
    /// Request rate limits; `None` turns them all off (`--rate-limit off`).
    pub rate_limits: Option<RateLimits>,
    /// Take the client address from `X-Forwarded-For` (its last entry) instead of the socket.
    pub trust_proxy: bool,
    /// Origins allowed to call the API from a browser (CORS); empty: same-origin only.
    /// Each is checked by [`parse_origin`].
    pub cors_origins: Vec<String>,
    /// Serve Prometheus metrics at `/metrics`.
    pub metrics: bool,
    /// When set, `/metrics` wants `Authorization: Bearer <token>`.
    pub metrics_token: Option<String>,
}

/// Who may create an account with `POST /api/auth/register`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Registration {
    /// Anyone.
    #[default]
    Open,
    /// Only an email with a pending, unexpired invitation to a team.
    InviteOnly,
    /// Nobody: accounts are created by an admin.
    Closed,
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
    /// Login and registration, per account (the email in the body, lower-cased).
    pub auth_per_account: Limit,
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
        }
    }
}

/// Checks a CORS origin (`https://host` or `http://host:port`: a scheme, a host, an optional
/// port, nothing else) and returns it lower-cased, as browsers send it.
pub fn parse_origin(text: &str) -> Result<String, ConfigError> {
    let invalid = |why: &str| {
        ConfigError::new(
            "--cors-origins (CORS_ORIGINS)",
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

/// The default `--max-upload-bytes`: 25 MiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 25 << 20;

impl Config {
    /// Defaults with the given data directory (what tests and embedders start from).
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: DEFAULT_LISTEN,
            data_dir: data_dir.into(),
            jwt_secret: None,
            token_ttl: Duration::from_secs(3600),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            bcrypt_cost: 12,
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            user_quota_bytes: None,
            notification_retention: Duration::from_secs(90 * 24 * 3600),
            change_retention: Duration::from_secs(7 * 24 * 3600),
            feed_queue: 1024,
            log_format: LogFormat::Text,
            registration: Registration::Open,
            rate_limits: Some(RateLimits::default()),
            trust_proxy: false,
            cors_origins: Vec::new(),
            metrics: false,
            metrics_token: None,
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
            .field("data_dir", &self.data_dir)
            .field(
                "jwt_secret",
                &self.jwt_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("token_ttl", &self.token_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .field("bcrypt_cost", &self.bcrypt_cost)
            .field("max_upload_bytes", &self.max_upload_bytes)
            .field("user_quota_bytes", &self.user_quota_bytes)
            .field("notification_retention", &self.notification_retention)
            .field("change_retention", &self.change_retention)
            .field("feed_queue", &self.feed_queue)
            .field("log_format", &self.log_format)
            .field("registration", &self.registration)
            .field("rate_limits", &self.rate_limits)
            .field("trust_proxy", &self.trust_proxy)
            .field("cors_origins", &self.cors_origins)
            .field("metrics", &self.metrics)
            .field(
                "metrics_token",
                &self.metrics_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
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
            "--jwt-secret (JWT_SECRET)",
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
    fn short_configured_secret_is_refused() {
        let mut config = Config::new("unused");
        config.jwt_secret = Some("short".into());
        let err = jwt_secret(&config).unwrap_err();
        assert!(err.to_string().contains("--jwt-secret"));
    }
}
