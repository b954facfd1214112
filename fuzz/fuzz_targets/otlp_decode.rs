//! The OTLP receiver's decoder and translation on arbitrary bytes. The first byte picks the
//! encoding and the name rules (bit 0: JSON instead of protobuf, bit 1: UTF-8 names); the
//! rest is the body. Any panic is a bug, and so is a translated group that the store refuses
//! for something the translation promises to sort out per data point (label names, special
//! labels, values that do not fit, timestamps, a series twice): those must be refused in
//! `partial_success`, not fail the whole resource. What is stored must render as text that
//! parses again.
#![no_main]

use gateway::expose::{Renderer, ScrapeFormat};
use gateway::model::NameValidation;
use gateway::otlp::{self, Encoding, Escaping, Settings};
use gateway::parse::text;
use gateway::store::{Consistency, PushError, PushMode, Rejection, Store, StoreConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let encoding = if flags & 1 != 0 {
        Encoding::Json
    } else {
        Encoding::Protobuf
    };
    let escaping = if flags & 2 != 0 {
        Escaping::None
    } else {
        Escaping::Underscores
    };
    let Ok(request) = otlp::decode(body, encoding) else {
        return;
    };
    let settings = Settings {
        escaping,
        promote: vec!["host.name".into()],
        max_labels_per_series: 64,
        max_label_length: 4096,
    };
    let translation = otlp::translate(request, &settings);
    let _ = otlp::encode_response(&translation.refused, encoding);
    let store = Store::new(StoreConfig {
        consistency: Consistency::Checked,
        reserved: gateway::telemetry::own_metric_types(),
        ..StoreConfig::default()
    });
    for group in translation.groups {
        // As the receiver stores them: the levels as a POST, the increments added.
        let changes = [
            (group.families, PushMode::Merge),
            (group.deltas, PushMode::Aggregate),
        ];
        for (families, mode) in changes {
            match store.push(group.key.clone(), families, mode, 1.0) {
                Err(PushError::Rejected(
                    rejection @ (Rejection::Timestamp
                    | Rejection::WrongValueType { .. }
                    | Rejection::InvalidLabelName { .. }
                    | Rejection::DuplicateLabelName { .. }
                    | Rejection::ExplicitSpecialLabel { .. }),
                )) => panic!("a translated group refused as a whole: {rejection}"),
                _ => {}
            }
        }
    }
    let rendered = Renderer::new().render(&store, &[], ScrapeFormat::TEXT);
    if let Err(e) = text::parse(&rendered.body, NameValidation::Legacy) {
        panic!(
            "the text exposition of an OTLP export does not parse: {e}\n{}",
            String::from_utf8_lossy(&rendered.body)
        );
    }
});
