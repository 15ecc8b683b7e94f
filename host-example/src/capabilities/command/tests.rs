//! Real child processes: exit codes, signals, the deadline against children
//! that hold the pipes, the output cap, and both ways of watching the exit.
//!
//! The only timings asserted are generous bounds that tell a call that
//! returned from one that waited for a 30 s child.

use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::Pid;

use super::exit_watch::{ExitWatch, kill_group};
use super::output::{self, Ending, Limits};
use super::run;
use crate::bindings::anthropic_wif::federation::capabilities::{CapError, CommandOutput};
use crate::policy::Policy;

/// Far below the 30 s the stubborn children of these tests sleep, far above
/// what a returning call takes on a loaded machine.
const HANG_BOUND: Duration = Duration::from_secs(8);

fn policy(timeout_secs: f64, max_output_bytes: u64) -> Policy {
    Policy::from_toml(&format!(
        "[commands]\nallow = [[\"sh\", \"-c\"]]\ntimeout_secs = {timeout_secs}\n\
         max_output_bytes = {max_output_bytes}\n"
    ))
    .expect("a valid test policy")
}

fn sh(policy: &Policy, script: &str) -> Result<CommandOutput, CapError> {
    let argv = ["sh", "-c", script].map(String::from);
    run(policy, &argv, Duration::from_secs(30))
}

/// Runs `script` and returns the result and how long the call took.
fn timed_sh(policy: &Policy, script: &str) -> (Result<CommandOutput, CapError>, Duration) {
    let start = Instant::now();
    let result = sh(policy, script);
    (result, start.elapsed())
}

/// Kills the process whose id a test script wrote to `pid_file` (a child
/// that escaped its group on purpose), so the test leaves nothing behind.
fn kill_escaped(pid_file: &Path) {
    let text = std::fs::read_to_string(pid_file).expect("the escaped child wrote its pid");
    let pid: i32 = text.trim().parse().expect("a pid");
    let pid = Pid::from_raw(pid).expect("a positive pid");
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
}

#[test]
fn exit_code_stdout_and_stderr_are_reported() {
    let output = sh(&policy(10.0, 1024), "echo out; echo err >&2; exit 7").unwrap();
    assert_eq!(output.exit_code, Some(7));
    assert_eq!(output.stdout, b"out\n");
    assert_eq!(output.stderr, b"err\n");
}

#[test]
fn a_child_ended_by_a_signal_has_no_exit_code() {
    let output = sh(&policy(10.0, 1024), "echo partial; kill -9 $$").unwrap();
    assert_eq!(output.exit_code, None);
    assert_eq!(output.stdout, b"partial\n");
}

#[test]
fn denied_and_missing_programs_are_told_apart() {
    let policy = policy(10.0, 1024);
    let denied = run(&policy, &["ls".into()], Duration::from_secs(1)).unwrap_err();
    assert!(
        matches!(&denied, CapError::Denied(m) if m.contains("`ls`")),
        "{denied:?}"
    );
    let mut missing = policy.clone();
    missing.commands = vec![vec!["/nonexistent/wif-program".into()]];
    let error = run(
        &missing,
        &["/nonexistent/wif-program".into()],
        Duration::from_secs(1),
    )
    .unwrap_err();
    assert!(matches!(error, CapError::NotFound(_)), "{error:?}");
}

#[test]
fn a_child_past_the_timeout_is_killed_with_the_limit_in_the_error() {
    let (result, took) = timed_sh(&policy(0.3, 1024), "echo started; sleep 30");
    let error = result.unwrap_err();
    assert!(
        matches!(&error, CapError::Timeout(m) if m.contains("did not finish within 300ms")),
        "{error:?}"
    );
    assert!(took < HANG_BOUND, "the call took {took:?}");
}

#[test]
fn a_setsid_grandchild_holding_the_pipes_does_not_extend_the_call() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("escaped.pid");
    let script = format!(
        "setsid sh -c 'echo $$ > {}; exec sleep 30' & sleep 0.3; echo eyJtoken",
        pid_file.display()
    );
    let (result, took) = timed_sh(&policy(2.0, 1024), &script);
    kill_escaped(&pid_file);
    let error = result.unwrap_err();
    assert!(
        matches!(&error, CapError::Timeout(m)
            if m.contains("did not finish within 2s") && m.contains("kept its output open")),
        "{error:?}"
    );
    assert!(took < HANG_BOUND, "the call took {took:?}");
}

#[test]
fn a_background_child_in_the_group_is_killed_when_the_command_exits() {
    let (result, took) = timed_sh(&policy(20.0, 1024), "sleep 30 & echo eyJtoken");
    let output = result.unwrap();
    assert_eq!(output.exit_code, Some(0));
    assert_eq!(output.stdout, b"eyJtoken\n");
    assert!(took < HANG_BOUND, "the call took {took:?}");
}

#[test]
fn output_over_the_cap_is_an_error_without_waiting_for_the_child() {
    let policy = policy(20.0, 1000);
    let (result, took) = timed_sh(&policy, "yes");
    let error = result.unwrap_err();
    assert!(
        matches!(&error, CapError::TooLarge(m) if m.contains("more than 1000 bytes")),
        "{error:?}"
    );
    assert!(took < HANG_BOUND, "the call took {took:?}");
    let error = sh(&policy, "head -c 1001 /dev/zero >&2").unwrap_err();
    assert!(matches!(error, CapError::TooLarge(_)), "{error:?}");
}

#[test]
fn output_of_exactly_the_cap_is_kept_whole() {
    let output = sh(&policy(10.0, 100_000), "head -c 100000 /dev/zero").unwrap();
    assert_eq!(output.exit_code, Some(0));
    assert_eq!(output.stdout.len(), 100_000);
}

#[test]
fn a_child_that_closes_its_output_early_is_still_waited_for() {
    let output = sh(
        &policy(10.0, 1024),
        "echo early; exec >&-; sleep 0.3; echo late >&2; exit 3",
    )
    .unwrap();
    assert_eq!(output.exit_code, Some(3));
    assert_eq!(output.stdout, b"early\n");
    assert_eq!(output.stderr, b"late\n");
}

#[test]
fn a_child_that_closes_its_output_and_keeps_running_times_out() {
    let (result, took) = timed_sh(&policy(0.5, 1024), "exec >&- 2>&-; sleep 30");
    let error = result.unwrap_err();
    assert!(
        matches!(&error, CapError::Timeout(m) if m.contains("did not finish within 500ms")),
        "{error:?}"
    );
    assert!(took < HANG_BOUND, "the call took {took:?}");
}

/// Spawns `sh -c script` as a group leader with piped output.
fn spawn_sh(script: &str) -> std::process::Child {
    Command::new("sh")
        .args(["-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("sh starts")
}

/// Collects a child's output with `watch`, then kills its group and reaps
/// it, as `run` does.
fn collect_with(
    mut child: std::process::Child,
    watch: ExitWatch,
    timeout: Duration,
) -> (Ending, output::Printed, Option<i32>) {
    let pgid = Pid::from_child(&child);
    let (ending, printed) = output::collect(
        child.stdout.take().map(OwnedFd::from),
        child.stderr.take().map(OwnedFd::from),
        watch.fd(),
        || kill_group(pgid),
        &Limits {
            deadline: Instant::now() + timeout,
            cap: 1024,
        },
    );
    kill_group(pgid);
    watch.finish();
    let status = child
        .wait()
        .expect("the watch leaves the child to be reaped");
    (ending, printed, status.code())
}

#[test]
fn the_waiter_thread_watch_collects_like_the_pidfd_one() {
    let child = spawn_sh("echo out; echo err >&2; exit 5");
    let watch = ExitWatch::waiter(Pid::from_child(&child)).unwrap();
    let (ending, printed, code) = collect_with(child, watch, Duration::from_secs(10));
    assert_eq!(ending, Ending::Finished);
    assert_eq!(
        (printed.stdout.as_slice(), printed.stderr.as_slice()),
        (&b"out\n"[..], &b"err\n"[..])
    );
    assert_eq!(code, Some(5));

    let child = spawn_sh("exec >&- 2>&-; sleep 30");
    let watch = ExitWatch::waiter(Pid::from_child(&child)).unwrap();
    let start = Instant::now();
    let (ending, _, code) = collect_with(child, watch, Duration::from_millis(300));
    assert_eq!(ending, Ending::TimedOut { exited: false });
    assert_eq!(code, None, "killed by the group kill");
    assert!(start.elapsed() < HANG_BOUND);
}

#[test]
fn the_default_watch_leaves_the_exit_status_to_the_caller() {
    let child = spawn_sh("exit 4");
    let watch = ExitWatch::start(Pid::from_child(&child)).unwrap();
    let (ending, _, code) = collect_with(child, watch, Duration::from_secs(10));
    assert_eq!(ending, Ending::Finished);
    assert_eq!(code, Some(4));
}

/// Set in the copy of this test binary that runs with `SIGCHLD` ignored.
const IGNORED_SIGCHLD_ENV: &str = "WIF_TEST_SIGCHLD_IGNORED";

/// Runs the test `name` of this binary in a child process that inherits
/// `SIGCHLD` ignored, and checks that it ran and passed.
fn run_with_sigchld_ignored(name: &str) {
    let exe = std::env::current_exe().unwrap();
    let mut command = Command::new(exe);
    command
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(IGNORED_SIGCHLD_ENV, "1")
        .stdin(Stdio::null());
    // SAFETY: signal(2) is async-signal-safe, and this runs in the forked
    // child only, before exec. (rustix has no safe `signal`.)
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGCHLD, libc::SIG_IGN);
            Ok(())
        });
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{:?}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn an_embedding_process_that_ignores_sigchld_gets_an_error_not_a_crash() {
    if std::env::var_os(IGNORED_SIGCHLD_ENV).is_none() {
        run_with_sigchld_ignored(
            "capabilities::command::tests::an_embedding_process_that_ignores_sigchld_gets_an_error_not_a_crash",
        );
        return;
    }
    assert!(super::exit_watch::exit_status_discarded());
    let error = sh(&policy(10.0, 1024), "echo eyJtoken").unwrap_err();
    assert!(
        matches!(&error, CapError::Failed(m) if m.contains("was not run") && m.contains("SIGCHLD")),
        "{error:?}"
    );
}

#[test]
fn a_lost_exit_status_is_an_error_not_a_crash() {
    if std::env::var_os(IGNORED_SIGCHLD_ENV).is_none() {
        run_with_sigchld_ignored(
            "capabilities::command::tests::a_lost_exit_status_is_an_error_not_a_crash",
        );
        return;
    }
    // What `run` does after its check, in a process where the system reaps
    // children itself: both watches see the exit, the reap finds nothing.
    for use_waiter in [false, true] {
        let mut child = spawn_sh("echo eyJtoken");
        let pid = Pid::from_child(&child);
        let watch = if use_waiter {
            ExitWatch::waiter(pid).unwrap()
        } else {
            ExitWatch::start(pid).unwrap()
        };
        let (ending, printed) = output::collect(
            child.stdout.take().map(OwnedFd::from),
            child.stderr.take().map(OwnedFd::from),
            watch.fd(),
            || {},
            &Limits {
                deadline: Instant::now() + Duration::from_secs(10),
                cap: 1024,
            },
        );
        watch.finish();
        assert_eq!(ending, Ending::Finished);
        assert_eq!(printed.stdout, b"eyJtoken\n");
        let lost = child.wait().unwrap_err();
        assert_eq!(
            lost.raw_os_error(),
            Some(rustix::io::Errno::CHILD.raw_os_error())
        );
    }
}
