//! Logging that an outage cannot flood: the first occurrence of a message
//! is logged at once, repeats within an interval are only counted, and the
//! next occurrence after the interval is logged with that count. A
//! database outage under load would otherwise write a line per failed
//! request, hundreds of thousands a minute.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Distinct messages remembered; beyond it the memory is cleared, so
/// messages that carry ever-changing text cannot grow it without bound.
const MAX_KEYS: usize = 256;

pub struct Throttle {
    interval: Duration,
    seen: Mutex<HashMap<String, Seen>>,
}

struct Seen {
    logged_at: Instant,
    suppressed: u64,
}

impl Throttle {
    pub fn new(interval: Duration) -> Self {
        Throttle {
            interval,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(n)` when `message` should be logged now, `n` being how many
    /// times it was suppressed since it was last logged; `None` to skip it.
    pub fn admit(&self, message: &str) -> Option<u64> {
        let now = Instant::now();
        let mut seen = match self.seen.lock() {
            Ok(seen) => seen,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(entry) = seen.get_mut(message) {
            if now.duration_since(entry.logged_at) < self.interval {
                entry.suppressed += 1;
                return None;
            }
            let suppressed = entry.suppressed;
            entry.logged_at = now;
            entry.suppressed = 0;
            return Some(suppressed);
        }
        if seen.len() >= MAX_KEYS {
            seen.clear();
        }
        seen.insert(
            message.to_string(),
            Seen {
                logged_at: now,
                suppressed: 0,
            },
        );
        Some(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_within_the_interval_are_counted_and_reported_later() {
        let t = Throttle::new(Duration::from_millis(50));
        assert_eq!(t.admit("disk full"), Some(0));
        assert_eq!(t.admit("disk full"), None);
        assert_eq!(t.admit("disk full"), None);
        assert_eq!(t.admit("other"), Some(0));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(t.admit("disk full"), Some(2));
        assert_eq!(t.admit("disk full"), None);
    }
}
