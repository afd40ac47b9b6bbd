//! Semantic checks: turning the raw serde mirror into the typed [`Config`].
//!
//! This module owns every rule about what the values mean: addresses parse,
//! durations and sizes parse and are non-zero where zero is nonsense, counts
//! and sizes stay within what the proxy can honour, names are unique and
//! well-formed, routes point at services that exist, weights leave some
//! traffic somewhere, match conditions are well-formed, a service's override
//! header, sticky key and rollout fit its groups (a rollout names a group
//! other than the stable one, its steps climb), and related durations agree
//! (a health check's timeout fits its interval, ejections can grow from
//! `base_ejection` to `max_ejection`, one retry's try fits the request
//! timeout), and each group's endpoints are either listed or discovered
//! through a well-formed DNS name and port, never both. It applies the
//! defaults from [`super::defaults`]. It reports *every* problem, each with
//! the key path a user can find in the file, instead of stopping at the
//! first. It does not read files or parse YAML (see `raw`), and it does not
//! check anything that needs the network, such as whether a port is free or
//! a `dns` name resolves.
//!
//! One [`Checker`] walks the file and collects the issues; each part of the
//! file has its own module with its own `impl Checker` block: `listeners`
//! (with limits and listener TLS), `routes` (and their matches), `services`
//! (timeouts, EWMA, upstream TLS), `groups` (endpoints, `dns` groups,
//! deployments, `discovery`), `split` (override header, sticky key), the
//! policies `health`, `outlier`, `slow_start`, `retry` and `rollout`, and
//! `metrics`.
//! `values` holds the leaf checks every part shares (durations, sizes,
//! ranges, addresses, names, rates), `admin` the admin listener, and
//! `kubernetes` the API access and the `fleet`. The
//! rest of the top of the file (shutdown, `state_file`, access log) is
//! checked here, in [`Checker::config`].
//!
//! The syntax of one value (a host pattern, path prefix, `dns` target,
//! percentage, probe path or cookie name) belongs to `FromStr` on the type it
//! becomes, beside that type in `config/`; a check here calls `.parse()` and
//! records the error at the key path. What a value means for the rest of the
//! file (ranges, uniqueness, agreement with other keys) stays here.

mod admin;
mod filters;
mod groups;
mod health;
mod kubernetes;
mod listeners;
mod metrics;
mod outlier;
mod retry;
mod rollout;
mod routes;
mod services;
mod slow_start;
mod split;
mod values;

pub(crate) use kubernetes::replica_name_problem;

use std::net::SocketAddr;
use std::path::PathBuf;

use super::raw::RawConfig;
use super::{defaults, AccessLogConfig, Config, ConfigIssue, MetricsConfig, ShutdownConfig};

/// Stands in for a value that failed a check, so the walk can go on and find
/// the remaining problems. It never escapes: any recorded issue means the
/// whole `Config` is thrown away.
const PLACEHOLDER_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

/// Checks `raw` and builds the typed configuration, or returns every problem found.
pub(crate) fn validate(raw: RawConfig) -> Result<Config, Vec<ConfigIssue>> {
    let mut checker = Checker::default();
    let config = checker.config(raw);
    if checker.issues.is_empty() {
        Ok(config)
    } else {
        Err(checker.issues)
    }
}

/// One walk over the file: every check records its issue here and goes on.
#[derive(Default)]
struct Checker {
    issues: Vec<ConfigIssue>,
}

impl Checker {
    fn issue(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.issues.push(ConfigIssue {
            path: path.into(),
            message: message.into(),
        });
    }

    fn config(&mut self, raw: RawConfig) -> Config {
        let (admin, admin_listen) = self.admin(raw.admin);

        // Routes resolve services by the names in the file, so services may
        // come after the routes that use them; issues stay in file-section order.
        let service_names: Vec<&str> = raw.services.iter().map(|s| s.name.as_str()).collect();
        let listeners = self.listeners(&raw.listeners, &service_names, admin_listen);
        let raw_metrics = raw.metrics.unwrap_or_default();
        // Read before the services: whether the derived `deployment` names
        // must be valid Kubernetes names depends on it.
        let linkerd_compatible = raw_metrics.linkerd_compatible.unwrap_or(false);
        let services = self.services(&raw.services, linkerd_compatible);
        self.mirror_groups(&listeners, &services);

        let metrics = MetricsConfig {
            buckets: self.buckets(raw_metrics.buckets),
            linkerd_compatible,
            namespace: self.namespace(raw_metrics.namespace),
        };
        let grace = raw.shutdown.and_then(|s| s.grace_period);
        let shutdown = ShutdownConfig {
            grace_period: self.duration(
                "shutdown.grace_period",
                grace.as_deref(),
                defaults::GRACE_PERIOD,
                // Zero is a legitimate "stop now".
                None,
            ),
        };

        let state_file = raw.state_file.and_then(|text| {
            if text.trim().is_empty() {
                self.issue(
                    "state_file",
                    "`state_file` is empty; give the path of a file luas may create and \
                     rewrite, e.g. /var/lib/luas/state.json, or remove the key to keep runtime \
                     changes in memory only",
                );
                return None;
            }
            Some(PathBuf::from(text))
        });

        let discovery = self.discovery(raw.discovery);
        let kubernetes = self.kubernetes(raw.kubernetes);
        let fleet = raw.fleet.map(|fleet| self.fleet(fleet));

        Config {
            admin,
            listeners,
            services,
            metrics,
            shutdown,
            state_file,
            access_log: AccessLogConfig {
                enabled: raw
                    .access_log
                    .and_then(|access_log| access_log.enabled)
                    .unwrap_or(false),
            },
            discovery,
            kubernetes,
            fleet,
        }
    }
}

#[cfg(test)]
mod tests;
