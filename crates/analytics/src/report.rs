//! The report catalog: each report is a fixed SQL file under `athena/reports/`, with its
//! parameters in order. The tenant parameter always comes from the authenticated caller.

use chrono::NaiveDate;
use cloudpf_model::{PurchaseStatus, TenantId};

/// The views the reports read, in creation order: the current state of purchases line by
/// line (CSV), of products (JSON change log) and of purchases order by order (JSON), and
/// the line items that count as sales with their products' categories.
pub const VIEWS: [&str; 4] = [
    include_str!("../../../athena/views/purchase_lines.sql"),
    include_str!("../../../athena/views/products_current.sql"),
    include_str!("../../../athena/views/purchases_current.sql"),
    include_str!("../../../athena/views/sold_lines.sql"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Report {
    /// Orders, revenue, units, average order value, customers, cancelled/refunded counts.
    Summary,
    /// Orders and revenue per day, week or month ([`ReportRequest::granularity`]).
    Timeseries,
    /// Best-selling products by revenue.
    TopProducts,
    /// Best-selling products by units.
    TopProductsByUnits,
    /// Orders and order value per status.
    ByStatus,
    /// Orders and revenue per shipping country.
    ByCountry,
    /// Orders and revenue per payment method.
    ByPaymentMethod,
    /// Units, revenue and orders per product category.
    ByCategory,
    /// Customers with their recency, frequency and monetary scores and segment.
    Rfm,
    /// The most searched queries, with click-through (the search log).
    TopQueries,
    /// Searched queries that found nothing (the search log).
    NoResultQueries,
    /// Searches, click-through and average clicked position per day (the search log).
    SearchClicks,
    /// Clicks per result position (the search log).
    ClickPositions,
}

/// The period of a time series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Granularity {
    #[default]
    Day,
    /// Weeks starting on Monday.
    Week,
    Month,
}

/// A report request a client got wrong: a stable code (the API's error code) and a
/// message naming the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SpecError {
    pub code: &'static str,
    pub message: String,
}

impl SpecError {
    fn new(code: &'static str, message: String) -> Self {
        Self { code, message }
    }
}

/// The longest filter value accepted, in characters.
pub const MAX_FILTER_LEN: usize = 256;

impl Granularity {
    /// The granularity a client named; `day` when none.
    pub fn named(name: Option<&str>) -> Result<Self, SpecError> {
        match name {
            None => Ok(Self::default()),
            Some(g) => Self::parse(g).ok_or_else(|| {
                SpecError::new(
                    "invalid_parameter",
                    format!("granularity must be day, week or month, got {g:?}"),
                )
            }),
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "day" => Some(Self::Day),
            "week" => Some(Self::Week),
            "month" => Some(Self::Month),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
        }
    }
}

impl Report {
    pub const ALL: [Report; 13] = [
        Report::Summary,
        Report::Timeseries,
        Report::TopProducts,
        Report::TopProductsByUnits,
        Report::ByStatus,
        Report::ByCountry,
        Report::ByPaymentMethod,
        Report::ByCategory,
        Report::Rfm,
        Report::TopQueries,
        Report::NoResultQueries,
        Report::SearchClicks,
        Report::ClickPositions,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Report::Summary => "summary",
            Report::Timeseries => "timeseries",
            Report::TopProducts => "top_products",
            Report::TopProductsByUnits => "top_products_by_units",
            Report::ByStatus => "by_status",
            Report::ByCountry => "by_country",
            Report::ByPaymentMethod => "by_payment_method",
            Report::ByCategory => "by_category",
            Report::Rfm => "rfm",
            Report::TopQueries => "top_queries",
            Report::NoResultQueries => "no_result_queries",
            Report::SearchClicks => "search_clicks",
            Report::ClickPositions => "click_positions",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The report a client named, or an error listing the catalog.
    pub fn named(name: &str) -> Result<Self, SpecError> {
        Self::parse(name).ok_or_else(|| {
            let known: Vec<&str> = Self::ALL.iter().map(Report::name).collect();
            SpecError::new(
                "unknown_report",
                format!("report must be one of {}, got {name:?}", known.join(", ")),
            )
        })
    }

    /// The report's SQL, with `?` placeholders in Athena's style.
    pub fn sql(&self) -> &'static str {
        match self {
            Report::Summary => include_str!("../../../athena/reports/summary.sql"),
            Report::Timeseries => include_str!("../../../athena/reports/timeseries.sql"),
            Report::TopProducts => include_str!("../../../athena/reports/top_products.sql"),
            Report::TopProductsByUnits => {
                include_str!("../../../athena/reports/top_products_by_units.sql")
            }
            Report::ByStatus => include_str!("../../../athena/reports/by_status.sql"),
            Report::ByCountry => include_str!("../../../athena/reports/by_country.sql"),
            Report::ByPaymentMethod => {
                include_str!("../../../athena/reports/by_payment_method.sql")
            }
            Report::ByCategory => include_str!("../../../athena/reports/by_category.sql"),
            Report::Rfm => include_str!("../../../athena/reports/rfm.sql"),
            Report::TopQueries => include_str!("../../../athena/reports/top_queries.sql"),
            Report::NoResultQueries => {
                include_str!("../../../athena/reports/no_result_queries.sql")
            }
            Report::SearchClicks => include_str!("../../../athena/reports/search_clicks.sql"),
            Report::ClickPositions => {
                include_str!("../../../athena/reports/click_positions.sql")
            }
        }
    }

    /// What the report's placeholders stand for, in order.
    pub fn slots(&self) -> &'static [Slot] {
        use Slot::*;
        match self {
            Report::Summary | Report::ByStatus | Report::ByCountry | Report::ByPaymentMethod => {
                &[Tenant, From, To, Status, Country]
            }
            Report::Timeseries => &[Tenant, From, To, Status, Country, Granularity],
            Report::TopProducts | Report::TopProductsByUnits => {
                &[Tenant, From, To, Status, Country, Category, Limit]
            }
            Report::ByCategory => &[Tenant, From, To, Status, Country, Category],
            Report::Rfm => &[Tenant, From, To, Status, Country, Limit],
            Report::TopQueries | Report::NoResultQueries | Report::ClickPositions => {
                &[Tenant, From, To, Limit]
            }
            Report::SearchClicks => &[Tenant, From, To],
        }
    }

    /// Whether the report takes `filter` (the sales reports take status and country,
    /// those over product lines a category too; the search log's reports none).
    pub fn accepts(&self, filter: Slot) -> bool {
        self.slots().contains(&filter)
    }

    /// Whether `limit` bounds the report's rows.
    pub fn is_ranking(&self) -> bool {
        self.accepts(Slot::Limit)
    }
}

/// A placeholder of a report's SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The caller's tenant, always from the authenticated key.
    Tenant,
    From,
    To,
    /// Purchase status filter; empty for none.
    Status,
    /// Shipping country filter; empty for none.
    Country,
    /// Product category filter; empty for none.
    Category,
    Limit,
    Granularity,
}

/// Optional narrowing of a report; `None` is no filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    pub status: Option<PurchaseStatus>,
    /// Shipping country as the purchases carry it (e.g. `DE`).
    pub country: Option<String>,
    /// Product category as the catalog carries it.
    pub category: Option<String>,
}

fn filter_text(name: &str, value: Option<String>) -> Result<Option<String>, SpecError> {
    let Some(value) = value else {
        return Ok(None);
    };
    if value.is_empty() || value.chars().count() > MAX_FILTER_LEN {
        return Err(SpecError::new(
            "invalid_filter",
            format!("the {name} filter must be 1 to {MAX_FILTER_LEN} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(SpecError::new(
            "invalid_filter",
            format!("the {name} filter must not contain control characters"),
        ));
    }
    Ok(Some(value))
}

impl Filters {
    /// The filters a client gave for `report`: a known status, country and category text
    /// of 1 to [`MAX_FILTER_LEN`] printable characters, and a category only for the
    /// reports over product lines.
    pub fn for_report(
        report: Report,
        status: Option<&str>,
        country: Option<String>,
        category: Option<String>,
    ) -> Result<Self, SpecError> {
        let status = match status {
            None => None,
            Some(s) => Some(PurchaseStatus::parse(s).ok_or_else(|| {
                let known: Vec<&str> = PurchaseStatus::ALL.iter().map(|s| s.as_str()).collect();
                SpecError::new(
                    "invalid_filter",
                    format!("unknown status {s:?}: must be one of {}", known.join(", ")),
                )
            })?),
        };
        if (status.is_some() || country.is_some()) && !report.accepts(Slot::Status) {
            return Err(SpecError::new(
                "invalid_filter",
                format!(
                    "{} is a report of the search log, which has no status or country",
                    report.name()
                ),
            ));
        }
        let category = filter_text("category", category)?;
        if category.is_some() && !report.accepts(Slot::Category) {
            let takes: Vec<&str> = Report::ALL
                .iter()
                .filter(|r| r.accepts(Slot::Category))
                .map(Report::name)
                .collect();
            return Err(SpecError::new(
                "invalid_filter",
                format!(
                    "a category filter applies to line-level reports only ({}), not to {}",
                    takes.join(", "),
                    report.name()
                ),
            ));
        }
        Ok(Self {
            status,
            country: filter_text("country", country)?,
            category,
        })
    }
}

/// A bound parameter value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    Text(String),
    Int(i64),
}

/// A validated request: a report over purchase dates `from..=to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRequest {
    pub report: Report,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Rows of ranking reports (top products).
    pub limit: u32,
    /// Period of the time series.
    pub granularity: Granularity,
    pub filters: Filters,
}

impl ReportRequest {
    /// The parameters of the report's SQL, in placeholder order.
    pub fn params(&self, tenant: &TenantId) -> Vec<Param> {
        let date = |d: NaiveDate| Param::Text(d.format("%Y-%m-%d").to_string());
        let filter = |f: Option<&str>| Param::Text(f.unwrap_or_default().to_owned());
        self.report
            .slots()
            .iter()
            .map(|slot| match slot {
                Slot::Tenant => Param::Text(tenant.to_string()),
                Slot::From => date(self.from),
                Slot::To => date(self.to),
                Slot::Status => filter(self.filters.status.as_ref().map(PurchaseStatus::as_str)),
                Slot::Country => filter(self.filters.country.as_deref()),
                Slot::Category => filter(self.filters.category.as_deref()),
                Slot::Limit => Param::Int(i64::from(self.limit)),
                Slot::Granularity => Param::Text(self.granularity.as_str().to_owned()),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_report_binds_exactly_its_placeholders() {
        let tenant = TenantId::parse("acme").unwrap();
        for report in Report::ALL {
            let request = ReportRequest {
                report,
                from: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
                to: NaiveDate::from_ymd_opt(2025, 1, 31).unwrap(),
                limit: 10,
                granularity: Granularity::Week,
                filters: Filters::default(),
            };
            let placeholders = crate::dialect::numbered_placeholders(report.sql())
                .matches('$')
                .count();
            assert_eq!(
                placeholders,
                request.params(&tenant).len(),
                "{}",
                report.name()
            );
            assert_eq!(Report::parse(report.name()), Some(report));
        }
    }
}
