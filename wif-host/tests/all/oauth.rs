//! The `oauth_client_credentials` source of `examples/okta/auth.yaml`, end
//! to end through the binary with the policy it derives itself, against a
//! loopback token endpoint that verifies the client assertion (ES256) with
//! the client's public key through `p256` (not the component's code), checks
//! its claims and refuses a `jti` it has seen; and the `client_secret_basic`
//! path.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use anthropic_wif_loopback::{LoopbackServer, Recorded, Reply};
use anthropic_wif_test_support::{Files, JWT, assertion_of, exchanges, token_server};
use base64ct::{Base64, Base64UrlUnpadded, Encoding};
use p256::ecdsa::signature::Verifier;
use serde_json::{Value, json};

use crate::run_wif_host;

const CLIENT_ID: &str = "0oa1example";
const SECRET: &str = "the client:secret/+";

/// The fields of a form body, percent-decoded.
fn form(body: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(n, v)| (n.to_string(), decode(v)))
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap_or(b'?'));
            i += 3;
        } else {
            out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The public key a stand-in verifies client assertions with.
enum Public {
    /// ES256.
    P256(p256::ecdsa::VerifyingKey),
    /// RS256, verified by the `rsa` crate.
    Rsa(rsa::pkcs1v15::VerifyingKey<rsa::sha2::Sha256>),
}

impl Public {
    fn algorithm(&self) -> &'static str {
        match self {
            Public::P256(_) => "ES256",
            Public::Rsa(_) => "RS256",
        }
    }

    fn verify(&self, input: &[u8], signature: &[u8]) -> Result<(), String> {
        match self {
            Public::P256(key) => {
                let signature =
                    p256::ecdsa::Signature::from_slice(signature).map_err(|e| e.to_string())?;
                key.verify(input, &signature)
            }
            Public::Rsa(key) => {
                let signature =
                    rsa::pkcs1v15::Signature::try_from(signature).map_err(|e| e.to_string())?;
                key.verify(input, &signature)
            }
        }
        .map_err(|_| "bad signature".to_string())
    }
}

/// Checks a `private_key_jwt` grant: the signature with `public`, the claims
/// against `token_url`, a `jti` not in `seen`. The reason when it fails.
fn check_assertion(
    request: &Recorded,
    public: &Public,
    token_url: &str,
    seen: &Mutex<HashSet<String>>,
) -> Result<(), String> {
    let fields = form(&request.body);
    if field(&fields, "grant_type") != Some("client_credentials") {
        return Err("grant_type".into());
    }
    if field(&fields, "client_assertion_type")
        != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    {
        return Err("client_assertion_type".into());
    }
    let jwt = field(&fields, "client_assertion").ok_or("no client_assertion")?;
    let [header, claims, signature] = jwt.split('.').collect::<Vec<_>>()[..] else {
        return Err("not a compact JWS".into());
    };
    let part = |text: &str| -> Result<Value, String> {
        let bytes = Base64UrlUnpadded::decode_vec(text).map_err(|e| e.to_string())?;
        serde_json::from_slice(&bytes).map_err(|e| e.to_string())
    };
    let (header, claims) = (part(header)?, part(claims)?);
    if header["alg"] != public.algorithm() || header["kid"] != "client-key-1" {
        return Err(format!("header {header}"));
    }
    let signature = Base64UrlUnpadded::decode_vec(signature).map_err(|e| e.to_string())?;
    let input = &jwt[..jwt.rfind('.').unwrap_or_default()];
    public.verify(input.as_bytes(), &signature)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (iat, exp) = (
        claims["iat"].as_u64().ok_or("no iat")?,
        claims["exp"].as_u64().ok_or("no exp")?,
    );
    if claims["iss"] != CLIENT_ID || claims["sub"] != CLIENT_ID || claims["aud"] != token_url {
        return Err(format!("claims {claims}"));
    }
    if iat.abs_diff(now) > 60 || exp <= now || exp > now + 300 || exp > iat + 300 {
        return Err(format!("times iat {iat} exp {exp} now {now}"));
    }
    let jti = claims["jti"].as_str().ok_or("no jti")?;
    if !seen.lock().unwrap().insert(jti.to_string()) {
        return Err("jti reused".into());
    }
    Ok(())
}

/// An authorization server stand-in for `private_key_jwt` with `public`:
/// [`JWT`] as the access token for a valid grant, `invalid_client` else.
fn key_server(public: Public) -> (LoopbackServer, Arc<Mutex<HashSet<String>>>) {
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let jtis = Arc::clone(&seen);
    let url = Arc::new(Mutex::new(String::new()));
    let server_url = Arc::clone(&url);
    let server = LoopbackServer::start(move |request| {
        let token_url = format!("{}{}", server_url.lock().unwrap(), request.path);
        match check_assertion(request, &public, &token_url, &jtis) {
            Ok(()) => Reply::json(
                200,
                &json!({"token_type": "Bearer", "expires_in": 3600, "access_token": JWT}),
            ),
            Err(reason) => Reply::json(
                401,
                &json!({"error": "invalid_client", "error_description": reason}),
            ),
        }
    })
    .unwrap();
    *url.lock().unwrap() = server.url();
    (server, seen)
}

/// `examples/okta/auth.yaml` with the token endpoint at `base_url`, the
/// grant at `token_url` and `edit` applied to its source, written to a
/// config file.
fn okta_example(
    files: &Files,
    base_url: &str,
    token_url: &str,
    edit: impl FnOnce(&mut Value),
) -> PathBuf {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/okta/auth.yaml");
    let json = anthropic_wif_host::config_file::auth_block(
        &anthropic_wif_host::config_file::read_document(&example).unwrap(),
        None,
    )
    .unwrap()
    .to_string();
    let mut auth: Value = serde_json::from_str(&json).unwrap();
    let wif = &mut auth["workload_identity_federation"];
    wif["base_url"] = json!(base_url);
    let source = &mut wif["identity_token"]["oauth_client_credentials"];
    source["token_url"] = json!(token_url);
    edit(source);
    files.write("auth.json", auth.to_string())
}

/// `wif-host token` on `config` without a policy (the binary derives it)
/// and without the token cache.
fn token(config: &Path, env: &[(&str, &str)]) -> anthropic_wif_test_support::CliRun {
    let config = config.to_str().unwrap();
    run_wif_host(
        &["token", "--config", config, "--format", "raw", "--no-cache"],
        env,
    )
}

#[test]
fn okta_example_signs_a_verified_es256_client_assertion_with_a_new_jti_each_time() {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let public = p256::ecdsa::VerifyingKey::from_sec1_bytes(key.public_key_raw()).unwrap();
    let (idp, seen) = key_server(Public::P256(public));
    let tokens = token_server();
    let files = Files::new();
    let key_file = files.write("okta-client.pem", key.serialize_pem());
    let token_url = format!("{}/oauth2/default/v1/token", idp.url());
    let config = okta_example(&files, &tokens.url(), &token_url, |source| {
        source["private_key_file"] = json!(key_file.to_str().unwrap());
    });
    for run in 1..=2 {
        let result = token(&config, &[]);
        assert_eq!(result.code, Some(0), "run {run}: {}", result.stderr);
        assert!(!result.stderr.contains("PRIVATE KEY"), "{}", result.stderr);
    }
    assert_eq!(seen.lock().unwrap().len(), 2, "two grants, two jtis");
    let grants = idp.requests();
    assert_eq!(grants.len(), 2);
    assert_eq!(grants[0].path, "/oauth2/default/v1/token");
    assert_eq!(grants[0].header("authorization"), None);
    assert_eq!(field(&form(&grants[0].body), "scope"), Some("anthropic"));
    let exchanged = exchanges(&tokens);
    assert_eq!(exchanged.len(), 2);
    assert_eq!(assertion_of(&exchanged[0]), JWT);

    // The stand-in refuses a replayed assertion, and the binary says why.
    let replay = LoopbackServer::start(|_| {
        Reply::json(
            401,
            &json!({"error": "invalid_client", "error_description": "jti reused"}),
        )
    })
    .unwrap();
    let config = okta_example(&files, &tokens.url(), &replay.url(), |source| {
        source["private_key_file"] = json!(key_file.to_str().unwrap());
    });
    let refused = token(&config, &[]);
    assert_ne!(refused.code, Some(0));
    assert!(
        refused.stderr.contains("invalid_client: jti reused"),
        "{}",
        refused.stderr
    );
}

#[test]
fn an_rsa_key_signs_an_rs256_client_assertion_the_rsa_crate_verifies() {
    use rsa::pkcs8::DecodePrivateKey;
    // rcgen (with ring) does not generate RSA keys: the component's test key.
    let pem = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../src/jwt/testdata/rsa-2048.pem"),
    )
    .unwrap();
    let private = rsa::RsaPrivateKey::from_pkcs8_pem(&pem).unwrap();
    let (idp, seen) = key_server(Public::Rsa(rsa::pkcs1v15::VerifyingKey::new(
        private.to_public_key(),
    )));
    let files = Files::new();
    let key_file = files.write("rsa.pem", pem);
    let tokens = token_server();
    let token_url = format!("{}/oauth2/default/v1/token", idp.url());
    let config = okta_example(&files, &tokens.url(), &token_url, |source| {
        source["private_key_file"] = json!(key_file.to_str().unwrap());
    });
    let run = token(&config, &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert_eq!(assertion_of(&exchanges(&tokens)[0]), JWT);
}

#[test]
fn a_client_secret_goes_in_a_basic_header() {
    let idp = LoopbackServer::start(|request| {
        let expected = format!(
            "Basic {}",
            Base64::encode_string(b"0oa1example:the%20client%3Asecret%2F%2B")
        );
        let fields = form(&request.body);
        if request.header("authorization") == Some(expected.as_str())
            && field(&fields, "grant_type") == Some("client_credentials")
            && field(&fields, "client_assertion").is_none()
        {
            Reply::json(200, &json!({"access_token": JWT, "token_type": "Bearer"}))
        } else {
            Reply::json(401, &json!({"error": "invalid_client"}))
        }
    })
    .unwrap();
    let tokens = token_server();
    let files = Files::new();
    let token_url = format!("{}/oauth2/default/v1/token", idp.url());
    let config = okta_example(&files, &tokens.url(), &token_url, |source| {
        let block = source.as_object_mut().unwrap();
        block.remove("private_key_file");
        block.remove("key_id");
        block.insert("client_secret_env".into(), json!("OKTA_CLIENT_SECRET"));
    });
    let run = token(&config, &[("OKTA_CLIENT_SECRET", SECRET)]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(assertion_of(&exchanges(&tokens)[0]), JWT);

    let wrong = token(&config, &[("OKTA_CLIENT_SECRET", "not-the-secret")]);
    assert_ne!(wrong.code, Some(0));
    assert!(wrong.stderr.contains("invalid_client"), "{}", wrong.stderr);
    assert!(!wrong.stderr.contains("not-the-secret"), "{}", wrong.stderr);
}

#[test]
fn the_derived_okta_policy_is_the_committed_one() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/okta");
    let run = run_wif_host(
        &[
            "policy",
            "--config",
            example.join("auth.yaml").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let derived = anthropic_wif_host::Policy::from_toml(&run.stdout).unwrap();
    let committed = anthropic_wif_host::Policy::from_file(&example.join("policy.toml")).unwrap();
    assert_eq!(derived.files, committed.files);
    let origins = |p: &anthropic_wif_host::Policy| -> Vec<String> {
        p.origins.iter().map(|o| o.to_string()).collect()
    };
    assert_eq!(origins(&derived), origins(&committed));
    assert_eq!(
        derived.files,
        [PathBuf::from("/etc/anthropic/okta-client.pem")]
    );
}
