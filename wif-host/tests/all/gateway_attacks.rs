//! Attacks on `wif-host gateway`, each reproduced against the real binary
//! and refused before anything goes upstream: web pages (a no-cors POST,
//! a CORS preflight), DNS rebinding, request smuggling and path tricks,
//! control characters, slow and short bodies, connection floods, other
//! local users, and unsafe key files.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::gateway_cli::{
    Api, Gateway, PATIENCE, StandIn, exchange_raw, free_port, gateway_command, read_sized, send,
};

/// The status line's code of a raw answer.
fn status_of(answer: &str) -> &str {
    answer.split(' ').nth(1).unwrap_or("none")
}

#[test]
fn a_no_cors_post_from_a_web_page_is_403_even_with_the_key() {
    let api = StandIn::start(Api::Echo);
    let gateway = Gateway::start(&api.url);
    // What `fetch(url, {method: "POST", mode: "no-cors", body})` sends from
    // https://evil.example: a "simple" request the browser does not
    // preflight.
    let page = format!(
        "POST /v1/messages HTTP/1.1\r\n{}content-type: text/plain;charset=UTF-8\r\n\
         origin: https://evil.example\r\nsec-fetch-site: cross-site\r\nsec-fetch-mode: no-cors\r\n",
        gateway.host()
    );
    let (head, mut reader) = send(&gateway, &page, r#"{"model":"m"}"#);
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    assert!(read_sized(&head, &mut reader).contains("permission_error"));
    // Each header alone is enough, and the key does not help.
    for marker in [
        "origin: https://evil.example\r\n",
        "origin: null\r\n",
        "sec-fetch-site: cross-site\r\n",
        "sec-fetch-site: same-site\r\n",
    ] {
        let head = format!(
            "POST /v1/messages HTTP/1.1\r\n{}{}{marker}",
            gateway.host(),
            gateway.api_key()
        );
        let (head, _) = send(&gateway, &head, "{}");
        assert!(head.starts_with("HTTP/1.1 403"), "{marker}: {head}");
        assert!(
            !head.to_ascii_lowercase().contains("access-control-"),
            "{head}"
        );
    }
    assert!(api.arrived().is_empty(), "{:?}", api.arrived());
}

#[test]
fn a_rebound_host_is_421_even_with_the_key() {
    let api = StandIn::start(Api::Echo);
    let gateway = Gateway::start(&api.url);
    let port = gateway.address.rsplit(':').next().unwrap().to_string();
    for host in [
        format!("rebind.evil.example:{port}"),
        "127.0.0.1".to_string(),
        format!("127.0.0.1:{}", port.parse::<u16>().unwrap() ^ 1),
        format!("localhost.:{port}"),
    ] {
        let head = format!(
            "GET /v1/models HTTP/1.1\r\nhost: {host}\r\n{}",
            gateway.api_key()
        );
        let (head, _) = send(&gateway, &head, "");
        assert!(head.starts_with("HTTP/1.1 421"), "{host}: {head}");
    }
    // A request with no Host at all (HTTP/1.0) is refused too.
    let answer = exchange_raw(
        &gateway,
        format!("GET /v1/models HTTP/1.0\r\n{}\r\n", gateway.api_key()).as_bytes(),
    );
    assert_eq!(status_of(&answer), "421", "{answer}");
    for host in [
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        format!("127.0.0.1:{port}"),
    ] {
        let head = format!(
            "GET /v1/models HTTP/1.1\r\nhost: {host}\r\n{}",
            gateway.api_key()
        );
        let (head, _) = send(&gateway, &head, "");
        assert!(head.starts_with("HTTP/1.1 200"), "{host}: {head}");
    }
    assert_eq!(api.arrived().len(), 3, "{:?}", api.arrived());
}

#[test]
fn a_preflight_is_405_without_cors_headers() {
    let api = StandIn::start(Api::Echo);
    let gateway = Gateway::start(&api.url);
    for extra in [
        String::new(),
        "origin: https://evil.example\r\naccess-control-request-method: POST\r\n\
         access-control-request-headers: x-api-key\r\n"
            .to_string(),
    ] {
        let head = format!("OPTIONS /v1/messages HTTP/1.1\r\n{}{extra}", gateway.host());
        let (head, _) = send(&gateway, &head, "");
        assert!(head.starts_with("HTTP/1.1 405"), "{head}");
        assert!(
            !head.to_ascii_lowercase().contains("access-control-"),
            "{head}"
        );
    }
    assert!(api.arrived().is_empty());
}

#[test]
fn connect_and_other_methods_are_405_and_never_forwarded() {
    let api = StandIn::start(Api::Echo);
    let gateway = Gateway::start(&api.url);
    let upstream = api.url.trim_start_matches("http://");
    let answer = exchange_raw(
        &gateway,
        format!(
            "CONNECT {upstream} HTTP/1.1\r\nhost: {upstream}\r\n{}connection: close\r\n\r\n",
            gateway.api_key()
        )
        .as_bytes(),
    );
    assert_eq!(status_of(&answer), "405", "{answer}");
    for method in ["PUT", "PATCH", "TRACE", "HEAD"] {
        let head = format!(
            "{method} /v1/messages HTTP/1.1\r\n{}{}",
            gateway.host(),
            gateway.api_key()
        );
        let (head, _) = send(&gateway, &head, "");
        assert!(head.starts_with("HTTP/1.1 405"), "{method}: {head}");
    }
    assert!(api.arrived().is_empty(), "{:?}", api.arrived());
}

#[test]
fn dot_segments_encoded_separators_and_backslashes_are_400() {
    let api = StandIn::start(Api::Echo);
    let gateway = Gateway::start(&api.url);
    for target in [
        "/v1/../admin",
        "/v1/./models",
        "/v1/%2e%2e/admin",
        "/v1/%2E%2e/admin",
        "/v1/.%2E/admin",
        "/v1/files/a%2fb",
        "/v1/files/a%2Fb",
        "/v1/files/a%5cb",
        "/v1/files/a\\b",
        "/v1//models",
        "//v1/models",
        "http://127.0.0.1/v1/models",
    ] {
        let answer = exchange_raw(
            &gateway,
            format!(
                "GET {target} HTTP/1.1\r\n{}{}connection: close\r\n\r\n",
                gateway.host(),
                gateway.api_key()
            )
            .as_bytes(),
        );
        assert_eq!(status_of(&answer), "400", "{target}: {answer}");
    }
    assert!(api.arrived().is_empty(), "{:?}", api.arrived());
}

#[test]
fn control_characters_in_the_request_line_are_refused_and_never_logged_raw() {
    let api = StandIn::start(Api::Echo);
    let gateway = Gateway::start(&api.url);
    for line in [
        "GE\x1bT /v1/models HTTP/1.1",
        "GET\r /v1/models HTTP/1.1",
        "G\x1b[31mET /v1/models HTTP/1.1",
        "GET /v1/mo\x1bdels HTTP/1.1",
        "GET /v1/mo\rdels HTTP/1.1",
    ] {
        let answer = exchange_raw(
            &gateway,
            format!(
                "{line}\r\n{}{}connection: close\r\n\r\n",
                gateway.host(),
                gateway.api_key()
            )
            .as_bytes(),
        );
        let code = status_of(&answer);
        assert!(code == "400" || code == "none", "{line:?}: {answer}");
    }
    // The gateway still serves.
    let head = format!(
        "GET /v1/models HTTP/1.1\r\n{}{}",
        gateway.host(),
        gateway.api_key()
    );
    let (head, _) = send(&gateway, &head, "");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(api.arrived().len(), 1, "{:?}", api.arrived());
    let log = gateway.log();
    assert!(!log.contains('\x1b'), "{log:?}");
    assert!(
        !log.contains("mo\rdels") && !log.contains("GET\r"),
        "{log:?}"
    );
}

/// User plus system CPU time of process `pid`, in clock ticks
/// (`/proc/PID/stat` fields 14 and 15).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    // Fields 14 and 15 of the line are 12 and 13 after the name.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn a_body_shorter_than_its_length_ends_its_request_without_spinning() {
    let api = StandIn::start(Api::Echo);
    let gateway = Gateway::start(&api.url);
    let models = format!(
        "GET /v1/models HTTP/1.1\r\n{}{}",
        gateway.host(),
        gateway.api_key()
    );
    // One whole request first, so that the first token exchange and the
    // component's instance (seconds of CPU in a debug build on a busy
    // machine) are behind us before the CPU time is watched.
    let (head, _) = send(&gateway, &models, "");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut streams = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(&gateway.address).unwrap();
        write!(
            stream,
            "POST /v1/messages HTTP/1.1\r\n{}{}content-length: 100000\r\n\r\n0123456789",
            gateway.host(),
            gateway.api_key()
        )
        .unwrap();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        streams.push(stream);
    }
    // Let the gateway notice, then watch its CPU time.
    std::thread::sleep(Duration::from_millis(500));
    let before = cpu_ticks(gateway.child.id());
    std::thread::sleep(Duration::from_secs(3));
    let used = cpu_ticks(gateway.child.id()) - before;
    // A spinning thread would use ~300 ticks (100 a second); an idle
    // gateway uses about none. Generous for a busy machine.
    assert!(used < 60, "the gateway used {used} ticks in 3 s while idle");
    for mut stream in streams {
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
    }
    let (head, _) = send(&gateway, &models, "");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}

/// Raises this process's open-file limit to its hard limit.
fn raise_open_files() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    setrlimit(Resource::Nofile, limit).expect("setrlimit(RLIMIT_NOFILE)");
    limit.current.unwrap_or(u64::MAX)
}

/// The gateway's connection cap (`MAX_CONNECTIONS` in the gateway).
const MAX_CONNECTIONS: usize = 1024;

#[test]
fn beyond_the_connection_cap_a_new_connection_gets_503_and_the_gateway_keeps_serving() {
    if raise_open_files() < 2 * MAX_CONNECTIONS as u64 + 100 {
        eprintln!("skipped: the open-file limit is too low for {MAX_CONNECTIONS} connections");
        return;
    }
    let api = StandIn::start(Api::Echo);
    let gateway = Gateway::start(&api.url);
    let threads_before = threads(gateway.child.id());
    let open: Vec<TcpStream> = (0..MAX_CONNECTIONS)
        .map(|_| TcpStream::connect(&gateway.address).unwrap())
        .collect();
    // The first connections are served (they only have yet to send a
    // request); the one beyond the cap is answered at once and closed.
    let start = Instant::now();
    let answer = loop {
        let answer = exchange_raw(
            &gateway,
            format!(
                "GET /v1/models HTTP/1.1\r\n{}{}connection: close\r\n\r\n",
                gateway.host(),
                gateway.api_key()
            )
            .as_bytes(),
        );
        if status_of(&answer) == "503" || start.elapsed() > PATIENCE {
            break answer;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status_of(&answer), "503", "{answer}");
    assert!(answer.contains("too many connections"), "{answer}");
    let threads_full = threads(gateway.child.id());
    assert!(
        threads_full <= threads_before + 4,
        "threads grew with connections: {threads_before} -> {threads_full}"
    );
    drop(open);
    let start = Instant::now();
    loop {
        let answer = exchange_raw(
            &gateway,
            format!(
                "GET /v1/models HTTP/1.1\r\n{}{}connection: close\r\n\r\n",
                gateway.host(),
                gateway.api_key()
            )
            .as_bytes(),
        );
        if status_of(&answer) == "200" {
            break;
        }
        assert!(start.elapsed() < PATIENCE, "never served again: {answer}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(gateway.log().contains("too many open"), "{}", gateway.log());
}

/// Threads of process `pid`.
fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count()
}

#[cfg(unix)]
#[test]
fn a_unix_socket_is_0600_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let api = StandIn::start(Api::Echo);
    let folder = tempfile::tempdir().unwrap();
    let socket = folder.path().join("wif.sock");
    let gateway = Gateway::spawn(
        &api.url,
        &format!("unix:{}", socket.display()),
        String::new(),
        umask_000,
    );
    let mut stream = crate::gateway_cli::connect_unix(&socket);
    let mode = std::fs::symlink_metadata(&socket)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    write!(
        stream,
        "GET /v1/models HTTP/1.1\r\nhost: localhost\r\n{}connection: close\r\n\r\n",
        gateway.api_key()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // The Host for a Unix socket is localhost.
    let mut stream = crate::gateway_cli::connect_unix(&socket);
    write!(
        stream,
        "GET /v1/models HTTP/1.1\r\nhost: evil.example\r\n{}connection: close\r\n\r\n",
        gateway.api_key()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 421"), "{answer}");
}

/// Runs the command under `umask 000`, through a shell.
fn umask_000(command: &mut Command) {
    let program = command.get_program().to_owned();
    let args: Vec<_> = command.get_args().map(|a| a.to_owned()).collect();
    let mut wrapped = Command::new("/bin/sh");
    wrapped
        .arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(program)
        .args(args);
    wrapped.env_clear();
    for (name, value) in command.get_envs() {
        if let Some(value) = value {
            wrapped.env(name, value);
        }
    }
    std::mem::swap(command, &mut wrapped);
}

#[cfg(target_os = "linux")]
#[test]
fn a_unix_socket_peer_of_another_user_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    if !rustix::process::geteuid().is_root() || !Path::new("/usr/bin/curl").exists() {
        eprintln!("skipped: needs root (to run a client as another user) and curl");
        return;
    }
    let api = StandIn::start(Api::Echo);
    let folder = tempfile::tempdir().unwrap();
    std::fs::set_permissions(folder.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = folder.path().join("wif.sock");
    let gateway = Gateway::spawn(
        &api.url,
        &format!("unix:{}", socket.display()),
        String::new(),
        |_| {},
    );
    drop(crate::gateway_cli::connect_unix(&socket));
    // Opened up by mistake: the peer check still refuses another user.
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = Command::new("/usr/bin/curl")
        .args(["-sS", "--max-time", "60", "--unix-socket"])
        .arg(&socket)
        .args(["-H", &format!("x-api-key: {}", gateway.key)])
        .arg("http://localhost/v1/models")
        .env_clear()
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("serves its own user only"), "{said}");
    assert!(api.arrived().is_empty(), "{:?}", api.arrived());
    assert!(
        gateway
            .log()
            .contains("refused a connection from another user"),
        "{}",
        gateway.log()
    );
}

/// Runs `wif-host gateway` with `--client-key-file PATH` (or without it,
/// with `XDG_RUNTIME_DIR` set to `runtime`) until it fails or says how
/// clients get the key; its exit status (`None` while it runs) and
/// stderr.
fn start_with_key_file(key_file: Option<&Path>, runtime: &Path) -> (Option<i32>, String) {
    let api = StandIn::start(Api::Echo);
    let root = tempfile::tempdir().unwrap();
    let log = root.path().join("stderr.log");
    let listen = format!("127.0.0.1:{}", free_port());
    let mut command = gateway_command(&api.url, &listen, root.path());
    if let Some(path) = key_file {
        command.arg("--client-key-file").arg(path);
    }
    let mut child = command
        .env("XDG_RUNTIME_DIR", runtime)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        let printed = std::fs::read_to_string(&log).unwrap_or_default();
        if printed.contains("export ANTHROPIC_API_KEY") {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "neither failed nor printed the key's path"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    (code, std::fs::read_to_string(&log).unwrap())
}

/// A key file's mode.
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

/// Checks a generated key: `wif-gw-` and 32 random bytes in base64url.
fn check_generated(key: &str) {
    use base64::Engine;
    let encoded = key.trim().strip_prefix("wif-gw-").expect(key);
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .unwrap();
    assert_eq!(bytes.len(), 32, "{key}");
    assert!(bytes.iter().any(|&b| b != bytes[0]), "{key}");
}

#[cfg(unix)]
#[test]
fn a_missing_key_file_is_created_0600_with_a_fresh_key() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("client.key");
    let (code, said) = start_with_key_file(Some(&path), folder.path());
    assert_eq!(code, None, "{said}");
    assert_eq!(mode(&path), 0o600);
    let key = std::fs::read_to_string(&path).unwrap();
    check_generated(&key);
    assert!(said.contains(&*path.to_string_lossy()), "{said}");
    assert!(
        !said.contains(key.trim()),
        "the key itself is never printed: {said}"
    );
    // Kept across starts.
    let (code, said) = start_with_key_file(Some(&path), folder.path());
    assert_eq!(code, None, "{said}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), key);
    // Under umask 000 too.
    let other = folder.path().join("other.key");
    let (code, said) = {
        let folder = tempfile::tempdir().unwrap();
        let api = StandIn::start(Api::Echo);
        let listen = format!("127.0.0.1:{}", free_port());
        let mut command = gateway_command(&api.url, &listen, folder.path());
        command.arg("--client-key-file").arg(&other);
        umask_000(&mut command);
        let mut child = command
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while TcpStream::connect(&listen).is_err() {
            assert!(start.elapsed() < PATIENCE, "never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let output = child.wait_with_output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    assert_ne!(code, Some(0), "{said}");
    assert_eq!(mode(&other), 0o600);
    check_generated(&std::fs::read_to_string(&other).unwrap());
}

#[cfg(unix)]
#[test]
fn without_the_flag_the_key_is_made_in_the_private_runtime_folder_and_the_exports_printed() {
    let runtime = tempfile::tempdir().unwrap();
    let (code, said) = start_with_key_file(None, runtime.path());
    assert_eq!(code, None, "{said}");
    let folder = runtime.path().join("anthropic-wif");
    let path = folder.join("gateway.key");
    assert_eq!(mode(&folder), 0o700);
    assert_eq!(mode(&path), 0o600);
    check_generated(&std::fs::read_to_string(&path).unwrap());
    assert!(
        said.contains("export ANTHROPIC_BASE_URL=http://127.0.0.1:"),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "export ANTHROPIC_API_KEY=\"$(cat '{}')\"",
            path.display()
        )),
        "{said}"
    );
}

#[cfg(unix)]
#[test]
fn a_key_file_open_to_others_a_symlink_or_another_users_file_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let folder = tempfile::tempdir().unwrap();
    let key = "wif-gw-0123456789abcdefghijklmnopqrstuvwxyzABCDEFG\n";

    let readable = folder.path().join("readable.key");
    std::fs::write(&readable, key).unwrap();
    std::fs::set_permissions(&readable, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, said) = start_with_key_file(Some(&readable), folder.path());
    assert_eq!(code, Some(3), "{said}");
    assert!(said.contains(&*readable.to_string_lossy()), "{said}");
    assert!(said.contains("open to other users (mode 0644)"), "{said}");
    assert!(!said.contains("wif-gw-0123"), "{said}");

    let target = folder.path().join("target.key");
    std::fs::write(&target, key).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = folder.path().join("link.key");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let (code, said) = start_with_key_file(Some(&link), folder.path());
    assert_eq!(code, Some(3), "{said}");
    assert!(said.contains(&*link.to_string_lossy()), "{said}");
    assert!(said.contains("is a symlink"), "{said}");

    let dangling = folder.path().join("dangling.key");
    std::os::unix::fs::symlink(folder.path().join("nowhere"), &dangling).unwrap();
    let (code, said) = start_with_key_file(Some(&dangling), folder.path());
    assert_eq!(code, Some(3), "{said}");
    assert!(said.contains("is a symlink"), "{said}");
    assert!(!folder.path().join("nowhere").exists());

    let short = folder.path().join("short.key");
    std::fs::write(&short, "tooshort\n").unwrap();
    std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, said) = start_with_key_file(Some(&short), folder.path());
    assert_eq!(code, Some(3), "{said}");
    assert!(said.contains("shorter than 32 characters"), "{said}");

    let not_a_file = folder.path().join("a-folder");
    std::fs::create_dir(&not_a_file).unwrap();
    let (code, said) = start_with_key_file(Some(&not_a_file), folder.path());
    assert_eq!(code, Some(3), "{said}");
    assert!(said.contains("is not a regular file"), "{said}");

    if rustix::process::geteuid().is_root() {
        let theirs = folder.path().join("theirs.key");
        std::fs::write(&theirs, key).unwrap();
        std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        let (code, said) = start_with_key_file(Some(&theirs), folder.path());
        assert_eq!(code, Some(3), "{said}");
        assert!(said.contains("belongs to uid 65534"), "{said}");
    }
}
