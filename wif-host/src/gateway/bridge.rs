//! The bodies between the client and the upstream, streamed on the
//! gateway's runtime: the client's request body as the upstream request's
//! ([`Upload`], which keeps a copy for the replay after a 401), and the
//! answer to the client ([`ResponseBody`]: the gateway's own or the
//! upstream's, frame by frame as it arrives).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::time::{Instant, Sleep};

use super::REPLAY_CAP_BYTES;

/// The client's request body, read by the upstream request ([`Upload`])
/// and, after a 401, by the replay ([`Upload::drain`]).
struct Source {
    body: Incoming,
    /// What was read, for the replay.
    copy: Kept,
    /// The body ended (or failed).
    ended: bool,
    /// Taken by the replay: the upstream request reads no more.
    taken: bool,
    /// The upstream request's reader, woken when the replay takes over.
    reader: Option<Waker>,
    /// No data from the client for this long ends the body with an error.
    idle: Duration,
    /// When `idle` has passed since the last data.
    deadline: Pin<Box<Sleep>>,
    last: Instant,
}

impl Source {
    /// The next chunk of data; an error when the client stops short of
    /// its length, goes away, or sends nothing for `idle`.
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        loop {
            if self.ended {
                return Poll::Ready(None);
            }
            match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    self.last = Instant::now();
                    if let Ok(data) = frame.into_data() {
                        self.copy.push(&data);
                        return Poll::Ready(Some(Ok(data)));
                    }
                }
                Poll::Ready(None) => {
                    self.ended = true;
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Err(_))) => {
                    return Poll::Ready(Some(Err(self.fail(
                        io::ErrorKind::UnexpectedEof,
                        "the client's request body ended early",
                    ))));
                }
                Poll::Pending => return self.waiting(cx),
            }
        }
    }

    /// Pending, or an error once `idle` passed since the last data.
    fn waiting(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        loop {
            if self.deadline.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let due = self.last + self.idle;
            if Instant::now() >= due {
                return Poll::Ready(Some(Err(self.fail(
                    io::ErrorKind::TimedOut,
                    "the client sent no body data for too long",
                ))));
            }
            self.deadline.as_mut().reset(due);
        }
    }

    /// Ends the body with an error; no copy is whole any more.
    fn fail(&mut self, kind: io::ErrorKind, message: &'static str) -> io::Error {
        self.ended = true;
        self.copy.spoil();
        io::Error::new(kind, message)
    }
}

/// A copy of a body while it fits [`REPLAY_CAP_BYTES`].
#[derive(Debug)]
pub struct Kept(Option<Vec<u8>>);

impl Default for Kept {
    fn default() -> Kept {
        Kept(Some(Vec::new()))
    }
}

impl Kept {
    /// Adds `data`; once over the cap nothing is kept.
    pub fn push(&mut self, data: &[u8]) {
        if let Some(copy) = &mut self.0 {
            if copy.len() + data.len() > REPLAY_CAP_BYTES {
                self.0 = None;
            } else {
                copy.extend_from_slice(data);
            }
        }
    }

    /// Keeps nothing: the body ended early.
    pub fn spoil(&mut self) {
        self.0 = None;
    }

    /// Whether everything so far is kept.
    pub fn is_whole(&self) -> bool {
        self.0.is_some()
    }

    /// The copy, if whole.
    pub fn take(&mut self) -> Option<Vec<u8>> {
        self.0.take()
    }
}

/// The client's request body as the upstream request's, streamed; it keeps
/// a copy of up to [`REPLAY_CAP_BYTES`] for a replay.
pub struct Upload {
    source: Arc<Mutex<Source>>,
    /// The client's declared length (`None`: chunked).
    length: Option<u64>,
}

impl Upload {
    /// The body `body` of `length` bytes (`None`: unknown); no data for
    /// `idle` ends it with an error.
    pub fn new(body: Incoming, length: Option<u64>, idle: Duration) -> Upload {
        let source = Source {
            body,
            copy: Kept::default(),
            ended: false,
            taken: false,
            reader: None,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
            last: Instant::now(),
        };
        Upload {
            source: Arc::new(Mutex::new(source)),
            length,
        }
    }

    /// Another handle on the same body, for [`Upload::drain`] once this
    /// one was given to the upstream request.
    pub fn handle(&self) -> Upload {
        Upload {
            source: self.source.clone(),
            length: self.length,
        }
    }

    /// The whole body as kept, after reading what the upstream request did
    /// not (a 401 may come before the body was sent); `None` when it is
    /// over [`REPLAY_CAP_BYTES`] or ended early. The upstream request
    /// reads no more of it.
    pub async fn drain(self) -> Option<Vec<u8>> {
        if let Some(reader) = {
            let mut source = self.lock();
            source.taken = true;
            source.reader.take()
        } {
            reader.wake();
        }
        std::future::poll_fn(|cx| {
            let mut source = self.lock();
            loop {
                match source.poll_chunk(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Some(Ok(_))) if source.copy.is_whole() => {}
                    Poll::Ready(Some(_)) => return Poll::Ready(None),
                    Poll::Ready(None) => return Poll::Ready(source.copy.take()),
                }
            }
        })
        .await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Source> {
        self.source.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Body for Upload {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let mut source = self.lock();
        if source.taken {
            return Poll::Ready(Some(Err(io::Error::other("the body went to the replay"))));
        }
        let polled = source.poll_chunk(cx);
        if polled.is_pending()
            && !source
                .reader
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
        {
            source.reader = Some(cx.waker().clone());
        }
        polled.map(|chunk| chunk.map(|chunk| chunk.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.length == Some(0)
    }

    fn size_hint(&self) -> SizeHint {
        self.length
            .map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

/// A response body: a fixed one (the gateway's own answers) or the
/// upstream's, relayed frame by frame (its data; trailers are not
/// relayed), chunked. An upstream error cuts the response short, so the client sees
/// an incomplete body rather than a complete one.
pub enum ResponseBody {
    /// The gateway's own answer (`None` once sent).
    Fixed(Option<Bytes>),
    /// The upstream's answer.
    Upstream(Incoming),
}

impl ResponseBody {
    /// A body of `bytes`.
    pub fn fixed(bytes: impl Into<Bytes>) -> ResponseBody {
        ResponseBody::Fixed(Some(bytes.into()))
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ResponseBody::Fixed(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            ResponseBody::Upstream(body) => loop {
                match Pin::new(&mut *body).poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) if !frame.is_data() => {}
                    other => return other,
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Fixed(bytes) => bytes.is_none(),
            ResponseBody::Upstream(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Fixed(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            ResponseBody::Fixed(None) => SizeHint::with_exact(0),
            // Of unknown length: the gateway frames the relayed body
            // itself (chunked), whatever the upstream's framing.
            ResponseBody::Upstream(_) => SizeHint::default(),
        }
    }
}
