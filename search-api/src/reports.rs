//! Where reports run: on a pool of their own, a few at a time, and only a few per tenant,
//! so that search latency holds whatever the dashboards do (issue #10: 24 concurrent
//! dashboards of one tenant made another tenant's product search take over a second).
//!
//! - Reports execute on a dedicated Tokio runtime with [`ReportLimits::threads`] workers;
//!   the search runtime never runs report work, so a report that burns CPU or blocks its
//!   thread cannot starve a search request of a worker.
//! - At most [`ReportLimits::per_tenant`] report requests of one tenant run at once; one
//!   more is refused at once with `429` and `Retry-After` (a dashboard retries, a script
//!   backs off) instead of queueing behind its own tenant's work.
//! - At most [`ReportLimits::total`] run at once over all tenants; beyond that requests
//!   wait for a slot, within the request timeout.
//!
//! Nothing here grows with tenants that are idle: a tenant's counter exists only while one
//! of its reports runs.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use cloudpf_analytics::{AnalyticsEngine, AnalyticsError, ReportRequest, ReportTable};
use cloudpf_model::TenantId;
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// How much report work may run, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportLimits {
    /// Worker threads of the report runtime.
    pub threads: usize,
    /// Report requests running at once, over all tenants.
    pub total: usize,
    /// Report requests of one tenant running at once.
    pub per_tenant: usize,
}

impl Default for ReportLimits {
    fn default() -> Self {
        Self {
            threads: 1,
            total: 4,
            per_tenant: 2,
        }
    }
}

/// Runs reports of an [`AnalyticsEngine`] within [`ReportLimits`].
pub struct ReportRunner {
    engine: Arc<dyn AnalyticsEngine>,
    /// Always `Some` until dropped; taken in `Drop` to shut down without blocking.
    runtime: Option<tokio::runtime::Runtime>,
    total: Arc<Semaphore>,
    running: Arc<Mutex<HashMap<TenantId, usize>>>,
    per_tenant: usize,
}

impl std::fmt::Debug for ReportRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportRunner")
            .field("engine", &self.engine)
            .field("per_tenant", &self.per_tenant)
            .finish_non_exhaustive()
    }
}

impl Drop for ReportRunner {
    fn drop(&mut self) {
        // Dropping a runtime blocks until its tasks end, which is not allowed on an async
        // thread (where the last state clone may well be dropped).
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// A running report's hold on its tenant's count; released on drop, whatever happens.
struct TenantSlot {
    running: Arc<Mutex<HashMap<TenantId, usize>>>,
    tenant: TenantId,
}

impl Drop for TenantSlot {
    fn drop(&mut self) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = running.get_mut(&self.tenant) {
            *n -= 1;
            if *n == 0 {
                running.remove(&self.tenant);
            }
        }
    }
}

impl ReportRunner {
    pub fn new(engine: Arc<dyn AnalyticsEngine>, limits: ReportLimits) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(limits.threads.max(1))
            .thread_name("cloudpf-reports")
            .enable_all()
            .build()?;
        Ok(Self {
            engine,
            runtime: Some(runtime),
            total: Arc::new(Semaphore::new(limits.total.max(1))),
            running: Arc::new(Mutex::new(HashMap::new())),
            per_tenant: limits.per_tenant.max(1),
        })
    }

    fn claim(&self, tenant: &TenantId) -> Result<TenantSlot, ApiError> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let n = running.entry(tenant.clone()).or_default();
        if *n >= self.per_tenant {
            return Err(ApiError::TooManyReports(self.per_tenant));
        }
        *n += 1;
        Ok(TenantSlot {
            running: self.running.clone(),
            tenant: tenant.clone(),
        })
    }

    /// Runs `requests` of `tenant` as one report request (a dashboard is one), together,
    /// on the report pool; results in the order asked.
    pub async fn run(
        &self,
        tenant: &TenantId,
        requests: Vec<ReportRequest>,
    ) -> Result<Vec<ReportTable>, ApiError> {
        let _slot = self.claim(tenant)?;
        let _permit = self
            .total
            .acquire()
            .await
            .map_err(|_| ApiError::ReportUnavailable("report pool closed".into()))?;
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| ApiError::ReportUnavailable("report pool closed".into()))?;
        let handles: Vec<_> = requests
            .into_iter()
            .map(|request| {
                let engine = self.engine.clone();
                let tenant = tenant.clone();
                spawn_on(runtime, async move { engine.run(&tenant, &request).await })
            })
            .collect();
        let mut tables = Vec::with_capacity(handles.len());
        for handle in handles {
            tables.push(handle.await?);
        }
        Ok(tables)
    }
}

/// A task on the report runtime, aborted if the request that waits for it goes away
/// (a client that hangs up, a request timeout), so abandoned reports free the pool.
fn spawn_on<F>(runtime: &tokio::runtime::Runtime, work: F) -> AbortOnDrop
where
    F: Future<Output = Result<ReportTable, AnalyticsError>> + Send + 'static,
{
    AbortOnDrop(runtime.spawn(work))
}

struct AbortOnDrop(tokio::task::JoinHandle<Result<ReportTable, AnalyticsError>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl std::future::IntoFuture for AbortOnDrop {
    type Output = Result<ReportTable, ApiError>;
    type IntoFuture = std::pin::Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let mut this = self;
            match (&mut this.0).await {
                Ok(result) => result.map_err(ApiError::from),
                Err(e) => Err(ApiError::Internal(format!("report task: {e}"))),
            }
        })
    }
}
