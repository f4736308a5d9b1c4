//! Versions as HTTP validators: `ETag: "<version>"` on reads and writes, `If-None-Match` for
//! 304, `If-Match` for lost-update protection (a stale one gets 412 and the current state).

/// The `ETag` of a version.
pub fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

/// The version an `If-Match` header asks for. `None` when absent or `*` (no condition).
/// A value that names no version of ours can never match, so it is version 0 (never used):
/// the write is refused with 412 rather than applied blindly.
pub fn if_match(header: Option<&str>) -> Option<u64> {
    let value = header?.trim();
    if value == "*" {
        return None;
    }
    Some(first_version(value).unwrap_or(0))
}

/// True when an `If-None-Match` header already names `version` (the client's copy is current).
pub fn none_match_hits(header: Option<&str>, version: u64) -> bool {
    header.is_some_and(|value| {
        value.trim() == "*" || value.split(',').any(|tag| parse_tag(tag) == Some(version))
    })
}

fn first_version(value: &str) -> Option<u64> {
    value.split(',').find_map(parse_tag)
}

fn parse_tag(tag: &str) -> Option<u64> {
    let tag = tag.trim();
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    tag.strip_prefix('"')?.strip_suffix('"')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_forms() {
        assert_eq!(if_match(None), None);
        assert_eq!(if_match(Some("*")), None);
        assert_eq!(if_match(Some("\"3\"")), Some(3));
        assert_eq!(if_match(Some("W/\"4\"")), Some(4));
        assert_eq!(if_match(Some("garbage")), Some(0));
    }

    #[test]
    fn if_none_match_forms() {
        assert!(none_match_hits(Some("\"2\", \"3\""), 3));
        assert!(!none_match_hits(Some("\"2\""), 3));
        assert!(none_match_hits(Some("*"), 1));
        assert!(!none_match_hits(None, 1));
        assert_eq!(etag(7), "\"7\"");
    }
}
