//! Highlights: the text with what matched wrapped in `<mark>`, everything else HTML-escaped,
//! so a client may insert it as HTML as it is.

use tantivy::tokenizer::TextAnalyzer;

use super::query::ParsedQuery;

/// How much text a description snippet shows, in characters.
pub const SNIPPET_CHARS: usize = 200;
/// How much of that comes before the first match.
const LEAD_CHARS: usize = 40;

/// `text` with every token the query looks for marked, or `None` when nothing matched. With
/// `window`, only about that many characters around the first match are kept, and `…` shows
/// where text was cut.
pub fn highlight(
    analyzer: &mut TextAnalyzer,
    query: &ParsedQuery,
    text: &str,
    window: Option<usize>,
) -> Option<String> {
    let mut marks: Vec<(usize, usize)> = Vec::new();
    // What is kept: all of it, or once the first match is known, the window around it (the
    // rest of the text is not read).
    let mut kept: Option<(usize, usize)> = window.is_none().then_some((0, text.len()));
    let mut stream = analyzer.token_stream(text);
    while stream.advance() {
        let token = stream.token();
        if kept.is_some_and(|(_, end)| token.offset_from >= end) {
            break;
        }
        if query.matches_token(&token.text) {
            marks.push((token.offset_from, token.offset_to));
            if let (None, Some(chars)) = (kept, window) {
                let first = token.offset_from;
                let start = back_to_word_start(text, char_back(text, first, LEAD_CHARS));
                kept = Some((start, char_forward(text, start, chars)));
            }
        }
    }
    let (start, end) = kept.filter(|_| !marks.is_empty())?;
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    let mut at = start;
    for (from, to) in marks {
        if from < at || to > end {
            continue;
        }
        escape_into(&mut out, &text[at..from]);
        out.push_str("<mark>");
        escape_into(&mut out, &text[from..to]);
        out.push_str("</mark>");
        at = to;
    }
    escape_into(&mut out, &text[at..end]);
    if end < text.len() {
        out.push('…');
    }
    Some(out)
}

/// The byte offset `chars` characters before `at`.
fn char_back(text: &str, at: usize, chars: usize) -> usize {
    text[..at]
        .char_indices()
        .rev()
        .nth(chars.saturating_sub(1))
        .map_or(0, |(i, _)| i)
}

/// The byte offset `chars` characters after `at`.
fn char_forward(text: &str, at: usize, chars: usize) -> usize {
    text[at..]
        .char_indices()
        .nth(chars)
        .map_or(text.len(), |(i, _)| at + i)
}

/// `at`, moved forward past a partial word so a snippet does not start mid-word.
fn back_to_word_start(text: &str, at: usize) -> usize {
    if at == 0 {
        return 0;
    }
    match text[at..].find(char::is_whitespace) {
        Some(space) => {
            let after = at + space;
            after + text[after..].chars().next().map_or(0, char::len_utf8)
        }
        None => at,
    }
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(q: &str, text: &str, window: Option<usize>) -> Option<String> {
        let mut analyzer = super::super::analyzer();
        let query = ParsedQuery::parse(q, &mut analyzer).unwrap();
        highlight(&mut analyzer, &query, text, window)
    }

    #[test]
    fn matches_are_marked_and_the_rest_escaped() {
        assert_eq!(
            mark("deploy ", "Deploy <b>the</b> DEPLOY & co", None).unwrap(),
            "<mark>Deploy</mark> &lt;b&gt;the&lt;/b&gt; <mark>DEPLOY</mark> &amp; co"
        );
        assert_eq!(mark("missing ", "nothing here", None), None);
    }

    #[test]
    fn typos_prefixes_and_accents_are_marked_as_they_matched() {
        assert_eq!(
            mark("relaese überl", "Release the Überlauf", None).unwrap(),
            "<mark>Release</mark> the <mark>Überlauf</mark>"
        );
    }

    #[test]
    fn a_window_cuts_around_the_first_match() {
        let text = format!("{} needle {}", "word ".repeat(100), "tail ".repeat(100));
        let snippet = mark("needle ", &text, Some(SNIPPET_CHARS)).unwrap();
        assert!(
            snippet.starts_with('…') && snippet.ends_with('…'),
            "{snippet}"
        );
        assert!(snippet.contains("<mark>needle</mark>"));
        assert!(snippet.chars().count() < SNIPPET_CHARS + 40);
        assert!(!snippet.starts_with("…ord"), "starts at a word: {snippet}");
    }
}
