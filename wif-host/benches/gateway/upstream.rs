//! The loopback stand-in behind the gateway: the token endpoint
//! (`anthropic_wif_loopback::token_endpoint`) and a Messages API that
//! answers a JSON message, or server-sent events spread out in time when
//! the request asks for a stream. Plain HTTP/1.1 with keep-alive, one
//! thread per connection, so that a direct client reuses its connection as
//! it would against the real API.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use anthropic_wif_loopback::{Recorded, Reply, token_endpoint};
use serde_json::json;

/// The token the stand-in's Messages API accepts (as a prefix of the
/// bearer token).
pub const TOKEN_PREFIX: &str = "Bearer sk-ant-oat01-";

/// How the stand-in streams.
#[derive(Clone, Copy)]
pub struct Streaming {
    /// Text deltas per stream.
    pub deltas: usize,
    /// The pause before each delta.
    pub interval: Duration,
}

/// The stand-in, serving until the process ends.
pub struct Upstream {
    url: String,
}

type Tokens = dyn Fn(&Recorded) -> Reply + Send + Sync;

impl Upstream {
    /// Starts the stand-in on 127.0.0.1 with an ephemeral port.
    pub fn start(streaming: Streaming) -> anyhow::Result<Upstream> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}", listener.local_addr()?);
        let tokens: Arc<Tokens> = Arc::new(token_endpoint(3600));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let tokens = tokens.clone();
                let _ = std::thread::Builder::new()
                    .stack_size(256 * 1024)
                    .spawn(move || serve(stream, &*tokens, streaming));
            }
        });
        Ok(Upstream { url })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// Answers the requests of one connection until the client closes it.
fn serve(stream: TcpStream, tokens: &Tokens, streaming: Streaming) {
    let _ = stream.set_nodelay(true);
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader) {
        let answered = if request.path == "/v1/oauth/token" {
            write_reply(&mut writer, &tokens(&request))
        } else if !request
            .header("authorization")
            .is_some_and(|a| a.starts_with(TOKEN_PREFIX))
        {
            write_reply(
                &mut writer,
                &Reply::json(
                    401,
                    &json!({"type": "error", "error": {"type": "authentication_error", "message": "no bearer token"}}),
                ),
            )
        } else if request.path != "/v1/messages" {
            write_reply(&mut writer, &Reply::text(404, "not found"))
        } else if request.body.windows(13).any(|w| w == b"\"stream\":true") {
            write_events(&mut writer, streaming)
        } else {
            write_reply(&mut writer, &Reply::json(200, &message("pong")))
        };
        if answered.is_err() {
            return;
        }
    }
}

/// The next request on the connection; `None` at its end or on anything
/// this stand-in does not speak (it reads `content-length` bodies only).
fn read_request(reader: &mut impl BufRead) -> Option<Recorded> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split(' ');
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    if headers.iter().any(|(n, _)| n == "transfer-encoding") {
        return None;
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map_or(Some(0), |(_, v)| v.parse().ok())?;
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Recorded {
        method,
        path,
        headers,
        body,
    })
}

fn write_reply(writer: &mut impl Write, reply: &Reply) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} X\r\ncontent-length: {}\r\n",
        reply.status,
        reply.body.len()
    );
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    writer.write_all(head.as_bytes())?;
    writer.write_all(&reply.body)?;
    writer.flush()
}

/// A Messages API stream: `message_start`, then `streaming.deltas` text
/// deltas each after `streaming.interval`, then the closing events; each
/// event is one chunk, flushed as it is written.
fn write_events(writer: &mut impl Write, streaming: Streaming) -> std::io::Result<()> {
    writer.write_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
    )?;
    let start = json!({"type": "message_start", "message": {"id": "msg_bench", "type": "message",
        "role": "assistant", "model": "claude-bench", "content": [], "stop_reason": null,
        "stop_sequence": null, "usage": {"input_tokens": 1, "output_tokens": 1}}});
    write_event(writer, "message_start", &start)?;
    for n in 0..streaming.deltas {
        std::thread::sleep(streaming.interval);
        let delta = json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": format!("word{n} ")}});
        write_event(writer, "content_block_delta", &delta)?;
    }
    write_event(writer, "message_stop", &json!({"type": "message_stop"}))?;
    writer.write_all(b"0\r\n\r\n")?;
    writer.flush()
}

fn write_event(
    writer: &mut impl Write,
    name: &str,
    data: &serde_json::Value,
) -> std::io::Result<()> {
    let event = format!("event: {name}\ndata: {data}\n\n");
    write!(writer, "{:x}\r\n{event}\r\n", event.len())?;
    writer.flush()
}

/// A Messages API answer whose text is `text`.
fn message(text: &str) -> serde_json::Value {
    json!({"id": "msg_bench", "type": "message", "role": "assistant", "model": "claude-bench",
        "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
        "stop_sequence": null, "usage": {"input_tokens": 1, "output_tokens": 1}})
}
