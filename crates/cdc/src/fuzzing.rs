//! The fuzz target's harness (`fuzz/fuzz_targets/stream_records.rs`), also called by the
//! replay test of the committed corpus (`tests/fuzz_corpus.rs`) so that `cargo test`
//! re-runs every seed and every past crash on stable: one code path for both.

use cloudpf_model::{Change, Document, Product, Purchase};

use crate::source::{Batch, Incoming, Record};
use crate::transform::decode;

/// What one input came to; the replay test checks the seeds still mean what they meant.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    /// Whether the bytes were an event at all (JSON with a `Records` array).
    pub event: bool,
    pub records: usize,
    pub products: usize,
    pub purchases: usize,
}

/// Arbitrary bytes as a Lambda DynamoDB event, through everything a handler does before
/// it writes: the event, each record as the products table and as the purchases table
/// would decode it, the sequence numbers and source it reports, an accepted change's lake
/// encodings (an encoding error would retry the batch forever) and a refused record's
/// JSON as its dead letter keeps it. Must never panic, whatever the bytes.
pub fn stream_records(data: &[u8]) -> Decoded {
    let Ok(batch) = Batch::from_slice(data) else {
        return Decoded::default();
    };
    let mut out = Decoded {
        event: true,
        records: batch.len(),
        ..Decoded::default()
    };
    let _ = batch.source();
    for incoming in &batch.records {
        let _ = incoming.sequence_number();
        let Incoming::Record(record) = incoming else {
            continue;
        };
        if let Some(change) = check::<Product>(record) {
            out.products += 1;
            let lines = cloudpf_lake::encode::json_lines(&[&change], Product::KEY);
            assert!(
                lines.is_ok(),
                "an accepted product change must encode for the lake"
            );
        }
        if let Some(change) = check::<Purchase>(record) {
            out.purchases += 1;
            use cloudpf_lake::encode::Placement;
            // Written where the purchase is, and as a departure where it left.
            let placed = [
                (&change, Placement::Present),
                (&change, Placement::Departure),
            ];
            let lines = cloudpf_lake::encode::purchase_json_lines(&placed);
            assert!(
                lines.is_ok(),
                "an accepted purchase change must encode for the lake"
            );
            let csv = cloudpf_lake::encode::purchase_csv(&placed);
            assert!(
                csv.is_ok(),
                "an accepted purchase change must encode as lake CSV"
            );
        }
    }
    out
}

/// Decodes `record` as `T`; a change it accepts must be one a sink can take.
fn check<T: Document>(record: &Record) -> Option<Change<T>> {
    let change = decode::<T>(record).ok()?;
    if let Some(item) = &change.new_image {
        assert!(
            item.validate().is_ok(),
            "an accepted new image must validate"
        );
        assert_eq!(item.tenant(), &change.tenant, "new image of another tenant");
        assert_eq!(item.key(), change.key, "new image of another key");
    }
    Some(change)
}
