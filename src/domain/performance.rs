//! Domain: a campaign's performance figures over a window, the one shape the
//! decision, the audit trail and the ad platform's insights share.

/// What a campaign spent and earned over a window, in the account's currency.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Performance {
    /// Spend, minor units.
    pub spend_minor: i64,
    /// Purchase revenue, minor units.
    pub revenue_minor: i64,
    /// Impressions.
    pub impressions: i64,
    /// Clicks (all).
    pub clicks: i64,
    /// Purchases of the configured action type.
    pub conversions: i64,
    /// Click-through rate in percent: clicks per 100 impressions (2.5 means 2.5%).
    pub ctr_percent: f64,
}

impl Performance {
    /// Return on ad spend: revenue / spend, 0 when nothing was spent.
    pub fn roas(&self) -> f64 {
        if self.spend_minor == 0 { 0.0 } else { self.revenue_minor as f64 / self.spend_minor as f64 }
    }

    /// The CTR decisions and the audit trail use: a NaN or infinite reading
    /// counts as 0, so a broken figure can never justify an aggressive
    /// scale-up.
    pub fn usable_ctr(&self) -> f64 {
        if self.ctr_percent.is_finite() { self.ctr_percent } else { 0.0 }
    }

    /// These figures with a CTR the decision can trust: the platform's CTR
    /// is input like any other, so outside 0-100 (or not a number) it is
    /// replaced by clicks / impressions, and an absurd figure cannot trigger
    /// an aggressive scale-up.
    pub fn with_trusted_ctr(self) -> Self {
        if self.ctr_percent.is_finite() && (0.0..=100.0).contains(&self.ctr_percent) {
            return self;
        }
        let consistent = self.impressions > 0 && self.clicks >= 0 && self.clicks <= self.impressions;
        Self { ctr_percent: if consistent { ctr_percent(self.clicks, self.impressions) } else { 0.0 }, ..self }
    }

    /// These figures plus `other`'s (saturating; the CTR is recomputed from
    /// the summed clicks and impressions).
    pub fn plus(&self, other: &Self) -> Self {
        self.combine(other, i64::saturating_add)
    }

    /// These figures less `other`'s, each floored at 0: what a longer window
    /// adds to a shorter one it contains (the 24-hour window less today is
    /// yesterday). A later reading that reports less than an earlier one
    /// (Meta corrects figures) never yields negative spend or revenue.
    pub fn minus(&self, other: &Self) -> Self {
        self.combine(other, |a, b| a.saturating_sub(b).max(0))
    }

    fn combine(&self, other: &Self, op: fn(i64, i64) -> i64) -> Self {
        let impressions = op(self.impressions, other.impressions);
        let clicks = op(self.clicks, other.clicks);
        Self {
            spend_minor: op(self.spend_minor, other.spend_minor),
            revenue_minor: op(self.revenue_minor, other.revenue_minor),
            impressions,
            clicks,
            conversions: op(self.conversions, other.conversions),
            ctr_percent: ctr_percent(clicks, impressions),
        }
    }
}

/// Clicks per 100 impressions, 0 without impressions.
pub fn ctr_percent(clicks: i64, impressions: i64) -> f64 {
    if impressions == 0 { 0.0 } else { clicks as f64 * 100.0 / impressions as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(spend_minor: i64, revenue_minor: i64, impressions: i64, clicks: i64) -> Performance {
        Performance { spend_minor, revenue_minor, impressions, clicks, conversions: 1, ctr_percent: 0.0 }
    }

    #[test]
    fn roas_is_zero_without_spend() {
        assert_eq!(figures(0, 100, 0, 0).roas(), 0.0);
        assert_eq!(figures(10_000, 45_000, 0, 0).roas(), 4.5);
    }

    #[test]
    fn a_window_less_a_day_it_contains_never_goes_negative() {
        let window = figures(10_000, 30_000, 2_000, 50);
        let today = figures(4_000, 31_000, 500, 20);
        let yesterday = window.minus(&today);
        assert_eq!((yesterday.spend_minor, yesterday.revenue_minor), (6_000, 0), "a corrected figure floors at 0");
        assert_eq!((yesterday.impressions, yesterday.clicks, yesterday.conversions), (1_500, 30, 0));
        assert_eq!(yesterday.ctr_percent, 2.0, "the CTR is recomputed from what remains");
        assert_eq!(yesterday.plus(&today).spend_minor, window.spend_minor);
    }

    #[test]
    fn an_absurd_ctr_is_replaced_by_clicks_over_impressions() {
        let read = |ctr_percent: f64, impressions: i64, clicks: i64| {
            Performance { ctr_percent, ..figures(100, 100, impressions, clicks) }.with_trusted_ctr().ctr_percent
        };
        assert_eq!(read(3.5, 1_000, 20), 3.5, "a plausible CTR is kept");
        assert_eq!(read(f64::NAN, 1_000, 20), 2.0);
        assert_eq!(read(250.0, 1_000, 20), 2.0);
        assert_eq!(read(-1.0, 0, 0), 0.0, "nothing to recompute from");
        assert_eq!(read(f64::INFINITY, 10, 20), 0.0, "more clicks than impressions is not a CTR");
    }
}
