//! The latency of one non-streaming Messages request, directly to the
//! stand-in and through the gateway, both on connections kept alive,
//! measured interleaved so that both series see the same machine.

use std::time::{Duration, Instant};

use anyhow::ensure;

/// A Messages request of a typical size.
const REQUEST: &str = r#"{"model":"claude-bench","max_tokens":256,"messages":[{"role":"user","content":"Say pong, and nothing else. This sentence pads the request to the size of a short prompt."}]}"#;

/// The latencies of each series, in request order.
pub struct Series {
    /// Directly to the stand-in, on a connection kept alive (what a client
    /// of the real API does).
    pub direct: Vec<Duration>,
    /// Through the gateway, on a connection kept alive (what the SDKs do);
    /// the gateway keeps its upstream connection alive too.
    pub through_gateway: Vec<Duration>,
}

/// `warm_up` untimed rounds, then `rounds` rounds of one request of each
/// series, their order alternating from round to round.
pub fn measure(
    upstream: &str,
    gateway: &str,
    key: &str,
    warm_up: usize,
    rounds: usize,
) -> anyhow::Result<Series> {
    let direct_agent = ureq::Agent::new_with_defaults();
    let gateway_agent = ureq::Agent::new_with_defaults();
    let direct = format!("{upstream}/v1/messages");
    let proxied = format!("{gateway}/v1/messages");
    let mut series = Series {
        direct: Vec::with_capacity(rounds),
        through_gateway: Vec::with_capacity(rounds),
    };
    for round in 0..warm_up + rounds {
        let mut times = [Duration::ZERO; 2];
        for turn in 0..2 {
            let which = (round + turn) % 2;
            times[which] = match which {
                0 => call(
                    &direct_agent,
                    &direct,
                    ("authorization", "Bearer sk-ant-oat01-direct"),
                )?,
                _ => call(&gateway_agent, &proxied, ("x-api-key", key))?,
            };
        }
        if round >= warm_up {
            series.direct.push(times[0]);
            series.through_gateway.push(times[1]);
        }
    }
    Ok(series)
}

/// One request with the credential header `credential`, its answer read
/// to the end and checked.
fn call(agent: &ureq::Agent, url: &str, credential: (&str, &str)) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut response = agent
        .post(url)
        .header(credential.0, credential.1)
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
