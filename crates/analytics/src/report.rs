//! The report catalog: each report is a fixed SQL file under `athena/reports/`, with its
//! parameters in order. The tenant parameter always comes from the authenticated caller.

use chrono::NaiveDate;
use cloudpf_model::TenantId;

/// The view every report reads: the current state of purchases, line by line.
pub const PURCHASE_LINES_VIEW: &str = include_str!("../../../athena/views/purchase_lines.sql");

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

impl Granularity {
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
    pub const ALL: [Report; 7] = [
        Report::Summary,
        Report::Timeseries,
        Report::TopProducts,
        Report::TopProductsByUnits,
        Report::ByStatus,
        Report::ByCountry,
        Report::ByPaymentMethod,
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
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == name)
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
        }
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
}

impl ReportRequest {
    /// The parameters of the report's SQL, in placeholder order.
    pub fn params(&self, tenant: &TenantId) -> Vec<Param> {
        let mut params = vec![
            Param::Text(tenant.to_string()),
            Param::Text(self.from.format("%Y-%m-%d").to_string()),
            Param::Text(self.to.format("%Y-%m-%d").to_string()),
        ];
        match self.report {
            Report::TopProducts | Report::TopProductsByUnits => {
                params.push(Param::Int(i64::from(self.limit)))
            }
            Report::Timeseries => params.push(Param::Text(self.granularity.as_str().to_owned())),
            _ => {}
        }
        params
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
