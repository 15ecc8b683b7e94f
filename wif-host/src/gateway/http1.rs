//! The client side of the gateway: an HTTP/1.1 request head, the request
//! body (by `Content-Length` or chunked), and a chunked response writer.

use std::io::{self, BufRead, Read, Write};

/// The largest request head accepted, in bytes.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The most header lines accepted.
pub const MAX_HEADERS: usize = 128;

/// A request line and its headers. Its `Debug` shows header names only:
/// values carry the client's credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Head {
    /// `GET`, `POST`, …
    pub method: String,
    /// The request target (`/v1/messages?beta=true`).
    pub target: String,
    /// Header names (as sent) and values, in order.
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Debug for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("Head")
            .field("method", &self.method)
            .field("target", &self.target)
            .field("header_names", &names)
            .finish()
    }
}

impl Head {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn bad(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_string())
}

/// Reads a request head; `None` when the client closed the connection
/// before sending one.
pub fn read_head(reader: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut total = 0usize;
    let mut line = Vec::new();
    let mut next_line = |reader: &mut dyn BufRead| -> io::Result<Option<String>> {
        line.clear();
        let read = reader
            .take((MAX_HEAD_BYTES - total.min(MAX_HEAD_BYTES)) as u64 + 1)
            .read_until(b'\n', &mut line)?;
        total += read;
        if read == 0 {
            return Ok(None);
        }
        if total > MAX_HEAD_BYTES || !line.ends_with(b"\n") {
            return Err(bad("the request head is too large or cut short"));
        }
        let text = std::str::from_utf8(&line).map_err(|_| bad("the request head is not UTF-8"))?;
        Ok(Some(text.trim_end_matches(['\r', '\n']).to_string()))
    };
    let Some(request_line) = next_line(reader)? else {
        return Ok(None);
    };
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("malformed request line"));
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return Err(bad("malformed request line"));
    }
    let mut headers = Vec::new();
    loop {
        let line = next_line(reader)?.ok_or_else(|| bad("the request head is cut short"))?;
        if line.is_empty() {
            break;
        }
        if headers.len() == MAX_HEADERS {
            return Err(bad("too many request headers"));
        }
        let (name, value) = line
            .split_once(':')
            .filter(|(name, _)| !name.is_empty() && !name.contains([' ', '\t']))
            .ok_or_else(|| bad("malformed request header"))?;
        headers.push((name.to_string(), value.trim().to_string()));
    }
    Ok(Some(Head {
        method: method.to_string(),
        target: target.to_string(),
        headers,
    }))
}

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body.
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// The body framing of a request, refusing ambiguous ones (both framings,
/// several lengths, an unknown transfer coding).
pub fn body_kind(head: &Head) -> io::Result<BodyKind> {
    let lengths: Vec<&str> = head
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.as_str())
        .collect();
    let chunked = match head.header("transfer-encoding") {
        None => false,
        Some(coding) if coding.eq_ignore_ascii_case("chunked") => true,
        Some(_) => return Err(bad("unsupported transfer-encoding")),
    };
    match (lengths.as_slice(), chunked) {
        ([], false) => Ok(BodyKind::Empty),
        ([], true) => Ok(BodyKind::Chunked),
        ([length], false) => length
            .parse()
            .map(BodyKind::Length)
            .map_err(|_| bad("malformed content-length")),
        _ => Err(bad("ambiguous request body framing")),
    }
}

/// Reads a chunked body, yielding its data.
pub struct ChunkedReader<R> {
    inner: R,
    left_in_chunk: u64,
    done: bool,
}

impl<R: BufRead> ChunkedReader<R> {
    /// Reads chunks from `inner`.
    pub fn new(inner: R) -> ChunkedReader<R> {
        ChunkedReader {
            inner,
            left_in_chunk: 0,
            done: false,
        }
    }

    fn line(&mut self) -> io::Result<String> {
        let mut line = Vec::new();
        (&mut self.inner).take(4096).read_until(b'\n', &mut line)?;
        if !line.ends_with(b"\n") {
            return Err(bad("malformed chunk"));
        }
        String::from_utf8(line).map_err(|_| bad("malformed chunk"))
    }
}

impl<R: BufRead> Read for ChunkedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left_in_chunk == 0 {
            let line = self.line()?;
            let size = line.trim_end().split(';').next().unwrap_or_default();
            self.left_in_chunk =
                u64::from_str_radix(size.trim(), 16).map_err(|_| bad("malformed chunk size"))?;
            if self.left_in_chunk == 0 {
                while !self.line()?.trim_end().is_empty() {}
                self.done = true;
                return Ok(0);
            }
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left_in_chunk).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buf[..want])?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "chunked body cut short",
            ));
        }
        self.left_in_chunk -= read as u64;
        if self.left_in_chunk == 0 && self.line()?.trim_end() != "" {
            return Err(bad("malformed chunk end"));
        }
        Ok(read)
    }
}

/// Writes a body as chunks, flushing each, so that the client sees data as
/// soon as it arrives.
pub struct ChunkedWriter<W: Write> {
    inner: W,
}

impl<W: Write> ChunkedWriter<W> {
    /// Chunks onto `inner`.
    pub fn new(inner: W) -> ChunkedWriter<W> {
        ChunkedWriter { inner }
    }

    /// Writes the last chunk.
    pub fn finish(mut self) -> io::Result<()> {
        self.inner.write_all(b"0\r\n\r\n")?;
        self.inner.flush()
    }
}

impl<W: Write> Write for ChunkedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        write!(self.inner, "{:x}\r\n", buf.len())?;
        self.inner.write_all(buf)?;
        self.inner.write_all(b"\r\n")?;
        self.inner.flush()?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
