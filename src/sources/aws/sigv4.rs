//! AWS Signature Version 4, header signing: the canonical request, the
//! string to sign and the signature, as AWS's SigV4 test suite defines
//! them (see `testdata/sigv4/`).

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::form::encode_except;
use crate::secret::Secret;

/// The signing algorithm's name.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// AWS credentials. `Debug` shows the access key id only.
#[derive(Clone)]
pub(crate) struct Credentials {
    /// `AKIA…`/`ASIA…`: an identifier, not a secret (it is sent in the
    /// `Authorization` header).
    pub(crate) access_key_id: String,
    /// The secret key: it never leaves the component.
    pub(crate) secret_access_key: Secret,
    /// The session token of temporary credentials, sent as
    /// `x-amz-security-token`.
    pub(crate) session_token: Option<Secret>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// The parts of a request that are signed.
pub(crate) struct Request<'a> {
    /// `GET`, `POST`, …
    pub(crate) method: &'a str,
    /// The `Host` header the client sends: `host[:port]`, the port only
    /// when it is not the scheme's default.
    pub(crate) host: &'a str,
    /// The path as sent (already percent-encoded in a URL).
    pub(crate) path: &'a str,
    /// The query as sent, without `?`.
    pub(crate) query: &'a str,
    /// The headers to sign besides `host`, `x-amz-date` among them.
    pub(crate) headers: &'a [(String, String)],
    /// The body.
    pub(crate) body: &'a [u8],
}

/// Where and when a request is signed.
pub(crate) struct Scope<'a> {
    /// The region, e.g. `us-east-1`.
    pub(crate) region: &'a str,
    /// The service, e.g. `sts`.
    pub(crate) service: &'a str,
    /// `YYYYMMDDTHHMMSSZ`, the value of `x-amz-date`.
    pub(crate) amz_date: &'a str,
}

/// The results of signing a request.
pub(crate) struct Signed {
    /// The signature, 64 lower-case hex digits.
    pub(crate) signature: String,
    /// The `Authorization` header's value.
    pub(crate) authorization: String,
}

/// Signs `request` with `credentials` for `scope`.
pub(crate) fn sign(request: &Request<'_>, credentials: &Credentials, scope: &Scope<'_>) -> Signed {
    let (canonical_request, signed_headers) = canonical_request(request);
    let string_to_sign = string_to_sign(&canonical_request, scope);
    let date = scope.amz_date.get(..8).unwrap_or_default();
    let credential_scope = credential_scope(scope);
    let secret = format!("AWS4{}", credentials.secret_access_key.expose());
    let key = [date, scope.region, scope.service, "aws4_request"]
        .iter()
        .fold(secret.into_bytes(), |key, part| hmac(&key, part.as_bytes()));
    let signature = hex(&hmac(&key, string_to_sign.as_bytes()));
    let authorization = format!(
        "{ALGORITHM} Credential={}/{credential_scope}, SignedHeaders={signed_headers}, Signature={signature}",
        credentials.access_key_id
    );
    Signed {
        signature,
        authorization,
    }
}

/// The canonical request, and the `;`-joined names of the signed headers.
fn canonical_request(request: &Request<'_>) -> (String, String) {
    let (canonical_headers, signed_headers) = canonical_headers(request);
    let canonical = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        request.method,
        canonical_path(request.path),
        canonical_query(request.query),
        hex(&Sha256::digest(request.body)),
    );
    (canonical, signed_headers)
}

/// `DATE/REGION/SERVICE/aws4_request`.
fn credential_scope(scope: &Scope<'_>) -> String {
    let date = scope.amz_date.get(..8).unwrap_or_default();
    format!("{date}/{}/{}/aws4_request", scope.region, scope.service)
}

/// The string to sign of a canonical request.
fn string_to_sign(canonical_request: &str, scope: &Scope<'_>) -> String {
    format!(
        "{ALGORITHM}\n{}\n{}\n{}",
        scope.amz_date,
        credential_scope(scope),
        hex(&Sha256::digest(canonical_request.as_bytes()))
    )
}

/// `x-amz-date` for a time in Unix seconds: `YYYYMMDDTHHMMSSZ` (UTC).
pub(crate) fn amz_date(unix_secs: u64) -> String {
    let days = unix_secs / 86_400;
    let secs = unix_secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Lower-cased names with trimmed values, runs of spaces folded into one,
/// sorted by name, values of repeated names joined with `,`; and the
/// `;`-joined list of names.
fn canonical_headers(request: &Request<'_>) -> (String, String) {
    let mut headers: Vec<(String, String)> = std::iter::once(("host", request.host))
        .chain(
            request
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str())),
        )
        .map(|(name, value)| {
            let value = crate::text::join(value.split_whitespace(), " ");
            (name.to_ascii_lowercase(), value)
        })
        .collect();
    crate::text::sort_small(&mut headers, |a, b| a.0 > b.0);
    let mut lines: Vec<(String, String)> = Vec::new();
    for (name, value) in headers {
        match lines.last_mut() {
            Some((last, values)) if *last == name => {
                values.push(',');
                values.push_str(&value);
            }
            _ => lines.push((name, value)),
        }
    }
    let canonical = lines
        .iter()
        .map(|(name, value)| format!("{name}:{value}\n"))
        .collect();
    let signed = crate::text::join(lines.iter().map(|(name, _)| name), ";");
    (canonical, signed)
}

/// The path without `.` and `..` segments, every byte but unreserved
/// characters and `/` percent-encoded (a `%` of the path as sent included:
/// services other than S3 expect it encoded twice).
fn canonical_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/').skip(1) {
        match segment {
            "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let normalized = format!("/{}", crate::text::join(segments, "/"));
    encode_except(&normalized, b"/")
}

/// The query's parameters decoded, re-encoded and sorted.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                encode_except(&percent_decode(name), b""),
                encode_except(&percent_decode(value), b""),
            )
        })
        .collect();
    crate::text::sort_small(&mut pairs, |a, b| a > b);
    crate::text::join(
        pairs.iter().map(|(name, value)| format!("{name}={value}")),
        "&",
    )
}

/// `%XX` sequences decoded; anything else (a lone `%` included) kept.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex_byte = bytes
            .get(i + 1..i + 3)
            .filter(|_| bytes[i] == b'%')
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex_byte {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length: `new_from_slice` cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return Vec::new(),
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Lower-case hex digits of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
