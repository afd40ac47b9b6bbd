//! The access log: one JSON line per request on stdout, written when the
//! response has been sent to its end (or the client went away), so the
//! byte counts and the duration cover the whole exchange, as nginx's do.
//!
//! Off by default (`access_log: { enabled: true }` turns it on, and a reload
//! can flip it). When off, a request pays one branch. When on, the proxy
//! fills a [`Trace`] as it forwards (group, endpoint, tries, request id, body
//! bytes) and the response body carries the [`Entry`]; the finished line
//! goes through a bounded channel to one writer task, so no request waits on
//! stdout: when the writer falls behind, lines are dropped and counted in
//! `luas_access_log_dropped_total` rather than slowing traffic down.
//!
//! At shutdown, [`AccessLog::flush`] waits (briefly) for the lines still
//! queued. This module formats and writes; what a request did is `proxy`'s.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderValue, Method, StatusCode};
use prometheus::IntCounter;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Lines waiting for the writer, at most; beyond it lines are dropped.
const QUEUE: usize = 16 * 1024;

/// The sending side, shared by every request; the writer is started by
/// [`AccessLog::spawn_writer`].
#[derive(Debug)]
pub(crate) struct AccessLog {
    sender: mpsc::Sender<String>,
    receiver: Mutex<Option<mpsc::Receiver<String>>>,
    dropped: IntCounter,
    /// Lines queued and lines written, so shutdown can wait for the rest.
    queued: AtomicU64,
    written: Arc<AtomicU64>,
}

impl AccessLog {
    pub(crate) fn new(dropped: IntCounter) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        Self {
            sender,
            receiver: Mutex::new(Some(receiver)),
            dropped,
            queued: AtomicU64::new(0),
            written: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Starts the task that writes lines to stdout; None if already started.
    pub(crate) fn spawn_writer(&self) -> Option<JoinHandle<()>> {
        let mut receiver = self
            .receiver
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()?;
        let written = self.written.clone();
        Some(tokio::spawn(async move {
            let mut batch = Vec::with_capacity(64);
            while receiver.recv_many(&mut batch, 256).await > 0 {
                let lines = batch.len() as u64;
                let mut text = String::with_capacity(batch.iter().map(|line| line.len()).sum());
                for line in batch.drain(..) {
                    text.push_str(&line);
                }
                // One write per batch; a blocking thread keeps a slow
                // stdout (a full pipe) off the runtime serving requests.
                let written_now = tokio::task::spawn_blocking(move || {
                    let mut stdout = std::io::stdout().lock();
                    stdout
                        .write_all(text.as_bytes())
                        .and_then(|()| stdout.flush())
                })
                .await;
                if !matches!(written_now, Ok(Ok(()))) {
                    // stdout is gone (closed pipe): nothing useful to do.
                    return;
                }
                written.fetch_add(lines, Ordering::Release);
            }
        }))
    }

    /// Queues a finished entry's line.
    fn write(&self, entry: &Entry, status: StatusCode, bytes_out: u64) {
        let line = entry.line(status, bytes_out);
        match self.sender.try_send(line) {
            Ok(()) => {
                self.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => self.dropped.inc(),
        }
    }

    /// Waits, at most `limit`, until every queued line has been written;
    /// called at the end of a drain so the last requests' lines are not lost.
    /// True when everything was written.
    pub(crate) async fn flush(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            let queued = self.queued.load(Ordering::Relaxed);
            if self.written.load(Ordering::Acquire) >= queued {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// What `proxy` learns while forwarding, for the log line.
#[derive(Debug, Default)]
pub(crate) struct Trace {
    pub group: Option<String>,
    pub endpoint: Option<SocketAddr>,
    /// Endpoints tried, the first included.
    pub tries: u32,
    pub request_id: Option<HeaderValue>,
    /// Request body bytes received from the client, counted as they stream.
    pub bytes_in: Arc<AtomicU64>,
}

/// A request's line, minus what only the end of the response knows.
#[derive(Debug)]
pub(crate) struct Entry {
    pub log: Arc<AccessLog>,
    pub time: SystemTime,
    pub started: Instant,
    pub client: SocketAddr,
    pub client_identity: Option<String>,
    pub listener: String,
    pub route: Option<String>,
    pub service: Option<String>,
    pub method: Method,
    pub authority: Option<String>,
    pub path: String,
    pub version: http::Version,
    pub trace: Trace,
    /// The `grpc-status` of a gRPC response, from its headers or trailers.
    pub grpc_status: Option<u32>,
}

#[derive(Serialize)]
struct Line<'a> {
    time: String,
    client: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_identity: Option<&'a str>,
    listener: &'a str,
    route: Option<&'a str>,
    method: &'a str,
    authority: Option<&'a str>,
    path: &'a str,
    protocol: &'a str,
    status: u16,
    bytes_in: u64,
    bytes_out: u64,
    duration_ms: f64,
    service: Option<&'a str>,
    group: Option<&'a str>,
    endpoint: Option<String>,
    retries: u32,
    request_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    grpc_status: Option<u32>,
}

impl Entry {
    /// The request is over: queue its line.
    pub(crate) fn finish(self, status: StatusCode, bytes_out: u64) {
        self.log.write(&self, status, bytes_out);
    }

    fn line(&self, status: StatusCode, bytes_out: u64) -> String {
        let line = Line {
            time: rfc3339(self.time),
            client: self.client.to_string(),
            client_identity: self.client_identity.as_deref(),
            listener: &self.listener,
            route: self.route.as_deref(),
            method: self.method.as_str(),
            authority: self.authority.as_deref(),
            path: &self.path,
            protocol: match self.version {
                http::Version::HTTP_2 => "HTTP/2",
                http::Version::HTTP_10 => "HTTP/1.0",
                _ => "HTTP/1.1",
            },
            status: status.as_u16(),
            bytes_in: self.trace.bytes_in.load(Ordering::Relaxed),
            bytes_out,
            duration_ms: (self.started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
            service: self.service.as_deref(),
            group: self.trace.group.as_deref(),
            endpoint: self.trace.endpoint.map(|address| address.to_string()),
            retries: self.trace.tries.saturating_sub(1),
            request_id: self
                .trace
                .request_id
                .as_ref()
                .and_then(|id| id.to_str().ok()),
            grpc_status: self.grpc_status,
        };
        let mut text = serde_json::to_string(&line).expect("the line serializes");
        text.push('\n');
        text
    }
}

/// `2026-11-27T07:14:55.123Z`: UTC, milliseconds.
fn rfc3339(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let seconds = since_epoch.as_secs();
    let (year, month, day) = civil_from_days((seconds / 86_400) as i64);
    let of_day = seconds % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        since_epoch.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_with_milliseconds() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let time = UNIX_EPOCH + Duration::from_millis(1_795_763_695_123);
        assert_eq!(rfc3339(time), "2026-11-27T07:14:55.123Z");
        // A leap day.
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }
}
