//! Realistic text for the benchmarks: words drawn by Zipf's law (exponent 1) from a
//! vocabulary of 30,000 made-up words, the commonest shortest. Shared by `synthetic` (the
//! export file) and `load` (the seeded tasks and the search queries).

use std::sync::OnceLock;

use rand::Rng;

pub const VOCABULARY: usize = 30_000;
const SYLLABLES: [&str; 20] = [
    "ka", "lo", "mi", "ren", "sa", "to", "vel", "du", "pra", "ne", "qui", "bor", "ta", "shi",
    "gon", "fe", "lu", "dar", "mo", "zen",
];

/// The `rank`-th word (0 the commonest): 2 syllables for the first 400, 3 for the next
/// 8,000, then 4.
pub fn word(rank: usize) -> String {
    let (mut n, syllables) = match rank {
        r if r < 400 => (r, 2),
        r if r < 8_400 => (r - 400, 3),
        r => (r - 8_400, 4),
    };
    let mut word = String::with_capacity(4 * syllables);
    for _ in 0..syllables {
        word.push_str(SYLLABLES[n % 20]);
        n /= 20;
    }
    word
}

/// Words drawn by Zipf's law: the `k`-th commonest with weight 1/k.
pub struct Zipf {
    words: Vec<String>,
    /// Cumulative weights, ending at 1.
    cumulative: Vec<f64>,
}

/// The one table of the process.
pub fn zipf() -> &'static Zipf {
    static ZIPF: OnceLock<Zipf> = OnceLock::new();
    ZIPF.get_or_init(Zipf::new)
}

impl Zipf {
    fn new() -> Self {
        let weights: Vec<f64> = (1..=VOCABULARY).map(|k| 1.0 / k as f64).collect();
        let total: f64 = weights.iter().sum();
        let mut sum = 0.0;
        let cumulative = weights
            .iter()
            .map(|w| {
                sum += w / total;
                sum
            })
            .collect();
        Self {
            words: (0..VOCABULARY).map(word).collect(),
            cumulative,
        }
    }

    /// The vocabulary, commonest first.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// The rank of the word `u` (uniform in [0, 1)) draws.
    pub fn rank(&self, u: f64) -> usize {
        self.cumulative
            .partition_point(|c| *c < u)
            .min(VOCABULARY - 1)
    }

    /// `count` words separated by spaces; `sentence` capitalises the first and ends with '.'.
    pub fn text(&self, rng: &mut impl Rng, count: usize, sentence: bool) -> String {
        let mut text = String::with_capacity(count * 9);
        for i in 0..count {
            let k = self.rank(rng.random());
            if i > 0 {
                text.push(' ');
            }
            let word = &self.words[k];
            if i == 0 && sentence {
                let mut chars = word.chars();
                text.extend(chars.next().map(|c| c.to_ascii_uppercase()));
                text.push_str(chars.as_str());
            } else {
                text.push_str(word);
            }
        }
        if sentence {
            text.push('.');
        }
        text
    }
}
