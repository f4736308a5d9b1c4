//! The command line. Doc comments are the help text.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::config::{
    Config, ConfigError, DEFAULT_LISTEN, LogFormat, RateLimits, Registration, parse_origin,
};

/// tasker: a self-hosted task tracker for teams, in one binary.
#[derive(Debug, Parser)]
#[command(name = "tasker", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once at start: the size of the `serve` variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (API under /api, Swagger UI at /docs).
    Serve(ServeArgs),
    /// Print the OpenAPI spec (JSON) to standard output.
    Openapi,
    /// Write one archive (tar) of the database, attachments and secret, with checksums.
    ///
    /// With the server stopped, the archive is made directly. While the server runs (it holds
    /// the database lock), the archive is fetched from it over its admin socket
    /// DATA_DIR/admin.sock, so a backup never needs downtime. The file appears under --out only
    /// once complete and verified (it is written to FILE.tmp first). Exit codes: 0 ok,
    /// 1 failure, 2 bad usage.
    Backup(BackupArgs),
    /// Restore an archive made by `tasker backup` into an empty or new data directory.
    ///
    /// Every checksum is verified before anything is written; the files are written next to
    /// the target and renamed into place, so the target is complete or untouched. Exit codes:
    /// 0 ok, 1 failure (bad archive, I/O), 2 bad usage (e.g. the target is not empty).
    Restore(RestoreArgs),
    /// Check a stopped data directory: rows decode, indexes match, attachments are intact.
    ///
    /// Prints a summary per check; exits 1 and lists the problems if any check fails.
    Check(DataDirArg),
    /// Rebuild the search index from the database, with the server stopped.
    ///
    /// Shows a progress bar on a terminal. (A server also rebuilds the index by itself at start
    /// when `DATA_DIR/index` is missing, damaged or of an older schema, while it serves.)
    Reindex(DataDirArg),
    /// Manage accounts on a stopped data directory.
    #[command(subcommand)]
    User(UserCommand),
    /// Write a stopped server's data to a portable JSON file (no passwords or secrets).
    Export(ExportArgs),
    /// Load a portable JSON export into a new, empty data directory (server stopped).
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub data: DataDirArg,
    /// The file to write (written as FILE.tmp, then renamed).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// The data directory to load into must be new or without any account. Copy the old data
/// directory's blobs/ into it first to keep attachments.
#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub data: DataDirArg,
    /// The export file to read.
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
}

/// `--data-dir`, as the server takes it.
#[derive(Debug, Args)]
pub struct DataDirArg {
    /// The server's data directory.
    #[arg(
        long,
        env = "TASKER_DATA_DIR",
        value_name = "DIR",
        default_value = "./tasker-data"
    )]
    pub data_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub data: DataDirArg,
    /// The archive to write (replaced if it exists).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// An archive made by `tasker backup`.
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
    /// The data directory to create; it must be empty or absent.
    #[arg(long, env = "TASKER_DATA_DIR", value_name = "DIR")]
    pub data_dir: PathBuf,
}

/// `--bcrypt-cost`, as the server takes it.
#[derive(Debug, Args)]
pub struct BcryptArg {
    /// bcrypt cost for the new password hash (4 to 31).
    #[arg(long, env = "TASKER_BCRYPT_COST", value_name = "COST", default_value_t = 12,
          value_parser = clap::value_parser!(u32).range(4..=31))]
    pub bcrypt_cost: u32,
}

/// Account administration. The server must be stopped (it holds the database). Passwords are
/// read from the terminal without echo, or as one line from standard input when it is not a
/// terminal.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account (the first account of a server is always an admin).
    Create {
        #[command(flatten)]
        data: DataDirArg,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// Make the account a site admin.
        #[arg(long)]
        admin: bool,
        #[command(flatten)]
        bcrypt: BcryptArg,
    },
    /// Set a new password; signs the account out everywhere.
    ResetPassword {
        #[command(flatten)]
        data: DataDirArg,
        #[arg(long)]
        email: String,
        #[command(flatten)]
        bcrypt: BcryptArg,
    },
    /// List every account: id, email, name, role, disabled, created.
    List {
        #[command(flatten)]
        data: DataDirArg,
    },
    /// Disable an account: it cannot log in, and its sessions end.
    Disable {
        #[command(flatten)]
        data: DataDirArg,
        #[arg(long)]
        email: String,
    },
    /// Enable a disabled account again.
    Enable {
        #[command(flatten)]
        data: DataDirArg,
        #[arg(long)]
        email: String,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:3000].
    #[arg(long, env = "TASKER_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// Port to listen on when --listen is not given (the host stays 127.0.0.1).
    #[arg(long, env = "PORT", value_name = "PORT")]
    pub port: Option<u16>,

    /// Directory for the database, the generated secret and attachments (created if missing).
    #[arg(
        long,
        env = "TASKER_DATA_DIR",
        value_name = "DIR",
        default_value = "./tasker-data"
    )]
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

    /// How long a session lasts without a refresh, e.g. 30d.
    #[arg(long, env = "TASKER_REFRESH_TTL", value_name = "DURATION", default_value = "30d", value_parser = parse_ttl)]
    pub refresh_ttl: Duration,

    /// bcrypt cost for password hashes (4 to 31; each step doubles the work).
    #[arg(long, env = "TASKER_BCRYPT_COST", value_name = "COST", default_value_t = 12,
          value_parser = clap::value_parser!(u32).range(4..=31))]
    pub bcrypt_cost: u32,

    /// The largest file an upload may carry, in bytes (1 KiB to 64 GiB).
    #[arg(long, env = "TASKER_MAX_UPLOAD_BYTES", value_name = "BYTES",
          default_value_t = crate::config::DEFAULT_MAX_UPLOAD_BYTES,
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

    /// Log format. The level comes from LOG_LEVEL or RUST_LOG (default info).
    #[arg(
        long,
        env = "TASKER_LOG_FORMAT",
        value_name = "FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,

    /// Who may create an account: `open` (anyone), `invite-only` (an email with a pending
    /// invitation to a team), `closed` (nobody; an admin creates accounts).
    #[arg(
        long,
        env = "TASKER_REGISTRATION",
        value_name = "MODE",
        value_enum,
        default_value = "open"
    )]
    pub registration: Registration,

    /// Rate limits, per client address: every request 200 at once then 50/s; login and
    /// register 10 then 1 per 6s. Per account (the email): 10 then 1 per 20s. Over a limit:
    /// 429 with Retry-After. `off` is for benchmarks and trusted networks.
    #[arg(long, env = "TASKER_RATE_LIMIT", value_name = "on|off", default_value = "on", value_parser = parse_switch, action = clap::ArgAction::Set)]
    pub rate_limit: bool,

    /// Behind a reverse proxy: take the client address from the last `X-Forwarded-For` entry
    /// (the one the proxy added) instead of the socket. Only with a proxy that sets it.
    #[arg(long, env = "TASKER_TRUST_PROXY", value_name = "BOOL", num_args = 0..=1,
          default_missing_value = "true", default_value = "false", value_parser = parse_switch, action = clap::ArgAction::Set)]
    pub trust_proxy: bool,

    /// Origins allowed to call the API from a browser (CORS), comma-separated, e.g.
    /// https://tasks.example.com. Default: none (same-origin only).
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
}

/// `on`/`off` (also `true`/`false`, `yes`/`no`, `1`/`0`).
fn parse_switch(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err("use on or off".into()),
    }
}

fn parse_ttl(text: &str) -> Result<Duration, String> {
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

impl ServeArgs {
    pub fn into_config(self) -> Result<Config, ConfigError> {
        let listen = match (self.listen, self.port) {
            (Some(listen), _) => listen,
            (None, Some(port)) => SocketAddr::new(DEFAULT_LISTEN.ip(), port),
            (None, None) => DEFAULT_LISTEN,
        };
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::new("--data-dir", "must not be empty"));
        }
        let mut config = Config::new(self.data_dir);
        config.listen = listen;
        config.jwt_secret = self.jwt_secret;
        config.token_ttl = self.token_ttl;
        config.refresh_ttl = self.refresh_ttl;
        config.bcrypt_cost = self.bcrypt_cost;
        config.max_upload_bytes = self.max_upload_bytes;
        config.user_quota_bytes = self.user_quota_bytes;
        config.notification_retention = self.notification_retention;
        config.change_retention = self.change_retention;
        config.log_format = self.log_format;
        config.registration = self.registration;
        config.rate_limits = self.rate_limit.then(RateLimits::default);
        config.trust_proxy = self.trust_proxy;
        config.cors_origins = self
            .cors_origins
            .iter()
            .filter(|origin| !origin.trim().is_empty())
            .map(|origin| parse_origin(origin))
            .collect::<Result<_, _>>()?;
        config.metrics = self.metrics;
        config.metrics_token = self.metrics_token.filter(|token| !token.is_empty());
        if config.refresh_ttl < config.token_ttl {
            return Err(ConfigError::new(
                "--refresh-ttl",
                "must not be shorter than --token-ttl",
            ));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("tasker").chain(args.iter().copied()))
    }

    #[test]
    fn ttl_parsing() {
        assert_eq!(parse_ttl("15m").unwrap(), Duration::from_secs(900));
        assert!(parse_ttl("0s").is_err());
        assert!(parse_ttl("soon").is_err());
    }

    #[test]
    fn bcrypt_cost_is_bounded() {
        assert!(parse(&["serve", "--bcrypt-cost", "3"]).is_err());
        assert!(parse(&["serve", "--bcrypt-cost", "32"]).is_err());
        assert!(parse(&["serve", "--bcrypt-cost", "4"]).is_ok());
    }

    #[test]
    fn port_applies_only_without_listen() {
        let Command::Serve(args) = parse(&["serve", "--port", "8080"]).unwrap().command else {
            panic!()
        };
        assert_eq!(
            args.into_config().unwrap().listen,
            "127.0.0.1:8080".parse().unwrap()
        );
        let Command::Serve(args) = parse(&["serve", "--port", "8080", "--listen", "0.0.0.0:9000"])
            .unwrap()
            .command
        else {
            panic!()
        };
        assert_eq!(
            args.into_config().unwrap().listen,
            "0.0.0.0:9000".parse().unwrap()
        );
    }

    #[test]
    fn ops_flags() {
        let Command::Serve(args) = parse(&[
            "serve",
            "--rate-limit",
            "off",
            "--trust-proxy",
            "--metrics",
            "--registration",
            "invite-only",
            "--cors-origins",
            "https://a.example,http://localhost:5173",
        ])
        .unwrap()
        .command
        else {
            panic!()
        };
        let config = args.into_config().unwrap();
        assert_eq!(config.rate_limits, None);
        assert!(config.trust_proxy && config.metrics);
        assert_eq!(config.registration, Registration::InviteOnly);
        assert_eq!(
            config.cors_origins,
            ["https://a.example", "http://localhost:5173"]
        );
        let Command::Serve(args) = parse(&["serve", "--cors-origins", "*"]).unwrap().command else {
            panic!()
        };
        assert!(args.into_config().is_err());
    }

    #[test]
    fn bad_listen_address_names_the_option() {
        let err = parse(&["serve", "--listen", "nonsense"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--listen"), "{err}");
    }
}
