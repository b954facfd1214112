//! `App`, the state every handler shares, and the response type of the handlers.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use http::Response;
use tokio::sync::Notify;

use super::aggregate_rules::AggregateRules;
use super::offload::Offload;
use super::response_body::ResponseBody;
use super::settings::WebConfig;
use crate::expiry::{Expirer, ExpiryPolicy};
use crate::expose::Renderer;
use crate::persist::Persister;
use crate::replicate::Replicator;
use crate::store::Store;
use crate::telemetry::Telemetry;
use crate::webconfig::WebConfigSource;

/// The response type of every handler.
pub type HttpResponse = Response<ResponseBody>;

/// Everything the handlers share.
pub struct App {
    /// The metric store.
    pub store: Store,
    /// The gateway's own metrics.
    pub telemetry: Telemetry,
    /// HTTP settings.
    pub config: WebConfig,
    /// Flag values for the status API.
    pub flags: Vec<(String, String)>,
    /// When the gateway started.
    pub start_time: SystemTime,
    /// Notified by `/-/quit`.
    pub quit: Notify,
    /// Durable persistence, when `--persistence.file` is set.
    pub persister: Option<Arc<Persister>>,
    /// TLS, basic auth and headers from `--web.config.file`.
    pub security: Option<Arc<WebConfigSource>>,
    /// Group expiry.
    pub expirer: Arc<Expirer>,
    /// The configuration file, re-read by `/-/reload` and SIGHUP.
    pub config_file: Option<std::path::PathBuf>,
    /// Replicated state, with `--storage=redis`.
    pub replicator: Option<Arc<Replicator>>,
    /// Reads the expiry rules of the configuration file (given by `lib`, which knows the
    /// flags the file may set).
    read_expiry: ReadExpiry,
    /// The `[[aggregate]]` rules, replaced on a reload.
    aggregate: parking_lot::RwLock<Arc<AggregateRules>>,
    /// Reads them from the configuration file.
    read_aggregate: ReadAggregate,
    /// Whether the last reload of the configuration file worked.
    pub(super) config_reload_ok: AtomicBool,
    pub(super) renderer: Renderer,
    pub(super) offload: Offload,
}

impl App {
    /// Wires the shared state of the handlers.
    pub fn new(
        store: Store,
        config: WebConfig,
        flags: Vec<(String, String)>,
        parts: AppParts,
    ) -> App {
        let AppParts {
            persister,
            security,
            expirer,
            config_file,
            replicator,
            read_expiry,
            aggregate,
            read_aggregate,
        } = parts;
        App {
            store,
            telemetry: Telemetry::new(),
            config,
            flags,
            start_time: SystemTime::now(),
            quit: Notify::new(),
            persister,
            security,
            expirer,
            config_file,
            replicator,
            read_expiry,
            aggregate: parking_lot::RwLock::new(Arc::new(aggregate)),
            read_aggregate,
            config_reload_ok: AtomicBool::new(true),
            renderer: Renderer::new(),
            offload: Offload::default(),
        }
    }
}

/// The optional parts of the gateway that the handlers use.
pub struct AppParts {
    /// Durable persistence, when `--persistence.file` is set.
    pub persister: Option<Arc<Persister>>,
    /// TLS, basic auth and headers from `--web.config.file`.
    pub security: Option<Arc<WebConfigSource>>,
    /// Group expiry.
    pub expirer: Arc<Expirer>,
    /// The configuration file, for reloads.
    pub config_file: Option<std::path::PathBuf>,
    /// Replicated state, with `--storage=redis`.
    pub replicator: Option<Arc<Replicator>>,
    /// Reads the expiry rules of the configuration file, for reloads.
    pub read_expiry: ReadExpiry,
    /// The `[[aggregate]]` rules of the configuration file.
    pub aggregate: AggregateRules,
    /// Reads them again, for reloads.
    pub read_aggregate: ReadAggregate,
}

/// Reads the `[[aggregate]]` rules of a configuration file, or says why it cannot be used.
pub type ReadAggregate = fn(&Path) -> Result<AggregateRules, String>;

/// Reads the expiry rules of a configuration file, or says why it cannot be used.
pub type ReadExpiry = fn(&Path) -> Result<ExpiryPolicy, String>;

impl App {
    /// Whether pushes to `key` on the ordinary paths aggregate (`[[aggregate]]`).
    pub fn aggregates(&self, key: &crate::model::GroupingKey) -> bool {
        self.aggregate.read().matches(key)
    }

    /// Re-reads the configuration file's expiry and aggregate rules; the old rules stay on
    /// error.
    ///
    /// # Errors
    /// The reason the file was refused.
    pub fn reload(&self) -> Result<(), String> {
        let Some(path) = &self.config_file else {
            return Ok(());
        };
        // Whatever goes wrong, the reload must not take its caller down: a panic in the
        // SIGHUP task would leave every later SIGHUP unheard.
        let (read_expiry, read_aggregate) = (self.read_expiry, self.read_aggregate);
        let reloaded = std::panic::catch_unwind(|| Ok((read_expiry(path)?, read_aggregate(path)?)))
            .unwrap_or_else(|_| Err("unexpected failure while reading the file".into()));
        self.config_reload_ok
            .store(reloaded.is_ok(), Ordering::Relaxed);
        match reloaded {
            Ok((policy, aggregate)) => {
                self.expirer.set_policy(policy);
                *self.aggregate.write() = Arc::new(aggregate);
                tracing::info!(file = %path.display(), "reloaded the configuration file");
                Ok(())
            }
            Err(e) => {
                tracing::error!(err = %e, "keeping the previous configuration");
                Err(e)
            }
        }
    }
}
