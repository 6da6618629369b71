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

/// What was heard so far, and the quorum it counts toward.
struct Tally<P> {
    answers: Answers<P>,
    errors: Vec<WireError>,
    counted: usize,
    need: usize,
    /// Per node, for following the primary's duty (writes only: empty for reads).
    heard: SmallVec<[Heard; 4]>,
}

impl<P> Tally<P> {
    /// Records node `i`'s answer or failure.
    fn hear(
        &mut self,
        i: usize,
        node: Arc<AuxNode<P>>,
        r: Result<Response, WireError>,
        plan: Plan,
        counts: &impl Fn(&AuxNode<P>, &Response) -> bool,
    ) {
        match r {
            Ok(resp) => {
                if let Some(h) = self.heard.get_mut(i) {
                    *h = Heard::Ok(self.answers.len());
                }
                self.counted += usize::from(counts(&node, &resp));
                self.answers.push((node, resp));
            }
            Err(e) => {
                if let Some(h) = self.heard.get_mut(i) {
                    *h = if e.is_down() { Heard::Unreachable } else { Heard::Failed };
                }
                if plan.sloppy && e.is_down() && self.need > 1 {
                    self.need -= 1;
                }
                self.errors.push(e);
            }
        }
    }

    fn outcome(self, duty: Duty) -> Outcome<P> {
        Outcome::new(self.answers, self.counted, self.need, self.errors, duty)
    }
}

/// One call; a write that fails is noted on the node (also for the calls that finish in the
/// background after the quorum).
async fn call<P: Peer>(node: &Arc<AuxNode<P>>, req: &Request) -> Result<Response, WireError> {
    let r = node.call(req).await;
    if r.is_err() && req.is_write() {
        node.note_missed_write();
    }
    r
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
    // Only writes follow the primary: reads allocate nothing for it.
    let heard_len = if plan.primary { waiting.len() } else { 0 };
    let mut t = Tally {
        answers: SmallVec::new(),
        errors: Vec::new(),
        counted: 0,
        need: plan.need.min(waiting.len()),
        heard: SmallVec::from_elem(Heard::Pending, heard_len),
    };
    let mut duty = if plan.primary { Duty::Owed(0) } else { Duty::Done };
    // A lone owner whose answer is not needed (a step's copy to the other owner at
    // WRITE_QUORUM=1) is left to finish in the background below, as any call past the quorum.
    let alone = waiting.len() == 1 && t.need > 0;
    if alone || (!plan.all_at_once && !plan.primary && t.need == 1) {
        // The common read, one answer needed, and any call to a lone owner (a write at
        // REPLICAS=1): the first owner is asked inline, with no stream of calls built unless
        // its answer fails or does not count.
        if let Some((i, node)) = waiting.next() {
            let r = call(&node, &req).await;
            t.hear(i, node, r, plan, &counts);
            if alone || t.counted == t.need {
                let duty = if plan.primary { next_duty(&t.heard, 0) } else { Duty::Done };
                return t.outcome(duty);
            }
        }
    }
    // Shared by the calls from here on, which may finish in the background after the quorum:
    // the common read above needs no shared copy.
    let req = Arc::new(req);
    let launch = |(i, node): (usize, Arc<AuxNode<P>>)| {
        let req = req.clone();
        async move {
            let r = call(&node, &req).await;
            (i, node, r)
        }
    };
    let mut inflight = FuturesUnordered::new();
    if plan.all_at_once || plan.primary {
        inflight.extend(waiting.by_ref().map(launch));
    }
    while t.counted < t.need || matches!(duty, Duty::Owed(_)) {
        while inflight.len() + t.counted < t.need {
            match waiting.next() {
                Some(n) => inflight.push(launch(n)),
                None => break,
            }
        }
        let Some((i, node, r)) = inflight.next().await else { break };
        t.hear(i, node, r, plan, &counts);
        if let Duty::Owed(j) = duty {
            duty = next_duty(&t.heard, j);
        }
    }
    if !inflight.is_empty() {
        tokio::spawn(async move { while inflight.next().await.is_some() {} });
    }
    t.outcome(duty)
}
