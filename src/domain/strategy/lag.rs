//! The reporting-lag curve: the share `F(age)` of an hour's purchase revenue
//! that Meta has reported `age` hours after the hour ended. Used to count
//! recent spend only by the part of its revenue that can already be seen.

/// Hours after which every purchase is taken as reported (Meta's 7-day click
/// attribution window).
pub const LAG_HORIZON_HOURS: usize = 168;

/// A reporting-lag curve: `cdf[a]` is the share reported `a` whole hours
/// after the exposure hour ended; non-decreasing, 1 from the horizon on.
#[derive(Debug, Clone, PartialEq)]
pub struct LagCurve {
    cdf: Vec<f64>,
}

impl Default for LagCurve {
    fn default() -> Self {
        Self::prior()
    }
}

impl LagCurve {
    /// The prior used until an account has enough days of its own readings:
    /// about a third of purchase revenue reported within the hour, 40% more
    /// over the next hours (mean 5 h), the last quarter over about three days
    /// (mean 30 h). That is roughly 75% by the next morning and 95% after
    /// three days, the shape of Meta's purchase reporting for click-through
    /// conversions.
    pub fn prior() -> Self {
        Self::mixture(0.35, &[(0.40, 5.0), (0.25, 30.0)])
    }

    /// An immediate share plus exponential components (weight, mean hours).
    pub fn mixture(immediate: f64, components: &[(f64, f64)]) -> Self {
        let cdf = (0..=LAG_HORIZON_HOURS)
            .map(|a| {
                let a = a as f64;
                let tail: f64 = components.iter().map(|(w, mean)| w * (1.0 - (-a / mean).exp())).sum();
                immediate + tail
            })
            .collect();
        Self::from_cdf(cdf)
    }

    /// A curve from shares by whole hour; made non-decreasing and held in
    /// [0, 1], padded with its last value and forced to 1 at the horizon.
    pub fn from_cdf(raw: Vec<f64>) -> Self {
        let mut cdf = Vec::with_capacity(LAG_HORIZON_HOURS + 1);
        let mut running: f64 = 0.0;
        for a in 0..=LAG_HORIZON_HOURS {
            let v = raw.get(a).copied().or_else(|| raw.last().copied()).unwrap_or(1.0);
            let v = if v.is_finite() { v.clamp(0.0, 1.0) } else { running };
            running = running.max(v);
            cdf.push(running);
        }
        if let Some(last) = cdf.last_mut() {
            *last = 1.0;
        }
        Self { cdf }
    }

    /// Share reported `hours` after the exposure hour ended (linear between
    /// whole hours; 1 from the horizon on; the first hour's share before it).
    pub fn share(&self, hours: f64) -> f64 {
        if !hours.is_finite() || hours >= LAG_HORIZON_HOURS as f64 {
            return 1.0;
        }
        let h = hours.max(0.0);
        let i = h.floor() as usize;
        let frac = h - i as f64;
        let lo = self.cdf[i];
        let hi = self.cdf.get(i + 1).copied().unwrap_or(1.0);
        lo + (hi - lo) * frac
    }

    /// The shares by whole hour, `0..=LAG_HORIZON_HOURS`.
    pub fn cdf(&self) -> &[f64] {
        &self.cdf
    }

    /// Spend-weighted reported share of consecutive hours whose spends are
    /// `spend_by_hour`, the last of which ended `hours_since_last_end` ago.
    /// 1 when nothing was spent.
    pub fn share_of_hours(&self, spend_by_hour: &[i64], hours_since_last_end: f64) -> f64 {
        let n = spend_by_hour.len();
        let (mut spend, mut seen) = (0.0, 0.0);
        for (i, s) in spend_by_hour.iter().enumerate() {
            let s = (*s).max(0) as f64;
            spend += s;
            seen += s * self.share(hours_since_last_end + (n - 1 - i) as f64);
        }
        if spend > 0.0 { seen / spend } else { 1.0 }
    }
}
