//! `/api/v1/metrics` in pages (`limit`, `after`, `next`) and as one streamed body: a walk
//! through the pages sees every group once, in order, while groups come and go between
//! pages; the whole body is the pages put together; bad parameters get a 400 with the
//! reason.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{parse_response, spawn_gateway, Gateway};

fn push(gw: &Gateway, instance: &str, series: usize) {
    let body: String = (0..series)
        .map(|i| format!("m{{i=\"{i}\"}} {i}\n"))
        .collect();
    let status = gw
        .put(&format!("/metrics/job/j/instance/{instance}"), &body)
        .status;
    assert_eq!(status, 200, "push {instance}");
}

fn instance(group: &Value) -> String {
    group["labels"]["instance"]
        .as_str()
        .unwrap_or_else(|| panic!("no instance label: {group}"))
        .to_string()
}

/// The instances of a body's `data`, in order.
fn instances(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("data is not an array: {body}"))
        .iter()
        .map(instance)
        .collect()
}

fn page(gw: &Gateway, query: &str) -> Value {
    let r = gw.get(&format!("/api/v1/metrics?{query}"));
    assert_eq!(r.status, 200, "{query}: {}", r.text());
    let body = r.json();
    assert_eq!(body["status"], "success", "{body}");
    body
}

#[test]
fn a_walk_through_the_pages_sees_every_group_once_in_order_while_groups_change() {
    let gw = spawn_gateway(&[]);
    for i in (0..30).step_by(2) {
        push(&gw, &format!("i{i:02}"), 3);
    }
    let mut walked: Vec<String> = Vec::new();
    let mut query = "limit=4".to_string();
    let mut pages = 0;
    loop {
        let body = page(&gw, &query);
        let got = instances(&body);
        assert!(got.len() <= 4, "{got:?}");
        pages += 1;
        // Between pages: a group behind the cursor, one ahead of it, and one ahead removed.
        if pages == 2 {
            push(&gw, "i00a", 1);
            push(&gw, "i21", 1);
            assert_eq!(gw.delete("/metrics/job/j/instance/i24").status, 202);
        }
        walked.extend(got);
        match body["next"].as_str() {
            Some(next) => {
                assert_eq!(body["data"].as_array().map(Vec::len), Some(4), "{body}");
                query = format!("limit=4&after={next}");
            }
            None => break,
        }
        assert!(pages < 20, "the walk does not end: {walked:?}");
    }
    let unique: BTreeSet<&String> = walked.iter().collect();
    assert_eq!(unique.len(), walked.len(), "a group came twice: {walked:?}");
    assert!(walked.contains(&"i21".to_string()), "{walked:?}");
    assert!(!walked.contains(&"i00a".to_string()), "{walked:?}");
    assert!(!walked.contains(&"i24".to_string()), "{walked:?}");
    // The walk's order is the whole list's order.
    let whole = instances(&page(&gw, ""));
    let expected: Vec<&String> = whole.iter().filter(|i| unique.contains(i)).collect();
    assert_eq!(walked.iter().collect::<Vec<_>>(), expected);
    assert_eq!(whole.len(), walked.len() + 1, "all but i00a: {whole:?}");
}

#[test]
fn the_whole_body_is_the_pages_put_together_and_streamed() {
    let gw = spawn_gateway(&[]);
    // More groups and series than one piece of the body holds.
    for i in 0..150 {
        push(&gw, &format!("g{i:03}"), if i % 10 == 0 { 3000 } else { 5 });
    }
    let whole = gw.get("/api/v1/metrics");
    assert_eq!(whole.status, 200);
    assert_eq!(whole.header("transfer-encoding"), Some("chunked"));
    assert_eq!(whole.header("content-type"), Some("application/json"));
    let text = whole.text();
    assert!(text.starts_with("{\"data\":[{") && text.ends_with("}],\"status\":\"success\"}"));
    // Compact with keys sorted, as upstream's encoder writes it.
    let parsed = whole.json();
    assert_eq!(serde_json::to_string(&parsed).unwrap(), text);
    assert_eq!(instances(&parsed).len(), 150);
    // The pages hold the same objects, in the same order.
    let mut data = Vec::new();
    let mut query = "limit=7".to_string();
    loop {
        let body = page(&gw, &query);
        data.extend(body["data"].as_array().cloned().unwrap_or_default());
        match body["next"].as_str() {
            Some(next) => query = format!("limit=7&after={next}"),
            None => break,
        }
    }
    assert_eq!(Value::Array(data), parsed["data"]);
    // The last page carries no cursor; a page is compact JSON too, `next` between the two.
    let last = gw.get(&format!(
        "/api/v1/metrics?limit=10000&after={}",
        cursor_of(&gw, 148)
    ));
    assert_eq!(instances(&last.json()), ["g149"]);
    assert!(last.json().get("next").is_none(), "{}", last.text());
    let first = gw.get("/api/v1/metrics?limit=1").text();
    assert!(
        first.contains("}],\"next\":\"") && first.ends_with("\",\"status\":\"success\"}"),
        "{first}"
    );
}

/// The cursor after the `n`-th group (0-based): the `next` of a page of `n + 1` groups.
fn cursor_of(gw: &Gateway, n: usize) -> String {
    let body = page(gw, &format!("limit={}", n + 1));
    body["next"].as_str().expect("a next cursor").to_string()
}

#[test]
fn an_empty_store_and_a_cursor_past_the_end_give_an_empty_list() {
    let gw = spawn_gateway(&[]);
    let empty = gw.get("/api/v1/metrics");
    assert_eq!(empty.text(), "{\"data\":[],\"status\":\"success\"}");
    assert_eq!(
        gw.get("/api/v1/metrics?limit=5").text(),
        "{\"data\":[],\"status\":\"success\"}"
    );
    for name in ["a", "b", "c"] {
        push(&gw, name, 1);
    }
    let (after_a, after_b) = (cursor_of(&gw, 0), cursor_of(&gw, 1));
    // `after` alone: everything after it, with no cursor.
    let rest = page(&gw, &format!("after={after_a}"));
    assert_eq!(instances(&rest), ["b", "c"]);
    assert!(rest.get("next").is_none(), "{rest}");
    // A cursor of a group deleted since still works; one past the last group gives none.
    assert_eq!(gw.delete("/metrics/job/j/instance/a").status, 202);
    assert_eq!(
        instances(&page(&gw, &format!("after={after_a}"))),
        ["b", "c"]
    );
    assert_eq!(gw.delete("/metrics/job/j/instance/c").status, 202);
    let past = page(&gw, &format!("limit=3&after={after_b}"));
    assert_eq!(instances(&past), Vec::<String>::new());
    assert!(past.get("next").is_none(), "{past}");
}

#[test]
fn bad_limits_and_cursors_are_refused_with_the_reason() {
    let gw = spawn_gateway(&[]);
    push(&gw, "a", 1);
    for (query, reason) in [
        ("limit=0", "1 to 10000"),
        ("limit=10001", "1 to 10000"),
        ("limit=99999999999999999999999", "whole number"),
        ("limit=-1", "whole number"),
        ("limit=ten", "whole number"),
        ("limit=", "whole number"),
        ("after=!!", "invalid after"),
        ("after=e30", "invalid after"),
        ("limit=2&after=%ff", "UTF-8"),
    ] {
        let r = gw.get(&format!("/api/v1/metrics?{query}"));
        assert_eq!(r.status, 400, "{query}: {}", r.text());
        assert!(r.text().contains(reason), "{query}: {}", r.text());
    }
    // The bounds themselves are fine, and nothing stored was touched.
    assert_eq!(instances(&page(&gw, "limit=10000")), ["a"]);
    assert_eq!(instances(&page(&gw, "limit=1&other=x")), ["a"]);
    assert_eq!(instances(&page(&gw, "")), ["a"]);
}

#[test]
fn a_whole_body_read_slowly_while_groups_change_is_still_one_list_in_order() {
    let gw = spawn_gateway(&[]);
    for i in 0..200 {
        push(&gw, &format!("g{i:03}"), 200);
    }
    let mut stream = TcpStream::connect(gw.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let request = format!(
        "GET /api/v1/metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        gw.addr
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = vec![0; 64 * 1024];
    let mut start = 0;
    while start < raw.len() {
        let n = stream.read(&mut raw[start..]).unwrap();
        assert!(n > 0, "closed early");
        start += n;
    }
    // While the rest is unread: groups change at both ends and in the middle.
    push(&gw, "g000a", 1);
    push(&gw, "g199a", 1);
    assert_eq!(gw.delete("/metrics/job/j/instance/g150").status, 202);
    push(&gw, "g100", 1);
    stream.read_to_end(&mut raw).unwrap();
    let response = parse_response(&raw).expect("a whole response");
    assert_eq!(response.status, 200);
    let got = instances(&response.json());
    let unique: BTreeSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "a group came twice");
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(got, sorted, "out of order");
    // Every group that stayed is there; those added or removed meanwhile may or may not be.
    let stayed = (0..200).filter(|&i| i != 150).map(|i| format!("g{i:03}"));
    for name in stayed {
        assert!(unique.contains(&name), "{name} missing");
    }
}
