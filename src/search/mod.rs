//! Full-text search over tasks with tantivy: the schema, the one writer, queries and
//! highlights. The only module that touches tantivy.
//!
//! The index is derived data. redb is the truth; the index lives in `DATA_DIR/index` and may
//! be deleted at any time. Each commit carries `{"schema": N, "seq": S}`: the schema version
//! and the last change-log entry applied. An index that is missing, unreadable, of another
//! schema version, or ahead of the database is rebuilt from redb.
//!
//! A task is one document: its id (never tokenized: what upserts delete by, and as two fast
//! fields what a hit reads), title, description, comments and labels as text, and for
//! filtering its status, project, assignees and exact labels.
//!
//! Who may see a task is in its text terms: every word is indexed as `<namespace><word>`,
//! where the namespace is the task's team, or for a personal task one copy per person of its
//! audience (creator and assignees). A query looks a word up in the caller's namespaces only
//! (their teams and their own person), so a posting list holds one team's tasks (or one
//! person's), a match is by construction a task the caller may see, and a prefix or typo
//! expansion never walks another team's words.
//!
//! A task is in one of the caller's namespaces only, so exact words are looked up one
//! namespace at a time, each pass into one top list (see [`best`]).
//!
//! A rebuild ends merged into one segment ([`SearchIndex::finish_rebuild`]).

mod any_of;
mod expand;
mod highlight;
mod one_word;
pub mod query;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tantivy::columnar::Column;
use tantivy::index::SegmentId;
use tantivy::indexer::{LogMergePolicy, NoMergePolicy};
use tantivy::query::{
    BooleanQuery, BoostQuery, ConstScoreQuery, EnableScoring, Occur, PhraseQuery, Query, TermQuery,
};
use tantivy::schema::{
    FAST, Field, IndexRecordOption, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer, Token,
    TokenStream, Tokenizer,
};
use tantivy::{
    DocAddress, Index, IndexReader, IndexWriter, ReloadPolicy, Score, Searcher, TantivyDocument,
    Term,
};

use crate::domain::access::{TaskAudience, task_audience};
use crate::domain::task::{Task, TaskFilter, TaskStatus};
use crate::domain::{TaskId, TeamId, UserId};
use any_of::AnyOf;
use expand::{ExpandQuery, Expansion};
pub use highlight::SNIPPET_CHARS;
use one_word::OneWord;
pub use query::ParsedQuery;

/// Bumped whenever the schema or the analysis changes: an index of another version is
/// rebuilt at start.
pub const SCHEMA_VERSION: u32 = 2;
/// The name the text fields' tokenizer ([`NamespacedTokenizer`]) is registered under.
const ANALYZER: &str = "tasker";
/// Memory the writer may buffer before it writes a segment. Less is not less memory for a
/// rebuild: at a million tasks, 32 MiB made twice the segments, and merging them touched more
/// of the index's mapped files (a peak of 422 MiB resident against 299 MiB with 64 MiB).
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
    id_hi: Field,
    id_lo: Field,
    title: Field,
    description: Field,
    comments: Field,
    labels: Field,
    label: Field,
    status: Field,
    project: Field,
    assignee: Field,
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
            id: builder.add_text_field("id", STRING),
            id_hi: builder.add_u64_field(ID_HI, FAST),
            id_lo: builder.add_u64_field(ID_LO, FAST),
            title: builder.add_text_field("title", text.clone()),
            description: builder.add_text_field("description", text.clone()),
            comments: builder.add_text_field("comments", text.clone()),
            labels: builder.add_text_field("labels", text),
            label: builder.add_text_field("label", STRING),
            status: builder.add_text_field("status", STRING),
            project: builder.add_text_field("project", STRING),
            assignee: builder.add_text_field("assignee", STRING),
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

    /// The text fields a tier of `reach` looks for an expansion in.
    fn in_reach(&self, reach: Reach) -> Vec<(Field, f32)> {
        match reach {
            Reach::Nowhere => Vec::new(),
            Reach::Headline => vec![(self.title, TITLE_BOOST), (self.labels, LABELS_BOOST)],
            Reach::Everywhere => self.text_fields().to_vec(),
        }
    }
}

/// The fast fields a hit's task id is read from: its high and low 64 bits.
const ID_HI: &str = "id_hi";
const ID_LO: &str = "id_lo";

/// The namespace of a team's tasks' words. Namespaces are all 34 bytes long, so none is a
/// prefix of another.
fn team_namespace(team: TeamId) -> String {
    format!("t{:032x}:", team.as_u128())
}

/// The namespace of the words of the personal tasks a person may see.
fn person_namespace(user: UserId) -> String {
    format!("u{:032x}:", user.as_u128())
}

/// The namespaces a task's words are indexed in: who may see it (`domain::access`).
fn task_namespaces(task: &Task) -> Vec<String> {
    match task_audience(task) {
        TaskAudience::Team(team) => vec![team_namespace(team)],
        TaskAudience::People(people) => people.into_iter().map(person_namespace).collect(),
    }
}

/// What separates a text field's namespaces from its text in an indexed value (see
/// [`NamespacedTokenizer`]).
const NAMESPACE_END: char = '\u{1}';
/// Every namespace is this many bytes (ASCII): `t` or `u`, 32 hex digits, `:`.
const NAMESPACE_LEN: usize = 34;

/// A text field's value as indexed: its namespaces, then the text. The namespaces go with the
/// value rather than as pre-split tokens because tantivy queues up to 10,000 documents for
/// its indexing thread: tokens (a string each, times the namespaces) held there took 200 MiB
/// more than the text at a million tasks.
fn namespaced(namespaces: &str, text: &str) -> String {
    let mut value = String::with_capacity(namespaces.len() + 1 + text.len());
    value.push_str(namespaces);
    value.push(NAMESPACE_END);
    value.push_str(text);
    value
}

/// The text fields' tokenizer: the words of the text after [`NAMESPACE_END`] as [`analyzer`]
/// splits them, each once per namespace before it, as `<namespace><word>` at the word's
/// position (so phrases match within one namespace).
#[derive(Clone)]
struct NamespacedTokenizer {
    inner: TextAnalyzer,
}

impl Tokenizer for NamespacedTokenizer {
    type TokenStream<'a> = NamespacedTokens;

    fn token_stream<'a>(&'a mut self, value: &'a str) -> NamespacedTokens {
        let (namespaces, text) = value.split_once(NAMESPACE_END).unwrap_or(("", value));
        let namespaces: Vec<&str> = (0..namespaces.len() / NAMESPACE_LEN)
            .filter_map(|i| namespaces.get(i * NAMESPACE_LEN..(i + 1) * NAMESPACE_LEN))
            .collect();
        let mut tokens = Vec::new();
        let mut stream = self.inner.token_stream(text);
        while stream.advance() {
            let token = stream.token();
            for namespace in &namespaces {
                let mut text = String::with_capacity(namespace.len() + token.text.len());
                text.push_str(namespace);
                text.push_str(&token.text);
                tokens.push(Token {
                    text,
                    ..token.clone()
                });
            }
        }
        tokens.reverse();
        NamespacedTokens {
            rest: tokens,
            current: Token::default(),
        }
    }
}

/// The tokens of one value, handed out in order.
struct NamespacedTokens {
    /// What is left, last first.
    rest: Vec<Token>,
    current: Token,
}

impl TokenStream for NamespacedTokens {
    fn advance(&mut self) -> bool {
        match self.rest.pop() {
            Some(token) => {
                self.current = token;
                true
            }
            None => false,
        }
    }

    fn token(&self) -> &Token {
        &self.current
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.current
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
    /// The id columns of the segments searched last ([`SearchIndex::hits`]): opening one
    /// parses its block table, which at a million tasks cost more than reading the hits.
    id_columns: Mutex<Vec<IdColumns>>,
}

/// A segment's task id columns: the high and low 64 bits.
#[derive(Clone)]
struct IdColumns {
    segment: SegmentId,
    hi: Column<u64>,
    lo: Column<u64>,
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
        index.tokenizers().register(
            ANALYZER,
            TextAnalyzer::from(NamespacedTokenizer { inner: analyzer() }),
        );
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
            id_columns: Mutex::new(Vec::new()),
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
        let writer = self.writer();
        // What the rebuild writes is merged once, into one segment, when it is committed
        // ([`SearchIndex::finish_rebuild`]), not level by level while it runs.
        writer.set_merge_policy(Box::new(NoMergePolicy));
        writer.delete_all_documents()?;
        self.emptied.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Commits a rebuild as reflecting the change log up to `seq` (see
    /// [`SearchIndex::commit`]), then merges its segments into one in the background; later
    /// writes are merged by tantivy's usual policy again.
    ///
    /// Every segment has its own term dictionaries (mostly of the same words), and a prefix or
    /// typo expansion walks each of them. A rebuild writes a segment per writer buffer, about
    /// two dozen at a million tasks, which tantivy's policy merged down to three: the walks
    /// were then most of a typo search, and one segment took searches from 3-4 ms of CPU to
    /// 1-2. Searches run meanwhile; a clean stop waits for the merge
    /// ([`SearchIndex::close`]), a killed one leaves the segments as they were.
    pub fn finish_rebuild(&self, seq: u64) -> Result<(), SearchError> {
        self.commit(seq)?;
        let segments: Vec<SegmentId> = self
            .reader
            .searcher()
            .segment_readers()
            .iter()
            .map(|s| s.segment_id())
            .collect();
        let mut writer = self.writer();
        if segments.len() > 1 {
            let merging = writer.merge(&segments);
            // Searches keep reading the old segments until the reader reloads: it does when
            // the merge is in.
            let reader = self.reader.clone();
            std::thread::Builder::new()
                .name("index-merge".into())
                .spawn(move || match merging.wait() {
                    Ok(_) => {
                        if let Err(e) = reader.reload() {
                            tracing::warn!(error = %e, "cannot reload the merged search index");
                        }
                        // The merge's buffers are free now.
                        crate::heap::give_back_free_memory();
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot merge the rebuilt search index"),
                })?;
        }
        writer.set_merge_policy(Box::new(LogMergePolicy::default()));
        Ok(())
    }

    /// Counts tasks a rebuild has added.
    pub fn rebuilt(&self, tasks: u64) {
        self.rebuilt.fetch_add(tasks, Ordering::SeqCst);
    }

    /// Replaces a task's document (uncommitted). `comments` are its comment bodies.
    pub fn upsert(&self, task: &Task, comments: &[String]) -> Result<(), SearchError> {
        let f = self.fields;
        let raw = task.id.as_u128();
        let id = key(raw);
        let namespaces = task_namespaces(task).concat();
        let mut doc = TantivyDocument::default();
        let text = |doc: &mut TantivyDocument, field: Field, value: &str| {
            doc.add_text(field, namespaced(&namespaces, value));
        };
        doc.add_text(f.id, &id);
        doc.add_u64(f.id_hi, (raw >> 64) as u64);
        doc.add_u64(f.id_lo, raw as u64);
        text(&mut doc, f.title, task.title.as_str());
        text(&mut doc, f.description, &task.description);
        let mut budget = MAX_COMMENT_TEXT;
        for body in comments {
            if body.len() > budget {
                break;
            }
            budget -= body.len();
            text(&mut doc, f.comments, body);
        }
        for label in &task.labels {
            text(&mut doc, f.labels, label);
            doc.add_text(f.label, label);
        }
        doc.add_text(f.status, status_key(task.status));
        if let Some(project) = task.project_id {
            doc.add_text(f.project, key(project.as_u128()));
        }
        for user in &task.assignee_ids {
            doc.add_text(f.assignee, key(user.as_u128()));
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
    ///
    /// Tasks where every word matches exactly come first, ranked among themselves; then those
    /// that need the last word's prefix; then those that need a typo (see [`TIERS`]). The
    /// exact tier is a plain disjunction of term queries (for one word alone, visited with
    /// MaxScore: see `one_word`), and each later tier runs only when those before it do not
    /// fill the page.
    pub fn search(
        &self,
        request: &SearchRequest,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<Hit>, SearchError> {
        let limit = limit.max(1);
        let want = offset + limit;
        let searcher = self.reader.searcher();
        // A document is in one of the caller's namespaces only (its team's, or for a personal
        // task the caller's own): the exact tier runs once per namespace, each pass a few
        // posting lists, all passes into one top list. One query over every namespace at once
        // would score a word's lists of all the caller's teams together: for a member of 20
        // teams, 80 lists in one disjunction, ten times the work. The namespaces are sorted:
        // equal scores rank in pass order, which must not depend on the caller's.
        let mut every: Vec<String> = request
            .teams
            .iter()
            .map(|t| team_namespace(*t))
            .chain([person_namespace(request.me)])
            .collect();
        every.sort_unstable();
        let each: Vec<Arc<Vec<String>>> = every.iter().map(|n| Arc::new(vec![n.clone()])).collect();
        let mut exact: Vec<Box<dyn Query>> = Vec::with_capacity(each.len());
        for namespace in &each {
            exact.push(self.build(request, namespace, EXACT)?);
        }
        let mut found = best(&searcher, &exact, want)?;
        let mut earlier = Earlier {
            tier: EXACT,
            found: !found.is_empty(),
        };
        for tier in TIERS {
            if found.len() >= want {
                break;
            }
            // A tier runs only if it widens some word further than the one before.
            let widens = (request.query.words.iter())
                .any(|w| expansions(w, tier).ne(expansions(w, earlier.tier)));
            if !widens {
                continue;
            }
            let passes = self.widened(request, tier, &every, &each, &earlier)?;
            let more = best(&searcher, &passes, want - found.len())?;
            earlier = Earlier {
                found: earlier.found || !more.is_empty(),
                tier,
            };
            found.extend(more);
        }
        let page = found.into_iter().skip(offset).collect();
        self.hits(&searcher, page)
    }

    /// The passes of `tier`: the query with its expansions, less what the `earlier` tiers
    /// matched (the query of the last of them, as each tier's includes the one before). The
    /// passes are one per namespace of `each` like the exact tier's, or for a word alone one
    /// over `every` namespace: an expansion reads every namespace's matching words in one go,
    /// where a pass each would pay that scorer's set-up once per namespace.
    fn widened(
        &self,
        request: &SearchRequest,
        tier: Tier,
        every: &[String],
        each: &[Arc<Vec<String>>],
        earlier: &Earlier,
    ) -> Result<Vec<Box<dyn Query>>, SearchError> {
        let passes = match &request.query.words[..] {
            // One word, and the first tier to widen it, by one expansion: the expansion alone,
            // without the word's own matches (those are what the exact tier found).
            [word]
                if alone(request)
                    && earlier.tier == EXACT
                    && expansions(word, tier).count() == 1 =>
            {
                let (expansion, reach) = expansions(word, tier).next().expect("one expansion");
                let every = Arc::new(every.to_vec());
                let query = self.expand(&every, &word.text, expansion, reach)?;
                // The exact tier looked for the word in every field.
                let query = match earlier.found {
                    true => query.without_word(Arc::new(
                        self.fields.text_fields().map(|(field, _)| field).to_vec(),
                    )),
                    false => query,
                };
                return Ok(vec![Box::new(query)]);
            }
            _ if alone(request) => vec![Arc::new(every.to_vec())],
            _ => each.to_vec(),
        };
        let mut widened: Vec<Box<dyn Query>> = Vec::with_capacity(passes.len());
        for namespaces in &passes {
            let query = self.build(request, namespaces, tier)?;
            widened.push(if earlier.found {
                let exclude = self.build(request, namespaces, earlier.tier)?;
                Box::new(BooleanQuery::new(vec![
                    (Occur::Must, query),
                    (Occur::MustNot, exclude),
                ]))
            } else {
                query
            });
        }
        Ok(widened)
    }

    /// The task ids of found documents, from the id fast fields.
    fn hits(
        &self,
        searcher: &Searcher,
        found: Vec<(Score, DocAddress)>,
    ) -> Result<Vec<Hit>, SearchError> {
        let mut columns: Vec<Option<IdColumns>> = vec![None; searcher.segment_readers().len()];
        let mut hits = Vec::with_capacity(found.len());
        for (score, address) in found {
            let slot = &mut columns[address.segment_ord as usize];
            let ids = match slot {
                Some(ids) => ids,
                None => slot.insert(self.id_columns(searcher, address.segment_ord)?),
            };
            let hi = ids.hi.first(address.doc_id);
            let lo = ids.lo.first(address.doc_id);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                hits.push(Hit {
                    task: TaskId::from_u128((u128::from(hi) << 64) | u128::from(lo)),
                    score,
                });
            }
        }
        Ok(hits)
    }

    /// The id columns of `searcher`'s segment `ord`: kept from an earlier search of the same
    /// segment, or opened (and kept, with those of the segments still searched).
    fn id_columns(&self, searcher: &Searcher, ord: u32) -> Result<IdColumns, SearchError> {
        let reader = searcher.segment_reader(ord);
        let segment = reader.segment_id();
        let mut kept = self.id_columns.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ids) = kept.iter().find(|c| c.segment == segment) {
            return Ok(ids.clone());
        }
        let fast = reader.fast_fields();
        let ids = IdColumns {
            segment,
            hi: fast.u64(ID_HI)?,
            lo: fast.u64(ID_LO)?,
        };
        let live: Vec<SegmentId> = searcher
            .segment_readers()
            .iter()
            .map(|r| r.segment_id())
            .collect();
        kept.retain(|c| live.contains(&c.segment));
        kept.push(ids.clone());
        Ok(ids)
    }

    /// The matches of `expansion` of `word` in `namespaces`, in the text fields of `reach`.
    fn expand(
        &self,
        namespaces: &Arc<Vec<String>>,
        word: &str,
        expansion: Expansion,
        reach: Reach,
    ) -> Result<ExpandQuery, SearchError> {
        let fields = Arc::new(self.fields.in_reach(reach));
        let factor = match expansion {
            Expansion::Prefix => PREFIX_FACTOR,
            Expansion::Typo => FUZZY_FACTOR,
        };
        Ok(ExpandQuery::new(
            fields,
            namespaces.clone(),
            word,
            expansion,
            factor,
        )?)
    }

    /// The query for `request` within `namespaces`: its words exactly, and by the expansions
    /// of `tier` (none for the exact tier).
    fn build(
        &self,
        request: &SearchRequest,
        namespaces: &Arc<Vec<String>>,
        tier: Tier,
    ) -> Result<Box<dyn Query>, SearchError> {
        // One word alone, exactly: pruned by MaxScore (see `one_word`).
        if let [word] = &request.query.words[..]
            && alone(request)
            && tier == EXACT
        {
            return Ok(Box::new(OneWord::new(self.word_terms(namespaces, word))));
        }
        let f = self.fields;
        // Each word's and phrase's clauses (fields, namespaces, expansions): any may match.
        let mut text: Vec<Vec<Box<dyn Query>>> = Vec::new();
        for word in &request.query.words {
            let mut any: Vec<Box<dyn Query>> = Vec::new();
            for (term, boost) in self.word_terms(namespaces, word) {
                let exact = TermQuery::new(term, IndexRecordOption::WithFreqs);
                any.push(Box::new(BoostQuery::new(Box::new(exact), boost)));
            }
            for (expansion, reach) in expansions(word, tier) {
                let query = self.expand(namespaces, &word.text, expansion, reach)?;
                any.push(Box::new(query));
            }
            text.push(any);
        }
        for phrase in &request.query.phrases {
            let mut any: Vec<Box<dyn Query>> = Vec::new();
            for (field, boost) in f.text_fields() {
                for namespace in namespaces.iter() {
                    let terms = phrase
                        .iter()
                        .map(|t| Term::from_field_text(field, &format!("{namespace}{t}")))
                        .collect();
                    any.push(Box::new(BoostQuery::new(
                        Box::new(PhraseQuery::new(terms)),
                        boost,
                    )));
                }
            }
            text.push(any);
        }
        let mut must: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let narrow = &request.filter;
        if !narrow.statuses.is_empty() {
            // A union of the statuses' lists, read only as far as the other clauses ask (a
            // term set would collect all its documents first, once per namespace's pass).
            let statuses = narrow
                .statuses
                .iter()
                .map(|s| exact(f.status, status_key(*s)))
                .collect();
            must.push((Occur::Must, filter(BooleanQuery::union(statuses))));
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
        // One word or phrase alone is run as its own disjunction, not through a nested union.
        if alone(request) {
            return Ok(Box::new(BooleanQuery::union(
                text.pop().expect("one clause"),
            )));
        }
        // Several: each a disjunction that moves only as far as the conjunction asks.
        let text = text
            .into_iter()
            .map(|any| (Occur::Must, Box::new(AnyOf::new(any)) as Box<dyn Query>));
        must.splice(0..0, text);
        Ok(Box::new(BooleanQuery::new(must)))
    }

    /// `word`'s term in each text field and namespace, with the field's weight.
    fn word_terms(&self, namespaces: &[String], word: &query::Word) -> Vec<(Term, f32)> {
        let mut terms = Vec::with_capacity(4 * namespaces.len());
        for (field, boost) in self.fields.text_fields() {
            for namespace in namespaces {
                let text = format!("{namespace}{}", word.text);
                terms.push((Term::from_field_text(field, &text), boost));
            }
        }
        terms
    }

    /// The title with what the query matched marked (see the `highlight` module), if any.
    /// `analyzer`: one [`analyzer`] for all the hits of a request.
    pub fn highlight_title(
        &self,
        analyzer: &mut TextAnalyzer,
        query: &ParsedQuery,
        title: &str,
    ) -> Option<String> {
        highlight::highlight(analyzer, query, title, None)
    }

    /// A snippet of the description around the first match, marked, if any.
    pub fn highlight_description(
        &self,
        analyzer: &mut TextAnalyzer,
        query: &ParsedQuery,
        text: &str,
    ) -> Option<String> {
        highlight::highlight(analyzer, query, text, Some(SNIPPET_CHARS))
    }
}

/// How far a tier looks for a word's expansions: in no field, in the title and labels, or in
/// every text field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    Nowhere,
    Headline,
    Everywhere,
}

/// A tier of results: how far it looks for each expansion of a word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tier {
    prefix: Reach,
    typo: Reach,
}

/// Every word exactly.
const EXACT: Tier = Tier {
    prefix: Reach::Nowhere,
    typo: Reach::Nowhere,
};

/// The tiers after [`EXACT`], in rank order, each including the one before. A word still
/// being typed completes in a title or a label before it does in a description or a
/// comment, and its completions rank before its typos, the weaker guess. Each tier runs only
/// when those before it did not fill the page: a common prefix's words in every description
/// are thousands of posting lists, and a typo's automaton walks every word of the caller's
/// teams.
const TIERS: [Tier; 3] = [
    Tier {
        prefix: Reach::Headline,
        typo: Reach::Nowhere,
    },
    Tier {
        prefix: Reach::Everywhere,
        typo: Reach::Nowhere,
    },
    Tier {
        prefix: Reach::Everywhere,
        typo: Reach::Everywhere,
    },
];

/// The tiers run so far: the last (its query includes those of the tiers before it), and
/// whether any found anything.
struct Earlier {
    tier: Tier,
    found: bool,
}

/// How `word` widens in `tier`: each expansion it takes and how far it reaches.
fn expansions(word: &query::Word, tier: Tier) -> impl Iterator<Item = (Expansion, Reach)> {
    [
        (word.prefix, Expansion::Prefix, tier.prefix),
        (word.fuzzy, Expansion::Typo, tier.typo),
    ]
    .into_iter()
    .filter(|&(wanted, _, reach)| wanted && reach != Reach::Nowhere)
    .map(|(_, expansion, reach)| (expansion, reach))
}

/// Whether `request` is one word, with no phrase and no filter.
fn alone(request: &SearchRequest) -> bool {
    let filter = &request.filter;
    request.query.words.len() + request.query.phrases.len() == 1
        && filter.statuses.is_empty()
        && filter.project.is_none()
        && filter.assignee.is_none()
        && filter.label.is_none()
}

/// The `want` best documents that `passes` match, best first. No document matches in two
/// passes. One top list over all passes and segments, so a pass skips what cannot beat what
/// the earlier ones found (block-max pruning). Among equal scores the document found first
/// ranks first, in the pruning as in the order returned, so a larger `want` lists the same
/// documents first (pages never repeat or skip a document).
fn best(
    searcher: &Searcher,
    passes: &[Box<dyn Query>],
    want: usize,
) -> Result<Vec<(Score, DocAddress)>, SearchError> {
    let scoring = EnableScoring::enabled_from_searcher(searcher);
    let weights = passes
        .iter()
        .map(|query| query.weight(scoring))
        .collect::<tantivy::Result<Vec<_>>>()?;
    // The worst of the best so far on top: (score, where found, document).
    let mut top: BinaryHeap<Reverse<Found>> = BinaryHeap::with_capacity(want + 1);
    // What a match must beat: the worst of a full list.
    let threshold = |top: &BinaryHeap<Reverse<Found>>| match top.peek() {
        Some(Reverse(worst)) if top.len() >= want => worst.score,
        _ => Score::MIN,
    };
    let mut order = 0u32;
    for (ord, reader) in searcher.segment_readers().iter().enumerate() {
        let alive = reader.alive_bitset();
        for weight in &weights {
            let start = threshold(&top);
            weight.for_each_pruning(start, reader, &mut |doc, score| {
                if alive.is_none_or(|alive| alive.is_alive(doc)) {
                    let found = Found {
                        score,
                        order: Reverse(order),
                        doc: Reverse(DocAddress::new(ord as u32, doc)),
                    };
                    if top.len() < want {
                        top.push(Reverse(found));
                    } else if top.peek().is_some_and(|Reverse(worst)| found > *worst) {
                        top.pop();
                        top.push(Reverse(found));
                    }
                }
                threshold(&top)
            })?;
            order += 1;
        }
    }
    let mut found: Vec<Found> = top.into_iter().map(|Reverse(found)| found).collect();
    found.sort_unstable_by(|a, b| b.cmp(a));
    Ok(found.into_iter().map(|f| (f.score, f.doc.0)).collect())
}

/// A match in [`best`]'s top list, greater the better: a higher score, or at an equal score
/// found in an earlier pass, or earlier in the same pass.
#[derive(PartialEq)]
struct Found {
    score: Score,
    order: Reverse<u32>,
    doc: Reverse<DocAddress>,
}

impl Eq for Found {}

impl PartialOrd for Found {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Found {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| self.order.cmp(&other.order))
            .then_with(|| self.doc.cmp(&other.doc))
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

#[cfg(test)]
mod tests;
