//! Survey fatigue: who may be asked, when, on which channel.
//!
//! The rules are data: tenant defaults from configuration (`[policy]`), overridden per survey by
//! its `policy` object. [`decision::decide`] is a pure function of the contact's history, the
//! survey, the trigger and the time; storage and HTTP only gather its inputs and record its
//! answer.

pub mod decision;
pub mod opt_out;
pub mod quiet_hours;
pub mod schedule;

use channels::model::Metric;
use serde::Serialize;

pub use crate::rules::{bounds, PolicyDefaults, PolicyOverrides, QuietHours};

/// The rules in force for one survey: defaults with the survey's overrides applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    pub rest_period_days: u32,
    pub max_per_window: u32,
    pub window_days: u32,
    pub one_per_ticket: bool,
    pub send_delay_minutes: u32,
    pub quiet_hours: Option<QuietHours>,
    pub sample_rate: f64,
    /// An explicit reply window; `None` takes the channel's default.
    pub reply_window_hours: Option<u32>,
}

impl Policy {
    pub fn resolve(defaults: &PolicyDefaults, metric: Metric, o: &PolicyOverrides) -> Policy {
        let default_quiet = Some(defaults.quiet_hours).filter(|q| !q.is_empty());
        Policy {
            rest_period_days: o.rest_period_days.unwrap_or_else(|| {
                defaults
                    .rest_period_days
                    .get(metric.as_str())
                    .copied()
                    .unwrap_or(0)
            }),
            max_per_window: o.max_per_window.unwrap_or(defaults.max_per_window),
            window_days: o.window_days.unwrap_or(defaults.window_days),
            one_per_ticket: o.one_per_ticket.unwrap_or(defaults.one_per_ticket),
            send_delay_minutes: o.send_delay_minutes.unwrap_or(defaults.send_delay_minutes),
            quiet_hours: o
                .quiet_hours
                .unwrap_or(default_quiet)
                .filter(|q| !q.is_empty()),
            sample_rate: o.sample_rate.unwrap_or(defaults.sample_rate),
            reply_window_hours: o.reply_window_hours,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn defaults() -> PolicyDefaults {
        crate::config::Config::defaults().policy
    }

    #[test]
    fn defaults_match_the_domain_rules() {
        let p = Policy::resolve(&defaults(), Metric::Nps, &PolicyOverrides::default());
        assert_eq!(p.rest_period_days, 180);
        assert_eq!((p.max_per_window, p.window_days), (3, 30));
        assert!(p.one_per_ticket);
        assert_eq!(p.send_delay_minutes, 15);
        assert_eq!(p.quiet_hours, Some("21:00-08:00".parse().unwrap()));
        assert_eq!(p.sample_rate, 1.0);
        let csat = Policy::resolve(&defaults(), Metric::Csat, &PolicyOverrides::default());
        assert_eq!(csat.rest_period_days, 7);
    }

    #[test]
    fn overrides_replace_only_what_they_name() {
        let o: PolicyOverrides =
            serde_json::from_str(r#"{"rest_period_days": 30, "quiet_hours": null}"#).unwrap();
        let p = Policy::resolve(&defaults(), Metric::Nps, &o);
        assert_eq!(p.rest_period_days, 30);
        assert_eq!(p.quiet_hours, None, "null switches quiet hours off");
        assert_eq!(p.max_per_window, 3);
        let o: PolicyOverrides =
            serde_json::from_str(r#"{"quiet_hours": {"start": "22:00", "end": "07:30"}}"#).unwrap();
        assert_eq!(
            Policy::resolve(&defaults(), Metric::Nps, &o).quiet_hours,
            Some("22:00-07:30".parse().unwrap())
        );
    }

    #[test]
    fn bad_overrides_are_rejected() {
        for bad in [
            r#"{"rest_period_days": -1}"#,
            r#"{"send_delay_minutes": -5}"#,
            r#"{"quiet_hours": {"start": "25:00", "end": "08:00"}}"#,
            r#"{"snooze": true}"#,
        ] {
            assert!(
                serde_json::from_str::<PolicyOverrides>(bad).is_err(),
                "{bad}"
            );
        }
        let o: PolicyOverrides = serde_json::from_str(r#"{"sample_rate": 1.5}"#).unwrap();
        assert_eq!(o.validate().unwrap_err().0, "policy.sample_rate");
    }

    #[test]
    fn every_duration_and_count_is_bounded() {
        for (body, field) in [
            (r#"{"rest_period_days": 3651}"#, "policy.rest_period_days"),
            (
                r#"{"rest_period_days": 4294967295}"#,
                "policy.rest_period_days",
            ),
            (r#"{"window_days": 100000000}"#, "policy.window_days"),
            (r#"{"window_days": 0}"#, "policy.window_days"),
            (r#"{"max_per_window": 1001}"#, "policy.max_per_window"),
            (
                r#"{"send_delay_minutes": 10081}"#,
                "policy.send_delay_minutes",
            ),
            (
                r#"{"reply_window_hours": 4294967295}"#,
                "policy.reply_window_hours",
            ),
            (r#"{"reply_window_hours": 0}"#, "policy.reply_window_hours"),
        ] {
            let o: PolicyOverrides = serde_json::from_str(body).unwrap();
            assert_eq!(o.validate().unwrap_err().0, field, "{body}");
        }
        let edges: PolicyOverrides = serde_json::from_str(
            r#"{"rest_period_days": 3650, "window_days": 3650, "max_per_window": 1000,
                "send_delay_minutes": 10080, "reply_window_hours": 2160}"#,
        )
        .unwrap();
        assert_eq!(edges.validate(), Ok(()));
        let mut d = defaults();
        d.window_days = 5000;
        assert!(d.validate().unwrap_err().starts_with("window_days"));
    }
}
