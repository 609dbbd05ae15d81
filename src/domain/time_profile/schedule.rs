//! Domain: from a learned index to money. Hourly multipliers blended by
//! confidence and held within bounds, 24 hourly budgets that sum exactly to
//! the daily budget (largest remainder on integer shares), and the peak
//! windows Meta's budget schedules can express.
use super::HOURS;

/// Meta's largest budget-schedule multiplier: 8x the daily budget.
pub const MAX_SCHEDULE_MULTIPLIER: f64 = 8.0;
/// Multipliers are turned into integer weights with this resolution.
const WEIGHT_SCALE: f64 = 1_000_000.0;

/// How far a schedule may move from flat, and how much confidence it takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScheduleBounds {
    /// Lowest hourly multiplier (relative to daily / 24), in (0, 1].
    pub min_multiplier: f64,
    /// Highest hourly multiplier, in [1, 8].
    pub max_multiplier: f64,
    /// Below this confidence the schedule is flat.
    pub min_confidence: f64,
    /// From this confidence on the profile is followed fully; in between the
    /// schedule is blended linearly between flat and the profile.
    pub full_confidence: f64,
}

impl Default for ScheduleBounds {
    fn default() -> Self {
        Self { min_multiplier: 0.5, max_multiplier: 2.0, min_confidence: 0.3, full_confidence: 0.7 }
    }
}

impl ScheduleBounds {
    /// Checks the bounds; the error names the offending field.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let finite = [self.min_multiplier, self.max_multiplier, self.min_confidence, self.full_confidence];
        if finite.iter().any(|v| !v.is_finite()) {
            return Err(("min_multiplier", "every bound must be a finite number".into()));
        }
        if self.min_multiplier <= 0.0 || self.min_multiplier > 1.0 {
            return Err(("min_multiplier", "must be above 0 and at most 1".into()));
        }
        if self.max_multiplier < 1.0 || self.max_multiplier > MAX_SCHEDULE_MULTIPLIER {
            return Err(("max_multiplier", format!("must be 1 to {MAX_SCHEDULE_MULTIPLIER}")));
        }
        if !(0.0..=1.0).contains(&self.min_confidence) {
            return Err(("min_confidence", "must be 0 to 1".into()));
        }
        if !(self.min_confidence..=1.0).contains(&self.full_confidence) {
            return Err(("full_confidence", "must be min_confidence to 1".into()));
        }
        Ok(())
    }
}

/// How much of the profile a schedule follows: 0 below `min_confidence`, 1
/// from `full_confidence`, linear in between.
pub fn blend_weight(confidence: f64, bounds: &ScheduleBounds) -> f64 {
    if !confidence.is_finite() || confidence < bounds.min_confidence {
        return 0.0;
    }
    let span = bounds.full_confidence - bounds.min_confidence;
    if span <= 0.0 { 1.0 } else { ((confidence - bounds.min_confidence) / span).clamp(0.0, 1.0) }
}

/// 24 hourly multipliers with mean exactly 1 (up to float rounding), each
/// within the bounds: `1 + w (index - 1)` with the blend weight `w`, clamped,
/// then rescaled (re-clamping) until they average 1.
pub fn multipliers(index: &[f64], confidence: f64, bounds: &ScheduleBounds) -> [f64; HOURS] {
    let w = blend_weight(confidence, bounds);
    let (lo, hi) = (bounds.min_multiplier.min(1.0), bounds.max_multiplier.max(1.0));
    let mut raw = [1.0; HOURS];
    for (h, m) in raw.iter_mut().enumerate() {
        let x = index.get(h).copied().filter(|x| x.is_finite()).unwrap_or(1.0);
        *m = (1.0 + w * (x - 1.0)).clamp(lo, hi);
    }
    // Find s with sum(clamp(s m_h)) = 24: the sum is continuous and
    // non-decreasing in s, 24 lo <= 24 at s = 0 and >= 24 at s = hi / lo.
    let total = |s: f64| raw.iter().map(|m| (s * m).clamp(lo, hi)).sum::<f64>();
    let (mut a, mut b) = (0.0, hi / lo);
    for _ in 0..200 {
        let mid = (a + b) / 2.0;
        if total(mid) < HOURS as f64 { a = mid } else { b = mid }
    }
    let s = (a + b) / 2.0;
    raw.map(|m| (s * m).clamp(lo, hi))
}

/// Splits `daily_minor` over the hours in proportion to `multipliers`,
/// exactly: integer shares by largest remainder (ties to the earlier hour).
/// Negative budgets give zeros.
pub fn allocate(daily_minor: i64, multipliers: &[f64; HOURS]) -> [i64; HOURS] {
    let mut out = [0_i64; HOURS];
    if daily_minor <= 0 {
        return out;
    }
    let weights: Vec<i128> = multipliers
        .iter()
        .map(|m| if m.is_finite() && *m > 0.0 { (m * WEIGHT_SCALE).round() as i128 } else { 0 })
        .collect();
    let (weights, total) = match weights.iter().sum::<i128>() {
        0 => (vec![1_i128; HOURS], HOURS as i128),
        total => (weights, total),
    };
    let daily = i128::from(daily_minor);
    let mut remainders = Vec::with_capacity(HOURS);
    let mut given = 0_i128;
    for (h, w) in weights.iter().enumerate() {
        let share = daily * w;
        out[h] = (share / total) as i64;
        given += share / total;
        remainders.push((share % total, h));
    }
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let left = (daily - given) as usize;
    for (_, h) in remainders.into_iter().take(left) {
        out[h] += 1;
    }
    out
}

/// One hour of a budget schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HourBudget {
    /// Hour of day, 0-23, account time zone.
    pub hour: u32,
    /// Budget for that hour, minor units.
    pub budget_minor: i64,
    /// The budget relative to daily / 24.
    pub multiplier: f64,
}

/// The 24 hourly budgets of `daily_minor` for a profile `index` with
/// `confidence`: flat below the confidence threshold, within the bounds, and
/// summing exactly to `daily_minor`.
pub fn budget_schedule(daily_minor: i64, index: &[f64], confidence: f64, bounds: &ScheduleBounds) -> Vec<HourBudget> {
    let m = multipliers(index, confidence, bounds);
    let budgets = allocate(daily_minor, &m);
    (0..HOURS)
        .map(|h| HourBudget {
            hour: h as u32,
            budget_minor: budgets[h],
            multiplier: if daily_minor > 0 { budgets[h] as f64 * HOURS as f64 / daily_minor as f64 } else { m[h] },
        })
        .collect()
}

/// A run of hours to raise with a budget schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeakWindow {
    /// First hour of day.
    pub start_hour: u32,
    /// Hour of day the window ends (exclusive; 24 = midnight).
    pub end_hour: u32,
    /// Mean multiplier over the window.
    pub multiplier: f64,
}

/// Peak windows of a day: maximal runs of hours whose multiplier is at least
/// `threshold`, each widened to `min_hours` toward its stronger neighbour
/// (Meta's schedules last 3 hours or more), merged where they touch, the
/// strongest `max_windows` kept, in hour order. Windows that end up averaging
/// below `threshold` after widening are dropped.
pub fn peak_windows(multipliers: &[f64; HOURS], threshold: f64, min_hours: u32, max_windows: usize) -> Vec<PeakWindow> {
    let min_hours = (min_hours.max(1) as usize).min(HOURS);
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut h = 0;
    while h < HOURS {
        if multipliers[h] >= threshold {
            let start = h;
            while h < HOURS && multipliers[h] >= threshold {
                h += 1;
            }
            runs.push((start, h));
        } else {
            h += 1;
        }
    }
    for run in &mut runs {
        while run.1 - run.0 < min_hours {
            let before = run.0.checked_sub(1).map(|b| multipliers[b]);
            let after = (run.1 < HOURS).then(|| multipliers[run.1]);
            match (before, after) {
                (Some(b), Some(a)) if b > a => run.0 -= 1,
                (_, Some(_)) => run.1 += 1,
                (Some(_), None) => run.0 -= 1,
                (None, None) => break,
            }
        }
    }
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for run in runs {
        match merged.last_mut() {
            Some(last) if run.0 <= last.1 => last.1 = last.1.max(run.1),
            _ => merged.push(run),
        }
    }
    let mean = |(a, b): (usize, usize)| multipliers[a..b].iter().sum::<f64>() / (b - a) as f64;
    let mut windows: Vec<PeakWindow> = merged
        .into_iter()
        .filter(|w| mean(*w) >= threshold)
        .map(|w| PeakWindow { start_hour: w.0 as u32, end_hour: w.1 as u32, multiplier: mean(w) })
        .collect();
    if windows.len() > max_windows {
        windows.sort_by(|a, b| b.multiplier.total_cmp(&a.multiplier));
        windows.truncate(max_windows);
        windows.sort_by_key(|w| w.start_hour);
    }
    windows
}
