//! One-line names of accounts, teams and projects: one type with one rule, parameterized by
//! what it names (`Name<Team>`), so a team's name still cannot be passed as a project's.

use std::fmt;
use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

use super::single_line_problem;

/// What a [`Name`] names, and how long such a name may be.
pub trait Named {
    /// Name bounds, in characters.
    const NAME_MAX_CHARS: usize;
}

/// A name: trimmed, 1 to `K::NAME_MAX_CHARS` characters, no control, bidirectional control
/// or invisible characters ([`super::is_forbidden_char`]). Not
/// re-validated when read back from the store.
#[derive(Serialize, Deserialize)]
// `bound = ""`: `K` is only a label; it needs no serde traits of its own.
#[serde(transparent, bound = "")]
pub struct Name<K> {
    text: String,
    #[serde(skip)]
    named: PhantomData<fn() -> K>,
}

impl<K: Named> Name<K> {
    pub fn parse(raw: &str) -> Result<Self, String> {
        // The limit applies to the input as sent, so it matches what the API documents.
        let max = K::NAME_MAX_CHARS;
        if raw.chars().count() > max {
            return Err(format!("must be at most {max} characters"));
        }
        let name = raw.trim();
        if name.is_empty() {
            return Err("must not be empty".into());
        }
        if let Some(problem) = single_line_problem(name) {
            return Err(problem.into());
        }
        Ok(Self {
            text: name.to_string(),
            named: PhantomData,
        })
    }
}

impl<K> Name<K> {
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

// By hand rather than derived: a derive would ask the same of `K`, which is only a label.
impl<K> Clone for Name<K> {
    fn clone(&self) -> Self {
        Self {
            text: self.text.clone(),
            named: PhantomData,
        }
    }
}

impl<K> PartialEq for Name<K> {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl<K> Eq for Name<K> {}

impl<K> fmt::Debug for Name<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Name").field(&self.text).finish()
    }
}

impl<K> From<Name<K>> for String {
    fn from(value: Name<K>) -> Self {
        value.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Long;
    impl Named for Long {
        const NAME_MAX_CHARS: usize = 50;
    }

    #[test]
    fn bidirectional_controls_are_refused_and_right_to_left_text_is_not() {
        let bidi = [
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}',
        ];
        for c in bidi {
            assert_eq!(
                Name::<Long>::parse(&format!("invoice{c}fdp.exe")).unwrap_err(),
                "must not contain bidirectional control characters",
                "U+{:04X}",
                c as u32
            );
        }
        assert_eq!(
            Name::<Long>::parse("فريق التصميم").unwrap().as_str(),
            "فريق التصميم"
        );
        assert_eq!(Name::<Long>::parse("צוות א׳").unwrap().as_str(), "צוות א׳");
    }

    struct Short;
    impl Named for Short {
        const NAME_MAX_CHARS: usize = 3;
    }

    #[test]
    fn names_are_trimmed_bounded_and_single_line() {
        assert_eq!(Name::<Short>::parse(" ab").unwrap().as_str(), "ab");
        assert_eq!(
            Name::<Short>::parse("abcd").unwrap_err(),
            "must be at most 3 characters"
        );
        assert_eq!(
            Name::<Short>::parse("   ").unwrap_err(),
            "must not be empty"
        );
        assert_eq!(
            Name::<Short>::parse("a\nb").unwrap_err(),
            "must not contain control characters"
        );
        for invisible in ['\u{200B}', '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{2028}'] {
            assert_eq!(
                Name::<Short>::parse(&format!("a{invisible}b")).unwrap_err(),
                "must not contain control characters"
            );
        }
        let json = serde_json::to_string(&Name::<Short>::parse("ab").unwrap()).unwrap();
        assert_eq!(json, "\"ab\"");
        let back: Name<Short> = serde_json::from_str(&json).unwrap();
        assert_eq!(back.as_str(), "ab");
    }
}
