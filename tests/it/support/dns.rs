//! A minimal DNS server for the tests: UDP on loopback, answering A and AAAA
//! queries from a zone the test changes while it runs, and NXDOMAIN,
//! SERVFAIL or an empty answer on demand. Just enough of RFC 1035 for a
//! stub resolver: one question, echoed back, with answers that point to it
//! by compression; other sections and EDNS are ignored. Names not in the
//! zone get NXDOMAIN.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const NOERROR: u8 = 0;
const SERVFAIL: u8 = 2;
const NXDOMAIN: u8 = 3;

/// What the server answers for one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsAnswer {
    /// The A and AAAA records of the name; empty: NOERROR without records.
    Records(Vec<IpAddr>),
    NxDomain,
    ServFail,
}

#[derive(Debug, Default)]
struct Zone {
    answers: HashMap<String, DnsAnswer>,
    /// Queries received per name (every type).
    queries: HashMap<String, u64>,
}

/// A running server; stops when dropped.
#[derive(Debug)]
pub struct DnsServer {
    pub address: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    task: JoinHandle<()>,
}

impl DnsServer {
    pub async fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind UDP");
        let address = socket.local_addr().unwrap();
        let zone = Arc::new(Mutex::new(Zone::default()));
        let serving = zone.clone();
        let task = tokio::spawn(async move {
            let mut buffer = [0u8; 1500];
            while let Ok((length, peer)) = socket.recv_from(&mut buffer).await {
                let reply = answer(&buffer[..length], &mut serving.lock().unwrap());
                if let Some(reply) = reply {
                    let _ = socket.send_to(&reply, peer).await;
                }
            }
        });
        Self {
            address,
            zone,
            task,
        }
    }

    /// What `name` (without a trailing dot) answers from now on.
    pub fn set(&self, name: &str, answer: DnsAnswer) {
        let mut zone = self.zone.lock().unwrap();
        zone.answers.insert(name.to_ascii_lowercase(), answer);
    }

    /// `set` with records given as text.
    pub fn set_records(&self, name: &str, ips: &[&str]) {
        let ips = ips.iter().map(|ip| ip.parse().expect("an IP")).collect();
        self.set(name, DnsAnswer::Records(ips));
    }

    /// Queries received so far for `name`, A and AAAA together.
    pub fn queries(&self, name: &str) -> u64 {
        let zone = self.zone.lock().unwrap();
        zone.queries.get(name).copied().unwrap_or(0)
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The reply to one query, or None for a packet that is not one.
fn answer(query: &[u8], zone: &mut Zone) -> Option<Vec<u8>> {
    let question_count = u16::from_be_bytes([*query.get(4)?, *query.get(5)?]);
    if question_count != 1 || query[2] & 0x80 != 0 {
        return None;
    }
    // The question: length-prefixed labels up to a zero byte, type, class.
    let mut labels = Vec::new();
    let mut at = 12;
    loop {
        let length = usize::from(*query.get(at)?);
        at += 1;
        if length == 0 {
            break;
        }
        let label = query.get(at..at + length)?;
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        at += length;
    }
    let record_type = u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]);
    let question = query.get(12..at + 4)?;
    let name = labels.join(".");
    *zone.queries.entry(name.clone()).or_default() += 1;

    let (code, ips) = match zone.answers.get(&name) {
        None | Some(DnsAnswer::NxDomain) => (NXDOMAIN, Vec::new()),
        Some(DnsAnswer::ServFail) => (SERVFAIL, Vec::new()),
        Some(DnsAnswer::Records(ips)) => (NOERROR, ips.clone()),
    };
    let records: Vec<Vec<u8>> = ips
        .iter()
        .filter_map(|ip| match (ip, record_type) {
            (IpAddr::V4(v4), TYPE_A) => Some(v4.octets().to_vec()),
            (IpAddr::V6(v6), TYPE_AAAA) => Some(v6.octets().to_vec()),
            _ => None,
        })
        .collect();

    let mut reply = Vec::with_capacity(512);
    reply.extend_from_slice(&query[..2]); // the query's id
    reply.push(0x80 | (query[2] & 0x79) | 0x04); // QR, its opcode and RD, AA
    reply.push(0x80 | code); // RA, the response code
    reply.extend_from_slice(&1u16.to_be_bytes());
    reply.extend_from_slice(&(records.len() as u16).to_be_bytes());
    reply.extend_from_slice(&[0, 0, 0, 0]); // no authority, no additional
    reply.extend_from_slice(question);
    for data in records {
        reply.extend_from_slice(&[0xc0, 12]); // the name: a pointer to the question's
        reply.extend_from_slice(&record_type.to_be_bytes());
        reply.extend_from_slice(&1u16.to_be_bytes()); // class IN
        reply.extend_from_slice(&0u32.to_be_bytes()); // TTL
        reply.extend_from_slice(&(data.len() as u16).to_be_bytes());
        reply.extend_from_slice(&data);
    }
    Some(reply)
}
