//! A generated market: accounts in several time zones (one in JPY) whose
//! campaigns span clear winners to deep losers, noisy small ones and ones
//! that live or die by the hour; about a third keep budgets on ad sets.
use super::market::{Daypart, MarketSpec, SplitMix64};
use super::{AccountSpec, AdSetSpec, BudgetHolderSpec, CampaignSpec, Performance, SpecStatus};

/// The economics a generated campaign was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Archetype {
    /// ROAS 4.2-6, CTR above 3%.
    Winner,
    /// ROAS about 3.2.
    Solid,
    /// ROAS about 2.
    Mediocre,
    /// ROAS 1.1-1.4.
    Loser,
    /// ROAS below 1.
    DeepLoser,
    /// A $5-15 budget: few impressions, wild swings.
    NoisySmall,
    /// Performance swings strongly with the hour of day.
    Daypart,
}

impl Archetype {
    /// Lower-case name, used in campaign names.
    pub fn label(self) -> &'static str {
        match self {
            Self::Winner => "winner",
            Self::Solid => "solid",
            Self::Mediocre => "mediocre",
            Self::Loser => "loser",
            Self::DeepLoser => "deep loser",
            Self::NoisySmall => "noisy small",
            Self::Daypart => "daypart",
        }
    }

    /// Draws an archetype with the generated mix's weights.
    fn draw(rng: &mut SplitMix64) -> Self {
        const MIX: [(Archetype, u64); 7] = [
            (Archetype::Winner, 15),
            (Archetype::Solid, 20),
            (Archetype::Mediocre, 20),
            (Archetype::Loser, 12),
            (Archetype::DeepLoser, 8),
            (Archetype::NoisySmall, 12),
            (Archetype::Daypart, 13),
        ];
        let mut pick = rng.next_u64() % 100;
        for (archetype, weight) in MIX {
            if pick < weight {
                return archetype;
            }
            pick -= weight;
        }
        Self::Solid
    }

    /// Market parameters and a daily budget, in USD cents.
    fn economics(self, rng: &mut SplitMix64) -> (MarketSpec, f64) {
        let log_uniform = |rng: &mut SplitMix64, lo: f64, hi: f64| (rng.range(lo.ln(), hi.ln())).exp();
        let base = |rng: &mut SplitMix64, roas: (f64, f64), ctr: (f64, f64)| MarketSpec {
            base_roas: rng.range(roas.0, roas.1),
            reference_budget_minor: 0,
            elasticity: rng.range(0.2, 0.35),
            ctr_percent: rng.range(ctr.0, ctr.1),
            cpm_minor: rng.range(800.0, 1_500.0) as i64,
            aov_minor: rng.range(2_500.0, 6_000.0) as i64,
            noise: 0.12,
            daypart: Daypart::Flat,
        };
        let spec = match self {
            Self::Winner => base(rng, (4.3, 6.0), (3.4, 4.6)),
            Self::Solid => base(rng, (3.05, 3.45), (1.8, 2.8)),
            Self::Mediocre => base(rng, (1.8, 2.3), (1.2, 2.0)),
            Self::Loser => base(rng, (1.1, 1.4), (0.8, 1.4)),
            Self::DeepLoser => base(rng, (0.4, 0.85), (0.5, 1.1)),
            Self::NoisySmall => MarketSpec {
                cpm_minor: rng.range(2_000.0, 3_000.0) as i64,
                aov_minor: rng.range(8_000.0, 12_000.0) as i64,
                noise: 0.6,
                ..base(rng, (1.5, 4.0), (1.0, 3.0))
            },
            Self::Daypart => MarketSpec {
                daypart: Daypart::Peak { hour: 9 + (rng.next_u64() % 13) as u32, strength: rng.range(0.65, 0.9) },
                ..base(rng, (2.6, 3.4), (1.5, 3.0))
            },
        };
        let budget = match self {
            Self::NoisySmall => rng.range(500.0, 1_500.0),
            _ => log_uniform(rng, 2_000.0, 50_000.0),
        };
        (spec, budget)
    }
}

/// Time zones of generated accounts, and their currencies.
const ZONES: [(&str, &str); 8] = [
    ("America/New_York", "USD"),
    ("Europe/Berlin", "USD"),
    ("Asia/Tokyo", "JPY"),
    ("America/Los_Angeles", "USD"),
    ("Europe/London", "USD"),
    ("Australia/Sydney", "USD"),
    ("America/Sao_Paulo", "USD"),
    ("Asia/Kolkata", "USD"),
];

/// The specs of a generated market, account by account.
pub(super) fn market(
    seed: u64,
    accounts: usize,
    campaigns_per_account: usize,
) -> Vec<(AccountSpec, Vec<(CampaignSpec, Archetype)>)> {
    (0..accounts)
        .map(|a| {
            let (zone, currency) = ZONES[a % ZONES.len()];
            // Minor units: USD cents, or yen at 150 yen to the dollar.
            let scale = if currency == "JPY" { 1.5 } else { 1.0 };
            let account = AccountSpec {
                id: format!("act_{}", 1_000_001 + a),
                name: format!("Sandbox account {} ({zone})", a + 1),
                currency: currency.to_owned(),
                timezone_name: zone.to_owned(),
            };
            let campaigns = (0..campaigns_per_account).map(|c| campaign(seed, a, c, scale)).collect();
            (account, campaigns)
        })
        .collect()
}

fn campaign(seed: u64, account: usize, index: usize, scale: f64) -> (CampaignSpec, Archetype) {
    let mut rng = SplitMix64::new(seed ^ ((account as u64) << 32 | index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let archetype = Archetype::draw(&mut rng);
    let (mut spec, budget) = archetype.economics(&mut rng);
    spec.cpm_minor = (spec.cpm_minor as f64 * scale).round() as i64;
    spec.aov_minor = (spec.aov_minor as f64 * scale).round() as i64;
    let budget = (budget * scale / 100.0).round() as i64 * 100;
    let id = 120_000_000_000_000u64 + (account as u64 + 1) * 100_000_000 + index as u64 * 10;
    let roll = rng.unit();
    let holder = if roll < 0.04 {
        BudgetHolderSpec::Lifetime { lifetime_budget_minor: budget * 30 }
    } else if roll < 0.37 {
        let count = 2 + (rng.next_u64() % 2) as usize;
        let weights: Vec<f64> = (0..count).map(|_| rng.range(0.5, 1.5)).collect();
        let total: f64 = weights.iter().sum();
        let ad_sets = weights
            .iter()
            .enumerate()
            .map(|(k, w)| AdSetSpec {
                id: (id + k as u64 + 1).to_string(),
                daily_budget_minor: ((budget as f64 * w / total).round() as i64).max(100),
                // A paused ad set now and then, never the first, so some budget stays active.
                status: if k == 0 || rng.unit() > 0.1 { SpecStatus::Active } else { SpecStatus::Paused },
            })
            .collect();
        BudgetHolderSpec::AdSets(ad_sets)
    } else {
        BudgetHolderSpec::Campaign { daily_budget_minor: budget }
    };
    let spec = CampaignSpec {
        id: id.to_string(),
        name: format!("Campaign {:03} [{}]", index + 1, archetype.label()),
        budget: holder,
        status: if rng.unit() > 0.06 { SpecStatus::Active } else { SpecStatus::Paused },
        performance: Performance::Simulated(spec),
    };
    (spec, archetype)
}
