//! The resource table: every resource paddock serves, with the facts discovery advertises
//! (group/version/kind, plural, singular, short names, scope, categories, verbs,
//! subresources) exactly as a Kubernetes 1.32 API server reports them.
//!
//! Start at [`resources`]; [`lookup`] resolves a URL's `group/version/plural`, [`by_kind`]
//! resolves a manifest's `apiVersion`/`kind`.

/// A subresource of a served resource (`pods/status`, `deployments/scale`, `pods/log`…).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subresource {
    /// Subresource name as it appears in the URL (`status`, `scale`, `log`).
    pub name: &'static str,
    /// Kind of the object the subresource returns (`Scale` for `scale`).
    pub kind: &'static str,
    /// Group of that kind (`autoscaling` for `Scale`, `""` for core).
    pub group: &'static str,
    /// Version of that kind.
    pub version: &'static str,
    /// Verbs the subresource supports.
    pub verbs: &'static [&'static str],
}

/// One served resource, as advertised by discovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceInfo {
    /// API group; `""` for the core group.
    pub group: &'static str,
    /// API version within the group (`v1`).
    pub version: &'static str,
    /// Kind of the objects (`Pod`).
    pub kind: &'static str,
    /// Kind of a list of the objects (`PodList`).
    pub list_kind: &'static str,
    /// Plural resource name used in URLs (`pods`).
    pub plural: &'static str,
    /// Singular resource name (`pod`).
    pub singular: &'static str,
    /// Short names kubectl accepts (`po`).
    pub short_names: &'static [&'static str],
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Categories (`all` for pods, services, deployments, replicasets).
    pub categories: &'static [&'static str],
    /// Verbs the main resource supports.
    pub verbs: &'static [&'static str],
    /// Subresources served.
    pub subresources: &'static [Subresource],
}

impl ResourceInfo {
    /// `apiVersion` of the objects: `v1` for core, `apps/v1` otherwise.
    pub fn api_version(&self) -> String {
        self.group_version()
    }

    /// `group/version`, or just the version for the core group.
    pub fn group_version(&self) -> String {
        qualify(self.group, self.version, GroupAt::Front('/'))
    }

    /// Key prefix used by the store: `pods` for core, `apps/deployments` for grouped resources.
    pub fn store_resource(&self) -> String {
        qualify(self.group, self.plural, GroupAt::Front('/'))
    }

    /// The group-qualified resource as upstream error messages print it:
    /// `pods`, `deployments.apps`.
    pub fn qualified_resource(&self) -> String {
        qualify(self.group, self.plural, GroupAt::Back)
    }

    /// The group-qualified kind as upstream error messages print it: `Pod`, `Deployment.apps`.
    pub fn qualified_kind(&self) -> String {
        qualify(self.group, self.kind, GroupAt::Back)
    }

    /// The subresource named `name`, if served.
    pub fn subresource(&self, name: &str) -> Option<&'static Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }

    /// Whether the main resource supports `verb`.
    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }
}

/// Where [`qualify`] puts the group.
enum GroupAt {
    /// `group<sep>name` (`apps/v1`).
    Front(char),
    /// `name.group` (`deployments.apps`).
    Back,
}

/// `name` qualified by `group`, or just `name` for the core group.
fn qualify(group: &str, name: &str, at: GroupAt) -> String {
    match at {
        _ if group.is_empty() => name.to_string(),
        GroupAt::Front(sep) => format!("{group}{sep}{name}"),
        GroupAt::Back => format!("{name}.{group}"),
    }
}

/// Verbs of an ordinary read-write resource.
const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
/// Namespaces have no `deletecollection` upstream.
const NAMESPACE_VERBS: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];
/// The group of Ingresses and IngressClasses.
pub const NETWORKING_GROUP: &str = "networking.k8s.io";
/// The resource metrics group (`PodMetrics`, `NodeMetrics`).
pub const METRICS_GROUP: &str = "metrics.k8s.io";
/// The group of Roles, ClusterRoles and their bindings.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// Verbs of `status` subresources.
const STATUS_VERBS: &[&str] = &["get", "patch", "update"];

/// A `status` subresource returning `kind` in the same group/version.
const fn status(kind: &'static str, group: &'static str) -> Subresource {
    Subresource {
        name: "status",
        kind,
        group,
        version: "v1",
        verbs: STATUS_VERBS,
    }
}

/// The `scale` subresource of apps/v1 workloads; returns `autoscaling/v1` `Scale`.
const SCALE: Subresource = Subresource {
    name: "scale",
    kind: "Scale",
    group: "autoscaling",
    version: "v1",
    verbs: STATUS_VERBS,
};

const POD_SUBRESOURCES: &[Subresource] = &[
    Subresource {
        name: "attach",
        kind: "PodAttachOptions",
        group: "",
        version: "v1",
        verbs: &["create", "get"],
    },
    Subresource {
        name: "binding",
        kind: "Binding",
        group: "",
        version: "v1",
        verbs: &["create"],
    },
    Subresource {
        name: "ephemeralcontainers",
        kind: "Pod",
        group: "",
        version: "v1",
        verbs: &["get", "patch", "update"],
    },
    Subresource {
        name: "eviction",
        kind: "Eviction",
        group: "policy",
        version: "v1",
        verbs: &["create"],
    },
    Subresource {
        name: "exec",
        kind: "PodExecOptions",
        group: "",
        version: "v1",
        verbs: &["create", "get"],
    },
    Subresource {
        name: "log",
        kind: "Pod",
        group: "",
        version: "v1",
        verbs: &["get"],
    },
    Subresource {
        name: "portforward",
        kind: "PodPortForwardOptions",
        group: "",
        version: "v1",
        verbs: &["create", "get"],
    },
    proxy("PodProxyOptions"),
    status("Pod", ""),
];

/// The `proxy` subresource of pods and services (HTTP through the API server).
const fn proxy(kind: &'static str) -> Subresource {
    Subresource {
        name: "proxy",
        kind,
        group: "",
        version: "v1",
        verbs: &["create", "delete", "get", "patch", "update"],
    }
}

static RESOURCES: &[ResourceInfo] = &[
    ResourceInfo {
        group: "",
        version: "v1",
        kind: "Namespace",
        list_kind: "NamespaceList",
        plural: "namespaces",
        singular: "namespace",
        short_names: &["ns"],
        namespaced: false,
        categories: &[],
        verbs: NAMESPACE_VERBS,
        subresources: &[status("Namespace", "")],
    },
    ResourceInfo {
        group: "",
        version: "v1",
        kind: "Pod",
        list_kind: "PodList",
        plural: "pods",
        singular: "pod",
        short_names: &["po"],
        namespaced: true,
        categories: &["all"],
        verbs: ALL_VERBS,
        subresources: POD_SUBRESOURCES,
    },
    ResourceInfo {
        group: "",
        version: "v1",
        kind: "ReplicationController",
        list_kind: "ReplicationControllerList",
        plural: "replicationcontrollers",
        singular: "replicationcontroller",
        short_names: &["rc"],
        namespaced: true,
        categories: &["all"],
        verbs: ALL_VERBS,
        subresources: &[SCALE, status("ReplicationController", "")],
    },
    ResourceInfo {
        group: "",
        version: "v1",
        kind: "Service",
        list_kind: "ServiceList",
        plural: "services",
        singular: "service",
        short_names: &["svc"],
        namespaced: true,
        categories: &["all"],
        verbs: ALL_VERBS,
        subresources: &[proxy("ServiceProxyOptions"), status("Service", "")],
    },
    ResourceInfo {
        group: "",
        version: "v1",
        kind: "Endpoints",
        list_kind: "EndpointsList",
        plural: "endpoints",
        singular: "endpoints",
        short_names: &["ep"],
        namespaced: true,
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
    },
    ResourceInfo {
        group: "",
        version: "v1",
        kind: "Node",
        list_kind: "NodeList",
        plural: "nodes",
        singular: "node",
        short_names: &["no"],
        namespaced: false,
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[proxy("NodeProxyOptions"), status("Node", "")],
    },
    ResourceInfo {
        group: "",
        version: "v1",
        kind: "Event",
        list_kind: "EventList",
        plural: "events",
        singular: "event",
        short_names: &["ev"],
        namespaced: true,
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
    },
    ResourceInfo {
        group: "",
        version: "v1",
        kind: "ConfigMap",
        list_kind: "ConfigMapList",
        plural: "configmaps",
        singular: "configmap",
        short_names: &["cm"],
        namespaced: true,
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
    },
    ResourceInfo {
        group: "",
        version: "v1",
        kind: "Secret",
        list_kind: "SecretList",
        plural: "secrets",
        singular: "secret",
        short_names: &[],
        namespaced: true,
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
    },
    ResourceInfo {
        group: "",
        version: "v1",
        kind: "ServiceAccount",
        list_kind: "ServiceAccountList",
        plural: "serviceaccounts",
        singular: "serviceaccount",
        short_names: &["sa"],
        namespaced: true,
        categories: &[],
        verbs: ALL_VERBS,
        // `serviceaccounts/token`: the TokenRequest API (create only).
        subresources: &[Subresource {
            name: "token",
            kind: "TokenRequest",
            group: "authentication.k8s.io",
            version: "v1",
            verbs: &["create"],
        }],
    },
    ResourceInfo {
        group: "",
        version: "v1",
        kind: "PersistentVolumeClaim",
        list_kind: "PersistentVolumeClaimList",
        plural: "persistentvolumeclaims",
        singular: "persistentvolumeclaim",
        short_names: &["pvc"],
        namespaced: true,
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[status("PersistentVolumeClaim", "")],
    },
    ResourceInfo {
        group: "",
        version: "v1",
        kind: "PersistentVolume",
        list_kind: "PersistentVolumeList",
        plural: "persistentvolumes",
        singular: "persistentvolume",
        short_names: &["pv"],
        namespaced: false,
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[status("PersistentVolume", "")],
    },
    ResourceInfo {
        group: "apps",
        version: "v1",
        kind: "ControllerRevision",
        list_kind: "ControllerRevisionList",
        plural: "controllerrevisions",
        singular: "controllerrevision",
        short_names: &[],
        namespaced: true,
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
    },
    ResourceInfo {
        group: "apps",
        version: "v1",
        kind: "DaemonSet",
        list_kind: "DaemonSetList",
        plural: "daemonsets",
        singular: "daemonset",
        short_names: &["ds"],
        namespaced: true,
        categories: &["all"],
        verbs: ALL_VERBS,
        subresources: &[status("DaemonSet", "apps")],
    },
    ResourceInfo {
        group: "apps",
        version: "v1",
        kind: "Deployment",
        list_kind: "DeploymentList",
        plural: "deployments",
        singular: "deployment",
        short_names: &["deploy"],
        namespaced: true,
        categories: &["all"],
        verbs: ALL_VERBS,
        subresources: &[SCALE, status("Deployment", "apps")],
    },
    ResourceInfo {
        group: "apps",
        version: "v1",
        kind: "ReplicaSet",
        list_kind: "ReplicaSetList",
        plural: "replicasets",
        singular: "replicaset",
        short_names: &["rs"],
        namespaced: true,
        categories: &["all"],
        verbs: ALL_VERBS,
        subresources: &[SCALE, status("ReplicaSet", "apps")],
    },
    ResourceInfo {
        group: "apps",
        version: "v1",
        kind: "StatefulSet",
        list_kind: "StatefulSetList",
        plural: "statefulsets",
        singular: "statefulset",
        short_names: &["sts"],
        namespaced: true,
        categories: &["all"],
        verbs: ALL_VERBS,
        subresources: &[SCALE, status("StatefulSet", "apps")],
    },
    hpa("v2", HPA_STATUS_V2),
    ResourceInfo {
        group: "batch",
        version: "v1",
        kind: "CronJob",
        list_kind: "CronJobList",
        plural: "cronjobs",
        singular: "cronjob",
        short_names: &["cj"],
        namespaced: true,
        categories: &["all"],
        verbs: ALL_VERBS,
        subresources: &[status("CronJob", "batch")],
    },
    ResourceInfo {
        group: "batch",
        version: "v1",
        kind: "Job",
        list_kind: "JobList",
        plural: "jobs",
        singular: "job",
        short_names: &[],
        namespaced: true,
        categories: &["all"],
        verbs: ALL_VERBS,
        subresources: &[status("Job", "batch")],
    },
    ResourceInfo {
        group: "discovery.k8s.io",
        version: "v1",
        kind: "EndpointSlice",
        list_kind: "EndpointSliceList",
        plural: "endpointslices",
        singular: "endpointslice",
        short_names: &[],
        namespaced: true,
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
    },
    ResourceInfo {
        group: "coordination.k8s.io",
        version: "v1",
        kind: "Lease",
        list_kind: "LeaseList",
        plural: "leases",
        singular: "lease",
        short_names: &[],
        namespaced: true,
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
    },
    ResourceInfo {
        group: "certificates.k8s.io",
        version: "v1",
        kind: "CertificateSigningRequest",
        list_kind: "CertificateSigningRequestList",
        plural: "certificatesigningrequests",
        singular: "certificatesigningrequest",
        short_names: &["csr"],
        namespaced: false,
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[
            Subresource {
                name: "approval",
                kind: "CertificateSigningRequest",
                group: "certificates.k8s.io",
                version: "v1",
                verbs: STATUS_VERBS,
            },
            status("CertificateSigningRequest", "certificates.k8s.io"),
        ],
    },
    ResourceInfo {
        group: NETWORKING_GROUP,
        version: "v1",
        kind: "IngressClass",
        list_kind: "IngressClassList",
        plural: "ingressclasses",
        singular: "ingressclass",
        short_names: &[],
        namespaced: false,
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
    },
    ResourceInfo {
        group: NETWORKING_GROUP,
        version: "v1",
        kind: "Ingress",
        list_kind: "IngressList",
        plural: "ingresses",
        singular: "ingress",
        short_names: &["ing"],
        namespaced: true,
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[status("Ingress", NETWORKING_GROUP)],
    },
    ResourceInfo {
        group: "policy",
        version: "v1",
        kind: "PodDisruptionBudget",
        list_kind: "PodDisruptionBudgetList",
        plural: "poddisruptionbudgets",
        singular: "poddisruptionbudget",
        short_names: &["pdb"],
        namespaced: true,
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[status("PodDisruptionBudget", "policy")],
    },
    ResourceInfo {
        group: "storage.k8s.io",
        version: "v1",
        kind: "StorageClass",
        list_kind: "StorageClassList",
        plural: "storageclasses",
        singular: "storageclass",
        short_names: &["sc"],
        namespaced: false,
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
    },
    ResourceInfo {
        group: "node.k8s.io",
        version: "v1",
        kind: "RuntimeClass",
        list_kind: "RuntimeClassList",
        plural: "runtimeclasses",
        singular: "runtimeclass",
        short_names: &[],
        namespaced: false,
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
    },
    ResourceInfo {
        group: RBAC_GROUP,
        version: "v1",
        kind: "ClusterRoleBinding",
        list_kind: "ClusterRoleBindingList",
        plural: "clusterrolebindings",
        singular: "clusterrolebinding",
        short_names: &[],
        namespaced: false,
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
    },
    ResourceInfo {
        group: RBAC_GROUP,
        version: "v1",
        kind: "ClusterRole",
        list_kind: "ClusterRoleList",
        plural: "clusterroles",
        singular: "clusterrole",
        short_names: &[],
        namespaced: false,
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
    },
    ResourceInfo {
        group: RBAC_GROUP,
        version: "v1",
        kind: "RoleBinding",
        list_kind: "RoleBindingList",
        plural: "rolebindings",
        singular: "rolebinding",
        short_names: &[],
        namespaced: true,
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
    },
    ResourceInfo {
        group: RBAC_GROUP,
        version: "v1",
        kind: "Role",
        list_kind: "RoleList",
        plural: "roles",
        singular: "role",
        short_names: &[],
        namespaced: true,
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
    },
    // The resource metrics API (metrics-server's, served in-process): read-only views of the
    // nodes' and pods' usage; last in the table so `pods` and `nodes` resolve to core first.
    ResourceInfo {
        group: METRICS_GROUP,
        version: "v1beta1",
        kind: "NodeMetrics",
        list_kind: "NodeMetricsList",
        plural: "nodes",
        singular: "nodemetrics",
        short_names: &[],
        namespaced: false,
        categories: &[],
        verbs: &["get", "list"],
        subresources: &[],
    },
    ResourceInfo {
        group: METRICS_GROUP,
        version: "v1beta1",
        kind: "PodMetrics",
        list_kind: "PodMetricsList",
        plural: "pods",
        singular: "podmetrics",
        short_names: &[],
        namespaced: true,
        categories: &[],
        verbs: &["get", "list"],
        subresources: &[],
    },
];

/// Resources also served in an older version than the one stored (upstream serves
/// `autoscaling/v1` beside `autoscaling/v2`): requests in these versions are converted at the
/// API's edge by [`crate::convert`]; everything inside (store, controllers, validation) sees
/// only the stored version of [`RESOURCES`].
static CONVERTED: &[ResourceInfo] = &[hpa("v1", HPA_STATUS_V1)];

/// HorizontalPodAutoscalers in `version` (stored in v2, also served in v1).
const fn hpa(version: &'static str, subresources: &'static [Subresource]) -> ResourceInfo {
    ResourceInfo {
        group: "autoscaling",
        version,
        kind: "HorizontalPodAutoscaler",
        list_kind: "HorizontalPodAutoscalerList",
        plural: "horizontalpodautoscalers",
        singular: "horizontalpodautoscaler",
        short_names: &["hpa"],
        namespaced: true,
        categories: &["all"],
        verbs: ALL_VERBS,
        subresources,
    }
}

/// The `status` subresource of HorizontalPodAutoscalers in `version`.
const fn hpa_status(version: &'static str) -> Subresource {
    Subresource {
        name: "status",
        kind: "HorizontalPodAutoscaler",
        group: "autoscaling",
        version,
        verbs: STATUS_VERBS,
    }
}

const HPA_STATUS_V1: &[Subresource] = &[hpa_status("v1")];
const HPA_STATUS_V2: &[Subresource] = &[hpa_status("v2")];

/// Every stored resource, core group first, in a stable order: one entry per resource, in
/// the version it is stored in. [`served`] adds the versions that are only converted.
pub fn resources() -> &'static [ResourceInfo] {
    RESOURCES
}

/// Every served group-version-resource: [`resources`], then the converted older versions (so
/// a group's stored version comes first, as its preferred version).
pub fn served() -> impl Iterator<Item = &'static ResourceInfo> {
    RESOURCES.iter().chain(CONVERTED)
}

/// Whether `info` is a version served by conversion rather than stored.
pub fn is_converted(info: &ResourceInfo) -> bool {
    CONVERTED.iter().any(|c| c == info)
}

/// The stored version of `info`'s resource: `info` itself unless it [`is_converted`].
pub fn storage(info: &'static ResourceInfo) -> &'static ResourceInfo {
    if !is_converted(info) {
        return info;
    }
    RESOURCES
        .iter()
        .find(|r| r.group == info.group && r.plural == info.plural)
        .unwrap_or(info)
}

/// The resource served at `/apis/{group}/{version}/{plural}` (`group` `""` for `/api/v1`).
pub fn lookup(group: &str, version: &str, plural: &str) -> Option<&'static ResourceInfo> {
    served().find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource whose objects carry `apiVersion: api_version` and `kind: kind`.
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static ResourceInfo> {
    let (group, version) = split_api_version(api_version);
    served().find(|r| r.group == group && r.version == version && r.kind == kind)
}

/// Splits `apps/v1` into (`apps`, `v1`) and `v1` into (`""`, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}

/// Resolves what a user typed (`po`, `pods`, `pod`, `Pod`, `deployments.apps`) to a resource,
/// the way kubectl's RESTMapper does for served resources.
pub fn resolve_name(name: &str) -> Option<&'static ResourceInfo> {
    let lower = name.to_ascii_lowercase();
    let (base, group) = match lower.split_once('.') {
        Some((b, g)) => (b.to_string(), Some(g.to_string())),
        None => (lower.clone(), None),
    };
    RESOURCES.iter().find(|r| {
        group.as_deref().is_none_or(|g| g == r.group)
            && (r.plural == base
                || r.singular == base
                || r.kind.eq_ignore_ascii_case(&base)
                || r.short_names.contains(&base.as_str()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_and_names() {
        let pods = lookup("", "v1", "pods").unwrap();
        assert_eq!(pods.kind, "Pod");
        assert_eq!(pods.api_version(), "v1");
        assert_eq!(pods.store_resource(), "pods");
        assert_eq!(pods.qualified_resource(), "pods");
        let deploy = by_kind("apps/v1", "Deployment").unwrap();
        assert_eq!(deploy.store_resource(), "apps/deployments");
        assert_eq!(deploy.qualified_resource(), "deployments.apps");
        assert_eq!(deploy.qualified_kind(), "Deployment.apps");
        assert_eq!(deploy.subresource("scale").unwrap().group, "autoscaling");
        assert!(by_kind("v1", "Deployment").is_none());
        assert!(lookup("apps", "v1", "pods").is_none());
        assert_eq!(resolve_name("deploy").unwrap().kind, "Deployment");
        assert_eq!(resolve_name("rs.apps").unwrap().kind, "ReplicaSet");
        assert_eq!(
            resolve_name("EndpointSlice").unwrap().plural,
            "endpointslices"
        );
        assert!(resolve_name("po.apps").is_none());
    }

    #[test]
    fn all_category_and_unique_names() {
        let all: Vec<_> = resources()
            .iter()
            .filter(|r| r.categories.contains(&"all"))
            .map(|r| r.plural)
            .collect();
        assert_eq!(
            all,
            [
                "pods",
                "replicationcontrollers",
                "services",
                "daemonsets",
                "deployments",
                "replicasets",
                "statefulsets",
                "horizontalpodautoscalers",
                "cronjobs",
                "jobs"
            ]
        );
        let mut seen = std::collections::BTreeSet::new();
        for r in resources() {
            assert!(seen.insert((r.group, r.plural)), "{} twice", r.plural);
            assert!(!r.namespaced || r.kind != "Node");
        }
    }
}
