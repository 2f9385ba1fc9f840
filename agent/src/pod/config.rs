//! From a pod's container spec to the runtime's [`ContainerConfig`] and [`VolumeConfig`]s, as
//! the kubelet's `GenerateRunContainerOptions` / `makeEnvironmentVariables` / `makeMounts` and
//! volume plugins do [pkg/kubelet/kubelet_pods.go; pkg/volume/{configmap,secret,downwardapi}].
//!
//! Env order: `envFrom` sources first (invalid names skipped with an
//! `InvalidEnvironmentVariableNames` warning), then `env` entries in order, each value
//! `$(VAR)`-expanded against what is defined so far; `valueFrom` resolves `fieldRef`,
//! `resourceFieldRef`, `configMapKeyRef` and `secretKeyRef`. `command`/`args` are expanded with
//! the final environment. Service variables ([`from_services`], chosen as the kubelet's
//! `getServiceEnvVarMap`) can be referenced by `$(VAR)` and come after the container's own
//! variables, which win over them. Errors carry the kubelet's texts; they become the
//! container's `CreateContainerConfigError`.
//!
//! Why one file of ~900 lines: it is one translation (container spec to runtime config) that
//! words every failure with the kubelet's texts; the volume half (`volumes`, `key_files`) is the
//! seam to split at if it grows.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;

use futures::future::BoxFuture;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, PersistentVolume, PersistentVolumeClaim, Pod, Secret, Service,
};
use k8s_openapi::api::node::v1::RuntimeClass;
use kube::Api;

mod projected;

use super::port_error::PortError;
use crate::runtime::{
    ContainerConfig, HostPathType, MountConfig, PortConfig, ProjectedFile, VolumeConfig,
    VolumeSource,
};

/// Reads ConfigMaps, Secrets, Services and RuntimeClasses (`Ok(None)`: not found).
pub trait Objects: Send + Sync {
    /// The RuntimeClass `name` (cluster-scoped).
    fn runtime_class<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<RuntimeClass>, PortError>>;
    /// The ConfigMap `ns/name`.
    fn config_map<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<ConfigMap>, PortError>>;
    /// The Secret `ns/name`.
    fn secret<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Secret>, PortError>>;
    /// The Services of namespace `ns`.
    fn services<'a>(&'a self, ns: &'a str) -> BoxFuture<'a, Result<Vec<Service>, PortError>>;
    /// A token of service account `ns/name` as `request` asks (`POST
    /// serviceaccounts/{name}/token`); by default refused.
    fn token_request<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
        request: TokenRequest,
    ) -> BoxFuture<'a, Result<TokenRequest, PortError>> {
        let _ = (ns, name, request);
        Box::pin(async { Err(PortError::other("service account tokens are not available")) })
    }
    /// The PersistentVolumeClaim `ns/name` (none by default: a source without storage).
    fn persistent_volume_claim<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<PersistentVolumeClaim>, PortError>> {
        let _ = (ns, name);
        Box::pin(async { Ok(None) })
    }
    /// The PersistentVolume `name` (none by default).
    fn persistent_volume<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<PersistentVolume>, PortError>> {
        let _ = name;
        Box::pin(async { Ok(None) })
    }
    /// The Service `ns/name` (by default found in [`Objects::services`]).
    fn service<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Service>, PortError>> {
        Box::pin(async move {
            Ok(self
                .services(ns)
                .await?
                .into_iter()
                .find(|s| s.metadata.name.as_deref() == Some(name)))
        })
    }
}

/// [`Objects`] through the API.
#[derive(Clone)]
pub struct ApiObjects(pub kube::Client);

impl ApiObjects {
    /// One object of the namespace, `None` when it does not exist.
    fn get<'a, K>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<K>, PortError>>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug
            + Send
            + 'a,
        K::DynamicType: Default,
    {
        Box::pin(async move {
            let api: Api<K> = Api::namespaced(self.0.clone(), ns);
            api.get_opt(name).await.map_err(PortError::from)
        })
    }

    /// One cluster-scoped object, `None` when it does not exist.
    fn get_cluster<'a, K>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<K>, PortError>>
    where
        K: kube::Resource<Scope = k8s_openapi::ClusterResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug
            + Send
            + 'a,
        K::DynamicType: Default,
    {
        Box::pin(async move {
            let api: Api<K> = Api::all(self.0.clone());
            api.get_opt(name).await.map_err(PortError::from)
        })
    }
}

impl Objects for ApiObjects {
    fn runtime_class<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<RuntimeClass>, PortError>> {
        self.get_cluster(name)
    }
    fn config_map<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<ConfigMap>, PortError>> {
        self.get(ns, name)
    }
    fn secret<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Secret>, PortError>> {
        self.get(ns, name)
    }
    fn services<'a>(&'a self, ns: &'a str) -> BoxFuture<'a, Result<Vec<Service>, PortError>> {
        Box::pin(async move {
            let api: Api<Service> = Api::namespaced(self.0.clone(), ns);
            api.list(&Default::default())
                .await
                .map(|l| l.items)
                .map_err(PortError::from)
        })
    }
    fn service<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Service>, PortError>> {
        self.get(ns, name)
    }
    fn token_request<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
        request: TokenRequest,
    ) -> BoxFuture<'a, Result<TokenRequest, PortError>> {
        Box::pin(async move {
            let api: Api<k8s_openapi::api::core::v1::ServiceAccount> =
                Api::namespaced(self.0.clone(), ns);
            api.create_token_request(name, &Default::default(), &request)
                .await
                .map_err(PortError::from)
        })
    }
    fn persistent_volume_claim<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<PersistentVolumeClaim>, PortError>> {
        self.get(ns, name)
    }
    fn persistent_volume<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<PersistentVolume>, PortError>> {
        self.get_cluster(name)
    }
}

/// The runtime handlers this node has: `host` runs a container's `command` as a host
/// process (RuntimeClass `paddock-host`), `runc` runs its image (containerd's default runtime
/// name; only on a node that runs images); `""` is the node's default runtime (`paddock up
/// --default-runtime`, `host` unless set).
pub const RUNTIME_HANDLERS: &[&str] = &["", "host", "runc"];

/// The handler that runs `handler` on a node whose default is `default` and which runs
/// images or not; `Err` as [`runtime_handler`]'s.
pub fn effective_handler(
    handler: &str,
    default: &str,
    runs_images: bool,
) -> Result<String, String> {
    let h = if handler.is_empty() { default } else { handler };
    if h == "runc" && !runs_images {
        return Err(no_runtime(h));
    }
    Ok(h.to_string())
}

fn no_runtime(handler: &str) -> String {
    format!(
        "rpc error: code = Unknown desc = failed to get sandbox runtime: no runtime for {handler:?} is configured"
    )
}

/// The runtime handler of `pod`, as the kubelet's RuntimeClass manager and the runtime
/// resolve it before creating the sandbox (`LookupRuntimeHandler`, then containerd's
/// `getSandboxRuntime`); the error is the text after "Failed to create pod sandbox: ".
pub async fn runtime_handler(objects: &dyn Objects, pod: &Pod) -> Result<String, String> {
    let name = pod
        .spec
        .as_ref()
        .and_then(|s| s.runtime_class_name.as_deref())
        .unwrap_or("");
    let handler = if name.is_empty() {
        String::new()
    } else {
        match objects.runtime_class(name).await {
            Ok(Some(rc)) => rc.handler,
            Ok(None) => return Err(format!("runtimeclass.node.k8s.io {name:?} not found")),
            Err(e) => return Err(format!("failed to lookup RuntimeClass {name}: {e}")),
        }
    };
    if !RUNTIME_HANDLERS.contains(&handler.as_str()) {
        return Err(no_runtime(&handler));
    }
    Ok(handler)
}

/// `makeEnvVariableName`: upper case, `-` → `_`.
fn env_name(s: &str) -> String {
    s.replace('-', "_").to_ascii_uppercase()
}

/// `IsServiceIPSet`: a ClusterIP that is neither empty nor `None` (headless).
fn service_ip_set(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .is_some_and(|ip| !ip.is_empty() && ip != "None")
}

/// The variables of `services`, in order (`envvars.FromServices`): `<SVC>_SERVICE_HOST`,
/// `<SVC>_SERVICE_PORT` (first port), `<SVC>_SERVICE_PORT_<NAME>` per named port, then the
/// Docker-link variables per port (`<SVC>_PORT` for the first, `<SVC>_PORT_<port>_<PROTO>`
/// and its `_PROTO`, `_PORT`, `_ADDR`), IPv6 addresses bracketed in URLs as
/// `net.JoinHostPort` does. Services without a ClusterIP (headless, ExternalName) or without
/// ports give nothing.
pub fn from_services(services: &[Service]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for svc in services.iter().filter(|s| service_ip_set(s)) {
        let Some(spec) = svc.spec.as_ref() else {
            continue;
        };
        let ip = spec.cluster_ip.clone().unwrap_or_default();
        let ports = spec.ports.as_deref().unwrap_or(&[]);
        // Validation requires ports on a service with a ClusterIP; upstream would index
        // out of range here, paddock skips the service.
        let Some(first) = ports.first() else {
            continue;
        };
        let prefix = env_name(svc.metadata.name.as_deref().unwrap_or(""));
        out.push((format!("{prefix}_SERVICE_HOST"), ip.clone()));
        out.push((format!("{prefix}_SERVICE_PORT"), first.port.to_string()));
        for p in ports {
            if let Some(n) = p.name.as_deref().filter(|n| !n.is_empty()) {
                out.push((
                    format!("{prefix}_SERVICE_PORT_{}", env_name(n)),
                    p.port.to_string(),
                ));
            }
        }
        for (i, p) in ports.iter().enumerate() {
            let proto = p
                .protocol
                .clone()
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "TCP".into());
            let lower = proto.to_ascii_lowercase();
            let url = format!("{lower}://{}", probe::handler::join_host_port(&ip, p.port));
            if i == 0 {
                out.push((format!("{prefix}_PORT"), url.clone()));
            }
            let pp = format!("{prefix}_PORT_{}_{}", p.port, proto.to_ascii_uppercase());
            out.push((pp.clone(), url));
            out.push((format!("{pp}_PROTO"), lower));
            out.push((format!("{pp}_PORT"), p.port.to_string()));
            out.push((format!("{pp}_ADDR"), ip.clone()));
        }
    }
    out
}

/// The kubelet's text when the service list fails; the container gets
/// `CreateContainerConfigError` with it.
pub const SERVICE_LIST_FAILED: &str = "failed to list services when setting up env vars";

/// The service variables of `pod` (`getServiceEnvVarMap`): the `kubernetes` Service of
/// `default` always, the Services of the pod's namespace when `enableServiceLinks` is not
/// false (one of them named `kubernetes` wins over the default one); only services with a
/// ClusterIP count. Services are read from the API when the container is created (the kubelet
/// reads its service informer at that moment): one or two calls per container start. A variable
/// two services both define keeps one value (upstream: whichever its map yields last).
async fn service_env(objects: &dyn Objects, pod: &Pod) -> Result<Vec<(String, String)>, String> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let links = pod
        .spec
        .as_ref()
        .and_then(|s| s.enable_service_links)
        .unwrap_or(true);
    let failed = |e: PortError| {
        tracing::warn!(namespace = %ns, error = %e, "reading services for env vars");
        SERVICE_LIST_FAILED.to_string()
    };
    // The namespace's services when links are on (for `default` that includes the master
    // service), else just the master service: one API call either way, two for links in
    // another namespace.
    let mut listed = if links {
        objects.services(&ns).await.map_err(failed)?
    } else {
        Vec::new()
    };
    if ns != "default" || !links {
        listed.extend(
            objects
                .service("default", "kubernetes")
                .await
                .map_err(failed)?,
        );
    }
    let mut chosen: BTreeMap<String, Service> = BTreeMap::new();
    for svc in listed.into_iter().filter(service_ip_set) {
        let name = svc.metadata.name.clone().unwrap_or_default();
        let svc_ns = svc.metadata.namespace.as_deref().unwrap_or("");
        if svc_ns == "default" && name == "kubernetes" {
            chosen.entry(name).or_insert(svc);
        } else if svc_ns == ns && links {
            chosen.insert(name, svc);
        }
    }
    let services: Vec<Service> = chosen.into_values().collect();
    let mut vars: Vec<(String, String)> = Vec::new();
    for (k, v) in from_services(&services) {
        match vars.iter_mut().find(|(n, _)| *n == k) {
            Some(e) => e.1 = v,
            None => vars.push((k, v)),
        }
    }
    Ok(vars)
}

/// What the node contributes to env and volumes.
#[derive(Debug, Clone)]
pub struct NodeFacts {
    /// `status.hostIP`.
    pub host_ip: IpAddr,
    /// Node name (`spec.nodeName` fallback).
    pub node_name: String,
    /// Allocatable CPU in millicores (default for `limits.cpu`).
    pub cpu_milli: i64,
    /// Allocatable memory in bytes (default for `limits.memory`).
    pub memory: i64,
    /// Allocatable ephemeral storage in bytes.
    pub storage: i64,
    /// Where this node's local-path volumes live (`<data dir>/storage`).
    pub storage_root: PathBuf,
    /// Whether the kernel enforces AppArmor ([`super::admit::apparmor_enabled`]).
    pub apparmor: bool,
}

/// A warning to record while building (event reason, message).
pub type Warning = (String, String);

/// Whether `name` is a valid env var name (`IsEnvVarName`: `[-._a-zA-Z][-._a-zA-Z0-9]*`).
fn is_env_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || "-._".contains(c) => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
}

fn not_found(kind: &str, name: &str) -> String {
    format!("{kind} \"{name}\" not found")
}

/// Resolves a `fieldRef` path for `pod`.
pub fn field_ref(pod: &Pod, path: &str, pod_ip: &str, host_ip: &str) -> Result<String, String> {
    let m = &pod.metadata;
    let spec = pod.spec.as_ref();
    let subscript = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|r| r.strip_prefix("['"))
            .and_then(|r| r.strip_suffix("']"))
            .map(str::to_string)
    };
    if let Some(k) = subscript("metadata.labels") {
        return Ok(m
            .labels
            .as_ref()
            .and_then(|l| l.get(&k).cloned())
            .unwrap_or_default());
    }
    if let Some(k) = subscript("metadata.annotations") {
        return Ok(m
            .annotations
            .as_ref()
            .and_then(|l| l.get(&k).cloned())
            .unwrap_or_default());
    }
    Ok(match path {
        "metadata.name" => m.name.clone().unwrap_or_default(),
        "metadata.namespace" => m.namespace.clone().unwrap_or_default(),
        "metadata.uid" => m.uid.clone().unwrap_or_default(),
        "metadata.labels" => format_map(m.labels.as_ref()),
        "metadata.annotations" => format_map(m.annotations.as_ref()),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => host_ip.to_string(),
        "status.podIP" | "status.podIPs" => pod_ip.to_string(),
        _ => return Err(format!("unsupported fieldPath: {path}")),
    })
}

/// `k="v"` lines sorted by key, as the downward API formats label and annotation maps.
fn format_map(m: Option<&BTreeMap<String, String>>) -> String {
    m.map(|m| {
        m.iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
            .join("\n")
    })
    .unwrap_or_default()
}

/// Resolves a `resourceFieldRef` (`limits.cpu`, `requests.memory`, …) with its divisor; limits
/// not set default to the node's allocatable, as the kubelet does.
pub fn resource_field_ref(
    container: &Container,
    resource: &str,
    divisor: Option<&str>,
    node: &NodeFacts,
) -> Result<String, String> {
    let res = container.resources.as_ref();
    let get = |which: &str, key: &str| {
        let map = if which == "limits" {
            res.and_then(|r| r.limits.as_ref())
        } else {
            res.and_then(|r| r.requests.as_ref())
        };
        map.and_then(|m| m.get(key))
            .and_then(|q| api::quantity::Quantity::parse(&q.0).ok())
    };
    let (which, key) = resource
        .split_once('.')
        .ok_or_else(|| format!("unsupported container resource : {resource}"))?;
    let node_default = |key: &str| -> i128 {
        match key {
            "cpu" => i128::from(node.cpu_milli) * 1_000_000,
            "memory" => i128::from(node.memory) * 1_000_000_000,
            _ => i128::from(node.storage) * 1_000_000_000,
        }
    };
    let nanos = match (which, key) {
        ("limits" | "requests", "cpu" | "memory" | "ephemeral-storage") => match get(which, key) {
            Some(q) => q.nanos(),
            None if which == "limits" => node_default(key),
            None => get("limits", key).map_or(0, |q| q.nanos()),
        },
        _ => return Err(format!("unsupported container resource : {resource}")),
    };
    let divisor = match divisor {
        Some(d) if !d.is_empty() => api::quantity::Quantity::parse(d)
            .map_err(|e| format!("invalid divisor {d}: {e}"))?
            .nanos(),
        _ => 1_000_000_000,
    };
    if divisor <= 0 {
        return Err("divisor must be positive".into());
    }
    // Round up, as `ExtractContainerResourceValue` does (math.Ceil).
    let v = (nanos + divisor - 1).div_euclid(divisor);
    Ok(v.to_string())
}

/// The resolved environment of `container` and warnings to record.
pub async fn environment(
    objects: &dyn Objects,
    pod: &Pod,
    container: &Container,
    pod_ip: &str,
    node: &NodeFacts,
) -> Result<(Vec<(String, String)>, Vec<Warning>), String> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let services = service_env(objects, pod).await?;
    let mut warnings = Vec::new();
    let mut env: Vec<(String, String)> = Vec::new();
    let mut cms: HashMap<String, Option<ConfigMap>> = HashMap::new();
    let mut secrets: HashMap<String, Option<Secret>> = HashMap::new();
    let set = |env: &mut Vec<(String, String)>, k: String, v: String| {
        if let Some(e) = env.iter_mut().find(|(n, _)| *n == k) {
            e.1 = v;
        } else {
            env.push((k, v));
        }
    };
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let (kind, name, optional, data): (&str, String, bool, Option<BTreeMap<String, String>>) =
            if let Some(r) = &from.config_map_ref {
                let cm = fetch_cm(objects, &mut cms, &ns, &r.name).await?;
                (
                    "configMap",
                    r.name.clone(),
                    r.optional == Some(true),
                    cm.map(|c| c.data.unwrap_or_default()),
                )
            } else if let Some(r) = &from.secret_ref {
                let s = fetch_secret(objects, &mut secrets, &ns, &r.name).await?;
                (
                    "secret",
                    r.name.clone(),
                    r.optional == Some(true),
                    s.map(secret_strings),
                )
            } else {
                continue;
            };
        let Some(data) = data else {
            if optional {
                continue;
            }
            return Err(not_found(&kind.to_ascii_lowercase(), &name));
        };
        let mut invalid = Vec::new();
        for (k, v) in data {
            let k = format!("{prefix}{k}");
            if !is_env_var_name(&k) {
                invalid.push(k);
                continue;
            }
            set(&mut env, k, v);
        }
        if !invalid.is_empty() {
            invalid.sort();
            warnings.push((
                "InvalidEnvironmentVariableNames".to_string(),
                format!(
                    "Keys [{}] from the EnvFrom {kind} {ns}/{name} were skipped since they are considered invalid environment variable names.",
                    invalid.join(", ")
                ),
            ));
        }
    }
    for e in container.env.iter().flatten() {
        let value = if let Some(from) = &e.value_from {
            if let Some(f) = &from.field_ref {
                field_ref(pod, &f.field_path, pod_ip, &node.host_ip.to_string())?
            } else if let Some(r) = &from.resource_field_ref {
                resource_field_ref(
                    container,
                    &r.resource,
                    r.divisor.as_ref().map(|d| d.0.as_str()),
                    node,
                )?
            } else if let Some(r) = &from.config_map_key_ref {
                let optional = r.optional == Some(true);
                match fetch_cm(objects, &mut cms, &ns, &r.name).await? {
                    None if optional => continue,
                    None => return Err(not_found("configmap", &r.name)),
                    Some(cm) => match cm.data.as_ref().and_then(|d| d.get(&r.key)) {
                        Some(v) => v.clone(),
                        None if optional => continue,
                        None => {
                            return Err(format!(
                                "couldn't find key {} in ConfigMap {ns}/{}",
                                r.key, r.name
                            ));
                        }
                    },
                }
            } else if let Some(r) = &from.secret_key_ref {
                let optional = r.optional == Some(true);
                match fetch_secret(objects, &mut secrets, &ns, &r.name).await? {
                    None if optional => continue,
                    None => return Err(not_found("secret", &r.name)),
                    Some(s) => match secret_strings(s).remove(&r.key) {
                        Some(v) => v,
                        None if optional => continue,
                        None => {
                            return Err(format!(
                                "couldn't find key {} in Secret {ns}/{}",
                                r.key, r.name
                            ));
                        }
                    },
                }
            } else {
                String::new()
            }
        } else {
            let defined = env.clone();
            let lookup = |name: &str| {
                defined
                    .iter()
                    .chain(services.iter())
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
            };
            probe::expand::expand(e.value.as_deref().unwrap_or(""), &lookup)
        };
        set(&mut env, e.name.clone(), value);
    }
    // Service variables come last and never override the container's own.
    for (k, v) in services {
        if !env.iter().any(|(n, _)| *n == k) {
            env.push((k, v));
        }
    }
    Ok((env, warnings))
}

async fn fetch_cm(
    objects: &dyn Objects,
    cache: &mut HashMap<String, Option<ConfigMap>>,
    ns: &str,
    name: &str,
) -> Result<Option<ConfigMap>, String> {
    if let Some(c) = cache.get(name) {
        return Ok(c.clone());
    }
    let c = objects
        .config_map(ns, name)
        .await
        .map_err(|e| e.to_string())?;
    cache.insert(name.to_string(), c.clone());
    Ok(c)
}

async fn fetch_secret(
    objects: &dyn Objects,
    cache: &mut HashMap<String, Option<Secret>>,
    ns: &str,
    name: &str,
) -> Result<Option<Secret>, String> {
    if let Some(c) = cache.get(name) {
        return Ok(c.clone());
    }
    let c = objects.secret(ns, name).await.map_err(|e| e.to_string())?;
    cache.insert(name.to_string(), c.clone());
    Ok(c)
}

fn secret_strings(s: Secret) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = s.string_data.unwrap_or_default();
    for (k, v) in s.data.unwrap_or_default() {
        out.insert(k, String::from_utf8_lossy(&v.0).into_owned());
    }
    out
}

/// `command` + `args` expanded with `env` (`ExpandContainerCommandAndArgs`): `$(VAR)` of a
/// defined variable is replaced, others kept.
pub fn argv(container: &Container, env: &[(String, String)]) -> Vec<String> {
    let lookup = |name: &str| {
        env.iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    container
        .command
        .iter()
        .flatten()
        .chain(container.args.iter().flatten())
        .map(|a| probe::expand::expand(a, &lookup))
        .collect()
}

/// The message of a container without a command: the process runtime has no image
/// entrypoint to fall back on.
pub fn no_command_message(container: &Container) -> String {
    format!(
        "container {:?} has no command: the host runtime runs the command from the node and does not pull image {:?}; set `command`, or run the image with a RuntimeClass of handler `runc`",
        container.name,
        container.image.as_deref().unwrap_or("")
    )
}

/// The runtime configuration of `container` (instance `restart_count`).
pub async fn container_config(
    objects: &dyn Objects,
    pod: &Pod,
    container: &Container,
    restart_count: i32,
    pod_ip: &str,
    node: &NodeFacts,
) -> Result<(ContainerConfig, Vec<Warning>), String> {
    container_config_for(objects, pod, container, restart_count, pod_ip, node, false).await
}

/// [`container_config`], for a container run from its image when `from_image` (its command
/// may then come from the image: the caller fills [`ContainerConfig::image_run`]).
pub async fn container_config_for(
    objects: &dyn Objects,
    pod: &Pod,
    container: &Container,
    restart_count: i32,
    pod_ip: &str,
    node: &NodeFacts,
    from_image: bool,
) -> Result<(ContainerConfig, Vec<Warning>), String> {
    if !from_image && container.command.as_ref().is_none_or(Vec::is_empty) {
        return Err(no_command_message(container));
    }
    let (env, warnings) = environment(objects, pod, container, pod_ip, node).await?;
    let volumes: Vec<&str> = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .map(|v| v.iter().map(|v| v.name.as_str()).collect())
        .unwrap_or_default();
    let mut mounts = Vec::new();
    for m in container.volume_mounts.iter().flatten() {
        if !volumes.contains(&m.name.as_str()) {
            return Err(format!(
                "cannot find volume {:?} to mount into container {:?}",
                m.name, container.name
            ));
        }
        let sub_path = match (&m.sub_path, &m.sub_path_expr) {
            (Some(p), _) if !p.is_empty() => Some(p.clone()),
            (_, Some(e)) if !e.is_empty() => Some(expand_sub_path_expr(e, &env)?),
            _ => None,
        };
        if let Some(p) = &sub_path {
            check_sub_path(p)?;
        }
        mounts.push(MountConfig {
            volume: m.name.clone(),
            mount_path: PathBuf::from(&m.mount_path),
            sub_path,
            read_only: m.read_only == Some(true),
        });
    }
    let ports = container
        .ports
        .iter()
        .flatten()
        .filter_map(|p| {
            Some(PortConfig {
                container_port: u16::try_from(p.container_port).ok()?,
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
            })
        })
        .collect();
    let cfg = ContainerConfig {
        name: container.name.clone(),
        argv: argv(container, &env),
        env,
        working_dir: container
            .working_dir
            .as_ref()
            .filter(|w| !w.is_empty())
            .map(PathBuf::from),
        mounts,
        ports,
        stdin: container.stdin == Some(true),
        stdin_once: container.stdin_once == Some(true),
        tty: container.tty == Some(true),
        image: container.image.clone().unwrap_or_default(),
        restart_count,
        termination_message_path: container
            .termination_message_path
            .as_ref()
            .map(PathBuf::from),
        termination_message_policy: crate::runtime::TerminationMessagePolicy::parse(
            container.termination_message_policy.as_deref(),
        ),
        image_run: None,
    };
    Ok((cfg, warnings))
}

/// `subPathExpr` expanded with the container's environment (the kubelet's
/// `ExpandContainerVolumeMounts`): a variable that is undefined or empty is an error.
fn expand_sub_path_expr(expr: &str, env: &[(String, String)]) -> Result<String, String> {
    let missing = std::cell::RefCell::new(std::collections::BTreeSet::new());
    let lookup = |name: &str| {
        let v = env
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone());
        if v.as_deref().is_none_or(str::is_empty) {
            missing.borrow_mut().insert(name.to_string());
        }
        Some(v.unwrap_or_default())
    };
    let expanded = probe::expand::expand(expr, &lookup);
    let missing = missing.into_inner();
    if missing.is_empty() {
        Ok(expanded)
    } else {
        let names: Vec<String> = missing.into_iter().collect();
        Err(format!("missing value for {}", names.join(", ")))
    }
}

/// The kubelet's own checks of a subPath (`makeMounts`) before it is resolved in the volume:
/// what validation allowed can still expand (`subPathExpr`) to something outside it.
fn check_sub_path(p: &str) -> Result<(), String> {
    if p.starts_with('/') {
        return Err(format!("error SubPath `{p}` must not be an absolute path"));
    }
    if p.split('/').any(|c| c == "..") {
        return Err(format!(
            "unable to provision SubPath `{p}`: must not contain '..'"
        ));
    }
    Ok(())
}

fn mode(m: Option<i32>, default: u32) -> u32 {
    m.and_then(|m| u32::try_from(m).ok()).unwrap_or(default)
}

fn key_files(
    data: BTreeMap<String, Vec<u8>>,
    items: Option<&Vec<k8s_openapi::api::core::v1::KeyToPath>>,
    default_mode: u32,
    what: &str,
    optional: bool,
) -> Result<Vec<ProjectedFile>, String> {
    match items {
        None => Ok(data
            .into_iter()
            .map(|(k, v)| ProjectedFile {
                path: k,
                data: v,
                mode: default_mode,
            })
            .collect()),
        Some(items) => {
            let mut out = Vec::new();
            for it in items {
                match data.get(&it.key) {
                    Some(v) => out.push(ProjectedFile {
                        path: it.path.clone(),
                        data: v.clone(),
                        mode: mode(it.mode, default_mode),
                    }),
                    None if optional => {}
                    None => {
                        return Err(format!(
                            "configured to use key {} of {what}, but key was not found",
                            it.key
                        ));
                    }
                }
            }
            Ok(out)
        }
    }
}

/// The node directory of the claim `claim` of `pod` (the kubelet's desired-state populator
/// checks, in its words): the claim exists, is not being deleted, is bound, and (for an
/// `ephemeral` volume) was made for this pod; its volume is a `hostPath` or `local` one.
/// A local-path volume of this node is made under the node's storage root.
async fn persistent_source(
    objects: &dyn Objects,
    pod: &Pod,
    claim: &str,
    read_only: bool,
    ephemeral: bool,
    node: &NodeFacts,
) -> Result<VolumeSource, String> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    let err = |why: String| format!("error processing PVC {ns}/{claim}: {why}");
    let Some(pvc) = objects
        .persistent_volume_claim(ns, claim)
        .await
        .map_err(|e| err(e.to_string()))?
    else {
        return Err(err(format!(
            "failed to fetch PVC from API server: persistentvolumeclaims {claim:?} not found"
        )));
    };
    if pvc.metadata.deletion_timestamp.is_some() {
        return Err(err("can't start pod because PVC is being deleted".into()));
    }
    if ephemeral {
        let owned = pvc
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|r| r.controller == Some(true) && Some(&r.uid) == pod.metadata.uid.as_ref());
        if !owned {
            return Err(err(format!(
                "PVC {ns}/{claim} was not created for pod {ns}/{} (pod is not owner)",
                pod.metadata.name.as_deref().unwrap_or("")
            )));
        }
    }
    let volume = pvc
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .unwrap_or_default();
    let phase = pvc.status.as_ref().and_then(|s| s.phase.as_deref());
    if volume.is_empty() || phase != Some("Bound") {
        return Err(err("PVC is not bound".into()));
    }
    let Some(pv) = objects
        .persistent_volume(&volume)
        .await
        .map_err(|e| err(e.to_string()))?
    else {
        return Err(err(format!(
            "failed to fetch PV {volume:?} from API server: persistentvolumes {volume:?} not found"
        )));
    };
    let spec = pv.spec.clone().unwrap_or_default();
    let (path, kind) = if let Some(h) = &spec.host_path {
        let kind = HostPathType::parse(h.type_.as_deref().unwrap_or(""))
            .ok_or_else(|| format!("invalid HostPathType {:?}", h.type_))?;
        (PathBuf::from(&h.path), kind)
    } else if let Some(l) = &spec.local {
        (PathBuf::from(&l.path), HostPathType::Directory)
    } else {
        return Err(format!(
            "persistent volume {volume:?}: volume type not supported by paddock (supported: hostPath, local)"
        ));
    };
    let local_path = pv
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("pv.kubernetes.io/provisioned-by"))
        .is_some_and(|p| p == crate::storage::PROVISIONER);
    let local_path_root = if local_path {
        if !crate::storage::is_local_path_volume_of(&pv, &node.node_name) {
            return Err(format!(
                "persistent volume {volume:?} is a local-path volume of another node"
            ));
        }
        Some(node.storage_root.clone())
    } else {
        None
    };
    Ok(VolumeSource::Persistent {
        path,
        kind,
        read_only,
        local_path_root,
    })
}

/// Resolves the pod's volumes: emptyDir, hostPath, configMap, secret, downwardAPI. Errors are
/// `MountVolume.SetUp failed for volume "<v>" : <why>` as the kubelet's FailedMount events.
pub async fn volumes(
    objects: &dyn Objects,
    pod: &Pod,
    pod_ip: &str,
    node: &NodeFacts,
) -> Result<Vec<VolumeConfig>, String> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let mut out = Vec::new();
    let spec_volumes = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.clone())
        .unwrap_or_default();
    for v in spec_volumes {
        let fail =
            |why: String| format!("MountVolume.SetUp failed for volume {:?} : {why}", v.name);
        let source = if let Some(e) = &v.empty_dir {
            VolumeSource::EmptyDir {
                memory: e.medium.as_deref() == Some("Memory"),
            }
        } else if let Some(h) = &v.host_path {
            let kind = HostPathType::parse(h.type_.as_deref().unwrap_or(""))
                .ok_or_else(|| fail(format!("invalid HostPathType {:?}", h.type_)))?;
            VolumeSource::HostPath {
                path: PathBuf::from(&h.path),
                kind,
            }
        } else if let Some(c) = &v.config_map {
            let default_mode = mode(c.default_mode, 0o644);
            let optional = c.optional == Some(true);
            let cm = objects
                .config_map(&ns, &c.name)
                .await
                .map_err(|e| fail(e.to_string()))?;
            let files = match cm {
                None if optional => Vec::new(),
                None => return Err(fail(not_found("configmap", &c.name))),
                Some(cm) => key_files(
                    config_map_data(cm),
                    c.items.as_ref(),
                    default_mode,
                    &format!("ConfigMap {ns}/{}", c.name),
                    optional,
                )
                .map_err(&fail)?,
            };
            VolumeSource::Files {
                files,
                default_mode,
                memory: false,
            }
        } else if let Some(s) = &v.secret {
            let default_mode = mode(s.default_mode, 0o644);
            let optional = s.optional == Some(true);
            let name = s.secret_name.clone().unwrap_or_default();
            let secret = objects
                .secret(&ns, &name)
                .await
                .map_err(|e| fail(e.to_string()))?;
            let files = match secret {
                None if optional => Vec::new(),
                None => return Err(fail(not_found("secret", &name))),
                Some(sec) => key_files(
                    secret_data(sec),
                    s.items.as_ref(),
                    default_mode,
                    &format!("Secret {ns}/{name}"),
                    optional,
                )
                .map_err(&fail)?,
            };
            VolumeSource::Files {
                files,
                default_mode,
                memory: true,
            }
        } else if let Some(d) = &v.downward_api {
            let default_mode = mode(d.default_mode, 0o644);
            let files = downward_files(
                d.items.as_deref().unwrap_or_default(),
                pod,
                pod_ip,
                node,
                default_mode,
            )
            .map_err(&fail)?;
            VolumeSource::Files {
                files,
                default_mode,
                memory: true,
            }
        } else if let Some(p) = &v.projected {
            let default_mode = mode(p.default_mode, 0o644);
            let files = projected::files(objects, pod, p, pod_ip, node, default_mode)
                .await
                .map_err(&fail)?;
            VolumeSource::Files {
                files,
                default_mode,
                memory: true,
            }
        } else if let Some(c) = &v.persistent_volume_claim {
            persistent_source(
                objects,
                pod,
                &c.claim_name,
                c.read_only == Some(true),
                false,
                node,
            )
            .await
            .map_err(&fail)?
        } else if v.ephemeral.is_some() {
            let claim = format!("{}-{}", pod.metadata.name.as_deref().unwrap_or(""), v.name);
            persistent_source(objects, pod, &claim, false, true, node)
                .await
                .map_err(&fail)?
        } else {
            return Err(fail(
                "volume type not supported by paddock (supported: emptyDir, hostPath, configMap, secret, downwardAPI, projected, persistentVolumeClaim, ephemeral)".into(),
            ));
        };
        out.push(VolumeConfig {
            name: v.name.clone(),
            source,
        });
    }
    Ok(out)
}

/// The pod's projected volumes that carry a service account token, resolved again (their
/// content changes as tokens are refreshed; see [`crate::token`]).
pub async fn token_volumes(
    objects: &dyn Objects,
    pod: &Pod,
    pod_ip: &str,
    node: &NodeFacts,
) -> Result<Vec<VolumeConfig>, String> {
    let mut only = pod.clone();
    let Some(spec) = only.spec.as_mut() else {
        return Ok(Vec::new());
    };
    let Some(vols) = spec.volumes.as_mut() else {
        return Ok(Vec::new());
    };
    vols.retain(|v| v.projected.as_ref().is_some_and(projected::has_token));
    if vols.is_empty() {
        return Ok(Vec::new());
    }
    volumes(objects, &only, pod_ip, node).await
}

/// A ConfigMap's keys and their bytes (`data` and `binaryData`).
fn config_map_data(cm: ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let mut data: BTreeMap<String, Vec<u8>> = cm
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.into_bytes()))
        .collect();
    for (k, v) in cm.binary_data.unwrap_or_default() {
        data.insert(k, v.0);
    }
    data
}

/// A Secret's keys and their bytes as stored: a binary Secret stays binary in its volume.
fn secret_data(sec: Secret) -> BTreeMap<String, Vec<u8>> {
    let mut data: BTreeMap<String, Vec<u8>> = sec
        .string_data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.into_bytes()))
        .collect();
    for (k, v) in sec.data.unwrap_or_default() {
        data.insert(k, v.0);
    }
    data
}

/// The files of downwardAPI `items` (a downwardAPI volume or projection).
fn downward_files(
    items: &[k8s_openapi::api::core::v1::DownwardAPIVolumeFile],
    pod: &Pod,
    pod_ip: &str,
    node: &NodeFacts,
    default_mode: u32,
) -> Result<Vec<ProjectedFile>, String> {
    let mut files = Vec::new();
    for it in items {
        let value = if let Some(f) = &it.field_ref {
            field_ref(pod, &f.field_path, pod_ip, &node.host_ip.to_string())?
        } else if let Some(r) = &it.resource_field_ref {
            let name = r.container_name.clone().unwrap_or_default();
            let c = pod
                .spec
                .as_ref()
                .and_then(|s| s.containers.iter().find(|c| c.name == name))
                .ok_or_else(|| format!("container {name:?} not found"))?;
            resource_field_ref(
                c,
                &r.resource,
                r.divisor.as_ref().map(|d| d.0.as_str()),
                node,
            )?
        } else {
            String::new()
        };
        files.push(ProjectedFile {
            path: it.path.clone(),
            data: value.into_bytes(),
            mode: mode(it.mode, default_mode),
        });
    }
    Ok(files)
}

#[cfg(test)]
mod tests;
