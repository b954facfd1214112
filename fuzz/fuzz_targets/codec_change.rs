//! The log-record decoder on arbitrary bytes. Any panic is a bug. A record that decodes
//! must survive a round trip (encode, decode, encode gives the same bytes), and replaying
//! it into a store and rendering that store must not panic either.
#![no_main]

use gateway::expose::{Renderer, ScrapeFormat};
use gateway::persist::codec::{decode_change, encode_change};
use gateway::store::{Store, StoreConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(change) = decode_change(data) else {
        return;
    };
    let mut once = Vec::new();
    encode_change(&mut once, &change);
    let again = decode_change(&once).expect("a re-encoded record decodes");
    let mut twice = Vec::new();
    encode_change(&mut twice, &again);
    assert_eq!(once, twice, "encoding is not stable across a round trip");

    let store = Store::new(StoreConfig::default());
    store.replay(change);
    let _ = Renderer::new().render(&store, &[], ScrapeFormat::TEXT);
});
