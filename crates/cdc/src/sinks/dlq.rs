//! Dead letters: one JSON object per rejected record, with the reason, under
//! `dlq/<table>/<stream label>/`. Keyed by stream and sequence number, so a replayed batch
//! rewrites the same files, and a table's new stream (whose sequence numbers may repeat
//! the old one's) never overwrites the old stream's letters.

use std::sync::Arc;

use cloudpf_lake::{ObjectKey, ObjectSink, SinkError};
use serde::Serialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

/// The longest stream label kept in a key, in bytes.
const MAX_LABEL_LEN: usize = 64;

/// The stream's label, the last path segment of its ARN
/// (`…:table/purchases/stream/2026-01-01T00:00:00.000` → `2026-01-01T00-00-00.000`), as a
/// key segment: characters other than `A-Za-z0-9._-` become `-`, at most 64 bytes, and
/// `unknown-stream` when nothing is left.
pub fn stream_label(arn: &str) -> String {
    let last = arn.rsplit('/').next().unwrap_or_default();
    let label: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(MAX_LABEL_LEN)
        .collect();
    if label.is_empty() || label.bytes().all(|b| b == b'.') {
        "unknown-stream".to_owned()
    } else {
        label
    }
}

#[derive(Debug, Serialize)]
pub struct DeadLetter<'a> {
    pub table: &'a str,
    pub reason: &'a str,
    pub sequence_number: Option<&'a str>,
    /// The record's JSON exactly as it arrived.
    pub record: &'a RawValue,
}

#[derive(Debug, Clone)]
pub struct DeadLetters {
    sink: Arc<dyn ObjectSink>,
}

impl DeadLetters {
    pub fn new(sink: Arc<dyn ObjectSink>) -> Self {
        Self { sink }
    }

    /// Where the dead letter of a record goes: under the label of its stream (see
    /// [`stream_label`]), named by a usable sequence number, or else (the record is too
    /// broken to have one) by a hash of the record.
    pub fn key_for(
        table: &str,
        stream: &str,
        sequence_number: Option<&str>,
        record: &RawValue,
    ) -> Result<ObjectKey, SinkError> {
        let name = match sequence_number
            .filter(|s| !s.is_empty() && s.len() <= 40 && s.bytes().all(|b| b.is_ascii_digit()))
        {
            Some(seq) => seq.to_owned(),
            None => {
                let digest = Sha256::digest(record.get().as_bytes());
                format!("unsequenced-{}", hex::encode(&digest[..16]))
            }
        };
        let label = stream_label(stream);
        Ok(ObjectKey::parse(&format!(
            "dlq/{table}/{label}/{name}.json"
        ))?)
    }

    /// Writes the letter of a record of `stream` (its event source ARN).
    pub async fn write(
        &self,
        stream: &str,
        letter: &DeadLetter<'_>,
    ) -> Result<ObjectKey, SinkError> {
        let key = Self::key_for(letter.table, stream, letter.sequence_number, letter.record)?;
        let mut body =
            serde_json::to_vec_pretty(letter).map_err(|e| SinkError::Unavailable(e.to_string()))?;
        body.push(b'\n');
        self.sink.put(&key, body).await?;
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_labels_are_the_arns_last_segment_made_safe_for_a_key() {
        assert_eq!(
            stream_label(
                "arn:aws:dynamodb:eu-west-1:1:table/purchases/stream/2026-01-01T00:00:00.000"
            ),
            "2026-01-01T00-00-00.000"
        );
        for broken in ["", "arn:x/", "..", "a/."] {
            assert_eq!(stream_label(broken), "unknown-stream", "{broken:?}");
        }
        assert_eq!(stream_label("unknown-stream"), "unknown-stream");
        assert_eq!(stream_label(&"x".repeat(100)).len(), MAX_LABEL_LEN);
        let key =
            DeadLetters::key_for("purchases", "t/s/a b:c", Some("12"), RawValue::NULL).unwrap();
        assert_eq!(key.as_str(), "dlq/purchases/a-b-c/12.json");
    }
}
