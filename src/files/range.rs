//! Single byte ranges (RFC 9110 §14), so downloads can resume and media can seek.
//!
//! Only one range per request is served. RFC 9110 lets a server ignore a `Range` header it
//! does not want to honour, so multiple ranges, other units and malformed headers all get the
//! whole file (`200`) rather than an error: a client can always fall back to that.

/// What to send for a `Range` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// No (usable) range: send the whole file with `200 OK`.
    Full,
    /// Send bytes `start..=end` with `206 Partial Content`.
    Partial {
        start: u64,
        /// Inclusive, and always below the file size.
        end: u64,
    },
    /// A valid range that lies outside the file: `416 Range Not Satisfiable`.
    Unsatisfiable,
}

/// Reads a `Range` header for a file of `size` bytes.
pub fn parse_range(header: Option<&str>, size: u64) -> ByteRange {
    let Some(spec) = header.and_then(byte_range_spec) else {
        return ByteRange::Full;
    };
    match parse_spec(spec) {
        Some(spec) => spec.resolve(size),
        None => ByteRange::Full,
    }
}

/// The `Content-Range` value of a `206` answer.
pub fn content_range(start: u64, end: u64, size: u64) -> String {
    format!("bytes {start}-{end}/{size}")
}

/// The `Content-Range` value of a `416` answer.
pub fn unsatisfied_range(size: u64) -> String {
    format!("bytes */{size}")
}

/// A syntactically valid single range, before it meets the file.
#[derive(Debug, PartialEq, Eq)]
enum RangeSpec {
    /// `a-b` or `a-` (`last` is `None`).
    FromTo { first: u64, last: Option<u64> },
    /// `-n`: the last `n` bytes.
    Suffix(u64),
}

impl RangeSpec {
    fn resolve(self, size: u64) -> ByteRange {
        let last_byte = match size.checked_sub(1) {
            Some(last_byte) => last_byte,
            None => return ByteRange::Unsatisfiable,
        };
        match self {
            RangeSpec::FromTo { first, .. } if first >= size => ByteRange::Unsatisfiable,
            RangeSpec::FromTo { first, last } => ByteRange::Partial {
                start: first,
                end: last.map_or(last_byte, |last| last.min(last_byte)),
            },
            RangeSpec::Suffix(0) => ByteRange::Unsatisfiable,
            RangeSpec::Suffix(length) => ByteRange::Partial {
                start: size.saturating_sub(length),
                end: last_byte,
            },
        }
    }
}

/// The part after `bytes=`, if the unit is `bytes` and only one range is asked for.
fn byte_range_spec(header: &str) -> Option<&str> {
    let (unit, spec) = header.split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return None;
    }
    Some(spec.trim())
}

fn parse_spec(spec: &str) -> Option<RangeSpec> {
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        return parse_digits(last).map(RangeSpec::Suffix);
    }
    let first = parse_digits(first)?;
    let last = match last {
        "" => None,
        last => Some(parse_digits(last)?),
    };
    if last.is_some_and(|last| last < first) {
        return None;
    }
    Some(RangeSpec::FromTo { first, last })
}

/// A non-empty run of ASCII digits. Saturates instead of failing: a position past `u64::MAX`
/// is past any file, which the resolving step already handles.
fn parse_digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.bytes().fold(0u64, |number, digit| {
        number
            .saturating_mul(10)
            .saturating_add(u64::from(digit - b'0'))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ByteRange::{Full, Partial, Unsatisfiable};

    fn range(header: &str, size: u64) -> ByteRange {
        parse_range(Some(header), size)
    }

    #[test]
    fn no_header_is_full() {
        assert_eq!(parse_range(None, 100), Full);
        assert_eq!(parse_range(None, 0), Full);
    }

    #[test]
    fn closed_ranges() {
        assert_eq!(range("bytes=0-0", 100), Partial { start: 0, end: 0 });
        assert_eq!(range("bytes=0-99", 100), Partial { start: 0, end: 99 });
        assert_eq!(range("bytes=10-19", 100), Partial { start: 10, end: 19 });
        assert_eq!(range("bytes=99-99", 100), Partial { start: 99, end: 99 });
    }

    #[test]
    fn the_end_is_clamped_to_the_last_byte() {
        assert_eq!(range("bytes=50-1000", 100), Partial { start: 50, end: 99 });
        assert_eq!(range("bytes=0-100", 100), Partial { start: 0, end: 99 });
        let huge = "bytes=1-99999999999999999999999999";
        assert_eq!(range(huge, 100), Partial { start: 1, end: 99 });
    }

    #[test]
    fn open_ranges() {
        assert_eq!(range("bytes=0-", 100), Partial { start: 0, end: 99 });
        assert_eq!(range("bytes=42-", 100), Partial { start: 42, end: 99 });
        assert_eq!(range("bytes=99-", 100), Partial { start: 99, end: 99 });
    }

    #[test]
    fn suffix_ranges() {
        assert_eq!(range("bytes=-1", 100), Partial { start: 99, end: 99 });
        assert_eq!(range("bytes=-10", 100), Partial { start: 90, end: 99 });
        assert_eq!(range("bytes=-100", 100), Partial { start: 0, end: 99 });
    }

    #[test]
    fn a_suffix_longer_than_the_file_is_the_whole_file() {
        assert_eq!(range("bytes=-101", 100), Partial { start: 0, end: 99 });
        let huge = "bytes=-99999999999999999999999999";
        assert_eq!(range(huge, 100), Partial { start: 0, end: 99 });
    }

    #[test]
    fn an_empty_suffix_is_unsatisfiable() {
        assert_eq!(range("bytes=-0", 100), Unsatisfiable);
        assert_eq!(range("bytes=-000", 100), Unsatisfiable);
    }

    #[test]
    fn a_start_at_or_past_the_end_is_unsatisfiable() {
        assert_eq!(range("bytes=100-", 100), Unsatisfiable);
        assert_eq!(range("bytes=100-200", 100), Unsatisfiable);
        assert_eq!(range("bytes=1000-1000", 100), Unsatisfiable);
        assert_eq!(range("bytes=99999999999999999999999-", 100), Unsatisfiable);
    }

    #[test]
    fn any_valid_range_of_an_empty_file_is_unsatisfiable() {
        assert_eq!(range("bytes=0-", 0), Unsatisfiable);
        assert_eq!(range("bytes=0-0", 0), Unsatisfiable);
        assert_eq!(range("bytes=-1", 0), Unsatisfiable);
        assert_eq!(range("bytes=-0", 0), Unsatisfiable);
        assert_eq!(range("bytes=garbage", 0), Full);
    }

    #[test]
    fn whitespace_is_tolerated() {
        assert_eq!(range(" bytes = 1 - 2 ", 100), Partial { start: 1, end: 2 });
        assert_eq!(range("bytes=\t-5", 100), Partial { start: 95, end: 99 });
        assert_eq!(range("bytes= 7 -", 100), Partial { start: 7, end: 99 });
    }

    #[test]
    fn the_unit_is_case_insensitive_and_must_be_bytes() {
        assert_eq!(range("BYTES=0-1", 100), Partial { start: 0, end: 1 });
        assert_eq!(range("Bytes=0-1", 100), Partial { start: 0, end: 1 });
        assert_eq!(range("items=0-1", 100), Full);
        assert_eq!(range("bits=0-1", 100), Full);
        assert_eq!(range("=0-1", 100), Full);
    }

    #[test]
    fn malformed_headers_are_ignored() {
        for header in [
            "",
            "bytes",
            "bytes=",
            "bytes=-",
            "bytes=--1",
            "bytes=1",
            "bytes=a-b",
            "bytes=1-a",
            "bytes=+1-2",
            "bytes=1-+2",
            "bytes=1-2-3",
            "bytes=1 0-20",
            "bytes=0x10-20",
            "bytes=５-6",
            "bytes=5-4",
        ] {
            assert_eq!(range(header, 100), Full, "{header:?}");
        }
    }

    #[test]
    fn multiple_ranges_are_ignored() {
        assert_eq!(range("bytes=0-1,5-6", 100), Full);
        assert_eq!(range("bytes=0-1, -5", 100), Full);
        assert_eq!(range("bytes=0-1,", 100), Full);
    }

    #[test]
    fn header_values() {
        assert_eq!(content_range(0, 99, 100), "bytes 0-99/100");
        assert_eq!(content_range(5, 5, 6), "bytes 5-5/6");
        assert_eq!(unsatisfied_range(100), "bytes */100");
        assert_eq!(unsatisfied_range(0), "bytes */0");
    }
}
