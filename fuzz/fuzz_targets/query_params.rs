//! Arbitrary bytes as the query string of every GET endpoint of the search API.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cloudpf_search_api::fuzzing::query_params(data);
});
