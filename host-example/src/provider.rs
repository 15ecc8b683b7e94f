//! The provider: the component loaded once, called from any thread.
//!
//! - Tokens are kept by the host until the component's `refresh-after`; until
//!   then [`Provider::get_token`] does not enter the component. It reads the
//!   calling thread's copy of the cache, so a cached call writes nothing that
//!   other threads use (no lock, no shared reference count) and its cost does
//!   not grow with the number of threads.
//! - After it, one caller at a time enters the component (single flight);
//!   callers that waited find the fresh token and return without a second
//!   exchange.
//! - Each process serves a token a little past `refresh-after`, by a share
//!   of the refresh interval drawn at random ([`RefreshSpread`]), so that a
//!   fleet started together does not refresh together.
//! - With a persistent token cache ([`ProviderBuilder::token_cache`]), the
//!   single flight spans processes: an advisory lock per entry around read →
//!   ask the component → write ([`crate::cache_lock`]); a process that waited
//!   finds the token another one wrote. The component gets the cached token
//!   back (`restore`), so its windows and its memory of the assertion
//!   already exchanged apply across processes.
//! - Every call runs under a memory cap and a deadline on the component's own
//!   time (epoch interruption; I/O time does not count). A trap drops the
//!   instance; the next call instantiates a fresh one.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use thread_local::ThreadLocal;
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder, UpdateDeadline};

use crate::bindings::exports::anthropic_wif::federation::provider as wit;
use crate::bindings::{Federation, FederationPre};
use crate::capabilities::{WifCtx, WifView, add_to_linker};
use crate::clock::Clock;
use crate::compile_cache;
use crate::error::Error;
use crate::policy::Policy;
use crate::requirements::Requirements;
use crate::spread::RefreshSpread;
use crate::token::{AccessToken, AssertionFingerprint, Secret};
use crate::token_cache::{Entry, PolicyOrigin, TokenCache};

/// The component built from this repository, embedded at build time.
pub const EMBEDDED_COMPONENT: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/anthropic_wif.wasm"));

/// The SHA-256 of [`EMBEDDED_COMPONENT`], lowercase hex (computed when it
/// was embedded).
pub const EMBEDDED_COMPONENT_SHA256: &str = env!("ANTHROPIC_WIF_COMPONENT_SHA256");

/// The largest component file [`ProviderBuilder::component_file`] reads
/// (64 MiB; this project's component is about 230 KiB).
pub const MAX_COMPONENT_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Default cap on the component's linear memory.
pub const DEFAULT_MEMORY_LIMIT: usize = 64 * 1024 * 1024;
/// Default limit on the component's own (non-I/O) time per call.
pub const DEFAULT_CALL_BUDGET: Duration = Duration::from_secs(5);
/// How long a process waits for another one's refresh of the same token
/// cache entry, beyond the policy's HTTP and command timeouts.
pub const TOKEN_CACHE_WAIT_MARGIN: Duration = Duration::from_secs(5);
/// A variable of this process's environment, as the `get-env` capability
/// reads it (the token cache binds entries to these values).
fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// How often the epoch advances, and so the granularity of the deadline.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Builds a [`Provider`].
pub struct ProviderBuilder {
    policy: Policy,
    clock: Option<Arc<dyn Clock>>,
    component: Option<Vec<u8>>,
    memory_limit: usize,
    call_budget: Duration,
    compile_cache: Option<PathBuf>,
    token_cache: Option<(TokenCache, PolicyOrigin)>,
    spread: RefreshSpread,
}

impl ProviderBuilder {
    /// Keeps tokens in `dir` (a private folder, created if needed), shared
    /// with every process that uses the same folder: one exchange per token
    /// across them (see [`crate::cache_lock`]). Entries are keyed on the
    /// config and the policy in effect, as `origin` says where that came
    /// from, and bound to the values of the variables the config reads
    /// (see [`crate::token_cache`]). Off by default.
    pub fn token_cache(mut self, dir: PathBuf, origin: PolicyOrigin) -> Self {
        self.token_cache = Some((TokenCache::new(dir), origin));
        self
    }

    /// Where in the refresh interval this process asks for a new token
    /// (default: [`RefreshSpread::random`]; [`RefreshSpread::none`] asks
    /// exactly at `refresh-after`).
    pub fn refresh_spread(mut self, spread: RefreshSpread) -> Self {
        self.spread = spread;
        self
    }

    /// Keeps the compiled component in `dir` (a private folder, created if
    /// needed) and loads it from there on later starts.
    pub fn compile_cache(mut self, dir: PathBuf) -> Self {
        self.compile_cache = Some(dir);
        self
    }

    /// Grants what `policy` grants (the default grants nothing).
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Uses `clock` as the component's wall clock and for the host cache.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Loads this component instead of the embedded one.
    pub fn component_bytes(mut self, bytes: Vec<u8>) -> Self {
        self.component = Some(bytes);
        self
    }

    /// Loads the component from a file (a regular file of at most
    /// [`MAX_COMPONENT_FILE_BYTES`]) instead of the embedded one.
    pub fn component_file(self, path: &Path) -> Result<Self, Error> {
        let bytes = crate::local_file::read_bytes(path, MAX_COMPONENT_FILE_BYTES)
            .map_err(|e| Error::Load(format!("reading {}: {e}", path.display())))?;
        Ok(self.component_bytes(bytes))
    }

    /// Caps the component's memory (default 64 MiB).
    pub fn memory_limit(mut self, bytes: usize) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// Limits the component's own time per call, I/O excluded (default 5 s).
    pub fn call_budget(mut self, budget: Duration) -> Self {
        self.call_budget = budget;
        self
    }

    /// Compiles and links the component.
    pub fn build(self) -> Result<Provider, Error> {
        let load = |e: wasmtime::Error| Error::Load(format!("{e:#}"));
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        let engine = Engine::new(&config).map_err(load)?;
        let bytes = self.component.as_deref().unwrap_or(EMBEDDED_COMPONENT);
        let component = match &self.compile_cache {
            Some(dir) => compile_cache::load_or_compile(&engine, bytes, dir),
            None => Component::new(&engine, bytes),
        }
        .map_err(load)?;
        let mut linker = Linker::<StoreState>::new(&engine);
        add_to_linker(&mut linker, |state: &mut StoreState| WifView {
            ctx: &state.ctx,
            io_time: &mut state.io_time,
        })
        .map_err(load)?;
        let pre =
            FederationPre::new(linker.instantiate_pre(&component).map_err(load)?).map_err(load)?;
        let mut ctx = WifCtx::builder().policy(self.policy);
        if let Some(clock) = self.clock {
            ctx = ctx.clock(clock);
        }
        start_epoch_ticker(&engine);
        Ok(Provider::assemble(
            engine,
            pre,
            ctx.build(),
            Settings {
                memory_limit: self.memory_limit,
                call_budget: self.call_budget,
                token_cache: self.token_cache,
                spread: self.spread,
            },
        ))
    }
}

/// The component, loaded and ready to mint tokens. `Send + Sync`: share it
/// with an `Arc`.
pub struct Provider {
    engine: Engine,
    pre: FederationPre<StoreState>,
    ctx: Arc<WifCtx>,
    settings: Settings,
    instance: Mutex<Option<Live>>,
    tokens: RwLock<TokenMap>,
    /// Bumped after every change to `tokens`.
    generation: AtomicU64,
    /// Each thread's copy of `tokens`.
    local: ThreadLocal<RefCell<LocalTokens>>,
}

/// What a provider keeps from its builder, and passes on to
/// [`Provider::with_policy`].
#[derive(Clone)]
struct Settings {
    memory_limit: usize,
    call_budget: Duration,
    token_cache: Option<(TokenCache, PolicyOrigin)>,
    spread: RefreshSpread,
}

/// One thread's copy of the host cache, as of `generation`. Its tokens have
/// their own reference counts, so serving them touches no memory another
/// thread writes; aligned so that two threads' copies never share a cache
/// line.
#[derive(Default)]
#[repr(align(128))]
struct LocalTokens {
    generation: u64,
    tokens: TokenMap,
}

/// Tokens by the exact config text they were minted for. A fast hash: the
/// key is hashed on every cached call.
type TokenMap = HashMap<Box<str>, AccessToken, rustc_hash::FxBuildHasher>;

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provider")
            .field("memory_limit", &self.settings.memory_limit)
            .field("call_budget", &self.settings.call_budget)
            .field("token_cache", &self.settings.token_cache)
            .finish_non_exhaustive()
    }
}

/// A live instance and its store.
struct Live {
    store: Store<StoreState>,
    bindings: Federation,
}

/// The data of a store.
struct StoreState {
    ctx: Arc<WifCtx>,
    limits: StoreLimits,
    io_time: Duration,
    call_started: Instant,
    call_budget: Duration,
}

impl Provider {
    /// A builder with the embedded component, a policy that grants nothing
    /// and the system clock.
    pub fn builder() -> ProviderBuilder {
        ProviderBuilder {
            policy: Policy::default(),
            clock: None,
            component: None,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            call_budget: DEFAULT_CALL_BUDGET,
            compile_cache: None,
            token_cache: None,
            spread: RefreshSpread::random(),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        self.ctx.policy()
    }

    /// A provider of the same compiled component under another policy, with
    /// its own instance and empty in-memory caches (no compilation); the
    /// same token cache folder, if any.
    pub fn with_policy(&self, policy: Policy) -> Provider {
        let ctx = WifCtx::builder()
            .policy(policy)
            .clock(self.ctx.clock().clone());
        Provider::assemble(
            self.engine.clone(),
            self.pre.clone(),
            ctx.build(),
            self.settings.clone(),
        )
    }

    /// A provider with no instance yet and empty caches.
    fn assemble(
        engine: Engine,
        pre: FederationPre<StoreState>,
        ctx: WifCtx,
        settings: Settings,
    ) -> Provider {
        Provider {
            engine,
            pre,
            ctx: Arc::new(ctx),
            settings,
            instance: Mutex::new(None),
            tokens: RwLock::new(TokenMap::default()),
            generation: AtomicU64::new(0),
            local: ThreadLocal::new(),
        }
    }

    /// The host cache's token for the `auth` block `config_json` when it
    /// may be served now, without asking the component or reading the
    /// token cache (so without any I/O: for callers on an async runtime,
    /// which run [`Provider::get_token`] off it when this is `None`).
    pub fn cached_token(&self, config_json: &str) -> Option<AccessToken> {
        self.cached(config_json)
    }

    /// A valid access token for the `auth` block `config_json`.
    pub fn get_token(&self, config_json: &str) -> Result<AccessToken, Error> {
        if let Some(token) = self.cached(config_json) {
            return Ok(token);
        }
        let mut instance = self.instance.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(token) = self.cached(config_json) {
            return Ok(token);
        }
        tracing::debug!("no servable token in the host cache; asking the component");
        match &self.settings.token_cache {
            Some((cache, origin)) => {
                self.through_token_cache(&mut instance, cache, *origin, config_json)
            }
            None => self.ask_component(&mut instance, config_json),
        }
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
        config_json: &str,
    ) -> Result<AccessToken, Error> {
        let entry = match cache.entry(config_json, origin.in_effect(self.ctx.policy())) {
            Ok(entry) => entry,
            Err(problem) => {
                tracing::warn!(%problem, "token cache not used; asking the component");
                return self.ask_component(instance, config_json);
            }
        };
        let _lock = match entry.lock(self.token_cache_wait()) {
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
                return self.ask_component(instance, config_json);
            }
        };
        match entry.load(env_var) {
            Ok(Some(stored)) => {
                let now = self.ctx.clock().now().as_secs();
                if self.settings.spread.serves(&stored, now) {
                    tracing::debug!("token served from the token cache");
                    self.keep(config_json, stored.clone());
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
                self.call(instance, |b, s| b.call_restore(s, config_json, &token))?;
            }
            Ok(None) => {}
            Err(problem) => {
                tracing::warn!(%problem, "token cache entry not read; asking the component");
            }
        }
        let token = self.ask_component(instance, config_json)?;
        self.save(instance, &entry, config_json, &token);
        Ok(token)
    }

    /// Writes `token` to the token cache, bound to the values of the
    /// variables the config reads. A token outside RFC 6750's alphabet is
    /// never cached (the CLI never prints one either).
    fn save(
        &self,
        instance: &mut Option<Live>,
        entry: &Entry,
        config_json: &str,
        token: &AccessToken,
    ) {
        if !token.is_b64token() {
            tracing::warn!("the access token is not an RFC 6750 bearer token; not cached");
            return;
        }
        let variables = match self.call(instance, |b, s| b.call_requirements(s, config_json)) {
            Ok(Ok(needs)) => needs.env,
            Ok(Err(_)) | Err(_) => {
                tracing::warn!("the config's variables are unknown; token not cached");
                return;
            }
        };
        if let Err(problem) = entry.store(&variables, env_var, token) {
            tracing::warn!(%problem, "cannot save the token in the token cache");
        }
    }

    /// How long to wait for another process's refresh: what it may spend
    /// reading the identity token and exchanging it, plus a margin.
    fn token_cache_wait(&self) -> Duration {
        let policy = self.ctx.policy();
        policy.http_timeout.max(policy.command_timeout)
            + policy.http_timeout
            + TOKEN_CACHE_WAIT_MARGIN
    }

    /// Asks the component, bypassing the host cache (the component's own
    /// cache still applies: it exchanges only when its refresh windows say
    /// so); the answer refreshes the host cache. For benchmarks and
    /// diagnostics; applications call [`Provider::get_token`].
    pub fn get_token_uncached(&self, config_json: &str) -> Result<AccessToken, Error> {
        let mut instance = self.instance.lock().unwrap_or_else(PoisonError::into_inner);
        self.ask_component(&mut instance, config_json)
    }

    /// Calls the component's `get-token`, checks the answer and keeps it in
    /// the host cache.
    fn ask_component(
        &self,
        instance: &mut Option<Live>,
        config_json: &str,
    ) -> Result<AccessToken, Error> {
        let result = self.call(instance, |b, s| b.call_get_token(s, config_json))?;
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
        if !token.token_type.eq_ignore_ascii_case("bearer") {
            return Err(Error::MalformedResponse(format!(
                "the component returned a token of type {:?}, not Bearer",
                token.token_type
            )));
        }
        let assertion =
            AssertionFingerprint::from_hex(&token.assertion_sha256).ok_or_else(|| {
                Error::MalformedResponse(
                    "the component returned a token without a valid assertion fingerprint".into(),
                )
            })?;
        let token = AccessToken {
            token: Secret::new(&token.token),
            token_type: "Bearer",
            expires_at: token.expires_at,
            refresh_after: token.refresh_after,
            refresh_by: token.refresh_by,
            issued_at: token.issued_at,
            assertion,
        };
        self.keep(config_json, token.clone());
        Ok(token)
    }

    /// Puts `token` in the host cache.
    fn keep(&self, config_json: &str, token: AccessToken) {
        let mut tokens = self.tokens.write().unwrap_or_else(PoisonError::into_inner);
        tokens.insert(config_json.into(), token);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Drops the token cached for `config_json`, in the host, in the token
    /// cache (when it still holds that token) and in the component; the
    /// next [`Provider::get_token`] exchanges. Call it when the API answers
    /// 401.
    pub fn invalidate(&self, config_json: &str) -> Result<(), Error> {
        self.drop_token(config_json, None)
    }

    /// [`Provider::invalidate`] for the token the API refused: when another
    /// caller has already replaced it, nothing is dropped, so that many
    /// requests refused with one token lead to one new exchange, not one
    /// each (each would spend the identity token again).
    pub fn invalidate_rejected(&self, config_json: &str, rejected: &Secret) -> Result<(), Error> {
        self.drop_token(config_json, Some(rejected))
    }

    /// Drops the token held for `config_json`; with `rejected`, only when
    /// that is the token held (or none is).
    fn drop_token(&self, config_json: &str, rejected: Option<&Secret>) -> Result<(), Error> {
        let mut instance = self.instance.lock().unwrap_or_else(PoisonError::into_inner);
        let dropped = {
            let mut tokens = self.tokens.write().unwrap_or_else(PoisonError::into_inner);
            if let (Some(rejected), Some(held)) = (rejected, tokens.get(config_json))
                && held.token != *rejected
            {
                tracing::debug!("the refused token was already replaced; keeping the new one");
                return Ok(());
            }
            let dropped = tokens.remove(config_json);
            self.generation.fetch_add(1, Ordering::Release);
            dropped
        };
        if let (Some((cache, origin)), Some(dropped)) = (&self.settings.token_cache, dropped)
            && let Ok(entry) = cache.entry(config_json, origin.in_effect(self.ctx.policy()))
        {
            let _lock = entry.lock(self.token_cache_wait());
            if let Ok(Some(stored)) = entry.load(env_var)
                && stored.token == dropped.token
                && let Err(problem) = entry.remove()
            {
                tracing::warn!(%problem, "cannot remove the token from the token cache");
            }
        }
        self.call(&mut instance, |b, s| b.call_invalidate(s, config_json))
    }

    /// Validates `config_json` and lists what it needs from the host.
    pub fn requirements(&self, config_json: &str) -> Result<Requirements, Error> {
        let mut instance = self.instance.lock().unwrap_or_else(PoisonError::into_inner);
        let needs = self.call(&mut instance, |b, s| b.call_requirements(s, config_json))?;
        let needs = needs.map_err(Error::from)?;
        let urls = |urls: Vec<
            crate::bindings::exports::anthropic_wif::federation::provider::UrlRequirement,
        >| { urls.into_iter().map(|u| (u.template, u.origin)).collect() };
        Ok(Requirements {
            env: needs.env,
            optional_env: needs.optional_env,
            files: needs.files,
            origins: needs.origins,
            urls: urls(needs.urls),
            when_set_urls: urls(needs.when_set_urls),
            commands: needs.commands,
        })
    }

    /// The cached token for `config_json`, while the component said it may
    /// be served: from this thread's copy of the cache when that copy is
    /// current, else from the shared cache (and then copied, with a
    /// reference count of its own, for this thread's next calls).
    fn cached(&self, config_json: &str) -> Option<AccessToken> {
        let now = self.ctx.clock().now().as_secs();
        // Read before the shared cache: a copy made from it is then tagged
        // with a generation no newer than its content, and the next change
        // discards it.
        let generation = self.generation.load(Ordering::Acquire);
        let mut local = self.local.get_or_default().borrow_mut();
        if local.generation != generation {
            local.tokens.clear();
            local.generation = generation;
        }
        let spread = self.settings.spread;
        if let Some(token) = local.tokens.get(config_json) {
            return spread.serves(token, now).then(|| token.clone());
        }
        let shared = self
            .tokens
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(config_json)
            .filter(|t| spread.serves(t, now))?
            .clone();
        let token = AccessToken {
            token: Secret::new(shared.token.expose()),
            ..shared
        };
        local.tokens.insert(config_json.into(), token.clone());
        Some(token)
    }

    /// Calls into the component, instantiating it first if needed; a trap
    /// drops the instance.
    fn call<R>(
        &self,
        slot: &mut Option<Live>,
        f: impl FnOnce(&wit::Guest, &mut Store<StoreState>) -> wasmtime::Result<R>,
    ) -> Result<R, Error> {
        let live = match slot {
            Some(live) => live,
            None => slot.insert(self.instantiate()?),
        };
        let state = live.store.data_mut();
        state.io_time = Duration::ZERO;
        state.call_started = Instant::now();
        live.store.set_epoch_deadline(1);
        let result = f(
            live.bindings.anthropic_wif_federation_provider(),
            &mut live.store,
        );
        result.map_err(|trap| {
            *slot = None;
            let error = Error::Component(describe_trap(&trap));
            tracing::warn!(%error, "dropping the component instance; the next call instantiates a fresh one");
            error
        })
    }

    fn instantiate(&self) -> Result<Live, Error> {
        let state = StoreState {
            ctx: self.ctx.clone(),
            limits: StoreLimitsBuilder::new()
                .memory_size(self.settings.memory_limit)
                .trap_on_grow_failure(true)
                .build(),
            io_time: Duration::ZERO,
            call_started: Instant::now(),
            call_budget: self.settings.call_budget,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        store.epoch_deadline_callback(|ctx| {
            let state = ctx.data();
            if state.call_started.elapsed() > state.call_budget + state.io_time {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Continue(1))
            }
        });
        store.set_epoch_deadline(1);
        // The call's time budget starts with its fresh instance, so a
        // machine busy enough to stretch instantiation past it is
        // interrupted there too: that is the budget, not a broken component.
        let bindings = self.pre.instantiate(&mut store).map_err(|e| {
            if e.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt) {
                Error::Component(describe_trap(&e))
            } else {
                Error::Load(format!("instantiating the component: {e:#}"))
            }
        })?;
        Ok(Live { store, bindings })
    }
}

/// A trap as text: its code when it has one, else the root cause (a memory
/// limit, say) without wasmtime's backtrace or the component's data.
fn describe_trap(error: &wasmtime::Error) -> String {
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => "it ran past its time budget and was interrupted".into(),
        Some(trap) => format!("it trapped: {trap}"),
        None => format!("it failed: {}", error.root_cause()),
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until the engine is
/// dropped.
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::spawn(move || {
        while let Some(engine) = weak.upgrade() {
            engine.increment_epoch();
            drop(engine);
            std::thread::sleep(EPOCH_TICK);
        }
    });
}
