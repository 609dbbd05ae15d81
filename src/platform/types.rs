//! Platform-neutral shapes of what the ad platform reports and accepts: accounts,
//! campaigns with the object that holds their daily budget, performance over a
//! window, and budget or status writes. All money is integer minor units.
use chrono::NaiveDate;

use crate::domain::ids::{AccountId, CampaignId};
use crate::domain::performance::Performance;

/// An ad account as the platform describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountInfo {
    /// `act_<digits>`.
    pub account_id: AccountId,
    /// Display name.
    pub name: String,
    /// ISO 4217 code of every money amount of the account.
    pub currency: String,
    /// Minor units per major unit in Meta's table (100, or 1 for JPY, KRW, ...).
    pub currency_offset: i64,
    /// IANA time zone of the account; days and hours of every report use it.
    pub timezone_name: String,
    /// Meta's `account_status` (1 = ACTIVE, 2 = DISABLED, ...).
    pub account_status: i64,
}

/// A campaign, its delivery state and where its daily budget lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignState {
    /// Campaign id.
    pub campaign_id: CampaignId,
    /// Campaign name.
    pub name: String,
    /// Configured status (`ACTIVE`, `PAUSED`, ...).
    pub status: String,
    /// What Meta actually does with it (`ACTIVE`, `PAUSED`, `WITH_ISSUES`, ...).
    pub effective_status: String,
    /// The object(s) holding the daily budget.
    pub budget: BudgetHolder,
}

impl CampaignState {
    /// Whether the campaign is delivering (`effective_status == ACTIVE`).
    pub fn is_active(&self) -> bool {
        self.effective_status == "ACTIVE"
    }

    /// The campaign's daily budget: the campaign's own, or the sum of its active
    /// ad sets' budgets; `None` when no daily budget applies (lifetime budgets,
    /// or no active ad set).
    pub fn daily_budget_minor(&self) -> Option<i64> {
        self.budget.daily_budget_minor()
    }

    /// The writes that set the campaign's daily budget to `new_total_minor`:
    /// one on the campaign (CBO), or one per active ad set, each scaled by the
    /// same factor so the parts sum exactly to the total. Empty when there is
    /// no daily budget to change.
    pub fn split(&self, new_total_minor: i64) -> Vec<(String, i64)> {
        match &self.budget {
            BudgetHolder::Campaign { .. } => {
                vec![(self.campaign_id.as_str().to_owned(), new_total_minor.max(0))]
            }
            BudgetHolder::AdSets(ad_sets) => split_ad_sets(ad_sets, new_total_minor),
            BudgetHolder::NoDailyBudget => Vec::new(),
        }
    }

    /// [`split`](Self::split) as ready-to-send writes.
    pub fn budget_writes(&self, new_total_minor: i64) -> Vec<BudgetWrite> {
        self.split(new_total_minor)
            .into_iter()
            .map(|(object_id, daily_budget_minor)| BudgetWrite::SetDailyBudget { object_id, daily_budget_minor })
            .collect()
    }
}

/// Where a campaign's daily budget lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BudgetHolder {
    /// Advantage campaign budget (CBO): the campaign holds it.
    Campaign {
        /// The campaign's daily budget.
        daily_budget_minor: i64,
    },
    /// The campaign's ad sets hold daily budgets.
    AdSets(Vec<AdSetBudget>),
    /// No daily budget (lifetime budgets); the scaler leaves these alone.
    NoDailyBudget,
}

impl BudgetHolder {
    /// The daily budget in effect: the campaign's, or the sum over active ad
    /// sets; `None` when there is none.
    pub fn daily_budget_minor(&self) -> Option<i64> {
        match self {
            Self::Campaign { daily_budget_minor } => Some(*daily_budget_minor),
            Self::AdSets(ad_sets) => {
                let mut active = ad_sets.iter().filter(|a| a.active).peekable();
                active.peek()?;
                // Checked: an absurd budget from the platform must not wrap
                // (or panic); it makes the total unknown instead.
                active.try_fold(0_i64, |sum, a| sum.checked_add(a.daily_budget_minor))
            }
            Self::NoDailyBudget => None,
        }
    }
}

/// One ad set's daily budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdSetBudget {
    /// Ad set id.
    pub adset_id: String,
    /// Its daily budget.
    pub daily_budget_minor: i64,
    /// Whether its configured status is ACTIVE. Configured rather than effective
    /// status, so pausing the campaign does not make its budget vanish.
    pub active: bool,
}

/// Splits `new_total_minor` over the active ad sets in proportion to their
/// current budgets, by largest remainder, so the parts sum exactly to the total
/// (negative totals count as 0). Inactive ad sets get no write.
pub fn split_ad_sets(ad_sets: &[AdSetBudget], new_total_minor: i64) -> Vec<(String, i64)> {
    let active: Vec<&AdSetBudget> = ad_sets.iter().filter(|a| a.active).collect();
    if active.is_empty() {
        return Vec::new();
    }
    let total = i128::from(new_total_minor.max(0));
    let weights: Vec<i128> = active.iter().map(|a| i128::from(a.daily_budget_minor.max(0))).collect();
    let weight_sum: i128 = weights.iter().sum();
    // All-zero budgets carry no proportion: split evenly instead.
    let (weights, weight_sum) =
        if weight_sum == 0 { (vec![1; active.len()], active.len() as i128) } else { (weights, weight_sum) };
    let mut parts: Vec<(i128, i128, usize)> =
        weights.iter().enumerate().map(|(i, w)| (total * w / weight_sum, total * w % weight_sum, i)).collect();
    let leftover = total - parts.iter().map(|p| p.0).sum::<i128>();
    // Largest remainder first; ties go to the earlier ad set so the result is stable.
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by(|&a, &b| parts[b].1.cmp(&parts[a].1).then(a.cmp(&b)));
    for &i in order.iter().take(usize::try_from(leftover).unwrap_or(0)) {
        parts[i].0 += 1;
    }
    parts
        .into_iter()
        .map(|(amount, _, i)| {
            // Each part is at most `total`, which came from an i64.
            (active[i].adset_id.clone(), i64::try_from(amount).unwrap_or(i64::MAX))
        })
        .collect()
}

/// A campaign's performance over one window, in the account's currency, as
/// the insights report it.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignPerformance {
    /// Campaign id.
    pub campaign_id: CampaignId,
    /// Campaign name as reported with the figures.
    pub campaign_name: String,
    /// The figures (revenue and purchases of the configured action type;
    /// the CTR is Meta's `ctr` field).
    pub figures: Performance,
    /// First day of the window, account time zone, `YYYY-MM-DD`.
    pub date_start: String,
    /// Last day of the window (inclusive).
    pub date_stop: String,
}

/// The period an insights request covers, in the account's time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsightsWindow {
    /// One of Meta's `date_preset` values: `today`, `yesterday`, `last_3d`, ...
    Preset(String),
    /// Whole days from `since` to `until`, both inclusive.
    Range {
        /// First day.
        since: NaiveDate,
        /// Last day (inclusive).
        until: NaiveDate,
    },
    /// The same days, one row per campaign and day (`time_increment=1`):
    /// each past day as reported now. Its rows carry spend, impressions,
    /// purchases and revenue only (no campaign name, clicks or CTR).
    Daily {
        /// First day.
        since: NaiveDate,
        /// Last day (inclusive).
        until: NaiveDate,
    },
}

/// One change to send to the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BudgetWrite {
    /// Set the daily budget of a campaign (CBO) or an ad set.
    SetDailyBudget {
        /// Campaign or ad set id.
        object_id: String,
        /// New daily budget.
        daily_budget_minor: i64,
    },
    /// Pause a campaign.
    Pause {
        /// Campaign id.
        campaign_id: String,
    },
    /// Set a paused campaign ACTIVE again (undoing a pause).
    Resume {
        /// Campaign id.
        campaign_id: String,
    },
}

impl BudgetWrite {
    /// The object the write changes.
    pub fn object_id(&self) -> &str {
        match self {
            Self::SetDailyBudget { object_id, .. } => object_id,
            Self::Pause { campaign_id } | Self::Resume { campaign_id } => campaign_id,
        }
    }
}

/// Object states read through the batch API, each object on its own: a
/// state, or the error of that object's read; objects that do not exist are
/// absent.
pub type ObjectReads = std::collections::HashMap<String, Result<ObjectState, crate::platform::PlatformError>>;

/// The current state of a campaign or ad set, read back after writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectState {
    /// Object id.
    pub id: String,
    /// Configured status.
    pub status: String,
    /// Effective status.
    pub effective_status: String,
    /// Daily budget, when the object holds one.
    pub daily_budget_minor: Option<i64>,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ad_set(id: &str, budget: i64, active: bool) -> AdSetBudget {
        AdSetBudget { adset_id: id.to_owned(), daily_budget_minor: budget, active }
    }

    fn campaign(budget: BudgetHolder) -> CampaignState {
        CampaignState {
            campaign_id: CampaignId::parse("42", "campaign_id").expect("valid id"),
            name: "c".into(),
            status: "ACTIVE".into(),
            effective_status: "ACTIVE".into(),
            budget,
        }
    }

    #[test]
    fn campaign_budgets_are_one_write_on_the_campaign() {
        let c = campaign(BudgetHolder::Campaign { daily_budget_minor: 20_000 });
        assert_eq!(c.daily_budget_minor(), Some(20_000));
        assert_eq!(c.split(30_000), vec![("42".to_owned(), 30_000)]);
    }

    #[test]
    fn ad_set_budgets_scale_active_ad_sets_only() {
        let c = campaign(BudgetHolder::AdSets(vec![
            ad_set("1", 10_000, true),
            ad_set("2", 5_000, false),
            ad_set("3", 20_000, true),
        ]));
        assert_eq!(c.daily_budget_minor(), Some(30_000));
        assert_eq!(c.split(45_000), vec![("1".to_owned(), 15_000), ("3".to_owned(), 30_000)]);
        // 1/3 and 2/3 of 100 cannot both be whole: the larger remainder gets the cent.
        assert_eq!(c.split(100), vec![("1".to_owned(), 33), ("3".to_owned(), 67)]);
    }

    #[test]
    fn no_daily_budget_means_no_writes() {
        assert_eq!(campaign(BudgetHolder::NoDailyBudget).daily_budget_minor(), None);
        let paused = campaign(BudgetHolder::AdSets(vec![ad_set("1", 100, false)]));
        assert_eq!(paused.daily_budget_minor(), None);
        assert!(paused.split(500).is_empty());
    }

    proptest! {
        #[test]
        fn ad_set_split_sums_exactly_and_stays_proportional(
            budgets in proptest::collection::vec((0i64..10_000_000, any::<bool>()), 1..8),
            total in 0i64..1_000_000_000_000,
        ) {
            let sets: Vec<AdSetBudget> = budgets
                .iter()
                .enumerate()
                .map(|(i, (b, active))| ad_set(&i.to_string(), *b, *active))
                .collect();
            let parts = split_ad_sets(&sets, total);
            let active: Vec<&AdSetBudget> = sets.iter().filter(|a| a.active).collect();
            prop_assert_eq!(parts.len(), active.len());
            if !active.is_empty() {
                prop_assert_eq!(parts.iter().map(|p| p.1).sum::<i64>(), total);
            }
            let weight_sum: i128 = active.iter().map(|a| i128::from(a.daily_budget_minor)).sum();
            for ((id, amount), set) in parts.iter().zip(&active) {
                prop_assert_eq!(id, &set.adset_id);
                prop_assert!(*amount >= 0);
                if weight_sum > 0 {
                    // Largest remainder never moves a part by a whole unit or more.
                    let exact_num = i128::from(total) * i128::from(set.daily_budget_minor);
                    let diff = i128::from(*amount) * weight_sum - exact_num;
                    prop_assert!(diff.abs() < weight_sum);
                }
            }
        }
    }
}
