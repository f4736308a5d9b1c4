//! Cursor pagination. A cursor is the key of the last item of a page, encoded as URL-safe
//! base64 so clients treat it as opaque. Because every list is a range read that starts
//! strictly after that key, pages never repeat or skip an item under concurrent inserts.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The default number of items of a page.
pub const DEFAULT_PAGE_LIMIT: u32 = 50;
/// The largest page a client may ask for.
pub const MAX_PAGE_LIMIT: u32 = 200;

/// A page size within `1..=MAX_PAGE_LIMIT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit(u32);

impl PageLimit {
    pub fn parse(limit: Option<u32>) -> Result<Self, String> {
        match limit.unwrap_or(DEFAULT_PAGE_LIMIT) {
            n @ 1..=MAX_PAGE_LIMIT => Ok(Self(n)),
            _ => Err(format!("must be between 1 and {MAX_PAGE_LIMIT}")),
        }
    }

    pub fn get(self) -> usize {
        self.0 as usize
    }
}

impl Default for PageLimit {
    fn default() -> Self {
        Self(DEFAULT_PAGE_LIMIT)
    }
}

/// Where the next page starts: the last key that was returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor(u128);

impl Cursor {
    pub fn after(key: u128) -> Self {
        Self(key)
    }

    pub fn key(self) -> u128 {
        self.0
    }

    pub fn encode(self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.to_be_bytes())
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        const INVALID: &str = "is not a cursor returned by this server";
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| INVALID.to_string())?;
        let bytes: [u8; 16] = bytes.try_into().map_err(|_| INVALID.to_string())?;
        Ok(Self(u128::from_be_bytes(bytes)))
    }
}

/// One page of a list, and the cursor of the next one when there is more.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<Cursor>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` items read in order: the extra item only tells
    /// that there is a next page.
    pub fn from_overfetch(mut items: Vec<T>, limit: PageLimit, key: impl Fn(&T) -> u128) -> Self {
        let next_cursor = if items.len() > limit.get() {
            items.truncate(limit.get());
            items.last().map(|last| Cursor::after(key(last)))
        } else {
            None
        };
        Self { items, next_cursor }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_defaults_and_bounds() {
        assert_eq!(PageLimit::parse(None).unwrap().get(), 50);
        assert_eq!(PageLimit::parse(Some(200)).unwrap().get(), 200);
        assert!(PageLimit::parse(Some(0)).is_err());
        assert!(PageLimit::parse(Some(201)).is_err());
    }

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let cursor = Cursor::after(u128::MAX - 7);
        assert_eq!(Cursor::parse(&cursor.encode()).unwrap(), cursor);
        assert!(Cursor::parse("!!").is_err());
        assert!(Cursor::parse("AAAA").is_err());
    }

    #[test]
    fn overfetch_sets_next_cursor_only_when_more() {
        let limit = PageLimit::parse(Some(2)).unwrap();
        let page = Page::from_overfetch(vec![1u128, 2, 3], limit, |k| *k);
        assert_eq!(page.items, vec![1, 2]);
        assert_eq!(page.next_cursor, Some(Cursor::after(2)));
        let last = Page::from_overfetch(vec![3u128], limit, |k| *k);
        assert_eq!(last.next_cursor, None);
    }
}
