//! Board order: a task's `rank` is a fractional-index key within its column (its project's, or
//! its creator's personal, status column). Keys compare as plain strings (bytewise), so a
//! column read in index order is in board order, and a move writes one new key between its
//! neighbours' keys without renumbering anyone.
//!
//! The scheme is David Greenspan's "fractional indexing" (as in the `fractional-indexing`
//! npm package) over base-62 digits `0-9A-Za-z` (ASCII order): a key is an *integer part*
//! whose first character gives its length (`a` = 1 digit follows, `b` = 2, ... `z` = 26;
//! `Z` .. `A` the same for negative integers, which sort below), then an optional
//! *fraction* that never ends in `0`. Appending at the bottom or the top increments or
//! decrements the integer part, so keys grow with the logarithm of the column's length
//! (`a0`, `a1`, ..., `az`, `b10`, ...); inserting between two keys takes the midpoint of their
//! fractions, which grows one character every five inserts at the very same spot.

use serde::{Deserialize, Serialize};

const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BASE: u8 = 62;
/// The smallest integer part: nothing can be placed below it without a fraction.
const SMALLEST_INTEGER: &str = "A00000000000000000000000000";

/// A position within a column. The empty rank is "not placed yet": the store gives such a
/// task the bottom of its column when it writes it (imports, rows from before ranks).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Rank(String);

impl Rank {
    /// A rank read from outside (a stored row): a valid key, or the empty "unplaced" rank.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() || is_valid(raw.as_bytes()) {
            Ok(Self(raw.to_string()))
        } else {
            Err(format!("{raw:?} is not a rank"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for the empty rank: the task has no place in its column yet.
    pub fn is_unplaced(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Display for Rank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A key strictly between `a` and `b` (`None`: the column's top, resp. bottom end).
///
/// `a` must sort before `b`, and both be placed (the store reads them from the index of one
/// column, where keys are distinct). Panics otherwise, and in the one case no key exists:
/// below `A` followed by 26 zeros, which takes 62^26 moves to the very top.
pub fn between(a: Option<&Rank>, b: Option<&Rank>) -> Rank {
    let a = a.map(|r| r.0.as_bytes());
    let b = b.map(|r| r.0.as_bytes());
    if let (Some(a), Some(b)) = (a, b) {
        assert!(
            a < b,
            "between({a:?}, {b:?}): the first must sort before the second"
        );
    }
    for key in [a, b].into_iter().flatten() {
        assert!(is_valid(key), "between: {key:?} is not a rank");
    }
    let key = match (a, b) {
        (None, None) => b"a0".to_vec(),
        (None, Some(b)) => {
            let (ib, fb) = split(b);
            if ib == SMALLEST_INTEGER.as_bytes() {
                assert!(!fb.is_empty(), "no rank sorts below the smallest one");
                [ib, &midpoint(&[], Some(fb))].concat()
            } else if !fb.is_empty() {
                ib.to_vec()
            } else {
                decrement(ib).expect("the integer is not the smallest")
            }
        }
        (Some(a), None) => {
            let (ia, fa) = split(a);
            match increment(ia) {
                Some(next) => next,
                None => [ia, &midpoint(fa, None)].concat(),
            }
        }
        (Some(a), Some(b)) => {
            let ((ia, fa), (ib, _)) = (split(a), split(b));
            if ia == ib {
                [ia, &midpoint(fa, Some(&b[ib.len()..]))].concat()
            } else {
                match increment(ia) {
                    Some(next) if next.as_slice() < b => next,
                    _ => [ia, &midpoint(fa, None)].concat(),
                }
            }
        }
    };
    Rank(String::from_utf8(key).expect("base-62 digits are ASCII"))
}

/// `n` ranks in order, as `between` appending at the bottom gives them (migration, tests).
pub fn sequence(n: usize) -> Vec<Rank> {
    let mut ranks: Vec<Rank> = Vec::with_capacity(n);
    for _ in 0..n {
        ranks.push(between(ranks.last(), None));
    }
    ranks
}

fn digit(c: u8) -> Option<u8> {
    DIGITS.iter().position(|d| *d == c).map(|p| p as u8)
}

/// How long the integer part starting with `head` is (head included).
fn integer_len(head: u8) -> Option<usize> {
    match head {
        b'a'..=b'z' => Some(usize::from(head - b'a') + 2),
        b'A'..=b'Z' => Some(usize::from(b'Z' - head) + 2),
        _ => None,
    }
}

fn is_valid(key: &[u8]) -> bool {
    let Some(len) = key.first().copied().and_then(integer_len) else {
        return false;
    };
    key.len() >= len
        && key[1..].iter().all(|c| digit(*c).is_some())
        && key[len..].last() != Some(&b'0')
}

/// Splits a valid key into its integer part and its fraction.
fn split(key: &[u8]) -> (&[u8], &[u8]) {
    let len = integer_len(key[0]).expect("a valid key");
    key.split_at(len)
}

/// A fraction strictly between fractions `a` and `b` (`None`: 1), never ending in `0`.
fn midpoint(a: &[u8], b: Option<&[u8]>) -> Vec<u8> {
    let at = |s: &[u8], i: usize| s.get(i).map_or(0, |c| digit(*c).expect("a digit"));
    if let Some(b) = b {
        // The common prefix (with `a` padded by zeros) stays.
        let n = (0..b.len()).take_while(|i| at(a, *i) == at(b, *i)).count();
        if n > 0 {
            let rest = midpoint(a.get(n..).unwrap_or_default(), Some(&b[n..]));
            return [&b[..n], rest.as_slice()].concat();
        }
    }
    let low = at(a, 0);
    let high = b.map_or(BASE, |b| at(b, 0));
    if high - low > 1 {
        vec![DIGITS[usize::from((low + high) / 2)]]
    } else if let Some(b) = b.filter(|b| b.len() > 1) {
        // `b`'s first digit alone sorts before `b` and after `a`.
        vec![b[0]]
    } else {
        let rest = midpoint(a.get(1..).unwrap_or_default(), None);
        [&[DIGITS[usize::from(low)]][..], rest.as_slice()].concat()
    }
}

/// The next integer part, `None` past the largest.
fn increment(int: &[u8]) -> Option<Vec<u8>> {
    let (head, mut digits) = (int[0], int[1..].to_vec());
    for d in digits.iter_mut().rev() {
        let v = digit(*d).expect("a digit");
        if v + 1 < BASE {
            *d = DIGITS[usize::from(v + 1)];
            return Some([&[head][..], &digits].concat());
        }
        *d = b'0';
    }
    // Every digit carried: one more digit (or, for negatives, one fewer).
    match head {
        b'Z' => Some(b"a0".to_vec()),
        b'z' => None,
        _ => {
            let head = head + 1;
            if head > b'a' {
                digits.push(b'0');
            } else {
                digits.pop();
            }
            Some([&[head][..], &digits].concat())
        }
    }
}

/// The previous integer part, `None` below the smallest.
fn decrement(int: &[u8]) -> Option<Vec<u8>> {
    let (head, mut digits) = (int[0], int[1..].to_vec());
    for d in digits.iter_mut().rev() {
        let v = digit(*d).expect("a digit");
        if v > 0 {
            *d = DIGITS[usize::from(v - 1)];
            return Some([&[head][..], &digits].concat());
        }
        *d = b'z';
    }
    match head {
        b'a' => Some(b"Zz".to_vec()),
        b'A' => None,
        _ => {
            let head = head - 1;
            if head < b'Z' {
                digits.push(b'z');
            } else {
                digits.pop();
            }
            Some([&[head][..], &digits].concat())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Rank {
        Rank::parse(s).unwrap()
    }

    fn assert_between(a: Option<&Rank>, b: Option<&Rank>) -> Rank {
        let k = between(a, b);
        assert!(is_valid(k.as_str().as_bytes()), "{k} is valid");
        if let Some(a) = a {
            assert!(*a < k, "{a} < {k}");
        }
        if let Some(b) = b {
            assert!(k < *b, "{k} < {b}");
        }
        k
    }

    #[test]
    fn known_keys() {
        assert_eq!(between(None, None).as_str(), "a0");
        assert_eq!(between(Some(&r("a0")), None).as_str(), "a1");
        assert_eq!(between(None, Some(&r("a0"))).as_str(), "Zz");
        assert_eq!(between(Some(&r("a0")), Some(&r("a1"))).as_str(), "a0V");
        assert_eq!(between(Some(&r("az")), None).as_str(), "b00");
        assert_eq!(between(Some(&r("a0V")), Some(&r("a1"))).as_str(), "a0k");
        assert_eq!(between(Some(&r("Zz")), Some(&r("a0"))).as_str(), "ZzV");
        assert_eq!(between(None, Some(&r("a0V"))).as_str(), "a0");
    }

    #[test]
    fn parse_refuses_what_between_never_makes() {
        for bad in ["0", "a", "a00", "b0", "a0#", "é", "a0 "] {
            assert!(Rank::parse(bad).is_err(), "{bad}");
        }
        for good in ["", "a0", "a0V", "Zz", "b00", "zzzzzzzzzzzzzzzzzzzzzzzzzzz"] {
            assert!(Rank::parse(good).is_ok(), "{good}");
        }
        assert!(Rank::parse("").unwrap().is_unplaced());
    }

    #[test]
    fn appends_and_prepends_stay_short() {
        let mut bottom = between(None, None);
        let mut top = bottom.clone();
        for _ in 0..10_000 {
            bottom = assert_between(Some(&bottom), None);
            top = assert_between(None, Some(&top));
        }
        assert!(bottom.as_str().len() <= 4, "{bottom}");
        assert!(top.as_str().len() <= 4, "{top}");
        // 62 keys of two characters, 3,844 of three, then four.
        let seq = sequence(5000);
        assert!(seq.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(seq[62 + 3843].as_str(), "bzz");
        assert!(seq.iter().all(|k| k.as_str().len() <= 4));
    }

    #[test]
    fn many_inserts_at_the_same_spot_stay_ordered_and_short_ish() {
        let first = between(None, None);
        let last = between(Some(&first), None);
        // Always right after the first card: each new key goes between it and the last new.
        let mut after_first = vec![first.clone(), last.clone()];
        let mut newest = last.clone();
        for _ in 0..500 {
            newest = assert_between(Some(&first), Some(&newest));
            after_first.push(newest.clone());
        }
        // Always right before the last card: between the last new key and it.
        let mut before_last = vec![first.clone(), last.clone()];
        let mut low = first.clone();
        for _ in 0..500 {
            low = assert_between(Some(&low), Some(&last));
            before_last.push(low.clone());
        }
        for mut column in [after_first, before_last] {
            column.sort();
            column.dedup();
            assert_eq!(column.len(), 502, "every key is distinct");
        }
        // Halving the gap takes one more character every five inserts (V, F, 7, 3, 1).
        for k in [&newest, &low] {
            assert!(
                k.as_str().len() <= 2 + 500 / 5 + 1,
                "500 inserts at one spot: {k}"
            );
        }
    }

    #[test]
    fn alternating_inserts_between_neighbours() {
        // Insert in the middle of two keys that themselves keep moving closer.
        let (mut low, mut high) = (between(None, None), between(Some(&r("a0")), None));
        for i in 0..300 {
            let mid = assert_between(Some(&low), Some(&high));
            if i % 2 == 0 {
                low = mid;
            } else {
                high = mid;
            }
        }
        assert!(low < high);
        assert!(high.as_str().len() <= 70, "{}", high.as_str().len());
    }

    #[test]
    fn random_moves_keep_a_column_strictly_ordered() {
        // A pseudo-random sequence of inserts anywhere in a list, checked against the order.
        let mut column: Vec<Rank> = Vec::new();
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..3000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = (seed as usize) % (column.len() + 1);
            let k = assert_between(at.checked_sub(1).map(|i| &column[i]), column.get(at));
            column.insert(at, k);
        }
        assert!(column.windows(2).all(|w| w[0] < w[1]));
        let longest = column.iter().map(|k| k.as_str().len()).max().unwrap();
        assert!(longest <= 30, "longest key {longest}");
    }

    #[test]
    #[should_panic(expected = "must sort before")]
    fn out_of_order_neighbours_are_a_bug() {
        between(Some(&r("a1")), Some(&r("a0")));
    }
}
