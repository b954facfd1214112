//! The grouping-key path parser. The first byte picks the options (bit 0: the job is
//! base64, bit 1: UTF-8 name validation); the rest, as UTF-8, is split at its first `/`
//! into the job and the label path (which keeps the `/`). Any panic is a bug; an accepted
//! key always carries the job.
#![no_main]

use gateway::grouping::{decode_base64, parse_grouping_path, unescape_name};
use gateway::model::NameValidation;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Ok(path) = std::str::from_utf8(rest) else {
        return;
    };
    let job_is_base64 = flags & 1 != 0;
    let validation = if flags & 2 != 0 {
        NameValidation::Utf8
    } else {
        NameValidation::Legacy
    };
    let (job, labels) = match path.find('/') {
        Some(at) => path.split_at(at),
        None => (path, ""),
    };
    if let Ok(key) = parse_grouping_path(job, job_is_base64, labels, validation) {
        assert!(key.get("job").is_some_and(|v| !v.is_empty()), "{key:?}");
    }
    let _ = decode_base64(path);
    let _ = unescape_name(path);
});
