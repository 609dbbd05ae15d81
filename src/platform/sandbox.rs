//! The bridge to the local Meta sandbox (the workspace's `meta-sandbox`
//! crate, which knows nothing of this one): client settings pointing at a
//! running sandbox, and its accounts as the domain's ids.
use meta_sandbox::{RunningSandbox, Sandbox};
use secrecy::SecretString;

use super::meta::MetaSettings;
use crate::domain::ids::AccountId;

/// A sandbox's accounts as the ids the rest of the crate takes.
pub trait SandboxAccounts {
    /// Ids of every account, in creation order.
    fn account_ids(&self) -> Vec<AccountId>;
}

impl SandboxAccounts for Sandbox {
    fn account_ids(&self) -> Vec<AccountId> {
        // The sandbox refuses accounts that are not `act_<digits>`, so none is dropped.
        self.accounts().iter().filter_map(|id| AccountId::parse(id, "id").ok()).collect()
    }
}

/// Client settings for a sandbox serving on loopback.
pub trait SandboxSettings {
    /// Client settings pointing at this sandbox, with Meta's defaults otherwise.
    fn meta_settings(&self) -> MetaSettings;
}

impl SandboxSettings for RunningSandbox {
    fn meta_settings(&self) -> MetaSettings {
        let mut settings = MetaSettings::new(SecretString::from(self.access_token()));
        settings.graph_url = self.base_url();
        settings
    }
}
