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
    /// The value of `column` in row `row`.
    pub fn get(&self, row: usize, column: &str) -> Option<&str> {
        let c = self.columns.iter().position(|name| name == column)?;
        self.rows.get(row)?.get(c)?.as_deref()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    /// The engine could not run the query now; retrying may succeed.
    #[error("analytics unavailable: {0}")]
    Unavailable(String),
    /// The query failed for a reason retrying will not fix.
    #[error("report failed: {0}")]
    Failed(String),
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
