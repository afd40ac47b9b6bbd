//! Upgrade passthrough (WebSocket and other HTTP/1.1 protocol switches).
//!
//! When a backend answers an upgrade request with 101, the client's and the
//! backend's connections are both handed over (the client's by luas's
//! HTTP/1.1 server or by hyper, the backend's by the HTTP/1.1 codec that
//! read the 101) and spliced
//! together byte for byte until either side closes. The request's
//! in-flight guard and a drain token live as long as the tunnel, so open
//! tunnels count as load and graceful shutdown waits for them (up to the
//! grace period).

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::endpoint::InFlight;
use crate::http1;
use crate::http1::upstream::Upgraded;
use crate::shutdown::DrainToken;

/// The client's side of an upgrade, from whichever server read its request.
pub(super) enum ClientUpgrade {
    Hyper(OnUpgrade),
    Http1(http1::io::OnUpgrade),
}

impl ClientUpgrade {
    pub(super) fn take(extensions: &mut http::Extensions) -> Option<Self> {
        if let Some(own) = extensions.remove::<http1::io::OnUpgrade>() {
            return Some(Self::Http1(own));
        }
        extensions.remove::<OnUpgrade>().map(Self::Hyper)
    }
}

pub(super) fn spawn_tunnel(
    client: ClientUpgrade,
    upstream: Upgraded,
    in_flight: InFlight,
    drain: DrainToken,
) {
    tokio::spawn(async move {
        let _in_flight = in_flight;
        let _drain = drain;
        match client {
            ClientUpgrade::Hyper(client) => {
                splice(async { client.await.map(TokioIo::new) }, upstream).await
            }
            ClientUpgrade::Http1(client) => splice(client.upgraded(), upstream).await,
        }
    });
}

/// Waits for the client's handover, then copies bytes both ways until
/// either side closes.
async fn splice<C, E>(
    client: impl std::future::Future<Output = Result<C, E>>,
    mut upstream: Upgraded,
) where
    C: AsyncRead + AsyncWrite + Unpin,
    E: std::fmt::Display,
{
    let mut client = match client.await {
        Ok(client) => client,
        Err(error) => return tracing::debug!(%error, "the client's upgrade did not complete"),
    };
    match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        Ok((sent, received)) => tracing::debug!(sent, received, "tunnel closed"),
        Err(error) => tracing::debug!(%error, "tunnel ended with an error"),
    }
}
