//! The connections being served, counted so that a stopping gateway can
//! wait for them.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

/// A count of connections in flight.
#[derive(Default)]
pub struct InFlight {
    count: Mutex<usize>,
    changed: Condvar,
}

impl InFlight {
    /// Counts one more connection until the returned guard is dropped.
    pub fn enter(self: &Arc<Self>) -> Served {
        *self.count.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        Served {
            in_flight: self.clone(),
        }
    }

    /// Waits until no connection is in flight, at most `grace`; how many
    /// still are.
    pub fn wait_idle(&self, grace: Duration) -> usize {
        let count = self.count.lock().unwrap_or_else(PoisonError::into_inner);
        let (count, _) = self
            .changed
            .wait_timeout_while(count, grace, |count| *count > 0)
            .unwrap_or_else(PoisonError::into_inner);
        *count
    }
}

/// One connection in flight; dropping it ends it.
pub struct Served {
    in_flight: Arc<InFlight>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let mut count = self
            .in_flight
            .count
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *count -= 1;
        self.in_flight.changed.notify_all();
    }
}
