//! The Kubernetes API client: where its address and credentials come from,
//! and the count of every request luas sends.
//!
//! Credentials: `kubernetes.kubeconfig` when set; else the pod's service
//! account when luas runs in a cluster (`KUBERNETES_SERVICE_HOST`); else
//! `$KUBECONFIG` or `~/.kube/config`. A kubeconfig whose server is plain
//! `http://` works (the tests run one on loopback). The namespace is
//! `kubernetes.namespace`, else the pod's, else the kubeconfig context's.
//!
//! Every request goes through [`CountRequests`], a tower layer on kube's
//! client stack, so `luas_kubernetes_requests_total{verb,kind,code}` counts
//! the watcher's lists and watches as well as luas's own calls. This module
//! does not know what luas stores in the API (see `fleet`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Method, Request, Response};
use kube::client::ClientBuilder;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::config::KubernetesConfig;
use crate::metrics::Metrics;

/// Why no Kubernetes client could be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KubernetesError {
    #[error("kubernetes.kubeconfig {path}: {source}")]
    Kubeconfig {
        path: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error(
        "no Kubernetes credentials: not in a cluster ({in_cluster}) and no kubeconfig \
         ({kubeconfig}); set kubernetes.kubeconfig or $KUBECONFIG"
    )]
    Infer {
        in_cluster: String,
        kubeconfig: String,
    },
    #[error("cannot build the Kubernetes client: {0}")]
    Client(#[source] kube::Error),
}

/// A client and the namespace luas's objects live in.
#[derive(Clone)]
pub(crate) struct Kubernetes {
    pub client: kube::Client,
    pub namespace: String,
}

impl std::fmt::Debug for Kubernetes {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Kubernetes")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Kubernetes {
    /// Reads the credentials and builds the client; sends nothing yet.
    pub(crate) async fn connect(
        config: &KubernetesConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Self, KubernetesError> {
        let mut client_config = match &config.kubeconfig {
            Some(path) => {
                let error = |source| KubernetesError::Kubeconfig {
                    path: path.display().to_string(),
                    source,
                };
                let kubeconfig = Kubeconfig::read_from(path).map_err(error)?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                    .await
                    .map_err(error)?
            }
            None if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() => {
                match kube::Config::incluster() {
                    Ok(config) => config,
                    Err(in_cluster) => kube::Config::from_kubeconfig(&KubeConfigOptions::default())
                        .await
                        .map_err(|kubeconfig| KubernetesError::Infer {
                            in_cluster: in_cluster.to_string(),
                            kubeconfig: kubeconfig.to_string(),
                        })?,
                }
            }
            None => kube::Config::infer()
                .await
                .map_err(|error| KubernetesError::Infer {
                    in_cluster: "see below".into(),
                    kubeconfig: error.to_string(),
                })?,
        };
        if let Some(namespace) = &config.namespace {
            client_config.default_namespace.clone_from(namespace);
        }
        let namespace = client_config.default_namespace.clone();
        let client = ClientBuilder::try_from(client_config)
            .map_err(KubernetesError::Client)?
            .with_layer(&CountRequests { metrics })
            .build();
        Ok(Self { client, namespace })
    }
}

/// Counts each request by verb, kind and answer (a tower layer on kube's stack).
#[derive(Debug, Clone)]
pub(crate) struct CountRequests {
    metrics: Arc<Metrics>,
}

impl<S> tower::Layer<S> for CountRequests {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Counted {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Counted<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, R> tower::Service<Request<B>> for Counted<S>
where
    S: tower::Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
    S::Error: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let (verb, kind) = describe(request.method(), request.uri());
        let metrics = self.metrics.clone();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let result = answer.await;
            let code = match &result {
                Ok(response) => response.status().as_u16().to_string(),
                Err(_) => "error".to_owned(),
            };
            metrics.kubernetes_request(verb, kind, &code);
            result
        })
    }
}

/// The verb (as RBAC names it) and the resource of a request, from its
/// method and path.
pub(crate) fn describe(method: &Method, uri: &http::Uri) -> (&'static str, &'static str) {
    let path = uri.path().trim_end_matches('/');
    let segments: Vec<&str> = path.split('/').collect();
    let (kind, named) = [
        ("configmaps", "configmap"),
        ("leases", "lease"),
        ("endpointslices", "endpointslice"),
    ]
    .iter()
    .find_map(|(plural, kind)| {
        let position = segments.iter().rposition(|segment| segment == plural)?;
        Some((*kind, position + 1 < segments.len()))
    })
    .unwrap_or(("other", false));
    let watch = uri.query().is_some_and(|query| {
        query
            .split('&')
            .any(|pair| pair == "watch=true" || pair == "watch=1")
    });
    let verb = match *method {
        Method::GET if watch => "watch",
        Method::GET if named => "get",
        Method::GET => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::DELETE => "delete",
        Method::PATCH => "patch",
        _ => "other",
    };
    (verb, kind)
}

/// How a watch waits before it tries again after an error: 100 ms,
/// doubling to 5 s, with jitter, back to 100 ms once an event arrives. Short
/// at first, since a cut stream or a restarted API server is the common case
/// and a fleet change must not wait for a long backoff to pass.
#[derive(Debug, Clone)]
pub(crate) struct WatchBackoff {
    next: Duration,
}

const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(5);

impl Default for WatchBackoff {
    fn default() -> Self {
        Self { next: FIRST_RETRY }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let wait = self.next;
        self.next = (self.next * 2).min(LAST_RETRY);
        // Up to a quarter more, so replicas cut at once do not return at once.
        let jitter = wait.mul_f64(fastrand::f64() / 4.0);
        Some(wait + jitter)
    }
}

impl kube::runtime::utils::Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = FIRST_RETRY;
    }
}

/// Whether a watch works, so that its log says when that changes rather
/// than at every retry.
#[derive(Debug)]
pub(crate) struct WatchHealth {
    what: String,
    failing: bool,
}

impl WatchHealth {
    pub(crate) fn new(what: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            failing: false,
        }
    }

    pub(crate) fn failed(&mut self, error: &dyn std::fmt::Display) {
        if !self.failing {
            self.failing = true;
            tracing::warn!(watch = %self.what, %error, "Kubernetes watch failing; retrying with backoff");
        }
    }

    pub(crate) fn working(&mut self) {
        if self.failing {
            self.failing = false;
            tracing::info!(watch = %self.what, "Kubernetes watch working again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_named_as_rbac_names_them() {
        let cases = [
            (
                "GET",
                "/api/v1/namespaces/d/configmaps/luas-fleet-edge",
                ("get", "configmap"),
            ),
            (
                "GET",
                "/api/v1/namespaces/d/configmaps?fieldSelector=x",
                ("list", "configmap"),
            ),
            (
                "GET",
                "/api/v1/namespaces/d/configmaps?fieldSelector=x&watch=true&resourceVersion=4",
                ("watch", "configmap"),
            ),
            (
                "PUT",
                "/apis/coordination.k8s.io/v1/namespaces/d/leases/a",
                ("update", "lease"),
            ),
            (
                "POST",
                "/apis/coordination.k8s.io/v1/namespaces/d/leases",
                ("create", "lease"),
            ),
            (
                "DELETE",
                "/apis/coordination.k8s.io/v1/namespaces/d/leases/a",
                ("delete", "lease"),
            ),
            (
                "GET",
                "/apis/discovery.k8s.io/v1/namespaces/d/endpointslices?labelSelector=a&watch=1",
                ("watch", "endpointslice"),
            ),
            (
                "PATCH",
                "/api/v1/namespaces/d/configmaps/x",
                ("patch", "configmap"),
            ),
            ("GET", "/version", ("list", "other")),
        ];
        for (method, uri, expected) in cases {
            let method: Method = method.parse().unwrap();
            let uri: http::Uri = uri.parse().unwrap();
            assert_eq!(describe(&method, &uri), expected, "{method} {uri}");
        }
    }
}
