//! The command line: `luas run`, `luas validate`, `luas demo`.
//!
//! Parsing only; `main` acts on the parsed command.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "luas",
    version,
    about = "An L7 reverse proxy and load balancer"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy with a config file.
    Run {
        /// Path to the YAML config.
        #[arg(long, short)]
        config: PathBuf,
        /// Runtime worker threads (default: one per CPU).
        #[arg(long)]
        worker_threads: Option<usize>,
        /// How often to check the config file for changes (reloaded when its
        /// content changes; SIGHUP reloads at once); 0s turns watching off.
        #[arg(long, default_value = "1s", value_parser = parse_duration)]
        watch_interval: Duration,
    },
    /// Change or inspect a running luas through its admin API.
    Ctl(crate::ctl::CtlArgs),
    /// Check a config file and exit: 0 when valid, 64 with every error otherwise.
    Validate {
        /// Path to the YAML config.
        file: PathBuf,
    },
    /// Run the proxy on an embedded config with in-process demo backends.
    Demo {
        /// Where the demo proxy listens.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Where the admin endpoints (/metrics, /ready) listen.
        #[arg(long, default_value = "127.0.0.1:9901")]
        admin: SocketAddr,
        /// Background requests per second the demo sends itself, so the
        /// balancing shows in its summary; 0 for none.
        #[arg(long, default_value_t = 50)]
        traffic: u32,
        /// Runtime worker threads (default: one per CPU).
        #[arg(long)]
        worker_threads: Option<usize>,
    },
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::config::parse_duration(text)
}
