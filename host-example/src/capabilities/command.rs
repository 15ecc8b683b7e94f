//! `run-command`: granted argv prefixes only, no shell, a minimal
//! environment, one deadline for the whole call, and capped output.
//!
//! The child leads a process group of its own. Its exit is watched without
//! any signal handler ([`exit_watch`]); its stdout and stderr are read on
//! the calling thread against the same deadline ([`output`]). When the child
//! exits, or at the deadline, or when a stream passes the cap, the whole
//! group is killed — always before the leader is reaped, so the group id is
//! still the child's own — and the pipes are closed, so that nothing the
//! command started can hold the call past its deadline.

mod exit_watch;
mod output;
#[cfg(test)]
mod tests;

use std::process::{Command, Stdio};
use std::time::Duration;

use super::printable;
use crate::bindings::anthropic_wif::federation::capabilities::{CapError, CommandOutput};
use crate::policy::Policy;

/// Variables every child gets, besides those the policy grants.
const BASE_ENV: [&str; 2] = ["PATH", "HOME"];

/// Runs a granted command, for at most the lower of `requested` and the
/// policy's timeout.
pub(super) fn run(
    policy: &Policy,
    argv: &[String],
    requested: Duration,
) -> Result<CommandOutput, CapError> {
    let shown = printable(&argv.join(" "));
    if !policy.allows_command(argv) {
        return Err(CapError::Denied(format!("command {shown} is not granted")));
    }
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| CapError::Failed("empty command".into()))?;
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for name in BASE_ENV {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    let mut granted = Vec::new();
    for name in &policy.env {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, &value);
            granted.push(value.into_encoded_bytes());
        }
    }
    let timeout = requested.min(policy.command_timeout);
    let mut output = execute(command, program, &shown, timeout, policy.max_output_bytes)?;
    // The child got the granted variables and may print them (a helper
    // under `set -x`); the component may quote its stderr in an error, so
    // the values it was given are hidden here. Stdout, the token, is left
    // as it is.
    output.stderr = super::redact::redact_values(output.stderr, &granted);
    Ok(output)
}

/// Spawns `command` as the leader of a new process group and collects its
/// output and exit status.
fn execute(
    mut command: Command,
    program: &str,
    shown: &str,
    timeout: Duration,
    cap: u64,
) -> Result<CommandOutput, CapError> {
    use std::io::ErrorKind;
    use std::os::fd::OwnedFd;
    use std::os::unix::process::CommandExt;
    use std::time::Instant;

    use exit_watch::{ExitWatch, exit_status_discarded, kill_group};
    use output::{Ending, Limits};

    if exit_status_discarded() {
        return Err(CapError::Failed(format!(
            "command {shown} was not run: this process ignores SIGCHLD, so the system \
             would discard its exit status (restore the default disposition of SIGCHLD)"
        )));
    }
    let deadline = Instant::now() + timeout;
    command.process_group(0);
    let mut child = command.spawn().map_err(|e| match e.kind() {
        ErrorKind::NotFound => {
            CapError::NotFound(format!("program {} not found", printable(program)))
        }
        kind => CapError::Failed(format!("command {shown} could not start: {kind}")),
    })?;
    let pgid = rustix::process::Pid::from_child(&child);
    let stdout = child.stdout.take().map(OwnedFd::from);
    let stderr = child.stderr.take().map(OwnedFd::from);
    let watch = match ExitWatch::start(pgid) {
        Ok(watch) => watch,
        Err(e) => {
            kill_group(pgid);
            let _ = child.wait();
            return Err(CapError::Failed(format!(
                "waiting for command {shown} failed: {}",
                e.kind()
            )));
        }
    };
    // When the child exits, whatever it started and left running in its
    // group must not keep the pipes open.
    let (ending, printed) = output::collect(
        stdout,
        stderr,
        watch.fd(),
        || kill_group(pgid),
        &Limits { deadline, cap },
    );
    // Whatever the ending: the group dies while its leader is unreaped.
    kill_group(pgid);
    watch.finish();
    let status = child.wait();
    match ending {
        Ending::Finished => {}
        Ending::TooLarge => {
            return Err(CapError::TooLarge(format!(
                "command {shown} printed more than {cap} bytes"
            )));
        }
        Ending::TimedOut { exited: false } => {
            return Err(CapError::Timeout(format!(
                "command {shown} did not finish within {timeout:?}"
            )));
        }
        Ending::TimedOut { exited: true } => {
            return Err(CapError::Timeout(format!(
                "command {shown} did not finish within {timeout:?} (it exited, but a process \
                 it started outside its process group kept its output open)"
            )));
        }
        Ending::Failed(kind) => {
            return Err(CapError::Failed(format!(
                "reading the output of command {shown} failed: {kind}"
            )));
        }
    }
    let status = status.map_err(|e| {
        if e.raw_os_error() == Some(rustix::io::Errno::CHILD.raw_os_error()) {
            CapError::Failed(format!(
                "the exit status of command {shown} was lost: the system discarded it \
                 (SIGCHLD is ignored) or another part of this process collected it"
            ))
        } else {
            CapError::Failed(format!("waiting for command {shown} failed: {}", e.kind()))
        }
    })?;
    Ok(CommandOutput {
        exit_code: status.code(),
        stdout: printed.stdout,
        stderr: printed.stderr,
    })
}
