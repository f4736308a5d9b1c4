//! Synthetic export files: a realistic shape at any size, for benchmarks and load tests
//! (`import_file` then seeds a data directory far faster than the API could).

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use chrono::{Duration, Utc};

use super::format::{
    CommentRecord, MemberRecord, ProjectRecord, TaskRecord, TeamRecord, UserRecord,
};
use super::{ExportWriter, PortableError, Section};
use crate::domain::{CommentId, ProjectId, TaskId, TeamId, UserId};

/// The size of a synthetic data set.
#[derive(Debug, Clone, Copy)]
pub struct Synthetic {
    /// Accounts (`user0@example.com`, ...), all members of one team; the first is its owner.
    pub users: usize,
    /// Projects of that team; tasks are spread over them.
    pub projects: usize,
    pub tasks: u64,
    /// One comment on every n-th task (0: none).
    pub comment_every: u64,
}

impl Default for Synthetic {
    fn default() -> Self {
        Self {
            users: 100,
            projects: 10,
            tasks: 1_000_000,
            comment_every: 10,
        }
    }
}

const STATUSES: [&str; 4] = ["todo", "in_progress", "blocked", "done"];
const PRIORITIES: [&str; 4] = ["low", "medium", "high", "urgent"];
const WORDS: [&str; 12] = [
    "login",
    "billing",
    "search",
    "upload",
    "report",
    "cache",
    "invoice",
    "dashboard",
    "export",
    "mobile",
    "email",
    "settings",
];

/// Writes a valid export file of `spec`'s size to `path` (streamed: any size fits in memory).
pub fn write_synthetic(path: &Path, spec: Synthetic) -> Result<(), PortableError> {
    let file = File::create(path).map_err(PortableError::io(format!(
        "cannot create {}",
        path.display()
    )))?;
    let now = Utc::now();
    let users: Vec<UserId> = (0..spec.users.max(1)).map(|_| UserId::new()).collect();
    let team = TeamId::new();
    let projects: Vec<ProjectId> = (0..spec.projects.max(1))
        .map(|_| ProjectId::new())
        .collect();
    let mut out = ExportWriter::start(BufWriter::with_capacity(1 << 20, file), now)?;
    out.section(Section::Users)?;
    for (i, id) in users.iter().enumerate() {
        out.record(&UserRecord {
            id: *id,
            email: format!("user{i}@example.com"),
            name: format!("User {i}"),
            role: if i == 0 { "admin" } else { "user" }.into(),
            disabled: false,
            created_at: now,
            updated_at: now,
            version: 1,
        })?;
    }
    out.section(Section::Teams)?;
    out.record(&TeamRecord {
        id: team,
        name: "Synthetic".into(),
        description: String::new(),
        created_by: users[0],
        created_at: now,
        updated_at: now,
        version: 1,
        members: users
            .iter()
            .enumerate()
            .map(|(i, user)| MemberRecord {
                user_id: *user,
                role: if i == 0 { "owner" } else { "member" }.into(),
                joined_at: now,
            })
            .collect(),
    })?;
    out.section(Section::Projects)?;
    for (i, id) in projects.iter().enumerate() {
        out.record(&ProjectRecord {
            id: *id,
            team_id: team,
            name: format!("Project {i}"),
            description: String::new(),
            status: "active".into(),
            created_by: users[0],
            created_at: now,
            updated_at: now,
            version: 1,
        })?;
    }
    out.section(Section::Tasks)?;
    // The comments section comes after all tasks: remember which tasks get one (a tenth of
    // the task ids at most, 16 bytes each).
    let mut commented = Vec::new();
    let n = |i: u64, len: usize| (i % len as u64) as usize;
    for i in 0..spec.tasks {
        let id = TaskId::new();
        if spec.comment_every > 0 && i % spec.comment_every == 0 {
            commented.push(id);
        }
        out.record(&TaskRecord {
            id,
            title: format!("Fix {} {} #{i}", WORDS[n(i, 12)], WORDS[n(i / 12, 12)]),
            description: format!(
                "The {} page breaks when the {} is empty.",
                WORDS[n(i / 7, 12)],
                WORDS[n(i / 3, 12)]
            ),
            status: STATUSES[n(i, 4)].into(),
            priority: PRIORITIES[n(i / 4, 4)].into(),
            due_date: (i % 3 == 0).then(|| now + Duration::days((i % 60) as i64)),
            labels: vec![WORDS[n(i / 5, 12)].to_string()],
            project_id: Some(projects[n(i, projects.len())]),
            assignee_ids: vec![users[n(i, users.len())]],
            created_by: users[n(i / 2, users.len())],
            created_at: now,
            updated_at: now,
            version: 1,
        })?;
    }
    out.section(Section::Comments)?;
    for (i, task) in commented.into_iter().enumerate() {
        out.record(&CommentRecord {
            id: CommentId::new(),
            task_id: task,
            author_id: users[n(i as u64, users.len())],
            body: "Looked into it; see the logs.".into(),
            created_at: now,
            updated_at: now,
            edited_at: None,
            version: 1,
        })?;
    }
    out.section(Section::Attachments)?;
    out.finish()?
        .into_inner()
        .map_err(|e| PortableError::Stream(e.into_error()))?;
    Ok(())
}
