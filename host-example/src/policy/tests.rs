use super::*;

#[track_caller]
fn invalid_at(toml: &str, key: &str, part: &str) {
    match Policy::from_toml(toml) {
        Err(PolicyError::Invalid { key: k, message }) => {
            assert_eq!(k, key, "{message}");
            assert!(message.contains(part), "`{message}` lacks `{part}`");
        }
        Err(other) => panic!("expected an invalid value at {key}, got {other}"),
        Ok(_) => panic!("expected an invalid value at {key}, got a policy"),
    }
}

#[test]
fn an_empty_policy_grants_nothing() {
    let policy = Policy::from_toml("").unwrap();
    assert!(!policy.allows_env("HOME"));
    assert!(!policy.allows_file(Path::new("/etc/passwd")));
    assert!(!policy.allows_command(&["true".into()]));
    assert_eq!(policy.http_timeout, DEFAULT_HTTP_TIMEOUT);
    assert_eq!(policy.max_body_bytes, 1024 * 1024);
}

#[test]
fn unknown_keys_are_rejected_with_the_expected_ones() {
    let err = Policy::from_toml("[http]\nallowed_origins = []")
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("allowed_origins") && err.contains("allow_origins"),
        "{err}"
    );
    let err = Policy::from_toml("[network]\n").err().unwrap().to_string();
    assert!(err.contains("network") && err.contains("http"), "{err}");
}

#[test]
fn origins_say_what_to_write() {
    invalid_at(
        "[http]\nallow_origins = [\"api.anthropic.com\"]",
        "http.allow_origins[0]",
        "write `https://api.anthropic.com`",
    );
    invalid_at(
        "[http]\nallow_origins = [\"https://api.anthropic.com/v1\"]",
        "http.allow_origins[0]",
        "an origin is `https://api.anthropic.com`",
    );
    invalid_at(
        "[http]\nallow_origins = [\"http://api.anthropic.com\"]",
        "http.allow_origins[0]",
        "write `https://api.anthropic.com`",
    );
    invalid_at(
        "[http]\nallow_origins = [\"https://u:p@h.test\"]",
        "http.allow_origins[0]",
        "user information",
    );
    invalid_at(
        "[http]\nallow_origins = [\"ftp://h.test\"]",
        "http.allow_origins[0]",
        "http or https",
    );
}

#[test]
fn origins_are_normalized() {
    let policy = Policy::from_toml(
        "[http]\nallow_origins = [\"HTTPS://API.Anthropic.com:443\", \"http://127.0.0.1:8080\", \"http://[::1]:9\", \"http://169.254.169.254\", \"http://localhost:1\"]",
    )
    .unwrap();
    let shown: Vec<String> = policy.origins.iter().map(Origin::to_string).collect();
    assert_eq!(
        shown,
        [
            "https://api.anthropic.com",
            "http://127.0.0.1:8080",
            "http://[::1]:9",
            "http://169.254.169.254",
            "http://localhost:1"
        ]
    );
    let url = url::Url::parse("https://api.anthropic.com/v1/oauth/token").unwrap();
    assert!(policy.allows_origin(&Origin::of(&url).unwrap()));
    let other_port = url::Url::parse("https://api.anthropic.com:8443/").unwrap();
    assert!(!policy.allows_origin(&Origin::of(&other_port).unwrap()));
}

#[test]
fn plain_http_is_granted_to_local_hosts_only() {
    for local in [
        "http://app.localhost:8080",
        "http://[::ffff:127.0.0.1]:8080",
        "http://[::ffff:169.254.169.254]",
    ] {
        let toml = format!("[http]\nallow_origins = [\"{local}\"]");
        assert!(Policy::from_toml(&toml).is_ok(), "{local}");
    }
    for remote in ["http://localhost.example.com", "http://[::ffff:10.0.0.1]"] {
        invalid_at(
            &format!("[http]\nallow_origins = [\"{remote}\"]"),
            "http.allow_origins[0]",
            "uses plain http",
        );
    }
}

#[test]
fn files_must_be_absolute_without_dotdot() {
    invalid_at(
        "[files]\nallow = [\"token\"]",
        "files.allow[0]",
        "write an absolute path like `/token`",
    );
    invalid_at(
        "[files]\nallow_prefixes = [\"/var/../etc\"]",
        "files.allow_prefixes[0]",
        "`..`",
    );
}

#[test]
fn prefixes_match_whole_components_and_symlinks_are_resolved() {
    let dir = tempfile::tempdir().unwrap();
    let real = std::fs::canonicalize(dir.path()).unwrap();
    let granted = real.join("granted");
    std::fs::create_dir(&granted).unwrap();
    std::fs::write(granted.join("token"), "t").unwrap();
    std::fs::write(real.join("granted-not"), "t").unwrap();
    let policy = Policy::from_toml(&format!(
        "[files]\nallow_prefixes = [\"{}\"]",
        granted.display()
    ))
    .unwrap();
    assert!(policy.allows_file(&granted.join("token")));
    assert!(!policy.allows_file(&real.join("granted-not")));
    assert!(!policy.allows_file_lexically(&granted.join("../granted-not")));
}

#[test]
fn env_names_and_commands_are_checked() {
    invalid_at("[env]\nallow = [\"A=B\"]", "env.allow[0]", "without `=`");
    invalid_at("[env]\nallow = [\"\"]", "env.allow[0]", "variable name");
    invalid_at(
        "[commands]\nallow = [[]]",
        "commands.allow[0]",
        "at least the program",
    );
    invalid_at(
        "[commands]\nallow = [[\"gcloud\", \"\"]]",
        "commands.allow[0][1]",
        "non-empty",
    );
    let policy = Policy::from_toml("[commands]\nallow = [[\"gcloud\", \"auth\"]]").unwrap();
    let argv = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(policy.allows_command(&argv(&["gcloud", "auth", "print-identity-token"])));
    assert!(!policy.allows_command(&argv(&["gcloud"])));
    assert!(!policy.allows_command(&argv(&["gcloud;id", "auth"])));
    assert!(!policy.allows_command(&argv(&["./gcloud", "auth"])));
    assert!(!policy.allows_command(&argv(&["env", "gcloud", "auth"])));
}

#[test]
fn limits_are_validated() {
    invalid_at(
        "[http]\ntimeout_secs = 0",
        "http.timeout_secs",
        "from 0.001",
    );
    invalid_at(
        "[http]\ntimeout_secs = 1e-300",
        "http.timeout_secs",
        "from 0.001",
    );
    invalid_at(
        "[commands]\ntimeout_secs = -1",
        "commands.timeout_secs",
        "from 0.001",
    );
    invalid_at(
        "[http]\nmax_body_bytes = 0",
        "http.max_body_bytes",
        "above 0",
    );
    let policy =
        Policy::from_toml("[http]\ntimeout_secs = 0.5\n[commands]\ntimeout_secs = 2").unwrap();
    assert_eq!(policy.http_timeout, Duration::from_millis(500));
    assert_eq!(policy.command_timeout, Duration::from_secs(2));
}

#[test]
fn the_minimal_policy_covers_the_requirements_and_parses_back() {
    let needs = Requirements {
        env: vec!["REQ_URL".into(), "REQ_TOKEN".into()],
        files: vec!["/var/run/secrets/token".into()],
        origins: vec!["https://api.anthropic.com".into()],
        urls: vec![
            ("${REQ_URL}&audience=x".into(), None),
            ("${env.ENV_FORM_URL}&audience=x".into(), None),
            ("${UNSET}/t".into(), None),
        ],
        commands: vec![vec![
            "gcloud".into(),
            "auth".into(),
            "print-identity-token".into(),
        ]],
        ..Requirements::default()
    };
    let minimal = Policy::minimal(&needs, |name| match name {
        "REQ_URL" => Some("https://token.actions.example/x?a=1".to_string()),
        "ENV_FORM_URL" => Some("https://env-form.example:8443/t?v=2".to_string()),
        _ => None,
    });
    let parsed = Policy::from_toml(&minimal.toml).unwrap();
    let origins: Vec<String> = parsed.origins.iter().map(Origin::to_string).collect();
    assert_eq!(
        origins,
        [
            "https://api.anthropic.com",
            "https://token.actions.example",
            "https://env-form.example:8443"
        ],
        "`${{env.NAME}}` is resolved as `NAME`"
    );
    assert_eq!(parsed.env, ["REQ_URL", "REQ_TOKEN"]);
    assert_eq!(parsed.files, [PathBuf::from("/var/run/secrets/token")]);
    assert_eq!(parsed.commands, needs.commands);
    assert_eq!(minimal.notes.len(), 1);
    assert!(
        minimal.notes[0].contains("${UNSET}/t"),
        "{:?}",
        minimal.notes
    );
}

#[test]
fn when_set_urls_optional_variables_and_variable_files_follow_the_environment() {
    let needs = Requirements {
        env: vec!["A".into()],
        optional_env: vec![
            "A".into(),
            "AWS_REGION".into(),
            "AWS_ENDPOINT_URL_STS".into(),
        ],
        files: vec!["${TOKEN_FILE}".into(), "${UNSET_FILE}".into()],
        origins: vec!["http://169.254.169.254".into()],
        when_set_urls: vec![
            ("https://sts.${AWS_REGION}.amazonaws.com/".into(), None),
            ("${AWS_ENDPOINT_URL_STS}".into(), None),
            (
                "http://169.254.170.2${RELATIVE}".into(),
                Some("http://169.254.170.2".into()),
            ),
            ("${NOT_A_URL}".into(), None),
        ],
        ..Requirements::default()
    };
    let minimal = Policy::minimal(&needs, |name| match name {
        "AWS_REGION" => Some("eu-west-1".to_string()),
        "TOKEN_FILE" => Some("/var/run/secrets/pod-identity/token".to_string()),
        "NOT_A_URL" => Some("sts.example".to_string()),
        _ => None,
    });
    let parsed = Policy::from_toml(&minimal.toml).unwrap();
    let origins: Vec<String> = parsed.origins.iter().map(Origin::to_string).collect();
    assert_eq!(
        origins,
        [
            "http://169.254.169.254",
            "https://sts.eu-west-1.amazonaws.com"
        ],
        "unset overrides are skipped without a note"
    );
    assert_eq!(parsed.env, ["A", "AWS_REGION", "AWS_ENDPOINT_URL_STS"]);
    assert_eq!(
        parsed.files,
        [PathBuf::from("/var/run/secrets/pod-identity/token")]
    );
    assert_eq!(minimal.notes.len(), 1, "{:?}", minimal.notes);
    assert!(minimal.notes[0].contains("${NOT_A_URL}"));
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    /// Values a policy key may plausibly hold, valid and not.
    fn value() -> impl Strategy<Value = toml::Value> {
        let text = prop_oneof![
            Just("https://api.anthropic.com".to_string()),
            Just("HTTP://[::1]:8080".to_string()),
            Just("http://169.254.169.254".to_string()),
            Just("http://example.com".to_string()),
            Just("https://user@h".to_string()),
            Just("https://h/path".to_string()),
            Just("/var/run/secrets/".to_string()),
            Just("relative/../x".to_string()),
            Just("GITHUB_TOKEN".to_string()),
            Just("A=B".to_string()),
            Just(String::new()),
            "[a-z]{1,5}://[a-z0-9.:\\[\\]@/?#%-]{0,20}",
            any::<String>(),
        ];
        let leaf = prop_oneof![
            text.prop_map(toml::Value::String),
            any::<i64>().prop_map(toml::Value::Integer),
            prop_oneof![
                Just(0.0),
                Just(-1.0),
                Just(3600.0),
                Just(3600.5),
                Just(f64::NAN),
                Just(f64::INFINITY),
                Just(1e-300),
                any::<f64>()
            ]
            .prop_map(toml::Value::Float),
            any::<bool>().prop_map(toml::Value::Boolean),
        ];
        leaf.prop_recursive(2, 8, 4, |inner| {
            prop::collection::vec(inner, 0..4).prop_map(toml::Value::Array)
        })
    }

    /// A policy with the real section and key names and random values.
    fn policy_table() -> impl Strategy<Value = toml::Table> {
        let section = |keys: &'static [&'static str]| {
            prop::collection::vec((prop::sample::select(keys), value()), 0..=keys.len()).prop_map(
                |pairs| {
                    pairs
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect::<toml::Table>()
                },
            )
        };
        (
            prop::option::of(section(&["allow", "deny"])),
            prop::option::of(section(&["allow", "allow_prefixes", "max_bytes"])),
            prop::option::of(section(&[
                "allow_origins",
                "timeout_secs",
                "max_body_bytes",
            ])),
            prop::option::of(section(&["allow", "timeout_secs", "max_output_bytes"])),
        )
            .prop_map(|(env, files, http, commands)| {
                let mut table = toml::Table::new();
                for (name, section) in [
                    ("env", env),
                    ("files", files),
                    ("http", http),
                    ("commands", commands),
                ] {
                    if let Some(section) = section {
                        table.insert(name.into(), toml::Value::Table(section));
                    }
                }
                table
            })
    }

    /// What an accepted policy must satisfy.
    fn check_accepted(policy: &Policy) {
        for origin in &policy.origins {
            let shown = origin.to_string();
            let again = parse_origin(&shown, "origin")
                .unwrap_or_else(|e| panic!("{shown} does not parse back: {e}"));
            assert_eq!(&again, origin);
        }
        assert!(
            policy
                .files
                .iter()
                .chain(&policy.file_prefixes)
                .all(|p| p.is_absolute())
        );
        for timeout in [policy.http_timeout, policy.command_timeout] {
            assert!(!timeout.is_zero() && timeout <= Duration::from_secs(3600));
        }
        assert!(policy.max_file_bytes > 0 && policy.max_body_bytes > 0);
        assert!(policy.max_output_bytes > 0);
        assert!(policy.commands.iter().all(|argv| !argv.is_empty()));
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 256,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn from_toml_never_panics_on_text(text in any::<String>()) {
            if let Ok(policy) = Policy::from_toml(&text) {
                check_accepted(&policy);
            }
        }

        #[test]
        fn from_toml_never_panics_on_toml_shaped_text(text in r#"[\[\]a-z_=" .,0-9\n]{0,64}"#) {
            if let Ok(policy) = Policy::from_toml(&text) {
                check_accepted(&policy);
            }
        }

        #[test]
        fn from_toml_never_panics_on_policies(table in policy_table()) {
            let text = toml::to_string(&table).expect("a table serializes");
            if let Ok(policy) = Policy::from_toml(&text) {
                check_accepted(&policy);
            }
        }
    }
}

#[test]
fn proxy_is_env_none_or_a_url_and_says_what_to_write() {
    assert_eq!(Policy::from_toml("").unwrap().proxy, ProxySetting::Env);
    assert_eq!(
        Policy::from_toml("[http]\nproxy = \"env\"").unwrap().proxy,
        ProxySetting::Env
    );
    assert_eq!(
        Policy::from_toml("[http]\nproxy = \"none\"").unwrap().proxy,
        ProxySetting::None
    );
    let pinned =
        Policy::from_toml("[http]\nproxy = \"http://u:secret-pw@proxy.corp:3128\"").unwrap();
    assert!(
        matches!(&pinned.proxy, ProxySetting::Pinned(p) if p.to_string() == "http://proxy.corp:3128")
    );
    assert!(!format!("{pinned:?}").contains("secret-pw"));
    invalid_at("[http]\nproxy = \"direct\"", "http.proxy", "\"none\"");
    invalid_at(
        "[http]\nproxy = \"ftp://u:secret-pw@p:1\"",
        "http.proxy",
        "socks5h://",
    );
    let err = Policy::from_toml("[http]\nproxy = \"ftp://u:secret-pw@p:1\"")
        .err()
        .unwrap()
        .to_string();
    assert!(!err.contains("secret-pw"), "{err}");
}

#[test]
fn ca_files_must_be_absolute_readable_pem_certificates() {
    invalid_at(
        "[http]\nca_files = [\"ca.pem\"]",
        "http.ca_files[0]",
        "absolute",
    );
    invalid_at(
        "[http]\nca_files = [\"/nonexistent/ca.pem\"]",
        "http.ca_files[0]",
        "cannot read /nonexistent/ca.pem",
    );
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    invalid_at(
        &format!("[http]\nca_files = [{:?}]", empty.to_str().unwrap()),
        "http.ca_files[0]",
        "no PEM certificate",
    );
}

#[test]
fn ca_files_with_a_certificate_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let cert = rcgen::generate_simple_self_signed(vec!["corp-ca".to_string()]).unwrap();
    std::fs::write(&ca, cert.cert.pem()).unwrap();
    let policy =
        Policy::from_toml(&format!("[http]\nca_files = [{:?}]", ca.to_str().unwrap())).unwrap();
    assert_eq!(policy.ca_files, vec![ca]);
}
