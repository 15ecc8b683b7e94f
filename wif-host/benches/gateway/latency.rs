//! The latency of one non-streaming Messages request, directly to the
//! stand-in and through the gateway, measured interleaved so that both
//! series see the same machine.

use std::time::{Duration, Instant};

use anyhow::ensure;

/// A Messages request of a typical size.
const REQUEST: &str = r#"{"model":"claude-bench","max_tokens":256,"messages":[{"role":"user","content":"Say pong, and nothing else. This sentence pads the request to the size of a short prompt."}]}"#;

/// The latencies of each series, in request order.
pub struct Series {
    /// Directly to the stand-in, on a connection kept alive (what a client
    /// of the real API does).
    pub direct_kept_alive: Vec<Duration>,
    /// Directly to the stand-in, a new connection per request.
    pub direct_new_connection: Vec<Duration>,
    /// Through the gateway (which closes every client connection after its
    /// response, so each request is a new connection to it).
    pub through_gateway: Vec<Duration>,
}

/// `warm_up` untimed rounds, then `rounds` rounds of one request of each
/// series, their order rotating from round to round.
pub fn measure(
    upstream: &str,
    gateway: &str,
    warm_up: usize,
    rounds: usize,
) -> anyhow::Result<Series> {
    let kept_alive = ureq::Agent::new_with_defaults();
    let new_connection = ureq::Agent::config_builder()
        .max_idle_connections(0)
        .max_idle_connections_per_host(0)
        .build()
        .new_agent();
    let direct = format!("{upstream}/v1/messages");
    let proxied = format!("{gateway}/v1/messages");
    let mut series = Series {
        direct_kept_alive: Vec::with_capacity(rounds),
        direct_new_connection: Vec::with_capacity(rounds),
        through_gateway: Vec::with_capacity(rounds),
    };
    for round in 0..warm_up + rounds {
        let mut times = [Duration::ZERO; 3];
        for turn in 0..3 {
            let which = (round + turn) % 3;
            times[which] = match which {
                0 => call(&kept_alive, &direct, "Bearer sk-ant-oat01-direct")?,
                1 => call(&new_connection, &direct, "Bearer sk-ant-oat01-direct")?,
                _ => call(&new_connection, &proxied, "Bearer placeholder")?,
            };
        }
        if round >= warm_up {
            series.direct_kept_alive.push(times[0]);
            series.direct_new_connection.push(times[1]);
            series.through_gateway.push(times[2]);
        }
    }
    Ok(series)
}

/// One request, its answer read to the end and checked.
fn call(agent: &ureq::Agent, url: &str, authorization: &str) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut response = agent
        .post(url)
        .header("authorization", authorization)
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .send(REQUEST)?;
    let body = response.body_mut().read_to_string()?;
    let elapsed = start.elapsed();
    ensure!(
        response.status() == 200 && body.contains(r#""text":"pong""#),
        "{url} answered {}: {body}",
        response.status()
    );
    Ok(elapsed)
}
