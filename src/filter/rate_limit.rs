//! The `rate_limit` filter: a local token bucket per key (client address,
//! client identity or a header's value), answered with 429 and
//! `Retry-After` when empty.
//!
//! Each bucket holds `burst` tokens and refills at `requests` per `per`;
//! a request takes one. The bucket is kept as the generic cell rate
//! algorithm keeps it (one instant: when the bucket would next be full of
//! debt), so counts are exact in integer time, with no drift from adding
//! fractions of tokens. The table of buckets is bounded: at `max_keys` the
//! least recently used key is forgotten (it starts again with a full
//! bucket), so memory stays flat however many keys arrive. It is split into
//! shards, each behind its own mutex taken for one lookup, so requests of
//! different keys rarely wait for each other and no lock is shared by the
//! whole proxy. The table lives in the route of one snapshot: a reload
//! starts every bucket full. Time is passed in, so tests drive it.

use std::hash::{BuildHasher, Hash, RandomState};
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use http::request::Parts;
use lru::LruCache;
use prometheus::IntCounter;
use tokio::time::Instant;

use crate::config::{RateKey, RateLimit};
use crate::tls::ClientIdentity;

const SHARDS: usize = 16;

/// One route's rate limit: its settings, its table and its counter.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    config: RateLimit,
    /// Time one token takes to come back: `per / requests`.
    interval: Duration,
    /// How far ahead of now a bucket may be spent: `interval × (burst − 1)`.
    tolerance: Duration,
    table: Table,
    limited: IntCounter,
}

#[derive(Debug)]
enum Table {
    Addresses(Shards<IpAddr>),
    /// Identities and header values; requests without one share "".
    Texts(Shards<String>),
}

#[derive(Debug)]
struct Shards<K: Hash + Eq> {
    hasher: RandomState,
    shards: Box<[Mutex<LruCache<K, Bucket>>]>,
}

/// The theoretical arrival time of the key's next request: a request
/// earlier than this by more than the tolerance finds the bucket empty.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    next: Instant,
}

impl RateLimiter {
    pub(crate) fn new(config: RateLimit, limited: IntCounter) -> Self {
        let interval = config.per / config.requests.max(1);
        let tolerance = interval * config.burst.saturating_sub(1);
        let per_shard = NonZeroUsize::new(config.max_keys.div_ceil(SHARDS).max(1))
            .expect("at least one key per shard");
        let table = match config.key {
            RateKey::ClientAddress => Table::Addresses(Shards::new(per_shard)),
            RateKey::ClientIdentity | RateKey::Header(_) => Table::Texts(Shards::new(per_shard)),
        };
        Self {
            config,
            interval,
            tolerance,
            table,
            limited,
        }
    }

    /// Takes a token for this request, or says how long until one is
    /// there (and counts the refusal).
    pub(crate) fn check(
        &self,
        parts: &Parts,
        client: IpAddr,
        identity: Option<&ClientIdentity>,
        now: Instant,
    ) -> Result<(), Duration> {
        let taken = match (&self.table, &self.config.key) {
            (Table::Addresses(shards), _) => shards.take(&client, now, self),
            (Table::Texts(shards), RateKey::ClientIdentity) => {
                let key = identity.map_or("", ClientIdentity::primary);
                shards.take(key, now, self)
            }
            (Table::Texts(shards), RateKey::Header(name)) => {
                let key = parts
                    .headers
                    .get(name)
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or("");
                shards.take(key, now, self)
            }
            (Table::Texts(shards), RateKey::ClientAddress) => shards.take("", now, self),
        };
        if taken.is_err() {
            self.limited.inc();
        }
        taken
    }

    /// A new key's bucket, its first token taken.
    fn fresh(&self, now: Instant) -> Bucket {
        Bucket {
            next: now + self.interval,
        }
    }

    /// Takes a token from `bucket` at `now`, or says how long until one is
    /// there.
    fn take_from(&self, bucket: &mut Bucket, now: Instant) -> Result<(), Duration> {
        let next = bucket.next.max(now);
        // A tolerance longer than the clock has run cannot be in the way.
        if let Some(earliest) = next.checked_sub(self.tolerance) {
            if earliest > now {
                return Err(earliest - now);
            }
        }
        bucket.next = next + self.interval;
        Ok(())
    }

    /// Keys remembered now, for tests and the closing measurement.
    #[cfg(test)]
    fn keys(&self) -> usize {
        match &self.table {
            Table::Addresses(shards) => shards.len(),
            Table::Texts(shards) => shards.len(),
        }
    }
}

impl<K: Hash + Eq> Shards<K> {
    fn new(per_shard: NonZeroUsize) -> Self {
        Self {
            hasher: RandomState::new(),
            shards: (0..SHARDS)
                .map(|_| Mutex::new(LruCache::new(per_shard)))
                .collect(),
        }
    }

    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> MutexGuard<'_, LruCache<K, Bucket>> {
        let index = (self.hasher.hash_one(key) % SHARDS as u64) as usize;
        self.shards[index]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn take<Q>(&self, key: &Q, now: Instant, limiter: &RateLimiter) -> Result<(), Duration>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let mut shard = self.shard(key);
        if let Some(bucket) = shard.get_mut(key) {
            return limiter.take_from(bucket, now);
        }
        // Full: the least recently used key is forgotten.
        shard.push(key.to_owned(), limiter.fresh(now));
        Ok(())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().map_or(0, |shard| shard.len()))
            .sum()
    }
}

/// `Retry-After` in whole seconds, rounded up: at least 1.
pub(crate) fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderName;

    fn limiter(
        requests: u32,
        per: Duration,
        burst: u32,
        key: RateKey,
        max_keys: usize,
    ) -> RateLimiter {
        RateLimiter::new(
            RateLimit {
                requests,
                per,
                burst,
                key,
                max_keys,
            },
            IntCounter::new("limited", "test").unwrap(),
        )
    }

    fn request(headers: &[(&str, &str)]) -> Parts {
        let mut builder = http::Request::get("/");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    const CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));

    #[test]
    fn exact_counts_over_a_window_with_a_fake_clock() {
        // 10 a second, 5 at once.
        let limiter = limiter(10, Duration::from_secs(1), 5, RateKey::ClientAddress, 100);
        let parts = request(&[]);
        let start = Instant::now();
        let allowed_at = |now| limiter.check(&parts, CLIENT, None, now);
        for _ in 0..5 {
            assert!(allowed_at(start).is_ok());
        }
        let refused = allowed_at(start).unwrap_err();
        assert_eq!(refused, Duration::from_millis(100));
        assert_eq!(retry_after_seconds(refused), 1);
        // One token every 100 ms: over the next 2 s, exactly 20 more.
        let mut allowed = 0;
        for step in 1..=200 {
            let now = start + Duration::from_millis(10 * step);
            if allowed_at(now).is_ok() {
                allowed += 1;
            }
        }
        assert_eq!(allowed, 20);
        assert_eq!(limiter.limited.get(), 1 + 200 - 20);
        // Idle for a minute: the bucket is full again, not fuller.
        let later = start + Duration::from_secs(60);
        let burst = (0..10).filter(|_| allowed_at(later).is_ok()).count();
        assert_eq!(burst, 5);
    }

    #[test]
    fn keys_are_counted_apart() {
        let name = HeaderName::from_static("x-api-key");
        let limiter = limiter(1, Duration::from_secs(60), 1, RateKey::Header(name), 100);
        let now = Instant::now();
        let a = request(&[("x-api-key", "a")]);
        let b = request(&[("x-api-key", "b")]);
        let none = request(&[]);
        assert!(limiter.check(&a, CLIENT, None, now).is_ok());
        assert!(limiter.check(&a, CLIENT, None, now).is_err());
        assert!(limiter.check(&b, CLIENT, None, now).is_ok());
        assert!(limiter.check(&none, CLIENT, None, now).is_ok());
        assert!(limiter.check(&none, CLIENT, None, now).is_err());
        let addresses =
            super::tests::limiter(1, Duration::from_secs(60), 1, RateKey::ClientAddress, 100);
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(addresses.check(&none, CLIENT, None, now).is_ok());
        assert!(addresses.check(&none, CLIENT, None, now).is_err());
        assert!(addresses.check(&none, other, None, now).is_ok());
    }

    /// Resident memory of a table holding 100 000 header keys, measured
    /// from /proc (Linux): `cargo test --lib -- --ignored --exact
    /// filter::rate_limit::tests::bench_memory_of_a_hundred_thousand_keys
    /// --nocapture`. A measurement, not an assertion.
    #[test]
    #[ignore = "measurement: run on its own"]
    fn bench_memory_of_a_hundred_thousand_keys() {
        fn resident_bytes() -> u64 {
            let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
            let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
            pages * 4096
        }
        let name = HeaderName::from_static("x-api-key");
        let now = Instant::now();
        let parts: Vec<Parts> = (0..100_000)
            .map(|key| request(&[("x-api-key", &format!("key-{key:06}"))]))
            .collect();
        let before = resident_bytes();
        let limiter = limiter(1, Duration::from_secs(1), 1, RateKey::Header(name), 100_000);
        for request in &parts {
            let _ = limiter.check(request, CLIENT, None, now);
        }
        let after = resident_bytes();
        eprintln!(
            "{} keys: {:.1} MB resident, {} bytes a key",
            limiter.keys(),
            (after - before) as f64 / 1e6,
            (after - before) / limiter.keys() as u64
        );
    }

    #[test]
    fn the_table_stays_bounded_under_a_hundred_thousand_keys() {
        let name = HeaderName::from_static("x-api-key");
        let limiter = limiter(1, Duration::from_secs(1), 1, RateKey::Header(name), 1_000);
        let now = Instant::now();
        for key in 0..100_000 {
            let parts = request(&[("x-api-key", &key.to_string())]);
            assert!(limiter.check(&parts, CLIENT, None, now).is_ok());
        }
        // 16 shards of ceil(1 000 / 16) = 63 keys.
        assert!(limiter.keys() <= 1_008, "{}", limiter.keys());
        assert!(limiter.keys() >= 900, "{}", limiter.keys());
    }
}
