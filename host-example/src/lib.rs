//! The wasmtime host of the `anthropic-wif` component.
//!
//! The component owns the logic of Workload Identity Federation; this crate
//! owns every byte of I/O. It loads the component (the one built from this
//! repository is embedded), grants it files, variables, origins and commands
//! under a deny-by-default [`Policy`], hardens each capability (no redirects,
//! capped bodies and outputs, timeouts, no shell), runs it under a memory cap
//! and a deadline, and caches tokens so that the hot path never enters
//! WebAssembly.
//!
//! ```no_run
//! use anthropic_wif_host::{Policy, Provider};
//!
//! let policy = Policy::from_toml(r#"
//!     [files]
//!     allow = ["/var/run/secrets/anthropic.com/token"]
//!     [http]
//!     allow_origins = ["https://api.anthropic.com"]
//! "#)?;
//! let provider = Provider::builder().policy(policy).build()?;
//! let config = r#"{"type": "workload_identity_federation",
//!     "workload_identity_federation": {
//!         "federation_rule_id": "fdrl_01", "organization_id": "00000000-0000-0000-0000-000000000000",
//!         "identity_token": {"file": "/var/run/secrets/anthropic.com/token"}}}"#;
//! let client = provider.client(config)?; // validated once; hold it
//! let token = client.token()?;           // cached: no lock, no hash
//! println!("Authorization: Bearer {}", token.token.expose());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Unix only (Linux, macOS): the private cache folders, the command source
//! and the gateway are built on `openat`, process groups and `poll`.

#![deny(unsafe_code)]

#[cfg(not(unix))]
compile_error!(
    "anthropic-wif-host supports Unix (Linux, macOS) only: its private cache folders, \
     command source and gateway are built on openat, process groups and poll"
);

mod bindings;
pub mod cache_lock;
pub mod capabilities;
pub mod client;
pub mod clock;
mod compile_cache;
pub mod config_file;
pub mod error;
mod exports;
pub mod local_file;
pub mod local_host;
pub mod net;
pub mod origin;
pub mod policy;
pub mod private_dir;
pub mod provider;
pub mod requirements;
pub mod spread;
pub mod token;
pub mod token_cache;

pub use capabilities::{WifCtx, WifCtxBuilder, WifView, add_to_linker};
pub use client::Client;
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, Rejection, SourceKind};
pub use policy::{Policy, PolicyError};
pub use provider::{EMBEDDED_COMPONENT, EMBEDDED_COMPONENT_SHA256, Provider, ProviderBuilder};
pub use requirements::Requirements;
pub use token::{AccessToken, AssertionFingerprint, OAUTH_BETA, Secret};
