//! The token provider: validated configs, the exchange and the cache.
//!
//! Cache windows, as in the official SDKs, by the time left on the cached
//! token:
//! - more than [`FRESH_SECS`]: serve it;
//! - more than [`MANDATORY_SECS`]: refresh now; if that fails, serve the
//!   still-valid token and do not try again for [`BACKOFF_SECS`];
//! - otherwise (or nothing cached): refresh; a failure is an error.

use std::collections::HashMap;

use crate::capabilities::Capabilities;
use crate::config::Config;
use crate::error::Error;
use crate::exchange;
use crate::requirements::Requirements;
use crate::sources;
use crate::token::{AccessToken, Secret};

/// A token with more than this many seconds left is served from the cache.
pub const FRESH_SECS: u64 = 120;
/// A token with this many seconds left or fewer is never served.
pub const MANDATORY_SECS: u64 = 30;
/// After a failed advisory refresh, no new attempt for this many seconds.
pub const BACKOFF_SECS: u64 = 5;
/// Parsed configs kept, by their exact text, so that a repeated call does not
/// parse again. Past this many the memo starts over.
const PARSED_CONFIGS: usize = 64;
/// Configs longer than this are parsed on every call rather than kept, so the
/// memo never holds more than `PARSED_CONFIGS` times this many bytes.
const MEMO_MAX_CONFIG_BYTES: usize = 64 * 1024;

/// A cached token and the state of its refresh.
struct Cached {
    token: Secret,
    expires_at_ms: u64,
    backoff_until_ms: u64,
}

/// Mints, caches and refreshes tokens; one per component instance.
#[derive(Default)]
pub struct Provider {
    parsed: HashMap<String, (Config, String)>,
    tokens: HashMap<String, Cached>,
}

impl Provider {
    /// A provider with an empty cache.
    pub fn new() -> Provider {
        Provider::default()
    }

    /// A valid token for the `auth` block `config_json`: from the cache, or
    /// from a fresh exchange when the cache windows say so.
    pub fn get_token(
        &mut self,
        caps: &impl Capabilities,
        config_json: &str,
    ) -> Result<AccessToken, Error> {
        let (config, key) = self.parse(config_json)?;
        let now = caps.now_millis();
        let fallback = match self.tokens.get(&key) {
            Some(cached) => {
                let left = cached.expires_at_ms.saturating_sub(now);
                if left > FRESH_SECS * 1000
                    || (left > MANDATORY_SECS * 1000 && now < cached.backoff_until_ms)
                {
                    return Ok(cached.access_token());
                }
                left > MANDATORY_SECS * 1000
            }
            None => false,
        };
        match mint(caps, &config) {
            Ok(issued) => {
                let issued_at = caps.now_millis();
                let cached = Cached {
                    token: issued.token,
                    expires_at_ms: issued_at
                        .saturating_add(issued.expires_in_secs.saturating_mul(1000)),
                    backoff_until_ms: 0,
                };
                let token = cached.access_token();
                self.tokens.insert(key, cached);
                Ok(token)
            }
            Err(error) => match self.tokens.get_mut(&key) {
                Some(cached) if fallback => {
                    cached.backoff_until_ms = now.saturating_add(BACKOFF_SECS * 1000);
                    Ok(cached.access_token())
                }
                _ => Err(error),
            },
        }
    }

    /// Drops the cached token for `config_json`, so the next
    /// [`Provider::get_token`] exchanges. An invalid config has nothing
    /// cached and is ignored.
    pub fn invalidate(&mut self, config_json: &str) {
        if let Ok((_, key)) = self.parse(config_json) {
            self.tokens.remove(&key);
        }
    }

    /// Validates `config_json` and lists what it needs from the host.
    pub fn requirements(&mut self, config_json: &str) -> Result<Requirements, Error> {
        let (config, _) = self.parse(config_json)?;
        Requirements::of(&config)
    }

    fn parse(&mut self, config_json: &str) -> Result<(Config, String), Error> {
        if let Some(parsed) = self.parsed.get(config_json) {
            return Ok(parsed.clone());
        }
        let config = Config::parse(config_json)?;
        let key = config.canonical_key();
        if config_json.len() <= MEMO_MAX_CONFIG_BYTES {
            if self.parsed.len() >= PARSED_CONFIGS {
                self.parsed.clear();
            }
            self.parsed
                .insert(config_json.to_string(), (config.clone(), key.clone()));
        }
        Ok((config, key))
    }
}

impl Cached {
    /// The token as handed out: the caller may serve it until the next
    /// moment this provider would act differently.
    fn access_token(&self) -> AccessToken {
        let advisory_ms = self.expires_at_ms.saturating_sub(FRESH_SECS * 1000);
        let mandatory_ms = self.expires_at_ms.saturating_sub(MANDATORY_SECS * 1000);
        let refresh_after_ms = if self.backoff_until_ms > advisory_ms {
            self.backoff_until_ms.min(mandatory_ms)
        } else {
            advisory_ms
        };
        AccessToken {
            token: self.token.clone(),
            token_type: "Bearer".into(),
            expires_at: self.expires_at_ms / 1000,
            refresh_after: refresh_after_ms / 1000,
        }
    }
}

fn mint(caps: &impl Capabilities, config: &Config) -> Result<exchange::Issued, Error> {
    let assertion = sources::read_assertion(caps, config)?;
    exchange::exchange(caps, config, &assertion)
}

#[cfg(test)]
mod tests;
