//! Server-side `Table` output (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`), exactly
//! as a Kubernetes 1.32 API server prints it: the column definitions of a resource and the cells
//! of one object's row, ported from upstream `pkg/printers/internalversion/printers.go`.
//!
//! The API server always generates tables with `Wide: true` (upstream
//! `pkg/printers/storage.TableConvertor`), so every row carries every column and kubectl hides the
//! `priority: 1` ones unless `-o wide`. Start at [`column_definitions`] and [`row_cells`]; ages
//! are formatted by [`human_duration`] (upstream `duration.HumanDuration`). Resources without an
//! upstream printer get the generic `Name`/`Created At` table of `rest.NewDefaultTableConvertor`.

use std::collections::{BTreeMap, BTreeSet};

use api::registry::ResourceInfo;
use api::selector::{LabelSelector, format_label_selector};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

/// One column of a table, as upstream declares it in `AddHandlers`.
struct Column {
    name: &'static str,
    ty: &'static str,
    format: &'static str,
    description: &'static str,
    priority: i32,
}

/// A priority-0 column without a format.
const fn col(name: &'static str, ty: &'static str, description: &'static str) -> Column {
    Column {
        name,
        ty,
        format: "",
        description,
        priority: 0,
    }
}

/// A `-o wide` (priority 1) column.
const fn wide(name: &'static str, ty: &'static str, description: &'static str) -> Column {
    Column {
        name,
        ty,
        format: "",
        description,
        priority: 1,
    }
}

// Descriptions: the swagger docs upstream takes them from (`metav1.ObjectMeta{}.SwaggerDoc()`,
// `extensionsv1beta1.ReplicaSetSpec{}.SwaggerDoc()`, ...), verbatim.
const NAME_DOC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const CREATED_DOC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const CONTAINERS_DOC: &str = "Names of each container in the template.";
const IMAGES_DOC: &str = "Images referenced by each container in the template.";

/// The `Name` column every printer starts with.
const NAME: Column = Column {
    name: "Name",
    ty: "string",
    format: "name",
    description: NAME_DOC,
    priority: 0,
};
/// The `Age` column.
const AGE: Column = col("Age", "string", CREATED_DOC);

const POD_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Ready",
        "string",
        "The aggregate readiness state of this pod for accepting traffic.",
    ),
    col(
        "Status",
        "string",
        "The aggregate status of the containers in this pod.",
    ),
    col(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE,
    wide(
        "IP",
        "string",
        "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
    ),
    wide(
        "Node",
        "string",
        "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename",
    ),
    wide(
        "Nominated Node",
        "string",
        "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.",
    ),
    wide(
        "Readiness Gates",
        "string",
        "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates",
    ),
];

const DEPLOYMENT_COLUMNS: &[Column] = &[
    NAME,
    col("Ready", "string", "Number of the pod with ready state"),
    col(
        "Up-to-date",
        "string",
        "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
    ),
    col(
        "Available",
        "string",
        "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
    ),
    AGE,
    wide("Containers", "string", CONTAINERS_DOC),
    wide("Images", "string", IMAGES_DOC),
    wide(
        "Selector",
        "string",
        "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
    ),
];

const REPLICASET_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Desired",
        "integer",
        "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller",
    ),
    col(
        "Current",
        "integer",
        "Replicas is the most recently oberved number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller",
    ),
    col(
        "Ready",
        "integer",
        "The number of ready replicas for this replica set.",
    ),
    AGE,
    wide("Containers", "string", CONTAINERS_DOC),
    wide("Images", "string", IMAGES_DOC),
    wide(
        "Selector",
        "string",
        "Selector is a label query over pods that should match the replica count. If the selector is empty, it is defaulted to the labels present on the pod template. Label keys and values that must match in order to be controlled by this replica set. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
    ),
];

const SERVICE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Type",
        "string",
        "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. \"ClusterIP\" allocates a cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is \"None\", no virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual IP. \"NodePort\" builds on ClusterIP and allocates a port on every node which routes to the same endpoints as the clusterIP. \"LoadBalancer\" builds on NodePort and creates an external load-balancer (if supported in the current cloud) which routes to the same endpoints as the clusterIP. \"ExternalName\" aliases this service to the specified externalName. Several other fields do not apply to ExternalName services. More info: https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types",
    ),
    col(
        "Cluster-IP",
        "string",
        "clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName (which requires this field to be blank) or the type field is being changed from ExternalName (in which case this field may optionally be specified, as describe above).  Valid values are \"None\", empty string (\"\"), or a valid IP address. Setting this to \"None\" makes a \"headless service\" (no virtual IP), which is useful when direct endpoint connections are preferred and proxying is not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type ExternalName, creation will fail. This field will be wiped when updating a Service to type ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies",
    ),
    col(
        "External-IP",
        "string",
        "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that traffic arrives at a node with this IP.  A common example is external load-balancers that are not part of the Kubernetes system.",
    ),
    col(
        "Port(s)",
        "string",
        "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies",
    ),
    AGE,
    wide(
        "Selector",
        "string",
        "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/",
    ),
];

const ENDPOINTS_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Endpoints",
        "string",
        "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service.",
    ),
    AGE,
];

const ENDPOINTSLICE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "AddressType",
        "string",
        "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice must be the same type. This field is immutable after creation. The following address types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name.",
    ),
    col(
        "Ports",
        "string",
        "ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have a unique name. When ports is empty, it indicates that there are no defined ports. When a port is defined with a nil port value, it indicates \"all ports\". Each slice may include a maximum of 100 ports.",
    ),
    col(
        "Endpoints",
        "string",
        "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 endpoints.",
    ),
    AGE,
];

const NODE_ADDRESSES_DOC: &str = "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).";

const NODE_COLUMNS: &[Column] = &[
    NAME,
    col("Status", "string", "The status of the node"),
    col("Roles", "string", "The roles of the node"),
    AGE,
    col("Version", "string", "Kubelet Version reported by the node."),
    wide("Internal-IP", "string", NODE_ADDRESSES_DOC),
    wide("External-IP", "string", NODE_ADDRESSES_DOC),
    wide(
        "OS-Image",
        "string",
        "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
    ),
    wide(
        "Kernel-Version",
        "string",
        "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
    ),
    wide(
        "Container-Runtime",
        "string",
        "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
    ),
];

const EVENT_COLUMNS: &[Column] = &[
    col(
        "Last Seen",
        "string",
        "The time at which the most recent occurrence of this event was recorded.",
    ),
    col(
        "Type",
        "string",
        "Type of this event (Normal, Warning), new types could be added in the future",
    ),
    col(
        "Reason",
        "string",
        "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
    ),
    col("Object", "string", "The object that this event is about."),
    wide(
        "Subobject",
        "string",
        "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.",
    ),
    wide(
        "Source",
        "string",
        "The component reporting this event. Should be a short machine understandable string.",
    ),
    col(
        "Message",
        "string",
        "A human-readable description of the status of this operation.",
    ),
    wide(
        "First Seen",
        "string",
        "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
    ),
    wide(
        "Count",
        "string",
        "The number of times this event has occurred.",
    ),
    Column {
        name: "Name",
        ty: "string",
        format: "name",
        description: NAME_DOC,
        priority: 1,
    },
];

const NAMESPACE_COLUMNS: &[Column] = &[
    NAME,
    col("Status", "string", "The status of the namespace"),
    AGE,
];

const CONFIGMAP_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Data",
        "string",
        "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.",
    ),
    AGE,
];

const SECRET_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Type",
        "string",
        "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types",
    ),
    col(
        "Data",
        "string",
        "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4",
    ),
    AGE,
];

const LEASE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Holder",
        "string",
        "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.",
    ),
    AGE,
];

/// Upstream's printer takes these from the certificates/v1beta1 types' docs.
const CSR_COLUMNS: &[Column] = &[
    NAME,
    AGE,
    col(
        "SignerName",
        "string",
        "Requested signer for the request. It is a qualified name in the form: `scope-hostname.io/name`. If empty, it will be defaulted:\n 1. If it's a kubelet client certificate, it is assigned\n    \"kubernetes.io/kube-apiserver-client-kubelet\".\n 2. If it's a kubelet serving certificate, it is assigned\n    \"kubernetes.io/kubelet-serving\".\n 3. Otherwise, it is assigned \"kubernetes.io/legacy-unknown\".\nDistribution of trust for signers happens out of band. You can select on this field using `spec.signerName`.",
    ),
    col("Requestor", "string", "Base64-encoded PKCS#10 CSR data"),
    col(
        "RequestedDuration",
        "string",
        "expirationSeconds is the requested duration of validity of the issued certificate. The certificate signer may issue a certificate with a different validity duration so a client must check the delta between the notBefore and and notAfter fields in the issued certificate to determine the actual duration.\n\nThe v1.22+ in-tree implementations of the well-known Kubernetes signers will honor this field as long as the requested duration is not greater than the maximum duration they will honor per the --cluster-signing-duration CLI flag to the Kubernetes controller manager.\n\nCertificate signers may not honor this field for various reasons:\n\n  1. Old signer that is unaware of the field (such as the in-tree\n     implementations prior to v1.22)\n  2. Signer whose configured maximum is shorter than the requested duration\n  3. Signer whose configured minimum is longer than the requested duration\n\nThe minimum valid value for expirationSeconds is 600, i.e. 10 minutes.",
    ),
    col(
        "Condition",
        "string",
        "Conditions applied to the request, such as approval or denial.",
    ),
];

/// The table of resources without an upstream printer (`rest.NewDefaultTableConvertor`).
const DEFAULT_COLUMNS: &[Column] = &[NAME, col("Created At", "date", CREATED_DOC)];

/// The printers paddock has, one per resource with an upstream printer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pod,
    Deployment,
    ReplicaSet,
    Service,
    Endpoints,
    EndpointSlice,
    Node,
    Event,
    Namespace,
    ConfigMap,
    Secret,
    Lease,
    CertificateSigningRequest,
    Default,
}

impl Kind {
    fn of(info: &ResourceInfo) -> Kind {
        match (info.group, info.plural) {
            ("", "pods") => Kind::Pod,
            ("apps", "deployments") => Kind::Deployment,
            ("apps", "replicasets") => Kind::ReplicaSet,
            ("", "services") => Kind::Service,
            ("", "endpoints") => Kind::Endpoints,
            ("discovery.k8s.io", "endpointslices") => Kind::EndpointSlice,
            ("", "nodes") => Kind::Node,
            // events.k8s.io/v1 Events are printed by the same printer upstream (converted to core).
            ("", "events") => Kind::Event,
            ("", "namespaces") => Kind::Namespace,
            ("", "configmaps") => Kind::ConfigMap,
            ("", "secrets") => Kind::Secret,
            ("coordination.k8s.io", "leases") => Kind::Lease,
            ("certificates.k8s.io", "certificatesigningrequests") => {
                Kind::CertificateSigningRequest
            }
            _ => Kind::Default,
        }
    }

    fn columns(self) -> &'static [Column] {
        match self {
            Kind::Pod => POD_COLUMNS,
            Kind::Deployment => DEPLOYMENT_COLUMNS,
            Kind::ReplicaSet => REPLICASET_COLUMNS,
            Kind::Service => SERVICE_COLUMNS,
            Kind::Endpoints => ENDPOINTS_COLUMNS,
            Kind::EndpointSlice => ENDPOINTSLICE_COLUMNS,
            Kind::Node => NODE_COLUMNS,
            Kind::Event => EVENT_COLUMNS,
            Kind::Namespace => NAMESPACE_COLUMNS,
            Kind::ConfigMap => CONFIGMAP_COLUMNS,
            Kind::Secret => SECRET_COLUMNS,
            Kind::Lease => LEASE_COLUMNS,
            Kind::CertificateSigningRequest => CSR_COLUMNS,
            Kind::Default => DEFAULT_COLUMNS,
        }
    }
}

/// The `columnDefinitions` of a Table of `info`'s objects:
/// `[{"name","type","format","description","priority"}]`, all columns (wide ones have
/// `priority: 1`), in upstream order.
pub fn column_definitions(info: &ResourceInfo) -> Vec<Value> {
    Kind::of(info)
        .columns()
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "type": c.ty,
                "format": c.format,
                "description": c.description,
                "priority": c.priority,
            })
        })
        .collect()
}

/// The `cells` of `obj`'s row, one per entry of [`column_definitions`], computed as upstream's
/// printer does with `Wide: true`; ages are relative to `now`. Missing fields read as Go zero
/// values (as the internal types upstream prints would hold them).
pub fn row_cells(info: &ResourceInfo, obj: &Value, now: Timestamp) -> Vec<Value> {
    let p = Rows { now };
    match Kind::of(info) {
        Kind::Pod => p.pod(obj),
        Kind::Deployment => p.deployment(obj),
        Kind::ReplicaSet => p.replica_set(obj),
        Kind::Service => p.service(obj),
        Kind::Endpoints => p.endpoints(obj),
        Kind::EndpointSlice => p.endpoint_slice(obj),
        Kind::Node => p.node(obj),
        Kind::Event => p.event(obj),
        Kind::Namespace => vec![
            name(obj).into(),
            s(&obj["status"]["phase"]).into(),
            p.age(obj).into(),
        ],
        Kind::ConfigMap => {
            let n = len(&obj["data"]) + len(&obj["binaryData"]);
            vec![name(obj).into(), n.into(), p.age(obj).into()]
        }
        Kind::Secret => vec![
            name(obj).into(),
            s(&obj["type"]).into(),
            len(&obj["data"]).into(),
            p.age(obj).into(),
        ],
        Kind::Lease => vec![
            name(obj).into(),
            s(&obj["spec"]["holderIdentity"]).into(),
            p.age(obj).into(),
        ],
        Kind::CertificateSigningRequest => p.csr(obj),
        Kind::Default => {
            let created = timestamp(&obj["metadata"]["creationTimestamp"])
                .unwrap_or(GO_ZERO_TIME)
                .strftime("%Y-%m-%dT%H:%M:%SZ")
                .to_string();
            vec![name(obj).into(), created.into()]
        }
    }
}

/// The `conditions` of `obj`'s row: upstream marks succeeded and failed pods `Completed`
/// (`podSuccessConditions`/`podFailedConditions`); every other row has none (omit the field).
pub fn row_conditions(info: &ResourceInfo, obj: &Value) -> Vec<Value> {
    if Kind::of(info) != Kind::Pod {
        return Vec::new();
    }
    let (reason, message) = match s(&obj["status"]["phase"]) {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return Vec::new(),
    };
    vec![json!({"type": "Completed", "status": "True", "reason": reason, "message": message})]
}

/// Upstream `duration.HumanDuration`: a succinct, 2–3 significant figure rendering of
/// `nanos` nanoseconds (`5s`, `3m2s`, `15m`, `5h3m`, `2d3h`, `45d`, `2y10d`, `9y`); `0s` for up
/// to 2 s in the future (clock skew) and `<invalid>` beyond.
pub fn human_duration(nanos: i128) -> String {
    const SECOND: i128 = 1_000_000_000;
    const MINUTE: i128 = 60 * SECOND;
    const HOUR: i128 = 60 * MINUTE;
    // Go truncates toward zero, as Rust's integer division does.
    let seconds = nanos / SECOND;
    if seconds < -1 {
        return "<invalid>".into();
    } else if seconds < 0 {
        return "0s".into();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = nanos / MINUTE;
    if minutes < 10 {
        let s = seconds % 60;
        if s == 0 {
            return format!("{minutes}m");
        }
        return format!("{minutes}m{s}s");
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = nanos / HOUR;
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            return format!("{hours}h");
        }
        format!("{hours}h{m}m")
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            return format!("{}d", hours / 24);
        }
        format!("{}d{}h", hours / 24, h)
    } else if hours < 24 * 365 * 2 {
        format!("{}d", hours / 24)
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            return format!("{}y", hours / 24 / 365);
        }
        format!("{}y{}d", hours / 24 / 365, dy)
    } else {
        format!("{}y", hours / 24 / 365)
    }
}

/// Go's zero `time.Time` (0001-01-01T00:00:00Z), what a missing timestamp prints as.
const GO_ZERO_TIME: Timestamp = Timestamp::constant(-62_135_596_800, 0);

/// A string field, `""` when absent (Go's zero value).
fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// An integer field, 0 when absent.
fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// The elements of an array field, none when absent.
fn items(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// Number of entries of a map field.
fn len(v: &Value) -> i64 {
    v.as_object().map_or(0, |m| m.len() as i64)
}

fn name(obj: &Value) -> &str {
    s(&obj["metadata"]["name"])
}

/// A `metav1.Time`/`MicroTime`; `None` is Go's zero time (absent, null or unparsable).
fn timestamp(v: &Value) -> Option<Timestamp> {
    v.as_str().and_then(|t| t.parse::<Timestamp>().ok())
}

/// A label map as `labels.FormatLabels` prints it: `k=v` sorted by key, `<none>` when empty.
fn format_labels(v: &Value) -> String {
    let set: BTreeMap<&str, &str> = v
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.as_str(), s(v))).collect())
        .unwrap_or_default();
    if set.is_empty() {
        return "<none>".into();
    }
    set.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `layoutContainerCells`: container names and images, comma-joined.
fn container_cells(containers: &Value) -> (String, String) {
    let list = items(containers);
    let names = list.iter().map(|c| s(&c["name"])).collect::<Vec<_>>();
    let images = list.iter().map(|c| s(&c["image"])).collect::<Vec<_>>();
    (names.join(","), images.join(","))
}

/// `listWithMoreString`: the first three, then `+ N more...`; `<unset>` when empty.
fn list_with_more(list: &[String], more: bool, count: usize, max: usize) -> String {
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", count - max);
    }
    if ret.is_empty() {
        return "<unset>".into();
    }
    ret
}

/// `net.JoinHostPort`: brackets around IPv6 hosts.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn condition_true(conditions: &Value, ty: &str) -> bool {
    items(conditions)
        .iter()
        .any(|c| s(&c["type"]) == ty && s(&c["status"]) == "True")
}

/// Row computation for one table, all ages relative to `now`.
struct Rows {
    now: Timestamp,
}

impl Rows {
    /// `translateTimestampSince`: `<unknown>` for the zero time.
    fn since(&self, t: Option<Timestamp>) -> String {
        match t {
            Some(t) => human_duration(self.now.as_nanosecond() - t.as_nanosecond()),
            None => "<unknown>".into(),
        }
    }

    /// The `Age` cell.
    fn age(&self, obj: &Value) -> String {
        self.since(timestamp(&obj["metadata"]["creationTimestamp"]))
    }

    /// Upstream `printCertificateSigningRequest`: signer, requester, requested duration and
    /// `extractCSRStatus` (Denied over Approved over Pending, then `,Failed`, `,Issued`).
    fn csr(&self, csr: &Value) -> Vec<Value> {
        let spec = &csr["spec"];
        let signer = match s(&spec["signerName"]) {
            "" => "<none>",
            signer => signer,
        };
        let duration = match spec["expirationSeconds"].as_i64() {
            Some(secs) => human_duration(i128::from(secs) * 1_000_000_000),
            None => "<none>".to_string(),
        };
        let has = |t: &str| {
            items(&csr["status"]["conditions"])
                .iter()
                .any(|c| s(&c["type"]) == t)
        };
        let mut condition = if has("Denied") {
            "Denied"
        } else if has("Approved") {
            "Approved"
        } else {
            "Pending"
        }
        .to_string();
        if has("Failed") {
            condition.push_str(",Failed");
        }
        if !s(&csr["status"]["certificate"]).is_empty() {
            condition.push_str(",Issued");
        }
        vec![
            name(csr).into(),
            self.age(csr).into(),
            signer.into(),
            s(&spec["username"]).into(),
            duration.into(),
            condition.into(),
        ]
    }

    /// Upstream `printPod`: readiness, the kubectl-style status reason and restarts.
    fn pod(&self, pod: &Value) -> Vec<Value> {
        let spec = &pod["spec"];
        let status = &pod["status"];
        let mut restarts = 0i64;
        let mut restartable_init_restarts = 0i64;
        let mut total_containers = items(&spec["containers"]).len();
        let mut ready_containers = 0usize;
        let mut last_restart: Option<Timestamp> = None;
        let mut last_restartable_init_restart: Option<Timestamp> = None;

        let phase = s(&status["phase"]);
        let mut reason = match s(&status["reason"]) {
            "" => phase.to_string(),
            r => r.to_string(),
        };
        if items(&status["conditions"])
            .iter()
            .any(|c| s(&c["type"]) == "PodScheduled" && s(&c["reason"]) == "SchedulingGated")
        {
            reason = "SchedulingGated".into();
        }

        let init_containers = items(&spec["initContainers"]);
        // A sidecar (restartable init container) counts as a regular container.
        let restartable: BTreeSet<&str> = init_containers
            .iter()
            .filter(|c| s(&c["restartPolicy"]) == "Always")
            .map(|c| s(&c["name"]))
            .collect();
        total_containers += init_containers
            .iter()
            .filter(|c| s(&c["restartPolicy"]) == "Always")
            .count();

        let mut initializing = false;
        for (i, cs) in items(&status["initContainerStatuses"]).iter().enumerate() {
            let count = int(&cs["restartCount"]);
            restarts += count;
            let finished = timestamp(&cs["lastState"]["terminated"]["finishedAt"]);
            later(&mut last_restart, finished);
            let is_restartable = restartable.contains(s(&cs["name"]));
            if is_restartable {
                restartable_init_restarts += count;
                later(&mut last_restartable_init_restart, finished);
            }
            let terminated = &cs["state"]["terminated"];
            let waiting = &cs["state"]["waiting"];
            if terminated.is_object() && int(&terminated["exitCode"]) == 0 {
                continue;
            }
            if is_restartable && cs["started"].as_bool() == Some(true) {
                if cs["ready"].as_bool() == Some(true) {
                    ready_containers += 1;
                }
                continue;
            }
            reason = if terminated.is_object() {
                match s(&terminated["reason"]) {
                    "" if int(&terminated["signal"]) != 0 => {
                        format!("Init:Signal:{}", int(&terminated["signal"]))
                    }
                    "" => format!("Init:ExitCode:{}", int(&terminated["exitCode"])),
                    r => format!("Init:{r}"),
                }
            } else if waiting.is_object()
                && !s(&waiting["reason"]).is_empty()
                && s(&waiting["reason"]) != "PodInitializing"
            {
                format!("Init:{}", s(&waiting["reason"]))
            } else {
                format!("Init:{}/{}", i, init_containers.len())
            };
            initializing = true;
            break;
        }

        if !initializing || condition_true(&status["conditions"], "Initialized") {
            restarts = restartable_init_restarts;
            last_restart = last_restartable_init_restart;
            let mut has_running = false;
            for cs in items(&status["containerStatuses"]).iter().rev() {
                restarts += int(&cs["restartCount"]);
                later(
                    &mut last_restart,
                    timestamp(&cs["lastState"]["terminated"]["finishedAt"]),
                );
                let waiting = &cs["state"]["waiting"];
                let terminated = &cs["state"]["terminated"];
                if waiting.is_object() && !s(&waiting["reason"]).is_empty() {
                    reason = s(&waiting["reason"]).to_string();
                } else if terminated.is_object() && !s(&terminated["reason"]).is_empty() {
                    reason = s(&terminated["reason"]).to_string();
                } else if terminated.is_object() {
                    reason = match int(&terminated["signal"]) {
                        0 => format!("ExitCode:{}", int(&terminated["exitCode"])),
                        sig => format!("Signal:{sig}"),
                    };
                } else if cs["ready"].as_bool() == Some(true) && cs["state"]["running"].is_object()
                {
                    has_running = true;
                    ready_containers += 1;
                }
            }
            // Back to "Running" while at least one container still runs.
            if reason == "Completed" && has_running {
                reason = if condition_true(&status["conditions"], "Ready") {
                    "Running".into()
                } else {
                    "NotReady".into()
                };
            }
        }

        let deleting = !pod["metadata"]["deletionTimestamp"].is_null();
        if deleting && s(&status["reason"]) == "NodeLost" {
            reason = "Unknown".into();
        } else if deleting && phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".into();
        }

        let restarts_cell = match last_restart {
            Some(at) if restarts != 0 => format!("{restarts} ({} ago)", self.since(Some(at))),
            _ => restarts.to_string(),
        };

        // The internal PodStatus takes podIP as authoritative over podIPs (v1 conversion).
        let pod_ip = match s(&status["podIP"]) {
            "" => s(&items(&status["podIPs"]).first().unwrap_or(&Value::Null)["ip"]),
            ip => ip,
        };
        let readiness_gates = items(&spec["readinessGates"]);
        let gates_cell = if readiness_gates.is_empty() {
            "<none>".to_string()
        } else {
            let conditions = items(&status["conditions"]);
            let true_conditions = readiness_gates
                .iter()
                .filter(|gate| {
                    conditions
                        .iter()
                        .find(|c| s(&c["type"]) == s(&gate["conditionType"]))
                        .is_some_and(|c| s(&c["status"]) == "True")
                })
                .count();
            format!("{true_conditions}/{}", readiness_gates.len())
        };

        vec![
            name(pod).into(),
            format!("{ready_containers}/{total_containers}").into(),
            reason.into(),
            restarts_cell.into(),
            self.age(pod).into(),
            or_none(pod_ip).into(),
            or_none(s(&spec["nodeName"])).into(),
            or_none(s(&status["nominatedNodeName"])).into(),
            gates_cell.into(),
        ]
    }

    /// Upstream `printDeployment`.
    fn deployment(&self, obj: &Value) -> Vec<Value> {
        let (containers, images) = container_cells(&obj["spec"]["template"]["spec"]["containers"]);
        // Upstream fails the whole table on an invalid selector ("this shouldn't happen if
        // LabelSelector passed validation"); paddock prints the row with `<invalid>`.
        let selector = match LabelSelector::from_json(&obj["spec"]["selector"]) {
            Ok(sel) => sel.to_string(),
            Err(_) => "<invalid>".into(),
        };
        let status = &obj["status"];
        vec![
            name(obj).into(),
            format!(
                "{}/{}",
                int(&status["readyReplicas"]),
                replicas(&obj["spec"]["replicas"])
            )
            .into(),
            int(&status["updatedReplicas"]).into(),
            int(&status["availableReplicas"]).into(),
            self.age(obj).into(),
            containers.into(),
            images.into(),
            selector.into(),
        ]
    }

    /// Upstream `printReplicaSet`.
    fn replica_set(&self, obj: &Value) -> Vec<Value> {
        let (containers, images) = container_cells(&obj["spec"]["template"]["spec"]["containers"]);
        let status = &obj["status"];
        vec![
            name(obj).into(),
            replicas(&obj["spec"]["replicas"]).into(),
            int(&status["replicas"]).into(),
            int(&status["readyReplicas"]).into(),
            self.age(obj).into(),
            containers.into(),
            images.into(),
            format_label_selector(&obj["spec"]["selector"]).into(),
        ]
    }

    /// Upstream `printService` (wide, so load-balancer addresses are not clipped).
    fn service(&self, obj: &Value) -> Vec<Value> {
        let spec = &obj["spec"];
        // Defaulting gives every stored Service a type; an absent one prints as the default.
        let ty = match s(&spec["type"]) {
            "" => "ClusterIP",
            t => t,
        };
        let cluster_ip = match items(&spec["clusterIPs"]).first().and_then(Value::as_str) {
            Some(ip) if !ip.is_empty() => ip,
            _ => or_none(s(&spec["clusterIP"])),
        };
        let external_ips: Vec<&str> = items(&spec["externalIPs"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let external = match ty {
            "ClusterIP" | "NodePort" if !external_ips.is_empty() => external_ips.join(","),
            "ClusterIP" | "NodePort" => "<none>".into(),
            "LoadBalancer" => {
                let lb: BTreeSet<&str> = items(&obj["status"]["loadBalancer"]["ingress"])
                    .iter()
                    .filter_map(|i| match (s(&i["ip"]), s(&i["hostname"])) {
                        ("", "") => None,
                        ("", host) => Some(host),
                        (ip, _) => Some(ip),
                    })
                    .collect();
                let mut all: Vec<&str> = lb.into_iter().collect();
                if !external_ips.is_empty() {
                    all.extend(&external_ips);
                    all.join(",")
                } else if all.is_empty() {
                    "<pending>".into()
                } else {
                    all.join(",")
                }
            }
            "ExternalName" => s(&spec["externalName"]).to_string(),
            _ => "<unknown>".into(),
        };
        let ports = items(&spec["ports"])
            .iter()
            .map(|p| {
                let protocol = match s(&p["protocol"]) {
                    "" => "TCP",
                    proto => proto,
                };
                match int(&p["nodePort"]) {
                    np if np > 0 => format!("{}:{np}/{protocol}", int(&p["port"])),
                    _ => format!("{}/{protocol}", int(&p["port"])),
                }
            })
            .collect::<Vec<_>>()
            .join(",");
        vec![
            name(obj).into(),
            ty.into(),
            cluster_ip.into(),
            external.into(),
            or_none(&ports).into(),
            self.age(obj).into(),
            format_labels(&spec["selector"]).into(),
        ]
    }

    /// Upstream `printEndpoints` / `formatEndpoints` (all ports).
    fn endpoints(&self, obj: &Value) -> Vec<Value> {
        vec![
            name(obj).into(),
            format_endpoints(obj).into(),
            self.age(obj).into(),
        ]
    }

    /// Upstream `printEndpointSlice`.
    fn endpoint_slice(&self, obj: &Value) -> Vec<Value> {
        const MAX: usize = 3;
        let mut ports = Vec::new();
        let mut more = false;
        let mut count = 0;
        for port in items(&obj["ports"]) {
            if ports.len() < MAX {
                ports.push(match (port["port"].as_i64(), port["name"].as_str()) {
                    (Some(n), _) => n.to_string(),
                    (None, Some(name)) => name.to_string(),
                    (None, None) => "*".to_string(),
                });
            } else if ports.len() == MAX {
                more = true;
            }
            count += 1;
        }
        let ports = list_with_more(&ports, more, count, MAX);

        let mut addresses = Vec::new();
        let (mut more, mut count) = (false, 0);
        for endpoint in items(&obj["endpoints"]) {
            for address in items(&endpoint["addresses"]) {
                if addresses.len() < MAX {
                    addresses.push(s(address).to_string());
                } else if addresses.len() == MAX {
                    more = true;
                }
                count += 1;
            }
        }
        let endpoints = list_with_more(&addresses, more, count, MAX);
        vec![
            name(obj).into(),
            s(&obj["addressType"]).into(),
            ports.into(),
            endpoints.into(),
            self.age(obj).into(),
        ]
    }

    /// Upstream `printNode`.
    fn node(&self, obj: &Value) -> Vec<Value> {
        let status = &obj["status"];
        // The last Ready condition wins, as upstream's condition map does.
        let ready = items(&status["conditions"])
            .iter()
            .rev()
            .find(|c| s(&c["type"]) == "Ready");
        let mut states = vec![match ready {
            Some(c) if s(&c["status"]) == "True" => "Ready",
            Some(_) => "NotReady",
            None => "Unknown",
        }];
        if obj["spec"]["unschedulable"].as_bool() == Some(true) {
            states.push("SchedulingDisabled");
        }
        let mut roles = BTreeSet::new();
        if let Some(labels) = obj["metadata"]["labels"].as_object() {
            for (k, v) in labels {
                if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                    if !role.is_empty() {
                        roles.insert(role.to_string());
                    }
                } else if k == "kubernetes.io/role" && !s(v).is_empty() {
                    roles.insert(s(v).to_string());
                }
            }
        }
        let roles = roles.into_iter().collect::<Vec<_>>().join(",");
        let address = |ty: &str| {
            items(&status["addresses"])
                .iter()
                .find(|a| s(&a["type"]) == ty)
                .map_or("<none>", |a| s(&a["address"]))
                .to_string()
        };
        let info = &status["nodeInfo"];
        let unknown = |v: &Value| match s(v) {
            "" => "<unknown>".to_string(),
            v => v.to_string(),
        };
        vec![
            name(obj).into(),
            states.join(",").into(),
            or_none(&roles).into(),
            self.age(obj).into(),
            s(&info["kubeletVersion"]).into(),
            address("InternalIP").into(),
            address("ExternalIP").into(),
            unknown(&info["osImage"]).into(),
            unknown(&info["kernelVersion"]).into(),
            unknown(&info["containerRuntimeVersion"]).into(),
        ]
    }

    /// Upstream `printEvent`.
    fn event(&self, obj: &Value) -> Vec<Value> {
        let first_seen = match timestamp(&obj["firstTimestamp"]) {
            Some(t) => self.since(Some(t)),
            None => self.since(timestamp(&obj["eventTime"])),
        };
        let mut last_seen = match timestamp(&obj["lastTimestamp"]) {
            Some(t) => self.since(Some(t)),
            None => first_seen.clone(),
        };
        let mut count = int(&obj["count"]);
        if obj["series"].is_object() {
            last_seen = self.since(timestamp(&obj["series"]["lastObservedTime"]));
            count = int(&obj["series"]["count"]);
        } else if count == 0 {
            // Singleton events don't have a count set in the new API.
            count = 1;
        }
        let involved = &obj["involvedObject"];
        let kind = s(&involved["kind"]).to_lowercase();
        let target = match s(&involved["name"]) {
            "" => kind,
            n => format!("{kind}/{n}"),
        };
        let component = first_non_empty(
            s(&obj["source"]["component"]),
            s(&obj["reportingComponent"]),
        );
        let instance = first_non_empty(s(&obj["source"]["host"]), s(&obj["reportingInstance"]));
        let source = if instance.is_empty() {
            component.to_string()
        } else {
            format!("{component}, {instance}")
        };
        vec![
            last_seen.into(),
            s(&obj["type"]).into(),
            s(&obj["reason"]).into(),
            target.into(),
            s(&involved["fieldPath"]).into(),
            source.into(),
            s(&obj["message"]).trim().into(),
            first_seen.into(),
            count.into(),
            name(obj).into(),
        ]
    }
}

/// `t` if it is later than the current `latest` (upstream's `lastRestartDate.Before(&t)`).
fn later(latest: &mut Option<Timestamp>, t: Option<Timestamp>) {
    if let Some(t) = t
        && latest.is_none_or(|l| l < t)
    {
        *latest = Some(t);
    }
}

/// `<none>` for an empty string.
fn or_none(v: &str) -> &str {
    if v.is_empty() { "<none>" } else { v }
}

fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() { b } else { a }
}

/// `spec.replicas`, which defaulting sets to 1 when absent.
fn replicas(v: &Value) -> i64 {
    v.as_i64().unwrap_or(1)
}

/// Upstream `formatEndpoints` with all ports: `ip:port` per address and port, the first three
/// then `+ N more...`; `<none>` without subsets.
fn format_endpoints(obj: &Value) -> String {
    const MAX: usize = 3;
    let subsets = items(&obj["subsets"]);
    if subsets.is_empty() {
        return "<none>".into();
    }
    let mut list = Vec::new();
    let mut more = false;
    let mut count = 0;
    for subset in subsets {
        let addresses = items(&subset["addresses"]);
        let ports = items(&subset["ports"]);
        if ports.is_empty() {
            // Headless services may have no ports.
            count += addresses.len();
            for address in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(s(&address["ip"]).to_string());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for address in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(join_host_port(s(&address["ip"]), int(&port["port"])));
            }
        }
    }
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", count - MAX);
    }
    ret
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::registry::lookup;

    fn now() -> Timestamp {
        "2024-05-01T12:00:00Z".parse().unwrap()
    }

    fn cells(group: &str, plural: &str, obj: Value) -> Vec<Value> {
        let info = lookup(group, "v1", plural).unwrap();
        let cells = row_cells(info, &obj, now());
        assert_eq!(
            cells.len(),
            column_definitions(info).len(),
            "{plural}: one cell per column"
        );
        cells
    }

    fn names(group: &str, plural: &str) -> Vec<(String, i64)> {
        column_definitions(lookup(group, "v1", plural).unwrap())
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_string(),
                    c["priority"].as_i64().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn human_duration_matches_upstream() {
        let s = 1_000_000_000i128;
        let cases = [
            (-3 * s, "<invalid>"),
            (-2 * s, "<invalid>"),
            (-s - s / 2, "0s"),
            (0, "0s"),
            (5 * s, "5s"),
            (119 * s, "119s"),
            (120 * s, "2m"),
            (182 * s, "3m2s"),
            (599 * s, "9m59s"),
            (600 * s, "10m"),
            (179 * 60 * s, "179m"),
            (180 * 60 * s, "3h"),
            ((5 * 3600 + 3 * 60) * s, "5h3m"),
            (8 * 3600 * s, "8h"),
            (47 * 3600 * s, "47h"),
            (48 * 3600 * s, "2d"),
            (51 * 3600 * s, "2d3h"),
            (8 * 24 * 3600 * s, "8d"),
            (729 * 24 * 3600 * s, "729d"),
            (730 * 24 * 3600 * s, "2y"),
            (740 * 24 * 3600 * s, "2y10d"),
            (8 * 365 * 24 * 3600 * s, "8y"),
        ];
        for (d, want) in cases {
            assert_eq!(human_duration(d), want, "{d}ns");
        }
    }

    #[test]
    fn pod_columns_and_running_pod() {
        assert_eq!(
            names("", "pods"),
            [
                ("Name", 0),
                ("Ready", 0),
                ("Status", 0),
                ("Restarts", 0),
                ("Age", 0),
                ("IP", 1),
                ("Node", 1),
                ("Nominated Node", 1),
                ("Readiness Gates", 1)
            ]
            .map(|(n, p)| (n.to_string(), p))
        );
        let defs = column_definitions(lookup("", "v1", "pods").unwrap());
        assert_eq!(defs[0]["format"], "name");
        assert_eq!(defs[1]["format"], "");
        assert_eq!(defs[3]["type"], "string");
        assert!(
            defs[4]["description"]
                .as_str()
                .unwrap()
                .starts_with("CreationTimestamp")
        );

        let pod = json!({
            "metadata": {"name": "web-7d4b9c-x2x", "creationTimestamp": "2024-05-01T11:55:00Z"},
            "spec": {"nodeName": "node1", "containers": [{"name": "web"}, {"name": "log"}]},
            "status": {
                "phase": "Running",
                "podIP": "10.244.0.5",
                "podIPs": [{"ip": "10.244.0.5"}],
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [
                    {"name": "web", "ready": true, "restartCount": 3, "state": {"running": {}},
                     "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:58:00Z"}}},
                    {"name": "log", "ready": true, "restartCount": 0, "state": {"running": {}}}
                ]
            }
        });
        assert_eq!(
            cells("", "pods", pod),
            [
                json!("web-7d4b9c-x2x"),
                json!("2/2"),
                json!("Running"),
                json!("3 (2m ago)"),
                json!("5m"),
                json!("10.244.0.5"),
                json!("node1"),
                json!("<none>"),
                json!("<none>")
            ]
        );
    }

    #[test]
    fn pod_status_reasons() {
        let base = |status: Value| {
            json!({
                "metadata": {"name": "p", "creationTimestamp": "2024-05-01T10:00:00Z"},
                "spec": {"containers": [{"name": "c"}],
                         "initContainers": [{"name": "init"}],
                         "readinessGates": [{"conditionType": "example.com/gate"}]},
                "status": status
            })
        };
        // Running the first init container.
        let c = cells(
            "",
            "pods",
            base(json!({"phase": "Pending",
                "initContainerStatuses": [{"name": "init", "restartCount": 0, "state": {"running": {}}}],
                "containerStatuses": [{"name": "c", "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}]})),
        );
        assert_eq!(c[1], "0/1");
        assert_eq!(c[2], "Init:0/1");
        assert_eq!(c[3], "0");
        assert_eq!(c[4], "120m");
        assert_eq!(c[5], "<none>");
        assert_eq!(c[8], "0/1");
        // A crash-looping init container.
        let c = cells(
            "",
            "pods",
            base(json!({"phase": "Pending",
                "initContainerStatuses": [{"name": "init", "restartCount": 2,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:59:30Z"}}}]})),
        );
        assert_eq!(c[2], "Init:CrashLoopBackOff");
        assert_eq!(c[3], "2 (30s ago)");
        let c = cells(
            "",
            "pods",
            base(json!({"phase": "Pending",
                "initContainerStatuses": [{"name": "init", "state": {"terminated": {"exitCode": 3}}}]})),
        );
        assert_eq!(c[2], "Init:ExitCode:3");
        let c = cells(
            "",
            "pods",
            base(json!({"phase": "Pending",
                "initContainerStatuses": [{"name": "init", "state": {"terminated": {"exitCode": 137, "signal": 9}}}]})),
        );
        assert_eq!(c[2], "Init:Signal:9");
        // Main container crash-looping after init succeeded; the readiness gate is true.
        let c = cells(
            "",
            "pods",
            base(json!({"phase": "Running",
                "conditions": [{"type": "example.com/gate", "status": "True"}],
                "initContainerStatuses": [{"name": "init", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
                "containerStatuses": [{"name": "c", "restartCount": 5, "ready": false,
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": "2024-05-01T11:00:00Z"}}}]})),
        );
        assert_eq!(c[1], "0/1");
        assert_eq!(c[2], "CrashLoopBackOff");
        assert_eq!(c[3], "5 (60m ago)");
        assert_eq!(c[8], "1/1");
        // A completed pod.
        let c = cells(
            "",
            "pods",
            base(json!({"phase": "Succeeded",
                "initContainerStatuses": [{"name": "init", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
                "containerStatuses": [{"name": "c", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]})),
        );
        assert_eq!(c[2], "Completed");
        // Exited without a reason.
        let c = cells(
            "",
            "pods",
            base(json!({"phase": "Running",
                "containerStatuses": [{"name": "c", "state": {"terminated": {"exitCode": 2}}}]})),
        );
        assert_eq!(c[2], "ExitCode:2");
        // One container completed, another still running and the pod not ready.
        let two = json!({
            "metadata": {"name": "p2"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running",
                "containerStatuses": [
                    {"name": "a", "ready": true, "state": {"running": {}}},
                    {"name": "b", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}
        });
        let c = cells("", "pods", two);
        assert_eq!(c[1], "1/2");
        assert_eq!(c[2], "NotReady");
    }

    #[test]
    fn pod_terminating_unknown_gated_and_sidecars() {
        let mut pod = json!({
            "metadata": {"name": "p", "creationTimestamp": "2024-05-01T11:59:58Z",
                         "deletionTimestamp": "2024-05-01T12:00:30Z"},
            "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Running",
                "containerStatuses": [{"name": "c", "ready": true, "state": {"running": {}}}]}
        });
        let c = cells("", "pods", pod.clone());
        assert_eq!(c[2], "Terminating");
        assert_eq!(c[4], "2s");
        pod["status"]["reason"] = json!("NodeLost");
        assert_eq!(cells("", "pods", pod.clone())[2], "Unknown");
        pod["status"] = json!({"phase": "Succeeded"});
        assert_eq!(cells("", "pods", pod)[2], "Succeeded");

        let gated = json!({
            "metadata": {"name": "g"},
            "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Pending",
                "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}
        });
        let c = cells("", "pods", gated);
        assert_eq!(c[2], "SchedulingGated");
        assert_eq!(c[4], "<unknown>");

        // A started sidecar counts as a container; its restarts count once initialized.
        let sidecar = json!({
            "metadata": {"name": "s", "creationTimestamp": "2024-05-01T11:00:00Z"},
            "spec": {"containers": [{"name": "c"}],
                     "initContainers": [{"name": "proxy", "restartPolicy": "Always"}]},
            "status": {"phase": "Running", "podIPs": [{"ip": "fd00::5"}],
                "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
                "initContainerStatuses": [{"name": "proxy", "started": true, "ready": true, "restartCount": 1,
                    "state": {"running": {}},
                    "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:50:00Z"}}}],
                "containerStatuses": [{"name": "c", "ready": true, "state": {"running": {}}}]}
        });
        let c = cells("", "pods", sidecar);
        assert_eq!(c[1], "2/2");
        assert_eq!(c[2], "Running");
        assert_eq!(c[3], "1 (10m ago)");
        assert_eq!(c[5], "fd00::5");
    }

    #[test]
    fn deployment_and_replicaset() {
        assert_eq!(
            names("apps", "deployments")
                .into_iter()
                .map(|(n, _)| n)
                .collect::<Vec<_>>(),
            [
                "Name",
                "Ready",
                "Up-to-date",
                "Available",
                "Age",
                "Containers",
                "Images",
                "Selector"
            ]
        );
        let template = json!({"spec": {"containers": [
            {"name": "web", "image": "nginx:1.27"}, {"name": "sidecar", "image": "busybox"}]}});
        let deploy = json!({
            "metadata": {"name": "web", "creationTimestamp": "2024-04-29T09:00:00Z"},
            "spec": {"replicas": 3, "template": template,
                     "selector": {"matchLabels": {"app": "web", "tier": "fe"},
                                  "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]},
                                                       {"key": "canary", "operator": "DoesNotExist"}]}},
            "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
        });
        assert_eq!(
            cells("apps", "deployments", deploy),
            [
                json!("web"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("2d3h"),
                json!("web,sidecar"),
                json!("nginx:1.27,busybox"),
                json!("app=web,!canary,env in (dev,prod),tier=fe")
            ]
        );
        let fresh = json!({"metadata": {"name": "new", "creationTimestamp": "2024-05-01T11:59:59Z"},
                           "spec": {"replicas": 0, "selector": {"matchExpressions": [{"key": "a", "operator": "Bogus"}]}}});
        let c = cells("apps", "deployments", fresh);
        assert_eq!(c[1], "0/0");
        assert_eq!(c[4], "1s");
        assert_eq!(c[7], "<invalid>");

        let rs = json!({
            "metadata": {"name": "web-5d8f7", "creationTimestamp": "2024-05-01T11:40:00Z"},
            "spec": {"replicas": 3, "template": template,
                     "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d8f7"}}},
            "status": {"replicas": 3, "readyReplicas": 1}
        });
        assert_eq!(
            cells("apps", "replicasets", rs),
            [
                json!("web-5d8f7"),
                json!(3),
                json!(3),
                json!(1),
                json!("20m"),
                json!("web,sidecar"),
                json!("nginx:1.27,busybox"),
                json!("app=web,pod-template-hash=5d8f7")
            ]
        );
        let empty = json!({"metadata": {"name": "e"}, "spec": {"selector": {}}});
        let c = cells("apps", "replicasets", empty);
        assert_eq!(c[1], 1, "defaulted replicas");
        assert_eq!(c[2], 0);
        assert_eq!(c[7], "<none>");
        let bad = json!({"metadata": {"name": "e"},
                         "spec": {"selector": {"matchLabels": {"bad key!": "x"}}}});
        assert_eq!(cells("apps", "replicasets", bad)[7], "<error>");
    }

    #[test]
    fn services() {
        let svc = |spec: Value, status: Value| {
            json!({"metadata": {"name": "web", "creationTimestamp": "2024-05-01T06:00:00Z"},
                   "spec": spec, "status": status})
        };
        assert_eq!(
            cells(
                "",
                "services",
                svc(
                    json!({"type": "ClusterIP", "clusterIP": "10.96.0.12", "clusterIPs": ["10.96.0.12"],
                           "ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080},
                                     {"port": 53, "protocol": "UDP"}],
                           "selector": {"app": "web"}}),
                    json!({})
                )
            ),
            [
                json!("web"),
                json!("ClusterIP"),
                json!("10.96.0.12"),
                json!("<none>"),
                json!("80/TCP,53/UDP"),
                json!("6h"),
                json!("app=web")
            ]
        );
        let c = cells(
            "",
            "services",
            svc(
                json!({"type": "NodePort", "clusterIP": "10.96.0.13", "externalIPs": ["192.0.2.1"],
                       "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}),
                json!({}),
            ),
        );
        assert_eq!(c[2], "10.96.0.13");
        assert_eq!(c[3], "192.0.2.1");
        assert_eq!(c[4], "80:30080/TCP");
        assert_eq!(c[6], "<none>");
        let c = cells(
            "",
            "services",
            svc(
                json!({"type": "LoadBalancer", "clusterIPs": ["10.96.0.14"],
                       "ports": [{"port": 443, "nodePort": 31443, "protocol": "TCP"}]}),
                json!({}),
            ),
        );
        assert_eq!(c[3], "<pending>");
        let c = cells(
            "",
            "services",
            svc(
                json!({"type": "LoadBalancer", "clusterIPs": ["10.96.0.14"], "externalIPs": ["192.0.2.9"]}),
                json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}, {"hostname": "lb.example.com"}, {"ip": "203.0.113.7"}]}}),
            ),
        );
        assert_eq!(c[3], "203.0.113.7,lb.example.com,192.0.2.9");
        assert_eq!(c[4], "<none>");
        let c = cells(
            "",
            "services",
            svc(
                json!({"type": "ExternalName", "externalName": "db.example.com"}),
                json!({}),
            ),
        );
        assert_eq!(c[2], "<none>");
        assert_eq!(c[3], "db.example.com");
        let c = cells(
            "",
            "services",
            svc(
                json!({"clusterIP": "None", "clusterIPs": ["None"]}),
                json!({}),
            ),
        );
        assert_eq!(c[2], "None");
    }

    #[test]
    fn endpoints_and_slices() {
        assert_eq!(
            cells(
                "",
                "endpoints",
                json!({"metadata": {"name": "web"}, "subsets": []})
            )[1],
            "<none>"
        );
        let ep = json!({"metadata": {"name": "web", "creationTimestamp": "2024-05-01T11:00:00Z"},
        "subsets": [
            {"addresses": [{"ip": "10.244.0.5"}, {"ip": "10.244.0.6"}],
             "ports": [{"name": "http", "port": 8080}, {"name": "metrics", "port": 9090}]},
            {"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}
        ]});
        assert_eq!(
            cells("", "endpoints", ep),
            [
                json!("web"),
                json!("10.244.0.5:8080,10.244.0.6:8080,10.244.0.5:9090 + 2 more..."),
                json!("60m")
            ]
        );
        let headless = json!({"metadata": {"name": "h"},
            "subsets": [{"addresses": [{"ip": "10.244.0.5"}, {"ip": "fd00::2"}]}]});
        assert_eq!(cells("", "endpoints", headless)[1], "10.244.0.5,fd00::2");
        let ep6 = json!({"metadata": {"name": "v6"},
            "subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}]});
        assert_eq!(cells("", "endpoints", ep6)[1], "[fd00::1]:80");

        let slice = json!({"metadata": {"name": "web-abc12", "creationTimestamp": "2024-05-01T11:59:00Z"},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "named"}, {}, {"port": 1}],
            "endpoints": [{"addresses": ["10.244.0.5"], "conditions": {"ready": true}},
                          {"addresses": ["10.244.0.6"]}]});
        assert_eq!(
            cells("discovery.k8s.io", "endpointslices", slice),
            [
                json!("web-abc12"),
                json!("IPv4"),
                json!("8080,named,* + 1 more..."),
                json!("10.244.0.5,10.244.0.6"),
                json!("60s")
            ]
        );
        let empty = json!({"metadata": {"name": "e"}, "addressType": "IPv4", "ports": null, "endpoints": []});
        let c = cells("discovery.k8s.io", "endpointslices", empty);
        assert_eq!(c[2], "<unset>");
        assert_eq!(c[3], "<unset>");
    }

    #[test]
    fn nodes() {
        let node = json!({
            "metadata": {"name": "node1", "creationTimestamp": "2024-04-01T12:00:00Z",
                "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "edge",
                           "node-role.kubernetes.io/": "x", "kubernetes.io/hostname": "node1"}},
            "spec": {"unschedulable": true},
            "status": {
                "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                "addresses": [{"type": "Hostname", "address": "node1"}, {"type": "InternalIP", "address": "192.168.1.10"}],
                "nodeInfo": {"kubeletVersion": "v1.32.4", "osImage": "Debian GNU/Linux 12 (bookworm)",
                             "kernelVersion": "6.1.0-18-amd64", "containerRuntimeVersion": "paddock://0.1.0"}
            }
        });
        assert_eq!(
            cells("", "nodes", node),
            [
                json!("node1"),
                json!("Ready,SchedulingDisabled"),
                json!("control-plane,edge"),
                json!("30d"),
                json!("v1.32.4"),
                json!("192.168.1.10"),
                json!("<none>"),
                json!("Debian GNU/Linux 12 (bookworm)"),
                json!("6.1.0-18-amd64"),
                json!("paddock://0.1.0")
            ]
        );
        let bare = json!({"metadata": {"name": "n2"}, "status": {}});
        let c = cells("", "nodes", bare);
        assert_eq!(c[1], "Unknown");
        assert_eq!(c[2], "<none>");
        assert_eq!(c[4], "");
        assert_eq!(c[7], "<unknown>");
        let not_ready = json!({"metadata": {"name": "n3"},
            "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
        assert_eq!(cells("", "nodes", not_ready)[1], "NotReady");
    }

    #[test]
    fn events() {
        assert_eq!(
            names("", "events"),
            [
                ("Last Seen", 0),
                ("Type", 0),
                ("Reason", 0),
                ("Object", 0),
                ("Subobject", 1),
                ("Source", 1),
                ("Message", 0),
                ("First Seen", 1),
                ("Count", 1),
                ("Name", 1)
            ]
            .map(|(n, p)| (n.to_string(), p))
        );
        let defs = column_definitions(lookup("", "v1", "events").unwrap());
        assert_eq!(defs[9]["format"], "name");
        let ev = json!({
            "metadata": {"name": "web-x.17c8a", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web-x", "fieldPath": "spec.containers{web}"},
            "reason": "Unhealthy", "type": "Warning",
            "message": "Readiness probe failed: HTTP probe failed with statuscode: 503\n",
            "source": {"component": "kubelet", "host": "node1"},
            "firstTimestamp": "2024-05-01T11:50:00Z", "lastTimestamp": "2024-05-01T11:59:00Z", "count": 12
        });
        assert_eq!(
            cells("", "events", ev),
            [
                json!("60s"),
                json!("Warning"),
                json!("Unhealthy"),
                json!("pod/web-x"),
                json!("spec.containers{web}"),
                json!("kubelet, node1"),
                json!("Readiness probe failed: HTTP probe failed with statuscode: 503"),
                json!("10m"),
                json!(12),
                json!("web-x.17c8a")
            ]
        );
        // An events.k8s.io-style event: eventTime, reporting fields, no count.
        let ev = json!({
            "metadata": {"name": "e2"},
            "involvedObject": {"kind": "Node"},
            "reason": "Starting", "type": "Normal", "message": "",
            "eventTime": "2024-05-01T11:57:00.123456Z",
            "reportingComponent": "paddock-agent", "reportingInstance": ""
        });
        let c = cells("", "events", ev);
        assert_eq!(c[0], "2m59s");
        assert_eq!(c[3], "node");
        assert_eq!(c[5], "paddock-agent");
        assert_eq!(c[7], "2m59s");
        assert_eq!(c[8], 1);
        let series = json!({
            "metadata": {"name": "e3"}, "involvedObject": {"kind": "Pod", "name": "p"},
            "eventTime": "2024-05-01T10:00:00.000000Z",
            "series": {"count": 7, "lastObservedTime": "2024-05-01T11:59:55.000000Z"}
        });
        let c = cells("", "events", series);
        assert_eq!(c[0], "5s");
        assert_eq!(c[7], "120m");
        assert_eq!(c[8], 7);
        let unknown = json!({"metadata": {"name": "e4"}, "involvedObject": {}});
        let c = cells("", "events", unknown);
        assert_eq!(c[0], "<unknown>");
        assert_eq!(c[7], "<unknown>");
    }

    #[test]
    fn small_resources() {
        assert_eq!(
            cells(
                "",
                "namespaces",
                json!({"metadata": {"name": "default", "creationTimestamp": "2024-05-01T12:00:01Z"},
                       "status": {"phase": "Active"}})
            ),
            [json!("default"), json!("Active"), json!("0s")]
        );
        assert_eq!(
            cells(
                "",
                "namespaces",
                json!({"metadata": {"name": "x", "creationTimestamp": "2024-05-01T12:00:02Z"}})
            ),
            [json!("x"), json!(""), json!("<invalid>")]
        );
        assert_eq!(
            cells(
                "",
                "configmaps",
                json!({"metadata": {"name": "cfg", "creationTimestamp": "2024-05-01T11:00:00Z"},
                       "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}})
            ),
            [json!("cfg"), json!(3), json!("60m")]
        );
        assert_eq!(
            cells(
                "",
                "secrets",
                json!({"metadata": {"name": "tls", "creationTimestamp": "2024-05-01T11:00:00Z"},
                       "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}})
            ),
            [
                json!("tls"),
                json!("kubernetes.io/tls"),
                json!(2),
                json!("60m")
            ]
        );
        assert_eq!(
            cells(
                "coordination.k8s.io",
                "leases",
                json!({"metadata": {"name": "node1", "creationTimestamp": "2024-05-01T11:00:00Z"},
                       "spec": {"holderIdentity": "node1", "leaseDurationSeconds": 40}})
            ),
            [json!("node1"), json!("node1"), json!("60m")]
        );
        assert_eq!(
            cells(
                "coordination.k8s.io",
                "leases",
                json!({"metadata": {"name": "l"}, "spec": {}})
            )[1],
            ""
        );
    }

    #[test]
    fn completed_pods_carry_row_conditions() {
        let pods = lookup("", "v1", "pods").unwrap();
        let pod = |phase: &str| json!({"metadata": {"name": "p"}, "status": {"phase": phase}});
        assert_eq!(
            row_conditions(pods, &pod("Succeeded")),
            [
                json!({"type": "Completed", "status": "True", "reason": "Succeeded",
                    "message": "The pod has completed successfully."})
            ]
        );
        assert_eq!(row_conditions(pods, &pod("Failed"))[0]["reason"], "Failed");
        assert!(row_conditions(pods, &pod("Running")).is_empty());
        let ns = lookup("", "v1", "namespaces").unwrap();
        assert!(row_conditions(ns, &pod("Succeeded")).is_empty());
    }

    #[test]
    fn every_served_resource_has_consistent_columns() {
        for info in api::registry::resources() {
            let defs = column_definitions(info);
            assert!(!defs.is_empty());
            for d in &defs {
                for key in ["name", "type", "format", "description", "priority"] {
                    assert!(d.get(key).is_some(), "{} column lacks {key}", info.plural);
                }
            }
            let cells = row_cells(info, &json!({"metadata": {"name": "x"}}), now());
            assert_eq!(cells.len(), defs.len(), "{}", info.plural);
        }
    }

    #[test]
    fn default_table_for_unprinted_resources() {
        let info = ResourceInfo {
            group: "example.com",
            kind: "Widget",
            plural: "widgets",
            ..*lookup("", "v1", "pods").unwrap()
        };
        let defs = column_definitions(&info);
        assert_eq!(defs[1]["name"], "Created At");
        assert_eq!(defs[1]["type"], "date");
        let obj = json!({"metadata": {"name": "w", "creationTimestamp": "2024-05-01T11:00:00Z"}});
        assert_eq!(
            row_cells(&info, &obj, now()),
            [json!("w"), json!("2024-05-01T11:00:00Z")]
        );
        assert_eq!(
            row_cells(&info, &json!({"metadata": {"name": "w"}}), now())[1],
            "0001-01-01T00:00:00Z"
        );
    }
}
