//! [`ElasticsearchEngine`]: the [`SearchEngine`] over one or more Elasticsearch clusters,
//! each tenant served by the cluster its route names.
//!
//! Writes go through `_bulk` with `refresh=wait_for`, so an `apply_*` that returns has
//! made its writes visible to searches. Per-item results are judged one by one: applied,
//! stale (the sequence-number guard said `noop`), rejected for good (a document the
//! mapping cannot take), or retried (version conflicts, 429, 5xx) with exponential
//! backoff, only the failed items, a bounded number of times; what still fails then
//! fails the batch as [`SearchError::Unavailable`], so the stream redelivers it.
//!
//! # Deep pages
//!
//! Elasticsearch refuses a search whose `from + size` passes `index.max_result_window`
//! (10,000). A page past it is answered with the total and the facets and no hits; a
//! page straddling it is cut at it ([`query::window`]). The API's own result window,
//! 10,000 by default, keeps callers inside; one configured larger gets these pages.
//!
//! # Popularity
//!
//! Autocomplete ranks by units sold, kept on each product document as `units_sold`. After
//! every batch, the units sold of every product the batch touches (the products of a
//! products batch; the line items' products of a purchases batch, before and after the
//! change) are recomputed from scratch with one aggregation over the tenant's live
//! purchases and written with one bulk of partial updates. Recomputing instead of
//! incrementing makes replays and retries harmless. Two batches touching one product
//! concurrently (different shards) can finish in either order; the later recomputation
//! wins, and the next purchase of that product corrects any stale count.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use cloudpf_model::{Product, Purchase, TenantId};
use cloudpf_search::{
    ApplyOutcome, DocChange, Entity, ProductQuery, ProductResults, PurchaseQuery, PurchaseResults,
    Rejected, SearchEngine, SearchError, Stored, Suggestion, Versioned,
};
use elasticsearch::http::Method;
use serde_json::Value;

use crate::admin::{self, Rebuilt, TaskWait};
use crate::client::{Body, Conn, ItemOutcome, REQUEST_TIMEOUT, RetryPolicy, item_outcome};
use crate::documents::{self, EsDoc};
use crate::mapping::IndexNames;
use crate::routing::EsRoutes;
use crate::{query, response};

/// The Elasticsearch search engine. Indexes are created on first write (and by
/// [`ElasticsearchEngine::setup`]); which ones exist is remembered per engine.
#[derive(Debug)]
pub struct ElasticsearchEngine {
    routes: EsRoutes,
    conns: BTreeMap<String, Conn>,
    /// Clusters that cannot be used, with the reason: credentials not readable, or a
    /// connection that cannot be built (an unparsable `ca_certificate`). Their tenants
    /// get [`SearchError::Unavailable`]; the other clusters serve.
    unavailable: BTreeMap<String, String>,
    retry: RetryPolicy,
    task_wait: TaskWait,
    /// (cluster, tenant, entity) whose alias is known to exist.
    ensured: Mutex<HashSet<(String, TenantId, Entity)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The set only caches knowledge; a panic elsewhere leaves it usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ElasticsearchEngine {
    /// An engine over the clusters of `routes`. No request is sent until used. A cluster
    /// that cannot be used is logged and answers its tenants as unavailable.
    pub fn new(routes: EsRoutes) -> Result<Self, SearchError> {
        Self::with_options(routes, RetryPolicy::default(), REQUEST_TIMEOUT)
    }

    pub fn with_options(
        routes: EsRoutes,
        retry: RetryPolicy,
        request_timeout: Duration,
    ) -> Result<Self, SearchError> {
        let mut conns = BTreeMap::new();
        let mut unavailable: BTreeMap<String, String> = routes
            .unavailable()
            .map(|(name, reason)| (name.to_owned(), reason.to_owned()))
            .collect();
        for cluster in routes.clusters() {
            match Conn::new(cluster.clone(), request_timeout) {
                Ok(conn) => {
                    conns.insert(cluster.name.clone(), conn);
                }
                Err(SearchError::Unavailable(reason) | SearchError::Corrupt(reason)) => {
                    // The reason already names the cluster.
                    let reason = reason
                        .strip_prefix(&format!("cluster {}: ", cluster.name))
                        .unwrap_or(&reason)
                        .to_owned();
                    unavailable.insert(cluster.name.clone(), reason);
                }
                Err(e @ SearchError::NotConfigured(_)) => {
                    unavailable.insert(cluster.name.clone(), e.to_string());
                }
            }
        }
        for (cluster, reason) in &unavailable {
            tracing::error!(
                cluster,
                reason,
                "search cluster unavailable; its tenants wait"
            );
        }
        Ok(Self {
            routes,
            conns,
            unavailable,
            retry,
            task_wait: TaskWait::default(),
            ensured: Mutex::new(HashSet::new()),
        })
    }

    /// How long [`ElasticsearchEngine::rebuild`] waits for its copy task (by default at
    /// most an hour, asking every 0.5 s at first, then up to every 15 s).
    #[must_use]
    pub fn with_task_wait(mut self, wait: TaskWait) -> Self {
        self.task_wait = wait;
        self
    }

    pub fn routes(&self) -> &EsRoutes {
        &self.routes
    }

    fn conn(&self, tenant: &TenantId) -> Result<&Conn, SearchError> {
        let name = self
            .routes
            .cluster_name_for(tenant)
            .ok_or_else(|| SearchError::NotConfigured(tenant.to_string()))?;
        if let Some(conn) = self.conns.get(name) {
            return Ok(conn);
        }
        let reason = self
            .unavailable
            .get(name)
            .map_or("not usable", String::as_str);
        Err(SearchError::Unavailable(format!(
            "cluster {name}: {reason}"
        )))
    }

    fn names(conn: &Conn, tenant: &TenantId, entity: Entity) -> IndexNames {
        IndexNames::new(&conn.cluster.index_prefix, tenant, entity)
    }

    /// Creates the tenant's indexes and aliases where missing (`cloudpf es-setup`).
    pub async fn setup(&self, tenant: &TenantId) -> Result<(), SearchError> {
        let conn = self.conn(tenant)?;
        for entity in [Entity::Products, Entity::Purchases] {
            admin::ensure(conn, &self.retry, tenant, entity).await?;
            self.remember(conn, tenant, entity);
        }
        Ok(())
    }

    /// Registers the snapshot repository and nightly policy on every cluster with a
    /// `snapshot_bucket` (`cloudpf es-setup`); the names of those clusters.
    pub async fn setup_snapshots(&self) -> Result<Vec<String>, SearchError> {
        let mut done = Vec::new();
        for conn in self.conns.values() {
            if admin::setup_snapshots(conn, &self.retry).await? {
                done.push(conn.cluster.name.clone());
            }
        }
        Ok(done)
    }

    /// Moves the tenant's `entity` index to the current mapping version: see
    /// [`admin::rebuild`](crate::admin) for what happens to writes meanwhile.
    pub async fn rebuild(&self, tenant: &TenantId, entity: Entity) -> Result<Rebuilt, SearchError> {
        let conn = self.conn(tenant)?;
        let rebuilt = admin::rebuild(conn, &self.retry, &self.task_wait, tenant, entity).await?;
        self.remember(conn, tenant, entity);
        Ok(rebuilt)
    }

    /// A rebuild without downtime (`cloudpf reindex`): [`Self::rebuild`] copies into the
    /// current mapping version and swaps the alias while searches keep answering; then,
    /// after `settle` (for bulk requests that resolved the alias before the swap), every
    /// document of the old index is written again through the alias with the usual
    /// sequence guard, so what reached the old index during the copy is in the new one
    /// and nothing newer is overwritten; then the old index is deleted. Returns the
    /// rebuild and the number of changes the catch-up applied.
    pub async fn reindex(
        &self,
        tenant: &TenantId,
        entity: Entity,
        settle: std::time::Duration,
    ) -> Result<(Rebuilt, u64), SearchError> {
        let rebuilt = self.rebuild(tenant, entity).await?;
        let Rebuilt::Swapped { from, .. } = &rebuilt else {
            return Ok((rebuilt, 0));
        };
        tokio::time::sleep(settle).await;
        let conn = self.conn(tenant)?;
        let mut scroll = admin::Scroll::over(from, 1_000);
        let mut applied = 0;
        while let Some(hits) = scroll.next(conn, &self.retry).await? {
            applied += match entity {
                Entity::Products => {
                    let changes = documents::versioned_of::<Product>(&hits)?;
                    self.apply(tenant, changes).await?.applied
                }
                Entity::Purchases => {
                    let changes = documents::versioned_of::<Purchase>(&hits)?;
                    self.apply(tenant, changes).await?.applied
                }
            } as u64;
        }
        admin::delete_index(conn, &self.retry, from).await?;
        Ok((rebuilt, applied))
    }

    fn key(conn: &Conn, tenant: &TenantId, entity: Entity) -> (String, TenantId, Entity) {
        (conn.cluster.name.clone(), tenant.clone(), entity)
    }

    fn remember(&self, conn: &Conn, tenant: &TenantId, entity: Entity) {
        lock(&self.ensured).insert(Self::key(conn, tenant, entity));
    }

    fn forget(&self, conn: &Conn, tenant: &TenantId, entity: Entity) {
        lock(&self.ensured).remove(&Self::key(conn, tenant, entity));
    }

    async fn ensure(
        &self,
        conn: &Conn,
        tenant: &TenantId,
        entity: Entity,
    ) -> Result<(), SearchError> {
        if lock(&self.ensured).contains(&Self::key(conn, tenant, entity)) {
            return Ok(());
        }
        admin::ensure(conn, &self.retry, tenant, entity).await?;
        self.remember(conn, tenant, entity);
        Ok(())
    }

    /// Sends `lines` (action and source of each item) as bulks until every item has a
    /// final outcome, resending only the items that may pass on a retry.
    async fn bulk(
        &self,
        conn: &Conn,
        tenant: &TenantId,
        entity: Entity,
        lines: &[(Value, Value)],
    ) -> Result<Vec<ItemOutcome>, SearchError> {
        let alias = Self::names(conn, tenant, entity).alias;
        let path = format!("/{alias}/_bulk");
        let mut outcomes: Vec<Option<ItemOutcome>> = vec![None; lines.len()];
        let mut pending: Vec<usize> = (0..lines.len()).collect();
        let mut attempt = 1;
        while !pending.is_empty() {
            let body = documents::ndjson(pending.iter().flat_map(|&i| [&lines[i].0, &lines[i].1]));
            let reason = match conn
                .send(
                    Method::Post,
                    &path,
                    // `require_alias`: a missing alias must fail, not auto-create an
                    // index with guessed mappings under the alias's name.
                    &[("refresh", "wait_for"), ("require_alias", "true")],
                    Some(Body::NdJson(body)),
                )
                .await
            {
                Err(e) => e,
                Ok(reply) if reply.is_transient() => reply.describe(),
                Ok(reply) if !reply.is_success() => {
                    if reply.is_index_not_found() {
                        self.forget(conn, tenant, entity);
                    }
                    return Err(SearchError::Unavailable(format!(
                        "bulk to {alias} failed: {}",
                        reply.describe()
                    )));
                }
                Ok(reply) => {
                    let items = reply
                        .body
                        .get("items")
                        .and_then(Value::as_array)
                        .filter(|items| items.len() == pending.len())
                        .ok_or_else(|| {
                            SearchError::Unavailable(format!(
                                "bulk to {alias}: response does not list one item per request line"
                            ))
                        })?;
                    let mut again = Vec::new();
                    let mut reason = String::new();
                    for (&i, item) in pending.iter().zip(items) {
                        match item_outcome(item) {
                            ItemOutcome::Retry(r) => {
                                again.push(i);
                                reason = r;
                            }
                            ItemOutcome::Failed(r) => {
                                if r.starts_with("index_not_found_exception") {
                                    self.forget(conn, tenant, entity);
                                }
                                return Err(SearchError::Unavailable(format!(
                                    "bulk to {alias} failed: {r}"
                                )));
                            }
                            final_outcome => outcomes[i] = Some(final_outcome),
                        }
                    }
                    pending = again;
                    if pending.is_empty() {
                        break;
                    }
                    reason
                }
            };
            if attempt >= self.retry.max_attempts.max(1) {
                return Err(SearchError::Unavailable(format!(
                    "{} of {} changes to {alias} still failing after {attempt} attempts: {reason}",
                    pending.len(),
                    lines.len()
                )));
            }
            tracing::warn!(%alias, attempt, retrying = pending.len(), %reason, "bulk items failed; retrying");
            tokio::time::sleep(self.retry.backoff(attempt)).await;
            attempt += 1;
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| ItemOutcome::Failed("no outcome".into())))
            .collect())
    }

    async fn apply<T: EsDoc>(
        &self,
        tenant: &TenantId,
        changes: Vec<Versioned<T>>,
    ) -> Result<ApplyOutcome, SearchError> {
        if changes.is_empty() {
            return Ok(ApplyOutcome::default());
        }
        let conn = self.conn(tenant)?;
        self.ensure(conn, tenant, T::ENTITY).await?;
        // Units sold land on product documents, whichever entity the batch is.
        self.ensure(conn, tenant, Entity::Products).await?;

        let mut touched: BTreeSet<String> = match T::ENTITY {
            Entity::Purchases => self.sold_before(conn, tenant, &changes).await?,
            Entity::Products => BTreeSet::new(),
        };
        let mut outcome = ApplyOutcome::default();
        let mut lines = Vec::with_capacity(changes.len());
        let mut sent = Vec::with_capacity(changes.len());
        for change in &changes {
            if let (Entity::Purchases, DocChange::Upsert(doc)) = (T::ENTITY, &change.change) {
                touched.extend(doc.sold_products());
            }
            match documents::bulk_lines(change) {
                Ok(pair) => {
                    lines.push(pair);
                    sent.push(change);
                }
                Err(e) => outcome.rejected.push(Rejected {
                    key: change.key.clone(),
                    seq: change.seq.clone(),
                    reason: e.to_string(),
                }),
            }
        }
        let results = self.bulk(conn, tenant, T::ENTITY, &lines).await?;
        for (change, result) in sent.into_iter().zip(results) {
            // A product that is indexed (now or already) gets its units sold; a rejected
            // one gets no stub.
            let indexed = matches!(result, ItemOutcome::Applied | ItemOutcome::Stale);
            if T::ENTITY == Entity::Products
                && indexed
                && matches!(change.change, DocChange::Upsert(_))
            {
                touched.insert(change.key.clone());
            }
            match result {
                ItemOutcome::Applied => outcome.applied += 1,
                ItemOutcome::Stale => outcome.stale += 1,
                ItemOutcome::Rejected(reason)
                | ItemOutcome::Failed(reason)
                | ItemOutcome::Retry(reason) => {
                    tracing::warn!(%tenant, entity = %T::ENTITY, key = %change.key, %reason, "change rejected by elasticsearch");
                    outcome.rejected.push(Rejected {
                        key: change.key.clone(),
                        seq: change.seq.clone(),
                        reason,
                    });
                }
            }
        }
        // Recomputed for stale changes too, so a batch retried after a failure here
        // still brings the counts up to date.
        self.refresh_units_sold(conn, tenant, &touched).await?;
        Ok(outcome)
    }

    /// The products that the stored versions of these purchases sell, so that a change
    /// removing a line (or the whole purchase) recounts that product too.
    async fn sold_before<T: EsDoc>(
        &self,
        conn: &Conn,
        tenant: &TenantId,
        changes: &[Versioned<T>],
    ) -> Result<BTreeSet<String>, SearchError> {
        let ids: Vec<&str> = changes.iter().map(|c| c.key.as_str()).collect();
        let body = query::mget(&ids, &["product_ids"]);
        let Some(reply) = self
            .read(conn, tenant, Entity::Purchases, "_mget", body)
            .await?
        else {
            return Ok(BTreeSet::new());
        };
        let mut out = BTreeSet::new();
        for doc in reply
            .get("docs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let ids = doc.pointer("/_source/product_ids");
            match ids {
                Some(Value::Array(list)) => {
                    out.extend(list.iter().filter_map(Value::as_str).map(str::to_owned));
                }
                Some(Value::String(one)) => {
                    out.insert(one.clone());
                }
                _ => {}
            }
        }
        Ok(out)
    }

    async fn refresh_units_sold(
        &self,
        conn: &Conn,
        tenant: &TenantId,
        products: &BTreeSet<String>,
    ) -> Result<(), SearchError> {
        if products.is_empty() {
            return Ok(());
        }
        let mut units: BTreeMap<&String, u64> = products.iter().map(|p| (p, 0)).collect();
        if let Some(body) = self
            .read(
                conn,
                tenant,
                Entity::Purchases,
                "_search",
                query::units_sold(products),
            )
            .await?
        {
            for (product, sold) in response::parse_units_sold(&body)? {
                if let Some(slot) = units.get_mut(&product) {
                    *slot = sold;
                }
            }
        }
        let lines: Vec<(Value, Value)> = units
            .into_iter()
            .map(|(p, n)| documents::units_sold_lines(p, n))
            .collect();
        for (line, result) in lines
            .iter()
            .zip(self.bulk(conn, tenant, Entity::Products, &lines).await?)
        {
            if let ItemOutcome::Rejected(reason) = result {
                return Err(SearchError::Unavailable(format!(
                    "units sold not written for {}: {reason}",
                    line.0.pointer("/update/_id").unwrap_or(&Value::Null)
                )));
            }
        }
        Ok(())
    }

    /// POSTs a read (`_search`, `_mget`, `_count`) to the tenant's alias; `None` when the
    /// index does not exist (a tenant that never had a write has no documents).
    async fn read(
        &self,
        conn: &Conn,
        tenant: &TenantId,
        entity: Entity,
        endpoint: &str,
        body: Value,
    ) -> Result<Option<Value>, SearchError> {
        let alias = Self::names(conn, tenant, entity).alias;
        let reply = conn
            .send_retrying(
                &self.retry,
                Method::Post,
                &format!("/{alias}/{endpoint}"),
                &[],
                Some(Body::Json(body)),
            )
            .await?;
        if reply.is_index_not_found() {
            return Ok(None);
        }
        if !reply.is_success() {
            return Err(SearchError::Unavailable(format!(
                "{endpoint} on {alias} failed: {}",
                reply.describe()
            )));
        }
        Ok(Some(reply.body))
    }

    /// A `_search` of the tenant's `entity` index read by `parse`; a tenant without the
    /// index has no results.
    async fn search<R: Default>(
        &self,
        tenant: &TenantId,
        entity: Entity,
        body: Value,
        parse: fn(&Value) -> Result<R, SearchError>,
    ) -> Result<R, SearchError> {
        let conn = self.conn(tenant)?;
        match self.read(conn, tenant, entity, "_search", body).await? {
            Some(body) => parse(&body),
            None => Ok(R::default()),
        }
    }

    async fn get<T: EsDoc>(
        &self,
        tenant: &TenantId,
        key: &str,
    ) -> Result<Option<Stored<T>>, SearchError> {
        let conn = self.conn(tenant)?;
        let body = query::mget(&[key], &["source", "seq", "deleted"]);
        let Some(reply) = self.read(conn, tenant, T::ENTITY, "_mget", body).await? else {
            return Ok(None);
        };
        let Some(doc) = reply.pointer("/docs/0") else {
            return Err(SearchError::Unavailable(
                "unexpected elasticsearch response: _mget answered without docs".into(),
            ));
        };
        if let Some(error) = doc.get("error") {
            if error.get("type").and_then(Value::as_str) == Some("index_not_found_exception") {
                return Ok(None);
            }
            return Err(SearchError::Unavailable(format!(
                "get {key} failed: {}",
                crate::client::describe_error(error)
            )));
        }
        if doc.get("found").and_then(Value::as_bool) != Some(true) {
            return Ok(None);
        }
        let source = doc.get("_source").ok_or_else(|| {
            SearchError::Unavailable(
                "unexpected elasticsearch response: a found document without _source".into(),
            )
        })?;
        Ok(documents::stored::<T>(source)?.map(|(doc, seq)| Stored { doc, seq }))
    }
}

#[async_trait]
impl SearchEngine for ElasticsearchEngine {
    async fn apply_products(
        &self,
        tenant: &TenantId,
        changes: Vec<Versioned<Product>>,
    ) -> Result<ApplyOutcome, SearchError> {
        self.apply(tenant, changes).await
    }

    async fn apply_purchases(
        &self,
        tenant: &TenantId,
        changes: Vec<Versioned<Purchase>>,
    ) -> Result<ApplyOutcome, SearchError> {
        self.apply(tenant, changes).await
    }

    async fn get_product(
        &self,
        tenant: &TenantId,
        product_id: &str,
    ) -> Result<Option<Stored<Product>>, SearchError> {
        self.get(tenant, product_id).await
    }

    async fn get_purchase(
        &self,
        tenant: &TenantId,
        purchase_id: &str,
    ) -> Result<Option<Stored<Purchase>>, SearchError> {
        self.get(tenant, purchase_id).await
    }

    async fn purge_tenant(&self, tenant: &TenantId) -> Result<Vec<String>, SearchError> {
        let conn = self.conn(tenant)?;
        let mut removed = Vec::new();
        for entity in Entity::ALL {
            self.forget(conn, tenant, entity);
            removed.extend(admin::purge(conn, &self.retry, tenant, entity).await?);
        }
        Ok(removed)
    }

    async fn count(&self, tenant: &TenantId, entity: Entity) -> Result<u64, SearchError> {
        let conn = self.conn(tenant)?;
        let Some(body) = self
            .read(conn, tenant, entity, "_count", query::count_live())
            .await?
        else {
            return Ok(0);
        };
        body.get("count").and_then(Value::as_u64).ok_or_else(|| {
            SearchError::Unavailable(
                "unexpected elasticsearch response: _count answered without count".into(),
            )
        })
    }

    async fn search_products(
        &self,
        tenant: &TenantId,
        q: &ProductQuery,
    ) -> Result<ProductResults, SearchError> {
        self.search(
            tenant,
            Entity::Products,
            query::product_search(q),
            response::parse_products,
        )
        .await
    }

    async fn autocomplete(
        &self,
        tenant: &TenantId,
        prefix: &str,
        size: usize,
    ) -> Result<Vec<Suggestion>, SearchError> {
        // An unrouted tenant is an error even for a request that needs no search.
        self.conn(tenant)?;
        if size == 0 || query::words(prefix).is_empty() {
            return Ok(Vec::new());
        }
        self.search(
            tenant,
            Entity::Products,
            query::autocomplete(prefix, size),
            response::parse_suggestions,
        )
        .await
    }

    async fn search_purchases(
        &self,
        tenant: &TenantId,
        q: &PurchaseQuery,
    ) -> Result<PurchaseResults, SearchError> {
        self.search(
            tenant,
            Entity::Purchases,
            query::purchase_search(q),
            response::parse_purchases,
        )
        .await
    }
}
