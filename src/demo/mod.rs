//! `luas demo`: the proxy on an embedded config in front of four in-process
//! backends, three replicas of a "stable" version (one 40 ms slower than the
//! others) and one "canary", so a newcomer sees least-latency balancing and a
//! weighted canary split with no set-up.
//!
//! The demo sends itself light background traffic (`--traffic`, requests per
//! second) and prints a table every five seconds: requests per replica, share
//! and latency estimate. [`backend`] is also what the integration tests use.

pub mod backend;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::app::{App, ServeError};
use crate::config::{Config, ConfigError};
use crate::state::State;
use backend::{Backend, BackendOptions};

/// The demo's config template; see the file for its placeholders.
pub const DEMO_CONFIG: &str = include_str!("demo.yaml");

/// How much slower the slow stable replica is.
pub const SLOW_EXTRA_LATENCY: Duration = Duration::from_millis(40);
const BASE_LATENCY: Duration = Duration::from_millis(2);

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub listen: SocketAddr,
    pub admin: SocketAddr,
    /// Background requests per second; 0 for none.
    pub traffic: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot start a demo backend: {0}")]
    Backend(#[source] std::io::Error),
    #[error("the embedded demo config is invalid (a bug): {0}")]
    Config(#[source] ConfigError),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Tls(#[from] crate::state::TlsLoadError),
}

/// The four demo backends.
#[derive(Debug)]
pub struct DemoBackends {
    pub stable: Vec<Backend>,
    pub canary: Backend,
}

impl DemoBackends {
    pub async fn spawn() -> std::io::Result<Self> {
        let mut stable = Vec::new();
        for (name, extra) in [
            ("stable-1", Duration::ZERO),
            ("stable-2", Duration::ZERO),
            ("stable-3", SLOW_EXTRA_LATENCY),
        ] {
            stable.push(
                Backend::spawn(BackendOptions::new(name).latency(BASE_LATENCY + extra)).await?,
            );
        }
        let canary = Backend::spawn(BackendOptions::new("canary-1").latency(BASE_LATENCY)).await?;
        Ok(Self { stable, canary })
    }

    /// Each backend's address and name, for [`App::endpoint_names`], so
    /// `luas ctl status` and the admin API show `stable-1`, not a port.
    pub fn names(&self) -> impl Iterator<Item = (SocketAddr, String)> + '_ {
        self.all()
            .map(|backend| (backend.address, backend.name.clone()))
    }

    fn all(&self) -> impl Iterator<Item = &Backend> {
        self.stable.iter().chain(std::iter::once(&self.canary))
    }

    /// The demo config with these backends' addresses filled in.
    pub fn config(&self, listen: SocketAddr, admin: SocketAddr) -> Result<Config, ConfigError> {
        let mut text = DEMO_CONFIG
            .replace("{listen}", &listen.to_string())
            .replace("{admin}", &admin.to_string())
            .replace("{canary-1}", &self.canary.address.to_string());
        for backend in &self.stable {
            text = text.replace(
                &format!("{{{}}}", backend.name),
                &backend.address.to_string(),
            );
        }
        Config::from_yaml(&text)
    }

    fn name_of(&self, address: SocketAddr) -> &str {
        self.all()
            .find(|backend| backend.address == address)
            .map_or("?", |backend| backend.name.as_str())
    }
}

/// Runs the demo until SIGINT or SIGTERM.
pub async fn run(options: DemoOptions) -> Result<(), DemoError> {
    let backends = DemoBackends::spawn().await.map_err(DemoError::Backend)?;
    let config = backends
        .config(options.listen, options.admin)
        .map_err(DemoError::Config)?;
    let running = App::build(config)?
        .endpoint_names(backends.names())
        .serve()
        .await?;
    let proxy = running.listener_address("demo").unwrap_or(options.listen);
    let admin = running.admin_address();
    println!("{}", instructions(proxy, admin));

    if options.traffic > 0 {
        tokio::spawn(background_traffic(proxy, options.traffic));
    }
    let state = running.state().clone();
    let reporter = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(5));
        ticker.tick().await;
        loop {
            ticker.tick().await;
            println!("{}", summary(&state, &backends));
        }
    });

    let signal = crate::shutdown::signal_received().await;
    println!("{signal} received, draining");
    reporter.abort();
    running.shutdown().await;
    Ok(())
}

fn instructions(proxy: SocketAddr, admin: SocketAddr) -> String {
    format!(
        "\nluas demo is running: one proxy in front of 4 demo backends.\n\
         \x20 service web: group stable (weight 90): stable-1, stable-2, stable-3 (40 ms slower)\n\
         \x20              group canary (weight 10): canary-1\n\n\
         Dashboard: http://{admin}/  (live charts; roll back with one click)\n\n\
         Try:\n\
         \x20 curl -s http://{proxy}/                      # answers with the backend's name\n\
         \x20 for i in $(seq 100); do curl -s http://{proxy}/; done | sort | uniq -c\n\
         \x20 curl -s http://{admin}/metrics | grep luas_backend_requests_total\n\
         \x20 curl -s http://{admin}/ready\n\n\
         A summary prints every 5 s. Ctrl-C to stop.\n"
    )
}

/// A table of requests, share and latency estimate per demo replica.
pub fn summary(state: &State, backends: &DemoBackends) -> String {
    let snapshot = state.load();
    let mut rows = Vec::new();
    for service in &snapshot.services {
        for group in &service.groups {
            for endpoint in &group.endpoints {
                let metrics = &endpoint.stats.metrics;
                rows.push((
                    backends.name_of(endpoint.address).to_owned(),
                    group.name.clone(),
                    metrics.requests.total(),
                    metrics.ewma_seconds.get() * 1000.0,
                ));
            }
        }
    }
    let total: u64 = rows.iter().map(|row| row.2).sum::<u64>().max(1);
    let mut text = String::from("replica    group   requests  share  latency estimate\n");
    for (name, group, requests, ewma_ms) in rows {
        let share = 100.0 * requests as f64 / total as f64;
        let _ = writeln!(
            text,
            "{name:<10} {group:<7} {requests:>8}  {share:>4.1}%  {ewma_ms:>6.1} ms"
        );
    }
    text
}

async fn background_traffic(proxy: SocketAddr, per_second: u32) {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let uri: http::Uri = match format!("http://{proxy}/").parse() {
        Ok(uri) => uri,
        Err(_) => return,
    };
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / per_second.max(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        ticker.tick().await;
        let client = client.clone();
        let uri = uri.clone();
        tokio::spawn(async move {
            if let Ok(response) = client.get(uri).await {
                let _ = response.into_body().collect().await;
            }
        });
    }
}
