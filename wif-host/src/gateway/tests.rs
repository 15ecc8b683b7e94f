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
            .to_string()
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
fn a_request_head_debug_shows_header_names_not_values() {
    let head = Head {
        method: "POST".into(),
        target: "/v1/messages".into(),
        headers: vec![
            ("x-api-key".into(), "sk-ant-api03-client-secret".into()),
            ("authorization".into(), "Bearer client-bearer".into()),
        ],
    };
    let shown = format!("{head:?} {head:#?}");
    assert!(
        shown.contains("x-api-key") && shown.contains("authorization"),
        "{shown}"
    );
    assert!(
        !shown.contains("client-secret") && !shown.contains("client-bearer"),
        "{shown}"
    );
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

#[test]
fn a_base_url_at_the_listen_address_is_a_loop() {
    let tcp = Listen::parse("127.0.0.1:8787").unwrap();
    for looping in [
        "http://127.0.0.1:8787",
        "http://127.0.0.1:8787/",
        "https://127.0.0.1:8787",
        "http://localhost:8787",
        "http://LOCALHOST.:8787",
        "http://api.localhost:8787",
        "http://[::ffff:127.0.0.1]:8787",
        "http://127.1:8787",
    ] {
        let refusal = tcp.refuse_loop(looping).unwrap_err().to_string();
        assert!(refusal.contains(looping), "{refusal}");
        assert!(refusal.contains("127.0.0.1:8787"), "{refusal}");
    }
    for elsewhere in [
        "http://127.0.0.1:8788",
        "http://127.0.0.2:8787",
        "http://[::1]:8787",
        "https://api.anthropic.com",
        "http://example.com:8787",
    ] {
        assert_eq!(tcp.refuse_loop(elsewhere), Ok(()), "{elsewhere}");
    }
    let default_port = Listen::parse("127.0.0.1:80").unwrap();
    assert!(default_port.refuse_loop("http://localhost").is_err());
    assert_eq!(default_port.refuse_loop("https://localhost"), Ok(()));
    let v6 = Listen::parse("[::1]:9000").unwrap();
    assert!(v6.refuse_loop("http://[::1]:9000").is_err());
    assert!(v6.refuse_loop("http://localhost:9000").is_err());
    let unix = Listen::parse("unix:/run/wif.sock").unwrap();
    assert_eq!(unix.refuse_loop("http://localhost:80"), Ok(()));
}

mod unix_socket {
    use std::os::unix::net::{UnixListener, UnixStream};

    use super::*;
    use crate::gateway::listener::ListenError;

    fn listen(path: &std::path::Path) -> Listen {
        Listen::Unix(path.to_path_buf())
    }

    #[test]
    fn a_stale_socket_is_replaced_and_the_new_one_removed_when_dropped() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("wif.sock");
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists(), "the stale socket file stays behind");
        let listener = Listener::bind(&listen(&path)).unwrap();
        UnixStream::connect(&path).unwrap();
        drop(listener);
        assert!(!path.exists());
    }

    #[test]
    fn a_live_socket_or_another_file_is_refused_with_its_path() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("wif.sock");
        let live = UnixListener::bind(&path).unwrap();
        let refusal = Listener::bind(&listen(&path)).err().unwrap();
        assert!(matches!(refusal, ListenError::InUse { .. }), "{refusal}");
        assert!(refusal.to_string().contains(&*path.to_string_lossy()));
        drop(live);

        let file = folder.path().join("not-a-socket");
        std::fs::write(&file, "keep me").unwrap();
        let refusal = Listener::bind(&listen(&file)).err().unwrap();
        assert!(
            matches!(refusal, ListenError::NotASocket { .. }),
            "{refusal}"
        );
        assert!(refusal.to_string().contains(&*file.to_string_lossy()));
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    }

    #[test]
    fn a_socket_replaced_by_another_process_is_left_alone() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("wif.sock");
        let listener = Listener::bind(&listen(&path)).unwrap();
        std::fs::remove_file(&path).unwrap();
        let other = UnixListener::bind(&path).unwrap();
        drop(listener);
        assert!(path.exists());
        UnixStream::connect(&path).unwrap();
        drop(other);
    }

    #[test]
    fn accepting_ends_when_woken() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("wif.sock");
        let listener = Listener::bind(&listen(&path)).unwrap();
        let (wake, woken) = UnixStream::pair().unwrap();
        let _client = UnixStream::connect(&path).unwrap();
        assert!(listener.accept_until(&wake).unwrap().is_some());
        drop(woken);
        assert!(listener.accept_until(&wake).unwrap().is_none());
    }
}

#[test]
fn waiting_for_in_flight_connections_ends_when_the_last_ends() {
    let in_flight = Arc::new(InFlight::default());
    assert_eq!(in_flight.wait_idle(Duration::ZERO), 0);
    let first = in_flight.enter();
    let second = in_flight.enter();
    assert_eq!(in_flight.wait_idle(Duration::ZERO), 2);
    drop(first);
    let ending = std::thread::spawn(move || drop(second));
    assert_eq!(in_flight.wait_idle(Duration::from_secs(600)), 0);
    ending.join().unwrap();
}

#[test]
fn listen_errors_say_whether_a_retry_may_help() {
    assert!(!Listen::parse("0.0.0.0:1").unwrap_err().is_transient());
    let tcp = Listen::parse("127.0.0.1:8787").unwrap();
    assert!(
        !tcp.refuse_loop("http://localhost:8787")
            .unwrap_err()
            .is_transient()
    );
    let bind = |kind| ListenError::Io {
        listen: tcp.clone(),
        source: io::Error::from(kind),
    };
    assert!(bind(io::ErrorKind::AddrInUse).is_transient());
    assert!(!bind(io::ErrorKind::PermissionDenied).is_transient());
    assert!(
        !ListenError::NotASocket {
            path: "/run/wif.sock".into()
        }
        .is_transient()
    );
}

#[test]
fn a_gateway_to_a_non_http_upstream_is_a_permanent_error() {
    let error = GatewayError::Upstream {
        upstream: "ftp://example.com".into(),
    };
    assert!(!error.is_transient());
    assert!(error.to_string().contains("ftp://example.com"), "{error}");
}
