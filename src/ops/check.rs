//! `tasker check`: a list of independent checks over one snapshot of a stopped data dir.
//!
//! To add a check (the search index will want "documents in the index = tasks in the
//! database"), write a [`Check`] function and add it to [`CHECKS`]. A check reports counts in
//! its summary, problems (which make `tasker check` exit 1) and notes (informational).

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use anyhow::Context;

use crate::files::{BlobStore, Hash};
use crate::store::{DB_FILE, Snapshot, Store};

/// The outcome of one check.
#[derive(Debug, Clone)]
pub struct CheckResult {
    /// A short name, e.g. `database`.
    pub name: &'static str,
    /// One line with counts, e.g. `12 tasks, 3 users`.
    pub summary: String,
    /// Each one makes the check fail.
    pub problems: Vec<String>,
    /// Worth knowing, not a failure (e.g. unreferenced blob files, which the next start
    /// removes).
    pub notes: Vec<String>,
    /// Lines printed under the summary as they are (e.g. the storage table).
    pub details: Vec<String>,
}

/// Every check's result.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub checks: Vec<CheckResult>,
}

impl Report {
    /// True when no check found a problem.
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.problems.is_empty())
    }

    /// The report as text: one block per check, problems indented under it.
    pub fn render(&self) -> String {
        let mut text = String::new();
        for check in &self.checks {
            let verdict = if check.problems.is_empty() {
                "ok"
            } else {
                "FAILED"
            };
            text.push_str(&format!(
                "{:<10} {verdict:<6} {}\n",
                check.name, check.summary
            ));
            for line in &check.details {
                text.push_str(&format!("    {line}\n"));
            }
            for problem in &check.problems {
                text.push_str(&format!("    problem: {problem}\n"));
            }
            for note in &check.notes {
                text.push_str(&format!("    note: {note}\n"));
            }
        }
        let problems: usize = self.checks.iter().map(|c| c.problems.len()).sum();
        if problems == 0 {
            text.push_str("all checks passed\n");
        } else {
            text.push_str(&format!("{problems} problem(s) found\n"));
        }
        text
    }
}

/// What a check may look at: the data dir, the opened store, one snapshot of it (every check
/// sees the same state) and the blob directory.
pub struct CheckContext<'a> {
    pub data_dir: &'a Path,
    pub store: &'a Store,
    pub snapshot: &'a Snapshot,
    pub blobs: &'a BlobStore,
}

/// One check. An `Err` is reported as a problem of that check.
pub type Check = fn(&CheckContext<'_>) -> anyhow::Result<CheckResult>;

/// The checks `tasker check` runs, in order. Register new ones here.
pub const CHECKS: &[(&str, Check)] = &[
    ("database", check_database),
    ("blobs", check_blobs),
    ("index", check_index),
    ("storage", check_storage),
];

/// Opens `data_dir` (which must not be in use), runs every check in [`CHECKS`] on one
/// snapshot and returns the report. `Err` only when the checks could not run at all.
pub fn run_checks(data_dir: &Path) -> anyhow::Result<Report> {
    let store = super::open_existing(data_dir)?;
    let snapshot = store.snapshot()?;
    let blobs = BlobStore::open(data_dir).context("cannot open the blob directory")?;
    let context = CheckContext {
        data_dir,
        store: &store,
        snapshot: &snapshot,
        blobs: &blobs,
    };
    let checks = CHECKS
        .iter()
        .map(|(name, check)| {
            check(&context).unwrap_or_else(|e| CheckResult {
                name,
                summary: "could not run".into(),
                problems: vec![format!("{e:#}")],
                notes: vec![],
                details: vec![],
            })
        })
        .collect();
    Ok(Report { checks })
}

/// Every row decodes; indexes agree with rows; blob reference counts match the attachments.
fn check_database(context: &CheckContext<'_>) -> anyhow::Result<CheckResult> {
    let checked = context.snapshot.check()?;
    let count = |table: &str| {
        checked
            .rows
            .iter()
            .find(|(name, _)| *name == table)
            .map_or(0, |(_, rows)| *rows)
    };
    Ok(CheckResult {
        name: "database",
        summary: format!(
            "{} tables; {} users, {} teams, {} projects, {} tasks, {} comments, {} attachments, {} changes",
            checked.rows.len(),
            count("users-1"),
            count("teams-1"),
            count("projects-1"),
            count("tasks-1"),
            count("comments-1"),
            count("attachments-1"),
            count("changes-1"),
        ),
        problems: checked.problems,
        notes: vec![],
        details: vec![],
    })
}

/// Every referenced blob exists and still has its hash; files nobody refers to are noted.
fn check_blobs(context: &CheckContext<'_>) -> anyhow::Result<CheckResult> {
    let referenced: HashSet<Hash> = context
        .snapshot
        .blob_hashes()?
        .into_iter()
        .map(Hash)
        .collect();
    let mut problems = Vec::new();
    let mut bytes = 0u64;
    for hash in &referenced {
        let path = context.blobs.path(hash);
        match context.blobs.verify(hash) {
            Ok(true) => bytes += fs::metadata(&path).map_or(0, |m| m.len()),
            Ok(false) => problems.push(format!(
                "blob {} is corrupt: its bytes do not match its hash ({})",
                hash.to_hex(),
                path.display()
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => problems.push(format!(
                "blob {} is missing ({})",
                hash.to_hex(),
                path.display()
            )),
            Err(e) => problems.push(format!("blob {}: {e} ({})", hash.to_hex(), path.display())),
        }
    }
    let mut notes = Vec::new();
    let blob_dir = context.data_dir.join("blobs");
    for dir in fs::read_dir(&blob_dir).into_iter().flatten().flatten() {
        let name = dir.file_name().to_string_lossy().into_owned();
        if name == "tmp" || !dir.path().is_dir() {
            continue;
        }
        for file in fs::read_dir(dir.path()).into_iter().flatten().flatten() {
            let file_name = file.file_name().to_string_lossy().into_owned();
            let known = Hash::from_hex(&file_name).is_some_and(|h| referenced.contains(&h));
            if !known {
                notes.push(format!(
                    "unreferenced file {} (the next server start removes it)",
                    file.path().display()
                ));
            }
        }
    }
    Ok(CheckResult {
        name: "blobs",
        summary: format!(
            "{} referenced blobs, {bytes} bytes verified",
            referenced.len()
        ),
        problems,
        notes,
        details: vec![],
    })
}

/// The search index holds one document per task, once it has applied the whole change log.
/// An index that is missing, of another schema or behind is rebuilt or caught up at start:
/// noted, not a failure.
fn check_index(context: &CheckContext<'_>) -> anyhow::Result<CheckResult> {
    let tasks = context.store.task_count()?;
    let log_end = context.store.last_seq()?;
    let dir = crate::config::Config::new(context.data_dir).index_dir();
    let mut result = CheckResult {
        name: "index",
        summary: String::new(),
        problems: vec![],
        notes: vec![],
        details: vec![],
    };
    match crate::search::inspect(&dir) {
        Ok(None) => {
            result.summary = "no index".into();
            result
                .notes
                .push("the next server start (or `tasker reindex`) builds it".into());
        }
        Err(e) => {
            result.summary = "unreadable".into();
            result.problems.push(format!(
                "the search index cannot be read ({e}); the next server start rebuilds it, or \
                 run `tasker reindex`"
            ));
        }
        Ok(Some(info)) => {
            result.summary = format!(
                "{} documents for {tasks} tasks; applied {} of {log_end} changes",
                info.documents,
                info.seq.map_or("none".to_string(), |s| s.to_string())
            );
            if info.schema != Some(crate::search::SCHEMA_VERSION) {
                result.notes.push(
                    "the index is of another schema version: the next start rebuilds it".into(),
                );
            } else if info.seq.is_some_and(|s| s > log_end) {
                result.problems.push(
                    "the index has applied changes the database does not have (a restored \
                     database?); the next start rebuilds it, or run `tasker reindex`"
                        .into(),
                );
            } else if info.seq != Some(log_end) {
                result
                    .notes
                    .push("the index is behind the database: the next start catches up".into());
            } else if info.documents != tasks {
                result.problems.push(format!(
                    "the index holds {} documents but the database has {tasks} tasks; run \
                     `tasker reindex`",
                    info.documents
                ));
            }
        }
    }
    Ok(result)
}

/// Where the data directory's bytes go: per table of the database (entries, the bytes of keys
/// and values, redb's bookkeeping, the unused parts of pages, pages), the database file's
/// space no table uses (redb's free pages and its own tables), the search index and the blobs.
/// Informational: never a problem.
fn check_storage(context: &CheckContext<'_>) -> anyhow::Result<CheckResult> {
    let mut tables = context.snapshot.storage()?;
    let file = fs::metadata(context.data_dir.join(DB_FILE))
        .context("cannot read the database file's size")?
        .len();
    let index = dir_size(&crate::config::Config::new(context.data_dir).index_dir());
    let blobs = dir_size(&context.data_dir.join("blobs"));
    let total = dir_size(context.data_dir);
    let tasks = tables
        .iter()
        .find(|t| t.name == "tasks-1")
        .map_or(0, |t| t.entries);
    let in_tables: u64 = tables.iter().map(|t| t.total_bytes()).sum();
    let unused = file.saturating_sub(in_tables);
    let per_task = |bytes: u64| {
        if tasks == 0 {
            String::new()
        } else {
            format!(" ({:.2} KB/task)", bytes as f64 / tasks as f64 / 1000.0)
        }
    };
    tables.retain(|t| t.entries > 0);
    tables.sort_by_key(|t| std::cmp::Reverse(t.total_bytes()));
    let mut details = vec![format!(
        "{:<28} {:>10} {:>10} {:>10} {:>10} {:>9} {:>10} {:>6}",
        "table", "entries", "stored", "metadata", "fragmented", "pages", "total", "share"
    )];
    let share = |bytes: u64| {
        if file == 0 {
            0.0
        } else {
            bytes as f64 * 100.0 / file as f64
        }
    };
    for t in &tables {
        details.push(format!(
            "{:<28} {:>10} {:>10} {:>10} {:>10} {:>9} {:>10} {:>5.1}%",
            t.name,
            t.entries,
            human(t.stored_bytes),
            human(t.metadata_bytes),
            human(t.fragmented_bytes),
            t.pages,
            human(t.total_bytes()),
            share(t.total_bytes()),
        ));
    }
    let stored: u64 = tables.iter().map(|t| t.stored_bytes).sum();
    let metadata: u64 = tables.iter().map(|t| t.metadata_bytes).sum();
    let fragmented: u64 = tables.iter().map(|t| t.fragmented_bytes).sum();
    let pages: u64 = tables.iter().map(|t| t.pages).sum();
    details.push(format!(
        "{:<28} {:>10} {:>10} {:>10} {:>10} {:>9} {:>10} {:>5.1}%",
        "all tables",
        "",
        human(stored),
        human(metadata),
        human(fragmented),
        pages,
        human(in_tables),
        share(in_tables),
    ));
    details.push(format!(
        "{:<28} {:>65} {:>5.1}%",
        "free pages and redb's own",
        human(unused),
        share(unused),
    ));
    let mut notes = Vec::new();
    if file > 0 && unused > file / 4 {
        notes.push(format!(
            "{} of the database file is free space: `tasker compact` gives it back",
            human(unused)
        ));
    }
    Ok(CheckResult {
        name: "storage",
        summary: format!(
            "data directory {}{}: database {}{}, search index {}, blobs {}",
            human(total),
            per_task(total),
            human(file),
            per_task(file),
            human(index),
            human(blobs),
        ),
        problems: vec![],
        notes,
        details,
    })
}

/// The bytes of every file under `dir` (0 when it is missing), walked one directory at a time.
fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            match entry.metadata() {
                Ok(meta) if meta.is_dir() => pending.push(entry.path()),
                Ok(meta) => total += meta.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// `1234567` as `1.2 MB` (powers of 1000, like the per-task figures).
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
