use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::*;
use crate::model::{EndpointInfo, PortInfo, Protocol, ServiceInfo};
use crate::{NodeConfig, Proxy};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn svc(affinity: Option<Duration>) -> ServiceInfo {
    ServiceInfo {
        namespace: "default".into(),
        name: "web".into(),
        type_: "NodePort".into(),
        cluster_ips: vec![ip("10.96.0.10")],
        external_ips: vec![],
        ports: vec![PortInfo {
            name: "http".into(),
            port: 80,
            node_port: Some(30080),
            protocol: Protocol::Tcp,
        }],
        affinity,
        internal_local: false,
        external_local: true,
    }
}

fn ep(addr: &str, ready: bool, serving: bool, terminating: bool, node: &str) -> EndpointInfo {
    EndpointInfo {
        ip: ip(addr),
        ports: vec![("http".into(), Protocol::Tcp, 8080)],
        ready,
        serving,
        terminating,
        node_name: Some(node.into()),
        pod_uid: Some(format!("uid-{addr}")),
    }
}

fn proxy() -> std::sync::Arc<Proxy> {
    Proxy::new(
        NodeConfig {
            node_name: "n1".into(),
            node_ips: vec![ip("192.168.1.5")],
            loopback: true,
        },
        false,
    )
}

fn cluster() -> Listen {
    Listen {
        addr: "10.96.0.10:80".parse().unwrap(),
        protocol: Protocol::Tcp,
    }
}

fn node_port() -> Listen {
    Listen {
        addr: "127.0.0.1:30080".parse().unwrap(),
        protocol: Protocol::Tcp,
    }
}

fn picks(p: &Proxy, l: Listen, client: &str, n: usize) -> HashMap<SocketAddr, usize> {
    let mut counts = HashMap::new();
    for _ in 0..n {
        if let Some(e) = p.pick(l, ip(client)) {
            *counts.entry(e).or_insert(0) += 1;
        }
    }
    counts
}

fn set(p: &Proxy, endpoints: Vec<EndpointInfo>) {
    p.set_endpoints("default", "web", endpoints);
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn listeners_for_cluster_ip_node_ports_and_loopback() {
    let p = proxy();
    p.update_service(svc(None));
    let mut keys: Vec<SocketAddr> = p.table().routes.keys().map(|l| l.addr).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            sa("10.96.0.10:80"),
            sa("127.0.0.1:30080"),
            sa("192.168.1.5:30080")
        ]
    );
    let mut lb = svc(None);
    lb.type_ = "LoadBalancer".into();
    p.update_service(lb);
    assert_eq!(p.table().routes.len(), 5);
    assert_eq!(
        p.load_balancer_ingress(),
        [ip("127.0.0.1"), ip("192.168.1.5")]
    );
}

#[test]
fn spreads_evenly_over_ready_endpoints_only() {
    let p = proxy();
    p.update_service(svc(None));
    assert_eq!(
        p.pick(cluster(), ip("1.2.3.4")),
        None,
        "no endpoints: refuse"
    );
    set(
        &p,
        vec![
            ep("10.244.0.2", true, true, false, "n1"),
            ep("10.244.0.3", true, true, false, "n2"),
            ep("10.244.0.4", false, false, false, "n1"),
            // Terminating but serving: only a fallback.
            ep("10.244.0.5", false, true, true, "n1"),
        ],
    );
    let counts = picks(&p, cluster(), "1.2.3.4", 1000);
    assert_eq!(counts.len(), 2, "{counts:?}");
    assert_eq!(counts[&sa("10.244.0.2:8080")], 500);
    assert_eq!(counts[&sa("10.244.0.3:8080")], 500);
    // externalTrafficPolicy: Local on the NodePort: only this node's ready endpoint.
    let counts = picks(&p, node_port(), "1.2.3.4", 10);
    assert_eq!(counts.keys().collect::<Vec<_>>(), [&sa("10.244.0.2:8080")]);
}

#[test]
fn falls_back_to_serving_terminating_then_refuses() {
    let p = proxy();
    p.update_service(svc(None));
    set(
        &p,
        vec![
            ep("10.244.0.4", false, false, false, "n1"),
            ep("10.244.0.5", false, true, true, "n1"),
            ep("10.244.0.6", false, false, true, "n1"),
        ],
    );
    let counts = picks(&p, cluster(), "1.2.3.4", 10);
    assert_eq!(counts.keys().collect::<Vec<_>>(), [&sa("10.244.0.5:8080")]);
    set(&p, vec![ep("10.244.0.4", false, false, false, "n1")]);
    assert_eq!(p.pick(cluster(), ip("1.2.3.4")), None);
}

#[test]
fn agent_overrides_win_until_the_api_agrees() {
    let p = proxy();
    p.update_service(svc(None));
    set(
        &p,
        vec![
            ep("10.244.0.2", true, true, false, "n1"),
            ep("10.244.0.3", false, false, false, "n1"),
        ],
    );
    p.set_endpoint_state(ip("10.244.0.3"), EndpointState::Ready);
    p.set_endpoint_state(ip("10.244.0.2"), EndpointState::Draining);
    let counts = picks(&p, cluster(), "1.2.3.4", 10);
    assert_eq!(counts.keys().collect::<Vec<_>>(), [&sa("10.244.0.3:8080")]);
    // The API catches up on .3 (ready) but still lists .2: .2's override stays.
    set(
        &p,
        vec![
            ep("10.244.0.2", false, true, true, "n1"),
            ep("10.244.0.3", true, true, false, "n1"),
        ],
    );
    let counts = picks(&p, cluster(), "1.2.3.4", 10);
    assert_eq!(counts.keys().collect::<Vec<_>>(), [&sa("10.244.0.3:8080")]);
    // .3 goes not ready by the agent: nothing is ready, so the draining .2 — serving and
    // terminating in its slice — is the fallback, as kube-proxy would use it.
    p.set_endpoint_state(ip("10.244.0.3"), EndpointState::NotReady);
    assert_eq!(
        p.pick(cluster(), ip("1.2.3.4")),
        Some(sa("10.244.0.2:8080"))
    );
    // Once the API says it is not serving either, nothing is left.
    set(
        &p,
        vec![
            ep("10.244.0.2", false, false, true, "n1"),
            ep("10.244.0.3", true, true, false, "n1"),
        ],
    );
    assert_eq!(p.pick(cluster(), ip("1.2.3.4")), None);
}

#[tokio::test(start_paused = true)]
async fn client_ip_affinity_with_timeout() {
    let p = proxy();
    p.update_service(svc(Some(Duration::from_secs(60))));
    set(
        &p,
        vec![
            ep("10.244.0.2", true, true, false, "n1"),
            ep("10.244.0.3", true, true, false, "n1"),
        ],
    );
    let first = p.pick(cluster(), ip("1.2.3.4")).unwrap();
    assert_eq!(picks(&p, cluster(), "1.2.3.4", 20)[&first], 20);
    // Another client lands on the other endpoint (round-robin continues).
    let other = p.pick(cluster(), ip("5.6.7.8")).unwrap();
    assert_ne!(other, first);
    // Each connection refreshes the record: 50 s later it still sticks…
    tokio::time::advance(Duration::from_secs(50)).await;
    assert_eq!(p.pick(cluster(), ip("1.2.3.4")), Some(first));
    // …and a table rebuild keeps it.
    p.set_endpoint_state(ip("10.244.0.9"), EndpointState::Ready);
    assert_eq!(p.pick(cluster(), ip("1.2.3.4")), Some(first));
    // After the timeout the client is balanced again; with two clients alternating, the
    // next pick of a fresh round goes round-robin.
    tokio::time::advance(Duration::from_secs(61)).await;
    let counts: HashMap<SocketAddr, usize> = ["1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"]
        .iter()
        .fold(HashMap::new(), |mut m, c| {
            *m.entry(p.pick(cluster(), ip(c)).unwrap()).or_insert(0) += 1;
            m
        });
    assert_eq!(counts.len(), 2);
    // An endpoint that leaves breaks the affinity.
    set(
        &p,
        vec![
            ep(&first.ip().to_string(), false, false, false, "n1"),
            ep(&other.ip().to_string(), true, true, false, "n1"),
        ],
    );
    assert_eq!(p.pick(cluster(), ip("1.2.3.4")), Some(other));
}

#[test]
fn retry_skips_tried_endpoints() {
    let p = proxy();
    p.update_service(svc(None));
    set(
        &p,
        vec![
            ep("10.244.0.2", true, true, false, "n1"),
            ep("10.244.0.3", true, true, false, "n1"),
        ],
    );
    let table = p.table();
    let route = &table.routes[&cluster()];
    let a = sa("10.244.0.2:8080");
    let b = sa("10.244.0.3:8080");
    for _ in 0..5 {
        assert_eq!(route.pick(ip("1.2.3.4"), &[a]), Some(b));
    }
    assert_eq!(route.pick(ip("1.2.3.4"), &[a, b]), None);
}

#[test]
fn pod_overrides_separate_host_network_pods_sharing_an_address() {
    let p = proxy();
    p.update_service(svc(None));
    let host = |port: u16, uid: &str| EndpointInfo {
        ip: ip("192.168.1.5"),
        ports: vec![("http".into(), Protocol::Tcp, port)],
        ready: true,
        serving: true,
        terminating: false,
        node_name: Some("n1".into()),
        pod_uid: Some(uid.into()),
    };
    set(&p, vec![host(8080, "a"), host(8081, "b")]);
    assert_eq!(picks(&p, cluster(), "1.2.3.4", 10).len(), 2);
    p.set_endpoint_state(EndpointId::Pod("a".into()), EndpointState::Draining);
    let counts = picks(&p, cluster(), "1.2.3.4", 10);
    assert_eq!(counts.keys().collect::<Vec<_>>(), [&sa("192.168.1.5:8081")]);
    assert_eq!(p.active_pod_connections("a"), 0);
    p.clear_endpoint_state(EndpointId::Pod("a".into()));
    assert_eq!(picks(&p, cluster(), "1.2.3.4", 10).len(), 2);
}

#[test]
fn a_released_override_stays_draining_until_the_api_stops_listing_the_pod() {
    let p = proxy();
    p.update_service(svc(None));
    set(
        &p,
        vec![
            ep("10.244.0.2", true, true, false, "n1"),
            ep("10.244.0.3", true, true, false, "n1"),
        ],
    );
    let a = EndpointId::Pod("uid-10.244.0.2".into());
    // The pod is gone from the node but its slice still says ready: never routable again.
    p.release_endpoint_state(a.clone());
    let counts = picks(&p, cluster(), "1.2.3.4", 10);
    assert_eq!(counts.keys().collect::<Vec<_>>(), [&sa("10.244.0.3:8080")]);
    // The API drops it: so is the override (a new pod at the same address routes normally).
    set(&p, vec![ep("10.244.0.3", true, true, false, "n1")]);
    assert!(p.sources.lock().overrides.is_empty());
    // Released while unlisted: dropped at once.
    p.set_endpoint_state(EndpointId::Pod("never-listed".into()), EndpointState::Ready);
    p.release_endpoint_state(EndpointId::Pod("never-listed".into()));
    assert!(p.sources.lock().overrides.is_empty());
}

fn tcp(addr: &str) -> Listen {
    Listen {
        addr: sa(addr),
        protocol: Protocol::Tcp,
    }
}

/// `svc` without its NodePort, named `name`, on `cluster_ip`.
fn cluster_ip_svc(name: &str, cluster_ip: &str) -> ServiceInfo {
    ServiceInfo {
        name: name.into(),
        cluster_ips: vec![ip(cluster_ip)],
        ports: vec![PortInfo {
            node_port: None,
            ..svc(None).ports[0].clone()
        }],
        ..svc(None)
    }
}

/// Every listener's candidates, for comparing tables.
fn snapshot(t: &Table) -> std::collections::BTreeMap<Listen, (String, Vec<SocketAddr>)> {
    t.routes
        .iter()
        .map(|(l, r)| (*l, (r.service.clone(), r.endpoints.clone())))
        .collect()
}

#[test]
fn an_override_rebuilds_only_its_services_and_matches_a_full_build() {
    let p = proxy();
    for i in 0..50u8 {
        let name = format!("s{i}");
        p.update_service(cluster_ip_svc(&name, &format!("10.96.1.{i}")));
        p.set_endpoints(
            "default",
            &name,
            vec![
                ep(&format!("10.244.1.{i}"), true, true, false, "n1"),
                ep(&format!("10.244.2.{i}"), false, false, false, "n1"),
            ],
        );
    }
    // A second service on s7's address and port: s7 keeps the listener (first by name), and
    // an override of the loser's endpoint must not touch s7's route.
    p.update_service(cluster_ip_svc("zz-clash", "10.96.1.7"));
    p.set_endpoints(
        "default",
        "zz-clash",
        vec![ep("10.244.9.9", false, false, false, "n1")],
    );
    let flips: [(&str, EndpointState); 5] = [
        ("10.244.2.3", EndpointState::Ready),
        ("10.244.1.3", EndpointState::Draining),
        ("10.244.9.9", EndpointState::Ready),
        ("10.244.2.3", EndpointState::NotReady),
        ("10.244.77.77", EndpointState::Ready),
    ];
    for (addr, state) in flips {
        let before = p.table();
        p.set_endpoint_state(ip(addr), state);
        let fast = p.table();
        let full = build(p.node(), &mut p.sources.lock());
        assert_eq!(
            snapshot(&fast),
            snapshot(&full),
            "after {addr} -> {state:?}"
        );
        // Services the endpoint does not back keep their very routes.
        let other = tcp("10.96.1.20:80");
        assert!(Arc::ptr_eq(&before.routes[&other], &fast.routes[&other]));
    }
    let s3 = tcp("10.96.1.3:80");
    // Its ready endpoint draining, its other one not ready: the draining one (still serving
    // in its slice) is all that is left, as a fallback.
    assert_eq!(p.table().routes[&s3].endpoints, vec![sa("10.244.1.3:8080")]);
    let s7 = tcp("10.96.1.7:80");
    assert_eq!(p.table().routes[&s7].service, "default/s7:http");
    p.clear_endpoint_state(ip("10.244.1.3"));
    assert_eq!(p.table().routes[&s3].endpoints, vec![sa("10.244.1.3:8080")]);
    assert_eq!(
        snapshot(&p.table()),
        snapshot(&build(p.node(), &mut p.sources.lock()))
    );
}

#[test]
fn publish_not_ready_addresses_keeps_a_not_ready_pod_routable_despite_the_agent() {
    let p = proxy();
    p.update_service(svc(None));
    // publishNotReadyAddresses: `ready` true whatever the pod's readiness (`serving`).
    set(&p, vec![ep("10.244.0.2", true, true, false, "n1")]);
    let a = EndpointId::Pod("uid-10.244.0.2".into());
    // The agent sees the pod go not ready before the API: no new connections meanwhile.
    p.set_endpoint_state(a.clone(), EndpointState::NotReady);
    assert_eq!(p.pick(cluster(), ip("1.2.3.4")), None);
    // The API follows (serving false, still ready): the override goes, the pod is routable.
    set(&p, vec![ep("10.244.0.2", true, false, false, "n1")]);
    assert_eq!(
        p.pick(cluster(), ip("1.2.3.4")),
        Some(sa("10.244.0.2:8080"))
    );
    // A NotReady the API already reports adds no override.
    p.set_endpoint_state(a, EndpointState::NotReady);
    assert!(p.sources.lock().overrides.is_empty());
    assert_eq!(
        p.pick(cluster(), ip("1.2.3.4")),
        Some(sa("10.244.0.2:8080"))
    );
}
