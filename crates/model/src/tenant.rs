//! The tenant id: the one validated type through which a tenant name may become a
//! directory, an index name, an object-store prefix or a SQL literal.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest tenant id accepted. 63 keeps ids DNS-label sized, so that derived names
/// (`cloudpf-<tenant>-products-v1`, `tenant_id=<tenant>/`) stay far inside every
/// backend's limits.
pub const MAX_TENANT_ID_LEN: usize = 63;

/// A tenant id: 1 to 63 characters of `a-z`, `0-9` and `-`, starting and ending with a
/// letter or digit. Nothing else can be constructed, so a value of this type is safe to
/// put in a path, an index name, an S3 prefix or a SQL string literal.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TenantId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantIdError {
    #[error("tenant id is empty")]
    Empty,
    #[error("tenant id is longer than {MAX_TENANT_ID_LEN} characters")]
    TooLong,
    #[error("tenant id may only contain lowercase letters, digits and '-' (found {0:?})")]
    InvalidChar(char),
    #[error("tenant id must start and end with a lowercase letter or digit")]
    BadEdge,
}

impl TenantId {
    pub fn parse(raw: &str) -> Result<Self, TenantIdError> {
        if raw.is_empty() {
            return Err(TenantIdError::Empty);
        }
        // Count chars, not bytes, so a long unicode id reports its first bad char below
        // rather than a misleading length.
        if let Some(bad) = raw
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(TenantIdError::InvalidChar(bad));
        }
        if raw.len() > MAX_TENANT_ID_LEN {
            return Err(TenantIdError::TooLong);
        }
        if raw.starts_with('-') || raw.ends_with('-') {
            return Err(TenantIdError::BadEdge);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for TenantId {
    type Err = TenantIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantId({})", self.0)
    }
}

impl AsRef<str> for TenantId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for TenantId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TenantId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_shop_names_are_accepted() {
        for ok in ["acme", "shop-42", "a", "0", &"a".repeat(63)] {
            assert_eq!(
                TenantId::parse(ok).map(|t| t.to_string()),
                Ok(ok.to_owned())
            );
        }
    }

    #[test]
    fn hostile_ids_never_become_tenant_ids() {
        let long = "a".repeat(64);
        for bad in [
            "",
            "../etc",
            "..",
            "%2e%2e",
            "a/b",
            "a\\b",
            "Acme",
            "ACME",
            "shop_1",
            "shop.1",
            "-shop",
            "shop-",
            "caf\u{e9}",
            "\u{0430}cme",
            "a b",
            "a\0b",
            &long,
        ] {
            assert!(TenantId::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert_eq!(
            TenantId::parse("Acme").unwrap_err().to_string(),
            "tenant id may only contain lowercase letters, digits and '-' (found 'A')"
        );
        assert_eq!(TenantId::parse("").unwrap_err(), TenantIdError::Empty);
        assert_eq!(
            TenantId::parse(&"a".repeat(64)).unwrap_err(),
            TenantIdError::TooLong
        );
    }

    proptest! {
        #[test]
        fn every_accepted_id_is_a_safe_path_segment(raw in "\\PC{0,80}") {
            if let Ok(t) = TenantId::parse(&raw) {
                let s = t.as_str();
                prop_assert!(!s.contains('/') && !s.contains('.') && !s.contains('%'));
                prop_assert!(s.len() <= MAX_TENANT_ID_LEN && !s.is_empty());
                prop_assert!(s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
            }
        }
    }
}
