//! Checks the Kubernetes examples in `examples/kubernetes` without a cluster.
//! Every `*.yaml` file must parse (all its documents) and the Grafana
//! dashboard must be valid JSON. Within each example directory, names, ports
//! and labels must agree: Service selectors, target ports, probe ports,
//! ConfigMap and Secret references, the HPA's target and custom metric, the
//! PodDisruptionBudget's selector. Every luas config held in a ConfigMap
//! must pass luas's own validator and fit the pod that mounts it: listener
//! and admin ports are container ports (or, for a loopback listener, an
//! address another container of the pod is told about), the config, token
//! and state files are where the config says, DNS names point at headless
//! Services of the same directory on a port their pods serve, `kubernetes:`
//! sources name a Service of the directory and one of its ports, and a fleet
//! replica publishes its pod IP, has a name of its own and is not killed
//! while it waits for the API. The service account of every luas pod may do
//! exactly what luas does with the Kubernetes API for its config (RBAC):
//! nothing missing, nothing more. The PodMonitor and the Prometheus scrape
//! config must select every luas pod on its admin port, and the dashboard
//! and Prometheus Adapter rule may only query metric names and `code` values
//! that luas really exports. An ignored test (it needs `kubernetes-validate`,
//! which scripts/test.sh installs) checks every manifest against the
//! Kubernetes 1.33 OpenAPI schemas in strict mode. The tests at the end feed
//! broken manifests to the same checks to show that each of them can fail.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use luas::config::Config;
use serde::Deserialize;
use yaml_serde::Value;

/// The container name of luas in every example.
const LUAS_CONTAINER: &str = "luas";

/// What Kubernetes gives a pod without `terminationGracePeriodSeconds`.
const DEFAULT_TERMINATION_GRACE: u64 = 30;

/// What leaving the fleet may add to a replica's shutdown before its drain
/// starts: it gives up the rollout Lease and deletes its own Lease, two API
/// calls of at most 2 s each (`API_TIMEOUT` in src/fleet/mod.rs).
const FLEET_LEAVE: Duration = Duration::from_secs(4);

/// `fleet.startup_timeout` when the config does not set it.
const FLEET_STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// One YAML document and the file it came from (`edge/hpa.yaml`).
#[derive(Debug)]
struct Doc {
    file: String,
    value: Value,
}

impl Doc {
    fn kind(&self) -> &str {
        text(&self.value, &["kind"]).unwrap_or("")
    }

    fn name(&self) -> &str {
        text(&self.value, &["metadata", "name"]).unwrap_or("")
    }

    /// Names the document in a problem report.
    fn what(&self) -> String {
        format!("{}: {} {}", self.file, self.kind(), self.name())
    }
}

/// The documents of one example directory.
#[derive(Debug)]
struct Set {
    name: String,
    docs: Vec<Doc>,
}

impl Set {
    fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Doc> + 'a {
        self.docs.iter().filter(move |doc| doc.kind() == kind)
    }

    fn find(&self, kind: &str, name: &str) -> Option<&Doc> {
        self.docs
            .iter()
            .find(|doc| doc.kind() == kind && doc.name() == name)
    }

    /// Workloads with a pod template.
    fn workloads(&self) -> impl Iterator<Item = &Doc> {
        self.of_kind("Deployment")
    }
}

/// The metric names and `code` label values luas really exports.
#[derive(Debug)]
struct Catalog {
    names: BTreeSet<String>,
    codes: BTreeSet<String>,
}

// ---------------------------------------------------------------------------
// Loading

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/kubernetes")
}

/// Every document of a multi-document YAML text; empty documents are skipped.
fn parse_documents(file: &str, text: &str) -> Result<Vec<Doc>, String> {
    let mut docs = Vec::new();
    for document in yaml_serde::Deserializer::from_str(text) {
        let value = Value::deserialize(document).map_err(|error| format!("{file}: {error}"))?;
        if !value.is_null() {
            docs.push(Doc {
                file: file.to_owned(),
                value,
            });
        }
    }
    Ok(docs)
}

fn load_set(dir: &Path) -> Result<Set, String> {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|error| format!("{}: {error}", dir.display()))?
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml")
        })
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for path in files {
        let file = format!("{name}/{}", path.file_name().unwrap().to_string_lossy());
        let text = fs::read_to_string(&path).map_err(|error| format!("{file}: {error}"))?;
        docs.extend(parse_documents(&file, &text)?);
    }
    Ok(Set { name, docs })
}

/// Every example directory, or every file that failed to load.
fn load_sets() -> Result<Vec<Set>, Vec<String>> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(examples_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    let mut sets = Vec::new();
    let mut errors = Vec::new();
    for dir in dirs {
        match load_set(&dir) {
            Ok(set) => sets.push(set),
            Err(error) => errors.push(error),
        }
    }
    if errors.is_empty() {
        Ok(sets)
    } else {
        Err(errors)
    }
}

fn sets() -> Vec<Set> {
    load_sets().unwrap_or_else(|errors| panic!("examples do not parse:\n{}", errors.join("\n")))
}

fn load_dashboard() -> Result<serde_json::Value, String> {
    let path = examples_dir().join("monitoring/grafana-dashboard.json");
    let text = fs::read_to_string(&path).map_err(|error| format!("{}: {error}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|error| format!("monitoring/grafana-dashboard.json: {error}"))
}

/// The arguments the image runs with when a container sets none: the
/// Dockerfile's `CMD`.
fn image_default_args() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile");
    let dockerfile = fs::read_to_string(path).unwrap();
    let cmd = dockerfile
        .lines()
        .find_map(|line| line.strip_prefix("CMD "))
        .expect("the Dockerfile has a CMD line");
    serde_json::from_str(cmd).expect("the Dockerfile's CMD is a JSON list of strings")
}

/// Binds a series of every family and reads the names back from the text
/// exposition, so the list cannot drift from `src/metrics.rs`.
fn luas_catalog() -> Catalog {
    let metrics = luas::metrics::Metrics::new(&[0.01, 0.1, 1.0]);
    metrics.endpoint("web", "stable", "127.0.0.1:8081");
    metrics.route("edge", "all");
    metrics.listener("edge");
    metrics.service("web");
    metrics.group_weight("web", "stable");
    metrics.rollout_step("web");
    metrics.rollout_decisions("web", "promote");
    metrics.config_reloads("success");
    let exposition = String::from_utf8(metrics.render()).unwrap();
    let mut names = BTreeSet::new();
    let mut codes = BTreeSet::new();
    for line in exposition.lines().filter(|line| !line.starts_with('#')) {
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        names.insert(line[..name_end].to_owned());
        if let Some(start) = line.find("code=\"") {
            let value = &line[start + 6..];
            codes.insert(value[..value.find('"').unwrap()].to_owned());
        }
    }
    Catalog { names, codes }
}

// ---------------------------------------------------------------------------
// Reading values

fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |value, key| value.get(*key))
}

fn text<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(value, path).and_then(Value::as_str)
}

fn list<'a>(value: &'a Value, path: &[&str]) -> &'a [Value] {
    at(value, path)
        .and_then(Value::as_sequence)
        .map_or(&[], Vec::as_slice)
}

/// A map of strings such as labels or a selector; empty when absent.
fn string_map(value: &Value, path: &[&str]) -> BTreeMap<String, String> {
    let Some(mapping) = at(value, path).and_then(Value::as_mapping) else {
        return BTreeMap::new();
    };
    mapping
        .iter()
        .map(|(key, value)| (show(key), show(value)))
        .collect()
}

/// A scalar as written, for messages and comparisons.
fn show(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        Value::Bool(flag) => flag.to_string(),
        other => yaml_serde::to_string(other).unwrap().trim().to_owned(),
    }
}

fn pod_labels(workload: &Doc) -> BTreeMap<String, String> {
    string_map(&workload.value, &["spec", "template", "metadata", "labels"])
}

fn containers(workload: &Doc) -> &[Value] {
    list(&workload.value, &["spec", "template", "spec", "containers"])
}

fn luas_container(workload: &Doc) -> Option<&Value> {
    containers(workload)
        .iter()
        .find(|container| text(container, &["name"]) == Some(LUAS_CONTAINER))
}

/// A selector selects labels when it is not empty and all its pairs are there.
fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty()
        && selector
            .iter()
            .all(|(key, value)| labels.get(key) == Some(value))
}

fn selected_workloads<'a>(set: &'a Set, selector: &BTreeMap<String, String>) -> Vec<&'a Doc> {
    set.workloads()
        .filter(|workload| selects(selector, &pod_labels(workload)))
        .collect()
}

/// The container port number a port reference (a number or a port name)
/// stands for, if the container has it.
fn container_port(container: &Value, port: &Value) -> Option<u64> {
    let number_of = |entry: &Value| at(entry, &["containerPort"]).and_then(Value::as_u64);
    let ports = list(container, &["ports"]);
    match port {
        Value::Number(number) => ports
            .iter()
            .filter_map(number_of)
            .find(|found| Some(*found) == number.as_u64()),
        Value::String(name) => ports
            .iter()
            .find(|entry| text(entry, &["name"]) == Some(name.as_str()))
            .and_then(number_of),
        _ => None,
    }
}

/// Keys a ConfigMap or Secret defines.
fn data_keys(doc: &Doc) -> BTreeSet<String> {
    ["data", "stringData", "binaryData"]
        .into_iter()
        .flat_map(|field| string_map(&doc.value, &[field]).into_keys())
        .collect()
}

/// The ConfigMap and Secret sources of a volume, with the object's kind:
/// the volume itself, or each source of a projected volume.
fn volume_sources(volume: &Value) -> Vec<(&'static str, &Value)> {
    let projected = list(volume, &["projected", "sources"]);
    std::iter::once(volume)
        .chain(projected)
        .flat_map(|source| {
            [("ConfigMap", "configMap"), ("Secret", "secret")]
                .into_iter()
                .filter_map(move |(kind, field)| Some((kind, source.get(field)?)))
        })
        .collect()
}

/// `secretName` in a secret volume, `name` everywhere else.
fn source_name(source: &Value) -> &str {
    text(source, &["secretName"])
        .or_else(|| text(source, &["name"]))
        .unwrap_or("")
}

/// A file a container sees, and the key of the ConfigMap or Secret it holds.
#[derive(Debug)]
struct MountedFile {
    path: String,
    kind: &'static str,
    name: String,
    key: String,
}

/// Every ConfigMap and Secret file mounted into a container.
fn mounted_files(set: &Set, workload: &Doc, container: &Value) -> Vec<MountedFile> {
    let volumes = list(&workload.value, &["spec", "template", "spec", "volumes"]);
    let mut files = Vec::new();
    for mount in list(container, &["volumeMounts"]) {
        let mount_path = text(mount, &["mountPath"]).unwrap_or("");
        let Some(volume) = volumes
            .iter()
            .find(|volume| text(volume, &["name"]) == text(mount, &["name"]))
        else {
            continue;
        };
        for (kind, source) in volume_sources(volume) {
            let name = source_name(source);
            let items = list(source, &["items"]);
            let pairs: Vec<(String, String)> = if items.is_empty() {
                let keys = set.find(kind, name).map(data_keys).unwrap_or_default();
                keys.into_iter().map(|key| (key.clone(), key)).collect()
            } else {
                items
                    .iter()
                    .map(|item| {
                        let key = text(item, &["key"]).unwrap_or("").to_owned();
                        (key, text(item, &["path"]).unwrap_or("").to_owned())
                    })
                    .collect()
            };
            for (key, relative) in pairs {
                files.push(MountedFile {
                    path: format!("{}/{relative}", mount_path.trim_end_matches('/')),
                    kind,
                    name: name.to_owned(),
                    key,
                });
            }
        }
    }
    files
}

/// The value of a container's environment variable.
fn env_value<'a>(container: &'a Value, name: &str) -> Option<&'a str> {
    list(container, &["env"])
        .iter()
        .find(|variable| text(variable, &["name"]) == Some(name))
        .and_then(|variable| text(variable, &["value"]))
}

/// The `fieldRef.fieldPath` a container's environment variable is taken from.
fn env_field<'a>(container: &'a Value, name: &str) -> Option<&'a str> {
    list(container, &["env"])
        .iter()
        .find(|variable| text(variable, &["name"]) == Some(name))
        .and_then(|variable| text(variable, &["valueFrom", "fieldRef", "fieldPath"]))
}

/// Directories a container may write to: its volume mounts not marked
/// read-only.
fn writable_dirs(container: &Value) -> Vec<String> {
    list(container, &["volumeMounts"])
        .iter()
        .filter(|mount| at(mount, &["readOnly"]).and_then(Value::as_bool) != Some(true))
        .filter_map(|mount| text(mount, &["mountPath"]))
        .map(|path| path.trim_end_matches('/').to_owned())
        .collect()
}

/// The `--config` (or `-c`) argument a container runs luas with.
fn config_argument(container: &Value, default_args: &[String]) -> Option<String> {
    let strings = |value: &Value| -> Vec<String> {
        value
            .as_sequence()
            .map(|items| items.iter().map(show).collect())
            .unwrap_or_default()
    };
    let mut words = at(container, &["command"]).map(strings).unwrap_or_default();
    match at(container, &["args"]) {
        Some(args) => words.extend(strings(args)),
        None => words.extend(default_args.iter().cloned()),
    }
    let mut words = words.iter();
    while let Some(word) = words.next() {
        if word == "--config" || word == "-c" {
            return words.next().cloned();
        }
        if let Some(path) = word.strip_prefix("--config=") {
            return Some(path.to_owned());
        }
    }
    None
}

/// The text of every ConfigMap key `config.yaml` that is a luas config (not
/// a Prometheus Adapter config, which has `rules:`).
fn luas_configs(set: &Set) -> Vec<(&Doc, &str)> {
    set.of_kind("ConfigMap")
        .filter_map(|doc| Some((doc, text(&doc.value, &["data", "config.yaml"])?)))
        .filter(|(_, config)| adapter_rules_of(config).is_none())
        .collect()
}

/// The rules of a Prometheus Adapter config, None for any other text.
fn adapter_rules_of(config: &str) -> Option<Vec<Value>> {
    let value: Value = yaml_serde::from_str(config).ok()?;
    value.get("rules")?.as_sequence().cloned()
}

/// Characters Prometheus keeps in label names made from Kubernetes labels.
fn sanitize_label(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

// ---------------------------------------------------------------------------
// Checks of one directory's manifests. Each returns its problems, empty when
// all is well.

fn check_manifests(set: &Set) -> Vec<String> {
    let mut problems = Vec::new();
    problems.extend(check_workload_selectors(set));
    problems.extend(check_services(set));
    problems.extend(check_volumes(set));
    problems.extend(check_probe_ports(set));
    problems.extend(check_autoscalers(set));
    problems.extend(check_disruption_budgets(set));
    problems
}

/// A Deployment's selector must select its own pod template.
fn check_workload_selectors(set: &Set) -> Vec<String> {
    set.workloads()
        .filter(|workload| {
            let selector = string_map(&workload.value, &["spec", "selector", "matchLabels"]);
            !selects(&selector, &pod_labels(workload))
        })
        .map(|workload| {
            format!(
                "{}: spec.selector does not select its own pod template",
                workload.what()
            )
        })
        .collect()
}

/// Service selectors select a pod template, and target ports exist on it.
fn check_services(set: &Set) -> Vec<String> {
    let mut problems = Vec::new();
    for service in set.of_kind("Service") {
        let selector = string_map(&service.value, &["spec", "selector"]);
        let workloads = selected_workloads(set, &selector);
        if workloads.is_empty() {
            problems.push(format!(
                "{}: selector {selector:?} selects no pod template in {}",
                service.what(),
                set.name
            ));
            continue;
        }
        for port in list(&service.value, &["spec", "ports"]) {
            let Some(target) = port.get("targetPort").or_else(|| port.get("port")) else {
                problems.push(format!("{}: a port has no port number", service.what()));
                continue;
            };
            for workload in &workloads {
                let found = containers(workload)
                    .iter()
                    .any(|container| container_port(container, target).is_some());
                if !found {
                    problems.push(format!(
                        "{}: targetPort {} is not a container port of Deployment {}",
                        service.what(),
                        show(target),
                        workload.name()
                    ));
                }
            }
        }
    }
    problems
}

/// Volumes name ConfigMaps and Secrets (and keys) of the same directory;
/// volume mounts name volumes of the pod.
fn check_volumes(set: &Set) -> Vec<String> {
    let mut problems = Vec::new();
    for workload in set.workloads() {
        let volumes = list(&workload.value, &["spec", "template", "spec", "volumes"]);
        for volume in volumes {
            for (kind, source) in volume_sources(volume) {
                let name = source_name(source);
                let Some(object) = set.find(kind, name) else {
                    problems.push(format!(
                        "{}: volume {} refers to {kind} {name}, which {} does not define",
                        workload.what(),
                        text(volume, &["name"]).unwrap_or(""),
                        set.name
                    ));
                    continue;
                };
                let keys = data_keys(object);
                for item in list(source, &["items"]) {
                    let key = text(item, &["key"]).unwrap_or("");
                    if !keys.contains(key) {
                        problems.push(format!(
                            "{}: volume item {key} is not a key of {kind} {name}",
                            workload.what()
                        ));
                    }
                }
            }
        }
        for container in containers(workload) {
            for mount in list(container, &["volumeMounts"]) {
                let name = text(mount, &["name"]).unwrap_or("");
                if !volumes
                    .iter()
                    .any(|volume| text(volume, &["name"]) == Some(name))
                {
                    problems.push(format!(
                        "{}: container {} mounts volume {name}, which the pod does not have",
                        workload.what(),
                        text(container, &["name"]).unwrap_or("")
                    ));
                }
            }
        }
    }
    problems
}

/// Probe and preStop ports are ports of the same container.
fn check_probe_ports(set: &Set) -> Vec<String> {
    let mut problems = Vec::new();
    for workload in set.workloads() {
        for container in containers(workload) {
            let handlers = [
                "readinessProbe",
                "livenessProbe",
                "startupProbe",
                "lifecycle.preStop",
            ];
            for handler in handlers {
                let path: Vec<&str> = handler.split('.').collect();
                let Some(handler_value) = at(container, &path) else {
                    continue;
                };
                for action in ["httpGet", "tcpSocket", "grpc"] {
                    let Some(port) = at(handler_value, &[action, "port"]) else {
                        continue;
                    };
                    if container_port(container, port).is_none() {
                        problems.push(format!(
                            "{}: {handler} of container {} uses port {}, which the container does not have",
                            workload.what(),
                            text(container, &["name"]).unwrap_or(""),
                            show(port)
                        ));
                    }
                }
            }
        }
    }
    problems
}

/// HPAs scale a Deployment of the directory, and their custom metrics are
/// served by a Prometheus Adapter rule of the directory.
fn check_autoscalers(set: &Set) -> Vec<String> {
    let served: BTreeSet<String> = adapter_configs(set)
        .iter()
        .flat_map(|(_, rules)| rules.iter())
        .filter_map(|rule| text(rule, &["name", "as"]).map(str::to_owned))
        .collect();
    let mut problems = Vec::new();
    for hpa in set.of_kind("HorizontalPodAutoscaler") {
        let kind = text(&hpa.value, &["spec", "scaleTargetRef", "kind"]).unwrap_or("");
        let name = text(&hpa.value, &["spec", "scaleTargetRef", "name"]).unwrap_or("");
        if set.find(kind, name).is_none() || kind != "Deployment" {
            problems.push(format!(
                "{}: scaleTargetRef {kind} {name} is not a Deployment of {}",
                hpa.what(),
                set.name
            ));
        }
        for metric in list(&hpa.value, &["spec", "metrics"]) {
            for source in ["pods", "object"] {
                let Some(metric_name) = text(metric, &[source, "metric", "name"]) else {
                    continue;
                };
                if !served.contains(metric_name) {
                    problems.push(format!(
                        "{}: custom metric {metric_name} is not served by any Prometheus Adapter rule of {}",
                        hpa.what(),
                        set.name
                    ));
                }
            }
        }
    }
    problems
}

fn check_disruption_budgets(set: &Set) -> Vec<String> {
    set.of_kind("PodDisruptionBudget")
        .filter(|pdb| {
            let selector = string_map(&pdb.value, &["spec", "selector", "matchLabels"]);
            selected_workloads(set, &selector).is_empty()
        })
        .map(|pdb| {
            format!(
                "{}: selector selects no pod template in {}",
                pdb.what(),
                set.name
            )
        })
        .collect()
}

/// ConfigMaps holding a Prometheus Adapter config, with its rules.
fn adapter_configs(set: &Set) -> Vec<(&Doc, Vec<Value>)> {
    set.of_kind("ConfigMap")
        .filter_map(|doc| {
            let config = text(&doc.value, &["data", "config.yaml"])?;
            Some((doc, adapter_rules_of(config)?))
        })
        .collect()
}

/// Adapter rules query a luas metric, per pod and namespace, as a rate over
/// one minute.
fn check_adapter_rules(set: &Set, catalog: &Catalog) -> Vec<String> {
    let mut problems = Vec::new();
    for (doc, rules) in adapter_configs(set) {
        for rule in &rules {
            let series = text(rule, &["seriesQuery"]).unwrap_or("");
            let metric = &series[..series.find('{').unwrap_or(series.len())];
            if !catalog.names.contains(metric) {
                problems.push(format!(
                    "{}: seriesQuery names {metric:?}, which luas does not export",
                    doc.what()
                ));
            }
            let query = text(rule, &["metricsQuery"]).unwrap_or("");
            for needed in [
                "rate(",
                "[1m]",
                "<<.Series>>",
                "<<.LabelMatchers>>",
                "<<.GroupBy>>",
            ] {
                if !query.contains(needed) {
                    problems.push(format!("{}: metricsQuery lacks {needed}", doc.what()));
                }
            }
            for label in ["namespace", "pod"] {
                if at(rule, &["resources", "overrides", label]).is_none() {
                    problems.push(format!(
                        "{}: resources.overrides does not map the {label} label",
                        doc.what()
                    ));
                }
            }
            if text(rule, &["name", "as"]).unwrap_or("").is_empty() {
                problems.push(format!("{}: a rule has no name.as", doc.what()));
            }
        }
    }
    problems
}

// ---------------------------------------------------------------------------
// Checks of the luas configs against the pods that run them

fn check_luas_configs(set: &Set, default_args: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    for (config_map, config) in luas_configs(set) {
        let raw: Value = match yaml_serde::from_str(config) {
            Ok(raw) => raw,
            Err(error) => {
                problems.push(format!("{}: config.yaml: {error}", config_map.what()));
                continue;
            }
        };
        let mut users = 0;
        for workload in set.workloads() {
            let Some(container) = luas_container(workload) else {
                continue;
            };
            let files = mounted_files(set, workload, container);
            let mounts_it = files.iter().any(|file| {
                file.kind == "ConfigMap"
                    && file.name == config_map.name()
                    && file.key == "config.yaml"
            });
            if !mounts_it {
                continue;
            }
            users += 1;
            let context = format!(
                "{} (config of Deployment {})",
                config_map.what(),
                workload.name()
            );
            problems.extend(check_luas_files(
                &context,
                config_map,
                &raw,
                container,
                &files,
                default_args,
            ));
            problems.extend(check_luas_ports(&context, &raw, workload, container));
            problems.extend(check_luas_shutdown(&context, &raw, workload, container));
            problems.extend(check_fleet_pod(&context, &raw, workload, container));
        }
        if users == 0 {
            problems.push(format!(
                "{}: no container named {LUAS_CONTAINER} mounts this luas config",
                config_map.what()
            ));
        }
        problems.extend(check_dns_names(set, config_map, &raw));
        problems.extend(check_kubernetes_sources(set, config_map, &raw));
    }
    problems
}

/// The config, token and state files are where luas will look for them.
fn check_luas_files(
    context: &str,
    config_map: &Doc,
    raw: &Value,
    container: &Value,
    files: &[MountedFile],
    default_args: &[String],
) -> Vec<String> {
    let mut problems = Vec::new();
    let config_path = config_argument(container, default_args).unwrap_or_default();
    let config_there = files.iter().any(|file| {
        file.path == config_path
            && file.kind == "ConfigMap"
            && file.name == config_map.name()
            && file.key == "config.yaml"
    });
    if !config_there {
        problems.push(format!(
            "{context}: luas runs with --config {config_path:?}, but this ConfigMap's config.yaml is mounted at {:?}",
            files
                .iter()
                .filter(|file| file.name == config_map.name())
                .map(|file| file.path.as_str())
                .collect::<Vec<_>>()
        ));
    }
    if let Some(token_file) = text(raw, &["admin", "token_file"]) {
        if !files
            .iter()
            .any(|file| file.path == token_file && file.kind == "Secret")
        {
            problems.push(format!(
                "{context}: admin.token_file {token_file} is not a file mounted from a Secret"
            ));
        }
        let ctl_token_file = env_value(container, "LUAS_ADMIN_TOKEN_FILE");
        if ctl_token_file != Some(token_file) {
            problems.push(format!(
                "{context}: LUAS_ADMIN_TOKEN_FILE is {ctl_token_file:?}, not admin.token_file {token_file}, so `luas ctl` in the container cannot make changes"
            ));
        }
    }
    if let Some(state_file) = text(raw, &["state_file"]) {
        let dir = Path::new(state_file).parent().unwrap().to_string_lossy();
        if !writable_dirs(container)
            .iter()
            .any(|writable| *writable == dir)
        {
            problems.push(format!(
                "{context}: the directory of state_file {state_file} is not a writable volume mount"
            ));
        }
    }
    problems
}

/// Listeners and admin bind every address on ports the container declares
/// (and it declares no other), and the probes ask the admin port for /ready
/// and /live. A listener may instead bind loopback, for the other containers
/// of the pod (a sidecar's outbound side): then it is no container port, and
/// another container's environment names its address, or nothing would call
/// it.
fn check_luas_ports(context: &str, raw: &Value, workload: &Doc, container: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let mut addresses: Vec<(String, &str, bool)> = list(raw, &["listeners"])
        .iter()
        .map(|listener| {
            let name = text(listener, &["name"]).unwrap_or("");
            (
                format!("listener {name}"),
                text(listener, &["listen"]).unwrap_or(""),
                true,
            )
        })
        .collect();
    let admin = text(raw, &["admin", "listen"]).unwrap_or("127.0.0.1:9901");
    addresses.push(("admin".to_owned(), admin, false));
    let mut used = BTreeSet::new();
    for (what, address, may_be_loopback) in &addresses {
        let Ok(address) = address.parse::<SocketAddr>() else {
            problems.push(format!(
                "{context}: {what} listens on {address:?}, not IP:port"
            ));
            continue;
        };
        let port = Value::from(address.port());
        if *may_be_loopback && address.ip().is_loopback() {
            if container_port(container, &port).is_some() {
                problems.push(format!(
                    "{context}: {what} binds loopback ({address}), yet port {} is a container port of the luas container, which nothing outside the pod can reach",
                    address.port()
                ));
            }
            if !told_to_other_containers(workload, &address.to_string()) {
                problems.push(format!(
                    "{context}: {what} binds loopback ({address}), which only the pod's own containers reach, but no other container's environment names {address}"
                ));
            }
            continue;
        }
        if !address.ip().is_unspecified() {
            problems.push(format!(
                "{context}: {what} binds {address}; in a pod it must bind 0.0.0.0 (or [::]) to be reachable"
            ));
        }
        if container_port(container, &port).is_none() {
            problems.push(format!(
                "{context}: {what} port {} is not a container port of the luas container",
                address.port()
            ));
        }
        used.insert(u64::from(address.port()));
    }
    for port in list(container, &["ports"]) {
        let number = at(port, &["containerPort"])
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if !used.contains(&number) {
            problems.push(format!(
                "{context}: container port {number} is not a port luas listens on"
            ));
        }
    }
    let admin_port = admin
        .parse::<SocketAddr>()
        .ok()
        .map(|address| u64::from(address.port()));
    for (probe, path) in [("readinessProbe", "/ready"), ("livenessProbe", "/live")] {
        let probe_path = text(container, &[probe, "httpGet", "path"]);
        let probe_port = at(container, &[probe, "httpGet", "port"])
            .and_then(|port| container_port(container, port));
        if probe_path != Some(path) || probe_port.is_none() || probe_port != admin_port {
            problems.push(format!(
                "{context}: {probe} must be an httpGet of {path} on the admin port ({admin})"
            ));
        }
    }
    problems
}

/// Whether a container of the pod other than luas has an environment
/// variable whose value contains `address` (`http://127.0.0.1:9090`).
fn told_to_other_containers(workload: &Doc, address: &str) -> bool {
    containers(workload)
        .iter()
        .filter(|container| text(container, &["name"]) != Some(LUAS_CONTAINER))
        .flat_map(|container| list(container, &["env"]))
        .filter_map(|variable| text(variable, &["value"]))
        .any(|value| value.contains(address))
}

/// The pod waits long enough for preStop plus luas's drain (plus, in fleet
/// mode, leaving the fleet, which comes before the drain).
fn check_luas_shutdown(
    context: &str,
    raw: &Value,
    workload: &Doc,
    container: &Value,
) -> Vec<String> {
    let budget = at(
        &workload.value,
        &["spec", "template", "spec", "terminationGracePeriodSeconds"],
    )
    .and_then(Value::as_u64)
    .unwrap_or(DEFAULT_TERMINATION_GRACE);
    let pre_stop = at(container, &["lifecycle", "preStop", "sleep", "seconds"])
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let grace_text = text(raw, &["shutdown", "grace_period"]).unwrap_or("10s");
    let Ok(grace) = luas::config::parse_duration(grace_text) else {
        return Vec::new(); // the validator reports it
    };
    let leave = if raw.get("fleet").is_some() {
        FLEET_LEAVE
    } else {
        Duration::ZERO
    };
    if Duration::from_secs(pre_stop) + leave + grace >= Duration::from_secs(budget) {
        vec![format!(
            "{context}: terminationGracePeriodSeconds {budget} does not cover the preStop sleep ({pre_stop}s) plus leaving the fleet ({}s) plus shutdown.grace_period ({grace_text})",
            leave.as_secs()
        )]
    } else {
        Vec::new()
    }
}

/// A fleet replica in a pod: it publishes its admin address in its Lease,
/// where 0.0.0.0 would tell the other replicas nothing, so luas puts
/// `$POD_IP` in its place; its name defaults to `$HOSTNAME`, the pod's name,
/// unless the pod template gives every pod the same `hostname`; and it binds
/// its admin listener (the probes' port) only after waiting up to
/// `fleet.startup_timeout` for the API, so the kubelet must not restart it
/// before that wait is over.
fn check_fleet_pod(context: &str, raw: &Value, workload: &Doc, container: &Value) -> Vec<String> {
    let Some(fleet) = raw.get("fleet") else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    let admin = text(raw, &["admin", "listen"]).unwrap_or("127.0.0.1:9901");
    let unspecified = admin
        .parse::<SocketAddr>()
        .is_ok_and(|address| address.ip().is_unspecified());
    if unspecified && env_field(container, "POD_IP") != Some("status.podIP") {
        problems.push(format!(
            "{context}: admin binds {admin} and luas publishes $POD_IP in its Lease in its place, but POD_IP is not taken from status.podIP, so the other replicas and `luas ctl fleet` cannot reach this one"
        ));
    }
    let hostname = at(&workload.value, &["spec", "template", "spec", "hostname"]);
    if text(fleet, &["replica"]).is_none() && hostname.is_some() {
        problems.push(format!(
            "{context}: fleet.replica defaults to $HOSTNAME, but the pod template sets hostname, so every replica would have the same name"
        ));
    }
    let startup_timeout = match text(fleet, &["startup_timeout"]) {
        None => FLEET_STARTUP_TIMEOUT,
        Some(value) => match luas::config::parse_duration(value) {
            Ok(timeout) => timeout,
            Err(_) => return problems, // the validator reports it
        },
    };
    let (probe_name, probe) = match at(container, &["startupProbe"]) {
        Some(probe) => ("startupProbe", probe),
        None => match at(container, &["livenessProbe"]) {
            Some(probe) => ("livenessProbe", probe),
            None => return problems,
        },
    };
    // Kubernetes' defaults; the kubelet restarts the container at the
    // failureThreshold-th failed probe in a row.
    let field = |name: &str, default: u64| {
        at(probe, &[name])
            .and_then(Value::as_u64)
            .unwrap_or(default)
    };
    let restart_after = field("initialDelaySeconds", 0)
        + field("periodSeconds", 10) * field("failureThreshold", 3).saturating_sub(1);
    if Duration::from_secs(restart_after) <= startup_timeout {
        problems.push(format!(
            "{context}: the kubelet restarts luas after {restart_after}s of failed {probe_name} probes, within fleet.startup_timeout ({}s), while a replica that cannot reach the API is still waiting for it before it serves from its cache",
            startup_timeout.as_secs()
        ));
    }
    problems
}

/// `kubernetes: { service, port }` of services and groups names a Service
/// of the directory and one of its ports: by name, a port of the Service
/// with that name (EndpointSlices name their ports after the Service's); by
/// number, the port its pods serve on (EndpointSlices carry the pods' port,
/// the Service's targetPort). A source with its own `namespace` is not in
/// the directory and is not checked here (the RBAC check still covers it).
fn check_kubernetes_sources(set: &Set, config_map: &Doc, raw: &Value) -> Vec<String> {
    let mut sources = Vec::new();
    for service in list(raw, &["services"]) {
        let service_name = text(service, &["name"]).unwrap_or("");
        if let Some(source) = service.get("kubernetes") {
            sources.push((format!("service {service_name}"), source));
        }
        for group in list(service, &["groups"]) {
            if let Some(source) = group.get("kubernetes") {
                let group_name = text(group, &["name"]).unwrap_or("");
                sources.push((format!("service {service_name} group {group_name}"), source));
            }
        }
    }
    sources
        .into_iter()
        .filter(|(_, source)| source.get("namespace").is_none())
        .filter_map(|(what, source)| {
            check_kubernetes_source(set, source)
                .err()
                .map(|problem| format!("{}: {what}: {problem}", config_map.what()))
        })
        .collect()
}

fn check_kubernetes_source(set: &Set, source: &Value) -> Result<(), String> {
    let name = text(source, &["service"]).unwrap_or("");
    let service = set.find("Service", name).ok_or_else(|| {
        format!(
            "kubernetes.service {name}: {} defines no Service {name}",
            set.name
        )
    })?;
    let ports = list(&service.value, &["spec", "ports"]);
    match source.get("port") {
        Some(Value::String(port_name)) => {
            if ports
                .iter()
                .any(|entry| text(entry, &["name"]) == Some(port_name.as_str()))
            {
                Ok(())
            } else {
                Err(format!(
                    "kubernetes.port {port_name}: Service {name} has no port named {port_name}"
                ))
            }
        }
        Some(Value::Number(number)) => {
            let selector = string_map(&service.value, &["spec", "selector"]);
            let workloads = selected_workloads(set, &selector);
            let served = ports.iter().any(|entry| {
                let target = entry
                    .get("targetPort")
                    .or_else(|| entry.get("port"))
                    .cloned()
                    .unwrap_or(Value::Null);
                !workloads.is_empty()
                    && workloads.iter().all(|workload| {
                        containers(workload)
                            .iter()
                            .any(|container| container_port(container, &target) == number.as_u64())
                    })
            });
            if served {
                Ok(())
            } else {
                Err(format!(
                    "kubernetes.port {number}: no port of Service {name} sends to port {number} of its pods, the port its EndpointSlices carry"
                ))
            }
        }
        _ => Err("kubernetes.port is neither a port name nor a number".to_owned()),
    }
}

/// `dns: NAME.NAMESPACE.svc.cluster.local:PORT` of services and groups names
/// a headless Service of the directory, whose pods serve PORT.
fn check_dns_names(set: &Set, config_map: &Doc, raw: &Value) -> Vec<String> {
    let mut names = Vec::new();
    for service in list(raw, &["services"]) {
        names.extend(text(service, &["dns"]));
        for group in list(service, &["groups"]) {
            names.extend(text(group, &["dns"]));
        }
    }
    names
        .into_iter()
        .filter_map(|name| check_dns_name(set, name).err())
        .map(|problem| format!("{}: {problem}", config_map.what()))
        .collect()
}

fn check_dns_name(set: &Set, name: &str) -> Result<(), String> {
    let (host, port) = name
        .rsplit_once(':')
        .ok_or_else(|| format!("dns {name} has no port"))?;
    let port: u64 = port
        .parse()
        .map_err(|_| format!("dns {name} has no port number"))?;
    let labels: Vec<&str> = host.split('.').collect();
    let [service_name, namespace, "svc", "cluster", "local"] = labels[..] else {
        return Err(format!(
            "dns {name} is not SERVICE.NAMESPACE.svc.cluster.local:PORT"
        ));
    };
    let service = set
        .find("Service", service_name)
        .ok_or_else(|| format!("dns {name}: {} defines no Service {service_name}", set.name))?;
    let service_namespace = text(&service.value, &["metadata", "namespace"]).unwrap_or("default");
    if namespace != service_namespace {
        return Err(format!(
            "dns {name}: Service {service_name} is applied in namespace {service_namespace}"
        ));
    }
    if text(&service.value, &["spec", "clusterIP"]) != Some("None") {
        return Err(format!(
            "dns {name}: Service {service_name} is not headless (clusterIP: None), so its name resolves to one virtual IP, not to the pods"
        ));
    }
    let service_port = list(&service.value, &["spec", "ports"])
        .iter()
        .find(|entry| at(entry, &["port"]).and_then(Value::as_u64) == Some(port))
        .ok_or_else(|| format!("dns {name}: Service {service_name} has no port {port}"))?;
    // Clients of a headless Service connect to the pods directly, so the
    // pods themselves must serve the port given, and the Service should say
    // the same.
    let target = service_port
        .get("targetPort")
        .cloned()
        .unwrap_or(Value::from(port));
    let selector = string_map(&service.value, &["spec", "selector"]);
    for workload in selected_workloads(set, &selector) {
        let served = containers(workload).iter().any(|container| {
            container_port(container, &Value::from(port)).is_some()
                && container_port(container, &target) == Some(port)
        });
        if !served {
            return Err(format!(
                "dns {name}: the pods of Deployment {} do not serve port {port} (the Service's targetPort {})",
                workload.name(),
                show(&target)
            ));
        }
    }
    Ok(())
}

/// Runs luas's own validator over every luas config of the directory.
fn validate_luas_configs(set: &Set) -> Vec<String> {
    luas_configs(set)
        .into_iter()
        .filter_map(|(config_map, config)| {
            luas::config::Config::from_yaml(config).err().map(|error| {
                format!(
                    "{}: the luas validator rejects config.yaml: {error}",
                    config_map.what()
                )
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------
// RBAC: what each luas pod's service account may do with the Kubernetes API,
// against what luas does for the config it runs

/// One thing a service account may do: a verb on a kind of object of an API
/// group, in a namespace (None: the one the set is applied to), on any
/// object (`name` None) or only on the one named.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Permission {
    namespace: Option<String>,
    group: String,
    resource: String,
    verb: String,
    name: Option<String>,
}

impl Permission {
    fn new(namespace: Option<&str>, group: &str, resource: &str, verb: &str) -> Self {
        Self {
            namespace: namespace.map(str::to_owned),
            group: group.to_owned(),
            resource: resource.to_owned(),
            verb: verb.to_owned(),
            name: None,
        }
    }

    fn named(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} {}", self.verb, self.resource)?;
        if !self.group.is_empty() {
            write!(formatter, ".{}", self.group)?;
        }
        match &self.name {
            Some(name) => write!(formatter, " {name}")?,
            None => write!(formatter, " (any name)")?,
        }
        match &self.namespace {
            Some(namespace) => write!(formatter, " in namespace {namespace}"),
            None => write!(formatter, " in the set's namespace"),
        }
    }
}

/// Exactly the API calls luas makes for a config, as RBAC names them
/// (`kubernetes::describe` in src/kubernetes.rs counts them the same way).
/// `namespace` is the pod's (None: the one the set is applied to).
///
/// - Fleet mode (src/fleet): the state ConfigMap `luas-fleet-<name>` is read
///   (get), followed (list and watch with the field selector
///   `metadata.name=luas-fleet-<name>`, which the API server authorizes by
///   that name) and written (update); the first replica creates it (create,
///   which RBAC cannot restrict by name, the name being in the body). Each
///   replica creates, renews (update), reads (get) and deletes its Lease
///   `luas-fleet-<name>-<replica>` and the rollout Lease, and lists and
///   watches every replica's Lease by label: replica names are pod names,
///   unknown in advance, so these hold for any Lease.
/// - Every `kubernetes:` source of a group: list and watch of EndpointSlices
///   (label selector `kubernetes.io/service-name=<service>`), in the
///   source's namespace.
fn needed_permissions(config: &Config, namespace: Option<&str>) -> BTreeSet<Permission> {
    let home = config.kubernetes.namespace.as_deref().or(namespace);
    let mut needed = BTreeSet::new();
    if let Some(fleet) = &config.fleet {
        let state = format!("luas-fleet-{}", fleet.name);
        for verb in ["get", "list", "watch", "update"] {
            needed.insert(Permission::new(home, "", "configmaps", verb).named(&state));
        }
        needed.insert(Permission::new(home, "", "configmaps", "create"));
        for verb in ["get", "list", "watch", "create", "update", "delete"] {
            needed.insert(Permission::new(home, "coordination.k8s.io", "leases", verb));
        }
    }
    let sources = config
        .services
        .iter()
        .flat_map(|service| &service.groups)
        .filter_map(|group| group.kubernetes.as_ref());
    for source in sources {
        let namespace = source.namespace.as_deref().or(home);
        for verb in ["list", "watch"] {
            needed.insert(Permission::new(
                namespace,
                "discovery.k8s.io",
                "endpointslices",
                verb,
            ));
        }
    }
    needed
}

/// Every rule of a Role or ClusterRole, expanded to permissions in
/// `namespace` (a wildcard stays a `*`, which luas's needs never equal).
fn role_permissions(role: &Doc, namespace: Option<&str>) -> Vec<Permission> {
    let mut permissions = Vec::new();
    for rule in list(&role.value, &["rules"]) {
        let strings = |key: &str| -> Vec<String> { list(rule, &[key]).iter().map(show).collect() };
        let names = strings("resourceNames");
        let names: Vec<Option<String>> = if names.is_empty() {
            vec![None]
        } else {
            names.into_iter().map(Some).collect()
        };
        for group in strings("apiGroups") {
            for resource in strings("resources") {
                for verb in strings("verbs") {
                    for name in &names {
                        permissions.push(Permission {
                            namespace: namespace.map(str::to_owned),
                            group: group.clone(),
                            resource: resource.clone(),
                            verb: verb.clone(),
                            name: name.clone(),
                        });
                    }
                }
            }
        }
    }
    permissions
}

/// Whether a binding's subject is the service account `account` of
/// `namespace`; a RoleBinding's subject without a namespace is in the
/// binding's own.
fn binds_account(
    binding: &Doc,
    account: &str,
    namespace: Option<&str>,
    cluster_wide: bool,
) -> bool {
    let binding_namespace = text(&binding.value, &["metadata", "namespace"]);
    list(&binding.value, &["subjects"]).iter().any(|subject| {
        let subject_namespace = text(subject, &["namespace"]);
        let subject_namespace = if cluster_wide {
            subject_namespace
        } else {
            subject_namespace.or(binding_namespace)
        };
        text(subject, &["kind"]) == Some("ServiceAccount")
            && text(subject, &["name"]) == Some(account)
            && subject_namespace == namespace
    })
}

/// What the set grants service account `account` of `namespace` through its
/// RoleBindings, and what is wrong with those on the way.
fn granted_permissions(
    set: &Set,
    account: &str,
    namespace: Option<&str>,
) -> (BTreeSet<Permission>, Vec<String>) {
    let mut granted = BTreeSet::new();
    let mut problems = Vec::new();
    for binding in set.of_kind("ClusterRoleBinding") {
        if binds_account(binding, account, namespace, true) {
            problems.push(format!(
                "{}: binds service account {account} in every namespace; luas needs a RoleBinding in its own",
                binding.what()
            ));
        }
    }
    for binding in set.of_kind("RoleBinding") {
        if !binds_account(binding, account, namespace, false) {
            continue;
        }
        let binding_namespace = text(&binding.value, &["metadata", "namespace"]);
        let kind = text(&binding.value, &["roleRef", "kind"]).unwrap_or("");
        let name = text(&binding.value, &["roleRef", "name"]).unwrap_or("");
        let role = set.of_kind(kind).find(|role| {
            role.name() == name
                && (kind == "ClusterRole"
                    || text(&role.value, &["metadata", "namespace"]) == binding_namespace)
        });
        match role {
            Some(role) if kind == "Role" || kind == "ClusterRole" => {
                granted.extend(role_permissions(role, binding_namespace));
            }
            _ => problems.push(format!(
                "{}: roleRef {kind} {name} is not a Role (or ClusterRole) of {}, so what it grants cannot be checked",
                binding.what(),
                set.name
            )),
        }
    }
    (granted, problems)
}

/// A service account: its namespace (None: the set's) and name.
type Account = (Option<String>, String);

/// What an account's luas pods need, and which pods those are.
type Uses = (BTreeSet<Permission>, Vec<String>);

/// The service account of every luas pod may do exactly what luas does with
/// the Kubernetes API for the config that pod runs: each missing permission
/// is a call that would fail with 403, each extra one a permission no luas
/// call uses.
fn check_rbac(set: &Set) -> Vec<String> {
    let mut problems = Vec::new();
    // Per service account (namespace, name): what its luas pods need, and
    // which pods those are.
    let mut accounts: BTreeMap<Account, Uses> = BTreeMap::new();
    for workload in set.workloads() {
        let Some(container) = luas_container(workload) else {
            continue;
        };
        let files = mounted_files(set, workload, container);
        let runs = luas_configs(set).into_iter().find(|(config_map, _)| {
            files.iter().any(|file| {
                file.kind == "ConfigMap"
                    && file.name == config_map.name()
                    && file.key == "config.yaml"
            })
        });
        let Some((config_map, text_of_config)) = runs else {
            continue; // check_luas_configs reports a pod without its config
        };
        let Ok(config) = Config::from_yaml(text_of_config) else {
            continue; // the validator test reports it
        };
        if config.kubernetes.kubeconfig.is_some() {
            problems.push(format!(
                "{}: kubernetes.kubeconfig is set, so luas does not call the API as the pod's service account, and this check cannot tell who it is",
                config_map.what()
            ));
        }
        let pod = &workload.value;
        let namespace = text(pod, &["metadata", "namespace"]).map(str::to_owned);
        let account = text(pod, &["spec", "template", "spec", "serviceAccountName"])
            .unwrap_or("default")
            .to_owned();
        let needed = needed_permissions(&config, namespace.as_deref());
        let automount = at(
            pod,
            &["spec", "template", "spec", "automountServiceAccountToken"],
        )
        .or_else(|| {
            set.find("ServiceAccount", &account)
                .and_then(|doc| doc.value.get("automountServiceAccountToken"))
        })
        .and_then(Value::as_bool);
        if !needed.is_empty() && automount == Some(false) {
            problems.push(format!(
                "{}: automountServiceAccountToken is false, so luas has no credentials for the Kubernetes API it calls",
                workload.what()
            ));
        }
        let entry = accounts.entry((namespace, account)).or_default();
        entry.0.extend(needed);
        entry.1.push(format!("Deployment {}", workload.name()));
    }
    for ((namespace, account), (needed, pods)) in accounts {
        let (granted, found) = granted_permissions(set, &account, namespace.as_deref());
        problems.extend(found);
        let who = format!(
            "{}: service account {account} (of {})",
            set.name,
            pods.join(", ")
        );
        if !needed.is_empty() && set.find("ServiceAccount", &account).is_none() {
            problems.push(format!(
                "{who}: {} defines no ServiceAccount {account}",
                set.name
            ));
        }
        for permission in needed.difference(&granted) {
            problems.push(format!(
                "{who} may not {permission}, which luas does with its config"
            ));
        }
        for permission in granted.difference(&needed) {
            problems.push(format!(
                "{who} may {permission}, which luas never does with its config"
            ));
        }
    }
    problems
}

// ---------------------------------------------------------------------------
// Checks of the monitoring set against the luas pods of every set

/// Every luas pod (a pod template with a container named luas), with that
/// container.
fn luas_pods(sets: &[Set]) -> Vec<(&Doc, &Value)> {
    sets.iter()
        .flat_map(|set| set.workloads())
        .filter_map(|workload| Some((workload, luas_container(workload)?)))
        .collect()
}

/// PodMonitors select every luas pod, on a port its luas container has.
fn check_pod_monitors(sets: &[Set]) -> Vec<String> {
    let pods = luas_pods(sets);
    let mut problems = Vec::new();
    for monitor in sets.iter().flat_map(|set| set.of_kind("PodMonitor")) {
        let selector = string_map(&monitor.value, &["spec", "selector", "matchLabels"]);
        let endpoints = list(&monitor.value, &["spec", "podMetricsEndpoints"]);
        if endpoints.is_empty() {
            problems.push(format!("{}: no podMetricsEndpoints", monitor.what()));
        }
        for (workload, container) in &pods {
            if !selects(&selector, &pod_labels(workload)) {
                problems.push(format!(
                    "{}: selector {selector:?} misses the luas pods of {}",
                    monitor.what(),
                    workload.what()
                ));
                continue;
            }
            for endpoint in endpoints {
                let port = endpoint.get("port").cloned().unwrap_or(Value::Null);
                if container_port(container, &port).is_none() {
                    problems.push(format!(
                        "{}: port {} is not a port of the luas container of {}",
                        monitor.what(),
                        show(&port),
                        workload.what()
                    ));
                }
            }
        }
    }
    problems
}

/// The `keep` rules of Prometheus scrape jobs on a pod label or a container
/// port name let every luas pod's admin port through.
fn check_scrape_configs(sets: &[Set]) -> Vec<String> {
    let pods = luas_pods(sets);
    let mut problems = Vec::new();
    let documents = sets.iter().flat_map(|set| set.docs.iter());
    for doc in documents.filter(|doc| doc.value.get("scrape_configs").is_some()) {
        for job in list(&doc.value, &["scrape_configs"]) {
            let job_name = text(job, &["job_name"]).unwrap_or("");
            let mut filters_pods = false;
            for rule in list(job, &["relabel_configs"]) {
                if text(rule, &["action"]) != Some("keep") {
                    continue;
                }
                let sources = list(rule, &["source_labels"]);
                let regex = text(rule, &["regex"]).unwrap_or("(.*)");
                let [source] = sources else { continue };
                let source = show(source);
                let pod_label = source.strip_prefix("__meta_kubernetes_pod_label_");
                filters_pods |= pod_label.is_some();
                for (workload, container) in &pods {
                    let kept = if let Some(label) = pod_label {
                        pod_labels(workload)
                            .iter()
                            .any(|(key, value)| sanitize_label(key) == label && value == regex)
                    } else if source == "__meta_kubernetes_pod_container_port_name" {
                        container_port(container, &Value::from(regex)).is_some()
                    } else {
                        true
                    };
                    if !kept {
                        problems.push(format!(
                            "{}: job {job_name} keeps only {source}={regex:?}, which drops the luas pods of {}",
                            doc.file,
                            workload.what()
                        ));
                    }
                }
            }
            if !filters_pods {
                problems.push(format!(
                    "{}: job {job_name} keeps no pod label, so it scrapes every pod",
                    doc.file
                ));
            }
        }
    }
    problems
}

// ---------------------------------------------------------------------------
// PromQL in the dashboard and the adapter rule

/// Metric names (luas_*) and `code` values a query uses that luas does not
/// export.
fn check_promql(where_: &str, query: &str, catalog: &Catalog) -> Vec<String> {
    let mut problems = Vec::new();
    for name in identifiers(query).filter(|name| name.starts_with("luas_")) {
        if !catalog.names.contains(name) {
            problems.push(format!("{where_}: luas exports no metric {name}"));
        }
    }
    for value in code_matcher_values(query) {
        if !catalog.codes.contains(value) {
            problems.push(format!(
                "{where_}: code {value:?} is not a value luas gives the code label ({:?})",
                catalog.codes
            ));
        }
    }
    problems
}

/// The words of a query made of letters, digits and `_`.
fn identifiers(query: &str) -> impl Iterator<Item = &str> {
    query
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| !word.is_empty())
}

/// The alternatives of every `code="…"`, `code=~"a|b"` (and negations).
fn code_matcher_values(query: &str) -> Vec<&str> {
    let mut values = Vec::new();
    let mut rest = query;
    while let Some(start) = rest.find("code") {
        let before = rest[..start].chars().next_back();
        let after = rest[start + 4..].trim_start();
        rest = &rest[start + 4..];
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let Some(quoted) = ["=~", "!~", "!=", "="]
            .iter()
            .find_map(|op| after.strip_prefix(op))
            .and_then(|value| value.trim_start().strip_prefix('"'))
        else {
            continue;
        };
        let Some(end) = quoted.find('"') else {
            continue;
        };
        values.extend(quoted[..end].split('|'));
    }
    values
}

/// The panels of a dashboard, rows' nested panels included.
fn all_panels(panels: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    let mut all = Vec::new();
    for panel in panels {
        all.push(panel);
        if let Some(nested) = panel["panels"].as_array() {
            all.extend(all_panels(nested));
        }
    }
    all
}

fn check_dashboard(dashboard: &serde_json::Value, catalog: &Catalog) -> Vec<String> {
    let mut problems = Vec::new();
    if dashboard["schemaVersion"].as_u64().unwrap_or(0) < 36 {
        problems.push("dashboard: schemaVersion is missing or older than 36".to_owned());
    }
    let variables = dashboard["templating"]["list"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !variables
        .iter()
        .any(|variable| variable["name"] == "service")
    {
        problems.push("dashboard: no $service template variable".to_owned());
    }
    for variable in &variables {
        if let Some(query) = variable["definition"].as_str() {
            let name = variable["name"].as_str().unwrap_or("");
            problems.extend(check_promql(
                &format!("dashboard variable {name}"),
                query,
                catalog,
            ));
        }
    }
    let panels = all_panels(dashboard["panels"].as_array().map_or(&[], Vec::as_slice));
    let mut ids = BTreeSet::new();
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or("");
        if !ids.insert(panel["id"].as_u64()) {
            problems.push(format!("dashboard panel {title:?}: id used twice"));
        }
        if panel["type"] == "row" {
            continue;
        }
        let targets = panel["targets"].as_array().map_or(&[][..], Vec::as_slice);
        if targets.is_empty() {
            problems.push(format!("dashboard panel {title:?}: no queries"));
        }
        for target in targets {
            let expr = target["expr"].as_str().unwrap_or("");
            let where_ = format!("dashboard panel {title:?}");
            if !expr.contains("$service") {
                problems.push(format!(
                    "{where_}: query does not filter on $service: {expr}"
                ));
            }
            problems.extend(check_promql(&where_, expr, catalog));
        }
    }
    problems
}

// ---------------------------------------------------------------------------
// The Kubernetes OpenAPI schemas of the oldest supported release, strictly,
// through kubernetes-validate (PyPI; it ships the schemas, no cluster needed)

/// The oldest Kubernetes release luas supports: k8s-openapi is built with
/// its `v1_33` feature (Cargo.toml). Every manifest must be valid there.
const OLDEST_KUBERNETES: &str = "1.33.0";

/// Kinds defined by CustomResourceDefinitions, whose schemas are not among
/// Kubernetes' own: validating them strictly would need the CRDs' schemas
/// (the Prometheus Operator's), so they are skipped, by name. Any other kind
/// the tool has no schema for fails the test.
const CUSTOM_KINDS: &[(&str, &str)] = &[("monitoring.coreos.com/v1", "PodMonitor")];

/// Why a document is not handed to the schema check, or None to check it.
fn schema_skip_reason(doc: &Doc) -> Option<String> {
    let api_version = text(&doc.value, &["apiVersion"]).unwrap_or("");
    if CUSTOM_KINDS.contains(&(api_version, doc.kind())) {
        Some(format!(
            "{}: a custom resource ({api_version}), not in Kubernetes' schemas",
            doc.what()
        ))
    } else if doc.value.get("scrape_configs").is_some() {
        Some(format!(
            "{}: a Prometheus config, not a Kubernetes object",
            doc.file
        ))
    } else {
        None
    }
}

/// The files to validate and how many documents they hold, what is skipped
/// and why, and the files that mix both (the tool validates whole files).
struct SchemaFiles {
    files: Vec<PathBuf>,
    documents: usize,
    skipped: Vec<String>,
    problems: Vec<String>,
}

fn schema_files(sets: &[Set]) -> SchemaFiles {
    let mut by_file: BTreeMap<&str, Vec<&Doc>> = BTreeMap::new();
    for doc in sets.iter().flat_map(|set| &set.docs) {
        by_file.entry(doc.file.as_str()).or_default().push(doc);
    }
    let mut found = SchemaFiles {
        files: Vec::new(),
        documents: 0,
        skipped: Vec::new(),
        problems: Vec::new(),
    };
    for (file, docs) in by_file {
        let reasons: Vec<String> = docs
            .iter()
            .filter_map(|doc| schema_skip_reason(doc))
            .collect();
        if reasons.is_empty() {
            found.files.push(examples_dir().join(file));
            found.documents += docs.len();
        } else if reasons.len() == docs.len() {
            found.skipped.extend(reasons);
        } else {
            found.problems.push(format!(
                "{file}: mixes documents the schema check skips ({}) with others; put them in separate files",
                reasons.join("; ")
            ));
        }
    }
    found
}

/// `kubernetes-validate`: `$KUBERNETES_VALIDATE`, else the virtualenv that
/// scripts/test.sh installs it into, else whatever the PATH has.
fn kubernetes_validate() -> PathBuf {
    if let Some(path) = std::env::var_os("KUBERNETES_VALIDATE") {
        return PathBuf::from(path);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/kubernetes-validate/.venv/bin/kubernetes-validate");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("kubernetes-validate")
    }
}

/// Runs kubernetes-validate in strict mode (an unknown field is an error)
/// against the oldest supported release over `files`, which hold
/// `documents` documents. A kind or apiVersion it has no schema for is only
/// a warning to the tool, with exit status 0 (a mistyped apiVersion would
/// pass), so every line that is not a pass is a problem, and so is any
/// document without its pass line.
fn run_kubernetes_validate(files: &[PathBuf], documents: usize) -> Vec<String> {
    let program = kubernetes_validate();
    let output = Command::new(&program)
        .args(["--kubernetes-version", OLDEST_KUBERNETES, "--strict"])
        .args(files)
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "{} cannot run ({error}); scripts/test.sh installs it (tests/kubernetes-validate/requirements.txt), or set KUBERNETES_VALIDATE",
                program.display()
            )
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut problems: Vec<String> = stdout
        .lines()
        .chain(stderr.lines())
        .filter(|line| !line.trim().is_empty())
        .filter(|line| !(line.starts_with("INFO ") && line.contains(" passed for resource ")))
        .map(str::to_owned)
        .collect();
    let passed = stdout
        .lines()
        .filter(|line| line.starts_with("INFO ") && line.contains(" passed for resource "))
        .count();
    if passed != documents {
        problems.push(format!(
            "{passed} of {documents} documents passed the Kubernetes {OLDEST_KUBERNETES} schemas"
        ));
    }
    if !output.status.success() {
        problems.push(format!("kubernetes-validate exited with {}", output.status));
    }
    problems
}

// ---------------------------------------------------------------------------
// The examples

fn assert_no_problems(what: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{what}: {} problem(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

#[test]
fn every_manifest_parses() {
    let sets = load_sets().unwrap_or_else(|errors| panic!("{}", errors.join("\n")));
    for set in &sets {
        let files: BTreeSet<&str> = set.docs.iter().map(|doc| doc.file.as_str()).collect();
        println!(
            "{}: {} files, {} documents",
            set.name,
            files.len(),
            set.docs.len()
        );
    }
    let names: Vec<&str> = sets.iter().map(|set| set.name.as_str()).collect();
    assert_eq!(names, ["canary", "edge", "monitoring", "sidecar"]);
    let dashboard = load_dashboard().unwrap();
    println!(
        "monitoring/grafana-dashboard.json: {} panels",
        all_panels(dashboard["panels"].as_array().unwrap()).len()
    );
}

#[test]
fn names_ports_and_labels_agree() {
    let sets = sets();
    let mut problems = Vec::new();
    for set in &sets {
        problems.extend(check_manifests(set));
    }
    problems.extend(check_pod_monitors(&sets));
    problems.extend(check_scrape_configs(&sets));
    assert_no_problems("manifests", &problems);
    println!("{} luas pod templates are scraped", luas_pods(&sets).len());
}

#[test]
fn luas_configs_fit_the_pods_that_run_them() {
    let sets = sets();
    let default_args = image_default_args();
    let mut problems = Vec::new();
    let mut count = 0;
    for set in &sets {
        count += luas_configs(set).len();
        problems.extend(check_luas_configs(set, &default_args));
    }
    assert_no_problems("luas configs", &problems);
    assert_eq!(count, 3, "one luas config each in sidecar, edge and canary");
}

#[test]
fn luas_configs_pass_the_validator() {
    let mut problems = Vec::new();
    for set in &sets() {
        for (config_map, _) in luas_configs(set) {
            println!("validating {}", config_map.what());
        }
        problems.extend(validate_luas_configs(set));
    }
    assert_no_problems("luas validator", &problems);
}

#[test]
fn dashboard_and_adapter_query_metrics_luas_exports() {
    let catalog = luas_catalog();
    let mut problems = check_dashboard(&load_dashboard().unwrap(), &catalog);
    for set in &sets() {
        problems.extend(check_adapter_rules(set, &catalog));
    }
    assert_no_problems("queries", &problems);
}

#[test]
fn luas_may_do_exactly_what_it_does_with_the_kubernetes_api() {
    let sets = sets();
    let mut problems = Vec::new();
    let mut checked = Vec::new();
    for set in &sets {
        problems.extend(check_rbac(set));
        for workload in set.workloads().filter(|w| luas_container(w).is_some()) {
            let account = text(
                &workload.value,
                &["spec", "template", "spec", "serviceAccountName"],
            )
            .unwrap_or("default");
            let (granted, _) = granted_permissions(set, account, None);
            println!(
                "{}: Deployment {} runs as {account}, which may:",
                set.name,
                workload.name()
            );
            for permission in &granted {
                println!("  {permission}");
            }
            checked.push((set.name.clone(), granted.len()));
        }
    }
    assert_no_problems("RBAC", &problems);
    // Every set that runs luas calls the API (fleet or EndpointSlices), so
    // an empty grant would mean the check compared nothing.
    assert_eq!(
        checked,
        [
            ("canary".to_owned(), 13),
            ("edge".to_owned(), 13),
            ("sidecar".to_owned(), 2)
        ],
        "permissions granted to each set's luas pods"
    );
}

#[test]
#[ignore = "needs kubernetes-validate: run bash scripts/test.sh"]
fn manifests_pass_the_oldest_kubernetes_schemas_strictly() {
    let found = schema_files(&sets());
    for reason in &found.skipped {
        println!("skipped {reason}");
    }
    assert_no_problems("schema files", &found.problems);
    assert!(found.documents > 0, "no manifest to validate");
    println!(
        "validating {} documents in {} files against Kubernetes {OLDEST_KUBERNETES}, strictly",
        found.documents,
        found.files.len()
    );
    assert_no_problems(
        "kubernetes-validate",
        &run_kubernetes_validate(&found.files, found.documents),
    );
}

// ---------------------------------------------------------------------------
// Each check can fail: a small, correct set, broken one way at a time.

const FIXTURE: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: { name: proxy }
spec:
  selector: { matchLabels: { app: proxy } }
  template:
    metadata: { labels: { app: proxy, luas-proxy/scrape: "true" } }
    spec:
      serviceAccountName: proxy
      terminationGracePeriodSeconds: 30
      containers:
        - name: luas
          image: ghcr.io/luas-proxy/luas:0.1.0
          env:
            - { name: LUAS_ADMIN_TOKEN_FILE, value: /etc/luas/admin-token/token }
            - { name: POD_IP, valueFrom: { fieldRef: { fieldPath: status.podIP } } }
          ports:
            - { name: http, containerPort: 8080 }
            - { name: admin, containerPort: 9901 }
          readinessProbe: { httpGet: { path: /ready, port: admin } }
          livenessProbe: { httpGet: { path: /live, port: admin } }
          lifecycle: { preStop: { sleep: { seconds: 5 } } }
          volumeMounts:
            - { name: config, mountPath: /etc/luas, readOnly: true }
            - { name: state, mountPath: /var/lib/luas }
        - name: client
          image: client
          env: [{ name: http_proxy, value: "http://127.0.0.1:9090" }]
      volumes:
        - name: config
          projected:
            sources:
              - configMap: { name: proxy-config }
              - secret: { name: admin-token, items: [{ key: token, path: admin-token/token }] }
        - { name: state, emptyDir: {} }
---
apiVersion: v1
kind: Service
metadata: { name: proxy }
spec:
  selector: { app: proxy }
  ports: [{ port: 80, targetPort: http }]
---
apiVersion: v1
kind: Secret
metadata: { name: admin-token }
stringData: { token: x }
---
apiVersion: v1
kind: ConfigMap
metadata: { name: proxy-config }
data:
  config.yaml: |
    admin: { listen: "0.0.0.0:9901", token_file: /etc/luas/admin-token/token }
    listeners:
      - { name: edge, listen: "0.0.0.0:8080", routes: [{ name: all, service: app }] }
      - { name: outbound, listen: "127.0.0.1:9090", routes: [{ name: all, service: app }] }
    services:
      - name: app
        groups:
          - { name: stable, dns: "app.default.svc.cluster.local:8080" }
          - { name: canary, weight: 0, kubernetes: { service: app-next, port: http } }
    shutdown: { grace_period: 20s }
    fleet: { name: proxy }
    state_file: /var/lib/luas/state.json
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: app }
spec:
  selector: { matchLabels: { app: app } }
  template:
    metadata: { labels: { app: app } }
    spec:
      containers:
        - name: app
          image: app
          ports: [{ name: http, containerPort: 8080 }]
---
apiVersion: v1
kind: Service
metadata: { name: app }
spec:
  clusterIP: None
  selector: { app: app }
  ports: [{ port: 8080, targetPort: 8080 }]
---
apiVersion: v1
kind: Service
metadata: { name: app-next }
spec:
  selector: { app: app }
  ports: [{ name: http, port: 80, targetPort: 8080 }]
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: proxy }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: { name: proxy }
rules:
  - { apiGroups: [""], resources: [configmaps], resourceNames: [luas-fleet-proxy], verbs: [get, list, watch, update] }
  - { apiGroups: [""], resources: [configmaps], verbs: [create] }
  - { apiGroups: [coordination.k8s.io], resources: [leases], verbs: [get, list, watch, create, update, delete] }
  - { apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [list, watch] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: proxy }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: proxy }
subjects: [{ kind: ServiceAccount, name: proxy }]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: { name: proxy }
spec:
  maxUnavailable: 1
  selector: { matchLabels: { app: proxy } }
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: { name: proxy }
spec:
  scaleTargetRef: { apiVersion: apps/v1, kind: Deployment, name: proxy }
  minReplicas: 2
  maxReplicas: 4
  metrics:
    - type: Pods
      pods:
        metric: { name: luas_requests_per_second }
        target: { type: AverageValue, averageValue: "100" }
---
apiVersion: v1
kind: ConfigMap
metadata: { name: adapter }
data:
  config.yaml: |
    rules:
      - seriesQuery: 'luas_requests_total{namespace!="",pod!=""}'
        resources: { overrides: { namespace: { resource: namespace }, pod: { resource: pod } } }
        name: { matches: "^luas_requests_total$", as: luas_requests_per_second }
        metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)'
"#;

const MONITORING_FIXTURE: &str = r#"
apiVersion: monitoring.coreos.com/v1
kind: PodMonitor
metadata: { name: luas }
spec:
  selector: { matchLabels: { luas-proxy/scrape: "true" } }
  podMetricsEndpoints: [{ port: admin, path: /metrics }]
---
scrape_configs:
  - job_name: luas
    kubernetes_sd_configs: [{ role: pod }]
    relabel_configs:
      - { source_labels: [__meta_kubernetes_pod_label_luas_proxy_scrape], action: keep, regex: "true" }
      - { source_labels: [__meta_kubernetes_pod_container_port_name], action: keep, regex: admin }
"#;

fn fixture_set(name: &str, text: &str) -> Set {
    Set {
        name: name.to_owned(),
        docs: parse_documents(&format!("{name}/fixture.yaml"), text).unwrap(),
    }
}

/// The fixture with one piece of text replaced (which must be there once).
fn broken(fixture: &str, from: &str, to: &str) -> String {
    assert_eq!(
        fixture.matches(from).count(),
        1,
        "{from:?} once in the fixture"
    );
    fixture.replace(from, to)
}

/// Every check of a directory on its own and of the monitoring set with it.
fn fixture_problems(text: &str, monitoring: &str) -> Vec<String> {
    let sets = [
        fixture_set("app", text),
        fixture_set("monitoring", monitoring),
    ];
    let mut problems = check_manifests(&sets[0]);
    problems.extend(check_luas_configs(&sets[0], &image_default_args()));
    problems.extend(check_rbac(&sets[0]));
    problems.extend(check_adapter_rules(&sets[0], &luas_catalog()));
    problems.extend(check_pod_monitors(&sets));
    problems.extend(check_scrape_configs(&sets));
    problems
}

fn assert_reports(problems: &[String], needle: &str) {
    assert!(
        problems.iter().any(|problem| problem.contains(needle)),
        "expected a problem mentioning {needle:?}, got {problems:#?}"
    );
}

fn assert_broken(from: &str, to: &str, needle: &str) {
    assert_reports(
        &fixture_problems(&broken(FIXTURE, from, to), MONITORING_FIXTURE),
        needle,
    );
}

#[test]
fn the_fixture_passes_every_check() {
    assert_no_problems("fixture", &fixture_problems(FIXTURE, MONITORING_FIXTURE));
}

#[test]
fn a_yaml_syntax_error_names_the_file() {
    let error = parse_documents("edge/broken.yaml", "a: 1\n---\nb: [1, 2\n").unwrap_err();
    assert!(error.starts_with("edge/broken.yaml: "), "{error}");
}

#[test]
fn a_service_selecting_no_pods_is_reported() {
    assert_broken(
        "selector: { app: proxy }",
        "selector: { app: proxi }",
        "selects no pod template",
    );
}

#[test]
fn a_target_port_the_pods_lack_is_reported() {
    assert_broken("targetPort: http", "targetPort: web", "targetPort web");
}

#[test]
fn a_deployment_whose_selector_misses_its_pods_is_reported() {
    assert_broken(
        "matchLabels: { app: app }",
        "matchLabels: { app: web }",
        "does not select its own pod template",
    );
}

#[test]
fn a_missing_config_map_or_secret_key_is_reported() {
    assert_broken(
        "configMap: { name: proxy-config }",
        "configMap: { name: proxy-conf }",
        "ConfigMap proxy-conf",
    );
    assert_broken(
        "key: token,",
        "key: tokn,",
        "tokn is not a key of Secret admin-token",
    );
    assert_broken(
        "{ name: state, mountPath",
        "{ name: data, mountPath",
        "mounts volume data",
    );
}

#[test]
fn a_probe_on_a_missing_port_is_reported() {
    assert_broken(
        "path: /ready, port: admin",
        "path: /ready, port: metrics",
        "uses port metrics",
    );
}

#[test]
fn an_autoscaler_without_target_or_metric_is_reported() {
    assert_broken(
        "kind: Deployment, name: proxy }",
        "kind: Deployment, name: proxi }",
        "scaleTargetRef Deployment proxi",
    );
    assert_broken(
        "as: luas_requests_per_second",
        "as: luas_rps",
        "luas_requests_per_second is not served",
    );
}

#[test]
fn a_disruption_budget_selecting_no_pods_is_reported() {
    assert_broken(
        "maxUnavailable: 1\n  selector: { matchLabels: { app: proxy } }",
        "maxUnavailable: 1\n  selector: { matchLabels: { app: proxi } }",
        "PodDisruptionBudget proxy: selector selects no pod template",
    );
}

#[test]
fn an_adapter_rule_on_an_unknown_metric_is_reported() {
    assert_broken(
        "seriesQuery: 'luas_requests_total{",
        "seriesQuery: 'luas_request_total{",
        "\"luas_request_total\", which luas does not export",
    );
}

#[test]
fn luas_ports_and_addresses_that_do_not_fit_the_pod_are_reported() {
    assert_broken(
        "listen: \"0.0.0.0:8080\"",
        "listen: \"0.0.0.0:8081\"",
        "listener edge port 8081 is not a container port",
    );
    assert_broken(
        "listen: \"0.0.0.0:8080\"",
        "listen: \"10.0.0.7:8080\"",
        "must bind 0.0.0.0",
    );
    assert_broken(
        "listen: \"0.0.0.0:9901\"",
        "listen: \"127.0.0.1:9901\"",
        "admin binds 127.0.0.1:9901; in a pod it must bind 0.0.0.0",
    );
    assert_broken(
        "listen: \"0.0.0.0:9901\"",
        "listen: \"0.0.0.0:9902\"",
        "admin port 9902",
    );
    assert_broken(
        "path: /live, port: admin",
        "path: /live, port: http",
        "livenessProbe must be an httpGet of /live",
    );
}

#[test]
fn luas_files_that_are_not_mounted_are_reported() {
    assert_broken(
        "value: /etc/luas/admin-token/token",
        "value: /etc/luas/token",
        "LUAS_ADMIN_TOKEN_FILE is Some(\"/etc/luas/token\")",
    );
    assert_broken(
        "path: admin-token/token",
        "path: token",
        "admin.token_file /etc/luas/admin-token/token",
    );
    assert_broken(
        "mountPath: /etc/luas,",
        "mountPath: /etc/proxy,",
        "luas runs with --config \"/etc/luas/config.yaml\"",
    );
    assert_broken(
        "mountPath: /var/lib/luas }",
        "mountPath: /var/lib/luas, readOnly: true }",
        "state_file",
    );
    assert_broken(
        "              - configMap: { name: proxy-config }\n",
        "",
        "no container named luas mounts this luas config",
    );
}

#[test]
fn a_grace_period_longer_than_the_pod_waits_is_reported() {
    assert_broken(
        "terminationGracePeriodSeconds: 30",
        "terminationGracePeriodSeconds: 20",
        "does not cover the preStop sleep",
    );
}

#[test]
fn dns_names_that_miss_a_headless_service_are_reported() {
    assert_broken("  clusterIP: None\n", "", "is not headless");
    assert_broken(
        "app.default.svc.cluster.local:8080",
        "app.default.svc.cluster.local:9090",
        "has no port 9090",
    );
    assert_broken(
        "app.default.svc.cluster.local:8080",
        "web.default.svc.cluster.local:8080",
        "defines no Service web",
    );
    assert_broken(
        "app.default.svc.cluster.local:8080",
        "app.prod.svc.cluster.local:8080",
        "namespace default",
    );
    assert_broken(
        "ports: [{ name: http, containerPort: 8080 }]",
        "ports: [{ name: http, containerPort: 80 }]",
        "do not serve port 8080",
    );
}

#[test]
fn monitoring_that_misses_luas_pods_is_reported() {
    let problems = |monitoring: String| fixture_problems(FIXTURE, &monitoring);
    assert_reports(
        &problems(broken(
            MONITORING_FIXTURE,
            "{ port: admin,",
            "{ port: metrics,",
        )),
        "port metrics is not a port of the luas container",
    );
    assert_reports(
        &problems(broken(
            MONITORING_FIXTURE,
            "matchLabels: { luas-proxy/scrape",
            "matchLabels: { luas/scrape",
        )),
        "misses the luas pods",
    );
    assert_reports(
        &problems(broken(
            MONITORING_FIXTURE,
            "regex: admin",
            "regex: http-admin",
        )),
        "drops the luas pods",
    );
    assert_reports(
        &problems(broken(
            MONITORING_FIXTURE,
            "pod_label_luas_proxy_scrape",
            "pod_label_luas_scrape",
        )),
        "drops the luas pods",
    );
}

#[test]
fn the_validator_rejection_is_reported() {
    let set = fixture_set(
        "app",
        &broken(FIXTURE, "grace_period: 20s", "grace_period: soon"),
    );
    assert_reports(
        &validate_luas_configs(&set),
        "the luas validator rejects config.yaml",
    );
}

#[test]
fn dashboard_queries_on_unknown_metrics_or_codes_are_reported() {
    let catalog = luas_catalog();
    let dashboard = |expr: &str| {
        serde_json::json!({
            "schemaVersion": 39,
            "templating": { "list": [{ "name": "service" }] },
            "panels": [{ "id": 1, "type": "timeseries", "title": "t", "targets": [{ "expr": expr }] }],
        })
    };
    let good =
        r#"sum(rate(luas_backend_requests_total{service="$service", code=~"5xx|error"}[5m]))"#;
    assert_no_problems(
        "good dashboard",
        &check_dashboard(&dashboard(good), &catalog),
    );
    assert_reports(
        &check_dashboard(
            &dashboard(&good.replace("requests_total", "request_total")),
            &catalog,
        ),
        "luas exports no metric luas_backend_request_total",
    );
    assert_reports(
        &check_dashboard(
            &dashboard(&good.replace("5xx|error", "5xx|failed")),
            &catalog,
        ),
        "code \"failed\"",
    );
    assert_reports(
        &check_dashboard(
            &dashboard(&good.replace("service=\"$service\", ", "")),
            &catalog,
        ),
        "does not filter on $service",
    );
    let mut no_variable = dashboard(good);
    no_variable["templating"]["list"] = serde_json::json!([]);
    assert_reports(
        &check_dashboard(&no_variable, &catalog),
        "no $service template variable",
    );
}

#[test]
fn a_loopback_listener_that_nothing_calls_or_that_is_a_pod_port_is_reported() {
    assert_broken(
        "env: [{ name: http_proxy, value: \"http://127.0.0.1:9090\" }]",
        "env: []",
        "no other container's environment names 127.0.0.1:9090",
    );
    assert_broken(
        "            - { name: admin, containerPort: 9901 }\n",
        "            - { name: admin, containerPort: 9901 }\n            - { name: out, containerPort: 9090 }\n",
        "binds loopback (127.0.0.1:9090), yet port 9090 is a container port",
    );
}

#[test]
fn kubernetes_sources_that_miss_their_service_or_port_are_reported() {
    assert_broken(
        "kubernetes: { service: app-next, port: http }",
        "kubernetes: { service: app-nxt, port: http }",
        "group canary: kubernetes.service app-nxt: app defines no Service app-nxt",
    );
    assert_broken(
        "kubernetes: { service: app-next, port: http }",
        "kubernetes: { service: app-next, port: web }",
        "Service app-next has no port named web",
    );
    assert_broken(
        "kubernetes: { service: app-next, port: http }",
        "kubernetes: { service: app-next, port: 80 }",
        "no port of Service app-next sends to port 80 of its pods",
    );
    // By number, the pods' port is right (the Service's targetPort).
    let problems = fixture_problems(
        &broken(
            FIXTURE,
            "kubernetes: { service: app-next, port: http }",
            "kubernetes: { service: app-next, port: 8080 }",
        ),
        MONITORING_FIXTURE,
    );
    assert_no_problems("source by the pods' port number", &problems);
}

#[test]
fn a_fleet_replica_that_cannot_publish_its_address_or_wait_for_the_api_is_reported() {
    assert_broken(
        "            - { name: POD_IP, valueFrom: { fieldRef: { fieldPath: status.podIP } } }\n",
        "",
        "POD_IP is not taken from status.podIP",
    );
    assert_broken(
        "fieldPath: status.podIP",
        "fieldPath: status.hostIP",
        "POD_IP is not taken from status.podIP",
    );
    assert_broken(
        "fleet: { name: proxy }",
        "fleet: { name: proxy, startup_timeout: 30s }",
        "restarts luas after 20s of failed livenessProbe probes, within fleet.startup_timeout (30s)",
    );
    assert_broken(
        "      serviceAccountName: proxy\n",
        "      serviceAccountName: proxy\n      hostname: proxy\n",
        "the pod template sets hostname",
    );
    // 5 s of preStop, 4 s to leave the fleet and 20 s of drain need more
    // than 29 s.
    assert_broken(
        "terminationGracePeriodSeconds: 30",
        "terminationGracePeriodSeconds: 29",
        "plus leaving the fleet (4s)",
    );
}

#[test]
fn a_role_missing_a_verb_luas_uses_is_reported() {
    assert_broken(
        "resources: [leases], verbs: [get, list, watch, create, update, delete] }",
        "resources: [leases], verbs: [get, list, watch, create, update] }",
        "service account proxy (of Deployment proxy) may not delete leases.coordination.k8s.io (any name)",
    );
    assert_broken(
        "resourceNames: [luas-fleet-proxy]",
        "resourceNames: [luas-fleet-edge]",
        "may not update configmaps luas-fleet-proxy",
    );
    // Bound to another account, or not bound at all: nothing is granted.
    assert_broken(
        "subjects: [{ kind: ServiceAccount, name: proxy }]",
        "subjects: [{ kind: ServiceAccount, name: proxi }]",
        "may not list endpointslices.discovery.k8s.io (any name)",
    );
    assert_broken(
        "      serviceAccountName: proxy\n",
        "",
        "service account default (of Deployment proxy) may not watch configmaps luas-fleet-proxy",
    );
    assert_broken(
        "kind: Role, name: proxy }",
        "kind: Role, name: proxi }",
        "roleRef Role proxi is not a Role (or ClusterRole) of app",
    );
    assert_broken(
        "kind: ServiceAccount\nmetadata: { name: proxy }",
        "kind: ServiceAccount\nmetadata: { name: other }",
        "app defines no ServiceAccount proxy",
    );
    // Granted, but without the token luas cannot use it.
    assert_broken(
        "kind: ServiceAccount\nmetadata: { name: proxy }",
        "kind: ServiceAccount\nmetadata: { name: proxy }\nautomountServiceAccountToken: false",
        "automountServiceAccountToken is false",
    );
    // Another identity than the pod's: the check cannot compare.
    assert_broken(
        "    fleet: { name: proxy }\n",
        "    fleet: { name: proxy }\n    kubernetes: { kubeconfig: /etc/luas/kubeconfig }\n",
        "kubernetes.kubeconfig is set",
    );
}

#[test]
fn a_role_granting_more_than_luas_uses_is_reported() {
    assert_broken(
        "resources: [endpointslices], verbs: [list, watch] }",
        "resources: [endpointslices], verbs: [get, list, watch] }",
        "may get endpointslices.discovery.k8s.io (any name) in the set's namespace, which luas never does",
    );
    // Updates of any ConfigMap, not only the fleet's.
    assert_broken(
        "resourceNames: [luas-fleet-proxy], ",
        "",
        "may update configmaps (any name) in the set's namespace, which luas never does",
    );
    assert_broken(
        "verbs: [get, list, watch, create, update, delete] }",
        "verbs: [\"*\"] }",
        "may * leases.coordination.k8s.io (any name)",
    );
    // Without fleet mode luas touches no ConfigMap or Lease.
    assert_broken(
        "    fleet: { name: proxy }\n",
        "",
        "may create configmaps (any name) in the set's namespace, which luas never does",
    );
    let cluster_wide = format!(
        "{FIXTURE}---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {{ name: proxy }}\nroleRef: {{ apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view }}\nsubjects: [{{ kind: ServiceAccount, name: proxy }}]\n"
    );
    assert_reports(
        &fixture_problems(&cluster_wide, MONITORING_FIXTURE),
        "binds service account proxy in every namespace",
    );
}

#[test]
fn a_file_mixing_custom_resources_with_kubernetes_objects_is_reported() {
    let sets = [fixture_set(
        "monitoring",
        &format!(
            "{MONITORING_FIXTURE}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{ name: x }}\n"
        ),
    )];
    let found = schema_files(&sets);
    assert_reports(&found.problems, "monitoring/fixture.yaml: mixes documents");
    assert!(found.files.is_empty(), "{:?}", found.files);
    // Alone, the custom resource and the Prometheus config are skipped, each
    // with its reason.
    let found = schema_files(&[fixture_set("monitoring", MONITORING_FIXTURE)]);
    assert_no_problems("monitoring fixture", &found.problems);
    assert_reports(&found.skipped, "PodMonitor luas: a custom resource");
    assert_reports(
        &found.skipped,
        "a Prometheus config, not a Kubernetes object",
    );
}

/// A directory removed when the test ends, however it ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("luas-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
#[ignore = "needs kubernetes-validate: run bash scripts/test.sh"]
fn the_schema_check_fails_on_an_unknown_field_or_kind() {
    let dir = TempDir::new("schemas");
    let good = "apiVersion: v1\nkind: Service\nmetadata: { name: web }\nspec:\n  selector: { app: web }\n  ports: [{ name: http, port: 80, targetPort: http }]\n";
    let write = |name: &str, text: &str| {
        let path = dir.0.join(name);
        fs::write(&path, text).unwrap();
        path
    };
    let good_file = write("good.yaml", good);
    assert_no_problems(
        "a valid Service",
        &run_kubernetes_validate(std::slice::from_ref(&good_file), 1),
    );
    // A misspelt field: strict mode refuses what the schema does not define.
    let unknown_field = write("unknown-field.yaml", &good.replace("selector:", "selectr:"));
    assert_reports(
        &run_kubernetes_validate(&[unknown_field], 1),
        "'selectr' was unexpected",
    );
    // A field of a newer release, or of none, deep in a pod template.
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web }\nspec:\n  selector: { matchLabels: { app: web } }\n  template:\n    metadata: { labels: { app: web } }\n    spec:\n      containers:\n        - { name: web, image: web, restartPolicyy: Always }\n";
    let nested = write("nested.yaml", deployment);
    assert_reports(
        &run_kubernetes_validate(&[nested], 1),
        "'restartPolicyy' was unexpected",
    );
    // An apiVersion without a schema is only a warning to the tool: the
    // check counts it as a failure.
    let unknown_kind = write(
        "unknown-kind.yaml",
        &good.replace("apiVersion: v1", "apiVersion: v2"),
    );
    let problems = run_kubernetes_validate(&[good_file, unknown_kind], 2);
    assert_reports(&problems, "Couldn't find schema");
    assert_reports(&problems, "1 of 2 documents passed");
}
