//! What a caller can ask a search engine, and what it answers; engine-independent.

use cloudpf_model::{Currency, Money, Product, Purchase, PurchaseStatus, Timestamp};
use serde::Serialize;

/// How product hits are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProductSort {
    #[default]
    Relevance,
    PriceAsc,
    PriceDesc,
    Newest,
}

impl ProductSort {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "relevance" => Some(Self::Relevance),
            "price_asc" => Some(Self::PriceAsc),
            "price_desc" => Some(Self::PriceDesc),
            "newest" => Some(Self::Newest),
            _ => None,
        }
    }
}

/// A product search. `text` is plain words typed by a person, never query syntax: the
/// engine tokenizes it like the indexed text, matches each word in name, category, brand,
/// tags and description with typo tolerance, and the last word also as a prefix.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProductQuery {
    pub text: String,
    pub category: Option<String>,
    pub brand: Option<String>,
    pub min_price: Option<Money>,
    pub max_price: Option<Money>,
    pub in_stock: Option<bool>,
    pub sort: ProductSort,
    pub offset: usize,
    pub limit: usize,
}

/// Highlighted fragments: the field's text, HTML-escaped, with matched words in `<em>`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Highlights {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProductHit {
    pub product: Product,
    pub score: f32,
    pub highlights: Highlights,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FacetCount {
    pub value: String,
    pub count: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Facets {
    pub category: Vec<FacetCount>,
    pub brand: Vec<FacetCount>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProductResults {
    /// Every matching product, not just this page.
    pub total: u64,
    /// `total` and the facet counts are estimates: an engine may stop counting a query
    /// that matches a large part of the catalog (the embedded one after 5,000 matches).
    pub total_is_estimate: bool,
    pub hits: Vec<ProductHit>,
    /// Counts over every matching product (estimated with `total_is_estimate`).
    pub facets: Facets,
    /// When nothing matched: a query that would find something, its unknown words
    /// replaced by the closest catalog words ("did you mean").
    pub did_you_mean: Option<String>,
}

/// The most autocomplete suggestions one request may ask for (and every engine returns):
/// the API refuses larger sizes, the engines cap at it.
pub const MAX_SUGGESTIONS: usize = 20;

/// One autocomplete suggestion: a product name to complete the search box with.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Suggestion {
    pub text: String,
    pub product_id: String,
    /// The product's price, so a dropdown can show it without a second request.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub price: Money,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub currency: Currency,
    /// Units sold, from the purchases stream.
    pub popularity: u64,
    /// True when the input matched only with a typo.
    pub fuzzy: bool,
}

/// A back-office purchase search; every field narrows the result.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PurchaseQuery {
    pub text: String,
    pub customer_id: Option<String>,
    pub product_id: Option<String>,
    pub status: Option<PurchaseStatus>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub min_total: Option<Money>,
    pub max_total: Option<Money>,
    pub offset: usize,
    pub limit: usize,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PurchaseResults {
    pub total: u64,
    /// Newest first.
    pub hits: Vec<Purchase>,
}

/// The words of `text` as the engines' analyzers split it: runs of letters and digits,
/// everything else a separator. Limits on query words count these, not whitespace-separated
/// chunks: `a.a.a` is three words to every engine, so it is three words to the limit too.
pub fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

/// Elasticsearch's `fuzziness: AUTO`: no typo for 1–2 characters, one for 3–5, two above.
pub fn auto_fuzziness(term: &str) -> u8 {
    match term.chars().count() {
        0..=2 => 0,
        3..=5 => 1,
        _ => 2,
    }
}

/// The English singular and plural forms of a lowercase `word` other than itself
/// ("boot" ↔ "boots", "glass" ↔ "glasses", "battery" ↔ "batteries"): both engines
/// search them too, a step below the word itself. Regular forms only, by suffix rules
/// (no stemmer: Lucene's minimal English stemmer turns "glasses" into "glasse"); words
/// under three letters or with digits are left alone, and a word ending in "ss", "us"
/// or "is" is not taken for a plural. At most two forms per word, so the work stays
/// bounded.
pub fn plural_variants(word: &str) -> Vec<String> {
    let letters = word.chars().count();
    if letters < 3 || !word.chars().all(|c| c.is_alphabetic()) {
        return Vec::new();
    }
    let sibilant = |stem: &str| {
        ["s", "x", "z", "ch", "sh"]
            .iter()
            .any(|e| stem.ends_with(e))
    };
    let vowel = |c: char| matches!(c, 'a' | 'e' | 'i' | 'o' | 'u');
    let mut out = Vec::new();
    // As a plural: its singular. Where the rules cannot tell ("movies": "movy" or
    // "movie"; "cases": "cas" or "case"), both, and the vocabulary decides.
    if let Some(stem) = word.strip_suffix("ies").filter(|s| s.chars().count() >= 2) {
        out.push(format!("{stem}y"));
        out.push(format!("{stem}ie"));
    } else if let Some(stem) = word.strip_suffix("es").filter(|s| sibilant(s)) {
        out.push(stem.to_owned());
        out.push(format!("{stem}e"));
    } else if let Some(stem) = word.strip_suffix('s')
        && !["ss", "us", "is"].iter().any(|e| word.ends_with(e))
    {
        out.push(stem.to_owned());
    }
    // As a singular (not already taken for a plural): its plural.
    if !out.is_empty() {
        out.retain(|v| v != word && v.chars().count() >= 2);
        return out;
    }
    let plural = if sibilant(word) {
        format!("{word}es")
    } else if let Some(stem) = word.strip_suffix('y')
        && stem.chars().last().is_some_and(|c| !vowel(c))
    {
        format!("{stem}ies")
    } else {
        format!("{word}s")
    };
    vec![plural]
}

/// Appends `text` to `out` escaped for HTML text and attribute values: `<`, `>`, `&`,
/// `"` and `'` (as `&#39;`); the escaping of every highlight, whichever engine made it.
pub fn escape_html_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// `text` escaped as [`escape_html_into`] does.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_html_into(&mut out, text);
    out
}

#[cfg(test)]
mod plural_tests {
    use super::plural_variants;

    #[test]
    fn singular_and_plural_forms_follow_the_regular_english_rules() {
        let cases: [(&str, &[&str]); 12] = [
            ("boot", &["boots"]),
            ("boots", &["boot"]),
            ("glass", &["glasses"]),
            ("glasses", &["glass", "glasse"]),
            ("battery", &["batteries"]),
            ("batteries", &["battery", "batterie"]),
            ("movies", &["movy", "movie"]),
            ("cases", &["cas", "case"]),
            ("shoes", &["shoe"]),
            ("key", &["keys"]),
            ("box", &["boxes"]),
            ("bus", &["buses"]),
        ];
        for (word, expected) in cases {
            assert_eq!(plural_variants(word), *expected, "{word}");
        }
        for left_alone in ["tv", "4k", "usb3", ""] {
            assert!(plural_variants(left_alone).is_empty(), "{left_alone}");
        }
    }
}
