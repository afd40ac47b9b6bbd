//! The fleet's one rollout judge: the replica holding Lease
//! `luas-fleet-<name>-rollout` (15 s long, renewed every 5 s). It enters
//! rollout steps and promotes; every replica may still roll back on its own
//! traffic. When the leader dies its Lease expires and another replica takes
//! it, continuing from the step recorded in the fleet state; a leader that
//! shuts down deletes the Lease so another takes over at once.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;

use super::document::{self, expiry_millis, micro_time, millis_since_epoch};
use super::{lock, timed, Fleet};
use crate::kubernetes::WatchBackoff;

/// How long the rollout Lease lasts without renewal, and how often it is
/// renewed (or tried for).
pub(super) const LEADER_LEASE: Duration = Duration::from_secs(15);
const LEADER_RENEW: Duration = Duration::from_secs(5);

/// What one look at the rollout Lease decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Claim {
    /// Nobody holds it, or the holder let it expire: take it.
    Take,
    /// This replica holds it: renew it.
    Renew,
    /// Another replica holds it and it has not expired.
    Follow(String),
}

/// Pure: who should hold the rollout Lease, as seen by `replica` at `now`.
pub(super) fn claim(lease: Option<&LeaseSpec>, replica: &str, now: SystemTime) -> Claim {
    let Some(spec) = lease else {
        return Claim::Take;
    };
    let Some(holder) = spec.holder_identity.as_deref().filter(|h| !h.is_empty()) else {
        return Claim::Take;
    };
    if holder == replica {
        return Claim::Renew;
    }
    if millis_since_epoch(now) >= expiry_millis(spec, LEADER_LEASE) {
        Claim::Take
    } else {
        Claim::Follow(holder.to_owned())
    }
}

/// Tries for the rollout Lease and keeps it while it can.
pub(super) async fn lead(fleet: Arc<Fleet>) {
    let leases = fleet.leases();
    let name = document::rollout_lease(&fleet.name);
    // A leader that shuts down deletes the Lease: the watch says so, and a
    // follower takes it at once instead of at the next look.
    let mut released = watcher::watcher(
        leases.clone(),
        watcher::Config::default().fields(&format!("metadata.name={name}")),
    )
    .backoff(WatchBackoff::default())
    .boxed();
    loop {
        if fleet.leaving.load(Ordering::Acquire) {
            return;
        }
        let (leading, next_look) = match try_lead(&fleet, &leases, &name).await {
            Ok(looked) => looked,
            Err(error) => {
                tracing::debug!(fleet = %fleet.name, %error, "rollout Lease not read or written");
                // Without the API a leader cannot prove it still leads.
                (false, LEADER_RENEW)
            }
        };
        let was = fleet.leading.swap(leading, Ordering::AcqRel);
        if was != leading {
            tracing::info!(fleet = %fleet.name, replica = %fleet.replica, leading, "rollout leadership changed");
        }
        fleet.metrics.leader.set(i64::from(leading));
        let look_at = tokio::time::Instant::now() + next_look;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(look_at) => break,
                event = released.next() => match event {
                    Some(Ok(Event::Delete(_))) if !leading => break,
                    Some(_) => {}
                    // The watch ended (it does not, short of an abort):
                    // looking at the set times is enough.
                    None => {
                        tokio::time::sleep_until(look_at).await;
                        break;
                    }
                },
            }
        }
    }
}

/// When a follower looks again: just after the holder's Lease would
/// expire unless renewed, so followers do not poll the API every renewal
/// period, and a dead leader is replaced as soon as its Lease runs out.
fn follower_wait(spec: Option<&LeaseSpec>, now: SystemTime) -> Duration {
    let expires = spec.map_or(0, |spec| expiry_millis(spec, LEADER_LEASE));
    let left = Duration::from_millis(expires.saturating_sub(millis_since_epoch(now)));
    // A little after, so the expiry has passed when it looks; never a busy loop.
    (left + Duration::from_millis(50 + fastrand::u64(0..200))).clamp(LEADER_RENEW / 5, LEADER_LEASE)
}

/// One look at the rollout Lease: whether this replica leads, and when to
/// look again.
async fn try_lead(
    fleet: &Fleet,
    leases: &kube::Api<Lease>,
    name: &str,
) -> Result<(bool, Duration), String> {
    let current = timed(leases.get_opt(name))
        .await
        .map_err(|error| error.to_string())?;
    let now = SystemTime::now();
    let decision = claim(
        current.as_ref().and_then(|lease| lease.spec.as_ref()),
        &fleet.replica,
        now,
    );
    if let Claim::Follow(holder) = &decision {
        *lock(&fleet.leader) = Some(holder.clone());
        let spec = current.as_ref().and_then(|lease| lease.spec.as_ref());
        return Ok((false, follower_wait(spec, now)));
    }
    let transitions = current
        .as_ref()
        .and_then(|lease| lease.spec.as_ref())
        .and_then(|spec| spec.lease_transitions)
        .unwrap_or(0);
    let timestamp = micro_time(now);
    let acquired = match (&decision, &current) {
        (Claim::Renew, Some(lease)) => lease.spec.as_ref().and_then(|s| s.acquire_time.clone()),
        _ => None,
    };
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(document::labels(&fleet.name, "rollout")),
            resource_version: current
                .as_ref()
                .and_then(|lease| lease.metadata.resource_version.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(fleet.replica.clone()),
            lease_duration_seconds: Some(i32::try_from(LEADER_LEASE.as_secs()).unwrap_or(i32::MAX)),
            renew_time: Some(timestamp.clone()),
            acquire_time: Some(acquired.unwrap_or(timestamp)),
            lease_transitions: Some(match decision {
                Claim::Renew => transitions,
                _ => transitions + 1,
            }),
            ..LeaseSpec::default()
        }),
    };
    let params = PostParams::default();
    let written = if current.is_some() {
        timed(leases.replace(name, &params, &lease)).await
    } else {
        timed(leases.create(&params, &lease)).await
    };
    match written {
        Ok(_) => {
            *lock(&fleet.leader) = Some(fleet.replica.clone());
            Ok((true, LEADER_RENEW))
        }
        // Another replica won the race (409): it leads; look again soon.
        Err(kube::Error::Api(status)) if status.code == 409 => Ok((false, LEADER_RENEW)),
        Err(error) => Err(error.to_string()),
    }
}

/// Gives the rollout Lease up (shutdown), so another replica leads at once.
pub(super) async fn resign(fleet: &Fleet) {
    if !fleet.leading.swap(false, Ordering::AcqRel) {
        return;
    }
    let name = document::rollout_lease(&fleet.name);
    let _ = timed(fleet.leases().delete(&name, &Default::default())).await;
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn spec(holder: &str, renewed_ms: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.to_owned()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(Timestamp::from_millisecond(renewed_ms).unwrap())),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn followers_look_again_when_the_leaders_lease_would_expire() {
        let renewed = 1_700_000_000_000;
        let held = spec("b", renewed);
        let at = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
        let wait = follower_wait(Some(&held), at(renewed as u64 + 5_000));
        assert!(
            wait >= Duration::from_millis(10_050) && wait <= Duration::from_millis(10_250),
            "{wait:?}"
        );
        // Already expired: soon, but not at once.
        let wait = follower_wait(Some(&held), at(renewed as u64 + 60_000));
        assert_eq!(wait, Duration::from_secs(1));
    }

    #[test]
    fn the_rollout_lease_is_taken_when_free_or_expired_and_kept_by_its_holder() {
        let renewed = 1_700_000_000_000;
        let at = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
        assert_eq!(claim(None, "a", at(renewed as u64)), Claim::Take);
        let held = spec("b", renewed);
        assert_eq!(
            claim(Some(&held), "a", at(renewed as u64 + 14_999)),
            Claim::Follow("b".into())
        );
        assert_eq!(
            claim(Some(&held), "a", at(renewed as u64 + 15_000)),
            Claim::Take
        );
        assert_eq!(
            claim(Some(&held), "b", at(renewed as u64 + 60_000)),
            Claim::Renew
        );
        let released = LeaseSpec {
            holder_identity: Some(String::new()),
            ..held
        };
        assert_eq!(claim(Some(&released), "a", at(renewed as u64)), Claim::Take);
    }
}
