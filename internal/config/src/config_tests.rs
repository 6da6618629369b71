//! The parsers and each role's configuration, against variables given in the test.

use super::*;

fn vars(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[test]
fn defaults() {
    let m = master_from(vars(&[("INTERNAL_TOKEN", "12345678")])).unwrap();
    assert_eq!(m.common.port, 8000);
    assert_eq!((m.replicas, m.write_quorum, m.read_quorum), (2, 1, 1));
    assert_eq!(m.common.zk_root, "/tiercache");
    assert_eq!(m.data_threads, std::thread::available_parallelism().unwrap().get());
    let a = auxiliary_from(vars(&[("INTERNAL_TOKEN", "12345678")])).unwrap();
    assert_eq!((a.common.port, a.data_port), (3001, 4001));
    assert_eq!(a.backup_interval_secs, 60);
    let (lm, _) = local_from(vars(&[])).unwrap();
    assert_eq!(lm.common.port, 8000);
    assert_eq!(lm.common.bind_addr.to_string(), "127.0.0.1", "local opens nothing to the network");
    assert_eq!(m.common.bind_addr.to_string(), "0.0.0.0");
    let (_, forget) = local_from(vars(&[("LOCAL_PERSIST", "0")])).unwrap();
    assert!(!forget.restore && forget.backup_interval_secs == 0);
    assert!(local_from(vars(&[("LOCAL_PERSIST", "yes")])).unwrap_err().to_string().contains("LOCAL_PERSIST"));
    let e = local_from(vars(&[("REPLICAS", "5"), ("WRITE_QUORUM", "5")])).unwrap_err().to_string();
    assert!(e.contains("REPLICAS") && e.contains("three auxiliaries"), "{e}");
}

#[test]
fn errors_name_the_variable() {
    let cases: &[(&str, &str, &str)] = &[
        ("PORT", "abc", "PORT"),
        ("PORT", "70000", "PORT"),
        ("BIND_ADDR", "nope", "BIND_ADDR"),
        ("ZK_SERVERS", "localhost", "ZK_SERVERS"),
        ("ZK_ROOT", "tiercache", "ZK_ROOT"),
        ("WRITE_QUORUM", "3", "WRITE_QUORUM"),
        ("REPLICAS", "0", "REPLICAS"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT"),
        ("DEFAULT_TTL", "-1", "DEFAULT_TTL"),
        ("INTERNAL_TOKEN", "short", "INTERNAL_TOKEN"),
        ("DATA_THREADS", "0", "DATA_THREADS"),
        ("DATA_THREADS", "many", "DATA_THREADS"),
    ];
    for (var, val, name) in cases {
        let mut v = vars(&[("INTERNAL_TOKEN", "12345678")]);
        v.retain(|(k, _)| k != var);
        v.push((var.to_string(), val.to_string()));
        let err = master_from(v).unwrap_err().to_string();
        assert!(err.contains(name), "{err}");
        assert!(!err.contains('\n'));
    }
    let err = auxiliary_from(vars(&[("INTERNAL_TOKEN", "12345678"), ("CACHE_SIZE", "lots")])).unwrap_err();
    assert!(err.to_string().contains("CACHE_SIZE"));
    let err = master_from(vars(&[])).unwrap_err();
    assert!(err.to_string().contains("INTERNAL_TOKEN"));
}

#[test]
fn variables_lists_exactly_what_is_read() {
    let all: Vec<(String, String)> = variables().map(|v| (v.to_string(), "x".to_string())).collect();
    let raw = format!("{:?}", Raw::from_iter(all).unwrap());
    assert!(!raw.contains("None"), "a variable read is missing from SETTINGS: {raw}");
    // HOSTNAME and RUST_LOG are read outside `Raw`.
    assert_eq!(raw.matches("Some(").count(), SETTINGS.len() - 2, "{raw}");
}

#[test]
fn placement_set_or_defaulted_is_told_apart() {
    let m = master_from(vars(&[("INTERNAL_TOKEN", "12345678")])).unwrap();
    assert!(!m.replicas_from_env && !m.virtual_nodes_from_env);
    let m = master_from(vars(&[("INTERNAL_TOKEN", "12345678"), ("REPLICAS", "3")])).unwrap();
    assert!(m.replicas_from_env && !m.virtual_nodes_from_env);
    let a = auxiliary_from(vars(&[("INTERNAL_TOKEN", "12345678"), ("VIRTUAL_NODES", "8")])).unwrap();
    assert_eq!(a.ignored, vec!["VIRTUAL_NODES"]);
}
