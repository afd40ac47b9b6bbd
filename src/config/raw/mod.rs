//! The serde mirror of the YAML file, and turning YAML text into it.
//!
//! This module owns the shape of the file: which keys exist, which are
//! optional, and the wording of syntax errors (with line and column). Every
//! struct denies unknown fields so a misspelt key fails loudly instead of
//! being ignored. It does not check meaning: addresses, durations, sizes
//! and percentages stay as written here and defaults are not applied, so that
//! `validate` can report every bad value with its key path in one pass rather
//! than stopping at the first one serde trips over.

use std::fmt;

use serde::de::Visitor;
use serde::{Deserialize, Deserializer};

use super::ConfigError;

mod routes;
pub(crate) use routes::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub(crate) admin: Option<RawAdmin>,
    // Defaulted so that "no listeners" is reported by `validate` with the
    // other problems instead of as a lone serde error.
    #[serde(default)]
    pub(crate) listeners: Vec<RawListener>,
    #[serde(default)]
    pub(crate) services: Vec<RawService>,
    pub(crate) metrics: Option<RawMetrics>,
    pub(crate) shutdown: Option<RawShutdown>,
    pub(crate) state_file: Option<String>,
    pub(crate) access_log: Option<RawAccessLog>,
    pub(crate) discovery: Option<RawDiscovery>,
    pub(crate) kubernetes: Option<RawKubernetes>,
    pub(crate) fleet: Option<RawFleet>,
}

/// `kubernetes:`, how luas reaches the Kubernetes API.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKubernetes {
    pub(crate) kubeconfig: Option<String>,
    pub(crate) namespace: Option<String>,
}

/// `fleet:`, the replicas that share one canary state.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFleet {
    pub(crate) name: String,
    pub(crate) replica: Option<String>,
    pub(crate) startup_timeout: Option<String>,
}

/// `discovery:`, how DNS names of `dns` groups are looked up.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDiscovery {
    /// IP:port of each name server, as written; absent means the system's.
    pub(crate) resolvers: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAccessLog {
    pub(crate) enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAdmin {
    pub(crate) listen: Option<String>,
    pub(crate) token_file: Option<String>,
    pub(crate) allow_unauthenticated_admin: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawListener {
    pub(crate) name: String,
    pub(crate) listen: String,
    pub(crate) protocol: Option<RawListenerProtocol>,
    #[serde(default)]
    pub(crate) routes: Vec<RawRoute>,
    pub(crate) limits: Option<RawLimits>,
    pub(crate) tls: Option<RawListenerTls>,
}

/// `tls:` of a listener: `cert` and `key` for one certificate, or
/// `certificates` for several chosen by SNI; both optional here so
/// `validate` can say which rule was broken.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawListenerTls {
    pub(crate) cert: Option<String>,
    pub(crate) key: Option<String>,
    pub(crate) certificates: Option<Vec<RawCertificate>>,
    pub(crate) client_ca: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCertificate {
    pub(crate) cert: String,
    pub(crate) key: String,
}

/// `tls:` of a service: TLS to its endpoints.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUpstreamTls {
    pub(crate) ca: Option<String>,
    pub(crate) server_name: Option<String>,
    pub(crate) cert: Option<String>,
    pub(crate) key: Option<String>,
    pub(crate) insecure_skip_verify: Option<bool>,
}

/// `limits:` of a listener; each key defaults on its own.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    pub(crate) max_connections: Option<usize>,
    pub(crate) header_read_timeout: Option<String>,
    pub(crate) max_header_bytes: Option<RawSize>,
    pub(crate) max_headers: Option<usize>,
    pub(crate) max_body_bytes: Option<RawSize>,
    pub(crate) body_timeout: Option<String>,
    pub(crate) idle_timeout: Option<String>,
    pub(crate) h2_max_concurrent_streams: Option<u32>,
}

/// A byte size as written: a plain number of bytes (`65536`) or text with a
/// unit (`64KiB`). As with rates, the text is parsed by `validate`, so a
/// malformed size is reported with its key path alongside every other
/// problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawSize {
    Bytes(u64),
    Text(String),
}

impl<'de> Deserialize<'de> for RawSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Hand-written for the same reason as `RawRate`: the message of a
        // wrong type should show the accepted forms.
        struct SizeVisitor;

        impl Visitor<'_> for SizeVisitor {
            type Value = RawSize;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as 64KiB or 10MB, or a whole number of bytes")
            }

            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<RawSize, E> {
                Ok(RawSize::Bytes(value))
            }

            // Negative numbers and floats are kept as text so that `validate`
            // rejects them with the key path and the size syntax, like a
            // malformed `"1.5MiB"`.
            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<RawSize, E> {
                match u64::try_from(value) {
                    Ok(value) => Ok(RawSize::Bytes(value)),
                    Err(_) => Ok(RawSize::Text(value.to_string())),
                }
            }

            fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<RawSize, E> {
                Ok(RawSize::Text(value.to_string()))
            }

            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<RawSize, E> {
                Ok(RawSize::Text(value.to_owned()))
            }
        }

        deserializer.deserialize_any(SizeVisitor)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub(crate) enum RawListenerProtocol {
    #[serde(rename = "auto")]
    Auto,
    #[serde(rename = "http1")]
    Http1,
    #[serde(rename = "http2")]
    Http2,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawService {
    pub(crate) name: String,
    pub(crate) balancer: Option<RawBalancer>,
    pub(crate) protocol: Option<RawUpstreamProtocol>,
    pub(crate) tls: Option<RawUpstreamTls>,
    pub(crate) timeouts: Option<RawTimeouts>,
    pub(crate) ewma: Option<RawEwma>,
    /// Exactly one of `endpoints`, `dns` and `groups` must be present; all
    /// are optional here so `validate` can say which rule was broken.
    pub(crate) endpoints: Option<Vec<String>>,
    /// `NAME:PORT`, the shorthand's endpoints discovered through DNS.
    pub(crate) dns: Option<String>,
    /// How often `dns` is looked up; only with `dns`.
    pub(crate) refresh: Option<String>,
    /// The shorthand's endpoints discovered from a Kubernetes Service's
    /// EndpointSlices.
    pub(crate) kubernetes: Option<RawKubernetesEndpoints>,
    pub(crate) groups: Option<Vec<RawGroup>>,
    /// Absent means the default header; `""` turns the override off, so the
    /// two must stay distinguishable here.
    pub(crate) override_header: Option<String>,
    pub(crate) sticky: Option<RawSticky>,
    pub(crate) rollout: Option<RawRollout>,
    pub(crate) health_check: Option<RawHealthCheck>,
    pub(crate) outlier: Option<RawOutlier>,
    pub(crate) slow_start: Option<RawSlowStart>,
    pub(crate) retry: Option<RawRetry>,
    pub(crate) grpc: Option<RawGrpc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGrpc {
    /// Names (`unavailable`) or numbers (`14`).
    pub(crate) failure_statuses: Option<Vec<RawGrpcStatus>>,
}

/// A gRPC status as written: a name or a number.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawGrpcStatus {
    Code(u32),
    Name(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHealthCheck {
    // Required: there is no path every backend would answer.
    pub(crate) path: String,
    pub(crate) interval: Option<String>,
    pub(crate) timeout: Option<String>,
    pub(crate) healthy_threshold: Option<u32>,
    pub(crate) unhealthy_threshold: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOutlier {
    pub(crate) enabled: Option<bool>,
    pub(crate) consecutive_failures: Option<u32>,
    pub(crate) base_ejection: Option<String>,
    pub(crate) max_ejection: Option<String>,
    pub(crate) max_ejected_percent: Option<u32>,
}

/// `window` is required; it is optional here so `validate` can say so with
/// the key path.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSlowStart {
    pub(crate) window: Option<String>,
    pub(crate) aggression: Option<f64>,
    pub(crate) min_weight_percent: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRetry {
    pub(crate) attempts: Option<u32>,
    /// Words as written (`5xx`, `reset`, `timeout`); kept as strings so that
    /// `validate` can report an unknown or repeated word at its index.
    pub(crate) on: Option<Vec<String>>,
    pub(crate) per_try_timeout: Option<String>,
    pub(crate) buffer_bytes: Option<RawSize>,
    pub(crate) budget: Option<RawRetryBudget>,
}

/// `retry.budget:`, nested in the file; flattened into `RetryConfig`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRetryBudget {
    pub(crate) ratio: Option<RawRate>,
    pub(crate) min_per_second: Option<u32>,
}

/// Exactly one of the two keys must be present; both are optional here so
/// `validate` can say which rule was broken.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSticky {
    pub(crate) header: Option<String>,
    pub(crate) cookie: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRollout {
    pub(crate) group: String,
    pub(crate) steps: Vec<u32>,
    pub(crate) interval: String,
    pub(crate) min_requests: Option<u64>,
    pub(crate) max_error_rate: Option<RawRate>,
    pub(crate) max_p99_ratio: Option<f64>,
    pub(crate) tick: Option<String>,
}

/// A rate or ratio as written: a fraction (`0.01`) or a percentage (`1%`, which YAML
/// reads as a string). The percentage stays text here so that `validate`
/// reports a malformed one with its key path, like a bad duration; serde
/// only rejects values of the wrong type altogether (a list, a bool).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RawRate {
    Fraction(f64),
    Text(String),
}

impl<'de> Deserialize<'de> for RawRate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Hand-written rather than `#[serde(untagged)]`, whose error ("data
        // did not match any variant") would not say what to write instead.
        struct RateVisitor;

        impl Visitor<'_> for RateVisitor {
            type Value = RawRate;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a percentage such as 1% or a fraction such as 0.01")
            }

            fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<RawRate, E> {
                Ok(RawRate::Fraction(value))
            }

            // Integers only come out right for 0 and 1, but range checking
            // is `validate`'s job, where the message can suggest `5%`.
            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<RawRate, E> {
                Ok(RawRate::Fraction(value as f64))
            }

            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<RawRate, E> {
                Ok(RawRate::Fraction(value as f64))
            }

            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<RawRate, E> {
                Ok(RawRate::Text(value.to_owned()))
            }
        }

        deserializer.deserialize_any(RateVisitor)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub(crate) enum RawBalancer {
    #[serde(rename = "p2c-ewma")]
    P2cEwma,
    #[serde(rename = "least-request")]
    LeastRequest,
    #[serde(rename = "round-robin")]
    RoundRobin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub(crate) enum RawUpstreamProtocol {
    #[serde(rename = "http1")]
    Http1,
    #[serde(rename = "http2")]
    Http2,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTimeouts {
    pub(crate) connect: Option<String>,
    pub(crate) request: Option<String>,
    pub(crate) idle: Option<String>,
    pub(crate) response_idle: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEwma {
    pub(crate) decay: Option<String>,
    pub(crate) default_rtt: Option<String>,
    pub(crate) failure_penalty: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGroup {
    pub(crate) name: String,
    pub(crate) weight: Option<u32>,
    /// Exactly one of `endpoints` and `dns` must be present; both are
    /// optional here so `validate` can say which rule was broken.
    pub(crate) endpoints: Option<Vec<String>>,
    /// `NAME:PORT`, looked up every `refresh` for the group's endpoints.
    pub(crate) dns: Option<String>,
    pub(crate) refresh: Option<String>,
    /// Endpoints from a Kubernetes Service's EndpointSlices.
    pub(crate) kubernetes: Option<RawKubernetesEndpoints>,
    pub(crate) deployment: Option<String>,
}

/// `kubernetes: { service, port, namespace }` of a group.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKubernetesEndpoints {
    pub(crate) service: String,
    pub(crate) port: RawPort,
    pub(crate) namespace: Option<String>,
}

/// A port by number or by name, as written.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawPort {
    Number(i64),
    Name(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMetrics {
    pub(crate) buckets: Option<Vec<f64>>,
    pub(crate) linkerd_compatible: Option<bool>,
    pub(crate) namespace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawShutdown {
    pub(crate) grace_period: Option<String>,
}

/// Parses YAML text into the raw mirror.
///
/// Errors read `line 7, column 9: listeners[0].routes[0]: unknown field ...`:
/// the position first, because it is what an editor needs, then yaml_serde's
/// key path and message.
pub(crate) fn parse(text: &str) -> Result<RawConfig, ConfigError> {
    // `Option` so that an empty file (or one holding only comments or `~`)
    // gets its own message rather than an unhelpful "missing field".
    match yaml_serde::from_str::<Option<RawConfig>>(text) {
        Ok(Some(raw)) => Ok(raw),
        Ok(None) => Err(ConfigError::Parse(
            "the config is empty: expected a YAML mapping with at least `listeners` and \
             `services` (see config/example.yaml)"
                .to_owned(),
        )),
        Err(error) => Err(ConfigError::Parse(describe(&error))),
    }
}

fn describe(error: &yaml_serde::Error) -> String {
    let message = error.to_string();
    let Some(location) = error.location() else {
        return message;
    };
    let (line, column) = (location.line(), location.column());
    // yaml_serde appends (or, for syntax errors, embeds) " at line L column C";
    // it is moved to the front, so drop the copy.
    let suffix = format!(" at line {line} column {column}");
    let message = message.replacen(&suffix, "", 1);
    format!("line {line}, column {column}: {message}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_err(text: &str) -> String {
        match parse(text) {
            Ok(raw) => panic!("expected a parse error, got {raw:?}"),
            Err(ConfigError::Parse(message)) => message,
            Err(other) => panic!("expected ConfigError::Parse, got {other:?}"),
        }
    }

    const MINIMAL: &str = "\
listeners:
  - name: edge
    listen: 0.0.0.0:8080
    routes:
      - name: all
        service: web
services:
  - name: web
    endpoints: [127.0.0.1:9000]
";

    #[test]
    fn minimal_config_leaves_optional_keys_absent() {
        let raw = parse(MINIMAL).unwrap();
        assert!(raw.admin.is_none());
        assert!(raw.metrics.is_none());
        assert!(raw.shutdown.is_none());
        assert_eq!(raw.listeners.len(), 1);
        let listener = &raw.listeners[0];
        assert_eq!(listener.name, "edge");
        assert_eq!(listener.listen, "0.0.0.0:8080");
        assert_eq!(listener.protocol, None);
        assert_eq!(listener.routes[0].name, "all");
        assert!(listener.routes[0].single.is_none());
        assert!(listener.routes[0].matches.is_none());
        assert_eq!(listener.routes[0].service.as_deref(), Some("web"));
        let service = &raw.services[0];
        assert_eq!(service.name, "web");
        assert_eq!(
            service.endpoints.as_deref(),
            Some(&["127.0.0.1:9000".to_owned()][..])
        );
        assert!(service.groups.is_none());
        assert_eq!(service.balancer, None);
        assert_eq!(service.protocol, None);
        assert!(listener.limits.is_none());
        assert!(service.health_check.is_none());
        assert!(service.outlier.is_none());
        assert!(service.retry.is_none());
    }

    #[test]
    fn enums_use_the_documented_spellings() {
        let text = "\
listeners:
  - { name: a, listen: 0.0.0.0:1, protocol: http2, routes: [] }
services:
  - { name: s, balancer: least-request, protocol: http2, endpoints: [] }
  - { name: t, balancer: p2c-ewma, groups: [] }
  - { name: u, balancer: round-robin, groups: [] }
";
        let raw = parse(text).unwrap();
        assert_eq!(raw.listeners[0].protocol, Some(RawListenerProtocol::Http2));
        assert_eq!(raw.services[0].balancer, Some(RawBalancer::LeastRequest));
        assert_eq!(raw.services[0].protocol, Some(RawUpstreamProtocol::Http2));
        assert_eq!(raw.services[1].balancer, Some(RawBalancer::P2cEwma));
        assert_eq!(raw.services[2].balancer, Some(RawBalancer::RoundRobin));
    }

    #[test]
    fn header_matches_keep_file_order_and_duplicates() {
        let text = "\
listeners:
  - name: a
    listen: 0.0.0.0:1
    routes:
      - name: r
        match: { headers: { X-Env: staging, a-num: 2, x-env: prod } }
        service: s
";
        let raw = parse(text).unwrap();
        let headers = &raw.listeners[0].routes[0]
            .single
            .as_ref()
            .unwrap()
            .headers
            .entries;
        let expected = [("X-Env", "staging"), ("a-num", "2"), ("x-env", "prod")];
        let got: Vec<(&str, &str)> = headers
            .iter()
            .map(|entry| (entry.name.as_str(), entry.value.as_deref().unwrap()))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn header_matches_may_also_be_a_gateway_api_list() {
        let text = "\
listeners:
  - name: a
    listen: 0.0.0.0:1
    routes:
      - name: r
        matches:
          - headers: [ { name: x-tester, value: 'yes' }, { name: x-v, regex: '[0-9]+' } ]
            query: [ { name: debug, regex: '^(1|true)$' } ]
            path: { regex: '/api/.*' }
            method: GET
        service: s
";
        let raw = parse(text).unwrap();
        let matches = raw.listeners[0].routes[0].matches.as_ref().unwrap();
        let headers = &matches[0].headers.entries;
        assert_eq!(headers[0].name, "x-tester");
        assert_eq!(headers[0].value.as_deref(), Some("yes"));
        assert_eq!(headers[1].regex.as_deref(), Some("[0-9]+"));
        assert_eq!(matches[0].query.as_ref().unwrap()[0].name, "debug");
        assert_eq!(
            matches[0].path.as_ref().unwrap().regex.as_deref(),
            Some("/api/.*")
        );
        assert_eq!(matches[0].method.as_deref(), Some("GET"));
    }

    #[test]
    fn unknown_key_names_key_path_line_and_column() {
        let text = "\
listeners:
  - name: edge
    listen: 0.0.0.0:8080
    routes:
      - name: api
        match: { path_prefix: /v1 }
        sevice: loadapi
services: []
";
        let message = parse_err(text);
        assert!(
            message.starts_with(
                "line 7, column 9: listeners[0].routes[0]: unknown field `sevice`, expected one of"
            ),
            "{message}"
        );
        assert!(message.contains("`service`"), "{message}");
        // The position is given once, at the front.
        assert!(!message.contains(" at line"), "{message}");
    }

    #[test]
    fn unknown_top_level_key() {
        let message = parse_err("listeners: []\nservice: []\n");
        assert!(
            message.starts_with("line 2, column 1: unknown field `service`"),
            "{message}"
        );
    }

    #[test]
    fn unknown_key_in_nested_optional_sections() {
        let text = "services:\n  - name: s\n    endpoints: []\n    timeouts: { conect: 1s }\n";
        let message = parse_err(text);
        assert!(message.starts_with("line 4, column 17: "), "{message}");
        assert!(
            message.contains("services[0].timeouts: unknown field `conect`"),
            "{message}"
        );
        let message = parse_err("metrics:\n  bucket: [1]\n");
        assert!(
            message.starts_with("line 2, column 3: metrics: unknown field `bucket`"),
            "{message}"
        );
    }

    #[test]
    fn bad_enum_value_lists_the_allowed_ones() {
        let text = "services:\n  - name: s\n    balancer: random\n    endpoints: []\n";
        let message = parse_err(text);
        assert!(message.starts_with("line 3, column 15: "), "{message}");
        assert!(
            message.contains("services[0].balancer: unknown variant `random`"),
            "{message}"
        );
        assert!(
            message.contains("`p2c-ewma`, `least-request`, `round-robin`"),
            "{message}"
        );
    }

    #[test]
    fn wrong_type_has_path_and_position() {
        let text =
            "services:\n  - name: s\n    groups:\n      - { name: g, weight: -1, endpoints: [] }\n";
        let message = parse_err(text);
        assert!(message.starts_with("line 4, column "), "{message}");
        assert!(
            message.contains("services[0].groups[0].weight: invalid type: integer `-1`"),
            "{message}"
        );
    }

    #[test]
    fn missing_required_key() {
        let message = parse_err("listeners:\n  - listen: 0.0.0.0:80\n    routes: []\n");
        assert!(message.starts_with("line 2, column 5: "), "{message}");
        assert!(
            message.contains("listeners[0]: missing field `name`"),
            "{message}"
        );
    }

    #[test]
    fn bad_yaml_syntax_gives_line_and_column() {
        let message = parse_err("listeners:\n  - name: a: b\n");
        assert_eq!(
            message,
            "line 2, column 12: mapping values are not allowed in this context"
        );

        let message = parse_err("listeners:\n\t- name: a\n");
        assert!(message.starts_with("line 2, column 1: "), "{message}");
        assert!(message.contains("cannot start any token"), "{message}");

        let message = parse_err("services:\n  - name: \"unterminated\n");
        assert!(message.starts_with("line "), "{message}");
        assert!(message.contains("column"), "{message}");
        assert!(message.contains("quoted scalar"), "{message}");
    }

    #[test]
    fn empty_document_is_a_clear_error() {
        for text in ["", "\n\n", "# just a comment\n", "~\n"] {
            let message = parse_err(text);
            assert!(
                message.contains("the config is empty"),
                "{text:?}: {message}"
            );
        }
    }

    #[test]
    fn a_document_that_is_not_a_mapping() {
        let message = parse_err("- listeners\n");
        assert!(message.starts_with("line 1, column 1: "), "{message}");
        assert!(message.contains("invalid type: sequence"), "{message}");
    }

    #[test]
    fn new_keys_are_read_as_written() {
        let text = "\
state_file: /var/lib/luas/state.json
metrics: { linkerd_compatible: true, namespace: prod }
services:
  - name: s
    override_header: ''
    sticky: { cookie: session }
    groups: [{ name: g, endpoints: [], deployment: s-main }]
    rollout:
      group: g
      steps: [5, 100]
      interval: 1m
      min_requests: 7
      max_error_rate: 0.5%
      max_p99_ratio: 2
      tick: 1s
  - name: t
    endpoints: []
    sticky: { header: X-User }
    rollout: { group: g, steps: [], interval: 1m, max_error_rate: 0.02 }
";
        let raw = parse(text).unwrap();
        assert_eq!(raw.state_file.as_deref(), Some("/var/lib/luas/state.json"));
        let metrics = raw.metrics.as_ref().unwrap();
        assert_eq!(metrics.linkerd_compatible, Some(true));
        assert_eq!(metrics.namespace.as_deref(), Some("prod"));

        let s = &raw.services[0];
        // "" is kept, not folded into "absent": it means "off".
        assert_eq!(s.override_header.as_deref(), Some(""));
        let sticky = s.sticky.as_ref().unwrap();
        assert_eq!(
            (sticky.header.as_deref(), sticky.cookie.as_deref()),
            (None, Some("session"))
        );
        let groups = s.groups.as_ref().unwrap();
        assert_eq!(groups[0].deployment.as_deref(), Some("s-main"));
        let rollout = s.rollout.as_ref().unwrap();
        assert_eq!(rollout.group, "g");
        assert_eq!(rollout.steps, [5, 100]);
        assert_eq!(rollout.interval, "1m");
        assert_eq!(rollout.min_requests, Some(7));
        assert_eq!(rollout.max_error_rate, Some(RawRate::Text("0.5%".into())));
        assert_eq!(rollout.max_p99_ratio, Some(2.0));
        assert_eq!(rollout.tick.as_deref(), Some("1s"));

        let t = &raw.services[1];
        assert!(t.override_header.is_none());
        assert_eq!(t.sticky.as_ref().unwrap().header.as_deref(), Some("X-User"));
        let rollout = t.rollout.as_ref().unwrap();
        assert_eq!(rollout.max_error_rate, Some(RawRate::Fraction(0.02)));
        assert_eq!(rollout.min_requests, None);
        assert_eq!(rollout.tick, None);
    }

    #[test]
    fn rates_accept_numbers_and_strings_only() {
        let rate = |value: &str| {
            let text = format!(
                "services:\n  - name: s\n    endpoints: []\n    rollout: {{ group: g, steps: [1], \
                 interval: 1s, max_error_rate: {value} }}\n"
            );
            parse(&text).map(|raw| {
                raw.services[0]
                    .rollout
                    .as_ref()
                    .unwrap()
                    .max_error_rate
                    .clone()
            })
        };
        assert_eq!(rate("1").unwrap(), Some(RawRate::Fraction(1.0)));
        assert_eq!(rate("-3").unwrap(), Some(RawRate::Fraction(-3.0)));
        assert_eq!(rate("'0.01'").unwrap(), Some(RawRate::Text("0.01".into())));
        assert_eq!(rate("~").unwrap(), None);
        for value in ["true", "[1]", "{ a: 1 }"] {
            let message = match rate(value) {
                Err(ConfigError::Parse(message)) => message,
                other => panic!("{value}: expected a parse error, got {other:?}"),
            };
            assert!(message.starts_with("line 4, column "), "{message}");
            assert!(
                message.contains("services[0].rollout.max_error_rate: invalid type"),
                "{message}"
            );
            assert!(
                message.contains("expected a percentage such as 1% or a fraction such as 0.01"),
                "{message}"
            );
        }
    }

    #[test]
    fn unknown_keys_in_the_new_sections() {
        let message = parse_err(
            "services:\n  - name: s\n    endpoints: []\n    sticky: { header: a, cokie: b }\n",
        );
        assert!(message.starts_with("line 4, column "), "{message}");
        assert!(
            message.contains("services[0].sticky: unknown field `cokie`"),
            "{message}"
        );
        let message = parse_err(
            "services:\n  - name: s\n    endpoints: []\n    rollout:\n      group: g\n      \
             steps: [1]\n      interval: 1s\n      max_error: 1%\n",
        );
        assert!(message.starts_with("line 8, column 7: "), "{message}");
        assert!(
            message.contains("services[0].rollout: unknown field `max_error`"),
            "{message}"
        );
        let message = parse_err(
            "services:\n  - { name: s, groups: [{ name: g, endpoints: [], deploy: x }] }\n",
        );
        assert!(
            message.contains("services[0].groups[0]: unknown field `deploy`"),
            "{message}"
        );
        let message = parse_err("metrics:\n  linkerd: true\n");
        assert!(
            message.contains("metrics: unknown field `linkerd`"),
            "{message}"
        );
        let message = parse_err("statefile: /tmp/x\n");
        assert!(message.contains("unknown field `statefile`"), "{message}");
    }

    #[test]
    fn rollout_requires_group_steps_and_interval() {
        for missing in ["group", "steps", "interval"] {
            let fields: Vec<&str> = [
                ("group", "group: g"),
                ("steps", "steps: [1]"),
                ("interval", "interval: 1s"),
            ]
            .iter()
            .filter(|(name, _)| *name != missing)
            .map(|(_, field)| *field)
            .collect();
            let text = format!(
                "services:\n  - name: s\n    endpoints: []\n    rollout: {{ {} }}\n",
                fields.join(", ")
            );
            let message = parse_err(&text);
            assert!(
                message.contains(&format!("services[0].rollout: missing field `{missing}`")),
                "{message}"
            );
        }
    }

    #[test]
    fn wrong_types_in_the_new_keys() {
        let message = parse_err("metrics: { linkerd_compatible: yes }\n");
        assert!(
            message.contains("metrics.linkerd_compatible: invalid type: string \"yes\""),
            "{message}"
        );
        let message = parse_err(
            "services:\n  - name: s\n    endpoints: []\n    rollout: { group: g, steps: [5, -1], interval: 1s }\n",
        );
        assert!(
            message.contains("services[0].rollout.steps[1]: invalid type: integer `-1`"),
            "{message}"
        );
    }

    #[test]
    fn resilience_keys_are_read_as_written() {
        let text = "\
listeners:
  - name: a
    listen: 0.0.0.0:1
    limits:
      max_connections: 10
      header_read_timeout: 5s
      max_header_bytes: 64KiB
      max_headers: 50
      max_body_bytes: 1048576
      body_timeout: 30s
      idle_timeout: 1m
      h2_max_concurrent_streams: 100
services:
  - name: s
    endpoints: []
    timeouts: { idle: 90s }
    health_check: { path: /healthz, interval: 5s, timeout: 1s, healthy_threshold: 2, unhealthy_threshold: 3 }
    outlier:
      enabled: false
      consecutive_failures: 5
      base_ejection: 30s
      max_ejection: 5m
      max_ejected_percent: 50
    slow_start: { window: 30s, aggression: 1.5, min_weight_percent: 20 }
    retry:
      attempts: 2
      on: [5xx, reset, timeout]
      per_try_timeout: 2s
      buffer_bytes: 64KiB
      budget: { ratio: 20%, min_per_second: 10 }
  - name: t
    endpoints: []
    health_check: { path: /h }
    outlier: {}
    slow_start: { aggression: 2 }
    retry: { budget: { ratio: 0.5 } }
";
        let raw = parse(text).unwrap();
        let limits = raw.listeners[0].limits.as_ref().unwrap();
        assert_eq!(limits.max_connections, Some(10));
        assert_eq!(limits.header_read_timeout.as_deref(), Some("5s"));
        assert_eq!(limits.max_header_bytes, Some(RawSize::Text("64KiB".into())));
        assert_eq!(limits.max_headers, Some(50));
        assert_eq!(limits.max_body_bytes, Some(RawSize::Bytes(1_048_576)));
        assert_eq!(limits.body_timeout.as_deref(), Some("30s"));
        assert_eq!(limits.idle_timeout.as_deref(), Some("1m"));
        assert_eq!(limits.h2_max_concurrent_streams, Some(100));

        let s = &raw.services[0];
        assert_eq!(s.timeouts.as_ref().unwrap().idle.as_deref(), Some("90s"));
        let check = s.health_check.as_ref().unwrap();
        assert_eq!(check.path, "/healthz");
        assert_eq!(check.interval.as_deref(), Some("5s"));
        assert_eq!(check.timeout.as_deref(), Some("1s"));
        assert_eq!(check.healthy_threshold, Some(2));
        assert_eq!(check.unhealthy_threshold, Some(3));
        let outlier = s.outlier.as_ref().unwrap();
        assert_eq!(outlier.enabled, Some(false));
        assert_eq!(outlier.consecutive_failures, Some(5));
        assert_eq!(outlier.base_ejection.as_deref(), Some("30s"));
        assert_eq!(outlier.max_ejection.as_deref(), Some("5m"));
        assert_eq!(outlier.max_ejected_percent, Some(50));
        let slow_start = s.slow_start.as_ref().unwrap();
        assert_eq!(slow_start.window.as_deref(), Some("30s"));
        assert_eq!(slow_start.aggression, Some(1.5));
        assert_eq!(slow_start.min_weight_percent, Some(20));
        let retry = s.retry.as_ref().unwrap();
        assert_eq!(retry.attempts, Some(2));
        assert_eq!(
            retry.on.as_deref(),
            Some(&["5xx".to_owned(), "reset".into(), "timeout".into()][..])
        );
        assert_eq!(retry.per_try_timeout.as_deref(), Some("2s"));
        assert_eq!(retry.buffer_bytes, Some(RawSize::Text("64KiB".into())));
        let budget = retry.budget.as_ref().unwrap();
        assert_eq!(budget.ratio, Some(RawRate::Text("20%".into())));
        assert_eq!(budget.min_per_second, Some(10));

        let t = &raw.services[1];
        let check = t.health_check.as_ref().unwrap();
        assert_eq!(
            (check.interval.as_ref(), check.timeout.as_ref()),
            (None, None)
        );
        assert_eq!(check.healthy_threshold, None);
        assert!(t.outlier.as_ref().unwrap().enabled.is_none());
        // A whole number is read as a number too.
        let slow_start = t.slow_start.as_ref().unwrap();
        assert_eq!(slow_start.aggression, Some(2.0));
        assert_eq!(slow_start.window, None);
        let retry = t.retry.as_ref().unwrap();
        assert!(retry.on.is_none() && retry.attempts.is_none());
        let budget = retry.budget.as_ref().unwrap();
        assert_eq!(budget.ratio, Some(RawRate::Fraction(0.5)));
        assert_eq!(budget.min_per_second, None);
        assert!(t.timeouts.is_none());
    }

    #[test]
    fn sizes_keep_numbers_and_text_apart() {
        let size = |value: &str| {
            let text = format!(
                "listeners:\n  - {{ name: a, listen: 0.0.0.0:1, limits: {{ max_body_bytes: {value} }} }}\n"
            );
            parse(&text).map(|raw| {
                raw.listeners[0]
                    .limits
                    .as_ref()
                    .unwrap()
                    .max_body_bytes
                    .clone()
            })
        };
        assert_eq!(size("0").unwrap(), Some(RawSize::Bytes(0)));
        assert_eq!(size("65536").unwrap(), Some(RawSize::Bytes(65_536)));
        assert_eq!(size("10MiB").unwrap(), Some(RawSize::Text("10MiB".into())));
        assert_eq!(size("'512'").unwrap(), Some(RawSize::Text("512".into())));
        // Left for `validate` to reject with the key path.
        assert_eq!(size("-1").unwrap(), Some(RawSize::Text("-1".into())));
        assert_eq!(size("1.5").unwrap(), Some(RawSize::Text("1.5".into())));
        assert_eq!(size("~").unwrap(), None);
        for value in ["true", "[1]", "{ a: 1 }"] {
            let message = match size(value) {
                Err(ConfigError::Parse(message)) => message,
                other => panic!("{value}: expected a parse error, got {other:?}"),
            };
            assert!(
                message.contains("listeners[0].limits.max_body_bytes: invalid type"),
                "{message}"
            );
            assert!(
                message.contains("expected a size such as 64KiB or 10MB"),
                "{message}"
            );
        }
    }

    #[test]
    fn unknown_keys_in_the_resilience_sections() {
        let cases = [
            (
                "listeners:\n  - { name: a, listen: 0.0.0.0:1, limits: { max_conns: 1 } }\n",
                "listeners[0].limits: unknown field `max_conns`",
            ),
            (
                "services:\n  - { name: s, endpoints: [], timeouts: { idle_timeout: 1s } }\n",
                "services[0].timeouts: unknown field `idle_timeout`",
            ),
            (
                "services:\n  - { name: s, endpoints: [], health_check: { path: /, port: 1 } }\n",
                "services[0].health_check: unknown field `port`",
            ),
            (
                "services:\n  - { name: s, endpoints: [], outlier: { enable: true } }\n",
                "services[0].outlier: unknown field `enable`",
            ),
            (
                "services:\n  - { name: s, endpoints: [], retry: { retries: 2 } }\n",
                "services[0].retry: unknown field `retries`",
            ),
            (
                "services:\n  - { name: s, endpoints: [], retry: { budget_ratio: 0.1 } }\n",
                "services[0].retry: unknown field `budget_ratio`",
            ),
            (
                "services:\n  - { name: s, endpoints: [], retry: { budget: { percent: 1 } } }\n",
                "services[0].retry.budget: unknown field `percent`",
            ),
            (
                "services:\n  - name: s\n    endpoints: []\n    health_check: { interval: 1s }\n",
                "services[0].health_check: missing field `path`",
            ),
        ];
        for (text, expected) in cases {
            let message = parse_err(text);
            assert!(message.starts_with("line "), "{message}");
            assert!(message.contains(expected), "{message}");
        }
    }

    #[test]
    fn wrong_types_in_the_resilience_keys() {
        let cases = [
            (
                "services:\n  - { name: s, endpoints: [], retry: { on: 5xx } }\n",
                "services[0].retry.on: invalid type: string \"5xx\", expected a sequence",
            ),
            (
                "services:\n  - { name: s, endpoints: [], outlier: { enabled: on } }\n",
                "services[0].outlier.enabled: invalid type: string \"on\"",
            ),
            (
                "services:\n  - { name: s, endpoints: [], retry: { attempts: -1 } }\n",
                "services[0].retry.attempts: invalid type: integer `-1`",
            ),
            (
                "listeners:\n  - { name: a, listen: 0.0.0.0:1, limits: { max_headers: 1.5 } }\n",
                "listeners[0].limits.max_headers: invalid type: floating point `1.5`",
            ),
        ];
        for (text, expected) in cases {
            let message = parse_err(text);
            assert!(message.contains(expected), "{message}");
        }
    }

    #[test]
    fn dns_keys_are_read_as_written() {
        let text = "\
services:
  - name: s
    groups:
      - { name: g, dns: g.test:80, refresh: 1s }
      - { name: h, endpoints: [] }
  - { name: t, dns: t.test:80, refresh: 2s }
discovery:
  resolvers: [127.0.0.1:5353]
";
        let raw = parse(text).unwrap();
        let groups = raw.services[0].groups.as_ref().unwrap();
        assert_eq!(groups[0].dns.as_deref(), Some("g.test:80"));
        assert_eq!(groups[0].refresh.as_deref(), Some("1s"));
        assert!(groups[0].endpoints.is_none());
        assert!(groups[1].dns.is_none() && groups[1].refresh.is_none());
        assert_eq!(groups[1].endpoints.as_deref(), Some(&[][..]));
        let t = &raw.services[1];
        assert_eq!(t.dns.as_deref(), Some("t.test:80"));
        assert_eq!(t.refresh.as_deref(), Some("2s"));
        let resolvers = raw.discovery.unwrap().resolvers.unwrap();
        assert_eq!(resolvers, ["127.0.0.1:5353"]);
        assert!(parse(MINIMAL).unwrap().discovery.is_none());

        let message = parse_err("discovery: { resolver: [127.0.0.1:53] }\n");
        assert!(
            message.contains("discovery: unknown field `resolver`"),
            "{message}"
        );
        let message = parse_err("discovery: { resolvers: 127.0.0.1:53 }\n");
        assert!(
            message.contains("discovery.resolvers: invalid type"),
            "{message}"
        );
    }

    #[test]
    fn duplicate_key_is_an_error() {
        let message = parse_err("listeners: []\nlisteners: []\n");
        assert!(message.contains("duplicate field `listeners`"), "{message}");
    }
}
