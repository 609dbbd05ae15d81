//! Multi-row INSERT statements written as SQL text with one flat list of
//! bound values: recording a cycle's tens of thousands of rows builds no
//! query tree per row, and the statement text of a full chunk is the same
//! every time, so each connection prepares it once and reuses it.
use std::fmt::Write as _;

use sea_orm::{DbBackend, Statement, Value};

/// Bound values per statement: below SQLite's limit (32,766) and
/// PostgreSQL's (65,535) with room to spare.
const MAX_BOUND_VALUES: usize = 30_000;
/// Rows per statement at most, whatever the width.
const MAX_ROWS: usize = 1_000;

/// One table's multi-row INSERT.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MultiRowInsert {
    /// Table name.
    pub table: &'static str,
    /// Columns, in the order each row's values are pushed.
    pub columns: &'static [&'static str],
    /// `RETURNING` list, if the caller needs generated values back.
    pub returning: Option<&'static str>,
}

impl MultiRowInsert {
    /// Rows per statement.
    pub(crate) fn chunk_rows(&self) -> usize {
        (MAX_BOUND_VALUES / self.columns.len().max(1)).clamp(1, MAX_ROWS)
    }

    /// The statement inserting `values.len() / columns.len()` rows; `values`
    /// holds them row after row.
    pub(crate) fn statement(&self, backend: DbBackend, values: Vec<Value>) -> Statement {
        let width = self.columns.len();
        let rows = values.len() / width.max(1);
        debug_assert_eq!(rows * width, values.len(), "values must fill whole rows");
        let mut sql = String::with_capacity(64 + self.table.len() + rows * width * 6);
        let _ = write!(sql, "INSERT INTO {} ({}) VALUES ", self.table, self.columns.join(", "));
        let mut n = 0;
        for row in 0..rows {
            if row > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for column in 0..width {
                if column > 0 {
                    sql.push_str(", ");
                }
                n += 1;
                match backend {
                    DbBackend::Postgres => {
                        let _ = write!(sql, "${n}");
                    }
                    _ => sql.push('?'),
                }
            }
            sql.push(')');
        }
        if let Some(returning) = self.returning {
            let _ = write!(sql, " RETURNING {returning}");
        }
        Statement::from_sql_and_values(backend, sql, values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: MultiRowInsert = MultiRowInsert { table: "t", columns: &["a", "b"], returning: Some("id") };

    #[test]
    fn placeholders_follow_the_backend() {
        let values: Vec<Value> = vec![1_i64.into(), "x".into(), 2_i64.into(), "y".into()];
        let sqlite = TWO.statement(DbBackend::Sqlite, values.clone());
        assert_eq!(sqlite.sql, "INSERT INTO t (a, b) VALUES (?, ?), (?, ?) RETURNING id");
        let postgres = TWO.statement(DbBackend::Postgres, values);
        assert_eq!(postgres.sql, "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) RETURNING id");
        assert_eq!(postgres.values.map(|v| v.0.len()), Some(4));
    }

    #[test]
    fn chunks_stay_under_the_bound_value_limit() {
        let wide = MultiRowInsert { table: "t", columns: &["c"; 40], returning: None };
        assert_eq!(wide.chunk_rows(), 750);
        assert!(wide.chunk_rows() * 40 <= MAX_BOUND_VALUES);
        assert_eq!(TWO.chunk_rows(), MAX_ROWS);
    }
}
