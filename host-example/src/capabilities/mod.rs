//! The four capabilities and the wall clock, as the host grants them.
//!
//! Structured after wasmtime's `wasi-keyvalue` and `wasi-config`: a context
//! built once ([`WifCtx`], [`WifCtxBuilder`]), a view borrowed per call
//! ([`WifView`]) that implements the generated `Host` traits, and one
//! [`add_to_linker`].

mod command;
mod files;
mod http;
mod redact;

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{HasData, Linker};

use crate::bindings::anthropic_wif::federation::capabilities::{
    self as caps, CapError, CommandOutput, HttpRequest, HttpResponse,
};
use crate::bindings::wasi::clocks::wall_clock::{self, Datetime};
use crate::clock::{Clock, SystemClock};
use crate::net::HttpClient;
use crate::policy::Policy;

/// What the host grants the component: a policy, the I/O that enforces it
/// and a wall clock. Shared by every instance and every thread.
pub struct WifCtx {
    policy: Policy,
    clock: Arc<dyn Clock>,
    http: crate::net::HttpClient,
}

impl WifCtx {
    /// A builder, starting from a policy that grants nothing and the
    /// system clock.
    pub fn builder() -> WifCtxBuilder {
        WifCtxBuilder::default()
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The clock the component reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }
}

/// Builds a [`WifCtx`].
#[derive(Default)]
pub struct WifCtxBuilder {
    policy: Policy,
    clock: Option<Arc<dyn Clock>>,
}

impl WifCtxBuilder {
    /// Grants what `policy` grants.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Uses `clock` instead of the system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The context.
    pub fn build(self) -> WifCtx {
        let http = HttpClient::for_policy(&self.policy);
        WifCtx {
            policy: self.policy,
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            http,
        }
    }
}

/// A borrowed view of the context, for one store, implementing the
/// generated host traits. Time spent in I/O is added to `io_time`, so the
/// caller's deadline can count the component's own time only.
pub struct WifView<'a> {
    /// The shared context.
    pub ctx: &'a WifCtx,
    /// Accumulates the time spent in capability calls.
    pub io_time: &'a mut Duration,
}

impl WifView<'_> {
    fn timed<R>(
        &mut self,
        capability: &str,
        io: impl FnOnce(&WifCtx) -> Result<R, CapError>,
    ) -> Result<R, CapError> {
        let start = Instant::now();
        let result = io(self.ctx);
        *self.io_time += start.elapsed();
        if let Err(error) = &result {
            tracing::debug!(capability, ?error, "capability call refused or failed");
        }
        result
    }
}

impl caps::Host for WifView<'_> {
    fn read_file(&mut self, path: String) -> Result<Vec<u8>, CapError> {
        self.timed("read-file", |ctx| files::read(&ctx.policy, &path))
    }

    fn get_env(&mut self, name: String) -> Result<Option<String>, CapError> {
        if !self.ctx.policy.allows_env(&name) {
            return Err(CapError::Denied(format!(
                "environment variable {} is not granted",
                printable(&name)
            )));
        }
        match std::env::var(&name) {
            Ok(value) => Ok(Some(value)),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(CapError::Failed(format!(
                "environment variable {name} is not valid UTF-8"
            ))),
        }
    }

    fn http_fetch(&mut self, request: HttpRequest) -> Result<HttpResponse, CapError> {
        self.timed("http-fetch", |ctx| {
            http::fetch(&ctx.policy, &ctx.http, request)
        })
    }

    fn run_command(
        &mut self,
        argv: Vec<String>,
        timeout_ms: u32,
    ) -> Result<CommandOutput, CapError> {
        self.timed("run-command", |ctx| {
            command::run(
                &ctx.policy,
                &argv,
                Duration::from_millis(u64::from(timeout_ms)),
            )
        })
    }
}

impl wall_clock::Host for WifView<'_> {
    fn now(&mut self) -> Datetime {
        let now = self.ctx.clock.now();
        Datetime {
            seconds: now.as_secs(),
            nanoseconds: now.subsec_nanos(),
        }
    }

    fn resolution(&mut self) -> Datetime {
        let resolution = self.ctx.clock.resolution();
        Datetime {
            seconds: resolution.as_secs(),
            nanoseconds: resolution.subsec_nanos(),
        }
    }
}

/// Marks [`WifView`] as the data the generated `add_to_linker` functions
/// hand to the host traits.
struct HasWif;

impl HasData for HasWif {
    type Data<'a> = WifView<'a>;
}

/// Adds the capabilities interface and `wasi:clocks/wall-clock` to
/// `linker`; `view` borrows the [`WifView`] out of the store's data.
pub fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> WifView<'_>,
) -> wasmtime::Result<()> {
    caps::add_to_linker::<T, HasWif>(linker, view)?;
    wall_clock::add_to_linker::<T, HasWif>(linker, view)?;
    Ok(())
}

/// A name from the component, safe to put in a message: control characters
/// escaped, bounded in length.
pub(crate) fn printable(text: &str) -> String {
    let escaped: String = text
        .chars()
        .flat_map(char::escape_debug)
        .take(200)
        .collect();
    format!("`{escaped}`")
}
