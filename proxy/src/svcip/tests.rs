//! Runs the proxy in a network namespace of its own (root only, as the agent's isolated
//! runtime tests) and watches the addresses `ip` reports there.

use std::net::IpAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::INTERFACE;
use crate::{EndpointInfo, NodeConfig, PortInfo, Protocol, Proxy, ServiceInfo};

/// A network namespace for one test, deleted on drop (also when the test fails).
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("paddock-test-svcip-{tag}-{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "ip netns add {name}");
        Netns(name)
    }

    /// `ip -o addr show dev <dev>` inside the namespace (`None`: no such device).
    fn addrs(&self, dev: &str) -> Option<String> {
        let out = Command::new("ip")
            .args(["-n", &self.0, "-o", "addr", "show", "dev", dev])
            .output()
            .expect("ip");
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn has(&self, dev: &str, addr: &str) -> bool {
        self.addrs(dev)
            .is_some_and(|a| a.contains(&format!(" {addr}/")))
    }

    /// Whether the namespace holds `addr` on [`INTERFACE`] or on `lo` (kernels without the
    /// dummy link type, like this CI machine's, get the `lo` fallback).
    fn holds(&self, addr: &str) -> bool {
        self.has(INTERFACE, addr) || self.has("lo", addr)
    }

    /// Runs `body` on a thread inside the namespace, with a runtime whose every thread and
    /// child process is in it.
    fn run<F, Fut>(&self, body: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()>,
    {
        let path = format!("/run/netns/{}", self.0);
        let handle = std::thread::spawn(move || {
            let fd = std::fs::File::open(&path).expect("open netns");
            nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            let ok = Command::new("ip")
                .args(["link", "set", "lo", "up"])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "lo up");
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio")
                .block_on(body());
        });
        if let Err(panic) = handle.join() {
            std::panic::resume_unwind(panic);
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn service(name: &str, ip: &str) -> ServiceInfo {
    ServiceInfo {
        namespace: "default".into(),
        name: name.into(),
        type_: "ClusterIP".into(),
        cluster_ips: vec![ip.parse().expect("ip")],
        external_ips: Vec::new(),
        ports: vec![
            PortInfo {
                name: "http".into(),
                port: 80,
                node_port: None,
                protocol: Protocol::Tcp,
            },
            PortInfo {
                name: "dns".into(),
                port: 53,
                node_port: None,
                protocol: Protocol::Udp,
            },
        ],
        affinity: None,
        internal_local: false,
        external_local: false,
    }
}

/// Polls `check` (the proxy works in the background) for up to 20 s.
async fn eventually(what: &str, check: impl Fn() -> bool) {
    for _ in 0..400 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

fn proxy() -> Arc<Proxy> {
    let node = NodeConfig {
        node_name: "n1".into(),
        node_ips: Vec::new(),
        loopback: false,
    };
    Proxy::new(node, true)
}

#[test]
fn addresses_leave_with_their_service_and_when_the_proxy_stops() {
    let ns = Arc::new(Netns::new("stop"));
    let inner = ns.clone();
    ns.run(move || async move {
        let ns = inner;
        let proxy = proxy();
        let stop = CancellationToken::new();
        let task = tokio::spawn(proxy.clone().run(stop.clone()));
        proxy.update_service(service("a", "10.96.0.10"));
        proxy.update_service(service("b", "10.96.0.11"));
        eventually("both ClusterIPs held", || {
            ns.holds("10.96.0.10") && ns.holds("10.96.0.11")
        })
        .await;
        // Held without endpoints, but nothing listens there yet (a connect is refused); with
        // an endpoint the listener is really bound there.
        let addr: IpAddr = "10.96.0.10".parse().expect("ip");
        assert!(
            std::net::TcpListener::bind((addr, 80)).is_ok(),
            "no listener without endpoints"
        );
        proxy.set_endpoints(
            "default",
            "a",
            vec![EndpointInfo {
                ip: "10.244.0.9".parse().expect("ip"),
                ports: vec![("http".into(), Protocol::Tcp, 8080)],
                ready: true,
                serving: true,
                terminating: false,
                node_name: Some("n1".into()),
                pod_uid: None,
            }],
        );
        eventually("the proxy listens on 10.96.0.10:80", || {
            std::net::TcpListener::bind((addr, 80)).is_err()
        })
        .await;

        proxy.remove_service("default", "a");
        eventually("10.96.0.10 removed with its service", || {
            !ns.holds("10.96.0.10")
        })
        .await;
        assert!(ns.holds("10.96.0.11"), "the other service keeps its IP");

        // A changed ClusterIP gives the old one back.
        proxy.update_service(service("b", "10.96.0.12"));
        eventually("10.96.0.11 replaced by 10.96.0.12", || {
            !ns.holds("10.96.0.11") && ns.holds("10.96.0.12")
        })
        .await;

        stop.cancel();
        task.await.expect("proxy task");
        assert!(!ns.holds("10.96.0.12"), "removed on stop");
        assert_eq!(
            ns.addrs(INTERFACE),
            None,
            "the interface (when the kernel made one) is deleted on stop"
        );
        let lo = ns.addrs("lo").unwrap_or_default();
        assert!(!lo.contains("10.96."), "nothing left on lo: {lo}");
    });
}

#[test]
fn addresses_on_lo_that_the_proxy_did_not_add_stay() {
    let ns = Arc::new(Netns::new("lo"));
    let inner = ns.clone();
    ns.run(move || async move {
        let ns = inner;
        let addr: IpAddr = "10.96.0.20".parse().expect("ip");
        // Someone else's address on lo: the proxy takes it as held, never removes it.
        let ok = Command::new("ip")
            .args(["addr", "add", "10.96.0.20/32", "dev", "lo"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok);
        let placed = super::Placed {
            device: "lo",
            added: false,
        };
        assert!(!placed.owned());
        let mut held = super::Held::default();
        held.addrs.insert(addr, placed);
        held.release_all().await;
        assert!(ns.has("lo", "10.96.0.20"), "not the proxy's to remove");

        // One it added itself goes.
        let ok = Command::new("ip")
            .args(["addr", "add", "10.96.0.21/32", "dev", "lo"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok);
        let mut held = super::Held::default();
        held.addrs.insert(
            "10.96.0.21".parse().expect("ip"),
            super::Placed {
                device: "lo",
                added: true,
            },
        );
        held.release_all().await;
        assert!(!ns.has("lo", "10.96.0.21"));
    });
}

#[test]
fn a_killed_proxys_recorded_addresses_are_removed_by_the_next_one_and_no_others() {
    let ns = Arc::new(Netns::new("record"));
    let inner = ns.clone();
    ns.run(move || async move {
        use std::os::unix::fs::PermissionsExt;
        let ns = inner;
        let dir = tempfile::tempdir().expect("tempdir");
        let record = dir.path().join("service-ips");
        let ip = |s: &str| -> IpAddr { s.parse().expect("ip") };
        // Someone else's address on lo, which no proxy may take.
        let ok = Command::new("ip")
            .args(["addr", "add", "10.96.0.30/32", "dev", "lo"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok);
        let mut held = super::Held::new(Some(record.clone()));
        held.hold(ip("10.96.0.31")).await.expect("hold");
        held.hold(ip("10.96.0.32")).await.expect("hold");
        held.hold(ip("10.96.0.30")).await.expect("hold");
        let text = std::fs::read_to_string(&record).expect("record");
        assert!(
            text.contains("10.96.0.31 ") && text.contains("10.96.0.32 "),
            "{text}"
        );
        if held.addrs[&ip("10.96.0.30")].device == "lo" {
            assert!(
                !text.contains("10.96.0.30"),
                "not added by the proxy: {text}"
            );
        }
        let mode = std::fs::metadata(&record)
            .expect("record")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        // Killed: nothing is given back.
        drop(held);
        assert!(ns.holds("10.96.0.31") && ns.holds("10.96.0.32"));

        // The next run takes over what the record lists: one still needed, one not.
        let mut next = super::Held::new(Some(record.clone()));
        next.adopt_leftovers().await;
        next.release_unused(&[ip("10.96.0.32")].into_iter().collect())
            .await;
        assert!(!ns.holds("10.96.0.31"), "stale address removed");
        assert!(ns.holds("10.96.0.32"), "needed address kept");
        next.release_all().await;
        assert!(
            !ns.holds("10.96.0.32"),
            "adopted address given back on stop"
        );
        assert!(ns.has("lo", "10.96.0.30"), "someone else's address stays");
        assert!(!record.exists(), "nothing left to record");

        // A record written in another network namespace is not acted upon here.
        std::fs::write(&record, "netns 1:2\n10.96.0.30 lo\n").expect("write");
        let mut other = super::Held::new(Some(record.clone()));
        other.adopt_leftovers().await;
        other.release_all().await;
        assert!(ns.has("lo", "10.96.0.30"), "not this namespace's record");
    });
}

#[test]
fn parses_ip_addr_output() {
    let text = "5: paddock-svc    inet 10.96.0.10/32 scope global paddock-svc\\       valid_lft forever preferred_lft forever\n\
                5: paddock-svc    inet6 fd00::a/128 scope global \\       valid_lft forever preferred_lft forever\n\
                5: paddock-svc    link/ether 00:11:22:33:44:55 brd ff:ff:ff:ff:ff:ff\n";
    let want: Vec<IpAddr> = vec!["10.96.0.10".parse().unwrap(), "fd00::a".parse().unwrap()];
    assert_eq!(super::parse_addrs(text), want);
    assert!(super::parse_addrs("").is_empty());
}
