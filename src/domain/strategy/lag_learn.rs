//! Learning an account's reporting-lag curve from successive readings of the
//! same days' cumulative revenue (the cycle's "today" readings during a day,
//! and the days re-read after they ended).
//!
//! Why a fit and not a ratio table: a day's revenue keeps growing while its
//! spend is still arriving, so readings mix the spend's timing with the lag.
//! Each candidate curve predicts every reading from the day's spend by hour
//! (`E(t) = sum_h s_h F(t - h - 1)`); the day's own ROAS is profiled out, so
//! only the *shape* over the readings' ages is judged, which is what the
//! readings can tell. The family is the prior's: a share reported within the
//! hour plus a fast and a slow exponential delay, everything reported by the
//! horizon (Meta's 7-day click window). The fit starts at the prior and moves
//! one parameter at a time, so a shape the readings cannot tell apart (a tail
//! beyond the oldest reading) stays where the prior put it; the result is
//! then blended with the prior by days observed.
use super::lag::{LAG_HORIZON_HOURS, LagCurve};

/// Days of readings that weigh as much as the prior.
pub const PRIOR_WEIGHT_DAYS: f64 = 7.0;
/// Readings of one day the fit uses at most (evenly spread over its ages):
/// enough for the shape, cheap enough to refit every account every day.
const MAX_READINGS_PER_DAY: usize = 10;
/// Readings a day needs to say anything about the shape.
const MIN_READINGS_PER_DAY: usize = 3;

/// The curve family: `immediate` within the hour, the rest split `fast_split`
/// : `1 - fast_split` between exponential delays of mean `fast_mean_hours`
/// and `slow_mean_hours`, rescaled so that everything is reported by the
/// horizon.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LagShape {
    /// Share reported within the hour.
    pub immediate: f64,
    /// Share of the rest on the fast delay.
    pub fast_split: f64,
    /// Mean of the fast delay, hours.
    pub fast_mean_hours: f64,
    /// Mean of the slow delay, hours.
    pub slow_mean_hours: f64,
}

impl LagShape {
    /// The prior's parameters ([`LagCurve::prior`]).
    pub const PRIOR: Self =
        Self { immediate: 0.35, fast_split: 0.40 / 0.65, fast_mean_hours: 5.0, slow_mean_hours: 30.0 };

    /// The curve, rescaled so that the horizon reads 1.
    pub fn curve(&self) -> LagCurve {
        let rest = 1.0 - self.immediate;
        let raw = LagCurve::mixture(
            self.immediate,
            &[(rest * self.fast_split, self.fast_mean_hours), (rest * (1.0 - self.fast_split), self.slow_mean_hours)],
        );
        // The mixture's value at the horizon before it is forced to 1.
        let h = LAG_HORIZON_HOURS as f64;
        let at_horizon = self.immediate
            + rest * self.fast_split * (1.0 - (-h / self.fast_mean_hours).exp())
            + rest * (1.0 - self.fast_split) * (1.0 - (-h / self.slow_mean_hours).exp());
        let scale = if at_horizon > 0.0 { 1.0 / at_horizon } else { 1.0 };
        LagCurve::from_cdf(raw.cdf().iter().map(|v| v * scale).collect())
    }
}

/// One reading of a day's cumulative figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DayReading {
    /// When it was read, hours since the day's start (above 24 once the day
    /// has ended).
    pub hours_since_start: f64,
    /// The day's spend so far, minor units.
    pub spend_minor: i64,
    /// The day's revenue reported so far, minor units.
    pub revenue_minor: i64,
}

/// Every reading of one account-day (any order).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ObservedDay {
    /// Its readings.
    pub readings: Vec<DayReading>,
}

/// What was learned for an account.
#[derive(Debug, Clone, PartialEq)]
pub struct LearnedLag {
    /// The curve to use: the fit blended with the prior.
    pub curve: LagCurve,
    /// The fitted shape (the prior's when no day qualified).
    pub shape: LagShape,
    /// Days whose readings entered the fit.
    pub days_observed: usize,
    /// Readings that entered the fit.
    pub readings_used: usize,
    /// Weight of the prior in the blend, 0-1.
    pub prior_weight: f64,
    /// Age in hours of the oldest reading used (after its day's start): the
    /// curve beyond it is the family's extrapolation, not an observation.
    pub oldest_reading_hours: f64,
}

/// A day prepared for the fit: its spend by hour and its readings.
struct PreparedDay {
    spend_by_hour: [f64; 24],
    readings: Vec<(f64, f64, f64)>, // (hours since start, spend so far, revenue)
}

/// Learns the account's curve from its observed days.
pub fn learn(days: &[ObservedDay]) -> LearnedLag {
    learn_from(days, None)
}

/// [`learn`], searching from `previous` (the account's last fit) instead of
/// a coarse grid: the curve changes little from one day to the next, and the
/// search then costs a few neighbourhoods instead of a grid.
pub fn learn_from(days: &[ObservedDay], previous: Option<LagShape>) -> LearnedLag {
    let prepared: Vec<PreparedDay> = days.iter().filter_map(prepare).collect();
    let readings_used = prepared.iter().map(|d| d.readings.len()).sum();
    let oldest = prepared.iter().flat_map(|d| d.readings.iter().map(|r| r.0)).fold(0.0, f64::max);
    let prior = LagCurve::prior();
    if prepared.is_empty() {
        return LearnedLag {
            curve: prior,
            shape: LagShape::PRIOR,
            days_observed: 0,
            readings_used: 0,
            prior_weight: 1.0,
            oldest_reading_hours: 0.0,
        };
    }
    let shape = fit(&prepared, previous);
    let n = prepared.len() as f64;
    let prior_weight = PRIOR_WEIGHT_DAYS / (n + PRIOR_WEIGHT_DAYS);
    let fitted = shape.curve();
    let blended =
        fitted.cdf().iter().zip(prior.cdf()).map(|(f, p)| (1.0 - prior_weight) * f + prior_weight * p).collect();
    LearnedLag {
        curve: LagCurve::from_cdf(blended),
        shape,
        days_observed: prepared.len(),
        readings_used,
        prior_weight,
        oldest_reading_hours: oldest,
    }
}

/// The day's spend by hour, interpolated from its cumulative spend readings
/// (0 at the start, linear between readings, the last reading's total after
/// it), and up to [`MAX_READINGS_PER_DAY`] readings spread over its ages.
fn prepare(day: &ObservedDay) -> Option<PreparedDay> {
    let mut rs: Vec<(f64, f64, f64)> = day
        .readings
        .iter()
        .filter(|r| r.hours_since_start.is_finite() && r.hours_since_start > 0.0 && r.spend_minor >= 0)
        .map(|r| (r.hours_since_start, r.spend_minor as f64, r.revenue_minor.max(0) as f64))
        .collect();
    rs.sort_by(|a, b| a.0.total_cmp(&b.0));
    rs.dedup_by(|a, b| a.0 == b.0);
    let (_, total_spend, last_revenue) = *rs.last()?;
    if rs.len() < MIN_READINGS_PER_DAY || total_spend <= 0.0 || last_revenue <= 0.0 {
        return None;
    }
    // Cumulative spend at each whole hour of the day.
    let cumulative_at = |h: f64| -> f64 {
        let mut prev = (0.0, 0.0);
        for &(t, s, _) in &rs {
            if t >= h {
                let span = t - prev.0;
                let f = if span > 0.0 { (h - prev.0) / span } else { 1.0 };
                return prev.1 + f * (s - prev.1);
            }
            prev = (t, s);
        }
        prev.1
    };
    let mut spend_by_hour = [0.0; 24];
    let mut before = 0.0;
    for (h, slot) in spend_by_hour.iter_mut().enumerate() {
        let c = cumulative_at((h + 1) as f64).max(before);
        *slot = c - before;
        before = c;
    }
    if rs.len() > MAX_READINGS_PER_DAY {
        let n = rs.len();
        rs = (0..MAX_READINGS_PER_DAY).map(|i| rs[i * (n - 1) / (MAX_READINGS_PER_DAY - 1)]).collect();
    }
    Some(PreparedDay { spend_by_hour, readings: rs })
}

/// Revenue a reading at `t` hours would show per unit of ROAS under `curve`:
/// each hour's spend by then, counted by the share reported since.
fn expected(curve: &LagCurve, day: &PreparedDay, t: f64, spend_so_far: f64) -> f64 {
    let mut e = 0.0;
    let mut counted = 0.0;
    for (h, s) in day.spend_by_hour.iter().enumerate() {
        let end = (h + 1) as f64;
        if end <= t {
            e += s * curve.share(t - end);
            counted += s;
        } else {
            break;
        }
    }
    // The hour in progress: what was spent of it so far, just reported.
    e + (spend_so_far - counted).max(0.0) * curve.share(0.0)
}

/// Badness of `curve` over the days: each day's ROAS profiled out (ratio
/// estimator), squared errors over the expected value (Poisson-like).
fn loss(curve: &LagCurve, days: &[PreparedDay]) -> f64 {
    let mut total = 0.0;
    for day in days {
        let e: Vec<f64> = day.readings.iter().map(|&(t, s, _)| expected(curve, day, t, s)).collect();
        let (sum_r, sum_e): (f64, f64) =
            day.readings.iter().zip(&e).fold((0.0, 0.0), |(r, x), (&(_, _, rev), &ei)| (r + rev, x + ei));
        if sum_e <= 0.0 {
            continue;
        }
        let rho = sum_r / sum_e;
        // Scale-free per day: errors relative to the day's revenue, so that a
        // big day does not outvote the shape of every small one.
        let scale = sum_r.max(1.0) / day.readings.len() as f64;
        for (&(_, _, r), ei) in day.readings.iter().zip(&e) {
            let m = rho * ei;
            total += (r - m).powi(2) / (m.max(0.05 * scale) * scale);
        }
    }
    total
}

/// Pattern search on grids of the four parameters: from the best point of a
/// coarse grid (and from the prior), move to the best neighbour (one or two
/// parameters a step each, so ridges where two parameters trade against
/// each other are followed) until none is better. Every move must beat the
/// incumbent by a margin, so where the readings cannot tell shapes apart the
/// prior's values stay.
fn fit(days: &[PreparedDay], previous: Option<LagShape>) -> LagShape {
    const IMMEDIATE: [f64; 19] =
        [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.97];
    const SPLIT: [f64; 11] = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];
    const FAST: [f64; 7] = [1.0, 2.0, 3.0, 4.0, 5.0, 8.0, 12.0];
    const SLOW: [f64; 11] = [18.0, 24.0, 30.0, 40.0, 48.0, 72.0, 96.0, 120.0, 180.0, 240.0, 480.0];
    const SIZES: [usize; 4] = [IMMEDIATE.len(), SPLIT.len(), FAST.len(), SLOW.len()];
    let shape = |p: [usize; 4]| LagShape {
        immediate: IMMEDIATE[p[0]],
        fast_split: SPLIT[p[1]],
        fast_mean_hours: FAST[p[2]],
        slow_mean_hours: SLOW[p[3]],
    };
    let score = |p: [usize; 4]| loss(&shape(p).curve(), days);
    // The prior on the grids: 0.35, 0.6 (of 0.65: 0.615), 5 h, 30 h.
    let prior = [6, 6, 4, 2];
    let mut best = prior;
    let mut best_loss = score(prior);
    let better = |l: f64, than: f64| l < than * (1.0 - 1e-6);
    let nearest = |grid: &[f64], v: f64| {
        (0..grid.len()).min_by(|&a, &b| (grid[a] - v).abs().total_cmp(&(grid[b] - v).abs())).unwrap_or(0)
    };
    let warm = previous.map(|p| {
        [
            nearest(&IMMEDIATE, p.immediate),
            nearest(&SPLIT, p.fast_split),
            nearest(&FAST, p.fast_mean_hours),
            nearest(&SLOW, p.slow_mean_hours),
        ]
    });
    if let Some(p) = warm {
        let v = score(p);
        if better(v, best_loss) {
            (best, best_loss) = (p, v);
        }
    }
    for i in (0..SIZES[0]).step_by(3).filter(|_| warm.is_none()) {
        for s in (0..SIZES[1]).step_by(2) {
            for l in (0..SIZES[3]).step_by(2) {
                let p = [i, s, prior[2], l];
                let v = score(p);
                if better(v, best_loss) {
                    (best, best_loss) = (p, v);
                }
            }
        }
    }
    let mut moves: Vec<[i64; 4]> = Vec::new();
    for a in 0..4 {
        for da in [-1, 1] {
            let mut m = [0; 4];
            m[a] = da;
            moves.push(m);
            for b in a + 1..4 {
                for db in [-1, 1] {
                    let mut m2 = m;
                    m2[b] = db;
                    moves.push(m2);
                }
            }
        }
    }
    for _step in 0..60 {
        let mut next = None;
        for m in &moves {
            let mut p = best;
            let mut inside = true;
            for k in 0..4 {
                let v = best[k] as i64 + m[k];
                inside &= v >= 0 && v < SIZES[k] as i64;
                p[k] = v.max(0) as usize;
            }
            if !inside {
                continue;
            }
            let v = score(p);
            if better(v, next.map_or(best_loss, |(_, l)| l)) {
                next = Some((p, v));
            }
        }
        match next {
            Some((p, v)) => (best, best_loss) = (p, v),
            None => break,
        }
    }
    shape(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hourly pacing of a day (quiet nights, busy evenings).
    const PACING: [f64; 24] = [
        1.0, 0.6, 0.4, 0.3, 0.3, 0.4, 0.7, 1.0, 1.2, 1.3, 1.4, 1.5, 1.5, 1.5, 1.4, 1.4, 1.5, 1.6, 1.8, 2.0, 2.0, 1.8,
        1.5, 1.2,
    ];

    /// Days read as the engine reads them: hourly during the day, then once
    /// a day (at the same hour) up to `days_after` days after it ended; each
    /// day at its own ROAS and size, revenue off by a deterministic +-`noise`.
    fn observe(truth: &LagCurve, days: usize, days_after: usize, noise: f64) -> Vec<ObservedDay> {
        (0..days)
            .map(|d| {
                let size = 10_000.0 * (1.0 + (d % 5) as f64 * 0.3);
                let roas = 1.5 + (d % 7) as f64 * 0.25;
                let total: f64 = PACING.iter().sum();
                let spend: Vec<f64> = PACING.iter().map(|p| size * p / total).collect();
                let at = |t: f64| -> (f64, f64) {
                    let (mut s, mut r) = (0.0, 0.0);
                    for (h, x) in spend.iter().enumerate() {
                        if ((h + 1) as f64) <= t {
                            s += x;
                            r += x * roas * truth.share(t - (h + 1) as f64);
                        }
                    }
                    (s, r)
                };
                let mut times: Vec<f64> = (1..=24).map(f64::from).collect();
                times.extend((1..=days_after).map(|k| 24.0 + 24.0 * k as f64 - 12.0));
                let readings = times
                    .iter()
                    .enumerate()
                    .map(|(i, &t)| {
                        let (s, r) = at(t);
                        let wobble = 1.0 + noise * (((d * 31 + i * 17) % 11) as f64 / 5.0 - 1.0);
                        DayReading {
                            hours_since_start: t,
                            spend_minor: s.round() as i64,
                            revenue_minor: (r * wobble).round() as i64,
                        }
                    })
                    .collect();
                ObservedDay { readings }
            })
            .collect()
    }

    fn assert_close(learned: &LagCurve, truth: &LagCurve, tolerance: f64) {
        for age in [0.0, 3.0, 12.0, 24.0, 48.0, 96.0] {
            let (l, t) = (learned.share(age), truth.share(age));
            assert!((l - t).abs() <= tolerance, "share at {age} h: learned {l:.3}, truth {t:.3}");
        }
    }

    #[test]
    fn without_readings_the_prior_is_used() {
        let learned = learn(&[]);
        assert_eq!(learned.curve, LagCurve::prior());
        assert_eq!((learned.days_observed, learned.prior_weight), (0, 1.0));
        // A day with too few readings or no revenue does not count.
        let thin = ObservedDay {
            readings: vec![DayReading { hours_since_start: 5.0, spend_minor: 100, revenue_minor: 0 }; 5],
        };
        assert_eq!(learn(&[thin]).days_observed, 0);
    }

    #[test]
    fn a_slow_long_tailed_curve_is_recovered_from_a_week_of_rereads() {
        let truth = LagShape { immediate: 0.2, fast_split: 0.4, fast_mean_hours: 5.0, slow_mean_hours: 120.0 }.curve();
        let learned = learn(&observe(&truth, 28, 7, 0.0));
        assert_eq!(learned.days_observed, 28);
        // The fitted shape itself, before the blend with the prior.
        assert_close(&learned.shape.curve(), &truth, 0.05);
        // The blend is a week of prior against four weeks of data.
        assert!((learned.prior_weight - 0.2).abs() < 1e-9);
        assert!(learned.curve.share(24.0) < LagCurve::prior().share(24.0) - 0.15);
    }

    #[test]
    fn a_warm_start_from_yesterday_s_fit_finds_the_same_curve() {
        let truth = LagShape { immediate: 0.2, fast_split: 0.4, fast_mean_hours: 5.0, slow_mean_hours: 120.0 }.curve();
        let days = observe(&truth, 28, 7, 0.0);
        let cold = learn(&days);
        let warm = learn_from(&days, Some(LagShape { immediate: 0.3, ..cold.shape }));
        assert_close(&warm.shape.curve(), &truth, 0.05);
    }

    #[test]
    fn a_platform_that_reports_at_once_is_recognised() {
        let truth = LagCurve::from_cdf(vec![1.0]);
        let learned = learn(&observe(&truth, 21, 2, 0.03));
        assert!(learned.shape.curve().share(0.0) >= 0.85, "{:?}", learned.shape);
        assert!(learned.curve.share(0.0) > LagCurve::prior().share(0.0) + 0.3);
    }

    #[test]
    fn the_prior_shape_stays_the_prior_with_noisy_readings() {
        let truth = LagCurve::prior();
        let learned = learn(&observe(&truth, 28, 7, 0.05));
        assert_close(&learned.curve, &truth, 0.05);
    }

    #[test]
    fn readings_within_the_day_alone_learn_the_fast_part() {
        // Half reported within the hour, the rest within about two hours:
        // visible without any re-read after the day.
        let truth = LagShape { immediate: 0.5, fast_split: 1.0, fast_mean_hours: 2.0, slow_mean_hours: 30.0 }.curve();
        let learned = learn(&observe(&truth, 28, 0, 0.0));
        assert!((learned.shape.curve().share(0.0) - 0.5).abs() < 0.1, "{:?}", learned.shape);
        assert!(learned.shape.curve().share(12.0) > 0.95, "{:?}", learned.shape);
    }
}
