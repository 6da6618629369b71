//! `tiercache-bench`: HTTP load generator (work in progress).

fn main() {}
