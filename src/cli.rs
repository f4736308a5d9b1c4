//! The command line. Doc comments are the help text.

use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::config::{Config, DEFAULT_BCRYPT_COST, DEFAULT_DATA_DIR};

/// tasker: a self-hosted task tracker for teams, in one binary.
#[derive(Debug, Parser)]
#[command(
    name = "tasker",
    version,
    about,
    after_help = "Options can also be set by environment variables (each command's --help \
                  names them) or by lines VARIABLE=value in ./.env."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once at start: the size of the `serve` variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (API under /api, Swagger UI at /docs).
    Serve(Config),
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
    /// Give the database file's free space back, with the server stopped.
    ///
    /// Moves the database's live pages to the front of the file and truncates it; prints the
    /// size before and after. (`tasker import` compacts by itself when it is done.)
    Compact(DataDirArg),
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
    /// Outgoing mail: check the SMTP settings.
    #[command(subcommand)]
    Email(EmailCommand),
}

/// `tasker email ...`.
#[derive(Debug, Subcommand)]
pub enum EmailCommand {
    /// Send one test message now (directly, not through the outbox) with the same settings
    /// as `tasker serve` (flags or TASKER_SMTP_* variables) and print the SMTP server's answer.
    /// Exit codes: 0 sent, 1 not sent, 2 bad usage.
    Test(EmailTestArgs),
}

#[derive(Debug, Args)]
pub struct EmailTestArgs {
    /// The address to send the test message to.
    #[arg(long, value_name = "ADDRESS")]
    pub to: String,
    #[command(flatten)]
    pub mail: crate::config::MailConfig,
}

/// The command line as `main` parses it: [`Cli`]'s, where an empty variable for a setting
/// without a default (`TASKER_LISTEN=`, `PORT=`, `TASKER_USER_QUOTA_BYTES=`, ...) counts as
/// unset, as in the env file install.sh writes. (An empty value of a setting with a default is
/// still checked: `TASKER_TRUSTED_PROXIES=` means none.)
pub fn command() -> clap::Command {
    unset_empty_variables(Cli::command())
}

fn unset_empty_variables(command: clap::Command) -> clap::Command {
    let subcommands: Vec<String> = command
        .get_subcommands()
        .map(|sub| sub.get_name().to_string())
        .collect();
    let mut command = command.mut_args(|arg| {
        let empty = arg
            .get_env()
            .and_then(std::env::var_os)
            .is_some_and(|value| value.is_empty());
        if empty && arg.get_default_values().is_empty() {
            arg.env(None::<&str>)
        } else {
            arg
        }
    });
    for name in subcommands {
        command = command.mut_subcommand(name, unset_empty_variables);
    }
    command
}

/// The first argument of `command` or its subcommands with the long name `long`.
pub fn find_arg<'a>(command: &'a clap::Command, long: &str) -> Option<&'a clap::Arg> {
    command
        .get_arguments()
        .find(|arg| arg.get_long() == Some(long))
        .or_else(|| {
            command
                .get_subcommands()
                .find_map(|sub| find_arg(sub, long))
        })
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
    #[arg(long, env = "TASKER_DATA_DIR", value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
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
    #[arg(long, env = "TASKER_BCRYPT_COST", value_name = "COST", default_value_t = DEFAULT_BCRYPT_COST,
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
    /// List every account: id, email, name, role (admin or user), disabled, created.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Registration;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("tasker").chain(args.iter().copied()))
    }

    #[test]
    fn ttl_parsing() {
        use crate::config::parse_ttl;
        use std::time::Duration;
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
            args.resolve().unwrap().listen_addr(),
            "127.0.0.1:8080".parse().unwrap()
        );
        let Command::Serve(args) = parse(&["serve", "--port", "8080", "--listen", "0.0.0.0:9000"])
            .unwrap()
            .command
        else {
            panic!()
        };
        assert_eq!(
            args.resolve().unwrap().listen_addr(),
            "0.0.0.0:9000".parse().unwrap()
        );
    }

    #[test]
    fn ops_flags() {
        let Command::Serve(args) = parse(&[
            "serve",
            "--rate-limit",
            "off",
            "--trusted-proxies",
            "10.0.0.0/8,fd00::/8",
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
        let config = args.resolve().unwrap();
        assert_eq!(config.rate_limits, None);
        assert!(config.metrics);
        assert!(config.trusted_proxies.trusts("10.2.3.4".parse().unwrap()));
        assert!(!config.trusted_proxies.trusts("127.0.0.1".parse().unwrap()));
        assert_eq!(config.registration, Registration::InviteOnly);
        assert_eq!(
            config.cors_origins,
            ["https://a.example", "http://localhost:5173"]
        );
        let Command::Serve(args) = parse(&["serve", "--cors-origins", "*"]).unwrap().command else {
            panic!()
        };
        assert!(args.resolve().is_err());
    }

    #[test]
    fn bad_trusted_proxies_name_the_option_and_the_entry() {
        let err = parse(&["serve", "--trusted-proxies", "127.0.0.1,10.0.0.0/33"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--trusted-proxies"), "{err}");
        assert!(err.contains("'10.0.0.0/33'"), "{err}");
    }

    #[test]
    fn the_removed_trust_proxy_points_to_trusted_proxies() {
        for args in [
            &["serve", "--trust-proxy"][..],
            &["serve", "--trust-proxy", "false"][..],
        ] {
            let Command::Serve(config) = parse(args).unwrap().command else {
                panic!()
            };
            let err = config.resolve().unwrap_err().to_string();
            assert!(err.contains("--trust-proxy"), "{err}");
            assert!(err.contains("--trusted-proxies"), "{err}");
        }
        let Command::Serve(config) = parse(&["serve", "--trusted-proxies", "none"])
            .unwrap()
            .command
        else {
            panic!()
        };
        assert!(config.resolve().unwrap().trusted_proxies.is_empty());
    }

    #[test]
    fn bad_listen_address_names_the_option() {
        let err = parse(&["serve", "--listen", "nonsense"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--listen"), "{err}");
    }
}
