//! The simulated market behind the sandbox: hour by hour in the account's time
//! zone, spend follows the budget in effect and a pacing curve; revenue has
//! diminishing returns in budget and an hour-of-day effect; noise comes from a
//! hash of (seed, campaign, day, hour), so a window always gives the same
//! figures. Floats model the market; every reported figure is an integer.
//!
//! `autoscaler simulate` builds its market on the same pieces: the SplitMix64
//! mixer ([`mix`]) behind both random generators, the pacing curve
//! ([`PACING_WEIGHTS`], [`pacing_shares`]) and the hour-of-day cosine
//! ([`hour_of_day_factor`]). The rest differs on purpose: the sandbox draws
//! each campaign-hour from a sequential generator and answers about one
//! budget at a time, while the simulation keys every draw on (seed, campaign,
//! hour, stream) so that every policy meets the same draws, and adds what a
//! policy comparison needs (Poisson conversions, reporting lag, drift,
//! weekdays, under-delivery).
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// SplitMix64's finalizer (Vigna's constants): a strong 64-bit mixer.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// SplitMix64: a tiny, fast, deterministic generator (Vigna's reference constants).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Triangular in (-1, 1): centred noise with thin tails.
    fn centred(&mut self) -> f64 {
        self.unit() + self.unit() - 1.0
    }

    /// `x` rounded down or up at random, so the expectation is `x` exactly:
    /// small campaigns then get the occasional conversion instead of never one.
    fn round_stochastic(&mut self, x: f64) -> i64 {
        (x.max(0.0) + self.unit()).floor() as i64
    }
}

/// How performance varies with the hour of the account's day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Daypart {
    /// The same all day.
    Flat,
    /// ROAS (and a little CTR) peak at `hour` and bottom out 12 hours later;
    /// `strength` in [0, 1) is the swing (0.8: from 0.2x to 1.8x).
    Peak {
        /// Local hour of the peak, 0-23.
        hour: u32,
        /// Relative swing.
        strength: f64,
    },
}

impl Daypart {
    fn factor(self, hour: u32) -> f64 {
        match self {
            Self::Flat => 1.0,
            Self::Peak { hour: peak, strength } => {
                hour_of_day_factor(f64::from(hour), f64::from(peak), strength.clamp(0.0, 0.99))
            }
        }
    }
}

/// The hour-of-day effect: `1 + strength * cos` of the distance from the peak
/// hour on a 24-hour circle, so the low comes 12 hours after the peak.
pub fn hour_of_day_factor(hour: f64, peak: f64, strength: f64) -> f64 {
    1.0 + strength * ((hour - peak) * std::f64::consts::TAU / 24.0).cos()
}

/// Economics of a simulated campaign. Money in the account's minor units.
#[derive(Debug, Clone, PartialEq)]
pub struct MarketSpec {
    /// ROAS at the reference budget, before hour and noise effects.
    pub base_roas: f64,
    /// Budget at which `base_roas` holds; 0 means the campaign's first budget.
    pub reference_budget_minor: i64,
    /// Diminishing returns: ROAS scales with (budget / reference)^-elasticity.
    pub elasticity: f64,
    /// Click-through rate in percent.
    pub ctr_percent: f64,
    /// Cost per thousand impressions.
    pub cpm_minor: i64,
    /// Average order value.
    pub aov_minor: i64,
    /// Relative amplitude of hourly spend and ROAS noise (0.1 steady, 0.6 wild).
    pub noise: f64,
    /// Hour-of-day effect.
    pub daypart: Daypart,
}

impl Default for MarketSpec {
    /// A solid campaign: ROAS 3.2, CTR 2%, $10 CPM, $60 orders.
    fn default() -> Self {
        Self {
            base_roas: 3.2,
            reference_budget_minor: 0,
            elasticity: 0.3,
            ctr_percent: 2.0,
            cpm_minor: 1_000,
            aov_minor: 6_000,
            noise: 0.15,
            daypart: Daypart::Flat,
        }
    }
}

/// Relative traffic in each local hour (standard pacing: quiet nights, busy
/// evenings); [`PACING`] is the same normalised.
pub const PACING_WEIGHTS: [f64; 24] = [
    1.0, 0.6, 0.4, 0.3, 0.3, 0.4, 0.7, 1.0, 1.3, 1.5, 1.6, 1.6, 1.6, 1.6, 1.5, 1.5, 1.5, 1.6, 1.7, 1.8, 1.8, 1.6, 1.3,
    1.0,
];

/// Share of a day's spend in each local hour. Sums to 1.
pub const PACING: [f64; 24] = pacing_shares(&PACING_WEIGHTS);

/// Hourly weights normalised to shares of a day (summed in hour order, so the
/// shares are the same to the bit wherever they are computed).
pub const fn pacing_shares(weights: &[f64; 24]) -> [f64; 24] {
    let mut total = 0.0;
    let mut i = 0;
    while i < 24 {
        total += weights[i];
        i += 1;
    }
    let mut out = [0.0; 24];
    let mut i = 0;
    while i < 24 {
        out[i] = weights[i] / total;
        i += 1;
    }
    out
}

/// Integer figures over some hours.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Figures {
    /// Spend.
    pub(super) spend_minor: i64,
    /// Purchase revenue.
    pub(super) revenue_minor: i64,
    /// Impressions.
    pub(super) impressions: i64,
    /// Clicks.
    pub(super) clicks: i64,
    /// Purchases.
    pub(super) conversions: i64,
}

impl Figures {
    /// Adds `other` in place.
    pub(super) fn add(&mut self, other: Figures) {
        self.spend_minor += other.spend_minor;
        self.revenue_minor += other.revenue_minor;
        self.impressions += other.impressions;
        self.clicks += other.clicks;
        self.conversions += other.conversions;
    }
}

/// One local hour of an account's day.
#[derive(Debug, Clone, Copy)]
pub(super) struct HourSlot {
    /// When the hour starts.
    pub(super) start: DateTime<Utc>,
    /// Local hour of day, 0-23.
    pub(super) local_hour: u32,
    /// Local day number (days since 0001-01-01), part of the noise key.
    pub(super) day: i64,
}

/// The instant a local day starts (midnight, or the first hour after a gap).
fn day_start(tz: Tz, date: NaiveDate) -> Option<DateTime<Utc>> {
    (0..3).find_map(|h| {
        let local = date.and_hms_opt(h, 0, 0)?;
        tz.from_local_datetime(&local).earliest().map(|t| t.with_timezone(&Utc))
    })
}

/// The local hours from `since` to `until` (inclusive days) that have ended
/// by `now`; a day has 23 or 25 of them when daylight saving shifts.
pub(super) fn hours(tz: Tz, since: NaiveDate, until: NaiveDate, now: DateTime<Utc>) -> Vec<HourSlot> {
    let mut slots = Vec::new();
    let mut date = since;
    while date <= until {
        let (Some(start), Some(next)) = (day_start(tz, date), date.succ_opt().and_then(|d| day_start(tz, d))) else {
            break;
        };
        let day = i64::from(date.num_days_from_ce());
        let mut at = start;
        while at < next && at + Duration::hours(1) <= now {
            slots.push(HourSlot { start: at, local_hour: at.with_timezone(&tz).hour(), day });
            at += Duration::hours(1);
        }
        match date.succ_opt() {
            Some(d) => date = d,
            None => break,
        }
    }
    slots
}

/// Mixes the noise key of one campaign-hour.
fn hour_seed(seed: u64, campaign_key: u64, day: i64, hour: u32) -> u64 {
    let mut g = SplitMix64::new(seed ^ campaign_key.rotate_left(17));
    let a = g.next_u64();
    SplitMix64::new(a ^ (day as u64).wrapping_mul(0x2545_f491_4f6c_dd1d) ^ u64::from(hour)).next_u64()
}

/// One campaign-hour: spend from `budget_minor` (the budget in effect at the
/// hour's start) and pacing, then impressions, clicks, purchases and revenue.
pub(super) fn simulate_hour(
    seed: u64,
    campaign_key: u64,
    spec: &MarketSpec,
    reference: i64,
    budget_minor: i64,
    slot: &HourSlot,
) -> Figures {
    if budget_minor <= 0 {
        return Figures::default();
    }
    let mut rng = SplitMix64::new(hour_seed(seed, campaign_key, slot.day, slot.local_hour));
    let noise = spec.noise.clamp(0.0, 0.95);
    let hour = slot.local_hour.min(23) as usize;
    let budget = budget_minor as f64;
    let spend = budget * PACING[hour] * (1.0 + noise * rng.centred());
    let reference = if reference > 0 { reference as f64 } else { budget };
    let roas = spec.base_roas.max(0.0)
        * (budget / reference).powf(-spec.elasticity)
        * spec.daypart.factor(slot.local_hour)
        * (1.0 + noise * rng.centred()).max(0.05);
    let impressions = rng.round_stochastic(spend / spec.cpm_minor.max(1) as f64 * 1_000.0);
    // CTR follows the hour effect only faintly: people click at night, they buy less.
    let ctr_factor = 1.0 + (spec.daypart.factor(slot.local_hour) - 1.0) * 0.3;
    let ctr = spec.ctr_percent.max(0.0) / 100.0 * ctr_factor * (1.0 + 0.5 * noise * rng.centred());
    let clicks = rng.round_stochastic(impressions as f64 * ctr).min(impressions);
    let aov = spec.aov_minor.max(1) as f64;
    let conversions = rng.round_stochastic(spend * roas / aov);
    let revenue = conversions as f64 * aov * (1.0 + 0.25 * rng.centred());
    Figures {
        spend_minor: spend.round() as i64,
        revenue_minor: revenue.round() as i64,
        impressions,
        clicks,
        conversions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("rfc3339").with_timezone(&Utc)
    }

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn days_follow_the_accounts_time_zone_and_daylight_saving() {
        let later = at("2027-01-01T00:00:00Z");
        assert_eq!(hours(chrono_tz::America::New_York, date("2026-03-08"), date("2026-03-08"), later).len(), 23);
        assert_eq!(hours(chrono_tz::America::New_York, date("2026-11-01"), date("2026-11-01"), later).len(), 25);
        let tokyo = hours(chrono_tz::Asia::Tokyo, date("2026-06-01"), date("2026-06-01"), later);
        assert_eq!(tokyo[0].start, at("2026-05-31T15:00:00Z"));
        assert_eq!(tokyo[0].local_hour, 0);
    }

    #[test]
    fn today_only_has_the_hours_that_ended() {
        // 10:30 in New York (EDT, UTC-4): hours 0 to 9 have ended.
        let now = at("2026-06-01T14:30:00Z");
        let slots = hours(chrono_tz::America::New_York, date("2026-06-01"), date("2026-06-01"), now);
        assert_eq!(slots.len(), 10);
        assert_eq!(slots.last().map(|s| s.local_hour), Some(9));
    }

    #[test]
    fn hours_are_deterministic_and_returns_diminish() {
        let spec = MarketSpec::default();
        let slot = HourSlot { start: at("2026-06-01T14:00:00Z"), local_hour: 10, day: 739_000 };
        let a = simulate_hour(7, 42, &spec, 10_000, 10_000, &slot);
        assert_eq!(a, simulate_hour(7, 42, &spec, 10_000, 10_000, &slot));
        assert_ne!(a, simulate_hour(8, 42, &spec, 10_000, 10_000, &slot));
        let day = |budget: i64| {
            let mut total = Figures::default();
            for d in 0..60 {
                for h in 0..24 {
                    let s = HourSlot { start: slot.start, local_hour: h, day: 739_000 + d };
                    total.add(simulate_hour(7, 42, &spec, 10_000, budget, &s));
                }
            }
            total.revenue_minor as f64 / total.spend_minor as f64
        };
        let (small, large) = (day(10_000), day(40_000));
        assert!((2.8..3.6).contains(&small), "{small}");
        assert!(large < small * 0.8, "{large} vs {small}");
    }
}
