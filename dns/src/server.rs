//! The sockets: one UDP socket and one TCP listener on the same address, answering with
//! [`crate::answer`] and the [`crate::forward`]er.
//!
//! Bounds, so that no client can grow the server: at most `max_in_flight` queries are being
//! answered at once (beyond that a query is REFUSED at once, as CoreDNS's `max_concurrent`
//! does); a UDP datagram is read into a 4 KiB buffer (a longer one is cut and answered
//! FORMERR); TCP connections go through [`accept::Acceptor`] (a cap, the idlest closed at the
//! cap), each answered one query at a time with a timeout on every read and write (CoreDNS:
//! 10 s idle). Messages are parsed and written with `hickory-proto`/`hickory-server`:
//! malformed ones get FORMERR when their header can be read and are dropped otherwise (as
//! `hickory-server` does); UDP answers larger than 512 bytes (or the client's EDNS size) are
//! cut with the TC bit, so the client retries over TCP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Header, Message, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncoder};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::answer::{self, Outcome, Reply};
use crate::forward::{Asker, ForwardConfig, Forwarder};
use crate::metrics::{DnsMetrics, Exchange, Plugin};
use crate::records::Records;

/// The largest UDP datagram read, and the largest EDNS payload answered.
const MAX_UDP: u16 = 4096;
/// Without EDNS a UDP answer must fit in 512 bytes (RFC 1035 section 4.2.1).
const PLAIN_UDP: u16 = 512;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where names outside the cluster domain go.
    pub forward: ForwardConfig,
    /// Queries answered at once; more are REFUSED.
    pub max_in_flight: usize,
    /// TCP connections open at once.
    pub max_tcp_connections: usize,
    /// How long a TCP client may take to send a query or read an answer (CoreDNS: 10 s).
    pub tcp_timeout: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            forward: ForwardConfig::default(),
            max_in_flight: 1000,
            max_tcp_connections: 256,
            tcp_timeout: Duration::from_secs(10),
        }
    }
}

/// What answering a query learnt, for its metrics.
struct Note {
    qtype: Option<hickory_proto::rr::RecordType>,
    plugin: Plugin,
}

/// The DNS server (see the module docs).
#[derive(Debug)]
pub struct Server {
    metrics: Arc<DnsMetrics>,
    records: Arc<Records>,
    forwarder: Forwarder,
    permits: Arc<Semaphore>,
    config: Config,
}

/// Binds the UDP socket and TCP listener for `addr` (port 0: the same ephemeral port for
/// both).
pub async fn bind(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), Error> {
    let io = |what: &str| {
        let what = format!("{what} {addr}");
        move |source| Error::Io { what, source }
    };
    let tcp = TcpListener::bind(addr).await.map_err(io("binding TCP"))?;
    let bound = tcp.local_addr().map_err(io("reading the address of"))?;
    let udp = UdpSocket::bind(bound).await.map_err(io("binding UDP"))?;
    Ok((udp, tcp))
}

impl Server {
    /// A server answering from `records`.
    pub fn new(records: Arc<Records>, config: Config) -> Result<Arc<Server>, Error> {
        let metrics = Arc::new(DnsMetrics::new());
        Ok(Arc::new(Server {
            forwarder: Forwarder::new(&config.forward, metrics.clone()),
            metrics,
            permits: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
            records,
            config,
        }))
    }

    /// The records it answers from.
    pub fn records(&self) -> &Arc<Records> {
        &self.records
    }

    /// Serves `udp` and `tcp` until `shutdown`.
    pub async fn run(
        self: Arc<Self>,
        udp: UdpSocket,
        tcp: TcpListener,
        shutdown: CancellationToken,
    ) {
        if !self.forwarder.configured() {
            tracing::warn!("no upstream resolvers: names outside the cluster domain get SERVFAIL");
        }
        tokio::join!(
            self.clone().serve_udp(udp, shutdown.clone()),
            self.serve_tcp(tcp, shutdown),
        );
    }

    async fn serve_udp(self: Arc<Self>, udp: UdpSocket, shutdown: CancellationToken) {
        let udp = Arc::new(udp);
        let mut buf = vec![0u8; usize::from(MAX_UDP)];
        loop {
            let (n, src) = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = udp.recv_from(&mut buf) => match r {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::debug!(error = %e, "receiving a DNS datagram");
                        continue;
                    }
                },
            };
            if src.port() == 0 {
                continue;
            }
            let Ok(permit) = self.permits.clone().try_acquire_owned() else {
                if let Some(resp) = refuse(&buf[..n]) {
                    let _ = udp.try_send_to(&resp, src);
                }
                continue;
            };
            let bytes = buf[..n].to_vec();
            let server = self.clone();
            let udp = udp.clone();
            tokio::spawn(async move {
                let _permit = permit;
                if let Some(resp) = server.respond(bytes, src, Protocol::Udp).await
                    && let Err(e) = udp.send_to(&resp, src).await
                {
                    tracing::debug!(error = %e, %src, "sending a DNS answer");
                }
            });
        }
    }

    async fn serve_tcp(self: Arc<Self>, tcp: TcpListener, shutdown: CancellationToken) {
        let mut acceptor = accept::Acceptor::new(tcp, self.config.max_tcp_connections);
        loop {
            let (conn, peer) = tokio::select! {
                _ = shutdown.cancelled() => return,
                c = acceptor.accept() => c,
            };
            let server = self.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let evicted = conn.evicted();
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = evicted => {}
                    _ = server.tcp_connection(conn, peer) => {}
                }
            });
        }
    }

    /// One TCP connection: length-prefixed queries (RFC 1035 section 4.2.2), one at a time.
    async fn tcp_connection(
        &self,
        mut conn: accept::Tracked<tokio::net::TcpStream>,
        peer: SocketAddr,
    ) {
        let limit = self.config.tcp_timeout;
        loop {
            let Ok(Ok(len)) = tokio::time::timeout(limit, conn.read_u16()).await else {
                return;
            };
            let mut msg = vec![0u8; usize::from(len)];
            let Ok(Ok(_)) = tokio::time::timeout(limit, conn.read_exact(&mut msg)).await else {
                return;
            };
            let resp = match self.permits.clone().try_acquire_owned() {
                Ok(_permit) => self.respond(msg, peer, Protocol::Tcp).await,
                Err(_) => refuse(&msg),
            };
            let Some(resp) = resp else {
                // Not even a header: nothing sensible to say on this connection.
                return;
            };
            let Ok(len) = u16::try_from(resp.len()) else {
                return;
            };
            let mut frame = Vec::with_capacity(resp.len() + 2);
            frame.extend_from_slice(&len.to_be_bytes());
            frame.extend_from_slice(&resp);
            let Ok(Ok(())) = tokio::time::timeout(limit, conn.write_all(&frame)).await else {
                return;
            };
        }
    }

    /// The answer to one message, encoded; `None` when nothing is to be sent back. Counted
    /// in [`Server::metrics`].
    pub(crate) async fn respond(
        &self,
        bytes: Vec<u8>,
        src: SocketAddr,
        protocol: Protocol,
    ) -> Option<Vec<u8>> {
        let started = tokio::time::Instant::now();
        let request_size = bytes.len();
        let mut note = Note {
            qtype: None,
            plugin: Plugin::None,
        };
        let resp = self.answer_message(bytes, src, protocol, &mut note).await;
        if let Some(r) = &resp {
            let rcode = read_header(r).map_or(ResponseCode::ServFail, |h| h.metadata.response_code);
            self.metrics.record(&Exchange {
                tcp: protocol == Protocol::Tcp,
                ipv6: src.is_ipv6(),
                qtype: note.qtype,
                rcode,
                plugin: note.plugin,
                request_size,
                response_size: r.len(),
                seconds: started.elapsed().as_secs_f64(),
            });
        }
        resp
    }

    /// The metrics of this server's answers.
    pub fn metrics(&self) -> &Arc<DnsMetrics> {
        &self.metrics
    }

    async fn answer_message(
        &self,
        bytes: Vec<u8>,
        src: SocketAddr,
        protocol: Protocol,
        note: &mut Note,
    ) -> Option<Vec<u8>> {
        let header = read_header(&bytes)?;
        if header.metadata.message_type == MessageType::Response {
            // Never answer answers (reflection loops).
            return None;
        }
        let request = match Request::from_bytes(bytes, src, protocol) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, %src, "malformed DNS message");
                return error_only(&header, ResponseCode::FormErr);
            }
        };
        if request.metadata.op_code != OpCode::Query {
            return error_only(&header, ResponseCode::NotImp);
        }
        let queries = request.queries.queries();
        let [query] = queries else {
            return error_only(&header, ResponseCode::FormErr);
        };
        let qname = query.original().name().clone();
        let qtype = query.query_type();
        note.qtype = Some(qtype);
        let asker = Asker {
            tcp: protocol == Protocol::Tcp,
            ipv6: src.is_ipv6(),
            edns: request.edns.as_ref().map(Edns::max_payload),
            dnssec_ok: request.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok),
            checking_disabled: request.metadata.checking_disabled,
            recursion_desired: request.metadata.recursion_desired,
        };
        // The plugin chain of kubeadm's Corefile: cache, then kubernetes, then forward.
        let lower = qname.to_lowercase();
        let cache = self.forwarder.cache();
        let reply = match cache.get(&lower, qtype, &asker) {
            Some(hit) => {
                note.plugin = Plugin::Chain;
                hit
            }
            None => {
                let snap = self.records.snapshot();
                let written =
                    match answer::answer(&snap, &self.forwarder, &qname, qtype, &asker).await {
                        Outcome::Answer(reply) => Ok(reply),
                        Outcome::Forward => self.forwarder.exchange(&qname, qtype, &asker).await,
                    };
                match written {
                    Ok(mut reply) => {
                        note.plugin = Plugin::Chain;
                        // `disable success|denial <cluster domain>`: cluster answers pass
                        // through the cache without being kept.
                        let keep = !snap.zone.zone_of(&lower);
                        cache.store(&lower, qtype, &asker, &mut reply, keep);
                        reply
                    }
                    // Written by the server itself, past the cache (CoreDNS's `errorFunc`).
                    Err(e) => Reply {
                        rcode: e.rcode(),
                        ..Reply::default()
                    },
                }
            }
        };
        let edns = request.edns.as_ref().map(|req| {
            let mut e = Edns::new();
            e.set_max_payload(req.max_payload().clamp(PLAIN_UDP, MAX_UDP));
            e
        });
        let max_size = match (protocol, &edns) {
            (Protocol::Udp, Some(e)) => e.max_payload(),
            (Protocol::Udp, None) => PLAIN_UDP,
            _ => u16::MAX,
        };
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = reply.authoritative;
        metadata.truncation = reply.truncated;
        metadata.recursion_available = true;
        metadata.response_code = reply.rcode;
        let response = MessageResponseBuilder::new(&request.queries, edns.as_ref()).build(
            metadata,
            reply.answers.iter(),
            reply.authorities.iter(),
            std::iter::empty(),
            reply.additionals.iter(),
        );
        let mut out = Vec::with_capacity(512);
        let mut encoder = BinEncoder::new(&mut out);
        encoder.set_max_size(max_size);
        match response.destructive_emit(&mut encoder) {
            Ok(_) => Some(out),
            Err(e) => {
                tracing::warn!(error = %e, name = %qname, "encoding a DNS answer");
                error_only(&header, ResponseCode::ServFail)
            }
        }
    }
}

fn read_header(bytes: &[u8]) -> Option<Header> {
    Header::read(&mut BinDecoder::new(bytes)).ok()
}

/// A header-only answer with `rcode` to the message whose header is `header`.
fn error_only(header: &Header, rcode: ResponseCode) -> Option<Vec<u8>> {
    let mut msg = Message::error_msg(header.metadata.id, header.metadata.op_code, rcode);
    msg.metadata.recursion_desired = header.metadata.recursion_desired;
    msg.metadata.recursion_available = true;
    msg.to_vec().ok()
}

/// REFUSED for a message that came while `max_in_flight` queries are being answered.
fn refuse(bytes: &[u8]) -> Option<Vec<u8>> {
    let header = read_header(bytes)?;
    if header.metadata.message_type == MessageType::Response {
        return None;
    }
    error_only(&header, ResponseCode::Refused)
}
