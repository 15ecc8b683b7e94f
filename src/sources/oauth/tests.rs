use base64ct::{Base64, Base64UrlUnpadded, Encoding};
use serde_json::{Value, json};

use crate::error::{Error, SourceKind};
use crate::sources::read_assertion;
use crate::testing::{FakeCaps, T0, assert_no_secret, config, respond};

const RSA_KEY: &str = include_str!("testdata/rsa-test-key.pem");
const P384_KEY: &str = include_str!("testdata/p384-test-key.pem");
const P256_KEY: &str = include_str!("testdata/p256-test-key.pem");
const TOKEN_URL: &str = "https://idp.example/oauth2/default/v1/token";
const ID_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL2FwaS5hbnRocm9waWMuY29tIn0.c2ln";

fn issued() -> Result<crate::HttpResponse, crate::CapError> {
    respond(
        200,
        &json!({"token_type": "Bearer", "expires_in": 3600, "access_token": ID_TOKEN, "scope": "anthropic"}).to_string(),
    )
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(body)
        .split('&')
        .map(|pair| {
            let (n, v) = pair.split_once('=').unwrap();
            (n.to_string(), decode(v))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn public_der(pem: &str) -> Vec<u8> {
    pem_rfc7468::decode_vec(pem.trim().as_bytes()).unwrap().1
}

fn key_source(key_id: Option<&str>) -> Value {
    let mut block = json!({
        "token_url": TOKEN_URL,
        "client_id": "0oa-client",
        "scope": "anthropic",
        "private_key_file": "/keys/client.pem"
    });
    if let Some(kid) = key_id {
        block["key_id"] = json!(kid);
    }
    json!({"oauth_client_credentials": block})
}

/// Sends the grant with `key` and returns the assertion's header, claims,
/// signing input and signature.
fn assertion_with(key: &str, kid: Option<&str>) -> (Value, Value, String, Vec<u8>) {
    let caps = FakeCaps::new()
        .file("/keys/client.pem", key)
        .route(TOKEN_URL, |_| issued());
    let token = read_assertion(&caps, &config(key_source(kid))).unwrap();
    assert_eq!(token.expose(), ID_TOKEN);
    let requests = caps.requests.borrow();
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert!(
        !request
            .headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("authorization"))
    );
    let fields = form(&request.body);
    let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "grant_type",
            "scope",
            "client_assertion_type",
            "client_assertion"
        ]
    );
    assert_eq!(fields[0].1, "client_credentials");
    assert_eq!(fields[1].1, "anthropic");
    assert_eq!(
        fields[2].1,
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    let jwt = fields[3].1.clone();
    let parts: Vec<&str> = jwt.split('.').collect();
    let part = |i: usize| -> Value {
        serde_json::from_slice(&Base64UrlUnpadded::decode_vec(parts[i]).unwrap()).unwrap()
    };
    (
        part(0),
        part(1),
        format!("{}.{}", parts[0], parts[1]),
        Base64UrlUnpadded::decode_vec(parts[2]).unwrap(),
    )
}

#[test]
fn a_p256_key_signs_an_es256_client_assertion() {
    use p256::ecdsa::signature::Verifier;
    use p256::pkcs8::DecodePublicKey;
    let (header, claims, input, signature) = assertion_with(P256_KEY, Some("key-1"));
    assert_eq!(
        header,
        json!({"alg": "ES256", "typ": "JWT", "kid": "key-1"})
    );
    let iat = T0 / 1000;
    assert_eq!(claims["iss"], "0oa-client");
    assert_eq!(claims["sub"], "0oa-client");
    assert_eq!(claims["aud"], TOKEN_URL);
    assert_eq!(claims["iat"], iat);
    assert_eq!(claims["exp"], iat + 300);
    assert_eq!(claims["jti"].as_str().map(str::len), Some(32));
    let public = p256::ecdsa::VerifyingKey::from_public_key_der(&public_der(include_str!(
        "testdata/p256-test-key.pub.pem"
    )))
    .unwrap();
    let signature = p256::ecdsa::Signature::from_slice(&signature).unwrap();
    public.verify(input.as_bytes(), &signature).unwrap();
}

#[test]
fn an_rsa_key_signs_an_rs256_client_assertion() {
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::signature::Verifier;
    let (header, claims, input, signature) = assertion_with(RSA_KEY, Some("key-1"));
    assert_eq!(
        header,
        json!({"alg": "RS256", "typ": "JWT", "kid": "key-1"})
    );
    assert_eq!(claims["iss"], "0oa-client");
    let public = rsa::RsaPrivateKey::from_pkcs8_pem(RSA_KEY)
        .unwrap()
        .to_public_key();
    let signature = rsa::pkcs1v15::Signature::try_from(signature.as_slice()).unwrap();
    rsa::pkcs1v15::VerifyingKey::<rsa::sha2::Sha256>::new(public)
        .verify(input.as_bytes(), &signature)
        .unwrap();
}

#[test]
fn each_assertion_has_a_new_jti_and_no_kid_unless_given() {
    let (header, claims, _, _) = assertion_with(P256_KEY, None);
    assert_eq!(header, json!({"alg": "ES256", "typ": "JWT"}));
    let (_, again, _, _) = assertion_with(P256_KEY, None);
    assert_eq!(again["iat"], claims["iat"], "same millisecond");
    assert_ne!(again["jti"], claims["jti"]);
}

#[test]
fn a_client_secret_goes_in_a_basic_header_form_encoded() {
    let caps = FakeCaps::new()
        .env("OKTA_CLIENT_SECRET", "s3cr:et/+ x")
        .route(TOKEN_URL, |_| issued());
    let cfg = config(json!({"oauth_client_credentials": {
        "token_url": TOKEN_URL,
        "client_id": "client id:1",
        "client_secret_env": "OKTA_CLIENT_SECRET"
    }}));
    assert_eq!(read_assertion(&caps, &cfg).unwrap().expose(), ID_TOKEN);
    let request = caps.requests.borrow()[0].clone();
    let authorization = request
        .headers
        .iter()
        .find(|h| h.name == "authorization")
        .unwrap()
        .value
        .clone();
    let decoded = Base64::decode_vec(authorization.strip_prefix("Basic ").unwrap()).unwrap();
    assert_eq!(
        String::from_utf8(decoded).unwrap(),
        "client%20id%3A1:s3cr%3Aet%2F%2B%20x"
    );
    assert_eq!(
        String::from_utf8_lossy(&request.body),
        "grant_type=client_credentials"
    );
}

fn oauth_error(result: Result<crate::Secret, Error>, part: &str) -> String {
    match result {
        Err(Error::SourceFailed { kind, message, .. }) => {
            assert_eq!(kind, SourceKind::OauthClientCredentials, "{message}");
            assert!(message.contains(part), "`{message}` lacks `{part}`");
            message
        }
        other => panic!("expected an oauth source error, got {other:?}"),
    }
}

#[test]
fn refusals_and_bad_keys_never_show_a_secret() {
    let caps = FakeCaps::new()
        .env("SECRET_VAR", "the-client-secret")
        .route(TOKEN_URL, |_| {
            respond(
                401,
                &json!({"error": "invalid_client", "error_description": "bad secret the-client-secret"}).to_string(),
            )
        });
    let cfg = config(json!({"oauth_client_credentials": {
        "token_url": TOKEN_URL, "client_id": "c", "client_secret_env": "SECRET_VAR"
    }}));
    let error = read_assertion(&caps, &cfg).unwrap_err();
    assert_no_secret(
        &error,
        &[
            "the-client-secret",
            &Base64::encode_string(b"c:the-client-secret"),
        ],
    );
    oauth_error(
        Err(error),
        "status 401: invalid_client: bad secret [redacted]",
    );

    for (content, part) in [
        ("not a key", "is not a PEM file"),
        (
            &RSA_KEY.replace("PRIVATE KEY", "RSA PRIVATE KEY") as &str,
            "is a PKCS#1 RSA key; convert it to PKCS#8",
        ),
        (
            &P256_KEY.replace("PRIVATE KEY", "EC PRIVATE KEY") as &str,
            "is a SEC1 key; convert it to PKCS#8",
        ),
        (P384_KEY, "is not a P-256 key; only ES256"),
        (
            &P256_KEY.replace("PRIVATE KEY", "ENCRYPTED PRIVATE KEY") as &str,
            "is an encrypted key",
        ),
        (
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "is not a valid PKCS#8 private key",
        ),
    ] {
        let caps = FakeCaps::new().file("/keys/client.pem", content);
        let error = read_assertion(&caps, &config(key_source(None))).unwrap_err();
        assert_no_secret(&error, &["MII", "AAAA"]);
        oauth_error(
            Err(error),
            &format!("private_key_file /keys/client.pem {part}"),
        );
    }
    let missing = FakeCaps::new();
    oauth_error(
        read_assertion(&missing, &config(key_source(None))),
        "private_key_file /keys/client.pem does not exist",
    );
    let unset = FakeCaps::new();
    oauth_error(
        read_assertion(
            &unset,
            &config(json!({"oauth_client_credentials": {
                "token_url": TOKEN_URL, "client_id": "c", "client_secret_env": "SECRET_VAR"
            }})),
        ),
        "SECRET_VAR is not set",
    );
    let no_token = FakeCaps::new()
        .file("/keys/client.pem", P256_KEY)
        .route(TOKEN_URL, |_| respond(200, "{}"));
    oauth_error(
        read_assertion(&no_token, &config(key_source(None))),
        "without an access_token",
    );
}
