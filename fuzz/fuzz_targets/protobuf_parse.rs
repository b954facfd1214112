//! The delimited-protobuf push decoder on arbitrary bytes. Any panic is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = gateway::parse::protobuf::parse(data);
});
