//! The sandbox's world: accounts, campaigns and ad sets with the history of
//! their budgets and statuses (so past hours use what was in effect then),
//! plus faults, the write log and request counts.
use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::clock::SandboxClock;
use super::faults::Faults;
use super::market::{Figures, HourSlot, simulate_hour};
use super::{AppliedWrite, Archetype, Performance, RequestKind};

/// A value that changes over time; the first point holds since forever.
#[derive(Debug, Clone)]
pub(super) struct Timeline<T> {
    points: Vec<(DateTime<Utc>, T)>,
}

impl<T: Copy> Timeline<T> {
    pub(super) fn new(value: T) -> Self {
        Self { points: vec![(DateTime::<Utc>::MIN_UTC, value)] }
    }

    /// The value in effect at `at`.
    pub(super) fn at(&self, at: DateTime<Utc>) -> T {
        let i = self.points.partition_point(|(since, _)| *since <= at);
        self.points[i.saturating_sub(1)].1
    }

    /// The latest value.
    pub(super) fn current(&self) -> T {
        self.points[self.points.len() - 1].1
    }

    /// Sets the value from `at` on. A clock moved backwards cannot rewrite
    /// history: the change then takes effect at the latest recorded instant.
    pub(super) fn set(&mut self, at: DateTime<Utc>, value: T) {
        let last = self.points.len() - 1;
        let at = at.max(self.points[last].0);
        if self.points[last].0 == at {
            self.points[last].1 = value;
        } else {
            self.points.push((at, value));
        }
    }

    /// Changes made after `since`.
    pub(super) fn changes_after(&self, since: DateTime<Utc>) -> usize {
        self.points.iter().skip(1).filter(|(at, _)| *at > since).count()
    }
}

/// An ad set holding part of a campaign's daily budget.
#[derive(Debug, Clone)]
pub(super) struct AdSet {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) active: Timeline<bool>,
    pub(super) daily: Timeline<i64>,
}

/// Where a campaign's budget lives.
#[derive(Debug, Clone)]
pub(super) enum Budget {
    /// Campaign daily budget (CBO).
    Daily(Timeline<i64>),
    /// Ad-set daily budgets.
    AdSets(Vec<AdSet>),
    /// A lifetime budget (spent evenly over 30 days in the simulation).
    Lifetime(i64),
}

/// A campaign.
#[derive(Debug, Clone)]
pub(super) struct Campaign {
    pub(super) id: String,
    /// Noise key derived from the id.
    pub(super) key: u64,
    pub(super) name: String,
    pub(super) active: Timeline<bool>,
    pub(super) budget: Budget,
    pub(super) performance: Performance,
    /// The first daily budget: where a simulated campaign's base ROAS holds.
    pub(super) reference_budget: i64,
    pub(super) archetype: Option<Archetype>,
}

impl Campaign {
    /// The daily budget delivering at `at` (0 while paused).
    pub(super) fn budget_at(&self, at: DateTime<Utc>) -> i64 {
        if !self.active.at(at) {
            return 0;
        }
        match &self.budget {
            Budget::Daily(daily) => daily.at(at),
            Budget::AdSets(sets) => sets.iter().filter(|s| s.active.at(at)).map(|s| s.daily.at(at)).sum(),
            Budget::Lifetime(total) => total / 30,
        }
    }

    /// The campaign's figures over `slots`.
    pub(super) fn figures(&self, seed: u64, slots: &[HourSlot]) -> Figures {
        match &self.performance {
            Performance::Scripted(m) => Figures {
                spend_minor: m.spend_minor,
                revenue_minor: m.revenue_minor,
                impressions: m.impressions,
                clicks: m.clicks,
                conversions: m.conversions,
            },
            Performance::Simulated(spec) => {
                let reference =
                    if spec.reference_budget_minor > 0 { spec.reference_budget_minor } else { self.reference_budget };
                let mut total = Figures::default();
                for slot in slots {
                    total.add(simulate_hour(seed, self.key, spec, reference, self.budget_at(slot.start), slot));
                }
                total
            }
        }
    }

    /// Configured status.
    pub(super) fn status(&self) -> &'static str {
        status_name(self.active.current())
    }

    /// Today's spend so far, for Meta's "budget below spend" rule; scripted
    /// figures are not tied to a day, so they never trip it.
    pub(super) fn spent_today(&self, seed: u64, today: &[HourSlot]) -> i64 {
        match self.performance {
            Performance::Scripted(_) => 0,
            Performance::Simulated(_) => self.figures(seed, today).spend_minor,
        }
    }
}

/// `ACTIVE` or `PAUSED`.
pub(super) fn status_name(active: bool) -> &'static str {
    if active { "ACTIVE" } else { "PAUSED" }
}

/// An ad account.
#[derive(Debug, Clone)]
pub(super) struct Account {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) currency: String,
    pub(super) offset: i64,
    pub(super) tz: Tz,
    pub(super) campaigns: Vec<Campaign>,
    /// Calls in the current clock hour, for the usage headers: (hour, calls).
    pub(super) calls: (i64, u64),
}

impl Account {
    /// The account id without `act_`, as Meta keys usage headers.
    pub(super) fn bare_id(&self) -> &str {
        self.id.strip_prefix("act_").unwrap_or(&self.id)
    }
}

/// Where an object id lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ObjectRef {
    Campaign { account: usize, campaign: usize },
    AdSet { account: usize, campaign: usize, adset: usize },
}

/// Everything behind the sandbox's lock.
#[derive(Debug)]
pub(super) struct State {
    pub(super) token: String,
    /// When set, every call must carry the matching `appsecret_proof`.
    pub(super) app_secret: Option<String>,
    pub(super) seed: u64,
    pub(super) clock: SandboxClock,
    pub(super) accounts: Vec<Account>,
    pub(super) account_index: HashMap<String, usize>,
    pub(super) objects: HashMap<String, ObjectRef>,
    pub(super) faults: Faults,
    pub(super) writes: Vec<AppliedWrite>,
    pub(super) budget_schedules: Vec<super::hourly::AppliedBudgetSchedule>,
    pub(super) http_requests: u64,
    pub(super) by_kind: BTreeMap<RequestKind, u64>,
    pub(super) traces: u64,
}

impl State {
    pub(super) fn new(token: String, seed: u64) -> Self {
        Self {
            token,
            app_secret: None,
            seed,
            clock: SandboxClock::System,
            accounts: Vec::new(),
            account_index: HashMap::new(),
            objects: HashMap::new(),
            faults: Faults::default(),
            writes: Vec::new(),
            budget_schedules: Vec::new(),
            http_requests: 0,
            by_kind: BTreeMap::new(),
            traces: 0,
        }
    }

    /// The account an id (`act_...` or an object id) belongs to.
    pub(super) fn account_of(&self, id: &str) -> Option<usize> {
        if let Some(&i) = self.account_index.get(id) {
            return Some(i);
        }
        match self.objects.get(id)? {
            ObjectRef::Campaign { account, .. } | ObjectRef::AdSet { account, .. } => Some(*account),
        }
    }

    /// A fresh `fbtrace_id`-like string.
    pub(super) fn trace_id(&mut self) -> String {
        self.traces += 1;
        format!("Sbx{:08X}", super::market::SplitMix64::new(self.traces ^ self.seed).next_u64() as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timelines_answer_for_past_instants() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).expect("rfc3339").with_timezone(&Utc);
        let mut budget = Timeline::new(100);
        budget.set(t("2026-06-01T10:00:00Z"), 200);
        budget.set(t("2026-06-01T12:00:00Z"), 300);
        assert_eq!(budget.at(t("2026-06-01T09:59:59Z")), 100);
        assert_eq!(budget.at(t("2026-06-01T10:00:00Z")), 200);
        assert_eq!(budget.current(), 300);
        assert_eq!(budget.changes_after(t("2026-06-01T11:00:00Z")), 1);
        // A clock moved back does not rewrite the past.
        budget.set(t("2026-05-01T00:00:00Z"), 400);
        assert_eq!(budget.at(t("2026-06-01T11:00:00Z")), 200);
        assert_eq!(budget.current(), 400);
    }
}
