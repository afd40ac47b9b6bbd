//! Routing end to end: host, path prefix and header conditions pick the
//! service, first match wins, and no match is a 404.

use crate::support::*;
use http::StatusCode;

/// Path, request headers, and the backend expected to answer (None: 404).
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], Option<&'a str>);

#[tokio::test]
async fn routes_by_host_path_and_header() {
    let api = Backend::spawn(BackendOptions::new("api")).await.unwrap();
    let staging = Backend::spawn(BackendOptions::new("staging"))
        .await
        .unwrap();
    let web = Backend::spawn(BackendOptions::new("web")).await.unwrap();
    let proxy = start_proxy(&format!(
        r#"
admin: {{ listen: "127.0.0.1:0" }}
listeners:
  - name: edge
    listen: "127.0.0.1:0"
    routes:
      - name: api
        match: {{ host: "*.example.com", path_prefix: /v1 }}
        service: api
      - name: staging
        match: {{ headers: {{ x-env: staging }} }}
        service: staging
      - name: web
        match: {{ host: web.local }}
        service: web
services:
  - {{ name: api, endpoints: ["{}"] }}
  - {{ name: staging, endpoints: ["{}"] }}
  - {{ name: web, endpoints: ["{}"] }}
"#,
        api.address, staging.address, web.address
    ))
    .await;
    let edge = edge(&proxy);

    let cases: &[Case<'_>] = &[
        ("/v1/users", &[("host", "shop.example.com")], Some("api")),
        ("/v1", &[("host", "a.b.example.com:8080")], Some("api")),
        // Segment-wise prefix: /v10 is not under /v1.
        ("/v10", &[("host", "shop.example.com")], None),
        // The wildcard needs a label before the suffix.
        ("/v1", &[("host", "example.com")], None),
        (
            "/v1",
            &[("host", "shop.example.com"), ("x-env", "staging")],
            Some("api"),
        ),
        (
            "/anything",
            &[("host", "shop.example.com"), ("x-env", "staging")],
            Some("staging"),
        ),
        ("/", &[("host", "WEB.local")], Some("web")),
        (
            "/",
            &[("host", "web.local"), ("x-env", "prod")],
            Some("web"),
        ),
        ("/", &[("host", "other.local")], None),
    ];
    for (path, headers, expected) in cases {
        let answer = get(edge, path, headers).await;
        if let Some(backend) = expected {
            assert_eq!(answer.status, StatusCode::OK, "{path} {headers:?}");
            assert_eq!(
                answer.header("x-backend"),
                Some(*backend),
                "{path} {headers:?}"
            );
        } else {
            assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path} {headers:?}");
            assert_eq!(answer.body, "luas: no route matches this request\n");
        }
    }
    assert_eq!(api.requests(), 3);
    assert_eq!(staging.requests(), 1);
    assert_eq!(web.requests(), 2);

    let metrics = metrics_text(&proxy).await;
    assert_eq!(
        sample(
            &metrics,
            r#"luas_requests_total{code="4xx",listener="edge",route="no_route"}"#
        ),
        Some(3.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            r#"luas_requests_total{code="2xx",listener="edge",route="api"}"#
        ),
        Some(3.0),
        "{metrics}"
    );
}
