//! Builds DynamoDB stream events exactly as Lambda delivers them: used by `cloudpf demo`
//! to feed the real handlers, and by tests as fixtures.

use aws_lambda_events::event::dynamodb::{Event, EventRecord, StreamRecord, StreamViewType};
use chrono::{DateTime, Utc};
use cloudpf_model::Op;
pub use cloudpf_model::dynamo::{product_item, product_keys, purchase_item, purchase_keys};
use serde_dynamo::Item;

/// Emits the records of one stream shard with increasing sequence numbers.
#[derive(Debug, Clone)]
pub struct StreamWriter {
    arn: String,
    next_seq: u128,
    shard: u64,
}

impl StreamWriter {
    /// A stream of `table`; sequence numbers start like real ones (21 digits).
    pub fn new(table: &str) -> Self {
        Self {
            arn: format!(
                "arn:aws:dynamodb:us-east-1:000000000000:table/{table}/stream/2026-01-01T00:00:00.000"
            ),
            next_seq: 100_000_000_000_000_000_000,
            shard: 0,
        }
    }

    pub fn arn(&self) -> &str {
        &self.arn
    }

    /// The next record. Images are omitted where the operation has none.
    pub fn record(
        &mut self,
        op: Op,
        keys: Item,
        new_image: Option<Item>,
        old_image: Option<Item>,
        at: DateTime<Utc>,
    ) -> EventRecord {
        let seq = self.next_seq;
        self.next_seq += 100;
        self.shard += 1;
        let mut change = StreamRecord::default();
        change.approximate_creation_date_time = at;
        change.keys = keys;
        change.new_image = new_image.unwrap_or_default();
        change.old_image = old_image.unwrap_or_default();
        change.sequence_number = Some(seq.to_string());
        change.size_bytes = 100;
        change.stream_view_type = Some(StreamViewType::NewAndOldImages);
        let mut record = EventRecord::default();
        record.aws_region = "us-east-1".to_owned();
        record.change = change;
        record.event_id = format!("{:032x}", seq);
        record.event_name = op.as_str().to_owned();
        record.event_source = Some("aws:dynamodb".to_owned());
        record.event_version = Some("1.1".to_owned());
        record.event_source_arn = Some(self.arn.clone());
        record
    }
}

/// A Lambda `DynamoDbEvent` of the given records.
pub fn event(records: Vec<EventRecord>) -> Event {
    let mut e = Event::default();
    e.records = records;
    e
}
