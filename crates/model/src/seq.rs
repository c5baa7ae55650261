//! Stream sequence numbers: the version of every document and lake row.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The most digits a DynamoDB Streams sequence number has.
pub const SEQ_MAX_DIGITS: usize = 40;

/// A DynamoDB Streams sequence number: up to 40 decimal digits, ordered numerically.
/// Within a shard it grows with every change, which is what makes writes idempotent:
/// a change older than what an index holds for a key is ignored.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SeqNo(String);

impl SeqNo {
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty()
            || text.len() > SEQ_MAX_DIGITS
            || !text.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(format!(
                "sequence number {text:?} is not 1 to {SEQ_MAX_DIGITS} decimal digits"
            ));
        }
        let trimmed = text.trim_start_matches('0');
        Ok(Self(if trimmed.is_empty() {
            "0".to_owned()
        } else {
            trimmed.to_owned()
        }))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Zero-padded to 40 digits, so byte order equals numeric order (index terms, names).
    pub fn padded(&self) -> String {
        format!("{:0>width$}", self.0, width = SEQ_MAX_DIGITS)
    }
}

impl Ord for SeqNo {
    fn cmp(&self, other: &Self) -> Ordering {
        // Both are free of leading zeros, so the longer one is larger.
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for SeqNo {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for SeqNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SeqNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SeqNo({})", self.0)
    }
}

impl Serialize for SeqNo {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SeqNo {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        SeqNo::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn longer_sequence_numbers_are_newer() {
        let a = SeqNo::parse("999").unwrap();
        let b = SeqNo::parse("1000").unwrap();
        assert!(a < b);
        assert!(SeqNo::parse("0001000").unwrap() == b);
    }

    #[test]
    fn non_digits_and_overlong_numbers_are_rejected() {
        for bad in ["", "12a", "-1", &"1".repeat(41)] {
            assert!(SeqNo::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn order_matches_numeric_order(a in any::<u128>(), b in any::<u128>()) {
            let (x, y) = (SeqNo::parse(&a.to_string()).unwrap(), SeqNo::parse(&b.to_string()).unwrap());
            prop_assert_eq!(x.cmp(&y), a.cmp(&b));
            prop_assert_eq!(x.padded().cmp(&y.padded()), a.cmp(&b));
        }
    }
}
