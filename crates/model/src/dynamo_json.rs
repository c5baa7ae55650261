//! Reads DynamoDB JSON text (`{"name":{"S":"Boots"},"price":{"N":"12.50"}}`) straight into
//! a serde type, without building the item's maps of attribute values first.
//!
//! This is the fast path of [`crate::dynamo::from_item_json`]: it presents each attribute
//! value to the type as [`crate::dynamo::from_item`] does (an `N` that is not a canonical
//! `i64` as the one-key [`NUMBER_MARK`] map that keeps its exact text), and refuses
//! whatever it does not read exactly the same way (binary and number sets, odd numbers,
//! more than one type in a value), so that the caller decodes again on the slow path,
//! which is the reference and names the attribute of an error. Building the maps, and
//! rebuilding them to mark numbers, was most of a stream record's decoding time and
//! allocations (issue #15).
//!
//! Nesting is bounded by `serde_json`'s recursion limit, which every level here passes
//! through.

use std::fmt;

use serde::de::value::{MapDeserializer, StringDeserializer};
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IgnoredAny, IntoDeserializer, MapAccess,
    SeqAccess, Visitor,
};
use serde::forward_to_deserialize_any;

use crate::dynamo::NUMBER_MARK;

type JsonDe<'a, 'de> = &'a mut serde_json::Deserializer<serde_json::de::StrRead<'de>>;

/// Decodes the DynamoDB JSON item `json` into `T`; an error means "use the slow path".
pub fn from_str<'de, T: de::Deserialize<'de>>(json: &'de str) -> Result<T, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(json);
    let value = T::deserialize(Item(&mut de))?;
    de.end()?;
    Ok(value)
}

/// A whole item: a plain JSON object of attribute values.
struct Item<'a, 'de>(JsonDe<'a, 'de>);

impl<'de> Deserializer<'de> for Item<'_, 'de> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.0.deserialize_map(Members(visitor))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// Hands a JSON object to `V` as a map whose values are attribute values.
struct Members<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for Members<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a DynamoDB item")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.0.visit_map(AttrMap(map))
    }
}

struct AttrMap<A>(A);

impl<'de, A: MapAccess<'de>> MapAccess<'de> for AttrMap<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(seed)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        self.0.next_value_seed(AttrSeed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

struct AttrList<A>(A);

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for AttrList<A> {
    type Error = A::Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, A::Error> {
        self.0.next_element_seed(AttrSeed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

/// `S`, reading an attribute value (`{"<type>": <value>}`) instead of plain JSON.
struct AttrSeed<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for AttrSeed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(Attr(d))
    }
}

/// An attribute value as a deserializer: what the type asks for decides only how an
/// option or an enum is handed over; the value's own type decides the rest.
struct Attr<D>(D);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    Any,
    Option,
    Enum,
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Attr<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(Tagged {
            visitor,
            want: Want::Any,
        })
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(Tagged {
            visitor,
            want: Want::Option,
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(Tagged {
            visitor,
            want: Want::Enum,
        })
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        visitor.visit_newtype_struct(self)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

/// The type names of DynamoDB attribute values that this reader takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tag {
    S,
    N,
    Bool,
    Null,
    M,
    L,
    Ss,
}

impl<'de> de::Deserialize<'de> for Tag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TagVisitor;
        impl Visitor<'_> for TagVisitor {
            type Value = Tag;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an attribute type")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Tag, E> {
                Ok(match v {
                    "S" => Tag::S,
                    "N" => Tag::N,
                    "BOOL" => Tag::Bool,
                    "NULL" => Tag::Null,
                    "M" => Tag::M,
                    "L" => Tag::L,
                    "SS" => Tag::Ss,
                    // B, BS and NS, and types DynamoDB does not have: the slow path.
                    other => return Err(E::custom(format!("attribute type {other:?}"))),
                })
            }
        }
        d.deserialize_identifier(TagVisitor)
    }
}

/// A JSON string, borrowed from the text where it has no escapes.
enum Text<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl<'de> de::Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text::Owned(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text::Owned(v))
            }
        }
        d.deserialize_str(TextVisitor)
    }
}

impl<'de> Text<'de> {
    fn as_str(&self) -> &str {
        match self {
            Text::Borrowed(s) => s,
            Text::Owned(s) => s,
        }
    }

    fn into_string(self) -> String {
        match self {
            Text::Borrowed(s) => s.to_owned(),
            Text::Owned(s) => s,
        }
    }

    fn give<V: Visitor<'de>, E: de::Error>(self, visitor: V) -> Result<V::Value, E> {
        match self {
            Text::Borrowed(s) => visitor.visit_borrowed_str(s),
            Text::Owned(s) => visitor.visit_string(s),
        }
    }
}

/// Reads `{"<type>": <value>}` and hands the value to the type's visitor.
struct Tagged<V> {
    visitor: V,
    want: Want,
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Tagged<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a DynamoDB attribute value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<V::Value, A::Error> {
        let Some(tag) = map.next_key::<Tag>()? else {
            return Err(de::Error::custom("attribute value without a type"));
        };
        match (self.want, tag) {
            (Want::Option, Tag::Null) => {
                null(&mut map)?;
                end(map)?;
                self.visitor.visit_none()
            }
            (Want::Option, _) => self.visitor.visit_some(Resumed { tag, map }),
            (want, _) => give(tag, map, self.visitor, want == Want::Enum),
        }
    }
}

/// An attribute value whose type is read and whose value is next in `map`.
struct Resumed<A> {
    tag: Tag,
    map: A,
}

impl<'de, A: MapAccess<'de>> Deserializer<'de> for Resumed<A> {
    type Error = A::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        give(self.tag, self.map, visitor, false)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        give(self.tag, self.map, visitor, true)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        visitor.visit_newtype_struct(self)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

/// No second type in one attribute value.
fn end<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    match map.next_key::<IgnoredAny>()? {
        None => Ok(()),
        Some(_) => Err(de::Error::custom("attribute value with more than one type")),
    }
}

/// `NULL` is `true` in every item DynamoDB writes; anything else is for the slow path.
fn null<'de, A: MapAccess<'de>>(map: &mut A) -> Result<(), A::Error> {
    if map.next_value::<bool>()? {
        Ok(())
    } else {
        Err(de::Error::custom("NULL must be true"))
    }
}

fn give<'de, A: MapAccess<'de>, V: Visitor<'de>>(
    tag: Tag,
    mut map: A,
    visitor: V,
    as_enum: bool,
) -> Result<V::Value, A::Error> {
    let value = match tag {
        Tag::S => {
            let text: Text<'de> = map.next_value()?;
            if as_enum {
                let de: StringDeserializer<A::Error> = text.into_string().into_deserializer();
                return end(map).and_then(|()| visitor.visit_enum(Unit(de)));
            }
            end(map)?;
            return text.give(visitor);
        }
        Tag::N => {
            let text: Text<'de> = map.next_value()?;
            end(map)?;
            return number(text, visitor);
        }
        Tag::Bool => {
            let b: bool = map.next_value()?;
            visitor.visit_bool(b)
        }
        Tag::Null => {
            null(&mut map)?;
            visitor.visit_unit()
        }
        Tag::M => map.next_value_seed(Nested {
            visitor,
            list: false,
        }),
        Tag::L => map.next_value_seed(Nested {
            visitor,
            list: true,
        }),
        // A string set is a plain JSON array of strings.
        Tag::Ss => map.next_value_seed(Plain(visitor)),
    }?;
    end(map)?;
    Ok(value)
}

/// An `N` as `from_item` hands it over: a canonical `i64` as an integer, anything else
/// as the exact text under [`NUMBER_MARK`].
fn number<'de, V: Visitor<'de>, E: de::Error>(text: Text<'de>, visitor: V) -> Result<V::Value, E> {
    match text.as_str().parse::<i64>() {
        // `+5` and `007` parse too; only the canonical form is read the same on both paths.
        Ok(n) if n.to_string() == text.as_str() => visitor.visit_i64(n),
        Ok(_) => Err(E::custom("number in a non-canonical form")),
        Err(_) => visitor.visit_map(MapDeserializer::new(std::iter::once((
            NUMBER_MARK,
            text.into_string(),
        )))),
    }
}

/// The value of an `M` (a map of attribute values) or an `L` (a list of them).
struct Nested<V> {
    visitor: V,
    list: bool,
}

impl<'de, V: Visitor<'de>> DeserializeSeed<'de> for Nested<V> {
    type Value = V::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        if self.list {
            d.deserialize_seq(Elements(self.visitor))
        } else {
            d.deserialize_map(Members(self.visitor))
        }
    }
}

struct Elements<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for Elements<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of attribute values")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.0.visit_seq(AttrList(seq))
    }
}

/// A value that is plain JSON (the strings of an `SS`).
struct Plain<V>(V);

impl<'de, V: Visitor<'de>> DeserializeSeed<'de> for Plain<V> {
    type Value = V::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        d.deserialize_seq(self.0)
    }
}

/// A unit variant named by a string.
struct Unit<D>(D);

impl<'de, D: EnumAccess<'de>> EnumAccess<'de> for Unit<D> {
    type Error = D::Error;
    type Variant = D::Variant;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, D::Variant), D::Error> {
        self.0.variant_seed(seed)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::dynamo::{from_item, product_item, purchase_item};
    use crate::{AttrValue, Product, Purchase};

    fn both<T: de::DeserializeOwned + PartialEq + fmt::Debug>(json: &str) -> Option<T> {
        let slow: Result<T, _> = serde_json::from_str(json)
            .map_err(|e| crate::dynamo::DecodeError::new(e.to_string()))
            .and_then(from_item);
        let fast: Result<T, _> = from_str(json);
        if let Ok(fast) = &fast {
            assert_eq!(
                Some(fast),
                slow.as_ref().ok(),
                "the fast path read {json} differently"
            );
        }
        fast.ok()
    }

    #[test]
    fn items_read_the_same_as_through_attribute_value_maps() {
        let json = r#"{"tenant_id":{"S":"acme"},"product_id":{"S":"p-1"},"name":{"S":"Tr\u00e4il \"boot\""},
            "category":{"S":"Outdoor"},"price":{"N":"129.90"},"currency":{"S":"EUR"},"stock":{"N":"42"},
            "tags":{"SS":["a","b"]},"is_active":{"BOOL":false},"created_at":{"S":"2026-11-23T08:00:00Z"},
            "updated_at":{"NULL":true},"extra":{"M":{"x":{"L":[{"N":"1"},{"S":"y"}]}}},
            "attributes":{"M":{"weight":{"N":"1.25"},"big":{"N":"123456789012345678901234567890"},
              "n":{"N":"-7"},"flag":{"BOOL":true},"none":{"NULL":true},"list":{"L":[{"N":"0.5"}]},
              "nested":{"M":{"k":{"S":"v"}}},"set":{"SS":["s"]}}}}"#;
        let product: Product = both(json).expect("the fast path reads a product");
        assert_eq!(product.price.to_string(), "129.90");
        assert_eq!(
            product.attributes["big"],
            AttrValue::Number("123456789012345678901234567890".into())
        );
        assert!(!product.is_active);
        assert_eq!(product.updated_at, None);
    }

    #[test]
    fn demo_items_round_trip_through_the_fast_path() {
        let purchase = r#"{"tenant_id":{"S":"acme"},"purchase_id":{"S":"o-1"},"customer_id":{"S":"c-1"},
            "items":{"L":[{"M":{"product_id":{"S":"p-1"},"name":{"S":"Boot"},"quantity":{"N":"2"},"unit_price":{"N":"10.5"}}}]},
            "total_amount":{"N":"21.00"},"currency":{"S":"EUR"},"status":{"S":"paid"},
            "created_at":{"S":"2026-11-23T08:00:00Z"}}"#;
        let p: Purchase = both(purchase).expect("a purchase");
        let again = serde_json::to_string(&purchase_item(&p)).expect("json");
        assert_eq!(both::<Purchase>(&again), Some(p));
        let product: Product = both(
            r#"{"tenant_id":{"S":"acme"},"product_id":{"S":"p-1"},"name":{"S":"Boot"},"category":{"S":"c"},
            "price":{"N":"1"},"currency":{"S":"EUR"},"created_at":{"S":"2026-11-23T08:00:00Z"}}"#,
        )
        .expect("a product");
        let again = serde_json::to_string(&product_item(&product)).expect("json");
        assert_eq!(both::<Product>(&again), Some(product));
    }

    #[test]
    fn what_the_fast_path_cannot_read_exactly_is_left_to_the_slow_path() {
        for odd in [
            r#"{"n":{"N":"+5"}}"#,
            r#"{"n":{"N":"007"}}"#,
            r#"{"n":{"NS":["1","2"]}}"#,
            r#"{"n":{"B":"AAE="}}"#,
            r#"{"n":{"S":"x","N":"1"}}"#,
            r#"{"n":{}}"#,
            r#"{"n":{"NULL":false}}"#,
            r#"{"n":{"Q":"x"}}"#,
        ] {
            assert!(
                from_str::<BTreeMap<String, AttrValue>>(odd).is_err(),
                "{odd} must take the slow path"
            );
            // And the slow path still decides, as before.
            let _ = both::<BTreeMap<String, AttrValue>>(odd);
        }
    }

    fn attr() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        use serde_json::json;
        let number = prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            Just("+5".to_owned()),
            Just("007".to_owned()),
            Just("-0".to_owned()),
            Just("1e3".to_owned()),
            Just("12.50".to_owned()),
            Just("123456789012345678901234567890".to_owned()),
            "[0-9]{1,3}\\.[0-9]{1,3}",
            "[ -~]{0,4}",
        ];
        let leaf = prop_oneof![
            any::<String>().prop_map(|s| json!({ "S": s })),
            number.clone().prop_map(|n| json!({ "N": n })),
            any::<bool>().prop_map(|b| json!({ "BOOL": b })),
            any::<bool>().prop_map(|b| json!({ "NULL": b })),
            proptest::collection::vec(any::<String>(), 0..3).prop_map(|v| json!({ "SS": v })),
            proptest::collection::vec(number, 0..3).prop_map(|v| json!({ "NS": v })),
            Just(json!({ "B": "AAE=" })),
            Just(json!({})),
            Just(json!({ "S": "x", "BOOL": true })),
        ];
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(|v| json!({ "L": v })),
                proptest::collection::btree_map("[a-z]{1,3}", inner, 0..4)
                    .prop_map(|m| json!({ "M": m })),
            ]
        })
    }

    proptest::proptest! {
        /// Whatever the fast path accepts, it reads exactly as `from_item` does.
        #[test]
        fn the_fast_path_agrees_with_from_item_on_arbitrary_items(
            attrs in proptest::collection::btree_map("[a-z_]{1,8}", attr(), 0..6),
            price in attr(),
        ) {
            let item = serde_json::to_string(&attrs).expect("json");
            let _ = both::<BTreeMap<String, AttrValue>>(&item);
            let mut product = serde_json::json!({
                "tenant_id": {"S": "acme"}, "product_id": {"S": "p-1"}, "name": {"S": "Boot"},
                "category": {"S": "c"}, "currency": {"S": "EUR"},
                "created_at": {"S": "2026-11-23T08:00:00Z"},
                "attributes": {"M": attrs},
            });
            product["price"] = price;
            let _ = both::<Product>(&product.to_string());
        }
    }
}
