//! The master's data threads: single-threaded runtimes (actix's HTTP workers, one per
//! `DATA_THREADS`) on which both front ends serve clients. A connection stays on the thread
//! it was handed to, and reaches the auxiliaries through that thread's own connections
//! ([`crate::WireConnect`] keeps one client per calling thread), so a request and its answer
//! never cross a thread.

use parking_lot::RwLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::runtime::Handle;

/// The runtimes of the data threads, in the order they started.
#[derive(Default)]
pub struct DataThreads {
    handles: RwLock<Vec<(std::thread::ThreadId, Handle)>>,
    next: AtomicUsize,
}

impl DataThreads {
    /// Registers the calling thread's runtime (called once on each data thread as it
    /// starts; a thread that registers again replaces its entry).
    pub fn register_current(&self) {
        let Ok(handle) = Handle::try_current() else { return };
        let me = std::thread::current().id();
        let mut handles = self.handles.write();
        handles.retain(|(t, _)| *t != me);
        handles.push((me, handle));
    }

    /// The next data thread's runtime, round robin; `None` before any has started.
    pub fn pick(&self) -> Option<Handle> {
        let handles = self.handles.read();
        if handles.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % handles.len();
        Some(handles[i].1.clone())
    }
}
