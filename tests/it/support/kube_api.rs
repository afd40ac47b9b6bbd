//! An in-test Kubernetes API server: real HTTP/1.1 on loopback, serving the
//! part of the API luas uses (namespaced ConfigMaps, coordination.k8s.io
//! Leases and discovery.k8s.io EndpointSlices) with Kubernetes' semantics,
//! so luas's kube-rs client can be tested against it without a cluster.
//!
//! What it keeps, like etcd and the apiserver's watch cache: one global
//! revision (every write bumps it and stamps the object's
//! `resourceVersion`), the objects as JSON, and a bounded history of changes
//! from which watches resume. Reads: get, list and watch with label and
//! field selectors. Writes: create, replace with the optimistic-concurrency
//! check on `resourceVersion`, delete with preconditions. PATCH and every
//! other verb is refused with 405 (and counted, so tests can prove luas
//! never patches). Errors are `Status` objects with Kubernetes' reasons and
//! messages.
//!
//! Tests steer it directly: write objects behind the client's back
//! ([`KubeApi::apply`], [`KubeApi::delete`]), take the server down and back
//! on the same port, end every watch, compact the history (resumes from
//! before it get `410 Expired`), and count requests per verb and kind.
//!
//! Left out, on purpose: list pagination (`limit` is ignored and every list
//! is one page), reading at an older `resourceVersion` (lists always serve
//! the current state, whatever `resourceVersion` and `resourceVersionMatch`
//! say), `generateName`, `dryRun`, server-side apply, `deletecollection`,
//! `metadata.generation` and `managedFields`, validation of the objects'
//! own fields, and authentication.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};

/// Changes kept for watches to resume from; older ones are compacted away,
/// as the apiserver's watch cache and etcd's compaction do.
const HISTORY_LIMIT: usize = 4096;

/// Messages buffered per watch before a watcher that does not keep up is
/// closed (Kubernetes closes such watchers too; clients resume).
const WATCH_BUFFER: usize = 1024;

/// Encoded lines waiting for the connection to take them, per watch.
const LINES_BUFFER: usize = 16;

/// How often a watch that allows bookmarks gets one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(1);

/// The largest request body accepted, Kubernetes' own limit (3 MiB).
const BODY_LIMIT: usize = 3 * 1024 * 1024;

/// The kinds this server knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    ConfigMap,
    Lease,
    EndpointSlice,
}

impl Kind {
    const ALL: [Self; 3] = [Self::ConfigMap, Self::Lease, Self::EndpointSlice];

    pub fn name(self) -> &'static str {
        match self {
            Self::ConfigMap => "ConfigMap",
            Self::Lease => "Lease",
            Self::EndpointSlice => "EndpointSlice",
        }
    }

    pub fn api_version(self) -> &'static str {
        match self {
            Self::ConfigMap => "v1",
            Self::Lease => "coordination.k8s.io/v1",
            Self::EndpointSlice => "discovery.k8s.io/v1",
        }
    }

    fn group(self) -> &'static str {
        match self {
            Self::ConfigMap => "",
            Self::Lease => "coordination.k8s.io",
            Self::EndpointSlice => "discovery.k8s.io",
        }
    }

    pub fn plural(self) -> &'static str {
        match self {
            Self::ConfigMap => "configmaps",
            Self::Lease => "leases",
            Self::EndpointSlice => "endpointslices",
        }
    }

    /// The path up to `/namespaces/`.
    fn prefix(self) -> &'static str {
        match self {
            Self::ConfigMap => "/api/v1",
            Self::Lease => "/apis/coordination.k8s.io/v1",
            Self::EndpointSlice => "/apis/discovery.k8s.io/v1",
        }
    }

    /// The resource as Kubernetes names it in messages:
    /// `configmaps`, `leases.coordination.k8s.io`.
    fn qualified(self) -> String {
        if self.group().is_empty() {
            self.plural().to_owned()
        } else {
            format!("{}.{}", self.plural(), self.group())
        }
    }
}

/// A running server; clones share it, and dropping the last one stops it.
#[derive(Debug, Clone)]
pub struct KubeApi {
    control: Arc<Control>,
}

#[derive(Debug)]
struct Control {
    shared: Arc<Shared>,
    address: SocketAddr,
    serving: Mutex<Option<Serving>>,
}

/// The accept loop of one period of being up.
#[derive(Debug)]
struct Serving {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Drop for Control {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every
        // connection; watch tasks then see their body gone and end.
        if let Some(serving) = self.serving.get_mut().unwrap().take() {
            serving.task.abort();
        }
    }
}

/// What the connections and the test handles share.
#[derive(Debug)]
struct Shared {
    /// Never held across an await.
    store: Mutex<Store>,
    open_watches: AtomicUsize,
}

type Key = (Kind, String, String);

#[derive(Debug)]
struct Store {
    /// etcd's revision: the last one given to a write.
    revision: u64,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<Arc<Change>>,
    /// Every change after this revision is in `history`: a watch may resume
    /// from here on, not from before.
    horizon: u64,
    /// Sent to under the lock, so that a watch subscribing under the lock
    /// gets exactly the changes after the state it started from.
    events: broadcast::Sender<Message>,
    requests: HashMap<(String, Kind), u64>,
    total_requests: u64,
}

/// One write: the object before and after (None: absent).
#[derive(Debug)]
struct Change {
    revision: u64,
    kind: Kind,
    namespace: String,
    old: Option<Value>,
    new: Option<Value>,
}

#[derive(Debug, Clone)]
enum Message {
    Change(Arc<Change>),
    /// The revision moved without a change (compaction): watches may
    /// bookmark it.
    Progress(u64),
    /// End every open watch now.
    Cut,
}

/// A Kubernetes `Status` failure.
#[derive(Debug)]
struct Failure {
    code: u16,
    reason: &'static str,
    message: String,
    /// The object's name and kind, for `details`.
    about: Option<(String, Kind)>,
}

impl Failure {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            about: None,
        }
    }

    fn about(mut self, name: &str, kind: Kind) -> Self {
        self.about = Some((name.to_owned(), kind));
        self
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    fn not_found(kind: Kind, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", kind.qualified()),
        )
        .about(name, kind)
    }

    fn conflict(kind: Kind, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                kind.qualified()
            ),
        )
        .about(name, kind)
    }

    fn to_json(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some((name, kind)) = &self.about {
            status["details"] = details(name, *kind);
        }
        status
    }
}

fn details(name: &str, kind: Kind) -> Value {
    let mut details = json!({ "name": name, "kind": kind.plural() });
    if !kind.group().is_empty() {
        details["group"] = json!(kind.group());
    }
    details
}

impl KubeApi {
    /// Starts the server on 127.0.0.1, on a port of the system's choosing.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the Kubernetes API");
        let address = listener.local_addr().unwrap();
        let (events, _) = broadcast::channel(WATCH_BUFFER);
        let shared = Arc::new(Shared {
            store: Mutex::new(Store {
                revision: 0,
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                horizon: 0,
                events,
                requests: HashMap::new(),
                total_requests: 0,
            }),
            open_watches: AtomicUsize::new(0),
        });
        let serving = serve(listener, shared.clone());
        Self {
            control: Arc::new(Control {
                shared,
                address,
                serving: Mutex::new(Some(serving)),
            }),
        }
    }

    pub fn address(&self) -> SocketAddr {
        self.control.address
    }

    /// Writes a kubeconfig that points at this server over plain HTTP, with
    /// a user without credentials and `namespace` as the context's default.
    pub fn write_kubeconfig(&self, path: &Path, namespace: &str) {
        let yaml = format!(
            "apiVersion: v1
kind: Config
clusters:
  - name: fake
    cluster:
      server: http://{}
users:
  - name: fake
    user: {{}}
contexts:
  - name: fake
    context:
      cluster: fake
      user: fake
      namespace: {namespace}
current-context: fake
",
            self.address()
        );
        std::fs::write(path, yaml)
            .unwrap_or_else(|error| panic!("write kubeconfig {}: {error}", path.display()));
    }

    /// Stops accepting and closes every open connection (watch streams end
    /// abruptly); connecting is refused until [`Self::come_back`]. Returns
    /// once every connection is closed.
    pub async fn go_down(&self) {
        let serving = self.control.serving.lock().unwrap().take();
        if let Some(serving) = serving {
            let _ = serving.stop.send(());
            let _ = serving.task.await;
        }
    }

    /// Listens again on the same port, with every object kept.
    pub async fn come_back(&self) {
        if self.control.serving.lock().unwrap().is_some() {
            return;
        }
        let listener = rebind(self.address()).await;
        let serving = serve(listener, self.control.shared.clone());
        let mut slot = self.control.serving.lock().unwrap();
        if slot.is_none() {
            *slot = Some(serving);
        } else {
            // Another come_back won the race; this listener is surplus.
            serving.task.abort();
        }
    }

    /// Ends every open watch stream cleanly, as the apiserver's timeout
    /// would; the server stays up and clients resume.
    pub fn cut_watches(&self) {
        let store = self.control.shared.store.lock().unwrap();
        let _ = store.events.send(Message::Cut);
    }

    /// Compacts the history: a watch resuming from any resourceVersion
    /// handed out so far gets `410 Expired`. Like the apiserver's compactor
    /// (whose compaction is itself a write to etcd) it bumps the revision,
    /// so that lists made after it carry a resourceVersion watches can start
    /// from. Open watches go on; pair it with [`Self::cut_watches`] to make
    /// every watcher resume, and so relist.
    pub fn compact(&self) {
        let mut store = self.control.shared.store.lock().unwrap();
        store.revision += 1;
        store.horizon = store.revision;
        store.history.clear();
        let revision = store.revision;
        let _ = store.events.send(Message::Progress(revision));
    }

    /// Creates or replaces the object (no precondition), as another client
    /// of the cluster would; watchers are told. Like Kubernetes, writing an
    /// object unchanged is a no-op that keeps its resourceVersion.
    pub fn apply(&self, kind: Kind, namespace: &str, object: Value) -> Value {
        let mut store = self.control.shared.store.lock().unwrap();
        let mut object = normalize(kind, namespace, object)
            .unwrap_or_else(|failure| panic!("apply: {}", failure.message));
        let name = name_of(&object).to_owned();
        let key = (kind, namespace.to_owned(), name);
        if let Some(stored) = store.objects.get(&key) {
            inherit_system_fields(&mut object, stored);
            if &object == stored {
                return object;
            }
        } else {
            stamp_new(&mut object);
        }
        store.commit(key, Some(object))
    }

    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<Value> {
        let store = self.control.shared.store.lock().unwrap();
        store
            .objects
            .get(&(kind, namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Deletes the object as another client would; false if it was absent.
    pub fn delete(&self, kind: Kind, namespace: &str, name: &str) -> bool {
        let mut store = self.control.shared.store.lock().unwrap();
        let key = (kind, namespace.to_owned(), name.to_owned());
        if !store.objects.contains_key(&key) {
            return false;
        }
        store.commit(key, None);
        true
    }

    /// The objects of `kind` in `namespace`, by name.
    pub fn list(&self, kind: Kind, namespace: &str) -> Vec<Value> {
        let store = self.control.shared.store.lock().unwrap();
        store.in_namespace(kind, namespace).cloned().collect()
    }

    /// Requests received for `verb` (get list watch create update delete
    /// patch, or another HTTP method in lower case) on `kind`.
    pub fn requests(&self, verb: &str, kind: Kind) -> u64 {
        let store = self.control.shared.store.lock().unwrap();
        store
            .requests
            .get(&(verb.to_owned(), kind))
            .copied()
            .unwrap_or(0)
    }

    /// Every request received, also those to paths it does not serve.
    pub fn total_requests(&self) -> u64 {
        self.control.shared.store.lock().unwrap().total_requests
    }

    /// Watch streams open now.
    pub fn open_watches(&self) -> usize {
        self.control.shared.open_watches.load(Ordering::SeqCst)
    }
}

/// Binds `address` again. Connections closed by go_down linger in
/// TIME_WAIT on this port, hence SO_REUSEADDR; and a client socket of
/// another test may have been given the port meanwhile, hence the retries.
async fn rebind(address: SocketAddr) -> TcpListener {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let attempt = TcpSocket::new_v4().and_then(|socket| {
            socket.set_reuseaddr(true)?;
            socket.bind(address)?;
            socket.listen(1024)
        });
        match attempt {
            Ok(listener) => return listener,
            Err(error) if tokio::time::Instant::now() >= deadline => {
                panic!("the Kubernetes API cannot listen on {address} again: {error}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

fn serve(listener: TcpListener, shared: Arc<Shared>) -> Serving {
    let (stop, mut stopped) = oneshot::channel();
    let task = tokio::spawn(async move {
        // Owning the connections here lets go_down close them all and wait
        // until they are closed.
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else {
                        // Out of descriptors or the like: do not spin.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    };
                    let shared = shared.clone();
                    connections.spawn(async move {
                        let service = service_fn(move |request| handle(shared.clone(), request));
                        // No timer, so no header_read_timeout: like the
                        // apiserver, keep idle connections open, so the
                        // client's pool never races a server-side close.
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        drop(listener);
        connections.shutdown().await;
    });
    Serving { stop, task }
}

type Body = Either<Full<Bytes>, WatchBody>;

fn respond(status: u16, value: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Either::Left(Full::new(Bytes::from(value.to_string()))))
        .unwrap()
}

fn fail(failure: &Failure) -> Response<Body> {
    respond(failure.code, &failure.to_json())
}

/// `kind`, namespace and name (None for the collection) of an API path.
fn route(path: &str) -> Option<(Kind, String, Option<String>)> {
    Kind::ALL.into_iter().find_map(|kind| {
        let rest = path
            .strip_prefix(kind.prefix())?
            .strip_prefix("/namespaces/")?;
        let mut segments = rest.split('/');
        let namespace = segments.next().filter(|ns| !ns.is_empty())?;
        if segments.next()? != kind.plural() {
            return None;
        }
        let name = match segments.next() {
            None => None,
            Some(name) if !name.is_empty() => Some(name.to_owned()),
            Some(_) => return None,
        };
        if segments.next().is_some() {
            return None;
        }
        Some((kind, namespace.to_owned(), name))
    })
}

/// The decoded query pairs (`+` is a space, `%XX` a byte).
fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    fn decode(text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut index = 0;
        while index < bytes.len() {
            let escaped = bytes
                .get(index + 1..index + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok());
            match (bytes[index], escaped) {
                (b'+', _) => out.push(b' '),
                (b'%', Some(byte)) => {
                    out.push(byte);
                    index += 2;
                }
                (byte, _) => out.push(byte),
            }
            index += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    query
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let (parts, body) = request.into_parts();
    let params = query_pairs(parts.uri.query());
    let route = route(parts.uri.path());
    let watching = matches!(param(&params, "watch"), Some("true" | "1"));
    let verb = match (
        &parts.method,
        route.as_ref().map(|(_, _, name)| name.is_some()),
    ) {
        (&Method::GET, Some(true)) => "get".to_owned(),
        (&Method::GET, Some(false)) if watching => "watch".to_owned(),
        (&Method::GET, Some(false)) => "list".to_owned(),
        (&Method::POST, Some(false)) => "create".to_owned(),
        (&Method::PUT, Some(true)) => "update".to_owned(),
        (&Method::DELETE, Some(true)) => "delete".to_owned(),
        (method, _) => method.as_str().to_ascii_lowercase(),
    };
    {
        let mut store = shared.store.lock().unwrap();
        store.total_requests += 1;
        if let Some((kind, _, _)) = &route {
            *store.requests.entry((verb.clone(), *kind)).or_insert(0) += 1;
        }
    }
    let Some((kind, namespace, name)) = route else {
        return Ok(fail(&Failure::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )));
    };
    let body = match Limited::new(body, BODY_LIMIT).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            return Ok(fail(&Failure::new(
                413,
                "RequestEntityTooLarge",
                format!("the request body could not be read: {error}"),
            )))
        }
    };
    let name = name.as_deref();
    let outcome = match (verb.as_str(), name) {
        ("get", Some(name)) => {
            let store = shared.store.lock().unwrap();
            store
                .objects
                .get(&(kind, namespace, name.to_owned()))
                .map(|object| (200, object.clone()))
                .ok_or_else(|| Failure::not_found(kind, name))
        }
        ("list", None) => list(&shared, kind, &namespace, &params),
        ("watch", None) => return Ok(watch(&shared, kind, &namespace, &params)),
        ("create", None) => parse(&body).and_then(|object| {
            let mut store = shared.store.lock().unwrap();
            store
                .create(kind, &namespace, object)
                .map(|stored| (201, stored))
        }),
        ("update", Some(name)) => parse(&body).and_then(|object| {
            let mut store = shared.store.lock().unwrap();
            store
                .replace(kind, &namespace, name, object)
                .map(|stored| (200, stored))
        }),
        ("delete", Some(name)) => {
            let options = if body.iter().all(u8::is_ascii_whitespace) {
                Ok(json!({}))
            } else {
                parse(&body)
            };
            options.and_then(|options| {
                let mut store = shared.store.lock().unwrap();
                store.remove(kind, &namespace, name, &options)
            })
        }
        _ => Err(Failure::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )),
    };
    Ok(match outcome {
        Ok((status, value)) => respond(status, &value),
        Err(failure) => fail(&failure),
    })
}

fn parse(body: &[u8]) -> Result<Value, Failure> {
    serde_json::from_slice(body)
        .map_err(|error| Failure::bad_request(format!("the request body is not JSON: {error}")))
}

fn list(
    shared: &Shared,
    kind: Kind,
    namespace: &str,
    params: &[(String, String)],
) -> Result<(u16, Value), Failure> {
    let filter = Filter::new(kind, namespace, params)?;
    let store = shared.store.lock().unwrap();
    // Kubernetes leaves apiVersion and kind out of a list's items.
    let items: Vec<Value> = store
        .in_namespace(kind, namespace)
        .filter(|object| filter.matches(object))
        .map(|object| {
            let mut item = object.clone();
            if let Some(map) = item.as_object_mut() {
                map.remove("apiVersion");
                map.remove("kind");
            }
            item
        })
        .collect();
    Ok((
        200,
        json!({
            "kind": format!("{}List", kind.name()),
            "apiVersion": kind.api_version(),
            "metadata": { "resourceVersion": store.revision.to_string() },
            "items": items,
        }),
    ))
}

/// Where a watch starts.
#[derive(Debug, Clone, Copy)]
enum Start {
    /// An ADDED event for every object there is, then the changes.
    State,
    /// The changes after this revision.
    After(u64),
}

fn watch(
    shared: &Arc<Shared>,
    kind: Kind,
    namespace: &str,
    params: &[(String, String)],
) -> Response<Body> {
    let query = |name: &str| param(params, name);
    let filter = match Filter::new(kind, namespace, params) {
        Ok(filter) => filter,
        Err(failure) => return fail(&failure),
    };
    let bookmarks = query("allowWatchBookmarks") == Some("true");
    let initial_events_end = query("sendInitialEvents") == Some("true");
    if initial_events_end && !bookmarks {
        return fail(&Failure::new(
            422,
            "Invalid",
            "sendInitialEvents requires allowWatchBookmarks=true",
        ));
    }
    let start = match query("resourceVersion").unwrap_or("") {
        _ if initial_events_end => Start::State,
        "" | "0" => Start::State,
        version => match version.parse() {
            Ok(revision) => Start::After(revision),
            Err(_) => {
                return fail(&Failure::bad_request(format!(
                    "invalid resource version: {version}"
                )))
            }
        },
    };
    let deadline = match query("timeoutSeconds").map(str::parse::<u64>) {
        None => None,
        Some(Ok(seconds)) => Some(tokio::time::Instant::now() + Duration::from_secs(seconds)),
        Some(Err(_)) => return fail(&Failure::bad_request("invalid timeoutSeconds")),
    };

    let (lines, events, seen) = {
        let store = shared.store.lock().unwrap();
        let mut lines = Vec::new();
        let events = match start {
            Start::After(revision) if revision < store.horizon => {
                let expired = Failure::new(
                    410,
                    "Expired",
                    format!("too old resource version: {revision} ({})", store.horizon),
                );
                lines.push(line("ERROR", &expired.to_json()));
                None
            }
            Start::After(revision) => {
                for change in store.history.iter().filter(|c| c.revision > revision) {
                    if let Some((kind, object)) = filter.event(change) {
                        lines.push(line(kind, &object));
                    }
                }
                Some(store.events.subscribe())
            }
            Start::State => {
                for object in store.in_namespace(kind, namespace) {
                    if filter.matches(object) {
                        lines.push(line("ADDED", object));
                    }
                }
                if initial_events_end {
                    lines.push(bookmark(kind, store.revision, true));
                }
                Some(store.events.subscribe())
            }
        };
        (lines, events, store.revision)
    };

    let (sender, receiver) = mpsc::channel(LINES_BUFFER);
    let body = WatchBody::new(receiver, shared.clone());
    tokio::spawn(run_watch(Watch {
        lines,
        events,
        filter,
        seen,
        bookmarks,
        deadline,
        out: sender,
    }));
    Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Either::Right(body))
        .unwrap()
}

/// One open watch, fed by its task.
#[derive(Debug)]
struct Watch {
    /// Sent first: the initial state or the history, or the 410 error.
    lines: Vec<Bytes>,
    /// None: the stream ends after `lines`.
    events: Option<broadcast::Receiver<Message>>,
    filter: Filter,
    /// The last revision this watch has been told about (events it was
    /// sent or filtered out): what a bookmark may claim.
    seen: u64,
    bookmarks: bool,
    deadline: Option<tokio::time::Instant>,
    out: mpsc::Sender<Bytes>,
}

impl Watch {
    /// Hands `line` to the connection; false when the stream is over (the
    /// connection is gone, or the deadline passed while a client that
    /// does not read held it up).
    async fn emit(&self, line: Bytes) -> bool {
        tokio::select! {
            sent = self.out.send(line) => sent.is_ok(),
            () = sleep_until(self.deadline) => false,
        }
    }
}

async fn run_watch(mut watch: Watch) {
    for line in std::mem::take(&mut watch.lines) {
        if !watch.emit(line).await {
            return;
        }
    }
    let Some(mut events) = watch.events.take() else {
        return;
    };
    let deadline = watch.deadline;
    let mut ticker = tokio::time::interval(BOOKMARK_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate; the first bookmark is due a period in.
    ticker.tick().await;
    loop {
        let line = tokio::select! {
            // Messages first: a bookmark must never slip in between a
            // compaction and a cut that follows it, or the client would
            // resume from after the compaction instead of getting 410.
            biased;
            message = events.recv() => match message {
                Ok(Message::Change(change)) => {
                    watch.seen = change.revision;
                    match watch.filter.event(&change) {
                        Some((kind, object)) => line(kind, &object),
                        None => continue,
                    }
                }
                Ok(Message::Progress(revision)) => {
                    watch.seen = revision;
                    continue;
                }
                // Cut, a watcher too slow to keep up (Kubernetes closes
                // those too), or the server is gone: end cleanly, and the
                // client resumes from its last resourceVersion.
                Ok(Message::Cut) | Err(_) => return,
            },
            _ = ticker.tick(), if watch.bookmarks => bookmark(watch.filter.kind, watch.seen, false),
            () = sleep_until(deadline) => return,
            () = watch.out.closed() => return,
        };
        if !watch.emit(line).await {
            return;
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({ "type": kind, "object": object })).unwrap();
    line.push(b'\n');
    Bytes::from(line)
}

fn bookmark(kind: Kind, revision: u64, initial_events_end: bool) -> Bytes {
    let mut object = json!({
        "kind": kind.name(),
        "apiVersion": kind.api_version(),
        "metadata": { "resourceVersion": revision.to_string() },
    });
    if initial_events_end {
        object["metadata"]["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
    }
    line("BOOKMARK", &object)
}

/// A watch's response body: the lines its task sends, chunk by chunk.
/// Counts as an open watch until hyper drops it.
#[derive(Debug)]
struct WatchBody {
    receiver: mpsc::Receiver<Bytes>,
    shared: Arc<Shared>,
}

impl WatchBody {
    fn new(receiver: mpsc::Receiver<Bytes>, shared: Arc<Shared>) -> Self {
        shared.open_watches.fetch_add(1, Ordering::SeqCst);
        Self { receiver, shared }
    }
}

impl Drop for WatchBody {
    fn drop(&mut self) {
        self.shared.open_watches.fetch_sub(1, Ordering::SeqCst);
    }
}

impl hyper::body::Body for WatchBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.receiver
            .poll_recv(cx)
            .map(|line| line.map(|line| Ok(Frame::data(line))))
    }
}

impl Store {
    fn in_namespace<'a>(
        &'a self,
        kind: Kind,
        namespace: &'a str,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects
            .range((kind, namespace.to_owned(), String::new())..)
            .take_while(move |((k, ns, _), _)| *k == kind && ns == namespace)
            .map(|(_, object)| object)
    }

    /// Writes `new` (None: deletes) at the next revision, records the change
    /// and tells the watches. Returns what is stored now, or for a delete
    /// the deleted object stamped with the deletion's revision (what a
    /// DELETED event carries).
    fn commit(&mut self, key: Key, new: Option<Value>) -> Value {
        self.revision += 1;
        let revision = json!(self.revision.to_string());
        let (kind, namespace, _) = key.clone();
        let new = new.map(|mut object| {
            object["metadata"]["resourceVersion"] = revision.clone();
            object
        });
        let old = match &new {
            Some(object) => self.objects.insert(key, object.clone()),
            None => self.objects.remove(&key),
        };
        let answer = new
            .clone()
            .or_else(|| {
                old.clone().map(|mut object| {
                    object["metadata"]["resourceVersion"] = revision;
                    object
                })
            })
            .expect("a write changes an object");
        let change = Arc::new(Change {
            revision: self.revision,
            kind,
            namespace,
            old,
            new,
        });
        self.history.push_back(change.clone());
        while self.history.len() > HISTORY_LIMIT {
            if let Some(dropped) = self.history.pop_front() {
                self.horizon = dropped.revision;
            }
        }
        // No receiver (no watch open) is fine.
        let _ = self.events.send(Message::Change(change));
        answer
    }

    fn create(&mut self, kind: Kind, namespace: &str, object: Value) -> Result<Value, Failure> {
        let mut object = normalize(kind, namespace, object)?;
        if !text(&object["metadata"]["resourceVersion"]).is_empty() {
            // What Kubernetes' storage answers, an internal error.
            return Err(Failure::new(
                500,
                "InternalError",
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let name = name_of(&object).to_owned();
        let key = (kind, namespace.to_owned(), name.clone());
        if self.objects.contains_key(&key) {
            return Err(Failure::new(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", kind.qualified()),
            )
            .about(&name, kind));
        }
        stamp_new(&mut object);
        Ok(self.commit(key, Some(object)))
    }

    fn replace(
        &mut self,
        kind: Kind,
        namespace: &str,
        name: &str,
        object: Value,
    ) -> Result<Value, Failure> {
        let mut object = normalize(kind, namespace, object)?;
        if name_of(&object) != name {
            return Err(Failure::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                name_of(&object)
            )));
        }
        let key = (kind, namespace.to_owned(), name.to_owned());
        let Some(stored) = self.objects.get(&key).cloned() else {
            // None of these kinds allows create-on-update.
            return Err(Failure::not_found(kind, name));
        };
        // An update without a resourceVersion is unconditional, as these
        // kinds allow; with one, it must be the stored one.
        let version = text(&object["metadata"]["resourceVersion"]);
        if !version.is_empty() && version != text(&stored["metadata"]["resourceVersion"]) {
            return Err(Failure::conflict(
                kind,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        let uid = text(&object["metadata"]["uid"]);
        let stored_uid = text(&stored["metadata"]["uid"]);
        if !uid.is_empty() && uid != stored_uid {
            return Err(Failure::conflict(
                kind,
                name,
                &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {stored_uid}"),
            ));
        }
        inherit_system_fields(&mut object, &stored);
        if object == stored {
            // Kubernetes skips writing an unchanged object: same
            // resourceVersion, no event.
            return Ok(stored);
        }
        Ok(self.commit(key, Some(object)))
    }

    /// Deletes with the preconditions of a DeleteOptions body; answers a
    /// Success Status, as Kubernetes does for these kinds.
    fn remove(
        &mut self,
        kind: Kind,
        namespace: &str,
        name: &str,
        options: &Value,
    ) -> Result<(u16, Value), Failure> {
        let key = (kind, namespace.to_owned(), name.to_owned());
        let Some(stored) = self.objects.get(&key) else {
            return Err(Failure::not_found(kind, name));
        };
        let stored_uid = text(&stored["metadata"]["uid"]).to_owned();
        let preconditions = &options["preconditions"];
        if let Some(uid) = preconditions["uid"].as_str() {
            if uid != stored_uid {
                return Err(Failure::conflict(
                    kind,
                    name,
                    &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {stored_uid}"),
                ));
            }
        }
        if let Some(version) = preconditions["resourceVersion"].as_str() {
            let stored_version = text(&stored["metadata"]["resourceVersion"]);
            if version != stored_version {
                return Err(Failure::conflict(
                    kind,
                    name,
                    &format!("Precondition failed: ResourceVersion in precondition: {version}, ResourceVersion in object meta: {stored_version}"),
                ));
            }
        }
        self.commit(key, None);
        let mut details = details(name, kind);
        details["uid"] = json!(stored_uid);
        Ok((
            200,
            json!({
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": details,
            }),
        ))
    }
}

/// A JSON string's text; "" for anything else.
fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("")
}

fn name_of(object: &Value) -> &str {
    text(&object["metadata"]["name"])
}

/// Checks what the path and the object must agree on and fills in what
/// Kubernetes fills in: apiVersion, kind, metadata.namespace.
fn normalize(kind: Kind, namespace: &str, object: Value) -> Result<Value, Failure> {
    let Value::Object(mut map) = object else {
        return Err(Failure::bad_request("the object is not a JSON object"));
    };
    for (field, want) in [("apiVersion", kind.api_version()), ("kind", kind.name())] {
        match map.get(field) {
            None | Some(Value::Null) => {
                map.insert(field.to_owned(), json!(want));
            }
            Some(Value::String(have)) if have == want => {}
            Some(have) => {
                return Err(Failure::bad_request(format!(
                    "the object's {field} is {have}, not {want:?}"
                )))
            }
        }
    }
    let metadata = map.entry("metadata").or_insert_with(|| json!({}));
    let Some(metadata) = metadata.as_object_mut() else {
        return Err(Failure::bad_request("metadata is not an object"));
    };
    match metadata.get("namespace") {
        None | Some(Value::Null) => {}
        Some(Value::String(have)) if have.is_empty() || have == namespace => {}
        Some(_) => return Err(Failure::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
    }
    metadata.insert("namespace".to_owned(), json!(namespace));
    match metadata.get("name") {
        Some(Value::String(name)) if !name.is_empty() => {}
        _ => {
            return Err(Failure::bad_request(
                "metadata.name: Required value: name or generateName is required",
            ))
        }
    }
    Ok(Value::Object(map))
}

/// What the server sets on a new object.
fn stamp_new(object: &mut Value) {
    let metadata = &mut object["metadata"];
    metadata["uid"] = json!(new_uid());
    metadata["creationTimestamp"] = json!(now_rfc3339());
    if let Some(metadata) = metadata.as_object_mut() {
        metadata.remove("resourceVersion");
    }
}

/// What a replace keeps from the stored object whatever the body says;
/// the resourceVersion too, so that an unchanged object compares equal.
fn inherit_system_fields(object: &mut Value, stored: &Value) {
    for field in ["uid", "creationTimestamp", "resourceVersion"] {
        object["metadata"][field] = stored["metadata"][field].clone();
    }
}

fn new_uid() -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        fastrand::u32(..),
        fastrand::u16(..),
        fastrand::u16(..0x1000),
        0x8000 | fastrand::u16(..0x4000),
        fastrand::u64(..1 << 48)
    )
}

/// Now, as Kubernetes writes timestamps: `2025-01-31T12:00:00Z`.
fn now_rfc3339() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs();
    let (days, time) = (seconds / 86_400, seconds % 86_400);
    // Howard Hinnant's days-to-civil, for days since 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        time / 3600,
        time % 3600 / 60,
        time % 60
    )
}

/// The label and field selectors of a list or watch.
#[derive(Debug)]
struct Filter {
    kind: Kind,
    namespace: String,
    labels: Vec<Requirement>,
    fields: Vec<FieldRequirement>,
}

#[derive(Debug)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

#[derive(Debug)]
struct FieldRequirement {
    /// `name` or `namespace` of metadata, the only fields these kinds
    /// can be selected by.
    field: &'static str,
    value: String,
    equal: bool,
}

impl Filter {
    fn new(kind: Kind, namespace: &str, params: &[(String, String)]) -> Result<Self, Failure> {
        let labels =
            parse_labels(param(params, "labelSelector").unwrap_or("")).map_err(|error| {
                Failure::bad_request(format!("unable to parse requirement: {error}"))
            })?;
        let fields = parse_fields(param(params, "fieldSelector").unwrap_or(""))
            .map_err(Failure::bad_request)?;
        Ok(Self {
            kind,
            namespace: namespace.to_owned(),
            labels,
            fields,
        })
    }

    fn matches(&self, object: &Value) -> bool {
        let labels = &object["metadata"]["labels"];
        let label = |key: &str| labels[key].as_str();
        let labels_match = self.labels.iter().all(|requirement| match requirement {
            Requirement::Equals(key, value) => label(key) == Some(value.as_str()),
            Requirement::NotEquals(key, value) => label(key) != Some(value.as_str()),
            Requirement::In(key, values) => {
                label(key).is_some_and(|have| values.iter().any(|v| v == have))
            }
            Requirement::NotIn(key, values) => {
                !label(key).is_some_and(|have| values.iter().any(|v| v == have))
            }
            Requirement::Exists(key) => label(key).is_some(),
            Requirement::NotExists(key) => label(key).is_none(),
        });
        labels_match
            && self.fields.iter().all(|requirement| {
                (text(&object["metadata"][requirement.field]) == requirement.value)
                    == requirement.equal
            })
    }

    /// The event this watch gets for `change`, if any: an object that
    /// starts matching is ADDED, one that stops matching is DELETED (its
    /// last matching content at the change's revision), as the apiserver's
    /// watch cache does.
    fn event(&self, change: &Change) -> Option<(&'static str, Value)> {
        if change.kind != self.kind || change.namespace != self.namespace {
            return None;
        }
        let was = change.old.as_ref().is_some_and(|old| self.matches(old));
        match change.new.as_ref().filter(|new| self.matches(new)) {
            Some(new) => Some((if was { "MODIFIED" } else { "ADDED" }, new.clone())),
            None if was => {
                let mut old = change.old.clone()?;
                old["metadata"]["resourceVersion"] = json!(change.revision.to_string());
                Some(("DELETED", old))
            }
            None => None,
        }
    }
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// Parses a label selector: `a=b`, `a==b`, `a!=b`, `a`, `!a`,
/// `a in (x,y)`, `a notin (x,y)`, comma-separated and ANDed.
fn parse_labels(selector: &str) -> Result<Vec<Requirement>, String> {
    if selector.trim().is_empty() {
        return Ok(Vec::new());
    }
    // Split on the commas outside parentheses.
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0_u32, 0);
    for (index, character) in selector.char_indices() {
        match character {
            '(' => depth += 1,
            ')' => depth = depth.checked_sub(1).ok_or("unbalanced parentheses")?,
            ',' if depth == 0 => {
                terms.push(&selector[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    terms.push(&selector[start..]);
    terms.into_iter().map(parse_requirement).collect()
}

fn parse_requirement(term: &str) -> Result<Requirement, String> {
    let term = term.trim();
    if let Some(key) = term.strip_prefix('!') {
        return Ok(Requirement::NotExists(label_key(key.trim())?));
    }
    if let Some(open) = term.find('(') {
        let set = term[open + 1..]
            .strip_suffix(')')
            .ok_or_else(|| format!("{term}: expected a set ending in )"))?;
        let values = set
            .split(',')
            .map(|value| label_value(value.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut words = term[..open].split_whitespace();
        let (Some(key), Some(operator), None) = (words.next(), words.next(), words.next()) else {
            return Err(format!(
                "{term}: expected `key in (...)` or `key notin (...)`"
            ));
        };
        let key = label_key(key)?;
        return match operator {
            "in" => Ok(Requirement::In(key, values)),
            "notin" => Ok(Requirement::NotIn(key, values)),
            _ => Err(format!("{term}: unknown operator {operator}")),
        };
    }
    for (operator, equal) in [("!=", false), ("==", true), ("=", true)] {
        if let Some((key, value)) = term.split_once(operator) {
            let (key, value) = (label_key(key.trim())?, label_value(value.trim())?);
            return Ok(if equal {
                Requirement::Equals(key, value)
            } else {
                Requirement::NotEquals(key, value)
            });
        }
    }
    Ok(Requirement::Exists(label_key(term)?))
}

fn label_key(key: &str) -> Result<String, String> {
    let valid = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if valid {
        Ok(key.to_owned())
    } else {
        Err(format!("invalid label key {key:?}"))
    }
}

fn label_value(value: &str) -> Result<String, String> {
    if value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        Ok(value.to_owned())
    } else {
        Err(format!("invalid label value {value:?}"))
    }
}

/// Parses a field selector over `metadata.name` and `metadata.namespace`:
/// `f=v`, `f==v`, `f!=v`, comma-separated and ANDed.
fn parse_fields(selector: &str) -> Result<Vec<FieldRequirement>, String> {
    if selector.trim().is_empty() {
        return Ok(Vec::new());
    }
    selector
        .split(',')
        .map(|term| {
            let (field, value, equal) = [("!=", false), ("==", true), ("=", true)]
                .into_iter()
                .find_map(|(operator, equal)| {
                    term.split_once(operator)
                        .map(|(field, value)| (field.trim(), value.trim(), equal))
                })
                .ok_or_else(|| format!("invalid field selector: {term}"))?;
            let field = match field {
                "metadata.name" => "name",
                "metadata.namespace" => "namespace",
                other => return Err(format!("field label not supported: {other}")),
            };
            Ok(FieldRequirement {
                field,
                value: value.to_owned(),
                equal,
            })
        })
        .collect()
}
