//! bcrypt hashing and verification.
//!
//! bcrypt is deliberately slow (~250 ms at cost 12), so it runs on the blocking pool behind a
//! semaphore with one permit per core: a login storm queues here instead of occupying every
//! blocking thread and starving the redb work of other requests. The permit moves into the
//! blocking task, so a client that gives up cannot free its slot while its hash still runs. A
//! request that cannot get a permit within [`PERMIT_WAIT`] is answered "busy" rather than
//! queueing without bound.
//!
//! Logins for unknown emails verify against a dummy hash of the configured cost, built at
//! start, so they take as long as a wrong password. Hashes stored at another cost (the cost
//! was changed) are re-hashed at the configured cost on the next successful login, so stored
//! costs converge on the dummy's.

use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;
use tokio::sync::{OnceCell, Semaphore};

use super::{Error, Result};
use crate::domain::Password;
use crate::domain::user::{PASSWORD_MAX_BYTES, PasswordHash};
use crate::store::StoreError;

/// Longest time a request waits for a bcrypt slot.
const PERMIT_WAIT: Duration = Duration::from_secs(10);

pub struct Passwords {
    cost: u32,
    permits: Arc<Semaphore>,
    dummy_hash: OnceCell<PasswordHash>,
}

/// The result of checking a password.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    /// Wrong password, or no such account.
    No,
    /// Right password, stored at the configured cost.
    Yes,
    /// Right password; this new hash at the configured cost should replace the stored one.
    YesRehashed(PasswordHash),
}

/// Hashes `password` with bcrypt at `cost` ([`Password::hash`]). Blocking: only ever called
/// through [`Passwords::bounded`].
fn hash_password(password: &Password, cost: u32) -> Result<PasswordHash> {
    password
        .hash(cost)
        .map_err(|e| Error::Internal(StoreError::Corrupt(format!("bcrypt: {e}"))))
}

impl Passwords {
    pub fn new(cost: u32, concurrency: usize) -> Self {
        Self {
            cost,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy_hash: OnceCell::new(),
        }
    }

    /// Runs one bcrypt computation on the blocking pool, holding a permit until it ends.
    async fn bounded<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let permit = tokio::time::timeout(PERMIT_WAIT, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| Error::Busy)?
            .map_err(|_| Error::Busy)?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|e| Error::Internal(StoreError::Join(e.to_string())))
    }

    pub async fn hash(&self, password: &Password) -> Result<PasswordHash> {
        let (password, cost) = (password.clone(), self.cost);
        self.bounded(move || hash_password(&password, cost)).await?
    }

    /// Builds the dummy hash now, so the first unknown-email login is not slower than the rest.
    pub async fn warm_up(&self) -> Result<()> {
        self.dummy_hash().await.map(|_| ())
    }

    /// Checks `password` against `hash`. With no hash (unknown account) or an account without
    /// a password ([`PasswordHash::none`]) it still spends the time of one verification and
    /// says no.
    pub async fn verify(&self, password: &str, hash: Option<&PasswordHash>) -> Result<Verified> {
        let (hash, known) = match hash {
            Some(hash) if hash.is_set() => (hash.clone(), true),
            _ => (self.dummy_hash().await?.clone(), false),
        };
        // Registration never accepts more than 72 bytes, so a longer input cannot match; it is
        // cut for the timing-equal computation only, never to grant access.
        let fits = password.len() <= PASSWORD_MAX_BYTES;
        let candidate = truncate_to_bytes(password, PASSWORD_MAX_BYTES).to_owned();
        let stored = hash.clone();
        let matched = self
            .bounded(move || bcrypt::verify(candidate, stored.expose()).unwrap_or(false))
            .await?;
        if !(known && fits && matched) {
            return Ok(Verified::No);
        }
        if hash.cost() == Some(self.cost) {
            return Ok(Verified::Yes);
        }
        // A password set under older rules still signs in; it is just not re-hashed.
        match Password::parse(password) {
            Ok(password) => Ok(Verified::YesRehashed(self.hash(&password).await?)),
            Err(_) => Ok(Verified::Yes),
        }
    }

    async fn dummy_hash(&self) -> Result<&PasswordHash> {
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
        assert_eq!(hash.cost(), Some(4));
        assert_eq!(
            passwords
                .verify("correct horse", Some(&hash))
                .await
                .unwrap(),
            Verified::Yes
        );
        assert_eq!(
            passwords.verify("wrong horse", Some(&hash)).await.unwrap(),
            Verified::No
        );
        assert_eq!(
            passwords.verify("correct horse", None).await.unwrap(),
            Verified::No
        );
        assert_eq!(
            passwords
                .verify("!no-password", Some(&PasswordHash::none()))
                .await
                .unwrap(),
            Verified::No,
            "an account without a password never signs in"
        );
    }

    #[tokio::test]
    async fn a_hash_of_another_cost_is_upgraded() {
        let old = Passwords::new(5, 1)
            .hash(&Password::parse("correct horse").unwrap())
            .await
            .unwrap();
        let passwords = Passwords::new(4, 1);
        let Verified::YesRehashed(new) =
            passwords.verify("correct horse", Some(&old)).await.unwrap()
        else {
            panic!("expected a re-hash");
        };
        assert_eq!(new.cost(), Some(4));
        assert_eq!(
            passwords.verify("correct horse", Some(&new)).await.unwrap(),
            Verified::Yes
        );
    }

    #[tokio::test]
    async fn over_long_input_never_matches() {
        let passwords = Passwords::new(4, 1);
        let password = Password::parse(&"a".repeat(72)).unwrap();
        let hash = passwords.hash(&password).await.unwrap();
        assert_eq!(
            passwords
                .verify(&"a".repeat(72), Some(&hash))
                .await
                .unwrap(),
            Verified::Yes
        );
        assert_eq!(
            passwords
                .verify(&"a".repeat(73), Some(&hash))
                .await
                .unwrap(),
            Verified::No
        );
    }

    #[tokio::test]
    async fn a_slot_stays_taken_while_its_hash_runs() {
        let passwords = Arc::new(Passwords::new(4, 1));
        let permits = passwords.permits.clone();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        // Start the work, then drop the future as a cancelled request would.
        let handle = tokio::spawn(async move {
            passwords
                .bounded(move || {
                    started_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                })
                .await
        });
        tokio::task::spawn_blocking(move || started_rx.recv().unwrap())
            .await
            .unwrap();
        handle.abort();
        let _ = handle.await;
        assert_eq!(
            permits.available_permits(),
            0,
            "the running hash still holds its slot"
        );
        release_tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), async {
            while permits.available_permits() == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the slot is freed when the hash ends");
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate_to_bytes("ééé", 3), "é");
        assert_eq!(truncate_to_bytes("abc", 10), "abc");
    }
}
