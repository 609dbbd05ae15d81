//! Simulation: counter-based random numbers. Every draw is a hash of (seed,
//! campaign, hour, stream, index), so the same campaign-hour gets the same
//! uniforms under every policy (common random numbers) and no draw depends on
//! the order of the others. The mixer is the Meta sandbox's (one SplitMix64
//! for both markets); the keyed draws are the simulation's own.

/// The streams of draws; each is an independent family of uniforms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub(crate) enum Stream {
    /// Campaign parameters (one index per parameter).
    Params = 1,
    /// Hourly pacing noise of spend.
    SpendNoise = 2,
    /// Conversion counts.
    Conversions = 3,
    /// Click counts.
    Clicks = 4,
    /// Order value of each conversion (index = conversion).
    Value = 5,
    /// Reporting lag of each conversion (index = conversion).
    Lag = 6,
    /// Daily drift of a campaign (index = day).
    Drift = 7,
    /// Under-delivery of a campaign-day (index 0: whether, 1: how much).
    UnderDelivery = 8,
    /// Overdispersion shock of a campaign-day or campaign-hour (index = draw).
    Dispersion = 9,
}

// SplitMix64's finalizer, the mixer of the sandbox's generator too.
use meta_sandbox::market::mix;

/// A uniform in (0, 1) for one key; never exactly 0 or 1.
pub(crate) fn uniform(seed: u64, campaign: u64, hour: u64, stream: Stream, index: u64) -> f64 {
    let mut h = mix(seed ^ 0x9e37_79b9_7f4a_7c15);
    h = mix(h ^ campaign.wrapping_mul(0xd1b5_4a32_d192_ed03));
    h = mix(h ^ hour.wrapping_mul(0x8cb9_2ba7_2f3d_8dd7));
    h = mix(h ^ (stream as u64).wrapping_mul(0xabc9_8388_fb8f_ac03));
    h = mix(h ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

/// The standard normal quantile (Acklam's rational approximation, relative
/// error below 1.2e-9), shared with the strategy's estimator.
pub(crate) fn normal_quantile(p: f64) -> f64 {
    crate::domain::strategy::stats::acklam_normal_quantile(p.clamp(1e-300, 1.0 - 1e-16))
}

/// A Poisson count with mean `lambda` from the uniform `u` by inversion
/// (a normal approximation above a mean of 40). Monotone in `lambda` for a
/// fixed `u`: a policy that buys more exposure never gets fewer conversions
/// from the same draw, which keeps policy comparisons tight.
pub(crate) fn poisson(lambda: f64, u: f64) -> u64 {
    if lambda.is_nan() || lambda <= 0.0 {
        return 0;
    }
    if lambda > 40.0 {
        let x = lambda + lambda.sqrt() * normal_quantile(u) + 0.5;
        return x.max(0.0).floor() as u64;
    }
    let mut p = (-lambda).exp();
    let mut cdf = p;
    let mut k = 0u64;
    while u > cdf && k < 400 {
        k += 1;
        p *= lambda / k as f64;
        cdf += p;
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniforms_are_deterministic_and_distinct_per_key() {
        let a = uniform(1, 2, 3, Stream::Conversions, 0);
        assert_eq!(a, uniform(1, 2, 3, Stream::Conversions, 0));
        assert_ne!(a, uniform(1, 2, 3, Stream::Clicks, 0));
        assert_ne!(a, uniform(2, 2, 3, Stream::Conversions, 0));
        let mean = (0..10_000).map(|i| uniform(9, 1, i, Stream::Value, 0)).sum::<f64>() / 10_000.0;
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
    }

    #[test]
    fn poisson_means_match_and_grow_with_lambda() {
        for lambda in [0.3, 4.0, 25.0, 120.0] {
            let n = 20_000;
            let mean = (0..n).map(|i| poisson(lambda, uniform(3, 0, i, Stream::Conversions, 0)) as f64).sum::<f64>()
                / n as f64;
            assert!((mean - lambda).abs() < 0.05 * lambda + 0.02, "{lambda}: {mean}");
        }
        for i in 0..1_000 {
            let u = uniform(5, 0, i, Stream::Conversions, 0);
            assert!(poisson(2.0, u) <= poisson(2.5, u));
            assert!(poisson(39.0, u) <= poisson(45.0, u) + 1);
        }
        assert!((normal_quantile(0.975) - 1.959_964).abs() < 1e-5);
    }
}
