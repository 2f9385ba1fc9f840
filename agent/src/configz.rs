//! The agent's `/configz` body: its settings under the field names of the kubelet's
//! `KubeletConfiguration` (`kubelet.config.k8s.io/v1beta1`), wrapped as the kubelet's configz
//! handler wraps them (`{"kubeletconfig": {…}}`, no `kind`/`apiVersion`), durations in Go's
//! format. Only the fields that mean the same here are listed; a kubelet setting this agent
//! has no counterpart for is left out rather than invented.

use std::net::SocketAddr;

use serde_json::{Value, json};

use crate::AgentConfig;

/// The `/configz` document of an agent configured by `config`, serving on `serving`.
pub fn document(config: &AgentConfig, serving: SocketAddr) -> Value {
    let mut c = json!({
        "enableServer": true,
        "address": serving.ip().to_string(),
        "port": serving.port(),
        // No unauthenticated port, no anonymous requests, no webhook authentication.
        "readOnlyPort": 0,
        "authentication": {
            "anonymous": {"enabled": false},
            "webhook": {"enabled": false},
        },
        // The serving certificate is requested with a CSR and renewed, as with this flag.
        "serverTLSBootstrap": true,
        "nodeStatusUpdateFrequency": gofmt::duration(config.node_status_interval),
        "nodeStatusReportFrequency": gofmt::duration(crate::node::REPORT_FREQUENCY),
        "nodeLeaseDurationSeconds": crate::node::lease_duration_seconds(config.lease_interval),
        "maxPods": config.max_pods,
        "clusterDomain": config.cluster_dns.domain,
        "clusterDNS": config
            .cluster_dns
            .servers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
    });
    if !config.pod_cidr.is_empty() {
        c["podCIDR"] = json!(config.pod_cidr);
    }
    if let Some(images) = &config.images {
        let gc = images.gc_policy;
        c["imageGCHighThresholdPercent"] = json!(gc.high_threshold_percent);
        c["imageGCLowThresholdPercent"] = json!(gc.low_threshold_percent);
        c["imageMinimumGCAge"] = json!(gofmt::duration(gc.min_age));
        // Image containers get the kubelet's kubepods cgroups, written directly.
        c["cgroupDriver"] = json!("cgroupfs");
        c["cgroupsPerQOS"] = json!(true);
        c["cgroupRoot"] = json!("/");
    }
    json!({ "kubeletconfig": c })
}
