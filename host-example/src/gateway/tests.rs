use std::io::{Cursor, Read, Write};

use super::http1::*;
use super::*;

#[test]
fn only_loopback_and_unix_sockets_are_accepted() {
    assert_eq!(
        Listen::parse("127.0.0.1:8080"),
        Ok(Listen::Tcp("127.0.0.1:8080".parse().unwrap()))
    );
    assert!(Listen::parse("[::1]:0").is_ok());
    assert_eq!(
        Listen::parse("unix:/run/wif.sock"),
        Ok(Listen::Unix("/run/wif.sock".into()))
    );
    for refused in [
        "0.0.0.0:8080",
        "10.1.2.3:80",
        "[::]:80",
        "localhost:80",
        "unix:",
        "8080",
    ] {
        assert!(Listen::parse(refused).is_err(), "{refused}");
    }
    assert!(
        Listen::parse("0.0.0.0:1")
            .unwrap_err()
            .contains("not a loopback")
    );
}

#[test]
fn a_request_head_is_parsed_and_bounded() {
    let mut input = Cursor::new(b"POST /v1/messages?beta=true HTTP/1.1\r\nHost: x\r\nX-Api-Key: k\r\nContent-Length: 2\r\n\r\nhi".to_vec());
    let head = read_head(&mut input).unwrap().unwrap();
    assert_eq!(head.method, "POST");
    assert_eq!(head.target, "/v1/messages?beta=true");
    assert_eq!(head.header("x-api-key"), Some("k"));
    assert_eq!(body_kind(&head).unwrap(), BodyKind::Length(2));
    assert!(read_head(&mut Cursor::new(Vec::new())).unwrap().is_none());
    let huge = format!(
        "GET / HTTP/1.1\r\nX: {}\r\n\r\n",
        "a".repeat(MAX_HEAD_BYTES)
    );
    assert!(read_head(&mut Cursor::new(huge.into_bytes())).is_err());
    for bad in [
        "GET\r\n\r\n",
        "GET / FTP/1\r\n\r\n",
        "GET / HTTP/1.1\r\nno colon\r\n\r\n",
        "GET / HTTP/1.1\r\n",
    ] {
        assert!(
            read_head(&mut Cursor::new(bad.as_bytes().to_vec())).is_err(),
            "{bad:?}"
        );
    }
}

#[test]
fn ambiguous_body_framing_is_refused() {
    let head = |headers: &[(&str, &str)]| Head {
        method: "POST".into(),
        target: "/v1/x".into(),
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    };
    assert_eq!(body_kind(&head(&[])).unwrap(), BodyKind::Empty);
    assert_eq!(
        body_kind(&head(&[("Transfer-Encoding", "chunked")])).unwrap(),
        BodyKind::Chunked
    );
    assert!(
        body_kind(&head(&[
            ("Transfer-Encoding", "chunked"),
            ("Content-Length", "3")
        ]))
        .is_err()
    );
    assert!(body_kind(&head(&[("Content-Length", "3"), ("Content-Length", "4")])).is_err());
    assert!(body_kind(&head(&[("Transfer-Encoding", "gzip")])).is_err());
    assert!(body_kind(&head(&[("Content-Length", "-1")])).is_err());
}

#[test]
fn chunked_bodies_round_trip() {
    let mut encoded = Vec::new();
    let mut writer = ChunkedWriter::new(&mut encoded);
    writer.write_all(b"hello ").unwrap();
    writer.write_all(b"").unwrap();
    writer.write_all(b"world").unwrap();
    writer.finish().unwrap();
    assert_eq!(encoded, b"6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n");
    let mut decoded = String::new();
    ChunkedReader::new(Cursor::new(encoded))
        .read_to_string(&mut decoded)
        .unwrap();
    assert_eq!(decoded, "hello world");
    let mut sink = Vec::new();
    assert!(
        ChunkedReader::new(Cursor::new(b"zz\r\n".to_vec()))
            .read_to_end(&mut sink)
            .is_err()
    );
    assert!(
        ChunkedReader::new(Cursor::new(b"5\r\nab".to_vec()))
            .read_to_end(&mut sink)
            .is_err()
    );
}

#[test]
fn the_tee_keeps_a_copy_up_to_the_cap_only() {
    let mut small: &[u8] = b"body";
    let tee = Tee {
        inner: &mut small,
        copy: Some(Vec::new()),
    };
    assert_eq!(drain_copy(tee).as_deref(), Some(&b"body"[..]));
    let big = vec![7u8; REPLAY_CAP_BYTES + 1];
    let mut reader: &[u8] = &big;
    let tee = Tee {
        inner: &mut reader,
        copy: Some(Vec::new()),
    };
    assert!(drain_copy(tee).is_none());
}

#[test]
fn the_upstream_is_the_base_url_or_the_anthropic_api() {
    assert_eq!(
        Gateway::upstream_of(
            r#"{"workload_identity_federation": {"base_url": "http://127.0.0.1:9"}}"#
        ),
        "http://127.0.0.1:9"
    );
    assert_eq!(
        Gateway::upstream_of(r#"{"workload_identity_federation": {}}"#),
        "https://api.anthropic.com"
    );
}
