//! The admin listener (default 127.0.0.1:9901): Prometheus metrics and the
//! probes Kubernetes uses.
//!
//! - `GET /metrics`: every luas metric family, Prometheus text format.
//! - `GET /live`: 200 while the process runs.
//! - `GET /ready`: 200 once the config is loaded, every listener is bound and
//!   every service has an endpoint; 503 before that and once shutdown has
//!   begun, so a pod is taken out of a Service before it drains.
//!
//! The admin listener keeps answering during the drain; it does not hold a
//! drain token and is stopped after the drain.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::shutdown::ShutdownSignal;
use crate::state::State;

/// What the admin endpoints read.
#[derive(Debug, Clone)]
pub struct Admin {
    pub state: Arc<State>,
    /// Set once every listener is bound.
    pub bound: Arc<AtomicBool>,
    pub shutdown: ShutdownSignal,
}

pub fn spawn_admin(listener: TcpListener, admin: Admin) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
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
                    async move { Ok::<_, Infallible>(admin.respond(&request)) }
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
    pub fn is_ready(&self) -> bool {
        self.bound.load(Ordering::Acquire)
            && !self.shutdown.is_triggered()
            && self.state.load().every_service_has_an_endpoint()
    }

    fn respond(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
        }
        match request.uri().path() {
            "/metrics" => {
                let mut response =
                    Response::new(Full::new(Bytes::from(self.state.metrics().render())));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                response
            }
            "/live" => text(StatusCode::OK, "live\n"),
            "/ready" if self.is_ready() => text(StatusCode::OK, "ready\n"),
            "/ready" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
            _ => text(
                StatusCode::NOT_FOUND,
                "admin endpoints: /metrics /live /ready\n",
            ),
        }
    }
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
