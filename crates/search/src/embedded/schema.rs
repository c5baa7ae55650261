//! Tantivy schemas of the embedded engine, one per entity, and the mapping of domain
//! values to index documents.

use cloudpf_model::{Product, Purchase, dynamo};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer,
};
use tantivy::{Index, TantivyDocument};

/// Bumped whenever a schema changes incompatibly; the index directory carries it, so an
/// old index is never opened with a new schema.
pub const SCHEMA_VERSION: u32 = 1;

/// Name of the analyzer used by every full-text field: words split on non-alphanumerics,
/// lowercased and folded to ASCII, so "Café" matches "cafe".
pub const TEXT_ANALYZER: &str = "cloudpf_text";

/// `state` term of a document that exists.
pub const LIVE: &str = "live";
/// `state` term of a tombstone: a deleted key that still remembers its sequence number,
/// so an older upsert delivered late cannot resurrect it.
pub const DELETED: &str = "deleted";

pub fn register_analyzers(index: &Index) {
    let analyzer = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build();
    index.tokenizers().register(TEXT_ANALYZER, analyzer);
}

fn text_options(stored: bool) -> TextOptions {
    let opts = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(TEXT_ANALYZER)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    if stored { opts.set_stored() } else { opts }
}

/// Fields every index has: the item key, the sequence number that wrote it, whether it
/// is live or a tombstone, and the item itself as DynamoDB JSON (`{"N": "…"}`), which
/// unlike plain JSON keeps 38-digit numbers exact through a read back.
#[derive(Debug, Clone, Copy)]
pub struct CommonFields {
    pub key: Field,
    pub seq: Field,
    pub state: Field,
    pub source: Field,
}

impl CommonFields {
    fn add(b: &mut tantivy::schema::SchemaBuilder) -> Self {
        Self {
            key: b.add_text_field("key", STRING | STORED),
            seq: b.add_text_field("seq", STRING | STORED),
            state: b.add_text_field("state", STRING),
            source: b.add_text_field("source", STORED),
        }
    }

    pub fn tombstone(&self, key: &str, seq: &str) -> TantivyDocument {
        let mut doc = TantivyDocument::default();
        doc.add_text(self.key, key);
        doc.add_text(self.seq, seq);
        doc.add_text(self.state, DELETED);
        doc
    }

    fn live(&self, key: &str, seq: &str, source: &str) -> TantivyDocument {
        let mut doc = TantivyDocument::default();
        doc.add_text(self.key, key);
        doc.add_text(self.seq, seq);
        doc.add_text(self.state, LIVE);
        doc.add_text(self.source, source);
        doc
    }
}

#[derive(Debug, Clone, Copy)]
pub struct ProductFields {
    pub common: CommonFields,
    pub name: Field,
    pub description: Field,
    pub category: Field,
    pub brand: Field,
    pub tags: Field,
    pub category_exact: Field,
    pub brand_exact: Field,
    pub price_micros: Field,
    pub stock: Field,
    pub created_micros: Field,
    pub active: Field,
}

impl ProductFields {
    pub fn build() -> (Schema, Self) {
        let mut b = Schema::builder();
        let common = CommonFields::add(&mut b);
        let fields = Self {
            common,
            name: b.add_text_field("name", text_options(true)),
            description: b.add_text_field("description", text_options(true)),
            category: b.add_text_field("category", text_options(false)),
            brand: b.add_text_field("brand", text_options(false)),
            tags: b.add_text_field("tags", text_options(false)),
            category_exact: b.add_text_field("category_exact", STRING | FAST),
            brand_exact: b.add_text_field("brand_exact", STRING | FAST),
            price_micros: b.add_i64_field("price_micros", INDEXED | FAST),
            stock: b.add_i64_field("stock", INDEXED | FAST),
            created_micros: b.add_i64_field("created_micros", INDEXED | FAST),
            active: b.add_u64_field("active", INDEXED | FAST),
        };
        (b.build(), fields)
    }

    pub fn document(&self, p: &Product, seq: &str) -> Result<TantivyDocument, serde_json::Error> {
        let mut doc = self.common.live(
            &p.product_id,
            seq,
            &serde_json::to_string(&dynamo::product_item(p))?,
        );
        doc.add_text(self.name, &p.name);
        doc.add_text(self.description, &p.description);
        doc.add_text(self.category, &p.category);
        doc.add_text(self.brand, &p.brand);
        for tag in &p.tags {
            doc.add_text(self.tags, tag);
        }
        doc.add_text(self.category_exact, &p.category);
        doc.add_text(self.brand_exact, &p.brand);
        doc.add_i64(self.price_micros, p.price.to_micros());
        doc.add_i64(self.stock, p.stock);
        doc.add_i64(self.created_micros, p.created_at.utc().timestamp_micros());
        doc.add_u64(self.active, u64::from(p.is_active));
        Ok(doc)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct PurchaseFields {
    pub common: CommonFields,
    /// Item names, product ids, the purchase and customer ids: what a back office types.
    pub text: Field,
    pub customer_id: Field,
    pub product_id: Field,
    pub status: Field,
    pub total_micros: Field,
    pub created_micros: Field,
}

impl PurchaseFields {
    pub fn build() -> (Schema, Self) {
        let mut b = Schema::builder();
        let common = CommonFields::add(&mut b);
        let fields = Self {
            common,
            text: b.add_text_field("text", text_options(false)),
            customer_id: b.add_text_field("customer_id", STRING | FAST),
            product_id: b.add_text_field("product_id", STRING),
            status: b.add_text_field("status", STRING | FAST),
            total_micros: b.add_i64_field("total_micros", INDEXED | FAST),
            created_micros: b.add_i64_field("created_micros", INDEXED | FAST),
        };
        (b.build(), fields)
    }

    pub fn document(&self, p: &Purchase, seq: &str) -> Result<TantivyDocument, serde_json::Error> {
        let mut doc = self.common.live(
            &p.purchase_id,
            seq,
            &serde_json::to_string(&dynamo::purchase_item(p))?,
        );
        doc.add_text(self.text, &p.purchase_id);
        doc.add_text(self.text, &p.customer_id);
        for item in &p.items {
            doc.add_text(self.text, &item.name);
            doc.add_text(self.product_id, &item.product_id);
        }
        doc.add_text(self.customer_id, &p.customer_id);
        doc.add_text(self.status, p.status.as_str());
        doc.add_i64(self.total_micros, p.total_amount.to_micros());
        doc.add_i64(self.created_micros, p.created_at.utc().timestamp_micros());
        Ok(doc)
    }
}
