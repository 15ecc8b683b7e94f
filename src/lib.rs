//! Mint short-lived Anthropic API access tokens through Workload Identity
//! Federation.
//!
//! This crate is the logic of the `anthropic-wif` WebAssembly component. It
//! validates an `auth` configuration, reads an OIDC identity token from one of
//! four sources (file, environment variable, command, URL), trades it at the
//! Anthropic token endpoint for an access token and caches the result with the
//! official SDKs' refresh windows. It performs no I/O itself: every file,
//! variable, request, command and clock reading goes through [`Capabilities`],
//! which the WebAssembly host implements (see `wit/federation.wit`).
//!
//! Built for `wasm32-unknown-unknown` the crate exports the component's
//! `provider` interface; built natively it is an ordinary library whose
//! [`Provider`] works with any [`Capabilities`] implementation.

#![deny(unsafe_code)]

pub mod capabilities;
pub mod client;
pub mod config;
pub mod error;
mod exchange;
mod expand;
pub mod fingerprint;
mod form;
mod jwt;
mod origin;
pub mod provider;
pub mod requirements;
#[cfg(not(target_arch = "wasm32"))]
pub mod schema;
pub mod secret;
mod single_use;
mod sources;
mod text;
pub mod token;

// The generated glue of wit-bindgen (exports and canonical ABI calls) is
// `unsafe`; the crate's own code is not.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod bindings;

pub use capabilities::{CapError, Capabilities, CommandOutput, Header, HttpRequest, HttpResponse};
pub use client::Client;
pub use config::{Config, IdentitySource};
pub use error::{Capability, Error, Rejection, SourceKind};
pub use fingerprint::Fingerprint;
pub use provider::Provider;
pub use requirements::{Requirements, UrlRequirement};
pub use secret::Secret;
pub use token::AccessToken;

#[cfg(test)]
mod testing;

#[cfg(test)]
mod proptests;

// Entry points of the fuzz targets in `fuzz/`; not part of the API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
