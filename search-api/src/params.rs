//! Query-string parameters: parsed by hand from strings so that every mistake gets its
//! own JSON error naming the parameter, not a framework's plain-text rejection.

use chrono::{NaiveDate, NaiveTime, TimeZone, Utc};
use cloudpf_model::{Money, PurchaseStatus, Timestamp};
use cloudpf_search::ProductSort;
use serde::de::DeserializeOwned;

use crate::config::Limits;
use crate::error::BadParameter;

/// Parses the query string into `T` (a struct of optional strings that refuses unknown
/// fields), so a misspelt parameter is an error rather than silently ignored.
pub fn parse<T: DeserializeOwned>(raw: Option<&str>) -> Result<T, BadParameter> {
    let raw = raw.unwrap_or("");
    // The form decoder replaces bytes that are not UTF-8 with U+FFFD, which analyzes to no
    // word at all: `q=%FF` would browse the whole catalog instead of being refused.
    if percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .is_err()
    {
        return Err(BadParameter::new(
            "invalid_parameter",
            "the query string is not valid UTF-8 once percent-decoded",
        ));
    }
    serde_urlencoded::from_str(raw).map_err(|e| {
        let msg = e.to_string();
        let code = if msg.contains("unknown field") {
            "unknown_parameter"
        } else {
            "invalid_parameter"
        };
        BadParameter::new(code, msg)
    })
}

/// The search text: bounded in length and in words. `required` makes a missing or blank
/// `q` an error.
pub fn text(q: Option<String>, limits: &Limits, required: bool) -> Result<String, BadParameter> {
    let q = q.unwrap_or_default();
    let chars = q.chars().count();
    if chars > limits.max_query_chars {
        return Err(BadParameter::new(
            "query_too_long",
            format!(
                "q is {chars} characters long; at most {} are allowed",
                limits.max_query_chars
            ),
        ));
    }
    let words = cloudpf_search::query::words(&q).count();
    if words > limits.max_query_terms {
        return Err(BadParameter::new(
            "too_many_terms",
            format!(
                "q has {words} words; at most {} are allowed",
                limits.max_query_terms
            ),
        ));
    }
    if required && q.trim().is_empty() {
        return Err(BadParameter::new("missing_parameter", "q is required"));
    }
    Ok(q.trim().to_owned())
}

/// A page of results: its `number` (from 1) and `size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub number: usize,
    pub size: usize,
}

impl Page {
    /// Results before this page.
    pub fn offset(&self) -> usize {
        (self.number - 1) * self.size
    }
}

/// The page asked for by `page` and `size`, checked against `max_size` and the result
/// window.
pub fn page(
    page: Option<String>,
    size: Option<String>,
    default_size: usize,
    max_size: usize,
    limits: &Limits,
) -> Result<Page, BadParameter> {
    let number = |name: &str,
                  v: Option<String>,
                  default: usize,
                  max: usize|
     -> Result<usize, BadParameter> {
        let Some(v) = v else { return Ok(default) };
        let n: usize = v.parse().map_err(|_| {
            BadParameter::new(
                "invalid_number",
                format!("{name} must be a whole number, got {v:?}"),
            )
        })?;
        if n == 0 || n > max {
            return Err(BadParameter::new(
                "out_of_range",
                format!("{name} must be between 1 and {max}, got {n}"),
            ));
        }
        Ok(n)
    };
    let size = number("size", size, default_size, max_size)?;
    let page = number("page", page, 1, usize::MAX)?;
    let window = page.saturating_mul(size);
    if window > limits.max_result_window {
        return Err(BadParameter::new(
            "out_of_range",
            format!(
                "page * size must not exceed {}; narrow the search instead",
                limits.max_result_window
            ),
        ));
    }
    Ok(Page { number: page, size })
}

pub fn money(name: &str, v: Option<String>) -> Result<Option<Money>, BadParameter> {
    v.map(|v| {
        Money::parse(&v)
            .ok()
            .filter(|m| !m.is_negative())
            .ok_or_else(|| {
                BadParameter::new(
                    "invalid_number",
                    format!("{name} must be a non-negative decimal amount, got {v:?}"),
                )
            })
    })
    .transpose()
}

pub fn money_range(
    (lo_name, lo): (&str, Option<String>),
    (hi_name, hi): (&str, Option<String>),
) -> Result<(Option<Money>, Option<Money>), BadParameter> {
    let (lo, hi) = (money(lo_name, lo)?, money(hi_name, hi)?);
    if let (Some(l), Some(h)) = (lo, hi)
        && l > h
    {
        return Err(BadParameter::new(
            "invalid_range",
            format!("{lo_name} must not exceed {hi_name}"),
        ));
    }
    Ok((lo, hi))
}

pub fn boolean(name: &str, v: Option<String>) -> Result<Option<bool>, BadParameter> {
    v.map(|v| match v.as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(BadParameter::new(
            "invalid_parameter",
            format!("{name} must be true or false, got {v:?}"),
        )),
    })
    .transpose()
}

/// An RFC 3339 instant, or a UTC calendar date meaning its first (`from`) or last
/// (`to`) microsecond.
pub fn date(
    name: &str,
    v: Option<String>,
    end_of_day: bool,
) -> Result<Option<Timestamp>, BadParameter> {
    v.map(|v| {
        if let Ok(t) = Timestamp::parse(&v) {
            return Ok(t);
        }
        let d = NaiveDate::parse_from_str(&v, "%Y-%m-%d").map_err(|_| {
            BadParameter::new(
                "invalid_date",
                format!("{name} must be a date (2026-01-31) or an RFC 3339 time, got {v:?}"),
            )
        })?;
        let time = if end_of_day {
            NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999).unwrap_or(NaiveTime::MIN)
        } else {
            NaiveTime::MIN
        };
        Ok(Timestamp::from_utc(
            Utc.from_utc_datetime(&d.and_time(time)),
        ))
    })
    .transpose()
}

pub fn date_range(
    from: Option<String>,
    to: Option<String>,
) -> Result<(Option<Timestamp>, Option<Timestamp>), BadParameter> {
    let (from, to) = (date("from", from, false)?, date("to", to, true)?);
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(BadParameter::new(
            "invalid_range",
            "from must not be after to",
        ));
    }
    Ok((from, to))
}

pub fn sort(v: Option<String>) -> Result<ProductSort, BadParameter> {
    match v {
        None => Ok(ProductSort::Relevance),
        Some(v) => ProductSort::parse(&v).ok_or_else(|| {
            BadParameter::new(
                "unknown_sort",
                format!("sort must be relevance, price_asc, price_desc or newest, got {v:?}"),
            )
        }),
    }
}

pub fn status(v: Option<String>) -> Result<Option<PurchaseStatus>, BadParameter> {
    v.map(|v| {
        PurchaseStatus::parse(&v).ok_or_else(|| {
            BadParameter::new(
                "invalid_parameter",
                format!(
                    "status must be one of placed, paid, shipped, cancelled, refunded, got {v:?}"
                ),
            )
        })
    })
    .transpose()
}

/// A short identifier filter (`category`, `customer_id`, …): non-empty, bounded.
pub fn ident(name: &str, v: Option<String>) -> Result<Option<String>, BadParameter> {
    v.map(|v| {
        if v.is_empty() || v.len() > 256 || v.chars().any(char::is_control) {
            Err(BadParameter::new(
                "invalid_parameter",
                format!("{name} must be 1 to 256 printable characters"),
            ))
        } else {
            Ok(v)
        }
    })
    .transpose()
}
