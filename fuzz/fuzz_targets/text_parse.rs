//! The text-format push parser on arbitrary bytes, under both name-validation schemes.
//! Any panic is a bug; so is a body accepted under the legacy rules but refused under the
//! UTF-8 rules (the UTF-8 rules accept strictly more names).
#![no_main]

use gateway::model::NameValidation;
use gateway::parse::text;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let legacy = text::parse(data, NameValidation::Legacy);
    let utf8 = text::parse(data, NameValidation::Utf8);
    if legacy.is_ok() {
        assert!(
            utf8.is_ok(),
            "accepted under legacy rules, refused under UTF-8 rules: {utf8:?}"
        );
    }
    if let Ok(s) = std::str::from_utf8(data) {
        for word in s.split_ascii_whitespace().take(64) {
            let _ = text::parse_float(word);
        }
    }
});
