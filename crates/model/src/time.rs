//! Timestamps: always UTC, written as RFC 3339.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A UTC instant. Accepts any RFC 3339 offset on input and normalises to UTC, so
/// partition dates and comparisons never depend on the writer's time zone.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

/// The years a timestamp may fall in, in UTC: the four-digit years that RFC 3339 text
/// and a `dt=YYYY-MM-DD` lake partition can write. `9999-12-31T23:00:00-05:00` is valid
/// RFC 3339 yet falls in the year 10000 in UTC, whose partition would be `dt=+10000-…`,
/// an object key no store accepts.
pub const YEARS: std::ops::RangeInclusive<i32> = 0..=9999;

impl Timestamp {
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = DateTime::parse_from_rfc3339(text)
            .map_err(|e| format!("{text:?} is not an RFC 3339 timestamp: {e}"))?;
        Self::checked_from_utc(t.with_timezone(&Utc)).map_err(|e| format!("{text:?} {e}"))
    }

    /// The instant, if its UTC year is in [`YEARS`]; else why not.
    pub fn checked_from_utc(t: DateTime<Utc>) -> Result<Self, String> {
        if YEARS.contains(&t.year()) {
            Ok(Self(t))
        } else {
            Err(format!(
                "is in the year {} in UTC, outside {:04} to {:04}",
                t.year(),
                YEARS.start(),
                YEARS.end()
            ))
        }
    }

    /// The current time.
    pub fn now() -> Self {
        Self::from_utc(Utc::now())
    }

    /// An instant known to be in range (a clock reading, a parsed or shifted timestamp).
    pub fn from_utc(t: DateTime<Utc>) -> Self {
        Self(t)
    }

    pub fn utc(&self) -> DateTime<Utc> {
        self.0
    }

    /// The UTC calendar date: the `dt=` partition of lake objects.
    pub fn date(&self) -> NaiveDate {
        self.0.date_naive()
    }

    pub fn to_rfc3339(&self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({})", self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Timestamp::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_normalised_to_utc() {
        let t = Timestamp::parse("2026-03-01T01:30:00+02:00").unwrap();
        assert_eq!(t.to_string(), "2026-02-28T23:30:00Z");
        assert_eq!(t.date().to_string(), "2026-02-28");
    }

    #[test]
    fn issue_10_instants_outside_four_digit_utc_years_are_rejected() {
        for bad in ["9999-12-31T23:00:00-05:00", "0000-01-01T00:30:00+01:00"] {
            let err = Timestamp::parse(bad).unwrap_err();
            assert!(err.contains("outside 0000 to 9999"), "{bad}: {err}");
        }
        let last = Timestamp::parse("9999-12-31T23:59:59Z").unwrap();
        assert_eq!(last.date().to_string(), "9999-12-31");
        assert_eq!(Timestamp::parse(&last.to_rfc3339()).unwrap(), last);
        let far = DateTime::from_timestamp(399_999_999_999, 0).unwrap();
        assert!(Timestamp::checked_from_utc(far).is_err());
    }

    #[test]
    fn non_rfc3339_text_is_rejected() {
        for bad in [
            "2026-03-01",
            "yesterday",
            "1700000000",
            "2026-03-01 10:00:00",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
    }
}
