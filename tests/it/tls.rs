//! TLS end to end: termination with ALPN (HTTP/1.1 and HTTP/2), certificates
//! chosen by SNI, client certificates (mTLS) and routing by the client's
//! identity, certificate files rotated in place without dropping a
//! connection, and TLS from luas to its backends. Every certificate is made
//! at test time with rcgen; no private key is checked in.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::support::certs::{Authority, Leaf};
use crate::support::*;

/// A fresh directory for one test's files.
fn scratch(name: &str) -> PathBuf {
    crate::support::scratch(&format!("tls-{name}"))
}

/// Writes `contents` to `directory/name` by renaming a temporary file over
/// it, as Kubernetes' atomic writer does, and returns the path.
fn write(directory: &Path, name: &str, contents: &str) -> PathBuf {
    let path = directory.join(name);
    let temporary = directory.join(format!(".{name}.tmp"));
    std::fs::write(&temporary, contents).unwrap();
    std::fs::rename(&temporary, &path).unwrap();
    path
}

fn write_leaf(directory: &Path, stem: &str, leaf: &Leaf) -> (PathBuf, PathBuf) {
    (
        write(directory, &format!("{stem}.crt"), &leaf.cert),
        write(directory, &format!("{stem}.key"), &leaf.key),
    )
}

fn parse_certificates(pem: &str) -> Vec<CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap()
}

fn parse_key(pem: &str) -> PrivateKeyDer<'static> {
    use rustls::pki_types::pem::PemObject;
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap()
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

// ---- a TLS client ----

struct TlsClient {
    config: Arc<rustls::ClientConfig>,
    connector: TlsConnector,
}

/// What one TLS request saw.
#[derive(Debug)]
struct Seen {
    status: StatusCode,
    version: Version,
    body: String,
    /// DNS names of the certificate the server presented.
    server_names: Vec<String>,
}

impl TlsClient {
    fn new(trusted: &Authority, alpn: &[&[u8]], identity: Option<&Leaf>) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        for certificate in parse_certificates(&trusted.pem()) {
            roots.add(certificate).unwrap();
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let mut config = match identity {
            None => builder.with_no_client_auth(),
            Some(leaf) => builder
                .with_client_auth_cert(parse_certificates(&leaf.cert), parse_key(&leaf.key))
                .unwrap(),
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let config = Arc::new(config);
        Self {
            connector: TlsConnector::from(config.clone()),
            config,
        }
    }

    /// Sends no SNI (the name is still checked against the certificate).
    fn disable_sni(&mut self) {
        let mut config = (*self.config).clone();
        config.enable_sni = false;
        self.config = Arc::new(config);
        self.connector = TlsConnector::from(self.config.clone());
    }

    async fn connect(
        &self,
        address: SocketAddr,
        server_name: &str,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(address).await?;
        let name = ServerName::try_from(server_name.to_owned()).unwrap();
        self.connector.connect(name, tcp).await
    }

    /// One GET on a new connection; Err when TLS or HTTP fails.
    async fn get(
        &self,
        address: SocketAddr,
        server_name: &str,
        path: &str,
    ) -> Result<Seen, String> {
        let stream =
            tokio::time::timeout(Duration::from_secs(10), self.connect(address, server_name))
                .await
                .map_err(|_| "TLS handshake timed out".to_owned())?
                .map_err(|error| format!("TLS handshake failed: {error}"))?;
        let session = stream.get_ref().1;
        let server_names = session
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(dns_names)
            .unwrap_or_default();
        let h2 = session.alpn_protocol() == Some(b"h2");
        let mut sender = Sender::open(stream, h2).await?;
        let (status, version, body) = sender.get(server_name, path).await?;
        Ok(Seen {
            status,
            version,
            body,
            server_names,
        })
    }
}

/// An HTTP connection over one TLS session.
enum Sender {
    Http1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    Http2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

impl Sender {
    async fn open(
        stream: tokio_rustls::client::TlsStream<TcpStream>,
        h2: bool,
    ) -> Result<Self, String> {
        let io = TokioIo::new(stream);
        if h2 {
            let (sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .map_err(|error| format!("h2 handshake: {error}"))?;
            tokio::spawn(connection);
            Ok(Self::Http2(sender))
        } else {
            let (sender, connection) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(|error| format!("http1 handshake: {error}"))?;
            tokio::spawn(connection);
            Ok(Self::Http1(sender))
        }
    }

    async fn get(
        &mut self,
        host: &str,
        path: &str,
    ) -> Result<(StatusCode, Version, String), String> {
        let sending = async {
            let response = match self {
                Self::Http1(sender) => {
                    let request = Request::get(path)
                        .header("host", host)
                        .body(Full::new(Bytes::new()))
                        .unwrap();
                    sender.send_request(request).await
                }
                Self::Http2(sender) => {
                    let request = Request::get(format!("https://{host}{path}"))
                        .version(Version::HTTP_2)
                        .body(Full::new(Bytes::new()))
                        .unwrap();
                    sender.send_request(request).await
                }
            }
            .map_err(|error| format!("request failed: {error}"))?;
            let status = response.status();
            let version = response.version();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|error| format!("body failed: {error}"))?
                .to_bytes();
            Ok((status, version, String::from_utf8_lossy(&body).into_owned()))
        };
        tokio::time::timeout(Duration::from_secs(10), sending)
            .await
            .map_err(|_| "no answer within 10 s".to_owned())?
    }
}

fn dns_names(certificate: &CertificateDer<'_>) -> Vec<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate.as_ref()).unwrap();
    let Ok(Some(names)) = parsed.subject_alternative_name() else {
        return Vec::new();
    };
    names
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            x509_parser::extensions::GeneralName::DNSName(dns) => Some(dns.to_string()),
            _ => None,
        })
        .collect()
}

// ---- a TLS backend ----

/// A backend that serves HTTP/1.1 over TLS and answers with whether the
/// client (luas) presented a certificate and which SNI it sent.
async fn tls_backend(leaf: &Leaf, client_ca: Option<&Authority>) -> SocketAddr {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(authority) => {
            let mut roots = rustls::RootCertStore::empty();
            for certificate in parse_certificates(&authority.pem()) {
                roots.add(certificate).unwrap();
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider(),
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(parse_certificates(&leaf.cert), parse_key(&leaf.key))
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let session = stream.get_ref().1;
                let description = format!(
                    "client-cert={} sni={}\n",
                    session.peer_certificates().is_some(),
                    session.server_name().unwrap_or("-")
                );
                let service = hyper::service::service_fn(move |_request: Request<Incoming>| {
                    let body = description.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                            Bytes::from(body),
                        )))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    address
}

// ---- the tests ----

fn tls_listener_yaml(backend: SocketAddr, tls: &str, routes: &str) -> String {
    tls_listener_yaml_with(backend, backend, tls, routes)
}

fn tls_listener_yaml_with(
    backend: SocketAddr,
    special: SocketAddr,
    tls: &str,
    routes: &str,
) -> String {
    format!(
        r#"
admin: {{ listen: "127.0.0.1:0" }}
listeners:
  - name: edge
    listen: "127.0.0.1:0"
    tls: {tls}
    routes:
{routes}
services:
  - name: web
    endpoints: ["{backend}"]
  - name: special
    endpoints: ["{special}"]
"#
    )
}

const CATCH_ALL: &str = "      - { name: all, service: web }";

/// A TLS listener in front of `backend` for `localhost`, its certificate
/// signed by a fresh test CA (written to `directory`), routing everything.
async fn localhost_tls_edge(backend: SocketAddr, directory: &Path) -> (Authority, Running) {
    let authority = Authority::new("test CA");
    let (cert, key) = write_leaf(directory, "edge", &authority.server(&["localhost"]));
    let tls = format!("{{ cert: {}, key: {} }}", cert.display(), key.display());
    let proxy = start_proxy(&tls_listener_yaml(backend, &tls, CATCH_ALL)).await;
    (authority, proxy)
}

#[tokio::test]
async fn alpn_serves_http2_and_http1_over_tls() {
    let backend = Backend::spawn(BackendOptions::new("b")).await.unwrap();
    let directory = scratch("alpn");
    let (authority, proxy) = localhost_tls_edge(backend.address, &directory).await;

    let h2 = TlsClient::new(&authority, &[b"h2", b"http/1.1"], None)
        .get(edge(&proxy), "localhost", "/headers")
        .await
        .unwrap();
    assert_eq!(h2.status, StatusCode::OK);
    assert_eq!(h2.version, Version::HTTP_2);
    assert!(
        h2.body
            .to_ascii_lowercase()
            .contains("x-forwarded-proto: https"),
        "the backend learns the client used TLS: {}",
        h2.body
    );

    let h1 = TlsClient::new(&authority, &[b"http/1.1"], None)
        .get(edge(&proxy), "localhost", "/")
        .await
        .unwrap();
    assert_eq!((h1.status, h1.version), (StatusCode::OK, Version::HTTP_11));
    assert_eq!(h1.body, "b\n");

    // A client that offers no ALPN gets the listener's detection.
    let plain = TlsClient::new(&authority, &[], None)
        .get(edge(&proxy), "localhost", "/")
        .await
        .unwrap();
    assert_eq!(plain.status, StatusCode::OK);

    // Plain HTTP to a TLS port is not served.
    let mut raw = TcpStream::connect(edge(&proxy)).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    raw.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), raw.read_to_end(&mut answer)).await;
    assert!(
        !String::from_utf8_lossy(&answer).contains("200 OK"),
        "plain HTTP must not be served on a TLS listener"
    );
    let metrics = metrics_text(&proxy).await;
    assert!(
        sample(
            &metrics,
            "luas_tls_handshake_failures_total{listener=\"edge\"}"
        )
        .unwrap()
            >= 1.0,
        "the failed handshake is counted"
    );
}

#[tokio::test]
async fn sni_chooses_the_certificate_and_unknown_names_get_the_first() {
    let backend = Backend::spawn(BackendOptions::new("b")).await.unwrap();
    let directory = scratch("sni");
    let authority = Authority::new("test CA");
    let (a_cert, a_key) = write_leaf(&directory, "a", &authority.server(&["a.test"]));
    let (b_cert, b_key) = write_leaf(&directory, "b", &authority.server(&["*.b.test"]));
    let tls = format!(
        "{{ certificates: [{{ cert: {}, key: {} }}, {{ cert: {}, key: {} }}] }}",
        a_cert.display(),
        a_key.display(),
        b_cert.display(),
        b_key.display()
    );
    let proxy = start_proxy(&tls_listener_yaml(backend.address, &tls, CATCH_ALL)).await;
    let client = TlsClient::new(&authority, &[b"http/1.1"], None);

    let a = client.get(edge(&proxy), "a.test", "/").await.unwrap();
    assert_eq!(a.server_names, ["a.test"]);
    let b = client.get(edge(&proxy), "api.b.test", "/").await.unwrap();
    assert_eq!(b.server_names, ["*.b.test"]);
    assert_eq!(b.status, StatusCode::OK);
    // No certificate covers other.test: the first is served, and the
    // client, which checks names, refuses it.
    let other = client.get(edge(&proxy), "other.test", "/").await;
    assert!(
        other.is_err(),
        "the client must reject a certificate for another name"
    );
    // Without SNI at all the first certificate is served (checked as a.test).
    let mut no_sni = TlsClient::new(&authority, &[b"http/1.1"], None);
    no_sni.disable_sni();
    let first = no_sni.get(edge(&proxy), "a.test", "/").await.unwrap();
    assert_eq!(first.server_names, ["a.test"]);
    assert_eq!(first.status, StatusCode::OK);
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate_and_routes_by_identity() {
    let backend = Backend::spawn(BackendOptions::new("b")).await.unwrap();
    let special = Backend::spawn(BackendOptions::new("special"))
        .await
        .unwrap();
    let directory = scratch("mtls");
    let servers = Authority::new("server CA");
    let clients = Authority::new("client CA");
    let (cert, key) = write_leaf(&directory, "edge", &servers.server(&["localhost"]));
    let client_ca = write(&directory, "clients.pem", &clients.pem());
    let tls = format!(
        "{{ cert: {}, key: {}, client_ca: {} }}",
        cert.display(),
        key.display(),
        client_ca.display()
    );
    let routes = "      - { name: web-only, match: { client_identity: \"spiffe://cluster.local/ns/shop/sa/web\" }, service: special }\n      - { name: all, service: web }";
    let yaml = tls_listener_yaml_with(backend.address, special.address, &tls, routes);
    let proxy = start_proxy(&yaml).await;

    let web = clients.client("spiffe://cluster.local/ns/shop/sa/web");
    let seen = TlsClient::new(&servers, &[b"http/1.1"], Some(&web))
        .get(edge(&proxy), "localhost", "/")
        .await
        .unwrap();
    assert_eq!(
        seen.body, "special\n",
        "the web identity takes the web-only route"
    );

    let batch = clients.client("spiffe://cluster.local/ns/shop/sa/batch");
    let seen = TlsClient::new(&servers, &[b"http/1.1"], Some(&batch))
        .get(edge(&proxy), "localhost", "/")
        .await
        .unwrap();
    assert_eq!(
        seen.body, "b\n",
        "another identity falls through to the catch-all"
    );

    let anonymous = TlsClient::new(&servers, &[b"http/1.1"], None)
        .get(edge(&proxy), "localhost", "/")
        .await;
    assert!(
        anonymous.is_err(),
        "no client certificate, no answer: {anonymous:?}"
    );

    // A certificate from a CA the listener does not trust is refused too.
    let stranger = Authority::new("other CA").client("spiffe://cluster.local/ns/shop/sa/web");
    let refused = TlsClient::new(&servers, &[b"http/1.1"], Some(&stranger))
        .get(edge(&proxy), "localhost", "/")
        .await;
    assert!(
        refused.is_err(),
        "an untrusted client certificate is refused: {refused:?}"
    );
}

/// Publishes a certificate and key the way Kubernetes updates a mounted
/// Secret: both files in a new directory, then one symlink swapped to it,
/// so readers see the old pair or the new one, never a mix. Returns the
/// paths through the symlink.
fn publish(directory: &Path, version: &str, cert: &str, key: &str) -> (PathBuf, PathBuf) {
    let data = directory.join(version);
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("tls.crt"), cert).unwrap();
    std::fs::write(data.join("tls.key"), key).unwrap();
    let swap = directory.join("live.tmp");
    let _ = std::fs::remove_file(&swap);
    std::os::unix::fs::symlink(&data, &swap).unwrap();
    std::fs::rename(&swap, directory.join("live")).unwrap();
    (
        directory.join("live").join("tls.crt"),
        directory.join("live").join("tls.key"),
    )
}

#[tokio::test]
async fn rotated_certificates_apply_to_new_handshakes_and_keep_open_connections() {
    let backend = Backend::spawn(BackendOptions::new("b")).await.unwrap();
    let directory = scratch("rotate");
    let authority = Authority::new("test CA");
    let first = authority.server(&["one.test"]);
    let (cert, key) = publish(&directory, "v1", &first.cert, &first.key);
    let tls = format!("{{ cert: {}, key: {} }}", cert.display(), key.display());
    let proxy = start_proxy(&tls_listener_yaml(backend.address, &tls, CATCH_ALL)).await;
    let client = TlsClient::new(&authority, &[b"http/1.1"], None);

    // A keep-alive connection opened before the rotation.
    let stream = client.connect(edge(&proxy), "one.test").await.unwrap();
    let mut open = Sender::open(stream, false).await.unwrap();
    assert_eq!(open.get("one.test", "/").await.unwrap().0, StatusCode::OK);

    // Rotate to a certificate that also names two.test.
    let second = authority.server(&["one.test", "two.test"]);
    publish(&directory, "v2", &second.cert, &second.key);
    let rotated = eventually(Duration::from_secs(10), || async {
        client
            .get(edge(&proxy), "one.test", "/")
            .await
            .is_ok_and(|seen| seen.server_names.contains(&"two.test".to_owned()))
    })
    .await;
    assert!(rotated, "new handshakes get the new certificate");
    assert_eq!(
        open.get("one.test", "/").await.unwrap().0,
        StatusCode::OK,
        "the connection opened before the rotation still serves"
    );

    // A broken key: the second certificate keeps serving, and it is counted.
    let third = authority.server(&["three.test"]);
    publish(&directory, "v3", &third.cert, "not a key");
    let counted = eventually(Duration::from_secs(10), || async {
        let metrics = metrics_text(&proxy).await;
        sample(
            &metrics,
            "luas_tls_reloads_total{listener=\"edge\",result=\"error\"}",
        )
        .is_some_and(|count| count >= 1.0)
    })
    .await;
    assert!(counted, "the failed reload is counted");
    let seen = client.get(edge(&proxy), "two.test", "/").await.unwrap();
    assert_eq!(seen.status, StatusCode::OK);
    assert!(seen.server_names.contains(&"two.test".to_owned()));
    let metrics = metrics_text(&proxy).await;
    assert_eq!(
        sample(
            &metrics,
            "luas_tls_reloads_total{listener=\"edge\",result=\"success\"}"
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn upstream_tls_verifies_the_backend_and_presents_a_client_certificate() {
    let directory = scratch("upstream");
    let backend_ca = Authority::new("backend CA");
    let proxy_ca = Authority::new("proxy client CA");
    let backend = tls_backend(&backend_ca.server(&["api.internal"]), Some(&proxy_ca)).await;
    let ca = write(&directory, "backend-ca.pem", &backend_ca.pem());
    let (cert, key) = write_leaf(
        &directory,
        "luas",
        &proxy_ca.client("spiffe://cluster.local/ns/edge/sa/luas"),
    );
    let tls = format!(
        "    tls: {{ ca: {}, server_name: api.internal, cert: {}, key: {} }}",
        ca.display(),
        cert.display(),
        key.display()
    );
    let proxy = start_proxy(&one_service_yaml(&[backend], &tls)).await;
    let answer = get(edge(&proxy), "/", &[]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body, "client-cert=true sni=api.internal\n");

    // The same backend checked against a CA that did not sign it: refused.
    let wrong_ca = write(
        &directory,
        "wrong-ca.pem",
        &Authority::new("wrong CA").pem(),
    );
    let tls = format!(
        "    tls: {{ ca: {}, server_name: api.internal, cert: {}, key: {} }}",
        wrong_ca.display(),
        cert.display(),
        key.display()
    );
    let proxy = start_proxy(&one_service_yaml(&[backend], &tls)).await;
    let answer = get(edge(&proxy), "/", &[]).await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY, "{}", answer.body);

    // The name checked is the configured one: the right CA with a name the
    // certificate does not carry fails as well.
    let tls = format!(
        "    tls: {{ ca: {}, server_name: other.internal, cert: {}, key: {} }}",
        ca.display(),
        cert.display(),
        key.display()
    );
    let proxy = start_proxy(&one_service_yaml(&[backend], &tls)).await;
    assert_eq!(
        get(edge(&proxy), "/", &[]).await.status,
        StatusCode::BAD_GATEWAY
    );

    // Only the explicit switch skips verification.
    let tls = format!(
        "    tls: {{ insecure_skip_verify: true, cert: {}, key: {} }}",
        cert.display(),
        key.display()
    );
    let proxy = start_proxy(&one_service_yaml(&[backend], &tls)).await;
    let answer = get(edge(&proxy), "/", &[]).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.body, "client-cert=true sni=-\n",
        "no SNI for an IP address"
    );
}

#[tokio::test]
async fn unreadable_tls_files_name_the_key_and_a_bad_reload_keeps_the_old_config() {
    let backend = Backend::spawn(BackendOptions::new("b")).await.unwrap();
    let directory = scratch("bad-files");
    let missing = directory.join("missing.pem");

    let tls = format!(
        "{{ cert: {}, key: {} }}",
        missing.display(),
        missing.display()
    );
    let config = Config::from_yaml(&tls_listener_yaml(backend.address, &tls, CATCH_ALL)).unwrap();
    let error = App::build(config)
        .unwrap()
        .serve()
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("listeners[0].tls"), "{error}");
    assert!(error.contains("missing.pem"), "{error}");

    let upstream = format!("    tls: {{ ca: {} }}", missing.display());
    let config = Config::from_yaml(&one_service_yaml(&[backend.address], &upstream)).unwrap();
    let error = App::build(config).unwrap_err().to_string();
    assert!(error.contains("services[0].tls"), "{error}");
    assert!(error.contains("missing.pem"), "{error}");

    // A reload to a service TLS file that does not load is refused whole.
    let proxy = start_proxy(&one_service_yaml(&[backend.address], "")).await;
    let bad = Config::from_yaml(&one_service_yaml(&[backend.address], &upstream)).unwrap();
    let refused = proxy.state().reload(bad).unwrap_err().to_string();
    assert!(refused.contains("services[0].tls"), "{refused}");
    assert_eq!(get(edge(&proxy), "/", &[]).await.body, "b\n");
}

#[tokio::test]
#[ignore = "needs curl: run bash scripts/test.sh"]
async fn curl_with_cacert_speaks_http1_and_http2() {
    let Ok(version) = std::process::Command::new("curl").arg("--version").output() else {
        panic!("curl is needed for this test; scripts/test.sh installs it");
    };
    assert!(version.status.success());
    let backend = Backend::spawn(BackendOptions::new("b")).await.unwrap();
    let directory = scratch("curl");
    let (authority, proxy) = localhost_tls_edge(backend.address, &directory).await;
    let ca = write(&directory, "ca.pem", &authority.pem());
    let port = edge(&proxy).port();

    for (flag, expected) in [("--http1.1", "1.1"), ("--http2", "2")] {
        let output = tokio::process::Command::new("curl")
            .args(["--silent", "--show-error", "--max-time", "10"])
            .arg("--cacert")
            .arg(&ca)
            .arg("--resolve")
            .arg(format!("localhost:{port}:127.0.0.1"))
            .arg(flag)
            .args(["--write-out", "\n%{http_version} %{http_code}"])
            .arg(format!("https://localhost:{port}/"))
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "curl {flag}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(stdout, format!("b\n\n{expected} 200"), "curl {flag}");
    }
}

#[tokio::test]
async fn a_reload_that_tightens_upstream_verification_stops_using_old_connections() {
    let directory = scratch("upstream-reload");
    let backend_ca = Authority::new("backend CA");
    let backend = tls_backend(&backend_ca.server(&["api.internal"]), None).await;
    let insecure = one_service_yaml(&[backend], "    tls: { insecure_skip_verify: true }");
    let proxy = start_proxy(&insecure).await;
    // A pooled connection, opened without verification.
    assert_eq!(get(edge(&proxy), "/", &[]).await.status, StatusCode::OK);

    // Same settings again: the connector and its connections are kept.
    proxy
        .state()
        .reload(Config::from_yaml(&insecure).unwrap())
        .unwrap();
    assert_eq!(get(edge(&proxy), "/", &[]).await.status, StatusCode::OK);

    // Verification against a CA that did not sign the backend: the pooled
    // connection from before must not carry the next request.
    let wrong_ca = write(
        &directory,
        "wrong-ca.pem",
        &Authority::new("wrong CA").pem(),
    );
    let strict = one_service_yaml(
        &[backend],
        &format!(
            "    tls: {{ ca: {}, server_name: api.internal }}",
            wrong_ca.display()
        ),
    );
    proxy
        .state()
        .reload(Config::from_yaml(&strict).unwrap())
        .unwrap();
    let answer = get(edge(&proxy), "/", &[]).await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY, "{}", answer.body);
}

#[tokio::test]
async fn tls_request_heads_in_pieces_arrive_whole_on_a_kept_alive_connection() {
    let backend = Backend::spawn(BackendOptions::new("b")).await.unwrap();
    let directory = scratch("pieces");
    let (authority, proxy) = localhost_tls_edge(backend.address, &directory).await;
    let client = TlsClient::new(&authority, &[b"http/1.1"], None);
    let stream = client.connect(edge(&proxy), "localhost").await.unwrap();
    let mut connection = crate::support::raw::Connection::over(stream);
    // An idle TLS connection reads a request's first bytes into a small
    // array, not its read buffer: a head longer than that, sent as two TLS
    // records, must still arrive whole, on the first request and on one
    // after the connection went idle.
    let big = "v".repeat(4000);
    for round in 0..2 {
        let request =
            format!("GET /headers HTTP/1.1\r\nHost: localhost\r\nX-Big: {big}{round}\r\n\r\n");
        let (first, rest) = request.as_bytes().split_at(100);
        connection.send(first).await;
        connection.send(rest).await;
        let answer = connection.response(false).await;
        let body = String::from_utf8_lossy(&answer.body);
        assert_eq!(answer.status, 200, "{body}");
        assert!(
            body.contains(&format!("{big}{round}")),
            "round {round}: the backend saw {body}"
        );
    }
}
