//! What a user typed, turned into words and phrases.
//!
//! The syntax is forgiving: every input gives a query or one clear reason why not.
//! - Words are split and normalized like indexed text (letters and digits; case and accents
//!   folded). Every word must match somewhere: in the title, labels, description or comments.
//! - `"quoted words"` must appear in that order. A quote left open runs to the end.
//! - The last word, when the text does not end in a space, also matches as a prefix
//!   (typeahead), once it has 2 or more characters.
//! - Words of 5 or more characters also match with one typo (an insertion, deletion,
//!   substitution or swap of two neighbours).
//! - Everything else (operators, punctuation, control characters) separates words.

use tantivy::tokenizer::TextAnalyzer;

/// The longest `q`, in bytes.
pub const MAX_QUERY_BYTES: usize = 1024;
/// The most words and phrases one query may have.
pub const MAX_QUERY_TERMS: usize = 32;
/// Words this long or longer also match with one edit.
pub const FUZZY_MIN_CHARS: usize = 5;
/// A last word this long or longer also matches as a prefix.
pub const PREFIX_MIN_CHARS: usize = 2;

/// One normalized word and how loosely it may match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    /// Also matches words it begins.
    pub prefix: bool,
    /// Also matches words one edit away.
    pub fuzzy: bool,
}

/// A parsed query: words that must each match, and phrases that must each appear.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedQuery {
    pub words: Vec<Word>,
    pub phrases: Vec<Vec<String>>,
}

impl ParsedQuery {
    /// Parses `raw` with the index's analyzer. Errors say what is wrong, for a 422.
    pub fn parse(raw: &str, analyzer: &mut TextAnalyzer) -> Result<Self, String> {
        if raw.len() > MAX_QUERY_BYTES {
            return Err(format!("must be at most {MAX_QUERY_BYTES} bytes"));
        }
        let cleaned: String = raw
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let typing_last_word = cleaned
            .chars()
            .last()
            .is_some_and(|c| !c.is_whitespace() && c != '"');
        let mut query = ParsedQuery::default();
        let segments: Vec<&str> = cleaned.split('"').collect();
        let last_segment = segments.len() - 1;
        for (i, segment) in segments.iter().enumerate() {
            let tokens = tokens(analyzer, segment);
            let quoted = i % 2 == 1;
            if quoted && tokens.len() > 1 {
                query.phrases.push(tokens);
                continue;
            }
            let count = tokens.len();
            for (j, text) in tokens.into_iter().enumerate() {
                let chars = text.chars().count();
                let last = !quoted && i == last_segment && j + 1 == count && typing_last_word;
                let word = Word {
                    prefix: last && chars >= PREFIX_MIN_CHARS,
                    fuzzy: !quoted && chars >= FUZZY_MIN_CHARS,
                    text,
                };
                match query.words.iter_mut().find(|w| w.text == word.text) {
                    Some(seen) => {
                        seen.prefix |= word.prefix;
                        seen.fuzzy &= word.fuzzy;
                    }
                    None => query.words.push(word),
                }
            }
        }
        query.phrases.dedup();
        if query.words.is_empty() && query.phrases.is_empty() {
            return Err("must contain at least one word or number".into());
        }
        if query.words.len() + query.phrases.len() > MAX_QUERY_TERMS {
            return Err(format!(
                "may have at most {MAX_QUERY_TERMS} words and phrases"
            ));
        }
        Ok(query)
    }

    /// Whether an indexed token (already normalized) is one this query looks for: what
    /// highlights mark.
    pub fn matches_token(&self, token: &str) -> bool {
        self.words.iter().any(|w| {
            w.text == token
                || (w.prefix && token.starts_with(w.text.as_str()))
                || (w.fuzzy && within_one_edit(&w.text, token))
        }) || self.phrases.iter().flatten().any(|t| t == token)
    }
}

/// The normalized tokens of `text`.
pub fn tokens(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while stream.advance() {
        out.push(stream.token().text.clone());
    }
    out
}

/// At most one insertion, deletion, substitution or swap of neighbours apart (what the
/// index's fuzzy match allows).
pub fn within_one_edit(a: &str, b: &str) -> bool {
    // Highlighting asks this of every token of every hit: ASCII words compare as bytes,
    // without collecting characters.
    if a.is_ascii() && b.is_ascii() {
        return one_edit_apart(a.as_bytes(), b.as_bytes());
    }
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    one_edit_apart(&a, &b)
}

fn one_edit_apart<T: PartialEq>(a: &[T], b: &[T]) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    match long.len() - short.len() {
        0 => {
            let mut diff = (0..short.len()).filter(|&i| short[i] != long[i]);
            match (diff.next(), diff.next(), diff.next()) {
                (None, ..) | (Some(_), None, _) => true,
                (Some(i), Some(j), None) => {
                    j == i + 1 && short[i] == long[j] && short[j] == long[i]
                }
                _ => false,
            }
        }
        1 => {
            let first = (0..short.len())
                .find(|&i| short[i] != long[i])
                .unwrap_or(short.len());
            short[first..] == long[first + 1..]
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<ParsedQuery, String> {
        ParsedQuery::parse(raw, &mut super::super::analyzer())
    }

    fn word(text: &str, prefix: bool, fuzzy: bool) -> Word {
        Word {
            text: text.into(),
            prefix,
            fuzzy,
        }
    }

    #[test]
    fn words_are_normalized_and_the_last_one_is_a_prefix_while_typing() {
        let q = parse("Fix the Überlauf").unwrap();
        assert_eq!(
            q.words,
            vec![
                word("fix", false, false),
                word("the", false, false),
                word("uberlauf", true, true),
            ]
        );
        let q = parse("Fix the Überlauf ").unwrap();
        assert!(!q.words[2].prefix, "a trailing space ends the word");
        assert!(
            !parse("a").unwrap().words[0].prefix,
            "one letter is no prefix"
        );
    }

    #[test]
    fn quotes_make_phrases_and_an_open_quote_runs_to_the_end() {
        let q = parse(r#"deploy "release notes" now"#).unwrap();
        assert_eq!(q.phrases, vec![vec!["release".to_string(), "notes".into()]]);
        assert_eq!(q.words.len(), 2);
        let q = parse(r#"deploy "release notes"#).unwrap();
        assert_eq!(q.phrases.len(), 1);
        let q = parse(r#""single""#).unwrap();
        assert_eq!(q.words, vec![word("single", false, false)], "quoted: exact");
    }

    #[test]
    fn operators_and_control_characters_separate_words() {
        let q = parse("+alpha -beta* AND (gamma) \u{0}\u{7}delta:").unwrap();
        let texts: Vec<&str> = q.words.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(texts, ["alpha", "beta", "and", "gamma", "delta"]);
    }

    #[test]
    fn empty_oversize_and_overlong_queries_are_refused() {
        for raw in ["", "   ", "\"\"", "+-*()", "\u{1}"] {
            assert!(parse(raw).is_err(), "{raw:?}");
        }
        assert!(parse(&"a".repeat(MAX_QUERY_BYTES + 1)).is_err());
        assert!(
            parse(&"a ".repeat(MAX_QUERY_BYTES / 2)).is_ok(),
            "repeats collapse"
        );
        let many: String = (0..=MAX_QUERY_TERMS).map(|i| format!("w{i} ")).collect();
        assert!(parse(&many).is_err());
    }

    #[test]
    fn one_edit_means_one_insertion_deletion_substitution_or_swap() {
        for (a, b) in [
            ("deploy", "deploy"),
            ("deploy", "deplpy"),
            ("deploy", "deply"),
            ("deploy", "deploys"),
            ("deploy", "edploy"),
            ("deploy", "depoly"),
        ] {
            assert!(within_one_edit(a, b), "{a} {b}");
        }
        for (a, b) in [
            ("deploy", "dpeloy2"),
            ("deploy", "delpyo"),
            ("deploy", "dep"),
        ] {
            assert!(!within_one_edit(a, b), "{a} {b}");
        }
    }

    #[test]
    fn highlight_matching_follows_the_query() {
        let q = parse("release depl").unwrap();
        assert!(q.matches_token("release"));
        assert!(q.matches_token("relaese"), "one swap");
        assert!(q.matches_token("deployment"), "prefix");
        assert!(!q.matches_token("dep"));
    }
}
