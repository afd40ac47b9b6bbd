//! A service: its balancer, upstream protocol, upstream TLS, timeouts and
//! EWMA settings, and the walk over everything below it (groups, split,
//! health check, outlier detection, slow start, retry, rollout), each in its
//! own module, and the gRPC failure statuses.
//!
//! Called from [`super::Checker::config`] with the whole `services` list.

use std::collections::HashMap;

use super::Checker;
use crate::config::raw::{
    RawBalancer, RawGrpc, RawGrpcStatus, RawService, RawUpstreamProtocol, RawUpstreamTls,
};
use crate::config::{
    defaults, BalancerKind, EwmaConfig, GrpcConfig, ServiceConfig, Timeouts, UpstreamProtocol,
    UpstreamTls,
};
use crate::grpc::{self, StatusSet};

impl Checker {
    pub(super) fn services(
        &mut self,
        raw: &[RawService],
        linkerd_compatible: bool,
    ) -> Vec<ServiceConfig> {
        if raw.is_empty() {
            self.issue(
                "services",
                "no services are defined; add at least one service with a `name` and \
                 `endpoints` for the routes to send traffic to",
            );
        }
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut services = Vec::with_capacity(raw.len());
        for (index, service) in raw.iter().enumerate() {
            let path = format!("services[{index}]");
            self.unique_name(&mut names, index, &service.name, "service", "", |i| {
                format!("services[{i}]")
            });
            services.push(self.service(&path, service, linkerd_compatible));
        }
        services
    }

    fn service(&mut self, path: &str, raw: &RawService, linkerd_compatible: bool) -> ServiceConfig {
        let balancer = match raw.balancer {
            None | Some(RawBalancer::P2cEwma) => BalancerKind::P2cEwma,
            Some(RawBalancer::LeastRequest) => BalancerKind::LeastRequest,
            Some(RawBalancer::RoundRobin) => BalancerKind::RoundRobin,
        };
        let protocol = match raw.protocol {
            None | Some(RawUpstreamProtocol::Http1) => UpstreamProtocol::Http1,
            Some(RawUpstreamProtocol::Http2) => UpstreamProtocol::Http2,
        };

        let tls = raw
            .tls
            .as_ref()
            .map(|tls| self.upstream_tls(&format!("{path}.tls"), tls));
        let timeouts = raw.timeouts.as_ref();
        let connect = self.duration(
            &format!("{path}.timeouts.connect"),
            timeouts.and_then(|t| t.connect.as_deref()),
            defaults::CONNECT_TIMEOUT,
            Some("a zero connect timeout would fail every connection attempt"),
        );
        let request_text = timeouts.and_then(|t| t.request.as_deref());
        // Kept as an Option so `retry.per_try_timeout` is compared with it
        // only when it is valid.
        let request = self.duration_or(
            &format!("{path}.timeouts.request"),
            request_text,
            defaults::REQUEST_TIMEOUT,
            Some("a zero request timeout would fail every request"),
        );
        let timeouts = Timeouts {
            connect,
            request: request.unwrap_or(defaults::REQUEST_TIMEOUT),
            idle: self.duration(
                &format!("{path}.timeouts.idle"),
                timeouts.and_then(|t| t.idle.as_deref()),
                defaults::IDLE_TIMEOUT,
                Some("pooled connections would be closed as soon as they are released"),
            ),
            // Zero turns it off, for server-sent events and other streams
            // that may stay quiet longer than any request takes.
            response_idle: match timeouts.and_then(|t| t.response_idle.as_deref()) {
                Some("0") => None,
                Some(text) => self
                    .checked_duration(&format!("{path}.timeouts.response_idle"), text, None)
                    .filter(|idle| !idle.is_zero()),
                None => Some(request.unwrap_or(defaults::REQUEST_TIMEOUT)),
            },
        };
        let ewma = raw.ewma.as_ref();
        let ewma = EwmaConfig {
            decay: self.duration(
                &format!("{path}.ewma.decay"),
                ewma.and_then(|e| e.decay.as_deref()),
                defaults::EWMA_DECAY,
                Some("the moving average needs a positive time constant to decay over"),
            ),
            // Zero is allowed for both: an optimistic start and a free failure
            // are odd choices, not broken ones.
            default_rtt: self.duration(
                &format!("{path}.ewma.default_rtt"),
                ewma.and_then(|e| e.default_rtt.as_deref()),
                defaults::DEFAULT_RTT,
                None,
            ),
            failure_penalty: self.duration(
                &format!("{path}.ewma.failure_penalty"),
                ewma.and_then(|e| e.failure_penalty.as_deref()),
                defaults::FAILURE_PENALTY,
                None,
            ),
        };

        let groups = self.groups(path, raw, linkerd_compatible);
        let split = self.split(path, raw);
        let health_check = raw
            .health_check
            .as_ref()
            .map(|check| self.health_check(&format!("{path}.health_check"), check));
        let outlier = match &raw.outlier {
            Some(outlier) => self.outlier(&format!("{path}.outlier"), outlier),
            None => defaults::OUTLIER,
        };
        let slow_start = raw
            .slow_start
            .as_ref()
            .and_then(|slow_start| self.slow_start(&format!("{path}.slow_start"), slow_start));
        let retry = match &raw.retry {
            Some(retry) => {
                let request = request.map(|timeout| (timeout, request_text.is_some()));
                self.retry(&format!("{path}.retry"), retry, request)
            }
            None => defaults::RETRY,
        };
        let grpc = match &raw.grpc {
            Some(grpc) => self.grpc(&format!("{path}.grpc"), grpc),
            None => defaults::GRPC,
        };
        let mut service = ServiceConfig {
            name: raw.name.clone(),
            balancer,
            protocol,
            tls,
            timeouts,
            ewma,
            groups,
            split,
            rollout: None,
            health_check,
            outlier,
            slow_start,
            retry,
            grpc,
        };
        // Checked against the built service so the stable group is found by
        // the very rule the rollout driver uses.
        service.rollout = raw
            .rollout
            .as_ref()
            .map(|rollout| self.rollout(&format!("{path}.rollout"), rollout, &service));
        service
    }

    fn upstream_tls(&mut self, path: &str, raw: &RawUpstreamTls) -> UpstreamTls {
        let ca = self.file_path(&format!("{path}.ca"), raw.ca.as_deref());
        let server_name = raw.server_name.as_ref().and_then(|name| {
            if rustls_pki_types::ServerName::try_from(name.as_str()).is_ok() {
                Some(name.clone())
            } else {
                self.issue(
                    format!("{path}.server_name"),
                    format!(
                        "{name:?} is neither a DNS name nor an IP address; give the name \
                         the endpoints' certificates are issued for, e.g. \
                         api.internal.example.com"
                    ),
                );
                None
            }
        });
        let client_certificate =
            self.certificate_pair(path, raw.cert.as_deref(), raw.key.as_deref());
        let insecure_skip_verify = raw.insecure_skip_verify.unwrap_or(false);
        if insecure_skip_verify && ca.is_some() {
            self.issue(
                format!("{path}.insecure_skip_verify"),
                "`ca` is given but `insecure_skip_verify: true` would ignore it; remove one",
            );
        }
        UpstreamTls {
            ca,
            server_name,
            client_certificate,
            insecure_skip_verify,
        }
    }

    fn grpc(&mut self, path: &str, raw: &RawGrpc) -> GrpcConfig {
        let Some(statuses) = &raw.failure_statuses else {
            return defaults::GRPC;
        };
        let mut failure_statuses = StatusSet::EMPTY;
        for (index, status) in statuses.iter().enumerate() {
            let parsed = match status {
                RawGrpcStatus::Code(code) => code.to_string().parse::<grpc::StatusCode>(),
                RawGrpcStatus::Name(name) => name.parse(),
            };
            match parsed {
                Ok(grpc::StatusCode(0)) => self.issue(
                    format!("{path}.failure_statuses[{index}]"),
                    "ok (0) is success and cannot be a failure; remove it".to_owned(),
                ),
                Ok(grpc::StatusCode(code)) => failure_statuses = failure_statuses.with(code),
                Err(message) => self.issue(format!("{path}.failure_statuses[{index}]"), message),
            }
        }
        GrpcConfig { failure_statuses }
    }
}
