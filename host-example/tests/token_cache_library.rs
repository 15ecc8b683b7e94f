//! The persistent token cache through the library
//! (`ProviderBuilder::token_cache`): providers that share the folder make one
//! exchange between them, and an invalidated token leaves the folder.

#![deny(unsafe_code)]

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use anthropic_wif_host::loopback::{LoopbackServer, single_use_token_endpoint};
use anthropic_wif_host::token_cache::{PolicyInEffect, PolicyOrigin, TokenCache};
use anthropic_wif_host::{Policy, Provider};

fn policy(token_file: &Path, server: &LoopbackServer) -> Policy {
    Policy::from_toml(&format!(
        "[files]\nallow = [{:?}]\n[http]\nallow_origins = [{:?}]\n",
        token_file.display().to_string(),
        server.url()
    ))
    .unwrap()
}

/// The config reads no variables.
fn no_env(_: &str) -> Option<String> {
    None
}

fn config(token_file: &Path, server: &LoopbackServer) -> String {
    serde_json::json!({
        "type": "workload_identity_federation",
        "workload_identity_federation": {
            "federation_rule_id": "fdrl_library",
            "organization_id": "00000000-0000-4000-8000-000000000000",
            "base_url": server.url(),
            "identity_token": {"file": token_file},
        }
    })
    .to_string()
}

#[test]
fn four_providers_of_eight_threads_on_one_cache_make_one_exchange() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "eyJ.library.sig").unwrap();
    // Like the real endpoint, and slow enough that every caller arrives
    // while the exchange is in flight.
    let issue = single_use_token_endpoint(3600);
    let server =
        LoopbackServer::start(move |r| issue(r).delayed(Duration::from_millis(200))).unwrap();
    let policy = policy(&token_file, &server);
    let compiled = Provider::builder()
        .policy(policy.clone())
        .token_cache(dir.path().join("tokens"), PolicyOrigin::Given)
        .build()
        .unwrap();
    // Four providers, each with its own instance and in-memory cache (as in
    // four processes), sharing the token cache folder.
    let providers: Vec<Arc<Provider>> = (0..4)
        .map(|_| Arc::new(compiled.with_policy(policy.clone())))
        .collect();
    let config = Arc::new(config(&token_file, &server));
    let barrier = Arc::new(Barrier::new(32));
    let threads: Vec<_> = providers
        .iter()
        .flat_map(|provider| std::iter::repeat_n(provider, 8))
        .map(|provider| {
            let (provider, config, barrier) = (provider.clone(), config.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                provider
                    .get_token(&config)
                    .map(|t| t.token.expose().to_string())
            })
        })
        .collect();
    let tokens: Vec<String> = threads
        .into_iter()
        .map(|t| t.join().unwrap().expect("a token"))
        .collect();
    assert_eq!(tokens.len(), 32);
    assert!(
        tokens.iter().all(|t| t == "sk-ant-oat01-demo-1"),
        "{tokens:?}"
    );
    assert_eq!(server.requests().len(), 1, "exactly one exchange");
}

#[test]
fn an_invalidated_token_leaves_the_cache_and_an_unchanged_file_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "eyJ.library.sig").unwrap();
    let server = LoopbackServer::start(single_use_token_endpoint(3600)).unwrap();
    let policy = policy(&token_file, &server);
    let cache_dir = dir.path().join("tokens");
    let provider = Provider::builder()
        .policy(policy.clone())
        .token_cache(cache_dir.clone(), PolicyOrigin::Given)
        .build()
        .unwrap();
    let config = config(&token_file, &server);
    provider.get_token(&config).unwrap();
    let cache = TokenCache::new(cache_dir);
    assert!(
        cache
            .load(&config, PolicyInEffect::Given(&policy), no_env)
            .unwrap()
            .is_some()
    );

    provider.invalidate(&config).unwrap();
    assert_eq!(
        cache
            .load(&config, PolicyInEffect::Given(&policy), no_env)
            .unwrap(),
        None
    );
    // The file was not rotated: the endpoint refuses it, and the error says
    // why.
    let error = provider.get_token(&config).unwrap_err().to_string();
    assert!(
        error.contains("has not changed since it was last exchanged"),
        "{error}"
    );
    assert!(!error.contains("eyJ.library.sig"), "{error}");
    assert_eq!(server.requests().len(), 2);

    std::fs::write(&token_file, "eyJ.library.rotated").unwrap();
    let token = provider.get_token(&config).unwrap();
    assert_eq!(token.token.expose(), "sk-ant-oat01-demo-2");
    assert_eq!(
        cache
            .load(&config, PolicyInEffect::Given(&policy), no_env)
            .unwrap(),
        Some(token)
    );
}
