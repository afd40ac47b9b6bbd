//! Tests of config validation, one file per part of the config file; the
//! helpers they share (load a config, collect its issues, build a config
//! around a fragment) are here.

mod admin;
mod dns;
mod example_file;
mod filters;
mod fleet;
mod health;
mod limits;
mod listeners;
mod metrics;
mod names;
mod outlier;
mod retry;
mod rollout;
mod routes;
mod services;
mod slow_start;
mod split;
mod tls;
mod values;
mod whole_file;

use std::net::SocketAddr;
use std::time::Duration;

use http::HeaderName;

use super::values::{
    k8s_name_problem, parse_percent, show_size, BUDGET_RATIO_FORM, ERROR_RATE_FORM,
};
use super::*;
use crate::config::raw;
use crate::config::{
    AdminConfig, BalancerKind, CertificateFiles, Config, ConfigIssue, DiscoveryConfig, DnsConfig,
    EwmaConfig, GroupConfig, HealthCheckConfig, HostMatch, ListenerConfig, ListenerLimits,
    ListenerProtocol, MetricsConfig, OutlierConfig, PathMatch, RetryConfig, RetryOn, RolloutConfig,
    RouteConfig, RouteMatch, RouteTimeouts, ServiceConfig, ShutdownConfig, SlowStartConfig,
    SplitConfig, StickyKey, TextMatch, Timeouts, UpstreamProtocol, UpstreamTls,
};

const EXAMPLE: &str = include_str!("../../../../config/example.yaml");

fn load(text: &str) -> Config {
    let raw = raw::parse(text).unwrap_or_else(|e| panic!("parse failed: {e}"));
    validate(raw).unwrap_or_else(|issues| {
        let list: Vec<String> = issues.iter().map(ToString::to_string).collect();
        panic!("validation failed:\n{}", list.join("\n"))
    })
}

fn issues(text: &str) -> Vec<ConfigIssue> {
    let raw = raw::parse(text).unwrap_or_else(|e| panic!("parse failed: {e}"));
    match validate(raw) {
        Ok(config) => panic!("expected validation issues, got {config:?}"),
        Err(issues) => issues,
    }
}

/// The single issue at `path`; fails if there is none or more than one.
fn issue_at(issues: &[ConfigIssue], path: &str) -> String {
    let found: Vec<&ConfigIssue> = issues.iter().filter(|i| i.path == path).collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one issue at {path}, got {issues:#?}"
    );
    found[0].message.clone()
}

fn paths(issues: &[ConfigIssue]) -> Vec<&str> {
    issues.iter().map(|i| i.path.as_str()).collect()
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn header(name: &'static str, value: &str) -> (HeaderName, TextMatch) {
    (
        HeaderName::from_static(name),
        TextMatch::Exact(value.to_owned()),
    )
}

/// A valid config with one listener and one service; tests append to it
/// or swap pieces of it.
fn with_services(services: &str) -> String {
    format!(
        "\
listeners:
  - name: edge
    listen: 0.0.0.0:8080
    routes:
      - {{ name: all, service: web }}
services:
{services}"
    )
}

fn with_routes(routes: &str) -> String {
    format!(
        "\
listeners:
  - name: edge
    listen: 0.0.0.0:8080
    routes:
{routes}services:
  - {{ name: web, endpoints: [127.0.0.1:9000] }}
"
    )
}

/// The standard config with one service `web` that has `keys` (lines
/// indented by four spaces) besides its endpoint.
fn with_service_keys(keys: &str) -> String {
    with_services(&format!(
        "  - name: web\n    endpoints: [127.0.0.1:1]\n{keys}"
    ))
}
