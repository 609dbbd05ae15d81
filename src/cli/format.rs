//! CLI output for people: aligned tables, key/value blocks, horizontal bar
//! charts, money, times and enum labels. Pure functions, except `emit`.
use std::io::Write;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::domain::money::format_minor;

/// Writes `text` to stdout. A closed pipe (`| head`) is not an error worth
/// reporting, so write failures are dropped; returns whether the write worked.
pub(super) fn emit(text: &str) -> bool {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).is_ok()
}

/// A table with a header row; columns are padded to their widest cell.
pub(super) struct Table {
    headers: Vec<String>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers, every column left-aligned.
    pub(super) fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            right: vec![false; headers.len()],
            rows: Vec::new(),
        }
    }

    /// Right-aligns the columns at these positions (numbers, money).
    pub(super) fn right(mut self, columns: &[usize]) -> Self {
        for &c in columns {
            if let Some(flag) = self.right.get_mut(c) {
                *flag = true;
            }
        }
        self
    }

    /// Adds a row; missing cells are blank, extra cells are dropped.
    pub(super) fn row(&mut self, mut cells: Vec<String>) {
        cells.resize(self.headers.len(), String::new());
        self.rows.push(cells);
    }

    /// The table as text, one line per row, without trailing spaces.
    pub(super) fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(cell));
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = " ".repeat(widths[i] - width(cell));
                if self.right[i] {
                    line.push_str(&pad);
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.push_str(&pad);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `label  value` lines with the labels padded to the longest one.
pub(super) fn key_values(pairs: &[(&str, String)]) -> String {
    let label_width = pairs.iter().map(|(k, _)| width(k)).max().unwrap_or(0);
    let mut out = String::new();
    for (key, value) in pairs {
        let line = format!("{key}{}  {value}", " ".repeat(label_width - width(key)));
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// One row of a bar chart.
pub(super) struct ChartRow {
    /// Text before the bar (e.g. the hour "07").
    pub(super) label: String,
    /// Length of the bar, relative to the other rows; negative or non-finite
    /// values draw no bar.
    pub(super) value: f64,
    /// Text after the bar (e.g. "peak", a budget).
    pub(super) note: String,
}

/// Draws `rows` as a horizontal bar chart: `label  value  bar  note`, the
/// largest value filling `width` cells, with eighth-block resolution.
pub(super) fn bar_chart(rows: &[ChartRow], width_cells: usize) -> String {
    let max = rows.iter().map(|r| r.value).filter(|v| v.is_finite()).fold(0.0_f64, f64::max);
    let label_width = rows.iter().map(|r| width(&r.label)).max().unwrap_or(0);
    let values: Vec<String> = rows.iter().map(|r| format!("{:.2}", r.value)).collect();
    let value_width = values.iter().map(|v| width(v)).max().unwrap_or(0);
    let mut out = String::new();
    for (row, value) in rows.iter().zip(&values) {
        let bar = bar(row.value, max, width_cells);
        let line = format!(
            "{}{}  {}{}  {}{}  {}",
            row.label,
            " ".repeat(label_width - width(&row.label)),
            " ".repeat(value_width - width(value)),
            value,
            bar,
            " ".repeat(width_cells - width(&bar)),
            row.note
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A bar of `value / max * width` cells, rounded to eighths of a cell.
fn bar(value: f64, max: f64, width_cells: usize) -> String {
    const PARTIAL: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
    if !(value.is_finite() && value > 0.0 && max > 0.0) {
        return String::new();
    }
    let eighths = ((value / max).min(1.0) * width_cells as f64 * 8.0).round() as usize;
    let mut out = "█".repeat(eighths / 8);
    if !eighths.is_multiple_of(8) {
        out.push(PARTIAL[eighths % 8]);
    }
    out
}

/// Display width of `s`, counted in characters (good enough for the names
/// and symbols these tables hold).
fn width(s: &str) -> usize {
    s.chars().count()
}

/// `s` cut to `max` characters, with an ellipsis when it was longer.
pub(super) fn truncate(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// An amount for people; the bare number when the currency is unknown.
pub(super) fn money(amount_minor: i64, currency: &str) -> String {
    if currency.is_empty() { amount_minor.to_string() } else { format_minor(amount_minor, currency) }
}

/// A signed amount: `+$12.00`, `-$3.50`, `$0.00`.
pub(super) fn money_change(amount_minor: i64, currency: &str) -> String {
    let text = money(amount_minor, currency);
    if amount_minor > 0 { format!("+{text}") } else { text }
}

/// A protobuf timestamp as a UTC date-time, if it is one.
pub(super) fn datetime(ts: Option<&prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    let ts = ts?;
    DateTime::from_timestamp(ts.seconds, u32::try_from(ts.nanos).ok()?)
}

/// RFC 3339 to the second (`2026-12-01T10:00:00Z`), or "-" when unset.
pub(super) fn time(ts: Option<&prost_types::Timestamp>) -> String {
    datetime(ts).map_or_else(|| "-".to_owned(), |t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// A proto enum value name without its type prefix, lower-case:
/// `ACTION_TYPE_SCALE_UP` with prefix `ACTION_TYPE_` gives `scale_up`.
pub(super) fn label(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix).unwrap_or(name).to_ascii_lowercase()
}

/// Short label of an `ActionType` value.
pub(super) fn action_type(value: i32) -> String {
    crate::pb::ActionType::try_from(value)
        .map_or_else(|_| value.to_string(), |t| label(t.as_str_name(), "ACTION_TYPE_"))
}

/// Short label of an `ActionStatus` value.
pub(super) fn action_status(value: i32) -> String {
    crate::pb::ActionStatus::try_from(value)
        .map_or_else(|_| value.to_string(), |s| label(s.as_str_name(), "ACTION_STATUS_"))
}

/// Hours of the day as `18, 19, 20`, or "-".
pub(super) fn hours(list: &[i32]) -> String {
    if list.is_empty() {
        return "-".to_owned();
    }
    list.iter().map(|h| format!("{h:02}")).collect::<Vec<_>>().join(", ")
}

/// A value, or "-" when unset.
pub(super) fn opt<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// A ratio with at least one decimal (`4.0`, `1.25`), or "-" when unset.
pub(super) fn opt_ratio(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_chart_scales_to_the_largest_value() {
        let rows = [
            ChartRow { label: "00".into(), value: 0.5, note: "valley".into() },
            ChartRow { label: "01".into(), value: 2.0, note: "peak".into() },
            ChartRow { label: "02".into(), value: 1.0, note: String::new() },
            ChartRow { label: "03".into(), value: 0.0, note: String::new() },
            ChartRow { label: "04".into(), value: f64::NAN, note: String::new() },
            ChartRow { label: "05".into(), value: 0.1, note: String::new() },
        ];
        let chart = bar_chart(&rows, 8);
        let lines: Vec<&str> = chart.lines().collect();
        assert_eq!(lines[0], "00  0.50  ██        valley");
        assert_eq!(lines[1], "01  2.00  ████████  peak");
        assert_eq!(lines[2], "02  1.00  ████");
        assert_eq!(lines[3], "03  0.00");
        assert_eq!(lines[4], "04   NaN");
        // 0.1 / 2.0 * 8 cells = 0.4 cells = 3 eighths.
        assert_eq!(lines[5], "05  0.10  ▍");
    }

    #[test]
    fn bar_chart_of_nothing_is_empty() {
        assert_eq!(bar_chart(&[], 10), "");
        let flat = [ChartRow { label: "00".into(), value: 0.0, note: String::new() }];
        assert_eq!(bar_chart(&flat, 10), "00  0.00\n");
    }

    #[test]
    fn tables_align_columns() {
        let mut table = Table::new(&["ID", "NAME", "BUDGET"]).right(&[0, 2]);
        table.row(vec!["7".into(), "Spring sale".into(), "$1,000.00".into()]);
        table.row(vec!["12".into(), "Ü".into()]);
        assert_eq!(table.render(), "ID  NAME            BUDGET\n 7  Spring sale  $1,000.00\n12  Ü\n");
    }

    #[test]
    fn labels_and_money() {
        assert_eq!(action_type(crate::pb::ActionType::ScaleUpAggressive as i32), "scale_up_aggressive");
        assert_eq!(action_status(99), "99");
        assert_eq!(money_change(1_250, "USD"), "+$12.50");
        assert_eq!(money(5, ""), "5");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(hours(&[7, 18]), "07, 18");
        assert_eq!(time(Some(&prost_types::Timestamp { seconds: 0, nanos: 0 })), "1970-01-01T00:00:00Z");
    }
}
