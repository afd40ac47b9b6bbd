//! Choosing a version group of a service by weight.
//!
//! Weights are proportions, as in the Kubernetes Gateway API: a group's share
//! is its weight over the sum of weights, and weight 0 means no traffic. The
//! pick is a pure function of a roll in `0..total`, so tests can drive it and
//! sticky assignment (a hash instead of a random roll) can reuse it. This
//! module does not pick endpoints (`balance`) and does not own group data
//! (`state`).

/// Cumulative weights of a service's groups, in config order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// `cumulative[i]` is the sum of weights of groups `0..=i`.
    cumulative: Vec<u64>,
}

impl Split {
    pub fn new(weights: impl IntoIterator<Item = u32>) -> Split {
        let mut sum = 0u64;
        let cumulative = weights
            .into_iter()
            .map(|weight| {
                sum += u64::from(weight);
                sum
            })
            .collect();
        Split { cumulative }
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

    /// A random pick by weight.
    pub fn pick(&self) -> Option<usize> {
        match self.cumulative.len() {
            0 => None,
            1 if self.total() > 0 => Some(0),
            _ => self.pick_with(fastrand::u64(..)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
