//! Decoding DynamoDB items (the `Keys`, `NewImage` and `OldImage` of a stream record)
//! into domain types with `serde_dynamo`.
//!
//! `serde_dynamo` hands a non-integer `N` to serde as an `f64`, which would silently
//! round money and 38-digit numbers. Before handing an item to it we therefore wrap every
//! `N` that is not an exact `i64` in a one-key map under [`NUMBER_MARK`]; [`crate::Money`]
//! and [`crate::AttrValue`] recognise that map and keep the decimal text exactly. Integers
//! pass through untouched so plain integer fields (`stock`, `quantity`) decode as usual.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde_dynamo::{AttributeValue, Item};

use crate::{AttrValue, Product, Purchase};

/// The key of the one-key map that carries an exact decimal number's text. The odd
/// delimiters (the Greek question mark, as `serde_dynamo` uses for its own markers) make a
/// clash with a real attribute name practically impossible.
pub const NUMBER_MARK: &str = "\u{037E}cloudpf:N\u{037E}";

/// Why an item could not become a domain value; the path names the offending attribute.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    pub message: String,
}

impl DecodeError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// Decodes an item into `T`, keeping every number exact. Errors name the attribute path,
/// for example `price: money must be an exact decimal number or string`.
pub fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, DecodeError> {
    let wrapped = AttributeValue::M(wrap_map(item.into_inner()));
    let de = serde_dynamo::Deserializer::from_attribute_value(wrapped);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if path == "." {
            DecodeError::new(inner)
        } else {
            DecodeError::new(format!("{path}: {inner}"))
        }
    })
}

/// Decodes an item as DynamoDB JSON text (a stream record's image, a search index's
/// stored source) into `T`. The fast path reads the text straight into `T`
/// ([`crate::dynamo_json`]); only what it does not read exactly like [`from_item`] (an
/// error, a binary attribute) is decoded again through `from_item`, which names the
/// attribute path of an error.
pub fn from_item_json<T: DeserializeOwned>(json: &str) -> Result<T, DecodeError> {
    match crate::dynamo_json::from_str(json) {
        Ok(value) => Ok(value),
        Err(_) => from_item(
            serde_json::from_str::<Item>(json).map_err(|e| DecodeError::new(e.to_string()))?,
        ),
    }
}

fn wrap_map(map: HashMap<String, AttributeValue>) -> HashMap<String, AttributeValue> {
    map.into_iter().map(|(k, v)| (k, wrap(v))).collect()
}

fn wrap(value: AttributeValue) -> AttributeValue {
    match value {
        AttributeValue::N(n) => wrap_number(n),
        AttributeValue::Ns(ns) => AttributeValue::L(ns.into_iter().map(wrap_number).collect()),
        AttributeValue::M(m) => AttributeValue::M(wrap_map(m)),
        AttributeValue::L(l) => AttributeValue::L(l.into_iter().map(wrap).collect()),
        other => other,
    }
}

fn wrap_number(n: String) -> AttributeValue {
    if n.parse::<i64>().is_ok() {
        AttributeValue::N(n)
    } else {
        AttributeValue::M(HashMap::from([(
            NUMBER_MARK.to_owned(),
            AttributeValue::S(n),
        )]))
    }
}

/// Checks that `text` is a number as DynamoDB and JSON both write it (`-12.5e3`, not
/// `.5` or `+1`) with at most 38 significant digits, DynamoDB's own limit.
pub fn validate_number_text(text: &str) -> Result<(), DecodeError> {
    let bad = || DecodeError::new(format!("{text:?} is not a number"));
    let body = text.strip_prefix('-').unwrap_or(text);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || (int.len() > 1 && int.starts_with('0')) {
        return Err(bad());
    }
    if frac.is_some_and(|f| !digits(f)) {
        return Err(bad());
    }
    if let Some(exp) = exponent {
        let exp = exp.strip_prefix(['+', '-']).unwrap_or(exp);
        if !digits(exp) {
            return Err(bad());
        }
    }
    let significant = format!("{int}{}", frac.unwrap_or(""));
    let significant = significant.trim_start_matches('0').trim_end_matches('0');
    if significant.len() > 38 {
        return Err(DecodeError::new(format!(
            "{text:?} has more than 38 significant digits"
        )));
    }
    Ok(())
}

// Encoding is explicit rather than through `serde_dynamo::to_item`, which would write
// money (serialized as a decimal string for JSON readers) as an `S`; DynamoDB has it as `N`.

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn attr(v: &AttrValue) -> AttributeValue {
    match v {
        AttrValue::Null => AttributeValue::Null(true),
        AttrValue::Bool(b) => AttributeValue::Bool(*b),
        AttrValue::Number(t) => n(t),
        AttrValue::String(t) => s(t),
        AttrValue::Binary(b) => AttributeValue::B(b.clone()),
        AttrValue::List(l) => AttributeValue::L(l.iter().map(attr).collect()),
        AttrValue::Map(m) => {
            AttributeValue::M(m.iter().map(|(k, v)| (k.clone(), attr(v))).collect())
        }
    }
}

pub fn product_keys(p: &Product) -> Item {
    Item::from(HashMap::from([
        ("tenant_id".to_owned(), s(p.tenant_id.as_str())),
        ("product_id".to_owned(), s(&p.product_id)),
    ]))
}

/// A product as the `products` table stores it: money as `N`, tags as `SS`.
pub fn product_item(p: &Product) -> Item {
    let mut m = product_keys(p).into_inner();
    m.insert("name".into(), s(&p.name));
    m.insert("description".into(), s(&p.description));
    m.insert("category".into(), s(&p.category));
    m.insert("brand".into(), s(&p.brand));
    m.insert("price".into(), n(p.price));
    m.insert("currency".into(), s(p.currency.as_str()));
    m.insert("stock".into(), n(p.stock));
    if !p.tags.is_empty() {
        m.insert("tags".into(), AttributeValue::Ss(p.tags.clone()));
    }
    m.insert(
        "attributes".into(),
        AttributeValue::M(
            p.attributes
                .iter()
                .map(|(k, v)| (k.clone(), attr(v)))
                .collect(),
        ),
    );
    m.insert("is_active".into(), AttributeValue::Bool(p.is_active));
    m.insert("created_at".into(), s(&p.created_at.to_rfc3339()));
    if let Some(u) = p.updated_at {
        m.insert("updated_at".into(), s(&u.to_rfc3339()));
    }
    Item::from(m)
}

pub fn purchase_keys(p: &Purchase) -> Item {
    Item::from(HashMap::from([
        ("tenant_id".to_owned(), s(p.tenant_id.as_str())),
        ("purchase_id".to_owned(), s(&p.purchase_id)),
    ]))
}

/// A purchase as the `purchases` table stores it: items as a list of maps, money as `N`.
pub fn purchase_item(p: &Purchase) -> Item {
    let mut m = purchase_keys(p).into_inner();
    m.insert("customer_id".into(), s(&p.customer_id));
    let items = p
        .items
        .iter()
        .map(|i| {
            AttributeValue::M(HashMap::from([
                ("product_id".to_owned(), s(&i.product_id)),
                ("name".to_owned(), s(&i.name)),
                ("quantity".to_owned(), n(i.quantity)),
                ("unit_price".to_owned(), n(i.unit_price)),
            ]))
        })
        .collect();
    m.insert("items".into(), AttributeValue::L(items));
    m.insert("total_amount".into(), n(p.total_amount));
    m.insert("currency".into(), s(p.currency.as_str()));
    m.insert("status".into(), s(p.status.as_str()));
    m.insert("payment_method".into(), s(&p.payment_method));
    m.insert("shipping_country".into(), s(&p.shipping_country));
    m.insert("shipping_city".into(), s(&p.shipping_city));
    m.insert("created_at".into(), s(&p.created_at.to_rfc3339()));
    if let Some(u) = p.updated_at {
        m.insert("updated_at".into(), s(&u.to_rfc3339()));
    }
    Item::from(m)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const STORED: &str = r#"{"tenant_id":{"S":"shop-a"},"product_id":{"S":"p1"},"name":{"S":"Lantern"},
        "category":{"S":"Outdoor"},"price":{"N":"12345678901234.99"},"currency":{"S":"EUR"},
        "stock":{"N":"3"},"attributes":{"M":{"weight":{"N":"0.1"}}},
        "created_at":{"S":"2026-01-02T03:04:05Z"}}"#;

    #[test]
    fn a_stored_item_decodes_with_exact_numbers_and_a_bad_one_names_its_attribute() {
        let p: Product = from_item_json(STORED).unwrap();
        assert_eq!(p.price.to_string(), "12345678901234.99");
        assert_eq!(p.stock, 3);
        let bad = STORED.replace(r#""stock":{"N":"3"}"#, r#""stock":{"S":"three"}"#);
        let e = from_item_json::<Product>(&bad).unwrap_err();
        assert!(e.message.starts_with("stock"), "{e}");
        assert!(from_item_json::<Product>("not json").is_err());
    }

    #[test]
    fn numbers_as_dynamodb_writes_them_are_valid() {
        for ok in [
            "0",
            "-1",
            "19.99",
            "12345678901234567890123456789012345678",
            "1E+10",
            "2.5e-3",
            "0.001",
        ] {
            assert_eq!(validate_number_text(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn malformed_or_oversized_numbers_are_rejected() {
        for bad in [
            "",
            "-",
            ".5",
            "+1",
            "1.",
            "01",
            "1e",
            "abc",
            "NaN",
            "1,5",
            "123456789012345678901234567890123456789",
        ] {
            assert!(validate_number_text(bad).is_err(), "{bad}");
        }
    }
}
