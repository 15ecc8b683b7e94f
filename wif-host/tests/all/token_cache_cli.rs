//! `wif-host token` run once per request, as credential helpers are: the
//! token cache on disk spares an exchange per run and fails safe.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anthropic_wif_host::token_cache::{PolicyInEffect, TokenCache};
use anthropic_wif_loopback::{
    LoopbackServer, Recorded, Reply, single_use_token_endpoint, token_endpoint,
};

const JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjYWNoZSJ9.c2ln";

struct Setup {
    _dir: tempfile::TempDir,
    cache_home: PathBuf,
    config: PathBuf,
    server: LoopbackServer,
}

fn setup() -> Setup {
    setup_with(token_endpoint(3600))
}

/// A config whose identity token is a file (never rotated here), against a
/// loopback token endpoint that answers with `endpoint`.
fn setup_with(endpoint: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let server = LoopbackServer::start(endpoint).unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, JWT).unwrap();
    let config = dir.path().join("auth.json");
    let auth = serde_json::json!({
        "type": "workload_identity_federation",
        "workload_identity_federation": {
            "federation_rule_id": "fdrl_cache",
            "organization_id": "00000000-0000-4000-8000-000000000000",
            "base_url": server.url(),
            "identity_token": {"file": token_file},
        }
    });
    std::fs::write(&config, auth.to_string()).unwrap();
    let cache_home = dir.path().join("cache-home");
    Setup {
        cache_home,
        config,
        server,
        _dir: dir,
    }
}

fn run(setup: &Setup, extra: &[&str]) -> Output {
    run_with(setup, extra, &[])
}

fn run_with(setup: &Setup, extra: &[&str], env: &[(&str, &str)]) -> Output {
    wif_host(setup, "token", extra)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn wif_host(setup: &Setup, command: &str, extra: &[&str]) -> Command {
    let mut wif_host = Command::new(env!("CARGO_BIN_EXE_wif-host"));
    wif_host
        .arg(command)
        .arg("--config")
        .arg(&setup.config)
        .args(extra)
        .env("XDG_CACHE_HOME", &setup.cache_home)
        .env("WIF_LOG", "trace");
    wif_host
}

fn token_of(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .trim()
        .to_string()
}

fn token_file(setup: &Setup) -> PathBuf {
    let config = anthropic_wif_host::config_file::resolve(Some(&setup.config), None, |_| None)
        .unwrap()
        .json();
    TokenCache::new(setup.cache_home.join("anthropic-wif/tokens"))
        .path_for(&config, PolicyInEffect::Derived)
}

fn assert_no_token_in(stderr: &[u8], token: &str) {
    let stderr = String::from_utf8_lossy(stderr);
    assert!(
        !stderr.contains(token),
        "the token leaked into the log: {stderr}"
    );
    assert!(
        !stderr.contains(JWT),
        "the identity token leaked into the log: {stderr}"
    );
}

#[test]
fn two_processes_in_a_row_make_one_exchange() {
    let setup = setup();
    let first = run(&setup, &[]);
    let second = run(&setup, &[]);
    assert_eq!(token_of(&first), "sk-ant-oat01-demo-1");
    assert_eq!(token_of(&second), "sk-ant-oat01-demo-1");
    assert_eq!(setup.server.requests().len(), 1);
    let mode = std::fs::metadata(token_file(&setup))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    for output in [&first, &second] {
        assert_no_token_in(&output.stderr, "sk-ant-oat01-demo-1");
    }
}

#[test]
fn no_cache_exchanges_every_time() {
    let setup = setup();
    assert_eq!(
        token_of(&run(&setup, &["--no-cache"])),
        "sk-ant-oat01-demo-1"
    );
    assert_eq!(
        token_of(&run(&setup, &["--no-cache"])),
        "sk-ant-oat01-demo-2"
    );
    assert!(!token_file(&setup).exists());
}

#[track_caller]
fn falls_back_with_a_warning(setup: &Setup, problem: &str) {
    let output = run(setup, &[]);
    assert_eq!(token_of(&output), "sk-ant-oat01-demo-2", "a fresh exchange");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("WARN") && stderr.contains(problem),
        "{stderr}"
    );
    assert_no_token_in(&output.stderr, "sk-ant-oat01-demo-2");
}

#[test]
fn a_cache_file_readable_by_others_is_not_used() {
    let setup = setup();
    token_of(&run(&setup, &[]));
    std::fs::set_permissions(token_file(&setup), std::fs::Permissions::from_mode(0o644)).unwrap();
    falls_back_with_a_warning(&setup, "readable or writable by other users");
}

#[test]
fn a_symlinked_cache_file_is_not_used() {
    let setup = setup();
    token_of(&run(&setup, &[]));
    let path = token_file(&setup);
    let elsewhere = path.with_extension("real");
    std::fs::rename(&path, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
    falls_back_with_a_warning(&setup, "is a symlink");
}

#[test]
fn a_corrupt_cache_file_is_replaced_silently() {
    let setup = setup();
    token_of(&run(&setup, &[]));
    let path: &Path = &token_file(&setup);
    std::fs::write(path, "{\"access_tok").unwrap();
    let output = run(&setup, &[]);
    assert_eq!(token_of(&output), "sk-ant-oat01-demo-2");
    assert!(!String::from_utf8_lossy(&output.stderr).contains("WARN"));
    assert_eq!(
        token_of(&run(&setup, &[])),
        "sk-ant-oat01-demo-2",
        "the replacement is used"
    );
    assert_eq!(setup.server.requests().len(), 2);
}

#[test]
fn ten_runs_in_a_row_with_90_s_tokens_make_one_exchange() {
    let setup = setup_with(single_use_token_endpoint(90));
    let tokens: Vec<String> = (0..10).map(|_| token_of(&run(&setup, &[]))).collect();
    assert!(
        tokens.iter().all(|t| t == "sk-ant-oat01-demo-1"),
        "{tokens:?}"
    );
    assert_eq!(setup.server.requests().len(), 1);
}

#[test]
fn eight_processes_at_once_with_an_empty_cache_make_one_exchange() {
    // An endpoint like the real one: the file's assertion works once.
    let setup = setup_with(single_use_token_endpoint(3600));
    // Compile the component into the cache first, so that the eight race
    // for the token rather than for the compiler.
    let check = wif_host(&setup, "check", &[]).output().unwrap();
    assert!(check.status.success(), "{check:?}");
    let children: Vec<_> = (0..8)
        .map(|_| {
            wif_host(&setup, "token", &[])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|child| child.wait_with_output().unwrap())
        .collect();
    let tokens: Vec<String> = outputs.iter().map(token_of).collect();
    assert!(
        tokens.iter().all(|t| t == "sk-ant-oat01-demo-1"),
        "{tokens:?}"
    );
    assert_eq!(setup.server.requests().len(), 1, "exactly one exchange");
    for output in &outputs {
        assert_no_token_in(&output.stderr, "sk-ant-oat01-demo-1");
    }
    let lock = token_file(&setup).with_extension("lock");
    assert_eq!(
        std::fs::metadata(lock).unwrap().len(),
        0,
        "nothing in the lock file"
    );
}

#[test]
fn a_shared_sticky_cache_home_is_refused_and_the_run_goes_on() {
    let mut setup = setup();
    let shared = setup.cache_home.with_file_name("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    setup.cache_home = shared.clone();
    for expected in ["sk-ant-oat01-demo-1", "sk-ant-oat01-demo-2"] {
        let output = run(&setup, &[]);
        assert_eq!(token_of(&output), expected, "a fresh exchange, no cache");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("WARN")).collect();
        assert_eq!(warnings.len(), 1, "{stderr}");
        assert!(
            warnings[0].contains("is a shared folder") && warnings[0].contains("without the cache"),
            "{stderr}"
        );
    }
    assert_eq!(
        std::fs::read_dir(&shared).unwrap().count(),
        0,
        "nothing made in the shared folder"
    );
}

#[test]
fn a_cache_folder_planted_by_another_user_is_refused() {
    let setup = setup();
    let planted = setup.cache_home.join("anthropic-wif");
    std::fs::create_dir_all(&planted).unwrap();
    if rustix::process::geteuid().is_root() {
        std::os::unix::fs::chown(&planted, Some(65534), Some(65534)).unwrap();
    } else {
        std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let output = run(&setup, &[]);
    assert_eq!(token_of(&output), "sk-ant-oat01-demo-1");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cache folder refused")
            && (stderr.contains("belongs to another user")
                || stderr.contains("writable by other users")),
        "{stderr}"
    );
    assert!(!planted.join("tokens").exists() && !planted.join("compiled").exists());
}

#[test]
fn another_policy_misses_the_cache() {
    let setup = setup();
    let dir = setup.config.parent().unwrap();
    let policy = |name: &str, extra: &str| {
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!(
                "[files]\nallow = [{}]\n[http]\nallow_origins = [\"{}\"]\n{extra}",
                toml_string(&dir.join("token")),
                setup.server.url()
            ),
        )
        .unwrap();
        path.to_string_lossy().into_owned()
    };
    let wide = policy("wide.toml", "timeout_secs = 30\n");
    let tight = policy("tight.toml", "timeout_secs = 5\n");
    let with = |policy: &str| token_of(&run(&setup, &["--policy", policy]));
    assert_eq!(with(&wide), "sk-ant-oat01-demo-1");
    assert_eq!(with(&wide), "sk-ant-oat01-demo-1", "the same policy hits");
    assert_eq!(
        with(&tight),
        "sk-ant-oat01-demo-2",
        "a changed policy misses"
    );
    assert_eq!(
        token_of(&run(&setup, &[])),
        "sk-ant-oat01-demo-3",
        "the derived policy is another policy"
    );
    assert_eq!(setup.server.requests().len(), 3);
}

fn toml_string(path: &Path) -> String {
    format!("{:?}", path.to_string_lossy())
}

#[test]
fn another_value_of_a_variable_the_config_reads_misses_the_cache() {
    let setup = setup();
    let auth = serde_json::json!({
        "type": "workload_identity_federation",
        "workload_identity_federation": {
            "federation_rule_id": "fdrl_cache",
            "organization_id": "00000000-0000-4000-8000-000000000000",
            "base_url": setup.server.url(),
            "identity_token": {"env": "WIF_TEST_IDENTITY"},
        }
    });
    std::fs::write(&setup.config, auth.to_string()).unwrap();
    let other_jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJvdGhlciJ9.c2ln";
    let with =
        |identity: &str| token_of(&run_with(&setup, &[], &[("WIF_TEST_IDENTITY", identity)]));
    assert_eq!(with(JWT), "sk-ant-oat01-demo-1");
    assert_eq!(with(JWT), "sk-ant-oat01-demo-1", "the same identity hits");
    assert_eq!(
        with(other_jwt),
        "sk-ant-oat01-demo-2",
        "another identity misses"
    );
    let cached = std::fs::read_dir(setup.cache_home.join("anthropic-wif/tokens"))
        .unwrap()
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .collect::<String>();
    assert!(
        !cached.contains(JWT) && !cached.contains(other_jwt),
        "variable values are hashed, never stored"
    );
    assert_eq!(setup.server.requests().len(), 2);
}
