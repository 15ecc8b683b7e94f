//! The identity providers that need the environment, end to end through
//! the binary with the policy it derives itself: the `aws` source of
//! `examples/aws/auth.yaml` against loopback stand-ins for STS (which checks
//! the SigV4 signature with its own implementation), the container
//! credentials endpoint and IMDSv2, pointed at through the variables the
//! AWS SDKs read.

use std::path::Path;

use anthropic_wif_loopback::{LoopbackServer, Recorded, Reply};
use anthropic_wif_test_support::{Files, JWT, assertion_of, exchanges, token_server};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::run_wif_host;

const KEY_ID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const SESSION: &str = "session-token-from-the-chain";

/// Every variable the `aws` source reads, empty (unset for the AWS SDKs and
/// for the component), so that the machine's own AWS settings play no part.
const AWS_VARIABLES: [&str; 18] = [
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
];

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks a request's SigV4 `Authorization` header against `secret`;
/// the reason when it does not verify.
fn check_sigv4(request: &Recorded, secret: &str) -> Result<(), String> {
    let authorization = request.header("authorization").ok_or("no authorization")?;
    let rest = authorization
        .strip_prefix("AWS4-HMAC-SHA256 Credential=")
        .ok_or("not SigV4")?;
    let (credential, rest) = rest
        .split_once(", SignedHeaders=")
        .ok_or("no SignedHeaders")?;
    let (signed_headers, signature) = rest.split_once(", Signature=").ok_or("no Signature")?;
    let (key_id, scope) = credential.split_once('/').ok_or("no scope")?;
    if key_id != KEY_ID && !key_id.starts_with("ASIA") {
        return Err(format!("unknown access key id {key_id}"));
    }
    let [date, region, service, "aws4_request"] = scope.split('/').collect::<Vec<_>>()[..] else {
        return Err(format!("bad scope {scope}"));
    };
    if service != "sts" {
        return Err(format!("service {service}"));
    }
    let mut canonical_headers = String::new();
    for name in signed_headers.split(';') {
        let value = request
            .header(name)
            .ok_or(format!("{name} is signed but absent"))?;
        canonical_headers.push_str(&format!("{name}:{}\n", value.trim()));
    }
    let canonical = format!(
        "{}\n{}\n\n{canonical_headers}\n{signed_headers}\n{}",
        request.method,
        request.path,
        hex(&Sha256::digest(&request.body))
    );
    let amz_date = request.header("x-amz-date").ok_or("no x-amz-date")?;
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut key = format!("AWS4{secret}").into_bytes();
    for part in [date, region, service, "aws4_request"] {
        key = hmac(&key, part);
    }
    if hex(&hmac(&key, &to_sign)) != signature {
        return Err("SignatureDoesNotMatch".into());
    }
    Ok(())
}

/// An STS stand-in: a valid signature by `secret` gets [`JWT`], anything
/// else AWS's XML error.
fn sts(secret: &'static str) -> LoopbackServer {
    LoopbackServer::start(move |request| get_web_identity_token(request, secret)).unwrap()
}

/// STS's answer to `GetWebIdentityToken`: [`JWT`] when the request is
/// signed by `secret`, else AWS's XML error.
fn get_web_identity_token(request: &Recorded, secret: &str) -> Reply {
    match check_sigv4(request, secret) {
        Ok(()) => Reply::text(
            200,
            &format!(
                "<GetWebIdentityTokenResponse><GetWebIdentityTokenResult>\
                 <WebIdentityToken>{JWT}</WebIdentityToken>\
                 <Expiration>2030-01-01T00:00:00Z</Expiration>\
                 </GetWebIdentityTokenResult></GetWebIdentityTokenResponse>"
            ),
        ),
        Err(reason) => Reply::text(
            403,
            &format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code>\
                 <Message>{reason}</Message></Error><RequestId>rid-1</RequestId></ErrorResponse>"
            ),
        ),
    }
}

/// `examples/aws/auth.yaml` with the token endpoint at `base_url`, written
/// to a config file.
fn aws_example(files: &Files, base_url: &str) -> std::path::PathBuf {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/aws/auth.yaml");
    let json = anthropic_wif_host::config_file::resolve(Some(&example), None, |_| None)
        .unwrap()
        .json();
    let mut auth: Value = serde_json::from_str(&json).unwrap();
    auth["workload_identity_federation"]["base_url"] = json!(base_url);
    files.write("auth.json", auth.to_string())
}

/// Runs `wif-host token` on `config` without a policy (so the binary
/// derives the minimal one from the config and this environment), every
/// AWS variable unset but those in `env`.
fn token(config: &Path, env: &[(&str, &str)]) -> anthropic_wif_test_support::CliRun {
    let mut all: Vec<(&str, &str)> = AWS_VARIABLES
        .iter()
        .filter(|name| !env.iter().any(|(n, _)| n == *name))
        .map(|name| (*name, ""))
        .collect();
    all.extend_from_slice(env);
    let config = config.to_str().unwrap();
    run_wif_host(&["token", "--config", config, "--format", "raw"], &all)
}

#[test]
fn aws_example_with_environment_credentials_and_an_sts_endpoint_override() {
    let tokens = token_server();
    let sts = sts(SECRET);
    let files = Files::new();
    let config = aws_example(&files, &tokens.url());
    let run = token(
        &config,
        &[
            ("AWS_ACCESS_KEY_ID", KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
            ("AWS_SESSION_TOKEN", SESSION),
            ("AWS_ENDPOINT_URL_STS", &sts.url()),
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stdout.trim(), "sk-ant-oat01-demo-1");
    let sent = sts.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method, "POST");
    assert_eq!(sent[0].header("x-amz-security-token"), Some(SESSION));
    assert!(
        sent[0]
            .header("authorization")
            .unwrap()
            .contains("/us-east-1/sts/aws4_request"),
        "the region of the example"
    );
    assert_eq!(
        String::from_utf8_lossy(&sent[0].body),
        "Action=GetWebIdentityToken&Version=2011-06-15\
         &Audience.member.1=https%3A%2F%2Fapi.anthropic.com&SigningAlgorithm=RS256"
    );
    assert_eq!(assertion_of(&exchanges(&tokens)[0]), JWT);
}

#[test]
fn a_wrong_secret_is_refused_with_the_aws_code_and_never_shown() {
    let tokens = token_server();
    let sts = sts(SECRET);
    let files = Files::new();
    let config = aws_example(&files, &tokens.url());
    let wrong = "not-the-secret-key-at-all";
    let run = token(
        &config,
        &[
            ("AWS_ACCESS_KEY_ID", KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", wrong),
            ("AWS_ENDPOINT_URL_STS", &sts.url()),
        ],
    );
    assert_eq!(run.code, Some(5), "{}", run.stderr);
    assert!(
        run.stderr.contains("SignatureDoesNotMatch"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("[request id rid-1]"), "{}", run.stderr);
    assert!(!run.stderr.contains(wrong), "{}", run.stderr);
    assert!(exchanges(&tokens).is_empty());
}

fn credentials_json() -> Value {
    json!({
        "Code": "Success",
        "AccessKeyId": "ASIACHAIN",
        "SecretAccessKey": "chain-secret-key",
        "Token": SESSION,
        "Expiration": "2030-01-01T00:00:00Z"
    })
}

#[test]
fn aws_example_with_the_container_credentials_endpoint_and_its_token_file() {
    let tokens = token_server();
    let sts = sts("chain-secret-key");
    let container = LoopbackServer::start(|request| {
        if request.header("authorization") == Some("pod-identity-token") {
            Reply::json(200, &credentials_json())
        } else {
            Reply::text(401, "unauthorized")
        }
    })
    .unwrap();
    let files = Files::new();
    let token_file = files.write("eks-pod-identity-token", "pod-identity-token\n");
    let config = aws_example(&files, &tokens.url());
    let full_uri = format!("{}/v1/credentials", container.url());
    let run = token(
        &config,
        &[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &full_uri),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                token_file.to_str().unwrap(),
            ),
            ("AWS_ENDPOINT_URL", &sts.url()),
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(container.requests()[0].path, "/v1/credentials");
    assert_eq!(
        sts.requests()[0].header("x-amz-security-token"),
        Some(SESSION)
    );
    assert_eq!(exchanges(&tokens).len(), 1);
}

#[test]
fn aws_example_with_imdsv2() {
    let tokens = token_server();
    let sts = sts("chain-secret-key");
    let imds = LoopbackServer::start(|request| {
        let session = request.header("x-aws-ec2-metadata-token") == Some("imds-session");
        match (request.method.as_str(), request.path.as_str()) {
            ("PUT", "/latest/api/token")
                if request
                    .header("x-aws-ec2-metadata-token-ttl-seconds")
                    .is_some() =>
            {
                Reply::text(200, "imds-session")
            }
            ("GET", "/latest/meta-data/iam/security-credentials/") if session => {
                Reply::text(200, "agent-role")
            }
            ("GET", "/latest/meta-data/iam/security-credentials/agent-role") if session => {
                Reply::json(200, &credentials_json())
            }
            _ => Reply::text(401, ""),
        }
    })
    .unwrap();
    let files = Files::new();
    let config = aws_example(&files, &tokens.url());
    let run = token(
        &config,
        &[
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.url()),
            ("AWS_ENDPOINT_URL_STS", &sts.url()),
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let methods: Vec<String> = imds.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods, ["PUT", "GET", "GET"]);
    assert_eq!(exchanges(&tokens).len(), 1);
}

#[test]
fn the_derived_aws_policy_follows_the_environment() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/aws/auth.yaml");
    let example = example.to_str().unwrap();
    let files = Files::new();
    let token_file = files.write("token", "t");
    let mut env: Vec<(&str, &str)> = AWS_VARIABLES.iter().map(|n| (*n, "")).collect();
    env.retain(|(n, _)| {
        *n != "AWS_CONTAINER_CREDENTIALS_FULL_URI" && *n != "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"
    });
    env.push((
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "http://127.0.0.1:8911/creds",
    ));
    env.push((
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        token_file.to_str().unwrap(),
    ));
    let run = run_wif_host(&["policy", "--config", example], &env);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let policy = anthropic_wif_host::Policy::from_toml(&run.stdout).unwrap();
    let origins: Vec<String> = policy.origins.iter().map(|o| o.to_string()).collect();
    assert_eq!(
        origins,
        [
            "https://sts.us-east-1.amazonaws.com",
            "http://169.254.169.254",
            "https://api.anthropic.com",
            "http://127.0.0.1:8911"
        ]
    );
    assert_eq!(policy.files, [token_file]);
    assert!(policy.allows_env("AWS_SECRET_ACCESS_KEY"));
    assert!(
        !policy.allows_env("AWS_REGION"),
        "the example sets its region"
    );
    let committed = anthropic_wif_host::Policy::from_file(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/aws/policy.toml"),
    )
    .unwrap();
    assert_eq!(
        committed.env, policy.env,
        "examples/aws/policy.toml is derived"
    );
}

const IRSA_TOKEN: &str = "irsa-projected-service-account-token";
const ROLE: &str = "arn:aws:iam::111122223333:role/agent";

/// STS as IRSA meets it: `AssumeRoleWithWebIdentity`, unsigned, with the
/// service account's token and the role, answers the role's credentials;
/// `GetWebIdentityToken` must then be signed with them.
fn irsa_sts() -> LoopbackServer {
    LoopbackServer::start(|request| {
        let body = String::from_utf8_lossy(&request.body);
        if !body.starts_with("Action=AssumeRoleWithWebIdentity&") {
            return get_web_identity_token(request, "irsa-secret-key");
        }
        let expected = format!(
            "&RoleArn=arn%3Aaws%3Aiam%3A%3A111122223333%3Arole%2Fagent\
             &RoleSessionName=agent-session&WebIdentityToken={IRSA_TOKEN}"
        );
        if request.header("authorization").is_some() || !body.ends_with(&expected) {
            return Reply::text(
                400,
                "<ErrorResponse><Error><Code>InvalidIdentityToken</Code></Error></ErrorResponse>",
            );
        }
        Reply::text(
            200,
            &format!(
                "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult>\
                 <Credentials><AccessKeyId>ASIAIRSA</AccessKeyId>\
                 <SecretAccessKey>irsa-secret-key</SecretAccessKey>\
                 <SessionToken>{SESSION}</SessionToken>\
                 <Expiration>2030-01-01T00:00:00Z</Expiration></Credentials>\
                 </AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"
            ),
        )
    })
    .unwrap()
}

#[test]
fn aws_example_with_irsa_assumes_the_role_then_signs_with_its_credentials() {
    let tokens = token_server();
    let sts = irsa_sts();
    let files = Files::new();
    let token_file = files.write("irsa-token", format!("{IRSA_TOKEN}\n"));
    let config = aws_example(&files, &tokens.url());
    let run = token(
        &config,
        &[
            ("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.to_str().unwrap()),
            ("AWS_ROLE_ARN", ROLE),
            ("AWS_ROLE_SESSION_NAME", "agent-session"),
            ("AWS_ENDPOINT_URL_STS", &sts.url()),
            // IRSA comes before the container endpoint, as in the AWS SDKs.
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://127.0.0.1:9/creds",
            ),
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let sent = sts.requests();
    assert_eq!(sent.len(), 2);
    assert!(sent[0].header("authorization").is_none());
    assert!(
        sent[1]
            .header("authorization")
            .unwrap()
            .starts_with("AWS4-HMAC-SHA256 Credential=ASIAIRSA/"),
        "signed with the role's credentials"
    );
    assert_eq!(sent[1].header("x-amz-security-token"), Some(SESSION));
    assert_eq!(assertion_of(&exchanges(&tokens)[0]), JWT);

    let refused = token(
        &config,
        &[
            ("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.to_str().unwrap()),
            ("AWS_ROLE_ARN", "arn:aws:iam::111122223333:role/other"),
            ("AWS_ENDPOINT_URL_STS", &sts.url()),
        ],
    );
    assert_eq!(refused.code, Some(5), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("STS AssumeRoleWithWebIdentity")
            && refused.stderr.contains("InvalidIdentityToken"),
        "{}",
        refused.stderr
    );
    assert!(!refused.stderr.contains(IRSA_TOKEN), "{}", refused.stderr);
}
