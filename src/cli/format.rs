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

/// Least cells a wrapped text column (names, errors) is given.
const MIN_WRAP_WIDTH: usize = 12;

/// Least cells the note column needs to stay a column; on a narrower
/// terminal each note goes on the lines under its row instead.
const MIN_NOTE_COLUMN_WIDTH: usize = 30;

/// Cells between two columns.
const GAP: usize = 2;

/// A table with a header row, laid out by `comfy-table` to fit the terminal.
/// Numbers, ids and labels keep their width (never split); only the columns
/// marked `wrap` and the note (a reason) wrap, at word boundaries. On a
/// terminal too narrow for the note as a column, each note is printed in
/// full on the lines under its row.
pub(super) struct Table {
    headers: Vec<String>,
    right: Vec<bool>,
    wrap: Vec<bool>,
    rows: Vec<Vec<String>>,
    note_header: Option<String>,
    notes: Vec<String>,
}

impl Table {
    /// A table with these column headers, every column left-aligned.
    pub(super) fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            right: vec![false; headers.len()],
            wrap: vec![false; headers.len()],
            rows: Vec::new(),
            note_header: None,
            notes: Vec::new(),
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

    /// Lets the columns at these positions (free text) wrap to fit the width.
    pub(super) fn wrap(mut self, columns: &[usize]) -> Self {
        for &c in columns {
            if let Some(flag) = self.wrap.get_mut(c) {
                *flag = true;
            }
        }
        self
    }

    /// Adds a last column of long free text (a reason) under this header;
    /// set its cells with [`Table::row_with_note`].
    pub(super) fn note(mut self, header: &str) -> Self {
        self.note_header = Some(header.to_owned());
        self
    }

    /// Adds a row; missing cells are blank, extra cells are dropped.
    pub(super) fn row(&mut self, cells: Vec<String>) {
        self.row_with_note(cells, String::new());
    }

    /// Adds a row and its note.
    pub(super) fn row_with_note(&mut self, mut cells: Vec<String>, note: String) {
        cells.resize(self.headers.len(), String::new());
        self.rows.push(cells);
        self.notes.push(note);
    }

    /// The table for this terminal ([`terminal_width`]).
    pub(super) fn render(&self) -> String {
        self.render_width(terminal_width())
    }

    /// The table as text, without trailing spaces, fitted to `width` cells;
    /// `None` (not a terminal) puts every row on one line.
    pub(super) fn render_width(&self, width: Option<usize>) -> String {
        let Some(note_header) = &self.note_header else {
            return self.layout(width, None);
        };
        let fixed: usize = self.content_widths().iter().map(|w| w + GAP).sum();
        match width {
            Some(w) if fixed + MIN_NOTE_COLUMN_WIDTH > w => self.notes_under(w),
            _ => self.layout(width, Some(note_header)),
        }
    }

    /// Widest cell of each column, header included.
    fn content_widths(&self) -> Vec<usize> {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| display_width(h)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(display_width(cell));
            }
        }
        widths
    }

    /// One comfy-table: the columns, and the notes as a last column if given.
    fn layout(&self, width: Option<usize>, note_header: Option<&String>) -> String {
        let mut table = comfy_table::Table::new();
        table.load_style(comfy_table::presets::NOTHING);
        let mut header = self.headers.clone();
        header.extend(note_header.cloned());
        table.set_header(header);
        for (row, note) in self.rows.iter().zip(&self.notes) {
            let mut cells = row.clone();
            if note_header.is_some() {
                cells.push(note.clone());
            }
            table.add_row(cells);
        }
        if let Some(w) = width {
            table.set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
            table.set_width(u16::try_from(w).unwrap_or(u16::MAX));
        }
        let last = table.column_count().saturating_sub(1);
        for (i, column) in table.column_iter_mut().enumerate() {
            column.set_padding((0, if i == last { 0 } else { GAP as u16 }));
            let wraps = self.wrap.get(i).copied().unwrap_or(true);
            column.set_constraint(if wraps {
                comfy_table::ColumnConstraint::LowerBoundary(comfy_table::Width::Fixed(MIN_WRAP_WIDTH as u16))
            } else {
                comfy_table::ColumnConstraint::ContentWidth
            });
            if self.right.get(i).copied().unwrap_or(false) {
                column.set_cell_alignment(comfy_table::CellAlignment::Right);
            }
        }
        let mut out = String::new();
        for line in table.lines() {
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// Every column at its content width (one line per row) and each note
    /// wrapped on the lines under its row, indented past the first column.
    fn notes_under(&self, width: usize) -> String {
        let table = Self {
            headers: self.headers.clone(),
            right: self.right.clone(),
            wrap: vec![false; self.headers.len()],
            rows: self.rows.clone(),
            note_header: None,
            notes: self.notes.clone(),
        };
        let text = table.layout(None, None);
        let lines: Vec<&str> = text.lines().collect();
        let indent = self.content_widths().first().map_or(0, |w| w + GAP);
        let mut out = String::new();
        for (i, line) in lines.iter().enumerate() {
            out.push_str(line);
            out.push('\n');
            let note = i.checked_sub(1).and_then(|row| self.notes.get(row)).map_or("", String::as_str);
            for wrapped in wrap_words(note, width.saturating_sub(indent).max(MIN_WRAP_WIDTH)) {
                out.push_str(&" ".repeat(indent));
                out.push_str(&wrapped);
                out.push('\n');
            }
        }
        out
    }
}

/// Width of the terminal the output goes to: `COLUMNS` when set, else the
/// size of the terminal on stdout; `None` when stdout is not a terminal
/// (pipes and files get whole lines).
pub(super) fn terminal_width() -> Option<usize> {
    if let Some(columns) = std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse::<usize>().ok())
        && columns > 0
    {
        return Some(columns);
    }
    terminal_size::terminal_size_of(std::io::stdout()).map(|(w, _)| usize::from(w.0))
}

/// `text` broken into lines of at most `width` cells at spaces; a word longer
/// than a line (a URL) is split, a shorter one never.
pub(super) fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let needed = display_width(&line) + usize::from(!line.is_empty()) + display_width(word);
        if !line.is_empty() && needed > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        for c in word.chars() {
            if display_width(&line) + unicode_width::UnicodeWidthChar::width(c).unwrap_or(0) > width {
                lines.push(std::mem::take(&mut line));
            }
            line.push(c);
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// `text` cut after the last whole word that fits in `max` cells, with an
/// ellipsis, for one-line views (`watch`): a number is never cut in half.
/// Empty when not even the first word fits.
pub(super) fn cut(text: &str, max: usize) -> String {
    if display_width(text) <= max {
        return text.to_owned();
    }
    let mut out = String::new();
    for word in text.split_whitespace() {
        let needed = display_width(&out) + usize::from(!out.is_empty()) + display_width(word) + 1;
        if needed > max {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    if !out.is_empty() {
        out.push('…');
    }
    out
}

/// `label  value` lines with the labels padded to the longest one; a long
/// value wraps at spaces, its further lines aligned under its first.
pub(super) fn key_values(pairs: &[(&str, String)]) -> String {
    key_values_width(pairs, terminal_width())
}

/// [`key_values`] for a terminal `width` cells wide (`None`: no wrapping).
pub(super) fn key_values_width(pairs: &[(&str, String)], width: Option<usize>) -> String {
    let label_width = pairs.iter().map(|(k, _)| display_width(k)).max().unwrap_or(0);
    let indent = label_width + GAP;
    let mut out = String::new();
    for (key, value) in pairs {
        let lines = match width {
            Some(w) if indent + display_width(value) > w => {
                wrap_words(value, w.saturating_sub(indent).max(MIN_WRAP_WIDTH))
            }
            _ => vec![value.clone()],
        };
        let mut first = format!("{key}{}", " ".repeat(label_width - display_width(key)));
        if let Some(head) = lines.first() {
            first.push_str("  ");
            first.push_str(head);
        }
        out.push_str(first.trim_end());
        out.push('\n');
        for line in lines.iter().skip(1) {
            out.push_str(&" ".repeat(indent));
            out.push_str(line);
            out.push('\n');
        }
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
    let label_width = rows.iter().map(|r| display_width(&r.label)).max().unwrap_or(0);
    let values: Vec<String> = rows.iter().map(|r| format!("{:.2}", r.value)).collect();
    let value_width = values.iter().map(|v| display_width(v)).max().unwrap_or(0);
    let mut out = String::new();
    for (row, value) in rows.iter().zip(&values) {
        let bar = bar(row.value, max, width_cells);
        let line = format!(
            "{}{}  {}{}  {}{}  {}",
            row.label,
            " ".repeat(label_width - display_width(&row.label)),
            " ".repeat(value_width - display_width(value)),
            value,
            bar,
            " ".repeat(width_cells - display_width(&bar)),
            row.note
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A bar of `value / max * width` cells, rounded to eighths of a cell.
pub(super) fn bar(value: f64, max: f64, width_cells: usize) -> String {
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

/// Terminal cells `s` takes (wide CJK characters take two).
pub(super) fn display_width(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
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

/// An action type in a few letters, for tables: `up fast`, `up`, `down`,
/// `pause`, `maintain`, `no data`.
pub(super) fn decision_short(value: i32) -> String {
    use crate::pb::ActionType;
    match ActionType::try_from(value) {
        Ok(ActionType::ScaleUpAggressive) => "up fast".to_owned(),
        Ok(ActionType::ScaleUp) => "up".to_owned(),
        Ok(ActionType::ScaleDown) => "down".to_owned(),
        Ok(ActionType::InsufficientData) => "no data".to_owned(),
        _ => action_type(value),
    }
}

/// An action status for tables: `pending` for pending approval, else the label.
pub(super) fn status_short(value: i32) -> String {
    match crate::pb::ActionStatus::try_from(value) {
        Ok(crate::pb::ActionStatus::PendingApproval) => "pending".to_owned(),
        _ => action_status(value),
    }
}

/// A time as `12-03 16:26` (UTC), for tables whose header says UTC; "-" when unset.
pub(super) fn short_time(ts: Option<&prost_types::Timestamp>) -> String {
    datetime(ts).map_or_else(|| "-".to_owned(), |t| t.format("%m-%d %H:%M").to_string())
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
        assert_eq!(table.render_width(None), "ID  NAME            BUDGET\n 7  Spring sale  $1,000.00\n12  Ü\n");
    }

    /// A row with a long reason, for the layouts below.
    fn reason_table() -> Table {
        let mut table = Table::new(&["ID", "CAMPAIGN", "OLD"]).right(&[0, 2]).note("REASON");
        let reason = "Strong performance: ROAS 3.43x (>3.0x); held: last budget change 0h 1m ago, cooldown 8h";
        table.row_with_note(vec!["48".into(), "120000100000240".into(), "$1,139.00".into()], reason.into());
        table.row_with_note(vec!["7".into(), "120000100000250".into(), "$5.00".into()], "short".into());
        table
    }

    #[test]
    fn a_reason_wraps_in_its_column_when_there_is_room() {
        let text = reason_table().render_width(Some(72));
        assert_eq!(
            text,
            "ID  CAMPAIGN               OLD  REASON\n\
             48  120000100000240  $1,139.00  Strong performance: ROAS 3.43x (>3.0x);\n\
             \x20                               held: last budget change 0h 1m ago,\n\
             \x20                               cooldown 8h\n\
             \x207  120000100000250      $5.00  short\n"
        );
    }

    #[test]
    fn a_reason_goes_under_its_row_on_a_narrow_terminal() {
        let text = reason_table().render_width(Some(40));
        assert_eq!(
            text,
            "ID  CAMPAIGN               OLD\n\
             48  120000100000240  $1,139.00\n\
             \x20   Strong performance: ROAS 3.43x\n\
             \x20   (>3.0x); held: last budget change 0h\n\
             \x20   1m ago, cooldown 8h\n\
             \x207  120000100000250      $5.00\n\
             \x20   short\n"
        );
        assert!(text.lines().all(|l| display_width(l) <= 40), "{text}");
    }

    #[test]
    fn words_wrap_whole_unless_longer_than_a_line() {
        assert_eq!(wrap_words("ROAS 3.43x (>3.0x) held", 10), ["ROAS 3.43x", "(>3.0x)", "held"]);
        assert_eq!(wrap_words("https://example.test/x", 8), ["https://", "example.", "test/x"]);
        assert_eq!(wrap_words("日本語 ok", 6), ["日本語", "ok"]);
        assert!(wrap_words("", 10).is_empty());
        assert_eq!(
            key_values_width(&[("reason", "one two three".into())], Some(16)),
            "reason  one two\n        three\n"
        );
    }

    #[test]
    fn labels_and_money() {
        assert_eq!(action_type(crate::pb::ActionType::ScaleUpAggressive as i32), "scale_up_aggressive");
        assert_eq!(action_status(99), "99");
        assert_eq!(money_change(1_250, "USD"), "+$12.50");
        assert_eq!(money(5, ""), "5");
        assert_eq!(cut("ROAS 4.20 >= 4.00", 12), "ROAS 4.20…");
        assert_eq!(cut("ROAS 4.20 >= 4.00", 8), "ROAS…");
        assert_eq!(cut("abcdef", 4), "");
        assert_eq!(cut("abc", 4), "abc");
        assert_eq!(decision_short(crate::pb::ActionType::InsufficientData as i32), "no data");
        assert_eq!(status_short(crate::pb::ActionStatus::PendingApproval as i32), "pending");
        assert_eq!(hours(&[7, 18]), "07, 18");
        assert_eq!(time(Some(&prost_types::Timestamp { seconds: 0, nanos: 0 })), "1970-01-01T00:00:00Z");
    }
}
