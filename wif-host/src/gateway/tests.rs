use super::bridge::Kept;
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
fn the_replay_copy_is_kept_up_to_the_cap_only() {
    let mut kept = Kept::default();
    kept.push(b"bo");
    kept.push(b"dy");
    assert_eq!(kept.take().as_deref(), Some(&b"body"[..]));
    let mut big = Kept::default();
    big.push(&vec![7u8; REPLAY_CAP_BYTES]);
    assert!(big.is_whole(), "a body of the cap is kept");
    big.push(b"x");
    assert!(big.take().is_none(), "a body over the cap is not");
    let mut cut = Kept::default();
    cut.push(b"part");
    cut.spoil();
    assert!(
        cut.take().is_none(),
        "a body that ended early is not replayed"
    );
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

mod client_keys {
    use hyper::header::{HeaderMap, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn a_generated_key_is_long_random_and_never_shown() {
        let key = ClientKey::generate().unwrap();
        let other = ClientKey::generate().unwrap();
        assert_ne!(key.expose(), other.expose());
        let text = key.expose();
        assert!(text.starts_with(client_key::KEY_PREFIX), "{text}");
        // 32 bytes in base64url without padding: 43 characters.
        assert_eq!(text.len(), client_key::KEY_PREFIX.len() + 43);
        let shown = format!("{key:?} {key:#?}");
        assert!(
            !shown.contains(&text[client_key::KEY_PREFIX.len()..]),
            "{shown}"
        );
    }

    #[test]
    fn the_key_is_admitted_as_an_api_key_or_a_bearer_token_only() {
        let key = ClientKey::generate().unwrap();
        let text = key.expose().to_string();
        assert!(key.admits(&headers(&[("x-api-key", &text)])));
        assert!(key.admits(&headers(&[("authorization", &format!("Bearer {text}"))])));
        assert!(key.admits(&headers(&[("authorization", &format!("bearer {text}"))])));
        assert!(key.admits(&headers(&[("x-api-key", "wrong"), ("x-api-key", &text)])));
        for refused in [
            headers(&[]),
            headers(&[("x-api-key", "wrong")]),
            headers(&[("x-api-key", &text[..text.len() - 1])]),
            headers(&[("x-api-key", &format!("{text}x"))]),
            headers(&[("authorization", &text)]),
            headers(&[("authorization", &format!("Basic {text}"))]),
            headers(&[("x-other", &text)]),
        ] {
            assert!(!key.admits(&refused), "{refused:?}");
        }
    }
}

#[cfg(unix)]
mod unix_socket {
    use std::os::unix::fs::PermissionsExt;
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
        assert_eq!(
            std::fs::symlink_metadata(&path)
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
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
}
