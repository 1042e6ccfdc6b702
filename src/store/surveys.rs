//! Surveys: what to ask, in which languages, on which channels, under which policy.

use std::collections::BTreeMap;
use std::sync::Arc;

use channels::model::Metric;
use channels::vocabulary::Channel;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, Set};
use serde::Serialize;
use uuid::Uuid;

use super::entities::survey;
use super::Db;
use crate::rules::PolicyOverrides;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Survey {
    pub id: Uuid,
    pub key: String,
    pub metric: Metric,
    /// Question text per language code.
    pub question: BTreeMap<String, String>,
    pub default_language: String,
    /// In order of preference.
    pub channels: Vec<String>,
    pub trigger: String,
    /// The platforms whose "ticket closed" starts this survey; `None`: every platform.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<String>>,
    pub policy: PolicyOverrides,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Survey {
    /// Whether a ticket closed on `platform` starts this survey.
    pub fn triggered_by_ticket_from(&self, platform: &str) -> bool {
        self.trigger == "ticket_closed"
            && self
                .sources
                .as_ref()
                .is_none_or(|s| s.iter().any(|p| p == platform))
    }

    /// Whether the survey asks on `channel`.
    pub fn asks_on(&self, channel: Channel) -> bool {
        self.channels.iter().any(|c| c == channel.as_str())
    }

    /// The question in `language` (or its base language, "da" for "da-DK"), else in the
    /// survey's default language.
    pub fn question_in(&self, language: Option<&str>) -> (&str, &str) {
        let pick = |lang: &str| {
            self.question
                .get_key_value(lang)
                .or_else(|| self.question.get_key_value(lang.split(['-', '_']).next()?))
        };
        language
            .and_then(|l| pick(&l.to_ascii_lowercase()))
            .or_else(|| self.question.get_key_value(&self.default_language))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .unwrap_or(("", ""))
    }
}

fn from_row(m: survey::Model) -> Result<Survey, DbErr> {
    let corrupt = |what: &str, e: String| DbErr::Type(format!("survey {}: {what}: {e}", m.id));
    Ok(Survey {
        id: m.id,
        metric: m
            .metric
            .parse()
            .map_err(|e| corrupt("metric", format!("{e}")))?,
        question: serde_json::from_value(m.question.clone())
            .map_err(|e| corrupt("question", e.to_string()))?,
        channels: serde_json::from_value(m.channels.clone())
            .map_err(|e| corrupt("channels", e.to_string()))?,
        policy: serde_json::from_value(m.policy.clone())
            .map_err(|e| corrupt("policy", e.to_string()))?,
        sources: m
            .sources
            .clone()
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| corrupt("sources", e.to_string()))?,
        key: m.key,
        default_language: m.default_language,
        trigger: m.trigger,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

/// The fields a client sets; already validated.
pub struct SurveyDefinition {
    pub metric: Metric,
    pub question: BTreeMap<String, String>,
    pub default_language: String,
    pub channels: Vec<String>,
    pub trigger: String,
    pub sources: Option<Vec<String>>,
    pub policy: PolicyOverrides,
}

/// Creates or replaces the survey under `key`. Returns it, and whether it was new.
pub async fn put(
    db: &Db,
    tenant_id: Uuid,
    key: &str,
    def: SurveyDefinition,
) -> Result<(Survey, bool), DbErr> {
    let now = super::now();
    // From the database, not the cache: another replica may have created it a moment ago.
    let existed = survey::Entity::find()
        .filter(survey::Column::TenantId.eq(tenant_id))
        .filter(survey::Column::Key.eq(key))
        .one(&db.write)
        .await?
        .is_some();
    let json = |v: serde_json::Result<serde_json::Value>| v.map_err(|e| DbErr::Json(e.to_string()));
    let row = survey::ActiveModel {
        id: Set(channels::model::new_id()),
        tenant_id: Set(tenant_id),
        key: Set(key.to_owned()),
        metric: Set(def.metric.as_str().to_owned()),
        question: Set(json(serde_json::to_value(&def.question))?),
        default_language: Set(def.default_language),
        channels: Set(json(serde_json::to_value(&def.channels))?),
        trigger: Set(def.trigger),
        policy: Set(json(serde_json::to_value(&def.policy))?),
        sources: Set(def
            .sources
            .as_ref()
            .map(|s| json(serde_json::to_value(s)))
            .transpose()?),
        created_at: Set(now),
        updated_at: Set(now),
    };
    use survey::Column as C;
    survey::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([C::TenantId, C::Key])
                .update_columns([
                    C::Metric,
                    C::Question,
                    C::DefaultLanguage,
                    C::Channels,
                    C::Trigger,
                    C::Sources,
                    C::Policy,
                    C::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(&db.write)
        .await?;
    db.caches.surveys.invalidate(&tenant_id);
    let stored = get(db, tenant_id, key)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("survey {key}")))?;
    Ok((stored, !existed))
}

pub async fn get(db: &Db, tenant_id: Uuid, key: &str) -> Result<Option<Survey>, DbErr> {
    Ok(cached(db, tenant_id)
        .await?
        .iter()
        .find(|s| s.key == key)
        .cloned())
}

/// The tenant's surveys, by key.
pub async fn list(db: &Db, tenant_id: Uuid) -> Result<Vec<Survey>, DbErr> {
    Ok(cached(db, tenant_id).await?.as_ref().clone())
}

/// The tenant's surveys from the cache (a tenant has few; every closed ticket and dispatched
/// invitation reads them).
async fn cached(db: &Db, tenant_id: Uuid) -> Result<Arc<Vec<Survey>>, DbErr> {
    db.caches
        .surveys
        .get_or_load(
            tenant_id,
            || async {
                let rows = survey::Entity::find()
                    .filter(survey::Column::TenantId.eq(tenant_id))
                    .order_by_asc(survey::Column::Key)
                    .all(&db.read)
                    .await?;
                rows.into_iter()
                    .map(from_row)
                    .collect::<Result<Vec<_>, _>>()
                    .map(Arc::new)
            },
            |_| true,
        )
        .await
}
