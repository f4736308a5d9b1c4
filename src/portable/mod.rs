//! `tasker export` and `tasker import`: a whole data directory as one portable JSON file.
//!
//! # The file
//!
//! One JSON object: `format` (`"tasker-export"`), `version` (1), `exported_at`,
//! `tasker_version`, then the sections `users`, `teams` (with their `members`), `projects`,
//! `tasks`, `comments` and `attachments` (metadata only), each an array, in that order. The
//! record types are in [`format`]. No password hash, session, token or secret is ever written.
//! Invitations and notifications are left out: invitations are short-lived offers that are
//! simply sent again, and notifications are a per-user inbox of past events.
//!
//! # Bounded memory
//!
//! Export reads one redb snapshot row by row and writes each record to a buffered file as it
//! goes (`FILE.tmp`, fsynced, then renamed over `FILE`). Import parses the file as a stream
//! ([`import`]'s serde visitor) and writes each record as soon as it is parsed, all in one
//! write transaction: a bad file leaves nothing behind. Because references are checked
//! against what was already imported, the sections must come in the order above (an export
//! always writes them so).
//!
//! # Where it lives
//!
//! The file format, validation and streaming are here; the rows, their indexes and change-log
//! entries are written by `store::portable`, the only place besides the create paths that
//! knows the tables. `portable -> store -> domain`, like the service layer.

/// The documented record types and their conversions from and to domain types.
pub mod format;

/// Writing the file.
mod export;
/// Reading the file as a stream.
mod import;
/// Synthetic export files for benchmarks.
mod synthetic;

use std::fmt;
use std::fs::File;
use std::io::{BufReader, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::store::{DB_FILE, Store, StoreError};
use format::{AttachmentRecord, CommentRecord, ProjectRecord, TaskRecord, TeamRecord, UserRecord};

pub use export::ExportWriter;
pub use synthetic::{Synthetic, write_synthetic};

/// The sections of a file, in the order they must come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    Users,
    Teams,
    Projects,
    Tasks,
    Comments,
    Attachments,
}

impl Section {
    /// Every section, in file order.
    pub const ALL: [Section; 6] = [
        Section::Users,
        Section::Teams,
        Section::Projects,
        Section::Tasks,
        Section::Comments,
        Section::Attachments,
    ];

    /// The section's key in the file.
    pub fn key(self) -> &'static str {
        match self {
            Section::Users => "users",
            Section::Teams => "teams",
            Section::Projects => "projects",
            Section::Tasks => "tasks",
            Section::Comments => "comments",
            Section::Attachments => "attachments",
        }
    }

    /// The section a key of the file names, if any.
    pub fn from_key(key: &str) -> Option<Section> {
        Section::ALL.into_iter().find(|s| s.key() == key)
    }
}

/// Whether to draw a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// On standard error, when it is a terminal (never into a log file or a pipe).
    Stderr,
    /// Never (library callers, tests).
    Hidden,
}

/// Why an export or import failed. [`PortableError::exit_code`] is what the CLI exits with.
#[derive(Debug, thiserror::Error)]
pub enum PortableError {
    #[error("the server is running; stop it first (the database in {0} is locked)")]
    ServerRunning(PathBuf),
    #[error("no tasker database in {0} (expected {DB_FILE}); check --data-dir")]
    NoDatabase(PathBuf),
    #[error(
        "the data directory {0} already has data (accounts, teams or tasks); import only into a new or empty data directory"
    )]
    NotEmpty(PathBuf),
    #[error("invalid export file {file}: {detail}; nothing was imported")]
    Invalid { file: PathBuf, detail: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Store(#[from] StoreError),
    /// An I/O error while writing or reading a file whose name the caller adds.
    #[error("{0}")]
    Stream(#[from] std::io::Error),
}

impl PortableError {
    /// 2 when the data directory is not one an import may write into; 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            PortableError::NotEmpty(_) => 2,
            _ => 1,
        }
    }

    fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> PortableError {
        let context = context.into();
        move |source| PortableError::Io { context, source }
    }

    /// Names `file` in a bare I/O error.
    fn in_file(self, file: &Path) -> PortableError {
        match self {
            PortableError::Stream(source) => PortableError::Io {
                context: file.display().to_string(),
                source,
            },
            other => other,
        }
    }
}

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportReport {
    pub users: u64,
    pub teams: u64,
    pub projects: u64,
    pub tasks: u64,
    pub comments: u64,
    pub attachments: u64,
    pub elapsed: Duration,
}

impl fmt::Display for ExportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exported {} users, {} teams, {} projects, {} tasks, {} comments, {} attachments in {:.1}s",
            self.users,
            self.teams,
            self.projects,
            self.tasks,
            self.comments,
            self.attachments,
            self.elapsed.as_secs_f64()
        )
    }
}

/// What an import wrote, and what it skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub users: u64,
    pub teams: u64,
    pub memberships: u64,
    pub projects: u64,
    pub tasks: u64,
    pub comments: u64,
    pub attachments: u64,
    /// Attachment rows left out because their blob is not in `DATA_DIR/blobs`.
    pub attachments_skipped: u64,
    /// A few of them, for the warning.
    pub skipped_examples: Vec<String>,
    /// The database file's size once imported and compacted.
    pub database_bytes: u64,
    /// Why the compaction after the import failed, if it did (the import itself stands).
    pub compaction_failed: Option<String>,
    pub elapsed: Duration,
}

impl ImportReport {
    /// A warning about skipped attachments, if any were, and about a failed compaction.
    pub fn warning(&self) -> Option<String> {
        let skipped = (self.attachments_skipped > 0).then(|| {
            format!(
                "skipped {} attachments whose file is not in DATA_DIR/blobs (copy the old data directory's blobs/ there before importing), e.g. {}",
                self.attachments_skipped,
                self.skipped_examples.join(", ")
            )
        });
        let compaction = self.compaction_failed.as_ref().map(|why| {
            format!(
                "everything was imported, but the database could not be compacted ({why}); `tasker compact` tries again"
            )
        });
        match (skipped, compaction) {
            (Some(a), Some(b)) => Some(format!("{a}; {b}")),
            (a, b) => a.or(b),
        }
    }
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "imported {} users, {} teams ({} memberships), {} projects, {} tasks, {} comments, {} attachments in {:.1}s (database {:.1} MB); imported accounts have no password until `tasker user reset-password` sets one",
            self.users,
            self.teams,
            self.memberships,
            self.projects,
            self.tasks,
            self.comments,
            self.attachments,
            self.elapsed.as_secs_f64(),
            self.database_bytes as f64 / 1e6,
        )
    }
}

fn open_store(data_dir: &Path) -> Result<Store, PortableError> {
    Store::open(&data_dir.join(DB_FILE)).map_err(|e| match e {
        StoreError::Locked => PortableError::ServerRunning(data_dir.to_path_buf()),
        other => PortableError::Store(other),
    })
}

fn progress_bar(progress: Progress, len: u64, template: &str) -> ProgressBar {
    if progress == Progress::Hidden || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// `FILE.tmp` next to `FILE`.
fn temp_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    out.with_file_name(name)
}

/// Writes one record and counts it.
fn emit<W: Write>(
    writer: &mut ExportWriter<W>,
    bar: &ProgressBar,
    record: &impl serde::Serialize,
) -> Result<(), PortableError> {
    writer.record(record)?;
    bar.inc(1);
    Ok(())
}

/// Writes everything in `data_dir` (whose server must be stopped) to `out`, atomically: the
/// file appears complete or not at all.
pub fn export_file(
    data_dir: &Path,
    out: &Path,
    progress: Progress,
) -> Result<ExportReport, PortableError> {
    let started = Instant::now();
    if !data_dir.join(DB_FILE).is_file() {
        return Err(PortableError::NoDatabase(data_dir.to_path_buf()));
    }
    let store = open_store(data_dir)?;
    let snapshot = store.snapshot()?;
    let bar = progress_bar(
        progress,
        snapshot.counts()?.total(),
        "{msg:12} [{bar:40}] {pos}/{len} records ({eta})",
    );
    let temp = temp_path(out);
    let file = File::create(&temp).map_err(PortableError::io(format!(
        "cannot create {}",
        temp.display()
    )))?;
    let mut report = ExportReport::default();
    let written = (|| -> Result<File, PortableError> {
        let mut writer = ExportWriter::start(BufWriter::with_capacity(1 << 20, file), Utc::now())?;
        for section in Section::ALL {
            writer.section(section)?;
            bar.set_message(section.key());
            match section {
                Section::Users => snapshot.users(|row| {
                    report.users += 1;
                    emit(&mut writer, &bar, &UserRecord::from(row))
                })?,
                Section::Teams => snapshot.teams(|team, members| {
                    report.teams += 1;
                    emit(&mut writer, &bar, &TeamRecord::new(team, members))
                })?,
                Section::Projects => snapshot.projects(|row| {
                    report.projects += 1;
                    emit(&mut writer, &bar, &ProjectRecord::from(row))
                })?,
                Section::Tasks => snapshot.tasks(|row| {
                    report.tasks += 1;
                    emit(&mut writer, &bar, &TaskRecord::from(row))
                })?,
                Section::Comments => snapshot.comments(|row| {
                    report.comments += 1;
                    emit(&mut writer, &bar, &CommentRecord::from(row))
                })?,
                Section::Attachments => snapshot.attachments(|row| {
                    report.attachments += 1;
                    emit(&mut writer, &bar, &AttachmentRecord::from(row))
                })?,
            }
        }
        let file = writer
            .finish()?
            .into_inner()
            .map_err(|e| PortableError::Stream(e.into_error()))?;
        file.sync_all()?;
        Ok(file)
    })();
    bar.finish_and_clear();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(e.in_file(&temp));
    }
    std::fs::rename(&temp, out).map_err(PortableError::io(format!(
        "cannot rename {} to {}",
        temp.display(),
        out.display()
    )))?;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Loads the export file `from` into `data_dir` (created when missing; its server must be
/// stopped), which must hold no accounts, teams, projects or tasks. Everything is written in
/// one transaction: on any error nothing is, and a database file this call created is removed
/// again. Then the database is compacted (the one big transaction leaves free pages behind);
/// a compaction that fails is a warning in the report, never a failed import.
pub fn import_file(
    data_dir: &Path,
    from: &Path,
    progress: Progress,
) -> Result<ImportReport, PortableError> {
    let started = Instant::now();
    let file =
        File::open(from).map_err(PortableError::io(format!("cannot read {}", from.display())))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let dir_existed = data_dir.exists();
    let db_existed = data_dir.join(DB_FILE).exists();
    crate::config::prepare_data_dir(data_dir).map_err(|e| PortableError::Io {
        context: format!("--data-dir {}", data_dir.display()),
        source: std::io::Error::other(e.to_string()),
    })?;
    let result = (|| -> Result<ImportReport, PortableError> {
        let store = open_store(data_dir)?;
        let blobs = import::blobs_of(data_dir).map_err(PortableError::io(format!(
            "cannot open {}",
            data_dir.join("blobs").display()
        )))?;
        let bar = progress_bar(
            progress,
            len,
            "{msg:12} [{bar:40}] {bytes}/{total_bytes} ({eta})",
        );
        let reader = BufReader::with_capacity(1 << 20, bar.wrap_read(file));
        let mut report = ImportReport::default();
        let imported = store.import(|importer| {
            if !importer.is_empty()? {
                return Err(PortableError::NotEmpty(data_dir.to_path_buf()));
            }
            let mut state = import::State {
                report: &mut report,
                blobs,
                progress: &bar,
                position: None,
                store_error: None,
            };
            let mut de = serde_json::Deserializer::from_reader(reader);
            let parsed = serde::Deserializer::deserialize_map(
                &mut de,
                import::FileVisitor {
                    state: &mut state,
                    importer,
                },
            )
            .and_then(|()| de.end());
            match parsed {
                Ok(()) => Ok(()),
                Err(e) => Err(match state.store_error.take() {
                    Some(store) => PortableError::Store(store),
                    None if e.is_io() => PortableError::Io {
                        context: format!("cannot read {}", from.display()),
                        source: e.into(),
                    },
                    None => PortableError::Invalid {
                        file: from.to_path_buf(),
                        detail: match state.position {
                            Some((section, index)) => format!("{}[{index}]: {e}", section.key()),
                            None => e.to_string(),
                        },
                    },
                }),
            }
        });
        bar.finish_and_clear();
        imported?;
        report.elapsed = started.elapsed();
        Ok(report)
    })();
    if result.is_err() && !db_existed {
        // The store is closed (dropped) by now: take away what this call created.
        let _ = std::fs::remove_file(data_dir.join(DB_FILE));
        if !dir_existed {
            let _ = std::fs::remove_dir(data_dir);
        }
    }
    let mut report = result?;
    let spinner = progress_bar(progress, 0, "{msg} {spinner} {elapsed}");
    spinner.set_message("compacting the database");
    spinner.enable_steady_tick(Duration::from_millis(200));
    let path = data_dir.join(DB_FILE);
    match crate::store::compact(&path) {
        Ok(compacted) => report.database_bytes = compacted.after,
        Err(e) => {
            report.compaction_failed = Some(e.to_string());
            report.database_bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
        }
    }
    spinner.finish_and_clear();
    report.elapsed = started.elapsed();
    Ok(report)
}
