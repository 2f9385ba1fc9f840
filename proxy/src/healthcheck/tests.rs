use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;
use crate::model::health_check_node_port;
use crate::{EndpointInfo, NodeConfig, PortInfo, Protocol, ServiceInfo};

fn endpoint(ip: [u8; 4], node: &str, ready: bool) -> EndpointInfo {
    EndpointInfo {
        ip: IpAddr::from(ip),
        ports: vec![("http".into(), Protocol::Tcp, 8080)],
        ready,
        serving: ready,
        terminating: false,
        node_name: Some(node.into()),
        pod_uid: None,
    }
}

fn load_balancer() -> ServiceInfo {
    ServiceInfo {
        namespace: "default".into(),
        name: "lb".into(),
        type_: "LoadBalancer".into(),
        cluster_ips: vec![],
        external_ips: vec![],
        ports: vec![PortInfo {
            name: "http".into(),
            port: 80,
            node_port: None,
            protocol: Protocol::Tcp,
        }],
        affinity: None,
        internal_local: false,
        external_local: true,
    }
}

/// One request to 127.0.0.1:`port`; `None` while nothing listens there.
async fn get(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).await.ok()?;
    Some(out)
}

async fn eventually(port: u16, want: impl Fn(&Option<String>) -> bool) -> Option<String> {
    for _ in 0..200 {
        let r = get(port).await;
        if want(&r) {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("health check on port {port} never answered as wanted");
}

#[test]
fn response_is_kube_proxys() {
    let r = response("default", "lb", 2);
    assert_eq!(
        r,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff\r\nX-Load-Balancing-Endpoint-Weight: 2\r\nContent-Length: 113\r\nConnection: close\r\n\r\n{\n\t\"service\": {\n\t\t\"namespace\": \"default\",\n\t\t\"name\": \"lb\"\n\t},\n\t\"localEndpoints\": 2,\n\t\"serviceProxyHealthy\": true\n}"
    );
    assert!(response("default", "lb", 0).starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
}

#[test]
fn only_local_load_balancers_have_a_health_check_port() {
    let svc = |ty: &str, etp: &str| -> Service {
        serde_json::from_value(serde_json::json!({"metadata": {"name": "s"},
            "spec": {"type": ty, "externalTrafficPolicy": etp, "healthCheckNodePort": 30100}}))
        .unwrap()
    };
    assert_eq!(
        health_check_node_port(&svc("LoadBalancer", "Local")),
        Some(30100)
    );
    assert_eq!(
        health_check_node_port(&svc("LoadBalancer", "Cluster")),
        None
    );
    assert_eq!(health_check_node_port(&svc("NodePort", "Local")), None);
}

#[tokio::test]
async fn answers_200_while_the_node_has_a_ready_endpoint_and_503_otherwise() {
    let proxy = Proxy::new(
        NodeConfig {
            node_name: "n1".into(),
            node_ips: vec![],
            loopback: true,
        },
        false,
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    proxy.update_service(load_balancer());
    proxy.set_health_check_port("default", "lb", Some(port));
    // One ready endpoint here, one on another node, one here but not ready.
    proxy.set_endpoints(
        "default",
        "lb",
        vec![
            endpoint([10, 0, 0, 1], "n1", true),
            endpoint([10, 0, 0, 2], "n2", true),
            endpoint([10, 0, 0, 3], "n1", false),
        ],
    );
    let stop = CancellationToken::new();
    tokio::spawn(proxy.clone().run(stop.clone()));
    let r = eventually(port, Option::is_some).await.unwrap();
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(r.contains("X-Load-Balancing-Endpoint-Weight: 1\r\n"), "{r}");
    assert!(
        r.ends_with("\"localEndpoints\": 1,\n\t\"serviceProxyHealthy\": true\n}"),
        "{r}"
    );

    // Ready endpoints only elsewhere: this node must not get the load balancer's traffic.
    proxy.set_endpoints(
        "default",
        "lb",
        vec![
            endpoint([10, 0, 0, 2], "n2", true),
            endpoint([10, 0, 0, 3], "n1", false),
        ],
    );
    let r = get(port).await.unwrap();
    assert!(r.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{r}");
    assert!(r.contains("\"localEndpoints\": 0,"), "{r}");

    // The service is gone (or no longer Local): the port closes.
    proxy.remove_service("default", "lb");
    eventually(port, Option::is_none).await;
    stop.cancel();
}
