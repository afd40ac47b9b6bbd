//! TLS with rustls: reading PEM files into rustls types, shared by the two
//! places luas speaks TLS.
//!
//! - [`listener`]: terminating TLS on a listener: certificates chosen by SNI,
//!   ALPN (h2, http/1.1), optional client-certificate verification (mTLS)
//!   and the client identity it yields, and reloading the files when they
//!   change on disk (cert-manager rotates them in place).
//! - [`upstream`]: TLS from luas to a service's endpoints: verification
//!   against a CA file or the system roots, SNI, optional client certificate.
//!
//! Only TLS 1.2 and 1.3, with the `ring` provider's default cipher suites.
//! This module reads files and builds configurations; it does not accept
//! connections (see `server`) or open them (see `client`). Nothing here logs
//! key material: errors name files, never their contents.

pub(crate) mod listener;
pub(crate) mod upstream;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::CertificateFiles;

pub(crate) use listener::{ClientIdentity, TlsTerminator};
pub(crate) use upstream::UpstreamTlsConnector;

/// Why TLS material could not be loaded. Names the file and what to fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} file {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} holds no {what} in PEM form (a -----BEGIN {pem}----- block)")]
    NoPem {
        what: &'static str,
        pem: &'static str,
        path: PathBuf,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("no CA certificates found in the system store ({0}); install ca-certificates or set `tls.ca`")]
    NoSystemRoots(String),
    #[error("cannot build the TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// TLS 1.3 and 1.2 only; 1.0 and 1.1 are broken and refused.
pub(crate) static PROTOCOL_VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The contents of TLS files as last read, in order; None where a file
/// could not be read. Compared to tell whether files changed.
pub(crate) type FileContents = Vec<Option<Vec<u8>>>;

pub(crate) fn contents<'a>(paths: impl IntoIterator<Item = &'a PathBuf>) -> FileContents {
    paths
        .into_iter()
        .map(|path| std::fs::read(path).ok())
        .collect()
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// Every certificate in a PEM file, in order.
pub(crate) fn certificates(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path, what)?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::Invalid {
            path: path.to_path_buf(),
            message: format!("not a valid PEM certificate file: {error}"),
        })?;
    if certificates.is_empty() {
        return Err(TlsError::NoPem {
            what,
            pem: "CERTIFICATE",
            path: path.to_path_buf(),
        });
    }
    Ok(certificates)
}

pub(crate) fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path, "private key")?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|error| match error {
        rustls_pki_types::pem::Error::NoItemsFound => TlsError::NoPem {
            what: "private key",
            pem: "PRIVATE KEY",
            path: path.to_path_buf(),
        },
        other => TlsError::Invalid {
            path: path.to_path_buf(),
            message: format!("not a valid PEM private key: {other}"),
        },
    })
}

/// A certificate chain with its private key, checked to belong together.
pub(crate) fn certified_key(files: &CertificateFiles) -> Result<CertifiedKey, TlsError> {
    let chain = certificates(&files.cert, "certificate")?;
    let key = private_key(&files.key)?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|error| TlsError::Invalid {
        path: files.key.clone(),
        message: format!(
            "this key cannot be used with the certificate in {}: {error}",
            files.cert.display()
        ),
    })
}

/// The CA certificates in a PEM file, as a trust store.
pub(crate) fn root_store(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for certificate in certificates(path, "CA certificate")? {
        roots.add(certificate).map_err(|error| TlsError::Invalid {
            path: path.to_path_buf(),
            message: format!("not a usable CA certificate: {error}"),
        })?;
    }
    Ok(roots)
}

/// The operating system's trust store (on Debian, /etc/ssl/certs).
pub(crate) fn system_roots() -> Result<RootCertStore, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = match found.errors.first() {
            Some(error) => error.to_string(),
            None => "the store is empty".to_owned(),
        };
        return Err(TlsError::NoSystemRoots(why));
    }
    Ok(roots)
}
