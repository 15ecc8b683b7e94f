//! Builds `anthropic-wif-wasi.wasm`: the federation component composed with
//! standard-WASI capabilities and a `wasi:cli` command.
//!
//! 1. A nested `cargo build` of the root package for `wasm32-unknown-unknown`
//!    (the `anthropic-wif-nested-build` crate, shared with
//!    `host-example/build.rs`, so the same artifacts), encoded as a component
//!    with `wit-component`.
//! 2. A nested `cargo build` of `adapters/wasi-capabilities` and
//!    `adapters/wasi-runner` for `wasm32-wasip2` (components already).
//! 3. `wac-graph` composes capabilities → federation → runner and exports
//!    the runner's `wasi:cli/run`; everything else the three import is
//!    standard WASI and becomes an import of the composition.
//!
//! The result is written to `OUT_DIR` (embedded as
//! `anthropic_wif_wasi::COMPONENT`) and copied to
//! `target/wasi/anthropic-wif-wasi.wasm` for `wasmtime run`.

use std::env;
use std::path::PathBuf;

use anthropic_wif_nested_build::{self as nested_build, BuildResult, PROFILE, read};
use wac_graph::types::Package;
use wac_graph::{CompositionGraph, EncodeOptions, Processor};

/// The target of the adapters (Rust std over WASI 0.2).
const WASI_TARGET: &str = "wasm32-wasip2";
/// The file name of the composed component.
const COMPOSED: &str = "anthropic-wif-wasi.wasm";

const CAPABILITIES: &str = "anthropic-wif:federation/capabilities@0.3.0";
const PROVIDER: &str = "anthropic-wif:federation/provider@0.3.0";

fn main() -> BuildResult<()> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest_dir
        .ancestors()
        .nth(2)
        .ok_or("adapters/composed has no workspace root two folders up")?
        .to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);

    let target_root = nested_build::target_root(&out_dir, &root);
    let guest_dir = nested_build::guest_target_dir(&out_dir, &root);

    // The federation component, exactly as host-example builds it.
    let federation = nested_build::federation_component(&root, &guest_dir)?;

    // The two adapters, components already.
    nested_build::nested_build(
        &root,
        &guest_dir,
        WASI_TARGET,
        &[
            "--package",
            "anthropic-wif-wasi-capabilities",
            "--package",
            "anthropic-wif-wasi-runner",
        ],
    )?;
    let wasi_out = guest_dir.join(WASI_TARGET).join(PROFILE);
    for (dep_info, manifest) in [
        (
            "anthropic_wif_wasi_capabilities.d",
            "adapters/wasi-capabilities/Cargo.toml",
        ),
        (
            "anthropic-wif-wasi-runner.d",
            "adapters/wasi-runner/Cargo.toml",
        ),
    ] {
        nested_build::watch_dep_info(&wasi_out.join(dep_info), &root, &[manifest])?;
    }
    let capabilities = read(&wasi_out.join("anthropic_wif_wasi_capabilities.wasm"))?;
    let runner = read(&wasi_out.join("anthropic-wif-wasi-runner.wasm"))?;

    let composed = compose(federation, capabilities, runner)?;
    std::fs::write(out_dir.join(COMPOSED), &composed)?;

    // A stable path for `wasmtime run`; written only when it changed, so
    // that its timestamp tells when the component last changed.
    let stable = target_root.join("wasi");
    std::fs::create_dir_all(&stable)?;
    let stable = stable.join(COMPOSED);
    if std::fs::read(&stable).ok().as_deref() != Some(&composed[..]) {
        std::fs::write(&stable, &composed)?;
    }
    Ok(())
}

/// capabilities → federation → runner, exporting the runner's
/// `wasi:cli/run`. Unsatisfied imports (all standard WASI) are imported by
/// the composition, one import per name.
fn compose(federation: Vec<u8>, capabilities: Vec<u8>, runner: Vec<u8>) -> BuildResult<Vec<u8>> {
    let mut graph = CompositionGraph::new();
    let mut register = |name: &str, bytes: Vec<u8>| -> BuildResult<_> {
        let package = Package::from_bytes(name, None, bytes, graph.types_mut())
            .map_err(|e| format!("loading {name}: {e:#}"))?;
        Ok(graph.register_package(package)?)
    };
    let capabilities = register("anthropic-wif:wasi-capabilities", capabilities)?;
    let federation = register("anthropic-wif:federation", federation)?;
    let runner = register("anthropic-wif:wasi-runner", runner)?;

    let run_export = graph.types()[graph[runner].ty()]
        .exports
        .keys()
        .find(|name| name.starts_with("wasi:cli/run@0.2."))
        .cloned()
        .ok_or("the runner does not export wasi:cli/run@0.2")?;

    let capabilities = graph.instantiate(capabilities);
    let federation = graph.instantiate(federation);
    let runner = graph.instantiate(runner);

    let granted = graph.alias_instance_export(capabilities, CAPABILITIES)?;
    graph.set_instantiation_argument(federation, CAPABILITIES, granted)?;
    let provider = graph.alias_instance_export(federation, PROVIDER)?;
    graph.set_instantiation_argument(runner, PROVIDER, provider)?;
    let run = graph.alias_instance_export(runner, &run_export)?;
    graph.export(run, &run_export)?;

    let composed = graph.encode(EncodeOptions {
        define_components: true,
        validate: true,
        processor: Some(Processor {
            name: env!("CARGO_PKG_NAME"),
            version: env!("CARGO_PKG_VERSION"),
        }),
    })?;
    Ok(composed)
}
