//! The calls in flight on one connection: a table of reusable slots, one per call, that the
//! connection's reader fills by request id. A call takes a slot (no allocation once the table
//! has grown to the connection's load), its id names the slot and the slot's generation, and
//! it waits on the slot; an answer whose generation is stale (its call gave up) is dropped.
//! Deadlines are kept in the slots and checked by the connection's one timer
//! ([`Slots::expire`]), not by a timer per call.

use parking_lot::Mutex;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use tiercache_protocol::Response;

/// Calls one connection carries at once; past it a call fails at once (see
/// [`crate::WireError::Busy`]) instead of queueing behind a slow auxiliary.
pub const MAX_IN_FLIGHT: usize = 4096;

enum State {
    Free,
    Waiting {
        waker: Option<Waker>,
        deadline_ms: u64,
        sent_ms: u64,
    },
    Answered(Response),
    TimedOut,
    /// The connection ended before the answer came.
    Closed,
}

struct Slot {
    /// Bumped each time the slot is freed, so a late answer to an earlier call is told apart.
    generation: u32,
    state: State,
}

#[derive(Default)]
struct Table {
    slots: Vec<Slot>,
    free: Vec<u32>,
    waiting: usize,
    /// The connection ended: no call starts on it any more.
    closed: bool,
}

/// The slots of one connection.
#[derive(Default)]
pub struct Slots(Mutex<Table>);

/// How a call ended, short of an answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// Past its deadline.
    TimedOut,
    /// The connection ended.
    Closed,
    /// [`MAX_IN_FLIGHT`] calls wait already.
    Full,
}

impl Slots {
    /// Takes a slot for a call sent at `sent_ms` that gives up at `deadline_ms`: its request
    /// id, and whether it is the only call waiting now. Refused when [`MAX_IN_FLIGHT`] calls
    /// wait already ([`Ended::Full`]) or the connection ended ([`Ended::Closed`]).
    pub fn take(&self, sent_ms: u64, deadline_ms: u64) -> Result<(u64, bool), Ended> {
        let mut t = self.0.lock();
        if t.closed {
            return Err(Ended::Closed);
        }
        let index = match t.free.pop() {
            Some(i) => i as usize,
            None if t.slots.len() < MAX_IN_FLIGHT => {
                // Generation 1 on: id 0 stays the pings', which match no call.
                t.slots.push(Slot { generation: 1, state: State::Free });
                t.slots.len() - 1
            }
            None => return Err(Ended::Full),
        };
        t.waiting += 1;
        let first = t.waiting == 1;
        let slot = &mut t.slots[index];
        slot.state = State::Waiting { waker: None, deadline_ms, sent_ms };
        Ok(((u64::from(slot.generation) << 32) | index as u64, first))
    }

    /// Stores the answer to request `id`; false when no call waits for it (it gave up).
    pub fn answer(&self, id: u64, resp: Response) -> bool {
        let mut t = self.0.lock();
        let (index, generation) = ((id & 0xffff_ffff) as usize, (id >> 32) as u32);
        let Some(slot) = t.slots.get_mut(index) else { return false };
        if slot.generation != generation || !matches!(slot.state, State::Waiting { .. }) {
            return false;
        }
        if let State::Waiting { waker: Some(w), .. } = std::mem::replace(&mut slot.state, State::Answered(resp)) {
            w.wake();
        }
        t.waiting -= 1;
        true
    }

    /// Ends every call past its deadline at `now_ms`. True when one of them was sent at or
    /// after `heard_ms`, the last time anything arrived (the connection has been silent
    /// since: it is replaced, not reused).
    pub fn expire(&self, now_ms: u64, heard_ms: u64) -> bool {
        let mut t = self.0.lock();
        if t.waiting == 0 {
            return false;
        }
        let mut silent = false;
        let mut ended = 0;
        for slot in &mut t.slots {
            if let State::Waiting { deadline_ms, sent_ms, .. } = slot.state {
                if deadline_ms <= now_ms {
                    silent |= heard_ms <= sent_ms;
                    if let State::Waiting { waker: Some(w), .. } = std::mem::replace(&mut slot.state, State::TimedOut) {
                        w.wake();
                    }
                    ended += 1;
                }
            }
        }
        t.waiting -= ended;
        silent
    }

    /// Ends every waiting call, and refuses new ones: the connection is gone.
    pub fn close_all(&self) {
        let mut t = self.0.lock();
        t.closed = true;
        for slot in &mut t.slots {
            if matches!(slot.state, State::Waiting { .. }) {
                if let State::Waiting { waker: Some(w), .. } = std::mem::replace(&mut slot.state, State::Closed) {
                    w.wake();
                }
            }
        }
        t.waiting = 0;
    }

    /// Calls waiting for an answer.
    pub fn waiting(&self) -> usize {
        self.0.lock().waiting
    }

    fn poll(&self, id: u64, cx: &mut Context<'_>) -> Poll<Result<Response, Ended>> {
        let mut t = self.0.lock();
        let index = (id & 0xffff_ffff) as usize;
        let slot = &mut t.slots[index];
        let out = match &mut slot.state {
            State::Waiting { waker, .. } => {
                if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *waker = Some(cx.waker().clone());
                }
                return Poll::Pending;
            }
            State::Free => Err(Ended::Closed),
            State::TimedOut => Err(Ended::TimedOut),
            State::Closed => Err(Ended::Closed),
            State::Answered(_) => match std::mem::replace(&mut slot.state, State::Free) {
                State::Answered(r) => Ok(r),
                _ => unreachable!("matched above"),
            },
        };
        Self::release(&mut t, index);
        Poll::Ready(out)
    }

    fn release(t: &mut Table, index: usize) {
        let slot = &mut t.slots[index];
        if matches!(slot.state, State::Waiting { .. }) {
            t.waiting -= 1;
        }
        slot.state = State::Free;
        slot.generation = slot.generation.wrapping_add(1).max(1);
        t.free.push(index as u32);
    }

    /// Waits for the answer to the call `id` ([`Slots::take`]).
    pub fn wait(&self, id: u64) -> Reply<'_> {
        Reply { slots: self, id, done: false }
    }
}

/// The answer to one call; dropping it gives the call up and frees its slot.
pub struct Reply<'a> {
    slots: &'a Slots,
    id: u64,
    done: bool,
}

impl Future for Reply<'_> {
    type Output = Result<Response, Ended>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let out = self.slots.poll(self.id, cx);
        if out.is_ready() {
            self.done = true;
        }
        out
    }
}

impl Drop for Reply<'_> {
    fn drop(&mut self) {
        if !self.done {
            let mut t = self.slots.0.lock();
            Slots::release(&mut t, (self.id & 0xffff_ffff) as usize);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[test]
    fn an_answer_reaches_its_call_and_a_late_one_is_dropped() {
        let slots = Slots::default();
        let (a, first) = slots.take(1, 100).unwrap();
        assert!(first);
        let (b, first) = slots.take(1, 100).unwrap();
        assert!(!first);
        assert!(slots.answer(b, Response::Pong));
        assert_eq!(slots.wait(b).now_or_never(), Some(Ok(Response::Pong)));
        // `a` gives up; its slot is reused with a new generation, so its answer is dropped.
        drop(slots.wait(a));
        let (c, _) = slots.take(2, 100).unwrap();
        assert_eq!(c & 0xffff_ffff, a & 0xffff_ffff);
        assert_ne!(c, a);
        assert!(!slots.answer(a, Response::Pong));
        let mut waiting = slots.wait(c);
        assert!((&mut waiting).now_or_never().is_none(), "still waiting");
        assert_eq!(slots.waiting(), 1);
        drop(waiting);
        assert_eq!(slots.waiting(), 0);
    }

    #[test]
    fn deadlines_and_a_closed_connection_end_the_calls() {
        let slots = Slots::default();
        let (early, _) = slots.take(5, 10).unwrap();
        let (late, _) = slots.take(5, 50).unwrap();
        // Heard after both were sent: slow, not silent.
        assert!(!slots.expire(20, 6));
        assert_eq!(slots.wait(early).now_or_never(), Some(Err(Ended::TimedOut)));
        let mut late = slots.wait(late);
        assert!((&mut late).now_or_never().is_none());
        let (third, _) = slots.take(30, 40).unwrap();
        // Nothing heard since it was sent: silent.
        assert!(slots.expire(45, 4));
        assert_eq!(slots.wait(third).now_or_never(), Some(Err(Ended::TimedOut)));
        slots.close_all();
        assert_eq!(late.now_or_never(), Some(Err(Ended::Closed)));
        assert_eq!(slots.waiting(), 0);
    }

    #[test]
    fn past_the_bound_a_call_is_refused_at_once() {
        let slots = Slots::default();
        for _ in 0..MAX_IN_FLIGHT {
            slots.take(0, 10).unwrap();
        }
        assert_eq!(slots.take(0, 10), Err(Ended::Full));
        slots.close_all();
        assert_eq!(slots.take(0, 10), Err(Ended::Closed));
    }
}
