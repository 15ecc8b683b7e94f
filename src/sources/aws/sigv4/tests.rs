//! SigV4 against AWS's published test suite (`../testdata/sigv4/`, see its
//! README for the origin and license).

use super::*;

/// The vectors' common timestamp, 2015-08-30T12:36:00Z.
const TIMESTAMP: u64 = 1_440_938_160;

struct Vector {
    name: &'static str,
    context: &'static str,
    request: &'static str,
    canonical_request: &'static str,
    string_to_sign: &'static str,
    signature: &'static str,
}

macro_rules! vector {
    ($name:literal) => {
        Vector {
            name: $name,
            context: include_str!(concat!("../testdata/sigv4/", $name, "/context.json")),
            request: include_str!(concat!("../testdata/sigv4/", $name, "/request.txt")),
            canonical_request: include_str!(concat!(
                "../testdata/sigv4/",
                $name,
                "/header-canonical-request.txt"
            )),
            string_to_sign: include_str!(concat!(
                "../testdata/sigv4/",
                $name,
                "/header-string-to-sign.txt"
            )),
            signature: include_str!(concat!(
                "../testdata/sigv4/",
                $name,
                "/header-signature.txt"
            )),
        }
    };
}

fn vectors() -> Vec<Vector> {
    vec![
        vector!("get-vanilla"),
        vector!("post-vanilla"),
        vector!("post-x-www-form-urlencoded"),
        vector!("get-vanilla-query-order-key-case"),
        vector!("get-header-value-trim"),
        vector!("get-vanilla-with-session-token"),
        vector!("get-utf8"),
        vector!("get-space-normalized"),
    ]
}

/// Signs a vector's request as its context says: the canonical request,
/// the string to sign and the signed result.
fn sign_vector(vector: &Vector) -> (String, String, Signed) {
    let context: serde_json::Value = serde_json::from_str(vector.context).unwrap();
    let creds = &context["credentials"];
    let credentials = Credentials {
        access_key_id: creds["access_key_id"].as_str().unwrap().into(),
        secret_access_key: Secret::new(creds["secret_access_key"].as_str().unwrap()),
        session_token: creds["token"].as_str().map(Secret::new),
    };
    let (head, body) = vector
        .request
        .split_once("\n\n")
        .unwrap_or((vector.request, ""));
    let mut lines = head.lines();
    let request_line = lines.next().unwrap();
    let (method, rest) = request_line.split_once(' ').unwrap();
    let target = rest.rsplit_once(" HTTP/").unwrap().0;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut host = String::new();
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':').unwrap();
        if name.eq_ignore_ascii_case("host") {
            host = value.to_string();
        } else {
            headers.push((name.to_string(), value.to_string()));
        }
    }
    let amz_date = amz_date(TIMESTAMP);
    headers.push(("X-Amz-Date".into(), amz_date.clone()));
    if context["sign_body"].as_bool() == Some(true) {
        headers.push((
            "x-amz-content-sha256".into(),
            hex(&Sha256::digest(body.as_bytes())),
        ));
    }
    if let Some(token) = &credentials.session_token
        && context["omit_session_token"].as_bool() != Some(true)
    {
        headers.push(("X-Amz-Security-Token".into(), token.expose().into()));
    }
    let request = Request {
        method,
        host: &host,
        path,
        query,
        headers: &headers,
        body: body.as_bytes(),
    };
    let scope = Scope {
        region: context["region"].as_str().unwrap(),
        service: context["service"].as_str().unwrap(),
        amz_date: &amz_date,
    };
    let (canonical, _) = canonical_request(&request);
    let to_sign = string_to_sign(&canonical, &scope);
    (canonical, to_sign, sign(&request, &credentials, &scope))
}

#[test]
fn the_aws_test_suite_vectors_sign_as_published() {
    for vector in vectors() {
        let (canonical_request, string_to_sign, signed) = sign_vector(&vector);
        assert_eq!(
            canonical_request, vector.canonical_request,
            "canonical request of {}",
            vector.name
        );
        assert_eq!(
            string_to_sign, vector.string_to_sign,
            "string to sign of {}",
            vector.name
        );
        assert_eq!(
            signed.signature,
            vector.signature.trim(),
            "signature of {}",
            vector.name
        );
        assert!(
            signed.authorization.ends_with(&format!(
                "aws4_request, SignedHeaders={}, Signature={}",
                vector.canonical_request.lines().nth_back(1).unwrap(),
                signed.signature
            )),
            "{}",
            vector.name
        );
    }
}

#[test]
fn dates_are_utc_and_zero_padded() {
    assert_eq!(amz_date(TIMESTAMP), "20150830T123600Z");
    assert_eq!(amz_date(0), "19700101T000000Z");
    assert_eq!(amz_date(951_782_400), "20000229T000000Z");
    assert_eq!(amz_date(1_767_225_599), "20251231T235959Z");
}

#[test]
fn credentials_debug_shows_no_secret() {
    let credentials = Credentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: Secret::new("very-secret"),
        session_token: Some(Secret::new("session-secret")),
    };
    let shown = format!("{credentials:?}");
    assert!(shown.contains("AKIDEXAMPLE"));
    assert!(!shown.contains("secret"), "{shown}");
}
