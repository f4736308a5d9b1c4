//! Operator tools behind the admin commands: backup and restore, `tasker check`, account
//! administration, and the running server's admin socket.
//!
//! The commands work on a stopped data dir (they open the database themselves, so the
//! database lock keeps them from racing the server). `tasker backup` is the exception: when
//! the server holds the data dir, it asks the server for the archive over `DATA_DIR/admin.sock`.

/// `tasker backup` (an archive file written atomically) and `tasker restore`.
pub mod backup;
/// `tasker check`: a list of checks over one snapshot.
pub mod check;
/// Runs the admin commands of the CLI.
mod commands;
/// The admin socket: the server side's path handling and the CLI's HTTP client.
pub mod socket;
/// `tasker user ...`: accounts managed offline.
pub mod users;

pub use commands::run;

use std::path::Path;

use crate::store::{DB_FILE, Store, StoreError};

/// The message for a data dir the server holds.
pub const SERVER_RUNNING: &str = "the server is running; stop it first";

/// A failed command: its exit code (1 failure, 2 bad usage) and a one-line message.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CommandError {
    pub code: u8,
    pub message: String,
}

impl CommandError {
    /// Exit code 1.
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
        }
    }

    /// Exit code 2.
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }
}

impl From<anyhow::Error> for CommandError {
    fn from(e: anyhow::Error) -> Self {
        Self::failed(format!("{e:#}"))
    }
}

/// Opens the database of an existing data dir without migrating it. A data dir the server
/// holds is [`StoreError::Locked`].
pub fn open_existing(data_dir: &Path) -> anyhow::Result<Store> {
    let path = data_dir.join(DB_FILE);
    if !path.is_file() {
        anyhow::bail!(
            "--data-dir {}: no tasker database there ({DB_FILE} is missing)",
            data_dir.display()
        );
    }
    Store::open_existing(&path).map_err(|e| match e {
        StoreError::Locked => anyhow::anyhow!(StoreError::Locked),
        other => anyhow::anyhow!("--data-dir {}: {other}", data_dir.display()),
    })
}

/// `tasker compact`: compacts the database of an existing data dir the server does not hold.
pub fn compact(data_dir: &Path) -> Result<crate::store::Compacted, CommandError> {
    let path = data_dir.join(DB_FILE);
    if !path.is_file() {
        return Err(CommandError::failed(format!(
            "--data-dir {}: no tasker database there ({DB_FILE} is missing)",
            data_dir.display()
        )));
    }
    crate::store::compact(&path).map_err(|e| match e {
        StoreError::Locked => CommandError::failed(SERVER_RUNNING),
        other => CommandError::failed(format!("--data-dir {}: {other}", data_dir.display())),
    })
}

/// Whether `error` says the server holds the data dir.
pub fn is_locked(error: &anyhow::Error) -> bool {
    matches!(error.downcast_ref::<StoreError>(), Some(StoreError::Locked))
}
