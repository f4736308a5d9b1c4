//! Static files of the web app, embedded in the binary (`assets/`), served under names that
//! carry a hash of their content so browsers may keep them for a year, gzip-compressed when the
//! browser accepts it. Templates ask [`url`] for a file's current name.

use std::collections::HashMap;
use std::sync::OnceLock;

use poem::http::{StatusCode, header};
use poem::web::Path;
use poem::{IntoResponse, Request, Response, handler};
use rust_embed::Embed;
use sha2::{Digest, Sha256};

use crate::api::encoding::{accepts_gzip, gzip};

#[derive(Embed)]
#[folder = "assets/"]
struct Files;

/// Whether an embedded file is served to browsers (the systemd unit and the licence texts
/// are embedded for other uses, or simply live beside what they describe).
fn is_served(name: &str) -> bool {
    name == "favicon.svg"
        || (name.starts_with("app/") || name.starts_with("vendor/"))
            && (name.ends_with(".js") || name.ends_with(".css") || name.ends_with(".svg"))
}

/// One file as served.
struct Asset {
    content_type: &'static str,
    raw: Vec<u8>,
    /// Kept only when it is smaller than `raw`.
    gzip: Option<Vec<u8>>,
}

struct Catalog {
    /// Hashed name -> the file.
    by_hashed: HashMap<String, Asset>,
    /// Plain name (`app/app.css`) -> the URL path (`/assets/app/app.3f2a9c1e.css`).
    urls: HashMap<String, String>,
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// `app/app.css` with hash `3f2a9c1e` -> `app/app.3f2a9c1e.css`.
fn hashed_name(name: &str, hash: &str) -> String {
    match name.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}.{hash}.{ext}"),
        None => format!("{name}.{hash}"),
    }
}

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let mut by_hashed = HashMap::new();
        let mut urls = HashMap::new();
        for name in Files::iter().filter(|name| is_served(name)) {
            let Some(file) = Files::get(&name) else {
                continue;
            };
            let raw = file.data.into_owned();
            let digest = Sha256::digest(&raw);
            let hash: String = digest[..5].iter().map(|b| format!("{b:02x}")).collect();
            let hashed = hashed_name(&name, &hash);
            urls.insert(name.to_string(), format!("/assets/{hashed}"));
            let gzip = gzip(&raw);
            by_hashed.insert(
                hashed,
                Asset {
                    content_type: content_type(&name),
                    raw,
                    gzip,
                },
            );
        }
        Catalog { by_hashed, urls }
    })
}

/// The URL of an embedded file (`app/app.css`), with its content hash in the name.
///
/// # Panics
/// When the build does not embed `name`: a typo in a template, caught by the page tests.
pub fn url(name: &str) -> &'static str {
    catalog()
        .urls
        .get(name)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("no embedded asset {name}"))
}

/// Total bytes of the app's scripts and styles as sent gzip-compressed (the README's budget).
pub fn gzipped_script_and_style_bytes() -> usize {
    catalog()
        .by_hashed
        .iter()
        .filter(|(name, _)| name.ends_with(".js") || name.ends_with(".css"))
        .map(|(_, asset)| asset.gzip.as_ref().map_or(asset.raw.len(), Vec::len))
        .sum()
}

/// `GET /assets/{name}`: a hashed name is immutable, so it is cached for a year.
#[handler]
pub fn serve(Path(name): Path<String>, req: &Request) -> Response {
    let Some(asset) = catalog().by_hashed.get(&name) else {
        return super::error::not_found_page();
    };
    let mut response = Response::builder()
        .status(StatusCode::OK)
        .content_type(asset.content_type)
        .header(header::CACHE_CONTROL, "public, max-age=31536000, immutable")
        .header(header::VARY, "Accept-Encoding")
        .header("X-Content-Type-Options", "nosniff");
    let body = match &asset.gzip {
        Some(packed) if accepts_gzip(req) => {
            response = response.header(header::CONTENT_ENCODING, "gzip");
            packed.clone()
        }
        _ => asset.raw.clone(),
    };
    response.body(body).into_response()
}

/// `GET /favicon.ico`: the SVG icon under the name browsers ask for.
#[handler]
pub fn favicon() -> Response {
    match Files::get("favicon.svg") {
        Some(file) => file
            .data
            .into_owned()
            .with_content_type("image/svg+xml")
            .with_header(header::CACHE_CONTROL, "public, max-age=86400")
            .into_response(),
        None => super::error::not_found_page(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_hash_before_the_extension() {
        assert_eq!(hashed_name("app/app.css", "ab12"), "app/app.ab12.css");
        assert_eq!(hashed_name("LICENSE", "ab12"), "LICENSE.ab12");
    }

    #[test]
    fn vendored_files_match_the_checksums_listed_beside_them() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/vendor");
        let listing = std::fs::read_to_string(dir.join("README.md")).unwrap();
        let mut checked = 0;
        for row in listing.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = row.split('|').map(|c| c.trim().trim_matches('`')).collect();
            let (file, sha) = (cells[1], cells[6]);
            let bytes = std::fs::read(dir.join(file)).unwrap();
            let actual: String = Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(actual, sha, "{file} differs from its listed SHA-256");
            checked += 1;
        }
        assert!(checked >= 2, "the listing names the vendored files");
    }

    #[test]
    fn every_script_and_style_is_listed_and_within_budget() {
        let url = url("app/app.css");
        assert!(url.starts_with("/assets/app/app.") && url.ends_with(".css"));
        // The budget of issue 15: all JS and CSS together at most 60 KB gzipped.
        assert!(gzipped_script_and_style_bytes() <= 60 * 1024);
    }
}
