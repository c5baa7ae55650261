//! Stream record → typed change. A record that can never succeed becomes a rejection
//! with the reason; nothing here is transient. Whatever a sink would refuse for good (a
//! time outside the partitions the lake can name, an invalid key) is refused here, so
//! the index and the lake always receive the same changes.

use std::collections::BTreeMap;

use aws_lambda_events::event::dynamodb::EventRecord;
use cloudpf_model::dynamo::from_item;
use cloudpf_model::{AttrValue, Change, Op, Product, Purchase, SeqNo, TenantId, Timestamp};
use serde::de::DeserializeOwned;

/// An item type of one of the two tables.
pub trait TableItem: DeserializeOwned + Send + Sync + 'static {
    /// The table's sort key attribute (`product_id`, `purchase_id`).
    const KEY: &'static str;
    fn tenant(&self) -> &TenantId;
    fn key(&self) -> &str;
    fn validate(&self) -> Result<(), String>;
}

impl TableItem for Product {
    const KEY: &'static str = "product_id";
    fn tenant(&self) -> &TenantId {
        &self.tenant_id
    }
    fn key(&self) -> &str {
        &self.product_id
    }
    fn validate(&self) -> Result<(), String> {
        Product::validate(self)
    }
}

impl TableItem for Purchase {
    const KEY: &'static str = "purchase_id";
    fn tenant(&self) -> &TenantId {
        &self.tenant_id
    }
    fn key(&self) -> &str {
        &self.purchase_id
    }
    fn validate(&self) -> Result<(), String> {
        Purchase::validate(self)
    }
}

/// Why a record was refused; lowercase, no trailing period, names the attribute.
pub type Reason = String;

/// Decodes one stream record into a change of `T`.
pub fn decode<T: TableItem>(record: &EventRecord) -> Result<Change<T>, Reason> {
    let op = Op::parse(&record.event_name)
        .ok_or_else(|| format!("unknown eventName {:?}", record.event_name))?;
    let seq = record
        .change
        .sequence_number
        .as_deref()
        .ok_or("record has no SequenceNumber")
        .and_then(|s| SeqNo::parse(s).map_err(|_| "SequenceNumber is not a decimal number"))?;
    // The event time names the partition of changes without an image (and of every
    // product change): a time no partition can name would fail the lake write on every
    // retry after the index had taken the batch, so it is refused here, before either.
    let event_time = Timestamp::checked_from_utc(record.change.approximate_creation_date_time)
        .map_err(|e| {
            format!(
                "ApproximateCreationDateTime: {} {e}",
                record.change.approximate_creation_date_time.timestamp()
            )
        })?;
    let keys: BTreeMap<String, AttrValue> =
        from_item(record.change.keys.clone()).map_err(|e| format!("keys: {e}"))?;
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
        if record.change.new_image.is_empty() {
            return Err(format!(
                "{op} record has no NewImage (is the stream view NEW_AND_OLD_IMAGES?)"
            ));
        }
        let item: T =
            from_item(record.change.new_image.clone()).map_err(|e| format!("new image: {e}"))?;
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
    let old_image = if record.change.old_image.is_empty() {
        None
    } else {
        match from_item::<T>(record.change.old_image.clone()) {
            Ok(item) if matches_keys(&item) && item.validate().is_ok() => Some(item),
            Ok(_) => None,
            Err(e) => {
                tracing::debug!(seq = %seq, error = %e, "old image does not decode; kept out of the lake");
                None
            }
        }
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
