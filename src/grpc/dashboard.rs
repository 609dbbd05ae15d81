//! `GetDashboard` (of `AutoScalerService`): validates the request, asks the
//! dashboard use case, and converts its figures to the protobuf messages.
use super::convert::{action_type_to_pb, timestamp};
use crate::domain::ids::AccountId;
use crate::error::{Error, Result};
use crate::pb;
use crate::service::AppState;
use crate::service::dashboard::{self, Figures, PerCurrency};

/// Period when the request leaves `days` at 0.
pub const DEFAULT_DAYS: i32 = 7;
/// Longest period a request may ask for.
pub const MAX_DAYS: i32 = 366;

/// The length of the period in days: 0 means the default; negative or above
/// the maximum is invalid.
fn period_days(raw: i32) -> Result<u32> {
    match raw {
        0 => Ok(DEFAULT_DAYS as u32),
        n if n < 0 => Err(Error::invalid("days", "must not be negative")),
        n if n > MAX_DAYS => Err(Error::invalid("days", format!("must be at most {MAX_DAYS}"))),
        n => Ok(n as u32),
    }
}

fn amounts(map: &PerCurrency) -> Vec<pb::CurrencyAmount> {
    map.iter()
        .map(|(currency, amount)| pb::CurrencyAmount { currency: currency.clone(), amount_minor: *amount })
        .collect()
}

fn figures_to_pb(f: &Figures) -> pb::DashboardFigures {
    pb::DashboardFigures {
        total_actions: f.total_actions,
        executed: f.executed,
        pending: f.pending,
        rejected: f.rejected,
        failed: f.failed,
        execution_rate_percent: f.execution_rate_percent,
        actions_by_type: f
            .actions_by_type
            .iter()
            .map(|(t, count)| pb::ActionTypeCount { action_type: action_type_to_pb(*t) as i32, count: *count })
            .collect(),
        total_increase: amounts(&f.total_increase),
        total_decrease: amounts(&f.total_decrease),
        net_change: amounts(&f.net_change),
        average_roas: f.average_roas,
        revenue_tracked: amounts(&f.revenue_tracked),
        automation_rate_percent: f.automation_rate_percent,
        low_roas_spend_before: amounts(&f.low_roas_spend_before),
        low_roas_spend_after: amounts(&f.low_roas_spend_after),
        median_response_seconds: f.median_response_seconds,
    }
}

/// The body of `AutoScalerService.GetDashboard`.
pub async fn get_dashboard(state: &AppState, req: pb::GetDashboardRequest) -> Result<pb::GetDashboardResponse, Error> {
    let days = period_days(req.days)?;
    let account = match req.account_id.as_str() {
        "" => None,
        raw => Some(AccountId::parse(raw, "account_id")?),
    };
    let board = dashboard::dashboard(state, days, account.as_ref().map(AccountId::as_str)).await?;
    Ok(pb::GetDashboardResponse {
        start_time: Some(timestamp(board.start)),
        end_time: Some(timestamp(board.end)),
        overall: Some(figures_to_pb(&board.overall)),
        by_account: board.by_account.iter().map(|(account, f)| (account.clone(), figures_to_pb(f))).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_default_to_seven_and_are_bounded() {
        assert_eq!(period_days(0).ok(), Some(7));
        assert_eq!(period_days(1).ok(), Some(1));
        assert_eq!(period_days(366).ok(), Some(366));
        assert!(period_days(-1).is_err());
        assert!(period_days(367).is_err());
    }
}
