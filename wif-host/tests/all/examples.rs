//! Every example under `examples/` is valid: `wif-host check` accepts each
//! config and each policy parses.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Each setting has a folder with `auth.yaml` and `policy.toml`, and a model
/// of the same name in `walkthrough.yaml`.
const SETTINGS: [&str; 9] = [
    "kubernetes",
    "github-actions",
    "gcloud",
    "spiffe",
    "metadata",
    "ci-env",
    "aws",
    "azure",
    "okta",
];

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn check(config: &Path, model: Option<&str>) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wif-host"));
    command.arg("check").arg("--config").arg(config);
    if let Some(model) = model {
        command.args(["--model", model]);
    }
    let out = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}: {}",
        config.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("config is valid"), "{stdout}");
    stdout
}

#[test]
fn every_example_config_passes_check_and_every_policy_parses() {
    let mut seen = 0;
    for entry in std::fs::read_dir(examples()).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        check(&dir.join("auth.yaml"), None);
        anthropic_wif_host::Policy::from_file(&dir.join("policy.toml"))
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        seen += 1;
    }
    assert_eq!(seen, SETTINGS.len(), "one folder per setting: {SETTINGS:?}");
}

#[test]
fn every_walkthrough_model_passes_check() {
    for name in SETTINGS {
        check(&examples().join("walkthrough.yaml"), Some(name));
    }
}

#[test]
fn the_agent_config_example_resolves_each_model() {
    let config = examples().join("agent-config.yaml");
    let batch = check(&config, Some("claude-batch"));
    assert!(batch.contains("https://llm-gateway.example.com"), "{batch}");
    let interactive = check(&config, Some("claude-interactive"));
    assert!(
        interactive.contains("/var/run/secrets/anthropic.com/token"),
        "{interactive}"
    );
}

#[test]
fn every_example_policy_grants_what_its_config_and_walkthrough_model_require() {
    let provider = anthropic_wif_host::Provider::builder().build().unwrap();
    let walkthrough = examples().join("walkthrough.yaml");
    let configs = SETTINGS.iter().flat_map(|name| {
        let dir = examples().join(name);
        [
            (
                name,
                anthropic_wif_host::config_file::resolve(
                    Some(&dir.join("auth.yaml")),
                    None,
                    |_| None,
                )
                .unwrap()
                .json(),
            ),
            (
                name,
                anthropic_wif_host::config_file::resolve(Some(&walkthrough), Some(name), |_| None)
                    .unwrap()
                    .json(),
            ),
        ]
    });
    for (name, config) in configs {
        let dir = examples().join(name);
        let needs = provider.requirements(&config).unwrap();
        let policy = anthropic_wif_host::Policy::from_file(&dir.join("policy.toml")).unwrap();
        for var in needs.env.iter().chain(&needs.optional_env) {
            assert!(policy.allows_env(var), "{name}: {var}");
        }
        // A file a variable names is granted where the variable is set.
        let files = needs.files.iter().filter(|file| !file.starts_with("${"));
        for file in files {
            assert!(
                policy.allows_file_lexically(Path::new(file)),
                "{name}: {file}"
            );
        }
        for origin in &needs.origins {
            let url = url_origin(origin);
            assert!(policy.allows_origin(&url), "{name}: {origin}");
        }
        for argv in &needs.commands {
            assert!(policy.allows_command(argv), "{name}: {argv:?}");
        }
    }
}

fn url_origin(origin: &str) -> anthropic_wif_host::policy::Origin {
    anthropic_wif_host::policy::parse_origin(origin, "test").unwrap()
}
