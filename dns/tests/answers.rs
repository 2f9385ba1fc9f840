//! The records CoreDNS's kubernetes plugin serves, asked of a real server over UDP and TCP on
//! 127.0.0.1 with queries built by hickory-proto.

mod support;

use anyhow::Result;
use dns::{Config, EndpointKey};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use support::*;

async fn with_web_and_db(up: Option<&Upstream>) -> Result<Running> {
    let s = start(up, Config::default()).await?;
    s.records.update_service(&cluster_ip(
        "web",
        &["10.96.0.20"],
        &[("http", 80, "TCP"), ("dns", 53, "UDP")],
    ));
    s.records.update_service(&headless("db", false));
    s.records.set_endpoint_slice(&endpoints(
        "db-abc",
        "db",
        &[
            ("10.1.0.1", Some("db-0"), Some(true), Some("uid-0")),
            ("10.1.0.2", Some("db-1"), Some(false), Some("uid-1")),
            ("10.1.0.3", None, None, None),
        ],
    ));
    Ok(s)
}

#[tokio::test]
async fn cluster_ip_service_has_a_record_with_ttl_30_and_nodata_for_aaaa() -> Result<()> {
    let s = with_web_and_db(None).await?;
    let a = udp(s.addr, "web.default.svc.cluster.local.", RecordType::A).await?;
    assert_eq!(a.metadata.response_code, ResponseCode::NoError);
    assert!(a.metadata.authoritative);
    assert_eq!(addresses(&a), ["10.96.0.20"]);
    assert_eq!(a.answers[0].ttl, 30);
    assert_eq!(
        a.answers.len(),
        1,
        "one record although the service has two ports"
    );
    // Case does not matter; the answer keeps the asker's case.
    let mixed = udp(s.addr, "Web.Default.SVC.cluster.local.", RecordType::A).await?;
    assert_eq!(addresses(&mixed), ["10.96.0.20"]);
    assert_eq!(
        mixed.answers[0].name.to_ascii(),
        "Web.Default.SVC.cluster.local."
    );

    let aaaa = udp(s.addr, "web.default.svc.cluster.local.", RecordType::AAAA).await?;
    assert_eq!(aaaa.metadata.response_code, ResponseCode::NoError);
    assert!(aaaa.answers.is_empty());
    let (zone, soa, ttl) = soa(&aaaa).expect("SOA in a NODATA answer");
    assert_eq!(zone, "cluster.local.");
    assert_eq!(soa.mname.to_ascii(), "ns.dns.cluster.local.");
    assert_eq!(soa.rname.to_ascii(), "hostmaster.cluster.local.");
    assert_eq!(
        (soa.refresh, soa.retry, soa.expire, soa.minimum),
        (7200, 1800, 86400, 30)
    );
    assert_eq!(ttl, 30);

    // Dual stack: AAAA from the second cluster IP.
    s.records.update_service(&cluster_ip(
        "web",
        &["10.96.0.20", "fd00::20"],
        &[("http", 80, "TCP")],
    ));
    let aaaa = udp(s.addr, "web.default.svc.cluster.local.", RecordType::AAAA).await?;
    assert_eq!(addresses(&aaaa), ["fd00::20"]);
    // A ClusterIP change shows in the next answer.
    s.records
        .update_service(&cluster_ip("web", &["10.96.0.21"], &[("http", 80, "TCP")]));
    let a = udp(s.addr, "web.default.svc.cluster.local.", RecordType::A).await?;
    assert_eq!(addresses(&a), ["10.96.0.21"]);
    Ok(())
}

#[tokio::test]
async fn headless_service_answers_ready_endpoints_and_hostnames() -> Result<()> {
    let s = with_web_and_db(None).await?;
    let a = udp(s.addr, "db.default.svc.cluster.local.", RecordType::A).await?;
    assert_eq!(
        addresses(&a),
        ["10.1.0.1", "10.1.0.3"],
        "not-ready 10.1.0.2 left out"
    );
    let host = udp(s.addr, "db-0.db.default.svc.cluster.local.", RecordType::A).await?;
    assert_eq!(addresses(&host), ["10.1.0.1"]);
    // Without a hostname, the dashed address names the endpoint.
    let dashed = udp(
        s.addr,
        "10-1-0-3.db.default.svc.cluster.local.",
        RecordType::A,
    )
    .await?;
    assert_eq!(addresses(&dashed), ["10.1.0.3"]);
    // A not-ready endpoint's hostname does not exist.
    let gone = udp(s.addr, "db-1.db.default.svc.cluster.local.", RecordType::A).await?;
    assert_eq!(gone.metadata.response_code, ResponseCode::NXDomain);

    // publishNotReadyAddresses: every endpoint.
    s.records.update_service(&headless("db", true));
    let all = udp(s.addr, "db.default.svc.cluster.local.", RecordType::A).await?;
    assert_eq!(addresses(&all), ["10.1.0.1", "10.1.0.2", "10.1.0.3"]);
    // ... and the agent's not-ready does not hide one.
    s.records
        .set_endpoint_ready(EndpointKey::Pod("uid-0".into()), false);
    let still = udp(s.addr, "db.default.svc.cluster.local.", RecordType::A).await?;
    assert_eq!(addresses(&still), ["10.1.0.1", "10.1.0.2", "10.1.0.3"]);
    Ok(())
}

#[tokio::test]
async fn readiness_from_the_agent_changes_headless_answers_at_once() -> Result<()> {
    let s = with_web_and_db(None).await?;
    s.records
        .set_endpoint_ready(EndpointKey::Ip("10.1.0.1".parse()?), false);
    let a = udp(s.addr, "db.default.svc.cluster.local.", RecordType::A).await?;
    assert_eq!(addresses(&a), ["10.1.0.3"]);
    s.records
        .set_endpoint_ready(EndpointKey::Pod("uid-1".into()), true);
    let a = udp(s.addr, "db.default.svc.cluster.local.", RecordType::A).await?;
    assert_eq!(addresses(&a), ["10.1.0.2", "10.1.0.3"]);
    s.records
        .clear_endpoint_ready(&EndpointKey::Ip("10.1.0.1".parse()?));
    s.records
        .clear_endpoint_ready(&EndpointKey::Pod("uid-1".into()));
    let a = udp(s.addr, "db.default.svc.cluster.local.", RecordType::A).await?;
    assert_eq!(addresses(&a), ["10.1.0.1", "10.1.0.3"]);

    // No ready endpoint: NXDOMAIN, as CoreDNS answers.
    s.records
        .set_endpoint_ready(EndpointKey::Ip("10.1.0.1".parse()?), false);
    s.records
        .set_endpoint_ready(EndpointKey::Ip("10.1.0.3".parse()?), false);
    let none = udp(s.addr, "db.default.svc.cluster.local.", RecordType::A).await?;
    assert_eq!(none.metadata.response_code, ResponseCode::NXDomain);
    assert!(soa(&none).is_some());

    // Readiness → answer, measured (printed, not asserted).
    let mut micros = Vec::new();
    for i in 0..200 {
        let ready = i % 2 == 0;
        let t = tokio::time::Instant::now();
        s.records
            .set_endpoint_ready(EndpointKey::Ip("10.1.0.1".parse()?), ready);
        let a = udp(s.addr, "db.default.svc.cluster.local.", RecordType::A).await?;
        micros.push(t.elapsed().as_micros());
        assert_eq!(addresses(&a).contains(&"10.1.0.1".to_string()), ready);
    }
    micros.sort_unstable();
    println!(
        "readiness change -> UDP answer: p50 {} us, p99 {} us, max {} us",
        micros[micros.len() / 2],
        micros[micros.len() * 99 / 100],
        micros[micros.len() - 1]
    );
    Ok(())
}

#[tokio::test]
async fn srv_records_for_named_ports_and_headless_endpoints() -> Result<()> {
    let s = with_web_and_db(None).await?;
    let srv = udp(
        s.addr,
        "_http._tcp.web.default.svc.cluster.local.",
        RecordType::SRV,
    )
    .await?;
    assert_eq!(srv.answers.len(), 1);
    let RData::SRV(r) = &srv.answers[0].data else {
        panic!("not SRV: {:?}", srv.answers[0]);
    };
    assert_eq!((r.priority, r.weight, r.port), (0, 100, 80));
    assert_eq!(r.target.to_ascii(), "web.default.svc.cluster.local.");
    assert_eq!(addresses(&additionals_as_answers(&srv)), ["10.96.0.20"]);

    let udp_port = udp(
        s.addr,
        "_dns._udp.web.default.svc.cluster.local.",
        RecordType::SRV,
    )
    .await?;
    assert_eq!(udp_port.answers.len(), 1);
    let wrong = udp(
        s.addr,
        "_http._udp.web.default.svc.cluster.local.",
        RecordType::SRV,
    )
    .await?;
    assert_eq!(wrong.metadata.response_code, ResponseCode::NXDomain);

    // Headless: one SRV per ready endpoint, the weight split, targets by endpoint name.
    let srv = udp(
        s.addr,
        "_pg._tcp.db.default.svc.cluster.local.",
        RecordType::SRV,
    )
    .await?;
    let mut got: Vec<(u16, u16, String)> = srv
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(s) => Some((s.weight, s.port, s.target.to_ascii())),
            _ => None,
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (
                50,
                5432,
                "10-1-0-3.db.default.svc.cluster.local.".to_string()
            ),
            (50, 5432, "db-0.db.default.svc.cluster.local.".to_string()),
        ]
    );
    assert_eq!(
        addresses(&additionals_as_answers(&srv)),
        ["10.1.0.1", "10.1.0.3"]
    );
    Ok(())
}

/// The additional section as if it were the answers (to reuse [`addresses`]).
fn additionals_as_answers(m: &hickory_proto::op::Message) -> hickory_proto::op::Message {
    let mut out = m.clone();
    out.answers = m.additionals.clone();
    out
}

#[tokio::test]
async fn ptr_records_for_service_and_endpoint_addresses() -> Result<()> {
    let up = Upstream::start(false).await?;
    let s = with_web_and_db(Some(&up)).await?;
    let svc = udp(s.addr, "20.0.96.10.in-addr.arpa.", RecordType::PTR).await?;
    let RData::PTR(t) = &svc.answers[0].data else {
        panic!("not PTR");
    };
    assert_eq!(t.0.to_ascii(), "web.default.svc.cluster.local.");
    assert!(svc.metadata.authoritative);
    let ep = udp(s.addr, "1.0.1.10.in-addr.arpa.", RecordType::PTR).await?;
    let RData::PTR(t) = &ep.answers[0].data else {
        panic!("not PTR");
    };
    assert_eq!(t.0.to_ascii(), "db-0.db.default.svc.cluster.local.");
    // An address that is none of ours falls through to the upstream resolvers.
    let other = udp(s.addr, "9.9.9.10.in-addr.arpa.", RecordType::PTR).await?;
    assert_eq!(other.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(up.hits("9.9.9.10.in-addr.arpa."), 1);
    assert_eq!(up.hits("20.0.96.10.in-addr.arpa."), 0);
    Ok(())
}

#[tokio::test]
async fn external_name_is_a_cname_followed_by_the_target_addresses() -> Result<()> {
    let up = Upstream::start(false).await?;
    let s = start(Some(&up), Config::default()).await?;
    s.records.update_service(&service(serde_json::json!({
        "metadata": {"name": "ext", "namespace": "default"},
        "spec": {"type": "ExternalName", "externalName": "www.example.org"}
    })));
    let a = udp(s.addr, "ext.default.svc.cluster.local.", RecordType::A).await?;
    let RData::CNAME(c) = &a.answers[0].data else {
        panic!("not CNAME: {:?}", a.answers);
    };
    assert_eq!(c.0.to_ascii(), "www.example.org.");
    assert_eq!(addresses(&a), [UPSTREAM_ANSWER.to_string()]);
    let cname = udp(s.addr, "ext.default.svc.cluster.local.", RecordType::CNAME).await?;
    assert_eq!(cname.answers.len(), 1);
    assert!(matches!(cname.answers[0].data, RData::CNAME(_)));
    Ok(())
}

fn external(name: &str, target: &str) -> k8s_openapi::api::core::v1::Service {
    service(serde_json::json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"type": "ExternalName", "externalName": target}
    }))
}

fn cnames(m: &hickory_proto::op::Message) -> Vec<(String, String)> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::CNAME(c) => Some((r.name.to_ascii(), c.0.to_ascii())),
            _ => None,
        })
        .collect()
}

/// What CoreDNS 1.11.3 (kubernetes plugin, `plugin/backend_lookup.go`, targets outside the
/// zone looked up through its own chain) answers for ExternalName services, per type, for
/// targets that resolve, that do not, and that are inside the cluster domain.
#[tokio::test]
async fn external_names_answer_as_coredns_for_every_type_and_target() -> Result<()> {
    let up = Upstream::start(false).await?;
    let s = with_web_and_db(Some(&up)).await?;
    for (name, target) in [
        ("ext", "www.example.org"),
        ("ext-nx", "nx-gone.example.org"),
        ("ext-in", "web.default.svc.cluster.local"),
        ("ext-in-missing", "missing.default.svc.cluster.local"),
        ("ext-self", "ext-self.default.svc.cluster.local"),
        ("ext-below", "x.ext-below.default.svc.cluster.local"),
        ("loop-a", "loop-b.default.svc.cluster.local"),
        ("loop-b", "loop-a.default.svc.cluster.local"),
    ] {
        s.records.update_service(&external(name, target));
    }
    let q = |n: &str| format!("{n}.default.svc.cluster.local.");
    let cname = |n: &str, t: &str| vec![(q(n), t.to_string())];

    // A resolvable target: the CNAME, then the upstream's answer for the target.
    let a = udp(s.addr, &q("ext"), RecordType::A).await?;
    assert_eq!(a.metadata.response_code, ResponseCode::NoError);
    assert!(a.metadata.authoritative);
    assert_eq!(cnames(&a), cname("ext", "www.example.org."));
    assert_eq!(addresses(&a), [UPSTREAM_ANSWER.to_string()]);
    // The target has no AAAA: the CNAME alone, still NOERROR.
    let aaaa = udp(s.addr, &q("ext"), RecordType::AAAA).await?;
    assert_eq!(aaaa.metadata.response_code, ResponseCode::NoError);
    assert_eq!(cnames(&aaaa), cname("ext", "www.example.org."));
    assert_eq!(aaaa.answers.len(), 1);

    // An unresolvable target: CoreDNS keeps the CNAME (it appends the CNAME and the
    // lookup's empty answer section, whatever the lookup's rcode): NOERROR, authoritative,
    // no SOA; the client's resolver then finds the target's NXDOMAIN itself.
    for qtype in [RecordType::A, RecordType::AAAA] {
        let m = udp(s.addr, &q("ext-nx"), qtype).await?;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{qtype}");
        assert!(m.metadata.authoritative, "{qtype}");
        assert_eq!(
            cnames(&m),
            cname("ext-nx", "nx-gone.example.org."),
            "{qtype}"
        );
        assert_eq!(m.answers.len(), 1, "{qtype}");
        assert!(soa(&m).is_none(), "{qtype}");
    }
    assert!(
        up.hits("nx-gone.example.org.") >= 1,
        "the target was looked up"
    );

    // A target inside the cluster domain is resolved here; the CNAME is kept only with
    // records behind it.
    let inside = udp(s.addr, &q("ext-in"), RecordType::A).await?;
    assert_eq!(
        cnames(&inside),
        cname("ext-in", "web.default.svc.cluster.local.")
    );
    assert_eq!(addresses(&inside), ["10.96.0.20"]);
    for (name, qtype) in [
        ("ext-in", RecordType::AAAA),
        ("ext-in-missing", RecordType::A),
        ("ext-self", RecordType::A),
        ("ext-below", RecordType::A),
        ("loop-a", RecordType::A),
    ] {
        let m = udp(s.addr, &q(name), qtype).await?;
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::NoError,
            "{name} {qtype}"
        );
        assert!(m.answers.is_empty(), "{name} {qtype}: {:?}", m.answers);
        assert!(soa(&m).is_some(), "{name} {qtype}: NODATA carries the SOA");
    }

    // CNAME queries answer the CNAME whatever the target.
    for (name, target) in [
        ("ext", "www.example.org."),
        ("ext-nx", "nx-gone.example.org."),
        ("ext-in-missing", "missing.default.svc.cluster.local."),
    ] {
        let m = udp(s.addr, &q(name), RecordType::CNAME).await?;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(cnames(&m), cname(name, target));
    }

    // SRV: CoreDNS drops CNAME targets from SRV answers: NODATA. TXT: the name exists: NODATA.
    for qtype in [RecordType::SRV, RecordType::TXT] {
        let m = udp(s.addr, &q("ext"), qtype).await?;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{qtype}");
        assert!(m.answers.is_empty(), "{qtype}");
        assert!(soa(&m).is_some(), "{qtype}");
    }

    // Names below an ExternalName (ports, endpoints) do not exist.
    for (name, qtype) in [
        ("_http._tcp.ext.default.svc.cluster.local.", RecordType::SRV),
        ("_http._tcp.ext.default.svc.cluster.local.", RecordType::A),
        ("x.ext.default.svc.cluster.local.", RecordType::A),
        ("x.ext.default.svc.cluster.local.", RecordType::CNAME),
    ] {
        let m = udp(s.addr, name, qtype).await?;
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::NXDomain,
            "{name} {qtype}"
        );
    }
    Ok(())
}

/// Without any upstream the target's lookup fails (SERVFAIL inside), and CoreDNS still
/// answers the CNAME.
#[tokio::test]
async fn an_external_name_keeps_its_cname_when_no_upstream_answers() -> Result<()> {
    let s = start(None, Config::default()).await?;
    s.records
        .update_service(&external("ext", "www.example.org"));
    let m = udp(s.addr, "ext.default.svc.cluster.local.", RecordType::A).await?;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(
        cnames(&m),
        [(
            "ext.default.svc.cluster.local.".to_string(),
            "www.example.org.".to_string()
        )]
    );
    assert_eq!(m.answers.len(), 1);
    Ok(())
}

#[tokio::test]
async fn pod_names_spell_their_address() -> Result<()> {
    let s = with_web_and_db(None).await?;
    let a = udp(s.addr, "10-1-2-3.default.pod.cluster.local.", RecordType::A).await?;
    assert_eq!(addresses(&a), ["10.1.2.3"]);
    let v6 = udp(
        s.addr,
        "fd00--5.default.pod.cluster.local.",
        RecordType::AAAA,
    )
    .await?;
    assert_eq!(addresses(&v6), ["fd00::5"]);
    let bad = udp(
        s.addr,
        "not-an-ip.default.pod.cluster.local.",
        RecordType::A,
    )
    .await?;
    assert_eq!(bad.metadata.response_code, ResponseCode::NXDomain);
    let no_ns = udp(s.addr, "10-1-2-3.nons.pod.cluster.local.", RecordType::A).await?;
    assert_eq!(no_ns.metadata.response_code, ResponseCode::NXDomain);
    // A namespace without services exists once told.
    s.records.set_namespace("empty", true);
    let told = udp(s.addr, "10-1-2-3.empty.pod.cluster.local.", RecordType::A).await?;
    assert_eq!(addresses(&told), ["10.1.2.3"]);
    Ok(())
}

#[tokio::test]
async fn nxdomain_and_nodata_as_coredns_answers_them() -> Result<()> {
    let s = with_web_and_db(None).await?;
    let cases: &[(&str, RecordType, ResponseCode, usize)] = &[
        (
            "missing.default.svc.cluster.local.",
            RecordType::A,
            ResponseCode::NXDomain,
            0,
        ),
        (
            "default.svc.cluster.local.",
            RecordType::A,
            ResponseCode::NoError,
            0,
        ),
        (
            "nons.svc.cluster.local.",
            RecordType::A,
            ResponseCode::NXDomain,
            0,
        ),
        (
            "svc.cluster.local.",
            RecordType::A,
            ResponseCode::NoError,
            0,
        ),
        ("cluster.local.", RecordType::A, ResponseCode::NoError, 0),
        (
            "web.default.svc.cluster.local.",
            RecordType::MX,
            ResponseCode::NoError,
            0,
        ),
        (
            "web.default.svc.cluster.local.",
            RecordType::TXT,
            ResponseCode::NoError,
            0,
        ),
        (
            "missing.default.svc.cluster.local.",
            RecordType::MX,
            ResponseCode::NXDomain,
            0,
        ),
        (
            "x.y.cluster.local.",
            RecordType::A,
            ResponseCode::NXDomain,
            0,
        ),
        (
            "a.b.c.web.default.svc.cluster.local.",
            RecordType::A,
            ResponseCode::NXDomain,
            0,
        ),
        (
            "_x._tcp.web.default.svc.cluster.local.",
            RecordType::A,
            ResponseCode::NXDomain,
            0,
        ),
        ("cluster.local.", RecordType::SOA, ResponseCode::NoError, 1),
        (
            "dns-version.cluster.local.",
            RecordType::TXT,
            ResponseCode::NoError,
            1,
        ),
    ];
    for (name, qtype, rcode, answers) in cases {
        let m = udp(s.addr, name, *qtype).await?;
        assert_eq!(m.metadata.response_code, *rcode, "{name} {qtype}");
        assert_eq!(m.answers.len(), *answers, "{name} {qtype}: {:?}", m.answers);
        assert!(m.metadata.authoritative, "{name} {qtype}");
        if *answers == 0 {
            assert!(
                soa(&m).is_some(),
                "{name} {qtype}: SOA in the authority section"
            );
        }
    }
    Ok(())
}

#[tokio::test]
async fn names_outside_the_cluster_go_upstream_and_are_cached() -> Result<()> {
    let up = Upstream::start(false).await?;
    let s = start(Some(&up), Config::default()).await?;
    let a = udp(s.addr, "host1.example.org.", RecordType::A).await?;
    assert_eq!(addresses(&a), [UPSTREAM_ANSWER.to_string()]);
    assert!(!a.metadata.authoritative);
    assert!(a.metadata.recursion_available);
    assert!(
        a.answers[0].ttl <= 30,
        "TTL capped at 30 s: {}",
        a.answers[0].ttl
    );
    let again = udp(s.addr, "host1.example.org.", RecordType::A).await?;
    assert_eq!(addresses(&again), [UPSTREAM_ANSWER.to_string()]);
    assert_eq!(
        up.hits("host1.example.org."),
        1,
        "the second answer came from the cache"
    );
    let nx = udp(s.addr, "nx1.example.org.", RecordType::A).await?;
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    let (zone, _, _) = soa(&nx).expect("the upstream's SOA");
    assert_eq!(zone, "example.org.");
    Ok(())
}

#[tokio::test]
async fn tcp_answers_like_udp_and_keeps_the_connection() -> Result<()> {
    let s = with_web_and_db(None).await?;
    let a = tcp(s.addr, "web.default.svc.cluster.local.", RecordType::A).await?;
    assert_eq!(addresses(&a), ["10.96.0.20"]);
    let mut conn = tokio::net::TcpStream::connect(s.addr).await?;
    for name in [
        "db.default.svc.cluster.local.",
        "web.default.svc.cluster.local.",
    ] {
        let (id, bytes) = query(name, RecordType::A, None)?;
        tcp_send(&mut conn, &bytes).await?;
        let m = tcp_recv(&mut conn).await?;
        assert_eq!(m.metadata.id, id);
        assert!(!addresses(&m).is_empty());
    }
    Ok(())
}

/// The cache, forward and proxy families as CoreDNS 1.11.3 exposes them, counted over real
/// queries: every query passes the cache, cluster answers are never kept, forwarded ones
/// are; an ExternalName's target lookup is a query of its own.
#[tokio::test]
async fn cache_and_forward_metrics_count_as_coredns_does() -> Result<()> {
    let up = Upstream::start(false).await?;
    let s = with_web_and_db(Some(&up)).await?;
    s.records
        .update_service(&external("ext", "host2.example.org"));
    for _ in 0..2 {
        udp(s.addr, "web.default.svc.cluster.local.", RecordType::A).await?;
        udp(s.addr, "host1.example.org.", RecordType::A).await?;
    }
    let nx = udp(s.addr, "nx3.example.org.", RecordType::A).await?;
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    let again = udp(s.addr, "nx3.example.org.", RecordType::A).await?;
    assert!(
        again.metadata.authoritative,
        "a cached answer is marked authoritative"
    );
    udp(s.addr, "ext.default.svc.cluster.local.", RecordType::A).await?;
    assert_eq!(up.hits("host1.example.org."), 1);
    assert_eq!(up.hits("nx3.example.org."), 1);
    let text = s.metrics.encode();
    let to = up.addr.to_string();
    // Requests: web x2, host1 x2, nx3 x2, ext and its target host2: 8. Hits: host1 and nx3
    // once each.
    for line in [
        r#"coredns_cache_requests_total{server="dns://:53",zones=".",view=""} 8"#.to_string(),
        r#"coredns_cache_misses_total{server="dns://:53",zones=".",view=""} 6"#.to_string(),
        r#"coredns_cache_hits_total{server="dns://:53",type="success",zones=".",view=""} 1"#.to_string(),
        r#"coredns_cache_hits_total{server="dns://:53",type="denial",zones=".",view=""} 1"#.to_string(),
        r#"coredns_cache_entries{server="dns://:53",type="success",zones=".",view=""} 2"#.to_string(),
        r#"coredns_cache_entries{server="dns://:53",type="denial",zones=".",view=""} 1"#.to_string(),
        format!(r#"coredns_proxy_request_duration_seconds_count{{proxy_name="forward",to="{to}",rcode="NOERROR"}} 2"#),
        format!(r#"coredns_proxy_request_duration_seconds_count{{proxy_name="forward",to="{to}",rcode="NXDOMAIN"}} 1"#),
        format!(r#"coredns_proxy_conn_cache_misses_total{{proxy_name="forward",to="{to}",proto="udp"}} 3"#),
        "coredns_forward_max_concurrent_rejects_total 0".to_string(),
        "coredns_forward_healthcheck_broken_total 0".to_string(),
        r#"coredns_build_info{version="1.11.3","#.to_string(),
        r#"coredns_dns_requests_total{server="dns://:53",zone=".",view="",proto="udp",family="1",type="A"} 8"#.to_string(),
        r#"coredns_dns_responses_total{server="dns://:53",zone=".",view="",rcode="NOERROR",plugin="loadbalance"} 6"#.to_string(),
        r#"coredns_dns_responses_total{server="dns://:53",zone=".",view="",rcode="NXDOMAIN",plugin="loadbalance"} 2"#.to_string(),
    ] {
        assert!(text.contains(&line), "{line}\n{text}");
    }
    Ok(())
}
