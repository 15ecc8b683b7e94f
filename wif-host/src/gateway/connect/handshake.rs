//! The handshakes with a proxy that open a path to the upstream: an HTTP
//! `CONNECT` tunnel (RFC 9110 §9.3.6) with the proxy URL's credentials as
//! `Proxy-Authorization: Basic`, and a SOCKS5 `CONNECT` (RFC 1928) with a
//! user name and password (RFC 1929). Failures are worded as the host's
//! HTTP client words them (see [`super`]).

use std::io;
use std::net::IpAddr;

use anthropic_wif_host::net::proxy::ProxyUrl;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Destination, Stream};

/// The longest answer of a proxy to `CONNECT`, head included.
const MAX_CONNECT_ANSWER_BYTES: usize = 16 * 1024;

/// Opens a tunnel to `destination` through the HTTP proxy at the other end
/// of `stream`, with the proxy's credentials if it has any.
pub(super) async fn tunnel<S: Stream>(
    stream: &mut S,
    proxy: &ProxyUrl,
    destination: &Destination<'_>,
) -> Result<(), ureq::Error> {
    let authority = destination.authority();
    let mut request = format!(
        "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nProxy-Connection: Keep-Alive\r\n"
    );
    if let Some(credentials) = proxy.basic_credentials() {
        request.push_str(&format!("Proxy-Authorization: Basic {credentials}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await?;
    stream.flush().await?;
    // Byte by byte, so that nothing after the answer's head is taken from
    // the tunnel.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_CONNECT_ANSWER_BYTES {
            return Err(ureq::Error::ConnectProxyFailed(
                "proxy server answered with too long a head".into(),
            ));
        }
        match stream.read_u8().await {
            Ok(byte) => head.push(byte),
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(ureq::Error::ConnectProxyFailed(
                    "proxy server did not respond".into(),
                ));
            }
            Err(error) => return Err(ureq::Error::Io(error)),
        }
    }
    let status = std::str::from_utf8(&head)
        .ok()
        .filter(|head| head.starts_with("HTTP/1."))
        .and_then(|head| head.split_whitespace().nth(1))
        .and_then(|status| status.parse::<u16>().ok());
    match status {
        Some(200) => Ok(()),
        Some(status) => Err(ureq::Error::ConnectProxyFailed(format!(
            "proxy server responded {status}/{}",
            hyper::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or_default()
        ))),
        None => Err(ureq::Error::ConnectProxyFailed(
            "proxy server did not respond".into(),
        )),
    }
}

/// A SOCKS5 `CONNECT` (RFC 1928) to `destination` through the proxy at the
/// other end of `stream`, with a user name and password (RFC 1929) when
/// the proxy URL has them. `socks5://` resolves the destination here,
/// `socks5h://` lets the proxy resolve it.
pub(super) async fn socks5(
    stream: &mut TcpStream,
    proxy: &ProxyUrl,
    destination: &Destination<'_>,
) -> Result<(), ureq::Error> {
    let credentials = proxy.credentials();
    let greeting: &[u8] = if credentials.is_some() {
        &[5, 2, 2, 0]
    } else {
        &[5, 1, 0]
    };
    stream.write_all(greeting).await?;
    let mut reply = [0u8; 2];
    stream.read_exact(&mut reply).await?;
    if reply[0] != 5 {
        return Err(socks_failure("the proxy does not speak SOCKS5"));
    }
    match (reply[1], &credentials) {
        (0, _) => {}
        (2, Some((user, password))) => {
            let mut request = vec![1];
            for part in [user, password] {
                let length = u8::try_from(part.len())
                    .map_err(|_| socks_failure("the proxy's user name or password is too long"))?;
                request.push(length);
                request.extend_from_slice(part.as_bytes());
            }
            stream.write_all(&request).await?;
            stream.read_exact(&mut reply).await?;
            if reply[1] != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "the SOCKS5 proxy did not accept its credentials",
                )
                .into());
            }
        }
        _ => return Err(socks_failure("the SOCKS5 proxy accepts no offered method")),
    }
    let mut request = vec![5, 1, 0];
    let ip = match destination.host.parse::<IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) if proxy.scheme() == "socks5" => Some(
            tokio::net::lookup_host((destination.host, destination.port))
                .await
                .map_err(|_| ureq::Error::HostNotFound)?
                .next()
                .ok_or(ureq::Error::HostNotFound)?
                .ip(),
        ),
        Err(_) => None,
    };
    match ip {
        Some(IpAddr::V4(ip)) => {
            request.push(1);
            request.extend_from_slice(&ip.octets());
        }
        Some(IpAddr::V6(ip)) => {
            request.push(4);
            request.extend_from_slice(&ip.octets());
        }
        None => {
            let length = u8::try_from(destination.host.len())
                .map_err(|_| socks_failure("the host name is too long for SOCKS5"))?;
            request.push(3);
            request.push(length);
            request.extend_from_slice(destination.host.as_bytes());
        }
    }
    request.extend_from_slice(&destination.port.to_be_bytes());
    stream.write_all(&request).await?;
    let mut head = [0u8; 4];
    stream.read_exact(&mut head).await?;
    if head[0] != 5 || head[1] != 0 {
        return Err(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            format!(
                "the SOCKS5 proxy refused the connection (reply {})",
                head[1]
            ),
        )
        .into());
    }
    let bound = match head[3] {
        1 => 4,
        4 => 16,
        3 => usize::from(stream.read_u8().await?),
        _ => {
            return Err(socks_failure(
                "the SOCKS5 proxy answered an unknown address type",
            ));
        }
    };
    let mut rest = vec![0u8; bound + 2];
    stream.read_exact(&mut rest).await?;
    Ok(())
}

/// A SOCKS5 exchange that went wrong.
fn socks_failure(what: &'static str) -> ureq::Error {
    ureq::Error::Io(io::Error::new(io::ErrorKind::InvalidData, what))
}
