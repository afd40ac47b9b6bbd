//! Fleet mode end to end: several real luas processes share one canary state
//! through the in-test Kubernetes API server (`support::kube_api`), each in
//! front of the same real stable and canary backends on loopback.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use serde_json::Value;

use crate::support::kube_api::{Kind, KubeApi};
use crate::support::{eventually, get, Backend, BackendOptions};

/// A luas process of the fleet.
struct Replica {
    name: String,
    listen: SocketAddr,
    admin: SocketAddr,
    child: tokio::process::Child,
}

/// The fleet's surroundings: the API server, the backends, a directory for
/// config files and caches.
struct Setup {
    api: KubeApi,
    stable: Backend,
    canary: Backend,
    directory: PathBuf,
    kubeconfig: PathBuf,
    /// The groups (and what else) of service web, as YAML under it.
    web: String,
}

/// Service web's groups by default: 50/50.
const FIFTY_FIFTY: &str = "    groups:
      - { name: stable, weight: 50, endpoints: [\"STABLE\"] }
      - { name: canary, weight: 50, endpoints: [\"CANARY\"] }";

fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

impl Setup {
    async fn new(test: &str) -> Self {
        let directory = crate::support::scratch(&format!("fleet-{test}"));
        let api = KubeApi::start().await;
        let kubeconfig = directory.join("kubeconfig");
        api.write_kubeconfig(&kubeconfig, "default");
        Self {
            api,
            stable: Backend::spawn(BackendOptions::new("stable")).await.unwrap(),
            canary: Backend::spawn(BackendOptions::new("canary")).await.unwrap(),
            directory,
            kubeconfig,
            web: FIFTY_FIFTY.to_owned(),
        }
    }

    /// The config of replica `name`: service web split 50/50 between the
    /// backends, in fleet `edge`; `extra` is appended at the top level.
    fn config(&self, name: &str, listen: SocketAddr, admin: SocketAddr, extra: &str) -> String {
        format!(
            r#"admin: {{ listen: "{admin}" }}
listeners:
  - name: edge
    listen: "{listen}"
    routes: [ {{ name: all, service: web }} ]
services:
  - name: web
{web}
  - name: api
    groups:
      - {{ name: stable, weight: 50, endpoints: ["{stable}"] }}
      - {{ name: canary, weight: 50, endpoints: ["{canary}"] }}
kubernetes: {{ kubeconfig: "{kubeconfig}" }}
fleet: {{ name: edge, replica: {name}, startup_timeout: 2s }}
state_file: "{state}"
{extra}
"#,
            web = self
                .web
                .replace("STABLE", &self.stable.address.to_string())
                .replace("CANARY", &self.canary.address.to_string()),
            stable = self.stable.address,
            canary = self.canary.address,
            kubeconfig = self.kubeconfig.display(),
            state = self.directory.join(format!("{name}.state.json")).display(),
        )
    }

    /// Starts replica `name` and waits until it is ready.
    async fn start(&self, name: &str, extra: &str) -> Replica {
        let (listen, admin) = (free_port(), free_port());
        let path = self.directory.join(format!("{name}.yaml"));
        std::fs::write(&path, self.config(name, listen, admin, extra)).unwrap();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_luas"))
            .args(["run", "--watch-interval", "0s", "--config"])
            .arg(&path)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.directory.join(format!("{name}.log"))).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let replica = Replica {
            name: name.to_owned(),
            listen,
            admin,
            child,
        };
        let ready = eventually(Duration::from_secs(20), || async {
            tokio::net::TcpStream::connect(admin).await.is_ok()
                && get(admin, "/ready", &[]).await.status == StatusCode::OK
        })
        .await;
        assert!(ready, "replica {name} never became ready");
        replica
    }
}

impl Replica {
    async fn call(&self, method: Method, path: &str, body: &str) -> (StatusCode, Value) {
        let request = http::Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.admin))
            .body(http_body_util::Full::new(bytes::Bytes::from(
                body.to_owned(),
            )))
            .unwrap();
        let response = tokio::time::timeout(
            Duration::from_secs(20),
            crate::support::client().request(request),
        )
        .await
        .expect("admin answers within 20 s")
        .expect("admin request succeeds");
        let answer = crate::support::Answer::from(response).await;
        let value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
        (answer.status, value)
    }

    /// Which backends `count` requests through this replica reached.
    async fn versions(&self, count: usize) -> (usize, usize) {
        let (mut stable, mut canary) = (0, 0);
        for _ in 0..count {
            let answer = get(self.listen, "/", &[]).await;
            match answer.body.trim() {
                "stable" => stable += 1,
                "canary" => canary += 1,
                other => panic!("{}: unexpected answer {other:?}", self.name),
            }
        }
        (stable, canary)
    }

    /// The live replicas this one sees in `GET /api/v1/fleet`.
    async fn live_replicas(&self) -> usize {
        let (_, fleet) = self.call(Method::GET, "/api/v1/fleet", "").await;
        fleet["replicas"].as_array().map_or(0, |replicas| {
            replicas.iter().filter(|r| r["live"] == true).count()
        })
    }

    fn weight(service: &Value, group: &str) -> u64 {
        crate::support::weight_of(service, group)
    }
}

/// Waits until every replica sees `count` live replicas.
async fn until_all_see(replicas: &[&Replica], count: usize) {
    for replica in replicas {
        let seen = eventually(Duration::from_secs(10), || async {
            replica.live_replicas().await == count
        })
        .await;
        assert!(seen, "{} never saw {count} live replicas", replica.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_through_one_replica_reaches_every_replica_before_it_answers() {
    let setup = Setup::new("rollback").await;
    let a = setup.start("a", "").await;
    let b = setup.start("b", "").await;
    let c = setup.start("c", "").await;
    until_all_see(&[&a, &b, &c], 3).await;
    // `luas ctl fleet` lists every replica.
    let listed = tokio::process::Command::new(env!("CARGO_BIN_EXE_luas"))
        .args(["ctl", "--admin", &format!("http://{}", b.admin), "fleet"])
        .output()
        .await
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.starts_with("fleet edge (namespace default)"),
        "{listed}"
    );
    for name in ["a", "b", "c"] {
        assert!(
            listed
                .lines()
                .any(|line| line.trim_start().starts_with(&format!("{name} "))),
            "{listed}"
        );
    }
    // Before: the canary gets traffic through every replica.
    for replica in [&a, &b, &c] {
        assert!(
            replica.versions(40).await.1 > 0,
            "{} sends no canary traffic",
            replica.name
        );
    }

    let started = Instant::now();
    let (status, answer) = a
        .call(Method::POST, "/api/v1/services/web/rollback?wait=5s", "")
        .await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::OK, "{answer}");
    let fleet = &answer["fleet"];
    assert_eq!(fleet["replicas"], 3, "{fleet}");
    assert_eq!(fleet["applied"], 3, "{fleet}");
    assert_eq!(fleet["local_only"], false, "{fleet}");
    assert!(
        fleet["message"]
            .as_str()
            .unwrap()
            .starts_with("rolled back web on 3/3 replicas in "),
        "{fleet}"
    );
    eprintln!(
        "rollback on 3 replicas acknowledged in {took:?}: {}",
        fleet["message"]
    );

    // Requests that start after the answer reach no canary, through any replica.
    for replica in [&a, &b, &c] {
        assert_eq!(replica.versions(60).await, (60, 0), "{}", replica.name);
        let (_, web) = replica.call(Method::GET, "/api/v1/services/web", "").await;
        assert_eq!(Replica::weight(&web, "canary"), 0, "{}", replica.name);
    }
    // The state is one ConfigMap, written with updates, never patched.
    let config_map = setup
        .api
        .get(Kind::ConfigMap, "default", "luas-fleet-edge")
        .expect("the fleet state ConfigMap exists");
    let document: Value =
        serde_json::from_str(config_map["data"]["state.json"].as_str().unwrap()).unwrap();
    assert_eq!(
        document["state"]["services"]["web"]["weights"]["canary"], 0,
        "{document}"
    );
    assert_eq!(setup.api.requests("patch", Kind::ConfigMap), 0);
    assert_eq!(setup.api.requests("patch", Kind::Lease), 0);
    // Every replica's Lease says it applied that version.
    let version = fleet["version"].as_u64().unwrap();
    for name in ["a", "b", "c"] {
        let lease = setup
            .api
            .get(Kind::Lease, "default", &format!("luas-fleet-edge-{name}"))
            .expect("replica Lease");
        let applied = lease["metadata"]["annotations"]["luas.io/applied-version"]
            .as_str()
            .unwrap();
        assert!(applied.parse::<u64>().unwrap() >= version, "{lease}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_writing_at_once_lose_neither_change() {
    let setup = Setup::new("conflict").await;
    let a = setup.start("a", "").await;
    let b = setup.start("b", "").await;
    until_all_see(&[&a, &b], 2).await;
    for round in 0..5u64 {
        let web_weight = 10 + round;
        let api_weight = 20 + round;
        let web_body = format!("{{\"canary\": {web_weight}}}");
        let api_body = format!("{{\"canary\": {api_weight}}}");
        let (first, second) = tokio::join!(
            a.call(Method::PUT, "/api/v1/services/web/weights", &web_body),
            b.call(Method::PUT, "/api/v1/services/api/weights", &api_body),
        );
        assert_eq!(first.0, StatusCode::OK, "{}", first.1);
        assert_eq!(second.0, StatusCode::OK, "{}", second.1);
        for replica in [&a, &b] {
            let agreed = eventually(Duration::from_secs(5), || async {
                let (_, web) = replica.call(Method::GET, "/api/v1/services/web", "").await;
                let (_, api) = replica.call(Method::GET, "/api/v1/services/api", "").await;
                Replica::weight(&web, "canary") == web_weight
                    && Replica::weight(&api, "canary") == api_weight
            })
            .await;
            assert!(agreed, "round {round}: {} lost a change", replica.name);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_api_down_a_rollback_applies_locally_and_lands_when_it_returns() {
    let setup = Setup::new("outage").await;
    let a = setup.start("a", "").await;
    let mut b = setup.start("b", "").await;
    until_all_see(&[&a, &b], 2).await;

    setup.api.go_down().await;
    // Raising a canary needs the fleet: refused with the reason.
    let (status, answer) = b
        .call(
            Method::PUT,
            "/api/v1/services/web/weights",
            "{\"canary\": 90}",
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("cannot be reached"),
        "{answer}"
    );
    // A rollback is never refused: applied here at once.
    let (status, answer) = b
        .call(Method::POST, "/api/v1/services/web/rollback", "")
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["fleet"]["local_only"], true, "{answer}");
    assert!(
        answer["fleet"]["message"]
            .as_str()
            .unwrap()
            .contains("this replica (b) only"),
        "{answer}"
    );
    assert_eq!(b.versions(40).await, (40, 0));

    // A replica started during the outage serves from its cache: b's state
    // file holds the rollback it made.
    b.child.kill().await.unwrap();
    let restarted = setup.start("b", "").await;
    assert_eq!(restarted.versions(40).await, (40, 0));

    // The API returns: the rollback lands in the fleet state and reaches a.
    setup.api.come_back().await;
    let landed = eventually(Duration::from_secs(15), || async {
        let (_, web) = a.call(Method::GET, "/api/v1/services/web", "").await;
        Replica::weight(&web, "canary") == 0
    })
    .await;
    assert!(landed, "the rollback never reached replica a");
    assert_eq!(a.versions(40).await, (40, 0));
    // Written, b's cache forgets it, so a later restart does not write it again.
    let cache = setup.directory.join("b.state.json");
    let forgotten = eventually(Duration::from_secs(10), || async {
        std::fs::read_to_string(&cache).is_ok_and(|text| !text.contains("unwritten_rollbacks"))
    })
    .await;
    assert!(
        forgotten,
        "{}",
        std::fs::read_to_string(&cache).unwrap_or_default()
    );
}

/// Measures (not a pass/fail test of speed): how long a change takes to
/// reach every replica, at `LUAS_FLEET_REPLICAS` replicas (default 3), and
/// the API requests an idle fleet makes. Run by scripts/fleet-bench.sh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run bash scripts/fleet-bench.sh"]
async fn bench_fleet_propagation() {
    let count: usize = std::env::var("LUAS_FLEET_REPLICAS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(3);
    let setup = Setup::new(&format!("bench{count}")).await;
    let mut replicas = Vec::new();
    for index in 0..count {
        replicas.push(setup.start(&format!("r{index}"), "").await);
    }
    let all: Vec<&Replica> = replicas.iter().collect();
    until_all_see(&all, count).await;
    let mut times = Vec::new();
    for round in 0..40u64 {
        let body = format!("{{\"canary\": {}}}", 10 + round % 2);
        let (status, answer) = replicas[0]
            .call(Method::PUT, "/api/v1/services/web/weights?wait=10s", &body)
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["fleet"]["applied"], count, "{answer}");
        times.push(answer["fleet"]["slowest_ms"].as_f64().unwrap());
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    eprintln!(
        "fleet of {count}: change on every replica p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} changes)",
        at(0.5),
        at(0.99),
        times[times.len() - 1],
        times.len()
    );
    let before = setup.api.total_requests();
    let idle = Duration::from_secs(30);
    tokio::time::sleep(idle).await;
    let made = setup.api.total_requests() - before;
    eprintln!(
        "fleet of {count}: {made} API requests in {} s idle ({:.2}/s)",
        idle.as_secs(),
        made as f64 / idle.as_secs_f64()
    );
}

/// Rollout of web's canary through steps, judged every 50 ms.
const ROLLOUT: &str = "    groups:
      - { name: stable, weight: 100, endpoints: [\"STABLE\"] }
      - { name: canary, weight: 0, endpoints: [\"CANARY\"] }
    rollout:
      group: canary
      steps: [STEPS]
      interval: INTERVAL
      tick: 50ms
      min_requests: 20
      max_error_rate: 5%
      max_p99_ratio: 3";

/// Sends requests through every replica until `stop`; returns when the
/// first 5xx came back, if one did.
fn load(
    replicas: &[&Replica],
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<Option<Instant>>> {
    replicas
        .iter()
        .map(|replica| {
            let listen = replica.listen;
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut first_failure = None;
                let deadline = Instant::now() + Duration::from_secs(60);
                while !*stop.borrow() && Instant::now() < deadline {
                    let answer = get(listen, "/", &[]).await;
                    if answer.status.is_server_error() && first_failure.is_none() {
                        first_failure = Some(Instant::now());
                    }
                }
                first_failure
            })
        })
        .collect()
}

/// The fleet state document in the API server.
fn document(setup: &Setup) -> Value {
    let config_map = setup
        .api
        .get(Kind::ConfigMap, "default", "luas-fleet-edge")
        .expect("the fleet state exists");
    serde_json::from_str(config_map["data"]["state.json"].as_str().unwrap()).unwrap()
}

/// The sum over replicas of a metric line's value.
async fn summed(replicas: &[&Replica], line_prefix: &str) -> f64 {
    let mut sum = 0.0;
    for replica in replicas {
        let metrics = get(replica.admin, "/metrics", &[]).await.body;
        sum += crate::support::sample(&metrics, line_prefix).unwrap_or(0.0);
    }
    sum
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_canary_is_rolled_back_once_on_every_replica() {
    let mut setup = Setup::new("failing").await;
    setup.canary =
        Backend::spawn(BackendOptions::new("canary").status(StatusCode::INTERNAL_SERVER_ERROR))
            .await
            .unwrap();
    setup.web = ROLLOUT
        .replace("STEPS", "50, 100")
        .replace("INTERVAL", "60s");
    let a = setup.start("a", "").await;
    let b = setup.start("b", "").await;
    let c = setup.start("c", "").await;
    let all = [&a, &b, &c];
    until_all_see(&all, 3).await;
    // The leader enters the first step for the fleet.
    let entered = eventually(Duration::from_secs(10), || async {
        document(&setup)["state"]["services"]["web"]["weights"]["canary"] == 50
    })
    .await;
    assert!(entered, "the rollout never started: {}", document(&setup));

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let loaders = load(&all, &stopped);
    let mut rolled_back_at = Vec::new();
    for replica in all {
        let at_zero = eventually(Duration::from_secs(20), || async {
            let (_, web) = replica.call(Method::GET, "/api/v1/services/web", "").await;
            Replica::weight(&web, "canary") == 0
        })
        .await;
        assert!(
            at_zero,
            "{} still sends traffic to the canary",
            replica.name
        );
        rolled_back_at.push(Instant::now());
    }
    stop.send_replace(true);
    let mut first_failure: Option<Instant> = None;
    for loader in loaders {
        if let Some(at) = loader.await.unwrap() {
            first_failure = Some(first_failure.map_or(at, |first: Instant| first.min(at)));
        }
    }
    let first_failure = first_failure.expect("the canary failed some requests");
    let last = rolled_back_at.iter().max().unwrap();
    eprintln!(
        "first canary failure to the whole fleet at 0: {:?}",
        last.saturating_duration_since(first_failure)
    );
    let record = &document(&setup)["state"]["services"]["web"]["rollout"];
    assert_eq!(record["status"], "rolled_back", "{record}");
    // One rollback for the fleet, whichever replica saw it first.
    let decisions = summed(
        &all,
        "luas_rollout_decisions_total{decision=\"rollback\",service=\"web\"}",
    )
    .await;
    assert_eq!(decisions, 1.0);
    for replica in all {
        assert_eq!(replica.versions(20).await, (20, 0), "{}", replica.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_replica_continues_the_rollout_when_the_leader_dies() {
    let mut setup = Setup::new("leader").await;
    setup.web = ROLLOUT
        .replace("STEPS", "10, 20, 30, 40, 50, 60, 70, 80, 90, 100")
        .replace("INTERVAL", "300ms");
    let mut replicas = vec![
        setup.start("a", "").await,
        setup.start("b", "").await,
        setup.start("c", "").await,
    ];
    until_all_see(&replicas.iter().collect::<Vec<_>>(), 3).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let loaders = load(&replicas.iter().collect::<Vec<_>>(), &stopped);
    let step =
        |setup: &Setup| document(setup)["state"]["services"]["web"]["rollout"]["step"].as_u64();
    let moving = eventually(Duration::from_secs(20), || async {
        step(&setup) >= Some(1)
    })
    .await;
    assert!(moving, "the rollout never promoted: {}", document(&setup));
    let lease = setup
        .api
        .get(Kind::Lease, "default", "luas-fleet-edge-rollout")
        .expect("a rollout leader holds the Lease");
    let leader = lease["spec"]["holderIdentity"].as_str().unwrap().to_owned();
    // The leader dies without a word: its Lease must expire (15 s).
    stop.send_replace(true);
    for loader in loaders {
        loader.await.unwrap();
    }
    let index = replicas.iter().position(|r| r.name == leader).unwrap();
    let mut dead = replicas.remove(index);
    dead.child.kill().await.unwrap();
    let at_kill = step(&setup).unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let loaders = load(&replicas.iter().collect::<Vec<_>>(), &stopped);
    let continued = eventually(Duration::from_secs(40), || async {
        let document = document(&setup);
        let record = &document["state"]["services"]["web"]["rollout"];
        record["step"].as_u64() > Some(at_kill) || record["status"] == "completed"
    })
    .await;
    stop.send_replace(true);
    for loader in loaders {
        let _ = loader.await;
    }
    assert!(
        continued,
        "no replica continued after {leader} died: {}",
        document(&setup)
    );
    let holder = setup
        .api
        .get(Kind::Lease, "default", "luas-fleet-edge-rollout")
        .unwrap()["spec"]["holderIdentity"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(holder, leader);
    assert!(replicas.iter().any(|r| r.name == holder), "{holder}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_shuts_down_leaves_at_once_and_watches_survive_a_410() {
    let setup = Setup::new("leave").await;
    let mut replicas = vec![
        setup.start("a", "").await,
        setup.start("b", "").await,
        setup.start("c", "").await,
    ];
    until_all_see(&replicas.iter().collect::<Vec<_>>(), 3).await;
    let holder = || {
        setup
            .api
            .get(Kind::Lease, "default", "luas-fleet-edge-rollout")
            .and_then(|lease| lease["spec"]["holderIdentity"].as_str().map(str::to_owned))
    };
    let elected = eventually(Duration::from_secs(10), || async { holder().is_some() }).await;
    assert!(elected, "no replica took the rollout Lease");
    let leader = holder().unwrap();

    // SIGTERM the rollout leader: it drains, deletes its Lease (so it stops
    // counting at once, not after the Lease's 40 s) and gives up the rollout
    // Lease, which another replica takes at once, not after its 15 s.
    let index = replicas.iter().position(|r| r.name == leader).unwrap();
    let mut leaving = replicas.remove(index);
    let pid = leaving.child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let replica_lease = format!("luas-fleet-edge-{leader}");
    let gone = eventually(Duration::from_secs(5), || async {
        setup
            .api
            .get(Kind::Lease, "default", &replica_lease)
            .is_none()
    })
    .await;
    assert!(gone, "{leader}'s Lease is still there after SIGTERM");
    let taken = eventually(Duration::from_secs(5), || async {
        holder().is_some_and(|holder| holder != leader)
    })
    .await;
    assert!(taken, "nobody took the rollout Lease after {leader} left");
    let exited = tokio::time::timeout(Duration::from_secs(15), leaving.child.wait()).await;
    assert!(exited.is_ok(), "{leader} did not exit after SIGTERM");
    let (a, b) = (&replicas[0], &replicas[1]);
    until_all_see(&[a, b], 2).await;

    // The history is compacted and every stream cut: the watches list
    // again (410) and the next change still reaches b.
    setup.api.compact();
    setup.api.cut_watches();
    let (status, answer) = a
        .call(Method::POST, "/api/v1/services/web/rollback?wait=5s", "")
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["fleet"]["replicas"], 2, "{answer}");
    assert_eq!(answer["fleet"]["applied"], 2, "{answer}");
    assert_eq!(b.versions(30).await, (30, 0));

    // What each replica says of itself in its metrics.
    let version = answer["fleet"]["version"].as_f64().unwrap();
    for replica in [a, b] {
        let metrics = get(replica.admin, "/metrics", &[]).await.body;
        let sample = |prefix: &str| crate::support::sample(&metrics, prefix);
        assert_eq!(
            sample("luas_fleet_state_version{fleet=\"edge\"}"),
            Some(version)
        );
        assert_eq!(sample("luas_fleet_replicas{fleet=\"edge\"}"), Some(2.0));
        assert!(
            sample("luas_kubernetes_watch_events_total{kind=\"configmap\",result=\"restarted\"}")
                >= Some(2.0),
            "{metrics}"
        );
    }
    let one_leader = eventually(Duration::from_secs(10), || async {
        summed(&[a, b], "luas_fleet_leader{fleet=\"edge\"}").await == 1.0
    })
    .await;
    assert!(one_leader);
    let updates = summed(
        &[a, b],
        "luas_kubernetes_requests_total{code=\"200\",kind=\"configmap\",verb=\"update\"}",
    )
    .await;
    assert!(updates >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_does_not_apply_within_the_wait_is_named() {
    let setup = Setup::new("lagging").await;
    let a = setup.start("a", "").await;
    let b = setup.start("b", "").await;
    until_all_see(&[&a, &b], 2).await;
    // b stops (SIGSTOP): its Lease stays live but it applies nothing.
    let signal = |name: &str| {
        let pid = b.child.id().unwrap().to_string();
        let status = std::process::Command::new("kill")
            .args([name, &pid])
            .status()
            .unwrap();
        assert!(status.success());
    };
    signal("-STOP");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_luas"))
        .args(["ctl", "--admin", &format!("http://{}", a.admin)])
        .args(["--wait", "300ms", "rollback", "web"])
        .output()
        .await
        .unwrap();
    signal("-CONT");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{printed}");
    assert!(
        printed.contains("rolled back web on 1/2 replicas in ")
            && printed.contains("; not applied within 300 ms: b"),
        "{printed}"
    );
    // Once it runs again, b catches up from the watch.
    let caught_up = eventually(Duration::from_secs(10), || async {
        let (_, web) = b.call(Method::GET, "/api/v1/services/web", "").await;
        Replica::weight(&web, "canary") == 0
    })
    .await;
    assert!(caught_up, "b never applied the rollback");
}

/// Without `fleet.replica`, a replica is named after its host ($HOSTNAME,
/// a pod's name in Kubernetes), lower-cased.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_without_a_name_takes_its_hostname() {
    let setup = Setup::new("hostname").await;
    let (listen, admin) = (free_port(), free_port());
    let path = setup.directory.join("unnamed.yaml");
    let config = setup
        .config("unnamed", listen, admin, "")
        .replace("replica: unnamed, ", "");
    assert!(!config.contains("replica:"), "{config}");
    std::fs::write(&path, config).unwrap();
    let _child = tokio::process::Command::new(env!("CARGO_BIN_EXE_luas"))
        .args(["run", "--watch-interval", "0s", "--config"])
        .arg(&path)
        .env("HOSTNAME", "Web-7f9c")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let leased = eventually(Duration::from_secs(20), || async {
        setup
            .api
            .get(Kind::Lease, "default", "luas-fleet-edge-web-7f9c")
            .is_some()
    })
    .await;
    assert!(leased, "no Lease named after the host");
}
