//! How the fleet's rollout leader sees every replica's traffic: each
//! replica serves its per-group counters at `GET /api/v1/fleet/readings`
//! (read-only, so no token is needed to read it), and the leader fetches
//! them from the admin address each replica published in its Lease, every
//! rollout tick. A replica that does not answer within [`FETCH_TIMEOUT`] is
//! left out of that tick: its traffic is judged by itself meanwhile (every
//! replica may roll back on its own counters).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::future::join_all;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};

use super::Fleet;
use crate::metrics::{Reading, ReadingWire};

/// How long the leader waits for one replica's readings.
const FETCH_TIMEOUT: Duration = Duration::from_millis(500);

/// Largest readings answer read (a few hundred bytes per group).
const MAX_ANSWER: usize = 1024 * 1024;

/// `GET /api/v1/fleet/readings`: cumulative counters by service and group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Readings {
    pub replica: String,
    pub services: BTreeMap<String, BTreeMap<String, ReadingWire>>,
}

/// One replica's readings by service, then group.
pub(crate) type PeerReadings = BTreeMap<String, BTreeMap<String, Reading>>;

impl Fleet {
    /// The readings of every other live replica that answered, by replica.
    pub(crate) async fn peer_readings(&self) -> BTreeMap<String, PeerReadings> {
        let now = SystemTime::now();
        let peers: Vec<(String, SocketAddr)> = self
            .replicas
            .borrow()
            .values()
            .filter(|replica| replica.name != self.replica && replica.is_live(now))
            .filter_map(|replica| Some((replica.name.clone(), replica.admin_address.parse().ok()?)))
            .collect();
        let answers = join_all(peers.into_iter().map(|(name, address)| async move {
            let fetched = tokio::time::timeout(FETCH_TIMEOUT, fetch(address)).await;
            match fetched {
                Ok(Ok(readings)) => Some((name, readings)),
                Ok(Err(error)) => {
                    tracing::debug!(replica = %name, %address, %error, "readings not fetched");
                    None
                }
                Err(_) => {
                    tracing::debug!(replica = %name, %address, "readings not fetched in time");
                    None
                }
            }
        }))
        .await;
        answers.into_iter().flatten().collect()
    }
}

async fn fetch(address: SocketAddr) -> Result<PeerReadings, String> {
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|error| error.to_string())?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| error.to_string())?;
    let driver = tokio::spawn(connection);
    let request = Request::get("/api/v1/fleet/readings")
        .header(http::header::HOST, address.to_string())
        .body(Empty::<Bytes>::new())
        .map_err(|error| error.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|error| error.to_string())?;
    if response.status() != StatusCode::OK {
        driver.abort();
        return Err(format!("answered {}", response.status()));
    }
    let body = Limited::new(response.into_body(), MAX_ANSWER)
        .collect()
        .await
        .map_err(|error| error.to_string())?
        .to_bytes();
    driver.abort();
    let readings: Readings = serde_json::from_slice(&body).map_err(|error| error.to_string())?;
    Ok(readings
        .services
        .into_iter()
        .map(|(service, groups)| {
            let groups = groups
                .into_iter()
                .filter_map(|(group, wire)| Some((group, wire.reading()?)))
                .collect();
            (service, groups)
        })
        .collect())
}
