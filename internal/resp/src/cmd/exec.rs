//! EXEC: runs the commands queued since MULTI as one transaction. Every key they name (and
//! every watched key) must belong to one hash group (Redis Cluster's rule: the same hash tag,
//! or the same key), so that one primary owns them all whatever joins or fails; otherwise
//! `-CROSSSLOT`, as Redis Cluster answers. The commands run against what the primary holds
//! and the primary commits their writes only if none of the keys changed meanwhile
//! (`master::tx`); on a conflict they run again from the new state, so the replies are those
//! of one isolated run. A watched key that changed answers a null array instead.

use super::{cluster_error, Command, Ctx, Reply};
use crate::Watched;
use bytes::Bytes;
use redis_protocol::resp2::types::BytesFrame;
use std::sync::Arc;
use tiercache_master::tx::Committed;

/// Runs before giving up with `TRYAGAIN` when other writers keep changing the keys.
const ATTEMPTS: usize = 64;

pub(super) struct Exec;

impl Exec {
    pub(super) fn parse(_: &[Bytes]) -> Result<Self, Reply> {
        Ok(Exec)
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        let Some(queued) = ctx.session.multi.take() else { return super::err("EXEC without MULTI") };
        let watched = std::mem::take(&mut ctx.session.watched);
        if std::mem::take(&mut ctx.session.multi_dirty) {
            return BytesFrame::Error("EXECABORT Transaction discarded because of previous errors.".into());
        }
        match transaction(ctx, &queued, &watched).await {
            Outcome::Replies(replies) => BytesFrame::Array(replies),
            Outcome::Aborted => {
                ctx.session.null_array = true;
                BytesFrame::Null
            }
            Outcome::Failed(e) => e,
        }
    }
}

/// How a transaction ended.
pub(super) enum Outcome {
    /// It ran: each command's reply.
    Replies(Vec<Reply>),
    /// A watched key changed: nothing ran.
    Aborted,
    /// Nothing ran: keys of several groups, or the cluster failed; the error to answer.
    Failed(Reply),
}

/// A command that reads and writes together (RENAME, COPY, MSETNX, SETRANGE, INCRBYFLOAT)
/// runs as a transaction of its own: `Some(reply)` once it ran so, `None` when it already
/// runs inside one (its caller then works on the transaction's keys directly).
pub(super) async fn alone(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Option<Reply> {
    if ctx.session.tx.is_some() {
        return None;
    }
    let me = Command::new(args.iter().cloned().collect());
    Some(match transaction(ctx, std::slice::from_ref(&me), &[]).await {
        Outcome::Replies(mut replies) => replies.pop().unwrap_or(BytesFrame::Null),
        Outcome::Aborted => BytesFrame::Null,
        Outcome::Failed(e) => e,
    })
}

/// The reply when keys of one transaction or command belong to different hash groups.
pub(super) fn cross_slot() -> Reply {
    BytesFrame::Error("CROSSSLOT Keys in request don't hash to the same slot".into())
}

/// Runs `commands` as one transaction.
pub(super) async fn transaction(ctx: &mut Ctx<'_>, commands: &[Command], watched: &[Watched]) -> Outcome {
    let mut keys: Vec<Bytes> = Vec::new();
    for key in commands.iter().flat_map(Command::keys).chain(watched.iter().map(|w| &w.key)) {
        if !keys.contains(key) {
            keys.push(key.clone());
        }
    }
    let state = ctx.state;
    if keys.is_empty() {
        return Outcome::Replies(run_each(ctx, commands).await);
    }
    if !state.router.same_group(&keys) {
        return Outcome::Failed(cross_slot());
    }
    for _ in 0..ATTEMPTS {
        let read = match state.router.tx_read(&keys).await {
            Ok(read) => read,
            Err(e) => return Outcome::Failed(cluster_error(e)),
        };
        if watched.iter().any(|w| w.primary != read.primary() || w.stamp != read.stamp(&w.key)) {
            return Outcome::Aborted;
        }
        let overlay = Arc::new(parking_lot::Mutex::new(read.overlay()));
        ctx.session.tx = Some(overlay.clone());
        let replies = run_each(ctx, commands).await;
        ctx.session.tx = None;
        let overlay = std::mem::take(&mut *overlay.lock());
        match state.router.tx_commit(read, &overlay).await {
            Ok(Committed::Done(versions)) => {
                let mut floors = ctx.session.floors.lock();
                for (key, version) in &versions {
                    floors.note(key, *version);
                }
                return Outcome::Replies(replies);
            }
            Ok(Committed::Conflict) => continue,
            Err(e) => return Outcome::Failed(cluster_error(e)),
        }
    }
    Outcome::Failed(BytesFrame::Error("TRYAGAIN the transaction's keys kept changing; try again".into()))
}

/// Runs each command in turn, each through its own file; their replies in order.
async fn run_each(ctx: &mut Ctx<'_>, commands: &[Command]) -> Vec<Reply> {
    let mut replies = Vec::with_capacity(commands.len());
    for c in commands {
        replies.push(Box::pin(super::run(ctx.state, ctx.front, ctx.session, c.clone())).await);
    }
    replies
}
