//! The one quorum helper, used by every fan-out (reads, writes, deletes): ask owners until
//! enough answers count, and let the slower ones finish in the background.

use crate::peer::Peer;
use crate::view::AuxNode;
use futures::stream::{FuturesUnordered, StreamExt};
use smallvec::SmallVec;
use std::sync::Arc;
use tiercache_protocol::{Request, Response};
use tiercache_wire::WireError;

/// How to ask.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// Answers that must count.
    pub need: usize,
    /// Send to every node at once (writes), or `need` at a time and the next one whenever an
    /// answer fails or does not count (reads).
    pub all_at_once: bool,
    /// A node found down ([`WireError::is_down`]: it refused or closed the connection) lowers
    /// `need`: writes count their quorum among the owners that serve, so one dead owner does
    /// not fail every write. A timeout does not: behind a network cut the owner may still
    /// serve other masters, whose reads must then see the write.
    pub sloppy: bool,
    /// The first node that serves must confirm too (writes: the key's primary, which runs
    /// INCR, SET NX and the other read-modify-write steps, so it must hold every write that
    /// was acknowledged). One that is down passes the duty to the next; one that timed out
    /// fails the write, since it may be running steps for another master.
    pub primary: bool,
}

/// The answers heard, in arrival order: on the stack for up to two owners.
pub(crate) type Answers<P> = SmallVec<[(Arc<AuxNode<P>>, Response); 2]>;

/// What came back.
pub(crate) struct Outcome<P> {
    /// Every answer heard before the quorum was reached, counted or not, in arrival order.
    pub answers: Answers<P>,
    /// Answers that counted.
    pub counted: usize,
    /// The quorum in the end (lowered by unreachable nodes when sloppy).
    pub need: usize,
    /// Failed calls.
    pub errors: Vec<WireError>,
    /// The primary was asked for and failed (not merely unreachable).
    pub primary_failed: bool,
    /// Where in `answers` the primary's confirmation is, when one was asked for and came.
    pub primary: Option<usize>,
}

impl<P> Outcome<P> {
    fn new(answers: Answers<P>, counted: usize, need: usize, errors: Vec<WireError>, duty: Duty) -> Self {
        let primary = match duty {
            Duty::Confirmed(at) => Some(at),
            _ => None,
        };
        Outcome { answers, counted, need, errors, primary_failed: matches!(duty, Duty::Failed), primary }
    }

    /// Enough answers counted (the primary's among them when asked for).
    pub fn reached(&self) -> bool {
        self.counted >= self.need && self.counted > 0 && !self.primary_failed
    }
}

/// What became of each node's call, for following the primary's duty.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Heard {
    Pending,
    /// It answered: its answer's position in the outcome's answers.
    Ok(usize),
    Unreachable,
    Failed,
}

/// Which node owes the primary's confirmation now.
enum Duty {
    /// Node `i`'s answer is awaited.
    Owed(usize),
    /// The node that confirmed: its answer's position in the outcome's answers.
    Confirmed(usize),
    /// Nobody owes it: no primary is followed (reads), or nobody was reachable.
    Done,
    Failed,
}

fn next_duty(heard: &[Heard], from: usize) -> Duty {
    for (i, h) in heard.iter().enumerate().skip(from) {
        match h {
            Heard::Pending => return Duty::Owed(i),
            Heard::Ok(at) => return Duty::Confirmed(*at),
            Heard::Failed => return Duty::Failed,
            Heard::Unreachable => {}
        }
    }
    // Nobody reachable: the quorum itself fails.
    Duty::Done
}

/// Asks `nodes` (in order) per `plan`; `counts` says whether an answer counts toward the
/// quorum (an owner that is recovering is heard but not counted).
pub(crate) async fn try_call_many<P: Peer>(
    nodes: impl IntoIterator<Item = Arc<AuxNode<P>>, IntoIter: ExactSizeIterator>,
    req: Request,
    plan: Plan,
    counts: impl Fn(&AuxNode<P>, &Response) -> bool,
) -> Outcome<P> {
    let mut waiting = nodes.into_iter().enumerate();
    let mut need = plan.need.min(waiting.len());
    // Only writes follow the primary: reads allocate nothing for it.
    let heard_len = if plan.primary { waiting.len() } else { 0 };
    let mut heard: SmallVec<[Heard; 4]> = SmallVec::from_elem(Heard::Pending, heard_len);
    let mut duty = if plan.primary { Duty::Owed(0) } else { Duty::Done };
    let (mut answers, mut errors, mut counted) = (SmallVec::new(), Vec::new(), 0);
    // A lone owner whose answer is not needed (a step's copy to the other owner at
    // WRITE_QUORUM=1) is left to finish in the background below, as any call past the quorum.
    let alone = waiting.len() == 1 && need > 0;
    if alone || (!plan.all_at_once && !plan.primary && need == 1) {
        // The common read, one answer needed, and any call to a lone owner (a write at
        // REPLICAS=1): the first owner is asked inline, with no stream of calls built unless
        // its answer fails or does not count.
        if let Some((_, node)) = waiting.next() {
            match node.call(&req).await {
                Ok(resp) => {
                    if let Some(h) = heard.first_mut() {
                        *h = Heard::Ok(0);
                    }
                    counted += usize::from(counts(&node, &resp));
                    answers.push((node, resp));
                }
                Err(e) => {
                    if req.is_write() {
                        node.note_missed_write();
                    }
                    if let Some(h) = heard.first_mut() {
                        *h = if e.is_down() { Heard::Unreachable } else { Heard::Failed };
                    }
                    errors.push(e);
                }
            }
            if alone || counted == need {
                let duty = if plan.primary { next_duty(&heard, 0) } else { Duty::Done };
                return Outcome::new(answers, counted, need, errors, duty);
            }
        }
    }
    // Shared by the calls from here on, which may finish in the background after the quorum:
    // the common read above needs no shared copy.
    let req = Arc::new(req);
    let launch = |(i, node): (usize, Arc<AuxNode<P>>)| {
        let req = req.clone();
        async move {
            let r = node.call(&req).await;
            // Also for the calls that finish in the background after the quorum.
            if r.is_err() && req.is_write() {
                node.note_missed_write();
            }
            (i, node, r)
        }
    };
    let mut inflight = FuturesUnordered::new();
    if plan.all_at_once || plan.primary {
        inflight.extend(waiting.by_ref().map(launch));
    }
    while counted < need || matches!(duty, Duty::Owed(_)) {
        while inflight.len() + counted < need {
            match waiting.next() {
                Some(n) => inflight.push(launch(n)),
                None => break,
            }
        }
        let Some((i, node, r)) = inflight.next().await else { break };
        match r {
            Ok(resp) => {
                if let Some(h) = heard.get_mut(i) {
                    *h = Heard::Ok(answers.len());
                }
                counted += usize::from(counts(&node, &resp));
                answers.push((node, resp));
            }
            Err(e) => {
                if let Some(h) = heard.get_mut(i) {
                    *h = if e.is_down() { Heard::Unreachable } else { Heard::Failed };
                }
                if plan.sloppy && e.is_down() && need > 1 {
                    need -= 1;
                }
                errors.push(e);
            }
        }
        if let Duty::Owed(j) = duty {
            duty = next_duty(&heard, j);
        }
    }
    if !inflight.is_empty() {
        tokio::spawn(async move { while inflight.next().await.is_some() {} });
    }
    Outcome::new(answers, counted, need, errors, duty)
}
