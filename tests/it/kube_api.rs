//! Tests of the in-test Kubernetes API server (`support::kube_api`) itself:
//! kube-rs, the client luas uses, talks to it over loopback and must see
//! Kubernetes' semantics (create, get, list with selectors, optimistic
//! concurrency on replace, delete, 405 for patch), and its watcher must
//! follow changes through cut watches, compaction (410 and a relist) and
//! the server going down and coming back. Raw HTTP checks the wire format
//! of watch streams and errors.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::ResourceExt;
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use crate::support::kube_api::{Kind, KubeApi};
use crate::support::{eventually, get, Answer};

const NS: &str = "fleet";

/// How long anything pollable may take.
const PATIENCE: Duration = Duration::from_secs(10);

/// A kube-rs client built the way luas builds one: from a kubeconfig file.
async fn client(api: &KubeApi, test: &str) -> kube::Client {
    let directory = crate::support::scratch(&format!("kube-api-{test}"));
    let path = directory.join("kubeconfig");
    api.write_kubeconfig(&path, NS);
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).expect("kubeconfig parses");
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("kubeconfig is usable");
    assert_eq!(config.default_namespace, NS);
    kube::Client::try_from(config).expect("client builds")
}

fn config_map(name: &str, app: &str, v: &str) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": { "name": name, "labels": { "app": app } },
        "data": { "v": v },
    }))
    .unwrap()
}

fn config_map_json(name: &str, app: &str, v: &str) -> Value {
    json!({
        "metadata": { "name": name, "labels": { "app": app } },
        "data": { "v": v },
    })
}

fn v_of(map: &ConfigMap) -> &str {
    map.data
        .as_ref()
        .and_then(|data| data.get("v"))
        .map_or("", String::as_str)
}

fn names(list: &[ConfigMap]) -> Vec<String> {
    list.iter().map(ResourceExt::name_any).collect()
}

fn api_error(result: Result<impl std::fmt::Debug, kube::Error>) -> Box<kube::core::Status> {
    match result {
        Err(kube::Error::Api(status)) => status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// A kube-rs watcher (with its default backoff, as luas runs it) on the
/// ConfigMaps of `NS` matching `labels`, driven by a task that logs what it
/// sees as lines: `apply NAME V`, `init-apply NAME V`, `delete NAME`,
/// `init`, `init-done`, `watch-error CODE`, `error`.
#[derive(Debug)]
struct Watched {
    seen: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl Watched {
    fn start(client: kube::Client, config: watcher::Config) -> Self {
        let api: Api<ConfigMap> = Api::namespaced(client, NS);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let task = tokio::spawn(async move {
            let mut stream = std::pin::pin!(watcher::watcher(api, config).default_backoff());
            while let Some(event) = stream.next().await {
                let line = match event {
                    Ok(Event::Apply(map)) => format!("apply {} {}", map.name_any(), v_of(&map)),
                    Ok(Event::InitApply(map)) => {
                        format!("init-apply {} {}", map.name_any(), v_of(&map))
                    }
                    Ok(Event::Delete(map)) => format!("delete {}", map.name_any()),
                    Ok(Event::Init) => "init".to_owned(),
                    Ok(Event::InitDone) => "init-done".to_owned(),
                    Err(watcher::Error::WatchError(status)) => {
                        format!("watch-error {}", status.code)
                    }
                    Err(_) => "error".to_owned(),
                };
                log.lock().unwrap().push(line);
            }
        });
        Self { seen, task }
    }

    fn count(&self, line: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|l| *l == line)
            .count()
    }

    /// Waits until `line` has been seen `times` times in all.
    async fn wait_for(&self, line: &str, times: usize) {
        let seen = eventually(PATIENCE, || async { self.count(line) >= times }).await;
        assert!(
            seen,
            "the watcher never saw {line:?} {times} times; it saw {:?}",
            self.seen.lock().unwrap()
        );
    }

    /// Waits until any of `lines` has been seen.
    async fn wait_for_any(&self, lines: &[&str]) {
        let seen = eventually(PATIENCE, || async {
            lines.iter().any(|line| self.count(line) > 0)
        })
        .await;
        assert!(
            seen,
            "the watcher saw none of {lines:?}; it saw {:?}",
            self.seen.lock().unwrap()
        );
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Waits until the server has received more than `before` watch requests
/// for ConfigMaps and one watch is open: the watcher is following again.
async fn wait_for_rewatch(server: &KubeApi, before: u64) {
    let watching = eventually(PATIENCE, || async {
        server.requests("watch", Kind::ConfigMap) > before && server.open_watches() == 1
    })
    .await;
    assert!(
        watching,
        "no new watch: {} watch requests (was {before}), {} open",
        server.requests("watch", Kind::ConfigMap),
        server.open_watches()
    );
}

#[tokio::test]
async fn create_get_list_replace_delete_with_kube_rs() {
    let server = KubeApi::start().await;
    let client = client(&server, "crud").await;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    let post = PostParams::default();

    let created = maps
        .create(&post, &config_map("one", "web", "1"))
        .await
        .unwrap();
    assert_eq!(created.metadata.namespace.as_deref(), Some(NS));
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    let first_version = created.resource_version().expect("a resourceVersion");
    assert_eq!(v_of(&maps.get("one").await.unwrap()), "1");

    let again = api_error(maps.create(&post, &config_map("one", "web", "1")).await);
    assert_eq!((again.code, again.reason.as_str()), (409, "AlreadyExists"));
    maps.create(&post, &config_map("two", "db", "2"))
        .await
        .unwrap();

    let listed = |selector: &'static str| {
        let maps = maps.clone();
        async move {
            names(
                &maps
                    .list(&ListParams::default().labels(selector))
                    .await
                    .unwrap()
                    .items,
            )
        }
    };
    assert_eq!(listed("app=web").await, ["one"]);
    assert_eq!(listed("app==db").await, ["two"]);
    assert_eq!(listed("app!=web").await, ["two"]);
    assert_eq!(listed("app").await, ["one", "two"]);
    assert_eq!(listed("!app").await, Vec::<String>::new());
    assert_eq!(listed("app in (web,db),app notin (db)").await, ["one"]);
    let by_name = maps
        .list(&ListParams::default().fields("metadata.name=two"))
        .await
        .unwrap();
    assert_eq!(names(&by_name.items), ["two"]);
    let everything = maps.list(&ListParams::default()).await.unwrap();
    assert_eq!(names(&everything.items), ["one", "two"]);
    // The list's resourceVersion is the revision after both creates.
    let list_version: u64 = everything
        .metadata
        .resource_version
        .unwrap()
        .parse()
        .unwrap();
    assert!(list_version > first_version.parse::<u64>().unwrap());

    // Replace with the current resourceVersion: accepted, version moves.
    let mut changed = created.clone();
    changed.data = config_map("one", "web", "2").data;
    let replaced = maps.replace("one", &post, &changed).await.unwrap();
    assert_eq!(v_of(&replaced), "2");
    assert_ne!(replaced.resource_version(), Some(first_version.clone()));
    assert_eq!(replaced.metadata.uid, created.metadata.uid);

    // The same stale version again: 409 Conflict, object unchanged.
    changed.data = config_map("one", "web", "3").data;
    let stale = api_error(maps.replace("one", &post, &changed).await);
    assert_eq!((stale.code, stale.reason.as_str()), (409, "Conflict"));
    assert!(
        stale.message.contains("the object has been modified"),
        "{}",
        stale.message
    );
    assert_eq!(v_of(&maps.get("one").await.unwrap()), "2");

    // Without a resourceVersion a replace is unconditional.
    changed.metadata.resource_version = None;
    assert_eq!(
        v_of(&maps.replace("one", &post, &changed).await.unwrap()),
        "3"
    );

    let deleted = maps.delete("one", &DeleteParams::default()).await.unwrap();
    assert!(deleted.is_right(), "Kubernetes answers a Status");
    let missing = api_error(maps.get("one").await);
    assert_eq!((missing.code, missing.reason.as_str()), (404, "NotFound"));
    assert!(maps.get_opt("one").await.unwrap().is_none());
    assert_eq!(
        api_error(maps.delete("one", &DeleteParams::default()).await).code,
        404
    );
    assert_eq!(
        api_error(maps.replace("one", &post, &changed).await).code,
        404
    );

    assert_eq!(server.requests("create", Kind::ConfigMap), 3);
    assert_eq!(server.requests("update", Kind::ConfigMap), 4);
    assert_eq!(server.requests("delete", Kind::ConfigMap), 2);
    assert_eq!(server.requests("patch", Kind::ConfigMap), 0);
    assert_eq!(server.list(Kind::ConfigMap, NS).len(), 1);
}

#[tokio::test]
async fn leases_and_endpoint_slices_are_served() {
    let server = KubeApi::start().await;
    let client = client(&server, "kinds").await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), NS);
    let lease: Lease = serde_json::from_value(json!({
        "metadata": { "name": "leader" },
        "spec": { "holderIdentity": "a", "leaseDurationSeconds": 10 },
    }))
    .unwrap();
    let created = leases.create(&PostParams::default(), &lease).await.unwrap();
    let mut taken = created.clone();
    taken.spec.as_mut().unwrap().holder_identity = Some("b".to_owned());
    leases
        .replace("leader", &PostParams::default(), &taken)
        .await
        .unwrap();
    // A second taker with the version it read first loses.
    let lost = api_error(
        leases
            .replace("leader", &PostParams::default(), &created)
            .await,
    );
    assert_eq!(lost.code, 409);
    assert_eq!(
        lost.message,
        "Operation cannot be fulfilled on leases.coordination.k8s.io \"leader\": the object has \
         been modified; please apply your changes to the latest version and try again"
    );
    let stored = server.get(Kind::Lease, NS, "leader").unwrap();
    assert_eq!(stored["spec"]["holderIdentity"], "b");
    assert_eq!(stored["apiVersion"], "coordination.k8s.io/v1");

    // Written behind the client's back, read through it.
    server.apply(
        Kind::EndpointSlice,
        NS,
        json!({
            "metadata": { "name": "web-abc", "labels": { "kubernetes.io/service-name": "web" } },
            "addressType": "IPv4",
            "endpoints": [{ "addresses": ["10.0.0.1"], "conditions": { "ready": true } }],
            "ports": [{ "name": "http", "port": 8080, "protocol": "TCP" }],
        }),
    );
    let slices: Api<EndpointSlice> = Api::namespaced(client, NS);
    let listed = slices
        .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].endpoints[0].addresses, ["10.0.0.1"]);
    assert_eq!(server.requests("list", Kind::EndpointSlice), 1);
    assert_eq!(server.requests("update", Kind::Lease), 2);
}

#[tokio::test]
async fn patch_is_refused_and_counted() {
    let server = KubeApi::start().await;
    let client = client(&server, "patch").await;
    server.apply(Kind::ConfigMap, NS, config_map_json("one", "web", "1"));
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    let refused = api_error(
        maps.patch(
            "one",
            &PatchParams::default(),
            &Patch::Merge(json!({ "data": { "v": "2" } })),
        )
        .await,
    );
    assert_eq!(
        (refused.code, refused.reason.as_str()),
        (405, "MethodNotAllowed")
    );
    let leases: Api<Lease> = Api::namespaced(client, NS);
    let refused = api_error(
        leases
            .patch(
                "leader",
                &PatchParams::apply("luas"),
                &Patch::Apply(json!({
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": { "name": "leader" },
                })),
            )
            .await,
    );
    assert_eq!(refused.code, 405);
    assert_eq!(server.requests("patch", Kind::ConfigMap), 1);
    assert_eq!(server.requests("patch", Kind::Lease), 1);
    assert_eq!(
        server.get(Kind::ConfigMap, NS, "one").unwrap()["data"]["v"],
        "1"
    );
    assert!(server.get(Kind::Lease, NS, "leader").is_none());
}

#[tokio::test]
async fn watcher_follows_changes_through_cut_watches_and_compaction() {
    let server = KubeApi::start().await;
    let client = client(&server, "watch").await;
    server.apply(Kind::ConfigMap, NS, config_map_json("a", "web", "0"));
    let watched = Watched::start(client, watcher::Config::default().labels("app=web"));
    watched.wait_for("init-apply a 0", 1).await;
    watched.wait_for("init-done", 1).await;
    wait_for_rewatch(&server, 0).await;

    server.apply(Kind::ConfigMap, NS, config_map_json("a", "web", "1"));
    watched.wait_for("apply a 1", 1).await;
    // Not matching the selector: never seen.
    server.apply(Kind::ConfigMap, NS, config_map_json("b", "db", "1"));
    // Leaving the selector is a delete to this watch, coming back an add.
    server.apply(Kind::ConfigMap, NS, config_map_json("a", "other", "2"));
    watched.wait_for("delete a", 1).await;
    server.apply(Kind::ConfigMap, NS, config_map_json("a", "web", "3"));
    watched.wait_for("apply a 3", 1).await;
    assert!(server.delete(Kind::ConfigMap, NS, "a"));
    watched.wait_for("delete a", 2).await;

    // A cut watch resumes from its resourceVersion: no relist.
    let lists = server.requests("list", Kind::ConfigMap);
    let watches = server.requests("watch", Kind::ConfigMap);
    server.cut_watches();
    wait_for_rewatch(&server, watches).await;
    server.apply(Kind::ConfigMap, NS, config_map_json("a", "web", "4"));
    watched.wait_for("apply a 4", 1).await;
    assert_eq!(server.requests("list", Kind::ConfigMap), lists);

    // After compaction the resume gets 410 and the watcher relists. The
    // test runs on one thread, so no bookmark can reach the watcher
    // between the two calls.
    let watches = server.requests("watch", Kind::ConfigMap);
    server.compact();
    server.cut_watches();
    watched.wait_for("watch-error 410", 1).await;
    let relisted = eventually(PATIENCE, || async {
        server.requests("list", Kind::ConfigMap) > lists
    })
    .await;
    assert!(relisted, "the watcher did not relist after 410");
    wait_for_rewatch(&server, watches + 1).await;
    server.apply(Kind::ConfigMap, NS, config_map_json("a", "web", "5"));
    watched.wait_for("apply a 5", 1).await;
    assert_eq!(
        watched.count("apply b 1") + watched.count("init-apply b 1"),
        0
    );
    assert_eq!(server.requests("patch", Kind::ConfigMap), 0);
}

#[tokio::test]
async fn watcher_survives_the_server_going_down_and_coming_back() {
    let server = KubeApi::start().await;
    let client = client(&server, "outage").await;
    server.apply(Kind::ConfigMap, NS, config_map_json("a", "web", "1"));
    let watched = Watched::start(client.clone(), watcher::Config::default());
    watched.wait_for("init-done", 1).await;
    wait_for_rewatch(&server, 0).await;

    server.go_down().await;
    assert_eq!(server.open_watches(), 0, "go_down closes the watch");
    let maps: Api<ConfigMap> = Api::namespaced(client, NS);
    let during = tokio::time::timeout(PATIENCE, maps.get("a")).await;
    assert!(
        matches!(during, Ok(Err(_))),
        "a request while down must fail: {during:?}"
    );

    server.come_back().await;
    let after = tokio::time::timeout(PATIENCE, maps.get("a"))
        .await
        .expect("answers in time")
        .expect("the object is still there");
    assert_eq!(v_of(&after), "1");
    server.apply(Kind::ConfigMap, NS, config_map_json("a", "web", "2"));
    // Resumed from its resourceVersion, or relisted: either way it sees it.
    watched.wait_for_any(&["apply a 2", "init-apply a 2"]).await;
}

#[tokio::test]
async fn watcher_with_streaming_lists_gets_initial_events() {
    let server = KubeApi::start().await;
    let client = client(&server, "streaming").await;
    server.apply(Kind::ConfigMap, NS, config_map_json("a", "web", "1"));
    let watched = Watched::start(client, watcher::Config::default().streaming_lists());
    watched.wait_for("init-apply a 1", 1).await;
    watched.wait_for("init-done", 1).await;
    server.apply(Kind::ConfigMap, NS, config_map_json("a", "web", "2"));
    watched.wait_for("apply a 2", 1).await;
    assert_eq!(server.requests("list", Kind::ConfigMap), 0);
}

/// GETs a watch and reads it to its end, bounded: a stream that should
/// end but does not fails the test instead of hanging it.
async fn watch_to_end(address: std::net::SocketAddr, path: &str) -> Answer {
    tokio::time::timeout(PATIENCE, get(address, path, &[]))
        .await
        .unwrap_or_else(|_| panic!("the watch {path} did not end within {PATIENCE:?}"))
}

/// The events of a raw watch body, one JSON value per line.
fn events(body: &str) -> Vec<Value> {
    body.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

fn summary(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|event| event["type"] != "BOOKMARK")
        .map(|event| {
            format!(
                "{} {} {}",
                event["type"].as_str().unwrap(),
                event["object"]["metadata"]["name"].as_str().unwrap_or(""),
                event["object"]["data"]["v"].as_str().unwrap_or("")
            )
        })
        .collect()
}

const MAPS: &str = "/api/v1/namespaces/fleet/configmaps";

#[tokio::test]
async fn raw_watch_streams_events_bookmarks_and_selector_transitions() {
    let server = KubeApi::start().await;
    let address = server.address();
    let start = server.apply(Kind::ConfigMap, NS, config_map_json("x", "db", "0"));
    let version = start["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let watch = tokio::spawn(async move {
        watch_to_end(
            address,
            &format!(
                "{MAPS}?watch=1&labelSelector=app%3Dweb&resourceVersion={version}\
                 &allowWatchBookmarks=true&timeoutSeconds=2"
            ),
        )
        .await
    });
    assert!(eventually(PATIENCE, || async { server.open_watches() == 1 }).await);
    server.apply(Kind::ConfigMap, NS, config_map_json("a", "web", "1"));
    server.apply(Kind::ConfigMap, NS, config_map_json("a", "web", "2"));
    // Unchanged: a no-op, no event.
    server.apply(Kind::ConfigMap, NS, config_map_json("a", "web", "2"));
    server.apply(Kind::ConfigMap, NS, config_map_json("a", "db", "3"));
    server.apply(Kind::ConfigMap, NS, config_map_json("a", "web", "4"));
    server.delete(Kind::ConfigMap, NS, "a");
    server.apply(Kind::ConfigMap, NS, config_map_json("x", "db", "1"));
    let answer = watch.await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("transfer-encoding"), Some("chunked"));
    let events = events(&answer.body);
    assert_eq!(
        summary(&events),
        [
            "ADDED a 1",
            "MODIFIED a 2",
            "DELETED a 2",
            "ADDED a 4",
            "DELETED a 4"
        ]
    );
    // Revisions: x=1, then a: 2, 3, (no-op), 4, 5, delete 6, x again 7.
    let versions: Vec<&str> = events
        .iter()
        .filter(|event| event["type"] != "BOOKMARK")
        .map(|event| {
            event["object"]["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(versions, ["2", "3", "4", "5", "6"]);
    let bookmark = events
        .iter()
        .find(|event| event["type"] == "BOOKMARK")
        .expect("a bookmark within 2 s");
    assert_eq!(bookmark["object"]["kind"], "ConfigMap");
    assert_eq!(bookmark["object"]["metadata"]["resourceVersion"], "7");
    assert_eq!(server.open_watches(), 0);
}

#[tokio::test]
async fn raw_watch_resumes_from_history_and_expires_after_compaction() {
    let server = KubeApi::start().await;
    server.apply(Kind::ConfigMap, NS, config_map_json("a", "web", "1"));
    server.apply(Kind::ConfigMap, NS, config_map_json("b", "web", "1"));
    server.delete(Kind::ConfigMap, NS, "a");

    let resumed = watch_to_end(
        server.address(),
        &format!("{MAPS}?watch=true&resourceVersion=1&timeoutSeconds=1"),
    )
    .await;
    assert_eq!(
        summary(&events(&resumed.body)),
        ["ADDED b 1", "DELETED a 1"]
    );

    let initial = watch_to_end(
        server.address(),
        &format!(
            "{MAPS}?watch=true&sendInitialEvents=true&allowWatchBookmarks=true\
             &resourceVersionMatch=NotOlderThan&resourceVersion=&timeoutSeconds=1"
        ),
    )
    .await;
    let initial = events(&initial.body);
    assert_eq!(summary(&initial[..1]), ["ADDED b 1"]);
    assert_eq!(initial[1]["type"], "BOOKMARK");
    assert_eq!(
        initial[1]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );

    server.compact();
    let expired = watch_to_end(
        server.address(),
        &format!("{MAPS}?watch=true&resourceVersion=3"),
    )
    .await;
    assert_eq!(expired.status, 200);
    let expired = events(&expired.body);
    assert_eq!(expired.len(), 1, "the stream ends after the error");
    assert_eq!(expired[0]["type"], "ERROR");
    assert_eq!(expired[0]["object"]["code"], 410);
    assert_eq!(expired[0]["object"]["reason"], "Expired");
    assert_eq!(
        expired[0]["object"]["message"],
        "too old resource version: 3 (4)"
    );
    // A list after compaction carries a version watches can start from.
    let list = get(server.address(), MAPS, &[]).await;
    let version = serde_json::from_str::<Value>(&list.body).unwrap()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(version, "4");
    let fresh = watch_to_end(
        server.address(),
        &format!("{MAPS}?watch=true&resourceVersion={version}&timeoutSeconds=1"),
    )
    .await;
    assert_eq!(fresh.body, "");
}

#[tokio::test]
async fn raw_errors_are_kubernetes_statuses() {
    let server = KubeApi::start().await;
    let unknown = get(server.address(), "/api/v1/namespaces/fleet/secrets", &[]).await;
    assert_eq!(unknown.status, 404);
    let status: Value = serde_json::from_str(&unknown.body).unwrap();
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "NotFound");

    let bad_field = get(
        server.address(),
        &format!("{MAPS}?fieldSelector=spec.x%3Dy"),
        &[],
    )
    .await;
    assert_eq!(bad_field.status, 400);

    let client = crate::support::client();
    let send = |method: &str, path: &str, body: &str| {
        let request = http::Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", server.address()))
            .body(http_body_util::Full::new(bytes::Bytes::from(
                body.to_owned(),
            )))
            .unwrap();
        let client = client.clone();
        async move {
            crate::support::Answer::from(client.request(request).await.expect("answers")).await
        }
    };
    let nameless = send("POST", MAPS, r#"{"data":{"v":"1"}}"#).await;
    assert_eq!(nameless.status, 400);
    let elsewhere = send(
        "POST",
        MAPS,
        r#"{"metadata":{"name":"a","namespace":"other"}}"#,
    )
    .await;
    assert_eq!(elsewhere.status, 400);
    let with_version = send(
        "POST",
        MAPS,
        r#"{"metadata":{"name":"a","resourceVersion":"9"}}"#,
    )
    .await;
    assert_eq!(with_version.status, 500);
    let created = send("POST", MAPS, r#"{"metadata":{"name":"a"}}"#).await;
    assert_eq!(created.status, 201);
    let created: Value = serde_json::from_str(&created.body).unwrap();
    assert_eq!(created["kind"], "ConfigMap");
    assert_eq!(created["apiVersion"], "v1");
    let wrong_name = send("PUT", &format!("{MAPS}/a"), r#"{"metadata":{"name":"b"}}"#).await;
    assert_eq!(wrong_name.status, 400);
    let stale_delete = send(
        "DELETE",
        &format!("{MAPS}/a"),
        r#"{"preconditions":{"resourceVersion":"0"}}"#,
    )
    .await;
    assert_eq!(stale_delete.status, 409);
    let collection = send("DELETE", MAPS, "").await;
    assert_eq!(collection.status, 405);
    assert!(server.get(Kind::ConfigMap, NS, "a").is_some());
    assert_eq!(server.total_requests(), 9);
}
