//! Tenant sales reports over the lake. One catalog of reviewed SQL (the files under
//! `athena/`, the same text on every engine), one [`AnalyticsEngine`] trait, and the
//! embedded DataFusion engine over the local lake directory.
//!
//! No client SQL ever runs: a request names a report and its range; every value is bound
//! as a parameter, and the tenant is always the caller's.

#[cfg(feature = "engines")]
pub mod athena;
pub mod dialect;
#[cfg(feature = "engines")]
pub mod embedded;
pub mod engine;
pub mod report;

#[cfg(feature = "engines")]
pub use athena::{AthenaConfig, AthenaEngine};
#[cfg(feature = "engines")]
pub use embedded::{DataFusionEngine, S3Lake};
pub use engine::{AnalyticsEngine, AnalyticsError, ReportTable};
pub use report::{
    Filters, Granularity, MAX_FILTER_LEN, Param, Report, ReportRequest, Slot, SpecError,
};
