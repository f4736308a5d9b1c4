//! The name of a blob: the SHA-256 of its content.

use std::fmt;

use sha2::{Digest, Sha256};

/// A SHA-256 digest. Shown and stored on disk as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The hash of `data` (for small, in-memory content; uploads are hashed as they stream).
    pub fn of(data: &[u8]) -> Hash {
        Hash(Sha256::digest(data).into())
    }

    /// 64 lowercase hex digits: the form used in file names.
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = String::with_capacity(64);
        for byte in self.0 {
            hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
            hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
        }
        hex
    }

    /// Parses exactly 64 hex digits (either case).
    pub fn from_hex(text: &str) -> Option<Hash> {
        let text = text.as_bytes();
        if text.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
            *byte = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
        }
        Some(Hash(bytes))
    }
}

/// Hex rather than 32 decimal numbers, so logs and test failures can be compared with `ls`.
impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

fn hex_digit(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn hashes_like_sha256sum() {
        assert_eq!(Hash::of(b"").to_hex(), EMPTY_SHA256);
    }

    #[test]
    fn hex_round_trips() {
        let hash = Hash::of(b"hello");
        assert_eq!(Hash::from_hex(&hash.to_hex()), Some(hash));
        assert_eq!(Hash::from_hex(&hash.to_hex().to_uppercase()), Some(hash));
        assert_eq!(hash.to_string(), hash.to_hex());
        assert_eq!(format!("{hash:?}"), format!("Hash({})", hash.to_hex()));
    }

    #[test]
    fn rejects_anything_but_64_hex_digits() {
        assert_eq!(Hash::from_hex(""), None);
        assert_eq!(Hash::from_hex(&EMPTY_SHA256[..63]), None);
        assert_eq!(Hash::from_hex(&format!("{EMPTY_SHA256}0")), None);
        assert_eq!(Hash::from_hex(&EMPTY_SHA256.replace('e', "g")), None);
        assert_eq!(Hash::from_hex(&EMPTY_SHA256.replacen("e3", "+3", 1)), None);
        let non_ascii = format!("é{}", &EMPTY_SHA256[2..]);
        assert_eq!(non_ascii.len(), 64);
        assert_eq!(Hash::from_hex(&non_ascii), None);
    }
}
