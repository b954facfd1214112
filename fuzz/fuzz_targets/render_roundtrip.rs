//! Our own exposition must be valid input. The first byte picks the body format and the
//! store's configuration (bit 0: protobuf body instead of text, bit 1: UTF-8 name
//! validation, bit 2: unchecked consistency, bit 3: merge instead of replace, bit 4: an
//! aggregating push, sent twice so that every series is added to itself); the rest is the
//! body. When the store accepts the push, the rendered text exposition must parse with
//! the text parser (legacy names: the default scrape escapes names) and the protobuf
//! exposition with the protobuf decoder; the OpenMetrics rendering must not panic.
#![no_main]

use gateway::expose::{Encoding, Escaping, Renderer, ScrapeFormat};
use gateway::model::{GroupingKey, Label, NameValidation};
use gateway::parse::{protobuf, text};
use gateway::store::{Consistency, PushMode, Store, StoreConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let validation = if flags & 2 != 0 {
        NameValidation::Utf8
    } else {
        NameValidation::Legacy
    };
    let families = if flags & 1 != 0 {
        protobuf::parse(body)
    } else {
        text::parse(body, validation)
    };
    let Ok(families) = families else {
        return;
    };
    let store = Store::new(StoreConfig {
        consistency: if flags & 4 != 0 {
            Consistency::Unchecked
        } else {
            Consistency::Checked
        },
        reserved: gateway::telemetry::own_metric_types(),
        ..StoreConfig::default()
    });
    let mode = if flags & 16 != 0 {
        PushMode::Aggregate
    } else if flags & 8 != 0 {
        PushMode::Merge
    } else {
        PushMode::Replace
    };
    let key = GroupingKey::new(vec![Label::new("job", "fuzz"), Label::new("instance", "a")]);
    if mode == PushMode::Aggregate
        && store
            .push(key.clone(), families.clone(), mode, 1.0)
            .is_err()
    {
        return;
    }
    if store.push(key, families, mode, 1.0).is_err() {
        return;
    }
    let renderer = Renderer::new();
    let rendered = renderer.render(&store, &[], ScrapeFormat::TEXT);
    if let Err(e) = text::parse(&rendered.body, NameValidation::Legacy) {
        panic!(
            "our text exposition does not parse: {e}\n--- exposition ---\n{}",
            String::from_utf8_lossy(&rendered.body)
        );
    }
    let proto = ScrapeFormat {
        encoding: Encoding::Protobuf,
        escaping: Escaping::AllowUtf8,
    };
    let rendered = renderer.render(&store, &[], proto);
    if let Err(e) = protobuf::parse(&rendered.body) {
        panic!("our protobuf exposition does not decode: {e}");
    }
    for escaping in [Escaping::Underscores, Escaping::AllowUtf8] {
        let format = ScrapeFormat {
            encoding: Encoding::OpenMetrics,
            escaping,
        };
        let _ = renderer.render(&store, &[], format);
    }
    // Dots and values escaping give classic names too: the text must parse.
    for escaping in [Escaping::Dots, Escaping::Values] {
        let format = ScrapeFormat {
            encoding: Encoding::Text,
            escaping,
        };
        let rendered = renderer.render(&store, &[], format);
        if let Err(e) = text::parse(&rendered.body, NameValidation::Legacy) {
            panic!("{escaping:?} escaping does not parse: {e}");
        }
    }
    let format = ScrapeFormat {
        encoding: Encoding::Text,
        escaping: Escaping::AllowUtf8,
    };
    let _ = renderer.render(&store, &[], format);
});
