//! The answers for names in the cluster domain and the reverse zones, as CoreDNS's kubernetes
//! plugin gives them (kubeadm's Corefile: `kubernetes cluster.local in-addr.arpa ip6.arpa {
//! pods insecure; fallthrough in-addr.arpa ip6.arpa; ttl 30 }`).
//!
//! Start at [`answer`]. Names are parsed as CoreDNS `parseRequest` does
//! (`[_port._proto.|endpoint.]service.namespace.svc|pod.<zone>`), turned into the plugin's list
//! of "services" ([`Item`]s: an owner name, an address or a CNAME target, a port) by
//! [`items`] (`findServices`/`findPods`), and rendered per query type as `plugin/backend_lookup.go`
//! does. A name that does not exist is NXDOMAIN; a name that exists without records of the
//! type is NODATA; both carry the zone's SOA in the authority section. In the reverse zones an
//! address that is not a service or endpoint falls through to the upstream resolvers.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::forward::{Asker, Forwarder};
use crate::records::{Endpoint, Key, Kind, Snapshot, name_under, service_name};

/// The TTL of every record (kubeadm's CoreDNS configuration: `ttl 30`).
pub const TTL: u32 = 30;
/// CoreDNS `DNSSchemaVersion`, served as `dns-version.<zone>` TXT (the DNS specification).
const SCHEMA_VERSION: &str = "1.1.0";
/// How many CNAMEs an ExternalName chain may take inside the zone: CoreDNS stops adding once
/// more than 7 are behind it.
const MAX_CNAME_DEPTH: usize = 8;

/// What to send back.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Not ours: ask the upstream resolvers.
    Forward,
    /// Our answer.
    Answer(Reply),
}

/// A response's code and sections.
#[derive(Debug, Default)]
pub(crate) struct Reply {
    pub(crate) rcode: ResponseCode,
    /// Whether we are the authority (our zone, or a cached answer) or passing on an upstream
    /// answer.
    pub(crate) authoritative: bool,
    /// The TC bit: an upstream answer came truncated (CoreDNS passes the bit on).
    pub(crate) truncated: bool,
    pub(crate) answers: Vec<Record>,
    pub(crate) authorities: Vec<Record>,
    pub(crate) additionals: Vec<Record>,
}

impl Reply {
    /// The size of this reply to `qname`/`qtype` as a message (for the size metrics of a
    /// lookup that is never sent).
    pub(crate) fn encoded_len(&self, qname: &Name, qtype: RecordType) -> usize {
        let mut msg = hickory_proto::op::Message::response(0, hickory_proto::op::OpCode::Query);
        msg.add_query(hickory_proto::op::Query::query(qname.clone(), qtype));
        msg.answers = self.answers.clone();
        msg.authorities = self.authorities.clone();
        msg.additionals = self.additionals.clone();
        msg.to_vec().map_or(0, |v| v.len())
    }
}

/// Where a name points.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    Ip(IpAddr),
    Name(Name),
}

/// CoreDNS's `msg.Service`: one thing a name stands for.
#[derive(Debug, Clone)]
struct Item {
    /// The name the item is known by (the SRV target for an address).
    owner: Name,
    host: Host,
    /// `None` for CoreDNS's port `-1` (an endpoint slice without ports).
    port: Option<u16>,
}

/// The name does not exist (NXDOMAIN).
#[derive(Debug)]
struct NameError;

/// The reverse zones this server answers PTR queries in (and falls through from).
fn reverse_zone(name: &Name) -> bool {
    let lower = name.to_lowercase().to_ascii();
    lower.ends_with(".in-addr.arpa.") || lower.ends_with(".ip6.arpa.")
}

/// The answer for `qname`/`qtype`, or [`Outcome::Forward`].
pub(crate) async fn answer(
    snap: &Arc<Snapshot>,
    fwd: &Forwarder,
    qname: &Name,
    qtype: RecordType,
    asker: &Asker,
) -> Outcome {
    let lower = qname.to_lowercase();
    if !lower.is_fqdn() {
        return Outcome::Forward;
    }
    if reverse_zone(&lower) {
        return reverse(snap, qname, &lower, qtype);
    }
    if !snap.zone.zone_of(&lower) {
        return Outcome::Forward;
    }
    Outcome::Answer(in_zone(snap, fwd, qname, &lower, qtype, asker).await)
}

fn reverse(snap: &Snapshot, qname: &Name, lower: &Name, qtype: RecordType) -> Outcome {
    if qtype != RecordType::PTR {
        return Outcome::Forward;
    }
    let Some(ip) = address_from_reverse(lower) else {
        return Outcome::Forward;
    };
    let Some(targets) = snap.reverse.get(&ip) else {
        return Outcome::Forward;
    };
    Outcome::Answer(Reply {
        authoritative: true,
        answers: targets
            .iter()
            .map(|t| record(qname, TTL, RData::PTR(PTR(t.clone()))))
            .collect(),
        ..Reply::default()
    })
}

/// The address of a full reverse name (`4.3.2.1.in-addr.arpa.`, 32 nibbles `.ip6.arpa.`);
/// `None` for a partial one (CoreDNS `ExtractAddressFromReverse`).
fn address_from_reverse(name: &Name) -> Option<IpAddr> {
    let labels: Vec<&[u8]> = name.iter().collect();
    let (body, tail) = labels.split_at(labels.len().checked_sub(2)?);
    match tail {
        [a, b] if a.eq_ignore_ascii_case(b"in-addr") && b.eq_ignore_ascii_case(b"arpa") => {
            if body.len() != 4 {
                return None;
            }
            let mut octets = [0u8; 4];
            for (i, l) in body.iter().rev().enumerate() {
                octets[i] = std::str::from_utf8(l).ok()?.parse().ok()?;
            }
            Some(IpAddr::V4(Ipv4Addr::from(octets)))
        }
        [a, b] if a.eq_ignore_ascii_case(b"ip6") && b.eq_ignore_ascii_case(b"arpa") => {
            if body.len() != 32 {
                return None;
            }
            let mut bytes = [0u8; 16];
            for (i, l) in body.iter().rev().enumerate() {
                let [c] = l else { return None };
                let nibble = (*c as char).to_digit(16)?;
                let nibble = u8::try_from(nibble).ok()?;
                bytes[i / 2] |= if i % 2 == 0 { nibble << 4 } else { nibble };
            }
            Some(IpAddr::V6(Ipv6Addr::from(bytes)))
        }
        _ => None,
    }
}

async fn in_zone(
    snap: &Arc<Snapshot>,
    fwd: &Forwarder,
    qname: &Name,
    lower: &Name,
    qtype: RecordType,
    asker: &Asker,
) -> Reply {
    let zone = &snap.zone;
    let mut extra = Vec::new();
    let mut truncated = false;
    let result: Result<Vec<Record>, NameError> = match qtype {
        RecordType::A | RecordType::AAAA => {
            let mut chain = Chain {
                asker,
                previous: Vec::new(),
                truncated: &mut truncated,
            };
            address_records(snap, fwd, qname, lower, qtype, &mut chain).await
        }
        RecordType::TXT => txt(snap, qname, lower),
        RecordType::CNAME => items(snap, lower, qtype).map(|items| {
            items
                .into_iter()
                .find_map(|i| match i.host {
                    Host::Name(target) => Some(record(qname, TTL, RData::CNAME(CNAME(target)))),
                    Host::Ip(_) => None,
                })
                .into_iter()
                .collect()
        }),
        RecordType::SRV => items(snap, lower, qtype).map(|items| srv(qname, &items, &mut extra)),
        RecordType::SOA => Ok(vec![soa(snap)]),
        RecordType::NS if lower == zone => Ok(ns(snap, qname, &mut extra)),
        // MX, PTR in the forward zone and every other type: CoreDNS's "fake A lookup" tells
        // NODATA from NXDOMAIN; no records of these types exist here.
        _ => items(snap, lower, RecordType::A).map(|_| Vec::new()),
    };
    let mut reply = Reply {
        authoritative: true,
        truncated,
        ..Reply::default()
    };
    match result {
        Err(NameError) => {
            reply.rcode = ResponseCode::NXDomain;
            reply.authorities.push(soa(snap));
        }
        Ok(records) if records.is_empty() => reply.authorities.push(soa(snap)),
        Ok(records) => {
            reply.answers = dedup(records);
            reply.additionals = dedup(extra);
        }
    }
    reply
}

fn dedup(records: Vec<Record>) -> Vec<Record> {
    let mut out: Vec<Record> = Vec::with_capacity(records.len());
    for r in records {
        if !out.iter().any(|o| o == &r) {
            out.push(r);
        }
    }
    out
}

fn record(name: &Name, ttl: u32, data: RData) -> Record {
    Record::from_rdata(name.clone(), ttl, data)
}

/// The zone's SOA as CoreDNS builds it (`plugin.SOA`).
fn soa(snap: &Snapshot) -> Record {
    let zone = &snap.zone;
    let ns = name_under(&["ns", "dns"], zone).unwrap_or_else(|| zone.clone());
    let mbox = name_under(&["hostmaster"], zone).unwrap_or_else(|| zone.clone());
    record(
        zone,
        TTL,
        RData::SOA(SOA::new(ns, mbox, snap.serial, 7200, 1800, 86400, TTL)),
    )
}

/// The addresses CoreDNS hands out for `ns.dns.<zone>`: here the cluster DNS Service's.
fn dns_service_ips(snap: &Snapshot) -> Vec<IpAddr> {
    let key: Key = ("kube-system".into(), "kube-dns".into());
    match snap.services.get(&key).map(|s| &s.kind) {
        Some(Kind::ClusterIp(ips)) => ips.clone(),
        _ => Vec::new(),
    }
}

fn address(name: &Name, ip: IpAddr) -> Record {
    match ip {
        IpAddr::V4(v4) => record(name, TTL, RData::A(A(v4))),
        IpAddr::V6(v6) => record(name, TTL, RData::AAAA(AAAA(v6))),
    }
}

fn ns(snap: &Snapshot, qname: &Name, extra: &mut Vec<Record>) -> Vec<Record> {
    let ips = dns_service_ips(snap);
    let Some(target) = name_under(&["ns", "dns"], &snap.zone) else {
        return Vec::new();
    };
    if ips.is_empty() {
        return Vec::new();
    }
    extra.extend(ips.iter().map(|ip| address(&target, *ip)));
    vec![record(qname, TTL, RData::NS(NS(target)))]
}

fn txt(snap: &Snapshot, qname: &Name, lower: &Name) -> Result<Vec<Record>, NameError> {
    if name_under(&["dns-version"], &snap.zone).as_ref() == Some(lower) {
        return Ok(vec![record(
            qname,
            28800,
            RData::TXT(TXT::new(vec![SCHEMA_VERSION.into()])),
        )]);
    }
    // An existing name answers NODATA, anything else NXDOMAIN (CoreDNS `Services`).
    match items(snap, lower, RecordType::TXT) {
        Ok(items) if !items.is_empty() => Ok(Vec::new()),
        _ => Err(NameError),
    }
}

/// The state of one A/AAAA lookup through ExternalName CNAMEs.
struct Chain<'a> {
    asker: &'a Asker,
    /// The CNAMEs already followed, as (owner, target) in lower case (CoreDNS's
    /// `previousRecords`).
    previous: Vec<(Name, Name)>,
    /// An upstream answer came truncated.
    truncated: &'a mut bool,
}

/// A/AAAA (CoreDNS `plugin.A`/`AAAA`): addresses of the right family. An ExternalName gives
/// its CNAME, skipped when the target is the name itself or below it, when more than 7
/// CNAMEs are behind it, or when it repeats one of them. A target inside the zone is looked
/// up here, and the CNAME kept only if that gives records; a target outside it is looked up
/// through the cache and the upstreams ([`Forwarder::lookup`]), and the CNAME is kept
/// whatever the answer (NXDOMAIN, SERVFAIL or none at all: CoreDNS appends the CNAME and the
/// lookup's answer section, empty or not), so an unresolvable target still gives the CNAME
/// and NOERROR, and the client's resolver sees the target fail when it follows it.
fn address_records<'a>(
    snap: &'a Arc<Snapshot>,
    fwd: &'a Forwarder,
    qname: &'a Name,
    lower: &'a Name,
    qtype: RecordType,
    chain: &'a mut Chain<'_>,
) -> std::pin::Pin<Box<dyn Future<Output = Result<Vec<Record>, NameError>> + Send + 'a>> {
    Box::pin(async move {
        let items = items(snap, lower, qtype)?;
        let mut out = Vec::new();
        for item in items {
            match item.host {
                Host::Ip(ip @ IpAddr::V4(_)) if qtype == RecordType::A => {
                    out.push(address(qname, ip))
                }
                Host::Ip(ip @ IpAddr::V6(_)) if qtype == RecordType::AAAA => {
                    out.push(address(qname, ip))
                }
                Host::Ip(_) => {}
                Host::Name(target) => {
                    let target_lower = target.to_lowercase();
                    // `Name(state.Name()).Matches(target)`: the name itself or a name below it.
                    if lower.zone_of(&target_lower) {
                        continue;
                    }
                    if chain.previous.len() >= MAX_CNAME_DEPTH {
                        continue;
                    }
                    let link = (lower.clone(), target_lower.clone());
                    if chain.previous.contains(&link) {
                        continue;
                    }
                    let cname = record(qname, TTL, RData::CNAME(CNAME(target.clone())));
                    if snap.zone.zone_of(&target_lower) {
                        chain.previous.push(link);
                        let next =
                            address_records(snap, fwd, &target, &target_lower, qtype, chain).await;
                        chain.previous.pop();
                        if let Ok(next) = next
                            && !next.is_empty()
                        {
                            out.push(cname);
                            out.extend(next);
                        }
                        continue;
                    }
                    let found = fwd.lookup(&target, qtype, chain.asker).await;
                    if found.truncated {
                        *chain.truncated = true;
                    }
                    out.push(cname);
                    out.extend(found.answers);
                }
            }
        }
        Ok(out)
    })
}

/// SRV (CoreDNS `plugin.SRV`): priority 0, the weight split evenly (`floor(100 / n)`), an
/// address's target is the name it is known by, with its address in the additional section.
fn srv(qname: &Name, items: &[Item], extra: &mut Vec<Record>) -> Vec<Record> {
    let total = items.len().max(1);
    let weight = u16::try_from(100 / total).unwrap_or(0);
    let mut seen: HashSet<(Name, u16)> = HashSet::new();
    let mut out = Vec::new();
    for item in items {
        let (Some(port), Host::Ip(ip)) = (item.port, &item.host) else {
            continue;
        };
        if seen.insert((item.owner.clone(), port)) {
            out.push(record(
                qname,
                TTL,
                RData::SRV(SRV::new(0, weight, port, item.owner.clone())),
            ));
        }
        extra.push(address(&item.owner, *ip));
    }
    out
}

/// The labels of `lower` below the zone, lower case; `None` if one is not text.
fn base_labels(zone: &Name, lower: &Name) -> Option<Vec<String>> {
    let n = usize::from(lower.num_labels()) - usize::from(zone.num_labels());
    lower
        .iter()
        .take(n)
        .map(|l| std::str::from_utf8(l).ok().map(str::to_owned))
        .collect()
}

/// CoreDNS `Services`/`Records`: what the name stands for. `Ok(vec![])` is NODATA.
fn items(snap: &Snapshot, lower: &Name, qtype: RecordType) -> Result<Vec<Item>, NameError> {
    let zone = &snap.zone;
    let labels = base_labels(zone, lower).ok_or(NameError)?;
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    if labels == ["ns", "dns"] {
        let ips = dns_service_ips(snap);
        return Ok(ips
            .into_iter()
            .map(|ip| Item {
                owner: lower.clone(),
                host: Host::Ip(ip),
                port: None,
            })
            .collect());
    }
    let mut rest = labels.as_slice();
    let Some((&kind, r)) = rest.split_last() else {
        return Ok(Vec::new());
    };
    rest = r;
    if kind != "svc" && kind != "pod" {
        return Err(NameError);
    }
    let Some((&namespace, r)) = rest.split_last() else {
        return Ok(Vec::new());
    };
    rest = r;
    if !snap.namespaces.contains(namespace) {
        return Err(NameError);
    }
    let Some((&service, r)) = rest.split_last() else {
        return Ok(Vec::new());
    };
    let (endpoint, port, protocol) = match r {
        [] => (None, None, None),
        [e] => (Some(*e), None, None),
        [p, proto] => (None, Some(strip(p)), Some(strip(proto))),
        _ => return Err(NameError),
    };
    if kind == "pod" {
        return pod(lower, service);
    }
    let key: Key = (namespace.to_owned(), service.to_owned());
    let svc = snap.services.get(&key).ok_or(NameError)?;
    let svc_name = service_name(zone, &key).ok_or(NameError)?;
    let matches = |name: &str, proto: &str| {
        port.is_none_or(|p| p.eq_ignore_ascii_case(name))
            && protocol.is_none_or(|p| p.eq_ignore_ascii_case(proto))
    };
    let mut out = Vec::new();
    match &svc.kind {
        Kind::External(target) => {
            // An ExternalName has no endpoints and no ports: `endpoint.`, `_port._proto.`
            // names under it do not exist (CoreDNS `findServices`).
            if endpoint.is_some() || port.is_some() || protocol.is_some() {
                return Err(NameError);
            }
            if qtype == RecordType::SRV {
                // CoreDNS drops CNAME targets from SRV answers ("SRV for external services
                // is not yet implemented"), leaving no error: NODATA.
                return Ok(Vec::new());
            }
            out.push(Item {
                owner: svc_name,
                host: Host::Name(target.clone()),
                port: None,
            });
        }
        Kind::Headless | Kind::ClusterIp(_)
            if matches!(svc.kind, Kind::Headless) || endpoint.is_some() =>
        {
            for ep in &svc.endpoints {
                if endpoint.is_some_and(|e| !e.eq_ignore_ascii_case(&ep.host)) {
                    continue;
                }
                endpoint_items(&svc_name, ep, &matches, &mut out);
            }
        }
        Kind::ClusterIp(ips) => {
            for p in &svc.ports {
                if !matches(&p.name, &p.protocol) {
                    continue;
                }
                out.extend(ips.iter().map(|ip| Item {
                    owner: svc_name.clone(),
                    host: Host::Ip(*ip),
                    port: Some(p.port),
                }));
            }
        }
        Kind::Headless => {}
    }
    if out.is_empty() {
        // CoreDNS leaves `errNoItems` when nothing matched: a headless service without ready
        // endpoints, or an unknown port, is NXDOMAIN.
        return Err(NameError);
    }
    Ok(out)
}

fn endpoint_items(
    svc_name: &Name,
    ep: &Endpoint,
    matches: &dyn Fn(&str, &str) -> bool,
    out: &mut Vec<Item>,
) {
    let Some(owner) = name_under(&[ep.host.as_str()], svc_name) else {
        return;
    };
    if ep.ports.is_empty() {
        // CoreDNS's sentinel port -1: addresses, no SRV; it matches only an unqualified name.
        if matches("", "") {
            out.push(Item {
                owner,
                host: Host::Ip(ep.ip),
                port: None,
            });
        }
        return;
    }
    for p in &ep.ports {
        if matches(&p.name, &p.protocol) {
            out.push(Item {
                owner: owner.clone(),
                host: Host::Ip(ep.ip),
                port: Some(p.port),
            });
        }
    }
}

fn strip(label: &str) -> &str {
    label.strip_prefix('_').unwrap_or(label)
}

/// `pods insecure`: `a-b-c-d.<ns>.pod.<zone>` is the address it spells, unverified.
fn pod(lower: &Name, label: &str) -> Result<Vec<Item>, NameError> {
    let text = if label.matches('-').count() == 3 && !label.contains("--") {
        label.replace('-', ".")
    } else {
        label.replace('-', ":")
    };
    let ip: IpAddr = text.parse().map_err(|_| NameError)?;
    Ok(vec![Item {
        owner: lower.clone(),
        host: Host::Ip(ip),
        port: None,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names_parse_only_when_complete() {
        let v4 = Name::from_ascii("4.3.2.10.in-addr.arpa.").expect("name");
        assert_eq!(
            address_from_reverse(&v4),
            Some("10.2.3.4".parse().expect("ip"))
        );
        let partial = Name::from_ascii("3.2.10.in-addr.arpa.").expect("name");
        assert_eq!(address_from_reverse(&partial), None);
        let v6 = Name::from_ascii(
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.",
        )
        .expect("name");
        assert_eq!(
            address_from_reverse(&v6),
            Some("fd00::1".parse().expect("ip"))
        );
        let bad = Name::from_ascii("x.3.2.10.in-addr.arpa.").expect("name");
        assert_eq!(address_from_reverse(&bad), None);
    }
}
