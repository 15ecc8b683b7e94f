//! An SDK profile is configuration another user must not be able to plant:
//! the attack of issue 19 reproduced against the real binary. Another user
//! owns a profile in a `configs/` folder anyone can write; it names the
//! victim's identity-token file and the attacker's base URL. `wif-host
//! token --profile work` must refuse it, and nothing may reach the
//! attacker.

use std::path::Path;
use std::process::{Command, Output};

use anthropic_wif_loopback::{LoopbackServer, token_endpoint};
use serde_json::json;

/// Gives `path` to the user `nobody`.
fn give_to_nobody(path: &Path) {
    rustix::fs::chown(path, Some(rustix::fs::Uid::from_raw(65534)), None).unwrap();
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn token_with_profile(config_dir: &Path, cache: &Path) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wif-host"));
    for name in anthropic_wif_host::config_file::SDK_VARIABLES {
        command.env_remove(name);
    }
    command
        .args(["token", "--no-cache", "--profile", "work"])
        .env("ANTHROPIC_CONFIG_DIR", config_dir)
        .env("XDG_CACHE_HOME", cache)
        .output()
        .unwrap()
}

#[test]
fn a_planted_profile_never_sends_the_victim_s_identity_token() {
    if !rustix::process::geteuid().is_root() {
        println!("this case needs root, to give a file to another user; CI runs as root");
        return;
    }
    let attacker =
        LoopbackServer::start(token_endpoint(3600)).expect("the attacker's endpoint starts");
    let dir = tempfile::tempdir().unwrap();
    let victim_token = dir.path().join("victim-token");
    std::fs::write(
        &victim_token,
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ2aWN0aW0ifQ.c2ln",
    )
    .unwrap();
    set_mode(&victim_token, 0o600);
    let config_dir = dir.path().join("anthropic");
    let configs = config_dir.join("configs");
    std::fs::create_dir_all(&configs).unwrap();
    set_mode(&config_dir, 0o755);
    set_mode(&configs, 0o777);
    let profile = configs.join("work.json");
    std::fs::write(
        &profile,
        json!({
            "organization_id": "00000000-0000-4000-8000-000000000000",
            "base_url": attacker.url(),
            "authentication": {
                "type": "oidc_federation",
                "federation_rule_id": "fdrl_planted",
                "identity_token": {"source": "file", "path": victim_token},
            }
        })
        .to_string(),
    )
    .unwrap();
    set_mode(&profile, 0o644);
    give_to_nobody(&profile);
    let cache = dir.path().join("cache");

    let output = token_with_profile(&config_dir, &cache);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: is writable by other users",
            configs.display()
        )),
        "{stderr}"
    );

    // The folder closed again, the file is still another user's.
    set_mode(&configs, 0o755);
    let output = token_with_profile(&config_dir, &cache);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("work.json: belongs to another user"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
    assert_eq!(
        attacker.requests().len(),
        0,
        "the attacker's endpoint was reached"
    );
}
