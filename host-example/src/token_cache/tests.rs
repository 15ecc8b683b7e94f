use super::*;
use crate::private_dir::attacks::{Swapper, chmod, give_to_other_user};

fn token(secret: &str) -> AccessToken {
    AccessToken {
        token: Secret::new(secret),
        token_type: "Bearer",
        expires_at: 2_000,
        refresh_after: 1_880,
        refresh_by: 1_970,
        issued_at: 1_000,
        assertion: AssertionFingerprint::from_hex(&"0f".repeat(32)).unwrap(),
    }
}

fn no_env(_: &str) -> Option<String> {
    None
}

const DERIVED: PolicyInEffect = PolicyInEffect::Derived;

/// The writes, removals and locks of the tests, made through
/// [`TokenCache::entry`] as the provider makes them.
trait ThroughEntry {
    fn store(
        &self,
        config_json: &str,
        policy: PolicyInEffect,
        variables: &[String],
        env: impl Fn(&str) -> Option<String>,
        token: &AccessToken,
    ) -> Result<(), PrivateDirError>;
    fn remove(&self, config_json: &str, policy: PolicyInEffect) -> Result<(), PrivateDirError>;
    fn lock(
        &self,
        config_json: &str,
        policy: PolicyInEffect,
        wait: std::time::Duration,
    ) -> Result<Option<EntryLock>, PrivateDirError>;
}

impl ThroughEntry for TokenCache {
    fn store(
        &self,
        config_json: &str,
        policy: PolicyInEffect,
        variables: &[String],
        env: impl Fn(&str) -> Option<String>,
        token: &AccessToken,
    ) -> Result<(), PrivateDirError> {
        self.entry(config_json, policy)?
            .store(variables, env, token)
    }

    fn remove(&self, config_json: &str, policy: PolicyInEffect) -> Result<(), PrivateDirError> {
        self.entry(config_json, policy)?.remove()
    }

    fn lock(
        &self,
        config_json: &str,
        policy: PolicyInEffect,
        wait: std::time::Duration,
    ) -> Result<Option<EntryLock>, PrivateDirError> {
        self.entry(config_json, policy)?.lock(wait)
    }
}

#[test]
fn a_token_round_trips_per_config() {
    let dir = tempfile::tempdir().unwrap();
    let cache = TokenCache::new(dir.path().join("tokens"));
    assert_eq!(cache.load("{\"a\":1}", DERIVED, no_env).unwrap(), None);
    cache
        .store(
            "{\"a\":1}",
            DERIVED,
            &[],
            no_env,
            &token("sk-ant-oat01-one"),
        )
        .unwrap();
    cache
        .store(
            "{\"a\":2}",
            DERIVED,
            &[],
            no_env,
            &token("sk-ant-oat01-two"),
        )
        .unwrap();
    assert_eq!(
        cache.load("{\"a\":1}", DERIVED, no_env).unwrap(),
        Some(token("sk-ant-oat01-one"))
    );
    assert_eq!(
        cache.load("{\"a\":2}", DERIVED, no_env).unwrap(),
        Some(token("sk-ant-oat01-two"))
    );
}

#[test]
fn a_corrupt_file_is_ignored_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let cache = TokenCache::new(dir.path().join("tokens"));
    cache
        .store("c", DERIVED, &[], no_env, &token("sk-ant-oat01-x"))
        .unwrap();
    let path = cache.path_for("c", DERIVED);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert_eq!(cache.load("c", DERIVED, no_env).unwrap(), None);
    cache
        .store("c", DERIVED, &[], no_env, &token("sk-ant-oat01-y"))
        .unwrap();
    assert_eq!(
        cache.load("c", DERIVED, no_env).unwrap(),
        Some(token("sk-ant-oat01-y"))
    );
}

#[test]
fn another_policy_misses_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = TokenCache::new(dir.path().join("tokens"));
    let wide = Policy::from_toml(
        "[http]\nallow_origins = [\"http://127.0.0.1:1\"]\n[files]\nallow_prefixes = [\"/var/run/\"]\n",
    )
    .unwrap();
    let narrow = Policy::from_toml(
        "[http]\nallow_origins = [\"http://127.0.0.1:1\"]\n[files]\nallow = [\"/var/run/token\"]\n",
    )
    .unwrap();
    let shorter = Policy::from_toml(
        "[http]\nallow_origins = [\"http://127.0.0.1:1\"]\ntimeout_secs = 5\n[files]\nallow_prefixes = [\"/var/run/\"]\n",
    )
    .unwrap();
    cache
        .store(
            "c",
            PolicyInEffect::Given(&wide),
            &[],
            no_env,
            &token("sk-ant-oat01-w"),
        )
        .unwrap();
    assert_eq!(
        cache
            .load("c", PolicyInEffect::Given(&wide), no_env)
            .unwrap(),
        Some(token("sk-ant-oat01-w"))
    );
    for other in [
        PolicyInEffect::Given(&narrow),
        PolicyInEffect::Given(&shorter),
        DERIVED,
    ] {
        assert_eq!(cache.load("c", other, no_env).unwrap(), None, "{other:?}");
    }
}

#[test]
fn other_values_of_the_config_variables_miss_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = TokenCache::new(dir.path().join("tokens"));
    let variables = ["ID_URL".to_string(), "AUDIENCE".to_string()];
    let env = |url: &'static str| {
        move |name: &str| match name {
            "ID_URL" => Some(url.to_string()),
            "AUDIENCE" => Some("the-secret-audience".to_string()),
            _ => None,
        }
    };
    cache
        .store(
            "c",
            DERIVED,
            &variables,
            env("http://a"),
            &token("sk-ant-oat01-a"),
        )
        .unwrap();
    assert_eq!(
        cache.load("c", DERIVED, env("http://a")).unwrap(),
        Some(token("sk-ant-oat01-a"))
    );
    assert_eq!(cache.load("c", DERIVED, env("http://b")).unwrap(), None);
    assert_eq!(cache.load("c", DERIVED, no_env).unwrap(), None);
    let file = std::fs::read_to_string(cache.path_for("c", DERIVED)).unwrap();
    assert!(!file.contains("the-secret-audience") && !file.contains("http://a"));
    assert!(
        file.contains("ID_URL"),
        "names are kept to check the values"
    );
}

fn plant(cache: &TokenCache, config: &str, access_token: &str) {
    let entry = entry_digest(config, DERIVED);
    let stored = Stored {
        binding: binding(&entry, "salt", &[], &no_env),
        variables: Vec::new(),
        salt: "salt".into(),
        access_token: access_token.into(),
        expires_at: 2_000,
        refresh_after: 1_880,
        refresh_by: 1_970,
        issued_at: 1_000,
        assertion_sha256: "0f".repeat(32),
    };
    let dir = PrivateDir::open(cache.dir()).unwrap();
    dir.write_atomically(
        &TokenCache::file_name(config, DERIVED),
        &serde_json::to_vec(&stored).unwrap(),
    )
    .unwrap();
}

#[test]
fn a_stored_token_that_is_not_a_bearer_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cache = TokenCache::new(dir.path().join("tokens"));
    plant(&cache, "c", "sk-ant-oat01-fine");
    assert_eq!(
        cache.load("c", DERIVED, no_env).unwrap(),
        Some(token("sk-ant-oat01-fine"))
    );
    for bad in ["sk-ant-x'; touch /tmp/INJECTED; echo '", "sk-ant\nx", ""] {
        plant(&cache, "c", bad);
        let problem = cache.load("c", DERIVED, no_env).unwrap_err().to_string();
        assert!(
            problem.contains("not an RFC 6750 bearer token"),
            "{problem}"
        );
        assert!(!problem.contains("INJECTED"));
    }
}

/// The attack of the review on `tokens/`: the attacker's `anthropic-wif/`
/// in a shared folder, its own `tokens/` with a token for our config,
/// swapped with ours in a loop.
#[test]
fn a_tokens_folder_swapped_by_another_user_is_never_read_from() {
    let tmp = tempfile::tempdir().unwrap();
    let shared = tmp.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    chmod(&shared, 0o1777);
    let theirs = shared.join("anthropic-wif");
    let victims = TokenCache::new(theirs.join("tokens"));
    std::fs::create_dir_all(victims.dir()).unwrap();
    chmod(victims.dir(), 0o700);
    let attackers = TokenCache::new(theirs.join("planted"));
    plant(&attackers, "c", "sk-ant-oat01-planted");
    let planted_file = attackers.path_for("c", DERIVED);
    for path in [attackers.dir(), planted_file.as_path()] {
        give_to_other_user(path);
    }
    chmod(&theirs, 0o777);
    give_to_other_user(&theirs);
    let swapper = Swapper::start(victims.dir().to_path_buf(), attackers.dir().to_path_buf());
    for _ in 0..2_000 {
        match victims.load("c", DERIVED, no_env) {
            Ok(found) => assert_eq!(found, None, "a token was served from a planted folder"),
            Err(problem) => {
                let problem = problem.to_string();
                assert!(
                    problem.contains("another user") || problem.contains("writable by other users"),
                    "{problem}"
                );
            }
        }
    }
    swapper.stop();
}

#[test]
fn the_fleet_fields_round_trip_and_remove_drops_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let cache = TokenCache::new(dir.path().join("tokens"));
    let mut minted = token("sk-ant-oat01-fleet");
    minted.refresh_by = 1_950;
    minted.issued_at = 900;
    minted.assertion = AssertionFingerprint::from_hex(&"a5".repeat(32)).unwrap();
    cache.store("c", DERIVED, &[], no_env, &minted).unwrap();
    assert_eq!(cache.load("c", DERIVED, no_env).unwrap(), Some(minted));
    let stored = std::fs::read_to_string(cache.path_for("c", DERIVED)).unwrap();
    assert!(stored.contains(&"a5".repeat(32)), "{stored}");
    cache.remove("c", DERIVED).unwrap();
    assert_eq!(cache.load("c", DERIVED, no_env).unwrap(), None);
    cache.remove("c", DERIVED).unwrap();
}

#[test]
fn entries_lock_independently_per_config_and_policy() {
    let dir = tempfile::tempdir().unwrap();
    let cache = TokenCache::new(dir.path().join("tokens"));
    let zero = std::time::Duration::ZERO;
    let held = cache.lock("c", DERIVED, zero).unwrap().expect("free");
    assert!(cache.lock("c", DERIVED, zero).unwrap().is_none());
    assert!(cache.lock("d", DERIVED, zero).unwrap().is_some());
    drop(held);
    assert!(cache.lock("c", DERIVED, zero).unwrap().is_some());
}

#[test]
fn an_entry_whose_times_are_out_of_order_is_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let cache = TokenCache::new(dir.path().join("tokens"));
    let mut minted = token("sk-ant-oat01-disordered");
    minted.refresh_after = u64::MAX;
    cache.store("c", DERIVED, &[], no_env, &minted).unwrap();
    assert_eq!(cache.load("c", DERIVED, no_env).unwrap(), None);
}
