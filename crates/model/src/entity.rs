//! Which table a change, an index or a lake dataset belongs to. Every component names
//! the two tables with [`Entity`] (`products`, `purchases`: the DynamoDB table, the
//! index directory, the Elasticsearch alias, the lake dataset and the dead-letter
//! prefix all use these names), and each table's item type says what it is with
//! [`Document`].

use std::fmt;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{Product, Purchase, TenantId};

/// One of the two tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Entity {
    Products,
    Purchases,
}

impl Entity {
    pub const ALL: [Entity; 2] = [Entity::Products, Entity::Purchases];
    /// The names [`Entity::from_str`] accepts, in the order of [`Entity::ALL`].
    pub const NAMES: [&'static str; 2] = ["products", "purchases"];

    pub const fn as_str(self) -> &'static str {
        match self {
            Entity::Products => "products",
            Entity::Purchases => "purchases",
        }
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected products or purchases, got {0:?}")]
pub struct UnknownEntity(pub String);

impl FromStr for Entity {
    type Err = UnknownEntity;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "products" => Ok(Entity::Products),
            "purchases" => Ok(Entity::Purchases),
            other => Err(UnknownEntity(other.to_owned())),
        }
    }
}

/// An item of one of the two tables: what every sink needs to know of it, whatever the
/// engine. Engines add their own traits on top (how to index it), never their own names.
pub trait Document: DeserializeOwned + Send + Sync + 'static {
    const ENTITY: Entity;
    /// The table's sort key attribute (`product_id`, `purchase_id`).
    const KEY: &'static str;
    fn tenant(&self) -> &TenantId;
    fn key(&self) -> &str;
    /// Why the item can never be stored, if it cannot.
    fn validate(&self) -> Result<(), String>;
}

impl Document for Product {
    const ENTITY: Entity = Entity::Products;
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

impl Document for Purchase {
    const ENTITY: Entity = Entity::Purchases;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_entity_reads_back_from_its_name_and_nothing_else_is_one() {
        for (entity, name) in Entity::ALL.into_iter().zip(Entity::NAMES) {
            assert_eq!(entity.as_str(), name);
            assert_eq!(name.parse::<Entity>(), Ok(entity));
            assert_eq!(
                serde_json::to_string(&entity).unwrap(),
                format!("\"{name}\"")
            );
        }
        let err = "Products".parse::<Entity>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "expected products or purchases, got \"Products\""
        );
        assert!("product".parse::<Entity>().is_err());
    }
}
