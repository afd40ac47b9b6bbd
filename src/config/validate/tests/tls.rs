//! TLS on listeners and to upstreams, and routes on client identity.

use super::*;

#[test]
fn listener_tls_takes_one_pair_or_a_list() {
    let tls = |tls: &str| {
        format!(
            "\
listeners:
  - name: edge
    listen: 0.0.0.0:8443
    tls: {tls}
    routes:
      - {{ name: all, service: web }}
services:
  - {{ name: web, endpoints: [127.0.0.1:9000] }}
"
        )
    };
    let config = load(&tls(
        "{ cert: /tls/a.crt, key: /tls/a.key, client_ca: /tls/ca.pem }",
    ));
    let listener_tls = config.listeners[0].tls.as_ref().unwrap();
    assert_eq!(
        listener_tls.certificates,
        [CertificateFiles {
            cert: "/tls/a.crt".into(),
            key: "/tls/a.key".into()
        }]
    );
    assert_eq!(listener_tls.client_ca, Some(PathBuf::from("/tls/ca.pem")));
    let config = load(&tls(
        "{ certificates: [{ cert: a.crt, key: a.key }, { cert: b.crt, key: b.key }] }",
    ));
    assert_eq!(
        config.listeners[0].tls.as_ref().unwrap().certificates.len(),
        2
    );

    let both = issues(&tls(
        "{ cert: a, key: b, certificates: [{ cert: c, key: d }] }",
    ));
    assert!(issue_at(&both, "listeners[0].tls").contains("not both"));
    let neither = issues(&tls("{ client_ca: ca.pem }"));
    assert!(issue_at(&neither, "listeners[0].tls").contains("needs a certificate"));
    let half = issues(&tls("{ cert: a.crt }"));
    assert!(issue_at(&half, "listeners[0].tls.key").contains("without `key`"));
    let empty = issues(&tls("{ certificates: [] }"));
    assert!(issue_at(&empty, "listeners[0].tls.certificates").contains("empty"));
    let blank = issues(&tls("{ cert: '', key: a.key }"));
    assert!(issue_at(&blank, "listeners[0].tls.cert").contains("empty"));
    let unknown = raw::parse(&tls("{ cert: a, key: b, ciphers: all }")).unwrap_err();
    assert!(unknown.to_string().contains("ciphers"), "{unknown}");
}

#[test]
fn client_identity_needs_a_listener_that_verifies_clients() {
    let yaml = with_routes(
        "      - { name: web, match: { client_identity: 'spiffe://cluster.local/ns/a/sa/web' }, service: web }\n      - { name: all, service: web }\n",
    );
    let found = issues(&yaml);
    assert!(
        issue_at(&found, "listeners[0].routes[0].match.client_identity").contains("client_ca"),
        "{found:?}"
    );
    // A route whose only condition is an identity is not a catch-all.
    assert!(!paths(&found).contains(&"listeners[0].routes[1]"));
    let verified = yaml.replace(
        "    routes:",
        "    tls: { cert: a.crt, key: a.key, client_ca: ca.pem }\n    routes:",
    );
    let config = load(&verified);
    assert_eq!(
        config.listeners[0].routes[0].matches[0]
            .client_identity
            .as_deref(),
        Some("spiffe://cluster.local/ns/a/sa/web")
    );
}

#[test]
fn upstream_tls_checks_its_keys() {
    let config = load(&with_services(
        "  - name: web\n    endpoints: [127.0.0.1:9000]\n    tls: { ca: ca.pem, server_name: api.internal, cert: c.crt, key: c.key }\n",
    ));
    assert_eq!(
        config.services[0].tls,
        Some(UpstreamTls {
            ca: Some("ca.pem".into()),
            server_name: Some("api.internal".into()),
            client_certificate: Some(CertificateFiles {
                cert: "c.crt".into(),
                key: "c.key".into()
            }),
            insecure_skip_verify: false,
        })
    );
    let defaults = load(&with_services(
        "  - name: web\n    endpoints: [127.0.0.1:9000]\n    tls: {}\n",
    ));
    let tls = defaults.services[0].tls.as_ref().unwrap();
    assert_eq!((tls.ca.as_ref(), tls.insecure_skip_verify), (None, false));

    let found = issues(&with_services(
        "  - name: web\n    endpoints: [127.0.0.1:9000]\n    tls: { ca: ca.pem, insecure_skip_verify: true, server_name: 'not a name', key: k.pem }\n",
    ));
    assert!(issue_at(&found, "services[0].tls.insecure_skip_verify").contains("remove one"));
    assert!(issue_at(&found, "services[0].tls.server_name").contains("neither"));
    assert!(issue_at(&found, "services[0].tls.cert").contains("without `cert`"));
}
