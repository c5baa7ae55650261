//! Free-form attribute values (a product's `attributes` map): any DynamoDB type, kept
//! exactly, rendered as plain JSON.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::dynamo::{NUMBER_MARK, validate_number_text};

/// One attribute value. Sets (`SS`, `NS`, `BS`) arrive as lists, as in plain JSON; maps
/// are ordered so the same item always renders to the same bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrValue {
    Null,
    Bool(bool),
    /// The number's decimal text, exactly as stored (up to 38 significant digits).
    Number(String),
    String(String),
    /// Raw bytes; rendered in JSON as standard base64.
    Binary(Vec<u8>),
    List(Vec<AttrValue>),
    Map(BTreeMap<String, AttrValue>),
}

impl Serialize for AttrValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            AttrValue::Null => s.serialize_unit(),
            AttrValue::Bool(b) => s.serialize_bool(*b),
            AttrValue::Number(text) => {
                // A raw JSON number keeps all 38 digits that an f64 would lose.
                let raw = serde_json::value::RawValue::from_string(text.clone())
                    .map_err(serde::ser::Error::custom)?;
                raw.serialize(s)
            }
            AttrValue::String(v) => s.serialize_str(v),
            AttrValue::Binary(b) => {
                s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b))
            }
            AttrValue::List(items) => items.serialize(s),
            AttrValue::Map(m) => m.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for AttrValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AttrVisitor)
    }
}

struct AttrVisitor;

impl<'de> Visitor<'de> for AttrVisitor {
    type Value = AttrValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any DynamoDB attribute value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<AttrValue, E> {
        Ok(AttrValue::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<AttrValue, E> {
        Ok(AttrValue::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<AttrValue, D::Error> {
        AttrValue::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<AttrValue, E> {
        Ok(AttrValue::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<AttrValue, E> {
        Ok(AttrValue::Number(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<AttrValue, E> {
        Ok(AttrValue::Number(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<AttrValue, E> {
        // Only plain JSON gets here (DynamoDB numbers arrive marked); ryu's shortest
        // round-trip text is exactly what that JSON held, within f64's precision.
        if v.is_finite() {
            Ok(AttrValue::Number(v.to_string()))
        } else {
            Err(E::custom("numbers must be finite"))
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<AttrValue, E> {
        Ok(AttrValue::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<AttrValue, E> {
        Ok(AttrValue::String(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<AttrValue, E> {
        Ok(AttrValue::Binary(v.to_vec()))
    }
    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<AttrValue, E> {
        Ok(AttrValue::Binary(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AttrValue, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(AttrValue::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AttrValue, A::Error> {
        let mut out = BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == NUMBER_MARK && out.is_empty() {
                let text: String = map.next_value()?;
                validate_number_text(&text).map_err(de::Error::custom)?;
                return Ok(AttrValue::Number(text));
            }
            out.insert(key, map.next_value()?);
        }
        Ok(AttrValue::Map(out))
    }
}
