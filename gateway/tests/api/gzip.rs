//! Gzip on both sides: compressed pushes, compressed scrapes, and a decompression bomb.

use std::io::{Read, Write};

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;

use crate::helpers::{pushed_samples, series, spawn_gateway};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[test]
fn gzip_push_is_accepted() {
    let gw = spawn_gateway(&[]);
    for (job, coding) in [("lower", "gzip"), ("upper", "GZIP")] {
        let body = gzip(b"# TYPE m gauge\nm{x=\"1\"} 42\n");
        let r = gw.request(
            "PUT",
            &format!("/metrics/job/{job}"),
            &[("Content-Encoding", coding)],
            &body,
        );
        assert_eq!(r.status, 200, "{coding}: {}", r.text());
        let state = gw.state();
        let m = series("m", &[("instance", ""), ("job", job), ("x", "1")]);
        assert_eq!(state.get(&m).map(String::as_str), Some("42"), "{coding}");
    }
}

#[test]
fn corrupt_gzip_push_is_rejected() {
    let gw = spawn_gateway(&[]);
    assert_eq!(gw.put("/metrics/job/j", "m 1\n").status, 200);
    let before = gw.state();
    let r = gw.request(
        "PUT",
        "/metrics/job/j",
        &[("Content-Encoding", "gzip")],
        b"m 2\n not gzip",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let after = gw.state();
    let pt = series("push_time_seconds", &[("instance", ""), ("job", "j")]);
    assert_eq!(before.get(&pt), after.get(&pt));
    let m = series("m", &[("instance", ""), ("job", "j")]);
    assert_eq!(after.get(&m).map(String::as_str), Some("1"));
}

#[test]
fn gzip_scrape_decompresses_to_the_same_exposition() {
    let gw = spawn_gateway(&[]);
    let body = "# HELP m Help.\n# TYPE m counter\nm{x=\"1\"} 1\nm{x=\"2\"} 2\nn 3\n";
    assert_eq!(gw.put("/metrics/job/j", body).status, 200);
    let plain = gw.scrape();
    let r = gw.request("GET", "/metrics", &[("Accept-Encoding", "gzip")], b"");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-encoding"),
        Some("gzip"),
        "{:?}",
        r.headers
    );
    let mut text = String::new();
    GzDecoder::new(&r.body[..])
        .read_to_string(&mut text)
        .expect("the body is gzip");
    // The gateway's own metrics move between two scrapes; the pushed part must not.
    assert_eq!(pushed_samples(&plain), pushed_samples(&text));
    let comments = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| l.starts_with('#'))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(comments(&plain), comments(&text));
    assert!(
        text.contains("# HELP m Help.\n# TYPE m counter\n"),
        "{text}"
    );
}

#[test]
fn gzip_bomb_gets_413_and_changes_nothing() {
    let gw = spawn_gateway(&["--push.max-body-bytes=1048576"]);
    assert_eq!(gw.put("/metrics/job/j", "m 1\n").status, 200);
    let before = gw.state();
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..100 {
        enc.write_all(&zeros).unwrap();
    }
    let bomb = enc.finish().unwrap();
    assert!(
        bomb.len() < 1 << 20,
        "bomb is {} bytes compressed",
        bomb.len()
    );
    for path in ["/metrics/job/j", "/metrics/job/new"] {
        let r = gw.request("PUT", path, &[("Content-Encoding", "gzip")], &bomb);
        assert_eq!(r.status, 413, "{path}: {}", r.text());
    }
    assert_eq!(before, gw.state());
}

#[test]
fn plain_body_over_the_limit_gets_413() {
    let gw = spawn_gateway(&["--push.max-body-bytes=1024"]);
    let body: String = (0..200).map(|i| format!("m{{i=\"{i}\"}} 1\n")).collect();
    assert!(body.len() > 1024);
    let r = gw.put("/metrics/job/j", &body);
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(gw.state().is_empty());
}

/// A valid body of exactly `len` bytes (`len` >= 8).
fn body_of_len(len: usize) -> String {
    // "m 1\n" padded with a comment line of the right length in front.
    let sample = "m 1\n";
    let comment_len = len - sample.len();
    let mut body = String::from("#");
    body.push_str(&" ".repeat(comment_len - 2));
    body.push('\n');
    body.push_str(sample);
    assert_eq!(body.len(), len);
    body
}

#[test]
fn body_limit_is_inclusive() {
    let gw = spawn_gateway(&["--push.max-body-bytes=1024"]);
    let r = gw.put("/metrics/job/j", &body_of_len(1024));
    assert_eq!(r.status, 200, "exactly at the limit: {}", r.text());
    let r = gw.put("/metrics/job/k", &body_of_len(1025));
    assert_eq!(r.status, 413, "one byte over: {}", r.text());
    assert!(!gw.state().keys().any(|k| k.contains("job=\"k\"")));
}

#[test]
fn gzip_body_limit_counts_decompressed_bytes() {
    let gw = spawn_gateway(&["--push.max-body-bytes=1024"]);
    let r = gw.request(
        "PUT",
        "/metrics/job/j",
        &[("Content-Encoding", "gzip")],
        &gzip(body_of_len(1024).as_bytes()),
    );
    assert_eq!(r.status, 200, "exactly at the limit: {}", r.text());
    let r = gw.request(
        "PUT",
        "/metrics/job/k",
        &[("Content-Encoding", "gzip")],
        &gzip(body_of_len(1025).as_bytes()),
    );
    assert_eq!(r.status, 413, "one byte over: {}", r.text());
}

#[test]
fn scrape_compression_follows_accept_encoding() {
    let gw = spawn_gateway(&[]);
    assert_eq!(gw.put("/metrics/job/j", "m 1\n").status, 200);
    for (accept, gzipped) in [
        ("deflate, gzip", true),
        ("gzip;q=1.0, identity;q=0.5", true),
        ("identity", false),
        ("br", false),
    ] {
        let r = gw.request("GET", "/metrics", &[("Accept-Encoding", accept)], b"");
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("content-encoding") == Some("gzip"),
            gzipped,
            "{accept}: {:?}",
            r.headers
        );
        if !gzipped {
            assert!(
                r.text().contains("m{instance=\"\",job=\"j\"} 1"),
                "{accept}"
            );
        }
    }
    let plain = gw.get("/metrics");
    assert_eq!(plain.header("content-encoding"), None);
}

#[test]
fn every_gzip_member_is_read() {
    let gw = spawn_gateway(&[]);
    let mut body = gzip(b"# TYPE a gauge\na 1\n");
    body.extend(gzip(b"# TYPE b gauge\nb 2\n"));
    let r = gw.request(
        "PUT",
        "/metrics/job/j",
        &[("Content-Encoding", "gzip")],
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let state = gw.state();
    for (name, value) in [("a", "1"), ("b", "2")] {
        let s = series(name, &[("instance", ""), ("job", "j")]);
        assert_eq!(state.get(&s).map(String::as_str), Some(value), "{state:?}");
    }
}

#[test]
fn bytes_after_the_last_gzip_member_get_400() {
    let gw = spawn_gateway(&[]);
    assert_eq!(gw.put("/metrics/job/j", "m 1\n").status, 200);
    let before = gw.state();
    for trailer in [&b"garbage"[..], &[0u8; 16][..], &gzip(b"n 2\n")[..10]] {
        let mut body = gzip(b"m 2\n");
        body.extend_from_slice(trailer);
        let r = gw.request(
            "PUT",
            "/metrics/job/j",
            &[("Content-Encoding", "gzip")],
            &body,
        );
        assert_eq!(r.status, 400, "{trailer:?}: {}", r.text());
        assert!(r.text().contains("gzip"), "{}", r.text());
    }
    assert_eq!(before, gw.state());
}

#[test]
fn gzip_members_share_the_decompressed_size_limit() {
    let gw = spawn_gateway(&["--push.max-body-bytes=1024"]);
    let mut body = Vec::new();
    for _ in 0..3 {
        body.extend(gzip(body_of_len(400).as_bytes()));
    }
    let r = gw.request(
        "PUT",
        "/metrics/job/j",
        &[("Content-Encoding", "gzip")],
        &body,
    );
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(gw.state().is_empty());
}

fn snappy(data: &[u8]) -> Vec<u8> {
    let mut enc = snap::write::FrameEncoder::new(Vec::new());
    enc.write_all(data).unwrap();
    enc.into_inner().unwrap()
}

#[test]
fn snappy_streams_are_read_whole_or_refused() {
    let gw = spawn_gateway(&[]);
    let mut two = snappy(b"# TYPE a gauge\na 1\n");
    two.extend(snappy(b"# TYPE b gauge\nb 2\n"));
    let r = gw.request(
        "PUT",
        "/metrics/job/j",
        &[("Content-Encoding", "snappy")],
        &two,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let before = gw.state();
    assert_eq!(before.len(), 4, "a, b and the two push times: {before:?}");
    let whole = snappy(b"c 3\n");
    let mut garbage = whole.clone();
    garbage.extend_from_slice(b"garbage");
    let cut = &whole[..whole.len() - 2];
    for body in [&garbage[..], cut] {
        let r = gw.request(
            "PUT",
            "/metrics/job/j",
            &[("Content-Encoding", "snappy")],
            body,
        );
        assert_eq!(r.status, 400, "{body:?}: {}", r.text());
        assert!(r.text().contains("snappy"), "{}", r.text());
    }
    assert_eq!(before, gw.state());
}

#[test]
fn a_bomb_under_the_body_limit_is_refused_past_its_inflation_ratio() {
    // The default 64 MiB body limit: a 64 KiB bomb would inflate to all of it. It may inflate
    // to 16 MiB (or 256 times its size), no further, and the refusal says why.
    let gw = spawn_gateway(&[]);
    assert_eq!(gw.put("/metrics/job/j", "m 1\n").status, 200);
    let before = gw.state();
    let mut enc = GzEncoder::new(Vec::new(), Compression::best());
    let comment = format!("#{}\n", " ".repeat((1 << 20) - 2));
    for _ in 0..60 {
        enc.write_all(comment.as_bytes()).unwrap();
    }
    enc.write_all(b"m 2\n").unwrap();
    let bomb = enc.finish().unwrap();
    assert!(bomb.len() < 256 << 10, "{} bytes compressed", bomb.len());
    let r = gw.request(
        "PUT",
        "/metrics/job/j",
        &[("Content-Encoding", "gzip")],
        &bomb,
    );
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.text().contains("256 times"), "{}", r.text());
    assert_eq!(before, gw.state());
}

#[test]
fn a_compressed_body_may_always_inflate_to_16_mib() {
    // Highly compressible, but within the floor: accepted as before.
    let gw = spawn_gateway(&[]);
    let line = format!("#{}\n", " ".repeat((1 << 20) - 2));
    let body = format!("{}m 1\n", line.repeat(15));
    let compressed = gzip(body.as_bytes());
    assert!(
        compressed.len() * 256 < body.len(),
        "the ratio is what is tested"
    );
    let r = gw.request(
        "PUT",
        "/metrics/job/j",
        &[("Content-Encoding", "gzip")],
        &compressed,
    );
    assert_eq!(r.status, 200, "{}", r.text());
}
