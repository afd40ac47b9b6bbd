//! Reading histograms back: cumulative bucket counts out of a prometheus
//! `Histogram`, adding and subtracting them, and the quantile PromQL's
//! `histogram_quantile` would compute from them.
//!
//! Every histogram of a family has the same bounds, so bucket lists of
//! several endpoints, or of one endpoint at two moments, line up element by
//! element. `window.rs` builds readings and windows on top of these; the
//! admin API uses [`quantile`] for an endpoint's p50/p90/p99. Nothing here
//! registers or records anything.

use prometheus::Histogram;

/// Cumulative bucket counts of a histogram, as `(upper bound, count)` pairs
/// ending with `(+Inf, total)`. Same bounds for every histogram of a family,
/// so these can be added and subtracted element-wise.
pub(super) fn cumulative_buckets(histogram: &Histogram) -> Vec<(f64, u64)> {
    use prometheus::core::Metric;
    let metric = histogram.metric();
    let proto = metric.get_histogram();
    let mut buckets: Vec<(f64, u64)> = proto
        .get_bucket()
        .iter()
        .map(|bucket| (bucket.upper_bound(), bucket.cumulative_count()))
        .collect();
    #[allow(deprecated)]
    let total = proto.get_sample_count();
    buckets.push((f64::INFINITY, total));
    buckets
}

/// Adds `other`'s counts into `into` (same bounds), or copies it when empty.
pub(super) fn add_buckets(into: &mut Vec<(f64, u64)>, other: &[(f64, u64)]) {
    if into.is_empty() {
        into.extend_from_slice(other);
        return;
    }
    for (mine, theirs) in into.iter_mut().zip(other) {
        mine.1 += theirs.1;
    }
}

/// `later - earlier` element-wise: the observations between two readings.
pub(super) fn bucket_delta(later: &[(f64, u64)], earlier: &[(f64, u64)]) -> Vec<(f64, u64)> {
    if earlier.is_empty() {
        return later.to_vec();
    }
    later
        .iter()
        .zip(earlier)
        .map(|(later, earlier)| (later.0, later.1.saturating_sub(earlier.1)))
        .collect()
}

/// The `q`-quantile (0..=1) of cumulative buckets, interpolated linearly inside
/// the bucket that holds it, as PromQL's `histogram_quantile` does. None when
/// there are no observations. A quantile in the +Inf bucket reads as the
/// largest finite bound.
pub(super) fn quantile(q: f64, buckets: &[(f64, u64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total == 0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total as f64;
    let mut lower_bound = 0.0;
    let mut lower_count = 0u64;
    for &(upper_bound, count) in buckets {
        if count as f64 >= rank && count > lower_count {
            if upper_bound.is_infinite() {
                return Some(lower_bound);
            }
            let inside = (rank - lower_count as f64) / (count - lower_count) as f64;
            return Some(lower_bound + (upper_bound - lower_bound) * inside);
        }
        lower_bound = upper_bound;
        lower_count = count;
    }
    Some(lower_bound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    #[test]
    fn quantiles_interpolate_inside_buckets() {
        let metrics = Metrics::new(&[0.01, 0.1, 1.0]);
        let endpoint = metrics.endpoint("s", "g", "e");
        assert_eq!(quantile(0.5, &cumulative_buckets(&endpoint.duration)), None);
        for _ in 0..50 {
            endpoint.duration.observe(0.005);
        }
        for _ in 0..50 {
            endpoint.duration.observe(0.05);
        }
        let buckets = cumulative_buckets(&endpoint.duration);
        assert_eq!(
            buckets,
            vec![(0.01, 50), (0.1, 100), (1.0, 100), (f64::INFINITY, 100)]
        );
        assert!((quantile(0.5, &buckets).unwrap() - 0.01).abs() < 1e-9);
        // Rank 99 of 100 is 49/50 of the way through the (0.01, 0.1] bucket.
        let p99 = quantile(0.99, &buckets).unwrap();
        assert!((p99 - (0.01 + 0.09 * 49.0 / 50.0)).abs() < 1e-9, "{p99}");
        endpoint.duration.observe(50.0);
        let later = cumulative_buckets(&endpoint.duration);
        let delta = bucket_delta(&later, &buckets);
        assert_eq!(delta.last(), Some(&(f64::INFINITY, 1)));
        assert_eq!(quantile(0.99, &delta), Some(1.0));
        let mut merged = Vec::new();
        add_buckets(&mut merged, &buckets);
        add_buckets(&mut merged, &delta);
        assert_eq!(merged, later);
    }
}
