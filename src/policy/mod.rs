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

use std::collections::BTreeMap;

use channels::model::Metric;
use serde::{Deserialize, Deserializer, Serialize};

pub use quiet_hours::QuietHours;

/// Tenant defaults, from `[policy]` in the configuration.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct PolicyDefaults {
    /// Days between two invitations for the same metric to one contact, per metric.
    pub rest_period_days: BTreeMap<String, u32>,
    pub max_per_window: u32,
    pub window_days: u32,
    pub one_per_ticket: bool,
    pub send_delay_minutes: u32,
    /// Equal start and end mean no quiet hours.
    pub quiet_hours: QuietHours,
    pub sample_rate: f64,
    /// Hours an invitation stays open for an answer, per channel (`default` for the others).
    pub reply_window_hours: BTreeMap<String, u32>,
}

/// The documented bounds of every policy duration and count. Past them a value is a mistake
/// (or an attack): nobody rests a contact for 30 years, and unbounded values overflow the date
/// arithmetic.
pub mod bounds {
    pub const REST_PERIOD_DAYS: (u32, u32) = (0, 3_650);
    pub const WINDOW_DAYS: (u32, u32) = (1, 3_650);
    pub const MAX_PER_WINDOW: (u32, u32) = (0, 1_000);
    /// Up to 7 days.
    pub const SEND_DELAY_MINUTES: (u32, u32) = (0, 7 * 24 * 60);
    /// 1 hour to 90 days.
    pub const REPLY_WINDOW_HOURS: (u32, u32) = (1, 90 * 24);
}

fn within(
    field: &'static str,
    value: u32,
    (low, high): (u32, u32),
) -> Result<(), (&'static str, String)> {
    if (low..=high).contains(&value) {
        Ok(())
    } else {
        Err((field, format!("must be {low} to {high}")))
    }
}

fn sample_rate_within(field: &'static str, rate: f64) -> Result<(), (&'static str, String)> {
    if (0.0..=1.0).contains(&rate) {
        Ok(())
    } else {
        Err((field, "must be between 0 and 1".into()))
    }
}

impl PolicyDefaults {
    pub fn validate(&self) -> Result<(), String> {
        for metric in ["nps", "csat", "ces"] {
            if !self.rest_period_days.contains_key(metric) {
                return Err(format!("rest_period_days: give a value for {metric}"));
            }
        }
        if !self.reply_window_hours.contains_key("default") {
            return Err("reply_window_hours: give a `default`".into());
        }
        let checks = self
            .rest_period_days
            .values()
            .map(|&d| within("rest_period_days", d, bounds::REST_PERIOD_DAYS))
            .chain(
                self.reply_window_hours
                    .values()
                    .map(|&h| within("reply_window_hours", h, bounds::REPLY_WINDOW_HOURS)),
            )
            .chain([
                within("window_days", self.window_days, bounds::WINDOW_DAYS),
                within(
                    "max_per_window",
                    self.max_per_window,
                    bounds::MAX_PER_WINDOW,
                ),
                within(
                    "send_delay_minutes",
                    self.send_delay_minutes,
                    bounds::SEND_DELAY_MINUTES,
                ),
                sample_rate_within("sample_rate", self.sample_rate),
            ]);
        for check in checks {
            check.map_err(|(field, message)| format!("{field}: {message}"))?;
        }
        Ok(())
    }
}

/// A survey's `policy` object: every key optional, missing keys take the tenant default.
/// Durations are unsigned, so a negative one is rejected when the JSON is read.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PolicyOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rest_period_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_window: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_per_ticket: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_delay_minutes: Option<u32>,
    /// Missing: the default; `null`: no quiet hours; an object: these.
    #[serde(
        default,
        deserialize_with = "present_or_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub quiet_hours: Option<Option<QuietHours>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_window_hours: Option<u32>,
}

/// Tells a key given as `null` (Some(None)) from a missing key (None).
fn present_or_null<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

impl PolicyOverrides {
    /// Checks what the types cannot: ranges (see [`bounds`]).
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let optional = |field, value: Option<u32>, range| match value {
            Some(v) => within(field, v, range),
            None => Ok(()),
        };
        optional(
            "policy.rest_period_days",
            self.rest_period_days,
            bounds::REST_PERIOD_DAYS,
        )?;
        optional("policy.window_days", self.window_days, bounds::WINDOW_DAYS)?;
        optional(
            "policy.max_per_window",
            self.max_per_window,
            bounds::MAX_PER_WINDOW,
        )?;
        optional(
            "policy.send_delay_minutes",
            self.send_delay_minutes,
            bounds::SEND_DELAY_MINUTES,
        )?;
        optional(
            "policy.reply_window_hours",
            self.reply_window_hours,
            bounds::REPLY_WINDOW_HOURS,
        )?;
        if let Some(rate) = self.sample_rate {
            sample_rate_within("policy.sample_rate", rate)?;
        }
        Ok(())
    }
}

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
