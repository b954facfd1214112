//! `App`, the state every handler shares, and the response type of the handlers.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use http::Response;
use tokio::sync::Notify;

use super::access::{Access, AccessRules, Authentication};
use super::aggregate_rules::AggregateRules;
use super::offload::Offload;
use super::response_body::ResponseBody;
use super::settings::WebConfig;
use crate::expiry::{Expirer, ExpiryPolicy};
use crate::expose::Renderer;
use crate::persist::Persister;
use crate::replicate::Replicator;
use crate::store::{Quota, Store};
use crate::telemetry::Telemetry;
use crate::webconfig::{WebConfigSource, WebSecurity};

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
    /// Who may do what (`[[access]]` of the configuration file).
    pub access: Arc<Access>,
    /// Reads the rules of the configuration file (given by `lib`, which knows the flags
    /// the file may set).
    read_rules: ReadRules,
    /// The `[[aggregate]]` rules, replaced on a reload.
    aggregate: parking_lot::RwLock<Arc<AggregateRules>>,
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
            read_rules,
            access,
            aggregate,
        } = parts;
        let access = Arc::new(Access::new(access));
        if let Some(security) = &security {
            // A new web config must leave the rules in force able to apply, as at start:
            // renaming a basic-auth user would otherwise silently free it of its entry.
            let rules = access.clone();
            security.set_reload_guard(Box::new(move |new| {
                rules
                    .rules()
                    .check_against(&authentication(Some(new)))
                    .map_err(|reason| {
                        format!("the access rules of --config.file would no longer apply: {reason}")
                    })
            }));
        }
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
            access,
            read_rules,
            aggregate: parking_lot::RwLock::new(Arc::new(aggregate)),
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
    /// Reads the rules of the configuration file, for reloads.
    pub read_rules: ReadRules,
    /// The access rules at start.
    pub access: AccessRules,
    /// The `[[aggregate]]` rules at start.
    pub aggregate: AggregateRules,
}

/// The rules of the configuration file that a reload replaces.
#[derive(Debug, Clone, Default)]
pub struct FileRules {
    /// Expiry rules.
    pub expiry: ExpiryPolicy,
    /// Who may do what.
    pub access: AccessRules,
    /// Quotas.
    pub quotas: Vec<Quota>,
    /// The groups that aggregate on the ordinary push paths.
    pub aggregate: AggregateRules,
}

/// Reads the rules of a configuration file, or says why they cannot be used.
pub type ReadRules = fn(&Path) -> Result<FileRules, String>;

/// Refuses access rules that could not restrict anyone under the web config in force
/// (none: no user at all); see [`AccessRules::check_against`].
///
/// # Errors
/// The reason.
pub fn check_access_rules(
    security: Option<&WebConfigSource>,
    rules: &AccessRules,
) -> Result<(), String> {
    let security = security.map(|s| s.current());
    rules.check_against(&authentication(security.as_deref()))
}

/// How requests are authenticated under `security` (none: no web config file).
fn authentication(security: Option<&WebSecurity>) -> Authentication<'_> {
    Authentication {
        basic_auth_users: security
            .map(|s| s.basic_auth_users().collect())
            .unwrap_or_default(),
        verified_client_certs: security.is_some_and(|s| s.verifies_client_certs()),
    }
}

impl App {
    /// Whether pushes to `key` on the ordinary paths aggregate (`[[aggregate]]`).
    pub fn aggregates(&self, key: &crate::model::GroupingKey) -> bool {
        self.aggregate.read().matches(key)
    }

    /// Re-reads the configuration file's rules (expiry, access, quotas, aggregation); the
    /// old rules all stay on error.
    ///
    /// # Errors
    /// The reason the file was refused.
    pub fn reload(&self) -> Result<(), String> {
        let Some(path) = &self.config_file else {
            return Ok(());
        };
        // Whatever goes wrong, the reload must not take its caller down: a panic in the
        // SIGHUP task would leave every later SIGHUP unheard.
        let read_rules = self.read_rules;
        let reloaded = std::panic::catch_unwind(|| read_rules(path))
            .unwrap_or_else(|_| Err("unexpected failure while reading the file".into()))
            .and_then(|rules| {
                check_access_rules(self.security.as_deref(), &rules.access)?;
                Ok(rules)
            });
        self.config_reload_ok
            .store(reloaded.is_ok(), Ordering::Relaxed);
        match reloaded {
            Ok(rules) => {
                self.expirer.set_policy(rules.expiry);
                self.access.set_rules(rules.access);
                *self.aggregate.write() = Arc::new(rules.aggregate);
                // Counts every group once (a push waits for it), so only when they changed.
                let describe = |quotas: &[Quota]| -> Vec<String> {
                    quotas.iter().map(Quota::describe).collect()
                };
                if describe(&rules.quotas) != describe(&self.store.quotas()) {
                    self.store.set_quotas(rules.quotas);
                }
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
