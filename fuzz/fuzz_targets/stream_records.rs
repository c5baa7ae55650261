//! Arbitrary bytes as a Lambda DynamoDB event, decoded for both tables.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cloudpf_cdc::fuzzing::stream_records(data);
});
