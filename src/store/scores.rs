//! The scoring store: one fact per scored answer (written by the scoring sink from the outbox)
//! and the aggregate queries over them.

use channels::model::{Feedback, Metric};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, FromQueryResult, Value};
use uuid::Uuid;

use super::Db;

/// Inserts or replaces the facts for feedback records, each with the version (event time) it
/// reflects. A version older than the stored one (an event delivered late) changes nothing, so
/// redelivery in any order converges. Records without a score have no fact.
pub async fn upsert_facts<C: ConnectionTrait>(
    conn: &C,
    records: &[(Feedback, DateTime<Utc>)],
) -> Result<(), DbErr> {
    // One row per record, the newest version: a statement may not update a row twice.
    let mut newest: std::collections::HashMap<Uuid, &(Feedback, DateTime<Utc>)> =
        std::collections::HashMap::new();
    for r in records {
        match newest.get(&r.0.id) {
            Some(have) if have.1 >= r.1 => {}
            _ => {
                newest.insert(r.0.id, r);
            }
        }
    }
    let mut rows = Vec::new();
    let mut unscored = Vec::new();
    for (f, version) in newest.values() {
        match (f.score, f.scale) {
            (Some(score), Some(scale)) => rows.push([
                Value::from(f.id),
                f.tenant_id.into(),
                f.metric.as_str().into(),
                f.channel.clone().into(),
                score.into(),
                scale.as_str().into(),
                f.agent_ref.clone().into(),
                f.team_ref.clone().into(),
                f.occurred_at.into(),
                (*version).into(),
            ]),
            _ => unscored.push((f.id, *version)),
        }
    }
    if !rows.is_empty() {
        let columns = [
            "feedback_id",
            "tenant_id",
            "metric",
            "channel",
            "score",
            "scale",
            "agent_ref",
            "team_ref",
            "occurred_at",
            "source_updated_at",
        ];
        let values = rows.into_iter().flatten().collect();
        super::batch::insert_rows(
            conn,
            "score_facts",
            &columns,
            values,
            "ON CONFLICT (feedback_id) DO UPDATE SET metric = excluded.metric, \
             channel = excluded.channel, score = excluded.score, scale = excluded.scale, \
             agent_ref = excluded.agent_ref, team_ref = excluded.team_ref, \
             occurred_at = excluded.occurred_at, source_updated_at = excluded.source_updated_at \
             WHERE score_facts.source_updated_at <= excluded.source_updated_at",
        )
        .await?;
    }
    // A record without a score has no fact: one whose score was taken back loses it, unless
    // the stored fact is of a newer version (this event was delivered late).
    for chunk in unscored.chunks(500) {
        let sql = format!(
            "DELETE FROM score_facts WHERE {}",
            vec!["(feedback_id = ? AND source_updated_at <= ?)"; chunk.len()].join(" OR ")
        );
        let values = chunk
            .iter()
            .flat_map(|(id, version)| [Value::from(*id), Value::from(*version)])
            .collect();
        super::execute(conn, &sql, values).await?;
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Channel,
    Day,
    Week,
    Month,
    Agent,
    Team,
}

impl std::str::FromStr for GroupBy {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s {
            "channel" => GroupBy::Channel,
            "day" => GroupBy::Day,
            "week" => GroupBy::Week,
            "month" => GroupBy::Month,
            "agent" => GroupBy::Agent,
            "team" => GroupBy::Team,
            _ => return Err(()),
        })
    }
}

impl GroupBy {
    /// The SQL expression of the group key. Days, weeks and months are taken in UTC; a week
    /// is keyed by the date of its Monday (ISO weeks start on Monday).
    fn key_sql(self, backend: DbBackend) -> &'static str {
        let pg = backend == DbBackend::Postgres;
        match (self, pg) {
            (GroupBy::Channel, _) => "channel",
            (GroupBy::Agent, _) => "agent_ref",
            (GroupBy::Team, _) => "team_ref",
            (GroupBy::Day, false) => "strftime('%Y-%m-%d', occurred_at)",
            (GroupBy::Day, true) => "to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
            (GroupBy::Week, false) => "date(occurred_at, 'weekday 0', '-6 days')",
            (GroupBy::Week, true) => {
                "to_char(date_trunc('week', occurred_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD')"
            }
            (GroupBy::Month, false) => "strftime('%Y-%m', occurred_at)",
            (GroupBy::Month, true) => "to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM')",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ScoreQuery {
    pub metric: Option<Metric>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub channel: Option<String>,
    pub group_by: Option<GroupBy>,
}

/// Counts for one group; the HTTP layer turns them into the metric's score.
#[derive(Debug, Clone, Default, PartialEq, FromQueryResult)]
pub struct Tally {
    pub key: Option<String>,
    pub responses: i64,
    /// Sum of the raw scores (CES mean).
    pub total: i64,
    /// NPS promoters, CSAT satisfied, CES low effort.
    pub high: i64,
    /// NPS passives.
    pub middle: i64,
    /// NPS detractors.
    pub low: i64,
}

pub async fn tally(
    db: &Db,
    tenant_id: Uuid,
    metric: Metric,
    q: &ScoreQuery,
) -> Result<Vec<Tally>, DbErr> {
    // The classes are the same rules as channels::model::Score, in SQL so the database counts.
    let (high, middle, low) = match metric {
        Metric::Nps => ("score >= 9", "score BETWEEN 7 AND 8", "score <= 6"),
        Metric::Csat => (
            "(scale = 'good-bad' AND score = 1) OR (scale <> 'good-bad' AND score >= 4)",
            "1 = 0",
            "NOT ((scale = 'good-bad' AND score = 1) OR (scale <> 'good-bad' AND score >= 4))",
        ),
        Metric::Ces => ("score >= 5", "1 = 0", "score <= 3"),
        Metric::Text => ("1 = 0", "1 = 0", "1 = 0"),
    };
    let key = q
        .group_by
        .map(|g| g.key_sql(db.backend()))
        .unwrap_or("NULL");
    let mut sql = format!(
        "SELECT {key} AS key, COUNT(*) AS responses, COALESCE(SUM(score), 0) AS total, \
         COALESCE(SUM(CASE WHEN {high} THEN 1 ELSE 0 END), 0) AS high, \
         COALESCE(SUM(CASE WHEN {middle} THEN 1 ELSE 0 END), 0) AS middle, \
         COALESCE(SUM(CASE WHEN {low} THEN 1 ELSE 0 END), 0) AS low \
         FROM score_facts WHERE tenant_id = ? AND metric = ?"
    );
    let mut values: Vec<Value> = vec![tenant_id.into(), metric.as_str().into()];
    if let Some(from) = q.from {
        sql.push_str(" AND occurred_at >= ?");
        values.push(from.into());
    }
    if let Some(to) = q.to {
        sql.push_str(" AND occurred_at < ?");
        values.push(to.into());
    }
    if let Some(channel) = &q.channel {
        sql.push_str(" AND channel = ?");
        values.push(channel.clone().into());
    }
    if q.group_by.is_some() {
        sql.push_str(" GROUP BY 1 ORDER BY 1");
    }
    let rows = Tally::find_by_statement(db.statement(&sql, values))
        .all(&db.read)
        .await?;
    Ok(rows)
}
