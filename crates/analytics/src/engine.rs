//! The analytics engine trait and its result type.

use std::fmt;

use async_trait::async_trait;
use cloudpf_model::TenantId;
use serde::Serialize;

use crate::report::ReportRequest;

/// A report's result: column names and rows of values rendered as text (money as exact
/// decimal text, dates as `YYYY-MM-DD`), `None` for SQL NULL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReportTable {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

impl ReportTable {
    /// The table as CSV, header first, NULL as an empty cell; text that a spreadsheet
    /// would run as a formula is neutralised (see [`spreadsheet_safe`]).
    pub fn write_csv<W: std::io::Write>(&self, out: W) -> Result<W, csv::Error> {
        let mut w = csv::Writer::from_writer(out);
        w.write_record(
            self.columns
                .iter()
                .map(|c| spreadsheet_safe(c).into_owned()),
        )?;
        for row in &self.rows {
            w.write_record(
                row.iter()
                    .map(|v| spreadsheet_safe(v.as_deref().unwrap_or("")).into_owned()),
            )?;
        }
        w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
    }

    /// The value of `column` in row `row`.
    pub fn get(&self, row: usize, column: &str) -> Option<&str> {
        let c = self.columns.iter().position(|name| name == column)?;
        self.rows.get(row)?.get(c)?.as_deref()
    }
}

/// A cell a spreadsheet will not execute: text starting with `=`, `+`, `-`, `@`, a tab
/// or a carriage return gets a leading `'` (OWASP's advice against CSV injection; issue
/// #10: a product named `=HYPERLINK(…)` ran in the shop owner's spreadsheet). Numbers
/// such as `-12.50` stay numbers.
pub fn spreadsheet_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    let risky = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && !is_number(cell) {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

fn is_number(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    /// The engine could not run the query now; retrying may succeed.
    #[error("analytics unavailable: {0}")]
    Unavailable(String),
    /// The query failed for a reason retrying will not fix.
    #[error("report failed: {0}")]
    Failed(String),
    /// A lake object the query had listed was removed (compacted) while it read it; the
    /// same query listing the lake again sees the compacted object instead.
    #[error("a lake object was removed while the query read it: {0}")]
    Vanished(String),
}

impl AnalyticsError {
    /// Whether running the same report again may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            AnalyticsError::Unavailable(_) | AnalyticsError::Vanished(_) => true,
            AnalyticsError::Failed(_) => false,
        }
    }
}

/// One analytics backend (DataFusion locally, Athena on AWS).
#[async_trait]
pub trait AnalyticsEngine: Send + Sync + fmt::Debug {
    async fn run(
        &self,
        tenant: &TenantId,
        request: &ReportRequest,
    ) -> Result<ReportTable, AnalyticsError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression, issue #10: report downloads wrote formulas as they were.
    #[test]
    fn csv_downloads_neutralise_formulas_but_keep_numbers() {
        let table = ReportTable {
            columns: vec!["product_name".into(), "revenue".into()],
            rows: vec![
                vec![
                    Some("=HYPERLINK(\"http://x\")".into()),
                    Some("-12.50".into()),
                ],
                vec![Some("+1 cable".into()), Some("3".into())],
                vec![Some("@SUM(A1)".into()), None],
                vec![Some("-minus".into()), Some("0.5".into())],
                vec![Some("Plain".into()), Some("-".into())],
            ],
        };
        let bytes = table.write_csv(Vec::new()).unwrap_or_default();
        let text = String::from_utf8(bytes).unwrap_or_default();
        assert_eq!(
            text,
            "product_name,revenue\n\"'=HYPERLINK(\"\"http://x\"\")\",-12.50\n'+1 cable,3\n'@SUM(A1),\n'-minus,0.5\nPlain,'-\n"
        );
    }
}
