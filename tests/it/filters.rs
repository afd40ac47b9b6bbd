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

/// `rate_limit` keyed by a header: a client's burst goes through, the next
/// request gets 429 with Retry-After, another key is untouched, and the
/// refusals are counted.
#[tokio::test]
async fn a_rate_limit_answers_429_with_retry_after_per_key() {
    let api = Backend::spawn(BackendOptions::new("api")).await.unwrap();
    let proxy = start_proxy(&format!(
        r#"
admin: {{ listen: "127.0.0.1:0" }}
listeners:
  - name: edge
    listen: "127.0.0.1:0"
    routes:
      - name: api
        filters:
          - rate_limit: {{ requests: 3, per: 1m, burst: 3, key: {{ header: x-api-key }} }}
        service: api
services:
  - {{ name: api, endpoints: ["{}"] }}
"#,
        api.address
    ))
    .await;
    let edge = edge(&proxy);
    let key_a = [("x-api-key", "a")];
    for _ in 0..3 {
        assert_eq!(get(edge, "/", &key_a).await.status, StatusCode::OK);
    }
    let refused = get(edge, "/", &key_a).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    // One token every 20 s.
    let retry_after: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((19..=20).contains(&retry_after), "{retry_after}");
    assert_eq!(api.requests(), 3);
    assert_eq!(
        get(edge, "/", &[("x-api-key", "b")]).await.status,
        StatusCode::OK
    );
    let metrics = metrics_text(&proxy).await;
    assert_eq!(
        sample(
            &metrics,
            r#"luas_rate_limited_total{listener="edge",route="api"}"#
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            r#"luas_requests_total{code="4xx",listener="edge",route="api"}"#
        ),
        Some(1.0)
    );
}
