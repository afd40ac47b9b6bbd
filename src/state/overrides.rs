//! Runtime changes layered over the config file, and the state file that
//! keeps them across restarts.
//!
//! Weights set through the admin API or `luas ctl` (and by the rollout
//! driver) are kept here per service, not written into the file config, so a
//! reload of the file does not silently undo a rollback: the overrides are
//! applied again on top of every new file config until `reset` drops them.
//!
//! The state file is JSON, written atomically (temporary file in the same
//! directory, fsync, rename, fsync of the directory), so a crash leaves either
//! the old or the new file, never half of one. A missing file is a normal
//! first start; a corrupt one is logged and ignored, never a crash.
//!
//! The policy of a hand-made change lives here too: [`ServiceOverride::roll_back`]
//! (the one rollback, for the API and the rollout driver) and
//! [`ServiceOverride::set_weights`] (set or promote), over a [`ServiceView`]
//! of the service's effective config. The writer applies them.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::UpdateError;
use crate::config::{Config, ServiceConfig};

const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overrides {
    #[serde(default = "format_version")]
    pub version: u32,
    #[serde(default)]
    pub services: BTreeMap<String, ServiceOverride>,
    /// In fleet mode, the fleet state these overrides are a copy of: the
    /// state file is then this replica's cache of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetStamp>,
}

/// Which version of which fleet's shared state a cache holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetStamp {
    pub name: String,
    pub version: u64,
    /// Services rolled back here while the API was unreachable, not yet in
    /// the fleet state: written to it after a restart too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unwritten_rollbacks: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceOverride {
    /// Group name → weight, replacing the file's weights for the groups named.
    #[serde(default)]
    pub weights: BTreeMap<String, u32>,
    /// The weights the last rollback replaced, so an operator can see (and
    /// restore) what was running before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_by_rollback: Option<BTreeMap<String, u32>>,
    /// Groups a rollback took out: the override header cannot reach them
    /// until the weights are set again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rolled_back_groups: Vec<String>,
    /// Progress of an automated rollout, so a restart resumes it (or does not
    /// restart one that was rolled back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutRecord {
    /// Index into the rollout's steps.
    pub step: usize,
    pub status: RolloutStatus,
    /// Why the last decision was taken, for people.
    #[serde(default)]
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutStatus {
    Progressing,
    RolledBack,
    Completed,
    /// Someone changed the weights by hand; the rollout stands aside.
    Stopped,
}

impl Default for Overrides {
    fn default() -> Self {
        Self {
            version: FORMAT_VERSION,
            services: BTreeMap::new(),
            fleet: None,
        }
    }
}

fn format_version() -> u32 {
    FORMAT_VERSION
}

/// Why a state file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    #[error("cannot read state file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("state file {path} is not valid ({source}); starting from the config file alone")]
    Corrupt {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "state file {path} has format version {found}, this luas reads version {FORMAT_VERSION}"
    )]
    Version { path: String, found: u32 },
    #[error("cannot write state file {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Overrides {
    /// Loads overrides; `Ok(None)` when the file does not exist yet.
    pub fn load(path: &Path) -> Result<Option<Self>, StateFileError> {
        let text = match std::fs::read(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StateFileError::Read {
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        let overrides: Self =
            serde_json::from_slice(&text).map_err(|source| StateFileError::Corrupt {
                path: path.display().to_string(),
                source,
            })?;
        if overrides.version != FORMAT_VERSION {
            return Err(StateFileError::Version {
                path: path.display().to_string(),
                found: overrides.version,
            });
        }
        Ok(Some(overrides))
    }

    /// Writes atomically: temp file, fsync, rename, fsync the directory.
    pub fn save(&self, path: &Path) -> Result<(), StateFileError> {
        let error = |source| StateFileError::Write {
            path: path.display().to_string(),
            source,
        };
        let directory = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let file_name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "state".into());
        let temporary = directory.join(format!(".{file_name}.tmp-{}", std::process::id()));
        let text = serde_json::to_vec_pretty(self).expect("overrides serialize to JSON");
        let mut file = std::fs::File::create(&temporary).map_err(error)?;
        file.write_all(&text).map_err(error)?;
        file.write_all(b"\n").map_err(error)?;
        file.sync_all().map_err(error)?;
        drop(file);
        std::fs::rename(&temporary, path).map_err(error)?;
        if let Ok(directory) = std::fs::File::open(directory) {
            let _ = directory.sync_all();
        }
        Ok(())
    }

    /// The file config with these overrides applied. Overrides naming a
    /// service or group the config no longer has are skipped and reported.
    pub fn apply(&self, config: &Config) -> (Config, Vec<String>) {
        let mut effective = config.clone();
        let mut notes = Vec::new();
        for (service_name, service_override) in &self.services {
            let Some(service) = effective
                .services
                .iter_mut()
                .find(|service| &service.name == service_name)
            else {
                notes.push(format!(
                    "runtime weights for service {service_name} ignored: no such service in the config"
                ));
                continue;
            };
            let mut weights: Vec<u32> = service.groups.iter().map(|group| group.weight).collect();
            // Weights written for another set of groups describe another
            // rollout; applying half of them could send everything to the
            // wrong version, so the whole entry is skipped.
            let unknown: Vec<&str> = service_override
                .weights
                .keys()
                .filter(|name| !service.groups.iter().any(|group| &group.name == *name))
                .map(String::as_str)
                .collect();
            if !unknown.is_empty() {
                notes.push(format!(
                    "runtime weights for service {service_name} ignored: the config has no group {}",
                    unknown.join(", ")
                ));
                continue;
            }
            for (group_name, weight) in &service_override.weights {
                if let Some(index) = service
                    .groups
                    .iter()
                    .position(|group| &group.name == group_name)
                {
                    weights[index] = *weight;
                }
            }
            if service_override.weights.is_empty() {
                continue;
            }
            if weights.iter().all(|&weight| weight == 0) {
                notes.push(format!(
                    "runtime weights for service {service_name} ignored: they would leave no group with traffic"
                ));
                continue;
            }
            for (group, weight) in service.groups.iter_mut().zip(weights) {
                group.weight = weight;
            }
        }
        (effective, notes)
    }

    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }
}

impl ServiceOverride {
    /// Weights chosen by hand (set or promote): the note of a past rollback
    /// and the override header's closed door no longer apply.
    pub fn set_weights(&mut self, weights: BTreeMap<String, u32>) {
        self.weights = weights;
        self.rolled_back_groups.clear();
        self.replaced_by_rollback = None;
    }

    /// Every group but the stable one to 0, remembering the weights replaced
    /// and closing the override header to the groups taken out. Returns the
    /// replaced weights. The one rollback, for the API and the rollout driver.
    pub fn roll_back(&mut self, view: &ServiceView<'_>) -> BTreeMap<String, u32> {
        let before = view.weights();
        self.weights = view.rollback_weights();
        self.rolled_back_groups = view.non_stable_groups();
        self.replaced_by_rollback = Some(before.clone());
        before
    }
}

/// A service's effective config as a runtime change sees it.
#[derive(Debug)]
pub struct ServiceView<'a> {
    pub config: &'a ServiceConfig,
}

impl ServiceView<'_> {
    pub fn group_index(&self, group: &str) -> Result<usize, UpdateError> {
        self.config
            .groups
            .iter()
            .position(|g| g.name == group)
            .ok_or_else(|| UpdateError::UnknownGroup {
                service: self.config.name.clone(),
                group: group.to_owned(),
                known: self
                    .config
                    .groups
                    .iter()
                    .map(|g| g.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Current effective weights by group name.
    pub fn weights(&self) -> BTreeMap<String, u32> {
        self.config
            .groups
            .iter()
            .map(|g| (g.name.clone(), g.weight))
            .collect()
    }

    pub fn stable_group(&self) -> &str {
        &self.config.groups[self.config.stable_group()].name
    }

    /// Every group but the stable one: what a rollback takes out.
    pub fn non_stable_groups(&self) -> Vec<String> {
        let stable = self.stable_group();
        self.config
            .groups
            .iter()
            .filter(|group| group.name != stable)
            .map(|group| group.name.clone())
            .collect()
    }

    /// The weights of a rollback: every group but the stable one at 0; the
    /// stable group keeps its weight, or gets 100 if it had none.
    pub fn rollback_weights(&self) -> BTreeMap<String, u32> {
        let stable = self.stable_group();
        self.config
            .groups
            .iter()
            .map(|group| {
                let weight = match (group.name == stable, group.weight) {
                    (false, _) => 0,
                    (true, 0) => 100,
                    (true, weight) => weight,
                };
                (group.name.clone(), weight)
            })
            .collect()
    }
}
