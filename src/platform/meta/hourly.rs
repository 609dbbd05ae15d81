//! Meta client for time-of-day optimization: campaign insights broken down
//! by hour of the advertiser's time zone (on-Meta metrics only: Meta returns
//! no website purchases with hourly breakdowns), and budget schedules
//! (high-demand periods) read and created on a campaign or ad set.
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{Value, json};

use super::decimal::{major_to_minor, parse_count};
use super::transport::Call;
use super::{MetaClient, PlatformError, check_object_id};
use crate::domain::ids::AccountId;
use crate::domain::money::minor_unit_offset;

/// The hourly breakdown in the ad account's time zone (the one budgets use).
pub const HOURLY_BREAKDOWN: &str = "hourly_stats_aggregated_by_advertiser_time_zone";
const HOURLY_FIELDS: &str = "campaign_id,account_currency,spend,impressions,clicks";
const SCHEDULE_FIELDS: &str = "id,budget_value,budget_value_type,time_start,time_end";

/// One campaign's on-Meta figures for one hour of one account-local day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourlyPerformance {
    /// Campaign id.
    pub campaign_id: String,
    /// Account-local date.
    pub date: NaiveDate,
    /// Account-local hour of day, 0-23 (the repeated hour of the day daylight
    /// saving ends is one bucket).
    pub hour: u32,
    /// Spend, minor units.
    pub spend_minor: i64,
    /// Impressions.
    pub impressions: i64,
    /// Clicks.
    pub clicks: i64,
}

/// How a budget schedule's `budget_value` is meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetValueType {
    /// An amount in minor units.
    Absolute,
    /// A percentage of the daily budget (150 = 1.5x).
    Multiplier,
}

impl BudgetValueType {
    /// Meta's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Absolute => "ABSOLUTE",
            Self::Multiplier => "MULTIPLIER",
        }
    }
}

/// A budget schedule to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewBudgetSchedule {
    /// Amount or percentage, per `budget_value_type`.
    pub budget_value: i64,
    /// How `budget_value` is meant.
    pub budget_value_type: BudgetValueType,
    /// Start, UNIX seconds.
    pub time_start: i64,
    /// End, UNIX seconds.
    pub time_end: i64,
}

/// A budget schedule Meta holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetSchedule {
    /// Its id.
    pub id: String,
    /// Amount or percentage.
    pub budget_value: i64,
    /// `ABSOLUTE` or `MULTIPLIER`.
    pub budget_value_type: String,
    /// Start, UNIX seconds.
    pub time_start: i64,
    /// End, UNIX seconds.
    pub time_end: i64,
}

#[derive(Debug, Deserialize)]
struct HourlyRow {
    #[serde(default)]
    campaign_id: Option<String>,
    #[serde(default)]
    account_currency: Option<String>,
    #[serde(default)]
    date_start: Option<String>,
    #[serde(default, rename = "hourly_stats_aggregated_by_advertiser_time_zone")]
    bucket: Option<String>,
    #[serde(default)]
    spend: Option<Value>,
    #[serde(default)]
    impressions: Option<Value>,
    #[serde(default)]
    clicks: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct ScheduleNode {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    budget_value: Option<Value>,
    #[serde(default)]
    budget_value_type: Option<String>,
    #[serde(default)]
    time_start: Option<Value>,
    #[serde(default)]
    time_end: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Created {
    id: Option<String>,
}

fn decode(what: String) -> PlatformError {
    PlatformError::Decode(what)
}

/// A number Meta sent as a string or a JSON number, as text.
fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn count(value: Option<&Value>, what: &str) -> Result<i64, PlatformError> {
    match text(value) {
        None => Ok(0),
        Some(raw) => parse_count(&raw).map_err(|e| decode(format!("{what}: {e}"))),
    }
}

/// `"10:00:00 - 10:59:59"` -> 10.
fn bucket_hour(bucket: &str) -> Option<u32> {
    bucket.get(..2)?.parse::<u32>().ok().filter(|h| *h < 24)
}

fn hourly(row: HourlyRow, fallback_offset: i64) -> Result<HourlyPerformance, PlatformError> {
    let campaign_id =
        row.campaign_id.filter(|id| !id.is_empty()).ok_or_else(|| decode("hourly row without campaign_id".into()))?;
    let date = row
        .date_start
        .as_deref()
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .ok_or_else(|| decode(format!("hourly row of {campaign_id} without a date")))?;
    let hour = row
        .bucket
        .as_deref()
        .and_then(bucket_hour)
        .ok_or_else(|| decode(format!("hourly row of {campaign_id} without an hour bucket")))?;
    let offset = row.account_currency.as_deref().map_or(fallback_offset, minor_unit_offset);
    let spend_minor = match text(row.spend.as_ref()) {
        None => 0,
        Some(raw) => major_to_minor(&raw, offset).map_err(|e| decode(format!("campaign {campaign_id}: spend: {e}")))?,
    };
    Ok(HourlyPerformance {
        impressions: count(row.impressions.as_ref(), "impressions")?,
        clicks: count(row.clicks.as_ref(), "clicks")?,
        campaign_id,
        date,
        hour,
        spend_minor,
    })
}

impl MetaClient {
    /// Every campaign's hourly figures from `since` to `until` (account-local
    /// days, inclusive), in one paged insights request for the account.
    /// Hours without delivery have no row.
    pub async fn hourly_insights(
        &self,
        account: &AccountId,
        since: NaiveDate,
        until: NaiveDate,
    ) -> Result<Vec<HourlyPerformance>, PlatformError> {
        let mut query = self.edge_query(HOURLY_FIELDS);
        query.push(("level".into(), "campaign".into()));
        query.push(("breakdowns".into(), HOURLY_BREAKDOWN.into()));
        query.push(("time_increment".into(), "1".into()));
        query.push(("time_range".into(), json!({"since": since.to_string(), "until": until.to_string()}).to_string()));
        let path = format!("{}/insights", account.as_str());
        let rows: Vec<HourlyRow> = self.inner.get_paged(account.as_str(), &path, query).await?;
        let fallback_offset = if rows.iter().all(|r| r.account_currency.is_some()) {
            100
        } else {
            self.account(account).await?.currency_offset
        };
        rows.into_iter().map(|row| hourly(row, fallback_offset)).collect()
    }

    /// The budget schedules of a campaign or ad set that overlap
    /// `[time_start, time_stop)` (UNIX seconds).
    pub async fn budget_schedules(
        &self,
        account: &AccountId,
        object_id: &str,
        time_start: i64,
        time_stop: i64,
    ) -> Result<Vec<BudgetSchedule>, PlatformError> {
        check_object_id(object_id)?;
        let mut query = self.edge_query(SCHEDULE_FIELDS);
        query.push(("time_start".into(), time_start.to_string()));
        query.push(("time_stop".into(), time_stop.to_string()));
        let path = format!("{object_id}/budget_schedules");
        let nodes: Vec<ScheduleNode> = self.inner.get_paged(account.as_str(), &path, query).await?;
        nodes
            .into_iter()
            .map(|n| {
                Ok(BudgetSchedule {
                    id: n.id.ok_or_else(|| decode("budget schedule without id".into()))?,
                    budget_value: count(n.budget_value.as_ref(), "budget_value")?,
                    budget_value_type: n.budget_value_type.unwrap_or_default(),
                    time_start: count(n.time_start.as_ref(), "time_start")?,
                    time_end: count(n.time_end.as_ref(), "time_end")?,
                })
            })
            .collect()
    }

    /// Creates a budget schedule on a campaign or ad set (`POST
    /// /{id}/budget_schedules`) and returns its id.
    pub async fn create_budget_schedule(
        &self,
        account: &AccountId,
        object_id: &str,
        schedule: &NewBudgetSchedule,
    ) -> Result<String, PlatformError> {
        check_object_id(object_id)?;
        let call = Call::Post {
            url: self.inner.url(&format!("{object_id}/budget_schedules"))?,
            form: vec![
                ("budget_value".into(), schedule.budget_value.to_string()),
                ("budget_value_type".into(), schedule.budget_value_type.as_str().into()),
                ("time_start".into(), schedule.time_start.to_string()),
                ("time_end".into(), schedule.time_end.to_string()),
            ],
            // A second copy would create a second schedule.
            idempotent: false,
        };
        let body = self.inner.execute(account.as_str(), &call).await?;
        let created: Created = self.inner.decode(&body, "budget schedule")?;
        created.id.ok_or_else(|| decode("budget schedule created without an id".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hour_buckets_parse_like_meta_writes_them() {
        assert_eq!(bucket_hour("00:00:00 - 00:59:59"), Some(0));
        assert_eq!(bucket_hour("23:00:00 - 23:59:59"), Some(23));
        assert_eq!(bucket_hour("24:00:00 - 24:59:59"), None);
        assert_eq!(bucket_hour("x"), None);
    }

    #[test]
    fn hourly_rows_parse_money_exactly() {
        let row: HourlyRow = serde_json::from_value(json!({
            "campaign_id": "12", "account_currency": "JPY", "date_start": "2026-11-01",
            "hourly_stats_aggregated_by_advertiser_time_zone": "01:00:00 - 01:59:59",
            "spend": "1500", "impressions": 300, "clicks": "7"
        }))
        .expect("row");
        let parsed = hourly(row, 100).expect("parses");
        assert_eq!((parsed.hour, parsed.spend_minor, parsed.impressions, parsed.clicks), (1, 1_500, 300, 7));
    }
}
