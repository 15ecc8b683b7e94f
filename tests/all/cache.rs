//! The cache and its refresh windows, counted in requests to the loopback
//! token endpoint: more than 120 s left is served, 30–120 s refreshes with a
//! fallback and a 5 s backoff, 30 s or less must refresh; `invalidate`; one
//! exchange for many concurrent callers. The identity file is rotated before
//! each advisory refresh: an unchanged assertion is not sent there.

use anthropic_wif_host::spread::RefreshSpread;
use anthropic_wif_host::{Error, ManualClock, Provider};
use anthropic_wif_loopback::{LoopbackServer, Reply, token_endpoint};
use anthropic_wif_test_support::*;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

/// The wall clock the injected clock starts at (Unix seconds).
const START: u64 = 1_800_000_000;

/// A token endpoint that fails with 503 while `failing` is set.
fn flaky_token_server(failing: Arc<AtomicBool>) -> LoopbackServer {
    let issue = token_endpoint(EXPIRES_IN);
    LoopbackServer::start(move |request| {
        if failing.load(Ordering::SeqCst) {
            Reply::json(
                503,
                &json!({"error": "temporarily_unavailable", "error_description": "try later"}),
            )
        } else {
            issue(request)
        }
    })
    .unwrap()
}

/// A provider on an injected clock, its token file and its config.
struct Setup {
    clock: Arc<ManualClock>,
    provider: Provider,
    config: String,
    files: Files,
}

fn setup(tokens: &LoopbackServer) -> Setup {
    let files = Files::new();
    let path = files.write("token", JWT);
    let clock = Arc::new(ManualClock::new(Duration::from_secs(START)));
    let provider = Provider::builder()
        .policy(file_policy(&[&path], &[&tokens.url()]))
        .clock(clock.clone())
        .refresh_spread(RefreshSpread::none())
        .build()
        .unwrap();
    let config = config(&tokens.url(), json!({ "file": path }));
    Setup {
        clock,
        provider,
        config,
        files,
    }
}

impl Setup {
    /// The issuer writes a new identity token (assertions are single-use).
    fn rotate(&self) {
        self.files.write("token", format!("{JWT}.rotated"));
    }

    fn token(&self) -> String {
        self.provider
            .get_token(&self.config)
            .expect("a token")
            .token
            .expose()
            .to_string()
    }

    /// Moves the clock to `secs` after [`START`].
    fn at(&self, secs: u64) {
        let now = self.clock_secs();
        assert!(secs * 1000 >= now, "the clock only moves forward");
        self.clock.advance(Duration::from_millis(secs * 1000 - now));
    }

    fn clock_secs(&self) -> u64 {
        use anthropic_wif_host::Clock;
        u64::try_from(self.clock.now().as_millis()).unwrap() - START * 1000
    }
}

#[test]
fn two_calls_make_one_exchange() {
    let tokens = token_server();
    let s = setup(&tokens);

    let first = s.provider.get_token(&s.config).unwrap();
    let second = s.provider.get_token(&s.config).unwrap();

    assert_eq!(exchanges(&tokens).len(), 1);
    assert_eq!(first, second);
    assert_eq!(first.token.expose(), "sk-ant-oat01-demo-1");
    assert_eq!(first.expires_at, START + EXPIRES_IN);
    assert_eq!(first.refresh_after, START + EXPIRES_IN - 120);
}

#[test]
fn asking_the_component_again_serves_the_held_token_until_its_answer_changes() {
    let tokens = token_server();
    let s = setup(&tokens);
    // Issued half a second into a second: the component's windows end
    // half a second after the whole seconds the host is told.
    s.clock.advance(Duration::from_millis(500));
    let client = s.provider.client(&s.config).unwrap();
    let held = client.token().unwrap();

    // A component cache hit: the same token and windows, served as held.
    assert_eq!(client.token_uncached().unwrap(), held);
    assert_eq!(client.token().unwrap(), held);

    // Past the host's serving time (refresh_after, no spread) but before
    // the component's advisory window: the component answers the same.
    s.clock
        .advance(Duration::from_secs(EXPIRES_IN - 120) - Duration::from_millis(300));
    assert_eq!(client.token().unwrap(), held);
    assert_eq!(client.token_uncached().unwrap(), held);
    assert_eq!(exchanges(&tokens).len(), 1);

    // Then a refresh: the new answer replaces the held token for every
    // later call, whichever path asks.
    s.rotate();
    s.clock.advance(Duration::from_secs(1));
    let refreshed = client.token_uncached().unwrap();
    assert_eq!(refreshed.token.expose(), "sk-ant-oat01-demo-2");
    assert_eq!(client.token().unwrap(), refreshed);
    assert_eq!(s.provider.get_token(&s.config).unwrap(), refreshed);
    assert_eq!(exchanges(&tokens).len(), 2);
}

#[test]
fn a_token_is_served_until_120_s_left_then_refreshed() {
    let tokens = token_server();
    let s = setup(&tokens);
    assert_eq!(s.token(), "sk-ant-oat01-demo-1");

    s.at(EXPIRES_IN - 121);
    assert_eq!(s.token(), "sk-ant-oat01-demo-1");
    assert_eq!(exchanges(&tokens).len(), 1, "121 s left is served cached");

    s.rotate();
    s.at(EXPIRES_IN - 100);
    assert_eq!(s.token(), "sk-ant-oat01-demo-2");
    assert_eq!(exchanges(&tokens).len(), 2, "100 s left refreshes");

    let refreshed = s.provider.get_token(&s.config).unwrap();
    assert_eq!(refreshed.expires_at, START + EXPIRES_IN - 100 + EXPIRES_IN);
    assert_eq!(exchanges(&tokens).len(), 2, "the new token is cached");
}

#[test]
fn a_failed_advisory_refresh_serves_the_old_token_and_backs_off_5_s() {
    let failing = Arc::new(AtomicBool::new(false));
    let tokens = flaky_token_server(failing.clone());
    let s = setup(&tokens);
    assert_eq!(s.token(), "sk-ant-oat01-demo-1");

    failing.store(true, Ordering::SeqCst);
    s.rotate();
    s.at(EXPIRES_IN - 100);
    assert_eq!(s.token(), "sk-ant-oat01-demo-1", "the old token is served");
    assert_eq!(exchanges(&tokens).len(), 2, "one refresh was attempted");

    s.at(EXPIRES_IN - 100 + 4);
    assert_eq!(s.token(), "sk-ant-oat01-demo-1");
    assert_eq!(exchanges(&tokens).len(), 2, "no new attempt within 5 s");

    s.at(EXPIRES_IN - 100 + 5);
    assert_eq!(s.token(), "sk-ant-oat01-demo-1");
    assert_eq!(exchanges(&tokens).len(), 3, "a new attempt after 5 s");

    failing.store(false, Ordering::SeqCst);
    s.at(EXPIRES_IN - 100 + 10);
    assert_eq!(s.token(), "sk-ant-oat01-demo-2", "recovered");
    assert_eq!(exchanges(&tokens).len(), 4);
}

#[test]
fn a_failed_refresh_with_30_s_left_is_an_error() {
    let failing = Arc::new(AtomicBool::new(false));
    let tokens = flaky_token_server(failing.clone());
    let s = setup(&tokens);
    assert_eq!(s.token(), "sk-ant-oat01-demo-1");

    failing.store(true, Ordering::SeqCst);
    s.at(EXPIRES_IN - 30);
    let error = s.provider.get_token(&s.config).unwrap_err();

    let Error::ExchangeRejected(rejection) = &error else {
        panic!("expected the endpoint's rejection, got {error:?}");
    };
    assert_eq!(rejection.status, 503);
    assert_eq!(rejection.error.as_deref(), Some("temporarily_unavailable"));
    assert_eq!(exchanges(&tokens).len(), 2);

    // And once expired, too; each call tries again.
    s.at(EXPIRES_IN + 10);
    assert!(s.provider.get_token(&s.config).is_err());
    assert_eq!(exchanges(&tokens).len(), 3);
}

#[test]
fn an_expired_token_is_never_served_even_when_the_endpoint_is_down() {
    let failing = Arc::new(AtomicBool::new(false));
    let tokens = flaky_token_server(failing.clone());
    let s = setup(&tokens);
    assert_eq!(s.token(), "sk-ant-oat01-demo-1");

    failing.store(true, Ordering::SeqCst);
    s.at(EXPIRES_IN - 29);
    assert!(s.provider.get_token(&s.config).is_err());
    s.at(EXPIRES_IN - 28);
    assert!(s.provider.get_token(&s.config).is_err());
    assert_eq!(exchanges(&tokens).len(), 3, "no backoff in the last 30 s");
}

#[test]
fn invalidate_forces_the_next_exchange() {
    let tokens = token_server();
    let s = setup(&tokens);
    assert_eq!(s.token(), "sk-ant-oat01-demo-1");
    assert_eq!(s.token(), "sk-ant-oat01-demo-1");
    assert_eq!(exchanges(&tokens).len(), 1);

    s.provider.invalidate(&s.config).unwrap();

    assert_eq!(s.token(), "sk-ant-oat01-demo-2");
    assert_eq!(exchanges(&tokens).len(), 2);
    assert_eq!(s.token(), "sk-ant-oat01-demo-2");
    assert_eq!(exchanges(&tokens).len(), 2);
}

#[test]
fn a_refused_token_already_replaced_by_another_caller_is_kept() {
    let tokens = token_server();
    let s = setup(&tokens);
    let first = s.provider.get_token(&s.config).unwrap();
    s.provider
        .invalidate_rejected(&s.config, &first.token)
        .unwrap();
    assert_eq!(s.token(), "sk-ant-oat01-demo-2");
    // A second request refused with the first token answers late: the new
    // token stays, and no third exchange spends the identity token again.
    s.provider
        .invalidate_rejected(&s.config, &first.token)
        .unwrap();
    assert_eq!(s.token(), "sk-ant-oat01-demo-2");
    assert_eq!(exchanges(&tokens).len(), 2);
}

#[test]
fn invalidate_of_one_config_keeps_the_others() {
    let tokens = token_server();
    let files = Files::new();
    let path = files.write("token", JWT);
    let provider = provider(file_policy(&[&path], &[&tokens.url()]));
    let (a, b) = (
        config(&tokens.url(), json!({ "file": path })),
        auth_with(
            &tokens.url(),
            json!({ "file": path }),
            json!({"workspace_id": "default"}),
        )
        .to_string(),
    );

    let token_a = provider.get_token(&a).unwrap();
    let token_b = provider.get_token(&b).unwrap();
    assert_ne!(token_a.token, token_b.token, "two configs, two tokens");
    provider.invalidate(&a).unwrap();

    assert_eq!(provider.get_token(&b).unwrap(), token_b);
    assert_eq!(exchanges(&tokens).len(), 2);
    assert_ne!(provider.get_token(&a).unwrap().token, token_a.token);
    assert_eq!(exchanges(&tokens).len(), 3);
}

#[test]
fn sixteen_concurrent_callers_share_one_exchange() {
    // A slightly slow endpoint, so that every caller arrives while the
    // exchange is in flight.
    let issue = token_endpoint(EXPIRES_IN);
    let tokens =
        LoopbackServer::start(move |request| issue(request).delayed(Duration::from_millis(200)))
            .unwrap();
    let files = Files::new();
    let path = files.write("token", JWT);
    let provider = Arc::new(provider(file_policy(&[&path], &[&tokens.url()])));
    let config = Arc::new(config(&tokens.url(), json!({ "file": path })));
    let barrier = Arc::new(Barrier::new(16));

    let threads: Vec<_> = (0..16)
        .map(|_| {
            let (provider, config, barrier) = (provider.clone(), config.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                provider
                    .get_token(&config)
                    .map(|t| t.token.expose().to_string())
            })
        })
        .collect();
    let got: Vec<String> = threads
        .into_iter()
        .map(|t| t.join().expect("no panic").expect("a token"))
        .collect();

    assert_eq!(got.len(), 16);
    assert!(
        got.iter().all(|t| t == "sk-ant-oat01-demo-1"),
        "different tokens: {got:?}"
    );
    assert_eq!(exchanges(&tokens).len(), 1);
}
