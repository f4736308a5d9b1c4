//! What a file is, judged from its first bytes, and what we dare call it on the wire.
//!
//! The client's `Content-Type` is never trusted: anyone can upload an HTML page labelled
//! `image/png`. `sniff` looks at the bytes; `served_type` then turns anything a browser
//! could execute (HTML, SVG, XML, JavaScript) into `application/octet-stream`, so an attachment
//! can never run as a page of our origin. The HTTP layer adds `Content-Disposition: attachment`
//! and `X-Content-Type-Options: nosniff` on top; this module is one of several locks.

/// The type of anything we cannot, or will not, name.
pub const OCTET_STREAM: &str = "application/octet-stream";
/// What [`sniff`] calls valid UTF-8 text.
pub const TEXT_PLAIN: &str = "text/plain";
/// What [`served_type`] sends for [`TEXT_PLAIN`]: the charset stops browsers from guessing one.
pub const TEXT_PLAIN_UTF8: &str = "text/plain; charset=utf-8";

const HTML: &str = "text/html";
const XHTML: &str = "application/xhtml+xml";
const SVG: &str = "image/svg+xml";
const XML: &str = "application/xml";

/// How far into the file `<svg` or `<html` may appear for the file to count as SVG or XHTML.
const MARKUP_WINDOW: usize = 1024;

/// Tags that make a browser treat a text as HTML (the WHATWG MIME sniffing list), lowercase.
/// `<!--` is handled apart: an SVG file may start with a comment too.
const HTML_TAGS: &[&[u8]] = &[
    b"<!doctype html",
    b"<html",
    b"<head",
    b"<script",
    b"<iframe",
    b"<h1",
    b"<div",
    b"<font",
    b"<table",
    b"<a",
    b"<style",
    b"<title",
    b"<b",
    b"<body",
    b"<br",
    b"<p",
];

/// Types we are willing to send as they are: inert in a browser (images, media, archives,
/// office documents). Anything not listed is sent as [`OCTET_STREAM`]. Office Open XML types
/// (`.docx`, `.xlsx`, ...) are absent on purpose: every type naming `xml` is refused, and a
/// download works just as well as `application/octet-stream`.
const PASSIVE_TYPES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/avif",
    "image/heif",
    "image/jxl",
    "image/jp2",
    "image/bmp",
    "image/tiff",
    "image/vnd.microsoft.icon",
    "video/mp4",
    "video/x-m4v",
    "video/webm",
    "video/quicktime",
    "video/x-matroska",
    "video/x-msvideo",
    "video/mpeg",
    "audio/mpeg",
    "audio/ogg",
    "audio/opus",
    "audio/aac",
    "audio/m4a",
    "audio/x-flac",
    "audio/x-wav",
    "audio/midi",
    "application/pdf",
    "application/zip",
    "application/gzip",
    "application/x-tar",
    "application/x-bzip2",
    "application/x-xz",
    "application/zstd",
    "application/x-7z-compressed",
    "application/vnd.rar",
    "application/epub+zip",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
    "application/rtf",
    "application/vnd.sqlite3",
];

/// The MIME type of a file judged from its first bytes (`head`, up to 8 KiB) alone.
///
/// Binary formats come from `infer`; markup and text are judged here, because `infer`'s text
/// rules are narrower than what a browser would sniff. An empty head gives [`OCTET_STREAM`]:
/// no bytes, no evidence.
pub fn sniff(head: &[u8]) -> &'static str {
    if head.is_empty() {
        return OCTET_STREAM;
    }
    if let Some(kind) = infer::get(head).filter(|k| k.matcher_type() != infer::MatcherType::Text) {
        return kind.mime_type();
    }
    sniff_text(head)
}

/// Every `Content-Type` [`served_type`] can answer with (for the API's documentation).
pub fn served_types() -> impl Iterator<Item = &'static str> {
    PASSIVE_TYPES
        .iter()
        .copied()
        .chain([TEXT_PLAIN_UTF8, OCTET_STREAM])
}

/// The `Content-Type` to send for a file whose sniffed type is `sniffed`.
///
/// Active types (anything naming HTML, XML or a script language) become [`OCTET_STREAM`];
/// so does every type not in a fixed list of inert ones.
pub fn served_type(sniffed: &str) -> &'static str {
    let essence = sniffed
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if is_active(&essence) {
        return OCTET_STREAM;
    }
    if essence == TEXT_PLAIN {
        return TEXT_PLAIN_UTF8;
    }
    PASSIVE_TYPES
        .iter()
        .find(|passive| **passive == essence)
        .copied()
        .unwrap_or(OCTET_STREAM)
}

/// Whether a browser could run content of this (lowercase) type as a page or a script.
fn is_active(essence: &str) -> bool {
    const MARKERS: &[&str] = &[
        "html",
        "xml",
        "javascript",
        "ecmascript",
        "jscript",
        "livescript",
    ];
    MARKERS.iter().any(|marker| essence.contains(marker))
}

/// Markup first (it is also text), then plain text, then give up.
fn sniff_text(head: &[u8]) -> &'static str {
    let markup = strip_bom_and_whitespace(head);
    let window = &markup[..markup.len().min(MARKUP_WINDOW)];
    if HTML_TAGS.iter().any(|tag| starts_with_tag(markup, tag)) {
        HTML
    } else if markup.starts_with(b"<") && contains_ignore_case(window, b"<svg") {
        SVG
    } else if starts_with_ignore_case(markup, b"<!--") {
        HTML
    } else if starts_with_ignore_case(markup, b"<?xml") {
        if contains_ignore_case(window, b"<html") {
            XHTML
        } else {
            XML
        }
    } else if is_utf8_text(head) {
        TEXT_PLAIN
    } else {
        OCTET_STREAM
    }
}

fn strip_bom_and_whitespace(head: &[u8]) -> &[u8] {
    let without_bom = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    without_bom.trim_ascii_start()
}

/// `<tag` followed by something that ends a tag name (or by the end of what we have: better
/// to call a cut-off `<b` HTML than to miss it).
fn starts_with_tag(text: &[u8], tag: &[u8]) -> bool {
    if !starts_with_ignore_case(text, tag) {
        return false;
    }
    match text.get(tag.len()) {
        None => true,
        Some(next) => matches!(next, b' ' | b'>' | b'/' | b'\t' | b'\n' | b'\r' | b'\x0c'),
    }
}

fn starts_with_ignore_case(text: &[u8], prefix: &[u8]) -> bool {
    text.get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
}

fn contains_ignore_case(text: &[u8], needle: &[u8]) -> bool {
    text.windows(needle.len())
        .any(|window| window.eq_ignore_ascii_case(needle))
}

/// Valid UTF-8 without NULs. The head is cut at 8 KiB, possibly inside a character, so an
/// incomplete sequence at the very end is allowed.
fn is_utf8_text(head: &[u8]) -> bool {
    if head.contains(&0) {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(error) => error.error_len().is_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";

    #[test]
    fn png_is_png() {
        assert_eq!(sniff(PNG), "image/png");
        assert_eq!(served_type(sniff(PNG)), "image/png");
    }

    #[test]
    fn pdf_is_pdf() {
        let pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n";
        assert_eq!(sniff(pdf), "application/pdf");
        assert_eq!(served_type("application/pdf"), "application/pdf");
    }

    #[test]
    fn html_with_leading_whitespace_and_uppercase() {
        assert_eq!(sniff(b"  \r\n\t<!DOCTYPE HTML><p>hi"), "text/html");
        assert_eq!(sniff(b"\xEF\xBB\xBF\n<HtMl lang=en>"), "text/html");
        assert_eq!(sniff(b"<SCRIPT>alert(1)</SCRIPT>"), "text/html");
        assert_eq!(sniff(b"<iframe src=x>"), "text/html");
        assert_eq!(sniff(b"<body/onload=alert(1)>"), "text/html");
        assert_eq!(sniff(b"<!-- hi --><b>x</b>"), "text/html");
        assert_eq!(sniff(b"<b"), "text/html");
        assert_eq!(served_type(sniff(b"<html>")), OCTET_STREAM);
    }

    #[test]
    fn text_that_merely_starts_like_a_tag_is_text() {
        assert_eq!(sniff(b"<author> wrote this"), TEXT_PLAIN);
        assert_eq!(sniff(b"<bold claim"), TEXT_PLAIN);
    }

    #[test]
    fn svg_is_svg_and_never_served_as_such() {
        let svg = b"<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\">\
                    <script>alert(1)</script></svg>";
        assert_eq!(sniff(svg), SVG);
        assert_eq!(sniff(b"<!-- made by hand -->\n<SVG onload=alert(1)>"), SVG);
        assert_eq!(served_type(SVG), OCTET_STREAM);
    }

    #[test]
    fn svg_far_from_the_start_is_not_svg() {
        let mut late = b"<?xml version=\"1.0\"?>".to_vec();
        late.extend(std::iter::repeat_n(b' ', MARKUP_WINDOW));
        late.extend_from_slice(b"<svg>");
        assert_eq!(sniff(&late), XML);
    }

    #[test]
    fn xml_and_xhtml() {
        assert_eq!(sniff(b"<?xml version=\"1.0\"?><note/>"), XML);
        assert_eq!(sniff(b"<?xml version=\"1.0\"?><html xmlns=\"x\">"), XHTML);
        assert_eq!(served_type(XML), OCTET_STREAM);
        assert_eq!(served_type(XHTML), OCTET_STREAM);
    }

    #[test]
    fn plain_utf8_text() {
        assert_eq!(sniff(b"hello, world\n"), TEXT_PLAIN);
        assert_eq!(sniff("grüße, 世界".as_bytes()), TEXT_PLAIN);
        assert_eq!(served_type(TEXT_PLAIN), TEXT_PLAIN_UTF8);
    }

    #[test]
    fn a_character_cut_at_the_end_of_head_is_still_text() {
        let cut = &"ab世".as_bytes()[..4];
        assert_eq!(sniff(cut), TEXT_PLAIN);
        let broken_inside = b"ab\xE4\xB8 cd";
        assert_eq!(sniff(broken_inside), OCTET_STREAM);
    }

    #[test]
    fn binary_garbage_is_octet_stream() {
        assert_eq!(sniff(b"\x01\x02\x03\xff\xfe\x00\x9c"), OCTET_STREAM);
        assert_eq!(sniff(b"text with a \0 nul"), OCTET_STREAM);
    }

    #[test]
    fn empty_input_is_octet_stream() {
        assert_eq!(sniff(b""), OCTET_STREAM);
    }

    #[test]
    fn scripts_and_unknown_types_are_served_as_octet_stream() {
        for active in [
            "text/html",
            "TEXT/HTML; charset=utf-8",
            "application/xhtml+xml",
            "text/xml",
            "application/javascript",
            "text/javascript",
            "application/x-ecmascript",
            "text/jscript",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/x-shockwave-flash",
            "text/css",
            "made/up",
            "",
        ] {
            assert_eq!(served_type(active), OCTET_STREAM, "{active}");
        }
    }

    #[test]
    fn served_type_ignores_parameters_and_case() {
        assert_eq!(served_type("Image/PNG; foo=bar"), "image/png");
        assert_eq!(served_type("text/plain; charset=latin1"), TEXT_PLAIN_UTF8);
    }
}
