//! Which file config changes a reload may apply, and which need a restart:
//! anything that needs new sockets or metric families (the admin section,
//! listeners' addresses, protocols, TLS file names and connection limits,
//! metrics settings, the state file). Called by the writer before a reload.

use std::time::Duration;

use crate::config::{Config, ListenerLimits};

/// Why a new file config cannot be applied without a restart, if it cannot.
pub(super) fn restart_needed(old: &Config, new: &Config) -> Result<(), String> {
    if old.admin != new.admin {
        return Err(
            "the admin section changed (listen, token_file or allow_unauthenticated_admin); \
             restart luas to apply it"
                .into(),
        );
    }
    let shape = |config: &Config| {
        config
            .listeners
            .iter()
            .map(|l| (l.name.clone(), l.listen, l.protocol, l.tls.clone()))
            .collect::<Vec<_>>()
    };
    if shape(old) != shape(new) {
        return Err(
            "listeners were added, removed, renamed, moved to another address or protocol, or \
             their TLS files were renamed; routes can change on reload, listeners need a \
             restart (a certificate rewritten in place is picked up without one)"
                .into(),
        );
    }
    // Set when a listener starts; only the body limits are read per request.
    let fixed = |limits: &ListenerLimits| ListenerLimits {
        max_body_bytes: None,
        body_timeout: Duration::ZERO,
        ..*limits
    };
    // Same listeners in the same order, as the shape check just showed.
    for (index, (was, is)) in old.listeners.iter().zip(&new.listeners).enumerate() {
        if fixed(&was.limits) != fixed(&is.limits) {
            return Err(format!(
                "listeners[{index}].limits ({}): limits other than max_body_bytes and \
                 body_timeout are fixed when a listener starts; restart luas to apply them",
                was.name
            ));
        }
    }
    if old.kubernetes != new.kubernetes || old.fleet != new.fleet {
        return Err(
            "the kubernetes or fleet section changed; restart luas to apply it (a replica \
             changes fleets only through a restart, so it never holds two fleets' state)"
                .into(),
        );
    }
    if old.metrics != new.metrics {
        return Err("metrics settings changed; restart luas to apply them".into());
    }
    if old.state_file != new.state_file {
        return Err("state_file changed; restart luas to apply it".into());
    }
    Ok(())
}
