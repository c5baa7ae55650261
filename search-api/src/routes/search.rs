//! Search endpoints: one search box, products, autocomplete, purchases.

use axum::extract::{RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use cloudpf_model::{Currency, Money, Product, Purchase, SearchEventKind};
use cloudpf_search::{Facets, Highlights, ProductQuery, PurchaseQuery, Suggestion};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::{AdminScope, SearchScope, TenantAuth};
use crate::config::Limits;
use crate::error::{ApiError, BadParameter, ErrorBody};
use crate::insights;
use crate::params::{self, Page};
use crate::tenants::Scope;

pub use cloudpf_search::MAX_SUGGESTIONS;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/search/{tenant_id}", get(search_all))
        .route("/search/{tenant_id}/products", get(search_products))
        .route("/search/{tenant_id}/autocomplete", get(autocomplete))
        .route("/search/{tenant_id}/purchases", get(search_purchases))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchAllParams {
    /// What the person typed (plain words; no query syntax).
    #[param(required = true, min_length = 1)]
    pub q: Option<String>,
    /// Hits per section, 1 to 20 (default 5).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 20)]
    pub size: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProductParams {
    /// What the person typed; typo-tolerant, the last word matched as a prefix. Optional:
    /// without it, filters browse the catalog.
    pub q: Option<String>,
    /// Exact category, as in the facets.
    pub category: Option<String>,
    /// Exact brand, as in the facets.
    pub brand: Option<String>,
    /// Lowest price, inclusive (decimal, e.g. `10.00`).
    pub min_price: Option<String>,
    /// Highest price, inclusive.
    pub max_price: Option<String>,
    /// `true`: only products in stock; `false`: only sold-out ones.
    #[param(value_type = Option<bool>)]
    pub in_stock: Option<String>,
    /// `relevance` (default), `price_asc`, `price_desc` or `newest`.
    #[param(pattern = "^(relevance|price_asc|price_desc|newest)$")]
    pub sort: Option<String>,
    /// Page number, from 1.
    #[param(value_type = Option<u32>, minimum = 1)]
    pub page: Option<String>,
    /// Hits per page, 1 to the configured maximum (default 10).
    #[param(value_type = Option<u32>, minimum = 1)]
    pub size: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AutocompleteParams {
    /// The letters typed so far.
    #[param(required = true, min_length = 1)]
    pub q: Option<String>,
    /// Suggestions, 1 to 20 (default 8).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 20)]
    pub size: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PurchaseParams {
    /// Words from item names, purchase or customer ids.
    pub q: Option<String>,
    pub customer_id: Option<String>,
    /// Purchases containing this product.
    pub product_id: Option<String>,
    /// `placed`, `paid`, `shipped`, `cancelled` or `refunded`.
    #[param(pattern = "^(placed|paid|shipped|cancelled|refunded)$")]
    pub status: Option<String>,
    /// Created at or after: a date (`2026-01-31`, start of day UTC) or an RFC 3339 time.
    pub from: Option<String>,
    /// Created at or before: a date (end of day UTC) or an RFC 3339 time.
    pub to: Option<String>,
    pub min_total: Option<String>,
    pub max_total: Option<String>,
    /// Page number, from 1.
    #[param(value_type = Option<u32>, minimum = 1)]
    pub page: Option<String>,
    /// Hits per page, 1 to the configured maximum (default 20).
    #[param(value_type = Option<u32>, minimum = 1)]
    pub size: Option<String>,
}

impl SearchAllParams {
    /// The query string of `GET /search/{tenant_id}`: the search text and hits per section.
    pub fn from_query(raw: Option<&str>, limits: &Limits) -> Result<(String, usize), BadParameter> {
        let p: Self = params::parse(raw)?;
        let text = params::text(p.q, limits, true)?;
        let page = params::page(None, p.size, 5, 20, limits)?;
        Ok((text, page.size))
    }
}

impl ProductParams {
    /// The query string of a product search: the query, the page number and its size.
    pub fn from_query(
        raw: Option<&str>,
        limits: &Limits,
    ) -> Result<(ProductQuery, Page), BadParameter> {
        let p: Self = params::parse(raw)?;
        let (min_price, max_price) =
            params::money_range(("min_price", p.min_price), ("max_price", p.max_price))?;
        let page = params::page(p.page, p.size, 10, limits.max_page_size, limits)?;
        let query = ProductQuery {
            text: params::text(p.q, limits, false)?,
            category: params::ident("category", p.category)?,
            brand: params::ident("brand", p.brand)?,
            min_price,
            max_price,
            in_stock: params::boolean("in_stock", p.in_stock)?,
            sort: params::sort(p.sort)?,
            offset: page.offset(),
            limit: page.size,
        };
        Ok((query, page))
    }
}

impl AutocompleteParams {
    /// The query string of an autocomplete request: the letters typed and how many
    /// suggestions.
    pub fn from_query(raw: Option<&str>, limits: &Limits) -> Result<(String, usize), BadParameter> {
        let p: Self = params::parse(raw)?;
        let text = params::text(p.q, limits, true)?;
        let page = params::page(None, p.size, 8, MAX_SUGGESTIONS, limits)?;
        Ok((text, page.size))
    }
}

impl PurchaseParams {
    /// The query string of a purchase search: the query, the page number and its size.
    pub fn from_query(
        raw: Option<&str>,
        limits: &Limits,
    ) -> Result<(PurchaseQuery, Page), BadParameter> {
        let p: Self = params::parse(raw)?;
        let (min_total, max_total) =
            params::money_range(("min_total", p.min_total), ("max_total", p.max_total))?;
        let (from, to) = params::date_range(p.from, p.to)?;
        let page = params::page(p.page, p.size, 20, limits.max_page_size, limits)?;
        let query = PurchaseQuery {
            text: params::text(p.q, limits, false)?,
            customer_id: params::ident("customer_id", p.customer_id)?,
            product_id: params::ident("product_id", p.product_id)?,
            status: params::status(p.status)?,
            from,
            to,
            min_total,
            max_total,
            offset: page.offset(),
            limit: page.size,
        };
        Ok((query, page))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductHitBody {
    pub product: Product,
    pub score: f32,
    pub highlights: Highlights,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductSearchResponse {
    /// Every matching product, not only this page.
    pub total: u64,
    /// True when `total` and the facet counts are estimates: a query matching a large
    /// part of the catalog (a one- or two-letter prefix) is not counted to the end.
    pub total_is_estimate: bool,
    pub page: usize,
    pub size: usize,
    pub hits: Vec<ProductHitBody>,
    pub facets: Facets,
    /// Only when nothing matched: a query that would find something, its words that are
    /// in no product replaced by the closest ones that are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub did_you_mean: Option<String>,
    /// Names this search in the search log: a page reports clicks on its results with it
    /// (`POST /events/{tenant_id}`). Only for a first page of a typed query, and only
    /// where the server keeps a search log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AutocompleteResponse {
    /// The shop's popular searches that start with what was typed, most searched first
    /// (at most 3; from the search log, recomputed every few minutes).
    pub queries: Vec<QuerySuggestionBody>,
    pub suggestions: Vec<SuggestionBody>,
}

/// A popular search to complete the search box with.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuerySuggestionBody {
    pub text: String,
}

/// One suggestion. Search keys sit in web pages, so anyone can read what they are sent: a
/// shop's sales figures go only to its admin keys (issue #10); everyone gets the rank.
#[derive(Debug, Serialize, ToSchema)]
pub struct SuggestionBody {
    /// The product name to complete the search box with.
    pub text: String,
    pub product_id: String,
    /// The product's price (exact decimal) in `currency`, for the dropdown.
    #[schema(value_type = String)]
    pub price: Money,
    #[schema(value_type = String)]
    pub currency: Currency,
    /// Position in this answer, from 1 (best: closest match, then best seller).
    pub rank: usize,
    /// True when the input matched only with a typo.
    pub fuzzy: bool,
    /// Units sold, from the purchases stream; admin keys only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub popularity: Option<u64>,
}

impl SuggestionBody {
    fn new(position: usize, s: Suggestion, scope: Scope) -> Self {
        Self {
            text: s.text,
            product_id: s.product_id,
            price: s.price,
            currency: s.currency,
            rank: position + 1,
            fuzzy: s.fuzzy,
            popularity: scope.allows(Scope::Admin).then_some(s.popularity),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PurchaseSearchResponse {
    pub total: u64,
    pub page: usize,
    pub size: usize,
    /// Newest first.
    pub hits: Vec<Purchase>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductSection {
    pub total: u64,
    /// True when `total` is an estimate.
    pub total_is_estimate: bool,
    pub hits: Vec<ProductHitBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PurchaseSection {
    pub total: u64,
    pub hits: Vec<Purchase>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchAllResponse {
    pub products: ProductSection,
    /// Present only for admin keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purchases: Option<PurchaseSection>,
}

fn hits(results: cloudpf_search::ProductResults) -> (Total, Vec<ProductHitBody>, Facets) {
    let hits = results
        .hits
        .into_iter()
        .map(|h| ProductHitBody {
            product: h.product,
            score: h.score,
            highlights: h.highlights,
        })
        .collect();
    (
        Total(results.total, results.total_is_estimate),
        hits,
        results.facets,
    )
}

/// A total, and whether it is an estimate.
struct Total(u64, bool);

/// One search box across the tenant's data.
#[utoipa::path(
    get, path = "/search/{tenant_id}", tag = "search",
    params(("tenant_id" = String, Path, description = "Tenant id"), SearchAllParams),
    responses(
        (status = 200, description = "Product hits; purchase hits for admin keys", body = SearchAllResponse),
        (status = 400, description = "Bad parameter", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "Key of another tenant", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn search_all(
    auth: TenantAuth<SearchScope>,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<SearchAllResponse>, ApiError> {
    let (text, size) = SearchAllParams::from_query(raw.as_deref(), &state.config.limits)?;
    let products = state
        .engine
        .search_products(
            &auth.tenant,
            &ProductQuery {
                text: text.clone(),
                limit: size,
                ..ProductQuery::default()
            },
        )
        .await?;
    insights::record_query(
        state.search_log.as_deref(),
        &auth.tenant,
        SearchEventKind::Search,
        &text,
        products.total,
    );
    let (total, product_hits, _) = hits(products);
    let purchases = if auth.scope.allows(Scope::Admin) {
        let r = state
            .engine
            .search_purchases(
                &auth.tenant,
                &PurchaseQuery {
                    text,
                    limit: size,
                    ..PurchaseQuery::default()
                },
            )
            .await?;
        Some(PurchaseSection {
            total: r.total,
            hits: r.hits,
        })
    } else {
        None
    };
    Ok(Json(SearchAllResponse {
        products: ProductSection {
            total: total.0,
            total_is_estimate: total.1,
            hits: product_hits,
        },
        purchases,
    }))
}

/// Product search for a storefront: typo-tolerant, prefix on the last word, filters,
/// facets and highlights.
#[utoipa::path(
    get, path = "/search/{tenant_id}/products", tag = "search",
    params(("tenant_id" = String, Path, description = "Tenant id"), ProductParams),
    responses(
        (status = 200, description = "Matching products", body = ProductSearchResponse),
        (status = 400, description = "Bad parameter", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "Key of another tenant", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn search_products(
    auth: TenantAuth<SearchScope>,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<ProductSearchResponse>, ApiError> {
    let (query, page) = ProductParams::from_query(raw.as_deref(), &state.config.limits)?;
    let mut results = state.engine.search_products(&auth.tenant, &query).await?;
    let did_you_mean = results.did_you_mean.take();
    // Paging is the same search again, not another one.
    let query_id = (page.number == 1)
        .then(|| {
            insights::record_query(
                state.search_log.as_deref(),
                &auth.tenant,
                SearchEventKind::Search,
                &query.text,
                results.total,
            )
        })
        .flatten();
    let (total, hits, facets) = hits(results);
    Ok(Json(ProductSearchResponse {
        query_id,
        total: total.0,
        total_is_estimate: total.1,
        page: page.number,
        size: page.size,
        hits,
        facets,
        did_you_mean,
    }))
}

/// Suggestions while typing: prefix plus typo tolerance, best sellers first.
#[utoipa::path(
    get, path = "/search/{tenant_id}/autocomplete", tag = "search",
    params(("tenant_id" = String, Path, description = "Tenant id"), AutocompleteParams),
    responses(
        (status = 200, description = "Suggestions, best first", body = AutocompleteResponse),
        (status = 400, description = "Bad parameter", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "Key of another tenant", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn autocomplete(
    auth: TenantAuth<SearchScope>,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<AutocompleteResponse>, ApiError> {
    let (text, size) = AutocompleteParams::from_query(raw.as_deref(), &state.config.limits)?;
    let suggestions: Vec<SuggestionBody> = state
        .engine
        .autocomplete(&auth.tenant, &text, size)
        .await?
        .into_iter()
        .enumerate()
        .map(|(i, s)| SuggestionBody::new(i, s, auth.scope))
        .collect();
    insights::record_query(
        state.search_log.as_deref(),
        &auth.tenant,
        SearchEventKind::Autocomplete,
        &text,
        suggestions.len() as u64,
    );
    insights::refresh_popular(&state, &auth.tenant);
    let queries = state
        .popular
        .matching(
            &auth.tenant,
            &text,
            insights::MAX_QUERY_SUGGESTIONS.min(size),
        )
        .into_iter()
        .map(|text| QuerySuggestionBody { text })
        .collect();
    Ok(Json(AutocompleteResponse {
        queries,
        suggestions,
    }))
}

/// Purchase search for the tenant's back office (admin keys only).
#[utoipa::path(
    get, path = "/search/{tenant_id}/purchases", tag = "search",
    params(("tenant_id" = String, Path, description = "Tenant id"), PurchaseParams),
    responses(
        (status = 200, description = "Matching purchases, newest first", body = PurchaseSearchResponse),
        (status = 400, description = "Bad parameter", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "Key of another tenant, or a search key", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn search_purchases(
    auth: TenantAuth<AdminScope>,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<PurchaseSearchResponse>, ApiError> {
    let (query, page) = PurchaseParams::from_query(raw.as_deref(), &state.config.limits)?;
    let r = state.engine.search_purchases(&auth.tenant, &query).await?;
    Ok(Json(PurchaseSearchResponse {
        total: r.total,
        page: page.number,
        size: page.size,
        hits: r.hits,
    }))
}
