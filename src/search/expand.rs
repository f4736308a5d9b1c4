//! Prefix and typo matches that stay inside the caller's namespaces.
//!
//! Every indexed text term is `<namespace><word>` (see [`super::namespace`]). A prefix
//! expansion reads the range of terms that begin with a namespace and the word; a typo
//! expansion runs its automaton over the word part only, after the namespace bytes matched
//! exactly. Neither reaches a word of a namespace the caller was not given: they read only the
//! posting lists of what the caller may see.

use std::sync::Arc;

use tantivy::InvertedIndexReader;
use tantivy::postings::{BlockSegmentPostings, TermInfo};
use tantivy::query::{
    DfaWrapper, EnableScoring, Explanation, FuzzyTermQuery, Query, Scorer, Weight,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::termdict::{TermOrdinal, TermStreamer, WithoutKeys};
use tantivy::{DocId, DocSet, Score, SegmentReader, TERMINATED, TantivyError, Term};
use tantivy_fst::Automaton;

/// How an expansion matches the word part of a term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expansion {
    /// Words that begin with the query word (the word itself included).
    Prefix,
    /// Words one insertion, deletion, substitution or swap of neighbours away (the word itself
    /// included).
    Typo,
}

/// Matches the terms of each of `fields` that are one of `namespaces` followed by a word the
/// expansion of `word` matches. A document scores the sum of the weights of the fields it
/// matches in, times `boost`. What the index calls an automaton query, restricted to
/// namespaces, over several fields at once: one scorer, rather than one per field under a
/// union that would score every matching document four times over.
#[derive(Clone)]
pub struct ExpandQuery {
    /// Each field and its weight.
    fields: Arc<Vec<(Field, Score)>>,
    namespaces: Arc<Vec<String>>,
    word: String,
    boost: Score,
    /// The fields in which a document that has `word` itself is left out, if any.
    without_word: Option<Arc<Vec<Field>>>,
    /// For a typo; a prefix's terms are a range.
    automaton: Option<Arc<DfaWrapper>>,
}

impl std::fmt::Debug for ExpandQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExpandQuery")
            .field("fields", &self.fields)
            .field("namespaces", &self.namespaces.len())
            .field("word", &self.word)
            .field("typo", &self.automaton.is_some())
            .field("boost", &self.boost)
            .field("without_word", &self.without_word.is_some())
            .finish()
    }
}

/// The automaton a typo expansion matches the word part with (tantivy's own, with its cached
/// tables).
fn typo_automaton(word: &str) -> tantivy::Result<DfaWrapper> {
    // The field is not part of the automaton.
    let term = Term::from_field_text(Field::from_field_id(0), word);
    FuzzyTermQuery::new(term, 1, true).automaton()
}

impl ExpandQuery {
    /// Fails only if the expansion's automaton cannot be built.
    pub fn new(
        fields: Arc<Vec<(Field, Score)>>,
        namespaces: Arc<Vec<String>>,
        word: &str,
        expansion: Expansion,
        boost: Score,
    ) -> tantivy::Result<Self> {
        Ok(Self {
            fields,
            namespaces,
            word: word.to_string(),
            boost,
            without_word: None,
            automaton: match expansion {
                Expansion::Prefix => None,
                Expansion::Typo => Some(Arc::new(typo_automaton(word)?)),
            },
        })
    }

    /// Leaves out every document that has the word itself in any of `fields`: those an exact
    /// search of them already found.
    pub fn without_word(mut self, fields: Arc<Vec<Field>>) -> Self {
        self.without_word = Some(fields);
        self
    }
}

impl Query for ExpandQuery {
    fn weight(&self, _scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(ExpandWeight(self.clone())))
    }
}

struct ExpandWeight(ExpandQuery);

/// A field's matching terms in a segment.
struct FieldTerms {
    index: Arc<InvertedIndexReader>,
    weight: Score,
    terms: Vec<TermInfo>,
}

impl ExpandWeight {
    /// Each field's matching terms in `reader` (less the word's own, when it is left out),
    /// and the word's own terms in the fields it is left out of.
    fn terms(&self, reader: &SegmentReader) -> tantivy::Result<(Vec<FieldTerms>, Vec<FieldTerms>)> {
        let query = &self.0;
        let mut found = Vec::with_capacity(query.fields.len());
        for &(field, weight) in query.fields.iter() {
            let index = reader.inverted_index(field)?;
            let terms_of = index.terms();
            let mut terms = Vec::new();
            for namespace in query.namespaces.iter() {
                let exact = format!("{namespace}{}", query.word).into_bytes();
                // The word's own term adds nothing where its documents are left out. It is told
                // apart by its ordinal: the streams below do not copy each term's bytes out.
                let own = match &query.without_word {
                    Some(fields) if fields.contains(&field) => terms_of.term_ord(&exact)?,
                    _ => None,
                };
                match &query.automaton {
                    Some(automaton) => take(
                        terms_of
                            .search(Scoped {
                                namespace: namespace.as_bytes(),
                                word: &**automaton,
                            })
                            .without_keys()
                            .into_stream()?,
                        own,
                        &mut terms,
                    ),
                    // A prefix's terms begin with the namespace and the word: a range of the
                    // sorted terms, no automaton to run.
                    None => {
                        let from = terms_of.range().ge(&exact);
                        let range = match successor(&exact) {
                            Some(to) => from.lt(to),
                            None => from,
                        };
                        take(range.without_keys().into_stream()?, own, &mut terms);
                    }
                }
            }
            if !terms.is_empty() {
                found.push(FieldTerms {
                    index,
                    weight,
                    terms,
                });
            }
        }
        let mut own = Vec::new();
        for &field in query.without_word.iter().flat_map(|fields| fields.iter()) {
            let index = reader.inverted_index(field)?;
            let mut terms = Vec::new();
            for namespace in query.namespaces.iter() {
                let exact = format!("{namespace}{}", query.word);
                terms.extend(index.terms().get(exact)?);
            }
            if !terms.is_empty() {
                own.push(FieldTerms {
                    index,
                    weight: 0.0,
                    terms,
                });
            }
        }
        Ok((found, own))
    }

    /// The matches in `reader`, their scores times `boost` (the query's own and any around it).
    fn matches(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Matches> {
        let (fields, own) = self.terms(reader)?;
        let boost = self.0.boost * boost;
        let postings: u64 = (fields.iter().flat_map(|f| &f.terms))
            .map(|t| u64::from(t.doc_freq))
            .sum();
        // A typo's few matches are a short sorted list; a common prefix's many, a bit set per
        // field (one bit per document of the segment).
        if postings.saturating_mul(SPARSE) < u64::from(reader.max_doc()) {
            let mut found: Vec<(DocId, usize)> = Vec::with_capacity(postings as usize);
            for (i, field) in fields.iter().enumerate() {
                field.for_each_doc(|doc| found.push((doc, i)))?;
            }
            // A document counts each field once, however many of its words matched there.
            found.sort_unstable();
            found.dedup();
            let mut left_out = Vec::new();
            for field in &own {
                field.for_each_doc(|doc| left_out.push(doc))?;
            }
            left_out.sort_unstable();
            let mut docs: Vec<(DocId, Score)> = Vec::with_capacity(found.len());
            for (doc, i) in found {
                if left_out.binary_search(&doc).is_ok() {
                    continue;
                }
                let weight = fields[i].weight;
                match docs.last_mut() {
                    Some((seen, score)) if *seen == doc => *score += weight,
                    _ => docs.push((doc, weight)),
                }
            }
            Ok(Matches::Few(FewMatches { docs, at: 0, boost }))
        } else {
            let max_doc = reader.max_doc();
            let mut any = Bits::new(max_doc);
            let mut each = Vec::with_capacity(fields.len());
            for field in &fields {
                let mut docs = Bits::new(max_doc);
                field.for_each_doc(|doc| docs.insert(doc))?;
                any.union_with(&docs);
                each.push((docs, field.weight));
            }
            if !own.is_empty() {
                let mut left_out = Bits::new(max_doc);
                for field in &own {
                    field.for_each_doc(|doc| left_out.insert(doc))?;
                }
                any.remove_all(&left_out);
            }
            Ok(Matches::Many(ManyMatches::new(any, each, boost)))
        }
    }
}

/// Adds the terms of `stream` to `terms`, less the one of ordinal `own`.
fn take<A: Automaton>(
    mut stream: TermStreamer<'_, A, WithoutKeys>,
    own: Option<TermOrdinal>,
    terms: &mut Vec<TermInfo>,
) where
    A::State: Clone,
{
    while stream.advance() {
        if own != Some(stream.term_ord()) {
            terms.push(stream.value().clone());
        }
    }
}

/// The least byte string greater than every string that begins with `prefix`, if any (none
/// when it is all `0xff`).
fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

impl FieldTerms {
    /// Calls `each` with every document of every term (a document once per term it has).
    fn for_each_doc(&self, mut each: impl FnMut(DocId)) -> tantivy::Result<()> {
        let mut block: Option<BlockSegmentPostings> = None;
        for term in &self.terms {
            let block = match &mut block {
                Some(block) => {
                    self.index.reset_block_postings_from_terminfo(term, block)?;
                    block
                }
                None => block.insert(
                    self.index
                        .read_block_postings_from_terminfo(term, IndexRecordOption::Basic)?,
                ),
            };
            while !block.docs().is_empty() {
                block.docs().iter().for_each(|&doc| each(doc));
                block.advance();
            }
        }
        Ok(())
    }
}

/// An expansion's matches in a segment.
enum Matches {
    Few(FewMatches),
    Many(ManyMatches),
}

impl Weight for ExpandWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        Ok(match self.matches(reader, boost)? {
            Matches::Few(few) => Box::new(few),
            Matches::Many(many) => Box::new(many),
        })
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        explain_by_seeking(self.scorer(reader, 1.0)?, doc, "ExpandQuery")
    }

    /// The best first: a common prefix's matches score one of a few sums of field weights, so
    /// they are visited a sum at a time, the highest first, and the visit ends at the first
    /// that cannot beat `threshold`, without scoring every match.
    fn for_each_pruning(
        &self,
        mut threshold: Score,
        reader: &SegmentReader,
        callback: &mut dyn FnMut(DocId, Score) -> Score,
    ) -> tantivy::Result<()> {
        match self.matches(reader, 1.0)? {
            Matches::Few(few) => {
                for (doc, score) in few.docs {
                    let score = score * few.boost;
                    if score > threshold {
                        threshold = callback(doc, score);
                    }
                }
            }
            Matches::Many(many) => many.best_first(threshold, callback),
        }
        Ok(())
    }
}

/// The explanation of a weight that scores as a whole (no parts to tell apart): `doc`'s
/// score under `name`, or why not.
pub(super) fn explain_by_seeking(
    mut scorer: Box<dyn Scorer>,
    doc: DocId,
    name: &'static str,
) -> tantivy::Result<Explanation> {
    if scorer.seek(doc) == doc {
        Ok(Explanation::new(name, scorer.score()))
    } else {
        Err(TantivyError::InvalidArgument(
            "the document does not match".to_string(),
        ))
    }
}

/// An expansion's matches are kept as a sorted list when its postings number fewer than one
/// in this many of the segment's documents. Sorting them costs about a posting's share of
/// `log2(postings)` comparisons each; a bit set per field costs its clearing and its reading,
/// an eighth of a byte per document of the segment and field, whatever the postings. At a
/// million documents the two cost the same near 4,000 postings.
const SPARSE: u64 = 256;

/// Few matching documents: each with its score, in document order.
struct FewMatches {
    docs: Vec<(DocId, Score)>,
    at: usize,
    boost: Score,
}

impl DocSet for FewMatches {
    fn advance(&mut self) -> DocId {
        self.at = (self.at + 1).min(self.docs.len());
        self.doc()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        // Galloping: a seek usually lands a few documents on.
        let rest = &self.docs[self.at..];
        let mut end = 1;
        while end < rest.len() && rest[end].0 < target {
            end *= 2;
        }
        let start = end / 2;
        let end = end.min(rest.len());
        self.at += start + rest[start..end].partition_point(|&(d, _)| d < target);
        self.doc()
    }

    fn doc(&self) -> DocId {
        self.docs.get(self.at).map_or(TERMINATED, |&(doc, _)| doc)
    }

    fn size_hint(&self) -> u32 {
        (self.docs.len() - self.at) as u32
    }
}

impl Scorer for FewMatches {
    fn score(&mut self) -> Score {
        self.docs.get(self.at).map_or(0.0, |&(_, s)| s * self.boost)
    }
}

/// One bit per document of a segment.
#[derive(Clone)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(max_doc: DocId) -> Self {
        Self(vec![0; (max_doc as usize).div_ceil(64)])
    }

    fn insert(&mut self, doc: DocId) {
        self.0[doc as usize / 64] |= 1 << (doc % 64);
    }

    fn contains(&self, doc: DocId) -> bool {
        self.0
            .get(doc as usize / 64)
            .is_some_and(|word| word & (1 << (doc % 64)) != 0)
    }

    fn union_with(&mut self, other: &Bits) {
        self.0.iter_mut().zip(&other.0).for_each(|(a, b)| *a |= b);
    }

    fn remove_all(&mut self, other: &Bits) {
        self.0.iter_mut().zip(&other.0).for_each(|(a, b)| *a &= !b);
    }

    fn count(&self) -> u32 {
        self.0.iter().map(|word| word.count_ones()).sum()
    }

    /// The first document from `from` on, or `TERMINATED`.
    fn first_from(&self, from: DocId) -> DocId {
        let mut at = from as usize / 64;
        let Some(&first) = self.0.get(at) else {
            return TERMINATED;
        };
        let mut word = first & (u64::MAX << (from % 64));
        loop {
            if word != 0 {
                return (at * 64) as DocId + word.trailing_zeros();
            }
            at += 1;
            match self.0.get(at) {
                Some(&next) => word = next,
                None => return TERMINATED,
            }
        }
    }
}

/// Many matching documents: a bit set of them all, and one per field for the score.
struct ManyMatches {
    any: Bits,
    fields: Vec<(Bits, Score)>,
    boost: Score,
    doc: DocId,
    count: u32,
}

impl ManyMatches {
    fn new(any: Bits, fields: Vec<(Bits, Score)>, boost: Score) -> Self {
        let doc = any.first_from(0);
        let count = any.count();
        Self {
            any,
            fields,
            boost,
            doc,
            count,
        }
    }

    /// The score of a document in exactly the fields of `mask` (bit `i`: `fields[i]`).
    fn score_of(&self, mask: usize) -> Score {
        let weights: Score = (self.fields.iter().enumerate())
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, &(_, weight))| weight)
            .sum();
        weights * self.boost
    }

    /// Calls `callback` with matches whose score beats the threshold (`threshold`, then what
    /// `callback` returns), the highest scores first and among equal ones in document order.
    fn best_first(&self, mut threshold: Score, callback: &mut dyn FnMut(DocId, Score) -> Score) {
        // Each set of fields a document may match in exactly, with its score, the best first;
        // sets of equal scores go together.
        let mut masks: Vec<(usize, Score)> = (1..1usize << self.fields.len())
            .map(|mask| (mask, self.score_of(mask)))
            .collect();
        masks.sort_by(|a, b| b.1.total_cmp(&a.1));
        for group in masks.chunk_by(|a, b| a.1 == b.1) {
            let score = group[0].1;
            if score <= threshold {
                return;
            }
            for (at, &any) in self.any.0.iter().enumerate() {
                if any == 0 {
                    continue;
                }
                let mut word = 0;
                for &(mask, _) in group {
                    let mut exactly = any;
                    for (i, (docs, _)) in self.fields.iter().enumerate() {
                        if mask & (1 << i) != 0 {
                            exactly &= docs.0[at];
                        } else {
                            exactly &= !docs.0[at];
                        }
                    }
                    word |= exactly;
                }
                while word != 0 {
                    let doc = (at * 64) as DocId + word.trailing_zeros();
                    word &= word - 1;
                    threshold = callback(doc, score);
                    if score <= threshold {
                        return;
                    }
                }
            }
        }
    }
}

impl DocSet for ManyMatches {
    fn advance(&mut self) -> DocId {
        if self.doc != TERMINATED {
            self.doc = self.any.first_from(self.doc + 1);
        }
        self.doc
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if self.doc < target {
            self.doc = self.any.first_from(target);
        }
        self.doc
    }

    fn doc(&self) -> DocId {
        self.doc
    }

    fn size_hint(&self) -> u32 {
        self.count
    }
}

impl Scorer for ManyMatches {
    fn score(&mut self) -> Score {
        let doc = self.doc;
        let mask = (self.fields.iter().enumerate())
            .filter(|(_, (docs, _))| docs.contains(doc))
            .fold(0, |mask, (i, _)| mask | 1 << i);
        self.score_of(mask)
    }
}

/// The namespace bytes exactly, then what `word` matches.
struct Scoped<'a, A> {
    namespace: &'a [u8],
    word: &'a A,
}

#[derive(Clone)]
enum ScopedState<S> {
    /// This many namespace bytes matched so far.
    Namespace(usize),
    Word(S),
    Dead,
}

impl<A: Automaton> Automaton for Scoped<'_, A>
where
    A::State: Clone,
{
    type State = ScopedState<A::State>;

    fn start(&self) -> Self::State {
        if self.namespace.is_empty() {
            ScopedState::Word(self.word.start())
        } else {
            ScopedState::Namespace(0)
        }
    }

    fn is_match(&self, state: &Self::State) -> bool {
        match state {
            ScopedState::Word(s) => self.word.is_match(s),
            _ => false,
        }
    }

    fn can_match(&self, state: &Self::State) -> bool {
        match state {
            ScopedState::Namespace(_) => true,
            ScopedState::Word(s) => self.word.can_match(s),
            ScopedState::Dead => false,
        }
    }

    fn accept(&self, state: &Self::State, byte: u8) -> Self::State {
        match state {
            ScopedState::Namespace(at) if self.namespace[*at] == byte => {
                if at + 1 == self.namespace.len() {
                    ScopedState::Word(self.word.start())
                } else {
                    ScopedState::Namespace(at + 1)
                }
            }
            ScopedState::Word(s) => ScopedState::Word(self.word.accept(s, byte)),
            _ => ScopedState::Dead,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typo_matches(namespace: &str, word: &str, term: &str) -> bool {
        let inner = typo_automaton(word).unwrap();
        let scoped = Scoped {
            namespace: namespace.as_bytes(),
            word: &inner,
        };
        let mut state = scoped.start();
        for &b in term.as_bytes() {
            if !scoped.can_match(&state) {
                return false;
            }
            state = scoped.accept(&state, b);
        }
        scoped.is_match(&state)
    }

    /// Whether `term` is in the range a prefix expansion of `word` in `namespace` reads.
    fn prefix_matches(namespace: &str, word: &str, term: &str) -> bool {
        let from = format!("{namespace}{word}");
        term >= from.as_str()
            && successor(from.as_bytes()).is_none_or(|to| term.as_bytes() < to.as_slice())
    }

    #[test]
    fn few_matches_advance_seek_and_score_like_any_scorer() {
        let mut docs = FewMatches {
            docs: vec![(2, 1.0), (5, 3.0), (9, 0.5)],
            at: 0,
            boost: 2.0,
        };
        assert_eq!(docs.doc(), 2);
        assert_eq!(docs.seek(2), 2, "a seek to where it is stays");
        assert_eq!(docs.seek(3), 5);
        assert_eq!(docs.score(), 6.0);
        assert_eq!(docs.size_hint(), 2);
        assert_eq!(docs.advance(), 9);
        assert_eq!(docs.seek(10), TERMINATED);
        assert_eq!(docs.advance(), TERMINATED, "the end stays the end");
        let empty = FewMatches {
            docs: Vec::new(),
            at: 0,
            boost: 1.0,
        };
        assert_eq!(empty.doc(), TERMINATED);
    }

    fn bits(max_doc: DocId, docs: &[DocId]) -> Bits {
        let mut bits = Bits::new(max_doc);
        docs.iter().for_each(|&d| bits.insert(d));
        bits
    }

    #[test]
    fn many_matches_come_best_first_and_stop_at_the_threshold() {
        // Title (4) in 3, 70, 130; description (1) in 5, 70, 129; comments (1) in 3, 7.
        let fields = vec![
            (bits(200, &[3, 70, 130]), 4.0),
            (bits(200, &[5, 70, 129]), 1.0),
            (bits(200, &[3, 7]), 1.0),
        ];
        let mut any = bits(200, &[]);
        fields.iter().for_each(|(f, _)| any.union_with(f));
        let many = ManyMatches::new(any, fields, 0.5);
        let mut seen = Vec::new();
        many.best_first(Score::MIN, &mut |doc, score| {
            seen.push((doc, score));
            Score::MIN
        });
        // Title and either other field (5) as one score, in document order; then the title
        // alone; then description or comments alone.
        assert_eq!(
            seen,
            [
                (3, 2.5),
                (70, 2.5),
                (130, 2.0),
                (5, 0.5),
                (7, 0.5),
                (129, 0.5)
            ]
        );
        // The scorer agrees with the visit.
        let mut scorer = ManyMatches::new(many.any.clone(), many.fields.clone(), 0.5);
        let mut scored = Vec::new();
        while scorer.doc() != TERMINATED {
            scored.push((scorer.doc(), scorer.score()));
            scorer.advance();
        }
        let mut visited = seen.clone();
        visited.sort_by_key(|&(doc, _)| doc);
        assert_eq!(scored, visited);
        assert_eq!(scorer.seek(0), TERMINATED);
        // A threshold: nothing at or under it is visited, and the visit ends there.
        let mut above = Vec::new();
        many.best_first(2.0, &mut |doc, _score| {
            above.push(doc);
            if above.len() == 1 { Score::MIN } else { 2.5 }
        });
        assert_eq!(above, [3, 70]);
    }

    #[test]
    fn expansions_match_only_inside_their_namespace() {
        assert!(prefix_matches("ta:", "depl", "ta:deploy"));
        assert!(prefix_matches("ta:", "depl", "ta:depl"));
        assert!(!prefix_matches("ta:", "depl", "tb:deploy"));
        assert!(!prefix_matches("ta:", "depl", "ta:dep"));
        assert!(!prefix_matches("ta:", "depl", "ta:depm"));
        assert!(typo_matches("ta:", "deploy", "ta:depoly"));
        assert!(typo_matches("ta:", "deploy", "ta:deploy"));
        assert!(!typo_matches("ta:", "deploy", "tb:depoly"));
        assert!(!typo_matches("ta:", "deploy", "ta:delpyo"));
        // A namespace is never reached by a typo in its own bytes.
        assert!(!typo_matches("ta:", "deploy", "tb:deploy"));
        assert!(!typo_matches("ta:", "deploy", "t:deploy"));
    }

    #[test]
    fn a_prefix_range_ends_at_the_next_string() {
        assert_eq!(successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(successor(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(successor(b"\xff\xff"), None);
    }
}
