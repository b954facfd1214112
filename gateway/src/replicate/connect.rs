//! How a replica reaches the Redis primary: at a fixed address (`--storage.redis.url`), or
//! through Sentinels (`--storage.redis.sentinels`), asked again after every failure so that
//! a failover is followed. Every new connection asks the node its `ROLE` and is refused
//! unless the node says it is the primary: a replica never writes to a demoted node.
//!
//! The discovery is our own (two commands: `SENTINEL get-master-addr-by-name`, then `ROLE`)
//! rather than the `redis` crate's `sentinel` feature: the crate hands back a client pinned
//! to the address it found, so the re-discovery after a failover, the `ROLE` check of
//! every reconnect and the shared command connection would have to be wrapped around it
//! anyway, and the feature pulls in dependencies this build does not otherwise need.
//!
//! A Redis Cluster is followed the same way: every key sits under one hash tag, so one node
//! holds them all. Each new connection probes a key of that slot; a node that does not own
//! it answers `MOVED` with the owner's address, which is connected to instead (keeping the
//! seed's password and TLS settings). A `MOVED` later (the slot was moved) drops the
//! connection, and the next one finds the new owner. Our own redirection rather than the
//! crate's `cluster-async` client: that client routes each command by its own key and sends
//! keyless ones (`WAIT`, `ROLE`) to any node, while `WAIT` must follow the write on the
//! same connection and the blocking `XREAD` needs a connection of its own to the one node.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, Client, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisResult,
};

/// Where the primary is found.
#[derive(Clone)]
pub enum Target {
    /// A fixed address.
    Direct(ConnectionInfo),
    /// Asked of these Sentinels, in order, under the master name.
    Sentinel {
        /// The Sentinels (with their password, if any).
        sentinels: Vec<ConnectionInfo>,
        /// The master name the Sentinels monitor.
        master: String,
        /// Password of the Redis nodes.
        password: Option<String>,
    },
}

/// Finds the primary and keeps one shared connection to it for short commands.
pub struct Connector {
    target: Target,
    timeout: Duration,
    /// A key of the gateway's hash tag: its slot's owner is the node to use.
    slot_key: String,
    shared: tokio::sync::Mutex<Option<MultiplexedConnection>>,
}

impl Connector {
    /// A connector that connects on first use, to the node holding `slot_key`.
    pub fn new(target: Target, timeout: Duration, slot_key: String) -> Connector {
        Connector {
            target,
            timeout,
            slot_key,
            shared: tokio::sync::Mutex::new(None),
        }
    }

    /// The shared connection for short commands, connected (or reconnected) as needed.
    ///
    /// # Errors
    /// When no primary can be found or reached.
    pub async fn commands(&self) -> RedisResult<MultiplexedConnection> {
        let mut shared = self.shared.lock().await;
        if let Some(conn) = &*shared {
            return Ok(conn.clone());
        }
        let conn = self.connect(self.timeout).await?;
        *shared = Some(conn.clone());
        Ok(conn)
    }

    /// Forgets the shared connection after `error`, when it may mean that the node is gone
    /// or no longer the primary, so that the next command finds the primary again.
    pub async fn failed(&self, error: &redis::RedisError) {
        let lost = error.is_io_error()
            || error.is_timeout()
            || error.is_connection_dropped()
            || error.is_connection_refusal()
            || error.code() == Some("READONLY")
            || error.code() == Some("MASTERDOWN")
            || is_moved(error);
        if lost {
            *self.shared.lock().await = None;
        }
    }

    /// A connection of its own to the primary, with this answer timeout.
    ///
    /// # Errors
    /// When no primary can be found or reached, or the node is not the primary.
    pub async fn connect(&self, response_timeout: Duration) -> RedisResult<MultiplexedConnection> {
        let info = self.primary().await?;
        let mut conn = self.slot_owner(info, response_timeout).await?;
        self.check_primary(&mut conn).await?;
        Ok(conn)
    }

    /// A connection to the node serving the slot of the gateway's keys, starting at `info`
    /// and following `MOVED` redirections (a node outside a cluster serves every key).
    async fn slot_owner(
        &self,
        mut info: ConnectionInfo,
        response_timeout: Duration,
    ) -> RedisResult<MultiplexedConnection> {
        for _ in 0..MAX_REDIRECTS {
            let mut conn = self.open(info.clone(), response_timeout).await?;
            let probe: RedisResult<i64> = redis::cmd("EXISTS")
                .arg(&self.slot_key)
                .query_async(&mut conn)
                .await;
            match probe {
                Err(e) if is_moved(&e) => {
                    let (address, _) = e.redirect_node().unwrap_or_default();
                    tracing::debug!(address, "the slot of the keys is served elsewhere (MOVED)");
                    info = redirected(&info, address)?;
                }
                // ASK or TRYAGAIN: the slot is migrating and this node still owns it.
                Err(e) if e.is_cluster_error() => return Ok(conn),
                Err(e) => return Err(e),
                Ok(_) => return Ok(conn),
            }
        }
        Err(redis::RedisError::from((
            redis::ErrorKind::Io,
            "too many MOVED redirections finding the node of the keys' slot",
        )))
    }

    /// Fails unless the node answers `ROLE` with `master`. A fixed address whose server
    /// refuses `ROLE` (some managed offerings restrict commands) is taken as the primary:
    /// writes to a replica would fail there anyway (`READONLY`).
    ///
    /// # Errors
    /// [`not_primary`] for a replica, or the error of the command.
    pub async fn check_primary(&self, conn: &mut MultiplexedConnection) -> RedisResult<()> {
        let role: RedisResult<redis::Value> = redis::cmd("ROLE").query_async(conn).await;
        match role {
            Ok(role) if role_name(&role).as_deref() == Some("master") => Ok(()),
            Ok(_) => Err(not_primary()),
            Err(e) if matches!(self.target, Target::Direct(_)) && e.code().is_some() => {
                tracing::debug!(err = %e, "ROLE refused; taking the fixed address as the primary");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// The primary's address, as the first Sentinel that knows it says.
    async fn primary(&self) -> RedisResult<ConnectionInfo> {
        let (sentinels, master, password) = match &self.target {
            Target::Direct(info) => return Ok(info.clone()),
            Target::Sentinel {
                sentinels,
                master,
                password,
            } => (sentinels, master, password),
        };
        let mut last_error = None;
        for sentinel in sentinels {
            let asked = async {
                let mut conn = self.open(sentinel.clone(), self.timeout).await?;
                redis::cmd("SENTINEL")
                    .arg("get-master-addr-by-name")
                    .arg(master)
                    .query_async::<Option<(String, u16)>>(&mut conn)
                    .await
            };
            match asked.await {
                Ok(Some((host, port))) => return node_info(&host, port, password.as_deref()),
                Ok(None) => {
                    last_error = Some(redis::RedisError::from((
                        redis::ErrorKind::InvalidClientConfig,
                        "the Sentinel does not know the master name",
                        master.clone(),
                    )));
                }
                Err(e) => {
                    tracing::debug!(err = %e, "a Sentinel did not answer");
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| {
            redis::RedisError::from((redis::ErrorKind::InvalidClientConfig, "no Sentinel given"))
        }))
    }

    async fn open(
        &self,
        info: ConnectionInfo,
        response_timeout: Duration,
    ) -> RedisResult<MultiplexedConnection> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(response_timeout));
        Client::open(info)?
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }
}

/// Redirections followed at most per connection (a slot moving twice meanwhile).
const MAX_REDIRECTS: usize = 5;

/// Whether `error` is a Redis Cluster `MOVED`: the slot is served by another node, and the
/// command was not run.
pub fn is_moved(error: &redis::RedisError) -> bool {
    error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::Moved)
}

/// `info` pointed at `address` (`host:port` of a `MOVED`), with the same credentials and TLS.
fn redirected(info: &ConnectionInfo, address: &str) -> RedisResult<ConnectionInfo> {
    let bad = || {
        redis::RedisError::from((
            redis::ErrorKind::Io,
            "a MOVED redirection names no host:port",
            address.to_string(),
        ))
    };
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    // A node that announces no address of its own leaves the host empty: the same host.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addr = match info.addr() {
        ConnectionAddr::Tcp(seed, _) => {
            ConnectionAddr::Tcp(non_empty(host, seed).to_string(), port)
        }
        ConnectionAddr::TcpTls {
            host: seed,
            insecure,
            tls_params,
            ..
        } => ConnectionAddr::TcpTls {
            host: non_empty(host, seed).to_string(),
            port,
            insecure: *insecure,
            tls_params: tls_params.clone(),
        },
        _ => return Err(bad()),
    };
    Ok(info.clone().set_addr(addr))
}

fn non_empty<'a>(host: &'a str, fallback: &'a str) -> &'a str {
    if host.is_empty() {
        fallback
    } else {
        host
    }
}

/// The error of a node that is not (or no longer) the primary.
fn not_primary() -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::Io,
        "the node says it is a replica (ROLE), not the primary; finding the primary again",
    ))
}

fn role_name(role: &redis::Value) -> Option<String> {
    let redis::Value::Array(items) = role else {
        return None;
    };
    match items.first()? {
        redis::Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        redis::Value::SimpleString(text) => Some(text.clone()),
        _ => None,
    }
}

/// The address of a Redis node or a Sentinel, with its password.
///
/// # Errors
/// When the host and port make no address.
pub fn node_info(host: &str, port: u16, password: Option<&str>) -> RedisResult<ConnectionInfo> {
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let mut info = format!("redis://{host}:{port}").into_connection_info()?;
    if let Some(password) = password {
        let settings = info.redis_settings().clone().set_password(password);
        info = info.set_redis_settings(settings);
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_master_role_is_the_primary() {
        let role = |name: &str| {
            redis::Value::Array(vec![
                redis::Value::BulkString(name.as_bytes().to_vec()),
                redis::Value::Int(0),
            ])
        };
        assert_eq!(role_name(&role("master")).as_deref(), Some("master"));
        assert_eq!(role_name(&role("slave")).as_deref(), Some("slave"));
        assert_eq!(role_name(&redis::Value::Nil), None);
        assert!(node_info("::1", 26379, Some("pw")).is_ok());
    }

    #[test]
    fn a_redirection_keeps_the_credentials_and_changes_the_address() {
        let seed = node_info("10.0.0.1", 7000, Some("pw")).unwrap();
        let moved = redirected(&seed, "10.0.0.2:7001").unwrap();
        assert_eq!(moved.addr(), &ConnectionAddr::Tcp("10.0.0.2".into(), 7001));
        assert_eq!(moved.redis_settings().password(), Some("pw"));
        let v6 = redirected(&seed, "::1:7002").unwrap();
        assert_eq!(v6.addr(), &ConnectionAddr::Tcp("::1".into(), 7002));
        let same_host = redirected(&seed, ":7003").unwrap();
        assert_eq!(
            same_host.addr(),
            &ConnectionAddr::Tcp("10.0.0.1".into(), 7003)
        );
        assert!(redirected(&seed, "nonsense").is_err());
    }
}
