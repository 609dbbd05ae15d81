//! Domain: the marginal-ROAS strategy. Pure: estimates each campaign's ROAS at
//! its current budget from lag-completed, recency-weighted daily figures
//! pooled across the account ([`estimate`]), then moves budgets toward equal
//! marginal return inside the account cap ([`allocate`]). Its proposals go
//! through the same safety limits as the threshold table
//! ([`crate::domain::step::decide_proposed_step`]).
//!
//! Why: a threshold on a day of lagged, noisy ROAS pauses campaigns that are
//! merely unlucky or not fully reported yet. Here a campaign moves only when
//! the evidence, with the reporting lag counted and the account's other
//! campaigns as the prior, says the move pays under every plausible
//! elasticity of revenue to budget.
pub mod allocate;
pub mod estimate;
pub mod lag;
pub mod lag_learn;
pub(crate) mod stats;
#[cfg(test)]
mod tests;

pub use allocate::{CampaignPlan, PlanInput, plan_account};
pub use estimate::{AccountPrior, Belief, CampaignHistory, DayExposure, estimate_account};
pub use lag::LagCurve;
pub use lag_learn::{LagShape, LearnedLag, ObservedDay, learn_from as learn_lag_from};
