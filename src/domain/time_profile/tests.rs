//! Unit tests and properties of the hour-of-day statistics and schedule math.
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use proptest::prelude::*;

use super::*;

/// A tiny deterministic generator for synthetic campaigns.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly normal, mean 0, sd 1.
    fn normal(&mut self) -> f64 {
        (0..12).map(|_| self.unit()).sum::<f64>() - 6.0
    }
}

/// Cells of `days` days whose hourly ratio is `effect(weekday, hour)` times
/// 3, with multiplicative noise `noise` and a pacing-shaped spend.
fn synthetic(days: i64, noise: f64, seed: u64, effect: impl Fn(u32, u32) -> f64) -> Vec<CellSums> {
    let mut rng = Rng(seed);
    let mut cells = vec![CellSums::default(); HOURS * WEEKDAYS];
    for day in 0..days {
        let weekday = ((day + 4) % 7) as u32; // 1970-01-01 was a Thursday
        for hour in 0..HOURS as u32 {
            let spend = 1_000.0 * (0.3 + (f64::from(hour) / 23.0)) * (1.0 + 0.1 * rng.normal()).max(0.1);
            let ratio = 3.0 * effect(weekday, hour) * (1.0 + noise * rng.normal()).max(0.0);
            let value = spend * ratio;
            let c = &mut cells[weekday as usize * HOURS + hour as usize];
            let even = day % 2 == 0;
            c.add(&CellSums {
                samples: 1,
                spend,
                value,
                spend_sq: spend * spend,
                value_sq: value * value,
                value_spend: value * spend,
                even_samples: i64::from(even),
                even_spend: if even { spend } else { 0.0 },
                even_value: if even { value } else { 0.0 },
            });
        }
    }
    cells
}

fn peak_at(peak: u32, strength: f64) -> impl Fn(u32, u32) -> f64 {
    move |_, hour| 1.0 + strength * ((f64::from(hour) - f64::from(peak)) * std::f64::consts::TAU / 24.0).cos()
}

fn argmax(values: &[f64]) -> usize {
    values.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i)
}

/// Hours between two hours of day, around the clock.
fn hours_apart(a: usize, b: usize) -> usize {
    let d = a.abs_diff(b);
    d.min(24 - d)
}

#[test]
fn a_clear_pattern_is_recovered_with_high_confidence() {
    let profile = learn(Metric::Roas, &synthetic(28, 0.2, 1, peak_at(18, 0.6)));
    assert!(hours_apart(argmax(&profile.hourly_index), 18) <= 1, "{:?}", profile.hourly_index);
    assert!(profile.peak_hours.contains(&18), "{:?}", profile.peak_hours);
    assert!(profile.valley_hours.contains(&6), "{:?}", profile.valley_hours);
    assert!(profile.confidence > 0.7, "{profile:?}");
    assert_eq!(profile.samples, 28 * 24);
    assert_eq!(profile.hourly_samples, vec![28; 24]);
}

#[test]
fn a_flat_campaign_gets_no_confident_peaks() {
    for seed in 1..20 {
        let profile = learn(Metric::Roas, &synthetic(28, 0.4, seed, |_, _| 1.0));
        assert!(profile.confidence < 0.3, "seed {seed}: {profile:?}");
        assert!(profile.peak_hours.is_empty() || profile.confidence < 0.15, "seed {seed}: {profile:?}");
        assert!(profile.hourly_index.iter().all(|x| (x - 1.0).abs() < 0.2), "seed {seed}: {:?}", profile.hourly_index);
    }
}

#[test]
fn one_day_of_data_teaches_nothing() {
    let profile = learn(Metric::Roas, &synthetic(1, 0.1, 3, peak_at(12, 0.8)));
    assert_eq!(profile.confidence, 0.0);
    assert_eq!(profile.hourly_index, vec![1.0; 24]);
}

#[test]
fn more_days_give_more_confidence() {
    let few = learn(Metric::Roas, &synthetic(4, 0.3, 5, peak_at(10, 0.5)));
    let many = learn(Metric::Roas, &synthetic(28, 0.3, 5, peak_at(10, 0.5)));
    assert!(many.confidence > few.confidence, "{} vs {}", many.confidence, few.confidence);
}

#[test]
fn a_sparse_hour_is_shrunk_toward_the_average() {
    let mut cells = synthetic(28, 0.2, 9, |_, _| 1.0);
    // One extra row at 03:00 with a tiny spend and a wild ratio.
    let wild = CellSums {
        samples: 1,
        spend: 10.0,
        value: 400.0,
        spend_sq: 100.0,
        value_sq: 160_000.0,
        value_spend: 4_000.0,
        ..CellSums::default()
    };
    let mut sparse = vec![CellSums::default(); HOURS * WEEKDAYS];
    for (i, c) in cells.iter_mut().enumerate() {
        if i % HOURS == 3 {
            *c = CellSums::default();
        }
    }
    sparse[3] = wild;
    cells[3].add(&sparse[3]);
    let profile = learn(Metric::Roas, &cells);
    assert!(profile.hourly_index[3] < 1.5, "raw 13x became {}", profile.hourly_index[3]);
    assert_eq!(profile.hourly_samples[3], 1);
}

#[test]
fn day_of_week_patterns_are_kept_and_shrunk_toward_the_hour_profile() {
    // Weekends peak at 11, weekdays at 19.
    let effect = |weekday: u32, hour: u32| {
        let peak = if weekday == 0 || weekday == 6 { 11.0 } else { 19.0 };
        1.0 + 0.6 * ((f64::from(hour) - peak) * std::f64::consts::TAU / 24.0).cos()
    };
    let profile = learn(Metric::Roas, &synthetic(112, 0.15, 11, effect));
    let row = |d: usize| &profile.day_of_week_index[d * HOURS..(d + 1) * HOURS];
    let mean = |d: usize, hours: std::ops::Range<usize>| row(d)[hours.clone()].iter().sum::<f64>() / hours.len() as f64;
    for (weekday, peak) in [(0, 11), (6, 11), (3, 19)] {
        assert!(hours_apart(argmax(row(weekday)), peak) <= 2, "day {weekday}: {:?}", row(weekday));
        assert_eq!(mean(weekday, 9..14) > mean(weekday, 17..22), peak == 11, "day {weekday}: {:?}", row(weekday));
    }
    assert_eq!(profile.day_of_week_index.len(), 168);
}

#[test]
fn a_flat_week_keeps_the_hour_profile_in_every_weekday() {
    let profile = learn(Metric::Roas, &synthetic(28, 0.3, 13, peak_at(15, 0.5)));
    for d in 0..WEEKDAYS {
        let row = &profile.day_of_week_index[d * HOURS..(d + 1) * HOURS];
        for (h, (v, hourly)) in row.iter().zip(&profile.hourly_index).enumerate() {
            assert!((v - hourly).abs() < 0.25, "day {d} hour {h}: {v} vs {hourly}");
        }
    }
}

#[test]
fn no_value_or_no_spend_gives_a_flat_profile() {
    assert_eq!(learn(Metric::ClicksPerSpend, &[]).confidence, 0.0);
    let cells = synthetic(10, 0.1, 1, |_, _| 0.0);
    let profile = learn(Metric::ClicksPerSpend, &cells);
    assert_eq!(profile.hourly_index, vec![1.0; 24]);
    assert_eq!(profile.metric.as_str(), "clicks_per_spend");
}

#[test]
fn schedules_sum_exactly_on_awkward_budgets() {
    let index: Vec<f64> =
        (0..24).map(|h| 1.0 + 0.7 * ((h as f64 - 18.0) * std::f64::consts::TAU / 24.0).cos()).collect();
    for daily in [1, 7, 23, 24, 25, 1_001, 99_999, 24_000, 1_000_000_000_007] {
        let s = budget_schedule(daily, &index, 0.9, &ScheduleBounds::default());
        assert_eq!(s.len(), 24);
        assert_eq!(s.iter().map(|h| h.budget_minor).sum::<i64>(), daily, "daily {daily}");
    }
    let s = budget_schedule(1_001, &index, 0.9, &ScheduleBounds::default());
    assert!(s[18].budget_minor > s[6].budget_minor);
}

#[test]
fn schedules_stay_within_the_bounds() {
    let spiky: Vec<f64> = (0..24)
        .map(|h| {
            if h == 12 {
                20.0
            } else if h < 6 {
                0.0
            } else {
                1.0
            }
        })
        .collect();
    let bounds = ScheduleBounds { min_multiplier: 0.6, max_multiplier: 1.5, ..ScheduleBounds::default() };
    let s = budget_schedule(2_400_000, &spiky, 1.0, &bounds);
    for h in &s {
        assert!((0.6 - 1e-4..=1.5 + 1e-4).contains(&h.multiplier), "{h:?}");
    }
    assert!((s[12].multiplier - 1.5).abs() < 1e-4);
    assert!(s[0].multiplier < s[6].multiplier);
}

#[test]
fn low_confidence_gives_a_flat_schedule_and_the_middle_blends() {
    let index: Vec<f64> = (0..24).map(|h| if (9..12).contains(&h) { 1.8 } else { 0.9 }).collect();
    let bounds = ScheduleBounds::default();
    let flat = budget_schedule(2_400, &index, 0.1, &bounds);
    assert!(flat.iter().all(|h| h.budget_minor == 100), "{flat:?}");
    let half = budget_schedule(2_400, &index, 0.5, &bounds);
    let full = budget_schedule(2_400, &index, 0.9, &bounds);
    assert!(half[10].budget_minor > 100 && half[10].budget_minor < full[10].budget_minor, "{half:?} {full:?}");
    assert!((blend_weight(0.5, &bounds) - 0.5).abs() < 1e-12);
}

#[test]
fn bounds_are_validated() {
    assert!(ScheduleBounds::default().validate().is_ok());
    let bad = |f: fn(&mut ScheduleBounds)| {
        let mut b = ScheduleBounds::default();
        f(&mut b);
        b.validate().err().map(|e| e.0)
    };
    assert_eq!(bad(|b| b.min_multiplier = 0.0), Some("min_multiplier"));
    assert_eq!(bad(|b| b.max_multiplier = 9.0), Some("max_multiplier"));
    assert_eq!(bad(|b| b.min_confidence = 1.5), Some("min_confidence"));
    assert_eq!(bad(|b| b.full_confidence = 0.1), Some("full_confidence"));
}

#[test]
fn peak_windows_last_three_hours_and_merge() {
    let mut m = [1.0; 24];
    m[10] = 1.6; // a lone peak hour widens to 3 toward its stronger side
    m[11] = 1.2;
    m[18] = 1.5;
    m[19] = 1.5;
    m[20] = 1.4;
    m[21] = 1.3;
    let w = peak_windows(&m, 1.1, 3, 50);
    assert_eq!(w.len(), 2, "{w:?}");
    assert_eq!((w[0].start_hour, w[0].end_hour), (10, 13));
    assert_eq!((w[1].start_hour, w[1].end_hour), (18, 22));
    assert!((w[1].multiplier - 1.425).abs() < 1e-9);
    assert_eq!(peak_windows(&m, 1.1, 3, 1).len(), 1);
    assert!(peak_windows(&[1.0; 24], 1.1, 3, 50).is_empty());
    let mut late = [1.0; 24];
    late[23] = 2.0;
    assert_eq!(peak_windows(&late, 1.1, 3, 50)[0].start_hour, 21);
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).unwrap_or_default()
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
}

/// Hourly readings 30 s after each hour of `day` whose hour `h` adds
/// `per_hour(h)` spend (and 3x revenue).
fn readings(tz: chrono_tz::Tz, day: NaiveDate, per_hour: impl Fn(u32) -> i64) -> Vec<Reading> {
    let mut cumulative = HourFigures::default();
    let mut out = Vec::new();
    for start in day_hours(tz, day) {
        let hour = chrono::Timelike::hour(&start.with_timezone(&tz));
        cumulative.spend_minor += per_hour(hour);
        cumulative.revenue_minor += 3 * per_hour(hour);
        cumulative.clicks += 1;
        out.push(Reading { taken_at: start + TimeDelta::seconds(3_630), cumulative });
    }
    out
}

#[test]
fn increments_follow_local_hours() {
    let tz = chrono_tz::Asia::Tokyo;
    let r = readings(tz, date("2026-06-01"), |h| 100 + i64::from(h));
    // The last reading belongs to the next day's first hour: hour 23 is not closed.
    let got = increments(tz, date("2026-06-01"), &r[..23]);
    assert_eq!(got.hours.len(), 23);
    assert_eq!(got.hours[0].hour_start, at("2026-05-31T15:00:00Z"));
    assert_eq!(got.hours[0].hour, 0);
    assert!(got.hours.iter().all(|h| h.figures.spend_minor == 100 + i64::from(h.hour)));
    assert_eq!(got.hours[5].figures.revenue_minor, 315);
    assert_eq!(got.skipped, 0);
}

#[test]
fn daylight_saving_days_have_23_and_25_hours() {
    let tz = chrono_tz::America::New_York;
    assert_eq!(day_hours(tz, date("2026-03-08")).len(), 23);
    assert_eq!(day_hours(tz, date("2026-11-01")).len(), 25);
    let spring = increments(tz, date("2026-03-08"), &readings(tz, date("2026-03-08"), |h| i64::from(h) * 10));
    let labels: Vec<u32> = spring.hours.iter().map(|h| h.hour).collect();
    assert!(!labels.contains(&2), "{labels:?}");
    assert_eq!(labels.len(), 23); // the helper also reads just after midnight
    let autumn = increments(tz, date("2026-11-01"), &readings(tz, date("2026-11-01"), |h| i64::from(h) * 10));
    let ones: Vec<&HourIncrement> = autumn.hours.iter().filter(|h| h.hour == 1).collect();
    assert_eq!(ones.len(), 2);
    assert_eq!(ones[1].hour_start - ones[0].hour_start, TimeDelta::hours(1));
    assert_eq!(autumn.hours.len(), 25);
}

#[test]
fn missing_hours_are_skipped_not_spread() {
    let tz = chrono_tz::UTC;
    let mut r = readings(tz, date("2026-06-01"), |_| 100);
    r.retain(|x| !(x.taken_at > at("2026-06-01T05:00:00Z") && x.taken_at < at("2026-06-01T08:00:00Z")));
    let got = increments(tz, date("2026-06-01"), &r);
    let labels: Vec<u32> = got.hours.iter().map(|h| h.hour).collect();
    // The readings closing hours 4, 5 and 6 are gone: those hours have no end,
    // and hour 7 no start.
    assert!((4..=7).all(|h| !labels.contains(&h)), "{labels:?}");
    assert!(labels.contains(&3) && labels.contains(&8));
    assert_eq!(got.skipped, 4);
    assert!(got.hours.iter().all(|h| h.figures.spend_minor == 100));
}

#[test]
fn extra_readings_within_an_hour_change_nothing() {
    let tz = chrono_tz::UTC;
    let mut r = readings(tz, date("2026-06-01"), |_| 100);
    let mut extra = r[4];
    extra.taken_at += TimeDelta::minutes(20);
    r.push(extra);
    let got = increments(tz, date("2026-06-01"), &r);
    assert!(got.hours.iter().all(|h| h.figures.spend_minor == 100));
}

#[test]
fn revised_figures_are_clamped_and_flagged() {
    let tz = chrono_tz::UTC;
    let mut r = readings(tz, date("2026-06-01"), |_| 100);
    // The reading after hour 3 reports spend 250 instead of 400 (revised down).
    r[3].cumulative.spend_minor = 250;
    let got = increments(tz, date("2026-06-01"), &r);
    let by_hour = |h: u32| got.hours.iter().find(|x| x.hour == h).copied();
    assert_eq!(by_hour(3).map(|h| (h.figures.spend_minor, h.revised)), Some((0, true)));
    assert_eq!(by_hour(4).map(|h| (h.figures.spend_minor, h.revised)), Some((200, false)));
    assert!(got.hours.iter().all(|h| h.figures.spend_minor >= 0));
    assert_eq!(got.revisions, 1);
    let total: i64 = got.hours.iter().map(|h| h.figures.spend_minor).sum();
    // The hours add up to the highest cumulative figure seen.
    assert_eq!(total, 2_400);
}

#[test]
fn epoch_days_and_weekdays() {
    assert_eq!(epoch_day(date("1970-01-02")), 1);
    assert_eq!(weekday(date("2026-11-29")), 0); // a Sunday
    assert_eq!(weekday(date("2026-11-28")), 6);
}

proptest! {
    #[test]
    fn allocation_is_exact_and_never_negative(daily in 0_i64..1_000_000_000_000, weights in proptest::collection::vec(0.0_f64..10.0, 24)) {
        let mut m = [0.0; 24];
        m.copy_from_slice(&weights);
        let shares = allocate(daily, &m);
        prop_assert_eq!(shares.iter().sum::<i64>(), daily);
        prop_assert!(shares.iter().all(|s| *s >= 0));
    }

    #[test]
    fn multipliers_average_one_within_bounds(
        index in proptest::collection::vec(0.0_f64..20.0, 24),
        confidence in 0.0_f64..1.0,
        lo in 0.1_f64..1.0,
        hi in 1.0_f64..8.0,
    ) {
        let bounds = ScheduleBounds { min_multiplier: lo, max_multiplier: hi, ..ScheduleBounds::default() };
        let m = multipliers(&index, confidence, &bounds);
        prop_assert!((m.iter().sum::<f64>() - 24.0).abs() < 1e-6);
        prop_assert!(m.iter().all(|x| *x >= lo - 1e-9 && *x <= hi + 1e-9));
        if confidence < bounds.min_confidence {
            prop_assert!(m.iter().all(|x| (x - 1.0).abs() < 1e-9));
        }
    }

    #[test]
    fn schedules_sum_to_the_daily_budget(daily in 0_i64..10_000_000, peak in 0_u32..24, confidence in 0.0_f64..1.0) {
        let index: Vec<f64> = (0..24).map(|h| if h == peak { 3.0 } else { 0.9 }).collect();
        let s = budget_schedule(daily, &index, confidence, &ScheduleBounds::default());
        prop_assert_eq!(s.iter().map(|h| h.budget_minor).sum::<i64>(), daily);
    }

    #[test]
    fn learning_always_gives_a_sane_profile(days in 0_i64..20, noise in 0.0_f64..1.0, seed in 0_u64..1_000, peak in 0_u32..24, strength in 0.0_f64..0.9) {
        let p = learn(Metric::Roas, &synthetic(days, noise, seed, peak_at(peak, strength)));
        prop_assert!((0.0..=1.0).contains(&p.confidence));
        prop_assert!(p.hourly_index.iter().chain(&p.day_of_week_index).all(|x| x.is_finite() && *x >= 0.0));
        prop_assert_eq!(p.hourly_index.len(), 24);
        prop_assert_eq!(p.day_of_week_index.len(), 168);
        prop_assert!(p.peak_hours.iter().all(|h| !p.valley_hours.contains(h)));
    }

    #[test]
    fn increments_never_go_negative(cumulative in proptest::collection::vec(0_i64..10_000, 1..30)) {
        let tz = chrono_tz::UTC;
        let start = at("2026-06-01T00:00:00Z");
        let r: Vec<Reading> = cumulative
            .iter()
            .enumerate()
            .map(|(i, c)| Reading {
                taken_at: start + TimeDelta::minutes(30 + 60 * i as i64),
                cumulative: HourFigures { spend_minor: *c, ..HourFigures::default() },
            })
            .collect();
        let got = increments(tz, date("2026-06-01"), &r);
        prop_assert!(got.hours.iter().all(|h| h.figures.spend_minor >= 0));
        let max = cumulative.iter().copied().max().unwrap_or(0);
        prop_assert!(got.hours.iter().map(|h| h.figures.spend_minor).sum::<i64>() <= max);
    }
}
