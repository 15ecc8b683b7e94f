//! Loopback TLS infrastructure for the network tests (`wif-host`'s and the
//! shared scenario table's): a test CA made with rcgen, HTTPS servers that
//! answer with the `loopback` handlers, a CONNECT proxy and a SOCKS5 proxy
//! ([`socks`]) that record what they saw, and a TLS front that makes the
//! CONNECT proxy an `https://` one ([`tls_front`]).

mod socks;
mod tls_front;

pub use socks::{SocksProxy, SocksSeen};
pub use tls_front::TlsFront;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anthropic_wif_loopback::{Recorded, Reply};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, date_time_ymd,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate authority made for one test.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A server certificate and its key.
pub struct ServerCert {
    /// The chain: leaf, then the CA.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's key.
    pub key: PrivateKeyDer<'static>,
}

/// How long a server certificate is valid.
pub enum Validity {
    /// From 2020 to 2100.
    Current,
    /// From 2000 to 2001.
    Expired,
}

impl TestCa {
    /// A new CA called `name`.
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2100, 1, 1);
        TestCa {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// Writes the CA certificate to `dir/file` and returns the path.
    pub fn write(&self, dir: &Path, file: &str) -> PathBuf {
        let path = dir.join(file);
        std::fs::write(&path, self.pem()).unwrap();
        path
    }

    /// A server certificate for `names`.
    pub fn server_cert(&self, names: &[&str], validity: Validity) -> ServerCert {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        match validity {
            Validity::Current => {
                params.not_before = date_time_ymd(2020, 1, 1);
                params.not_after = date_time_ymd(2100, 1, 1);
            }
            Validity::Expired => {
                params.not_before = date_time_ymd(2000, 1, 1);
                params.not_after = date_time_ymd(2001, 1, 1);
            }
        }
        let key = KeyPair::generate().unwrap();
        let leaf = params.signed_by(&key, &*self.issuer).unwrap();
        ServerCert {
            chain: vec![leaf.der().clone(), self.issuer.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }
}

type Handler = dyn Fn(&Recorded) -> Reply + Send + Sync;

/// An HTTPS server on 127.0.0.1 that records every request reaching its
/// handler (after a completed handshake).
pub struct HttpsServer {
    port: u16,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl HttpsServer {
    /// Starts a server presenting `cert` and answering with `handler`.
    pub fn start(
        cert: ServerCert,
        handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    ) -> HttpsServer {
        let config = server_config(cert);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        {
            let requests = requests.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    let (config, handler, requests) =
                        (config.clone(), handler.clone(), requests.clone());
                    std::thread::spawn(move || serve_tls(stream, config, &*handler, &requests));
                }
            });
        }
        HttpsServer { port, requests }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The requests that reached the handler.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

/// A rustls server configuration presenting `cert`.
fn server_config(cert: ServerCert) -> Arc<rustls::ServerConfig> {
    Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(cert.chain, cert.key)
        .unwrap(),
    )
}

fn serve_tls(
    stream: TcpStream,
    config: Arc<rustls::ServerConfig>,
    handler: &Handler,
    requests: &Mutex<Vec<Recorded>>,
) {
    let connection = rustls::ServerConnection::new(config).unwrap();
    let mut tls = rustls::StreamOwned::new(connection, stream);
    while tls.conn.is_handshaking() {
        if tls.conn.complete_io(&mut tls.sock).is_err() {
            return;
        }
    }
    let mut reader = BufReader::new(&mut tls);
    let Some((request_line, headers)) = read_head(&mut reader) else {
        return;
    };
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let recorded = Recorded {
        method,
        path,
        headers,
        body,
    };
    requests.lock().unwrap().push(recorded.clone());
    let reply = handler(&recorded);
    let mut head = format!(
        "HTTP/1.1 {} Answer\r\ncontent-length: {}\r\nconnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let _ = tls.write_all(head.as_bytes());
    let _ = tls.write_all(&reply.body);
    let _ = tls.flush();
    tls.conn.send_close_notify();
    let _ = tls.conn.complete_io(&mut tls.sock);
}

/// Reads a request or response head: the first line and the headers (names
/// in lower case).
fn read_head(reader: &mut impl BufRead) -> Option<(String, Vec<(String, String)>)> {
    let mut first = String::new();
    reader.read_line(&mut first).ok()?;
    if first.is_empty() {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    Some((first.trim_end().to_string(), headers))
}

/// What the proxy saw of one CONNECT.
#[derive(Clone, Debug)]
pub struct ConnectSeen {
    /// The request line, e.g. `CONNECT token.corp.test:443 HTTP/1.1`.
    pub request_line: String,
    /// The `Proxy-Authorization` header, if any.
    pub authorization: Option<String>,
}

/// How the proxy answers.
#[derive(Clone)]
pub enum ProxyMode {
    /// Tunnels to the names in `hosts` (resolved to the given address;
    /// only the proxy knows them), requiring `credentials` (`user:pass`)
    /// when set.
    Tunnel {
        /// Name → address the proxy connects to (the port is the
        /// request's).
        hosts: HashMap<String, std::net::IpAddr>,
        /// The `user:password` it requires, if any.
        credentials: Option<String>,
    },
    /// Answers every CONNECT with this status.
    Refuse(u16),
}

/// A CONNECT proxy on 127.0.0.1.
pub struct ConnectProxy {
    port: u16,
    seen: Arc<Mutex<Vec<ConnectSeen>>>,
}

impl ConnectProxy {
    /// Starts a proxy answering as `mode` says.
    pub fn start(mode: ProxyMode) -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        {
            let seen = seen.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    let (mode, seen) = (mode.clone(), seen.clone());
                    std::thread::spawn(move || serve_proxy(stream, &mode, &seen));
                }
            });
        }
        ConnectProxy { port, seen }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The CONNECT requests seen.
    pub fn seen(&self) -> Vec<ConnectSeen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve_proxy(mut client: TcpStream, mode: &ProxyMode, seen: &Mutex<Vec<ConnectSeen>>) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let Some((request_line, headers)) = read_head(&mut reader) else {
        return;
    };
    let authorization = headers
        .iter()
        .find(|(n, _)| n == "proxy-authorization")
        .map(|(_, v)| v.clone());
    seen.lock().unwrap().push(ConnectSeen {
        request_line: request_line.clone(),
        authorization: authorization.clone(),
    });
    let refuse = |client: &mut TcpStream, status: u16| {
        let _ = write!(
            client,
            "HTTP/1.1 {status} Refused\r\nproxy-authenticate: Basic realm=\"test\"\r\ncontent-length: 0\r\n\r\n"
        );
    };
    let (hosts, credentials) = match mode {
        ProxyMode::Refuse(status) => return refuse(&mut client, *status),
        ProxyMode::Tunnel { hosts, credentials } => (hosts, credentials),
    };
    if let Some(credentials) = credentials {
        let expected = format!("Basic {}", base64_encode(credentials.as_bytes()));
        if authorization.as_deref() != Some(expected.as_str()) {
            return refuse(&mut client, 407);
        }
    }
    let mut parts = request_line.split_whitespace();
    let (Some("CONNECT"), Some(target)) = (parts.next(), parts.next()) else {
        return refuse(&mut client, 400);
    };
    let Some((host, port)) = target.rsplit_once(':') else {
        return refuse(&mut client, 400);
    };
    let (Some(ip), Ok(port)) = (hosts.get(host), port.parse::<u16>()) else {
        return refuse(&mut client, 502);
    };
    let Ok(upstream) = TcpStream::connect(SocketAddr::new(*ip, port)) else {
        return refuse(&mut client, 502);
    };
    let _ = write!(client, "HTTP/1.1 200 Connection established\r\n\r\n");
    let buffered = reader.buffer().to_vec();
    let mut up_write = upstream.try_clone().unwrap();
    let _ = up_write.write_all(&buffered);
    let mut up_read = upstream;
    let mut client_write = client.try_clone().unwrap();
    let forward = std::thread::spawn(move || {
        let _ = std::io::copy(&mut reader.into_inner(), &mut up_write);
        let _ = up_write.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut up_read, &mut client_write);
    let _ = client_write.shutdown(Shutdown::Both);
    let _ = forward.join();
}

/// Standard base64, for the expected `Proxy-Authorization`.
pub fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A port on 127.0.0.1 where nothing listens.
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
