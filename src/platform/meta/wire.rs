//! Meta's JSON shapes turned into platform types: numbers sent as strings or
//! numbers, metrics that are absent when zero, money in major units for spend
//! and action values but minor units for budgets.
use std::collections::HashMap;

use serde_json::Value;

use super::decimal::{major_to_minor, parse_count};
use super::error::{PlatformError, as_i64};
use crate::domain::ids::{AccountId, CampaignId};
use crate::domain::money::minor_unit_offset;
use crate::platform::types::{AccountInfo, AdSetBudget, BudgetHolder, CampaignPerformance, CampaignState, ObjectState};

/// Fields asked of an ad account.
pub(super) const ACCOUNT_FIELDS: &str = "name,currency,timezone_name,account_status";
/// Fields asked of each campaign.
pub(super) const CAMPAIGN_FIELDS: &str = "id,name,status,effective_status,daily_budget,lifetime_budget";
/// Fields asked of each ad set.
pub(super) const ADSET_FIELDS: &str = "id,campaign_id,status,effective_status,daily_budget,lifetime_budget";
/// Fields asked of an object read back after a write.
pub(super) const OBJECT_FIELDS: &str = "id,status,effective_status,daily_budget";
/// Fields asked of each insights row; `account_currency` tells the money offset.
pub(super) const INSIGHTS_FIELDS: &str =
    "campaign_id,campaign_name,account_currency,spend,impressions,clicks,ctr,actions,action_values,purchase_roas";

fn decode(what: &str) -> PlatformError {
    PlatformError::Decode(what.to_owned())
}

fn text<'a>(row: &'a Value, key: &str) -> Option<&'a str> {
    row.get(key).and_then(Value::as_str)
}

/// A number as text, whether Meta sent `"12"` or `12`.
fn number_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A budget field: minor units as a numeric string. Absent, empty or "0" means
/// none, as Meta reports budgets the object does not hold.
fn budget(row: &Value, key: &str) -> Result<Option<i64>, PlatformError> {
    let Some(raw) = row.get(key).and_then(number_text) else { return Ok(None) };
    if raw.is_empty() {
        return Ok(None);
    }
    let minor = parse_count(&raw).map_err(|e| decode(&format!("{key}: {e}")))?;
    Ok((minor > 0).then_some(minor))
}

/// Parses the ad account node.
pub(super) fn account(account: &AccountId, body: &Value) -> Result<AccountInfo, PlatformError> {
    let currency = text(body, "currency").ok_or_else(|| decode("account without currency"))?;
    Ok(AccountInfo {
        account_id: account.clone(),
        name: text(body, "name").unwrap_or_default().to_owned(),
        currency: currency.to_owned(),
        currency_offset: minor_unit_offset(currency),
        timezone_name: text(body, "timezone_name").unwrap_or("UTC").to_owned(),
        account_status: body.get("account_status").and_then(as_i64).unwrap_or(0),
    })
}

fn campaign_id(raw: Option<&str>) -> Result<CampaignId, PlatformError> {
    let raw = raw.ok_or_else(|| decode("row without campaign id"))?;
    CampaignId::parse(raw, "campaign_id").map_err(|_| decode("campaign id is not numeric"))
}

/// Whether any campaign row may keep its budget on ad sets (no campaign daily
/// or lifetime budget), so the ad sets need reading at all.
pub(super) fn needs_ad_sets(campaigns: &[Value]) -> Result<bool, PlatformError> {
    for row in campaigns {
        if budget(row, "daily_budget")?.is_none() && budget(row, "lifetime_budget")?.is_none() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Joins campaign rows with ad set rows into campaign states.
pub(super) fn campaigns(campaign_rows: &[Value], adset_rows: &[Value]) -> Result<Vec<CampaignState>, PlatformError> {
    let mut by_campaign: HashMap<&str, Vec<AdSetBudget>> = HashMap::new();
    for row in adset_rows {
        let (Some(id), Some(parent)) = (text(row, "id"), text(row, "campaign_id")) else {
            return Err(decode("ad set without id or campaign_id"));
        };
        if let Some(daily) = budget(row, "daily_budget")? {
            by_campaign.entry(parent).or_default().push(AdSetBudget {
                adset_id: id.to_owned(),
                daily_budget_minor: daily,
                active: text(row, "status") == Some("ACTIVE"),
            });
        }
    }
    campaign_rows
        .iter()
        .map(|row| {
            let id = campaign_id(text(row, "id"))?;
            let holder = if let Some(daily) = budget(row, "daily_budget")? {
                BudgetHolder::Campaign { daily_budget_minor: daily }
            } else if budget(row, "lifetime_budget")?.is_some() {
                BudgetHolder::NoDailyBudget
            } else {
                match by_campaign.remove(id.as_str()) {
                    Some(ad_sets) => BudgetHolder::AdSets(ad_sets),
                    None => BudgetHolder::NoDailyBudget,
                }
            };
            Ok(CampaignState {
                name: text(row, "name").unwrap_or_default().to_owned(),
                status: text(row, "status").unwrap_or_default().to_owned(),
                effective_status: text(row, "effective_status").unwrap_or_default().to_owned(),
                campaign_id: id,
                budget: holder,
            })
        })
        .collect()
}

/// The value of exactly one action type in an `actions`/`action_values` list;
/// never a sum over types, which would count one purchase several times.
fn action_value(row: &Value, list: &str, action_type: &str) -> Option<String> {
    row.get(list)?
        .as_array()?
        .iter()
        .find(|a| text(a, "action_type") == Some(action_type))
        .and_then(|a| a.get("value"))
        .and_then(number_text)
}

/// Parses one insights row. `fallback_offset` is used when the row does not
/// carry `account_currency`.
pub(super) fn performance(
    row: &Value,
    purchase_type: &str,
    fallback_offset: i64,
) -> Result<CampaignPerformance, PlatformError> {
    let offset = text(row, "account_currency").map_or(fallback_offset, minor_unit_offset);
    let id = campaign_id(text(row, "campaign_id"))?;
    let field = |key: &str, raw: Option<String>, offset: i64| -> Result<i64, PlatformError> {
        match raw {
            None => Ok(0),
            Some(raw) => major_to_minor(&raw, offset).map_err(|e| decode(&format!("campaign {id}: {key}: {e}"))),
        }
    };
    let metric = |key: &str| row.get(key).and_then(number_text);
    Ok(CampaignPerformance {
        spend_minor: field("spend", metric("spend"), offset)?,
        revenue_minor: field("action_values", action_value(row, "action_values", purchase_type), offset)?,
        impressions: field("impressions", metric("impressions"), 1)?,
        clicks: field("clicks", metric("clicks"), 1)?,
        conversions: field("actions", action_value(row, "actions", purchase_type), 1)?,
        ctr_percent: metric("ctr").and_then(|s| s.trim().parse::<f64>().ok()).filter(|c| c.is_finite()).unwrap_or(0.0),
        campaign_name: text(row, "campaign_name").unwrap_or_default().to_owned(),
        date_start: text(row, "date_start").unwrap_or_default().to_owned(),
        date_stop: text(row, "date_stop").unwrap_or_default().to_owned(),
        campaign_id: id,
    })
}

/// Parses a campaign or ad set node read back after a write.
pub(super) fn object_state(body: &Value) -> Result<ObjectState, PlatformError> {
    Ok(ObjectState {
        id: text(body, "id").ok_or_else(|| decode("object without id"))?.to_owned(),
        status: text(body, "status").unwrap_or_default().to_owned(),
        effective_status: text(body, "effective_status").unwrap_or_default().to_owned(),
        daily_budget_minor: budget(body, "daily_budget")?,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn insights_pick_one_purchase_type_and_parse_money_exactly() {
        let row = json!({
            "campaign_id": "123", "campaign_name": "Summer", "account_currency": "USD",
            "spend": "100.50", "impressions": "10000", "clicks": "250", "ctr": "2.5",
            "actions": [{"action_type": "purchase", "value": "12"}, {"action_type": "omni_purchase", "value": 12}],
            "action_values": [{"action_type": "purchase", "value": "1500.50"}, {"action_type": "omni_purchase", "value": "1500.505"}],
            "date_start": "2026-06-01", "date_stop": "2026-06-07"
        });
        let p = performance(&row, "omni_purchase", 100).expect("parses");
        assert_eq!((p.spend_minor, p.revenue_minor, p.conversions), (10_050, 150_050, 12));
        assert_eq!((p.impressions, p.clicks, p.ctr_percent), (10_000, 250, 2.5));
        assert_eq!((p.date_start.as_str(), p.date_stop.as_str()), ("2026-06-01", "2026-06-07"));
    }

    #[test]
    fn missing_metrics_are_zero_and_jpy_has_no_decimals() {
        let row = json!({"campaign_id": "9", "account_currency": "JPY", "spend": "1500"});
        let p = performance(&row, "omni_purchase", 100).expect("parses");
        assert_eq!(
            (p.spend_minor, p.revenue_minor, p.impressions, p.conversions, p.ctr_percent),
            (1_500, 0, 0, 0, 0.0)
        );
        assert!(performance(&json!({"campaign_id": "9", "spend": "1,5"}), "omni_purchase", 100).is_err());
    }

    #[test]
    fn campaigns_join_their_ad_set_budgets() {
        let campaigns_json = [
            json!({"id": "1", "name": "cbo", "status": "ACTIVE", "effective_status": "ACTIVE", "daily_budget": "20000"}),
            json!({"id": "2", "name": "abo", "status": "ACTIVE", "effective_status": "ACTIVE"}),
            json!({"id": "3", "name": "life", "status": "PAUSED", "effective_status": "PAUSED", "lifetime_budget": "900000"}),
        ];
        let adsets = [
            json!({"id": "21", "campaign_id": "2", "status": "ACTIVE", "daily_budget": "5000"}),
            json!({"id": "22", "campaign_id": "2", "status": "PAUSED", "daily_budget": "7000"}),
            json!({"id": "11", "campaign_id": "1", "status": "ACTIVE"}),
        ];
        assert!(!needs_ad_sets(&campaigns_json[..1]).expect("valid"));
        assert!(needs_ad_sets(&campaigns_json).expect("valid"));
        let states = campaigns(&campaigns_json, &adsets).expect("joins");
        assert_eq!(states[0].budget, BudgetHolder::Campaign { daily_budget_minor: 20_000 });
        assert_eq!(states[1].daily_budget_minor(), Some(5_000));
        assert_eq!(states[2].budget, BudgetHolder::NoDailyBudget);
    }
}
