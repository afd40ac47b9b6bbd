//! `kubernetes:` (where the API server and credentials come from) and
//! `fleet:` (the replicas sharing one canary state). Names that become parts
//! of Kubernetes object names are held to Kubernetes' rules here, so a bad
//! one is a config error with its key, not a 422 from the API server later.

use super::values::{k8s_name_problem, K8S_NAME_FORM};
use super::Checker;
use crate::config::raw::{RawFleet, RawKubernetes};
use crate::config::{defaults, FleetConfig, KubernetesConfig};

/// Longest Kubernetes object name (a DNS-1123 subdomain).
const MAX_OBJECT_NAME: usize = 253;

/// What `luas-fleet-<name>-` adds before a replica's name in its Lease's name.
const LEASE_PREFIX: &str = "luas-fleet--";

impl Checker {
    pub(super) fn kubernetes(&mut self, raw: Option<RawKubernetes>) -> KubernetesConfig {
        let raw = raw.unwrap_or_default();
        let kubeconfig = self.file_path("kubernetes.kubeconfig", raw.kubeconfig.as_deref());
        if let Some(namespace) = &raw.namespace {
            if let Some(problem) = k8s_name_problem(namespace) {
                self.issue(
                    "kubernetes.namespace",
                    format!("namespace {namespace:?} {problem}; {K8S_NAME_FORM}"),
                );
            }
        }
        KubernetesConfig {
            kubeconfig,
            namespace: raw.namespace,
        }
    }

    pub(super) fn fleet(&mut self, raw: RawFleet) -> FleetConfig {
        if let Some(problem) = k8s_name_problem(&raw.name) {
            self.issue(
                "fleet.name",
                format!(
                    "fleet name {:?} {problem}; it names the ConfigMap luas-fleet-<name> the \
                     replicas share; {K8S_NAME_FORM}",
                    raw.name
                ),
            );
        }
        if let Some(replica) = &raw.replica {
            if let Some(problem) = replica_name_problem(&raw.name, replica) {
                self.issue(
                    "fleet.replica",
                    format!(
                        "replica name {replica:?} {problem}; it names this replica's Lease \
                         luas-fleet-<name>-<replica>: use lower-case letters, digits, '-' and \
                         '.', like a pod name, or remove the key to use $HOSTNAME"
                    ),
                );
            }
        }
        FleetConfig {
            startup_timeout: self.duration(
                "fleet.startup_timeout",
                raw.startup_timeout.as_deref(),
                defaults::FLEET_STARTUP_TIMEOUT,
                // Zero: serve from the cache at once, never wait for the API.
                None,
            ),
            name: raw.name,
            replica: raw.replica,
        }
    }
}

/// Why `replica` cannot name a replica of fleet `fleet` (its Lease would not
/// be a valid Kubernetes object name), or None.
pub(crate) fn replica_name_problem(fleet: &str, replica: &str) -> Option<String> {
    if replica.is_empty() {
        return Some("is empty".to_owned());
    }
    let longest = MAX_OBJECT_NAME.saturating_sub(LEASE_PREFIX.len() + fleet.len());
    if replica.len() > longest {
        return Some(format!(
            "is {} characters long; with this fleet's name at most {longest} fit",
            replica.len()
        ));
    }
    if let Some(bad) = replica
        .chars()
        .find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'))
    {
        return Some(format!("contains {bad:?}"));
    }
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !edge(replica.chars().next()) || !edge(replica.chars().last()) {
        return Some("does not start and end with a letter or digit".to_owned());
    }
    None
}
