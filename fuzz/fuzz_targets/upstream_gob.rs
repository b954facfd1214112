//! Upstream Pushgateway's gob persistence file, as the import at start-up reads it. Any
//! panic is a bug; what decodes restores into a store and renders.
#![no_main]

use gateway::persist::upstream::decode;
use gateway::store::{Store, StoreConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(groups) = decode(data) {
        let store = Store::new(StoreConfig::default());
        for group in groups {
            store.restore_group(group);
        }
        let _ = gateway::expose::Renderer::new().render(
            &store,
            &[],
            gateway::expose::ScrapeFormat::TEXT,
        );
    }
});
