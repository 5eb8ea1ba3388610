//! `Throttle`: at most one log line per interval for an event that can come in floods (20,000
//! connections timing out together must not write 20,000 lines); each line that is written
//! says how many were left out before it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Rate limit of one kind of log line.
#[derive(Debug)]
pub struct Throttle {
    every: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    last: Option<Instant>,
    skipped: u64,
}

impl Throttle {
    /// At most one line per `every`.
    pub const fn new(every: Duration) -> Self {
        Throttle {
            every,
            state: Mutex::new(State {
                last: None,
                skipped: 0,
            }),
        }
    }

    /// `Some(lines left out since the last one)` when a line may be written now; otherwise
    /// counts this one as left out.
    pub fn allow(&self) -> Option<u64> {
        self.allow_at(Instant::now())
    }

    fn allow_at(&self, now: Instant) -> Option<u64> {
        // Lock: a counter update, never held across anything else.
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match s.last {
            Some(last) if now.saturating_duration_since(last) < self.every => {
                s.skipped = s.skipped.saturating_add(1);
                None
            }
            _ => {
                s.last = Some(now);
                Some(std::mem::take(&mut s.skipped))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_counting_the_rest() {
        let t = Throttle::new(Duration::from_secs(10));
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(t.allow_at(at(0)), Some(0), "the first line is written");
        assert_eq!(t.allow_at(at(1)), None);
        assert_eq!(t.allow_at(at(9)), None);
        assert_eq!(
            t.allow_at(at(10)),
            Some(2),
            "then one more, saying 2 were left out"
        );
        assert_eq!(t.allow_at(at(25)), Some(0));
    }
}
