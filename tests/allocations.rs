//! Heap allocations per GET in the master's router and the auxiliary's data server, counted on
//! the calling thread by `allocation-counter`'s global allocator (a current-thread runtime runs
//! both sides of the in-memory network inline): the logic of the data path, without the
//! wire's framing.
#![allow(clippy::unwrap_used)]

mod memnet;

use bytes::Bytes;
use std::sync::Arc;
use tiercache_auxiliary::peers::MemPeers;
use tiercache_master::{ReadResult, Router};

/// What one GET of a present key costs in allocations, on both sides: its value, copied once.
#[test]
fn a_get_allocates_a_bounded_handful_on_both_sides() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (r, key) = rt.block_on(setup());
    const N: u64 = 10_000;
    let info = allocation_counter::measure(|| {
        rt.block_on(async {
            for _ in 0..N {
                std::hint::black_box(r.get(key.clone()).await.unwrap());
            }
        })
    });
    let per_get = info.count_total as f64 / N as f64;
    println!("allocations per GET (router and data server, no wire): {per_get:.4}");
    assert!(per_get > 0.0, "the counting allocator is not installed");
    // One: the value copied out of the store, which is the reply (heaptrack). Plus now and then
    // a buffer that grows once (1.0001 over 10,000 GETs). It was six, then four once the read
    // stopped sharing its request when it asks one owner inline and stopped copying the answers
    // into a list of its own, then one once the owners' list and the answers live on the stack
    // and the newest answer is moved out instead of cloned (a clone of a `Bytes` made from a
    // `Vec` allocates its shared header). A second is a regression.
    assert!(per_get < 1.1, "{per_get} allocations per GET, more than the one of before");
}

async fn setup() -> (Router<memnet::Net>, Bytes) {
    let net = Arc::new(MemPeers::default());
    for id in ["a", "b", "c"] {
        memnet::aux(&net, id);
    }
    let r = memnet::router(&net, &["a", "b", "c"], 1, 1);
    let key = Bytes::from_static(b"key:000042");
    r.put(key.clone(), Bytes::from(vec![b'x'; 100]), 0).await.unwrap();
    for _ in 0..1000 {
        assert!(matches!(r.get(key.clone()).await.unwrap(), ReadResult::Hit(_)));
    }
    (r, key)
}
