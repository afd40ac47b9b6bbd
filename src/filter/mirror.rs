//! A route's `mirror` filter at run time: which requests are copied (its
//! `percent`), how many copies may be on their way at once (its
//! `max_in_flight`, past which copies are shed and counted, never queued),
//! and the request head each copy takes, as the filters before the mirror
//! left it.
//!
//! Sending a copy, waiting for its body and reading its answer is
//! `proxy::mirror`'s; the body copy itself is `body::BodyCopy`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use http::request::Parts;
use http::Request;

use crate::config::Mirror;
use crate::metrics::MirrorShed;

/// One `mirror` filter of a route in a snapshot.
#[derive(Debug)]
pub(crate) struct MirrorFilter {
    fraction: f64,
    max_in_flight: usize,
    target: Arc<MirrorTarget>,
}

/// Where a filter's copies go, shared with the copies on their way.
#[derive(Debug)]
pub(crate) struct MirrorTarget {
    /// Index into the snapshot's services.
    pub service: usize,
    /// Index into the service's groups; None splits by the service's weights.
    pub group: Option<usize>,
    pub max_body_bytes: u64,
    pub shed: MirrorShed,
    in_flight: AtomicUsize,
}

/// A copy on its way: holds one of the filter's `max_in_flight` places
/// until it is dropped.
#[derive(Debug)]
pub(crate) struct MirrorCopy {
    /// The request's method, URI, version and headers; its body follows.
    pub head: Request<()>,
    pub target: Arc<MirrorTarget>,
}

impl MirrorFilter {
    /// `group` is the config's group name resolved to its index.
    pub(crate) fn new(config: &Mirror, group: Option<usize>, shed: MirrorShed) -> Self {
        Self {
            fraction: config.fraction,
            max_in_flight: config.max_in_flight,
            target: Arc::new(MirrorTarget {
                service: config.service,
                group,
                max_body_bytes: config.max_body_bytes,
                shed,
                in_flight: AtomicUsize::new(0),
            }),
        }
    }

    /// Draws whether this request is copied; when it is and a place is
    /// free, the copy of its head. A copy with no place is shed, counted.
    pub(crate) fn capture(&self, parts: &Parts) -> Option<MirrorCopy> {
        if !self.sampled(fastrand::f64()) {
            return None;
        }
        let in_flight = &self.target.in_flight;
        if in_flight.fetch_add(1, Ordering::Relaxed) >= self.max_in_flight {
            in_flight.fetch_sub(1, Ordering::Relaxed);
            self.target.shed.busy.inc();
            return None;
        }
        let mut head = Request::new(());
        *head.method_mut() = parts.method.clone();
        *head.uri_mut() = parts.uri.clone();
        *head.version_mut() = parts.version;
        *head.headers_mut() = parts.headers.clone();
        Some(MirrorCopy {
            head,
            target: self.target.clone(),
        })
    }

    /// `draw` is uniform in [0, 1).
    fn sampled(&self, draw: f64) -> bool {
        draw < self.fraction
    }

    /// Copies on their way now.
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        self.target.in_flight.load(Ordering::Relaxed)
    }
}

impl Drop for MirrorCopy {
    fn drop(&mut self) {
        self.target.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(percent: f64, max_in_flight: usize) -> (MirrorFilter, crate::metrics::Metrics) {
        let metrics = crate::metrics::Metrics::new(&[1.0]);
        let config = Mirror {
            service: 0,
            group: None,
            fraction: percent / 100.0,
            max_in_flight,
            max_body_bytes: 1024,
        };
        let shed = metrics.mirror_shed("edge", "api", "shadow");
        (MirrorFilter::new(&config, None, shed), metrics)
    }

    fn parts() -> Parts {
        let request = Request::builder()
            .method("POST")
            .uri("/orders?id=7")
            .header("x-tester", "yes")
            .body(())
            .unwrap();
        request.into_parts().0
    }

    #[test]
    fn a_copy_takes_the_head_as_it_is() {
        let (filter, _metrics) = filter(100.0, 4);
        let copy = filter.capture(&parts()).expect("every request is copied");
        assert_eq!(copy.head.method(), "POST");
        assert_eq!(copy.head.uri(), "/orders?id=7");
        assert_eq!(copy.head.headers()["x-tester"], "yes");
    }

    #[test]
    fn copies_past_max_in_flight_are_shed_and_counted() {
        let (filter, _metrics) = filter(100.0, 2);
        let first = filter.capture(&parts()).expect("a place is free");
        let _second = filter.capture(&parts()).expect("a place is free");
        assert!(filter.capture(&parts()).is_none());
        assert!(filter.capture(&parts()).is_none());
        assert_eq!(filter.target.shed.busy.get(), 2);
        assert_eq!(filter.in_flight(), 2);
        drop(first);
        assert_eq!(filter.in_flight(), 1);
        assert!(filter.capture(&parts()).is_some());
    }

    #[test]
    fn percent_is_the_share_of_draws_copied() {
        let (ten, _metrics) = filter(10.0, 1);
        assert!(ten.sampled(0.0));
        assert!(ten.sampled(0.0999));
        assert!(!ten.sampled(0.1));
        assert!(!ten.sampled(0.9999));
        let (none, _metrics) = filter(0.0, 1);
        assert!(!none.sampled(0.0));
        let (all, _metrics) = filter(100.0, 1);
        assert!(all.sampled(0.9999));
    }
}
