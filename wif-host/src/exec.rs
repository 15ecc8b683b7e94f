//! `wif-host exec`: runs one program with a private gateway of its own.
//!
//! The gateway listens on 127.0.0.1 at a port the system picks, with a
//! client key drawn for this run only and kept in memory. The program gets
//! `ANTHROPIC_BASE_URL` and `ANTHROPIC_API_KEY` pointing at it, and none of
//! the variables that carry a token or would configure an SDK's own
//! credentials ([`WITHHELD`]). It never sees an access token, and its tokens
//! stay fresh however long it runs, since the gateway asks the provider
//! for each request. SIGINT, SIGTERM, SIGHUP and SIGQUIT are passed on to
//! the program; when it ends, the gateway stops (requests in flight get its
//! grace period) and `wif-host` exits with the program's status: its exit
//! code, or 128 + N when signal N ended it, as shells report it.

use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, ExitStatus};
use std::sync::Arc;

use anthropic_wif_host::Provider;
use rustix::process::{Pid, Signal};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::Failure;
use crate::gateway::{ClientKey, Gateway, GatewayError, Listen, Listener, SHUTDOWN_GRACE};
use crate::sync::Stop;

/// Variables the program does not inherit: they carry a token or an
/// identity token, or would make an SDK use credentials of its own instead
/// of the gateway (the base URL and key are set to the gateway's).
pub const WITHHELD: [&str; 12] = [
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_IDENTITY_TOKEN",
    "ANTHROPIC_IDENTITY_TOKEN_FILE",
    "ANTHROPIC_FEDERATION_RULE_ID",
    "ANTHROPIC_ORGANIZATION_ID",
    "ANTHROPIC_SERVICE_ACCOUNT_ID",
    "ANTHROPIC_WORKSPACE_ID",
    "ANTHROPIC_SCOPE",
    "ANTHROPIC_PROFILE",
    "ANTHROPIC_CONFIG_DIR",
];

/// The signals passed on to the program.
const FORWARDED: [i32; 4] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT];

/// Runs `argv` (the program and its arguments) with a private gateway
/// forwarding to `upstream` with tokens for `auth_json`; the program's
/// exit status as `wif-host`'s.
pub fn run(
    provider: Provider,
    auth_json: String,
    upstream: &str,
    argv: &[OsString],
) -> Result<u8, Failure> {
    let Some((program, args)) = argv.split_first() else {
        return Err(Failure::NoProgram);
    };
    let key = ClientKey::generate()?;
    let key_text = key.expose().to_string();
    let listen = Listen::Tcp(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    let listener = Listener::bind(&listen)?;
    let address = match listener.address() {
        Ok(Listen::Tcp(address)) => address,
        Ok(Listen::Unix(_)) => unreachable!("a TCP listener has a TCP address"),
        Err(source) => {
            return Err(Failure::Serve {
                listen,
                source: Box::new(GatewayError::Serve(source)),
            });
        }
    };
    let gateway = Arc::new(Gateway::new(provider, auth_json, upstream, key)?);
    // Watched before the program starts, so that a signal meant for it is
    // never lost to the default action (which would end wif-host alone).
    let mut signals = Signals::new(FORWARDED).map_err(Failure::Signals)?;
    let stop = Stop::manual();
    let stopper = stop.sender();
    let server = std::thread::Builder::new()
        .name("wif-host-exec-gateway".into())
        .spawn(move || gateway.serve(listener, stop, SHUTDOWN_GRACE))
        .map_err(GatewayError::Runtime)?;
    let stop_gateway = || {
        let _ = stopper.send(());
    };

    let mut command = Command::new(program);
    command.args(args);
    for name in WITHHELD {
        command.env_remove(name);
    }
    command
        .env("ANTHROPIC_BASE_URL", format!("http://{address}"))
        .env("ANTHROPIC_API_KEY", key_text);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(source) => {
            stop_gateway();
            let _ = server.join();
            return Err(Failure::Spawn {
                program: program.clone(),
                source,
            });
        }
    };
    let pid = Pid::from_child(&child);
    let signals_handle = signals.handle();
    let forwarder = std::thread::Builder::new()
        .name("wif-host-exec-signals".into())
        .spawn(move || {
            for number in signals.forever() {
                if let Some(signal) = Signal::from_named_raw(number) {
                    // The program may have ended meanwhile: nothing to do.
                    let _ = rustix::process::kill_process(pid, signal);
                }
            }
        })
        .map_err(Failure::Signals)?;
    let waited = child.wait();
    signals_handle.close();
    let _ = forwarder.join();
    stop_gateway();
    match server.join() {
        Ok(Ok(0)) => {}
        Ok(Ok(cut)) => {
            tracing::warn!(
                cut,
                "gateway: connections still open after the grace period were cut short"
            )
        }
        Ok(Err(error)) => tracing::warn!(%error, "gateway: ended with an error"),
        Err(_) => tracing::warn!("gateway: its thread panicked"),
    }
    let status = waited.map_err(|source| Failure::Spawn {
        program: program.clone(),
        source,
    })?;
    Ok(exit_status(status))
}

/// A child's status as a shell reports it: its exit code, or 128 + N when
/// signal N ended it.
fn exit_status(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(u8::MAX),
        (None, Some(signal)) => u8::try_from(128 + (signal & 0x7f)).unwrap_or(u8::MAX),
        (None, None) => u8::MAX,
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    use super::exit_status;

    #[test]
    fn the_status_is_reported_as_a_shell_reports_it() {
        assert_eq!(exit_status(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_status(ExitStatus::from_raw(7 << 8)), 7);
        assert_eq!(exit_status(ExitStatus::from_raw(15)), 143);
        assert_eq!(exit_status(ExitStatus::from_raw(9)), 137);
    }
}
