//! `listeners[].limits`: defaults, ranges, sizes.

use super::*;

/// The standard config with `limits` (a flow mapping) on its listener.
fn with_limits(limits: &str) -> String {
    format!(
        "\
listeners:
  - name: edge
    listen: 0.0.0.0:8080
    routes:
      - {{ name: all, service: web }}
    limits: {limits}
services:
  - {{ name: web, endpoints: [127.0.0.1:9000] }}
"
    )
}

fn limits_of(limits: &str) -> ListenerLimits {
    load(&with_limits(limits)).listeners[0].limits
}

#[test]
fn limits_keep_the_defaults_of_keys_not_given() {
    assert_eq!(limits_of("{}"), defaults::LIMITS);
    assert_eq!(limits_of("~"), defaults::LIMITS);
    let limits = limits_of("{ max_headers: 20, body_timeout: 1m }");
    assert_eq!(
        limits,
        ListenerLimits {
            max_headers: 20,
            body_timeout: Duration::from_secs(60),
            ..defaults::LIMITS
        }
    );
}

#[test]
fn limits_edge_values_are_accepted() {
    let low = limits_of(
        "{ max_connections: 1, header_read_timeout: 1ms, max_header_bytes: 8KiB,
               max_headers: 1, max_body_bytes: 1, body_timeout: 1ms, idle_timeout: 1ms,
               h2_max_concurrent_streams: 1 }",
    );
    assert_eq!(
        low,
        ListenerLimits {
            max_connections: 1,
            header_read_timeout: Duration::from_millis(1),
            max_header_bytes: 8192,
            max_headers: 1,
            max_body_bytes: Some(1),
            body_timeout: Duration::from_millis(1),
            idle_timeout: Duration::from_millis(1),
            h2_max_concurrent_streams: 1,
        }
    );
    let high = limits_of(
        "{ max_header_bytes: 1MiB, max_headers: 1000, h2_max_concurrent_streams: 10000,
               max_body_bytes: 17179869183GiB }",
    );
    assert_eq!(high.max_header_bytes, 1 << 20);
    assert_eq!(high.max_headers, 1000);
    assert_eq!(high.h2_max_concurrent_streams, 10_000);
    assert_eq!(high.max_body_bytes, Some(u64::MAX - (1 << 30) + 1));
    // A plain number is bytes; 8192 is the smallest header limit.
    assert_eq!(
        limits_of("{ max_header_bytes: 8192 }").max_header_bytes,
        8192
    );
    assert_eq!(
        limits_of("{ max_header_bytes: 1048576 }").max_header_bytes,
        1 << 20
    );
}

#[test]
fn sizes_in_every_form() {
    let cases = [
        ("512B", 512),
        ("10KB", 10_000),
        ("10MB", 10_000_000),
        ("1GB", 1_000_000_000),
        ("64KiB", 65_536),
        ("10MiB", 10 << 20),
        ("1GiB", 1 << 30),
        ("12345", 12_345),
        ("'12345'", 12_345),
    ];
    for (value, expected) in cases {
        let limits = limits_of(&format!("{{ max_body_bytes: {value} }}"));
        assert_eq!(limits.max_body_bytes, Some(expected), "{value}");
    }
}

#[test]
fn bad_limits_name_their_key() {
    let found = issues(&with_limits(
        "{ max_connections: 0, header_read_timeout: 0s, max_header_bytes: 8191,
               max_headers: 0, max_body_bytes: 0, body_timeout: 0ms, idle_timeout: 0s,
               h2_max_concurrent_streams: 0 }",
    ));
    let at = |key: &str| issue_at(&found, &format!("listeners[0].limits.{key}"));
    let message = at("max_connections");
    assert!(
        message.contains("max_connections 0 is out of range"),
        "{message}"
    );
    assert!(message.contains("e.g. 10000"), "{message}");
    let message = at("header_read_timeout");
    assert!(message.contains("must be greater than 0"), "{message}");
    let message = at("max_header_bytes");
    assert!(
        message.contains("max_header_bytes 8191 is below the minimum 8KiB"),
        "{message}"
    );
    assert!(
        message.contains("hyper's smallest read buffer"),
        "{message}"
    );
    assert!(message.contains("e.g. 64KiB"), "{message}");
    let message = at("max_headers");
    assert!(
        message.contains("max_headers 0 is out of range"),
        "{message}"
    );
    assert!(message.contains("from 1 to 1000"), "{message}");
    let message = at("max_body_bytes");
    assert!(
        message.contains("max_body_bytes 0 is below the minimum 1 byte;"),
        "{message}"
    );
    assert!(message.contains("remove the key for no limit"), "{message}");
    assert!(at("body_timeout").contains("greater than 0"));
    assert!(at("idle_timeout").contains("greater than 0"));
    let message = at("h2_max_concurrent_streams");
    assert!(message.contains("0 is out of range"), "{message}");
    assert!(message.contains("from 1 to 10000"), "{message}");
    assert_eq!(found.len(), 8, "{found:#?}");
}

#[test]
fn limits_above_their_range() {
    let found = issues(&with_limits(
        "{ max_header_bytes: 2MiB, max_headers: 1001, h2_max_concurrent_streams: 10001 }",
    ));
    let message = issue_at(&found, "listeners[0].limits.max_header_bytes");
    assert!(
        message.contains("max_header_bytes \"2MiB\" (2097152 bytes) is above the maximum 1MiB"),
        "{message}"
    );
    assert!(issue_at(&found, "listeners[0].limits.max_headers").contains("1001"));
    assert!(issue_at(&found, "listeners[0].limits.h2_max_concurrent_streams").contains("10001"));
    assert_eq!(found.len(), 3, "{found:#?}");

    let found = issues(&with_limits("{ max_header_bytes: 4KiB }"));
    let message = issue_at(&found, "listeners[0].limits.max_header_bytes");
    assert!(
        message.contains("\"4KiB\" (4096 bytes) is below the minimum 8KiB"),
        "{message}"
    );
}

#[test]
fn malformed_sizes_and_durations_in_limits() {
    let cases = [
        ("64kb", "unknown unit \"kb\""),
        ("64 KiB", "unknown unit \" KiB\""),
        ("-1", "it is negative"),
        ("1.5", "not a whole number"),
        ("1.5MiB", "not a whole number"),
        ("''", "it is empty"),
        ("big", "does not start with a number"),
        ("99999999999GiB", "too large"),
    ];
    for (value, expected) in cases {
        let found = issues(&with_limits(&format!("{{ max_header_bytes: {value} }}")));
        let message = issue_at(&found, "listeners[0].limits.max_header_bytes");
        assert!(message.starts_with("invalid size "), "{value}: {message}");
        assert!(message.contains(expected), "{value}: {message}");
        assert!(message.contains("e.g. 512B, 64KiB, 10MB"), "{message}");
        assert_eq!(found.len(), 1, "{found:#?}");
    }
    let found = issues(&with_limits(
        "{ header_read_timeout: 10, body_timeout: soon, idle_timeout: 1x }",
    ));
    assert!(issue_at(&found, "listeners[0].limits.header_read_timeout").contains("no unit"));
    assert!(issue_at(&found, "listeners[0].limits.body_timeout").contains("\"soon\""));
    assert!(issue_at(&found, "listeners[0].limits.idle_timeout").contains("\"1x\""));
    assert_eq!(found.len(), 3, "{found:#?}");
}

#[test]
fn limits_of_the_second_listener_have_its_path() {
    let text = "\
listeners:
  - { name: a, listen: 0.0.0.0:80, routes: [{ name: r, service: web }] }
  - name: b
    listen: 0.0.0.0:81
    routes: [{ name: r, service: web }]
    limits: { max_headers: 5000 }
services:
  - { name: web, endpoints: [127.0.0.1:1] }
";
    let found = issues(text);
    assert_eq!(paths(&found), ["listeners[1].limits.max_headers"]);
}

#[test]
fn show_size_picks_an_exact_unit() {
    assert_eq!(show_size(0), "0 bytes");
    assert_eq!(show_size(1), "1 byte");
    assert_eq!(show_size(1000), "1000 bytes");
    assert_eq!(show_size(8192), "8KiB");
    assert_eq!(show_size(1536 * 1024), "1536KiB");
    assert_eq!(show_size(16 << 20), "16MiB");
    assert_eq!(show_size(2 << 30), "2GiB");
}
