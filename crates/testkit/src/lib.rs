//! Support for the integration tests of several crates: where moto server is (the AWS
//! tests run against it under `./tests/run`), names that never collide between tests
//! sharing one moto, and scripted stand-ins for services served on loopback ([`http`]).

pub mod http;

/// moto's endpoint from `AWS_ENDPOINT_URL`, or `None` with a visible note when the tests
/// run outside `./tests/run`. Under `CLOUDPF_REQUIRE_MOTO` (set by `./tests/run` and CI) a
/// missing endpoint fails the test instead of skipping it.
pub fn moto_endpoint() -> Option<String> {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("CLOUDPF_REQUIRE_MOTO").is_none(),
                "CLOUDPF_REQUIRE_MOTO is set but AWS_ENDPOINT_URL is not"
            );
            // Straight to stderr, so the note shows even when the harness captures output.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: AWS_ENDPOINT_URL is not set; ./tests/run starts moto server for this test"
            );
            None
        }
    }
}

/// `name` made unique to this process and moment (buckets, tables).
pub fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{name}-{}-{nanos}", std::process::id())
}
