//! The server's Prometheus metrics under CoreDNS's names (its `metrics` plugin,
//! `plugin/metrics/vars`), so the dashboards and alerts written for a cluster's CoreDNS read
//! them unchanged: `coredns_dns_requests_total{server,zone,view,proto,family,type}`,
//! `coredns_dns_responses_total{server,zone,view,rcode,plugin}`,
//! `coredns_dns_request_duration_seconds{server,zone,view,type}` and the request and response
//! size histograms. The labels are those of kubeadm's Corefile (one `.:53` server block):
//! server `dns://:53`, zone `.`, view empty; `type` is one of CoreDNS's monitored query types
//! or `other`. `plugin` names the plugin that wrote the answer as CoreDNS's metrics plugin
//! finds it (the code file of the `WriteMsg` caller): in kubeadm's Corefile every answer the
//! plugin chain writes passes the `loadbalance` plugin's response writer last, so it is
//! `loadbalance` for cluster, cached and forwarded answers alike, and empty for the errors
//! the server writes itself (a forward that failed: SERVFAIL; `max_concurrent`: REFUSED).
//!
//! Beside them, the `cache` plugin's families (`coredns_cache_entries{type}`,
//! `coredns_cache_requests_total`, `coredns_cache_hits_total{type}`,
//! `coredns_cache_misses_total`, `coredns_cache_evictions_total{type}`, labels
//! `server,zones,view`, zones `.`), the `forward` plugin's (`coredns_forward_max_concurrent_rejects_total`,
//! `coredns_forward_healthcheck_broken_total`) and its proxies'
//! (`coredns_proxy_request_duration_seconds{proxy_name,to,rcode}`,
//! `coredns_proxy_conn_cache_misses_total{proxy_name,to,proto}`), and `coredns_build_info`,
//! as CoreDNS 1.11.3 (the version kubeadm installs with Kubernetes 1.32) names them. Not
//! served, because nothing here does what they count: the cache's prefetch, stale and drop
//! counters (kubeadm's Corefile enables neither prefetch nor serve_stale), the proxies'
//! health-check failures and connection-cache hits (every upstream exchange uses a new
//! socket: each is a connection-cache miss).
//!
//! The node serves them on port 9153, the `metrics` port of the `kube-dns` Service
//! ([`serve`]).

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The content type of a scrape (OpenMetrics text, which Prometheus reads).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// kubeadm's Corefile: one server block `.:53`.
const SERVER: &str = "dns://:53";
const ZONE: &str = ".";
/// The forward plugin's proxies' `proxy_name`.
const PROXY_NAME: &str = "forward";
/// The CoreDNS version whose behaviour and metrics this server follows (`coredns_build_info`).
pub const COREDNS_VERSION: &str = "1.11.3";

/// CoreDNS's `plugin.TimeBuckets`: `ExponentialBuckets(0.00025, 2, 16)`.
fn time_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.00025, 2.0, 16)
}

/// CoreDNS's size buckets (`plugin/metrics/vars`).
const SIZE_BUCKETS: [f64; 14] = [
    0.0, 100.0, 200.0, 300.0, 400.0, 511.0, 1023.0, 2047.0, 4095.0, 8291.0, 16e3, 32e3, 48e3, 64e3,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    server: &'static str,
    zone: &'static str,
    view: &'static str,
    proto: &'static str,
    family: &'static str,
    r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DurationLabels {
    server: &'static str,
    zone: &'static str,
    view: &'static str,
    r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SizeLabels {
    server: &'static str,
    zone: &'static str,
    view: &'static str,
    proto: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResponseLabels {
    server: &'static str,
    zone: &'static str,
    view: &'static str,
    rcode: &'static str,
    plugin: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    server: &'static str,
    zones: &'static str,
    view: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheTypeLabels {
    server: &'static str,
    r#type: &'static str,
    zones: &'static str,
    view: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProxyLabels {
    proxy_name: &'static str,
    to: String,
    rcode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnLabels {
    proxy_name: &'static str,
    to: String,
    proto: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    revision: &'static str,
    goversion: &'static str,
}

/// Who wrote an answer, for CoreDNS's `plugin` label (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plugin {
    /// The plugin chain wrote it (a cluster, cached or forwarded answer): `loadbalance`.
    Chain,
    /// The server wrote an error itself (FORMERR, NOTIMP, REFUSED when busy, SERVFAIL or
    /// REFUSED from a forward that could not answer): empty.
    None,
}

/// The cache's two kinds of entries (CoreDNS `Success`, `Denial`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheKind {
    /// Positive answers (and referrals).
    Success,
    /// NXDOMAIN, NODATA and SERVFAIL answers.
    Denial,
}

impl CacheKind {
    fn label(self) -> &'static str {
        match self {
            CacheKind::Success => "success",
            CacheKind::Denial => "denial",
        }
    }
}

/// One answered query, as [`DnsMetrics::record`] counts it.
#[derive(Clone, Copy, Debug)]
pub struct Exchange {
    /// Over TCP (else UDP).
    pub tcp: bool,
    /// From an IPv6 client.
    pub ipv6: bool,
    /// The query type, when the query could be read.
    pub qtype: Option<RecordType>,
    /// The answer's code.
    pub rcode: ResponseCode,
    /// Who answered.
    pub plugin: Plugin,
    /// The request's size in bytes.
    pub request_size: usize,
    /// The response's size in bytes (0 when nothing was sent).
    pub response_size: usize,
    /// How long answering took, in seconds.
    pub seconds: f64,
}

/// The metric families (see the module docs).
#[derive(Debug)]
pub struct DnsMetrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    responses: Family<ResponseLabels, Counter>,
    duration: Family<DurationLabels, Histogram>,
    request_size: Family<SizeLabels, Histogram>,
    response_size: Family<SizeLabels, Histogram>,
    cache_entries: Family<CacheTypeLabels, Gauge>,
    cache_requests: Family<CacheLabels, Counter>,
    cache_hits: Family<CacheTypeLabels, Counter>,
    cache_misses: Family<CacheLabels, Counter>,
    cache_evictions: Family<CacheTypeLabels, Counter>,
    max_concurrent_rejects: Counter,
    proxy_duration: Family<ProxyLabels, Histogram>,
    proxy_conn_misses: Family<ConnLabels, Counter>,
}

impl Default for DnsMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl DnsMetrics {
    /// Empty families, registered.
    pub fn new() -> DnsMetrics {
        let mut registry = Registry::with_prefix("coredns");
        let requests = Family::<RequestLabels, Counter>::default();
        let responses = Family::<ResponseLabels, Counter>::default();
        let duration = Family::<DurationLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(time_buckets())) as fn() -> Histogram,
        );
        let size = (|| Histogram::new(SIZE_BUCKETS)) as fn() -> Histogram;
        let request_size = Family::<SizeLabels, Histogram>::new_with_constructor(size);
        let response_size = Family::<SizeLabels, Histogram>::new_with_constructor(size);
        let dns = registry.sub_registry_with_prefix("dns");
        dns.register(
            "requests",
            "Counter of DNS requests made per zone, protocol and family.",
            requests.clone(),
        );
        dns.register(
            "responses",
            "Counter of response status codes.",
            responses.clone(),
        );
        dns.register(
            "request_duration_seconds",
            "Histogram of the time (in seconds) each request took per zone.",
            duration.clone(),
        );
        dns.register(
            "request_size_bytes",
            "Size of the EDNS0 UDP buffer in bytes (64K for TCP) per zone and protocol.",
            request_size.clone(),
        );
        dns.register(
            "response_size_bytes",
            "Size of the returned response in bytes.",
            response_size.clone(),
        );
        let cache_entries = Family::<CacheTypeLabels, Gauge>::default();
        let cache_requests = Family::<CacheLabels, Counter>::default();
        let cache_hits = Family::<CacheTypeLabels, Counter>::default();
        let cache_misses = Family::<CacheLabels, Counter>::default();
        let cache_evictions = Family::<CacheTypeLabels, Counter>::default();
        let cache = registry.sub_registry_with_prefix("cache");
        cache.register(
            "entries",
            "The number of elements in the cache.",
            cache_entries.clone(),
        );
        cache.register(
            "requests",
            "The count of cache requests.",
            cache_requests.clone(),
        );
        cache.register("hits", "The count of cache hits.", cache_hits.clone());
        cache.register(
            "misses",
            "The count of cache misses. Deprecated, derive misses from cache hits/requests counters.",
            cache_misses.clone(),
        );
        cache.register(
            "evictions",
            "The count of cache evictions.",
            cache_evictions.clone(),
        );
        let max_concurrent_rejects = Counter::default();
        let forward = registry.sub_registry_with_prefix("forward");
        forward.register(
            "healthcheck_broken",
            "Counter of the number of complete failures of the healthchecks.",
            Counter::<u64>::default(),
        );
        forward.register(
            "max_concurrent_rejects",
            "Counter of the number of queries rejected because the concurrent queries were at maximum.",
            max_concurrent_rejects.clone(),
        );
        let proxy_duration = Family::<ProxyLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(time_buckets())) as fn() -> Histogram,
        );
        let proxy_conn_misses = Family::<ConnLabels, Counter>::default();
        let proxy = registry.sub_registry_with_prefix("proxy");
        proxy.register(
            "request_duration_seconds",
            "Histogram of the time each request took.",
            proxy_duration.clone(),
        );
        proxy.register(
            "conn_cache_misses",
            "Counter of connection cache misses per upstream and protocol.",
            proxy_conn_misses.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: COREDNS_VERSION,
                revision: concat!("paddock-", env!("CARGO_PKG_VERSION")),
                goversion: "",
            })
            .set(1);
        registry.register(
            "build_info",
            "A metric with a constant '1' value labeled by version, revision, and goversion from which CoreDNS was built.",
            build,
        );
        DnsMetrics {
            registry,
            requests,
            responses,
            duration,
            request_size,
            response_size,
            cache_entries,
            cache_requests,
            cache_hits,
            cache_misses,
            cache_evictions,
            max_concurrent_rejects,
            proxy_duration,
            proxy_conn_misses,
        }
    }

    fn cache_labels() -> CacheLabels {
        CacheLabels {
            server: SERVER,
            zones: ZONE,
            view: "",
        }
    }

    fn cache_type_labels(kind: CacheKind) -> CacheTypeLabels {
        CacheTypeLabels {
            server: SERVER,
            r#type: kind.label(),
            zones: ZONE,
            view: "",
        }
    }

    /// A query reached the cache and was found (`Some(kind)`) or not.
    pub fn cache_lookup(&self, hit: Option<CacheKind>) {
        self.cache_requests
            .get_or_create(&Self::cache_labels())
            .inc();
        match hit {
            Some(kind) => {
                self.cache_hits
                    .get_or_create(&Self::cache_type_labels(kind))
                    .inc();
            }
            None => {
                self.cache_misses.get_or_create(&Self::cache_labels()).inc();
            }
        }
    }

    /// The cache holds `success` and `denial` entries now.
    pub fn cache_sizes(&self, success: usize, denial: usize) {
        for (kind, n) in [(CacheKind::Success, success), (CacheKind::Denial, denial)] {
            self.cache_entries
                .get_or_create(&Self::cache_type_labels(kind))
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Storing an entry of `kind` evicted another.
    pub fn cache_eviction(&self, kind: CacheKind) {
        self.cache_evictions
            .get_or_create(&Self::cache_type_labels(kind))
            .inc();
    }

    /// A forwarded query was refused: `max_concurrent` were in flight.
    pub fn max_concurrent_reject(&self) {
        self.max_concurrent_rejects.inc();
    }

    /// One exchange with upstream `to` opened a new connection over `tcp` or UDP.
    pub fn proxy_dial(&self, to: &std::net::SocketAddr, tcp: bool) {
        self.proxy_conn_misses
            .get_or_create(&ConnLabels {
                proxy_name: PROXY_NAME,
                to: to.to_string(),
                proto: if tcp { "tcp" } else { "udp" },
            })
            .inc();
    }

    /// Upstream `to` answered `rcode` after `seconds`.
    pub fn proxy_answer(&self, to: &std::net::SocketAddr, rcode: ResponseCode, seconds: f64) {
        self.proxy_duration
            .get_or_create(&ProxyLabels {
                proxy_name: PROXY_NAME,
                to: to.to_string(),
                rcode: rcode_label(rcode),
            })
            .observe(seconds);
    }

    /// Counts one query and its answer.
    pub fn record(&self, x: &Exchange) {
        let proto = if x.tcp { "tcp" } else { "udp" };
        let qtype = x.qtype.map_or("other", type_label);
        self.requests
            .get_or_create(&RequestLabels {
                server: SERVER,
                zone: ZONE,
                view: "",
                proto,
                family: if x.ipv6 { "2" } else { "1" },
                r#type: qtype,
            })
            .inc();
        self.duration
            .get_or_create(&DurationLabels {
                server: SERVER,
                zone: ZONE,
                view: "",
                r#type: qtype,
            })
            .observe(x.seconds);
        let size = SizeLabels {
            server: SERVER,
            zone: ZONE,
            view: "",
            proto,
        };
        self.request_size
            .get_or_create(&size)
            .observe(x.request_size as f64);
        if x.response_size > 0 {
            self.response_size
                .get_or_create(&size)
                .observe(x.response_size as f64);
            self.responses
                .get_or_create(&ResponseLabels {
                    server: SERVER,
                    zone: ZONE,
                    view: "",
                    rcode: rcode_label(x.rcode),
                    plugin: match x.plugin {
                        Plugin::Chain => "loadbalance",
                        Plugin::None => "",
                    },
                })
                .inc();
        }
    }

    /// The scrape, in OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "encoding the DNS metrics");
        }
        out
    }
}

/// Scrapers are few.
const MAX_CONNECTIONS: usize = 32;

/// Serves `GET /metrics` on `listener` until `stop` (404 for other paths, 405 for other
/// methods), on [`accept::serve`] with its caps and timeouts.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: std::sync::Arc<DnsMetrics>,
    stop: tokio_util::sync::CancellationToken,
) {
    let limits = accept::Limits::new(accept::fd_share(MAX_CONNECTIONS));
    accept::serve(
        listener,
        None,
        Scrape(metrics),
        limits,
        stop.cancelled_owned(),
    )
    .await;
}

#[derive(Clone)]
struct Scrape(std::sync::Arc<DnsMetrics>);

impl accept::HttpService for Scrape {
    type Body = http_body_util::Full<bytes::Bytes>;

    fn respond(
        &self,
        req: http::Request<hyper::body::Incoming>,
    ) -> impl std::future::Future<Output = http::Response<Self::Body>> + Send + 'static {
        let metrics = self.0.clone();
        async move {
            let reply = |status: http::StatusCode, ct: &'static str, body: String| {
                let mut r =
                    http::Response::new(http_body_util::Full::new(bytes::Bytes::from(body)));
                *r.status_mut() = status;
                r.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static(ct),
                );
                r
            };
            if req.uri().path() != "/metrics" {
                return reply(
                    http::StatusCode::NOT_FOUND,
                    "text/plain; charset=utf-8",
                    "404 page not found\n".into(),
                );
            }
            if req.method() != http::Method::GET && req.method() != http::Method::HEAD {
                return reply(
                    http::StatusCode::METHOD_NOT_ALLOWED,
                    "text/plain; charset=utf-8",
                    String::new(),
                );
            }
            reply(http::StatusCode::OK, CONTENT_TYPE, metrics.encode())
        }
    }
}

/// CoreDNS's monitored query types (`plugin/metrics/vars/monitor.go`); others are `other`.
fn type_label(t: RecordType) -> &'static str {
    match t {
        RecordType::A => "A",
        RecordType::AAAA => "AAAA",
        RecordType::AXFR => "AXFR",
        RecordType::CNAME => "CNAME",
        RecordType::DNSKEY => "DNSKEY",
        RecordType::DS => "DS",
        RecordType::HTTPS => "HTTPS",
        RecordType::IXFR => "IXFR",
        RecordType::MX => "MX",
        RecordType::NS => "NS",
        RecordType::NSEC => "NSEC",
        RecordType::NSEC3 => "NSEC3",
        RecordType::PTR => "PTR",
        RecordType::RRSIG => "RRSIG",
        RecordType::SOA => "SOA",
        RecordType::SRV => "SRV",
        RecordType::SVCB => "SVCB",
        RecordType::TXT => "TXT",
        RecordType::ANY => "ANY",
        _ => "other",
    }
}

/// miekg/dns's `RcodeToString`.
fn rcode_label(r: ResponseCode) -> &'static str {
    match r {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::YXDomain => "YXDOMAIN",
        ResponseCode::YXRRSet => "YXRRSET",
        ResponseCode::NXRRSet => "NXRRSET",
        ResponseCode::NotAuth => "NOTAUTH",
        ResponseCode::NotZone => "NOTZONE",
        ResponseCode::BADVERS => "BADSIG",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_carry_corednss_names_and_labels() {
        let m = DnsMetrics::new();
        m.record(&Exchange {
            tcp: false,
            ipv6: false,
            qtype: Some(RecordType::A),
            rcode: ResponseCode::NXDomain,
            plugin: Plugin::Chain,
            request_size: 40,
            response_size: 120,
            seconds: 0.0002,
        });
        m.record(&Exchange {
            tcp: true,
            ipv6: true,
            qtype: Some(RecordType::CAA),
            rcode: ResponseCode::ServFail,
            plugin: Plugin::None,
            request_size: 40,
            response_size: 90,
            seconds: 0.01,
        });
        let text = m.encode();
        for line in [
            r#"coredns_dns_requests_total{server="dns://:53",zone=".",view="",proto="udp",family="1",type="A"} 1"#,
            r#"coredns_dns_requests_total{server="dns://:53",zone=".",view="",proto="tcp",family="2",type="other"} 1"#,
            r#"coredns_dns_responses_total{server="dns://:53",zone=".",view="",rcode="NXDOMAIN",plugin="loadbalance"} 1"#,
            r#"coredns_dns_responses_total{server="dns://:53",zone=".",view="",rcode="SERVFAIL",plugin=""} 1"#,
            r#"coredns_dns_request_duration_seconds_bucket{le="0.00025",server="dns://:53",zone=".",view="",type="A"} 1"#,
            r#"coredns_dns_response_size_bytes_bucket{le="200.0",server="dns://:53",zone=".",view="",proto="udp"} 1"#,
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
    }

    #[test]
    fn forward_and_proxy_families_carry_corednss_names_and_buckets() {
        let m = DnsMetrics::new();
        let to: std::net::SocketAddr = "192.0.2.53:53".parse().expect("addr");
        m.proxy_dial(&to, false);
        m.proxy_dial(&to, true);
        m.proxy_answer(&to, ResponseCode::NoError, 0.003);
        m.max_concurrent_reject();
        m.cache_eviction(CacheKind::Denial);
        let text = m.encode();
        for line in [
            r#"coredns_proxy_conn_cache_misses_total{proxy_name="forward",to="192.0.2.53:53",proto="udp"} 1"#,
            r#"coredns_proxy_conn_cache_misses_total{proxy_name="forward",to="192.0.2.53:53",proto="tcp"} 1"#,
            // plugin.TimeBuckets: 0.00025 * 2^n for n in 0..16; 0.003 s falls in 0.004.
            r#"coredns_proxy_request_duration_seconds_bucket{le="0.002",proxy_name="forward",to="192.0.2.53:53",rcode="NOERROR"} 0"#,
            r#"coredns_proxy_request_duration_seconds_bucket{le="0.004",proxy_name="forward",to="192.0.2.53:53",rcode="NOERROR"} 1"#,
            r#"coredns_proxy_request_duration_seconds_bucket{le="8.192",proxy_name="forward",to="192.0.2.53:53",rcode="NOERROR"} 1"#,
            "coredns_forward_max_concurrent_rejects_total 1",
            "coredns_forward_healthcheck_broken_total 0",
            r#"coredns_cache_evictions_total{server="dns://:53",type="denial",zones=".",view=""} 1"#,
            r#"coredns_build_info{version="1.11.3",revision="paddock-"#,
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
    }
}
