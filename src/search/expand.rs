//! Prefix and typo matches that stay inside the caller's namespaces.
//!
//! Every indexed text term is `<namespace><word>` (see [`super::namespace`]). A prefix or typo
//! expansion runs its automaton over the word part only, after the namespace bytes matched
//! exactly: it never reaches a word of a namespace the caller was not given, so it reads only
//! the posting lists of what the caller may see.

use std::sync::Arc;

use tantivy::query::{
    BitSetDocSet, ConstScorer, DfaWrapper, EnableScoring, Explanation, FuzzyTermQuery, Query,
    Scorer, Weight,
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

/// Matches the terms of `field` that are one of `namespaces` followed by a word the
/// expansion of `word` matches; every match scores the query's boost. What the index calls
/// an automaton query, restricted to namespaces.
#[derive(Clone)]
pub struct ExpandQuery {
    field: Field,
    namespaces: Arc<Vec<String>>,
    word: String,
    expansion: Expansion,
    /// The automaton of the word part, built once for every field the word is looked up in.
    automaton: Arc<DfaWrapper>,
}

impl std::fmt::Debug for ExpandQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExpandQuery")
            .field("field", &self.field)
            .field("namespaces", &self.namespaces.len())
            .field("word", &self.word)
            .field("expansion", &self.expansion)
            .finish()
    }
}

/// The automaton `expansion` matches the word part with (tantivy's own, with its cached
/// tables), to share between the [`ExpandQuery`]s of one word.
pub fn word_automaton(word: &str, expansion: Expansion) -> tantivy::Result<Arc<DfaWrapper>> {
    // The field is not part of the automaton.
    let term = Term::from_field_text(Field::from_field_id(0), word);
    Ok(Arc::new(match expansion {
        Expansion::Prefix => FuzzyTermQuery::new_prefix(term, 0, true).automaton()?,
        Expansion::Typo => FuzzyTermQuery::new(term, 1, true).automaton()?,
    }))
}

impl ExpandQuery {
    /// `automaton`: [`word_automaton`]`(word, expansion)`.
    pub fn new(
        field: Field,
        namespaces: Arc<Vec<String>>,
        word: &str,
        expansion: Expansion,
        automaton: Arc<DfaWrapper>,
    ) -> Self {
        Self {
            field,
            namespaces,
            word: word.to_string(),
            expansion,
            automaton,
        }
    }
}

impl Query for ExpandQuery {
    fn weight(&self, _scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(ExpandWeight {
            field: self.field,
            namespaces: self.namespaces.clone(),
            automaton: self.automaton.clone(),
        }))
    }
}

struct ExpandWeight {
    field: Field,
    namespaces: Arc<Vec<String>>,
    automaton: Arc<DfaWrapper>,
}

impl Weight for ExpandWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let index = reader.inverted_index(self.field)?;
        let mut terms = Vec::new();
        for namespace in self.namespaces.iter() {
            let automaton = Scoped {
                namespace: namespace.as_bytes(),
                word: &*self.automaton,
            };
            let mut found = index.terms().search(automaton).into_stream()?;
            while found.advance() {
                terms.push(found.value().clone());
            }
        }
        let postings: u64 = terms.iter().map(|t| u64::from(t.doc_freq)).sum();
        let each_doc = |insert: &mut dyn FnMut(DocId)| -> tantivy::Result<()> {
            for term in &terms {
                let mut block =
                    index.read_block_postings_from_terminfo(term, IndexRecordOption::Basic)?;
                while !block.docs().is_empty() {
                    block.docs().iter().for_each(|&doc| insert(doc));
                    block.advance();
                }
            }
            Ok(())
        };
        // A typo's few matches are a short sorted list; a common prefix's many, a bit set
        // (one bit per document of the segment).
        if postings.saturating_mul(SPARSE) < u64::from(reader.max_doc()) {
            let mut docs = Vec::with_capacity(postings as usize);
            each_doc(&mut |doc| docs.push(doc))?;
            docs.sort_unstable();
            docs.dedup();
            Ok(Box::new(ConstScorer::new(SortedDocs::new(docs), boost)))
        } else {
            let mut docs = BitSet::with_max_value(reader.max_doc());
            each_doc(&mut |doc| {
                docs.insert(doc);
            })?;
            Ok(Box::new(ConstScorer::new(BitSetDocSet::from(docs), boost)))
        }
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.seek(doc) == doc {
            Ok(Explanation::new("ExpandQuery", 1.0))
        } else {
            Err(TantivyError::InvalidArgument(
                "the document does not match".to_string(),
            ))
        }
    }
}

/// An expansion's matches are kept as a sorted list when its postings number fewer than one
/// in this many of the segment's documents: a bit set's words (one per 64 documents) would
/// outnumber them.
const SPARSE: u64 = 64;

/// Documents in a sorted list without repeats.
struct SortedDocs {
    docs: Vec<DocId>,
    at: usize,
}

impl SortedDocs {
    fn new(docs: Vec<DocId>) -> Self {
        Self { docs, at: 0 }
    }
}

impl DocSet for SortedDocs {
    fn advance(&mut self) -> DocId {
        self.at = (self.at + 1).min(self.docs.len());
        self.doc()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        self.at += self.docs[self.at..].partition_point(|&d| d < target);
        self.doc()
    }

    fn doc(&self) -> DocId {
        self.docs.get(self.at).copied().unwrap_or(TERMINATED)
    }

    fn size_hint(&self) -> u32 {
        (self.docs.len() - self.at) as u32
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
            word: &*inner,
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
