//! The index on its own: what a search may return before the service re-checks it.

use super::*;
use crate::domain::ProjectId;
use crate::domain::task::TaskTitle;

struct Fixture {
    _dir: tempfile::TempDir,
    index: SearchIndex,
}

impl Fixture {
    fn new(tasks: &[Task]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let index = SearchIndex::create(&dir.path().join("index")).unwrap();
        for task in tasks {
            index.upsert(task, &[]).unwrap();
        }
        index.commit(1).unwrap();
        Fixture { _dir: dir, index }
    }

    fn search(
        &self,
        me: UserId,
        teams: &[TeamId],
        q: &str,
        offset: usize,
        limit: usize,
    ) -> Vec<TaskId> {
        let request = SearchRequest {
            query: self.index.parse(q).unwrap(),
            me,
            teams: teams.to_vec(),
            filter: TaskFilter::default(),
        };
        self.index
            .search(&request, offset, limit)
            .unwrap()
            .into_iter()
            .map(|h| h.task)
            .collect()
    }
}

fn titled(title: &str, description: &str, team: Option<TeamId>, creator: UserId) -> Task {
    Task {
        title: TaskTitle::parse(title).unwrap(),
        description: description.into(),
        team_id: team,
        project_id: team.map(|_| ProjectId::new()),
        ..Task::sample(creator)
    }
}

#[test]
fn expansions_never_reach_another_teams_words() {
    let (a, b) = (TeamId::new(), TeamId::new());
    let (me, other) = (UserId::new(), UserId::new());
    let mine = titled("Deploy the release", "", Some(a), other);
    let theirs = [
        titled("Deployment of candidates", "relaese notes", Some(b), other),
        titled(
            "Candidates for the deploy",
            "deploy release",
            Some(b),
            other,
        ),
        titled("Depoly release candidate", "", Some(b), other),
    ];
    let mut all = vec![mine.clone()];
    all.extend(theirs.iter().cloned());
    let f = Fixture::new(&all);
    for q in [
        "depl",
        "deploy",
        "deplyo ",
        "relaese ",
        "release",
        "rel",
        "deplo",
        "deploy rel",
        "\"deploy the release\"",
    ] {
        assert_eq!(f.search(me, &[a], q, 0, 10), [mine.id], "{q:?}");
    }
    for q in ["candid", "candidates", "candidatse ", "deployment", "notes"] {
        assert!(f.search(me, &[a], q, 0, 10).is_empty(), "{q:?}");
    }
    // The same words from team B's side find only B's tasks.
    let found = f.search(me, &[b], "deploy", 0, 10);
    assert_eq!(found.len(), 3);
    assert!(!found.contains(&mine.id));
    assert_eq!(f.search(me, &[a, b], "deploy", 0, 10).len(), 4);
}

#[test]
fn a_personal_task_is_found_only_by_its_audience() {
    let team = TeamId::new();
    let (creator, assignee, stranger) = (UserId::new(), UserId::new(), UserId::new());
    let diary = Task {
        assignee_ids: vec![assignee],
        ..titled("Secret diary", "kept under the bed", None, creator)
    };
    let roadmap = titled("Secret roadmap", "", Some(team), stranger);
    let f = Fixture::new(&[diary.clone(), roadmap.clone()]);
    for who in [creator, assignee] {
        for q in ["secret", "secr", "secert ", "\"secret diary\"", "bed"] {
            assert_eq!(f.search(who, &[], q, 0, 10), [diary.id], "{q:?}");
        }
    }
    for q in [
        "secret",
        "secr",
        "secert ",
        "diary",
        "diar",
        "\"secret diary\"",
        "bed",
    ] {
        let found = f.search(stranger, &[team], q, 0, 10);
        assert!(!found.contains(&diary.id), "{q:?}");
    }
    assert_eq!(f.search(creator, &[team], "secret", 0, 10).len(), 2);
}

#[test]
fn exact_matches_come_first_then_prefixes_and_typos_and_pages_do_not_overlap() {
    let team = TeamId::new();
    let me = UserId::new();
    let tasks = [
        titled("Depoly by hand", "", Some(team), me),
        titled("Deployment checklist", "", Some(team), me),
        titled("Write notes", "then deploy", Some(team), me),
        titled("Deploy the release", "", Some(team), me),
        titled("Unrelated", "", Some(team), me),
    ];
    let f = Fixture::new(&tasks);
    let expected = [tasks[3].id, tasks[2].id, tasks[1].id, tasks[0].id];
    assert_eq!(f.search(me, &[team], "deploy", 0, 10), expected);
    for limit in 1..=4 {
        assert_eq!(
            paged(&f, me, &[team], "deploy", limit),
            expected,
            "pages of {limit}"
        );
    }
    // Two words: both exact first.
    let found = f.search(me, &[team], "deploy release", 0, 10);
    assert_eq!(found, [tasks[3].id]);
}

/// Every page of `limit` from the start, concatenated.
fn paged(f: &Fixture, me: UserId, teams: &[TeamId], q: &str, limit: usize) -> Vec<TaskId> {
    let mut all = Vec::new();
    loop {
        let page = f.search(me, teams, q, all.len(), limit);
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

#[test]
fn a_word_being_typed_completes_in_titles_then_anywhere_then_with_a_typo() {
    let team = TeamId::new();
    let me = UserId::new();
    let tasks = [
        titled("Depla the servers", "", Some(team), me),
        titled("Write notes", "deployment soon", Some(team), me),
        titled("Deplo", "", Some(team), me),
        titled("Notes on depla", "", Some(team), me),
        titled("Notes", "deploying later", Some(team), me),
        titled("Notes about deplo", "", Some(team), me),
        titled("Deployment plan", "", Some(team), me),
        titled("Deployment notes", "", Some(team), me),
        // Found by the exact word in its description: not again for its title's completion.
        titled("Deployments", "deplo now", Some(team), me),
    ];
    let f = Fixture::new(&tasks);
    let ids = |picked: &[usize]| -> Vec<TaskId> {
        let mut ids: Vec<TaskId> = picked.iter().map(|&i| tasks[i].id).collect();
        ids.sort();
        ids
    };
    // Each tier's tasks, in the order of the tiers.
    let tiers = |found: &[TaskId], tiers: &[&[usize]]| {
        let mut at = 0;
        for tier in tiers {
            let mut got = found[at..at + tier.len()].to_vec();
            got.sort();
            assert_eq!(got, ids(tier), "tier {tier:?} of {found:?}");
            at += tier.len();
        }
        assert_eq!(at, found.len());
    };
    // Exact; then completions in a title; then in a description (a typo in a title would
    // outscore those); then typos.
    let found = f.search(me, &[team], "deplo", 0, 10);
    tiers(&found, &[&[2, 5, 8], &[6, 7], &[1, 4], &[0, 3]]);
    // With another word, the same tiers.
    let both = f.search(me, &[team], "notes deplo", 0, 10);
    tiers(&both, &[&[5], &[7], &[1, 4], &[3]]);
    // Every page agrees with the whole list.
    for limit in 1..=9 {
        assert_eq!(
            paged(&f, me, &[team], "deplo", limit),
            found,
            "pages of {limit}"
        );
        assert_eq!(
            paged(&f, me, &[team], "notes deplo", limit),
            both,
            "pages of {limit}"
        );
    }
}

#[test]
fn a_rebuild_is_merged_into_one_segment_that_finds_everything() {
    let team = TeamId::new();
    let me = UserId::new();
    let dir = tempfile::tempdir().unwrap();
    let index = SearchIndex::create(&dir.path().join("index")).unwrap();
    let tasks: Vec<Task> = (0..3)
        .map(|i| titled(&format!("Deploy batch {i}"), "", Some(team), me))
        .collect();
    index.begin_rebuild(tasks.len() as u64).unwrap();
    // A commit per task: three segments, which the rebuild's merge policy leaves alone.
    for (seq, task) in tasks.iter().enumerate() {
        index.upsert(task, &[]).unwrap();
        index.commit(seq as u64).unwrap();
    }
    let segments = || index.reader.searcher().segment_readers().len();
    assert_eq!(segments(), 3);
    index.finish_rebuild(3).unwrap();
    let started = std::time::Instant::now();
    while segments() > 1 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "the merge never came in"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let request = SearchRequest {
        query: index.parse("depl").unwrap(),
        me,
        teams: vec![team],
        filter: TaskFilter::default(),
    };
    assert_eq!(index.search(&request, 0, 10).unwrap().len(), 3);
    assert_eq!(index.applied(), 3);
    index.close().unwrap();
}

#[test]
fn a_member_of_many_teams_gets_one_ranked_list_that_pages_without_gaps() {
    let teams: Vec<TeamId> = (0..5).map(|_| TeamId::new()).collect();
    let (me, other) = (UserId::new(), UserId::new());
    let mut tasks = Vec::new();
    for &team in &teams {
        tasks.push(titled("Deploy alpha", "", Some(team), other));
        tasks.push(titled("Deployment beta", "", Some(team), other));
        tasks.push(titled("Notes", "deploy later", Some(team), other));
        tasks.push(titled("Ops review", "", Some(team), other));
        tasks.push(titled("Opsgenie setup", "", Some(team), other));
    }
    tasks.push(titled("Deploy my diary", "", None, me));
    // Another team's, and enough others that some expansions are few for the segment.
    tasks.push(titled("Deploy theirs", "", Some(TeamId::new()), other));
    for i in 0..300 {
        tasks.push(titled(&format!("Filler {i}"), "", Some(teams[0]), other));
    }
    tasks.push(titled("Rareword here", "", Some(teams[3]), other));
    let f = Fixture::new(&tasks);
    let deploy_titles: Vec<TaskId> = tasks
        .iter()
        .filter(|t| t.title.as_str().starts_with("Deploy "))
        .filter(|t| t.title.as_str() != "Deploy theirs")
        .map(|t| t.id)
        .collect();
    for q in [
        "deploy",
        "deploy ",
        "depl",
        "deplyo ",
        "rarewo",
        "rarewrod ",
        "ops",
        "op",
    ] {
        let all = f.search(me, &teams, q, 0, 100);
        let mut unique = all.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), all.len(), "{q:?}: no task twice");
        assert!(
            !all.iter().any(|id| tasks
                .iter()
                .any(|t| t.id == *id && t.title.as_str() == "Deploy theirs")),
            "{q:?}: nothing of a team the caller is not in"
        );
        for limit in 1..=4 {
            assert_eq!(
                paged(&f, me, &teams, q, limit),
                all,
                "{q:?}: pages of {limit}"
            );
        }
    }
    // Titles with the word first (every team's and the personal one), then the description.
    let found = f.search(me, &teams, "deploy ", 0, 100);
    assert_eq!(found.len(), 11);
    let mut first: Vec<TaskId> = found[..6].to_vec();
    first.sort();
    let mut expected = deploy_titles.clone();
    expected.sort();
    assert_eq!(first, expected);
    // Typing: the exact ones, then the prefix's.
    let typing = f.search(me, &teams, "deploy", 0, 100);
    assert_eq!(typing.len(), 16);
    assert_eq!(typing[..11], found[..]);
    // A prefix that is a word itself: the word's own matches once, first.
    let ops = f.search(me, &teams, "ops", 0, 100);
    assert_eq!(ops.len(), 10);
    let review = |id: &TaskId| {
        tasks
            .iter()
            .any(|t| t.id == *id && t.title.as_str() == "Ops review")
    };
    assert!(ops[..5].iter().all(review), "{ops:?}");
    assert!(!ops[5..].iter().any(review), "{ops:?}");
    assert_eq!(f.search(me, &teams, "rarewo", 0, 10).len(), 1);
    assert_eq!(f.search(me, &teams, "rarewrod ", 0, 10).len(), 1);
}
