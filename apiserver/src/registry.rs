//! The object layer shared by the HTTP handlers and in-process controllers, shaped like
//! upstream's generic registry store (`k8s.io/apiserver/pkg/registry/generic/registry`) with
//! the per-kind strategies of `pkg/registry/...` folded into [`crate::strategy`]:
//! system metadata on create (uid, creationTimestamp, generation, generateName), namespace
//! lifecycle checks, status-subresource splitting, resourceVersion/uid preconditions,
//! finalizers, graceful deletion and garbage-collection finalizers.
//!
//! Start at [`Registry::create`], [`Registry::update`] and [`Registry::delete`]. Every write
//! ends in one attempt function ([`Registry::write_update`]) that either stores, deletes (an
//! object whose last finalizer went away) or reports a retryable conflict.

use std::sync::Arc;

use api::registry::ResourceInfo;
use api::status::{ApiError, FieldError};
use serde_json::{Value, json};
use store::{Key, ListOptions, Revision, Store, StoreError};

use crate::meta::{self, meta_mut, meta_str};
use crate::select::Selector;
use crate::strategy;

// The option types live in a leaf module so the per-kind strategies need not import the
// registry that calls them; the registry is where callers have always found them.
pub use crate::options::{
    DeleteOptions, Deleted, FieldValidation, PatchOptions, Propagation, UpdateMode, WriteOptions,
};

/// Maps a store error to the Status upstream's storage layer would produce.
pub(crate) fn store_error(info: &ResourceInfo, name: &str, e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::not_found(info, name),
        StoreError::AlreadyExists => ApiError::already_exists(info, name),
        StoreError::Conflict { .. } => ApiError::conflict_modified(info, name),
        StoreError::Gone { requested, oldest } => {
            ApiError::expired(format!("too old resource version: {requested} ({oldest})"))
        }
        StoreError::InvalidContinue(m) => {
            ApiError::bad_request(format!("invalid continue token: {m}"))
        }
        StoreError::Closed => ApiError::service_unavailable("the server is shutting down"),
        StoreError::Backend(m) => ApiError::internal(m),
        StoreError::InvalidObject(m) => ApiError::bad_request(m),
    }
}

/// Parses a `resourceVersion` string; `""` is `None`.
pub(crate) fn parse_rv(rv: &str) -> Result<Option<Revision>, ApiError> {
    if rv.is_empty() {
        return Ok(None);
    }
    rv.parse::<Revision>()
        .map(Some)
        .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv:?}")))
}

fn rv_of(obj: &Value) -> Revision {
    meta_str(obj, "resourceVersion").parse().unwrap_or(0)
}

/// Namespaces upstream's NamespaceLifecycle plugin never lets go.
const IMMORTAL_NAMESPACES: [&str; 3] = ["default", "kube-system", "kube-public"];

/// Result of one update attempt.
enum Attempt {
    /// Stored (or deleted because the last finalizer went away).
    Done(Arc<Value>),
    /// The object changed underneath; re-read and retry.
    Retry,
}

/// The object layer; cheap to clone.
#[derive(Clone, Debug)]
pub struct Registry {
    store: Store,
    /// Serializes service address allocation with the create that stores it.
    alloc: Arc<tokio::sync::Mutex<()>>,
    /// The `DefaultTolerationSeconds` admission plugin's seconds (not-ready, unreachable),
    /// shared by every clone; see [`Registry::set_default_toleration_seconds`].
    toleration_seconds: Arc<[std::sync::atomic::AtomicI64; 2]>,
    /// Whether the ServiceAccount admission plugin runs on pod creates (the server enables
    /// it; bare registries in unit tests run without it, as with
    /// `--disable-admission-plugins=ServiceAccount`).
    service_account_admission: Arc<std::sync::atomic::AtomicBool>,
    /// The RBAC authorizer over this store; role and binding writes mark its index stale.
    rbac: Arc<crate::authz::Rbac>,
    /// The Node authorizer's graph of pods and what they use ([`crate::authz::node_graph`]).
    node_graph: Arc<crate::authz::node_graph::NodeGraph>,
}

impl Registry {
    /// A registry over `store`.
    pub fn new(store: Store) -> Registry {
        Registry {
            rbac: Arc::new(crate::authz::Rbac::new(store.clone())),
            node_graph: Arc::default(),
            store,
            alloc: Arc::new(tokio::sync::Mutex::new(())),
            toleration_seconds: Arc::new([
                std::sync::atomic::AtomicI64::new(api::admission::DEFAULT_TOLERATION_SECONDS),
                std::sync::atomic::AtomicI64::new(api::admission::DEFAULT_TOLERATION_SECONDS),
            ]),
            service_account_admission: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }
    }

    /// Turns the ServiceAccount admission plugin ([`crate::serviceaccount::admission`]) on
    /// or off for this registry and its clones.
    pub fn set_service_account_admission(&self, on: bool) {
        self.service_account_admission
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Sets the seconds of the tolerations the `DefaultTolerationSeconds` admission plugin
    /// adds to new pods (kube-apiserver's `--default-not-ready-toleration-seconds` and
    /// `--default-unreachable-toleration-seconds`), for this registry and its clones.
    pub fn set_default_toleration_seconds(&self, t: api::admission::DefaultTolerationSeconds) {
        use std::sync::atomic::Ordering;
        self.toleration_seconds[0].store(t.not_ready, Ordering::Relaxed);
        self.toleration_seconds[1].store(t.unreachable, Ordering::Relaxed);
    }

    fn default_toleration_seconds(&self) -> api::admission::DefaultTolerationSeconds {
        use std::sync::atomic::Ordering;
        api::admission::DefaultTolerationSeconds {
            not_ready: self.toleration_seconds[0].load(Ordering::Relaxed),
            unreachable: self.toleration_seconds[1].load(Ordering::Relaxed),
        }
    }

    /// The store underneath (for watches and lists).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The RBAC authorizer over this registry's roles and bindings.
    pub fn rbac(&self) -> &crate::authz::Rbac {
        &self.rbac
    }

    /// The Node authorizer's graph (filled once [`Registry::start_node_graph`] ran).
    pub fn node_graph(&self) -> &crate::authz::node_graph::NodeGraph {
        &self.node_graph
    }

    /// Lists pods, PersistentVolumes and Ingresses into the Node authorizer's graph and keeps
    /// it in step with the store until `shutdown` flips.
    pub fn start_node_graph(&self, shutdown: tokio::sync::watch::Receiver<bool>) {
        self.node_graph.start(self.store.clone(), shutdown);
    }

    /// Marks the authorizer's index stale after a write of `info`'s objects.
    fn wrote(&self, info: &ResourceInfo) {
        if info.group == api::registry::RBAC_GROUP {
            self.rbac.changed();
        }
    }

    /// The store key of an object of `info`.
    pub fn key(info: &ResourceInfo, namespace: &str, name: &str) -> Key {
        Key::new(
            info.store_resource(),
            if info.namespaced { namespace } else { "" },
            name,
        )
    }

    /// The current object, or 404.
    pub fn get(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        name: &str,
    ) -> Result<Arc<Value>, ApiError> {
        self.store
            .get(&Self::key(info, namespace, name))
            .ok_or_else(|| ApiError::not_found(info, name))
    }

    /// Lists objects of `info` (one namespace, or all with `None`) matching the selectors
    /// (query-parameter syntax); returns the items and the list's revision.
    pub fn list(
        &self,
        info: &ResourceInfo,
        namespace: Option<&str>,
        label_selector: Option<&str>,
        field_selector: Option<&str>,
    ) -> Result<(Vec<Arc<Value>>, Revision), ApiError> {
        let sel = Selector::parse(info, label_selector, field_selector)?;
        let page = list_page(self, info, namespace, &sel, None, None, None)?;
        Ok((page.items, page.revision))
    }

    /// Checks that `namespace` exists (404 `namespaces "x" not found`) and, for creates, is
    /// not terminating (403), like the NamespaceLifecycle admission plugin.
    fn check_namespace(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        name: &str,
        create: bool,
    ) -> Result<(), ApiError> {
        if !info.namespaced {
            return Ok(());
        }
        let ns_info = strategy::namespaces();
        let Some(ns) = self.store.get(&Key::new("namespaces", "", namespace)) else {
            return Err(ApiError::not_found(ns_info, namespace));
        };
        let terminating =
            ns.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating");
        if create && terminating {
            let msg = format!(
                "unable to create new content in namespace {namespace} because it is being terminated"
            );
            let mut err = ApiError::forbidden(info, name, &msg);
            if let Some(d) = err.details.as_mut() {
                d.causes.push(api::status::StatusCause {
                    reason: "NamespaceTerminating".into(),
                    message: msg,
                    field: "metadata.namespace".into(),
                });
            }
            return Err(err);
        }
        Ok(())
    }

    /// Creates `obj` (POST): fills system metadata, checks the namespace, validates and
    /// stores it. Returns the stored object (or, with `dry_run`, what would be stored).
    pub async fn create(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        obj: Value,
        opts: &WriteOptions,
    ) -> Result<Arc<Value>, ApiError> {
        self.create_checked(info, namespace, obj, &[], opts)
            .await
            .map(|(v, _)| v)
    }

    /// [`Registry::create`] for a body parsed with duplicate-key detection; also returns the
    /// decoding warnings (for `Warning` headers).
    pub async fn create_checked(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        obj: Value,
        duplicates: &[String],
        opts: &WriteOptions,
    ) -> Result<(Arc<Value>, Vec<String>), ApiError> {
        self.create_inner(info, namespace, obj, duplicates, opts, true)
            .await
    }

    /// A create; `record` = record the write in managedFields (false when server-side apply
    /// already did).
    pub(crate) async fn create_inner(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        obj: Value,
        duplicates: &[String],
        opts: &WriteOptions,
        record: bool,
    ) -> Result<(Arc<Value>, Vec<String>), ApiError> {
        let decoded =
            api::object::decode_with_duplicates(info, obj, duplicates, opts.field_validation)?;
        let _alloc = if info.kind == "Service" {
            Some(self.alloc.lock().await)
        } else {
            None
        };
        let mut value = decoded.value;
        if info.kind == "Pod"
            && info.group.is_empty()
            && self
                .service_account_admission
                .load(std::sync::atomic::Ordering::Relaxed)
            // A missing namespace is NamespaceLifecycle's 404, which runs first upstream.
            && self
                .store
                .get(&Key::new("namespaces", "", namespace))
                .is_some()
        {
            crate::serviceaccount::admission::admit(self, namespace, &mut value).await?;
        }
        let obj = self.prepare_create(info, namespace, value, opts, record)?;
        let name = meta_str(&obj, "name").to_string();
        let mut warnings = decoded.warnings;
        warnings.extend(strategy::warnings_on_create(info, &obj));
        if opts.dry_run {
            return Ok((Arc::new(obj), warnings));
        }
        let key = Self::key(info, namespace, &name);
        let stored = self
            .store
            .create(key, obj)
            .await
            .map_err(|e| store_error(info, &name, e))?;
        self.wrote(info);
        Ok((stored, warnings))
    }

    /// The RuntimeClass admission plugin: looks up the class a pod names (see
    /// [`api::admission::admit_runtime_class`]).
    fn admit_runtime_class(&self, info: &ResourceInfo, obj: &mut Value) -> Result<(), ApiError> {
        if info.kind != "Pod" || !info.group.is_empty() {
            return Ok(());
        }
        let class = match api::admission::runtime_class_name(obj) {
            None => None,
            Some(name) => {
                let rc_info = api::registry::lookup("node.k8s.io", "v1", "runtimeclasses")
                    .ok_or_else(|| ApiError::internal("runtimeclasses are not served"))?;
                match self.store.get(&Self::key(rc_info, "", name)) {
                    None => None,
                    Some(v) => Some(api::object::typed::<
                        k8s_openapi::api::node::v1::RuntimeClass,
                    >(&v)?),
                }
            }
        };
        api::admission::admit_runtime_class(info, obj, class.as_ref())
    }

    /// The storage admission plugins (see [`api::admission::admit_storage`]): looks up the
    /// StorageClasses for a claim.
    fn admit_storage(&self, info: &ResourceInfo, obj: &mut Value) -> Result<(), ApiError> {
        if !info.group.is_empty()
            || !matches!(info.kind, "PersistentVolumeClaim" | "PersistentVolume")
        {
            return Ok(());
        }
        let classes = if info.kind == "PersistentVolumeClaim" {
            let sc = api::registry::lookup("storage.k8s.io", "v1", "storageclasses")
                .ok_or_else(|| ApiError::internal("storageclasses are not served"))?;
            self.list(sc, None, None, None)?.0
        } else {
            Vec::new()
        };
        api::admission::admit_storage(info, obj, &classes);
        Ok(())
    }

    /// The `DefaultIngressClass` admission plugin (see
    /// [`api::admission::admit_ingress_class`]): looks up the IngressClasses for an Ingress.
    fn admit_ingress_class(&self, info: &ResourceInfo, obj: &mut Value) -> Result<(), ApiError> {
        if info.kind != "Ingress" || info.group != api::registry::NETWORKING_GROUP {
            return Ok(());
        }
        let ic = api::registry::lookup(api::registry::NETWORKING_GROUP, "v1", "ingressclasses")
            .ok_or_else(|| ApiError::internal("ingressclasses are not served"))?;
        let classes = self.list(ic, None, None, None)?.0;
        api::admission::admit_ingress_class(info, obj, &classes);
        Ok(())
    }

    /// The `PersistentVolumeClaimResize` admission plugin: a bound claim may only grow when
    /// its StorageClass says `allowVolumeExpansion: true` (403 otherwise, upstream's words).
    fn admit_claim_resize(
        &self,
        info: &ResourceInfo,
        new: &Value,
        old: &Value,
    ) -> Result<(), ApiError> {
        if info.kind != "PersistentVolumeClaim" || !info.group.is_empty() {
            return Ok(());
        }
        let size = |v: &Value| {
            v.pointer("/spec/resources/requests/storage")
                .and_then(Value::as_str)
                .and_then(|s| api::quantity::Quantity::parse(s).ok())
        };
        let bound = old.pointer("/status/phase").and_then(Value::as_str) == Some("Bound");
        let grows = matches!((size(old), size(new)), (Some(o), Some(n)) if n > o);
        if !bound || !grows {
            return Ok(());
        }
        let class = new
            .pointer("/spec/storageClassName")
            .and_then(Value::as_str)
            .unwrap_or("");
        let allowed = !class.is_empty()
            && api::registry::lookup("storage.k8s.io", "v1", "storageclasses")
                .and_then(|sc| self.store.get(&Self::key(sc, "", class)))
                .is_some_and(|c| c.get("allowVolumeExpansion") == Some(&json!(true)));
        if allowed {
            return Ok(());
        }
        Err(ApiError::forbidden(
            info,
            meta_str(new, "name"),
            "only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize",
        ))
    }

    /// Everything a create does before storing.
    fn prepare_create(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        obj: Value,
        opts: &WriteOptions,
        record: bool,
    ) -> Result<Value, ApiError> {
        let mut obj = strategy::check_type(info, obj)?;
        strategy::check_namespace_field(info, namespace, &mut obj)?;
        // Mutating admission (service account, priority, default tolerations), as the
        // default plugins of an upstream API server do on create.
        api::admission::admit_create(info, &mut obj, &self.default_toleration_seconds())?;
        self.admit_runtime_class(info, &mut obj)?;
        self.admit_storage(info, &mut obj)?;
        self.admit_ingress_class(info, &mut obj)?;
        if !meta_str(&obj, "resourceVersion").is_empty() {
            return Err(ApiError::bad_request(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let m = meta_mut(&mut obj);
        let name_empty = m
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty();
        if name_empty {
            match m
                .get("generateName")
                .and_then(Value::as_str)
                .filter(|g| !g.is_empty())
            {
                Some(g) => {
                    let n = meta::generate_name(g);
                    m.insert("name".into(), json!(n));
                }
                None => {
                    return Err(ApiError::invalid(
                        info,
                        "",
                        vec![FieldError::required(
                            "metadata.name",
                            "name or generateName is required",
                        )],
                    ));
                }
            }
        }
        let name = meta_str(&obj, "name").to_string();
        self.check_namespace(info, namespace, &name, true)?;
        let now = meta::now();
        let m = meta_mut(&mut obj);
        m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        m.insert("creationTimestamp".into(), json!(meta::rfc3339(now)));
        m.remove("deletionTimestamp");
        m.remove("deletionGracePeriodSeconds");
        m.remove("resourceVersion");
        m.remove("selfLink");
        strategy::prepare_for_create(info, &mut obj, opts.user.as_ref());
        if info.kind == "Service" {
            crate::alloc::allocate(&self.store, info, &mut obj, None)?;
        }
        crate::authz::node_restriction::admit_object(self, opts.user.as_ref(), info, &obj, None)?;
        strategy::validate_create(info, &obj, opts)?;
        crate::authz::escalation::check(&self.rbac, info, namespace, "", &obj, opts.user.as_ref())?;
        if record {
            strategy::record_managed_fields(info, None, &mut obj, opts, UpdateMode::Main, now);
        }
        Ok(obj)
    }

    /// Replaces an object (PUT on the main resource). `status` is kept from the stored
    /// object for kinds with a status subresource. Creates the object for kinds that allow
    /// create-on-update (services, endpoints, events, leases), 404 otherwise.
    pub async fn update(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        name: &str,
        obj: Value,
        opts: &WriteOptions,
    ) -> Result<Arc<Value>, ApiError> {
        self.update_checked(info, namespace, name, obj, &[], opts, UpdateMode::Main)
            .await
            .map(|(v, _, _)| v)
    }

    /// Replaces the status of an object (PUT on `/status`): only `status` is taken.
    pub async fn update_status(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        name: &str,
        obj: Value,
        opts: &WriteOptions,
    ) -> Result<Arc<Value>, ApiError> {
        self.update_checked(info, namespace, name, obj, &[], opts, UpdateMode::Status)
            .await
            .map(|(v, _, _)| v)
    }

    /// An update in `mode` of a body parsed with duplicate-key detection; returns the
    /// object, whether it was created, and decoding warnings.
    #[allow(clippy::too_many_arguments)]
    pub async fn update_checked(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        name: &str,
        obj: Value,
        duplicates: &[String],
        opts: &WriteOptions,
        mode: UpdateMode,
    ) -> Result<(Arc<Value>, bool, Vec<String>), ApiError> {
        let (obj, warnings) = if mode == UpdateMode::Finalize {
            (strategy::check_type(info, obj)?, Vec::new())
        } else {
            let d =
                api::object::decode_with_duplicates(info, obj, duplicates, opts.field_validation)?;
            (d.value, d.warnings)
        };
        let body_name = meta_str(&obj, "name");
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let mut obj = obj;
        strategy::check_namespace_field(info, namespace, &mut obj)?;
        meta_mut(&mut obj).insert("name".into(), json!(name));
        let explicit_rv = parse_rv(meta_str(&obj, "resourceVersion"))?;
        loop {
            let Some(old) = self.store.get(&Self::key(info, namespace, name)) else {
                if mode == UpdateMode::Main && strategy::allow_create_on_update(info) {
                    if explicit_rv.is_some() {
                        return Err(ApiError::not_found(info, name));
                    }
                    meta_mut(&mut obj).remove("resourceVersion");
                    return match self.create(info, namespace, obj.clone(), opts).await {
                        Ok(v) => Ok((v, true, warnings)),
                        // Lost a race with another create: update that one.
                        Err(e) if e.code == 409 && e.reason == "AlreadyExists" => continue,
                        Err(e) => Err(e),
                    };
                }
                return Err(ApiError::not_found(info, name));
            };
            if let Some(rv) = explicit_rv
                && rv != rv_of(&old)
            {
                return Err(ApiError::conflict_modified(info, name));
            }
            match self
                .write_update(info, namespace, name, &old, obj.clone(), opts, mode, true)
                .await?
            {
                Attempt::Done(v) => return Ok((v, false, warnings)),
                Attempt::Retry if explicit_rv.is_none() => continue,
                Attempt::Retry => return Err(ApiError::conflict_modified(info, name)),
            }
        }
    }

    /// One update attempt of `old` to `new` (whose resourceVersion precondition was
    /// checked by the caller): merges per `mode`, keeps system metadata, bumps generation,
    /// validates, skips no-op writes, deletes an object whose last finalizer went away.
    #[allow(clippy::too_many_arguments)]
    async fn write_update(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        name: &str,
        old: &Arc<Value>,
        new: Value,
        opts: &WriteOptions,
        mode: UpdateMode,
        record: bool,
    ) -> Result<Attempt, ApiError> {
        let mut new = match mode {
            UpdateMode::Main => {
                let mut new = new;
                strategy::keep_status(info, old, &mut new);
                new
            }
            UpdateMode::Status => {
                let mut merged = Value::clone(old);
                match new.get("status") {
                    Some(s) => merged["status"] = s.clone(),
                    None => {
                        if let Some(o) = merged.as_object_mut() {
                            o.remove("status");
                        }
                    }
                }
                strategy::status_update_metadata(info, &new, &mut merged);
                merged
            }
            UpdateMode::Approval => {
                let mut merged = Value::clone(old);
                let conditions = new
                    .pointer("/status/conditions")
                    .cloned()
                    .unwrap_or(Value::Null);
                match merged.get_mut("status").and_then(Value::as_object_mut) {
                    Some(status) => {
                        status.insert("conditions".into(), conditions);
                    }
                    None => merged["status"] = json!({"conditions": conditions}),
                }
                merged
            }
            UpdateMode::Finalize => {
                let mut merged = Value::clone(old);
                let fins = new
                    .pointer("/spec/finalizers")
                    .cloned()
                    .unwrap_or_else(|| json!([]));
                merged["spec"]["finalizers"] = fins;
                merged
            }
            UpdateMode::EphemeralContainers => {
                let mut merged = Value::clone(old);
                match new.pointer("/spec/ephemeralContainers") {
                    Some(list) => merged["spec"]["ephemeralContainers"] = list.clone(),
                    None => {
                        if let Some(spec) = merged.get_mut("spec").and_then(Value::as_object_mut) {
                            spec.remove("ephemeralContainers");
                        }
                    }
                }
                merged
            }
        };
        let uid = meta_str(&new, "uid");
        let old_uid = meta_str(old, "uid");
        if !uid.is_empty() && uid != old_uid {
            return Err(ApiError::conflict(
                info,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {old_uid}"
                ),
            ));
        }
        // System fields always come from the stored object.
        let old_meta = meta::meta(old).cloned().unwrap_or_default();
        let m = meta_mut(&mut new);
        for f in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            match old_meta.get(f) {
                Some(v) => m.insert(f.into(), v.clone()),
                None => m.remove(f),
            };
        }
        m.insert("name".into(), json!(name));
        if info.namespaced {
            m.insert("namespace".into(), json!(namespace));
        }
        m.remove("selfLink");
        if !m.contains_key("managedFields")
            && let Some(mf) = old_meta.get("managedFields")
        {
            m.insert("managedFields".into(), mf.clone());
        }
        m.insert(
            "resourceVersion".into(),
            old_meta
                .get("resourceVersion")
                .cloned()
                .unwrap_or(json!("")),
        );
        // Upstream's BeginUpdate hook (allocation) runs before the strategy's PrepareForUpdate.
        let _alloc = if info.kind == "Service" && mode == UpdateMode::Main {
            let guard = self.alloc.lock().await;
            crate::alloc::keep_allocated(old, &mut new);
            crate::alloc::allocate(&self.store, info, &mut new, Some(old))?;
            Some(guard)
        } else {
            None
        };
        strategy::prepare_for_update(info, old, &mut new, mode);
        crate::authz::node_restriction::admit_object(
            self,
            opts.user.as_ref(),
            info,
            &new,
            Some(old),
        )?;
        strategy::validate_update(info, &new, old, mode, opts)?;
        if mode == UpdateMode::Main {
            self.admit_claim_resize(info, &new, old)?;
            crate::authz::escalation::check(
                &self.rbac,
                info,
                namespace,
                name,
                &new,
                opts.user.as_ref(),
            )?;
        }
        if strategy::unchanged(old, &new) {
            return Ok(Attempt::Done(old.clone()));
        }
        if record {
            strategy::record_managed_fields(info, Some(old), &mut new, opts, mode, meta::now());
        }
        if opts.dry_run {
            return Ok(Attempt::Done(Arc::new(new)));
        }
        let key = Self::key(info, namespace, name);
        let expected = Some(rv_of(old));
        let result = if strategy::should_delete_during_update(info, &new) {
            self.store.delete(&key, expected).await
        } else {
            self.store.update(key, new, expected).await
        };
        self.wrote(info);
        match result {
            Ok(v) => Ok(Attempt::Done(v)),
            Err(StoreError::Conflict { .. }) | Err(StoreError::NotFound) => Ok(Attempt::Retry),
            Err(e) => Err(store_error(info, name, e)),
        }
    }

    /// One update attempt from `old` to `new` (e.g. a patched object); decodes `new` with
    /// the options' field validation. `None`: the object changed meanwhile, re-read and retry.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn apply_update(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        name: &str,
        old: &Arc<Value>,
        new: Value,
        opts: &WriteOptions,
        mode: UpdateMode,
        record: bool,
    ) -> Result<Option<(Arc<Value>, Vec<String>)>, ApiError> {
        let d = api::object::decode(info, new, opts.field_validation)?;
        match self
            .write_update(info, namespace, name, old, d.value, opts, mode, record)
            .await?
        {
            Attempt::Done(v) => Ok(Some((v, d.warnings))),
            Attempt::Retry => Ok(None),
        }
    }

    /// Read-modify-write with retry on conflict, for controllers: `f` edits a copy of the
    /// current object and returns `Ok(false)` to skip the write (the current object is then
    /// returned). `subresource_status` writes through the status subresource.
    pub async fn update_with<F>(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        name: &str,
        subresource_status: bool,
        mut f: F,
    ) -> Result<Arc<Value>, ApiError>
    where
        F: FnMut(&mut Value) -> Result<bool, ApiError> + Send,
    {
        let mode = if subresource_status {
            UpdateMode::Status
        } else {
            UpdateMode::Main
        };
        self.update_with_mode(
            info,
            namespace,
            name,
            mode,
            &WriteOptions::default(),
            &mut f,
        )
        .await
    }

    /// [`Registry::update_with`] for any [`UpdateMode`] and options.
    pub async fn update_with_mode(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        name: &str,
        mode: UpdateMode,
        opts: &WriteOptions,
        f: &mut (dyn FnMut(&mut Value) -> Result<bool, ApiError> + Send),
    ) -> Result<Arc<Value>, ApiError> {
        loop {
            let old = self.get(info, namespace, name)?;
            let mut new = Value::clone(&old);
            if !f(&mut new)? {
                return Ok(old);
            }
            let new = api::object::decode(info, new, FieldValidation::Ignore)?.value;
            match self
                .write_update(info, namespace, name, &old, new, opts, mode, true)
                .await?
            {
                Attempt::Done(v) => return Ok(v),
                Attempt::Retry => continue,
            }
        }
    }

    /// Deletes an object, honouring preconditions, grace periods (pods bound to a node),
    /// finalizers and the propagation policy (upstream `Store.Delete`).
    pub async fn delete(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Deleted, ApiError> {
        let r = self.delete_inner(info, namespace, name, opts).await;
        self.wrote(info);
        r
    }

    async fn delete_inner(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Deleted, ApiError> {
        if info.kind == "Namespace" && IMMORTAL_NAMESPACES.contains(&name) {
            return Err(ApiError::forbidden(
                info,
                name,
                "this namespace may not be deleted",
            ));
        }
        loop {
            let old = self.get(info, namespace, name)?;
            check_preconditions(
                info,
                name,
                &old,
                opts.preconditions_uid.as_deref(),
                opts.preconditions_resource_version.as_deref(),
            )?;
            let key = Self::key(info, namespace, name);
            let mut new = Value::clone(&old);
            let now = meta::now();
            let graceful = strategy::graceful_delete(info, &old, &mut new, opts, now);
            let fin_changed = strategy::gc_finalizers(
                &mut new,
                opts.propagation_policy,
                strategy::orphans_by_default(info),
            );
            let pending_finalizers = !meta::finalizers(&old).is_empty();
            let ns_pending = strategy::namespace_delete(info, &mut new, now);
            if !(graceful || fin_changed || pending_finalizers || ns_pending) {
                // Immediate deletion.
                if opts.dry_run {
                    return Ok(Deleted::Gone(old));
                }
                return match self.store.delete(&key, Some(rv_of(&old))).await {
                    Ok(v) => Ok(Deleted::Gone(v)),
                    Err(StoreError::Conflict { .. }) => continue,
                    Err(e) => Err(store_error(info, name, e)),
                };
            }
            // Mark for deletion: deletionTimestamp (kept if already set), finalizers.
            let m = meta_mut(&mut new);
            if !m.contains_key("deletionTimestamp") {
                m.insert("deletionTimestamp".into(), json!(meta::rfc3339(now)));
                m.insert("deletionGracePeriodSeconds".into(), json!(0));
                if info.kind != "Namespace" && meta::generation(&old) > 0 {
                    m.insert("generation".into(), json!(meta::generation(&old) + 1));
                }
            }
            let immediate = !graceful
                && meta::finalizers(&new).is_empty()
                && strategy::should_delete_during_update(info, &new);
            if opts.dry_run {
                return Ok(if immediate {
                    Deleted::Gone(old)
                } else {
                    Deleted::Pending(Arc::new(new))
                });
            }
            if immediate {
                return match self.store.delete(&key, Some(rv_of(&old))).await {
                    Ok(v) => Ok(Deleted::Gone(v)),
                    Err(StoreError::Conflict { .. }) => continue,
                    Err(e) => Err(store_error(info, name, e)),
                };
            }
            if strategy::unchanged(&old, &new) {
                return Ok(Deleted::Pending(old));
            }
            match self.store.update(key, new, Some(rv_of(&old))).await {
                Ok(v) => return Ok(Deleted::Pending(v)),
                Err(StoreError::Conflict { .. }) | Err(StoreError::NotFound) => continue,
                Err(e) => return Err(store_error(info, name, e)),
            }
        }
    }
}

/// Upstream `storage.Preconditions.Check`: `old` must still have `uid` and be at
/// `resource_version` (each when given), else 409 Conflict.
pub(crate) fn check_preconditions(
    info: &ResourceInfo,
    name: &str,
    old: &Value,
    uid: Option<&str>,
    resource_version: Option<&str>,
) -> Result<(), ApiError> {
    let failed = |what: &str, want: &str, field: &str| {
        let actual = meta_str(old, field);
        (want != actual).then(|| {
            ApiError::conflict(
                info,
                name,
                &format!(
                    "Precondition failed: {what} in precondition: {want}, {what} in object meta: {actual}"
                ),
            )
        })
    };
    if let Some(e) = uid.and_then(|u| failed("UID", u, "uid")) {
        return Err(e);
    }
    if let Some(e) =
        resource_version.and_then(|rv| failed("ResourceVersion", rv, "resourceVersion"))
    {
        return Err(e);
    }
    Ok(())
}

/// One list page after selectors.
pub struct Page {
    /// Matching items.
    pub items: Vec<Arc<Value>>,
    /// The list's revision.
    pub revision: u64,
    /// Continue token.
    pub continue_token: Option<String>,
    /// Items after this page (only without selectors, as upstream).
    pub remaining: Option<u64>,
}

/// Lists `info` objects (one namespace or all) through `sel`, honouring `limit`/`continue`.
pub fn list_page(
    registry: &Registry,
    info: &ResourceInfo,
    ns: Option<&str>,
    sel: &Selector,
    limit: Option<usize>,
    cont: Option<&str>,
    at: Option<u64>,
) -> Result<Page, ApiError> {
    let resource = info.store_resource();
    let ns = if info.namespaced { ns } else { None };
    let mut items = Vec::new();
    let mut token = cont.map(str::to_string);
    loop {
        let need = limit.map(|l| l - items.len());
        let opts = ListOptions {
            limit: need,
            continue_token: token.take(),
        };
        let page = match at {
            Some(rev) => registry.store().list_at(&resource, ns, rev, &opts),
            None => registry.store().list(&resource, ns, &opts),
        }
            .map_err(|e| match e {
                store::StoreError::Gone { .. } => ApiError::expired(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                ),
                other => store_error(info, "", other),
            })?;
        let sel_empty = sel.is_empty();
        items.extend(
            page.items
                .into_iter()
                .filter(|o| sel_empty || sel.matches(o)),
        );
        let done =
            page.continue_token.is_none() || limit.is_some_and(|l| items.len() >= l) || sel_empty;
        if done {
            return Ok(Page {
                items,
                revision: page.revision,
                remaining: if sel_empty { page.remaining } else { None },
                continue_token: page.continue_token,
            });
        }
        token = page.continue_token;
    }
}
