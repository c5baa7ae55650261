//! The Athena engine: the same report SQL, run by `StartQueryExecution` with execution
//! parameters in a workgroup (which enforces the result location, encryption and the
//! bytes-scanned cutoff), polled with backoff under an overall timeout, results paged
//! with `GetQueryResults`. A query that times out is cancelled.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_athena::error::DisplayErrorContext;
use aws_sdk_athena::types::{QueryExecutionContext, QueryExecutionState};
use cloudpf_model::TenantId;

use crate::engine::{AnalyticsEngine, AnalyticsError, ReportTable};
use crate::report::{Param, ReportRequest};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AthenaConfig {
    /// The workgroup (it carries the result location and the bytes-scanned cutoff).
    pub workgroup: String,
    /// The Glue database holding `purchases_csv` and the `purchase_lines` view.
    pub database: String,
    /// Give up (and cancel the query) after this long.
    pub timeout: Duration,
    /// First wait between status polls; doubles up to two seconds.
    pub first_poll: Duration,
}

#[derive(Debug, Clone)]
pub struct AthenaEngine {
    client: aws_sdk_athena::Client,
    config: AthenaConfig,
}

fn unavailable<E: std::error::Error>(e: E) -> AnalyticsError {
    AnalyticsError::Unavailable(DisplayErrorContext(e).to_string())
}

/// A parameter as an Athena execution parameter: a SQL literal.
pub fn literal(param: &Param) -> String {
    match param {
        Param::Text(t) => format!("'{}'", t.replace('\'', "''")),
        Param::Int(i) => i.to_string(),
    }
}

impl AthenaEngine {
    pub fn new(shared: &aws_config::SdkConfig, config: AthenaConfig) -> Self {
        Self {
            client: aws_sdk_athena::Client::new(shared),
            config,
        }
    }

    async fn wait(&self, id: &str) -> Result<(), AnalyticsError> {
        let started = tokio::time::Instant::now();
        let mut pause = self.config.first_poll;
        loop {
            let out = self
                .client
                .get_query_execution()
                .query_execution_id(id)
                .send()
                .await
                .map_err(unavailable)?;
            let status = out.query_execution().and_then(|q| q.status());
            let reason = status
                .and_then(|s| s.state_change_reason())
                .unwrap_or("no reason given")
                .to_owned();
            match status.and_then(|s| s.state()) {
                Some(QueryExecutionState::Succeeded) => return Ok(()),
                Some(QueryExecutionState::Failed) => {
                    return Err(AnalyticsError::Failed(format!(
                        "athena query failed: {reason}"
                    )));
                }
                Some(QueryExecutionState::Cancelled) => {
                    return Err(AnalyticsError::Failed(format!(
                        "athena query was cancelled: {reason}"
                    )));
                }
                _ => {}
            }
            if started.elapsed() + pause > self.config.timeout {
                // Stop paying for a query nobody waits for any more.
                if let Err(e) = self
                    .client
                    .stop_query_execution()
                    .query_execution_id(id)
                    .send()
                    .await
                {
                    tracing::warn!(query = id, error = %DisplayErrorContext(e), "could not cancel a timed-out query");
                }
                return Err(AnalyticsError::Unavailable(format!(
                    "athena query {id} did not finish within {:?} and was cancelled",
                    self.config.timeout
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    async fn results(&self, id: &str) -> Result<ReportTable, AnalyticsError> {
        let mut table = ReportTable::default();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .get_query_results()
                .query_execution_id(id)
                .set_next_token(token.take())
                .max_results(1000)
                .send()
                .await
                .map_err(unavailable)?;
            if table.columns.is_empty() {
                table.columns = out
                    .result_set()
                    .and_then(|r| r.result_set_metadata())
                    .map(|m| {
                        m.column_info()
                            .iter()
                            .map(|c| c.name().to_owned())
                            .collect()
                    })
                    .unwrap_or_default();
            }
            for row in out.result_set().map(|r| r.rows()).unwrap_or_default() {
                let values: Vec<Option<String>> = row
                    .data()
                    .iter()
                    .map(|d| d.var_char_value().map(str::to_owned))
                    .collect();
                // The first row of a SELECT's first page repeats the column names.
                let is_header = table.rows.is_empty()
                    && values
                        .iter()
                        .map(|v| v.as_deref().unwrap_or(""))
                        .eq(table.columns.iter().map(String::as_str));
                if !is_header {
                    table.rows.push(values);
                }
            }
            match out.next_token() {
                Some(next) => token = Some(next.to_owned()),
                None => return Ok(table),
            }
        }
    }
}

#[async_trait]
impl AnalyticsEngine for AthenaEngine {
    async fn run(
        &self,
        tenant: &TenantId,
        request: &ReportRequest,
    ) -> Result<ReportTable, AnalyticsError> {
        let params: Vec<String> = request.params(tenant).iter().map(literal).collect();
        let out = self
            .client
            .start_query_execution()
            .query_string(request.report.sql())
            .work_group(&self.config.workgroup)
            .query_execution_context(
                QueryExecutionContext::builder()
                    .database(&self.config.database)
                    .build(),
            )
            .set_execution_parameters(Some(params))
            .send()
            .await
            .map_err(unavailable)?;
        let id = out
            .query_execution_id()
            .ok_or_else(|| {
                AnalyticsError::Unavailable("athena returned no query execution id".into())
            })?
            .to_owned();
        tracing::info!(query = %id, report = request.report.name(), %tenant, "athena query started");
        self.wait(&id).await?;
        self.results(&id).await
    }
}
