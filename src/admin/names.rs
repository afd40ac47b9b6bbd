//! Names for endpoint addresses, for people reading `luas ctl status` and
//! the admin API: `stable-1` rather than `127.0.0.1:40123`.
//!
//! A name is not part of the config (an endpoint *is* its address); it is
//! known to whoever started the backend, which today is `luas demo`. That
//! code hands its names to `App::endpoint_names`, the app gives them to the
//! admin listener, and `api` looks them up when it answers. An address
//! without a name is shown bare.

use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Endpoint names by address; empty unless the app was given some.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct EndpointNames(BTreeMap<SocketAddr, String>);

impl EndpointNames {
    /// The name of the endpoint at `address`, if one was given.
    pub(crate) fn lookup(&self, address: SocketAddr) -> Option<String> {
        self.0.get(&address).cloned()
    }
}

impl FromIterator<(SocketAddr, String)> for EndpointNames {
    fn from_iter<I: IntoIterator<Item = (SocketAddr, String)>>(names: I) -> Self {
        Self(names.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_addresses_have_names_and_others_none() {
        let named: SocketAddr = "192.0.2.1:7".parse().unwrap();
        let other: SocketAddr = "192.0.2.1:8".parse().unwrap();
        let names: EndpointNames = [(named, "stable-1".to_owned())].into_iter().collect();
        assert_eq!(names.lookup(named).as_deref(), Some("stable-1"));
        assert_eq!(names.lookup(other), None);
        assert_eq!(EndpointNames::default().lookup(named), None);
    }
}
