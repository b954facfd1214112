//! The snapshot group-block decoder on arbitrary bytes. Any panic is a bug. A block that
//! decodes must survive a round trip (encode, decode, encode gives the same bytes), and
//! restoring it into a store and rendering that store must not panic either.
#![no_main]

use gateway::expose::{Renderer, ScrapeFormat};
use gateway::persist::codec::{decode_group, encode_group};
use gateway::store::{Store, StoreConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(group) = decode_group(data) else {
        return;
    };
    let mut once = Vec::new();
    encode_group(&mut once, &group);
    let again = decode_group(&once).expect("a re-encoded group decodes");
    let mut twice = Vec::new();
    encode_group(&mut twice, &again);
    assert_eq!(once, twice, "encoding is not stable across a round trip");

    let store = Store::new(StoreConfig::default());
    store.restore_group(group);
    let _ = Renderer::new().render(&store, &[], ScrapeFormat::TEXT);
});
