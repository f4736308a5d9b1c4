//! One word typed alone, looked up exactly: the union of its posting lists (one per text
//! field, each scored BM25 times the field's weight), the best first.
//!
//! tantivy prunes such a union with block-max WAND, which for a common word scores nearly
//! every document that has it in its title: each block of the title list has a short title
//! with the word and each block of the description list a description that repeats it, so
//! the blocks' maxima together always reach the threshold, even where no single document
//! does. This visit (MaxScore, with block maxima as bounds) walks only the lists that can
//! reach the threshold on their own ("essential"), scores a document there, and reads the
//! other lists for it only while its score plus their bounds at it can still beat the
//! threshold: a document whose title score is too low is passed over without its
//! description being read.

use tantivy::fieldnorm::FieldNormReader;
use tantivy::postings::BlockSegmentPostings;
use tantivy::query::{
    Bm25Weight, BooleanQuery, BoostQuery, EnableScoring, Explanation, Query, Scorer, TermQuery,
    Weight,
};
use tantivy::schema::IndexRecordOption;
use tantivy::{DocId, Score, SegmentReader, TERMINATED, Term};

/// The word's term in each field, with the field's weight: any may match.
#[derive(Debug, Clone)]
pub struct OneWord {
    terms: Vec<(Term, Score)>,
}

impl OneWord {
    pub fn new(terms: Vec<(Term, Score)>) -> Self {
        Self { terms }
    }

    /// The same as tantivy's union of the boosted term queries.
    fn union(&self) -> BooleanQuery {
        BooleanQuery::union(
            (self.terms.iter())
                .map(|(term, boost)| {
                    let query = TermQuery::new(term.clone(), IndexRecordOption::WithFreqs);
                    Box::new(BoostQuery::new(Box::new(query), *boost)) as Box<dyn Query>
                })
                .collect(),
        )
    }
}

impl Query for OneWord {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let lists = match scoring {
            // A full block's stored maximum was found under its own segment's average field
            // length; scores use the average of all segments. With one segment they agree;
            // with several a block's real maximum may be higher, so the union (whose block-max
            // WAND relies on the same maxima, as it always did) visits them instead.
            EnableScoring::Enabled {
                statistics_provider,
                searcher,
            } if searcher.segment_readers().len() == 1 => (self.terms.iter())
                .map(|(term, boost)| {
                    let bm25 =
                        Bm25Weight::for_terms(statistics_provider, std::slice::from_ref(term))?;
                    Ok((term.clone(), bm25.boost_by(*boost)))
                })
                .collect::<tantivy::Result<_>>()?,
            _ => Vec::new(),
        };
        Ok(Box::new(OneWordWeight {
            union: self.union().weight(scoring)?,
            lists,
        }))
    }
}

/// Scores, counts and explains as the union does; visits the best with [`visit`].
struct OneWordWeight {
    union: Box<dyn Weight>,
    /// Each field's term and its BM25 weight, boosted (none when scoring is off or the
    /// searcher has several segments: the union visits then).
    lists: Vec<(Term, Bm25Weight)>,
}

impl Weight for OneWordWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        self.union.scorer(reader, boost)
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        self.union.explain(reader, doc)
    }

    fn for_each_pruning(
        &self,
        threshold: Score,
        reader: &SegmentReader,
        callback: &mut dyn FnMut(DocId, Score) -> Score,
    ) -> tantivy::Result<()> {
        if self.lists.is_empty() {
            return self.union.for_each_pruning(threshold, reader, callback);
        }
        let mut lists = Vec::with_capacity(self.lists.len());
        for (term, bm25) in &self.lists {
            let index = reader.inverted_index(term.field())?;
            let Some(info) = index.get_term_info(term)? else {
                continue;
            };
            let postings =
                index.read_block_postings_from_terminfo(&info, IndexRecordOption::WithFreqs)?;
            let fieldnorms = match reader.fieldnorms_readers().get_field(term.field())? {
                Some(fieldnorms) => fieldnorms,
                None => FieldNormReader::constant(reader.max_doc(), 1),
            };
            let list = List {
                postings,
                at: 0,
                fieldnorms,
                // The shortest field and an endless repeat: no document scores more.
                // (`Bm25Weight::max_score` takes the longest field length.)
                max: bm25.score(0, u32::MAX),
                bm25: bm25.clone(),
                part: 0,
            };
            if list.doc() != TERMINATED {
                lists.push(list);
            }
        }
        visit(lists, threshold, callback);
        Ok(())
    }
}

/// A posting list read a block at a time, and how its documents score.
struct List {
    postings: BlockSegmentPostings,
    /// Where in the loaded block.
    at: usize,
    fieldnorms: FieldNormReader,
    bm25: Bm25Weight,
    /// The most any of its documents may score.
    max: Score,
    /// Its place in the sum of a document's score.
    part: usize,
}

impl List {
    fn doc(&self) -> DocId {
        self.postings
            .docs()
            .get(self.at)
            .copied()
            .unwrap_or(TERMINATED)
    }

    fn score(&self) -> Score {
        let doc = self.doc();
        let freq = self.postings.freq(self.at);
        self.bm25.score(self.fieldnorms.fieldnorm_id(doc), freq)
    }

    fn advance(&mut self) {
        self.at += 1;
        if self.at >= self.postings.docs().len() {
            self.postings.advance();
            self.at = 0;
        }
    }

    /// Moves to the first document at or after `target`.
    fn seek(&mut self, target: DocId) {
        let docs = self.postings.docs();
        if docs.last().is_some_and(|&last| last >= target) {
            self.at += docs[self.at..].partition_point(|&d| d < target);
        } else {
            self.at = self.postings.seek(target);
        }
    }

    /// The most this list adds to `doc`'s score: nothing if it does not have `doc`, else its
    /// block's maximum. Moves the list up to `doc` when `doc` is past its loaded block.
    fn bound_at(&mut self, doc: DocId) -> Score {
        if self.doc() < doc && self.postings.docs().last().is_none_or(|&last| last < doc) {
            self.seek(doc);
        }
        if self.doc() > doc {
            0.0
        } else {
            self.postings.block_max_score(&self.fieldnorms, &self.bm25)
        }
    }
}

/// Whether a document whose score is at most `most` cannot beat `threshold`. Sums of a few
/// scores in another order may differ in their last bits: a bound counts as below only with
/// room to spare.
fn cannot_beat(most: Score, threshold: Score) -> bool {
    most * (1.0 + 1e-5) <= threshold
}

/// Calls `callback` with every document of `lists` whose summed score beats the threshold
/// (`threshold`, then what `callback` returns), in document order, as a union would, but
/// without reading what cannot beat it. A document's score is the sum of its lists' scores in
/// the order `lists` come in, whatever the threshold (so each document scores the same on
/// every page).
fn visit(
    mut lists: Vec<List>,
    mut threshold: Score,
    callback: &mut dyn FnMut(DocId, Score) -> Score,
) {
    let mut parts: Vec<Score> = vec![0.0; lists.len()];
    for (i, list) in lists.iter_mut().enumerate() {
        list.part = i;
    }
    // The least maxima first: the lists that may be left unread for a document are a prefix.
    lists.sort_by(|a, b| a.max.total_cmp(&b.max));
    loop {
        // A document in none of the lists past `split` scores at most the sum of the maxima
        // before it, which does not beat the threshold: candidates come from those lists.
        let mut split = 0;
        let mut below = 0.0;
        while split < lists.len() && cannot_beat(below + lists[split].max, threshold) {
            below += lists[split].max;
            split += 1;
        }
        let (rest, essential) = lists.split_at_mut(split);
        let Some(doc) = essential.iter().map(List::doc).min() else {
            return;
        };
        if doc == TERMINATED {
            return;
        }
        parts.fill(0.0);
        let mut score = 0.0;
        for list in essential.iter().filter(|l| l.doc() == doc) {
            parts[list.part] = list.score();
            score += parts[list.part];
        }
        let mut bound: Score = rest.iter_mut().map(|l| l.bound_at(doc)).sum();
        // The other lists, the largest maxima first, while the document can still win.
        let mut wins = !cannot_beat(score + bound, threshold);
        for list in rest.iter_mut().rev() {
            if !wins {
                break;
            }
            bound -= list.bound_at(doc);
            list.seek(doc);
            if list.doc() == doc {
                parts[list.part] = list.score();
                score += parts[list.part];
            }
            wins = !cannot_beat(score + bound.max(0.0), threshold);
        }
        if wins {
            let score: Score = parts.iter().sum();
            if score > threshold {
                threshold = callback(doc, score);
            }
        }
        for list in essential.iter_mut().filter(|l| l.doc() == doc) {
            list.advance();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::query::{BoostQuery, TermQuery};
    use tantivy::schema::{IndexRecordOption, Schema, TEXT};
    use tantivy::{Index, TantivyDocument, Term};

    /// The pruned visit's best are those of scoring every match.
    #[test]
    fn in_one_segment_the_best_are_those_of_scoring_every_match_and_ties_keep_document_order() {
        let mut schema = Schema::builder();
        let title = schema.add_text_field("title", TEXT);
        let body = schema.add_text_field("body", TEXT);
        let note = schema.add_text_field("note", TEXT);
        let index = Index::create_in_ram(schema.build());
        let mut writer = index.writer_with_num_threads(1, 15_000_000).unwrap();
        // Deterministic variety: the word in some titles, often in bodies, now and then in
        // notes, with lengths and repeats that spread the scores (and many equal ones).
        let mut seed = 7u64;
        let mut next = |n: u64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) % n
        };
        for _ in 0..3_000 {
            let mut doc = TantivyDocument::default();
            let words = |with: u64, of: u64| {
                (0..of)
                    .map(|i| if i < with { "deploy" } else { "other" })
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            if next(3) == 0 {
                doc.add_text(title, words(1, 1 + next(6)));
            }
            if next(4) != 0 {
                doc.add_text(body, words(next(4), 5 + next(40)));
            }
            if next(10) == 0 {
                doc.add_text(note, words(1 + next(2), 3 + next(10)));
            }
            writer.add_document(doc).unwrap();
        }
        writer.commit().unwrap();
        let searcher = index.reader().unwrap().searcher();
        let terms = || -> Vec<Box<dyn Query>> {
            [(title, 4.0), (body, 1.0), (note, 0.7)]
                .into_iter()
                .map(|(field, boost)| {
                    let term = TermQuery::new(
                        Term::from_field_text(field, "deploy"),
                        IndexRecordOption::WithFreqs,
                    );
                    Box::new(BoostQuery::new(Box::new(term), boost)) as Box<dyn Query>
                })
                .collect()
        };
        let query = OneWord::new(
            [(title, 4.0), (body, 1.0), (note, 0.7)]
                .into_iter()
                .map(|(field, boost)| (Term::from_field_text(field, "deploy"), boost))
                .collect(),
        );
        for want in [1, 5, 20, 200] {
            // What every match scores (its fields' scores summed in field order), the best
            // first, the earlier document first among equals.
            let scoring = EnableScoring::enabled_from_searcher(&searcher);
            let reader = searcher.segment_reader(0);
            let mut parts: std::collections::BTreeMap<DocId, Score> = Default::default();
            for term in terms() {
                let weight = term.weight(scoring).unwrap();
                weight
                    .for_each(reader, &mut |doc, score| {
                        *parts.entry(doc).or_default() += score
                    })
                    .unwrap();
            }
            let mut all: Vec<(Score, DocId)> = parts.into_iter().map(|(d, s)| (s, d)).collect();
            all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            all.truncate(want);
            // The pruned visit into a list of `want` that keeps the earlier of equals.
            let mut top: Vec<(Score, DocId)> = Vec::new();
            let weight = query.weight(scoring).unwrap();
            weight
                .for_each_pruning(Score::MIN, reader, &mut |doc, score| {
                    top.push((score, doc));
                    top.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                    top.truncate(want);
                    if top.len() < want {
                        Score::MIN
                    } else {
                        top[want - 1].0
                    }
                })
                .unwrap();
            assert_eq!(top, all, "the best {want}");
        }
    }
}
