//! Argon2id password hashes (PHC strings). Hashing is deliberately slow and takes 19 MiB per
//! hash, so it runs on threads of its own, never on an async worker, and only a few at a time
//! ([`PasswordWork`]): 150 parallel sign-ins with unknown names once took the server from
//! 48 MiB to 2.7 GiB.

use std::sync::{Arc, Mutex};

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

pub const MIN_LEN: usize = 10;
pub const MAX_LEN: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every slot is taken and the line is full: the caller answers 503 and the client retries.
    #[error("too many password checks at once")]
    Busy,
    /// The hash could not be made or the blocking task died. Never an empty hash.
    #[error("password hashing failed: {0}")]
    Failed(String),
}

pub fn hash(password: &str) -> Result<String, HashError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| HashError::Failed(e.to_string()))
}

pub fn verify(password: &str, phc: &str) -> bool {
    Argon2::default().verify_password(password.as_bytes(), phc).is_ok()
}

/// Password hashing on `at_once` threads of its own, with up to `waiting` checks in line;
/// anything beyond that is turned away at once rather than queued without end.
///
/// Its own threads, not tokio's blocking pool: the allocator keeps a freed hash's 19 MiB in
/// the arena of the thread that ran it, and the blocking pool spreads 150 checks over dozens
/// of threads (592 MiB kept after a flood, with only two running at a time). On a few threads
/// of its own, what is kept is a few hashes' worth.
#[derive(Clone)]
pub struct PasswordWork {
    jobs: tokio::sync::mpsc::Sender<Job>,
}

type Job = Box<dyn FnOnce() + Send>;

impl PasswordWork {
    /// `at_once` 0 means one per core.
    pub fn new(at_once: usize, waiting: usize) -> Self {
        let at_once = if at_once == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { at_once };
        let (tx, rx) = tokio::sync::mpsc::channel::<Job>(waiting.max(1));
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..at_once {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new().name(format!("password-{i}")).spawn(move || {
                loop {
                    // One thread waits for the next job while holding the lock; the others
                    // wait for the lock. When every sender is gone, all of them end.
                    let job = rx.lock().unwrap_or_else(|p| p.into_inner()).blocking_recv();
                    match job {
                        Some(job) => job(),
                        None => return,
                    }
                }
            });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a password hashing thread");
            }
        }
        Self { jobs: tx }
    }

    pub async fn verify(&self, password: String, phc: String) -> Result<bool, HashError> {
        self.run(move || Ok(verify(&password, &phc))).await
    }

    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        self.run(move || hash(&password)).await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            // The caller may have hung up; then the answer goes nowhere.
            let _ = tx.send(work());
        });
        self.jobs.try_send(job).map_err(|e| match e {
            tokio::sync::mpsc::error::TrySendError::Full(_) => HashError::Busy,
            tokio::sync::mpsc::error::TrySendError::Closed(_) => {
                HashError::Failed("no password hashing thread is running".into())
            }
        })?;
        rx.await.map_err(|_| HashError::Failed("the password hashing thread stopped".into()))?
    }
}

/// A readable one-time password: 4 groups of 4 from an alphabet without look-alikes.
pub fn generate() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::rng();
    let mut out = String::new();
    for g in 0..4 {
        if g > 0 {
            out.push('-');
        }
        for _ in 0..4 {
            out.push(ALPHABET[rng.random_range(0..ALPHABET.len())] as char);
        }
    }
    out
}

pub fn check_strength(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_LEN {
        return Err(format!("the password must have at least {MIN_LEN} characters"));
    }
    if n > MAX_LEN {
        return Err(format!("the password must have at most {MAX_LEN} characters"));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_only_the_same_password() {
        let h = hash("correct horse battery").unwrap();
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse batterx", &h));
        assert!(!verify("x", "not a phc string"));
    }

    /// One thread and one place in line. With the thread busy, one check waits and the next
    /// is turned away at once; when the thread is free the waiting one runs.
    #[tokio::test]
    async fn beyond_the_threads_and_the_line_work_is_turned_away() {
        let work = PasswordWork::new(1, 1);
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let busy = tokio::spawn({
            let work = work.clone();
            async move {
                work.run(move || {
                    let _ = started_tx.send(());
                    let _ = gate.recv();
                    Ok(())
                })
                .await
            }
        });
        started.await.unwrap();
        let waiting = tokio::spawn({
            let work = work.clone();
            async move { work.verify("a password".into(), "not a phc".into()).await }
        });
        // The waiting check is in line once its task has run up to its await.
        while work.jobs.capacity() > 0 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(work.hash("another one".into()).await, Err(HashError::Busy)));
        release.send(()).unwrap();
        busy.await.unwrap().unwrap();
        assert!(!waiting.await.unwrap().unwrap(), "the waiting check ran once the thread was free");
        assert!(verify("pw 1234567890", &work.hash("pw 1234567890".into()).await.unwrap()));
    }
}
