//! The embedded component itself: its world is exactly the contract, it is
//! small, and a trap surfaces as an error after which a fresh instance works.

use std::collections::BTreeSet;

use anthropic_wif_host::{EMBEDDED_COMPONENT, Error, Provider};
use anthropic_wif_test_support::*;
use serde_json::json;
use wasmparser::{Parser, Payload};

/// The top-level import and export names of a component.
fn world_of(bytes: &[u8]) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut imports, mut exports) = (BTreeSet::new(), BTreeSet::new());
    // Nested modules and components each open with a version and close with
    // an end; the top level is depth 1.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.expect("the component parses") {
            Payload::Version { .. } => depth += 1,
            Payload::End(_) => depth -= 1,
            Payload::ComponentImportSection(section) if depth == 1 => {
                for import in section {
                    imports.insert(import.expect("an import").name.name.to_string());
                }
            }
            Payload::ComponentExportSection(section) if depth == 1 => {
                for export in section {
                    exports.insert(export.expect("an export").name.name.to_string());
                }
            }
            _ => {}
        }
    }
    assert_eq!(depth, 0, "the component ends where it should");
    (imports, exports)
}

#[test]
fn imports_and_exports_are_exactly_the_contract() {
    let (imports, exports) = world_of(EMBEDDED_COMPONENT);

    assert_eq!(
        imports,
        BTreeSet::from([
            "anthropic-wif:federation/capabilities@0.3.0".to_string(),
            "wasi:clocks/wall-clock@0.2.12".to_string(),
        ])
    );
    assert_eq!(
        exports,
        BTreeSet::from(["anthropic-wif:federation/provider@0.3.0".to_string()])
    );
}

#[test]
fn identity_token_is_the_sources_assertion_read_under_the_policy_and_not_exchanged() {
    let tokens = token_server();
    let files = Files::new();
    let path = files.write("token", JWT);
    let config = config(&tokens.url(), json!({ "file": path }));
    let granted = Provider::builder()
        .policy(file_policy(&[&path], &[&tokens.url()]))
        .build()
        .unwrap();

    assert_eq!(granted.identity_token(&config).unwrap().expose(), JWT);
    assert!(exchanges(&tokens).is_empty());
    let stingy = granted.with_policy(file_policy(&[], &[&tokens.url()]));
    assert!(matches!(
        stingy.identity_token(&config),
        Err(Error::Denied { .. })
    ));
    // Reading it did not count as an exchange: the first one succeeds.
    granted.get_token(&config).unwrap();
    assert_eq!(exchanges(&tokens).len(), 1);
}

#[test]
fn the_component_is_at_most_400_kib() {
    let size = EMBEDDED_COMPONENT.len();
    println!(
        "embedded component: {size} bytes ({:.1} KiB)",
        size as f64 / 1024.0
    );
    assert!(size <= 400 * 1024, "the component is {size} bytes");
    assert!(size > 0);
}

#[test]
fn a_trap_is_an_error_and_the_next_call_gets_a_fresh_instance() {
    let tokens = token_server();
    let files = Files::new();
    let path = files.write("token", JWT);
    let provider = Provider::builder()
        .policy(file_policy(&[&path], &[&tokens.url()]))
        .memory_limit(2 * 1024 * 1024)
        .build()
        .unwrap();
    let config = config(&tokens.url(), json!({ "file": path }));
    // A config the guest cannot even receive under a 2 MiB memory cap: the
    // canonical ABI's allocation in the guest fails and traps.
    let huge = format!("{}{}", " ".repeat(4 * 1024 * 1024), config);

    let error = provider.get_token(&huge).unwrap_err();

    let Error::Component(message) = &error else {
        panic!("expected a component failure, got {error:?}");
    };
    assert!(!message.is_empty());
    assert!(exchanges(&tokens).is_empty());
    let token = provider
        .get_token(&config)
        .expect("a fresh instance serves the next call");
    assert_eq!(token.token.expose(), "sk-ant-oat01-demo-1");
    assert_eq!(exchanges(&tokens).len(), 1);
}

#[test]
fn a_trap_drops_the_component_cache_with_the_instance_but_not_the_hosts() {
    let tokens = token_server();
    let files = Files::new();
    let path = files.write("token", JWT);
    let provider = Provider::builder()
        .policy(file_policy(&[&path], &[&tokens.url()]))
        .memory_limit(2 * 1024 * 1024)
        .build()
        .unwrap();
    let config = config(&tokens.url(), json!({ "file": path }));
    let first = provider.get_token(&config).unwrap();

    let huge = " ".repeat(4 * 1024 * 1024);
    assert!(matches!(
        provider.requirements(&huge),
        Err(Error::Component(_))
    ));

    // The host's cache still serves the token without entering the
    // component.
    assert_eq!(provider.get_token(&config).unwrap(), first);
    assert_eq!(exchanges(&tokens).len(), 1);
    // And the fresh instance validates configs again.
    let needs = provider.requirements(&config).unwrap();
    assert_eq!(needs.files, [path.display().to_string()]);
}

#[test]
fn a_memory_cap_trap_says_it_hit_the_memory_cap() {
    let provider = Provider::builder()
        .memory_limit(2 * 1024 * 1024)
        .build()
        .unwrap();
    let huge = " ".repeat(4 * 1024 * 1024);

    let error = provider.requirements(&huge).unwrap_err();

    let Error::Component(message) = &error else {
        panic!("expected a component failure, got {error:?}");
    };
    // The cause (wasmtime: "forcing trap when growing memory to N bytes"),
    // not only the context wasmtime wraps it in (a wasm backtrace).
    assert!(
        message.contains("memory"),
        "the message does not say the memory cap was hit: {message}"
    );
    assert!(
        !message.contains("wasm backtrace"),
        "the message is a raw backtrace: {message}"
    );
}

#[test]
fn a_call_past_its_time_budget_is_interrupted_and_reported() {
    // A 1 ms budget: instantiation (microseconds) fits in it, validating a
    // config of several MiB does not. The epoch deadline interrupts the
    // guest at its first check after the next epoch tick (every 10 ms).
    let provider = Provider::builder()
        .call_budget(std::time::Duration::from_millis(1))
        .build()
        .unwrap();
    let big_name = "x".repeat(8 * 1024 * 1024);
    let big = auth_with(
        "http://127.0.0.1:9",
        json!({ "file": "/t" }),
        json!({ "workspace_id": format!("wrkspc_{big_name}") }),
    )
    .to_string();

    // A guest that happens to finish between two ticks is not an error;
    // one that is never interrupted in ten tries is.
    let error = (0..10)
        .find_map(|_| provider.requirements(&big).err())
        .expect("the guest was never interrupted");

    match &error {
        Error::Component(message) => {
            assert!(message.contains("time budget"), "{message}")
        }
        other => panic!("expected an interrupted component, got {other:?}"),
    }
    // The next call gets a fresh instance and, being small, fits its budget
    // (on a machine busy enough to stall even that past 1 ms, within ten
    // tries).
    let small = config("http://127.0.0.1:9", json!({ "file": "/t" }));
    let needs = (0..10)
        .find_map(|_| provider.requirements(&small).ok())
        .expect("a fresh instance serves a small call");
    assert_eq!(needs.files, ["/t"]);
}
