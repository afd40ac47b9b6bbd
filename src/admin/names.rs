//! Names for endpoint addresses, for people reading `luas ctl status` and
//! the admin API: `stable-1` rather than `127.0.0.1:40123`.
//!
//! A name is not part of the config (an endpoint *is* its address); it is
//! known to whoever started the backend in this process, which today is
//! `luas demo`. That code names its backends here and forgets them when it
//! drops them; `api` looks names up when it answers. The table is
//! process-wide so that naming needs no handle threaded through the app and
//! the admin listener; it only ever holds what this process started, and an
//! address without a name is simply shown bare.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};

static NAMES: Mutex<BTreeMap<SocketAddr, String>> = Mutex::new(BTreeMap::new());

fn names() -> MutexGuard<'static, BTreeMap<SocketAddr, String>> {
    NAMES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Names the endpoint at `address` until [`forget`] is called for it.
pub(crate) fn name(address: SocketAddr, name: &str) {
    names().insert(address, name.to_owned());
}

/// Drops the name of `address` (its backend stopped; the port may be reused).
pub(crate) fn forget(address: SocketAddr) {
    names().remove(&address);
}

/// The name of the endpoint at `address`, if this process named it.
pub(crate) fn lookup(address: SocketAddr) -> Option<String> {
    names().get(&address).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_until_forgotten() {
        // A port no other test binds: the table is process-wide.
        let address: SocketAddr = "192.0.2.1:7".parse().unwrap();
        assert_eq!(lookup(address), None);
        name(address, "stable-1");
        assert_eq!(lookup(address).as_deref(), Some("stable-1"));
        forget(address);
        assert_eq!(lookup(address), None);
    }
}
