//! Shared test support: start the real proxy on loopback port 0 in front of
//! real in-process backends, send requests with a real hyper client, and poll
//! with bounded `eventually` instead of sleeping.

#![allow(dead_code, unreachable_pub)]

pub mod certs;
pub mod dns;
pub mod kube_api;
pub mod raw;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::mpsc;

pub use luas::app::{App, Running};
pub use luas::config::Config;
pub use luas::demo::backend::{Backend, BackendOptions};

/// Starts luas from YAML. Listeners and admin in the YAML should use port 0.
pub async fn start_proxy(yaml: &str) -> Running {
    let config =
        Config::from_yaml(yaml).unwrap_or_else(|error| panic!("test config: {error}\n{yaml}"));
    start_proxy_with(config).await
}

pub async fn start_proxy_with(config: Config) -> Running {
    App::build(config)
        .expect("TLS files load")
        .serve()
        .await
        .expect("proxy starts")
}

/// The head most test configs share: the admin listener and listener `edge`
/// on port 0, with a catch-all route to service `web`. Configs append
/// `services:` and what else they need.
pub const EDGE_TO_WEB: &str = r#"admin: { listen: "127.0.0.1:0" }
listeners:
  - name: edge
    listen: "127.0.0.1:0"
    routes:
      - { name: all, service: web }
"#;

/// The YAML of one listener `edge` with a catch-all route to service `web`,
/// whose single group holds `endpoints`; `service_extra` is spliced into the
/// service (indented by 4 spaces).
pub fn one_service_yaml(endpoints: &[SocketAddr], service_extra: &str) -> String {
    let endpoints: Vec<String> = endpoints.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        r#"
{EDGE_TO_WEB}services:
  - name: web
    endpoints: [{}]
{service_extra}
"#,
        endpoints.join(", ")
    )
}

pub fn edge(running: &Running) -> SocketAddr {
    running.listener_address("edge").expect("listener edge")
}

/// A plain HTTP/1.1 client with a connection pool.
pub fn client() -> Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub async fn from(response: Response<Incoming>) -> Self {
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("response body").to_bytes();
        Self {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// For `/headers` answers: the value of a request header the backend saw.
    pub fn seen(&self, name: &str) -> Vec<String> {
        self.body
            .lines()
            .skip(1)
            .filter_map(|line| line.split_once(": "))
            .filter(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.to_owned())
            .collect()
    }
}

/// GET `path` on `address` with extra headers, over HTTP/1.1.
pub async fn get(address: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Answer {
    send(&client(), address, path, headers).await
}

pub async fn send(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    address: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let mut request = Request::builder().uri(format!("http://{address}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = tokio::time::timeout(
        Duration::from_secs(20),
        client.request(request.body(Full::new(Bytes::new())).unwrap()),
    )
    .await
    .expect("response within 20 s")
    .expect("request succeeds at the HTTP level");
    Answer::from(response).await
}

/// Polls `check` every 10 ms until it returns true, at most `limit`.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A request body fed chunk by chunk from the test, to prove streaming.
#[derive(Debug)]
pub struct ChannelBody {
    receiver: mpsc::Receiver<Bytes>,
}

impl ChannelBody {
    pub fn new() -> (mpsc::Sender<Bytes>, Self) {
        let (sender, receiver) = mpsc::channel(4);
        (sender, Self { receiver })
    }
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.receiver
            .poll_recv(cx)
            .map(|chunk| chunk.map(|data| Ok(Frame::data(data))))
    }
}

/// Scrapes the admin /metrics page.
pub async fn metrics_text(running: &Running) -> String {
    get(running.admin_address(), "/metrics", &[]).await.body
}

/// The value of the first sample line starting with `prefix` (name and labels).
pub fn sample(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

/// Calls the admin JSON API; returns the status and the parsed answer.
pub async fn api(
    running: &Running,
    method: http::Method,
    path: &str,
    body: &str,
) -> (StatusCode, serde_json::Value) {
    let request = Request::builder()
        .method(method)
        .uri(format!("http://{}{path}", running.admin_address()))
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(20), client().request(request))
        .await
        .expect("admin answers within 20 s")
        .expect("admin request succeeds");
    let answer = Answer::from(response).await;
    let value = serde_json::from_str(&answer.body)
        .unwrap_or_else(|error| panic!("admin answered non-JSON ({error}): {}", answer.body));
    (answer.status, value)
}

/// The weight of `group` of `service` in an `/api/v1/services/{service}` answer.
pub fn weight_of(service: &serde_json::Value, group: &str) -> u64 {
    service["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["name"] == group)
        .and_then(|g| g["weight"].as_u64())
        .unwrap_or_else(|| panic!("no group {group} in {service}"))
}

/// YAML for one listener `edge` in front of service `web` with a stable and
/// a canary group; `service_extra` is spliced into the service (4 spaces),
/// `top_extra` at the top level.
pub fn canary_yaml(
    stable: &[SocketAddr],
    canary: &[SocketAddr],
    weights: (u32, u32),
    service_extra: &str,
    top_extra: &str,
) -> String {
    let list = |addresses: &[SocketAddr]| {
        addresses
            .iter()
            .map(|a| format!("\"{a}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        r#"
{EDGE_TO_WEB}services:
  - name: web
    groups:
      - {{ name: stable, weight: {}, endpoints: [{}] }}
      - {{ name: canary, weight: {}, endpoints: [{}] }}
{service_extra}
{top_extra}
"#,
        weights.0,
        list(stable),
        weights.1,
        list(canary)
    )
}

/// A backend written by hand that answers every request with `response`, so
/// tests can send what hyper's server never would (hop-by-hop headers,
/// malformed or truncated responses).
pub async fn raw_backend(response: &'static [u8]) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let _ = stream.write_all(response).await;
            });
        }
    });
    address
}

/// A stable and a canary backend behind a proxy from [`canary_yaml`].
#[derive(Debug)]
pub struct Canary {
    pub stable: Backend,
    pub canary: Backend,
    pub proxy: Running,
}

/// Starts backends named `stable` and `canary` and a proxy splitting `weights`
/// between them; the extras are as in [`canary_yaml`].
pub async fn canary_setup(weights: (u32, u32), service_extra: &str, top_extra: &str) -> Canary {
    let stable = Backend::spawn(BackendOptions::new("stable")).await.unwrap();
    let canary = Backend::spawn(BackendOptions::new("canary")).await.unwrap();
    let yaml = canary_yaml(
        &[stable.address],
        &[canary.address],
        weights,
        service_extra,
        top_extra,
    );
    let proxy = start_proxy(&yaml).await;
    Canary {
        stable,
        canary,
        proxy,
    }
}

/// [`canary_setup`] with `admin.token_file` holding `token`; also returns
/// the token file's path.
pub async fn canary_setup_with_token(
    weights: (u32, u32),
    token: &str,
) -> (Canary, std::path::PathBuf) {
    let directory = scratch(&format!("token-{token}"));
    let token_file = directory.join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let stable = Backend::spawn(BackendOptions::new("stable")).await.unwrap();
    let canary = Backend::spawn(BackendOptions::new("canary")).await.unwrap();
    let yaml = canary_yaml(&[stable.address], &[canary.address], weights, "", "").replace(
        "admin: { listen: \"127.0.0.1:0\" }",
        &format!(
            "admin: {{ listen: \"127.0.0.1:0\", token_file: {} }}",
            token_file.display()
        ),
    );
    assert!(yaml.contains("token_file"));
    let proxy = start_proxy(&yaml).await;
    let setup = Canary {
        stable,
        canary,
        proxy,
    };
    (setup, token_file)
}

/// A fresh, empty directory for one test's files:
/// `$TMPDIR/luas-tests/<this process>/<name>`. The first call also removes
/// what earlier runs of the suite left there (directories of processes that
/// are gone), so scratch files neither pile up in `$TMPDIR` nor leak into a
/// later run that gets the same process id.
pub fn scratch(name: &str) -> std::path::PathBuf {
    static SWEPT: std::sync::Once = std::sync::Once::new();
    let root = std::env::temp_dir().join("luas-tests");
    SWEPT.call_once(|| {
        let Ok(entries) = std::fs::read_dir(&root) else {
            return;
        };
        for entry in entries.flatten() {
            let gone = entry
                .file_name()
                .to_str()
                .and_then(|pid| pid.parse::<u32>().ok())
                .is_some_and(|pid| {
                    pid != std::process::id()
                        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
                });
            if gone {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    });
    let directory = root.join(std::process::id().to_string()).join(name);
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).unwrap();
    directory
}
