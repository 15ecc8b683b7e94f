//! Bodies between the server's tasks and the upstream exchange on the
//! blocking pool: bounded channels of chunks, so that neither side
//! buffers more than a few chunks and both stream.

use std::io::{self, Read};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::sync::mpsc;

/// Chunks in flight in each direction.
pub const CHUNKS_IN_FLIGHT: usize = 4;

/// A chunk of a body, or why the body ended early.
pub type Chunk = io::Result<Bytes>;

/// Sends the client's body into `chunks`, ending with an error when the
/// client stops short of its length, sends nothing for `idle`, or goes
/// away. Stops early when the exchange no longer reads.
pub async fn pump_request(mut body: Incoming, chunks: mpsc::Sender<Chunk>, idle: Duration) {
    loop {
        let frame = tokio::select! {
            frame = tokio::time::timeout(idle, body.frame()) => frame,
            () = chunks.closed() => return,
        };
        let chunk = match frame {
            Ok(None) => return,
            Ok(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => Ok(data),
                Err(_trailers) => continue,
            },
            Ok(Some(Err(_))) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the client's request body ended early",
            )),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client sent no body data for too long",
            )),
        };
        let last = chunk.is_err();
        if chunks.send(chunk).await.is_err() || last {
            return;
        }
    }
}

/// The client's body as a blocking reader, for the upstream exchange.
pub struct ChannelReader {
    chunks: mpsc::Receiver<Chunk>,
    current: Bytes,
}

impl ChannelReader {
    /// Reads what arrives on `chunks`, to the end of the channel.
    pub fn new(chunks: mpsc::Receiver<Chunk>) -> ChannelReader {
        ChannelReader {
            chunks,
            current: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.chunks.blocking_recv() {
                None => return Ok(0),
                Some(chunk) => self.current = chunk?,
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}

/// A response body: a fixed one (the gateway's own answers) or the
/// upstream's, streamed from the exchange chunk by chunk. An error from
/// the exchange cuts the response short, so the client sees an incomplete
/// body rather than a complete one.
pub struct ResponseBody {
    fixed: Option<Bytes>,
    streamed: Option<mpsc::Receiver<Chunk>>,
}

impl ResponseBody {
    /// A body of `bytes`.
    pub fn fixed(bytes: impl Into<Bytes>) -> ResponseBody {
        ResponseBody {
            fixed: Some(bytes.into()),
            streamed: None,
        }
    }

    /// The chunks arriving on `chunks`.
    pub fn streamed(chunks: mpsc::Receiver<Chunk>) -> ResponseBody {
        ResponseBody {
            fixed: None,
            streamed: Some(chunks),
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if let Some(bytes) = self.fixed.take() {
            return Poll::Ready(Some(Ok(Frame::data(bytes))));
        }
        let Some(chunks) = &mut self.streamed else {
            return Poll::Ready(None);
        };
        chunks
            .poll_recv(cx)
            .map(|chunk| chunk.map(|chunk| chunk.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.fixed.is_none() && self.streamed.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.fixed, &self.streamed) {
            (Some(bytes), None) => SizeHint::with_exact(bytes.len() as u64),
            (None, None) => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}
