//! Leaf values anywhere in the file: addresses and durations.

use super::*;

#[test]
fn unparsable_addresses() {
    let text = "\
admin: { listen: localhost:9901 }
listeners:
  - { name: edge, listen: 8080, routes: [{ name: r, service: web }] }
  - { name: v6, listen: '::1:8080', routes: [{ name: r, service: web }] }
services:
  - { name: web, endpoints: [127.0.0.1:1, 10.0.0.300:80, 127.0.0.1] }
";
    let found = issues(text);
    let message = issue_at(&found, "admin.listen");
    assert!(
        message.contains("invalid address \"localhost:9901\""),
        "{message}"
    );
    assert!(message.contains("expected IP:port"), "{message}");
    assert!(issue_at(&found, "listeners[0].listen").contains("\"8080\""));
    assert!(issue_at(&found, "listeners[1].listen").contains("[::1]:8080"));
    assert!(issue_at(&found, "services[0].endpoints[1]").contains("\"10.0.0.300:80\""));
    assert!(issue_at(&found, "services[0].endpoints[2]").contains("\"127.0.0.1\""));
    assert_eq!(found.len(), 5, "{found:#?}");
}

#[test]
fn bad_durations_name_the_key_and_value() {
    let found = issues(&with_services(
        "  - name: web
    endpoints: [127.0.0.1:1]
    timeouts: { connect: 1x, request: '-1s' }
    ewma: { decay: 10, default_rtt: fast, failure_penalty: 1.5 }
shutdown: { grace_period: soon }
",
    ));
    let message = issue_at(&found, "services[0].timeouts.connect");
    assert!(
        message.starts_with("invalid duration \"1x\": "),
        "{message}"
    );
    assert!(message.contains("e.g. 250ms"), "{message}");
    assert!(issue_at(&found, "services[0].timeouts.request").contains("negative"));
    assert!(issue_at(&found, "services[0].ewma.decay").contains("no unit"));
    assert!(issue_at(&found, "services[0].ewma.default_rtt").contains("\"fast\""));
    assert!(issue_at(&found, "services[0].ewma.failure_penalty").contains("\"1.5\""));
    assert!(issue_at(&found, "shutdown.grace_period").contains("\"soon\""));
    assert_eq!(found.len(), 6, "{found:#?}");
}

#[test]
fn zero_durations_where_they_make_no_sense() {
    let found = issues(&with_services(
        "  - name: web
    endpoints: [127.0.0.1:1]
    timeouts: { connect: 0s, request: 0ms }
    ewma: { decay: 0s, default_rtt: 0s, failure_penalty: 0s }
shutdown: { grace_period: 0s }
",
    ));
    let message = issue_at(&found, "services[0].timeouts.connect");
    assert!(message.contains("must be greater than 0"), "{message}");
    assert!(issue_at(&found, "services[0].timeouts.request").contains("greater than 0"));
    assert!(issue_at(&found, "services[0].ewma.decay").contains("greater than 0"));
    // Zero is meaningful for these.
    assert_eq!(
        paths(&found),
        [
            "services[0].timeouts.connect",
            "services[0].timeouts.request",
            "services[0].ewma.decay"
        ]
    );
}
