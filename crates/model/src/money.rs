//! Exact money: a decimal amount (never a binary float) and an ISO 4217 currency code.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::dynamo::NUMBER_MARK;

/// An exact decimal amount of money, up to 28 significant digits.
///
/// It serializes as a decimal string (`"19.99"`), as payment APIs do, so that no JSON
/// reader turns it into a float. It decodes from a DynamoDB `N`, a decimal string or an
/// integer, and refuses floats.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(Decimal);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an exact decimal amount of at most 28 digits")]
pub struct MoneyError(pub String);

impl Money {
    pub const ZERO: Money = Money(Decimal::ZERO);

    pub fn parse(text: &str) -> Result<Self, MoneyError> {
        let text = text.trim();
        // from_str_exact refuses to round, so a 29+ digit amount is an error, not a guess.
        Decimal::from_str_exact(text)
            .ok()
            .or_else(|| exact_scientific(text))
            .map(Money)
            .ok_or_else(|| MoneyError(text.to_owned()))
    }

    pub fn from_decimal(d: Decimal) -> Self {
        Self(d)
    }

    pub fn amount(&self) -> Decimal {
        self.0
    }

    pub fn is_negative(&self) -> bool {
        self.0.is_sign_negative() && !self.0.is_zero()
    }

    /// `self * quantity`, exact; `None` on overflow.
    pub fn times(&self, quantity: i64) -> Option<Money> {
        self.0.checked_mul(Decimal::from(quantity)).map(Money)
    }

    pub fn checked_add(&self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    /// The amount in millionths, rounded, saturating: a sortable, filterable integer for
    /// search indexes. Never used to report an amount back.
    pub fn to_micros(&self) -> i64 {
        use rust_decimal::prelude::ToPrimitive;
        let saturated = if self.0.is_sign_negative() {
            i64::MIN
        } else {
            i64::MAX
        };
        // Up to 28 digits parse; scaling the largest by a million overflows the decimal.
        self.0
            .checked_mul(Decimal::from(1_000_000))
            .and_then(|m| m.round().to_i64())
            .unwrap_or(saturated)
    }
}

/// `1.5e2` and the like, exactly or not at all: `Decimal::from_scientific` rounds a
/// mantissa beyond 28 digits, which is a guess at someone's money (issue #10).
fn exact_scientific(text: &str) -> Option<Decimal> {
    let (mantissa, exponent) = text.split_once(['e', 'E'])?;
    let mantissa = Decimal::from_str_exact(mantissa).ok()?;
    let exponent: i64 = exponent.parse().ok()?;
    // The value is m × 10^-scale.
    let scale = i64::from(mantissa.scale()).checked_sub(exponent)?;
    let m = mantissa.mantissa();
    if scale >= 0 {
        Decimal::try_from_i128_with_scale(m, u32::try_from(scale).ok()?).ok()
    } else {
        let power = 10i128.checked_pow(u32::try_from(-scale).ok()?)?;
        Decimal::try_from_i128_with_scale(m.checked_mul(power)?, 0).ok()
    }
}

impl FromStr for Money {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Money({})", self.0)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(MoneyVisitor)
    }
}

struct MoneyVisitor;

impl<'de> Visitor<'de> for MoneyVisitor {
    type Value = Money;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("money as an exact decimal number or string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Money, E> {
        Money::parse(v).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Money, E> {
        Ok(Money(Decimal::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Money, E> {
        Ok(Money(Decimal::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Money, E> {
        Err(E::custom(format!(
            "money must be an exact decimal, not the binary float {v}"
        )))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Money, A::Error> {
        match map.next_key::<String>()? {
            Some(k) if k == NUMBER_MARK => {
                let text: String = map.next_value()?;
                Money::parse(&text).map_err(de::Error::custom)
            }
            _ => Err(de::Error::custom(
                "money must be an exact decimal number or string, not a map",
            )),
        }
    }
}

/// An ISO 4217 currency code: three uppercase ASCII letters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.as_bytes() {
            [a, b, c] if [a, b, c].iter().all(|x| x.is_ascii_uppercase()) => Ok(Self([*a, *b, *c])),
            _ => Err(format!(
                "{text:?} is not a three-letter uppercase currency code"
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        // Constructed from three ASCII uppercase letters only.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Currency::parse(&raw).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_of_the_largest_amounts_saturate_instead_of_overflowing() {
        let huge = Money::parse("9999999999999999999999999999").unwrap();
        assert_eq!(huge.to_micros(), i64::MAX);
        assert_eq!(
            Money::parse("-9999999999999999999999999999")
                .unwrap()
                .to_micros(),
            i64::MIN
        );
        assert_eq!(Money::parse("19.99").unwrap().to_micros(), 19_990_000);
    }

    #[test]
    fn amounts_keep_every_digit_and_their_scale() {
        assert_eq!(
            Money::parse("19.90").map(|m| m.to_string()),
            Ok("19.90".to_owned())
        );
        assert_eq!(
            Money::parse("0.1").and_then(|a| Ok(a.checked_add(Money::parse("0.2")?))),
            Ok(Money::parse("0.3").ok())
        );
        assert_eq!(
            Money::parse("1234567890123456789.123456789").map(|m| m.to_string()),
            Ok("1234567890123456789.123456789".to_owned())
        );
    }

    #[test]
    fn amounts_beyond_28_digits_are_refused_not_rounded() {
        assert!(Money::parse("12345678901234567890123456789.5").is_err());
        assert!(Money::parse("abc").is_err());
    }

    /// Regression, issue #10: `1.2345…e0` with more than 28 digits was rounded.
    #[test]
    fn amounts_with_an_exponent_are_exact_or_refused() {
        let ok = |t: &str| Money::parse(t).map(|m| m.to_string());
        assert_eq!(ok("1.5e2"), Ok("150".to_owned()));
        assert_eq!(ok("1.5E+2"), Ok("150".to_owned()));
        assert_eq!(ok("15e-1"), Ok("1.5".to_owned()));
        assert_eq!(ok("-2.50e0"), Ok("-2.50".to_owned()));
        for refused in [
            "1.2345678901234567890123456789012e0",
            "1e29",
            "1e-29",
            "1e99999999999999999999",
            "1e",
            "e5",
            "1.5e2.5",
        ] {
            assert!(Money::parse(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn json_floats_are_refused_but_strings_and_integers_accepted() {
        assert!(serde_json::from_str::<Money>("19.99").is_err());
        assert_eq!(
            serde_json::from_str::<Money>("\"19.99\"").ok(),
            Money::parse("19.99").ok()
        );
        assert_eq!(
            serde_json::from_str::<Money>("20").ok(),
            Money::parse("20").ok()
        );
        assert_eq!(
            serde_json::to_string(&Money::parse("19.99").ok()).ok(),
            Some("\"19.99\"".to_owned())
        );
    }

    #[test]
    fn currency_codes_are_three_uppercase_letters() {
        assert!(Currency::parse("EUR").is_ok());
        for bad in ["eur", "EU", "EURO", "E1R", ""] {
            assert!(Currency::parse(bad).is_err(), "{bad}");
        }
    }
}
