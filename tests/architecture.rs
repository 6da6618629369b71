//! The crate map of docs/ARCHITECTURE.md, checked: each crate of the project depends on exactly
//! these other crates of the project (normal dependencies; tests may reach further).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

const ARROWS: &[(&str, &[&str])] = &[
    ("tiercache", &["node"]),
    ("tiercache-bench", &["placement", "protocol"]),
    ("tiercache-node", &["auxiliary", "config", "discovery", "http", "master", "resp"]),
    ("tiercache-http", &["master"]),
    ("tiercache-resp", &["master"]),
    ("tiercache-master", &["placement", "protocol", "wire"]),
    ("tiercache-auxiliary", &["placement", "protocol", "store", "wire"]),
    ("tiercache-wire", &["protocol"]),
    ("tiercache-discovery", &["placement"]),
    ("tiercache-config", &["placement"]),
    ("tiercache-store", &["protocol"]),
    ("tiercache-protocol", &["placement"]),
    ("tiercache-placement", &[]),
];

#[test]
fn crates_depend_only_along_the_documented_arrows() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut actual: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in meta["packages"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap().to_string();
        let deps = p["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["kind"].is_null())
            .filter_map(|d| d["name"].as_str()?.strip_prefix("tiercache-").map(String::from))
            .collect();
        actual.insert(name, deps);
    }
    let expected: BTreeMap<String, BTreeSet<String>> =
        ARROWS.iter().map(|(c, deps)| (c.to_string(), deps.iter().map(|d| d.to_string()).collect())).collect();
    assert_eq!(actual, expected, "the crate graph differs from docs/ARCHITECTURE.md");
}
