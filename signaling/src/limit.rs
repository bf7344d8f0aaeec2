//! Token buckets: per client IP for HTTP, per username for failed logins, per socket for
//! signaling. Pure arithmetic on an explicit `now`, so tests need no clock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Clone, Copy, Debug)]
pub struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    pub fn full(burst: u32, now: Instant) -> Self {
        Self { tokens: f64::from(burst), last: now }
    }

    fn refill(&mut self, rate: u32, burst: u32, now: Instant) {
        self.refill_per_sec(f64::from(rate), burst, now);
    }

    fn refill_per_sec(&mut self, per_sec: f64, burst: u32, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * per_sec).min(f64::from(burst));
        self.last = now;
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, rate: u32, burst: u32, now: Instant) -> bool {
        self.refill(rate, burst, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    pub fn has(&mut self, rate: u32, burst: u32, now: Instant) -> bool {
        self.refill(rate, burst, now);
        self.tokens >= 1.0
    }
}

/// Buckets by key. Rates are per second; `rate == 0` means unlimited.
pub struct KeyedLimiter {
    rate: u32,
    pub(crate) burst: u32,
    /// Refill period: `rate` tokens come back per second, or, with `with_period`, `burst`
    /// tokens per period (used for "5 failed logins per minute").
    period: Option<std::time::Duration>,
    map: Mutex<HashMap<String, Bucket>>,
}

/// Past this many keys, full buckets (idle clients) are dropped so the map cannot grow forever.
const PRUNE_AT: usize = 10_000;

impl KeyedLimiter {
    pub fn new(rate: u32, burst: u32) -> Self {
        Self { rate, burst: burst.max(1), period: None, map: Mutex::new(HashMap::new()) }
    }

    pub fn with_period(mut self, period: std::time::Duration) -> Self {
        self.period = Some(period);
        self
    }

    pub(crate) fn unlimited(&self) -> bool {
        self.rate == 0 && self.period.is_none()
    }

    pub(crate) fn per_sec(&self) -> f64 {
        match self.period {
            Some(p) => f64::from(self.burst) / p.as_secs_f64(),
            None => f64::from(self.rate),
        }
    }

    fn with<R>(&self, key: &str, now: Instant, f: impl FnOnce(&mut Bucket) -> R) -> R {
        let (per_sec, burst) = (self.per_sec(), self.burst);
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > PRUNE_AT {
            map.retain(|_, b| {
                b.refill_per_sec(per_sec, burst, now);
                b.tokens < f64::from(burst)
            });
        }
        let b = map.entry(key.to_owned()).or_insert_with(|| Bucket::full(burst, now));
        b.refill_per_sec(per_sec, burst, now);
        f(b)
    }

    pub fn take(&self, key: &str, now: Instant) -> bool {
        self.unlimited()
            || self.with(key, now, |b| {
                if b.tokens >= 1.0 {
                    b.tokens -= 1.0;
                    true
                } else {
                    false
                }
            })
    }

    pub fn has(&self, key: &str, now: Instant) -> bool {
        self.unlimited() || self.with(key, now, |b| b.tokens >= 1.0)
    }

    /// Returns a token taken for an attempt that turned out not to count (a correct password).
    pub fn give_back(&self, key: &str, now: Instant) {
        if !self.unlimited() {
            let burst = f64::from(self.burst);
            self.with(key, now, |b| b.tokens = (b.tokens + 1.0).min(burst));
        }
    }
}

/// A keyed limit as the server applies it: this node's buckets, or, with several nodes on one
/// Redis, buckets they all share (`store::redis::RedisBuckets`). While Redis does not answer,
/// each node applies the limit alone with its own buckets (a node must keep serving; the
/// limit is then per node, as it was before nodes shared it), and says so once in the log.
pub struct Limiter {
    name: &'static str,
    local: KeyedLimiter,
    shared: Option<std::sync::Arc<crate::store::redis::RedisBuckets>>,
    alone: std::sync::atomic::AtomicBool,
}

impl Limiter {
    pub fn new(name: &'static str, local: KeyedLimiter) -> Self {
        Self { name, local, shared: None, alone: std::sync::atomic::AtomicBool::new(false) }
    }

    pub fn shared(mut self, buckets: std::sync::Arc<crate::store::redis::RedisBuckets>) -> Self {
        self.shared = Some(buckets);
        self
    }

    pub async fn take(&self, key: &str, now: Instant) -> bool {
        self.apply(key, now, true).await
    }

    /// A token back for an attempt that turned out not to count (a correct password).
    pub async fn give_back(&self, key: &str, now: Instant) {
        self.apply(key, now, false).await;
    }

    async fn apply(&self, key: &str, now: Instant, take: bool) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        if let Some(buckets) = &self.shared
            && !self.local.unlimited()
        {
            match buckets.apply(self.name, key, self.local.per_sec(), self.local.burst, take).await {
                Ok(ok) => {
                    if self.alone.swap(false, Relaxed) {
                        tracing::info!(limit = self.name, "limit shared through Redis again");
                    }
                    return ok;
                }
                Err(e) => {
                    if !self.alone.swap(true, Relaxed) {
                        tracing::warn!(limit = self.name, error = %e, "Redis does not answer: this node applies the limit alone");
                    }
                }
            }
        }
        if take {
            self.local.take(key, now)
        } else {
            self.local.give_back(key, now);
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_allows_burst_then_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::full(3, t0);
        assert!(b.take(1, 3, t0) && b.take(1, 3, t0) && b.take(1, 3, t0));
        assert!(!b.take(1, 3, t0));
        assert!(b.take(1, 3, t0 + Duration::from_secs(1)));
        assert!(!b.take(1, 3, t0 + Duration::from_secs(1)));
    }

    #[test]
    fn keys_are_independent_and_zero_is_unlimited() {
        let t0 = Instant::now();
        let l = KeyedLimiter::new(1, 1);
        assert!(l.take("a", t0));
        assert!(!l.take("a", t0));
        assert!(l.take("b", t0));
        let free = KeyedLimiter::new(0, 1);
        assert!((0..100).all(|_| free.take("a", t0)));
    }
}
