//! The synthetic export of issue 18 (see `benches/synthetic.rs`), shared by `synthetic` (the
//! file on its own) and `scale` (the file, then tasker run on it). Needs the `zipf` module at
//! the crate root.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tasker::domain::{CommentId, ProjectId, TaskId, TeamId, UserId};
use tasker::portable::format::{
    CommentRecord, MemberRecord, ProjectRecord, TaskRecord, TeamRecord, UserRecord,
};
use tasker::portable::{ExportWriter, Section};

use crate::zipf::{word, zipf};

/// Accounts `user{i}@example.com`, `i` from 0 (the only site admin); team `t` is accounts
/// `10t` (its owner) to `10t + 9`, and [`EVERY_TEAM`].
pub const USERS: usize = 200;
/// The account that is also a member of every other team (someone who works across all of
/// them): it sees every task.
pub const EVERY_TEAM: usize = 1;
pub const TEAMS: usize = 20;
pub const PROJECTS_PER_TEAM: usize = 5;
const COMMENT_EVERY: u64 = 10;
const STATUSES: [(&str, u32); 4] = [
    ("todo", 40),
    ("in_progress", 15),
    ("blocked", 5),
    ("done", 40),
];
const PRIORITIES: [(&str, u32); 4] = [("low", 25), ("medium", 50), ("high", 20), ("urgent", 5)];
const LABELS: [&str; 12] = [
    "bug", "feature", "backend", "frontend", "docs", "ops", "security", "ux", "mobile", "api",
    "billing", "search",
];

fn pick<'a>(rng: &mut StdRng, weighted: &[(&'a str, u32)]) -> &'a str {
    let total: u32 = weighted.iter().map(|(_, w)| w).sum();
    let mut at = rng.random_range(0..total);
    for (value, weight) in weighted {
        if at < *weight {
            return value;
        }
        at -= weight;
    }
    weighted[0].0
}

/// A UUIDv7 for `at`, its random bits from `rng`.
fn id_at(rng: &mut StdRng, at: DateTime<Utc>) -> uuid::Uuid {
    let random: [u8; 10] = rng.random();
    uuid::Builder::from_unix_timestamp_millis(at.timestamp_millis() as u64, &random).into_uuid()
}

/// Writes the export of `count` tasks generated from `seed` to `out`, as a stream.
pub fn write(out: &Path, count: u64, seed: u64) -> Result<(), tasker::portable::PortableError> {
    let mut rng = StdRng::seed_from_u64(seed);
    let zipf = zipf();
    // Everything happens in the year before `end`; tasks are spread evenly over it.
    let start = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    let setup = |i: usize| start + Duration::minutes(i as i64);
    let task_start = start + Duration::days(1);
    let step_ms = (365 * 86_400_000 / count.max(1)).max(1) as i64;

    let users: Vec<UserId> = (0..USERS)
        .map(|i| UserId::from_uuid(id_at(&mut rng, setup(i))))
        .collect();
    let teams: Vec<TeamId> = (0..TEAMS)
        .map(|i| TeamId::from_uuid(id_at(&mut rng, setup(USERS + i))))
        .collect();
    let projects: Vec<ProjectId> = (0..TEAMS * PROJECTS_PER_TEAM)
        .map(|i| ProjectId::from_uuid(id_at(&mut rng, setup(USERS + TEAMS + i))))
        .collect();
    let per_team = USERS / TEAMS;
    let member = |team: usize, k: usize| users[team * per_team + k % per_team];

    let file = File::create(out)?;
    let mut out = ExportWriter::start(BufWriter::with_capacity(1 << 20, file), Utc::now())?;
    out.section(Section::Users)?;
    for (i, id) in users.iter().enumerate() {
        out.record(&UserRecord {
            id: *id,
            email: format!("user{i}@example.com"),
            name: format!("{} {}", capitalised(&word(i)), capitalised(&word(400 + i))),
            role: if i == 0 { "admin" } else { "user" }.into(),
            disabled: false,
            created_at: setup(i),
            updated_at: setup(i),
            version: 1,
        })?;
    }
    out.section(Section::Teams)?;
    for (t, id) in teams.iter().enumerate() {
        let at = setup(USERS + t);
        out.record(&TeamRecord {
            id: *id,
            name: format!("Team {}", capitalised(&word(t))),
            description: zipf.text(&mut rng, 12, true),
            created_by: member(t, 0),
            created_at: at,
            updated_at: at,
            version: 1,
            members: (0..per_team)
                .map(|k| MemberRecord {
                    user_id: member(t, k),
                    role: if k == 0 { "owner" } else { "member" }.into(),
                    joined_at: at,
                })
                .chain((t != EVERY_TEAM / per_team).then(|| MemberRecord {
                    user_id: users[EVERY_TEAM],
                    role: "member".into(),
                    joined_at: at,
                }))
                .collect(),
        })?;
    }
    out.section(Section::Projects)?;
    for (p, id) in projects.iter().enumerate() {
        let at = setup(USERS + TEAMS + p);
        let team = p / PROJECTS_PER_TEAM;
        out.record(&ProjectRecord {
            id: *id,
            team_id: teams[team],
            name: capitalised(&zipf.text(&mut rng, 2, false)),
            description: zipf.text(&mut rng, 20, true),
            status: "active".into(),
            created_by: member(team, 0),
            created_at: at,
            updated_at: at,
            version: 1,
        })?;
    }
    out.section(Section::Tasks)?;
    // The comments section comes after every task: the commented tasks (a tenth, 24 bytes
    // each) are remembered with their team.
    let mut commented = Vec::new();
    let mut tasks = StdRng::seed_from_u64(rng.random());
    for i in 0..count {
        let at = task_start + Duration::milliseconds(i as i64 * step_ms);
        let id = TaskId::from_uuid(id_at(&mut tasks, at));
        let p = tasks.random_range(0..projects.len());
        let team = p / PROJECTS_PER_TEAM;
        let title_words = tasks.random_range(3..=8);
        let description_words = tasks.random_range(10..=80);
        let status = pick(&mut tasks, &STATUSES);
        let assignees = match tasks.random_range(0..10) {
            0..=1 => 0,
            2..=8 => 1,
            _ => 2,
        };
        let first = tasks.random_range(0..per_team);
        if i % COMMENT_EVERY == 0 {
            commented.push((id, team as u8, at));
        }
        let labels = (0..tasks.random_range(0..=2))
            .map(|_| LABELS[tasks.random_range(0..LABELS.len())].to_string())
            .collect::<std::collections::BTreeSet<_>>();
        out.record(&TaskRecord {
            id,
            title: capitalised(&zipf.text(&mut tasks, title_words, false)),
            description: zipf.text(&mut tasks, description_words, true),
            status: status.into(),
            priority: pick(&mut tasks, &PRIORITIES).into(),
            due_date: tasks
                .random_bool(0.3)
                .then(|| at + Duration::days(tasks.random_range(1..60))),
            labels: labels.into_iter().collect(),
            project_id: Some(projects[p]),
            assignee_ids: (0..assignees).map(|k| member(team, first + k)).collect(),
            created_by: member(team, tasks.random_range(0..per_team)),
            created_at: at,
            updated_at: at,
            version: 1,
        })?;
    }
    out.section(Section::Comments)?;
    for (task, team, at) in commented {
        let at = at + Duration::hours(1);
        let words = rng.random_range(5..=40);
        out.record(&CommentRecord {
            id: CommentId::from_uuid(id_at(&mut rng, at)),
            task_id: task,
            author_id: member(team as usize, rng.random_range(0..per_team)),
            body: zipf.text(&mut rng, words, true),
            created_at: at,
            updated_at: at,
            edited_at: None,
            version: 1,
        })?;
    }
    out.section(Section::Attachments)?;
    out.finish()?;
    Ok(())
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}
