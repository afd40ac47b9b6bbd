//! The active health check driver (`health_check:`).
//!
//! One task for the whole proxy walks the current snapshot: for every service
//! with `health_check:` it probes each endpoint with `GET path` every
//! `interval` (all endpoints of a service at once, each bounded by `timeout`;
//! a 2xx or 3xx passes, anything else fails) and hands the result to
//! `health::active::apply_probe`, which flips the endpoint after its
//! thresholds. Probes go through the service's own client: the same
//! protocol, TLS and connection pool as the traffic they vouch for.
//!
//! The same task keeps `luas_backend_healthy` current for every endpoint,
//! since ejections end by themselves when their time is up. Started by
//! `app`; it writes only the endpoints' health cells, never the snapshot.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::body::RequestBody;
use crate::client::{SendError, UpstreamClient};
use crate::config::HealthCheckConfig;
use crate::endpoint::Endpoint;
use crate::health::active::apply_probe;
use crate::state::State;

/// How often gauges are refreshed when no probe is due sooner.
const REFRESH: Duration = Duration::from_millis(500);

pub(crate) fn spawn_driver(state: Arc<State>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut next_probe: HashMap<String, Instant> = HashMap::new();
        loop {
            let snapshot = state.load();
            let now = Instant::now();
            let mut sleep = REFRESH;
            for (service_config, service) in snapshot.config.services.iter().zip(&snapshot.services)
            {
                for group in &service.groups {
                    for endpoint in &group.endpoints {
                        let stats = &endpoint.stats;
                        stats
                            .metrics
                            .healthy
                            .set(i64::from(stats.health.is_eligible(now)));
                    }
                }
                let Some(check) = &service_config.health_check else {
                    // Checks removed by a reload: their last verdict no longer holds.
                    for endpoint in service.groups.iter().flat_map(|group| &group.endpoints) {
                        endpoint.stats.health.clear_active();
                    }
                    continue;
                };
                let due = next_probe.entry(service.name.clone()).or_insert(now);
                if *due <= now {
                    *due = now + check.interval;
                    let probes = service.groups.iter().flat_map(|group| {
                        group
                            .endpoints
                            .iter()
                            .map(move |endpoint| (group.name.clone(), endpoint.clone()))
                    });
                    for (group, endpoint) in probes {
                        let client = service.client.clone();
                        let check = check.clone();
                        let service = service.name.clone();
                        tokio::spawn(async move {
                            let passed = probe(&client, &endpoint, &check).await;
                            if let Some(healthy) =
                                apply_probe(&endpoint.stats.health, &check, passed, Instant::now())
                            {
                                let endpoint_address = endpoint.address;
                                if healthy {
                                    tracing::info!(%service, %group, endpoint = %endpoint_address, "health check passing again: endpoint back in rotation");
                                } else {
                                    tracing::warn!(%service, %group, endpoint = %endpoint_address, "health check failing: endpoint out of rotation");
                                }
                                endpoint.stats.metrics.healthy.set(i64::from(
                                    endpoint.stats.health.is_eligible(Instant::now()),
                                ));
                            }
                        });
                    }
                }
                sleep = sleep.min(due.saturating_duration_since(now));
            }
            next_probe.retain(|name, _| snapshot.service(name).is_some());
            tokio::time::sleep(sleep.max(Duration::from_millis(10))).await;
        }
    })
}

/// One probe through the service's own client, so it speaks what traffic
/// speaks (HTTP/1.1 or h2c, TLS when the service has it) and reuses pooled
/// connections.
async fn probe(client: &UpstreamClient, endpoint: &Endpoint, check: &HealthCheckConfig) -> bool {
    let request = || {
        Request::get(check.path.as_str())
            .header(http::header::USER_AGENT, "luas-health-check")
            .body(RequestBody::buffered(Bytes::new()))
            .ok()
    };
    let probing = async {
        let sent = match client
            .send(endpoint, request()?, tokio::time::Instant::now())
            .await
        {
            Ok(sent) => sent,
            // A pooled connection the endpoint had just closed says nothing
            // about its health (probes of an idle service often reuse their
            // own connection right at the endpoint's keep-alive timeout):
            // probe once more, on a fresh connection.
            Err(SendError::Stale { .. } | SendError::NotSent { .. }) => client
                .send(endpoint, request()?, tokio::time::Instant::now())
                .await
                .ok()?,
            Err(SendError::Failed(_)) => return None,
        };
        let status = sent.response.status();
        // Read to the end so the connection can go back to the pool.
        let _ = sent.drain().await;
        Some(status.is_success() || status.is_redirection())
    };
    matches!(
        tokio::time::timeout(check.timeout, probing).await,
        Ok(Some(true))
    )
}
