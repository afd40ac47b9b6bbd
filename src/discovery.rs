//! DNS discovery: the endpoints of a group with `dns: NAME:PORT` are the A
//! and AAAA records of NAME, each with PORT, looked up every `refresh`.
//!
//! A Kubernetes headless Service answers with one record per ready pod, so
//! pods that join or leave show up in the group within one refresh. This
//! module owns the lookups and the decision of what a group's address set
//! is, after each lookup:
//! - one that finds addresses replaces the set: new addresses join the
//!   balancer, and addresses that left get no new requests while requests
//!   already sent to them finish (each holds its endpoint);
//! - one that fails (an error, a timeout, NXDOMAIN, or a failure of either
//!   the A or the AAAA query) or finds no address keeps the last set, since a
//!   DNS hiccup must not empty a group;
//! - each lookup is counted by result, and a change of result is logged once,
//!   not at every refresh.
//!
//! Before its first successful lookup a DNS group has no endpoints: requests
//! that pick it get 503, and `/ready` answers 503 until every DNS group has
//! resolved. Record TTLs play no part: the resolver caches nothing, and
//! `refresh` alone bounds how stale a set may be.
//!
//! What it does not own: installing a set (that is `State::set_discovered`,
//! through the one writer, which carries the statistics of addresses that
//! stay over by key), health (active checks and outlier ejection walk the
//! snapshot, so they see discovered endpoints like listed ones) and picking.
//!
//! The pure part, [`combine`], [`diff`] and [`Tracker`], decides; the tasks
//! of [`spawn_driver`] only look up and hand over. The driver runs one task
//! per DNS group and follows the config across reloads: tasks stop for
//! removed groups and start for new ones, and a group whose name and port
//! stay keeps its set while its task restarts.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ProtocolConfig, ResolveHosts, ResolverConfig,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::RecordType;
use hickory_resolver::TokioResolver;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::config::{DiscoveryConfig, DnsConfig};
use crate::metrics::DiscoveryMetrics;
use crate::state::{Source, State};

/// A lookup (A and AAAA together) that takes longer than this has failed.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// What one lookup of a name found, both record types together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// At least one address.
    Found(BTreeSet<IpAddr>),
    /// The name exists but has no A or AAAA record.
    Empty,
    /// An error, a timeout or NXDOMAIN, described.
    Failed(String),
}

/// What the query for one record type (A or AAAA) found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Records {
    Found(Vec<IpAddr>),
    /// The name exists without records of this type (NOERROR, no data).
    NoData,
    Failed(String),
}

/// The `result` label of `luas_discovery_lookups_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok,
    Error,
    Empty,
}

/// How a set of addresses changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Diff {
    pub added: Vec<SocketAddr>,
    pub removed: Vec<SocketAddr>,
}

/// One group's memory of its lookups: the last good set and the last outcome.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    /// None before the first successful lookup.
    known: Option<BTreeSet<SocketAddr>>,
    last: Option<Outcome>,
}

/// What one lookup means for a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    pub outcome: Outcome,
    /// The outcome of the lookup before, None for the first: a log line is
    /// due when the two differ.
    pub previous: Option<Outcome>,
    /// The set to install (sorted) and how it differs from the last one,
    /// when it changed.
    pub change: Option<(Vec<SocketAddr>, Diff)>,
    /// Addresses in force after this lookup.
    pub in_force: usize,
}

impl Lookup {
    pub(crate) fn outcome(&self) -> Outcome {
        match self {
            Self::Found(_) => Outcome::Ok,
            Self::Empty => Outcome::Empty,
            Self::Failed(_) => Outcome::Error,
        }
    }
}

/// Joins the A and the AAAA answers. A failure of either fails the lookup:
/// installing half an answer would drop every endpoint of the other family.
pub(crate) fn combine(a: Records, aaaa: Records) -> Lookup {
    let mut found = BTreeSet::new();
    for records in [a, aaaa] {
        match records {
            Records::Found(addresses) => found.extend(addresses),
            Records::NoData => {}
            Records::Failed(reason) => return Lookup::Failed(reason),
        }
    }
    if found.is_empty() {
        Lookup::Empty
    } else {
        Lookup::Found(found)
    }
}

/// What joined and what left between two sets, each in order.
pub(crate) fn diff(old: &BTreeSet<SocketAddr>, new: &BTreeSet<SocketAddr>) -> Diff {
    Diff {
        added: new.difference(old).copied().collect(),
        removed: old.difference(new).copied().collect(),
    }
}

impl Tracker {
    /// `known` is the set in force when the tracking starts (a task restarted
    /// by a reload keeps its group's set), None when there is none.
    pub(crate) fn new(known: Option<BTreeSet<SocketAddr>>) -> Self {
        Self { known, last: None }
    }

    /// Takes one lookup's result; `port` is the group's.
    pub(crate) fn observe(&mut self, lookup: &Lookup, port: u16) -> Step {
        let outcome = lookup.outcome();
        let previous = self.last.replace(outcome);
        let mut change = None;
        if let Lookup::Found(addresses) = lookup {
            let set: BTreeSet<SocketAddr> = addresses
                .iter()
                .map(|&ip| SocketAddr::new(ip, port))
                .collect();
            if self.known.as_ref() != Some(&set) {
                let difference = diff(self.known.as_ref().unwrap_or(&BTreeSet::new()), &set);
                change = Some((set.iter().copied().collect(), difference));
                self.known = Some(set);
            }
        }
        Step {
            outcome,
            previous,
            change,
            in_force: self.known.as_ref().map_or(0, BTreeSet::len),
        }
    }
}

/// Starts the task that runs one discovery task per DNS group of the
/// current config, following every new snapshot.
pub(crate) fn spawn_driver(state: Arc<State>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut changes = state.subscribe();
        let mut driver = Driver::default();
        loop {
            driver.follow(&state);
            // The sender lives in `state`, which this task holds: this only
            // ends when the task is aborted.
            if changes.changed().await.is_err() {
                return;
            }
        }
    })
}

/// The discovery tasks running, and the resolver they share.
#[derive(Debug, Default)]
struct Driver {
    /// Built from these `discovery.resolvers`; rebuilt when they change.
    resolver: Option<(Vec<SocketAddr>, Arc<Resolver>)>,
    /// By (service, group).
    tasks: HashMap<(String, String), GroupTask>,
}

#[derive(Debug)]
struct GroupTask {
    dns: DnsConfig,
    _task: AbortOnDrop,
}

/// Aborts the task when dropped, so dropping the driver (aborted at
/// shutdown) stops every group task with it.
#[derive(Debug)]
pub(crate) struct AbortOnDrop(pub(crate) JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Driver {
    /// Makes the running tasks those the current config asks for.
    fn follow(&mut self, state: &Arc<State>) {
        let snapshot = state.load();
        let config = &snapshot.config;
        let wanted: HashMap<(String, String), (&DnsConfig, &[SocketAddr])> = config
            .services
            .iter()
            .flat_map(|service| {
                service.groups.iter().filter_map(move |group| {
                    let dns = group.dns.as_ref()?;
                    let key = (service.name.clone(), group.name.clone());
                    Some((key, (dns, group.endpoints.as_slice())))
                })
            })
            .collect();

        let metrics = state.metrics();
        self.tasks.retain(|key, task| {
            let same = wanted.get(key).is_some_and(|(dns, _)| **dns == task.dns);
            if !wanted.contains_key(key) {
                metrics.remove_discovery(&key.0, &key.1);
            }
            same
        });
        if wanted.is_empty() {
            return;
        }

        let resolvers = &config.discovery.resolvers;
        let built = self
            .resolver
            .as_ref()
            .filter(|(built_from, _)| built_from == resolvers)
            .map(|(_, resolver)| resolver.clone());
        let resolver = if let Some(resolver) = built {
            resolver
        } else {
            let resolver = Arc::new(Resolver::new(&config.discovery));
            self.resolver = Some((resolvers.clone(), resolver.clone()));
            // Every group moves to the new name servers, keeping its set.
            self.tasks.clear();
            resolver
        };

        for (key, (dns, in_force)) in wanted {
            if self.tasks.contains_key(&key) {
                continue;
            }
            let known: BTreeSet<SocketAddr> = in_force.iter().copied().collect();
            let group_metrics = metrics.discovery(&key.0, &key.1);
            group_metrics.endpoints.set(known.len() as i64);
            let target = Target {
                service: key.0.clone(),
                group: key.1.clone(),
                dns: dns.clone(),
            };
            tracing::debug!(service = %target.service, group = %target.group, dns = %target.dns, "DNS discovery started");
            let tracker = Tracker::new((!known.is_empty()).then_some(known));
            let task = tokio::spawn(run_group(
                state.clone(),
                resolver.clone(),
                target,
                tracker,
                group_metrics,
            ));
            self.tasks.insert(
                key,
                GroupTask {
                    dns: dns.clone(),
                    _task: AbortOnDrop(task),
                },
            );
        }
    }
}

/// The group one task discovers the endpoints of.
#[derive(Debug)]
struct Target {
    service: String,
    group: String,
    dns: DnsConfig,
}

/// Looks the group's name up every `refresh`, the first time at once,
/// until aborted.
async fn run_group(
    state: Arc<State>,
    resolver: Arc<Resolver>,
    target: Target,
    mut tracker: Tracker,
    metrics: DiscoveryMetrics,
) {
    let mut ticker = tokio::time::interval(target.dns.refresh);
    // A slow lookup delays the next one rather than causing a burst.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let lookup = resolver.lookup(&target.dns.name).await;
        let step = tracker.observe(&lookup, target.dns.port);
        match step.outcome {
            Outcome::Ok => metrics.lookups_ok.inc(),
            Outcome::Error => metrics.lookups_error.inc(),
            Outcome::Empty => metrics.lookups_empty.inc(),
        }
        log_step(&target, &lookup, &step);
        if let Some((addresses, _)) = step.change {
            state.set_discovered(
                &target.service,
                &target.group,
                &Source::Dns(target.dns.clone()),
                addresses,
            );
        }
        metrics.endpoints.set(step.in_force as i64);
    }
}

/// One line per change of the set, and one per change of outcome.
fn log_step(target: &Target, lookup: &Lookup, step: &Step) {
    let Target {
        service,
        group,
        dns,
    } = target;
    if let Some((addresses, Diff { added, removed })) = &step.change {
        tracing::info!(%service, %group, %dns, endpoints = addresses.len(), ?added, ?removed, "DNS discovery: endpoints changed");
    }
    if step.previous == Some(step.outcome) {
        return;
    }
    let kept = step.in_force;
    match (lookup, step.previous) {
        (Lookup::Failed(reason), _) if kept == 0 => {
            tracing::warn!(%service, %group, %dns, %reason, "DNS lookup failed and the group has no endpoints yet: requests to it get 503 and /ready answers 503 (logged again when the result changes)")
        }
        (Lookup::Failed(reason), _) => {
            tracing::warn!(%service, %group, %dns, %reason, kept, "DNS lookup failed; keeping the last known endpoints (logged again when the result changes)")
        }
        (Lookup::Empty, _) if kept == 0 => {
            tracing::warn!(%service, %group, %dns, "DNS lookup found no address and the group has no endpoints yet: requests to it get 503 and /ready answers 503 (logged again when the result changes)")
        }
        (Lookup::Empty, _) => {
            tracing::warn!(%service, %group, %dns, kept, "DNS lookup found no address; keeping the last known endpoints (logged again when the result changes)")
        }
        (Lookup::Found(_), Some(_)) => {
            tracing::info!(%service, %group, %dns, endpoints = kept, "DNS lookups succeed again")
        }
        // The first lookup succeeded: the change line above said it all.
        (Lookup::Found(_), None) => {}
    }
}

/// The name servers lookups go to, built from `discovery`; or why they
/// could not be set up, which every lookup then reports as its failure.
struct Resolver {
    inner: Result<TokioResolver, String>,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Ok(_) => f.write_str("Resolver"),
            Err(why) => write!(f, "Resolver(unavailable: {why})"),
        }
    }
}

impl Resolver {
    fn new(config: &DiscoveryConfig) -> Self {
        let inner = build_resolver(config);
        if let Err(why) = &inner {
            tracing::error!("DNS discovery cannot look anything up: {why}");
        }
        Self { inner }
    }

    /// Queries A and AAAA at once.
    async fn lookup(&self, name: &str) -> Lookup {
        let resolver = match &self.inner {
            Ok(resolver) => resolver,
            Err(why) => return Lookup::Failed(why.clone()),
        };
        let both = async {
            tokio::join!(
                resolver.lookup(name, RecordType::A),
                resolver.lookup(name, RecordType::AAAA)
            )
        };
        match tokio::time::timeout(LOOKUP_TIMEOUT, both).await {
            Ok((a, aaaa)) => combine(records(a), records(aaaa)),
            Err(_) => Lookup::Failed(format!("no answer within {LOOKUP_TIMEOUT:?}")),
        }
    }
}

/// The configured name servers (UDP, and TCP for truncated answers) with no
/// search domains and no hosts file, or the system's configuration with its
/// search domains and `ndots`, as a Kubernetes pod needs. Caching is off
/// either way: answers live for zero seconds.
fn build_resolver(config: &DiscoveryConfig) -> Result<TokioResolver, String> {
    let mut builder = if config.resolvers.is_empty() {
        TokioResolver::builder_tokio().map_err(|error| {
            format!("cannot read the system's resolver configuration (/etc/resolv.conf): {error}")
        })?
    } else {
        let servers = config
            .resolvers
            .iter()
            .map(|address| {
                let connections = [ProtocolConfig::Udp, ProtocolConfig::Tcp]
                    .into_iter()
                    .map(|protocol| {
                        let mut connection = ConnectionConfig::new(protocol);
                        connection.port = address.port();
                        connection
                    })
                    .collect();
                NameServerConfig::new(address.ip(), true, connections)
            })
            .collect();
        let mut builder = TokioResolver::builder_with_config(
            ResolverConfig::from_parts(None, Vec::new(), servers),
            TokioRuntimeProvider::default(),
        );
        builder.options_mut().use_hosts_file = ResolveHosts::Never;
        builder
    };
    let options = builder.options_mut();
    options.positive_max_ttl = Some(Duration::ZERO);
    options.negative_max_ttl = Some(Duration::ZERO);
    builder
        .build()
        .map_err(|error| format!("cannot set up the DNS resolver: {error}"))
}

/// Classifies one query's result.
fn records(result: Result<hickory_resolver::lookup::Lookup, NetError>) -> Records {
    match result {
        Ok(lookup) => Records::Found(
            lookup
                .answers()
                .iter()
                .filter_map(|record| record.data.ip_addr())
                .collect(),
        ),
        Err(NetError::Dns(DnsError::NoRecordsFound(none))) => match none.response_code {
            ResponseCode::NoError => Records::NoData,
            ResponseCode::NXDomain => Records::Failed("no such name (NXDOMAIN)".into()),
            code => Records::Failed(format!("no records ({code})")),
        },
        Err(error) => Records::Failed(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    fn found(ips: &[&str]) -> Lookup {
        Lookup::Found(ips.iter().map(|text| ip(text)).collect())
    }

    fn set(addresses: &[&str]) -> BTreeSet<SocketAddr> {
        addresses.iter().map(|text| addr(text)).collect()
    }

    #[test]
    fn a_and_aaaa_are_joined_and_any_failure_fails_the_lookup() {
        let v4 = || Records::Found(vec![ip("10.0.0.2"), ip("10.0.0.1")]);
        let v6 = || Records::Found(vec![ip("fd00::1")]);
        let failed = || Records::Failed("SERVFAIL".into());
        assert_eq!(
            combine(v4(), v6()),
            found(&["10.0.0.1", "10.0.0.2", "fd00::1"])
        );
        assert_eq!(
            combine(v4(), Records::NoData),
            found(&["10.0.0.1", "10.0.0.2"])
        );
        assert_eq!(combine(Records::NoData, v6()), found(&["fd00::1"]));
        assert_eq!(combine(Records::NoData, Records::NoData), Lookup::Empty);
        // CNAMEs only: an answer, but no address.
        assert_eq!(
            combine(Records::Found(vec![]), Records::NoData),
            Lookup::Empty
        );
        assert_eq!(combine(v4(), failed()), Lookup::Failed("SERVFAIL".into()));
        assert_eq!(combine(failed(), v6()), Lookup::Failed("SERVFAIL".into()));
        assert_eq!(
            combine(Records::NoData, failed()),
            Lookup::Failed("SERVFAIL".into())
        );
        assert_eq!(found(&["10.0.0.1"]).outcome(), Outcome::Ok);
        assert_eq!(Lookup::Empty.outcome(), Outcome::Empty);
        assert_eq!(Lookup::Failed(String::new()).outcome(), Outcome::Error);
    }

    #[test]
    fn diff_lists_what_joined_and_what_left() {
        let old = set(&["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]);
        let new = set(&["10.0.0.4:80", "10.0.0.2:80", "10.0.0.1:80"]);
        assert_eq!(
            diff(&old, &new),
            Diff {
                added: vec![addr("10.0.0.4:80")],
                removed: vec![addr("10.0.0.3:80")],
            }
        );
        assert_eq!(diff(&old, &old), Diff::default());
        assert_eq!(diff(&BTreeSet::new(), &old).added.len(), 3);
    }

    #[test]
    fn failed_and_empty_lookups_keep_the_last_set() {
        let mut tracker = Tracker::default();

        // Nothing known yet: a failure installs nothing.
        let step = tracker.observe(&Lookup::Failed("timeout".into()), 80);
        assert_eq!(
            step,
            Step {
                outcome: Outcome::Error,
                previous: None,
                change: None,
                in_force: 0,
            }
        );

        let step = tracker.observe(&found(&["10.0.0.2", "10.0.0.1"]), 80);
        assert_eq!(step.previous, Some(Outcome::Error));
        let (addresses, difference) = step.change.unwrap();
        assert_eq!(addresses, vec![addr("10.0.0.1:80"), addr("10.0.0.2:80")]);
        assert_eq!(difference.added, addresses);
        assert!(difference.removed.is_empty());
        assert_eq!(step.in_force, 2);

        // The same answer again changes nothing.
        let step = tracker.observe(&found(&["10.0.0.1", "10.0.0.2"]), 80);
        assert_eq!((step.change, step.previous), (None, Some(Outcome::Ok)));

        for lookup in [
            Lookup::Empty,
            Lookup::Empty,
            Lookup::Failed("NXDOMAIN".into()),
            Lookup::Failed("SERVFAIL".into()),
        ] {
            let step = tracker.observe(&lookup, 80);
            assert_eq!(step.change, None, "{lookup:?}");
            assert_eq!(step.in_force, 2, "{lookup:?}");
        }

        // Back to the set it had: the outcome changed, the set did not.
        let step = tracker.observe(&found(&["10.0.0.1", "10.0.0.2"]), 80);
        assert_eq!(step.change, None);
        assert_eq!(
            (step.outcome, step.previous),
            (Outcome::Ok, Some(Outcome::Error))
        );

        // One pod replaced by another.
        let step = tracker.observe(&found(&["10.0.0.1", "10.0.0.3"]), 80);
        let (addresses, difference) = step.change.unwrap();
        assert_eq!(addresses, vec![addr("10.0.0.1:80"), addr("10.0.0.3:80")]);
        assert_eq!(
            difference,
            Diff {
                added: vec![addr("10.0.0.3:80")],
                removed: vec![addr("10.0.0.2:80")],
            }
        );
    }

    #[test]
    fn outcomes_are_reported_once_per_change() {
        let mut tracker = Tracker::default();
        let lookups = [
            Lookup::Failed("a".into()),
            Lookup::Failed("b".into()),
            Lookup::Empty,
            Lookup::Empty,
            found(&["10.0.0.1"]),
            found(&["10.0.0.1"]),
            Lookup::Failed("c".into()),
        ];
        let changed: Vec<bool> = lookups
            .iter()
            .map(|lookup| {
                let step = tracker.observe(lookup, 80);
                step.previous != Some(step.outcome)
            })
            .collect();
        assert_eq!(changed, [true, false, true, false, true, false, true]);
    }

    #[test]
    fn a_tracker_started_with_the_set_in_force_keeps_it() {
        let known = set(&["[fd00::1]:8080", "10.0.0.1:8080"]);
        let mut tracker = Tracker::new(Some(known));
        let step = tracker.observe(&Lookup::Failed("refused".into()), 8080);
        assert_eq!((step.change, step.in_force), (None, 2));
        // The same addresses, in another order: nothing to install.
        let step = tracker.observe(&found(&["fd00::1", "10.0.0.1"]), 8080);
        assert_eq!((step.change, step.in_force), (None, 2));
        // The port is the group's.
        let mut tracker = Tracker::default();
        let (addresses, _) = tracker.observe(&found(&["fd00::1"]), 9).change.unwrap();
        assert_eq!(addresses, vec![addr("[fd00::1]:9")]);
    }
}
