//! `wif-host sync`: keeps an SDK profile's credentials file fresh, so that
//! an application using an official SDK with `ANTHROPIC_PROFILE` always
//! finds a valid token there.
//!
//! The SDKs treat a token with 120 s (their advisory window) or less left as due
//! for refresh and re-read the file then; the sidecar replaces the token
//! [`REFRESH_LEAD_SECS`] before it expires (half its lifetime for tokens
//! shorter than twice that), so a reader sees more than the advisory window
//! left while the identity source and the endpoint are healthy. It asks for
//! a token valid for longer than the one it holds has left
//! ([`Client::token_valid_for`]), so the component exchanges early only when
//! it can: an identity token it has already exchanged (a file not rotated
//! yet) is not spent again, and the token held is written until the
//! mandatory window. A failed refresh leaves the last good file in place
//! and is retried with backoff ([`retry_delay`]).

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use crate::sdk_profile::{ProfileError, ProfileWriter};
use anthropic_wif_host::{AccessToken, Client, Clock, Error, SystemClock};

/// How long before expiry a token is replaced, in seconds (for tokens
/// living at least twice as long).
pub const REFRESH_LEAD_SECS: u64 = 180;
/// The longest wait between two tries after failures, in seconds.
pub const MAX_RETRY_SECS: u64 = 30;

/// Why a sync step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// No token could be obtained.
    #[error(transparent)]
    Token(#[from] Error),
    /// The profile could not be prepared or written.
    #[error(transparent)]
    Profile(#[from] ProfileError),
}

/// When (Unix seconds) to replace a token that expires at `expires_at`,
/// seen at `now`: [`REFRESH_LEAD_SECS`] before it expires, or half its
/// remaining life before for short-lived tokens. Never before `now`.
pub fn refresh_at(now: u64, expires_at: u64) -> u64 {
    let lifetime = expires_at.saturating_sub(now);
    expires_at
        .saturating_sub(REFRESH_LEAD_SECS.min(lifetime / 2))
        .max(now)
}

/// The wait before the next try after `failures` failures in a row: 1 s,
/// doubling, at most [`MAX_RETRY_SECS`].
pub fn retry_delay(failures: u32) -> Duration {
    let secs = 1u64
        .checked_shl(failures.saturating_sub(1))
        .unwrap_or(u64::MAX);
    Duration::from_secs(secs.min(MAX_RETRY_SECS))
}

/// A request to stop, from a signal or from the program.
pub struct Stop {
    receiver: Receiver<()>,
    sender: Sender<()>,
}

impl Stop {
    /// A stop that only [`Stop::sender`]'s senders trigger.
    pub fn manual() -> Stop {
        let (sender, receiver) = std::sync::mpsc::channel();
        Stop { receiver, sender }
    }

    /// A stop triggered by SIGTERM or SIGINT. The signals are
    /// received by a dedicated thread through `signal-hook`, which chains
    /// with any other handler; nothing else in the process changes.
    pub fn on_signals() -> std::io::Result<Stop> {
        let stop = Stop::manual();
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])?;
        let sender = stop.sender();
        std::thread::Builder::new()
            .name("wif-host-signals".into())
            .spawn(move || {
                if signals.forever().next().is_some() {
                    let _ = sender.send(());
                }
            })?;
        Ok(stop)
    }

    /// A sender that triggers this stop.
    pub fn sender(&self) -> Sender<()> {
        self.sender.clone()
    }

    /// Blocks until a stop is requested.
    pub fn wait_until_requested(&self) {
        // `self.sender` lives as long as `self`, so this never returns an
        // error.
        let _ = self.receiver.recv();
    }

    /// Waits up to `timeout`; true when a stop was requested.
    fn wait(&self, timeout: Duration) -> bool {
        !matches!(
            self.receiver.recv_timeout(timeout),
            Err(RecvTimeoutError::Timeout)
        )
    }
}

/// Obtains a token valid for at least `valid_for` more seconds when the
/// component can exchange for one (see [`Client::token_valid_for`]; 0: any
/// valid token) and writes it; the written token.
pub fn refresh_once(
    client: &Client,
    writer: &ProfileWriter,
    valid_for: u32,
) -> Result<AccessToken, SyncError> {
    let token = client.token_valid_for(valid_for)?;
    writer.write_token(&token)?;
    Ok(token)
}

/// What to ask for at `next`, the refresh time of a token that expires at
/// `expires_at`: a second more than it will have left then, so that the
/// component refreshes it early.
pub fn wanted_validity(next: u64, expires_at: u64) -> u32 {
    u32::try_from(expires_at.saturating_sub(next).saturating_add(1)).unwrap_or(u32::MAX)
}

/// Keeps the profile fresh until `stop` is triggered. The profile must
/// have been prepared ([`ProfileWriter::prepare`]).
pub fn run(client: &Client, writer: &ProfileWriter, stop: &Stop) {
    let path = writer.credentials_path();
    let mut failures = 0u32;
    let mut written = false;
    let mut valid_for = 0;
    loop {
        let wait = match refresh_once(client, writer, valid_for) {
            Ok(token) => {
                if failures > 0 {
                    eprintln!(
                        "wif-host: sync: refreshed {} after {failures} failed tries",
                        path.display()
                    );
                }
                failures = 0;
                written = true;
                let now = SystemClock.now().as_secs();
                let next = refresh_at(now, token.expires_at);
                valid_for = wanted_validity(next, token.expires_at);
                tracing::info!(
                    expires_in = token.expires_at.saturating_sub(now),
                    next_refresh_in = next - now,
                    "credentials file written"
                );
                Duration::from_secs((next - now).max(1))
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                let delay = retry_delay(failures);
                let kept = if written {
                    "keeping the last good file"
                } else {
                    "nothing written yet"
                };
                eprintln!(
                    "wif-host: sync: refresh of {} failed: {error}; {kept}; retrying in {} s",
                    path.display(),
                    delay.as_secs()
                );
                delay
            }
        };
        if stop.wait(wait) {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
