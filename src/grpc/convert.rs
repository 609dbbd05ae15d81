//! Conversions between protobuf messages and domain types. Every field error
//! names the request path of the field (e.g. `rule.roas_pause`).
use chrono::{DateTime, TimeDelta, Utc};

use crate::domain::action::{ActionMetrics, ActionRecord, ActionStatus, ActionType, BudgetLevel, NewAction};
use crate::domain::ids::{AccountId, CampaignId};
use crate::domain::money::minor_unit_offset;
use crate::domain::rule::{MetricsWindow, RuleSettings, ScalingRule, Strategy};
use crate::error::{Error, Result};
use crate::pb;

/// A chrono time as a protobuf timestamp.
pub fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 }
}

/// First second of the protobuf `Timestamp` range, 0001-01-01T00:00:00Z.
pub const MIN_TIMESTAMP_SECONDS: i64 = -62_135_596_800;
/// Last second of the protobuf `Timestamp` range, 9999-12-31T23:59:59Z.
pub const MAX_TIMESTAMP_SECONDS: i64 = 253_402_300_799;

/// A protobuf timestamp as a chrono time; `field` names it in errors.
/// Outside the protobuf range (years 1 to 9999) a time is refused: chrono
/// would take it, but stored as RFC 3339 text on SQLite a year past 9999
/// sorts before today's dates and turns a filter inside out.
pub fn from_timestamp(t: &prost_types::Timestamp, field: &str) -> Result<DateTime<Utc>> {
    if !(MIN_TIMESTAMP_SECONDS..=MAX_TIMESTAMP_SECONDS).contains(&t.seconds) {
        return Err(Error::invalid(field, "must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999999Z"));
    }
    u32::try_from(t.nanos)
        .ok()
        .filter(|nanos| *nanos < 1_000_000_000)
        .and_then(|nanos| DateTime::from_timestamp(t.seconds, nanos))
        .ok_or_else(|| Error::invalid(field, "is not a valid timestamp (nanos must be 0 to 999999999)"))
}

/// Prefixes a validation error's field with the request path of its message.
pub fn within(prefix: &str) -> impl Fn(Error) -> Error + '_ {
    move |err| match err {
        Error::InvalidArgument { field, reason } => {
            Error::InvalidArgument { field: format!("{prefix}.{field}"), reason }
        }
        other => other,
    }
}

fn metrics_window_from_pb(raw: i32) -> Result<Option<MetricsWindow>> {
    use pb::MetricsWindow as W;
    Ok(match W::try_from(raw).map_err(|_| Error::invalid("metrics_window", "unknown value"))? {
        W::Unspecified => None,
        W::Last24Hours => Some(MetricsWindow::Last24Hours),
        W::Today => Some(MetricsWindow::Today),
        W::Yesterday => Some(MetricsWindow::Yesterday),
        W::Last3Days => Some(MetricsWindow::Last3Days),
        W::Last7Days => Some(MetricsWindow::Last7Days),
        W::Last14Days => Some(MetricsWindow::Last14Days),
    })
}

fn strategy_from_pb(raw: i32) -> Result<Option<Strategy>> {
    use pb::Strategy as S;
    Ok(match S::try_from(raw).map_err(|_| Error::invalid("strategy", "unknown value"))? {
        S::Unspecified => None,
        S::Thresholds => Some(Strategy::Thresholds),
        S::MarginalRoas => Some(Strategy::MarginalRoas),
    })
}

/// The protobuf value of a strategy.
pub fn strategy_to_pb(s: Strategy) -> pb::Strategy {
    match s {
        Strategy::Thresholds => pb::Strategy::Thresholds,
        Strategy::MarginalRoas => pb::Strategy::MarginalRoas,
    }
}

/// The protobuf value of a metrics window.
pub fn metrics_window_to_pb(w: MetricsWindow) -> pb::MetricsWindow {
    use pb::MetricsWindow as W;
    match w {
        MetricsWindow::Last24Hours => W::Last24Hours,
        MetricsWindow::Today => W::Today,
        MetricsWindow::Yesterday => W::Yesterday,
        MetricsWindow::Last3Days => W::Last3Days,
        MetricsWindow::Last7Days => W::Last7Days,
        MetricsWindow::Last14Days => W::Last14Days,
    }
}

fn cooldown_from_pb(d: &prost_types::Duration) -> Result<TimeDelta> {
    if d.seconds < 0 || d.nanos < 0 || d.nanos >= 1_000_000_000 {
        return Err(Error::invalid("cooldown", "must be a non-negative duration"));
    }
    TimeDelta::try_seconds(d.seconds).ok_or_else(|| Error::invalid("cooldown", "is too long"))
}

/// The scope of a rule in a request: account and optional campaign.
pub fn rule_scope(rule: &pb::ScalingRule) -> Result<(AccountId, Option<CampaignId>)> {
    let account = AccountId::parse(&rule.account_id, "account_id")?;
    let campaign = match rule.campaign_id.as_str() {
        "" => None,
        raw => Some(CampaignId::parse(raw, "campaign_id")?),
    };
    Ok((account, campaign))
}

/// The defaults a rule of `currency` starts from.
pub fn default_settings(currency: &str) -> RuleSettings {
    RuleSettings::defaults("", currency, minor_unit_offset(currency))
}

/// Every settable field of `ScalingRule`, as named in an `update_mask`.
pub const RULE_SETTINGS_PATHS: [&str; 28] = [
    "name",
    "enabled",
    "roas_scale_up_aggressive",
    "ctr_scale_up_aggressive_percent",
    "roas_scale_up",
    "roas_scale_down",
    "roas_pause",
    "multiplier_aggressive_up",
    "multiplier_up",
    "multiplier_down",
    "min_impressions",
    "currency",
    "min_daily_budget_minor",
    "max_daily_budget_minor",
    "max_daily_spend_limit_minor",
    "require_approval_threshold_minor",
    "auto_approve_up_to_minor",
    "cooldown",
    "metrics_window",
    "apply_hourly_schedule",
    "strategy",
    "marginal_max_step_percent",
    "marginal_min_move_percent",
    "marginal_half_life_days",
    "marginal_credible_level",
    "marginal_elasticity_low",
    "marginal_elasticity_high",
    "marginal_pause_evidence",
];

/// Fields of `ScalingRule` that can never change through `UpdateRule`.
pub const RULE_IMMUTABLE_PATHS: [&str; 7] =
    ["id", "account_id", "campaign_id", "create_time", "update_time", "created_by", "updated_by"];

/// Copies field `path` from the request `rule` into `settings`; a field left
/// unset in the request takes its default (`defaults`). Errors name `path`.
pub fn apply_rule_path(
    settings: &mut RuleSettings,
    rule: &pb::ScalingRule,
    path: &str,
    defaults: &RuleSettings,
) -> Result<()> {
    macro_rules! copy {
        ($field:ident) => {
            settings.$field = rule.$field.unwrap_or(defaults.$field)
        };
    }
    match path {
        "name" => settings.name = rule.name.clone(),
        "enabled" => copy!(enabled),
        "roas_scale_up_aggressive" => copy!(roas_scale_up_aggressive),
        "ctr_scale_up_aggressive_percent" => copy!(ctr_scale_up_aggressive_percent),
        "roas_scale_up" => copy!(roas_scale_up),
        "roas_scale_down" => copy!(roas_scale_down),
        "roas_pause" => copy!(roas_pause),
        "multiplier_aggressive_up" => copy!(multiplier_aggressive_up),
        "multiplier_up" => copy!(multiplier_up),
        "multiplier_down" => copy!(multiplier_down),
        "min_impressions" => copy!(min_impressions),
        "currency" => {
            settings.currency = if rule.currency.is_empty() { defaults.currency.clone() } else { rule.currency.clone() }
        }
        "min_daily_budget_minor" => copy!(min_daily_budget_minor),
        "max_daily_budget_minor" => copy!(max_daily_budget_minor),
        "max_daily_spend_limit_minor" => copy!(max_daily_spend_limit_minor),
        "require_approval_threshold_minor" => copy!(require_approval_threshold_minor),
        "auto_approve_up_to_minor" => copy!(auto_approve_up_to_minor),
        "cooldown" => {
            settings.cooldown = match &rule.cooldown {
                Some(d) => cooldown_from_pb(d)?,
                None => defaults.cooldown,
            }
        }
        "metrics_window" => {
            settings.metrics_window = metrics_window_from_pb(rule.metrics_window)?.unwrap_or(defaults.metrics_window)
        }
        "apply_hourly_schedule" => copy!(apply_hourly_schedule),
        "strategy" => settings.strategy = strategy_from_pb(rule.strategy)?.unwrap_or(defaults.strategy),
        "marginal_max_step_percent" => {
            settings.marginal.max_step_percent =
                rule.marginal_max_step_percent.unwrap_or(defaults.marginal.max_step_percent)
        }
        "marginal_min_move_percent" => {
            settings.marginal.min_move_percent =
                rule.marginal_min_move_percent.unwrap_or(defaults.marginal.min_move_percent)
        }
        "marginal_half_life_days" => {
            settings.marginal.half_life_days = rule.marginal_half_life_days.unwrap_or(defaults.marginal.half_life_days)
        }
        "marginal_credible_level" => {
            settings.marginal.credible_level = rule.marginal_credible_level.unwrap_or(defaults.marginal.credible_level)
        }
        "marginal_elasticity_low" => {
            settings.marginal.elasticity_low = rule.marginal_elasticity_low.unwrap_or(defaults.marginal.elasticity_low)
        }
        "marginal_elasticity_high" => {
            settings.marginal.elasticity_high =
                rule.marginal_elasticity_high.unwrap_or(defaults.marginal.elasticity_high)
        }
        "marginal_pause_evidence" => {
            settings.marginal.pause_evidence = rule.marginal_pause_evidence.unwrap_or(defaults.marginal.pause_evidence)
        }
        p if RULE_IMMUTABLE_PATHS.contains(&p) => {
            return Err(Error::invalid("update_mask", format!("{p} cannot be changed")));
        }
        p => return Err(Error::invalid("update_mask", format!("unknown field {p:?}"))),
    }
    Ok(())
}

/// The settings of a rule to create: the request's fields over the defaults.
pub fn rule_settings_for_create(rule: &pb::ScalingRule) -> Result<RuleSettings> {
    let currency = if rule.currency.is_empty() { "USD" } else { rule.currency.as_str() };
    let defaults = default_settings(currency);
    let mut settings = defaults.clone();
    for path in RULE_SETTINGS_PATHS {
        apply_rule_path(&mut settings, rule, path, &defaults)?;
    }
    Ok(settings)
}

/// A stored rule as a protobuf message.
pub fn rule_to_pb(rule: &ScalingRule) -> pb::ScalingRule {
    let s = &rule.settings;
    pb::ScalingRule {
        id: rule.id,
        account_id: rule.account_id.to_string(),
        campaign_id: rule.campaign_id.as_ref().map(ToString::to_string).unwrap_or_default(),
        name: s.name.clone(),
        enabled: Some(s.enabled),
        roas_scale_up_aggressive: Some(s.roas_scale_up_aggressive),
        ctr_scale_up_aggressive_percent: Some(s.ctr_scale_up_aggressive_percent),
        roas_scale_up: Some(s.roas_scale_up),
        roas_scale_down: Some(s.roas_scale_down),
        roas_pause: Some(s.roas_pause),
        multiplier_aggressive_up: Some(s.multiplier_aggressive_up),
        multiplier_up: Some(s.multiplier_up),
        multiplier_down: Some(s.multiplier_down),
        min_impressions: Some(s.min_impressions),
        currency: s.currency.clone(),
        min_daily_budget_minor: Some(s.min_daily_budget_minor),
        max_daily_budget_minor: Some(s.max_daily_budget_minor),
        max_daily_spend_limit_minor: Some(s.max_daily_spend_limit_minor),
        require_approval_threshold_minor: Some(s.require_approval_threshold_minor),
        auto_approve_up_to_minor: Some(s.auto_approve_up_to_minor),
        cooldown: Some(prost_types::Duration { seconds: s.cooldown.num_seconds(), nanos: 0 }),
        metrics_window: metrics_window_to_pb(s.metrics_window) as i32,
        apply_hourly_schedule: Some(s.apply_hourly_schedule),
        strategy: strategy_to_pb(s.strategy) as i32,
        marginal_max_step_percent: Some(s.marginal.max_step_percent),
        marginal_min_move_percent: Some(s.marginal.min_move_percent),
        marginal_half_life_days: Some(s.marginal.half_life_days),
        marginal_credible_level: Some(s.marginal.credible_level),
        marginal_elasticity_low: Some(s.marginal.elasticity_low),
        marginal_elasticity_high: Some(s.marginal.elasticity_high),
        marginal_pause_evidence: Some(s.marginal.pause_evidence),
        create_time: Some(timestamp(rule.created_at)),
        update_time: Some(timestamp(rule.updated_at)),
        created_by: rule.created_by.clone(),
        updated_by: rule.updated_by.clone(),
    }
}

/// The protobuf value of an action type.
pub fn action_type_to_pb(t: ActionType) -> pb::ActionType {
    match t {
        ActionType::ScaleUpAggressive => pb::ActionType::ScaleUpAggressive,
        ActionType::ScaleUp => pb::ActionType::ScaleUp,
        ActionType::ScaleDown => pb::ActionType::ScaleDown,
        ActionType::Pause => pb::ActionType::Pause,
        ActionType::Maintain => pb::ActionType::Maintain,
        ActionType::InsufficientData => pb::ActionType::InsufficientData,
    }
}

/// An action type from a request; `UNSPECIFIED` is `None` (any).
pub fn action_type_from_pb(raw: i32, field: &str) -> Result<Option<ActionType>> {
    let t = pb::ActionType::try_from(raw).map_err(|_| Error::invalid(field, "unknown action type"))?;
    Ok(ActionType::ALL.into_iter().find(|d| action_type_to_pb(*d) == t))
}

/// The protobuf value of an action status.
pub fn action_status_to_pb(s: ActionStatus) -> pb::ActionStatus {
    match s {
        ActionStatus::PendingApproval => pb::ActionStatus::PendingApproval,
        ActionStatus::Approved => pb::ActionStatus::Approved,
        ActionStatus::Executing => pb::ActionStatus::Executing,
        ActionStatus::Unconfirmed => pb::ActionStatus::Unconfirmed,
        ActionStatus::Executed => pb::ActionStatus::Executed,
        ActionStatus::Failed => pb::ActionStatus::Failed,
        ActionStatus::Rejected => pb::ActionStatus::Rejected,
        ActionStatus::Expired => pb::ActionStatus::Expired,
        ActionStatus::Skipped => pb::ActionStatus::Skipped,
    }
}

/// An action status from a request; `UNSPECIFIED` is `None` (any).
pub fn action_status_from_pb(raw: i32, field: &str) -> Result<Option<ActionStatus>> {
    let s = pb::ActionStatus::try_from(raw).map_err(|_| Error::invalid(field, "unknown action status"))?;
    Ok(ActionStatus::ALL.into_iter().find(|d| action_status_to_pb(*d) == s))
}

fn budget_level_to_pb(level: BudgetLevel) -> pb::BudgetLevel {
    match level {
        BudgetLevel::Campaign => pb::BudgetLevel::Campaign,
        BudgetLevel::AdSet => pb::BudgetLevel::AdSet,
        BudgetLevel::Unknown => pb::BudgetLevel::Unspecified,
    }
}

/// Metrics as a protobuf message.
pub fn metrics_to_pb(m: &ActionMetrics, currency: &str) -> pb::PerformanceMetrics {
    pb::PerformanceMetrics {
        currency: currency.to_owned(),
        spend_minor: m.figures.spend_minor,
        revenue_minor: m.figures.revenue_minor,
        impressions: m.figures.impressions,
        clicks: m.figures.clicks,
        conversions: m.figures.conversions,
        roas: m.figures.roas(),
        ctr_percent: m.figures.ctr_percent,
        window: MetricsWindow::parse(&m.window).map_or(pb::MetricsWindow::Unspecified, metrics_window_to_pb) as i32,
        window_start_date: m.window_start.clone(),
        window_end_date: m.window_end.clone(),
    }
}

/// A decision not (yet) recorded, as a protobuf action with id 0.
pub fn new_action_to_pb(a: &NewAction) -> pb::ScalingAction {
    let change = a.new_budget_minor.saturating_sub(a.old_budget_minor);
    let change_percent = if a.old_budget_minor > 0 { change as f64 * 100.0 / a.old_budget_minor as f64 } else { 0.0 };
    pb::ScalingAction {
        id: 0,
        account_id: a.account_id.clone(),
        campaign_id: a.campaign_id.clone(),
        campaign_name: a.campaign_name.clone(),
        rule_id: a.rule_id.unwrap_or_default(),
        action_type: action_type_to_pb(a.action_type) as i32,
        status: action_status_to_pb(a.status) as i32,
        currency: a.currency.clone(),
        old_budget_minor: a.old_budget_minor,
        new_budget_minor: a.new_budget_minor,
        change_minor: change,
        change_percent,
        budget_level: budget_level_to_pb(a.budget_level) as i32,
        metrics: Some(metrics_to_pb(&a.metrics, &a.currency)),
        reason: a.reason.clone(),
        requires_approval: a.requires_approval,
        cycle_id: a.cycle_id.unwrap_or_default(),
        belief: a.belief.map(|b| pb::RoasBelief {
            roas: b.roas,
            low: b.low,
            high: b.high,
            credible_level: b.credible_level,
            unreported_share: b.unreported_share,
        }),
        ..Default::default()
    }
}

/// A recorded action as a protobuf message.
pub fn action_to_pb(r: &ActionRecord) -> pb::ScalingAction {
    pb::ScalingAction {
        id: r.id,
        status: action_status_to_pb(r.status) as i32,
        decided_by: r.decided_by.clone().unwrap_or_default(),
        decision_comment: r.decision_comment.clone().unwrap_or_default(),
        error: r.error.clone().unwrap_or_default(),
        create_time: Some(timestamp(r.created_at)),
        decide_time: r.decided_at.map(timestamp),
        execute_time: r.executed_at.map(timestamp),
        update_time: Some(timestamp(r.updated_at)),
        resolution: r.resolution.clone().unwrap_or_default(),
        ..new_action_to_pb(&r.action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(seconds: i64, nanos: i32) -> prost_types::Timestamp {
        prost_types::Timestamp { seconds, nanos }
    }

    #[test]
    fn timestamps_outside_the_protobuf_range_are_refused() {
        let first = from_timestamp(&ts(MIN_TIMESTAMP_SECONDS, 0), "t").expect("0001-01-01");
        assert_eq!(first.to_rfc3339(), "0001-01-01T00:00:00+00:00");
        let last = from_timestamp(&ts(MAX_TIMESTAMP_SECONDS, 999_999_999), "t").expect("9999-12-31");
        assert_eq!(last.timestamp(), MAX_TIMESTAMP_SECONDS);
        for bad in [
            ts(MAX_TIMESTAMP_SECONDS + 1, 0),
            ts(MIN_TIMESTAMP_SECONDS - 1, 0),
            ts(i64::MAX, 0),
            ts(0, -1),
            ts(0, 1_000_000_000),
        ] {
            let err = from_timestamp(&bad, "filter.start_time").expect_err("out of range");
            assert!(
                matches!(&err, Error::InvalidArgument { field, .. } if field == "filter.start_time"),
                "{bad:?}: {err:?}"
            );
        }
    }
}
