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

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::client::conn::{http1, http2};
use tokio::time::Instant;

use super::EndpointStats;
use crate::body::RequestBody;

/// Idle HTTP/1.1 connections kept per endpoint, at most.
const MAX_IDLE_PER_ENDPOINT: usize = 512;

/// Gives an HTTP/1.1 connection back to its endpoint's pool.
#[derive(Debug)]
pub struct Release {
    sender: http1::SendRequest<RequestBody>,
    stats: Arc<EndpointStats>,
    /// The client that opened the connection.
    owner: u64,
}

impl Release {
    pub(crate) fn new(
        sender: http1::SendRequest<RequestBody>,
        stats: Arc<EndpointStats>,
        owner: u64,
    ) -> Self {
        Self {
            sender,
            stats,
            owner,
        }
    }

    /// The response was read to its end: the connection may serve another.
    pub fn reuse(self) {
        self.stats.pool.put(self.sender, self.owner);
    }
}

/// Idle HTTP/1.1 connections of one endpoint.
#[derive(Debug, Default)]
pub struct Pool {
    /// The owning client's id and its idle connections.
    idle: Mutex<(u64, Vec<IdleConnection>)>,
}

/// A pooled HTTP/1.1 connection and when it went idle.
type IdleConnection = (http1::SendRequest<RequestBody>, Instant);

impl Pool {
    fn put(&self, sender: http1::SendRequest<RequestBody>, owner: u64) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let (current, connections) = &mut *idle;
        if *current == owner && connections.len() < MAX_IDLE_PER_ENDPOINT {
            connections.push((sender, Instant::now()));
        }
    }

    /// The most recently used live connection of client `owner`, dropping
    /// stale ones; the first use by another client drops every idle
    /// connection and makes the pool that client's.
    pub(crate) fn take(
        &self,
        idle_timeout: Duration,
        owner: u64,
    ) -> Option<http1::SendRequest<RequestBody>> {
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let (current, connections) = &mut *idle;
        if *current != owner {
            *current = owner;
            connections.clear();
            return None;
        }
        while let Some((sender, since)) = connections.pop() {
            if !sender.is_closed() && now.saturating_duration_since(since) < idle_timeout {
                return Some(sender);
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
