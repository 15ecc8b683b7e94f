//! The official Python SDK's cached-token call, measured in the same run
//! (`python_sdk.py`, in a virtual environment of its own under the target
//! folder, with `anthropic` from PyPI), so that the ratio to the host's
//! cached path is taken on one machine at one time.

use super::*;

/// The script that times the SDK.
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/tokens/python_sdk.py");

impl Bench {
    /// The SDK's cached `TokenCache.get_token()` and the ratios to the
    /// host's cached paths (`host_median`: `Client::token`,
    /// `component_median`: through the component). When Python or PyPI is
    /// not available, a note says so and the rows are left out.
    pub(crate) fn python_sdk(
        &self,
        table: &mut Table,
        host_median: f64,
        component_median: f64,
    ) -> anyhow::Result<()> {
        table.section("the official Python SDK, same run");
        let (runs, version) = match sdk_runs() {
            Ok(measured) => measured,
            Err(problem) => {
                table.note(format!("Python SDK rows left out: {problem:#}"));
                return Ok(());
            }
        };
        let stats = Stats::of(runs);
        table.row(
            &format!("anthropic {version}: TokenCache.get_token(), cached"),
            Kind::Time,
            stats,
            Target::none("reference"),
        );
        table.row(
            "Python SDK ÷ Client::token (medians)",
            Kind::Ratio,
            Stats::single(stats.median / host_median),
            Target::none(""),
        );
        table.row(
            "Python SDK ÷ through the component (medians)",
            Kind::Ratio,
            Stats::single(stats.median / component_median),
            Target::none(""),
        );
        Ok(())
    }
}

/// Sets up the virtual environment when needed and runs the script: the
/// per-call times of its runs and the SDK's version.
fn sdk_runs() -> anyhow::Result<(Vec<f64>, String)> {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-sdk-bench");
    let python = venv.join("bin/python");
    if !python.exists() {
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))
            .context("creating the virtual environment")?;
    }
    let installed = Command::new(&python)
        .args(["-c", "import anthropic"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !installed {
        run(Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "anthropic",
        ]))
        .context("installing anthropic from PyPI")?;
    }
    let output = Command::new(&python)
        .arg(SCRIPT)
        .stderr(Stdio::inherit())
        .output()
        .context("running python_sdk.py")?;
    ensure!(
        output.status.success(),
        "python_sdk.py failed ({})",
        output.status
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let mut runs = Vec::new();
    let mut version = String::from("?");
    for line in text.lines() {
        if let Some(ns) = line.strip_prefix("ns_per_call ") {
            runs.push(ns.trim().parse::<f64>().context("python_sdk.py output")?);
        } else if let Some(v) = line.strip_prefix("version ") {
            version = v.trim().to_string();
        }
    }
    ensure!(!runs.is_empty(), "python_sdk.py printed no figure");
    Ok((runs, version))
}

/// Runs `command` quietly; an error when it fails.
fn run(command: &mut Command) -> anyhow::Result<()> {
    let status = command
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()?;
    ensure!(
        status.success(),
        "{:?} failed ({status})",
        command.get_program()
    );
    Ok(())
}
