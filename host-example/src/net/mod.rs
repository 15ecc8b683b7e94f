//! The host's network: whom it trusts ([`tls`]), which proxy a request
//! takes ([`proxy`]), which headers are the client's own ([`headers`]), and
//! what a failure means ([`errors`]). [`HttpClient`]
//! puts them together for the `http-fetch` capability and `doctor`.

mod connector;
pub mod errors;
pub mod headers;
pub mod proxy;
pub mod tls;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use proxy::{ProxyEnv, ProxySetting, ProxyUrl, Route, RouteError};

use std::path::PathBuf;

use crate::origin::Origin;
use crate::policy::Policy;

/// The configuration of an agent, being built.
type AgentConfig = ureq::config::ConfigBuilder<ureq::typestate::AgentScope>;

/// HTTP agents for a policy, one per proxy in use: no redirects, statuses
/// returned as responses, the policy's timeout, TLS as [`tls`] says, and
/// the proxy [`proxy::select`] picks for each request.
pub struct HttpClient {
    setting: ProxySetting,
    env: ProxyEnv,
    timeout: Duration,
    tls: Arc<tls::LazyClientConfig>,
    agents: Mutex<HashMap<Option<String>, ureq::Agent>>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("proxy", &self.setting)
            .field("env", &self.env)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A client that routes by `setting` with the proxy variables `env`,
    /// trusts the platform's roots and `ca_files`, and gives each request
    /// `timeout`.
    pub fn new(
        setting: ProxySetting,
        env: ProxyEnv,
        ca_files: Vec<PathBuf>,
        timeout: Duration,
    ) -> HttpClient {
        HttpClient {
            setting,
            env,
            timeout,
            tls: Arc::new(tls::LazyClientConfig::new(ca_files)),
            agents: Mutex::new(HashMap::new()),
        }
    }

    /// The client of `policy`: its proxy setting, CA files and timeout,
    /// with this process's proxy variables.
    pub fn for_policy(policy: &Policy) -> HttpClient {
        HttpClient::new(
            policy.proxy.clone(),
            ProxyEnv::from_process(),
            policy.ca_files.clone(),
            policy.http_timeout,
        )
    }

    /// How a request to `origin` goes.
    pub fn route(&self, origin: &Origin) -> Result<Route, RouteError> {
        proxy::select(&self.setting, &self.env, origin)
    }

    /// The time limit of one request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The agent that sends requests by `route`, each within the policy's
    /// timeout.
    pub fn agent(&self, route: &Route) -> Result<ureq::Agent, ClientError> {
        let key = route_proxy(route).map(ProxyUrl::expose);
        let mut agents = self.agents.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(agent) = agents.get(&key) {
            return Ok(agent.clone());
        }
        let timeout = self.timeout;
        let agent = self.agent_with(route, |config| config.timeout_global(Some(timeout)))?;
        agents.insert(key, agent.clone());
        Ok(agent)
    }

    /// An agent by `route` with this client's TLS, no redirects and
    /// statuses as answers, configured further by `configure`.
    fn agent_with(
        &self,
        route: &Route,
        configure: impl FnOnce(AgentConfig) -> AgentConfig,
    ) -> Result<ureq::Agent, ClientError> {
        let proxy = route_proxy(route);
        let ureq_proxy = proxy
            .map(|p| {
                ureq::Proxy::new(&p.expose()).map_err(|source| ClientError::UnusableProxy {
                    proxy: p.clone(),
                    source: Box::new(source),
                })
            })
            .transpose()?;
        let config = configure(
            ureq::Agent::config_builder()
                .max_redirects(0)
                .http_status_as_error(false)
                .proxy(ureq_proxy),
        )
        .build();
        let https_proxy = proxy.filter(|p| p.scheme() == "https").map(|p| {
            (
                p.host()
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string(),
                p.port(),
            )
        });
        Ok(connector::agent(config, self.tls.clone(), https_proxy))
    }
}

/// Why no HTTP agent could be made for a route.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The HTTP client does not take the proxy URL (shown without its
    /// credentials).
    #[error("proxy {proxy} is not usable")]
    UnusableProxy {
        /// The proxy.
        proxy: ProxyUrl,
        /// The HTTP client's refusal.
        #[source]
        source: Box<ureq::Error>,
    },
}

impl ClientError {
    /// Whether a retry may help: never, the proxy URL is configuration.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::UnusableProxy { .. } => false,
        }
    }
}

/// The proxy a route goes through, if any.
fn route_proxy(route: &Route) -> Option<&ProxyUrl> {
    match route {
        Route::Direct(_) => None,
        Route::Proxy { proxy, .. } => Some(proxy),
    }
}
