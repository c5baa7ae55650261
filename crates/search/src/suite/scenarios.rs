//! The scenarios, one public `async fn` each, run by [`crate::search_engine_suite!`]
//! against a fresh engine.

use cloudpf_model::{Entity, Product, PurchaseStatus, TenantId, Timestamp};

use super::fixtures::*;
use crate::engine::SearchEngine;
use crate::query::{ProductQuery, ProductSort, PurchaseQuery};

fn ids(results: &crate::query::ProductResults) -> Vec<&str> {
    results
        .hits
        .iter()
        .map(|h| h.product.product_id.as_str())
        .collect()
}

fn q(text: &str) -> ProductQuery {
    ProductQuery {
        text: text.to_owned(),
        limit: 10,
        ..ProductQuery::default()
    }
}

pub async fn a_product_is_found_by_a_typo_of_its_name(engine: &dyn SearchEngine) {
    let w = Writer::new(engine);
    seed(&w).await;
    let a = tenant("shop-a");
    for typo in ["lpatop", "labtop", "laptpo", "lapptoop", "gamng laptop"] {
        let r = engine
            .search_products(&a, &q(typo))
            .await
            .expect("search works");
        assert!(
            ids(&r).contains(&"p2"),
            "{typo:?} should find the gaming laptop, got {:?}",
            ids(&r)
        );
    }
    // Two characters allow no typo: "xa" must not match "la...".
    let r = engine
        .search_products(&a, &q("xa"))
        .await
        .expect("search works");
    assert_eq!(r.total, 0, "{:?}", ids(&r));
}

pub async fn prefixes_of_one_and_of_several_words_match_while_typing(engine: &dyn SearchEngine) {
    let w = Writer::new(engine);
    seed(&w).await;
    let a = tenant("shop-a");
    let r = engine
        .search_products(&a, &q("lapt"))
        .await
        .expect("search works");
    for id in ["p1", "p2", "p3"] {
        assert!(
            ids(&r).contains(&id),
            "lapt should find {id}: {:?}",
            ids(&r)
        );
    }
    let r = engine
        .search_products(&a, &q("gaming lap"))
        .await
        .expect("search works");
    assert_eq!(ids(&r).first(), Some(&"p2"), "{:?}", ids(&r));
    let r = engine
        .search_products(&a, &q("camping st"))
        .await
        .expect("search works");
    assert_eq!(ids(&r), ["p6"]);
}

pub async fn exact_matches_rank_above_prefix_and_typo_matches(engine: &dyn SearchEngine) {
    let w = Writer::new(engine);
    seed(&w).await;
    let a = tenant("shop-a");
    // "stove" is exact in p6 and one typo away from "stone" in p7.
    let r = engine
        .search_products(&a, &q("stove"))
        .await
        .expect("search works");
    assert_eq!(ids(&r), ["p6", "p7"]);
    // Name above description: three names say laptop, the mouse only describes one.
    let r = engine
        .search_products(&a, &q("laptop"))
        .await
        .expect("search works");
    let got = ids(&r);
    assert_eq!(got.last(), Some(&"p4"), "{got:?}");
    assert_eq!(got.len(), 4, "{got:?}");
}

pub async fn every_field_is_searched_and_highlighted(engine: &dyn SearchEngine) {
    let w = Writer::new(engine);
    seed(&w).await;
    let a = tenant("shop-a");
    let by_brand = engine
        .search_products(&a, &q("voltix"))
        .await
        .expect("search works");
    let mut got = ids(&by_brand);
    got.sort();
    assert_eq!(got, ["p2", "p4"]);
    let by_category = engine
        .search_products(&a, &q("outdoor"))
        .await
        .expect("search works");
    let mut got = ids(&by_category);
    got.sort();
    assert_eq!(got, ["p1", "p6"]);
    let by_description = engine
        .search_products(&a, &q("notebook"))
        .await
        .expect("search works");
    assert_eq!(ids(&by_description), ["p1"]);
    assert_eq!(
        by_description.hits[0].highlights.description.as_deref(),
        Some("Fits a 15 inch <em>notebook</em> and a water bottle")
    );
    let r = engine
        .search_products(&a, &q("lpatop back"))
        .await
        .expect("search works");
    assert_eq!(
        r.hits[0].highlights.name.as_deref(),
        Some("Ultralight <em>Laptop</em> <em>Backpack</em>")
    );
}

pub async fn filters_narrow_and_sorts_order_the_results(engine: &dyn SearchEngine) {
    let w = Writer::new(engine);
    seed(&w).await;
    let a = tenant("shop-a");
    let all = ProductQuery {
        limit: 20,
        ..ProductQuery::default()
    };
    let r = engine
        .search_products(
            &a,
            &ProductQuery {
                category: Some("Electronics".into()),
                ..all.clone()
            },
        )
        .await
        .expect("search works");
    let mut got = ids(&r);
    got.sort();
    assert_eq!(got, ["p2", "p3", "p4"]);
    let r = engine
        .search_products(
            &a,
            &ProductQuery {
                min_price: Some(money("39.99")),
                max_price: Some(money("120.00")),
                ..all.clone()
            },
        )
        .await
        .expect("search works");
    let mut got = ids(&r);
    got.sort();
    assert_eq!(got, ["p1", "p3", "p5", "p6"], "price bounds are inclusive");
    let r = engine
        .search_products(
            &a,
            &ProductQuery {
                in_stock: Some(true),
                ..q("laptop")
            },
        )
        .await
        .expect("search works");
    assert!(
        !ids(&r).contains(&"p3"),
        "the stand is out of stock: {:?}",
        ids(&r)
    );
    let r = engine
        .search_products(
            &a,
            &ProductQuery {
                brand: Some("Voltix".into()),
                ..all.clone()
            },
        )
        .await
        .expect("search works");
    assert_eq!(r.total, 2);
    let r = engine
        .search_products(
            &a,
            &ProductQuery {
                sort: ProductSort::PriceAsc,
                ..all.clone()
            },
        )
        .await
        .expect("search works");
    assert_eq!(ids(&r), ["p4", "p7", "p3", "p6", "p1", "p5", "p2"]);
    let r = engine
        .search_products(
            &a,
            &ProductQuery {
                sort: ProductSort::PriceDesc,
                ..q("laptop")
            },
        )
        .await
        .expect("search works");
    assert_eq!(ids(&r), ["p2", "p1", "p3", "p4"]);
    let r = engine
        .search_products(
            &a,
            &ProductQuery {
                sort: ProductSort::Newest,
                ..q("laptop")
            },
        )
        .await
        .expect("search works");
    assert_eq!(ids(&r).first(), Some(&"p2"));
}

pub async fn facets_count_every_match_not_just_the_page(engine: &dyn SearchEngine) {
    let w = Writer::new(engine);
    seed(&w).await;
    let r = engine
        .search_products(
            &tenant("shop-a"),
            &ProductQuery {
                limit: 1,
                ..q("laptop")
            },
        )
        .await
        .expect("search works");
    assert_eq!((r.total, r.hits.len()), (4, 1));
    let count = |facets: &[crate::query::FacetCount], v: &str| {
        facets.iter().find(|f| f.value == v).map(|f| f.count)
    };
    assert_eq!(count(&r.facets.category, "Electronics"), Some(3));
    assert_eq!(count(&r.facets.category, "Outdoor"), Some(1));
    assert_eq!(count(&r.facets.brand, "Voltix"), Some(2));
    assert_eq!(
        count(&r.facets.brand, "Hidden"),
        None,
        "another tenant's brand"
    );
}

pub async fn pagination_is_stable_and_complete(engine: &dyn SearchEngine) {
    let w = Writer::new(engine);
    let shirts = (0..23)
        .map(|i| {
            product(
                "shop-a",
                &format!("t{i:02}"),
                &format!("Cotton T-Shirt No {i}"),
                "Fashion",
                "Threadline",
                "15.00",
                5,
            )
        })
        .collect();
    w.products(shirts).await;
    let a = tenant("shop-a");
    let whole = engine
        .search_products(
            &a,
            &ProductQuery {
                limit: 50,
                ..q("shirt")
            },
        )
        .await
        .expect("search works");
    assert_eq!(whole.total, 23);
    let mut paged = Vec::new();
    for page in 0..5 {
        let r = engine
            .search_products(
                &a,
                &ProductQuery {
                    offset: page * 5,
                    limit: 5,
                    ..q("shirt")
                },
            )
            .await
            .expect("search works");
        assert_eq!(r.total, 23);
        paged.extend(r.hits.into_iter().map(|h| h.product.product_id));
    }
    let whole: Vec<String> = whole
        .hits
        .into_iter()
        .map(|h| h.product.product_id)
        .collect();
    assert_eq!(paged, whole, "pages concatenate to the unpaged order");
    let again = engine
        .search_products(
            &a,
            &ProductQuery {
                offset: 10,
                limit: 5,
                ..q("shirt")
            },
        )
        .await
        .expect("search works");
    assert_eq!(
        again
            .hits
            .iter()
            .map(|h| h.product.product_id.clone())
            .collect::<Vec<_>>(),
        whole[10..15]
    );
}

pub async fn autocomplete_completes_the_first_letters_and_prefers_best_sellers(
    engine: &dyn SearchEngine,
) {
    let w = Writer::new(engine);
    seed(&w).await;
    let a = tenant("shop-a");
    for prefix in ["la", "lap", "lapt", "Lapto"] {
        let s = engine
            .autocomplete(&a, prefix, 5)
            .await
            .expect("autocomplete works");
        let texts: Vec<_> = s.iter().map(|s| s.text.as_str()).collect();
        assert!(
            texts.contains(&"Laptop Stand Aluminium"),
            "{prefix:?}: {texts:?}"
        );
        assert!(
            texts.iter().all(|t| t.to_lowercase().contains("lap")),
            "{prefix:?}: {texts:?}"
        );
    }
    // A word inside the name completes too; a typo still finds it.
    let s = engine
        .autocomplete(&a, "stov", 5)
        .await
        .expect("autocomplete works");
    assert_eq!(s.first().map(|s| s.text.as_str()), Some("Camping Stove"));
    let s = engine
        .autocomplete(&a, "campimg", 5)
        .await
        .expect("autocomplete works");
    assert_eq!(
        s.first().map(|s| (s.text.as_str(), s.fuzzy)),
        Some(("Camping Stove", true))
    );

    // Sales decide between equal matches: the backpack sells, so it comes first.
    let before = engine
        .autocomplete(&a, "ultra", 5)
        .await
        .expect("autocomplete works");
    assert_eq!(before.len(), 1);
    w.products(vec![product(
        "shop-a",
        "p8",
        "Ultrasonic Humidifier",
        "Home",
        "Nordhaus",
        "59.00",
        3,
    )])
    .await;
    w.purchases(vec![
        purchase(
            "shop-a",
            "o1",
            "c1",
            "2025-06-02T10:00:00Z",
            PurchaseStatus::Paid,
            &[("p1", "Ultralight Laptop Backpack", 3, "89.00")],
        ),
        purchase(
            "shop-a",
            "o2",
            "c2",
            "2025-06-03T10:00:00Z",
            PurchaseStatus::Cancelled,
            &[("p8", "Ultrasonic Humidifier", 9, "59.00")],
        ),
    ])
    .await;
    let after = engine
        .autocomplete(&a, "ultra", 5)
        .await
        .expect("autocomplete works");
    let texts: Vec<_> = after
        .iter()
        .map(|s| (s.text.as_str(), s.popularity))
        .collect();
    assert_eq!(
        texts,
        [
            ("Ultralight Laptop Backpack", 3),
            ("Ultrasonic Humidifier", 0)
        ],
        "cancelled orders do not count"
    );
}

pub async fn autocomplete_ranks_best_sellers_first_among_hundreds_of_matches(
    engine: &dyn SearchEngine,
) {
    let w = Writer::new(engine);
    let models = (0..400)
        .map(|i| {
            product(
                "shop-a",
                &format!("h{i:03}"),
                &format!("Headphones Model {i:03}"),
                "Electronics",
                "Sonora",
                "49.00",
                5,
            )
        })
        .collect();
    w.products(models).await;
    w.products(vec![product(
        "shop-a",
        "x1",
        "Studio Headset",
        "Electronics",
        "Sonora",
        "99.00",
        5,
    )])
    .await;
    w.purchases(vec![
        purchase(
            "shop-a",
            "o1",
            "c1",
            "2025-06-02T10:00:00Z",
            PurchaseStatus::Paid,
            &[("h317", "Headphones Model 317", 5, "49.00")],
        ),
        purchase(
            "shop-a",
            "o2",
            "c2",
            "2025-06-02T11:00:00Z",
            PurchaseStatus::Shipped,
            &[("h042", "Headphones Model 042", 2, "49.00")],
        ),
    ])
    .await;
    let a = tenant("shop-a");
    for prefix in ["h", "he", "hea", "headphones", "headphones mod"] {
        let s = engine
            .autocomplete(&a, prefix, 3)
            .await
            .expect("autocomplete works");
        let ids: Vec<_> = s.iter().map(|s| s.product_id.as_str()).collect();
        assert_eq!(ids[..2], ["h317", "h042"], "{prefix:?}: {ids:?}");
        assert_eq!(s.len(), 3, "{prefix:?}");
    }
    // "model 31" is narrow: h310..h319, best seller first, then by name order.
    let s = engine
        .autocomplete(&a, "model 31", 3)
        .await
        .expect("autocomplete works");
    let ids: Vec<_> = s.iter().map(|s| s.product_id.as_str()).collect();
    assert_eq!(ids, ["h317", "h310", "h311"]);
    // A name starting with the prefix beats a word inside another name, even a best seller.
    let s = engine
        .autocomplete(&a, "head", 3)
        .await
        .expect("autocomplete works");
    assert!(
        s.iter().all(|s| s.product_id != "x1"),
        "Studio Headset matches inside its name only"
    );
}

/// Regression, issue #10: a product named by hundreds of repetitions of one long word
/// (about 20 KB, well inside DynamoDB's item limit) overflowed the stack on the first
/// autocomplete request and took every tenant down, again after each restart.
pub async fn issue_10_a_twenty_kilobyte_name_neither_crashes_autocomplete_nor_hides_the_product(
    engine: &dyn SearchEngine,
) {
    let w = Writer::new(engine);
    let word = "Supercalifragilisticexpialidocious";
    let huge = format!("{word} ").repeat(600);
    assert!(huge.len() > 20_000);
    // Hundreds of names sharing a long prefix make that prefix "heavy" at every depth.
    let mut items: Vec<Product> = (0..300)
        .map(|i| {
            let name = format!("{}{i:03}", format!("{word} ").repeat(2));
            product(
                "shop-a",
                &format!("s{i:03}"),
                &name,
                "Toys",
                "Acme",
                "5.00",
                1,
            )
        })
        .collect();
    items.push(product("shop-a", "huge", &huge, "Toys", "Giant", "9.00", 1));
    items.push(product(
        "shop-a",
        "kite",
        "Stunt Kite",
        "Toys",
        "Acme",
        "19.00",
        1,
    ));
    w.products(items).await;
    let a = tenant("shop-a");
    for prefix in ["s", "super", &format!("{word} {word} 0")] {
        let s = engine
            .autocomplete(&a, prefix, 5)
            .await
            .expect("autocomplete answers");
        assert_eq!(s.len(), 5, "{:?}", &prefix[..prefix.len().min(40)]);
    }
    let s = engine
        .autocomplete(&a, &huge, 20)
        .await
        .expect("autocomplete answers");
    assert!(
        s.iter().any(|s| s.product_id == "huge"),
        "the whole name typed still completes to it"
    );
    let kite = engine
        .autocomplete(&a, "stu", 5)
        .await
        .expect("autocomplete answers");
    assert_eq!(kite.first().map(|s| s.product_id.as_str()), Some("kite"));
    let found = engine
        .search_products(&a, &q(&format!("giant {word}")))
        .await
        .expect("search answers");
    assert!(ids(&found).contains(&"huge"), "{:?}", ids(&found));
}

pub async fn a_removed_product_disappears_and_a_modified_price_is_what_search_returns(
    engine: &dyn SearchEngine,
) {
    let w = Writer::new(engine);
    seed(&w).await;
    let a = tenant("shop-a");
    assert_eq!(
        engine
            .autocomplete(&a, "wireless", 5)
            .await
            .expect("autocomplete works")
            .len(),
        1
    );
    w.delete_product("shop-a", "p4").await;
    let r = engine
        .search_products(&a, &q("wireless mouse"))
        .await
        .expect("search works");
    assert_eq!(r.total, 0);
    assert!(
        engine
            .autocomplete(&a, "wireless", 5)
            .await
            .expect("autocomplete works")
            .is_empty()
    );

    let mut cheaper = product(
        "shop-a",
        "p6",
        "Camping Stove",
        "Outdoor",
        "Trailcraft",
        "39.00",
        4,
    );
    cheaper.description = "now cheaper".into();
    w.products(vec![cheaper]).await;
    let r = engine
        .search_products(&a, &q("camping stove"))
        .await
        .expect("search works");
    assert_eq!(r.hits[0].product.price.to_string(), "39.00");
    let r = engine
        .search_products(
            &a,
            &ProductQuery {
                max_price: Some(money("40.00")),
                ..q("camping stove")
            },
        )
        .await
        .expect("search works");
    assert_eq!(ids(&r), ["p6"], "the price filter sees the new price");
    let r = engine
        .search_products(
            &a,
            &ProductQuery {
                min_price: Some(money("40.00")),
                ..q("camping stove")
            },
        )
        .await
        .expect("search works");
    assert_eq!(r.total, 0, "nor the old one");
}

pub async fn one_tenant_never_sees_another_tenants_documents(engine: &dyn SearchEngine) {
    let w = Writer::new(engine);
    seed(&w).await;
    w.purchases(vec![purchase(
        "shop-b",
        "o-b",
        "cb",
        "2025-06-02T10:00:00Z",
        PurchaseStatus::Paid,
        &[("p1", "Laptop Sleeve Secret", 1, "15.00")],
    )])
    .await;
    let a = tenant("shop-a");
    let r = engine
        .search_products(&a, &q("sleeve secret"))
        .await
        .expect("search works");
    assert_eq!(r.total, 0);
    assert!(
        engine
            .autocomplete(&a, "slee", 5)
            .await
            .expect("autocomplete works")
            .is_empty()
    );
    let p = engine
        .search_purchases(
            &a,
            &PurchaseQuery {
                limit: 10,
                ..PurchaseQuery::default()
            },
        )
        .await
        .expect("search works");
    assert_eq!(p.total, 0);
    let b = engine
        .search_products(&tenant("shop-b"), &q("laptop"))
        .await
        .expect("search works");
    assert_eq!(ids(&b), ["p1"]);
    let unknown = engine
        .search_products(&tenant("shop-z"), &q("laptop"))
        .await
        .expect("search works");
    assert_eq!(unknown.total, 0);
}

/// Offboarding (issue #13): a purged tenant's documents are gone from every entity, its
/// index answers as a tenant without one, and no other tenant loses anything.
pub async fn issue_13_a_purged_tenant_has_no_documents_left_and_the_others_keep_theirs(
    engine: &dyn SearchEngine,
) {
    let w = Writer::new(engine);
    seed(&w).await;
    w.purchases(vec![purchase(
        "shop-b",
        "o-b",
        "cb",
        "2025-06-02T10:00:00Z",
        PurchaseStatus::Paid,
        &[("p1", "Laptop Sleeve", 1, "15.00")],
    )])
    .await;
    let (a, b) = (tenant("shop-a"), tenant("shop-b"));
    let count = |t: TenantId, entity: Entity| async move {
        engine.count(&t, entity).await.expect("count works")
    };
    let kept = count(a.clone(), Entity::Products).await;
    assert!(kept > 0 && count(b.clone(), Entity::Purchases).await == 1);
    let removed = engine.purge_tenant(&b).await.expect("purge works");
    assert!(!removed.is_empty(), "the purge names what it removed");
    assert_eq!(count(b.clone(), Entity::Products).await, 0);
    assert_eq!(count(b.clone(), Entity::Purchases).await, 0);
    assert_eq!(engine.get_product(&b, "p1").await.expect("get works"), None);
    let found = engine
        .search_products(&b, &q("laptop"))
        .await
        .expect("search works");
    assert_eq!(found.total, 0);
    assert_eq!(count(a.clone(), Entity::Products).await, kept);
    assert!(
        engine
            .purge_tenant(&b)
            .await
            .expect("purge works")
            .is_empty(),
        "a second purge finds nothing left"
    );
}

pub async fn query_syntax_in_the_search_box_is_just_text(engine: &dyn SearchEngine) {
    let w = Writer::new(engine);
    seed(&w).await;
    let a = tenant("shop-a");
    for text in [
        "name:laptop",
        "laptop AND -stand",
        "\"laptop",
        "lap*",
        "(laptop)",
        "laptop^10",
        "*:*",
        "brand:Hidden",
    ] {
        let r = engine
            .search_products(&a, &q(text))
            .await
            .expect("search works");
        assert!(ids(&r).iter().all(|id| *id != "p9"), "{text}");
    }
    let r = engine
        .search_products(&a, &q("brand:Hidden"))
        .await
        .expect("search works");
    assert_eq!(r.total, 0, "no field syntax, and never another tenant");
}

pub async fn purchases_are_found_by_customer_product_status_date_total_and_text(
    engine: &dyn SearchEngine,
) {
    let w = Writer::new(engine);
    seed(&w).await;
    w.purchases(vec![
        purchase(
            "shop-a",
            "o1",
            "c1",
            "2025-06-01T10:00:00Z",
            PurchaseStatus::Paid,
            &[("p1", "Ultralight Laptop Backpack", 1, "89.00")],
        ),
        purchase(
            "shop-a",
            "o2",
            "c1",
            "2025-06-05T10:00:00Z",
            PurchaseStatus::Shipped,
            &[("p4", "Wireless Mouse", 2, "19.99")],
        ),
        purchase(
            "shop-a",
            "o3",
            "c2",
            "2025-06-10T10:00:00Z",
            PurchaseStatus::Cancelled,
            &[
                ("p2", "Gaming Laptop 15", 1, "1299.00"),
                ("p4", "Wireless Mouse", 1, "19.99"),
            ],
        ),
    ])
    .await;
    let a = tenant("shop-a");
    let all = PurchaseQuery {
        limit: 10,
        ..PurchaseQuery::default()
    };
    let find = |q: PurchaseQuery| async move {
        let r = engine
            .search_purchases(&tenant("shop-a"), &q)
            .await
            .expect("search works");
        r.hits
            .into_iter()
            .map(|p| p.purchase_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(find(all.clone()).await, ["o3", "o2", "o1"], "newest first");
    assert_eq!(
        find(PurchaseQuery {
            customer_id: Some("c1".into()),
            ..all.clone()
        })
        .await,
        ["o2", "o1"]
    );
    assert_eq!(
        find(PurchaseQuery {
            product_id: Some("p4".into()),
            ..all.clone()
        })
        .await,
        ["o3", "o2"]
    );
    assert_eq!(
        find(PurchaseQuery {
            status: Some(PurchaseStatus::Cancelled),
            ..all.clone()
        })
        .await,
        ["o3"]
    );
    let june = |d: &str| Some(Timestamp::parse(d).expect("a timestamp"));
    assert_eq!(
        find(PurchaseQuery {
            from: june("2025-06-02T00:00:00Z"),
            to: june("2025-06-09T23:59:59Z"),
            ..all.clone()
        })
        .await,
        ["o2"]
    );
    assert_eq!(
        find(PurchaseQuery {
            min_total: Some(money("39.98")),
            max_total: Some(money("89.00")),
            ..all.clone()
        })
        .await,
        ["o2", "o1"]
    );
    assert_eq!(
        find(PurchaseQuery {
            text: "wireles mouse".into(),
            ..all.clone()
        })
        .await,
        ["o3", "o2"]
    );
    let r = engine
        .search_purchases(
            &a,
            &PurchaseQuery {
                limit: 1,
                offset: 1,
                ..all
            },
        )
        .await
        .expect("search works");
    assert_eq!(
        (r.total, r.hits.len(), r.hits[0].purchase_id.as_str()),
        (3, 1, "o2")
    );
    assert_eq!(r.hits[0].total_amount.to_string(), "39.98");
}
