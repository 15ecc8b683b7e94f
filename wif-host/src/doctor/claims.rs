//! What `doctor` shows of an identity token: the JWT header's `alg` and
//! `kid` and the claims a federation rule matches (`iss`, `sub`, `aud`, the
//! times, whether there is a `jti`), read without verifying the signature,
//! and what in them will make an exchange fail.
//!
//! Never shown: the token, its signature, the `jti` value, the values of
//! other claims (only their names), and any shown value that looks like a
//! credential (a JWT, an Anthropic key, a long run of base64).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// The audience Anthropic validates, whatever the config's `base_url`.
pub(crate) const ANTHROPIC_AUDIENCE: &str = "https://api.anthropic.com";
/// Lifetimes above this (24 h) are longer than identity providers issue.
const LONG_LIFETIME_SECS: u64 = 24 * 3600;
/// Tolerated clock difference for an `iat` in the future.
const SKEW_SECS: u64 = 60;
/// The longest value shown, in characters.
const SHOWN_CHARS: usize = 200;
/// The most other claim names listed.
const OTHER_NAMES: usize = 20;

/// The lines to print and what will make the exchange fail.
#[derive(Debug, Default)]
pub(crate) struct Reading {
    /// Facts: one line each.
    pub(crate) lines: Vec<String>,
    /// Problems the token endpoint will refuse.
    pub(crate) problems: Vec<String>,
    /// Things worth checking that may still work.
    pub(crate) warnings: Vec<String>,
}

/// Reads `token` at `now` (Unix seconds); `base_url` is the config's, when
/// it sets one.
pub(crate) fn read(token: &str, now: u64, base_url: Option<&str>) -> Reading {
    let mut reading = Reading::default();
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() == 5 {
        reading.problems.push(format!(
            "the identity token is an encrypted JWT (JWE, {} bytes): its claims cannot be \
             read here, and Anthropic's token endpoint takes a signed JWT (JWS) it can verify \
             with the issuer's public keys",
            token.len()
        ));
        return reading;
    }
    let decoded = match parts.as_slice() {
        [header, payload, _] => object(header).zip(object(payload)),
        _ => None,
    };
    let Some((header, claims)) = decoded else {
        reading.problems.push(format!(
            "the identity token is not a JWT ({} bytes, not three base64url parts of which \
             the first two are JSON objects): an opaque token, as some OAuth servers issue for \
             access tokens. Anthropic's token endpoint takes only a JWT signed by the issuer \
             (RFC 7523 jwt-bearer): have the issuer issue JWTs (for Okta, a custom \
             authorization server with audience {ANTHROPIC_AUDIENCE})",
            token.len()
        ));
        return reading;
    };
    reading
        .lines
        .push("a JWT (its signature is not verified here)".into());
    read_header(&header, &mut reading);
    for name in ["iss", "sub"] {
        let line = match claims.get(name) {
            Some(Value::String(value)) => format!("{name}: {}", shown(value)),
            Some(_) => format!("{name}: not a string"),
            None => format!("{name}: absent"),
        };
        reading.lines.push(line);
    }
    read_audience(claims.get("aud"), base_url, &mut reading);
    read_times(&claims, now, &mut reading);
    reading.lines.push(format!(
        "jti: {}",
        if claims.contains_key("jti") {
            "present (not shown)"
        } else {
            "absent"
        }
    ));
    let others: Vec<&String> = claims
        .keys()
        .filter(|k| !["iss", "sub", "aud", "iat", "nbf", "exp", "jti"].contains(&k.as_str()))
        .collect();
    if !others.is_empty() {
        let more = others.len().saturating_sub(OTHER_NAMES);
        let others: Vec<String> = others.iter().take(OTHER_NAMES).map(|k| shown(k)).collect();
        reading.lines.push(format!(
            "other claims (values not shown): {}{}",
            others.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ));
    }
    reading
}

/// A base64url-encoded JSON object.
fn object(part: &str) -> Option<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

fn read_header(header: &Map<String, Value>, reading: &mut Reading) {
    let text = |name: &str| header.get(name).and_then(Value::as_str).map(shown);
    let alg = text("alg");
    reading.lines.push(format!(
        "header: alg {}, kid {}",
        alg.as_deref().unwrap_or("absent"),
        text("kid").as_deref().unwrap_or("absent")
    ));
    if alg
        .as_deref()
        .is_none_or(|alg| alg.eq_ignore_ascii_case("none"))
    {
        reading.problems.push(
            "the token is not signed (alg none or absent): the token endpoint accepts only \
             tokens signed with the issuer's keys"
                .into(),
        );
    }
}

fn read_audience(aud: Option<&Value>, base_url: Option<&str>, reading: &mut Reading) {
    let audiences: Vec<&str> = match aud {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if audiences.is_empty() {
        reading.lines.push("aud: absent".into());
        reading.problems.push(format!(
            "the token has no aud: Anthropic accepts only tokens whose aud is \
             {ANTHROPIC_AUDIENCE}"
        ));
        return;
    }
    let listed: Vec<String> = audiences.iter().map(|a| shown(a)).collect();
    reading.lines.push(format!("aud: {}", listed.join(", ")));
    if audiences.contains(&ANTHROPIC_AUDIENCE) {
        return;
    }
    let base = base_url.map(|b| b.trim_end_matches('/'));
    let why = if base.is_some_and(|b| b != ANTHROPIC_AUDIENCE && audiences.contains(&b)) {
        " (it is the config's base_url, but the audience does not follow base_url)".to_string()
    } else if audiences.iter().any(|a| {
        a.trim_end_matches('/')
            .eq_ignore_ascii_case(ANTHROPIC_AUDIENCE)
    }) {
        " (close, but the audience must match exactly: no trailing slash, lower case)".to_string()
    } else {
        String::new()
    };
    reading.problems.push(format!(
        "aud is not {ANTHROPIC_AUDIENCE}{why}: Anthropic validates aud against that fixed \
         value; have the issuer mint the token for the audience {ANTHROPIC_AUDIENCE}"
    ));
}

fn read_times(claims: &Map<String, Value>, now: u64, reading: &mut Reading) {
    let time = |name: &str| claims.get(name).and_then(Value::as_u64);
    let (iat, nbf, exp) = (time("iat"), time("nbf"), time("exp"));
    for (name, value) in [("iat", iat), ("nbf", nbf)] {
        let line = match value {
            Some(at) => format!("{name}: {} ({})", utc(at), relative(at, now)),
            None if claims.contains_key(name) => format!("{name}: not a number of seconds"),
            None => format!("{name}: absent"),
        };
        reading.lines.push(line);
    }
    match exp {
        Some(at) => {
            let lifetime = iat
                .or(nbf)
                .filter(|start| *start <= at)
                .map(|start| format!("; lifetime {}", duration(at - start)))
                .unwrap_or_default();
            reading.lines.push(format!(
                "exp: {} ({}{lifetime})",
                utc(at),
                relative(at, now)
            ));
        }
        None => {
            reading.lines.push("exp: absent".into());
            reading.problems.push(
                "the token has no exp: the token endpoint refuses a JWT without an expiry \
                 (RFC 7523)"
                    .into(),
            );
        }
    }
    if let Some(exp) = exp.filter(|exp| *exp <= now) {
        reading.problems.push(format!(
            "the token expired {} ago: the exchange will be refused; the source must hand \
             out a fresh one (a file its issuer rewrites before it expires, a command or URL \
             that mints one)",
            duration(now - exp)
        ));
    }
    if let Some(nbf) = nbf.filter(|nbf| *nbf > now) {
        reading.problems.push(format!(
            "the token is not valid yet (nbf is {} ahead): is this machine's clock behind \
             the issuer's?",
            duration(nbf - now)
        ));
    }
    if let Some(iat) = iat.filter(|iat| *iat > now + SKEW_SECS) {
        reading.warnings.push(format!(
            "the token was issued {} in the future (iat): is this machine's clock behind \
             the issuer's?",
            duration(iat - now)
        ));
    }
    if let (Some(start), Some(exp)) = (iat.or(nbf), exp)
        && exp.saturating_sub(start) > LONG_LIFETIME_SECS
    {
        reading.warnings.push(format!(
            "the token lives {}, longer than identity providers usually allow (minutes to \
             an hour; 24 h at most): check the issuer's settings; an identity token that long \
             is the standing credential federation is meant to replace",
            duration(exp - start)
        ));
    }
}

/// A claim value fit to print: control characters escaped, bounded, and
/// hidden when it looks like a credential.
fn shown(value: &str) -> String {
    if looks_secret(value) {
        return "[not shown: it looks like a credential]".into();
    }
    let escaped: String = value
        .chars()
        .flat_map(char::escape_debug)
        .take(SHOWN_CHARS)
        .collect();
    if value.chars().flat_map(char::escape_debug).count() > SHOWN_CHARS {
        format!("{escaped}…")
    } else {
        escaped
    }
}

/// A JWT, an Anthropic key or token, or 40 and more characters of base64
/// with nothing that separates words or path parts.
fn looks_secret(value: &str) -> bool {
    let base64ish = |c: char| c.is_ascii_alphanumeric() || "-_+/=".contains(c);
    value.contains("sk-ant-")
        || (value.starts_with("eyJ") && value.contains('.'))
        || (value.len() >= 40
            && value.chars().all(base64ish)
            && value.chars().any(|c| c.is_ascii_digit())
            && value.chars().any(|c| c.is_ascii_uppercase())
            && value.chars().any(|c| c.is_ascii_lowercase()))
}

/// `at` relative to `now`: "in 5 min", "3 s ago", "now".
fn relative(at: u64, now: u64) -> String {
    match at.cmp(&now) {
        std::cmp::Ordering::Greater => format!("in {}", duration(at - now)),
        std::cmp::Ordering::Less => format!("{} ago", duration(now - at)),
        std::cmp::Ordering::Equal => "now".into(),
    }
}

/// A duration in its largest sensible unit.
fn duration(secs: u64) -> String {
    match secs {
        0..120 => format!("{secs} s"),
        120..7200 => format!("{} min", secs / 60),
        7200..172_800 => format!("{} h", secs / 3600),
        _ => format!("{} days", secs / 86_400),
    }
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian, UTC).
pub(crate) fn utc(secs: u64) -> String {
    let days = secs / 86_400;
    let rest = secs % 86_400;
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 >= 0.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests;
