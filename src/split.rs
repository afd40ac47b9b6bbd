//! Choosing a version group of a service by weight.
//!
//! Weights are proportions, as in the Kubernetes Gateway API: a group's share
//! is its weight over the sum of weights, and weight 0 means no traffic. The
//! groups lie side by side on a line from 0 to 1, each taking its share:
//! - a plain request lands at a random point;
//! - a request with a sticky key lands at the point the key hashes to, with a
//!   fixed-seed hash, so the same key lands in the same group on every replica
//!   and after every restart. When weights move, only the keys in the part of
//!   the line that changed owner move group (moving a canary from 5 % to 10 %
//!   moves 5 % of keys, all of them from stable to canary).
//!
//!
//! A request may also name its group in the service's override header (even
//! a weight-0 one, for testing a canary before it gets traffic), unless a
//! rollback took that group out. [`Split::pick_for`] is the whole decision,
//! a function of the request head (and a random roll for plain requests).
//! This module does not pick endpoints (`balance`) and does not own group
//! data (`state`, which builds a split per service for each snapshot).

use http::request::Parts;
use http::HeaderName;

use crate::config::StickyKey;

/// How a service's requests are split between its groups, in config order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// `cumulative[i]` is the sum of weights of groups `0..=i`.
    cumulative: Vec<u64>,
    /// The header a request names its group in, and the name each group
    /// answers to there: `None` for a group a rollback took out.
    override_header: Option<(HeaderName, Vec<Option<String>>)>,
    sticky: Option<StickyKey>,
}

impl Split {
    pub fn new(weights: impl IntoIterator<Item = u32>) -> Self {
        let mut sum = 0u64;
        let cumulative = weights
            .into_iter()
            .map(|weight| {
                sum += u64::from(weight);
                sum
            })
            .collect();
        Self {
            cumulative,
            override_header: None,
            sticky: None,
        }
    }

    /// Lets requests name their group in `header`; `groups` are the groups'
    /// names in config order, `None` where a rollback closed the header.
    pub fn with_override_header(mut self, header: HeaderName, groups: Vec<Option<String>>) -> Self {
        self.override_header = Some((header, groups));
        self
    }

    /// Sends requests that carry `key` to the group it hashes to.
    pub fn with_sticky_key(mut self, key: StickyKey) -> Self {
        self.sticky = Some(key);
        self
    }

    /// The group a request goes to: the one its override header names (even
    /// at weight 0, but never one a rollback took out), else the one its
    /// sticky key hashes to, else a weighted random pick.
    pub fn pick_for(&self, request: &Parts) -> Option<usize> {
        if let Some((header, groups)) = &self.override_header {
            if let Some(wanted) = request.headers.get(header) {
                if let Some(index) = groups
                    .iter()
                    .position(|name| name.as_deref().map(str::as_bytes) == Some(wanted.as_bytes()))
                {
                    return Some(index);
                }
            }
        }
        if let Some(key) = self
            .sticky
            .as_ref()
            .and_then(|sticky| sticky_key(sticky, request))
        {
            return self.pick_by_key(key);
        }
        self.pick()
    }

    /// Sum of all weights; zero means no group can be picked.
    pub fn total(&self) -> u64 {
        self.cumulative.last().copied().unwrap_or(0)
    }

    /// The group whose weight range holds `roll`; `roll` is taken modulo the total.
    pub fn pick_with(&self, roll: u64) -> Option<usize> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let roll = roll % total;
        // First group whose cumulative weight is above the roll; zero-weight
        // groups have the same cumulative value as their predecessor and are skipped.
        Some(self.cumulative.partition_point(|&upper| upper <= roll))
    }

    /// The group at `fraction` (in `0.0..1.0`) of the weight line.
    pub fn pick_at(&self, fraction: f64) -> Option<usize> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let roll = ((fraction.clamp(0.0, 1.0) * total as f64) as u64).min(total - 1);
        self.pick_with(roll)
    }

    /// The group a sticky key belongs to.
    pub fn pick_by_key(&self, key: &[u8]) -> Option<usize> {
        self.pick_at(key_fraction(key))
    }

    /// A random pick by weight.
    pub fn pick(&self) -> Option<usize> {
        match self.cumulative.len() {
            0 => None,
            1 if self.total() > 0 => Some(0),
            _ => self.pick_with(fastrand::u64(..)),
        }
    }
}

/// The request's sticky key, when it carries one.
fn sticky_key<'a>(sticky: &StickyKey, request: &'a Parts) -> Option<&'a [u8]> {
    match sticky {
        StickyKey::Header(name) => request.headers.get(name).map(|value| value.as_bytes()),
        StickyKey::Cookie(name) => request
            .headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .find_map(|pair| {
                let (key, value) = pair.trim().split_once('=')?;
                (key == name).then_some(value.as_bytes())
            }),
    }
}

/// Where a key lands on the line, in `0.0..1.0`: FNV-1a, then the splitmix64
/// finalizer to spread similar keys. Fixed forever: changing it would move
/// every sticky user at the next deploy.
pub fn key_fraction(key: &[u8]) -> f64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in key {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash ^= hash >> 30;
    hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash ^= hash >> 27;
    hash = hash.wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^= hash >> 31;
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_fraction_is_fixed_and_spread() {
        // Golden values, computed once from the hash as shipped. A sticky
        // user's group follows from where their key lands, so any change to
        // the hash (constants, byte order, finalizer) would move every sticky
        // user between versions at the next deploy: this must fail first.
        let golden: [(&[u8], f64); 5] = [
            (b"", 0.9576734252420561),
            (b"user-1", 0.7679704410612723),
            (b"user-42", 0.4768919313585631),
            (b"session=abc123", 0.8744828773292076),
            (b"\xff\x00", 0.023868456264712457),
        ];
        for (key, expected) in golden {
            assert_eq!(key_fraction(key).to_bits(), expected.to_bits(), "{key:?}");
        }
        // And what those positions mean for a 90/10 split.
        let split = Split::new([90, 10]);
        assert_eq!(split.pick_by_key(b"user-1"), Some(0));
        assert_eq!(split.pick_by_key(b"session=abc123"), Some(0));
        assert_eq!(split.pick_by_key(b""), Some(1));
        let mut buckets = [0u32; 10];
        for i in 0..100_000 {
            buckets[(key_fraction(format!("user-{i}").as_bytes()) * 10.0) as usize] += 1;
        }
        for count in buckets {
            assert!((9_500..=10_500).contains(&count), "{buckets:?}");
        }
    }

    #[test]
    fn sticky_keys_move_minimally_when_weights_change() {
        let before = Split::new([95, 5]);
        let after = Split::new([90, 10]);
        let keys: Vec<String> = (0..100_000).map(|i| format!("user-{i}")).collect();
        let mut moved = 0;
        for key in &keys {
            let (a, b) = (
                before.pick_by_key(key.as_bytes()),
                after.pick_by_key(key.as_bytes()),
            );
            if a != b {
                // Only stable → canary moves happen when the canary grows.
                assert_eq!((a, b), (Some(0), Some(1)));
                moved += 1;
            }
        }
        // 5 % of keys move, within half a percent.
        assert!((4_500..=5_500).contains(&moved), "{moved}");
    }

    #[test]
    fn same_key_same_group_under_a_different_total() {
        // Scaling every weight keeps every key in place.
        let small = Split::new([9, 1]);
        let large = Split::new([900, 100]);
        for i in 0..10_000 {
            let key = format!("k{i}");
            assert_eq!(
                small.pick_by_key(key.as_bytes()),
                large.pick_by_key(key.as_bytes())
            );
        }
    }

    #[test]
    fn rolls_map_onto_weight_ranges() {
        let split = Split::new([90, 0, 10]);
        assert_eq!(split.total(), 100);
        assert_eq!(split.pick_with(0), Some(0));
        assert_eq!(split.pick_with(89), Some(0));
        assert_eq!(split.pick_with(90), Some(2));
        assert_eq!(split.pick_with(99), Some(2));
        assert_eq!(split.pick_with(100), Some(0));
    }

    #[test]
    fn zero_weight_is_never_picked() {
        let split = Split::new([0, 5, 0]);
        for roll in 0..1000 {
            assert_eq!(split.pick_with(roll), Some(1));
        }
    }

    #[test]
    fn all_zero_picks_nothing() {
        assert_eq!(Split::new([0, 0]).pick(), None);
        assert_eq!(Split::new([]).pick(), None);
    }

    #[test]
    fn random_picks_follow_the_weights() {
        let split = Split::new([95, 5]);
        let canary = (0..100_000).filter(|_| split.pick() == Some(1)).count();
        // 5 % of 100 000 within half a percent.
        assert!((4_500..=5_500).contains(&canary), "{canary}");
    }
}
