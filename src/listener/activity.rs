//! What one connection is doing — waiting for a request head, serving a request, or idling
//! between requests — and `Activity::expired`, the timer that says when a wait lasted too long.
//! The connection's IO reports reads, its service reports requests, and each response body
//! holds an `InFlight` guard until hyper has sent it (an event stream can stay open for hours
//! and is never idle).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

/// What a connection is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The rest of a request head: since accept, or since the first byte after idling.
    Head,
    /// Nothing: a request is being served, from its complete head until its response ended.
    Busy,
    /// The next request: the last response ended and no byte has come since.
    Idle,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    since: Instant,
    in_flight: usize,
}

/// One connection's activity.
#[derive(Debug)]
pub struct Activity {
    state: Mutex<State>,
    /// `phase == Idle`, readable without the lock: every read checks it.
    idle: AtomicBool,
    /// A request after an idle pause is to be taken from hyper (see `connection::TrackedIo`).
    handover: AtomicBool,
}

impl Activity {
    /// A connection just accepted: waiting for its first request head.
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            state: Mutex::new(State {
                phase: Phase::Head,
                since: Instant::now(),
                in_flight: 0,
            }),
            idle: AtomicBool::new(false),
            handover: AtomicBool::new(false),
        })
    }

    /// Whether the connection is between requests (the last response ended, no byte since).
    pub fn is_idle(&self) -> bool {
        self.idle.load(Ordering::Acquire)
    }

    /// Asks the connection's task to end hyper's part; the caller wakes the task.
    pub fn want_handover(&self) {
        self.handover.store(true, Ordering::Release);
    }

    /// Resolves once `want_handover` was called (looked at whenever the connection's task runs).
    pub fn handover_wanted(&self) -> impl std::future::Future<Output = ()> + '_ {
        std::future::poll_fn(|_| match self.handover.swap(false, Ordering::AcqRel) {
            true => std::task::Poll::Ready(()),
            false => std::task::Poll::Pending,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Lock: per connection, held for a field update only.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn enter(&self, state: &mut State, phase: Phase) {
        state.phase = phase;
        state.since = Instant::now();
        self.idle.store(phase == Phase::Idle, Ordering::Release);
    }

    /// Bytes arrived: an idle connection has started its next request head.
    pub fn read(&self) {
        if self.idle.load(Ordering::Acquire) {
            let mut s = self.lock();
            if s.phase == Phase::Idle {
                self.enter(&mut s, Phase::Head);
            }
        }
    }

    /// A request head is complete: busy until the returned guard is dropped (with the
    /// response body, once it has been sent).
    pub fn request(self: &Arc<Self>) -> InFlight {
        let mut s = self.lock();
        s.in_flight += 1;
        if s.phase != Phase::Busy {
            self.enter(&mut s, Phase::Busy);
        }
        InFlight(self.clone())
    }

    /// Resolves with the phase that lasted longer than its limit (`header` for `Head`, `idle`
    /// for `Idle`); never while busy.
    ///
    /// No phase change wakes it (that cost a wake-up and a timer per request): it sleeps at
    /// most the shorter limit at a time and reads the state afresh when it wakes. A phase
    /// entered after it last looked ends no earlier than that look plus the shorter limit, so
    /// the wake-up is never later than the true deadline, and never acts before it.
    pub async fn expired(&self, header: Duration, idle: Duration) -> Phase {
        let shortest = header.min(idle);
        loop {
            let now = Instant::now();
            let (phase, since) = {
                let s = self.lock();
                (s.phase, s.since)
            };
            let limit = match phase {
                Phase::Head => Some(header),
                Phase::Idle => Some(idle),
                Phase::Busy => None,
            };
            let deadline = limit.and_then(|l| since.checked_add(l));
            if deadline.is_some_and(|d| d <= now) {
                return phase;
            }
            let look_again = now.checked_add(shortest);
            let wake = match (deadline, look_again) {
                (Some(d), Some(l)) => d.min(l),
                (d, l) => match d.or(l) {
                    Some(w) => w,
                    // Limits too long to represent: nothing ever expires.
                    None => return std::future::pending().await,
                },
            };
            tokio::time::sleep_until(wake).await;
        }
    }
}

/// A request being served; dropped when its response has been sent (or abandoned).
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        if s.in_flight == 0 {
            self.0.enter(&mut s, Phase::Idle);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: Duration = Duration::from_secs(3);
    const IDLE: Duration = Duration::from_secs(10);

    /// Whether `expired` resolves within `d` of virtual time.
    async fn expires_within(a: &Activity, d: Duration) -> Option<Phase> {
        tokio::time::timeout(d, a.expired(HEADER, IDLE)).await.ok()
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_expires_after_the_header_timeout() {
        let a = Activity::new();
        assert_eq!(
            expires_within(&a, HEADER - Duration::from_millis(1)).await,
            None
        );
        assert_eq!(
            expires_within(&a, Duration::from_millis(2)).await,
            Some(Phase::Head)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn trickled_bytes_do_not_extend_the_header_timeout() {
        let a = Activity::new();
        let timer = tokio::spawn({
            let a = a.clone();
            async move { a.expired(HEADER, IDLE).await }
        });
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            a.read();
        }
        let phase = tokio::time::timeout(Duration::from_millis(501), timer).await;
        assert_eq!(phase.ok().and_then(Result::ok), Some(Phase::Head));
    }

    #[tokio::test(start_paused = true)]
    async fn busy_never_expires_then_idle_and_the_next_head_have_their_own_limits() {
        let a = Activity::new();
        let in_flight = a.request();
        assert_eq!(expires_within(&a, Duration::from_secs(3600)).await, None);
        drop(in_flight);
        assert_eq!(
            expires_within(&a, IDLE - Duration::from_millis(1)).await,
            None
        );
        a.read();
        // The first byte of the next request: the header limit counts from here.
        assert_eq!(
            expires_within(&a, HEADER - Duration::from_millis(1)).await,
            None
        );
        assert_eq!(
            expires_within(&a, Duration::from_millis(2)).await,
            Some(Phase::Head)
        );
        let _again = a.request();
        drop(a.request());
        assert_eq!(
            expires_within(&a, Duration::from_secs(3600)).await,
            None,
            "busy while any request is in flight"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_expires_after_the_idle_timeout() {
        let a = Activity::new();
        drop(a.request());
        assert_eq!(
            expires_within(&a, IDLE + Duration::from_millis(1)).await,
            Some(Phase::Idle)
        );
    }
}
