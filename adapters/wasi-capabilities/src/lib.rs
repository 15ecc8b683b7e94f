//! The `capabilities` interface of `anthropic-wif`, implemented with
//! standard WASI for plain WASI runtimes.
//!
//! Built for `wasm32-wasip2`, this component exports the capabilities the
//! federation component imports, so that the composition of the two needs
//! nothing but standard WASI. The runtime's own grants are the policy:
//!
//! - `read-file`: Rust std, so only what the runtime preopened (`--dir`);
//!   at most 1 MiB.
//! - `get-env`: Rust std, so only what the runtime passed (`--env`); any
//!   other variable reads as unset.
//! - `http-fetch`: `wasi:http/outgoing-handler` (see [`http`]), so only
//!   when the runtime enables wasi-http. Bodies are sent with
//!   `content-length`; the whole request must finish within 30 s (or
//!   `ANTHROPIC_WIF_HTTP_TIMEOUT_SECS`); redirects are never followed; the
//!   body is capped at 1 MiB (over the cap is an error, not a cut).
//! - `run-command`: always denied; a WASI runtime runs no programs.

mod bindings {
    wit_bindgen::generate!({
        world: "wasi-capabilities",
        path: "../../wit",
    });
}

pub mod http;

use std::io::{ErrorKind, Read};
use std::path::Path;

use bindings::exports::anthropic_wif::federation::capabilities::{
    CapError, CommandOutput, Guest, HttpRequest, HttpResponse,
};

/// The largest file `read-file` returns.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The capabilities over standard WASI.
pub struct WasiCapabilities;

impl Guest for WasiCapabilities {
    fn read_file(path: String) -> Result<Vec<u8>, CapError> {
        read_file(&path)
    }

    fn get_env(name: String) -> Result<Option<String>, CapError> {
        get_env(&name)
    }

    fn http_fetch(request: HttpRequest) -> Result<HttpResponse, CapError> {
        http::http_fetch(request)
    }

    fn run_command(_argv: Vec<String>, _timeout_ms: u32) -> Result<CommandOutput, CapError> {
        Err(CapError::Denied(
            "run-command is not available in a plain WASI runtime".into(),
        ))
    }
}

// Exported for WebAssembly only: natively the export names (with `:` and
// `@`) are not valid linker symbols, and the crate is built natively only
// for its unit tests and lints.
#[cfg(target_arch = "wasm32")]
bindings::export!(WasiCapabilities with_types_in bindings);

/// Reads a file the runtime preopened, whole, up to [`MAX_FILE_BYTES`].
pub fn read_file(path: &str) -> Result<Vec<u8>, CapError> {
    let shown = printable(path);
    let file = std::fs::File::open(path).map_err(|e| {
        if e.kind() == ErrorKind::NotFound && !preopened(Path::new(path)) {
            CapError::Denied(format!(
                "path {shown} is not inside a directory the runtime preopened"
            ))
        } else {
            file_error(&shown, &e)
        }
    })?;
    let meta = file.metadata().map_err(|e| file_error(&shown, &e))?;
    if meta.is_dir() {
        return Err(CapError::IsDirectory(format!("{shown} is a directory")));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| file_error(&shown, &e))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(CapError::TooLarge(format!(
            "{shown} is larger than {MAX_FILE_BYTES} bytes"
        )));
    }
    Ok(bytes)
}

/// Whether a preopened directory covers `path`: the runtime resolves a path
/// only under its preopens, so when none of its ancestors can be seen
/// either, the path is outside every grant (rather than missing).
fn preopened(path: &Path) -> bool {
    path.ancestors()
        .skip(1)
        .map(|dir| {
            if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            }
        })
        .any(|dir| std::fs::metadata(dir).is_ok())
}

fn file_error(shown: &str, e: &std::io::Error) -> CapError {
    match e.kind() {
        ErrorKind::NotFound => CapError::NotFound(format!("{shown} does not exist")),
        ErrorKind::IsADirectory => CapError::IsDirectory(format!("{shown} is a directory")),
        ErrorKind::PermissionDenied => {
            CapError::Denied(format!("the runtime does not allow reading {shown}"))
        }
        kind => CapError::Failed(format!("reading {shown} failed: {kind}")),
    }
}

/// Reads a variable the runtime passed; any other reads as unset.
pub fn get_env(name: &str) -> Result<Option<String>, CapError> {
    match std::env::var(name) {
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(CapError::Failed(format!(
            "environment variable {} is not valid UTF-8",
            printable(name)
        ))),
    }
}

/// `text` quoted and escaped, at most 200 characters.
fn printable(text: &str) -> String {
    let escaped: String = text
        .chars()
        .flat_map(char::escape_debug)
        .take(200)
        .collect();
    format!("`{escaped}`")
}
