//! Object sinks: somewhere to put whole objects under keys, atomically.

use std::fmt;

use async_trait::async_trait;

/// A relative object key such as `lake/purchases/csv/tenant_id=acme/dt=2026-11-23/x.csv.gz`.
/// Every segment is non-empty, is not `.` or `..`, and uses only `A-Za-z0-9=._-`, so a
/// key is as safe as a file path under the sink's root as it is as an S3 key.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid object key {0:?}")]
pub struct InvalidKey(pub String);

impl ObjectKey {
    pub fn parse(text: &str) -> Result<Self, InvalidKey> {
        let ok = !text.is_empty()
            && text.split('/').all(|seg| {
                !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && seg
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"=._-".contains(&b))
            });
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(InvalidKey(text.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectKey({})", self.0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Writing or reading failed; retrying may succeed. Never means data was accepted.
    #[error("object store unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    InvalidKey(#[from] InvalidKey),
}

impl SinkError {
    /// Whether the same call may succeed later (the store was down); a bad key never will.
    pub fn is_retryable(&self) -> bool {
        match self {
            SinkError::Unavailable(_) => true,
            SinkError::InvalidKey(_) => false,
        }
    }
}

/// Somewhere whole objects are written under keys. A `put` is atomic (a reader sees the
/// old object or the new one, never a part) and overwrites, so writing the same batch
/// twice leaves one object.
#[async_trait]
pub trait ObjectSink: Send + Sync + fmt::Debug {
    async fn put(&self, key: &ObjectKey, body: Vec<u8>) -> Result<(), SinkError>;

    async fn get(&self, key: &ObjectKey) -> Result<Option<Vec<u8>>, SinkError>;

    /// Keys that start with `prefix`, in byte order.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectKey>, SinkError>;

    /// Removes an object; removing one that does not exist succeeds (compaction may be
    /// run again after an interruption and remove what it had already removed).
    async fn delete(&self, key: &ObjectKey) -> Result<(), SinkError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_could_escape_the_root_are_refused() {
        for bad in [
            "", "/a", "a/", "a//b", "../x", "a/../b", "a/./b", "a b", "a\\b", "a%2e",
        ] {
            assert!(ObjectKey::parse(bad).is_err(), "{bad}");
        }
        assert!(
            ObjectKey::parse("lake/purchases/csv/tenant_id=a-1/dt=2026-01-02/x.csv.gz").is_ok()
        );
    }
}
