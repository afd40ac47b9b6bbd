//! Loading each TLS service's client certificate and CA files into a
//! connector, for the writer: at start and on every reload, reusing a
//! connector (and its connections) whose settings and file contents are
//! unchanged. Runtime changes reuse the set already loaded.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::Config;
use crate::tls::UpstreamTlsConnector;

/// Services' TLS files that do not load, each named by its key path.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsLoadError(String);

/// Each TLS service's connector, by service name: loaded from files when
/// the file config is (at start and on reload), reused by runtime changes.
pub(crate) type UpstreamTlsSet = HashMap<String, Arc<UpstreamTlsConnector>>;

/// Loads each TLS service's files; a connector whose settings and file
/// contents are unchanged in `previous` is kept, with its connections.
pub(super) fn load_upstream_tls(
    config: &Config,
    previous: Option<&UpstreamTlsSet>,
) -> Result<UpstreamTlsSet, TlsLoadError> {
    let mut loaded = HashMap::new();
    let mut problems = Vec::new();
    for (index, service) in config.services.iter().enumerate() {
        let Some(settings) = &service.tls else {
            continue;
        };
        let unchanged = previous
            .and_then(|previous| previous.get(&service.name))
            .filter(|connector| connector.loaded_from(settings));
        if let Some(connector) = unchanged {
            loaded.insert(service.name.clone(), connector.clone());
            continue;
        }
        match UpstreamTlsConnector::load(settings, service.protocol, &service.name) {
            Ok(connector) => {
                loaded.insert(service.name.clone(), Arc::new(connector));
            }
            Err(error) => problems.push(format!("services[{index}].tls: {error}")),
        }
    }
    if problems.is_empty() {
        Ok(loaded)
    } else {
        Err(TlsLoadError(problems.join("; ")))
    }
}
