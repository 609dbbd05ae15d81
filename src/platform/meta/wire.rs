//! Meta's JSON shapes (private DTOs) turned into platform types: numbers sent
//! as strings or numbers, metrics that are absent when zero, money in major
//! units for spend and action values but minor units for budgets.
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::decimal::{major_to_minor, parse_count};
use super::error::PlatformError;
use crate::domain::ids::{AccountId, CampaignId};
use crate::domain::money::minor_unit_offset;
use crate::domain::performance::Performance;
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
/// Fields asked of each row of a day-by-day read: only what a campaign's
/// daily history uses (a week of an account is thousands of rows).
pub(super) const DAILY_INSIGHTS_FIELDS: &str = "campaign_id,account_currency,spend,impressions,actions,action_values";

/// One page of an edge.
#[derive(Debug, Deserialize)]
pub(super) struct Page<T> {
    pub(super) data: Vec<T>,
    #[serde(default)]
    pub(super) paging: Option<Paging>,
}

/// Paging of a page; only `next` matters (cursors may be stale).
#[derive(Debug, Deserialize)]
pub(super) struct Paging {
    #[serde(default)]
    pub(super) next: Option<String>,
}

/// The ad account node.
#[derive(Debug, Deserialize)]
pub(super) struct AccountNode {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    timezone_name: Option<String>,
    #[serde(default, deserialize_with = "num_text")]
    account_status: Option<String>,
}

/// A campaign or ad set row, or an object read back.
#[derive(Debug, Deserialize)]
pub(super) struct ObjectRow {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    campaign_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    effective_status: Option<String>,
    #[serde(default, deserialize_with = "num_text")]
    daily_budget: Option<String>,
    #[serde(default, deserialize_with = "num_text")]
    lifetime_budget: Option<String>,
}

/// One insights row, borrowing its text from the page it was decoded from:
/// a page of 500 rows with their action lists would otherwise allocate a
/// `String` for every field of every entry, to keep three numbers of each.
#[derive(Debug, Deserialize)]
pub(super) struct InsightsRow<'a> {
    #[serde(default, borrow, deserialize_with = "text_cow")]
    campaign_id: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "text_cow")]
    campaign_name: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "text_cow")]
    account_currency: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "num_cow")]
    spend: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "num_cow")]
    impressions: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "num_cow")]
    clicks: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "num_cow")]
    ctr: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    actions: Option<Vec<ActionStat<'a>>>,
    #[serde(default, borrow)]
    action_values: Option<Vec<ActionStat<'a>>>,
    #[serde(default, borrow, deserialize_with = "text_cow")]
    date_start: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "text_cow")]
    date_stop: Option<Cow<'a, str>>,
}

impl InsightsRow<'_> {
    /// Whether the row says which currency its money is in.
    pub(super) fn has_currency(&self) -> bool {
        self.account_currency.is_some()
    }

    /// The same row owning its text, to outlive the page it came from.
    pub(super) fn into_owned(self) -> InsightsRow<'static> {
        let own = |v: Option<Cow<'_, str>>| v.map(|c| Cow::Owned(c.into_owned()));
        let stats = |v: Option<Vec<ActionStat<'_>>>| {
            v.map(|list| {
                list.into_iter().map(|a| ActionStat { action_type: own(a.action_type), value: own(a.value) }).collect()
            })
        };
        InsightsRow {
            campaign_id: own(self.campaign_id),
            campaign_name: own(self.campaign_name),
            account_currency: own(self.account_currency),
            spend: own(self.spend),
            impressions: own(self.impressions),
            clicks: own(self.clicks),
            ctr: own(self.ctr),
            actions: stats(self.actions),
            action_values: stats(self.action_values),
            date_start: own(self.date_start),
            date_stop: own(self.date_stop),
        }
    }
}

/// An `AdsActionStats` entry.
#[derive(Debug, Deserialize)]
struct ActionStat<'a> {
    #[serde(default, borrow, deserialize_with = "text_cow")]
    action_type: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "num_cow")]
    value: Option<Cow<'a, str>>,
}

/// A string, borrowed from the page unless it had escapes to undo; `null`
/// is none. serde's own `Option<Cow<str>>` would always copy.
fn text_cow<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    struct TextCow;
    impl<'de> Visitor<'de> for TextCow {
        type Value = Option<Cow<'de, str>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Borrowed(v)))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_owned())))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(TextCow)
}

/// A number as text, whether Meta sent `"12"`, `12` or `12.5` (Rust prints
/// the shortest decimal that round-trips: 1500.5 stays "1500.5"); `null` is
/// none. A string is borrowed from the page when it can be.
fn num_cow<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    struct NumCow;
    impl<'de> Visitor<'de> for NumCow {
        type Value = Option<Cow<'de, str>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number or a numeric string")
        }
        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Borrowed(v)))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_owned())))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(NumCow)
}

/// A number as text, whether Meta sent `"12"`, `12` or `12.5`; `null` is none.
fn num_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    num_cow(d).map(|text| text.map(Cow::into_owned))
}

fn decode(what: &str) -> PlatformError {
    PlatformError::Decode(what.to_owned())
}

/// A budget field: minor units as a numeric string. Absent, empty or "0" means
/// none, as Meta reports budgets the object does not hold.
fn budget(raw: Option<&str>, key: &str) -> Result<Option<i64>, PlatformError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(raw) => {
            let minor = parse_count(raw).map_err(|e| decode(&format!("{key}: {e}")))?;
            // Beyond any real budget (and near i64 overflow once summed): a
            // corrupted answer. Refusing it keeps it out of every decision and
            // record; the account is reported failed until Meta answers sanely.
            if minor > crate::domain::rule::MAX_AMOUNT_MINOR {
                return Err(decode(&format!("{key} of {minor} minor units is beyond any real budget")));
            }
            Ok((minor > 0).then_some(minor))
        }
    }
}

/// Parses the ad account node.
pub(super) fn account(account: &AccountId, node: AccountNode) -> Result<AccountInfo, PlatformError> {
    let currency = node.currency.ok_or_else(|| decode("account without currency"))?;
    let status = node.account_status.as_deref().map(parse_count).transpose();
    Ok(AccountInfo {
        account_id: account.clone(),
        name: node.name.unwrap_or_default(),
        currency_offset: minor_unit_offset(&currency),
        currency,
        timezone_name: node.timezone_name.unwrap_or_else(|| "UTC".to_owned()),
        account_status: status.map_err(|e| decode(&format!("account_status: {e}")))?.unwrap_or(0),
    })
}

fn campaign_id(raw: Option<&str>) -> Result<CampaignId, PlatformError> {
    let raw = raw.ok_or_else(|| decode("row without campaign id"))?;
    CampaignId::parse(raw, "campaign_id").map_err(|_| decode("campaign id is not numeric"))
}

impl ObjectRow {
    fn daily(&self) -> Result<Option<i64>, PlatformError> {
        budget(self.daily_budget.as_deref(), "daily_budget")
    }

    fn lifetime(&self) -> Result<Option<i64>, PlatformError> {
        budget(self.lifetime_budget.as_deref(), "lifetime_budget")
    }
}

/// Whether any campaign row may keep its budget on ad sets (no campaign daily
/// or lifetime budget), so the ad sets need reading at all.
pub(super) fn needs_ad_sets(campaigns: &[ObjectRow]) -> Result<bool, PlatformError> {
    for row in campaigns {
        if row.daily()?.is_none() && row.lifetime()?.is_none() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Joins campaign rows with ad set rows into campaign states.
pub(super) fn campaigns(
    campaign_rows: Vec<ObjectRow>,
    adset_rows: Vec<ObjectRow>,
) -> Result<Vec<CampaignState>, PlatformError> {
    let mut by_campaign: HashMap<String, Vec<AdSetBudget>> = HashMap::new();
    for row in adset_rows {
        let Some(daily) = row.daily()? else { continue };
        let (Some(id), Some(parent)) = (row.id, row.campaign_id) else {
            return Err(decode("ad set without id or campaign_id"));
        };
        by_campaign.entry(parent).or_default().push(AdSetBudget {
            adset_id: id,
            daily_budget_minor: daily,
            active: row.status.as_deref() == Some("ACTIVE"),
        });
    }
    campaign_rows
        .into_iter()
        .map(|row| {
            let id = campaign_id(row.id.as_deref())?;
            let holder = if let Some(daily) = row.daily()? {
                BudgetHolder::Campaign { daily_budget_minor: daily }
            } else if row.lifetime()?.is_some() {
                BudgetHolder::NoDailyBudget
            } else {
                match by_campaign.remove(id.as_str()) {
                    Some(ad_sets) => BudgetHolder::AdSets(ad_sets),
                    None => BudgetHolder::NoDailyBudget,
                }
            };
            Ok(CampaignState {
                campaign_id: id,
                name: row.name.unwrap_or_default(),
                status: row.status.unwrap_or_default(),
                effective_status: row.effective_status.unwrap_or_default(),
                budget: holder,
            })
        })
        .collect()
}

/// The value of exactly one action type in an `actions`/`action_values` list;
/// never a sum over types, which would count one purchase several times.
fn action_value<'a>(list: Option<&'a [ActionStat<'_>]>, action_type: &str) -> Option<&'a str> {
    list?.iter().find(|a| a.action_type.as_deref() == Some(action_type))?.value.as_deref()
}

/// Parses one insights row. `fallback_offset` is used when the row does not
/// carry `account_currency`.
pub(super) fn performance(
    row: InsightsRow<'_>,
    purchase_type: &str,
    fallback_offset: i64,
) -> Result<CampaignPerformance, PlatformError> {
    let offset = row.account_currency.as_deref().map_or(fallback_offset, minor_unit_offset);
    let id = campaign_id(row.campaign_id.as_deref())?;
    let field = |key: &str, raw: Option<&str>, offset: i64| -> Result<i64, PlatformError> {
        match raw {
            None => Ok(0),
            Some(raw) => major_to_minor(raw, offset).map_err(|e| decode(&format!("campaign {id}: {key}: {e}"))),
        }
    };
    Ok(CampaignPerformance {
        figures: Performance {
            spend_minor: field("spend", row.spend.as_deref(), offset)?,
            revenue_minor: field("action_values", action_value(row.action_values.as_deref(), purchase_type), offset)?,
            impressions: field("impressions", row.impressions.as_deref(), 1)?,
            clicks: field("clicks", row.clicks.as_deref(), 1)?,
            conversions: field("actions", action_value(row.actions.as_deref(), purchase_type), 1)?,
            ctr_percent: row
                .ctr
                .as_deref()
                .and_then(|s| s.trim().parse::<f64>().ok())
                .filter(|c| c.is_finite())
                .unwrap_or(0.0),
        },
        campaign_name: row.campaign_name.map(Cow::into_owned).unwrap_or_default(),
        date_start: row.date_start.map(Cow::into_owned).unwrap_or_default(),
        date_stop: row.date_stop.map(Cow::into_owned).unwrap_or_default(),
        campaign_id: id,
    })
}

/// Parses a campaign or ad set node read back after a write.
pub(super) fn object_state(row: ObjectRow) -> Result<ObjectState, PlatformError> {
    let daily_budget_minor = row.daily()?;
    Ok(ObjectState {
        id: row.id.ok_or_else(|| decode("object without id"))?,
        status: row.status.unwrap_or_default(),
        effective_status: row.effective_status.unwrap_or_default(),
        daily_budget_minor,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn insights(row: Value) -> InsightsRow<'static> {
        InsightsRow::deserialize(&row).expect("an insights row").into_owned()
    }

    fn rows(list: &[Value]) -> Vec<ObjectRow> {
        list.iter().map(|v| serde_json::from_value(v.clone()).expect("a row")).collect()
    }

    #[test]
    fn insights_pick_one_purchase_type_and_parse_money_exactly() {
        let row = json!({
            "campaign_id": "123", "campaign_name": "Summer", "account_currency": "USD",
            "spend": "100.50", "impressions": "10000", "clicks": "250", "ctr": "2.5",
            "actions": [{"action_type": "purchase", "value": "12"}, {"action_type": "omni_purchase", "value": 12}],
            "action_values": [{"action_type": "purchase", "value": "1500.50"}, {"action_type": "omni_purchase", "value": "1500.505"}],
            "date_start": "2026-06-01", "date_stop": "2026-06-07"
        });
        let p = performance(insights(row), "omni_purchase", 100).expect("parses");
        assert_eq!((p.figures.spend_minor, p.figures.revenue_minor, p.figures.conversions), (10_050, 150_050, 12));
        assert_eq!((p.figures.impressions, p.figures.clicks, p.figures.ctr_percent), (10_000, 250, 2.5));
        assert_eq!((p.date_start.as_str(), p.date_stop.as_str()), ("2026-06-01", "2026-06-07"));
    }

    #[test]
    fn missing_metrics_are_zero_and_jpy_has_no_decimals() {
        let row = json!({"campaign_id": "9", "account_currency": "JPY", "spend": "1500"});
        let p = performance(insights(row), "omni_purchase", 100).expect("parses");
        assert_eq!(
            (
                p.figures.spend_minor,
                p.figures.revenue_minor,
                p.figures.impressions,
                p.figures.conversions,
                p.figures.ctr_percent
            ),
            (1_500, 0, 0, 0, 0.0)
        );
        assert!(performance(insights(json!({"campaign_id": "9", "spend": "1,5"})), "omni_purchase", 100).is_err());
        let numeric = insights(json!({"campaign_id": "9", "spend": 12.5, "impressions": 10, "ctr": null,
            "action_values": [{"action_type": "omni_purchase", "value": 1225}]}));
        let p = performance(numeric, "omni_purchase", 100).expect("numbers parse too");
        assert_eq!((p.figures.spend_minor, p.figures.revenue_minor, p.figures.impressions), (1_250, 122_500, 10));
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
        assert!(!needs_ad_sets(&rows(&campaigns_json[..1])).expect("valid"));
        assert!(needs_ad_sets(&rows(&campaigns_json)).expect("valid"));
        let states = campaigns(rows(&campaigns_json), rows(&adsets)).expect("joins");
        assert_eq!(states[0].budget, BudgetHolder::Campaign { daily_budget_minor: 20_000 });
        assert_eq!(states[1].daily_budget_minor(), Some(5_000));
        assert_eq!(states[2].budget, BudgetHolder::NoDailyBudget);
    }
}
