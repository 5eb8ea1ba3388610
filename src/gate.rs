//! A fair concurrency gate: at most `limit` permits out at once; the excess waits in a bounded
//! queue, one FIFO per owner (a session), served round-robin between owners so that one owner
//! with many requests cannot starve another with few. Plain data behind one mutex; no I/O.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

/// Caps the requests in flight (at one child) and queues the excess fairly.
pub struct Gate {
    /// Permits out at once; 0 means no cap.
    limit: usize,
    /// Waiters allowed at once, all owners together; beyond it `acquire` refuses.
    max_waiting: usize,
    state: Mutex<State>,
}

/// A slot of the gate, given back when dropped.
pub struct Permit {
    gate: Arc<Gate>,
}

/// The gate's waiting queue is full: the request is refused rather than queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateFull;

impl fmt::Display for GateFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("too many requests waiting")
    }
}

impl std::error::Error for GateFull {}

#[derive(Default)]
struct State {
    /// Permits out, including those just handed to a waiter that has not run yet.
    running: usize,
    /// Waiters in all queues.
    waiting: usize,
    next_ticket: u64,
    /// Each owner's waiters, oldest first; an owner is here only while it has waiters.
    queues: HashMap<Arc<str>, VecDeque<Waiter>>,
    /// The owners with waiters, in the order they are served (round-robin).
    turn: VecDeque<Arc<str>>,
}

/// A queued `acquire`. A oneshot per waiter rather than a shared `Notify`: the gate itself
/// picks who gets a freed slot (round-robin, under the lock) and the slot changes hands without
/// ever being free, so a newcomer cannot take it first and the order is the gate's, not the
/// scheduler's.
struct Waiter {
    ticket: u64,
    granted: oneshot::Sender<()>,
}

impl Gate {
    /// A gate letting `limit` permits out at once (0: no cap) and queueing at most
    /// `max_waiting` more.
    pub fn new(limit: usize, max_waiting: usize) -> Arc<Gate> {
        Arc::new(Gate {
            limit,
            max_waiting,
            state: Mutex::new(State::default()),
        })
    }

    /// A slot now, or a place at the end of `owner`'s queue and the slot when its turn comes.
    ///
    /// Cancel safe: dropping the future gives up its place, or passes on a slot it was handed
    /// but had not yet taken; nothing leaks and nobody behind it is blocked.
    ///
    /// # Errors
    /// `GateFull` at once when it would have to wait and `max_waiting` requests already do.
    pub async fn acquire(self: &Arc<Self>, owner: &Arc<str>) -> Result<Permit, GateFull> {
        let (ticket, granted) = {
            // Lock: counters and queue operations only; released before waiting.
            let mut state = self.lock();
            if self.limit == 0 || state.running < self.limit {
                debug_assert_eq!(state.waiting, 0, "a free slot is always handed on");
                state.running += 1;
                return Ok(self.permit());
            }
            if state.waiting >= self.max_waiting {
                return Err(GateFull);
            }
            state.push(owner)
        };
        let mut queued = Queued {
            gate: self,
            owner,
            ticket,
            granted,
            done: false,
        };
        // Cancel safety: if this future is dropped while waiting here, `Queued::drop` cleans up.
        let handed = (&mut queued.granted).await;
        queued.done = true;
        handed.expect("a waiter's sender is dropped unsent only by the waiter itself");
        Ok(self.permit())
    }

    /// Requests waiting now.
    pub fn waiting(&self) -> usize {
        self.lock().waiting
    }

    /// Permits out now.
    pub fn running(&self) -> usize {
        self.lock().running
    }

    fn permit(self: &Arc<Self>) -> Permit {
        Permit {
            gate: Arc::clone(self),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        // Lock: one hand-over.
        self.gate.lock().hand_over();
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Permit")
    }
}

/// An `acquire` waiting in a queue; on drop before its turn was taken, it cleans up.
struct Queued<'a> {
    gate: &'a Gate,
    owner: &'a Arc<str>,
    ticket: u64,
    granted: oneshot::Receiver<()>,
    done: bool,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // Lock: hand-overs happen under it too, so the waiter is either still queued or its
        // slot is already in `granted`.
        let mut state = self.gate.lock();
        if !state.remove(self.owner, self.ticket) && self.granted.try_recv().is_ok() {
            state.hand_over();
        }
    }
}

impl State {
    /// Queues a waiter at the end of `owner`'s queue.
    fn push(&mut self, owner: &Arc<str>) -> (u64, oneshot::Receiver<()>) {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let (granted, rx) = oneshot::channel();
        let queue = self.queues.entry(Arc::clone(owner)).or_default();
        if queue.is_empty() {
            self.turn.push_back(Arc::clone(owner));
        }
        queue.push_back(Waiter { ticket, granted });
        self.waiting += 1;
        (ticket, rx)
    }

    /// Takes the next waiter: the oldest of the owner whose turn it is.
    fn pop_next(&mut self) -> Option<Waiter> {
        let owner = self.turn.pop_front()?;
        let queue = self
            .queues
            .get_mut(&owner)
            .expect("an owner in turn has a queue");
        let waiter = queue.pop_front().expect("an owner in turn has waiters");
        if queue.is_empty() {
            self.queues.remove(&owner);
        } else {
            self.turn.push_back(owner);
        }
        self.waiting -= 1;
        Some(waiter)
    }

    /// Removes a waiter that gave up; false if it is no longer queued (it was handed a slot).
    fn remove(&mut self, owner: &Arc<str>, ticket: u64) -> bool {
        let Some(queue) = self.queues.get_mut(owner) else {
            return false;
        };
        let Some(at) = queue.iter().position(|w| w.ticket == ticket) else {
            return false;
        };
        queue.remove(at);
        if queue.is_empty() {
            self.queues.remove(owner);
            self.turn.retain(|o| o != owner);
        }
        self.waiting -= 1;
        true
    }

    /// A permit came back: it goes to the next waiter still there, or its slot frees.
    fn hand_over(&mut self) {
        while let Some(waiter) = self.pop_next() {
            // Fails only if that waiter is gone; then the next one gets the slot.
            if waiter.granted.send(()).is_ok() {
                return;
            }
        }
        self.running -= 1;
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll};

    use super::*;

    type Acquire = Pin<Box<dyn Future<Output = Result<Permit, GateFull>>>>;

    /// An `acquire` by `owner` that must wait, polled once so that it holds its place.
    fn acquire(gate: &Arc<Gate>, owner: &str) -> Acquire {
        let mut f = start(gate, owner);
        assert!(poll(&mut f).is_none(), "{owner} waits");
        f
    }

    fn start(gate: &Arc<Gate>, owner: &str) -> Acquire {
        let (gate, owner) = (Arc::clone(gate), Arc::<str>::from(owner));
        Box::pin(async move { gate.acquire(&owner).await })
    }

    /// Polls once, as an executor would; `None` while it waits.
    fn poll(f: &mut Acquire) -> Option<Result<Permit, GateFull>> {
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(r) => Some(r),
            Poll::Pending => None,
        }
    }

    /// An `acquire` that must answer at once.
    fn now(gate: &Arc<Gate>, owner: &str) -> Result<Permit, GateFull> {
        poll(&mut start(gate, owner)).expect("acquire answers at once")
    }

    #[tokio::test]
    async fn waiters_are_served_fifo_per_owner_and_round_robin_across_owners() {
        // (what, owners queueing one request each in this order, order they are served)
        let cases: &[(&str, &str, &str)] = &[
            ("one owner: first come, first served", "aaa", "a0 a1 a2"),
            (
                "A queued 5, then B 1: B is served second",
                "aaaaab",
                "a0 b0 a1 a2 a3 a4",
            ),
            ("three owners take turns", "aabbcc", "a0 b0 c0 a1 b1 c1"),
            (
                "an owner joining later waits one turn",
                "aaab",
                "a0 b0 a1 a2",
            ),
            ("interleaved arrivals", "abba", "a0 b0 a1 b1"),
        ];
        for (what, owners, want) in cases {
            let gate = Gate::new(1, 100);
            let mut current = now(&gate, "x").unwrap();
            let mut seen = HashMap::<char, usize>::new();
            let mut queued: Vec<(String, Acquire)> = owners
                .chars()
                .map(|o| {
                    let n = seen.entry(o).or_default();
                    *n += 1;
                    (format!("{o}{}", *n - 1), acquire(&gate, &o.to_string()))
                })
                .collect();
            let mut served = Vec::new();
            while !queued.is_empty() {
                drop(current);
                let mut ready = Vec::new();
                for (i, (_, f)) in queued.iter_mut().enumerate() {
                    if let Some(r) = poll(f) {
                        ready.push((i, r.expect("not refused")));
                    }
                }
                assert_eq!(ready.len(), 1, "{what}: one waiter served per freed slot");
                let (i, permit) = ready.pop().expect("one");
                current = permit;
                served.push(queued.remove(i).0);
                assert_eq!(gate.running(), 1, "{what}");
            }
            assert_eq!(served.join(" "), *want, "{what}");
        }
    }

    #[tokio::test]
    async fn the_cap_holds_under_concurrent_tasks() {
        let gate = Gate::new(3, 1000);
        let (in_flight, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let (gate, in_flight, most) = (gate.clone(), in_flight.clone(), most.clone());
                let owner: Arc<str> = format!("s{}", i % 4).into();
                tokio::spawn(async move {
                    let _permit = gate.acquire(&owner).await.unwrap();
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        // One thread: every task runs until its yield, so the cap is reached, and never passed.
        assert_eq!(most.load(Ordering::SeqCst), 3, "the cap");
        assert_eq!((gate.running(), gate.waiting()), (0, 0));
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let gate = Gate::new(1, 2);
        let held = now(&gate, "a").unwrap();
        let mut first = acquire(&gate, "a");
        let _second = acquire(&gate, "b");
        assert_eq!(now(&gate, "c").unwrap_err(), GateFull);
        assert_eq!((gate.running(), gate.waiting()), (1, 2));
        // A place frees when a waiter is served; then there is room again.
        drop(held);
        let _served = poll(&mut first).expect("served").unwrap();
        let _third = acquire(&gate, "c");
        assert_eq!(gate.waiting(), 2);
    }

    #[tokio::test]
    async fn a_dropped_waiter_leaks_no_slot_and_blocks_nobody() {
        let gate = Gate::new(1, 10);
        // Dropped while queued: it loses its place.
        let held = now(&gate, "a").unwrap();
        let gone = acquire(&gate, "a");
        let mut next = acquire(&gate, "b");
        drop(gone);
        assert_eq!(gate.waiting(), 1);
        drop(held);
        let permit = poll(&mut next).expect("served").unwrap();
        // Dropped after being handed the slot but before taking it: the slot moves on.
        let handed = acquire(&gate, "a");
        let mut after = acquire(&gate, "b");
        drop(permit);
        drop(handed);
        let permit = poll(&mut after).expect("served").unwrap();
        drop(permit);
        assert_eq!((gate.running(), gate.waiting()), (0, 0));
        assert!(now(&gate, "c").is_ok(), "the slot is free again");
    }

    #[tokio::test]
    async fn an_unlimited_gate_never_waits() {
        let gate = Gate::new(0, 0);
        let permits: Vec<Permit> = (0..1000).map(|_| now(&gate, "a").unwrap()).collect();
        assert_eq!((gate.running(), gate.waiting()), (1000, 0));
        drop(permits);
        assert_eq!(gate.running(), 0);
    }
}
