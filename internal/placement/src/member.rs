//! A member of the cluster as it publishes itself in ZooKeeper (`${ZK_ROOT}/masters/{id}` or
//! `${ZK_ROOT}/auxiliaries/{id}`), the same type for masters and auxiliaries in every role.

use crate::KeyHash;

/// A master or an auxiliary: where to reach it and what its release can do.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Member {
    /// `NODE_ID`.
    pub id: String,
    /// host:port of its HTTP server.
    pub http_addr: String,
    /// host:port of its internal protocol (auxiliaries only).
    #[serde(default)]
    pub data_addr: String,
    /// What its release can do that older ones cannot; a member of an older release publishes
    /// none.
    #[serde(default)]
    pub features: Features,
}

impl Member {
    /// An auxiliary known by its id and data address alone, as the internal protocol names
    /// the peers of a transfer (`Request::Rebalance`).
    pub fn auxiliary(id: impl Into<String>, data_addr: impl Into<String>) -> Member {
        Member { id: id.into(), http_addr: String::new(), data_addr: data_addr.into(), features: Features::default() }
    }
}

/// Which directory a member registers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A stateless front: HTTP and RESP.
    Master,
    /// A data holder.
    Auxiliary,
}

impl Role {
    /// Its directory under `ZK_ROOT`.
    pub fn dir(self) -> &'static str {
        match self {
            Role::Master => "masters",
            Role::Auxiliary => "auxiliaries",
        }
    }
}

/// A node's ZooKeeper session: discovery follows it, and `/health`, `zookeeper_connected` and
/// the master's view show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZkState {
    /// No ZooKeeper (local mode).
    Disabled,
    /// No session yet, or building a new one after expiry.
    Connecting,
    /// Session live, znode registered, watches set.
    Connected,
    /// Connection lost; the session may still come back, and the node serves with the last
    /// membership seen.
    Disconnected,
}

impl ZkState {
    /// The word shown in `/health`.
    pub fn as_str(self) -> &'static str {
        match self {
            ZkState::Disabled => "disabled",
            ZkState::Connecting => "connecting",
            ZkState::Connected => "connected",
            ZkState::Disconnected => "disconnected",
        }
    }
}

/// What a member's release can do beyond the first releases, published as a list of names
/// (a name this release does not know is some newer ability, and ignored).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Features {
    /// It places keys by hash tags when the cluster configuration says so.
    pub key_hash_tagged: bool,
    /// It runs `Request::Transaction` and `Request::Census`.
    pub transactions: bool,
}

const KEY_HASH_TAGGED: &str = "key_hash:tagged";
const TRANSACTIONS: &str = "transactions";

impl Features {
    /// The features of this release.
    pub const THIS_RELEASE: Features = Features { key_hash_tagged: true, transactions: true };

    /// Whether a member can place keys by `key_hash`.
    pub fn places_by(&self, key_hash: KeyHash) -> bool {
        match key_hash {
            KeyHash::Whole => true,
            KeyHash::Tagged => self.key_hash_tagged,
        }
    }
}

impl serde::Serialize for Features {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let names: Vec<&str> = [(self.key_hash_tagged, KEY_HASH_TAGGED), (self.transactions, TRANSACTIONS)]
            .into_iter()
            .filter_map(|(has, name)| has.then_some(name))
            .collect();
        names.serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Features {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let names = <Vec<std::borrow::Cow<'de, str>>>::deserialize(d)?;
        let has = |name: &str| names.iter().any(|n| n == name);
        Ok(Features { key_hash_tagged: has(KEY_HASH_TAGGED), transactions: has(TRANSACTIONS) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_travel_as_names_and_unknown_ones_are_ignored() {
        let m = Member {
            id: "a".into(),
            http_addr: "h:1".into(),
            data_addr: "h:2".into(),
            features: Features::THIS_RELEASE,
        };
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.contains(r#""features":["key_hash:tagged","transactions"]"#), "{json}");
        assert_eq!(serde_json::from_str::<Member>(&json).unwrap(), m);
        let old: Member = serde_json::from_str(r#"{"id":"o","http_addr":"h:1"}"#).unwrap();
        assert_eq!(old.features, Features::default(), "an older release publishes none");
        assert!(!old.features.places_by(KeyHash::Tagged) && old.features.places_by(KeyHash::Whole));
        let newer: Member =
            serde_json::from_str(r#"{"id":"n","http_addr":"h:1","features":["transactions","crc16"]}"#).unwrap();
        assert_eq!(newer.features, Features { key_hash_tagged: false, transactions: true });
    }
}
