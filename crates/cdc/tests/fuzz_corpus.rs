//! Replays the committed fuzz inputs of `stream_records` (seeds in
//! `fuzz/corpus/stream_records/`, crash reproducers in `fuzz/regressions/stream_records/`)
//! through the same harness the fuzz target calls, so every `cargo test` re-runs them on
//! stable. A panic fails the test with the file's name.
#![allow(clippy::unwrap_used)] // a test that cannot read its inputs should fail loudly

use std::path::{Path, PathBuf};

use cloudpf_cdc::fuzzing::{Decoded, stream_records};

fn inputs(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz")
        .join(kind)
        .join("stream_records");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

fn replay(path: &Path) -> Decoded {
    let bytes = std::fs::read(path).unwrap();
    match std::panic::catch_unwind(|| stream_records(&bytes)) {
        Ok(decoded) => decoded,
        Err(_) => panic!("{} panics the stream decoder", path.display()),
    }
}

#[test]
fn every_seed_and_reproducer_decodes_without_panicking() {
    let seeds = inputs("corpus");
    assert!(seeds.len() >= 20, "the seed corpus is missing: {seeds:?}");
    for path in seeds.iter().chain(&inputs("regressions")) {
        replay(path);
    }
}

#[test]
fn the_seeds_still_mean_what_they_were_written_for() {
    let seed = |name: &str| {
        replay(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../fuzz/corpus/stream_records")
                .join(name),
        )
    };
    // The valid fixtures decode, for their own table only.
    let lifecycle = seed("fixture-products-lifecycle.json");
    assert_eq!(
        (lifecycle.records, lifecycle.products, lifecycle.purchases),
        (3, 3, 0)
    );
    let purchases = seed("fixture-purchases-batch.json");
    assert!(
        purchases.purchases > 0 && purchases.products == 0,
        "{purchases:?}"
    );
    // The mutations of a valid record are refused, not decoded.
    for name in [
        "bad-seq-not-decimal.json",
        "no-seq.json",
        "unknown-event-name.json",
        "keys-number-tenant.json",
        "tenant-invalid.json",
        "image-other-tenant.json",
        "price-negative.json",
        "insert-no-image.json",
    ] {
        let d = seed(name);
        assert_eq!((d.event, d.records, d.products), (true, 1, 0), "{name}");
    }
    // A REMOVE needs no image; a malformed old image does not block a change.
    assert_eq!(seed("remove-no-image.json").products, 1);
    assert_eq!(seed("old-image-garbage.json").products, 1);
    // An attribute type DynamoDB does not have refuses a new image (the record goes to
    // the dead letters with the reason); in an old image, which only documents the past,
    // it does not block the change (issue #15: images are read per record, lazily).
    let unknown = seed("attr-type-unknown-new-image.json");
    assert_eq!((unknown.records, unknown.products), (1, 0));
    assert_eq!(seed("attr-type-unknown.json").products, 1);
    assert!(!seed("not-json.txt").event);
    assert!(!seed("records-not-array.json").event);
    assert_eq!(seed("record-not-object.json").records, 4);
}
