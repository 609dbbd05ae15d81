//! The local Meta sandbox: an HTTP server on loopback speaking the subset of the
//! Graph API the client uses, backed by a deterministic simulated market, with
//! fault switches for tests (the `faults` feature) and a view of everything
//! written to it. It models Meta on its own and names nothing of the service
//! that calls it; the service embeds it when no Meta token is configured. A cycle
//! over 100 accounts x 1000 campaigns (campaigns, ad sets, insights for
//! yesterday and today) costs the sandbox about 0.8 s of CPU in release mode.
mod batch;
mod clock;
mod conventions;
mod edges;
#[cfg(feature = "faults")]
mod faults;
// Without the `faults` feature the server consults switches that are always
// off, and the compiler drops every fault path.
#[cfg(not(feature = "faults"))]
#[path = "no_faults.rs"]
mod faults;
mod generate;
mod graph;
mod hourly;
mod insights;
pub mod market;
mod server;
mod spec;
mod state;

use std::collections::HashSet;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

pub use clock::SandboxClock;
#[cfg(feature = "faults")]
pub use faults::ThrottleFault;
pub use generate::Archetype;
pub use hourly::AppliedBudgetSchedule;
pub use market::{Daypart, MarketSpec};
pub use server::RunningSandbox;
pub use spec::{
    AccountSpec, AdSetSpec, AppliedWrite, BudgetHolderSpec, CampaignSpec, HandEdit, MetaErrorSpec, ObjectSnapshot,
    Performance, RequestCounts, RequestKind, SandboxError, ScriptedMetrics, SpecStatus,
};

use self::state::{Account, AdSet, Budget, Campaign, ObjectRef, State, Timeline};
use crate::conventions::{is_account_id, minor_unit_offset};

/// The Meta sandbox. Cheap to clone; all clones share one world.
#[derive(Clone)]
pub struct Sandbox {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.with(|st| f.debug_struct("Sandbox").field("seed", &st.seed).field("accounts", &st.accounts.len()).finish())
    }
}

impl Sandbox {
    /// A sandbox without accounts, on the system clock, with a random token.
    pub fn empty() -> Self {
        Self::with_seed(0)
    }

    fn with_seed(seed: u64) -> Self {
        let random = |salt: u64| {
            let mut h = RandomState::new().build_hasher();
            h.write_u64(salt);
            h.finish()
        };
        let token = format!("SBX{:016x}{:016x}", random(1), random(2));
        Self { state: Arc::new(Mutex::new(State::new(token, seed))) }
    }

    /// A generated market: `accounts` accounts `act_1000001`, ... in varied
    /// time zones (the third in Asia/Tokyo with JPY), each with
    /// `campaigns_per_account` campaigns of mixed economics (see [`Archetype`]).
    /// Deterministic for a seed and a clock.
    pub fn generated(seed: u64, accounts: usize, campaigns_per_account: usize) -> Self {
        let sandbox = Self::with_seed(seed);
        for (account, campaigns) in generate::market(seed, accounts, campaigns_per_account) {
            let id = account.id.clone();
            if let Err(err) = sandbox.add_account(account) {
                tracing::error!(error = %err, "generated account refused");
                continue;
            }
            for (spec, archetype) in campaigns {
                let added = sandbox.with(|st| insert_campaign(st, &id, spec, Some(archetype)));
                if let Err(err) = added {
                    tracing::error!(error = %err, "generated campaign refused");
                }
            }
        }
        sandbox
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut state)
    }

    /// Uses `clock` from now on (builder form).
    pub fn with_clock(self, clock: SandboxClock) -> Self {
        self.set_clock(clock);
        self
    }

    /// Uses `clock` from now on.
    pub fn set_clock(&self, clock: SandboxClock) {
        self.with(|st| st.clock = clock);
    }

    /// Fixes the clock at `at`.
    pub fn set_now(&self, at: DateTime<Utc>) {
        self.set_clock(SandboxClock::Fixed(at));
    }

    /// Moves the clock forward by `by` (a system clock becomes fixed at now + `by`).
    pub fn advance(&self, by: chrono::Duration) {
        self.with(|st| st.clock = SandboxClock::Fixed(st.clock.now() + by));
    }

    /// The sandbox's current time.
    pub fn now(&self) -> DateTime<Utc> {
        self.with(|st| st.clock.now())
    }

    /// The access token the sandbox accepts.
    pub fn access_token(&self) -> String {
        self.with(|st| st.token.clone())
    }

    /// Requires every call to carry `appsecret_proof` for `app_secret`, as an
    /// app with "Require App Secret" switched on does.
    pub fn require_app_secret(&self, app_secret: &str) {
        self.with(|st| st.app_secret = Some(app_secret.to_owned()));
    }

    /// Adds an ad account.
    pub fn add_account(&self, spec: AccountSpec) -> Result<(), SandboxError> {
        if !is_account_id(&spec.id) {
            return Err(SandboxError::Invalid(format!("{} is not act_<digits>", spec.id)));
        }
        let tz: Tz = spec
            .timezone_name
            .parse()
            .map_err(|_| SandboxError::Invalid(format!("unknown time zone {}", spec.timezone_name)))?;
        self.with(|st| {
            if st.account_index.contains_key(&spec.id) {
                return Err(SandboxError::Duplicate(spec.id));
            }
            st.account_index.insert(spec.id.clone(), st.accounts.len());
            st.accounts.push(Account {
                offset: minor_unit_offset(&spec.currency),
                id: spec.id,
                name: spec.name,
                currency: spec.currency,
                tz,
                campaigns: Vec::new(),
                calls: (0, 0),
            });
            Ok(())
        })
    }

    /// Adds a campaign (and its ad sets) to `account`.
    pub fn add_campaign(&self, account: &str, spec: CampaignSpec) -> Result<(), SandboxError> {
        self.with(|st| insert_campaign(st, account, spec, None))
    }

    /// Ids of every account (`act_<digits>`), in creation order.
    pub fn accounts(&self) -> Vec<String> {
        self.with(|st| st.accounts.iter().map(|a| a.id.clone()).collect())
    }

    /// Campaign ids of `account`, in creation order.
    pub fn campaign_ids(&self, account: &str) -> Vec<String> {
        self.with(|st| {
            let index = st.account_index.get(account).copied();
            index.map(|i| st.accounts[i].campaigns.iter().map(|c| c.id.clone()).collect()).unwrap_or_default()
        })
    }

    /// The archetype a generated campaign was given.
    pub fn archetype(&self, campaign_id: &str) -> Option<Archetype> {
        self.with(|st| match st.objects.get(campaign_id)? {
            ObjectRef::Campaign { account, campaign } => st.accounts[*account].campaigns[*campaign].archetype,
            ObjectRef::AdSet { .. } => None,
        })
    }

    /// A campaign or ad set as it stands now.
    pub fn object(&self, id: &str) -> Option<ObjectSnapshot> {
        self.with(|st| {
            let location = *st.objects.get(id)?;
            let (account, campaign) = match location {
                ObjectRef::Campaign { account, campaign } | ObjectRef::AdSet { account, campaign, .. } => {
                    (account, campaign)
                }
            };
            let a = &st.accounts[account];
            let c = &a.campaigns[campaign];
            let snapshot = match (location, &c.budget) {
                (ObjectRef::AdSet { adset, .. }, Budget::AdSets(sets)) => {
                    let s = &sets[adset];
                    ObjectSnapshot {
                        id: s.id.clone(),
                        account_id: a.id.clone(),
                        is_ad_set: true,
                        status: state::status_name(s.active.current()).to_owned(),
                        effective_status: graph::adset_effective_status(c.active.current(), s.active.current())
                            .to_owned(),
                        daily_budget_minor: Some(s.daily.current()),
                    }
                }
                _ => ObjectSnapshot {
                    id: c.id.clone(),
                    account_id: a.id.clone(),
                    is_ad_set: false,
                    status: c.status().to_owned(),
                    effective_status: c.status().to_owned(),
                    daily_budget_minor: match &c.budget {
                        Budget::Daily(daily) => Some(daily.current()),
                        _ => None,
                    },
                },
            };
            Some(snapshot)
        })
    }

    /// Current daily budget of a campaign (CBO) or ad set.
    pub fn daily_budget(&self, id: &str) -> Option<i64> {
        self.object(id)?.daily_budget_minor
    }

    /// Current configured status of a campaign or ad set.
    pub fn status(&self, id: &str) -> Option<String> {
        self.object(id).map(|o| o.status)
    }

    /// Every write accepted so far, in order.
    pub fn writes(&self) -> Vec<AppliedWrite> {
        self.with(|st| st.writes.clone())
    }

    /// Requests received so far.
    pub fn request_counts(&self) -> RequestCounts {
        self.with(|st| RequestCounts { http: st.http_requests, by_kind: st.by_kind.clone() })
    }

    /// A person edits object `id` in Meta's UI now.
    pub fn edit_by_hand(&self, id: &str, edit: HandEdit) {
        self.with(|st| graph::edit_by_hand(st, id, &edit));
    }

    /// Serves the sandbox on 127.0.0.1 with a random port.
    pub async fn start(&self) -> std::io::Result<RunningSandbox> {
        server::start(self).await
    }
}

fn digits(id: &str) -> bool {
    !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_digit())
}

fn insert_campaign(
    st: &mut State,
    account: &str,
    spec: CampaignSpec,
    archetype: Option<Archetype>,
) -> Result<(), SandboxError> {
    let index = *st.account_index.get(account).ok_or_else(|| SandboxError::UnknownAccount(account.to_owned()))?;
    let mut ids: Vec<&str> = vec![&spec.id];
    if let BudgetHolderSpec::AdSets(sets) = &spec.budget {
        if sets.is_empty() {
            return Err(SandboxError::Invalid(format!("campaign {} has an empty ad set list", spec.id)));
        }
        ids.extend(sets.iter().map(|s| s.id.as_str()));
    }
    let mut seen = HashSet::new();
    for id in &ids {
        if !digits(id) {
            return Err(SandboxError::Invalid(format!("object id {id} is not digits")));
        }
        if st.objects.contains_key(*id) || !seen.insert(*id) {
            return Err(SandboxError::Duplicate((*id).to_owned()));
        }
    }
    let (budget, reference) = match spec.budget {
        BudgetHolderSpec::Campaign { daily_budget_minor } => {
            (Budget::Daily(Timeline::new(daily_budget_minor)), daily_budget_minor)
        }
        BudgetHolderSpec::Lifetime { lifetime_budget_minor } => {
            (Budget::Lifetime(lifetime_budget_minor), lifetime_budget_minor / 30)
        }
        BudgetHolderSpec::AdSets(sets) => {
            let reference = sets.iter().filter(|s| s.status == SpecStatus::Active).map(|s| s.daily_budget_minor).sum();
            let sets = sets
                .into_iter()
                .enumerate()
                .map(|(k, s)| AdSet {
                    name: format!("Ad set {}", k + 1),
                    active: Timeline::new(s.status == SpecStatus::Active),
                    daily: Timeline::new(s.daily_budget_minor),
                    id: s.id,
                })
                .collect();
            (Budget::AdSets(sets), reference)
        }
    };
    let campaign_index = st.accounts[index].campaigns.len();
    st.objects.insert(spec.id.clone(), ObjectRef::Campaign { account: index, campaign: campaign_index });
    if let Budget::AdSets(sets) = &budget {
        for (k, s) in sets.iter().enumerate() {
            st.objects.insert(s.id.clone(), ObjectRef::AdSet { account: index, campaign: campaign_index, adset: k });
        }
    }
    st.accounts[index].campaigns.push(Campaign {
        key: spec.id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)),
        id: spec.id,
        name: spec.name,
        active: Timeline::new(spec.status == SpecStatus::Active),
        budget,
        performance: spec.performance,
        reference_budget: reference,
        archetype,
    });
    Ok(())
}
