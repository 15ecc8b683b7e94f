//! Hostile HTTP endpoints: the identity URL (the `url` source) and the token
//! endpoint, played by real loopback servers that misbehave on the wire —
//! redirects, bodies at and over the 1 MiB cap, endless chunked streams,
//! trickled heads and bodies, resets, broken UTF-8 and JSON built to hurt
//! parsers. Each case must end, quickly, in an error of the right kind
//! (never a trap, never a panic) that quotes no secret.
//!
//! The cases form one table per endpoint; the table is printed with the
//! outcome of each case (`cargo test --test hostile_endpoints -- --nocapture`).

#![deny(unsafe_code)]

mod common;

use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anthropic_wif_host::loopback::{LoopbackServer, Reply};
use anthropic_wif_host::{AccessToken, Error, SourceKind};
use common::*;
use serde_json::json;

/// The cap of a response body the policy keeps by default.
const MIB: usize = 1024 * 1024;
/// An access token a hostile token endpoint puts in its bodies; it must not
/// reach an error message.
const HOSTILE_TOKEN: &str = "sk-ant-oat01-hostile-3c9e71d0a5b2";
/// A header secret sent to the identity URL; a hostile endpoint echoes it.
const HEADER_SECRET: &str = "ghs_hostile_header_secret_71f3a9";
/// The pace of a trickle.
const TRICKLE: Duration = Duration::from_millis(100);

/// Which endpoint is hostile.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Target {
    /// The identity URL of a `url` source (`response_field: value`).
    Identity,
    /// The token endpoint (`base_url`).
    Token,
}

/// What a hostile server does with each request.
type Behaviour = Arc<dyn Fn(&mut TcpStream, &RawRequest) + Send + Sync>;

/// The outcome a case expects.
#[derive(Clone, Debug)]
enum Expect {
    /// A token (the body is well formed and within the cap).
    Token,
    /// `SourceFailed` from the url source, its message containing each
    /// text (identity endpoint only).
    Source(Vec<String>),
    /// `ExchangeFailed` containing each text.
    Failed(Vec<String>),
    /// `ExchangeRejected` with this status, its text containing each text.
    Rejected(u16, Vec<String>),
    /// `MalformedResponse` containing each text.
    Malformed(Vec<String>),
}

fn texts(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_string()).collect()
}

struct Case {
    name: String,
    behaviour: Behaviour,
    expect: Expect,
    /// The policy's HTTP timeout.
    timeout_secs: f64,
    /// A server that must receive nothing (a redirect target).
    untouched: Option<Arc<LoopbackServer>>,
    /// The case redirects to `/redirected…` on the hostile server itself.
    same_origin_redirect: bool,
}

impl Case {
    fn new(name: impl Into<String>, expect: Expect, behaviour: Behaviour) -> Case {
        Case {
            name: name.into(),
            behaviour,
            expect,
            timeout_secs: 2.0,
            untouched: None,
            same_origin_redirect: false,
        }
    }

    fn timeout(mut self, secs: f64) -> Case {
        self.timeout_secs = secs;
        self
    }
}

/// Answers every request with `status`, `headers` and `body`.
fn reply(status: u16, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Behaviour {
    let body = body.into();
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| ((*n).to_string(), (*v).to_string()))
        .collect();
    Arc::new(move |stream, _| {
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        respond(stream, status, &headers, &body);
    })
}

fn json_reply(status: u16, body: &str) -> Behaviour {
    reply(
        status,
        &[("content-type", "application/json")],
        body.as_bytes(),
    )
}

/// A well-formed body for `target`, padded with spaces to exactly `len`
/// bytes.
fn good_body_of_len(target: Target, len: usize) -> Vec<u8> {
    let mut body = good_body(target).into_bytes();
    assert!(body.len() <= len);
    body.resize(len, b' ');
    body
}

/// The answer a well-behaved endpoint would give.
fn good_body(target: Target) -> String {
    match target {
        Target::Identity => json!({"value": JWT}).to_string(),
        Target::Token => {
            json!({"access_token": HOSTILE_TOKEN, "expires_in": 3600, "token_type": "Bearer"})
                .to_string()
        }
    }
}

/// The head of a good answer, then the body one byte every [`TRICKLE`].
fn trickled_body(target: Target) -> Behaviour {
    Arc::new(move |stream, _| {
        let body = good_body(target);
        let head = response_head(
            200,
            &[("content-type", "application/json")],
            Some(body.len()),
        );
        if std::io::Write::write_all(stream, &head).is_ok() {
            trickle(stream, body.as_bytes(), TRICKLE);
        }
    })
}

/// The whole answer, head included, one byte every [`TRICKLE`].
fn trickled_head(target: Target) -> Behaviour {
    Arc::new(move |stream, _| {
        let body = good_body(target);
        let mut bytes = response_head(
            200,
            &[("content-type", "application/json")],
            Some(body.len()),
        );
        bytes.extend_from_slice(body.as_bytes());
        trickle(stream, &bytes, TRICKLE);
    })
}

/// A chunked body that never ends (bounded at 64 MiB so the thread ends
/// even if nobody hangs up).
fn endless_chunks() -> Behaviour {
    Arc::new(|stream, _| {
        let head = response_head(
            200,
            &[
                ("content-type", "application/json"),
                ("transfer-encoding", "chunked"),
            ],
            None,
        );
        let chunk = format!("{:x}\r\n{}\r\n", 16 * 1024, " ".repeat(16 * 1024));
        let mut sent = 0;
        let mut out = stream;
        if std::io::Write::write_all(&mut out, &head).is_err() {
            return;
        }
        while sent < 64 * MIB {
            if std::io::Write::write_all(&mut out, chunk.as_bytes()).is_err() {
                return;
            }
            sent += 16 * 1024;
        }
    })
}

/// A chunked body of exactly `len` bytes (a good answer, padded).
fn chunked(target: Target, len: usize) -> Behaviour {
    Arc::new(move |stream, _| {
        let body = good_body_of_len(target, len);
        let mut bytes = response_head(
            200,
            &[
                ("content-type", "application/json"),
                ("transfer-encoding", "chunked"),
            ],
            None,
        );
        for chunk in body.chunks(64 * 1024) {
            bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            bytes.extend_from_slice(chunk);
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"0\r\n\r\n");
        let _ = std::io::Write::write_all(stream, &bytes);
    })
}

/// Announces a body of 64 KiB, sends part of it, then resets the
/// connection (`reset`) or closes it cleanly.
fn cut_body(target: Target, reset: bool) -> Behaviour {
    Arc::new(move |stream, _| {
        let body = good_body_of_len(target, 64 * 1024);
        let mut bytes = response_head(
            200,
            &[("content-type", "application/json")],
            Some(body.len()),
        );
        bytes.extend_from_slice(&body[..20]);
        let _ = std::io::Write::write_all(stream, &bytes);
        let _ = std::io::Write::flush(stream);
        std::thread::sleep(Duration::from_millis(50));
        if reset {
            reset_on_close(stream);
        }
    })
}

/// A gzip stream of `prefix` then `spaces` spaces, compressed with runs of
/// 258 bytes in 13 bits each (fixed Huffman codes), so that a few hundred
/// KiB on the wire decode to tens of MiB: a decompression bomb. Without
/// `checksum` the CRC is left at zero (a reader stopped by the cap never
/// gets to it).
fn gzip(prefix: &[u8], spaces: usize, checksum: bool) -> Vec<u8> {
    struct Bits {
        out: Vec<u8>,
        acc: u64,
        n: u32,
    }
    impl Bits {
        /// `count` bits of `value`, least significant first.
        fn put(&mut self, value: u32, count: u32) {
            self.acc |= u64::from(value) << self.n;
            self.n += count;
            while self.n >= 8 {
                self.out.push(self.acc.to_le_bytes()[0]);
                self.acc >>= 8;
                self.n -= 8;
            }
        }
        /// A Huffman code of `count` bits, most significant first.
        fn code(&mut self, code: u32, count: u32) {
            self.put(code.reverse_bits() >> (32 - count), count);
        }
        /// A literal byte below 144 (8-bit fixed code).
        fn literal(&mut self, byte: u8) {
            assert!(byte < 144, "ASCII only");
            self.code(0x30 + u32::from(byte), 8);
        }
    }
    let mut bits = Bits {
        out: Vec::new(),
        acc: 0,
        n: 0,
    };
    bits.put(1, 1); // BFINAL
    bits.put(1, 2); // BTYPE 01: fixed Huffman codes
    for &byte in prefix {
        bits.literal(byte);
    }
    let mut left = spaces;
    if left > 0 {
        bits.literal(b' ');
        left -= 1;
    }
    while left >= 258 {
        bits.code(0b1100_0101, 8); // length code 285: 258 bytes
        bits.code(0, 5); // distance code 0: distance 1
        left -= 258;
    }
    for _ in 0..left {
        bits.literal(b' ');
    }
    bits.code(0, 7); // end of block
    bits.put(0, 7); // flush the last byte
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    out.extend_from_slice(&bits.out);
    let crc = if checksum {
        let mut crc = !0u32;
        for byte in prefix
            .iter()
            .copied()
            .chain(std::iter::repeat_n(b' ', spaces))
        {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    } else {
        0
    };
    out.extend_from_slice(&crc.to_le_bytes());
    let total = u32::try_from((prefix.len() + spaces) % (1 << 32)).unwrap();
    out.extend_from_slice(&total.to_le_bytes());
    out
}

/// JSON nested `depth` levels deep: `[[[…]]]`.
fn deep_json(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// JSON objects nested `depth` levels deep around the field: `{"a":{"a":…}}`.
fn deep_objects(depth: usize) -> String {
    format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
}

/// The cases common to both endpoints, then those specific to `target`.
/// `redirect_target` is a working endpoint of the same kind on another
/// port; `hostile_port` is the port the hostile server will have.
fn cases(target: Target, redirect_target: &Arc<LoopbackServer>, hostile_port: u16) -> Vec<Case> {
    let identity = target == Target::Identity;
    // The error of a well-formed non-2xx answer.
    let status_error = |status: u16, also: &[&str]| {
        let mut words = texts(also);
        words.push(status.to_string());
        if identity {
            Expect::Source(words)
        } else {
            Expect::Rejected(status, words)
        }
    };
    // The error of a 2xx answer whose content is wrong.
    let content_error = |identity_words: &[&str], token_words: &[&str]| {
        if identity {
            Expect::Source(texts(identity_words))
        } else {
            Expect::Malformed(texts(token_words))
        }
    };
    // The error of a transport failure.
    let transport_error = |identity_words: &[&str], token_words: &[&str]| {
        if identity {
            Expect::Source(texts(identity_words))
        } else {
            Expect::Failed(texts(token_words))
        }
    };
    let path = if identity {
        "/oidc/token"
    } else {
        "/v1/oauth/token"
    };

    let mut cases = Vec::new();

    // Redirects of every kind, to the same origin, to another granted
    // loopback origin, and to plain http on another host name: none is
    // followed.
    for status in [301, 302, 303, 307, 308] {
        let destinations = [
            (
                "same origin",
                format!("http://127.0.0.1:{hostile_port}/redirected{path}"),
                None,
            ),
            (
                "cross origin",
                format!("{}{path}", redirect_target.url()),
                Some(redirect_target.clone()),
            ),
            (
                "to http://localhost",
                format!("http://localhost:{}{path}", redirect_target.port()),
                Some(redirect_target.clone()),
            ),
        ];
        for (kind, location, untouched) in destinations {
            let mut case = Case::new(
                format!("{status} redirect, {kind}"),
                if identity {
                    Expect::Source(vec![
                        status.to_string(),
                        "redirects are not followed".into(),
                    ])
                } else {
                    Expect::Rejected(
                        status,
                        vec![status.to_string(), "redirects are not followed".into()],
                    )
                },
                reply(
                    status,
                    &[("location", location.as_str())],
                    format!("moved to {location}"),
                ),
            );
            case.same_origin_redirect = untouched.is_none();
            case.untouched = untouched;
            cases.push(case);
        }
    }

    // Sizes: the cap is 1 MiB, inclusive, and more is an error, not a cut.
    cases.push(Case::new(
        "body of exactly 1 MiB (content-length)",
        Expect::Token,
        reply(
            200,
            &[("content-type", "application/json")],
            good_body_of_len(target, MIB),
        ),
    ));
    cases.push(Case::new(
        "body of exactly 1 MiB (chunked)",
        Expect::Token,
        chunked(target, MIB),
    ));
    cases.push(Case::new(
        "body of 1 MiB + 1 (content-length)",
        transport_error(&["too large", "1048576"], &["too large", "1048576"]),
        reply(
            200,
            &[("content-type", "application/json")],
            good_body_of_len(target, MIB + 1),
        ),
    ));
    cases.push(Case::new(
        "body of 1 MiB + 1 (chunked)",
        transport_error(&["too large", "1048576"], &["too large", "1048576"]),
        chunked(target, MIB + 1),
    ));
    cases.push(
        Case::new(
            "endless chunked stream",
            transport_error(&["too large"], &["too large"]),
            endless_chunks(),
        )
        .timeout(1.0),
    );

    // Compressed bodies: the cap counts decoded bytes.
    let good = good_body(target);
    cases.push(Case::new(
        "gzip, exactly 1 MiB decoded",
        Expect::Token,
        reply(
            200,
            &[
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
            gzip(good.as_bytes(), MIB - good.len(), true),
        ),
    ));
    cases.push(Case::new(
        "gzip bomb, 64 MiB from 400 KiB",
        transport_error(&["too large", "1048576"], &["too large", "1048576"]),
        reply(
            200,
            &[
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
            gzip(good.as_bytes(), 64 * MIB, false),
        ),
    ));
    cases.push(Case::new(
        "gzip that is not gzip",
        transport_error(&["not valid gzip"], &["not valid gzip"]),
        reply(
            200,
            &[
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
            good.as_bytes(),
        ),
    ));
    cases.push(Case::new(
        "response header of 1 MiB",
        transport_error(&["too large"], &["too large"]),
        Arc::new(|stream, _| {
            let pad = "a".repeat(MIB);
            respond(stream, 200, &[("x-pad", pad.as_str())], b"{}");
        }),
    ));

    // Slow and broken connections.
    cases.push(
        Case::new(
            "head trickled 1 byte / 100 ms",
            transport_error(&["timed out"], &["did not answer in time"]),
            trickled_head(target),
        )
        .timeout(1.0),
    );
    cases.push(
        Case::new(
            "body trickled 1 byte / 100 ms",
            transport_error(&["timed out"], &["did not answer in time"]),
            trickled_body(target),
        )
        .timeout(1.0),
    );
    cases.push(Case::new(
        "connection reset mid-body",
        transport_error(&["failed"], &["token exchange failed"]),
        cut_body(target, true),
    ));
    cases.push(Case::new(
        "connection closed mid-body",
        transport_error(&["failed"], &["token exchange failed"]),
        cut_body(target, false),
    ));
    cases.push(Case::new(
        "connection closed before any answer",
        transport_error(&["failed"], &["token exchange failed"]),
        Arc::new(|_, _| {}),
    ));
    cases.push(Case::new(
        "not HTTP at all",
        transport_error(&["failed"], &["token exchange failed"]),
        Arc::new(|stream, _| {
            let _ = std::io::Write::write_all(stream, b"SSH-2.0-OpenSSH_9.6\r\n\r\n");
        }),
    ));

    // Bodies built to hurt a parser.
    let mut invalid_utf8 = b"{\"value\": \"".to_vec();
    invalid_utf8.extend_from_slice(b"\xff\xfe\xc3\x28");
    invalid_utf8.extend_from_slice(b"\", \"access_token\": \"\xff\", \"expires_in\": 3600}");
    cases.push(Case::new(
        "invalid UTF-8",
        content_error(&["invalid UTF-8"], &["not JSON"]),
        reply(200, &[("content-type", "application/json")], invalid_utf8),
    ));
    cases.push(Case::new(
        "JSON nested 100 000 levels (lists)",
        content_error(&["did not return JSON"], &["not JSON"]),
        json_reply(200, &deep_json(100_000)),
    ));
    cases.push(Case::new(
        "JSON nested 100 000 levels (objects)",
        content_error(&["did not return JSON"], &["not JSON"]),
        json_reply(200, &deep_objects(100_000)),
    ));
    cases.push(Case::new(
        "number 1e400",
        content_error(&["did not return JSON"], &["not JSON"]),
        json_reply(
            200,
            &format!(
                r#"{{"value": {}, "access_token": "{HOSTILE_TOKEN}", "expires_in": 1e400}}"#,
                if identity { "1e400" } else { "\"x\"" }
            ),
        ),
    ));
    cases.push(Case::new(
        "number 18446744073709551616",
        content_error(&["a number, not a string"], &["expires_in", "positive whole"]),
        json_reply(
            200,
            &format!(
                r#"{{"value": 18446744073709551616, "access_token": "{HOSTILE_TOKEN}", "expires_in": 18446744073709551616}}"#
            ),
        ),
    ));
    cases.push(Case::new(
        "duplicate keys",
        content_error(&["more than once", "value"], &["more than once", "access_token"]),
        json_reply(
            200,
            &if identity {
                format!(r#"{{"value": "attacker-chosen-assertion", "value": "{JWT}"}}"#)
            } else {
                format!(
                    r#"{{"access_token": "sk-ant-oat01-decoy", "access_token": "{HOSTILE_TOKEN}", "expires_in": 3600}}"#
                )
            },
        ),
    ));
    cases.push(Case::new(
        "duplicate keys, one escaped",
        content_error(&["more than once", "value"], &["more than once", "access_token"]),
        json_reply(
            200,
            &if identity {
                format!(r#"{{"value": "{JWT}", "v\u0061lue": "attacker-chosen-assertion"}}"#)
            } else {
                format!(
                    r#"{{"access_token": "{HOSTILE_TOKEN}", "expires_in": 3600, "access_tok\u0065n": "sk-ant-oat01-decoy"}}"#
                )
            },
        ),
    ));
    cases.push(Case::new(
        "wrong type: token field a number",
        content_error(
            &["a number, not a string"],
            &["access_token", "not a string"],
        ),
        json_reply(
            200,
            r#"{"value": 12345, "access_token": 12345, "expires_in": 3600}"#,
        ),
    ));
    cases.push(Case::new(
        "wrong type: token field an object",
        content_error(&["an object, not a string"], &["access_token", "not a string"]),
        json_reply(
            200,
            &format!(
                r#"{{"value": {{"value": "{JWT}"}}, "access_token": {{"token": "{HOSTILE_TOKEN}"}}, "expires_in": 3600}}"#
            ),
        ),
    ));
    cases.push(Case::new(
        "wrong type: token field null",
        content_error(&["null, not a string"], &["access_token", "not a string"]),
        json_reply(
            200,
            r#"{"value": null, "access_token": null, "expires_in": 3600}"#,
        ),
    ));
    cases.push(Case::new(
        "JSON list",
        content_error(&["not an object"], &["not a JSON object"]),
        json_reply(
            200,
            &format!(r#"[{{"value": "{JWT}", "access_token": "{HOSTILE_TOKEN}"}}]"#),
        ),
    ));
    cases.push(Case::new(
        "JSON string",
        content_error(&["not an object"], &["not a JSON object"]),
        json_reply(200, &format!("\"{HOSTILE_TOKEN}\"")),
    ));
    cases.push(Case::new(
        "empty body",
        content_error(&["did not return JSON"], &["not JSON"]),
        reply(200, &[("content-type", "application/json")], Vec::new()),
    ));
    cases.push(Case::new(
        "HTML page with 200",
        content_error(&["did not return JSON"], &["not JSON"]),
        reply(
            200,
            &[("content-type", "text/html")],
            "<html><body><h1>Sign in</h1><form>…</form></body></html>",
        ),
    ));
    cases.push(Case::new(
        "HTML error page with 502",
        status_error(502, &["Bad Gateway"]),
        reply(
            502,
            &[("content-type", "text/html")],
            "<html><head><title>502 Bad Gateway</title></head><body><center>nginx</center></body></html>",
        ),
    ));
    for status in [500, 503, 504] {
        cases.push(Case::new(
            format!("{status} with a JSON error"),
            status_error(status, &[]),
            json_reply(
                status,
                r#"{"error": "server_error", "error_description": "try again later"}"#,
            ),
        ));
    }
    // A 5xx that echoes the request back: the identity URL's header secret,
    // the token endpoint's assertion, both redacted.
    cases.push(Case::new(
        "500 echoing the request",
        status_error(500, &["[redacted]"]),
        Arc::new(|stream, request| {
            let echo = format!(
                "failed: {} {} authorization={} body={}",
                request.method,
                request.path,
                request.header("authorization").unwrap_or("-"),
                String::from_utf8_lossy(&request.body)
            );
            respond(
                stream,
                500,
                &[("content-type", "text/plain")],
                echo.as_bytes(),
            );
        }),
    ));

    // Cases of the token endpoint's own fields.
    if !identity {
        for (name, body, words) in [
            (
                "expires_in u64::MAX (accepted, saturates)",
                json!({"access_token": HOSTILE_TOKEN, "expires_in": u64::MAX}),
                &[][..],
            ),
            (
                "expires_in negative",
                json!({"access_token": HOSTILE_TOKEN, "expires_in": -5}),
                &["expires_in"][..],
            ),
            (
                "expires_in zero",
                json!({"access_token": HOSTILE_TOKEN, "expires_in": 0}),
                &["expires_in"][..],
            ),
            (
                "expires_in fractional",
                json!({"access_token": HOSTILE_TOKEN, "expires_in": 3600.5}),
                &["expires_in"][..],
            ),
            (
                "expires_in a string",
                json!({"access_token": HOSTILE_TOKEN, "expires_in": "3600"}),
                &["expires_in", "not a number"][..],
            ),
            (
                "expires_in missing",
                json!({"access_token": HOSTILE_TOKEN}),
                &["expires_in", "missing"][..],
            ),
            (
                "access_token missing",
                json!({"expires_in": 3600}),
                &["access_token", "missing"][..],
            ),
            (
                "access_token empty",
                json!({"access_token": "  ", "expires_in": 3600}),
                &["access_token", "empty"][..],
            ),
            (
                "token_type echoes the access token",
                json!({"access_token": HOSTILE_TOKEN, "expires_in": 3600, "token_type": HOSTILE_TOKEN}),
                &["token_type", "[redacted]"][..],
            ),
            (
                "token_type a number",
                json!({"access_token": HOSTILE_TOKEN, "expires_in": 3600, "token_type": 1}),
                &["token_type", "not a string"][..],
            ),
        ] {
            // The issuer may grant a token for as long as it likes: the
            // expiry saturates, nothing overflows or traps.
            let expect = if words.is_empty() {
                Expect::Token
            } else {
                Expect::Malformed(texts(words))
            };
            cases.push(Case::new(name, expect, json_reply(200, &body.to_string())));
        }
    } else {
        cases.push(Case::new(
            "response field missing",
            Expect::Source(texts(&["no field `value`"])),
            json_reply(200, &json!({"token": JWT}).to_string()),
        ));
        cases.push(Case::new(
            "response field empty",
            Expect::Source(texts(&["`value`", "empty"])),
            json_reply(200, &json!({"value": " "}).to_string()),
        ));
        cases.push(Case::new(
            "assertion over 16 KiB",
            Expect::Source(texts(&["16384"])),
            json_reply(200, &json!({"value": "a".repeat(20_000)}).to_string()),
        ));
    }
    cases
}

/// The JSON text of a url-source config for `identity`, fetching with a
/// header secret.
fn identity_config(identity: &str, tokens: &str) -> String {
    config(
        tokens,
        json!({
            "url": format!("{identity}/oidc/token?audience=anthropic"),
            "headers": {"Authorization": format!("bearer {HEADER_SECRET}")},
            "response_field": "value",
        }),
    )
}

fn describe(result: &Result<AccessToken, Error>) -> String {
    match result {
        Ok(_) => "token".into(),
        Err(error) => {
            let kind = match error {
                Error::InvalidConfig { .. } => "InvalidConfig",
                Error::Denied { .. } => "Denied",
                Error::SourceFailed { .. } => "SourceFailed",
                Error::ExchangeFailed(_) => "ExchangeFailed",
                Error::ExchangeRejected(_) => "ExchangeRejected",
                Error::MalformedResponse(_) => "MalformedResponse",
                Error::Component(_) => "Component",
                Error::Load(_) => "Load",
            };
            // The message alone: the source's prefix is the same in every row.
            let mut text = match error {
                Error::SourceFailed { message, .. } => message.clone(),
                other => other.to_string(),
            };
            // Keep the table readable: the start of the message.
            if let Some((cut, _)) = text.char_indices().nth(120) {
                text.truncate(cut);
                text.push('…');
            }
            format!("{kind}: {text}")
        }
    }
}

/// Checks `result` against `expect`; `None` when it matches, else why not.
fn mismatch(result: &Result<AccessToken, Error>, expect: &Expect) -> Option<String> {
    let contains_all = |text: &str, words: &[String]| {
        words
            .iter()
            .find(|w| !text.contains(w.as_str()))
            .map(|w| format!("the message lacks {w:?}"))
    };
    match (result, expect) {
        (Ok(_), Expect::Token) => None,
        (
            Err(
                error @ Error::SourceFailed {
                    kind: SourceKind::Url,
                    ..
                },
            ),
            Expect::Source(words),
        ) => contains_all(&error.to_string(), words),
        (Err(error @ Error::ExchangeFailed(_)), Expect::Failed(words))
        | (Err(error @ Error::MalformedResponse(_)), Expect::Malformed(words)) => {
            contains_all(&error.to_string(), words)
        }
        (Err(error @ Error::ExchangeRejected(rejection)), Expect::Rejected(status, words)) => {
            if rejection.status == *status {
                contains_all(&error.to_string(), words)
            } else {
                Some(format!("status {} instead of {status}", rejection.status))
            }
        }
        (other, _) => Some(format!("unexpected outcome {}", describe(other))),
    }
}

fn run_table(target: Target) {
    let base = provider(anthropic_wif_host::Policy::default());
    // A working endpoint of the same kind on another port, the target of
    // the cross-origin redirects.
    let redirect_target = Arc::new(match target {
        Target::Identity => {
            LoopbackServer::start(|_| Reply::json(200, &json!({"value": JWT}))).unwrap()
        }
        Target::Token => token_server(),
    });
    // The healthy other half of the flow.
    let healthy_tokens = token_server();
    let files = Files::new();
    let token_file = files.write("token", JWT);
    // One hostile server for the whole table; each case sets its behaviour.
    let behaviour: Arc<Mutex<Option<Behaviour>>> = Arc::new(Mutex::new(None));
    let hostile = {
        let behaviour = behaviour.clone();
        RawServer::start(move |stream, request| {
            let current = behaviour.lock().unwrap().clone();
            if let Some(current) = current {
                current(stream, request);
            }
        })
    };
    let config = match target {
        Target::Identity => identity_config(&hostile.url(), &healthy_tokens.url()),
        Target::Token => config(&hostile.url(), json!({ "file": token_file })),
    };
    let mut origins = vec![
        hostile.url(),
        redirect_target.url(),
        format!("http://localhost:{}", redirect_target.port()),
    ];
    if target == Target::Identity {
        origins.push(healthy_tokens.url());
    }

    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for case in cases(target, &redirect_target, hostile.port()) {
        *behaviour.lock().unwrap() = Some(case.behaviour.clone());
        let before_target = case.untouched.as_ref().map_or(0, |s| s.requests().len());
        let before_hostile = hostile.requests().len();
        let before_tokens = exchanges(&healthy_tokens).len();
        // A fresh provider (no compilation) per case: nothing cached.
        let provider = base.with_policy(policy(&format!(
            "[files]\nallow = [{}]\n[http]\nallow_origins = {}\ntimeout_secs = {}\n",
            q(token_file.display().to_string()),
            q_list(&origins),
            case.timeout_secs
        )));

        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| provider.get_token(&config)));
        let Ok(result) = result else {
            failures.push(format!("{}: the host panicked", case.name));
            rows.push((case.name, "FAIL panic".to_string()));
            continue;
        };

        let mut problems = Vec::new();
        if let Some(why) = mismatch(&result, &case.expect) {
            problems.push(format!("expected {:?}: {why}", case.expect));
        }
        if let Err(error) = &result {
            let leaks = leaked(
                error,
                &[JWT, HOSTILE_TOKEN, HEADER_SECRET, "sk-ant-oat01-demo"],
            );
            if !leaks.is_empty() {
                problems.push(format!("secrets in the error: {leaks:?}: {error:?}"));
            }
        }
        if let Some(untouched) = &case.untouched
            && untouched.requests().len() != before_target
        {
            problems.push("the redirect target was contacted".into());
        }
        let hostile_requests = &hostile.requests()[before_hostile..];
        if case.same_origin_redirect
            && hostile_requests
                .iter()
                .any(|r| r.path.starts_with("/redirected"))
        {
            problems.push("the same-origin redirect was followed".into());
        }
        if hostile_requests.len() != 1 {
            problems.push(format!(
                "the hostile server got {} requests, not 1",
                hostile_requests.len()
            ));
        }
        if target == Target::Identity && result.is_err() {
            let exchanged = exchanges(&healthy_tokens).len() - before_tokens;
            if exchanged != 0 {
                problems.push("an exchange followed a failed identity fetch".into());
            }
        }
        let verdict = if problems.is_empty() { "ok  " } else { "FAIL" };
        if !problems.is_empty() {
            failures.push(format!("{}: {}", case.name, problems.join("; ")));
        }
        rows.push((case.name, format!("{verdict} {}", describe(&result))));
    }

    let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    let mut table = format!(
        "\n{target:?} endpoint: {} cases (case → outcome)\n",
        rows.len()
    );
    for (name, outcome) in &rows {
        table.push_str(&format!("  {name:width$}  {outcome}\n"));
    }
    println!("{table}");
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

#[test]
fn hostile_identity_url() {
    run_table(Target::Identity);
}

#[test]
fn hostile_token_endpoint() {
    run_table(Target::Token);
}

#[test]
fn the_component_keeps_working_after_the_hostile_cases() {
    // One provider, one instance, through a series of hostile answers, then
    // a good one: no trap left the instance broken, no state was poisoned.
    let tokens = token_server();
    let hostile = RawServer::start(|stream, _| {
        respond(
            stream,
            200,
            &[("content-type", "application/json")],
            deep_json(100_000).as_bytes(),
        );
    });
    let files = Files::new();
    let path = files.write("token", JWT);
    let provider = provider(file_policy(&[&path], &[&hostile.url(), &tokens.url()]));
    for _ in 0..3 {
        let error = provider
            .get_token(&config(&hostile.url(), json!({ "file": path })))
            .unwrap_err();
        assert!(matches!(error, Error::MalformedResponse(_)), "{error:?}");
    }
    let token = provider
        .get_token(&config(&tokens.url(), json!({ "file": path })))
        .expect("a token after the hostile answers");
    assert_eq!(token.token.expose(), "sk-ant-oat01-demo-1");
}

#[test]
fn reset_on_close_sends_a_reset() {
    // The helper behind "connection reset mid-body" really resets.
    let server = RawServer::start(|stream, _| {
        let _ = std::io::Write::write_all(stream, b"partial");
        let _ = std::io::Write::flush(stream);
        std::thread::sleep(Duration::from_millis(50));
        reset_on_close(stream);
    });
    let mut client = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    std::io::Write::write_all(&mut client, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    let error = loop {
        match std::io::Read::read(&mut client, &mut buf) {
            Ok(0) => panic!("an orderly close, not a reset"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => break e,
        }
    };
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset, "{error}");
}
