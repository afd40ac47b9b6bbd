//! The running configuration: one immutable [`Snapshot`] behind one `ArcSwap`.
//!
//! Readers (every request) take the current snapshot with one atomic load and
//! an `Arc` clone; they never wait and never see half an update. Every writer
//! (file reload, SIGHUP, admin API, rollout driver, DNS discovery) goes
//! through the one writer lock in [`State`]: it builds and validates the whole
//! next snapshot, then stores it atomically. Requests already running finish
//! on the snapshot they started with.
//!
//! The effective config is the file config with the runtime [`Overrides`]
//! (weights set through the API) applied on top, and with the addresses
//! discovered for each `dns` group filled in; overrides are saved to the
//! state file after every change, so a rollback survives a restart.
//! Discovered addresses are not saved: they are looked up again at start.
//!
//! Long-lived per-endpoint statistics and per-service connection pools live
//! outside the snapshot and are carried over by key (see `build`), so a
//! reload loses no latency history and no pooled connection. This module does
//! not read the config file or watch it; callers hand it a validated `Config`.
//! Nor does it own the traffic history or the access log: the app does.
//!
//! - `snapshot`: the immutable types requests read;
//! - `writer`: [`State`], the one writer, and its inputs;
//! - `build`: a snapshot from a config, carrying statistics over by key;
//! - `overrides`: runtime changes, the state file, the rollback policy;
//! - `tls`: loading services' upstream TLS files;
//! - `restart`: which config changes need a restart.

mod build;
pub(crate) mod overrides;
mod restart;
mod snapshot;
mod tls;
mod writer;

pub(crate) use overrides::{
    FleetStamp, Overrides, RolloutRecord, RolloutStatus, ServiceOverride, ServiceView,
};
pub(crate) use snapshot::{Group, Listener, Service, Snapshot};
pub(crate) use tls::TlsLoadError;
pub(crate) use tls::UpstreamTlsSet;
pub(crate) use writer::{Source, State, UpdateError};
