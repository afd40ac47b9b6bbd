//! Putting luas together: [`App::build`] turns a validated config into the
//! running state without any I/O beyond the state file (so tests can build one
//! without a socket), and [`App::serve`] binds every socket first, then spawns
//! the listeners, the admin server, the rollout driver and (when luas runs
//! from a file) the config watcher, so a bind failure leaves nothing
//! half-started. TLS files are loaded before anything binds, and each TLS
//! listener gets a watcher that reloads them when they change.
//!
//! The app owns what lives as long as the process and is not configuration:
//! the traffic history the dashboard draws and the access log writer. The
//! state writer (`state`) owns only the snapshot.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::access_log::AccessLog;
use crate::admin::auth::AdminAuth;
use crate::admin::names::EndpointNames;
use crate::admin::{spawn_admin, Admin};
use crate::config::Config;
use crate::embed::MakeProxy;
use crate::fleet::Fleet;
use crate::history::{self, History};
use crate::kubernetes::Kubernetes;
use crate::metrics::Metrics;
use crate::reload::Reloader;
use crate::rollout::{self, Board};
use crate::server;
use crate::shutdown::{Shutdown, ShutdownSignal};
use crate::state::{State, TlsLoadError};
use crate::tls::{TlsError, TlsTerminator};

#[derive(Debug)]
pub struct App {
    state: Arc<State>,
    /// The last minutes of traffic, sampled for the dashboard.
    history: Arc<History>,
    /// Where requests' access log lines go (when `access_log` is on).
    access_log: Arc<AccessLog>,
    config_file: Option<PathBuf>,
    watch_interval: Option<Duration>,
    /// Shown beside endpoint addresses by the admin API.
    endpoint_names: EndpointNames,
}

/// Why luas could not start serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "cannot listen on {address} for {what}: {source}; is another process using that port?"
    )]
    Bind {
        what: String,
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    AdminToken(String),
    #[error("kubernetes: {0}")]
    Fleet(String),
    #[error("listeners[{index}].tls ({listener}): {source}")]
    Tls {
        index: usize,
        listener: String,
        #[source]
        source: TlsError,
    },
}

/// How long shutdown waits for queued access log lines to be written.
const ACCESS_LOG_FLUSH: Duration = Duration::from_secs(2);

/// How often listeners' TLS files are looked at for changes.
const TLS_WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// A serving luas: the bound addresses and the handle to stop it.
#[derive(Debug)]
pub struct Running {
    state: Arc<State>,
    access_log: Arc<AccessLog>,
    listeners: Vec<(String, SocketAddr)>,
    admin_address: SocketAddr,
    shutdown: Shutdown,
    accept_loops: Vec<JoinHandle<()>>,
    /// Tasks stopped once the drain is over: admin server, rollout driver, watcher.
    background: Vec<JoinHandle<()>>,
    reloader: Option<Arc<Reloader>>,
    grace_period: Duration,
    fleet: Option<Arc<Fleet>>,
}

impl App {
    /// Fails only when a service's TLS files do not load.
    pub fn build(config: Config) -> Result<Self, TlsLoadError> {
        let metrics = Arc::new(if config.metrics.linkerd_compatible {
            Metrics::with_linkerd(&config.metrics.buckets, &config.metrics.namespace)
        } else {
            Metrics::new(&config.metrics.buckets)
        });
        Ok(Self {
            access_log: Arc::new(AccessLog::new(metrics.access_log_dropped())),
            history: Arc::default(),
            state: Arc::new(State::new(config, metrics)?),
            config_file: None,
            watch_interval: None,
            endpoint_names: EndpointNames::default(),
        })
    }

    /// Names to show beside endpoint addresses in the admin API and
    /// `luas ctl status` (the demo names its replicas `stable-1` …).
    pub fn endpoint_names(mut self, names: impl IntoIterator<Item = (SocketAddr, String)>) -> Self {
        self.endpoint_names = names.into_iter().collect();
        self
    }

    /// Names the file the config came from, so it can be reloaded (SIGHUP,
    /// `POST /api/v1/reload`), and watched every `watch_interval` if given.
    pub fn config_file(mut self, path: PathBuf, watch_interval: Option<Duration>) -> Self {
        self.config_file = Some(path);
        self.watch_interval = watch_interval;
        self
    }

    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// Binds the admin listener and every listener, then starts serving.
    pub async fn serve(self) -> Result<Running, ServeError> {
        let snapshot = self.state.load();
        let config = &snapshot.config;
        let auth = AdminAuth::from_config(&config.admin);
        auth.check().map_err(ServeError::AdminToken)?;
        let mut terminators = Vec::with_capacity(config.listeners.len());
        for (index, listener) in config.listeners.iter().enumerate() {
            let terminator = match &listener.tls {
                None => None,
                Some(tls) => Some(Arc::new(
                    TlsTerminator::load(tls, listener.protocol).map_err(|source| {
                        ServeError::Tls {
                            index,
                            listener: listener.name.clone(),
                            source,
                        }
                    })?,
                )),
            };
            terminators.push(terminator);
        }
        // A replica reads the fleet's state before it serves anything, so a
        // pod created after a rollback never sends traffic to the version
        // rolled back.
        let uses_kubernetes = config.fleet.is_some()
            || config
                .services
                .iter()
                .flat_map(|service| &service.groups)
                .any(|group| group.kubernetes.is_some());
        let kubernetes = if uses_kubernetes {
            Some(
                Kubernetes::connect(&config.kubernetes, self.state.metrics().clone())
                    .await
                    .map_err(|error| ServeError::Fleet(error.to_string()))?,
            )
        } else {
            None
        };
        let fleet = match (&config.fleet, &kubernetes) {
            (Some(fleet_config), Some(kubernetes)) => Some(
                Fleet::join(
                    fleet_config,
                    kubernetes.clone(),
                    self.state.clone(),
                    self.state.metrics().clone(),
                )
                .await
                .map_err(ServeError::Fleet)?,
            ),
            _ => None,
        };
        let admin_listener =
            server::bind(config.admin.listen).map_err(|source| ServeError::Bind {
                what: "the admin listener".into(),
                address: config.admin.listen,
                source,
            })?;
        let mut bound = Vec::with_capacity(config.listeners.len());
        for listener in &config.listeners {
            let socket = server::bind(listener.listen).map_err(|source| ServeError::Bind {
                what: format!("listener {}", listener.name),
                address: listener.listen,
                source,
            })?;
            bound.push(socket);
        }

        let shutdown = Shutdown::new();
        let bound_flag = Arc::new(AtomicBool::new(false));
        let admin_address = local_address(&admin_listener, config.admin.listen);
        let reloader = self
            .config_file
            .map(|path| Arc::new(Reloader::new(path, self.state.clone())));
        let board = Arc::new(Board::default());
        let mut background = vec![spawn_admin(
            admin_listener,
            Admin {
                state: self.state.clone(),
                history: self.history.clone(),
                bound: bound_flag.clone(),
                shutdown: shutdown.signal(),
                reloader: reloader.clone(),
                rollouts: board.clone(),
                auth,
                dns_resolved_once: Arc::default(),
                endpoint_names: Arc::new(self.endpoint_names),
                fleet: fleet.clone(),
            },
        )];
        if let Some(fleet) = &fleet {
            background.extend(fleet.spawn(published_address(admin_address)));
        }
        background.push(rollout::spawn_driver(
            rollout::Writer::new(self.state.clone(), fleet.clone()),
            board,
        ));
        background.extend(self.access_log.spawn_writer());
        background.push(history::spawn_sampler(
            self.state.clone(),
            self.history.clone(),
        ));
        background.push(crate::health_check::spawn_driver(self.state.clone()));
        background.push(crate::discovery::spawn_driver(self.state.clone()));
        background.push(crate::endpoint_slices::spawn_driver(
            self.state.clone(),
            kubernetes,
        ));
        if let (Some(reloader), Some(interval)) = (&reloader, self.watch_interval) {
            background.push(reloader.clone().spawn_watch(interval));
        }
        let mut listeners = Vec::with_capacity(bound.len());
        let mut accept_loops = Vec::with_capacity(bound.len());
        let sockets = bound.into_iter().zip(terminators);
        for (index, ((socket, tls), listener)) in sockets.zip(&config.listeners).enumerate() {
            let address = local_address(&socket, listener.listen);
            tracing::info!(listener = %listener.name, %address, tls = tls.is_some(), "listening");
            listeners.push((listener.name.clone(), address));
            if let Some(tls) = &tls {
                background.push(tls.clone().spawn_watch(
                    listener.name.clone(),
                    TLS_WATCH_INTERVAL,
                    self.state.metrics().tls_reloads(&listener.name),
                ));
            }
            accept_loops.push(server::spawn_listener(
                socket,
                index,
                listener,
                tls,
                self.state.clone(),
                self.access_log.clone(),
                &shutdown,
            ));
        }
        bound_flag.store(true, Ordering::Release);
        tracing::info!(%admin_address, "admin listening (/metrics, /live, /ready)");
        Ok(Running {
            state: self.state,
            access_log: self.access_log,
            listeners,
            admin_address,
            shutdown,
            accept_loops,
            background,
            reloader,
            grace_period: config.shutdown.grace_period,
            fleet,
        })
    }
}

impl Running {
    /// The bound address of a listener, by name (useful with port 0).
    pub fn listener_address(&self, name: &str) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|(listener, _)| listener == name)
            .map(|(_, address)| *address)
    }

    /// Listener `name`'s routing as a `tower::Service`, for a program that
    /// embeds luas and serves it to its own clients (see [`MakeProxy`]). It
    /// reads the live state: reloads, rollouts and discovery apply to it.
    /// luas keeps serving that listener on its own address too (port 0 on
    /// loopback if nothing else should reach it).
    pub fn proxy(&self, name: &str) -> Option<MakeProxy> {
        let index = self
            .listeners
            .iter()
            .position(|(listener, _)| listener == name)?;
        Some(MakeProxy::new(
            self.state.clone(),
            self.access_log.clone(),
            index,
            self.shutdown.token().downgrade(),
        ))
    }

    pub fn listener_addresses(&self) -> &[(String, SocketAddr)] {
        &self.listeners
    }

    pub fn admin_address(&self) -> SocketAddr {
        self.admin_address
    }

    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// The config file reloader, when luas runs from a file.
    pub fn reloader(&self) -> Option<&Arc<Reloader>> {
        self.reloader.as_ref()
    }

    pub fn shutdown_signal(&self) -> ShutdownSignal {
        self.shutdown.signal()
    }

    /// Starts a graceful shutdown without waiting for it.
    pub fn begin_shutdown(&self) {
        self.shutdown.trigger();
    }

    /// Stops accepting, waits for in-flight requests up to the grace period,
    /// then stops the admin server. True when everything finished in time.
    pub async fn shutdown(self) -> bool {
        let Self {
            access_log,
            shutdown,
            accept_loops,
            background,
            grace_period,
            fleet,
            ..
        } = self;
        shutdown.trigger();
        // Out of the fleet first, so changes stop waiting for this replica.
        if let Some(fleet) = &fleet {
            fleet.leave().await;
        }
        for accept_loop in accept_loops {
            let _ = accept_loop.await;
        }
        let drained = shutdown.drain(grace_period).await;
        // The last requests' access log lines, before the writer stops.
        if !access_log.flush(ACCESS_LOG_FLUSH).await {
            tracing::warn!("access log lines still queued at exit were lost");
        }
        for task in background {
            task.abort();
        }
        drained
    }
}

/// The admin address other replicas reach this one at: the bound one,
/// with an unspecified IP replaced by `$POD_IP` when set.
fn published_address(bound: SocketAddr) -> String {
    if bound.ip().is_unspecified() {
        if let Ok(pod_ip) = std::env::var("POD_IP") {
            if let Ok(ip) = pod_ip.parse::<std::net::IpAddr>() {
                return SocketAddr::new(ip, bound.port()).to_string();
            }
        }
    }
    bound.to_string()
}

fn local_address(listener: &tokio::net::TcpListener, configured: SocketAddr) -> SocketAddr {
    listener.local_addr().unwrap_or(configured)
}
