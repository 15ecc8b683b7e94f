//! Properties of the parsers that take untrusted input, checked on generated
//! inputs in the ordinary test suite. The cargo-fuzz targets in `fuzz/`
//! check the same on inputs a coverage-guided fuzzer finds.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::capabilities::{Header, HttpResponse};
use crate::config::{Config, IdentitySource};
use crate::error::Error;
use crate::requirements::Requirements;
use crate::secret::Secret;
use crate::testing::{FakeCaps, assert_no_secret, config};
use crate::{exchange, expand, sources};

const ASSERTION: &str = "eyJhbGciOiJSUzI1NiJ9.prop-assertion-secret.c2ln";
const REQUEST_TOKEN: &str = "prop-request-bearer-0c4e1a";
const AUDIENCE: &str = "prop-audience-secret-93b7";

fn cases() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Strings a config field may plausibly hold, valid and not.
fn field_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("fdrl_rule1".to_string()),
        Just("svac_01".to_string()),
        Just("wrkspc_01".to_string()),
        Just("default".to_string()),
        Just("12345678-9abc-def0-1234-56789abcdef0".to_string()),
        Just("https://api.anthropic.com/".to_string()),
        Just("http://127.0.0.1:8080".to_string()),
        Just("http://[::1]:1/x?q".to_string()),
        Just("https://idp.example/t?aud=${AUD}".to_string()),
        Just("${URL}".to_string()),
        Just("${env.URL}&audience=x".to_string()),
        Just("Bearer ${TOKEN}".to_string()),
        Just("/var/run/token".to_string()),
        Just("TOKEN".to_string()),
        Just("id_token".to_string()),
        Just(" padded ".to_string()),
        Just(String::new()),
        "[a-z_]{1,8}[a-zA-Z0-9_${}:/?#@.\\[\\] -]{0,24}",
        any::<String>(),
    ]
}

/// A JSON value: a leaf, or a small list or map of leaves.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        field_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(field_text(), inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A map holding some of `keys`, each with a value from `value`.
fn object_of(
    keys: &'static [&'static str],
    value: impl Strategy<Value = Value> + Clone,
) -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec((prop::sample::select(keys), value), 0..=keys.len())
        .prop_map(|pairs| pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// An `auth` block with the real field names and random values.
fn auth_block() -> impl Strategy<Value = Value> {
    let headers = prop::collection::btree_map(
        prop_oneof![
            Just("Authorization".to_string()),
            Just("bad header".to_string()),
            "[A-Za-z-]{1,12}"
        ],
        prop_oneof![field_text().prop_map(Value::String), json_value()],
        0..3,
    )
    .prop_map(|m| Value::Object(m.into_iter().collect()));
    let source_value = prop_oneof![
        4 => field_text().prop_map(Value::String),
        1 => prop::collection::vec(field_text().prop_map(Value::String), 0..4).prop_map(Value::Array),
        1 => headers,
        1 => json_value(),
    ];
    let source = object_of(
        &[
            "file",
            "env",
            "command",
            "url",
            "headers",
            "response_field",
            "other",
        ],
        source_value,
    );
    let wif_value = prop_oneof![
        4 => field_text().prop_map(Value::String),
        1 => json_value(),
    ];
    let wif = (
        object_of(
            &[
                "federation_rule_id",
                "organization_id",
                "service_account_id",
                "workspace_id",
                "base_url",
                "extra",
            ],
            wif_value,
        ),
        prop::option::weighted(0.9, source),
    )
        .prop_map(|(mut wif, source)| {
            if let Some(source) = source {
                wif.insert("identity_token".into(), Value::Object(source));
            }
            Value::Object(wif)
        });
    let kind = prop_oneof![
        8 => Just(json!("workload_identity_federation")),
        1 => json_value(),
    ];
    (
        prop::option::weighted(0.95, kind),
        prop::option::weighted(0.95, wif),
    )
        .prop_map(|(kind, wif)| {
            let mut auth = Map::new();
            if let Some(kind) = kind {
                auth.insert("type".into(), kind);
            }
            if let Some(wif) = wif {
                auth.insert("workload_identity_federation".into(), wif);
            }
            Value::Object(auth)
        })
}

/// What an accepted config must satisfy.
fn check_accepted(config: &Config) {
    assert!(config.federation_rule_id.starts_with("fdrl_"));
    assert_eq!(config.organization_id.len(), 36);
    assert!(!config.base_url.ends_with('/'), "{}", config.base_url);
    if let IdentitySource::Url { url, headers, .. } = &config.identity_token {
        assert!(expand::variables(url).is_ok());
        assert!(headers.iter().all(|(_, v)| expand::variables(v).is_ok()));
    }
    Requirements::of(config).expect("an accepted config has requirements");
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn config_parse_never_panics_on_text(text in any::<String>()) {
        let _ = Config::parse(&text).map(|c| check_accepted(&c));
    }

    #[test]
    fn config_parse_never_panics_on_json_shaped_text(
        text in r#"[{}\[\]",:a-z_0-9 \\]{0,64}"#,
    ) {
        let _ = Config::parse(&text).map(|c| check_accepted(&c));
    }

    #[test]
    fn config_blocks_validate_the_same_as_text_or_value(auth in auth_block()) {
        let from_value = Config::from_value(&auth);
        let from_text = Config::parse(&auth.to_string());
        prop_assert_eq!(&from_value, &from_text);
        if let Ok(config) = from_value {
            check_accepted(&config);
        }
    }

    #[test]
    fn text_without_references_expands_to_itself(
        text in any::<String>().prop_filter("no `${`", |t| !t.contains("${")),
    ) {
        prop_assert!(expand::variables(&text).unwrap().is_empty());
        let out = expand::expand(&text, |_| -> Result<String, String> { panic!("no lookup") }, |e| e.0);
        prop_assert_eq!(out, Ok(text));
    }

    #[test]
    fn a_reference_expands_to_exactly_its_value_once(
        before in "[^$]{0,8}",
        name in "[A-Za-z_][A-Za-z0-9_]{0,16}",
        env_form in any::<bool>(),
        value in prop_oneof![any::<String>(), Just("${OTHER}".to_string()), Just("$${X}}".to_string())],
        after in "[^$]{0,8}",
    ) {
        let prefix = if env_form { "env." } else { "" };
        let template = format!("{before}${{{prefix}{name}}}{after}");
        let mut asked = Vec::new();
        let out = expand::expand(
            &template,
            |n| {
                asked.push(n.to_string());
                Ok::<_, String>(value.clone())
            },
            |e| e.0,
        );
        prop_assert_eq!(out, Ok(format!("{before}{value}{after}")));
        prop_assert_eq!(asked, vec![name.clone()]);
        prop_assert_eq!(expand::variables(&template).unwrap(), vec![name]);
    }

    #[test]
    fn variables_and_expand_agree_on_syntax(template in r"[a-z$\{\}_0-9-]{0,24}") {
        let listed = expand::variables(&template);
        let expanded = expand::expand(&template, |n| Ok::<_, String>(n.to_string()), |e| e.0);
        match (listed, expanded) {
            (Ok(_), Ok(_)) => {}
            (Err(a), Err(b)) => prop_assert_eq!(a.0, b),
            (a, b) => prop_assert!(false, "disagree: {:?} vs {:?}", a, b),
        }
    }

    #[test]
    fn exchange_answers_never_panic_or_leak(
        status in prop_oneof![Just(200u16), Just(201), Just(302), Just(400), Just(401), Just(500), any::<u16>()],
        body in exchange_body(),
    ) {
        let cfg = config(json!({"file": "/t"}));
        let response = HttpResponse {
            status,
            headers: vec![Header { name: "request-id".into(), value: format!("req_{ASSERTION}") }],
            body: body.clone(),
        };
        match exchange::parse(response, &cfg, &Secret::new(ASSERTION)) {
            Ok(issued) => {
                let token = issued.token.expose();
                prop_assert!(!token.is_empty() && token.trim() == token);
                prop_assert!(crate::token::is_b64token(token), "{:?}", token);
                prop_assert!(issued.expires_in_secs > 0);
            }
            Err(error) => {
                let token = access_token(&body);
                let mut secrets = vec![ASSERTION];
                secrets.extend(token.as_deref().map(str::trim).filter(|t| t.starts_with("sk-ant-")));
                assert_no_secret(&error, &secrets);
            }
        }
    }

    #[test]
    fn identity_answers_never_panic_or_leak(
        status in prop_oneof![Just(200u16), Just(204), Just(301), Just(403), Just(500), any::<u16>()],
        field in prop::option::of(prop_oneof![Just("id_token".to_string()), Just("value".to_string()), "[a-z_]{1,8}"]),
        body in identity_body(),
    ) {
        let mut source = json!({
            "url": "https://idp.example/token?audience=${AUDIENCE}",
            "headers": {"Authorization": "Bearer ${REQUEST_TOKEN}"},
        });
        if let Some(field) = &field {
            source["response_field"] = json!(field);
        }
        let cfg = config(source);
        let answer = body.clone();
        let caps = FakeCaps::new()
            .env("AUDIENCE", AUDIENCE)
            .env("REQUEST_TOKEN", REQUEST_TOKEN)
            .route("https://idp.example/", move |_| {
                Ok(HttpResponse { status, headers: Vec::new(), body: answer.clone() })
            });
        match sources::read_assertion(&caps, &cfg) {
            Ok(assertion) => {
                let token = assertion.expose();
                prop_assert!(!token.is_empty() && token.trim() == token);
                prop_assert!(token.len() <= sources::MAX_ASSERTION_BYTES);
            }
            Err(error) => {
                prop_assert!(matches!(error, Error::SourceFailed { .. }), "{}", error);
                let mut secrets = vec![REQUEST_TOKEN.to_string(), AUDIENCE.to_string()];
                if (200..300).contains(&status) {
                    let token = match &field {
                        Some(name) => serde_json::from_slice::<Value>(&body)
                            .ok()
                            .and_then(|v| v.get(name).and_then(Value::as_str).map(str::to_string)),
                        None => String::from_utf8(body.clone()).ok(),
                    };
                    secrets.extend(token.map(|t| t.trim().to_string()).filter(|t| t.starts_with("eyJ")));
                }
                let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
                assert_no_secret(&error, &secrets);
            }
        }
    }
}

/// The `access_token` string of a JSON object body.
fn access_token(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<Value>(body)
        .ok()?
        .get("access_token")?
        .as_str()
        .map(str::to_string)
}

/// Token endpoint answers: token responses and OAuth or API errors whose
/// fields may hold the token or the assertion, and raw bytes.
fn exchange_body() -> impl Strategy<Value = Vec<u8>> {
    let token = "sk-ant-oat01-[A-Za-z0-9_-]{8,24}";
    let text = prop_oneof![
        Just(ASSERTION.to_string()),
        token.prop_map(|t| format!("echo {t}")),
        Just(format!("bad assertion {ASSERTION}")),
        field_text(),
    ];
    let json_body = (
        prop::option::of(prop_oneof![
            token.prop_map(Value::String),
            Just(json!("  ")),
            json_value()
        ]),
        prop::option::of(prop_oneof![
            (0u64..100_000).prop_map(Value::from),
            json_value()
        ]),
        prop::option::of(prop_oneof![
            Just(json!("Bearer")),
            text.clone().prop_map(Value::String),
            json_value()
        ]),
        prop::option::of(prop_oneof![
            text.clone().prop_map(Value::String),
            (text.clone(), text.clone()).prop_map(|(t, m)| json!({"type": t, "message": m})),
        ]),
        prop::option::of(text.prop_map(Value::String)),
    )
        .prop_map(|(access, expires, kind, error, description)| {
            let mut body = Map::new();
            let fields = [
                ("access_token", access),
                ("expires_in", expires),
                ("token_type", kind),
                ("error", error),
                ("error_description", description),
            ];
            for (name, value) in fields {
                if let Some(value) = value {
                    body.insert(name.into(), value);
                }
            }
            Value::Object(body).to_string().into_bytes()
        });
    prop_oneof![
        4 => json_body,
        1 => prop::collection::vec(any::<u8>(), 0..64),
        1 => any::<String>().prop_map(String::into_bytes),
    ]
}

/// Identity URL answers: a bare token, JSON with the token under some field,
/// error pages echoing the request's secrets, and raw bytes.
fn identity_body() -> impl Strategy<Value = Vec<u8>> {
    let jwt = "eyJ[A-Za-z0-9_-]{4,16}\\.[A-Za-z0-9_-]{4,16}\\.[A-Za-z0-9_-]{0,8}";
    prop_oneof![
        jwt.prop_map(|t| format!(" {t}\n").into_bytes()),
        (
            prop_oneof![Just("id_token"), Just("value"), Just("token")],
            prop_oneof![jwt.prop_map(Value::String), Just(json!(" ")), json_value()]
        )
            .prop_map(|(k, v)| json!({ k: v }).to_string().into_bytes()),
        Just(format!("denied: Bearer {REQUEST_TOKEN} for audience={AUDIENCE}").into_bytes()),
        prop::collection::vec(any::<u8>(), 0..64),
        any::<String>().prop_map(String::into_bytes),
    ]
}
