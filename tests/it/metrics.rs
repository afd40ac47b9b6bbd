//! The admin port: Prometheus metrics with per-endpoint histograms that pass
//! `promtool check metrics`, and the liveness and readiness probes.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::*;
use http::StatusCode;

#[tokio::test]
async fn metrics_show_per_endpoint_histograms_and_counters() {
    let a = Backend::spawn(BackendOptions::new("a")).await.unwrap();
    let b = Backend::spawn(BackendOptions::new("b")).await.unwrap();
    let canary = Backend::spawn(BackendOptions::new("canary")).await.unwrap();
    let proxy = start_proxy(&format!(
        r#"
{EDGE_TO_WEB}services:
  - name: web
    balancer: round-robin
    groups:
      - {{ name: stable, weight: 1, endpoints: ["{}", "{}"] }}
      - {{ name: canary, weight: 1, endpoints: ["{}"] }}
"#,
        a.address, b.address, canary.address
    ))
    .await;
    let client = client();
    for _ in 0..40 {
        assert_eq!(send(&client, edge(&proxy), "/", &[]).await.status, 200);
    }
    assert_eq!(
        send(&client, edge(&proxy), "/status/503", &[]).await.status,
        503
    );

    let text = metrics_text(&proxy).await;
    let mut total = 0.0;
    for (group, backend) in [("stable", &a), ("stable", &b), ("canary", &canary)] {
        let labels = format!(
            r#"endpoint="{}",group="{group}",service="web""#,
            backend.address
        );
        let count = sample(
            &text,
            &format!("luas_backend_request_duration_seconds_count{{{labels}}}"),
        )
        .unwrap_or_else(|| panic!("no histogram for {labels}:\n{text}"));
        assert_eq!(count, backend.requests() as f64, "{labels}");
        total += count;
        let inf = sample(
            &text,
            &format!(r#"luas_backend_request_duration_seconds_bucket{{{labels},le="+Inf"}}"#),
        );
        assert_eq!(inf, Some(count));
        // About 20 default buckets, from 0.5 ms to 10 s.
        let buckets = text
            .lines()
            .filter(|line| {
                line.starts_with("luas_backend_request_duration_seconds_bucket")
                    && line.contains(&labels)
            })
            .count();
        assert_eq!(buckets, 21, "20 bounds plus +Inf");
        assert!(text.contains(&format!(
            r#"luas_backend_request_duration_seconds_bucket{{{labels},le="0.0005"}}"#
        )));
        assert!(text.contains(&format!(
            r#"luas_backend_request_duration_seconds_bucket{{{labels},le="10"}}"#
        )));
        assert_eq!(
            sample(&text, &format!("luas_backend_in_flight{{{labels}}}")),
            Some(0.0)
        );
        let ewma = sample(&text, &format!("luas_backend_ewma_seconds{{{labels}}}")).unwrap();
        assert!(ewma > 0.0 && ewma < 1.5, "ewma {ewma}");
    }
    assert_eq!(total, 41.0);
    let server_errors: f64 = text
        .lines()
        .filter(|line| line.starts_with(r#"luas_backend_requests_total{code="5xx""#))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(server_errors, 1.0);
    assert_eq!(
        sample(
            &text,
            r#"luas_requests_total{code="2xx",listener="edge",route="all"}"#
        ),
        Some(40.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"luas_request_duration_seconds_count{listener="edge",route="all"}"#
        ),
        Some(41.0)
    );
    assert_eq!(
        sample(&text, r#"luas_open_connections{listener="edge"}"#),
        Some(1.0),
        "{text}"
    );
    assert!(sample(&text, r#"luas_connections_total{listener="edge"}"#).unwrap() >= 1.0);
}

#[tokio::test]
#[ignore = "needs promtool: run bash scripts/test.sh"]
async fn metrics_pass_promtool() {
    let backend = Backend::spawn(BackendOptions::new("a")).await.unwrap();
    let proxy = start_proxy(&one_service_yaml(&[backend.address], "")).await;
    for _ in 0..5 {
        get(edge(&proxy), "/", &[]).await;
    }
    get(edge(&proxy), "/nowhere", &[("x", "y")]).await;
    let text = metrics_text(&proxy).await;
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect(
            "promtool must be installed (Debian package `prometheus`; scripts/test.sh installs it)",
        );
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = promtool.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}\n--- metrics ---\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn live_and_ready() {
    let backend = Backend::spawn(BackendOptions::new("a")).await.unwrap();
    let proxy = start_proxy(&one_service_yaml(&[backend.address], "")).await;
    let admin = proxy.admin_address();
    assert_eq!(get(admin, "/live", &[]).await.status, StatusCode::OK);
    assert_eq!(get(admin, "/ready", &[]).await.status, StatusCode::OK);
    assert_eq!(get(admin, "/nope", &[]).await.status, StatusCode::NOT_FOUND);
    assert!(admin.ip().is_loopback());
}

#[tokio::test]
#[ignore = "needs promtool: run bash scripts/test.sh"]
async fn linkerd_compatible_series_answer_flaggers_queries() {
    let primary = Backend::spawn(BackendOptions::new("primary"))
        .await
        .unwrap();
    let canary = Backend::spawn(BackendOptions::new("canary")).await.unwrap();
    let proxy = start_proxy(&format!(
        r#"
admin: {{ listen: "127.0.0.1:0" }}
metrics: {{ linkerd_compatible: true, namespace: prod }}
listeners:
  - name: edge
    listen: "127.0.0.1:0"
    routes:
      - {{ name: all, service: podinfo }}
services:
  - name: podinfo
    groups:
      - {{ name: stable, weight: 100, endpoints: ["{}"], deployment: podinfo-primary }}
      - {{ name: canary, weight: 0, endpoints: ["{}"] }}
"#,
        primary.address, canary.address
    ))
    .await;
    let client = client();
    for _ in 0..7 {
        send(&client, edge(&proxy), "/", &[]).await;
    }
    for path in ["/", "/", "/status/503"] {
        send(&client, edge(&proxy), path, &[("x-luas-group", "canary")]).await;
    }
    let text = metrics_text(&proxy).await;
    // Flagger: response_total{namespace, deployment=~target, classification, direction="inbound"}.
    let response = |deployment: &str, classification: &str| {
        sample(
            &text,
            &format!(
                r#"response_total{{classification="{classification}",deployment="{deployment}",direction="inbound",namespace="prod"}}"#
            ),
        )
    };
    assert_eq!(response("podinfo-primary", "success"), Some(7.0), "{text}");
    assert_eq!(response("podinfo-primary", "failure"), Some(0.0));
    // The default deployment label is SERVICE-GROUP.
    assert_eq!(response("podinfo-canary", "success"), Some(2.0));
    assert_eq!(response("podinfo-canary", "failure"), Some(1.0));
    // Flagger: histogram_quantile(0.99, response_latency_ms_bucket{...}) with linkerd's buckets.
    let bucket = |le: &str| {
        sample(
            &text,
            &format!(
                r#"response_latency_ms_bucket{{deployment="podinfo-primary",direction="inbound",namespace="prod",le="{le}"}}"#
            ),
        )
    };
    let bounds: Vec<&str> = text
        .lines()
        .filter(|line| {
            line.starts_with("response_latency_ms_bucket{deployment=\"podinfo-primary\"")
        })
        .filter_map(|line| line.split("le=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(
        bounds,
        [
            "1", "2", "3", "4", "5", "10", "20", "30", "40", "50", "100", "200", "300", "400",
            "500", "1000", "2000", "3000", "4000", "5000", "10000", "20000", "30000", "40000",
            "50000", "+Inf"
        ]
    );
    assert_eq!(bucket("+Inf"), Some(7.0));
    assert_eq!(bucket("50000"), Some(7.0));

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool must be installed (Debian package `prometheus`)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = promtool.wait_with_output().unwrap();
    // linkerd's own name breaks one Prometheus naming lint; that name is the
    // point of compatibility, so that lint, and only it, is expected.
    let complaints = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    let unexpected: Vec<&str> = complaints
        .lines()
        .filter(|line| !line.trim().is_empty())
        .filter(|line| {
            *line != "response_latency_ms metric names should not contain abbreviated units"
        })
        .collect();
    assert!(unexpected.is_empty(), "promtool: {unexpected:?}");
}

#[tokio::test]
async fn linkerd_series_are_off_by_default() {
    let backend = Backend::spawn(BackendOptions::new("a")).await.unwrap();
    let proxy = start_proxy(&one_service_yaml(&[backend.address], "")).await;
    get(edge(&proxy), "/", &[]).await;
    let text = metrics_text(&proxy).await;
    assert!(!text.contains("response_total"));
    assert!(text.contains("luas_backend_requests_total"));
}

#[tokio::test]
async fn a_request_the_client_abandons_is_counted_as_a_4xx() {
    let backend = Backend::spawn(BackendOptions::new("slow")).await.unwrap();
    backend.set_latency(std::time::Duration::from_secs(5));
    let proxy = start_proxy(&one_service_yaml(&[backend.address], "")).await;
    let request = http::Request::get(format!("http://{}/", edge(&proxy)))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let gave_up = tokio::time::timeout(
        std::time::Duration::from_millis(200),
        client().request(request),
    )
    .await;
    assert!(
        gave_up.is_err(),
        "the backend answered before the client gave up"
    );
    let series = r#"luas_requests_total{code="4xx",listener="edge",route="all"}"#;
    let counted = eventually(std::time::Duration::from_secs(10), || async {
        sample(&metrics_text(&proxy).await, series) == Some(1.0)
    })
    .await;
    assert!(counted, "{}", metrics_text(&proxy).await);
    let metrics = metrics_text(&proxy).await;
    assert_eq!(
        sample(
            &metrics,
            r#"luas_request_duration_seconds_count{listener="edge",route="all"}"#
        ),
        Some(1.0)
    );
}
