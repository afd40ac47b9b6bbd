//! Upgrade passthrough (WebSocket and other HTTP/1.1 protocol switches).
//!
//! When a backend answers an upgrade request with 101, the client's and the
//! backend's connections are both handed over by hyper and spliced together
//! byte for byte until either side closes. The request's in-flight guard and
//! a drain token live as long as the tunnel, so open tunnels count as load and
//! graceful shutdown waits for them (up to the grace period).

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use crate::endpoint::InFlight;
use crate::shutdown::DrainToken;

pub(super) fn spawn_tunnel(
    client: OnUpgrade,
    upstream: OnUpgrade,
    in_flight: InFlight,
    drain: DrainToken,
) {
    tokio::spawn(async move {
        let _in_flight = in_flight;
        let _drain = drain;
        let (client, upstream) = match tokio::try_join!(client, upstream) {
            Ok(pair) => pair,
            Err(error) => {
                tracing::debug!(%error, "upgrade did not complete");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut upstream = TokioIo::new(upstream);
        match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
            Ok((sent, received)) => tracing::debug!(sent, received, "tunnel closed"),
            Err(error) => tracing::debug!(%error, "tunnel ended with an error"),
        }
    });
}
