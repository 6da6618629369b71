//! Placement of keys on auxiliaries: a consistent-hash ring with virtual nodes.
//!
//! This crate owns the one hash every process must agree on (xxh3, never std's randomly keyed
//! hasher) and the rule "the owners of a key are the first `replicas` distinct auxiliaries met
//! clockwise from the key's hash", and which bytes of a key are hashed ([`KeyHash`]: the
//! whole key, or Redis Cluster's hash tags). It is pure: no I/O, no runtime.

mod member;

pub use member::{Features, Member, Role, ZkState};
use std::collections::HashMap;
use xxhash_rust::xxh3::xxh3_64;

/// Most copies of a key a cluster accepts: more would only multiply every write.
pub const MAX_REPLICAS: usize = 16;

/// Default number of virtual nodes per auxiliary; measured to keep max/mean load near 1.05.
pub const DEFAULT_VIRTUAL_NODES: u32 = 512;

/// The stable hash of a key: identical in every process and every release.
pub fn key_hash(key: &[u8]) -> u64 {
    xxh3_64(key)
}

/// Which bytes of a key place it: the cluster configuration's `key_hash`, the same in every
/// process of a cluster.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum KeyHash {
    /// The whole key (clusters made before hash tags keep this until an operator switches).
    #[default]
    Whole,
    /// Redis Cluster's hash tags: the bytes between the first `{` and the first `}` after
    /// it, when there is at least one; else the whole key.
    Tagged,
}

impl KeyHash {
    /// Its name in the cluster configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyHash::Whole => "whole",
            KeyHash::Tagged => "tagged",
        }
    }

    /// The rule of that name; `None` for a name this release does not know.
    pub fn parse(name: &str) -> Option<KeyHash> {
        match name {
            "whole" => Some(KeyHash::Whole),
            "tagged" => Some(KeyHash::Tagged),
            _ => None,
        }
    }

    /// The bytes of `key` that place it.
    pub fn part(self, key: &[u8]) -> &[u8] {
        if self == KeyHash::Whole {
            return key;
        }
        let Some(open) = key.iter().position(|&b| b == b'{') else { return key };
        match key[open + 1..].iter().position(|&b| b == b'}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        }
    }

    /// Where `key` sits on the ring.
    pub fn hash(self, key: &[u8]) -> u64 {
        key_hash(self.part(key))
    }
}

impl serde::Serialize for KeyHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for KeyHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        KeyHash::parse(&name).ok_or_else(|| {
            serde::de::Error::custom(format!("unknown key_hash {name:?} (this release knows \"whole\" and \"tagged\")"))
        })
    }
}

/// The placement settings of a cluster (its configuration in ZooKeeper): what every process
/// must agree on to find a key's owners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    /// Points per auxiliary on the ring (`VIRTUAL_NODES`).
    pub virtual_nodes: u32,
    /// Copies of each key (`REPLICAS`).
    pub replicas: usize,
    /// Which bytes of a key place it.
    #[serde(default)]
    pub key_hash: KeyHash,
}

impl Settings {
    /// The ring over `nodes` under these settings.
    pub fn ring<S: AsRef<str>>(&self, nodes: &[S]) -> Ring {
        Ring::new(nodes, self.virtual_nodes).with_key_hash(self.key_hash)
    }
}

/// The cluster configuration, stored in ZooKeeper at `${ZK_ROOT}/config` and shown by
/// `GET /config`: the placement [`Settings`] and how far re-replication has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClusterConfig {
    /// Copies of each key (`REPLICAS`).
    pub replicas: usize,
    /// Virtual nodes per auxiliary on the ring (`VIRTUAL_NODES`).
    pub virtual_nodes: u32,
    /// The `replicas` for which every key was last re-replicated; behind `replicas` after a
    /// `PUT /config` until a coordinator's rebalance has succeeded (any coordinator, so one
    /// lost with a master is redone by the next).
    #[serde(default)]
    pub replicated_for: usize,
    /// Which bytes of a key place it. A configuration written before hash tags has none:
    /// whole keys, until an operator switches (`POST /rebalance?key_hash=tagged`).
    #[serde(default)]
    pub key_hash: KeyHash,
}

impl ClusterConfig {
    /// The placement settings it holds.
    pub fn settings(&self) -> Settings {
        Settings { virtual_nodes: self.virtual_nodes, replicas: self.replicas, key_hash: self.key_hash }
    }

    /// Whether the values can be used (a hand-edited znode may hold anything).
    pub fn is_valid(&self) -> bool {
        (1..=MAX_REPLICAS).contains(&self.replicas) && (1..=65536).contains(&self.virtual_nodes)
    }
}

fn vnode_hash(node: &str, i: u32) -> u64 {
    let mut buf = Vec::with_capacity(node.len() + 5);
    buf.extend_from_slice(node.as_bytes());
    buf.push(b'#');
    buf.extend_from_slice(&i.to_be_bytes());
    xxh3_64(&buf)
}

/// A consistent-hash ring over a set of node ids.
#[derive(Debug, Clone, Default)]
pub struct Ring {
    points: Vec<(u64, u32)>,
    nodes: Vec<String>,
    key_hash: KeyHash,
}

impl Ring {
    /// Builds the ring; node order and duplicates do not matter.
    pub fn new<S: AsRef<str>>(nodes: &[S], virtual_nodes: u32) -> Self {
        let mut ids: Vec<String> = nodes.iter().map(|n| n.as_ref().to_string()).collect();
        ids.sort();
        ids.dedup();
        let vn = virtual_nodes.max(1);
        let mut points = Vec::with_capacity(ids.len() * vn as usize);
        for (idx, id) in ids.iter().enumerate() {
            for i in 0..vn {
                points.push((vnode_hash(id, i), idx as u32));
            }
        }
        points.sort_unstable();
        Ring { points, nodes: ids, key_hash: KeyHash::Whole }
    }

    /// The same ring, placing keys by `key_hash`.
    pub fn with_key_hash(mut self, key_hash: KeyHash) -> Self {
        self.key_hash = key_hash;
        self
    }

    /// How it places keys.
    pub fn key_hash(&self) -> KeyHash {
        self.key_hash
    }

    /// Where `key` sits on this ring (see [`KeyHash`]).
    pub fn hash(&self, key: &[u8]) -> u64 {
        self.key_hash.hash(key)
    }

    /// The node ids on the ring, sorted.
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    /// True when no node is on the ring.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The first `replicas` distinct nodes clockwise from the key's hash (fewer if the ring has
    /// fewer nodes), primary first.
    pub fn owners(&self, key: &[u8], replicas: usize) -> Vec<&str> {
        self.owners_of_hash(self.hash(key), replicas)
    }

    /// Like [`Ring::owners`] for an already computed hash.
    pub fn owners_of_hash(&self, hash: u64, replicas: usize) -> Vec<&str> {
        let want = replicas.min(self.nodes.len());
        let mut out: Vec<&str> = Vec::with_capacity(want);
        if want == 0 {
            return out;
        }
        let start = self.points.partition_point(|&(h, _)| h < hash);
        let n = self.points.len();
        for step in 0..n {
            let (_, idx) = self.points[(start + step) % n];
            let id = self.nodes[idx as usize].as_str();
            if !out.contains(&id) {
                out.push(id);
                if out.len() == want {
                    break;
                }
            }
        }
        out
    }

    /// Visits the node indices (into [`Ring::nodes`]) clockwise from `hash`, one per point, so
    /// a node may come more than once, until `visit` returns false or every point was seen.
    /// What [`Ring::owners_of_hash`] does without allocating, for callers that keep their own
    /// per-node data by index.
    pub fn walk(&self, hash: u64, mut visit: impl FnMut(usize) -> bool) {
        let n = self.points.len();
        let start = self.points.partition_point(|&(h, _)| h < hash);
        for step in 0..n {
            if !visit(self.points[(start + step) % n].1 as usize) {
                return;
            }
        }
    }

    /// Fraction of the hash space for which each node is the primary owner.
    pub fn shares(&self) -> HashMap<String, f64> {
        let mut out: HashMap<String, f64> = self.nodes.iter().map(|n| (n.clone(), 0.0)).collect();
        let n = self.points.len();
        if n == 0 {
            return out;
        }
        for i in 0..n {
            let prev = if i == 0 { self.points[n - 1].0 } else { self.points[i - 1].0 };
            let span = self.points[i].0.wrapping_sub(prev);
            let span = if n == 1 { u64::MAX } else { span };
            let id = &self.nodes[self.points[i].1 as usize];
            if let Some(v) = out.get_mut(id) {
                *v += span as f64 / u64::MAX as f64;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_walk_meets_the_owners_in_their_order() {
        let ring = Ring::new(&["a", "b", "c", "d"], 64);
        for k in 0..200u32 {
            let key = k.to_be_bytes();
            let mut seen: Vec<&str> = Vec::new();
            ring.walk(key_hash(&key), |i| {
                let id = ring.nodes()[i].as_str();
                if !seen.contains(&id) {
                    seen.push(id);
                }
                seen.len() < 3
            });
            assert_eq!(seen, ring.owners(&key, 3));
        }
    }

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("aux-{i}:3001")).collect()
    }

    fn keys(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("key:{i:08}").into_bytes()).collect()
    }

    #[test]
    fn hash_tags_follow_redis_clusters_rule() {
        let t = KeyHash::Tagged;
        assert_eq!(t.part(b"user:{42}:name"), b"42");
        assert_eq!(t.part(b"{user1000}.following"), b"user1000");
        assert_eq!(t.part(b"foo{}{bar}"), b"foo{}{bar}", "an empty tag: the whole key");
        assert_eq!(t.part(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(t.part(b"foo{bar}{zap}"), b"bar");
        assert_eq!(t.part(b"no-tag"), b"no-tag");
        assert_eq!(t.part(b"open{only"), b"open{only");
        assert_eq!(KeyHash::Whole.part(b"user:{42}:name"), b"user:{42}:name");
        let ring = Ring::new(&names(5), 64).with_key_hash(t);
        assert_eq!(ring.owners(b"user:{42}:name", 3), ring.owners(b"user:{42}:visits", 3));
        assert_eq!(ring.owners(b"{42}", 3), ring.owners(b"42", 3));
        for name in ["whole", "tagged"] {
            assert_eq!(KeyHash::parse(name).map(KeyHash::as_str), Some(name));
        }
        assert_eq!(KeyHash::parse("crc16"), None);
    }

    #[test]
    fn hash_is_stable_across_releases() {
        // A changed hash would silently re-home every key of every deployed cluster.
        assert_eq!(key_hash(b"hello"), 0x9555e8555c62dcfd);
    }

    #[test]
    fn owners_are_distinct_and_capped() {
        let ring = Ring::new(&names(3), 64);
        let o = ring.owners(b"k", 2);
        assert_eq!(o.len(), 2);
        assert_ne!(o[0], o[1]);
        assert_eq!(ring.owners(b"k", 10).len(), 3);
        assert!(Ring::new::<String>(&[], 64).owners(b"k", 2).is_empty());
    }

    #[test]
    fn order_of_nodes_does_not_matter() {
        let mut a = names(5);
        let r1 = Ring::new(&a, 128);
        a.reverse();
        let r2 = Ring::new(&a, 128);
        for k in keys(1000) {
            assert_eq!(r1.owners(&k, 2), r2.owners(&k, 2));
        }
    }

    #[test]
    fn balance_max_over_mean() {
        let ks = keys(200_000);
        for n in 3..=10 {
            let ring = Ring::new(&names(n), DEFAULT_VIRTUAL_NODES);
            let mut counts: HashMap<&str, usize> = HashMap::new();
            for k in &ks {
                *counts.entry(ring.owners(k, 1)[0]).or_default() += 1;
            }
            let max = *counts.values().max().unwrap_or(&0) as f64;
            let mean = ks.len() as f64 / n as f64;
            println!("nodes={n} max/mean={:.3}", max / mean);
            assert!(max / mean <= 1.12, "nodes={n} max/mean={}", max / mean);
            let share_sum: f64 = ring.shares().values().sum();
            assert!((share_sum - 1.0).abs() < 1e-6);
        }
    }

    #[test]
    fn join_moves_about_one_over_n_plus_one() {
        let ks = keys(200_000);
        for n in [3usize, 5, 10] {
            let before = Ring::new(&names(n), DEFAULT_VIRTUAL_NODES);
            let after = Ring::new(&names(n + 1), DEFAULT_VIRTUAL_NODES);
            let moved = ks.iter().filter(|k| before.owners(k, 1) != after.owners(k, 1)).count();
            let frac = moved as f64 / ks.len() as f64;
            let ideal = 1.0 / (n as f64 + 1.0);
            println!("nodes={n}->{} moved={frac:.4} ideal={ideal:.4} ratio={:.3}", n + 1, frac / ideal);
            assert!(frac / ideal <= 1.15, "moved {frac} ideal {ideal}");
            // Consistent hashing: a key either stays or moves to the newcomer.
            let newcomer = names(n + 1)[n].clone();
            for k in ks.iter().take(10_000) {
                let (b, a) = (before.owners(k, 1)[0], after.owners(k, 1)[0]);
                assert!(a == b || a == newcomer);
            }
        }
    }
}
