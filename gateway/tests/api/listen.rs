//! Listeners: repeated `--web.listen-address`, dual-stack wildcards, and the address file
//! (one line per listener, the first line the first listener).

use std::net::{Ipv6Addr, SocketAddr};

use crate::helpers::{http, spawn_listening};

#[test]
fn every_listen_address_is_served_with_one_state() {
    let (gw, addresses) = spawn_listening(&[
        "--web.listen-address=127.0.0.1:0",
        "--web.listen-address=127.0.0.1:0",
    ]);
    assert_eq!(addresses.len(), 2, "{addresses:?}");
    assert_ne!(addresses[0], addresses[1]);
    assert_eq!(gw.addr, addresses[0]);
    let put = http(addresses[1], "PUT", "/metrics/job/two", &[], b"m 1\n");
    assert_eq!(put.status, 200, "{}", put.text());
    for address in &addresses {
        let scrape = http(*address, "GET", "/metrics", &[], b"").text();
        assert!(
            scrape.contains("m{instance=\"\",job=\"two\"} 1"),
            "{address}: {scrape}"
        );
    }
    let status = gw.get("/api/v1/status").json();
    assert_eq!(
        status["data"]["flags"]["web.listen-address"], "127.0.0.1:0,127.0.0.1:0",
        "{status}"
    );
    assert_eq!(status["data"]["flags"]["web.systemd-socket"], "false");
}

#[test]
fn an_empty_host_listens_on_ipv6_and_ipv4() {
    let (gw, addresses) = spawn_listening(&["--web.listen-address=:0"]);
    let [bound] = addresses[..] else {
        panic!("{addresses:?}")
    };
    assert!(bound.ip().is_unspecified(), "{bound}");
    let port = bound.port();
    let v4: SocketAddr = ([127, 0, 0, 1], port).into();
    assert_eq!(http(v4, "GET", "/-/healthy", &[], b"").status, 200);
    // A host without IPv6 falls back to 0.0.0.0; with IPv6 both families reach one socket.
    if bound.is_ipv6() {
        let v6: SocketAddr = (Ipv6Addr::LOCALHOST, port).into();
        assert_eq!(http(v6, "GET", "/-/healthy", &[], b"").status, 200);
    }
    drop(gw);
}

#[test]
fn a_failing_listener_stops_the_start_with_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = std::process::Command::new(crate::helpers::binary())
        .arg("--web.listen-address=127.0.0.1:0")
        .arg(format!("--web.listen-address={address}"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&address), "{stderr}");
}

#[test]
fn systemd_socket_without_sockets_stops_the_start() {
    let output = std::process::Command::new(crate::helpers::binary())
        .arg("--web.systemd-socket")
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("LISTEN_FDS"), "{stderr}");
}
