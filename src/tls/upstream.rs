//! TLS from luas to a service's endpoints: the rustls client configuration
//! and the handshake over a connected TCP stream.
//!
//! Endpoint certificates are verified against `tls.ca` or else the system's
//! roots, for `tls.server_name` or else the endpoint's IP address. The only
//! way around verification is `insecure_skip_verify: true`, which is logged
//! as a warning each time it is loaded. Pools, retries and timeouts belong
//! to `client`.

use std::net::IpAddr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::{
    certificates, contents, private_key, provider, root_store, system_roots, FileContents, TlsError,
};
use crate::config::{UpstreamProtocol, UpstreamTls};

/// Opens TLS sessions to the endpoints of one service.
pub struct UpstreamTlsConnector {
    settings: UpstreamTls,
    connector: TlsConnector,
    server_name: Option<ServerName<'static>>,
    /// The contents of the files it was loaded from, to tell a reload
    /// whether they changed.
    contents: FileContents,
}

impl std::fmt::Debug for UpstreamTlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTlsConnector")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl UpstreamTlsConnector {
    /// Loads the CA, client certificate and key files; `service` is for the
    /// warning about skipped verification.
    pub fn load(
        settings: &UpstreamTls,
        protocol: UpstreamProtocol,
        service: &str,
    ) -> Result<Self, TlsError> {
        let contents = read_files(settings);
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(super::PROTOCOL_VERSIONS)?;
        let builder = if settings.insecure_skip_verify {
            tracing::warn!(
                service,
                "tls.insecure_skip_verify is true: endpoint certificates are NOT verified, so \
                 anyone on the path can read and change this service's traffic"
            );
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
        } else {
            let roots = match &settings.ca {
                Some(path) => root_store(path)?,
                None => system_roots()?,
            };
            builder.with_root_certificates(roots)
        };
        let mut config = match &settings.client_certificate {
            None => builder.with_no_client_auth(),
            Some(files) => {
                let chain = certificates(&files.cert, "client certificate")?;
                let key = private_key(&files.key)?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|error| TlsError::Invalid {
                        path: files.key.clone(),
                        message: format!(
                            "this key cannot be used with the certificate in {}: {error}",
                            files.cert.display()
                        ),
                    })?
            }
        };
        config.alpn_protocols = match protocol {
            UpstreamProtocol::Http1 => vec![b"http/1.1".to_vec()],
            UpstreamProtocol::Http2 => vec![b"h2".to_vec()],
        };
        let server_name = settings
            .server_name
            .as_ref()
            // Validation already checked the name.
            .and_then(|name| ServerName::try_from(name.clone()).ok());
        Ok(Self {
            settings: settings.clone(),
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
            contents,
        })
    }

    /// Whether `settings` and the files they name are what this connector
    /// was loaded from, so a reload can keep it (and its connections).
    pub fn loaded_from(&self, settings: &UpstreamTls) -> bool {
        self.settings == *settings && self.contents == read_files(settings)
    }

    /// The TLS handshake with the endpoint at `address` over `stream`.
    pub async fn connect(
        &self,
        address: IpAddr,
        stream: TcpStream,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let name = self
            .server_name
            .clone()
            .unwrap_or_else(|| ServerName::IpAddress(address.into()));
        self.connector.connect(name, stream).await
    }
}

fn read_files(settings: &UpstreamTls) -> FileContents {
    let client = settings
        .client_certificate
        .iter()
        .flat_map(|files| [&files.cert, &files.key]);
    contents(settings.ca.iter().chain(client))
}

/// `insecure_skip_verify`: any certificate is accepted, but the handshake's
/// signatures are still checked so the session itself is sound.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            certificate,
            signature,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            certificate,
            signature,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
