//! tasker: a self-hosted task tracker for teams, in one binary.
//!
//! Dependencies point one way: `api -> service -> {store, files, events} -> domain`.

/// The HTTP API (poem-openapi): routes, DTOs, the error shape, authentication.
pub mod api;
/// The command line (clap).
pub mod cli;
/// Settings and the data directory.
pub mod config;
/// Plain types and rules; no I/O.
pub mod domain;
/// The real-time fan-out of the change log to WebSocket clients.
pub mod events;
/// Attachment blobs on disk: content-addressed storage, sniffing, names, ranges.
pub mod files;
/// `tasker export` / `tasker import`: a data directory as one portable JSON file.
pub mod portable;
/// Use cases: validation, permissions, orchestration.
pub mod service;
/// The redb store: tables, migrations, one function per transaction.
pub mod store;

use std::future::Future;
use std::time::Duration;

use poem::Server;
use poem::listener::TcpAcceptor;

pub use config::{Config, ConfigError};

use service::{Service, ServiceConfig};
use store::{Store, StoreError};

/// How long in-flight requests may take to finish after shutdown is requested.
const GRACEFUL_SHUTDOWN: Duration = Duration::from_secs(10);

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A setting is wrong (exit code 2).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Anything else.
    #[error("{0}")]
    Runtime(String),
}

/// A server whose data directory is open and ready to accept connections.
pub struct App {
    service: Service,
}

impl App {
    /// Prepares the data directory, opens (and migrates) the database and loads the secret.
    /// Fails fast when another process holds the data directory.
    pub fn open(config: &Config) -> Result<Self, ServeError> {
        config::prepare_data_dir(&config.data_dir)?;
        // A bad configured secret fails before anything is opened.
        config::configured_jwt_secret(config)?;
        let data_dir = || format!("--data-dir {}", config.data_dir.display());
        // Opening the store takes the data directory's lock: from here on it is ours alone.
        let store = Store::open_with_group_commit(&config.db_path()).map_err(|e| match e {
            StoreError::Locked | StoreError::NewerSchema { .. } => {
                ConfigError::new(data_dir(), e.to_string())
            }
            other => ConfigError::new(data_dir(), format!("cannot open the database: {other}")),
        })?;
        let jwt_secret = config::jwt_secret(config)?;
        let blobs = open_blobs(config, &store)?;
        let position = store.last_seq().map_err(|e| {
            ConfigError::new(data_dir(), format!("cannot read the change log: {e}"))
        })?;
        let service = Service::new(
            store,
            blobs,
            position,
            ServiceConfig {
                jwt_secret,
                token_ttl: config.token_ttl,
                refresh_ttl: config.refresh_ttl,
                bcrypt_cost: config.bcrypt_cost,
                bcrypt_concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
                max_upload_bytes: config.max_upload_bytes,
                user_quota_bytes: config.user_quota_bytes,
                notification_retention: config.notification_retention,
                change_retention: config.change_retention,
                feed_queue: config.feed_queue.max(1),
            },
        );
        Ok(Self { service })
    }

    /// Serves on `listener` until `shutdown` completes, then lets in-flight requests finish.
    pub async fn run(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let acceptor =
            TcpAcceptor::from_tokio(listener).map_err(|e| ServeError::Runtime(e.to_string()))?;
        let (stop_background, stopped) = tokio::sync::watch::channel(false);
        let background = tokio::spawn({
            let (service, stopped) = (self.service.clone(), stopped.clone());
            async move { service.run_background(stopped).await }
        });
        let feed = tokio::spawn({
            let service = self.service.clone();
            async move { service.run_feed(stopped).await }
        });
        // WebSockets never finish on their own: close them as shutdown begins, so only real
        // requests are waited for.
        let shutdown = {
            let service = self.service.clone();
            async move {
                shutdown.await;
                service.close_feed().await;
            }
        };
        let served = Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(api::app(self.service), shutdown, Some(GRACEFUL_SHUTDOWN))
            .await
            .map_err(|e| ServeError::Runtime(e.to_string()));
        // Background work finishes its current step, so the store is closed when this returns.
        let _ = stop_background.send(true);
        let _ = background.await;
        let _ = feed.await;
        served
    }
}

/// Opens the blob directory and sweeps what a crash left: temp files of unfinished uploads,
/// and blobs no attachment refers to (written before a commit that never happened, or left
/// after one that freed them).
fn open_blobs(config: &Config, store: &Store) -> Result<files::BlobStore, ServeError> {
    let failed = |e: std::io::Error| {
        ConfigError::new(
            format!("--data-dir {}", config.data_dir.display()),
            format!("cannot open the attachment store: {e}"),
        )
    };
    let blobs = files::BlobStore::open(&config.data_dir).map_err(failed)?;
    let report = blobs
        .sweep(|hash| store.blob_referenced(hash.0).map_err(std::io::Error::other))
        .map_err(failed)?;
    if report.temp_removed + report.orphans_removed > 0 {
        tracing::info!(
            temp_removed = report.temp_removed,
            orphans_removed = report.orphans_removed,
            kept = report.kept,
            "swept the attachment store"
        );
    }
    Ok(blobs)
}

/// Runs the server on an already bound listener until `shutdown` completes. Tests call this
/// with a port-0 listener and a oneshot.
pub async fn serve(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let app = tokio::task::spawn_blocking(move || App::open(&config))
        .await
        .map_err(|e| ServeError::Runtime(e.to_string()))??;
    app.run(listener, shutdown).await
}
