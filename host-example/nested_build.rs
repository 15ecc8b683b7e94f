//! The nested guest build shared by the build scripts that embed the
//! component: `host-example/build.rs` (the component alone) and
//! `adapters/composed/build.rs` (the component composed with the WASI
//! adapters), which includes this file with `#[path]`.
//!
//! Each pitfall handled here is described in the project's build notes:
//! nothing of the outer cargo (or clippy) leaks into the nested build, its
//! stdout goes to stderr, its target folder is shared by build, test and
//! clippy, and only existing paths are watched.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The target of the federation component (imports: capabilities + clock).
pub const CORE_TARGET: &str = "wasm32-unknown-unknown";
/// The cargo profile of every guest (see the root `Cargo.toml`).
pub const PROFILE: &str = "guest";

/// What a build script returns.
pub type BuildResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Variables the outer cargo sets that must not reach the nested build.
const LEAKING: [&str; 16] = [
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
];
/// Prefixes of the per-package variables cargo sets for build scripts.
const LEAKING_PREFIXES: [&str; 5] = [
    "CARGO_CFG_",
    "CARGO_FEATURE_",
    "CARGO_PKG_",
    "CARGO_MANIFEST_",
    "DEP_",
];

/// Asks cargo to rerun the build script when one of `paths` (relative to
/// `root`) changes. A missing watched path counts as changed on every
/// build, so only existing ones are watched (`.cargo/config.toml` is
/// usually absent). The repository root itself is never watched: `target/`
/// would rerun it every time.
pub fn watch(root: &Path, paths: &[&str]) {
    for watched in paths {
        let path = root.join(watched);
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}

/// The root package's inputs, which every embedding build watches.
pub const COMPONENT_INPUTS: [&str; 5] = [
    "src",
    "wit",
    "Cargo.toml",
    "Cargo.lock",
    ".cargo/config.toml",
];

/// Installs a wasm target with rustup when the toolchain lacks it.
pub fn ensure_target(target: &str) -> BuildResult<()> {
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
pub fn target_root(out_dir: &Path, root: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").exists())
        .map_or_else(|| root.join("target"), Path::to_path_buf)
}

/// The guests' own target folder (beside the workspace's, so that it is
/// reused by build, test and clippy and never waits on the outer lock).
pub fn guest_target_dir(out_dir: &Path, root: &Path) -> PathBuf {
    target_root(out_dir, root).join("guest-build")
}

/// `cargo build ARGS --target TARGET --profile guest` in `target_dir`, with
/// nothing of the outer build leaking in.
pub fn nested_build(
    root: &Path,
    target_dir: &Path,
    target: &str,
    args: &[&str],
) -> BuildResult<()> {
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
        if LEAKING.contains(&name) || LEAKING_PREFIXES.iter().any(|p| name.starts_with(p)) {
            command.env_remove(name);
        }
    }
    let status = command.status()?;
    if !status.success() {
        return Err(format!("building {args:?} for {target} failed ({status})").into());
    }
    Ok(())
}

/// Builds the root package for [`CORE_TARGET`] in `target_dir` and encodes
/// the module as a component (validated).
pub fn federation_component(root: &Path, target_dir: &Path) -> BuildResult<Vec<u8>> {
    ensure_target(CORE_TARGET)?;
    nested_build(
        root,
        target_dir,
        CORE_TARGET,
        &["--package", "anthropic-wif", "--lib"],
    )?;
    let module = read(
        &target_dir
            .join(CORE_TARGET)
            .join(PROFILE)
            .join("anthropic_wif.wasm"),
    )?;
    Ok(wit_component::ComponentEncoder::default()
        .module(&module)?
        .validate(true)
        .encode()?)
}

/// Reads a build output, naming it when that fails.
pub fn read(path: &Path) -> BuildResult<Vec<u8>> {
    std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()).into())
}
