//! The `default/kubernetes` Service and its Endpoints and EndpointSlice, which every
//! Kubernetes API server keeps pointing at itself (upstream `controlplane/controller/
//! kubernetesservice` and the endpoint reconciler): ClusterIP 10.96.0.1, port 443 `https`
//! → the address and port the server really serves on. Reconciled at every start, since the
//! port can change (`--listen …:0`). Also the `kube-system/kube-dns` Service of the cluster
//! DNS (see [`ensure_cluster_dns`]).

use std::net::IpAddr;

use api::status::ApiError;
use serde_json::{Value, json};

use crate::registry::{Registry, UpdateMode, WriteOptions};

/// The field manager of these writes.
const MANAGER: &str = "kube-apiserver";

fn info(plural: &str, group: &str) -> Result<&'static api::registry::ResourceInfo, ApiError> {
    api::registry::lookup(group, "v1", plural)
        .ok_or_else(|| ApiError::internal(format!("resource {plural} is not served")))
}

/// Creates or updates `obj` (`kind` resource) so that the fields in `want` hold.
async fn ensure(
    registry: &Registry,
    plural: &str,
    group: &str,
    name: &str,
    want: Value,
) -> Result<(), ApiError> {
    ensure_in(registry, plural, group, "default", name, want).await
}

async fn ensure_in(
    registry: &Registry,
    plural: &str,
    group: &str,
    namespace: &str,
    name: &str,
    want: Value,
) -> Result<(), ApiError> {
    let info = info(plural, group)?;
    let opts = WriteOptions {
        field_manager: Some(MANAGER.into()),
        ..WriteOptions::default()
    };
    if registry.get(info, namespace, name).is_err() {
        return match registry.create(info, namespace, want.clone(), &opts).await {
            Ok(_) => Ok(()),
            Err(e) if e.reason == "AlreadyExists" => Ok(()),
            Err(e) => Err(e),
        };
    }
    registry
        .update_with_mode(info, namespace, name, UpdateMode::Main, &opts, &mut |obj| {
            let mut changed = false;
            if let (Some(o), Some(w)) = (obj.as_object_mut(), want.as_object()) {
                for (k, v) in w {
                    if k != "metadata" && o.get(k) != Some(v) {
                        o.insert(k.clone(), v.clone());
                        changed = true;
                    }
                }
            }
            Ok(changed)
        })
        .await
        .map(|_| ())
}

/// Reconciles the service, endpoints and endpoint slice for a server reachable at
/// `ip:port`.
pub async fn reconcile(registry: &Registry, ip: IpAddr, port: u16) -> Result<(), ApiError> {
    let family = if ip.is_ipv4() { "IPv4" } else { "IPv6" };
    let ip = ip.to_string();
    ensure(
        registry,
        "services",
        "",
        "kubernetes",
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"],
                     "sessionAffinity": "None",
                     "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]},
        }),
    )
    .await?;
    ensure(
        registry,
        "endpoints",
        "",
        "kubernetes",
        json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": ip}],
                         "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
        }),
    )
    .await?;
    ensure(
        registry,
        "endpointslices",
        "discovery.k8s.io",
        "kubernetes",
        json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": "kubernetes"}},
            "addressType": family,
            "endpoints": [{"addresses": [ip], "conditions": {"ready": true}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        }),
    )
    .await
}

/// The cluster DNS address every node's DNS server answers on (kubeadm's: the tenth address of
/// the default service CIDR 10.96.0.0/12), the agents' default `--cluster-dns`.
pub const CLUSTER_DNS_IP: &str = "10.96.0.10";
/// The `default/kubernetes` Service's ClusterIP (the first address of the service CIDR).
pub const KUBERNETES_SERVICE_IP: &str = "10.96.0.1";

/// Creates the `kube-system/kube-dns` Service as kubeadm's CoreDNS addon does (ClusterIP
/// [`CLUSTER_DNS_IP`], ports `dns` 53/UDP, `dns-tcp` 53/TCP and `metrics` 9153/TCP, label
/// `k8s-app: kube-dns`). It has no selector: no endpoint is ever published for it, so the
/// service proxy holds its address without listening, and each node's DNS server answers
/// there itself. An existing one is left as it is (a user may have changed it).
pub async fn ensure_cluster_dns(registry: &Registry) -> Result<(), ApiError> {
    let info = info("services", "")?;
    if registry.get(info, "kube-system", "kube-dns").is_ok() {
        return Ok(());
    }
    let port = |name: &str, port: u16, protocol: &str| json!({"name": name, "port": port, "protocol": protocol, "targetPort": port});
    ensure_in(
        registry,
        "services",
        "",
        "kube-system",
        "kube-dns",
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": "kube-system",
                         "labels": {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true",
                                    "kubernetes.io/name": "CoreDNS"},
                         "annotations": {"prometheus.io/port": "9153", "prometheus.io/scrape": "true"}},
            "spec": {"type": "ClusterIP", "clusterIP": CLUSTER_DNS_IP, "clusterIPs": [CLUSTER_DNS_IP],
                     "ports": [port("dns", 53, "UDP"), port("dns-tcp", 53, "TCP"),
                               port("metrics", 9153, "TCP")]},
        }),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn created_then_follows_the_port() {
        let registry = Registry::new(store::Store::memory());
        crate::bootstrap(&registry).await.unwrap();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        reconcile(&registry, ip, 6443).await.unwrap();
        let svc = registry
            .get(info("services", "").unwrap(), "default", "kubernetes")
            .unwrap();
        assert_eq!(svc["spec"]["clusterIP"], "10.96.0.1");
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], 6443);
        let ep_info = info("endpoints", "").unwrap();
        let rv =
            registry.get(ep_info, "default", "kubernetes").unwrap()["metadata"]["resourceVersion"]
                .clone();
        // Same address: nothing written.
        reconcile(&registry, ip, 6443).await.unwrap();
        let ep = registry.get(ep_info, "default", "kubernetes").unwrap();
        assert_eq!(ep["metadata"]["resourceVersion"], rv);
        // New port: updated.
        reconcile(&registry, ip, 7000).await.unwrap();
        let ep = registry.get(ep_info, "default", "kubernetes").unwrap();
        assert_eq!(ep["subsets"][0]["ports"][0]["port"], 7000);
        let slice = registry
            .get(
                info("endpointslices", "discovery.k8s.io").unwrap(),
                "default",
                "kubernetes",
            )
            .unwrap();
        assert_eq!(slice["ports"][0]["port"], 7000);
        let svc = registry
            .get(info("services", "").unwrap(), "default", "kubernetes")
            .unwrap();
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], 7000);
    }

    #[tokio::test]
    async fn the_cluster_dns_service_is_created_once() {
        let registry = Registry::new(store::Store::memory());
        crate::bootstrap(&registry).await.unwrap();
        ensure_cluster_dns(&registry).await.unwrap();
        let svc_info = info("services", "").unwrap();
        let svc = registry.get(svc_info, "kube-system", "kube-dns").unwrap();
        assert_eq!(svc["spec"]["clusterIP"], "10.96.0.10");
        assert_eq!(svc["metadata"]["labels"]["k8s-app"], "kube-dns");
        assert!(svc["spec"].get("selector").is_none());
        let ports: Vec<(String, i64, String)> = svc["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_string(),
                    p["port"].as_i64().unwrap(),
                    p["protocol"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            ports,
            [
                ("dns".to_string(), 53, "UDP".to_string()),
                ("dns-tcp".to_string(), 53, "TCP".to_string()),
                ("metrics".to_string(), 9153, "TCP".to_string()),
            ]
        );
        let rv = svc["metadata"]["resourceVersion"].clone();
        // Again (a restart): left alone.
        ensure_cluster_dns(&registry).await.unwrap();
        let again = registry.get(svc_info, "kube-system", "kube-dns").unwrap();
        assert_eq!(again["metadata"]["resourceVersion"], rv);
    }
}
