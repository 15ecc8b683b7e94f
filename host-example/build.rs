//! Builds the component from this repository's root package and embeds it.
//!
//! Runs a nested `cargo build` of the root package for
//! `wasm32-unknown-unknown` (installing that target with rustup when it is
//! missing), encodes the core module as a component with `wit-component`, and
//! writes it to `OUT_DIR/anthropic_wif.wasm` for `include_bytes!`.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const TARGET: &str = "wasm32-unknown-unknown";
const PROFILE: &str = "guest";

type BuildResult<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> BuildResult<()> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest_dir
        .parent()
        .ok_or("host-example has no parent folder")?
        .to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);

    for watched in [
        "src",
        "wit",
        "Cargo.toml",
        "Cargo.lock",
        ".cargo/config.toml",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

    ensure_target()?;
    let target_dir = guest_target_dir(&out_dir, &root);
    build_guest(&root, &target_dir)?;

    let module_path = target_dir
        .join(TARGET)
        .join(PROFILE)
        .join("anthropic_wif.wasm");
    let module = std::fs::read(&module_path)
        .map_err(|e| format!("reading {}: {e}", module_path.display()))?;
    let component = wit_component::ComponentEncoder::default()
        .module(&module)?
        .validate(true)
        .encode()?;
    std::fs::write(out_dir.join("anthropic_wif.wasm"), component)?;
    Ok(())
}

/// Installs the wasm target with rustup when the toolchain lacks it.
fn ensure_target() -> BuildResult<()> {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc).args(["--print", "sysroot"]).output()?;
    let sysroot = PathBuf::from(String::from_utf8(sysroot.stdout)?.trim());
    if sysroot.join("lib/rustlib").join(TARGET).exists() {
        return Ok(());
    }
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .map_err(|e| format!("the {TARGET} target is missing and rustup could not run: {e}"))?;
    if !status.success() {
        return Err(format!("`rustup target add {TARGET}` failed ({status})").into());
    }
    Ok(())
}

/// A target folder for the guest shared by build, test and clippy: beside
/// the workspace's own, found by walking up from `OUT_DIR` to the folder
/// that holds `CACHEDIR.TAG`.
fn guest_target_dir(out_dir: &Path, root: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").exists())
        .map_or_else(|| root.join("target"), Path::to_path_buf)
        .join("guest-build")
}

fn build_guest(root: &Path, target_dir: &Path) -> BuildResult<()> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(root)
        .args([
            "build",
            "--package",
            "anthropic-wif",
            "--lib",
            "--target",
            TARGET,
            "--profile",
            PROFILE,
        ])
        .arg("--target-dir")
        .arg(target_dir)
        .stdout(Stdio::from(std::io::stderr()));
    // What the outer cargo (or clippy) sets for this build script must not
    // leak into the nested build.
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
        return Err(format!("building the component for {TARGET} failed ({status})").into());
    }
    Ok(())
}
