//! Domain: hourly figures from the cycle's cumulative "today" readings.
//!
//! A local day's hours are its instants from local midnight to the next, one
//! hour apart (23 or 25 of them when daylight saving shifts). Hour `h` is
//! measured between the reading that closed the previous hour (the first one
//! taken in `[start_h, end_h)`; the day's start, with zeros, for the first
//! hour) and the first reading taken in `[end_h, end_h + 1 h)`.
//! - Missing hours (a missed cycle): when either reading is absent the hour is
//!   skipped, not spread: spreading a multi-hour sum evenly would invent a
//!   flat stretch in the very pattern being learned. The next hour whose two
//!   readings exist is measured as usual.
//! - Revisions (a cumulative figure that goes down): each figure is
//!   accumulated as its running maximum, so increments are never negative and
//!   the day's hours sum to the highest cumulative figure seen; the hours
//!   whose interval saw a drop are flagged as revised.
//! - The day's last hour is closed only by a reading taken after midnight,
//!   which belongs to the next day: it comes from Meta's hourly breakdown.
use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// Integer figures of an hour (or cumulative since local midnight).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HourFigures {
    /// Spend, minor units.
    pub spend_minor: i64,
    /// Revenue, minor units.
    pub revenue_minor: i64,
    /// Purchases.
    pub conversions: i64,
    /// Impressions.
    pub impressions: i64,
    /// Clicks.
    pub clicks: i64,
}

impl HourFigures {
    fn array(&self) -> [i64; 5] {
        [self.spend_minor, self.revenue_minor, self.conversions, self.impressions, self.clicks]
    }

    fn from_array(a: [i64; 5]) -> Self {
        Self { spend_minor: a[0], revenue_minor: a[1], conversions: a[2], impressions: a[3], clicks: a[4] }
    }
}

/// A cumulative reading of one local day, taken at `taken_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// When it was read.
    pub taken_at: DateTime<Utc>,
    /// Figures since local midnight.
    pub cumulative: HourFigures,
}

/// One measured local hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourIncrement {
    /// When the hour starts (UTC).
    pub hour_start: DateTime<Utc>,
    /// The account-local date.
    pub local_date: NaiveDate,
    /// The local hour of day, 0-23.
    pub hour: u32,
    /// Its figures.
    pub figures: HourFigures,
    /// Whether a cumulative figure went down during it.
    pub revised: bool,
}

/// What a day's readings gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayIncrements {
    /// Measured hours, in order.
    pub hours: Vec<HourIncrement>,
    /// Hours that ended by the last reading but could not be measured.
    pub skipped: usize,
    /// Measured hours flagged as revised.
    pub revisions: usize,
}

/// The instant a local day starts: midnight, or the first hour after a gap.
fn day_start(tz: Tz, date: NaiveDate) -> Option<DateTime<Utc>> {
    (0..3).find_map(|h| {
        let local = date.and_hms_opt(h, 0, 0)?;
        tz.from_local_datetime(&local).earliest().map(|t| t.with_timezone(&Utc))
    })
}

/// The start instants of the local hours of `date` in `tz`: 24, or 23 / 25
/// on the days daylight saving starts / ends.
pub fn day_hours(tz: Tz, date: NaiveDate) -> Vec<DateTime<Utc>> {
    let (Some(start), Some(next)) = (day_start(tz, date), date.succ_opt().and_then(|d| day_start(tz, d))) else {
        return Vec::new();
    };
    let mut hours = Vec::with_capacity(25);
    let mut at = start;
    while at < next {
        hours.push(at);
        at += TimeDelta::hours(1);
    }
    hours
}

/// Measures the hours of `date` from its cumulative readings (any order).
pub fn increments(tz: Tz, date: NaiveDate, readings: &[Reading]) -> DayIncrements {
    let hours = day_hours(tz, date);
    let mut out = DayIncrements::default();
    let Some(&first) = hours.first() else { return out };
    let mut sorted: Vec<Reading> = readings.iter().copied().filter(|r| r.taken_at >= first).collect();
    sorted.sort_by_key(|r| r.taken_at);
    let Some(last_taken) = sorted.last().map(|r| r.taken_at) else { return out };

    // Running maxima and drop flags after each reading (index 0: day start).
    let mut maxima = vec![[0_i64; 5]];
    let mut dropped = vec![false];
    for r in &sorted {
        let prev = maxima[maxima.len() - 1];
        let now = r.cumulative.array();
        dropped.push(now.iter().zip(prev).any(|(n, p)| *n < p));
        maxima.push(std::array::from_fn(|i| prev[i].max(now[i])));
    }
    // Index (into `maxima`) of the first reading in [from, to), if any.
    let first_in = |from: DateTime<Utc>, to: DateTime<Utc>| {
        let i = sorted.partition_point(|r| r.taken_at < from);
        (i < sorted.len() && sorted[i].taken_at < to).then_some(i + 1)
    };
    let hour = TimeDelta::hours(1);
    for (k, &start) in hours.iter().enumerate() {
        let end = start + hour;
        if end > last_taken {
            break;
        }
        let open = if k == 0 { Some(0) } else { first_in(start, end) };
        let close = first_in(end, end + hour);
        let (Some(open), Some(close)) = (open, close) else {
            out.skipped += 1;
            continue;
        };
        let (a, b) = (maxima[open], maxima[close]);
        let revised = dropped[open + 1..=close].iter().any(|d| *d);
        out.revisions += usize::from(revised);
        out.hours.push(HourIncrement {
            hour_start: start,
            local_date: date,
            hour: start.with_timezone(&tz).hour(),
            figures: HourFigures::from_array(std::array::from_fn(|i| b[i] - a[i])),
            revised,
        });
    }
    out
}
