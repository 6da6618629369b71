//! The Kubernetes manifests of deploy/kubernetes, checked offline (no cluster can run here).
//! The base (`kubectl kustomize deploy/kubernetes`) and each overlay are rendered, then:
//!
//! - `kubernetes-validate --strict` accepts every object against the Kubernetes API schemas;
//! - every environment variable a tiercache container gets (`env`, and the keys of what it
//!   pulls with `envFrom`) is one the binary reads (`tiercache_node::config::SETTINGS`) and
//!   one README.md documents (as `` `NAME` ``);
//! - auxiliaries get neither REPLICAS nor VIRTUAL_NODES (cluster state in ZooKeeper);
//! - images, ports, user, stop signal and backup path agree with the Dockerfile (and the
//!   ZooKeeper image with docker-compose.yml, whose images scripts/build-images.sh builds);
//! - probes, Services, StatefulSets, budgets, policies and env references point at ports,
//!   pods and keys that exist;
//! - an auxiliary's memory limit follows the formula of docs/kubernetes.md from its CACHE_MAX_BYTES and
//!   CACHE_SIZE;
//! - the Grafana dashboard ConfigMap is config/grafana/dashboards/tiercache.json, byte for byte.
//!
//! Needs kubectl, kubernetes-validate and a python3 with PyYAML: `scripts/install-k8s-tools.sh`
//! installs or checks them. A missing tool fails the test; it never skips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use tiercache_node::config::settings::Readers;
use tiercache_node::config::{variables, SETTINGS};

/// The base (what `kubectl kustomize deploy/kubernetes` renders) and every overlay.
const KUSTOMIZATIONS: &[&str] =
    &["deploy/kubernetes", "deploy/kubernetes/overlays/large", "deploy/kubernetes/overlays/single-node"];

/// The oldest Kubernetes the manifests aim at: its API schemas are the ones checked.
const KUBERNETES_VERSION: &str = "1.30.0";

const INSTALL_HINT: &str = "run scripts/install-k8s-tools.sh";

const DASHBOARD: &str = "config/grafana/dashboards/tiercache.json";
/// kustomize reads no file outside the kustomization's directory, hence a copy.
const DASHBOARD_COPY: &str = "deploy/kubernetes/base/grafana/tiercache.json";

/// An auxiliary's memory limit, docs/kubernetes.md: 2 × CACHE_MAX_BYTES + 100 B × CACHE_SIZE + 64 MiB
/// (70 B per entry beyond key and value in the store, the snapshot file, at most
/// CACHE_MAX_BYTES + 30 B per entry, held while restoring, 64 MiB for everything else).
fn aux_memory_needed(cache_max_bytes: u64, cache_size: u64) -> u64 {
    2 * cache_max_bytes + 100 * cache_size + (64 << 20)
}

/// How far above the formula a limit may be (rounding up to a round number of MiB).
const MEMORY_ROUNDING: u64 = 64 << 20;

/// One kustomization, rendered.
struct Rendered {
    dir: &'static str,
    yaml: Vec<u8>,
    objects: Vec<Value>,
}

/// Every kustomization rendered once per test process.
fn rendered() -> &'static [Rendered] {
    static RENDERED: OnceLock<Vec<Rendered>> = OnceLock::new();
    RENDERED.get_or_init(|| {
        KUSTOMIZATIONS
            .iter()
            .map(|&dir| {
                let yaml = kustomize(dir);
                let objects = to_json(dir, &yaml);
                assert!(!objects.is_empty(), "`kubectl kustomize {dir}` rendered no object");
                Rendered { dir, yaml, objects }
            })
            .collect()
    })
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// Runs `program args` in the repository with `input` on its stdin. Panics with `hint` when
/// the program cannot be started at all (not installed).
fn run(program: &Path, args: &[&str], input: &[u8], hint: &str) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}. {hint}", program.display()));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // Fed from a thread, so a child that writes a lot before reading everything cannot block.
    // A write error means the child exited early: its status and stderr tell why.
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    out
}

/// Where scripts/install-k8s-tools.sh installs kubernetes-validate when PATH has none.
fn k8s_venv() -> PathBuf {
    if let Some(dir) = std::env::var_os("TIERCACHE_K8S_VENV").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let cache = match std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache"),
    };
    cache.join("tiercache").join("k8s-venv")
}

/// kubernetes-validate and a python3 that has PyYAML (kubernetes-validate depends on it): the
/// install script's virtualenv when it made one, else PATH's.
fn python_tools() -> (PathBuf, PathBuf) {
    let bin = k8s_venv().join("bin");
    if bin.join("kubernetes-validate").is_file() {
        (bin.join("kubernetes-validate"), bin.join("python3"))
    } else {
        (PathBuf::from("kubernetes-validate"), PathBuf::from("python3"))
    }
}

fn kustomize(dir: &str) -> Vec<u8> {
    let hint = format!("kubectl is needed to render the manifests ({INSTALL_HINT}, which checks for it)");
    let out = run(Path::new("kubectl"), &["kustomize", dir], b"", &hint);
    assert!(out.status.success(), "`kubectl kustomize {dir}` failed:\n{}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// The rendered YAML as JSON objects, by PyYAML (which kubernetes-validate brings along).
fn to_json(dir: &str, yaml: &[u8]) -> Vec<Value> {
    const PROGRAM: &str =
        "import sys, json, yaml; json.dump([d for d in yaml.safe_load_all(sys.stdin) if d], sys.stdout)";
    let (_, python) = python_tools();
    let hint = format!("a python3 with PyYAML is needed ({INSTALL_HINT})");
    let out = run(&python, &["-c", PROGRAM], yaml, &hint);
    assert!(
        out.status.success(),
        "YAML to JSON of {dir} failed ({} -c '{PROGRAM}'; {INSTALL_HINT}):\n{}",
        python.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    match serde_json::from_slice::<Value>(&out.stdout) {
        Ok(Value::Array(objects)) => objects,
        other => panic!("YAML to JSON of {dir}: expected a JSON array, got {other:?}"),
    }
}

fn arr(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

fn of_kind<'a>(objects: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    objects.iter().filter(move |o| o["kind"] == kind)
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    objects.iter().find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

fn name_of(o: &Value) -> String {
    format!("{} {}", o["kind"].as_str().unwrap_or("?"), o["metadata"]["name"].as_str().unwrap_or("?"))
}

/// Whether the label selector `selector` (a matchLabels map, not empty) selects `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    selector.as_object().is_some_and(|s| !s.is_empty() && s.iter().all(|(k, v)| labels.get(k) == Some(v)))
}

/// A memory quantity in bytes (whole numbers with a binary or decimal suffix).
fn bytes(quantity: &Value, at: &str) -> u64 {
    let text = match quantity {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => panic!("{at}: no memory limit (resources.limits.memory)"),
    };
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 =
        number.parse().unwrap_or_else(|_| panic!("{at}: memory {text:?}: write a whole number and a unit"));
    let unit: u64 = match unit {
        "" => 1,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        _ => panic!("{at}: memory {text:?}: unit {unit:?} not understood here"),
    };
    number * unit
}

/// A container of a Deployment's or StatefulSet's pod template.
struct Container<'a> {
    /// "StatefulSet tiercache-aux, container auxiliary (deploy/kubernetes)", for messages.
    at: String,
    workload: &'a Value,
    c: &'a Value,
}

impl<'a> Container<'a> {
    fn pod(&self) -> &'a Value {
        &self.workload["spec"]["template"]["spec"]
    }

    fn labels(&self) -> &'a Value {
        &self.workload["spec"]["template"]["metadata"]["labels"]
    }

    fn is_tiercache(&self) -> bool {
        self.c["image"].as_str().is_some_and(|i| i.starts_with("tiercache"))
    }

    /// The subcommand (the Dockerfile's ENTRYPOINT is tiercache): "master" or "auxiliary".
    fn role(&self) -> &'a str {
        self.c["args"][0].as_str().unwrap_or("")
    }

    fn container_ports(&self) -> BTreeSet<u64> {
        arr(&self.c["ports"]).iter().filter_map(|p| p["containerPort"].as_u64()).collect()
    }

    /// Whether `port` (a number, or the name of a port) is one the container declares.
    fn has_port(&self, port: &Value) -> bool {
        arr(&self.c["ports"]).iter().any(|p| match port {
            Value::String(name) => p["name"].as_str() == Some(name.as_str()),
            Value::Number(n) => n.as_u64().is_some() && p["containerPort"].as_u64() == n.as_u64(),
            _ => false,
        })
    }

    /// A security setting of the container, else of its pod.
    fn security(&self, field: &str) -> &'a Value {
        let own = &self.c["securityContext"][field];
        if own.is_null() {
            &self.pod()["securityContext"][field]
        } else {
            own
        }
    }
}

fn workloads(r: &Rendered) -> impl Iterator<Item = &Value> {
    r.objects.iter().filter(|o| o["kind"] == "Deployment" || o["kind"] == "StatefulSet")
}

fn containers(r: &Rendered) -> Vec<Container<'_>> {
    let mut out = Vec::new();
    for w in workloads(r) {
        let spec = &w["spec"]["template"]["spec"];
        for c in arr(&spec["initContainers"]).iter().chain(arr(&spec["containers"])) {
            let at = format!("{}, container {} ({})", name_of(w), c["name"].as_str().unwrap_or("?"), r.dir);
            out.push(Container { at, workload: w, c });
        }
    }
    out
}

/// Every variable the container gets, in Kubernetes' order of precedence (`env` over
/// `envFrom`), with its value when the manifests give it as text (not for Secrets or
/// `valueFrom`). Panics on a reference to a ConfigMap, Secret or key that is not rendered.
fn env(objects: &[Value], c: &Container<'_>) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    for from in arr(&c.c["envFrom"]) {
        let prefix = from["prefix"].as_str().unwrap_or("");
        let (kind, name) = match (from["configMapRef"]["name"].as_str(), from["secretRef"]["name"].as_str()) {
            (Some(name), _) => ("ConfigMap", name),
            (None, Some(name)) => ("Secret", name),
            (None, None) => panic!("{}: an envFrom without configMapRef or secretRef name", c.at),
        };
        let source = find(objects, kind, name)
            .unwrap_or_else(|| panic!("{}: envFrom names {kind} {name}, which is not rendered", c.at));
        for field in ["data", "stringData"] {
            for (key, v) in source[field].as_object().into_iter().flatten() {
                let text = if kind == "ConfigMap" { v.as_str().map(String::from) } else { None };
                let key = format!("{prefix}{key}");
                out.retain(|(k, _)| *k != key);
                out.push((key, text));
            }
        }
    }
    for e in arr(&c.c["env"]) {
        let name = e["name"].as_str().unwrap_or_else(|| panic!("{}: an env entry without a name", c.at)).to_string();
        for (field, kind) in [("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")] {
            let reference = &e["valueFrom"][field];
            if let Some(source) = reference["name"].as_str() {
                let key = reference["key"].as_str().unwrap_or("");
                let object = find(objects, kind, source)
                    .unwrap_or_else(|| panic!("{}: {name} comes from {kind} {source}, which is not rendered", c.at));
                assert!(
                    !object["data"][key].is_null() || !object["stringData"][key].is_null(),
                    "{}: {name} comes from key {key} of {kind} {source}, which has no such key",
                    c.at
                );
            }
        }
        out.retain(|(k, _)| *k != name);
        out.push((name, e["value"].as_str().map(String::from)));
    }
    out
}

fn value<'e>(env: &'e [(String, Option<String>)], name: &str) -> Option<&'e str> {
    env.iter().find(|(k, _)| k == name).and_then(|(_, v)| v.as_deref())
}

/// What the runtime stage of the Dockerfile says about the image.
struct Dockerfile {
    expose: BTreeSet<u64>,
    uid: u64,
    stop_signal: String,
    entrypoint: String,
    backup_dir: String,
}

/// The arguments of every `name` instruction among `lines`.
fn instruction<'a>(lines: &[&'a str], name: &str) -> Vec<&'a str> {
    lines.iter().filter_map(|&l| l.strip_prefix(name)).filter(|rest| rest.starts_with(' ')).map(str::trim).collect()
}

impl Dockerfile {
    fn read() -> Dockerfile {
        let text = read("Dockerfile");
        let runtime = &text[text.rfind("\nFROM ").expect("Dockerfile: no FROM line")..];
        let lines: Vec<&str> = runtime.lines().map(str::trim).collect();
        let last = |name: &str| -> String {
            instruction(&lines, name)
                .last()
                .unwrap_or_else(|| panic!("Dockerfile: no {name} in the runtime stage"))
                .to_string()
        };
        let expose: BTreeSet<u64> = instruction(&lines, "EXPOSE")
            .iter()
            .flat_map(|args| args.split_whitespace())
            .map(|p| p.trim_end_matches("/tcp").parse::<u64>().unwrap_or_else(|_| panic!("Dockerfile: EXPOSE {p}?")))
            .collect();
        let uid: u64 = runtime
            .split_whitespace()
            .skip_while(|w| *w != "--uid")
            .nth(1)
            .and_then(|u| u.parse().ok())
            .expect("Dockerfile: no `useradd --uid N` in the runtime stage");
        let backup_dir = instruction(&lines, "ENV")
            .iter()
            .flat_map(|args| args.split_whitespace())
            .find_map(|kv| kv.strip_prefix("BACKUP_DIR="))
            .expect("Dockerfile: no ENV BACKUP_DIR=… in the runtime stage")
            .to_string();
        Dockerfile { expose, uid, stop_signal: last("STOPSIGNAL"), entrypoint: last("ENTRYPOINT"), backup_dir }
    }
}

#[test]
fn every_kustomization_passes_strict_schema_validation() {
    let (validate, _) = python_tools();
    let hint = format!("kubernetes-validate (PyPI) is needed: {INSTALL_HINT}");
    for r in rendered() {
        let args = ["--strict", "-k", KUBERNETES_VERSION, "-"];
        let out = run(&validate, &args, &r.yaml, &hint);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let report = format!(
            "`kubectl kustomize {} | kubernetes-validate {}`:\n{stdout}{}",
            r.dir,
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        // A kind without a schema is only a WARN with exit 0: count it as a failure too.
        let complaints = stdout.lines().filter(|l| ["WARN", "ERROR", "FATAL"].iter().any(|w| l.starts_with(w))).count();
        assert!(out.status.success() && complaints == 0, "{report}");
        let passed = stdout.lines().filter(|l| l.contains("passed for resource")).count();
        assert_eq!(passed, r.objects.len(), "not every object was validated: {report}");
    }
}

#[test]
fn every_variable_is_one_the_binary_reads_and_the_readme_documents() {
    let readme = read("README.md");
    let mut wrong = BTreeSet::new();
    let mut given = 0;
    for r in rendered() {
        for c in containers(r).iter().filter(|c| c.is_tiercache()) {
            for (name, _) in env(&r.objects, c) {
                given += 1;
                if !variables().any(|v| v == name.as_str()) {
                    wrong.insert(format!("{name}: tiercache does not read it (not in config::SETTINGS); {}", c.at));
                }
                if !readme.contains(&format!("`{name}`")) {
                    wrong.insert(format!("{name}: README.md does not document it (as `{name}`); {}", c.at));
                }
            }
        }
    }
    assert!(given > 0, "no tiercache container with an environment found: is the image still tiercache:…?");
    assert!(
        wrong.is_empty(),
        "variables given to tiercache containers:\n{}",
        wrong.into_iter().collect::<Vec<_>>().join("\n")
    );
}

/// README.md's table of settings is the binary's (`config::SETTINGS`, from which `--help`
/// and the flags come): the same variables, each with the roles that read it.
#[test]
fn the_readme_settings_table_is_the_one_the_binary_reads() {
    let readme = read("README.md");
    let mut documented = BTreeSet::new();
    let mut wrong = Vec::new();
    let rows = readme.lines().filter(|l| l.starts_with("| `")).filter(|l| l.split('|').nth(2).is_some());
    for row in rows {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (names, role) = (cells[1], cells[2]);
        if !["both", "master", "auxiliary", "local"].contains(&role) {
            continue; // another table
        }
        for name in names.split(',').map(|n| n.trim().trim_matches('`')) {
            documented.insert(name.to_string());
            match SETTINGS.iter().find(|s| s.var == name) {
                None => wrong.push(format!("{name}: in README.md's table, not read by the binary")),
                Some(s) => {
                    let expected = match s.readers {
                        Readers::All | Readers::Cluster => "both",
                        Readers::Master => "master",
                        Readers::Auxiliary | Readers::ClusterAuxiliary => "auxiliary",
                        Readers::Local => "local",
                    };
                    if role != expected {
                        wrong.push(format!("{name}: README.md says {role}, the binary {expected}"));
                    }
                }
            }
        }
    }
    for s in SETTINGS {
        if !documented.contains(s.var) {
            wrong.push(format!("{}: read by the binary, missing from README.md's table", s.var));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn auxiliaries_get_no_placement_settings() {
    for r in rendered() {
        let all = containers(r);
        let masters = all.iter().filter(|c| c.is_tiercache() && c.role() == "master").count();
        let auxiliaries: Vec<&Container<'_>> =
            all.iter().filter(|c| c.is_tiercache() && c.role() == "auxiliary").collect();
        assert!(masters > 0 && !auxiliaries.is_empty(), "{}: no tiercache master or auxiliary container", r.dir);
        for c in auxiliaries {
            for (name, _) in env(&r.objects, c) {
                assert!(
                    name != "REPLICAS" && name != "VIRTUAL_NODES",
                    "{}: gets {name}, but an auxiliary takes REPLICAS and VIRTUAL_NODES from the cluster \
                     configuration in ZooKeeper (published by the first master)",
                    c.at
                );
            }
        }
    }
}

#[test]
fn images_ports_user_signal_and_paths_match_the_dockerfile() {
    let docker = Dockerfile::read();
    let compose = read("docker-compose.yml");
    assert_eq!(
        docker.stop_signal, "SIGTERM",
        "Kubernetes stops containers with SIGTERM, whatever the image says; an auxiliary hands its keys \
         off on the Dockerfile's STOPSIGNAL, so that must be SIGTERM too"
    );
    assert_eq!(docker.entrypoint, r#"["tiercache"]"#, "the manifests give only the role, in args");
    assert!(compose.contains("image: tiercache:"), "docker-compose.yml no longer names the image tiercache:…");
    for r in rendered() {
        for c in containers(r) {
            let at = &c.at;
            let image = c.c["image"].as_str().unwrap_or("");
            let policy = c.c["imagePullPolicy"].as_str().unwrap_or("");
            assert!(
                policy == "IfNotPresent" || policy == "Never",
                "{at}: imagePullPolicy {policy:?}: there is no registry, the image is loaded into the nodes"
            );
            assert_eq!(c.security("runAsNonRoot"), &Value::Bool(true), "{at}: runAsNonRoot");
            let own = &c.c["securityContext"];
            assert!(own["allowPrivilegeEscalation"].as_bool() == Some(false), "{at}: allowPrivilegeEscalation: false");
            assert!(
                arr(&own["capabilities"]["drop"]).iter().any(|d| d == "ALL"),
                "{at}: capabilities.drop must contain ALL"
            );
            if !c.is_tiercache() {
                assert!(
                    compose.contains(&format!("image: {image}")),
                    "{at}: image {image} is not one docker-compose.yml uses, so scripts/build-images.sh \
                     does not build it"
                );
                continue;
            }
            assert_eq!(image, "tiercache:latest", "{at}: the image `docker-compose build` makes");
            assert!(
                c.c["command"].is_null(),
                "{at}: the Dockerfile's ENTRYPOINT runs tiercache; give the role in args"
            );
            assert!(["master", "auxiliary"].contains(&c.role()), "{at}: args {} is not a role", c.c["args"]);
            let ports = c.container_ports();
            assert!(
                ports.is_subset(&docker.expose),
                "{at}: containerPorts {ports:?} are not all in the Dockerfile's EXPOSE {:?}",
                docker.expose
            );
            let vars = env(&r.objects, &c);
            let listens: BTreeSet<u64> = ["PORT", "DATA_PORT", "REDIS_PORT"]
                .iter()
                .filter_map(|var| value(&vars, var))
                .map(|v| v.parse::<u64>().unwrap_or_else(|_| panic!("{at}: port {v:?}")))
                .collect();
            assert_eq!(ports, listens, "{at}: containerPorts differ from the ports set in PORT/DATA_PORT/REDIS_PORT");
            assert_eq!(
                c.security("runAsUser").as_u64(),
                Some(docker.uid),
                "{at}: runAsUser must be the Dockerfile's user (useradd --uid {})",
                docker.uid
            );
            assert!(own["readOnlyRootFilesystem"].as_bool() == Some(true), "{at}: readOnlyRootFilesystem: true");
            if c.role() == "auxiliary" {
                let dir = value(&vars, "BACKUP_DIR").unwrap_or_else(|| panic!("{at}: no BACKUP_DIR"));
                assert_eq!(dir, docker.backup_dir, "{at}: BACKUP_DIR differs from the Dockerfile's");
                let mount = arr(&c.c["volumeMounts"])
                    .iter()
                    .find(|m| m["mountPath"] == dir)
                    .unwrap_or_else(|| panic!("{at}: nothing is mounted at BACKUP_DIR {dir}: the root is read-only"));
                let claims: Vec<&Value> =
                    arr(&c.workload["spec"]["volumeClaimTemplates"]).iter().map(|t| &t["metadata"]["name"]).collect();
                assert!(claims.contains(&&mount["name"]), "{at}: BACKUP_DIR is not on a volumeClaimTemplate");
                assert!(c.pod()["securityContext"]["fsGroup"].is_u64(), "{at}: no fsGroup: the volume is not writable");
            }
        }
    }
}

#[test]
fn probes_services_budgets_and_policies_point_at_what_exists() {
    for r in rendered() {
        let all = containers(r);
        for c in &all {
            for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
                for handler in ["httpGet", "tcpSocket"] {
                    let port = &c.c[probe][handler]["port"];
                    assert!(port.is_null() || c.has_port(port), "{}: {probe} on port {port}, not declared", c.at);
                }
            }
            if c.is_tiercache() {
                assert_eq!(c.c["readinessProbe"]["httpGet"]["path"], "/health?ready=1", "{}: readiness", c.at);
                let live = c.c["livenessProbe"]["httpGet"]["path"].as_str().unwrap_or("");
                assert!(live.starts_with("/health"), "{}: liveness must ask /health, not {live:?}", c.at);
            }
            // Panics on an envFrom or valueFrom that names a missing ConfigMap, Secret or key.
            env(&r.objects, c);
        }
        for w in workloads(r) {
            let labels = &w["spec"]["template"]["metadata"]["labels"];
            assert!(selects(&w["spec"]["selector"]["matchLabels"], labels), "{}: selector ⊄ labels", name_of(w));
            if w["kind"] == "StatefulSet" {
                let service = w["spec"]["serviceName"].as_str().unwrap_or("");
                let found = find(&r.objects, "Service", service)
                    .unwrap_or_else(|| panic!("{}: serviceName {service} is not rendered", name_of(w)));
                assert_eq!(found["spec"]["clusterIP"], "None", "{}: its Service must be headless", name_of(w));
            }
        }
        for svc in of_kind(&r.objects, "Service") {
            let selected: Vec<&Container<'_>> =
                all.iter().filter(|c| selects(&svc["spec"]["selector"], c.labels())).collect();
            assert!(!selected.is_empty(), "{} ({}) selects no pod", name_of(svc), r.dir);
            for p in arr(&svc["spec"]["ports"]) {
                let target = if p["targetPort"].is_null() { &p["port"] } else { &p["targetPort"] };
                assert!(selected.iter().any(|c| c.has_port(target)), "{}: no pod has port {target}", name_of(svc));
            }
        }
        for pdb in of_kind(&r.objects, "PodDisruptionBudget") {
            let selector = &pdb["spec"]["selector"]["matchLabels"];
            assert!(all.iter().any(|c| selects(selector, c.labels())), "{} selects no pod", name_of(pdb));
        }
        for policy in of_kind(&r.objects, "NetworkPolicy") {
            let selected: Vec<&Container<'_>> =
                all.iter().filter(|c| selects(&policy["spec"]["podSelector"]["matchLabels"], c.labels())).collect();
            assert!(!selected.is_empty(), "{} selects no pod", name_of(policy));
            for rule in arr(&policy["spec"]["ingress"]) {
                for port in arr(&rule["ports"]) {
                    let port = &port["port"];
                    assert!(
                        selected.iter().any(|c| c.has_port(port)),
                        "{}: no selected pod has port {port}",
                        name_of(policy)
                    );
                }
                for peer in arr(&rule["from"]) {
                    let selector = &peer["podSelector"]["matchLabels"];
                    // Peers in other namespaces (Prometheus) are not rendered here.
                    if peer["namespaceSelector"].is_null() && !selector.is_null() {
                        assert!(
                            all.iter().any(|c| selects(selector, c.labels())),
                            "{}: a peer selects no pod",
                            name_of(policy)
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn auxiliary_memory_limit_follows_the_readme_formula() {
    for r in rendered() {
        for c in containers(r).iter().filter(|c| c.is_tiercache() && c.role() == "auxiliary") {
            let vars = env(&r.objects, c);
            let number = |name: &str| -> u64 {
                value(&vars, name)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("{}: {name} must be set, as a number: the memory limit follows it", c.at))
            };
            let (max_bytes, entries) = (number("CACHE_MAX_BYTES"), number("CACHE_SIZE"));
            let needed = aux_memory_needed(max_bytes, entries);
            let limit = bytes(&c.c["resources"]["limits"]["memory"], &c.at);
            assert!(
                needed <= limit && limit < needed + MEMORY_ROUNDING,
                "{}: memory limit {limit} B; the formula (2 × CACHE_MAX_BYTES + 100 B × CACHE_SIZE + 64 MiB, \
                 CACHE_MAX_BYTES={max_bytes}, CACHE_SIZE={entries}) gives {needed} B = {:.1} MiB",
                c.at,
                needed as f64 / (1u64 << 20) as f64
            );
        }
    }
}

#[test]
fn the_grafana_dashboard_configmap_is_the_dashboard_file() {
    let original = read(DASHBOARD);
    assert!(
        read(DASHBOARD_COPY) == original,
        "{DASHBOARD_COPY} differs from {DASHBOARD}: cp {DASHBOARD} {DASHBOARD_COPY}"
    );
    for r in rendered() {
        let dashboards: Vec<&Value> = of_kind(&r.objects, "ConfigMap")
            .filter(|cm| cm["metadata"]["labels"]["grafana_dashboard"] == "1")
            .collect();
        assert_eq!(dashboards.len(), 1, "{}: one ConfigMap labelled grafana_dashboard: \"1\" expected", r.dir);
        assert!(
            dashboards[0]["data"]["tiercache.json"].as_str() == Some(original.as_str()),
            "{}: the dashboard ConfigMap's tiercache.json is not {DASHBOARD}",
            r.dir
        );
    }
}
