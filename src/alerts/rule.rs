//! An alert rule as data, and the pure decisions made with it: does this answer open an alert,
//! how severe is it, when is its follow-up due. The shell around it (`alerts::open`) gathers
//! the answers of a transaction and applies the verdicts.

use chrono::{DateTime, Datelike, Duration, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::policy::quiet_hours::first_instant_at_or_after;

/// The key of the rule every tenant starts with. It applies until the tenant puts a rule under
/// this key (which may disable it).
pub const DEFAULT_KEY: &str = "default";

/// Rules per tenant: each answer is checked against each.
pub const MAX_RULES: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Normal,
    Urgent,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Normal => "normal",
            Severity::Urgent => "urgent",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "normal" => Some(Severity::Normal),
            "urgent" => Some(Severity::Urgent),
            _ => None,
        }
    }
}

/// Which scores of one metric open an alert: `at_most` and below; `urgent_at_most` and below
/// are urgent, the rest normal. `bad` covers the good/bad scale support platforms rate CSAT on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Band {
    pub at_most: i16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urgent_at_most: Option<i16>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bad: bool,
}

/// Working hours in the tenant's time zone: the deadline counts only time inside them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessHours {
    /// ISO weekdays, 1 = Monday … 7 = Sunday.
    #[serde(default = "weekdays")]
    pub days: Vec<u8>,
    pub start: NaiveTime,
    pub end: NaiveTime,
    /// An IANA zone; the API fills in the tenant's when it is left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

impl BusinessHours {
    fn zone(&self) -> Tz {
        self.time_zone
            .as_deref()
            .and_then(|z| z.parse().ok())
            .unwrap_or(Tz::UTC)
    }
}

fn weekdays() -> Vec<u8> {
    vec![1, 2, 3, 4, 5]
}

fn yes() -> bool {
    true
}

fn one_day() -> u32 {
    24
}

/// A tenant's rule (`PUT /v1/alert-rules/{key}`). Filters narrow: an answer must pass every
/// filter that is set; within one list any entry will do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Per metric; a metric left out takes the default rule's band, one set to `null` opens
    /// no alert under this rule.
    #[serde(default = "default_nps")]
    pub nps: Option<Band>,
    #[serde(default = "default_csat")]
    pub csat: Option<Band>,
    #[serde(default = "default_ces")]
    pub ces: Option<Band>,
    #[serde(default)]
    pub channels: Vec<String>,
    /// Survey keys: the answer's invitation was for one of them.
    #[serde(default)]
    pub surveys: Vec<String>,
    /// The answer's `team_ref`.
    #[serde(default)]
    pub teams: Vec<String>,
    /// The comment contains one of them (case-insensitive): "opsige", "advokat", "cancel".
    #[serde(default)]
    pub words: Vec<String>,
    /// The follow-up is due this many hours after the answer (of business hours, if set).
    #[serde(default = "one_day")]
    pub deadline_hours: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_hours: Option<BusinessHours>,
    /// The ticket's page in the support platform, `{ticket_ref}` replaced: the link in the
    /// owner's notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_url: Option<String>,
}

fn default_nps() -> Option<Band> {
    Some(Band {
        at_most: 6,
        urgent_at_most: Some(4),
        bad: false,
    })
}

fn default_csat() -> Option<Band> {
    Some(Band {
        at_most: 2,
        urgent_at_most: None,
        bad: true,
    })
}

fn default_ces() -> Option<Band> {
    Some(Band {
        at_most: 3,
        urgent_at_most: None,
        bad: false,
    })
}

impl Default for Rule {
    /// NPS 0–6 (urgent 0–4), CSAT 1–2 or bad, CES 1–3; due in 24 hours.
    fn default() -> Self {
        Rule {
            enabled: true,
            nps: default_nps(),
            csat: default_csat(),
            ces: default_ces(),
            channels: Vec::new(),
            surveys: Vec::new(),
            teams: Vec::new(),
            words: Vec::new(),
            deadline_hours: one_day(),
            business_hours: None,
            ticket_url: None,
        }
    }
}

/// What a rule looks at in an answer.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    pub metric: &'a str,
    pub score: Option<i16>,
    pub scale: Option<&'a str>,
    pub channel: &'a str,
    pub team_ref: Option<&'a str>,
    pub comment: Option<&'a str>,
    /// The key of the survey the answer was invited by, when a rule asks for it.
    pub survey: Option<&'a str>,
}

impl Rule {
    /// The field and the reason when the rule cannot be used.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        for (field, band, (low, high)) in [
            ("nps", &self.nps, (0, 10)),
            ("csat", &self.csat, (1, 5)),
            ("ces", &self.ces, (1, 7)),
        ] {
            let Some(band) = band else { continue };
            if !(low..=high).contains(&band.at_most) {
                return Err((field, format!("at_most must be within {low}–{high}")));
            }
            if band.urgent_at_most.is_some_and(|u| u > band.at_most) {
                return Err((field, "urgent_at_most must not exceed at_most".into()));
            }
            if band.bad && field != "csat" {
                return Err((field, "only CSAT is rated good/bad".into()));
            }
        }
        if !(1..=24 * 30).contains(&self.deadline_hours) {
            return Err(("deadline_hours", "1 to 720 hours".into()));
        }
        for (field, list) in [
            ("channels", &self.channels),
            ("surveys", &self.surveys),
            ("teams", &self.teams),
            ("words", &self.words),
        ] {
            if list.len() > 100 || list.iter().any(|s| s.trim().is_empty() || s.len() > 100) {
                return Err((field, "at most 100 entries of 1 to 100 characters".into()));
            }
        }
        if let Some(hours) = &self.business_hours {
            if hours.start >= hours.end {
                return Err(("business_hours", "start must be before end".into()));
            }
            if hours.days.is_empty() || hours.days.iter().any(|d| !(1..=7).contains(d)) {
                return Err(("business_hours.days", "weekdays 1 (Monday) to 7".into()));
            }
            if let Some(zone) = &hours.time_zone {
                if zone.parse::<Tz>().is_err() {
                    return Err(("business_hours.time_zone", "an IANA time zone".into()));
                }
            }
        }
        if let Some(url) = &self.ticket_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() > 500 {
                return Err((
                    "ticket_url",
                    "an http(s) URL of at most 500 characters".into(),
                ));
            }
        }
        Ok(())
    }

    /// The severity of the alert `answer` opens under this rule; `None`: it opens none.
    pub fn evaluate(&self, answer: &Answer<'_>) -> Option<Severity> {
        if !self.enabled {
            return None;
        }
        let band = match answer.metric {
            "nps" => self.nps.as_ref(),
            "csat" => self.csat.as_ref(),
            "ces" => self.ces.as_ref(),
            _ => None,
        }?;
        let score = answer.score?;
        let severity = if answer.scale == Some("good-bad") {
            // 0 is "bad" on that scale.
            (band.bad && score == 0).then_some(Severity::Normal)?
        } else if score <= band.at_most {
            if band.urgent_at_most.is_some_and(|u| score <= u) {
                Severity::Urgent
            } else {
                Severity::Normal
            }
        } else {
            return None;
        };
        let listed = |list: &[String], value: Option<&str>| {
            list.is_empty() || value.is_some_and(|v| list.iter().any(|l| l == v))
        };
        let passes = listed(&self.channels, Some(answer.channel))
            && listed(&self.surveys, answer.survey)
            && listed(&self.teams, answer.team_ref)
            && (self.words.is_empty()
                || answer.comment.is_some_and(|comment| {
                    let comment = comment.to_lowercase();
                    self.words
                        .iter()
                        .any(|w| comment.contains(&w.trim().to_lowercase()))
                }));
        passes.then_some(severity)
    }

    /// When the follow-up of an alert opened at `opened` is due.
    pub fn due_at(&self, opened: DateTime<Utc>) -> DateTime<Utc> {
        match &self.business_hours {
            None => opened + Duration::hours(i64::from(self.deadline_hours)),
            Some(hours) => hours.add(opened, i64::from(self.deadline_hours) * 60, hours.zone()),
        }
    }

    /// The link to the answer's ticket, when the rule knows the platform's ticket pages.
    pub fn ticket_link(&self, ticket_ref: Option<&str>) -> Option<String> {
        let (template, reference) = (self.ticket_url.as_ref()?, ticket_ref?);
        let encoded: String = url::form_urlencoded::byte_serialize(reference.as_bytes()).collect();
        Some(template.replace("{ticket_ref}", &encoded))
    }
}

impl BusinessHours {
    /// `minutes` of working time after `from`, walking the tenant's local calendar (so a
    /// daylight-saving change shortens or lengthens no working day).
    fn add(&self, from: DateTime<Utc>, minutes: i64, tz: Tz) -> DateTime<Utc> {
        let mut remaining = Duration::minutes(minutes);
        let mut cursor = from;
        let mut date = from.with_timezone(&tz).date_naive();
        // At least one working day a week: a deadline of 720 hours ends within two years.
        for _ in 0..800 {
            let day = date.weekday().number_from_monday() as u8;
            if self.days.contains(&day) {
                let open = first_instant_at_or_after(tz, date, self.start);
                let close = first_instant_at_or_after(tz, date, self.end);
                let start = cursor.max(open);
                if start < close {
                    if remaining <= close - start {
                        return start + remaining;
                    }
                    remaining -= close - start;
                }
            }
            date = date.succ_opt().unwrap_or(date);
            cursor = cursor.max(first_instant_at_or_after(tz, date, NaiveTime::MIN));
        }
        from + Duration::minutes(minutes)
    }
}

/// The rules that apply to a tenant: its stored ones, and the default rule unless it stored
/// one under the default key.
pub fn effective(stored: Vec<(String, Rule)>) -> Vec<(String, Rule)> {
    let mut rules = stored;
    if !rules.iter().any(|(key, _)| key == DEFAULT_KEY) {
        rules.insert(0, (DEFAULT_KEY.to_owned(), Rule::default()));
    }
    rules
}

/// The class of a score on its metric: 0 detractor (or unhappy), 1 passive (neutral), 2
/// promoter (happy). The closed loop's effect is an answer that moved up a class.
pub fn class(metric: &str, scale: Option<&str>, score: i16) -> Option<u8> {
    if scale == Some("good-bad") {
        return Some(if score == 0 { 0 } else { 2 });
    }
    let (low, high) = match metric {
        "nps" => (6, 8),
        "csat" => (2, 3),
        "ces" => (3, 4),
        _ => return None,
    };
    Some(if score <= low {
        0
    } else if score <= high {
        1
    } else {
        2
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nps(score: i16) -> Answer<'static> {
        Answer {
            metric: "nps",
            score: Some(score),
            scale: Some("0-10"),
            channel: "sms",
            team_ref: None,
            comment: None,
            survey: None,
        }
    }

    #[test]
    fn the_default_rule_opens_detractors_and_urgent_ones_below_five() {
        let rule = Rule::default();
        let verdicts: Vec<_> = (0..=10).map(|s| rule.evaluate(&nps(s))).collect();
        assert_eq!(&verdicts[..5], &[Some(Severity::Urgent); 5]);
        assert_eq!(&verdicts[5..7], &[Some(Severity::Normal); 2]);
        assert!(verdicts[7..].iter().all(Option::is_none));
        let csat = |score, scale| Answer {
            metric: "csat",
            scale: Some(scale),
            score: Some(score),
            ..nps(0)
        };
        assert_eq!(rule.evaluate(&csat(2, "1-5")), Some(Severity::Normal));
        assert_eq!(rule.evaluate(&csat(3, "1-5")), None);
        assert_eq!(rule.evaluate(&csat(0, "good-bad")), Some(Severity::Normal));
        assert_eq!(rule.evaluate(&csat(1, "good-bad")), None);
        let ces = |score| Answer {
            metric: "ces",
            scale: Some("1-7"),
            score: Some(score),
            ..nps(0)
        };
        assert_eq!(rule.evaluate(&ces(3)), Some(Severity::Normal));
        assert_eq!(rule.evaluate(&ces(4)), None);
        assert_eq!(
            rule.evaluate(&Answer {
                metric: "text",
                score: None,
                ..nps(0)
            }),
            None
        );
    }

    #[test]
    fn every_filter_must_pass() {
        let rule = Rule {
            channels: vec!["sms".into()],
            teams: vec!["billing".into()],
            words: vec!["Opsige".into(), "advokat".into()],
            ..Rule::default()
        };
        let answer = Answer {
            team_ref: Some("billing"),
            comment: Some("Jeg vil OPSIGE mit abonnement"),
            ..nps(3)
        };
        assert_eq!(rule.evaluate(&answer), Some(Severity::Urgent));
        assert_eq!(
            rule.evaluate(&Answer {
                channel: "email",
                ..answer
            }),
            None
        );
        assert_eq!(
            rule.evaluate(&Answer {
                team_ref: None,
                ..answer
            }),
            None
        );
        assert_eq!(
            rule.evaluate(&Answer {
                comment: Some("fint"),
                ..answer
            }),
            None
        );
        let surveyed = Rule {
            surveys: vec!["after-call".into()],
            ..Rule::default()
        };
        assert_eq!(surveyed.evaluate(&nps(3)), None);
        assert!(surveyed
            .evaluate(&Answer {
                survey: Some("after-call"),
                ..nps(3)
            })
            .is_some());
        let off = Rule {
            enabled: false,
            ..Rule::default()
        };
        assert_eq!(off.evaluate(&nps(0)), None);
    }

    #[test]
    fn business_hours_count_only_working_time_in_the_tenant_zone() {
        let rule = Rule {
            deadline_hours: 8,
            business_hours: Some(BusinessHours {
                days: weekdays(),
                start: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
                end: NaiveTime::from_hms_opt(17, 0, 0).unwrap(),
                time_zone: Some("Europe/Copenhagen".into()),
            }),
            ..Rule::default()
        };
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        // Friday 15:00 local (14:00 UTC in winter): 2 hours Friday, 6 on Monday → 15:00 local.
        assert_eq!(
            rule.due_at(at("2026-12-04T14:00:00Z")),
            at("2026-12-07T14:00:00Z")
        );
        // Saturday night: the whole of Monday.
        assert_eq!(
            rule.due_at(at("2026-12-05T22:00:00Z")),
            at("2026-12-07T16:00:00Z")
        );
        // Without business hours: 24 hours of the clock.
        assert_eq!(
            Rule::default().due_at(at("2026-12-05T22:00:00Z")),
            at("2026-12-06T22:00:00Z")
        );
    }

    #[test]
    fn a_metric_left_out_takes_the_default_band_and_null_turns_it_off() {
        let rule: Rule = serde_json::from_str(r#"{"ces": null, "deadline_hours": 4}"#).unwrap();
        assert_eq!(rule.nps, Rule::default().nps);
        assert_eq!(rule.ces, None);
        let again: Rule = serde_json::from_value(serde_json::to_value(&rule).unwrap()).unwrap();
        assert_eq!(again, rule);
    }

    #[test]
    fn rules_that_cannot_work_are_refused_by_field() {
        let bad = |rule: Rule| rule.validate().unwrap_err().0;
        let band = |at_most, urgent| Band {
            at_most,
            urgent_at_most: urgent,
            bad: false,
        };
        assert_eq!(
            bad(Rule {
                nps: Some(band(11, None)),
                ..Rule::default()
            }),
            "nps"
        );
        assert_eq!(
            bad(Rule {
                nps: Some(band(5, Some(6))),
                ..Rule::default()
            }),
            "nps"
        );
        assert_eq!(
            bad(Rule {
                deadline_hours: 0,
                ..Rule::default()
            }),
            "deadline_hours"
        );
        assert_eq!(
            bad(Rule {
                ticket_url: Some("javascript:x".into()),
                ..Rule::default()
            }),
            "ticket_url"
        );
        assert!(Rule::default().validate().is_ok());
    }

    #[test]
    fn classes_follow_each_metric() {
        assert_eq!(class("nps", None, 6), Some(0));
        assert_eq!(class("nps", None, 7), Some(1));
        assert_eq!(class("nps", None, 9), Some(2));
        assert_eq!(class("csat", None, 3), Some(1));
        assert_eq!(class("ces", None, 5), Some(2));
        assert_eq!(class("csat", Some("good-bad"), 1), Some(2));
        assert_eq!(class("text", None, 1), None);
    }
}
