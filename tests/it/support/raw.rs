//! A raw HTTP/1.1 client connection for tests that need the bytes on the
//! wire under their control: requests written as given (split, pipelined,
//! malformed), responses parsed with httparse.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// One response read off a raw connection.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// A raw connection (plain TCP, or any stream such as TLS) with what it
/// read and has not used yet.
pub struct Connection<S = TcpStream> {
    pub stream: S,
    pending: Vec<u8>,
}

impl Connection<TcpStream> {
    pub async fn open(address: SocketAddr) -> Self {
        Self::over(TcpStream::connect(address).await.unwrap())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    pub fn over(stream: S) -> Self {
        Self {
            stream,
            pending: Vec::new(),
        }
    }

    /// Writes `bytes` and flushes them (for TLS: as records of their own).
    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
        self.stream.flush().await.unwrap();
    }

    /// Reads more within 5 s; false at the end of the stream.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        let read = tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut chunk))
            .await
            .expect("an answer within 5 s")
            .unwrap_or(0);
        self.pending.extend_from_slice(&chunk[..read]);
        read > 0
    }

    /// The next response; `head_request` for the answer to a HEAD.
    pub async fn response(&mut self, head_request: bool) -> Raw {
        let (length, status, headers) = loop {
            let mut fields = [httparse::EMPTY_HEADER; 32];
            let mut parsed = httparse::Response::new(&mut fields);
            if let httparse::Status::Complete(length) = parsed.parse(&self.pending).unwrap() {
                let headers = parsed
                    .headers
                    .iter()
                    .map(|field| {
                        (
                            field.name.to_owned(),
                            String::from_utf8_lossy(field.value).into_owned(),
                        )
                    })
                    .collect::<Vec<_>>();
                break (length, parsed.code.unwrap(), headers);
            }
            assert!(
                self.fill().await,
                "closed before a whole head: {:?}",
                self.pending
            );
        };
        self.pending.drain(..length);
        let mut raw = Raw {
            status,
            headers,
            body: Vec::new(),
        };
        if head_request || status == 100 || status == 204 || status == 304 {
            return raw;
        }
        if let Some(length) = raw.header("content-length") {
            let length: usize = length.parse().unwrap();
            while self.pending.len() < length {
                assert!(self.fill().await, "closed inside a body");
            }
            raw.body = self.pending.drain(..length).collect();
        } else if raw.header("transfer-encoding").is_some() {
            loop {
                match luas::http1::chunked::decode_all(&self.pending, 4096).unwrap() {
                    Some((body, _trailers, used)) => {
                        raw.body = body;
                        self.pending.drain(..used);
                        break;
                    }
                    None => assert!(self.fill().await, "closed inside a chunked body"),
                }
            }
        } else {
            while self.fill().await {}
            raw.body = std::mem::take(&mut self.pending);
        }
        raw
    }

    /// Waits for the server to close (at most `limit`); true if it did.
    pub async fn closed_within(&mut self, limit: Duration) -> bool {
        let mut chunk = [0u8; 1024];
        matches!(
            tokio::time::timeout(limit, self.stream.read(&mut chunk)).await,
            Ok(Ok(0) | Err(_))
        )
    }
}
