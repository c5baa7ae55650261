//! Sales reports for a tenant's dashboard (admin keys only). Clients pick a report from
//! the catalog and a date range; the SQL is fixed, every value is bound as a parameter,
//! and the tenant is always the caller's.

use axum::extract::rejection::JsonRejection;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::NaiveDate;
use cloudpf_analytics::{Filters, Granularity, Report, ReportRequest, ReportTable};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::{AdminScope, TenantAuth};
use crate::error::{ApiError, BadParameter, ErrorBody};
use crate::params;
use crate::reports::ReportRunner;

/// The longest range one report may cover: the API's half of the cost guard (the Athena
/// workgroup's bytes-scanned cutoff is the other).
pub const MAX_RANGE_DAYS: i64 = 366;
/// Rows of a ranking report (top products, RFM customers) at most.
pub const MAX_LIMIT: u32 = 1000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/analytics/{tenant_id}", get(dashboard))
        .route("/analytics/{tenant_id}/report", post(report))
}

fn runner(state: &AppState) -> Result<&ReportRunner, ApiError> {
    state
        .analytics
        .as_deref()
        .ok_or(ApiError::AnalyticsNotConfigured)
}

fn date(name: &str, text: &str) -> Result<NaiveDate, BadParameter> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        BadParameter::new(
            "invalid_date",
            format!("{name} must be a date like 2026-01-31, got {text:?}"),
        )
    })
}

fn range(from: NaiveDate, to: NaiveDate) -> Result<(), BadParameter> {
    if from > to {
        return Err(BadParameter::new(
            "invalid_range",
            "from must not be after to",
        ));
    }
    if (to - from).num_days() + 1 > MAX_RANGE_DAYS {
        return Err(BadParameter::new(
            "range_too_large",
            format!("a report covers at most {MAX_RANGE_DAYS} days; split the range"),
        ));
    }
    Ok(())
}

/// A report as JSON: column names and rows of text values (money as exact decimals).
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportBody {
    pub report: String,
    pub from: String,
    pub to: String,
    pub columns: Vec<String>,
    #[schema(value_type = Vec<Vec<Option<String>>>)]
    pub rows: Vec<Vec<Option<String>>>,
}

fn body(request: &ReportRequest, table: ReportTable) -> ReportBody {
    ReportBody {
        report: request.report.name().to_owned(),
        from: request.from.to_string(),
        to: request.to.to_string(),
        columns: table.columns,
        rows: table.rows,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DashboardParams {
    /// First purchase date, inclusive (`2026-01-01`).
    #[param(required = true, format = Date)]
    pub from: Option<String>,
    /// Last purchase date, inclusive; at most 366 days after `from`.
    #[param(required = true, format = Date)]
    pub to: Option<String>,
}

impl DashboardParams {
    /// The query string of the dashboard: its date range.
    pub fn from_query(raw: Option<&str>) -> Result<(NaiveDate, NaiveDate), BadParameter> {
        let p: Self = params::parse(raw)?;
        let from = date(
            "from",
            p.from
                .as_deref()
                .ok_or_else(|| BadParameter::new("missing_parameter", "from is required"))?,
        )?;
        let to = date(
            "to",
            p.to.as_deref()
                .ok_or_else(|| BadParameter::new("missing_parameter", "to is required"))?,
        )?;
        range(from, to)?;
        Ok((from, to))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Dashboard {
    pub summary: ReportBody,
    pub daily: ReportBody,
    pub top_products: ReportBody,
}

/// The dashboard: sales summary, daily series and top products of a date range.
#[utoipa::path(
    get, path = "/analytics/{tenant_id}", tag = "analytics",
    params(("tenant_id" = String, Path, description = "Tenant id"), DashboardParams),
    responses(
        (status = 200, description = "The dashboard", body = Dashboard),
        (status = 400, description = "Bad range", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "Key of another tenant, or a search key", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn dashboard(
    auth: TenantAuth<AdminScope>,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Dashboard>, ApiError> {
    let (from, to) = DashboardParams::from_query(raw.as_deref())?;
    let requests: Vec<ReportRequest> = [Report::Summary, Report::Timeseries, Report::TopProducts]
        .into_iter()
        .map(|report| ReportRequest {
            report,
            from,
            to,
            limit: 10,
            granularity: Granularity::Day,
            filters: Filters::default(),
        })
        .collect();
    // The three reports of one dashboard are one report request for the tenant's limit.
    let tables = runner(&state)?.run(&auth.tenant, requests.clone()).await?;
    let mut bodies = requests
        .iter()
        .zip(tables)
        .map(|(request, table)| body(request, table));
    let (Some(summary), Some(daily), Some(top_products)) =
        (bodies.next(), bodies.next(), bodies.next())
    else {
        return Err(ApiError::Internal("the dashboard lost a report".into()));
    };
    Ok(Json(Dashboard {
        summary,
        daily,
        top_products,
    }))
}

/// Optional narrowing of a report.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportFilters {
    /// Only purchases in this status: `placed`, `paid`, `shipped`, `cancelled` or
    /// `refunded`. Revenue and rankings never count cancelled or refunded orders.
    #[schema(pattern = "^(placed|paid|shipped|cancelled|refunded)$")]
    pub status: Option<String>,
    /// Only purchases shipped to this country, as the purchases carry it (`DE`).
    pub country: Option<String>,
    /// Only lines of products in this category (the product's current category); for
    /// `top_products`, `top_products_by_units` and `by_category`.
    pub category: Option<String>,
}

/// A report request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportSpec {
    /// `summary`, `timeseries`, `top_products`, `top_products_by_units`, `by_status`,
    /// `by_country`, `by_payment_method`, `by_category` or `rfm`.
    #[schema(
        pattern = "^(summary|timeseries|top_products|top_products_by_units|by_status|by_country|by_payment_method|by_category|rfm|top_queries|no_result_queries|search_clicks|click_positions)$"
    )]
    pub report: String,
    /// First purchase date, inclusive (`2026-01-01`).
    #[schema(format = Date)]
    pub from: String,
    /// Last purchase date, inclusive; at most 366 days after `from`.
    #[schema(format = Date)]
    pub to: String,
    /// Rows of `top_products`, `top_products_by_units` and `rfm`, 1 to 1000 (default 10).
    #[schema(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    pub filters: Option<ReportFilters>,
    /// Period of `timeseries`: `day` (default), `week` (from Monday) or `month`.
    #[schema(pattern = "^(day|week|month)$")]
    pub granularity: Option<String>,
    /// `json` (default) or `csv` (a download).
    #[schema(pattern = "^(json|csv)$")]
    pub format: Option<String>,
}

impl ReportSpec {
    /// The report a request body asks for, checked as the API checks it: the request and
    /// whether the client wants CSV. `body` is what axum's JSON extractor made of the
    /// bytes (`Json::from_bytes` for the same bytes without a request around them).
    pub fn from_body(
        body: Result<Json<ReportSpec>, JsonRejection>,
    ) -> Result<(ReportRequest, bool), BadParameter> {
        let Json(spec) = body.map_err(|e| BadParameter::new("invalid_body", e.body_text()))?;
        spec.validate()
    }

    /// The checked request, and whether the client wants CSV.
    pub fn validate(self) -> Result<(ReportRequest, bool), BadParameter> {
        let report = Report::named(&self.report)?;
        let (from, to) = (date("from", &self.from)?, date("to", &self.to)?);
        range(from, to)?;
        let limit = self.limit.unwrap_or(10);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(BadParameter::new(
                "out_of_range",
                format!("limit must be between 1 and {MAX_LIMIT}, got {limit}"),
            ));
        }
        let csv = match self.format.as_deref() {
            None | Some("json") => false,
            Some("csv") => true,
            Some(other) => {
                return Err(BadParameter::new(
                    "invalid_parameter",
                    format!("format must be json or csv, got {other:?}"),
                ));
            }
        };
        let granularity = Granularity::named(self.granularity.as_deref())?;
        let raw = self.filters.unwrap_or_default();
        let filters =
            Filters::for_report(report, raw.status.as_deref(), raw.country, raw.category)?;
        Ok((
            ReportRequest {
                report,
                from,
                to,
                limit,
                granularity,
                filters,
            },
            csv,
        ))
    }
}

/// Runs one report of the catalog.
#[utoipa::path(
    post, path = "/analytics/{tenant_id}/report", tag = "analytics",
    params(("tenant_id" = String, Path, description = "Tenant id")),
    request_body = ReportSpec,
    responses(
        (status = 200, description = "The report as JSON, or as a CSV download (`format: csv`)", content(
            (ReportBody = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "Bad spec", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "Key of another tenant, or a search key", body = ErrorBody),
        (status = 503, description = "Analytics unavailable", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn report(
    auth: TenantAuth<AdminScope>,
    State(state): State<AppState>,
    spec: Result<Json<ReportSpec>, JsonRejection>,
) -> Result<Response, ApiError> {
    let (request, csv) = ReportSpec::from_body(spec)?;
    let (report, from, to) = (request.report, request.from, request.to);
    let table = runner(&state)?
        .run(&auth.tenant, vec![request.clone()])
        .await?
        .pop()
        .ok_or_else(|| ApiError::Internal("the report runner returned nothing".into()))?;
    if !csv {
        return Ok(Json(body(&request, table)).into_response());
    }
    let bytes = table
        .write_csv(Vec::new())
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let filename = format!("{}-{}-{}-{}.csv", auth.tenant, report.name(), from, to);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}
