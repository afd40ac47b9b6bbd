//! Embedding luas: this program serves HTTP itself and puts its own tower
//! Layer, a bearer-token check, in front of luas's routing.
//!
//! ```text
//! cargo run --example embed
//! curl -i localhost:8080/                                    # 401, luas never sees it
//! curl -i -H 'authorization: Bearer let-me-in' localhost:8080/headers
//! ```
//!
//! luas is built from YAML and started as usual (it keeps serving its own
//! listener, here on a loopback port nobody uses, and its admin API), so
//! reloads, rollouts, health checks and discovery apply to the embedded
//! routing too. `running.proxy("edge")` hands out that listener's routing;
//! per accepted connection, `for_client(remote)` is a `tower::Service` that
//! knows the client's address (for X-Forwarded-For, logs, rate limits).

#![forbid(unsafe_code)]

use std::task::{Context, Poll};

use futures_util::future::Either;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderValue, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use luas::app::App;
use luas::config::Config;
use luas::demo::backend::{Backend, BackendOptions};
use luas::ResponseBody;
use tower::{Layer, Service, ServiceBuilder};

const ADDRESS: &str = "127.0.0.1:8080";
const TOKEN: &str = "let-me-in";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt::init();
    // A backend to route to; yours would be elsewhere.
    let backend = Backend::spawn(BackendOptions::new("backend")).await?;
    let yaml = format!(
        r#"
admin: {{ listen: "127.0.0.1:0" }}
listeners:
  - name: edge
    listen: "127.0.0.1:0"
    routes:
      - {{ name: all, service: web }}
services:
  - name: web
    endpoints: ["{}"]
"#,
        backend.address
    );
    let running = App::build(Config::from_yaml(&yaml)?)?.serve().await?;
    let proxy = running.proxy("edge").expect("the config has listener edge");

    let listener = tokio::net::TcpListener::bind(ADDRESS).await?;
    println!("serving on http://{ADDRESS}; the token is {TOKEN}");
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = tokio::signal::ctrl_c() => break,
        };
        let service = ServiceBuilder::new()
            .layer(RequireBearer::new(TOKEN))
            .service(proxy.for_client(remote));
        tokio::spawn(serve(stream, service));
    }
    // Waits for open connections (each holds its Proxy) up to the grace period.
    running.shutdown().await;
    Ok(())
}

/// Serves one connection, HTTP/1.1 or HTTP/2, upgrades included (public
/// for tests/it/embed.rs, which serves this file's layer itself).
pub async fn serve<S>(stream: tokio::net::TcpStream, service: S)
where
    S: Service<Request<hyper::body::Incoming>, Response = Response<ResponseBody>>
        + Clone
        + Send
        + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::Future: Send + 'static,
{
    let builder = auto::Builder::new(TokioExecutor::new());
    let connection = builder
        .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service));
    if let Err(error) = connection.await {
        tracing::debug!(%error, "client connection ended with an error");
    }
}

/// A Layer that answers 401 unless the request carries
/// `authorization: Bearer <token>`; the header is removed before luas
/// forwards the request, so backends never see the token.
#[derive(Debug, Clone)]
pub struct RequireBearer {
    token: HeaderValue,
}

impl RequireBearer {
    pub fn new(token: &str) -> Self {
        let token = HeaderValue::from_str(token).expect("a token is a valid header value");
        Self { token }
    }
}

impl<S> Layer<S> for RequireBearer {
    type Service = RequireBearerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireBearerService {
            token: self.token.clone(),
            inner,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RequireBearerService<S> {
    token: HeaderValue,
    inner: S,
}

impl<S, B> Service<Request<B>> for RequireBearerService<S>
where
    S: Service<Request<B>, Response = Response<ResponseBody>>,
{
    type Response = Response<ResponseBody>;
    type Error = S::Error;
    type Future = Either<std::future::Ready<Result<Self::Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let given = request.headers_mut().remove(AUTHORIZATION);
        if given.is_some_and(|value| bearer_matches(&value, &self.token)) {
            return Either::Right(self.inner.call(request));
        }
        let mut response = Response::new(ResponseBody::full("a bearer token is needed\n"));
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        let challenge = HeaderValue::from_static("Bearer");
        response.headers_mut().insert(WWW_AUTHENTICATE, challenge);
        Either::Left(std::future::ready(Ok(response)))
    }
}

/// `Bearer <token>` (the scheme in any case), the token compared in constant
/// time so its bytes cannot be guessed one by one from response times.
fn bearer_matches(value: &HeaderValue, token: &HeaderValue) -> bool {
    use subtle::ConstantTimeEq;
    let Some((scheme, given)) = value.to_str().ok().and_then(|value| value.split_once(' ')) else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer") && bool::from(given.as_bytes().ct_eq(token.as_bytes()))
}
