//! The lake's encodings: gzipped JSON Lines change logs and the purchases CSV.

use std::collections::BTreeMap;
use std::io::Write;

use cloudpf_model::{Change, Purchase};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde::Serialize;

/// Columns of the purchases CSV, in order. One row per line item per change; a purchase
/// without items (or a REMOVE without an old image) gets one row with empty item columns.
pub const PURCHASE_CSV_COLUMNS: [&str; 17] = [
    "purchase_id",
    "customer_id",
    "status",
    "created_at",
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
];

#[derive(Debug, thiserror::Error)]
#[error("could not encode lake object: {0}")]
pub struct EncodeError(String);

fn encode_error(e: impl std::fmt::Display) -> EncodeError {
    EncodeError(e.to_string())
}

/// Gzip with a zero mtime and no file name, so equal input gives byte-equal objects.
pub fn gzip(bytes: &[u8]) -> Result<Vec<u8>, EncodeError> {
    let mut enc = GzEncoder::new(
        Vec::with_capacity(bytes.len() / 4 + 64),
        Compression::default(),
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
}

/// One JSON object per change and line: `op`, `sequence_number`, `event_time`, `keys`,
/// and the images as plain JSON (money as decimal strings, times as RFC 3339 UTC).
pub fn json_lines<T: Serialize>(
    changes: &[&Change<T>],
    key_name: &'static str,
) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    for change in changes {
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
        };
        serde_json::to_writer(&mut out, &line).map_err(encode_error)?;
        out.push(b'\n');
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

/// The purchases CSV of a group of changes: a header row, every field quoted, quotes and
/// backslashes escaped with a backslash (the dialect of Athena's OpenCSVSerde, which the
/// embedded engine reads with the same settings).
pub fn purchase_csv(changes: &[&Change<Purchase>]) -> Result<Vec<u8>, EncodeError> {
    let mut w = csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Always)
        .double_quote(false)
        .escape(b'\\')
        .from_writer(Vec::new());
    w.write_record(PURCHASE_CSV_COLUMNS).map_err(encode_error)?;
    for change in changes {
        let (op, seq, event_time) = (
            change.op.as_str(),
            change.seq.as_str(),
            change.event_time.to_rfc3339(),
        );
        let Some(p) = change.latest_image() else {
            let mut row = vec![String::new(); PURCHASE_CSV_COLUMNS.len()];
            row[0] = change.key.clone();
            row[14] = op.to_owned();
            row[15] = seq.to_owned();
            row[16] = event_time;
            w.write_record(row.iter().map(|c| cell(c)))
                .map_err(encode_error)?;
            continue;
        };
        let head = [
            p.purchase_id.clone(),
            p.customer_id.clone(),
            p.status.as_str().to_owned(),
            p.created_at.to_rfc3339(),
        ];
        let tail = [
            p.total_amount.to_string(),
            p.currency.to_string(),
            p.payment_method.clone(),
            p.shipping_country.clone(),
            p.shipping_city.clone(),
            op.to_owned(),
            seq.to_owned(),
            event_time.clone(),
        ];
        let lines: Vec<[String; 5]> = if p.items.is_empty() {
            vec![Default::default()]
        } else {
            p.items
                .iter()
                .map(|item| {
                    [
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
            let row = head.iter().chain(line.iter()).chain(tail.iter());
            w.write_record(row.map(|c| cell(c))).map_err(encode_error)?;
        }
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
