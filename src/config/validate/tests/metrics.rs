//! `metrics`: buckets, the linkerd-compatible series and their namespace.

use super::*;

#[test]
fn bad_buckets() {
    let base = with_services("  - { name: web, endpoints: [127.0.0.1:1] }\n");
    let found = issues(&format!("{base}metrics: {{ buckets: [] }}\n"));
    assert!(issue_at(&found, "metrics.buckets").contains("empty"));

    let found = issues(&format!(
        "{base}metrics: {{ buckets: [0, 0.1, 0.1, 0.05, -1, .inf, .nan, 2] }}\n"
    ));
    assert!(issue_at(&found, "metrics.buckets[0]").contains("must be a positive"));
    let message = issue_at(&found, "metrics.buckets[2]");
    assert!(
        message.contains("not greater than the previous bound 0.1"),
        "{message}"
    );
    assert!(issue_at(&found, "metrics.buckets[3]").contains("strictly increasing"));
    assert!(issue_at(&found, "metrics.buckets[4]").contains("-1"));
    assert!(issue_at(&found, "metrics.buckets[5]").contains("positive"));
    assert!(issue_at(&found, "metrics.buckets[6]").contains("positive"));
    assert_eq!(found.len(), 6, "{found:#?}");
}

#[test]
fn linkerd_metrics_settings() {
    let base = with_services("  - { name: web, endpoints: [127.0.0.1:1] }\n");
    let config = load(&format!(
        "{base}metrics: {{ linkerd_compatible: true, namespace: team-a1 }}\n"
    ));
    assert!(config.metrics.linkerd_compatible);
    assert_eq!(config.metrics.namespace, "team-a1");
    // Only the keys given replace their defaults.
    let config = load(&format!("{base}metrics: {{ linkerd_compatible: false }}\n"));
    assert!(!config.metrics.linkerd_compatible);
    assert_eq!(config.metrics.namespace, defaults::NAMESPACE);
    assert_eq!(config.metrics.buckets, defaults::BUCKETS.to_vec());
    let longest = "n".repeat(63);
    let config = load(&format!("{base}metrics: {{ namespace: {longest} }}\n"));
    assert_eq!(config.metrics.namespace, longest);
}

#[test]
fn bad_namespaces() {
    let base = with_services("  - { name: web, endpoints: [127.0.0.1:1] }\n");
    let cases = [
        ("''", "is empty"),
        ("Prod", "contains upper-case 'P'"),
        ("team_a", "contains '_'"),
        ("team.a", "contains '.'"),
        ("-team", "starts or ends with '-'"),
        ("team-", "starts or ends with '-'"),
        (&"n".repeat(64), "is 64 characters long"),
    ];
    for (value, expected) in cases {
        let found = issues(&format!("{base}metrics: {{ namespace: {value} }}\n"));
        let message = issue_at(&found, "metrics.namespace");
        assert!(message.contains(expected), "{value}: {message}");
        assert!(message.contains("1 to 63 lower-case letters"), "{message}");
        assert_eq!(found.len(), 1, "{found:#?}");
    }
}

#[test]
fn kubernetes_names() {
    for good in ["a", "0", "web-canary", "a-b-c-1", &"x".repeat(63)] {
        assert_eq!(k8s_name_problem(good), None, "{good:?}");
    }
    assert_eq!(k8s_name_problem("").as_deref(), Some("is empty"));
    assert_eq!(k8s_name_problem("ab cd").as_deref(), Some("contains ' '"));
    assert_eq!(k8s_name_problem("é").as_deref(), Some("contains 'é'"));
}
