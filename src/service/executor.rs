//! The executor: applies approved actions to the ad platform exactly once.
//!
//! An action is claimed by one conditional update (approved -> executing, with
//! a claim token naming this instance), so two executors, a retry or a
//! crash-and-restart can never apply it twice. Right before writing, the
//! objects about to change are read again: a budget or status someone changed
//! by hand since the decision is never overwritten, and a paused campaign is
//! never scaled. After writing, every object is read back on its own.
//!
//! An outcome the executor cannot confirm (the write's answer timed out or was
//! lost, the read-back failed) is recorded `unconfirmed`, never `failed`: the
//! write may have landed. Writes are never sent again blindly; the next cycle
//! settles unconfirmed actions, and actions abandoned in `executing` by a
//! crashed instance, by reading the platform before it decides again.
use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};

use super::{AppState, liveness};
use crate::domain::action::{ActionRecord, ActionStatus, ActionType, NewAction};
use crate::domain::decision::check_account_cap;
use crate::domain::ids::{AccountId, CampaignId};
use crate::domain::money::format_minor;
use crate::domain::rule::{ScalingRule, applicable_rule};
use crate::error::Result;
use crate::persistence::actions::{self, TransitionFields};
use crate::persistence::{leases, rules};
use crate::platform::{BudgetHolder, BudgetWrite, CampaignState, ObjectReads, ObjectState, PlatformError};

/// A claim in a token of another form than this version's (`<instance>#<n>`)
/// is taken for abandoned once it is this old.
pub const STALE_CLAIM: TimeDelta = TimeDelta::minutes(10);

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
            state.platform.campaigns(&account).await.map_err(|e| super::platform_error(state, &account, e))?;
        finals.extend(execute_for_account(state, &account, records, &campaigns, true).await?);
    }
    finals.sort_by_key(|r| r.id);
    Ok(finals)
}

/// What happened to one claimed action.
#[derive(Debug, Clone, PartialEq)]
enum Verdict {
    /// Every write landed and was read back.
    Executed,
    /// Nothing was applied, or only part of it (`partly` names what took it).
    Failed { error: String, partly: Option<String> },
    /// Sent, but whether it landed is not known.
    Unconfirmed(String),
}

impl Verdict {
    fn failed(error: impl Into<String>) -> Self {
        Self::Failed { error: error.into(), partly: None }
    }
}

/// An action that passed its checks, with the writes that apply it.
struct Planned<'a> {
    id: i64,
    campaign: &'a CampaignState,
    old_budget_minor: i64,
    currency: &'a str,
    writes: Vec<BudgetWrite>,
}

/// Executes approved actions of one account against `campaigns`, the
/// platform's state read before (the objects are read again right before
/// the write). With `recheck_cap`, increases are checked again against the
/// account-wide cap (for actions approved later).
pub async fn execute_for_account(
    state: &AppState,
    account: &AccountId,
    records: Vec<ActionRecord>,
    campaigns: &[CampaignState],
    recheck_cap: bool,
) -> Result<Vec<ActionRecord>> {
    // Marked alive before claiming: a claim of a live instance is never
    // taken for abandoned.
    let _alive = liveness::hold(state).await?;
    let token = liveness::claim_token();
    let ids: Vec<i64> = records.iter().map(|r| r.id).collect();
    let fields = TransitionFields { claim_token: Some(token.clone()), ..Default::default() };
    let claimed =
        actions::transition_many(&state.db, &ids, ActionStatus::Approved, ActionStatus::Executing, &fields, None)
            .await?;
    state.events.published();
    if claimed.is_empty() {
        return actions::get_many(&state.db, &ids).await;
    }

    let account_rules =
        if recheck_cap { Some(rules::for_accounts(&state.db, std::slice::from_ref(account)).await?) } else { None };
    let (planned, mut verdicts) = precheck(&claimed, campaigns, account_rules.as_deref());
    if !planned.is_empty() {
        let ready = check_fresh(state, account, planned, &mut verdicts).await;
        if !ready.is_empty() {
            apply(state, account, &ready, &mut verdicts).await;
        }
    }

    record_verdicts(state, &claimed, verdicts, &token).await?;
    state.events.published();
    let finals = actions::get_many(&state.db, &ids).await?;
    let settled: Vec<ActionRecord> = finals.iter().filter(|r| r.status.is_final()).cloned().collect();
    state.metrics.observe_actions(&settled);
    state.alerts.observe(&settled);
    Ok(finals)
}

/// Checks each claimed action against the campaigns read before and plans
/// the writes of those that pass; the others get their verdict. With
/// `account_rules` (actions approved later), an increase must still fit the
/// account-wide cap, counting the increases planned before it.
fn precheck<'a>(
    claimed: &'a [ActionRecord],
    campaigns: &'a [CampaignState],
    account_rules: Option<&[ScalingRule]>,
) -> (Vec<Planned<'a>>, HashMap<i64, Verdict>) {
    let by_id: HashMap<&str, &CampaignState> = campaigns.iter().map(|c| (c.campaign_id.as_str(), c)).collect();
    let mut active_total: Option<i64> = campaigns
        .iter()
        .filter(|c| c.is_active())
        .try_fold(0_i64, |sum, c| sum.checked_add(c.daily_budget_minor().unwrap_or(0)));
    let mut verdicts = HashMap::new();
    let mut planned = Vec::new();
    for record in claimed {
        let a = &record.action;
        let Some(campaign) = by_id.get(a.campaign_id.as_str()) else {
            verdicts.insert(record.id, Verdict::failed(format!("campaign {} no longer exists", a.campaign_id)));
            continue;
        };
        match writes_for(a, campaign, account_rules, &mut active_total) {
            Ok(writes) => planned.push(Planned {
                id: record.id,
                campaign,
                old_budget_minor: a.old_budget_minor,
                currency: &a.currency,
                writes,
            }),
            Err(verdict) => {
                verdicts.insert(record.id, verdict);
            }
        }
    }
    (planned, verdicts)
}

/// The writes that apply `a` to `campaign`, or why it must not be applied:
/// the budget changed since the decision, the campaign stopped delivering,
/// an increase no longer fits the cap, or there is no daily budget to change.
fn writes_for(
    a: &NewAction,
    campaign: &CampaignState,
    account_rules: Option<&[ScalingRule]>,
    active_total: &mut Option<i64>,
) -> std::result::Result<Vec<BudgetWrite>, Verdict> {
    let current = campaign.daily_budget_minor();
    if current != Some(a.old_budget_minor) {
        let now = current.map_or_else(|| "none".to_owned(), |b| format_minor(b, &a.currency));
        return Err(Verdict::failed(format!(
            "budget changed since the decision (now {now}, decided on {}); not applied",
            format_minor(a.old_budget_minor, &a.currency)
        )));
    }
    if a.action_type == ActionType::Pause {
        if !campaign.is_active() {
            return Err(Verdict::failed(format!(
                "campaign is no longer active ({}); not paused",
                campaign.effective_status
            )));
        }
        return Ok(vec![BudgetWrite::Pause { campaign_id: a.campaign_id.clone() }]);
    }
    if !campaign.is_active() {
        // Paused by hand since the decision: a scale-up must not revive spend.
        return Err(Verdict::failed(format!(
            "the campaign was set to {} since the decision; not applied",
            campaign.effective_status
        )));
    }
    if let Some(account_rules) = account_rules
        && a.new_budget_minor > a.old_budget_minor
    {
        // Fail closed: a rule that cannot be found leaves the cap unchecked.
        let rule = CampaignId::parse(&a.campaign_id, "campaign_id")
            .ok()
            .and_then(|id| applicable_rule(account_rules, &id))
            .ok_or_else(|| Verdict::failed("no enabled rule applies any more; the account cap cannot be checked"))?;
        check_account_cap(
            rule.settings.max_daily_spend_limit_minor,
            *active_total,
            a.old_budget_minor,
            a.new_budget_minor,
        )
        .map_err(|violation| Verdict::failed(violation.describe(&a.currency)))?;
        *active_total = active_total.and_then(|t| t.checked_add(a.new_budget_minor - a.old_budget_minor));
    }
    let writes = campaign.budget_writes(a.new_budget_minor);
    if writes.is_empty() {
        return Err(Verdict::failed("the campaign has no daily budget to change"));
    }
    Ok(writes)
}

/// Reads every object about to change right before the write and keeps only
/// the actions whose campaign is still active and whose budgets are still
/// the ones decided on: a change made by hand meanwhile wins.
async fn check_fresh<'a>(
    state: &AppState,
    account: &AccountId,
    planned: Vec<Planned<'a>>,
    verdicts: &mut HashMap<i64, Verdict>,
) -> Vec<Planned<'a>> {
    let mut ids: Vec<String> = Vec::new();
    for p in &planned {
        ids.push(p.campaign.campaign_id.as_str().to_owned());
        ids.extend(p.writes.iter().map(|w| w.object_id().to_owned()));
    }
    let reads = match state.platform.read_objects(account, &ids).await {
        Ok(reads) => reads,
        Err(e) => {
            for p in &planned {
                let why = format!("could not read the campaign right before writing ({e}); not applied");
                verdicts.insert(p.id, Verdict::failed(why));
            }
            return Vec::new();
        }
    };
    let mut ready = Vec::with_capacity(planned.len());
    for p in planned {
        match fresh_problem(&p, &reads) {
            Some(problem) => {
                verdicts.insert(p.id, Verdict::failed(format!("{problem}; not applied")));
            }
            None => ready.push(p),
        }
    }
    ready
}

/// Why `p` must not be written given the objects read just now, if it must not.
fn fresh_problem(p: &Planned<'_>, reads: &ObjectReads) -> Option<String> {
    let read = |id: &str| match reads.get(id) {
        None => Err(format!("object {id} no longer exists")),
        Some(Err(e)) => Err(format!("could not read object {id} right before writing ({e})")),
        Some(Ok(state)) => Ok(state),
    };
    let campaign = match read(p.campaign.campaign_id.as_str()) {
        Ok(c) => c,
        Err(problem) => return Some(problem),
    };
    if campaign.status != "ACTIVE" {
        return Some(format!("the campaign was set to {} on the platform since the decision", campaign.status));
    }
    let expected: HashMap<&str, i64> = match &p.campaign.budget {
        BudgetHolder::Campaign { daily_budget_minor } => {
            HashMap::from([(p.campaign.campaign_id.as_str(), *daily_budget_minor)])
        }
        BudgetHolder::AdSets(sets) => {
            sets.iter().filter(|s| s.active).map(|s| (s.adset_id.as_str(), s.daily_budget_minor)).collect()
        }
        BudgetHolder::NoDailyBudget => HashMap::new(),
    };
    for write in &p.writes {
        let BudgetWrite::SetDailyBudget { object_id, .. } = write else { continue };
        let object = match read(object_id) {
            Ok(o) => o,
            Err(problem) => return Some(problem),
        };
        if object.status != "ACTIVE" {
            return Some(format!("ad set {object_id} was set to {} since the decision", object.status));
        }
        let decided_on = expected.get(object_id.as_str()).copied();
        if object.daily_budget_minor != decided_on {
            let show = |b: Option<i64>| b.map_or_else(|| "none".to_owned(), |b| format_minor(b, p.currency));
            let what = if *object_id == p.campaign.campaign_id.as_str() {
                "the budget".to_owned()
            } else {
                format!("ad set {object_id}'s budget")
            };
            return Some(format!(
                "{what} changed since the decision (now {}, decided on {})",
                show(object.daily_budget_minor),
                show(decided_on.or(Some(p.old_budget_minor)))
            ));
        }
    }
    None
}

/// Sends every planned write in batches, reads the objects back one by one
/// and records a verdict per action.
async fn apply(state: &AppState, account: &AccountId, planned: &[Planned<'_>], verdicts: &mut HashMap<i64, Verdict>) {
    let writes: Vec<BudgetWrite> = planned.iter().flat_map(|p| p.writes.iter().cloned()).collect();
    let results = match state.platform.write(account, &writes).await {
        Ok(results) => results,
        Err(e) => vec![Err(e); writes.len()],
    };
    // Read back everything that may have landed; a write Meta refused has
    // nothing to verify.
    let object_ids: Vec<String> = writes
        .iter()
        .zip(&results)
        .filter(|(_, outcome)| !matches!(outcome, Err(e) if e.proves_not_applied()))
        .map(|(w, _)| w.object_id().to_owned())
        .collect();
    let read_back = if object_ids.is_empty() {
        Ok(HashMap::new())
    } else {
        state.platform.read_objects(account, &object_ids).await
    };
    let mut results = results.into_iter();
    for p in planned {
        let outcomes: Vec<Result<(), PlatformError>> =
            p.writes.iter().map(|_| results.next().unwrap_or(Ok(()))).collect();
        verdicts.insert(p.id, judge(&p.writes, &outcomes, read_back.as_ref()));
    }
}

/// What became of one write.
enum WriteFate {
    Applied,
    NotApplied(String),
    Unknown(String),
}

fn fate(
    write: &BudgetWrite,
    outcome: &Result<(), PlatformError>,
    read_back: std::result::Result<&ObjectReads, &PlatformError>,
) -> WriteFate {
    let id = write.object_id();
    if let Err(e) = outcome
        && e.proves_not_applied()
    {
        return WriteFate::NotApplied(format!("{id}: {e}"));
    }
    let sent = match outcome {
        Ok(()) => String::new(),
        Err(e) => format!(" after the write failed without an answer ({e})"),
    };
    let state = match read_back {
        Err(e) => return WriteFate::Unknown(format!("{id}: could not be read back{sent} ({e})")),
        Ok(reads) => match reads.get(id) {
            None => return WriteFate::Unknown(format!("{id}: not found when read back{sent}")),
            Some(Err(e)) => return WriteFate::Unknown(format!("{id}: could not be read back{sent} ({e})")),
            Some(Ok(state)) => state,
        },
    };
    if has_landed(write, state) {
        WriteFate::Applied
    } else if outcome.is_ok() {
        WriteFate::NotApplied(format!("{id}: the platform accepted the write but did not keep it"))
    } else {
        // Unanswered and not visible yet: it may still land, so it is settled
        // by a later read, never sent again.
        WriteFate::Unknown(format!("{id}: not visible when read back{sent}"))
    }
}

fn has_landed(write: &BudgetWrite, state: &ObjectState) -> bool {
    match write {
        BudgetWrite::SetDailyBudget { daily_budget_minor, .. } => state.daily_budget_minor == Some(*daily_budget_minor),
        BudgetWrite::Pause { .. } => state.status == "PAUSED",
        BudgetWrite::Resume { .. } => state.status == "ACTIVE",
    }
}

fn judge(
    writes: &[BudgetWrite],
    outcomes: &[Result<(), PlatformError>],
    read_back: std::result::Result<&ObjectReads, &PlatformError>,
) -> Verdict {
    let mut applied = Vec::new();
    let mut not_applied = Vec::new();
    let mut unknown = Vec::new();
    for (write, outcome) in writes.iter().zip(outcomes) {
        match fate(write, outcome, read_back) {
            WriteFate::Applied => applied.push(write.object_id().to_owned()),
            WriteFate::NotApplied(why) => not_applied.push(why),
            WriteFate::Unknown(why) => unknown.push(why),
        }
    }
    if !unknown.is_empty() {
        let mut why = format!("outcome not confirmed: {}", unknown.join("; "));
        if !applied.is_empty() {
            why.push_str(&format!("; applied: {}", applied.join(", ")));
        }
        if !not_applied.is_empty() {
            why.push_str(&format!("; not applied: {}", not_applied.join("; ")));
        }
        return Verdict::Unconfirmed(why);
    }
    if not_applied.is_empty() {
        return Verdict::Executed;
    }
    if applied.is_empty() {
        return Verdict::failed(not_applied.join("; "));
    }
    Verdict::Failed {
        error: format!(
            "partly applied ({} of {} writes kept): {}",
            applied.len(),
            writes.len(),
            not_applied.join("; ")
        ),
        partly: Some(format!("the new budget was taken by {}; not by the others", applied.join(", "))),
    }
}

/// Records each claimed action's verdict, conditional on this executor's claim.
async fn record_verdicts(
    state: &AppState,
    claimed: &[ActionRecord],
    mut verdicts: HashMap<i64, Verdict>,
    token: &str,
) -> Result<()> {
    let mut executed_ids = Vec::new();
    for record in claimed {
        let verdict = verdicts.remove(&record.id).unwrap_or_else(|| Verdict::failed("internal: no verdict"));
        let (to, fields) = match verdict {
            Verdict::Executed => {
                executed_ids.push(record.id);
                continue;
            }
            Verdict::Failed { error, partly } => {
                tracing::warn!(action_id = record.id, %error, "action not applied");
                // A partly applied change reached the platform: the cooldown counts it.
                let executed = partly.is_some();
                (
                    ActionStatus::Failed,
                    TransitionFields { error: Some(error), resolution: partly, executed, ..Default::default() },
                )
            }
            Verdict::Unconfirmed(why) => {
                tracing::warn!(action_id = record.id, %why, "action outcome not confirmed; the next cycle reads the platform");
                (ActionStatus::Unconfirmed, TransitionFields { resolution: Some(why), ..Default::default() })
            }
        };
        actions::transition_many(&state.db, &[record.id], ActionStatus::Executing, to, &fields, Some(token)).await?;
    }
    let done = TransitionFields { executed: true, ..Default::default() };
    actions::transition_many(
        &state.db,
        &executed_ids,
        ActionStatus::Executing,
        ActionStatus::Executed,
        &done,
        Some(token),
    )
    .await?;
    Ok(())
}

/// Settles what earlier executions left open: `unconfirmed` actions, and
/// `executing` actions whose instance is no longer alive (crashed or
/// killed). Reads the platform and records what is true there; never
/// writes again.
pub async fn settle_unsettled(state: &AppState) -> Result<Vec<ActionRecord>> {
    let rows = actions::unsettled(&state.db).await?;
    let claimants: Vec<String> = rows
        .iter()
        .filter_map(|(_, token)| token.as_deref().and_then(liveness::claimant))
        .map(str::to_owned)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let alive = leases::alive(&state.db, &claimants).await?;
    let stale_before = Utc::now() - STALE_CLAIM;
    let due = rows.into_iter().filter(|(record, token)| match record.status {
        ActionStatus::Unconfirmed => true,
        _ => match token.as_deref().and_then(liveness::claimant) {
            Some(instance) => !alive.contains(instance),
            None => record.updated_at < stale_before,
        },
    });
    settle(state, due.collect()).await
}

/// Settles `executing` actions claimed before `cutoff`, whoever claimed
/// them (for operators and tests that know the claimant is gone).
pub async fn resolve_claimed_before(state: &AppState, cutoff: DateTime<Utc>) -> Result<Vec<ActionRecord>> {
    let rows = actions::unsettled(&state.db).await?;
    let due = rows.into_iter().filter(|(r, _)| r.status == ActionStatus::Executing && r.updated_at < cutoff);
    settle(state, due.collect()).await
}

async fn settle(state: &AppState, due: Vec<(ActionRecord, Option<String>)>) -> Result<Vec<ActionRecord>> {
    let mut by_account: HashMap<String, Vec<(ActionRecord, Option<String>)>> = HashMap::new();
    for row in due {
        by_account.entry(row.0.action.account_id.clone()).or_default().push(row);
    }
    let mut resolved = Vec::new();
    for (account, rows) in by_account {
        let account = AccountId::parse(&account, "account_id")?;
        let campaigns = match state.platform.campaigns(&account).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(%account, error = %e, "cannot settle unconfirmed actions yet");
                continue;
            }
        };
        let by_id: HashMap<&str, &CampaignState> = campaigns.iter().map(|c| (c.campaign_id.as_str(), c)).collect();
        for (record, token) in rows {
            let (to, fields) = settlement(&record, by_id.get(record.action.campaign_id.as_str()).copied());
            let claim = if record.status == ActionStatus::Executing { token.as_deref() } else { None };
            let moved = actions::transition_many(&state.db, &[record.id], record.status, to, &fields, claim).await?;
            for r in &moved {
                tracing::info!(action_id = r.id, status = r.status.as_str(), "settled by reading the platform");
            }
            resolved.extend(moved);
        }
    }
    if !resolved.is_empty() {
        state.events.published();
        state.metrics.observe_actions(&resolved);
    }
    Ok(resolved)
}

/// What the platform's state says about an unsettled action: the status it
/// moves to and what is recorded. The execution time of a change found
/// applied is the best knowledge of its write: when the write was attempted
/// (the last update of an unconfirmed action, the claim of an interrupted one).
fn settlement(record: &ActionRecord, campaign: Option<&CampaignState>) -> (ActionStatus, TransitionFields) {
    let a = &record.action;
    let interrupted = record.status == ActionStatus::Executing;
    let prefix = if interrupted {
        "recovered after an interrupted execution".to_owned()
    } else {
        let why = record.resolution.as_deref().unwrap_or("the write's outcome was not confirmed");
        format!("settled by reading the platform ({why})")
    };
    let Some(campaign) = campaign else {
        let error = format!("{prefix}: campaign {} no longer exists; not re-applied", a.campaign_id);
        return (
            ActionStatus::Failed,
            TransitionFields { error: Some(error.clone()), resolution: Some(error), ..Default::default() },
        );
    };
    let money = |b: Option<i64>| b.map_or_else(|| "none".to_owned(), |b| format_minor(b, &a.currency));
    let platform_budget = campaign.daily_budget_minor();
    let attempted_at = record.updated_at;
    let time_note = if interrupted {
        "execution time is when the interrupted execution began"
    } else {
        "execution time is when the write was sent"
    };
    let found = if a.action_type == ActionType::Pause {
        if campaign.status == "PAUSED" {
            Found::New(format!("the campaign is paused; {time_note}"))
        } else {
            Found::Old(format!("the campaign is {}", campaign.status))
        }
    } else if platform_budget == Some(a.new_budget_minor) {
        Found::New(format!("the platform budget is {}, the new value; {time_note}", money(platform_budget)))
    } else if platform_budget == Some(a.old_budget_minor) {
        Found::Old(format!("the platform budget is {}, the old value", money(platform_budget)))
    } else {
        Found::Other(format!(
            "the platform budget is {}, neither the old {} nor the new {} (partly applied or changed by hand)",
            money(platform_budget),
            money(Some(a.old_budget_minor)),
            money(Some(a.new_budget_minor))
        ))
    };
    match found {
        Found::New(what) => (
            ActionStatus::Executed,
            TransitionFields {
                executed_at: Some(attempted_at),
                resolution: Some(format!("{prefix}: {what}")),
                ..Default::default()
            },
        ),
        Found::Old(what) => {
            let verb = if interrupted { "execution was interrupted" } else { "the write was not confirmed" };
            let error = format!("{verb}; {what}; not re-applied");
            (
                ActionStatus::Failed,
                TransitionFields {
                    error: Some(error),
                    resolution: Some(format!("{prefix}: {what}; the change was not applied")),
                    clear_executed_at: true,
                    ..Default::default()
                },
            )
        }
        // The change may have reached the platform in part: the cooldown
        // counts it, and nothing is re-applied.
        Found::Other(what) => (
            ActionStatus::Failed,
            TransitionFields {
                error: Some(format!("{what}; not re-applied")),
                resolution: Some(format!("{prefix}: {what}")),
                executed_at: Some(attempted_at),
                ..Default::default()
            },
        ),
    }
}

/// What a settling read found.
enum Found {
    New(String),
    Old(String),
    Other(String),
}
