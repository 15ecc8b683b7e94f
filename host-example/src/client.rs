//! A prepared handle on one config: [`Client`], made by
//! [`Provider::client`](crate::Provider::client).
//!
//! - The config is validated once, when the client is made (the
//!   component's `client` resource constructor).
//! - A cached call reads the calling thread's copy of the client's token
//!   after one atomic load of its generation: no lock, no hash, no
//!   allocation, and nothing written that another thread reads, so its cost
//!   does not grow with the number of threads.
//! - Past the token's `refresh-after` (spread per process, see
//!   [`crate::spread`]) one caller at a time enters the component (single
//!   flight); callers that waited find the fresh token. With a persistent
//!   token cache the single flight spans processes (see
//!   [`crate::cache_lock`]).
//! - The component side of a client lives in the provider's instance; after
//!   a trap drops the instance, the next call makes it again there.

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use thread_local::ThreadLocal;
use wasmtime::component::ResourceAny;

use crate::bindings::exports::anthropic_wif::federation::provider as wit;
use crate::error::Error;
use crate::exports::Exports;
use crate::provider::{Inner, Live, env_var};
use crate::requirements::Requirements;
use crate::token::{AccessToken, AssertionFingerprint, Secret};
use crate::token_cache::{Entry, PolicyOrigin, TokenCache};

/// A prepared handle on one config: call [`Client::token`] as often as
/// needed. Cheap to clone (shared); `Send + Sync`. Its component side is
/// dropped with the last clone.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
}

/// What every clone of a client shares.
pub(crate) struct Shared {
    /// Names the client's resource in the provider's instance.
    id: u64,
    /// The `auth` block's JSON text.
    config: Box<str>,
    inner: Arc<Inner>,
    /// The token the component last returned, and until when this process
    /// serves it.
    held: RwLock<Option<Held>>,
    /// Bumped after every change to `held`; starts at 1, so that a thread's
    /// first call copies `held`.
    generation: AtomicU64,
    /// Each thread's copy of `held`.
    local: ThreadLocal<LocalHeld>,
    /// What the config needs, asked once: the component lists it when the
    /// client is made and it never changes.
    needs: OnceLock<Requirements>,
}

/// A token and the moment (Unix seconds) this process stops serving it
/// without asking the component.
#[derive(Clone)]
struct Held {
    token: AccessToken,
    serve_until: u64,
}

/// One thread's copy of a client's token, as of `generation`. Its token has
/// its own reference count, so serving it touches no memory another thread
/// writes; aligned so that two threads' copies never share a cache line.
#[derive(Default)]
#[repr(align(128))]
struct LocalHeld(RefCell<LocalCopy>);

#[derive(Default)]
struct LocalCopy {
    generation: u64,
    held: Option<Held>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.shared.id)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client of `config_json` whose component side is not made yet.
    pub(crate) fn unprepared(id: u64, config_json: &str, inner: Arc<Inner>) -> Client {
        Client {
            shared: Arc::new(Shared {
                id,
                config: config_json.into(),
                inner,
                held: RwLock::new(None),
                generation: AtomicU64::new(1),
                local: ThreadLocal::new(),
                needs: OnceLock::new(),
            }),
        }
    }

    /// Makes the component side now, which validates the config.
    pub(crate) fn prepare(&self) -> Result<(), Error> {
        let mut instance = self.shared.inner.lock_instance();
        self.shared.resource(&mut instance).map(drop)
    }

    /// The `auth` block's JSON text this client was made from.
    pub fn config(&self) -> &str {
        &self.shared.config
    }

    /// A valid access token: the one held while it may be served, else the
    /// component's answer (from its cache or a fresh exchange).
    pub fn token(&self) -> Result<AccessToken, Error> {
        match self.shared.cached(0) {
            Some(token) => Ok(token),
            None => self.shared.refresh(0),
        }
    }

    /// The token held, while this process may serve it; `None` otherwise.
    /// No I/O and no component call: for callers on an async runtime, which
    /// call [`Client::token`] off it when this is `None`.
    pub fn cached_token(&self) -> Option<AccessToken> {
        self.shared.cached(0)
    }

    /// A token valid for at least `seconds` more seconds when one can be had
    /// (see the WIT's `token-valid-for`): a held token with less time left
    /// is refreshed early, unless the component cannot exchange the
    /// identity token again yet, in which case the token it still serves is
    /// returned and `expires_at` tells how long it lives.
    pub fn token_valid_for(&self, seconds: u32) -> Result<AccessToken, Error> {
        match self.shared.cached(seconds) {
            Some(token) => Ok(token),
            None => self.shared.refresh(seconds),
        }
    }

    /// Asks the component, bypassing the token held here (the component's
    /// own cache still applies); the answer replaces it. For benchmarks and
    /// diagnostics; applications call [`Client::token`].
    pub fn token_uncached(&self) -> Result<AccessToken, Error> {
        let mut instance = self.shared.inner.lock_instance();
        self.shared.ask_component(&mut instance, 0)
    }

    /// Drops the token, here, in the token cache (when it still holds that
    /// token) and in the component; the next call exchanges. Call it when
    /// the API answers 401.
    pub fn invalidate(&self) -> Result<(), Error> {
        self.shared.drop_token(None)
    }

    /// [`Client::invalidate`] for the token the API refused: when another
    /// caller has already replaced it, nothing is dropped, so that many
    /// requests refused with one token lead to one new exchange, not one
    /// each (each would spend the identity token again).
    pub fn invalidate_rejected(&self, rejected: &Secret) -> Result<(), Error> {
        self.shared.drop_token(Some(rejected))
    }

    /// What the config needs from the host.
    pub fn requirements(&self) -> Result<Requirements, Error> {
        let mut instance = self.shared.inner.lock_instance();
        self.shared.requirements(&mut instance).cloned()
    }

    /// The identity token (the assertion) the config's source produces now,
    /// read by the component exactly as before an exchange and under the
    /// provider's policy, but neither exchanged nor remembered: for
    /// diagnostics (`wif-host doctor` shows its claims, never the token).
    /// Each call reads the source anew: a command runs, a URL is fetched.
    pub fn identity_token(&self) -> Result<Secret, Error> {
        let mut instance = self.shared.inner.lock_instance();
        let assertion = self.shared.call(&mut instance, |client, store, me| {
            client.identity_token(store, me)
        })?;
        assertion
            .map(|assertion| Secret::new(&assertion))
            .map_err(Error::from)
    }
}

impl Shared {
    /// The held token while this process may serve it and it lives at least
    /// `seconds` more: from this thread's copy when that copy is current,
    /// else copied (with a reference count of its own) from `held`.
    fn cached(&self, seconds: u32) -> Option<AccessToken> {
        let now = self.inner.ctx.clock().now_secs();
        // Read before `held`: a copy made from it is then tagged with a
        // generation no newer than its content, and the next change
        // discards it.
        let generation = self.generation.load(Ordering::Acquire);
        let mut local = self.local.get_or_default().0.borrow_mut();
        if local.generation != generation {
            local.held = self
                .held
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .map(|held| Held {
                    token: AccessToken {
                        token: Secret::new(held.token.token.expose()),
                        ..held.token.clone()
                    },
                    serve_until: held.serve_until,
                });
            local.generation = generation;
        }
        let held = local.held.as_ref()?;
        (now < held.serve_until && held.token.expires_at.saturating_sub(now) >= u64::from(seconds))
            .then(|| held.token.clone())
    }

    /// Past the cached path: one caller at a time asks the component,
    /// through the persistent token cache when there is one.
    fn refresh(&self, seconds: u32) -> Result<AccessToken, Error> {
        let mut instance = self.inner.lock_instance();
        if let Some(token) = self.cached(seconds) {
            return Ok(token);
        }
        tracing::debug!("no servable token held; asking the component");
        match &self.inner.settings.token_cache {
            Some((cache, origin)) => {
                self.through_token_cache(&mut instance, cache, *origin, seconds)
            }
            None => self.ask_component(&mut instance, seconds),
        }
    }

    /// This client's resource in the live instance, made (and the config
    /// validated) when the instance has none.
    fn resource(&self, instance: &mut Option<Live>) -> Result<ResourceAny, Error> {
        if let Some(resource) = instance.as_ref().and_then(|l| l.resources.get(&self.id)) {
            return Ok(*resource);
        }
        let made = self.inner.call(instance, |exports, store| {
            exports.constructor(store, &self.config)
        })?;
        let resource = made.map_err(Error::from)?;
        if let Some(live) = instance.as_mut() {
            live.resources.insert(self.id, resource);
        }
        Ok(resource)
    }

    /// Calls a method of this client's resource.
    fn call<R>(
        &self,
        instance: &mut Option<Live>,
        f: impl FnOnce(
            &Exports,
            &mut wasmtime::Store<crate::provider::StoreState>,
            ResourceAny,
        ) -> wasmtime::Result<R>,
    ) -> Result<R, Error> {
        let resource = self.resource(instance)?;
        self.inner
            .call(instance, |exports, store| f(exports, store, resource))
    }

    /// Under the entry's lock: the token another process left in the token
    /// cache while it may be served, else the component's answer (given the
    /// cached token first, so that its windows and its memory of the
    /// assertion apply), written back for the others.
    fn through_token_cache(
        &self,
        instance: &mut Option<Live>,
        cache: &TokenCache,
        origin: PolicyOrigin,
        seconds: u32,
    ) -> Result<AccessToken, Error> {
        let policy = self.inner.ctx.policy();
        let entry = match cache.entry(&self.config, origin.in_effect(policy)) {
            Ok(entry) => entry,
            Err(problem) => {
                tracing::warn!(%problem, "token cache not used; asking the component");
                return self.ask_component(instance, seconds);
            }
        };
        let _lock = match entry.lock(self.inner.token_cache_wait()) {
            Ok(Some(lock)) => Some(lock),
            Ok(None) => {
                tracing::warn!(
                    folder = %cache.dir().display(),
                    "another process held the token cache entry too long; going on without it"
                );
                None
            }
            Err(problem) => {
                tracing::warn!(%problem, "token cache not used; asking the component");
                return self.ask_component(instance, seconds);
            }
        };
        match entry.load(env_var) {
            Ok(Some(stored)) => {
                let now = self.inner.ctx.clock().now_secs();
                if self.inner.settings.spread.serves(&stored, now)
                    && stored.expires_at.saturating_sub(now) >= u64::from(seconds)
                {
                    tracing::debug!("token served from the token cache");
                    self.keep(stored.clone());
                    return Ok(stored);
                }
                let token = wit::AccessToken {
                    token: stored.token.expose().to_string(),
                    token_type: stored.token_type.to_string(),
                    expires_at: stored.expires_at,
                    refresh_after: stored.refresh_after,
                    refresh_by: stored.refresh_by,
                    issued_at: stored.issued_at,
                    assertion_sha256: stored.assertion.to_string(),
                };
                self.call(instance, |client, store, me| {
                    client.restore(store, me, &token)
                })?;
            }
            Ok(None) => {}
            Err(problem) => {
                tracing::warn!(%problem, "token cache entry not read; asking the component");
            }
        }
        let token = self.ask_component(instance, seconds)?;
        self.save(instance, &entry, &token);
        Ok(token)
    }

    /// Writes `token` to the token cache, bound to the values of the
    /// variables the config reads. A token outside RFC 6750's alphabet is
    /// never cached (the CLI never prints one either).
    fn save(&self, instance: &mut Option<Live>, entry: &Entry, token: &AccessToken) {
        if !token.is_b64token() {
            tracing::warn!("the access token is not an RFC 6750 bearer token; not cached");
            return;
        }
        let Ok(needs) = self.requirements(instance) else {
            tracing::warn!("the config's variables are unknown; token not cached");
            return;
        };
        if let Err(problem) = entry.store(&needs.env, env_var, token) {
            tracing::warn!(%problem, "cannot save the token in the token cache");
        }
    }

    /// Calls the resource's `token` (or `token-valid-for`), checks the
    /// answer and holds it.
    fn ask_component(
        &self,
        instance: &mut Option<Live>,
        seconds: u32,
    ) -> Result<AccessToken, Error> {
        let result = self.call(instance, |client, store, me| {
            if seconds == 0 {
                client.token(store, me)
            } else {
                client.token_valid_for(store, me, seconds)
            }
        })?;
        let token = result.map_err(|e| {
            let error = Error::from(e);
            tracing::debug!(%error, "the component returned no token");
            error
        })?;
        tracing::debug!(
            expires_at = token.expires_at,
            refresh_after = token.refresh_after,
            "token received"
        );
        if let Some(held) = self.held_if_same(&token) {
            return Ok(held);
        }
        let token = checked(token)?;
        self.keep(token.clone());
        Ok(token)
    }

    /// The token held, when the component's answer is that token with the
    /// same windows (a component cache hit) and this process may still
    /// serve it: it is served as it is, with no copy, no new reference and
    /// no change the other threads must see. Past its serving time the
    /// answer goes through [`Shared::keep`], which picks the next one.
    fn held_if_same(&self, answer: &wit::AccessToken) -> Option<AccessToken> {
        let now = self.inner.ctx.clock().now_secs();
        let held = self.held.read().unwrap_or_else(PoisonError::into_inner);
        let held = held.as_ref().filter(|held| now < held.serve_until)?;
        let held = &held.token;
        (held.token.expose() == answer.token
            && held.expires_at == answer.expires_at
            && held.refresh_after == answer.refresh_after
            && held.refresh_by == answer.refresh_by
            && held.issued_at == answer.issued_at
            && held.assertion.as_str() == answer.assertion_sha256
            && answer.token_type.eq_ignore_ascii_case("bearer"))
        .then(|| held.clone())
    }

    /// Holds `token` for every thread.
    fn keep(&self, token: AccessToken) {
        let serve_until = self
            .inner
            .settings
            .spread
            .between(token.refresh_after, token.refresh_by);
        let mut held = self.held.write().unwrap_or_else(PoisonError::into_inner);
        *held = Some(Held { token, serve_until });
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Drops the token held; with `rejected`, only when that is the token
    /// held (or none is).
    fn drop_token(&self, rejected: Option<&Secret>) -> Result<(), Error> {
        let mut instance = self.inner.lock_instance();
        let dropped = {
            let mut held = self.held.write().unwrap_or_else(PoisonError::into_inner);
            if let (Some(rejected), Some(current)) = (rejected, held.as_ref())
                && current.token.token != *rejected
            {
                tracing::debug!("the refused token was already replaced; keeping the new one");
                return Ok(());
            }
            let dropped = held.take();
            self.generation.fetch_add(1, Ordering::Release);
            dropped
        };
        if let (Some((cache, origin)), Some(dropped)) = (&self.inner.settings.token_cache, dropped)
            && let Ok(entry) = cache.entry(&self.config, origin.in_effect(self.inner.ctx.policy()))
        {
            let _lock = entry.lock(self.inner.token_cache_wait());
            if let Ok(Some(stored)) = entry.load(env_var)
                && stored.token == dropped.token.token
                && let Err(problem) = entry.remove()
            {
                tracing::warn!(%problem, "cannot remove the token from the token cache");
            }
        }
        match rejected {
            Some(rejected) => self.call(&mut instance, |client, store, me| {
                client.invalidate_rejected(store, me, rejected.expose())
            }),
            None => self.call(&mut instance, |client, store, me| {
                client.invalidate(store, me)
            }),
        }
    }

    /// The resource's `requirements`, asked of the component the first time
    /// only.
    fn requirements(&self, instance: &mut Option<Live>) -> Result<&Requirements, Error> {
        if let Some(needs) = self.needs.get() {
            return Ok(needs);
        }
        let needs = self.call(instance, |client, store, me| client.requirements(store, me))?;
        Ok(self.needs.get_or_init(|| Requirements::from(needs)))
    }
}

impl Drop for Shared {
    /// Drops the component side, if the live instance has one.
    fn drop(&mut self) {
        let mut instance = self.inner.lock_instance();
        if let Some(live) = instance.as_mut()
            && let Some(resource) = live.resources.remove(&self.id)
        {
            let dropped = self
                .inner
                .call(&mut instance, |_, store| resource.resource_drop(store));
            if let Err(error) = dropped {
                tracing::debug!(%error, "dropping a client's component side failed");
            }
        }
    }
}

/// The component's token, checked: a `Bearer` token with a valid assertion
/// fingerprint.
fn checked(token: wit::AccessToken) -> Result<AccessToken, Error> {
    if !token.token_type.eq_ignore_ascii_case("bearer") {
        return Err(Error::MalformedResponse(format!(
            "the component returned a token of type {:?}, not Bearer",
            token.token_type
        )));
    }
    let assertion = AssertionFingerprint::from_hex(&token.assertion_sha256).ok_or_else(|| {
        Error::MalformedResponse(
            "the component returned a token without a valid assertion fingerprint".into(),
        )
    })?;
    Ok(AccessToken {
        token: Secret::new(&token.token),
        token_type: "Bearer",
        expires_at: token.expires_at,
        refresh_after: token.refresh_after,
        refresh_by: token.refresh_by,
        issued_at: token.issued_at,
        assertion,
    })
}
