//! `luas ctl`: a client of the admin API for people and scripts.
//!
//! ```text
//! luas ctl status [SERVICE]            groups, weights, endpoint latency and counts
//! luas ctl weights SERVICE stable=90 canary=10
//! luas ctl rollback SERVICE            every group but stable to 0
//! luas ctl promote SERVICE [--group G] G (default: the canary) gets all traffic
//! luas ctl reset SERVICE               drop runtime weights, use the file's
//! luas ctl reload                      re-read the config file
//! luas ctl fleet                       fleet mode: replicas, versions applied, leader
//! ```
//! In fleet mode a change answers once every replica has applied it, or
//! after `--wait` (default 2s), with a line like
//! `rolled back web on 5/5 replicas in 41 ms`.
//! `--admin URL` (or `LUAS_ADMIN`) says where the admin API is, default
//! `http://127.0.0.1:9901`; `--json` prints the API's JSON instead of a table.
//! An `https://` address (the admin API behind a TLS listener or another
//! TLS proxy) is verified against `--cacert FILE`, else the system's roots;
//! there is no way to skip verification, since the token travels with changes.
//!
//! Exit codes: 0 done; 1 luas refused (unknown service or group, bad weights,
//! broken config on reload); 2 bad usage; 3 the admin API could not be
//! reached (or its certificate was not trusted). This module only talks
//! HTTP; the API itself is `admin::api`, its JSON `admin::wire`.

use std::fmt::Write as _;
use std::time::Duration;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use clap::{Args, Subcommand};
use http::{header, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::admin::wire::{
    EndpointStatus, ErrorBody, FleetStatus, PromoteRequest, Reloaded, ServiceList, ServiceStatus,
    Weights,
};

pub const EXIT_REFUSED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_UNREACHABLE: u8 = 3;

#[derive(Debug, Args)]
pub struct CtlArgs {
    /// The admin API's address.
    #[arg(
        long,
        env = "LUAS_ADMIN",
        default_value = "http://127.0.0.1:9901",
        global = true
    )]
    pub admin: String,
    /// Print the API's JSON answer instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// File holding the admin token (`admin.token_file` of the proxy), sent
    /// as `Authorization: Bearer` with changes.
    #[arg(long, env = "LUAS_ADMIN_TOKEN_FILE", global = true)]
    pub token_file: Option<PathBuf>,
    /// PEM file of the CA certificates that may sign an `https://` admin
    /// address's certificate (default: the system's roots).
    #[arg(long, env = "LUAS_ADMIN_CACERT", value_name = "FILE", global = true)]
    pub cacert: Option<PathBuf>,
    /// Fleet mode: how long a change waits for every replica to apply it
    /// (e.g. 2s, 500ms).
    #[arg(long, value_name = "DURATION", global = true)]
    pub wait: Option<String>,
    #[command(subcommand)]
    pub command: CtlCommand,
}

#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// Show services: groups, weights, endpoints, rollout.
    Status { service: Option<String> },
    /// Set group weights: `luas ctl weights web stable=90 canary=10`.
    Weights {
        service: String,
        #[arg(required = true, value_name = "GROUP=WEIGHT")]
        weights: Vec<String>,
    },
    /// Send all traffic back to the stable group at once.
    Rollback { service: String },
    /// Give one group (default: the canary) all traffic.
    Promote {
        service: String,
        #[arg(long)]
        group: Option<String>,
    },
    /// Drop weights set at run time; the config file's weights apply again.
    Reset { service: String },
    /// Run a service's `rollout:` again from its first step (after a
    /// rollback or a completed rollout), dropping its runtime weights.
    RestartRollout { service: String },
    /// Re-read the config file.
    Reload,
    /// Fleet mode: every replica, the state version it applied, the leader.
    Fleet,
}

/// A failed `ctl` call: the message to print and the exit code.
#[derive(Debug)]
pub struct CtlError {
    pub code: u8,
    pub message: String,
}

/// Runs one ctl command, printing its result to stdout.
pub async fn run(args: CtlArgs) -> Result<(), CtlError> {
    let base = normalize(&args.admin);
    let admin = Admin::new(&base, args.cacert.as_deref())?;
    let (method, path, body) = match &args.command {
        CtlCommand::Status { service: None } => (Method::GET, "/api/v1/services".to_owned(), None),
        CtlCommand::Status {
            service: Some(service),
        } => (Method::GET, format!("/api/v1/services/{service}"), None),
        CtlCommand::Weights { service, weights } => (
            Method::PUT,
            format!("/api/v1/services/{service}/weights"),
            Some(weights_body(weights)?),
        ),
        CtlCommand::Rollback { service } => (
            Method::POST,
            format!("/api/v1/services/{service}/rollback"),
            None,
        ),
        CtlCommand::Promote { service, group } => (
            Method::POST,
            format!("/api/v1/services/{service}/promote"),
            group.as_ref().map(|group| {
                serde_json::to_string(&PromoteRequest {
                    group: Some(group.clone()),
                })
                .expect("the wire types serialize")
            }),
        ),
        CtlCommand::Reset { service } => (
            Method::DELETE,
            format!("/api/v1/services/{service}/weights"),
            None,
        ),
        CtlCommand::RestartRollout { service } => (
            Method::POST,
            format!("/api/v1/services/{service}/rollout/restart"),
            None,
        ),
        CtlCommand::Reload => (Method::POST, "/api/v1/reload".to_owned(), None),
        CtlCommand::Fleet => (Method::GET, "/api/v1/fleet".to_owned(), None),
    };
    let path = match (&args.wait, &method) {
        (Some(wait), method) if method != Method::GET => {
            crate::config::parse_duration(wait).map_err(|error| CtlError {
                code: EXIT_USAGE,
                message: format!("--wait {wait}: {error}"),
            })?;
            format!("{path}?wait={wait}")
        }
        _ => path,
    };
    let token = match &args.token_file {
        None => None,
        Some(path) => Some(
            crate::admin::auth::read_token(path).map_err(|message| CtlError {
                code: EXIT_USAGE,
                message,
            })?,
        ),
    };
    let (status, bytes) = admin.call(method, &path, body, token.as_deref()).await?;
    let answer: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        serde_json::to_value(ErrorBody {
            error: String::from_utf8_lossy(&bytes).trim().to_owned(),
        })
        .expect("the wire types serialize")
    });
    if !status.is_success() {
        let reason = serde_json::from_value::<ErrorBody>(answer.clone())
            .map_or_else(|_| "no reason given".to_owned(), |body| body.error);
        if args.json {
            println!("{answer}");
        }
        return Err(CtlError {
            code: EXIT_REFUSED,
            message: format!("luas refused ({status}): {reason}"),
        });
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&answer).unwrap_or_default()
        );
        return Ok(());
    }
    match &args.command {
        CtlCommand::Status { service: None } => {
            let list: ServiceList = typed(answer)?;
            for service in &list.services {
                print!("{}", render_service(service));
            }
        }
        CtlCommand::Reload => {
            let reloaded: Reloaded = typed(answer)?;
            println!("reloaded {}", reloaded.reloaded);
        }
        CtlCommand::Fleet => print!("{}", render_fleet(&typed(answer)?)),
        _ => {
            let service: ServiceStatus = typed(answer)?;
            print!("{}", render_service(&service));
            if let Some(fleet) = &service.fleet {
                println!("{}", fleet.message);
            }
        }
    }
    Ok(())
}

/// An answer read as the wire type it should be; a mismatch means ctl and
/// the proxy are of different versions.
fn typed<T: DeserializeOwned>(answer: Value) -> Result<T, CtlError> {
    serde_json::from_value(answer).map_err(|error| CtlError {
        code: EXIT_REFUSED,
        message: format!(
            "the admin API's answer is not what this luas ctl expects (is the proxy another \
             version?): {error}; --json prints it as it is"
        ),
    })
}

fn normalize(admin: &str) -> String {
    let admin = admin.trim_end_matches('/');
    // Any scheme is kept, so a wrong one is refused by name rather than
    // read as a host.
    if admin.contains("://") {
        admin.to_owned()
    } else {
        format!("http://{admin}")
    }
}

fn weights_body(pairs: &[String]) -> Result<String, CtlError> {
    let mut weights = Weights::new();
    for pair in pairs {
        let parsed = pair
            .split_once('=')
            .and_then(|(group, weight)| Some((group, weight.parse::<u32>().ok()?)));
        let Some((group, weight)) = parsed else {
            return Err(CtlError {
                code: EXIT_USAGE,
                message: format!("`{pair}` is not GROUP=WEIGHT, e.g. canary=10"),
            });
        };
        weights.insert(group.to_owned(), weight);
    }
    Ok(serde_json::to_string(&weights).expect("the wire types serialize"))
}

/// Where the admin API is and how to reach it: plain TCP, or TLS verified
/// against the roots given.
struct Admin {
    base: String,
    authority: String,
    host: String,
    port: u16,
    tls: Option<tokio_rustls::TlsConnector>,
}

impl Admin {
    fn new(base: &str, cacert: Option<&Path>) -> Result<Self, CtlError> {
        let usage = |message: String| CtlError {
            code: EXIT_USAGE,
            message,
        };
        let uri: Uri = base
            .parse()
            .map_err(|error| usage(format!("bad admin address {base}: {error}")))?;
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(usage(format!("bad admin address {base}: no host")));
        };
        let https = match scheme {
            "http" => false,
            "https" => true,
            other => {
                return Err(usage(format!(
                    "bad admin address {base}: the scheme must be http or https, not {other}"
                )))
            }
        };
        if !matches!(uri.path(), "" | "/") {
            return Err(usage(format!(
                "bad admin address {base}: give scheme, host and port only (no path)"
            )));
        }
        let tls = match (https, cacert) {
            (false, None) => None,
            (false, Some(_)) => {
                return Err(usage(format!(
                    "--cacert is for an https:// admin address; {base} is plain http"
                )))
            }
            (true, cacert) => Some(tls_connector(cacert)?),
        };
        // `[::1]` in a URI is the address `::1` on the wire.
        let host = authority.host();
        let host = host
            .strip_prefix('[')
            .and_then(|host| host.strip_suffix(']'))
            .unwrap_or(host);
        Ok(Self {
            base: base.to_owned(),
            authority: authority.as_str().to_owned(),
            host: host.to_owned(),
            port: authority.port_u16().unwrap_or(if https { 443 } else { 80 }),
            tls,
        })
    }

    /// One request on a fresh connection: its status and body.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
        token: Option<&str>,
    ) -> Result<(StatusCode, Bytes), CtlError> {
        let base = &self.base;
        let unreachable = |message: String| CtlError {
            code: EXIT_UNREACHABLE,
            message,
        };
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.authority)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|error| CtlError {
                code: EXIT_USAGE,
                message: format!("bad admin address {base}: {error}"),
            })?;
        let exchange = async {
            let stream = TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|error| format!("cannot reach the admin API at {base}: {error}"))?;
            let Some(tls) = &self.tls else {
                return send(stream, request).await;
            };
            let name = ServerName::try_from(self.host.clone())
                .map_err(|error| format!("{} is not a name TLS can verify: {error}", self.host))?;
            let stream = tls
                .connect(name, stream)
                .await
                .map_err(|error| format!("TLS with the admin API at {base} failed: {error}"))?;
            send(stream, request).await
        };
        tokio::time::timeout(Duration::from_secs(10), exchange)
            .await
            .map_err(|_| {
                unreachable(format!(
                    "the admin API at {base} did not answer within 10 s"
                ))
            })?
            .map_err(unreachable)
    }
}

/// HTTP/1.1 over a connected stream, plain or TLS.
async fn send<S>(stream: S, request: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes), String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| format!("cannot speak HTTP to the admin API: {error}"))?;
    tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .map_err(|error| format!("the admin API did not answer: {error}"))?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|error| format!("the admin API's answer broke off: {error}"))?
        .to_bytes();
    Ok((status, bytes))
}

/// TLS that verifies the admin's certificate against `cacert`, else the
/// system's roots (as luas does for upstreams without `tls.ca`).
fn tls_connector(cacert: Option<&Path>) -> Result<tokio_rustls::TlsConnector, CtlError> {
    let usage = |message: String| CtlError {
        code: EXIT_USAGE,
        message,
    };
    let roots = match cacert {
        Some(path) => crate::tls::root_store(path).map_err(|error| usage(error.to_string()))?,
        None => crate::tls::system_roots().map_err(|error| {
            usage(format!(
                "cannot verify https: no CA certificates in the system store ({error}); \
                 pass --cacert FILE"
            ))
        })?,
    };
    let mut config = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_protocol_versions(crate::tls::PROTOCOL_VERSIONS)
        .map_err(|error| usage(format!("cannot set up TLS: {error}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// A service as a small table.
pub fn render_service(service: &ServiceStatus) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "service {} (balancer {})",
        service.name, service.balancer
    );
    // One width for every endpoint of the service, so named and bare
    // addresses line up.
    let width = service
        .groups
        .iter()
        .flat_map(|group| &group.endpoints)
        .map(|endpoint| endpoint_label(endpoint).len())
        .max()
        .unwrap_or(0)
        .max(22);
    for group in &service.groups {
        let _ = writeln!(
            text,
            "  group {:<10} weight {:>4}  share {:>5.1} %{}",
            group.name,
            group.weight,
            group.share * 100.0,
            match group.file_weight {
                Some(file) if file != group.weight => format!("  (file: {file})"),
                _ => String::new(),
            }
        );
        for endpoint in &group.endpoints {
            let ms =
                |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
            let _ = writeln!(
                text,
                "    {:<width$} ewma {:>7} ms  in-flight {:>3}  requests {:>8}  errors {:>6}  p50 {:>7} ms  p99 {:>7} ms",
                endpoint_label(endpoint),
                ms(Some(endpoint.ewma_ms)),
                endpoint.in_flight,
                endpoint.requests,
                endpoint.errors,
                ms(endpoint.p50_ms),
                ms(endpoint.p99_ms),
            );
        }
    }
    if let Some(replaced) = &service.replaced_by_rollback {
        let _ = writeln!(
            text,
            "  rolled back; weights before: {}",
            serde_json::to_string(replaced).unwrap_or_default()
        );
    }
    if let Some(rollout) = &service.rollout {
        let _ = writeln!(
            text,
            "  rollout of {}: {} at step {}/{} ({} %){}",
            rollout.group,
            rollout.status,
            rollout.step,
            rollout.steps.len(),
            rollout.weight,
            if rollout.reason.is_empty() {
                String::new()
            } else {
                format!(": {}", rollout.reason)
            }
        );
    }
    text
}

/// `stable-1 127.0.0.1:40123` where the endpoint has a name, else the address.
/// `luas ctl fleet`: one line per replica.
pub fn render_fleet(fleet: &FleetStatus) -> String {
    let mut out = String::new();
    let leader = fleet.leader.as_deref().unwrap_or("none");
    let _ = writeln!(
        out,
        "fleet {} (namespace {}): version {} applied here ({}), rollout leader {leader}",
        fleet.fleet, fleet.namespace, fleet.version, fleet.replica
    );
    for replica in &fleet.replicas {
        let _ = writeln!(
            out,
            "  {:<24} version {:<6} lag {:<4} {:<22} renewed {:.0} s ago{}",
            replica.name,
            replica.applied_version,
            replica.lag,
            replica.admin_address,
            replica.seconds_since_renewal,
            if replica.live { "" } else { " (expired)" }
        );
    }
    out
}

fn endpoint_label(endpoint: &EndpointStatus) -> String {
    match &endpoint.name {
        Some(name) => format!("{name} {}", endpoint.address),
        None => endpoint.address.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_parse_into_json() {
        let body = weights_body(&["stable=90".into(), "canary=10".into()]).unwrap();
        let value: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value, serde_json::json!({"stable": 90, "canary": 10}));
        let error = weights_body(&["canary:10".into()]).unwrap_err();
        assert_eq!(error.code, EXIT_USAGE);
        assert!(weights_body(&["canary=-1".into()]).is_err());
    }

    #[test]
    fn admin_addresses_get_a_scheme() {
        assert_eq!(normalize("127.0.0.1:9901"), "http://127.0.0.1:9901");
        assert_eq!(normalize("http://127.0.0.1:9901/"), "http://127.0.0.1:9901");
        assert_eq!(
            normalize("https://luas.example:9901"),
            "https://luas.example:9901"
        );
        assert_eq!(normalize("ftp://127.0.0.1:9901"), "ftp://127.0.0.1:9901");
    }
}
