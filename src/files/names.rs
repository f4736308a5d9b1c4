//! Attachment file names: what a client sends is a label, never a path.
//!
//! The stored name is only ever shown and offered back in `Content-Disposition`; blobs live
//! under their hash. Still, a name is cleaned on the way in so that it cannot smuggle a path,
//! hide its real extension behind bidi overrides (`exe.txt` shown for `txt.exe`), or break a
//! header line.

/// What a name that has nothing left becomes.
const FALLBACK_NAME: &str = "file";
/// The longest name most file systems accept, in bytes.
const MAX_NAME_BYTES: usize = 255;
/// An extension (with its dot) up to this long survives shortening; longer is not an extension.
const MAX_EXTENSION_BYTES: usize = 16;

/// A safe display name from what the client sent (`None` when it sent none).
///
/// Keeps the last path component (`/` or `\` separated), drops control, bidi-control and
/// zero-width characters, trims whitespace and dots at both ends, and caps the result at 255
/// bytes while keeping a short extension. Gives `"file"` when nothing is left.
pub fn sanitize_filename(raw: Option<&str>) -> String {
    let last = raw
        .unwrap_or_default()
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default();
    let visible: String = last.chars().filter(|c| !is_hidden_control(*c)).collect();
    let trimmed = trim_name(&visible);
    if trimmed.is_empty() || trimmed == "." || trimmed == ".." {
        return FALLBACK_NAME.to_owned();
    }
    shorten(trimmed)
}

/// A `Content-Disposition` value (RFC 6266) that makes browsers download, never display.
///
/// `filename` is an ASCII fallback for old clients; `filename*` carries the real name as
/// UTF-8. The fallback also replaces `%`, which some browsers would percent-decode.
pub fn content_disposition(filename: &str) -> String {
    format!(
        "attachment; filename=\"{}\"; filename*=UTF-8''{}",
        ascii_fallback(filename),
        percent_encode(filename)
    )
}

/// Characters that have no place in a name: controls (C0, DEL, C1), the bidi controls that
/// can reorder how the rest of the name is displayed, and the zero-width characters that make
/// two names look alike (zero-width space, non-joiner and joiner, word joiner, byte-order
/// mark) or hide where a name really ends.
fn is_hidden_control(c: char) -> bool {
    c.is_control()
        || crate::domain::is_bidi_control(c)
        || matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}')
}

fn trim_name(name: &str) -> &str {
    name.trim_matches(|c: char| c == '.' || c.is_whitespace())
}

/// Caps `name` at [`MAX_NAME_BYTES`], cutting the stem so a short extension survives.
fn shorten(name: &str) -> String {
    if name.len() <= MAX_NAME_BYTES {
        return name.to_owned();
    }
    let extension = name
        .rfind('.')
        .map(|dot| &name[dot..])
        .filter(|ext| ext.len() > 1 && ext.len() <= MAX_EXTENSION_BYTES)
        .unwrap_or_default();
    let stem = &name[..name.len() - extension.len()];
    let stem = truncate_to_boundary(stem, MAX_NAME_BYTES - extension.len());
    format!("{}{extension}", trim_name(stem))
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
fn truncate_to_boundary(text: &str, max: usize) -> &str {
    let end = (0..=max.min(text.len()))
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or_default();
    &text[..end]
}

fn ascii_fallback(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '"' | '\\' | '%' => '_',
            c if c.is_ascii() && !c.is_ascii_control() => c,
            _ => '_',
        })
        .collect()
}

/// Percent-encodes everything but RFC 5987 `attr-char`, byte by byte of the UTF-8 form.
fn percent_encode(name: &str) -> String {
    let mut encoded = String::with_capacity(name.len());
    for byte in name.bytes() {
        if is_attr_char(byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

fn is_attr_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(
            byte,
            b'!' | b'#' | b'$' | b'&' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(raw: &str) -> String {
        sanitize_filename(Some(raw))
    }

    #[test]
    fn keeps_only_the_last_path_component() {
        assert_eq!(clean("../../etc/passwd"), "passwd");
        assert_eq!(clean("C:\\evil\\a.exe"), "a.exe");
        assert_eq!(clean("/abs/dir/"), "file");
        assert_eq!(clean("mixed/sep\\arated.txt"), "arated.txt");
    }

    #[test]
    fn dot_names_fall_back() {
        assert_eq!(clean(".."), "file");
        assert_eq!(clean("."), "file");
        assert_eq!(clean("dir/.."), "file");
        assert_eq!(clean(" . . "), "file");
    }

    #[test]
    fn empty_and_missing_fall_back() {
        assert_eq!(sanitize_filename(None), "file");
        assert_eq!(clean(""), "file");
        assert_eq!(clean("   "), "file");
        assert_eq!(clean("\u{0}\u{7f}"), "file");
    }

    #[test]
    fn drops_control_characters() {
        assert_eq!(clean("a\u{0}b\r\nc\u{7f}d\u{85}e\u{9b}.txt"), "abcde.txt");
        assert_eq!(clean("report\t.pdf"), "report.pdf");
    }

    #[test]
    fn drops_bidi_overrides() {
        assert_eq!(clean("invoice\u{202E}fdp.exe"), "invoicefdp.exe");
        assert_eq!(clean("\u{2066}a\u{2069}.txt"), "a.txt");
        assert_eq!(clean("\u{202A}\u{202B}\u{202C}\u{202D}x"), "x");
    }

    #[test]
    fn drops_zero_width_characters() {
        assert_eq!(clean("pay\u{200B}roll.pdf"), "payroll.pdf");
        assert_eq!(
            clean("\u{FEFF}report\u{200C}\u{200D}.txt\u{2060}"),
            "report.txt"
        );
        assert_eq!(
            clean("a.exe\u{200B}"),
            "a.exe",
            "nothing hides after the extension"
        );
        assert_eq!(clean("\u{200B}\u{FEFF}"), "file");
    }

    #[test]
    fn trims_spaces_and_dots() {
        assert_eq!(clean("  notes.txt  "), "notes.txt");
        assert_eq!(clean("...hidden..."), "hidden");
        assert_eq!(clean("trailing.exe."), "trailing.exe");
    }

    #[test]
    fn keeps_unicode_names() {
        assert_eq!(clean("résumé 2024.pdf"), "résumé 2024.pdf");
        assert_eq!(clean("报告.docx"), "报告.docx");
        assert_eq!(clean("😀.png"), "😀.png");
    }

    #[test]
    fn long_names_keep_a_short_extension() {
        let name = format!("{}.pdf", "a".repeat(396));
        let short = clean(&name);
        assert_eq!(short.len(), 255);
        assert!(short.ends_with("aaa.pdf"));
    }

    #[test]
    fn long_names_cut_on_a_char_boundary() {
        let name = format!("{}.pdf", "é".repeat(200));
        let short = clean(&name);
        assert!(short.len() <= 255);
        assert!(short.ends_with("é.pdf"));
        let no_ext = "世".repeat(100);
        let short = clean(&no_ext);
        assert_eq!(short.len(), 255);
        assert_eq!(short, "世".repeat(85));
    }

    #[test]
    fn a_long_extension_is_not_kept() {
        let name = format!("{}.{}", "a".repeat(200), "b".repeat(100));
        let short = clean(&name);
        assert_eq!(short.len(), 255);
        assert!(short.starts_with("aaa"));
        assert!(short.ends_with('b'));
    }

    #[test]
    fn disposition_of_an_ascii_name() {
        assert_eq!(
            content_disposition("report.pdf"),
            "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
        );
    }

    #[test]
    fn disposition_escapes_quotes_and_backslashes() {
        assert_eq!(
            content_disposition("a\"b\\c d%.txt"),
            "attachment; filename=\"a_b_c d_.txt\"; filename*=UTF-8''a%22b%5Cc%20d%25.txt"
        );
    }

    #[test]
    fn disposition_of_a_unicode_name() {
        assert_eq!(
            content_disposition("résumé €.pdf"),
            "attachment; filename=\"r_sum_ _.pdf\"; \
             filename*=UTF-8''r%C3%A9sum%C3%A9%20%E2%82%AC.pdf"
        );
    }

    #[test]
    fn disposition_never_breaks_the_header_line() {
        let value = content_disposition("a\r\nSet-Cookie: x=1");
        assert!(!value.contains(['\r', '\n']));
    }
}
