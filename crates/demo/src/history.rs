//! The change history of the demo shops as stream events: products created, repriced
//! and deleted; purchases placed, paid, shipped, cancelled and refunded, and a few
//! corrected (a `created_at` moved to an earlier day, a second identical line item),
//! deleted, or deleted by a record without an old image.

use chrono::{DateTime, Duration, Utc};
use cloudpf_cdc::source::events::{self, StreamWriter};
use cloudpf_model::{
    Currency, LineItem, Money, Op, Product, Purchase, PurchaseStatus, TenantId, Timestamp,
};
use rust_decimal::Decimal;
use serde_dynamo::Item;

use crate::catalog::{Catalog, generate_catalog};

/// Records per Lambda batch, the event source mapping's default batch size.
pub const BATCH_SIZE: usize = 100;

const CITIES: &[(&str, &str)] = &[
    ("DE", "Berlin"),
    ("DE", "Munich"),
    ("FR", "Paris"),
    ("FR", "Lyon"),
    ("NL", "Amsterdam"),
    ("ES", "Madrid"),
    ("IT", "Milan"),
    ("GB", "London"),
    ("SE", "Stockholm"),
    ("US", "New York"),
    ("US", "Austin"),
    ("PL", "Warsaw"),
];
const PAYMENT_METHODS: &[&str] = &[
    "card",
    "card",
    "card",
    "paypal",
    "apple_pay",
    "klarna",
    "bank_transfer",
];

/// Everything the demo feeds through the handlers.
#[derive(Debug, Clone)]
pub struct History {
    pub catalogs: Vec<Catalog>,
    /// Batches of the products stream, in order.
    pub product_batches: Vec<aws_lambda_events::event::dynamodb::Event>,
    /// Batches of the purchases stream, in order.
    pub purchase_batches: Vec<aws_lambda_events::event::dynamodb::Event>,
}

struct Pending {
    at: DateTime<Utc>,
    op: Op,
    keys: Item,
    new: Option<Item>,
    old: Option<Item>,
}

fn product_change(
    at: DateTime<Utc>,
    op: Op,
    new: Option<&Product>,
    old: Option<&Product>,
) -> Option<Pending> {
    let keys = events::product_keys(new.or(old)?);
    Some(Pending {
        at,
        op,
        keys,
        new: new.map(events::product_item),
        old: old.map(events::product_item),
    })
}

fn purchase_change(
    at: DateTime<Utc>,
    op: Op,
    new: Option<&Purchase>,
    old: Option<&Purchase>,
) -> Option<Pending> {
    let keys = events::purchase_keys(new.or(old)?);
    Some(Pending {
        at,
        op,
        keys,
        new: new.map(events::purchase_item),
        old: old.map(events::purchase_item),
    })
}

fn into_batches(
    table: &str,
    mut pending: Vec<Pending>,
) -> Vec<aws_lambda_events::event::dynamodb::Event> {
    // A stream is ordered by time; the sort is stable, so same-instant changes keep order.
    pending.sort_by_key(|p| p.at);
    let mut stream = StreamWriter::new(table);
    let records: Vec<_> = pending
        .into_iter()
        .map(|p| stream.record(p.op, p.keys, p.new, p.old, p.at))
        .collect();
    records
        .chunks(BATCH_SIZE)
        .map(|c| events::event(c.to_vec()))
        .collect()
}

fn minutes(rng: &mut fastrand::Rng, lo: i64, hi: i64) -> Duration {
    Duration::minutes(rng.i64(lo..hi))
}

/// Days before `now` over which [`generate_history`] spreads purchases.
pub const DEFAULT_DAYS: u32 = 90;

/// The demo history for `tenants`, deterministic for `seed` and `now`, purchases over the
/// last [`DEFAULT_DAYS`] days.
pub fn generate_history(
    seed: u64,
    tenants: &[TenantId],
    products_per_tenant: usize,
    purchases_per_tenant: usize,
    now: DateTime<Utc>,
) -> History {
    generate_history_over(
        seed,
        tenants,
        products_per_tenant,
        purchases_per_tenant,
        now,
        DEFAULT_DAYS,
    )
}

/// [`generate_history`] with purchases spread over the last `days` days (at least 1).
pub fn generate_history_over(
    seed: u64,
    tenants: &[TenantId],
    products_per_tenant: usize,
    purchases_per_tenant: usize,
    now: DateTime<Utc>,
    days: u32,
) -> History {
    let span = 60 * 24 * i64::from(days.max(1));
    let mut rng = fastrand::Rng::with_seed(seed);
    // The corrections and deletions draw from their own generator, so the rest of the
    // history is the same as before they were added.
    let mut quirks = fastrand::Rng::with_seed(seed ^ 0x0010_c0ff_ee00);
    let mut product_changes = Vec::new();
    let mut purchase_changes = Vec::new();
    let mut catalogs = Vec::new();

    for tenant in tenants {
        let catalog = generate_catalog(&mut rng, tenant, products_per_tenant, now);
        for p in &catalog.products {
            product_changes.extend(product_change(
                p.created_at.utc(),
                Op::Insert,
                Some(p),
                None,
            ));
        }
        let mut current: Vec<Product> = catalog.products.clone();
        for p in current.iter_mut() {
            let roll = rng.u8(..100);
            if roll < 15 {
                // A price change of -20 % to +15 %, rounded to cents.
                let old = p.clone();
                let pct = Decimal::new(rng.i64(80..=115), 2);
                p.price = Money::from_decimal((old.price.amount() * pct).round_dp(2));
                p.stock = rng.i64(0..300);
                let at = (old.created_at.utc() + minutes(&mut rng, 60, 60 * 24 * 30)).min(now);
                p.updated_at = Some(Timestamp::from_utc(at));
                product_changes.extend(product_change(at, Op::Modify, Some(p), Some(&old)));
            }
        }
        // A few products are discontinued and deleted.
        let mut deleted = vec![false; current.len()];
        for (i, p) in current.iter().enumerate() {
            if rng.u8(..100) < 3 {
                deleted[i] = true;
                let at = (p.last_changed().utc() + minutes(&mut rng, 60, 60 * 24 * 20)).min(now);
                product_changes.extend(product_change(at, Op::Remove, None, Some(p)));
            }
        }

        let sellable: Vec<&Product> = catalog.products.iter().collect();
        for n in 0..purchases_per_tenant {
            let created = now - minutes(&mut rng, 10, span);
            let lines = 1 + rng.usize(..3);
            let mut items: Vec<LineItem> = Vec::with_capacity(lines);
            for _ in 0..lines {
                // Squaring a uniform draw skews sales towards the first products, so a few
                // become best-sellers, as in a real shop.
                let skew = rng.f64() * rng.f64();
                let product =
                    sellable[((skew * sellable.len() as f64) as usize).min(sellable.len() - 1)];
                if items.iter().any(|i| i.product_id == product.product_id) {
                    continue;
                }
                items.push(LineItem {
                    product_id: product.product_id.clone(),
                    name: product.name.clone(),
                    quantity: 1 + rng.i64(0..3),
                    unit_price: product.price,
                });
            }
            let total = items
                .iter()
                .filter_map(LineItem::line_total)
                .fold(Money::ZERO, |a, b| a.checked_add(b).unwrap_or(a));
            let (country, city) = CITIES[rng.usize(..CITIES.len())];
            let mut purchase = Purchase {
                tenant_id: tenant.clone(),
                purchase_id: format!("o-{:06}", n + 1),
                customer_id: format!(
                    "c-{:04}",
                    1 + rng.usize(..(purchases_per_tenant / 3).max(1))
                ),
                items,
                total_amount: total,
                currency: Currency::parse("EUR")
                    .unwrap_or_else(|_| unreachable!("EUR is a currency code")),
                status: PurchaseStatus::Placed,
                payment_method: PAYMENT_METHODS[rng.usize(..PAYMENT_METHODS.len())].to_owned(),
                shipping_country: country.to_owned(),
                shipping_city: city.to_owned(),
                created_at: Timestamp::from_utc(created),
                updated_at: None,
            };
            purchase_changes.extend(purchase_change(created, Op::Insert, Some(&purchase), None));
            // The order's life: most are paid, then shipped; some cancelled or refunded.
            let mut at = created;
            let roll = rng.u8(..100);
            let path: &[PurchaseStatus] = match roll {
                0..7 => &[PurchaseStatus::Cancelled],
                7..12 => &[
                    PurchaseStatus::Paid,
                    PurchaseStatus::Shipped,
                    PurchaseStatus::Refunded,
                ],
                12..20 => &[],
                20..45 => &[PurchaseStatus::Paid],
                _ => &[PurchaseStatus::Paid, PurchaseStatus::Shipped],
            };
            for status in path {
                let next = at + minutes(&mut rng, 5, 60 * 24 * 3);
                if next > now {
                    break;
                }
                at = next;
                let old = purchase.clone();
                purchase.status = *status;
                purchase.updated_at = Some(Timestamp::from_utc(at));
                purchase_changes.extend(purchase_change(
                    at,
                    Op::Modify,
                    Some(&purchase),
                    Some(&old),
                ));
            }
            let roll = quirks.u8(..100);
            let next = at + minutes(&mut quirks, 5, 60 * 24);
            if roll >= 12 || next > now {
                continue;
            }
            let old = purchase.clone();
            purchase.updated_at = Some(Timestamp::from_utc(next));
            let change = match roll {
                // A back-office fix: the order was placed a day or two earlier.
                0..4 => {
                    let days = Duration::days(quirks.i64(1..=2));
                    purchase.created_at = Timestamp::from_utc(old.created_at.utc() - days);
                    purchase_change(next, Op::Modify, Some(&purchase), Some(&old))
                }
                // One more of the first item, as a line of its own.
                4..7 => {
                    if let Some(first) = purchase.items.first().cloned() {
                        purchase.total_amount = first
                            .line_total()
                            .and_then(|t| purchase.total_amount.checked_add(t))
                            .unwrap_or(purchase.total_amount);
                        purchase.items.push(first);
                    }
                    purchase_change(next, Op::Modify, Some(&purchase), Some(&old))
                }
                // A test order deleted.
                7..10 => purchase_change(next, Op::Remove, None, Some(&old)),
                // Deleted, seen through a record without an old image (as a stream
                // without old images, or an old image that does not decode, delivers it).
                _ => purchase_change(next, Op::Remove, None, Some(&old)).map(|mut p| {
                    p.old = None;
                    p
                }),
            };
            purchase_changes.extend(change);
        }
        catalogs.push(catalog);
    }

    // One malformed record, so the demo shows what the dead-letter area is for.
    if let Some(first) = catalogs.first().and_then(|c| c.products.first()) {
        let mut keys = events::product_keys(first);
        keys.insert(
            "product_id".into(),
            serde_dynamo::AttributeValue::S("p-broken".into()),
        );
        let mut item = events::product_item(first);
        item.insert(
            "product_id".into(),
            serde_dynamo::AttributeValue::S("p-broken".into()),
        );
        item.insert(
            "price".into(),
            serde_dynamo::AttributeValue::S("call us".into()),
        );
        product_changes.push(Pending {
            at: now - Duration::minutes(5),
            op: Op::Insert,
            keys,
            new: Some(item),
            old: None,
        });
    }

    History {
        catalogs,
        product_batches: into_batches("products", product_changes),
        purchase_batches: into_batches("purchases", purchase_changes),
    }
}
