//! The options of registry writes: [`WriteOptions`] (create, update), [`PatchOptions`],
//! [`DeleteOptions`] with its [`Propagation`], and the [`UpdateMode`] that says which part of an
//! object an update may change. A leaf module: the [`crate::registry`] takes them, the per-kind
//! [`crate::strategy`] reads them, and neither needs the other for it. The registry re-exports
//! them, so `crate::registry::WriteOptions` is the same type.

pub use api::object::FieldValidation;

/// Options of a create or update.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// `fieldManager` (for managedFields); `None` = derived from the user agent upstream,
    /// here a fixed default.
    pub field_manager: Option<String>,
    /// `fieldValidation`.
    pub field_validation: FieldValidation,
    /// `dryRun=All`: validate and default, store nothing.
    pub dry_run: bool,
    /// The authenticated user (`None` for in-process writers); CSRs record it on create.
    pub user: Option<crate::user::UserInfo>,
}

/// Options of a patch: the write options plus `force` (server-side apply).
#[derive(Debug, Clone, Default)]
pub struct PatchOptions {
    /// Write options.
    pub write: WriteOptions,
    /// `force=true`: server-side apply takes ownership of conflicting fields.
    pub force: bool,
}

/// `propagationPolicy` of a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    /// Leave dependents (adds the `orphan` finalizer).
    Orphan,
    /// Delete the owner now, dependents afterwards (the garbage collector).
    Background,
    /// Delete dependents first (adds the `foregroundDeletion` finalizer).
    Foreground,
}

impl Propagation {
    /// Parses the wire form (`Orphan`, `Background`, `Foreground`).
    pub fn parse(s: &str) -> Option<Propagation> {
        match s {
            "Orphan" => Some(Propagation::Orphan),
            "Background" => Some(Propagation::Background),
            "Foreground" => Some(Propagation::Foreground),
            _ => None,
        }
    }
}

/// Options of a delete (`DeleteOptions`).
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// `gracePeriodSeconds`.
    pub grace_period_seconds: Option<i64>,
    /// `propagationPolicy` (or the legacy `orphanDependents`).
    pub propagation_policy: Option<Propagation>,
    /// `preconditions.uid`.
    pub preconditions_uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub preconditions_resource_version: Option<String>,
    /// `dryRun=All`.
    pub dry_run: bool,
}

/// Which part of an object an update may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateMode {
    /// The main resource: `status` is kept from the stored object for kinds with a status
    /// subresource.
    Main,
    /// The `status` subresource: only `status` is taken from the new object.
    Status,
    /// The namespace `finalize` subresource: only `spec.finalizers` is taken.
    Finalize,
    /// A CSR's `approval` subresource: only `status.conditions` is taken.
    Approval,
}
