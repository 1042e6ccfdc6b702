//! The decision: may this contact be asked this survey now, on which channel, and when.
//!
//! A pure function of (contact, history, survey, trigger, now). The rules are checked in a fixed
//! order, so the reason given is always the most fundamental one: opt-out is absolute, then
//! whether the contact can be reached at all, then the fatigue rules, then sampling; a send time
//! inside quiet hours is deferred, never dropped.

use channels::model::Metric;
use channels::sanitize::storable;
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::Policy;
pub use crate::store::invitations::Past;

/// What the decision needs to know about the contact.
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    pub id: Uuid,
    /// Channels the contact has a valid address for ("sms" with a phone, "email" with an e-mail).
    pub reachable: Vec<String>,
    /// Channels opted out of; "all" for every channel.
    pub opt_outs: Vec<String>,
    pub time_zone: Tz,
}

impl Contact {
    pub fn opted_out_of(&self, channel: &str) -> bool {
        self.opt_outs.iter().any(|o| o == "all" || o == channel)
    }
}

pub struct Survey<'a> {
    pub key: &'a str,
    pub metric: Metric,
    /// In order of preference.
    pub channels: &'a [String],
    pub policy: &'a Policy,
}

pub struct Trigger<'a> {
    pub ticket_ref: Option<&'a str>,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    OptOut,
    NoChannel,
    OnePerTicket,
    RestPeriod,
    MaxPerWindow,
    Sampling,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::OptOut => "opt_out",
            Rule::NoChannel => "no_channel",
            Rule::OnePerTicket => "one_per_ticket",
            Rule::RestPeriod => "rest_period",
            Rule::MaxPerWindow => "max_per_window",
            Rule::Sampling => "sampling",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Schedule {
        channel: String,
        send_at: DateTime<Utc>,
        /// Set when quiet hours moved the send time: the time it would have been.
        deferred_from: Option<DateTime<Utc>>,
    },
    Suppress {
        rule: Rule,
        detail: String,
    },
}

/// Default hours an invitation waits for an answer on a channel.
pub fn reply_window(
    policy: &Policy,
    channel: &str,
    defaults: &std::collections::BTreeMap<String, u32>,
) -> Duration {
    let hours = policy.reply_window_hours.unwrap_or_else(|| {
        defaults
            .get(channel)
            .or_else(|| defaults.get("default"))
            .copied()
            .unwrap_or(72)
    });
    Duration::hours(i64::from(hours))
}

/// `t + d`, held at the end of year 9999 instead of overflowing: a stored policy from before
/// the bounds were checked must not make a send panic, nor reach a database that refuses it.
pub fn later(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    storable(t.checked_add_signed(d).unwrap_or(DateTime::<Utc>::MAX_UTC))
}

/// `t - d`, held at the start of year 1 instead of overflowing.
pub fn earlier(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    storable(t.checked_sub_signed(d).unwrap_or(DateTime::<Utc>::MIN_UTC))
}

/// How far back the contact's history matters to the decision: the longer of the rest period
/// and the cap's window, plus a day.
pub fn history_since(policy: &Policy, now: DateTime<Utc>) -> DateTime<Utc> {
    let days = i64::from(policy.rest_period_days.max(policy.window_days)) + 1;
    earlier(now, Duration::days(days))
}

/// The sampling period a time falls in: its calendar month (UTC).
pub fn sample_period(now: DateTime<Utc>) -> String {
    now.format("%Y-%m").to_string()
}

/// Deterministic draw in [0, 1) for a contact, survey and period. Hashing the period in makes
/// each month's sample a fresh draw, so a 10 % sample does not ask the same contacts every month.
pub fn sample_draw(survey_key: &str, contact: Uuid, period: &str) -> f64 {
    draw(&[survey_key, &contact.to_string(), period])
}

/// Deterministic draw in [0, 1) for these parts (joined with `|`): the same parts always draw
/// the same number. Sampling draws a contact per survey and period; the web widget's share, a
/// visitor per site and period.
pub fn draw(parts: &[&str]) -> f64 {
    let digest = Sha256::digest(parts.join("|").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64
}

pub fn decide(contact: &Contact, history: &[Past], survey: &Survey, trigger: &Trigger) -> Decision {
    let suppress = |rule, detail: String| Decision::Suppress { rule, detail };
    let policy = survey.policy;
    let now = trigger.now;

    if contact.opt_outs.iter().any(|o| o == "all") {
        return suppress(Rule::OptOut, "the contact opted out of all surveys".into());
    }
    let reachable: Vec<&String> = survey
        .channels
        .iter()
        .filter(|c| contact.reachable.contains(c))
        .collect();
    if reachable.is_empty() {
        return suppress(
            Rule::NoChannel,
            format!(
                "the contact has no address for {}",
                survey.channels.join(" or ")
            ),
        );
    }
    let Some(channel) = reachable.iter().find(|c| !contact.opted_out_of(c)) else {
        return suppress(
            Rule::OptOut,
            format!(
                "the contact opted out of {}",
                reachable
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
        );
    };
    let asked: Vec<&Past> = history
        .iter()
        .filter(|p| p.status.counts_as_asked())
        .collect();

    if policy.one_per_ticket {
        if let Some(ticket) = trigger.ticket_ref {
            if asked
                .iter()
                .any(|p| p.survey_key == survey.key && p.ticket_ref.as_deref() == Some(ticket))
            {
                return suppress(
                    Rule::OnePerTicket,
                    format!("ticket {ticket} was surveyed already"),
                );
            }
        }
    }

    let rest = Duration::days(i64::from(policy.rest_period_days));
    // A rest period of 0 days switches the rule off (also for invitations still scheduled).
    if let Some(last) = asked
        .iter()
        .filter(|_| policy.rest_period_days > 0)
        .filter(|p| p.metric == survey.metric)
        .map(|p| p.at)
        .filter(|at| *at > earlier(now, rest))
        .max()
    {
        return suppress(
            Rule::RestPeriod,
            format!(
                "asked {} on {}; the rest period of {} days ends {}",
                survey.metric,
                last.format("%Y-%m-%d"),
                policy.rest_period_days,
                later(last, rest).format("%Y-%m-%d")
            ),
        );
    }

    let window = Duration::days(i64::from(policy.window_days));
    let in_window = asked.iter().filter(|p| p.at > earlier(now, window)).count();
    if in_window >= policy.max_per_window as usize {
        return suppress(
            Rule::MaxPerWindow,
            format!(
                "{in_window} invitations in the last {} days; at most {}",
                policy.window_days, policy.max_per_window
            ),
        );
    }

    if policy.sample_rate < 1.0 {
        let period = sample_period(now);
        let draw = sample_draw(survey.key, contact.id, &period);
        if draw >= policy.sample_rate {
            return suppress(
                Rule::Sampling,
                format!(
                    "not in the {:.0} % sample for {period}",
                    policy.sample_rate * 100.0
                ),
            );
        }
    }

    let wanted = later(now, Duration::minutes(i64::from(policy.send_delay_minutes)));
    let send_at = storable(
        policy
            .quiet_hours
            .map_or(wanted, |q| q.next_allowed(wanted, contact.time_zone)),
    );
    Decision::Schedule {
        channel: (*channel).clone(),
        send_at,
        deferred_from: (send_at != wanted).then_some(wanted),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Policy, PolicyOverrides};
    use channels::vocabulary::InvitationStatus;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    const NOW: &str = "2026-11-24T10:00:00Z"; // 11:00 in Copenhagen

    fn policy(metric: Metric, overrides: &str) -> Policy {
        let o: PolicyOverrides = serde_json::from_str(overrides).unwrap();
        Policy::resolve(&crate::config::Config::defaults().policy, metric, &o)
    }

    fn contact(reachable: &[&str], opt_outs: &[&str]) -> Contact {
        Contact {
            id: Uuid::from_u128(42),
            reachable: reachable.iter().map(|s| s.to_string()).collect(),
            opt_outs: opt_outs.iter().map(|s| s.to_string()).collect(),
            time_zone: chrono_tz::Europe::Copenhagen,
        }
    }

    fn past(
        survey: &str,
        metric: Metric,
        ticket: Option<&str>,
        status: InvitationStatus,
        at: &str,
    ) -> Past {
        Past {
            survey_key: survey.into(),
            metric,
            ticket_ref: ticket.map(str::to_owned),
            status,
            at: utc(at),
        }
    }

    struct Case {
        name: &'static str,
        metric: Metric,
        channels: &'static [&'static str],
        overrides: &'static str,
        contact: Contact,
        history: Vec<Past>,
        ticket: Option<&'static str>,
        now: &'static str,
        want: Result<(&'static str, &'static str), Rule>,
    }

    fn case(name: &'static str) -> Case {
        Case {
            name,
            metric: Metric::Csat,
            channels: &["sms", "email"],
            overrides: "{}",
            contact: contact(&["sms", "email"], &[]),
            history: vec![],
            ticket: Some("T-1"),
            now: NOW,
            want: Ok(("sms", "2026-11-24T10:15:00Z")),
        }
    }

    #[test]
    fn table() {
        use InvitationStatus::*;
        use Metric::{Csat, Nps};
        let cases = vec![
            case("first survey: sms after the 15-minute delay"),
            Case {
                contact: contact(&["email"], &[]),
                want: Ok(("email", "2026-11-24T10:15:00Z")),
                ..case("no phone: falls to the next channel")
            },
            Case {
                contact: contact(&["sms", "email"], &["sms"]),
                want: Ok(("email", "2026-11-24T10:15:00Z")),
                ..case("sms opt-out: e-mail instead")
            },
            Case {
                contact: contact(&["sms", "email"], &["all"]),
                want: Err(Rule::OptOut),
                ..case("global opt-out is absolute")
            },
            Case {
                contact: contact(&[], &["all"]),
                want: Err(Rule::OptOut),
                ..case("global opt-out wins over no address")
            },
            Case {
                contact: contact(&["sms"], &["sms"]),
                channels: &["sms"],
                want: Err(Rule::OptOut),
                ..case("opted out of the only reachable channel")
            },
            Case {
                contact: contact(&[], &[]),
                want: Err(Rule::NoChannel),
                ..case("no address at all")
            },
            Case {
                contact: contact(&["email"], &[]),
                channels: &["sms"],
                want: Err(Rule::NoChannel),
                ..case("only an address for a channel the survey does not use")
            },
            Case {
                history: vec![past(
                    "csat",
                    Csat,
                    Some("T-1"),
                    Sent,
                    "2026-11-01T10:00:00Z",
                )],
                want: Err(Rule::OnePerTicket),
                ..case("ticket closed again after it was surveyed")
            },
            Case {
                history: vec![past(
                    "csat",
                    Csat,
                    Some("T-1"),
                    Suppressed,
                    "2026-11-24T09:59:00Z",
                )],
                want: Ok(("sms", "2026-11-24T10:15:00Z")),
                ..case("a suppressed attempt on the ticket does not count")
            },
            Case {
                history: vec![past(
                    "csat",
                    Csat,
                    Some("T-1"),
                    Failed,
                    "2026-11-24T09:00:00Z",
                )],
                want: Ok(("sms", "2026-11-24T10:15:00Z")),
                ..case("a failed send does not count as asked")
            },
            Case {
                history: vec![past(
                    "other-survey",
                    Csat,
                    Some("T-1"),
                    Sent,
                    "2026-10-01T10:00:00Z",
                )],
                want: Ok(("sms", "2026-11-24T10:15:00Z")),
                ..case("another survey on the same ticket, outside the rest period")
            },
            Case {
                overrides: r#"{"one_per_ticket": false}"#,
                history: vec![past(
                    "csat",
                    Csat,
                    Some("T-1"),
                    Sent,
                    "2026-11-01T10:00:00Z",
                )],
                want: Ok(("sms", "2026-11-24T10:15:00Z")),
                ..case("one per ticket switched off")
            },
            Case {
                history: vec![past(
                    "csat",
                    Csat,
                    Some("T-0"),
                    Sent,
                    "2026-11-20T10:00:00Z",
                )],
                want: Err(Rule::RestPeriod),
                ..case("csat 4 days ago: inside the 7-day rest period")
            },
            Case {
                history: vec![past(
                    "csat",
                    Csat,
                    Some("T-0"),
                    Answered,
                    "2026-11-17T09:59:00Z",
                )],
                want: Ok(("sms", "2026-11-24T10:15:00Z")),
                ..case("csat 7 days and a minute ago: rest period over")
            },
            Case {
                history: vec![past(
                    "csat",
                    Csat,
                    Some("T-0"),
                    Scheduled,
                    "2026-11-24T10:10:00Z",
                )],
                want: Err(Rule::RestPeriod),
                ..case("a csat still scheduled counts")
            },
            Case {
                overrides: r#"{"rest_period_days": 0}"#,
                history: vec![past(
                    "csat",
                    Csat,
                    Some("T-0"),
                    Scheduled,
                    "2026-11-24T10:10:00Z",
                )],
                want: Ok(("sms", "2026-11-24T10:15:00Z")),
                ..case("rest period 0 days: off, also for one still scheduled")
            },
            Case {
                metric: Nps,
                ticket: None,
                history: vec![past("nps", Nps, None, Expired, "2026-06-01T10:00:00Z")],
                want: Err(Rule::RestPeriod),
                ..case("nps 176 days ago: inside 180 days")
            },
            Case {
                metric: Nps,
                ticket: None,
                history: vec![past("nps", Nps, None, Sent, "2026-05-20T10:00:00Z")],
                want: Ok(("sms", "2026-11-24T10:15:00Z")),
                ..case("nps 188 days ago: allowed")
            },
            Case {
                metric: Nps,
                ticket: None,
                history: vec![past(
                    "csat",
                    Csat,
                    Some("T-9"),
                    Sent,
                    "2026-11-23T10:00:00Z",
                )],
                want: Ok(("sms", "2026-11-24T10:15:00Z")),
                ..case("a csat yesterday does not block nps")
            },
            Case {
                overrides: r#"{"rest_period_days": 0}"#,
                history: vec![
                    past("csat", Csat, Some("T-7"), Sent, "2026-11-22T10:00:00Z"),
                    past("csat", Csat, Some("T-8"), Sent, "2026-11-15T10:00:00Z"),
                    past("csat", Csat, Some("T-9"), Sent, "2026-11-01T10:00:00Z"),
                ],
                want: Err(Rule::MaxPerWindow),
                ..case("three in 30 days: cap reached")
            },
            Case {
                overrides: r#"{"rest_period_days": 0}"#,
                history: vec![
                    past("csat", Csat, Some("T-7"), Sent, "2026-11-22T10:00:00Z"),
                    past("csat", Csat, Some("T-8"), Sent, "2026-11-15T10:00:00Z"),
                    past("csat", Csat, Some("T-9"), Sent, "2026-10-20T10:00:00Z"),
                ],
                want: Ok(("sms", "2026-11-24T10:15:00Z")),
                ..case("the third is older than 30 days")
            },
            Case {
                overrides: r#"{"rest_period_days": 0, "max_per_window": 5}"#,
                history: vec![
                    past("csat", Csat, Some("T-7"), Sent, "2026-11-22T10:00:00Z"),
                    past("csat", Csat, Some("T-8"), Sent, "2026-11-15T10:00:00Z"),
                    past("csat", Csat, Some("T-9"), Sent, "2026-11-01T10:00:00Z"),
                ],
                want: Ok(("sms", "2026-11-24T10:15:00Z")),
                ..case("a larger cap from the survey")
            },
            Case {
                overrides: r#"{"sample_rate": 0}"#,
                want: Err(Rule::Sampling),
                ..case("a 0 % sample asks nobody")
            },
            Case {
                now: "2026-11-24T19:50:00Z", // 20:50 local + 15 min = 21:05: quiet
                want: Ok(("sms", "2026-11-25T07:00:00Z")),
                ..case("send time in quiet hours: deferred to 08:00 local")
            },
            Case {
                now: "2026-11-24T19:50:00Z",
                overrides: r#"{"quiet_hours": null}"#,
                want: Ok(("sms", "2026-11-24T20:05:00Z")),
                ..case("quiet hours switched off")
            },
            Case {
                overrides: r#"{"send_delay_minutes": 0}"#,
                want: Ok(("sms", "2026-11-24T10:00:00Z")),
                ..case("no delay")
            },
            Case {
                contact: Contact {
                    time_zone: chrono_tz::America::New_York,
                    ..contact(&["sms"], &[])
                },
                want: Ok(("sms", "2026-11-24T13:00:00Z")),
                ..case("contact's own zone: 05:15 in New York waits for 08:00")
            },
        ];
        for c in cases {
            let p = policy(c.metric, c.overrides);
            let channels: Vec<String> = c.channels.iter().map(|s| s.to_string()).collect();
            let survey = Survey {
                key: if c.metric == Metric::Nps {
                    "nps"
                } else {
                    "csat"
                },
                metric: c.metric,
                channels: &channels,
                policy: &p,
            };
            let trigger = Trigger {
                ticket_ref: c.ticket,
                now: utc(c.now),
            };
            let got = decide(&c.contact, &c.history, &survey, &trigger);
            match (c.want, got) {
                (
                    Ok((ch, at)),
                    Decision::Schedule {
                        channel, send_at, ..
                    },
                ) => {
                    assert_eq!((channel.as_str(), send_at), (ch, utc(at)), "{}", c.name)
                }
                (Err(rule), Decision::Suppress { rule: got, detail }) => {
                    assert_eq!(got, rule, "{}: {detail}", c.name);
                    assert!(!detail.is_empty());
                }
                (want, got) => panic!("{}: wanted {want:?}, got {got:?}", c.name),
            }
        }
    }

    #[test]
    fn deferral_is_reported() {
        let p = policy(Metric::Csat, "{}");
        let channels = vec!["sms".to_owned()];
        let survey = Survey {
            key: "csat",
            metric: Metric::Csat,
            channels: &channels,
            policy: &p,
        };
        let d = decide(
            &contact(&["sms"], &[]),
            &[],
            &survey,
            &Trigger {
                ticket_ref: None,
                now: utc("2026-11-24T22:00:00Z"),
            },
        );
        assert_eq!(
            d,
            Decision::Schedule {
                channel: "sms".into(),
                send_at: utc("2026-11-25T07:00:00Z"),
                deferred_from: Some(utc("2026-11-24T22:15:00Z")),
            }
        );
    }

    #[test]
    fn sampling_is_deterministic_near_its_rate_and_redrawn_each_month() {
        let draws = |period: &str| -> Vec<bool> {
            (0..2000u128)
                .map(|i| sample_draw("b2b-nps", Uuid::from_u128(i), period) < 0.10)
                .collect()
        };
        let november = draws("2026-11");
        assert_eq!(november, draws("2026-11"), "same month, same sample");
        let share = november.iter().filter(|&&x| x).count() as f64 / 2000.0;
        assert!((0.08..0.12).contains(&share), "share {share}");
        let december = draws("2026-12");
        let both = november
            .iter()
            .zip(&december)
            .filter(|(a, b)| **a && **b)
            .count();
        // Independent 10 % draws overlap in about 1 % (20 of 2000), not in all 200.
        assert!(both < 60, "{both} contacts drawn in both months");
    }

    #[test]
    fn a_draw_is_stable_and_spread() {
        let a = draw(&["site", "visitor-1", "2026-12"]);
        assert_eq!(a, draw(&["site", "visitor-1", "2026-12"]));
        let inside = (0..10_000)
            .filter(|i| draw(&["site", &format!("v{i}"), "2026-12"]) < 0.25)
            .count();
        assert!((2_200..2_800).contains(&inside), "{inside}");
    }

    #[test]
    fn reply_window_by_channel() {
        let defaults = crate::config::Config::defaults().policy.reply_window_hours;
        let p = policy(Metric::Csat, "{}");
        assert_eq!(reply_window(&p, "sms", &defaults), Duration::hours(72));
        assert_eq!(reply_window(&p, "email", &defaults), Duration::hours(168));
        assert_eq!(reply_window(&p, "widget", &defaults), Duration::hours(24));
        assert_eq!(reply_window(&p, "voice", &defaults), Duration::hours(72));
        let p = policy(Metric::Csat, r#"{"reply_window_hours": 24}"#);
        assert_eq!(reply_window(&p, "email", &defaults), Duration::hours(24));
    }
}

#[cfg(test)]
mod never_panics {
    //! Whatever a policy says (also one stored before its bounds were checked), and whatever
    //! times the database hands back, deciding and computing the times of an invitation must
    //! not panic: a panic there fails every send of the tenant.
    use super::*;
    use crate::policy::QuietHours;
    use channels::vocabulary::InvitationStatus;
    use chrono::NaiveTime;
    use proptest::prelude::*;

    /// Any second from year 1 to year 9999: what either database can store.
    fn any_time() -> impl Strategy<Value = DateTime<Utc>> {
        (-62_135_596_800i64..=253_402_300_799)
            .prop_map(|s| DateTime::from_timestamp(s, 0).expect("in chrono's range"))
    }

    fn any_quiet_hours() -> impl Strategy<Value = Option<QuietHours>> {
        proptest::option::of(
            (0u32..24 * 60, 0u32..24 * 60).prop_map(|(a, b)| QuietHours {
                start: NaiveTime::from_num_seconds_from_midnight_opt(a * 60, 0).unwrap(),
                end: NaiveTime::from_num_seconds_from_midnight_opt(b * 60, 0).unwrap(),
            }),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn deciding_and_timing_never_panic(
            limits in (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>()),
            sample_rate in prop_oneof![any::<f64>(), 0.0f64..=1.0],
            one_per_ticket in any::<bool>(),
            quiet_hours in any_quiet_hours(),
            now in any_time(),
            history in proptest::collection::vec((any_time(), 0usize..4, 0usize..7, any::<bool>()), 0..6),
            zone in 0usize..chrono_tz::TZ_VARIANTS.len(),
            reachable in proptest::sample::subsequence(vec!["sms", "email"], 0..=2),
        ) {
            let (rest_period_days, window_days, max_per_window, send_delay_minutes, reply) = limits;
            let policy = Policy {
                rest_period_days,
                max_per_window,
                window_days,
                one_per_ticket,
                send_delay_minutes,
                quiet_hours,
                sample_rate,
                reply_window_hours: (reply % 3 != 0).then_some(reply),
            };
            let metrics = [Metric::Nps, Metric::Csat, Metric::Ces, Metric::Text];
            let statuses = [
                InvitationStatus::Scheduled, InvitationStatus::Sent, InvitationStatus::Answered, InvitationStatus::Expired,
                InvitationStatus::Suppressed, InvitationStatus::Failed, InvitationStatus::Cancelled,
            ];
            let history: Vec<Past> = history
                .into_iter()
                .map(|(at, m, st, same_ticket)| Past {
                    survey_key: "s".into(),
                    metric: metrics[m],
                    ticket_ref: same_ticket.then(|| "T-1".to_owned()),
                    status: statuses[st],
                    at,
                })
                .collect();
            let contact = Contact {
                id: Uuid::nil(),
                reachable: reachable.iter().map(|c| (*c).to_owned()).collect(),
                opt_outs: vec![],
                time_zone: chrono_tz::TZ_VARIANTS[zone],
            };
            let channels = vec!["sms".to_owned(), "email".to_owned()];
            let _ = history_since(&policy, now);
            let decided = decide(
                &contact,
                &history,
                &Survey { key: "s", metric: Metric::Nps, channels: &channels, policy: &policy },
                &Trigger { ticket_ref: Some("T-1"), now },
            );
            if let Decision::Schedule { channel, send_at, .. } = decided {
                let defaults = crate::config::Config::defaults().policy.reply_window_hours;
                let expires = later(send_at, reply_window(&policy, &channel, &defaults));
                prop_assert!(expires >= send_at);
            }
        }
    }
}
