//! `services[].outlier`: passive outlier detection. Counts are at least 1,
//! ejections are non-zero and can grow from `base_ejection` to
//! `max_ejection`, and the ejected share is a percentage.
//!
//! Called from `services`; the ejection itself is `health::outlier`.

use super::values::which;
use super::Checker;
use crate::config::raw::RawOutlier;
use crate::config::{defaults, OutlierConfig};

impl Checker {
    pub(super) fn outlier(&mut self, path: &str, raw: &RawOutlier) -> OutlierConfig {
        let d = defaults::OUTLIER;
        // Checked even when `enabled: false`, so that turning detection back
        // on cannot surface a problem that was there all along.
        let consecutive_failures = self.int_in_range(
            &format!("{path}.consecutive_failures"),
            raw.consecutive_failures,
            d.consecutive_failures,
            1..=u32::MAX,
            "give the consecutive failures that eject an endpoint, at least 1, e.g. 5 (set \
             `enabled: false` to never eject)",
        );
        let base_ejection = self.duration_or(
            &format!("{path}.base_ejection"),
            raw.base_ejection.as_deref(),
            d.base_ejection,
            Some(
                "an ejected endpoint would be back at once, so ejecting would do nothing; set \
                 `enabled: false` to never eject",
            ),
        );
        let max_ejection = self.duration_or(
            &format!("{path}.max_ejection"),
            raw.max_ejection.as_deref(),
            d.max_ejection,
            Some("every ejection would end at once"),
        );
        if let (Some(base), Some(max)) = (base_ejection, max_ejection) {
            if max < base {
                self.issue(
                    format!("{path}.max_ejection"),
                    format!(
                        "{} is shorter than {}, the length of the first ejection, which is \
                         doubled on each repeat up to `max_ejection`; set `max_ejection` to at \
                         least `base_ejection`",
                        which("max_ejection", max, raw.max_ejection.is_some()),
                        which("base_ejection", base, raw.base_ejection.is_some()),
                    ),
                );
            }
        }
        let max_ejected_percent = self.int_in_range(
            &format!("{path}.max_ejected_percent"),
            raw.max_ejected_percent,
            d.max_ejected_percent,
            0..=100,
            "give the most of a group's endpoints ejected at once, in percent from 0 to 100, \
             e.g. 50",
        );
        OutlierConfig {
            enabled: raw.enabled.unwrap_or(d.enabled),
            consecutive_failures,
            base_ejection: base_ejection.unwrap_or(d.base_ejection),
            max_ejection: max_ejection.unwrap_or(d.max_ejection),
            max_ejected_percent,
        }
    }
}
