//! Builds `anthropic-wif-wasi.wasm`: the federation component composed with
//! standard-WASI capabilities and a `wasi:cli` command.
//!
//! 1. A nested `cargo build` of the root package for `wasm32-unknown-unknown`
//!    (the same command as `host-example/build.rs`, so the same artifacts),
//!    encoded as a component with `wit-component`.
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
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use wac_graph::types::Package;
use wac_graph::{CompositionGraph, EncodeOptions, Processor};

/// The target of the federation component (imports: capabilities + clock).
const CORE_TARGET: &str = "wasm32-unknown-unknown";
/// The target of the adapters (Rust std over WASI 0.2).
const WASI_TARGET: &str = "wasm32-wasip2";
/// The cargo profile of every guest (see the root `Cargo.toml`).
const PROFILE: &str = "guest";
/// The file name of the composed component.
const COMPOSED: &str = "anthropic-wif-wasi.wasm";

const CAPABILITIES: &str = "anthropic-wif:federation/capabilities@0.1.0";
const PROVIDER: &str = "anthropic-wif:federation/provider@0.1.0";

type BuildResult<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> BuildResult<()> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest_dir
        .ancestors()
        .nth(2)
        .ok_or("adapters/composed has no workspace root two folders up")?
        .to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);

    for watched in [
        "src",
        "wit",
        "Cargo.toml",
        "Cargo.lock",
        ".cargo/config.toml",
        "adapters/wasi-capabilities/src",
        "adapters/wasi-capabilities/Cargo.toml",
        "adapters/wasi-runner/src",
        "adapters/wasi-runner/Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

    ensure_target(CORE_TARGET)?;
    ensure_target(WASI_TARGET)?;
    let target_root = target_root(&out_dir, &root);
    let guest_dir = target_root.join("guest-build");

    // The federation component, exactly as host-example builds it.
    nested_build(
        &root,
        &guest_dir,
        CORE_TARGET,
        &["--package", "anthropic-wif", "--lib"],
    )?;
    let module = read(
        &guest_dir
            .join(CORE_TARGET)
            .join(PROFILE)
            .join("anthropic_wif.wasm"),
    )?;
    let federation = wit_component::ComponentEncoder::default()
        .module(&module)?
        .validate(true)
        .encode()?;

    // The two adapters, components already.
    nested_build(
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

fn read(path: &Path) -> BuildResult<Vec<u8>> {
    std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()).into())
}

/// Installs a wasm target with rustup when the toolchain lacks it.
fn ensure_target(target: &str) -> BuildResult<()> {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc).args(["--print", "sysroot"]).output()?;
    let sysroot = PathBuf::from(String::from_utf8(sysroot.stdout)?.trim());
    if sysroot.join("lib/rustlib").join(target).exists() {
        return Ok(());
    }
    let status = Command::new("rustup")
        .args(["target", "add", target])
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .map_err(|e| format!("the {target} target is missing and rustup could not run: {e}"))?;
    if !status.success() {
        return Err(format!("`rustup target add {target}` failed ({status})").into());
    }
    Ok(())
}

/// The workspace's target folder, shared by build, test and clippy: found
/// by walking up from `OUT_DIR` to the folder that holds `CACHEDIR.TAG`.
fn target_root(out_dir: &Path, root: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").exists())
        .map_or_else(|| root.join("target"), Path::to_path_buf)
}

/// `cargo build --target TARGET --profile guest ARGS` in its own target
/// folder, with nothing of the outer build leaking in.
fn nested_build(root: &Path, target_dir: &Path, target: &str, args: &[&str]) -> BuildResult<()> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(root)
        .arg("build")
        .args(args)
        .args(["--target", target, "--profile", PROFILE])
        .arg("--target-dir")
        .arg(target_dir)
        // Its stdout would be read as `cargo:` directives.
        .stdout(Stdio::from(std::io::stderr()));
    for (name, _) in env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        let leaks = [
            "RUSTC_WORKSPACE_WRAPPER",
            "RUSTC_WRAPPER",
            "CLIPPY_ARGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "RUSTFLAGS",
            "CARGO_BUILD_RUSTFLAGS",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET",
            "CARGO_MAKEFLAGS",
            "TARGET",
            "HOST",
            "OUT_DIR",
            "PROFILE",
            "OPT_LEVEL",
            "DEBUG",
            "NUM_JOBS",
        ]
        .contains(&name)
            || [
                "CARGO_CFG_",
                "CARGO_FEATURE_",
                "CARGO_PKG_",
                "CARGO_MANIFEST_",
                "DEP_",
            ]
            .iter()
            .any(|prefix| name.starts_with(prefix));
        if leaks {
            command.env_remove(name);
        }
    }
    let status = command.status()?;
    if !status.success() {
        return Err(format!("building {args:?} for {target} failed ({status})").into());
    }
    Ok(())
}
