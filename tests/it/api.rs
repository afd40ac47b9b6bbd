//! The admin API and `luas ctl`: weights, rollback, promote, status, with
//! meaningful exit codes and clear refusals.

use std::process::Output;
use std::time::Duration;

use crate::support::*;
use http::Method;

#[tokio::test]
async fn weights_rollback_promote_through_the_api() {
    let Canary {
        stable: _stable,
        canary: _canary,
        proxy,
    } = canary_setup((100, 0), "", "").await;

    let (status, all) = api(&proxy, Method::GET, "/api/v1/services", "").await;
    assert_eq!(status, 200);
    let web = &all["services"][0];
    assert_eq!(web["name"], "web");
    assert_eq!(web["stable_group"], "stable");
    let endpoint = &web["groups"][0]["endpoints"][0];
    for key in [
        "address",
        "ewma_ms",
        "in_flight",
        "requests",
        "errors",
        "p50_ms",
        "p99_ms",
    ] {
        assert!(endpoint.get(key).is_some(), "{key} missing from {endpoint}");
    }

    let (status, web) = api(
        &proxy,
        Method::PUT,
        "/api/v1/services/web/weights",
        r#"{"stable": 90, "canary": 10}"#,
    )
    .await;
    assert_eq!(status, 200, "{web}");
    assert_eq!(
        (weight_of(&web, "stable"), weight_of(&web, "canary")),
        (90, 10)
    );
    assert_eq!(web["groups"][1]["file_weight"], 0);

    let (status, web) = api(&proxy, Method::POST, "/api/v1/services/web/promote", "").await;
    assert_eq!(status, 200, "{web}");
    assert_eq!(
        (weight_of(&web, "stable"), weight_of(&web, "canary")),
        (0, 100)
    );
    for _ in 0..20 {
        assert_eq!(get(edge(&proxy), "/", &[]).await.body, "canary\n");
    }

    // Rolling back a fully promoted canary gives stable all traffic again.
    let (status, web) = api(&proxy, Method::POST, "/api/v1/services/web/rollback", "").await;
    assert_eq!(status, 200, "{web}");
    assert_eq!(
        (weight_of(&web, "stable"), weight_of(&web, "canary")),
        (100, 0)
    );
    assert_eq!(
        web["replaced_by_rollback"],
        serde_json::json!({"stable": 0, "canary": 100})
    );
}

#[tokio::test]
async fn bad_changes_are_refused_and_change_nothing() {
    let Canary {
        stable: _stable,
        canary: _canary,
        proxy,
    } = canary_setup((90, 10), "", "").await;
    let cases = [
        (
            Method::PUT,
            "/api/v1/services/nope/weights",
            r#"{"stable": 1}"#,
            404,
            "no service named nope",
        ),
        (
            Method::PUT,
            "/api/v1/services/web/weights",
            r#"{"beta": 1}"#,
            400,
            "no group named beta",
        ),
        (
            Method::PUT,
            "/api/v1/services/web/weights",
            r#"{"stable": 0, "canary": 0}"#,
            400,
            "would all be 0",
        ),
        (
            Method::PUT,
            "/api/v1/services/web/weights",
            r#"{"stable": -1}"#,
            400,
            "JSON object",
        ),
        (
            Method::PUT,
            "/api/v1/services/web/weights",
            "not json",
            400,
            "JSON object",
        ),
        (
            Method::POST,
            "/api/v1/services/web/promote",
            r#"{"group": "beta"}"#,
            400,
            "no group named beta",
        ),
        (
            Method::POST,
            "/api/v1/reload",
            "",
            409,
            "not started from a config file",
        ),
    ];
    for (method, path, body, expected, message) in cases {
        let (status, answer) = api(&proxy, method.clone(), path, body).await;
        assert_eq!(
            status.as_u16(),
            expected,
            "{method} {path} {body}: {answer}"
        );
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(message), "{method} {path}: {error}");
    }
    let (_, web) = api(&proxy, Method::GET, "/api/v1/services/web", "").await;
    assert_eq!(
        (weight_of(&web, "stable"), weight_of(&web, "canary")),
        (90, 10)
    );
}

async fn ctl(proxy: &Running, args: &[&str]) -> Output {
    let admin = format!("http://{}", proxy.admin_address());
    tokio::process::Command::new(env!("CARGO_BIN_EXE_luas"))
        .arg("ctl")
        .args(["--admin", &admin])
        .args(args)
        .output()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_changes_weights_and_reports_with_exit_codes() {
    let Canary {
        stable: _stable,
        canary: _canary,
        proxy,
    } = canary_setup((100, 0), "", "").await;

    let output = ctl(&proxy, &["weights", "web", "stable=90", "canary=10"]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("group canary     weight   10  share  10.0 %  (file: 0)"),
        "{text}"
    );

    let output = ctl(&proxy, &["--json", "status", "web"]).await;
    assert!(output.status.success());
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(weight_of(&json, "canary"), 10);

    let output = ctl(&proxy, &["rollback", "web"]).await;
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("rolled back; weights before"));
    let (_, web) = api(&proxy, Method::GET, "/api/v1/services/web", "").await;
    assert_eq!(weight_of(&web, "canary"), 0);

    let output = ctl(&proxy, &["status"]).await;
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("service web"));

    // Refusals exit 1 with the reason, bad usage 2, an unreachable admin 3.
    let output = ctl(&proxy, &["weights", "web", "beta=1"]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no group named beta"));
    let output = ctl(&proxy, &["weights", "web", "canary:1"]).await;
    assert_eq!(output.status.code(), Some(2));
    let output = ctl(&proxy, &["promote", "nope"]).await;
    assert_eq!(output.status.code(), Some(1));
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_luas"))
        .args(["ctl", "--admin", &closed.to_string(), "status"])
        .output()
        .await
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A POST to the admin API with an optional bearer token.
async fn post_with_token(proxy: &Running, path: &str, token: Option<&str>) -> Answer {
    let mut request = http::Request::post(format!("http://{}{path}", proxy.admin_address()));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = request
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let response = client().request(request).await.unwrap();
    Answer::from(response).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_file_guards_changes_and_ctl_sends_the_token() {
    let (
        Canary {
            stable: _stable,
            canary: _canary,
            proxy,
        },
        token_file,
    ) = canary_setup_with_token((50, 50), "s3cret-token-value").await;

    let refused = post_with_token(&proxy, "/api/v1/services/web/rollback", None).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert_eq!(refused.header("www-authenticate"), Some("Bearer"));
    let wrong = post_with_token(&proxy, "/api/v1/services/web/rollback", Some("guess")).await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert!(
        !wrong.body.contains("s3cret"),
        "the token never appears in answers"
    );
    let (_, web) = api(&proxy, Method::GET, "/api/v1/services/web", "").await;
    assert_eq!(
        weight_of(&web, "canary"),
        50,
        "refused changes change nothing"
    );

    let accepted = post_with_token(
        &proxy,
        "/api/v1/services/web/rollback",
        Some("s3cret-token-value"),
    )
    .await;
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    let (status, web) = api(&proxy, Method::GET, "/api/v1/services/web", "").await;
    assert_eq!(status, 200, "reading needs no token");
    assert_eq!(weight_of(&web, "canary"), 0);
    assert_eq!(
        get(proxy.admin_address(), "/metrics", &[]).await.status,
        200
    );

    let without = ctl(&proxy, &["weights", "web", "stable=90", "canary=10"]).await;
    assert_eq!(
        without.status.code(),
        Some(1),
        "ctl without the token is refused"
    );
    let token_arg = token_file.display().to_string();
    let with = ctl(
        &proxy,
        &[
            "--token-file",
            &token_arg,
            "weights",
            "web",
            "stable=90",
            "canary=10",
        ],
    )
    .await;
    assert!(
        with.status.success(),
        "{}",
        String::from_utf8_lossy(&with.stderr)
    );
    let (_, web) = api(&proxy, Method::GET, "/api/v1/services/web", "").await;
    assert_eq!(weight_of(&web, "canary"), 10);
}

#[tokio::test]
async fn history_keeps_per_second_points_and_endpoint_distributions() {
    let Canary {
        stable,
        canary: _canary,
        proxy,
    } = canary_setup((100, 0), "", "").await;
    let edge = edge(&proxy);
    for _ in 0..40 {
        assert_eq!(get(edge, "/", &[]).await.status, 200);
    }
    // The sampler runs once a second: wait until a sample has seen them all.
    let counted_all = |history: &serde_json::Value| {
        let endpoints = history["services"][0]["endpoints"].as_array().cloned();
        endpoints.unwrap_or_default().iter().any(|endpoint| {
            let counts = endpoint["distribution"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            counts
                .iter()
                .map(|b| b["count"].as_u64().unwrap())
                .sum::<u64>()
                == 40
        })
    };
    let sampled = eventually(Duration::from_secs(10), || async {
        counted_all(&api(&proxy, Method::GET, "/api/v1/history", "").await.1)
    })
    .await;
    let (_, history) = api(&proxy, Method::GET, "/api/v1/history", "").await;
    assert!(
        sampled,
        "40 requests never showed in the history: {history}"
    );
    assert_eq!(history["interval_ms"], 1000);
    let web = &history["services"][0];
    assert_eq!(web["name"], "web");
    let stable_group = web["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|group| group["name"] == "stable")
        .unwrap();
    let points = stable_group["t"].as_array().unwrap().len();
    assert!(points >= 1);
    for column in ["rps", "p99_ms", "error_rate", "weight"] {
        assert_eq!(
            stable_group[column].as_array().unwrap().len(),
            points,
            "{column}"
        );
    }
    assert_eq!(stable_group["weight"][points - 1], 100);
    let requests: f64 = stable_group["rps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rps| rps.as_f64().unwrap())
        .sum();
    assert!(requests > 0.0, "{stable_group}");
    let endpoint = web["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|endpoint| endpoint["address"] == stable.address.to_string())
        .unwrap();
    assert_eq!(endpoint["group"], "stable");
    let last = endpoint["distribution"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert!(last["le"].is_null(), "the last bucket is +Inf: {last}");

    // The services answer carries the endpoint's recent rate and health.
    let (_, service) = api(&proxy, Method::GET, "/api/v1/services/web", "").await;
    let listed = &service["groups"][0]["endpoints"][0];
    assert_eq!(listed["healthy"], true);
    assert!(listed["rps"].as_f64().unwrap() > 0.0, "{listed}");
    assert_eq!(listed["error_rate"], 0.0);
    assert!(listed["p90_ms"].as_f64().is_some());
}

#[tokio::test]
async fn the_dashboard_page_is_served_with_a_strict_policy() {
    let Canary { proxy, .. } = canary_setup((100, 0), "", "").await;
    let page = get(proxy.admin_address(), "/", &[]).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(page.body.contains("<html"), "{}", page.body);
    let policy = page.header("content-security-policy").unwrap();
    assert!(policy.contains("default-src 'self'"), "{policy}");
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    let missing = get(proxy.admin_address(), "/dashboard/nothing.js", &[]).await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn changes_from_another_sites_page_are_refused() {
    let Canary { proxy, .. } = canary_setup((90, 10), "", "").await;
    let admin = proxy.admin_address();
    let rollback = |headers: Vec<(&'static str, String)>| {
        let mut request =
            http::Request::post(format!("http://{admin}/api/v1/services/web/rollback"));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let request = request
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        async move { Answer::from(client().request(request).await.unwrap()).await }
    };
    let forged = rollback(vec![("origin", "http://evil.example".into())]).await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let forged = rollback(vec![("sec-fetch-site", "cross-site".into())]).await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let (_, web) = api(&proxy, Method::GET, "/api/v1/services/web", "").await;
    assert_eq!(
        weight_of(&web, "canary"),
        10,
        "refused changes change nothing"
    );

    let own_page = rollback(vec![
        ("origin", format!("http://{admin}")),
        ("sec-fetch-site", "same-origin".into()),
    ])
    .await;
    assert_eq!(own_page.status, 200, "{}", own_page.body);
    let (_, web) = api(&proxy, Method::GET, "/api/v1/services/web", "").await;
    assert_eq!(weight_of(&web, "canary"), 0);
}
