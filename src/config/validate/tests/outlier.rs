//! `services[].outlier`.

use super::*;

fn outlier_of(outlier: &str) -> OutlierConfig {
    load(&with_service_keys(&format!("    outlier: {outlier}\n"))).services[0].outlier
}

fn outlier_issues(outlier: &str) -> Vec<ConfigIssue> {
    issues(&with_service_keys(&format!("    outlier: {outlier}\n")))
}

#[test]
fn outlier_values_and_defaults() {
    assert_eq!(outlier_of("{}"), defaults::OUTLIER);
    assert_eq!(
        outlier_of("{ enabled: false }"),
        OutlierConfig {
            enabled: false,
            ..defaults::OUTLIER
        }
    );
    assert_eq!(
        outlier_of(
            "{ enabled: true, consecutive_failures: 1, base_ejection: 1s, max_ejection: 1s,
                   max_ejected_percent: 100 }"
        ),
        OutlierConfig {
            enabled: true,
            consecutive_failures: 1,
            base_ejection: Duration::from_secs(1),
            // Equal to base_ejection: every ejection lasts the same.
            max_ejection: Duration::from_secs(1),
            max_ejected_percent: 100,
        }
    );
    assert_eq!(
        outlier_of("{ max_ejected_percent: 0 }").max_ejected_percent,
        0
    );
}

#[test]
fn bad_outlier_values() {
    let found = outlier_issues(
        "{ consecutive_failures: 0, base_ejection: 0s, max_ejection: 0s,
               max_ejected_percent: 101 }",
    );
    let message = issue_at(&found, "services[0].outlier.consecutive_failures");
    assert!(
        message.contains("consecutive_failures 0 is out of range"),
        "{message}"
    );
    assert!(message.contains("`enabled: false`"), "{message}");
    let message = issue_at(&found, "services[0].outlier.base_ejection");
    assert!(message.contains("must be greater than 0"), "{message}");
    let message = issue_at(&found, "services[0].outlier.max_ejection");
    assert!(message.contains("must be greater than 0"), "{message}");
    let message = issue_at(&found, "services[0].outlier.max_ejected_percent");
    assert!(
        message.contains("max_ejected_percent 101 is out of range"),
        "{message}"
    );
    assert!(message.contains("from 0 to 100"), "{message}");
    assert_eq!(found.len(), 4, "{found:#?}");

    // Checked even while detection is off.
    let found = outlier_issues("{ enabled: false, base_ejection: later }");
    assert!(issue_at(&found, "services[0].outlier.base_ejection").contains("\"later\""));
    assert_eq!(found.len(), 1, "{found:#?}");
}

#[test]
fn max_ejection_may_not_be_shorter_than_base_ejection() {
    let found = outlier_issues("{ base_ejection: 1m, max_ejection: 30s }");
    let message = issue_at(&found, "services[0].outlier.max_ejection");
    assert!(
        message.contains("max_ejection 30s is shorter than base_ejection 60s"),
        "{message}"
    );
    assert!(message.contains("at least `base_ejection`"), "{message}");
    assert_eq!(found.len(), 1, "{found:#?}");

    let found = outlier_issues("{ base_ejection: 10m }");
    let message = issue_at(&found, "services[0].outlier.max_ejection");
    assert!(
        message.contains("the default max_ejection 300s is shorter than base_ejection 600s"),
        "{message}"
    );
    let found = outlier_issues("{ max_ejection: 10s }");
    let message = issue_at(&found, "services[0].outlier.max_ejection");
    assert!(
        message.contains("shorter than the default base_ejection 30s"),
        "{message}"
    );
}
