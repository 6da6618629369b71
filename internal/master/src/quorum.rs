//! The one quorum helper, used by every fan-out (reads, writes, deletes): ask owners until
//! enough answers count, and let the slower ones finish in the background.

use crate::peer::Peer;
use crate::view::AuxNode;
use futures::stream::{FuturesUnordered, StreamExt};
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
    /// A node found unreachable lowers `need`: writes count their quorum among the owners that
    /// can answer, so one dead owner does not fail every write.
    pub sloppy: bool,
}

/// What came back.
pub(crate) struct Outcome<P> {
    /// Every answer heard before the quorum was reached, counted or not, in arrival order.
    pub answers: Vec<(Arc<AuxNode<P>>, Response)>,
    /// Answers that counted.
    pub counted: usize,
    /// The quorum in the end (lowered by unreachable nodes when sloppy).
    pub need: usize,
    /// Failed calls.
    pub errors: Vec<WireError>,
}

impl<P> Outcome<P> {
    /// Enough answers counted.
    pub fn reached(&self) -> bool {
        self.counted >= self.need && self.counted > 0
    }
}

/// Asks `nodes` (in order) per `plan`; `counts` says whether an answer counts toward the
/// quorum (an owner that is recovering is heard but not counted).
pub(crate) async fn try_call_many<P: Peer>(
    nodes: Vec<Arc<AuxNode<P>>>,
    req: Arc<Request>,
    plan: Plan,
    counts: impl Fn(&AuxNode<P>, &Response) -> bool,
) -> Outcome<P> {
    let mut need = plan.need.min(nodes.len());
    let launch = |node: Arc<AuxNode<P>>| {
        let req = req.clone();
        async move {
            let r = node.call(&req).await;
            // Also for the calls that finish in the background after the quorum.
            if r.is_err() && req.is_write() {
                node.note_missed_write();
            }
            (node, r)
        }
    };
    let mut waiting = nodes.into_iter();
    let mut inflight = FuturesUnordered::new();
    if plan.all_at_once {
        inflight.extend(waiting.by_ref().map(launch));
    }
    let (mut answers, mut errors, mut counted) = (Vec::new(), Vec::new(), 0);
    while counted < need {
        while inflight.len() + counted < need {
            match waiting.next() {
                Some(n) => inflight.push(launch(n)),
                None => break,
            }
        }
        let Some((node, r)) = inflight.next().await else { break };
        match r {
            Ok(resp) => {
                counted += usize::from(counts(&node, &resp));
                answers.push((node, resp));
            }
            Err(e) => {
                if plan.sloppy && e.is_unreachable() && need > 1 {
                    need -= 1;
                }
                errors.push(e);
            }
        }
    }
    if !inflight.is_empty() {
        tokio::spawn(async move { while inflight.next().await.is_some() {} });
    }
    Outcome { answers, counted, need, errors }
}
