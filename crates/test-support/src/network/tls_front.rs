//! A TLS front for the plain CONNECT proxy: what an `https://` proxy URL
//! needs. It terminates TLS on 127.0.0.1 and relays the plaintext to the
//! proxy behind it, counting the handshakes it completed.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::{ServerCert, server_config};

/// How long one side's read waits before the relay turns to the other side.
const TICK: Duration = Duration::from_millis(5);

/// A TLS listener on 127.0.0.1 in front of a plain proxy.
pub struct TlsFront {
    port: u16,
    handshakes: Arc<AtomicUsize>,
}

impl TlsFront {
    /// Presents `cert` and relays to `127.0.0.1:backend`.
    pub fn start(cert: ServerCert, backend: u16) -> TlsFront {
        let config = server_config(cert);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let handshakes = Arc::new(AtomicUsize::new(0));
        {
            let handshakes = handshakes.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    let (config, handshakes) = (config.clone(), handshakes.clone());
                    std::thread::spawn(move || relay(stream, config, backend, &handshakes));
                }
            });
        }
        TlsFront { port, handshakes }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The TLS handshakes completed so far.
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }
}

fn relay(
    client: TcpStream,
    config: Arc<rustls::ServerConfig>,
    backend: u16,
    handshakes: &AtomicUsize,
) {
    let mut tls = rustls::StreamOwned::new(rustls::ServerConnection::new(config).unwrap(), client);
    while tls.conn.is_handshaking() {
        if tls.conn.complete_io(&mut tls.sock).is_err() {
            return;
        }
    }
    handshakes.fetch_add(1, Ordering::SeqCst);
    let Ok(mut plain) = TcpStream::connect(("127.0.0.1", backend)) else {
        return;
    };
    for socket in [&tls.sock, &plain] {
        socket.set_read_timeout(Some(TICK)).unwrap();
    }
    let waiting =
        |e: &std::io::Error| matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut);
    let mut buffer = [0u8; 16 * 1024];
    loop {
        match tls.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) if plain.write_all(&buffer[..n]).is_ok() => {}
            Err(e) if waiting(&e) => {}
            _ => break,
        }
        match plain.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) if tls.write_all(&buffer[..n]).is_ok() && tls.flush().is_ok() => {}
            Err(e) if waiting(&e) => {}
            _ => break,
        }
    }
    tls.conn.send_close_notify();
    let _ = tls.conn.complete_io(&mut tls.sock);
}
