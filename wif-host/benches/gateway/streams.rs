//! Concurrent server-sent-event streams through the gateway, all started
//! at once, each read event by event and checked to the end.

use std::io::{BufRead, BufReader};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};

use crate::process::{GatewayProcess, Memory};

/// A streaming Messages request.
const REQUEST: &str = r#"{"model":"claude-bench","max_tokens":256,"stream":true,"messages":[{"role":"user","content":"Count slowly."}]}"#;

/// One stream as the client saw it.
pub struct Stream {
    /// From sending the request to the first event.
    pub first_event: Duration,
    /// From sending the request to the end of the body.
    pub total: Duration,
}

/// What a round of concurrent streams gave.
pub struct Round {
    /// The streams that completed with every event, in order.
    pub completed: Vec<Stream>,
    /// Failures, one line each.
    pub failed: Vec<String>,
    /// From the start signal until the last stream ended.
    pub wall: Duration,
    /// The most threads the gateway had, sampled every 10 ms.
    pub peak_threads: u64,
}

/// Runs `count` streams at once through `gateway`, each expecting
/// `deltas` text deltas.
pub fn run(gateway: &GatewayProcess, count: usize, deltas: usize) -> anyhow::Result<Round> {
    let agent = ureq::Agent::config_builder()
        .max_idle_connections(0)
        .build()
        .new_agent();
    let url = format!("{}/v1/messages", gateway.url());
    let key = gateway.key().to_string();
    let barrier = Arc::new(Barrier::new(count + 1));
    let clients: Vec<_> = (0..count)
        .map(|_| {
            let (agent, url, barrier) = (agent.clone(), url.clone(), barrier.clone());
            let key = key.clone();
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    barrier.wait();
                    stream(&agent, &url, &key, deltas)
                })
        })
        .collect::<Result<_, _>>()?;
    barrier.wait();
    let start = Instant::now();
    let mut peak_threads = 0;
    while !clients.iter().all(|c| c.is_finished()) {
        let Memory { threads, .. } = gateway.memory()?;
        peak_threads = peak_threads.max(threads);
        std::thread::sleep(Duration::from_millis(10));
    }
    let wall = start.elapsed();
    let mut round = Round {
        completed: Vec::new(),
        failed: Vec::new(),
        wall,
        peak_threads,
    };
    for client in clients {
        match client.join() {
            Ok(Ok(stream)) => round.completed.push(stream),
            Ok(Err(error)) => round.failed.push(format!("{error:#}")),
            Err(_) => round.failed.push("a client thread panicked".into()),
        }
    }
    Ok(round)
}

/// One stream, read line by line: `message_start` first, then `deltas`
/// deltas `word0 ` … in order, then `message_stop`.
fn stream(agent: &ureq::Agent, url: &str, key: &str, deltas: usize) -> anyhow::Result<Stream> {
    let start = Instant::now();
    let response = agent
        .post(url)
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .send(REQUEST)?;
    ensure!(
        response.status() == 200,
        "the gateway answered {}",
        response.status()
    );
    let mut events = BufReader::new(response.into_body().into_reader()).lines();
    let mut first_event = None;
    let mut seen = Vec::new();
    while let Some(line) = events.next() {
        let line = line.context("reading the stream")?;
        if let Some(name) = line.strip_prefix("event: ") {
            first_event.get_or_insert_with(|| start.elapsed());
            let data = events.next().context("an event without data")??;
            seen.push((name.to_string(), data));
        }
    }
    let total = start.elapsed();
    ensure!(
        seen.len() == deltas + 2,
        "{} events instead of {}",
        seen.len(),
        deltas + 2
    );
    ensure!(
        seen[0].0 == "message_start",
        "the first event is {}",
        seen[0].0
    );
    for (n, (name, data)) in seen[1..=deltas].iter().enumerate() {
        ensure!(
            name == "content_block_delta" && data.contains(&format!("\"word{n} \"")),
            "event {} is {name} {data}",
            n + 1
        );
    }
    ensure!(seen[deltas + 1].0 == "message_stop", "no message_stop last");
    Ok(Stream {
        first_event: first_event.context("no event")?,
        total,
    })
}
