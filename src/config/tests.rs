use serde_json::{Value, json};

use super::*;

const ORG: &str = "12345678-9abc-def0-1234-56789abcdef0";

fn base() -> Value {
    json!({
        "type": "workload_identity_federation",
        "workload_identity_federation": {
            "federation_rule_id": "fdrl_01abc",
            "organization_id": ORG,
            "identity_token": {"file": "/var/run/secrets/anthropic.com/token"}
        }
    })
}

fn with(edit: impl FnOnce(&mut Value)) -> Result<Config, Error> {
    let mut v = base();
    edit(&mut v);
    Config::parse(&v.to_string())
}

fn wif(v: &mut Value) -> &mut Map<String, Value> {
    v["workload_identity_federation"].as_object_mut().unwrap()
}

fn source(v: &mut Value) -> &mut Value {
    &mut v["workload_identity_federation"]["identity_token"]
}

#[track_caller]
fn assert_field(result: Result<Config, Error>, field: &str, message_part: &str) {
    match result {
        Err(Error::InvalidConfig { field: f, message }) => {
            assert_eq!(f, field, "message: {message}");
            assert!(
                message.contains(message_part),
                "`{message}` lacks `{message_part}`"
            );
        }
        other => panic!("expected an invalid-config error on {field}, got {other:?}"),
    }
}

#[test]
fn a_minimal_config_is_valid_with_defaults() {
    let config = with(|_| {}).unwrap();
    assert_eq!(config.federation_rule_id, "fdrl_01abc");
    assert_eq!(config.base_url, DEFAULT_BASE_URL);
    assert_eq!(config.service_account_id, None);
    assert_eq!(
        config.identity_token,
        IdentitySource::File("/var/run/secrets/anthropic.com/token".into())
    );
}

#[test]
fn a_full_config_is_valid() {
    let config = with(|v| {
        let w = wif(v);
        w.insert("service_account_id".into(), json!("svac_9"));
        w.insert("workspace_id".into(), json!("wrkspc_7"));
        w.insert(
            "base_url".into(),
            json!("https://gateway.example.com/anthropic/"),
        );
        *source(v) = json!({
            "url": "${ACTIONS_ID_TOKEN_REQUEST_URL}&audience=https://api.anthropic.com",
            "headers": {"Authorization": "bearer ${ACTIONS_ID_TOKEN_REQUEST_TOKEN}"},
            "response_field": "value"
        });
    })
    .unwrap();
    assert_eq!(config.base_url, "https://gateway.example.com/anthropic");
    assert_eq!(config.workspace_id.as_deref(), Some("wrkspc_7"));
    let IdentitySource::Url {
        headers,
        response_field,
        ..
    } = &config.identity_token
    else {
        panic!("not a url source")
    };
    assert_eq!(headers[0].0, "Authorization");
    assert_eq!(response_field.as_deref(), Some("value"));
}

#[test]
fn document_level_errors() {
    assert_field(Config::parse("not json"), "", "not valid JSON");
    assert_field(Config::parse("[]"), "", "map of fields");
    assert_field(Config::parse("{}"), "type", "missing");
}

#[test]
fn type_is_required_and_checked() {
    assert_field(
        with(|v| {
            v.as_object_mut().unwrap().remove("type");
        }),
        "type",
        "missing",
    );
    assert_field(
        with(|v| v["type"] = json!("api_key")),
        "type",
        "`api_key` is not supported",
    );
    assert_field(with(|v| v["type"] = json!(3)), "type", "must be the string");
}

#[test]
fn the_block_is_required() {
    assert_field(
        with(|v| {
            v.as_object_mut()
                .unwrap()
                .remove("workload_identity_federation");
        }),
        "workload_identity_federation",
        "missing",
    );
    assert_field(
        with(|v| v["workload_identity_federation"] = json!("x")),
        "workload_identity_federation",
        "map",
    );
}

#[test]
fn federation_rule_id_is_required_and_prefixed() {
    let field = "workload_identity_federation.federation_rule_id";
    assert_field(
        with(|v| {
            wif(v).remove("federation_rule_id");
        }),
        field,
        "required",
    );
    assert_field(
        with(|v| {
            wif(v).insert("federation_rule_id".into(), json!(""));
        }),
        field,
        "empty",
    );
    assert_field(
        with(|v| {
            wif(v).insert("federation_rule_id".into(), json!("rule_1"));
        }),
        field,
        "`fdrl_`",
    );
    assert_field(
        with(|v| {
            wif(v).insert("federation_rule_id".into(), json!("fdrl_"));
        }),
        field,
        "`fdrl_`",
    );
    assert_field(
        with(|v| {
            wif(v).insert("federation_rule_id".into(), json!(7));
        }),
        field,
        "string",
    );
}

#[test]
fn organization_id_must_be_a_uuid() {
    let field = "workload_identity_federation.organization_id";
    assert_field(
        with(|v| {
            wif(v).remove("organization_id");
        }),
        field,
        "required",
    );
    for bad in [
        "org_1",
        "12345678-9abc-def0-1234-56789abcdef",
        "12345678-9abc-def0-1234-56789abcdefg",
        "123456789abcdef0123456789abcdef0",
    ] {
        assert_field(
            with(|v| {
                wif(v).insert("organization_id".into(), json!(bad));
            }),
            field,
            "UUID",
        );
    }
}

#[test]
fn optional_ids_are_prefixed() {
    let svac = "workload_identity_federation.service_account_id";
    assert_field(
        with(|v| {
            wif(v).insert("service_account_id".into(), json!("sa_1"));
        }),
        svac,
        "`svac_`",
    );
    assert_field(
        with(|v| {
            wif(v).insert("service_account_id".into(), json!(""));
        }),
        svac,
        "empty",
    );
    let workspace = "workload_identity_federation.workspace_id";
    assert_field(
        with(|v| {
            wif(v).insert("workspace_id".into(), json!("ws_1"));
        }),
        workspace,
        "`default`",
    );
    assert_eq!(
        with(|v| {
            wif(v).insert("workspace_id".into(), json!("default"));
        })
        .unwrap()
        .workspace_id
        .as_deref(),
        Some("default")
    );
}

#[test]
fn base_url_is_https_or_loopback() {
    let field = "workload_identity_federation.base_url";
    let set = |url: &'static str| {
        with(move |v| {
            wif(v).insert("base_url".into(), json!(url));
        })
    };
    assert_field(set("http://api.anthropic.com"), field, "https");
    assert_field(set("ftp://x"), field, "scheme");
    assert_field(set("https://u@api.anthropic.com"), field, "user");
    assert_field(set("https://api.anthropic.com?x=1"), field, "query");
    assert_field(set("api.anthropic.com"), field, "absolute");
    for ok in [
        "http://localhost:8080",
        "http://127.0.0.1:1",
        "http://[::1]:2",
        "https://api.anthropic.com",
    ] {
        assert!(set(ok).is_ok(), "{ok}");
    }
}

/// Found by the `config_parse` fuzz target's round-trip check (input
/// `fuzz/corpus/config_parse/regression_base_url_space.json`): `https://h /`
/// was accepted and trimmed to `https://h `, a base URL that no longer
/// parses and that no HTTP client can reach.
#[test]
fn base_url_host_has_no_white_space() {
    let field = "workload_identity_federation.base_url";
    for spaced in [
        "https://h /",
        "https://api.anthropic.com\u{3000}/",
        "https://a b",
    ] {
        let config = with(move |v| {
            wif(v).insert("base_url".into(), json!(spaced));
        });
        assert_field(config, field, "white space");
    }
}

#[test]
fn exactly_one_source() {
    assert_field(
        with(|v| {
            wif(v).remove("identity_token");
        }),
        "workload_identity_federation.identity_token",
        "missing",
    );
    assert_field(
        with(|v| *source(v) = json!({})),
        "workload_identity_federation.identity_token",
        "no source",
    );
    assert_field(
        with(|v| *source(v) = json!({"file": "/a", "env": "B", "url": "https://x"})),
        "workload_identity_federation.identity_token",
        "several sources (file, env, url)",
    );
}

#[test]
fn url_only_fields_need_a_url() {
    assert_field(
        with(|v| *source(v) = json!({"file": "/a", "headers": {"A": "b"}})),
        "workload_identity_federation.identity_token.headers",
        "only allowed with a `url`",
    );
    assert_field(
        with(|v| *source(v) = json!({"env": "A", "response_field": "value"})),
        "workload_identity_federation.identity_token.response_field",
        "only allowed with a `url`",
    );
}

#[test]
fn command_argv_rules() {
    let field = "workload_identity_federation.identity_token.command";
    assert_field(
        with(|v| *source(v) = json!({"command": []})),
        field,
        "must not be empty",
    );
    assert_field(
        with(|v| *source(v) = json!({"command": "gcloud auth"})),
        field,
        "list of arguments",
    );
    assert_field(
        with(|v| *source(v) = json!({"command": ["gcloud", ""]})),
        &format!("{field}[1]"),
        "empty",
    );
    assert_field(
        with(|v| *source(v) = json!({"command": ["gcloud", 3]})),
        &format!("{field}[1]"),
        "string",
    );
    let ok = with(|v| *source(v) = json!({"command": ["gcloud", "auth", "print-identity-token"]}))
        .unwrap();
    assert_eq!(
        ok.identity_token,
        IdentitySource::Command(vec![
            "gcloud".into(),
            "auth".into(),
            "print-identity-token".into()
        ])
    );
}

#[test]
fn env_and_file_rules() {
    let env = "workload_identity_federation.identity_token.env";
    assert_field(with(|v| *source(v) = json!({"env": ""})), env, "empty");
    assert_field(with(|v| *source(v) = json!({"env": "A=B"})), env, "`=`");
    let file = "workload_identity_federation.identity_token.file";
    assert_field(with(|v| *source(v) = json!({"file": ""})), file, "empty");
    assert_field(
        with(|v| *source(v) = json!({"file": "/a\u{0}b"})),
        file,
        "NUL",
    );
}

#[test]
fn url_rules() {
    let url = "workload_identity_federation.identity_token.url";
    assert_field(
        with(|v| *source(v) = json!({"url": "metadata/token"})),
        url,
        "absolute",
    );
    assert_field(
        with(|v| *source(v) = json!({"url": "https://x/${A"})),
        url,
        "not closed",
    );
    assert_field(
        with(|v| *source(v) = json!({"url": "file:///etc/passwd"})),
        url,
        "scheme",
    );
    let headers = "workload_identity_federation.identity_token.headers";
    assert_field(
        with(|v| *source(v) = json!({"url": "https://x", "headers": ["A"]})),
        headers,
        "map",
    );
    assert_field(
        with(|v| *source(v) = json!({"url": "https://x", "headers": {"Bad Name": "v"}})),
        "workload_identity_federation.identity_token.headers.Bad Name",
        "header name",
    );
    assert_field(
        with(|v| *source(v) = json!({"url": "https://x", "headers": {"A": "v\r\nB: c"}})),
        "workload_identity_federation.identity_token.headers.A",
        "line breaks",
    );
    assert_field(
        with(|v| *source(v) = json!({"url": "https://x", "response_field": ""})),
        "workload_identity_federation.identity_token.response_field",
        "empty",
    );
    assert!(with(|v| *source(v) = json!({"url": "http://169.254.169.254/token"})).is_ok());
}

/// Issue 14, item 3: the headers the HTTP client sets are refused in any
/// case, with the header's field path.
#[test]
fn transport_headers_are_refused() {
    for name in [
        "Host",
        "host",
        "HOST",
        "Content-Length",
        "content-LENGTH",
        "Transfer-Encoding",
        "Connection",
        "Upgrade",
        "TE",
        "te",
        "Trailer",
        "Expect",
        "Keep-Alive",
        "Proxy-Authorization",
        "proxy-connection",
        "Proxy-Foo",
    ] {
        assert_field(
            with(|v| {
                *source(v) = json!({"url": "https://x", "headers": {name: "internal-admin.svc"}});
            }),
            &format!("workload_identity_federation.identity_token.headers.{name}"),
            "set by the HTTP client",
        );
    }
    for name in [
        "Hostname",
        "X-Host",
        "Tea",
        "Proxy",
        "X-Proxy-Token",
        "Authorization",
    ] {
        assert!(
            with(|v| *source(v) = json!({"url": "https://x", "headers": {name: "v"}})).is_ok(),
            "{name} is an ordinary header"
        );
    }
    for (name, value) in [("A\u{0}B", "v"), ("A:B", "v"), ("É", "v"), ("", "v")] {
        assert_field(
            with(|v| *source(v) = json!({"url": "https://x", "headers": {name: value}})),
            &format!("workload_identity_federation.identity_token.headers.{name}"),
            "header name",
        );
    }
    for value in ["a\rb", "a\nb", "a\0b"] {
        assert_field(
            with(|v| *source(v) = json!({"url": "https://x", "headers": {"A": value}})),
            "workload_identity_federation.identity_token.headers.A",
            "line breaks or NUL",
        );
    }
}

#[test]
fn unknown_fields_are_rejected_everywhere() {
    assert_field(
        with(|v| v["extra"] = json!(1)),
        "extra",
        "not a known field",
    );
    assert_field(
        with(|v| {
            wif(v).insert("federation_rule".into(), json!("x"));
        }),
        "workload_identity_federation.federation_rule",
        "expected one of: federation_rule_id",
    );
    assert_field(
        with(|v| *source(v) = json!({"file": "/a", "path": "/b"})),
        "workload_identity_federation.identity_token.path",
        "not a known field",
    );
}

#[test]
fn canonical_key_ignores_formatting_but_not_meaning() {
    let a = with(|_| {}).unwrap();
    let b = Config::parse(&serde_json::to_string_pretty(&base()).unwrap()).unwrap();
    assert_eq!(a.canonical_key(), b.canonical_key());
    let c = with(|v| {
        wif(v).insert("workspace_id".into(), json!("default"));
    })
    .unwrap();
    assert_ne!(a.canonical_key(), c.canonical_key());
}

#[test]
fn deeply_nested_json_is_an_error_not_a_crash() {
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    assert_field(Config::parse(&deep), "", "not valid JSON");
}

#[test]
fn the_aws_source_has_defaults() {
    let config = with(|v| *source(v) = json!({"aws": {}})).unwrap();
    assert_eq!(
        config.identity_token,
        IdentitySource::Aws(AwsSource {
            region: None,
            audience: "https://api.anthropic.com".into(),
            signing_algorithm: SigningAlgorithm::RS256,
            duration_seconds: None,
        })
    );
    let full = with(|v| {
        *source(v) = json!({"aws": {
            "region": "us-gov-west-1",
            "audience": "https://other.example",
            "signing_algorithm": "ES384",
            "duration_seconds": 3600
        }})
    })
    .unwrap();
    assert_eq!(
        full.identity_token,
        IdentitySource::Aws(AwsSource {
            region: Some("us-gov-west-1".into()),
            audience: "https://other.example".into(),
            signing_algorithm: SigningAlgorithm::ES384,
            duration_seconds: Some(3600),
        })
    );
}

#[test]
fn the_aws_source_names_each_bad_field() {
    const AWS: &str = "workload_identity_federation.identity_token.aws";
    let aws = |block: Value| with(move |v| *source(v) = json!({ "aws": block }));
    assert_field(aws(json!("us-east-1")), AWS, "must be a map");
    assert_field(
        aws(json!({"regoin": "x"})),
        &format!("{AWS}.regoin"),
        "not a known field",
    );
    for region in [
        "US-EAST-1",
        "us_east_1",
        "us-east-1.evil.example",
        "-us",
        "us--1",
        "",
    ] {
        let field = format!("{AWS}.region");
        assert!(
            matches!(aws(json!({"region": region})), Err(Error::InvalidConfig { field: f, .. }) if f == field),
            "{region}"
        );
    }
    assert_field(
        aws(json!({"audience": 5})),
        &format!("{AWS}.audience"),
        "string",
    );
    assert_field(
        aws(json!({"audience": "a\u{7}b"})),
        &format!("{AWS}.audience"),
        "control",
    );
    assert_field(
        aws(json!({"signing_algorithm": "HS256"})),
        &format!("{AWS}.signing_algorithm"),
        "`RS256` or `ES384`",
    );
    for duration in [
        json!(59),
        json!(3601),
        json!(300.5),
        json!("300"),
        json!(-1),
    ] {
        assert_field(
            aws(json!({"duration_seconds": duration})),
            &format!("{AWS}.duration_seconds"),
            "from 60 to 3600",
        );
    }
    assert_field(
        with(|v| *source(v) = json!({"aws": {}, "file": "/t"})),
        "workload_identity_federation.identity_token",
        "several sources (file, aws)",
    );
    assert_field(
        with(|v| *source(v) = json!({"aws": {}, "headers": {}})),
        "workload_identity_federation.identity_token.headers",
        "only allowed with a `url` source",
    );
}

#[test]
fn the_oauth_source_takes_a_key_or_a_secret() {
    const OAUTH: &str = "workload_identity_federation.identity_token.oauth_client_credentials";
    let oauth =
        |block: Value| with(move |v| *source(v) = json!({ "oauth_client_credentials": block }));
    let key = oauth(json!({
        "token_url": "https://idp.example/oauth2/v1/token",
        "client_id": "0oa1",
        "private_key_file": "/keys/k.pem",
        "key_id": "kid-1"
    }))
    .unwrap();
    assert_eq!(
        key.identity_token,
        IdentitySource::OauthClientCredentials(OauthSource {
            token_url: "https://idp.example/oauth2/v1/token".into(),
            client_id: "0oa1".into(),
            scope: None,
            client_auth: ClientAuth::PrivateKeyJwt {
                private_key_file: "/keys/k.pem".into(),
                key_id: Some("kid-1".into()),
            },
        })
    );
    let base = json!({"token_url": "https://idp.example/t", "client_id": "c"});
    let plus = |extra: Value| {
        let mut block = base.clone();
        block
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        oauth(block)
    };
    assert_field(plus(json!({})), OAUTH, "needs `private_key_file`");
    assert_field(
        plus(json!({"private_key_file": "/k", "client_secret_env": "S"})),
        OAUTH,
        "keep exactly one",
    );
    assert_field(
        plus(json!({"client_secret_env": "S", "key_id": "k"})),
        &format!("{OAUTH}.key_id"),
        "only allowed with `private_key_file`",
    );
    assert_field(
        plus(json!({"client_secret_env": "A=B"})),
        &format!("{OAUTH}.client_secret_env"),
        "variable name",
    );
    assert_field(
        oauth(
            json!({"token_url": "http://idp.example/t", "client_id": "c", "client_secret_env": "S"}),
        ),
        &format!("{OAUTH}.token_url"),
        "must use https",
    );
    assert_field(
        oauth(json!({"client_id": "c", "client_secret_env": "S"})),
        &format!("{OAUTH}.token_url"),
        "is required",
    );
    assert_field(
        oauth(json!({"token_url": "https://idp.example/t", "client_secret_env": "S"})),
        &format!("{OAUTH}.client_id"),
        "is required",
    );
    assert_field(
        plus(json!({"client_secret_env": "S", "audience": "x"})),
        &format!("{OAUTH}.audience"),
        "not a known field",
    );
}
