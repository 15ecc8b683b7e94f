//! `run-command`: granted argv prefixes only, no shell, a minimal
//! environment, a timeout that kills, and capped output.

use std::io::{ErrorKind, Read};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

use wait_timeout::ChildExt;

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
    for name in BASE_ENV
        .iter()
        .copied()
        .chain(policy.env.iter().map(String::as_str))
    {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command.spawn().map_err(|e| match e.kind() {
        ErrorKind::NotFound => {
            CapError::NotFound(format!("program {} not found", printable(program)))
        }
        kind => CapError::Failed(format!("command {shown} could not start: {kind}")),
    })?;
    let cap = policy.max_output_bytes;
    let stdout = child.stdout.take().map(|pipe| read_capped(pipe, cap));
    let stderr = child.stderr.take().map(|pipe| read_capped(pipe, cap));
    let timeout = requested.min(policy.command_timeout);
    let status = match child.wait_timeout(timeout) {
        Ok(Some(status)) => status,
        Ok(None) => {
            kill(&mut child);
            join(stdout);
            join(stderr);
            return Err(CapError::Timeout(format!(
                "command {shown} did not finish within {timeout:?}"
            )));
        }
        Err(e) => {
            kill(&mut child);
            return Err(CapError::Failed(format!(
                "waiting for command {shown} failed: {}",
                e.kind()
            )));
        }
    };
    // The command is done; anything it started and left running must not
    // keep the pipes open.
    kill_group(&child);
    let (stdout, stderr) = (join(stdout), join(stderr));
    if stdout.len() as u64 > cap || stderr.len() as u64 > cap {
        return Err(CapError::TooLarge(format!(
            "command {shown} printed more than {cap} bytes"
        )));
    }
    Ok(CommandOutput {
        exit_code: status.code(),
        stdout,
        stderr,
    })
}

/// Reads a pipe on its own thread, keeping at most `cap + 1` bytes (one more
/// than allowed, to tell "too large" from "exactly the cap").
fn read_capped(pipe: impl Read + Send + 'static, cap: u64) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let mut limited = pipe.take(cap + 1);
        // A read error ends the output; what was read is kept.
        let _ = limited.read_to_end(&mut bytes);
        // Drain the rest, so the child never blocks on a full pipe.
        let _ = std::io::copy(&mut limited.into_inner(), &mut std::io::sink());
        bytes
    })
}

fn join(reader: Option<JoinHandle<Vec<u8>>>) -> Vec<u8> {
    reader.and_then(|r| r.join().ok()).unwrap_or_default()
}

fn kill(child: &mut Child) {
    kill_group(child);
    let _ = child.kill();
    let _ = child.wait();
}

/// Ends the child's whole process group (it was started as its leader).
#[cfg(unix)]
fn kill_group(child: &Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) with a negative pid signals the process group the
        // child leads; it touches no memory of this process.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

#[cfg(not(unix))]
fn kill_group(_child: &Child) {}
