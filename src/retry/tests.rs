use std::time::Duration;

use super::*;
use crate::config::RetryOn;
use crate::grpc::StatusSet;

const OK: Tried = Tried::Response(StatusCode::OK);
const UNAVAILABLE: Tried = Tried::Response(StatusCode::SERVICE_UNAVAILABLE);
/// A trailers-only gRPC UNAVAILABLE under HTTP 200.
const GRPC_UNAVAILABLE: Tried = Tried::GrpcResponse(StatusCode::OK, 14);
const GRPC_INVALID: Tried = Tried::GrpcResponse(StatusCode::OK, 3);
const GRPC_UNDER_503: Tried = Tried::GrpcResponse(StatusCode::SERVICE_UNAVAILABLE, 14);

/// Every outcome; the match makes a new variant fail to compile until the
/// tables below know it.
fn every_outcome() -> [Tried; 10] {
    for tried in [OK, Tried::NotSent] {
        match tried {
            Tried::Response(_)
            | Tried::GrpcResponse(..)
            | Tried::NotSent
            | Tried::Stale
            | Tried::Reset
            | Tried::TimedOut
            | Tried::ClientBody => {}
        }
    }
    [
        OK,
        UNAVAILABLE,
        GRPC_UNAVAILABLE,
        GRPC_INVALID,
        GRPC_UNDER_503,
        Tried::NotSent,
        Tried::Stale,
        Tried::Reset,
        Tried::TimedOut,
        Tried::ClientBody,
    ]
}

fn policy(attempts: u32, on: RetryOn) -> RetryConfig {
    RetryConfig {
        attempts,
        on,
        per_try_timeout: None,
        buffer_bytes: 64 * 1024,
        budget_ratio: 0.2,
        budget_min_per_second: 10,
    }
}

const ALL: RetryOn = RetryOn {
    server_error: true,
    reset: true,
    timeout: true,
    grpc: StatusSet::of(&[14]),
};
const NONE: RetryOn = RetryOn {
    server_error: false,
    reset: false,
    timeout: false,
    grpc: StatusSet::EMPTY,
};

/// A first try of a replayable request, with endpoints left.
const FIRST: Attempt = Attempt {
    retries: 0,
    resends: 0,
    replayable: true,
    untried_left: true,
    endpoints_tried: 1,
};

/// The budget: ten seconds of 10 retries a second, or none at all.
fn budget(left: bool, now: Instant) -> RetryBudget {
    RetryBudget::new(0.2, if left { 10 } else { 0 }, now)
}

fn decide(
    tried: Tried,
    policy: &RetryConfig,
    attempt: Attempt,
    late: bool,
    paid: bool,
) -> Decision {
    let now = Instant::now();
    let deadline = if late {
        now
    } else {
        now + Duration::from_secs(1)
    };
    next(tried, policy, &attempt, now, deadline, &budget(paid, now))
}

fn go(next: Next) -> Decision {
    Decision {
        next,
        budget_exhausted: false,
    }
}

const RESPOND: Next = Next::Respond;
const FAIL: Next = Next::Fail(Failure::LastError);

#[test]
fn the_table() {
    let all = policy(2, ALL);
    let none = policy(2, NONE);
    let no_attempts = policy(0, ALL);
    let five_xx = policy(
        2,
        RetryOn {
            server_error: true,
            ..NONE
        },
    );
    let used_up = Attempt {
        retries: 2,
        ..FIRST
    };
    let streamed = Attempt {
        replayable: false,
        ..FIRST
    };
    let resent_enough = Attempt {
        resends: MAX_RESENDS,
        ..FIRST
    };
    let all_tried = Attempt {
        untried_left: false,
        endpoints_tried: 2,
        ..FIRST
    };
    let exhausted = |next| Decision {
        next,
        budget_exhausted: true,
    };
    #[rustfmt::skip]
    let rows: &[(&str, Tried, &RetryConfig, Attempt, bool, bool, Decision)] = &[
        // name                                   outcome          policy        attempt        late   paid   decision
        ("2xx goes to the client",                OK,              &all,         FIRST,         false, true,  go(RESPOND)),
        ("5xx retried",                           UNAVAILABLE,     &all,         FIRST,         false, true,  go(Next::TryOther(Retry::ServerError))),
        ("5xx not named: respond",                UNAVAILABLE,     &none,        FIRST,         false, true,  go(RESPOND)),
        ("5xx, no attempts configured",           UNAVAILABLE,     &no_attempts, FIRST,         false, true,  go(RESPOND)),
        ("5xx, attempts used up",                 UNAVAILABLE,     &all,         used_up,       false, true,  go(RESPOND)),
        ("5xx, body streamed",                    UNAVAILABLE,     &all,         streamed,      false, true,  go(RESPOND)),
        ("5xx, deadline passed",                  UNAVAILABLE,     &all,         FIRST,         true,  true,  go(RESPOND)),
        ("5xx, budget exhausted",                 UNAVAILABLE,     &all,         FIRST,         false, false, exhausted(RESPOND)),
        ("not sent: another endpoint",            Tried::NotSent,  &none,        FIRST,         false, false, go(Next::TryOther(Retry::NotSent))),
        ("not sent, even streamed",               Tried::NotSent,  &none,        streamed,      false, false, go(Next::TryOther(Retry::NotSent))),
        ("not sent, resends used up",             Tried::NotSent,  &all,         resent_enough, false, true,  go(FAIL)),
        ("not sent, one endpoint only",           Tried::NotSent,  &all,         Attempt { untried_left: false, ..FIRST }, false, true, go(FAIL)),
        ("not sent by every endpoint: down",      Tried::NotSent,  &all,         all_tried,     false, true,  go(Next::Fail(Failure::Unreachable))),
        ("not sent by all after a retry",         Tried::NotSent,  &all,         Attempt { retries: 1, ..all_tried }, false, true, go(FAIL)),
        ("stale: send again",                     Tried::Stale,    &none,        FIRST,         false, false, go(Next::TryOther(Retry::Stale))),
        ("stale, past the deadline too",          Tried::Stale,    &none,        FIRST,         true,  false, go(Next::TryOther(Retry::Stale))),
        ("stale, streamed: a reset",              Tried::Stale,    &all,         streamed,      false, true,  go(FAIL)),
        ("stale, resends used up: retried reset", Tried::Stale,    &all,         resent_enough, false, true,  go(Next::TryOther(Retry::Reset))),
        ("stale, resends used up, not named",     Tried::Stale,    &none,        resent_enough, false, true,  go(FAIL)),
        ("reset retried",                         Tried::Reset,    &all,         FIRST,         false, true,  go(Next::TryOther(Retry::Reset))),
        ("reset not named",                       Tried::Reset,    &none,        FIRST,         false, true,  go(FAIL)),
        ("reset, attempts used up",               Tried::Reset,    &all,         used_up,       false, true,  go(FAIL)),
        ("reset, body streamed",                  Tried::Reset,    &all,         streamed,      false, true,  go(FAIL)),
        ("reset, deadline passed",                Tried::Reset,    &all,         FIRST,         true,  true,  go(FAIL)),
        ("reset, budget exhausted",               Tried::Reset,    &all,         FIRST,         false, false, exhausted(FAIL)),
        ("timeout retried",                       Tried::TimedOut, &all,         FIRST,         false, true,  go(Next::TryOther(Retry::Timeout))),
        ("timeout not named",                     Tried::TimedOut, &none,        FIRST,         false, true,  go(FAIL)),
        ("timeout, no attempts configured",       Tried::TimedOut, &no_attempts, FIRST,         false, true,  go(FAIL)),
        ("timeout, deadline passed",              Tried::TimedOut, &all,         FIRST,         true,  true,  go(FAIL)),
        ("timeout, budget exhausted",             Tried::TimedOut, &all,         FIRST,         false, false, exhausted(FAIL)),
        ("client body: never retried",            Tried::ClientBody, &all,       FIRST,         false, true,  go(FAIL)),
        ("gRPC unavailable retried",              GRPC_UNAVAILABLE, &all,        FIRST,         false, true,  go(Next::TryOther(Retry::Grpc))),
        ("gRPC unavailable not named",            GRPC_UNAVAILABLE, &none,       FIRST,         false, true,  go(RESPOND)),
        ("gRPC, body streamed",                   GRPC_UNAVAILABLE, &all,        streamed,      false, true,  go(RESPOND)),
        ("gRPC, budget exhausted",                GRPC_UNAVAILABLE, &all,        FIRST,         false, false, exhausted(RESPOND)),
        ("gRPC invalid-argument: the client's",   GRPC_INVALID,     &all,        FIRST,         false, true,  go(RESPOND)),
        ("gRPC under a 503: retried as 5xx",      GRPC_UNDER_503,   &all,        FIRST,         false, true,  go(Next::TryOther(Retry::Grpc))),
        ("gRPC under a 503, only 5xx named",      GRPC_UNDER_503,   &five_xx,    FIRST,         false, true,  go(Next::TryOther(Retry::ServerError))),
    ];
    for (name, tried, policy, attempt, late, paid, expected) in rows {
        let got = decide(*tried, policy, *attempt, *late, *paid);
        assert_eq!(got, *expected, "{name}");
    }
    // Every outcome has a row.
    for tried in every_outcome() {
        assert!(
            rows.iter().any(|row| row.1 == tried),
            "{tried:?} has no row"
        );
    }
}

/// Every outcome under every `retry.on` combination and every state of the
/// request, against the rule stated plainly: a configured retry exactly
/// when the policy names the outcome and attempts, body, deadline and budget
/// all allow it; free resends never depend on the policy.
#[test]
fn every_outcome_under_every_policy() {
    let flags = [false, true];
    for tried in every_outcome() {
        for (server_error, reset, timeout) in flags
            .iter()
            .flat_map(|&a| flags.iter().flat_map(move |&b| flags.map(|c| (a, b, c))))
        {
            for grpc_unavailable in flags {
                let on = RetryOn {
                    server_error,
                    reset,
                    timeout,
                    grpc: if grpc_unavailable {
                        StatusSet::of(&[14])
                    } else {
                        StatusSet::EMPTY
                    },
                };
                for attempts in [0, 1] {
                    for replayable in flags {
                        for late in flags {
                            for paid in flags {
                                for resends in [0, MAX_RESENDS] {
                                    let attempt = Attempt {
                                        resends,
                                        replayable,
                                        ..FIRST
                                    };
                                    let got =
                                        decide(tried, &policy(attempts, on), attempt, late, paid);
                                    let resend_left = resends < MAX_RESENDS;
                                    let named = match tried {
                                        Tried::Response(status) => {
                                            status.is_server_error() && server_error
                                        }
                                        Tried::GrpcResponse(status, code) => {
                                            code == 14 && grpc_unavailable
                                                || status.is_server_error() && server_error
                                        }
                                        Tried::Stale => reset && !(replayable && resend_left),
                                        Tried::Reset => reset,
                                        Tried::TimedOut => timeout,
                                        Tried::NotSent | Tried::ClientBody => false,
                                    };
                                    let allowed = named && attempts > 0 && replayable && !late;
                                    let free = match tried {
                                        Tried::NotSent => resend_left,
                                        Tried::Stale => replayable && resend_left,
                                        _ => false,
                                    };
                                    let case = format!(
                                    "{tried:?} {on:?} attempts={attempts} replayable={replayable} late={late} paid={paid} resends={resends}"
                                );
                                    let retried = matches!(got.next, Next::TryOther(_));
                                    assert_eq!(retried, free || allowed && paid, "{case}");
                                    assert_eq!(got.budget_exhausted, allowed && !paid, "{case}");
                                    if !retried {
                                        let expected = match tried {
                                            Tried::Response(_) | Tried::GrpcResponse(..) => {
                                                Next::Respond
                                            }
                                            _ => FAIL,
                                        };
                                        assert_eq!(got.next, expected, "{case}");
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn a_retry_the_budget_pays_for_is_withdrawn() {
    let now = Instant::now();
    let budget = RetryBudget::new(0.2, 0, now);
    for _ in 0..10 {
        budget.deposit(now);
    }
    // Ten requests pay for two retries.
    let all = policy(5, ALL);
    let deadline = now + Duration::from_secs(1);
    let decisions: Vec<Next> = (0..3)
        .map(|_| next(Tried::Reset, &all, &FIRST, now, deadline, &budget).next)
        .collect();
    assert_eq!(
        decisions,
        [
            Next::TryOther(Retry::Reset),
            Next::TryOther(Retry::Reset),
            FAIL
        ]
    );
    // Refusals withdraw nothing: a free resend does not touch the budget.
    assert_eq!(
        next(Tried::NotSent, &all, &FIRST, now, deadline, &budget).next,
        Next::TryOther(Retry::NotSent)
    );
}

#[test]
fn counting() {
    let mut attempt = FIRST;
    attempt.count(Retry::NotSent);
    attempt.count(Retry::Stale);
    attempt.count(Retry::ServerError);
    attempt.count(Retry::Reset);
    attempt.count(Retry::Timeout);
    attempt.count(Retry::Grpc);
    assert_eq!((attempt.resends, attempt.retries), (2, 4));
}
