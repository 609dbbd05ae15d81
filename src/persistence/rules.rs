//! Rules repository: stores and loads [`ScalingRule`]s.
use chrono::{TimeDelta, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::entity::scaling_rule::{self, Entity as Rules};
use crate::domain::ids::{AccountId, CampaignId};
use crate::domain::rule::{MarginalSettings, MetricsWindow, NewRule, RuleSettings, ScalingRule, Strategy};
use crate::error::{Error, Result};

fn to_domain(m: scaling_rule::Model) -> Result<ScalingRule> {
    let corrupt = |what: &str| Error::Internal(format!("stored rule {} has a bad {what}", m.id));
    Ok(ScalingRule {
        id: m.id,
        account_id: AccountId::parse(&m.account_id, "account_id").map_err(|_| corrupt("account_id"))?,
        campaign_id: match m.campaign_id.as_str() {
            "" => None,
            raw => Some(CampaignId::parse(raw, "campaign_id").map_err(|_| corrupt("campaign_id"))?),
        },
        settings: RuleSettings {
            name: m.name.clone(),
            enabled: m.enabled,
            roas_scale_up_aggressive: m.roas_scale_up_aggressive,
            ctr_scale_up_aggressive_percent: m.ctr_scale_up_aggressive_percent,
            roas_scale_up: m.roas_scale_up,
            roas_scale_down: m.roas_scale_down,
            roas_pause: m.roas_pause,
            multiplier_aggressive_up: m.multiplier_aggressive_up,
            multiplier_up: m.multiplier_up,
            multiplier_down: m.multiplier_down,
            min_impressions: m.min_impressions,
            currency: m.currency.clone(),
            min_daily_budget_minor: m.min_daily_budget_minor,
            max_daily_budget_minor: m.max_daily_budget_minor,
            max_daily_spend_limit_minor: m.max_daily_spend_limit_minor,
            require_approval_threshold_minor: m.require_approval_threshold_minor,
            auto_approve_up_to_minor: m.auto_approve_up_to_minor,
            cooldown: TimeDelta::seconds(m.cooldown_seconds),
            metrics_window: MetricsWindow::parse(&m.metrics_window).ok_or_else(|| corrupt("metrics_window"))?,
            apply_hourly_schedule: m.apply_hourly_schedule,
            strategy: Strategy::parse(&m.strategy).ok_or_else(|| corrupt("strategy"))?,
            marginal: MarginalSettings {
                max_step_percent: m.marginal_max_step_percent,
                min_move_percent: m.marginal_min_move_percent,
                half_life_days: m.marginal_half_life_days,
                credible_level: m.marginal_credible_level,
                elasticity_low: m.marginal_elasticity_low,
                elasticity_high: m.marginal_elasticity_high,
                pause_evidence: m.marginal_pause_evidence,
            },
        },
        created_by: m.created_by,
        updated_by: m.updated_by,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

fn set_settings(active: &mut scaling_rule::ActiveModel, s: &RuleSettings) {
    active.name = Set(s.name.clone());
    active.enabled = Set(s.enabled);
    active.roas_scale_up_aggressive = Set(s.roas_scale_up_aggressive);
    active.ctr_scale_up_aggressive_percent = Set(s.ctr_scale_up_aggressive_percent);
    active.roas_scale_up = Set(s.roas_scale_up);
    active.roas_scale_down = Set(s.roas_scale_down);
    active.roas_pause = Set(s.roas_pause);
    active.multiplier_aggressive_up = Set(s.multiplier_aggressive_up);
    active.multiplier_up = Set(s.multiplier_up);
    active.multiplier_down = Set(s.multiplier_down);
    active.min_impressions = Set(s.min_impressions);
    active.currency = Set(s.currency.clone());
    active.min_daily_budget_minor = Set(s.min_daily_budget_minor);
    active.max_daily_budget_minor = Set(s.max_daily_budget_minor);
    active.max_daily_spend_limit_minor = Set(s.max_daily_spend_limit_minor);
    active.require_approval_threshold_minor = Set(s.require_approval_threshold_minor);
    active.auto_approve_up_to_minor = Set(s.auto_approve_up_to_minor);
    active.cooldown_seconds = Set(s.cooldown.num_seconds());
    active.metrics_window = Set(s.metrics_window.as_str().to_owned());
    active.apply_hourly_schedule = Set(s.apply_hourly_schedule);
    active.strategy = Set(s.strategy.as_str().to_owned());
    active.marginal_max_step_percent = Set(s.marginal.max_step_percent);
    active.marginal_min_move_percent = Set(s.marginal.min_move_percent);
    active.marginal_half_life_days = Set(s.marginal.half_life_days);
    active.marginal_credible_level = Set(s.marginal.credible_level);
    active.marginal_elasticity_low = Set(s.marginal.elasticity_low);
    active.marginal_elasticity_high = Set(s.marginal.elasticity_high);
    active.marginal_pause_evidence = Set(s.marginal.pause_evidence);
}

fn scope_label(account: &AccountId, campaign: Option<&CampaignId>) -> String {
    match campaign {
        Some(c) => format!("for account {account} campaign {c}"),
        None => format!("for account {account}"),
    }
}

/// Inserts a rule; `AlreadyExists` if its scope already has one.
pub async fn create(db: &impl ConnectionTrait, rule: NewRule) -> Result<ScalingRule> {
    rule.settings.validate()?;
    let now = Utc::now();
    let mut active = scaling_rule::ActiveModel {
        account_id: Set(rule.account_id.as_str().to_owned()),
        campaign_id: Set(rule.campaign_id.as_ref().map(|c| c.as_str().to_owned()).unwrap_or_default()),
        created_by: Set(rule.created_by.clone()),
        updated_by: Set(rule.created_by.clone()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    set_settings(&mut active, &rule.settings);
    match active.insert(db).await {
        Ok(model) => to_domain(model),
        Err(e) if super::is_unique_violation(&e) => {
            Err(Error::AlreadyExists { kind: "rule", id: scope_label(&rule.account_id, rule.campaign_id.as_ref()) })
        }
        Err(e) => Err(e.into()),
    }
}

/// Loads one rule; `NotFound` if there is none.
pub async fn get(db: &impl ConnectionTrait, id: i64) -> Result<ScalingRule> {
    let model =
        Rules::find_by_id(id).one(db).await?.ok_or_else(|| Error::NotFound { kind: "rule", id: id.to_string() })?;
    to_domain(model)
}

/// A page of rules ordered by id, after `after_id`; optionally of one account.
/// Returns one extra row when more remain, so the caller can tell.
pub async fn list(
    db: &impl ConnectionTrait,
    account: Option<&AccountId>,
    after_id: i64,
    limit: u64,
) -> Result<Vec<ScalingRule>> {
    let mut query = Rules::find().filter(scaling_rule::Column::Id.gt(after_id));
    if let Some(account) = account {
        query = query.filter(scaling_rule::Column::AccountId.eq(account.as_str()));
    }
    query.order_by_asc(scaling_rule::Column::Id).limit(limit).all(db).await?.into_iter().map(to_domain).collect()
}

/// Every rule of the given accounts (enabled or not), for the engine.
pub async fn for_accounts(db: &impl ConnectionTrait, accounts: &[AccountId]) -> Result<Vec<ScalingRule>> {
    Rules::find()
        .filter(scaling_rule::Column::AccountId.is_in(accounts.iter().map(|a| a.as_str().to_owned())))
        .order_by_asc(scaling_rule::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(to_domain)
        .collect()
}

/// Accounts that have at least one enabled rule.
pub async fn accounts_with_enabled_rules(db: &impl ConnectionTrait) -> Result<Vec<AccountId>> {
    let raw: Vec<String> = Rules::find()
        .select_only()
        .column(scaling_rule::Column::AccountId)
        .filter(scaling_rule::Column::Enabled.eq(true))
        .distinct()
        .into_tuple()
        .all(db)
        .await?;
    raw.iter().map(|a| AccountId::parse(a, "account_id").map_err(Error::from)).collect()
}

/// Replaces a rule's settings (already validated by the caller's merge).
pub async fn update(
    db: &impl ConnectionTrait,
    id: i64,
    settings: &RuleSettings,
    updated_by: &str,
) -> Result<ScalingRule> {
    settings.validate()?;
    let current =
        Rules::find_by_id(id).one(db).await?.ok_or_else(|| Error::NotFound { kind: "rule", id: id.to_string() })?;
    let mut active: scaling_rule::ActiveModel = current.into();
    set_settings(&mut active, settings);
    active.updated_by = Set(updated_by.to_owned());
    active.updated_at = Set(Utc::now());
    to_domain(active.update(db).await?)
}

/// Deletes a rule; `NotFound` if there is none.
pub async fn delete(db: &impl ConnectionTrait, id: i64) -> Result<()> {
    let result = Rules::delete_by_id(id).exec(db).await?;
    if result.rows_affected == 0 {
        return Err(Error::NotFound { kind: "rule", id: id.to_string() });
    }
    Ok(())
}
