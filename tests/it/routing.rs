//! Routing end to end: host, path, method, header and query conditions
//! pick the service, the most specific match wins, and no match is a 404.

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

/// Gateway API matches end to end (the issue's example shape): regex path,
/// header, query and method conditions, several matches per route, and the
/// most specific match winning whatever the file order.
#[tokio::test]
async fn gateway_api_matches_pick_the_most_specific_route() {
    let testers = Backend::spawn(BackendOptions::new("testers"))
        .await
        .unwrap();
    let api = Backend::spawn(BackendOptions::new("api")).await.unwrap();
    let web = Backend::spawn(BackendOptions::new("web")).await.unwrap();
    let proxy = start_proxy(&format!(
        r#"
admin: {{ listen: "127.0.0.1:0" }}
listeners:
  - name: edge
    listen: "127.0.0.1:0"
    routes:
      - name: everything
        service: web
      - name: api
        matches: [ {{ path: {{ prefix: /api }} }}, {{ path: {{ exact: /v2-api }} }} ]
        service: api
      - name: api-v2-testers
        matches:
          - path: {{ regex: "^/api/v[0-9]+/users/[0-9]+$" }}
            headers: [ {{ name: x-tester, value: "yes" }} ]
            query: [ {{ name: debug, regex: "^(1|true)$" }} ]
            method: GET
        service: testers
services:
  - {{ name: testers, endpoints: ["{}"] }}
  - {{ name: api, endpoints: ["{}"] }}
  - {{ name: web, endpoints: ["{}"] }}
"#,
        testers.address, api.address, web.address
    ))
    .await;
    let edge = edge(&proxy);
    let client = client();
    let tester = [("x-tester", "yes")];
    /// Method, path and query, request headers, and the backend that answers.
    type Row<'a> = (http::Method, &'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Row<'_>] = &[
        (
            http::Method::GET,
            "/api/v2/users/42?debug=true",
            &tester,
            "testers",
        ),
        (
            http::Method::GET,
            "/api/v2/users/42?x=1&debug=1",
            &tester,
            "testers",
        ),
        // Each condition missing in turn: the next most specific route.
        (http::Method::GET, "/api/v2/users/42?debug=true", &[], "api"),
        (
            http::Method::GET,
            "/api/v2/users/42?debug=no",
            &tester,
            "api",
        ),
        (
            http::Method::GET,
            "/api/v2/users/abc?debug=1",
            &tester,
            "api",
        ),
        (
            http::Method::POST,
            "/api/v2/users/42?debug=1",
            &tester,
            "api",
        ),
        (http::Method::GET, "/v2-api", &[], "api"),
        (http::Method::GET, "/v2-api/x", &[], "web"),
        (http::Method::GET, "/apix", &[], "web"),
        (http::Method::GET, "/", &[], "web"),
    ];
    for (method, path, headers, expected) in cases {
        let mut request = http::Request::builder()
            .method(method.clone())
            .uri(format!("http://{edge}{path}"));
        for (name, value) in *headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let answer = Answer::from(client.request(request).await.unwrap()).await;
        assert_eq!(answer.status, StatusCode::OK, "{method} {path} {headers:?}");
        assert_eq!(
            answer.header("x-backend"),
            Some(*expected),
            "{method} {path} {headers:?}"
        );
    }
}

/// A route's `timeouts` and `retry` replace its service's for the requests
/// it matches, and only for those.
#[tokio::test]
async fn a_route_overrides_the_service_timeouts_and_retry() {
    let slow =
        Backend::spawn(BackendOptions::new("slow").latency(std::time::Duration::from_secs(2)))
            .await
            .unwrap();
    let good = Backend::spawn(BackendOptions::new("good")).await.unwrap();
    let bad = Backend::spawn(BackendOptions::new("bad").status(StatusCode::INTERNAL_SERVER_ERROR))
        .await
        .unwrap();
    let proxy = start_proxy(&format!(
        r#"
admin: {{ listen: "127.0.0.1:0" }}
listeners:
  - name: edge
    listen: "127.0.0.1:0"
    routes:
      - name: hurried
        match: {{ path_prefix: /hurried }}
        timeouts: {{ request: 300ms }}
        service: slow
      - name: patient
        match: {{ path_prefix: /patient }}
        service: slow
      - name: retried
        match: {{ path_prefix: /retried }}
        retry: {{ attempts: 2, on: [5xx] }}
        service: mixed
      - name: plain
        service: mixed
services:
  - {{ name: slow, timeouts: {{ request: 10s }}, endpoints: ["{}"] }}
  - name: mixed
    balancer: round-robin
    outlier: {{ enabled: false }}
    endpoints: ["{}", "{}"]
"#,
        slow.address, good.address, bad.address
    ))
    .await;
    let edge = edge(&proxy);

    let started = std::time::Instant::now();
    let answer = get(edge, "/hurried", &[]).await;
    let took = started.elapsed();
    assert_eq!(answer.status, StatusCode::GATEWAY_TIMEOUT);
    assert!(took < std::time::Duration::from_millis(1500), "{took:?}");
    assert_eq!(get(edge, "/patient", &[]).await.status, StatusCode::OK);

    // With the route's retry every request ends well; without it, the bad
    // endpoint's 500s reach the client.
    for _ in 0..6 {
        assert_eq!(get(edge, "/retried", &[]).await.status, StatusCode::OK);
    }
    let plain: Vec<StatusCode> =
        futures_util::future::join_all((0..6).map(|_| get(edge, "/", &[])))
            .await
            .into_iter()
            .map(|answer| answer.status)
            .collect();
    assert!(
        plain.contains(&StatusCode::INTERNAL_SERVER_ERROR),
        "{plain:?}"
    );
}
