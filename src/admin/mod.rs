//! The admin listener (default 127.0.0.1:9901): Prometheus metrics and the
//! probes Kubernetes uses.
//!
//! - `GET /metrics`: every luas metric family, Prometheus text format.
//! - `GET /live`: 200 while the process runs.
//! - `GET /ready`: 200 once the config is loaded, every listener is bound,
//!   every service has an endpoint and every `dns` group with weight above 0
//!   has resolved (checked until it first holds); 503 before that and once
//!   shutdown has begun, so a pod is taken out of a Service before it drains.
//! - `GET /`: the [`dashboard`] page, and its files under `/dashboard/`.
//! - `/api/v1/...`: the JSON API of [`api`]. Who may make changes (PUT,
//!   POST, DELETE) is [`auth`]'s decision: a bearer token when
//!   `admin.token_file` is set, else loopback clients only, so exposing the
//!   admin port for scraping does not expose rollbacks to the network.
//!
//! The admin listener keeps answering during the drain; it does not hold a
//! drain token and is stopped after the drain.

pub(crate) mod api;
pub(crate) mod auth;
pub(crate) mod dashboard;
pub(crate) mod names;
pub(crate) mod wire;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::fleet::Fleet;
use crate::history::History;
use crate::reload::Reloader;
use crate::rollout::Board;
use crate::shutdown::ShutdownSignal;
use crate::state::State;
use auth::AdminAuth;

/// Largest request body the API reads.
const MAX_BODY: usize = 64 * 1024;

/// What the admin endpoints read.
#[derive(Debug, Clone)]
pub(crate) struct Admin {
    pub state: Arc<State>,
    /// The traffic history the dashboard draws.
    pub history: Arc<History>,
    /// Set once every listener is bound.
    pub bound: Arc<AtomicBool>,
    pub shutdown: ShutdownSignal,
    /// Present when luas runs from a config file that can be re-read.
    pub reloader: Option<Arc<Reloader>>,
    pub rollouts: Arc<Board>,
    pub auth: AdminAuth,
    /// Set once every weighted `dns` group has resolved.
    pub dns_resolved_once: Arc<AtomicBool>,
    /// Names shown beside endpoint addresses, where known.
    pub endpoint_names: Arc<names::EndpointNames>,
    /// Fleet mode: changes go to every replica through the Kubernetes API.
    pub fleet: Option<Arc<Fleet>>,
}

pub(crate) fn spawn_admin(listener: TcpListener, admin: Admin) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "admin accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                }
            };
            let admin = admin.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let admin = admin.clone();
                    async move { Ok::<_, Infallible>(admin.respond(peer, request).await) }
                });
                let _ = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

impl Admin {
    pub(crate) fn is_ready(&self) -> bool {
        let snapshot = self.state.load();
        if !self.bound.load(Ordering::Acquire)
            || self.shutdown.is_triggered()
            || !snapshot.every_service_has_an_endpoint()
        {
            return false;
        }
        // DNS only gates the first readiness: once serving, a reload that
        // adds a name not resolved yet must not take every replica out of
        // its Service at once.
        if self.dns_resolved_once.load(Ordering::Relaxed) {
            return true;
        }
        let resolved = snapshot.every_dns_group_resolved();
        if resolved {
            self.dns_resolved_once.store(true, Ordering::Relaxed);
        }
        resolved
    }

    async fn respond(&self, peer: SocketAddr, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let wait = match wait_parameter(request.uri().query()) {
            Ok(wait) => wait,
            Err(message) => return json_error(StatusCode::BAD_REQUEST, &message),
        };
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let changes = !matches!(method, Method::GET | Method::HEAD);
        if changes {
            if let Err((status, message)) = self.auth.allow_change(peer, request.headers()) {
                let mut response = json_error(status, &message);
                if status == StatusCode::UNAUTHORIZED {
                    response
                        .headers_mut()
                        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                }
                return response;
            }
        }
        let state = &self.state;
        let result = match (&method, segments.as_slice()) {
            (&Method::GET | &Method::HEAD, ["metrics"]) => {
                let mut response = Response::new(Full::new(Bytes::from(state.metrics().render())));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                return response;
            }
            (&Method::GET | &Method::HEAD, [""] | ["dashboard", _]) => {
                return match dashboard::asset(&path) {
                    Some((content_type, bytes)) => {
                        let mut response = Response::new(Full::new(Bytes::from_static(bytes)));
                        let headers = response.headers_mut();
                        headers
                            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
                        // The page acts on the proxy: never inside another site's frame.
                        headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
                        headers.insert(
                            "content-security-policy",
                            HeaderValue::from_static(
                                "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
                            ),
                        );
                        response
                    }
                    None => text(StatusCode::NOT_FOUND, "no such dashboard file\n"),
                };
            }
            (&Method::GET | &Method::HEAD, ["live"]) => return text(StatusCode::OK, "live\n"),
            (&Method::GET | &Method::HEAD, ["ready"]) if self.is_ready() => {
                return text(StatusCode::OK, "ready\n")
            }
            (&Method::GET | &Method::HEAD, ["ready"]) => {
                return text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
            }
            (&Method::GET, ["api", "v1", "services"]) => Ok(api::services(self)),
            (&Method::GET, ["api", "v1", "history"]) => Ok(self.history.to_json()),
            (&Method::GET, ["api", "v1", "services", name]) => api::service(self, name),
            (&Method::GET, ["api", "v1", "fleet"]) => api::fleet(self),
            (&Method::GET, ["api", "v1", "fleet", "readings"]) => api::fleet_readings(self),
            (&Method::PUT, ["api", "v1", "services", name, "weights"]) => {
                match read_body(request).await {
                    Ok(body) => api::set_weights(self, name, &body, wait).await,
                    Err(error) => Err(error),
                }
            }
            (&Method::DELETE, ["api", "v1", "services", name, "weights"]) => {
                api::reset_weights(self, name, wait).await
            }
            (&Method::POST, ["api", "v1", "services", name, "rollout", "restart"]) => {
                api::restart_rollout(self, name, wait).await
            }
            (&Method::POST, ["api", "v1", "services", name, "rollback"]) => {
                api::rollback(self, name, wait).await
            }
            (&Method::POST, ["api", "v1", "services", name, "promote"]) => {
                match read_body(request).await {
                    Ok(body) => api::promote(self, name, &body, wait).await,
                    Err(error) => Err(error),
                }
            }
            (&Method::POST, ["api", "v1", "reload"]) => api::reload(self.reloader.as_deref()),
            _ => {
                return text(
                    StatusCode::NOT_FOUND,
                    "admin endpoints: / (dashboard) /metrics /live /ready /api/v1/services \
                     /api/v1/history /api/v1/reload /api/v1/fleet\n",
                )
            }
        };
        match result {
            Ok(value) => json(StatusCode::OK, &value),
            Err((status, message)) => json_error(status, &message),
        }
    }
}

/// How long a change waits for the fleet's acks by default.
pub(crate) const DEFAULT_WAIT: Duration = Duration::from_secs(2);

/// Longest `?wait=` accepted: an answer must come back while people wait.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// `?wait=DURATION` of a change (fleet mode), default 2 s.
fn wait_parameter(query: Option<&str>) -> Result<Duration, String> {
    let Some(text) = query
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("wait="))
    else {
        return Ok(DEFAULT_WAIT);
    };
    let wait = crate::config::parse_duration(text)
        .map_err(|error| format!("?wait={text}: {error}; e.g. ?wait=2s or ?wait=500ms"))?;
    if wait > MAX_WAIT {
        return Err(format!(
            "?wait={text} is longer than {} s; changes wait at most that long",
            MAX_WAIT.as_secs()
        ));
    }
    Ok(wait)
}

async fn read_body(request: Request<Incoming>) -> Result<Bytes, (StatusCode, String)> {
    Limited::new(request.into_body(), MAX_BODY)
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(|error| {
            (
                StatusCode::BAD_REQUEST,
                format!("cannot read the request body (at most {MAX_BODY} bytes): {error}"),
            )
        })
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut body = serde_json::to_vec_pretty(value).expect("JSON values serialize");
    body.push(b'\n');
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn json_error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json(status, &serde_json::json!({ "error": message }))
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
