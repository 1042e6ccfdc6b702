//! The closed loop measured (`GET /v1/alerts/stats`): per owner, team or severity, the alerts
//! opened in a period, the share acknowledged by their deadline, the median times to
//! acknowledge and to resolve, and, of the customers who answered the same metric again, the
//! share whose next answer moved up a class (a detractor who became a passive or a promoter).

use serde::Serialize;

use super::rule::class;
use crate::store::alerts::Measured;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Owner,
    Team,
    Severity,
}

impl GroupBy {
    pub fn parse(s: &str) -> Option<GroupBy> {
        match s {
            "owner" => Some(GroupBy::Owner),
            "team" => Some(GroupBy::Team),
            "severity" => Some(GroupBy::Severity),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    /// The owner, team or severity (`null`: alerts without one, or the total).
    pub key: Option<String>,
    pub opened: u64,
    pub acknowledged: u64,
    pub acknowledged_in_time: u64,
    /// Of `opened`, in percent; `null` when none opened.
    pub acknowledged_in_time_pct: Option<f64>,
    pub median_seconds_to_acknowledge: Option<i64>,
    pub resolved: u64,
    pub median_seconds_to_resolve: Option<i64>,
    /// Customers who answered the same metric again after the alert's answer.
    pub answered_again: u64,
    pub moved_up: u64,
    /// Of `answered_again`, in percent.
    pub moved_up_pct: Option<f64>,
}

fn percent(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 * 1000.0 / whole as f64).round() / 10.0)
}

fn median(mut values: Vec<i64>) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 0 {
        (values[mid - 1] + values[mid]) / 2
    } else {
        values[mid]
    })
}

fn figures(key: Option<String>, alerts: &[&Measured]) -> Figures {
    let mut to_ack = Vec::new();
    let mut to_resolve = Vec::new();
    let (mut in_time, mut again, mut up) = (0, 0, 0);
    for m in alerts {
        let a = &m.alert;
        if let Some(at) = a.acknowledged_at {
            to_ack.push((at - a.opened_at).num_seconds());
            if at <= a.due_at {
                in_time += 1;
            }
        }
        // Closed by the customer's own better answer: not a follow-up anyone did.
        if let (Some(at), "resolved") = (a.resolved_at, a.status.as_str()) {
            to_resolve.push((at - a.opened_at).num_seconds());
        }
        let before = a
            .score
            .and_then(|s| class(&a.metric, a.scale.as_deref(), s));
        let after = m
            .next_score
            .and_then(|s| class(&a.metric, m.next_scale.as_deref(), s));
        if let (Some(before), Some(after)) = (before, after) {
            again += 1;
            if after > before {
                up += 1;
            }
        }
    }
    let opened = alerts.len() as u64;
    Figures {
        key,
        opened,
        acknowledged: to_ack.len() as u64,
        acknowledged_in_time: in_time,
        acknowledged_in_time_pct: percent(in_time, opened),
        median_seconds_to_acknowledge: median(to_ack),
        resolved: to_resolve.len() as u64,
        median_seconds_to_resolve: median(to_resolve),
        answered_again: again,
        moved_up: up,
        moved_up_pct: percent(up, again),
    }
}

/// The figures of each group (ordered by key; alerts without an owner or team under `null`)
/// and of all together.
pub fn measure(alerts: &[Measured], group_by: Option<GroupBy>) -> (Vec<Figures>, Figures) {
    let all: Vec<&Measured> = alerts.iter().collect();
    let total = figures(None, &all);
    let Some(group_by) = group_by else {
        return (Vec::new(), total);
    };
    let key_of = |m: &Measured| match group_by {
        GroupBy::Owner => m.alert.owner_ref.clone(),
        GroupBy::Team => m.alert.team_ref.clone(),
        GroupBy::Severity => Some(m.alert.severity.clone()),
    };
    let mut groups: std::collections::BTreeMap<Option<String>, Vec<&Measured>> = Default::default();
    for m in alerts {
        groups.entry(key_of(m)).or_default().push(m);
    }
    let figures = groups
        .into_iter()
        .map(|(key, members)| figures(key, &members))
        .collect();
    (figures, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_percentages() {
        assert_eq!(median(vec![30, 10, 20]), Some(20));
        assert_eq!(median(vec![10, 20]), Some(15));
        assert_eq!(median(vec![]), None);
        assert_eq!(percent(2, 3), Some(66.7));
        assert_eq!(percent(0, 0), None);
    }
}
