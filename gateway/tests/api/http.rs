//! HTTP/1.1 transport details push clients rely on: chunked bodies, keep-alive and
//! `Expect: 100-continue`.

use crate::helpers::{parse_one, raw_exchange, series, spawn_gateway};

const J: &[(&str, &str)] = &[("instance", ""), ("job", "j")];

#[test]
fn chunked_push_body_is_accepted() {
    let gw = spawn_gateway(&[]);
    let request = "PUT /metrics/job/j HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
                   Transfer-Encoding: chunked\r\n\r\n\
                   4\r\nm{x=\r\n6\r\n\"1\"} 7\r\n1\r\n\n\r\n0\r\n\r\n";
    let raw = raw_exchange(gw.addr, request.as_bytes());
    let (response, _) = parse_one(&raw).expect("a response");
    assert_eq!(response.status, 200, "{}", response.text());
    let x = [("instance", ""), ("job", "j"), ("x", "1")];
    assert_eq!(
        gw.state().get(&series("m", &x)).map(String::as_str),
        Some("7")
    );
}

#[test]
fn chunked_body_over_the_limit_gets_413() {
    let gw = spawn_gateway(&["--push.max-body-bytes=1024"]);
    let mut request = String::from(
        "PUT /metrics/job/j HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Transfer-Encoding: chunked\r\n\r\n",
    );
    for i in 0..100 {
        let line = format!("m{{i=\"{i:03}\"}} 1\n");
        request.push_str(&format!("{:x}\r\n{line}\r\n", line.len()));
    }
    request.push_str("0\r\n\r\n");
    let raw = raw_exchange(gw.addr, request.as_bytes());
    let (response, _) = parse_one(&raw).expect("a response");
    assert_eq!(response.status, 413, "{}", response.text());
    assert!(gw.state().is_empty());
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let gw = spawn_gateway(&[]);
    let request = "PUT /metrics/job/j HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nm 1\n\
                   GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n\
                   DELETE /metrics/job/j HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let raw = raw_exchange(gw.addr, request.as_bytes());
    let (first, rest) = parse_one(&raw).expect("first response");
    let (second, rest) = parse_one(rest).expect("second response");
    let (third, _) = parse_one(rest).expect("third response");
    assert_eq!((first.status, second.status, third.status), (200, 200, 202));
    assert!(!gw.state().contains_key(&series("m", J)));
}

#[test]
fn expect_100_continue_is_honoured() {
    let gw = spawn_gateway(&[]);
    let request = "PUT /metrics/job/j HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
                   Expect: 100-continue\r\nContent-Length: 4\r\n\r\nm 1\n";
    let raw = raw_exchange(gw.addr, request.as_bytes());
    let text = String::from_utf8_lossy(&raw);
    // Either an interim 100 then 200, or 200 directly.
    let last = text.rfind("HTTP/1.1 ").unwrap();
    assert!(text[last..].starts_with("HTTP/1.1 200"), "{text}");
    assert_eq!(
        gw.state().get(&series("m", J)).map(String::as_str),
        Some("1")
    );
}
