//! A full exchange against the loopback token endpoint, and its overhead
//! over the same request sent bare.

use super::*;

impl Bench {
    /// Full exchanges against the loopback token endpoint, and the bare
    /// HTTP round trip, on a reused and on a fresh connection. Exchanges and
    /// bare POSTs alternate call by call, so that both see the same
    /// conditions; the overhead is taken run by run.
    pub(crate) fn exchange(&self, table: &mut Table) -> anyhow::Result<()> {
        table.section("exchange against the loopback token endpoint (file source)");

        // Reused connection: one provider, whose agent keeps the connection
        // open; one ureq agent for the bare POSTs.
        let server = LoopbackServer::start(token_endpoint(EXPIRES_IN))?;
        let config = self.config(&server, "fdrl_bench");
        let provider = self.provider(&config)?;
        provider.get_token(&config)?;
        let agent = bare_agent();
        bare_post(&agent, &server)?;
        let batch = 20;
        let (mut exchanges, mut bare) = (Vec::new(), Vec::new());
        let overhead = runs(REPS, || {
            let (mut exchange, mut round_trip) = (Duration::ZERO, Duration::ZERO);
            for _ in 0..batch {
                provider.invalidate(&config)?;
                let start = Instant::now();
                black_box(provider.get_token(&config)?);
                exchange += start.elapsed();
                let start = Instant::now();
                bare_post(&agent, &server)?;
                round_trip += start.elapsed();
            }
            let (exchange, round_trip) = (per_call(exchange, batch), per_call(round_trip, batch));
            exchanges.push(exchange);
            bare.push(round_trip);
            Ok(exchange - round_trip)
        })?;
        table.note(format!(
            "reused connection: {} requests (exchanges and bare POSTs) over {} TCP connection(s)",
            server.requests().len(),
            connections_to(server.port())
        ));
        table.row(
            "exchange, reused connection (get_token after invalidate)",
            Kind::Time,
            Stats::of(exchanges),
            Target::none(""),
        );
        table.row(
            "bare HTTP POST, same body, reused connection (ureq)",
            Kind::Time,
            Stats::of(bare),
            Target::none(""),
        );
        table.row(
            "exchange overhead over bare round trip, reused",
            Kind::Time,
            overhead,
            Target::at_most(200_000.0, "≤ 200 µs"),
        );

        // Fresh connection: the server cannot be told to close connections,
        // so each exchange gets a new provider (new agent, empty connection
        // pool) warmed by an exchange with a second server, outside the
        // timing; the timed exchange then opens a new TCP connection from a
        // warm instance. The bare POSTs do the same with a new agent.
        let server = LoopbackServer::start(token_endpoint(EXPIRES_IN))?;
        let warmer = LoopbackServer::start(token_endpoint(EXPIRES_IN))?;
        let config = self.config(&server, "fdrl_bench");
        let warm_config = self.config(&warmer, "fdrl_bench");
        let mut policy = self.policy(&config)?;
        policy.origins.extend(self.policy(&warm_config)?.origins);
        let batch = 10;
        let (mut exchanges, mut bare, mut first) = (Vec::new(), Vec::new(), Vec::new());
        let overhead = runs(SLOW_REPS, || {
            let (mut exchange, mut round_trip, mut cold) =
                (Duration::ZERO, Duration::ZERO, Duration::ZERO);
            for _ in 0..batch {
                let fresh = self.inspector.with_policy(policy.clone());
                fresh.get_token(&warm_config)?;
                let start = Instant::now();
                black_box(fresh.get_token(&config)?);
                exchange += start.elapsed();
                let agent = bare_agent();
                bare_post(&agent, &warmer)?;
                let start = Instant::now();
                bare_post(&agent, &server)?;
                round_trip += start.elapsed();
                // For reference: the first exchange of a provider whose
                // instance exists (made by `requirements`) but has never
                // exchanged.
                let fresh = self.inspector.with_policy(policy.clone());
                fresh.requirements(&config)?;
                let start = Instant::now();
                black_box(fresh.get_token(&config)?);
                cold += start.elapsed();
            }
            let (exchange, round_trip) = (per_call(exchange, batch), per_call(round_trip, batch));
            exchanges.push(exchange);
            bare.push(round_trip);
            first.push(per_call(cold, batch));
            Ok(exchange - round_trip)
        })?;
        table.note(format!(
            "fresh connection: {} requests (exchanges and bare POSTs) over {} TCP connection(s)",
            server.requests().len(),
            connections_to(server.port())
        ));
        table.row(
            "exchange, fresh connection (warm instance, new agent)",
            Kind::Time,
            Stats::of(exchanges),
            Target::none("Python SDK 2.6–3.2 ms"),
        );
        table.row(
            "bare HTTP POST, same body, fresh connection (new agent)",
            Kind::Time,
            Stats::of(bare),
            Target::none(""),
        );
        table.row(
            "exchange overhead over bare round trip, fresh",
            Kind::Time,
            overhead,
            Target::at_most(200_000.0, "≤ 200 µs"),
        );
        table.row(
            "first exchange of a new provider (instance made, never exchanged)",
            Kind::Time,
            Stats::of(first),
            Target::none("reference"),
        );

        // The same exchange natively, for reference.
        let server = LoopbackServer::start(token_endpoint(EXPIRES_IN))?;
        let config = self.config(&server, "fdrl_bench");
        let caps = NativeCaps::new();
        let mut native = anthropic_wif::Provider::new();
        native.get_token(&caps, &config)?;
        let batch = 20;
        let exchanged = runs(REPS, || {
            let mut total = Duration::ZERO;
            for _ in 0..batch {
                native.invalidate(&config);
                let start = Instant::now();
                black_box(native.get_token(&caps, &config)?);
                total += start.elapsed();
            }
            Ok(per_call(total, batch))
        })?;
        table.row(
            "exchange natively (anthropic_wif + ureq), reused connection",
            Kind::Time,
            exchanged,
            Target::none("reference"),
        );
        Ok(())
    }
}

/// An agent configured as the host's (no redirects, statuses as
/// responses, no proxy, a global timeout).
pub(crate) fn bare_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// The exchange's request, sent bare: same headers and body, whole answer
/// read.
pub(crate) fn bare_post(agent: &ureq::Agent, server: &LoopbackServer) -> anyhow::Result<()> {
    let body = json!({
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "assertion": JWT,
        "federation_rule_id": "fdrl_bench",
        "organization_id": ORG,
    })
    .to_string();
    let mut response = agent
        .post(format!("{}/v1/oauth/token", server.url()))
        .header("content-type", "application/json")
        .header(
            "anthropic-beta",
            "oauth-2025-04-20,oidc-federation-2026-04-01",
        )
        .header("user-agent", "anthropic-wif/0.1.0")
        .send(body.as_bytes())?;
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_vec()?;
    ensure!(status == 200, "bare POST answered {status}");
    black_box(body);
    Ok(())
}

/// TCP connections (open or in TIME_WAIT) between 127.0.0.1 and `port`:
/// the distinct client-side ports seen from either end.
pub(crate) fn connections_to(port: u16) -> usize {
    let Ok(text) = std::fs::read_to_string("/proc/net/tcp") else {
        return 0;
    };
    let port_of = |address: &str| {
        address
            .rsplit(':')
            .next()
            .and_then(|p| u16::from_str_radix(p, 16).ok())
    };
    let mut clients = HashSet::new();
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(remote), Some(state)) =
            (fields.get(1), fields.get(2), fields.get(3))
        else {
            continue;
        };
        if *state == "0A" {
            continue; // LISTEN
        }
        match (port_of(local), port_of(remote)) {
            (Some(l), Some(r)) if l == port => {
                clients.insert(r);
            }
            (Some(l), Some(r)) if r == port => {
                clients.insert(l);
            }
            _ => {}
        }
    }
    clients.len()
}
