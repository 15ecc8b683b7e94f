//! Attempts to get around the host's policy: path tricks (`..`, symlinks,
//! look-alike prefixes, a symlink swapped in during the read), URL tricks
//! (user information, host suffixes, case, trailing dots, other spellings of
//! an IP address, percent-encoding, other ports, `${VAR}` expansion), argv
//! tricks and environment variable names with `=` or NUL.
//!
//! Each attempt is a row of a table that records which layer refused it:
//! the policy file's validation, the component's config validation, the
//! component's own run-time check, or the host's policy (`Error::Denied`).
//! A few rows are not refusals but documented normalizations (an upper-case
//! host, a default port): they reach the very destination that was granted.
//! Spellings the host's URL parser would rewrite (`2130706433` for
//! `127.0.0.1`, percent-encoding, `\`) are refused by the component's config
//! validation, so that both sides always name the same origin. The tables are printed
//! (`cargo test --test policy_bypass -- --nocapture`).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::cli_token;
use anthropic_wif_host::{AccessToken, Error, Policy, PolicyError, Provider};
use anthropic_wif_loopback::{LoopbackServer, Reply};
use anthropic_wif_test_support::*;
use serde_json::{Value, json};

/// The content of a file outside every grant; it must never be sent.
const OUTSIDE_SECRET: &str = "outside-secret-assertion-5b0e9d27c4";

/// The layer that refused an attempt (or that nothing did).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layer {
    /// `Policy::from_toml` refused the grant.
    PolicyValidation,
    /// The component refused the config (`Error::InvalidConfig`).
    ConfigValidation,
    /// The host's policy refused the capability call (`Error::Denied`).
    Host(&'static str),
    /// The source failed (`Error::SourceFailed`): the component's run-time
    /// check, or the item itself once the policy let it through.
    Source,
    /// Nothing refused it: a token was minted from the granted item.
    Allowed,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Layer::PolicyValidation => f.write_str("policy validation (PolicyError)"),
            Layer::ConfigValidation => f.write_str("config validation (InvalidConfig)"),
            Layer::Host(capability) => write!(f, "host policy (Denied, {capability})"),
            Layer::Source => f.write_str("source (SourceFailed)"),
            Layer::Allowed => f.write_str("allowed (token)"),
        }
    }
}

/// What an attempt led to.
struct Outcome {
    layer: Option<Layer>,
    detail: String,
}

impl Outcome {
    fn of(result: &Result<AccessToken, Error>) -> Outcome {
        let (layer, detail) = match result {
            Ok(token) => (Some(Layer::Allowed), format!("{:?}", token.token)),
            Err(error) => {
                let layer = match error {
                    Error::InvalidConfig { .. } => Some(Layer::ConfigValidation),
                    Error::Denied { capability, .. } => {
                        Some(Layer::Host(match capability.as_str() {
                            "read-file" => "read-file",
                            "get-env" => "get-env",
                            "http-fetch" => "http-fetch",
                            "run-command" => "run-command",
                            _ => "?",
                        }))
                    }
                    Error::SourceFailed { .. } => Some(Layer::Source),
                    _ => None,
                };
                (layer, error.to_string())
            }
        };
        Outcome { layer, detail }
    }

    fn of_policy(result: &Result<Policy, PolicyError>) -> Outcome {
        match result {
            Ok(_) => Outcome {
                layer: Some(Layer::Allowed),
                detail: "the policy was accepted".into(),
            },
            Err(error) => Outcome {
                layer: Some(Layer::PolicyValidation),
                detail: error.to_string(),
            },
        }
    }
}

/// A printed table of attempts and the layers that refused them.
struct Table {
    title: &'static str,
    rows: Vec<(String, Layer, Outcome, &'static str)>,
    problems: Vec<String>,
}

impl Table {
    fn new(title: &'static str) -> Table {
        Table {
            title,
            rows: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// Records an attempt; `note` says why `expected` is right.
    fn row(&mut self, name: impl Into<String>, expected: Layer, note: &'static str, got: Outcome) {
        let name = name.into();
        if got.layer != Some(expected) {
            self.problems.push(format!(
                "{name}: expected {expected}, got {}: {}",
                got.layer
                    .map_or("an unexpected error".into(), |l| l.to_string()),
                got.detail
            ));
        }
        for secret in [JWT, OUTSIDE_SECRET] {
            if got.layer != Some(Layer::Allowed) && got.detail.contains(secret) {
                self.problems
                    .push(format!("{name}: a secret in the error: {}", got.detail));
            }
        }
        self.rows.push((name, expected, got, note));
    }

    /// A problem found outside a row (a server that was contacted).
    fn problem(&mut self, problem: String) {
        self.problems.push(problem);
    }

    /// Prints the table and fails on any mismatch.
    fn finish(self) {
        let name_width = self.rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        let layer_width = self
            .rows
            .iter()
            .map(|r| outcome_text(&r.2).len())
            .max()
            .unwrap_or(0);
        let mut out = format!(
            "\n{}: {} attempts (attempt → layer that refused; note)\n",
            self.title,
            self.rows.len()
        );
        for (name, _, got, note) in &self.rows {
            out.push_str(&format!(
                "  {name:name_width$}  {:layer_width$}  {note}\n",
                outcome_text(got)
            ));
        }
        println!("{out}");
        assert!(
            self.problems.is_empty(),
            "{}: {} problems:\n{}",
            self.title,
            self.problems.len(),
            self.problems.join("\n")
        );
    }
}

fn outcome_text(outcome: &Outcome) -> String {
    outcome
        .layer
        .map_or_else(|| "UNEXPECTED".to_string(), |l| l.to_string())
}

/// A loopback identity endpoint answering `{"value": JWT}` to anything.
fn identity_server() -> LoopbackServer {
    LoopbackServer::start(|_| Reply::json(200, &json!({"value": JWT}))).unwrap()
}

/// A raw server on 127.0.0.2 (loopback too) at `port`, that must never be
/// contacted.
fn decoy_on_127_0_0_2(port: u16) -> RawServer {
    RawServer::start_on(
        std::net::SocketAddr::from(([127, 0, 0, 2], port)),
        |s, _| {
            respond(s, 200, &[], JWT.as_bytes());
        },
    )
    .expect("a listener on 127.0.0.2")
}

/// The config of a url source fetching `url`.
fn url_config(tokens: &LoopbackServer, url: &str) -> String {
    config(
        &tokens.url(),
        json!({"url": url, "response_field": "value"}),
    )
}

fn get(provider: &Provider, config: &str) -> Outcome {
    Outcome::of(&provider.get_token(config))
}

#[test]
fn url_tricks_on_the_identity_url() {
    let base = provider(Policy::default());
    let identity = identity_server();
    let tokens = token_server();
    let i = identity.port();
    let decoy = decoy_on_127_0_0_2(i);
    // A loopback port that is not granted: it must be reached by nothing.
    let other = RawServer::start(|s, _| respond(s, 200, &[], JWT.as_bytes()));
    let o = other.port();
    let granted = base.with_policy(policy(&format!(
        "[http]\nallow_origins = {}\n",
        q_list(&[identity.url(), tokens.url()])
    )));
    let granted_localhost = base.with_policy(policy(&format!(
        "[http]\nallow_origins = {}\n",
        q_list(&[format!("http://localhost:{i}"), tokens.url()])
    )));
    let mut table = Table::new("identity URL (url source), http://127.0.0.1:PORT granted");

    let spelled =
        "an IPv4 address the URL parser would rewrite is refused as written (issue 14, item 6)";
    let cases: Vec<(&str, String, &Provider, Layer, &str)> = vec![
        (
            "userinfo: 127.0.0.1:PORT@127.0.0.2:PORT",
            format!("http://127.0.0.1:{i}@127.0.0.2:{i}/oidc"),
            &granted,
            Layer::ConfigValidation,
            "`user@` is refused in a URL as written",
        ),
        (
            "userinfo on the granted host",
            format!("http://user:pw@127.0.0.1:{i}/oidc"),
            &granted,
            Layer::ConfigValidation,
            "any userinfo is refused",
        ),
        (
            "backslash before @",
            format!("http://127.0.0.1:{i}\\@127.0.0.2:{i}/oidc"),
            &granted,
            Layer::ConfigValidation,
            "the authority holds an @",
        ),
        (
            "suffix: 127.0.0.1.nip.io",
            format!("http://127.0.0.1.nip.io:{i}/oidc"),
            &granted,
            Layer::Host("http-fetch"),
            "another host; refused before any DNS lookup",
        ),
        (
            "suffix: localhost.evil.test",
            format!("http://localhost.evil.test:{i}/oidc"),
            &granted_localhost,
            Layer::Host("http-fetch"),
            "another host; refused before any DNS lookup",
        ),
        (
            "upper case HTTP://LOCALHOST:PORT",
            format!("HTTP://LOCALHOST:{i}/oidc"),
            &granted_localhost,
            Layer::Allowed,
            "normalized, same origin as the granted http://localhost:PORT",
        ),
        (
            "trailing dot: localhost.",
            format!("http://localhost.:{i}/oidc"),
            &granted_localhost,
            Layer::Host("http-fetch"),
            "`localhost.` is another host name unless granted",
        ),
        (
            "percent-encoded dot: localhost%2E",
            format!("http://localhost%2E:{i}/oidc"),
            &granted_localhost,
            Layer::ConfigValidation,
            "nothing percent-encoded in a host (issue 14, item 6)",
        ),
        (
            "IPv4-mapped IPv6 [::ffff:127.0.0.1]",
            format!("http://[::ffff:127.0.0.1]:{i}/oidc"),
            &granted,
            Layer::ConfigValidation,
            "an IPv6 address in another spelling than the parser's ([::ffff:7f00:1]) is refused",
        ),
        (
            "IPv6 loopback [::1]",
            format!("http://[::1]:{i}/oidc"),
            &granted,
            Layer::Host("http-fetch"),
            "another origin",
        ),
        (
            "another loopback address 127.0.0.2",
            format!("http://127.0.0.2:{i}/oidc"),
            &granted,
            Layer::Host("http-fetch"),
            "another origin",
        ),
        (
            "decimal 2130706433",
            format!("http://2130706433:{i}/oidc"),
            &granted,
            Layer::ConfigValidation,
            spelled,
        ),
        (
            "hex 0x7f.0.0.1",
            format!("http://0x7f.0.0.1:{i}/oidc"),
            &granted,
            Layer::ConfigValidation,
            spelled,
        ),
        (
            "octal 0177.0.0.1",
            format!("http://0177.0.0.1:{i}/oidc"),
            &granted,
            Layer::ConfigValidation,
            spelled,
        ),
        (
            "short 127.1",
            format!("http://127.1:{i}/oidc"),
            &granted,
            Layer::ConfigValidation,
            spelled,
        ),
        (
            "trailing dot: 127.0.0.1.",
            format!("http://127.0.0.1.:{i}/oidc"),
            &granted,
            Layer::ConfigValidation,
            spelled,
        ),
        (
            "percent-encoded 127.0.0.%31",
            format!("http://127.0.0.%31:{i}/oidc"),
            &granted,
            Layer::ConfigValidation,
            spelled,
        ),
        (
            "@ in the fragment",
            format!("http://127.0.0.1:{i}/oidc#@127.0.0.2:{i}/"),
            &granted,
            Layer::Allowed,
            "the host is 127.0.0.1; the fragment is never sent",
        ),
        (
            "@ in the query",
            format!("http://127.0.0.1:{i}/oidc?@127.0.0.2:{i}/"),
            &granted,
            Layer::Allowed,
            "the host is 127.0.0.1; `@127.0.0.2` is query text",
        ),
        (
            "another port",
            format!("http://127.0.0.1:{o}/oidc"),
            &granted,
            Layer::Host("http-fetch"),
            "the port is part of the origin",
        ),
        (
            "the default port",
            "http://127.0.0.1/oidc".to_string(),
            &granted,
            Layer::Host("http-fetch"),
            "port 80 is another origin",
        ),
        (
            "https instead of http",
            format!("https://127.0.0.1:{i}/oidc"),
            &granted,
            Layer::Host("http-fetch"),
            "the scheme is part of the origin",
        ),
    ];
    for (name, url, provider, expected, note) in cases {
        let before = identity.requests().len();
        let got = get(provider, &url_config(&tokens, &url));
        let reached = identity.requests().len() - before;
        let should_reach = usize::from(expected == Layer::Allowed);
        if got.layer == Some(expected) && reached != should_reach {
            table.problem(format!(
                "{name}: the identity server got {reached} requests, expected {should_reach}"
            ));
        }
        table.row(name, expected, note, got);
    }
    if decoy.connections() != 0 {
        table.problem(format!("127.0.0.2:{i} was contacted"));
    }
    if other.connections() != 0 {
        table.problem(format!("the ungranted port {o} was contacted"));
    }
    // Every token came from the granted identity endpoint's assertion.
    for exchange in exchanges(&tokens) {
        assert_eq!(assertion_of(&exchange), JWT);
    }
    table.finish();
}

#[test]
fn url_tricks_on_the_token_endpoint() {
    let base = provider(Policy::default());
    let tokens = token_server();
    let t = tokens.port();
    let decoy = decoy_on_127_0_0_2(t);
    let other = RawServer::start(|s, _| respond(s, 500, &[], b""));
    let o = other.port();
    let files = Files::new();
    let path = files.write("token", JWT);
    let grant = |origin: &str| {
        base.with_policy(policy(&format!(
            "[files]\nallow = [{}]\n[http]\nallow_origins = [{}]\n",
            q(path.display().to_string()),
            q(origin)
        )))
    };
    let granted = grant(&tokens.url());
    let granted_localhost = grant(&format!("http://localhost:{t}"));
    let granted_nip = grant(&format!("https://127.0.0.1.nip.io:{t}"));
    let mut table = Table::new("token endpoint (base_url), http://127.0.0.1:PORT granted");

    let loopback_only = "plain http is allowed for localhost, 127.0.0.1 and [::1] only, spelled so";
    let cases: Vec<(&str, String, &Provider, Layer, &str)> = vec![
        (
            "userinfo: 127.0.0.1:PORT@127.0.0.2:PORT",
            format!("http://127.0.0.1:{t}@127.0.0.2:{t}"),
            &granted,
            Layer::ConfigValidation,
            "`user@` is refused in base_url",
        ),
        (
            "suffix: https://127.0.0.1.nip.io",
            format!("https://127.0.0.1.nip.io:{t}"),
            &granted,
            Layer::Host("http-fetch"),
            "a valid https base_url, another origin: refused before any DNS lookup",
        ),
        (
            "suffix: http://127.0.0.1.nip.io",
            format!("http://127.0.0.1.nip.io:{t}"),
            &granted_nip,
            Layer::ConfigValidation,
            loopback_only,
        ),
        (
            "upper case HTTP://LOCALHOST:PORT",
            format!("HTTP://LOCALHOST:{t}"),
            &granted_localhost,
            Layer::Allowed,
            "normalized, same origin as the granted http://localhost:PORT",
        ),
        (
            "trailing dot: localhost.",
            format!("http://localhost.:{t}"),
            &granted_localhost,
            Layer::ConfigValidation,
            loopback_only,
        ),
        (
            "IPv4-mapped IPv6 [::ffff:127.0.0.1]",
            format!("http://[::ffff:127.0.0.1]:{t}"),
            &granted,
            Layer::ConfigValidation,
            loopback_only,
        ),
        (
            "decimal 2130706433",
            format!("http://2130706433:{t}"),
            &granted,
            Layer::ConfigValidation,
            loopback_only,
        ),
        (
            "percent-encoded 127.0.0.%31",
            format!("http://127.0.0.%31:{t}"),
            &granted,
            Layer::ConfigValidation,
            loopback_only,
        ),
        (
            "another loopback address 127.0.0.2",
            format!("http://127.0.0.2:{t}"),
            &granted,
            Layer::ConfigValidation,
            loopback_only,
        ),
        (
            "another port",
            format!("http://127.0.0.1:{o}"),
            &granted,
            Layer::Host("http-fetch"),
            "the port is part of the origin",
        ),
        (
            "@ in a fragment",
            format!("http://127.0.0.1:{t}#@127.0.0.2:{t}"),
            &granted,
            Layer::ConfigValidation,
            "base_url takes no query or fragment (and no @)",
        ),
    ];
    for (name, base_url, provider, expected, note) in cases {
        let before = exchanges(&tokens).len();
        let got = get(provider, &config(&base_url, json!({ "file": path })));
        let reached = exchanges(&tokens).len() - before;
        let should_reach = usize::from(expected == Layer::Allowed);
        if got.layer == Some(expected) && reached != should_reach {
            table.problem(format!(
                "{name}: the token endpoint got {reached} requests, expected {should_reach}"
            ));
        }
        table.row(name, expected, note, got);
    }
    if decoy.connections() != 0 {
        table.problem(format!("127.0.0.2:{t} was contacted"));
    }
    if other.connections() != 0 {
        table.problem(format!("the ungranted port {o} was contacted"));
    }
    table.finish();
}

#[test]
fn expanded_urls_are_checked_after_expansion_through_the_cli() {
    // `${VAR}` decides the origin at run time: what it expands to is
    // checked like a URL written out.
    let identity = identity_server();
    let tokens = token_server();
    let i = identity.port();
    let decoy = decoy_on_127_0_0_2(i);
    let files = Files::new();
    let var = "WIF_IT_BYPASS_IDENTITY_ORIGIN";
    let policy_text = format!(
        "[env]\nallow = [{}]\n[http]\nallow_origins = {}\n",
        q(var),
        q_list(&[identity.url(), tokens.url()])
    );
    let source = json!({"url": format!("${{{var}}}/oidc"), "response_field": "value"});
    let mut table = Table::new("${VAR} in the identity URL (wif-host CLI)");

    for (name, value, expected, code, note) in [
        (
            "expands to another loopback address",
            format!("http://127.0.0.2:{i}"),
            Layer::Host("http-fetch"),
            4,
            "checked by the host after expansion; exit 4",
        ),
        (
            "expands to userinfo 127.0.0.1:PORT@127.0.0.2:PORT",
            format!("http://127.0.0.1:{i}@127.0.0.2:{i}"),
            Layer::Source,
            5,
            "the component's run-time URL check refuses it before the host; exit 5",
        ),
        (
            "expands to the granted origin",
            identity.url(),
            Layer::Allowed,
            0,
            "control: the same config works when the value is granted",
        ),
    ] {
        let run = cli_token(
            &files,
            &auth(&tokens.url(), source.clone()),
            &policy_text,
            "raw",
            &[(var, &value)],
        );
        let layer = match run.code {
            Some(0) => Some(Layer::Allowed),
            Some(4) if run.stderr.contains("http-fetch denied") => Some(Layer::Host("http-fetch")),
            Some(5) if run.stderr.contains("identity token from the url source") => {
                Some(Layer::Source)
            }
            _ => None,
        };
        if run.code != Some(code) {
            table.problem(format!("{name}: exit {:?}, expected {code}", run.code));
        }
        // A denial names the refused origin (so that one knows what to
        // grant); the component's own refusal shows the URL as written,
        // never the expanded value.
        if layer == Some(Layer::Source) && run.stderr.contains(&value) {
            table.problem(format!(
                "{name}: the expanded value is in the error: {}",
                run.stderr
            ));
        }
        table.row(
            name,
            expected,
            note,
            Outcome {
                layer,
                detail: format!("{}{}", run.stderr, run.stdout),
            },
        );
    }
    if decoy.connections() != 0 {
        table.problem(format!("127.0.0.2:{i} was contacted"));
    }
    assert_eq!(identity.requests().len(), 1, "only the granted run fetched");
    table.finish();
}

/// The folder layout of the file cases: `allowed/` is granted as a prefix,
/// `outside/` holds a secret.
struct Tree {
    files: Files,
}

impl Tree {
    fn new() -> Tree {
        let files = Files::new();
        for dir in ["allowed", "outside", "allowed-evil"] {
            std::fs::create_dir(files.dir().join(dir)).unwrap();
        }
        files.write("allowed/token", JWT);
        files.write("outside/secret", OUTSIDE_SECRET);
        files.write("outside/token", OUTSIDE_SECRET);
        files.write("allowed-evil/secret", OUTSIDE_SECRET);
        Tree { files }
    }

    fn path(&self, relative: &str) -> String {
        format!("{}/{relative}", self.files.dir().display())
    }

    fn prefix_policy(&self, tokens: &LoopbackServer) -> Policy {
        policy(&format!(
            "[files]\nallow_prefixes = [{}]\n[http]\nallow_origins = [{}]\n",
            q(self.path("allowed")),
            q(tokens.url())
        ))
    }
}

#[test]
fn path_tricks() {
    use std::os::unix::fs::symlink;

    let base = provider(Policy::default());
    let tokens = token_server();
    let tree = Tree::new();
    let dir = tree.files.dir();
    symlink(dir.join("outside/secret"), dir.join("allowed/link")).unwrap();
    symlink(dir.join("outside"), dir.join("allowed/dirlink")).unwrap();
    symlink(dir.join("allowed/b"), dir.join("allowed/a")).unwrap();
    symlink(dir.join("outside/secret"), dir.join("allowed/b")).unwrap();
    symlink("../outside/secret", dir.join("allowed/relative")).unwrap();
    symlink(dir.join("allowed/token"), dir.join("allowed/alias")).unwrap();
    symlink(dir.join("outside/secret"), dir.join("granted-link")).unwrap();
    let fifo = dir.join("allowed/fifo");
    mkfifo(&fifo);

    let prefixed = base.with_policy(tree.prefix_policy(&tokens));
    let mut table = Table::new("file paths, prefix DIR/allowed granted");
    let file = |provider: &Provider, path: &str| {
        get(provider, &config(&tokens.url(), json!({ "file": path })))
    };

    let cases: Vec<(&str, String, Layer, &str)> = vec![
        (
            "`..` to an outside file",
            tree.path("allowed/../outside/secret"),
            Layer::Host("read-file"),
            "resolved before the check: DIR/outside/secret",
        ),
        (
            "`..` to a missing outside file",
            tree.path("allowed/../outside/missing"),
            Layer::Host("read-file"),
            "denied, not \"not found\": no probing outside the grant",
        ),
        (
            "`..` that comes back inside",
            tree.path("allowed/../allowed/token"),
            Layer::Allowed,
            "resolves to the granted file itself",
        ),
        (
            "`.` and `//`",
            tree.path("allowed/.//token"),
            Layer::Allowed,
            "resolves to the granted file itself",
        ),
        (
            "look-alike prefix allowed-evil/",
            tree.path("allowed-evil/secret"),
            Layer::Host("read-file"),
            "prefixes match whole path components",
        ),
        (
            "final-component symlink to outside",
            tree.path("allowed/link"),
            Layer::Host("read-file"),
            "the link is resolved before the check",
        ),
        (
            "directory symlink to outside",
            tree.path("allowed/dirlink/secret"),
            Layer::Host("read-file"),
            "the link is resolved before the check",
        ),
        (
            "chain of symlinks to outside",
            tree.path("allowed/a"),
            Layer::Host("read-file"),
            "resolved to the end of the chain",
        ),
        (
            "relative symlink ../outside/secret",
            tree.path("allowed/relative"),
            Layer::Host("read-file"),
            "resolved before the check",
        ),
        (
            "symlink to a file inside",
            tree.path("allowed/alias"),
            Layer::Allowed,
            "resolves inside the prefix",
        ),
        (
            "/proc/self/root + granted path",
            format!("/proc/self/root{}", tree.path("allowed/token")),
            Layer::Allowed,
            "resolves to the granted file itself",
        ),
        (
            "trailing slash on a file",
            tree.path("allowed/token/"),
            Layer::Host("read-file"),
            "does not resolve (not a directory): refused",
        ),
        (
            "relative path",
            "allowed/token".to_string(),
            Layer::Host("read-file"),
            "only absolute paths are granted",
        ),
        (
            "missing file inside (control)",
            tree.path("allowed/missing"),
            Layer::Source,
            "inside the grant: \"does not exist\"",
        ),
        (
            "FIFO inside",
            tree.path("allowed/fifo"),
            Layer::Source,
            "not a regular file; opened non-blocking, no hang",
        ),
        (
            "NUL in the path",
            format!("{}\0/../outside/secret", tree.path("allowed/token")),
            Layer::ConfigValidation,
            "a NUL is refused in the config",
        ),
    ];
    for (name, path, expected, note) in cases {
        table.row(name, expected, note, file(&prefixed, &path));
    }

    // A grant that names a symlink grants the file it points to: the grant
    // is resolved like the request (Kubernetes projected tokens are
    // symlinks into `..data/`). Documented, not a bypass: the policy's
    // author named that path.
    let exact_link = base.with_policy(policy(&format!(
        "[files]\nallow = [{}]\n[http]\nallow_origins = [{}]\n",
        q(tree.path("granted-link")),
        q(tokens.url())
    )));
    let got = file(&exact_link, &tree.path("granted-link"));
    table.row(
        "granted path that is itself a symlink",
        Layer::Allowed,
        "the grant is resolved too; its target is what the policy names",
        got,
    );
    let got = file(&exact_link, &tree.path("outside/token"));
    table.row(
        "another file next to the link's target",
        Layer::Host("read-file"),
        "an exact grant covers one file",
        got,
    );

    for (name, toml) in [
        (
            "policy grant with `..`",
            format!(
                "[files]\nallow_prefixes = [{}]\n",
                q(tree.path("allowed/../outside"))
            ),
        ),
        (
            "policy grant that is relative",
            "[files]\nallow = [\"allowed/token\"]\n".to_string(),
        ),
    ] {
        table.row(
            name,
            Layer::PolicyValidation,
            "refused when the policy is loaded",
            Outcome::of_policy(&Policy::from_toml(&toml)),
        );
    }

    // The outside secret was never sent, and every exchange carried the
    // granted token, except the documented exact grant of a symlink.
    let sent: Vec<String> = exchanges(&tokens).iter().map(assertion_of).collect();
    let outside = sent.iter().filter(|a| *a == OUTSIDE_SECRET).count();
    if outside != 1 {
        table.problem(format!(
            "the outside secret was sent {outside} times, expected once (the granted link)"
        ));
    }
    table.finish();
}

#[cfg(target_os = "linux")]
#[test]
fn a_symlink_swapped_in_during_the_read_is_never_followed_out() {
    // A thread swaps, as fast as it can, (1) a directory inside the prefix
    // for a symlink to an outside directory and (2) a granted file for a
    // symlink to an outside file, while the provider reads through both.
    // Whatever the interleaving, the outside secret is never read: the
    // host resolves the path, opens the result with O_NOFOLLOW and checks,
    // through /proc/self/fd, that it opened what it checked.
    use std::os::unix::fs::symlink;

    let tokens = token_server();
    let tree = Tree::new();
    let dir = tree.files.dir();
    let allowed = dir.join("allowed");
    std::fs::create_dir(allowed.join("d")).unwrap();
    std::fs::write(allowed.join("d/token"), JWT).unwrap();
    symlink(dir.join("outside"), allowed.join("d.link")).unwrap();
    std::fs::write(allowed.join("f"), JWT).unwrap();
    symlink(dir.join("outside/token"), allowed.join("f.link")).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, allowed) = (stop.clone(), allowed.clone());
        std::thread::spawn(move || {
            let swap = |name: &str| {
                let (real, link, parked) = (
                    allowed.join(name),
                    allowed.join(format!("{name}.link")),
                    allowed.join(format!("{name}.real")),
                );
                let _ = std::fs::rename(&real, &parked);
                let _ = std::fs::rename(&link, &real);
                std::thread::yield_now();
                let _ = std::fs::rename(&real, &link);
                let _ = std::fs::rename(&parked, &real);
            };
            let mut swaps = 0u64;
            while !stop.load(Ordering::SeqCst) {
                swap("d");
                swap("f");
                swaps += 1;
            }
            swaps
        })
    };

    let provider = provider(tree.prefix_policy(&tokens));
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for round in 0..300 {
        let path = if round % 2 == 0 {
            allowed.join("d/token")
        } else {
            allowed.join("f")
        };
        let config = config(&tokens.url(), json!({ "file": path }));
        let result = provider.get_token(&config);
        let key = match &result {
            Ok(_) => "token (granted file read)".to_string(),
            Err(Error::Denied { capability, detail }) => {
                let why = if detail.contains("changed while it was being opened") {
                    "swapped after the check"
                } else {
                    "resolved outside"
                };
                format!("Denied {capability}: {why}")
            }
            Err(Error::SourceFailed { message, .. }) => {
                let why = if message.contains("does not exist") {
                    "missing mid-swap"
                } else {
                    "open refused (O_NOFOLLOW)"
                };
                format!("SourceFailed: {why}")
            }
            Err(other) => panic!("unexpected error {other:?}"),
        };
        *outcomes.entry(key).or_default() += 1;
        provider.invalidate(&config).unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    let swaps = swapper.join().unwrap();

    println!("\nsymlink swapped in during the read: 300 reads, {swaps} swap rounds");
    for (outcome, count) in &outcomes {
        println!("  {outcome:45} {count}");
    }
    let sent: Vec<String> = exchanges(&tokens).iter().map(assertion_of).collect();
    assert!(
        sent.iter().all(|a| a == JWT),
        "an outside file was read and sent"
    );
    assert!(!sent.iter().any(|a| a == OUTSIDE_SECRET));
}

#[test]
fn argv_tricks() {
    let base = provider(Policy::default());
    let tokens = token_server();
    let granted = base.with_policy(policy(&format!(
        "[commands]\nallow = [[\"gcloud\", \"auth\", \"print-identity-token\"], [\"echo\", \"granted-prefix\"]]\n[http]\nallow_origins = [{}]\n",
        q(tokens.url())
    )));
    let mut table = Table::new(
        "command argv, [gcloud, auth, print-identity-token] and [echo, granted-prefix] granted",
    );
    let refused = "argv must start with a granted prefix, element by element, exactly";
    let cases: Vec<(&str, Value, Layer, &str)> = vec![
        (
            "gcloud;id",
            json!(["gcloud;id"]),
            Layer::Host("run-command"),
            "no shell; and not the granted program name",
        ),
        (
            "gcloud;id with the granted arguments",
            json!(["gcloud;id", "auth", "print-identity-token"]),
            Layer::Host("run-command"),
            refused,
        ),
        (
            "extra leading argument: env gcloud …",
            json!(["env", "gcloud", "auth", "print-identity-token"]),
            Layer::Host("run-command"),
            refused,
        ),
        (
            "relative path ./gcloud",
            json!(["./gcloud", "auth", "print-identity-token"]),
            Layer::Host("run-command"),
            "the program is compared as written",
        ),
        (
            "absolute path /usr/bin/gcloud",
            json!(["/usr/bin/gcloud", "auth", "print-identity-token"]),
            Layer::Host("run-command"),
            "the program is compared as written",
        ),
        (
            "upper case GCLOUD",
            json!(["GCLOUD", "auth", "print-identity-token"]),
            Layer::Host("run-command"),
            refused,
        ),
        (
            "leading space",
            json!([" gcloud", "auth", "print-identity-token"]),
            Layer::Host("run-command"),
            refused,
        ),
        (
            "shorter than the granted prefix",
            json!(["gcloud", "auth"]),
            Layer::Host("run-command"),
            "the whole prefix is required",
        ),
        (
            "the prefix as one argument",
            json!(["gcloud auth print-identity-token"]),
            Layer::Host("run-command"),
            refused,
        ),
        (
            "`;id` glued to the last granted argument",
            json!(["gcloud", "auth", "print-identity-token;id"]),
            Layer::Host("run-command"),
            refused,
        ),
        (
            "sh -c",
            json!(["sh", "-c", "echo token"]),
            Layer::Host("run-command"),
            refused,
        ),
        (
            "granted prefix + extra arguments (gcloud)",
            json!(["gcloud", "auth", "print-identity-token", "--audiences=x"]),
            Layer::Source,
            "allowed by design (a prefix grant); gcloud is not installed here",
        ),
        (
            "granted prefix + extra arguments (echo)",
            json!(["echo", "granted-prefix", "extra"]),
            Layer::Allowed,
            "allowed by design: a grant is an argv prefix",
        ),
        (
            "NUL in an argument",
            json!(["gcloud\u{0}", "auth", "print-identity-token"]),
            Layer::ConfigValidation,
            "a NUL is refused in the config",
        ),
        (
            "empty argument",
            json!([""]),
            Layer::ConfigValidation,
            "empty arguments are refused",
        ),
        (
            "empty argv",
            json!([]),
            Layer::ConfigValidation,
            "an empty command is refused",
        ),
    ];
    for (name, argv, expected, note) in cases {
        let got = get(&granted, &config(&tokens.url(), json!({ "command": argv })));
        table.row(name, expected, note, got);
    }
    let sent: Vec<String> = exchanges(&tokens).iter().map(assertion_of).collect();
    assert_eq!(sent, ["granted-prefix extra"], "only the echo ran");
    table.finish();
}

#[test]
fn env_name_tricks() {
    let base = provider(Policy::default());
    let tokens = token_server();
    let granted = base.with_policy(policy(&format!(
        "[env]\nallow = [\"WIF_IT_BYPASS_TOKEN\"]\n[http]\nallow_origins = [{}]\n",
        q(tokens.url())
    )));
    let mut table = Table::new("environment variable names, WIF_IT_BYPASS_TOKEN granted");

    for (name, toml) in [
        ("policy grants `A=B`", "[env]\nallow = [\"A=B\"]\n"),
        (
            "policy grants `A<NUL>B`",
            "[env]\nallow = [\"A\\u0000B\"]\n",
        ),
        ("policy grants ``", "[env]\nallow = [\"\"]\n"),
        (
            "policy grants `WIF_IT_BYPASS_TOKEN=x`",
            "[env]\nallow = [\"WIF_IT_BYPASS_TOKEN=x\"]\n",
        ),
    ] {
        table.row(
            name,
            Layer::PolicyValidation,
            "names with `=` or NUL cannot be granted",
            Outcome::of_policy(&Policy::from_toml(toml)),
        );
    }
    let cases: Vec<(&str, Value, Layer, &str)> = vec![
        (
            "config asks for `WIF_IT_BYPASS_TOKEN=x`",
            json!({"env": "WIF_IT_BYPASS_TOKEN=x"}),
            Layer::ConfigValidation,
            "names with `=` are refused in the config",
        ),
        (
            "config asks for `WIF_IT_BYPASS_TOKEN<NUL>`",
            json!({"env": "WIF_IT_BYPASS_TOKEN\u{0}"}),
            Layer::ConfigValidation,
            "names with NUL are refused in the config",
        ),
        (
            "`${A=B}` in the identity URL",
            json!({"url": "http://127.0.0.1:1/${WIF_IT_BYPASS_TOKEN=x}", "response_field": "value"}),
            Layer::ConfigValidation,
            "not a valid reference",
        ),
        (
            "other case: wif_it_bypass_token",
            json!({"env": "wif_it_bypass_token"}),
            Layer::Host("get-env"),
            "names are compared exactly",
        ),
        (
            "an ungranted variable: PATH",
            json!({"env": "PATH"}),
            Layer::Host("get-env"),
            "only granted names are read",
        ),
        (
            "an ungranted variable in a URL header",
            json!({
                "url": format!("{}/oidc", tokens.url()),
                "headers": {"Authorization": "bearer ${HOME}"},
                "response_field": "value",
            }),
            Layer::Host("get-env"),
            "every `${VAR}` goes through get-env",
        ),
    ];
    for (name, source, expected, note) in cases {
        table.row(
            name,
            expected,
            note,
            get(&granted, &config(&tokens.url(), source)),
        );
    }
    assert!(tokens.requests().is_empty());
    table.finish();
}
