//! `scaling_rules`: one row per rule; `campaign_id` is '' for account-wide rules.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "scaling_rules")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub account_id: String,
    pub campaign_id: String,
    pub name: String,
    pub enabled: bool,
    pub roas_scale_up_aggressive: f64,
    pub ctr_scale_up_aggressive_percent: f64,
    pub roas_scale_up: f64,
    pub roas_scale_down: f64,
    pub roas_pause: f64,
    pub multiplier_aggressive_up: f64,
    pub multiplier_up: f64,
    pub multiplier_down: f64,
    pub min_impressions: i64,
    pub currency: String,
    pub min_daily_budget_minor: i64,
    pub max_daily_budget_minor: i64,
    pub max_daily_spend_limit_minor: i64,
    pub require_approval_threshold_minor: i64,
    pub auto_approve_up_to_minor: i64,
    pub cooldown_seconds: i64,
    pub metrics_window: String,
    pub apply_hourly_schedule: bool,
    pub strategy: String,
    pub marginal_max_step_percent: f64,
    pub marginal_min_move_percent: f64,
    pub marginal_half_life_days: f64,
    pub marginal_credible_level: f64,
    pub marginal_elasticity_low: f64,
    pub marginal_elasticity_high: f64,
    pub marginal_pause_evidence: f64,
    pub created_by: String,
    pub updated_by: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
