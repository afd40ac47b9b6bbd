//! Route filters end to end, against real backends: header edits seen by
//! the backend and by the client, a redirect the client gets without any
//! backend being asked, and a rewrite of host and path.

use crate::support::*;
use http::StatusCode;

#[tokio::test]
async fn filters_edit_headers_redirect_and_rewrite() {
    let api = Backend::spawn(BackendOptions::new("api")).await.unwrap();
    let legacy = Backend::spawn(BackendOptions::new("legacy")).await.unwrap();
    let proxy = start_proxy(&format!(
        r#"
admin: {{ listen: "127.0.0.1:0" }}
listeners:
  - name: edge
    listen: "127.0.0.1:0"
    routes:
      - name: api
        matches: [ {{ path: {{ prefix: /headers }} }} ]
        filters:
          - request_headers: {{ set: {{ x-env: prod }}, add: {{ x-via-route: api }}, remove: [x-internal] }}
          - response_headers: {{ set: {{ cache-control: no-store }}, add: {{ x-route: api }} }}
        service: api
      - name: old-docs
        matches: [ {{ path: {{ prefix: /docs }} }} ]
        filters:
          - redirect: {{ scheme: https, hostname: docs.example.com, path: {{ replace_prefix: /manual }}, status: 301 }}
      - name: legacy
        matches: [ {{ path: {{ prefix: /legacy }} }} ]
        filters: [ {{ rewrite: {{ hostname: legacy.internal, path: {{ replace_prefix: / }} }} }} ]
        service: legacy
services:
  - {{ name: api, endpoints: ["{}"] }}
  - {{ name: legacy, endpoints: ["{}"] }}
"#,
        api.address, legacy.address
    ))
    .await;
    let edge = edge(&proxy);

    // Header edits: the backend echoes what it received.
    let answer = get(
        edge,
        "/headers",
        &[
            ("x-env", "staging"),
            ("x-internal", "secret"),
            ("x-via-route", "edge"),
        ],
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.body.contains("\nx-env: prod\n"), "{}", answer.body);
    assert!(!answer.body.contains("staging"), "{}", answer.body);
    assert!(!answer.body.contains("x-internal"), "{}", answer.body);
    assert!(
        answer.body.contains("\nx-via-route: edge\n"),
        "{}",
        answer.body
    );
    assert!(
        answer.body.contains("\nx-via-route: api\n"),
        "{}",
        answer.body
    );
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    let route_headers: Vec<&str> = answer
        .headers
        .get_all("x-route")
        .iter()
        .map(|value| value.to_str().unwrap())
        .collect();
    assert_eq!(route_headers, ["api"]);

    // A redirect: answered by luas, no backend asked.
    let before = api.requests() + legacy.requests();
    let answer = get(edge, "/docs/intro?lang=ga", &[("host", "www.example.com")]).await;
    assert_eq!(answer.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        answer.header("location"),
        Some("https://docs.example.com/manual/intro?lang=ga")
    );
    assert_eq!(api.requests() + legacy.requests(), before);
    let metrics = metrics_text(&proxy).await;
    assert_eq!(
        sample(
            &metrics,
            r#"luas_requests_total{code="3xx",listener="edge",route="old-docs"}"#
        ),
        Some(1.0),
        "{metrics}"
    );

    // A rewrite: the backend sees the new host and path, the query kept.
    let answer = get(
        edge,
        "/legacy/headers?id=7",
        &[("host", "shop.example.com")],
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        answer.body.starts_with("GET /headers?id=7 HTTP/1.1"),
        "{}",
        answer.body
    );
    assert!(
        answer.body.contains("\nhost: legacy.internal\n"),
        "{}",
        answer.body
    );
    assert_eq!(legacy.requests(), 1);
}
