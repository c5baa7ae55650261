//! Stream record → typed change. A record that can never succeed becomes a rejection
//! with the reason; nothing here is transient. Whatever a sink would refuse for good (a
//! time outside the partitions the lake can name, an invalid key) is refused here, so
//! the index and the lake always receive the same changes.

use std::collections::BTreeMap;

use cloudpf_model::dynamo::from_item_json;
use cloudpf_model::{AttrValue, Change, Document, Op, SeqNo, TenantId, Timestamp};
use serde_json::value::RawValue;

use crate::source::Record;

/// Why a record was refused; lowercase, no trailing period, names the attribute.
pub type Reason = String;

/// Whether an image is absent: missing, `null` or `{}` (the Lambda event type read all
/// three as an empty item).
fn image(raw: Option<&RawValue>) -> Option<&str> {
    let text = raw?.get();
    let empty = text.bytes().filter(|b| !b.is_ascii_whitespace()).eq(*b"{}");
    (!empty).then_some(text)
}

/// Decodes one stream record into a change of `T`.
pub fn decode<T: Document>(record: &Record) -> Result<Change<T>, Reason> {
    let view = record.view()?;
    let op = Op::parse(&view.event_name)
        .ok_or_else(|| format!("unknown eventName {:?}", view.event_name))?;
    let stream = &view.dynamodb;
    let seq = stream
        .sequence_number
        .as_deref()
        .ok_or("record has no SequenceNumber")
        .and_then(|s| SeqNo::parse(s).map_err(|_| "SequenceNumber is not a decimal number"))?;
    // The event time names the partition of changes without an image (and of every
    // product change): a time no partition can name would fail the lake write on every
    // retry after the index had taken the batch, so it is refused here, before either.
    let event_time =
        Timestamp::checked_from_utc(stream.approximate_creation_date_time).map_err(|e| {
            format!(
                "ApproximateCreationDateTime: {} {e}",
                stream.approximate_creation_date_time.timestamp()
            )
        })?;
    let keys: BTreeMap<String, AttrValue> = match image(stream.keys) {
        Some(text) => from_item_json(text).map_err(|e| format!("keys: {e}"))?,
        None => BTreeMap::new(),
    };
    let key_str = |name: &str| match keys.get(name) {
        Some(AttrValue::String(v)) => Ok(v.clone()),
        Some(_) => Err(format!("keys: {name} must be a string")),
        None => Err(format!("keys: no {name}")),
    };
    let tenant_raw = key_str("tenant_id")?;
    let tenant =
        TenantId::parse(&tenant_raw).map_err(|e| format!("keys: invalid tenant_id: {e}"))?;
    let key = key_str(T::KEY)?;
    let matches_keys = |item: &T| item.tenant() == &tenant && item.key() == key;

    let new_image = if op == Op::Remove {
        None
    } else {
        let Some(text) = image(stream.new_image) else {
            return Err(format!(
                "{op} record has no NewImage (is the stream view NEW_AND_OLD_IMAGES?)"
            ));
        };
        let item: T = from_item_json(text).map_err(|e| format!("new image: {e}"))?;
        item.validate().map_err(|e| format!("new image: {e}"))?;
        if !matches_keys(&item) {
            return Err(format!(
                "new image: tenant_id/{} differ from the record keys",
                T::KEY
            ));
        }
        Some(item)
    };
    // The old image only documents the past; a malformed one (likely dead-lettered when it
    // was new) must not block the change that fixes it.
    let old_image = match image(stream.old_image) {
        None => None,
        Some(text) => match from_item_json::<T>(text) {
            Ok(item) if matches_keys(&item) && item.validate().is_ok() => Some(item),
            Ok(_) => None,
            Err(e) => {
                tracing::debug!(seq = %seq, error = %e, "old image does not decode; kept out of the lake");
                None
            }
        },
    };
    Ok(Change {
        op,
        tenant,
        key,
        seq,
        event_time,
        new_image,
        old_image,
    })
}
