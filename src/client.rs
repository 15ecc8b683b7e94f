//! A client: one validated config and its cached token.
//!
//! Every client made from the same config (by its canonical key) shares one
//! cache entry, so a token minted through one is served through the others.
//!
//! Cache windows, as in the official SDKs, by the time left on the cached
//! token, scaled to its lifetime L (`expires_in` when it was issued; see
//! [`Windows`]): advisory = min([`FRESH_SECS`], L/2), mandatory =
//! min([`MANDATORY_SECS`], L/4), so for L >= 240 s exactly the SDKs' 120 s
//! and 30 s:
//! - more than the advisory window left: serve it;
//! - more than the mandatory window left: refresh now; if that fails, serve
//!   the still-valid token and do not try again for [`BACKOFF_SECS`];
//! - otherwise (or nothing cached, or invalidated): refresh; a failure is an
//!   error.
//!
//! Assertions are single-use: the token endpoint refuses one it has already
//! exchanged. The provider keeps the [`Fingerprint`] of the assertion behind
//! each token; when a source hands back the same one, it sends nothing in the
//! advisory window (it serves the cached token and backs off), and in the
//! mandatory window or after [`Client::invalidate`] it sends it, and a
//! refusal says that the identity token has not changed.

use std::cell::RefCell;
use std::rc::Rc;

use crate::capabilities::Capabilities;
use crate::config::Config;
use crate::error::Error;
use crate::exchange;
use crate::fingerprint::Fingerprint;
use crate::requirements::Requirements;
use crate::secret::Secret;
use crate::single_use;
use crate::sources;
use crate::token::AccessToken;

/// The advisory window of a long-lived token: with this many seconds left
/// or fewer it is refreshed.
pub const FRESH_SECS: u64 = 120;
/// The mandatory window of a long-lived token: with this many seconds left
/// or fewer it is never served.
pub const MANDATORY_SECS: u64 = 30;
/// After a failed advisory refresh, no new attempt for this many seconds.
pub const BACKOFF_SECS: u64 = 5;
/// The refresh windows of a token, in milliseconds before its expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    /// From this much time left, the token is refreshed.
    pub advisory_ms: u64,
    /// From this much time left, the token is never served.
    pub mandatory_ms: u64,
}

impl Windows {
    /// The windows of a token that lives `lifetime_ms`: advisory =
    /// min(120 s, L/2), mandatory = min(30 s, L/4). A token shorter than the
    /// fixed windows is thus served for half its life and refreshed in its
    /// third quarter, instead of being refreshed on every call.
    pub fn for_lifetime(lifetime_ms: u64) -> Windows {
        Windows {
            advisory_ms: (FRESH_SECS * 1000).min(lifetime_ms / 2),
            mandatory_ms: (MANDATORY_SECS * 1000).min(lifetime_ms / 4),
        }
    }
}

/// A cached token and the state of its refresh.
pub(crate) struct Cached {
    token: Secret,
    issued_at_ms: u64,
    expires_at_ms: u64,
    backoff_until_ms: u64,
    /// The assertion the token was exchanged for.
    assertion: Fingerprint,
    /// Dropped by [`Client::invalidate`]: never served, but its
    /// assertion is still known.
    invalidated: bool,
}

/// Where a cached token stands.
enum Stage {
    /// Served as it is.
    Fresh,
    /// Still valid; refreshed unless backing off.
    Advisory,
    /// Never served.
    Mandatory,
}

/// The cache entry of one config, shared by its clients.
pub(crate) type Slot = Rc<RefCell<Option<Cached>>>;

/// One validated config and its cache entry: what the component's `client`
/// resource holds.
#[derive(Clone)]
pub struct Client {
    config: Rc<Config>,
    /// What the config needs, listed when the client is made.
    needs: Rc<Requirements>,
    slot: Slot,
}

impl Client {
    /// A client of `config` over the cache entry `slot`; an error when the
    /// config's requirements cannot be listed.
    pub(crate) fn new(config: Config, slot: Slot) -> Result<Client, Error> {
        Ok(Client {
            needs: Rc::new(Requirements::of(&config)?),
            config: Rc::new(config),
            slot,
        })
    }

    /// A valid token: from the cache, or from a fresh exchange when the
    /// cache windows say so.
    pub fn token(&self, caps: &impl Capabilities) -> Result<AccessToken, Error> {
        self.token_valid_for(caps, 0)
    }

    /// A token valid for at least `secs` more seconds when one can be had: a
    /// cached token with less time left is refreshed early, as in its
    /// advisory window. When that refresh cannot happen (the endpoint
    /// fails, or the source hands back the assertion already exchanged,
    /// which the endpoint would refuse) the cached token is served while it
    /// is outside its mandatory window, and no new attempt is made for
    /// [`BACKOFF_SECS`]; the caller sees how long it lives from
    /// `expires_at`.
    pub fn token_valid_for(
        &self,
        caps: &impl Capabilities,
        secs: u64,
    ) -> Result<AccessToken, Error> {
        let wanted_ms = secs.saturating_mul(1000);
        let now = caps.now_millis();
        let (advisory, last) = match &*self.slot.borrow() {
            Some(cached) => match cached.stage(now, wanted_ms) {
                Stage::Fresh => return Ok(cached.access_token()),
                Stage::Advisory if now < cached.backoff_until_ms => {
                    return Ok(cached.access_token());
                }
                Stage::Advisory => (true, Some(cached.assertion)),
                Stage::Mandatory => (false, Some(cached.assertion)),
            },
            None => (false, None),
        };
        let error = match mint(caps, &self.config, last, advisory) {
            Ok(Minted::Issued(issued, assertion)) => {
                let issued_at_ms = caps.now_millis();
                let cached = Cached {
                    token: issued.token,
                    issued_at_ms,
                    expires_at_ms: issued_at_ms
                        .saturating_add(issued.expires_in_secs.saturating_mul(1000)),
                    backoff_until_ms: 0,
                    assertion,
                    invalidated: false,
                };
                let token = cached.access_token();
                *self.slot.borrow_mut() = Some(cached);
                return Ok(token);
            }
            Ok(Minted::Unchanged) => single_use::unchanged(&self.config),
            Err(error) => error,
        };
        match &mut *self.slot.borrow_mut() {
            Some(cached) if advisory => {
                cached.backoff_until_ms = now.saturating_add(BACKOFF_SECS * 1000);
                Ok(cached.access_token())
            }
            _ => Err(error),
        }
    }

    /// Takes back a token a client of this config returned, possibly in
    /// another process: kept when it expires later than the one held, or
    /// when it is the one held and carries a longer backoff.
    pub fn restore(&self, token: &AccessToken) {
        // What `token` hands out is a bearer token; so is what it keeps.
        if !crate::token::is_b64token(token.token.expose()) {
            return;
        }
        let expires_at_ms = token.expires_at.saturating_mul(1000);
        let issued_at_ms = token.issued_at.saturating_mul(1000).min(expires_at_ms);
        let advisory_at_ms = expires_at_ms
            .saturating_sub(Windows::for_lifetime(expires_at_ms - issued_at_ms).advisory_ms);
        let refresh_after_ms = token.refresh_after.saturating_mul(1000);
        let restored = Cached {
            token: token.token.clone(),
            issued_at_ms,
            expires_at_ms,
            backoff_until_ms: if refresh_after_ms > advisory_at_ms {
                refresh_after_ms
            } else {
                0
            },
            assertion: token.assertion,
            invalidated: false,
        };
        let mut slot = self.slot.borrow_mut();
        match &mut *slot {
            Some(held) if held.token == restored.token => {
                if !held.invalidated {
                    held.backoff_until_ms = held.backoff_until_ms.max(restored.backoff_until_ms);
                }
            }
            Some(held) if held.expires_at_ms >= restored.expires_at_ms => {}
            _ => *slot = Some(restored),
        }
    }

    /// Drops the cached token, so the next [`Client::token`] exchanges. The
    /// fingerprint of its assertion is kept.
    pub fn invalidate(&self) {
        if let Some(cached) = &mut *self.slot.borrow_mut() {
            cached.invalidated = true;
        }
    }

    /// [`Client::invalidate`] only when `rejected` is the token held: after
    /// many requests are refused with one token, the first call drops it
    /// and the others leave its replacement alone.
    pub fn invalidate_rejected(&self, rejected: &str) {
        if let Some(cached) = &mut *self.slot.borrow_mut()
            && cached.token.expose() == rejected
        {
            cached.invalidated = true;
        }
    }

    /// What the config needs from the host.
    pub fn requirements(&self) -> &Requirements {
        &self.needs
    }

    /// The identity token (assertion) the config's source produces now,
    /// read as [`Client::token`] reads it before an exchange, but neither
    /// exchanged nor remembered: for a host's diagnostics. Each call reads
    /// the source anew.
    pub fn identity_token(&self, caps: &impl Capabilities) -> Result<Secret, Error> {
        sources::read_assertion(caps, &self.config)
    }
}

impl Cached {
    fn windows(&self) -> Windows {
        Windows::for_lifetime(self.expires_at_ms.saturating_sub(self.issued_at_ms))
    }

    /// Where the token stands at `now` for a caller who wants it valid for
    /// `wanted_ms` more: less than that left counts as the advisory window.
    fn stage(&self, now: u64, wanted_ms: u64) -> Stage {
        let left = self.expires_at_ms.saturating_sub(now);
        let windows = self.windows();
        if self.invalidated || left <= windows.mandatory_ms {
            Stage::Mandatory
        } else if left > windows.advisory_ms.max(wanted_ms) {
            Stage::Fresh
        } else {
            Stage::Advisory
        }
    }

    /// The token as handed out: the caller may serve it until the next
    /// moment this provider would act differently.
    fn access_token(&self) -> AccessToken {
        let windows = self.windows();
        let advisory_ms = self.expires_at_ms.saturating_sub(windows.advisory_ms);
        let mandatory_ms = self.expires_at_ms.saturating_sub(windows.mandatory_ms);
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
            refresh_by: mandatory_ms / 1000,
            issued_at: self.issued_at_ms / 1000,
            assertion: self.assertion,
        }
    }
}

/// What [`mint`] did.
enum Minted {
    /// A token was issued for the assertion with this fingerprint.
    Issued(exchange::Issued, Fingerprint),
    /// The source handed back the assertion of the cached token, in the
    /// advisory window: nothing was sent.
    Unchanged,
}

/// Reads an assertion and exchanges it, unless it is `last` (the one the
/// cached token came from) and the cached token is in its `advisory`
/// window. A refused `last` says so.
fn mint(
    caps: &impl Capabilities,
    config: &Config,
    last: Option<Fingerprint>,
    advisory: bool,
) -> Result<Minted, Error> {
    let assertion = sources::read_assertion(caps, config)?;
    let fingerprint = Fingerprint::of(&assertion);
    let reused = last == Some(fingerprint);
    if reused && advisory {
        return Ok(Minted::Unchanged);
    }
    match exchange::exchange(caps, config, &assertion) {
        Ok(issued) => Ok(Minted::Issued(issued, fingerprint)),
        Err(error) if reused => Err(single_use::refused_again(error, config)),
        Err(error) => Err(error),
    }
}
