//! Dashboard use case: what the auto-scaler did over the last N days, overall
//! and per account. The database aggregates (one grouped query and one
//! median query); this module only rolls the groups up into the dashboard's
//! figures, keeping money per currency.
use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};

use super::AppState;
use crate::domain::action::{ActionStatus, ActionType};
use crate::error::{Error, Result};
use crate::persistence::dashboard::{self, ActionGroup, Period};

/// Money per currency (ISO 4217 -> minor units); currencies are never added.
pub type PerCurrency = BTreeMap<String, i64>;

/// The dashboard's figures for one scope (overall or one account).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// Actions recorded in the period.
    pub total_actions: i64,
    /// Of them, executed.
    pub executed: i64,
    /// Of them, still waiting for approval.
    pub pending: i64,
    /// Of them, rejected.
    pub rejected: i64,
    /// Of them, failed.
    pub failed: i64,
    /// Executed as a percentage of the budget-changing actions.
    pub execution_rate_percent: f64,
    /// Actions by type (every type, zeros included).
    pub actions_by_type: BTreeMap<ActionType, i64>,
    /// Sum of executed increases.
    pub total_increase: PerCurrency,
    /// Sum of executed decreases (positive; a pause counts its old budget).
    pub total_decrease: PerCurrency,
    /// Increase minus decrease.
    pub net_change: PerCurrency,
    /// Mean ROAS of the decisions whose metrics had spend.
    pub average_roas: f64,
    /// Revenue in the decisions' metrics.
    pub revenue_tracked: PerCurrency,
    /// Budget-changing actions executed without a human, in percent.
    pub automation_rate_percent: f64,
    /// Spend of ROAS < 1 decisions in the first half of the period.
    pub low_roas_spend_before: PerCurrency,
    /// The same in the second half.
    pub low_roas_spend_after: PerCurrency,
    /// Median seconds from decision to confirmed execution (0 without any).
    pub median_response_seconds: f64,
}

/// The dashboard of one period.
#[derive(Debug, Clone, PartialEq)]
pub struct Dashboard {
    /// Start of the period (inclusive).
    pub start: DateTime<Utc>,
    /// End of the period (now, exclusive).
    pub end: DateTime<Utc>,
    /// Every account in scope together.
    pub overall: Figures,
    /// One entry per account with actions in the period.
    pub by_account: BTreeMap<String, Figures>,
}

/// Sums of one scope while the groups are rolled up.
#[derive(Default)]
struct Tally {
    figures: Figures,
    budget_changing: i64,
    executed_budget_changing: i64,
    executed_without_approval: i64,
    roas_sum: f64,
    roas_samples: i64,
}

fn add(map: &mut PerCurrency, currency: &str, amount: i64) {
    let entry = map.entry(currency.to_owned()).or_default();
    *entry = entry.saturating_add(amount);
}

fn percent(part: i64, whole: i64) -> f64 {
    if whole > 0 { part as f64 * 100.0 / whole as f64 } else { 0.0 }
}

impl Tally {
    fn add(&mut self, group: &ActionGroup, action_type: ActionType, status: ActionStatus) {
        let f = &mut self.figures;
        f.total_actions += group.actions;
        match status {
            ActionStatus::Executed => f.executed += group.actions,
            ActionStatus::PendingApproval => f.pending += group.actions,
            ActionStatus::Rejected => f.rejected += group.actions,
            ActionStatus::Failed => f.failed += group.actions,
            _ => {}
        }
        *f.actions_by_type.entry(action_type).or_default() += group.actions;
        let currency = group.currency.as_str();
        // Every currency of the scope appears in every money figure, with 0
        // where nothing happened, so lists line up across figures.
        for map in [
            &mut f.total_increase,
            &mut f.total_decrease,
            &mut f.revenue_tracked,
            &mut f.low_roas_spend_before,
            &mut f.low_roas_spend_after,
        ] {
            add(map, currency, 0);
        }
        if status == ActionStatus::Executed {
            add(&mut f.total_increase, currency, group.increase_minor);
            add(&mut f.total_decrease, currency, group.decrease_minor);
        }
        add(&mut f.revenue_tracked, currency, group.revenue_minor);
        add(&mut f.low_roas_spend_before, currency, group.low_roas_spend_first_half_minor);
        add(&mut f.low_roas_spend_after, currency, group.low_roas_spend_second_half_minor);
        if action_type.changes_budget() {
            self.budget_changing += group.actions;
            if status == ActionStatus::Executed {
                self.executed_budget_changing += group.actions;
                self.executed_without_approval += group.without_approval;
            }
        }
        self.roas_sum += group.roas_sum;
        self.roas_samples += group.roas_samples;
    }

    fn finish(self, median_response_seconds: Option<f64>) -> Figures {
        let mut f = self.figures;
        for t in ActionType::ALL {
            f.actions_by_type.entry(t).or_default();
        }
        f.net_change = f
            .total_increase
            .iter()
            .map(|(currency, increase)| {
                let decrease = f.total_decrease.get(currency).copied().unwrap_or(0);
                (currency.clone(), increase.saturating_sub(decrease))
            })
            .collect();
        f.execution_rate_percent = percent(self.executed_budget_changing, self.budget_changing);
        f.automation_rate_percent = percent(self.executed_without_approval, self.budget_changing);
        f.average_roas = if self.roas_samples > 0 { self.roas_sum / self.roas_samples as f64 } else { 0.0 };
        f.median_response_seconds = median_response_seconds.unwrap_or(0.0);
        f
    }
}

/// The figures of the `days` days ending now, optionally of one account.
pub async fn dashboard(state: &AppState, days: u32, account_id: Option<&str>) -> Result<Dashboard> {
    let end = Utc::now();
    let length = TimeDelta::try_days(i64::from(days)).ok_or_else(|| Error::invalid("days", "is too large"))?;
    let start = end - length;
    let period = Period { start, middle: start + length / 2, end, account_id };
    // Independent aggregates: run them side by side on the pool.
    let (groups, (overall_median, account_medians)) = futures_util::future::try_join(
        dashboard::action_groups(&state.db, &period),
        dashboard::median_response_seconds(&state.db, &period),
    )
    .await?;

    let mut overall = Tally::default();
    let mut accounts: BTreeMap<String, Tally> = BTreeMap::new();
    for group in &groups {
        let corrupt = |what: &str| Error::Internal(format!("stored action has a bad {what}"));
        let action_type = ActionType::parse(&group.action_type).ok_or_else(|| corrupt("action_type"))?;
        let status = ActionStatus::parse(&group.status).ok_or_else(|| corrupt("status"))?;
        overall.add(group, action_type, status);
        accounts.entry(group.account_id.clone()).or_default().add(group, action_type, status);
    }
    let by_account = accounts
        .into_iter()
        .map(|(account, tally)| {
            let median = account_medians.get(&account).copied();
            (account, tally.finish(median))
        })
        .collect();
    Ok(Dashboard { start, end, overall: overall.finish(overall_median), by_account })
}
