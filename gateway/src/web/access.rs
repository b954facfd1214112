//! Authorisation: what each user may do, from the `[[access]]` entries of the configuration
//! file. Authentication stays with the web config file: the user is the basic-auth user
//! name or, without basic auth, the common name (CN) of a verified client certificate.
//!
//! A user without an entry may do anything, as before access rules existed. An entry grants
//! only what it names: pushes and deletes of groups its `push` scope matches, reading
//! (`scrape`: `/metrics`, `/api/v1/*` reads, the web UI), and `admin` (wipe, deletes by
//! matcher, and the lifecycle endpoints). Once any entry exists, a request that carries no
//! user at all is refused: rules that an anonymous client could step around would be a
//! surprise. Each refusal is a 403 with the reason, counted per user and action.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use http::Method;
use parking_lot::{Mutex, RwLock};

use super::error::ApiError;
use crate::label_match::LabelMatcher;
use crate::model::GroupingKey;

/// The user a verified client certificate names, attached to each request of its
/// connection by the server.
#[derive(Debug, Clone)]
pub struct ClientCertUser(pub Arc<str>);

/// What one user may do.
#[derive(Debug, Clone, Default)]
pub struct UserAccess {
    /// The groups the user may push to and delete; `None`: none.
    pub push: Option<LabelMatcher>,
    /// Whether the user may read metrics, the JSON API and the web UI.
    pub scrape: bool,
    /// Whether the user may wipe, delete by matcher and use the lifecycle endpoints.
    pub admin: bool,
}

/// The `[[access]]` entries, by user name.
#[derive(Debug, Clone, Default)]
pub struct AccessRules {
    users: BTreeMap<String, UserAccess>,
}

/// How requests are authenticated, to tell whether the rules can apply at all.
pub struct Authentication<'a> {
    /// The `basic_auth_users` of the web config file.
    pub basic_auth_users: HashSet<&'a str>,
    /// Whether client certificates are verified (their CN can be a user name).
    pub verified_client_certs: bool,
}

impl AccessRules {
    /// Rules from one entry per user.
    pub fn new(users: BTreeMap<String, UserAccess>) -> AccessRules {
        AccessRules { users }
    }

    /// Whether there is no entry (everyone may do anything).
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Refuses rules that could not restrict anyone as written: rules without any way to
    /// authenticate (every request would be anonymous), and, with basic auth (which every
    /// request then passes, so that it names the user), an entry for a user not in
    /// `basic_auth_users` (a misspelt name would leave the real user unrestricted).
    ///
    /// # Errors
    /// The reason, naming the user.
    pub fn check_against(&self, auth: &Authentication<'_>) -> Result<(), String> {
        if self.is_empty() {
            return Ok(());
        }
        if auth.basic_auth_users.is_empty() && !auth.verified_client_certs {
            return Err(
                "[[access]] entries need users to apply to: set basic_auth_users or \
                        verified client certificates in --web.config.file"
                    .into(),
            );
        }
        // With basic auth every request names a basic-auth user, so a certificate's CN never
        // counts; only without it can any name come (from a certificate).
        if auth.basic_auth_users.is_empty() {
            return Ok(());
        }
        match self
            .users
            .keys()
            .find(|user| !auth.basic_auth_users.contains(user.as_str()))
        {
            Some(user) => Err(format!(
                "[[access]] names user {user:?}, which is not in basic_auth_users of \
                 --web.config.file (with basic auth, every request is one of those users)"
            )),
            None => Ok(()),
        }
    }
}

/// What a request wants to do, as the rules see it.
#[derive(Debug, Clone, Copy)]
pub enum Action<'a> {
    /// Push to a group.
    Push(&'a GroupingKey),
    /// Delete a group.
    Delete(&'a GroupingKey),
    /// Read metrics, the JSON API or the web UI.
    Scrape,
    /// Wipe, delete by matcher, reload or quit.
    Admin,
}

impl Action<'_> {
    /// The `action` label of the refusal counter.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Push(_) => "push",
            Action::Delete(_) => "delete",
            Action::Scrape => "scrape",
            Action::Admin => "admin",
        }
    }
}

/// The rules in force (replaced on reload) and the refusals so far.
#[derive(Default)]
pub struct Access {
    rules: RwLock<Arc<AccessRules>>,
    /// Refusals by user and action; users are those with an entry, or "" for requests
    /// without a user, so the label values are bounded by the configuration.
    denied: Mutex<BTreeMap<(String, &'static str), u64>>,
}

impl Access {
    /// The rules given.
    pub fn new(rules: AccessRules) -> Access {
        Access {
            rules: RwLock::new(Arc::new(rules)),
            denied: Mutex::default(),
        }
    }

    /// Replaces the rules (after a reload).
    pub fn set_rules(&self, rules: AccessRules) {
        *self.rules.write() = Arc::new(rules);
    }

    /// The rules in force.
    pub fn rules(&self) -> Arc<AccessRules> {
        self.rules.read().clone()
    }

    /// Whether `user` (`None`: the request carries none) may do `action`.
    ///
    /// # Errors
    /// [`ApiError::Forbidden`] with the reason; the refusal is counted.
    pub fn check(&self, user: Option<&str>, action: Action<'_>) -> Result<(), ApiError> {
        let rules = self.rules();
        if rules.is_empty() {
            return Ok(());
        }
        let Some(user) = user else {
            return Err(self.deny(
                "",
                action,
                "access rules are configured and this request \
                carries no user (neither basic-auth credentials nor a verified client certificate)"
                    .into(),
            ));
        };
        let Some(access) = rules.users.get(user) else {
            return Ok(());
        };
        let refusal = match (action, &access.push) {
            (Action::Push(_) | Action::Delete(_), None) => {
                Some(format!("user {user:?} may not push or delete groups"))
            }
            (Action::Push(key) | Action::Delete(key), Some(scope)) if !scope.matches(key) => {
                Some(format!(
                    "user {user:?} may push to and delete only groups matching {}, not {key}",
                    scope.describe()
                ))
            }
            (Action::Scrape, _) if !access.scrape => Some(format!(
                "user {user:?} may not read metrics, the API or the web UI (scrape = false)"
            )),
            (Action::Admin, _) if !access.admin => Some(format!(
                "user {user:?} may not wipe, delete by matcher, reload or quit (admin = false)"
            )),
            _ => None,
        };
        match refusal {
            Some(reason) => Err(self.deny(user, action, reason)),
            None => Ok(()),
        }
    }

    /// Refuses at once a request that could push to no group at all (no user while rules
    /// exist, or an entry without `push`): an OTLP export names its groups only in its body,
    /// which is then not read, and an export without data gets no 200 either.
    ///
    /// # Errors
    /// [`ApiError::Forbidden`] with the reason; the refusal is counted.
    pub fn check_may_push(&self, user: Option<&str>) -> Result<(), ApiError> {
        let rules = self.rules();
        let pushes_nowhere = match user {
            None => !rules.is_empty(),
            Some(user) => rules.users.get(user).is_some_and(|a| a.push.is_none()),
        };
        if pushes_nowhere {
            // The refusal (and its reason) of a push to any group.
            self.check(user, Action::Push(&GroupingKey::new(Vec::new())))?;
        }
        Ok(())
    }

    /// The admin check, for endpoints that decide for themselves (deletes by matcher).
    ///
    /// # Errors
    /// [`ApiError::Forbidden`] with the reason.
    pub fn check_admin(&self, user: Option<&str>) -> Result<(), ApiError> {
        self.check(user, Action::Admin)
    }

    fn deny(&self, user: &str, action: Action<'_>, reason: String) -> ApiError {
        tracing::debug!(user, action = action.name(), reason, "access denied");
        *self
            .denied
            .lock()
            .entry((user.to_string(), action.name()))
            .or_default() += 1;
        ApiError::Forbidden(reason)
    }

    /// Refusals so far: user, action, count.
    pub fn denied(&self) -> Vec<(String, &'static str, u64)> {
        self.denied
            .lock()
            .iter()
            .map(|((user, action), count)| (user.clone(), *action, *count))
            .collect()
    }
}

/// What a request to `rest` (the path inside the route prefix; `telemetry` is
/// `--web.telemetry-path`) needs besides a push scope: pushes and deletes of a group are
/// checked by their handlers, which know the group.
pub fn needed_for(telemetry: &str, method: &Method, rest: &str) -> Option<Action<'static>> {
    if method == Method::OPTIONS {
        return None;
    }
    let reads = method == Method::GET || method == Method::HEAD;
    match rest {
        _ if rest == telemetry || rest.strip_suffix('/') == Some(telemetry) => Some(Action::Scrape),
        _ if rest.starts_with("/metrics/job/") || rest.starts_with("/metrics/job@base64/") => None,
        "/-/healthy" | "/-/ready" => None,
        "/-/quit" | "/-/reload" => Some(Action::Admin),
        "/" | "/status" => Some(Action::Scrape),
        _ if rest.starts_with("/static/") => Some(Action::Scrape),
        // An OTLP export pushes: its handler checks each resource's group against the scope.
        crate::otlp::METRICS_PATH if !reads => None,
        // Every write under the API is an admin action, including those added later.
        _ if rest == "/api/v1" || rest.starts_with("/api/v1/") => {
            Some(if reads { Action::Scrape } else { Action::Admin })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::label_match::anchored;
    use crate::model::Label;

    fn key(job: &str) -> GroupingKey {
        GroupingKey::new(vec![Label::new("job", job)])
    }

    fn access() -> Access {
        let team = UserAccess {
            push: Some(LabelMatcher {
                labels: BTreeMap::new(),
                labels_regex: vec![("job".into(), anchored("team-a-.*").expect("regex"))],
            }),
            scrape: false,
            admin: false,
        };
        Access::new(AccessRules::new([("team-a".to_string(), team)].into()))
    }

    #[test]
    fn an_entry_grants_only_what_it_names() {
        let access = access();
        let team = Some("team-a");
        assert!(access.check(team, Action::Push(&key("team-a-x"))).is_ok());
        assert!(access.check(team, Action::Delete(&key("team-a-x"))).is_ok());
        for action in [
            Action::Push(&key("team-b")),
            Action::Delete(&key("xteam-a-x")),
            Action::Scrape,
            Action::Admin,
        ] {
            let refused = access.check(team, action).expect_err("refused");
            assert!(refused.to_string().contains("team-a"), "{refused}");
        }
        // No entry: anything; no user at all: nothing.
        assert!(access.check(Some("ops"), Action::Admin).is_ok());
        assert!(access.check(None, Action::Scrape).is_err());
        assert_eq!(
            access.denied(),
            vec![
                (String::new(), "scrape", 1),
                ("team-a".to_string(), "admin", 1),
                ("team-a".to_string(), "delete", 1),
                ("team-a".to_string(), "push", 1),
                ("team-a".to_string(), "scrape", 1),
            ]
        );
        // An empty scope covers every group.
        let anywhere = UserAccess {
            push: Some(LabelMatcher::default()),
            ..UserAccess::default()
        };
        let open = Access::new(AccessRules::new([("ci".to_string(), anywhere)].into()));
        assert!(open.check(Some("ci"), Action::Delete(&key("x"))).is_ok());
        assert!(
            open.check(Some("ci"), Action::Scrape).is_err(),
            "not granted"
        );
        // Without rules everyone may do anything, anonymous requests too.
        assert!(Access::default().check(None, Action::Admin).is_ok());
    }

    #[test]
    fn routes_need_scrape_or_admin() {
        let needs =
            |method: Method, path: &str| needed_for("/metrics", &method, path).map(|a| a.name());
        for path in [
            "/metrics",
            "/metrics/",
            "/",
            "/status",
            "/static/app.js",
            "/api/v1/status",
        ] {
            assert_eq!(needs(Method::GET, path), Some("scrape"), "{path}");
        }
        for (method, path) in [
            (Method::PUT, "/api/v1/admin/wipe"),
            (Method::DELETE, "/api/v1/groups"),
            (Method::POST, "/api/v1/anything-later"),
            (Method::POST, "/-/reload"),
            (Method::PUT, "/-/quit"),
        ] {
            assert_eq!(needs(method, path), Some("admin"), "{path}");
        }
        for (method, path) in [
            (Method::PUT, "/metrics/job/a"),
            (Method::DELETE, "/metrics/job@base64/YQ"),
            (Method::GET, "/-/healthy"),
            (Method::GET, "/-/ready"),
            (Method::OPTIONS, "/api/v1/status"),
        ] {
            assert_eq!(needs(method, path), None, "{path}");
        }
    }

    #[test]
    fn rules_must_be_able_to_apply() {
        let rules = access().rules();
        let auth = |users: &[&'static str], certs| Authentication {
            basic_auth_users: users.iter().copied().collect(),
            verified_client_certs: certs,
        };
        assert!(rules.check_against(&auth(&["team-a"], false)).is_ok());
        assert!(rules.check_against(&auth(&[], true)).is_ok());
        for certs in [false, true] {
            // With basic auth a certificate never names the user: the entry would be dead.
            let misspelt = rules
                .check_against(&auth(&["team-b"], certs))
                .expect_err("refused");
            assert!(misspelt.contains("\"team-a\""), "{misspelt}");
        }
        assert!(rules.check_against(&auth(&[], false)).is_err());
        assert!(AccessRules::default()
            .check_against(&auth(&[], false))
            .is_ok());
    }
}
