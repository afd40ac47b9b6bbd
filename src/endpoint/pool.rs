//! The connections kept open to one endpoint: idle HTTP/1.1 connections in a
//! [`Pool`] and the one multiplexed HTTP/2 connection in an [`H2Slot`].
//!
//! They live in the endpoint's `EndpointStats`, so a reload that keeps the
//! endpoint keeps its connections. Each belongs to the client that opened it
//! (its id): the first use by another client (a service rebuilt with other
//! TLS settings) drops the old one's, so a tightened setting applies at once.
//! Opening connections and sending on them is `client`'s job; this module
//! only stores them, with a per-endpoint lock held to push or pop, never
//! across an await.

use std::sync::Mutex;
use std::time::Duration;

use hyper::client::conn::http2;
use tokio::time::Instant;

use crate::body::RequestBody;
use crate::http1::upstream::Connection;

/// Idle HTTP/1.1 connections kept per endpoint, at most.
const MAX_IDLE_PER_ENDPOINT: usize = 512;

/// Idle HTTP/1.1 connections of one endpoint.
#[derive(Debug, Default)]
pub struct Pool {
    /// The owning client's id and its idle connections.
    idle: Mutex<(u64, Vec<IdleConnection>)>,
}

/// A pooled HTTP/1.1 connection and when it went idle.
type IdleConnection = (Connection, Instant);

impl Pool {
    /// Keeps `connection`, whose exchange ended cleanly at `now`, for client
    /// `owner`.
    pub(crate) fn put(&self, connection: Connection, owner: u64, now: Instant) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let (current, connections) = &mut *idle;
        if *current == owner && connections.len() < MAX_IDLE_PER_ENDPOINT {
            connections.push((connection, now));
        }
    }

    /// The most recently used connection of client `owner` idle for less
    /// than `idle_timeout` at `now`, dropping older ones; the first use by another
    /// client drops every idle connection and makes the pool that client's.
    /// Whether the endpoint closed it meanwhile is for the caller to check
    /// (`Connection::is_usable`), outside this lock.
    pub(crate) fn take(
        &self,
        idle_timeout: Duration,
        owner: u64,
        now: Instant,
    ) -> Option<Connection> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let (current, connections) = &mut *idle;
        if *current != owner {
            *current = owner;
            connections.clear();
            return None;
        }
        while let Some((connection, since)) = connections.pop() {
            if now.saturating_duration_since(since) < idle_timeout {
                return Some(connection);
            }
        }
        None
    }

    /// Idle connections now in the pool.
    pub fn idle(&self) -> usize {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).1.len()
    }
}

/// The HTTP/2 connection of one endpoint; empty until first used.
#[derive(Debug, Default)]
pub struct H2Slot {
    // Held only to clone or replace the sender, never across an await; the
    // sender with the id of the client that opened it.
    sender: Mutex<Option<(u64, http2::SendRequest<RequestBody>)>>,
    /// Serializes connection attempts so a burst opens one connection, not many.
    pub(crate) connecting: tokio::sync::Mutex<()>,
}

impl H2Slot {
    /// The open connection of client `owner`, if there is one.
    pub(crate) fn ready_sender(&self, owner: u64) -> Option<http2::SendRequest<RequestBody>> {
        let guard = self.sender.lock().unwrap_or_else(|p| p.into_inner());
        guard
            .as_ref()
            .filter(|(opened_by, sender)| *opened_by == owner && !sender.is_closed())
            .map(|(_, sender)| sender.clone())
    }

    /// Makes `sender`, just opened by client `owner`, the endpoint's connection.
    pub(crate) fn store(&self, owner: u64, sender: http2::SendRequest<RequestBody>) {
        *self.sender.lock().unwrap_or_else(|p| p.into_inner()) = Some((owner, sender));
    }
}
