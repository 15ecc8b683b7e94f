//! The token provider: the component's clients by config, for the
//! functions that take a config's JSON text.
//!
//! Each call with a config text seen before reuses its [`Client`] (parsed
//! once); clients of configs with the same canonical key share one cache
//! entry. See [`crate::client`] for the cache windows and the single-use
//! rule for assertions.

use std::collections::HashMap;
use std::rc::Rc;

use crate::capabilities::Capabilities;
use crate::client::{Client, Slot};
use crate::config::Config;
use crate::error::Error;
use crate::requirements::Requirements;
use crate::token::AccessToken;

pub use crate::client::{BACKOFF_SECS, FRESH_SECS, MANDATORY_SECS, Windows};

/// Clients kept, by their exact text, so that a repeated call does not
/// parse again. Past this many the memo starts over.
const PARSED_CONFIGS: usize = 64;
/// Configs longer than this are parsed on every call rather than kept, so the
/// memo never holds more than `PARSED_CONFIGS` times this many bytes.
const MEMO_MAX_CONFIG_BYTES: usize = 64 * 1024;

/// Cache entries kept by canonical key. Past this many, the entries no
/// client holds any more are dropped.
const ENTRIES: usize = 256;

/// Mints, caches and refreshes tokens; one per component instance.
#[derive(Default)]
pub struct Provider {
    clients: HashMap<String, Client>,
    entries: HashMap<String, Slot>,
}

impl Provider {
    /// A provider with an empty cache.
    pub fn new() -> Provider {
        Provider::default()
    }

    /// A client of the `auth` block `config_json`, validated here; it shares
    /// its cache entry with every client of the same config.
    pub fn client(&mut self, config_json: &str) -> Result<Client, Error> {
        if let Some(client) = self.clients.get(config_json) {
            return Ok(client.clone());
        }
        let config = Config::parse(config_json)?;
        let key = config.canonical_key();
        if self.entries.len() >= ENTRIES {
            self.entries.retain(|_, slot| Rc::strong_count(slot) > 1);
        }
        let slot = self.entries.entry(key).or_default().clone();
        let client = Client::new(config, slot)?;
        if config_json.len() <= MEMO_MAX_CONFIG_BYTES {
            if self.clients.len() >= PARSED_CONFIGS {
                self.clients.clear();
            }
            self.clients.insert(config_json.to_string(), client.clone());
        }
        Ok(client)
    }

    /// A valid token for the `auth` block `config_json`: from the cache, or
    /// from a fresh exchange when the cache windows say so.
    pub fn get_token(
        &mut self,
        caps: &impl Capabilities,
        config_json: &str,
    ) -> Result<AccessToken, Error> {
        self.client(config_json)?.token(caps)
    }

    /// Takes back a token this provider (or another instance, in another
    /// process) returned for `config_json` (see [`Client::restore`]). An
    /// invalid config is ignored.
    pub fn restore(&mut self, config_json: &str, token: &AccessToken) {
        if let Ok(client) = self.client(config_json) {
            client.restore(token);
        }
    }

    /// Drops the cached token for `config_json`, so the next
    /// [`Provider::get_token`] exchanges. An invalid config has nothing
    /// cached and is ignored.
    pub fn invalidate(&mut self, config_json: &str) {
        if let Ok(client) = self.client(config_json) {
            client.invalidate();
        }
    }

    /// Validates `config_json` and lists what it needs from the host.
    pub fn requirements(&mut self, config_json: &str) -> Result<Requirements, Error> {
        Ok(self.client(config_json)?.requirements().clone())
    }
}

#[cfg(test)]
mod tests;
