//! A faulty component cannot hang or exhaust the host: small components that
//! loop forever, grow memory without bound, return a 100 MiB string or trap
//! are stopped by the deadline and the memory cap, come back as
//! `Error::Component`, and the host goes on serving the real component.

use std::time::Duration;

use anthropic_wif_host::{Error, Provider};
use wit_component::{ComponentEncoder, StringEncoding};
use wit_parser::Resolve;

/// A core module implementing the `federation` world by hand; `GET_TOKEN`
/// is replaced by the body of `get-token` and of the `client` resource's
/// `token` and `token-valid-for` (the constructor makes a client that does
/// nothing else).
const MODULE: &str = r#"
(module
  (import "[export]anthropic-wif:federation/provider@0.3.0" "[resource-new]client"
    (func $client_new (param i32) (result i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $ptr i32)
    (local.set $ptr
      (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
        (i32.xor (i32.sub (local.get 2) (i32.const 1)) (i32.const -1))))
    (global.set $heap (i32.add (local.get $ptr) (local.get 3)))
    (block $done
      (loop $grow
        (br_if $done
          (i32.le_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536))))
        (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then unreachable))
        (br $grow)))
    (local.get $ptr))
  (func (export "anthropic-wif:federation/provider@0.3.0#[constructor]client")
    (param i32 i32) (result i32)
    (i32.store8 (i32.const 8) (i32.const 0))
    (i32.store (i32.const 12) (call $client_new (i32.const 1)))
    (i32.const 8))
  (func (export "anthropic-wif:federation/provider@0.3.0#[method]client.token")
    (param i32) (result i32)
    GET_TOKEN)
  (func (export "anthropic-wif:federation/provider@0.3.0#[method]client.token-valid-for")
    (param i32 i32) (result i32)
    GET_TOKEN)
  (func (export "anthropic-wif:federation/provider@0.3.0#[method]client.invalidate")
    (param i32))
  (func (export "anthropic-wif:federation/provider@0.3.0#[method]client.invalidate-rejected")
    (param i32 i32 i32))
  (func (export "anthropic-wif:federation/provider@0.3.0#[method]client.restore")
    (param i32 i32 i32 i32 i32 i64 i64 i64 i64 i32 i32))
  (func (export "anthropic-wif:federation/provider@0.3.0#[method]client.requirements")
    (param i32) (result i32)
    unreachable)
  (func (export "anthropic-wif:federation/provider@0.3.0#[method]client.identity-token")
    (param i32) (result i32)
    unreachable)
  (func (export "anthropic-wif:federation/provider@0.3.0#[dtor]client") (param i32))
  (func (export "anthropic-wif:federation/provider@0.3.0#get-token")
    (param i32 i32) (result i32)
    GET_TOKEN))
"#;

/// Loops forever.
const LOOP: &str = "(loop $forever (br $forever)) unreachable";
/// Grows its memory 1 MiB at a time, forever.
const GROW: &str = "(loop $more (drop (memory.grow (i32.const 16))) (br $more)) unreachable";
/// Returns `ok` with a 100 MiB token: grows memory to hold it, then lays
/// out the result (discriminant at 16, the record at 24).
const HUGE_STRING: &str = "
    (drop (memory.grow (i32.const 1700)))
    (i32.store8 (i32.const 16) (i32.const 0))
    (i32.store (i32.const 24) (i32.const 65536))
    (i32.store (i32.const 28) (i32.const 104857600))
    (i32.store (i32.const 32) (i32.const 0))
    (i32.store (i32.const 36) (i32.const 0))
    (i64.store (i32.const 40) (i64.const 0))
    (i64.store (i32.const 48) (i64.const 0))
    (i64.store (i32.const 56) (i64.const 0))
    (i64.store (i32.const 64) (i64.const 0))
    (i32.store (i32.const 72) (i32.const 0))
    (i32.store (i32.const 76) (i32.const 0))
    (i32.const 16)";
/// Traps at once.
const TRAP: &str = "unreachable";

fn faulty_component(get_token: &str) -> Vec<u8> {
    let mut module = wat::parse_str(MODULE.replace("GET_TOKEN", get_token)).expect("valid WAT");
    let mut resolve = Resolve::default();
    let (package, _) = resolve
        .push_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/wit"))
        .expect("the project's WIT");
    let world = resolve
        .select_world(&[package], Some("federation"))
        .expect("the federation world");
    wit_component::embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8)
        .expect("metadata");
    ComponentEncoder::default()
        .module(&module)
        .expect("module")
        .validate(true)
        .encode()
        .expect("a valid component")
}

fn provider(component: Vec<u8>) -> Provider {
    Provider::builder()
        .component_bytes(component)
        .call_budget(Duration::from_millis(300))
        .build()
        .expect("the faulty component loads")
}

fn config() -> String {
    anthropic_wif_test_support::config(
        "http://127.0.0.1:9",
        serde_json::json!({"file": "/nonexistent"}),
    )
}

#[track_caller]
fn assert_component_error(
    result: Result<anthropic_wif_host::AccessToken, Error>,
    part: &str,
) -> String {
    match result {
        Err(Error::Component(message)) => {
            assert!(message.contains(part), "`{message}` lacks `{part}`");
            message
        }
        Err(other) => panic!("expected a component failure, got {other}"),
        Ok(_) => panic!("expected a component failure, got a token"),
    }
}

/// After any fault, the host is up and the real component mints a token.
fn the_real_component_still_serves() {
    let server = anthropic_wif_test_support::token_server();
    let files = anthropic_wif_test_support::Files::new();
    let token_file = files.write("token", anthropic_wif_test_support::JWT);
    let provider = anthropic_wif_test_support::provider(anthropic_wif_test_support::file_policy(
        &[&token_file],
        &[&server.url()],
    ));
    let config =
        anthropic_wif_test_support::config(&server.url(), serde_json::json!({"file": token_file}));
    assert!(
        provider
            .get_token(&config)
            .unwrap()
            .token
            .expose()
            .starts_with("sk-ant-oat01-")
    );
}

#[test]
fn a_component_that_loops_forever_is_interrupted_at_its_deadline() {
    let looping = provider(faulty_component(LOOP));
    assert_component_error(looping.get_token(&config()), "time budget");
    assert_component_error(looping.get_token(&config()), "time budget");
    the_real_component_still_serves();
}

#[test]
fn a_component_that_grows_memory_without_bound_hits_the_cap() {
    let growing = provider(faulty_component(GROW));
    assert_component_error(growing.get_token(&config()), "memory");
    the_real_component_still_serves();
}

#[test]
fn a_component_returning_a_100_mib_string_cannot_build_it_under_the_cap() {
    let huge = provider(faulty_component(HUGE_STRING));
    assert_component_error(huge.get_token(&config()), "memory");
    the_real_component_still_serves();
}

#[test]
fn a_component_that_traps_is_an_error_and_the_next_call_is_fresh() {
    let trapping = provider(faulty_component(TRAP));
    assert_component_error(trapping.get_token(&config()), "unreachable");
    assert_component_error(trapping.get_token(&config()), "unreachable");
    the_real_component_still_serves();
}
