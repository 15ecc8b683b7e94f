use serde_json::json;

use super::sigv4::{self, Credentials, Request, Scope};
use crate::capabilities::{CapError, HttpRequest, HttpResponse};
use crate::error::{Error, SourceKind};
use crate::secret::Secret;
use crate::sources::read_assertion;
use crate::testing::{FakeCaps, T0, assert_no_secret, config, respond};

const JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL2FwaS5hbnRocm9waWMuY29tIn0.c2ln";
const KEY_ID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const SESSION: &str = "FwoGZXIvYXdzSESSIONTOKEN";
const STS: &str = "https://sts.eu-west-1.amazonaws.com/";

fn sts_answer(token: &str) -> Result<HttpResponse, CapError> {
    respond(
        200,
        &format!(
            "<GetWebIdentityTokenResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
             <GetWebIdentityTokenResult><WebIdentityToken>{token}</WebIdentityToken>\
             <Expiration>2027-01-15T08:05:00Z</Expiration></GetWebIdentityTokenResult>\
             <ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata>\
             </GetWebIdentityTokenResponse>"
        ),
    )
}

fn header<'a>(request: &'a HttpRequest, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// Recomputes the signature of a request the source sent.
fn verify_signature(request: &HttpRequest, credentials: &Credentials, region: &str) {
    let host = request.url.split('/').nth(2).unwrap();
    let path = format!("/{}", request.url.splitn(4, '/').nth(3).unwrap_or_default());
    let mut signed: Vec<(String, String)> = ["content-type", "x-amz-date"]
        .iter()
        .map(|n| (n.to_string(), header(request, n).unwrap().to_string()))
        .collect();
    if let Some(token) = header(request, "x-amz-security-token") {
        signed.push(("x-amz-security-token".into(), token.into()));
    }
    let amz_date = header(request, "x-amz-date").unwrap();
    let expected = sigv4::sign(
        &Request {
            method: "POST",
            host,
            path: &path,
            query: "",
            headers: &signed,
            body: &request.body,
        },
        credentials,
        &Scope {
            region,
            service: "sts",
            amz_date,
        },
    );
    assert_eq!(
        header(request, "authorization"),
        Some(expected.authorization.as_str())
    );
}

fn env_credentials(caps: FakeCaps) -> FakeCaps {
    caps.env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_SESSION_TOKEN", SESSION)
}

fn aws_error(result: Result<Secret, Error>, part: &str) -> String {
    match result {
        Err(Error::SourceFailed { kind, message, .. }) => {
            assert_eq!(kind, SourceKind::Aws, "{message}");
            assert!(message.contains(part), "`{message}` lacks `{part}`");
            message
        }
        other => panic!("expected an aws source error, got {other:?}"),
    }
}

#[test]
fn sends_a_signed_get_web_identity_token_and_reads_the_token() {
    let caps = env_credentials(FakeCaps::new())
        .env("AWS_REGION", "eu-west-1")
        .route(STS, |_| sts_answer(&JWT.replace('.', "&#46;")));
    let cfg = config(json!({"aws": {"duration_seconds": 900, "signing_algorithm": "ES384"}}));
    assert_eq!(read_assertion(&caps, &cfg).unwrap().expose(), JWT);
    let requests = caps.requests.borrow();
    let [request] = requests.as_slice() else {
        panic!("one request expected")
    };
    assert_eq!(request.method, "POST");
    assert_eq!(request.url, STS);
    assert_eq!(
        String::from_utf8_lossy(&request.body),
        "Action=GetWebIdentityToken&Version=2011-06-15\
         &Audience.member.1=https%3A%2F%2Fapi.anthropic.com&SigningAlgorithm=ES384\
         &DurationSeconds=900"
    );
    assert_eq!(
        header(request, "content-type"),
        Some("application/x-www-form-urlencoded; charset=utf-8")
    );
    assert_eq!(
        header(request, "x-amz-date"),
        Some(sigv4::amz_date(T0 / 1000).as_str())
    );
    assert_eq!(header(request, "x-amz-security-token"), Some(SESSION));
    let credentials = Credentials {
        access_key_id: KEY_ID.into(),
        secret_access_key: Secret::new(SECRET),
        session_token: Some(Secret::new(SESSION)),
    };
    verify_signature(request, &credentials, "eu-west-1");
    assert!(
        header(request, "authorization")
            .unwrap()
            .contains("/eu-west-1/sts/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, ")
    );
}

#[test]
fn the_region_comes_from_the_config_then_aws_region_then_aws_default_region() {
    let answer = |caps: FakeCaps, cfg: serde_json::Value| {
        let caps = env_credentials(caps).route("https://", |_| sts_answer(JWT));
        read_assertion(&caps, &config(cfg)).unwrap();
        caps.requests.borrow()[0].url.clone()
    };
    let both = || {
        FakeCaps::new()
            .env("AWS_REGION", "us-west-2")
            .env("AWS_DEFAULT_REGION", "ap-south-1")
    };
    assert_eq!(
        answer(both(), json!({"aws": {"region": "eu-central-1"}})),
        "https://sts.eu-central-1.amazonaws.com/"
    );
    assert_eq!(
        answer(both(), json!({"aws": {}})),
        "https://sts.us-west-2.amazonaws.com/"
    );
    assert_eq!(
        answer(
            FakeCaps::new().env("AWS_DEFAULT_REGION", "ap-south-1"),
            json!({"aws": {}})
        ),
        "https://sts.ap-south-1.amazonaws.com/"
    );
    assert_eq!(
        answer(
            FakeCaps::new().env("AWS_REGION", "cn-north-1"),
            json!({"aws": {}})
        ),
        "https://sts.cn-north-1.amazonaws.com.cn/"
    );
    let none = env_credentials(FakeCaps::new());
    let message = aws_error(
        read_assertion(&none, &config(json!({"aws": {}}))),
        "no AWS region",
    );
    for name in ["`region`", "AWS_REGION", "AWS_DEFAULT_REGION"] {
        assert!(message.contains(name), "{message}");
    }
    let bad = env_credentials(FakeCaps::new()).env("AWS_REGION", "evil.example/");
    aws_error(
        read_assertion(&bad, &config(json!({"aws": {}}))),
        "AWS_REGION is not an AWS region name",
    );
}

#[test]
fn endpoint_variables_override_the_regional_endpoint() {
    let caps = env_credentials(FakeCaps::new())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", "https://wrong.example")
        .env("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:4566")
        .route("http://127.0.0.1:4566/", |_| sts_answer(JWT));
    read_assertion(&caps, &config(json!({"aws": {}}))).unwrap();
    let request = caps.requests.borrow()[0].clone();
    assert_eq!(request.url, "http://127.0.0.1:4566/");
    let credentials = Credentials {
        access_key_id: KEY_ID.into(),
        secret_access_key: Secret::new(SECRET),
        session_token: Some(Secret::new(SESSION)),
    };
    verify_signature(&request, &credentials, "us-east-1");

    let general = env_credentials(FakeCaps::new())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", "https://sts.internal.example/aws")
        .route("https://sts.internal.example/aws", |_| sts_answer(JWT));
    read_assertion(&general, &config(json!({"aws": {}}))).unwrap();
    assert_eq!(
        general.requests.borrow()[0].url,
        "https://sts.internal.example/aws"
    );

    for value in [
        "http://sts.example",
        "https://x.example/?a=1",
        "sts.example",
    ] {
        let caps = env_credentials(FakeCaps::new())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL_STS", value);
        let message = aws_error(
            read_assertion(&caps, &config(json!({"aws": {}}))),
            "the STS endpoint AWS_ENDPOINT_URL_STS ",
        );
        assert!(!message.contains(value), "{message}");
    }
}

#[test]
fn sts_errors_name_the_code_and_never_a_secret() {
    for (code, hint) in [
        ("SignatureDoesNotMatch", "secret key"),
        ("OutboundWebIdentityFederationDisabledException", "disabled"),
        ("AccessDenied", "sts:GetWebIdentityToken"),
        ("ExpiredToken", "expired"),
    ] {
        let caps = env_credentials(FakeCaps::new())
            .env("AWS_REGION", "eu-west-1")
            .route(STS, move |request| {
                // An answer that echoes everything it was sent.
                let echo = format!(
                    "{} {}",
                    request
                        .headers
                        .iter()
                        .map(|h| h.value.clone())
                        .collect::<Vec<_>>()
                        .join(" "),
                    SECRET
                );
                respond(
                    403,
                    &format!(
                        "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>\
                         <Message>{echo}</Message></Error><RequestId>rid-42</RequestId></ErrorResponse>"
                    ),
                )
            });
        let result = read_assertion(&caps, &config(json!({"aws": {}})));
        let signature = {
            let requests = caps.requests.borrow();
            let authorization = header(&requests[0], "authorization").unwrap().to_string();
            authorization.rsplit('=').next().unwrap().to_string()
        };
        let error = result.unwrap_err();
        assert_no_secret(&error, &[SECRET, SESSION, &signature]);
        let message = aws_error(Err(error), code);
        assert!(message.contains("STS GetWebIdentityToken at https://sts.eu-west-1.amazonaws.com"));
        assert!(message.contains("status 403"), "{message}");
        assert!(message.contains("[request id rid-42]"), "{message}");
        assert!(message.contains(hint), "{message}");
    }
    let empty = env_credentials(FakeCaps::new())
        .env("AWS_REGION", "eu-west-1")
        .route(STS, |_| respond(200, "<GetWebIdentityTokenResponse/>"));
    aws_error(
        read_assertion(&empty, &config(json!({"aws": {}}))),
        "without a WebIdentityToken",
    );
}

#[test]
fn environment_credentials_need_the_secret_key() {
    let caps = FakeCaps::new()
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ACCESS_KEY_ID", KEY_ID);
    aws_error(
        read_assertion(&caps, &config(json!({"aws": {}}))),
        "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not",
    );
}

fn container_answer() -> Result<HttpResponse, CapError> {
    respond(
        200,
        &json!({
            "AccessKeyId": "ASIACONTAINER",
            "SecretAccessKey": "container-secret",
            "Token": "container-session",
            "Expiration": "2030-01-01T00:00:00Z"
        })
        .to_string(),
    )
}

#[test]
fn the_container_endpoint_with_its_authorization_token_file() {
    let caps = FakeCaps::new()
        .env("AWS_REGION", "eu-west-1")
        .env(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://127.0.0.1:9911/v1/credentials",
        )
        .env("AWS_CONTAINER_AUTHORIZATION_TOKEN", "from-variable")
        .env(
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            "/var/run/pod-token",
        )
        .file("/var/run/pod-token", "pod-identity-token\n")
        .route("http://127.0.0.1:9911/v1/credentials", |request| {
            assert_eq!(header(request, "authorization"), Some("pod-identity-token"));
            container_answer()
        })
        .route(STS, |_| sts_answer(JWT));
    read_assertion(&caps, &config(json!({"aws": {}}))).unwrap();
    let sts = caps.requests.borrow()[1].clone();
    assert_eq!(
        header(&sts, "x-amz-security-token"),
        Some("container-session")
    );
    verify_signature(
        &sts,
        &Credentials {
            access_key_id: "ASIACONTAINER".into(),
            secret_access_key: Secret::new("container-secret"),
            session_token: Some(Secret::new("container-session")),
        },
        "eu-west-1",
    );
}

#[test]
fn the_relative_container_uri_wins_and_uses_the_ecs_agent() {
    let caps = FakeCaps::new()
        .env("AWS_REGION", "eu-west-1")
        .env(
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "/v2/credentials/abc",
        )
        .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/x")
        .env("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ecs-token")
        .route("http://169.254.170.2/v2/credentials/abc", |request| {
            assert_eq!(header(request, "authorization"), Some("ecs-token"));
            container_answer()
        })
        .route(STS, |_| sts_answer(JWT));
    read_assertion(&caps, &config(json!({"aws": {}}))).unwrap();

    let refused = FakeCaps::new().env("AWS_REGION", "eu-west-1").env(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "http://10.0.0.5/creds",
    );
    aws_error(
        read_assertion(&refused, &config(json!({"aws": {}}))),
        "AWS_CONTAINER_CREDENTIALS_FULL_URI uses plain http off loopback",
    );
    let failing = FakeCaps::new()
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/c")
        .env("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ecs-token")
        .route("http://127.0.0.1:9/c", |_| {
            respond(401, "bad token ecs-token")
        });
    let error = read_assertion(&failing, &config(json!({"aws": {}}))).unwrap_err();
    assert_no_secret(&error, &["ecs-token"]);
    aws_error(
        Err(error),
        "container credentials endpoint http://127.0.0.1:9 (from AWS_CONTAINER_CREDENTIALS_FULL_URI): status 401",
    );
}

#[test]
fn imdsv2_session_role_and_credentials() {
    let caps = FakeCaps::new()
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9912/")
        .route("http://127.0.0.1:9912/latest/api/token", |request| {
            assert_eq!(request.method, "PUT");
            assert_eq!(
                header(request, "x-aws-ec2-metadata-token-ttl-seconds"),
                Some("21600")
            );
            respond(200, "imds-session")
        })
        .route(
            "http://127.0.0.1:9912/latest/meta-data/iam/security-credentials/",
            |request| {
                assert_eq!(request.method, "GET");
                assert_eq!(header(request, "x-aws-ec2-metadata-token"), Some("imds-session"));
                if request.url.ends_with("/my-role") {
                    respond(
                        200,
                        &json!({"Code": "Success", "AccessKeyId": "ASIAIMDS", "SecretAccessKey": "imds-secret", "Token": "imds-token"}).to_string(),
                    )
                } else {
                    respond(200, "my-role\n")
                }
            },
        )
        .route(STS, |_| sts_answer(JWT));
    read_assertion(&caps, &config(json!({"aws": {}}))).unwrap();
    let requests = caps.requests.borrow();
    assert_eq!(requests.len(), 4);
    verify_signature(
        &requests[3],
        &Credentials {
            access_key_id: "ASIAIMDS".into(),
            secret_access_key: Secret::new("imds-secret"),
            session_token: Some(Secret::new("imds-token")),
        },
        "eu-west-1",
    );
}

#[test]
fn imds_failures_name_the_step() {
    let unreachable = FakeCaps::new()
        .env("AWS_REGION", "eu-west-1")
        .route("http://169.254.169.254/", |_| {
            Err(CapError::Failed("connection refused".into()))
        });
    let message = aws_error(
        read_assertion(&unreachable, &config(json!({"aws": {}}))),
        "no AWS credentials",
    );
    assert!(
        message.contains("EC2 instance metadata (IMDSv2) at http://169.254.169.254, session token"),
        "{message}"
    );
    let no_role = FakeCaps::new()
        .env("AWS_REGION", "eu-west-1")
        .route("http://169.254.169.254/latest/api/token", |_| {
            respond(200, "s")
        })
        .route("http://169.254.169.254/latest/meta-data/", |_| {
            respond(404, "")
        });
    aws_error(
        read_assertion(&no_role, &config(json!({"aws": {}}))),
        "no IAM role (instance profile) attached",
    );
    let disabled = FakeCaps::new()
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_EC2_METADATA_DISABLED", "TRUE");
    aws_error(
        read_assertion(&disabled, &config(json!({"aws": {}}))),
        "AWS_EC2_METADATA_DISABLED",
    );
    assert!(disabled.requests.borrow().is_empty());
}

#[test]
fn a_denied_variable_is_a_denial() {
    let mut caps = FakeCaps::new();
    caps.env.insert(
        "AWS_REGION".into(),
        Err(CapError::Denied("AWS_REGION is not granted".into())),
    );
    assert!(matches!(
        read_assertion(&caps, &config(json!({"aws": {}}))),
        Err(Error::Denied { .. })
    ));
}

const IRSA_TOKEN: &str = "eyJrubernetes.service-account.token";
const ROLE: &str = "arn:aws:iam::111122223333:role/agent";

/// STS answering `AssumeRoleWithWebIdentity` with the role's credentials
/// and `GetWebIdentityToken` with [`JWT`].
fn irsa_sts(request: &HttpRequest) -> Result<HttpResponse, CapError> {
    if String::from_utf8_lossy(&request.body).starts_with("Action=AssumeRoleWithWebIdentity") {
        respond(
            200,
            "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>\
             <AccessKeyId>ASIAIRSA</AccessKeyId><SecretAccessKey>irsa-secret</SecretAccessKey>\
             <SessionToken>irsa-session</SessionToken><Expiration>2030-01-01T00:00:00Z</Expiration>\
             </Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>",
        )
    } else {
        sts_answer(JWT)
    }
}

fn irsa_caps() -> FakeCaps {
    FakeCaps::new()
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/irsa/token")
        .env("AWS_ROLE_ARN", ROLE)
        .file("/var/run/irsa/token", &format!("{IRSA_TOKEN}\n"))
}

#[test]
fn irsa_assumes_the_role_with_the_token_file_before_the_container_endpoint() {
    let caps = irsa_caps()
        .env("AWS_ROLE_SESSION_NAME", "agent-session")
        .env(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://127.0.0.1:9911/v1/credentials",
        )
        .route(STS, irsa_sts);
    assert_eq!(
        read_assertion(&caps, &config(json!({"aws": {}})))
            .unwrap()
            .expose(),
        JWT
    );
    let requests = caps.requests.borrow();
    let [assume, get] = requests.as_slice() else {
        panic!("two requests expected, to STS only: {}", requests.len())
    };
    assert_eq!((assume.method.as_str(), assume.url.as_str()), ("POST", STS));
    assert_eq!(
        String::from_utf8_lossy(&assume.body),
        "Action=AssumeRoleWithWebIdentity&Version=2011-06-15\
         &RoleArn=arn%3Aaws%3Aiam%3A%3A111122223333%3Arole%2Fagent\
         &RoleSessionName=agent-session&WebIdentityToken=eyJrubernetes.service-account.token"
    );
    assert_eq!(
        header(assume, "authorization"),
        None,
        "the request is unsigned"
    );
    verify_signature(
        get,
        &Credentials {
            access_key_id: "ASIAIRSA".into(),
            secret_access_key: Secret::new("irsa-secret"),
            session_token: Some(Secret::new("irsa-session")),
        },
        "eu-west-1",
    );
}

#[test]
fn irsa_without_a_session_name_makes_one() {
    let caps = irsa_caps().route(STS, irsa_sts);
    read_assertion(&caps, &config(json!({"aws": {}}))).unwrap();
    let body = String::from_utf8_lossy(&caps.requests.borrow()[0].body).into_owned();
    assert!(
        body.contains(&format!("&RoleSessionName=anthropic-wif-{T0}&")),
        "{body}"
    );
}

#[test]
fn irsa_failures_name_the_step_and_the_code_never_the_token() {
    let no_role = FakeCaps::new()
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/irsa/token");
    aws_error(
        read_assertion(&no_role, &config(json!({"aws": {}}))),
        "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not",
    );
    let missing = irsa_caps()
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", "/nowhere")
        .route(STS, irsa_sts);
    aws_error(
        read_assertion(&missing, &config(json!({"aws": {}}))),
        "the file AWS_WEB_IDENTITY_TOKEN_FILE names (/nowhere) does not exist",
    );
    for (code, hint) in [
        ("AccessDenied", "trust policy"),
        ("InvalidIdentityToken", "OIDC provider"),
    ] {
        let refused = irsa_caps().route(STS, move |request| {
            respond(
                400,
                &format!(
                    "<ErrorResponse><Error><Code>{code}</Code><Message>echo {}</Message>\
                     </Error><RequestId>rid-7</RequestId></ErrorResponse>",
                    String::from_utf8_lossy(&request.body)
                ),
            )
        });
        let error = read_assertion(&refused, &config(json!({"aws": {}}))).unwrap_err();
        assert_no_secret(&error, &[IRSA_TOKEN]);
        let message = aws_error(Err(error), code);
        assert!(
            message.contains(&format!(
                "credentials from a web identity token: STS AssumeRoleWithWebIdentity at \
                 https://sts.eu-west-1.amazonaws.com for {ROLE}: status 400"
            )),
            "{message}"
        );
        assert!(
            message.contains(hint) && message.contains("rid-7"),
            "{message}"
        );
    }
}
