//! The HTTP server: hyper's HTTP/1.1 connections on a tokio runtime,
//! at most [`MAX_CONNECTIONS`] at a time (beyond that a new connection
//! gets a 503 and is closed), Unix-socket peers of another user refused,
//! and a graceful stop: no more accepting, idle connections closed, the
//! requests in flight given the grace period.

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Semaphore, watch};

use super::handle::handle;
use super::listener::{Listener, Socket};
use super::vet::Served;
use super::{
    Gateway, GatewayError, HEADER_READ_TIMEOUT, MAX_CONNECTIONS, MAX_HEAD_BYTES, MAX_HEADERS,
};
use crate::sync::Stop;

/// The answer to a connection over the cap.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
content-length: 118\r\nretry-after: 1\r\nconnection: close\r\n\r\n\
{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"wif-host gateway: too many connections; retry\"}}";

/// The answer to a Unix-socket peer of another user.
const OTHER_USER: &[u8] = b"HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\n\
content-length: 116\r\nconnection: close\r\n\r\n\
{\"type\":\"error\",\"error\":{\"type\":\"permission_error\",\"message\":\"wif-host gateway: serves its own user only\"}}";

/// Threads of the runtime's blocking pool at most.
const BLOCKING_THREADS: usize = 16;

/// Pause after a failed accept (such as too many open files), so that the
/// loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `listener` until `stop`, then drops it (which removes the socket
/// file it made); how many connections were still open when `grace`
/// ended.
pub fn run(
    gateway: Arc<Gateway>,
    listener: Listener,
    stop: Stop,
    grace: Duration,
) -> Result<usize, GatewayError> {
    raise_open_file_limit();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        // The blocking pool only asks the provider for a token it does
        // not hold and resolves upstream names; a burst waits in its queue
        // rather than growing threads.
        .max_blocking_threads(BLOCKING_THREADS)
        .thread_name("wif-gateway")
        .enable_io()
        .enable_time()
        .build()
        .map_err(GatewayError::Runtime)?;
    let (stopping, stopped) = watch::channel(false);
    std::thread::Builder::new()
        .name("wif-gateway-stop".into())
        .spawn(move || {
            stop.wait_until_requested();
            let _ = stopping.send(true);
        })
        .map_err(GatewayError::Runtime)?;
    let cut = runtime.block_on(serve(gateway, listener, stopped, grace))?;
    runtime.shutdown_background();
    Ok(cut)
}

/// The accepting socket, in the runtime.
enum Accepting {
    Tcp(tokio::net::TcpListener),
    #[cfg(unix)]
    Unix(tokio::net::UnixListener),
}

async fn serve(
    gateway: Arc<Gateway>,
    listener: Listener,
    mut stopped: watch::Receiver<bool>,
    grace: Duration,
) -> Result<usize, GatewayError> {
    let socket = listener.socket().map_err(GatewayError::Serve)?;
    let (accepting, served) = match socket {
        Socket::Tcp(listener) => {
            let port = listener.local_addr().map_err(GatewayError::Serve)?.port();
            let listener =
                tokio::net::TcpListener::from_std(listener).map_err(GatewayError::Serve)?;
            (Accepting::Tcp(listener), Served::Tcp { port })
        }
        #[cfg(unix)]
        Socket::Unix(listener) => {
            let listener =
                tokio::net::UnixListener::from_std(listener).map_err(GatewayError::Serve)?;
            (Accepting::Unix(listener), Served::Unix)
        }
    };
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            () = stop_requested(&mut stopped) => break,
            accepted = accept(&accepting) => accepted,
        };
        let connection = match accepted {
            Ok(connection) => connection,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(
                limit = MAX_CONNECTIONS,
                "refused a connection: too many open"
            );
            connection.refuse(BUSY);
            continue;
        };
        let gateway = gateway.clone();
        let stopped = stopped.clone();
        tokio::spawn(async move {
            match connection {
                Connection::Tcp(stream) => serve_connection(stream, gateway, served, stopped).await,
                #[cfg(unix)]
                Connection::Unix(stream) => {
                    serve_connection(stream, gateway, served, stopped).await;
                }
            }
            drop(slot);
        });
    }
    drop(accepting);
    drop(listener);
    let all = u32::try_from(MAX_CONNECTIONS).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(grace, slots.acquire_many(all)).await;
    Ok(MAX_CONNECTIONS - slots.available_permits())
}

/// An accepted connection.
enum Connection {
    Tcp(tokio::net::TcpStream),
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
}

impl Connection {
    /// Writes `answer` if the socket takes it at once, and closes.
    fn refuse(self, answer: &[u8]) {
        let _ = match &self {
            Connection::Tcp(stream) => stream.try_write(answer),
            #[cfg(unix)]
            Connection::Unix(stream) => stream.try_write(answer),
        };
    }
}

/// The next connection: a TCP one with `TCP_NODELAY`, a Unix one only
/// from this user (others get a 403 and are closed).
async fn accept(accepting: &Accepting) -> std::io::Result<Connection> {
    loop {
        match accepting {
            Accepting::Tcp(listener) => {
                let (stream, _) = listener.accept().await?;
                let _ = stream.set_nodelay(true);
                return Ok(Connection::Tcp(stream));
            }
            #[cfg(unix)]
            Accepting::Unix(listener) => {
                let (stream, _) = listener.accept().await?;
                match peer_is_this_user(&stream) {
                    Ok(()) => return Ok(Connection::Unix(stream)),
                    Err(uid) => {
                        tracing::warn!(uid, "refused a connection from another user");
                        Connection::Unix(stream).refuse(OTHER_USER);
                    }
                }
            }
        }
    }
}

/// Whether the peer of `stream` runs as this process's user (Linux:
/// `SO_PEERCRED`); the peer's uid when it does not. Elsewhere the socket
/// file's 0600 mode is the check.
#[cfg(unix)]
fn peer_is_this_user(stream: &tokio::net::UnixStream) -> Result<(), u32> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let me = rustix::process::geteuid().as_raw();
        match rustix::net::sockopt::socket_peercred(stream) {
            Ok(peer) if peer.uid.as_raw() == me => Ok(()),
            Ok(peer) => Err(peer.uid.as_raw()),
            Err(_) => Err(u32::MAX),
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = stream;
        Ok(())
    }
}

/// Serves HTTP/1.1 on one connection, keep-alive included, until the
/// client closes it, it fails, or the gateway stops (then the request in
/// flight finishes and the connection closes).
async fn serve_connection<S>(
    stream: S,
    gateway: Arc<Gateway>,
    served: Served,
    mut stopped: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| handle(gateway.clone(), served, request));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS)
        .keep_alive(true);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    let ended = tokio::select! {
        ended = connection.as_mut() => ended,
        () = stop_requested(&mut stopped) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = ended {
        tracing::debug!(%error, "connection ended with an error");
    }
}

/// Returns once a stop is requested (or nobody can request one any more).
async fn stop_requested(stopped: &mut watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// Raises this process's soft limit on open files to its hard limit: each
/// connection takes a descriptor, and its upstream connection another.
fn raise_open_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(error) = setrlimit(Resource::Nofile, limit) {
            tracing::debug!(%error, "the open-file limit stays as it was");
        }
    }
}
