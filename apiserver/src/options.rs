//! The options of registry writes: [`WriteOptions`] (create, update), [`PatchOptions`],
//! [`DeleteOptions`] with its [`Propagation`] (the cluster port's, re-exported), and the [`UpdateMode`] that says which part of an
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

// The delete vocabulary is the cluster port's (controllers speak it too).
pub use api::cluster::{DeleteOptions, Deleted, Propagation};

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
    /// A pod's `ephemeralcontainers` subresource: only `spec.ephemeralContainers` is taken.
    EphemeralContainers,
}
