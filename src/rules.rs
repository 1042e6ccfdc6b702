//! The fatigue rules as data: the tenant defaults (`[policy]` in the configuration), a survey's
//! overrides, quiet hours, and the bounds of every value. Read by the configuration, stored with
//! surveys, applied by the policy module; nothing here decides.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::NaiveTime;
use serde::{Deserialize, Deserializer, Serialize};

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

/// Local times `[start, end)`; when start is after end the window spans midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "QuietHoursJson", into = "QuietHoursJson")]
pub struct QuietHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuietHoursJson {
    start: String,
    end: String,
}

fn parse_hhmm(s: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(s, "%H:%M").map_err(|_| format!("`{s}` is not a time HH:MM"))
}

impl TryFrom<QuietHoursJson> for QuietHours {
    type Error = String;
    fn try_from(j: QuietHoursJson) -> Result<Self, String> {
        Ok(QuietHours {
            start: parse_hhmm(&j.start)?,
            end: parse_hhmm(&j.end)?,
        })
    }
}

impl From<QuietHours> for QuietHoursJson {
    fn from(q: QuietHours) -> Self {
        QuietHoursJson {
            start: q.start.format("%H:%M").to_string(),
            end: q.end.format("%H:%M").to_string(),
        }
    }
}

/// "21:00-08:00", for configuration and tests.
impl FromStr for QuietHours {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (start, end) = s
            .split_once('-')
            .ok_or_else(|| format!("`{s}` is not START-END"))?;
        Ok(QuietHours {
            start: parse_hhmm(start.trim())?,
            end: parse_hhmm(end.trim())?,
        })
    }
}

impl fmt::Display for QuietHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}",
            self.start.format("%H:%M"),
            self.end.format("%H:%M")
        )
    }
}
