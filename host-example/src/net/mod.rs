//! The host's network: whom it trusts ([`tls`]), which proxy a request
//! takes ([`proxy`]), and what a failure means ([`errors`]). [`HttpClient`]
//! puts them together for the `http-fetch` capability and `doctor`.

mod connector;
pub mod errors;
pub mod proxy;
pub mod tls;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use proxy::{ProxyEnv, ProxySetting, Route, RouteError};

use std::path::PathBuf;

use crate::origin::Origin;

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

    /// How a request to `origin` goes.
    pub fn route(&self, origin: &Origin) -> Result<Route, RouteError> {
        proxy::select(&self.setting, &self.env, origin)
    }

    /// The time limit of one request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The agent that sends requests by `route`.
    pub fn agent(&self, route: &Route) -> Result<ureq::Agent, String> {
        let proxy = match route {
            Route::Direct(_) => None,
            Route::Proxy { proxy, .. } => Some(proxy),
        };
        let key = proxy.map(|p| p.expose());
        let mut agents = self.agents.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(agent) = agents.get(&key) {
            return Ok(agent.clone());
        }
        let ureq_proxy = match (&key, proxy) {
            (Some(url), Some(shown)) => {
                Some(ureq::Proxy::new(url).map_err(|_| format!("proxy {shown} is not usable"))?)
            }
            _ => None,
        };
        let config = ureq::Agent::config_builder()
            .max_redirects(0)
            .http_status_as_error(false)
            .proxy(ureq_proxy)
            .timeout_global(Some(self.timeout))
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
        let agent = connector::agent(config, self.tls.clone(), https_proxy);
        agents.insert(key, agent.clone());
        Ok(agent)
    }
}
