//! bcrypt hashing and verification.
//!
//! bcrypt is deliberately slow (~250 ms at cost 12), so it runs on the blocking pool behind a
//! semaphore with one permit per core: a login storm queues here instead of occupying every
//! blocking thread and starving the redb work of other requests. A request that cannot get a
//! permit within [`PERMIT_WAIT`] is answered "busy" rather than queueing without bound.
//!
//! Logins for unknown emails verify against a dummy hash of the same cost, so the two failure
//! cases take the same time and reveal nothing about which accounts exist.

use std::time::Duration;

use rand::RngCore;
use tokio::sync::{OnceCell, Semaphore};

use super::{Error, Result};
use crate::domain::Password;
use crate::domain::user::PASSWORD_MAX_BYTES;

/// Longest time a request waits for a bcrypt slot.
const PERMIT_WAIT: Duration = Duration::from_secs(10);

pub struct Passwords {
    cost: u32,
    permits: Semaphore,
    dummy_hash: OnceCell<String>,
}

impl Passwords {
    pub fn new(cost: u32, concurrency: usize) -> Self {
        Self {
            cost,
            permits: Semaphore::new(concurrency.max(1)),
            dummy_hash: OnceCell::new(),
        }
    }

    /// Runs one bcrypt computation under a permit, on the blocking pool.
    async fn bounded<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let _permit = tokio::time::timeout(PERMIT_WAIT, self.permits.acquire())
            .await
            .map_err(|_| Error::Busy)?
            .map_err(|_| Error::Busy)?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| Error::Internal(crate::store::StoreError::Join(e.to_string())))
    }

    pub async fn hash(&self, password: &Password) -> Result<String> {
        let password = password.expose().to_owned();
        let cost = self.cost;
        self.bounded(move || bcrypt::hash(password, cost))
            .await?
            .map_err(|e| Error::Internal(crate::store::StoreError::Corrupt(format!("bcrypt: {e}"))))
    }

    /// True when `password` matches `hash`. With no hash (unknown account) it still spends
    /// the time of one verification and returns false.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool> {
        let dummy;
        let (hash, known) = match hash {
            Some(hash) => (hash.to_owned(), true),
            None => {
                dummy = self.dummy_hash().await?;
                (dummy.clone(), false)
            }
        };
        // Registration never accepts more than 72 bytes, so a longer input cannot match; it is
        // cut for the timing-equal computation only, never to grant access.
        let fits = password.len() <= PASSWORD_MAX_BYTES;
        let candidate: String = truncate_to_bytes(password, PASSWORD_MAX_BYTES).to_owned();
        let matched = self
            .bounded(move || bcrypt::verify(candidate, &hash).unwrap_or(false))
            .await?;
        Ok(known && fits && matched)
    }

    async fn dummy_hash(&self) -> Result<&String> {
        self.dummy_hash
            .get_or_try_init(|| async {
                let mut random = [0u8; 24];
                rand::rng().fill_bytes(&mut random);
                let secret: String = random.iter().map(|b| format!("{b:02x}")).collect();
                self.hash(&Password::parse(&secret).expect("48 hex chars is a valid password"))
                    .await
            })
            .await
    }
}

fn truncate_to_bytes(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let passwords = Passwords::new(4, 2);
        let password = Password::parse("correct horse").unwrap();
        let hash = passwords.hash(&password).await.unwrap();
        assert!(
            passwords
                .verify("correct horse", Some(&hash))
                .await
                .unwrap()
        );
        assert!(!passwords.verify("wrong horse", Some(&hash)).await.unwrap());
        assert!(!passwords.verify("correct horse", None).await.unwrap());
    }

    #[tokio::test]
    async fn over_long_input_never_matches() {
        let passwords = Passwords::new(4, 1);
        let password = Password::parse(&"a".repeat(72)).unwrap();
        let hash = passwords.hash(&password).await.unwrap();
        assert!(
            passwords
                .verify(&"a".repeat(72), Some(&hash))
                .await
                .unwrap()
        );
        assert!(
            !passwords
                .verify(&"a".repeat(73), Some(&hash))
                .await
                .unwrap()
        );
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate_to_bytes("ééé", 3), "é");
        assert_eq!(truncate_to_bytes("abc", 10), "abc");
    }
}
