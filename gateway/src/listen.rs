//! Opens the listening sockets, as upstream's exporter-toolkit does: every
//! `--web.listen-address`, where a wildcard address (`:9091`, `0.0.0.0:9091`, `[::]:9091`)
//! listens dual-stack on IPv6 and IPv4 as Go does (IPv4 only where the host has no IPv6),
//! or with `--web.systemd-socket` the TCP sockets systemd passes (`LISTEN_FDS`). Serving
//! them is [`crate::server`]'s job.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

use crate::web::{ListenAddress, WebConfig};

/// The listen backlog, tokio's default (the kernel's somaxconn caps it).
const BACKLOG: i32 = 1024;

/// A listening socket that cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// The address cannot be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address as configured.
        address: ListenAddress,
        /// Why.
        source: io::Error,
    },
    /// `--web.systemd-socket` without sockets from systemd.
    #[error("--web.systemd-socket: no socket activation file descriptors found (LISTEN_FDS)")]
    NoActivatedSockets,
    /// A socket from systemd is not a listening TCP socket.
    #[error("--web.systemd-socket: file descriptor {fd}: {source}")]
    Activated {
        /// The descriptor number.
        fd: usize,
        /// Why it cannot be used.
        source: io::Error,
    },
}

/// Opens the configured listeners, in the order of the flags (non-blocking, ready for
/// tokio). Call it before starting threads: socket activation clears `LISTEN_FDS` from the
/// environment.
///
/// # Errors
/// [`ListenError`] naming the address or descriptor that failed.
pub fn open(web: &WebConfig) -> Result<Vec<TcpListener>, ListenError> {
    let listeners = if web.systemd_socket {
        activated()?
    } else {
        web.listen
            .iter()
            .map(|&address| bind(address).map_err(|source| ListenError::Bind { address, source }))
            .collect::<Result<Vec<_>, _>>()?
    };
    for listener in &listeners {
        listener
            .set_nonblocking(true)
            .map_err(|source| ListenError::Bind {
                address: listener
                    .local_addr()
                    .map_or(ListenAddress::Wildcard(0), ListenAddress::Socket),
                source,
            })?;
    }
    Ok(listeners)
}

fn bind(address: ListenAddress) -> io::Result<TcpListener> {
    match address {
        ListenAddress::Socket(socket) => bind_socket(socket, false),
        ListenAddress::Wildcard(port) => {
            let ipv6 = SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));
            bind_socket(ipv6, true).or_else(|ipv6_error| {
                // A port in use or a privileged port is not a reason to go IPv4 only.
                if matches!(
                    ipv6_error.kind(),
                    io::ErrorKind::AddrInUse | io::ErrorKind::PermissionDenied
                ) {
                    return Err(ipv6_error);
                }
                // No IPv6 on this host (kernel without it, or disabled): IPv4 only, as Go.
                bind_socket(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)), false).map_err(
                    |ipv4_error| {
                        io::Error::new(
                            ipv4_error.kind(),
                            format!("{ipv4_error} (on IPv6: {ipv6_error})"),
                        )
                    },
                )
            })
        }
    }
}

fn bind_socket(address: SocketAddr, dual_stack: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    if dual_stack {
        // Explicitly, not the host's net.ipv6.bindv6only default.
        socket.set_only_v6(false)?;
    }
    // As Go and tokio: a restarted gateway can bind while old connections are in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.bind(&address.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

fn activated() -> Result<Vec<TcpListener>, ListenError> {
    let mut fds = listenfd::ListenFd::from_env();
    if fds.len() == 0 {
        return Err(ListenError::NoActivatedSockets);
    }
    // systemd passes descriptors from 3 on.
    (0..fds.len())
        .map(|index| {
            let fd = index + 3;
            match fds.take_tcp_listener(index) {
                Ok(Some(listener)) => Ok(listener),
                Ok(None) => Err(ListenError::Activated {
                    fd,
                    source: io::Error::other("already taken"),
                }),
                Err(source) => Err(ListenError::Activated { fd, source }),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_takes_ipv6_and_ipv4_clients() {
        let listener = bind(ListenAddress::Wildcard(0)).expect("bind");
        let bound = listener.local_addr().expect("address");
        assert!(bound.ip().is_unspecified(), "{bound}");
        let v4 = std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, bound.port()));
        assert!(v4.is_ok(), "{v4:?}");
        if bound.is_ipv6() {
            let v6 = std::net::TcpStream::connect((Ipv6Addr::LOCALHOST, bound.port()));
            assert!(v6.is_ok(), "{v6:?}");
        }
    }

    #[test]
    fn a_taken_port_names_the_address() {
        let taken = bind(ListenAddress::Wildcard(0)).expect("bind");
        let port = taken.local_addr().expect("address").port();
        let web = crate::config::Config::from_args([
            "pushgateway".to_string(),
            format!("--web.listen-address=:{port}"),
        ])
        .expect("config")
        .web;
        let error = open(&web).expect_err("the port is taken");
        assert!(error.to_string().contains(&format!(":{port}")), "{error}");
    }
}
