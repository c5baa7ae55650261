//! What the scenarios write: a [`Writer`] that stamps changes with increasing sequence
//! numbers as a stream would, product and purchase builders, and the small shop every
//! scenario starts from ([`seed`]).

use std::sync::atomic::{AtomicU64, Ordering};

use cloudpf_model::{
    Currency, LineItem, Money, Product, Purchase, PurchaseStatus, SeqNo, TenantId, Timestamp,
};

use crate::engine::{DocChange, SearchEngine, Versioned};

/// Writes to an engine with ever-increasing sequence numbers, as a stream would.
#[derive(Debug)]
pub struct Writer<'a> {
    pub engine: &'a dyn SearchEngine,
    seq: AtomicU64,
}

pub fn tenant(t: &str) -> TenantId {
    TenantId::parse(t).expect("a valid tenant id")
}

pub(super) fn money(m: &str) -> Money {
    Money::parse(m).expect("a valid amount")
}

pub fn product(
    t: &str,
    id: &str,
    name: &str,
    category: &str,
    brand: &str,
    price: &str,
    stock: i64,
) -> Product {
    Product {
        tenant_id: tenant(t),
        product_id: id.to_owned(),
        name: name.to_owned(),
        description: String::new(),
        category: category.to_owned(),
        brand: brand.to_owned(),
        price: money(price),
        currency: Currency::parse("EUR").expect("EUR"),
        stock,
        tags: Vec::new(),
        attributes: Default::default(),
        is_active: true,
        created_at: Timestamp::parse("2025-06-01T10:00:00Z").expect("a timestamp"),
        updated_at: None,
    }
}

pub fn purchase(
    t: &str,
    id: &str,
    customer: &str,
    created: &str,
    status: PurchaseStatus,
    items: &[(&str, &str, i64, &str)],
) -> Purchase {
    let items: Vec<LineItem> = items
        .iter()
        .map(|(pid, name, q, price)| LineItem {
            product_id: (*pid).to_owned(),
            name: (*name).to_owned(),
            quantity: *q,
            unit_price: money(price),
        })
        .collect();
    let total = items
        .iter()
        .filter_map(LineItem::line_total)
        .fold(Money::ZERO, |a, b| a.checked_add(b).expect("no overflow"));
    Purchase {
        tenant_id: tenant(t),
        purchase_id: id.to_owned(),
        customer_id: customer.to_owned(),
        items,
        total_amount: total,
        currency: Currency::parse("EUR").expect("EUR"),
        status,
        payment_method: "card".to_owned(),
        shipping_country: "DE".to_owned(),
        shipping_city: "Berlin".to_owned(),
        created_at: Timestamp::parse(created).expect("a timestamp"),
        updated_at: None,
    }
}

impl<'a> Writer<'a> {
    pub fn new(engine: &'a dyn SearchEngine) -> Self {
        Self {
            engine,
            seq: AtomicU64::new(1_000),
        }
    }

    fn next(&self) -> SeqNo {
        SeqNo::parse(&self.seq.fetch_add(1, Ordering::SeqCst).to_string()).expect("digits")
    }

    /// Upserts keyed by `key`, each with the next sequence number.
    fn upserts<T>(&self, items: Vec<T>, key: impl Fn(&T) -> String) -> Vec<Versioned<T>> {
        items
            .into_iter()
            .map(|item| Versioned {
                key: key(&item),
                seq: self.next(),
                change: DocChange::Upsert(item),
            })
            .collect()
    }

    pub async fn products(&self, items: Vec<Product>) {
        let Some(t) = items.first().map(|p| p.tenant_id.clone()) else {
            return;
        };
        let changes = self.upserts(items, |p| p.product_id.clone());
        self.engine
            .apply_products(&t, changes)
            .await
            .expect("products applied");
    }

    pub async fn delete_product(&self, t: &str, id: &str) {
        let change = Versioned {
            key: id.to_owned(),
            seq: self.next(),
            change: DocChange::Delete,
        };
        self.engine
            .apply_products(&tenant(t), vec![change])
            .await
            .expect("delete applied");
    }

    pub async fn purchases(&self, items: Vec<Purchase>) {
        let Some(t) = items.first().map(|p| p.tenant_id.clone()) else {
            return;
        };
        let changes = self.upserts(items, |p| p.purchase_id.clone());
        self.engine
            .apply_purchases(&t, changes)
            .await
            .expect("purchases applied");
    }
}

/// A small shop: laptops and friends, plus a second shop that must stay invisible.
pub async fn seed(w: &Writer<'_>) {
    let mut backpack = product(
        "shop-a",
        "p1",
        "Ultralight Laptop Backpack",
        "Outdoor",
        "Northpeak",
        "89.00",
        10,
    );
    backpack.description = "Fits a 15 inch notebook and a water bottle".into();
    let mut mouse = product(
        "shop-a",
        "p4",
        "Wireless Mouse",
        "Electronics",
        "Voltix",
        "19.99",
        50,
    );
    mouse.description = "Works with any laptop or tablet".into();
    let mut newest = product(
        "shop-a",
        "p2",
        "Gaming Laptop 15",
        "Electronics",
        "Voltix",
        "1299.00",
        3,
    );
    newest.created_at = Timestamp::parse("2025-07-01T10:00:00Z").expect("a timestamp");
    w.products(vec![
        backpack,
        newest,
        product(
            "shop-a",
            "p3",
            "Laptop Stand Aluminium",
            "Electronics",
            "Pixelon",
            "39.99",
            0,
        ),
        mouse,
        product(
            "shop-a",
            "p5",
            "Trail Running Shoes",
            "Sports",
            "Stridefit",
            "120.00",
            7,
        ),
        product(
            "shop-a",
            "p6",
            "Camping Stove",
            "Outdoor",
            "Trailcraft",
            "45.50",
            4,
        ),
        product(
            "shop-a",
            "p7",
            "Marble Stone Coasters",
            "Home",
            "Casa Alba",
            "24.00",
            12,
        ),
    ])
    .await;
    w.products(vec![product(
        "shop-b",
        "p1",
        "Laptop Sleeve Secret",
        "Electronics",
        "Hidden",
        "15.00",
        5,
    )])
    .await;
}
