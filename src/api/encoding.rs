//! gzip for the large bodies the server sends as they are (the web app's assets, Swagger UI):
//! whether a client takes it, and the compression itself.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use poem::Request;
use poem::http::header;

/// Whether the client takes a gzip-compressed body (`Accept-Encoding`, not refused by `q=0`).
pub fn accepts_gzip(req: &Request) -> bool {
    req.headers()
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

/// `raw` gzip-compressed, or `None` when that would not make it smaller.
pub fn gzip(raw: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(raw).ok()?;
    let packed = encoder.finish().ok()?;
    (packed.len() < raw.len()).then_some(packed)
}
