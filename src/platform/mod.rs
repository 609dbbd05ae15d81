//! The ad platform: Meta's Graph API client (`meta`), the bridge to the local
//! Meta sandbox crate speaking the same API over loopback (`sandbox`), and the
//! platform-neutral types the rest of the crate uses (`types`).
pub mod meta;
pub mod sandbox;
pub mod types;

pub use meta::{MetaClient, MetaSettings, PlatformError};
pub use types::{
    AccountInfo, AdSetBudget, BudgetHolder, BudgetWrite, CampaignPerformance, CampaignState, InsightsWindow,
    ObjectReads, ObjectState, split_ad_sets,
};
