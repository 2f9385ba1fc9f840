//! Cluster DNS from inside a pod: the `kube-system/kube-dns` Service the server creates, the
//! `/etc/resolv.conf` a `ClusterFirst` pod gets, and busybox's `nslookup` (the offline busybox
//! image of [`crate::images`]) resolving a ClusterIP Service, a headless Service's ready pod,
//! a pod name and a name outside the cluster domain that does not exist.

use crate::images::{RUNC_CLASS, WEB, import, layouts, up_with_cgroups};

const CLIENT: &str = r#"apiVersion: v1
kind: Service
metadata: {name: web-pods}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  runtimeClassName: runc
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: "example.com/demo/busybox:root", command: [/bin/sh, -c, "sleep 3600"]}
"#;

#[test]
fn pods_resolve_services_by_name_through_the_cluster_dns() {
    let work = tempfile::tempdir().expect("tempdir");
    let layout = layouts(work.path());
    let s = up_with_cgroups();
    import(&s, &layout);
    s.kubectl_in(&["apply", "-f", "-"], Some(RUNC_CLASS));
    s.kubectl_in(&["apply", "-f", "-"], Some(WEB));
    s.kubectl_in(&["apply", "-f", "-"], Some(CLIENT));

    // The cluster DNS Service, as kubeadm's.
    let dns_ip = s.kubectl(&[
        "get",
        "svc",
        "-n",
        "kube-system",
        "kube-dns",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    assert_eq!(dns_ip, "10.96.0.10");

    s.kubectl(&[
        "wait",
        "--for=condition=Available",
        "deployment/web",
        "--timeout=60s",
    ]);
    s.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "pod/client",
        "--timeout=60s",
    ]);
    let resolv = s.kubectl(&[
        "exec",
        "client",
        "--",
        "/bin/busybox",
        "cat",
        "/etc/resolv.conf",
    ]);
    let lines: Vec<&str> = resolv.lines().collect();
    assert!(lines.contains(&"nameserver 10.96.0.10"), "{resolv}");
    assert!(
        lines
            .iter()
            .any(|l| l
                .starts_with("search default.svc.cluster.local svc.cluster.local cluster.local")),
        "{resolv}"
    );
    assert!(lines.contains(&"options ndots:5"), "{resolv}");

    let lookup = |name: &str| {
        let out = s
            .kubectl_cmd(&["exec", "client", "--", "/bin/busybox", "nslookup", name])
            .output()
            .expect("kubectl exec");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let cluster_ip = s.kubectl(&["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"]);
    let answer = s.eventually("the service name resolves in the pod", || {
        let (ok, out) = lookup("web.default.svc.cluster.local");
        (ok && out.contains(&cluster_ip)).then_some(out)
    });
    assert!(
        answer.contains("10.96.0.10"),
        "answered by the cluster DNS: {answer}"
    );

    // A headless service: the ready pod's address.
    let pod_ip = s.kubectl(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[0].status.podIP}",
    ]);
    // (Once the EndpointSlice controller has published it: on a loaded machine that can come
    // after the Deployment is Available.)
    s.eventually("the headless service resolves to the ready pod", || {
        let (ok, out) = lookup("web-pods.default.svc.cluster.local");
        (ok && out.contains(&pod_ip)).then_some(())
    });
    // A pod name spells its address.
    let dashed = format!("{}.default.pod.cluster.local", pod_ip.replace('.', "-"));
    let (ok, out) = lookup(&dashed);
    assert!(ok && out.contains(&pod_ip), "{out}");
    // A pod name in a namespace without any Service resolves once the namespace exists
    // (the node watches namespaces), and not in a namespace that does not.
    let elsewhere = format!("{}.quiet.pod.cluster.local", pod_ip.replace('.', "-"));
    let (ok, out) = lookup(&elsewhere);
    assert!(!ok, "no namespace quiet yet: {out}");
    s.kubectl(&["create", "namespace", "quiet"]);
    s.eventually("a pod name in an existing namespace resolves", || {
        let (ok, out) = lookup(&elsewhere);
        (ok && out.contains(&pod_ip)).then_some(())
    });
    // A service that does not exist: NXDOMAIN, not a hang.
    let (ok, out) = lookup("nope.default.svc.cluster.local");
    assert!(!ok, "{out}");
    assert!(
        out.contains("NXDOMAIN") || out.contains("can't find"),
        "{out}"
    );

    // The kube-dns Service's metrics port answers as CoreDNS's prometheus plugin does, with
    // the queries above counted (written through kubeadm's `loadbalance` plugin, and all
    // passing the cache).
    let metrics = s.kubectl(&[
        "exec",
        "client",
        "--",
        "/bin/busybox",
        "wget",
        "-qO-",
        "http://10.96.0.10:9153/metrics",
    ]);
    for want in [
        r#"coredns_dns_requests_total{server="dns://:53",zone=".",view="",proto="udp",family="1",type="A"}"#,
        r#"coredns_dns_responses_total{server="dns://:53",zone=".",view="",rcode="NXDOMAIN",plugin="loadbalance"}"#,
        r#"coredns_dns_request_duration_seconds_bucket{le="0.00025""#,
        r#"coredns_cache_requests_total{server="dns://:53",zones=".",view=""}"#,
        r#"coredns_build_info{version="1.11.3""#,
    ] {
        assert!(metrics.contains(want), "{want} in\n{metrics}");
    }
}
