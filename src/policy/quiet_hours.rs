//! Quiet hours in the contact's time zone: a send time that falls inside them moves to the next
//! allowed minute, computed in local time so that it is right across daylight-saving changes.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

pub use crate::rules::QuietHours;

impl QuietHours {
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    fn contains(&self, t: NaiveTime) -> bool {
        if self.start <= self.end {
            self.start <= t && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }

    /// `at` itself when it is allowed, else the first allowed instant after it: the end of the
    /// quiet hours on the right local day.
    pub fn next_allowed(&self, at: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
        if self.is_empty() {
            return at;
        }
        let local = at.with_timezone(&tz);
        let t = local.time();
        if !self.contains(t) {
            return at;
        }
        let date = local.date_naive();
        // In a window that spans midnight, an evening time ends tomorrow morning.
        let end_date = if self.start > self.end && t >= self.start {
            date.succ_opt().unwrap_or(date)
        } else {
            date
        };
        first_instant_at_or_after(tz, end_date, self.end).max(at)
    }
}

/// The instant the local clock shows `time` on `date`. When that local time does not exist (the
/// clock jumps over it in spring) it is the instant of the jump; when it exists twice (autumn)
/// the earlier one.
pub fn first_instant_at_or_after(tz: Tz, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let wanted = date.and_time(time);
    match tz.from_local_datetime(&wanted) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(early, _) => early.with_timezone(&Utc),
        LocalResult::None => {
            // Walk forward a minute at a time to the first local time that exists; gaps are at
            // most a few hours.
            let mut probe = wanted;
            for _ in 0..(24 * 60) {
                probe += Duration::minutes(1);
                if let Some(t) = tz.from_local_datetime(&probe).earliest() {
                    return t.with_timezone(&Utc);
                }
            }
            tz.from_utc_datetime(&wanted).with_timezone(&Utc)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    const CPH: Tz = chrono_tz::Europe::Copenhagen;

    #[test]
    fn table() {
        let night: QuietHours = "21:00-08:00".parse().unwrap();
        let lunch: QuietHours = "12:00-13:00".parse().unwrap();
        // (window, zone, at (UTC), expected (UTC))
        let cases: &[(QuietHours, Tz, &str, &str)] = &[
            // Copenhagen winter is UTC+1.
            (night, CPH, "2026-11-24T10:00:00Z", "2026-11-24T10:00:00Z"), // 11:00 local: allowed
            (night, CPH, "2026-11-24T19:59:00Z", "2026-11-24T19:59:00Z"), // 20:59: allowed
            (night, CPH, "2026-11-24T20:00:00Z", "2026-11-25T07:00:00Z"), // 21:00 → 08:00 next day
            (night, CPH, "2026-11-24T22:30:00Z", "2026-11-25T07:00:00Z"), // 23:30
            (night, CPH, "2026-11-24T23:30:00Z", "2026-11-25T07:00:00Z"), // 00:30 → 08:00 same day
            (night, CPH, "2026-11-25T06:59:00Z", "2026-11-25T07:00:00Z"), // 07:59
            (night, CPH, "2026-11-25T07:00:00Z", "2026-11-25T07:00:00Z"), // 08:00: allowed
            // Summer is UTC+2.
            (night, CPH, "2026-07-01T19:30:00Z", "2026-07-02T06:00:00Z"), // 21:30 → 08:00 (06:00Z)
            // Spring forward, 29 March 2026: 02:00 → 03:00. 21:30 on the 28th (UTC+1) ends
            // at 08:00 on the 29th, which is already UTC+2.
            (night, CPH, "2026-03-28T20:30:00Z", "2026-03-29T06:00:00Z"),
            // Fall back, 25 October 2026: 03:00 → 02:00. 22:00 on the 24th (UTC+2) ends at
            // 08:00 on the 25th, UTC+1.
            (night, CPH, "2026-10-24T20:00:00Z", "2026-10-25T07:00:00Z"),
            // A window that does not span midnight.
            (lunch, CPH, "2026-11-24T11:30:00Z", "2026-11-24T12:00:00Z"), // 12:30 → 13:00
            (lunch, CPH, "2026-11-24T12:00:00Z", "2026-11-24T12:00:00Z"), // 13:00: allowed
            // Another zone: New York, UTC−5 in November.
            (
                night,
                chrono_tz::America::New_York,
                "2026-11-24T03:00:00Z",
                "2026-11-24T13:00:00Z",
            ),
        ];
        for (q, tz, at, want) in cases {
            assert_eq!(q.next_allowed(utc(at), *tz), utc(want), "{q} {tz} at {at}");
        }
    }

    #[test]
    fn a_quiet_end_inside_a_dst_gap_moves_to_the_jump() {
        // Quiet hours ending at 02:30 on the night the clock jumps from 02:00 to 03:00.
        let q: QuietHours = "23:00-02:30".parse().unwrap();
        let at = utc("2026-03-28T22:30:00Z"); // 23:30 local, UTC+1
        assert_eq!(q.next_allowed(at, CPH), utc("2026-03-29T01:00:00Z")); // 03:00 local, UTC+2
    }

    #[test]
    fn empty_window_allows_everything() {
        let q: QuietHours = "08:00-08:00".parse().unwrap();
        assert!(q.is_empty());
        let at = utc("2026-11-24T23:00:00Z");
        assert_eq!(q.next_allowed(at, CPH), at);
    }

    #[test]
    fn parse_and_print() {
        let q: QuietHours = "21:00-08:00".parse().unwrap();
        assert_eq!(q.to_string(), "21:00-08:00");
        assert_eq!(
            serde_json::to_value(q).unwrap(),
            serde_json::json!({"start": "21:00", "end": "08:00"})
        );
        assert!("21-08".parse::<QuietHours>().is_err());
        assert!(serde_json::from_value::<QuietHours>(
            serde_json::json!({"start": "9pm", "end": "08:00"})
        )
        .is_err());
    }
}
