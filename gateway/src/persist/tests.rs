//! Restore from snapshot plus log, torn tails at every byte offset, and damaged files.

use std::borrow::Cow;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::codec::{decode_change, decode_group, encode_change, encode_group};
use super::wal::{read_segment, segment_path, SEGMENT_MAGIC};
use super::{FsyncMode, PersistConfig, PersistError, Persister};
use crate::model::{
    Bucket, Exemplar, Extras, GroupingKey, Histogram, Label, Metric, MetricFamily, MetricType,
    NativeHistogram, Timestamp, Value,
};
use crate::store::{Change, GroupTtl, PushMode, Store, StoreConfig};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pgw-persist-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn config(file: &Path) -> PersistConfig {
    PersistConfig {
        file: file.to_path_buf(),
        interval: std::time::Duration::from_secs(3600),
        fsync: FsyncMode::Always,
        start_empty_on_corruption: false,
        max_log_bytes: u64::MAX,
    }
}

fn key(job: &str) -> GroupingKey {
    GroupingKey::new(vec![Label::new("job", job)])
}

fn gauge(name: &str, value: f64) -> MetricFamily {
    MetricFamily {
        name: name.into(),
        help: Some("help".into()),
        metric_type: MetricType::Gauge,
        metrics: vec![Metric::new(vec![Label::new("x", "1")], Value::Gauge(value))],
    }
}

fn rich_histogram() -> MetricFamily {
    let mut metric = Metric::new(
        vec![Label::new("le_not", "v")],
        Value::Histogram(Box::new(Histogram {
            count: 3.0,
            float_counts: false,
            sum: 1.5,
            buckets: vec![Bucket {
                upper_bound: 0.5,
                count: 2.0,
            }],
        })),
    );
    metric.extras = Some(Box::new(Extras {
        timestamp_ms: None,
        created: Some(Timestamp {
            seconds: 10,
            nanos: 5,
        }),
        exemplar: None,
        bucket_exemplars: vec![Some(Exemplar {
            labels: vec![Label::new("trace_id", "abc")],
            value: 0.3,
            timestamp: None,
        })],
        native: Some(NativeHistogram {
            schema: 3,
            zero_threshold: 1e-9,
            zero_count: Some(1),
            positive_spans: vec![crate::model::BucketSpan {
                offset: -2,
                length: 2,
            }],
            positive_deltas: vec![1, -1],
            ..NativeHistogram::default()
        }),
        exemplars: vec![],
    }));
    MetricFamily {
        name: "h".into(),
        help: None,
        metric_type: MetricType::Histogram,
        metrics: vec![metric],
    }
}

fn exposition(store: &Store) -> String {
    let renderer = crate::expose::Renderer::new();
    let rendered = renderer.render(store, &[], crate::expose::ScrapeFormat::TEXT);
    String::from_utf8(rendered.body).expect("utf-8")
}

#[test]
fn codec_round_trips_changes_and_groups() {
    let families = vec![gauge("g", 2.5), rich_histogram()];
    let k = key("a");
    let change = Change::Push {
        key: Cow::Borrowed(&k),
        families: Cow::Borrowed(&families),
        mode: PushMode::Merge,
        time: 1234.5,
        inconsistent: false,
        ttl: None,
        idempotency_key: None,
    };
    let mut encoded = Vec::new();
    encode_change(&mut encoded, &change);
    let decoded = decode_change(&encoded).expect("decodes");
    let Change::Push {
        key: decoded_key,
        families: decoded_families,
        mode,
        time,
        ttl,
        ..
    } = decoded
    else {
        panic!("not a push");
    };
    assert_eq!(*decoded_key, k);
    assert_eq!(*decoded_families, families);
    assert_eq!((mode, time, ttl), (PushMode::Merge, 1234.5, None));
    // The TTL travels in the trailing section; a record without it is written as before.
    for ttl in [
        GroupTtl::Never,
        GroupTtl::After(Duration::from_nanos(1_500_000_001)),
    ] {
        let with_ttl = Change::Push {
            key: Cow::Borrowed(&k),
            families: Cow::Borrowed(&families),
            mode: PushMode::Merge,
            time: 1234.5,
            inconsistent: false,
            ttl: Some(ttl),
            idempotency_key: None,
        };
        let mut bytes = Vec::new();
        encode_change(&mut bytes, &with_ttl);
        assert_eq!(decode_change(&bytes).expect("decodes"), with_ttl);
        assert!(bytes.starts_with(&encoded) && bytes.len() > encoded.len());
        // An unknown trailing field (a later version's) is skipped.
        let mut later = encoded.clone();
        later.extend_from_slice(&[9, 2, 0xab, 0xcd]);
        assert_eq!(decode_change(&later).expect("decodes"), change);
    }
    for (mode, idempotency_key) in [
        (PushMode::Merge, None),
        (PushMode::Aggregate, Some("retry-1".into())),
    ] {
        let change = Change::Push {
            key: Cow::Borrowed(&k),
            families: Cow::Borrowed(&families),
            mode,
            time: 1234.5,
            inconsistent: false,
            // Both trailing fields together, in the aggregating case.
            ttl: idempotency_key.as_ref().map(|_| GroupTtl::Never),
            idempotency_key,
        };
        let mut encoded = Vec::new();
        encode_change(&mut encoded, &change);
        assert_eq!(decode_change(&encoded).expect("decodes"), change);
        // An unknown trailing field (a later version's) is skipped.
        let mut extended = encoded.clone();
        extended.extend_from_slice(&[9, 2, b'h', b'i']);
        assert_eq!(decode_change(&extended).expect("decodes"), change);
        // A trailing field cut short is an error, not a misread.
        extended.pop();
        assert!(decode_change(&extended).is_err());
    }

    let store = Store::new(StoreConfig::default());
    let ttl = Some(GroupTtl::After(Duration::from_secs(90)));
    store
        .push_with(k, families, PushMode::Replace, 99.0, ttl, None)
        .expect("push");
    let view = store.groups().remove(0);
    let mut block = Vec::new();
    encode_group(&mut block, &view);
    let back = decode_group(&block).expect("decodes");
    assert_eq!(back.key, view.key);
    assert_eq!(back.families, view.families);
    assert_eq!((back.push_time, back.failure_time), (99.0, 0.0));
    assert_eq!(back.created, 99.0);
    assert_eq!(back.ttl, ttl);
    // Every truncation is an error, never a panic, but for the blocks written before the
    // trailing fields existed: without the TTL (a kind byte, then 90 s as 9e10 ns, a
    // six-byte varint), and also without the creation time, which falls back to the
    // earliest time the group shows.
    let ttl_len = 1 + 6;
    let without_ttl = block.len() - ttl_len;
    let without_created = without_ttl - 8;
    for cut in (0..block.len()).filter(|&cut| cut != without_created && cut != without_ttl) {
        assert!(decode_group(&block[..cut]).is_err(), "cut at {cut}");
    }
    let old = decode_group(&block[..without_ttl]).expect("decodes");
    assert_eq!((old.created, old.ttl), (99.0, None));
    let older = decode_group(&block[..without_created]).expect("decodes");
    assert_eq!(older.created, 99.0);
}

#[test]
fn matcher_deletes_and_group_ttls_survive_a_restart() {
    let dir = temp_dir("matcher");
    let file = dir.join("pg.db");
    let store = Store::new(StoreConfig::default());
    let persister = Persister::start(config(&file), &store).expect("start");
    let ttl = Some(GroupTtl::After(Duration::from_secs(30)));
    for job in ["w1", "w2", "x1"] {
        store
            .push_with(
                key(job),
                vec![gauge("g", 1.0)],
                PushMode::Replace,
                10.0,
                ttl,
                None,
            )
            .expect("push");
    }
    // One in the snapshot, one only in the log.
    persister.snapshot_now().expect("snapshot");
    store
        .push(key("w3"), vec![gauge("g", 1.0)], PushMode::Replace, 11.0)
        .expect("push");
    let selector = crate::selector::Selector::parse(r#"{job=~"w[13]"}"#).expect("selector");
    let (_, deleted) = store.delete_matching(&[selector]).expect("delete");
    assert_eq!(deleted.len(), 2);
    let before = store.groups();
    drop(persister);

    let restored = Store::new(StoreConfig::default());
    let persister = Persister::start(config(&file), &restored).expect("restart");
    let after = restored.groups();
    let summary = |views: &[crate::store::GroupView]| -> Vec<(String, Option<GroupTtl>)> {
        views.iter().map(|v| (v.key.to_string(), v.ttl)).collect()
    };
    assert_eq!(summary(&after), summary(&before));
    assert_eq!(summary(&after).len(), 2);
    assert!(after.iter().all(|v| v.ttl == ttl));
    // And again from a snapshot that holds the TTLs.
    persister.snapshot_now().expect("snapshot");
    drop(persister);
    let again = Store::new(StoreConfig::default());
    let _persister = Persister::start(config(&file), &again).expect("restart");
    assert_eq!(summary(&again.groups()), summary(&before));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn aggregates_and_idempotency_keys_survive_a_snapshot_and_the_log() {
    let dir = temp_dir("aggregate");
    let file = dir.join("pg.db");
    let store = Store::new(StoreConfig::default());
    let persister = Persister::start(config(&file), &store).expect("start");
    let add = |store: &Store, time: f64, retry: &str| {
        store
            .push_with(
                key("lambda"),
                vec![counter("calls_total", 1.0)],
                PushMode::Aggregate,
                time,
                None,
                Some(retry.into()),
            )
            .expect("aggregating push")
    };
    add(&store, 10.0, "a");
    add(&store, 11.0, "b");
    persister.snapshot_now().expect("snapshot");
    add(&store, 12.0, "c");
    add(&store, 13.0, "c"); // a retry: nothing changes
    let before = exposition(&store);
    assert!(
        before.contains("calls_total{instance=\"\",job=\"lambda\"} 3\n"),
        "{before}"
    );
    drop(persister);

    let restored = Store::new(StoreConfig::default());
    let _persister = Persister::start(config(&file), &restored).expect("restart");
    assert_eq!(exposition(&restored), before);
    assert_eq!(restored.idempotency_keys(), 3);
    // Retries of keys from the snapshot and from the log are still recognised.
    add(&restored, 14.0, "a");
    add(&restored, 14.0, "c");
    add(&restored, 14.0, "d");
    let after = exposition(&restored);
    assert!(
        after.contains("calls_total{instance=\"\",job=\"lambda\"} 4\n"),
        "{after}"
    );
    let _ = fs::remove_dir_all(&dir);
}

fn counter(name: &str, value: f64) -> MetricFamily {
    MetricFamily {
        name: name.into(),
        help: None,
        metric_type: MetricType::Counter,
        metrics: vec![Metric::new(Vec::new(), Value::Counter(value))],
    }
}

#[test]
fn restore_gives_the_same_exposition() {
    let dir = temp_dir("restore");
    let file = dir.join("pg.db");
    let store = Store::new(StoreConfig::default());
    let persister = Persister::start(config(&file), &store).expect("start");
    store
        .push(key("a"), vec![gauge("g", 1.0)], PushMode::Replace, 10.0)
        .expect("push a");
    store
        .push(key("b"), vec![rich_histogram()], PushMode::Replace, 11.0)
        .expect("push b");
    persister.snapshot_now().expect("snapshot");
    store
        .push(key("c"), vec![gauge("g2", 3.0)], PushMode::Merge, 12.0)
        .expect("push c");
    let _ = store.push(key("a"), vec![gauge("g2", 3.0)], PushMode::Merge, 13.0); // clash: failure time
    store.delete(&key("b")).expect("delete");
    let before = exposition(&store);
    drop(persister);

    let restored = Store::new(StoreConfig::default());
    let _persister = Persister::start(config(&file), &restored).expect("restart");
    assert_eq!(exposition(&restored), before);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_torn_last_record_is_dropped_at_every_offset() {
    let dir = temp_dir("torn");
    let file = dir.join("pg.db");
    let store = Store::new(StoreConfig::default());
    let persister = Persister::start(config(&file), &store).expect("start");
    store
        .push(key("a"), vec![gauge("g", 1.0)], PushMode::Replace, 10.0)
        .expect("push");
    let expected = exposition(&store);
    store
        .push(key("b"), vec![gauge("g", 2.0)], PushMode::Replace, 11.0)
        .expect("push");
    drop(persister);
    let segment = segment_path(&file, 1);
    let full = fs::read(&segment).expect("segment");
    let first = read_segment(&segment, true).expect("reads");
    assert_eq!(first.changes.len(), 2);
    // Find where the last record starts by reading the first one's length.
    let first_len = u32::from_le_bytes(full[8..12].try_into().expect("4 bytes")) as usize;
    let last_start = SEGMENT_MAGIC.len() + 12 + first_len;
    for cut in last_start..full.len() {
        let trial = dir.join(format!("cut-{cut}"));
        fs::create_dir_all(&trial).expect("dir");
        let trial_file = trial.join("pg.db");
        fs::write(segment_path(&trial_file, 1), &full[..cut]).expect("write");
        let restored = Store::new(StoreConfig::default());
        let persister = Persister::start(config(&trial_file), &restored)
            .unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert_eq!(exposition(&restored), expected, "cut at {cut}");
        assert_eq!(
            persister.report().torn_tails.len(),
            usize::from(cut > last_start),
            "cut at {cut}"
        );
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn damaged_files_stop_the_start_and_are_never_overwritten() {
    let dir = temp_dir("damaged");
    let file = dir.join("pg.db");
    let store = Store::new(StoreConfig::default());
    let persister = Persister::start(config(&file), &store).expect("start");
    store
        .push(key("a"), vec![gauge("g", 1.0)], PushMode::Replace, 10.0)
        .expect("push");
    persister.snapshot_now().expect("snapshot");
    drop(persister);
    let mut bytes = fs::read(&file).expect("snapshot");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(&file, &bytes).expect("damage");

    let error = Persister::start(config(&file), &Store::new(StoreConfig::default()))
        .err()
        .expect("refuses");
    assert!(matches!(error, PersistError::Corrupt { .. }), "{error}");
    assert!(error.to_string().contains("pg.db"), "{error}");
    assert_eq!(
        fs::read(&file).expect("still there"),
        bytes,
        "file untouched"
    );

    let mut forced = config(&file);
    forced.start_empty_on_corruption = true;
    let empty = Store::new(StoreConfig::default());
    let persister = Persister::start(forced.clone(), &empty).expect("starts empty");
    assert_eq!(empty.stats().groups, 0);
    let aside = &persister.report().moved_aside[0];
    assert_eq!(fs::read(aside).expect("moved aside"), bytes);
    // Nothing of the old state comes back after another restart.
    drop(persister);
    let again = Store::new(StoreConfig::default());
    let _persister = Persister::start(config(&file), &again).expect("restarts");
    assert_eq!(again.stats().groups, 0);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn corruption_inside_the_log_is_not_taken_for_a_torn_tail() {
    let dir = temp_dir("midlog");
    let file = dir.join("pg.db");
    let store = Store::new(StoreConfig::default());
    let persister = Persister::start(config(&file), &store).expect("start");
    for i in 0..3 {
        store
            .push(
                key(&format!("j{i}")),
                vec![gauge("g", 1.0)],
                PushMode::Replace,
                10.0,
            )
            .expect("push");
    }
    drop(persister);
    let segment = segment_path(&file, 1);
    let mut bytes = fs::read(&segment).expect("segment");
    bytes[SEGMENT_MAGIC.len() + 16] ^= 0x55;
    fs::write(&segment, &bytes).expect("damage");
    let error = Persister::start(config(&file), &Store::new(StoreConfig::default()))
        .err()
        .expect("refuses");
    assert!(error.to_string().contains("corrupt record"), "{error}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn unwritable_directory_is_a_clear_error() {
    let error = Persister::start(
        config(Path::new("/proc/pushgateway-cannot-write-here/pg.db")),
        &Store::new(StoreConfig::default()),
    )
    .err()
    .expect("refuses");
    assert!(
        error.to_string().contains("pushgateway-cannot-write-here"),
        "{error}"
    );
}

#[test]
fn a_record_over_the_limit_is_refused_before_it_is_written() {
    use super::wal::Wal;
    let dir = temp_dir("max-record");
    let base = dir.join("p.db");
    let mut wal = Wal::open(&base, 1, FsyncMode::Always).expect("open");
    wal.set_max_record(200);
    let store = Store::new(StoreConfig::default());
    store.set_journal(Box::new(wal));
    let big: Vec<MetricFamily> = (0..20).map(|i| gauge(&format!("m{i}"), 1.0)).collect();
    let refused = store.push(key("big"), big, PushMode::Replace, 1.0);
    assert!(
        matches!(&refused, Err(crate::store::PushError::TooLarge(reason)) if reason.contains("record limit")),
        "{refused:?}"
    );
    assert_eq!(store.stats().groups, 0, "nothing applied");
    store
        .push(key("small"), vec![gauge("m", 2.0)], PushMode::Replace, 2.0)
        .expect("a small push still goes in");
    let contents = read_segment(&segment_path(&base, 1), true).expect("readable");
    assert_eq!(contents.changes.len(), 1, "only the small push was written");
    assert!(!contents.torn_tail);
    let _ = fs::remove_dir_all(&dir);
}

const UPSTREAM_FIXTURE: &[u8] = include_bytes!("../../tests/fixtures/upstream-1.5.1.gob");

#[test]
fn an_upstream_file_is_imported_and_converted_at_once() {
    let dir = temp_dir("upstream");
    let file = dir.join("pg.db");
    fs::write(&file, UPSTREAM_FIXTURE).expect("write");
    let store = Store::new(StoreConfig::default());
    let persister = Persister::start(config(&file), &store).expect("start");
    assert_eq!(store.stats().groups, 4);
    assert_eq!(persister.report().upstream_families, Some(7));
    let imported = exposition(&store);
    assert!(
        imported.contains("c{instance=\"i\",job=\"a\",x=\"1\"} 3\n"),
        "{imported}"
    );
    // Converted: our snapshot in place, the upstream file gone.
    assert!(fs::read(&file).expect("read").starts_with(b"PGWSNAP"));
    assert!(!super::upstream_path(&file).exists());
    drop(persister);
    let again = Store::new(StoreConfig::default());
    let _persister = Persister::start(config(&file), &again).expect("restart");
    assert_eq!(exposition(&again), imported);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_restart_before_the_conversion_imports_the_kept_upstream_file_and_the_log() {
    let dir = temp_dir("upstream-kept");
    let file = dir.join("pg.db");
    // As after a crash between the import and the first snapshot: only `F.upstream` and
    // the log written since.
    fs::write(super::upstream_path(&file), UPSTREAM_FIXTURE).expect("write");
    let store = Store::new(StoreConfig::default());
    let persister = Persister::start(config(&file), &store).expect("start");
    store
        .push(
            key("new"),
            vec![gauge("new_gauge", 1.0)],
            PushMode::Replace,
            10.0,
        )
        .expect("push");
    let before = exposition(&store);
    drop(persister);
    fs::remove_file(&file).expect("remove the converted file");
    fs::write(super::upstream_path(&file), UPSTREAM_FIXTURE).expect("write");
    let again = Store::new(StoreConfig::default());
    let _persister = Persister::start(config(&file), &again).expect("restart");
    assert_eq!(exposition(&again), before);
    assert_eq!(again.stats().groups, 5);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_damaged_upstream_file_stops_the_start_and_stays() {
    let dir = temp_dir("upstream-damaged");
    let file = dir.join("pg.db");
    let damaged = &UPSTREAM_FIXTURE[..UPSTREAM_FIXTURE.len() - 10];
    fs::write(&file, damaged).expect("write");
    let store = Store::new(StoreConfig::default());
    let error = Persister::start(config(&file), &store)
        .err()
        .expect("refused");
    assert!(matches!(error, PersistError::Corrupt { .. }), "{error}");
    assert!(error.to_string().contains("upstream"), "{error}");
    assert_eq!(fs::read(&file).expect("read"), damaged);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_log_older_than_a_fresh_upstream_file_is_moved_aside_not_replayed() {
    let dir = temp_dir("upstream-stale-log");
    let file = dir.join("pg.db");
    // An earlier run of ours left a log; then upstream wrote its file over ours.
    let store = Store::new(StoreConfig::default());
    let persister = Persister::start(config(&file), &store).expect("start");
    store
        .push(
            key("stale"),
            vec![gauge("stale_gauge", 1.0)],
            PushMode::Replace,
            10.0,
        )
        .expect("push");
    drop(persister);
    fs::write(&file, UPSTREAM_FIXTURE).expect("write");
    let imported = Store::new(StoreConfig::default());
    let _persister = Persister::start(config(&file), &imported).expect("start");
    assert_eq!(imported.stats().groups, 4, "the stale push was replayed");
    let aside = fs::read_dir(&dir)
        .expect("list")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".stale-"))
        .count();
    assert_eq!(aside, 1);
    let _ = fs::remove_dir_all(&dir);
}

/// A snapshot large enough to be decoded on several threads restores every series, and the
/// series index built from it still refuses a series another group stores.
#[test]
fn a_large_snapshot_restores_whole_and_still_checks_series() {
    let dir = temp_dir("large");
    let file = dir.join("pg.db");
    let fill = |group: usize| MetricFamily {
        name: "bench_load".into(),
        help: None,
        metric_type: MetricType::Gauge,
        metrics: (0..2000)
            .map(|j| {
                let labels = vec![Label::new("series", format!("{group}-{j}"))];
                Metric::new(labels, Value::Gauge(j as f64))
            })
            .collect(),
    };
    // `m{job="dup",x="1"}` stored in a group of its own key, then pushed again as a series
    // of the group `job="dup"`: the same full label set, refused as a duplicate.
    let owner = GroupingKey::new(vec![Label::new("job", "dup"), Label::new("x", "1")]);
    let clash = || vec![gauge("m", 2.0)];
    let store = Store::new(StoreConfig::default());
    let persister = Persister::start(config(&file), &store).expect("start");
    for group in 0..40 {
        store
            .push(
                key(&format!("g{group}")),
                vec![fill(group)],
                PushMode::Replace,
                10.0,
            )
            .expect("fill");
    }
    let mut alone = gauge("m", 1.0);
    alone.metrics[0].labels = Box::new([]);
    store
        .push(owner, vec![alone], PushMode::Replace, 11.0)
        .expect("owner");
    assert!(store
        .push(key("dup"), clash(), PushMode::Replace, 12.0)
        .is_err());
    persister.snapshot_now().expect("snapshot");
    let before = exposition(&store);
    drop(persister);

    let restored = Store::new(StoreConfig::default());
    let persister = Persister::start(config(&file), &restored).expect("restart");
    assert_eq!(persister.report().snapshot_groups, 42);
    assert_eq!(restored.stats().series, 40 * 2000 + 1);
    assert_eq!(exposition(&restored), before);
    assert!(restored
        .push(key("dup"), clash(), PushMode::Replace, 13.0)
        .is_err());
    let _ = fs::remove_dir_all(&dir);
}

/// A segment of many records, decoded on several threads: every change in order, and a
/// record that fails to decode (its checksum right) is named by its offset, ahead of damage
/// further on.
#[test]
fn a_long_log_decodes_in_order_and_names_the_first_bad_record() {
    let dir = temp_dir("longlog");
    let segment = dir.join("pg.db.wal-0000000001");
    let record = |payload: &[u8]| {
        let mut header = (payload.len() as u32).to_le_bytes().to_vec();
        header.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        let crc = crc32fast::hash(&header);
        header.extend_from_slice(&crc.to_le_bytes());
        [header, payload.to_vec()].concat()
    };
    let mut offsets = Vec::new();
    let mut bytes = SEGMENT_MAGIC.to_vec();
    for i in 0..400 {
        let metrics = (0..100)
            .map(|j| Metric::new(vec![Label::new("j", j.to_string())], Value::Gauge(1.0)))
            .collect();
        let family = MetricFamily {
            name: "g".into(),
            help: None,
            metric_type: MetricType::Gauge,
            metrics,
        };
        let mut payload = Vec::new();
        encode_change(
            &mut payload,
            &Change::Push {
                key: Cow::Owned(key(&format!("j{i}"))),
                families: Cow::Owned(vec![family]),
                mode: PushMode::Replace,
                time: i as f64,
                inconsistent: false,
                ttl: None,
                idempotency_key: None,
            },
        );
        offsets.push(bytes.len());
        bytes.extend_from_slice(&record(&payload));
    }
    fs::write(&segment, &bytes).expect("write");
    let contents = read_segment(&segment, false).expect("reads");
    assert!(!contents.torn_tail);
    assert_eq!(contents.valid_len, bytes.len() as u64);
    let times: Vec<f64> = contents
        .changes
        .iter()
        .map(|c| match c {
            Change::Push { time, .. } => *time,
            _ => -1.0,
        })
        .collect();
    assert_eq!(times, (0..400).map(f64::from).collect::<Vec<_>>());

    // Record 300 replaced by one that does not decode, record 350's header damaged.
    let mut damaged = bytes[..offsets[300]].to_vec();
    damaged.extend_from_slice(&record(&[9, 9, 9]));
    let shift = damaged.len() as isize - offsets[301] as isize;
    damaged.extend_from_slice(&bytes[offsets[301]..]);
    let header_350 = (offsets[350] as isize + shift) as usize;
    damaged[header_350] ^= 0x01;
    fs::write(&segment, &damaged).expect("write");
    for is_last in [false, true] {
        let error = read_segment(&segment, is_last).expect_err("refused");
        let expected = format!(
            "corrupt record at byte {}: unknown record type 9",
            offsets[300]
        );
        assert!(error.to_string().contains(&expected), "{error}");
    }
    let _ = fs::remove_dir_all(&dir);
}

/// The final snapshot is written when something changed since the last one, and skipped
/// (the file left as it is) when a restart changed nothing.
#[test]
fn shutdown_persists_only_what_changed() {
    let dir = temp_dir("shutdown");
    let file = dir.join("pg.db");
    let modified = || fs::metadata(&file).and_then(|m| m.modified()).ok();
    let store = Store::new(StoreConfig::default());
    let persister = Persister::start(config(&file), &store).expect("start");
    store
        .push(key("a"), vec![gauge("g", 1.0)], PushMode::Replace, 10.0)
        .expect("push");
    persister.shutdown();
    let written = fs::read(&file).expect("written at shutdown");
    let stamp = modified();
    assert!(super::wal::list_segments(&file).expect("list").is_empty());

    // Nothing changed: the file stays as it is, and still restores.
    let store = Store::new(StoreConfig::default());
    let persister = Persister::start(config(&file), &store).expect("restart");
    persister.shutdown();
    assert_eq!(fs::read(&file).expect("kept"), written);
    assert_eq!(modified(), stamp);
    let store = Store::new(StoreConfig::default());
    let persister = Persister::start(config(&file), &store).expect("restart");
    assert_eq!(store.stats().series, 1);

    // A change is persisted again.
    store
        .push(key("b"), vec![gauge("g", 2.0)], PushMode::Replace, 11.0)
        .expect("push");
    persister.shutdown();
    let store = Store::new(StoreConfig::default());
    let _persister = Persister::start(config(&file), &store).expect("restart");
    assert_eq!(store.stats().series, 2);
    assert!(super::wal::list_segments(&file).expect("list").is_empty());
    let _ = fs::remove_dir_all(&dir);
}

/// A group block holds full label sets; decoding takes out what the group supplies (its own
/// labels, and an empty `instance` when it has none) and keeps every other label, also a
/// non-empty `instance` and labels named like nothing in the group.
#[test]
fn a_group_block_keeps_exactly_the_labels_its_group_does_not_supply() {
    use crate::model::{GroupingKey, Label, Metric, MetricFamily, MetricType, Value};
    use crate::store::{GroupView, StoredFamily};
    let keys = [
        vec![Label::new("job", "j")],
        vec![Label::new("instance", "i"), Label::new("job", "j")],
        vec![
            Label::new("instance", ""),
            Label::new("job", "j"),
            Label::new("x", "1"),
        ],
    ];
    let label_sets = [
        vec![],
        vec![Label::new("a", "1")],
        vec![Label::new("a", "2"), Label::new("instance", "own")],
        vec![Label::new("instance", ""), Label::new("z", "")],
        vec![
            Label::new("instance", "other"),
            Label::new("job", "ignored"),
        ],
    ];
    for key in keys {
        let key = std::sync::Arc::new(GroupingKey::new(key));
        let family = MetricFamily {
            name: "m".into(),
            help: None,
            metric_type: MetricType::Gauge,
            metrics: label_sets
                .iter()
                .enumerate()
                .map(|(i, labels)| Metric::new(labels.clone(), Value::Gauge(i as f64)))
                .collect(),
        };
        let view = GroupView {
            key: key.clone(),
            families: vec![std::sync::Arc::new(StoredFamily::new(
                family,
                1.0,
                key.clone(),
            ))],
            push_time: 1.0,
            failure_time: 0.0,
            created: 1.0,
            ttl: None,
            keys: Vec::new(),
        };
        let mut block = Vec::new();
        encode_group(&mut block, &view);
        let decoded = decode_group(&block).expect("decodes");
        let full = |view: &GroupView| -> Vec<Vec<Label>> {
            view.families[0]
                .series()
                .map(|s| s.labels().map(Label::from).collect())
                .collect()
        };
        assert_eq!(full(&decoded), full(&view), "{key}");
        assert_eq!(decoded.families, view.families, "{key}");
    }
}
