//! `scaling_actions`: the audit trail. Rows are inserted once and then only
//! advanced through their states by conditional updates.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "scaling_actions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub account_id: String,
    pub campaign_id: String,
    pub campaign_name: String,
    pub rule_id: Option<i64>,
    pub cycle_id: Option<i64>,
    pub action_type: String,
    pub status: String,
    pub currency: String,
    pub budget_level: String,
    pub old_budget_minor: i64,
    pub new_budget_minor: i64,
    pub spend_minor: i64,
    pub revenue_minor: i64,
    pub impressions: i64,
    pub clicks: i64,
    pub conversions: i64,
    pub roas: f64,
    pub ctr_percent: f64,
    pub metrics_window: String,
    pub window_start: String,
    pub window_end: String,
    pub reason: String,
    pub requires_approval: bool,
    pub decided_by: Option<String>,
    pub decision_comment: Option<String>,
    pub error: Option<String>,
    pub claim_token: Option<String>,
    pub created_at: DateTimeUtc,
    pub decided_at: Option<DateTimeUtc>,
    pub executed_at: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
    pub resolution: Option<String>,
    pub belief_roas: Option<f64>,
    pub belief_low: Option<f64>,
    pub belief_high: Option<f64>,
    pub belief_credible_level: Option<f64>,
    pub belief_unreported_share: Option<f64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
