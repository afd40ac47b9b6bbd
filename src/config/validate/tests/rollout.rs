//! `rollout`: its group, steps, durations and thresholds.

use super::*;

/// A service `web` with groups `stable` and `canary`, and `rollout` as given.
fn with_rollout(rollout: &str) -> String {
    with_services(&format!(
        "  - name: web
    groups:
      - {{ name: stable, weight: 95, endpoints: [127.0.0.1:1] }}
      - {{ name: canary, weight: 5, endpoints: [127.0.0.1:2] }}
    rollout: {rollout}
"
    ))
}

fn rollout_of(text: &str) -> RolloutConfig {
    load(text).services[0].rollout.clone().unwrap()
}

#[test]
fn rollout_defaults() {
    let rollout = rollout_of(&with_rollout(
        "{ group: canary, steps: [50, 100], interval: 30s }",
    ));
    assert_eq!(
        rollout,
        RolloutConfig {
            group: "canary".into(),
            steps: vec![50, 100],
            interval: Duration::from_secs(30),
            min_requests: 100,
            max_error_rate: 0.01,
            max_p99_ratio: 1.5,
            tick: defaults::ROLLOUT_TICK,
        }
    );
}

#[test]
fn rollout_edge_values_are_accepted() {
    let rollout = rollout_of(&with_rollout(
        "{ group: canary, steps: [1, 100], interval: 1s, tick: 1s, min_requests: 0,
               max_error_rate: 0, max_p99_ratio: 0.5 }",
    ));
    assert_eq!(rollout.steps, [1, 100]);
    // A tick equal to the interval is fine.
    assert_eq!(rollout.tick, rollout.interval);
    assert_eq!(rollout.min_requests, 0);
    assert_eq!(rollout.max_error_rate, 0.0);
    assert_eq!(rollout.max_p99_ratio, 0.5);
}

#[test]
fn max_error_rate_forms() {
    let cases = [
        ("1%", 0.01),
        ("0.5%", 0.005),
        ("'25%'", 0.25),
        ("100%", 1.0),
        ("0%", 0.0),
        ("0.02", 0.02),
        ("1", 1.0),
        ("0", 0.0),
    ];
    for (value, expected) in cases {
        let rollout = rollout_of(&with_rollout(&format!(
            "{{ group: canary, steps: [100], interval: 1m, max_error_rate: {value} }}"
        )));
        assert_eq!(rollout.max_error_rate, expected, "{value}");
    }
}

#[test]
fn bad_max_error_rates() {
    let cases = [
        ("5", "this is 500%; to mean 5 percent write `5%`"),
        ("1.5", "to mean 1.5 percent write `1.5%`"),
        ("250", "max_error_rate 250 is out of range"),
        ("-0.1", "max_error_rate -0.1 is out of range"),
        (".nan", "is out of range"),
        ("150%", "\"150%\" is above 100%"),
        ("'0.01'", "\"0.01\" has no '%'"),
        ("one", "\"one\" has no '%'"),
        ("-1%", "\"-1%\" is not a percentage"),
        ("'.5%'", "is not a percentage"),
        ("'1e1%'", "is not a percentage"),
        ("'inf%'", "is not a percentage"),
        ("'1 %'", "is not a percentage"),
        ("'%'", "is not a percentage"),
    ];
    for (value, expected) in cases {
        let found = issues(&with_rollout(&format!(
            "{{ group: canary, steps: [100], interval: 1m, max_error_rate: {value} }}"
        )));
        let message = issue_at(&found, "services[0].rollout.max_error_rate");
        assert!(message.contains(expected), "{value}: {message}");
        // Every message shows the percentage form.
        assert!(message.contains("1%"), "{value}: {message}");
        assert_eq!(found.len(), 1, "{found:#?}");
    }
}

#[test]
fn percentages() {
    let percent = |text| parse_percent(text, &ERROR_RATE_FORM);
    assert_eq!(percent("1%"), Ok(0.01));
    assert_eq!(percent("12.5%"), Ok(0.125));
    assert_eq!(percent("007%"), Ok(0.07));
    // Range is the caller's business.
    assert_eq!(percent("200%"), Ok(2.0));
    for bad in ["", "%", "1", "1.%", "1..2%", "+1%", "1%%", "NaN%"] {
        assert!(percent(bad).is_err(), "{bad:?}");
    }
    // Messages name the key and show its own example.
    let message = parse_percent("x", &BUDGET_RATIO_FORM).unwrap_err();
    assert!(message.starts_with("ratio \"x\" has no '%'"), "{message}");
    assert!(message.contains("such as 20%"), "{message}");
    assert!(message.contains("such as 0.2"), "{message}");
}

#[test]
fn bad_max_p99_ratio() {
    for value in ["0", "-1", ".inf", ".nan"] {
        let found = issues(&with_rollout(&format!(
            "{{ group: canary, steps: [100], interval: 1m, max_p99_ratio: {value} }}"
        )));
        let message = issue_at(&found, "services[0].rollout.max_p99_ratio");
        assert!(
            message.contains("must be a number above 0"),
            "{value}: {message}"
        );
        assert_eq!(found.len(), 1, "{found:#?}");
    }
}

#[test]
fn rollout_steps_must_climb_within_1_to_100() {
    let found = issues(&with_rollout(
        "{ group: canary, steps: [0, 5, 5, 101, 3, 50, 40], interval: 1m }",
    ));
    let message = issue_at(&found, "services[0].rollout.steps[0]");
    assert!(message.contains("step 0 is out of range"), "{message}");
    assert!(message.contains("from 1 to 100"), "{message}");
    let message = issue_at(&found, "services[0].rollout.steps[2]");
    assert!(
        message.contains("step 5 is not greater than the previous step 5"),
        "{message}"
    );
    assert!(issue_at(&found, "services[0].rollout.steps[3]").contains("101"));
    // steps[4] follows an out-of-range step, so it is not compared with it.
    let message = issue_at(&found, "services[0].rollout.steps[6]");
    assert!(message.contains("strictly increasing"), "{message}");
    assert_eq!(found.len(), 4, "{found:#?}");

    let found = issues(&with_rollout("{ group: canary, steps: [], interval: 1m }"));
    let message = issue_at(&found, "services[0].rollout.steps");
    assert!(message.contains("`steps` is empty"), "{message}");
    assert_eq!(found.len(), 1, "{found:#?}");
}

#[test]
fn rollout_durations() {
    let found = issues(&with_rollout(
        "{ group: canary, steps: [100], interval: 0s, tick: 0ms }",
    ));
    assert!(issue_at(&found, "services[0].rollout.interval").contains("greater than 0"));
    assert!(issue_at(&found, "services[0].rollout.tick").contains("greater than 0"));
    assert_eq!(found.len(), 2, "{found:#?}");

    let found = issues(&with_rollout(
        "{ group: canary, steps: [100], interval: soon, tick: 1x }",
    ));
    assert!(issue_at(&found, "services[0].rollout.interval").contains("\"soon\""));
    assert!(issue_at(&found, "services[0].rollout.tick").contains("\"1x\""));
    assert_eq!(found.len(), 2, "{found:#?}");
}

#[test]
fn rollout_tick_may_not_exceed_the_interval() {
    let found = issues(&with_rollout(
        "{ group: canary, steps: [100], interval: 10s, tick: 11s }",
    ));
    let message = issue_at(&found, "services[0].rollout.tick");
    assert!(
        message.contains("tick 11s is longer than the interval 10s"),
        "{message}"
    );
    assert!(message.contains("at most the interval"), "{message}");
    assert_eq!(found.len(), 1, "{found:#?}");

    // The default tick counts too, and the message says it was not written.
    let found = issues(&with_rollout(
        "{ group: canary, steps: [100], interval: 500ms }",
    ));
    let message = issue_at(&found, "services[0].rollout.tick");
    assert!(message.contains("the default tick 1s"), "{message}");
    let rollout = rollout_of(&with_rollout(
        "{ group: canary, steps: [100], interval: 500ms, tick: 100ms }",
    ));
    assert_eq!(rollout.tick, Duration::from_millis(100));
}

#[test]
fn rollout_of_the_stable_group() {
    let found = issues(&with_rollout(
        "{ group: stable, steps: [100], interval: 1m }",
    ));
    let message = issue_at(&found, "services[0].rollout.group");
    assert!(
        message.contains("group \"stable\" is the stable group"),
        "{message}"
    );
    assert!(
        message.contains("name another group of this service: canary"),
        "{message}"
    );
    assert_eq!(found.len(), 1, "{found:#?}");
}

#[test]
fn without_a_group_named_stable_the_first_group_is_stable() {
    let services = |group: &str| {
        with_services(&format!(
            "  - name: web
    groups:
      - {{ name: blue, endpoints: [127.0.0.1:1] }}
      - {{ name: green, weight: 0, endpoints: [127.0.0.1:2] }}
      - {{ name: stable, weight: 0, endpoints: [127.0.0.1:3] }}
      - {{ name: red, weight: 0, endpoints: [127.0.0.1:4] }}
    rollout: {{ group: {group}, steps: [100], interval: 1m }}
"
        ))
    };
    // A group named "stable" wins even when it is not first.
    assert_eq!(rollout_of(&services("blue")).group, "blue");
    let found = issues(&services("stable"));
    let message = issue_at(&found, "services[0].rollout.group");
    assert!(message.contains("blue, green, red"), "{message}");

    let text = with_services(
        "  - name: web
    groups:
      - { name: blue, endpoints: [127.0.0.1:1] }
      - { name: green, weight: 0, endpoints: [127.0.0.1:2] }
    rollout: { group: blue, steps: [100], interval: 1m }
",
    );
    let found = issues(&text);
    let message = issue_at(&found, "services[0].rollout.group");
    assert!(
        message.contains("\"blue\" is the stable group"),
        "{message}"
    );
    assert!(message.contains(": green"), "{message}");
}

#[test]
fn rollout_of_an_unknown_group() {
    let found = issues(&with_rollout(
        "{ group: canery, steps: [100], interval: 1m }",
    ));
    let message = issue_at(&found, "services[0].rollout.group");
    assert!(message.contains("unknown group \"canery\""), "{message}");
    assert!(
        message.contains("groups this service can roll out: canary"),
        "{message}"
    );
    assert_eq!(found.len(), 1, "{found:#?}");
}

#[test]
fn single_group_services_cannot_roll_out() {
    let found = issues(&with_services(
        "  - name: web
    endpoints: [127.0.0.1:1]
    rollout: { group: canary, steps: [100], interval: 1m }
  - name: api
    groups: [{ name: v1, endpoints: [127.0.0.1:2] }]
    rollout: { group: v1, steps: [100], interval: 1m }
",
    ));
    let message = issue_at(&found, "services[0].rollout");
    assert!(
        message.contains("single group (\"stable\"), so there is nothing to roll out"),
        "{message}"
    );
    assert!(message.contains("remove `rollout`"), "{message}");
    assert!(issue_at(&found, "services[1].rollout").contains("single group (\"v1\")"));
    assert_eq!(found.len(), 2, "{found:#?}");
}

#[test]
fn rollout_group_is_not_checked_when_groups_are_broken() {
    let found = issues(&with_services(
        "  - { name: web, groups: [], rollout: { group: canary, steps: [100], interval: 1m } }\n",
    ));
    assert_eq!(paths(&found), ["services[0].groups"]);
}
