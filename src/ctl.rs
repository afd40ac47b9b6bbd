//! `luas ctl`: a client of the admin API for people and scripts.
//!
//! ```text
//! luas ctl status [SERVICE]            groups, weights, endpoint latency and counts
//! luas ctl weights SERVICE stable=90 canary=10
//! luas ctl rollback SERVICE            every group but stable to 0
//! luas ctl promote SERVICE [--group G] G (default: the canary) gets all traffic
//! luas ctl reset SERVICE               drop runtime weights, use the file's
//! luas ctl reload                      re-read the config file
//! ```
//! `--admin URL` (or `LUAS_ADMIN`) says where the admin API is, default
//! `http://127.0.0.1:9901`; `--json` prints the API's JSON instead of a table.
//!
//! Exit codes: 0 done; 1 luas refused (unknown service or group, bad weights,
//! broken config on reload); 2 bad usage; 3 the admin API could not be
//! reached. This module only talks HTTP; the API itself is `admin::api`.

use std::fmt::Write as _;
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, Subcommand};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

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
    pub token_file: Option<std::path::PathBuf>,
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
            group
                .as_ref()
                .map(|group| serde_json::json!({ "group": group }).to_string()),
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
    let (status, answer) = call(&base, method, &path, body, token.as_deref()).await?;
    if !status.is_success() {
        let reason = answer
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("no reason given")
            .to_owned();
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
            for service in answer["services"].as_array().into_iter().flatten() {
                print!("{}", render_service(service));
            }
        }
        CtlCommand::Reload => println!("reloaded {}", answer["reloaded"].as_str().unwrap_or("")),
        _ => print!("{}", render_service(&answer)),
    }
    Ok(())
}

fn normalize(admin: &str) -> String {
    let admin = admin.trim_end_matches('/');
    if admin.starts_with("http://") || admin.starts_with("https://") {
        admin.to_owned()
    } else {
        format!("http://{admin}")
    }
}

fn weights_body(pairs: &[String]) -> Result<String, CtlError> {
    let mut weights = serde_json::Map::new();
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
        weights.insert(group.to_owned(), weight.into());
    }
    Ok(Value::Object(weights).to_string())
}

async fn call(
    base: &str,
    method: Method,
    path: &str,
    body: Option<String>,
    token: Option<&str>,
) -> Result<(StatusCode, Value), CtlError> {
    let unreachable = |message: String| CtlError {
        code: EXIT_UNREACHABLE,
        message,
    };
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut request = Request::builder()
        .method(method)
        .uri(format!("{base}{path}"))
        .header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = request
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|error| CtlError {
            code: EXIT_USAGE,
            message: format!("bad admin address {base}: {error}"),
        })?;
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .map_err(|_| {
            unreachable(format!(
                "the admin API at {base} did not answer within 10 s"
            ))
        })?
        .map_err(|error| unreachable(format!("cannot reach the admin API at {base}: {error}")))?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|error| unreachable(format!("the admin API's answer broke off: {error}")))?
        .to_bytes();
    let value = serde_json::from_slice(&bytes).unwrap_or_else(
        |_| serde_json::json!({ "error": String::from_utf8_lossy(&bytes).trim().to_owned() }),
    );
    Ok((status, value))
}

/// A service as a small table.
pub fn render_service(service: &Value) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "service {} (balancer {})",
        service["name"].as_str().unwrap_or("?"),
        service["balancer"].as_str().unwrap_or("?")
    );
    for group in service["groups"].as_array().into_iter().flatten() {
        let _ = writeln!(
            text,
            "  group {:<10} weight {:>4}  share {:>5.1} %{}",
            group["name"].as_str().unwrap_or("?"),
            group["weight"].as_u64().unwrap_or(0),
            group["share"].as_f64().unwrap_or(0.0) * 100.0,
            match group["file_weight"].as_u64() {
                Some(file) if Some(file) != group["weight"].as_u64() => format!("  (file: {file})"),
                _ => String::new(),
            }
        );
        for endpoint in group["endpoints"].as_array().into_iter().flatten() {
            let ms = |key: &str| {
                endpoint[key]
                    .as_f64()
                    .map_or_else(|| "-".to_owned(), |value| format!("{value:.1}"))
            };
            let _ = writeln!(
                text,
                "    {:<22} ewma {:>7} ms  in-flight {:>3}  requests {:>8}  errors {:>6}  p50 {:>7} ms  p99 {:>7} ms",
                endpoint["address"].as_str().unwrap_or("?"),
                ms("ewma_ms"),
                endpoint["in_flight"].as_u64().unwrap_or(0),
                endpoint["requests"].as_u64().unwrap_or(0),
                endpoint["errors"].as_u64().unwrap_or(0),
                ms("p50_ms"),
                ms("p99_ms"),
            );
        }
    }
    if let Some(replaced) = service["replaced_by_rollback"].as_object() {
        let _ = writeln!(
            text,
            "  rolled back; weights before: {}",
            Value::Object(replaced.clone())
        );
    }
    if let Some(rollout) = service["rollout"].as_object() {
        let _ = writeln!(
            text,
            "  rollout of {}: {} at step {}/{} ({} %){}",
            rollout["group"].as_str().unwrap_or("?"),
            rollout["status"].as_str().unwrap_or("?"),
            rollout["step"].as_u64().unwrap_or(0),
            rollout["steps"].as_array().map_or(0, Vec::len),
            rollout["weight"].as_u64().unwrap_or(0),
            match rollout["reason"].as_str() {
                Some(reason) if !reason.is_empty() => format!(": {reason}"),
                _ => String::new(),
            }
        );
    }
    text
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
    }
}
