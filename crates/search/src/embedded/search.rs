//! Product and purchase search over one tenant's Tantivy index.

use std::ops::Bound;

use cloudpf_model::{Money, Product, Purchase, dynamo};
use serde::de::DeserializeOwned;
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{
    AllQuery, BooleanQuery, ConstScoreQuery, Occur, Query, RangeQuery, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption, Value};
use tantivy::{DocAddress, Order, Searcher, TantivyDocument, Term};

use super::collect::{By, ProductCollector};
use super::schema::{CommonFields, LIVE, ProductFields};
use super::suggest::Lev;
use super::text::{Automata, Lexicon, WordMatcher, analyze, vocabulary, words_query};
use super::{Fields, TenantIndex, unavailable};
use crate::engine::SearchError;
use crate::query::{
    Facets, Highlights, ProductHit, ProductQuery, ProductResults, ProductSort, PurchaseQuery,
    PurchaseResults, Suggestion,
};

/// How many distinct categories and brands a facet lists at most.
const FACET_SIZE: usize = 50;

type Clause = (Occur, Box<dyn Query>);

fn filter(q: Box<dyn Query>) -> Clause {
    // Filters narrow the result without adding to the score.
    (Occur::Must, Box::new(ConstScoreQuery::new(q, 0.0)))
}

fn term(field: Field, value: &str) -> Clause {
    filter(Box::new(TermQuery::new(
        Term::from_field_text(field, value),
        IndexRecordOption::Basic,
    )))
}

fn i64_range(field: Field, lo: Option<i64>, hi: Option<i64>) -> Option<Clause> {
    if lo.is_none() && hi.is_none() {
        return None;
    }
    let bound = |v: Option<i64>| {
        v.map_or(Bound::Unbounded, |v| {
            Bound::Included(Term::from_field_i64(field, v))
        })
    };
    Some(filter(Box::new(RangeQuery::new(bound(lo), bound(hi)))))
}

/// The product fields searched with typos.
fn typo_fields(f: &ProductFields) -> [Field; 4] {
    [f.name, f.category, f.brand, f.tags]
}

fn live(common: &CommonFields) -> Clause {
    term(common.state, LIVE)
}

fn money_range(field: Field, lo: Option<Money>, hi: Option<Money>) -> Option<Clause> {
    i64_range(field, lo.map(|m| m.to_micros()), hi.map(|m| m.to_micros()))
}

fn boolean(clauses: Vec<Clause>) -> Box<dyn Query> {
    if clauses.is_empty() {
        Box::new(AllQuery)
    } else {
        Box::new(BooleanQuery::new(clauses))
    }
}

fn decode<T: DeserializeOwned>(
    searcher: &Searcher,
    common: &CommonFields,
    addr: DocAddress,
) -> Result<T, SearchError> {
    let doc: TantivyDocument = searcher.doc(addr).map_err(unavailable)?;
    let source = doc
        .get_first(common.source)
        .and_then(|v| v.as_str())
        .ok_or_else(|| SearchError::Corrupt("live document without source".into()))?;
    dynamo::from_item_json(source).map_err(|e| SearchError::Corrupt(e.to_string()))
}

/// Runs `query` ordered by an i64 fast field; returns the total matches and the page.
fn top_by_field(
    searcher: &Searcher,
    query: &dyn Query,
    (field, order): (&str, Order),
    offset: usize,
    limit: usize,
) -> Result<(usize, Vec<DocAddress>), SearchError> {
    // Tantivy refuses a zero limit; ask for one and drop it.
    let top = TopDocs::with_limit(limit.max(1))
        .and_offset(offset)
        .order_by_fast_field::<i64>(field, order);
    let (total, hits) = searcher.search(query, &(Count, top)).map_err(unavailable)?;
    Ok((
        total,
        hits.into_iter().take(limit).map(|(_, addr)| addr).collect(),
    ))
}

impl TenantIndex {
    pub(crate) fn search_products(
        &self,
        automata: &Automata,
        q: &ProductQuery,
    ) -> Result<ProductResults, SearchError> {
        let Fields::Products(f) = &self.fields else {
            return Err(SearchError::Corrupt("products index expected".into()));
        };
        let analyzer = self
            .index
            .tokenizer_for_field(f.name)
            .map_err(unavailable)?;
        let words = analyze(&analyzer, &q.text);
        let searcher = self.reader.searcher();
        let by = match q.sort {
            ProductSort::Relevance => By::Score,
            ProductSort::PriceAsc => By::Field("price_micros", Order::Asc),
            ProductSort::PriceDesc => By::Field("price_micros", Order::Desc),
            ProductSort::Newest => By::Field("created_micros", Order::Desc),
        };
        let run = |matcher: &mut WordMatcher| {
            let query = self.product_query(f, &searcher, matcher, q)?;
            let collector = ProductCollector::new(
                by,
                q.offset,
                q.limit,
                ["category_exact", "brand_exact"],
                FACET_SIZE,
            );
            searcher
                .search(query.as_ref(), &collector)
                .map_err(unavailable)
        };
        let mut matcher = WordMatcher::new(automata, &words).with_plural_forms();
        let mut collected = run(&mut matcher)?;
        // Joined and split words only when the words as typed (and their plural forms)
        // found less than the page asked for (issue #16): they cost vocabulary walks per
        // word and pair, and rank below exact, plural and prefix matches anyway.
        let page_end = u64::try_from(q.offset.saturating_add(q.limit)).unwrap_or(u64::MAX);
        if !words.is_empty() && collected.total < page_end {
            matcher = WordMatcher::new(automata, &words).with_alternatives();
            collected = run(&mut matcher)?;
        }
        let [category, brand] = collected.facets;

        let mut hits = Vec::with_capacity(collected.page.len());
        for (score, addr) in collected.page {
            let product: Product = decode(&searcher, &f.common, addr)?;
            let highlights = if words.is_empty() {
                Highlights::default()
            } else {
                Highlights {
                    name: matcher.highlight(&analyzer, &product.name, true),
                    description: matcher.highlight(&analyzer, &product.description, false),
                }
            };
            hits.push(ProductHit {
                product,
                score,
                highlights,
            });
        }
        let did_you_mean = if collected.total == 0 && !words.is_empty() {
            self.did_you_mean(f, automata, &searcher, &words, q)?
        } else {
            None
        };
        Ok(ProductResults {
            total: collected.total,
            total_is_estimate: collected.estimated,
            hits,
            facets: Facets { category, brand },
            did_you_mean,
        })
    }

    /// The product search of `q` for the words of `matcher`, with `q`'s filters.
    fn product_query(
        &self,
        f: &ProductFields,
        searcher: &Searcher,
        matcher: &mut WordMatcher,
        q: &ProductQuery,
    ) -> Result<Box<dyn Query>, SearchError> {
        // Tombstones have no text fields, so words alone keep them out; browsing without
        // words needs the filter.
        let mut clauses = if matcher.is_empty() {
            vec![live(&f.common)]
        } else {
            Vec::new()
        };
        clauses.push(filter(Box::new(TermQuery::new(
            Term::from_field_u64(f.active, 1),
            IndexRecordOption::Basic,
        ))));
        if !matcher.is_empty() {
            let fields = [
                (f.name, 3.0),
                (f.category, 2.0),
                (f.brand, 2.0),
                (f.tags, 1.5),
                (f.description, 1.0),
            ];
            clauses.push((
                Occur::Must,
                words_query(&self.lexicon(searcher), &fields, &typo_fields(f), matcher)?,
            ));
        }
        if let Some(c) = &q.category {
            clauses.push(term(f.category_exact, c));
        }
        if let Some(b) = &q.brand {
            clauses.push(term(f.brand_exact, b));
        }
        clauses.extend(money_range(f.price_micros, q.min_price, q.max_price));
        clauses.extend(match q.in_stock {
            Some(true) => i64_range(f.stock, Some(1), None),
            Some(false) => i64_range(f.stock, None, Some(0)),
            None => None,
        });
        Ok(boolean(clauses))
    }

    /// For a search that found nothing: the same words with each word that is in none of
    /// the typo-tolerant fields replaced by the closest word that is, if that search, with
    /// the same filters, finds something. "Closest": within two edits from four letters
    /// on (one below), so more than the search itself allows a short word; the most
    /// frequent among the closest. One vocabulary walk per unknown word and one count,
    /// only on an empty result.
    fn did_you_mean(
        &self,
        f: &ProductFields,
        automata: &Automata,
        searcher: &Searcher,
        words: &[String],
        q: &ProductQuery,
    ) -> Result<Option<String>, SearchError> {
        let lexicon = self.lexicon(searcher);
        let vocabularies = typo_fields(f)
            .into_iter()
            .map(|field| vocabulary(lexicon.vocabularies, searcher, lexicon.commit, field))
            .collect::<Result<Vec<_>, _>>()?;
        let mut corrected = Vec::with_capacity(words.len());
        let mut changed = false;
        for word in words {
            if vocabularies.iter().any(|v| v.contains_key(word)) {
                corrected.push(word.clone());
                continue;
            }
            let distance = if word.chars().count() < 4 { 1 } else { 2 };
            let Some(dfa) = automata.dfa(word, distance, false) else {
                corrected.push(word.clone());
                continue;
            };
            // (distance, more documents first, the word)
            let mut best: Option<(u8, std::cmp::Reverse<u64>, String)> = None;
            for v in &vocabularies {
                let mut stream = fst::IntoStreamer::into_stream(v.search(Lev(&dfa)));
                while let Some((term, docs)) = fst::Streamer::next(&mut stream) {
                    let levenshtein_automata::Distance::Exact(d) = dfa.eval(term) else {
                        continue;
                    };
                    let Ok(text) = std::str::from_utf8(term) else {
                        continue;
                    };
                    let candidate = (d, std::cmp::Reverse(docs), text.to_owned());
                    if best.as_ref().is_none_or(|b| candidate < *b) {
                        best = Some(candidate);
                    }
                }
            }
            match best {
                Some((_, _, better)) => {
                    corrected.push(better);
                    changed = true;
                }
                None => corrected.push(word.clone()),
            }
        }
        if !changed {
            return Ok(None);
        }
        let mut matcher = WordMatcher::new(automata, &corrected).with_alternatives();
        let query = self.product_query(f, searcher, &mut matcher, q)?;
        let found = searcher
            .search(query.as_ref(), &Count)
            .map_err(unavailable)?;
        Ok((found > 0).then(|| corrected.join(" ")))
    }

    /// Autocomplete while the tenant's suggester is being built: the names of the
    /// products a search for what was typed finds, best first, without sales figures.
    pub(crate) fn suggest_from_index(
        &self,
        automata: &Automata,
        prefix: &str,
        size: usize,
    ) -> Result<Vec<Suggestion>, SearchError> {
        let results = self.search_products(
            automata,
            &ProductQuery {
                text: prefix.to_owned(),
                limit: size,
                ..ProductQuery::default()
            },
        )?;
        Ok(results
            .hits
            .into_iter()
            .map(|h| Suggestion {
                fuzzy: h.highlights.name.is_none(),
                text: h.product.name,
                product_id: h.product.product_id,
                price: h.product.price,
                currency: h.product.currency,
                popularity: 0,
            })
            .collect())
    }

    fn lexicon<'a>(&'a self, searcher: &'a Searcher) -> Lexicon<'a> {
        Lexicon {
            searcher,
            commit: super::commit_id(searcher),
            vocabularies: &self.vocabularies,
        }
    }

    pub(crate) fn search_purchases(
        &self,
        automata: &Automata,
        q: &PurchaseQuery,
    ) -> Result<PurchaseResults, SearchError> {
        let Fields::Purchases(f) = &self.fields else {
            return Err(SearchError::Corrupt("purchases index expected".into()));
        };
        let analyzer = self
            .index
            .tokenizer_for_field(f.text)
            .map_err(unavailable)?;
        let words = analyze(&analyzer, &q.text);
        let mut clauses = vec![live(&f.common)];
        let searcher = self.reader.searcher();
        if !words.is_empty() {
            let mut matcher = WordMatcher::new(automata, &words);
            clauses.push((
                Occur::Must,
                words_query(
                    &self.lexicon(&searcher),
                    &[(f.text, 1.0)],
                    &[f.text],
                    &mut matcher,
                )?,
            ));
        }
        if let Some(c) = &q.customer_id {
            clauses.push(term(f.customer_id, c));
        }
        if let Some(p) = &q.product_id {
            clauses.push(term(f.product_id, p));
        }
        if let Some(s) = q.status {
            clauses.push(term(f.status, s.as_str()));
        }
        clauses.extend(i64_range(
            f.created_micros,
            q.from.map(|t| t.utc().timestamp_micros()),
            q.to.map(|t| t.utc().timestamp_micros()),
        ));
        clauses.extend(money_range(f.total_micros, q.min_total, q.max_total));
        let query = boolean(clauses);
        let (total, page) = top_by_field(
            &searcher,
            query.as_ref(),
            ("created_micros", Order::Desc),
            q.offset,
            q.limit,
        )?;
        let hits = page
            .into_iter()
            .map(|addr| decode::<Purchase>(&searcher, &f.common, addr))
            .collect::<Result<_, _>>()?;
        Ok(PurchaseResults {
            total: total as u64,
            hits,
        })
    }
}
