//! The provider: the component loaded once, called from any thread.
//!
//! - [`Provider::client`] prepares a [`Client`] for one config: hold it and
//!   call [`Client::token`], whose cached path is a thread-local read after
//!   one atomic load (see [`crate::client`]). [`Provider::get_token`] and
//!   the other functions that take a config text are a thin layer over the
//!   client the provider keeps for each config text.
//! - Tokens are kept by the host until the component's `refresh-after`;
//!   until then no call enters the component. After it, one caller at a
//!   time enters the component (single flight); callers that waited find
//!   the fresh token and return without a second exchange.
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
//! - The engine runs without the component model's async support (nothing
//!   here needs it, and it costs every call), and instances come from a
//!   pooling allocator with copy-on-write memory images
//!   ([`ProviderBuilder::pooling`]); an instance looks each export up when
//!   it first calls it (`exports.rs`), not all of them at
//!   instantiation. The figures are in `docs/BENCHMARKS.md`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use thread_local::ThreadLocal;
use wasmtime::component::{Component, Linker, ResourceAny};
use wasmtime::{
    Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits,
    StoreLimitsBuilder, UpdateDeadline,
};

use crate::bindings::FederationPre;
use crate::capabilities::{WifCtx, WifView, add_to_linker};
use crate::client::Client;
use crate::clock::{Clock, CoarseInstant};
use crate::compile_cache;
use crate::error::Error;
use crate::exports::{ExportIndices, Exports};
use crate::policy::Policy;
use crate::requirements::Requirements;
use crate::spread::RefreshSpread;
use crate::token::{AccessToken, Secret};
use crate::token_cache::{PolicyOrigin, TokenCache};

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
/// Instances one engine's pool holds at once (a provider holds one; every
/// [`Provider::with_policy`] shares the engine). Past this, instantiation
/// fails with an error that names the pool.
pub const DEFAULT_POOLED_INSTANCES: u32 = 64;
/// How much of a pooled slot's memory (and table) stays mapped between
/// instances.
const KEEP_RESIDENT_BYTES: usize = 2 * 1024 * 1024;
/// A variable of this process's environment, as the `get-env` capability
/// reads it (the token cache binds entries to these values).
pub(crate) fn env_var(name: &str) -> Option<String> {
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
    pooled_instances: Option<u32>,
}

impl ProviderBuilder {
    /// Takes instances from a pool of `instances` slots, made once with the
    /// engine, with copy-on-write memory images (the default, with
    /// [`DEFAULT_POOLED_INSTANCES`]); `None` allocates each instance on
    /// demand. A pool the system refuses (an address-space limit, say)
    /// falls back to allocation on demand.
    pub fn pooling(mut self, instances: Option<u32>) -> Self {
        self.pooled_instances = instances;
        self
    }

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
        let engine = engine(self.pooled_instances, self.memory_limit).map_err(load)?;
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
        // `FederationPre::new` checks the types of the component's exports
        // once; instances then look their functions up as they call them.
        let pre =
            FederationPre::new(linker.instantiate_pre(&component).map_err(load)?).map_err(load)?;
        let exports = ExportIndices::new(&component).map_err(load)?;
        let mut ctx = WifCtx::builder().policy(self.policy);
        if let Some(clock) = self.clock {
            ctx = ctx.clock(clock);
        }
        start_epoch_ticker(&engine);
        Ok(Provider::assemble(
            engine,
            pre,
            exports,
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

/// The engine: epoch interruption on, the component model's async support
/// off (this build of wasmtime does not even compile it in: no
/// `component-model-async` feature; a build that does would pay for it on
/// every call), and instances from a pool of `pooled_instances` slots when
/// the system grants the pool's address space (else on demand).
fn engine(pooled_instances: Option<u32>, memory_limit: usize) -> wasmtime::Result<Engine> {
    let mut config = wasmtime::Config::new();
    config.epoch_interruption(true);
    config.concurrency_support(false);
    if let Some(instances) = pooled_instances {
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(instances)
            .total_core_instances(instances.saturating_mul(4))
            .total_memories(instances)
            .total_tables(instances.saturating_mul(2))
            .max_memory_size(memory_limit)
            // A reused slot keeps its first pages mapped and is reset with
            // memset, so a fresh instance's first call does not fault its
            // stack and heap in page by page.
            .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
            .table_keep_resident(KEEP_RESIDENT_BYTES);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        match Engine::new(&config) {
            Ok(engine) => return Ok(engine),
            Err(error) => {
                tracing::debug!(
                    error = %format!("{error:#}"),
                    "the instance pool was refused; allocating instances on demand"
                );
                config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
            }
        }
    }
    Engine::new(&config)
}

/// The component, loaded and ready to mint tokens. `Send + Sync`: share it
/// with an `Arc`.
pub struct Provider {
    inner: Arc<Inner>,
    /// The client kept for each config text.
    clients: RwLock<ClientMap>,
    /// Each thread's copies of `clients`' entries: a call finds its client
    /// without a lock or a shared reference count.
    local: ThreadLocal<RefCell<ClientMap>>,
}

/// What the provider and its clients share: the compiled component, the
/// live instance and the settings.
pub(crate) struct Inner {
    engine: Engine,
    pre: FederationPre<StoreState>,
    exports: ExportIndices,
    pub(crate) ctx: Arc<WifCtx>,
    pub(crate) settings: Settings,
    instance: Mutex<Option<Live>>,
    /// The id of the next client made.
    next_client: AtomicU64,
}

/// What a provider keeps from its builder, and passes on to
/// [`Provider::with_policy`].
#[derive(Clone)]
pub(crate) struct Settings {
    memory_limit: usize,
    call_budget: Duration,
    pub(crate) token_cache: Option<(TokenCache, PolicyOrigin)>,
    pub(crate) spread: RefreshSpread,
}

/// Clients by the exact config text they were made from. A fast hash: the
/// key is hashed on every [`Provider::get_token`].
type ClientMap = HashMap<Box<str>, Client, rustc_hash::FxBuildHasher>;

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let settings = &self.inner.settings;
        f.debug_struct("Provider")
            .field("memory_limit", &settings.memory_limit)
            .field("call_budget", &settings.call_budget)
            .field("token_cache", &settings.token_cache)
            .finish_non_exhaustive()
    }
}

/// A live instance, its store and the clients made in it.
pub(crate) struct Live {
    store: Store<StoreState>,
    exports: Exports,
    /// Each client's resource in this instance, by client id.
    pub(crate) resources: HashMap<u64, ResourceAny>,
}

/// The data of a store.
pub(crate) struct StoreState {
    ctx: Arc<WifCtx>,
    limits: StoreLimits,
    io_time: Duration,
    call_started: CoarseInstant,
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
            pooled_instances: Some(DEFAULT_POOLED_INSTANCES),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        self.inner.ctx.policy()
    }

    /// A provider of the same compiled component under another policy, with
    /// its own instance and empty in-memory caches (no compilation); the
    /// same token cache folder, if any.
    pub fn with_policy(&self, policy: Policy) -> Provider {
        let inner = &self.inner;
        let ctx = WifCtx::builder()
            .policy(policy)
            .clock(inner.ctx.clock().clone());
        Provider::assemble(
            inner.engine.clone(),
            inner.pre.clone(),
            inner.exports,
            ctx.build(),
            inner.settings.clone(),
        )
    }

    /// A provider with no instance yet and empty caches.
    fn assemble(
        engine: Engine,
        pre: FederationPre<StoreState>,
        exports: ExportIndices,
        ctx: WifCtx,
        settings: Settings,
    ) -> Provider {
        Provider {
            inner: Arc::new(Inner {
                engine,
                pre,
                exports,
                ctx: Arc::new(ctx),
                settings,
                instance: Mutex::new(None),
                next_client: AtomicU64::new(0),
            }),
            clients: RwLock::new(ClientMap::default()),
            local: ThreadLocal::new(),
        }
    }

    /// Instantiates the component now, if it has no live instance yet (the
    /// first call would otherwise): a host that starts serving at once
    /// calls it at start-up.
    pub fn warm_up(&self) -> Result<(), Error> {
        let mut instance = self.inner.lock_instance();
        if instance.is_none() {
            *instance = Some(self.inner.instantiate()?);
        }
        Ok(())
    }

    /// A prepared handle on the `auth` block `config_json`, validated now:
    /// an invalid config is an [`Error::InvalidConfig`]. Hold it and call
    /// [`Client::token`]; every call with the same text returns a clone of
    /// the same client.
    pub fn client(&self, config_json: &str) -> Result<Client, Error> {
        if let Some(client) = self
            .clients
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(config_json)
        {
            return Ok(client.clone());
        }
        let id = self.inner.next_client.fetch_add(1, Ordering::Relaxed);
        let client = Client::unprepared(id, config_json, self.inner.clone());
        client.prepare()?;
        let mut clients = self.clients.write().unwrap_or_else(PoisonError::into_inner);
        Ok(clients.entry(config_json.into()).or_insert(client).clone())
    }

    /// The client kept for `config_json`, from this thread's copies.
    fn with_client<R>(
        &self,
        config_json: &str,
        f: impl FnOnce(&Client) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let local = self.local.get_or_default();
        if let Some(client) = local.borrow().get(config_json) {
            return f(client);
        }
        let client = self.client(config_json)?;
        local
            .borrow_mut()
            .insert(config_json.into(), client.clone());
        f(&client)
    }

    /// [`Client::cached_token`] of the client kept for `config_json`; `None`
    /// too when no client is kept for it yet (no I/O, no component call:
    /// for callers on an async runtime, which run [`Provider::get_token`]
    /// off it when this is `None`).
    pub fn cached_token(&self, config_json: &str) -> Option<AccessToken> {
        let local = self.local.get_or_default();
        if let Some(client) = local.borrow().get(config_json) {
            return client.cached_token();
        }
        let client = self
            .clients
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(config_json)?
            .clone();
        local
            .borrow_mut()
            .insert(config_json.into(), client.clone());
        client.cached_token()
    }

    /// A valid access token for the `auth` block `config_json`: the
    /// [`Client::token`] of the client kept for that text.
    pub fn get_token(&self, config_json: &str) -> Result<AccessToken, Error> {
        self.with_client(config_json, Client::token)
    }

    /// [`Client::token_uncached`] of the client kept for `config_json`. For
    /// benchmarks and diagnostics; applications call
    /// [`Provider::get_token`].
    pub fn get_token_uncached(&self, config_json: &str) -> Result<AccessToken, Error> {
        self.with_client(config_json, Client::token_uncached)
    }

    /// [`Client::invalidate`] of the client kept for `config_json`. An
    /// invalid config has nothing cached: nothing happens.
    pub fn invalidate(&self, config_json: &str) -> Result<(), Error> {
        ignore_invalid(self.with_client(config_json, Client::invalidate))
    }

    /// [`Client::invalidate_rejected`] of the client kept for
    /// `config_json`. An invalid config has nothing cached: nothing
    /// happens.
    pub fn invalidate_rejected(&self, config_json: &str, rejected: &Secret) -> Result<(), Error> {
        ignore_invalid(self.with_client(config_json, |c| c.invalidate_rejected(rejected)))
    }

    /// Validates `config_json` and lists what it needs from the host.
    pub fn requirements(&self, config_json: &str) -> Result<Requirements, Error> {
        self.with_client(config_json, Client::requirements)
    }

    /// [`Client::identity_token`] of the client kept for `config_json`.
    pub fn identity_token(&self, config_json: &str) -> Result<Secret, Error> {
        self.with_client(config_json, Client::identity_token)
    }
}

/// `Ok` for an invalid config, which has nothing to drop.
fn ignore_invalid(result: Result<(), Error>) -> Result<(), Error> {
    match result {
        Err(Error::InvalidConfig { .. }) => Ok(()),
        other => other,
    }
}

impl Inner {
    /// The live instance (or none yet), locked: one caller at a time enters
    /// the component.
    pub(crate) fn lock_instance(&self) -> MutexGuard<'_, Option<Live>> {
        self.instance.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long to wait for another process's refresh: what it may spend
    /// reading the identity token and exchanging it, plus a margin.
    pub(crate) fn token_cache_wait(&self) -> Duration {
        let policy = self.ctx.policy();
        policy.http_timeout.max(policy.command_timeout)
            + policy.http_timeout
            + TOKEN_CACHE_WAIT_MARGIN
    }

    /// Calls into the component, instantiating it first if needed; a trap
    /// drops the instance.
    pub(crate) fn call<R>(
        &self,
        slot: &mut Option<Live>,
        f: impl FnOnce(&Exports, &mut Store<StoreState>) -> wasmtime::Result<R>,
    ) -> Result<R, Error> {
        let live = match slot {
            Some(live) => live,
            None => slot.insert(self.instantiate()?),
        };
        let state = live.store.data_mut();
        state.io_time = Duration::ZERO;
        state.call_started = CoarseInstant::now();
        live.store.set_epoch_deadline(1);
        f(&live.exports, &mut live.store).map_err(|trap| {
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
            call_started: CoarseInstant::now(),
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
        let instance = self
            .pre
            .instance_pre()
            .instantiate(&mut store)
            .map_err(|e| {
                if e.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt) {
                    Error::Component(describe_trap(&e))
                } else {
                    Error::Load(format!("instantiating the component: {e:#}"))
                }
            })?;
        Ok(Live {
            store,
            exports: Exports::new(instance, self.exports),
            resources: HashMap::new(),
        })
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
