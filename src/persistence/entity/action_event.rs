//! `action_events`: an append-only log of action creations and status changes,
//! the source of `WatchActions` (resumable by `seq`, visible to every replica).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "action_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub seq: i64,
    pub action_id: i64,
    pub kind: String,
    pub status: String,
    pub account_id: String,
    pub campaign_id: String,
    pub action_type: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
