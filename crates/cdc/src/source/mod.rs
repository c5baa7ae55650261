//! Where batches come from: a Lambda `DynamoDbEvent` (or its JSON), decoded one record at
//! a time so that a record the event type cannot even parse still reaches the dead
//! letters with its reason instead of failing the whole invocation.

pub mod events;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use serde_json::Value;

/// One batch of stream records, in stream order.
#[derive(Debug, Clone)]
pub struct Batch {
    pub records: Vec<Incoming>,
}

#[derive(Debug, Clone)]
pub enum Incoming {
    Record(Box<EventRecord>),
    /// JSON that is not a DynamoDB stream record; kept whole for the dead letters.
    Undecodable {
        raw: Value,
        reason: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("event is not JSON: {0}")]
    NotJson(String),
    #[error("event has no \"Records\" array")]
    NoRecords,
}

impl Batch {
    pub fn from_event(event: Event) -> Self {
        Self {
            records: event
                .records
                .into_iter()
                .map(|r| Incoming::Record(Box::new(r)))
                .collect(),
        }
    }

    /// From the JSON of a `DynamoDbEvent` (a Lambda test event, a saved batch).
    pub fn from_json(value: Value) -> Result<Self, SourceError> {
        let Value::Object(mut obj) = value else {
            return Err(SourceError::NoRecords);
        };
        let Some(Value::Array(records)) = obj.remove("Records") else {
            return Err(SourceError::NoRecords);
        };
        let records = records
            .into_iter()
            .map(
                |raw| match serde_json::from_value::<EventRecord>(raw.clone()) {
                    Ok(r) => Incoming::Record(Box::new(r)),
                    Err(e) => Incoming::Undecodable {
                        raw,
                        reason: format!("not a DynamoDB stream record: {e}"),
                    },
                },
            )
            .collect();
        Ok(Self { records })
    }

    pub fn from_slice(bytes: &[u8]) -> Result<Self, SourceError> {
        let value =
            serde_json::from_slice(bytes).map_err(|e| SourceError::NotJson(e.to_string()))?;
        Self::from_json(value)
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The stream the batch came from (`eventSourceARN`), which names its lake objects.
    pub fn source(&self) -> &str {
        self.records
            .iter()
            .find_map(|r| match r {
                Incoming::Record(r) => r.event_source_arn.as_deref(),
                Incoming::Undecodable { .. } => None,
            })
            .unwrap_or("unknown-stream")
    }
}

impl Incoming {
    /// The stream the record came from (`eventSourceARN`), if it says.
    pub fn source(&self) -> Option<&str> {
        match self {
            Incoming::Record(r) => r.event_source_arn.as_deref(),
            Incoming::Undecodable { raw, .. } => raw.get("eventSourceARN").and_then(Value::as_str),
        }
    }

    /// The record's sequence number as written, if it has one.
    pub fn sequence_number(&self) -> Option<&str> {
        match self {
            Incoming::Record(r) => r.change.sequence_number.as_deref(),
            Incoming::Undecodable { raw, .. } => raw
                .pointer("/dynamodb/SequenceNumber")
                .and_then(Value::as_str),
        }
    }
}
