//! Re-reading the config file: on request (SIGHUP, `POST /api/v1/reload`) and
//! when the file changes.
//!
//! Change detection polls the file's *content* rather than watching inodes:
//! Kubernetes updates a mounted ConfigMap by swapping a `..data` symlink, which
//! inode and mtime watches on the file itself miss, while the content always
//! tells. A file that is briefly unreadable mid-swap is simply tried again on
//! the next poll.
//!
//! A reload that fails (unreadable, bad YAML, invalid, or a change that needs
//! a restart) changes nothing: the old snapshot keeps serving, the error is
//! logged with its key path and `luas_config_reloads_total{result="error"}`
//! goes up. Applying a valid config is `state`'s job.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::config::{self, ConfigError};
use crate::state::{State, UpdateError};

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("config not applied: {0}")]
    Update(#[from] UpdateError),
}

#[derive(Debug)]
pub struct Reloader {
    path: PathBuf,
    state: Arc<State>,
    /// Hash of the content last loaded (or last found broken), so the watcher
    /// reloads once per change, not once per poll.
    last_seen: Mutex<Option<u64>>,
}

impl Reloader {
    pub fn new(path: PathBuf, state: Arc<State>) -> Self {
        let last_seen = std::fs::read(&path)
            .ok()
            .map(|content| content_hash(&content));
        Self {
            path,
            state,
            last_seen: Mutex::new(last_seen),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads, validates and applies the config file. `trigger` names what
    /// asked, for the log.
    pub fn reload(&self, trigger: &str) -> Result<(), ReloadError> {
        if let Ok(content) = std::fs::read(&self.path) {
            *self.last_seen.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(content_hash(&content));
        }
        let result = config::load_file(&self.path)
            .map_err(ReloadError::from)
            .and_then(|config| self.state.reload(config).map_err(ReloadError::from));
        match &result {
            Ok(()) => {
                self.state.metrics().config_reloads("success").inc();
                tracing::info!(trigger, path = %self.path.display(), "config reloaded");
            }
            Err(error) => {
                self.state.metrics().config_reloads("error").inc();
                tracing::error!(
                    trigger,
                    path = %self.path.display(),
                    "config reload failed, the previous config keeps serving: {error}"
                );
            }
        }
        result
    }

    /// True when the file's content differs from what was last loaded.
    fn changed(&self) -> bool {
        let Ok(content) = std::fs::read(&self.path) else {
            return false;
        };
        let hash = content_hash(&content);
        let last_seen = self.last_seen.lock().unwrap_or_else(|p| p.into_inner());
        *last_seen != Some(hash)
    }

    /// Polls the file every `interval` and reloads when its content changes.
    pub fn spawn_watch(self: Arc<Self>, interval: Duration) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                if self.changed() {
                    let _ = self.reload("file change");
                }
            }
        })
    }

    /// Reloads on every SIGHUP.
    #[cfg(unix)]
    pub fn spawn_sighup(self: Arc<Self>) -> std::io::Result<JoinHandle<()>> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangups = signal(SignalKind::hangup())?;
        Ok(tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                let _ = self.reload("SIGHUP");
            }
        }))
    }
}

fn content_hash(content: &[u8]) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    content.hash(&mut hasher);
    hasher.finish()
}
