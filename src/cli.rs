//! The command line. Doc comments are the help text.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, ConfigError, DEFAULT_LISTEN, LogFormat};

/// tasker: a self-hosted task tracker for teams, in one binary.
#[derive(Debug, Parser)]
#[command(name = "tasker", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (API under /api, Swagger UI at /docs).
    Serve(ServeArgs),
    /// Print the OpenAPI spec (JSON) to standard output.
    Openapi,
    /// Write a stopped server's data to a portable JSON file (no passwords or secrets).
    Export(ExportArgs),
    /// Load a portable JSON export into a new, empty data directory (server stopped).
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The data directory to export (its server must be stopped).
    #[arg(
        long,
        env = "TASKER_DATA_DIR",
        value_name = "DIR",
        default_value = "./tasker-data"
    )]
    pub data_dir: PathBuf,

    /// The file to write (written as FILE.tmp, then renamed).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The data directory to load into: new or without any account. Copy the old data
    /// directory's blobs/ into it first to keep attachments.
    #[arg(
        long,
        env = "TASKER_DATA_DIR",
        value_name = "DIR",
        default_value = "./tasker-data"
    )]
    pub data_dir: PathBuf,

    /// The export file to read.
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
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
    fn bad_listen_address_names_the_option() {
        let err = parse(&["serve", "--listen", "nonsense"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--listen"), "{err}");
    }
}
