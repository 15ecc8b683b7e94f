//! `wif-host demo`: the complete flow for all four identity-token sources,
//! against loopback stand-ins for an OIDC identity endpoint and the token
//! endpoint.

use std::time::Instant;

use anthropic_wif_host::policy::Policy;
use anthropic_wif_host::{Provider, Requirements};
use anthropic_wif_loopback::{LoopbackServer, identity_endpoint, token_endpoint};
use serde_json::{Value, json};

use crate::Failure;

/// A made-up identity token (a JWT's shape, no real signature).
const IDENTITY_TOKEN: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2RlbW8iLCJzdWIiOiJkZW1vIn0.ZGVtby1zaWduYXR1cmU";
const REQUEST_TOKEN: &str = "demo-request-token";
const ENV_TOKEN: &str = "WIF_DEMO_IDENTITY_TOKEN";
const ENV_REQUEST_URL: &str = "WIF_DEMO_ID_TOKEN_REQUEST_URL";
const ENV_REQUEST_TOKEN: &str = "WIF_DEMO_ID_TOKEN_REQUEST_TOKEN";

fn failed(message: String) -> Failure {
    Failure::Demo(message)
}

pub(crate) fn run() -> Result<(), Failure> {
    let token_server = LoopbackServer::start(token_endpoint(3600))
        .map_err(|e| failed(format!("token endpoint: {e}")))?;
    let identity_server = LoopbackServer::start(identity_endpoint(IDENTITY_TOKEN, REQUEST_TOKEN))
        .map_err(|e| failed(format!("identity endpoint: {e}")))?;
    println!(
        "token endpoint stand-in:    {}/v1/oauth/token",
        token_server.url()
    );
    println!(
        "identity endpoint stand-in: {}/token",
        identity_server.url()
    );

    let dir = tempfile::tempdir().map_err(|e| failed(format!("temporary folder: {e}")))?;
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{IDENTITY_TOKEN}\n"))
        .map_err(|e| failed(format!("token file: {e}")))?;
    // SAFETY: the only other threads are the loopback servers', which never
    // read or write the environment.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var(ENV_TOKEN, IDENTITY_TOKEN);
        std::env::set_var(
            ENV_REQUEST_URL,
            format!("{}/token?api-version=2.0", identity_server.url()),
        );
        std::env::set_var(ENV_REQUEST_TOKEN, REQUEST_TOKEN);
    }

    let sources = [
        (
            "file (a Kubernetes projected token)",
            json!({"file": token_file.to_string_lossy()}),
        ),
        ("env", json!({"env": ENV_TOKEN})),
        (
            "command (argv, no shell)",
            json!({"command": ["echo", IDENTITY_TOKEN]}),
        ),
        (
            "url (GitHub Actions style)",
            json!({
                "url": format!("${{{ENV_REQUEST_URL}}}&audience=https://api.anthropic.com"),
                "headers": {"Authorization": format!("bearer ${{{ENV_REQUEST_TOKEN}}}")},
                "response_field": "value"
            }),
        ),
    ];
    let configs: Vec<(&str, String)> = sources
        .into_iter()
        .map(|(name, source)| (name, auth_block(&token_server.url(), source)))
        .collect();

    let started = Instant::now();
    let inspector = Provider::builder().build()?;
    let mut all_needs = Requirements::default();
    for (_, config) in &configs {
        let needs = inspector.requirements(config)?;
        all_needs.env.extend(needs.env);
        all_needs.files.extend(needs.files);
        all_needs.origins.extend(needs.origins);
        all_needs.urls.extend(needs.urls);
        all_needs.commands.extend(needs.commands);
    }
    let minimal = Policy::minimal(&all_needs, |name| std::env::var(name).ok());
    println!(
        "\npolicy derived from the four configs' requirements:\n{}",
        indent(&minimal.toml)
    );
    let provider = inspector.with_policy(minimal.policy);
    println!("component loaded and linked in {:.0?}\n", started.elapsed());

    for (name, config) in &configs {
        println!("source: {name}");
        let before = token_server.requests().len();
        let started = Instant::now();
        let token = provider.get_token(config)?;
        let exchanges = token_server.requests().len() - before;
        println!(
            "  1. identity token read, exchanged ({exchanges} POST /v1/oauth/token) in {:.1?}",
            started.elapsed()
        );
        println!(
            "  2. got a {} token {} expiring at {} (refresh after {})",
            token.token_type,
            redacted(token.token.expose()),
            token.expires_at,
            token.refresh_after
        );
        let started = Instant::now();
        provider.get_token(config)?;
        println!(
            "  3. asked again: served from the cache in {:.1?}, {} new exchanges",
            started.elapsed(),
            token_server.requests().len() - before - exchanges
        );
    }

    let identity_calls = identity_server.requests().len();
    println!(
        "\nidentity endpoint calls: {identity_calls}; token endpoint exchanges: {}",
        token_server.requests().len()
    );

    let outside = auth_block(&token_server.url(), json!({"file": "/etc/hostname"}));
    match provider.get_token(&outside) {
        Err(e) => println!("\na file the policy does not grant is refused:\n  {e}"),
        Ok(_) => return Err(failed("a file outside the policy was read".into())),
    }
    Ok(())
}

fn auth_block(base_url: &str, source: Value) -> String {
    json!({
        "type": "workload_identity_federation",
        "workload_identity_federation": {
            "federation_rule_id": "fdrl_demo",
            "organization_id": "00000000-0000-4000-8000-000000000000",
            "base_url": base_url,
            "identity_token": source,
        }
    })
    .to_string()
}

fn redacted(token: &str) -> String {
    let visible: String = token.chars().take(13).collect();
    format!("{visible}…[redacted]")
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}
