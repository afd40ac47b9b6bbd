//! The command line: `luas run`, `luas validate`, `luas demo`, `luas ctl`.
//!
//! Parsing only; `main` acts on the parsed command.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

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
        /// How the process log (on stderr) is written.
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
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
        /// How the process log (on stderr) is written.
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
    },
}

/// The format of the process log (not the access log, which is always
/// JSON lines on stdout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event, as `tracing` prints by default.
    #[default]
    Text,
    /// One JSON object per line, with `timestamp`, `level`, `message`,
    /// `target` and the event's fields at the top level, for log collectors.
    Json,
}

impl Cli {
    /// The process log format the command asks for; commands that do not
    /// serve (`ctl`, `validate`) log as text.
    pub fn log_format(&self) -> LogFormat {
        match &self.command {
            Command::Run { log_format, .. } | Command::Demo { log_format, .. } => *log_format,
            Command::Ctl(_) | Command::Validate { .. } => LogFormat::Text,
        }
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::config::parse_duration(text)
}
