//! Prefix and typo matches that stay inside the caller's namespaces.
//!
//! Every indexed text term is `<namespace><word>` (see [`super::namespace`]). A prefix or typo
//! expansion runs its automaton over the word part only, after the namespace bytes matched
//! exactly: it never reaches a word of a namespace the caller was not given, so it reads only
//! the posting lists of what the caller may see.

use std::sync::Arc;

use tantivy::InvertedIndexReader;
use tantivy::postings::{BlockSegmentPostings, TermInfo};
use tantivy::query::{
    BitSetDocSet, DfaWrapper, EnableScoring, Explanation, FuzzyTermQuery, Query, Scorer, Weight,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{BitSet, DocId, DocSet, Score, SegmentReader, TERMINATED, TantivyError, Term};
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
/// matches in, times the query's boost. What the index calls an automaton query, restricted
/// to namespaces, over several fields at once: one scorer, rather than one per field under a
/// union that would score every matching document four times over.
#[derive(Clone)]
pub struct ExpandQuery {
    /// Each field and its weight.
    fields: Arc<Vec<(Field, Score)>>,
    namespaces: Arc<Vec<String>>,
    word: String,
    expansion: Expansion,
    automaton: Arc<DfaWrapper>,
}

impl std::fmt::Debug for ExpandQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExpandQuery")
            .field("fields", &self.fields)
            .field("namespaces", &self.namespaces.len())
            .field("word", &self.word)
            .field("expansion", &self.expansion)
            .finish()
    }
}

/// The automaton `expansion` matches the word part with (tantivy's own, with its cached
/// tables).
fn word_automaton(word: &str, expansion: Expansion) -> tantivy::Result<DfaWrapper> {
    // The field is not part of the automaton.
    let term = Term::from_field_text(Field::from_field_id(0), word);
    match expansion {
        Expansion::Prefix => FuzzyTermQuery::new_prefix(term, 0, true).automaton(),
        Expansion::Typo => FuzzyTermQuery::new(term, 1, true).automaton(),
    }
}

impl ExpandQuery {
    /// Fails only if the expansion's automaton cannot be built.
    pub fn new(
        fields: Arc<Vec<(Field, Score)>>,
        namespaces: Arc<Vec<String>>,
        word: &str,
        expansion: Expansion,
    ) -> tantivy::Result<Self> {
        Ok(Self {
            fields,
            namespaces,
            word: word.to_string(),
            expansion,
            automaton: Arc::new(word_automaton(word, expansion)?),
        })
    }
}

impl Query for ExpandQuery {
    fn weight(&self, _scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(ExpandWeight {
            fields: self.fields.clone(),
            namespaces: self.namespaces.clone(),
            automaton: self.automaton.clone(),
        }))
    }
}

struct ExpandWeight {
    fields: Arc<Vec<(Field, Score)>>,
    namespaces: Arc<Vec<String>>,
    automaton: Arc<DfaWrapper>,
}

impl ExpandWeight {
    /// Each field's matching terms in `reader`, and how many postings they have in all.
    fn terms(&self, reader: &SegmentReader) -> tantivy::Result<(Vec<FieldTerms>, u64)> {
        let mut found = Vec::with_capacity(self.fields.len());
        let mut postings = 0u64;
        for &(field, weight) in self.fields.iter() {
            let index = reader.inverted_index(field)?;
            let mut terms = Vec::new();
            for namespace in self.namespaces.iter() {
                let automaton = Scoped {
                    namespace: namespace.as_bytes(),
                    word: &*self.automaton,
                };
                let mut stream = index.terms().search(automaton).into_stream()?;
                while stream.advance() {
                    postings += u64::from(stream.value().doc_freq);
                    terms.push(stream.value().clone());
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
        Ok((found, postings))
    }
}

/// One field's matching terms.
struct FieldTerms {
    index: Arc<InvertedIndexReader>,
    weight: Score,
    terms: Vec<TermInfo>,
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

impl Weight for ExpandWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let (fields, postings) = self.terms(reader)?;
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
            let mut docs: Vec<(DocId, Score)> = Vec::with_capacity(found.len());
            for (doc, i) in found {
                let weight = fields[i].weight;
                match docs.last_mut() {
                    Some((seen, score)) if *seen == doc => *score += weight,
                    _ => docs.push((doc, weight)),
                }
            }
            Ok(Box::new(FewMatches { docs, at: 0, boost }))
        } else {
            let mut any = BitSet::with_max_value(reader.max_doc());
            let mut each = Vec::with_capacity(fields.len());
            for field in &fields {
                let mut docs = BitSet::with_max_value(reader.max_doc());
                field.for_each_doc(|doc| {
                    docs.insert(doc);
                    any.insert(doc);
                })?;
                each.push((docs, field.weight));
            }
            Ok(Box::new(ManyMatches {
                any: BitSetDocSet::from(any),
                fields: each,
                boost,
            }))
        }
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        explain_by_seeking(self.scorer(reader, 1.0)?, doc, "ExpandQuery")
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
/// in this many of the segment's documents: a bit set's words (one per 64 documents) would
/// outnumber them.
const SPARSE: u64 = 64;

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
        self.at += self.docs[self.at..].partition_point(|&(d, _)| d < target);
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

/// Many matching documents: a bit set of them all, and one per field for the score.
struct ManyMatches {
    any: BitSetDocSet,
    fields: Vec<(BitSet, Score)>,
    boost: Score,
}

impl DocSet for ManyMatches {
    fn advance(&mut self) -> DocId {
        self.any.advance()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        self.any.seek(target)
    }

    fn doc(&self) -> DocId {
        self.any.doc()
    }

    fn size_hint(&self) -> u32 {
        self.any.size_hint()
    }
}

impl Scorer for ManyMatches {
    fn score(&mut self) -> Score {
        let doc = self.any.doc();
        let weights: Score = self
            .fields
            .iter()
            .filter(|(docs, _)| docs.contains(doc))
            .map(|&(_, weight)| weight)
            .sum();
        weights * self.boost
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

    fn matches(namespace: &str, word: &str, expansion: Expansion, term: &str) -> bool {
        let inner = word_automaton(word, expansion).unwrap();
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

    #[test]
    fn expansions_match_only_inside_their_namespace() {
        assert!(matches("ta:", "depl", Expansion::Prefix, "ta:deploy"));
        assert!(matches("ta:", "depl", Expansion::Prefix, "ta:depl"));
        assert!(!matches("ta:", "depl", Expansion::Prefix, "tb:deploy"));
        assert!(!matches("ta:", "depl", Expansion::Prefix, "ta:dep"));
        assert!(matches("ta:", "deploy", Expansion::Typo, "ta:depoly"));
        assert!(matches("ta:", "deploy", Expansion::Typo, "ta:deploy"));
        assert!(!matches("ta:", "deploy", Expansion::Typo, "tb:depoly"));
        assert!(!matches("ta:", "deploy", Expansion::Typo, "ta:delpyo"));
        // A namespace is never reached by a typo in its own bytes.
        assert!(!matches("ta:", "deploy", Expansion::Typo, "tb:deploy"));
        assert!(!matches("ta:", "deploy", Expansion::Typo, "t:deploy"));
    }
}
