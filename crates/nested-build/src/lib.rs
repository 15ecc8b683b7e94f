//! The nested guest build shared by the build scripts that embed the
//! component: `host-example/build.rs` (the component alone) and
//! `adapters/composed/build.rs` (the component composed with the WASI
//! adapters).
//!
//! Each pitfall handled here is described in the project's build notes:
//! nothing of the outer cargo (or clippy) leaks into the nested build, its
//! stdout goes to stderr, and its target folder is shared by build, test
//! and clippy. The build scripts rerun only when a guest's own inputs
//! change: the source files its dep-info file lists (as wasmtime's
//! test-programs artifacts do), not every edit of the workspace's
//! `Cargo.toml` or `Cargo.lock`. The wasm targets come from
//! `rust-toolchain.toml`, not from this build.

#![deny(unsafe_code)]

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

/// Asks cargo to rerun the build script when a source file of a guest
/// changes: every input its dep-info file (`NAME.d`, next to the artifact)
/// lists, plus `extra` paths (relative to `root`) that dep-info cannot know.
/// Call it after the nested build, which writes the dep-info file.
pub fn watch_dep_info(dep_info: &Path, root: &Path, extra: &[&str]) -> BuildResult<()> {
    let text = std::fs::read_to_string(dep_info)
        .map_err(|e| format!("reading the guest's dep-info {}: {e}", dep_info.display()))?;
    for path in dep_info_inputs(&text) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    for path in extra {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    Ok(())
}

/// The inputs a Makefile-style dep-info file lists (`OUTPUT: IN IN…`, a
/// space inside a path escaped as `\ `), each once.
pub fn dep_info_inputs(text: &str) -> Vec<PathBuf> {
    let mut inputs = Vec::new();
    for line in text.lines() {
        let Some((_, deps)) = split_rule(line) else {
            continue;
        };
        let mut current = String::new();
        let mut chars = deps.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek() == Some(&' ') => {
                    current.push(' ');
                    chars.next();
                }
                ' ' => {
                    if !current.is_empty() {
                        inputs.push(PathBuf::from(std::mem::take(&mut current)));
                    }
                }
                other => current.push(other),
            }
        }
        if !current.is_empty() {
            inputs.push(PathBuf::from(current));
        }
    }
    inputs.sort();
    inputs.dedup();
    inputs
}

/// `OUTPUT: DEPS` split at the first `:` that ends the output path (a `:`
/// followed by a space or the end of the line).
fn split_rule(line: &str) -> Option<(&str, &str)> {
    let bytes = line.as_bytes();
    (0..bytes.len())
        .find(|&i| bytes[i] == b':' && bytes.get(i + 1).is_none_or(|b| *b == b' '))
        .map(|i| (&line[..i], line[i + 1..].trim()))
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
///
/// A target folder outside the workspace (`CARGO_TARGET_DIR` shared by
/// several checkouts or worktrees) gets one guest folder per checkout: the
/// guests' artifacts (`anthropic_wif.wasm`, …) carry no hash in their names,
/// so two checkouts building into one folder would overwrite each other's
/// component while cargo still counts each one's build as fresh.
pub fn guest_target_dir(out_dir: &Path, root: &Path) -> PathBuf {
    let target = target_root(out_dir, root);
    if target.starts_with(root) {
        return target.join("guest-build");
    }
    let mut hasher = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(root, &mut hasher);
    let name = root
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    target.join(format!(
        "guest-build-{name}-{:016x}",
        std::hash::Hasher::finish(&hasher)
    ))
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
/// the module as a component (validated), without its name section.
pub fn federation_component(root: &Path, target_dir: &Path) -> BuildResult<Vec<u8>> {
    nested_build(
        root,
        target_dir,
        CORE_TARGET,
        &["--package", "anthropic-wif", "--lib"],
    )?;
    let out = target_dir.join(CORE_TARGET).join(PROFILE);
    watch_dep_info(&out.join("anthropic_wif.d"), root, &["wit"])?;
    let module = read(&out.join("anthropic_wif.wasm"))?;
    let component = wit_component::ComponentEncoder::default()
        .module(&module)?
        .validate(true)
        .encode()?;
    without_names(&component)
}

/// `component` without its top-level `component-name` custom section: the
/// names of its types and functions, which only debuggers read (the core
/// module is already stripped), about 2.6 KiB of a component that must stay
/// under 400 KiB.
pub fn without_names(component: &[u8]) -> BuildResult<Vec<u8>> {
    let header = component
        .get(..8)
        .ok_or("the component is shorter than its header")?;
    let mut out = header.to_vec();
    let mut reader = wasmparser::BinaryReader::new(&component[8..], 8);
    while !reader.eof() {
        let start = reader.original_position();
        let id = reader.read_u8()?;
        let size = reader.read_var_u32()? as usize;
        let body = reader.read_bytes(size)?;
        if id == 0 && wasmparser::BinaryReader::new(body, 0).read_string()? == "component-name" {
            continue;
        }
        out.extend_from_slice(&component[start..reader.original_position()]);
    }
    Ok(out)
}

/// Reads a build output, naming it when that fails.
pub fn read(path: &Path) -> BuildResult<Vec<u8>> {
    std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_component_name_section_is_dropped() {
        let mut component = b"\0asm\x0d\0\x01\0".to_vec();
        let custom = |name: &str, data: &[u8]| {
            let mut body = vec![name.len() as u8];
            body.extend_from_slice(name.as_bytes());
            body.extend_from_slice(data);
            let mut section = vec![0, body.len() as u8];
            section.extend(body);
            section
        };
        component.extend(custom("component-name", b"names"));
        component.extend(custom("producers", b"kept"));
        let stripped = without_names(&component).unwrap();
        let mut expected = component[..8].to_vec();
        expected.extend(custom("producers", b"kept"));
        assert_eq!(stripped, expected);
        assert!(without_names(&component[..12]).is_err(), "a cut section");
    }

    #[test]
    fn dep_info_inputs_are_each_path_once_with_escaped_spaces() {
        let text = concat!(
            "/t/guest/anthropic_wif.wasm: /r/src/lib.rs /r/my\\ dir/a.rs\n",
            "\n",
            "/t/guest/libanthropic_wif.rlib: /r/src/lib.rs /r/wit/federation.wit\n",
            "\n",
            "/r/src/lib.rs:\n",
        );
        assert_eq!(
            dep_info_inputs(text),
            ["/r/my dir/a.rs", "/r/src/lib.rs", "/r/wit/federation.wit"]
                .map(PathBuf::from)
                .to_vec()
        );
    }

    #[test]
    fn a_colon_inside_a_path_does_not_end_the_output() {
        assert_eq!(
            split_rule("C:/t/out.wasm: C:/r/src/lib.rs"),
            Some(("C:/t/out.wasm", "C:/r/src/lib.rs"))
        );
    }
}
