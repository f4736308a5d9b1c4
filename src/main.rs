//! The `tasker` binary: parse the command line, set up logging, dispatch.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::process::ExitCode;

use clap::FromArgMatches;
use clap::parser::ValueSource;
use tasker::Config;
use tasker::cli::{Cli, Command, ExportArgs, ImportArgs, find_arg};
use tasker::config::{ConfigError, DEFAULT_LOG_LEVEL, DotEnv, LogFormat, Source, describe_setting};
use tasker::{App, ServeError};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    limit_malloc_arenas();
    let dotenv = match DotEnv::load() {
        Ok(dotenv) => dotenv,
        Err(e) => return fail(2, &e),
    };
    let args: Vec<OsString> = std::env::args_os().collect();
    let mut command = tasker::cli::command();
    let parsed = command
        .try_get_matches_from_mut(&args)
        .and_then(|matches| Ok((Cli::from_arg_matches(&matches)?, matches)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => return fail(2, &clap_error(&e, &command, &args, &dotenv)),
    };
    match cli.command {
        Command::Serve(config) => {
            let (Some(command), Some(matches)) = (
                command.find_subcommand("serve"),
                matches.subcommand_matches("serve"),
            ) else {
                return fail(2, "the serve command is missing");
            };
            serve(
                config,
                &Settings {
                    command,
                    matches,
                    dotenv: &dotenv,
                },
            )
        }
        Command::Openapi => print_spec(),
        Command::Reindex(args) => reindex(&args.data_dir),
        Command::Export(args) => export(args),
        Command::Import(args) => import(args),
        Command::Email(tasker::cli::EmailCommand::Test(args)) => email_test(args),
        command => match tasker::ops::run(command) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(e.code, &e.message),
        },
    }
}

/// glibc gives each thread that allocates under contention an arena of its own (up to eight
/// per core) and rarely hands their free space back: with the blocking pool's threads that
/// held 50 MiB more after a burst of concurrent searches at a million tasks than two arenas
/// do, for no measurable speed. Two arenas, set before the first thread starts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    // SAFETY: mallopt only sets an allocator parameter; it is called before any other thread
    // exists, and M_ARENA_MAX takes any positive count.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

/// One line for a command-line error. A bad value names where it was set (the flag, or the
/// variable and its `.env` line) and, for a choice, lists the valid values:
/// `TASKER_REGISTRATION=foo (from .env line 3, for --registration): expected one of open,
/// invite-only, closed`. Other errors keep clap's first line.
fn clap_error(
    error: &clap::Error,
    command: &clap::Command,
    args: &[OsString],
    dotenv: &DotEnv,
) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let rendered = error.to_string();
    let first_line = rendered
        .lines()
        .next()
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ")
        .to_string();
    let (Some(ContextValue::String(invalid_arg)), Some(ContextValue::String(value))) = (
        error.get(ContextKind::InvalidArg),
        error.get(ContextKind::InvalidValue),
    ) else {
        return first_line;
    };
    let valid = match error.get(ContextKind::ValidValue) {
        Some(ContextValue::Strings(valid)) if !valid.is_empty() => Some(valid.join(", ")),
        _ => None,
    };
    let reason = match (error.kind(), valid) {
        (ErrorKind::InvalidValue, Some(valid)) if value.is_empty() => {
            format!("a value is required: one of {valid}")
        }
        (ErrorKind::InvalidValue, Some(valid)) => format!("expected one of {valid}"),
        (ErrorKind::InvalidValue, None) if value.is_empty() => "a value is required".to_string(),
        (ErrorKind::ValueValidation, _) => match std::error::Error::source(error) {
            Some(source) => source.to_string(),
            None => return first_line,
        },
        _ => return first_line,
    };
    let long = invalid_arg
        .trim_start_matches("--")
        .split([' ', '='])
        .next()
        .unwrap_or_default();
    let Some(arg) = find_arg(command, long) else {
        return first_line;
    };
    let flag = format!("--{long}");
    let from_flag = args.iter().skip(1).any(|given| {
        given
            .to_str()
            .is_some_and(|given| given == flag || given.starts_with(&format!("{flag}=")))
    });
    format!(
        "{}: {reason}",
        describe_setting(arg, from_flag, Some(value), dotenv)
    )
}

/// `tasker serve`'s arguments as given: where each value came from.
struct Settings<'a> {
    command: &'a clap::Command,
    matches: &'a clap::ArgMatches,
    dotenv: &'a DotEnv,
}

impl Settings<'_> {
    fn arg(&self, id: &str) -> Option<&clap::Arg> {
        self.command.get_arguments().find(|arg| arg.get_id() == id)
    }

    fn source(&self, id: &str) -> Source {
        match self.matches.value_source(id) {
            Some(ValueSource::CommandLine) => Source::Flag,
            Some(ValueSource::EnvVariable) => self
                .arg(id)
                .and_then(|arg| arg.get_env())
                .and_then(|name| name.to_str())
                .map_or(Source::Environment, |name| self.dotenv.source(name)),
            _ => Source::Default,
        }
    }

    /// The setting `id` named as it was given (flag, variable, `.env` line).
    fn describe(&self, id: &str) -> String {
        let value = self
            .matches
            .get_raw(id)
            .and_then(|mut values| values.next())
            .and_then(|value| value.to_str());
        match self.arg(id) {
            Some(arg) => describe_setting(arg, self.source(id) == Source::Flag, value, self.dotenv),
            None => id.to_string(),
        }
    }

    /// A [`ConfigError`] names the flag (`--data-dir ...`); when a variable set the value,
    /// name the variable and where it came from instead.
    fn name_source(&self, mut error: ConfigError) -> ConfigError {
        let long = error
            .option
            .strip_prefix("--")
            .and_then(|rest| rest.split([' ', '(']).next())
            .unwrap_or_default();
        let id = self
            .command
            .get_arguments()
            .find(|arg| arg.get_long() == Some(long))
            .map(|arg| arg.get_id().to_string());
        if let Some(id) = id
            && matches!(self.source(&id), Source::Environment | Source::DotEnv)
        {
            error.option = self.describe(&id);
        }
        error
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
        if done >= total {
            // What is left is merging what was written into one segment: no count to show.
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar.set_message(format!("indexed {done} tasks; merging the index"));
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
        }
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

/// `tasker email test`: one message through the configured SMTP server, now.
fn email_test(args: tasker::cli::EmailTestArgs) -> ExitCode {
    use tasker::mail::{Mailer, letters};
    let mut mail = args.mail;
    if mail.smtp_url.is_none() {
        return fail(
            2,
            "--smtp-url (TASKER_SMTP_URL) is needed: the SMTP server to test",
        );
    }
    // The test message has no link that must work: a missing --public-url is no reason to fail.
    if mail.public_url.is_none() {
        mail.public_url = Some("http://localhost:3000".into());
    }
    let mail = match mail.resolve() {
        Ok(mail) => mail,
        Err(e) => return fail(2, &e.to_string()),
    };
    let mailer = match Mailer::from_config(&mail) {
        Ok(Some(mailer)) => mailer,
        Ok(None) => return fail(2, "--smtp-url (TASKER_SMTP_URL) is needed"),
        Err(e) => return fail(2, &e),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(1, &format!("cannot start the runtime: {e}")),
    };
    let letter = letters::test_message(&mailer.link(""), &mailer.server());
    let message = mailer.compose(&args.to, letter);
    match runtime.block_on(mailer.send(&message)) {
        Ok(answer) => {
            println!(
                "sent to {} through {}; the server answered: {answer}",
                args.to,
                mailer.server()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(1, &format!("not sent through {}: {e}", mailer.server())),
    }
}

fn serve(mut config: Config, settings: &Settings) -> ExitCode {
    let log_format = config.log_format;
    let settled = config.settle_listen_and_port(
        (settings.source("listen"), &settings.describe("listen")),
        (settings.source("port"), &settings.describe("port")),
    );
    let config = match config.resolve() {
        Ok(config) => config,
        Err(e) => return fail(2, &settings.name_source(e).to_string()),
    };
    if let Err(message) = init_logging(log_format, settings.dotenv) {
        return fail(2, &message);
    }
    for warning in settled.into_iter().chain(config.warnings()) {
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
        Err(ServeError::Config(e)) => return fail(2, &settings.name_source(e).to_string()),
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
fn init_logging(format: LogFormat, dotenv: &DotEnv) -> Result<(), String> {
    let level_source = |name: &str| match dotenv.line(name) {
        Some(line) => format!("from .env line {line}"),
        None => "from the environment".to_string(),
    };
    let filter = match (std::env::var("RUST_LOG"), std::env::var("LOG_LEVEL")) {
        (Ok(spec), _) if !spec.is_empty() => EnvFilter::try_new(&spec)
            .map_err(|e| format!("RUST_LOG={spec} ({}): {e}", level_source("RUST_LOG")))?,
        (_, Ok(level)) if !level.is_empty() => {
            let level: tracing::Level = level.parse().map_err(|_| {
                format!(
                    "LOG_LEVEL={level} ({}): expected one of error, warn, info, debug, trace",
                    level_source("LOG_LEVEL")
                )
            })?;
            EnvFilter::new(level.to_string())
        }
        _ => EnvFilter::new(DEFAULT_LOG_LEVEL),
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
