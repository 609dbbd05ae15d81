//! What tests and the server describe to the sandbox (accounts, campaigns, ad
//! sets, performance) and what the sandbox reports back (request counts, the
//! write log, object snapshots).
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::market::MarketSpec;

/// An ad account to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSpec {
    /// `act_<digits>`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// ISO 4217 code; JPY and the other offset-1 currencies have no decimals.
    pub currency: String,
    /// IANA time zone.
    pub timezone_name: String,
}

/// Configured status of a campaign or ad set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecStatus {
    /// `ACTIVE`.
    Active,
    /// `PAUSED`.
    Paused,
}

/// One ad set holding part of a campaign's daily budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdSetSpec {
    /// Ad set id (digits).
    pub id: String,
    /// Its daily budget.
    pub daily_budget_minor: i64,
    /// Its status.
    pub status: SpecStatus,
}

/// Where a campaign's budget lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BudgetHolderSpec {
    /// Campaign daily budget (CBO).
    Campaign {
        /// The budget.
        daily_budget_minor: i64,
    },
    /// Daily budgets on ad sets.
    AdSets(Vec<AdSetSpec>),
    /// A lifetime budget: no daily budget to scale.
    Lifetime {
        /// The budget.
        lifetime_budget_minor: i64,
    },
}

/// Fixed figures a scripted campaign reports for any window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScriptedMetrics {
    /// Spend.
    pub spend_minor: i64,
    /// Purchase revenue.
    pub revenue_minor: i64,
    /// Impressions.
    pub impressions: i64,
    /// Clicks.
    pub clicks: i64,
    /// Purchases.
    pub conversions: i64,
}

/// How a campaign performs.
#[derive(Debug, Clone, PartialEq)]
pub enum Performance {
    /// Exactly these figures, whatever the window.
    Scripted(ScriptedMetrics),
    /// The simulated market.
    Simulated(MarketSpec),
}

/// A campaign to create.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignSpec {
    /// Campaign id (digits).
    pub id: String,
    /// Name.
    pub name: String,
    /// Its budget.
    pub budget: BudgetHolderSpec,
    /// Its status.
    pub status: SpecStatus,
    /// Its figures.
    pub performance: Performance,
}

impl CampaignSpec {
    /// An active CBO campaign reporting `metrics` for every window.
    pub fn scripted(id: &str, name: &str, daily_budget_minor: i64, metrics: ScriptedMetrics) -> Self {
        Self {
            id: id.to_owned(),
            name: name.to_owned(),
            budget: BudgetHolderSpec::Campaign { daily_budget_minor },
            status: SpecStatus::Active,
            performance: Performance::Scripted(metrics),
        }
    }
}

/// What kind of Graph call a request was, for the request counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RequestKind {
    /// `GET /act_x`.
    Account,
    /// `GET /act_x/campaigns`.
    Campaigns,
    /// `GET /act_x/adsets`.
    AdSets,
    /// `GET /act_x/insights`.
    Insights,
    /// `GET /{id}`.
    ObjectRead,
    /// `POST /{id}`.
    ObjectWrite,
    /// `POST /` with `batch`.
    Batch,
    /// Anything else.
    Other,
}

/// Requests the sandbox has received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// HTTP requests, whatever they were (a batch counts once).
    pub http: u64,
    /// Graph operations by kind: a batch counts as `Batch` plus each of its
    /// operations under its own kind.
    pub by_kind: BTreeMap<RequestKind, u64>,
}

impl RequestCounts {
    /// Operations of `kind`.
    pub fn of(&self, kind: RequestKind) -> u64 {
        self.by_kind.get(&kind).copied().unwrap_or(0)
    }
}

/// A write the sandbox accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedWrite {
    /// Sandbox time of the write.
    pub at: DateTime<Utc>,
    /// Campaign or ad set id.
    pub object_id: String,
    /// `daily_budget` or `status`.
    pub field: String,
    /// The value written.
    pub value: String,
    /// False when a "lost write" fault acknowledged it without applying it.
    pub applied: bool,
    /// Made by a person in Meta's UI (a test's hand edit), not through the API.
    pub by_hand: bool,
}

/// A change a person makes in Meta's UI, as tests stage it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandEdit {
    /// Sets a campaign's or ad set's daily budget.
    DailyBudget(i64),
    /// Pauses a campaign or ad set.
    Pause,
}

/// A campaign or ad set as it stands now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectSnapshot {
    /// Object id.
    pub id: String,
    /// The account it belongs to.
    pub account_id: String,
    /// Whether it is an ad set (else a campaign).
    pub is_ad_set: bool,
    /// Configured status.
    pub status: String,
    /// Effective status.
    pub effective_status: String,
    /// Daily budget it holds, if any.
    pub daily_budget_minor: Option<i64>,
}

/// Why a builder call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxError {
    /// The id is taken.
    #[error("id {0} already exists in the sandbox")]
    Duplicate(String),
    /// No such account.
    #[error("account {0} does not exist in the sandbox")]
    UnknownAccount(String),
    /// A spec Meta would not accept.
    #[error("invalid sandbox spec: {0}")]
    Invalid(String),
}

/// An error the sandbox answers with, in Meta's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaErrorSpec {
    /// Meta's `code`.
    pub code: i64,
    /// Meta's `error_subcode`.
    pub subcode: Option<i64>,
    /// Meta's `message`.
    pub message: String,
    /// Meta's `is_transient`.
    pub is_transient: bool,
    /// HTTP status (Meta mostly uses 400).
    pub http_status: u16,
}

impl MetaErrorSpec {
    /// A non-transient error with HTTP 400.
    pub fn permanent(code: i64, subcode: Option<i64>, message: &str) -> Self {
        Self { code, subcode, message: message.to_owned(), is_transient: false, http_status: 400 }
    }
}
