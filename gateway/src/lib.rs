//! A Prometheus Pushgateway: batch jobs push metrics over HTTP, Prometheus scrapes them.
//! Drop-in compatible with upstream prometheus/pushgateway, with a push cost that depends
//! only on the size of the push.
//!
//! # Layout
//! - [`config`]: flags and the file translated into each subsystem's settings;
//!   [`config_file`]: the TOML file.
//! - [`model`]: metric families, labels, grouping keys, name rules.
//! - [`parse`]: push bodies to families; [`proto`]: the protobuf messages.
//! - [`otlp`]: OTLP/HTTP metrics exports decoded and translated into pushes.
//! - [`grouping`]: the grouping key in a push URL; [`selector`]: PromQL label selectors
//!   over grouping keys.
//! - [`store`]: groups, push semantics, the consistency index.
//! - [`expiry`]: opt-in removal of stale groups; [`label_match`]: conditions on grouping
//!   labels (expiry rules, quotas, push scopes).
//! - [`expose`]: snapshots to the exposition formats.
//! - [`persist`]: write-ahead log, snapshots, restore.
//! - [`replicate`]: replicated state through a Redis stream (`--storage=redis`).
//! - [`telemetry`]: the gateway's own metrics, logging.
//! - [`webconfig`]: TLS, basic auth, headers and the rate limit from `--web.config.file`.
//! - [`listen`]: the listening sockets (addresses, dual stack, socket activation).
//! - [`web`]: routing and handlers; [`server`]: connections; [`signal`]: termination.
//! - [`clock`]: Unix time and RFC 3339; [`duration`]: Go durations; [`registry`]:
//!   prometheus-client registries as families; [`logfmt`]: the log line format.

pub mod clock;
pub mod config;
pub mod config_file;
pub mod duration;
pub mod expiry;
pub mod expose;
pub mod grouping;
pub mod label_match;
pub mod listen;
pub mod logfmt;
pub mod model;
pub mod otlp;
pub mod parse;
pub mod persist;
pub mod proto;
pub mod registry;
pub mod replicate;
pub mod selector;
pub mod server;
pub mod signal;
pub mod store;
pub mod telemetry;
#[cfg(test)]
mod test_rng;
pub mod web;
pub mod webconfig;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use config::Config;
use persist::Persister;
use store::{Store, StoreConfig};
use web::App;

/// Why the gateway cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The persisted state cannot be restored.
    #[error(transparent)]
    Persist(#[from] persist::PersistError),
    /// The web config file is invalid.
    #[error(transparent)]
    WebConfig(#[from] webconfig::WebConfigError),
    /// Replication cannot start.
    #[error(transparent)]
    Replication(#[from] replicate::ReplicationError),
    /// The access rules of the configuration file cannot apply.
    #[error("config file: {0}")]
    Access(String),
}

/// Runs the gateway on `listeners` until `shutdown` resolves or `/-/quit` is called.
///
/// # Errors
/// When the persisted state cannot be restored or the web config file is invalid.
pub async fn run(
    config: Config,
    listeners: Vec<TcpListener>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let store = Store::new(StoreConfig {
        consistency: config.web.consistency,
        reserved: telemetry::own_metric_types(),
        limits: config.limits,
        idempotency: config.idempotency,
    });
    store.set_quotas(config.quotas.clone());
    let security = config
        .web
        .web_config_file
        .as_deref()
        .map(webconfig::WebConfigSource::open)
        .transpose()?
        .map(Arc::new);
    // Rules that could not restrict anyone stop the start, as a bad web config does.
    web::check_access_rules(security.as_deref(), &config.access).map_err(StartError::Access)?;
    let persister = match config.persistence.clone() {
        Some(persist_config) => {
            let store = store.clone();
            let restored =
                tokio::task::spawn_blocking(move || Persister::start(persist_config, &store))
                    .await
                    .map_err(|e| persist::PersistError::Io {
                        path: Default::default(),
                        source: std::io::Error::other(e.to_string()),
                    })??;
            Some(restored)
        }
        None => None,
    };
    let snapshots = persister.clone().map(|p| tokio::spawn(p.run_snapshots()));
    let expirer = Arc::new(expiry::Expirer::new(config.expiry.clone()));
    // With Redis the leader sends expiry sweeps through the stream instead.
    let replicator = config
        .redis
        .clone()
        .map(|redis| replicate::Replicator::start(redis, store.clone(), expirer.clone()))
        .transpose()?;
    let expiry_task = replicator
        .is_none()
        .then(|| tokio::spawn(expirer.clone().run(store.clone())));
    let app = Arc::new(App::new(
        store,
        config.web.clone(),
        config.flags.clone(),
        web::AppParts {
            persister: persister.clone(),
            security,
            expirer,
            config_file: config.config_file.clone(),
            read_rules: |path| Config::reload_rules(path).map_err(|e| e.to_string()),
            access: config.access.clone(),
            aggregate: config.aggregate.clone(),
            replicator: replicator.clone(),
        },
    ));
    let reload_app = app.clone();
    let hangups = tokio::spawn(async move {
        signal::on_hangup(|| {
            let _ = reload_app.reload();
        })
        .await;
    });
    let quit_app = app.clone();
    let stop = async move {
        tokio::select! {
            () = shutdown => {},
            () = quit_app.quit.notified() => {},
        }
        tracing::info!("shutting down");
    };
    server::serve(listeners, app, stop).await;
    tracing::info!("HTTP server stopped");
    if let Some(expiry_task) = expiry_task {
        expiry_task.abort();
    }
    hangups.abort();
    if let Some(snapshots) = snapshots {
        snapshots.abort();
    }
    if let Some(replicator) = replicator {
        replicator.shutdown().await;
    }
    if let Some(persister) = persister {
        let _ = tokio::task::spawn_blocking(move || persister.shutdown()).await;
    }
    Ok(())
}
