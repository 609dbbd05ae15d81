//! Learned hour-of-day profiles: one row per campaign, replaced by each
//! learning pass (upsert), arrays stored as JSON text.
use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use super::entity::optimal_hour_profile::{self as entity, Column, Entity};
use crate::domain::time_profile::{HOURS, HourProfile, Metric, WEEKDAYS, peaks_and_valleys};
use crate::error::{Error, Result};

/// A campaign's stored profile.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredProfile {
    /// Ad account.
    pub account_id: String,
    /// Campaign.
    pub campaign_id: String,
    /// The profile.
    pub profile: HourProfile,
    /// When it was learned.
    pub learned_at: DateTime<Utc>,
}

const CHUNK: usize = 500;

fn json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Internal(format!("cannot encode a profile: {e}")))
}

/// Stores profiles, replacing each campaign's previous one.
pub async fn upsert_many(db: &impl ConnectionTrait, profiles: &[StoredProfile]) -> Result<()> {
    for chunk in profiles.chunks(CHUNK) {
        let mut models = Vec::with_capacity(chunk.len());
        for s in chunk {
            let p = &s.profile;
            models.push(entity::ActiveModel {
                account_id: Set(s.account_id.clone()),
                campaign_id: Set(s.campaign_id.clone()),
                metric: Set(p.metric.as_str().to_owned()),
                hourly_index: Set(json(&p.hourly_index)?),
                day_of_week_index: Set(json(&p.day_of_week_index)?),
                peak_hours: Set(json(&p.peak_hours)?),
                valley_hours: Set(json(&p.valley_hours)?),
                confidence: Set(p.confidence),
                samples: Set(p.samples),
                learned_at: Set(s.learned_at),
                hourly_samples: Set(Some(json(&p.hourly_samples)?)),
                days: Set(Some(p.days)),
                reliability: Set(Some(p.reliability)),
                consistency: Set(Some(p.consistency)),
                ..Default::default()
            });
        }
        let mut on_conflict = OnConflict::columns([Column::AccountId, Column::CampaignId]);
        on_conflict.update_columns([
            Column::Metric,
            Column::HourlyIndex,
            Column::DayOfWeekIndex,
            Column::PeakHours,
            Column::ValleyHours,
            Column::Confidence,
            Column::Samples,
            Column::LearnedAt,
            Column::HourlySamples,
            Column::Days,
            Column::Reliability,
            Column::Consistency,
        ]);
        Entity::insert_many(models).on_conflict(on_conflict).exec_without_returning(db).await?;
    }
    Ok(())
}

/// The stored profile of a campaign, if it was learned.
pub async fn get(db: &impl ConnectionTrait, account: &str, campaign: &str) -> Result<Option<StoredProfile>> {
    let model =
        Entity::find().filter(Column::AccountId.eq(account)).filter(Column::CampaignId.eq(campaign)).one(db).await?;
    model.map(to_domain).transpose()
}

fn to_domain(m: entity::Model) -> Result<StoredProfile> {
    let corrupt = |what: &str| Error::Internal(format!("profile of campaign {} has a bad {what}", m.campaign_id));
    let parse_f64 = |raw: &str, len: usize, what: &str| -> Result<Vec<f64>> {
        let values: Vec<f64> = serde_json::from_str(raw).map_err(|_| corrupt(what))?;
        if values.len() == len { Ok(values) } else { Err(corrupt(what)) }
    };
    let metric = Metric::parse(&m.metric).ok_or_else(|| corrupt("metric"))?;
    let hourly_index = parse_f64(&m.hourly_index, HOURS, "hourly index")?;
    let day_of_week_index = parse_f64(&m.day_of_week_index, HOURS * WEEKDAYS, "day-of-week index")?;
    let hours = |raw: &str, what: &str| -> Result<Vec<u32>> { serde_json::from_str(raw).map_err(|_| corrupt(what)) };
    let (peak_hours, valley_hours) = match (hours(&m.peak_hours, "peak list"), hours(&m.valley_hours, "valley list")) {
        (Ok(p), Ok(v)) => (p, v),
        _ => peaks_and_valleys(&hourly_index),
    };
    let hourly_samples = match &m.hourly_samples {
        Some(raw) => serde_json::from_str(raw).map_err(|_| corrupt("sample counts"))?,
        None => vec![0; HOURS],
    };
    Ok(StoredProfile {
        profile: HourProfile {
            metric,
            hourly_index,
            day_of_week_index,
            peak_hours,
            valley_hours,
            confidence: m.confidence,
            samples: m.samples,
            hourly_samples,
            days: m.days.unwrap_or(m.samples as f64 / HOURS as f64),
            reliability: m.reliability.unwrap_or(0.0),
            consistency: m.consistency.unwrap_or(0.0),
        },
        account_id: m.account_id,
        campaign_id: m.campaign_id,
        learned_at: m.learned_at,
    })
}
