//! The executor: applies approved actions to the ad platform exactly once.
use super::AppState;
use crate::domain::action::ActionRecord;
use crate::error::{Error, Result};

/// Executes the given approved actions (claim, re-check the platform budget,
/// write, read back) and returns their final records.
pub async fn execute_approved(_state: &AppState, _action_ids: &[i64]) -> Result<Vec<ActionRecord>> {
    Err(Error::Internal("the executor is being wired to the ad platform".into()))
}
