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

/// What one GET of a present key costs in allocations, on both sides, with one copy.
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
    // Four (heaptrack: the owners' list and the answers' list on the master, the value copied
    // out of the store for the reply, one more), plus now and then a buffer that grows once
    // (4.0001 over 10,000 GETs). It was six before the read stopped sharing its request when it
    // asks one owner inline and stopped copying the answers into a list of its own. A fifth is
    // a regression; one fewer a step towards issue 19's allocation-free GET (lower this with it).
    assert!(per_get < 4.1, "{per_get} allocations per GET, more than the 4 of before");
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
