//! Markdown as pages show it: task descriptions and comments, rendered with pulldown-cmark and
//! then sanitized with ammonia, so what a user writes can never run script or restyle the page.
//!
//! Two layers, each enough on its own for the common attacks:
//! 1. Raw HTML in the source is not passed through: it is shown as the text it is.
//! 2. The rendered HTML is cleaned by ammonia (its default allow-list, without images, which the
//!    page's CSP would block anyway), links only to `http`, `https` and `mailto` (or relative),
//!    each marked `rel="noopener noreferrer nofollow"`.

use std::collections::HashSet;
use std::sync::OnceLock;

use pulldown_cmark::{CowStr, Event, Options, Parser, html};

/// The cleaner, built once.
fn cleaner() -> &'static ammonia::Builder<'static> {
    static CLEANER: OnceLock<ammonia::Builder<'static>> = OnceLock::new();
    CLEANER.get_or_init(|| {
        let mut builder = ammonia::Builder::default();
        builder
            .rm_tags(["img"])
            .url_schemes(HashSet::from(["http", "https", "mailto"]))
            .link_rel(Some("noopener noreferrer nofollow"));
        builder
    })
}

/// Renders Markdown to sanitized HTML, safe to insert into a page as is.
pub fn render(source: &str) -> String {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_GFM;
    let events = Parser::new_ext(source, options).map(|event| match event {
        // Raw HTML is shown as text, never interpreted.
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        // A task-list box as a character: the cleaner drops form controls.
        Event::TaskListMarker(done) => {
            Event::Text(CowStr::Borrowed(if done { "☑ " } else { "☐ " }))
        }
        other => other,
    });
    let mut unsafe_html = String::with_capacity(source.len() * 3 / 2);
    html::push_html(&mut unsafe_html, events);
    cleaner().clean(&unsafe_html).to_string()
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn markdown_becomes_html() {
        let html = render("# Plan\n\n- one\n- **two**\n\n`code` and [docs](https://example.com/a)");
        assert!(html.contains("<h1>Plan</h1>"), "{html}");
        assert!(html.contains("<li><strong>two</strong></li>"), "{html}");
        assert!(html.contains("<code>code</code>"), "{html}");
        assert!(
            html.contains(
                "<a href=\"https://example.com/a\" rel=\"noopener noreferrer nofollow\">docs</a>"
            ),
            "{html}"
        );
        let tasks = render("- [x] done\n- [ ] open");
        assert!(
            tasks.contains("☑ done") && tasks.contains("☐ open"),
            "{tasks}"
        );
    }

    #[test]
    fn scripts_and_raw_html_are_text() {
        let html = render("hello <script>alert(1)</script>\n\n<script>alert(2)</script>");
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        let block = render("<div onmouseover=\"alert(1)\">x</div>");
        assert!(!block.contains("<div"), "{block}");
    }

    #[test]
    fn javascript_and_data_links_lose_their_target() {
        for link in [
            "[x](javascript:alert(1))",
            "[x](JAVASCRIPT:alert(1))",
            "[x](java\tscript:alert(1))",
            "[x](data:text/html;base64,PHNjcmlwdD4=)",
            "<javascript:alert(1)>",
            "[x](vbscript:msgbox)",
        ] {
            let html = render(link).to_lowercase();
            assert!(!html.contains("href=\"java"), "{link}: {html}");
            assert!(!html.contains("href=\"vbscript"), "{link}: {html}");
            assert!(!html.contains("href=\"data:"), "{link}: {html}");
        }
    }

    #[test]
    fn event_handlers_and_images_are_removed() {
        let html = render("![x](https://evil.example/p.png \"t\") <img src=x onerror=alert(1)>");
        // No element carries the handler: what was raw HTML is text.
        assert!(!html.contains("<img"), "{html}");
        // What was raw HTML shows as text, escaped.
        assert!(html.contains("&lt;img"), "{html}");
        let link = render("[a](https://example.com \"x\\\" onclick=\\\"alert(1)\")");
        // The quotes stay inside the title: no attribute of its own.
        assert!(!link.contains("onclick=\""), "{link}");
    }

    #[test]
    fn relative_and_mail_links_stay() {
        let html = render("[task](/tasks/1) and <mailto:a@example.com>");
        assert!(html.contains("href=\"/tasks/1\""), "{html}");
        assert!(html.contains("href=\"mailto:a@example.com\""), "{html}");
    }
}
