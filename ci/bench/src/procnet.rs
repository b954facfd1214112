//! Which TCP ports a process really listens on, read from /proc: the sockets among its open
//! files matched against the LISTEN entries of /proc/net/tcp and tcp6. Lets the bench start
//! programs on port 0 (or check a port it had to choose) without trusting that a port stayed
//! free.

use std::collections::HashSet;

/// /proc/net/tcp state of a listening socket.
const TCP_LISTEN: &str = "0A";

fn socket_inodes(pid: u32) -> HashSet<String> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    fds.flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy();
            target
                .strip_prefix("socket:[")
                .and_then(|rest| rest.strip_suffix(']'))
                .map(str::to_string)
        })
        .collect()
}

/// The TCP ports on which process `pid` listens.
pub fn listening_ports(pid: u32) -> HashSet<u16> {
    let inodes = socket_inodes(pid);
    let mut ports = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() <= 9 || fields[3] != TCP_LISTEN || !inodes.contains(fields[9]) {
                continue;
            }
            let port = fields[1]
                .rsplit_once(':')
                .and_then(|(_, hex)| u16::from_str_radix(hex, 16).ok());
            ports.extend(port);
        }
    }
    ports
}

/// A port for a program that cannot listen on port 0 (redis-server), drawn below the kernel's
/// ephemeral range (which port-0 listeners and outgoing connections use). Nothing guarantees
/// that it is free: check with [`listening_ports`] that the program got it.
pub fn candidate_port(attempt: u32) -> u16 {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    let span = low.saturating_sub(10_000).max(1);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mix = (nanos ^ std::process::id().rotate_left(16)).wrapping_add(attempt.wrapping_mul(7919));
    // At most 65535: low is a port number.
    (10_000 + mix % span) as u16
}
