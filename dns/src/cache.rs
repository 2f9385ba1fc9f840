//! The response cache, as CoreDNS's `cache` plugin runs it in kubeadm's Corefile
//! (`cache 30 { disable success cluster.local; disable denial cluster.local }`): every query
//! passes it (`coredns_cache_requests_total`), answers are kept for their smallest TTL
//! clamped to 5..30 s, and answers for the cluster domain are never kept (the `disable`
//! lines), so cluster names are always answered from the current records.
//!
//! Start at [`Cache::get`] and [`Cache::store`]. As in `plugin/cache`: two caches, positive
//! (`success`: answers and referrals) and negative (`denial`: NXDOMAIN and NODATA with an
//! SOA, and SERVFAIL for 5 s), each of `capacity` entries in 256 shards keyed by an FNV-1
//! hash of the lower-case name, type, DO and CD bits; a full shard drops an arbitrary entry
//! for a new one (an eviction). Expired entries stay until replaced or evicted, as in
//! CoreDNS, and count in `coredns_cache_entries`. The TTLs of every answer that passes are
//! rewritten: a fresh answer's records all get the answer's clamped TTL, a cached one's the
//! time it has left; a cached answer is marked authoritative (CoreDNS does so for old glibc
//! stub resolvers).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, Record, RecordType};
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::answer::Reply;
use crate::forward::Asker;
use crate::metrics::{CacheKind, DnsMetrics};

/// `cache 30`: the longest any answer is kept.
const MAX_TTL: Duration = Duration::from_secs(30);
/// CoreDNS `MinimalDefaultTTL`: the shortest, and what an answer without records gets.
const MIN_TTL: Duration = Duration::from_secs(5);
/// CoreDNS `MaximumDefaulTTL`: where the search for the smallest TTL starts.
const DEFAULT_MAX_TTL: u32 = 3600;
/// How long a SERVFAIL is kept (CoreDNS `failttl`, 5 s by default).
const FAIL_TTL: Duration = MIN_TTL;
/// CoreDNS `plugin/pkg/cache` shards.
const SHARDS: usize = 256;
/// The smallest shard (CoreDNS: 4).
const MIN_SHARD: usize = 4;

/// CoreDNS's `response.Type` of an answer, as far as the cache needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    NoError,
    NameError,
    NoData,
    Delegation,
    ServerError,
    OtherError,
}

/// CoreDNS `response.Typify`.
pub(crate) fn typify(reply: &Reply) -> Kind {
    if !reply.answers.is_empty() && reply.rcode == ResponseCode::NoError {
        return Kind::NoError;
    }
    let soa = reply
        .authorities
        .iter()
        .any(|r| r.record_type() == RecordType::SOA);
    let ns = reply
        .authorities
        .iter()
        .any(|r| r.record_type() == RecordType::NS);
    match reply.rcode {
        ResponseCode::NoError if soa => Kind::NoData,
        ResponseCode::NXDomain if soa => Kind::NameError,
        ResponseCode::ServFail | ResponseCode::NotImp => Kind::ServerError,
        ResponseCode::NoError if ns => Kind::Delegation,
        ResponseCode::NoError => Kind::NoError,
        _ => Kind::OtherError,
    }
}

/// CoreDNS `dnsutil.MinimalTTL`.
fn minimal_ttl(reply: &Reply, kind: Kind) -> Duration {
    if !matches!(kind, Kind::NoError | Kind::NameError | Kind::NoData) {
        return MIN_TTL;
    }
    let records = || {
        reply
            .answers
            .iter()
            .chain(&reply.authorities)
            .chain(&reply.additionals)
    };
    if records().next().is_none() {
        return MIN_TTL;
    }
    let ttl = records().map(|r| r.ttl).fold(DEFAULT_MAX_TTL, u32::min);
    Duration::from_secs(u64::from(ttl))
}

/// Go's `hash/fnv` New64 (FNV-1, 64 bits) of the parts, one after the other.
fn fnv1_64(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in parts.iter().flat_map(|p| p.iter()) {
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        h ^= u64::from(*b);
    }
    h
}

/// CoreDNS's cache key: DO, CD, the type (big-endian) and the lower-case name.
fn key(lower: &Name, qtype: RecordType, asker: &Asker) -> u64 {
    let bit = |b: bool| if b { b"1" } else { b"0" };
    fnv1_64(&[
        bit(asker.dnssec_ok),
        bit(asker.checking_disabled),
        &u16::from(qtype).to_be_bytes(),
        lower.to_ascii().as_bytes(),
    ])
}

#[derive(Debug)]
struct Item {
    name: Name,
    qtype: RecordType,
    rcode: ResponseCode,
    answers: Vec<Record>,
    authorities: Vec<Record>,
    additionals: Vec<Record>,
    orig_ttl: u32,
    stored: Instant,
}

impl Item {
    /// Seconds left (negative once expired), whole seconds as CoreDNS counts them.
    fn ttl(&self, now: Instant) -> i64 {
        let elapsed =
            i64::try_from(now.saturating_duration_since(self.stored).as_secs()).unwrap_or(i64::MAX);
        i64::from(self.orig_ttl).saturating_sub(elapsed)
    }
}

/// One of the two caches (`pcache`, `ncache`).
#[derive(Debug)]
struct Store {
    shards: Vec<Mutex<HashMap<u64, Arc<Item>>>>,
    shard_size: usize,
    len: AtomicUsize,
}

impl Store {
    fn new(capacity: usize) -> Store {
        Store {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            shard_size: (capacity / SHARDS).max(MIN_SHARD),
            len: AtomicUsize::new(0),
        }
    }

    fn shard(&self, key: u64) -> &Mutex<HashMap<u64, Arc<Item>>> {
        // `key & (shardSize - 1)`; the shard count is a power of two.
        &self.shards[(key as usize) & (SHARDS - 1)]
    }

    fn get(&self, key: u64) -> Option<Arc<Item>> {
        self.shard(key).lock().get(&key).cloned()
    }

    /// Adds `item`; whether another was evicted for it.
    fn add(&self, key: u64, item: Item) -> bool {
        let mut shard = self.shard(key).lock();
        let mut evicted = false;
        if shard.len() >= self.shard_size
            && !shard.contains_key(&key)
            && let Some(victim) = shard.keys().next().copied()
        {
            shard.remove(&victim);
            evicted = true;
        }
        if shard.insert(key, Arc::new(item)).is_none() && !evicted {
            self.len.fetch_add(1, Ordering::Relaxed);
        }
        evicted
    }

    fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }
}

/// The cache (see the module docs).
#[derive(Debug)]
pub(crate) struct Cache {
    success: Store,
    denial: Store,
    metrics: Arc<DnsMetrics>,
}

impl Cache {
    /// Room for `capacity` answers of each kind.
    pub(crate) fn new(capacity: usize, metrics: Arc<DnsMetrics>) -> Cache {
        Cache {
            success: Store::new(capacity),
            denial: Store::new(capacity),
            metrics,
        }
    }

    /// The cached answer to `lower`/`qtype`, with the TTLs it has left; counts the request and the hit or miss (CoreDNS `getIgnoreTTL`).
    pub(crate) fn get(&self, lower: &Name, qtype: RecordType, asker: &Asker) -> Option<Reply> {
        let key = key(lower, qtype, asker);
        let now = Instant::now();
        for (store, kind) in [
            (&self.denial, CacheKind::Denial),
            (&self.success, CacheKind::Success),
        ] {
            if let Some(item) = store.get(key)
                && item.qtype == qtype
                && item.name == *lower
                && item.ttl(now) > 0
            {
                self.metrics.cache_lookup(Some(kind));
                let ttl = u32::try_from(item.ttl(now)).unwrap_or(0);
                let with_ttl = |records: &[Record]| {
                    records
                        .iter()
                        .map(|r| {
                            let mut r = r.clone();
                            r.ttl = ttl;
                            r
                        })
                        .collect()
                };
                return Some(Reply {
                    rcode: item.rcode,
                    authoritative: true,
                    truncated: false,
                    answers: with_ttl(&item.answers),
                    authorities: with_ttl(&item.authorities),
                    additionals: with_ttl(&item.additionals),
                });
            }
        }
        self.metrics.cache_lookup(None);
        None
    }

    /// Passes a fresh answer to `lower`/`qtype` through the cache (CoreDNS's cache
    /// `ResponseWriter.WriteMsg`): keeps it when `keep` (not the cluster domain) and it is
    /// cacheable, and rewrites its TTLs.
    pub(crate) fn store(
        &self,
        lower: &Name,
        qtype: RecordType,
        asker: &Asker,
        reply: &mut Reply,
        keep: bool,
    ) {
        let kind = typify(reply);
        let duration = match kind {
            Kind::NameError | Kind::NoData => minimal_ttl(reply, kind).clamp(MIN_TTL, MAX_TTL),
            Kind::ServerError => FAIL_TTL,
            _ => minimal_ttl(reply, kind).clamp(MIN_TTL, MAX_TTL),
        };
        let ttl = u32::try_from(duration.as_secs()).unwrap_or(u32::MAX);
        let cacheable = !reply.truncated && kind != Kind::OtherError;
        if cacheable {
            if keep {
                let (store, label) = match kind {
                    Kind::NoError | Kind::Delegation => (&self.success, CacheKind::Success),
                    _ => (&self.denial, CacheKind::Denial),
                };
                let item = Item {
                    name: lower.clone(),
                    qtype,
                    rcode: reply.rcode,
                    answers: reply.answers.clone(),
                    authorities: reply.authorities.clone(),
                    additionals: reply.additionals.clone(),
                    orig_ttl: ttl,
                    stored: Instant::now(),
                };
                if store.add(key(lower, qtype, asker), item) {
                    self.metrics.cache_eviction(label);
                }
            }
            self.metrics
                .cache_sizes(self.success.len(), self.denial.len());
        }
        for r in reply
            .answers
            .iter_mut()
            .chain(reply.authorities.iter_mut())
            .chain(reply.additionals.iter_mut())
        {
            r.ttl = ttl;
        }
    }

    /// Entries held (positive, negative).
    #[cfg(test)]
    fn sizes(&self) -> (usize, usize) {
        (self.success.len(), self.denial.len())
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use hickory_proto::rr::RData;
    use hickory_proto::rr::rdata::{A, SOA};

    use super::*;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).expect("name")
    }

    fn a(owner: &str, ttl: u32) -> Record {
        Record::from_rdata(name(owner), ttl, RData::A(A(Ipv4Addr::new(192, 0, 2, 1))))
    }

    fn soa(ttl: u32) -> Record {
        Record::from_rdata(
            name("example.org."),
            ttl,
            RData::SOA(SOA::new(
                name("ns.example.org."),
                name("admin.example.org."),
                1,
                3600,
                600,
                86400,
                ttl,
            )),
        )
    }

    fn cache() -> (Cache, Arc<DnsMetrics>) {
        let metrics = Arc::new(DnsMetrics::new());
        (Cache::new(9984, metrics.clone()), metrics)
    }

    #[test]
    fn the_key_is_go_fnv1_64() {
        // The published FNV-1 64-bit test vectors (not FNV-1a: "a" is 0xaf63dc4c8601ec8c there).
        assert_eq!(fnv1_64(&[]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1_64(&[b"a"]), 0xaf63_bd4c_8601_b7be);
        assert_eq!(fnv1_64(&[b"fo", b"obar"]), fnv1_64(&[b"foobar"]));
        let h = fnv1_64(&[b"0", b"0", &[0, 1], b"a."]);
        assert_eq!(key(&name("a."), RecordType::A, &Asker::default()), h);
        let dnssec = Asker {
            dnssec_ok: true,
            ..Asker::default()
        };
        assert_ne!(key(&name("a."), RecordType::A, &dnssec), h);
        assert_ne!(key(&name("a."), RecordType::AAAA, &Asker::default()), h);
    }

    #[test]
    fn answers_are_typified_as_coredns_does() {
        let reply = |rcode, answers: Vec<Record>, authorities: Vec<Record>| Reply {
            rcode,
            answers,
            authorities,
            ..Reply::default()
        };
        let cases = [
            (
                reply(ResponseCode::NoError, vec![a("x.", 60)], vec![]),
                Kind::NoError,
            ),
            (
                reply(ResponseCode::NoError, vec![], vec![soa(60)]),
                Kind::NoData,
            ),
            (
                reply(ResponseCode::NXDomain, vec![], vec![soa(60)]),
                Kind::NameError,
            ),
            (
                reply(ResponseCode::NXDomain, vec![], vec![]),
                Kind::OtherError,
            ),
            (
                reply(ResponseCode::ServFail, vec![], vec![]),
                Kind::ServerError,
            ),
            (
                reply(ResponseCode::Refused, vec![], vec![]),
                Kind::OtherError,
            ),
            (reply(ResponseCode::NoError, vec![], vec![]), Kind::NoError),
        ];
        for (r, kind) in cases {
            assert_eq!(typify(&r), kind, "{r:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn ttls_are_clamped_to_5_30_and_count_down_in_hits() {
        let (c, metrics) = cache();
        let q = name("www.example.org.");
        let asker = Asker::default();
        assert!(c.get(&q, RecordType::A, &asker).is_none());
        let mut fresh = Reply {
            answers: vec![a("www.example.org.", 300)],
            ..Reply::default()
        };
        c.store(&q, RecordType::A, &asker, &mut fresh, true);
        assert_eq!(fresh.answers[0].ttl, 30, "capped at 30 s");
        tokio::time::advance(Duration::from_secs(12)).await;
        let hit = c.get(&q, RecordType::A, &asker).expect("a hit");
        assert_eq!(hit.answers[0].ttl, 18);
        assert!(hit.authoritative);
        tokio::time::advance(Duration::from_secs(18)).await;
        assert!(c.get(&q, RecordType::A, &asker).is_none(), "expired");
        assert_eq!(c.sizes(), (1, 0), "expired entries stay");

        let short = name("short.example.org.");
        let mut one = Reply {
            answers: vec![a("short.example.org.", 1)],
            ..Reply::default()
        };
        c.store(&short, RecordType::A, &asker, &mut one, true);
        assert_eq!(one.answers[0].ttl, 5, "raised to 5 s");

        let nx = name("nx.example.org.");
        let mut denial = Reply {
            rcode: ResponseCode::NXDomain,
            authorities: vec![soa(60)],
            ..Reply::default()
        };
        c.store(&nx, RecordType::A, &asker, &mut denial, true);
        assert_eq!(c.sizes(), (2, 1));
        let text = metrics.encode();
        for line in [
            r#"coredns_cache_requests_total{server="dns://:53",zones=".",view=""} 3"#,
            r#"coredns_cache_hits_total{server="dns://:53",type="success",zones=".",view=""} 1"#,
            r#"coredns_cache_misses_total{server="dns://:53",zones=".",view=""} 2"#,
            r#"coredns_cache_entries{server="dns://:53",type="success",zones=".",view=""} 2"#,
            r#"coredns_cache_entries{server="dns://:53",type="denial",zones=".",view=""} 1"#,
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn cluster_answers_pass_without_being_kept_and_truncated_ones_are_not_kept() {
        let (c, _) = cache();
        let asker = Asker::default();
        let q = name("web.default.svc.cluster.local.");
        let mut reply = Reply {
            answers: vec![a("web.default.svc.cluster.local.", 30)],
            ..Reply::default()
        };
        c.store(&q, RecordType::A, &asker, &mut reply, false);
        assert!(c.get(&q, RecordType::A, &asker).is_none());
        let big = name("big.example.org.");
        let mut cut = Reply {
            truncated: true,
            answers: vec![a("big.example.org.", 60)],
            ..Reply::default()
        };
        c.store(&big, RecordType::A, &asker, &mut cut, true);
        assert!(c.get(&big, RecordType::A, &asker).is_none());
        assert_eq!(c.sizes(), (0, 0));
    }

    #[test]
    fn a_full_shard_evicts_and_counts_it() {
        let metrics = Arc::new(DnsMetrics::new());
        // 4 entries per shard at the smallest.
        let c = Cache::new(0, metrics.clone());
        let asker = Asker::default();
        let mut by_shard: HashMap<usize, Vec<Name>> = HashMap::new();
        for i in 0..5000 {
            let n = name(&format!("h{i}.example.org."));
            let shard = (key(&n, RecordType::A, &asker) as usize) & (SHARDS - 1);
            by_shard.entry(shard).or_default().push(n);
        }
        let names = by_shard
            .into_values()
            .find(|v| v.len() >= 5)
            .expect("five names in one shard");
        for n in &names[..5] {
            let mut r = Reply {
                answers: vec![a(&n.to_ascii(), 60)],
                ..Reply::default()
            };
            c.store(n, RecordType::A, &asker, &mut r, true);
        }
        assert_eq!(c.sizes(), (4, 0));
        assert!(metrics.encode().contains(
            r#"coredns_cache_evictions_total{server="dns://:53",type="success",zones=".",view=""} 1"#
        ));
    }
}
