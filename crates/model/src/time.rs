//! Timestamps: always UTC, written as RFC 3339.

use std::fmt;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A UTC instant. Accepts any RFC 3339 offset on input and normalises to UTC, so
/// partition dates and comparisons never depend on the writer's time zone.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    pub fn parse(text: &str) -> Result<Self, String> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| Self(t.with_timezone(&Utc)))
            .map_err(|e| format!("{text:?} is not an RFC 3339 timestamp: {e}"))
    }

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
