//! The component's exported functions, looked up in an instance when they
//! are first called rather than all at instantiation.
//!
//! The generated `Federation::instantiate` type-checks every export of the
//! world again for each new instance (a dozen functions: about a fifth of
//! instantiation, measured with `perf`), though the types were checked once
//! when the provider was built (`FederationPre::new`). Here an instance
//! starts with none of them; the two a cached call needs (`token` and
//! `token-valid-for`) are checked once per instance and kept, the others are
//! checked at each call, where the work they do dwarfs the check.

use std::cell::OnceCell;

use wasmtime::component::{
    Component, ComponentExportIndex, ComponentNamedList, Instance, Lift, Lower, ResourceAny,
    TypedFunc,
};
use wasmtime::{AsContextMut, Result};

use crate::bindings::exports::anthropic_wif::federation::provider as wit;

/// The exported interface, by its WIT name.
const INTERFACE: &str = "anthropic-wif:federation/provider@0.3.0";

/// Where each export the host calls sits in the component: found once per
/// provider, by name.
#[derive(Clone, Copy)]
pub(crate) struct ExportIndices {
    constructor: ComponentExportIndex,
    token: ComponentExportIndex,
    token_valid_for: ComponentExportIndex,
    invalidate: ComponentExportIndex,
    invalidate_rejected: ComponentExportIndex,
    restore: ComponentExportIndex,
    requirements: ComponentExportIndex,
    identity_token: ComponentExportIndex,
}

impl ExportIndices {
    /// The indices of `component`'s exports; an error naming the first one
    /// it lacks.
    pub(crate) fn new(component: &Component) -> Result<ExportIndices> {
        let interface = component
            .get_export_index(None, INTERFACE)
            .ok_or_else(|| wasmtime::format_err!("the component does not export `{INTERFACE}`"))?;
        let find = |name: &str| {
            component
                .get_export_index(Some(&interface), name)
                .ok_or_else(|| {
                    wasmtime::format_err!("the component does not export `{INTERFACE}#{name}`")
                })
        };
        Ok(ExportIndices {
            constructor: find("[constructor]client")?,
            token: find("[method]client.token")?,
            token_valid_for: find("[method]client.token-valid-for")?,
            invalidate: find("[method]client.invalidate")?,
            invalidate_rejected: find("[method]client.invalidate-rejected")?,
            restore: find("[method]client.restore")?,
            requirements: find("[method]client.requirements")?,
            identity_token: find("[method]client.identity-token")?,
        })
    }
}

/// The result of the methods that return a token.
type TokenResult = (std::result::Result<wit::AccessToken, wit::Error>,);

/// The exports of one instance.
pub(crate) struct Exports {
    instance: Instance,
    indices: ExportIndices,
    token: OnceCell<TypedFunc<(ResourceAny,), TokenResult>>,
    token_valid_for: OnceCell<TypedFunc<(ResourceAny, u32), TokenResult>>,
}

impl Exports {
    /// The exports of `instance`, none looked up yet.
    pub(crate) fn new(instance: Instance, indices: ExportIndices) -> Exports {
        Exports {
            instance,
            indices,
            token: OnceCell::new(),
            token_valid_for: OnceCell::new(),
        }
    }

    /// `[constructor]client`: a client of `config`.
    pub(crate) fn constructor(
        &self,
        mut store: impl AsContextMut,
        config: &str,
    ) -> Result<std::result::Result<ResourceAny, wit::Error>> {
        let func = self
            .instance
            .get_typed_func::<(&str,), (std::result::Result<ResourceAny, wit::Error>,)>(
                &mut store,
                self.indices.constructor,
            )?;
        Ok(func.call(store, (config,))?.0)
    }

    /// `[method]client.token`.
    pub(crate) fn token(
        &self,
        mut store: impl AsContextMut,
        client: ResourceAny,
    ) -> Result<std::result::Result<wit::AccessToken, wit::Error>> {
        let func = kept(&self.token, self.instance, &mut store, self.indices.token)?;
        Ok(func.call(store, (client,))?.0)
    }

    /// `[method]client.token-valid-for`.
    pub(crate) fn token_valid_for(
        &self,
        mut store: impl AsContextMut,
        client: ResourceAny,
        seconds: u32,
    ) -> Result<std::result::Result<wit::AccessToken, wit::Error>> {
        let func = kept(
            &self.token_valid_for,
            self.instance,
            &mut store,
            self.indices.token_valid_for,
        )?;
        Ok(func.call(store, (client, seconds))?.0)
    }

    /// `[method]client.invalidate`.
    pub(crate) fn invalidate(
        &self,
        mut store: impl AsContextMut,
        client: ResourceAny,
    ) -> Result<()> {
        self.instance
            .get_typed_func::<(ResourceAny,), ()>(&mut store, self.indices.invalidate)?
            .call(store, (client,))
    }

    /// `[method]client.invalidate-rejected`.
    pub(crate) fn invalidate_rejected(
        &self,
        mut store: impl AsContextMut,
        client: ResourceAny,
        token: &str,
    ) -> Result<()> {
        self.instance
            .get_typed_func::<(ResourceAny, &str), ()>(
                &mut store,
                self.indices.invalidate_rejected,
            )?
            .call(store, (client, token))
    }

    /// `[method]client.restore`.
    pub(crate) fn restore(
        &self,
        mut store: impl AsContextMut,
        client: ResourceAny,
        token: &wit::AccessToken,
    ) -> Result<()> {
        self.instance
            .get_typed_func::<(ResourceAny, &wit::AccessToken), ()>(
                &mut store,
                self.indices.restore,
            )?
            .call(store, (client, token))
    }

    /// `[method]client.requirements`.
    pub(crate) fn requirements(
        &self,
        mut store: impl AsContextMut,
        client: ResourceAny,
    ) -> Result<wit::HostRequirements> {
        let func = self
            .instance
            .get_typed_func::<(ResourceAny,), (wit::HostRequirements,)>(
                &mut store,
                self.indices.requirements,
            )?;
        Ok(func.call(store, (client,))?.0)
    }

    /// `[method]client.identity-token`.
    pub(crate) fn identity_token(
        &self,
        mut store: impl AsContextMut,
        client: ResourceAny,
    ) -> Result<std::result::Result<String, wit::Error>> {
        let func = self
            .instance
            .get_typed_func::<(ResourceAny,), (std::result::Result<String, wit::Error>,)>(
                &mut store,
                self.indices.identity_token,
            )?;
        Ok(func.call(store, (client,))?.0)
    }
}

/// The function kept in `cell`, looked up in `instance` (and type-checked)
/// the first time.
fn kept<P, R>(
    cell: &OnceCell<TypedFunc<P, R>>,
    instance: Instance,
    store: impl AsContextMut,
    index: ComponentExportIndex,
) -> Result<&TypedFunc<P, R>>
where
    P: ComponentNamedList + Lower,
    R: ComponentNamedList + Lift,
{
    if let Some(func) = cell.get() {
        return Ok(func);
    }
    let func = instance.get_typed_func(store, index)?;
    Ok(cell.get_or_init(|| func))
}
