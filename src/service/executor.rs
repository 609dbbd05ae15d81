//! The executor: applies approved actions to the ad platform exactly once.
//!
//! An action is claimed by one conditional update (approved -> executing, with
//! a claim token), so two executors, a retry or a crash-and-restart can never
//! apply it twice. Before writing, the platform's current budget must still
//! equal the action's old budget (a budget someone changed by hand is never
//! overwritten). After writing, the budget is read back: a write that did not
//! stick fails the action. An action found in `executing` after a crash is
//! resolved by reading the platform, never by writing again.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{TimeDelta, Utc};

use super::AppState;
use crate::domain::action::{ActionRecord, ActionStatus, ActionType};
use crate::domain::decision::check_account_cap;
use crate::domain::ids::{AccountId, CampaignId};
use crate::domain::money::format_minor;
use crate::domain::rule::applicable_rule;
use crate::error::Result;
use crate::persistence::actions::{self, TransitionFields};
use crate::persistence::rules;
use crate::platform::{BudgetWrite, CampaignState, ObjectState, PlatformError};

/// An `executing` claim older than this is considered abandoned by a crash.
pub const STALE_CLAIM: TimeDelta = TimeDelta::minutes(10);

fn claim_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}-{}",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or_default(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Executes the given approved actions (read the platform, claim, re-check,
/// write, read back) and returns their final records. Actions that are not
/// `approved` (any more) are left alone and returned as they are.
pub async fn execute_approved(state: &AppState, action_ids: &[i64]) -> Result<Vec<ActionRecord>> {
    let records = actions::get_many(&state.db, action_ids).await?;
    let mut by_account: HashMap<String, Vec<ActionRecord>> = HashMap::new();
    let mut untouched = Vec::new();
    for record in records {
        if record.status == ActionStatus::Approved {
            by_account.entry(record.action.account_id.clone()).or_default().push(record);
        } else {
            untouched.push(record);
        }
    }
    let mut finals = untouched;
    for (account, records) in by_account {
        let account = AccountId::parse(&account, "account_id")?;
        // Read before claiming: if the platform is unreachable the actions stay
        // approved and the next cycle executes them.
        let campaigns =
            state.platform.campaigns(&account).await.map_err(|e| super::engine::platform_error(state, &account, e))?;
        finals.extend(execute_for_account(state, &account, records, &campaigns, true).await?);
    }
    finals.sort_by_key(|r| r.id);
    Ok(finals)
}

/// What happened to one claimed action.
enum Verdict {
    Executed,
    Failed(String),
}

/// Executes approved actions of one account against `campaigns`, the
/// platform's state read just before. With `recheck_cap`, increases are
/// checked again against the account-wide cap (for actions approved later).
pub async fn execute_for_account(
    state: &AppState,
    account: &AccountId,
    records: Vec<ActionRecord>,
    campaigns: &[CampaignState],
    recheck_cap: bool,
) -> Result<Vec<ActionRecord>> {
    let token = claim_token();
    let ids: Vec<i64> = records.iter().map(|r| r.id).collect();
    let fields = TransitionFields { claim_token: Some(token.clone()), ..Default::default() };
    let claimed =
        actions::transition_many(&state.db, &ids, ActionStatus::Approved, ActionStatus::Executing, &fields, None)
            .await?;
    state.events.published();
    if claimed.is_empty() {
        return actions::get_many(&state.db, &ids).await;
    }

    let by_id: HashMap<&str, &CampaignState> = campaigns.iter().map(|c| (c.campaign_id.as_str(), c)).collect();
    let account_rules =
        if recheck_cap { rules::for_accounts(&state.db, std::slice::from_ref(account)).await? } else { Vec::new() };
    let mut active_total: Option<i64> = campaigns
        .iter()
        .filter(|c| c.is_active())
        .try_fold(0_i64, |sum, c| sum.checked_add(c.daily_budget_minor().unwrap_or(0)));

    let mut verdicts: HashMap<i64, Verdict> = HashMap::new();
    let mut planned: Vec<(i64, Vec<BudgetWrite>)> = Vec::new();
    for record in &claimed {
        let a = &record.action;
        let Some(campaign) = by_id.get(a.campaign_id.as_str()) else {
            verdicts.insert(record.id, Verdict::Failed(format!("campaign {} no longer exists", a.campaign_id)));
            continue;
        };
        let current = campaign.daily_budget_minor();
        if current != Some(a.old_budget_minor) {
            let now = current.map_or_else(|| "none".to_owned(), |b| format_minor(b, &a.currency));
            verdicts.insert(
                record.id,
                Verdict::Failed(format!(
                    "budget changed since the decision (now {now}, decided on {}); not applied",
                    format_minor(a.old_budget_minor, &a.currency)
                )),
            );
            continue;
        }
        if a.action_type == ActionType::Pause {
            if !campaign.is_active() {
                verdicts.insert(
                    record.id,
                    Verdict::Failed(format!(
                        "campaign is no longer active ({}); not paused",
                        campaign.effective_status
                    )),
                );
                continue;
            }
            planned.push((record.id, vec![BudgetWrite::Pause { campaign_id: a.campaign_id.clone() }]));
            continue;
        }
        if recheck_cap && a.new_budget_minor > a.old_budget_minor {
            let campaign_id = CampaignId::parse(&a.campaign_id, "campaign_id")?;
            let Some(rule) = applicable_rule(&account_rules, &campaign_id) else {
                verdicts.insert(
                    record.id,
                    Verdict::Failed("no enabled rule applies any more; the account cap cannot be checked".into()),
                );
                continue;
            };
            if let Err(violation) = check_account_cap(
                rule.settings.max_daily_spend_limit_minor,
                active_total,
                a.old_budget_minor,
                a.new_budget_minor,
            ) {
                verdicts.insert(record.id, Verdict::Failed(violation.describe(&a.currency)));
                continue;
            }
            active_total = active_total.and_then(|t| t.checked_add(a.new_budget_minor - a.old_budget_minor));
        }
        let writes = campaign.budget_writes(a.new_budget_minor);
        if writes.is_empty() {
            verdicts.insert(record.id, Verdict::Failed("the campaign has no daily budget to change".into()));
            continue;
        }
        planned.push((record.id, writes));
    }

    if !planned.is_empty() {
        apply(state, account, &planned, &mut verdicts).await;
    }

    let mut executed_ids = Vec::new();
    let mut failed: Vec<(i64, String)> = Vec::new();
    for record in &claimed {
        match verdicts.remove(&record.id) {
            Some(Verdict::Executed) => executed_ids.push(record.id),
            Some(Verdict::Failed(error)) => failed.push((record.id, error)),
            None => failed.push((record.id, "internal: no verdict".into())),
        }
    }
    let done = TransitionFields { executed: true, ..Default::default() };
    actions::transition_many(
        &state.db,
        &executed_ids,
        ActionStatus::Executing,
        ActionStatus::Executed,
        &done,
        Some(&token),
    )
    .await?;
    for (id, error) in failed {
        tracing::warn!(action_id = id, %error, "action not applied");
        let fields = TransitionFields { error: Some(error), ..Default::default() };
        actions::transition_many(
            &state.db,
            &[id],
            ActionStatus::Executing,
            ActionStatus::Failed,
            &fields,
            Some(&token),
        )
        .await?;
    }
    state.events.published();
    let finals = actions::get_many(&state.db, &ids).await?;
    let settled: Vec<ActionRecord> = finals.iter().filter(|r| r.status.is_final()).cloned().collect();
    state.metrics.observe_actions(&settled);
    state.alerts.observe(&settled);
    Ok(finals)
}

/// Sends every planned write in batches, reads the objects back and records a
/// verdict per action.
async fn apply(
    state: &AppState,
    account: &AccountId,
    planned: &[(i64, Vec<BudgetWrite>)],
    verdicts: &mut HashMap<i64, Verdict>,
) {
    let writes: Vec<BudgetWrite> = planned.iter().flat_map(|(_, w)| w.iter().cloned()).collect();
    let results = match state.platform.write(account, &writes).await {
        Ok(results) => results,
        Err(e) => {
            for (id, _) in planned {
                verdicts.insert(*id, Verdict::Failed(format!("write failed: {e}")));
            }
            return;
        }
    };
    // Read back only what was written: a refused write has nothing to verify.
    let object_ids: Vec<String> = writes
        .iter()
        .zip(&results)
        .filter(|(_, outcome)| outcome.is_ok())
        .map(|(w, _)| w.object_id().to_owned())
        .collect();
    let read_back = if object_ids.is_empty() {
        Ok(HashMap::new())
    } else {
        state.platform.read_objects(account, &object_ids).await
    };
    let mut results = results.into_iter();
    for (id, action_writes) in planned {
        let outcomes: Vec<Result<(), PlatformError>> =
            action_writes.iter().map(|_| results.next().unwrap_or(Ok(()))).collect();
        verdicts.insert(*id, judge(action_writes, &outcomes, read_back.as_ref()));
    }
}

fn judge(
    writes: &[BudgetWrite],
    outcomes: &[Result<(), PlatformError>],
    read_back: std::result::Result<&HashMap<String, ObjectState>, &PlatformError>,
) -> Verdict {
    let mut problems = Vec::new();
    let mut applied = 0;
    for (write, outcome) in writes.iter().zip(outcomes) {
        if let Err(e) = outcome {
            problems.push(format!("{}: {e}", write.object_id()));
            continue;
        }
        let state = match read_back {
            Ok(states) => states.get(write.object_id()),
            Err(e) => {
                problems.push(format!("{}: written but could not be read back ({e})", write.object_id()));
                continue;
            }
        };
        let stuck = match (write, state) {
            (BudgetWrite::SetDailyBudget { daily_budget_minor, .. }, Some(s)) => {
                s.daily_budget_minor == Some(*daily_budget_minor)
            }
            (BudgetWrite::Pause { .. }, Some(s)) => s.status == "PAUSED",
            (BudgetWrite::Resume { .. }, Some(s)) => s.status == "ACTIVE",
            (_, None) => false,
        };
        if stuck {
            applied += 1;
        } else {
            problems.push(format!("{}: the platform accepted the write but did not keep it", write.object_id()));
        }
    }
    if problems.is_empty() {
        Verdict::Executed
    } else if applied > 0 {
        Verdict::Failed(format!("partly applied ({applied} of {} writes kept): {}", writes.len(), problems.join("; ")))
    } else {
        Verdict::Failed(problems.join("; "))
    }
}

/// Resolves actions left in `executing` by a crash: reads the platform and
/// records what is true there. Never writes again.
pub async fn resolve_abandoned(state: &AppState) -> Result<Vec<ActionRecord>> {
    resolve_claimed_before(state, Utc::now() - STALE_CLAIM).await
}

/// [`resolve_abandoned`] for claims older than `cutoff`.
pub async fn resolve_claimed_before(state: &AppState, cutoff: chrono::DateTime<Utc>) -> Result<Vec<ActionRecord>> {
    let stale = actions::stale_executing(&state.db, cutoff).await?;
    let mut by_account: HashMap<String, Vec<ActionRecord>> = HashMap::new();
    for record in stale {
        by_account.entry(record.action.account_id.clone()).or_default().push(record);
    }
    let mut resolved = Vec::new();
    for (account, records) in by_account {
        let account = AccountId::parse(&account, "account_id")?;
        let campaigns = match state.platform.campaigns(&account).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(%account, error = %e, "cannot resolve abandoned actions yet");
                continue;
            }
        };
        let by_id: HashMap<&str, &CampaignState> = campaigns.iter().map(|c| (c.campaign_id.as_str(), c)).collect();
        for record in records {
            let a = &record.action;
            let campaign = by_id.get(a.campaign_id.as_str());
            let landed = match (a.action_type, campaign) {
                (ActionType::Pause, Some(c)) => c.status == "PAUSED",
                (_, Some(c)) => c.daily_budget_minor() == Some(a.new_budget_minor),
                (_, None) => false,
            };
            let (to, fields) = if landed {
                (ActionStatus::Executed, TransitionFields { executed: true, ..Default::default() })
            } else {
                let now = campaign
                    .and_then(|c| c.daily_budget_minor())
                    .map_or_else(|| "unknown".to_owned(), |b| format_minor(b, &a.currency));
                let error = format!("execution was interrupted; the platform budget is {now}; not re-applied");
                (ActionStatus::Failed, TransitionFields { error: Some(error), ..Default::default() })
            };
            resolved.extend(
                actions::transition_many(&state.db, &[record.id], ActionStatus::Executing, to, &fields, None).await?,
            );
        }
    }
    if !resolved.is_empty() {
        state.events.published();
        state.metrics.observe_actions(&resolved);
    }
    Ok(resolved)
}
