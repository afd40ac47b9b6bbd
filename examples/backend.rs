//! A fast, trivial HTTP backend for benchmarks: it answers every request with
//! `200 ok\n`, optionally after a fixed delay, so that a load test measures the
//! proxy in front of it rather than the backend.
//!
//! ```text
//! cargo run --release --example backend -- --ports 9001,9002,9003 --delay-ms 0
//! cargo run --release --example backend -- --ports 9001,9002,9003 --delays 0,0,50 --threads 1
//! ```
//!
//! - `--ports P1,P2,…` (required): serve on `127.0.0.1:P` for each port.
//! - `--delay-ms N` (default 0): wait N ms before answering, on every port.
//! - `--delays D1,D2,…`: per-port delay in ms, one per port; overrides `--delay-ms`.
//! - `--threads N` (default 1): runtime threads; 1 is a current-thread runtime,
//!   more is a multi-thread runtime with N workers.
//!
//! Each port speaks HTTP/1.1 with keep-alive and HTTP/2 with prior knowledge
//! (h2c), detected per connection. The body is the same three bytes on every
//! path and method; the request body is ignored. It runs until SIGINT or
//! SIGTERM. `bench/quick.sh` starts it pinned to one CPU. For a backend with
//! more behaviours (echo, status codes, upgrades) see `luas::demo::backend`.

#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

const USAGE: &str = "\
usage: backend --ports P1[,P2,...] [--delay-ms N] [--delays D1[,D2,...]] [--threads N]

  --ports     loopback ports to serve on (127.0.0.1), comma-separated
  --delay-ms  delay before every answer, in milliseconds (default 0)
  --delays    per-port delays in milliseconds, one per port; overrides --delay-ms
  --threads   runtime threads (default 1: a current-thread runtime)";

const BODY: &[u8] = b"ok\n";

/// The parsed command line.
#[derive(Debug, PartialEq)]
struct Options {
    /// (port, delay) pairs.
    listeners: Vec<(u16, Duration)>,
    threads: usize,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "-h" || arg == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let options = match parse_args(&args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("backend: {message}\n\n{USAGE}");
            return ExitCode::from(64);
        }
    };

    let runtime = if options.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("backend: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("backend: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Binds every port first (so a taken port fails before anything serves),
/// then serves until SIGINT or SIGTERM.
async fn run(options: Options) -> Result<(), String> {
    let mut bound = Vec::with_capacity(options.listeners.len());
    for (port, delay) in options.listeners {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let listener = TcpListener::bind(address)
            .await
            .map_err(|error| format!("cannot listen on {address}: {error}"))?;
        bound.push((listener, delay));
    }
    for (listener, delay) in bound {
        if let Ok(address) = listener.local_addr() {
            println!("backend listening on {address} (delay {delay:?})");
        }
        tokio::spawn(accept_loop(listener, delay));
    }
    shutdown_signal().await;
    Ok(())
}

async fn accept_loop(listener: TcpListener, delay: Duration) {
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors and the like: back off, keep going.
                eprintln!("backend: accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let builder = builder.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(request, delay));
            // Client resets and the like end the connection; nothing to report.
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(
    _request: Request<Incoming>,
    delay: Duration,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut response = Response::new(Full::new(Bytes::from_static(BODY)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(response)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Parses `--flag value` and `--flag=value` forms.
fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut ports: Option<Vec<u16>> = None;
    let mut delay_ms: u64 = 0;
    let mut delays: Option<Vec<u64>> = None;
    let mut threads: usize = 1;

    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next().cloned())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag {
            "--ports" => ports = Some(parse_list(flag, &value()?)?),
            "--delay-ms" => delay_ms = parse_number(flag, &value()?)?,
            "--delays" => delays = Some(parse_list(flag, &value()?)?),
            "--threads" => {
                threads = parse_number(flag, &value()?)?;
                if threads == 0 {
                    return Err("--threads must be at least 1".into());
                }
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }

    let ports = ports.ok_or("--ports is required")?;
    let delays = match delays {
        Some(delays) if delays.len() != ports.len() => {
            return Err(format!(
                "--delays has {} value(s) but --ports has {}; give one delay per port",
                delays.len(),
                ports.len()
            ))
        }
        Some(delays) => delays,
        None => vec![delay_ms; ports.len()],
    };
    Ok(Options {
        listeners: ports
            .into_iter()
            .zip(delays.into_iter().map(Duration::from_millis))
            .collect(),
        threads,
    })
}

fn parse_list<T: std::str::FromStr>(flag: &str, text: &str) -> Result<Vec<T>, String> {
    let items: Vec<T> = text
        .split(',')
        .map(|item| parse_number(flag, item.trim()))
        .collect::<Result<_, _>>()?;
    if items.is_empty() {
        return Err(format!("{flag} needs at least one value"));
    }
    Ok(items)
}

fn parse_number<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{flag}: {text:?} is not a valid number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Options, String> {
        let args: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        parse_args(&args)
    }

    #[test]
    fn one_delay_for_every_port() {
        let options = parse("--ports 9001,9002 --delay-ms 5").unwrap();
        assert_eq!(
            options.listeners,
            [
                (9001, Duration::from_millis(5)),
                (9002, Duration::from_millis(5))
            ]
        );
        assert_eq!(options.threads, 1);
    }

    #[test]
    fn per_port_delays_override() {
        let options =
            parse("--delay-ms 7 --ports=9001,9002,9003 --delays 0,0,50 --threads 2").unwrap();
        assert_eq!(
            options.listeners,
            [
                (9001, Duration::ZERO),
                (9002, Duration::ZERO),
                (9003, Duration::from_millis(50))
            ]
        );
        assert_eq!(options.threads, 2);
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert!(parse("").is_err());
        assert!(parse("--ports").is_err());
        assert!(parse("--ports 9001,x").is_err());
        assert!(parse("--ports 9001 --delays 1,2").is_err());
        assert!(parse("--ports 9001 --threads 0").is_err());
        assert!(parse("--ports 9001 --verbose").is_err());
    }
}
