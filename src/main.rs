//! The `luas` binary: parse the command line, set up logging and the
//! runtime, run. Config errors exit with 64 (EX_USAGE), other start-up
//! failures with 1.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use luas::cli::{Cli, Command, LogFormat};
use luas::config::{self, Config};

const EXIT_CONFIG: u8 = 64;

// glibc malloc showed up in the request path's profile (several small
// allocations per request across hyper, http and luas); mimalloc's
// thread-local free lists serve those faster. Measured in the commit.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format());
    match cli.command {
        Command::Validate { file } => match config::load_file(&file) {
            Ok(config) => {
                println!(
                    "{}: valid ({} listener(s), {} service(s))",
                    file.display(),
                    config.listeners.len(),
                    config.services.len()
                );
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("{}: {error}", file.display());
                ExitCode::from(EXIT_CONFIG)
            }
        },
        Command::Run {
            config: path,
            worker_threads,
            watch_interval,
            log_format: _,
        } => {
            let config = match config::load_file(&path) {
                Ok(config) => config,
                Err(error) => {
                    eprintln!("{}: {error}", path.display());
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            let watch = (!watch_interval.is_zero()).then_some(watch_interval);
            exit_with(block_on(worker_threads, run(config, path, watch)))
        }
        Command::Ctl(args) => {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    eprintln!("luas ctl: cannot start the async runtime: {error}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(luas::ctl::run(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("luas ctl: {}", error.message);
                    ExitCode::from(error.code)
                }
            }
        }
        Command::Demo {
            listen,
            admin,
            traffic,
            worker_threads,
            log_format: _,
        } => {
            let options = luas::demo::DemoOptions {
                listen,
                admin,
                traffic,
            };
            exit_with(block_on(worker_threads, async move {
                luas::demo::run(options).await.context("demo failed")
            }))
        }
    }
}

async fn run(
    config: Config,
    path: std::path::PathBuf,
    watch_interval: Option<std::time::Duration>,
) -> anyhow::Result<()> {
    let running = luas::app::App::build(config)?
        .config_file(path, watch_interval)
        .serve()
        .await?;
    if let Some(reloader) = running.reloader() {
        reloader
            .clone()
            .spawn_sighup()
            .context("cannot listen for SIGHUP")?;
    }
    let signal = luas::shutdown::signal_received().await;
    tracing::info!(
        signal,
        "shutting down: no new connections, draining in-flight requests"
    );
    if running.shutdown().await {
        tracing::info!("drained, exiting");
    } else {
        tracing::warn!("grace period over with requests still in flight, exiting");
    }
    Ok(())
}

fn block_on(
    worker_threads: Option<usize>,
    future: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    // One worker means one thread: the current-thread scheduler does the same
    // work without the multi-thread scheduler's cross-thread bookkeeping.
    let mut builder = match worker_threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(threads) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(threads.max(1));
            builder
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    builder.enable_all();
    builder
        .build()
        .context("cannot start the async runtime")?
        .block_on(future)
}

fn exit_with(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("luas: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        // Flattened, so `message` and the event's fields sit beside `level`
        // where collectors (Loki, Cloud Logging, Elastic) look for them.
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
