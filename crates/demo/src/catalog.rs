//! Product catalogs: names built from per-category modifiers, nouns and variants, so a
//! few thousand distinct names read like a real shop's ("Ultralight 2-Person Tent – Olive").

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use cloudpf_model::{AttrValue, Currency, Money, Product, TenantId, Timestamp};
use rust_decimal::Decimal;

struct Category {
    name: &'static str,
    modifiers: &'static [&'static str],
    nouns: &'static [&'static str],
    brands: &'static [&'static str],
    /// Price range in whole currency units.
    price: (i64, i64),
}

const CATEGORIES: &[Category] = &[
    Category {
        name: "Electronics",
        modifiers: &[
            "Wireless",
            "Noise-Cancelling",
            "Portable",
            "Ultra-Slim",
            "Gaming",
            "Mechanical",
            "4K",
            "Compact",
            "Fast-Charging",
            "Ergonomic",
        ],
        nouns: &[
            "Headphones",
            "Earbuds",
            "Bluetooth Speaker",
            "Smartwatch",
            "Laptop Stand",
            "Tablet",
            "Monitor",
            "Keyboard",
            "Mouse",
            "Webcam",
            "Charger",
            "Power Bank",
            "USB-C Hub",
            "Router",
            "E-Reader",
        ],
        brands: &["Voltix", "Sonora", "Pixelon", "Northwave", "Kestrel"],
        price: (9, 899),
    },
    Category {
        name: "Outdoor",
        modifiers: &[
            "Ultralight",
            "Waterproof",
            "2-Person",
            "Insulated",
            "Trail",
            "Alpine",
            "All-Season",
            "Packable",
            "Windproof",
        ],
        nouns: &[
            "Tent",
            "Sleeping Bag",
            "Backpack",
            "Hiking Boots",
            "Trekking Poles",
            "Camping Stove",
            "Headlamp",
            "Water Filter",
            "Rain Jacket",
            "Hammock",
        ],
        brands: &["Northpeak", "Trailcraft", "Summitra", "Wildfern"],
        price: (12, 549),
    },
    Category {
        name: "Kitchen",
        modifiers: &[
            "Stainless Steel",
            "Cast Iron",
            "Non-Stick",
            "Ceramic",
            "Electric",
            "Bamboo",
            "Copper",
            "Professional",
        ],
        nouns: &[
            "Chef's Knife",
            "Frying Pan",
            "Dutch Oven",
            "Espresso Machine",
            "Blender",
            "Cutting Board",
            "Kettle",
            "Toaster",
            "Mixing Bowl Set",
            "Coffee Grinder",
        ],
        brands: &["Cucina", "Ferro & Co", "Brewmaster", "Hearthline"],
        price: (8, 699),
    },
    Category {
        name: "Home",
        modifiers: &[
            "Linen",
            "Velvet",
            "Oak",
            "Minimalist",
            "Vintage",
            "Woven",
            "Marble",
            "Scandinavian",
        ],
        nouns: &[
            "Table Lamp",
            "Throw Blanket",
            "Cushion",
            "Wall Clock",
            "Vase",
            "Rug",
            "Bookshelf",
            "Desk Chair",
            "Curtains",
            "Mirror",
        ],
        brands: &["Nordhaus", "Lumen & Loom", "Casa Alba"],
        price: (10, 450),
    },
    Category {
        name: "Sports",
        modifiers: &[
            "Pro",
            "Lightweight",
            "Adjustable",
            "Non-Slip",
            "Carbon",
            "Training",
            "Competition",
            "Foldable",
        ],
        nouns: &[
            "Yoga Mat",
            "Dumbbells",
            "Running Shoes",
            "Jump Rope",
            "Resistance Bands",
            "Water Bottle",
            "Cycling Helmet",
            "Tennis Racket",
            "Football",
            "Foam Roller",
        ],
        brands: &["Stridefit", "Apexa", "Velocita", "Kinetik"],
        price: (6, 320),
    },
    Category {
        name: "Beauty",
        modifiers: &[
            "Organic",
            "Hydrating",
            "Vitamin C",
            "Unscented",
            "Lavender",
            "Argan Oil",
            "SPF 50",
            "Sensitive Skin",
        ],
        nouns: &[
            "Face Cream",
            "Shampoo",
            "Lip Balm",
            "Serum",
            "Perfume",
            "Hair Dryer",
            "Body Lotion",
            "Sunscreen",
            "Cleanser",
            "Beard Oil",
        ],
        brands: &["Lumiere", "Verdana Botanics", "Aurelle"],
        price: (4, 180),
    },
    Category {
        name: "Toys",
        modifiers: &[
            "Wooden",
            "1000-Piece",
            "Classic",
            "Deluxe",
            "Magnetic",
            "Glow-in-the-Dark",
            "Educational",
            "Musical",
        ],
        nouns: &[
            "Puzzle",
            "Building Blocks",
            "Plush Bear",
            "Board Game",
            "Kite",
            "Toy Train",
            "Doll House",
            "Science Kit",
            "Card Game",
            "Remote Control Car",
        ],
        brands: &["Playwell", "Tinker & Tot", "Brightbox"],
        price: (5, 150),
    },
    Category {
        name: "Fashion",
        modifiers: &[
            "Organic Cotton",
            "Merino",
            "Slim-Fit",
            "Oversized",
            "Recycled",
            "Vintage",
            "Leather",
            "Classic",
        ],
        nouns: &[
            "T-Shirt",
            "Hoodie",
            "Jeans",
            "Sneakers",
            "Scarf",
            "Beanie",
            "Wool Socks",
            "Belt",
            "Sunglasses",
            "Watch",
        ],
        brands: &["Threadline", "Maison Rue", "Urbane", "Fjordwear"],
        price: (7, 260),
    },
];

const VARIANTS: &[&str] = &[
    "Black",
    "White",
    "Navy",
    "Olive",
    "Sand",
    "Red",
    "Grey",
    "Forest Green",
    "Sky Blue",
    "Charcoal",
];

const DESCRIPTIONS: &[&str] = &[
    "Designed for everyday use and built to last.",
    "A customer favourite, now in a refreshed design.",
    "Thoughtfully made with durable, responsibly sourced materials.",
    "Lightweight, easy to care for and backed by a two-year warranty.",
    "Award-winning design that balances comfort and performance.",
    "Perfect as a gift, with plastic-free packaging.",
];

/// A tenant's generated catalog.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub tenant: TenantId,
    pub products: Vec<Product>,
}

/// `count` products for `tenant`, with distinct names, created during the 180 days
/// before `now`.
pub fn generate_catalog(
    rng: &mut fastrand::Rng,
    tenant: &TenantId,
    count: usize,
    now: DateTime<Utc>,
) -> Catalog {
    let currency =
        Currency::parse("EUR").unwrap_or_else(|_| unreachable!("EUR is a currency code"));
    let mut seen = HashSet::new();
    let mut products = Vec::with_capacity(count);
    let mut attempts = 0;
    while products.len() < count {
        attempts += 1;
        let cat = &CATEGORIES[rng.usize(..CATEGORIES.len())];
        let modifier = cat.modifiers[rng.usize(..cat.modifiers.len())];
        let noun = cat.nouns[rng.usize(..cat.nouns.len())];
        let variant = VARIANTS[rng.usize(..VARIANTS.len())];
        let mut name = format!("{modifier} {noun} – {variant}");
        if !seen.insert(name.clone()) {
            if attempts < count * 20 {
                continue;
            }
            // Past the distinct combinations: number editions, as shops do.
            name = format!("{name} (Edition {})", products.len());
            seen.insert(name.clone());
        }
        let brand = cat.brands[rng.usize(..cat.brands.len())];
        let cents = rng.i64(cat.price.0 * 100..=cat.price.1 * 100);
        // Shop prices end in .99, .49 or .00.
        let cents = cents - cents % 100 + [99, 49, 0][rng.usize(..3)];
        let created = now - Duration::minutes(rng.i64(60 * 24..60 * 24 * 180));
        let attributes = BTreeMap::from([
            (
                "color".to_owned(),
                AttrValue::String(variant.to_lowercase()),
            ),
            (
                "weight_kg".to_owned(),
                AttrValue::Number(format!("{}.{}", rng.u32(0..12), rng.u32(0..10))),
            ),
        ]);
        products.push(Product {
            tenant_id: tenant.clone(),
            product_id: format!("p-{:05}", products.len() + 1),
            name,
            description: format!(
                "{brand} {} {}",
                noun.to_lowercase(),
                DESCRIPTIONS[rng.usize(..DESCRIPTIONS.len())]
            ),
            category: cat.name.to_owned(),
            brand: brand.to_owned(),
            price: Money::from_decimal(Decimal::new(cents.max(99), 2)),
            currency,
            stock: if rng.u8(..10) == 0 {
                0
            } else {
                rng.i64(1..500)
            },
            tags: vec![
                cat.name.to_lowercase(),
                modifier.to_lowercase(),
                variant.to_lowercase(),
            ],
            attributes,
            is_active: true,
            created_at: Timestamp::from_utc(created),
            updated_at: None,
        });
    }
    Catalog {
        tenant: tenant.clone(),
        products,
    }
}
