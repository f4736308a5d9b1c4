//! The `tasker` binary: parse the command line, set up logging, dispatch.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tasker::Config;
use tasker::cli::{Cli, Command, ExportArgs, ImportArgs};
use tasker::config::LogFormat;
use tasker::{App, ServeError};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    if let Err(e) = dotenvy::dotenv()
        && !e.not_found()
    {
        return fail(2, &format!(".env: {e}"));
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let rendered = e.to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            return fail(2, first.trim_start_matches("error: "));
        }
    };
    match cli.command {
        Command::Serve(config) => serve(config),
        Command::Openapi => print_spec(),
        Command::Reindex(args) => reindex(&args.data_dir),
        Command::Export(args) => export(args),
        Command::Import(args) => import(args),
        command => match tasker::ops::run(command) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(e.code, &e.message),
        },
    }
}

/// `tasker openapi`: the spec on stdout. A reader that stops early (`tasker openapi | head`)
/// closes the pipe: that is its choice, not a failure, so the command ends quietly.
fn print_spec() -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{}", tasker::api::spec_json()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => fail(1, &format!("cannot write the spec: {e}")),
    }
}

/// `tasker reindex`: a fresh index from the database, with a progress bar on a terminal.
fn reindex(data_dir: &std::path::Path) -> ExitCode {
    let started = std::time::Instant::now();
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} indexing tasks {bar:40} {pos}/{len} ({per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let result = tasker::reindex(data_dir, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    match result {
        Ok(tasks) => {
            println!(
                "indexed {tasks} tasks in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => exit_with(e),
    }
}

fn export(args: ExportArgs) -> ExitCode {
    use tasker::portable::{Progress, export_file};
    match export_file(&args.data.data_dir, &args.out, Progress::Stderr) {
        Ok(report) => {
            println!("{report} to {}", args.out.display());
            ExitCode::SUCCESS
        }
        Err(e) => fail(e.exit_code(), &e.to_string()),
    }
}

fn import(args: ImportArgs) -> ExitCode {
    use tasker::portable::{Progress, import_file};
    match import_file(&args.data.data_dir, &args.from, Progress::Stderr) {
        Ok(report) => {
            if let Some(warning) = report.warning() {
                eprintln!("warning: {warning}");
            }
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e.exit_code(), &e.to_string()),
    }
}

fn serve(config: Config) -> ExitCode {
    let log_format = config.log_format;
    let config = match config.resolve() {
        Ok(config) => config,
        Err(e) => return fail(2, &e.to_string()),
    };
    if let Err(message) = init_logging(log_format) {
        return fail(2, &message);
    }
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(1, &format!("cannot start the runtime: {e}")),
    };
    // Opening the store (redb, migrations) is blocking work: done before the executor starts.
    let app = match App::open(&config) {
        Ok(app) => app,
        Err(e) => return exit_with(e),
    };
    let result = runtime.block_on(async {
        let listen = config.listen_addr();
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| tasker::ConfigError::new(format!("--listen {listen}"), e.to_string()))?;
        let address = listener.local_addr().map_err(|e| ServeError::Runtime(e.to_string()))?;
        tracing::info!(%address, data_dir = %config.data_dir.display(), "tasker {} listening; docs at http://{address}/docs", env!("CARGO_PKG_VERSION"));
        app.run(listener, shutdown_signal()).await
    });
    match result {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => exit_with(e),
    }
}

/// Exit code 2 for a bad setting, 1 for anything else.
fn exit_with(error: ServeError) -> ExitCode {
    match error {
        ServeError::Config(e) => fail(2, &e.to_string()),
        e => fail(1, &e.to_string()),
    }
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(code)
}

/// Log level from RUST_LOG (a full filter) or LOG_LEVEL (a level), default `info`.
fn init_logging(format: LogFormat) -> Result<(), String> {
    let filter = match (std::env::var("RUST_LOG"), std::env::var("LOG_LEVEL")) {
        (Ok(spec), _) if !spec.is_empty() => {
            EnvFilter::try_new(&spec).map_err(|e| format!("RUST_LOG: {e}"))?
        }
        (_, Ok(level)) if !level.is_empty() => {
            let level: tracing::Level = level.parse().map_err(|_| {
                format!("LOG_LEVEL: '{level}' is not one of error, warn, info, debug, trace")
            })?;
            EnvFilter::new(level.to_string())
        }
        _ => EnvFilter::new("info"),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM (systemd stop).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}
