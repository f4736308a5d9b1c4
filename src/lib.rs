//! tasker: a self-hosted task tracker for teams, in one binary.
//!
//! Dependencies point one way, with no circle inside a layer:
//!
//! ```text
//! main -> cli -> config                       the one Config (flags, environment, .env)
//! lib (App, serve) -> {api, web} -> service -> {store, search, files, events, backup} -> domain
//! web -> api (the client address the API's middleware notes)
//! main -> ops, portable -> {store, search, files, backup} -> domain
//! ```
//!
//! `api` is the HTTP layer (thin handlers); `service` holds the use cases and asks
//! `domain::access` who may do what; `ops` and `portable` are the operator commands behind the
//! CLI, which work on a stopped data directory and share `backup` (archive writing) with the
//! running server and `domain` (e.g. password hashing) with the service, never the service
//! itself.

/// The HTTP API (poem-openapi): routes, DTOs, the error shape, authentication.
pub mod api;
/// Backup archives of a data dir: the format, and writing a consistent one from a live store.
pub mod backup;
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
/// The process heap: freed memory handed back to the system after a rebuild.
pub mod heap;
/// Outgoing mail: SMTP transport, messages and their templates.
pub mod mail;
/// The connection layer: accepting, timeouts, the connection limit, graceful shutdown.
pub mod net;
/// Operator tools: backup and restore, checks, offline account administration.
pub mod ops;
/// `tasker export` / `tasker import`: a data directory as one portable JSON file.
pub mod portable;
/// Full-text search over tasks (tantivy): derived from redb, rebuilt when lost.
pub mod search;
/// Use cases: validation, permissions, orchestration.
pub mod service;
/// The redb store: tables, migrations, `Store::write` with its `Tx` and `Effects`, rows by entity.
pub mod store;
/// The web app: server-rendered pages, browser sessions, static files.
pub mod web;

use std::future::Future;
use std::time::Duration;

use poem::EndpointExt;

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
    config: Config,
    /// `DATA_DIR/admin.sock` (see `ops::socket`); `None` when it could not be bound.
    #[cfg(unix)]
    admin_socket: Option<std::os::unix::net::UnixListener>,
}

impl App {
    /// Prepares the data directory, opens (and migrates) the database and loads the secret.
    /// Fails fast when another process holds the data directory.
    pub fn open(config: &Config) -> Result<Self, ServeError> {
        config::prepare_data_dir(&config.data_dir)?;
        net::egress::install_crypto_provider();
        // A bad configured secret fails before anything is opened.
        config::configured_jwt_secret(config)?;
        let data_dir = || format!("--data-dir {}", config.data_dir.display());
        // Opening the store takes the data directory's lock: from here on it is ours alone.
        let store = Store::open_with_group_commit(&config.db_path(), config.db_cache << 20)
            .map_err(|e| match e {
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
        let search = search::SearchIndex::open(&config.index_dir(), position).map_err(|e| {
            ConfigError::new(data_dir(), format!("cannot open the search index: {e}"))
        })?;
        let egress = net::egress::Egress::new(net::egress::EgressSettings {
            timeout: config.webhook_timeout,
            connect_timeout: config
                .webhook_timeout
                .min(std::time::Duration::from_secs(5)),
            ..net::egress::EgressSettings::new(config.webhook_allowed_hosts.clone())
        })
        .map_err(|e| ConfigError::new("--webhook-allowed-hosts", e.to_string()))?;
        let service = Service::new(
            store,
            blobs,
            std::sync::Arc::new(search),
            position,
            ServiceConfig::new(config, jwt_secret),
            egress,
        );
        if let Err(e) = backup::clear_temp(&config.data_dir) {
            tracing::warn!(error = %e, "cannot remove what an interrupted backup left");
        }
        #[cfg(unix)]
        let admin_socket = ops::socket::bind(&config.data_dir)
            .inspect_err(|e| tracing::warn!(error = %e, "no admin socket; `tasker backup` cannot reach this server"))
            .ok();
        Ok(Self {
            service,
            config: config.clone(),
            #[cfg(unix)]
            admin_socket,
        })
    }

    /// Serves on `listener` until `shutdown` completes, then lets in-flight requests finish.
    pub async fn run(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let (stop_background, stopped) = tokio::sync::watch::channel(false);
        let background = tokio::spawn({
            let (service, stopped) = (self.service.clone(), stopped.clone());
            async move { service.run_background(stopped).await }
        });
        let indexer = tokio::spawn({
            let (service, stopped) = (self.service.clone(), stopped.clone());
            async move { service.run_indexer(stopped).await }
        });
        let reminders = tokio::spawn({
            let (service, stopped) = (self.service.clone(), stopped.clone());
            async move { service.run_reminders(stopped).await }
        });
        let outbox = tokio::spawn({
            let (service, stopped) = (self.service.clone(), stopped.clone());
            async move { service.run_outbox(stopped).await }
        });
        let hooks = tokio::spawn({
            let (service, stopped) = (self.service.clone(), stopped.clone());
            async move { service.run_webhooks(stopped, api::webhook_body).await }
        });
        let feed = tokio::spawn({
            let service = self.service.clone();
            async move { service.run_feed(stopped).await }
        });
        // WebSockets never finish on their own: close them as shutdown begins, so only real
        // requests are waited for.
        let (stop_admin, admin_stopped) = tokio::sync::watch::channel(false);
        #[cfg(unix)]
        let admin = self.admin_socket.map(|listener| {
            tokio::spawn(api::serve_admin_socket(
                listener,
                self.service.clone(),
                admin_stopped,
            ))
        });
        let shutdown = {
            let service = self.service.clone();
            async move {
                shutdown.await;
                let _ = stop_admin.send(true);
                service.close_feed().await;
            }
        };
        let site = web::site(&self.config);
        let app = api::app(self.service, &self.config, site)
            .data(api::WsSettings::from_config(&self.config));
        let limits = net::Limits::from_config(&self.config);
        let served = net::serve(listener, app, limits, shutdown, GRACEFUL_SHUTDOWN)
            .await
            .map_err(|e| ServeError::Runtime(e.to_string()));
        // Background work finishes its current step, so the store is closed when this returns.
        let _ = stop_background.send(true);
        let _ = background.await;
        let _ = outbox.await;
        let _ = feed.await;
        let _ = reminders.await;
        let _ = hooks.await;
        // The indexer commits what was acknowledged before the stop.
        let _ = indexer.await;
        #[cfg(unix)]
        if let Some(admin) = admin {
            let _ = admin.await;
        }
        let _ = ops::socket::remove(&self.config.data_dir);
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

/// The database cache of `tasker reindex`, in MiB.
const REINDEX_CACHE_MIB: usize = 8;

/// Rebuilds the search index of the data directory `data_dir` from its database (the server
/// must be stopped: it holds the database). `progress` hears tasks done and the total.
/// Returns how many tasks were indexed.
pub fn reindex(
    data_dir: &std::path::Path,
    progress: impl FnMut(u64, u64),
) -> Result<u64, ServeError> {
    let config = Config::new(data_dir);
    let option = || format!("--data-dir {}", data_dir.display());
    if !config.db_path().exists() {
        return Err(ConfigError::new(option(), "has no database (nothing to index)").into());
    }
    // A rebuild reads every task once, in key order: a cache of pages it will not read again
    // would only hold memory beside the index writer's.
    let store = Store::open_with_cache(&config.db_path(), REINDEX_CACHE_MIB << 20).map_err(
        |e| match e {
            StoreError::Locked => ConfigError::new(
                option(),
                "a running server holds it: stop the server first, or delete its index \
             directory and restart it to rebuild while it serves",
            ),
            other => ConfigError::new(option(), format!("cannot open the database: {other}")),
        },
    )?;
    let index = search::SearchIndex::create(&config.index_dir())
        .map_err(|e| ServeError::Runtime(e.to_string()))?;
    let tasks = service::rebuild_index(&store, &index, progress)
        .map_err(|e| ServeError::Runtime(e.to_string()))?;
    index
        .close()
        .map_err(|e| ServeError::Runtime(e.to_string()))?;
    Ok(tasks)
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
