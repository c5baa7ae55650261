//! Domain types shared by every cloudpf component: validated tenant ids, products and
//! purchases as they live in DynamoDB, exact money, stream sequence numbers, and the
//! decoding of DynamoDB items into those types.

pub mod attr;
pub mod change;
pub mod dynamo;
pub mod dynamo_json;
pub mod entity;
pub mod money;
pub mod product;
pub mod purchase;
pub mod search_event;
pub mod seq;
pub mod tenant;
pub mod time;

pub use attr::AttrValue;
pub use change::{Change, Op};
pub use entity::{Document, Entity, UnknownEntity};
pub use money::{Currency, Money};
pub use product::Product;
pub use purchase::{LineItem, Purchase, PurchaseStatus};
pub use search_event::{SearchEvent, SearchEventKind};
pub use seq::SeqNo;
pub use tenant::{TenantId, TenantIdError};
pub use time::Timestamp;
