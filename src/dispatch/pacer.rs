//! Outbound pacing: a burst of invitations for one sender is spread over time, not dropped and
//! not sent in one go.
//!
//! governor answers "may I send now?"; it cannot hand out future send times. A backlog of a
//! thousand due invitations needs exactly that, so that each is claimed and rescheduled once
//! rather than retried every poll. The pacer gives each due message on a key the next free slot
//! (one per 1/rate seconds) and remembers the slots it handed out; governor then enforces the
//! rate at the moment of sending.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

pub enum Slot {
    /// Send now.
    Now,
    /// Send at this time; the slot is held for the invitation.
    Later(DateTime<Utc>),
}

#[derive(Default)]
struct State {
    /// Per key, the first instant not handed out yet.
    next_free: HashMap<String, DateTime<Utc>>,
    /// Slots held by invitations that were rescheduled into them.
    held: HashMap<Uuid, DateTime<Utc>>,
}

pub struct Pacer {
    state: Mutex<State>,
    limiters: Mutex<HashMap<u64, std::sync::Arc<DefaultKeyedRateLimiter<String>>>>,
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer {
            state: Mutex::new(State::default()),
            limiters: Mutex::new(HashMap::new()),
        }
    }
}

fn interval(per_second: f64) -> chrono::Duration {
    let micros = (1_000_000.0 / per_second.max(0.001)).round() as i64;
    chrono::Duration::microseconds(micros.max(1))
}

impl Pacer {
    /// The slot for invitation `id` on `key` at `now`.
    pub fn reserve(&self, key: &str, id: Uuid, per_second: f64, now: DateTime<Utc>) -> Slot {
        let mut state = self.state.lock().expect("pacer lock");
        if let Some(slot) = state.held.get(&id).copied() {
            if slot <= now {
                state.held.remove(&id);
                return Slot::Now;
            }
            return Slot::Later(slot);
        }
        let step = interval(per_second);
        let free = state.next_free.get(key).copied().unwrap_or(now).max(now);
        state.next_free.insert(key.to_owned(), free + step);
        if free <= now {
            Slot::Now
        } else {
            state.held.insert(id, free);
            Slot::Later(free)
        }
    }

    /// Waits until governor allows one more message on `key` at `per_second`.
    pub async fn until_ready(&self, key: &str, per_second: f64) {
        let limiter = {
            let bucket = (per_second * 1000.0).round() as u64;
            let mut limiters = self.limiters.lock().expect("limiter lock");
            limiters
                .entry(bucket)
                .or_insert_with(|| std::sync::Arc::new(RateLimiter::keyed(quota(per_second))))
                .clone()
        };
        limiter.until_key_ready(&key.to_owned()).await;
    }
}

/// A governor quota of `per_second` with a burst of one: evenly spaced sends.
pub fn quota(per_second: f64) -> Quota {
    if per_second >= 1.0 {
        Quota::per_second(NonZeroU32::new(per_second.round() as u32).unwrap_or(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::MIN)
    } else {
        Quota::with_period(Duration::from_secs_f64(1.0 / per_second.max(0.001)))
            .expect("a positive period")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_burst_gets_consecutive_slots_and_keys_do_not_share() {
        let pacer = Pacer::default();
        let now = t("2026-11-24T10:00:00Z");
        let ids: Vec<Uuid> = (0..4).map(Uuid::from_u128).collect();
        assert!(matches!(pacer.reserve("a", ids[0], 1.0, now), Slot::Now));
        let later: Vec<DateTime<Utc>> = ids[1..]
            .iter()
            .map(|id| match pacer.reserve("a", *id, 1.0, now) {
                Slot::Later(at) => at,
                Slot::Now => panic!("burst not paced"),
            })
            .collect();
        assert_eq!(
            later,
            vec![
                t("2026-11-24T10:00:01Z"),
                t("2026-11-24T10:00:02Z"),
                t("2026-11-24T10:00:03Z")
            ]
        );
        // Another key (another tenant's number) is not behind them.
        assert!(matches!(
            pacer.reserve("b", Uuid::from_u128(9), 1.0, now),
            Slot::Now
        ));
        // A held slot is honoured when it comes due, without queueing again.
        assert!(matches!(
            pacer.reserve("a", ids[2], 1.0, t("2026-11-24T10:00:02Z")),
            Slot::Now
        ));
        // Asking early keeps the same slot.
        assert!(matches!(
            pacer.reserve("a", ids[3], 1.0, t("2026-11-24T10:00:01Z")),
            Slot::Later(at) if at == t("2026-11-24T10:00:03Z")
        ));
    }

    #[test]
    fn quotas() {
        assert_eq!(quota(1.0).replenish_interval(), Duration::from_secs(1));
        assert_eq!(quota(10.0).replenish_interval(), Duration::from_millis(100));
        assert_eq!(quota(0.5).replenish_interval(), Duration::from_secs(2));
    }
}
