//! Arbitrary bytes as the JSON body of a report request.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = cloudpf_search_api::fuzzing::report_spec(data);
});
