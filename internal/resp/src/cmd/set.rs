//! SET key value [NX | XX] [GET] [EX s | PX ms | EXAT t | PXAT t | KEEPTTL]. A plain SET is a
//! versioned quorum write; with NX, XX, GET or KEEPTTL it is one step on the key's primary
//! owner (it reads what is there), then replicated.

use super::{apply, bulk, check_key, check_value, default_ttl_ms, err, integer, nil, now_ms, ok, syntax_error, write};
use super::{Ctx, Reply};
use bytes::Bytes;
use tiercache_master::protocol::{Condition, Op};

/// What the expiry options ask for.
#[derive(Clone, Copy)]
enum Expiry {
    Default,
    InMs(u64),
    Keep,
}

struct Options {
    expiry: Expiry,
    condition: Condition,
    get: bool,
}

/// Sets an option that may be given once.
fn once<T>(slot: &mut Option<T>, v: T) -> Result<(), Reply> {
    if slot.replace(v).is_some() {
        Err(syntax_error())
    } else {
        Ok(())
    }
}

/// The time to live an expiry option (`EX`, `PX`, `EXAT`, `PXAT`, any case) gives for `n`
/// (more than 0), in ms from now and at least 1; `None` for another word. SET and GETEX read
/// their options through it.
pub(super) fn expiry_ms(word: &[u8], n: u64) -> Option<u64> {
    let is = |w: &[u8]| word.eq_ignore_ascii_case(w);
    Some(if is(b"EX") {
        n.saturating_mul(1000)
    } else if is(b"PX") {
        n
    } else if is(b"EXAT") {
        n.saturating_mul(1000).saturating_sub(now_ms()).max(1)
    } else if is(b"PXAT") {
        n.saturating_sub(now_ms()).max(1)
    } else {
        return None;
    })
}

/// The options of `SET`, or the reply to send instead.
fn options(options: &[Bytes]) -> Result<Options, Reply> {
    let (mut expiry, mut condition, mut get) = (None, None, false);
    let mut it = options.iter();
    while let Some(opt) = it.next() {
        let is = |w: &[u8]| opt.eq_ignore_ascii_case(w);
        if is(b"NX") {
            once(&mut condition, Condition::IfAbsent)?;
        } else if is(b"XX") {
            once(&mut condition, Condition::IfPresent)?;
        } else if is(b"GET") {
            get = true;
        } else if is(b"KEEPTTL") {
            once(&mut expiry, Expiry::Keep)?;
        } else if expiry_ms(opt, 1).is_some() {
            let n = integer(it.next().ok_or_else(syntax_error)?)?;
            if n <= 0 {
                return Err(err("invalid expire time in 'set' command"));
            }
            let ms = expiry_ms(opt, n as u64).ok_or_else(syntax_error)?;
            once(&mut expiry, Expiry::InMs(ms))?;
        } else {
            return Err(syntax_error());
        }
    }
    Ok(Options { expiry: expiry.unwrap_or(Expiry::Default), condition: condition.unwrap_or(Condition::Always), get })
}

pub(super) struct Set {
    key: Bytes,
    value: Bytes,
    options: Options,
}

impl Set {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Set { key: args[1].clone(), value: args[2].clone(), options: options(&args[3..])? })
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        let Set { key, value, options: o } = self;
        if let Err(e) = check_key(ctx, &key).and_then(|()| check_value(ctx, &value)) {
            return e;
        }
        let ttl_ms = match o.expiry {
            Expiry::Default => default_ttl_ms(ctx),
            Expiry::InMs(ms) => ms,
            Expiry::Keep => 0,
        };
        let keep_ttl = matches!(o.expiry, Expiry::Keep);
        if o.condition == Condition::Always && !o.get && !keep_ttl {
            return match write(ctx, &key, value, ttl_ms).await {
                Ok(()) => ok(),
                Err(e) => e,
            };
        }
        let op = Op::Set { value, ttl_ms, keep_ttl, condition: o.condition };
        match apply(ctx, &key, op).await {
            Ok((previous, _)) if o.get => previous.map_or_else(nil, bulk),
            Ok((_, Some(_))) => ok(),
            Ok((_, None)) => nil(),
            Err(e) => e,
        }
    }
}
