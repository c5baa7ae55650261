//! The lake's encodings: gzipped JSON Lines change logs, the purchases CSV and the
//! purchase tombstones CSV.

use std::collections::BTreeMap;
use std::io::Write;

use cloudpf_model::{Change, Purchase};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde::Serialize;

/// Columns of the purchases CSV, in order. One row per line item per change, numbered
/// from 1 in `line_number` (two identical items of one order stay two rows); a purchase
/// without items gets one row with empty item columns. A departure (see [`Placement`])
/// is one row with `departure` = `true`, the old image's order columns (empty without
/// one) and empty item columns.
pub const PURCHASE_CSV_COLUMNS: [&str; 19] = [
    "purchase_id",
    "customer_id",
    "status",
    "created_at",
    "line_number",
    "product_id",
    "product_name",
    "quantity",
    "unit_price",
    "line_total",
    "total_amount",
    "currency",
    "payment_method",
    "shipping_country",
    "shipping_city",
    "op",
    "sequence_number",
    "event_time",
    "departure",
];

/// Columns of the purchase tombstones CSV: a change whose partition of origin is unknown
/// (a REMOVE or MODIFY without a usable old image) says that from its sequence number on
/// the purchase lives only in partition `live_dt`, or nowhere when `live_dt` is empty.
pub const TOMBSTONE_CSV_COLUMNS: [&str; 5] = [
    "purchase_id",
    "live_dt",
    "op",
    "sequence_number",
    "event_time",
];

/// What a purchase change means in the partition a row of it is written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Placement {
    /// The purchase is in this partition as of the change (its new image).
    Present,
    /// The purchase leaves this partition with the change: a REMOVE (in its old image's
    /// partition), or a `created_at` corrected to another date (in the old date's
    /// partition). Readers taking the latest row per partition see it is gone.
    Departure,
}

impl Placement {
    fn is_departure(self) -> bool {
        self == Placement::Departure
    }
}

/// A purchase change as written to one partition.
pub type Placed<'a> = (&'a Change<Purchase>, Placement);

#[derive(Debug, thiserror::Error)]
#[error("could not encode lake object: {0}")]
pub struct EncodeError(String);

fn encode_error(e: impl std::fmt::Display) -> EncodeError {
    EncodeError(e.to_string())
}

/// The gzip level of a handler batch's objects. Chosen by `cargo bench -p cloudpf-lake
/// --bench gzip` (docs/benchmarks.md): level 3 compresses a 100-change object in about a
/// third of level 6's time (0.25 against 0.75 ms) for 12–16 % more bytes, and these
/// objects live only until the next compaction rewrites them.
pub const BATCH_GZIP_LEVEL: u32 = 3;

/// The gzip level of compacted objects, written once and scanned by every report
/// (Athena bills the compressed bytes): level 6 leaves 12–16 % fewer bytes than 3, and
/// level 9 only 2–5 % fewer than 6 for twice the time.
pub const COMPACTED_GZIP_LEVEL: u32 = 6;

/// Gzip with a zero mtime and no file name, so equal input gives byte-equal objects.
pub fn gzip(bytes: &[u8]) -> Result<Vec<u8>, EncodeError> {
    let mut enc = GzEncoder::new(
        Vec::with_capacity(bytes.len() / 4 + 64),
        Compression::new(BATCH_GZIP_LEVEL),
    );
    enc.write_all(bytes).map_err(encode_error)?;
    enc.finish().map_err(encode_error)
}

#[derive(Serialize)]
struct ChangeLine<'a, T> {
    op: &'static str,
    sequence_number: &'a str,
    event_time: String,
    keys: BTreeMap<&'static str, &'a str>,
    new_image: Option<&'a T>,
    old_image: Option<&'a T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    departure: Option<bool>,
}

fn json_line<T: Serialize>(
    out: &mut Vec<u8>,
    change: &Change<T>,
    key_name: &'static str,
    departure: Option<bool>,
) -> Result<(), EncodeError> {
    let line = ChangeLine {
        op: change.op.as_str(),
        sequence_number: change.seq.as_str(),
        event_time: change.event_time.to_rfc3339(),
        keys: BTreeMap::from([
            ("tenant_id", change.tenant.as_str()),
            (key_name, change.key.as_str()),
        ]),
        new_image: change.new_image.as_ref(),
        old_image: change.old_image.as_ref(),
        departure,
    };
    serde_json::to_writer(&mut *out, &line).map_err(encode_error)?;
    out.push(b'\n');
    Ok(())
}

/// One JSON object per change and line: `op`, `sequence_number`, `event_time`, `keys`,
/// and the images as plain JSON (money as decimal strings, times as RFC 3339 UTC).
pub fn json_lines<T: Serialize>(
    changes: &[&Change<T>],
    key_name: &'static str,
) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    for change in changes {
        json_line(&mut out, change, key_name, None)?;
    }
    Ok(out)
}

/// The purchases change log of one partition: [`json_lines`] with `departure` (true where
/// the purchase leaves this partition with the change, see [`Placement`]).
pub fn purchase_json_lines(placed: &[Placed<'_>]) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    for (change, placement) in placed {
        json_line(
            &mut out,
            change,
            "purchase_id",
            Some(placement.is_departure()),
        )?;
    }
    Ok(out)
}

/// One CSV cell as Athena's OpenCSVSerde reads it back unchanged: it takes `\` as an
/// escape character and cannot read line breaks inside a field, so backslashes are
/// doubled and line breaks become spaces (the JSON change log keeps the exact text).
fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn csv_writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Always)
        .double_quote(false)
        .escape(b'\\')
        .from_writer(Vec::new())
}

fn write_row<I, S>(w: &mut csv::Writer<Vec<u8>>, row: I) -> Result<(), EncodeError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    w.write_record(row.into_iter().map(|c| cell(c.as_ref())))
        .map_err(encode_error)
}

/// The purchases CSV of one partition's changes: a header row, every field quoted,
/// quotes and backslashes escaped with a backslash (the dialect of Athena's
/// OpenCSVSerde, which the embedded engine reads with the same settings).
pub fn purchase_csv(placed: &[Placed<'_>]) -> Result<Vec<u8>, EncodeError> {
    let mut w = csv_writer();
    write_row(&mut w, PURCHASE_CSV_COLUMNS)?;
    for (change, placement) in placed {
        let change_cells = [
            change.op.as_str().to_owned(),
            change.seq.as_str().to_owned(),
            change.event_time.to_rfc3339(),
            placement.is_departure().to_string(),
        ];
        let image = match placement {
            Placement::Present => change.new_image.as_ref(),
            Placement::Departure => change.old_image.as_ref(),
        };
        let Some(p) = image else {
            let mut row = vec![String::new(); PURCHASE_CSV_COLUMNS.len() - change_cells.len()];
            row[0] = change.key.clone();
            write_row(&mut w, row.iter().chain(change_cells.iter()))?;
            continue;
        };
        let head = [
            p.purchase_id.clone(),
            p.customer_id.clone(),
            p.status.as_str().to_owned(),
            p.created_at.to_rfc3339(),
        ];
        let order = [
            p.total_amount.to_string(),
            p.currency.to_string(),
            p.payment_method.clone(),
            p.shipping_country.clone(),
            p.shipping_city.clone(),
        ];
        let lines: Vec<[String; 6]> = if p.items.is_empty() || placement.is_departure() {
            vec![Default::default()]
        } else {
            p.items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    [
                        (i + 1).to_string(),
                        item.product_id.clone(),
                        item.name.clone(),
                        item.quantity.to_string(),
                        item.unit_price.to_string(),
                        item.line_total().map(|m| m.to_string()).unwrap_or_default(),
                    ]
                })
                .collect()
        };
        for line in lines {
            write_row(
                &mut w,
                head.iter()
                    .chain(line.iter())
                    .chain(order.iter())
                    .chain(change_cells.iter()),
            )?;
        }
    }
    w.into_inner().map_err(encode_error)
}

/// The tombstones CSV of one tenant's changes whose partition of origin is unknown (see
/// [`TOMBSTONE_CSV_COLUMNS`]), in the purchases CSV's dialect.
pub fn tombstone_csv(changes: &[&Change<Purchase>]) -> Result<Vec<u8>, EncodeError> {
    let mut w = csv_writer();
    write_row(&mut w, TOMBSTONE_CSV_COLUMNS)?;
    for change in changes {
        let live_dt = change
            .new_image
            .as_ref()
            .map(|p| p.created_at.date().format("%Y-%m-%d").to_string())
            .unwrap_or_default();
        write_row(
            &mut w,
            [
                change.key.clone(),
                live_dt,
                change.op.as_str().to_owned(),
                change.seq.as_str().to_owned(),
                change.event_time.to_rfc3339(),
            ],
        )?;
    }
    w.into_inner().map_err(encode_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_survive_opencsvserde_backslashes_quotes_and_line_breaks() {
        assert_eq!(cell(r#"a\b "c", d"#), r#"a\\b "c", d"#);
        assert_eq!(cell("two\r\nlines"), "two  lines");
        let mut w = csv::WriterBuilder::new()
            .quote_style(csv::QuoteStyle::Always)
            .double_quote(false)
            .escape(b'\\')
            .from_writer(Vec::new());
        w.write_record([cell(r#"15" \ pro"#), cell("")]).unwrap();
        assert_eq!(
            String::from_utf8(w.into_inner().unwrap()).unwrap(),
            "\"15\\\" \\\\ pro\",\"\"\n"
        );
    }
}
