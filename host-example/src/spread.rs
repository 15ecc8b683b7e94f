//! Refreshes spread across a fleet: processes that started together must
//! not all ask for a new token in the same second.
//!
//! The component says from when a token should be refreshed
//! (`refresh_after`) and by when it must be (`refresh_by`, the start of the
//! mandatory window). Each process draws, once, a share of that interval and
//! keeps serving its token until `refresh_after` plus that share of the
//! first half of the interval. The second half stays for retries after a
//! failed refresh (the component's backoff), so the spread never costs a
//! token. After a failed refresh the retry is spread the same way over what
//! is left.

use std::hash::{BuildHasher, Hasher};

use crate::token::AccessToken;

/// The denominator of [`RefreshSpread`]'s share.
const ONE: u64 = 1 << 16;

/// A process's place in the refresh interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshSpread {
    /// Out of [`ONE`], the share of half the interval to wait.
    share: u64,
}

impl RefreshSpread {
    /// A share drawn at random (from the OS's randomness, through the
    /// standard library's hash seeds).
    pub fn random() -> RefreshSpread {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(0);
        RefreshSpread::of(hasher.finish() as f64 / u64::MAX as f64)
    }

    /// No spread: ask at `refresh_after`, as a single process should.
    pub fn none() -> RefreshSpread {
        RefreshSpread { share: 0 }
    }

    /// A share of `fraction` (0 to 1; out-of-range values are clamped) of
    /// half the interval; for simulations and tests.
    pub fn of(fraction: f64) -> RefreshSpread {
        let share = (fraction.clamp(0.0, 1.0) * (ONE - 1) as f64) as u64;
        RefreshSpread { share }
    }

    /// Whether this process serves `token` at `now` (Unix seconds) without
    /// asking the component: the one rule of every cache that hands out
    /// tokens (the provider's own, the token cache on disk, the CLI's fast
    /// path).
    pub fn serves(&self, token: &AccessToken, now: u64) -> bool {
        now < self.serve_until(token)
    }

    /// Until when (Unix seconds) this process serves `token` without asking
    /// the component.
    fn serve_until(&self, token: &AccessToken) -> u64 {
        self.between(token.refresh_after, token.refresh_by)
    }

    /// This process's moment (Unix seconds) between a token's
    /// `refresh_after` and `refresh_by`.
    pub fn between(&self, refresh_after: u64, refresh_by: u64) -> u64 {
        let interval = u128::from(refresh_by.saturating_sub(refresh_after));
        let wait = interval * u128::from(self.share) / u128::from(2 * ONE);
        // `wait` is at most half the interval, so it fits; the sum saturates
        // on times from a corrupt file.
        refresh_after.saturating_add(u64::try_from(wait).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{AssertionFingerprint, Secret};

    fn token(refresh_after: u64, refresh_by: u64) -> AccessToken {
        AccessToken {
            token: Secret::new("sk-ant-oat01-x"),
            token_type: "Bearer",
            expires_at: refresh_by + 30,
            refresh_after,
            refresh_by,
            issued_at: 0,
            assertion: AssertionFingerprint::from_hex(&"00".repeat(32)).unwrap(),
        }
    }

    #[test]
    fn the_spread_stays_in_the_first_half_of_the_interval() {
        let t = token(3480, 3570);
        assert_eq!(RefreshSpread::none().serve_until(&t), 3480);
        assert_eq!(RefreshSpread::of(0.5).serve_until(&t), 3502);
        assert_eq!(RefreshSpread::of(1.0).serve_until(&t), 3524);
        assert_eq!(RefreshSpread::of(7.0), RefreshSpread::of(1.0));
        assert_eq!(RefreshSpread::of(-1.0), RefreshSpread::none());
        assert_eq!(RefreshSpread::of(1.0).serve_until(&token(10, 5)), 10);
    }

    #[test]
    fn a_token_is_served_until_its_moment_and_not_at_it() {
        let t = token(3480, 3570);
        assert!(RefreshSpread::none().serves(&t, 3479));
        assert!(!RefreshSpread::none().serves(&t, 3480));
        assert!(RefreshSpread::of(1.0).serves(&t, 3523));
        assert!(!RefreshSpread::of(1.0).serves(&t, 3524));
    }

    #[test]
    fn times_at_the_end_of_the_range_do_not_overflow() {
        let until = RefreshSpread::of(1.0).between(u64::MAX - 10, u64::MAX);
        assert_eq!(until, u64::MAX - 6);
        let until = RefreshSpread::of(1.0).between(0, u64::MAX);
        assert!((u64::MAX / 2 - u64::MAX / 100_000..=u64::MAX / 2).contains(&until));
    }

    #[test]
    fn random_shares_differ_and_cover_the_interval() {
        let t = token(0, 90_000);
        let until: Vec<u64> = (0..64)
            .map(|_| RefreshSpread::random().serve_until(&t))
            .collect();
        assert!(until.iter().all(|&u| u < 45_000), "{until:?}");
        assert!(until.iter().any(|&u| u < 22_500), "{until:?}");
        assert!(until.iter().any(|&u| u >= 22_500), "{until:?}");
    }
}
