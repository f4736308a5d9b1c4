//! Full-text search over tasks with tantivy: the schema, the one writer, queries and
//! highlights. The only module that touches tantivy.
//!
//! The index is derived data. redb is the truth; the index lives in `DATA_DIR/index` and may
//! be deleted at any time. Each commit carries `{"schema": N, "seq": S}`: the schema version
//! and the last change-log entry applied. An index that is missing, unreadable, of another
//! schema version, or ahead of the database is rebuilt from redb.
//!
//! A task is one document: its id (never tokenized: what upserts delete by), title,
//! description, comments and labels as text, and for filtering its status, project,
//! assignees, exact labels, and who may see it: its team, or for a personal task its creator
//! and assignees.

mod highlight;
pub mod query;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tantivy::collector::TopDocs;
use tantivy::query::{
    BooleanQuery, BoostQuery, ConstScoreQuery, FuzzyTermQuery, Occur, PhraseQuery, Query,
    TermQuery, TermSetQuery,
};
use tantivy::schema::{
    Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use crate::domain::access::{TaskAudience, task_audience};
use crate::domain::task::{Task, TaskFilter, TaskStatus};
use crate::domain::{TaskId, TeamId, UserId};
pub use highlight::SNIPPET_CHARS;
pub use query::ParsedQuery;

/// Bumped whenever the schema or the analysis changes: an index of another version is
/// rebuilt at start.
pub const SCHEMA_VERSION: u32 = 1;
/// The name the analyzer is registered under.
const ANALYZER: &str = "tasker";
/// Memory the writer may buffer before it writes a segment.
const WRITER_MEMORY: usize = 64 << 20;
/// At most this much comment text is indexed per task.
pub const MAX_COMMENT_TEXT: usize = 256 << 10;

/// How much each text field counts towards a score.
const TITLE_BOOST: f32 = 4.0;
const LABELS_BOOST: f32 = 2.0;
const DESCRIPTION_BOOST: f32 = 1.0;
const COMMENTS_BOOST: f32 = 0.7;
/// A prefix or typo match counts this much of an exact one.
const PREFIX_FACTOR: f32 = 0.6;
const FUZZY_FACTOR: f32 = 0.4;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("search index directory: {0}")]
    Io(#[from] std::io::Error),
}

/// The analyzer for every text field and for query words: letters and digits, lower-cased,
/// accents folded, tokens over 40 bytes dropped.
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

#[derive(Clone, Copy)]
struct Fields {
    id: Field,
    title: Field,
    description: Field,
    comments: Field,
    labels: Field,
    label: Field,
    status: Field,
    project: Field,
    assignee: Field,
    team: Field,
    audience: Field,
}

impl Fields {
    fn schema() -> (Schema, Fields) {
        let mut builder = Schema::builder();
        let text = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(ANALYZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        let fields = Fields {
            id: builder.add_text_field("id", STRING | STORED),
            title: builder.add_text_field("title", text.clone()),
            description: builder.add_text_field("description", text.clone()),
            comments: builder.add_text_field("comments", text.clone()),
            labels: builder.add_text_field("labels", text),
            label: builder.add_text_field("label", STRING),
            status: builder.add_text_field("status", STRING),
            project: builder.add_text_field("project", STRING),
            assignee: builder.add_text_field("assignee", STRING),
            team: builder.add_text_field("team", STRING),
            audience: builder.add_text_field("audience", STRING),
        };
        (builder.build(), fields)
    }

    fn text_fields(&self) -> [(Field, f32); 4] {
        [
            (self.title, TITLE_BOOST),
            (self.labels, LABELS_BOOST),
            (self.description, DESCRIPTION_BOOST),
            (self.comments, COMMENTS_BOOST),
        ]
    }
}

/// What each commit records.
#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    schema: u32,
    seq: u64,
}

fn key(id: u128) -> String {
    format!("{id:032x}")
}

fn status_key(status: TaskStatus) -> &'static str {
    match status {
        TaskStatus::Todo => "todo",
        TaskStatus::InProgress => "in_progress",
        TaskStatus::Blocked => "blocked",
        TaskStatus::Done => "done",
    }
}

/// A search as the index runs it: the parsed text, who asks, and the filters.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub query: ParsedQuery,
    pub me: UserId,
    /// The caller's teams: their tasks are the team tasks the caller may see.
    pub teams: Vec<TeamId>,
    pub filter: TaskFilter,
}

/// One hit: the task and its score.
#[derive(Debug, Clone, Copy)]
pub struct Hit {
    pub task: TaskId,
    pub score: f32,
}

/// What an index on disk holds, read without changing it (`tasker check`).
#[derive(Debug, Clone, Copy)]
pub struct IndexInfo {
    pub documents: u64,
    /// The schema version and applied `seq` of its last commit, if it has one.
    pub schema: Option<u32>,
    pub seq: Option<u64>,
}

/// The payload of the index's last commit, if it has one this build can read.
fn last_payload(index: &Index) -> Result<Option<Payload>, SearchError> {
    Ok(index
        .load_metas()?
        .payload
        .and_then(|p| serde_json::from_str::<Payload>(&p).ok()))
}

/// Reads what the index in `dir` holds without opening a writer or changing anything;
/// `None` when there is no index.
pub fn inspect(dir: &Path) -> Result<Option<IndexInfo>, SearchError> {
    if !dir.join("meta.json").exists() {
        return Ok(None);
    }
    let index = Index::open_in_dir(dir)?;
    let payload = last_payload(&index)?;
    let reader: IndexReader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()?;
    Ok(Some(IndexInfo {
        documents: reader.searcher().num_docs(),
        schema: payload.as_ref().map(|p| p.schema),
        seq: payload.map(|p| p.seq),
    }))
}

/// The task index: one writer (the indexer's), any number of concurrent searches.
pub struct SearchIndex {
    dir: PathBuf,
    reader: IndexReader,
    writer: Mutex<IndexWriter<TantivyDocument>>,
    fields: Fields,
    /// The last change-log entry the committed index reflects.
    applied: AtomicU64,
    /// Whether searches may run: false from an open that needs a rebuild until it is done.
    ready: AtomicBool,
    /// Set from [`SearchIndex::begin_rebuild`] until the next commit: the writer holds no
    /// document, so an upsert adds without deleting first. (Each delete is queued until the
    /// commit: a million of them held the rebuild's memory.)
    emptied: AtomicBool,
    /// Progress of a running rebuild: tasks done, of how many.
    rebuilt: AtomicU64,
    rebuild_total: AtomicU64,
}

impl SearchIndex {
    /// Opens the index in `dir`, or creates an empty one that must be rebuilt (see
    /// [`SearchIndex::needs_rebuild`]) when it is missing, unreadable, of another schema
    /// version, or has applied entries past `log_end` (the database is older than the index:
    /// a restored backup).
    pub fn open(dir: &Path, log_end: u64) -> Result<Self, SearchError> {
        match Self::open_existing(dir) {
            Ok(Some((index, payload))) if payload.seq <= log_end => {
                let opened = Self::with_index(dir, index)?;
                opened.applied.store(payload.seq, Ordering::SeqCst);
                opened.ready.store(true, Ordering::SeqCst);
                Ok(opened)
            }
            Ok(found) => {
                if let Some((_, payload)) = found {
                    tracing::warn!(
                        index_seq = payload.seq,
                        log_end,
                        "the search index is ahead of the database; rebuilding it"
                    );
                }
                Self::create(dir)
            }
            Err(e) => {
                tracing::warn!(error = %e, "the search index cannot be used; rebuilding it");
                Self::create(dir)
            }
        }
    }

    /// Creates a new, empty index in `dir`, replacing whatever was there. It needs a rebuild.
    pub fn create(dir: &Path) -> Result<Self, SearchError> {
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        std::fs::create_dir_all(dir)?;
        let (schema, _) = Fields::schema();
        let index = Index::create_in_dir(dir, schema)?;
        Self::with_index(dir, index)
    }

    /// The index in `dir` and its last payload, if it is one of this schema version.
    fn open_existing(dir: &Path) -> Result<Option<(Index, Payload)>, SearchError> {
        if !dir.join("meta.json").exists() {
            return Ok(None);
        }
        let index = Index::open_in_dir(dir)?;
        let payload = last_payload(&index)?;
        let (schema, _) = Fields::schema();
        Ok(payload
            .filter(|p| p.schema == SCHEMA_VERSION && index.schema() == schema)
            .map(|p| (index, p)))
    }

    fn with_index(dir: &Path, index: Index) -> Result<Self, SearchError> {
        index.tokenizers().register(ANALYZER, analyzer());
        let (_, fields) = Fields::schema();
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        // One indexing thread: the machines this runs on have few cores, and requests come
        // first.
        let writer = index.writer_with_num_threads(1, WRITER_MEMORY)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            reader,
            writer: Mutex::new(writer),
            fields,
            applied: AtomicU64::new(0),
            ready: AtomicBool::new(false),
            emptied: AtomicBool::new(false),
            rebuilt: AtomicU64::new(0),
            rebuild_total: AtomicU64::new(0),
        })
    }

    /// The directory the index lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the index must be rebuilt from the database before searches can run.
    pub fn needs_rebuild(&self) -> bool {
        !self.ready.load(Ordering::SeqCst)
    }

    /// Whether searches may run.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// The last change-log entry the searchable index reflects.
    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::SeqCst)
    }

    /// Tasks indexed so far by a running rebuild, and how many there are.
    pub fn rebuild_progress(&self) -> (u64, u64) {
        (
            self.rebuilt.load(Ordering::SeqCst),
            self.rebuild_total.load(Ordering::SeqCst),
        )
    }

    /// How many tasks the searchable index holds.
    pub fn documents(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, IndexWriter<TantivyDocument>> {
        // A panic while holding the writer leaves nothing half-done that a later batch could
        // trip over: uncommitted work is discarded on the next rollback or replaced by upserts.
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a rebuild: empties the index (uncommitted until [`SearchIndex::commit`]) and
    /// notes how many tasks are to come. Until the commit, each task must be upserted once.
    pub fn begin_rebuild(&self, total: u64) -> Result<(), SearchError> {
        self.rebuilt.store(0, Ordering::SeqCst);
        self.rebuild_total.store(total, Ordering::SeqCst);
        self.writer().delete_all_documents()?;
        self.emptied.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Counts tasks a rebuild has added.
    pub fn rebuilt(&self, tasks: u64) {
        self.rebuilt.fetch_add(tasks, Ordering::SeqCst);
    }

    /// Replaces a task's document (uncommitted). `comments` are its comment bodies.
    pub fn upsert(&self, task: &Task, comments: &[String]) -> Result<(), SearchError> {
        let f = self.fields;
        let id = key(task.id.as_u128());
        let mut doc = TantivyDocument::default();
        doc.add_text(f.id, &id);
        doc.add_text(f.title, task.title.as_str());
        doc.add_text(f.description, &task.description);
        let mut budget = MAX_COMMENT_TEXT;
        for body in comments {
            if body.len() > budget {
                break;
            }
            budget -= body.len();
            doc.add_text(f.comments, body);
        }
        for label in &task.labels {
            doc.add_text(f.labels, label);
            doc.add_text(f.label, label);
        }
        doc.add_text(f.status, status_key(task.status));
        if let Some(project) = task.project_id {
            doc.add_text(f.project, key(project.as_u128()));
        }
        for user in &task.assignee_ids {
            doc.add_text(f.assignee, key(user.as_u128()));
        }
        // Who may see it (`domain::access`): a query matches its team or its people.
        match task_audience(task) {
            TaskAudience::Team(team) => doc.add_text(f.team, key(team.as_u128())),
            TaskAudience::People(people) => {
                for user in people {
                    doc.add_text(f.audience, key(user.as_u128()));
                }
            }
        }
        let writer = self.writer();
        if !self.emptied.load(Ordering::SeqCst) {
            writer.delete_term(Term::from_field_text(f.id, &id));
        }
        writer.add_document(doc)?;
        Ok(())
    }

    /// Removes a task's document (uncommitted).
    pub fn remove(&self, task: TaskId) {
        let term = Term::from_field_text(self.fields.id, &key(task.as_u128()));
        self.writer().delete_term(term);
    }

    /// Commits what was written as reflecting the change log up to `seq`, and makes it
    /// searchable. Marks the index ready.
    pub fn commit(&self, seq: u64) -> Result<(), SearchError> {
        let payload = serde_json::to_string(&Payload {
            schema: SCHEMA_VERSION,
            seq,
        })
        .unwrap_or_default();
        {
            let mut writer = self.writer();
            let mut prepared = writer.prepare_commit()?;
            prepared.set_payload(&payload);
            prepared.commit()?;
            self.emptied.store(false, Ordering::SeqCst);
        }
        self.reader.reload()?;
        self.applied.store(seq, Ordering::SeqCst);
        self.ready.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Waits for background merges to finish (a clean stop).
    pub fn close(self) -> Result<(), SearchError> {
        let writer = self.writer.into_inner().unwrap_or_else(|p| p.into_inner());
        writer.wait_merging_threads()?;
        Ok(())
    }

    /// Parses what a user typed, with the index's analyzer.
    pub fn parse(&self, raw: &str) -> Result<ParsedQuery, String> {
        ParsedQuery::parse(raw, &mut analyzer())
    }

    /// `limit` hits from `offset` on, best first. Only tasks `request.me` may see by the
    /// index's account; callers re-check each against the database.
    pub fn search(
        &self,
        request: &SearchRequest,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<Hit>, SearchError> {
        let query = self.build(request);
        let searcher = self.reader.searcher();
        let top = TopDocs::with_limit(limit.max(1))
            .and_offset(offset)
            .order_by_score();
        let found = searcher.search(&query, &top)?;
        let mut hits = Vec::with_capacity(found.len());
        for (score, address) in found {
            let doc: TantivyDocument = searcher.doc(address)?;
            let id = doc
                .get_first(self.fields.id)
                .and_then(|v| v.as_str())
                .and_then(|s| u128::from_str_radix(s, 16).ok());
            if let Some(id) = id {
                hits.push(Hit {
                    task: TaskId::from_u128(id),
                    score,
                });
            }
        }
        Ok(hits)
    }

    fn build(&self, request: &SearchRequest) -> BooleanQuery {
        let f = self.fields;
        let mut must: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for word in &request.query.words {
            let mut any: Vec<(Occur, Box<dyn Query>)> = Vec::new();
            for (field, boost) in f.text_fields() {
                let term = Term::from_field_text(field, &word.text);
                let exact = TermQuery::new(term.clone(), IndexRecordOption::WithFreqs);
                any.push((
                    Occur::Should,
                    Box::new(BoostQuery::new(Box::new(exact), boost)),
                ));
                if word.prefix {
                    let prefix = FuzzyTermQuery::new_prefix(term.clone(), 0, true);
                    let boost = boost * PREFIX_FACTOR;
                    any.push((
                        Occur::Should,
                        Box::new(BoostQuery::new(Box::new(prefix), boost)),
                    ));
                }
                if word.fuzzy {
                    let fuzzy = FuzzyTermQuery::new(term, 1, true);
                    let boost = boost * FUZZY_FACTOR;
                    any.push((
                        Occur::Should,
                        Box::new(BoostQuery::new(Box::new(fuzzy), boost)),
                    ));
                }
            }
            must.push((Occur::Must, Box::new(BooleanQuery::new(any))));
        }
        for phrase in &request.query.phrases {
            let any = f
                .text_fields()
                .into_iter()
                .map(|(field, boost)| {
                    let terms = phrase
                        .iter()
                        .map(|t| Term::from_field_text(field, t))
                        .collect();
                    let phrase: Box<dyn Query> =
                        Box::new(BoostQuery::new(Box::new(PhraseQuery::new(terms)), boost));
                    (Occur::Should, phrase)
                })
                .collect();
            must.push((Occur::Must, Box::new(BooleanQuery::new(any))));
        }
        // Who may see: the task's audience (`domain::access::task_audience`, as indexed) is one
        // of the caller's teams, or people among whom is the caller.
        let visible: Vec<(Occur, Box<dyn Query>)> = vec![
            (
                Occur::Should,
                Box::new(TermSetQuery::new(
                    request
                        .teams
                        .iter()
                        .map(|t| Term::from_field_text(f.team, &key(t.as_u128()))),
                )),
            ),
            (Occur::Should, exact(f.audience, &key(request.me.as_u128()))),
        ];
        must.push((Occur::Must, filter(BooleanQuery::new(visible))));
        let narrow = &request.filter;
        if !narrow.statuses.is_empty() {
            let statuses = narrow
                .statuses
                .iter()
                .map(|s| Term::from_field_text(f.status, status_key(*s)));
            must.push((Occur::Must, filter(TermSetQuery::new(statuses))));
        }
        if let Some(project) = narrow.project {
            must.push((
                Occur::Must,
                filter(exact(f.project, &key(project.as_u128()))),
            ));
        }
        if let Some(user) = narrow.assignee {
            must.push((Occur::Must, filter(exact(f.assignee, &key(user.as_u128())))));
        }
        if let Some(label) = &narrow.label {
            must.push((Occur::Must, filter(exact(f.label, label))));
        }
        BooleanQuery::new(must)
    }

    /// The title with what the query matched marked (see the `highlight` module), if any.
    pub fn highlight_title(&self, query: &ParsedQuery, title: &str) -> Option<String> {
        highlight::highlight(&mut analyzer(), query, title, None)
    }

    /// A snippet of the description around the first match, marked, if any.
    pub fn highlight_description(&self, query: &ParsedQuery, text: &str) -> Option<String> {
        highlight::highlight(&mut analyzer(), query, text, Some(SNIPPET_CHARS))
    }
}

fn exact(field: Field, text: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, text),
        IndexRecordOption::Basic,
    ))
}

/// A clause that only narrows: it adds nothing to the score.
fn filter(query: impl Query) -> Box<dyn Query> {
    Box::new(ConstScoreQuery::new(Box::new(query), 0.0))
}
