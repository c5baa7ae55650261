//! Dead letters: one JSON object per rejected record, with the reason, under
//! `dlq/<table>/`. Keyed by sequence number, so a replayed batch rewrites the same files.

use std::sync::Arc;

use cloudpf_lake::{ObjectKey, ObjectSink, SinkError};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

#[derive(Debug, Serialize)]
pub struct DeadLetter<'a> {
    pub table: &'a str,
    pub reason: &'a str,
    pub sequence_number: Option<&'a str>,
    pub record: &'a Value,
}

#[derive(Debug, Clone)]
pub struct DeadLetters {
    sink: Arc<dyn ObjectSink>,
}

impl DeadLetters {
    pub fn new(sink: Arc<dyn ObjectSink>) -> Self {
        Self { sink }
    }

    /// Where the dead letter of a record goes. A usable sequence number names it; else
    /// (the record is too broken to have one) a hash of the record does.
    pub fn key_for(
        table: &str,
        sequence_number: Option<&str>,
        record: &Value,
    ) -> Result<ObjectKey, SinkError> {
        let name = match sequence_number
            .filter(|s| !s.is_empty() && s.len() <= 40 && s.bytes().all(|b| b.is_ascii_digit()))
        {
            Some(seq) => seq.to_owned(),
            None => {
                let digest = Sha256::digest(record.to_string().as_bytes());
                format!("unsequenced-{}", hex::encode(&digest[..16]))
            }
        };
        Ok(ObjectKey::parse(&format!("dlq/{table}/{name}.json"))?)
    }

    pub async fn write(&self, letter: &DeadLetter<'_>) -> Result<ObjectKey, SinkError> {
        let key = Self::key_for(letter.table, letter.sequence_number, letter.record)?;
        let mut body =
            serde_json::to_vec_pretty(letter).map_err(|e| SinkError::Unavailable(e.to_string()))?;
        body.push(b'\n');
        self.sink.put(&key, body).await?;
        Ok(key)
    }
}
