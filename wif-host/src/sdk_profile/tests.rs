use std::collections::HashMap;

use serde_json::{Value, json};

use super::*;
use crate::sdk_profile::input::Input;
use anthropic_wif_host::{AccessToken, AssertionFingerprint, Secret};

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

fn write_profile(dir: &Path, name: &str, document: &Value) {
    let path = config_path(dir, name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, document.to_string()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

fn federation_profile(rule: &str) -> Value {
    json!({
        "version": "1.0",
        "organization_id": "00000000-0000-4000-8000-000000000000",
        "workspace_id": "wrkspc_01",
        "base_url": "https://api.example.test/",
        "authentication": {
            "type": "oidc_federation",
            "federation_rule_id": rule,
            "service_account_id": "svac_01",
            "identity_token": {"source": "file", "path": "/var/run/token"},
            "credentials_path": "/elsewhere/ignored.json"
        }
    })
}

fn auth(input: &Input) -> Value {
    input.auth.auth.clone()
}

fn dir_env(dir: &Path) -> Vec<(&'static str, String)> {
    vec![(ENV_CONFIG_DIR, dir.display().to_string())]
}

fn resolve_with(profile: Option<&str>, pairs: &[(&str, String)]) -> Result<Input, ProfileError> {
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    resolve_input(None, None, profile, env_of(&pairs))
}

#[test]
fn names_the_sdks_refuse_are_refused() {
    for bad in ["", ".hidden", "a/b", "a\\b", "nul\0", " padded", ".."] {
        let error = validate_name(bad, "--profile").unwrap_err();
        assert!(
            error.to_string().starts_with("--profile "),
            "{bad:?}: {error}"
        );
    }
    for good in ["default", "prod-eu", "ci_1", "a.b"] {
        validate_name(good, "--profile").unwrap();
    }
}

#[test]
fn the_config_folder_is_the_variable_else_under_home() {
    let dir = config_dir(&env_of(&[(ENV_CONFIG_DIR, "/cfg"), ("HOME", "/home/u")])).unwrap();
    assert_eq!(dir, PathBuf::from("/cfg"));
    if !cfg!(windows) {
        let dir = config_dir(&env_of(&[(ENV_CONFIG_DIR, ""), ("HOME", "/home/u")])).unwrap();
        assert_eq!(dir, PathBuf::from("/home/u/.config/anthropic"));
        assert!(matches!(
            config_dir(&env_of(&[])),
            Err(ProfileError::NoConfigDir)
        ));
    }
}

#[test]
fn an_oidc_federation_profile_becomes_an_auth_block() {
    let dir = tempfile::tempdir().unwrap();
    write_profile(dir.path(), "prod", &federation_profile("fdrl_prod"));
    let input = resolve_with(Some("prod"), &dir_env(dir.path())).unwrap();
    assert_eq!(
        input.origin,
        Origin::Profile(config_path(dir.path(), "prod"))
    );
    assert_eq!(
        auth(&input),
        json!({"type": "workload_identity_federation", "workload_identity_federation": {
            "federation_rule_id": "fdrl_prod",
            "organization_id": "00000000-0000-4000-8000-000000000000",
            "service_account_id": "svac_01",
            "workspace_id": "wrkspc_01",
            "base_url": "https://api.example.test",
            "identity_token": {"file": "/var/run/token"}
        }})
    );
}

#[test]
fn empty_profile_fields_are_filled_from_the_sdk_variables() {
    let dir = tempfile::tempdir().unwrap();
    write_profile(
        dir.path(),
        "sparse",
        &json!({"organization_id": "", "authentication": {"type": "oidc_federation", "identity_token": {}}}),
    );
    let mut env = dir_env(dir.path());
    env.extend([
        ("ANTHROPIC_FEDERATION_RULE_ID", "fdrl_env".to_string()),
        ("ANTHROPIC_ORGANIZATION_ID", "org-env".to_string()),
        ("ANTHROPIC_IDENTITY_TOKEN_FILE", "/env/token".to_string()),
        ("ANTHROPIC_BASE_URL", "https://env.example.test".to_string()),
    ]);
    let wif =
        auth(&resolve_with(Some("sparse"), &env).unwrap())["workload_identity_federation"].clone();
    assert_eq!(wif["federation_rule_id"], "fdrl_env");
    assert_eq!(wif["organization_id"], "org-env");
    assert_eq!(wif["identity_token"], json!({"file": "/env/token"}));
    assert_eq!(wif["base_url"], "https://env.example.test");
}

#[test]
fn the_profile_wins_over_the_variables_it_sets() {
    let dir = tempfile::tempdir().unwrap();
    write_profile(dir.path(), "prod", &federation_profile("fdrl_file"));
    let mut env = dir_env(dir.path());
    env.push(("ANTHROPIC_FEDERATION_RULE_ID", "fdrl_env".to_string()));
    env.push(("ANTHROPIC_PROFILE", "prod".to_string()));
    let wif = auth(&resolve_with(None, &env).unwrap())["workload_identity_federation"].clone();
    assert_eq!(wif["federation_rule_id"], "fdrl_file");
}

#[test]
fn the_sdk_order_is_explicit_profile_then_variables_then_active_profile() {
    let dir = tempfile::tempdir().unwrap();
    write_profile(dir.path(), "named", &federation_profile("fdrl_named"));
    write_profile(dir.path(), "pointed", &federation_profile("fdrl_pointed"));
    write_profile(dir.path(), "default", &federation_profile("fdrl_default"));
    let rule =
        |input: Input| auth(&input)["workload_identity_federation"]["federation_rule_id"].clone();
    let variables = [
        ("ANTHROPIC_FEDERATION_RULE_ID", "fdrl_vars".to_string()),
        ("ANTHROPIC_ORGANIZATION_ID", "org".to_string()),
        ("ANTHROPIC_IDENTITY_TOKEN_FILE", "/t".to_string()),
    ];
    let mut env = dir_env(dir.path());
    assert_eq!(rule(resolve_with(None, &env).unwrap()), "fdrl_default");
    std::fs::write(dir.path().join(ACTIVE_CONFIG_FILE), "pointed\n").unwrap();
    assert_eq!(rule(resolve_with(None, &env).unwrap()), "fdrl_pointed");
    env.extend(variables.iter().cloned());
    let from_variables = resolve_with(None, &env).unwrap();
    assert_eq!(from_variables.origin, Origin::Environment);
    assert_eq!(rule(from_variables), "fdrl_vars");
    env.push((ENV_PROFILE, "named".to_string()));
    assert_eq!(rule(resolve_with(None, &env).unwrap()), "fdrl_named");
    assert_eq!(
        rule(resolve_with(Some("default"), &env).unwrap()),
        "fdrl_default"
    );
}

#[test]
fn without_anything_configured_the_error_names_the_ways_to_configure() {
    let home = tempfile::tempdir().unwrap();
    let error = resolve_with(None, &[("HOME", home.path().display().to_string())]).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("--profile NAME"), "{message}");
    assert!(
        message.contains("ANTHROPIC_FEDERATION_RULE_ID is not set"),
        "{message}"
    );
}

#[test]
fn a_missing_profile_is_an_error_when_the_folder_is_configured() {
    let dir = tempfile::tempdir().unwrap();
    let message = resolve_with(None, &dir_env(dir.path()))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("profile \"default\" does not exist"),
        "{message}"
    );
    let message = resolve_with(Some("nope"), &dir_env(dir.path()))
        .unwrap_err()
        .to_string();
    assert!(message.contains("nope.json"), "{message}");
}

#[test]
fn bad_names_from_the_variable_or_the_pointer_file_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = dir_env(dir.path());
    std::fs::write(dir.path().join(ACTIVE_CONFIG_FILE), "../escape").unwrap();
    let message = resolve_with(None, &env).unwrap_err().to_string();
    assert!(message.contains("active_config"), "{message}");
    env.push((ENV_PROFILE, ".secret".to_string()));
    let message = resolve_with(None, &env).unwrap_err().to_string();
    assert!(message.starts_with("ANTHROPIC_PROFILE"), "{message}");
}

#[test]
fn a_user_oauth_profile_is_a_sidecar_output_not_an_input() {
    let dir = tempfile::tempdir().unwrap();
    write_profile(
        dir.path(),
        "synced",
        &json!({"authentication": {"type": "user_oauth"}}),
    );
    let message = resolve_with(Some("synced"), &dir_env(dir.path()))
        .unwrap_err()
        .to_string();
    assert!(message.contains("user_oauth"), "{message}");
    assert!(message.contains("output of a sidecar"), "{message}");
    assert!(message.contains("not an input"), "{message}");
}

#[test]
fn profile_shapes_that_cannot_be_honoured_are_refused_with_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            json!({"authentication": {"type": "oidc_federation", "federation_rule_id": "r", "scope": "narrow",
            "identity_token": {"source": "file", "path": "/t"}}, "organization_id": "o"}),
            "authentication.scope",
        ),
        (
            json!({"authentication": {"type": "oidc_federation", "federation_rule_id": "r",
            "identity_token": {"source": "url", "path": "/t"}}, "organization_id": "o"}),
            "identity_token.source",
        ),
        (
            json!({"authentication": {"type": "oidc_federation", "federation_rule_id": "r",
            "identity_token": {"source": "file"}}, "organization_id": "o"}),
            "identity_token.path",
        ),
        (
            json!({"authentication": {"type": "oidc_federation", "identity_token": {"source": "file", "path": "/t"}},
            "organization_id": "o"}),
            "federation_rule_id is missing",
        ),
        (
            json!({"authentication": {"type": "oidc_federation", "federation_rule_id": "r"}, "organization_id": "o"}),
            "identity_token is missing",
        ),
        (
            json!({"authentication": {"type": "oidc_federation", "federation_rule_id": 7,
            "identity_token": {"source": "file", "path": "/t"}}, "organization_id": "o"}),
            "must be a string",
        ),
        (
            json!({"authentication": {"type": "api_key"}}),
            "\"api_key\" is not supported",
        ),
        (
            json!({"organization_id": "o"}),
            "no `authentication` object",
        ),
        (json!(["not", "an", "object"]), "JSON object"),
    ];
    for (i, (document, expected)) in cases.iter().enumerate() {
        let name = format!("case{i}");
        write_profile(dir.path(), &name, document);
        let message = resolve_with(Some(&name), &dir_env(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(message.contains(expected), "case {i}: {message}");
        assert!(
            message.contains(&format!("{name}.json")),
            "case {i}: {message}"
        );
    }
}

#[test]
fn a_group_writable_profile_is_refused_as_the_sdks_refuse_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    write_profile(dir.path(), "open", &federation_profile("r"));
    let path = config_path(dir.path(), "open");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o664)).unwrap();
    let message = resolve_with(Some("open"), &dir_env(dir.path()))
        .unwrap_err()
        .to_string();
    assert!(message.contains("writable by group or others"), "{message}");
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// What reading the profile `work` of `dir` says, when it fails.
fn refusal(dir: &Path) -> String {
    match resolve_with(Some("work"), &dir_env(dir)) {
        Ok(_) => "accepted".into(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_profile_is_trusted_only_when_nobody_else_can_change_it_or_its_folders() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("anthropic");
    write_profile(&root, "work", &federation_profile("fdrl_01"));
    let configs = root.join("configs");
    set_mode(&root, 0o755);
    set_mode(&configs, 0o755);
    // Readable by others is fine: a profile holds no secret.
    assert_eq!(refusal(&root), "accepted");

    set_mode(&configs, 0o777);
    let message = refusal(&root);
    assert!(
        message.contains(&format!(
            "{}: is writable by other users",
            configs.display()
        )) && message.contains("refusing to read it"),
        "{message}"
    );
    set_mode(&configs, 0o755);

    set_mode(&root, 0o775);
    let message = refusal(&root);
    assert!(
        message.contains(&format!("{}: is writable by other users", root.display())),
        "{message}"
    );
    set_mode(&root, 0o755);

    let profile = config_path(&root, "work");
    let real = configs.join("real.json");
    std::fs::rename(&profile, &real).unwrap();
    std::os::unix::fs::symlink(&real, &profile).unwrap();
    let message = refusal(&root);
    assert!(message.contains("work.json: is a symlink"), "{message}");
    std::fs::remove_file(&profile).unwrap();
    std::fs::rename(&real, &profile).unwrap();

    let elsewhere = dir.path().join("elsewhere");
    std::fs::rename(&configs, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &configs).unwrap();
    let message = refusal(&root);
    assert!(message.contains("configs: is a symlink"), "{message}");
}

#[test]
fn a_profile_of_another_user_is_refused() {
    if !rustix::process::geteuid().is_root() {
        println!("this case needs root, to give a file to another user; CI runs as root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write_profile(dir.path(), "work", &federation_profile("fdrl_01"));
    let nobody = Some(rustix::fs::Uid::from_raw(65534));
    rustix::fs::chown(config_path(dir.path(), "work"), nobody, None).unwrap();
    let message = refusal(dir.path());
    assert!(
        message.contains("work.json: belongs to another user"),
        "{message}"
    );

    // The file pointing at the active profile is held to the same rule.
    std::fs::write(dir.path().join(ACTIVE_CONFIG_FILE), "work").unwrap();
    rustix::fs::chown(dir.path().join(ACTIVE_CONFIG_FILE), nobody, None).unwrap();
    let message = active_config(dir.path()).unwrap_err().to_string();
    assert!(
        message.contains("active_config: belongs to another user"),
        "{message}"
    );
}

#[test]
fn an_active_config_others_can_write_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pointer = dir.path().join(ACTIVE_CONFIG_FILE);
    std::fs::write(&pointer, "work").unwrap();
    set_mode(&pointer, 0o644);
    assert_eq!(active_config(dir.path()).unwrap(), Some("work".into()));
    set_mode(&pointer, 0o646);
    let message = active_config(dir.path()).unwrap_err().to_string();
    assert!(
        message.contains("is writable by group or others"),
        "{message}"
    );
    set_mode(&pointer, 0o644);
    set_mode(dir.path(), 0o777);
    let message = active_config(dir.path()).unwrap_err().to_string();
    assert!(message.contains("is writable by other users"), "{message}");
}

fn token(value: &str, expires_at: u64) -> AccessToken {
    AccessToken {
        token: Secret::new(value),
        token_type: "Bearer",
        expires_at,
        refresh_after: expires_at - 60,
        refresh_by: expires_at - 30,
        issued_at: expires_at - 3600,
        assertion: AssertionFingerprint::from_hex(&"0f".repeat(32)).unwrap(),
    }
}

const AUTH: &str = r#"{"type":"workload_identity_federation","workload_identity_federation":{
    "federation_rule_id":"r","organization_id":"org-1","workspace_id":"ws-1",
    "base_url":"http://127.0.0.1:9/","identity_token":{"file":"/t"}}}"#;

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn prepare_writes_a_user_oauth_profile_and_private_folders() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("sdk");
    let writer = ProfileWriter::new(dir.clone(), "wif").unwrap();
    writer.prepare(AUTH).unwrap();
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(writer.config_path()).unwrap()).unwrap();
    assert_eq!(
        written,
        json!({"version": "1.0", "authentication": {"type": "user_oauth"},
            "base_url": "http://127.0.0.1:9", "organization_id": "org-1", "workspace_id": "ws-1"})
    );
    assert_eq!(mode(&writer.config_path()), 0o644);
    assert_eq!(mode(&dir.join("credentials")), 0o700);
    assert_eq!(mode(&dir.join("configs")) & 0o022, 0);
    writer
        .write_token(&token("sk-ant-oat01-first", 1_900_000_000))
        .unwrap();
    let credentials: Value =
        serde_json::from_str(&std::fs::read_to_string(writer.credentials_path()).unwrap()).unwrap();
    assert_eq!(
        credentials,
        json!({"version": "1.0", "type": "oauth_token", "access_token": "sk-ant-oat01-first",
            "expires_at": 1_900_000_000u64})
    );
    assert_eq!(mode(&writer.credentials_path()), 0o600);
    writer
        .write_token(&token("sk-ant-oat01-second", 1_900_000_100))
        .unwrap();
    let text = std::fs::read_to_string(writer.credentials_path()).unwrap();
    assert!(text.contains("second") && !text.contains("first"), "{text}");
    let leftovers: Vec<_> = std::fs::read_dir(dir.join("credentials"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["wif.json"]);
}

#[test]
fn an_existing_compatible_profile_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let document = json!({"authentication": {"type": "user_oauth"}, "organization_id": "org-1",
        "base_url": "http://127.0.0.1:9", "note": "kept"});
    write_profile(dir.path(), "wif", &document);
    let before = std::fs::read(config_path(dir.path(), "wif")).unwrap();
    ProfileWriter::new(dir.path().to_path_buf(), "wif")
        .unwrap()
        .prepare(AUTH)
        .unwrap();
    assert_eq!(
        std::fs::read(config_path(dir.path(), "wif")).unwrap(),
        before
    );
}

#[test]
fn an_existing_contradicting_profile_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            federation_profile("r"),
            "authentication.type is \"oidc_federation\"",
        ),
        (
            json!({"authentication": {"type": "user_oauth", "client_id": "cli"}}),
            "client_id",
        ),
        (
            json!({"authentication": {"type": "user_oauth"}, "organization_id": "org-2"}),
            "organization_id",
        ),
        (
            json!({"authentication": {"type": "user_oauth"}, "base_url": "https://api.anthropic.com"}),
            "base_url",
        ),
        (
            json!({"authentication": {"type": "user_oauth", "credentials_path": "/tmp/other.json"}}),
            "credentials_path",
        ),
    ];
    for (i, (document, expected)) in cases.iter().enumerate() {
        let name = format!("case{i}");
        write_profile(dir.path(), &name, document);
        let error = ProfileWriter::new(dir.path().to_path_buf(), &name)
            .unwrap()
            .prepare(AUTH)
            .unwrap_err()
            .to_string();
        assert!(error.contains(expected), "case {i}: {error}");
        assert!(
            error.contains("pick another --profile"),
            "case {i}: {error}"
        );
    }
}

#[test]
fn symlinks_and_open_folders_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("sdk");
    let writer = ProfileWriter::new(dir.clone(), "wif").unwrap();
    writer.prepare(AUTH).unwrap();
    let target = root.path().join("elsewhere.json");
    std::fs::write(&target, "{}").unwrap();
    std::os::unix::fs::symlink(&target, writer.credentials_path()).unwrap();
    let error = writer
        .write_token(&token("sk-ant-oat01-x", 2_000_000_000))
        .unwrap_err();
    assert!(error.to_string().contains("is a symlink"), "{error}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "{}");

    let open = root.path().join("open");
    std::fs::create_dir_all(open.join("credentials")).unwrap();
    std::fs::set_permissions(
        open.join("credentials"),
        std::fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    let error = ProfileWriter::new(open, "wif")
        .unwrap()
        .prepare(AUTH)
        .unwrap_err();
    assert!(
        error.to_string().contains("writable by other users"),
        "{error}"
    );

    let linked = root.path().join("linked");
    std::os::unix::fs::symlink(&dir, &linked).unwrap();
    let error = ProfileWriter::new(linked, "wif")
        .unwrap()
        .prepare(AUTH)
        .unwrap_err();
    assert!(error.to_string().contains("is a symlink"), "{error}");
}

#[test]
fn the_input_profile_cannot_be_the_output() {
    let dir = tempfile::tempdir().unwrap();
    write_profile(dir.path(), "wif", &federation_profile("r"));
    let writer = ProfileWriter::new(dir.path().to_path_buf(), "wif").unwrap();
    let error = writer
        .refuse_as_input(&Origin::Profile(config_path(dir.path(), "wif")))
        .unwrap_err();
    assert!(
        error.to_string().contains("sync into another --profile"),
        "{error}"
    );
    writer
        .refuse_as_input(&Origin::Profile(config_path(dir.path(), "other")))
        .unwrap();
    writer.refuse_as_input(&Origin::Environment).unwrap();
}
