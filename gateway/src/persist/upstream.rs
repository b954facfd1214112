//! Upstream Pushgateway's persistence file (v1.5 to v1.11, unchanged in that range), read
//! once so that a user switching binaries keeps every stored group.
//!
//! Upstream writes its whole store with `encoding/gob` (see [`super::gob`]): a map from an
//! internal grouping-key string to `MetricGroup { Labels map[string]string, Metrics
//! map[string]TimestampedMetricFamily }`, where `TimestampedMetricFamily { Timestamp
//! time.Time, GobbableMetricFamily }` holds the time of the change that last set the family
//! and the family as one protobuf `MetricFamily` message. The families already carry the
//! grouping labels and `instance=""`, as upstream adds them on push. The two timestamp
//! families (`push_time_seconds`, `push_failure_time_seconds`) become the group's times.
//! Unknown struct fields are skipped, so a later upstream adding one still imports.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::gob::{read_stream, Decoder, GobError, Reader, TypeId};
use super::snapshot::SNAPSHOT_MAGIC;
use crate::model::{GroupingKey, Label, MetricFamily, Value};
use crate::parse::protobuf::parse_family;
use crate::store::{GroupView, StoredFamily, PUSH_FAILURE_TIME_METRIC, PUSH_TIME_METRIC};

/// Seconds from Go's zero time (1 January of year 1, UTC) to the Unix epoch.
const GO_TIME_TO_UNIX: i64 = 62_135_596_800;

/// Whether `data` looks like a gob stream rather than anything else: its first message
/// defines a type (a negative id), as every `Encode` of a map starts.
pub fn looks_like_gob(data: &[u8]) -> bool {
    let mut reader = Reader::new(data);
    !data.starts_with(SNAPSHOT_MAGIC)
        && reader.uint().is_ok()
        && reader.int().is_ok_and(|id| id < 0)
}

/// Decodes upstream's persistence file into groups, sorted by grouping key.
///
/// # Errors
/// A [`GobError`] naming what is malformed: the gob stream, a type that differs from
/// upstream's, a timestamp, a protobuf message, or a group without a `job` label.
pub fn decode(data: &[u8]) -> Result<Vec<GroupView>, GobError> {
    let stream = read_stream(data)?;
    let mut decoder = Decoder::new(&stream.types);
    let mut reader = Reader::new(stream.value);
    // A top-level value that is not a struct comes after a zero field delta.
    if reader.uint()? != 0 {
        return Err(GobError("the stored value is not a map".into()));
    }
    let mut groups = Vec::new();
    decoder.map(&mut reader, stream.value_type, |d, r, key, elem| {
        d.raw_string(r, key)?;
        let index = groups.len();
        let group = read_group(d, r, elem).map_err(|e| GobError(format!("group {index}: {e}")))?;
        groups.push(group);
        Ok(())
    })?;
    if !reader.is_empty() {
        return Err(GobError("trailing bytes after the stored groups".into()));
    }
    groups.sort_by(|a: &GroupView, b| a.key.cmp(&b.key));
    if let Some(pair) = groups.windows(2).find(|pair| pair[0].key == pair[1].key) {
        return Err(GobError(format!("group {} stored twice", pair[0].key)));
    }
    Ok(groups)
}

/// A family as upstream stores it: when it was set, and its protobuf message.
struct RawFamily<'a> {
    time: f64,
    message: &'a [u8],
}

fn read_group(d: &mut Decoder<'_>, r: &mut Reader<'_>, id: TypeId) -> Result<GroupView, GobError> {
    let mut labels = Vec::new();
    let mut raw = Vec::new();
    d.structure(r, id, |d, r, field, field_type| match field {
        "Labels" => {
            d.map(r, field_type, |d, r, key, elem| {
                let name = utf8(d.raw_string(r, key)?, "label name")?;
                let value = utf8(d.raw_string(r, elem)?, "label value")?;
                labels.push(Label::new(name, value));
                Ok(())
            })?;
            Ok(true)
        }
        "Metrics" => {
            d.map(r, field_type, |d, r, key, elem| {
                d.raw_string(r, key)?;
                raw.push(read_family(d, r, elem)?);
                Ok(())
            })?;
            Ok(true)
        }
        _ => Ok(false),
    })?;
    let key = Arc::new(GroupingKey::new(labels));
    if key.get("job").is_none() {
        return Err(GobError(format!("group {key} has no job label")));
    }
    let mut families = BTreeMap::new();
    let (mut push_time, mut failure_time) = (0.0, 0.0);
    // A timestamp family still at 0 carries the group's creation time as its stamp.
    let mut created = f64::INFINITY;
    for RawFamily { time, message } in raw {
        let mut family =
            parse_family(message).map_err(|e| GobError(format!("group {key}: {e}")))?;
        match &*family.name {
            PUSH_TIME_METRIC | PUSH_FAILURE_TIME_METRIC => {
                let value = gauge_value(&family);
                if &*family.name == PUSH_TIME_METRIC {
                    push_time = value;
                } else {
                    failure_time = value;
                }
                created = created.min(if value == 0.0 { time } else { value });
            }
            _ => {
                for metric in &mut family.metrics {
                    metric.labels.sort_by(|a, b| a.name.cmp(&b.name));
                }
                families.insert(family.name.clone(), (family, time));
            }
        }
    }
    let families = families
        .into_values()
        .map(|(family, time): (MetricFamily, f64)| {
            Arc::new(StoredFamily::new(family, time, key.clone()))
        })
        .collect();
    Ok(GroupView {
        key,
        families,
        push_time,
        failure_time,
        created: if created.is_finite() { created } else { 0.0 },
        // Upstream has no TTL of a group's own.
        ttl: None,
        // Nor idempotency keys.
        keys: Vec::new(),
    })
}

fn read_family<'a>(
    d: &mut Decoder<'_>,
    r: &mut Reader<'a>,
    id: TypeId,
) -> Result<RawFamily<'a>, GobError> {
    let mut family = RawFamily {
        time: 0.0,
        message: &[],
    };
    d.structure(r, id, |d, r, field, field_type| match field {
        "Timestamp" => {
            family.time = go_time(d.encoded(r, field_type)?)?;
            Ok(true)
        }
        "GobbableMetricFamily" => {
            family.message = d.encoded(r, field_type)?;
            Ok(true)
        }
        _ => Ok(false),
    })?;
    if family.message.is_empty() {
        return Err(GobError("a stored family without its metrics".into()));
    }
    Ok(family)
}

/// The value of a timestamp family's one gauge (0 for anything else, as upstream reads it).
fn gauge_value(family: &MetricFamily) -> f64 {
    match family.metrics.first().map(|m| &m.value) {
        Some(Value::Gauge(v)) if v.is_finite() && *v > 0.0 => *v,
        _ => 0.0,
    }
}

fn utf8(bytes: &[u8], what: &str) -> Result<String, GobError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| GobError(format!("a {what} that is not UTF-8")))
}

/// A `time.Time` as Go's `MarshalBinary` writes it: a version byte (1, or 2 with a seconds
/// offset byte at the end), seconds since year 1, nanoseconds, and a zone offset in minutes
/// (which does not change the instant). Returns Unix seconds, 0 before the epoch.
fn go_time(bytes: &[u8]) -> Result<f64, GobError> {
    let length = match bytes.first() {
        Some(1) => 15,
        Some(2) => 16,
        _ => return Err(GobError("a timestamp of an unknown version".into())),
    };
    if bytes.len() != length {
        return Err(GobError("a timestamp of the wrong length".into()));
    }
    let mut seconds = [0u8; 8];
    seconds.copy_from_slice(&bytes[1..9]);
    let mut nanos = [0u8; 4];
    nanos.copy_from_slice(&bytes[9..13]);
    let seconds = i64::from_be_bytes(seconds).saturating_sub(GO_TIME_TO_UNIX);
    let nanos = i32::from_be_bytes(nanos);
    if !(0..1_000_000_000).contains(&nanos) {
        return Err(GobError("a timestamp with invalid nanoseconds".into()));
    }
    if seconds < 0 {
        return Ok(0.0);
    }
    Ok(seconds as f64 + f64::from(nanos) / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by the reference binary (see `gateway/tests/fixtures/README.md`).
    const FIXTURE: &[u8] = include_bytes!("../../tests/fixtures/upstream-1.5.1.gob");

    fn family<'a>(group: &'a GroupView, name: &str) -> &'a StoredFamily {
        group
            .families
            .iter()
            .find(|f| &*f.name == name)
            .unwrap_or_else(|| panic!("no family {name}"))
    }

    #[test]
    fn reads_what_the_reference_binary_wrote() {
        let groups = decode(FIXTURE).expect("decodes");
        let keys: Vec<String> = groups.iter().map(|g| g.key.to_string()).collect();
        assert_eq!(groups.len(), 4, "{keys:?}");
        let group = |job: &str, instance: Option<&str>| {
            groups
                .iter()
                .find(|g| {
                    g.key.get("job").map(|v| &**v) == Some(job)
                        && g.key.get("instance").map(|v| &**v) == instance
                })
                .unwrap_or_else(|| panic!("no group {job} {instance:?} in {keys:?}"))
        };
        // PUT c and u, then POST d: c and u keep the PUT's time, d and the push time the POST's.
        let a = group("a", Some("i"));
        let names: Vec<&str> = a.families.iter().map(|f| &*f.name).collect();
        assert_eq!(names, ["c", "d", "u"]);
        assert_eq!(family(a, "c").pushed_at, family(a, "u").pushed_at);
        assert!(family(a, "d").pushed_at > family(a, "c").pushed_at);
        assert_eq!(family(a, "d").pushed_at, a.push_time);
        assert_eq!(a.failure_time, 0.0);
        // Stored labels are the series' own: the group's (and `instance`) come from the key.
        let c = &family(a, "c").to_family();
        assert_eq!(c.help.as_deref(), Some("A counter."));
        assert_eq!(c.metric_type, crate::model::MetricType::Counter);
        let own = family(a, "c").series().next().map(|s| s.to_own_metric());
        assert_eq!(
            own.map(|m| m.labels),
            Some(vec![Label::new("x", "1")].into())
        );
        assert_eq!(c.metrics[0].value, Value::Counter(3.0));
        let types: Vec<_> = group("a", Some("i2"))
            .families
            .iter()
            .map(|f| f.metric_type)
            .collect();
        use crate::model::MetricType::{Histogram, Summary};
        assert_eq!(types, [Histogram, Summary]);
        // Grouping labels from @base64: a slash, and an empty value.
        let slashed = group("x/y", None);
        assert_eq!(slashed.key.get("p").map(|v| &**v), Some(""));
        // A rejected push after a successful one: both times kept.
        let b = group("b", None);
        assert!(b.push_time > 0.0 && b.failure_time > b.push_time, "{b:?}");
    }

    #[test]
    fn damaged_files_are_errors_never_panics() {
        for cut in 0..FIXTURE.len() {
            assert!(decode(&FIXTURE[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = FIXTURE.to_vec();
        for at in 0..flipped.len() {
            for bit in [0x01, 0x80] {
                flipped[at] ^= bit;
                let _ = decode(&flipped);
                flipped[at] ^= bit;
            }
        }
        let mut trailing = FIXTURE.to_vec();
        trailing.push(0);
        assert!(decode(&trailing).is_err());
    }

    #[test]
    fn go_times_to_unix_seconds() {
        // 2026-12-06T06:20:24.928...Z, as the reference binary wrote it (zone offset 0).
        let bytes = [1, 0, 0, 0, 14, 226, 166, 245, 168, 55, 77, 114, 79, 0, 0];
        let unix = go_time(&bytes).expect("valid");
        assert_eq!(unix.floor(), 1_796_538_024.0);
        assert!((unix.fract() - 0.927_822_415).abs() < 1e-6, "{unix}");
        // Version 2 carries one more byte; unknown versions and lengths are refused.
        let mut v2 = bytes.to_vec();
        v2[0] = 2;
        v2.push(0);
        assert_eq!(go_time(&v2), Ok(unix));
        assert!(go_time(&bytes[..14]).is_err());
        assert!(go_time(&[3; 15]).is_err());
        // Go's zero time is before the epoch.
        let zero = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255];
        assert_eq!(go_time(&zero), Ok(0.0));
    }

    #[test]
    fn other_files_are_not_gob() {
        assert!(!looks_like_gob(
            &crate::persist::snapshot::encode(1, &[]).unwrap()
        ));
        assert!(!looks_like_gob(b""));
        assert!(looks_like_gob(&[0x29, 0xff, 0x8d, 0x04]));
    }
}
