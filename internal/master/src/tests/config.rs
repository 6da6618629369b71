//! Following the cluster configuration, against an in-memory store: the environment's check,
//! adopting changes, and the coordinator's re-replication after a change of `REPLICAS`.

use super::*;
use crate::follow_config::{follow_config, ConfigStore, Disagreement, Environment, MemConfigStore};
use tiercache_placement::{ClusterConfig, KeyHash};
use tokio::sync::watch;

fn stored(replicas: usize) -> ClusterConfig {
    ClusterConfig { replicas, virtual_nodes: 64, replicated_for: replicas, key_hash: KeyHash::Whole }
}

fn env(replicas: Option<usize>, write_quorum: usize) -> Environment {
    Environment { replicas, virtual_nodes: None, write_quorum, read_quorum: 1, path: "/t/config".into() }
}

/// Runs `follow_config` over `ids` as the coordinator, in the background.
fn follow(
    net: &Net,
    ids: &[&str],
    store: &MemConfigStore,
    env: Environment,
) -> (Arc<Router<Net>>, tokio::task::JoinHandle<Result<(), Disagreement>>) {
    let r = Arc::new(router(net, ids, 1, 1, 1));
    let (tx, members) = watch::channel(addrs(ids));
    let (store, follower): (Arc<dyn ConfigStore>, _) = (Arc::new(store.clone()), r.clone());
    let task = tokio::spawn(async move {
        // The membership stays as it is for the test's length.
        let _membership = tx;
        follow_config(env, store, follower, members, Arc::new(|| true)).await
    });
    (r, task)
}

#[tokio::test(start_paused = true)]
async fn a_master_whose_environment_disagrees_stops_naming_the_setting() {
    let net = Net::default();
    let store = MemConfigStore::new(Some(stored(2)));
    let (_, task) = follow(&net, &["a", "b"], &store, env(Some(3), 1));
    let e = task.await.unwrap().unwrap_err();
    assert_eq!(
        e,
        Disagreement::Setting { var: "REPLICAS", env: "3".into(), stored: "2".into(), path: "/t/config".into() }
    );
    assert!(e.to_string().contains("REPLICAS=3 in this master's environment"), "{e}");
    let (_, task) = follow(&net, &["a", "b"], &store, env(None, 3));
    assert!(matches!(task.await.unwrap(), Err(Disagreement::QuorumAboveReplicas { quorum: 3, replicas: 2, .. })));
}

#[tokio::test(start_paused = true)]
async fn a_master_adopts_the_stored_configuration_and_follows_its_changes() {
    let net = Net::default();
    let store = MemConfigStore::new(None);
    let (r, _task) = follow(&net, &["a", "b", "c"], &store, env(None, 1));
    store.update(Box::new(|_| Some(stored(2)))).await.unwrap();
    wait(|| r.replicas() == 2).await;
    // A switch to hash tags keeps the previous placement for reads while keys move.
    store.update(Box::new(|c| c.map(|c| ClusterConfig { key_hash: KeyHash::Tagged, ..c }))).await.unwrap();
    wait(|| r.key_hash() == KeyHash::Tagged).await;
    assert!(r.view().previous.is_some(), "the placement before the switch is kept for fallback");
    // VIRTUAL_NODES cannot change on a running cluster: ignored.
    store.update(Box::new(|c| c.map(|c| ClusterConfig { virtual_nodes: 8, replicas: 3, ..c }))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!((r.virtual_nodes(), r.replicas()), (64, 2));
}

#[tokio::test(start_paused = true)]
async fn the_coordinator_re_replicates_after_a_replicas_change_and_records_it() {
    let net = Net::default();
    let store = MemConfigStore::new(Some(stored(1)));
    let (r, _task) = follow(&net, &["a", "b", "c"], &store, env(None, 1));
    wait(|| r.replicas() == 1).await;
    let before: usize = ["a", "b", "c"].iter().map(|id| net.state(id).lock().calls).sum();
    store.update(Box::new(|c| c.map(|c| ClusterConfig { replicas: 2, ..c }))).await.unwrap();
    wait(|| store.get().is_some_and(|c| c.replicated_for == 2)).await;
    assert_eq!(r.replicas(), 2);
    let after: usize = ["a", "b", "c"].iter().map(|id| net.state(id).lock().calls).sum();
    assert!(after >= before + 3, "every auxiliary was asked to move its keys ({before} -> {after} calls)");
}

/// Waits (on tokio's clock, paused in these tests) until `done`.
async fn wait(done: impl Fn() -> bool) {
    for _ in 0..600 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("not done within 30 s");
}

/// Members as a membership service would list them.
struct Listed(Vec<tiercache_placement::Member>);

impl crate::MembershipPort for Listed {
    fn masters(&self) -> Vec<tiercache_placement::Member> {
        self.0.clone()
    }
    fn auxiliaries(&self) -> Vec<tiercache_placement::Member> {
        Vec::new()
    }
    fn coordinator(&self) -> Option<String> {
        Some("m1".into())
    }
    fn session(&self) -> crate::ZkState {
        crate::ZkState::Connected
    }
}

#[tokio::test]
async fn the_key_hash_switch_waits_for_every_member_to_know_the_rule() {
    use crate::state::{ClusterInfo, ConfigChangeError};
    let mut members = addrs(&["m1", "m2"]);
    members[1].features = Features::default();
    let store = MemConfigStore::new(Some(stored(2)));
    let cluster =
        crate::Cluster::new("m1".into(), stored(2), Arc::new(Listed(members.clone())), Arc::new(store.clone()));
    match cluster.set_key_hash(KeyHash::Tagged).await {
        Err(ConfigChangeError::Unsupported { members, .. }) => assert_eq!(members, ["m2"]),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.get().map(|c| c.key_hash), Some(KeyHash::Whole), "nothing stored");
    members[1].features = Features::THIS_RELEASE;
    let cluster = crate::Cluster::new("m1".into(), stored(2), Arc::new(Listed(members)), Arc::new(store.clone()));
    cluster.set_key_hash(KeyHash::Tagged).await.unwrap();
    assert_eq!(store.get().map(|c| c.key_hash), Some(KeyHash::Tagged));
    assert!(cluster.is_coordinator());
    cluster.set_replicas(3).await.unwrap();
    assert_eq!(store.get().map(|c| (c.replicas, c.key_hash)), Some((3, KeyHash::Tagged)), "one change keeps the other");
}
