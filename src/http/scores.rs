//! `GET /v1/scores`: NPS, CSAT and CES from the scoring store.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use channels::model::Metric;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::auth::TenantAuth;
use super::feedback::parse_query;
use super::problem::ApiError;
use super::AppState;
use crate::store::scores::{self, GroupBy, ScoreQuery, Tally};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/scores", get(get_scores))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    metric: String,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    channel: Option<String>,
    group_by: Option<String>,
}

fn bad(detail: String) -> ApiError {
    ApiError::BadRequest {
        kind: "invalid-query",
        detail,
    }
}

fn percent(part: i64, whole: i64) -> f64 {
    part as f64 * 100.0 / whole as f64
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The metric's fields for one tally. Scores are null when there are no responses.
pub fn score_fields(metric: Metric, t: &Tally) -> Map<String, Value> {
    let n = t.responses;
    let some = n > 0;
    let fields = match metric {
        Metric::Nps => json!({
            "responses": n,
            "promoters": t.high,
            "passives": t.middle,
            "detractors": t.low,
            "score": some.then(|| round2(percent(t.high, n) - percent(t.low, n))),
        }),
        Metric::Csat => json!({
            "responses": n,
            "satisfied": t.high,
            "score": some.then(|| round2(percent(t.high, n))),
        }),
        Metric::Ces => json!({
            "responses": n,
            "mean": some.then(|| round2(t.total as f64 / n as f64)),
            "low_effort": t.high,
            "low_effort_percent": some.then(|| round2(percent(t.high, n))),
        }),
        Metric::Text => json!({ "responses": n }),
    };
    match fields {
        Value::Object(map) => map,
        _ => unreachable!("json! of an object literal"),
    }
}

async fn get_scores(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    uri: axum::http::Uri,
) -> Result<Json<Value>, ApiError> {
    let p: Params = parse_query(uri.query())?;
    let metric: Metric = p
        .metric
        .parse()
        .map_err(|e: channels::model::InvalidValue| bad(e.to_string()))?;
    if metric == Metric::Text {
        return Err(bad("metric: scores exist for nps, csat and ces".into()));
    }
    let group_by = p
        .group_by
        .as_deref()
        .map(|g| {
            g.parse::<GroupBy>().map_err(|()| {
                bad(format!(
                    "group_by: unknown `{g}`; expected channel, day, week, month, agent or team"
                ))
            })
        })
        .transpose()?;
    if let (Some(from), Some(to)) = (p.from, p.to) {
        if from >= to {
            return Err(bad("from: must be before `to`".into()));
        }
    }
    let query = ScoreQuery {
        metric: Some(metric),
        from: p.from.map(channels::sanitize::storable),
        to: p.to.map(channels::sanitize::storable),
        channel: p.channel,
        group_by,
    };
    let tallies = scores::tally(&state.db, tenant.id, metric, &query)
        .await
        .map_err(|e| state.db_error(e))?;
    let mut body = Map::new();
    body.insert("metric".into(), json!(metric));
    match group_by {
        None => {
            let overall = tallies.into_iter().next().unwrap_or_default();
            body.extend(score_fields(metric, &overall));
        }
        Some(_) => {
            body.insert("group_by".into(), json!(p.group_by));
            let groups: Vec<Value> = tallies
                .iter()
                .map(|t| {
                    let mut g = Map::new();
                    g.insert("key".into(), json!(t.key));
                    g.extend(score_fields(metric, t));
                    Value::Object(g)
                })
                .collect();
            body.insert("groups".into(), Value::Array(groups));
        }
    }
    Ok(Json(Value::Object(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nps_worked_example_scores_30() {
        let t = Tally {
            responses: 10,
            high: 4,
            middle: 5,
            low: 1,
            ..Default::default()
        };
        let f = score_fields(Metric::Nps, &t);
        assert_eq!(f["score"], json!(30.0));
        assert_eq!(f["promoters"], json!(4));
    }

    #[test]
    fn scores_are_null_without_responses() {
        let f = score_fields(Metric::Csat, &Tally::default());
        assert_eq!(f["score"], Value::Null);
        assert_eq!(f["responses"], json!(0));
    }

    #[test]
    fn ces_mean_and_low_effort_share() {
        let t = Tally {
            responses: 4,
            total: 22,
            high: 3,
            ..Default::default()
        };
        let f = score_fields(Metric::Ces, &t);
        assert_eq!(f["mean"], json!(5.5));
        assert_eq!(f["low_effort_percent"], json!(75.0));
    }
}
