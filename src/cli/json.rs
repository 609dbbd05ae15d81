//! `--json` output: every response message as JSON, field names as in the
//! proto, enums as their proto names, times as RFC 3339 strings, durations as
//! `"<seconds>s"`, unset optional fields as `null` (prost messages have no serde).
use chrono::SecondsFormat;
use serde_json::{Value, json};

use super::format::datetime;
use crate::pb;

/// A timestamp as RFC 3339, or null.
fn time(ts: Option<&prost_types::Timestamp>) -> Value {
    datetime(ts).map_or(Value::Null, |t| Value::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true)))
}

/// A duration as protobuf JSON writes it (`"28800s"`), or null.
fn duration(d: Option<&prost_types::Duration>) -> Value {
    match d {
        None => Value::Null,
        Some(d) if d.nanos == 0 => json!(format!("{}s", d.seconds)),
        Some(d) => json!(format!("{}.{:09}s", d.seconds, d.nanos.unsigned_abs())),
    }
}

/// An enum value as its proto name, or the bare number if it is unknown.
fn enum_name<E: TryFrom<i32>>(value: i32, name: impl Fn(E) -> &'static str) -> Value {
    E::try_from(value).map_or_else(|_| json!(value), |e| json!(name(e)))
}

/// `ScalingRule`.
pub(super) fn rule(r: &pb::ScalingRule) -> Value {
    json!({
        "id": r.id,
        "account_id": r.account_id,
        "campaign_id": r.campaign_id,
        "name": r.name,
        "enabled": r.enabled,
        "roas_scale_up_aggressive": r.roas_scale_up_aggressive,
        "ctr_scale_up_aggressive_percent": r.ctr_scale_up_aggressive_percent,
        "roas_scale_up": r.roas_scale_up,
        "roas_scale_down": r.roas_scale_down,
        "roas_pause": r.roas_pause,
        "multiplier_aggressive_up": r.multiplier_aggressive_up,
        "multiplier_up": r.multiplier_up,
        "multiplier_down": r.multiplier_down,
        "min_impressions": r.min_impressions,
        "currency": r.currency,
        "min_daily_budget_minor": r.min_daily_budget_minor,
        "max_daily_budget_minor": r.max_daily_budget_minor,
        "max_daily_spend_limit_minor": r.max_daily_spend_limit_minor,
        "require_approval_threshold_minor": r.require_approval_threshold_minor,
        "auto_approve_up_to_minor": r.auto_approve_up_to_minor,
        "cooldown": duration(r.cooldown.as_ref()),
        "metrics_window": enum_name(r.metrics_window, |w: pb::MetricsWindow| w.as_str_name()),
        "apply_hourly_schedule": r.apply_hourly_schedule,
        "strategy": enum_name(r.strategy, |s: pb::Strategy| s.as_str_name()),
        "marginal_max_step_percent": r.marginal_max_step_percent,
        "marginal_min_move_percent": r.marginal_min_move_percent,
        "marginal_half_life_days": r.marginal_half_life_days,
        "marginal_credible_level": r.marginal_credible_level,
        "marginal_elasticity_low": r.marginal_elasticity_low,
        "marginal_elasticity_high": r.marginal_elasticity_high,
        "marginal_pause_evidence": r.marginal_pause_evidence,
        "create_time": time(r.create_time.as_ref()),
        "update_time": time(r.update_time.as_ref()),
        "created_by": r.created_by,
        "updated_by": r.updated_by,
    })
}

/// A response holding one optional rule (`{"rule": ...}`).
pub(super) fn rule_response(r: Option<&pb::ScalingRule>) -> Value {
    json!({ "rule": r.map(rule) })
}

/// `PerformanceMetrics`.
fn metrics(m: &pb::PerformanceMetrics) -> Value {
    json!({
        "currency": m.currency,
        "spend_minor": m.spend_minor,
        "revenue_minor": m.revenue_minor,
        "impressions": m.impressions,
        "clicks": m.clicks,
        "conversions": m.conversions,
        "roas": m.roas,
        "ctr_percent": m.ctr_percent,
        "window": enum_name(m.window, |w: pb::MetricsWindow| w.as_str_name()),
        "window_start_date": m.window_start_date,
        "window_end_date": m.window_end_date,
    })
}

/// `ScalingAction`.
pub(super) fn action(a: &pb::ScalingAction) -> Value {
    json!({
        "id": a.id,
        "account_id": a.account_id,
        "campaign_id": a.campaign_id,
        "campaign_name": a.campaign_name,
        "rule_id": a.rule_id,
        "action_type": enum_name(a.action_type, |t: pb::ActionType| t.as_str_name()),
        "status": enum_name(a.status, |s: pb::ActionStatus| s.as_str_name()),
        "currency": a.currency,
        "old_budget_minor": a.old_budget_minor,
        "new_budget_minor": a.new_budget_minor,
        "change_minor": a.change_minor,
        "change_percent": a.change_percent,
        "budget_level": enum_name(a.budget_level, |l: pb::BudgetLevel| l.as_str_name()),
        "metrics": a.metrics.as_ref().map(metrics),
        "reason": a.reason,
        "requires_approval": a.requires_approval,
        "decided_by": a.decided_by,
        "decision_comment": a.decision_comment,
        "error": a.error,
        "create_time": time(a.create_time.as_ref()),
        "decide_time": time(a.decide_time.as_ref()),
        "execute_time": time(a.execute_time.as_ref()),
        "update_time": time(a.update_time.as_ref()),
        "cycle_id": a.cycle_id,
        "resolution": a.resolution,
        "belief": a.belief.as_ref().map(|b| json!({
            "roas": b.roas,
            "low": b.low,
            "high": b.high,
            "credible_level": b.credible_level,
            "unreported_share": b.unreported_share,
        })),
    })
}

/// A list of actions with its page token (pending and history listings).
pub(super) fn action_page(actions: &[pb::ScalingAction], next_page_token: &str) -> Value {
    json!({ "actions": actions.iter().map(action).collect::<Vec<_>>(), "next_page_token": next_page_token })
}

/// `CampaignEvaluation`.
pub(super) fn evaluation(e: &pb::CampaignEvaluation) -> Value {
    json!({
        "account_id": e.account_id,
        "campaign_id": e.campaign_id,
        "campaign_name": e.campaign_name,
        "action": e.action.as_ref().map(action),
    })
}

/// `CampaignFailure`.
pub(super) fn failure(f: &pb::CampaignFailure) -> Value {
    json!({ "account_id": f.account_id, "campaign_id": f.campaign_id, "error": f.error })
}

/// `EvaluateCampaignsResponse` (also used for merged chunks).
pub(super) fn evaluations(resp: &pb::EvaluateCampaignsResponse) -> Value {
    json!({
        "evaluations": resp.evaluations.iter().map(evaluation).collect::<Vec<_>>(),
        "failures": resp.failures.iter().map(failure).collect::<Vec<_>>(),
    })
}

/// `ActionTypeCount` list.
fn type_counts(counts: &[pb::ActionTypeCount]) -> Value {
    counts
        .iter()
        .map(|c| json!({ "action_type": enum_name(c.action_type, |t: pb::ActionType| t.as_str_name()), "count": c.count }))
        .collect()
}

/// `RunCycleResponse`.
pub(super) fn run_cycle(r: &pb::RunCycleResponse) -> Value {
    json!({
        "cycle_id": r.cycle_id,
        "start_time": time(r.start_time.as_ref()),
        "end_time": time(r.end_time.as_ref()),
        "accounts": r.accounts,
        "campaigns_evaluated": r.campaigns_evaluated,
        "actions_by_type": type_counts(&r.actions_by_type),
        "executed": r.executed,
        "pending_approval": r.pending_approval,
        "failed": r.failed,
        "expired": r.expired,
        "failures": r.failures.iter().map(failure).collect::<Vec<_>>(),
        "profiles_learned": r.profiles_learned,
        "evaluations": r.evaluations.iter().map(evaluation).collect::<Vec<_>>(),
    })
}

/// `CurrencyAmount` list.
fn amounts(list: &[pb::CurrencyAmount]) -> Value {
    list.iter().map(|a| json!({ "currency": a.currency, "amount_minor": a.amount_minor })).collect()
}

/// `DashboardFigures`.
fn figures(f: &pb::DashboardFigures) -> Value {
    json!({
        "total_actions": f.total_actions,
        "executed": f.executed,
        "pending": f.pending,
        "rejected": f.rejected,
        "failed": f.failed,
        "execution_rate_percent": f.execution_rate_percent,
        "actions_by_type": type_counts(&f.actions_by_type),
        "total_increase": amounts(&f.total_increase),
        "total_decrease": amounts(&f.total_decrease),
        "net_change": amounts(&f.net_change),
        "average_roas": f.average_roas,
        "revenue_tracked": amounts(&f.revenue_tracked),
        "automation_rate_percent": f.automation_rate_percent,
        "low_roas_spend_before": amounts(&f.low_roas_spend_before),
        "low_roas_spend_after": amounts(&f.low_roas_spend_after),
        "median_response_seconds": f.median_response_seconds,
    })
}

/// `GetDashboardResponse`; `by_account` keys sorted.
pub(super) fn dashboard(d: &pb::GetDashboardResponse) -> Value {
    let by_account: serde_json::Map<String, Value> =
        sorted(&d.by_account).into_iter().map(|(k, v)| (k.clone(), figures(v))).collect();
    json!({
        "start_time": time(d.start_time.as_ref()),
        "end_time": time(d.end_time.as_ref()),
        "overall": d.overall.as_ref().map(figures),
        "by_account": by_account,
    })
}

/// Map entries ordered by key.
pub(super) fn sorted<V>(map: &std::collections::HashMap<String, V>) -> Vec<(&String, &V)> {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

/// `HourProfile`.
pub(super) fn profile(p: &pb::HourProfile) -> Value {
    json!({
        "account_id": p.account_id,
        "campaign_id": p.campaign_id,
        "peak_hours": p.peak_hours,
        "valley_hours": p.valley_hours,
        "hourly_index": p.hourly_index,
        "confidence": p.confidence,
        "samples": p.samples,
        "day_of_week_index": p.day_of_week_index,
        "metric": p.metric,
        "learn_time": time(p.learn_time.as_ref()),
    })
}

/// `HourlyBudget` list.
fn hourly_budgets(list: &[pb::HourlyBudget]) -> Value {
    list.iter().map(|h| json!({ "hour": h.hour, "budget_minor": h.budget_minor, "multiplier": h.multiplier })).collect()
}

/// `GetTimeReportResponse`.
pub(super) fn time_report(r: &pb::GetTimeReportResponse) -> Value {
    json!({
        "profile": r.profile.as_ref().map(profile),
        "schedule": hourly_budgets(&r.schedule),
        "currency": r.currency,
    })
}

/// `GetBudgetScheduleResponse`.
pub(super) fn budget_schedule(r: &pb::GetBudgetScheduleResponse) -> Value {
    json!({
        "hours": hourly_budgets(&r.hours),
        "daily_budget_minor": r.daily_budget_minor,
        "currency": r.currency,
        "confidence": r.confidence,
    })
}

/// `LearnOptimalHoursResponse`.
pub(super) fn learned(r: &pb::LearnOptimalHoursResponse) -> Value {
    json!({
        "profiles": r.profiles.iter().map(profile).collect::<Vec<_>>(),
        "skipped_campaign_ids": r.skipped_campaign_ids,
    })
}

/// `GetReportingLagResponse`.
pub(super) fn reporting_lag(r: &pb::GetReportingLagResponse) -> Value {
    json!({
        "account_id": r.account_id,
        "points": r.points.iter().map(|p| json!({
            "hours_after": p.hours_after,
            "reported_share": p.reported_share,
            "prior_share": p.prior_share,
        })).collect::<Vec<_>>(),
        "fitted": r.fitted.as_ref().map(|f| json!({
            "immediate_share": f.immediate_share,
            "fast_split": f.fast_split,
            "fast_mean_hours": f.fast_mean_hours,
            "slow_mean_hours": f.slow_mean_hours,
        })),
        "days_observed": r.days_observed,
        "readings_used": r.readings_used,
        "prior_weight": r.prior_weight,
        "oldest_reading_hours": r.oldest_reading_hours,
        "computed_time": time(r.computed_time.as_ref()),
    })
}

/// `WatchActionsResponse`.
pub(super) fn watch_event(e: &pb::WatchActionsResponse) -> Value {
    json!({
        "sequence": e.sequence,
        "kind": enum_name(e.kind, |k: pb::ActionEventKind| k.as_str_name()),
        "event_time": time(e.event_time.as_ref()),
        "action": e.action.as_ref().map(action),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_times_and_durations_use_proto_json_forms() {
        let rule = pb::ScalingRule {
            id: 3,
            metrics_window: pb::MetricsWindow::Today as i32,
            cooldown: Some(prost_types::Duration { seconds: 28_800, nanos: 0 }),
            create_time: Some(prost_types::Timestamp { seconds: 86_400, nanos: 500_000_000 }),
            roas_pause: Some(0.8),
            ..Default::default()
        };
        let value = super::rule(&rule);
        assert_eq!(value["metrics_window"], "METRICS_WINDOW_TODAY");
        assert_eq!(value["cooldown"], "28800s");
        assert_eq!(value["create_time"], "1970-01-02T00:00:00.500Z");
        assert_eq!(value["update_time"], Value::Null);
        assert_eq!(value["roas_pause"], 0.8);
        assert_eq!(value["roas_scale_up"], Value::Null);
        assert_eq!(enum_name(42, |s: pb::ActionStatus| s.as_str_name()), json!(42));
    }
}
