//! A SOCKS5 proxy on 127.0.0.1 (RFC 1928 `CONNECT`, with no
//! authentication or username/password per RFC 1929) that records the
//! destination each client asked for.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// What the proxy was asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocksSeen {
    /// The destination as asked: `name:port` (SOCKS5 domain) or `ip:port`.
    pub destination: String,
    /// The username and password the client gave, if it authenticated.
    pub credentials: Option<(String, String)>,
}

/// A SOCKS5 proxy that connects to IP addresses and to the names in its
/// `hosts` (only it resolves them).
pub struct SocksProxy {
    port: u16,
    seen: Arc<Mutex<Vec<SocksSeen>>>,
}

impl SocksProxy {
    /// Starts a proxy resolving `hosts`, requiring `credentials` (user,
    /// password) when set and no authentication otherwise.
    pub fn start(hosts: HashMap<String, IpAddr>, credentials: Option<(&str, &str)>) -> SocksProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let credentials = credentials.map(|(u, p)| (u.to_string(), p.to_string()));
        {
            let seen = seen.clone();
            std::thread::spawn(move || {
                for client in listener.incoming().flatten() {
                    let (hosts, credentials, seen) =
                        (hosts.clone(), credentials.clone(), seen.clone());
                    std::thread::spawn(move || serve(client, &hosts, credentials.as_ref(), &seen));
                }
            });
        }
        SocksProxy { port, seen }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The requests seen.
    pub fn seen(&self) -> Vec<SocksSeen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(
    mut client: TcpStream,
    hosts: &HashMap<String, IpAddr>,
    credentials: Option<&(String, String)>,
    seen: &Mutex<Vec<SocksSeen>>,
) -> Option<()> {
    // Greeting: version, methods. 0 = no authentication, 2 = username/password.
    let [version, count] = read_array::<2>(&mut client)?;
    let methods = read_vec(&mut client, count.into())?;
    let method = if credentials.is_some() { 2 } else { 0 };
    if version != 5 || !methods.contains(&method) {
        let _ = client.write_all(&[5, 0xff]);
        return None;
    }
    client.write_all(&[5, method]).ok()?;
    let given = match credentials {
        None => None,
        Some((user, password)) => {
            // RFC 1929: version 1, username, password; status 0 = success.
            let [_, user_len] = read_array::<2>(&mut client)?;
            let given_user = read_text(&mut client, user_len.into())?;
            let [password_len] = read_array::<1>(&mut client)?;
            let given_password = read_text(&mut client, password_len.into())?;
            let accepted = (&given_user, &given_password) == (user, password);
            client.write_all(&[1, u8::from(!accepted)]).ok()?;
            if !accepted {
                return None;
            }
            Some((given_user, given_password))
        }
    };
    // Request: version, CONNECT (1), reserved, address type, address, port.
    let [_, command, _, address_type] = read_array::<4>(&mut client)?;
    let host = match address_type {
        1 => Ipv4Addr::from(read_array::<4>(&mut client)?).to_string(),
        3 => {
            let [len] = read_array::<1>(&mut client)?;
            read_text(&mut client, len.into())?
        }
        4 => Ipv6Addr::from(read_array::<16>(&mut client)?).to_string(),
        _ => return None,
    };
    let port = u16::from_be_bytes(read_array::<2>(&mut client)?);
    seen.lock().unwrap().push(SocksSeen {
        destination: format!("{host}:{port}"),
        credentials: given,
    });
    let address = host.parse().ok().or_else(|| hosts.get(&host).copied());
    let upstream = address
        .filter(|_| command == 1)
        .and_then(|ip| TcpStream::connect(SocketAddr::new(ip, port)).ok());
    // Reply: version, status (0 = succeeded, 4 = host unreachable), reserved,
    // bound address 0.0.0.0:0.
    let status = if upstream.is_some() { 0 } else { 4 };
    client
        .write_all(&[5, status, 0, 1, 0, 0, 0, 0, 0, 0])
        .ok()?;
    relay(client, upstream?);
    Some(())
}

/// Copies bytes both ways until either side closes.
fn relay(client: TcpStream, upstream: TcpStream) {
    let (mut client_read, mut client_write) = (client.try_clone().unwrap(), client);
    let (mut up_read, mut up_write) = (upstream.try_clone().unwrap(), upstream);
    let forward = std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_read, &mut up_write);
        let _ = up_write.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut up_read, &mut client_write);
    let _ = client_write.shutdown(Shutdown::Both);
    let _ = forward.join();
}

fn read_array<const N: usize>(stream: &mut TcpStream) -> Option<[u8; N]> {
    let mut bytes = [0; N];
    stream.read_exact(&mut bytes).ok()?;
    Some(bytes)
}

fn read_vec(stream: &mut TcpStream, len: usize) -> Option<Vec<u8>> {
    let mut bytes = vec![0; len];
    stream.read_exact(&mut bytes).ok()?;
    Some(bytes)
}

fn read_text(stream: &mut TcpStream, len: usize) -> Option<String> {
    String::from_utf8(read_vec(stream, len)?).ok()
}
