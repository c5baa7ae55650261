//! A product of a tenant's catalog, as stored in the `products` table.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{AttrValue, Currency, Money, TenantId, Timestamp};

/// One row of the `products` table (partition key `tenant_id`, sort key `product_id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Product {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub tenant_id: TenantId,
    pub product_id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub category: String,
    #[serde(default)]
    pub brand: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub price: Money,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub currency: Currency,
    #[serde(default)]
    pub stock: i64,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub attributes: BTreeMap<String, AttrValue>,
    #[serde(default = "active_by_default")]
    pub is_active: bool,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub created_at: Timestamp,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub updated_at: Option<Timestamp>,
}

fn active_by_default() -> bool {
    true
}

impl Product {
    /// Checks what the types alone do not: a usable id and name, a non-negative price.
    pub fn validate(&self) -> Result<(), String> {
        validate_key("product_id", &self.product_id)?;
        if self.name.trim().is_empty() {
            return Err("name: must not be empty".into());
        }
        if self.price.is_negative() {
            return Err(format!("price: must not be negative (got {})", self.price));
        }
        Ok(())
    }

    /// The time of the last change the item itself records.
    pub fn last_changed(&self) -> Timestamp {
        self.updated_at.unwrap_or(self.created_at)
    }
}

/// The `Keys` of a products stream record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductKey {
    pub tenant_id: String,
    pub product_id: String,
}

/// The longest item key (product or purchase id) accepted, in bytes.
pub const MAX_KEY_LEN: usize = 256;

/// Item keys become index terms and CSV cells, never paths; still, keep them printable.
pub fn validate_key(field: &str, key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err(format!("{field}: must not be empty"));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(format!("{field}: longer than {MAX_KEY_LEN} bytes"));
    }
    if key.chars().any(char::is_control) {
        return Err(format!("{field}: contains control characters"));
    }
    Ok(())
}
