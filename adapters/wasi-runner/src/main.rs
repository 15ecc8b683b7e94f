//! A `wasi:cli` command that prints an Anthropic access token.
//!
//! Built for `wasm32-wasip2`, it imports the federation component's
//! `provider` and exports `wasi:cli/run`. The `auth` block (JSON) comes from
//! the file named by the first argument or, without one, from the
//! `ANTHROPIC_WIF_CONFIG` variable. The token goes to standard output; an
//! error goes to standard error with exit code 1.
//!
//! ```text
//! wasmtime run -S http --env ANTHROPIC_WIF_CONFIG="$(cat auth.json)" \
//!     --dir /var/run/secrets/anthropic.com anthropic-wif-wasi.wasm
//! ```

mod bindings {
    wit_bindgen::generate!({
        world: "wasi-runner",
        path: "../../wit",
    });
}

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use bindings::anthropic_wif::federation::provider::{self, Error, SourceKind};

/// The variable that holds the `auth` block when no file is named.
const CONFIG_VAR: &str = "ANTHROPIC_WIF_CONFIG";

fn main() -> ExitCode {
    match run() {
        Ok(token) => {
            let mut stdout = std::io::stdout().lock();
            if writeln!(stdout, "{token}")
                .and_then(|()| stdout.flush())
                .is_err()
            {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("anthropic-wif: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Reads the config, opens a client on it (which validates it) and returns
/// its token.
fn run() -> Result<String, String> {
    let config = config()?;
    let client = provider::Client::new(&config).map_err(|e| describe(&e))?;
    client
        .token()
        .map(|token| token.token)
        .map_err(|e| describe(&e))
}

/// The `auth` block: the file named by the first argument, or the
/// `ANTHROPIC_WIF_CONFIG` variable.
fn config() -> Result<String, String> {
    let mut args = std::env::args_os().skip(1);
    let path = args.next();
    if args.next().is_some() {
        return Err(usage());
    }
    match path {
        Some(path) => {
            let shown = path.to_string_lossy().into_owned();
            if shown == "-h" || shown == "--help" {
                return Err(usage());
            }
            std::fs::read_to_string(&path).map_err(|e| {
                format!(
                    "cannot read the config file {shown}: {e} (is its directory granted with --dir?)"
                )
            })
        }
        None => match std::env::var(CONFIG_VAR) {
            Ok(text) if !text.trim().is_empty() => Ok(text),
            Ok(_) => Err(format!("{CONFIG_VAR} is empty; {}", usage())),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(format!("{CONFIG_VAR} is not valid UTF-8"))
            }
            Err(std::env::VarError::NotPresent) => Err(usage()),
        },
    }
}

fn usage() -> String {
    format!(
        "usage: anthropic-wif-wasi [AUTH_JSON_FILE]; without a file, the auth block (JSON) is \
         read from {CONFIG_VAR} (pass it with --env)"
    )
}

/// One line per error, with every detail the provider gave.
fn describe(error: &Error) -> String {
    match error {
        Error::InvalidConfig(e) if e.field.is_empty() => format!("invalid config: {}", e.message),
        Error::InvalidConfig(e) => format!("invalid config: {}: {}", e.field, e.message),
        Error::Denied(d) => {
            let hint = match d.capability.as_str() {
                "read-file" => " (grant its directory with the runtime's --dir)",
                "http-fetch" => " (enable wasi-http in the runtime, e.g. -S http)",
                "run-command" => "; use the file, env or url source instead",
                _ => "",
            };
            format!("{} denied by the runtime: {}{hint}", d.capability, d.detail)
        }
        Error::SourceFailed(e) => {
            let kind = match e.kind {
                SourceKind::File => "file",
                SourceKind::Env => "env",
                SourceKind::Command => "command",
                SourceKind::Url => "url",
                SourceKind::Aws => "aws",
                SourceKind::OauthClientCredentials => "oauth_client_credentials",
            };
            // The runtime passes only the variables given with --env.
            let hint = match e.kind {
                SourceKind::Env => " (pass it with the runtime's --env)",
                _ => "",
            };
            format!(
                "identity token ({kind}) for {} failed: {}{hint}",
                e.federation_rule_id, e.message
            )
        }
        Error::ExchangeFailed(message) => format!("token exchange failed: {message}"),
        Error::ExchangeRejected(r) => {
            let mut text = format!("token exchange rejected with status {}", r.status);
            for (label, value) in [
                ("error", &r.error),
                ("description", &r.error_description),
                ("uri", &r.error_uri),
                ("request-id", &r.request_id),
                ("body", &r.body_snippet),
                ("hint", &r.hint),
            ] {
                if let Some(value) = value {
                    let _ = write!(text, "; {label}: {value}");
                }
            }
            text
        }
        Error::MalformedResponse(message) => {
            format!("the token endpoint's answer is malformed: {message}")
        }
    }
}
