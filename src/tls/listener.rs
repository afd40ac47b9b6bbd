//! TLS termination on one listener: the rustls server configuration, the
//! certificate picked by SNI, client-certificate verification (mTLS) and
//! the identity it yields, and reloading the files when their contents
//! change.
//!
//! The configuration sits behind an `ArcSwap`: each handshake takes the
//! current one, so a reload applies to the next handshake and never touches
//! connections already open. A file that fails to load keeps the previous
//! configuration serving and is logged once per change. Accepting
//! connections and choosing HTTP/1.1 or HTTP/2 from ALPN belong to `server`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::CertificateDer;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::{
    certified_key, contents, provider, root_store, FileContents, TlsError, PROTOCOL_VERSIONS,
};
use crate::config::{ListenerProtocol, ListenerTls};

/// The names a verified client certificate carries: its URI subject
/// alternative names (a SPIFFE ID is one) and its DNS names, each in
/// certificate order. Kept apart so a DNS name that merely looks like a URI
/// can never pass for a workload identity.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientIdentity {
    pub uris: Vec<String>,
    pub dns_names: Vec<String>,
}

impl ClientIdentity {
    /// Reads the names of a certificate rustls has already verified.
    pub fn from_certificate(certificate: &CertificateDer<'_>) -> Option<Self> {
        let (uris, dns_names) = subject_alternative_names(certificate);
        let identity = Self { uris, dns_names };
        (!identity.uris.is_empty() || !identity.dns_names.is_empty()).then_some(identity)
    }

    /// Whether the certificate carries `name`: a URI (`scheme://…`) is
    /// looked for among the URI names only, anything else among the DNS
    /// names only.
    pub fn has(&self, name: &str) -> bool {
        let names = if name.contains("://") {
            &self.uris
        } else {
            &self.dns_names
        };
        names.iter().any(|own| own == name)
    }

    /// The name shown in logs: the first URI (a workload identity) if any,
    /// else the first DNS name.
    pub fn primary(&self) -> &str {
        self.uris
            .first()
            .or(self.dns_names.first())
            .map_or("", String::as_str)
    }
}

/// The TLS side of one listener.
#[derive(Debug)]
pub(crate) struct TlsTerminator {
    settings: ListenerTls,
    alpn: Vec<Vec<u8>>,
    config: ArcSwap<ServerConfig>,
    watch: Mutex<WatchState>,
}

#[derive(Debug, Default)]
struct WatchState {
    /// Contents of every file as last looked at; None where unreadable.
    contents: FileContents,
    /// The last failure logged, so a broken file is reported once.
    last_error: Option<String>,
}

/// What one look at the files found.
#[derive(Debug)]
pub(crate) enum Reload {
    Unchanged,
    Reloaded,
    /// The files changed but do not load; the previous configuration serves.
    Failed(TlsError),
}

impl TlsTerminator {
    /// Loads every file; fails (naming the file) if any does not load.
    pub(crate) fn load(
        settings: &ListenerTls,
        protocol: ListenerProtocol,
    ) -> Result<Self, TlsError> {
        let alpn: Vec<Vec<u8>> = match protocol {
            ListenerProtocol::Auto => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            ListenerProtocol::Http1 => vec![b"http/1.1".to_vec()],
            ListenerProtocol::Http2 => vec![b"h2".to_vec()],
        };
        let contents = read_all(settings);
        let config = server_config(settings, &alpn)?;
        Ok(Self {
            settings: settings.clone(),
            alpn,
            config: ArcSwap::from_pointee(config),
            watch: Mutex::new(WatchState {
                contents,
                last_error: None,
            }),
        })
    }

    /// An acceptor for one handshake, with the configuration current now.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.load_full())
    }

    /// Reloads the configuration if any file's contents changed since the
    /// last look. A configuration that fails to load is not retried until
    /// the files change again (a rotation writes them one after another).
    pub(crate) fn reload_if_changed(&self) -> Reload {
        let contents = read_all(&self.settings);
        let mut watch = self.watch.lock().unwrap_or_else(|p| p.into_inner());
        if contents == watch.contents {
            return Reload::Unchanged;
        }
        watch.contents = contents;
        match server_config(&self.settings, &self.alpn) {
            Ok(config) => {
                self.config.store(Arc::new(config));
                watch.last_error = None;
                Reload::Reloaded
            }
            Err(error) => Reload::Failed(error),
        }
    }

    /// Looks at the files every `interval` and reloads them when they change.
    pub(crate) fn spawn_watch(
        self: Arc<Self>,
        listener: String,
        interval: Duration,
        reloads: crate::metrics::TlsReloadMetrics,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                // File reads are small and rare; a blocking thread keeps
                // them off the runtime that serves requests.
                let terminator = self.clone();
                let Ok(outcome) =
                    tokio::task::spawn_blocking(move || terminator.reload_if_changed()).await
                else {
                    continue;
                };
                match outcome {
                    Reload::Unchanged => {}
                    Reload::Reloaded => {
                        reloads.success.inc();
                        tracing::info!(listener = %listener, "TLS certificates reloaded");
                    }
                    Reload::Failed(error) => {
                        reloads.error.inc();
                        let message = error.to_string();
                        let mut watch = self.watch.lock().unwrap_or_else(|p| p.into_inner());
                        if watch.last_error.as_ref() != Some(&message) {
                            tracing::warn!(
                                listener = %listener,
                                error = %message,
                                "TLS files changed but do not load; still serving the previous certificates"
                            );
                            watch.last_error = Some(message);
                        }
                    }
                }
            }
        })
    }
}

fn watched_files(settings: &ListenerTls) -> Vec<&PathBuf> {
    let mut files: Vec<&PathBuf> = settings
        .certificates
        .iter()
        .flat_map(|pair| [&pair.cert, &pair.key])
        .collect();
    files.extend(settings.client_ca.as_ref());
    files
}

fn read_all(settings: &ListenerTls) -> FileContents {
    contents(watched_files(settings))
}

fn server_config(settings: &ListenerTls, alpn: &[Vec<u8>]) -> Result<ServerConfig, TlsError> {
    let mut certificates = Vec::with_capacity(settings.certificates.len());
    for files in &settings.certificates {
        let key = certified_key(files)?;
        let names = key
            .end_entity_cert()
            .map(|cert| dns_names(cert))
            .unwrap_or_default();
        certificates.push((names, Arc::new(key)));
    }
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(PROTOCOL_VERSIONS)?;
    let builder = match &settings.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let roots = Arc::new(root_store(path)?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider())
                .build()
                .map_err(|error| TlsError::Invalid {
                    path: path.clone(),
                    message: format!("cannot verify client certificates with it: {error}"),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(Arc::new(SniResolver { certificates }));
    config.alpn_protocols = alpn.to_vec();
    Ok(config)
}

/// Picks the certificate whose DNS names cover the SNI name; the first
/// certificate when the client sends none or nothing matches (as nginx's
/// default server does).
#[derive(Debug)]
struct SniResolver {
    certificates: Vec<(Vec<String>, Arc<CertifiedKey>)>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let Some(sni) = client_hello.server_name() {
            let chosen = self
                .certificates
                .iter()
                .find(|(names, _)| names.iter().any(|pattern| dns_name_matches(pattern, sni)));
            if let Some((_, key)) = chosen {
                return Some(key.clone());
            }
        }
        self.certificates.first().map(|(_, key)| key.clone())
    }
}

/// RFC 6125 matching: exact, or a `*.` wildcard standing for exactly one
/// label. Case-insensitive.
fn dns_name_matches(pattern: &str, name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    match pattern.strip_prefix("*.") {
        None => pattern.eq_ignore_ascii_case(name),
        Some(suffix) => match name.split_once('.') {
            Some((label, rest)) => !label.is_empty() && rest.eq_ignore_ascii_case(suffix),
            None => false,
        },
    }
}

fn dns_names(certificate: &CertificateDer<'_>) -> Vec<String> {
    subject_alternative_names(certificate).1
}

/// URI and DNS subject alternative names, each in certificate order.
///
/// Read with rustls's own X.509 parser (webpki), which yields only names
/// that are well-formed for their kind: a DNS name that is not a valid
/// (possibly wildcard) name, or a URI that is not UTF-8, is skipped. Such a
/// name could match neither an SNI name nor a configured identity anyway.
fn subject_alternative_names(certificate: &CertificateDer<'_>) -> (Vec<String>, Vec<String>) {
    let Ok(parsed) = webpki::EndEntityCert::try_from(certificate) else {
        return (Vec::new(), Vec::new());
    };
    let uris = parsed.valid_uri_names().map(str::to_owned).collect();
    let dns_names = parsed.valid_dns_names().map(str::to_owned).collect();
    (uris, dns_names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_covers_exactly_one_label() {
        assert!(dns_name_matches("*.example.com", "a.example.com"));
        assert!(dns_name_matches("*.example.com", "A.Example.COM."));
        assert!(!dns_name_matches("*.example.com", "a.b.example.com"));
        assert!(!dns_name_matches("*.example.com", "example.com"));
        assert!(!dns_name_matches("*.example.com", ".example.com"));
        assert!(dns_name_matches("api.example.com", "API.example.com"));
        assert!(!dns_name_matches("api.example.com", "web.example.com"));
    }

    #[test]
    fn reads_uri_and_dns_names_in_certificate_order() {
        use rcgen::string::Ia5String;
        use rcgen::{CertificateParams, KeyPair, SanType};
        let mut params =
            CertificateParams::new(vec!["web.shop.svc".to_owned(), "*.example.com".to_owned()])
                .unwrap();
        for uri in [
            "spiffe://cluster.local/ns/shop/sa/web",
            "urn:example:second",
        ] {
            params
                .subject_alt_names
                .push(SanType::URI(Ia5String::try_from(uri).unwrap()));
        }
        params
            .subject_alt_names
            .push(SanType::IpAddress("10.0.0.1".parse().unwrap()));
        let certificate = params
            .self_signed(&KeyPair::generate().unwrap())
            .unwrap()
            .der()
            .clone();
        let identity = ClientIdentity::from_certificate(&certificate).unwrap();
        assert_eq!(
            identity.uris,
            [
                "spiffe://cluster.local/ns/shop/sa/web",
                "urn:example:second"
            ]
        );
        assert_eq!(identity.dns_names, ["web.shop.svc", "*.example.com"]);
        assert_eq!(dns_names(&certificate), identity.dns_names);
        // Not a certificate: no names, no panic.
        let garbage = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
        assert_eq!(ClientIdentity::from_certificate(&garbage), None);
    }

    #[test]
    fn identity_prefers_a_uri_name_for_logs() {
        let identity = ClientIdentity {
            uris: vec!["spiffe://cluster.local/ns/shop/sa/web".to_owned()],
            dns_names: vec!["web.shop.svc".to_owned()],
        };
        assert_eq!(identity.primary(), "spiffe://cluster.local/ns/shop/sa/web");
        assert!(identity.has("web.shop.svc"));
        assert!(identity.has("spiffe://cluster.local/ns/shop/sa/web"));
        assert!(!identity.has("web"));
        // A DNS name spelled like a URI is not a URI identity.
        let forged = ClientIdentity {
            dns_names: vec!["spiffe://cluster.local/ns/shop/sa/web".to_owned()],
            ..ClientIdentity::default()
        };
        assert!(!forged.has("spiffe://cluster.local/ns/shop/sa/web"));
    }
}
