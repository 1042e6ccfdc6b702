//! Retry timing shared by the outbox relay and the dispatcher: how long to wait after a failed
//! attempt.

use std::time::Duration;

/// Backoff before the next attempt after `attempts` failures: base·2^(attempts−1), capped, with
/// "equal jitter" (half fixed, half random) so that a burst of failures does not retry in
/// lockstep. `random` is in [0, 1).
pub fn backoff(attempts: i32, base_ms: u64, max_ms: u64, random: f64) -> Duration {
    let exp = attempts.saturating_sub(1).clamp(0, 32) as u32;
    let full = base_ms.saturating_mul(1u64 << exp.min(40)).min(max_ms);
    let half = full / 2;
    Duration::from_millis(half + (half as f64 * random) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters_within_half() {
        let ms = |attempts, random| backoff(attempts, 1000, 60_000, random).as_millis();
        assert_eq!(ms(1, 0.0), 500);
        assert_eq!(ms(1, 0.999_999), 999);
        assert_eq!(ms(2, 0.0), 1000);
        assert_eq!(ms(3, 0.0), 2000);
        assert_eq!(ms(7, 0.0), 30_000);
        assert_eq!(ms(8, 0.0), 30_000, "capped at max");
        assert_eq!(ms(500, 0.0), 30_000, "no overflow");
        assert!(ms(4, 0.5) > ms(4, 0.0));
    }
}
