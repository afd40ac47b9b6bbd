//! The retry budget: how much extra load retries may add to a service.
//!
//! The linkerd model: over the last ten seconds, retries may add at most
//! `ratio` of the requests made (20 % by default) plus `min_per_second` per
//! second (10), so a partial outage cannot be multiplied into a full one by
//! every client trying again. Every request deposits; every retry withdraws
//! one; a retry the budget cannot pay for is not made (and is counted).
//!
//! Ten one-second slots of atomic counters, rotated by time: no lock, no
//! task. Races at a slot's rotation can lose a deposit or two, which only
//! makes the budget slightly stricter. Each service owns one (carried over
//! by `state` while its settings stay); `retry::next` withdraws from it.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::time::Instant;

const SLOTS: u64 = 10;

#[derive(Debug)]
pub struct RetryBudget {
    epoch: Instant,
    ratio: f64,
    min_per_second: u64,
    slots: [Slot; SLOTS as usize],
}

#[derive(Debug, Default)]
struct Slot {
    /// The second (since epoch, plus one) this slot counts for; 0 = unused.
    second: AtomicU64,
    deposits: AtomicU64,
    withdrawals: AtomicU64,
}

impl RetryBudget {
    pub fn new(ratio: f64, min_per_second: u32, now: Instant) -> Self {
        Self {
            epoch: now,
            ratio,
            min_per_second: u64::from(min_per_second),
            slots: Default::default(),
        }
    }

    /// The (ratio, per-second minimum) it was made with.
    pub fn settings(&self) -> (f64, u32) {
        (self.ratio, self.min_per_second as u32)
    }

    /// Records one request.
    pub fn deposit(&self, now: Instant) {
        self.slot(now).deposits.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes one retry from the budget; false when there is none left.
    pub fn try_withdraw(&self, now: Instant) -> bool {
        let second = self.second(now);
        let (mut deposits, mut withdrawals) = (0u64, 0u64);
        for slot in &self.slots {
            let at = slot.second.load(Ordering::Relaxed);
            if at != 0 && at + SLOTS > second {
                deposits += slot.deposits.load(Ordering::Relaxed);
                withdrawals += slot.withdrawals.load(Ordering::Relaxed);
            }
        }
        let allowed = deposits as f64 * self.ratio + (self.min_per_second * SLOTS) as f64;
        if (withdrawals + 1) as f64 > allowed {
            return false;
        }
        self.slot(now).withdrawals.fetch_add(1, Ordering::Relaxed);
        true
    }

    fn second(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs() + 1
    }

    fn slot(&self, now: Instant) -> &Slot {
        let second = self.second(now);
        let slot = &self.slots[(second % SLOTS) as usize];
        let at = slot.second.load(Ordering::Relaxed);
        if at != second
            && slot
                .second
                .compare_exchange(at, second, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            slot.deposits.store(0, Ordering::Relaxed);
            slot.withdrawals.store(0, Ordering::Relaxed);
        }
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn idle_service_gets_the_minimum() {
        let now = Instant::now();
        let budget = RetryBudget::new(0.2, 10, now);
        let granted = (0..1000).filter(|_| budget.try_withdraw(now)).count();
        // Ten seconds' worth of the per-second minimum.
        assert_eq!(granted, 100);
    }

    #[test]
    fn retries_add_at_most_a_fifth_of_requests_plus_the_minimum() {
        let start = Instant::now();
        let budget = RetryBudget::new(0.2, 0, start);
        let mut granted = 0;
        // 1000 requests a second for 30 s, every one wanting a retry.
        for second in 0..30u64 {
            let now = start + Duration::from_secs(second);
            for _ in 0..1000 {
                budget.deposit(now);
                if budget.try_withdraw(now) {
                    granted += 1;
                }
            }
        }
        let ratio = granted as f64 / 30_000.0;
        assert!((0.19..=0.21).contains(&ratio), "{ratio}");
    }

    #[test]
    fn old_deposits_expire() {
        let start = Instant::now();
        let budget = RetryBudget::new(0.2, 0, start);
        for _ in 0..1000 {
            budget.deposit(start);
        }
        let later = start + Duration::from_secs(11);
        assert!(!budget.try_withdraw(later));
        assert!(budget.try_withdraw(start + Duration::from_secs(5)));
    }
}
