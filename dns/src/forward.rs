//! Everything outside the cluster domain goes to the host's resolvers, as kubeadm's Corefile
//! has CoreDNS do it: `forward . /etc/resolv.conf { max_concurrent 1000 }` behind
//! `cache 30` (the cache is [`crate::cache`]).
//!
//! Start at [`Forwarder::exchange`], CoreDNS's `forward` plugin (`plugin/forward/forward.go`
//! with `plugin/pkg/proxy`): the upstreams in random order (the default `policy random`),
//! each asked once with a 2 s read timeout, round again until 5 s have passed; the query
//! goes over the client's transport (a UDP client's truncated answer is passed on
//! truncated, and the client retries over TCP, as CoreDNS does without `prefer_udp`), with a
//! new ID and the client's flags and EDNS; an answer whose ID or question does not match is
//! dropped and waited past (CoreDNS drops out-of-order answers). Beyond `max_concurrent`
//! forwarded queries in flight a query is REFUSED at once. Not done: CoreDNS's health checks
//! of failed upstreams (it marks an upstream down after two failed `. IN NS` checks and skips
//! it); here a failing upstream is simply asked again in the next round, and the connections
//! are not kept for reuse (each exchange uses a new socket).
//!
//! [`Forwarder::lookup`] is CoreDNS's `upstream.Lookup`: how the kubernetes plugin resolves an
//! ExternalName's target, by running the query through the server's own chain again
//! (metrics, cache, forward), so it is counted and cached as a client's query is.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use rand::seq::SliceRandom;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::Semaphore;

use crate::Error;
use crate::answer::Reply;
use crate::cache::Cache;
use crate::metrics::{DnsMetrics, Exchange, Plugin};

/// CoreDNS's `cache` capacity per kind of answer (256 shards of 39).
pub const DEFAULT_CACHE_SIZE: u64 = 9984;
/// CoreDNS `plugin/pkg/proxy`: how long one upstream has to answer.
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest message read from an upstream.
const MAX_MESSAGE: usize = 65535;

/// The upstream resolvers and how to ask them.
#[derive(Debug, Clone)]
pub struct ForwardConfig {
    /// Upstream servers (UDP and TCP on the same address).
    pub servers: Vec<SocketAddr>,
    /// Answers kept in the cache, of each kind (positive, negative).
    pub cache_size: u64,
    /// Forwarded queries in flight at once before new ones are refused.
    pub max_concurrent: usize,
    /// How long one forwarded query may take in all (CoreDNS: 5 s).
    pub timeout: Duration,
}

impl Default for ForwardConfig {
    fn default() -> ForwardConfig {
        ForwardConfig {
            servers: Vec::new(),
            cache_size: DEFAULT_CACHE_SIZE,
            max_concurrent: 1000,
            timeout: Duration::from_secs(5),
        }
    }
}

/// The nameservers of a `resolv.conf` text (port 53), in order.
pub fn nameservers_from_resolv_conf(text: &str) -> Result<Vec<SocketAddr>, Error> {
    let (config, _) = hickory_resolver::system_conf::parse_resolv_conf(text.as_bytes())
        .map_err(|e| Error::ResolvConf(e.to_string()))?;
    Ok(config
        .name_servers()
        .iter()
        .map(|ns| SocketAddr::new(ns.ip, 53))
        .collect())
}

/// Why a forwarded query has no upstream answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ForwardError {
    /// `max_concurrent` lookups are in flight (the server answers REFUSED).
    Busy,
    /// No upstream answered in time, or none is configured (SERVFAIL).
    Failed,
}

impl ForwardError {
    /// The code the server answers with (CoreDNS's `errorFunc`).
    pub(crate) fn rcode(self) -> ResponseCode {
        match self {
            ForwardError::Busy => ResponseCode::Refused,
            ForwardError::Failed => ResponseCode::ServFail,
        }
    }
}

/// What the client's query carried that the forwarded one repeats, and that keys the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Asker {
    /// The client came over TCP.
    pub(crate) tcp: bool,
    /// The client's address is IPv6 (for the metrics' `family`).
    pub(crate) ipv6: bool,
    /// The client's EDNS payload size, when it sent EDNS.
    pub(crate) edns: Option<u16>,
    /// The EDNS DO bit.
    pub(crate) dnssec_ok: bool,
    /// The CD bit.
    pub(crate) checking_disabled: bool,
    /// The RD bit.
    pub(crate) recursion_desired: bool,
}

impl Default for Asker {
    fn default() -> Asker {
        Asker {
            tcp: false,
            ipv6: false,
            edns: None,
            dnssec_ok: false,
            checking_disabled: false,
            recursion_desired: true,
        }
    }
}

/// Asks the upstream resolvers (see the module docs).
pub(crate) struct Forwarder {
    servers: Vec<SocketAddr>,
    permits: Arc<Semaphore>,
    timeout: Duration,
    cache: Cache,
    metrics: Arc<DnsMetrics>,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("servers", &self.servers)
            .finish()
    }
}

impl Forwarder {
    pub(crate) fn new(config: &ForwardConfig, metrics: Arc<DnsMetrics>) -> Forwarder {
        Forwarder {
            servers: config.servers.clone(),
            permits: Arc::new(Semaphore::new(config.max_concurrent.max(1))),
            timeout: config.timeout,
            cache: Cache::new(
                usize::try_from(config.cache_size).unwrap_or(usize::MAX),
                metrics.clone(),
            ),
            metrics,
        }
    }

    /// The response cache in front of everything (CoreDNS's `cache` plugin).
    pub(crate) fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Whether upstream addresses are configured.
    pub(crate) fn configured(&self) -> bool {
        !self.servers.is_empty()
    }

    /// The forward plugin: `name`/`qtype` asked of the upstreams (see the module docs).
    pub(crate) async fn exchange(
        &self,
        name: &Name,
        qtype: RecordType,
        asker: &Asker,
    ) -> Result<Reply, ForwardError> {
        if self.servers.is_empty() {
            return Err(ForwardError::Failed);
        }
        let Ok(_permit) = self.permits.clone().try_acquire_owned() else {
            self.metrics.max_concurrent_reject();
            return Err(ForwardError::Busy);
        };
        let mut name = name.clone();
        name.set_fqdn(true);
        let mut order = self.servers.clone();
        order.shuffle(&mut rand::rng());
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut i = 0;
        while tokio::time::Instant::now() < deadline {
            let to = order[i % order.len()];
            i += 1;
            let id = rand::random::<u16>();
            let Ok(query) = query_message(id, &name, qtype, asker).to_vec() else {
                return Err(ForwardError::Failed);
            };
            let started = tokio::time::Instant::now();
            let limit = READ_TIMEOUT.min(deadline.saturating_duration_since(started));
            self.metrics.proxy_dial(&to, asker.tcp);
            let attempt = if asker.tcp {
                tcp_exchange(to, &query, id, &name, qtype, limit).await
            } else {
                udp_exchange(to, &query, id, &name, qtype, limit).await
            };
            match attempt {
                Ok(msg) => {
                    let rcode = msg.metadata.response_code;
                    self.metrics
                        .proxy_answer(&to, rcode, started.elapsed().as_secs_f64());
                    return Ok(Reply {
                        rcode,
                        authoritative: msg.metadata.authoritative,
                        truncated: msg.metadata.truncation,
                        answers: msg.answers,
                        authorities: msg.authorities,
                        additionals: msg.additionals,
                    });
                }
                Err(e) => tracing::debug!(upstream = %to, error = %e, "upstream exchange failed"),
            }
        }
        Err(ForwardError::Failed)
    }

    /// CoreDNS's `upstream.Lookup` (see the module docs): `name`/`qtype` through the cache
    /// and the forwarder, counted in the metrics as a query of its own. An error gives the
    /// answer the server writes for it (no records).
    pub(crate) async fn lookup(&self, name: &Name, qtype: RecordType, asker: &Asker) -> Reply {
        let started = tokio::time::Instant::now();
        let lower = name.to_lowercase();
        let (reply, plugin) = match self.cache.get(&lower, qtype, asker) {
            Some(hit) => (hit, Plugin::Chain),
            None => match self.exchange(name, qtype, asker).await {
                Ok(mut reply) => {
                    self.cache.store(&lower, qtype, asker, &mut reply, true);
                    (reply, Plugin::Chain)
                }
                Err(e) => (
                    Reply {
                        rcode: e.rcode(),
                        ..Reply::default()
                    },
                    Plugin::None,
                ),
            },
        };
        let mut query = Message::query();
        query.add_query(Query::query(name.clone(), qtype));
        let request_size = query.to_vec().map_or(0, |v| v.len());
        let response_size = reply.encoded_len(name, qtype);
        self.metrics.record(&Exchange {
            tcp: asker.tcp,
            ipv6: asker.ipv6,
            qtype: Some(qtype),
            rcode: reply.rcode,
            plugin,
            request_size,
            response_size,
            seconds: started.elapsed().as_secs_f64(),
        });
        reply
    }
}

/// The query sent upstream: the client's flags and EDNS with a new ID.
fn query_message(id: u16, name: &Name, qtype: RecordType, asker: &Asker) -> Message {
    let mut msg = Message::query();
    msg.metadata.id = id;
    msg.metadata.recursion_desired = asker.recursion_desired;
    msg.metadata.checking_disabled = asker.checking_disabled;
    msg.add_query(Query::query(name.clone(), qtype));
    if let Some(size) = asker.edns {
        let mut e = Edns::new();
        e.set_max_payload(size.max(512));
        e.set_dnssec_ok(asker.dnssec_ok);
        msg.set_edns(e);
    }
    msg
}

/// Whether `msg` answers query `id` for `name`/`qtype`.
fn answers(msg: &Message, id: u16, name: &Name, qtype: RecordType) -> bool {
    msg.metadata.id == id
        && msg.metadata.message_type == MessageType::Response
        && match msg.queries.as_slice() {
            [q] => q.query_type() == qtype && q.name() == name,
            // An answer without a question (some servers' errors) is taken by its ID.
            [] => true,
            _ => false,
        }
}

#[derive(Debug, thiserror::Error)]
enum ExchangeError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("no answer in time")]
    Timeout,
}

async fn udp_exchange(
    to: SocketAddr,
    query: &[u8],
    id: u16,
    name: &Name,
    qtype: RecordType,
    limit: Duration,
) -> Result<Message, ExchangeError> {
    let local: SocketAddr = if to.is_ipv6() {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(local).await?;
    sock.connect(to).await?;
    sock.send(query).await?;
    let mut buf = vec![0u8; MAX_MESSAGE];
    let wait = async {
        loop {
            let n = sock.recv(&mut buf).await?;
            match Message::from_vec(&buf[..n]) {
                Ok(msg) if answers(&msg, id, name, qtype) => return Ok(msg),
                // Out of order, or not an answer to this query: wait for the right one.
                _ => continue,
            }
        }
    };
    tokio::time::timeout(limit, wait)
        .await
        .map_err(|_| ExchangeError::Timeout)?
}

async fn tcp_exchange(
    to: SocketAddr,
    query: &[u8],
    id: u16,
    name: &Name,
    qtype: RecordType,
    limit: Duration,
) -> Result<Message, ExchangeError> {
    let exchange = async {
        let mut conn = TcpStream::connect(to).await?;
        let len = u16::try_from(query.len()).map_err(std::io::Error::other)?;
        let mut frame = Vec::with_capacity(query.len() + 2);
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(query);
        conn.write_all(&frame).await?;
        loop {
            let len = conn.read_u16().await?;
            let mut buf = vec![0u8; usize::from(len)];
            conn.read_exact(&mut buf).await?;
            match Message::from_vec(&buf) {
                Ok(msg) if answers(&msg, id, name, qtype) => return Ok(msg),
                _ => continue,
            }
        }
    };
    tokio::time::timeout(limit, exchange)
        .await
        .map_err(|_| ExchangeError::Timeout)?
}
