//! Domain: hour-of-day learning. Turns per-cell sums of a campaign's hourly
//! figures (7 weekdays x 24 hours, summed in the database) into a profile: a
//! per-hour performance index relative to the campaign's own average,
//! shrunk toward that average by empirical Bayes, a day-of-week 7 x 24 index
//! shrunk toward the hour profile, peak and valley hours, and a confidence
//! that only a consistent, well-sampled pattern earns. Pure: no I/O.
//!
//! The statistics, in order:
//! - `x_h = (V_h / S_h) / (V / S)`: the hour's ratio (revenue or clicks per
//!   unit of spend) over the campaign's overall ratio.
//! - Sampling variance of `x_h` by the delta method from the hour's own rows
//!   (`n_h - 1` degrees of freedom), moderated toward a pooled estimate
//!   (variance proportional to 1 / spend) with [`PRIOR_DF`] degrees of
//!   freedom, and never below the pooled one: hours whose few rows happen to
//!   agree (say, no purchase on any of them) are not thereby precise.
//! - Between-hour variance `tau^2` by DerSimonian-Laird; each hour is shrunk
//!   toward 1 by `tau^2 / (tau^2 + v_h)`. A flat campaign has `tau^2` near 0,
//!   so every hour lands near 1 and no peak survives.
//! - Reliability: Higgins' `I^2 = (Q - q95) / Q`, the share of the observed
//!   hour-to-hour variation beyond what noise alone gives 95% of the time
//!   (`q95`, the 95th percentile of Q without a pattern).
//! - Consistency: the hourly pattern of even days against odd days
//!   (precision-weighted Pearson correlation, Spearman-Brown corrected).
//! - Confidence: `days / (days + 3) * min(I^2, consistency)`: both the
//!   noise model and the data alone must find the pattern real.
mod increments;
mod schedule;

pub use increments::{DayIncrements, HourFigures, HourIncrement, Reading, day_hours, increments};
pub use schedule::{
    HourBudget, MAX_SCHEDULE_MULTIPLIER, PeakWindow, ScheduleBounds, allocate, blend_weight, budget_schedule,
    multipliers, peak_windows,
};

/// Hours in a day of the profile.
pub const HOURS: usize = 24;
/// Days in a week of the profile (0 = Sunday).
pub const WEEKDAYS: usize = 7;
/// Hourly samples needed by default before a profile is learned (one day).
pub const DEFAULT_MIN_SAMPLES: i64 = 24;
/// Degrees of freedom of the pooled variance in the moderated variance.
pub const PRIOR_DF: f64 = 4.0;
/// Days at which the data-size factor of the confidence reaches one half.
pub const HALF_CONFIDENCE_DAYS: f64 = 3.0;
/// An hour is a peak (valley) when its index is at least this far above
/// (below) 1 and in the upper (lower) half of the swing.
pub const PEAK_MARGIN: f64 = 0.1;
/// Days since 1970-01-01 of a local date: what learning splits even / odd.
pub fn epoch_day(date: chrono::NaiveDate) -> i32 {
    (date - chrono::NaiveDate::default()).num_days() as i32
}

/// Weekday of a local date, 0 = Sunday.
pub fn weekday(date: chrono::NaiveDate) -> u32 {
    chrono::Datelike::weekday(&date).num_days_from_sunday()
}

/// Smallest sampling variance of an index, so exact data cannot divide by 0.
const MIN_VARIANCE: f64 = 1e-6;

/// What the index measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Revenue per unit of spend (needs revenue: the cycle's snapshots).
    Roas,
    /// Clicks per unit of spend: the declared proxy where no revenue is known
    /// (Meta's hourly breakdown has no website purchases).
    ClicksPerSpend,
}

impl Metric {
    /// Stable name, as stored and reported.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Roas => "roas",
            Self::ClicksPerSpend => "clicks_per_spend",
        }
    }

    /// Inverse of [`as_str`](Self::as_str).
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "roas" => Some(Self::Roas),
            "clicks_per_spend" => Some(Self::ClicksPerSpend),
            _ => None,
        }
    }
}

/// Sums over the hourly rows of one cell (a weekday and hour). `value` is
/// the metric's numerator (revenue or clicks), `spend` its denominator.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CellSums {
    /// Hourly rows.
    pub samples: i64,
    /// Sum of spend.
    pub spend: f64,
    /// Sum of the numerator.
    pub value: f64,
    /// Sum of spend squared.
    pub spend_sq: f64,
    /// Sum of the numerator squared.
    pub value_sq: f64,
    /// Sum of numerator times spend.
    pub value_spend: f64,
    /// Rows of even local days (days since 1970-01-01).
    pub even_samples: i64,
    /// Spend of even local days.
    pub even_spend: f64,
    /// Numerator of even local days.
    pub even_value: f64,
}

impl CellSums {
    /// Adds `other` in place.
    pub fn add(&mut self, other: &CellSums) {
        self.samples += other.samples;
        self.spend += other.spend;
        self.value += other.value;
        self.spend_sq += other.spend_sq;
        self.value_sq += other.value_sq;
        self.value_spend += other.value_spend;
        self.even_samples += other.even_samples;
        self.even_spend += other.even_spend;
        self.even_value += other.even_value;
    }

    /// Residual sum of squares of the rows around the cell's own ratio.
    fn rss(&self) -> f64 {
        if self.spend <= 0.0 {
            return 0.0;
        }
        let ratio = self.value / self.spend;
        (self.value_sq - 2.0 * ratio * self.value_spend + ratio * ratio * self.spend_sq).max(0.0)
    }
}

/// A learned hour-of-day profile.
#[derive(Debug, Clone, PartialEq)]
pub struct HourProfile {
    /// What the index measures.
    pub metric: Metric,
    /// 24 values; 1.0 is the campaign's average.
    pub hourly_index: Vec<f64>,
    /// 7 x 24 values, row-major by weekday (0 = Sunday).
    pub day_of_week_index: Vec<f64>,
    /// Hours that perform best, ascending.
    pub peak_hours: Vec<u32>,
    /// Hours that perform worst, ascending.
    pub valley_hours: Vec<u32>,
    /// 0 to 1.
    pub confidence: f64,
    /// Hourly rows behind the profile.
    pub samples: i64,
    /// Hourly rows per hour of day.
    pub hourly_samples: Vec<i64>,
    /// Days of data (samples / 24).
    pub days: f64,
    /// Higgins' I^2 of the hourly pattern, 0 to 1.
    pub reliability: f64,
    /// Split-half consistency of the hourly pattern, 0 to 1.
    pub consistency: f64,
}

impl HourProfile {
    /// A profile that knows nothing: every index 1, confidence 0.
    pub fn flat(metric: Metric, samples: i64, hourly_samples: Vec<i64>) -> Self {
        Self {
            metric,
            hourly_index: vec![1.0; HOURS],
            day_of_week_index: vec![1.0; HOURS * WEEKDAYS],
            peak_hours: Vec::new(),
            valley_hours: Vec::new(),
            confidence: 0.0,
            samples,
            days: samples as f64 / HOURS as f64,
            hourly_samples,
            reliability: 0.0,
            consistency: 0.0,
        }
    }
}

/// One cell's raw index and its sampling variance.
#[derive(Debug, Clone, Copy)]
struct Estimate {
    x: f64,
    variance: f64,
}

/// Moderated sampling variance of a cell's index (see the module docs).
fn estimate(cell: &CellSums, ratio: f64, phi: f64) -> Option<Estimate> {
    if cell.spend <= 0.0 || cell.samples <= 0 {
        return None;
    }
    let x = cell.value / cell.spend / ratio;
    let pooled = phi / cell.spend / (ratio * ratio);
    let variance = if cell.samples >= 2 {
        let n = cell.samples as f64;
        let direct = cell.rss() / (cell.spend * cell.spend) * n / (n - 1.0) / (ratio * ratio);
        // Never below the pooled (count-like) variance: an hour whose few
        // rows happen to agree, e.g. no purchase on any of them, is not
        // thereby precise.
        (((n - 1.0) * direct + PRIOR_DF * pooled) / (n - 1.0 + PRIOR_DF)).max(pooled)
    } else {
        pooled
    };
    Some(Estimate { x, variance: variance.max(MIN_VARIANCE) })
}

/// Learns the profile of one campaign from its 7 x 24 cells (row-major by
/// weekday). Cells beyond 168 are ignored; missing ones count as empty.
pub fn learn(metric: Metric, cells: &[CellSums]) -> HourProfile {
    let cell = |d: usize, h: usize| cells.get(d * HOURS + h).copied().unwrap_or_default();
    let mut hours = vec![CellSums::default(); HOURS];
    for (h, hour) in hours.iter_mut().enumerate() {
        for d in 0..WEEKDAYS {
            hour.add(&cell(d, h));
        }
    }
    let mut total = CellSums::default();
    hours.iter().for_each(|h| total.add(h));
    let hourly_samples: Vec<i64> = hours.iter().map(|h| h.samples).collect();
    let mut profile = HourProfile::flat(metric, total.samples, hourly_samples);
    if total.spend <= 0.0 || total.value <= 0.0 {
        return profile;
    }
    let ratio = total.value / total.spend;

    // Pooled dispersion: variance per unit of spend, from hours with 2+ rows.
    let (rss, exposure) = hours
        .iter()
        .filter(|h| h.samples >= 2 && h.spend > 0.0)
        .fold((0.0, 0.0), |(r, e), h| (r + h.rss(), e + h.spend * (1.0 - 1.0 / h.samples as f64)));
    if exposure <= 0.0 {
        // No hour seen twice: nothing tells signal from noise.
        return profile;
    }
    let phi = rss / exposure;

    let estimates: Vec<Option<Estimate>> = hours.iter().map(|h| estimate(h, ratio, phi)).collect();
    let observed: Vec<Estimate> = estimates.iter().flatten().copied().collect();
    let Some((tau2, reliability)) = between_variance(&observed) else {
        return profile;
    };
    profile.reliability = reliability;
    profile.hourly_index = estimates.iter().map(|e| e.map_or(1.0, |e| shrink(1.0, e, tau2))).collect();

    // Day of week: each cell shrunk toward its hour's index.
    let mut residuals = Vec::new();
    let mut dow = vec![None; HOURS * WEEKDAYS];
    for d in 0..WEEKDAYS {
        for h in 0..HOURS {
            if let Some(e) = estimate(&cell(d, h), ratio, phi) {
                let residual = Estimate { x: e.x - profile.hourly_index[h], variance: e.variance };
                residuals.push(residual);
                dow[d * HOURS + h] = Some(residual);
            }
        }
    }
    let tau2_dow = known_mean_variance(&residuals);
    profile.day_of_week_index = dow
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let base = profile.hourly_index[i % HOURS];
            r.map_or(base, |r| base + tau2_dow / (tau2_dow + r.variance) * r.x)
        })
        .collect();

    profile.consistency = split_half(&hours, &estimates);
    let days = profile.days;
    let size = days / (days + HALF_CONFIDENCE_DAYS);
    // Two estimates of how much of the pattern is real, one from the noise
    // model and one from the data alone: the pattern must pass both.
    profile.confidence = (size * profile.reliability.min(profile.consistency)).clamp(0.0, 1.0);
    (profile.peak_hours, profile.valley_hours) = peaks_and_valleys(&profile.hourly_index);
    profile
}

/// Shrinks an estimate toward `mean` given the between-cell variance.
fn shrink(mean: f64, e: Estimate, tau2: f64) -> f64 {
    mean + tau2 / (tau2 + e.variance) * (e.x - mean)
}

/// DerSimonian-Laird between-cell variance and Higgins' I^2; `None` with
/// fewer than two cells.
fn between_variance(cells: &[Estimate]) -> Option<(f64, f64)> {
    if cells.len() < 2 {
        return None;
    }
    let weights: Vec<f64> = cells.iter().map(|c| 1.0 / c.variance).collect();
    let sum_w: f64 = weights.iter().sum();
    let sum_w2: f64 = weights.iter().map(|w| w * w).sum();
    let mean = cells.iter().zip(&weights).map(|(c, w)| w * c.x).sum::<f64>() / sum_w;
    let q: f64 = cells.iter().zip(&weights).map(|(c, w)| w * (c.x - mean).powi(2)).sum();
    let df = (cells.len() - 1) as f64;
    let denominator = sum_w - sum_w2 / sum_w;
    let tau2 = if denominator > 0.0 { ((q - df) / denominator).max(0.0) } else { 0.0 };
    // Higgins' I^2 against the 95th percentile of Q when there is no
    // pattern (normal approximation of chi^2 with df degrees of freedom)
    // rather than its mean: chance heterogeneity across many campaigns must
    // not read as a pattern.
    let q95 = df + 1.645 * (2.0 * df).sqrt();
    let i2 = if q > q95 { (q - q95) / q } else { 0.0 };
    Some((tau2, i2.clamp(0.0, 1.0)))
}

/// Method-of-moments variance of residuals whose mean is known to be 0.
fn known_mean_variance(residuals: &[Estimate]) -> f64 {
    let sum_w: f64 = residuals.iter().map(|r| 1.0 / r.variance).sum();
    if sum_w <= 0.0 {
        return 0.0;
    }
    let q: f64 = residuals.iter().map(|r| r.x * r.x / r.variance).sum();
    ((q - residuals.len() as f64) / sum_w).max(0.0)
}

/// Consistency of the hourly pattern between even and odd local days:
/// precision-weighted Pearson correlation of the two halves' indices,
/// Spearman-Brown corrected to the full data; 0 when it cannot be measured
/// or is negative.
fn split_half(hours: &[CellSums], estimates: &[Option<Estimate>]) -> f64 {
    let (even_value, even_spend): (f64, f64) =
        hours.iter().fold((0.0, 0.0), |a, h| (a.0 + h.even_value, a.1 + h.even_spend));
    let (all_value, all_spend): (f64, f64) = hours.iter().fold((0.0, 0.0), |a, h| (a.0 + h.value, a.1 + h.spend));
    let (odd_value, odd_spend) = (all_value - even_value, all_spend - even_spend);
    if even_value <= 0.0 || even_spend <= 0.0 || odd_value <= 0.0 || odd_spend <= 0.0 {
        return 0.0;
    }
    let (even_ratio, odd_ratio) = (even_value / even_spend, odd_value / odd_spend);
    let mut pairs = Vec::new();
    for (h, e) in hours.iter().zip(estimates) {
        let odd_h_spend = h.spend - h.even_spend;
        if let Some(e) = e
            && h.even_spend > 0.0
            && odd_h_spend > 0.0
        {
            let even = h.even_value / h.even_spend / even_ratio;
            let odd = (h.value - h.even_value) / odd_h_spend / odd_ratio;
            pairs.push((even, odd, 1.0 / e.variance));
        }
    }
    if pairs.len() < 3 {
        return 0.0;
    }
    let sum_w: f64 = pairs.iter().map(|p| p.2).sum();
    let mean_a = pairs.iter().map(|p| p.2 * p.0).sum::<f64>() / sum_w;
    let mean_b = pairs.iter().map(|p| p.2 * p.1).sum::<f64>() / sum_w;
    let cov: f64 = pairs.iter().map(|p| p.2 * (p.0 - mean_a) * (p.1 - mean_b)).sum();
    let var_a: f64 = pairs.iter().map(|p| p.2 * (p.0 - mean_a).powi(2)).sum();
    let var_b: f64 = pairs.iter().map(|p| p.2 * (p.1 - mean_b).powi(2)).sum();
    if var_a <= 0.0 || var_b <= 0.0 {
        return 0.0;
    }
    let r = cov / (var_a * var_b).sqrt();
    if r > 0.0 { (2.0 * r / (1.0 + r)).clamp(0.0, 1.0) } else { 0.0 }
}

/// Peak hours: index at least `1 + PEAK_MARGIN` and in the upper half of the
/// swing; valleys likewise below. Ascending.
pub fn peaks_and_valleys(index: &[f64]) -> (Vec<u32>, Vec<u32>) {
    let max = index.iter().copied().fold(1.0, f64::max);
    let min = index.iter().copied().fold(1.0, f64::min);
    let high = (1.0 + PEAK_MARGIN).max(1.0 + (max - 1.0) / 2.0);
    let low = (1.0 - PEAK_MARGIN).min(1.0 - (1.0 - min) / 2.0);
    let pick = |keep: &dyn Fn(f64) -> bool| {
        index.iter().enumerate().filter(|(_, v)| keep(**v)).map(|(h, _)| h as u32).collect::<Vec<u32>>()
    };
    (pick(&|v| v >= high), pick(&|v| v <= low))
}

#[cfg(test)]
mod tests;
