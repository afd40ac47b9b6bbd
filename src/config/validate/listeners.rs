//! Listeners: names, addresses that can all be bound together (and not on the
//! admin address), their `limits` and their TLS termination (one certificate
//! pair or several chosen by SNI, and `client_ca` for mTLS).
//!
//! Routes are checked in `routes`; what is checked here about them is only
//! what needs the listener: a `client_identity` condition needs a listener
//! that verifies client certificates. `certificate_pair` is shared with the
//! upstream TLS of `services`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::RangeInclusive;

use super::{Checker, PLACEHOLDER_ADDR};
use crate::config::raw::{RawLimits, RawListener, RawListenerProtocol, RawListenerTls};
use crate::config::{
    defaults, CertificateFiles, ListenerConfig, ListenerLimits, ListenerProtocol, ListenerTls,
};

/// Below 8 KiB common requests (cookies, tokens) no longer fit; hyper,
/// which serves HTTP/2, refuses a smaller header buffer too.
const MIN_HEADER_BYTES: u64 = 8 * 1024;

/// Header blocks beyond this serve no real client and only let one tie up memory.
const MAX_HEADER_BYTES: u64 = 1 << 20;

const MAX_HEADERS: RangeInclusive<usize> = 1..=1000;

const H2_MAX_CONCURRENT_STREAMS: RangeInclusive<u32> = 1..=10_000;

impl Checker {
    pub(super) fn listeners(
        &mut self,
        raw: &[RawListener],
        service_names: &[&str],
        admin_listen: Option<SocketAddr>,
    ) -> Vec<ListenerConfig> {
        if raw.is_empty() {
            self.issue(
                "listeners",
                "no listeners are defined, so luas would accept no traffic; add at least one \
                 listener with a `name`, a `listen` address and `routes`",
            );
        }

        let mut names: HashMap<&str, usize> = HashMap::new();
        // (key path, address) of every socket bound so far.
        let mut bound: Vec<(String, SocketAddr)> = Vec::new();
        if let Some(admin) = admin_listen {
            bound.push(("admin.listen".to_owned(), admin));
        }

        let mut listeners = Vec::with_capacity(raw.len());
        for (index, listener) in raw.iter().enumerate() {
            let path = format!("listeners[{index}]");
            self.unique_name(&mut names, index, &listener.name, "listener", "", |i| {
                format!("listeners[{i}]")
            });

            let listen_path = format!("{path}.listen");
            let listen = self.address(&listen_path, &listener.listen);
            if let Some(addr) = listen {
                for (other_path, other) in &bound {
                    if sockets_collide(addr, *other) {
                        let (what, fix) = if other_path == "admin.listen" {
                            ("the admin listener", "move `admin.listen` or this listener")
                        } else {
                            ("another listener", "give each listener its own address")
                        };
                        let same = if addr == *other {
                            format!("address {addr} is already used by {what} at {other_path}")
                        } else {
                            format!(
                                "address {addr} overlaps {other} used by {what} at \
                                 {other_path}; binding both would fail"
                            )
                        };
                        self.issue(listen_path.clone(), format!("{same}; {fix}"));
                    }
                }
                bound.push((listen_path, addr));
            }

            let protocol = match listener.protocol {
                None | Some(RawListenerProtocol::Auto) => ListenerProtocol::Auto,
                Some(RawListenerProtocol::Http1) => ListenerProtocol::Http1,
                Some(RawListenerProtocol::Http2) => ListenerProtocol::Http2,
            };

            let routes = self.routes(&path, &listener.routes, service_names);
            let limits = match &listener.limits {
                Some(limits) => self.limits(&format!("{path}.limits"), limits),
                None => defaults::LIMITS,
            };
            let tls = listener
                .tls
                .as_ref()
                .and_then(|tls| self.listener_tls(&format!("{path}.tls"), tls));
            let verifies_clients = tls.as_ref().is_some_and(|tls| tls.client_ca.is_some());
            for (index, route) in routes.iter().enumerate() {
                let written = &listener.routes[index];
                for (match_index, conditions) in route.matches.iter().enumerate() {
                    if conditions.client_identity.is_none() || verifies_clients {
                        continue;
                    }
                    let at = if written.matches.is_some() {
                        format!("{path}.routes[{index}].matches[{match_index}].client_identity")
                    } else {
                        format!("{path}.routes[{index}].match.client_identity")
                    };
                    self.issue(
                        at,
                        "this listener does not verify client certificates, so no request on \
                         it has a client identity and the route could never match; set \
                         `tls.client_ca` on the listener or remove the condition",
                    );
                }
            }
            listeners.push(ListenerConfig {
                name: listener.name.clone(),
                listen: listen.unwrap_or(PLACEHOLDER_ADDR),
                protocol,
                routes,
                limits,
                tls,
            });
        }
        listeners
    }

    fn listener_tls(&mut self, path: &str, raw: &RawListenerTls) -> Option<ListenerTls> {
        let single = self.certificate_pair(path, raw.cert.as_deref(), raw.key.as_deref());
        let certificates = match (&raw.certificates, single) {
            (Some(_), Some(_)) => {
                self.issue(
                    path,
                    "give either `cert` and `key` (one certificate) or `certificates` (several, \
                     chosen by SNI), not both",
                );
                return None;
            }
            (None, Some(pair)) => vec![pair],
            (None, None) => {
                if raw.cert.is_none() && raw.key.is_none() {
                    self.issue(
                        path,
                        "TLS needs a certificate: give `cert` and `key` (PEM files), or \
                         `certificates` with several of them",
                    );
                }
                return None;
            }
            (Some(list), None) => {
                if list.is_empty() {
                    self.issue(
                        format!("{path}.certificates"),
                        "the list is empty; give at least one `{ cert, key }`",
                    );
                }
                list.iter()
                    .enumerate()
                    .filter_map(|(index, pair)| {
                        let path = format!("{path}.certificates[{index}]");
                        self.certificate_pair(&path, Some(&pair.cert), Some(&pair.key))
                    })
                    .collect()
            }
        };
        let client_ca = self.file_path(&format!("{path}.client_ca"), raw.client_ca.as_deref());
        Some(ListenerTls {
            certificates,
            client_ca,
        })
    }

    /// `cert` and `key` under `path`: both or neither.
    pub(super) fn certificate_pair(
        &mut self,
        path: &str,
        cert: Option<&str>,
        key: Option<&str>,
    ) -> Option<CertificateFiles> {
        match (cert, key) {
            (None, None) => None,
            (Some(_), None) => {
                self.issue(
                    format!("{path}.key"),
                    "`cert` is given without `key`; give the PEM file of the certificate's \
                     private key",
                );
                None
            }
            (None, Some(_)) => {
                self.issue(
                    format!("{path}.cert"),
                    "`key` is given without `cert`; give the PEM file of the certificate chain",
                );
                None
            }
            (Some(cert), Some(key)) => {
                let cert = self.file_path(&format!("{path}.cert"), Some(cert));
                let key = self.file_path(&format!("{path}.key"), Some(key));
                Some(CertificateFiles {
                    cert: cert?,
                    key: key?,
                })
            }
        }
    }

    fn limits(&mut self, path: &str, raw: &RawLimits) -> ListenerLimits {
        let d = defaults::LIMITS;
        let max_connections = self.int_in_range(
            &format!("{path}.max_connections"),
            raw.max_connections,
            d.max_connections,
            1..=usize::MAX,
            "0 would turn every client away; give the most client connections open at once, \
             at least 1, e.g. 10000",
        );
        let header_read_timeout = self.duration(
            &format!("{path}.header_read_timeout"),
            raw.header_read_timeout.as_deref(),
            d.header_read_timeout,
            Some("no client could send its headers in time"),
        );
        let max_header_bytes = raw
            .max_header_bytes
            .as_ref()
            .and_then(|size| {
                self.size(
                    &format!("{path}.max_header_bytes"),
                    size,
                    MIN_HEADER_BYTES..=MAX_HEADER_BYTES,
                    "give the largest request header block, from 8KiB (hyper's smallest read \
                     buffer) to 1MiB, e.g. 64KiB",
                )
            })
            // In range, so at most 1 MiB: it fits any usize.
            .map_or(d.max_header_bytes, |bytes| bytes as usize);
        let max_headers = self.int_in_range(
            &format!("{path}.max_headers"),
            raw.max_headers,
            d.max_headers,
            MAX_HEADERS,
            "give the most header fields a request may have, from 1 to 1000, e.g. 100",
        );
        let max_body_bytes = raw.max_body_bytes.as_ref().and_then(|size| {
            self.size(
                &format!("{path}.max_body_bytes"),
                size,
                1..=u64::MAX,
                "a limit of 0 would refuse every request with a body; give the largest request \
                 body, e.g. 10MiB, or remove the key for no limit",
            )
        });
        let body_timeout = self.duration(
            &format!("{path}.body_timeout"),
            raw.body_timeout.as_deref(),
            d.body_timeout,
            Some("every request body would time out at its first pause"),
        );
        let idle_timeout = self.duration(
            &format!("{path}.idle_timeout"),
            raw.idle_timeout.as_deref(),
            d.idle_timeout,
            Some("keep-alive connections would be closed as soon as they fall idle"),
        );
        let h2_max_concurrent_streams = self.int_in_range(
            &format!("{path}.h2_max_concurrent_streams"),
            raw.h2_max_concurrent_streams,
            d.h2_max_concurrent_streams,
            H2_MAX_CONCURRENT_STREAMS,
            "give the most HTTP/2 streams a client may have open at once, from 1 to 10000, \
             e.g. 100",
        );
        ListenerLimits {
            max_connections,
            header_read_timeout,
            max_header_bytes,
            max_headers,
            max_body_bytes,
            body_timeout,
            idle_timeout,
            h2_max_concurrent_streams,
        }
    }
}

/// Whether two listening sockets cannot both be bound. Port 0 asks the OS
/// for a free port, so it never collides. A wildcard address collides with
/// any address of its family on the same port (Linux refuses the second bind).
fn sockets_collide(a: SocketAddr, b: SocketAddr) -> bool {
    if a.port() != b.port() || a.port() == 0 {
        return false;
    }
    a.ip() == b.ip()
        || (a.is_ipv4() == b.is_ipv4() && (a.ip().is_unspecified() || b.ip().is_unspecified()))
}
