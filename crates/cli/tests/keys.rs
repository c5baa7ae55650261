//! `cloudpf keys` (issue #13): a created key works on a running `cloudpf serve` without a
//! restart, a revoked one is refused within a second or so (polled with a deadline), an
//! expired one is refused as expired, and bad requests are refused without writing.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Server, cloudpf, failed, get, ok};
use serde_json::Value;

/// Polls until `path` answers `want` for `key` with a body containing `says`, for at
/// most 10 s; the last answer.
fn answers(addr: &str, path: &str, key: &str, want: u16, says: &str) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = get(addr, path, key);
        if (status == want && body.contains(says)) || Instant::now() >= deadline {
            return (status, body);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn keys_are_created_revoked_and_expire_on_a_running_server_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tenants.toml");
    let file = file.to_str().unwrap();
    ok(&cloudpf(&[
        "tenants",
        "add",
        "acme",
        "--tenants-file",
        file,
    ]));
    let server = Server::start(dir.path());
    let path = "/search/acme/products?q=tent";

    // Created while the server runs: usable at once (within the server's check).
    let created: Value = serde_json::from_str(&ok(&cloudpf(&[
        "keys",
        "create",
        "--tenant",
        "acme",
        "--scope",
        "search",
        "--label",
        "storefront",
        "--expires",
        "2099-01-01",
        "--tenants-file",
        file,
    ])))
    .unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    let key_id = created["key_id"].as_str().unwrap().to_owned();
    assert_eq!(created["scope"], "search");
    assert_eq!(created["expires"], "2099-01-01T00:00:00Z");
    let (status, body) = answers(&server.addr, path, &key, 200, "");
    assert_eq!(status, 200, "{body}");
    // A search key stays a search key.
    let (status, _) = get(&server.addr, "/search/acme/purchases?q=tent", &key);
    assert_eq!(status, 403);

    let listed = ok(&cloudpf(&[
        "keys",
        "list",
        "--tenant",
        "acme",
        "--tenants-file",
        file,
    ]));
    let line = listed
        .lines()
        .find(|l| l.starts_with(&key_id))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(line.contains("\tsearch\tlabel=storefront\t"), "{line}");
    assert!(line.contains("expires=2099-01-01T00:00:00Z"), "{line}");
    assert!(!listed.contains(&key), "the list shows ids, never keys");

    // Revoked: refused by the running server, with no restart.
    ok(&cloudpf(&[
        "keys",
        "revoke",
        "--tenant",
        "acme",
        &key_id,
        "--tenants-file",
        file,
    ]));
    let (status, body) = answers(&server.addr, path, &key, 401, "invalid_api_key");
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("invalid_api_key"), "{body}");

    // An expired key is refused as such. (Written with an expiry already past, as a key
    // that was created long ago would be.)
    let expiring: Value = serde_json::from_str(&ok(&cloudpf(&[
        "keys",
        "create",
        "--tenant",
        "acme",
        "--scope",
        "admin",
        "--tenants-file",
        file,
    ])))
    .unwrap();
    let text = std::fs::read_to_string(file).unwrap();
    let hash = cloudpf_search_api::tenants::hash_key(expiring["key"].as_str().unwrap());
    let past = text.replace(
        &format!("sha256 = \"{hash}\""),
        &format!("sha256 = \"{hash}\"\nexpires = \"2020-01-01T00:00:00Z\""),
    );
    assert_ne!(past, text);
    std::fs::write(file, past).unwrap();
    let expiring = expiring["key"].as_str().unwrap();
    let (status, body) = answers(&server.addr, path, expiring, 401, "expired_api_key");
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("expired_api_key"), "{body}");

    // Refused without writing: a past expiry, an unknown or too short id, another shop.
    let before = std::fs::read_to_string(file).unwrap();
    let refusals: [(&[&str], &str); 4] = [
        (
            &[
                "create",
                "--tenant",
                "acme",
                "--scope",
                "search",
                "--expires",
                "2020-01-01",
            ],
            "in the past",
        ),
        (&["revoke", "--tenant", "acme", "00000000"], "has no key"),
        (&["revoke", "--tenant", "acme", "abc"], "8 to 64 hex digits"),
        (&["revoke", "--tenant", "globex", &key_id], "not in"),
    ];
    for (args, says) in refusals {
        let mut all = vec!["keys"];
        all.extend_from_slice(args);
        all.extend(["--tenants-file", file]);
        let err = failed(&cloudpf(&all));
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(std::fs::read_to_string(file).unwrap(), before);
    drop(server);
}
