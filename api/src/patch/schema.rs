//! Patch metadata per built-in type: which fields are lists merged by key (and by which key),
//! which lists are sets, which maps/structs are atomic, and which fields carry `retainKeys`.
//!
//! The type tree and the list kinds were extracted mechanically from k8s-openapi 0.29 (`v1_37`,
//! its `DeepMerge` impls mirror the OpenAPI `x-kubernetes-*` extensions), pruned to the types on a
//! path to a non-default field. The strategic-merge tags (`patchStrategy`/`patchMergeKey`) follow
//! the struct tags of k8s.io/api; the server-side-apply list keys follow the `+listMapKey`
//! markers (e.g. container ports are keyed by `containerPort` and `protocol`). Anything not listed
//! has the defaults: maps and structs merge field by field, lists are replaced (SMP) or atomic
//! (SSA).

/// How strategic merge patch treats a field (the upstream `patchStrategy` struct tag).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Smp {
    /// No tag: lists are replaced, maps merged.
    None,
    /// `patchStrategy:"merge"` on a list of objects, with its `patchMergeKey`.
    Merge(&'static str),
    /// `patchStrategy:"merge,retainKeys"` on a list of objects, with its `patchMergeKey`.
    MergeRetainKeys(&'static str),
    /// `patchStrategy:"merge"` on a list of primitives (e.g. `finalizers`).
    MergePrimitives,
    /// `patchStrategy:"retainKeys"` on a struct (e.g. a Deployment's `strategy`).
    RetainKeys,
    /// `patchStrategy:"replace"`: maps are replaced as a whole (unused by built-in types).
    #[cfg_attr(not(test), allow(dead_code))]
    Replace,
}

impl Smp {
    /// Whether the list is merged (rather than replaced).
    pub(crate) fn is_merge(self) -> bool {
        matches!(
            self,
            Smp::Merge(_) | Smp::MergeRetainKeys(_) | Smp::MergePrimitives
        )
    }

    /// The merge key, `""` for primitive lists and unmerged fields.
    pub(crate) fn merge_key(self) -> &'static str {
        match self {
            Smp::Merge(k) | Smp::MergeRetainKeys(k) => k,
            _ => "",
        }
    }

    /// Whether the diff builds a `$retainKeys` directive for this field's maps.
    pub(crate) fn retain_keys(self) -> bool {
        matches!(self, Smp::MergeRetainKeys(_) | Smp::RetainKeys)
    }
}

/// How server-side apply treats a field (the `+listType`/`+mapType`/`+structType` markers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ssa {
    /// Structs and maps: granular; lists: atomic.
    Default,
    /// `+listType=map` with its `+listMapKey`s.
    Map(&'static [&'static str]),
    /// `+listType=map` of `+structType=atomic` items (owner references, local object
    /// references): items are keyed but owned whole.
    MapAtomic(&'static [&'static str]),
    /// `+listType=set`.
    Set,
    /// `+mapType=atomic` / `+structType=atomic`: owned and replaced as a whole.
    AtomicMap,
}

/// One field of a type.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FieldSchema {
    /// JSON name.
    pub(crate) json: &'static str,
    /// The field's type (for lists: the element type), when it has listed fields of its own.
    pub(crate) ty: Option<&'static str>,
    /// Strategic-merge strategy.
    pub(crate) smp: Smp,
    /// Server-side-apply strategy.
    pub(crate) ssa: Ssa,
}

/// The listed fields of one type.
#[derive(Debug)]
pub(crate) struct TypeSchema {
    /// `group.version.Kind`-style name, e.g. `core.v1.PodSpec`.
    pub(crate) name: &'static str,
    /// Fields with non-default behaviour or with listed nested types.
    pub(crate) fields: &'static [FieldSchema],
}

const fn fld(json: &'static str, ty: Option<&'static str>, smp: Smp, ssa: Ssa) -> FieldSchema {
    FieldSchema { json, ty, smp, ssa }
}

/// A position in the schema: the type of the current object, if known.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Schema(Option<&'static TypeSchema>);

/// Metadata found for one field.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FieldMeta {
    /// Schema of the field's value (for lists: of each element).
    pub(crate) schema: Schema,
    /// Strategic-merge strategy.
    pub(crate) smp: Smp,
    /// Server-side-apply strategy.
    pub(crate) ssa: Ssa,
}

impl Schema {
    /// The schema of a top-level object of `kind`, or `None` for kinds without one.
    pub(crate) fn for_kind(kind: &str) -> Option<Schema> {
        if cfg!(test) && kind == "MergeItem" {
            return Some(Schema(type_named("test.MergeItem")));
        }
        let ty = KINDS.iter().find(|(k, _)| *k == kind)?.1;
        Some(Schema(type_named(ty)))
    }

    /// A schema that only knows the generic object shape (`metadata` is an `ObjectMeta`).
    pub(crate) fn generic() -> Schema {
        Schema(type_named("generic.Object"))
    }

    /// Metadata of `field` in this type; unknown fields get the defaults.
    pub(crate) fn field(self, field: &str) -> FieldMeta {
        let found = self
            .0
            .and_then(|t| t.fields.iter().find(|f| f.json == field));
        match found {
            Some(f) => FieldMeta {
                schema: Schema(f.ty.and_then(type_named)),
                smp: f.smp,
                ssa: f.ssa,
            },
            None => FieldMeta {
                schema: Schema(None),
                smp: Smp::None,
                ssa: Ssa::Default,
            },
        }
    }

    /// The type name, for error messages.
    pub(crate) fn name(self) -> &'static str {
        self.0.map_or("map", |t| t.name)
    }
}

fn type_named(name: &str) -> Option<&'static TypeSchema> {
    TYPES.iter().chain(test_types()).find(|t| t.name == name)
}

#[cfg(not(test))]
fn test_types() -> &'static [TypeSchema] {
    &[]
}

/// The `MergeItem` test type of upstream's strategic-merge tests, as kind `MergeItem`.
#[cfg(test)]
fn test_types() -> &'static [TypeSchema] {
    const MERGE_ITEM: Option<&str> = Some("test.MergeItem");
    static T: &[TypeSchema] = &[
        TypeSchema {
            name: "test.MergeItem",
            fields: &[
                fld(
                    "mergingList",
                    MERGE_ITEM,
                    Smp::Merge("name"),
                    Ssa::Map(&["name"]),
                ),
                fld("nonMergingList", MERGE_ITEM, Smp::None, Ssa::Default),
                fld("mergingIntList", None, Smp::MergePrimitives, Ssa::Set),
                fld(
                    "mergeItemPtr",
                    MERGE_ITEM,
                    Smp::Merge("name"),
                    Ssa::Map(&["name"]),
                ),
                fld("replacingItem", None, Smp::Replace, Ssa::AtomicMap),
                fld(
                    "retainKeysMap",
                    Some("test.RetainKeysMergeItem"),
                    Smp::RetainKeys,
                    Ssa::Default,
                ),
                fld(
                    "retainKeysMergingList",
                    MERGE_ITEM,
                    Smp::MergeRetainKeys("name"),
                    Ssa::Map(&["name"]),
                ),
            ],
        },
        TypeSchema {
            name: "test.RetainKeysMergeItem",
            fields: &[
                fld("mergingIntList", None, Smp::MergePrimitives, Ssa::Set),
                fld(
                    "mergingList",
                    MERGE_ITEM,
                    Smp::Merge("name"),
                    Ssa::Map(&["name"]),
                ),
                fld("nonMergingList", MERGE_ITEM, Smp::None, Ssa::Default),
            ],
        },
    ];
    T
}

/// Kinds whose main resource has a `status` subresource (status is reset on main-resource
/// writes and is not owned by their field managers).
pub(crate) fn has_status_subresource(kind: &str) -> bool {
    matches!(
        kind,
        "Pod"
            | "Service"
            | "Node"
            | "Namespace"
            | "PersistentVolumeClaim"
            | "Deployment"
            | "ReplicaSet"
            | "StatefulSet"
            | "DaemonSet"
            | "Job"
            | "CronJob"
    )
}

/// Fields shared by `Container` and `EphemeralContainer`.
#[rustfmt::skip]
const CONTAINER_FIELDS: &[FieldSchema] = &[
            fld("env", Some("core.v1.EnvVar"), Smp::Merge("name"), Ssa::Map(&["name"])),
            fld("ports", None, Smp::Merge("containerPort"), Ssa::Map(&["containerPort", "protocol"])),
            fld("resources", Some("core.v1.ResourceRequirements"), Smp::None, Ssa::Default),
            fld("restartPolicyRules", Some("core.v1.ContainerRestartRule"), Smp::None, Ssa::Default),
            fld("volumeDevices", None, Smp::Merge("devicePath"), Ssa::Map(&["devicePath"])),
            fld("volumeMounts", Some("core.v1.VolumeMount"), Smp::Merge("mountPath"), Ssa::Map(&["mountPath"])),
];

#[rustfmt::skip]
pub(crate) static TYPES: &[TypeSchema] = &[
    // Hand-added: env value selectors are `+structType=atomic` upstream.
    TypeSchema {
        name: "core.v1.EnvVar",
        fields: &[fld("valueFrom", Some("core.v1.EnvVarSource"), Smp::None, Ssa::Default)],
    },
    TypeSchema {
        name: "core.v1.EnvVarSource",
        fields: &[
            fld("configMapKeyRef", None, Smp::None, Ssa::AtomicMap),
            fld("fieldRef", None, Smp::None, Ssa::AtomicMap),
            fld("resourceFieldRef", None, Smp::None, Ssa::AtomicMap),
            fld("secretKeyRef", None, Smp::None, Ssa::AtomicMap),
        ],
    },
    TypeSchema {
        name: "generic.Object",
        fields: &[fld("metadata", Some("meta.v1.ObjectMeta"), Smp::None, Ssa::Default)],
    },
    TypeSchema {
        name: "apps.v1.DaemonSet",
        fields: &[
            fld("metadata", Some("meta.v1.ObjectMeta"), Smp::None, Ssa::Default),
            fld("spec", Some("apps.v1.DaemonSetSpec"), Smp::None, Ssa::Default),
            fld("status", Some("apps.v1.DaemonSetStatus"), Smp::None, Ssa::Default),
        ],
    },
    TypeSchema {
        name: "apps.v1.DaemonSetSpec",
        fields: &[
            fld("selector", None, Smp::None, Ssa::AtomicMap),
            fld("template", Some("core.v1.PodTemplateSpec"), Smp::None, Ssa::Default),
        ],
    },
    TypeSchema {
        name: "apps.v1.DaemonSetStatus",
        fields: &[fld("conditions", None, Smp::Merge("type"), Ssa::Map(&["type"]))],
    },
    TypeSchema {
        name: "apps.v1.Deployment",
        fields: &[
            fld("metadata", Some("meta.v1.ObjectMeta"), Smp::None, Ssa::Default),
            fld("spec", Some("apps.v1.DeploymentSpec"), Smp::None, Ssa::Default),
            fld("status", Some("apps.v1.DeploymentStatus"), Smp::None, Ssa::Default),
        ],
    },
    TypeSchema {
        name: "apps.v1.DeploymentSpec",
        fields: &[
            fld("selector", None, Smp::None, Ssa::AtomicMap),
            fld("strategy", None, Smp::RetainKeys, Ssa::Default),
            fld("template", Some("core.v1.PodTemplateSpec"), Smp::None, Ssa::Default),
        ],
    },
    TypeSchema {
        name: "apps.v1.DeploymentStatus",
        fields: &[fld("conditions", None, Smp::Merge("type"), Ssa::Map(&["type"]))],
    },
    TypeSchema {
        name: "apps.v1.ReplicaSet",
        fields: &[
            fld("metadata", Some("meta.v1.ObjectMeta"), Smp::None, Ssa::Default),
            fld("spec", Some("apps.v1.ReplicaSetSpec"), Smp::None, Ssa::Default),
            fld("status", Some("apps.v1.ReplicaSetStatus"), Smp::None, Ssa::Default),
        ],
    },
    TypeSchema {
        name: "apps.v1.ReplicaSetSpec",
        fields: &[
            fld("selector", None, Smp::None, Ssa::AtomicMap),
            fld("template", Some("core.v1.PodTemplateSpec"), Smp::None, Ssa::Default),
        ],
    },
    TypeSchema {
        name: "apps.v1.ReplicaSetStatus",
        fields: &[fld("conditions", None, Smp::Merge("type"), Ssa::Map(&["type"]))],
    },
    TypeSchema {
        name: "apps.v1.StatefulSet",
        fields: &[
            fld("metadata", Some("meta.v1.ObjectMeta"), Smp::None, Ssa::Default),
            fld("spec", Some("apps.v1.StatefulSetSpec"), Smp::None, Ssa::Default),
            fld("status", Some("apps.v1.StatefulSetStatus"), Smp::None, Ssa::Default),
        ],
    },
    TypeSchema {
        name: "apps.v1.StatefulSetSpec",
        fields: &[
            fld("selector", None, Smp::None, Ssa::AtomicMap),
            fld("template", Some("core.v1.PodTemplateSpec"), Smp::None, Ssa::Default),
            fld("volumeClaimTemplates", Some("core.v1.PersistentVolumeClaim"), Smp::None, Ssa::Default),
        ],
    },
    TypeSchema {
        name: "apps.v1.StatefulSetStatus",
        fields: &[fld("conditions", None, Smp::Merge("type"), Ssa::Map(&["type"]))],
    },
    TypeSchema {
        name: "autoscaling.v1.Scale",
        fields: &[fld("metadata", Some("meta.v1.ObjectMeta"), Smp::None, Ssa::Default)],
    },
    TypeSchema {
        name: "batch.v1.CronJob",
        fields: &[
            fld("metadata", Some("meta.v1.ObjectMeta"), Smp::None, Ssa::Default),
            fld("spec", Some("batch.v1.CronJobSpec"), Smp::None, Ssa::Default),
        ],
    },
    TypeSchema {
        name: "batch.v1.CronJobSpec",
        fields: &[fld("jobTemplate", Some("batch.v1.JobTemplateSpec"), Smp::None, Ssa::Default)],
    },
    TypeSchema {
        name: "batch.v1.Job",
        fields: &[
            fld("metadata", Some("meta.v1.ObjectMeta"), Smp::None, Ssa::Default),
            fld("spec", Some("batch.v1.JobSpec"), Smp::None, Ssa::Default),
            fld("status", Some("batch.v1.JobStatus"), Smp::None, Ssa::Default),
        ],
    },
    TypeSchema {
        name: "batch.v1.JobSchedulingConfiguration",
        fields: &[fld("resourceClaims", None, Smp::Merge("name"), Ssa::Map(&["name"]))],
    },
    TypeSchema {
        name: "batch.v1.JobSpec",
        fields: &[
            fld("podFailurePolicy", Some("batch.v1.PodFailurePolicy"), Smp::None, Ssa::Default),
            fld("scheduling", Some("batch.v1.JobSchedulingConfiguration"), Smp::None, Ssa::Default),
            fld("selector", None, Smp::None, Ssa::AtomicMap),
            fld("template", Some("core.v1.PodTemplateSpec"), Smp::None, Ssa::Default),
        ],
    },
    TypeSchema {
        name: "batch.v1.JobStatus",
        fields: &[
            fld("conditions", None, Smp::Merge("type"), Ssa::Map(&["type"])),
            fld("uncountedTerminatedPods", Some("batch.v1.UncountedTerminatedPods"), Smp::None, Ssa::Default),
        ],
    },
    TypeSchema {
        name: "batch.v1.JobTemplateSpec",
        fields: &[
            fld("metadata", Some("meta.v1.ObjectMeta"), Smp::None, Ssa::Default),
            fld("spec", Some("batch.v1.JobSpec"), Smp::None, Ssa::Default),
        ],
    },
    TypeSchema {
        name: "batch.v1.PodFailurePolicy",
        fields: &[fld("rules", Some("batch.v1.PodFailurePolicyRule"), Smp::None, Ssa::Default)],
    },
    TypeSchema {
        name: "batch.v1.PodFailurePolicyOnExitCodesRequirement",
        fields: &[fld("values", None, Smp::None, Ssa::Set)],
    },
    TypeSchema {
        name: "batch.v1.PodFailurePolicyRule",
        fields: &[fld("onExitCodes", Some("batch.v1.PodFailurePolicyOnExitCodesRequirement"), Smp::None, Ssa::Default)],
    },
    TypeSchema {
        name: "batch.v1.UncountedTerminatedPods",
        fields: &[
            fld("failed", None, Smp::None, Ssa::Set),
            fld("succeeded", None, Smp::None, Ssa::Set),
        ],
    },
    TypeSchema {
        name: "coordination.v1.Lease",
        fields: &[fld("metadata", Some("meta.v1.ObjectMeta"), Smp::None, Ssa::Default)],
    },
    TypeSchema {
        name: "certificates.v1.CertificateSigningRequest",
        fields: &[
            fld("metadata", Some("meta.v1.ObjectMeta"), Smp::None, Ssa::Default),
            fld("status", Some("certificates.v1.CertificateSigningRequestStatus"), Smp::None, Ssa::Default),
        ],
    },
    TypeSchema {
        name: "certificates.v1.CertificateSigningRequestStatus",
        fields: &[fld("conditions", None, Smp::None, Ssa::Map(&["type"]))],
    },
    TypeSchema {
        name: "core.v1.ConfigMap",
        fields: &[fld("metadata", Some("meta.v1.ObjectMeta"), Smp::None, Ssa::Default)],
    },
    TypeSchema {
        name: "core.v1.Container",
        fields: CONTAINER_FIELDS,
    },
    TypeSchema {
        name: "core.v1.ContainerRestartRule",
        fields: &[fld("exitCodes", Some("core.v1.ContainerRestartRuleOnExitCodes"), Smp::None, Ssa::Default)],
    },
    TypeSchema {
        name: "core.v1.ContainerRestartRuleOnExitCodes",
        fields: &[fld("values", None, Smp::None, Ssa::Set)],
    },
    TypeSchema {
        name: "core.v1.ContainerStatus",
        fields: &[
            fld("allocatedResourcesStatus", Some("core.v1.ResourceStatus"), Smp::Merge("name"), Ssa::Map(&["name"])),
            fld("resources", Some("core.v1.ResourceRequirements"), Smp::None, Ssa::Default),
            fld("volumeMounts", None, Smp::Merge("mountPath"), Ssa::Map(&["mountPath"])),
        ],
    },
    TypeSchema {
        name: "core.v1.Endpoints",
        fields: &[fld("metadata", Some("meta.v1.ObjectMeta"), Smp::None, Ssa::Default)],
    },
    TypeSchema {
        name: "core.v1.EphemeralContainer",
        fields: CONTAINER_FIELDS,
    },
    TypeSchema {
        name: "core.v1.EphemeralVolumeSource",
        fields: &[fld("volumeClaimTemplate", Some("core.v1.PersistentVolumeClaimTemplate"), Smp::None, Ssa::Default)],
    },
    TypeSchema {
        name: "core.v1.Event",
        fields: &[fld("metadata", Some("meta.v1.ObjectMeta"), Smp::None, Ssa::Default)],
    },
    TypeSchema {
        name: "core.v1.Namespace",
        fields: &[
            fld("metadata", Some("meta.v1.ObjectMeta"), Smp::None, Ssa::Default),
            fld("status", Some("core.v1.NamespaceStatus"), Smp::None, Ssa::Default),
        ],
    },
    TypeSchema {
        name: "core.v1.NamespaceStatus",
        fields: &[fld("conditions", None, Smp::Merge("type"), Ssa::Map(&["type"]))],
    },
    TypeSchema {
        name: "core.v1.Node",
        fields: &[
            fld("metadata", Some("meta.v1.ObjectMeta"), Smp::None, Ssa::Default),
            fld("spec", Some("core.v1.NodeSpec"), Smp::None, Ssa::Default),
            fld("status", Some("core.v1.NodeStatus"), Smp::None, Ssa::Default),
        ],
    },
    TypeSchema {
        name: "core.v1.NodeAllocatableResourceClaimStatus",
        fields: &[
            fld("containers", None, Smp::None, Ssa::Set),
            fld("mapping", None, Smp::Merge("name"), Ssa::Map(&["name"])),
            fld("overhead", None, Smp::Merge("name"), Ssa::Map(&["name"])),
        ],
    },
    TypeSchema {
        name: "core.v1.NodePodPreemptionPolicy",
        fields: &[fld("disableResizePreemption", None, Smp::None, Ssa::Set)],
    },
    TypeSchema {
        name: "core.v1.NodeSpec",
        fields: &[
            fld("podCIDRs", None, Smp::MergePrimitives, Ssa::Set),
            fld("podPreemptionPolicy", Some("core.v1.NodePodPreemptionPolicy"), Smp::None, Ssa::Default),
        ],
    },
    TypeSchema {
        name: "core.v1.NodeStatus",
        fields: &[
            fld("addresses", None, Smp::Merge("type"), Ssa::Map(&["type"])),
            fld("conditions", None, Smp::Merge("type"), Ssa::Map(&["type"])),
        ],
    },
    TypeSchema {
        name: "core.v1.PersistentVolumeClaim",
        fields: &[
            fld("metadata", Some("meta.v1.ObjectMeta"), Smp::None, Ssa::Default),
            fld("status", Some("core.v1.PersistentVolumeClaimStatus"), Smp::None, Ssa::Default),
        ],
    },
    TypeSchema {
        name: "core.v1.PersistentVolumeClaimStatus",
        fields: &[
            fld("conditions", None, Smp::Merge("type"), Ssa::Map(&["type"])),
            fld("healthStatus", Some("core.v1.VolumeHealthStatus"), Smp::None, Ssa::Default),
        ],
    },
    TypeSchema {
        name: "core.v1.PersistentVolumeClaimTemplate",
        fields: &[fld("metadata", Some("meta.v1.ObjectMeta"), Smp::None, Ssa::Default)],
    },
    TypeSchema {
        name: "core.v1.Pod",
        fields: &[
            fld("metadata", Some("meta.v1.ObjectMeta"), Smp::None, Ssa::Default),
            fld("spec", Some("core.v1.PodSpec"), Smp::None, Ssa::Default),
            fld("status", Some("core.v1.PodStatus"), Smp::None, Ssa::Default),
        ],
    },
    TypeSchema {
        name: "core.v1.PodSpec",
        fields: &[
            fld("containers", Some("core.v1.Container"), Smp::Merge("name"), Ssa::Map(&["name"])),
            fld("ephemeralContainers", Some("core.v1.EphemeralContainer"), Smp::Merge("name"), Ssa::Map(&["name"])),
            fld("evictionResponders", None, Smp::Merge("name"), Ssa::Map(&["name"])),
            fld("hostAliases", None, Smp::Merge("ip"), Ssa::Map(&["ip"])),
            fld("imagePullSecrets", None, Smp::Merge("name"), Ssa::MapAtomic(&["name"])),
            fld("initContainers", Some("core.v1.Container"), Smp::Merge("name"), Ssa::Map(&["name"])),
            fld("nodeSelector", None, Smp::None, Ssa::AtomicMap),
            fld("resourceClaims", None, Smp::MergeRetainKeys("name"), Ssa::Map(&["name"])),
            fld("resources", Some("core.v1.ResourceRequirements"), Smp::None, Ssa::Default),
            fld("schedulingGates", None, Smp::Merge("name"), Ssa::Map(&["name"])),
            fld("topologySpreadConstraints", None, Smp::Merge("topologyKey"), Ssa::Map(&["topologyKey", "whenUnsatisfiable"])),
            fld("volumes", Some("core.v1.Volume"), Smp::MergeRetainKeys("name"), Ssa::Map(&["name"])),
        ],
    },
    TypeSchema {
        name: "core.v1.PodStatus",
        fields: &[
            fld("conditions", None, Smp::Merge("type"), Ssa::Map(&["type"])),
            fld("containerStatuses", Some("core.v1.ContainerStatus"), Smp::None, Ssa::Default),
            fld("ephemeralContainerStatuses", Some("core.v1.ContainerStatus"), Smp::None, Ssa::Default),
            fld("hostIPs", None, Smp::Merge("ip"), Ssa::Map(&["ip"])),
            fld("initContainerStatuses", Some("core.v1.ContainerStatus"), Smp::None, Ssa::Default),
            fld("nodeAllocatableResourceClaimStatuses", Some("core.v1.NodeAllocatableResourceClaimStatus"), Smp::Merge("resourceClaimName"), Ssa::Map(&["resourceClaimName"])),
            fld("podIPs", None, Smp::Merge("ip"), Ssa::Map(&["ip"])),
            fld("resourceClaimStatuses", None, Smp::MergeRetainKeys("name"), Ssa::Map(&["name"])),
            fld("resources", Some("core.v1.ResourceRequirements"), Smp::None, Ssa::Default),
            fld("volumeHealth", Some("core.v1.PodVolumeHealth"), Smp::Merge("name"), Ssa::Map(&["name"])),
        ],
    },
    TypeSchema {
        name: "core.v1.PodTemplate",
        fields: &[
            fld("metadata", Some("meta.v1.ObjectMeta"), Smp::None, Ssa::Default),
            fld("template", Some("core.v1.PodTemplateSpec"), Smp::None, Ssa::Default),
        ],
    },
    TypeSchema {
        name: "core.v1.PodTemplateSpec",
        fields: &[
            fld("metadata", Some("meta.v1.ObjectMeta"), Smp::None, Ssa::Default),
            fld("spec", Some("core.v1.PodSpec"), Smp::None, Ssa::Default),
        ],
    },
    TypeSchema {
        name: "core.v1.PodVolumeHealth",
        fields: &[fld("healthConditions", None, Smp::Merge("status"), Ssa::Map(&["status"]))],
    },
    TypeSchema {
        name: "core.v1.ResourceRequirements",
        fields: &[fld("claims", None, Smp::None, Ssa::Map(&["name"]))],
    },
    TypeSchema {
        name: "core.v1.ResourceStatus",
        fields: &[fld("resources", None, Smp::Merge("resourceID"), Ssa::Map(&["resourceID"]))],
    },
    TypeSchema {
        name: "core.v1.Secret",
        fields: &[fld("metadata", Some("meta.v1.ObjectMeta"), Smp::None, Ssa::Default)],
    },
    TypeSchema {
        name: "core.v1.Service",
        fields: &[
            fld("metadata", Some("meta.v1.ObjectMeta"), Smp::None, Ssa::Default),
            fld("spec", Some("core.v1.ServiceSpec"), Smp::None, Ssa::Default),
            fld("status", Some("core.v1.ServiceStatus"), Smp::None, Ssa::Default),
        ],
    },
    TypeSchema {
        name: "core.v1.ServiceAccount",
        fields: &[
            fld("metadata", Some("meta.v1.ObjectMeta"), Smp::None, Ssa::Default),
            fld("secrets", None, Smp::Merge("name"), Ssa::MapAtomic(&["name"])),
        ],
    },
    TypeSchema {
        name: "core.v1.ServiceSpec",
        fields: &[
            fld("ports", None, Smp::Merge("port"), Ssa::Map(&["port", "protocol"])),
            fld("selector", None, Smp::None, Ssa::AtomicMap),
        ],
    },
    TypeSchema {
        name: "core.v1.ServiceStatus",
        fields: &[fld("conditions", None, Smp::Merge("type"), Ssa::Map(&["type"]))],
    },
    TypeSchema {
        name: "core.v1.Volume",
        fields: &[fld("ephemeral", Some("core.v1.EphemeralVolumeSource"), Smp::None, Ssa::Default)],
    },
    TypeSchema {
        name: "core.v1.VolumeHealthStatus",
        fields: &[fld("healthConditions", None, Smp::Merge("status"), Ssa::Map(&["status"]))],
    },
    TypeSchema {
        name: "core.v1.VolumeMount",
        fields: &[fld("bindMountOptions", None, Smp::None, Ssa::Set)],
    },
    TypeSchema {
        name: "discovery.v1.Endpoint",
        fields: &[fld("addresses", None, Smp::None, Ssa::Set)],
    },
    TypeSchema {
        name: "discovery.v1.EndpointSlice",
        fields: &[
            fld("endpoints", Some("discovery.v1.Endpoint"), Smp::None, Ssa::Default),
            fld("metadata", Some("meta.v1.ObjectMeta"), Smp::None, Ssa::Default),
        ],
    },
    TypeSchema {
        name: "meta.v1.ObjectMeta",
        fields: &[
            fld("finalizers", None, Smp::MergePrimitives, Ssa::Set),
            fld("ownerReferences", None, Smp::Merge("uid"), Ssa::MapAtomic(&["uid"])),
        ],
    },
];

#[rustfmt::skip]
pub(crate) static KINDS: &[(&str, &str)] = &[
    ("CertificateSigningRequest", "certificates.v1.CertificateSigningRequest"),
    ("ConfigMap", "core.v1.ConfigMap"),
    ("CronJob", "batch.v1.CronJob"),
    ("DaemonSet", "apps.v1.DaemonSet"),
    ("Deployment", "apps.v1.Deployment"),
    ("EndpointSlice", "discovery.v1.EndpointSlice"),
    ("Endpoints", "core.v1.Endpoints"),
    ("Event", "core.v1.Event"),
    ("Job", "batch.v1.Job"),
    ("Lease", "coordination.v1.Lease"),
    ("Namespace", "core.v1.Namespace"),
    ("Node", "core.v1.Node"),
    ("PersistentVolumeClaim", "core.v1.PersistentVolumeClaim"),
    ("Pod", "core.v1.Pod"),
    ("PodTemplate", "core.v1.PodTemplate"),
    ("ReplicaSet", "apps.v1.ReplicaSet"),
    ("Scale", "autoscaling.v1.Scale"),
    ("Secret", "core.v1.Secret"),
    ("Service", "core.v1.Service"),
    ("ServiceAccount", "core.v1.ServiceAccount"),
    ("StatefulSet", "apps.v1.StatefulSet"),
];
