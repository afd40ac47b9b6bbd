//! Graceful shutdown: a signal everyone can watch, and a drain that waits for
//! everything holding a [`DrainToken`] (client connections, upgrade tunnels)
//! to finish, up to a grace period.
//!
//! The order on SIGTERM or SIGINT: listeners stop accepting, `/ready` turns
//! 503, open connections finish their in-flight requests (HTTP/1.1 closes
//! after the current response, HTTP/2 sends GOAWAY), then the process exits 0.
//! Whatever is still running when the grace period ends is cut.

use std::time::Duration;

use tokio::sync::{mpsc, watch};

/// Owned by the app; triggers shutdown and waits for the drain.
#[derive(Debug)]
pub struct Shutdown {
    signal: watch::Sender<bool>,
    token: DrainToken,
    drained: mpsc::Receiver<()>,
}

/// Held by work that shutdown must wait for. Nothing is ever sent on it: the
/// drain is over when every clone has been dropped.
#[derive(Debug, Clone)]
pub struct DrainToken(#[allow(dead_code)] mpsc::Sender<()>);

/// A [`DrainToken`] that shutdown does not wait for: held by what hands out
/// tokens for as long as it lives (an embedding program's
/// [`crate::MakeProxy`]), so only the work it starts holds real ones.
#[derive(Debug, Clone)]
pub struct WeakDrainToken(mpsc::WeakSender<()>);

/// A cheap handle to learn that shutdown has begun.
#[derive(Debug, Clone)]
pub struct ShutdownSignal(watch::Receiver<bool>);

impl Shutdown {
    pub fn new() -> Self {
        let (signal, _) = watch::channel(false);
        let (token, drained) = mpsc::channel(1);
        Self {
            signal,
            token: DrainToken(token),
            drained,
        }
    }

    pub fn signal(&self) -> ShutdownSignal {
        ShutdownSignal(self.signal.subscribe())
    }

    pub fn token(&self) -> DrainToken {
        self.token.clone()
    }

    /// Starts shutdown; idempotent.
    pub fn trigger(&self) {
        self.signal.send_replace(true);
    }

    /// Triggers shutdown and waits until every token is gone or `grace` has
    /// passed. True when everything finished in time.
    pub async fn drain(self, grace: Duration) -> bool {
        self.trigger();
        let Self {
            token, mut drained, ..
        } = self;
        drop(token);
        tokio::time::timeout(grace, drained.recv()).await.is_ok()
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl DrainToken {
    pub fn downgrade(&self) -> WeakDrainToken {
        WeakDrainToken(self.0.downgrade())
    }
}

impl WeakDrainToken {
    /// A token shutdown waits for, or `None` once the drain is over.
    pub fn upgrade(&self) -> Option<DrainToken> {
        self.0.upgrade().map(DrainToken)
    }
}

impl ShutdownSignal {
    /// Resolves once shutdown has begun (at once if it already has).
    pub async fn triggered(&mut self) {
        // `changed` rather than `wait_for`: its future is 40 bytes smaller,
        // and every idle HTTP/1.1 connection holds one. An error means the
        // Shutdown is gone, which is a shutdown too.
        while !*self.0.borrow_and_update() {
            if self.0.changed().await.is_err() {
                return;
            }
        }
    }

    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }
}

/// Waits for SIGTERM or SIGINT and names the one received.
pub async fn signal_received() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
        let mut interrupt = signal(SignalKind::interrupt()).expect("SIGINT handler installs");
        tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drain_waits_for_tokens() {
        let shutdown = Shutdown::new();
        let token = shutdown.token();
        let mut signal = shutdown.signal();
        let holder = tokio::spawn(async move {
            signal.triggered().await;
            drop(token);
        });
        assert!(shutdown.drain(Duration::from_secs(5)).await);
        holder.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn drain_gives_up_after_the_grace_period() {
        let shutdown = Shutdown::new();
        let _stuck = shutdown.token();
        assert!(!shutdown.drain(Duration::from_secs(10)).await);
    }
}
