//! A purchase (order) of a tenant's customer, as stored in the `purchases` table.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::product::validate_key;
use crate::{Currency, Money, TenantId, Timestamp};

/// One row of the `purchases` table (partition key `tenant_id`, sort key `purchase_id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Purchase {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub tenant_id: TenantId,
    pub purchase_id: String,
    pub customer_id: String,
    #[serde(default)]
    pub items: Vec<LineItem>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub total_amount: Money,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub currency: Currency,
    pub status: PurchaseStatus,
    #[serde(default)]
    pub payment_method: String,
    #[serde(default)]
    pub shipping_country: String,
    #[serde(default)]
    pub shipping_city: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub created_at: Timestamp,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub updated_at: Option<Timestamp>,
}

/// One line of a purchase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LineItem {
    pub product_id: String,
    #[serde(default)]
    pub name: String,
    pub quantity: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub unit_price: Money,
}

impl LineItem {
    /// `unit_price * quantity`, exact.
    pub fn line_total(&self) -> Option<Money> {
        self.unit_price.times(self.quantity)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum PurchaseStatus {
    Placed,
    Paid,
    Shipped,
    Cancelled,
    Refunded,
}

impl PurchaseStatus {
    pub const ALL: [PurchaseStatus; 5] = [
        PurchaseStatus::Placed,
        PurchaseStatus::Paid,
        PurchaseStatus::Shipped,
        PurchaseStatus::Cancelled,
        PurchaseStatus::Refunded,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            PurchaseStatus::Placed => "placed",
            PurchaseStatus::Paid => "paid",
            PurchaseStatus::Shipped => "shipped",
            PurchaseStatus::Cancelled => "cancelled",
            PurchaseStatus::Refunded => "refunded",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl fmt::Display for PurchaseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Purchase {
    /// Checks what the types alone do not: ids, positive quantities, no negative money,
    /// and line totals that fit.
    pub fn validate(&self) -> Result<(), String> {
        validate_key("purchase_id", &self.purchase_id)?;
        validate_key("customer_id", &self.customer_id)?;
        if self.total_amount.is_negative() {
            return Err(format!(
                "total_amount: must not be negative (got {})",
                self.total_amount
            ));
        }
        for (i, item) in self.items.iter().enumerate() {
            validate_key(&format!("items[{i}].product_id"), &item.product_id)?;
            if item.quantity <= 0 {
                return Err(format!(
                    "items[{i}].quantity: must be positive (got {})",
                    item.quantity
                ));
            }
            if item.unit_price.is_negative() {
                return Err(format!("items[{i}].unit_price: must not be negative"));
            }
            if item.line_total().is_none() {
                return Err(format!("items[{i}]: line total overflows"));
            }
        }
        Ok(())
    }
}

/// The `Keys` of a purchases stream record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseKey {
    pub tenant_id: String,
    pub purchase_id: String,
}
