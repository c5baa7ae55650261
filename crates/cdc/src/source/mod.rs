//! Where batches come from: a Lambda `DynamoDbEvent` (or its JSON), split into records
//! that each keep their own text, so that a record nothing can parse still reaches the
//! dead letters exactly as it arrived, with its reason, instead of failing the whole
//! invocation.
//!
//! A record is read lazily: the batch reads only what every stage needs (event name,
//! sequence number, stream), and [`crate::transform`] reads the images straight from the
//! record's text into the typed model. Parsing a whole event into a JSON tree and then
//! into the event type's maps of attribute values was a third of a batch's CPU time
//! (issue #15).

pub mod events;

use std::borrow::Cow;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;
use serde::de::{self, Deserializer};
use serde_json::Value;
use serde_json::value::RawValue;

/// One batch of stream records, in stream order.
#[derive(Debug, Clone)]
pub struct Batch {
    pub records: Vec<Incoming>,
}

#[derive(Debug, Clone)]
pub enum Incoming {
    Record(Box<Record>),
    /// JSON that is not a DynamoDB stream record; kept whole for the dead letters, with
    /// its stream and sequence number where it has them.
    Undecodable {
        raw: Box<RawValue>,
        reason: String,
        source: Option<String>,
        sequence_number: Option<String>,
    },
}

/// A DynamoDB stream record: its JSON as it arrived, and the fields a batch needs before
/// any record is decoded.
#[derive(Debug, Clone)]
pub struct Record {
    raw: Box<RawValue>,
    event_source_arn: Option<String>,
    sequence_number: Option<String>,
}

/// The parts of a stream record the pipeline reads, borrowed from its text; images stay
/// unparsed until [`crate::transform`] decodes them into the table's type.
#[derive(Debug, Deserialize)]
pub struct RecordView<'a> {
    #[serde(rename = "eventName", borrow)]
    pub event_name: Cow<'a, str>,
    #[serde(rename = "eventSourceARN", default, borrow)]
    pub event_source_arn: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub dynamodb: StreamView<'a>,
}

/// The `dynamodb` member of a stream record.
#[derive(Debug, Deserialize)]
pub struct StreamView<'a> {
    /// When the change was made; absent means the epoch, as the Lambda event type reads it.
    #[serde(
        rename = "ApproximateCreationDateTime",
        default = "epoch",
        deserialize_with = "seconds"
    )]
    pub approximate_creation_date_time: DateTime<Utc>,
    #[serde(rename = "Keys", default, borrow)]
    pub keys: Option<&'a RawValue>,
    #[serde(rename = "NewImage", default, borrow)]
    pub new_image: Option<&'a RawValue>,
    #[serde(rename = "OldImage", default, borrow)]
    pub old_image: Option<&'a RawValue>,
    #[serde(rename = "SequenceNumber", default, borrow)]
    pub sequence_number: Option<Cow<'a, str>>,
}

fn epoch() -> DateTime<Utc> {
    DateTime::UNIX_EPOCH
}

/// Seconds since the epoch, whole or with a fraction (DynamoDB writes milliseconds).
fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let secs = f64::deserialize(d)?;
    let whole = secs.floor();
    // Rounded to the microsecond: the fraction of a float is never exact.
    let micros = ((secs - whole) * 1e6).round().min(999_999.0);
    if !whole.is_finite() || whole.abs() > 1e15 {
        return Err(de::Error::custom(format!("{secs} is not a time")));
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Utc.timestamp_opt(whole as i64, micros as u32 * 1000)
        .single()
        .ok_or_else(|| de::Error::custom(format!("{secs} is not a time")))
}

/// The reason given for a record that does not parse as one.
fn not_a_record(e: serde_json::Error) -> String {
    format!("not a DynamoDB stream record: {e}")
}

fn view_of(raw: &RawValue) -> Result<RecordView<'_>, serde_json::Error> {
    serde_json::from_str(raw.get())
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("event is not JSON: {0}")]
    NotJson(String),
    #[error("event has no \"Records\" array")]
    NoRecords,
}

#[derive(Deserialize)]
struct EventText<'a> {
    #[serde(rename = "Records", borrow)]
    records: Option<Vec<&'a RawValue>>,
}

impl Batch {
    /// From the Lambda event type (the poller and tests build events with it).
    pub fn from_event(event: Event) -> Self {
        Self {
            records: event
                .records
                .iter()
                .map(Incoming::from_event_record)
                .collect(),
        }
    }

    /// From the JSON of a `DynamoDbEvent` as a tree.
    pub fn from_json(value: Value) -> Result<Self, SourceError> {
        let text =
            serde_json::to_string(&value).map_err(|e| SourceError::NotJson(e.to_string()))?;
        Self::from_slice(text.as_bytes())
    }

    /// From the JSON of a `DynamoDbEvent` (a Lambda invocation, a saved batch).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, SourceError> {
        let event: EventText<'_> = match serde_json::from_slice(bytes) {
            Ok(event) => event,
            // Valid JSON of another shape has no records; anything else is not JSON.
            Err(e) if e.is_data() => return Err(SourceError::NoRecords),
            Err(e) => return Err(SourceError::NotJson(e.to_string())),
        };
        let records = event.records.ok_or(SourceError::NoRecords)?;
        Ok(Self {
            records: records
                .into_iter()
                .map(|raw| Incoming::from_raw(raw.to_owned()))
                .collect(),
        })
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
    /// One stream record's JSON: a record, or (with the reason) one that is not.
    pub fn from_raw(raw: Box<RawValue>) -> Self {
        match view_of(&raw) {
            Ok(view) => {
                let event_source_arn = view.event_source_arn.map(Cow::into_owned);
                let sequence_number = view.dynamodb.sequence_number.map(Cow::into_owned);
                Incoming::Record(Box::new(Record {
                    raw,
                    event_source_arn,
                    sequence_number,
                }))
            }
            Err(e) => {
                // Whatever of the record is readable names it in the dead letters.
                let value: Value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
                let text = |pointer: &str| {
                    value
                        .pointer(pointer)
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                };
                Incoming::Undecodable {
                    reason: not_a_record(e),
                    source: text("/eventSourceARN"),
                    sequence_number: text("/dynamodb/SequenceNumber"),
                    raw,
                }
            }
        }
    }

    fn from_event_record(record: &EventRecord) -> Self {
        match serde_json::value::to_raw_value(record) {
            Ok(raw) => Self::from_raw(raw),
            Err(e) => Incoming::Undecodable {
                reason: not_a_record(e),
                raw: RawValue::NULL.to_owned(),
                source: None,
                sequence_number: None,
            },
        }
    }

    /// The stream the record came from (`eventSourceARN`), if it says.
    pub fn source(&self) -> Option<&str> {
        match self {
            Incoming::Record(r) => r.event_source_arn.as_deref(),
            Incoming::Undecodable { source, .. } => source.as_deref(),
        }
    }

    /// The record's sequence number as written, if it has one.
    pub fn sequence_number(&self) -> Option<&str> {
        match self {
            Incoming::Record(r) => r.sequence_number.as_deref(),
            Incoming::Undecodable {
                sequence_number, ..
            } => sequence_number.as_deref(),
        }
    }

    /// The record's JSON exactly as it arrived.
    pub fn raw(&self) -> &RawValue {
        match self {
            Incoming::Record(r) => &r.raw,
            Incoming::Undecodable { raw, .. } => raw,
        }
    }
}

impl Record {
    /// The fields of the record, borrowed from its text (which the batch already read
    /// with this view when it accepted the record).
    pub fn view(&self) -> Result<RecordView<'_>, String> {
        view_of(&self.raw).map_err(not_a_record)
    }

    pub fn sequence_number(&self) -> Option<&str> {
        self.sequence_number.as_deref()
    }
}
